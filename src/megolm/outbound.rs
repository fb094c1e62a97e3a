//! The sending side of a Megolm session.

mod libolm_pickle;
mod storage;

use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;

use super::message::{MegolmEncryptError, MegolmMessage};
use super::ratchet::MegolmRatchet;
use super::rotation::{RotationPolicy, RotationReason, Timestamp};
use super::session_key::SessionKey;
use crate::crypto::{Ed25519KeyPair, Ed25519PublicKey};

/// Why an outbound session would not encrypt. The session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupEncryptError {
    /// The plaintext is too large.
    #[error(transparent)]
    Message(#[from] MegolmEncryptError),
    /// The session was invalidated (a member left, a device was removed): make a new one.
    #[error("the session was invalidated and must be replaced")]
    Invalidated,
    /// The ratchet reached its last index; a message there could never be followed by another
    /// without reusing keys, so it is not written.
    #[error("the session has used every message index")]
    Exhausted,
}

/// An outbound group session: one sender's ratchet and signing key for a room.
///
/// [`GroupSession::encrypt`] advances the ratchet before it returns: save the session before
/// sending the message, so a crash cannot lead to the same index being used twice.
pub struct GroupSession {
    ratchet: MegolmRatchet,
    signing_key: Ed25519KeyPair,
    created_at: Timestamp,
    invalidated: bool,
}

impl GroupSession {
    /// A new session created at `now`, with the operating system's randomness.
    pub fn new(now: Timestamp) -> Self {
        Self::new_with_rng(now, &mut rand::rng())
    }

    /// A new session drawing its 128 ratchet bytes, then its 32-byte Ed25519 seed, from `rng`.
    pub fn new_with_rng(now: Timestamp, rng: &mut impl CryptoRng) -> Self {
        let ratchet = MegolmRatchet::generate(rng);
        let signing_key = Ed25519KeyPair::generate(rng);
        Self {
            ratchet,
            signing_key,
            created_at: now,
            invalidated: false,
        }
    }

    /// The session id: unpadded base64 of the session's Ed25519 key.
    pub fn session_id(&self) -> String {
        self.signing_key.public_key().to_base64()
    }

    /// The session's Ed25519 key.
    pub fn signing_key(&self) -> Ed25519PublicKey {
        self.signing_key.public_key()
    }

    /// The index the next message will carry, which is also the number of messages sent.
    pub fn message_index(&self) -> u32 {
        self.ratchet.index()
    }

    /// When the session was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The signed key to share in `m.room_key`: it decrypts from the next message on.
    pub fn session_key(&self) -> SessionKey {
        SessionKey::new(&self.ratchet, &self.signing_key)
    }

    /// Encrypts and signs `plaintext` at the current index, then advances. Persist the session
    /// before sending the message.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<MegolmMessage, GroupEncryptError> {
        if self.invalidated {
            return Err(GroupEncryptError::Invalidated);
        }
        if self.ratchet.index() == u32::MAX {
            return Err(GroupEncryptError::Exhausted);
        }
        let message = MegolmMessage::encrypt(&self.ratchet, &self.signing_key, plaintext)?;
        // Below u32::MAX, so the step cannot fail.
        self.ratchet
            .advance()
            .map_err(|_| GroupEncryptError::Exhausted)?;
        Ok(message)
    }

    /// Whether the session must be replaced before the next message, and why.
    pub fn rotation_due(&self, policy: &RotationPolicy, now: Timestamp) -> Option<RotationReason> {
        if self.invalidated {
            Some(RotationReason::Invalidated)
        } else if self.message_index() >= policy.max_messages() {
            Some(RotationReason::MessageCount)
        } else if now.since(self.created_at) >= policy.max_age() {
            Some(RotationReason::Age)
        } else {
            None
        }
    }

    /// Retires the session at once (a member left, a device was removed): it refuses to
    /// encrypt from now on, and [`GroupSession::rotation_due`] says so.
    pub fn invalidate(&mut self) {
        self.invalidated = true;
    }

    /// Whether [`GroupSession::invalidate`] was called.
    pub fn is_invalidated(&self) -> bool {
        self.invalidated
    }
}

impl fmt::Debug for GroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSession")
            .field("session_id", &self.session_id())
            .field("message_index", &self.message_index())
            .field("created_at", &self.created_at)
            .field("invalidated", &self.invalidated)
            .finish_non_exhaustive()
    }
}
