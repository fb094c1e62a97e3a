//! Conversions between JavaScript values and the core's types: JSON through `JSON`, bytes
//! through `Uint8Array`, time from the caller or `Date.now()`.

use std::pin::Pin;

use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use olmo::persist::StorageKey;
use olmo::time::Timestamp;
use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::errors::{argument_error, js_error};

/// A JavaScript value as JSON (objects, arrays, strings, numbers, booleans, null).
pub(crate) fn to_json(value: &JsValue) -> Result<Value, JsValue> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    let text: String = JSON::stringify(value)
        .map_err(|_| argument_error("a value that is not JSON"))?
        .into();
    olmo::matrix::parse_json(text.as_bytes())
        .ok_or_else(|| argument_error("a value that is not JSON"))
}

/// JSON as a JavaScript value.
pub(crate) fn from_json(value: &Value) -> Result<JsValue, JsValue> {
    let text = String::from_utf8(olmo::matrix::json_to_vec(value))
        .map_err(|_| argument_error("unserialisable JSON"))?;
    JSON::parse(&text).map_err(|e| js_error(&e))
}

/// A plain object of `fields`. Every result object goes through this one function: at each
/// call site it is a list of pairs, where `json!` inlined a map build and a `Value` per field,
/// then the whole went through JSON text.
pub(crate) fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object.into()
}

/// A JavaScript array of `items`.
pub(crate) fn array(items: impl IntoIterator<Item = JsValue>) -> JsValue {
    let array = Array::new();
    for item in items {
        array.push(&item);
    }
    array.into()
}

/// A string, or `null`.
pub(crate) fn optional_str(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}

/// A number, or `null`.
pub(crate) fn optional_u32(value: Option<u32>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from)
}

/// Bytes as a new `Uint8Array`.
pub(crate) fn bytes(data: &[u8]) -> Uint8Array {
    Uint8Array::from(data)
}

/// A 32-byte storage key.
pub(crate) fn storage_key(key: &[u8]) -> Result<StorageKey, JsValue> {
    let bytes: [u8; 32] = key
        .try_into()
        .map_err(|_| argument_error("a storage key is 32 bytes"))?;
    Ok(StorageKey::from_bytes(bytes))
}

/// The caller's time (milliseconds since the epoch), or the JavaScript clock's.
pub(crate) fn timestamp(now: Option<f64>) -> Timestamp {
    let millis = now.unwrap_or_else(js_sys::Date::now);
    // Negative, NaN or huge times clamp into range: time only bounds session age.
    Timestamp::from_millis(if millis.is_finite() && millis > 0.0 {
        millis as u64
    } else {
        0
    })
}

/// The randomness every operation draws from (`crypto.getRandomValues` underneath).
pub(crate) fn rng() -> rand::rngs::ThreadRng {
    rand::rng()
}

/// A store-backed operation as a `Promise`. Every future goes through one boxed type, so the
/// executor glue (`future_to_promise`, task spawning, waking) exists once in the `.wasm`, not
/// once per exported method.
pub(crate) fn promise(
    operation: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> js_sys::Promise {
    let boxed: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(operation);
    wasm_bindgen_futures::future_to_promise(boxed)
}
