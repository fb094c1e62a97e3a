//! The message cipher shared by Olm, Megolm and both OMEMO ratchets: HKDF-SHA-256 expands a
//! secret into an AES-256 key, an HMAC-SHA-256 key and a CBC IV; AES-256-CBC with PKCS#7
//! encrypts; a truncated HMAC authenticates. Each protocol supplies its HKDF info string and
//! MAC length; the MAC is always checked, in constant time, before anything is decrypted.

use std::fmt;
use std::sync::OnceLock;

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hkdf::HkdfExtract;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::kdf::{hkdf_sha256, hmac_sha256};

/// HKDF's salt where the protocols say "zero": 32 zero bytes, as libolm passes.
const ZERO_SALT: [u8; 32] = [0; 32];

/// HKDF's extract step keyed with the zero salt. Keying HMAC costs two SHA-256 blocks that are
/// the same for every message, so they are hashed once and each derivation starts from a copy
/// (the salt is public: nothing secret is kept).
fn zero_salt_extract() -> HkdfExtract<Sha256> {
    static EXTRACT: OnceLock<HkdfExtract<Sha256>> = OnceLock::new();
    EXTRACT
        .get_or_init(|| HkdfExtract::new(Some(&ZERO_SALT)))
        .clone()
}

/// Why a ciphertext was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CipherError {
    /// The MAC does not match: the message was altered or the key is wrong.
    #[error("the message authentication code does not match")]
    Mac,
    /// The ciphertext is not whole blocks or its padding is malformed.
    #[error("the ciphertext is not a valid padded AES-CBC ciphertext")]
    Padding,
}

/// AES key, MAC key and IV for one message, expanded from a secret. Wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct CipherKeys {
    aes_key: [u8; 32],
    mac_key: [u8; 32],
    iv: [u8; 16],
}

impl CipherKeys {
    /// Expands `secret` with HKDF(salt = zero, info) into 80 bytes: key ‖ MAC key ‖ IV.
    pub fn derive(secret: &[u8], info: &[u8]) -> Self {
        let mut extract = zero_salt_extract();
        extract.input_ikm(secret);
        let (_, hkdf) = extract.finalize();
        let mut okm = Zeroizing::new([0u8; 80]);
        // 80 bytes is far below HKDF's limit of 255 * 32.
        hkdf.expand(info, okm.as_mut())
            .unwrap_or_else(|_| unreachable!());
        Self::from_okm(&okm)
    }

    /// As [`CipherKeys::derive`] with an explicit salt (libolm's pickles use an empty one).
    pub fn derive_with_salt(salt: &[u8], secret: &[u8], info: &[u8]) -> Self {
        let mut okm = Zeroizing::new([0u8; 80]);
        hkdf_sha256(salt, secret, info, okm.as_mut());
        Self::from_okm(&okm)
    }

    fn from_okm(okm: &[u8; 80]) -> Self {
        let mut keys = Self {
            aes_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        keys.aes_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..]);
        keys
    }

    /// AES-256-CBC with PKCS#7 padding.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        cbc::Encryptor::<Aes256>::new(&self.aes_key.into(), &self.iv.into())
            .encrypt_padded_vec::<Pkcs7>(plaintext)
    }

    /// Reverses [`CipherKeys::encrypt`]. Call only after [`CipherKeys::verify_mac`] succeeded.
    /// Decrypts in a buffer of ours, so a plaintext whose padding is refused is wiped as well.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let length = self.decrypt_in_place(&mut buffer)?;
        buffer.truncate(length);
        Ok(buffer)
    }

    /// Decrypts `buffer` in place and returns the plaintext's length. On a padding error the
    /// buffer holds a decrypted but refused plaintext: it is wiped before the error returns.
    fn decrypt_in_place(&self, buffer: &mut [u8]) -> Result<usize, CipherError> {
        let decryptor = cbc::Decryptor::<Aes256>::new(&self.aes_key.into(), &self.iv.into());
        let length = decryptor.decrypt_padded::<Pkcs7>(buffer).map(<[u8]>::len);
        length.map_err(|_| {
            buffer.zeroize();
            CipherError::Padding
        })
    }

    /// The full HMAC-SHA-256 of the concatenated parts; protocols truncate it.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(&self.mac_key, parts)
    }

    /// Checks a MAC truncated to `tag.len()` bytes (1..=32) in constant time.
    pub fn verify_mac(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), CipherError> {
        let full = self.mac(parts);
        let valid = !tag.is_empty() && tag.len() <= full.len();
        if valid && bool::from(full[..tag.len()].ct_eq(tag)) {
            Ok(())
        } else {
            Err(CipherError::Mac)
        }
    }
}

impl fmt::Debug for CipherKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CipherKeys(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_zero_salt_extract_derives_what_hkdf_does() {
        for secret in [&[0u8; 32][..], &[7; 32], &[1; 128], b"short"] {
            for info in [&b"OLM_KEYS"[..], b"MEGOLM_KEYS", b""] {
                let kept = CipherKeys::derive(secret, info);
                for salt in [&ZERO_SALT[..], &[]] {
                    let fresh = CipherKeys::derive_with_salt(salt, secret, info);
                    assert_eq!(
                        (kept.aes_key, kept.mac_key, kept.iv),
                        (fresh.aes_key, fresh.mac_key, fresh.iv)
                    );
                }
            }
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let keys = CipherKeys::derive(&[3; 32], b"TEST_KEYS");
        let ciphertext = keys.encrypt(b"attack at dawn");
        assert_eq!(ciphertext.len(), 16);
        let tag = keys.mac(&[b"v", &ciphertext]);
        keys.verify_mac(&[b"v", &ciphertext], &tag[..8]).unwrap();
        assert_eq!(
            keys.verify_mac(&[b"w", &ciphertext], &tag[..8]),
            Err(CipherError::Mac)
        );
        assert_eq!(
            keys.verify_mac(&[b"v", &ciphertext], &[]),
            Err(CipherError::Mac)
        );
        assert_eq!(&*keys.decrypt(&ciphertext).unwrap(), b"attack at dawn");
        assert_eq!(keys.decrypt(&ciphertext[..15]), Err(CipherError::Padding));
    }

    /// A refused padding leaves no plaintext behind: the buffer it was decrypted in is wiped.
    #[test]
    fn a_padding_error_wipes_the_decrypted_bytes() {
        let keys = CipherKeys::derive(&[3; 32], b"TEST_KEYS");
        let mut buffer = keys.encrypt(b"secret secret secret secret 1234");
        assert_eq!(buffer.len(), 48);
        // CBC: flipping a bit of the second block flips it in the third, the padding block.
        buffer[31] ^= 1;
        assert_eq!(
            keys.decrypt_in_place(&mut buffer),
            Err(CipherError::Padding)
        );
        assert!(buffer.iter().all(|byte| *byte == 0), "left: {buffer:?}");
    }
}
