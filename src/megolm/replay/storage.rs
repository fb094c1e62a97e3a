//! The replay record's stored form (schema 1): `count ‖ (session id length ‖ session id ‖
//! index ‖ event (32))*` in (session id, index) order.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::ReplayRecord;
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};

/// The schema written and read.
const SCHEMA: u32 = 1;

/// Entries a stored replay record may hold: as many as a record holds, so a record always
/// restores and a corrupt count cannot allocate without bound.
const MAX_REPLAY_ENTRIES: usize = ReplayRecord::MAX_ENTRIES;

fn read_schema(input: &mut ByteReader<'_>) -> Result<(), PersistError> {
    match input.u32()? {
        SCHEMA => Ok(()),
        other => Err(PersistError::UnsupportedVersion(other)),
    }
}

impl ReplayRecord {
    /// Encrypts the record for storage under `key`.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`ReplayRecord::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(Kind::ReplayRecord, &self.to_record(), key, rng)
    }

    /// Restores a record saved by [`ReplayRecord::save`].
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(Kind::ReplayRecord, blob, key)?)
    }

    /// The unsealed stored form: schema, then the fields.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        // `len` is at most `MAX_ENTRIES`, far below `u32::MAX`; the map keeps them sorted.
        out.u32(SCHEMA).u32(self.len() as u32);
        for (session_id, indices) in &self.seen {
            for (index, event) in indices {
                out.u32(session_id.len() as u32)
                    .bytes(session_id.as_bytes())
                    .u32(*index)
                    .bytes(event);
            }
        }
        out.finish()
    }

    /// Reads [`ReplayRecord::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        read_schema(&mut input)?;
        let mut record = Self::new();
        for _ in 0..input.count(MAX_REPLAY_ENTRIES)? {
            let length = input.count(bytes.len())?;
            let session_id =
                std::str::from_utf8(input.take(length)?).map_err(|_| DecodeError::OutOfRange)?;
            let index = input.u32()?;
            record.insert(session_id, index, input.array()?);
        }
        input.finish()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> [u8; 32] {
        crate::crypto::sha256(&[&n.to_be_bytes()])
    }

    /// A full record saves and restores whole, and from then on every new index drops an old
    /// one by the documented rule, so the record never outgrows what restore accepts.
    #[test]
    fn a_full_record_saves_restores_and_evicts_the_oldest() {
        let session = "a".repeat(43);
        let full = ReplayRecord::MAX_ENTRIES as u32;
        let mut record = ReplayRecord::new();
        for index in 1..=full {
            record.insert(&session, index, event(index));
        }
        assert_eq!(record.len(), ReplayRecord::MAX_ENTRIES);

        let key = StorageKey::from_bytes([9; 32]);
        let restored = ReplayRecord::restore(&record.save(&key), &key).unwrap();
        assert!(restored == record, "the full record did not restore whole");
        drop(restored);

        // The session's own oldest index makes room for its newest.
        record.insert(&session, full + 1, event(0));
        assert_eq!(record.len(), ReplayRecord::MAX_ENTRIES);
        assert!(!record.seen[&session].contains_key(&1));
        assert!(record.seen[&session].contains_key(&(full + 1)));
        // An index older than all the session's others is itself the oldest: not recorded.
        record.insert(&session, 0, event(0));
        assert!(!record.seen[&session].contains_key(&0));
        // A new session takes the oldest index of the largest session.
        record.insert("b", 7, event(7));
        assert_eq!(record.len(), ReplayRecord::MAX_ENTRIES);
        assert!(!record.seen[&session].contains_key(&2));
        assert!(record.seen["b"].contains_key(&7));

        let restored = ReplayRecord::restore(&record.save(&key), &key).unwrap();
        assert!(
            restored == record,
            "the record after evictions did not restore whole"
        );
    }
}
