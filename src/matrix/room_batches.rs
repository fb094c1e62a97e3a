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
        let total: usize = rooms.iter().map(|(_, events)| events.len()).sum();
        if total > MAX_BATCH {
            return Err(UnableToDecrypt::Malformed("batch too large"));
        }
        let outcome: Result<_, MachineError> = transact!(self, rng, |txn| {
            self.plan_decrypt_rooms(&mut txn, rooms, app).await
        });
        outcome.map_err(UnableToDecrypt::Machine)
    }

    /// Loads every room's batch, verifies all their signatures together, then decrypts room
    /// by room (a room named twice is two batches: the second sees the first's records).
    pub(super) async fn plan_decrypt_rooms(
        &self,
        txn: &mut Txn<'_, B>,
        rooms: &[(&str, &[Value])],
        app: &[AppRecord],
    ) -> Result<Vec<RoomResults>, MachineError> {
        let mut batches = Vec::with_capacity(rooms.len());
        for (room_id, events) in rooms {
            batches.push(self.load_room_batch(txn, room_id, events).await?);
        }
        let authentic = verify_by_session(&batches, &self.torsion_free_keys);
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
