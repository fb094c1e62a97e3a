//! The inbound group session's stored form (schema 1): `initial ratchet ‖ latest ratchet ‖
//! signing key ‖ signing key verified`, the latest never behind the initial.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::InboundGroupSession;
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::DecodedKeys;
use crate::persist::fields::{read_megolm_ratchet, write_megolm_ratchet};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};

/// The schema written and read.
const SCHEMA: u32 = 1;

fn read_schema(input: &mut ByteReader<'_>) -> Result<(), PersistError> {
    match input.u32()? {
        SCHEMA => Ok(()),
        other => Err(PersistError::UnsupportedVersion(other)),
    }
}

impl InboundGroupSession {
    /// Encrypts the session for storage under `key`.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`InboundGroupSession::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::InboundGroupSession, &self.to_record(), key, rng)
    }

    /// Restores a session saved by [`InboundGroupSession::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(Kind::InboundGroupSession, blob, key)?)
    }

    /// The unsealed stored form: schema, then the fields.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(SCHEMA);
        write_megolm_ratchet(&mut out, &self.initial);
        write_megolm_ratchet(&mut out, &self.latest);
        out.bytes(self.signing_key.as_bytes())
            .bool(self.signing_key_verified);
        out.finish()
    }

    /// Reads [`InboundGroupSession::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        Self::from_record_with(bytes, &mut DecodedKeys::default())
    }

    /// [`InboundGroupSession::from_record`], its signing key decoded through `keys`.
    pub(crate) fn from_record_with(
        bytes: &[u8],
        keys: &mut DecodedKeys,
    ) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        read_schema(&mut input)?;
        let initial = read_megolm_ratchet(&mut input)?;
        let latest = read_megolm_ratchet(&mut input)?;
        if latest.index() < initial.index() {
            return Err(DecodeError::OutOfRange.into());
        }
        let session = Self {
            initial,
            latest,
            signing_key: keys
                .decode(&input.array()?)
                .map_err(|_| DecodeError::OutOfRange)?,
            signing_key_verified: input.bool()?,
        };
        input.finish()?;
        Ok(session)
    }
}
