//! The one error type every binding sees: an exception per concern, its `reason` the core
//! error's own text (which never holds a secret, a key or a plaintext).

use olmo::megolm::{
    GroupEncryptError, KeyExportError, MegolmDecryptError, MegolmEncryptError, SessionKeyError,
};
use olmo::olm::{SessionCreationError, SessionDecryptError};
use olmo::persist::{LibolmPickleError, PersistError};
use olmo::ratchet::{DecryptError, EncryptError};

/// Why a call failed. Kotlin: `OlmoException.<Variant>`; Swift: `OlmoError.<Variant>`; Python:
/// `OlmoError.<Variant>`. The object the call was made on is unchanged after any of them.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum OlmoError {
    /// A key, signature or argument is malformed (wrong length, bad base64, not a point).
    #[error("invalid key: {reason}")]
    Key {
        /// What was wrong.
        reason: String,
    },
    /// A message or encoded object is malformed.
    #[error("malformed input: {reason}")]
    Decode {
        /// What was wrong.
        reason: String,
    },
    /// A message did not decrypt: duplicate, too old, too far ahead, bad MAC or signature,
    /// unknown index, another session's message.
    #[error("decryption failed: {reason}")]
    Decrypt {
        /// What was wrong.
        reason: String,
    },
    /// A message could not be encrypted (too large, no chain yet, session used up).
    #[error("encryption failed: {reason}")]
    Encrypt {
        /// What was wrong.
        reason: String,
    },
    /// An inbound Olm session could not be created (unknown one-time key, other sender).
    #[error("session creation failed: {reason}")]
    SessionCreation {
        /// What was wrong.
        reason: String,
    },
    /// A stored blob did not restore (wrong key, altered, another kind, newer version).
    #[error("restore failed: {reason}")]
    Persist {
        /// What was wrong.
        reason: String,
    },
    /// A libolm pickle did not import (wrong key, altered, unknown version).
    #[error("libolm pickle: {reason}")]
    LibolmPickle {
        /// What was wrong.
        reason: String,
    },
    /// A key export file did not open (wrong passphrase or altered, malformed).
    #[error("key export: {reason}")]
    KeyExport {
        /// What was wrong.
        reason: String,
    },
    /// The store failed or refused a commit (conflict, corrupt record, the app's store).
    #[error("store: {reason}")]
    Store {
        /// What was wrong.
        reason: String,
    },
    /// A machine operation failed (malformed JSON, unknown device, wrong account...).
    #[error("machine: {reason}")]
    Machine {
        /// What was wrong.
        reason: String,
    },
    /// An OMEMO bundle, session or message was refused (bad signature, changed identity, no
    /// session with a recipient).
    #[error("omemo: {reason}")]
    Omemo {
        /// What was wrong.
        reason: String,
    },
    /// A store failed a check of the conformance suite.
    #[error("store conformance: {reason}")]
    Conformance {
        /// Which check failed and what was seen.
        reason: String,
    },
}

macro_rules! from_core {
    ($variant:ident: $($error:ty),+) => {
        $(impl From<$error> for OlmoError {
            fn from(error: $error) -> Self {
                OlmoError::$variant { reason: error.to_string() }
            }
        })+
    };
}

from_core!(Key: olmo::crypto::KeyError);
from_core!(Decode: olmo::DecodeError);
from_core!(Decrypt: DecryptError, SessionDecryptError, MegolmDecryptError);
from_core!(Encrypt: EncryptError, GroupEncryptError, MegolmEncryptError);
from_core!(SessionCreation: SessionCreationError);
from_core!(Persist: PersistError);
from_core!(LibolmPickle: LibolmPickleError);
from_core!(KeyExport: KeyExportError);
from_core!(Key: SessionKeyError);
from_core!(Store: olmo::store::StoreError);
from_core!(Machine: olmo::matrix::MachineError);
from_core!(Decrypt: olmo::matrix::UnableToDecrypt);
from_core!(Machine: olmo::xmpp::XmppError);

/// The caller's 32-byte storage key, or [`OlmoError::Key`].
pub(crate) fn storage_key(bytes: &[u8]) -> Result<olmo::persist::StorageKey, OlmoError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| OlmoError::Key {
        reason: format!("a storage key has 32 bytes, not {}", bytes.len()),
    })?;
    Ok(olmo::persist::StorageKey::from_bytes(bytes))
}
