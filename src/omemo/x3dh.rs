//! X3DH, the key agreement that starts an OMEMO session (both versions):
//! `SK = HKDF(salt = 0³², 0xFF³² ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info, 32)` with
//! DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B), DH4 = DH(EK_A, OPK_B).
//! The initiator's ratchet then starts against SPK_B, which is the responder's first ratchet key.

use zeroize::Zeroizing;

use super::identity::DeviceIdentity;
use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, KeyError, SharedSecret, hkdf_sha256};

/// The curve's "F" prefix: 32 bytes of 0xFF keep the input from being a valid DH output.
const PREFIX: [u8; 32] = [0xff; 32];
const ZERO_SALT: [u8; 32] = [0; 32];

/// The initiator's side: our identity and ephemeral (base) key against the responder's
/// identity, signed pre-key and one-time pre-key.
pub(crate) fn initiate(
    info: &[u8],
    identity: &DeviceIdentity,
    base_key: &Curve25519KeyPair,
    their_identity: &Curve25519PublicKey,
    their_signed_pre_key: &Curve25519PublicKey,
    their_pre_key: Option<&Curve25519PublicKey>,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut secrets = vec![
        identity.diffie_hellman(their_signed_pre_key)?,
        base_key.diffie_hellman(their_identity)?,
        base_key.diffie_hellman(their_signed_pre_key)?,
    ];
    if let Some(pre_key) = their_pre_key {
        secrets.push(base_key.diffie_hellman(pre_key)?);
    }
    Ok(derive(info, &secrets))
}

/// The responder's side of [`initiate`].
pub(crate) fn respond(
    info: &[u8],
    identity: &DeviceIdentity,
    signed_pre_key: &Curve25519KeyPair,
    pre_key: Option<&Curve25519KeyPair>,
    their_identity: &Curve25519PublicKey,
    their_base_key: &Curve25519PublicKey,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut secrets = vec![
        signed_pre_key.diffie_hellman(their_identity)?,
        identity.diffie_hellman(their_base_key)?,
        signed_pre_key.diffie_hellman(their_base_key)?,
    ];
    if let Some(pre_key) = pre_key {
        secrets.push(pre_key.diffie_hellman(their_base_key)?);
    }
    Ok(derive(info, &secrets))
}

fn derive(info: &[u8], secrets: &[SharedSecret]) -> Zeroizing<[u8; 32]> {
    let mut input = Zeroizing::new(Vec::with_capacity(32 * (secrets.len() + 1)));
    input.extend_from_slice(&PREFIX);
    for secret in secrets {
        input.extend_from_slice(secret.as_bytes());
    }
    let mut root = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&ZERO_SALT, &input, info, root.as_mut());
    root
}
