//! Room keys to and from key export files (Element's and nio's format): an import is one
//! commit however many keys it holds, and keeps a better copy of a session already stored.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::error::MachineError;
use super::machine::{MEGOLM_V1, Machine};
use super::records::{self, table};
use super::room::InboundMeta;
use crate::crypto::DecodedKeys;
use crate::megolm::{
    ExportedRoomKey, InboundGroupSession, decrypt_key_export, encrypt_key_export_with_rng,
};
use crate::store::transact;
use crate::store::{Backend, KeyRange, Txn};

/// Keys an import may hold.
const MAX_IMPORT: usize = 1_000_000;
/// Records read per page when exporting.
const EXPORT_PAGE: usize = 1_000;
/// Stored sessions an import reads per backend round trip.
const PREFETCH: usize = 1_000;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportResult {
    /// Sessions stored (new, or better than the copy we had).
    pub imported: usize,
    /// Sessions left out: already held as well or better, or malformed.
    pub skipped: usize,
    /// Sessions in the file.
    pub total: usize,
}

impl<B: Backend> Machine<B> {
    /// Imports the room keys of an export file, in one commit. `progress(done, total)` is
    /// called as keys are processed. Imported keys are marked forwarded: who made them is only
    /// what the file claims.
    pub async fn import_room_keys(
        &self,
        file: &str,
        passphrase: &str,
        progress: &mut dyn FnMut(usize, usize),
        rng: &mut impl CryptoRng,
    ) -> Result<ImportResult, MachineError> {
        let keys =
            decrypt_key_export(file, passphrase).map_err(|_| MachineError::Json("key export"))?;
        if keys.len() > MAX_IMPORT {
            return Err(MachineError::TooLarge("key export"));
        }
        transact!(self, rng, |txn| {
            self.plan_import(&mut txn, &keys, progress).await
        })
    }

    async fn plan_import(
        &self,
        txn: &mut Txn<'_, B>,
        keys: &[ExportedRoomKey],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportResult, MachineError> {
        let mut result = ImportResult {
            total: keys.len(),
            ..ImportResult::default()
        };
        // Each session's signing key was decompressed reading the file: remembered, so the
        // first decrypt that loads the session does not decompress it again.
        let mut decoded = Vec::with_capacity(keys.len().min(DecodedKeys::CAPACITY));
        for (done, key) in keys.iter().enumerate() {
            if done % PREFETCH == 0 {
                self.prefetch_inbound(txn, &keys[done..keys.len().min(done + PREFETCH)])
                    .await?;
            }
            if key.algorithm != MEGOLM_V1 || !key.session_id_matches() {
                result.skipped += 1;
                continue;
            }
            let session = InboundGroupSession::import(&key.session_key);
            if decoded.len() < DecodedKeys::CAPACITY {
                decoded.push(key.session_key.signing_key());
            }
            let meta = InboundMeta {
                room_id: key.room_id.clone(),
                session_id: key.session_id.clone(),
                sender_key: key.sender_key.clone(),
                sender_claimed_ed25519: key
                    .sender_claimed_keys
                    .get("ed25519")
                    .cloned()
                    .unwrap_or_default(),
                sender_user: None,
                forwarded: true,
            };
            if self.store_inbound(txn, &meta, &session).await? {
                result.imported += 1;
            } else {
                result.skipped += 1;
            }
            if done % 100 == 99 || done + 1 == keys.len() {
                progress(done + 1, keys.len());
            }
        }
        // A poisoned lock only loses keys remembered: start again without them.
        let mut remembered = self
            .decoded_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for key in decoded {
            remembered.remember(key);
        }
        Ok(result)
    }

    /// Reads the stored copies of `keys`' sessions in one backend round trip, so the import
    /// does not wait on one read per key (a network database's latency times 10,000).
    async fn prefetch_inbound(
        &self,
        txn: &mut Txn<'_, B>,
        keys: &[ExportedRoomKey],
    ) -> Result<(), MachineError> {
        let names: Vec<Vec<u8>> = keys
            .iter()
            .map(|key| {
                self.name(
                    table::INBOUND,
                    &[key.room_id.as_bytes(), key.session_id.as_bytes()],
                )
            })
            .collect();
        Ok(txn.prefetch(table::INBOUND, &names).await?)
    }

    /// Exports the room keys we hold (of one room, or all) as a key export file under
    /// `passphrase`, each from the first index we know.
    pub async fn export_room_keys(
        &self,
        room_id: Option<&str>,
        passphrase: &str,
        rounds: u32,
        rng: &mut impl CryptoRng,
    ) -> Result<String, MachineError> {
        let mut keys = Vec::new();
        let mut range = KeyRange::all();
        loop {
            let page = self
                .backend
                .scan(table::INBOUND, &range, EXPORT_PAGE)
                .await?;
            let page = records::keys_of(page);
            let Some(last) = page.last() else { break };
            range = range.after(last);
            let mut txn = Txn::new(&self.backend, &self.sealer);
            for name in page {
                let Some((meta, blobs)) =
                    records::load::<B, InboundMeta>(&mut txn, table::INBOUND, &name).await?
                else {
                    continue;
                };
                if room_id.is_some_and(|room| room != meta.room_id) {
                    continue;
                }
                let blob = blobs
                    .first()
                    .ok_or(MachineError::Corrupt("inbound session"))?;
                let session = InboundGroupSession::from_record(blob)
                    .map_err(|_| MachineError::Corrupt("inbound session"))?;
                let mut key = ExportedRoomKey::new(
                    meta.room_id,
                    meta.sender_key,
                    session.export_at_first_known_index(),
                );
                if !meta.sender_claimed_ed25519.is_empty() {
                    // An insert, not `BTreeMap::from`: its sort-and-bulk-build code for this
                    // map type (2 KB in the `.wasm` package) would serve this one entry.
                    key.sender_claimed_keys
                        .insert("ed25519".to_owned(), meta.sender_claimed_ed25519);
                }
                keys.push(key);
            }
        }
        Ok(encrypt_key_export_with_rng(&keys, passphrase, rounds, rng))
    }
}

/// What a store holds of rooms' keys, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomKeyStats {
    /// Inbound Megolm sessions, by room id.
    pub sessions_by_room: BTreeMap<String, usize>,
    /// Entries of the replay record: (session, index) pairs decrypted.
    pub replay_records: usize,
    /// Sessions whose key the sender withheld.
    pub withheld: usize,
}

impl<B: Backend> Machine<B> {
    /// Counts the room keys the store holds by room, and the replay record's entries (a page
    /// at a time: the store is never read whole into memory).
    pub async fn room_key_stats(&self) -> Result<RoomKeyStats, MachineError> {
        let mut stats = RoomKeyStats {
            replay_records: self.count_records(table::REPLAY).await?,
            withheld: self.count_records(table::WITHHELD).await?,
            ..RoomKeyStats::default()
        };
        let mut range = KeyRange::all();
        loop {
            let page = self
                .backend
                .scan(table::INBOUND, &range, EXPORT_PAGE)
                .await?;
            let page = records::keys_of(page);
            let Some(last) = page.last() else { break };
            range = range.after(last);
            let mut txn = Txn::new(&self.backend, &self.sealer);
            for name in page {
                if let Some((meta, _)) =
                    records::load::<B, InboundMeta>(&mut txn, table::INBOUND, &name).await?
                {
                    *stats.sessions_by_room.entry(meta.room_id).or_default() += 1;
                }
            }
        }
        Ok(stats)
    }

    async fn count_records(&self, table: &str) -> Result<usize, MachineError> {
        let mut count = 0;
        let mut range = KeyRange::all();
        loop {
            let page = records::keys_of(self.backend.scan(table, &range, EXPORT_PAGE).await?);
            let Some(last) = page.last() else { break };
            range = range.after(last);
            count += page.len();
        }
        Ok(count)
    }
}
