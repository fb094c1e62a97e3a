//! The SQLite backend's costs: a sealed read-modify-write commit with `synchronous=FULL` and
//! `NORMAL`, and opening a store of 200,000 records to read one of them (the shape of a client
//! with a large key store that must decrypt one event at once).
//!
//! `OLMO_BENCH_QUICK=1` shortens every measurement (and the large store to 20,000 records).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../../../benches/common/summary.rs"]
mod summary;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use olmo::persist::StorageKey;
use olmo::store::{Backend, Batch, Expect, Sealer, Txn, block_on};
use olmo_sqlite::{Durability, Options, SqliteStore};
use zeroize::Zeroizing;

const TABLE: &str = "inbound_sessions";

fn sealer() -> Sealer {
    Sealer::new(&StorageKey::from_bytes([3; 32]))
}

/// One operation's commit: read a record, write it back changed, commit.
fn bump(store: &SqliteStore, sealer: &Sealer, name: &[u8], rng: &mut impl rand::CryptoRng) {
    let mut txn = Txn::new(store, sealer);
    let value = block_on(txn.get(TABLE, name)).unwrap();
    let mut bytes = value
        .map(|(_, v)| v.to_vec())
        .unwrap_or_else(|| vec![0; 240]);
    bytes[0] = bytes[0].wrapping_add(1);
    txn.put(TABLE, name, 1, Zeroizing::new(bytes)).unwrap();
    block_on(txn.commit(rng)).unwrap();
}

fn commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("sqlite commit (read, seal, write one 240-byte record)");
    summary::configure(&mut group);
    for (label, durability) in [("FULL", Durability::Full), ("NORMAL", Durability::Normal)] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            durability,
            ..Options::default()
        };
        let store = SqliteStore::open_with(dir.path().join("bench.sqlite3"), &options).unwrap();
        let sealer = sealer();
        let name = sealer.name(TABLE, &[b"!room:example.org", b"session"]);
        let mut rng = rand::rng();
        group.bench_function(label, |b| b.iter(|| bump(&store, &sealer, &name, &mut rng)));
    }
    group.finish();
}

fn large_store(c: &mut Criterion) {
    let count: u32 = if summary::quick() { 20_000 } else { 200_000 };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.sqlite3");
    let sealer = sealer();
    let mut rng = rand::rng();
    {
        let store = SqliteStore::open(&path).unwrap();
        let start = Instant::now();
        for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
            let mut batch = Batch::new();
            for &i in chunk {
                let name = sealer.name(TABLE, &[&i.to_be_bytes()]);
                let value = sealer.seal(TABLE, &name, 1, 1, &[7; 240], &mut rng);
                batch.put(TABLE, &name, Expect::Absent, value);
            }
            block_on(store.commit(batch)).unwrap();
        }
        let elapsed = start.elapsed();
        println!(
            "filled {count} sealed records in {:.2} s ({:.0} records/s)",
            elapsed.as_secs_f64(),
            f64::from(count) / elapsed.as_secs_f64()
        );
    }
    let mut group = c.benchmark_group(format!("sqlite store of {count} records"));
    summary::configure(&mut group);
    let mut i = 0u32;
    group.bench_function("open and read one record", |b| {
        b.iter(|| {
            i = (i + 7919) % count;
            let store = SqliteStore::open(&path).unwrap();
            let name = sealer.name(TABLE, &[&i.to_be_bytes()]);
            let record = block_on(store.get(TABLE, &name)).unwrap().unwrap();
            black_box(
                sealer
                    .open(TABLE, &name, record.version, &record.value)
                    .unwrap(),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, commits, large_store);
criterion_main!(benches);
