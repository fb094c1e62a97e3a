//! The XMPP machine: one OMEMO account (one device of both versions) over a store. Each
//! operation loads the device from its records (the account record, the session clocks, the
//! pre-keys only when it may use them, and the session slots it needs: one sender's for a
//! decrypt, the recipients' for an encrypt, all of them only when a device may be added), works
//! on it, and commits in one batch exactly the records it changed: the account record, the
//! pre-keys, the clocks, the slots written or removed. The device it assembled it keeps for
//! the next operation ([`super::memo::Kept`]), used again only while the records that
//! operation reads anyway are those the device stands for (another process's commit, or a
//! failed commit of ours, makes it assemble again from the records). Those records
//! themselves come from the store's records the last operation read and committed
//! ([`KnownSlot`]) while the backend reports no commit since, and from the backend otherwise.

use rand_core::CryptoRng;
#[cfg(any(test, feature = "serde"))]
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::XmppError;
use super::memo::{Kept, Memo, Name};
use super::tables::{self, ACCOUNT, ACCOUNT_KEY, CLOCK_KEY, PRE_KEYS_KEY, PROCESSED, SESSIONS};
use crate::omemo::{Clocks, OmemoDevice, PreKeyPair, SlotAddress, Version};
use crate::persist::StorageKey;
use crate::store::{
    Backend, Conflict, Expect, KeyRange, KnownSlot, Sealer, StoreError, Txn, transact_known,
};
use crate::time::Timestamp;
use crate::vec_map::VecMap;

/// How the machine decides about identity keys nobody decided about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(any(test, feature = "serde"), derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum TrustPolicy {
    /// Blind trust before verification (the default): every key of a contact is used until the
    /// user verifies one of them; after that, new keys wait for a decision.
    #[default]
    BlindTrustBeforeVerification,
    /// Trust on first use: a contact's first key is trusted, later ones wait for a decision.
    TrustOnFirstUse,
}

/// The account record's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(crate) struct AccountMeta {
    pub jid: String,
    pub device_id: u32,
    pub policy: TrustPolicy,
    /// The label published for our device in the OMEMO 2 device list.
    pub label: Option<String>,
}

/// Records read per page when loading the session slots.
const SLOT_PAGE: usize = 1_000;
/// Device ids are below 2^31 (XEP-0384), and not 0.
const MAX_DEVICE_ID: u32 = (1 << 31) - 1;

/// One OMEMO account over a store: the device, its sessions, the contacts' device lists and the
/// trust decisions. Sans I/O: it takes and gives the stanzas' XML payloads.
pub struct XmppMachine<B: Backend> {
    pub(crate) backend: B,
    pub(crate) sealer: Sealer,
    pub(crate) jid: String,
    /// Derived values kept between operations (never the store's contents).
    pub(crate) memo: Memo,
    /// The records the last operation read and committed, while the backend reports no
    /// commit since ([`KnownSlot`]): the next operation reads them from there.
    pub(crate) known: KnownSlot,
}

impl<B: Backend> std::fmt::Debug for XmppMachine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppMachine")
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

/// Whether an operation may use the account's pre-keys (a key exchange received, a bundle
/// published): only then are they read from the store, and only then written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreKeysUse {
    /// Read them (and write them if they changed).
    Needed,
    /// The operation touches no pre-key (every message on an established session, every
    /// session built, every device list): the device is made with the pre-keys the machine
    /// last held, which may be stale, and they are never written.
    Unused,
}

/// The pre-keys a device was made with.
enum PreKeysRead {
    /// Read from the store (or, schema 1 and 2, with the own record): their record as read.
    Read(Zeroizing<Vec<u8>>),
    /// The machine's last ones ([`PreKeysUse::Unused`]): not to be written.
    Held,
}

/// How an account read came by the pre-keys.
enum PreKeysHad {
    /// A pair, read from the store or held by the memo.
    Pair(Box<PreKeyPair>, PreKeysRead),
    /// Those of the kept device (an operation that uses none, [`PreKeysUse::Unused`]).
    InKept,
}

/// A device loaded for one operation, with what it looked like when loaded. It holds the
/// session slots the operation asked for, or all of them (a device kept from an earlier
/// operation may hold more, each with its record as stored).
pub(crate) struct Loaded {
    pub meta: AccountMeta,
    /// Boxed: the device moves through every step of an operation (read, assembled, kept for
    /// the next one), a pointer rather than the whole device each time.
    pub device: Box<OmemoDevice>,
    /// The account record as read: its schema and the device's identity (or, before schema 3,
    /// own) record.
    account_before: (u16, Zeroizing<Vec<u8>>),
    pre_keys_before: PreKeysRead,
    meta_before: AccountMeta,
    clocks_before: Option<Clocks>,
    /// Each slot's record as read (or, for slots read by a scan, as the device writes it).
    slots_before: VecMap<SlotAddress, Zeroizing<Vec<u8>>>,
    /// Each slot's record as [`XmppMachine::save`] found it, once it ran.
    slots_after: Option<VecMap<SlotAddress, Zeroizing<Vec<u8>>>>,
    /// The identity record as [`XmppMachine::save`] found it, once it ran.
    identity_after: Option<Zeroizing<Vec<u8>>>,
    /// The pre-keys record the device holds, when known to be the stored one.
    pre_keys_known: Option<Zeroizing<Vec<u8>>>,
    /// The slots the operation named (`None`: it read them all).
    requested: Option<Vec<SlotAddress>>,
    /// The record names of the slots named, in their order (each an HMAC, or a memo lookup:
    /// made once per operation); empty when not known.
    requested_names: Vec<Name>,
}

/// The session slots an operation read, for [`XmppMachine::assemble`].
enum SlotsRead {
    /// Each slot found, with its record (its address unless every slot was read).
    Records(Vec<(Option<SlotAddress>, Zeroizing<Vec<u8>>)>),
    /// The slots named, found to be those the kept device holds (with everything else
    /// [`kept_stands`] checks): nothing copied.
    KeptStands,
}

/// The account's records as read, before its session slots.
pub(crate) struct Account {
    pub meta: AccountMeta,
    schema: u16,
    /// Schema 3: the identity record; before: the own record, pre-keys included. `None`: the
    /// identity record of the kept device, byte for byte (compared where the memo holds the
    /// record, not copied: the device kept stands for it, or is taken apart and gives it).
    own: Option<Zeroizing<Vec<u8>>>,
    clocks: Option<Clocks>,
    /// Schema 3: the pre-keys, and how they were had.
    pre_keys: Option<PreKeysHad>,
    /// Schema 3: the device the last operation kept, not yet checked against the records.
    kept: Option<Box<Kept>>,
}

impl<B: Backend> XmppMachine<B> {
    /// Opens the account of `jid` (a bare JID) in `backend`, creating it on first use with a
    /// random device id and fresh keys for both versions (one commit).
    pub async fn open(
        backend: B,
        storage_key: &StorageKey,
        jid: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, XmppError> {
        let machine = Self {
            backend,
            // Processed-message records are written once per message and read again only
            // when a catch-up runs twice.
            sealer: Sealer::new(storage_key)
                .remembering()
                .not_remembering(&[PROCESSED]),
            jid: jid.to_owned(),
            memo: Memo::new(rng.next_u64()),
            known: KnownSlot::new(),
        };
        transact_known!(machine, rng, |txn| {
            match tables::load_record::<B, AccountMeta>(&mut txn, ACCOUNT, ACCOUNT_KEY).await {
                Err(e) => Err(XmppError::from(e)),
                Ok(Some((_, meta, _))) if meta.jid != jid => Err(XmppError::WrongAccount),
                Ok(Some((schema, _, _))) if schema < tables::SCHEMA => {
                    machine.migrate_account(&mut txn).await
                }
                Ok(Some(_)) => Ok(()),
                Ok(None) => {
                    let device_id = random_device_id(rng);
                    let device = OmemoDevice::generate(jid, device_id, now, rng);
                    let meta = AccountMeta {
                        jid: jid.to_owned(),
                        device_id,
                        policy: TrustPolicy::default(),
                        label: None,
                    };
                    machine.store_account(&mut txn, &meta, &device).await
                }
            }
        })?;
        // Our identity's keys derived and the pre-keys held now rather than in the first
        // operation, as a core device restored from its records derives them when restored.
        // Only a warm-up: a failure is reported by the next operation, which reads again.
        let mut txn = Txn::new(&machine.backend, &machine.sealer);
        if let Ok(loaded) = machine.load_slots(&mut txn, &[], PreKeysUse::Unused).await {
            machine.release(loaded);
        }
        Ok(machine)
    }

    /// Our bare JID.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// Our device id.
    pub async fn device_id(&self) -> Result<u32, XmppError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        let account = self.load_account(&mut txn, PreKeysUse::Unused).await?;
        let device_id = account.meta.device_id;
        self.release_account(account);
        Ok(device_id)
    }

    /// Our identity's fingerprint (lowercase hex of its Curve25519 form).
    pub async fn fingerprint(&self) -> Result<String, XmppError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        let loaded = self.load_slots(&mut txn, &[], PreKeysUse::Unused).await?;
        let fingerprint = loaded.device.identity().fingerprint();
        self.release(loaded);
        Ok(fingerprint)
    }

    /// Gives the operation's device's pre-keys back to the machine, for the next operation
    /// that uses none (see [`PreKeysUse::Unused`]).
    /// Keeps the operation's device for the next operation ([`Kept`]), with the records it
    /// stands for: as saved, or, unsaved, as read. Called before the commit: if the commit
    /// fails, the records kept are not the store's and the next operation does not use them
    /// (and the operations drop the device on a failure, [`Self::settled`]).
    pub(crate) fn release(&self, loaded: Loaded) {
        let identity = match loaded.identity_after {
            Some(identity) => identity,
            None if loaded.account_before.0 == tables::SCHEMA => loaded.account_before.1,
            // An older schema's own record, unsaved: nothing to keep.
            None => return,
        };
        let slots = match loaded.slots_after {
            Some(after) => after,
            None => loaded.slots_before,
        };
        self.memo.keep_device(Box::new(Kept {
            clocks: loaded.device.clocks(),
            device: loaded.device,
            identity,
            pre_keys: loaded.pre_keys_known,
            slots,
        }));
    }

    /// As [`Self::release`], for an account read without its sessions.
    pub(crate) fn release_account(&self, account: Account) {
        if let Some(kept) = account.kept {
            self.memo.keep_device(kept);
        }
        if let Some(PreKeysHad::Pair(pre_keys, _)) = account.pre_keys {
            self.memo.hold_pre_keys(*pre_keys);
        }
    }

    /// An operation's result; on a failure the kept device is dropped, since the operation
    /// may have kept one ahead of the store.
    pub(crate) fn settled<T>(&self, result: Result<T, XmppError>) -> Result<T, XmppError> {
        if result.is_err() {
            self.memo.forget_device();
        }
        result
    }

    /// A record's name in `table` (a keyed hash of `parts`), remembered for the tables whose
    /// records are named again and again (not the archive's stanza ids, each named once).
    pub(crate) fn name(&self, table: &str, parts: &[&[u8]]) -> Name {
        let made = || self.sealer.name_bytes(table, parts);
        if table == PROCESSED {
            return made();
        }
        // Always made (`Some`): the fallback is never taken.
        self.memo
            .name(table, parts, || Some(made()))
            .unwrap_or_else(made)
    }

    pub(crate) fn slot_name(&self, version: Version, jid: &str, device_id: u32) -> Name {
        self.name(
            SESSIONS,
            &[
                &[version_byte(version)],
                jid.as_bytes(),
                &device_id.to_be_bytes(),
            ],
        )
    }

    /// Writes a new account: its record, its pre-keys and its session clocks.
    async fn store_account(
        &self,
        txn: &mut Txn<'_, B>,
        meta: &AccountMeta,
        device: &OmemoDevice,
    ) -> Result<(), XmppError> {
        let identity = device.identity_record();
        tables::store(txn, ACCOUNT, ACCOUNT_KEY, meta, &[&identity]).await?;
        let pre_keys = device.pre_keys_record();
        tables::store(txn, ACCOUNT, PRE_KEYS_KEY, &(), &[&pre_keys]).await?;
        tables::store(txn, ACCOUNT, CLOCK_KEY, &device.clocks(), &[]).await?;
        Ok(())
    }

    /// Schema 1 or 2 to 3: the session clocks (schema 1) and the pre-keys leave the account
    /// record for records of their own. The other records read the same under every schema
    /// and move to 3 when next written.
    async fn migrate_account(&self, txn: &mut Txn<'_, B>) -> Result<(), XmppError> {
        let loaded = self.load_slots(txn, &[], PreKeysUse::Needed).await?;
        self.store_account(txn, &loaded.meta, &loaded.device).await
    }

    /// Reads the account record, the session clocks and, if the operation needs them, the
    /// pre-keys.
    pub(crate) async fn load_account(
        &self,
        txn: &mut Txn<'_, B>,
        pre_keys: PreKeysUse,
    ) -> Result<Account, XmppError> {
        // One round trip for the records every operation reads (and the pre-keys when it
        // uses them; a record absent under an older schema reads as absent).
        // The keys borrowed, not copied: three allocations fewer per operation.
        let all = [ACCOUNT_KEY, CLOCK_KEY, PRE_KEYS_KEY];
        let keys = match pre_keys {
            PreKeysUse::Needed => &all[..],
            PreKeysUse::Unused => &all[..2],
        };
        txn.prefetch(ACCOUNT, keys).await?;
        // Taken first, for the identity record to be compared with its own where the memo
        // holds it: a copy (and its wipe) per operation otherwise.
        let kept = self.memo.take_device();
        let read = |(schema, meta, blobs): &tables::Record<AccountMeta>| {
            let own = blobs.first().map(|own| {
                let as_kept = *schema == tables::SCHEMA
                    && kept
                        .as_ref()
                        .is_some_and(|kept| kept.identity.as_slice() == own.as_slice());
                (!as_kept).then(|| own.clone())
            });
            (*schema, meta.clone(), own)
        };
        let (schema, meta, own) =
            tables::load_memo_with(txn, &self.memo, ACCOUNT, ACCOUNT_KEY, read)
                .await?
                .ok_or(XmppError::Corrupt("account"))?;
        let own = own.ok_or(XmppError::Corrupt("account"))?;
        // Schema 1 keeps the clocks in the device's own record.
        let clocks = if schema == tables::SCHEMA_1 {
            None
        } else {
            let (_, clocks, _) =
                tables::load_record_memo::<B, Clocks>(txn, &self.memo, ACCOUNT, CLOCK_KEY)
                    .await?
                    .ok_or(XmppError::Corrupt("session clocks"))?;
            Some(clocks)
        };
        let kept = if schema < tables::SCHEMA {
            // Left to the memo, as it was (`own` is then a copy).
            if let Some(kept) = kept {
                self.memo.keep_device(kept);
            }
            None
        } else {
            kept
        };
        let pre_keys = if schema < tables::SCHEMA {
            None
        } else if kept.is_some() && pre_keys == PreKeysUse::Unused {
            Some(PreKeysHad::InKept)
        } else {
            let held = match pre_keys {
                PreKeysUse::Unused => self.memo.take_pre_keys(),
                PreKeysUse::Needed => None,
            };
            match held {
                Some(held) => Some(PreKeysHad::Pair(Box::new(held), PreKeysRead::Held)),
                None => {
                    let (_, blobs) = tables::load::<B, ()>(txn, ACCOUNT, PRE_KEYS_KEY)
                        .await?
                        .ok_or(XmppError::Corrupt("pre-keys"))?;
                    let record = blobs
                        .into_iter()
                        .next()
                        .ok_or(XmppError::Corrupt("pre-keys"))?;
                    let pair = PreKeyPair::from_record(&record)
                        .map_err(|_| XmppError::Corrupt("pre-keys"))?;
                    Some(PreKeysHad::Pair(Box::new(pair), PreKeysRead::Read(record)))
                }
            }
        };
        Ok(Account {
            meta,
            schema,
            own,
            clocks,
            pre_keys,
            kept,
        })
    }

    /// Loads the account's device with every session slot: for operations that may add a
    /// device to the sessions (the limits evict by looking at all of them).
    pub(crate) async fn load(
        &self,
        txn: &mut Txn<'_, B>,
        pre_keys: PreKeysUse,
    ) -> Result<Loaded, XmppError> {
        let account = self.load_account(txn, pre_keys).await?;
        // The slots the machine holds are known by name: those not read again.
        let kept = account
            .kept
            .iter()
            .flat_map(|kept| kept.slots.keys().cloned());
        // Built once, then only looked up: a sorted `Vec` (no `BTreeMap` node code).
        let held: VecMap<Name, SlotAddress> = self
            .memo
            .held_addresses()
            .into_iter()
            .chain(kept)
            .map(|address| {
                let (version, jid, device_id) = &address;
                (self.slot_name(*version, jid, *device_id), address)
            })
            .collect();
        let mut slots = Vec::new();
        let mut range = KeyRange::all();
        loop {
            let page = self.backend.scan(SESSIONS, &range, SLOT_PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            range = range.after(last);
            for (name, _) in page {
                if let Some(slot) = self.slot(txn, &name).await? {
                    slots.push((held.get(name.as_slice()).cloned(), slot));
                }
            }
        }
        self.assemble(txn, account, SlotsRead::Records(slots), None)
            .await
    }

    /// Loads the account's device with the session slots named, those that exist: for
    /// operations that use sessions but add none.
    pub(crate) async fn load_slots(
        &self,
        txn: &mut Txn<'_, B>,
        addresses: &[SlotAddress],
        pre_keys: PreKeysUse,
    ) -> Result<Loaded, XmppError> {
        let account = self.load_account(txn, pre_keys).await?;
        self.load_slots_of(txn, account, addresses).await
    }

    /// As [`Self::load_slots`], after [`Self::load_account`].
    pub(crate) async fn load_slots_of(
        &self,
        txn: &mut Txn<'_, B>,
        account: Account,
        addresses: &[SlotAddress],
    ) -> Result<Loaded, XmppError> {
        let names: Vec<Name> = addresses
            .iter()
            .map(|(version, jid, device_id)| self.slot_name(*version, jid, *device_id))
            .collect();
        self.load_named_slots(txn, account, addresses, names).await
    }

    /// As [`Self::load_slots_of`], the slots' record names already made (in their order).
    async fn load_named_slots(
        &self,
        txn: &mut Txn<'_, B>,
        account: Account,
        addresses: &[SlotAddress],
        names: Vec<Name>,
    ) -> Result<Loaded, XmppError> {
        // One round trip for every slot (each read once, in this transaction, as before).
        txn.prefetch(SESSIONS, &names).await?;
        // The kept device checked against the slots where they are kept (no copy of a record
        // that would only be compared and dropped: an encrypt to 9 devices read 9).
        let kept_stands = match (&account.kept, &account.pre_keys) {
            (Some(kept), Some(had)) if kept_stands_account(kept, &account, had) => {
                self.named_slots_stand(txn, kept, addresses, &names).await?
            }
            _ => false,
        };
        let mut slots = Vec::new();
        if !kept_stands {
            slots.reserve(addresses.len());
            for (address, name) in addresses.iter().zip(&names) {
                if let Some(slot) = self.slot(txn, name).await? {
                    slots.push((Some(address.clone()), slot));
                }
            }
        }
        let read = if kept_stands {
            SlotsRead::KeptStands
        } else {
            SlotsRead::Records(slots)
        };
        let mut loaded = self.assemble(txn, account, read, Some(addresses)).await?;
        loaded.requested_names = names;
        Ok(loaded)
    }

    /// Whether every slot named is, in the store, the record `kept` holds it with (a slot
    /// named and absent must not be in the device), compared where the records are kept.
    async fn named_slots_stand(
        &self,
        txn: &mut Txn<'_, B>,
        kept: &Kept,
        addresses: &[SlotAddress],
        names: &[Name],
    ) -> Result<bool, XmppError> {
        for (address, name) in addresses.iter().zip(names) {
            let held = kept.slots.get(address);
            let same = txn
                .get_with(SESSIONS, name, |schema, record| {
                    slot_schema(schema) && held.is_some_and(|held| held.as_slice() == record)
                })
                .await?;
            let stands = match same {
                Some(same) => same,
                None => held.is_none(),
            };
            if !stands {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Loads the device with the session slots named if they all exist, or with every slot if
    /// one does not: the operation may then add a device, and the limits evict.
    pub(crate) async fn load_to_install(
        &self,
        txn: &mut Txn<'_, B>,
        addresses: &[SlotAddress],
        pre_keys: PreKeysUse,
    ) -> Result<Loaded, XmppError> {
        // The names made here are those the slots are then read by (each an HMAC or a memo
        // lookup: made once).
        let mut names = Vec::with_capacity(addresses.len());
        for (version, jid, device_id) in addresses {
            let name = self.slot_name(*version, jid, *device_id);
            if txn.version(SESSIONS, &name).await?.is_none() {
                return self.load(txn, pre_keys).await;
            }
            names.push(name);
        }
        let account = self.load_account(txn, pre_keys).await?;
        self.load_named_slots(txn, account, addresses, names).await
    }

    /// One session slot's record, if it exists.
    async fn slot(
        &self,
        txn: &mut Txn<'_, B>,
        name: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, XmppError> {
        match txn.get(SESSIONS, name).await? {
            None => Ok(None),
            Some((schema, bytes)) if slot_schema(schema) => Ok(Some(bytes)),
            Some(_) => Err(XmppError::Corrupt("session slot schema")),
        }
    }

    /// The device of the records read: the kept one if it stands for them, else made from
    /// them. `requested`: the slots the operation named (`None`: every slot was read).
    async fn assemble(
        &self,
        txn: &mut Txn<'_, B>,
        mut account: Account,
        read: SlotsRead,
        requested: Option<&[SlotAddress]>,
    ) -> Result<Loaded, XmppError> {
        let (slots, slots_stand) = match read {
            SlotsRead::Records(slots) => (slots, false),
            SlotsRead::KeptStands => (Vec::new(), true),
        };
        let mut pre_keys_had = account.pre_keys.take();
        let mut extras: Vec<SlotAddress> = Vec::new();
        let mut own = account.own.take();
        if let Some(mut kept) = account.kept.take() {
            let stands = slots_stand
                || pre_keys_had
                    .as_ref()
                    .is_some_and(|had| kept_stands(&kept, &account, had, &slots, requested));
            // The identity record read, when it was found to be the kept device's.
            let own = own.get_or_insert_with(|| std::mem::take(&mut kept.identity));
            if stands {
                let (pre_keys_before, pre_keys_known) = match pre_keys_had {
                    Some(PreKeysHad::Pair(_, PreKeysRead::Read(record))) => {
                        (PreKeysRead::Read(record), kept.pre_keys)
                    }
                    _ => (PreKeysRead::Held, kept.pre_keys),
                };
                return Ok(Loaded {
                    meta_before: account.meta.clone(),
                    meta: account.meta,
                    device: kept.device,
                    account_before: (account.schema, std::mem::take(own)),
                    pre_keys_before,
                    clocks_before: account.clocks,
                    slots_before: kept.slots,
                    slots_after: None,
                    identity_after: None,
                    pre_keys_known,
                    requested: requested.map(<[SlotAddress]>::to_vec),
                    requested_names: Vec::new(),
                });
            }
            // Taken apart: its slots that match are used again, and its pre-keys if the
            // operation uses none. An operation that named its slots keeps the others in the
            // device, as they were (checked when an operation names them).
            let (pre_keys, held) = kept.dissolve(&self.memo);
            if matches!(pre_keys_had, Some(PreKeysHad::InKept)) {
                pre_keys_had = Some(PreKeysHad::Pair(Box::new(pre_keys), PreKeysRead::Held));
            }
            if let Some(requested) = requested {
                extras = held
                    .into_iter()
                    .filter(|address| !requested.contains(address))
                    .collect();
            }
        }
        // `None` only beside a kept device, which gave it.
        let own = own.ok_or(XmppError::Corrupt("account"))?;
        let addressed = slots.iter().all(|(address, _)| address.is_some());
        let mut extra_records = Vec::new();
        let (made, pre_keys_before, pre_keys_known) = match pre_keys_had {
            Some(PreKeysHad::InKept) => return Err(XmppError::Corrupt("pre-keys")),
            Some(PreKeysHad::Pair(pre_keys, read)) => {
                // A slot whose record is the one the machine last held it with is not read
                // again.
                let mut held = Vec::new();
                let mut records = Vec::new();
                for (address, record) in &slots {
                    let taken = address
                        .as_ref()
                        .and_then(|address| Some((address, self.memo.take_slot(address, record)?)));
                    match taken {
                        Some((address, slot)) => held.push((address.clone(), slot)),
                        None => records.push(record.as_slice()),
                    }
                }
                for address in extras {
                    if let Some((record, slot)) = self.memo.take_held(&address) {
                        held.push((address.clone(), slot));
                        extra_records.push((address, record));
                    }
                }
                let made = self.memo.with_identity(|known| {
                    let clocks = account.clocks.unwrap_or_default();
                    OmemoDevice::from_split_records(&own, *pre_keys, clocks, records, held, known)
                });
                let known = match &read {
                    PreKeysRead::Read(record) => Some(record.clone()),
                    PreKeysRead::Held => None,
                };
                (made, read, known)
            }
            None => {
                let slots = slots.iter().map(|(_, s)| s.as_slice());
                let made = self.memo.with_identity(|known| {
                    OmemoDevice::from_records_known(&own, account.clocks, slots, known)
                });
                // Before schema 3 the pre-keys come with the own record, and are written apart.
                (made, PreKeysRead::Read(Zeroizing::new(Vec::new())), None)
            }
        };
        let Ok(device) = made else {
            return Err(self.torn_or_corrupt(txn).await);
        };
        let read: Vec<(SlotAddress, Zeroizing<Vec<u8>>)> = if addressed {
            slots
                .into_iter()
                .filter_map(|(address, record)| Some((address?, record)))
                .chain(extra_records)
                .collect()
        } else {
            Vec::new()
        };
        // Maps filled by inserting, not collecting: a collected map brings a stable sort.
        let mut slots_before = VecMap::new();
        if addressed {
            for (address, record) in read {
                slots_before.insert(address, record);
            }
        } else {
            for address in device.slot_addresses() {
                if let Some(record) = device.slot_record(&address) {
                    slots_before.insert(address, record);
                }
            }
        }
        Ok(Loaded {
            meta_before: account.meta.clone(),
            meta: account.meta,
            device: Box::new(device),
            account_before: (account.schema, own),
            pre_keys_before,
            clocks_before: account.clocks,
            slots_before,
            slots_after: None,
            identity_after: None,
            pre_keys_known,
            requested: requested.map(<[SlotAddress]>::to_vec),
            requested_names: Vec::new(),
        })
    }

    /// Why the device's records did not make a device: another writer committed between the
    /// reads of the account or its clocks and the slot reads (a slot newer than the session
    /// clock), a conflict to run the operation again after; or the records are corrupt.
    async fn torn_or_corrupt(&self, txn: &mut Txn<'_, B>) -> XmppError {
        for key in [ACCOUNT_KEY, CLOCK_KEY, PRE_KEYS_KEY] {
            let read = match txn.version(ACCOUNT, key).await {
                Ok(version) => version,
                Err(error) => return error.into(),
            };
            match self.backend.get(ACCOUNT, key).await {
                Ok(now) if now.as_ref().map(|r| r.version) != read => {
                    return XmppError::Store(StoreError::Conflict(Box::new(Conflict {
                        table: ACCOUNT.to_owned(),
                        key: key.to_vec(),
                        expected: read.map_or(Expect::Absent, Expect::Version),
                        found: now.map(|r| r.version),
                    })));
                }
                Ok(_) => {}
                Err(error) => return error.into(),
            }
        }
        XmppError::Corrupt("device")
    }

    /// Writes what the operation changed: the account record if it changed (or was of an
    /// older schema), the pre-keys if they were read and changed, the session clocks if they
    /// moved, the session slots written, and the removal of the slots the device evicted.
    pub(crate) async fn save(
        &self,
        txn: &mut Txn<'_, B>,
        loaded: &mut Loaded,
    ) -> Result<(), XmppError> {
        let identity = loaded.device.identity_record();
        let (schema_before, own_before) = &loaded.account_before;
        let migrating = *schema_before != tables::SCHEMA;
        if migrating
            || identity.as_slice() != own_before.as_slice()
            || loaded.meta != loaded.meta_before
        {
            tables::store(txn, ACCOUNT, ACCOUNT_KEY, &loaded.meta, &[&identity]).await?;
        }
        loaded.identity_after = Some(identity);
        if let PreKeysRead::Read(before) = &loaded.pre_keys_before {
            let pre_keys = loaded.device.pre_keys_record();
            if migrating || pre_keys.as_slice() != before.as_slice() {
                tables::store(txn, ACCOUNT, PRE_KEYS_KEY, &(), &[&pre_keys]).await?;
            }
            loaded.pre_keys_known = Some(pre_keys);
        }
        let clocks = loaded.device.clocks();
        if migrating || loaded.clocks_before != Some(clocks) {
            tables::store_memo(txn, &self.memo, ACCOUNT, CLOCK_KEY, &clocks).await?;
        }
        // An operation that named its slots adds and evicts none: only those can have changed
        // (a kept device holds more, each as stored), and only those are serialised.
        if let Some(requested) = &loaded.requested {
            for (i, address) in requested.iter().enumerate() {
                let record = loaded.device.slot_record(address);
                // Found once: compared, then replaced where it is.
                let before = loaded.slots_before.get_mut(address);
                let same = before.as_deref().map(|b| b.as_slice())
                    == record.as_deref().map(|r| r.as_slice());
                if same {
                    continue;
                }
                let (version, jid, device_id) = address;
                let made;
                let name: &[u8] = match loaded.requested_names.get(i) {
                    Some(name) => name,
                    None => {
                        made = self.slot_name(*version, jid, *device_id);
                        &made
                    }
                };
                match record {
                    Some(record) => {
                        // No address copied for a slot that was there, and its record
                        // overwritten where it is: no buffer made, none dropped (wiped byte
                        // by byte, a record of a few hundred bytes per recipient device).
                        // Past the new length, the old contents stay in a buffer wiped
                        // whole, capacity included, when it drops.
                        match before {
                            Some(before) if before.capacity() >= record.len() => {
                                before.clear();
                                before.extend_from_slice(&record);
                            }
                            Some(before) => *before = record.clone(),
                            None => {
                                loaded.slots_before.insert(address.clone(), record.clone());
                            }
                        }
                        txn.put_read(SESSIONS, name, tables::SCHEMA, record).await?;
                    }
                    None => {
                        tables::remove(txn, SESSIONS, name).await?;
                        loaded.slots_before.remove(address);
                    }
                }
            }
            return Ok(());
        }
        // Each slot written once, compared with its record as read: no digests.
        // In address order, so each insert appends.
        let addresses = loaded.device.slot_addresses();
        let mut after = VecMap::new();
        for address in addresses {
            let record = loaded
                .device
                .slot_record(&address)
                .ok_or(XmppError::Corrupt("session slot"))?;
            let before = loaded.slots_before.get(&address);
            if before.map(|b| b.as_slice()) != Some(record.as_slice()) {
                let (version, jid, device_id) = &address;
                let name = self.slot_name(*version, jid, *device_id);
                txn.put_read(SESSIONS, &name, tables::SCHEMA, record.clone())
                    .await?;
            }
            after.insert(address, record);
        }
        for address in loaded.slots_before.keys() {
            if !after.contains_key(address) {
                let (version, jid, device_id) = address;
                let name = self.slot_name(*version, jid, *device_id);
                tables::remove(txn, SESSIONS, &name).await?;
            }
        }
        loaded.slots_after = Some(after);
        Ok(())
    }

    /// Sets how undecided identity keys are treated (one commit).
    pub async fn set_trust_policy(
        &self,
        policy: TrustPolicy,
        rng: &mut impl CryptoRng,
    ) -> Result<(), XmppError> {
        let result = transact_known!(self, rng, |txn| {
            match self.load_slots(&mut txn, &[], PreKeysUse::Unused).await {
                Err(e) => Err(e),
                Ok(mut loaded) => {
                    loaded.meta.policy = policy;
                    let saved = self.save(&mut txn, &mut loaded).await;
                    self.release(loaded);
                    saved
                }
            }
        });
        self.settled(result)
    }
}

/// Whether the kept device stands for the records the operation read: the identity record,
/// the clocks, the pre-keys if read, and every slot read (or named and found absent), byte for
/// byte; when every slot was read, exactly the slots it holds.
fn kept_stands(
    kept: &Kept,
    account: &Account,
    pre_keys: &PreKeysHad,
    slots: &[(Option<SlotAddress>, Zeroizing<Vec<u8>>)],
    requested: Option<&[SlotAddress]>,
) -> bool {
    if !kept_stands_account(kept, account, pre_keys) {
        return false;
    }
    let same = |address: &Option<SlotAddress>, record: &Zeroizing<Vec<u8>>| {
        address
            .as_ref()
            .and_then(|address| kept.slots.get(address))
            .is_some_and(|kept| kept.as_slice() == record.as_slice())
    };
    if !slots.iter().all(|(address, record)| same(address, record)) {
        return false;
    }
    match requested {
        // Every slot named was read (the reads keep the names' order, one per name found).
        Some(requested) if slots.len() == requested.len() => true,
        // A slot named but absent (deleted by another writer) must not be in the device.
        Some(requested) => requested.iter().all(|address| {
            !kept.slots.contains_key(address)
                || slots.iter().any(|(read, _)| read.as_ref() == Some(address))
        }),
        None => slots.len() == kept.slots.len(),
    }
}

/// [`kept_stands`] but for the slots: the identity record, the clocks and the pre-keys if read.
fn kept_stands_account(kept: &Kept, account: &Account, pre_keys: &PreKeysHad) -> bool {
    // An identity record not copied is the kept device's (see [`Account::own`]).
    let same_identity = account
        .own
        .as_ref()
        .is_none_or(|own| kept.identity.as_slice() == own.as_slice());
    if account.schema != tables::SCHEMA || !same_identity || account.clocks != Some(kept.clocks) {
        return false;
    }
    match pre_keys {
        PreKeysHad::Pair(_, PreKeysRead::Read(record)) => {
            kept.pre_keys.as_deref().map(|k| k.as_slice()) == Some(record.as_slice())
        }
        PreKeysHad::Pair(_, PreKeysRead::Held) => false,
        PreKeysHad::InKept => true,
    }
}

/// A slot record's schema this version reads.
fn slot_schema(schema: u16) -> bool {
    (tables::SCHEMA_1..=tables::SCHEMA).contains(&schema)
}

pub(crate) fn version_byte(version: Version) -> u8 {
    match version {
        Version::Omemo2 => 2,
        Version::Omemo03 => 3,
    }
}

/// A device id uniform in 1..2^31.
pub(crate) fn random_device_id(rng: &mut impl CryptoRng) -> u32 {
    loop {
        let id = rng.next_u32() & MAX_DEVICE_ID;
        if id != 0 {
            return id;
        }
    }
}
