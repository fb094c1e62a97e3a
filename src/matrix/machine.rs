//! The machine: one Matrix device's end-to-end encryption over a store. Every operation reads
//! what it needs in one transaction, computes every change, commits once, and only then returns
//! what the application may send or show; a commit that conflicts with another process is run
//! again from fresh reads.

use rand_core::CryptoRng;
use serde_json::Value;
use zeroize::Zeroizing;

use super::canonical;
use super::error::MachineError;
use super::records::{self, table};
use crate::codec::json::{Fields, ObjectWriter};
use crate::codec::json_value::object;
use crate::olm::{Account, IdentityKeys};
use crate::persist::StorageKey;
use crate::store::{Backend, Sealer, Txn, transact};

/// The Olm algorithm name.
pub const OLM_V1: &str = "m.olm.v1.curve25519-aes-sha2";
/// The Megolm algorithm name.
pub const MEGOLM_V1: &str = "m.megolm.v1.aes-sha2";

/// The account record's metadata.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct AccountMeta {
    pub user_id: String,
    pub device_id: String,
    /// The server accepted our device keys.
    pub device_keys_published: bool,
    /// The server's count of our unclaimed one-time keys, as last reported.
    pub server_one_time_keys: u64,
    /// The server reported no unused fallback key.
    pub fallback_needed: bool,
}

/// A record the application adds to an operation's commit (a decrypted event, a sync token),
/// sealed like the machine's own. Its table is `app.<table>`; its key is hashed.
#[derive(Debug, Clone)]
pub struct AppRecord {
    /// The table, without the `app.` prefix.
    pub table: String,
    /// The key, as the application names it (stored hashed).
    pub key: Vec<u8>,
    /// The contents.
    pub value: Zeroizing<Vec<u8>>,
}

/// One Matrix device's end-to-end encryption: Olm with other devices, Megolm in rooms, over a
/// store. Sans I/O: it takes and gives the Client-Server API's JSON bodies.
pub struct Machine<B: Backend> {
    pub(crate) backend: B,
    pub(crate) sealer: Sealer,
    pub(crate) user_id: String,
    pub(crate) device_id: String,
    pub(crate) keys: IdentityKeys,
    /// Megolm signing keys that room-event batches proved free of torsion (memory only).
    pub(crate) torsion_free_keys: std::sync::Mutex<crate::crypto::TorsionFreeKeys>,
    /// Inbound sessions' signing keys already decompressed (memory only, public keys).
    pub(crate) decoded_keys: std::sync::Mutex<crate::crypto::DecodedKeys>,
}

impl<B: Backend> std::fmt::Debug for Machine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// The account's record key (the table holds one record).
const ACCOUNT_KEY: &[u8] = b"account";

impl<B: Backend> Machine<B> {
    /// Opens the device `device_id` of `user_id` in `backend`, creating its account on first use
    /// (one commit). A store made for another user or device is [`MachineError::WrongAccount`].
    pub async fn open(
        backend: B,
        storage_key: &StorageKey,
        user_id: &str,
        device_id: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, MachineError> {
        // A store that lives and dies in this process keeps its records unencrypted (see
        // `Backend::is_ephemeral`); every other is sealed.
        let sealer = if backend.is_ephemeral() {
            Sealer::new(storage_key).passing_through()
        } else {
            Sealer::new(storage_key)
        };
        // Replaced by the stored account's keys below; the machine is not usable before.
        let placeholder = Account::with_rng(rng).identity_keys();
        let mut machine = Self {
            backend,
            sealer,
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            keys: placeholder,
            torsion_free_keys: Default::default(),
            decoded_keys: Default::default(),
        };
        let keys = transact!(machine, rng, |txn| {
            match machine.load_account(&mut txn).await {
                Ok((meta, account)) => {
                    if meta.user_id != user_id || meta.device_id != device_id {
                        Err(MachineError::WrongAccount)
                    } else {
                        Ok(account.identity_keys())
                    }
                }
                Err(MachineError::Corrupt("no account")) => {
                    let account = Account::with_rng(rng);
                    let meta = AccountMeta {
                        user_id: user_id.to_owned(),
                        device_id: device_id.to_owned(),
                        device_keys_published: false,
                        server_one_time_keys: 0,
                        fallback_needed: true,
                    };
                    machine.store_account(&mut txn, &meta, &account).await?;
                    Ok(account.identity_keys())
                }
                Err(error) => Err(error),
            }
        })?;
        machine.keys = keys;
        Ok(machine)
    }

    /// Our user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Our device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Our device's identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        self.keys
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The record key naming `parts` in `table`.
    pub(crate) fn name(&self, table: &str, parts: &[&[u8]]) -> Vec<u8> {
        self.sealer.name(table, parts)
    }

    pub(crate) async fn load_account(
        &self,
        txn: &mut Txn<'_, B>,
    ) -> Result<(AccountMeta, Account), MachineError> {
        let (meta, blobs): (AccountMeta, _) = records::load(txn, table::ACCOUNT, ACCOUNT_KEY)
            .await?
            .ok_or(MachineError::Corrupt("no account"))?;
        let blob = blobs.first().ok_or(MachineError::Corrupt("account"))?;
        let account = Account::from_record(blob).map_err(|_| MachineError::Corrupt("account"))?;
        Ok((meta, account))
    }

    pub(crate) async fn store_account(
        &self,
        txn: &mut Txn<'_, B>,
        meta: &AccountMeta,
        account: &Account,
    ) -> Result<(), MachineError> {
        let blob = account.to_record();
        Ok(records::store(txn, table::ACCOUNT, ACCOUNT_KEY, meta, &[&blob]).await?)
    }

    /// Signs `value` (canonical JSON without `signatures` and `unsigned`) with our device's
    /// Ed25519 key, adding the signature under our user and `ed25519:<device>`.
    pub(crate) fn sign_json(
        &self,
        account: &Account,
        value: &mut Value,
    ) -> Result<(), MachineError> {
        let bytes = canonical::signing_bytes(value)?;
        let signature = account.sign(bytes.as_bytes()).to_base64();
        let key_id = format!("ed25519:{}", self.device_id);
        let object = value
            .as_object_mut()
            .ok_or(MachineError::Json("not an object"))?;
        let signatures = object
            .entry("signatures")
            .or_insert_with(|| object! {})
            .as_object_mut()
            .ok_or(MachineError::Json("signatures"))?;
        let ours = signatures
            .entry(self.user_id.clone())
            .or_insert_with(|| object! {})
            .as_object_mut()
            .ok_or(MachineError::Json("signatures"))?;
        ours.insert(key_id, Value::String(signature));
        Ok(())
    }

    /// Our signed device keys, as `/keys/upload` and `/keys/query` carry them.
    pub(crate) fn device_keys(&self, account: &Account) -> Result<Value, MachineError> {
        let dev = &self.device_id;
        let mut keys = object! {
            "user_id" => self.user_id.as_str(),
            "device_id" => dev.as_str(),
            "algorithms" => vec![OLM_V1, MEGOLM_V1],
            "keys" => object! {
                format!("curve25519:{dev}") => account.curve25519_key().to_base64(),
                format!("ed25519:{dev}") => account.ed25519_key().to_base64(),
            },
        };
        self.sign_json(account, &mut keys)?;
        Ok(keys)
    }

    /// Reads one of the application's own records.
    pub async fn app_record(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, MachineError> {
        let table = format!("{}{table}", table::APP_PREFIX);
        let name = self.name(&table, &[key]);
        let mut txn = Txn::new(&self.backend, &self.sealer);
        Ok(txn.get(&table, &name).await?.map(|(_, value)| value))
    }

    /// Deletes a record that no longer opens ([`StoreError::Corrupt`] names its table and key,
    /// in hex), so the machine can go on without it: a corrupt Olm session is replaced at the
    /// next claim, a corrupt room key asked for again. The account's record is not dropped this
    /// way (without it the device is gone: make a new one).
    ///
    /// [`StoreError::Corrupt`]: crate::store::StoreError::Corrupt
    pub async fn drop_record(
        &self,
        table: &str,
        key_hex: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<(), MachineError> {
        if table == table::ACCOUNT {
            return Err(MachineError::Json("the account record is not dropped"));
        }
        let key = decode_hex(key_hex).ok_or(MachineError::Json("record key"))?;
        transact!(self, rng, |txn| {
            match txn.version(table, &key).await {
                Ok(Some(_)) => txn.delete(table, &key).map_err(MachineError::from),
                Ok(None) => Ok(()),
                Err(e) => Err(MachineError::from(e)),
            }
        })
    }

    /// Adds the application's records to an operation's transaction.
    pub(crate) async fn write_app_records(
        &self,
        txn: &mut Txn<'_, B>,
        app: &[AppRecord],
    ) -> Result<(), MachineError> {
        for record in app {
            let table = format!("{}{}", table::APP_PREFIX, record.table);
            let name = self.name(&table, &[&record.key]);
            txn.version(&table, &name).await?;
            txn.put(&table, &name, records::SCHEMA, record.value.clone())?;
        }
        Ok(())
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl records::Meta for AccountMeta {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object
            .str("user_id", &self.user_id)
            .str("device_id", &self.device_id)
            .bool("device_keys_published", self.device_keys_published)
            .u64("server_one_time_keys", self.server_one_time_keys)
            .bool("fallback_needed", self.fallback_needed);
        object.end();
    }

    fn read_json(value: &Value) -> Option<Self> {
        let fields = Fields::of(value)?;
        Some(Self {
            user_id: fields.str("user_id")?,
            device_id: fields.str("device_id")?,
            device_keys_published: fields.bool("device_keys_published")?,
            server_one_time_keys: fields.u64("server_one_time_keys")?,
            fallback_needed: fields.bool("fallback_needed")?,
        })
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    #[test]
    fn the_account_record_is_written_as_serde_wrote_it() {
        crate::codec::json::same_as_serde(&AccountMeta {
            user_id: "@me:x".into(),
            device_id: "DEV".into(),
            device_keys_published: true,
            server_one_time_keys: 50,
            fallback_needed: false,
        });
    }
}
