//! The conformance suite every [`Backend`] must pass, written once: the memory and SQLite
//! backends run it in the tests, and so do the stores of the bindings (IndexedDB, Kotlin,
//! Python, JavaScript) and PostgreSQL, each handing it two handles to one fresh, empty store
//! (two connections, two tabs, two processes' views).
//!
//! It uses tables whose names start with `conformance.` and leaves them as it found them only
//! in the sense that it never needs them empty again: run it on a scratch store.

use std::fmt;

use super::backend::{
    Backend, Batch, CommitDurability, Committed, Expect, Generation, KeyRange, Record, StoreError,
};

/// A check that failed: which, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check's name.
    pub check: &'static str,
    /// What was expected and what happened.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store conformance check `{}` failed: {}",
            self.check, self.detail
        )
    }
}

impl std::error::Error for Failure {}

/// The checks, by name, in the order [`run`] runs them.
pub const CHECKS: &[&str] = &[
    "absent records read as none",
    "puts number versions from 1",
    "a stale version conflicts and changes nothing",
    "inserting over a record conflicts",
    "a batch applies all or nothing",
    "deletes compare versions",
    "invalid batches are refused whole",
    "scan orders keys bytewise and pages",
    "tables are separate",
    "values of any size round-trip",
    "a second handle sees commits and conflicts",
    "a loss-tolerant batch is atomic and conflict-checked",
    "the generation changes with every commit, by either handle",
];

/// Runs every check against `first` and `second`, two handles to one fresh store. Returns how
/// many checks passed (all of [`CHECKS`]) or the first failure.
pub async fn run<B: Backend>(first: &B, second: &B) -> Result<usize, Failure> {
    absent(first).await?;
    versions(first).await?;
    stale(first).await?;
    insert_over(first).await?;
    all_or_nothing(first).await?;
    deletes(first).await?;
    invalid(first).await?;
    scan(first).await?;
    tables(first).await?;
    sizes(first).await?;
    two_handles(first, second).await?;
    loss_tolerant(first, second).await?;
    generations(first, second).await?;
    Ok(CHECKS.len())
}

fn fail(check: &'static str, detail: impl Into<String>) -> Failure {
    Failure {
        check,
        detail: detail.into(),
    }
}

/// Turns a backend error into a failure of `check`.
fn io<T>(check: &'static str, result: Result<T, StoreError>) -> Result<T, Failure> {
    result.map_err(|e| fail(check, format!("unexpected error: {e}")))
}

fn put(table: &str, key: &[u8], expect: Expect, value: &[u8]) -> Batch {
    let mut batch = Batch::new();
    batch.put(table, key, expect, value.to_vec());
    batch
}

fn record(version: u64, value: &[u8]) -> Option<Record> {
    Some(Record {
        version,
        value: value.to_vec(),
    })
}

async fn expect_record<B: Backend>(
    check: &'static str,
    backend: &B,
    table: &str,
    key: &[u8],
    want: Option<Record>,
) -> Result<(), Failure> {
    let got = io(check, backend.get(table, key).await)?;
    if got != want {
        return Err(fail(
            check,
            format!("{table}/{key:?}: expected {want:?}, got {got:?}"),
        ));
    }
    Ok(())
}

/// Commits and expects a conflict naming (table, key) with `found`.
async fn expect_conflict<B: Backend>(
    check: &'static str,
    backend: &B,
    batch: Batch,
    table: &str,
    key: &[u8],
    found: Option<u64>,
) -> Result<(), Failure> {
    match backend.commit(batch).await {
        Err(StoreError::Conflict(conflict))
            if conflict.table == table && conflict.key == key && conflict.found == found =>
        {
            Ok(())
        }
        other => Err(fail(
            check,
            format!("expected a conflict on {table}/{key:?} finding {found:?}, got {other:?}"),
        )),
    }
}

async fn absent<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[0];
    let t = "conformance.absent";
    expect_record(CHECK, backend, t, b"nothing", None).await?;
    io(
        CHECK,
        backend.commit(put(t, b"b", Expect::Absent, b"B")).await,
    )?;
    let keys = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"b".to_vec()];
    let got = io(CHECK, backend.get_many(t, &keys).await)?;
    let want = vec![None, record(1, b"B"), None, record(1, b"B")];
    if got != want {
        return Err(fail(CHECK, format!("get_many gave {got:?}")));
    }
    let none = io(CHECK, backend.get_many(t, &[]).await)?;
    if !none.is_empty() {
        return Err(fail(CHECK, "get_many of no keys gave records"));
    }
    io(CHECK, backend.commit(Batch::new()).await)
}

async fn versions<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[1];
    let t = "conformance.versions";
    io(
        CHECK,
        backend.commit(put(t, b"k", Expect::Absent, b"one")).await,
    )?;
    expect_record(CHECK, backend, t, b"k", record(1, b"one")).await?;
    io(
        CHECK,
        backend
            .commit(put(t, b"k", Expect::Version(1), b"two"))
            .await,
    )?;
    io(
        CHECK,
        backend
            .commit(put(t, b"k", Expect::Version(2), b"three"))
            .await,
    )?;
    expect_record(CHECK, backend, t, b"k", record(3, b"three")).await
}

async fn stale<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[2];
    let t = "conformance.stale";
    io(
        CHECK,
        backend.commit(put(t, b"k", Expect::Absent, b"one")).await,
    )?;
    io(
        CHECK,
        backend
            .commit(put(t, b"k", Expect::Version(1), b"two"))
            .await,
    )?;
    let batch = put(t, b"k", Expect::Version(1), b"lost update");
    expect_conflict(CHECK, backend, batch, t, b"k", Some(2)).await?;
    let batch = put(t, b"k", Expect::Version(3), b"from the future");
    expect_conflict(CHECK, backend, batch, t, b"k", Some(2)).await?;
    let batch = put(t, b"never", Expect::Version(1), b"x");
    expect_conflict(CHECK, backend, batch, t, b"never", None).await?;
    expect_record(CHECK, backend, t, b"k", record(2, b"two")).await?;
    expect_record(CHECK, backend, t, b"never", None).await
}

async fn insert_over<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[3];
    let t = "conformance.insert";
    io(
        CHECK,
        backend.commit(put(t, b"k", Expect::Absent, b"first")).await,
    )?;
    let batch = put(t, b"k", Expect::Absent, b"second");
    expect_conflict(CHECK, backend, batch, t, b"k", Some(1)).await?;
    expect_record(CHECK, backend, t, b"k", record(1, b"first")).await
}

async fn all_or_nothing<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[4];
    let t = "conformance.atomic";
    let u = "conformance.atomic.other";
    io(
        CHECK,
        backend.commit(put(t, b"held", Expect::Absent, b"v1")).await,
    )?;
    io(
        CHECK,
        backend.commit(put(u, b"gone", Expect::Absent, b"x")).await,
    )?;
    // Good writes on both sides of the one that conflicts, in two tables, and a delete.
    let mut batch = Batch::new();
    batch.put(t, b"a-new", Expect::Absent, b"A".to_vec());
    batch.delete(u, b"gone", Expect::Version(1));
    batch.put(t, b"held", Expect::Version(7), b"v2".to_vec());
    batch.put(u, b"z-new", Expect::Absent, b"Z".to_vec());
    expect_conflict(CHECK, backend, batch, t, b"held", Some(1)).await?;
    expect_record(CHECK, backend, t, b"a-new", None).await?;
    expect_record(CHECK, backend, u, b"gone", record(1, b"x")).await?;
    expect_record(CHECK, backend, t, b"held", record(1, b"v1")).await?;
    expect_record(CHECK, backend, u, b"z-new", None).await?;
    // The same batch with the right version applies whole.
    let mut batch = Batch::new();
    batch.put(t, b"a-new", Expect::Absent, b"A".to_vec());
    batch.delete(u, b"gone", Expect::Version(1));
    batch.put(t, b"held", Expect::Version(1), b"v2".to_vec());
    batch.put(u, b"z-new", Expect::Absent, b"Z".to_vec());
    io(CHECK, backend.commit(batch).await)?;
    expect_record(CHECK, backend, t, b"a-new", record(1, b"A")).await?;
    expect_record(CHECK, backend, u, b"gone", None).await?;
    expect_record(CHECK, backend, t, b"held", record(2, b"v2")).await?;
    expect_record(CHECK, backend, u, b"z-new", record(1, b"Z")).await
}

async fn deletes<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[5];
    let t = "conformance.delete";
    io(
        CHECK,
        backend.commit(put(t, b"k", Expect::Absent, b"v")).await,
    )?;
    let mut wrong = Batch::new();
    wrong.delete(t, b"k", Expect::Version(2));
    expect_conflict(CHECK, backend, wrong, t, b"k", Some(1)).await?;
    let mut missing = Batch::new();
    missing.delete(t, b"missing", Expect::Version(1));
    expect_conflict(CHECK, backend, missing, t, b"missing", None).await?;
    let mut right = Batch::new();
    right.delete(t, b"k", Expect::Version(1));
    io(CHECK, backend.commit(right).await)?;
    expect_record(CHECK, backend, t, b"k", None).await?;
    // A record created again starts over at version 1.
    io(
        CHECK,
        backend.commit(put(t, b"k", Expect::Absent, b"again")).await,
    )?;
    expect_record(CHECK, backend, t, b"k", record(1, b"again")).await
}

async fn invalid<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[6];
    let t = "conformance.invalid";
    let mut twice = Batch::new();
    twice.put(t, b"k", Expect::Absent, b"1".to_vec());
    twice.put(t, b"k", Expect::Absent, b"2".to_vec());
    let mut blind_delete = Batch::new();
    blind_delete.put(t, b"j", Expect::Absent, b"1".to_vec());
    blind_delete.delete(t, b"k", Expect::Absent);
    let mut no_table = Batch::new();
    no_table.put(t, b"i", Expect::Absent, b"1".to_vec());
    no_table.put("", b"k", Expect::Absent, b"1".to_vec());
    for batch in [twice, blind_delete, no_table] {
        match backend.commit(batch).await {
            Err(StoreError::InvalidBatch(_)) => {}
            other => return Err(fail(CHECK, format!("expected InvalidBatch, got {other:?}"))),
        }
    }
    for key in [&b"i"[..], b"j", b"k"] {
        expect_record(CHECK, backend, t, key, None).await?;
    }
    Ok(())
}

async fn scan<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[7];
    let t = "conformance.scan";
    let keys: [&[u8]; 9] = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x01\x02\x03",
        b"a",
        b"ab",
        b"b",
        b"\xff",
        b"\xff\xff",
    ];
    // Inserted out of order, across several commits.
    for chunk in [[8, 0, 4], [1, 7, 2], [6, 3, 5]] {
        let mut batch = Batch::new();
        for i in chunk {
            batch.put(t, keys[i], Expect::Absent, vec![i as u8]);
        }
        io(CHECK, backend.commit(batch).await)?;
    }
    let scan_keys = |records: Vec<(Vec<u8>, Record)>| -> Vec<Vec<u8>> {
        records.into_iter().map(|(k, _)| k).collect()
    };
    let all = io(CHECK, backend.scan(t, &KeyRange::all(), 100).await)?;
    if all
        .iter()
        .any(|(k, r)| keys.iter().position(|x| x == k) != r.value.first().map(|&i| usize::from(i)))
    {
        return Err(fail(CHECK, "a scanned key came with another key's value"));
    }
    let want: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    if scan_keys(all) != want {
        return Err(fail(CHECK, "scan of everything is not in byte order"));
    }
    // Pages of 2, continued after the last key.
    let mut paged = Vec::new();
    let mut range = KeyRange::all();
    loop {
        let page = io(CHECK, backend.scan(t, &range, 2).await)?;
        if page.len() > 2 {
            return Err(fail(CHECK, "scan returned more than its limit"));
        }
        let Some((last, _)) = page.last() else { break };
        range = range.after(last);
        paged.extend(scan_keys(page));
    }
    if paged != want {
        return Err(fail(CHECK, format!("paging gave {paged:?}")));
    }
    let cases: [(KeyRange, &[usize]); 5] = [
        (KeyRange::prefix(b"a"), &[4, 5]),
        (KeyRange::prefix(b"\xff"), &[7, 8]),
        (KeyRange::prefix(b"\x00"), &[1, 2]),
        (KeyRange::prefix(b"zz"), &[]),
        (
            KeyRange {
                start: std::ops::Bound::Excluded(b"b".to_vec()),
                end: std::ops::Bound::Included(b"a".to_vec()),
            },
            &[],
        ),
    ];
    for (range, indices) in cases {
        let got = scan_keys(io(CHECK, backend.scan(t, &range, 100).await)?);
        let want: Vec<Vec<u8>> = indices.iter().map(|&i| keys[i].to_vec()).collect();
        if got != want {
            return Err(fail(CHECK, format!("scan of {range:?} gave {got:?}")));
        }
    }
    let none = io(CHECK, backend.scan(t, &KeyRange::all(), 0).await)?;
    let empty = io(
        CHECK,
        backend
            .scan("conformance.scan.empty", &KeyRange::all(), 10)
            .await,
    )?;
    if !none.is_empty() || !empty.is_empty() {
        return Err(fail(CHECK, "a zero limit or an empty table gave records"));
    }
    Ok(())
}

async fn tables<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[8];
    let (t, u) = ("conformance.tables.a", "conformance.tables.b");
    io(
        CHECK,
        backend.commit(put(t, b"k", Expect::Absent, b"in a")).await,
    )?;
    expect_record(CHECK, backend, u, b"k", None).await?;
    io(
        CHECK,
        backend.commit(put(u, b"k", Expect::Absent, b"in b")).await,
    )?;
    io(
        CHECK,
        backend
            .commit(put(u, b"k", Expect::Version(1), b"in b, 2"))
            .await,
    )?;
    expect_record(CHECK, backend, t, b"k", record(1, b"in a")).await?;
    expect_record(CHECK, backend, u, b"k", record(2, b"in b, 2")).await?;
    // A table whose name is a prefix of another's shares nothing with it.
    let v = "conformance.tables.a.longer";
    let in_v = io(CHECK, backend.scan(v, &KeyRange::all(), 10).await)?;
    if !in_v.is_empty() {
        return Err(fail(CHECK, "a table saw another table's records"));
    }
    Ok(())
}

async fn sizes<B: Backend>(backend: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[9];
    let t = "conformance.sizes";
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let long_key = vec![0xa5; 1024];
    let mut batch = Batch::new();
    batch.put(t, b"empty", Expect::Absent, Vec::new());
    batch.put(t, b"big", Expect::Absent, big.clone());
    batch.put(t, &long_key, Expect::Absent, vec![0; 3]);
    batch.put(t, b"nul\x00inside", Expect::Absent, vec![0, 0, 0xff]);
    io(CHECK, backend.commit(batch).await)?;
    expect_record(CHECK, backend, t, b"empty", record(1, b"")).await?;
    expect_record(CHECK, backend, t, b"big", record(1, &big)).await?;
    expect_record(CHECK, backend, t, &long_key, record(1, &[0; 3])).await?;
    expect_record(
        CHECK,
        backend,
        t,
        b"nul\x00inside",
        record(1, &[0, 0, 0xff]),
    )
    .await?;
    expect_record(CHECK, backend, t, b"nul", None).await
}

async fn two_handles<B: Backend>(first: &B, second: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[10];
    let t = "conformance.handles";
    io(
        CHECK,
        first
            .commit(put(t, b"k", Expect::Absent, b"from first"))
            .await,
    )?;
    expect_record(CHECK, second, t, b"k", record(1, b"from first")).await?;
    // Both read version 1; the second to commit loses and the first's value stays.
    io(
        CHECK,
        second
            .commit(put(t, b"k", Expect::Version(1), b"from second"))
            .await,
    )?;
    let batch = put(t, b"k", Expect::Version(1), b"lost update from first");
    expect_conflict(CHECK, first, batch, t, b"k", Some(2)).await?;
    expect_record(CHECK, first, t, b"k", record(2, b"from second")).await?;
    // Both create the same new record: exactly one wins.
    io(
        CHECK,
        first.commit(put(t, b"new", Expect::Absent, b"first")).await,
    )?;
    let batch = put(t, b"new", Expect::Absent, b"second");
    expect_conflict(CHECK, second, batch, t, b"new", Some(1)).await?;
    expect_record(CHECK, second, t, b"new", record(1, b"first")).await
}

/// A batch marked [`CommitDurability::LossTolerant`] keeps every other rule: all or nothing,
/// compare-and-swap, seen by the other handle; and a durable commit after it works as usual.
async fn loss_tolerant<B: Backend>(first: &B, second: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[11];
    let t = "conformance.tolerant";
    let tolerant = |mut batch: Batch| {
        batch.durability = CommitDurability::LossTolerant;
        batch
    };
    io(
        CHECK,
        first
            .commit(tolerant(put(t, b"held", Expect::Absent, b"v1")))
            .await,
    )?;
    let mut batch = Batch::new();
    batch.put(t, b"a-new", Expect::Absent, b"A".to_vec());
    batch.put(t, b"held", Expect::Version(5), b"v2".to_vec());
    expect_conflict(CHECK, second, tolerant(batch), t, b"held", Some(1)).await?;
    expect_record(CHECK, first, t, b"a-new", None).await?;
    let mut batch = Batch::new();
    batch.put(t, b"a-new", Expect::Absent, b"A".to_vec());
    batch.put(t, b"held", Expect::Version(1), b"v2".to_vec());
    io(CHECK, second.commit(tolerant(batch)).await)?;
    expect_record(CHECK, first, t, b"a-new", record(1, b"A")).await?;
    expect_record(CHECK, first, t, b"held", record(2, b"v2")).await?;
    io(
        CHECK,
        first
            .commit(put(t, b"held", Expect::Version(2), b"v3"))
            .await,
    )?;
    expect_record(CHECK, second, t, b"held", record(3, b"v3")).await
}

/// A backend that reports a generation ([`Backend::generation`]) keeps it while nothing is
/// committed (reads included), reports the generations around each tracked commit, and sees
/// it change when the other handle commits. One that reports none tracks no commit either.
async fn generations<B: Backend>(first: &B, second: &B) -> Result<(), Failure> {
    const CHECK: &str = CHECKS[12];
    let t = "conformance.generation";
    let Some(start) = first.generation().await else {
        let batch = put(t, b"untracked", Expect::Absent, b"x");
        if io(CHECK, first.commit_tracked(batch).await)?.is_some() {
            return Err(fail(
                CHECK,
                "no generation, yet a tracked commit reported one",
            ));
        }
        return Ok(());
    };
    let same = |check: Option<Generation>, want: Generation, what: &str| {
        if check == Some(want) {
            Ok(())
        } else {
            Err(fail(
                CHECK,
                format!("{what}: expected {want:?}, got {check:?}"),
            ))
        }
    };
    expect_record(CHECK, first, t, b"k", None).await?;
    same(first.generation().await, start, "after a read")?;
    let tracked = |committed: Option<Committed>| {
        committed.ok_or_else(|| fail(CHECK, "a generation, yet a tracked commit reported none"))
    };
    let one = put(t, b"k", Expect::Absent, b"one");
    let one = tracked(io(CHECK, first.commit_tracked(one).await)?)?;
    same(Some(one.before), start, "before the first commit")?;
    if one.after == start {
        return Err(fail(CHECK, "a commit left the generation as it was"));
    }
    same(
        first.generation().await,
        one.after,
        "after the first commit",
    )?;
    // The other handle commits (untracked): the first's generation moves.
    let seen_by_second = second.generation().await;
    io(
        CHECK,
        second
            .commit(put(t, b"k", Expect::Version(1), b"two"))
            .await,
    )?;
    let now = first.generation().await;
    if now.is_none() || now == Some(one.after) {
        return Err(fail(CHECK, "the other handle's commit left the generation"));
    }
    if second.generation().await == seen_by_second {
        return Err(fail(CHECK, "a handle's own commit left its generation"));
    }
    // A tracked commit after it starts from the generation as now, not as last reported.
    let before = now.unwrap_or(start);
    let second_before = second.generation().await;
    let three = put(t, b"k", Expect::Version(2), b"three");
    let three = tracked(io(CHECK, first.commit_tracked(three).await)?)?;
    same(
        Some(three.before),
        before,
        "before a commit after the other's",
    )?;
    same(first.generation().await, three.after, "after it")?;
    if second.generation().await == second_before {
        return Err(fail(CHECK, "the other handle's commit left the generation"));
    }
    Ok(())
}
