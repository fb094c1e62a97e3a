//! The OMEMO stanza layer (`olmo::omemo::stanza`): XEP-0384-style examples of both versions,
//! namespace forms (declared, inherited, prefixed), quoting and whitespace, every error, the
//! limits, serialize → parse round trips as properties, and mutated input that must never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bundle;
mod device_list;
mod encrypted;
mod envelope;
mod errors;
mod properties;

use std::convert::Infallible;

use base64ct::{Base64, Encoding};

/// `0x01 0x02 0x03 0x04`.
pub const B4: &str = "AQIDBA==";
/// `0x00..0x20`, a stand-in for a 32-byte key.
pub const B32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// `0x05 ‖ 0x00..0x20`, a stand-in for an OMEMO 0.3 public key.
pub const B33: &str = "BQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
/// `0x00..0x0c`, a stand-in for a GCM IV.
pub const B12: &str = "AAECAwQFBgcICQoL";
/// `0x00..0x40`, a stand-in for a signature.
pub const B64: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

/// Decodes padded base64 (test fixtures only).
pub fn b64(text: &str) -> Vec<u8> {
    Base64::decode_vec(text).unwrap()
}

/// The first `n` bytes `0, 1, 2, …`.
pub fn seq(n: u8) -> Vec<u8> {
    (0..n).collect()
}

/// A deterministic generator (splitmix64) for the padding tests.
pub struct TestRng(pub u64);

impl rand_core::TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}
