//! Olm's triple Diffie-Hellman: `S = DH(Ia, Eb) ‖ DH(Ea, Ib) ‖ DH(Ea, Eb)` expanded with
//! HKDF("OLM_ROOT") into the first root and chain keys.

use zeroize::Zeroizing;

use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, KeyError, hkdf_sha256};

const ROOT_INFO: &[u8] = b"OLM_ROOT";

/// The first root key and chain key of a session.
pub(crate) struct InitialKeys {
    pub(crate) root_key: Zeroizing<[u8; 32]>,
    pub(crate) chain_key: Zeroizing<[u8; 32]>,
}

/// Alice's side: her identity key and fresh base key against Bob's identity and one-time key.
pub(crate) fn alice(
    identity: &Curve25519KeyPair,
    base_key: &Curve25519KeyPair,
    their_identity: &Curve25519PublicKey,
    their_one_time: &Curve25519PublicKey,
) -> Result<InitialKeys, KeyError> {
    let first = identity.diffie_hellman(their_one_time)?;
    let second = base_key.diffie_hellman(their_identity)?;
    let third = base_key.diffie_hellman(their_one_time)?;
    Ok(expand(&[
        first.as_bytes(),
        second.as_bytes(),
        third.as_bytes(),
    ]))
}

/// Bob's side: the mirrored products, in the same order.
pub(crate) fn bob(
    identity: &Curve25519KeyPair,
    one_time: &Curve25519KeyPair,
    their_identity: &Curve25519PublicKey,
    their_base_key: &Curve25519PublicKey,
) -> Result<InitialKeys, KeyError> {
    let first = one_time.diffie_hellman(their_identity)?;
    let second = identity.diffie_hellman(their_base_key)?;
    let third = one_time.diffie_hellman(their_base_key)?;
    Ok(expand(&[
        first.as_bytes(),
        second.as_bytes(),
        third.as_bytes(),
    ]))
}

fn expand(products: &[&[u8; 32]; 3]) -> InitialKeys {
    let mut secret = Zeroizing::new([0u8; 96]);
    for (chunk, product) in secret.chunks_exact_mut(32).zip(products) {
        chunk.copy_from_slice(*product);
    }
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf_sha256(&[0; 32], secret.as_ref(), ROOT_INFO, okm.as_mut());
    let (root_key, chain_key) = crate::ratchet::keys::split(&okm);
    InitialKeys {
        root_key,
        chain_key,
    }
}
