//! Base64 as Matrix writes it: standard alphabet, unpadded on output, padded or not on input.
//!
//! Everything goes through `base64ct`, whose encoder and decoder run in constant time, so the
//! same functions are safe for secret material (CVE-2024-45192 was libolm's table-driven base64).

use base64ct::{Base64, Base64Unpadded, Encoding};
use zeroize::{Zeroize, Zeroizing};

use super::KeyError;

/// Encodes bytes as unpadded standard base64.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    Base64Unpadded::encode_string(bytes.as_ref())
}

/// Decodes standard base64, with or without `=` padding.
pub fn decode(text: &str) -> Result<Vec<u8>, KeyError> {
    let decoded = if text.ends_with('=') {
        Base64::decode_vec(text)
    } else {
        Base64Unpadded::decode_vec(text)
    };
    decoded.map_err(|_| KeyError::Base64)
}

/// Encodes secret bytes; the result is wiped when dropped.
pub fn encode_secret(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(Base64Unpadded::encode_string(bytes))
}

/// Decodes secret base64; the result is wiped when dropped. The bytes are decoded into a
/// buffer of ours, so those decoded before an error is found are wiped too.
pub fn decode_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut buffer = Zeroizing::new(vec![0u8; decoded_length_bound(text.len())]);
    let length = decode_into(text, &mut buffer)?;
    buffer.truncate(length);
    Ok(buffer)
}

/// The most bytes `length` characters of base64 decode to.
fn decoded_length_bound(length: usize) -> usize {
    length / 4 * 3 + length % 4 * 3 / 4
}

/// Decodes into `buffer`, returning the decoded length; wipes the buffer on error.
fn decode_into(text: &str, buffer: &mut [u8]) -> Result<usize, KeyError> {
    let decoded = if text.ends_with('=') {
        Base64::decode(text, buffer)
    } else {
        Base64Unpadded::decode(text, buffer)
    };
    let length = decoded.map(<[u8]>::len);
    length.map_err(|_| {
        buffer.zeroize();
        KeyError::Base64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_padded_and_unpadded() {
        assert_eq!(decode("AAE").unwrap(), [0, 1]);
        assert_eq!(decode("AAE=").unwrap(), [0, 1]);
        assert_eq!(encode([0u8, 1]), "AAE");
        assert!(decode("AAE==").is_err());
        assert!(decode("A").is_err());
        assert!(decode("AA!E").is_err());
    }

    #[test]
    fn secret_round_trip() {
        let text = encode_secret(&[7u8; 33]);
        assert_eq!(&*decode_secret(&text).unwrap(), &[7u8; 33]);
        assert_eq!(&decode_secret("AAE=").unwrap()[..], [0, 1]);
        assert!(decode_secret("AAE==").is_err());
    }

    /// Text that is bad only at its end: the bytes decoded before it are wiped.
    #[test]
    fn a_decode_error_wipes_the_decoded_bytes() {
        let mut text = encode(b"secret secret secret");
        text.pop();
        text.push('!');
        let mut buffer = vec![0u8; decoded_length_bound(text.len())];
        assert_eq!(decode_into(&text, &mut buffer), Err(KeyError::Base64));
        assert!(buffer.iter().all(|byte| *byte == 0), "left: {buffer:?}");
        assert!(decode_secret(&text).is_err());
    }
}
