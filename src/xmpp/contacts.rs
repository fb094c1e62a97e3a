//! Other devices: the device lists received (ours and contacts', per version), which devices
//! still need a bundle before a message can reach them, and sessions built from fetched bundles
//! (each verified before use, and its identity put to the trust policy).

use rand_core::CryptoRng;

use super::error::XmppError;
use super::machine::{PreKeysUse, XmppMachine, random_device_id, version_byte};
use super::memo::Name;
use super::publish::bundle_node;
use super::tables::{self, DEVICE_LISTS, SESSIONS};
use crate::omemo::stanza::{BundleElement, DeviceListElement, ListedDevice};
use crate::omemo::{DeviceError, OmemoDevice, VerifiedBundle, Version};
use crate::store::{Backend, Txn, transact_known};
use crate::vec_map::VecMap;

/// A device as a device list showed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct ListedState {
    pub label: Option<String>,
    /// In the latest list. A device that left stays known (its messages still decrypt) but is
    /// no longer encrypted to.
    pub active: bool,
}

impl ListedState {
    /// The entry to republish for an own other device (its label unsigned by us: we cannot sign
    /// for it, so it goes without).
    pub fn listed(&self, id: u32) -> ListedDevice {
        ListedDevice {
            id,
            label: None,
            label_signature: None,
        }
    }
}

/// One JID's device list of one version, as last received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct DeviceListRecord {
    pub devices: VecMap<u32, ListedState>,
}

/// What a received device list changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceListUpdate {
    /// Devices new to the list.
    pub added: Vec<u32>,
    /// Devices that left it (now inactive).
    pub removed: Vec<u32>,
    /// Our own list lacks our device (or the account's device id changed): publish again.
    pub republish: bool,
    /// Our device id was taken by another device of the account; this is the new one.
    pub new_device_id: Option<u32>,
}

/// A bundle to fetch: `<iq type='get'><pubsub><items node=…><item id=…/>` to the JID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRequest {
    /// The bundle's owner.
    pub jid: String,
    /// The device.
    pub device_id: u32,
    /// The version.
    pub version: Version,
    /// The pubsub node.
    pub node: String,
    /// The item id.
    pub item_id: String,
}

impl<B: Backend> XmppMachine<B> {
    pub(crate) async fn load_device_list(
        &self,
        txn: &mut Txn<'_, B>,
        version: Version,
        jid: &str,
    ) -> Result<DeviceListRecord, XmppError> {
        let name = self.name(DEVICE_LISTS, &[&[version_byte(version)], jid.as_bytes()]);
        // Read at every encryption, for every recipient: parsed once per version of the list.
        Ok(
            tables::load_record_memo(txn, &self.memo, DEVICE_LISTS, &name)
                .await?
                .map(|(_, list, _)| list)
                .unwrap_or_default(),
        )
    }

    async fn store_device_list(
        &self,
        txn: &mut Txn<'_, B>,
        version: Version,
        jid: &str,
        list: &DeviceListRecord,
    ) -> Result<(), XmppError> {
        let name = self.name(DEVICE_LISTS, &[&[version_byte(version)], jid.as_bytes()]);
        Ok(tables::store(txn, DEVICE_LISTS, &name, list, &[]).await?)
    }

    /// A device list received from `from_jid` (a bare JID): a PEP notification or an items
    /// result, of either version. One commit.
    pub async fn receive_device_list(
        &self,
        from_jid: &str,
        xml: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<DeviceListUpdate, XmppError> {
        let element = DeviceListElement::parse(xml)?;
        let result = transact_known!(self, rng, |txn| {
            self.apply_device_list(&mut txn, from_jid, &element, rng)
                .await
        });
        self.settled(result)
    }

    async fn apply_device_list(
        &self,
        txn: &mut Txn<'_, B>,
        from_jid: &str,
        element: &DeviceListElement,
        rng: &mut impl CryptoRng,
    ) -> Result<DeviceListUpdate, XmppError> {
        let version = element.version;
        let mut record = self.load_device_list(txn, version, from_jid).await?;
        let before = record.clone();
        let was_active = |id: &u32| before.devices.get(id).is_some_and(|state| state.active);
        let mut update = DeviceListUpdate::default();
        for state in record.devices.values_mut() {
            state.active = false;
        }
        for listed in &element.devices {
            if !was_active(&listed.id) && !update.added.contains(&listed.id) {
                update.added.push(listed.id);
            }
            let state = record.devices.get_or_default(listed.id);
            state.active = true;
            state.label = listed.label.clone();
        }
        update.removed = record
            .devices
            .iter()
            .filter(|(id, state)| !state.active && was_active(id))
            .map(|(id, _)| *id)
            .collect();
        if from_jid == self.jid {
            let mut loaded = self.load(txn, PreKeysUse::Unused).await?;
            let ours = loaded.device.device_id();
            match element.devices.iter().find(|d| d.id == ours) {
                None => update.republish = true,
                Some(entry) if signed_by_someone_else(&loaded.device, entry) => {
                    // Another device of the account took our id (its label is signed by
                    // another identity): move to a fresh id and publish again.
                    let new_id = random_device_id(rng);
                    loaded.device = Box::new((*loaded.device).with_device_id(new_id));
                    loaded.meta.device_id = new_id;
                    self.save(txn, &mut loaded).await?;
                    update.republish = true;
                    update.new_device_id = Some(new_id);
                }
                Some(_) => {}
            }
            self.release(loaded);
        }
        // The same list again (every login, every notification) writes nothing.
        if record != before {
            self.store_device_list(txn, version, from_jid, &record)
                .await?;
        }
        Ok(update)
    }

    /// The bundles to fetch before a message can reach every active device of `jids` and our
    /// own other devices: those with no session in the version they would get.
    pub async fn bundle_requests(&self, jids: &[&str]) -> Result<Vec<BundleRequest>, XmppError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        let account = self.load_account(&mut txn, PreKeysUse::Unused).await?;
        let devices = self
            .recipients(&mut txn, jids, account.meta.device_id)
            .await?;
        self.release_account(account);
        let mut requests = Vec::new();
        for (jid, device_id, version) in devices {
            let name = self.slot_name(version, &jid, device_id);
            if txn.version(SESSIONS, &name).await?.is_none() {
                let (node, item_id) = bundle_node(version, device_id);
                requests.push(BundleRequest {
                    jid,
                    device_id,
                    version,
                    node,
                    item_id,
                });
            }
        }
        Ok(requests)
    }

    /// Every active device of `jids` and of our own account but ours, with the version each
    /// gets: OMEMO 2 where the device is in the JID's OMEMO 2 list, 0.3 otherwise.
    pub(crate) async fn recipients(
        &self,
        txn: &mut Txn<'_, B>,
        jids: &[&str],
        our_device_id: u32,
    ) -> Result<Vec<(String, u32, Version)>, XmppError> {
        let mut all: Vec<&str> = jids.to_vec();
        if !all.contains(&self.jid.as_str()) {
            all.push(&self.jid);
        }
        // Every device list read in one round trip.
        let names: Vec<Name> = all
            .iter()
            .flat_map(|jid| {
                [Version::Omemo2, Version::Omemo03].map(|version| {
                    self.name(DEVICE_LISTS, &[&[version_byte(version)], jid.as_bytes()])
                })
            })
            .collect();
        txn.prefetch(DEVICE_LISTS, &names).await?;
        // Only the active devices' ids are taken from each list (a list the memo holds is not
        // copied), in the order of `names`: each JID's OMEMO 2 list, then its 0.3 list.
        let active = |(_, list, _): &tables::Record<DeviceListRecord>| -> Vec<u32> {
            list.devices
                .iter()
                .filter(|(_, state)| state.active)
                .map(|(id, _)| *id)
                .collect()
        };
        let mut recipients = Vec::new();
        let mut names = names.iter();
        for jid in all {
            let mut seen = Vec::new();
            for version in [Version::Omemo2, Version::Omemo03] {
                let Some(name) = names.next() else { break };
                let ids = tables::load_memo_with(txn, &self.memo, DEVICE_LISTS, name, active)
                    .await?
                    .unwrap_or_default();
                for id in ids {
                    let ours = jid == self.jid && id == our_device_id;
                    if !ours && !seen.contains(&id) {
                        seen.push(id);
                        recipients.push((jid.to_owned(), id, version));
                    }
                }
            }
        }
        Ok(recipients)
    }

    /// A bundle fetched for `jid`'s `device_id`: verified, then a session built from it (kept
    /// until the first message goes out) and its identity put to the trust policy. One commit.
    pub async fn receive_bundle(
        &self,
        jid: &str,
        device_id: u32,
        xml: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<(), XmppError> {
        let element = BundleElement::parse(xml)?;
        let bundle = VerifiedBundle::from_element(&element).map_err(|e| XmppError::BadBundle {
            jid: jid.to_owned(),
            device_id,
            reason: e.to_string(),
        })?;
        let result = transact_known!(self, rng, |txn| {
            self.build_from_bundle(&mut txn, jid, device_id, &bundle, rng)
                .await
        });
        self.settled(result)
    }

    async fn build_from_bundle(
        &self,
        txn: &mut Txn<'_, B>,
        jid: &str,
        device_id: u32,
        bundle: &VerifiedBundle,
        rng: &mut impl CryptoRng,
    ) -> Result<(), XmppError> {
        let mut loaded = self
            .load_to_install(
                txn,
                &[(bundle.version(), jid.to_owned(), device_id)],
                PreKeysUse::Unused,
            )
            .await?;
        loaded
            .device
            .build_session(jid, device_id, bundle, rng)
            .map_err(|e| identity_changed(e, jid, device_id))?;
        let fingerprint = self
            .memo
            .fingerprint(&bundle.identity_key())
            .ok_or_else(|| XmppError::BadBundle {
                jid: jid.to_owned(),
                device_id,
                reason: "identity key".into(),
            })?;
        self.note_identity(txn, &loaded.meta, jid, &fingerprint)
            .await?;
        self.save(txn, &mut loaded).await?;
        self.release(loaded);
        Ok(())
    }
}

/// Whether our own device list's entry for our id carries a label signature our identity did
/// not make.
fn signed_by_someone_else(device: &OmemoDevice, entry: &ListedDevice) -> bool {
    match (&entry.label, &entry.label_signature) {
        (Some(label), Some(signature)) => device
            .identity()
            .identity_key(Version::Omemo2)
            .verify_label(label, signature)
            .is_err(),
        _ => false,
    }
}

/// A device error in terms of the machine.
pub(crate) fn identity_changed(error: DeviceError, jid: &str, device_id: u32) -> XmppError {
    match error {
        DeviceError::IdentityChanged {
            version,
            known,
            offered,
            ..
        } => XmppError::IdentityChanged {
            version,
            jid: jid.to_owned(),
            device_id,
            known,
            offered,
        },
        other => XmppError::BadBundle {
            jid: jid.to_owned(),
            device_id,
            reason: other.to_string(),
        },
    }
}
