//! HKDF-SHA-256, HMAC-SHA-256 and SHA-256 over borrowed parts, without intermediate copies.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::block_api::compress256;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

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
/// thousand per jump, and the Olm/OMEMO chain step, up to the profile's gap per message (what a
/// forger can make a receiver walk). With the sizes fixed, HMAC is four SHA-256 compressions,
/// two of which depend only on the key; calling them directly skips the generic key and buffer
/// handling, keeping the keyed states lets one key derive several parts, and [`Self::rekey`]
/// lets a walk reuse one value, so its scratch block and states are wiped once, on drop, rather
/// than at every step (the byte-wise wiping cost as much as a compression). Equal to
/// [`hmac_sha256`] (tested).
pub(crate) struct ByteHmac {
    inner: [u32; 8],
    outer: [u32; 8],
    /// The state being compressed.
    work: [u32; 8],
    /// The block being compressed: a key pad, then a message block.
    block: [u8; 64],
}

impl ByteHmac {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let mut hmac = Self {
            inner: SHA256_IV,
            outer: SHA256_IV,
            work: SHA256_IV,
            block: [0; 64],
        };
        hmac.rekey(key);
        hmac
    }

    /// Keys this value anew (the two key-only compressions).
    pub(crate) fn rekey(&mut self, key: &[u8; 32]) {
        self.block = [0x36; 64];
        self.block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        self.inner = SHA256_IV;
        compress256(&mut self.inner, std::slice::from_ref(&self.block));
        self.block.iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5c);
        self.outer = SHA256_IV;
        compress256(&mut self.outer, std::slice::from_ref(&self.block));
    }

    pub(crate) fn mac(&mut self, byte: u8) -> [u8; 32] {
        self.work = self.inner;
        self.block = [0; 64];
        self.block[0] = byte;
        self.block[1] = 0x80;
        self.block[56..].copy_from_slice(&((64u64 + 1) * 8).to_be_bytes());
        compress256(&mut self.work, std::slice::from_ref(&self.block));

        self.block = [0; 64];
        for (chunk, word) in self.block.chunks_exact_mut(4).zip(self.work.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        self.block[32] = 0x80;
        self.block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        self.work = self.outer;
        compress256(&mut self.work, std::slice::from_ref(&self.block));

        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.work.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

impl Zeroize for ByteHmac {
    fn zeroize(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
        self.work.zeroize();
        self.block.zeroize();
    }
}

impl Drop for ByteHmac {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for ByteHmac {}

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
            let mut reused = ByteHmac::new(&[0xAA; 32]);
            reused.rekey(&key);
            for byte in [0, 1, round] {
                assert_eq!(reused.mac(byte), hmac_sha256(&key, &[&[byte]]));
            }
        }
    }

    #[test]
    fn the_fixed_size_hmac_wipes_its_states_and_scratch() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<ByteHmac>();
        let mut hmac = ByteHmac::new(&[7; 32]);
        hmac.mac(1);
        hmac.zeroize();
        assert_eq!(
            (hmac.inner, hmac.outer, hmac.work),
            ([0; 8], [0; 8], [0; 8])
        );
        assert_eq!(hmac.block, [0; 64]);
    }
}
