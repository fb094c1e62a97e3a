//! The Olm session's stored form (schema 1).

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{Session, SessionKeys};
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::Curve25519PublicKey;
use crate::persist::{Kind, PersistError, StorageKey, open, seal};
use crate::ratchet::DoubleRatchet;

const SCHEMA: u32 = 1;

impl Session {
    /// Encrypts the session for storage under `key`.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`Session::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::Session, &self.to_record(), key, rng)
    }

    /// Restores a session saved by [`Session::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(Kind::Session, blob, key)?)
    }

    /// The unsealed stored form: schema, then the fields.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(SCHEMA)
            .bytes(self.keys.identity_key.as_bytes())
            .bytes(self.keys.base_key.as_bytes())
            .bytes(self.keys.one_time_key.as_bytes())
            .bool(self.received_message);
        self.ratchet.write_to(&mut out);
        out.finish()
    }

    /// Reads [`Session::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        match input.u32()? {
            SCHEMA => {}
            other => return Err(PersistError::UnsupportedVersion(other)),
        }
        let keys = SessionKeys {
            identity_key: Curve25519PublicKey::from_bytes(input.array()?),
            base_key: Curve25519PublicKey::from_bytes(input.array()?),
            one_time_key: Curve25519PublicKey::from_bytes(input.array()?),
        };
        let received_message = input.bool()?;
        let ratchet = DoubleRatchet::read_from(&mut input)?;
        input.finish()?;
        Ok(Self {
            keys,
            ratchet,
            received_message,
        })
    }
}
