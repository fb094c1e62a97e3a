//! The XMPP machine: one OMEMO account (one device of both versions) over a store. Each
//! operation loads the device from its records, works on it, and commits in one batch exactly
//! the records it changed: the account's own record and the session slots written or removed.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use super::error::XmppError;
use super::tables::{self, ACCOUNT, SESSIONS};
use crate::omemo::{OmemoDevice, Version};
use crate::persist::StorageKey;
use crate::store::{Backend, Conflict, Expect, KeyRange, Sealer, StoreError, Txn, transact};
use crate::time::Timestamp;

/// How the machine decides about identity keys nobody decided about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl<B: Backend> std::fmt::Debug for XmppMachine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppMachine")
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

/// A device loaded for one operation, with what it looked like when loaded.
pub(crate) struct Loaded {
    pub meta: AccountMeta,
    pub device: OmemoDevice,
    own_before: Vec<u8>,
    meta_before: AccountMeta,
    slots_before: crate::omemo::SlotDigests,
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
            sealer: Sealer::new(storage_key),
            jid: jid.to_owned(),
        };
        transact!(machine, rng, |txn| {
            match tables::load::<B, AccountMeta>(&mut txn, ACCOUNT, b"account").await {
                Err(e) => Err(XmppError::from(e)),
                Ok(Some((meta, _))) if meta.jid != jid => Err(XmppError::WrongAccount),
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
                    let own = device.own_record();
                    tables::store(&mut txn, ACCOUNT, b"account", &meta, &[&own])
                        .await
                        .map_err(XmppError::from)
                }
            }
        })?;
        Ok(machine)
    }

    /// Our bare JID.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// Our device id.
    pub async fn device_id(&self) -> Result<u32, XmppError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        let (meta, _) = tables::load::<B, AccountMeta>(&mut txn, ACCOUNT, b"account")
            .await?
            .ok_or(XmppError::Corrupt("account"))?;
        Ok(meta.device_id)
    }

    /// Our identity's fingerprint (lowercase hex of its Curve25519 form).
    pub async fn fingerprint(&self) -> Result<String, XmppError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        Ok(self.load(&mut txn).await?.device.identity().fingerprint())
    }

    pub(crate) fn name(&self, table: &str, parts: &[&[u8]]) -> Vec<u8> {
        self.sealer.name(table, parts)
    }

    pub(crate) fn slot_name(&self, version: Version, jid: &str, device_id: u32) -> Vec<u8> {
        self.name(
            SESSIONS,
            &[
                &[version_byte(version)],
                jid.as_bytes(),
                &device_id.to_be_bytes(),
            ],
        )
    }

    /// Loads the account's device with every session slot.
    pub(crate) async fn load(&self, txn: &mut Txn<'_, B>) -> Result<Loaded, XmppError> {
        let (meta, blobs) = tables::load::<B, AccountMeta>(txn, ACCOUNT, b"account")
            .await?
            .ok_or(XmppError::Corrupt("account"))?;
        let own = blobs
            .into_iter()
            .next()
            .ok_or(XmppError::Corrupt("account"))?;
        let mut slots = Vec::new();
        let mut range = KeyRange::all();
        loop {
            let page = self.backend.scan(SESSIONS, &range, SLOT_PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            range = range.after(last);
            for (name, _) in page {
                if let Some((schema, bytes)) = txn.get(SESSIONS, &name).await? {
                    if schema != tables::SCHEMA {
                        return Err(XmppError::Corrupt("session slot schema"));
                    }
                    slots.push(bytes);
                }
            }
        }
        let device = match OmemoDevice::from_records(&own, slots.iter().map(|s| s.as_slice())) {
            Ok(device) => device,
            Err(_) => return Err(self.torn_or_corrupt(txn).await),
        };
        let slots_before = device.slot_digests();
        Ok(Loaded {
            meta_before: meta.clone(),
            meta,
            device,
            own_before: own.to_vec(),
            slots_before,
        })
    }

    /// Why the device's records did not make a device: another writer committed between the
    /// account read and the slot reads (a slot newer than the account's session clock), a
    /// conflict to run the operation again after; or the records are corrupt.
    async fn torn_or_corrupt(&self, txn: &mut Txn<'_, B>) -> XmppError {
        let read = match txn.version(ACCOUNT, b"account").await {
            Ok(version) => version,
            Err(error) => return error.into(),
        };
        match self.backend.get(ACCOUNT, b"account").await {
            Ok(now) if now.as_ref().map(|r| r.version) != read => {
                XmppError::Store(StoreError::Conflict(Box::new(Conflict {
                    table: ACCOUNT.to_owned(),
                    key: b"account".to_vec(),
                    expected: read.map_or(Expect::Absent, Expect::Version),
                    found: now.map(|r| r.version),
                })))
            }
            Ok(_) => XmppError::Corrupt("device"),
            Err(error) => error.into(),
        }
    }

    /// Writes what the operation changed: the account record if it changed, the session slots
    /// written, and the removal of the slots the device evicted.
    pub(crate) async fn save(
        &self,
        txn: &mut Txn<'_, B>,
        loaded: &Loaded,
    ) -> Result<(), XmppError> {
        let own = loaded.device.own_record();
        if own.as_slice() != loaded.own_before.as_slice() || loaded.meta != loaded.meta_before {
            tables::store(txn, ACCOUNT, b"account", &loaded.meta, &[&own]).await?;
        }
        let changes = loaded.device.changed_slots(&loaded.slots_before);
        for address in &changes.written {
            let (version, jid, device_id) = address;
            let name = self.slot_name(*version, jid, *device_id);
            let record = loaded
                .device
                .slot_record(address)
                .ok_or(XmppError::Corrupt("session slot"))?;
            txn.version(SESSIONS, &name).await?;
            txn.put(SESSIONS, &name, tables::SCHEMA, record)?;
        }
        for (version, jid, device_id) in &changes.removed {
            let name = self.slot_name(*version, jid, *device_id);
            tables::remove(txn, SESSIONS, &name).await?;
        }
        Ok(())
    }

    /// Sets how undecided identity keys are treated (one commit).
    pub async fn set_trust_policy(
        &self,
        policy: TrustPolicy,
        rng: &mut impl CryptoRng,
    ) -> Result<(), XmppError> {
        transact!(self, rng, |txn| {
            match self.load(&mut txn).await {
                Err(e) => Err(e),
                Ok(mut loaded) => {
                    loaded.meta.policy = policy;
                    self.save(&mut txn, &loaded).await
                }
            }
        })
    }
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
