//! Decoding: missing, unknown, duplicated and misordered protobuf fields.

use olmo::DecodeError;

use crate::support::{
    NormalParts, PreKeyParts, a_normal_message, bytes_field, decode_error, pre_key_setup, varint,
    varint_field,
};

#[test]
fn missing_unknown_duplicated_and_misordered_fields() {
    let n = NormalParts::of(&a_normal_message());
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        (
            "no ratchet key",
            n.encode_with(|o, p| {
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::MissingField(1),
        ),
        (
            "no index",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::MissingField(2),
        ),
        (
            "no ciphertext",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
            }),
            DecodeError::MissingField(4),
        ),
        (
            "unknown field 3",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                varint_field(o, 3, 1);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(3),
        ),
        (
            "unknown field 5",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 4, &p.ciphertext);
                bytes_field(o, 5, b"x");
            }),
            DecodeError::UnexpectedField(5),
        ),
        (
            "field 0",
            n.encode_with(|o, p| {
                varint_field(o, 0, 0);
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(0),
        ),
        (
            "duplicated ratchet key",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(1),
        ),
        (
            "duplicated index",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                varint_field(o, 2, u64::from(p.index) + 1);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(2),
        ),
        (
            "duplicated ciphertext",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 4, &p.ciphertext);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(4),
        ),
        (
            "index before ratchet key",
            n.encode_with(|o, p| {
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 1, &p.ratchet_key);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(1),
        ),
        (
            "index as bytes",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                bytes_field(o, 2, &[p.index as u8]);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(2),
        ),
        (
            "ratchet key as varint",
            n.encode_with(|o, p| {
                varint_field(o, 1, 5);
                varint_field(o, 2, u64::from(p.index));
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(1),
        ),
        (
            "ciphertext as varint",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                varint_field(o, 4, 5);
            }),
            DecodeError::UnexpectedField(4),
        ),
        (
            "wire type 5 (fixed32)",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint(o, (2 << 3) | 5);
                o.extend_from_slice(&[0, 0, 0, 0]);
                bytes_field(o, 4, &p.ciphertext);
            }),
            DecodeError::UnexpectedField(2),
        ),
        (
            "ciphertext length beyond the body",
            n.encode_with(|o, p| {
                bytes_field(o, 1, &p.ratchet_key);
                varint_field(o, 2, u64::from(p.index));
                varint(o, (4 << 3) | 2);
                varint(o, p.ciphertext.len() as u64 + 9);
                o.extend_from_slice(&p.ciphertext);
            }),
            DecodeError::Truncated,
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode_error(1, &bytes), expected, "{name}");
    }

    let k = PreKeyParts::of(&pre_key_setup(7).pre_key);
    let pre_key_cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        (
            "no one-time key",
            k.encode_with(|o, p| {
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 3, &p.identity_key);
                bytes_field(o, 4, &p.message);
            }),
            DecodeError::MissingField(1),
        ),
        (
            "no base key",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 3, &p.identity_key);
                bytes_field(o, 4, &p.message);
            }),
            DecodeError::MissingField(2),
        ),
        (
            "no identity key",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 4, &p.message);
            }),
            DecodeError::MissingField(3),
        ),
        (
            "no message",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 3, &p.identity_key);
            }),
            DecodeError::MissingField(4),
        ),
        (
            "unknown field 5",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 3, &p.identity_key);
                bytes_field(o, 4, &p.message);
                varint_field(o, 5, 0);
            }),
            DecodeError::UnexpectedField(5),
        ),
        (
            "duplicated base key",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 3, &p.identity_key);
                bytes_field(o, 4, &p.message);
            }),
            DecodeError::UnexpectedField(2),
        ),
        (
            "identity key before base key",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 3, &p.identity_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 4, &p.message);
            }),
            DecodeError::UnexpectedField(2),
        ),
        (
            "inner message empty",
            k.encode_with(|o, p| {
                bytes_field(o, 1, &p.one_time_key);
                bytes_field(o, 2, &p.base_key);
                bytes_field(o, 3, &p.identity_key);
                bytes_field(o, 4, &[]);
            }),
            DecodeError::Truncated,
        ),
    ];
    for (name, bytes, expected) in pre_key_cases {
        assert_eq!(decode_error(0, &bytes), expected, "{name}");
    }
}
