//! Failures as JavaScript `Error` subclasses. The classes live in the package's `index.js`
//! (so `instanceof` works across the package), which hands them over once at load. Each
//! error has `kind` (the core's variant, camelCase) and the core's message as `message`, plus
//! the variant's fields. None carries key material or plaintext.

use std::cell::RefCell;

use js_sys::{Array, Object, Reflect};
use olmo::matrix::{MachineError, ToDeviceError, UnableToDecrypt};
use olmo::store::StoreError;
use olmo::xmpp::XmppError;
use wasm_bindgen::prelude::*;

thread_local! {
    static CLASSES: RefCell<Option<Object>> = const { RefCell::new(None) };
}

/// Called by `index.js` with `{ OlmoError, StoreError, ... }`: the classes errors are made of.
#[wasm_bindgen(js_name = "__registerErrorClasses", skip_typescript)]
pub fn register_error_classes(classes: Object) {
    CLASSES.with(|c| *c.borrow_mut() = Some(classes));
}

/// An error of `class` (falling back to a plain `Error` before registration).
pub(crate) fn make(class: &str, kind: &str, message: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let args = Array::of1(&JsValue::from_str(message));
    let constructed = CLASSES.with(|c| {
        let classes = c.borrow();
        let ctor = Reflect::get(classes.as_ref()?, &JsValue::from_str(class)).ok()?;
        Reflect::construct(ctor.dyn_ref::<js_sys::Function>()?, &args).ok()
    });
    let error = constructed.unwrap_or_else(|| {
        let plain = js_sys::Error::new(message);
        plain.set_name(class);
        plain.into()
    });
    let _ = Reflect::set(&error, &"kind".into(), &kind.into());
    for (name, value) in fields {
        let _ = Reflect::set(&error, &JsValue::from_str(name), value);
    }
    error
}

/// A caller passed something the binding cannot use.
pub(crate) fn argument_error(what: &str) -> JsValue {
    make("ArgumentError", "argument", what, &[])
}

/// An exception thrown by JavaScript code, as a message.
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value
        .as_string()
        .unwrap_or_else(|| "a JavaScript exception".to_owned())
}

/// An exception thrown by JavaScript, passed on.
pub(crate) fn js_error(value: &JsValue) -> JsValue {
    value.clone()
}

/// A failure of the low-level objects (decoding, key agreement, decryption, persistence).
pub(crate) fn crypto(kind: &str, error: impl std::fmt::Display) -> JsValue {
    crypto_dyn(kind, &error)
}

/// [`crypto`]'s body, once for every error type (formatting it cost ~200 bytes a type).
fn crypto_dyn(kind: &str, error: &dyn std::fmt::Display) -> JsValue {
    make("CryptoError", kind, &error.to_string(), &[])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn version(found: Option<u64>) -> JsValue {
    found.map_or(JsValue::NULL, |v| JsValue::from_f64(v as f64))
}

/// A store failure.
pub(crate) fn store(error: &StoreError) -> JsValue {
    let message = error.to_string();
    match error {
        StoreError::Conflict(conflict) => {
            let expected = match conflict.expected {
                olmo::store::Expect::Absent => None,
                olmo::store::Expect::Version(v) => Some(v),
            };
            make(
                "StoreError",
                "conflict",
                &message,
                &[
                    ("table", conflict.table.as_str().into()),
                    ("key", hex(&conflict.key).into()),
                    ("expected", version(expected)),
                    ("found", version(conflict.found)),
                ],
            )
        }
        StoreError::InvalidBatch(_) => make("StoreError", "invalidBatch", &message, &[]),
        StoreError::Corrupt { table, key } => make(
            "StoreError",
            "corrupt",
            &message,
            &[
                ("table", table.as_str().into()),
                ("key", key.as_str().into()),
            ],
        ),
        StoreError::NewerSchema { table, found } => make(
            "StoreError",
            "newerSchema",
            &message,
            &[
                ("table", table.as_str().into()),
                ("schema", (*found).into()),
            ],
        ),
        StoreError::Backend(_) => make("StoreError", "backend", &message, &[]),
        _ => make("StoreError", "other", &message, &[]),
    }
}

/// A Matrix machine failure.
pub(crate) fn machine(error: &MachineError) -> JsValue {
    let kind = match error {
        MachineError::Store(inner) => return store(inner),
        MachineError::Json(_) => "json",
        MachineError::TooLarge(_) => "tooLarge",
        MachineError::WrongAccount => "wrongAccount",
        MachineError::Corrupt(_) => "corrupt",
        MachineError::UnknownRequest => "unknownRequest",
        MachineError::RoomNotEncrypted => "roomNotEncrypted",
        MachineError::BadSignedObject(_) => "badSignedObject",
        MachineError::Encrypt(_) => "encrypt",
        _ => "other",
    };
    make("MachineError", kind, &error.to_string(), &[])
}

/// A room event that did not decrypt.
pub(crate) fn undecryptable(error: &UnableToDecrypt) -> JsValue {
    let message = error.to_string();
    let (kind, fields): (&str, Vec<(&str, JsValue)>) = match error {
        UnableToDecrypt::Machine(inner) => return machine(inner),
        UnableToDecrypt::NoSession { session_id } => {
            ("noSession", vec![("sessionId", session_id.as_str().into())])
        }
        UnableToDecrypt::UnknownIndex { index, first_known } => (
            "unknownIndex",
            vec![
                ("index", (*index).into()),
                ("firstKnown", (*first_known).into()),
            ],
        ),
        UnableToDecrypt::Withheld { code } => ("withheld", vec![("code", code.as_str().into())]),
        UnableToDecrypt::Replay {
            index,
            first_event_id,
        } => (
            "replay",
            vec![
                ("index", (*index).into()),
                ("firstEventId", first_event_id.as_str().into()),
            ],
        ),
        UnableToDecrypt::BadSignature => ("badSignature", vec![]),
        UnableToDecrypt::SenderMismatch(_) => ("senderMismatch", vec![]),
        UnableToDecrypt::Malformed(_) => ("malformed", vec![]),
        _ => ("other", vec![]),
    };
    make("DecryptionError", kind, &message, &fields)
}

/// Why a to-device event was refused, as the kind of a failed outcome.
pub(crate) fn to_device_kind(error: &ToDeviceError) -> &'static str {
    match error {
        ToDeviceError::NotForUs => "notForUs",
        ToDeviceError::NoSession => "noSession",
        ToDeviceError::UnknownOneTimeKey => "unknownOneTimeKey",
        ToDeviceError::Mismatch(_) => "mismatch",
        ToDeviceError::Malformed(_) => "malformed",
        _ => "other",
    }
}

/// An XMPP machine failure.
pub(crate) fn xmpp(error: &XmppError) -> JsValue {
    let message = error.to_string();
    let (kind, fields): (&str, Vec<(&str, JsValue)>) = match error {
        XmppError::Store(inner) => return store(inner),
        XmppError::Stanza(_) => ("stanza", vec![]),
        XmppError::BadBundle { jid, device_id, .. } => (
            "badBundle",
            vec![
                ("jid", jid.as_str().into()),
                ("deviceId", (*device_id).into()),
            ],
        ),
        XmppError::IdentityChanged {
            version,
            jid,
            device_id,
            known,
            offered,
        } => (
            "identityChanged",
            vec![
                ("version", crate::types::version_name(*version).into()),
                ("jid", jid.as_str().into()),
                ("deviceId", (*device_id).into()),
                ("known", known.as_str().into()),
                ("offered", offered.as_str().into()),
            ],
        ),
        XmppError::Decrypt(failure) => (
            "decrypt",
            vec![
                ("reason", crate::types::failure_name(failure.reason).into()),
                (
                    "version",
                    crate::types::version_name(failure.version).into(),
                ),
                ("deviceId", failure.device_id.into()),
                ("failuresInARow", failure.failures_in_a_row.into()),
                ("rebuildSuggested", failure.rebuild_suggested.into()),
            ],
        ),
        XmppError::EnvelopeMismatch(_) => ("envelopeMismatch", vec![]),
        XmppError::WrongAccount => ("wrongAccount", vec![]),
        XmppError::Corrupt(_) => ("corrupt", vec![]),
        _ => ("other", vec![]),
    };
    make("XmppError", kind, &message, &fields)
}
