//! The binary file inside the armour:
//! `0x01 ‖ salt[16] ‖ iv[16] ‖ rounds: u32 BE ‖ AES-256-CTR(plaintext) ‖ HMAC-SHA-256[32]`.
//! [`seal`] writes it; [`Envelope`] reads it, checking the MAC before anything is decrypted.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{KEY_EXPORT_MAX_ROUNDS, KeyExportError};
use crate::crypto::{aes256_ctr64_xor, aes256_ctr128_xor, hmac_sha256, pbkdf2_sha512};

/// The only format version.
pub(super) const VERSION: u8 = 1;
pub(super) const SALT_LENGTH: usize = 16;
pub(super) const IV_LENGTH: usize = 16;
/// Version, salt, IV and round count.
const HEADER_LENGTH: usize = 1 + SALT_LENGTH + IV_LENGTH + 4;
const MAC_LENGTH: usize = 32;
/// The AES block: one step of the CTR counter.
const BLOCK_LENGTH: usize = 16;

/// Which part of the IV block the CTR counter runs over.
#[derive(Clone, Copy)]
pub(super) enum Counter {
    /// The whole 128-bit block, big-endian (matrix-nio, matrix-rust-sdk).
    Full128,
    /// The low 64 bits only, wrapping without carry (Element, WebCrypto `length: 64`).
    Low64,
}

/// The fields of a decoded file; borrowed from its bytes.
pub(super) struct Envelope<'a> {
    salt: &'a [u8],
    iv: [u8; IV_LENGTH],
    rounds: u32,
    /// Every byte before the MAC: what the MAC covers.
    authenticated: &'a [u8],
    ciphertext: &'a [u8],
    mac: &'a [u8],
}

impl<'a> Envelope<'a> {
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Self, KeyExportError> {
        let Some(&version) = bytes.first() else {
            return Err(KeyExportError::TooShort);
        };
        if version != VERSION {
            return Err(KeyExportError::UnsupportedVersion(version));
        }
        if bytes.len() < HEADER_LENGTH + MAC_LENGTH {
            return Err(KeyExportError::TooShort);
        }
        let (authenticated, mac) = bytes.split_at(bytes.len() - MAC_LENGTH);
        let (header, ciphertext) = authenticated.split_at(HEADER_LENGTH);
        let (salt, rest) = header[1..].split_at(SALT_LENGTH);
        let (iv, rounds) = rest.split_at(IV_LENGTH);
        let mut iv_bytes = [0; IV_LENGTH];
        iv_bytes.copy_from_slice(iv);
        let mut rounds_bytes = [0; 4];
        rounds_bytes.copy_from_slice(rounds);
        let rounds = u32::from_be_bytes(rounds_bytes);
        if !(1..=KEY_EXPORT_MAX_ROUNDS).contains(&rounds) {
            return Err(KeyExportError::Rounds(rounds));
        }
        Ok(Self {
            salt,
            iv: iv_bytes,
            rounds,
            authenticated,
            ciphertext,
            mac,
        })
    }

    /// Derives the keys and checks the MAC in constant time.
    pub(super) fn authenticate(&self, passphrase: &str) -> Result<ExportKeys, KeyExportError> {
        let keys = ExportKeys::derive(passphrase, self.salt, self.rounds);
        let expected = keys.mac(self.authenticated);
        if bool::from(expected.ct_eq(self.mac)) {
            Ok(keys)
        } else {
            Err(KeyExportError::Mac)
        }
    }

    /// Whether the 64- and 128-bit counters give different keystreams for this ciphertext: only
    /// if the IV's low 64 bits wrap before its last block.
    pub(super) fn counters_disagree(&self) -> bool {
        let mut low = [0; 8];
        low.copy_from_slice(&self.iv[8..]);
        let blocks = self.ciphertext.len().div_ceil(BLOCK_LENGTH) as u64;
        blocks > 0 && u64::from_be_bytes(low).checked_add(blocks - 1).is_none()
    }
}

/// The binary file: header, `plaintext` encrypted with the 128-bit counter, MAC.
pub(super) fn seal(
    plaintext: &[u8],
    passphrase: &str,
    rounds: u32,
    salt: &[u8; SALT_LENGTH],
    iv: &[u8; IV_LENGTH],
) -> Vec<u8> {
    let keys = ExportKeys::derive(passphrase, salt, rounds);
    let mut bytes = Vec::with_capacity(HEADER_LENGTH + plaintext.len() + MAC_LENGTH);
    bytes.push(VERSION);
    bytes.extend_from_slice(salt);
    bytes.extend_from_slice(iv);
    bytes.extend_from_slice(&rounds.to_be_bytes());
    // Encrypt in a wiped copy so no plaintext lands in the returned buffer's history.
    let mut body = Zeroizing::new(plaintext.to_vec());
    keys.apply_keystream(iv, Counter::Full128, &mut body);
    bytes.extend_from_slice(&body);
    let mac = keys.mac(&bytes);
    bytes.extend_from_slice(&mac);
    bytes
}

/// `K ‖ K'` from PBKDF2, wiped on drop.
pub(super) struct ExportKeys(Zeroizing<[u8; 64]>);

impl ExportKeys {
    pub(super) fn derive(passphrase: &str, salt: &[u8], rounds: u32) -> Self {
        Self(pbkdf2_sha512(passphrase.as_bytes(), salt, rounds))
    }

    /// `K`, borrowed from the wiped buffer rather than copied out of it.
    fn aes_key(&self) -> &[u8; 32] {
        self.0.first_chunk().unwrap_or_else(|| unreachable!())
    }

    pub(super) fn mac(&self, bytes: &[u8]) -> [u8; MAC_LENGTH] {
        hmac_sha256(&self.0[32..], &[bytes])
    }

    /// Applies the AES-256-CTR keystream to `buffer` in place.
    pub(super) fn apply_keystream(
        &self,
        iv: &[u8; IV_LENGTH],
        counter: Counter,
        buffer: &mut [u8],
    ) {
        match counter {
            Counter::Full128 => aes256_ctr128_xor(self.aes_key(), iv, buffer),
            Counter::Low64 => aes256_ctr64_xor(self.aes_key(), iv, buffer),
        }
    }

    pub(super) fn decrypt(&self, envelope: &Envelope<'_>, counter: Counter) -> Zeroizing<Vec<u8>> {
        let mut plaintext = Zeroizing::new(envelope.ciphertext.to_vec());
        self.apply_keystream(&envelope.iv, counter, &mut plaintext);
        plaintext
    }
}
