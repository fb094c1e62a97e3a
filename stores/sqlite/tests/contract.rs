//! The SQLite backend under the store contract: the conformance suite with two connections on
//! one file, what survives a reopen, and what the file looks like to a reader with no key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use olmo::persist::StorageKey;
use olmo::store::{
    Backend, Batch, CommitDurability, Expect, KeyRange, Sealer, StoreError, Txn, block_on,
    conformance,
};
use olmo_sqlite::{Durability, Options, SqliteStore};
use zeroize::Zeroizing;

fn scratch() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("olmo.sqlite3");
    (dir, path)
}

#[test]
fn two_connections_on_one_file_pass_the_conformance_suite() {
    let (_dir, path) = scratch();
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path).unwrap();
    let passed = block_on(conformance::run(&first, &second)).unwrap();
    assert_eq!(passed, conformance::CHECKS.len());
}

#[test]
fn the_suite_passes_with_normal_durability_and_in_memory() {
    let (_dir, path) = scratch();
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    let first = SqliteStore::open_with(&path, &options).unwrap();
    let second = SqliteStore::open_with(&path, &options).unwrap();
    block_on(conformance::run(&first, &second)).unwrap();
}

#[test]
fn records_and_versions_survive_a_reopen() {
    let (_dir, path) = scratch();
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut batch = Batch::new();
        batch.put("t", b"k", Expect::Absent, b"v1".to_vec());
        block_on(store.commit(batch)).unwrap();
        let mut batch = Batch::new();
        batch.put("t", b"k", Expect::Version(1), b"v2".to_vec());
        block_on(store.commit(batch)).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let record = block_on(store.get("t", b"k")).unwrap().unwrap();
    assert_eq!((record.version, &record.value[..]), (2, &b"v2"[..]));
    let wal = path.with_extension("sqlite3-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL is checkpointed and truncated on close"
    );
}

#[test]
fn the_file_holds_no_plaintext_and_no_identifier() {
    let (_dir, path) = scratch();
    let sealer = Sealer::new(&StorageKey::from_bytes([9; 32]));
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut txn = Txn::new(&store, &sealer);
        let name = sealer.name("sessions", &[b"@alice:example.org"]);
        txn.insert(
            "sessions",
            &name,
            1,
            Zeroizing::new(b"very secret ratchet".to_vec()),
        );
        block_on(txn.commit(&mut rand::rng())).unwrap();
    }
    let file = std::fs::read(&path).unwrap();
    for needle in [&b"very secret"[..], b"@alice", b"example.org"] {
        assert!(!file.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn a_newer_database_schema_is_refused_not_damaged() {
    let (_dir, path) = scratch();
    drop(SqliteStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(ref m) if m.contains("newer")),
        "{err:?}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let (_dir, path) = scratch();
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    assert!(SqliteStore::open(&path).is_err());
}

#[test]
fn scans_page_through_many_records_in_key_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut batch = Batch::new();
    for i in (0u32..1000).rev() {
        batch.put("t", &i.to_be_bytes(), Expect::Absent, vec![]);
    }
    block_on(store.commit(batch)).unwrap();
    let mut range = KeyRange::all();
    let mut seen = Vec::new();
    loop {
        let page = block_on(store.scan("t", &range, 128)).unwrap();
        let Some((last, _)) = page.last() else { break };
        range = range.after(last);
        seen.extend(
            page.into_iter()
                .map(|(k, _)| u32::from_be_bytes(k.try_into().unwrap())),
        );
    }
    assert_eq!(seen, (0..1000).collect::<Vec<_>>());
}

#[test]
fn nothing_is_written_while_idle() {
    let (_dir, path) = scratch();
    let store = SqliteStore::open(&path).unwrap();
    let mut batch = Batch::new();
    batch.put("t", b"k", Expect::Absent, b"v".to_vec());
    block_on(store.commit(batch)).unwrap();
    let files = |path: &std::path::Path| {
        ["", "-wal", "-shm"].map(|suffix| {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            std::fs::metadata(&file)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap()))
        })
    };
    let before = files(&path);
    // Reads are not writes either.
    for _ in 0..100 {
        block_on(store.get("t", b"k")).unwrap();
        block_on(store.scan("t", &KeyRange::all(), 10)).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        files(&path),
        before,
        "no file changed while the store was idle"
    );
}

#[test]
fn only_loss_tolerant_commits_run_under_normal_and_unmarked_ones_stay_full() {
    let (_dir, path) = scratch();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.synchronous().unwrap(), Durability::Full);
    let commit = |version: u64, durability: CommitDurability| {
        let mut batch = Batch::new();
        let expect = if version == 0 {
            Expect::Absent
        } else {
            Expect::Version(version)
        };
        batch.put("t", b"k", expect, vec![version as u8]);
        batch.durability = durability;
        block_on(store.commit(batch)).unwrap();
        // The level the connection is at after a commit is the one that commit ran under.
        store.synchronous().unwrap()
    };
    assert_eq!(commit(0, CommitDurability::Durable), Durability::Full);
    assert_eq!(
        commit(1, CommitDurability::LossTolerant),
        Durability::Normal
    );
    assert_eq!(
        commit(2, CommitDurability::LossTolerant),
        Durability::Normal
    );
    assert_eq!(commit(3, CommitDurability::Durable), Durability::Full);
    assert_eq!(commit(4, CommitDurability::Durable), Durability::Full);
    // A refused loss-tolerant batch changes nothing, and the next durable commit is FULL.
    let mut stale = Batch::new();
    stale.put("t", b"k", Expect::Version(1), vec![0]);
    stale.durability = CommitDurability::LossTolerant;
    assert!(matches!(
        block_on(store.commit(stale)),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(block_on(store.get("t", b"k")).unwrap().unwrap().version, 5);
    assert_eq!(commit(5, CommitDurability::Durable), Durability::Full);

    // A store opened with NORMAL keeps every commit at NORMAL.
    drop(store);
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    let store = SqliteStore::open_with(&path, &options).unwrap();
    let mut batch = Batch::new();
    batch.put("t", b"k", Expect::Version(6), vec![6]);
    block_on(store.commit(batch)).unwrap();
    assert_eq!(store.synchronous().unwrap(), Durability::Normal);
}
