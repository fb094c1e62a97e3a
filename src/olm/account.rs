//! An Olm account: the device's identity keys and the keys others claim to reach it.

mod libolm_pickle;
mod storage;

use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use super::message::PreKeyMessage;
use super::one_time_keys::{KeyId, MAX_ONE_TIME_KEYS, OneTimeKeys};
use super::session::{Session, SessionKeys};
use super::shared_secret;
use crate::crypto::{
    Curve25519KeyPair, Curve25519PublicKey, Ed25519KeyPair, Ed25519PublicKey, Ed25519Signature,
    KeyError,
};
use crate::ratchet::DecryptError;

/// The device's public identity keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityKeys {
    /// The signing key.
    pub ed25519: Ed25519PublicKey,
    /// The key-agreement key.
    pub curve25519: Curve25519PublicKey,
}

/// Why an inbound session could not be created. The account is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionCreationError {
    /// The pre-key message names a different sender identity key than expected.
    #[error("the pre-key message was sent by a different identity key")]
    MismatchedIdentityKey,
    /// The message uses a one-time key this account does not have (used or never ours).
    #[error("the one-time key of the pre-key message is unknown")]
    MissingOneTimeKey,
    /// A key exchange gave a non-contributory result.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The first message did not decrypt.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
}

/// A new inbound session and the plaintext of the message that created it. `Debug` shows the
/// session, never the plaintext.
pub struct InboundCreationResult {
    /// The session.
    pub session: Session,
    /// The first message's plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// An Olm account.
#[derive(Clone)]
pub struct Account {
    signing_key: Ed25519KeyPair,
    identity_key: Curve25519KeyPair,
    one_time_keys: OneTimeKeys,
}

impl Default for Account {
    fn default() -> Self {
        Self::new()
    }
}

impl Account {
    /// A new account with keys from the operating system's random generator.
    pub fn new() -> Self {
        Self::with_rng(&mut rand::rng())
    }

    /// A new account with keys from `rng`: 32 bytes of Ed25519 seed, then 32 bytes of
    /// Curve25519 secret (libolm's order, so libolm's vectors replay).
    pub fn with_rng(rng: &mut impl CryptoRng) -> Self {
        let signing_key = Ed25519KeyPair::generate(rng);
        let identity_key = Curve25519KeyPair::generate(rng);
        Self {
            signing_key,
            identity_key,
            one_time_keys: OneTimeKeys::default(),
        }
    }

    /// Both public identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        IdentityKeys {
            ed25519: self.ed25519_key(),
            curve25519: self.curve25519_key(),
        }
    }

    /// The Ed25519 signing key.
    pub fn ed25519_key(&self) -> Ed25519PublicKey {
        self.signing_key.public_key()
    }

    /// The Curve25519 identity key.
    pub fn curve25519_key(&self) -> Curve25519PublicKey {
        self.identity_key.public_key()
    }

    /// Signs `message` with the Ed25519 identity key.
    pub fn sign(&self, message: &[u8]) -> Ed25519Signature {
        self.signing_key.sign(message)
    }

    /// The most one-time keys the account keeps.
    pub fn max_number_of_one_time_keys(&self) -> usize {
        MAX_ONE_TIME_KEYS
    }

    /// Generates `count` one-time keys with the operating system's generator.
    pub fn generate_one_time_keys(&mut self, count: usize) {
        self.generate_one_time_keys_with_rng(count, &mut rand::rng());
    }

    /// Generates `count` one-time keys (32 bytes of `rng` each); the oldest beyond the bound
    /// are evicted.
    pub fn generate_one_time_keys_with_rng(&mut self, count: usize, rng: &mut impl CryptoRng) {
        self.one_time_keys.generate(count, rng);
    }

    /// The one-time keys not yet marked as published, oldest first.
    pub fn unpublished_one_time_keys(&self) -> Vec<(KeyId, Curve25519PublicKey)> {
        self.one_time_keys.unpublished()
    }

    /// Marks every one-time key and the current fallback key as published.
    pub fn mark_keys_as_published(&mut self) {
        self.one_time_keys.mark_published();
    }

    /// Replaces the fallback key (the old one stays valid until forgotten).
    pub fn generate_fallback_key(&mut self) -> KeyId {
        self.generate_fallback_key_with_rng(&mut rand::rng())
    }

    /// Replaces the fallback key using 32 bytes of `rng`.
    pub fn generate_fallback_key_with_rng(&mut self, rng: &mut impl CryptoRng) -> KeyId {
        self.one_time_keys.generate_fallback(rng)
    }

    /// The current fallback key if it is not published yet.
    pub fn unpublished_fallback_key(&self) -> Option<(KeyId, Curve25519PublicKey)> {
        self.one_time_keys.unpublished_fallback()
    }

    /// Forgets the previous fallback key; returns whether there was one.
    pub fn forget_fallback_key(&mut self) -> bool {
        self.one_time_keys.forget_previous_fallback()
    }

    /// Starts a session with a device, given its identity key and a claimed one-time key.
    pub fn create_outbound_session(
        &self,
        identity_key: Curve25519PublicKey,
        one_time_key: Curve25519PublicKey,
    ) -> Result<Session, KeyError> {
        self.create_outbound_session_with_rng(identity_key, one_time_key, &mut rand::rng())
    }

    /// Starts a session drawing the base key, then the first ratchet key, from `rng`.
    pub fn create_outbound_session_with_rng(
        &self,
        identity_key: Curve25519PublicKey,
        one_time_key: Curve25519PublicKey,
        rng: &mut impl CryptoRng,
    ) -> Result<Session, KeyError> {
        let base_key = Curve25519KeyPair::generate(rng);
        let ratchet_key = Curve25519KeyPair::generate(rng);
        let initial =
            shared_secret::alice(&self.identity_key, &base_key, &identity_key, &one_time_key)?;
        let keys = SessionKeys {
            identity_key: self.curve25519_key(),
            base_key: base_key.public_key(),
            one_time_key,
        };
        Ok(Session::outbound(keys, &initial, ratchet_key))
    }

    /// Creates the session a pre-key message starts and decrypts that message. The sender must
    /// be `their_identity_key`. A one-time key is removed only once the message decrypted;
    /// fallback keys are kept.
    pub fn create_inbound_session(
        &mut self,
        their_identity_key: Curve25519PublicKey,
        message: &PreKeyMessage,
    ) -> Result<InboundCreationResult, SessionCreationError> {
        if message.identity_key() != their_identity_key {
            return Err(SessionCreationError::MismatchedIdentityKey);
        }
        let (one_time_key, is_fallback) = self
            .one_time_keys
            .find(&message.one_time_key())
            .ok_or(SessionCreationError::MissingOneTimeKey)?;
        let initial = shared_secret::bob(
            &self.identity_key,
            one_time_key,
            &their_identity_key,
            &message.base_key(),
        )?;
        let keys = SessionKeys {
            identity_key: their_identity_key,
            base_key: message.base_key(),
            one_time_key: message.one_time_key(),
        };
        let mut session = Session::inbound(keys, &initial, message.message().ratchet_key());
        let plaintext = session.decrypt_message(message.message())?;
        if !is_fallback {
            self.one_time_keys.remove(&message.one_time_key());
        }
        Ok(InboundCreationResult { session, plaintext })
    }
}

impl fmt::Debug for InboundCreationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundCreationResult")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("identity_keys", &self.identity_keys())
            .field("one_time_keys", &self.one_time_keys.keys.len())
            .finish_non_exhaustive()
    }
}
