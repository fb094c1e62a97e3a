//! Payload encryption: the message body is encrypted once, and only its key material goes
//! through each device's ratchet.
//!
//! - OMEMO 2: a random 32-byte key, HKDF(zero, key, "OMEMO Payload", 80) → AES-256-CBC key,
//!   HMAC key and IV; the SCE envelope is encrypted with AES-256-CBC and authenticated with a
//!   16-byte HMAC. Key material = key ‖ HMAC (48 bytes).
//! - OMEMO 0.3: AES-128-GCM with a random 16-byte key and 12-byte IV (sent in `<iv>`); key
//!   material = key ‖ tag (32 bytes), the payload is the ciphertext without its tag. Older
//!   clients put the tag after the ciphertext and send a 16-byte key, or use 16-byte IVs;
//!   both are read.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, Nonce, Tag};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{CipherError, CipherKeys};

/// HKDF info of OMEMO 2's payload keys.
const PAYLOAD_INFO: &[u8] = b"OMEMO Payload";
/// OMEMO 2's payload HMAC length.
const OMEMO2_MAC_LENGTH: usize = 16;
/// The largest payload accepted (XMPP servers cap stanzas near this).
pub const MAX_PAYLOAD_LENGTH: usize = 256 * 1024;

/// Why a payload could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The key material has the wrong length for the version.
    #[error("key material of {0} bytes")]
    KeyMaterialLength(usize),
    /// The IV has the wrong length.
    #[error("an IV of {0} bytes")]
    IvLength(usize),
    /// The payload is larger than [`MAX_PAYLOAD_LENGTH`] or too short to hold a tag.
    #[error("a payload of {0} bytes")]
    PayloadLength(usize),
    /// The payload's MAC or GCM tag does not verify, or its padding is invalid.
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// An encrypted OMEMO 2 payload and the key material that opens it.
pub struct Omemo2Payload {
    /// The AES-256-CBC ciphertext (the `<payload>` element's content).
    pub ciphertext: Vec<u8>,
    /// Key ‖ HMAC, 48 bytes: what each device's ratchet encrypts.
    pub key_material: Zeroizing<Vec<u8>>,
}

/// Encrypts an OMEMO 2 payload (an SCE envelope).
pub fn encrypt_omemo2(plaintext: &[u8], rng: &mut impl CryptoRng) -> Omemo2Payload {
    let mut key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(key.as_mut());
    let keys = CipherKeys::derive(key.as_ref(), PAYLOAD_INFO);
    let ciphertext = keys.encrypt(plaintext);
    let mac = keys.mac(&[&ciphertext]);
    let mut key_material = Zeroizing::new(Vec::with_capacity(48));
    key_material.extend_from_slice(key.as_ref());
    key_material.extend_from_slice(&mac[..OMEMO2_MAC_LENGTH]);
    Omemo2Payload {
        ciphertext,
        key_material,
    }
}

/// Decrypts an OMEMO 2 payload: the HMAC is checked before anything is decrypted.
pub fn decrypt_omemo2(
    key_material: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    let (key, mac) = key_material
        .split_at_checked(32)
        .filter(|(_, mac)| mac.len() == OMEMO2_MAC_LENGTH)
        .ok_or(PayloadError::KeyMaterialLength(key_material.len()))?;
    if ciphertext.len() > MAX_PAYLOAD_LENGTH {
        return Err(PayloadError::PayloadLength(ciphertext.len()));
    }
    let keys = CipherKeys::derive(key, PAYLOAD_INFO);
    keys.verify_mac(&[ciphertext], mac)?;
    Ok(keys.decrypt(ciphertext)?)
}

/// An encrypted OMEMO 0.3 payload, its IV and the key material that opens it.
pub struct Omemo03Payload {
    /// The AES-128-GCM ciphertext without its tag (the `<payload>` element's content).
    pub ciphertext: Vec<u8>,
    /// The 12-byte IV (the `<iv>` element's content).
    pub iv: [u8; 12],
    /// Key ‖ tag, 32 bytes: what each device's ratchet encrypts.
    pub key_material: Zeroizing<Vec<u8>>,
}

/// Encrypts an OMEMO 0.3 payload (the message body's UTF-8 bytes).
pub fn encrypt_omemo03(plaintext: &[u8], rng: &mut impl CryptoRng) -> Omemo03Payload {
    let mut key = Zeroizing::new([0u8; 16]);
    rng.fill_bytes(key.as_mut());
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let cipher = AesGcm::<Aes128, U12>::new(&(*key).into());
    let mut ciphertext = plaintext.to_vec();
    // Encryption only fails for plaintexts near 2^36 bytes, far beyond any stanza.
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::<U12>::from(iv),
            &[],
            ciphertext.as_mut_slice().into(),
        )
        .unwrap_or_default();
    let mut key_material = Zeroizing::new(Vec::with_capacity(32));
    key_material.extend_from_slice(key.as_ref());
    key_material.extend_from_slice(&tag);
    Omemo03Payload {
        ciphertext,
        iv,
        key_material,
    }
}

/// Decrypts an OMEMO 0.3 payload. Key material is key ‖ tag (32 bytes), or a bare 16-byte key
/// with the tag after the ciphertext (older clients); the IV is 12 or 16 bytes.
pub fn decrypt_omemo03(
    key_material: &[u8],
    iv: &[u8],
    payload: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    if payload.len() > MAX_PAYLOAD_LENGTH {
        return Err(PayloadError::PayloadLength(payload.len()));
    }
    let (key, tag, ciphertext) = match key_material.len() {
        32 => (&key_material[..16], &key_material[16..], payload),
        16 => {
            let split = payload
                .len()
                .checked_sub(16)
                .ok_or(PayloadError::PayloadLength(payload.len()))?;
            (key_material, &payload[split..], &payload[..split])
        }
        length => return Err(PayloadError::KeyMaterialLength(length)),
    };
    let key: [u8; 16] = key
        .try_into()
        .map_err(|_| PayloadError::KeyMaterialLength(key_material.len()))?;
    let key = Zeroizing::new(key);
    let tag = Tag::<U16>::try_from(tag)
        .map_err(|_| PayloadError::KeyMaterialLength(key_material.len()))?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    let opened = match iv.len() {
        12 => AesGcm::<Aes128, U12>::new(&(*key).into()).decrypt_inout_detached(
            &Nonce::<U12>::try_from(iv).map_err(|_| PayloadError::IvLength(iv.len()))?,
            &[],
            plaintext.as_mut_slice().into(),
            &tag,
        ),
        16 => AesGcm::<Aes128, U16>::new(&(*key).into()).decrypt_inout_detached(
            &Nonce::<U16>::try_from(iv).map_err(|_| PayloadError::IvLength(iv.len()))?,
            &[],
            plaintext.as_mut_slice().into(),
            &tag,
        ),
        length => return Err(PayloadError::IvLength(length)),
    };
    opened.map_err(|_| PayloadError::Cipher(CipherError::Mac))?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omemo2_round_trip_and_tamper() {
        let payload = encrypt_omemo2(b"<envelope/>", &mut rand::rng());
        assert_eq!(payload.key_material.len(), 48);
        let opened = decrypt_omemo2(&payload.key_material, &payload.ciphertext).unwrap();
        assert_eq!(&opened[..], b"<envelope/>");
        let mut bad = payload.ciphertext.clone();
        bad[0] ^= 1;
        assert_eq!(
            decrypt_omemo2(&payload.key_material, &bad).err(),
            Some(PayloadError::Cipher(CipherError::Mac))
        );
        assert_eq!(
            decrypt_omemo2(&payload.key_material[..47], &payload.ciphertext).err(),
            Some(PayloadError::KeyMaterialLength(47))
        );
    }

    #[test]
    fn omemo03_round_trip_legacy_forms_and_tamper() {
        let payload = encrypt_omemo03(b"hello", &mut rand::rng());
        let opened = decrypt_omemo03(&payload.key_material, &payload.iv, &payload.ciphertext);
        assert_eq!(&opened.unwrap()[..], b"hello");
        // Tag after the ciphertext, 16-byte key material.
        let mut joined = payload.ciphertext.clone();
        joined.extend_from_slice(&payload.key_material[16..]);
        let opened = decrypt_omemo03(&payload.key_material[..16], &payload.iv, &joined);
        assert_eq!(&opened.unwrap()[..], b"hello");
        let mut bad = payload.ciphertext.clone();
        bad[0] ^= 1;
        assert!(decrypt_omemo03(&payload.key_material, &payload.iv, &bad).is_err());
        assert_eq!(
            decrypt_omemo03(&payload.key_material, &[0; 8], &payload.ciphertext).err(),
            Some(PayloadError::IvLength(8))
        );
    }
}
