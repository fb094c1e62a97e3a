//! Fields several stored objects share.

use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::Ed25519KeyPair;
use crate::megolm::MegolmRatchet;

const SEED: u8 = 0;
const EXPANDED: u8 = 1;

/// An Ed25519 key pair: its seed when it has one (or libolm's expanded form), then the public
/// key, checked against the secret on read.
pub(crate) fn write_signing_key(out: &mut ByteWriter, key: &Ed25519KeyPair) {
    match key.seed() {
        Some(seed) => out.u8(SEED).bytes(&*seed),
        None => out.u8(EXPANDED).bytes(&*key.expanded()),
    };
    out.bytes(key.public_key().as_bytes());
}

pub(crate) fn read_signing_key(input: &mut ByteReader<'_>) -> Result<Ed25519KeyPair, DecodeError> {
    let key = match input.u8()? {
        SEED => Ed25519KeyPair::from_seed(&*input.secret::<32>()?),
        EXPANDED => Ed25519KeyPair::from_expanded(&*input.secret::<64>()?),
        _ => return Err(DecodeError::OutOfRange),
    };
    if key.public_key().as_bytes() != &input.array::<32>()? {
        return Err(DecodeError::OutOfRange);
    }
    Ok(key)
}

/// A Megolm ratchet: its 128 bytes, then its index (libolm's layout, used by both formats).
pub(crate) fn write_megolm_ratchet(out: &mut ByteWriter, ratchet: &MegolmRatchet) {
    out.bytes(ratchet.as_bytes()).u32(ratchet.index());
}

pub(crate) fn read_megolm_ratchet(
    input: &mut ByteReader<'_>,
) -> Result<MegolmRatchet, DecodeError> {
    let bytes = input.secret::<{ MegolmRatchet::LENGTH }>()?;
    Ok(MegolmRatchet::from_bytes(&bytes, input.u32()?))
}
