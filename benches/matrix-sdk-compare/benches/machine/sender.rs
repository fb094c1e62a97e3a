//! The sending device both sides read from, made of olmo's primitives: an Olm account that
//! sends olmo's machine the room key over Olm (as a real device would), and a Megolm outbound
//! session that writes the room events both machines decrypt. matrix-sdk-crypto gets the same
//! key from a key export.

use olmo::matrix::{MEGOLM_V1, OLM_V1};
use olmo::megolm::{
    ExportedRoomKey, GroupSession, InboundGroupSession, SessionKey, encrypt_key_export,
};
use olmo::olm::{Account, Session};
use olmo::time::Timestamp;
use serde_json::{Value, json};

use crate::olmo_side::{BOB, Bob};

pub const ALICE: &str = "@alice:example.org";
pub const ALICE_DEVICE: &str = "ALICEDEVICE";
pub const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);

pub struct Sender {
    account: Account,
    group: GroupSession,
    /// The Megolm key at index 0: every store gets it, whatever was sent since.
    first_key: String,
    olm: Option<(Session, String, String)>,
    sent: u64,
}

impl Sender {
    pub fn new() -> Self {
        let group = GroupSession::new(NOW);
        let first_key = group.session_key().to_base64().as_str().to_owned();
        Self {
            account: Account::new(),
            group,
            first_key,
            olm: None,
            sent: 0,
        }
    }

    pub fn curve25519(&self) -> String {
        self.account.curve25519_key().to_base64()
    }

    /// Starts an Olm session with Bob's machine from one of his one-time keys.
    pub fn connect(&mut self, bob: &Bob, one_time_key: &str) {
        let keys = bob.identity_keys();
        let session = self
            .account
            .create_outbound_session(
                keys.curve25519,
                olmo::crypto::Curve25519PublicKey::from_base64(one_time_key).unwrap(),
            )
            .unwrap();
        self.olm = Some((
            session,
            keys.curve25519.to_base64(),
            keys.ed25519.to_base64(),
        ));
    }

    /// An Olm-encrypted `m.room_key` to-device event carrying the Megolm session's key for `room`.
    pub fn room_key_event(&mut self, room: &str) -> Value {
        let own_ed25519 = self.account.ed25519_key().to_base64();
        let own_curve25519 = self.curve25519();
        let (session, bob_curve, bob_ed) = self.olm.as_mut().expect("connect first");
        let payload = json!({
            "type": "m.room_key",
            "content": {
                "algorithm": MEGOLM_V1,
                "room_id": room,
                "session_id": self.group.session_id(),
                "session_key": self.first_key,
            },
            "sender": ALICE,
            "sender_device": ALICE_DEVICE,
            "recipient": BOB,
            "recipient_keys": {"ed25519": bob_ed},
            "keys": {"ed25519": own_ed25519},
        });
        let message = session
            .encrypt(&serde_json::to_vec(&payload).unwrap())
            .unwrap();
        let (message_type, body) = message.to_parts();
        json!({
            "type": "m.room.encrypted",
            "sender": ALICE,
            "content": {
                "algorithm": OLM_V1,
                "sender_key": own_curve25519,
                "ciphertext": {bob_curve.as_str(): {"type": message_type, "body": body}},
            },
        })
    }

    /// The room key as a key export entry (for matrix-sdk-crypto and the import rows).
    pub fn exported_key(&self, room: &str) -> ExportedRoomKey {
        let inbound = InboundGroupSession::new(&SessionKey::from_base64(&self.first_key).unwrap());
        let mut key = ExportedRoomKey::new(
            room,
            self.curve25519(),
            inbound.export_at_first_known_index(),
        );
        key.sender_claimed_keys
            .insert("ed25519".to_owned(), self.account.ed25519_key().to_base64());
        key
    }

    /// The next `m.room.encrypted` room event.
    pub fn room_event(&mut self, room: &str) -> Value {
        self.sent += 1;
        let payload = json!({
            "type": "m.room.message",
            "content": {"msgtype": "m.text", "body": format!("message number {}", self.sent)},
            "room_id": room,
        });
        let message = self
            .group
            .encrypt(&serde_json::to_vec(&payload).unwrap())
            .unwrap();
        json!({
            "type": "m.room.encrypted",
            "sender": ALICE,
            "event_id": format!("$event{}", self.sent),
            "origin_server_ts": NOW.as_millis() + self.sent,
            "room_id": room,
            "content": {
                "algorithm": MEGOLM_V1,
                "sender_key": self.curve25519(),
                "ciphertext": message.to_base64(),
                "session_id": self.group.session_id(),
                "device_id": ALICE_DEVICE,
            },
        })
    }
}

/// A key export file of `count` sessions, each of its own room, from one sender key.
pub fn export_file(sender: &Sender, count: usize, passphrase: &str, rounds: u32) -> String {
    let keys: Vec<ExportedRoomKey> = (0..count)
        .map(|i| {
            let group = GroupSession::new(NOW);
            let inbound = InboundGroupSession::new(&group.session_key());
            let mut key = ExportedRoomKey::new(
                format!("!import{i}:example.org"),
                sender.curve25519(),
                inbound.export_at_first_known_index(),
            );
            key.sender_claimed_keys.insert(
                "ed25519".to_owned(),
                sender.account.ed25519_key().to_base64(),
            );
            key
        })
        .collect();
    encrypt_key_export(&keys, passphrase, rounds)
}
