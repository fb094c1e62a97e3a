//! One version's pre-keys as the device's record holds them:
//!
//! `version (0: OMEMO 2, 1: 0.3) ‖ signed pre-key ‖ previous? (signed pre-key ‖ retired at) ‖
//! next pre-key id ‖ count ‖ (id ‖ key pair)* ‖ count ‖ used id*`, the pool in increasing id
//! order and the used ids oldest first, a signed pre-key being `id ‖ key pair ‖ signature (64) ‖
//! created at (u64 ms)` and a key pair its secret then its public key.

use super::{MAX_POOL_SIZE, MAX_USED_IDS, PreKeys, SignedPreKey};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::Ed25519Signature;
use crate::omemo::Version;
use crate::ratchet::storage::{read_key_pair, write_key_pair};
use crate::time::Timestamp;
use crate::vec_map::VecMap;

const OMEMO2: u8 = 0;
const OMEMO03: u8 = 1;

pub(in crate::omemo) fn write_pre_keys(out: &mut ByteWriter, keys: &PreKeys) {
    out.u8(match keys.version {
        Version::Omemo2 => OMEMO2,
        Version::Omemo03 => OMEMO03,
    });
    write_signed_pre_key(out, &keys.signed);
    out.bool(keys.previous_signed.is_some());
    if let Some((previous, retired)) = &keys.previous_signed {
        write_signed_pre_key(out, previous);
        out.u64(retired.as_millis());
    }
    out.u32(keys.next_pre_key_id).u32(keys.pool.len() as u32);
    for (id, key) in &keys.pool {
        out.u32(*id);
        write_key_pair(out, key);
    }
    out.u32(keys.used.len() as u32);
    for id in &keys.used {
        out.u32(*id);
    }
}

pub(in crate::omemo) fn read_pre_keys(input: &mut ByteReader<'_>) -> Result<PreKeys, DecodeError> {
    let version = match input.u8()? {
        OMEMO2 => Version::Omemo2,
        OMEMO03 => Version::Omemo03,
        _ => return Err(DecodeError::OutOfRange),
    };
    let signed = read_signed_pre_key(input)?;
    let previous_signed = if input.bool()? {
        let previous = read_signed_pre_key(input)?;
        Some((previous, Timestamp::from_millis(input.u64()?)))
    } else {
        None
    };
    let next_pre_key_id = input.u32()?;
    let mut pool = VecMap::new();
    for _ in 0..input.count(MAX_POOL_SIZE)? {
        let id = input.u32()?;
        // Increasing ids: a repeated one would silently replace a key.
        if pool.last_key_value().is_some_and(|(last, _)| *last >= id) {
            return Err(DecodeError::OutOfRange);
        }
        pool.insert(id, read_key_pair(input)?);
    }
    let mut used = Vec::new();
    for _ in 0..input.count(MAX_USED_IDS)? {
        used.push(input.u32()?);
    }
    Ok(PreKeys {
        version,
        signed,
        previous_signed,
        pool,
        next_pre_key_id,
        used,
    })
}

fn write_signed_pre_key(out: &mut ByteWriter, key: &SignedPreKey) {
    out.u32(key.id);
    write_key_pair(out, &key.key_pair);
    out.bytes(key.signature.as_bytes())
        .u64(key.created.as_millis());
}

fn read_signed_pre_key(input: &mut ByteReader<'_>) -> Result<SignedPreKey, DecodeError> {
    Ok(SignedPreKey {
        id: input.u32()?,
        key_pair: read_key_pair(input)?,
        signature: Ed25519Signature::from_bytes(input.array()?),
        created: Timestamp::from_millis(input.u64()?),
    })
}
