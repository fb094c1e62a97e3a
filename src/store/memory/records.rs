//! One table's records, sorted by key, in chunks: a sorted `Vec` of sorted `Vec`s of at most
//! [`CHUNK`] entries. Finding a key is two binary searches, an insert moves at most a chunk's
//! entries (and, when the chunk splits, the chunk list's pointers), a range scan walks the
//! chunks in order. A `BTreeMap<Vec<u8>, Record>` did the same with about 15 KB of node code
//! of its own in the `.wasm` package; this is a few hundred bytes, and as fast for the 100,000+
//! records a large store holds.
//!
//! Each entry, and each chunk for its last entry, keeps its key's first eight bytes as a
//! number beside it: record names are keyed hashes, so the numbers nearly always decide a
//! comparison, and a search reads them where it stands instead of following each key to the
//! heap (a lookup among 100,000 records was some twenty cache misses).

use std::cmp::Ordering;
use std::fmt;
use std::ops::Bound;

use zeroize::Zeroize as _;

use crate::store::Record;

/// The most entries a chunk holds before it splits in two.
const CHUNK: usize = 256;

/// A record and its key, the key's [`prefix`] beside them.
#[derive(Clone)]
struct Entry {
    prefix: u64,
    key: Vec<u8>,
    record: Record,
}

/// Entries in key order, and the last one's prefix.
#[derive(Clone)]
struct Chunk {
    last: u64,
    entries: Vec<Entry>,
}

impl Chunk {
    fn new(entries: Vec<Entry>) -> Self {
        let last = entries.last().map_or(0, |e| e.prefix);
        Self { last, entries }
    }

    /// Whether every key of the chunk is below `key` (the chunk is never empty).
    fn below(&self, prefix: u64, key: &[u8]) -> bool {
        match self.last.cmp(&prefix) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.entries.last().is_some_and(|e| e.key.as_slice() < key),
        }
    }
}

/// The first eight bytes of `key` as a big-endian number, zeros after a shorter key: keys in
/// byte order have their prefixes in the same order (equal prefixes say nothing).
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// Records by key, in key order.
#[derive(Clone, Default)]
pub(super) struct Records {
    /// Never an empty chunk; every key of a chunk is below every key of the next.
    chunks: Vec<Chunk>,
}

impl Records {
    /// How many records there are.
    pub(super) fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.entries.len()).sum()
    }

    /// Whether there is none.
    pub(super) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The chunk that holds `key` if any record does (the last chunk when every key is below
    /// `key`), and where in it `key` is or would go.
    fn find(&self, key: &[u8]) -> Option<(usize, Result<usize, usize>)> {
        let last = self.chunks.len().checked_sub(1)?;
        let prefix = prefix(key);
        let chunk = self
            .chunks
            .partition_point(|c| c.below(prefix, key))
            .min(last);
        let at = self.chunks[chunk].entries.binary_search_by(|e| {
            e.prefix
                .cmp(&prefix)
                .then_with(|| e.key.as_slice().cmp(key))
        });
        Some((chunk, at))
    }

    /// The record under `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<&Record> {
        match self.find(key)? {
            (chunk, Ok(at)) => Some(&self.chunks[chunk].entries[at].record),
            _ => None,
        }
    }

    /// Puts `record` under `key`, replacing any record there.
    pub(super) fn insert(&mut self, key: Vec<u8>, record: Record) {
        let entry = Entry {
            prefix: prefix(&key),
            key,
            record,
        };
        let Some((chunk, at)) = self.find(&entry.key) else {
            self.chunks.push(Chunk::new(vec![entry]));
            return;
        };
        let Chunk { last, entries } = &mut self.chunks[chunk];
        match at {
            Ok(at) => {
                let old = std::mem::replace(&mut entries[at].record, entry.record);
                wipe(old);
            }
            Err(at) => {
                entries.insert(at, entry);
                if entries.len() > CHUNK {
                    let upper = entries.split_off(CHUNK / 2);
                    *last = entries.last().map_or(0, |e| e.prefix);
                    self.chunks.insert(chunk + 1, Chunk::new(upper));
                } else if at + 1 == entries.len() {
                    *last = entries[at].prefix;
                }
            }
        }
    }

    /// Removes the record under `key`, if any.
    pub(super) fn remove(&mut self, key: &[u8]) {
        if let Some((chunk, Ok(at))) = self.find(key) {
            let Chunk { last, entries } = &mut self.chunks[chunk];
            wipe(entries.remove(at).record);
            match entries.last() {
                Some(entry) => *last = entry.prefix,
                None => {
                    self.chunks.remove(chunk);
                }
            }
        }
    }

    /// Every record, in key order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Record)> {
        self.chunks
            .iter()
            .flat_map(|c| &c.entries)
            .map(|e| (&e.key, &e.record))
    }

    /// The records from `start` to `end`, in key order (none when `start` is above `end`).
    pub(super) fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Record)> {
        let before_start = |key: &[u8]| match start {
            Bound::Included(s) => key < s,
            Bound::Excluded(s) => key <= s,
            Bound::Unbounded => false,
        };
        let chunk = self.chunks.partition_point(|c| {
            c.entries
                .last()
                .is_some_and(|e| before_start(e.key.as_slice()))
        });
        let first: &[Entry] = match self.chunks.get(chunk) {
            Some(c) => &c.entries[c.entries.partition_point(|e| before_start(&e.key))..],
            None => &[],
        };
        let rest = self.chunks.get(chunk + 1..).unwrap_or_default();
        std::iter::once(first)
            .chain(rest.iter().map(|c| c.entries.as_slice()))
            .flatten()
            .map(|e| (&e.key, &e.record))
            .take_while(move |(key, _)| match end {
                Bound::Included(e) => key.as_slice() <= e,
                Bound::Excluded(e) => key.as_slice() < e,
                Bound::Unbounded => true,
            })
    }
}

/// A record's bytes wiped as it goes: an ephemeral store's are plaintext
/// ([`Backend::is_ephemeral`](crate::store::Backend::is_ephemeral)).
fn wipe(mut record: Record) {
    record.value.zeroize();
}

impl Drop for Records {
    fn drop(&mut self) {
        for entry in self.chunks.iter_mut().flat_map(|c| &mut c.entries) {
            entry.record.value.zeroize();
        }
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn record(version: u64) -> Record {
        Record {
            version,
            value: vec![version as u8],
        }
    }

    /// Inserts, replaces and removes in a scrambled order, against a `BTreeMap` doing the same,
    /// with enough keys for many chunk splits and removals of whole chunks.
    #[test]
    fn behaves_as_a_btree_map() {
        let mut ours = Records::default();
        let mut theirs = BTreeMap::new();
        // Short keys, and keys that share their first eight bytes (or seven, then end), so
        // the prefixes tie and the keys decide.
        let key = |i: u64| {
            let h = i.wrapping_mul(2_654_435_761) % 5003;
            let short = h.to_be_bytes()[5..].to_vec();
            match h % 3 {
                0 => short,
                1 => [&[7u8; 8][..], &short].concat(),
                _ => [&[7u8; 7][..], &short[2..]].concat(),
            }
        };
        for i in 0..20_000u64 {
            let k = key(i);
            if i % 7 == 3 {
                ours.remove(&k);
                theirs.remove(&k);
            } else {
                ours.insert(k.clone(), record(i));
                theirs.insert(k, record(i));
            }
            if i % 997 == 0 {
                check(&ours, &theirs);
            }
        }
        check(&ours, &theirs);
        for i in 0..5003u64 {
            let k = key(i);
            ours.remove(&k);
            theirs.remove(&k);
        }
        check(&ours, &theirs);
        assert!(ours.is_empty());
    }

    fn check(ours: &Records, theirs: &BTreeMap<Vec<u8>, Record>) {
        assert_eq!(ours.len(), theirs.len());
        assert!(ours.iter().eq(theirs.iter()));
        assert!(ours.chunks.iter().all(|c| !c.entries.is_empty()
            && c.entries.len() <= CHUNK
            && c.last == prefix(&c.entries[c.entries.len() - 1].key)
            && c.entries.iter().all(|e| e.prefix == prefix(&e.key))));
        for probe in [0u64, 1, 17, 2500, 5002, 5003, 9999] {
            let k = probe.to_be_bytes()[5..].to_vec();
            assert_eq!(ours.get(&k), theirs.get(&k));
            let bounds = [
                Bound::Included(k.as_slice()),
                Bound::Excluded(k.as_slice()),
                Bound::Unbounded,
            ];
            let other = (probe * 3 + 100).to_be_bytes()[5..].to_vec();
            let ends = [
                Bound::Included(other.as_slice()),
                Bound::Excluded(other.as_slice()),
                Bound::Unbounded,
            ];
            for start in bounds {
                for end in ends {
                    let expected: Vec<_> = if start_after_end(start, end) {
                        Vec::new()
                    } else {
                        theirs.range::<[u8], _>((start, end)).collect()
                    };
                    let got: Vec<_> = ours.range(start, end).collect();
                    assert_eq!(got, expected);
                }
            }
        }
    }

    /// `BTreeMap::range` panics where the range is empty by its bounds.
    fn start_after_end(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
        match (start, end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
            _ => false,
        }
    }
}
