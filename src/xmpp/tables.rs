//! The XMPP machine's tables in the store, each record named by a keyed hash of the identifiers
//! it stands for; record contents as [`crate::store::records`] lays them out.
//!
//! Schemas: 1 kept the session clocks in the account's device record, rewritten with every
//! message; 2 keeps them in a record of their own ([`CLOCK_KEY`]); 3 also keeps the pre-keys
//! (both pools, ~14 KB) in a record of their own ([`PRE_KEYS_KEY`]), the account record holding
//! only the identity, so a message on an established session neither reads nor writes them.
//! Every other record reads the same under all three; an account of schema 1 or 2 is migrated
//! when the machine opens.

use zeroize::Zeroizing;

use super::memo::Memo;
pub(crate) use crate::store::records::remove;
use crate::store::records::{Meta, load_schemas_meta, pack_meta, store_schema_meta, unpack_meta};
use crate::store::{Backend, StoreError, Txn};

/// The schema of every record this build writes.
pub(crate) const SCHEMA: u16 = 3;
/// The pre-keys inside the account record.
#[cfg(test)]
pub(crate) const SCHEMA_2: u16 = 2;
/// The first schema: the account record held the session clocks.
pub(crate) const SCHEMA_1: u16 = 1;

/// The account: its identity and settings, its pre-keys, and the session clocks.
pub const ACCOUNT: &str = "xmpp.account";
/// The account's identity and settings, in [`ACCOUNT`].
pub(crate) const ACCOUNT_KEY: &[u8] = b"account";
/// The session clocks, in [`ACCOUNT`]: small, and written with every message.
pub(crate) const CLOCK_KEY: &[u8] = b"clock";
/// The pre-keys of both versions, in [`ACCOUNT`]: read and written only by the operations
/// that use them.
pub(crate) const PRE_KEYS_KEY: &[u8] = b"pre-keys";
/// One record per session slot, by (version, bare JID, device id).
pub const SESSIONS: &str = "xmpp.sessions";
/// Device lists as received, by (version, bare JID).
pub const DEVICE_LISTS: &str = "xmpp.device_lists";
/// Trust decisions, by (bare JID, identity fingerprint).
pub const TRUST: &str = "xmpp.trust";
/// Consecutive decryption failures, by (version, bare JID, device id).
pub const FAILURES: &str = "xmpp.failures";
/// Messages already decrypted, by (sender bare JID, stanza id): an archive catch-up run again
/// returns what the first run gave.
pub const PROCESSED: &str = "xmpp.processed";

/// A record's metadata and binary objects, with the schema it was written under.
pub(crate) type Record<T> = (u16, T, Vec<Zeroizing<Vec<u8>>>);

/// Reads a record of any schema this build reads; `None` when absent.
pub(crate) async fn load_record<B: Backend, T: Meta>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
) -> Result<Option<Record<T>>, StoreError> {
    load_schemas_meta(txn, table, key, SCHEMA_1..=SCHEMA).await
}

/// As [`load_record`], for records read at every operation: a record whose plaintext is the
/// one `memo` last parsed for it is not parsed again.
pub(crate) async fn load_record_memo<B: Backend, T>(
    txn: &mut Txn<'_, B>,
    memo: &Memo,
    table: &'static str,
    key: &[u8],
) -> Result<Option<Record<T>>, StoreError>
where
    T: Meta + Clone + Send + 'static,
{
    load_memo_with(txn, memo, table, key, Record::<T>::clone).await
}

/// As [`load_record_memo`], giving what `read` takes from the record: a record the memo holds
/// is not copied whole.
pub(crate) async fn load_memo_with<B: Backend, T, R>(
    txn: &mut Txn<'_, B>,
    memo: &Memo,
    table: &'static str,
    key: &[u8],
    read: impl Fn(&Record<T>) -> R,
) -> Result<Option<R>, StoreError>
where
    T: Meta + Send + 'static,
{
    // The record compared with the one the memo holds where it lies, not copied; copied
    // only when it must be parsed.
    let held = txn
        .get_with(table, key, |schema, plaintext| {
            memo.parsed_with(table, key, schema, plaintext, &read)
        })
        .await?;
    match held {
        None => return Ok(None),
        Some(Some(value)) => return Ok(Some(value)),
        Some(None) => {}
    }
    let Some((schema, plaintext)) = txn.get(table, key).await? else {
        return Ok(None);
    };
    if !(SCHEMA_1..=SCHEMA).contains(&schema) {
        return Err(StoreError::NewerSchema {
            table: table.to_owned(),
            found: schema,
        });
    }
    let (meta, blobs) = unpack_meta::<T>(&plaintext, table, key)?;
    let blobs: Vec<Zeroizing<Vec<u8>>> = blobs
        .into_iter()
        .map(|b| Zeroizing::new(b.to_vec()))
        .collect();
    let record = (schema, meta, blobs);
    let value = read(&record);
    memo.hold_parsed(table, key, schema, plaintext, record);
    Ok(Some(value))
}

/// Reads a record whose layout both schemas share; `None` when absent.
pub(crate) async fn load<B: Backend, T: Meta>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
) -> Result<Option<(T, Vec<Zeroizing<Vec<u8>>>)>, StoreError> {
    Ok(load_record(txn, table, key)
        .await?
        .map(|(_, meta, blobs)| (meta, blobs)))
}

/// Writes a record under [`SCHEMA`].
pub(crate) async fn store<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
    meta: &dyn Meta,
    blobs: &[&[u8]],
) -> Result<(), StoreError> {
    store_schema_meta(txn, table, key, SCHEMA, meta, blobs).await
}

/// As [`store`], for a record without binary objects that [`load_record_memo`] reads: `memo`
/// holds it as parsed from what is written, so the next operation does not parse it.
pub(crate) async fn store_memo<B: Backend, T>(
    txn: &mut Txn<'_, B>,
    memo: &Memo,
    table: &'static str,
    key: &[u8],
    meta: &T,
) -> Result<(), StoreError>
where
    T: Meta + Clone + Send + 'static,
{
    let packed = pack_meta(meta, &[]);
    let record: Record<T> = (SCHEMA, meta.clone(), Vec::new());
    memo.hold_parsed_copy(table, key, SCHEMA, &packed, record);
    // Reading first gives the write the version it must expect.
    txn.put_read(table, key, SCHEMA, packed).await
}
