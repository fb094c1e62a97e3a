//! Keys as libolm's pickles lay them out, shared by the account, session and group session
//! pickles.

use super::LibolmPickleError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, Curve25519SecretKey, Ed25519KeyPair};

/// An Ed25519 key pair as libolm writes it: public key, then the expanded secret (libolm keeps
/// no seed), checked against each other on read.
pub(crate) fn read_signing_key(
    input: &mut ByteReader<'_>,
) -> Result<Ed25519KeyPair, LibolmPickleError> {
    let public = input.array::<32>()?;
    let key = Ed25519KeyPair::from_expanded(&*input.secret::<64>()?);
    if key.public_key().as_bytes() != &public {
        return Err(LibolmPickleError::InvalidKey);
    }
    Ok(key)
}

pub(crate) fn write_signing_key(out: &mut ByteWriter, key: &Ed25519KeyPair) {
    out.bytes(key.public_key().as_bytes())
        .bytes(&*key.expanded());
}

/// libolm writes a key pair public first.
pub(crate) fn read_key_pair(
    input: &mut ByteReader<'_>,
) -> Result<Curve25519KeyPair, LibolmPickleError> {
    let public = Curve25519PublicKey::from_bytes(input.array()?);
    let secret = Curve25519SecretKey::from_bytes(&*input.secret::<32>()?);
    // The pickle's MAC vouches for the pair; recomputing every public key would make an import
    // of a full account cost a hundred base-point multiplications.
    Ok(Curve25519KeyPair::from_parts_unchecked(secret, public))
}

pub(crate) fn write_key_pair(out: &mut ByteWriter, key: &Curve25519KeyPair) {
    out.bytes(key.public_key().as_bytes())
        .bytes(&*key.secret().to_bytes());
}
