//! Olm: the account and its pairwise sessions, with save/restore and libolm pickles.

use std::collections::HashMap;
use std::sync::Arc;

use olmo::crypto::Curve25519PublicKey;
use olmo::olm::{Account, OlmMessage as CoreMessage, PreKeyMessage, Session};

use crate::error::{OlmoError, storage_key};
use crate::sync::Locked;

/// The message a pre-key ciphertext decodes to (type 0).
fn pre_key_message(ciphertext: &[u8]) -> Result<PreKeyMessage, OlmoError> {
    match CoreMessage::from_parts(0, ciphertext)? {
        CoreMessage::PreKey(pre_key) => Ok(pre_key),
        CoreMessage::Normal(_) => Err(OlmoError::SessionCreation {
            reason: "only a pre-key message (type 0) starts a session".into(),
        }),
    }
}

fn curve_key(text: &str) -> Result<Curve25519PublicKey, OlmoError> {
    Ok(Curve25519PublicKey::from_base64(text)?)
}

/// An Olm account: the device's identity keys and its one-time and fallback keys.
#[derive(uniffi::Object)]
pub struct OlmAccount(Locked<Account>);

#[uniffi::export]
impl OlmAccount {
    /// A new account with fresh identity keys.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Locked::new(Account::new())))
    }

    /// Restores an account from [`OlmAccount::save`]'s blob and the same 32-byte key.
    #[uniffi::constructor]
    pub fn restore(blob: Vec<u8>, key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let account = Account::restore(&blob, &storage_key(&key)?)?;
        Ok(Arc::new(Self(Locked::new(account))))
    }

    /// Imports a libolm (python-olm, libolm's JS/Java bindings) account pickle.
    #[uniffi::constructor]
    pub fn from_libolm_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let account = Account::from_libolm_pickle(&pickle, &pickle_key)?;
        Ok(Arc::new(Self(Locked::new(account))))
    }

    /// The account sealed under a 32-byte key (XChaCha20-Poly1305), for the app's storage.
    pub fn save(&self, key: Vec<u8>) -> Result<Vec<u8>, OlmoError> {
        Ok(self.0.lock().save(&storage_key(&key)?))
    }

    /// The account as a libolm pickle under `pickle_key`, for going back to libolm.
    pub fn to_libolm_pickle(&self, pickle_key: Vec<u8>) -> String {
        self.0.lock().to_libolm_pickle(&pickle_key)
    }

    /// The Curve25519 identity key.
    pub fn curve25519_key(&self) -> String {
        self.0.lock().curve25519_key().to_base64()
    }

    /// The Ed25519 signing key.
    pub fn ed25519_key(&self) -> String {
        self.0.lock().ed25519_key().to_base64()
    }

    /// Signs `message` with the Ed25519 key; the signature in base64.
    pub fn sign(&self, message: Vec<u8>) -> String {
        self.0.lock().sign(&message).to_base64()
    }

    /// How many one-time keys the account keeps at most.
    pub fn max_number_of_one_time_keys(&self) -> u32 {
        u32::try_from(self.0.lock().max_number_of_one_time_keys()).unwrap_or(u32::MAX)
    }

    /// Makes `count` new one-time keys (the oldest are dropped past the maximum).
    pub fn generate_one_time_keys(&self, count: u32) {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        self.0.lock().generate_one_time_keys(count);
    }

    /// The one-time keys not yet published: key id to public key, both base64.
    pub fn one_time_keys(&self) -> HashMap<String, String> {
        self.0
            .lock()
            .unpublished_one_time_keys()
            .into_iter()
            .map(|(id, key)| (id.to_base64(), key.to_base64()))
            .collect()
    }

    /// Makes a new fallback key (the previous one is kept until forgotten); its id.
    pub fn generate_fallback_key(&self) -> String {
        self.0.lock().generate_fallback_key().to_base64()
    }

    /// The fallback key not yet published: key id to public key (empty or one entry).
    pub fn fallback_key(&self) -> HashMap<String, String> {
        self.0
            .lock()
            .unpublished_fallback_key()
            .into_iter()
            .map(|(id, key)| (id.to_base64(), key.to_base64()))
            .collect()
    }

    /// Forgets the previous fallback key; whether there was one.
    pub fn forget_fallback_key(&self) -> bool {
        self.0.lock().forget_fallback_key()
    }

    /// Marks every one-time and fallback key as published.
    pub fn mark_keys_as_published(&self) {
        self.0.lock().mark_keys_as_published();
    }

    /// Starts a session with a device from its identity key and a one-time key it published.
    pub fn create_outbound_session(
        &self,
        identity_key: String,
        one_time_key: String,
    ) -> Result<Arc<OlmSession>, OlmoError> {
        let session = self
            .0
            .lock()
            .create_outbound_session(curve_key(&identity_key)?, curve_key(&one_time_key)?)?;
        Ok(Arc::new(OlmSession(Locked::new(session))))
    }

    /// Creates the session a pre-key message (type 0) from `identity_key` starts and decrypts
    /// that message; the one-time key it used is removed.
    pub fn create_inbound_session(
        &self,
        identity_key: String,
        ciphertext: &[u8],
    ) -> Result<Arc<InboundSessionCreation>, OlmoError> {
        let pre_key = pre_key_message(ciphertext)?;
        let created = self
            .0
            .lock()
            .create_inbound_session(curve_key(&identity_key)?, &pre_key)?;
        Ok(Arc::new(InboundSessionCreation {
            session: Arc::new(OlmSession(Locked::new(created.session))),
            plaintext: created.plaintext,
        }))
    }
}

/// What [`OlmAccount::create_inbound_session`] gives: the session and the first plaintext (an
/// object, not a record, so the plaintext never shows in a printed value).
#[derive(uniffi::Object)]
pub struct InboundSessionCreation {
    session: Arc<OlmSession>,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
}

#[uniffi::export]
impl InboundSessionCreation {
    /// The new session.
    pub fn session(&self) -> Arc<OlmSession> {
        Arc::clone(&self.session)
    }

    /// The first message's plaintext.
    pub fn plaintext(&self) -> Vec<u8> {
        self.plaintext.to_vec()
    }
}

/// A pairwise Olm session.
#[derive(uniffi::Object)]
pub struct OlmSession(Locked<Session>);

#[uniffi::export]
impl OlmSession {
    /// Restores a session from [`OlmSession::save`]'s blob and the same 32-byte key.
    #[uniffi::constructor]
    pub fn restore(blob: Vec<u8>, key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let session = Session::restore(&blob, &storage_key(&key)?)?;
        Ok(Arc::new(Self(Locked::new(session))))
    }

    /// Imports a libolm session pickle.
    #[uniffi::constructor]
    pub fn from_libolm_pickle(pickle: String, pickle_key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let session = Session::from_libolm_pickle(&pickle, &pickle_key)?;
        Ok(Arc::new(Self(Locked::new(session))))
    }

    /// The session sealed under a 32-byte key. Save after every encrypt and decrypt.
    pub fn save(&self, key: Vec<u8>) -> Result<Vec<u8>, OlmoError> {
        Ok(self.0.lock().save(&storage_key(&key)?))
    }

    /// The session as a libolm pickle under `pickle_key`.
    pub fn to_libolm_pickle(&self, pickle_key: Vec<u8>) -> String {
        self.0.lock().to_libolm_pickle(&pickle_key)
    }

    /// The session id (base64 of a hash of the three keys that started it).
    pub fn session_id(&self) -> String {
        self.0.lock().session_id()
    }

    /// Whether a message from the other side has been decrypted (then encrypt gives normal
    /// messages, not pre-key ones).
    pub fn has_received_message(&self) -> bool {
        self.0.lock().has_received_message()
    }

    /// Whether a pre-key message (type 0) belongs to this session.
    pub fn matches_inbound_session(&self, ciphertext: &[u8]) -> Result<bool, OlmoError> {
        let pre_key = pre_key_message(ciphertext)?;
        Ok(self.0.lock().matches_inbound_session(&pre_key))
    }

    /// The type of the messages [`OlmSession::encrypt`] gives now: 0 (pre-key) until a message
    /// from the other side was decrypted, then 1 (normal). Matrix sends it as `type`.
    pub fn message_type(&self) -> u8 {
        u8::from(self.0.lock().has_received_message())
    }

    /// Encrypts; the message's bytes (its type is [`OlmSession::message_type`], asked before or
    /// after: encrypting does not change it). The session has advanced when this returns: save
    /// it before sending. Bytes in and out, no record: the hot path pays no serialisation.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, OlmoError> {
        let message = self.0.lock().encrypt(plaintext)?;
        Ok(message.as_bytes().to_vec())
    }

    /// Decrypts a message of this session from its type (0 pre-key, 1 normal) and bytes; on any
    /// error the session is unchanged.
    pub fn decrypt(&self, message_type: u8, ciphertext: &[u8]) -> Result<Vec<u8>, OlmoError> {
        let message = CoreMessage::from_parts(message_type, ciphertext)?;
        let mut plaintext = self.0.lock().decrypt(&message)?;
        Ok(std::mem::take(&mut *plaintext))
    }
}
