//! The Matrix machine: one device's end-to-end encryption over a store, sans I/O. JSON crosses
//! as strings (the Client-Server API's bodies), as matrix-sdk-crypto's bindings do. The calls
//! block the calling thread until the store answered: call them off the UI thread.

use std::sync::Arc;

use olmo::matrix::{
    DecryptedRoomEvent as CoreDecrypted, Device, Machine, OutgoingRequest, RoomSettings,
    SyncChanges, ToDeviceOutcome as CoreOutcome, Trust,
};
use olmo::store::block_on;
use olmo::time::Timestamp;
use serde_json::Value;

use crate::error::OlmoError;
use crate::stores::{AnyStore, OlmoStore};

fn json(text: &str) -> Result<Value, OlmoError> {
    serde_json::from_str(text).map_err(|error| OlmoError::Decode {
        reason: format!("JSON: {error}"),
    })
}

fn settings(encryption_content: &str) -> Result<RoomSettings, OlmoError> {
    RoomSettings::from_encryption_content(&json(encryption_content)?).ok_or(OlmoError::Machine {
        reason: "the room's encryption algorithm is not m.megolm.v1.aes-sha2".into(),
    })
}

/// A request for the app to send: the HTTP method, the path under the homeserver's base URL,
/// the JSON body, and the id to hand back with the response.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MatrixRequest {
    /// The id for [`MatrixMachine::mark_request_as_sent`] (and a to-device transaction id).
    pub id: String,
    /// `POST` or `PUT`.
    pub method: String,
    /// The path, e.g. `/_matrix/client/v3/keys/upload`.
    pub path: String,
    /// The JSON body (keys and ciphertexts only).
    pub body: String,
}

impl From<OutgoingRequest> for MatrixRequest {
    fn from(request: OutgoingRequest) -> Self {
        let (method, path) = request.endpoint();
        Self {
            id: request.id,
            method: method.to_owned(),
            path,
            body: request.body.to_string(),
        }
    }
}

/// A device of a user, as the machine knows it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MatrixDevice {
    /// The owner.
    pub user_id: String,
    /// The device id.
    pub device_id: String,
    /// Its Curve25519 identity key.
    pub curve25519: String,
    /// Its Ed25519 key.
    pub ed25519: String,
    /// The app's decision about it.
    pub trust: DeviceTrust,
    /// The server no longer lists it.
    pub deleted: bool,
}

/// The app's decision about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceTrust {
    /// No decision yet.
    Unverified,
    /// Verified by the app.
    Verified,
    /// Refused: no room keys are shared with it.
    Blocked,
}

impl From<Device> for MatrixDevice {
    fn from(device: Device) -> Self {
        Self {
            user_id: device.user_id,
            device_id: device.device_id,
            curve25519: device.curve25519,
            ed25519: device.ed25519,
            trust: match device.trust {
                Trust::Verified => DeviceTrust::Verified,
                Trust::Blocked => DeviceTrust::Blocked,
                _ => DeviceTrust::Unverified,
            },
            deleted: device.deleted,
        }
    }
}

/// What sharing a room key gave: requests to send, and member devices left out for want of an
/// Olm session (claim with [`MatrixMachine::missing_sessions`], then share again).
#[derive(Debug, Clone, uniffi::Record)]
pub struct RoomKeyShare {
    /// To-device requests carrying the key.
    pub requests: Vec<MatrixRequest>,
    /// `user_id` and `device_id` of each device without a session.
    pub without_session: Vec<Vec<String>>,
}

/// What an import of a key file did.
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct ImportResult {
    /// Sessions stored.
    pub imported: u64,
    /// Sessions left out (held as well or better, or malformed).
    pub skipped: u64,
    /// Sessions in the file.
    pub total: u64,
}

/// What happened to one to-device event of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ToDeviceKind {
    /// Decrypted (or plain) and applied.
    Decrypted,
    /// The same ciphertext came before: nothing changed.
    Repeated,
    /// Refused: see the reason.
    Failed,
}

/// One to-device event's outcome. An object, because a decrypted event's content (a room key)
/// is secret and a printed record would show it.
#[derive(uniffi::Object)]
pub struct ToDeviceOutcome(CoreOutcome);

#[uniffi::export]
impl ToDeviceOutcome {
    /// What happened.
    pub fn kind(&self) -> ToDeviceKind {
        match &self.0 {
            CoreOutcome::Decrypted(_) => ToDeviceKind::Decrypted,
            CoreOutcome::Repeated => ToDeviceKind::Repeated,
            CoreOutcome::Failed(_) => ToDeviceKind::Failed,
        }
    }

    /// The sender, for a decrypted event.
    pub fn sender(&self) -> Option<String> {
        match &self.0 {
            CoreOutcome::Decrypted(event) => Some(event.sender.clone()),
            _ => None,
        }
    }

    /// The decrypted event type, for a decrypted event.
    pub fn event_type(&self) -> Option<String> {
        match &self.0 {
            CoreOutcome::Decrypted(event) => Some(event.event_type.clone()),
            _ => None,
        }
    }

    /// The decrypted content as JSON, for a decrypted event.
    pub fn content(&self) -> Option<String> {
        match &self.0 {
            CoreOutcome::Decrypted(event) => Some(event.content.to_string()),
            _ => None,
        }
    }

    /// The sending device's Curve25519 key, for an Olm-encrypted event.
    pub fn sender_key(&self) -> Option<String> {
        match &self.0 {
            CoreOutcome::Decrypted(event) => event.sender_key.clone(),
            _ => None,
        }
    }

    /// Why the event was refused.
    pub fn failure(&self) -> Option<String> {
        match &self.0 {
            CoreOutcome::Failed(error) => Some(error.to_string()),
            _ => None,
        }
    }
}

/// A decrypted room event (an object: its content is the plaintext).
#[derive(uniffi::Object)]
pub struct DecryptedRoomEvent(CoreDecrypted);

#[uniffi::export]
impl DecryptedRoomEvent {
    /// The event type inside (`m.room.message`...).
    pub fn event_type(&self) -> String {
        self.0.event_type.clone()
    }

    /// The content inside, as JSON.
    pub fn content(&self) -> String {
        self.0.content.to_string()
    }

    /// The sender.
    pub fn sender(&self) -> String {
        self.0.sender.clone()
    }

    /// The sending device, when the key belongs to a device of the sender we know.
    pub fn sender_device(&self) -> Option<String> {
        self.0.sender_device.clone()
    }

    /// The Megolm session id.
    pub fn session_id(&self) -> String {
        self.0.session_id.clone()
    }

    /// The message index in the session.
    pub fn message_index(&self) -> u32 {
        self.0.message_index
    }

    /// The key came forwarded or imported.
    pub fn forwarded(&self) -> bool {
        self.0.forwarded
    }

    /// The sending device is verified and the key came from it directly.
    pub fn verified(&self) -> bool {
        self.0.verified
    }
}

/// One Matrix device's end-to-end encryption: Olm with other devices, Megolm in rooms.
#[derive(uniffi::Object)]
pub struct MatrixMachine(Machine<AnyStore>);

#[uniffi::export]
impl MatrixMachine {
    /// Opens device `device_id` of `user_id` in `store` under a 32-byte storage key (from the
    /// platform keystore), creating the account on first use.
    #[uniffi::constructor]
    pub fn open(
        store: Arc<OlmoStore>,
        storage_key: Vec<u8>,
        user_id: String,
        device_id: String,
    ) -> Result<Arc<Self>, OlmoError> {
        let key = crate::error::storage_key(&storage_key)?;
        let machine = block_on(Machine::open(
            store.0.clone(),
            &key,
            &user_id,
            &device_id,
            &mut rand::rng(),
        ))?;
        Ok(Arc::new(Self(machine)))
    }

    /// Our user id.
    pub fn user_id(&self) -> String {
        self.0.user_id().to_owned()
    }

    /// Our device id.
    pub fn device_id(&self) -> String {
        self.0.device_id().to_owned()
    }

    /// Our Curve25519 identity key.
    pub fn curve25519_key(&self) -> String {
        self.0.identity_keys().curve25519.to_base64()
    }

    /// Our Ed25519 key.
    pub fn ed25519_key(&self) -> String {
        self.0.identity_keys().ed25519.to_base64()
    }

    /// The requests to send now (key uploads, device queries, pending to-device messages).
    pub fn outgoing_requests(&self) -> Result<Vec<MatrixRequest>, OlmoError> {
        let requests = block_on(self.0.outgoing_requests(&mut rand::rng()))?;
        Ok(requests.into_iter().map(MatrixRequest::from).collect())
    }

    /// Hands back a request's response body (JSON).
    pub fn mark_request_as_sent(
        &self,
        request_id: String,
        response: String,
    ) -> Result<(), OlmoError> {
        let response = json(&response)?;
        Ok(block_on(self.0.mark_request_as_sent(
            &request_id,
            &response,
            &mut rand::rng(),
        ))?)
    }

    /// Applies a sync: `to_device_events` is the JSON array `to_device.events`; the rest are
    /// `device_lists.changed` / `.left`, the signed_curve25519 one-time key count and the
    /// unused fallback key types, when the sync has them. One outcome per to-device event.
    pub fn receive_sync_changes(
        &self,
        to_device_events: String,
        changed_users: Vec<String>,
        left_users: Vec<String>,
        one_time_key_count: Option<u64>,
        unused_fallback_key_types: Option<Vec<String>>,
    ) -> Result<Vec<Arc<ToDeviceOutcome>>, OlmoError> {
        let events = match json(&to_device_events)? {
            Value::Array(events) => events,
            _ => {
                return Err(OlmoError::Decode {
                    reason: "to_device_events is not a JSON array".into(),
                });
            }
        };
        let changes = SyncChanges {
            to_device_events: &events,
            changed_users: &changed_users,
            left_users: &left_users,
            one_time_key_count,
            unused_fallback_key_types: unused_fallback_key_types.as_deref(),
        };
        let outcomes = block_on(self.0.receive_sync_changes(changes, &[], &mut rand::rng()))?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| Arc::new(ToDeviceOutcome(outcome)))
            .collect())
    }

    /// Starts tracking the device lists of `users` (a room's members).
    pub fn update_tracked_users(&self, users: Vec<String>) -> Result<(), OlmoError> {
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        Ok(block_on(
            self.0.update_tracked_users(&users, &mut rand::rng()),
        )?)
    }

    /// The keys/claim request for devices of `users` we have no Olm session with, if any.
    pub fn missing_sessions(&self, users: Vec<String>) -> Result<Option<MatrixRequest>, OlmoError> {
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let request = block_on(self.0.missing_sessions(&users, &mut rand::rng()))?;
        Ok(request.map(MatrixRequest::from))
    }

    /// The devices of `user_id` we know.
    pub fn devices(&self, user_id: String) -> Result<Vec<MatrixDevice>, OlmoError> {
        let devices = block_on(self.0.devices(&user_id))?;
        Ok(devices.into_iter().map(MatrixDevice::from).collect())
    }

    /// Records the app's decision about a device.
    pub fn set_device_trust(
        &self,
        user_id: String,
        device_id: String,
        trust: DeviceTrust,
    ) -> Result<(), OlmoError> {
        let trust = match trust {
            DeviceTrust::Unverified => Trust::Unverified,
            DeviceTrust::Verified => Trust::Verified,
            DeviceTrust::Blocked => Trust::Blocked,
        };
        Ok(block_on(self.0.set_device_trust(
            &user_id,
            &device_id,
            trust,
            &mut rand::rng(),
        ))?)
    }

    /// Shares the room's current key (rotating it when due) with `members`' devices;
    /// `encryption_settings` is the room's `m.room.encryption` content as JSON.
    pub fn share_room_key(
        &self,
        room_id: String,
        members: Vec<String>,
        encryption_settings: String,
    ) -> Result<RoomKeyShare, OlmoError> {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        let share = block_on(self.0.share_room_key(
            &room_id,
            &members,
            &settings(&encryption_settings)?,
            Timestamp::now(),
            &mut rand::rng(),
        ))?;
        Ok(RoomKeyShare {
            requests: share
                .requests
                .into_iter()
                .map(MatrixRequest::from)
                .collect(),
            without_session: share
                .without_session
                .into_iter()
                .map(|(user, device)| vec![user, device])
                .collect(),
        })
    }

    /// Encrypts a room event (`content` as JSON); the `m.room.encrypted` content as JSON.
    pub fn encrypt_room_event(
        &self,
        room_id: String,
        event_type: String,
        content: String,
        encryption_settings: String,
    ) -> Result<String, OlmoError> {
        let encrypted = block_on(self.0.encrypt_room_event(
            &room_id,
            &event_type,
            &json(&content)?,
            &settings(&encryption_settings)?,
            Timestamp::now(),
            &mut rand::rng(),
        ))?;
        Ok(encrypted.to_string())
    }

    /// Decrypts an `m.room.encrypted` timeline event (the whole event as JSON).
    pub fn decrypt_room_event(
        &self,
        room_id: String,
        event: String,
    ) -> Result<Arc<DecryptedRoomEvent>, OlmoError> {
        let event = json(&event)?;
        let decrypted =
            block_on(
                self.0
                    .decrypt_room_event(&room_id, &event, &[], &mut rand::rng()),
            )?;
        Ok(Arc::new(DecryptedRoomEvent(decrypted)))
    }

    /// Stops using the room's outbound key (a member left): the next share makes a new one.
    pub fn invalidate_room_key(&self, room_id: String) -> Result<(), OlmoError> {
        Ok(block_on(
            self.0.invalidate_room_key(&room_id, &mut rand::rng()),
        )?)
    }

    /// The room keys held (of one room, or all) as a key export file.
    pub fn export_room_keys(
        &self,
        room_id: Option<String>,
        passphrase: String,
        rounds: u32,
    ) -> Result<String, OlmoError> {
        Ok(block_on(self.0.export_room_keys(
            room_id.as_deref(),
            &passphrase,
            rounds,
            &mut rand::rng(),
        ))?)
    }

    /// Imports the room keys of a key export file, in one commit.
    pub fn import_room_keys(
        &self,
        file: String,
        passphrase: String,
    ) -> Result<ImportResult, OlmoError> {
        let result = block_on(self.0.import_room_keys(
            &file,
            &passphrase,
            &mut |_, _| {},
            &mut rand::rng(),
        ))?;
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(ImportResult {
            imported: count(result.imported),
            skipped: count(result.skipped),
            total: count(result.total),
        })
    }
}
