//! Megolm in rooms: room keys received (shared, forwarded, withheld), our outbound session per
//! room shared with every member device and rotated when the room's settings or its members
//! say so, and room events encrypted and decrypted with a replay record kept in the store.

use std::collections::HashMap;

use rand_core::CryptoRng;
use serde_json::{Map, Value};

use super::devices::{Device, Trust, UserDevices};
use super::error::{MachineError, UnableToDecrypt};
use super::machine::{AppRecord, MEGOLM_V1, Machine};
use super::records::{self, table};
use super::requests::{OutgoingRequest, RequestKind};
use super::room_batches::{EncryptedEventFields, RoomEvents, SignatureVerifier};
pub(crate) use super::room_records::InboundMeta;
use super::room_records::{OutboundMeta, ReplayEntry, Withheld};
use super::to_device::Failure;
use crate::codec::json_value::{self, object};
use crate::crypto::SignedItem;
use crate::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmDecryptError, MegolmMessage,
    RotationPolicy, SessionKey, SessionOrdering,
};
#[cfg(doc)]
use crate::store::CommitDurability;
use crate::store::transact;
use crate::store::{Backend, Txn};
use crate::time::Timestamp;
use crate::vec_map::VecMap;

/// Devices one to-device request carries room keys to.
const DEVICES_PER_REQUEST: usize = 100;
/// Room events decrypted in one batch.
pub(super) const MAX_BATCH: usize = 10_000;

/// A decrypted room event.
#[derive(Clone, PartialEq)]
pub struct DecryptedRoomEvent {
    /// The event type inside (`m.room.message`, ...).
    pub event_type: String,
    /// The content inside.
    pub content: Value,
    /// The sender (the event's `sender`).
    pub sender: String,
    /// The sending device, when the session's key belongs to a device we know of the sender.
    pub sender_device: Option<String>,
    /// The Megolm session id.
    pub session_id: String,
    /// The message index in the session.
    pub message_index: u32,
    /// The key came forwarded or imported, so who made it is only claimed.
    pub forwarded: bool,
    /// The sending device is verified by the application and the key came from it directly.
    pub verified: bool,
}

impl std::fmt::Debug for DecryptedRoomEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedRoomEvent")
            .field("event_type", &self.event_type)
            .field("sender", &self.sender)
            .field("session_id", &self.session_id)
            .field("message_index", &self.message_index)
            .finish_non_exhaustive()
    }
}

/// The outcome of sharing a room key: the to-device requests to send, and the member devices
/// left out because we have no Olm session with them (claim keys for them, then share again).
#[derive(Debug, Clone, Default)]
pub struct RoomKeyShare {
    /// To-device requests carrying the key.
    pub requests: Vec<OutgoingRequest>,
    /// (user, device) pairs without an Olm session.
    pub without_session: Vec<(String, String)>,
}

/// A room's encryption settings, from its `m.room.encryption` state event content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    /// When to rotate the outbound session.
    pub rotation: RotationPolicy,
}

impl RoomSettings {
    /// The settings of an `m.room.encryption` content; `None` for an algorithm olmo does not
    /// speak.
    pub fn from_encryption_content(content: &Value) -> Option<Self> {
        if content.get("algorithm").and_then(Value::as_str) != Some(MEGOLM_V1) {
            return None;
        }
        let rotation = RotationPolicy::from_room_settings(
            content.get("rotation_period_msgs").and_then(Value::as_u64),
            content.get("rotation_period_ms").and_then(Value::as_u64),
        );
        Some(Self { rotation })
    }
}

impl<B: Backend> Machine<B> {
    pub(crate) async fn load_inbound(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
        session_id: &str,
    ) -> Result<Option<(InboundMeta, InboundGroupSession)>, MachineError> {
        let name = self.name(table::INBOUND, &[room_id.as_bytes(), session_id.as_bytes()]);
        self.load_inbound_named(txn, &name).await
    }

    /// [`Machine::load_inbound`] under the record name already computed.
    async fn load_inbound_named(
        &self,
        txn: &mut Txn<'_, B>,
        name: &[u8],
    ) -> Result<Option<(InboundMeta, InboundGroupSession)>, MachineError> {
        let Some((meta, blobs)) =
            records::load::<B, InboundMeta>(txn, table::INBOUND, name).await?
        else {
            return Ok(None);
        };
        let blob = blobs
            .first()
            .ok_or(MachineError::Corrupt("inbound session"))?;
        // A poisoned lock only loses keys remembered: start again without them.
        let mut keys = self
            .decoded_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let session = InboundGroupSession::from_record_with(blob, &mut keys);
        drop(keys);
        let session = session.map_err(|_| MachineError::Corrupt("inbound session"))?;
        Ok(Some((meta, session)))
    }

    /// Stores an inbound session unless a better copy of it is already stored; returns whether
    /// it was stored.
    pub(crate) async fn store_inbound(
        &self,
        txn: &mut Txn<'_, B>,
        meta: &InboundMeta,
        session: &InboundGroupSession,
    ) -> Result<bool, MachineError> {
        let existing = self
            .load_inbound(txn, &meta.room_id, &meta.session_id)
            .await?;
        if let Some((_, existing)) = existing
            && matches!(
                existing.compare(session),
                SessionOrdering::Better | SessionOrdering::Equal
            )
        {
            return Ok(false);
        }
        let name = self.name(
            table::INBOUND,
            &[meta.room_id.as_bytes(), meta.session_id.as_bytes()],
        );
        let blob = session.to_record();
        records::store(txn, table::INBOUND, &name, meta, &[&blob]).await?;
        Ok(true)
    }

    /// An `m.room_key` sent to us over Olm by `sender`'s device with key `sender_key`.
    pub(crate) async fn receive_room_key(
        &self,
        txn: &mut Txn<'_, B>,
        sender: &str,
        sender_key: &str,
        claimed_ed25519: &str,
        content: &Value,
    ) -> Result<(), Failure> {
        let (room_id, session_id) = room_key_ids(content)?;
        let key = string_field(content, "session_key")
            .and_then(|k| SessionKey::from_base64(k).ok())
            .ok_or(malformed("session_key"))?;
        let meta = InboundMeta {
            room_id: room_id.to_owned(),
            session_id: session_id.to_owned(),
            sender_key: sender_key.to_owned(),
            sender_claimed_ed25519: claimed_ed25519.to_owned(),
            sender_user: Some(sender.to_owned()),
            forwarded: false,
        };
        self.keep_room_key(txn, &meta, &InboundGroupSession::new(&key))
            .await
    }

    /// An `m.forwarded_room_key`. Accepted only from our own other devices (olmo sends no key
    /// requests, so a forward from anyone else is unsolicited).
    pub(crate) async fn receive_forwarded_room_key(
        &self,
        txn: &mut Txn<'_, B>,
        sender: &str,
        content: &Value,
    ) -> Result<(), Failure> {
        if sender != self.user_id {
            return Err(Failure::Event(super::ToDeviceError::Mismatch(
                "a forwarded key from another user",
            )));
        }
        let (room_id, session_id) = room_key_ids(content)?;
        let sender_key = string_field(content, "sender_key").ok_or(malformed("sender_key"))?;
        let claimed = string_field(content, "sender_claimed_ed25519_key").unwrap_or_default();
        let key = string_field(content, "session_key")
            .and_then(|k| ExportedSessionKey::from_base64(k).ok())
            .ok_or(malformed("session_key"))?;
        let meta = InboundMeta {
            room_id: room_id.to_owned(),
            session_id: session_id.to_owned(),
            sender_key: sender_key.to_owned(),
            sender_claimed_ed25519: claimed.to_owned(),
            sender_user: None,
            forwarded: true,
        };
        self.keep_room_key(txn, &meta, &InboundGroupSession::import(&key))
            .await
    }

    /// Stores a received room key, if it is the session the event named.
    async fn keep_room_key(
        &self,
        txn: &mut Txn<'_, B>,
        meta: &InboundMeta,
        session: &InboundGroupSession,
    ) -> Result<(), Failure> {
        if session.session_id() != meta.session_id {
            return Err(Failure::Event(super::ToDeviceError::Mismatch("session_id")));
        }
        self.store_inbound(txn, meta, session).await?;
        Ok(())
    }

    /// An `m.room_key.withheld` notice: the sender will not send the key of that session.
    pub(crate) async fn receive_withheld(
        &self,
        txn: &mut Txn<'_, B>,
        content: &Value,
    ) -> Result<(), MachineError> {
        let field = |name| content.get(name).and_then(Value::as_str);
        let (Some(room_id), Some(session_id), Some(code)) =
            (field("room_id"), field("session_id"), field("code"))
        else {
            return Ok(()); // m.no_olm without a session: nothing to remember
        };
        // Matrix identifiers are at most 255 bytes; a notice naming longer ones is noise.
        if room_id.len() > 255 || session_id.len() > 255 {
            return Ok(());
        }
        let name = self.name(
            table::WITHHELD,
            &[room_id.as_bytes(), session_id.as_bytes()],
        );
        let withheld = Withheld {
            code: code.chars().take(64).collect(),
        };
        Ok(records::store(txn, table::WITHHELD, &name, &withheld, &[]).await?)
    }

    /// Shares the room's outbound session with every device of `members` that may receive it,
    /// first rotating it if the settings say so or a device that had it is gone (a member
    /// left, a device was deleted or blocked). One commit; the returned requests are stored
    /// until marked sent.
    pub async fn share_room_key(
        &self,
        room_id: &str,
        members: &[&str],
        settings: &RoomSettings,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<RoomKeyShare, MachineError> {
        transact!(self, rng, |txn| {
            self.plan_share(&mut txn, room_id, members, settings, now, rng)
                .await
        })
    }

    async fn plan_share(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
        members: &[&str],
        settings: &RoomSettings,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<RoomKeyShare, MachineError> {
        let mut recipients: Vec<Device> = Vec::new();
        for member in members {
            for device in self.load_devices(txn, member).await?.devices.into_values() {
                let ours = device.user_id == self.user_id && device.device_id == self.device_id;
                if device.receives_room_keys() && !ours {
                    recipients.push(device);
                }
            }
        }
        let (_, account) = self.load_account(txn).await?;
        let outbound = self.load_outbound(txn, room_id).await?;
        let (mut meta, mut session) = match outbound {
            Some((meta, session))
                if !session.is_invalidated()
                    && session.rotation_due(&settings.rotation, now).is_none()
                    && still_recipients(&meta, &recipients) =>
            {
                (meta, session)
            }
            _ => {
                let session = GroupSession::new_with_rng(now, rng);
                let inbound = InboundGroupSession::new(&session.session_key());
                let inbound_meta = InboundMeta {
                    room_id: room_id.to_owned(),
                    session_id: session.session_id(),
                    sender_key: self.keys.curve25519.to_base64(),
                    sender_claimed_ed25519: self.keys.ed25519.to_base64(),
                    sender_user: Some(self.user_id.clone()),
                    forwarded: false,
                };
                self.store_inbound(txn, &inbound_meta, &inbound).await?;
                let meta = OutboundMeta {
                    room_id: room_id.to_owned(),
                    shared_with: VecMap::new(),
                };
                (meta, session)
            }
        };
        let key_content = object! {
            "algorithm" => MEGOLM_V1,
            "room_id" => room_id,
            "session_id" => session.session_id(),
            "session_key" => session.session_key().to_base64().as_str(),
        };
        let mut share = RoomKeyShare::default();
        let mut messages: Vec<(String, String, Value)> = Vec::new();
        for device in &recipients {
            let already = meta
                .shared_with
                .get(&device.user_id)
                .and_then(|d| d.get(&device.device_id));
            if already.is_some() {
                continue;
            }
            let content = self
                .encrypt_to_device(
                    txn,
                    &account,
                    device,
                    "m.room_key",
                    key_content.clone(),
                    rng,
                )
                .await?;
            let Some(content) = content else {
                share
                    .without_session
                    .push((device.user_id.clone(), device.device_id.clone()));
                continue;
            };
            meta.shared_with
                .get_or_default(device.user_id.clone())
                .insert(device.device_id.clone(), device.curve25519.clone());
            messages.push((device.user_id.clone(), device.device_id.clone(), content));
        }
        for chunk in messages.chunks(DEVICES_PER_REQUEST) {
            let mut body = Map::new();
            for (user, device, content) in chunk {
                if let Value::Object(devices) = body.entry(user.as_str()).or_insert(object! {}) {
                    devices.insert(device.clone(), content.clone());
                }
            }
            let kind = RequestKind::ToDevice {
                event_type: "m.room.encrypted".into(),
            };
            let request = self
                .queue_request(txn, kind, object! { "messages" => body }, rng)
                .await?;
            share.requests.push(request);
        }
        self.store_outbound(txn, &meta, &mut session).await?;
        Ok(share)
    }

    async fn load_outbound(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
    ) -> Result<Option<(OutboundMeta, GroupSession)>, MachineError> {
        let name = self.name(table::OUTBOUND, &[room_id.as_bytes()]);
        let Some((meta, blobs)) =
            records::load::<B, OutboundMeta>(txn, table::OUTBOUND, &name).await?
        else {
            return Ok(None);
        };
        let blob = blobs
            .first()
            .ok_or(MachineError::Corrupt("outbound session"))?;
        let session = GroupSession::from_record(blob)
            .map_err(|_| MachineError::Corrupt("outbound session"))?;
        Ok(Some((meta, session)))
    }

    async fn store_outbound(
        &self,
        txn: &mut Txn<'_, B>,
        meta: &OutboundMeta,
        session: &mut GroupSession,
    ) -> Result<(), MachineError> {
        let name = self.name(table::OUTBOUND, &[meta.room_id.as_bytes()]);
        let blob = session.to_record();
        Ok(records::store(txn, table::OUTBOUND, &name, meta, &[&blob]).await?)
    }

    /// Forwards the key of an inbound session we hold to one device of our own user (olmo
    /// accepts forwards only from its own devices, and so do other clients unless they asked),
    /// from the first index we know, as `m.forwarded_room_key` over Olm. One commit; the
    /// request is stored until marked sent. `None` if we hold no such session or have no Olm
    /// session with the device (claim one first).
    pub async fn forward_room_key(
        &self,
        room_id: &str,
        session_id: &str,
        device_id: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<OutgoingRequest>, MachineError> {
        transact!(self, rng, |txn| {
            self.plan_forward(&mut txn, room_id, session_id, device_id, rng)
                .await
        })
    }

    async fn plan_forward(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
        session_id: &str,
        device_id: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<OutgoingRequest>, MachineError> {
        let Some((meta, session)) = self.load_inbound(txn, room_id, session_id).await? else {
            return Ok(None);
        };
        let devices = self.load_devices(txn, &self.user_id).await?;
        let Some(device) = devices
            .devices
            .get(device_id)
            .filter(|d| d.receives_room_keys())
        else {
            return Ok(None);
        };
        let (_, account) = self.load_account(txn).await?;
        let content = object! {
            "algorithm" => MEGOLM_V1,
            "room_id" => room_id,
            "sender_key" => meta.sender_key.as_str(),
            "session_id" => session_id,
            "session_key" => session.export_at_first_known_index().to_base64().as_str(),
            "sender_claimed_ed25519_key" => meta.sender_claimed_ed25519.as_str(),
            "forwarding_curve25519_key_chain" => Value::Array(Vec::new()),
        };
        let Some(encrypted) = self
            .encrypt_to_device(txn, &account, device, "m.forwarded_room_key", content, rng)
            .await?
        else {
            return Ok(None);
        };
        let body = object! {
            "messages" => object! { self.user_id.as_str() => object! { device_id => encrypted } },
        };
        let kind = RequestKind::ToDevice {
            event_type: "m.room.encrypted".into(),
        };
        self.queue_request(txn, kind, body, rng).await.map(Some)
    }

    /// Forgets the room's outbound session, so the next share rotates (a member left).
    pub async fn invalidate_room_key(
        &self,
        room_id: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        transact!(self, rng, |txn| {
            match self.load_outbound(&mut txn, room_id).await {
                Ok(Some((meta, mut session))) => {
                    session.invalidate();
                    self.store_outbound(&mut txn, &meta, &mut session).await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Encrypts a room event with the room's outbound session, which must have been shared
    /// ([`Machine::share_room_key`]) and not be due for rotation. Returns the
    /// `m.room.encrypted` content, only after the commit that advanced the session.
    pub async fn encrypt_room_event(
        &self,
        room_id: &str,
        event_type: &str,
        content: &Value,
        settings: &RoomSettings,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Value, MachineError> {
        transact!(self, rng, |txn| {
            match self.load_outbound(&mut txn, room_id).await {
                Err(e) => Err(e),
                Ok(None) => Err(MachineError::Encrypt("the room key must be shared first")),
                Ok(Some((meta, mut session))) => {
                    if session.is_invalidated()
                        || session.rotation_due(&settings.rotation, now).is_some()
                    {
                        Err(MachineError::Encrypt("the room key must be shared first"))
                    } else {
                        let payload = object! {
                            "type" => event_type,
                            "content" => content.clone(),
                            "room_id" => room_id,
                        };
                        let plaintext = zeroize::Zeroizing::new(json_value::to_vec(&payload));
                        match session.encrypt(&plaintext) {
                            Err(_) => Err(MachineError::Encrypt("megolm")),
                            Ok(message) => {
                                let sealed = object! {
                                    "algorithm" => MEGOLM_V1,
                                    "sender_key" => self.keys.curve25519.to_base64(),
                                    "ciphertext" => message.to_base64(),
                                    "session_id" => session.session_id(),
                                    "device_id" => self.device_id.as_str(),
                                };
                                self.store_outbound(&mut txn, &meta, &mut session)
                                    .await
                                    .map(|()| sealed)
                            }
                        }
                    }
                }
            }
        })
    }

    /// Decrypts one room event (`{type, sender, event_id, origin_server_ts, content}`) and
    /// records (session, index) → (event id, timestamp) with the application's `app` records in
    /// one commit. Decrypting the same event again, after a restart too, is not a replay.
    ///
    /// Without `app` records the commit is [`CommitDurability::LossTolerant`]: it survives
    /// the process being killed, and a power loss may lose it (the event is then recorded again
    /// at its next decrypt); with them it is durable.
    pub async fn decrypt_room_event(
        &self,
        room_id: &str,
        event: &Value,
        app: &[AppRecord],
        rng: &mut impl CryptoRng,
    ) -> Result<DecryptedRoomEvent, UnableToDecrypt> {
        let mut results = self
            .decrypt_room_events(room_id, std::slice::from_ref(event), app, rng)
            .await?;
        results
            .pop()
            .unwrap_or(Err(UnableToDecrypt::Malformed("no event")))
    }

    /// Decrypts a batch of room events of one room (a backlog page) in one commit.
    pub async fn decrypt_room_events(
        &self,
        room_id: &str,
        events: &[Value],
        app: &[AppRecord],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Result<DecryptedRoomEvent, UnableToDecrypt>>, UnableToDecrypt> {
        if events.len() > MAX_BATCH {
            return Err(UnableToDecrypt::Malformed("batch too large"));
        }
        let outcome: Result<_, MachineError> = transact!(self, rng, |txn| {
            self.plan_decrypt(&mut txn, room_id, events, app).await
        });
        outcome.map_err(UnableToDecrypt::Machine)
    }

    async fn plan_decrypt(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
        events: &[Value],
        app: &[AppRecord],
    ) -> Result<Vec<Result<DecryptedRoomEvent, UnableToDecrypt>>, MachineError> {
        let mut rooms = self
            .plan_decrypt_rooms(txn, &[(room_id, RoomEvents::Json(events))], app)
            .await?;
        Ok(rooms.pop().unwrap_or_default())
    }

    /// The first half of a room's batch: its events parsed, and its sessions and senders'
    /// devices loaded (nothing verified or decrypted yet).
    pub(super) async fn load_room_batch<'e>(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &'e str,
        events: RoomEvents<'e>,
    ) -> Result<RoomBatch<'e>, MachineError> {
        let parsed: Vec<Result<Parsed<'_>, UnableToDecrypt>> = match events {
            RoomEvents::Json(events) => events.iter().map(Parsed::from_event).collect(),
            RoomEvents::Fields(events) => events.iter().map(Parsed::from_fields).collect(),
        };
        let mut cache = BatchCache::default();
        self.load_batch(txn, room_id, &parsed, &mut cache).await?;
        Ok(RoomBatch {
            room_id,
            parsed,
            cache,
        })
    }

    /// The second half: each event decrypted and recorded, given whether its signature is
    /// good ([`verify_by_session`]), and the sessions it advanced written back.
    pub(super) async fn finish_room_batch(
        &self,
        txn: &mut Txn<'_, B>,
        batch: RoomBatch<'_>,
        authentic: &[bool],
    ) -> Result<Vec<Result<DecryptedRoomEvent, UnableToDecrypt>>, MachineError> {
        let RoomBatch {
            room_id,
            parsed,
            mut cache,
        } = batch;
        let replays = self.prefetch_replays(txn, &parsed, authentic).await?;
        let mut results = Vec::with_capacity(parsed.len());
        for (event, replay) in parsed.into_iter().zip(replays) {
            results.push(match event {
                Err(error) => Err(error),
                Ok(event) => {
                    self.decrypt_one(txn, room_id, event, replay, &mut cache)
                        .await?
                }
            });
        }
        // Sessions whose latest ratchet moved far are written back, so that the next call
        // starts from there rather than advancing again from the stored one (up to hundreds of
        // HMACs); a short move is not, so a typical decrypt writes one record (its replay
        // entry), not two.
        for session_id in &cache.advanced {
            if let Some(CachedSession {
                name,
                loaded: Some((meta, session)),
                stored_latest,
                ..
            }) = cache.sessions.get(session_id)
                && worth_writing_back(*stored_latest, session.latest_index())
            {
                records::store(txn, table::INBOUND, name, meta, &[&session.to_record()]).await?;
            }
        }
        Ok(results)
    }

    /// Loads, in one backend round trip per table, the inbound sessions the batch names and the
    /// devices of its senders.
    async fn load_batch(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
        parsed: &[Result<Parsed<'_>, UnableToDecrypt>],
        cache: &mut BatchCache,
    ) -> Result<(), MachineError> {
        let mut session_ids: Vec<&str> = Vec::new();
        let mut senders: Vec<&str> = Vec::new();
        for event in parsed.iter().flatten() {
            if !cache.sessions.contains_key(event.session_id) {
                cache
                    .sessions
                    .insert(event.session_id.to_owned(), CachedSession::default());
                session_ids.push(event.session_id);
            }
            if !cache.senders.contains_key(event.sender) {
                cache
                    .senders
                    .insert(event.sender.to_owned(), CachedSender::default());
                senders.push(event.sender);
            }
        }
        // Each record name is an HMAC: computed once here, kept for the reads and writes after.
        let names: Vec<Vec<u8>> = session_ids
            .iter()
            .map(|id| self.name(table::INBOUND, &[room_id.as_bytes(), id.as_bytes()]))
            .collect();
        txn.prefetch(table::INBOUND, &names).await?;
        for (id, name) in session_ids.into_iter().zip(names) {
            let loaded = self.load_inbound_named(txn, &name).await?;
            let stored_latest = loaded.as_ref().map_or(0, |(_, s)| s.latest_index());
            let cached = CachedSession {
                name,
                loaded,
                stored_latest,
                advanced: false,
            };
            cache.sessions.insert(id.to_owned(), cached);
        }
        let names: Vec<Vec<u8>> = senders
            .iter()
            .map(|user| self.name(table::DEVICES, &[user.as_bytes()]))
            .collect();
        txn.prefetch(table::DEVICES, &names).await?;
        for (user, name) in senders.into_iter().zip(names) {
            if let Some(sender) = cache.senders.get_mut(user) {
                sender.name = name;
            }
        }
        Ok(())
    }

    /// Reads, in one backend round trip, the replay record of every authentic message; gives
    /// each event's replay record name, `None` for those whose signature is not good.
    async fn prefetch_replays(
        &self,
        txn: &mut Txn<'_, B>,
        parsed: &[Result<Parsed<'_>, UnableToDecrypt>],
        authentic: &[bool],
    ) -> Result<Vec<Option<Vec<u8>>>, MachineError> {
        let names: Vec<Option<Vec<u8>>> = parsed
            .iter()
            .zip(authentic)
            .map(|(event, ok)| {
                let event = event.as_ref().ok().filter(|_| *ok)?;
                Some(self.replay_name(event.session_id, event.message.message_index()))
            })
            .collect();
        let wanted: Vec<Vec<u8>> = names.iter().flatten().cloned().collect();
        txn.prefetch(table::REPLAY, &wanted).await?;
        Ok(names)
    }

    fn replay_name(&self, session_id: &str, index: u32) -> Vec<u8> {
        self.name(
            table::REPLAY,
            &[session_id.as_bytes(), &index.to_be_bytes()],
        )
    }

    /// Decrypts one event of a batch; `replay` names its replay record when its signature was
    /// found good in its session's batch (`None`: bad). Records its (session, index) unless
    /// already recorded for this event.
    async fn decrypt_one(
        &self,
        txn: &mut Txn<'_, B>,
        room_id: &str,
        event: Parsed<'_>,
        replay: Option<Vec<u8>>,
        cache: &mut BatchCache,
    ) -> Result<Result<DecryptedRoomEvent, UnableToDecrypt>, MachineError> {
        use UnableToDecrypt as U;
        let Parsed {
            sender,
            event_id,
            timestamp,
            session_id,
            message,
        } = event;
        let Some(CachedSession {
            loaded: Some((meta, session)),
            advanced: already_advanced,
            ..
        }) = cache.sessions.get_mut(session_id)
        else {
            let name = self.name(
                table::WITHHELD,
                &[room_id.as_bytes(), session_id.as_bytes()],
            );
            let withheld: Option<(Withheld, _)> =
                records::load(txn, table::WITHHELD, &name).await?;
            return Ok(Err(match withheld {
                Some((w, _)) => U::Withheld { code: w.code },
                None => U::NoSession {
                    session_id: session_id.to_owned(),
                },
            }));
        };
        let Some(replay) = replay else {
            return Ok(Err(U::BadSignature));
        };
        let latest_before = session.latest_index();
        let decrypted = match session.decrypt_verified(&message) {
            Ok(decrypted) => decrypted,
            Err(MegolmDecryptError::UnknownIndex {
                message,
                first_known,
            }) => {
                return Ok(Err(U::UnknownIndex {
                    index: message,
                    first_known,
                }));
            }
            Err(_) => return Ok(Err(U::BadSignature)),
        };
        let advanced = session.latest_index() > latest_before;
        let Some(mut payload) = json_value::parse(&decrypted.plaintext) else {
            return Ok(Err(U::Malformed("payload")));
        };
        if payload.get("room_id").and_then(Value::as_str) != Some(room_id) {
            return Ok(Err(U::SenderMismatch("the event names another room")));
        }
        if meta
            .sender_user
            .as_deref()
            .is_some_and(|user| user != sender)
        {
            return Ok(Err(U::SenderMismatch(
                "the room key came from another user",
            )));
        }
        let index = decrypted.message_index;
        let seen: Option<(ReplayEntry, _)> = records::load(txn, table::REPLAY, &replay).await?;
        match seen {
            Some((first, _)) if first.event_id != event_id || first.timestamp != timestamp => {
                return Ok(Err(U::Replay {
                    index,
                    first_event_id: first.event_id,
                }));
            }
            Some(_) => {}
            None => {
                let entry = ReplayEntry {
                    event_id: event_id.to_owned(),
                    timestamp,
                };
                records::store(txn, table::REPLAY, &replay, &entry, &[]).await?;
            }
        }
        // Every sender of the batch is named in the cache (load_batch); its devices are read
        // when its first event needs them.
        let mut unnamed = None;
        let known = match cache.senders.get_mut(sender) {
            Some(cached) => {
                if cached.devices.is_none() {
                    cached.devices = Some(self.load_devices_named(txn, &cached.name).await?);
                }
                cached.devices.as_ref()
            }
            None => Some(&*unnamed.insert(self.load_devices(txn, sender).await?)),
        };
        let device = known.and_then(|known| {
            known
                .devices
                .values()
                .find(|d| d.curve25519 == meta.sender_key)
        });
        let verified = !meta.forwarded && device.is_some_and(|d| d.trust == Trust::Verified);
        // Only an accepted event moves the stored session: a refused one changes nothing.
        if advanced && !*already_advanced {
            *already_advanced = true;
            cache.advanced.push(session_id.to_owned());
        }
        Ok(Ok(DecryptedRoomEvent {
            event_type: payload
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            // Taken, not copied: the payload is dropped here.
            content: payload
                .get_mut("content")
                .map(Value::take)
                .unwrap_or(Value::Null),
            sender: sender.to_owned(),
            sender_device: device.map(|d| d.device_id.clone()),
            session_id: session_id.to_owned(),
            message_index: index,
            forwarded: meta.forwarded,
            verified,
        }))
    }
}

/// One room's events of a batch, parsed, with what they need loaded.
pub(super) struct RoomBatch<'e> {
    room_id: &'e str,
    parsed: Vec<Result<Parsed<'e>, UnableToDecrypt>>,
    cache: BatchCache,
}

/// The fields of an encrypted room event the batch needs, checked before any session is read.
struct Parsed<'e> {
    sender: &'e str,
    event_id: &'e str,
    timestamp: u64,
    session_id: &'e str,
    message: MegolmMessage,
}

impl<'e> Parsed<'e> {
    fn from_event(event: &'e Value) -> Result<Self, UnableToDecrypt> {
        Self::from_fields(&EncryptedEventFields::of_event(event))
    }

    fn from_fields(fields: &EncryptedEventFields<'e>) -> Result<Self, UnableToDecrypt> {
        use UnableToDecrypt as U;
        let (Some(sender), Some(event_id)) = (fields.sender, fields.event_id) else {
            return Err(U::Malformed("sender or event_id"));
        };
        if fields.algorithm != Some(MEGOLM_V1) {
            return Err(U::Malformed("algorithm"));
        }
        let (Some(session_id), Some(ciphertext)) = (fields.session_id, fields.ciphertext) else {
            return Err(U::Malformed("session_id or ciphertext"));
        };
        let message =
            MegolmMessage::from_base64(ciphertext).map_err(|_| U::Malformed("ciphertext"))?;
        Ok(Self {
            sender,
            event_id,
            timestamp: fields.origin_server_ts.unwrap_or(0),
            session_id,
            message,
        })
    }
}

/// Whether each event's signature is good, per room batch, all sessions' events of all the
/// rooms verified together in a few cross-key batches (a backlog page holds about one event per
/// session, so per-session batches rarely apply, and each cross-key batch has a fixed cost, so
/// the fewer the better). Events that did not parse or whose session we lack are `false`; they
/// fail for those reasons first.
pub(super) fn verify_by_session(
    batches: &[RoomBatch<'_>],
    verify: &mut SignatureVerifier<'_>,
) -> Vec<Vec<bool>> {
    let total: usize = batches.iter().map(|b| b.parsed.len()).sum();
    let mut indices = Vec::with_capacity(total);
    let mut keyed = Vec::with_capacity(total);
    for (room, batch) in batches.iter().enumerate() {
        for (i, event) in batch.parsed.iter().enumerate() {
            let Ok(event) = event else { continue };
            if let Some(CachedSession {
                loaded: Some((_, session)),
                ..
            }) = batch.cache.sessions.get(event.session_id)
            {
                indices.push((room, i));
                keyed.push((
                    session.signing_key(),
                    &event.message,
                    event.message.signature(),
                ));
            }
        }
    }
    let items: Vec<SignedItem<'_>> = keyed
        .iter()
        .map(|(key, message, signature)| (key, message.signed_bytes(), signature))
        .collect();
    let mut authentic: Vec<Vec<bool>> = batches
        .iter()
        .map(|b| vec![false; b.parsed.len()])
        .collect();
    // A verdict missing from the caller's verifier counts as a bad signature (`false`).
    let verdicts = verify(&items);
    for ((room, i), ok) in indices.into_iter().zip(verdicts) {
        authentic[room][i] = ok;
    }
    authentic
}

fn string_field<'a>(content: &'a Value, name: &str) -> Option<&'a str> {
    content.get(name).and_then(Value::as_str)
}

fn malformed(what: &'static str) -> Failure {
    Failure::Event(super::ToDeviceError::Malformed(what))
}

/// The room and session a room key event names, after checking it is a Megolm key.
fn room_key_ids(content: &Value) -> Result<(&str, &str), Failure> {
    if string_field(content, "algorithm") != Some(MEGOLM_V1) {
        return Err(malformed("room key algorithm"));
    }
    let room_id = string_field(content, "room_id").ok_or(malformed("room_id"))?;
    let session_id = string_field(content, "session_id").ok_or(malformed("session_id"))?;
    Ok((room_id, session_id))
}

/// What a batch of room events has loaded once for all its events: inbound sessions by id,
/// and the senders' devices by user. Two maps of all that is known per key, rather than a map
/// per fact: each hash map type brings 2-3 KB of table code to the `.wasm` package.
#[derive(Default)]
struct BatchCache {
    sessions: ByName<CachedSession>,
    senders: ByName<CachedSender>,
    /// The sessions whose latest ratchet the batch moved forward, to write back, in order.
    advanced: Vec<String>,
}

/// Values by name, in a `Vec` indexed by one hash map type whatever the value type: the batch
/// cache's two maps then share one copy of the hash table code (a `HashMap<String, V>` per
/// value type brought its own insert, lookup and rehash). Hashed with foldhash under a
/// per-process random seed, as [`DecodedKeys`](crate::crypto::DecodedKeys) hashes keys from
/// the network: SipHash was a fiftieth of `olmo matrix decrypt`'s CPU here.
struct ByName<T> {
    index: HashMap<String, usize, foldhash::fast::RandomState>,
    items: Vec<T>,
}

impl<T> Default for ByName<T> {
    fn default() -> Self {
        Self {
            index: HashMap::default(),
            items: Vec::new(),
        }
    }
}

impl<T> ByName<T> {
    fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).and_then(|&i| self.items.get(i))
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.index.get(name).and_then(|&i| self.items.get_mut(i))
    }

    /// Sets the value named `name`, replacing any it had.
    fn insert(&mut self, name: String, value: T) {
        match self.index.get(name.as_str()).copied() {
            Some(i) => {
                if let Some(slot) = self.items.get_mut(i) {
                    *slot = value;
                }
            }
            None => {
                self.index.insert(name, self.items.len());
                self.items.push(value);
            }
        }
    }
}

/// An inbound session a batch names.
#[derive(Default)]
struct CachedSession {
    /// Its record name.
    name: Vec<u8>,
    /// The session, `None` if we do not have it.
    loaded: Option<(InboundMeta, InboundGroupSession)>,
    /// Its latest ratchet index as stored, before the batch moved it.
    stored_latest: u32,
    /// Listed in [`BatchCache::advanced`] (a flag here, not a search of the list at every
    /// event: a batch advances hundreds of sessions, and the search cost about 2% of a
    /// 100k-event dump's decryption).
    advanced: bool,
}

/// A sender a batch names.
#[derive(Default)]
struct CachedSender {
    /// The record name of its devices.
    name: Vec<u8>,
    /// Its devices, once an event needed them.
    devices: Option<UserDevices>,
}

/// A latest ratchet that moved this many steps is written back. Measured (callgrind, one
/// event per decrypt): a ratchet step is an HMAC with its own key, about 14k instructions, and
/// the inbound record's write about 48k (sealing, SQLite, one more WAL page), so writing every
/// 4th advance costs about 1.5 steps per decrypt and saves 3 writes in 4; at 32 the re-advance
/// (15 steps on average) cost more than the writes it saved.
const WRITE_BACK_STEPS: u32 = 4;

/// Whether an inbound session whose latest ratchet moved from `stored` to `latest` is worth
/// writing back. The stored latest ratchet is only a cache: the initial ratchet is always kept
/// and decides everything else (which indices decrypt, comparing and merging copies, exports),
/// so a write-back skipped costs only the re-advance, and replays are caught by the replay
/// record, not the ratchet. Within one 256-index block of the lowest ratchet part, re-advancing
/// fewer than [`WRITE_BACK_STEPS`] steps costs as many HMACs; crossing into another block may
/// cost up to 255 more, so it is always written.
fn worth_writing_back(stored: u32, latest: u32) -> bool {
    latest.saturating_sub(stored) >= WRITE_BACK_STEPS || latest >> 8 != stored >> 8
}

/// Whether every device that has the session's key is still a recipient with the same key.
fn still_recipients(meta: &OutboundMeta, recipients: &[Device]) -> bool {
    meta.shared_with.iter().all(|(user, devices)| {
        devices.iter().all(|(device_id, key)| {
            recipients
                .iter()
                .any(|d| &d.user_id == user && &d.device_id == device_id && &d.curve25519 == key)
        })
    })
}
