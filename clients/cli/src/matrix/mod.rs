//! `olmo matrix ...`: room dumps decrypted with key exports, key files in and out of a store.
//!
//! The commands drive the Matrix machine ([`olmo::matrix::Machine`]) as a device of its own
//! (`@olmo-cli:localhost`, device `OLMOCLI`): its store holds the imported room keys and the
//! replay record, each change committed once, so an interrupted command leaves the store as
//! it was after its last commit.

mod batch;
pub mod decrypt;
mod input;
pub mod keys;
mod output;
mod raw_event;
mod verify;
mod writer;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use olmo::crypto::base64;
use olmo::matrix::Machine;
use olmo::persist::StorageKey;
use olmo::store::{Backend, MemoryStore, block_on};
use olmo_sqlite::{Durability, Options, SqliteStore};
use zeroize::Zeroizing;

use crate::args::{PassphraseArgs, StoreSpec};

/// The user the command's own device belongs to.
const USER_ID: &str = "@olmo-cli:localhost";
/// The command's device id.
const DEVICE_ID: &str = "OLMOCLI";
/// The environment variable holding a store's key (32 bytes, base64).
const STORE_KEY_VAR: &str = "OLMO_STORE_KEY";

/// Opens the machine on an SQLite store, creating it (and its key file) on first use.
pub fn open_sqlite(spec: &StoreSpec) -> Result<Machine<SqliteStore>, String> {
    let StoreSpec::Sqlite(path) = spec;
    let key = store_key(path)?;
    // NORMAL: a commit survives the process being killed (what --resume relies on); on a
    // power loss the last commits may be lost, and a rerun redoes them from the key file.
    let options = Options {
        durability: Durability::Normal,
        ..Options::default()
    };
    let store = SqliteStore::open_with(path, &options)
        .map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    open(store, &key, path)
}

/// A machine whose store lives in memory and is gone when the command ends.
pub fn open_memory() -> Result<Machine<MemoryStore>, String> {
    let key = StorageKey::from_bytes(random_key());
    // Never persisted: its records need no sealing.
    open(MemoryStore::ephemeral(), &key, Path::new("memory"))
}

fn open<B: Backend>(store: B, key: &StorageKey, path: &Path) -> Result<Machine<B>, String> {
    block_on(Machine::open(
        store,
        key,
        USER_ID,
        DEVICE_ID,
        &mut rand::rng(),
    ))
    .map_err(|e| match e {
        olmo::matrix::MachineError::Store(olmo::store::StoreError::Corrupt { .. }) => format!(
            "the store {} does not open with this key ({STORE_KEY_VAR} or its .key file): {e}",
            path.display()
        ),
        e => format!("the store {}: {e}", path.display()),
    })
}

/// The store's key: from the environment, or from `PATH.key`, made on first use.
fn store_key(path: &Path) -> Result<StorageKey, String> {
    if let Ok(text) = std::env::var(STORE_KEY_VAR) {
        return decode_key(&text).ok_or(format!("{STORE_KEY_VAR} must be 32 bytes of base64"));
    }
    let mut key_path = PathBuf::from(path);
    key_path.as_mut_os_string().push(".key");
    match std::fs::read_to_string(&key_path) {
        Ok(text) => decode_key(text.trim()).ok_or(format!(
            "{} must hold 32 bytes of base64",
            key_path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&key_path)
                .map_err(|e| format!("cannot create {}: {e}", key_path.display()))?;
            let text = base64::encode_secret(&key);
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
            Ok(StorageKey::from_bytes(key))
        }
        Err(e) => Err(format!("cannot read {}: {e}", key_path.display())),
    }
}

fn decode_key(text: &str) -> Option<StorageKey> {
    let bytes = base64::decode_secret(text).ok()?;
    let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(StorageKey::from_bytes(key))
}

fn random_key() -> [u8; 32] {
    use rand::RngExt as _;
    rand::rng().random()
}

/// The passphrase of a key file: from a file's first line, or from the environment.
pub fn passphrase(args: &PassphraseArgs) -> Result<Zeroizing<String>, String> {
    if let Some(path) = &args.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the passphrase file {}: {e}", path.display()))?,
        );
        let line = text.lines().next().unwrap_or_default();
        return Ok(Zeroizing::new(line.to_owned()));
    }
    std::env::var(&args.passphrase_env)
        .map(Zeroizing::new)
        .map_err(|_| {
            format!(
                "set the environment variable {} to the key file's passphrase, or pass \
                 --passphrase-file PATH (a passphrase is never taken from the command line)",
                args.passphrase_env
            )
        })
}
