//! The OMEMO stanza layer (`olmo::omemo::stanza`): XEP-0384-style examples of both versions,
//! namespace forms (declared, inherited, prefixed), quoting and whitespace, every error, the
//! limits, serialize → parse round trips as properties, and mutated input that must never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bundle;
#[path = "../common/mod.rs"]
mod common;
mod device_list;
mod encrypted;
mod envelope;
mod errors;
mod hostile;
mod properties;

use base64ct::{Base64, Encoding};
use common::rng::{TestRng, U32Half};

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

/// The shared splitmix64 generator, for the padding tests, with `next_u32` the high half of
/// each word (padding lengths and characters are drawn with `next_u32`).
pub fn test_rng(seed: u64) -> TestRng {
    TestRng::with_u32_half(seed, U32Half::High)
}
