//! Senders at any index without encrypting millions of messages: the test knows the sender's
//! secrets and writes a libolm outbound pickle of its state at the index wanted, which olmo
//! (`GroupSession::from_libolm_pickle`) and libolm (`OutboundGroupSession.from_pickle`) load.

use olmo::crypto::{CipherKeys, Ed25519KeyPair, base64};
use olmo::megolm::{ExportedSessionKey, GroupSession, MegolmRatchet, SessionKey};

use crate::common::peer::Peer;
use crate::support::{LibOutbound, PICKLE_KEY, now};

/// A sender whose secrets the test knows: its signing key pair and its ratchet at index 0.
pub(crate) struct Sender {
    pub(crate) signing: Ed25519KeyPair,
    pub(crate) ratchet: MegolmRatchet,
}

impl Sender {
    pub(crate) fn new(seed: u8) -> Self {
        let mut bytes = [0u8; MegolmRatchet::LENGTH];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seed.wrapping_mul(31).wrapping_add(i as u8);
        }
        Self {
            signing: Ed25519KeyPair::from_seed(&[seed; 32]),
            ratchet: MegolmRatchet::from_bytes(&bytes, 0),
        }
    }

    /// The signed session key at index 0, as a receiver gets it in `m.room_key`.
    pub(crate) fn session_key(&self) -> String {
        SessionKey::new(&self.ratchet, &self.signing)
            .to_base64()
            .to_string()
    }

    pub(crate) fn session_id(&self) -> String {
        self.signing.public_key().to_base64()
    }

    /// A libolm outbound pickle (version 1) of this sender with the ratchet `ratchet`.
    pub(crate) fn pickle_with(&self, ratchet: &MegolmRatchet) -> String {
        outbound_pickle(ratchet, &self.signing, PICKLE_KEY.as_bytes())
    }

    /// olmo's outbound at `index`, its ratchet moved there by olmo.
    pub(crate) fn ours_at(&self, index: u32) -> GroupSession {
        let mut ratchet = self.ratchet.clone();
        ratchet.advance_to(index).unwrap();
        let pickle = self.pickle_with(&ratchet);
        let session = GroupSession::from_libolm_pickle(&pickle, PICKLE_KEY.as_bytes(), now())
            .expect("olmo reads the crafted pickle");
        assert_eq!(session.message_index(), index);
        assert_eq!(session.session_id(), self.session_id());
        // The crafted pickle is exactly what olmo itself writes.
        assert_eq!(session.to_libolm_pickle(PICKLE_KEY.as_bytes()), pickle);
        session
    }

    /// libolm's outbound at `index`, its ratchet taken from `exported_key` (an export at
    /// `index`, typically made by libolm itself so olmo's jump plays no part).
    pub(crate) fn theirs_from_export(&self, peer: &mut Peer, exported_key: &str) -> LibOutbound {
        let export = ExportedSessionKey::from_base64(exported_key).unwrap();
        assert_eq!(export.signing_key(), self.signing.public_key());
        let session = LibOutbound::from_pickle(peer, &self.pickle_with(export.ratchet()));
        assert_eq!(session.session_id, self.session_id());
        assert_eq!(session.message_index(peer), export.ratchet().index());
        session
    }
}

/// libolm's outbound group session pickle, written with the crate's public crypto API:
/// `base64(AES-256-CBC(raw) ‖ HMAC-SHA-256(ciphertext)[..8])`, keys and IV from
/// HKDF-SHA-256(pickle key, empty salt, "Pickle"), and `raw = u32 1 ‖ R0‖R1‖R2‖R3 ‖ u32 index ‖
/// Ed25519 public ‖ Ed25519 expanded secret` (all integers big-endian).
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
