//! Property tests for Olm: wire round trips, decoding arbitrary bytes, and "a failed decryption
//! leaves the session unchanged" over random sequences of deliveries, tamperings and replays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olmo::olm::{Account, DecryptError, Message, OlmMessage, Session, SessionDecryptError};
use olmo::persist::StorageKey;
use proptest::prelude::*;

mod common;

use common::rng::TestRng;

fn snapshot(session: &Session) -> Vec<u8> {
    session.save_with_rng(&StorageKey::from_bytes([3; 32]), &mut TestRng::new(5))
}

/// Alice's outbound session, Bob's inbound one, and the pre-key message that created it.
fn sessions(seed: u64) -> (Session, Session) {
    let mut rng = TestRng::new(seed);
    let alice = Account::with_rng(&mut rng);
    let mut bob = Account::with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(1, &mut rng);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    let mut alice_session = alice
        .create_outbound_session_with_rng(bob.curve25519_key(), otk, &mut rng)
        .unwrap();
    let OlmMessage::PreKey(first) = alice_session.encrypt_with_rng(b"hi", &mut rng).unwrap() else {
        panic!("expected a pre-key message");
    };
    let created = bob
        .create_inbound_session(alice.curve25519_key(), &first)
        .unwrap();
    (alice_session, created.session)
}

// ---------------------------------------------------------------------------------------------
// A test-side encoder for the canonical form.

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A varint with `padding` redundant continuation bytes (non-canonical when `padding > 0`).
fn padded_varint(out: &mut Vec<u8>, value: u64, padding: usize) {
    let mut encoded = Vec::new();
    varint(&mut encoded, value);
    if padding > 0 && encoded.len() + padding <= 10 {
        let last = encoded.len() - 1;
        encoded[last] |= 0x80;
        encoded.extend(std::iter::repeat_n(0x80, padding - 1));
        encoded.push(0);
    }
    out.extend_from_slice(&encoded);
}

fn canonical_normal(message: &Message) -> Vec<u8> {
    let mut out = vec![3, 0x0a, 32];
    out.extend_from_slice(message.ratchet_key().as_bytes());
    out.push(0x10);
    varint(&mut out, u64::from(message.chain_index()));
    out.push(0x22);
    varint(&mut out, message.ciphertext().len() as u64);
    out.extend_from_slice(message.ciphertext());
    out.extend_from_slice(message.mac());
    out
}

/// A random protobuf-ish field: number, wire type, payload.
fn field() -> impl Strategy<Value = (u8, u8, Vec<u8>, u64)> {
    (
        0u8..7,
        prop_oneof![Just(0u8), Just(2u8), Just(2u8), 0u8..8],
        prop_oneof![
            Just(vec![7u8; 32]),
            proptest::collection::vec(any::<u8>(), 0..40)
        ],
        prop_oneof![0u64..300, any::<u64>()],
    )
}

fn encode_fields(fields: &[(u8, u8, Vec<u8>, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, wire, payload, value) in fields {
        varint(&mut out, (u64::from(*number) << 3) | u64::from(*wire));
        match wire {
            0 => varint(&mut out, *value),
            2 => {
                varint(&mut out, payload.len() as u64);
                out.extend_from_slice(payload);
            }
            _ => out.extend_from_slice(payload),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Random operations on a session.

#[derive(Debug, Clone)]
enum Op {
    /// Bob encrypts this many new messages (held back).
    BobSends(usize),
    /// One held message, chosen by the index, is delivered to Alice.
    Deliver(usize),
    /// One held message is delivered with one bit flipped.
    Tamper(usize, usize, u8),
    /// An already delivered message is delivered again.
    Replay(usize),
    /// Alice answers (so Bob's next message starts a new chain).
    AliceReplies,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..5).prop_map(Op::BobSends),
        3 => any::<usize>().prop_map(Op::Deliver),
        3 => (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(i, p, b)| Op::Tamper(i, p, b)),
        2 => any::<usize>().prop_map(Op::Replay),
        1 => Just(Op::AliceReplies),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Messages olmo writes decode to equal values with identical bytes, in every form.
    #[test]
    fn encode_decode_round_trip(
        seed in any::<u64>(),
        plaintexts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 1..4),
    ) {
        let (mut alice, mut bob) = sessions(seed);
        for (i, plaintext) in plaintexts.iter().enumerate() {
            // Pre-key messages from Alice until she hears back, then normal ones both ways.
            let message = if i % 2 == 0 {
                alice.encrypt(plaintext).unwrap()
            } else {
                bob.encrypt(plaintext).unwrap()
            };
            let (message_type, base64) = message.to_parts();
            let decoded = OlmMessage::from_parts(message_type, message.as_bytes()).unwrap();
            prop_assert_eq!(&decoded, &message);
            prop_assert_eq!(decoded.as_bytes(), message.as_bytes());
            let from_base64 = OlmMessage::from_base64_parts(message_type, &base64).unwrap();
            prop_assert_eq!(from_base64.as_bytes(), message.as_bytes());
            let json = serde_json::to_string(&message).unwrap();
            let from_json: OlmMessage = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&from_json, &message);
            let inner = match &message {
                OlmMessage::PreKey(pre_key) => pre_key.message(),
                OlmMessage::Normal(normal) => normal,
            };
            prop_assert_eq!(canonical_normal(inner), inner.as_bytes());
            let received = if i % 2 == 0 {
                bob.decrypt(&decoded).unwrap()
            } else {
                alice.decrypt(&decoded).unwrap()
            };
            prop_assert_eq!(&received[..], &plaintext[..]);
        }
    }

    /// Arbitrary bytes never panic the decoder, with either type.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = OlmMessage::from_parts(0, &bytes);
        let _ = OlmMessage::from_parts(1, &bytes);
        let mut versioned = bytes;
        versioned.insert(0, 3);
        let _ = OlmMessage::from_parts(0, &versioned);
        let _ = OlmMessage::from_parts(1, &versioned);
    }

    /// Random field sequences: the decoder accepts only the canonical form.
    #[test]
    fn only_canonical_messages_decode(
        fields in proptest::collection::vec(field(), 0..5),
        mac in proptest::collection::vec(any::<u8>(), 0..10),
    ) {
        let mut bytes = vec![3];
        bytes.extend(encode_fields(&fields));
        bytes.extend_from_slice(&mac);
        if let Ok(OlmMessage::Normal(message)) = OlmMessage::from_parts(1, &bytes) {
            prop_assert_eq!(canonical_normal(&message), bytes.clone());
        }
        // The same fields as the body of a pre-key message.
        let mut pre_key = vec![3];
        pre_key.extend(encode_fields(&fields));
        if let Ok(OlmMessage::PreKey(message)) = OlmMessage::from_parts(0, &pre_key) {
            prop_assert_eq!(message.as_bytes(), &pre_key[..]);
            prop_assert_eq!(canonical_normal(message.message()), message.message().as_bytes());
        }
    }

    /// Near-valid normal messages (optional padded varints, odd key and MAC lengths, an extra
    /// field): whatever decodes is exactly the canonical encoding of what was decoded.
    #[test]
    fn near_valid_messages_decode_only_when_canonical(
        key_length in prop_oneof![Just(32usize), 0usize..40],
        index in prop_oneof![0u64..300, any::<u32>().prop_map(u64::from), any::<u64>()],
        index_padding in prop_oneof![Just(0usize), 0usize..3],
        ciphertext in proptest::collection::vec(any::<u8>(), 0..64),
        length_padding in prop_oneof![Just(0usize), 0usize..3],
        extra in prop_oneof![Just(None), (0u8..8).prop_map(Some)],
        mac_length in prop_oneof![Just(8usize), 0usize..12],
    ) {
        let mut bytes = vec![3, 0x0a];
        varint(&mut bytes, key_length as u64);
        bytes.extend(std::iter::repeat_n(9u8, key_length));
        bytes.push(0x10);
        padded_varint(&mut bytes, index, index_padding);
        if let Some(number) = extra {
            bytes.push(number << 3);
            bytes.push(1);
        }
        bytes.push(0x22);
        padded_varint(&mut bytes, ciphertext.len() as u64, length_padding);
        bytes.extend_from_slice(&ciphertext);
        bytes.extend(std::iter::repeat_n(0xaa, mac_length));
        let decoded = OlmMessage::from_parts(1, &bytes);
        let valid = key_length == 32
            && index <= u64::from(u32::MAX)
            && index_padding == 0
            && length_padding == 0
            && extra.is_none()
            && mac_length == 8;
        if valid {
            prop_assert!(decoded.is_ok(), "{:?}", decoded);
        }
        if let Ok(OlmMessage::Normal(message)) = decoded {
            prop_assert!(valid);
            prop_assert_eq!(canonical_normal(&message), bytes);
        }
    }

    /// Whatever happens in between, valid messages decrypt, tampered ones and replays fail, and
    /// a failure leaves the session byte-for-byte as it was.
    #[test]
    fn failed_decryption_leaves_the_session_unchanged(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let (mut alice, mut bob) = sessions(seed);
        // Bob answers so Alice sends normal messages; her first decryption is a ratchet step.
        let mut held: Vec<(OlmMessage, Vec<u8>)> = Vec::new();
        let mut delivered: Vec<OlmMessage> = Vec::new();
        let mut sent = 0usize;
        let mut replies = 0usize;
        held.push((bob.encrypt(b"reply").unwrap(), b"reply".to_vec()));
        for op in ops {
            match op {
                Op::BobSends(count) => {
                    for _ in 0..count {
                        let text = format!("bob {sent}").into_bytes();
                        sent += 1;
                        held.push((bob.encrypt(&text).unwrap(), text));
                    }
                }
                Op::Deliver(i) if !held.is_empty() => {
                    let (message, text) = held.remove(i % held.len());
                    let plaintext = alice.decrypt(&message).unwrap();
                    prop_assert_eq!(&plaintext[..], &text[..]);
                    delivered.push(message);
                }
                Op::Tamper(i, position, bit) if !held.is_empty() => {
                    let (message, _) = &held[i % held.len()];
                    let mut bytes = message.as_bytes().to_vec();
                    let position = position % bytes.len();
                    bytes[position] ^= 1 << bit;
                    let before = snapshot(&alice);
                    if let Ok(tampered) =
                        OlmMessage::from_parts(message.message_type().as_u8(), &bytes)
                    {
                        prop_assert!(alice.decrypt(&tampered).is_err());
                    }
                    prop_assert_eq!(snapshot(&alice), before);
                }
                Op::Replay(i) if !delivered.is_empty() => {
                    let message = &delivered[i % delivered.len()];
                    let before = snapshot(&alice);
                    let error = alice.decrypt(message).unwrap_err();
                    prop_assert!(
                        matches!(error, SessionDecryptError::Decrypt(DecryptError::Duplicate { .. })),
                        "replay gave {:?}", error
                    );
                    prop_assert_eq!(snapshot(&alice), before);
                }
                // At most three ratchet steps, so every held message's chain is still kept.
                Op::AliceReplies if replies < 3 && alice.has_received_message() => {
                    replies += 1;
                    let reply = alice.encrypt(b"alice").unwrap();
                    prop_assert_eq!(&bob.decrypt(&reply).unwrap()[..], b"alice");
                }
                _ => {}
            }
        }
        // Everything still held arrives, in order of sending.
        for (message, text) in held {
            let plaintext = alice.decrypt(&message).unwrap();
            prop_assert_eq!(&plaintext[..], &text[..]);
        }
    }
}
