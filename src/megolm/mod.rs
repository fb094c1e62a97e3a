//! Megolm (`m.megolm.v1.aes-sha2`): one sender's ratchet for a whole room.
//!
//! - [`GroupSession`]: the sender's session: encrypt, share its [`SessionKey`], and know when
//!   to replace it ([`RotationPolicy`], [`GroupSession::invalidate`]).
//! - [`InboundGroupSession`]: a receiver's copy: decrypt, export at an index, compare and merge
//!   copies, and [`InboundGroupSession::decrypt_backlog`] for bots catching up on a room.
//! - [`ReplayRecord`]: which event each message index was first seen in.
//! - Key export files ([`encrypt_key_export`], [`decrypt_key_export`]): the passphrase-protected
//!   `MEGOLM SESSION DATA` files clients exchange, holding [`ExportedRoomKey`]s.
//!
//! They are built from:
//!
//! - [`MegolmRatchet`]: the hash ratchet `R0‖R1‖R2‖R3` and its u32 index, with the fast jump
//!   [`MegolmRatchet::advance_to`] and the per-index message keys
//!   (HKDF(zero, ratchet, `"MEGOLM_KEYS"`) → AES-256-CBC + HMAC-SHA-256).
//! - [`MegolmMessage`]: `0x03 ‖ 1: index ‖ 2: ciphertext ‖ MAC[8] ‖ Ed25519 signature[64]`,
//!   decoded strictly and kept as received (the MAC and signature cover those bytes).
//! - [`SessionKey`] (`m.room_key`, signed, 229 bytes) and [`ExportedSessionKey`] (forwarded keys
//!   and key export, unsigned, 165 bytes).
//!
//! Index order is plain u32 order, as in vodozemac: a ratchet only moves forward, and a ratchet
//! at `u32::MAX` cannot advance. libolm instead treats an index more than 2^31 ahead as "in the
//! past"; the two agree on every index a real session reaches.

mod backlog;
mod inbound;
mod key_export;
mod message;
mod outbound;
mod ratchet;
mod replay;
mod rotation;
mod session_key;

pub use inbound::{DecryptedMessage, InboundGroupSession, SessionOrdering};
pub use key_export::{
    ExportedRoomKey, KEY_EXPORT_DEFAULT_ROUNDS, KEY_EXPORT_FOOTER, KEY_EXPORT_HEADER,
    KEY_EXPORT_MAX_ROUNDS, KeyExportError, decrypt_key_export, encrypt_key_export,
    encrypt_key_export_with_rng, room_keys_from_json, room_keys_to_json,
};
pub use outbound::{GroupEncryptError, GroupSession};
pub use replay::{Replay, ReplayRecord};
pub use rotation::{RotationPolicy, RotationReason, Timestamp};

pub use message::{
    MAX_MESSAGE_LENGTH, MAX_PLAINTEXT_LENGTH, MegolmDecryptError, MegolmEncryptError, MegolmMessage,
};
pub use ratchet::{AdvanceError, MegolmRatchet};
pub use session_key::{ExportedSessionKey, SessionKey, SessionKeyError};

/// The version byte at the start of every Megolm message.
pub(crate) const MESSAGE_VERSION: u8 = 3;

/// HKDF info for the message keys.
pub(crate) const MESSAGE_KEY_INFO: &[u8] = b"MEGOLM_KEYS";
