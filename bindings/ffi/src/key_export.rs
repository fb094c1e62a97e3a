//! Key export files (`-----BEGIN MEGOLM SESSION DATA-----`), as Element and matrix-nio write them.

use std::collections::HashMap;
use std::sync::Arc;

use olmo::megolm::{
    ExportedRoomKey as CoreKey, ExportedSessionKey, KEY_EXPORT_DEFAULT_ROUNDS, decrypt_key_export,
    encrypt_key_export,
};

use crate::error::OlmoError;
use crate::megolm::InboundGroupSession;

/// PBKDF2 rounds a new export uses unless there is a reason not to.
#[uniffi::export]
pub fn key_export_default_rounds() -> u32 {
    KEY_EXPORT_DEFAULT_ROUNDS
}

/// One room key in a key export: an object, not a record, because it holds a secret (the
/// session key) that a printed record would show.
#[derive(uniffi::Object)]
pub struct ExportedRoomKey(CoreKey);

#[uniffi::export]
impl ExportedRoomKey {
    /// The key of `session` from its first known index, for `room_id`, sent by the device with
    /// Curve25519 key `sender_key`.
    #[uniffi::constructor]
    pub fn from_session(
        room_id: String,
        sender_key: String,
        session: &InboundGroupSession,
    ) -> Result<Arc<Self>, OlmoError> {
        let exported = ExportedSessionKey::from_base64(&session.export_at_first_known_index())?;
        Ok(Arc::new(Self(CoreKey::new(room_id, sender_key, exported))))
    }

    /// An inbound session from this key (unverified, as every exported key is).
    pub fn to_session(&self) -> Arc<InboundGroupSession> {
        InboundGroupSession::from_core(olmo::megolm::InboundGroupSession::import(
            &self.0.session_key,
        ))
    }

    /// The algorithm (`m.megolm.v1.aes-sha2`).
    pub fn algorithm(&self) -> String {
        self.0.algorithm.clone()
    }

    /// The room.
    pub fn room_id(&self) -> String {
        self.0.room_id.clone()
    }

    /// The Curve25519 key of the device that created the session.
    pub fn sender_key(&self) -> String {
        self.0.sender_key.clone()
    }

    /// The session id the file names.
    pub fn session_id(&self) -> String {
        self.0.session_id.clone()
    }

    /// Whether the session id is the session key's own (drop the key when not).
    pub fn session_id_matches(&self) -> bool {
        self.0.session_id_matches()
    }

    /// The session key, base64 (secret).
    pub fn session_key(&self) -> String {
        self.0.session_key.to_base64().to_string()
    }

    /// Keys the sending device claimed, by algorithm.
    pub fn sender_claimed_keys(&self) -> HashMap<String, String> {
        self.0.sender_claimed_keys.clone().into_iter().collect()
    }

    /// Curve25519 keys of the devices that forwarded the key, oldest first.
    pub fn forwarding_curve25519_key_chain(&self) -> Vec<String> {
        self.0.forwarding_curve25519_key_chain.clone()
    }

    /// Whether the sender allowed sharing the key with later members (MSC3061).
    pub fn shared_history(&self) -> bool {
        self.0.shared_history
    }
}

/// The armoured key export file of `keys` under `passphrase`, with `rounds` of PBKDF2
/// (clamped to what readers accept; see [`key_export_default_rounds`]).
#[uniffi::export]
pub fn encrypt_room_key_export(
    keys: Vec<Arc<ExportedRoomKey>>,
    passphrase: String,
    rounds: u32,
) -> String {
    let keys: Vec<CoreKey> = keys.iter().map(|key| key.0.clone()).collect();
    encrypt_key_export(&keys, &passphrase, rounds)
}

/// The keys of an armoured key export file; a wrong passphrase or an altered file is
/// [`OlmoError::KeyExport`].
#[uniffi::export]
pub fn decrypt_room_key_export(
    text: String,
    passphrase: String,
) -> Result<Vec<Arc<ExportedRoomKey>>, OlmoError> {
    Ok(decrypt_key_export(&text, &passphrase)?
        .into_iter()
        .map(|key| Arc::new(ExportedRoomKey(key)))
        .collect())
}
