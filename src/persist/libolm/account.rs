//! libolm's Account pickle, version 4.
//!
//! `u32 version ‖ Ed25519 public(32) ‖ expanded secret(64) ‖ Curve25519 public(32) ‖ secret(32) ‖
//! u32 count ‖ {u32 id, u8 published, public, secret}* (newest first) ‖ u8 fallback count (0..2) ‖
//! current, previous fallback keys ‖ u32 last key id`. Integers are big-endian.

use super::{LibolmPickleError, decrypt, encrypt};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, Curve25519SecretKey, Ed25519KeyPair};
use crate::olm::{Account, KeyId, MAX_ONE_TIME_KEYS, OneTimeKey, OneTimeKeys};

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
            // libolm lists the newest first; we keep the oldest first.
            one_time_keys
                .keys
                .push_front(read_one_time_key(&mut input)?);
        }
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

/// An Ed25519 key pair as libolm writes it: public key, then the expanded secret (libolm keeps
/// no seed), checked against each other on read.
pub(super) fn read_signing_key(
    input: &mut ByteReader<'_>,
) -> Result<Ed25519KeyPair, LibolmPickleError> {
    let public = input.array::<32>()?;
    let key = Ed25519KeyPair::from_expanded(&*input.secret::<64>()?);
    if key.public_key().as_bytes() != &public {
        return Err(LibolmPickleError::InvalidKey);
    }
    Ok(key)
}

pub(super) fn write_signing_key(out: &mut ByteWriter, key: &Ed25519KeyPair) {
    out.bytes(key.public_key().as_bytes())
        .bytes(&*key.expanded());
}

/// libolm writes a key pair public first.
pub(super) fn read_key_pair(
    input: &mut ByteReader<'_>,
) -> Result<Curve25519KeyPair, LibolmPickleError> {
    let public = Curve25519PublicKey::from_bytes(input.array()?);
    let secret = Curve25519SecretKey::from_bytes(&*input.secret::<32>()?);
    // The pickle's MAC vouches for the pair; recomputing every public key would make an import
    // of a full account cost a hundred base-point multiplications.
    Ok(Curve25519KeyPair::from_parts_unchecked(secret, public))
}

pub(super) fn write_key_pair(out: &mut ByteWriter, key: &Curve25519KeyPair) {
    out.bytes(key.public_key().as_bytes())
        .bytes(&*key.secret().to_bytes());
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
