//! Decoding: malformed wire messages (versions, truncation, trailing bytes, varints, key
//! lengths, sizes, garbage).

use olmo::DecodeError;
use olmo::olm::OlmMessage;

use crate::support::{
    NormalParts, PreKeyParts, TestRng, a_normal_message, bytes_field, decode_error, pre_key_setup,
    varint, varint_field,
};

#[test]
fn test_writer_matches_olmo() {
    let message = a_normal_message();
    assert_eq!(NormalParts::of(&message).encode(), message.as_bytes());
    let setup = pre_key_setup(2);
    assert_eq!(
        PreKeyParts::of(&setup.pre_key).encode(),
        setup.pre_key.as_bytes()
    );
    // And both decode again.
    OlmMessage::from_parts(1, message.as_bytes()).unwrap();
    OlmMessage::from_parts(0, setup.pre_key.as_bytes()).unwrap();
}

#[test]
fn empty_input_and_unknown_types() {
    for message_type in 0..=255u8 {
        assert!(OlmMessage::from_parts(message_type, &[]).is_err());
    }
    let message = a_normal_message();
    for message_type in 2..=255u8 {
        assert!(OlmMessage::from_parts(message_type, message.as_bytes()).is_err());
    }
    // The two kinds are not interchangeable.
    assert!(OlmMessage::from_parts(0, message.as_bytes()).is_err());
    let setup = pre_key_setup(3);
    assert!(OlmMessage::from_parts(1, setup.pre_key.as_bytes()).is_err());
}

#[test]
fn wrong_version_byte() {
    let normal = a_normal_message().to_bytes();
    let pre_key = pre_key_setup(4).pre_key.to_bytes();
    for version in (0..=255u8).filter(|&v| v != 3) {
        for (message_type, valid) in [(1, &normal), (0, &pre_key)] {
            let mut bytes = valid.clone();
            bytes[0] = version;
            assert_eq!(
                decode_error(message_type, &bytes),
                DecodeError::UnsupportedVersion(u32::from(version))
            );
        }
    }
    // The version byte of the inner message of a pre-key message is checked too.
    let mut parts = PreKeyParts::of(&pre_key_setup(4).pre_key);
    parts.message[0] = 2;
    assert_eq!(
        decode_error(0, &parts.encode()),
        DecodeError::UnsupportedVersion(2)
    );
}

#[test]
fn truncated_at_every_length() {
    let normal = a_normal_message().to_bytes();
    let pre_key = pre_key_setup(5).pre_key.to_bytes();
    for (message_type, valid) in [(1, &normal), (0, &pre_key)] {
        for length in 0..valid.len() {
            assert!(
                OlmMessage::from_parts(message_type, &valid[..length]).is_err(),
                "type {message_type} truncated to {length} of {}",
                valid.len()
            );
        }
        OlmMessage::from_parts(message_type, valid).unwrap();
    }
}

#[test]
fn trailing_bytes() {
    let normal = a_normal_message().to_bytes();
    let pre_key = pre_key_setup(6).pre_key.to_bytes();
    for (message_type, valid) in [(1, &normal), (0, &pre_key)] {
        for extra in [
            &[0u8][..],
            &[0x28, 0x01],
            &[0x08, 0x01],
            &[0x22, 0x00],
            &[0xff; 8],
            &[0; 16],
        ] {
            let mut bytes = valid.clone();
            bytes.extend_from_slice(extra);
            assert!(
                OlmMessage::from_parts(message_type, &bytes).is_err(),
                "type {message_type} with {extra:02x?} appended"
            );
        }
    }
}

#[test]
fn non_canonical_varints() {
    let parts = NormalParts::of(&a_normal_message());
    // The index with a redundant continuation byte.
    let padded_index = parts.encode_with(|out, p| {
        bytes_field(out, 1, &p.ratchet_key);
        out.push(0x10);
        out.push(0x80 | (p.index as u8 & 0x7f));
        out.push(0x00);
        bytes_field(out, 4, &p.ciphertext);
    });
    assert_eq!(
        decode_error(1, &padded_index),
        DecodeError::NonCanonicalVarint
    );
    // A padded field key.
    let padded_key = parts.encode_with(|out, p| {
        out.extend_from_slice(&[0x8a, 0x00]);
        varint(out, 32);
        out.extend_from_slice(&p.ratchet_key);
        varint_field(out, 2, u64::from(p.index));
        bytes_field(out, 4, &p.ciphertext);
    });
    assert_eq!(
        decode_error(1, &padded_key),
        DecodeError::NonCanonicalVarint
    );
    // A padded length.
    let padded_length = parts.encode_with(|out, p| {
        out.extend_from_slice(&[0x0a, 0xa0, 0x00]);
        out.extend_from_slice(&p.ratchet_key);
        varint_field(out, 2, u64::from(p.index));
        bytes_field(out, 4, &p.ciphertext);
    });
    assert_eq!(
        decode_error(1, &padded_length),
        DecodeError::NonCanonicalVarint
    );
    // An eleven-byte varint, and a ten-byte one that overflows 64 bits.
    for index_bytes in [
        &[0xffu8; 10][..],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
    ] {
        let bytes = parts.encode_with(|out, p| {
            bytes_field(out, 1, &p.ratchet_key);
            out.push(0x10);
            out.extend_from_slice(index_bytes);
            out.push(0x00);
            bytes_field(out, 4, &p.ciphertext);
        });
        assert_eq!(decode_error(1, &bytes), DecodeError::NonCanonicalVarint);
    }
    // An index that does not fit in 32 bits.
    let too_big = parts.encode_with(|out, p| {
        bytes_field(out, 1, &p.ratchet_key);
        varint_field(out, 2, 1 << 32);
        bytes_field(out, 4, &p.ciphertext);
    });
    assert_eq!(decode_error(1, &too_big), DecodeError::OutOfRange);
}

#[test]
fn wrong_key_lengths() {
    let n = NormalParts::of(&a_normal_message());
    for length in [0usize, 1, 31, 33, 64] {
        let key = vec![9u8; length];
        let bytes = n.encode_with(|o, p| {
            bytes_field(o, 1, &key);
            varint_field(o, 2, u64::from(p.index));
            bytes_field(o, 4, &p.ciphertext);
        });
        assert_eq!(
            decode_error(1, &bytes),
            DecodeError::BadLength {
                field: 1,
                expected: 32,
                actual: length
            }
        );
    }
    let k = PreKeyParts::of(&pre_key_setup(8).pre_key);
    for field in 1..=3u64 {
        for length in [0usize, 31, 33] {
            let short = vec![9u8; length];
            let bytes = k.encode_with(|o, p| {
                let pick = |f: u64, key: &[u8; 32]| {
                    if f == field {
                        short.clone()
                    } else {
                        key.to_vec()
                    }
                };
                bytes_field(o, 1, &pick(1, &p.one_time_key));
                bytes_field(o, 2, &pick(2, &p.base_key));
                bytes_field(o, 3, &pick(3, &p.identity_key));
                bytes_field(o, 4, &p.message);
            });
            assert_eq!(
                decode_error(0, &bytes),
                DecodeError::BadLength {
                    field: field as u32,
                    expected: 32,
                    actual: length
                }
            );
        }
    }
}

#[test]
fn oversized_messages() {
    const LIMIT: usize = 256 * 1024;
    let n = NormalParts::of(&a_normal_message());
    // A well-formed-looking message just over the limit (ciphertext of whole blocks).
    let mut big = n.clone();
    big.ciphertext = vec![0x55; LIMIT];
    let bytes = big.encode();
    assert!(bytes.len() > LIMIT);
    assert_eq!(decode_error(1, &bytes), DecodeError::OutOfRange);
    let mut k = PreKeyParts::of(&pre_key_setup(9).pre_key);
    k.message = bytes;
    assert_eq!(decode_error(0, &k.encode()), DecodeError::OutOfRange);
    // Exactly at the limit is still accepted.
    let mut at_limit = n.clone();
    at_limit.ciphertext = vec![0x55; LIMIT - 49];
    let bytes = at_limit.encode();
    assert_eq!(bytes.len(), LIMIT);
    OlmMessage::from_parts(1, &bytes).unwrap();
    // Plain garbage over the limit, both types.
    let garbage = vec![3u8; LIMIT + 1];
    assert_eq!(decode_error(0, &garbage), DecodeError::OutOfRange);
    assert_eq!(decode_error(1, &garbage), DecodeError::OutOfRange);
}

#[test]
fn garbage_never_panics() {
    let mut rng = TestRng::new(10);
    for length in 0..600usize {
        let mut bytes = vec![0u8; length % 200];
        rand_core::Rng::fill_bytes(&mut rng, &mut bytes);
        if length % 3 == 0 && !bytes.is_empty() {
            bytes[0] = 3;
        }
        let _ = OlmMessage::from_parts(0, &bytes);
        let _ = OlmMessage::from_parts(1, &bytes);
    }
}
