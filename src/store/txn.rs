//! One operation's view of the store: reads go through to the backend once, are opened and
//! remembered with their versions; writes stay pending, and reads see them first.
//! [`Txn::commit`] seals the pending writes into one [`Batch`], each write expecting the version
//! its record was read at, so a commit made by someone else in between is a
//! [`StoreError::Conflict`], never an overwrite.

use std::collections::HashMap;

use rand_core::CryptoRng;
use zeroize::{Zeroize as _, Zeroizing};

use super::backend::{
    Backend, Batch, CommitDurability, Expect, MaybeSend, Record, StoreError, Write,
};
use super::known::{Known, KnownRecord};
use super::seal::Sealer;

/// A record's contents: its schema and plaintext.
pub type Opened = (u16, Zeroizing<Vec<u8>>);

/// A table of this transaction: its place in [`Txn::tables`].
type TableId = usize;

/// Records by key. The keys are record names, which the machines make as keyed hashes
/// ([`Sealer::name`]) that nobody without the storage key can choose, so a randomly seeded
/// folded-multiply hash is enough (SipHash cost ~280 instructions per lookup, and an XMPP
/// encrypt makes some 300).
type ByKey<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

/// What the transaction knows of one table's records, by key. Looked up with borrowed keys,
/// so a read or write of a record already known allocates nothing (a batch of room events
/// makes tens of thousands of lookups in one transaction).
struct Table {
    /// What each record was when first read (`None`: absent).
    read: ByKey<Option<Record>>,
    /// The pending contents of each written record (`None`: deleted).
    written: ByKey<Option<Opened>>,
    /// Whether the records read are wiped when the table drops: those of an ephemeral
    /// backend, which are plaintext ([`Backend::is_ephemeral`]). Any other backend's are
    /// sealed, ciphertext the backend itself holds: wiping them was a pass over every record
    /// read, at every operation, for nothing.
    wipe: bool,
    /// The table's place among the [`Known`] records' tables, if they have it (found once
    /// per transaction, not per read).
    known: Option<usize>,
}

impl Table {
    fn new(wipe: bool, known: Option<usize>) -> Self {
        Self {
            read: ByKey::default(),
            written: ByKey::default(),
            wipe,
            known,
        }
    }
}

/// On the table, not the transaction, so that a transaction's borrows end at its last use.
impl Drop for Table {
    fn drop(&mut self) {
        if self.wipe {
            for record in self.read.values_mut().flatten() {
                record.value.zeroize();
            }
        }
    }
}

/// Pending changes over a backend. Dropping it without [`Txn::commit`] writes nothing.
pub struct Txn<'a, B: Backend> {
    backend: &'a B,
    sealer: &'a Sealer,
    /// The tables touched, by name (an operation touches a handful: a linear search is the
    /// fastest lookup, and a name is allocated once per transaction).
    tables: Vec<(String, Table)>,
    /// What each write replaced, oldest first, since the first [`Txn::savepoint`]: a write
    /// made before any savepoint is never rolled back, so it records nothing (two key copies
    /// fewer per write of an operation that takes none).
    undo: Vec<Undo>,
    /// Whether a savepoint has been taken, so writes record what they replace.
    saving: bool,
    /// What the commit must survive.
    durability: CommitDurability,
    /// Records known to be the store's at the backend's generation when the transaction began
    /// ([`Txn::knowing`]): read from here, not from the backend, unless read already.
    known: Option<Known>,
}

/// What a transaction learned of the store: each record it read or wrote, as its commit
/// leaves it, for [`Known`].
type Learned = Vec<(String, Vec<u8>, Option<KnownRecord>)>;

/// Records what a commit leaves of (table, key) among the records known: replaced where it
/// is when the table at `index` knows it (no key or table name copied), else added to
/// `learned`, for after the commit. Done before the commit: should it fail, or another fall
/// between, the records known are dropped all the same.
fn learn(
    known: &mut Option<Known>,
    index: Option<usize>,
    learned: &mut Learned,
    table: &str,
    key: &[u8],
    record: Option<KnownRecord>,
) {
    let record = match (known.as_mut(), index) {
        (Some(known), Some(index)) => match known.replace_in(index, key, record) {
            Ok(()) => return,
            Err(record) => record,
        },
        _ => record,
    };
    learned.push((table.to_owned(), key.to_vec(), record));
}

/// A point in a [`Txn`] to [`Txn::roll_back`] to, taken by [`Txn::savepoint`].
#[derive(Debug)]
pub struct Savepoint(usize);

/// What a write replaced, so [`Txn::roll_back`] can restore it.
enum Undo {
    /// The record's pending contents before the write (`None`: no pending write).
    Written(TableId, Vec<u8>, Option<Option<Opened>>),
    /// [`Txn::insert`] assumed the record absent without reading it.
    AssumedAbsent(TableId, Vec<u8>),
}

impl<'a, B: Backend> Txn<'a, B> {
    /// A transaction reading from `backend`, opening and sealing with `sealer`.
    pub fn new(backend: &'a B, sealer: &'a Sealer) -> Self {
        Self {
            backend,
            sealer,
            tables: Vec::new(),
            undo: Vec::new(),
            saving: false,
            durability: CommitDurability::Durable,
            known: None,
        }
    }

    /// This transaction, reading the records `known` holds from there instead of the backend
    /// (`None`: from the backend, as [`Txn::new`]). Commit with [`Txn::commit_known`].
    pub fn knowing(mut self, known: Option<Known>) -> Self {
        self.known = known;
        self
    }

    /// The record of (table, key) as known, when this transaction has not read it itself.
    fn known(&self, id: TableId, key: &[u8]) -> Option<&Option<KnownRecord>> {
        let records = &self.tables[id].1;
        let index = records.known?;
        // Empty while every record comes from those known: no key hashed for nothing.
        if !records.read.is_empty() && records.read.contains_key(key) {
            return None;
        }
        self.known.as_ref()?.get_in(index, key)
    }

    /// Whether the record was read in this transaction, or is known.
    fn seen(&self, id: TableId, key: &[u8]) -> bool {
        self.known(id, key).is_some() || self.tables[id].1.read.contains_key(key)
    }

    /// Declares what the commit must survive ([`CommitDurability::Durable`] unless set): an
    /// operation marks its transaction [`CommitDurability::LossTolerant`] only when every write
    /// in it is harmless to lose in a power loss (see [`CommitDurability`] for the rule).
    pub fn set_durability(&mut self, durability: CommitDurability) {
        self.durability = durability;
    }

    /// The id of `table`, adding it when first touched.
    fn table_id(&mut self, table: &str) -> TableId {
        match self.tables.iter().position(|(name, _)| name == table) {
            Some(id) => id,
            None => {
                let wipe = self.backend.is_ephemeral();
                let known = self.known.as_ref().and_then(|known| known.table(table));
                self.tables
                    .push((table.to_owned(), Table::new(wipe, known)));
                self.tables.len() - 1
            }
        }
    }

    /// Reads the record from the backend unless this transaction already has; `Ok(())` once
    /// `self.tables[id].read` holds it.
    async fn ensure_read(&mut self, id: TableId, key: &[u8]) -> Result<(), StoreError> {
        if !self.tables[id].1.read.contains_key(key) {
            let record = self.backend.get(&self.tables[id].0, key).await?;
            self.tables[id].1.read.insert(key.to_vec(), record);
        }
        Ok(())
    }

    /// The record's current contents in this transaction: a pending write, or what the backend
    /// held when it was first read, opened. A record that does not open is
    /// [`StoreError::Corrupt`].
    pub async fn get(&mut self, table: &str, key: &[u8]) -> Result<Option<Opened>, StoreError> {
        let id = self.table_id(table);
        if let Some(value) = self.tables[id].1.written.get(key) {
            return Ok(value.clone());
        }
        if let Some(known) = self.known(id, key) {
            return Ok(known
                .as_ref()
                .map(|record| (record.schema, record.plaintext.clone())));
        }
        self.ensure_read(id, key).await?;
        match self.tables[id].1.read.get(key).and_then(Option::as_ref) {
            Some(record) => self
                .sealer
                .open(table, key, record.version, &record.value)
                .map(Some),
            None => Ok(None),
        }
    }

    /// As [`Txn::get`], giving what `read` takes from the record's schema and plaintext
    /// instead of a copy of them: for a caller that only compares the record with one it
    /// holds (a record read again unchanged is then not copied).
    pub async fn get_with<R>(
        &mut self,
        table: &str,
        key: &[u8],
        read: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<Option<R>, StoreError> {
        let id = self.table_id(table);
        if let Some(value) = self.tables[id].1.written.get(key) {
            return Ok(value
                .as_ref()
                .map(|(schema, plaintext)| read(*schema, plaintext)));
        }
        if let Some(known) = self.known(id, key) {
            return Ok(known
                .as_ref()
                .map(|record| read(record.schema, &record.plaintext)));
        }
        self.ensure_read(id, key).await?;
        match self.tables[id].1.read.get(key).and_then(Option::as_ref) {
            Some(record) => self
                .sealer
                .open_with(table, key, record.version, &record.value, read)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Reads the records of `keys` of one table that this transaction has not read yet, in one
    /// backend round trip ([`Backend::get_many`]), so the [`Txn::get`]s that follow are served
    /// from memory. Reads nothing it already knows; opens nothing until asked.
    pub async fn prefetch<K: AsRef<[u8]>>(
        &mut self,
        table: &str,
        keys: &[K],
    ) -> Result<(), StoreError> {
        let id = self.table_id(table);
        if keys.iter().all(|key| self.seen(id, key.as_ref())) {
            return Ok(());
        }
        let missing: Vec<Vec<u8>> = keys
            .iter()
            .map(AsRef::as_ref)
            .filter(|key| !self.seen(id, key))
            .map(<[u8]>::to_vec)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let records = self.backend.get_many(table, &missing).await?;
        let read = &mut self.tables[id].1.read;
        read.reserve(missing.len());
        for (key, record) in missing.into_iter().zip(records) {
            read.entry(key).or_insert(record);
        }
        Ok(())
    }

    /// The version the record had when this transaction first read it, reading it now if it
    /// has not been; the version a pending put will have is one more.
    pub async fn version(&mut self, table: &str, key: &[u8]) -> Result<Option<u64>, StoreError> {
        let id = self.table_id(table);
        if let Some(known) = self.known(id, key) {
            return Ok(known.as_ref().map(|record| record.version));
        }
        self.ensure_read(id, key).await?;
        Ok(self.tables[id]
            .1
            .read
            .get(key)
            .and_then(|r| r.as_ref())
            .map(|r| r.version))
    }

    /// Sets the record's value, to be written at commit. The record must have been read in
    /// this transaction ([`Txn::get`] or [`Txn::version`]), or be one this transaction knows
    /// to be new ([`Txn::insert`]).
    pub fn put(
        &mut self,
        table: &str,
        key: &[u8],
        schema: u16,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let id = self.table_id(table);
        if !self.seen(id, key) {
            return Err(StoreError::InvalidBatch("a write without a read"));
        }
        self.write(id, key, Some((schema, plaintext)));
        Ok(())
    }

    /// As [`Txn::put`], reading the record first (its version, for the write to expect) if
    /// this transaction has not: one table and one record lookup, where [`Txn::version`] then
    /// [`Txn::put`] make two of each (an XMPP encrypt writes a slot per recipient device).
    pub async fn put_read(
        &mut self,
        table: &str,
        key: &[u8],
        schema: u16,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let id = self.table_id(table);
        if !self.seen(id, key) {
            self.ensure_read(id, key).await?;
        }
        self.write(id, key, Some((schema, plaintext)));
        Ok(())
    }

    /// Writes a record that must not exist yet (a new session, a replay entry): the commit
    /// conflicts if it does.
    pub fn insert(&mut self, table: &str, key: &[u8], schema: u16, plaintext: Zeroizing<Vec<u8>>) {
        let id = self.table_id(table);
        let read = &mut self.tables[id].1.read;
        if !read.contains_key(key) {
            read.insert(key.to_vec(), None);
            if self.saving {
                self.undo.push(Undo::AssumedAbsent(id, key.to_vec()));
            }
        }
        self.write(id, key, Some((schema, plaintext)));
    }

    /// Deletes the record at commit (read first, as for [`Txn::put`]).
    pub fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), StoreError> {
        let id = self.table_id(table);
        if !self.seen(id, key) {
            return Err(StoreError::InvalidBatch("a write without a read"));
        }
        self.write(id, key, None);
        Ok(())
    }

    /// The transaction as it is now, to [`Txn::roll_back`] to if a later step fails.
    pub fn savepoint(&mut self) -> Savepoint {
        self.saving = true;
        Savepoint(self.undo.len())
    }

    /// Forgets every write made since `savepoint` was taken (the reads stay known).
    pub fn roll_back(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.0 {
            match self.undo.pop() {
                Some(Undo::Written(id, key, Some(value))) => {
                    self.tables[id].1.written.insert(key, value);
                }
                Some(Undo::Written(id, key, None)) => {
                    self.tables[id].1.written.remove(&key);
                }
                Some(Undo::AssumedAbsent(id, key)) => {
                    self.tables[id].1.read.remove(&key);
                }
                None => break,
            }
        }
    }

    /// Records a pending write, remembering what it replaces.
    fn write(&mut self, id: TableId, key: &[u8], value: Option<Opened>) {
        let written = &mut self.tables[id].1.written;
        let replaced = match written.get_mut(key) {
            Some(pending) => Some(std::mem::replace(pending, value)),
            None => {
                written.insert(key.to_vec(), value);
                None
            }
        };
        if self.saving {
            self.undo.push(Undo::Written(id, key.to_vec(), replaced));
        }
    }

    /// Whether anything is pending.
    pub fn is_empty(&self) -> bool {
        self.tables
            .iter()
            .all(|(_, table)| table.written.is_empty())
    }

    /// The pending writes sealed into a batch, each expecting its record's version as read and
    /// sealed for the version its put will give it. A delete of an absent record is dropped.
    /// The writes are in (table, key) order, so the same changes make the same batch.
    pub fn into_batch(self, rng: &mut impl CryptoRng) -> Batch {
        self.seal(rng).0
    }

    /// As [`Txn::into_batch`], also giving the records known, if any, and, with them, what
    /// the commit of the batch will leave of each record read or written (the records of
    /// tables the sealer does not remember left out): the plaintext written moves there, not
    /// copied, and is not remembered by the sealer too.
    fn seal(mut self, rng: &mut impl CryptoRng) -> (Batch, Option<Known>, Learned) {
        let mut known = self.known.take();
        let learning = known.is_some();
        let mut learned = Learned::new();
        let mut batch = Batch::new();
        batch.durability = self.durability;
        batch
            .writes
            .reserve(self.tables.iter().map(|(_, t)| t.written.len()).sum());
        // An operation touches a handful of tables: an insertion sort, where a library sort
        // brings some 4 KB of code to the `.wasm`.
        for i in 1..self.tables.len() {
            let mut j = i;
            while j > 0 && self.tables[j - 1].0 > self.tables[j].0 {
                self.tables.swap(j - 1, j);
                j -= 1;
            }
        }
        for (table, mut records) in std::mem::take(&mut self.tables) {
            let keeps = learning && self.sealer.keeps(&table);
            // The table's place among the records known: a record known already is replaced
            // there, before the commit (should it fail, the records known are dropped).
            let known_table = known.as_ref().and_then(|known| known.table(&table));
            let mut written: Vec<(Vec<u8>, Option<Opened>)> =
                std::mem::take(&mut records.written).into_iter().collect();
            // This table's writes name it once they are all pushed: the last takes the name,
            // the others a copy (one allocation fewer per table written).
            let first_write = batch.writes.len();
            written.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
            for (key, value) in written {
                let expect = match records.read.get(&key) {
                    Some(read) => Expect::of(read.as_ref()),
                    None => known
                        .as_ref()
                        .zip(known_table)
                        .and_then(|(known, index)| known.get_in(index, &key))
                        .and_then(|record| record.as_ref().map(|r| r.version))
                        .map_or(Expect::Absent, Expect::Version),
                };
                if keeps {
                    records.read.remove(&key);
                }
                let version = expect.next_version();
                let value = match value {
                    Some(opened) if keeps => {
                        let sealed = self
                            .sealer
                            .seal_forgetting(&table, &key, version, &opened, rng);
                        let (schema, plaintext) = opened;
                        let record = KnownRecord {
                            version,
                            schema,
                            plaintext,
                        };
                        learn(
                            &mut known,
                            known_table,
                            &mut learned,
                            &table,
                            &key,
                            Some(record),
                        );
                        Some(sealed)
                    }
                    Some(opened) => {
                        Some(self.sealer.seal_owned(&table, &key, version, opened, rng))
                    }
                    None if expect != Expect::Absent => {
                        if keeps {
                            learn(&mut known, known_table, &mut learned, &table, &key, None);
                        }
                        None
                    }
                    None => continue,
                };
                batch.writes.push(Write {
                    table: String::new(),
                    key,
                    expect,
                    value,
                });
            }
            if keeps {
                // The records read and not written, as they stay: opened again (the sealer
                // remembers them: a copy), once, when first read from the backend.
                for (key, record) in records.read.drain() {
                    let record = match record {
                        Some(record) => {
                            match self
                                .sealer
                                .open(&table, &key, record.version, &record.value)
                            {
                                Ok((schema, plaintext)) => Some(KnownRecord {
                                    version: record.version,
                                    schema,
                                    plaintext,
                                }),
                                Err(_) => continue,
                            }
                        }
                        None => None,
                    };
                    learned.push((table.clone(), key, record));
                }
            }
            if let Some((last, others)) = batch.writes[first_write..].split_last_mut() {
                for write in others {
                    write.table.clone_from(&table);
                }
                last.table = table;
            }
        }
        (batch, known, learned)
    }

    /// Commits every pending write as one batch: all apply, or none and the error says why.
    /// Sealing happens before the returned future is first polled, so the randomness source is
    /// not held across the backend's await.
    pub fn commit(
        self,
        rng: &mut impl CryptoRng,
    ) -> impl Future<Output = Result<(), StoreError>> + MaybeSend + 'a {
        let backend = self.backend;
        let batch = self.into_batch(rng);
        async move {
            if batch.is_empty() {
                return Ok(());
            }
            backend.commit(batch).await
        }
    }

    /// As [`Txn::commit`], for a transaction [`Txn::knowing`] records: gives back the records
    /// known after the commit, with what it read and wrote, at the generation the commit
    /// made; or none when it cannot be sure that no other commit fell between the generation
    /// the transaction began at and its own (the backend tracks no generation, or reports
    /// another one just before the batch applied).
    pub fn commit_known(
        self,
        rng: &mut impl CryptoRng,
    ) -> impl Future<Output = Result<Option<Known>, StoreError>> + MaybeSend + 'a {
        let backend = self.backend;
        let (batch, known, learned) = self.seal(rng);
        async move {
            let Some(mut known) = known else {
                if !batch.is_empty() {
                    backend.commit(batch).await?;
                }
                return Ok(None);
            };
            if !batch.is_empty() {
                // Any other commit since the generation the records are known at, and they
                // may not be the store's: dropped.
                match backend.commit_tracked(batch).await? {
                    Some(committed) if committed.before == known.generation() => {
                        known.advance(committed.after);
                    }
                    _ => return Ok(None),
                }
            }
            // The reads were made at the generation the records were known at, or after it
            // (then the backend is at another one by now, and the next transaction drops
            // them); with nothing committed, they stay at that generation.
            for (table, key, record) in learned {
                known.set(&table, key, record);
            }
            Ok(Some(known))
        }
    }
}
