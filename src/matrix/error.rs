//! What can go wrong in the machine, typed so an application can act on it. No variant carries
//! key material or plaintext.

use thiserror::Error;

use crate::store::StoreError;

/// Why a machine operation failed. After any of these the store is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MachineError {
    /// The store failed, or kept conflicting with other writers after retries.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Input JSON that is not what the specification says (a missing or mistyped field).
    #[error("malformed input: {0}")]
    Json(&'static str),
    /// Input larger than the machine accepts.
    #[error("input too large: {0}")]
    TooLarge(&'static str),
    /// The store belongs to another account or device.
    #[error("the store belongs to another device")]
    WrongAccount,
    /// A stored record of the machine is not what this build wrote.
    #[error("stored {0} is malformed")]
    Corrupt(&'static str),
    /// The request id is not one the machine handed out (or it was already marked sent).
    #[error("unknown request id")]
    UnknownRequest,
    /// A room has no encryption settings (`m.room.encryption` not seen) or an unknown algorithm.
    #[error("the room is not encrypted with an algorithm olmo speaks")]
    RoomNotEncrypted,
    /// A signature in a server response did not verify, or ids in it do not match.
    #[error("a signed object in the response failed its check: {0}")]
    BadSignedObject(&'static str),
    /// Encryption refused (a message too large, or the session exhausted).
    #[error("encryption failed: {0}")]
    Encrypt(&'static str),
}

impl crate::store::Retryable for MachineError {
    fn is_conflict(&self) -> bool {
        matches!(self, MachineError::Store(error) if error.is_conflict())
    }
}

/// Why a room event could not be decrypted. The store is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UnableToDecrypt {
    /// No room key for this session has arrived (yet).
    #[error("no room key for session {session_id}")]
    NoSession {
        /// The Megolm session id.
        session_id: String,
    },
    /// The key we hold starts after this message.
    #[error("the room key starts at index {first_known}, after message {index}")]
    UnknownIndex {
        /// The message's index.
        index: u32,
        /// The first index the key we hold can decrypt.
        first_known: u32,
    },
    /// The sender told us it will not send this key (`m.room_key.withheld`).
    #[error("the key was withheld: {code}")]
    Withheld {
        /// The withheld code (`m.unverified`, `m.blacklisted`, ...).
        code: String,
    },
    /// Another event already used this (session, index): a replay.
    #[error("message {index} of this session was already used by event {first_event_id}")]
    Replay {
        /// The message index.
        index: u32,
        /// The event that used it first.
        first_event_id: String,
    },
    /// The message's signature or MAC is wrong for the session's key.
    #[error("the message does not authenticate under the session's key")]
    BadSignature,
    /// The decrypted event names another room, or the session was not sent by the sender's
    /// device.
    #[error("the event does not belong here: {0}")]
    SenderMismatch(&'static str),
    /// Not an `m.room.encrypted` event olmo understands.
    #[error("malformed event: {0}")]
    Malformed(&'static str),
    /// The machine failed (the store, or a stored record that does not open).
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// Why a to-device event was not decrypted. The store is unchanged by it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ToDeviceError {
    /// The event carries no ciphertext for our Curve25519 key.
    #[error("no ciphertext for this device")]
    NotForUs,
    /// An ordinary (type 1) message that no session with the sender decrypts: the session is
    /// wedged. The machine queues a new session and an `m.dummy` to the sender's device.
    #[error("no session with the sender decrypts this message")]
    NoSession,
    /// A pre-key message naming a one-time key we do not hold (used, or never ours).
    #[error("the pre-key message names an unknown one-time key")]
    UnknownOneTimeKey,
    /// The payload names another recipient or recipient key, or its sender or sender keys do
    /// not match the device that sent it.
    #[error("the decrypted payload fails the specification's checks: {0}")]
    Mismatch(&'static str),
    /// Not a to-device event olmo understands.
    #[error("malformed event: {0}")]
    Malformed(&'static str),
}
