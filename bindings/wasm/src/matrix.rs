//! The Matrix machine: one device's end-to-end encryption over a store, sans I/O. It takes and
//! gives the Client-Server API's JSON bodies as plain objects; every method that touches the
//! store returns a `Promise` and commits once before it resolves.

use std::rc::Rc;

use crate::convert::promise;
use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use olmo::matrix::{
    AppRecord, DecryptedRoomEvent, Machine, OutgoingRequest, RequestKind, RoomSettings,
    SyncChanges, ToDeviceOutcome,
};
use olmo::megolm::KEY_EXPORT_DEFAULT_ROUNDS;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::convert::{array, bytes, from_json, object, optional_str, rng, timestamp, to_json};
use crate::errors::{argument_error, machine, to_device_kind, undecryptable};
use crate::olm::identity_keys_to_js;
use crate::store::{AnyStore, Store};
use crate::types::{matrix_trust_name, matrix_trust_of};

#[wasm_bindgen(typescript_custom_section)]
const TS: &str = r#"
/** A request to send to the homeserver, then hand its response to `markRequestAsSent`. */
export interface OutgoingRequest {
  id: string; kind: "keysUpload" | "keysQuery" | "keysClaim" | "toDevice";
  eventType?: string; method: string; path: string; body: any;
}
/** The parts of a `/sync` response the machine reads. */
export interface SyncChanges {
  toDeviceEvents?: any[]; changedUsers?: string[]; leftUsers?: string[];
  oneTimeKeyCount?: number; unusedFallbackKeyTypes?: string[];
}
/** An application record committed with an operation (a sync token, a decrypted event). */
export interface AppRecord { table: string; key: Uint8Array; value: Uint8Array }
/** What happened to one to-device event. */
export type ToDeviceOutcome =
  | { outcome: "decrypted"; sender: string; type: string; content: any; senderKey: string | null }
  | { outcome: "repeated" }
  | { outcome: "failed"; kind: string; reason: string };
/** A decrypted room event. */
export interface DecryptedRoomEvent {
  type: string; content: any; sender: string; senderDevice: string | null; sessionId: string;
  messageIndex: number; forwarded: boolean; verified: boolean;
}
/** A device of some user. */
export interface MatrixDevice {
  userId: string; deviceId: string; curve25519: string; ed25519: string;
  trust: "unverified" | "verified" | "blocked"; deleted: boolean;
}
/** The requests carrying a room key, and member devices without an Olm session. */
export interface RoomKeyShare { requests: OutgoingRequest[]; withoutSession: { userId: string; deviceId: string }[] }
/** What a key import did. */
export interface ImportResult { imported: number; skipped: number; total: number }
"#;

fn request_js(request: &OutgoingRequest) -> Result<JsValue, JsValue> {
    let (method, path) = request.endpoint();
    let (kind, event_type) = match &request.kind {
        RequestKind::KeysUpload => ("keysUpload", None),
        RequestKind::KeysQuery { .. } => ("keysQuery", None),
        RequestKind::KeysClaim => ("keysClaim", None),
        RequestKind::ToDevice { event_type } => ("toDevice", Some(event_type.as_str())),
        _ => ("other", None),
    };
    let mut fields = vec![
        ("id", request.id.as_str().into()),
        ("kind", kind.into()),
        ("method", method.into()),
        ("path", path.into()),
        ("body", from_json(&request.body)?),
    ];
    if let Some(event_type) = event_type {
        fields.push(("eventType", event_type.into()));
    }
    Ok(object(&fields))
}

fn requests_js(requests: &[OutgoingRequest]) -> Result<JsValue, JsValue> {
    Ok(array(
        requests
            .iter()
            .map(request_js)
            .collect::<Result<Vec<_>, _>>()?,
    ))
}

fn decrypted_js(event: &DecryptedRoomEvent) -> Result<JsValue, JsValue> {
    Ok(object(&[
        ("type", event.event_type.as_str().into()),
        ("content", from_json(&event.content)?),
        ("sender", event.sender.as_str().into()),
        ("senderDevice", optional_str(event.sender_device.as_deref())),
        ("sessionId", event.session_id.as_str().into()),
        ("messageIndex", event.message_index.into()),
        ("forwarded", event.forwarded.into()),
        ("verified", event.verified.into()),
    ]))
}

fn settings_of(content: &JsValue) -> Result<RoomSettings, JsValue> {
    RoomSettings::from_encryption_content(&to_json(content)?)
        .ok_or_else(|| machine(&olmo::matrix::MachineError::RoomNotEncrypted))
}

/// `[{ table, key, value }]` (`AppRecord`s) as the core's application records.
fn app_records(value: &Option<Array>) -> Result<Vec<AppRecord>, JsValue> {
    let Some(list) = value else {
        return Ok(Vec::new());
    };
    let get = |item: &JsValue, name: &str| Reflect::get(item, &JsValue::from_str(name)).ok();
    list.iter()
        .map(|item| {
            let table = get(&item, "table")
                .and_then(|t| t.as_string())
                .ok_or_else(|| argument_error("an application record has a string table"))?;
            let key = get(&item, "key")
                .and_then(|k| k.dyn_into::<Uint8Array>().ok())
                .ok_or_else(|| argument_error("an application record's key is a Uint8Array"))?;
            let value = get(&item, "value")
                .and_then(|v| v.dyn_into::<Uint8Array>().ok())
                .ok_or_else(|| argument_error("an application record's value is a Uint8Array"))?;
            Ok(AppRecord {
                table,
                key: key.to_vec(),
                value: Zeroizing::new(value.to_vec()),
            })
        })
        .collect()
}

fn field_strings(changes: &Value, name: &str) -> Result<Vec<String>, JsValue> {
    match changes.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| argument_error("expected an array of strings"))
            })
            .collect(),
        Some(_) => Err(argument_error("expected an array of strings")),
    }
}

/// One Matrix device's end-to-end encryption: Olm with other devices, Megolm in rooms.
#[wasm_bindgen]
pub struct MatrixMachine {
    inner: Rc<Machine<AnyStore>>,
}

#[wasm_bindgen]
impl MatrixMachine {
    /// Opens the device `deviceId` of `userId` in `store` under a 32-byte storage key,
    /// creating its account on first use.
    #[wasm_bindgen(unchecked_return_type = "Promise<MatrixMachine>")]
    pub fn open(
        store: &Store,
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
        #[wasm_bindgen(js_name = userId)] user_id: String,
        #[wasm_bindgen(js_name = deviceId)] device_id: String,
    ) -> Promise {
        let backend = store.inner.clone();
        let key = crate::convert::storage_key(storage_key);
        promise(async move {
            let key = key?;
            let machine = Machine::open(backend, &key, &user_id, &device_id, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(MatrixMachine {
                inner: Rc::new(machine),
            }
            .into())
        })
    }

    /// Our user id.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> String {
        self.inner.user_id().to_owned()
    }

    /// Our device id.
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_owned()
    }

    /// Our identity keys.
    #[wasm_bindgen(getter, js_name = identityKeys, unchecked_return_type = "IdentityKeys")]
    pub fn identity_keys(&self) -> JsValue {
        identity_keys_to_js(&self.inner.identity_keys())
    }

    /// The requests to send now (key uploads, device queries, to-device messages).
    #[wasm_bindgen(js_name = outgoingRequests, unchecked_return_type = "Promise<OutgoingRequest[]>")]
    pub fn outgoing_requests(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let requests = inner
                .outgoing_requests(&mut rng())
                .await
                .map_err(|e| machine(&e))?;
            requests_js(&requests)
        })
    }

    /// Hands a request's response (the JSON body) to the machine.
    #[wasm_bindgen(js_name = markRequestAsSent, unchecked_return_type = "Promise<void>")]
    pub fn mark_request_as_sent(
        &self,
        #[wasm_bindgen(js_name = requestId)] request_id: String,
        response: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        let response = to_json(&response);
        promise(async move {
            inner
                .mark_request_as_sent(&request_id, &response?, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Applies a sync's changes (with the application's records, committed together): one
    /// outcome per to-device event.
    #[wasm_bindgen(
        js_name = receiveSyncChanges,
        unchecked_return_type = "Promise<ToDeviceOutcome[]>"
    )]
    pub fn receive_sync_changes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SyncChanges")] changes: JsValue,
        app: Option<Array>,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = to_json(&changes).and_then(|c| Ok((c, app_records(&app)?)));
        promise(async move {
            let (mut changes, app) = parsed?;
            let events = match changes.get_mut("toDeviceEvents") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(events)) => std::mem::take(events),
                Some(_) => return Err(argument_error("toDeviceEvents is an array")),
            };
            let changed = field_strings(&changes, "changedUsers")?;
            let left = field_strings(&changes, "leftUsers")?;
            let fallback = match changes.get("unusedFallbackKeyTypes") {
                None | Some(Value::Null) => None,
                Some(_) => Some(field_strings(&changes, "unusedFallbackKeyTypes")?),
            };
            let sync = SyncChanges {
                to_device_events: &events,
                changed_users: &changed,
                left_users: &left,
                one_time_key_count: changes.get("oneTimeKeyCount").and_then(Value::as_u64),
                unused_fallback_key_types: fallback.as_deref(),
            };
            let outcomes = inner
                .receive_sync_changes(sync, &app, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            let list = outcomes
                .iter()
                .map(|outcome| {
                    Ok(match outcome {
                        ToDeviceOutcome::Decrypted(event) => object(&[
                            ("outcome", "decrypted".into()),
                            ("sender", event.sender.as_str().into()),
                            ("type", event.event_type.as_str().into()),
                            ("content", from_json(&event.content)?),
                            ("senderKey", optional_str(event.sender_key.as_deref())),
                        ]),
                        ToDeviceOutcome::Repeated => object(&[("outcome", "repeated".into())]),
                        ToDeviceOutcome::Failed(error) => object(&[
                            ("outcome", "failed".into()),
                            ("kind", to_device_kind(error).into()),
                            ("reason", error.to_string().into()),
                        ]),
                    })
                })
                .collect::<Result<Vec<_>, JsValue>>()?;
            Ok(array(list))
        })
    }

    /// Starts tracking the device lists of `users` (a room's members).
    #[wasm_bindgen(js_name = updateTrackedUsers, unchecked_return_type = "Promise<void>")]
    pub fn update_tracked_users(&self, users: Vec<String>) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            inner
                .update_tracked_users(&users, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A `/keys/claim` request for the devices of `users` we have no Olm session with, or
    /// `null`.
    #[wasm_bindgen(
        js_name = missingSessions,
        unchecked_return_type = "Promise<OutgoingRequest | null>"
    )]
    pub fn missing_sessions(&self, users: Vec<String>) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            let request = inner
                .missing_sessions(&users, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            match request {
                Some(request) => request_js(&request),
                None => Ok(JsValue::NULL),
            }
        })
    }

    /// Shares our room key of `roomId` with every device of `members`, under the room's
    /// `m.room.encryption` content, at `now` (milliseconds; `Date.now()` if omitted).
    #[wasm_bindgen(js_name = shareRoomKey, unchecked_return_type = "Promise<RoomKeyShare>")]
    pub fn share_room_key(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: String,
        members: Vec<String>,
        #[wasm_bindgen(js_name = encryptionContent)] encryption_content: JsValue,
        now: Option<f64>,
    ) -> Promise {
        let inner = self.inner.clone();
        let settings = settings_of(&encryption_content);
        let now = timestamp(now);
        promise(async move {
            let settings = settings?;
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            let share = inner
                .share_room_key(&room_id, &members, &settings, now, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            let without = share.without_session.iter().map(|(user, device)| {
                object(&[
                    ("userId", user.as_str().into()),
                    ("deviceId", device.as_str().into()),
                ])
            });
            Ok(object(&[
                ("requests", requests_js(&share.requests)?),
                ("withoutSession", array(without)),
            ]))
        })
    }

    /// Encrypts an event for `roomId`: the `m.room.encrypted` content to send.
    #[wasm_bindgen(js_name = encryptRoomEvent, unchecked_return_type = "Promise<any>")]
    pub fn encrypt_room_event(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: String,
        #[wasm_bindgen(js_name = eventType)] event_type: String,
        content: JsValue,
        #[wasm_bindgen(js_name = encryptionContent)] encryption_content: JsValue,
        now: Option<f64>,
    ) -> Promise {
        let inner = self.inner.clone();
        let content = to_json(&content);
        let settings = settings_of(&encryption_content);
        let now = timestamp(now);
        promise(async move {
            let (content, settings) = (content?, settings?);
            let encrypted = inner
                .encrypt_room_event(&room_id, &event_type, &content, &settings, now, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            from_json(&encrypted)
        })
    }

    /// Decrypts an `m.room.encrypted` event of `roomId` (rejects with a `DecryptionError`).
    #[wasm_bindgen(
        js_name = decryptRoomEvent,
        unchecked_return_type = "Promise<DecryptedRoomEvent>"
    )]
    pub fn decrypt_room_event(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: String,
        event: JsValue,
        app: Option<Array>,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = to_json(&event).and_then(|e| Ok((e, app_records(&app)?)));
        promise(async move {
            let (event, app) = parsed?;
            let decrypted = inner
                .decrypt_room_event(&room_id, &event, &app, &mut rng())
                .await
                .map_err(|e| undecryptable(&e))?;
            decrypted_js(&decrypted)
        })
    }

    /// Decrypts a batch of events of one room in one commit: for each, `{ event }` or
    /// `{ error }` (a `DecryptionError`).
    #[wasm_bindgen(
        js_name = decryptRoomEvents,
        unchecked_return_type = "Promise<({ event: DecryptedRoomEvent } | { error: Error })[]>"
    )]
    pub fn decrypt_room_events(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: String,
        events: JsValue,
        app: Option<Array>,
    ) -> Promise {
        let inner = self.inner.clone();
        let parsed = to_json(&events).and_then(|e| Ok((e, app_records(&app)?)));
        promise(async move {
            let (events, app) = parsed?;
            let Value::Array(events) = events else {
                return Err(argument_error("events are an array"));
            };
            let results = inner
                .decrypt_room_events(&room_id, &events, &app, &mut rng())
                .await
                .map_err(|e| undecryptable(&e))?;
            let list = results
                .iter()
                .map(|r| {
                    Ok(match r {
                        Ok(event) => object(&[("event", decrypted_js(event)?)]),
                        Err(error) => object(&[("error", undecryptable(error))]),
                    })
                })
                .collect::<Result<Vec<_>, JsValue>>()?;
            Ok(array(list))
        })
    }

    /// Forwards our copy of a room key to one of our own devices: a to-device request, or
    /// `null` (no such key, or no Olm session with the device).
    #[wasm_bindgen(
        js_name = forwardRoomKey,
        unchecked_return_type = "Promise<OutgoingRequest | null>"
    )]
    pub fn forward_room_key(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: String,
        #[wasm_bindgen(js_name = sessionId)] session_id: String,
        #[wasm_bindgen(js_name = deviceId)] device_id: String,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let request = inner
                .forward_room_key(&room_id, &session_id, &device_id, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            match request {
                Some(request) => request_js(&request),
                None => Ok(JsValue::NULL),
            }
        })
    }

    /// Discards our outbound session of `roomId`: the next message starts a new one.
    #[wasm_bindgen(js_name = invalidateRoomKey, unchecked_return_type = "Promise<void>")]
    pub fn invalidate_room_key(
        &self,
        #[wasm_bindgen(js_name = roomId)] room_id: String,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner
                .invalidate_room_key(&room_id, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The known devices of `userId`.
    #[wasm_bindgen(unchecked_return_type = "Promise<MatrixDevice[]>")]
    pub fn devices(&self, #[wasm_bindgen(js_name = userId)] user_id: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let devices = inner.devices(&user_id).await.map_err(|e| machine(&e))?;
            Ok(array(devices.iter().map(|d| {
                object(&[
                    ("userId", d.user_id.as_str().into()),
                    ("deviceId", d.device_id.as_str().into()),
                    ("curve25519", d.curve25519.as_str().into()),
                    ("ed25519", d.ed25519.as_str().into()),
                    ("trust", matrix_trust_name(d.trust).into()),
                    ("deleted", d.deleted.into()),
                ])
            })))
        })
    }

    /// Records the application's decision about a device.
    #[wasm_bindgen(js_name = setDeviceTrust, unchecked_return_type = "Promise<void>")]
    pub fn set_device_trust(
        &self,
        #[wasm_bindgen(js_name = userId)] user_id: String,
        #[wasm_bindgen(js_name = deviceId)] device_id: String,
        #[wasm_bindgen(unchecked_param_type = "\"unverified\" | \"verified\" | \"blocked\"")]
        trust: String,
    ) -> Promise {
        let inner = self.inner.clone();
        let trust = matrix_trust_of(&trust);
        promise(async move {
            inner
                .set_device_trust(&user_id, &device_id, trust?, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Imports a key export file in one commit; `progress(done, total)` is called as keys are
    /// processed.
    #[wasm_bindgen(js_name = importRoomKeys, unchecked_return_type = "Promise<ImportResult>")]
    pub fn import_room_keys(
        &self,
        file: String,
        passphrase: String,
        progress: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let mut report = |done: usize, total: usize| {
                if let Some(f) = &progress {
                    let _ = f.call2(
                        &JsValue::NULL,
                        &(done as f64).into(),
                        &(total as f64).into(),
                    );
                }
            };
            let result = inner
                .import_room_keys(&file, &passphrase, &mut report, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(object(&[
                ("imported", (result.imported as f64).into()),
                ("skipped", (result.skipped as f64).into()),
                ("total", (result.total as f64).into()),
            ]))
        })
    }

    /// Exports the room keys we hold (of `roomId`, or all) as a key export file.
    #[wasm_bindgen(js_name = exportRoomKeys, unchecked_return_type = "Promise<string>")]
    pub fn export_room_keys(
        &self,
        passphrase: String,
        #[wasm_bindgen(js_name = roomId)] room_id: Option<String>,
        rounds: Option<u32>,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let file = inner
                .export_room_keys(
                    room_id.as_deref(),
                    &passphrase,
                    rounds.unwrap_or(KEY_EXPORT_DEFAULT_ROUNDS),
                    &mut rng(),
                )
                .await
                .map_err(|e| machine(&e))?;
            Ok(file.into())
        })
    }

    /// One of the application's records (`undefined` if absent).
    #[wasm_bindgen(js_name = appRecord, unchecked_return_type = "Promise<Uint8Array | undefined>")]
    pub fn app_record(&self, table: String, key: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let value = inner
                .app_record(&table, &key)
                .await
                .map_err(|e| machine(&e))?;
            Ok(value.map_or(JsValue::UNDEFINED, |v| bytes(&v).into()))
        })
    }

    /// Deletes a record that no longer opens (a `StoreError` of kind `corrupt` names it).
    #[wasm_bindgen(js_name = dropRecord, unchecked_return_type = "Promise<void>")]
    pub fn drop_record(
        &self,
        table: String,
        #[wasm_bindgen(js_name = keyHex)] key_hex: String,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner
                .drop_record(&table, &key_hex, &mut rng())
                .await
                .map_err(|e| machine(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
