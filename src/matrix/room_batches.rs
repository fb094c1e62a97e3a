//! Room events of several rooms decrypted in one commit (a bot's backlog, a dump of many rooms).
//!
//! Each room's events are parsed and their sessions loaded as in a one-room batch, but every
//! signature of every room is verified in the same cross-key batches: a batch has a fixed
//! cost (the torsion tests), so ten rooms of 1,000 events verify faster together than apart.
//! Each event is then decrypted in its own room, against the sessions stored for that room,
//! and the whole call is one commit: all of it is recorded, or none.

use rand_core::CryptoRng;
use serde_json::Value;

use super::error::{MachineError, UnableToDecrypt};
use super::machine::{AppRecord, Machine};
use super::room::{DecryptedRoomEvent, MAX_BATCH, verify_by_session};
use crate::crypto::{Ed25519PublicKey, SignedItem};
use crate::store::transact;
use crate::store::{Backend, CommitDurability, Txn};

/// The outcome of each event of one room, in the order given.
pub type RoomResults = Vec<Result<DecryptedRoomEvent, UnableToDecrypt>>;

impl<B: Backend> Machine<B> {
    /// Decrypts room events of several rooms, `(room id, its events)`, in one commit: one
    /// [`RoomResults`] per room, in the order given. Each event is decrypted as
    /// [`Machine::decrypt_room_events`] would in its room (an event of another room's session
    /// fails as that call's would), with the replay record shared by all. At most 10,000
    /// events in all. Durability as [`Machine::decrypt_room_event`].
    pub async fn decrypt_room_events_of_rooms(
        &self,
        rooms: &[(&str, &[Value])],
        app: &[AppRecord],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<RoomResults>, UnableToDecrypt> {
        let mut own = |items: &[SignedItem<'_>]| self.verify_signatures(items);
        self.decrypt_rooms_in_one_commit(rooms, RoomEvents::Json, app, &mut own, rng)
            .await
    }

    /// [`Machine::decrypt_room_events_of_rooms`] for events the caller parsed itself: each
    /// event given by the fields decryption reads ([`EncryptedEventFields`]), borrowed from
    /// wherever they are, so a caller reading a large dump need not build a JSON value per
    /// event. The results are those the events' JSON would give.
    pub async fn decrypt_room_event_fields_of_rooms(
        &self,
        rooms: &[(&str, &[EncryptedEventFields<'_>])],
        app: &[AppRecord],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<RoomResults>, UnableToDecrypt> {
        let mut own = |items: &[SignedItem<'_>]| self.verify_signatures(items);
        self.decrypt_rooms_in_one_commit(rooms, RoomEvents::Fields, app, &mut own, rng)
            .await
    }

    /// [`Machine::decrypt_room_event_fields_of_rooms`] with the batch's signatures verified by
    /// `verify` (called once per attempt, inside the commit, with every signature of every
    /// room's events whose session is known): for a caller that spreads the verification
    /// over threads, which the machine itself never starts. The machine takes its verdicts
    /// as they are, so it must give [`SignatureVerifier`]'s answers; everything else (the
    /// decryption, the one commit, the results) is as without it.
    pub async fn decrypt_room_event_fields_of_rooms_verified_by(
        &self,
        rooms: &[(&str, &[EncryptedEventFields<'_>])],
        app: &[AppRecord],
        verify: &mut SignatureVerifier<'_>,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<RoomResults>, UnableToDecrypt> {
        self.decrypt_rooms_in_one_commit(rooms, RoomEvents::Fields, app, verify, rng)
            .await
    }

    /// The three entry points' common path: the size check, each room's events wrapped by
    /// `wrap`, then one commit with the signatures verified by `verify`.
    async fn decrypt_rooms_in_one_commit<'e, E>(
        &self,
        rooms: &[(&str, &'e [E])],
        wrap: fn(&'e [E]) -> RoomEvents<'e>,
        app: &[AppRecord],
        verify: &mut SignatureVerifier<'_>,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<RoomResults>, UnableToDecrypt> {
        let total: usize = rooms.iter().map(|(_, events)| events.len()).sum();
        if total > MAX_BATCH {
            return Err(UnableToDecrypt::Malformed("batch too large"));
        }
        let rooms: Vec<(&str, RoomEvents<'_>)> = rooms
            .iter()
            .map(|(room, events)| (*room, wrap(events)))
            .collect();
        let outcome: Result<_, MachineError> = transact!(self, rng, |txn| {
            self.plan_decrypt_rooms_verified_by(&mut txn, &rooms, app, &mut *verify)
                .await
        });
        outcome.map_err(UnableToDecrypt::Machine)
    }

    /// The machine's own verifier: one thread, the keys it proved torsion-free remembered
    /// across calls.
    fn verify_signatures(&self, items: &[SignedItem<'_>]) -> Vec<bool> {
        // A poisoned lock only loses keys remembered as proven: start again without them.
        let mut proven = self
            .torsion_free_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ed25519PublicKey::verify_many_with_rng(items, &mut proven, &mut rand::rng())
    }

    /// Loads every room's batch, verifies all their signatures together, then decrypts room
    /// by room (a room named twice is two batches: the second sees the first's records).
    pub(super) async fn plan_decrypt_rooms(
        &self,
        txn: &mut Txn<'_, B>,
        rooms: &[(&str, RoomEvents<'_>)],
        app: &[AppRecord],
    ) -> Result<Vec<RoomResults>, MachineError> {
        let mut own = |items: &[SignedItem<'_>]| self.verify_signatures(items);
        self.plan_decrypt_rooms_verified_by(txn, rooms, app, &mut own)
            .await
    }

    /// [`Machine::plan_decrypt_rooms`] with the signatures verified by `verify`.
    async fn plan_decrypt_rooms_verified_by(
        &self,
        txn: &mut Txn<'_, B>,
        rooms: &[(&str, RoomEvents<'_>)],
        app: &[AppRecord],
        verify: &mut SignatureVerifier<'_>,
    ) -> Result<Vec<RoomResults>, MachineError> {
        let mut batches = Vec::with_capacity(rooms.len());
        for (room_id, events) in rooms {
            batches.push(self.load_room_batch(txn, room_id, *events).await?);
        }
        let authentic = verify_by_session(&batches, verify);
        let mut results = Vec::with_capacity(batches.len());
        for (batch, authentic) in batches.into_iter().zip(authentic) {
            results.push(self.finish_room_batch(txn, batch, &authentic).await?);
        }
        self.write_app_records(txn, app).await?;
        // Replay entries and ratchet advances alone are harmless to lose in a power loss: the
        // events are recorded again at their next decrypt, without alarm, and no key is lost.
        // The application's records may not be, so with them the commit stays durable.
        if app.is_empty() {
            txn.set_durability(CommitDurability::LossTolerant);
        }
        Ok(results)
    }
}

/// The fields of an encrypted room event that decryption reads, as
/// [`EncryptedEventFields::of_event`] takes them from the event's JSON: `None` where the
/// event has no such field or it is not a string (not an unsigned integer for the timestamp).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncryptedEventFields<'a> {
    /// `sender`.
    pub sender: Option<&'a str>,
    /// `event_id`.
    pub event_id: Option<&'a str>,
    /// `origin_server_ts`.
    pub origin_server_ts: Option<u64>,
    /// `content.algorithm`.
    pub algorithm: Option<&'a str>,
    /// `content.session_id`.
    pub session_id: Option<&'a str>,
    /// `content.ciphertext`.
    pub ciphertext: Option<&'a str>,
}

impl<'a> EncryptedEventFields<'a> {
    /// The fields of an event's JSON.
    pub fn of_event(event: &'a Value) -> Self {
        let field = |name| event.get(name).and_then(Value::as_str);
        let content = event.get("content");
        let content_field = |name| content.and_then(|c| c.get(name)).and_then(Value::as_str);
        Self {
            sender: field("sender"),
            event_id: field("event_id"),
            origin_server_ts: event.get("origin_server_ts").and_then(Value::as_u64),
            algorithm: content_field("algorithm"),
            session_id: content_field("session_id"),
            ciphertext: content_field("ciphertext"),
        }
    }
}

/// A verifier of a batch's signatures: one verdict per `(key, message, signature)`, in order,
/// each what [`Ed25519PublicKey::verify`] says of it (as
/// [`Ed25519PublicKey::verify_many_with_rng`] gives them, for the whole slice or for parts of
/// it). A verdict missing from the end counts as a bad signature.
pub type SignatureVerifier<'v> = dyn FnMut(&[SignedItem<'_>]) -> Vec<bool> + 'v;

/// One room's events as the caller gave them.
#[derive(Clone, Copy)]
pub(super) enum RoomEvents<'e> {
    /// As JSON.
    Json(&'e [Value]),
    /// Parsed by the caller.
    Fields(&'e [EncryptedEventFields<'e>]),
}
