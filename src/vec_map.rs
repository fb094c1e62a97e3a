//! A map kept as a `Vec` sorted by key, for the small maps of the machines' records (a
//! user's devices, a contact's device list, a pre-key pool) and the OMEMO session slots
//! (thousands of boxed entries: an insert moves pointers, not sessions). Its code per key and
//! value type is a binary search and a `Vec` insert or remove, where each `BTreeMap` type brings
//! about 5 KB of node handling to the `.wasm` package; with few entries it is also no slower.
//! Iteration and serialisation are in key order, so a record reads and writes the same bytes
//! as with a `BTreeMap`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A map sorted by key, one entry per key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value under `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let index = self.find(key).ok()?;
        Some(&self.entries[index].1)
    }

    /// The value under `key`, to change.
    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let index = self.find(key).ok()?;
        Some(&mut self.entries[index].1)
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Puts `value` under `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, value)),
            Err(index) => {
                self.entries.insert(index, (key, value));
                None
            }
        }
    }

    /// Takes the value under `key` out.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let index = self.find(key).ok()?;
        Some(self.entries.remove(index).1)
    }

    /// The value under `key`, `V::default()` put there first if there was none.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let index = match self.find(&key) {
            Ok(index) => index,
            Err(index) => {
                self.entries.insert(index, (key, V::default()));
                index
            }
        };
        &mut self.entries[index].1
    }

    /// The entry with the largest key.
    pub(crate) fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    /// Takes the entry with the largest key out.
    pub(crate) fn pop_last(&mut self) -> Option<(K, V)> {
        self.entries.pop()
    }

    /// The stored key equal to `key`, with its value.
    pub(crate) fn get_key_value<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        let (k, v) = &self.entries[self.find(key).ok()?];
        Some((k, v))
    }

    /// The entries with keys from `first` to `last` (both included), in key order.
    pub(crate) fn range_inclusive<Q: Ord + ?Sized>(
        &self,
        first: &Q,
        last: &Q,
    ) -> impl DoubleEndedIterator<Item = (&K, &V)>
    where
        K: Borrow<Q>,
    {
        let start = self.entries.partition_point(|(k, _)| k.borrow() < first);
        let end = self.entries.partition_point(|(k, _)| k.borrow() <= last);
        self.entries[start..end.max(start)]
            .iter()
            .map(|(k, v)| (k, v))
    }
}

impl<K, V> VecMap<K, V> {
    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub(crate) fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in key order, to change.
    pub(crate) fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// The values in key order, taken.
    pub(crate) fn into_values(self) -> impl DoubleEndedIterator<Item = V> {
        self.entries.into_iter().map(|(_, v)| v)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    /// As `BTreeMap`'s: of entries with equal keys, the last one stays. Entries in increasing
    /// key order (as stored) are appended; others are sorted in, in O(n log n) (thousands of
    /// entries in any order, such as records under sealed names, insert no quadratic memmove).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut entries: Vec<(K, V)> = iter.into_iter().collect();
        if !entries.is_sorted_by(|(a, _), (b, _)| a < b) {
            let order = sorted_order(entries.len(), &|a, b| entries[a].0.cmp(&entries[b].0));
            let mut taken: Vec<Option<(K, V)>> = entries.into_iter().map(Some).collect();
            entries = Vec::with_capacity(taken.len());
            for index in order {
                let Some((key, value)) = taken[index].take() else {
                    continue;
                };
                // Of equal keys the last given comes last (a stable order) and stays.
                if entries.last().is_some_and(|(last, _)| *last == key) {
                    entries.pop();
                }
                entries.push((key, value));
            }
        }
        Self { entries }
    }
}

/// The indices `0..len` in the stable order `compare` gives them, by a bottom-up merge sort
/// (O(n log n)). Not generic, and not the standard library's sort (4.5 KB of `.wasm`), so that
/// a few hundred bytes serve every map type (and canonical JSON's object keys).
pub(crate) fn sorted_order(len: usize, compare: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = order.clone();
    let mut width = 1;
    while width < len {
        let mut start = 0;
        while start < len {
            let middle = start.saturating_add(width).min(len);
            let end = start.saturating_add(width.saturating_mul(2)).min(len);
            let (mut left, mut right) = (start, middle);
            for slot in &mut merged[start..end] {
                // Equal entries: the left run's first, which keeps the order stable.
                let from_left = right == end
                    || (left < middle && compare(order[left], order[right]) != Ordering::Greater);
                let taken = if from_left { &mut left } else { &mut right };
                *slot = order[*taken];
                *taken += 1;
            }
            start = end;
        }
        std::mem::swap(&mut order, &mut merged);
        width = width.saturating_mul(2);
    }
    order
}

impl<K: Ord, V> VecMap<K, V> {
    fn extend_one(&mut self, key: K, value: V) {
        if self.entries.last().is_none_or(|(last, _)| *last < key) {
            self.entries.push((key, value));
        } else {
            self.insert(key, value);
        }
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for VecMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
            type Value = VecMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = VecMap::new();
                while let Some((key, value)) = access.next_entry()? {
                    map.extend_one(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_as_a_btree_map() {
        let mut ours = VecMap::new();
        let mut theirs = BTreeMap::new();
        let mut x: u32 = 7;
        for step in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = (x >> 8) % 50;
            if step % 3 == 0 {
                assert_eq!(ours.remove(&key), theirs.remove(&key));
            } else {
                assert_eq!(ours.insert(key, step), theirs.insert(key, step));
            }
            assert_eq!(ours.get(&key), theirs.get(&key));
            assert_eq!(ours.len(), theirs.len());
        }
        assert!(ours.iter().eq(theirs.iter()));
        assert_eq!(ours.last_key_value(), theirs.last_key_value());
    }

    #[test]
    fn collects_many_entries_in_any_order_as_a_btree_map() {
        let mut x: u32 = 11;
        let pairs: Vec<(u32, u32)> = (0..3000)
            .map(|step| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                ((x >> 8) % 1000, step)
            })
            .collect();
        for len in [0, 1, 2, 3, 5, 64, 100, 3000] {
            let ours: VecMap<u32, u32> = pairs[..len].iter().copied().collect();
            let theirs: BTreeMap<u32, u32> = pairs[..len].iter().copied().collect();
            assert!(ours.iter().eq(theirs.iter()), "{len} entries");
        }
    }

    #[test]
    fn collects_keeping_the_last_of_equal_keys_and_serialises_as_a_btree_map() {
        let pairs = [(3, "a"), (1, "b"), (3, "c"), (2, "d"), (1, "e")];
        let ours: VecMap<u32, &str> = pairs.into_iter().collect();
        let theirs: BTreeMap<u32, &str> = pairs.into_iter().collect();
        assert!(ours.iter().eq(theirs.iter()));
        let json = serde_json::to_string(&ours).unwrap();
        assert_eq!(json, serde_json::to_string(&theirs).unwrap());
        let back: VecMap<u32, String> =
            serde_json::from_str(r#"{"2":"x","1":"y","2":"z"}"#).unwrap();
        let expected: BTreeMap<u32, String> =
            serde_json::from_str(r#"{"2":"x","1":"y","2":"z"}"#).unwrap();
        assert!(back.iter().eq(expected.iter()));
    }
}
