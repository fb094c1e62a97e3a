//! Shared helpers: a deterministic generator and olmo-side rooms with messages to decrypt.

use olmo::megolm::{
    ExportedRoomKey, ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage,
    Timestamp,
};

/// Low round count for tests: PBKDF2 at the default takes seconds in a debug build.
pub(crate) const ROUNDS: u32 = 1_000;

/// splitmix64, for salts, IVs and sessions that are the same on every run.
pub(crate) use crate::common::rng::TestRng;

/// The plaintext of a room message event, as a Matrix client encrypts it.
pub(crate) fn event_json(room_id: &str, body: &str) -> String {
    serde_json::json!({
        "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": body},
        "room_id": room_id,
    })
    .to_string()
}

/// An olmo sender in a room, with the messages it sent (index = position).
pub(crate) struct Room {
    pub(crate) room_id: String,
    pub(crate) session: GroupSession,
    /// The receiving copy made from the first `m.room_key`, at index 0.
    pub(crate) inbound: InboundGroupSession,
    pub(crate) messages: Vec<(MegolmMessage, String)>,
}

impl Room {
    pub(crate) fn new(room_id: &str, seed: u64, count: usize) -> Room {
        let mut session =
            GroupSession::new_with_rng(Timestamp::from_millis(1), &mut TestRng::new(seed));
        let inbound = InboundGroupSession::new(&session.session_key());
        let messages = (0..count)
            .map(|index| {
                let plaintext = event_json(room_id, &format!("message {index} in {room_id}"));
                (session.encrypt(plaintext.as_bytes()).unwrap(), plaintext)
            })
            .collect();
        Room {
            room_id: room_id.to_owned(),
            session,
            inbound,
            messages,
        }
    }

    /// The room key as exported at `index`, claiming `ed25519` for the sending device.
    pub(crate) fn exported(&self, index: u32, sender_key: &str, ed25519: &str) -> ExportedRoomKey {
        let key = self.inbound.export_at(index).unwrap();
        let mut exported = ExportedRoomKey::new(&self.room_id, sender_key, key);
        exported
            .sender_claimed_keys
            .insert("ed25519".to_owned(), ed25519.to_owned());
        exported
    }
}

/// Imports `key` and decrypts `message`, returning the plaintext text and index.
pub(crate) fn open(key: &ExportedSessionKey, message: &MegolmMessage) -> Option<(String, u32)> {
    let mut session = InboundGroupSession::import(key);
    let decrypted = session.decrypt(message).ok()?;
    Some((
        String::from_utf8(decrypted.plaintext.to_vec()).unwrap(),
        decrypted.message_index,
    ))
}

/// Equal keys: every field, and the session key by its bytes.
pub(crate) fn assert_same_keys(left: &[ExportedRoomKey], right: &[ExportedRoomKey]) {
    assert_eq!(left.len(), right.len());
    for (l, r) in left.iter().zip(right) {
        assert_eq!(l.algorithm, r.algorithm);
        assert_eq!(l.room_id, r.room_id);
        assert_eq!(l.sender_key, r.sender_key);
        assert_eq!(l.session_id, r.session_id);
        assert_eq!(*l.session_key.to_bytes(), *r.session_key.to_bytes());
        assert_eq!(l.sender_claimed_keys, r.sender_claimed_keys);
        assert_eq!(
            l.forwarding_curve25519_key_chain,
            r.forwarding_curve25519_key_chain
        );
        assert_eq!(l.shared_history, r.shared_history);
    }
}
