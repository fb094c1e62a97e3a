//! Our keys on the server (device keys, one-time and fallback keys), device-list queries, and
//! claiming one-time keys to start Olm sessions: the requests and what their responses change.

use rand_core::CryptoRng;
use serde_json::{Map, Value};

use super::devices::{Device, Tracked, verify_signature};
use super::error::MachineError;
use super::machine::{AccountMeta, Machine};
use super::records::{self, table};
use super::requests::{OutgoingRequest, RequestKind};
use crate::codec::json_value::object;
use crate::crypto::{Curve25519PublicKey, Ed25519PublicKey};
use crate::olm::Account;
use crate::store::transact;
use crate::store::{Backend, KeyRange, Txn};

/// The one-time key algorithm Matrix uses.
const SIGNED_CURVE25519: &str = "signed_curve25519";
/// Users queried in one `/keys/query` request.
const QUERY_BATCH: usize = 250;
/// The largest request record the machine keeps (a to-device batch of room keys).
const MAX_REQUEST_BYTES: usize = 4 << 20;

impl<B: Backend> Machine<B> {
    /// The requests to send now: requests handed out earlier and not yet marked sent, a key
    /// upload when the server holds too few one-time keys (or none of ours yet), and a device
    /// query for tracked users whose lists changed. One commit (new keys and the requests that
    /// carry them are stored together).
    pub async fn outgoing_requests(
        &self,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<OutgoingRequest>, MachineError> {
        transact!(self, rng, |txn| self.plan_outgoing(&mut txn, rng).await)
    }

    async fn plan_outgoing(
        &self,
        txn: &mut Txn<'_, B>,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<OutgoingRequest>, MachineError> {
        let mut pending = self.pending_requests(txn).await?;
        let waiting = |kind: fn(&RequestKind) -> bool, pending: &[OutgoingRequest]| {
            pending.iter().any(|r| kind(&r.kind))
        };
        if !waiting(|k| matches!(k, RequestKind::KeysUpload), &pending)
            && let Some(upload) = self.plan_upload(txn, rng).await?
        {
            pending.push(upload);
        }
        if !waiting(|k| matches!(k, RequestKind::KeysQuery { .. }), &pending)
            && let Some(query) = self.plan_query(txn, rng).await?
        {
            pending.push(query);
        }
        Ok(pending)
    }

    /// Every stored request, oldest id order (ids are random: order is not meaningful).
    async fn pending_requests(
        &self,
        txn: &mut Txn<'_, B>,
    ) -> Result<Vec<OutgoingRequest>, MachineError> {
        let keys = records::keys_of(
            self.backend
                .scan(table::OUTGOING, &KeyRange::all(), usize::MAX)
                .await?,
        );
        let mut requests = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some((request, _)) =
                records::load::<B, OutgoingRequest>(txn, table::OUTGOING, &key).await?
            {
                requests.push(request);
            }
        }
        Ok(requests)
    }

    /// Stores a request until it is marked sent, under its id.
    pub(crate) async fn queue_request(
        &self,
        txn: &mut Txn<'_, B>,
        kind: RequestKind,
        body: Value,
        rng: &mut impl CryptoRng,
    ) -> Result<OutgoingRequest, MachineError> {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let request = OutgoingRequest { id, kind, body };
        let mut json = Vec::new();
        records::Meta::write_json(&request, &mut json);
        if json.len() > MAX_REQUEST_BYTES {
            return Err(MachineError::TooLarge("request"));
        }
        let name = self.name(table::OUTGOING, &[request.id.as_bytes()]);
        records::store(txn, table::OUTGOING, &name, &request, &[]).await?;
        Ok(request)
    }

    async fn plan_upload(
        &self,
        txn: &mut Txn<'_, B>,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<OutgoingRequest>, MachineError> {
        let (mut meta, mut account) = self.load_account(txn).await?;
        let target = account.max_number_of_one_time_keys() / 2;
        let missing = usize::try_from(meta.server_one_time_keys)
            .map_or(0, |count| target.saturating_sub(count));
        if meta.device_keys_published && missing == 0 && !meta.fallback_needed {
            return Ok(None);
        }
        let mut body = Map::new();
        if !meta.device_keys_published {
            body.insert("device_keys".into(), self.device_keys(&account)?);
        }
        if missing > 0 && account.unpublished_one_time_keys().is_empty() {
            account.generate_one_time_keys_with_rng(missing, rng);
        }
        let mut one_time_keys = Map::new();
        for (id, key) in account.unpublished_one_time_keys() {
            let mut signed = object! { "key" => key.to_base64() };
            self.sign_json(&account, &mut signed)?;
            one_time_keys.insert(format!("{SIGNED_CURVE25519}:{}", id.to_base64()), signed);
        }
        if !one_time_keys.is_empty() {
            body.insert("one_time_keys".into(), Value::Object(one_time_keys));
        }
        if meta.fallback_needed && account.unpublished_fallback_key().is_none() {
            account.generate_fallback_key_with_rng(rng);
        }
        if let Some((id, key)) = account.unpublished_fallback_key() {
            let mut signed = object! { "key" => key.to_base64(), "fallback" => true };
            self.sign_json(&account, &mut signed)?;
            let keys = object! { format!("{SIGNED_CURVE25519}:{}", id.to_base64()) => signed };
            body.insert("fallback_keys".into(), keys);
        }
        meta.fallback_needed = false;
        self.store_account(txn, &meta, &account).await?;
        if body.is_empty() {
            return Ok(None);
        }
        let request = self
            .queue_request(txn, RequestKind::KeysUpload, Value::Object(body), rng)
            .await?;
        Ok(Some(request))
    }

    async fn plan_query(
        &self,
        txn: &mut Txn<'_, B>,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<OutgoingRequest>, MachineError> {
        let outdated = records::keys_of(
            self.backend
                .scan(table::OUTDATED, &KeyRange::all(), QUERY_BATCH)
                .await?,
        );
        if outdated.is_empty() {
            return Ok(None);
        }
        let mut generations = Vec::with_capacity(outdated.len());
        let mut users = Map::new();
        for key in outdated {
            if let Some((tracked, _)) =
                records::load::<B, Tracked>(txn, table::OUTDATED, &key).await?
            {
                users.insert(tracked.user_id.clone(), Value::Array(Vec::new()));
                generations.push((tracked.user_id, tracked.generation));
            }
        }
        let body = object! { "device_keys" => users };
        let request = self
            .queue_request(txn, RequestKind::KeysQuery { generations }, body, rng)
            .await?;
        Ok(Some(request))
    }

    /// A `/keys/claim` request for the devices of `users` we have no Olm session with (and the
    /// wedged ones), or `None` if there are none. One commit (the request is stored).
    pub async fn missing_sessions(
        &self,
        users: &[&str],
        rng: &mut impl CryptoRng,
    ) -> Result<Option<OutgoingRequest>, MachineError> {
        transact!(self, rng, |txn| {
            let mut claims = Map::new();
            let mut error = None;
            for user in users {
                match self.unreachable_devices(&mut txn, user).await {
                    Ok(devices) if !devices.is_empty() => {
                        // Inserted, not collected: a collected map brings a stable sort.
                        let mut wanted = Map::new();
                        for device in devices {
                            wanted.insert(device.device_id, Value::from(SIGNED_CURVE25519));
                        }
                        claims.insert((*user).to_owned(), Value::Object(wanted));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            match error {
                Some(e) => Err(e),
                None if claims.is_empty() => Ok(None),
                None => {
                    let body = object! { "one_time_keys" => claims };
                    self.queue_request(&mut txn, RequestKind::KeysClaim, body, rng)
                        .await
                        .map(Some)
                }
            }
        })
    }

    /// The devices of `user` that should get room keys but have no usable Olm session.
    async fn unreachable_devices(
        &self,
        txn: &mut Txn<'_, B>,
        user: &str,
    ) -> Result<Vec<Device>, MachineError> {
        let devices = self.load_devices(txn, user).await?;
        let mut missing = Vec::new();
        for device in devices.devices.into_values() {
            if !device.receives_room_keys()
                || (device.user_id == self.user_id && device.device_id == self.device_id)
            {
                continue;
            }
            let wedged = self.name(table::WEDGED, &[device.curve25519.as_bytes()]);
            if !self.has_session(txn, &device.curve25519).await?
                || txn.get(table::WEDGED, &wedged).await?.is_some()
            {
                missing.push(device);
            }
        }
        Ok(missing)
    }

    /// Hands the machine the server's response to a request it gave out; one commit.
    pub async fn mark_request_as_sent(
        &self,
        request_id: &str,
        response: &Value,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        transact!(self, rng, |txn| {
            self.receive_response(&mut txn, request_id, response, rng)
                .await
        })
    }

    async fn receive_response(
        &self,
        txn: &mut Txn<'_, B>,
        request_id: &str,
        response: &Value,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        let name = self.name(table::OUTGOING, &[request_id.as_bytes()]);
        let (request, _): (OutgoingRequest, _) = records::load(txn, table::OUTGOING, &name)
            .await?
            .ok_or(MachineError::UnknownRequest)?;
        match &request.kind {
            RequestKind::KeysUpload => self.receive_upload(txn, response).await?,
            RequestKind::KeysQuery { generations } => {
                self.receive_keys_query(txn, generations, response).await?;
            }
            RequestKind::KeysClaim => self.receive_claim(txn, response, rng).await?,
            RequestKind::ToDevice { .. } => {}
        }
        Ok(records::remove(txn, table::OUTGOING, &name).await?)
    }

    async fn receive_upload(
        &self,
        txn: &mut Txn<'_, B>,
        response: &Value,
    ) -> Result<(), MachineError> {
        let count = response
            .get("one_time_key_counts")
            .and_then(|c| c.get(SIGNED_CURVE25519))
            .map_or(Some(0), Value::as_u64)
            .ok_or(MachineError::Json("one_time_key_counts"))?;
        let (mut meta, mut account) = self.load_account(txn).await?;
        account.mark_keys_as_published();
        meta.device_keys_published = true;
        meta.server_one_time_keys = count;
        self.store_account(txn, &meta, &account).await
    }

    /// Updates what the server reported in a sync about our keys.
    pub(crate) async fn receive_key_counts(
        &self,
        txn: &mut Txn<'_, B>,
        one_time_key_count: Option<u64>,
        unused_fallback_key_types: Option<&[String]>,
    ) -> Result<(), MachineError> {
        if one_time_key_count.is_none() && unused_fallback_key_types.is_none() {
            return Ok(());
        }
        let (mut meta, account): (AccountMeta, Account) = self.load_account(txn).await?;
        let before = (meta.server_one_time_keys, meta.fallback_needed);
        if let Some(count) = one_time_key_count {
            meta.server_one_time_keys = count;
        }
        if let Some(types) = unused_fallback_key_types {
            meta.fallback_needed = !types.iter().any(|t| t == SIGNED_CURVE25519);
        }
        if (meta.server_one_time_keys, meta.fallback_needed) == before {
            return Ok(()); // nothing changed: write nothing
        }
        self.store_account(txn, &meta, &account).await
    }

    async fn receive_claim(
        &self,
        txn: &mut Txn<'_, B>,
        response: &Value,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        let Some(users) = response.get("one_time_keys").and_then(Value::as_object) else {
            return Err(MachineError::Json("one_time_keys"));
        };
        let (_, account) = self.load_account(txn).await?;
        for (user_id, devices) in users {
            let Some(devices) = devices.as_object() else {
                continue;
            };
            let known = self.load_devices(txn, user_id).await?;
            for (device_id, keys) in devices {
                let Some(device) = known.devices.get(device_id) else {
                    continue; // a key for a device we never queried: not ours to trust
                };
                let Some(one_time_key) = checked_one_time_key(device, keys) else {
                    continue; // forged or malformed: no session from it
                };
                let identity = Curve25519PublicKey::from_base64(&device.curve25519)
                    .map_err(|_| MachineError::Corrupt("device"))?;
                let Ok(session) =
                    account.create_outbound_session_with_rng(identity, one_time_key, rng)
                else {
                    continue;
                };
                let mut sessions = self.load_sessions(txn, &device.curve25519).await?;
                sessions.add(session);
                self.store_sessions(txn, &sessions).await?;
                let wedged = self.name(table::WEDGED, &[device.curve25519.as_bytes()]);
                if txn.get(table::WEDGED, &wedged).await?.is_some() {
                    records::remove(txn, table::WEDGED, &wedged).await?;
                    self.queue_dummy(txn, &account, device, rng).await?;
                }
            }
        }
        Ok(())
    }

    /// Queues an `m.dummy` on the newest session with `device`, so it replaces the wedged one.
    async fn queue_dummy(
        &self,
        txn: &mut Txn<'_, B>,
        account: &Account,
        device: &Device,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        let Some(content) = self
            .encrypt_to_device(txn, account, device, "m.dummy", object! {}, rng)
            .await?
        else {
            return Ok(());
        };
        let body = object! {
            "messages" => object! {
                device.user_id.as_str() => object! { device.device_id.as_str() => content },
            },
        };
        let kind = RequestKind::ToDevice {
            event_type: "m.room.encrypted".into(),
        };
        self.queue_request(txn, kind, body, rng).await?;
        Ok(())
    }
}

/// The one-time key of a claim response entry (`{"signed_curve25519:ID": {key, signatures}}`),
/// if it is signed by the device it was claimed for.
fn checked_one_time_key(device: &Device, keys: &Value) -> Option<Curve25519PublicKey> {
    let (id, signed) = keys.as_object()?.iter().next()?;
    if !id.starts_with("signed_curve25519:") {
        return None;
    }
    let signing_key = Ed25519PublicKey::from_base64(&device.ed25519).ok()?;
    let key_id = format!("ed25519:{}", device.device_id);
    verify_signature(signed, &device.user_id, &key_id, &signing_key).ok()?;
    Curve25519PublicKey::from_base64(signed.get("key")?.as_str()?).ok()
}
