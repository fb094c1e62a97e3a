//! Another process of the account committing between an operation's reads: the machine reads
//! the account record and the session clocks, then the session slots, so a commit in between
//! can show it a slot newer than the clocks. That is a race, not corruption: the operation runs
//! again on fresh reads.

use std::future::Future;
use std::sync::{Arc, Mutex};

use olmo::persist::StorageKey;
use olmo::store::{Backend, Batch, MaybeSend, MemoryStore, StoreError, block_on};
use olmo::xmpp::XmppMachine;

use super::common::rng::TestRng;
use super::server::Server;
use super::{Device, NOW, bodies};

include!("../../stores/test-support/forward.rs");

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

type Hook = Box<dyn FnOnce() + Send>;

/// The machine's table of session slots.
const SESSIONS: &str = "xmpp.sessions";

/// A [`MemoryStore`] that runs a hook (another process's commit) before its next read of a
/// session slot.
#[derive(Clone, Default)]
struct Interleaving {
    inner: MemoryStore,
    before_slot_read: Arc<Mutex<Option<Hook>>>,
}

impl Interleaving {
    fn run_hook(&self, table: &str) {
        if table == SESSIONS {
            let hook = self.before_slot_read.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
    }
}

impl Backend for Interleaving {
    forward_reads!(|this, table| this.run_hook(table), &this.inner);

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        self.inner.commit(batch)
    }
}

#[test]
fn a_commit_between_the_account_and_session_reads_is_retried_not_called_corruption() {
    let mut server = Server::new();
    let store = Interleaving::default();
    let mut juliet = Device::new(&mut server, JULIET, 81);
    let mut romeo = Device::open(&mut server, store.clone(), ROMEO, 82);
    romeo.send(&mut server, JULIET, "first");

    // A second process of Romeo's device over the same records.
    let key = StorageKey::from_bytes([82; 32]);
    let other = block_on(XmppMachine::open(
        store.inner.clone(),
        &key,
        ROMEO,
        NOW,
        &mut TestRng::new(83),
    ))
    .unwrap();
    let sent = Arc::new(Mutex::new(None));
    let other_sent = Arc::clone(&sent);
    *store.before_slot_read.lock().unwrap() = Some(Box::new(move || {
        let outcome = block_on(other.encrypt(
            &[JULIET],
            JULIET,
            "from the other process",
            NOW,
            &mut TestRng::new(84),
        ))
        .unwrap();
        *other_sent.lock().unwrap() = Some(outcome);
    }));
    let mine = block_on(
        romeo
            .machine
            .encrypt(&[JULIET], JULIET, "second", NOW, &mut romeo.rng),
    )
    .unwrap();
    let theirs = sent.lock().unwrap().take().expect("the hook ran");
    for outcome in [theirs, mine] {
        server.send(
            ROMEO,
            JULIET,
            outcome.stanzas[0].version,
            &outcome.stanzas[0].payload,
        );
    }
    let read = juliet.catch_up(&mut server);
    assert!(read.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(bodies(&read), ["first", "from the other process", "second"]);
}

/// The other process decrypts the very stanza this one is decrypting, between this one's read
/// of the stanza's processed record (absent) and its read of the session (now past the
/// message): the committed outcome is the answer, not a duplicate message.
#[test]
fn a_stanza_decrypted_by_another_process_between_reads_gives_its_outcome() {
    let mut server = Server::new();
    let store = Interleaving::default();
    let mut juliet = Device::new(&mut server, JULIET, 91);
    let mut romeo = Device::open(&mut server, store.clone(), ROMEO, 92);
    romeo.send(&mut server, JULIET, "hello");
    juliet.catch_up(&mut server);
    juliet.send(&mut server, ROMEO, "first");
    let read = romeo.catch_up(&mut server);
    assert_eq!(bodies(&read), ["first"], "{read:?}");
    juliet.send(&mut server, ROMEO, "second");
    let message = server
        .archive(ROMEO, 0)
        .into_iter()
        .rfind(|m| m.from == JULIET)
        .unwrap();

    let key = StorageKey::from_bytes([92; 32]);
    let other = block_on(XmppMachine::open(
        store.inner.clone(),
        &key,
        ROMEO,
        NOW,
        &mut TestRng::new(93),
    ))
    .unwrap();
    let theirs = Arc::new(Mutex::new(None));
    let other_read = Arc::clone(&theirs);
    let stanza = message.clone();
    *store.before_slot_read.lock().unwrap() = Some(Box::new(move || {
        let outcome = block_on(other.decrypt(
            &stanza.from,
            &stanza.to,
            &stanza.payload,
            Some(&stanza.id),
            &mut TestRng::new(94),
        ))
        .unwrap();
        *other_read.lock().unwrap() = Some(outcome);
    }));
    let mine = block_on(romeo.machine.decrypt(
        &message.from,
        &message.to,
        &message.payload,
        Some(&message.id),
        &mut romeo.rng,
    ));
    let theirs = theirs.lock().unwrap().take().expect("the hook ran");
    assert_eq!(bodies(&[Ok(theirs)]), ["second"]);
    assert!(mine.is_ok(), "{mine:?}");
    assert_eq!(bodies(&[mine]), ["second"]);
}
