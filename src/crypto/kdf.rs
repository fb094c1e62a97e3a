//! HKDF-SHA-256, HMAC-SHA-256 and SHA-256 over borrowed parts, without intermediate copies.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::block_api::compress256;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// HMAC-SHA-256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF-SHA-256 (RFC 5869) filling `output`. An empty `salt` means the all-zero salt.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], output: &mut [u8]) {
    // Every caller asks for at most 255 * 32 bytes, the HKDF limit.
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, output)
        .unwrap_or_else(|_| unreachable!());
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// HMAC-SHA-256 under a 32-byte key, for one-byte messages: Megolm's ratchet step, up to a
/// thousand per jump. With the sizes fixed, HMAC is four SHA-256 compressions, two of which
/// depend only on the key; calling them directly skips the generic key and buffer handling
/// (a quarter of each step), and keeping the keyed states lets one key derive several parts.
/// Equal to [`hmac_sha256`] (tested); the keyed states are wiped on drop.
pub(crate) struct ByteHmac {
    inner: Zeroizing<[u32; 8]>,
    outer: Zeroizing<[u32; 8]>,
}

impl ByteHmac {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let mut pad = Zeroizing::new([0x36u8; 64]);
        pad.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        let mut inner = Zeroizing::new(SHA256_IV);
        compress256(&mut inner, &[*pad]);
        pad.iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5c);
        let mut outer = Zeroizing::new(SHA256_IV);
        compress256(&mut outer, &[*pad]);
        Self { inner, outer }
    }

    pub(crate) fn mac(&self, byte: u8) -> [u8; 32] {
        let mut state = Zeroizing::new(*self.inner);
        let mut last = Zeroizing::new([0u8; 64]);
        last[0] = byte;
        last[1] = 0x80;
        last[56..].copy_from_slice(&((64u64 + 1) * 8).to_be_bytes());
        compress256(&mut state, &[*last]);

        last.fill(0);
        for (chunk, word) in last.chunks_exact_mut(4).zip(state.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        last[32] = 0x80;
        last[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        *state = *self.outer;
        compress256(&mut state, &[*last]);

        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_size_hmac_equals_the_generic_one() {
        let mut key = [0u8; 32];
        for round in 0..64u8 {
            key = hmac_sha256(&key, &[&[round]]);
            for byte in [0, 1, 2, 3, round, 0xFF] {
                assert_eq!(ByteHmac::new(&key).mac(byte), hmac_sha256(&key, &[&[byte]]));
            }
        }
    }
}
