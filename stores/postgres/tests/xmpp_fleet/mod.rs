//! Two workers of one XMPP account on one PostgreSQL database: two OS processes drive Romeo's
//! `XmppMachine` on the same database at once, each encrypting messages to Juliet and both
//! reading Juliet's archive of messages to Romeo (each with its stanza id, as a catch-up does).
//! Then, from what the workers printed:
//! - every element a worker sent decrypts at Juliet, each once (an OMEMO message key used by
//!   both workers would show as a replay);
//! - every archived message was read, by each worker, to what Juliet wrote: the second reading
//!   of a message gives the first one's outcome from the store, it does not decrypt again;
//! - the workers' commits met conflicts, which were retried.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use olmo::omemo::Version;
use olmo::store::{MemoryStore, block_on};
use olmo::xmpp::XmppError;
use olmo_postgres::PostgresStore;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backends::ConflictCounting;
use crate::child;
use crate::cluster::Cluster;
use crate::server::{Message, Server};
use crate::xmpp_world::{
    JULIET, NOW, ROMEO, body_of, join, line_of, meet, message_of, open, read_lists,
};

/// Messages each worker sends.
const SENDS: usize = 30;
/// Messages in Juliet's archive to Romeo, which both workers read.
const ARCHIVE: usize = 40;

#[test]
fn xmpp_worker_child() {
    let Some(url) = child::database("xmpp-worker") else {
        return;
    };
    let conflicts = Arc::new(AtomicU64::new(0));
    let store = ConflictCounting::new(
        PostgresStore::connect(url.to_str().unwrap()).unwrap(),
        Arc::clone(&conflicts),
    );
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let romeo = open(store, ROMEO, &mut rng);
    child::say("open");
    let start = std::io::stdin().lines().next().unwrap().unwrap();
    let (worker, archive) = start.split_once(' ').unwrap();
    let archive: Vec<Message> = std::fs::read_to_string(archive)
        .unwrap()
        .lines()
        .map(message_of)
        .collect();
    let (mut sent, mut read, mut failed) = (0, 0, 0u64);
    while sent < SENDS || read < archive.len() {
        if sent < SENDS {
            let body = format!("worker {worker} message {sent}");
            match block_on(romeo.encrypt(&[JULIET], JULIET, &body, NOW, &mut rng)) {
                Ok(outcome) => {
                    assert_eq!(outcome.stanzas.len(), 1, "{:?}", outcome.skipped);
                    child::say(&format!("sent {body}\t{}", outcome.stanzas[0].payload));
                    sent += 1;
                }
                // Conflicts beyond the machine's own retries: again.
                Err(XmppError::Store(_)) if failed < 1_000 => failed += 1,
                Err(error) => panic!("encryption failed: {error}"),
            }
        }
        for _ in 0..2 {
            let Some(message) = archive.get(read) else {
                break;
            };
            match body_of(&romeo, message, &mut rng) {
                Ok(body) => {
                    child::say(&format!("read {}\t{body}", message.id));
                    read += 1;
                }
                Err(XmppError::Store(_)) if failed < 1_000 => failed += 1,
                Err(error) => panic!("decryption of {} failed: {error}", message.id),
            }
        }
    }
    child::say(&format!("conflicts {}", conflicts.load(Ordering::SeqCst)));
    child::say(&format!("failed {failed}"));
}

#[test]
fn two_workers_of_one_xmpp_account_reuse_no_message_key_and_read_each_message_once() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let url = cluster.connection_string();
    let mut rng = StdRng::seed_from_u64(0x0_fee7);
    let mut server = Server::new();
    let juliet = open(MemoryStore::new(), JULIET, &mut rng);
    join(&mut server, &juliet, &mut rng);
    {
        // Romeo starts the one session; Juliet reads his first message and writes back on it.
        let romeo = open(PostgresStore::connect(&url).unwrap(), ROMEO, &mut rng);
        join(&mut server, &romeo, &mut rng);
        meet(&server, &romeo, JULIET, &mut rng);
        read_lists(&server, &juliet, ROMEO, &mut rng);
        let hello = block_on(romeo.encrypt(&[JULIET], JULIET, "hello", NOW, &mut rng)).unwrap();
        let hello = server.send(ROMEO, JULIET, Version::Omemo2, &hello.stanzas[0].payload);
        assert_eq!(body_of(&juliet, &hello, &mut rng).unwrap(), "hello");
    }
    for i in 0..ARCHIVE {
        let body = format!("from juliet {i}");
        let outcome = block_on(juliet.encrypt(&[ROMEO], ROMEO, &body, NOW, &mut rng)).unwrap();
        for stanza in outcome.stanzas {
            server.send(JULIET, ROMEO, stanza.version, &stanza.payload);
        }
    }
    let archive: Vec<Message> = (server.archive(ROMEO, 0).into_iter())
        .filter(|m| m.from == JULIET)
        .collect();
    assert_eq!(archive.len(), ARCHIVE);
    let file = cluster.dir().join("archive.lines");
    let lines: String = archive.iter().map(|m| line_of(m) + "\n").collect();
    std::fs::write(&file, lines).unwrap();
    let starts = [0, 1].map(|w| format!("{w} {}", file.display()));
    let started = Instant::now();
    let outputs = child::race(
        "xmpp_fleet::xmpp_worker_child",
        "xmpp-worker",
        Path::new(&url),
        [&starts[0], &starts[1]],
    );
    let elapsed = started.elapsed();

    let (mut conflicts, mut failed) = (0, 0);
    let mut elements = Vec::new();
    for lines in &outputs {
        let mut reads = Vec::new();
        for said in lines.iter().filter_map(|l| child::said(l)) {
            if let Some(rest) = said.strip_prefix("sent ") {
                let (body, payload) = rest.split_once('\t').unwrap();
                elements.push((body.to_owned(), payload.to_owned()));
            } else if let Some(rest) = said.strip_prefix("read ") {
                reads.push(rest.split_once('\t').unwrap());
            }
        }
        // Each worker read the whole archive, each message to what Juliet wrote.
        assert_eq!(reads.len(), ARCHIVE, "a worker did not read the archive");
        for (message, (id, body)) in archive.iter().zip(&reads) {
            assert_eq!(&message.id, id);
            let i = archive.iter().position(|m| &m.id == id).unwrap();
            assert_eq!(*body, format!("from juliet {i}"));
        }
        conflicts += child::count_of(lines, "conflicts ");
        failed += child::count_of(lines, "failed ");
    }
    assert_eq!(elements.len(), 2 * SENDS, "a worker did not send all");

    // Every element decrypts at Juliet, each once: a message key both workers used would show
    // as a replay (or a wrong body) here.
    let mut bodies = BTreeSet::new();
    for (i, (body, payload)) in elements.iter().enumerate() {
        let message = Message {
            id: format!("fleet-{i}"),
            from: ROMEO.into(),
            to: JULIET.into(),
            version: Version::Omemo2,
            payload: payload.clone(),
        };
        assert_eq!(&body_of(&juliet, &message, &mut rng).unwrap(), body);
        assert!(bodies.insert(body.clone()), "{body} twice");
    }
    println!(
        "2 XMPP workers x ({SENDS} sends + {ARCHIVE} archived messages read) on PostgreSQL in \
         {elapsed:?}: every element decrypted once at the peer, {conflicts} commit conflicts \
         retried by the machine, {failed} operations retried by the workers"
    );
    assert!(conflicts > 0, "the workers never met: nothing was tested");
}
