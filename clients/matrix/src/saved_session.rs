//! The logged-in session kept in the device's own store, sealed like the machine's records, so
//! a restarted program carries on as the same device instead of logging in as a new one.

use std::path::Path;

use olmo::persist::StorageKey;
use olmo::store::{Sealer, Txn, block_on};
use olmo_sqlite::SqliteStore;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{Error, Session};

/// Where the session is kept: the machine's application table `session`
/// ([`Machine::app_record`](olmo::matrix::Machine::app_record) reads it too).
const TABLE: &str = "app.session";
const KEY: &[u8] = b"session";
/// The record's schema version.
const SCHEMA: u16 = 1;

impl Session {
    /// The session saved in the store at `path` (`None` if none was).
    pub fn load(path: impl AsRef<Path>, key: &StorageKey) -> Result<Option<Self>, Error> {
        let store = SqliteStore::open(path)?;
        let sealer = Sealer::new(key);
        let mut txn = Txn::new(&store, &sealer);
        let Some((_, value)) = block_on(txn.get(TABLE, &sealer.name(TABLE, &[KEY])))? else {
            return Ok(None);
        };
        let saved: Value =
            serde_json::from_slice(&value).map_err(|_| Error::Response("saved session"))?;
        let field = |name: &'static str| {
            saved
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(Error::Response("saved session"))
        };
        Ok(Some(Self {
            base_url: field("base_url")?,
            user_id: field("user_id")?,
            device_id: field("device_id")?,
            access_token: field("access_token")?,
        }))
    }

    /// Saves the session in the store at `path` (one commit), replacing any saved before.
    pub fn save(&self, path: impl AsRef<Path>, key: &StorageKey) -> Result<(), Error> {
        let store = SqliteStore::open(path)?;
        let sealer = Sealer::new(key);
        let mut txn = Txn::new(&store, &sealer);
        let name = sealer.name(TABLE, &[KEY]);
        block_on(txn.version(TABLE, &name))?;
        let saved = json!({
            "base_url": self.base_url, "user_id": self.user_id,
            "device_id": self.device_id, "access_token": self.access_token,
        });
        let value = Zeroizing::new(saved.to_string().into_bytes());
        txn.put(TABLE, &name, SCHEMA, value)?;
        Ok(block_on(txn.commit(&mut rand::rng()))?)
    }
}
