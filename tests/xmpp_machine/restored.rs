//! A store restored from a backup under a running machine: the machine reads the records as
//! restored. What it keeps between operations (parsed session slots, our identity, the sealer's
//! remembered records) is used again only for the very bytes it came from.

use std::future::Future;
use std::sync::{Arc, Mutex};

use olmo::store::{Backend, Batch, MaybeSend, MemoryStore, StoreError};

use super::server::Server;
use super::{Device, bodies};

include!("../../stores/test-support/forward.rs");

const ROMEO: &str = "romeo@montague.example";
const JULIET: &str = "juliet@capulet.example";

/// A memory store whose whole contents can be replaced by a backup's while in use.
#[derive(Clone, Default)]
struct Restorable(Arc<Mutex<MemoryStore>>);

impl Restorable {
    fn current(&self) -> MemoryStore {
        self.0.lock().unwrap().clone()
    }

    fn backup(&self) -> MemoryStore {
        self.current().fork()
    }

    fn restore(&self, backup: &MemoryStore) {
        *self.0.lock().unwrap() = backup.fork();
    }
}

impl Backend for Restorable {
    forward_reads!(|this| this.current());

    fn commit(&self, batch: Batch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        let store = self.current();
        async move { store.commit(batch).await }
    }
}

#[test]
fn a_backup_restored_under_a_running_machine_is_read_as_restored() {
    let mut server = Server::new();
    let mut romeo = Device::new(&mut server, ROMEO, 61);
    let store = Restorable::default();
    let mut juliet = Device::open(&mut server, store.clone(), JULIET, 62);

    romeo.send(&mut server, JULIET, "one");
    assert_eq!(bodies(&juliet.catch_up(&mut server)), ["one"]);
    let backup = store.backup();
    romeo.send(&mut server, JULIET, "two");
    romeo.send(&mut server, JULIET, "three");
    assert_eq!(bodies(&juliet.catch_up(&mut server)), ["two", "three"]);

    // Back to the backup: "two" and "three" were never read there, so they decrypt again, on
    // the sessions as restored (not on the ones the machine last held); "one" gives the
    // outcome the backup kept.
    store.restore(&backup);
    juliet.rewind();
    assert_eq!(
        bodies(&juliet.catch_up(&mut server)),
        ["one", "two", "three"]
    );
    romeo.send(&mut server, JULIET, "four");
    assert_eq!(bodies(&juliet.catch_up(&mut server)), ["four"]);
}
