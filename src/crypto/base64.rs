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

/// Decodes public base64 (a ciphertext as it travels, never a key): what [`decode`] gives,
/// through a lookup table, which is not constant-time. Canonical unpadded text (all there is in
/// a Matrix event) is decoded here; anything else (padding, a character outside the alphabet,
/// a length or last character no encoder writes) goes to [`decode`], so the errors, and what
/// is accepted, are its own. `base64ct` was a fiftieth of `olmo matrix decrypt`'s CPU.
pub fn decode_public(text: &str) -> Result<Vec<u8>, KeyError> {
    decode_canonical(text.as_bytes()).map_or_else(|| decode(text), Ok)
}

/// The value of each base64 character, [`NOT_BASE64`] for every other byte.
const VALUES: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut values = [NOT_BASE64; 256];
    let mut i = 0;
    while i < 64 {
        values[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    values
};
const NOT_BASE64: u8 = 0xff;

/// Canonical unpadded base64 decoded, or `None` when the text is not that.
fn decode_canonical(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(decoded_length_bound(text.len()));
    let mut quads = text.chunks_exact(4);
    for quad in &mut quads {
        let [a, b, c, d] = [0, 1, 2, 3].map(|i| VALUES[quad[i] as usize]);
        // A value past 63 is NOT_BASE64.
        if (a | b | c | d) & 0xc0 != 0 {
            return None;
        }
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        out.extend_from_slice(&n.to_be_bytes()[1..]);
    }
    let rest: Vec<u8> = quads
        .remainder()
        .iter()
        .map(|&ch| VALUES[ch as usize])
        .collect();
    if rest.iter().any(|&v| v & 0xc0 != 0) {
        return None;
    }
    match *rest.as_slice() {
        [] => {}
        // The bits past the last byte must be zero, as an encoder writes them.
        [a, b] if b & 0x0f == 0 => out.push(a << 2 | b >> 4),
        [a, b, c] if c & 0x03 == 0 => {
            out.push(a << 2 | b >> 4);
            out.push(b << 4 | c >> 2);
        }
        _ => return None,
    }
    Some(out)
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

    /// The table decoder gives what `base64ct` gives, for every text: encodings of random
    /// bytes, and random texts of base64 characters, padding and a few others.
    #[test]
    fn public_decoding_is_decode() {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        for length in 0..200usize {
            let bytes: Vec<u8> = (0..length).map(|_| rng.random()).collect();
            let text = encode(&bytes);
            assert_eq!(decode_public(&text).unwrap(), bytes);
            assert_eq!(decode_public(&text), decode(&text));
        }
        let characters =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/AQgw=-_ !";
        for _ in 0..200_000 {
            let length = rng.random_range(0..12);
            let text: String = (0..length)
                .map(|_| characters[rng.random_range(0..characters.len())] as char)
                .collect();
            assert_eq!(decode_public(&text), decode(&text), "{text:?}");
        }
        for text in [
            "", "A", "AA", "AB", "AAA", "AAB", "AAE", "AAE=", "QQ", "QR", "/w", "/x", "é",
        ] {
            assert_eq!(decode_public(text), decode(text), "{text:?}");
        }
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
