//! Two machines of one account on two connections to one SQLite file, taking turns: each
//! keeps the records it read and committed between operations while SQLite reports no commit
//! since (its `data_version` and the handle's own commits), so each turn must see what the
//! other handle committed in between: the sessions it moved, a trust decision, a device list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../../../tests/xmpp_machine/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../../test-support/xmpp_world.rs"]
mod xmpp_world;

use olmo::store::{MemoryStore, block_on};
use olmo::xmpp::{EncryptOutcome, SkipReason, Trust, XmppMachine};
use olmo_sqlite::SqliteStore;
use rand::SeedableRng;
use rand::rngs::StdRng;
use server::{Message, Server};
use xmpp_world::{JULIET, NOW, ROMEO, body_of, join, meet, open};

fn encrypt(machine: &XmppMachine<SqliteStore>, body: &str, rng: &mut StdRng) -> EncryptOutcome {
    block_on(machine.encrypt(&[JULIET], JULIET, body, NOW, rng)).unwrap()
}

#[test]
fn two_handles_taking_turns_see_each_others_sessions_trust_and_device_lists() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("romeo.sqlite3");
    let mut rng = StdRng::seed_from_u64(0x9e4);
    let mut server = Server::new();
    let juliet = open(MemoryStore::new(), JULIET, &mut rng);
    join(&mut server, &juliet, &mut rng);
    let first = open(SqliteStore::open(&database).unwrap(), ROMEO, &mut rng);
    join(&mut server, &first, &mut rng);
    meet(&server, &first, JULIET, &mut rng);
    let second = open(SqliteStore::open(&database).unwrap(), ROMEO, &mut rng);

    // Turns, two in a row each (the second of a pair reads nothing): every element decrypts
    // at Juliet in order, so no handle reused a ratchet step the other had taken.
    for round in 0..4 {
        for (name, machine) in [("first", &first), ("second", &second)] {
            for i in 0..2 {
                let body = format!("{name} {round} {i}");
                let outcome = encrypt(machine, &body, &mut rng);
                assert_eq!(outcome.stanzas.len(), 1, "{outcome:?}");
                let message = Message {
                    id: format!("{round}-{name}-{i}"),
                    from: ROMEO.into(),
                    to: JULIET.into(),
                    version: outcome.stanzas[0].version,
                    payload: outcome.stanzas[0].payload.clone(),
                };
                assert_eq!(body_of(&juliet, &message, &mut rng).unwrap(), body);
            }
        }
    }

    // A decision made on the second handle: the first's next encrypt honours it, and its
    // reversal.
    let fingerprint = block_on(juliet.fingerprint()).unwrap();
    for (trust, stanzas) in [(Trust::Distrusted, 0), (Trust::Trusted, 1)] {
        block_on(second.set_trust(JULIET, &fingerprint, trust, &mut rng)).unwrap();
        let outcome = encrypt(&first, "after a decision", &mut rng);
        assert_eq!(outcome.stanzas.len(), stanzas, "{trust:?}: {outcome:?}");
        if trust == Trust::Distrusted {
            assert_eq!(outcome.skipped[0].reason, SkipReason::Distrusted);
        }
    }

    // Juliet's device leaves her lists, as the second handle hears: the first encrypts to
    // nobody.
    for list in [
        "<devices xmlns='urn:xmpp:omemo:2'/>",
        "<list xmlns='eu.siacs.conversations.axolotl'/>",
    ] {
        block_on(second.receive_device_list(JULIET, list, &mut rng)).unwrap();
    }
    let outcome = encrypt(&first, "to nobody", &mut rng);
    assert!(
        outcome.stanzas.is_empty() && outcome.skipped.is_empty(),
        "{outcome:?}"
    );
}
