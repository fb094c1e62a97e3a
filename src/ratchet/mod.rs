//! The double ratchet shared by Olm and both OMEMO versions.
//!
//! A protocol is a [`RatchetProfile`]: its KDF info strings, MAC length and limits. Everything
//! protocol-specific on the wire (header encoding, associated data, where the MAC goes) stays in
//! the protocol module, which hands the ratchet the header it decoded and the exact bytes the
//! MAC covers. The ratchet owns the keys and the state transitions.

pub(crate) mod chain;
pub(crate) mod keys;
pub(crate) mod skipped;
mod state;
pub(crate) mod storage;

pub use state::{DoubleRatchet, ReceivedHeader, Sealed, SendingHeader};
pub(crate) use state::{RatchetState, ReceiveStep, SendStep, SendUndo};

use thiserror::Error;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::olm::OlmProfile {}
    impl Sealed for crate::omemo::Omemo2 {}
    impl Sealed for crate::omemo::Omemo03 {}
}

use crate::crypto::{CipherError, KeyError};

/// The parameters that make the shared ratchet one protocol's ratchet. Sealed: only olmo's own
/// protocols ([`OlmProfile`](crate::olm::OlmProfile), [`Omemo2`](crate::omemo::Omemo2),
/// [`Omemo03`](crate::omemo::Omemo03)) implement it, since a profile with a weak MAC length or
/// unbounded limits would be a protocol nobody reviewed.
pub trait RatchetProfile: sealed::Sealed {
    /// HKDF info for the root chain step (`"OLM_RATCHET"`, `"WhisperRatchet"`, ...).
    const ROOT_INFO: &'static [u8];
    /// HKDF info expanding a message key seed into cipher keys (`"OLM_KEYS"`, ...).
    const MESSAGE_KEY_INFO: &'static [u8];
    /// How many bytes of HMAC-SHA-256 the wire carries.
    const MAC_LENGTH: usize;
    /// The furthest one message may jump ahead in a chain. Bounds the work one message can cause.
    const MAX_MESSAGE_GAP: u32;
    /// Skipped message keys kept for late messages, across the session; the oldest go first.
    const MAX_SKIPPED_KEYS: usize;
    /// Receiving chains kept for late messages of earlier ratchet steps; the oldest go first.
    const MAX_RECEIVING_CHAINS: usize;
}

/// Why a message could not be decrypted. The ratchet state is unchanged after any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The message's index was already decrypted in this chain (a replay or duplicate).
    #[error("message {index} of this chain was already decrypted")]
    Duplicate {
        /// The message index.
        index: u32,
    },
    /// The message is older than the skipped keys we keep; its key is gone.
    #[error("the key for message {index} was discarded (too old)")]
    Expired {
        /// The message index.
        index: u32,
    },
    /// The message is further ahead of its chain than the profile allows.
    #[error("message {index} is {gap} messages ahead of its chain (limit {limit})")]
    TooFarAhead {
        /// The message index.
        index: u32,
        /// How many messages it skips.
        gap: u32,
        /// The profile's limit.
        limit: u32,
    },
    /// The message starts a new ratchet step, but we hold no ratchet key to answer it with.
    #[error("the message uses an unknown ratchet key and no ratchet step is possible")]
    UnexpectedRatchetKey,
    /// A key exchange gave a non-contributory result.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The MAC did not verify or the padding was invalid.
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// Why a message could not be encrypted. The state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// No sending chain can be made yet (a responder that has received nothing).
    #[error("no message has been received yet, so there is no chain to send on")]
    NoSendingChain,
    /// The peer's ratchet key gives a non-contributory Diffie-Hellman result.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The chain index would overflow.
    #[error("the sending chain is exhausted")]
    ChainExhausted,
    /// The plaintext is larger than the protocol's messages may be.
    #[error("the plaintext is {length} bytes, more than the limit of {limit}")]
    MessageTooLarge {
        /// The plaintext's length.
        length: usize,
        /// The largest plaintext accepted.
        limit: usize,
    },
}
