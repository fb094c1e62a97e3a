//! The XMPP machine on SQLite across processes. Juliet's device, in a child process, decrypts an
//! archive of Romeo's messages in order (each with its stanza id) and is killed with SIGKILL at
//! random points: after every kill the store opens, every message the child reported is given
//! back identically by a re-run (the processed-id record), and the final catch-up decrypts the
//! whole archive without an error. Then two processes of one account on one database encrypt at
//! the same time: every element either printed decrypts at the peer, none twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../test-support/child.rs"]
mod child;

#[allow(dead_code)]
#[path = "../../../tests/xmpp_machine/server.rs"]
mod server;
#[path = "../../test-support/xmpp_world.rs"]
mod xmpp_world;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use olmo::omemo::Version;
use olmo::store::{MemoryStore, block_on};
use olmo::xmpp::XmppError;
use olmo_sqlite::SqliteStore;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use server::{Message, Server};
use xmpp_world::{JULIET, NOW, ROMEO, body_of, join, line_of, meet, message_of, open};

const MESSAGES: usize = 300;
const ROUNDS: usize = 60;
const RACE_MESSAGES: usize = 25;

/// Juliet's device in `database`, and Romeo's archive of [`MESSAGES`] to her.
fn archive_for_juliet(database: &Path, rng: &mut StdRng) -> Vec<Message> {
    let mut server = Server::new();
    let juliet = open(SqliteStore::open(database).unwrap(), JULIET, rng);
    join(&mut server, &juliet, rng);
    let romeo = open(MemoryStore::new(), ROMEO, rng);
    join(&mut server, &romeo, rng);
    meet(&server, &romeo, JULIET, rng);
    for i in 0..MESSAGES {
        let outcome =
            block_on(romeo.encrypt(&[JULIET], JULIET, &format!("line {i}"), NOW, rng)).unwrap();
        assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
        for stanza in outcome.stanzas {
            server.send(ROMEO, JULIET, stanza.version, &stanza.payload);
        }
    }
    server.archive(JULIET, 0)
}

#[test]
fn decrypt_child() {
    let Some(database) = child::database("decrypt") else {
        return;
    };
    let archive: Vec<Message> = std::io::stdin()
        .lock()
        .lines()
        .map(|line| message_of(&line.unwrap()))
        .collect();
    let mut rng = StdRng::seed_from_u64(0);
    let juliet = open(SqliteStore::open(&database).unwrap(), JULIET, &mut rng);
    for message in &archive {
        let body = body_of(&juliet, message, &mut rng).unwrap();
        child::say(&format!("{}\t{body}", message.id));
    }
}

#[test]
fn juliet_killed_while_reading_the_archive_gives_back_every_reported_message() {
    if child::is_child() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("juliet.sqlite3");
    let mut rng = StdRng::seed_from_u64(0x0e_e0);
    let archive = archive_for_juliet(&database, &mut rng);
    assert_eq!(archive.len(), MESSAGES);
    let input: String = archive.iter().map(|m| line_of(m) + "\n").collect();
    // (stanza id, body) as the children reported them, each id once.
    let mut reported: Vec<(String, String)> = Vec::new();
    let mut rounds = 0;
    for round in 0..ROUNDS {
        rounds = round + 1;
        let mut child = child::spawn("decrypt_child", "decrypt", &database);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((id, body)) = child::said(&line).and_then(|rest| rest.split_once('\t'))
                {
                    let _ = tx.send((id.to_owned(), body.to_owned()));
                }
            }
        });
        // Kill after the child has reported a few messages it had not reported before.
        let wanted = rng.random_range(1..=15);
        let mut new = 0;
        while new < wanted {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(pair) => new += usize::from(note(&mut reported, pair, round)),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        let _ = child.kill();
        let _ = child.wait();
        reader.join().unwrap();
        for pair in rx.try_iter() {
            note(&mut reported, pair, round);
        }

        // The store opens and gives back every reported message as reported.
        let juliet = open(SqliteStore::open(&database).unwrap(), JULIET, &mut rng);
        for (id, body) in &reported {
            let message = archive.iter().find(|m| &m.id == id).unwrap();
            assert_eq!(
                &body_of(&juliet, message, &mut rng).unwrap(),
                body,
                "round {round}: {id}"
            );
        }
        if reported.len() == MESSAGES {
            break;
        }
    }
    // Catch-up of the whole archive: no error, every body in order.
    let juliet = open(SqliteStore::open(&database).unwrap(), JULIET, &mut rng);
    for (i, message) in archive.iter().enumerate() {
        assert_eq!(
            body_of(&juliet, message, &mut rng).unwrap(),
            format!("line {i}")
        );
    }
    println!(
        "{} of {MESSAGES} messages reported across {rounds} killed children, catch-up complete, {:?}",
        reported.len(),
        started.elapsed()
    );
}

/// Adds a reported (id, body) unless the id was reported before (then it must be the same
/// body); whether it was new.
fn note(reported: &mut Vec<(String, String)>, (id, body): (String, String), round: usize) -> bool {
    if let Some((_, known)) = reported.iter().find(|(known, _)| *known == id) {
        assert_eq!(known, &body, "round {round}: {id} changed");
        return false;
    }
    reported.push((id, body));
    true
}

#[test]
fn race_child() {
    let Some(database) = child::database("race") else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(u64::from(std::process::id()));
    let romeo = open(SqliteStore::open(&database).unwrap(), ROMEO, &mut rng);
    // Both children open first and start together, so their encryptions overlap.
    child::say("open");
    let go = std::io::stdin().lines().next().unwrap().unwrap();
    let mut done = 0;
    let mut failed = 0u32;
    while done < RACE_MESSAGES {
        let body = format!("{go} {done}");
        match block_on(romeo.encrypt(&[JULIET], JULIET, &body, NOW, &mut rng)) {
            Ok(outcome) => {
                assert_eq!(outcome.stanzas.len(), 1, "{:?}", outcome.skipped);
                child::say(&format!("{body}\t{}", outcome.stanzas[0].payload));
                done += 1;
            }
            // Conflicts beyond the machine's retries, or a lock wait that surfaced: again.
            Err(XmppError::Store(_)) if failed < 1_000 => failed += 1,
            Err(error) => panic!("encryption failed: {error}"),
        }
    }
    child::say(&format!("failed {failed}"));
}

#[test]
fn two_processes_of_one_account_encrypting_at_once_each_element_decrypts_once() {
    if child::is_child() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("romeo.sqlite3");
    let mut rng = StdRng::seed_from_u64(0x2ace);
    let mut server = Server::new();
    let juliet = open(MemoryStore::new(), JULIET, &mut rng);
    join(&mut server, &juliet, &mut rng);
    {
        let romeo = open(SqliteStore::open(&database).unwrap(), ROMEO, &mut rng);
        join(&mut server, &romeo, &mut rng);
        meet(&server, &romeo, JULIET, &mut rng);
    }
    let mut elements = Vec::new();
    let mut failed = 0;
    for lines in child::race("race_child", "race", &database, ["first", "second"]) {
        let before = elements.len();
        for rest in lines.iter().filter_map(|line| child::said(line)) {
            if let Some(count) = rest.strip_prefix("failed ") {
                failed += count.parse::<u32>().unwrap();
            } else if let Some((body, payload)) = rest.split_once('\t') {
                elements.push((body.to_owned(), payload.to_owned()));
            }
        }
        assert_eq!(
            elements.len() - before,
            RACE_MESSAGES,
            "a child did not finish"
        );
    }
    // Every element decrypts at Juliet, each once: a ratchet step taken by both processes would
    // show as a replay here.
    let mut bodies = BTreeSet::new();
    for (i, (body, payload)) in elements.iter().enumerate() {
        let message = Message {
            id: format!("race-{i}"),
            from: ROMEO.into(),
            to: JULIET.into(),
            version: Version::Omemo2,
            payload: payload.clone(),
        };
        assert_eq!(&body_of(&juliet, &message, &mut rng).unwrap(), body);
        assert!(bodies.insert(body.clone()), "{body} twice");
    }
    println!(
        "2 x {RACE_MESSAGES} encryptions on one database, {failed} store errors retried by the \
         children, all decrypted once, {:?}",
        started.elapsed()
    );
}
