//! Olm (`m.olm.v1.curve25519-aes-sha2`): pairwise sessions between Matrix devices.
//!
//! Olm is the shared double ratchet with the [`OlmProfile`], a 3DH key agreement, and a small
//! protobuf wire format whose MAC (8 bytes) covers the version byte and the message body.

mod account;
mod message;
mod one_time_keys;
mod session;
mod shared_secret;

pub use account::{Account, IdentityKeys, InboundCreationResult, SessionCreationError};
pub use message::{
    MAX_MESSAGE_LENGTH, MAX_PLAINTEXT_LENGTH, Message, MessageType, OlmMessage, PreKeyMessage,
};
pub use one_time_keys::{KeyId, MAX_ONE_TIME_KEYS};
pub use session::{Session, SessionDecryptError, SessionKeys};

pub use crate::ratchet::{DecryptError, EncryptError};

use crate::ratchet::RatchetProfile;

/// Olm's parameters for the shared ratchet.
#[derive(Debug, Clone, Copy)]
pub struct OlmProfile;

impl RatchetProfile for OlmProfile {
    const ROOT_INFO: &'static [u8] = b"OLM_RATCHET";
    const MESSAGE_KEY_INFO: &'static [u8] = b"OLM_KEYS";
    const MAC_LENGTH: usize = 8;
    /// libolm and vodozemac both refuse to skip more than 2000 keys for one message.
    const MAX_MESSAGE_GAP: u32 = 2000;
    /// vodozemac keeps 40 per chain for 5 chains; libolm 40 per session. We keep vodozemac's
    /// total, session-wide, and hand libolm the newest 40 on export.
    const MAX_SKIPPED_KEYS: usize = 200;
    /// Both references keep five.
    const MAX_RECEIVING_CHAINS: usize = 5;
}

/// The protocol version byte at the start of every Olm message.
pub(crate) const PROTOCOL_VERSION: u8 = 3;
