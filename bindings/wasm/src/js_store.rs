//! A store written in JavaScript: an object with async `get`, `getMany`, `scan` and `commit`
//! (see `JsStoreBackend` in the TypeScript declarations). The binding checks each batch before
//! handing it over, and gives the new version of every put, so the JavaScript side only
//! compares versions and applies the writes all or nothing.

use std::ops::Bound;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use olmo::store::{Batch, Conflict, Expect, KeyRange, Record, StoreError};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::errors::js_message;

#[wasm_bindgen(typescript_custom_section)]
const TS: &str = r#"
/** A stored record: the sealed bytes and the version the last commit gave them (from 1). */
export interface StoredRecord { version: number; value: Uint8Array }
/** A scanned record. */
export interface ScannedRecord extends StoredRecord { key: Uint8Array }
/** Which keys a scan visits, in increasing bytewise order; a missing bound is unbounded. */
export interface ScanRange {
  start?: Uint8Array; startInclusive: boolean; end?: Uint8Array; endInclusive: boolean;
}
/** One write of a commit: `expect` is the version that must be stored now (`null`: no record);
 * a put stores `value` at `version`, a delete has `value` null. */
export interface StoreWrite {
  table: string; key: Uint8Array; expect: number | null; value: Uint8Array | null; version: number | null;
}
/** The record that was not as a write expected (`found` null: absent). */
export interface StoreConflict { table: string; key: Uint8Array; found: number | null }
/** A store the application writes: every method may be async. `commit` applies all writes or
 * none, atomically with respect to every other commit on the same storage, and resolves to
 * `null` or to the first conflict; a thrown exception is a backend failure. */
export interface JsStoreBackend {
  get(table: string, key: Uint8Array): Promise<StoredRecord | null | undefined> | StoredRecord | null | undefined;
  getMany(table: string, keys: Uint8Array[]): Promise<(StoredRecord | null | undefined)[]> | (StoredRecord | null | undefined)[];
  scan(table: string, range: ScanRange, limit: number): Promise<ScannedRecord[]> | ScannedRecord[];
  commit(writes: StoreWrite[]): Promise<StoreConflict | null | undefined> | StoreConflict | null | undefined;
}
"#;

/// The JavaScript object, called through its four methods.
#[derive(Clone)]
pub(crate) struct JsStore {
    object: JsValue,
}

fn backend_error(what: &str, error: &JsValue) -> StoreError {
    StoreError::Backend(format!("{what}: {}", js_message(error)))
}

fn field(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(name), value);
}

fn record_of(value: &JsValue) -> Result<Option<Record>, StoreError> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    let version = field(value, "version")
        .as_f64()
        .filter(|v| v.fract() == 0.0 && *v >= 1.0)
        .ok_or_else(|| {
            StoreError::Backend("a record's version is not a positive integer".into())
        })?;
    let bytes = field(value, "value")
        .dyn_into::<Uint8Array>()
        .map_err(|_| StoreError::Backend("a record's value is not a Uint8Array".into()))?;
    Ok(Some(Record {
        version: version as u64,
        value: bytes.to_vec(),
    }))
}

fn optional_version(value: &JsValue) -> Result<Option<u64>, StoreError> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && *v >= 1.0)
        .map(|v| Some(v as u64))
        .ok_or_else(|| StoreError::Backend("a conflict's version is not a positive integer".into()))
}

impl JsStore {
    /// Wraps `object`, which must have the four methods.
    pub(crate) fn new(object: JsValue) -> Result<Self, String> {
        for method in ["get", "getMany", "scan", "commit"] {
            if !field(&object, method).is_function() {
                return Err(format!("the store has no {method} method"));
            }
        }
        Ok(Self { object })
    }

    async fn call(&self, method: &str, args: &Array) -> Result<JsValue, StoreError> {
        let function: Function = field(&self.object, method)
            .dyn_into()
            .map_err(|_| StoreError::Backend(format!("the store has no {method} method")))?;
        let returned = function
            .apply(&self.object, args)
            .map_err(|e| backend_error(method, &e))?;
        JsFuture::from(Promise::resolve(&returned))
            .await
            .map_err(|e| backend_error(method, &e))
    }

    pub(crate) async fn get(&self, table: &str, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let args = Array::of2(&table.into(), &Uint8Array::from(key));
        record_of(&self.call("get", &args).await?)
    }

    pub(crate) async fn get_many(
        &self,
        table: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let list: Array = keys
            .iter()
            .map(|k| Uint8Array::from(k.as_slice()))
            .collect();
        let found = self
            .call("getMany", &Array::of2(&table.into(), &list))
            .await?;
        let found: Array = found
            .dyn_into()
            .map_err(|_| StoreError::Backend("getMany did not return an array".into()))?;
        if found.length() as usize != keys.len() {
            return Err(StoreError::Backend(
                "getMany returned another number of records than keys asked".into(),
            ));
        }
        found.iter().map(|v| record_of(&v)).collect()
    }

    pub(crate) async fn scan(
        &self,
        table: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        let bounds = Object::new();
        for (bound, key, inclusive) in [
            (&range.start, "start", "startInclusive"),
            (&range.end, "end", "endInclusive"),
        ] {
            match bound {
                Bound::Included(k) => {
                    set(&bounds, key, &Uint8Array::from(k.as_slice()));
                    set(&bounds, inclusive, &true.into());
                }
                Bound::Excluded(k) => {
                    set(&bounds, key, &Uint8Array::from(k.as_slice()));
                    set(&bounds, inclusive, &false.into());
                }
                Bound::Unbounded => set(&bounds, inclusive, &false.into()),
            }
        }
        let limit = JsValue::from_f64(limit.min(u32::MAX as usize) as f64);
        let found = self
            .call("scan", &Array::of3(&table.into(), &bounds, &limit))
            .await?;
        let found: Array = found
            .dyn_into()
            .map_err(|_| StoreError::Backend("scan did not return an array".into()))?;
        let mut records = Vec::with_capacity(found.length() as usize);
        for item in found.iter() {
            let key = field(&item, "key")
                .dyn_into::<Uint8Array>()
                .map_err(|_| StoreError::Backend("a scanned key is not a Uint8Array".into()))?
                .to_vec();
            let record = record_of(&item)?
                .ok_or_else(|| StoreError::Backend("scan returned an empty record".into()))?;
            records.push((key, record));
        }
        Ok(records)
    }

    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let writes: Array = batch
            .writes
            .iter()
            .map(|write| {
                let object = Object::new();
                set(&object, "table", &write.table.as_str().into());
                set(&object, "key", &Uint8Array::from(write.key.as_slice()));
                let expect = match write.expect {
                    Expect::Absent => JsValue::NULL,
                    Expect::Version(v) => JsValue::from_f64(v as f64),
                };
                set(&object, "expect", &expect);
                match &write.value {
                    Some(value) => {
                        set(&object, "value", &Uint8Array::from(value.as_slice()));
                        let version = write.expect.next_version() as f64;
                        set(&object, "version", &version.into());
                    }
                    None => {
                        set(&object, "value", &JsValue::NULL);
                        set(&object, "version", &JsValue::NULL);
                    }
                }
                JsValue::from(object)
            })
            .collect();
        let outcome = self.call("commit", &Array::of1(&writes)).await?;
        if outcome.is_null() || outcome.is_undefined() {
            return Ok(());
        }
        let table = field(&outcome, "table")
            .as_string()
            .ok_or_else(|| StoreError::Backend("a conflict names no table".into()))?;
        let key = field(&outcome, "key")
            .dyn_into::<Uint8Array>()
            .map_err(|_| StoreError::Backend("a conflict's key is not a Uint8Array".into()))?
            .to_vec();
        let found = optional_version(&field(&outcome, "found"))?;
        let expected = batch
            .writes
            .iter()
            .find(|w| w.table == table && w.key == key)
            .map(|w| w.expect)
            .ok_or_else(|| StoreError::Backend("a conflict names a record not written".into()))?;
        Err(StoreError::Conflict(Box::new(Conflict {
            table,
            key,
            expected,
            found,
        })))
    }
}
