//! libolm's Account pickle, version 4.
//!
//! `u32 version ‖ Ed25519 public(32) ‖ expanded secret(64) ‖ Curve25519 public(32) ‖ secret(32) ‖
//! u32 count ‖ {u32 id, u8 published, public, secret}* (newest first) ‖ u8 fallback count (0..2) ‖
//! current, previous fallback keys ‖ u32 last key id`. Integers are big-endian.

use super::Account;
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::olm::one_time_keys::{KeyId, MAX_ONE_TIME_KEYS, OneTimeKey, OneTimeKeys};
use crate::persist::libolm::fields::{
    read_key_pair, read_signing_key, write_key_pair, write_signing_key,
};
use crate::persist::libolm::{LibolmPickleError, decrypt, encrypt};

const VERSION: u32 = 4;

impl Account {
    /// Imports a libolm account pickle (version 4), encrypted under `pickle_key` (python-olm:
    /// the UTF-8 bytes of its passphrase).
    pub fn from_libolm_pickle(pickle: &str, pickle_key: &[u8]) -> Result<Self, LibolmPickleError> {
        let raw = decrypt(pickle, pickle_key)?;
        let mut input = ByteReader::new(&raw);
        match input.u32()? {
            VERSION => {}
            other => return Err(LibolmPickleError::UnsupportedVersion(other)),
        }
        let signing_key = read_signing_key(&mut input)?;
        let identity_key = read_key_pair(&mut input)?;
        let mut one_time_keys = OneTimeKeys::default();
        for _ in 0..input.count(MAX_ONE_TIME_KEYS)? {
            one_time_keys.keys.push(read_one_time_key(&mut input)?);
        }
        // libolm lists the newest first; we keep the oldest first.
        one_time_keys.keys.reverse();
        let fallback_count = input.u8()?;
        if fallback_count > 2 {
            return Err(DecodeError::OutOfRange.into());
        }
        if fallback_count >= 1 {
            one_time_keys.fallback = Some(read_one_time_key(&mut input)?);
        }
        if fallback_count == 2 {
            one_time_keys.previous_fallback = Some(read_one_time_key(&mut input)?);
        }
        one_time_keys.last_key_id = input.u32()?;
        input.finish()?;
        Ok(Self {
            signing_key,
            identity_key,
            one_time_keys,
        })
    }

    /// Exports the account as a libolm version 4 pickle under `pickle_key`.
    pub fn to_libolm_pickle(&self, pickle_key: &[u8]) -> String {
        let mut out = ByteWriter::default();
        out.u32(VERSION);
        write_signing_key(&mut out, &self.signing_key);
        write_key_pair(&mut out, &self.identity_key);
        let keys = &self.one_time_keys;
        out.u32(keys.keys.len() as u32);
        for key in keys.keys.iter().rev() {
            write_one_time_key(&mut out, key);
        }
        let fallbacks: Vec<&OneTimeKey> = keys
            .fallback
            .iter()
            .chain(&keys.previous_fallback)
            .collect();
        out.u8(fallbacks.len() as u8);
        for key in fallbacks {
            write_one_time_key(&mut out, key);
        }
        out.u32(keys.last_key_id);
        encrypt(&out.finish(), pickle_key)
    }
}

fn read_one_time_key(input: &mut ByteReader<'_>) -> Result<OneTimeKey, LibolmPickleError> {
    let id = KeyId(input.u32()?);
    let published = input.bool()?;
    let key = read_key_pair(input)?;
    Ok(OneTimeKey { id, key, published })
}

fn write_one_time_key(out: &mut ByteWriter, key: &OneTimeKey) {
    out.u32(key.id.0).bool(key.published);
    write_key_pair(out, &key.key);
}
