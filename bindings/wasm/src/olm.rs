//! Olm: an account (identity keys, one-time and fallback keys) and pairwise sessions. A
//! message is `{ type, body }` as Matrix carries it: type 0 (pre-key) or 1, body in base64.

use js_sys::{Object, Reflect, Uint8Array};
use olmo::crypto::Curve25519PublicKey;
use olmo::olm::{self, OlmMessage};
use wasm_bindgen::prelude::*;

use crate::convert::{bytes, rng};
use crate::errors::{argument_error, crypto};

#[wasm_bindgen(typescript_custom_section)]
const TS: &str = r#"
/** An Olm message as Matrix carries it: type 0 starts a session, type 1 continues one. */
export interface OlmMessage { type: 0 | 1; body: string }
/** A device's public identity keys, unpadded base64. */
export interface IdentityKeys { ed25519: string; curve25519: string }
"#;

fn set(object: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(name), value);
}

fn message_to_js(message: &OlmMessage) -> JsValue {
    let (message_type, body) = message.to_parts();
    let object = Object::new();
    set(&object, "type", &message_type.into());
    set(&object, "body", &body.into());
    object.into()
}

fn message_from_js(value: &JsValue) -> Result<OlmMessage, JsValue> {
    let message_type = Reflect::get(value, &"type".into())
        .ok()
        .and_then(|t| t.as_f64())
        .ok_or_else(|| argument_error("an Olm message has a numeric type"))?;
    let body = Reflect::get(value, &"body".into())
        .ok()
        .and_then(|b| b.as_string())
        .ok_or_else(|| argument_error("an Olm message has a string body"))?;
    let message_type = match message_type {
        0.0 => 0,
        1.0 => 1,
        _ => return Err(argument_error("an Olm message's type is 0 or 1")),
    };
    OlmMessage::from_base64_parts(message_type, &body).map_err(|e| crypto("decode", e))
}

fn curve_key(text: &str) -> Result<Curve25519PublicKey, JsValue> {
    Curve25519PublicKey::from_base64(text).map_err(|e| crypto("key", e))
}

/// Identity keys as `{ ed25519, curve25519 }`.
pub(crate) fn identity_keys_to_js(keys: &olm::IdentityKeys) -> JsValue {
    let object = Object::new();
    set(&object, "ed25519", &keys.ed25519.to_base64().into());
    set(&object, "curve25519", &keys.curve25519.to_base64().into());
    object.into()
}

/// An Olm account: one device's identity, one-time keys and fallback key.
#[wasm_bindgen]
pub struct Account {
    inner: olm::Account,
}

#[wasm_bindgen]
impl Account {
    /// A new account with fresh identity keys.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Account {
        Account {
            inner: olm::Account::with_rng(&mut rng()),
        }
    }

    /// The identity keys.
    #[wasm_bindgen(getter, js_name = identityKeys, unchecked_return_type = "IdentityKeys")]
    pub fn identity_keys(&self) -> JsValue {
        identity_keys_to_js(&self.inner.identity_keys())
    }

    /// The Ed25519 signing key, unpadded base64.
    #[wasm_bindgen(getter)]
    pub fn ed25519(&self) -> String {
        self.inner.ed25519_key().to_base64()
    }

    /// The Curve25519 key-agreement key, unpadded base64.
    #[wasm_bindgen(getter)]
    pub fn curve25519(&self) -> String {
        self.inner.curve25519_key().to_base64()
    }

    /// Signs `message` with the Ed25519 key; the signature in unpadded base64.
    pub fn sign(&self, message: &[u8]) -> String {
        self.inner.sign(message).to_base64()
    }

    /// How many one-time keys the account keeps at most.
    #[wasm_bindgen(getter, js_name = maxNumberOfOneTimeKeys)]
    pub fn max_number_of_one_time_keys(&self) -> usize {
        self.inner.max_number_of_one_time_keys()
    }

    /// Generates `count` one-time keys (the oldest are dropped past the maximum).
    #[wasm_bindgen(js_name = generateOneTimeKeys)]
    pub fn generate_one_time_keys(&mut self, count: usize) {
        self.inner
            .generate_one_time_keys_with_rng(count, &mut rng());
    }

    /// The one-time keys not yet published, `{ keyId: key }` in unpadded base64.
    #[wasm_bindgen(js_name = oneTimeKeys, unchecked_return_type = "Record<string, string>")]
    pub fn one_time_keys(&self) -> JsValue {
        let object = Object::new();
        for (id, key) in self.inner.unpublished_one_time_keys() {
            set(&object, &id.to_base64(), &key.to_base64().into());
        }
        object.into()
    }

    /// Marks the one-time keys and the fallback key as published.
    #[wasm_bindgen(js_name = markKeysAsPublished)]
    pub fn mark_keys_as_published(&mut self) {
        self.inner.mark_keys_as_published();
    }

    /// Generates a new fallback key; returns its key id.
    #[wasm_bindgen(js_name = generateFallbackKey)]
    pub fn generate_fallback_key(&mut self) -> String {
        self.inner
            .generate_fallback_key_with_rng(&mut rng())
            .to_base64()
    }

    /// The fallback key not yet published, `{ keyId: key }` (empty when there is none).
    #[wasm_bindgen(js_name = fallbackKey, unchecked_return_type = "Record<string, string>")]
    pub fn fallback_key(&self) -> JsValue {
        let object = Object::new();
        if let Some((id, key)) = self.inner.unpublished_fallback_key() {
            set(&object, &id.to_base64(), &key.to_base64().into());
        }
        object.into()
    }

    /// Forgets the previous fallback key; whether there was one.
    #[wasm_bindgen(js_name = forgetFallbackKey)]
    pub fn forget_fallback_key(&mut self) -> bool {
        self.inner.forget_fallback_key()
    }

    /// Starts a session with the device of `identityKey`, using its claimed `oneTimeKey`.
    #[wasm_bindgen(js_name = createOutboundSession)]
    pub fn create_outbound_session(
        &self,
        #[wasm_bindgen(js_name = identityKey)] identity_key: &str,
        #[wasm_bindgen(js_name = oneTimeKey)] one_time_key: &str,
    ) -> Result<Session, JsValue> {
        let inner = self
            .inner
            .create_outbound_session_with_rng(
                curve_key(identity_key)?,
                curve_key(one_time_key)?,
                &mut rng(),
            )
            .map_err(|e| crypto("key", e))?;
        Ok(Session { inner })
    }

    /// Creates the session a pre-key message from `theirIdentityKey` starts, and decrypts it:
    /// `{ session, plaintext }`. The one-time key it used is removed.
    #[wasm_bindgen(
        js_name = createInboundSession,
        unchecked_return_type = "{ session: Session; plaintext: Uint8Array }"
    )]
    pub fn create_inbound_session(
        &mut self,
        #[wasm_bindgen(js_name = theirIdentityKey)] their_identity_key: &str,
        #[wasm_bindgen(unchecked_param_type = "OlmMessage")] message: JsValue,
    ) -> Result<JsValue, JsValue> {
        let OlmMessage::PreKey(pre_key) = message_from_js(&message)? else {
            return Err(argument_error(
                "an inbound session starts with a type 0 message",
            ));
        };
        let created = self
            .inner
            .create_inbound_session(curve_key(their_identity_key)?, &pre_key)
            .map_err(|e| crypto("sessionCreation", e))?;
        let object = Object::new();
        set(
            &object,
            "session",
            &Session {
                inner: created.session,
            }
            .into(),
        );
        set(&object, "plaintext", &bytes(&created.plaintext).into());
        Ok(object.into())
    }

    /// The account encrypted under a 32-byte storage key.
    pub fn save(
        &self,
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<Uint8Array, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        Ok(bytes(&self.inner.save_with_rng(&key, &mut rng())))
    }

    /// An account saved by [`Account::save`].
    pub fn restore(
        blob: &[u8],
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<Account, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        let inner = olm::Account::restore(blob, &key).map_err(|e| crypto("persist", e))?;
        Ok(Account { inner })
    }

    /// The account as a libolm pickle (for libolm, vodozemac and matrix-sdk-crypto).
    #[wasm_bindgen(js_name = toLibolmPickle)]
    pub fn to_libolm_pickle(
        &self,
        #[wasm_bindgen(js_name = pickleKey)] pickle_key: &[u8],
    ) -> String {
        self.inner.to_libolm_pickle(pickle_key)
    }

    /// An account from a libolm pickle.
    #[wasm_bindgen(js_name = fromLibolmPickle)]
    pub fn from_libolm_pickle(
        pickle: &str,
        #[wasm_bindgen(js_name = pickleKey)] pickle_key: &[u8],
    ) -> Result<Account, JsValue> {
        let inner = olm::Account::from_libolm_pickle(pickle, pickle_key)
            .map_err(|e| crypto("pickle", e))?;
        Ok(Account { inner })
    }
}

impl Default for Account {
    fn default() -> Self {
        Self::new()
    }
}

/// A pairwise Olm session.
#[wasm_bindgen]
pub struct Session {
    inner: olm::Session,
}

#[wasm_bindgen]
impl Session {
    /// The session id.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id()
    }

    /// Whether a message of the other side was decrypted (until then we send pre-key
    /// messages).
    #[wasm_bindgen(getter, js_name = hasReceivedMessage)]
    pub fn has_received_message(&self) -> bool {
        self.inner.has_received_message()
    }

    /// Whether a pre-key message belongs to this session.
    #[wasm_bindgen(js_name = matchesInboundSession)]
    pub fn matches_inbound_session(
        &self,
        #[wasm_bindgen(unchecked_param_type = "OlmMessage")] message: JsValue,
    ) -> Result<bool, JsValue> {
        Ok(match message_from_js(&message)? {
            OlmMessage::PreKey(pre_key) => self.inner.matches_inbound_session(&pre_key),
            OlmMessage::Normal(_) => false,
        })
    }

    /// Encrypts `plaintext`. The session advanced: save it before sending.
    #[wasm_bindgen(unchecked_return_type = "OlmMessage")]
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<JsValue, JsValue> {
        let message = self
            .inner
            .encrypt_with_rng(plaintext, &mut rng())
            .map_err(|e| crypto("encrypt", e))?;
        Ok(message_to_js(&message))
    }

    /// Decrypts a message of this session; on failure the session is unchanged.
    pub fn decrypt(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "OlmMessage")] message: JsValue,
    ) -> Result<Uint8Array, JsValue> {
        let message = message_from_js(&message)?;
        let plaintext = self
            .inner
            .decrypt(&message)
            .map_err(|e| crypto("decrypt", e))?;
        Ok(bytes(&plaintext))
    }

    /// The session encrypted under a 32-byte storage key.
    pub fn save(
        &self,
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<Uint8Array, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        Ok(bytes(&self.inner.save_with_rng(&key, &mut rng())))
    }

    /// A session saved by [`Session::save`].
    pub fn restore(
        blob: &[u8],
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<Session, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        let inner = olm::Session::restore(blob, &key).map_err(|e| crypto("persist", e))?;
        Ok(Session { inner })
    }

    /// The session as a libolm pickle.
    #[wasm_bindgen(js_name = toLibolmPickle)]
    pub fn to_libolm_pickle(
        &self,
        #[wasm_bindgen(js_name = pickleKey)] pickle_key: &[u8],
    ) -> String {
        self.inner.to_libolm_pickle(pickle_key)
    }

    /// A session from a libolm pickle.
    #[wasm_bindgen(js_name = fromLibolmPickle)]
    pub fn from_libolm_pickle(
        pickle: &str,
        #[wasm_bindgen(js_name = pickleKey)] pickle_key: &[u8],
    ) -> Result<Session, JsValue> {
        let inner = olm::Session::from_libolm_pickle(pickle, pickle_key)
            .map_err(|e| crypto("pickle", e))?;
        Ok(Session { inner })
    }
}
