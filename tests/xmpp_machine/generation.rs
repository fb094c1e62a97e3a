//! The records the machine keeps between operations while the backend reports no commit since
//! (`Backend::generation`): an operation on a store nobody else wrote reads nothing from it,
//! and a commit by another handle, before the operation or between its reads and its commit,
//! is seen (the trust decisions and device lists it wrote are honoured, a conflict retried).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use olmo::omemo::Version;
use olmo::persist::StorageKey;
use olmo::store::{
    Backend, Batch, Committed, Generation, MaybeSend, MemoryStore, StoreError, block_on,
};
use olmo::xmpp::{SkipReason, Trust, XmppMachine};

use super::common::rng::TestRng;
use super::server::Server;
use super::{Device, NOW, bodies};

include!("../../stores/test-support/forward.rs");

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

type Hook = Box<dyn FnOnce() + Send>;

/// A [`MemoryStore`] handle that reports its generation, counts the reads that reach it, and
/// may run a hook (another handle's commit) just before its next tracked commit applies.
#[derive(Clone, Default)]
struct Watched {
    inner: MemoryStore,
    reads: Arc<AtomicUsize>,
    before_commit: Arc<Mutex<Option<Hook>>>,
}

impl Watched {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

impl Backend for Watched {
    forward_reads!(
        |this, _table| this.reads.fetch_add(1, Ordering::Relaxed),
        &this.inner
    );

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        self.inner.commit(batch)
    }

    fn generation(&self) -> impl Future<Output = Option<Generation>> + MaybeSend {
        self.inner.generation()
    }

    fn commit_tracked(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<Option<Committed>, StoreError>> + MaybeSend {
        let hook = self.before_commit.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        self.inner.commit_tracked(batch)
    }
}

/// Romeo on a watched store, having sent Juliet one message; and a second machine of Romeo's
/// device over the same records (another process).
fn romeo_and_another() -> (
    Server,
    Device,
    Device<Watched>,
    Watched,
    XmppMachine<MemoryStore>,
) {
    let mut server = Server::new();
    let store = Watched::default();
    let mut juliet = Device::new(&mut server, JULIET, 21);
    let mut romeo = Device::open(&mut server, store.clone(), ROMEO, 22);
    romeo.send(&mut server, JULIET, "first");
    assert_eq!(bodies(&juliet.catch_up(&mut server)), ["first"]);
    let key = StorageKey::from_bytes([22; 32]);
    let other = block_on(XmppMachine::open(
        store.inner.clone(),
        &key,
        ROMEO,
        NOW,
        &mut TestRng::new(23),
    ))
    .unwrap();
    (server, juliet, romeo, store, other)
}

fn encrypt(romeo: &mut Device<Watched>) -> olmo::xmpp::EncryptOutcome {
    block_on(
        romeo
            .machine
            .encrypt(&[JULIET], JULIET, "again", NOW, &mut romeo.rng),
    )
    .unwrap()
}

#[test]
fn an_operation_after_our_own_commit_reads_nothing_from_the_store() {
    let (_server, _juliet, mut romeo, store, _other) = romeo_and_another();
    encrypt(&mut romeo);
    let before = store.reads();
    let outcome = encrypt(&mut romeo);
    assert_eq!(outcome.stanzas.len(), 1, "{outcome:?}");
    assert_eq!(store.reads(), before, "every record came from those kept");
}

#[test]
fn a_trust_decision_made_by_another_handle_is_honoured_by_the_next_encrypt() {
    let (_server, juliet, mut romeo, store, other) = romeo_and_another();
    assert_eq!(encrypt(&mut romeo).stanzas.len(), 1);
    let fingerprint = block_on(juliet.machine.fingerprint()).unwrap();
    block_on(other.set_trust(
        JULIET,
        &fingerprint,
        Trust::Distrusted,
        &mut TestRng::new(24),
    ))
    .unwrap();
    let before = store.reads();
    let outcome = encrypt(&mut romeo);
    assert!(
        store.reads() > before,
        "the other handle's commit made it read"
    );
    assert!(outcome.stanzas.is_empty(), "{outcome:?}");
    assert!(
        outcome
            .skipped
            .iter()
            .any(|s| s.jid == JULIET && s.reason == SkipReason::Distrusted),
        "{outcome:?}"
    );
}

#[test]
fn a_device_list_received_by_another_handle_is_honoured_by_the_next_encrypt() {
    let (_server, _juliet, mut romeo, _store, other) = romeo_and_another();
    assert_eq!(encrypt(&mut romeo).stanzas.len(), 1);
    // Juliet's only device leaves both of her lists.
    let mut rng = TestRng::new(25);
    for list in [
        "<devices xmlns='urn:xmpp:omemo:2'/>",
        "<list xmlns='eu.siacs.conversations.axolotl'/>",
    ] {
        block_on(other.receive_device_list(JULIET, list, &mut rng)).unwrap();
    }
    let outcome = encrypt(&mut romeo);
    assert!(outcome.stanzas.is_empty(), "{outcome:?}");
    assert!(outcome.skipped.is_empty(), "{outcome:?}");
}

/// The other handle encrypts (moving the same sessions) after this operation planned its
/// commit on the records it kept and before the commit applies: the commit conflicts, the
/// operation runs again on fresh reads, and Juliet reads both messages.
#[test]
fn a_commit_between_planning_and_committing_conflicts_and_the_retry_reads_afresh() {
    let (mut server, mut juliet, mut romeo, store, other) = romeo_and_another();
    let outcome = encrypt(&mut romeo);
    server.send(ROMEO, JULIET, Version::Omemo2, &outcome.stanzas[0].payload);
    let sent = Arc::new(Mutex::new(None));
    let other_sent = Arc::clone(&sent);
    *store.before_commit.lock().unwrap() = Some(Box::new(move || {
        let outcome = block_on(other.encrypt(
            &[JULIET],
            JULIET,
            "from the other process",
            NOW,
            &mut TestRng::new(26),
        ))
        .unwrap();
        *other_sent.lock().unwrap() = Some(outcome);
    }));
    let before = store.reads();
    let mine = block_on(
        romeo
            .machine
            .encrypt(&[JULIET], JULIET, "mine", NOW, &mut romeo.rng),
    )
    .unwrap();
    assert!(store.reads() > before, "the retry read the store");
    let theirs = sent.lock().unwrap().take().expect("the hook ran");
    for outcome in [theirs, mine] {
        let stanza = &outcome.stanzas[0];
        server.send(ROMEO, JULIET, stanza.version, &stanza.payload);
    }
    let read = juliet.catch_up(&mut server);
    assert!(read.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(bodies(&read), ["again", "from the other process", "mine"]);
    // And the next operation, with nobody else committing, is back to reading nothing.
    encrypt(&mut romeo);
    let before = store.reads();
    encrypt(&mut romeo);
    assert_eq!(store.reads(), before);
}

/// A commit by the other handle that touches none of the records this operation writes (a
/// trust decision) lands between planning and committing: the commit applies, but the records
/// kept are not the store's any more, so the next encrypt reads them and honours it.
#[test]
fn a_commit_elsewhere_between_planning_and_committing_drops_the_records_kept() {
    let (_server, juliet, mut romeo, store, other) = romeo_and_another();
    encrypt(&mut romeo);
    let fingerprint = block_on(juliet.machine.fingerprint()).unwrap();
    *store.before_commit.lock().unwrap() = Some(Box::new(move || {
        block_on(other.set_trust(
            JULIET,
            &fingerprint,
            Trust::Distrusted,
            &mut TestRng::new(27),
        ))
        .unwrap();
    }));
    assert_eq!(
        encrypt(&mut romeo).stanzas.len(),
        1,
        "planned before the decision"
    );
    let outcome = encrypt(&mut romeo);
    assert!(outcome.stanzas.is_empty(), "{outcome:?}");
}
