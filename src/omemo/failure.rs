//! One flat answer to "why did this fail?", so callers branch on the cause (a bad MAC, a
//! replay, an unknown device) without unwrapping the error layers.

use super::device::DeviceError;
use super::message::MessageError;
use super::payload::PayloadError;
use super::prekeys::PreKeyError;
use super::session::SessionError;
use crate::crypto::CipherError;
use crate::ratchet::DecryptError;

/// The cause in words, for messages.
impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureReason::NotForUs => "no key for this device",
            FailureReason::NoSession => "no session",
            FailureReason::BadMac => "bad MAC",
            FailureReason::Duplicate => "already decrypted",
            FailureReason::IdentityChanged => "identity changed",
            FailureReason::Expired => "key discarded",
            FailureReason::TooFarAhead => "too far ahead",
            FailureReason::UnknownPreKey => "unknown pre-key",
            FailureReason::InvalidBundle => "invalid bundle",
            FailureReason::CannotEncrypt => "cannot encrypt",
            FailureReason::Malformed => "malformed",
        })
    }
}

/// The cause of an OMEMO failure, as [`MessageError::reason`] and [`DeviceError::reason`] give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The element has no key for this device.
    NotForUs,
    /// No session with the sender's device can open the message.
    NoSession,
    /// A MAC or authentication tag did not verify: the message was altered or is not ours.
    BadMac,
    /// The message was already decrypted (a replay or duplicate).
    Duplicate,
    /// A key exchange or bundle from a known device under another identity key (see
    /// [`DeviceError::IdentityChanged`]).
    IdentityChanged,
    /// The message's key was discarded (too old).
    Expired,
    /// The message is further ahead of its chain than allowed.
    TooFarAhead,
    /// The key exchange names a pre-key or signed pre-key we do not have (or one already used).
    UnknownPreKey,
    /// The bundle was refused.
    InvalidBundle,
    /// The session could not encrypt.
    CannotEncrypt,
    /// Anything malformed: encodings, lengths, keys, a missing IV or payload.
    Malformed,
}

impl MessageError {
    /// The cause, flattened.
    pub fn reason(&self) -> FailureReason {
        match self {
            MessageError::NotForUs => FailureReason::NotForUs,
            MessageError::Device(error) => error.reason(),
            MessageError::Payload(error) => payload_reason(error),
            _ => FailureReason::Malformed,
        }
    }
}

impl DeviceError {
    /// The cause, flattened.
    pub fn reason(&self) -> FailureReason {
        match self {
            DeviceError::NoSession { .. } => FailureReason::NoSession,
            DeviceError::IdentityChanged { .. } => FailureReason::IdentityChanged,
            DeviceError::JidTooLong { .. } | DeviceError::InvalidFingerprint => {
                FailureReason::Malformed
            }
            DeviceError::Session(error) => session_reason(error),
        }
    }
}

fn session_reason(error: &SessionError) -> FailureReason {
    match error {
        SessionError::Bundle(_) => FailureReason::InvalidBundle,
        SessionError::PreKey(PreKeyError::MissingPreKey) => FailureReason::Malformed,
        SessionError::PreKey(_) => FailureReason::UnknownPreKey,
        SessionError::SessionMismatch => FailureReason::NoSession,
        SessionError::Decrypt(error) => decrypt_reason(error),
        SessionError::Encrypt(_) => FailureReason::CannotEncrypt,
        _ => FailureReason::Malformed,
    }
}

fn decrypt_reason(error: &DecryptError) -> FailureReason {
    match error {
        DecryptError::Duplicate { .. } => FailureReason::Duplicate,
        DecryptError::Expired { .. } => FailureReason::Expired,
        DecryptError::TooFarAhead { .. } => FailureReason::TooFarAhead,
        // A ratchet key we cannot answer: no state of ours made the message.
        DecryptError::UnexpectedRatchetKey => FailureReason::NoSession,
        DecryptError::Cipher(CipherError::Mac) => FailureReason::BadMac,
        _ => FailureReason::Malformed,
    }
}

fn payload_reason(error: &PayloadError) -> FailureReason {
    match error {
        PayloadError::Cipher(CipherError::Mac) => FailureReason::BadMac,
        _ => FailureReason::Malformed,
    }
}
