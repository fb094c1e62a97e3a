//! The outbound group session's stored form (schema 1): `ratchet ‖ signing key ‖ created at
//! (u64 ms) ‖ invalidated`.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::GroupSession;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::persist::fields::{
    read_megolm_ratchet, read_signing_key, write_megolm_ratchet, write_signing_key,
};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};
use crate::time::Timestamp;

/// The schema written and read.
const SCHEMA: u32 = 1;

fn read_schema(input: &mut ByteReader<'_>) -> Result<(), PersistError> {
    match input.u32()? {
        SCHEMA => Ok(()),
        other => Err(PersistError::UnsupportedVersion(other)),
    }
}

impl GroupSession {
    /// Encrypts the session for storage under `key`.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`GroupSession::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::GroupSession, &self.to_record(), key, rng)
    }

    /// Restores a session saved by [`GroupSession::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(Kind::GroupSession, blob, key)?)
    }

    /// The unsealed stored form: schema, then the fields.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(SCHEMA);
        write_megolm_ratchet(&mut out, &self.ratchet);
        write_signing_key(&mut out, &self.signing_key);
        out.u64(self.created_at.as_millis()).bool(self.invalidated);
        out.finish()
    }

    /// Reads [`GroupSession::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        read_schema(&mut input)?;
        let session = Self {
            ratchet: read_megolm_ratchet(&mut input)?,
            signing_key: read_signing_key(&mut input)?,
            created_at: Timestamp::from_millis(input.u64()?),
            invalidated: input.bool()?,
        };
        input.finish()?;
        Ok(session)
    }
}
