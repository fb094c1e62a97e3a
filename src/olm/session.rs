//! An Olm session: the shared ratchet plus the three keys that identify the session.

mod libolm_pickle;
mod storage;

use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use super::OlmProfile;
use super::message::{MAX_PLAINTEXT_LENGTH, Message, OlmMessage, PreKeyMessage};
use super::shared_secret::InitialKeys;
use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, base64, sha256};
use crate::ratchet::{DecryptError, DoubleRatchet, EncryptError};

/// The keys that identify a session, always in Alice's and Bob's roles (Alice initiated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionKeys {
    /// Alice's Curve25519 identity key.
    pub identity_key: Curve25519PublicKey,
    /// Alice's base key for this session.
    pub base_key: Curve25519PublicKey,
    /// Bob's one-time (or fallback) key that Alice used.
    pub one_time_key: Curve25519PublicKey,
}

impl SessionKeys {
    /// The session id: unpadded base64 of SHA-256(identity key ‖ base key ‖ one-time key).
    pub fn session_id(&self) -> String {
        base64::encode(sha256(&[
            self.identity_key.as_bytes(),
            self.base_key.as_bytes(),
            self.one_time_key.as_bytes(),
        ]))
    }
}

/// Why a session could not decrypt a message. The session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionDecryptError {
    /// A pre-key message that was made for another session.
    #[error("the pre-key message belongs to another session")]
    SessionMismatch,
    /// The ratchet refused the message.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
}

/// A pairwise Olm session.
#[derive(Clone)]
pub struct Session {
    keys: SessionKeys,
    ratchet: DoubleRatchet<OlmProfile>,
    received_message: bool,
}

impl Session {
    pub(crate) fn outbound(
        keys: SessionKeys,
        initial: &InitialKeys,
        ratchet_key: Curve25519KeyPair,
    ) -> Self {
        Self {
            keys,
            ratchet: DoubleRatchet::with_sending_chain(
                &initial.root_key,
                ratchet_key,
                &initial.chain_key,
            ),
            received_message: false,
        }
    }

    pub(crate) fn inbound(
        keys: SessionKeys,
        initial: &InitialKeys,
        their_ratchet_key: Curve25519PublicKey,
    ) -> Self {
        Self {
            keys,
            ratchet: DoubleRatchet::with_receiving_chain(
                &initial.root_key,
                their_ratchet_key,
                &initial.chain_key,
            ),
            received_message: false,
        }
    }

    /// The session id (the same on both sides).
    pub fn session_id(&self) -> String {
        self.keys.session_id()
    }

    /// The keys that identify this session.
    pub fn session_keys(&self) -> SessionKeys {
        self.keys
    }

    /// Whether a message from the other side has been decrypted. Until then an initiator sends
    /// pre-key messages.
    pub fn has_received_message(&self) -> bool {
        self.received_message
    }

    /// Whether `message` is a pre-key message of this session.
    pub fn matches_inbound_session(&self, message: &PreKeyMessage) -> bool {
        message.identity_key() == self.keys.identity_key
            && message.base_key() == self.keys.base_key
            && message.one_time_key() == self.keys.one_time_key
    }

    /// Encrypts with the operating system's random generator (used only for ratchet steps).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<OlmMessage, EncryptError> {
        self.encrypt_with_rng(plaintext, &mut rand::rng())
    }

    /// Encrypts, drawing 32 bytes from `rng` when a new ratchet key is due. The session's state
    /// has advanced when this returns: persist it before sending the message.
    pub fn encrypt_with_rng(
        &mut self,
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<OlmMessage, EncryptError> {
        // Checked before the chain moves, so a refused plaintext costs no message key.
        if plaintext.len() > MAX_PLAINTEXT_LENGTH {
            return Err(EncryptError::MessageTooLarge {
                length: plaintext.len(),
                limit: MAX_PLAINTEXT_LENGTH,
            });
        }
        let mut sent = None;
        let sealed = self
            .ratchet
            .encrypt(rng, plaintext, &[], |header, ciphertext| {
                sent = Some((*header, ciphertext.len()));
                Message::encode_body(&header.ratchet_key, header.index, ciphertext)
            })?;
        let (header, ciphertext_length) = sent.ok_or(EncryptError::NoSendingChain)?;
        let message = Message::from_sealed(sealed, &header, ciphertext_length);
        Ok(if self.received_message {
            OlmMessage::Normal(message)
        } else {
            OlmMessage::PreKey(PreKeyMessage::new(
                self.keys.one_time_key,
                self.keys.base_key,
                self.keys.identity_key,
                message,
            ))
        })
    }

    /// Decrypts a message of this session; on any error the session is unchanged.
    pub fn decrypt(
        &mut self,
        message: &OlmMessage,
    ) -> Result<Zeroizing<Vec<u8>>, SessionDecryptError> {
        let message = match message {
            OlmMessage::Normal(message) => message,
            OlmMessage::PreKey(pre_key) => {
                if !self.matches_inbound_session(pre_key) {
                    return Err(SessionDecryptError::SessionMismatch);
                }
                pre_key.message()
            }
        };
        Ok(self.decrypt_message(message)?)
    }

    pub(crate) fn decrypt_message(
        &mut self,
        message: &Message,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let plaintext = self.ratchet.decrypt(
            &message.header(),
            &[message.authenticated_bytes()],
            message.mac(),
            message.ciphertext(),
        )?;
        self.received_message = true;
        Ok(plaintext)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id())
            .field("received_message", &self.received_message)
            .finish_non_exhaustive()
    }
}
