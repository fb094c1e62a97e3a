//! Records as the machines keep them: `u32 length ‖ JSON metadata ‖ u32 count ‖ (u32 length ‖
//! binary object)*`, the metadata the machine's own bookkeeping and the objects the core's
//! `to_record` forms (never JSON, so secrets stay in wiped buffers), sealed by a [`Txn`].

#[cfg(test)]
use serde::Serialize;
#[cfg(test)]
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroizing;

use super::backend::{Backend, Hex, StoreError};
use super::txn::Txn;
use crate::codec::json_value;

/// The schema of every Matrix machine record this build writes (the XMPP machine has its own:
/// [`crate::xmpp`]'s tables).
pub(crate) const SCHEMA: u16 = 1;

#[cold]
#[inline(never)]
fn corrupt(table: &str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        table: table.to_owned(),
        key: Hex(key).to_string(),
    }
}

/// Packs metadata and the binary objects that go with it. The JSON is written in place, its
/// length filled in after, so a record is one allocation. Serde's way, kept for tests: the
/// machines write their metadata by hand ([`pack_meta`]).
#[cfg(test)]
pub(crate) fn pack(meta: &impl Serialize, blobs: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(4 + 256 + objects_len(blobs)));
    out.extend_from_slice(&[0; 4]);
    // Serialising our own types to a Vec cannot fail; one that did would leave no JSON, which
    // reads back as corrupt.
    if serde_json::to_writer(&mut *out, meta).is_err() {
        out.truncate(4);
    }
    frame(out, blobs)
}

/// Record metadata whose JSON is written and read by hand ([`crate::codec::json`]): one
/// writer and one `Value` parser ([`crate::codec::json_value`]) serve every such type, where a serde derive
/// brings each its own parser and serialiser.
pub(crate) trait Meta: Sync {
    /// Writes the metadata's JSON.
    fn write_json(&self, out: &mut Vec<u8>);

    /// At least the length of [`Meta::write_json`]'s output. A record's buffer is allocated
    /// this large, so writing never grows it: growing moves the bytes and leaves the old copy
    /// in freed memory, unwiped. Metadata that can hold a secret or a plaintext longer than
    /// the default overrides it (JSON escaping writes at most 6 bytes per byte).
    fn json_len_bound(&self) -> usize {
        256
    }

    /// Reads the metadata back from the parsed JSON; `None` if it is not of this type.
    fn read_json(value: &Value) -> Option<Self>
    where
        Self: Sized;
}

/// `null`: a record whose presence is all it says.
impl Meta for () {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"null");
    }

    fn read_json(value: &Value) -> Option<Self> {
        value.is_null().then_some(())
    }
}

/// A string.
impl Meta for &str {
    fn write_json(&self, out: &mut Vec<u8>) {
        crate::codec::json::write_str(out, self);
    }

    fn read_json(_: &Value) -> Option<Self> {
        // Borrowed text cannot outlive the parsed value; such records are written, not read.
        None
    }
}

/// As [`pack`], for metadata written by hand.
pub(crate) fn pack_meta(meta: &dyn Meta, blobs: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let capacity = 4 + meta.json_len_bound() + objects_len(blobs);
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    out.extend_from_slice(&[0; 4]);
    meta.write_json(&mut out);
    frame(out, blobs)
}

/// Reads and unpacks a record of this build's schema, its metadata read by hand; `None` when
/// absent. A record of a newer schema is an error, not a guess.
pub(crate) async fn load_meta<B: Backend, T: Meta>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
) -> Result<Option<(T, Vec<Zeroizing<Vec<u8>>>)>, StoreError> {
    let Some((value, blobs)) = load_value(txn, table, key).await? else {
        return Ok(None);
    };
    Ok(Some((meta_from(&value, table, key)?, blobs)))
}

/// Reads and unpacks a record, its metadata read by hand; `None` when absent. A record of a
/// newer schema is an error, not a guess. For a table whose records of the schemas in
/// `readable` share one layout; the schema read is returned with the record.
pub(crate) async fn load_schemas_meta<B: Backend, T: Meta>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
    readable: std::ops::RangeInclusive<u16>,
) -> Result<Option<Loaded<T>>, StoreError> {
    let Some((schema, bytes, json_len, blobs)) = load_unparsed(txn, table, key, readable).await?
    else {
        return Ok(None);
    };
    let json = bytes
        .get(4..4 + json_len)
        .ok_or_else(|| corrupt(table, key))?;
    let meta = read_meta(json, table, key)?;
    Ok(Some((schema, meta, blobs)))
}

/// As [`unpack`], its metadata read by hand.
pub(crate) fn unpack_meta<'a, T: Meta>(
    bytes: &'a [u8],
    table: &str,
    key: &[u8],
) -> Result<(T, Vec<&'a [u8]>), StoreError> {
    let (value, blobs) = unpack_value(bytes, table, key)?;
    Ok((meta_from(&value, table, key)?, blobs))
}

/// [`unpack_meta`] up to the metadata's JSON value: one copy for every record type, where
/// the generic shells only read their fields from the value.
#[inline(never)]
fn unpack_value<'a>(
    bytes: &'a [u8],
    table: &str,
    key: &[u8],
) -> Result<(Value, Vec<&'a [u8]>), StoreError> {
    let (json, blobs) = unframe(bytes, table, key)?;
    Ok((parse_meta(json, table, key)?, blobs))
}

/// Parses metadata JSON as `T`.
fn read_meta<T: Meta>(json: &[u8], table: &str, key: &[u8]) -> Result<T, StoreError> {
    meta_from(&parse_meta(json, table, key)?, table, key)
}

/// Parses metadata JSON into a value (not generic, so once in the build).
#[inline(never)]
fn parse_meta(json: &[u8], table: &str, key: &[u8]) -> Result<Value, StoreError> {
    json_value::parse(json).ok_or_else(|| corrupt(table, key))
}

/// Reads `T` from its metadata's JSON value.
fn meta_from<T: Meta>(value: &Value, table: &str, key: &[u8]) -> Result<T, StoreError> {
    T::read_json(value).ok_or_else(|| corrupt(table, key))
}

/// Packs and writes a record read earlier in this transaction (or known new), under `schema`,
/// its metadata written by hand.
pub(crate) async fn store_schema_meta<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
    schema: u16,
    meta: &dyn Meta,
    blobs: &[&[u8]],
) -> Result<(), StoreError> {
    store_packed(txn, table, key, schema, pack_meta(meta, blobs)).await
}

/// A record of this build's schema with its metadata parsed as a JSON value.
async fn load_value<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
) -> Result<Option<(Value, Vec<Zeroizing<Vec<u8>>>)>, StoreError> {
    let Some((_, bytes, json_len, blobs)) = load_unparsed(txn, table, key, SCHEMA..=SCHEMA).await?
    else {
        return Ok(None);
    };
    let json = bytes
        .get(4..4 + json_len)
        .ok_or_else(|| corrupt(table, key))?;
    Ok(Some((parse_meta(json, table, key)?, blobs)))
}

/// Packs and writes a record read earlier in this transaction (or known new), its metadata
/// written by hand.
pub(crate) async fn store_meta<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
    meta: &dyn Meta,
    blobs: &[&[u8]],
) -> Result<(), StoreError> {
    store_packed(txn, table, key, SCHEMA, pack_meta(meta, blobs)).await
}

/// The bytes the binary objects take, counts and lengths included.
fn objects_len(blobs: &[&[u8]]) -> usize {
    4 + blobs.iter().map(|b| 4 + b.len()).sum::<usize>()
}

// The framing is apart from the generic serde step (here and in `unpack`, `load_schemas_meta`,
// `store_schema_meta`) so it exists once in a binary, not once per record type: the `.wasm` package
// downloads every copy.
/// Completes a record that holds 4 bytes then the JSON: the JSON's length, then the objects.
fn frame(mut out: Zeroizing<Vec<u8>>, blobs: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let json_len = out.len() - 4;
    out[..4].copy_from_slice(&u32::try_from(json_len).unwrap_or(u32::MAX).to_be_bytes());
    // Room for the objects before any is written: growing would leave copies of secrets.
    out.reserve_exact(objects_len(blobs));
    push_len(&mut out, blobs.len());
    for blob in blobs {
        push_len(&mut out, blob.len());
        out.extend_from_slice(blob);
    }
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// Unpacks what [`pack`] wrote: the metadata and the binary objects.
#[cfg(test)]
pub(crate) fn unpack<'a, T: DeserializeOwned>(
    bytes: &'a [u8],
    table: &str,
    key: &[u8],
) -> Result<(T, Vec<&'a [u8]>), StoreError> {
    let (json, blobs) = unframe(bytes, table, key)?;
    let meta = serde_json::from_slice(json).map_err(|_| corrupt(table, key))?;
    Ok((meta, blobs))
}

/// The JSON metadata and the binary objects of a packed record, unparsed.
fn unframe<'a>(
    bytes: &'a [u8],
    table: &str,
    key: &[u8],
) -> Result<(&'a [u8], Vec<&'a [u8]>), StoreError> {
    let mut rest = bytes;
    let number = |rest: &mut &[u8]| -> Result<usize, StoreError> {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(table, key))?;
        *rest = tail;
        Ok(u32::from_be_bytes(*len) as usize)
    };
    let take = |rest: &mut &[u8], len: usize| -> Result<(), StoreError> {
        if rest.len() < len {
            return Err(corrupt(table, key));
        }
        Ok(())
    };
    let json_len = number(&mut rest)?;
    take(&mut rest, json_len)?;
    let (json, tail) = rest.split_at(json_len);
    rest = tail;
    let count = number(&mut rest)?;
    let mut blobs = Vec::with_capacity(count.min(rest.len() / 4));
    for _ in 0..count {
        let len = number(&mut rest)?;
        take(&mut rest, len)?;
        let (blob, tail) = rest.split_at(len);
        blobs.push(blob);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(corrupt(table, key));
    }
    Ok((json, blobs))
}

/// What [`load_schemas_meta`] read: the record's schema, its metadata and its binary objects.
pub(crate) type Loaded<T> = (u16, T, Vec<Zeroizing<Vec<u8>>>);

/// A record read but for its JSON metadata: the schema, the record's bytes (the JSON is
/// `bytes[4..4 + json_len]`), the JSON's length and the binary objects.
type Unparsed = (u16, Zeroizing<Vec<u8>>, usize, Vec<Zeroizing<Vec<u8>>>);

/// [`load_schemas_meta`] up to the JSON metadata, which it leaves unparsed.
async fn load_unparsed<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
    readable: std::ops::RangeInclusive<u16>,
) -> Result<Option<Unparsed>, StoreError> {
    let Some((schema, bytes)) = txn.get(table, key).await? else {
        return Ok(None);
    };
    if !readable.contains(&schema) {
        return Err(StoreError::NewerSchema {
            table: table.to_owned(),
            found: schema,
        });
    }
    let (json, blobs) = unframe(&bytes, table, key)?;
    let json_len = json.len();
    let blobs = blobs
        .into_iter()
        .map(|b| Zeroizing::new(b.to_vec()))
        .collect();
    Ok(Some((schema, bytes, json_len, blobs)))
}

/// [`store_schema_meta`] after packing.
async fn store_packed<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
    schema: u16,
    packed: Zeroizing<Vec<u8>>,
) -> Result<(), StoreError> {
    // Reading first gives the write the version it must expect.
    txn.put_read(table, key, schema, packed).await
}

/// Deletes a record if it exists.
pub(crate) async fn remove<B: Backend>(
    txn: &mut Txn<'_, B>,
    table: &str,
    key: &[u8],
) -> Result<(), StoreError> {
    txn.version(table, key).await?;
    txn.delete(table, key)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_round_trip_and_refuse_truncation() {
        let packed = pack(&serde_json::json!({"a": 1}), &[b"one", b"", b"three"]);
        let (meta, blobs): (serde_json::Value, _) = unpack(&packed, "t", b"k").unwrap();
        assert_eq!(meta["a"], 1);
        assert_eq!(blobs, vec![&b"one"[..], b"", b"three"]);
        for cut in 0..packed.len() {
            let truncated = unpack::<serde_json::Value>(&packed[..cut], "t", b"k");
            assert!(truncated.is_err(), "cut {cut}");
        }
    }
}
