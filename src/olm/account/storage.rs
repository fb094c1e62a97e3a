//! The account's stored form (schema 1).

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::Account;
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::olm::one_time_keys::{KeyId, MAX_ONE_TIME_KEYS, OneTimeKey, OneTimeKeys};
use crate::persist::fields::{read_signing_key, write_signing_key};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};
use crate::ratchet::storage::{read_key_pair, write_key_pair};

const SCHEMA: u32 = 1;

impl Account {
    /// Encrypts the account for storage under `key`.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`Account::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::Account, &self.to_record(), key, rng)
    }

    /// Restores an account saved by [`Account::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(Kind::Account, blob, key)?)
    }

    /// The unsealed stored form: schema, then the fields.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(SCHEMA);
        write_signing_key(&mut out, &self.signing_key);
        write_key_pair(&mut out, &self.identity_key);
        let keys = &self.one_time_keys;
        out.u32(keys.last_key_id).u32(keys.keys.len() as u32);
        for key in &keys.keys {
            write_one_time_key(&mut out, key);
        }
        for fallback in [&keys.fallback, &keys.previous_fallback] {
            out.bool(fallback.is_some());
            if let Some(key) = fallback {
                write_one_time_key(&mut out, key);
            }
        }
        out.finish()
    }

    /// Reads [`Account::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        match input.u32()? {
            1 => {}
            other => return Err(PersistError::UnsupportedVersion(other)),
        }
        let signing_key = read_signing_key(&mut input)?;
        let identity_key = read_key_pair(&mut input)?;
        let mut keys = OneTimeKeys {
            last_key_id: input.u32()?,
            ..OneTimeKeys::default()
        };
        for _ in 0..input.count(MAX_ONE_TIME_KEYS)? {
            keys.keys.push(read_one_time_key(&mut input)?);
        }
        keys.fallback = read_optional_key(&mut input)?;
        keys.previous_fallback = read_optional_key(&mut input)?;
        input.finish()?;
        Ok(Self {
            signing_key,
            identity_key,
            one_time_keys: keys,
        })
    }
}

fn write_one_time_key(out: &mut ByteWriter, key: &OneTimeKey) {
    out.u32(key.id.0).bool(key.published);
    write_key_pair(out, &key.key);
}

fn read_one_time_key(input: &mut ByteReader<'_>) -> Result<OneTimeKey, DecodeError> {
    let id = KeyId(input.u32()?);
    let published = input.bool()?;
    let key = read_key_pair(input)?;
    Ok(OneTimeKey { id, key, published })
}

fn read_optional_key(input: &mut ByteReader<'_>) -> Result<Option<OneTimeKey>, DecodeError> {
    if input.bool()? {
        read_one_time_key(input).map(Some)
    } else {
        Ok(None)
    }
}
