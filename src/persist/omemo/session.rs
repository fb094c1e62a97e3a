//! One OMEMO session on its own: `schema ‖ session record`, under the kind of its version.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{read_schema, read_session, session_kind, write_session};
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::omemo::{OmemoProfile, Session};
use crate::persist::{PersistError, StorageKey, open, seal};

impl<P: OmemoProfile> Session<P> {
    /// Encrypts the session for storage under `key`. A session of the other OMEMO version
    /// does not restore from the result.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`Session::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(session_kind::<P>(), &self.to_record(), key, rng)
    }

    /// Restores a session saved by [`Session::save`] (of this version: a session of the other
    /// one is [`PersistError::WrongKind`]).
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(session_kind::<P>(), blob, key)?)
    }

    /// The unsealed stored form: schema, then the session record. It does not say its
    /// version: the caller keeps OMEMO 2 and 0.3 records apart.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(super::SCHEMA);
        write_session(&mut out, self);
        out.finish()
    }

    /// Reads [`Session::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        read_schema(&mut input)?;
        let session = read_session(&mut input)?;
        input.finish()?;
        Ok(session)
    }
}
