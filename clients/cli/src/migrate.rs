//! `olmo migrate-account`: a libolm account pickle to olmo's storage format.

use std::io::{Read, Write};

use olmo::crypto::base64;
use olmo::olm::Account;
use olmo::persist::StorageKey;

/// Reads the pickle on stdin, writes the stored account (base64) on stdout.
pub fn migrate_account() -> Result<(), String> {
    let pickle_key = std::env::var("OLMO_LIBOLM_PICKLE_KEY")
        .map_err(|_| "set OLMO_LIBOLM_PICKLE_KEY to the libolm pickle key")?;
    let storage_key = std::env::var("OLMO_STORAGE_KEY")
        .map_err(|_| "set OLMO_STORAGE_KEY to 32 bytes of base64")?;
    let storage_key: [u8; 32] = base64::decode_secret(&storage_key)
        .ok()
        .and_then(|bytes| bytes.as_slice().try_into().ok())
        .ok_or("OLMO_STORAGE_KEY must be 32 bytes of base64")?;
    let mut pickle = String::new();
    std::io::stdin()
        .read_to_string(&mut pickle)
        .map_err(|e| e.to_string())?;
    let account =
        Account::from_libolm_pickle(&pickle, pickle_key.as_bytes()).map_err(|e| e.to_string())?;
    let stored = account.save(&StorageKey::from_bytes(storage_key));
    eprintln!("migrated account {}", account.curve25519_key());
    std::io::stdout()
        .write_all(base64::encode(stored).as_bytes())
        .map_err(|e| e.to_string())
}
