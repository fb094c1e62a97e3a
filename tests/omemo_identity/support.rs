//! Fixtures: deterministic randomness, seeded identities, and typed calls into the libxeddsa peer.

use std::convert::Infallible;

use curve25519_dalek::scalar::{Scalar, clamp_integer};
use olmo::crypto::{Curve25519PublicKey, Curve25519SecretKey, Ed25519KeyPair, Ed25519PublicKey};
use serde_json::{Value, json};

use crate::common::hex::{hex, unhex};
use crate::common::peer::Peer;
pub use crate::common::rng::TestRng;

/// Hands out one fixed 64-byte Z: all the XEdDSA signer asks for.
pub struct FixedNonce(pub [u8; 64]);

impl rand_core::TryRng for FixedNonce {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        panic!("the signer only fills 64 bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        panic!("the signer only fills 64 bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.copy_from_slice(&self.0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedNonce {}

/// An identity made from a seed, as python-omemo keeps them.
pub struct Identity {
    pub seed: [u8; 32],
    pub secret: Curve25519SecretKey,
    pub ed: Ed25519PublicKey,
    pub curve: Curve25519PublicKey,
}

impl Identity {
    pub fn sign_bit(&self) -> bool {
        self.ed.as_bytes()[31] & 0x80 != 0
    }

    /// Bit 7 of byte 63 of an in-signature XEdDSA signature by this identity.
    pub fn sign_mask(&self) -> u8 {
        self.ed.as_bytes()[31] & 0x80
    }

    /// The clamped X25519 scalar reduced mod q: the spec's `a` before any negation.
    pub fn reduced_scalar(&self) -> [u8; 32] {
        Scalar::from_bytes_mod_order(clamp_integer(*self.secret.to_bytes())).to_bytes()
    }
}

/// Sixteen identities; both Edwards sign bits occur among them.
pub fn identities() -> Vec<Identity> {
    let mut rng = TestRng::new(0x0e0e);
    let all: Vec<Identity> = (0..16)
        .map(|_| {
            let seed = rng.bytes::<32>();
            let pair = Ed25519KeyPair::from_seed(&seed);
            let secret = pair.to_curve25519_secret();
            let curve = secret.public_key();
            let ed = pair.public_key();
            Identity {
                seed,
                secret,
                ed,
                curve,
            }
        })
        .collect();
    assert!(all.iter().any(Identity::sign_bit) && !all.iter().all(Identity::sign_bit));
    all
}

fn field<const N: usize>(response: &Value, name: &str) -> [u8; N] {
    let text = response[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {response}"));
    unhex(text).try_into().unwrap()
}

/// The libxeddsa peer, one typed method per op (see tests/peers/xeddsa_peer.py).
pub struct Lib(Peer);

impl Lib {
    pub fn start() -> Lib {
        Lib(Peer::xeddsa())
    }

    /// `seed_to_priv`, `seed_to_ed25519_pub`, `priv_to_curve25519_pub`.
    pub fn seed_info(&mut self, seed: &[u8; 32]) -> ([u8; 32], [u8; 32], [u8; 32]) {
        let info = self.0.call(json!({"op": "seed_info", "seed": hex(seed)}));
        let name = ["priv", "ed25519_pub", "curve25519_pub"];
        (
            field(&info, name[0]),
            field(&info, name[1]),
            field(&info, name[2]),
        )
    }

    /// `ed25519_pub_to_curve25519_pub`; `Err` holds the peer's exception.
    pub fn ed_to_curve(&mut self, ed: &[u8; 32]) -> Result<[u8; 32], String> {
        let request = json!({"op": "ed25519_to_curve25519", "ed25519_pub": hex(ed)});
        self.0
            .try_call(request)
            .map(|response| field(&response, "curve25519_pub"))
    }

    /// `curve25519_pub_to_ed25519_pub(u, set_sign_bit)`.
    pub fn lift(&mut self, curve: &Curve25519PublicKey, sign: bool) -> [u8; 32] {
        let u = hex(curve.as_bytes());
        let request =
            json!({"op": "curve25519_to_ed25519", "curve25519_pub": u, "set_sign_bit": sign});
        field(&self.0.call(request), "ed25519_pub")
    }

    /// `priv_force_sign(priv, False)`: x3dh's negation for Curve25519 identities.
    pub fn force_sign_zero(&mut self, priv_key: &[u8; 32]) -> [u8; 32] {
        let request =
            json!({"op": "priv_force_sign", "priv": hex(priv_key), "set_sign_bit": false});
        field(&self.0.call(request), "priv")
    }

    /// `ed25519_priv_sign(priv, message, nonce)`.
    pub fn priv_sign(&mut self, key: &[u8; 32], message: &[u8], z: Option<&[u8; 64]>) -> [u8; 64] {
        let nonce = z.map(|z| hex(z));
        let request =
            json!({"op": "priv_sign", "priv": hex(key), "message": hex(message), "nonce": nonce});
        field(&self.0.call(request), "signature")
    }

    /// `ed25519_seed_sign(seed, message)`: plain RFC 8032.
    pub fn seed_sign(&mut self, seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
        let request = json!({"op": "seed_sign", "seed": hex(seed), "message": hex(message)});
        field(&self.0.call(request), "signature")
    }

    pub fn verify(&mut self, ed: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
        let (ed, message, sig) = (hex(ed), hex(message), hex(sig));
        let request =
            json!({"op": "verify", "ed25519_pub": ed, "message": message, "signature": sig});
        self.0.call(request)["valid"].as_bool().unwrap()
    }

    /// oldmemo's bundle check: lift `u` with the signature's bit 7, clear that bit, verify.
    pub fn oldmemo_verify(
        &mut self,
        curve: &Curve25519PublicKey,
        message: &[u8],
        sig: &[u8; 64],
    ) -> bool {
        let ed = self.lift(curve, sig[63] & 0x80 != 0);
        let mut cleared = *sig;
        cleared[63] &= 0x7f;
        self.verify(&ed, message, &cleared)
    }

    pub fn x25519(&mut self, priv_key: &[u8; 32], curve: &Curve25519PublicKey) -> [u8; 32] {
        let request =
            json!({"op": "x25519", "priv": hex(priv_key), "curve25519_pub": hex(curve.as_bytes())});
        field(&self.0.call(request), "shared")
    }
}
