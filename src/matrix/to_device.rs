//! What a sync hands the machine: to-device events (Olm-encrypted room keys, forwarded keys,
//! dummies; withheld notices in the clear), device-list changes and our key counts, all applied
//! in one commit together with the application's own records (the sync token, say).

use rand_core::CryptoRng;
use serde_json::Value;
use zeroize::Zeroizing;

use super::error::{MachineError, ToDeviceError};
use super::machine::{AppRecord, Machine, OLM_V1};
use super::records::{self, table};
use crate::codec::json_value;
use crate::crypto::Curve25519PublicKey;
use crate::crypto::hazmat::sha256;
use crate::olm::{Account, OlmMessage, SessionCreationError};
use crate::store::transact;
use crate::store::{Backend, Txn};

/// To-device events accepted in one sync.
const MAX_TO_DEVICE_EVENTS: usize = 1_000;
/// The largest to-device ciphertext body accepted, in base64 characters.
const MAX_BODY: usize = 64 * 1024;

/// The parts of a `/sync` response the machine needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncChanges<'a> {
    /// `to_device.events`.
    pub to_device_events: &'a [Value],
    /// `device_lists.changed`.
    pub changed_users: &'a [String],
    /// `device_lists.left`.
    pub left_users: &'a [String],
    /// `device_one_time_keys_count.signed_curve25519`.
    pub one_time_key_count: Option<u64>,
    /// `device_unused_fallback_key_types`.
    pub unused_fallback_key_types: Option<&'a [String]>,
}

/// A to-device event after decryption: its type and content, the sender, and for Olm events
/// the sender's Curve25519 key. Withheld notices come in the clear.
#[derive(Clone, PartialEq)]
pub struct ToDeviceEvent {
    /// The sender's user id.
    pub sender: String,
    /// The (decrypted) event type.
    pub event_type: String,
    /// The (decrypted) content.
    pub content: Value,
    /// The Curve25519 key of the sending device, for Olm-encrypted events.
    pub sender_key: Option<String>,
}

impl std::fmt::Debug for ToDeviceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToDeviceEvent")
            .field("sender", &self.sender)
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

/// What happened to one to-device event.
#[derive(Debug, Clone, PartialEq)]
pub enum ToDeviceOutcome {
    /// Decrypted (or a plain event), and applied (room keys stored).
    Decrypted(ToDeviceEvent),
    /// The same ciphertext was decrypted before (a repeated delivery): nothing changed.
    Repeated,
    /// Refused; nothing of it was applied.
    Failed(ToDeviceError),
}

impl<B: Backend> Machine<B> {
    /// Applies a sync's changes in one commit, with the application's `app` records (its sync
    /// token, the decrypted events it keeps). Returns one outcome per to-device event, in order.
    pub async fn receive_sync_changes(
        &self,
        changes: SyncChanges<'_>,
        app: &[AppRecord],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<ToDeviceOutcome>, MachineError> {
        if changes.to_device_events.len() > MAX_TO_DEVICE_EVENTS {
            return Err(MachineError::TooLarge("to-device events"));
        }
        transact!(self, rng, |txn| {
            self.plan_sync(&mut txn, changes, app).await
        })
    }

    async fn plan_sync(
        &self,
        txn: &mut Txn<'_, B>,
        changes: SyncChanges<'_>,
        app: &[AppRecord],
    ) -> Result<Vec<ToDeviceOutcome>, MachineError> {
        for user in changes.changed_users {
            if self.is_tracked(txn, user).await? {
                self.track(txn, user, true).await?;
            }
        }
        for user in changes.left_users {
            self.untrack(txn, user).await?;
        }
        self.receive_key_counts(
            txn,
            changes.one_time_key_count,
            changes.unused_fallback_key_types,
        )
        .await?;
        let mut outcomes = Vec::with_capacity(changes.to_device_events.len());
        for event in changes.to_device_events {
            // A refused event leaves no trace, not even the ratchet step of a message whose
            // payload then failed its checks.
            let savepoint = txn.savepoint();
            let outcome = match self.receive_to_device(txn, event).await {
                Ok(outcome) => outcome,
                Err(Failure::Event(error)) => {
                    txn.roll_back(savepoint);
                    if error == ToDeviceError::NoSession {
                        self.mark_wedged(txn, event).await?;
                    }
                    ToDeviceOutcome::Failed(error)
                }
                Err(Failure::Machine(error)) => return Err(error),
            };
            outcomes.push(outcome);
        }
        self.write_app_records(txn, app).await?;
        Ok(outcomes)
    }

    async fn receive_to_device(
        &self,
        txn: &mut Txn<'_, B>,
        event: &Value,
    ) -> Result<ToDeviceOutcome, Failure> {
        let malformed = |what| Failure::Event(ToDeviceError::Malformed(what));
        let sender = event
            .get("sender")
            .and_then(Value::as_str)
            .ok_or(malformed("sender"))?;
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .ok_or(malformed("type"))?;
        let content = event.get("content").ok_or(malformed("content"))?;
        match event_type {
            "m.room.encrypted" => self.receive_olm(txn, sender, content).await,
            "m.room_key.withheld" => {
                self.receive_withheld(txn, content).await?;
                Ok(ToDeviceOutcome::Decrypted(ToDeviceEvent {
                    sender: sender.to_owned(),
                    event_type: event_type.to_owned(),
                    content: content.clone(),
                    sender_key: None,
                }))
            }
            _ => Ok(ToDeviceOutcome::Decrypted(ToDeviceEvent {
                sender: sender.to_owned(),
                event_type: event_type.to_owned(),
                content: content.clone(),
                sender_key: None,
            })),
        }
    }

    async fn receive_olm(
        &self,
        txn: &mut Txn<'_, B>,
        sender: &str,
        content: &Value,
    ) -> Result<ToDeviceOutcome, Failure> {
        let malformed = |what| Failure::Event(ToDeviceError::Malformed(what));
        if content.get("algorithm").and_then(Value::as_str) != Some(OLM_V1) {
            return Err(malformed("algorithm"));
        }
        let sender_key = content
            .get("sender_key")
            .and_then(Value::as_str)
            .ok_or(malformed("sender_key"))?;
        let their_key =
            Curve25519PublicKey::from_base64(sender_key).map_err(|_| malformed("sender_key"))?;
        let ours = self.keys.curve25519.to_base64();
        let Some(ciphertext) = content.get("ciphertext").and_then(|c| c.get(&ours)) else {
            return Err(Failure::Event(ToDeviceError::NotForUs));
        };
        let message_type = ciphertext
            .get("type")
            .and_then(Value::as_u64)
            .and_then(|t| u8::try_from(t).ok())
            .ok_or(malformed("ciphertext type"))?;
        let body = ciphertext
            .get("body")
            .and_then(Value::as_str)
            .ok_or(malformed("ciphertext body"))?;
        if body.len() > MAX_BODY {
            return Err(malformed("ciphertext too large"));
        }
        let seen = self.name(
            table::SEEN,
            &[
                sender_key.as_bytes(),
                &sha256(&[&[message_type], body.as_bytes()]),
            ],
        );
        if txn.get(table::SEEN, &seen).await?.is_some() {
            return Ok(ToDeviceOutcome::Repeated);
        }
        let message = OlmMessage::from_base64_parts(message_type, body)
            .map_err(|_| malformed("olm message"))?;
        let plaintext = self
            .olm_decrypt(txn, sender_key, their_key, &message)
            .await?;
        let payload = json_value::parse(&plaintext).ok_or(malformed("payload"))?;
        self.check_payload(txn, sender, &payload).await?;
        let event_type = payload
            .get("type")
            .and_then(Value::as_str)
            .ok_or(malformed("payload type"))?
            .to_owned();
        let content = payload.get("content").cloned().unwrap_or(Value::Null);
        let claimed_ed25519 = payload
            .get("keys")
            .and_then(|k| k.get("ed25519"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match event_type.as_str() {
            "m.room_key" => {
                self.receive_room_key(txn, sender, sender_key, claimed_ed25519, &content)
                    .await?;
            }
            "m.forwarded_room_key" => {
                self.receive_forwarded_room_key(txn, sender, &content)
                    .await?;
            }
            _ => {}
        }
        records::store(txn, table::SEEN, &seen, &(), &[]).await?;
        Ok(ToDeviceOutcome::Decrypted(ToDeviceEvent {
            sender: sender.to_owned(),
            event_type,
            content,
            sender_key: Some(sender_key.to_owned()),
        }))
    }

    /// Decrypts on an existing session with the sender's key, or (a pre-key message) on a new
    /// inbound session, which removes the one-time key it used only if it decrypted.
    async fn olm_decrypt(
        &self,
        txn: &mut Txn<'_, B>,
        sender_key: &str,
        their_key: Curve25519PublicKey,
        message: &OlmMessage,
    ) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let mut sessions = self.load_sessions(txn, sender_key).await?;
        for index in 0..sessions.sessions.len() {
            let session = &mut sessions.sessions[index];
            if let OlmMessage::PreKey(pre_key) = message
                && !session.matches_inbound_session(pre_key)
            {
                continue;
            }
            let mut copy = session.clone();
            if let Ok(plaintext) = copy.decrypt(message) {
                *session = copy;
                sessions.touch(index);
                self.store_sessions(txn, &sessions).await?;
                return Ok(plaintext);
            }
        }
        let OlmMessage::PreKey(pre_key) = message else {
            return Err(Failure::Event(ToDeviceError::NoSession));
        };
        let (meta, mut account): (_, Account) = self.load_account(txn).await?;
        let created = account
            .create_inbound_session(their_key, pre_key)
            .map_err(|error| {
                Failure::Event(match error {
                    SessionCreationError::MissingOneTimeKey => ToDeviceError::UnknownOneTimeKey,
                    _ => ToDeviceError::Mismatch("the pre-key message does not decrypt"),
                })
            })?;
        sessions.add(created.session);
        self.store_sessions(txn, &sessions).await?;
        self.store_account(txn, &meta, &account).await?;
        Ok(created.plaintext)
    }

    /// Records that the session with the sender of `event` is wedged (an ordinary message no
    /// session decrypts), so the next key claim replaces it and an `m.dummy` tells the sender
    /// to switch. Only for a device we know: anyone can send undecryptable bytes.
    async fn mark_wedged(&self, txn: &mut Txn<'_, B>, event: &Value) -> Result<(), MachineError> {
        let sender = event
            .get("sender")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sender_key = event
            .get("content")
            .and_then(|c| c.get("sender_key"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let devices = self.load_devices(txn, sender).await?;
        if devices.devices.values().any(|d| d.curve25519 == sender_key) {
            let name = self.name(table::WEDGED, &[sender_key.as_bytes()]);
            records::store(txn, table::WEDGED, &name, &sender, &[]).await?;
        }
        Ok(())
    }

    /// The specification's checks on a decrypted Olm payload.
    async fn check_payload(
        &self,
        txn: &mut Txn<'_, B>,
        sender: &str,
        payload: &Value,
    ) -> Result<(), Failure> {
        let mismatch = |what| Failure::Event(ToDeviceError::Mismatch(what));
        let field = |name: &str| payload.get(name).and_then(Value::as_str);
        if field("sender") != Some(sender) {
            return Err(mismatch("sender"));
        }
        if field("recipient") != Some(self.user_id.as_str()) {
            return Err(mismatch("recipient"));
        }
        let recipient_key = payload
            .get("recipient_keys")
            .and_then(|k| k.get("ed25519"))
            .and_then(Value::as_str);
        if recipient_key != Some(self.keys.ed25519.to_base64().as_str()) {
            return Err(mismatch("recipient_keys"));
        }
        let claimed = payload
            .get("keys")
            .and_then(|k| k.get("ed25519"))
            .and_then(Value::as_str)
            .ok_or(mismatch("keys"))?;
        // When we know the sending device, its Ed25519 key must be the one it claims.
        if let Some(device_id) = field("sender_device") {
            let devices = self.load_devices(txn, sender).await?;
            if let Some(device) = devices.devices.get(device_id)
                && device.ed25519 != claimed
            {
                return Err(mismatch("keys"));
            }
        }
        Ok(())
    }
}

/// An event's failure, or the machine's (which aborts the whole operation).
pub(crate) enum Failure {
    Event(ToDeviceError),
    Machine(MachineError),
}

impl From<MachineError> for Failure {
    fn from(error: MachineError) -> Self {
        Failure::Machine(error)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        Failure::Machine(error.into())
    }
}
