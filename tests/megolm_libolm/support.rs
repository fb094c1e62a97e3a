//! Shared helpers: libolm group session handles, olmo-side shortcuts, tampering and shuffles.

use olmo::crypto::base64;
use olmo::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmDecryptError, MegolmMessage,
    SessionKey, Timestamp,
};
use serde_json::{Value, json};

use crate::common::peer::Peer;

/// The pickle passphrase on both sides (olmo uses its UTF-8 bytes, as python-olm does).
pub(crate) const PICKLE_KEY: &str = "megolm pickle ✓";

pub(crate) fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

pub(crate) fn u32_of(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))).unwrap()
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

/// The plaintext used for message `index` in scripted runs.
pub(crate) fn text(index: u32) -> String {
    match index % 5 {
        0 => format!("message {index}: ünïcødé ✓ 🔐"),
        3 => format!("message {index}: {}", "long ".repeat(120)),
        _ => format!("message {index}"),
    }
}

// ---- libolm side ---------------------------------------------------------------------------

/// A libolm outbound group session (peer handle).
pub(crate) struct LibOutbound {
    pub(crate) handle: String,
    pub(crate) session_id: String,
}

impl LibOutbound {
    pub(crate) fn new(peer: &mut Peer) -> Self {
        Self::from_response(&peer.call(json!({"op": "group_outbound_new"})))
    }

    pub(crate) fn from_pickle(peer: &mut Peer, pickle: &str) -> Self {
        Self::from_response(
            &peer.call(
                json!({"op": "group_unpickle_outbound", "pickle": pickle, "key": PICKLE_KEY}),
            ),
        )
    }

    fn from_response(r: &Value) -> Self {
        Self {
            handle: s(&r["session"]),
            session_id: s(&r["session_id"]),
        }
    }

    fn info(&self, peer: &mut Peer) -> Value {
        peer.call(json!({"op": "group_outbound_info", "session": self.handle}))
    }

    pub(crate) fn message_index(&self, peer: &mut Peer) -> u32 {
        u32_of(&self.info(peer)["message_index"])
    }

    pub(crate) fn session_key(&self, peer: &mut Peer) -> String {
        s(&self.info(peer)["session_key"])
    }

    /// Encrypts one message: (index, body).
    pub(crate) fn encrypt(&self, peer: &mut Peer, plaintext: &str) -> (u32, String) {
        let r = peer.call(json!({"op": "group_encrypt", "session": self.handle,
            "plaintext": plaintext}));
        (u32_of(&r["message_index"]), s(&r["body"]))
    }

    /// Encrypts `text(i)` for each of the next `count` indices in one round trip.
    pub(crate) fn encrypt_run(&self, peer: &mut Peer, count: u32) -> Vec<(u32, String)> {
        let start = self.message_index(peer);
        let texts: Vec<String> = (start..start + count).map(text).collect();
        let r = peer.call(json!({"op": "group_encrypt", "session": self.handle,
            "plaintexts": texts}));
        let indices: Vec<u32> = r["message_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(u32_of)
            .collect();
        assert_eq!(indices, (start..start + count).collect::<Vec<_>>());
        indices
            .into_iter()
            .zip(r["bodies"].as_array().unwrap().iter().map(s))
            .collect()
    }

    /// A libolm receiver made from the session key shared now.
    pub(crate) fn receiver(&self, peer: &mut Peer) -> LibInbound {
        let key = self.session_key(peer);
        LibInbound::new(peer, &key)
    }

    pub(crate) fn pickle(&self, peer: &mut Peer) -> String {
        peer.call_str(
            json!({"op": "group_pickle_outbound", "session": self.handle, "key": PICKLE_KEY}),
            "pickle",
        )
    }
}

/// A libolm inbound group session (peer handle).
pub(crate) struct LibInbound {
    pub(crate) handle: String,
}

impl LibInbound {
    pub(crate) fn new(peer: &mut Peer, session_key: &str) -> Self {
        let r = peer.call(json!({"op": "group_inbound_new", "session_key": session_key}));
        Self {
            handle: s(&r["session"]),
        }
    }

    pub(crate) fn import(peer: &mut Peer, exported_key: &str) -> Self {
        let r = peer.call(json!({"op": "group_inbound_import", "exported_key": exported_key}));
        Self {
            handle: s(&r["session"]),
        }
    }

    pub(crate) fn from_pickle(peer: &mut Peer, pickle: &str) -> Self {
        let r =
            peer.call(json!({"op": "group_unpickle_inbound", "pickle": pickle, "key": PICKLE_KEY}));
        Self {
            handle: s(&r["session"]),
        }
    }

    fn info(&self, peer: &mut Peer) -> Value {
        peer.call(json!({"op": "group_inbound_info", "session": self.handle}))
    }

    pub(crate) fn session_id(&self, peer: &mut Peer) -> String {
        s(&self.info(peer)["session_id"])
    }

    pub(crate) fn first_known_index(&self, peer: &mut Peer) -> u32 {
        u32_of(&self.info(peer)["first_known_index"])
    }

    pub(crate) fn is_verified(&self, peer: &mut Peer) -> bool {
        self.info(peer)["is_verified"].as_bool().unwrap()
    }

    /// (plaintext, index), or libolm's error ("OlmGroupSessionError: UNKNOWN_MESSAGE_INDEX").
    pub(crate) fn decrypt(&self, peer: &mut Peer, body: &str) -> Result<(String, u32), String> {
        peer.try_call(json!({"op": "group_decrypt", "session": self.handle, "body": body}))
            .map(|r| (s(&r["plaintext"]), u32_of(&r["message_index"])))
    }

    /// Decrypts and checks plaintext and index.
    pub(crate) fn expect(&self, peer: &mut Peer, body: &str, index: u32, plaintext: &str) {
        let got = self
            .decrypt(peer, body)
            .unwrap_or_else(|e| panic!("libolm cannot decrypt message {index}: {e}"));
        assert_eq!(got, (plaintext.to_string(), index));
    }

    pub(crate) fn export(&self, peer: &mut Peer, index: u32) -> Result<String, String> {
        peer.try_call(json!({"op": "group_export", "session": self.handle, "index": index}))
            .map(|r| s(&r["exported_key"]))
    }

    pub(crate) fn pickle(&self, peer: &mut Peer) -> String {
        peer.call_str(
            json!({"op": "group_pickle_inbound", "session": self.handle, "key": PICKLE_KEY}),
            "pickle",
        )
    }
}

// ---- olmo side -----------------------------------------------------------------------------

pub(crate) fn our_encrypt(session: &mut GroupSession, plaintext: &str) -> (u32, String) {
    let index = session.message_index();
    let message = session.encrypt(plaintext.as_bytes()).unwrap();
    assert_eq!(message.message_index(), index);
    (index, message.to_base64())
}

pub(crate) fn our_decrypt(
    session: &mut InboundGroupSession,
    body: &str,
) -> Result<(String, u32), MegolmDecryptError> {
    let message = MegolmMessage::from_base64(body)
        .unwrap_or_else(|e| panic!("olmo cannot parse libolm's message {body}: {e:?}"));
    let decrypted = session.decrypt(&message)?;
    assert_eq!(decrypted.message_index, message.message_index());
    let plaintext = String::from_utf8(decrypted.plaintext.to_vec()).unwrap();
    Ok((plaintext, decrypted.message_index))
}

pub(crate) fn our_expect(session: &mut InboundGroupSession, body: &str, index: u32, text: &str) {
    let got = our_decrypt(session, body)
        .unwrap_or_else(|e| panic!("olmo cannot decrypt message {index}: {e:?}"));
    assert_eq!(got, (text.to_string(), index));
}

pub(crate) fn our_import(exported_key: &str) -> InboundGroupSession {
    InboundGroupSession::import(&ExportedSessionKey::from_base64(exported_key).unwrap())
}

pub(crate) fn our_inbound(session_key: &str) -> InboundGroupSession {
    InboundGroupSession::new(&SessionKey::from_base64(session_key).unwrap())
}

/// Flips one bit of a message's bytes (counted from the end when `from_end`).
pub(crate) fn flip(body: &str, position: usize, from_end: bool) -> String {
    let mut bytes = MegolmMessage::from_base64(body).unwrap().to_bytes();
    let at = if from_end {
        bytes.len() - 1 - position
    } else {
        position
    };
    bytes[at] ^= 0x04;
    base64::encode(bytes)
}

/// Tiny deterministic generator for shuffles.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.next(i + 1));
        }
    }
}
