//! The bot's own records, in the same store as the machine's (sealed with the same key): which
//! archived messages were answered, the answers not yet known to be sent, and how far the
//! archive was read. An answer is recorded before it is sent and crossed off after, so a bot
//! killed at any point answers each message once: at the next start it resends what was
//! pending (the same stanzas, which a recipient cannot decrypt twice) and skips what was done.

use olmo::persist::StorageKey;
use olmo::store::{Backend, KeyRange, Sealer, Txn};
use olmo_sqlite::SqliteStore;
use zeroize::Zeroizing;

use crate::Error;

const ANSWERED: &str = "bot.answered";
const OUTBOX: &str = "bot.outbox";
const CURSOR: &str = "bot.cursor";
const SCHEMA: u16 = 1;

/// An answer: the `<encrypted>` elements to send, each with the bare JID it goes to.
pub type Answer = Vec<(String, String)>;

/// The bot's records.
pub struct Ledger {
    store: SqliteStore,
    sealer: Sealer,
}

impl Ledger {
    /// The ledger in the store at `path` (a second handle on the machine's file).
    pub fn open(path: &std::path::Path, key: &StorageKey) -> Result<Self, Error> {
        Ok(Self {
            store: SqliteStore::open(path)?,
            sealer: Sealer::new(key),
        })
    }

    /// Whether the archived message `id` was answered (or found unanswerable).
    pub async fn answered(&self, id: &str) -> Result<bool, Error> {
        let name = self.sealer.name(ANSWERED, &[id.as_bytes()]);
        Ok(Txn::new(&self.store, &self.sealer)
            .get(ANSWERED, &name)
            .await?
            .is_some())
    }

    /// How far the archive was read.
    pub async fn cursor(&self) -> Result<Option<String>, Error> {
        let name = self.sealer.name(CURSOR, &[]);
        let found = Txn::new(&self.store, &self.sealer)
            .get(CURSOR, &name)
            .await?;
        Ok(found.map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Records, in one commit, that `id` is answered by `answer` (pending until
    /// [`Ledger::sent`]) and that the archive was read up to it.
    pub async fn record(&self, id: &str, answer: &Answer) -> Result<(), Error> {
        let mut txn = Txn::new(&self.store, &self.sealer);
        let answered = self.sealer.name(ANSWERED, &[id.as_bytes()]);
        txn.insert(ANSWERED, &answered, SCHEMA, Zeroizing::new(Vec::new()));
        if !answer.is_empty() {
            let outbox = self.sealer.name(OUTBOX, &[id.as_bytes()]);
            let bytes = serde_json::to_vec(answer).map_err(|_| Error::Corrupt("bot outbox"))?;
            txn.insert(OUTBOX, &outbox, SCHEMA, Zeroizing::new(bytes));
        }
        let cursor = self.sealer.name(CURSOR, &[]);
        txn.version(CURSOR, &cursor).await?;
        txn.put(
            CURSOR,
            &cursor,
            SCHEMA,
            Zeroizing::new(id.as_bytes().to_vec()),
        )?;
        Ok(txn.commit(&mut rand::rng()).await?)
    }

    /// Crosses off the answer to `id`: it was sent.
    pub async fn sent(&self, id: &str) -> Result<(), Error> {
        let mut txn = Txn::new(&self.store, &self.sealer);
        let outbox = self.sealer.name(OUTBOX, &[id.as_bytes()]);
        if txn.get(OUTBOX, &outbox).await?.is_some() {
            txn.delete(OUTBOX, &outbox)?;
        }
        Ok(txn.commit(&mut rand::rng()).await?)
    }

    /// The answers recorded but not known to be sent (a crash came between), by message id.
    pub async fn pending(&self) -> Result<Vec<(Vec<u8>, Answer)>, Error> {
        let mut txn = Txn::new(&self.store, &self.sealer);
        let mut found = Vec::new();
        for (name, _) in self
            .store
            .scan(OUTBOX, &KeyRange::all(), usize::MAX)
            .await?
        {
            if let Some((_, bytes)) = txn.get(OUTBOX, &name).await? {
                let answer =
                    serde_json::from_slice(&bytes).map_err(|_| Error::Corrupt("bot outbox"))?;
                found.push((name, answer));
            }
        }
        Ok(found)
    }

    /// Crosses off a pending answer by its record name.
    pub async fn resent(&self, name: &[u8]) -> Result<(), Error> {
        let mut txn = Txn::new(&self.store, &self.sealer);
        txn.get(OUTBOX, name).await?;
        txn.delete(OUTBOX, name)?;
        Ok(txn.commit(&mut rand::rng()).await?)
    }
}
