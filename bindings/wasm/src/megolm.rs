//! Megolm: our outbound group session of a room, inbound sessions made from shared or exported
//! keys, and key export files. Ciphertexts and session keys are unpadded base64 strings.

use js_sys::{Object, Reflect, Uint8Array};
use olmo::megolm::{
    self, ExportedRoomKey, ExportedSessionKey, KEY_EXPORT_DEFAULT_ROUNDS, MegolmMessage, SessionKey,
};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::convert::{bytes, rng, timestamp};
use crate::errors::{argument_error, crypto};

#[wasm_bindgen(typescript_custom_section)]
const TS: &str = r#"
/** One room key of a key export file, in the specification's JSON (snake_case fields). */
export interface ExportedRoomKey {
  algorithm: string; room_id: string; sender_key: string; session_id: string;
  session_key: string; sender_claimed_keys?: Record<string, string>;
  forwarding_curve25519_key_chain?: string[]; "m.shared_history"?: boolean;
}
/** A decrypted group message. */
export interface GroupPlaintext { plaintext: Uint8Array; messageIndex: number }
"#;

/// Our outbound group session: encrypts a room's messages; its key goes to every member.
#[wasm_bindgen]
pub struct GroupSession {
    inner: megolm::GroupSession,
}

#[wasm_bindgen]
impl GroupSession {
    /// A new session created at `now` (milliseconds; `Date.now()` if omitted).
    #[wasm_bindgen(constructor)]
    pub fn new(now: Option<f64>) -> GroupSession {
        GroupSession {
            inner: megolm::GroupSession::new_with_rng(timestamp(now), &mut rng()),
        }
    }

    /// The session id.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id()
    }

    /// The index the next message gets.
    #[wasm_bindgen(getter, js_name = messageIndex)]
    pub fn message_index(&self) -> u32 {
        self.inner.message_index()
    }

    /// The session key at the current index (unpadded base64), to share with members.
    #[wasm_bindgen(getter, js_name = sessionKey)]
    pub fn session_key(&self) -> String {
        self.inner.session_key().to_base64().to_string()
    }

    /// Encrypts `plaintext`; the message in unpadded base64.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<String, JsValue> {
        let message = self
            .inner
            .encrypt(plaintext)
            .map_err(|e| crypto("encrypt", e))?;
        Ok(message.to_base64())
    }

    /// The session encrypted under a 32-byte storage key.
    pub fn save(
        &self,
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<Uint8Array, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        Ok(bytes(&self.inner.save_with_rng(&key, &mut rng())))
    }

    /// A session saved by [`GroupSession::save`].
    pub fn restore(
        blob: &[u8],
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<GroupSession, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        let inner = megolm::GroupSession::restore(blob, &key).map_err(|e| crypto("persist", e))?;
        Ok(GroupSession { inner })
    }
}

/// An inbound group session: decrypts a sender's room messages.
#[wasm_bindgen]
pub struct InboundGroupSession {
    inner: megolm::InboundGroupSession,
}

#[wasm_bindgen]
impl InboundGroupSession {
    /// A session from a shared (signed) session key, unpadded base64.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = sessionKey)] session_key: &str,
    ) -> Result<InboundGroupSession, JsValue> {
        let key = SessionKey::from_base64(session_key).map_err(|e| crypto("sessionKey", e))?;
        Ok(InboundGroupSession {
            inner: megolm::InboundGroupSession::new(&key),
        })
    }

    /// A session from an exported (unsigned) session key, unpadded base64.
    pub fn import(
        #[wasm_bindgen(js_name = exportedKey)] exported_key: &str,
    ) -> Result<InboundGroupSession, JsValue> {
        let key =
            ExportedSessionKey::from_base64(exported_key).map_err(|e| crypto("sessionKey", e))?;
        Ok(InboundGroupSession {
            inner: megolm::InboundGroupSession::import(&key),
        })
    }

    /// The session id.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id()
    }

    /// The first message index this session decrypts.
    #[wasm_bindgen(getter, js_name = firstKnownIndex)]
    pub fn first_known_index(&self) -> u32 {
        self.inner.first_known_index()
    }

    /// Whether the key came signed by the session's creator (shared, not imported).
    #[wasm_bindgen(getter, js_name = isVerified)]
    pub fn is_verified(&self) -> bool {
        self.inner.is_verified()
    }

    /// Decrypts a message (unpadded base64): `{ plaintext, messageIndex }`.
    #[wasm_bindgen(unchecked_return_type = "GroupPlaintext")]
    pub fn decrypt(&mut self, message: &str) -> Result<JsValue, JsValue> {
        let message = MegolmMessage::from_base64(message).map_err(|e| crypto("decode", e))?;
        let decrypted = self
            .inner
            .decrypt(&message)
            .map_err(|e| crypto("decrypt", e))?;
        let object = Object::new();
        let _ = Reflect::set(&object, &"plaintext".into(), &bytes(&decrypted.plaintext));
        let _ = Reflect::set(
            &object,
            &"messageIndex".into(),
            &decrypted.message_index.into(),
        );
        Ok(object.into())
    }

    /// The exported key at `index` (unpadded base64), or `undefined` before the first known
    /// index.
    #[wasm_bindgen(js_name = exportAt)]
    pub fn export_at(&self, index: u32) -> Option<String> {
        self.inner
            .export_at(index)
            .map(|key| key.to_base64().to_string())
    }

    /// The exported key at the first known index (unpadded base64).
    #[wasm_bindgen(js_name = exportAtFirstKnownIndex)]
    pub fn export_at_first_known_index(&self) -> String {
        self.inner
            .export_at_first_known_index()
            .to_base64()
            .to_string()
    }

    /// The session encrypted under a 32-byte storage key.
    pub fn save(
        &self,
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<Uint8Array, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        Ok(bytes(&self.inner.save_with_rng(&key, &mut rng())))
    }

    /// A session saved by [`InboundGroupSession::save`].
    pub fn restore(
        blob: &[u8],
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
    ) -> Result<InboundGroupSession, JsValue> {
        let key = crate::convert::storage_key(storage_key)?;
        let inner =
            megolm::InboundGroupSession::restore(blob, &key).map_err(|e| crypto("persist", e))?;
        Ok(InboundGroupSession { inner })
    }
}

/// Encrypts room keys into a key export file (Element's format) under `passphrase`, with
/// `rounds` of PBKDF2 (the default if omitted).
#[wasm_bindgen(js_name = encryptKeyExport)]
pub fn encrypt_key_export(
    #[wasm_bindgen(unchecked_param_type = "ExportedRoomKey[]")] keys: JsValue,
    passphrase: &str,
    rounds: Option<u32>,
) -> Result<String, JsValue> {
    // As text straight into the core's parser of key export files: no second copy of the
    // parser (one through `serde_json::Value`) in the `.wasm`.
    let text = Zeroizing::new(
        js_sys::JSON::stringify(&keys)
            .ok()
            .and_then(|text| text.as_string())
            .ok_or_else(|| argument_error("expected an array of exported room keys"))?,
    );
    let keys: Vec<ExportedRoomKey> = megolm::room_keys_from_json(text.as_bytes())
        .map_err(|_| argument_error("expected an array of exported room keys"))?;
    Ok(megolm::encrypt_key_export_with_rng(
        &keys,
        passphrase,
        rounds.unwrap_or(KEY_EXPORT_DEFAULT_ROUNDS),
        &mut rng(),
    ))
}

/// Reads a key export file with `passphrase`: its room keys.
#[wasm_bindgen(js_name = decryptKeyExport, unchecked_return_type = "ExportedRoomKey[]")]
pub fn decrypt_key_export(file: &str, passphrase: &str) -> Result<JsValue, JsValue> {
    let keys = megolm::decrypt_key_export(file, passphrase).map_err(|e| crypto("keyExport", e))?;
    let json = megolm::room_keys_to_json(&keys);
    let text = std::str::from_utf8(&json).map_err(|_| argument_error("unserialisable keys"))?;
    js_sys::JSON::parse(text).map_err(|e| crate::errors::js_error(&e))
}
