//! Megolm: a room's outbound session and the inbound sessions made from shared keys.

use std::sync::Arc;

use olmo::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession as CoreInbound, MegolmMessage,
    SessionKey, SessionOrdering,
};
use olmo::time::Timestamp;

use crate::error::{OlmoError, storage_key};
use crate::sync::Locked;

/// The message index written in a Megolm message (readable before decrypting, for replay
/// checks keyed on it).
#[uniffi::export]
pub fn megolm_message_index(message: &[u8]) -> Result<u32, OlmoError> {
    Ok(MegolmMessage::decode(message)?.message_index())
}

/// A room's outbound Megolm session: one sender's ratchet and signing key.
#[derive(uniffi::Object)]
pub struct OutboundGroupSession(Locked<GroupSession>);

#[uniffi::export]
impl OutboundGroupSession {
    /// A new session, created now (by the system clock, for the rotation policy).
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Locked::new(GroupSession::new(Timestamp::now()))))
    }

    /// Restores a session from [`OutboundGroupSession::save`]'s blob and the same 32-byte key.
    #[uniffi::constructor]
    pub fn restore(blob: Vec<u8>, key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let session = GroupSession::restore(&blob, &storage_key(&key)?)?;
        Ok(Arc::new(Self(Locked::new(session))))
    }

    /// Imports a libolm outbound group session pickle (libolm keeps no creation time: now).
    #[uniffi::constructor]
    pub fn from_libolm_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let session = GroupSession::from_libolm_pickle(&pickle, &pickle_key, Timestamp::now())?;
        Ok(Arc::new(Self(Locked::new(session))))
    }

    /// The session sealed under a 32-byte key. Save after every encrypt.
    pub fn save(&self, key: Vec<u8>) -> Result<Vec<u8>, OlmoError> {
        Ok(self.0.lock().save(&storage_key(&key)?))
    }

    /// The session as a libolm pickle under `pickle_key`.
    pub fn to_libolm_pickle(&self, pickle_key: Vec<u8>) -> String {
        self.0.lock().to_libolm_pickle(&pickle_key)
    }

    /// The session id (the base64 signing key).
    pub fn session_id(&self) -> String {
        self.0.lock().session_id()
    }

    /// The index the next message will have.
    pub fn message_index(&self) -> u32 {
        self.0.lock().message_index()
    }

    /// The signed session key at the current index, base64, to share in `m.room_key` (secret:
    /// whoever holds it reads the room from this index on).
    pub fn session_key(&self) -> String {
        self.0.lock().session_key().to_base64().to_string()
    }

    /// Encrypts one room event; the ratchet has advanced when this returns.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, OlmoError> {
        let message = self.0.lock().encrypt(plaintext)?;
        Ok(message.to_bytes())
    }

    /// Refuses every later encrypt (a member left): make a new session.
    pub fn invalidate(&self) {
        self.0.lock().invalidate();
    }

    /// Whether [`OutboundGroupSession::invalidate`] was called.
    pub fn is_invalidated(&self) -> bool {
        self.0.lock().is_invalidated()
    }
}

/// How two copies of one inbound session compare (see [`InboundGroupSession::compare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GroupSessionOrdering {
    /// They decrypt the same messages.
    Equal,
    /// This one decrypts more (it starts earlier).
    Better,
    /// The other one decrypts more.
    Worse,
    /// Different sessions, or ratchets that disagree.
    Unconnected,
}

/// An inbound Megolm session: decrypts a sender's room messages from its first known index.
#[derive(uniffi::Object)]
pub struct InboundGroupSession(Locked<CoreInbound>);

#[uniffi::export]
impl InboundGroupSession {
    /// A session from an `m.room_key` session key (its signature is checked).
    #[uniffi::constructor]
    pub fn new(session_key: String) -> Result<Arc<Self>, OlmoError> {
        let key = SessionKey::from_base64(&session_key)?;
        Ok(Arc::new(Self(Locked::new(CoreInbound::new(&key)))))
    }

    /// A session from an exported or forwarded key (not verified: nothing signs it).
    #[uniffi::constructor]
    pub fn import_session(exported_key: String) -> Result<Arc<Self>, OlmoError> {
        let key = ExportedSessionKey::from_base64(&exported_key)?;
        Ok(Arc::new(Self(Locked::new(CoreInbound::import(&key)))))
    }

    /// Restores a session from [`InboundGroupSession::save`]'s blob and the same 32-byte key.
    #[uniffi::constructor]
    pub fn restore(blob: Vec<u8>, key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let session = CoreInbound::restore(&blob, &storage_key(&key)?)?;
        Ok(Arc::new(Self(Locked::new(session))))
    }

    /// Imports a libolm inbound group session pickle.
    #[uniffi::constructor]
    pub fn from_libolm_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let session = CoreInbound::from_libolm_pickle(&pickle, &pickle_key)?;
        Ok(Arc::new(Self(Locked::new(session))))
    }

    /// The session sealed under a 32-byte key.
    pub fn save(&self, key: Vec<u8>) -> Result<Vec<u8>, OlmoError> {
        Ok(self.0.lock().save(&storage_key(&key)?))
    }

    /// The session as a libolm pickle under `pickle_key`.
    pub fn to_libolm_pickle(&self, pickle_key: Vec<u8>) -> String {
        self.0.lock().to_libolm_pickle(&pickle_key)
    }

    /// The session id (the sender's base64 signing key).
    pub fn session_id(&self) -> String {
        self.0.lock().session_id()
    }

    /// The first message index this session can decrypt.
    pub fn first_known_index(&self) -> u32 {
        self.0.lock().first_known_index()
    }

    /// Whether the key came signed (`m.room_key`), not exported or forwarded.
    pub fn is_verified(&self) -> bool {
        self.0.lock().is_verified()
    }

    /// Verifies the signature and MAC, then decrypts; the plaintext. The message's index is
    /// [`megolm_message_index`]; on any error the session is unchanged.
    pub fn decrypt(&self, message: &[u8]) -> Result<Vec<u8>, OlmoError> {
        let message = MegolmMessage::decode(message)?;
        let mut decrypted = self.0.lock().decrypt(&message)?;
        Ok(std::mem::take(&mut *decrypted.plaintext))
    }

    /// Decrypts a backlog of this session's messages (any order, duplicates allowed) with
    /// signatures verified in batches and one ratchet walk: one plaintext per message, in the
    /// order given, or none for a message that did not decode or decrypt.
    pub fn decrypt_backlog(&self, messages: Vec<Vec<u8>>) -> Vec<Option<Vec<u8>>> {
        let mut slots: Vec<Option<usize>> = Vec::with_capacity(messages.len());
        let mut decoded = Vec::with_capacity(messages.len());
        for message in &messages {
            match MegolmMessage::decode(message) {
                Ok(message) => {
                    slots.push(Some(decoded.len()));
                    decoded.push(message);
                }
                Err(_) => slots.push(None),
            }
        }
        let mut results = self.0.lock().decrypt_backlog(&decoded);
        slots
            .into_iter()
            .map(|slot| {
                let result = results.get_mut(slot?)?.as_mut().ok()?;
                Some(std::mem::take(&mut *result.plaintext))
            })
            .collect()
    }

    /// The key from `index` on, base64 (secret), or nothing before the first known index.
    pub fn export_at(&self, index: u32) -> Option<String> {
        self.0
            .lock()
            .export_at(index)
            .map(|key| key.to_base64().to_string())
    }

    /// The key from the first known index on, base64 (secret).
    pub fn export_at_first_known_index(&self) -> String {
        self.0
            .lock()
            .export_at_first_known_index()
            .to_base64()
            .to_string()
    }

    /// How this copy compares with another copy of the session.
    pub fn compare(&self, other: &InboundGroupSession) -> GroupSessionOrdering {
        if std::ptr::eq(self, other) {
            return GroupSessionOrdering::Equal;
        }
        let other = other.0.lock().clone();
        match self.0.lock().compare(&other) {
            SessionOrdering::Equal => GroupSessionOrdering::Equal,
            SessionOrdering::Better => GroupSessionOrdering::Better,
            SessionOrdering::Worse => GroupSessionOrdering::Worse,
            SessionOrdering::Unconnected => GroupSessionOrdering::Unconnected,
        }
    }
}

impl InboundGroupSession {
    pub(crate) fn from_core(session: CoreInbound) -> Arc<Self> {
        Arc::new(Self(Locked::new(session)))
    }
}
