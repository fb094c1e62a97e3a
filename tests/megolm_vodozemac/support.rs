//! Shared helpers: conversions between olmo's and vodozemac's types, and olmo senders at any
//! index through a libolm outbound pickle.

use olmo::crypto::{CipherKeys, Ed25519KeyPair, base64};
use olmo::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage, MegolmRatchet,
    SessionKey, Timestamp,
};
use vodozemac::megolm::{
    ExportedSessionKey as VExportedKey, GroupSession as VGroupSession,
    InboundGroupSession as VInbound, MegolmMessage as VMessage, SessionConfig,
    SessionKey as VSessionKey,
};

pub(crate) const PICKLE_KEY: &[u8] = b"megolm pickle key";

pub(crate) fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

pub(crate) fn text(index: u32) -> String {
    format!("message {index} ✓")
}

/// vodozemac's receiver from olmo's signed session key.
pub(crate) fn v_inbound(ours: &GroupSession) -> VInbound {
    let key = VSessionKey::from_base64(&ours.session_key().to_base64()).unwrap();
    VInbound::new(&key, SessionConfig::version_1())
}

/// olmo's receiver from vodozemac's signed session key.
pub(crate) fn our_inbound(theirs: &VGroupSession) -> InboundGroupSession {
    InboundGroupSession::new(&SessionKey::from_base64(&theirs.session_key().to_base64()).unwrap())
}

pub(crate) fn v_import(key: &ExportedSessionKey) -> VInbound {
    VInbound::import(
        &VExportedKey::from_base64(&key.to_base64()).unwrap(),
        SessionConfig::version_1(),
    )
}

pub(crate) fn our_import(key: &VExportedKey) -> InboundGroupSession {
    InboundGroupSession::import(&ExportedSessionKey::from_base64(&key.to_base64()).unwrap())
}

pub(crate) fn to_v(message: &MegolmMessage) -> VMessage {
    VMessage::from_bytes(message.as_bytes()).unwrap()
}

pub(crate) fn to_ours(message: &VMessage) -> MegolmMessage {
    MegolmMessage::decode(&message.to_bytes()).unwrap()
}

/// vodozemac decrypts and the plaintext and index are as expected.
pub(crate) fn v_expect(session: &mut VInbound, message: &MegolmMessage, text: &str) {
    let decrypted = session
        .decrypt(&to_v(message))
        .unwrap_or_else(|e| panic!("vodozemac at {}: {e}", message.message_index()));
    assert_eq!(decrypted.message_index, message.message_index());
    assert_eq!(decrypted.plaintext, text.as_bytes());
}

/// olmo decrypts and the plaintext and index are as expected.
pub(crate) fn our_expect(session: &mut InboundGroupSession, message: &VMessage, text: &str) {
    let ours = to_ours(message);
    let decrypted = session
        .decrypt(&ours)
        .unwrap_or_else(|e| panic!("olmo at {}: {e:?}", ours.message_index()));
    assert_eq!(decrypted.message_index, ours.message_index());
    assert_eq!(&decrypted.plaintext[..], text.as_bytes());
}

/// A sender whose secrets the test knows, so that it can be put at any index.
pub(crate) struct Sender {
    pub(crate) signing: Ed25519KeyPair,
    pub(crate) ratchet: MegolmRatchet,
}

impl Sender {
    pub(crate) fn new(seed: u8) -> Self {
        Self {
            signing: Ed25519KeyPair::from_seed(&[seed; 32]),
            ratchet: MegolmRatchet::from_bytes(&[seed ^ 0x5A; MegolmRatchet::LENGTH], 0),
        }
    }

    pub(crate) fn session_key(&self) -> SessionKey {
        SessionKey::new(&self.ratchet, &self.signing)
    }

    pub(crate) fn v_session_key(&self) -> VSessionKey {
        VSessionKey::from_bytes(&self.session_key().to_bytes()).unwrap()
    }

    /// The sender with `ratchet` as a libolm outbound pickle under [`PICKLE_KEY`].
    pub(crate) fn pickle_with(&self, ratchet: &MegolmRatchet) -> String {
        outbound_pickle(ratchet, &self.signing, PICKLE_KEY)
    }

    /// olmo's sender at `index`, its ratchet moved there by olmo.
    pub(crate) fn ours_at(&self, index: u32) -> GroupSession {
        let mut ratchet = self.ratchet.clone();
        ratchet.advance_to(index).unwrap();
        let session =
            GroupSession::from_libolm_pickle(&self.pickle_with(&ratchet), PICKLE_KEY, now())
                .unwrap();
        assert_eq!(session.message_index(), index);
        session
    }

    /// vodozemac's sender with the ratchet of `export` (made by vodozemac, so olmo's jump plays
    /// no part), through vodozemac's libolm pickle import.
    pub(crate) fn theirs_from(&self, export: &VExportedKey) -> VGroupSession {
        let export = ExportedSessionKey::decode(&export.to_bytes()).unwrap();
        VGroupSession::from_libolm_pickle(&self.pickle_with(export.ratchet()), PICKLE_KEY).unwrap()
    }
}

/// libolm's outbound group session pickle (version 1), written with the crate's public crypto
/// API (the same writer as in `tests/megolm_libolm/support.rs`, where libolm checks it).
pub(crate) fn outbound_pickle(
    ratchet: &MegolmRatchet,
    signing: &Ed25519KeyPair,
    pickle_key: &[u8],
) -> String {
    let mut raw = Vec::new();
    raw.extend_from_slice(&1u32.to_be_bytes());
    raw.extend_from_slice(ratchet.as_bytes());
    raw.extend_from_slice(&ratchet.index().to_be_bytes());
    raw.extend_from_slice(signing.public_key().as_bytes());
    raw.extend_from_slice(&*signing.expanded());
    let keys = CipherKeys::derive_with_salt(&[], pickle_key, b"Pickle");
    let mut out = keys.encrypt(&raw);
    let mac = keys.mac(&[&out]);
    out.extend_from_slice(&mac[..8]);
    base64::encode(out)
}
