//! Olm with hostile or broken input: malformed wire messages, tampered and replayed messages,
//! wrong keys, small-order points. Every case is an error, never a panic, and leaves the session
//! or account exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use olmo::DecodeError;
use olmo::crypto::{CipherError, Curve25519PublicKey, KeyError};
use olmo::olm::{
    Account, DecryptError, EncryptError, Message, OlmMessage, PreKeyMessage, Session,
    SessionCreationError, SessionDecryptError,
};
use olmo::persist::StorageKey;

// ---------------------------------------------------------------------------------------------
// A deterministic generator (splitmix64), for keys and for snapshotting state.

struct TestRng(u64);

impl TestRng {
    fn step(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl rand_core::TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.step() as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.step())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.step().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

/// The stored bytes of a session, with a fixed nonce: equal iff the state is equal.
fn snapshot(session: &Session) -> Vec<u8> {
    session.save_with_rng(&StorageKey::from_bytes([7; 32]), &mut TestRng(99))
}

fn account_snapshot(account: &Account) -> Vec<u8> {
    account.save_with_rng(&StorageKey::from_bytes([7; 32]), &mut TestRng(99))
}

// ---------------------------------------------------------------------------------------------
// Sessions to attack.

struct Setup {
    alice: Account,
    bob: Account,
    alice_session: Session,
    bob_session: Session,
}

/// Alice and Bob with an established session (each side has received a message).
fn established(seed: u64) -> Setup {
    let mut rng = TestRng(seed);
    let alice = Account::with_rng(&mut rng);
    let mut bob = Account::with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(&mut rng, 2);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    bob.mark_keys_as_published();
    let mut alice_session = alice
        .create_outbound_session_with_rng(&mut rng, bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(first) = alice_session.encrypt_with_rng(&mut rng, b"first").unwrap()
    else {
        panic!("expected a pre-key message");
    };
    let created = bob
        .create_inbound_session(alice.curve25519_key(), &first)
        .unwrap();
    let mut bob_session = created.session;
    let reply = bob_session.encrypt_with_rng(&mut rng, b"reply").unwrap();
    assert_eq!(&alice_session.decrypt(&reply).unwrap()[..], b"reply");
    Setup {
        alice,
        bob,
        alice_session,
        bob_session,
    }
}

/// Bob with a fresh one-time key, and a pre-key message from Alice for it.
struct PreKeySetup {
    alice: Account,
    bob: Account,
    alice_session: Session,
    pre_key: PreKeyMessage,
}

fn pre_key_setup(seed: u64) -> PreKeySetup {
    let mut rng = TestRng(seed);
    let alice = Account::with_rng(&mut rng);
    let mut bob = Account::with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(&mut rng, 1);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    let mut alice_session = alice
        .create_outbound_session_with_rng(&mut rng, bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(pre_key) = alice_session
        .encrypt_with_rng(&mut rng, b"hello bob")
        .unwrap()
    else {
        panic!("expected a pre-key message");
    };
    PreKeySetup {
        alice,
        bob,
        alice_session,
        pre_key,
    }
}

// ---------------------------------------------------------------------------------------------
// A test-side protobuf writer, to build malformed messages.

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    varint(out, field << 3);
    varint(out, value);
}

/// The parts of a normal message, to re-encode with changes.
#[derive(Clone)]
struct NormalParts {
    ratchet_key: [u8; 32],
    index: u32,
    ciphertext: Vec<u8>,
    mac: Vec<u8>,
}

impl NormalParts {
    fn of(message: &Message) -> Self {
        Self {
            ratchet_key: *message.ratchet_key().as_bytes(),
            index: message.chain_index(),
            ciphertext: message.ciphertext().to_vec(),
            mac: message.mac().to_vec(),
        }
    }

    /// The canonical encoding (checked equal to olmo's in `test_writer_matches_olmo`).
    fn encode(&self) -> Vec<u8> {
        self.encode_with(|body, parts| {
            bytes_field(body, 1, &parts.ratchet_key);
            varint_field(body, 2, u64::from(parts.index));
            bytes_field(body, 4, &parts.ciphertext);
        })
    }

    /// Version byte, custom body, MAC.
    fn encode_with(&self, body: impl FnOnce(&mut Vec<u8>, &Self)) -> Vec<u8> {
        let mut out = vec![3];
        body(&mut out, self);
        out.extend_from_slice(&self.mac);
        out
    }
}

#[derive(Clone)]
struct PreKeyParts {
    one_time_key: [u8; 32],
    base_key: [u8; 32],
    identity_key: [u8; 32],
    message: Vec<u8>,
}

impl PreKeyParts {
    fn of(message: &PreKeyMessage) -> Self {
        Self {
            one_time_key: *message.one_time_key().as_bytes(),
            base_key: *message.base_key().as_bytes(),
            identity_key: *message.identity_key().as_bytes(),
            message: message.message().as_bytes().to_vec(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        self.encode_with(|out, parts| {
            bytes_field(out, 1, &parts.one_time_key);
            bytes_field(out, 2, &parts.base_key);
            bytes_field(out, 3, &parts.identity_key);
            bytes_field(out, 4, &parts.message);
        })
    }

    fn encode_with(&self, body: impl FnOnce(&mut Vec<u8>, &Self)) -> Vec<u8> {
        let mut out = vec![3];
        body(&mut out, self);
        out
    }
}

/// The error decoding `bytes` as `message_type` (which must fail).
fn decode_error(message_type: u8, bytes: &[u8]) -> DecodeError {
    match OlmMessage::from_parts(message_type, bytes) {
        Ok(message) => panic!("decoded malformed input {bytes:02x?} as {message:?}"),
        Err(error) => error,
    }
}

fn a_normal_message() -> Message {
    let mut setup = established(1);
    let OlmMessage::Normal(message) = setup.alice_session.encrypt(b"normal message").unwrap()
    else {
        panic!("expected a normal message");
    };
    message
}

// ---------------------------------------------------------------------------------------------
// Decoding.

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
    let mut rng = TestRng(10);
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

// ---------------------------------------------------------------------------------------------
// Decryption.

#[test]
fn every_bit_flip_is_refused_and_leaves_the_session_unchanged() {
    let mut setup = established(11);
    let message = setup.bob_session.encrypt(b"flip me").unwrap();
    let before = snapshot(&setup.alice_session);
    let valid = message.as_bytes().to_vec();
    let message_type = message.message_type().as_u8();
    for position in 0..valid.len() {
        for bit in 0..8 {
            let mut bytes = valid.clone();
            bytes[position] ^= 1 << bit;
            if let Ok(tampered) = OlmMessage::from_parts(message_type, &bytes) {
                let result = setup.alice_session.decrypt(&tampered);
                assert!(
                    result.is_err(),
                    "flipping bit {bit} of byte {position} was accepted"
                );
            }
            assert_eq!(
                snapshot(&setup.alice_session),
                before,
                "state changed after flipping bit {bit} of byte {position}"
            );
        }
    }
    assert_eq!(
        &setup.alice_session.decrypt(&message).unwrap()[..],
        b"flip me"
    );
    assert_ne!(snapshot(&setup.alice_session), before);
}

#[test]
fn every_byte_replaced_in_a_new_chain_message() {
    // The message opens a new receiving chain (Alice ratcheted), so a failed attempt would
    // have a root-key step and a new chain to roll back.
    let mut setup = established(12);
    let message = setup.alice_session.encrypt(b"new chain").unwrap();
    let before = snapshot(&setup.bob_session);
    let valid = message.as_bytes().to_vec();
    for position in 0..valid.len() {
        for replacement in [0x00u8, 0xff, valid[position] ^ 0x80] {
            if replacement == valid[position] {
                continue;
            }
            let mut bytes = valid.clone();
            bytes[position] = replacement;
            if let Ok(tampered) = OlmMessage::from_parts(1, &bytes) {
                assert!(
                    setup.bob_session.decrypt(&tampered).is_err(),
                    "byte {position}"
                );
            }
            assert_eq!(snapshot(&setup.bob_session), before, "byte {position}");
        }
    }
    assert_eq!(
        &setup.bob_session.decrypt(&message).unwrap()[..],
        b"new chain"
    );
}

#[test]
fn tampered_mac_is_a_mac_error() {
    let mut setup = established(13);
    let message = setup.bob_session.encrypt(b"mac").unwrap();
    let mut bytes = message.as_bytes().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let tampered = OlmMessage::from_parts(1, &bytes).unwrap();
    assert_eq!(
        setup.alice_session.decrypt(&tampered).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Cipher(CipherError::Mac))
    );
    assert_eq!(&setup.alice_session.decrypt(&message).unwrap()[..], b"mac");
}

#[test]
fn replays_are_duplicates() {
    let mut setup = established(14);
    let messages: Vec<OlmMessage> = (0..3)
        .map(|i| {
            setup
                .bob_session
                .encrypt(format!("m{i}").as_bytes())
                .unwrap()
        })
        .collect();
    for message in &messages {
        setup.alice_session.decrypt(message).unwrap();
    }
    let before = snapshot(&setup.alice_session);
    for message in &messages {
        let OlmMessage::Normal(normal) = message else {
            panic!("expected a normal message");
        };
        assert_eq!(
            setup.alice_session.decrypt(message).unwrap_err(),
            SessionDecryptError::Decrypt(DecryptError::Duplicate {
                index: normal.chain_index()
            })
        );
    }
    assert_eq!(snapshot(&setup.alice_session), before);

    // A skipped key is used once only.
    let late = setup.bob_session.encrypt(b"late").unwrap();
    let later = setup.bob_session.encrypt(b"later").unwrap();
    setup.alice_session.decrypt(&later).unwrap();
    setup.alice_session.decrypt(&late).unwrap();
    assert!(matches!(
        setup.alice_session.decrypt(&late),
        Err(SessionDecryptError::Decrypt(DecryptError::Duplicate { .. }))
    ));
    // A replay from an earlier chain, after both sides ratcheted again.
    let old = messages[0].clone();
    let to_bob = setup.alice_session.encrypt(b"ratchet").unwrap();
    setup.bob_session.decrypt(&to_bob).unwrap();
    let from_bob = setup.bob_session.encrypt(b"new chain").unwrap();
    setup.alice_session.decrypt(&from_bob).unwrap();
    assert!(matches!(
        setup.alice_session.decrypt(&old),
        Err(SessionDecryptError::Decrypt(DecryptError::Duplicate { .. }))
    ));
}

#[test]
fn replayed_pre_key_message_is_a_duplicate() {
    let mut setup = pre_key_setup(15);
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let mut session = created.session;
    assert_eq!(
        session
            .decrypt(&OlmMessage::PreKey(setup.pre_key.clone()))
            .unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Duplicate { index: 0 })
    );
    // ... and the one-time key is gone, so it cannot create a second session either.
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    // The next pre-key message of the same session still works.
    let second = setup.alice_session.encrypt(b"second").unwrap();
    assert_eq!(&session.decrypt(&second).unwrap()[..], b"second");
}

#[test]
fn message_past_the_gap_is_too_far_ahead() {
    let mut setup = established(16);
    // Alice's chain for Bob's key stands at 1 (she decrypted the reply, index 0), so
    // `messages[k]` has index k + 1 and is k messages ahead.
    let messages: Vec<OlmMessage> = (0..2002)
        .map(|_| setup.bob_session.encrypt(b"x").unwrap())
        .collect();
    let before = snapshot(&setup.alice_session);
    assert_eq!(
        setup.alice_session.decrypt(&messages[2001]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::TooFarAhead {
            index: 2002,
            gap: 2001,
            limit: 2000
        })
    );
    assert_eq!(snapshot(&setup.alice_session), before);
    setup.alice_session.decrypt(&messages[2000]).unwrap();
    setup.alice_session.decrypt(&messages[2001]).unwrap();

    // The same on a chain that is new to the receiver: it starts at index 0.
    let far: Vec<OlmMessage> = (0..2002)
        .map(|_| setup.alice_session.encrypt(b"y").unwrap())
        .collect();
    let before = snapshot(&setup.bob_session);
    assert_eq!(
        setup.bob_session.decrypt(&far[2001]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::TooFarAhead {
            index: 2001,
            gap: 2001,
            limit: 2000
        })
    );
    assert_eq!(snapshot(&setup.bob_session), before);
    setup.bob_session.decrypt(&far[2000]).unwrap();
}

#[test]
fn pre_key_message_of_another_session_is_a_mismatch() {
    let mut setup = established(17);
    // A second session from the same Alice to the same Bob (his second one-time key).
    setup.bob.generate_one_time_keys(1);
    let (_, otk) = setup.bob.unpublished_one_time_keys()[0];
    let mut other = setup
        .alice
        .create_outbound_session(setup.bob.curve25519_key(), otk)
        .unwrap();
    let foreign = other.encrypt(b"other session").unwrap();
    let before = snapshot(&setup.bob_session);
    assert_eq!(
        setup.bob_session.decrypt(&foreign).unwrap_err(),
        SessionDecryptError::SessionMismatch
    );
    let OlmMessage::PreKey(pre_key) = &foreign else {
        panic!("expected a pre-key message");
    };
    assert!(!setup.bob_session.matches_inbound_session(pre_key));
    assert_eq!(snapshot(&setup.bob_session), before);
    // Its inner message, sent on its own, is just a message the session cannot use.
    let inner = OlmMessage::Normal(pre_key.message().clone());
    assert!(setup.bob_session.decrypt(&inner).is_err());
    assert_eq!(snapshot(&setup.bob_session), before);
}

#[test]
fn wrong_expected_identity_key_keeps_the_one_time_key() {
    let mut setup = pre_key_setup(18);
    let keys_before = setup.bob.unpublished_one_time_keys();
    let before = account_snapshot(&setup.bob);
    let stranger = Account::new();
    assert_eq!(
        setup
            .bob
            .create_inbound_session(stranger.curve25519_key(), &setup.pre_key)
            .unwrap_err(),
        SessionCreationError::MismatchedIdentityKey
    );
    assert_eq!(setup.bob.unpublished_one_time_keys(), keys_before);
    assert_eq!(account_snapshot(&setup.bob), before);
    // The right key still works.
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    assert_eq!(&created.plaintext[..], b"hello bob");
    assert!(setup.bob.unpublished_one_time_keys().is_empty());
}

#[test]
fn tampered_pre_key_message_keeps_the_one_time_key() {
    let mut setup = pre_key_setup(19);
    let before = account_snapshot(&setup.bob);
    // The inner message's MAC is the last 8 bytes of the pre-key message.
    let mut bytes = setup.pre_key.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let OlmMessage::PreKey(tampered) = OlmMessage::from_parts(0, &bytes).unwrap() else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &tampered)
            .unwrap_err(),
        SessionCreationError::Decrypt(DecryptError::Cipher(CipherError::Mac))
    );
    assert_eq!(account_snapshot(&setup.bob), before);
    assert_eq!(setup.bob.unpublished_one_time_keys().len(), 1);
    // The genuine message afterwards creates the session.
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    assert_eq!(&created.plaintext[..], b"hello bob");
    assert_eq!(
        created.session.session_id(),
        setup.alice_session.session_id()
    );
}

#[test]
fn every_bit_flip_of_a_pre_key_message_is_refused_by_the_account() {
    let mut setup = pre_key_setup(20);
    let before = account_snapshot(&setup.bob);
    let valid = setup.pre_key.to_bytes();
    let base_key_start = valid
        .windows(32)
        .position(|w| w == setup.pre_key.base_key().as_bytes())
        .unwrap();
    // X25519 ignores a public key's top bit and the MAC covers only the inner message, so
    // libolm and vodozemac accept this flip and make a session with another id. olmo refuses
    // non-canonical keys when decoding.
    let mut top_bit = valid.clone();
    top_bit[base_key_start + 31] ^= 0x80;
    assert_eq!(
        OlmMessage::from_parts(0, &top_bit).unwrap_err(),
        olmo::DecodeError::NonCanonicalKey
    );
    for position in 0..valid.len() {
        for bit in 0..8 {
            let mut bytes = valid.clone();
            bytes[position] ^= 1 << bit;
            let Ok(OlmMessage::PreKey(tampered)) = OlmMessage::from_parts(0, &bytes) else {
                continue;
            };
            let result = setup
                .bob
                .create_inbound_session(setup.alice.curve25519_key(), &tampered);
            assert!(
                result.is_err(),
                "flipping bit {bit} of byte {position} was accepted"
            );
            assert_eq!(
                account_snapshot(&setup.bob),
                before,
                "byte {position} bit {bit}"
            );
        }
    }
    setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
}

#[test]
fn reused_pre_key_message_after_its_key_was_used() {
    let mut setup = pre_key_setup(21);
    setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let before = account_snapshot(&setup.bob);
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    // A later pre-key message of the same session names the same, now used, key.
    let second = setup.alice_session.encrypt(b"again").unwrap();
    let OlmMessage::PreKey(second) = second else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        setup
            .bob
            .create_inbound_session(setup.alice.curve25519_key(), &second)
            .unwrap_err(),
        SessionCreationError::MissingOneTimeKey
    );
    assert_eq!(account_snapshot(&setup.bob), before);
}

/// Points of small order on Curve25519 (u-coordinates): every exchange with them is all-zero.
fn small_order_points() -> Vec<[u8; 32]> {
    let mut one = [0u8; 32];
    one[0] = 1;
    // p - 1 (order 2), little-endian: 0xec, 0xff.., 0x7f.
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    vec![[0u8; 32], one, minus_one]
}

#[test]
fn small_order_base_key_is_a_key_error() {
    for point in small_order_points() {
        let mut setup = pre_key_setup(22);
        let before = account_snapshot(&setup.bob);
        let mut parts = PreKeyParts::of(&setup.pre_key);
        parts.base_key = point;
        let OlmMessage::PreKey(bad) = OlmMessage::from_parts(0, &parts.encode()).unwrap() else {
            panic!("expected a pre-key message");
        };
        assert_eq!(
            setup
                .bob
                .create_inbound_session(setup.alice.curve25519_key(), &bad)
                .unwrap_err(),
            SessionCreationError::Key(KeyError::NonContributory)
        );
        assert_eq!(account_snapshot(&setup.bob), before);
    }
}

#[test]
fn small_order_identity_key_is_a_key_error() {
    let mut setup = pre_key_setup(23);
    let mut parts = PreKeyParts::of(&setup.pre_key);
    parts.identity_key = [0; 32];
    let OlmMessage::PreKey(bad) = OlmMessage::from_parts(0, &parts.encode()).unwrap() else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        setup
            .bob
            .create_inbound_session(Curve25519PublicKey::from_bytes([0; 32]), &bad)
            .unwrap_err(),
        SessionCreationError::Key(KeyError::NonContributory)
    );
}

#[test]
fn small_order_ratchet_key_is_a_key_error() {
    for point in small_order_points() {
        let mut setup = established(24);
        // Alice holds a ratchet key (she has sent), so an unknown ratchet key means a DH step.
        let _ = setup.alice_session.encrypt(b"ratchet").unwrap();
        let message = setup.bob_session.encrypt(b"template").unwrap();
        let OlmMessage::Normal(normal) = &message else {
            panic!("expected a normal message");
        };
        let mut parts = NormalParts::of(normal);
        parts.ratchet_key = point;
        let bad = OlmMessage::from_parts(1, &parts.encode()).unwrap();
        let before = snapshot(&setup.alice_session);
        assert_eq!(
            setup.alice_session.decrypt(&bad).unwrap_err(),
            SessionDecryptError::Decrypt(DecryptError::Key(KeyError::NonContributory))
        );
        assert_eq!(snapshot(&setup.alice_session), before);
    }
}

#[test]
fn unknown_ratchet_key_without_our_own_is_refused() {
    // Bob created his session and has not sent: he holds no ratchet key to answer with.
    let mut setup = pre_key_setup(25);
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let mut bob_session = created.session;
    let OlmMessage::PreKey(next) = setup.alice_session.encrypt(b"next").unwrap() else {
        panic!("expected a pre-key message");
    };
    let mut parts = NormalParts::of(next.message());
    parts.ratchet_key = [0x42; 32];
    let bad = OlmMessage::from_parts(1, &parts.encode()).unwrap();
    let before = snapshot(&bob_session);
    assert_eq!(
        bob_session.decrypt(&bad).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::UnexpectedRatchetKey)
    );
    assert_eq!(snapshot(&bob_session), before);
    assert_eq!(
        &bob_session.decrypt(&OlmMessage::PreKey(next)).unwrap()[..],
        b"next"
    );
}

#[test]
fn responder_can_answer_at_once() {
    // A responder can always answer (its first chain comes from the pre-key message).
    let mut setup = pre_key_setup(26);
    let created = setup
        .bob
        .create_inbound_session(setup.alice.curve25519_key(), &setup.pre_key)
        .unwrap();
    let mut bob_session = created.session;
    let reply = bob_session.encrypt(b"ok").unwrap();
    assert_eq!(&setup.alice_session.decrypt(&reply).unwrap()[..], b"ok");
}

/// A plaintext too large for the wire limit must not be reported as an exhausted chain, and a
/// failed encryption must leave the session unchanged (the message key must not be burnt).
///
/// Fails today: `Session::encrypt_with_rng` re-decodes its own output with `Message::from_sealed`,
/// whose 256 KiB receive limit turns into `EncryptError::ChainExhausted` after the sending chain
/// has already advanced.
#[test]
fn oversized_plaintext_encryption() {
    let mut setup = established(27);
    let plaintext = vec![0x61u8; 300 * 1024];
    let before = snapshot(&setup.alice_session);
    let mut problems = Vec::new();
    match setup.alice_session.encrypt(&plaintext) {
        Ok(message) => {
            if OlmMessage::from_parts(1, message.as_bytes()).is_err() {
                problems.push("olmo wrote a message it cannot decode".to_owned());
            }
        }
        Err(error) => {
            if error == EncryptError::ChainExhausted {
                problems.push("a too-large plaintext is reported as ChainExhausted".to_owned());
            }
            if snapshot(&setup.alice_session) != before {
                problems.push("the failed encryption advanced the sending chain".to_owned());
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A pre-key message wraps a normal message in about 107 more bytes. When the inner message is
/// just under the 256 KiB receive limit, the pre-key message olmo writes is over it, and olmo
/// (the receiving side) cannot decode its own output.
///
/// Fails today: the size check on encryption (via `Message::from_sealed`) covers only the inner
/// message, not the `PreKeyMessage` built around it.
#[test]
fn pre_key_message_just_under_the_limit_round_trips() {
    let setup = pre_key_setup(28);
    let mut alice_session = setup.alice_session;
    // Ciphertext 262 080 bytes (16 380 blocks): inner message 262 129 bytes, under 256 KiB.
    let plaintext = vec![0x62u8; 262_070];
    match alice_session.encrypt(&plaintext) {
        Ok(message) => {
            let OlmMessage::PreKey(pre_key) = &message else {
                panic!("expected a pre-key message");
            };
            assert!(pre_key.message().as_bytes().len() <= 256 * 1024);
            let decoded = OlmMessage::from_parts(0, message.as_bytes());
            assert!(
                decoded.is_ok(),
                "olmo wrote a {}-byte pre-key message it cannot decode: {decoded:?}",
                message.as_bytes().len()
            );
        }
        Err(error) => assert_ne!(error, EncryptError::ChainExhausted),
    }
}

#[test]
fn evicted_skipped_keys_are_expired_not_duplicates() {
    let mut setup = established(29);
    // Alice's chain stands at 1, so `messages[k]` has index k + 1.
    let messages: Vec<OlmMessage> = (0..260)
        .map(|i| {
            setup
                .bob_session
                .encrypt(format!("{i}").as_bytes())
                .unwrap()
        })
        .collect();
    // Index 260 skips 1..=259; only the newest 200 keys (60..=259) are kept.
    setup.alice_session.decrypt(&messages[259]).unwrap();
    let before = snapshot(&setup.alice_session);
    for (k, index) in [(0usize, 1u32), (58, 59)] {
        assert_eq!(
            setup.alice_session.decrypt(&messages[k]).unwrap_err(),
            SessionDecryptError::Decrypt(DecryptError::Expired { index })
        );
    }
    assert_eq!(snapshot(&setup.alice_session), before);
    assert_eq!(
        &setup.alice_session.decrypt(&messages[59]).unwrap()[..],
        b"59"
    );
    assert_eq!(
        setup.alice_session.decrypt(&messages[59]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Duplicate { index: 60 })
    );
    assert_eq!(
        setup.alice_session.decrypt(&messages[259]).unwrap_err(),
        SessionDecryptError::Decrypt(DecryptError::Duplicate { index: 260 })
    );
}

#[test]
fn failed_decryption_does_not_count_as_a_received_message() {
    let mut setup = pre_key_setup(30);
    assert!(!setup.alice_session.has_received_message());
    // A forged "reply" on a made-up ratchet key.
    let mut parts = NormalParts::of(setup.pre_key.message());
    parts.ratchet_key = [0x24; 32];
    let forged = OlmMessage::from_parts(1, &parts.encode()).unwrap();
    let before = snapshot(&setup.alice_session);
    assert!(setup.alice_session.decrypt(&forged).is_err());
    assert!(!setup.alice_session.has_received_message());
    assert_eq!(snapshot(&setup.alice_session), before);
    // Alice still sends pre-key messages.
    let next = setup.alice_session.encrypt(b"still pre-key").unwrap();
    assert!(matches!(next, OlmMessage::PreKey(_)));
    // Her own message reflected back to her is refused too.
    let reflected = setup.alice_session.encrypt(b"reflected").unwrap();
    assert!(setup.alice_session.decrypt(&reflected).is_err());
    let OlmMessage::PreKey(reflected) = reflected else {
        panic!("expected a pre-key message");
    };
    assert!(
        setup
            .alice_session
            .decrypt(&OlmMessage::Normal(reflected.message().clone()))
            .is_err()
    );
    assert!(!setup.alice_session.has_received_message());
}
