//! PBKDF2-HMAC-SHA-512 and raw AES-256-CTR: the primitives of passphrase-encrypted files
//! (Megolm key exports).
//!
//! Both CTR counter widths are here because writers disagree on which one the format uses; the
//! caller picks, these functions only apply the keystream.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::Sha512;
use zeroize::Zeroizing;

/// PBKDF2-HMAC-SHA-512 of `passphrase` and `salt` over `rounds` iterations: 64 bytes, wiped on
/// drop. Takes time in proportion to `rounds`; bound it before calling with an untrusted count.
pub fn pbkdf2_sha512(passphrase: &[u8], salt: &[u8], rounds: u32) -> Zeroizing<[u8; 64]> {
    let mut output = Zeroizing::new([0; 64]);
    pbkdf2::pbkdf2_hmac::<Sha512>(passphrase, salt, rounds, output.as_mut());
    output
}

/// XORs the AES-256-CTR keystream into `buffer` in place, counting over the whole 128-bit `iv`
/// block, big-endian (matrix-nio, matrix-rust-sdk). Encrypts and decrypts alike.
pub fn aes256_ctr128_xor(key: &[u8; 32], iv: &[u8; 16], buffer: &mut [u8]) {
    let applied =
        ctr::Ctr128BE::<Aes256>::new(&(*key).into(), &(*iv).into()).try_apply_keystream(buffer);
    // The counter does not run out before 2^64 blocks, more than any slice holds.
    debug_assert!(applied.is_ok());
}

/// As [`aes256_ctr128_xor`], but the counter is only the low 64 bits of `iv`, big-endian,
/// wrapping without carry into the high half (Element, WebCrypto `length: 64`).
pub fn aes256_ctr64_xor(key: &[u8; 32], iv: &[u8; 16], buffer: &mut [u8]) {
    let applied =
        ctr::Ctr64BE::<Aes256>::new(&(*key).into(), &(*iv).into()).try_apply_keystream(buffer);
    // The counter does not run out before 2^64 blocks, more than any slice holds.
    debug_assert!(applied.is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(text: &str) -> [u8; N] {
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    #[test]
    fn pbkdf2_sha512_vector() {
        let expected: [u8; 64] = hex(
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce",
        );
        assert_eq!(*pbkdf2_sha512(b"password", b"salt", 1), expected);
    }

    /// NIST SP 800-38A F.5.5 (CTR-AES256), first two blocks: the low half does not wrap, so both
    /// counters agree.
    #[test]
    fn ctr_nist_vector() {
        let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let plaintext: [u8; 32] =
            hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let expected: [u8; 32] =
            hex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5");
        for apply in [aes256_ctr128_xor, aes256_ctr64_xor] {
            let mut buffer = plaintext;
            apply(&key, &iv, &mut buffer);
            assert_eq!(buffer, expected);
            apply(&key, &iv, &mut buffer);
            assert_eq!(buffer, plaintext);
        }
    }

    #[test]
    fn counters_differ_only_after_the_low_half_wraps() {
        let key = [7; 32];
        let mut iv = [0xff; 16];
        iv[0] = 0x12;
        let (mut full, mut low) = ([0; 32], [0; 32]);
        aes256_ctr128_xor(&key, &iv, &mut full);
        aes256_ctr64_xor(&key, &iv, &mut low);
        assert_eq!(full[..16], low[..16]);
        assert_ne!(full[16..], low[16..]);
        // The 64-bit counter's second block restarts the low half at zero, high half unchanged.
        let mut wrapped_iv = iv;
        wrapped_iv[8..].fill(0);
        let mut second = [0; 16];
        aes256_ctr128_xor(&key, &wrapped_iv, &mut second);
        assert_eq!(low[16..], second);
    }
}
