//! One operation's view of the store: reads go through to the backend once, are opened and
//! remembered with their versions; writes stay pending, and reads see them first.
//! [`Txn::commit`] seals the pending writes into one [`Batch`], each write expecting the version
//! its record was read at, so a commit made by someone else in between is a
//! [`StoreError::Conflict`], never an overwrite.

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::backend::{Backend, Batch, CommitDurability, Expect, MaybeSend, Record, StoreError};
use super::seal::Sealer;

type Name = (String, Vec<u8>);

/// A record's contents: its schema and plaintext.
pub type Opened = (u16, Zeroizing<Vec<u8>>);

/// Pending changes over a backend. Dropping it without [`Txn::commit`] writes nothing.
pub struct Txn<'a, B: Backend> {
    backend: &'a B,
    sealer: &'a Sealer,
    /// What each record was when first read (`None`: absent).
    read: BTreeMap<Name, Option<Record>>,
    /// The pending contents of each written record (`None`: deleted).
    written: BTreeMap<Name, Option<Opened>>,
    /// What each write replaced, oldest first.
    undo: Vec<Undo>,
    /// What the commit must survive.
    durability: CommitDurability,
}

/// A point in a [`Txn`] to [`Txn::roll_back`] to, taken by [`Txn::savepoint`].
#[derive(Debug)]
pub struct Savepoint(usize);

/// What a write replaced, so [`Txn::roll_back`] can restore it.
enum Undo {
    /// The record's pending contents before the write (`None`: no pending write).
    Written(Name, Option<Option<Opened>>),
    /// [`Txn::insert`] assumed the record absent without reading it.
    AssumedAbsent(Name),
}

impl<'a, B: Backend> Txn<'a, B> {
    /// A transaction reading from `backend`, opening and sealing with `sealer`.
    pub fn new(backend: &'a B, sealer: &'a Sealer) -> Self {
        Self {
            backend,
            sealer,
            read: BTreeMap::new(),
            written: BTreeMap::new(),
            undo: Vec::new(),
            durability: CommitDurability::Durable,
        }
    }

    /// Declares what the commit must survive ([`CommitDurability::Durable`] unless set): an
    /// operation marks its transaction [`CommitDurability::LossTolerant`] only when every write
    /// in it is harmless to lose in a power loss (see [`CommitDurability`] for the rule).
    pub fn set_durability(&mut self, durability: CommitDurability) {
        self.durability = durability;
    }

    /// The record's current contents in this transaction: a pending write, or what the backend
    /// held when it was first read, opened. A record that does not open is
    /// [`StoreError::Corrupt`].
    pub async fn get(&mut self, table: &str, key: &[u8]) -> Result<Option<Opened>, StoreError> {
        let name = (table.to_owned(), key.to_vec());
        if let Some(value) = self.written.get(&name) {
            return Ok(value.clone());
        }
        if !self.read.contains_key(&name) {
            let record = self.backend.get(table, key).await?;
            self.read.insert(name.clone(), record);
        }
        match self.read.get(&name).and_then(Option::as_ref) {
            Some(record) => self
                .sealer
                .open(table, key, record.version, &record.value)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Reads the records of `keys` of one table that this transaction has not read yet, in one
    /// backend round trip ([`Backend::get_many`]), so the [`Txn::get`]s that follow are served
    /// from memory. Reads nothing it already knows; opens nothing until asked.
    pub async fn prefetch(&mut self, table: &str, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let missing: Vec<Vec<u8>> = keys
            .iter()
            .filter(|key| !self.read.contains_key(&(table.to_owned(), key.to_vec())))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let records = self.backend.get_many(table, &missing).await?;
        for (key, record) in missing.into_iter().zip(records) {
            self.read.entry((table.to_owned(), key)).or_insert(record);
        }
        Ok(())
    }

    /// The version the record had when this transaction first read it, reading it now if it
    /// has not been; the version a pending put will have is one more.
    pub async fn version(&mut self, table: &str, key: &[u8]) -> Result<Option<u64>, StoreError> {
        let name = (table.to_owned(), key.to_vec());
        if !self.read.contains_key(&name) {
            let record = self.backend.get(table, key).await?;
            self.read.insert(name.clone(), record);
        }
        Ok(self
            .read
            .get(&name)
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
        let name = (table.to_owned(), key.to_vec());
        if !self.read.contains_key(&name) {
            return Err(StoreError::InvalidBatch("a write without a read"));
        }
        self.write(name, Some((schema, plaintext)));
        Ok(())
    }

    /// Writes a record that must not exist yet (a new session, a replay entry): the commit
    /// conflicts if it does.
    pub fn insert(&mut self, table: &str, key: &[u8], schema: u16, plaintext: Zeroizing<Vec<u8>>) {
        let name = (table.to_owned(), key.to_vec());
        if !self.read.contains_key(&name) {
            self.read.insert(name.clone(), None);
            self.undo.push(Undo::AssumedAbsent(name.clone()));
        }
        self.write(name, Some((schema, plaintext)));
    }

    /// Deletes the record at commit (read first, as for [`Txn::put`]).
    pub fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), StoreError> {
        let name = (table.to_owned(), key.to_vec());
        if !self.read.contains_key(&name) {
            return Err(StoreError::InvalidBatch("a write without a read"));
        }
        self.write(name, None);
        Ok(())
    }

    /// The transaction as it is now, to [`Txn::roll_back`] to if a later step fails.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.undo.len())
    }

    /// Forgets every write made since `savepoint` was taken (the reads stay known).
    pub fn roll_back(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.0 {
            match self.undo.pop() {
                Some(Undo::Written(name, Some(value))) => {
                    self.written.insert(name, value);
                }
                Some(Undo::Written(name, None)) => {
                    self.written.remove(&name);
                }
                Some(Undo::AssumedAbsent(name)) => {
                    self.read.remove(&name);
                }
                None => break,
            }
        }
    }

    /// Records a pending write, remembering what it replaces.
    fn write(&mut self, name: Name, value: Option<Opened>) {
        let replaced = self.written.insert(name.clone(), value);
        self.undo.push(Undo::Written(name, replaced));
    }

    /// Whether anything is pending.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// The pending writes sealed into a batch, each expecting its record's version as read and
    /// sealed for the version its put will give it. A delete of an absent record is dropped.
    pub fn into_batch(self, rng: &mut impl CryptoRng) -> Batch {
        let mut batch = Batch::new();
        batch.durability = self.durability;
        for ((table, key), value) in self.written {
            let name = (table, key);
            let expect = Expect::of(self.read.get(&name).and_then(Option::as_ref));
            let (table, key) = name;
            match value {
                Some((schema, plaintext)) => {
                    let version = expect.next_version();
                    let sealed = self
                        .sealer
                        .seal(&table, &key, version, schema, &plaintext, rng);
                    batch.put(&table, &key, expect, sealed);
                }
                None if expect != Expect::Absent => batch.delete(&table, &key, expect),
                None => {}
            }
        }
        batch
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
}
