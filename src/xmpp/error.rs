//! What can go wrong in the XMPP machine, typed so a client can act on it. No variant carries
//! key material or plaintext.

use thiserror::Error;

use crate::omemo::stanza::StanzaError;
use crate::omemo::{FailureReason, Version};
use crate::store::StoreError;

/// Why an XMPP machine operation failed. After any of these the store is unchanged, except
/// where a variant says what the machine recorded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XmppError {
    /// The store failed, or kept conflicting with other writers after retries.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stanza payload is not what XEP-0384 says.
    #[error(transparent)]
    Stanza(#[from] StanzaError),
    /// A bundle failed its checks (signature, keys).
    #[error("the bundle of device {device_id} of {jid} is refused: {reason}")]
    BadBundle {
        /// The bundle's owner.
        jid: String,
        /// The device.
        device_id: u32,
        /// Why.
        reason: String,
    },
    /// A known device offered another identity key: nothing changed; accept it with
    /// [`XmppMachine::accept_identity`](super::XmppMachine::accept_identity) to go on.
    #[error("device {device_id} of {jid} changed its identity key")]
    IdentityChanged {
        /// The version.
        version: Version,
        /// The sender.
        jid: String,
        /// The device.
        device_id: u32,
        /// The fingerprint we know.
        known: String,
        /// The fingerprint offered.
        offered: String,
    },
    /// The message could not be decrypted (the machine counts consecutive failures per device:
    /// see [`DecryptFailure::rebuild_suggested`]).
    #[error("{0}")]
    Decrypt(DecryptFailure),
    /// An OMEMO 2 envelope names another sender or recipient than the stanza it came in.
    #[error("the envelope's {0} does not match the stanza")]
    EnvelopeMismatch(&'static str),
    /// The store belongs to another account.
    #[error("the store belongs to another account")]
    WrongAccount,
    /// A stored record of the machine is not what this build wrote.
    #[error("stored {0} is malformed")]
    Corrupt(&'static str),
}

impl crate::store::Retryable for XmppError {
    fn is_conflict(&self) -> bool {
        matches!(self, XmppError::Store(error) if error.is_conflict())
    }
}

/// A message that did not decrypt, and what the machine made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptFailure {
    /// Why, in the core's terms.
    pub reason: FailureReason,
    /// The version.
    pub version: Version,
    /// The sender's device.
    pub device_id: u32,
    /// Messages from this device that failed in a row (recorded by the machine).
    pub failures_in_a_row: u32,
    /// The device keeps failing: build a new session from its bundle.
    pub rebuild_suggested: bool,
}

impl std::fmt::Display for DecryptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} message from device {} did not decrypt ({}, {} in a row)",
            self.version, self.device_id, self.reason, self.failures_in_a_row
        )
    }
}
