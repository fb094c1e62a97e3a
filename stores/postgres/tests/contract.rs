//! The PostgreSQL backend under the store contract, on a cluster the test starts: the
//! conformance suite with two handles (two connection pools) on one database, what survives a
//! reconnect, what the database holds for a reader with no key, schema versions, and errors
//! that never show the connection string.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod cluster;

use cluster::Cluster;
use olmo::persist::StorageKey;
use olmo::store::{
    Backend, Batch, Expect, KeyRange, Sealer, StoreError, Txn, block_on, conformance,
};
use olmo_postgres::{Options, PostgresStore};
use zeroize::Zeroizing;

#[test]
fn two_handles_on_one_database_pass_the_conformance_suite() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let first = PostgresStore::connect(&cluster.connection_string()).unwrap();
    let second = PostgresStore::connect(&cluster.connection_string()).unwrap();
    let passed = block_on(conformance::run(&first, &second)).unwrap();
    assert_eq!(passed, conformance::CHECKS.len());
}

#[test]
fn the_suite_passes_on_one_connection_per_handle_and_records_survive_a_reconnect() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let options = Options {
        connections: 1,
        ..Options::default()
    };
    let url = cluster.create_database("single");
    {
        let first = PostgresStore::connect_with(&url, &options).unwrap();
        let second = PostgresStore::connect_with(&url, &options).unwrap();
        block_on(conformance::run(&first, &second)).unwrap();
    }
    let store = PostgresStore::connect(&url).unwrap();
    let record = block_on(store.get("conformance.handles", b"k"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.version, &record.value[..]),
        (2, &b"from second"[..])
    );
}

#[test]
fn the_database_holds_no_plaintext_and_no_identifier() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let sealer = Sealer::new(&StorageKey::from_bytes([9; 32]));
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
    let mut txn = Txn::new(&store, &sealer);
    let name = sealer.name("sessions", &[b"@alice:example.org"]);
    txn.insert(
        "sessions",
        &name,
        1,
        Zeroizing::new(b"very secret ratchet".to_vec()),
    );
    block_on(txn.commit(&mut rand::rng())).unwrap();
    // What a backup holds: pg_dump's text, where bytea is hex.
    let dump = cluster.dump();
    assert!(
        dump.contains("olmo_records"),
        "the dump has the records table"
    );
    for needle in ["very secret", "@alice", "example.org"] {
        let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !dump.contains(needle) && !dump.contains(&hex),
            "{needle} in the dump"
        );
    }
}

#[test]
fn a_newer_database_schema_is_refused_not_damaged() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let url = cluster.connection_string();
    let store = PostgresStore::connect(&url).unwrap();
    let mut batch = Batch::new();
    batch.put("t", b"k", Expect::Absent, b"kept".to_vec());
    block_on(store.commit(batch)).unwrap();
    drop(store);
    psql(&cluster, "UPDATE olmo_schema SET version = 99");
    let err = PostgresStore::connect(&url).unwrap_err();
    assert!(
        matches!(err, StoreError::Backend(ref m) if m.contains("newer")),
        "{err:?}"
    );
    psql(
        &cluster,
        &format!(
            "UPDATE olmo_schema SET version = {}",
            olmo_postgres::SCHEMA_VERSION
        ),
    );
    let store = PostgresStore::connect(&url).unwrap();
    let record = block_on(store.get("t", b"k")).unwrap().unwrap();
    assert_eq!(record.value, b"kept");
}

/// Runs one SQL statement through a store-less connection (the test's own tool, not the API).
fn psql(cluster: &Cluster, sql: &str) {
    query(cluster, sql);
}

/// The first column of every row `sql` gives, as text.
fn query(cluster: &Cluster, sql: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = cluster
            .connection_string()
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        let rows = client.simple_query(sql).await.unwrap();
        drop(client);
        driver.await.unwrap().unwrap();
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0)?.to_owned()),
                _ => None,
            })
            .collect()
    })
}

#[test]
fn scans_and_gets_walk_the_primary_key_index() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
    for table in ["a", "t", "z"] {
        let mut batch = Batch::new();
        for i in 0u32..3000 {
            batch.put(table, &i.to_be_bytes(), Expect::Absent, vec![0; 64]);
        }
        block_on(store.commit(batch)).unwrap();
    }
    psql(&cluster, "ANALYZE olmo_records");
    for sql in [
        "SELECT key, version, value FROM olmo_records WHERE tbl = 't' AND key > '\\x00000100'::bytea \
         AND key < '\\x00000200'::bytea ORDER BY key LIMIT 50",
        "SELECT key, version, value FROM olmo_records WHERE tbl = 't' ORDER BY key LIMIT 50",
        "SELECT version, value FROM olmo_records WHERE tbl = 't' AND key = '\\x00000010'::bytea",
    ] {
        let plan = query(&cluster, &format!("EXPLAIN {sql}")).join("\n");
        assert!(
            plan.contains("Index Scan using olmo_records_pkey"),
            "{plan}"
        );
        assert!(!plan.contains("Sort"), "{plan}");
    }
}

#[test]
fn errors_never_show_the_connection_string() {
    let secret = "hunter2-very-secret";
    let unreachable =
        format!("host=127.0.0.1 port=1 user=postgres password={secret} dbname=x connect_timeout=2");
    let malformed = format!("host=127.0.0.1 password='{secret}");
    for string in [unreachable, malformed] {
        let error = PostgresStore::connect(&string).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn a_store_reconnects_after_the_server_closed_its_connections() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
    let mut batch = Batch::new();
    batch.put("t", b"k", Expect::Absent, b"v".to_vec());
    block_on(store.commit(batch)).unwrap();
    psql(
        &cluster,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'olmo' AND pid <> pg_backend_pid()",
    );
    // The first operation may see the closed connection; the next reconnects.
    let mut result = block_on(store.get("t", b"k"));
    for _ in 0..3 {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        result = block_on(store.get("t", b"k"));
    }
    assert_eq!(result.unwrap().unwrap().value, b"v");
}

#[test]
fn scans_page_through_many_records_in_key_order() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
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
fn futures_run_inside_a_tokio_runtime_too() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut batch = Batch::new();
        batch.put("t", b"k", Expect::Absent, b"v".to_vec());
        store.commit(batch).await.unwrap();
        assert_eq!(store.get("t", b"k").await.unwrap().unwrap().version, 1);
        // Dropped inside the runtime: no blocking, no panic.
        drop(store);
    });
}

#[test]
fn threads_sharing_one_handle_lose_no_update() {
    const THREADS: u64 = 6;
    const INCREMENTS: u64 = 40;
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    // More threads than connections: operations wait for a connection of the pool.
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
    let conflicts = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let mut done = 0;
                while done < INCREMENTS {
                    let found = block_on(store.get("t", b"counter")).unwrap();
                    let (expect, value) = match found {
                        Some(r) => (
                            Expect::Version(r.version),
                            u64::from_be_bytes(r.value[..].try_into().unwrap()),
                        ),
                        None => (Expect::Absent, 0),
                    };
                    let mut batch = Batch::new();
                    batch.put("t", b"counter", expect, (value + 1).to_be_bytes().to_vec());
                    match block_on(store.commit(batch)) {
                        Ok(()) => done += 1,
                        Err(StoreError::Conflict(c)) => {
                            assert_eq!((c.table.as_str(), &c.key[..]), ("t", &b"counter"[..]));
                            conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    let record = block_on(store.get("t", b"counter")).unwrap().unwrap();
    assert_eq!(record.value, (THREADS * INCREMENTS).to_be_bytes());
    assert_eq!(record.version, THREADS * INCREMENTS);
    assert!(conflicts.into_inner() > 0, "the threads never met");
}

#[test]
fn names_postgres_cannot_hold_are_errors_not_panics() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let store = PostgresStore::connect(&cluster.connection_string()).unwrap();
    // PostgreSQL text holds no NUL; olmo's own table names never have one.
    let table = "bad\0table";
    let mut batch = Batch::new();
    batch.put(table, b"k", Expect::Absent, b"v".to_vec());
    assert!(matches!(
        block_on(store.commit(batch)),
        Err(StoreError::Backend(_))
    ));
    assert!(block_on(store.get(table, b"k")).is_err());
    assert!(block_on(store.scan(table, &KeyRange::all(), 10)).is_err());
    // The connection is still good afterwards.
    let mut batch = Batch::new();
    batch.put("good", b"k", Expect::Absent, b"v".to_vec());
    block_on(store.commit(batch)).unwrap();
}

#[test]
fn tls_is_used_when_required_and_the_server_certificate_is_checked() {
    let Some(cluster) = Cluster::start_with_tls_or_skip() else {
        return;
    };
    let url = format!("{} sslmode=require", cluster.connection_string());
    // A certificate from a CA nobody trusts is refused.
    let error = PostgresStore::connect(&url).unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    let options = Options {
        root_certificates_pem: Some(cluster.ca_pem()),
        ..Options::default()
    };
    let store = PostgresStore::connect_with(&url, &options).unwrap();
    let mut batch = Batch::new();
    batch.put("t", b"k", Expect::Absent, b"v".to_vec());
    block_on(store.commit(batch)).unwrap();
    let encrypted = query(
        &cluster,
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'olmo' AND ssl",
    );
    assert_ne!(encrypted, ["0"], "the store's connections are TLS");
    let plain = query(
        &cluster,
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'olmo' AND NOT ssl",
    );
    assert_eq!(plain, ["0"], "no store connection is plain");
}
