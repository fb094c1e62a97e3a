//! Shared helpers: a deterministic generator, state snapshots, sessions to attack and a
//! test-side protobuf writer to build malformed messages.

use olmo::DecodeError;
use olmo::olm::{Account, Message, OlmMessage, PreKeyMessage, Session};
use olmo::persist::StorageKey;

/// The shared deterministic generator (splitmix64), for keys and for snapshotting state.
pub(crate) use crate::common::rng::TestRng;

/// The stored bytes of a session, with a fixed nonce: equal iff the state is equal.
pub(crate) fn snapshot(session: &Session) -> Vec<u8> {
    session.save_with_rng(&StorageKey::from_bytes([7; 32]), &mut TestRng::new(99))
}

pub(crate) fn account_snapshot(account: &Account) -> Vec<u8> {
    account.save_with_rng(&StorageKey::from_bytes([7; 32]), &mut TestRng::new(99))
}

// ---------------------------------------------------------------------------------------------
// Sessions to attack.

pub(crate) struct Setup {
    pub(crate) alice: Account,
    pub(crate) bob: Account,
    pub(crate) alice_session: Session,
    pub(crate) bob_session: Session,
}

/// Alice and Bob with an established session (each side has received a message).
pub(crate) fn established(seed: u64) -> Setup {
    let mut rng = TestRng::new(seed);
    let alice = Account::with_rng(&mut rng);
    let mut bob = Account::with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(2, &mut rng);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    bob.mark_keys_as_published();
    let mut alice_session = alice
        .create_outbound_session_with_rng(bob.curve25519_key(), otk, &mut rng)
        .unwrap();
    let OlmMessage::PreKey(first) = alice_session.encrypt_with_rng(b"first", &mut rng).unwrap()
    else {
        panic!("expected a pre-key message");
    };
    let created = bob
        .create_inbound_session(alice.curve25519_key(), &first)
        .unwrap();
    let mut bob_session = created.session;
    let reply = bob_session.encrypt_with_rng(b"reply", &mut rng).unwrap();
    assert_eq!(&alice_session.decrypt(&reply).unwrap()[..], b"reply");
    Setup {
        alice,
        bob,
        alice_session,
        bob_session,
    }
}

/// Bob with a fresh one-time key, and a pre-key message from Alice for it.
pub(crate) struct PreKeySetup {
    pub(crate) alice: Account,
    pub(crate) bob: Account,
    pub(crate) alice_session: Session,
    pub(crate) pre_key: PreKeyMessage,
}

pub(crate) fn pre_key_setup(seed: u64) -> PreKeySetup {
    let mut rng = TestRng::new(seed);
    let alice = Account::with_rng(&mut rng);
    let mut bob = Account::with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(1, &mut rng);
    let (_, otk) = bob.unpublished_one_time_keys()[0];
    let mut alice_session = alice
        .create_outbound_session_with_rng(bob.curve25519_key(), otk, &mut rng)
        .unwrap();
    let OlmMessage::PreKey(pre_key) = alice_session
        .encrypt_with_rng(b"hello bob", &mut rng)
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

pub(crate) fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    varint(out, field << 3);
    varint(out, value);
}

/// The parts of a normal message, to re-encode with changes.
#[derive(Clone)]
pub(crate) struct NormalParts {
    pub(crate) ratchet_key: [u8; 32],
    pub(crate) index: u32,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) mac: Vec<u8>,
}

impl NormalParts {
    pub(crate) fn of(message: &Message) -> Self {
        Self {
            ratchet_key: *message.ratchet_key().as_bytes(),
            index: message.chain_index(),
            ciphertext: message.ciphertext().to_vec(),
            mac: message.mac().to_vec(),
        }
    }

    /// The canonical encoding (checked equal to olmo's in `test_writer_matches_olmo`).
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_with(|body, parts| {
            bytes_field(body, 1, &parts.ratchet_key);
            varint_field(body, 2, u64::from(parts.index));
            bytes_field(body, 4, &parts.ciphertext);
        })
    }

    /// Version byte, custom body, MAC.
    pub(crate) fn encode_with(&self, body: impl FnOnce(&mut Vec<u8>, &Self)) -> Vec<u8> {
        let mut out = vec![3];
        body(&mut out, self);
        out.extend_from_slice(&self.mac);
        out
    }
}

#[derive(Clone)]
pub(crate) struct PreKeyParts {
    pub(crate) one_time_key: [u8; 32],
    pub(crate) base_key: [u8; 32],
    pub(crate) identity_key: [u8; 32],
    pub(crate) message: Vec<u8>,
}

impl PreKeyParts {
    pub(crate) fn of(message: &PreKeyMessage) -> Self {
        Self {
            one_time_key: *message.one_time_key().as_bytes(),
            base_key: *message.base_key().as_bytes(),
            identity_key: *message.identity_key().as_bytes(),
            message: message.message().as_bytes().to_vec(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_with(|out, parts| {
            bytes_field(out, 1, &parts.one_time_key);
            bytes_field(out, 2, &parts.base_key);
            bytes_field(out, 3, &parts.identity_key);
            bytes_field(out, 4, &parts.message);
        })
    }

    pub(crate) fn encode_with(&self, body: impl FnOnce(&mut Vec<u8>, &Self)) -> Vec<u8> {
        let mut out = vec![3];
        body(&mut out, self);
        out
    }
}

/// The error decoding `bytes` as `message_type` (which must fail).
pub(crate) fn decode_error(message_type: u8, bytes: &[u8]) -> DecodeError {
    match OlmMessage::from_parts(message_type, bytes) {
        Ok(message) => panic!("decoded malformed input {bytes:02x?} as {message:?}"),
        Err(error) => error,
    }
}

pub(crate) fn a_normal_message() -> Message {
    let mut setup = established(1);
    let OlmMessage::Normal(message) = setup.alice_session.encrypt(b"normal message").unwrap()
    else {
        panic!("expected a normal message");
    };
    message
}
