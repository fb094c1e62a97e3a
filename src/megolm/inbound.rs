//! The receiving side of a Megolm session.
//!
//! A session keeps the ratchet at its first known index, from which any later message can be
//! opened, and the ratchet at the latest index it decrypted, so that messages read in order cost
//! one hash step each instead of a jump from the start.

mod libolm_pickle;
mod storage;

use std::cmp::Ordering;
use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::message::{MegolmDecryptError, MegolmMessage};
use super::ratchet::MegolmRatchet;
use super::session_key::{ExportedSessionKey, SessionKey};
use crate::crypto::Ed25519PublicKey;

/// A decrypted group message. Only a successful decrypt makes one, so it also proves the
/// message authentic to [`ReplayRecord::check`](super::ReplayRecord::check).
pub struct DecryptedMessage {
    /// The plaintext, wiped on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The message's index in its session.
    pub message_index: u32,
    /// The id of the session that decrypted it.
    session_id: String,
}

impl DecryptedMessage {
    pub(crate) fn new(
        plaintext: Zeroizing<Vec<u8>>,
        message_index: u32,
        session_id: String,
    ) -> Self {
        Self {
            plaintext,
            message_index,
            session_id,
        }
    }

    /// The id of the session that decrypted the message.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }
}

impl fmt::Debug for DecryptedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptedMessage")
            .field("session_id", &self.session_id)
            .field("message_index", &self.message_index)
            .finish_non_exhaustive()
    }
}

/// How two copies of a session compare, from the first one's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOrdering {
    /// The same session from the same index, equally trusted.
    Equal,
    /// The same session; this copy decrypts more (an earlier first index) or, from the same
    /// index, its key was authenticated by a signature and the other's was not.
    Better,
    /// The same session; the other copy is better.
    Worse,
    /// Not the same session (other key, or ratchets that do not meet): keep them apart.
    Unconnected,
}

/// An inbound group session, made from a shared or exported key.
#[derive(Clone)]
pub struct InboundGroupSession {
    // The backlog decryptor (`super::backlog`) walks from the initial ratchet.
    pub(super) initial: MegolmRatchet,
    latest: MegolmRatchet,
    pub(super) signing_key: Ed25519PublicKey,
    signing_key_verified: bool,
}

impl InboundGroupSession {
    /// A session from an `m.room_key` session key, whose signature was verified when it was
    /// decoded.
    pub fn new(key: &SessionKey) -> Self {
        Self::from_parts(key.ratchet().clone(), key.signing_key(), true)
    }

    /// A session from an exported or forwarded key. Nothing vouches for its signing key but
    /// whoever handed it over, so [`InboundGroupSession::is_verified`] is false.
    pub fn import(key: &ExportedSessionKey) -> Self {
        Self::from_parts(key.ratchet().clone(), key.signing_key(), false)
    }

    fn from_parts(
        ratchet: MegolmRatchet,
        signing_key: Ed25519PublicKey,
        signing_key_verified: bool,
    ) -> Self {
        Self {
            latest: ratchet.clone(),
            initial: ratchet,
            signing_key,
            signing_key_verified,
        }
    }

    /// The session id: unpadded base64 of the session's Ed25519 key.
    pub fn session_id(&self) -> String {
        self.signing_key.to_base64()
    }

    /// The session's Ed25519 key.
    pub fn signing_key(&self) -> Ed25519PublicKey {
        self.signing_key
    }

    /// Whether the key came signed by the session itself (`m.room_key`) rather than exported.
    pub fn is_verified(&self) -> bool {
        self.signing_key_verified
    }

    /// The first index this session can decrypt.
    pub fn first_known_index(&self) -> u32 {
        self.initial.index()
    }

    /// Verifies the signature, then the MAC, then decrypts. On any error the session is
    /// unchanged; on success it remembers the ratchet if the message is the latest so far.
    pub fn decrypt(
        &mut self,
        message: &MegolmMessage,
    ) -> Result<DecryptedMessage, MegolmDecryptError> {
        message.verify_signature(&self.signing_key)?;
        let ratchet = self.ratchet_at(message.message_index())?;
        let plaintext = message.open(&ratchet)?;
        self.remember_latest(ratchet);
        Ok(DecryptedMessage::new(
            plaintext,
            message.message_index(),
            self.session_id(),
        ))
    }

    /// The ratchet at `index`, from the latest ratchet when it is not past `index`, else from
    /// the first known one.
    pub(crate) fn ratchet_at(&self, index: u32) -> Result<MegolmRatchet, MegolmDecryptError> {
        let start = if self.latest.index() <= index {
            &self.latest
        } else if self.initial.index() <= index {
            &self.initial
        } else {
            return Err(MegolmDecryptError::UnknownIndex {
                message: index,
                first_known: self.initial.index(),
            });
        };
        let mut ratchet = start.clone();
        // `start` is at or before `index`, so the jump cannot fail.
        ratchet
            .advance_to(index)
            .map_err(|_| MegolmDecryptError::UnknownIndex {
                message: index,
                first_known: self.initial.index(),
            })?;
        Ok(ratchet)
    }

    /// The index of the latest ratchet reached (where the next in-order message starts from).
    pub(crate) fn latest_index(&self) -> u32 {
        self.latest.index()
    }

    pub(crate) fn remember_latest(&mut self, ratchet: MegolmRatchet) {
        if ratchet.index() > self.latest.index() {
            self.latest = ratchet;
        }
    }

    /// The key to hand on (key export, forwarding, a late joiner) from `index` on, or `None`
    /// if `index` is before the first known index.
    pub fn export_at(&self, index: u32) -> Option<ExportedSessionKey> {
        let mut ratchet = self.initial.clone();
        ratchet.advance_to(index).ok()?;
        Some(ExportedSessionKey::from_ratchet(ratchet, self.signing_key))
    }

    /// The key from the first known index on.
    pub fn export_at_first_known_index(&self) -> ExportedSessionKey {
        ExportedSessionKey::new(&self.initial, self.signing_key)
    }

    /// Compares two copies of what may be one session, as received from different places.
    pub fn compare(&self, other: &Self) -> SessionOrdering {
        if self.signing_key != other.signing_key {
            return SessionOrdering::Unconnected;
        }
        let (earlier, later) = if self.first_known_index() <= other.first_known_index() {
            (&self.initial, &other.initial)
        } else {
            (&other.initial, &self.initial)
        };
        let mut advanced = earlier.clone();
        let meets = advanced.advance_to(later.index()).is_ok()
            && bool::from(advanced.as_bytes().ct_eq(later.as_bytes()));
        if !meets {
            return SessionOrdering::Unconnected;
        }
        match self.first_known_index().cmp(&other.first_known_index()) {
            Ordering::Less => SessionOrdering::Better,
            Ordering::Greater => SessionOrdering::Worse,
            Ordering::Equal => match (self.signing_key_verified, other.signing_key_verified) {
                (true, false) => SessionOrdering::Better,
                (false, true) => SessionOrdering::Worse,
                _ => SessionOrdering::Equal,
            },
        }
    }

    /// One session combining two copies: the earlier first index, verified if either copy
    /// was (they share the key). `None` if the copies are [`SessionOrdering::Unconnected`].
    pub fn merge(&self, other: &Self) -> Option<Self> {
        let (better, worse) = match self.compare(other) {
            SessionOrdering::Unconnected => return None,
            SessionOrdering::Worse => (other, self),
            SessionOrdering::Better | SessionOrdering::Equal => (self, other),
        };
        let mut merged = better.clone();
        merged.signing_key_verified |= worse.signing_key_verified;
        merged.remember_latest(worse.latest.clone());
        Some(merged)
    }
}

impl fmt::Debug for InboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundGroupSession")
            .field("session_id", &self.session_id())
            .field("first_known_index", &self.first_known_index())
            .field("verified", &self.signing_key_verified)
            .finish_non_exhaustive()
    }
}
