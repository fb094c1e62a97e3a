//! What the account publishes over PEP: for each version its device list (our device with the
//! account's other devices as last seen) and our bundle, as item payloads the client wraps in
//! `<iq type='set'><pubsub><publish node=…><item id=…>` with an open access model.

use rand_core::CryptoRng;

use super::contacts::DeviceListRecord;
use super::error::XmppError;
use super::machine::{PreKeysUse, XmppMachine};
use crate::omemo::Version;
use crate::omemo::stanza::DeviceListElement;
use crate::store::{Backend, Txn, transact_known};
use crate::time::Timestamp;

/// One PEP item to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepItem {
    /// The version it belongs to.
    pub version: Version,
    /// The pubsub node.
    pub node: String,
    /// The item id.
    pub item_id: String,
    /// The item's payload, an XML element.
    pub payload: String,
}

/// The node of a version's device list.
pub fn device_list_node(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "urn:xmpp:omemo:2:devices",
        Version::Omemo03 => "eu.siacs.conversations.axolotl.devicelist",
    }
}

/// The node and item id of a device's bundle.
pub fn bundle_node(version: Version, device_id: u32) -> (String, String) {
    match version {
        Version::Omemo2 => ("urn:xmpp:omemo:2:bundles".into(), device_id.to_string()),
        Version::Omemo03 => (
            format!("eu.siacs.conversations.axolotl.bundles:{device_id}"),
            "current".into(),
        ),
    }
}

impl<B: Backend> XmppMachine<B> {
    /// Everything to publish: both device lists and both bundles. Rotates an old signed pre-key
    /// and refills the pre-key pools first, so what is published is current (one commit when
    /// that changed anything).
    pub async fn publish(
        &self,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<PepItem>, XmppError> {
        let result = transact_known!(self, rng, |txn| self.plan_publish(&mut txn, now, rng).await);
        self.settled(result)
    }

    async fn plan_publish(
        &self,
        txn: &mut Txn<'_, B>,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<PepItem>, XmppError> {
        let mut loaded = self.load_slots(txn, &[], PreKeysUse::Needed).await?;
        loaded.device.maintain(now, rng);
        self.save(txn, &mut loaded).await?;
        let device = &loaded.device;
        let device_id = device.device_id();
        let mut items = Vec::new();
        for version in [Version::Omemo2, Version::Omemo03] {
            let own_list: DeviceListRecord = self.load_device_list(txn, version, &self.jid).await?;
            let label = match version {
                Version::Omemo2 => loaded.meta.label.as_deref(),
                Version::Omemo03 => None,
            };
            let mut devices = vec![device.identity().device_list_entry(device_id, label)];
            for (id, entry) in &own_list.devices {
                if *id != device_id && entry.active {
                    devices.push(entry.listed(*id));
                }
            }
            let list = DeviceListElement { version, devices };
            items.push(PepItem {
                version,
                node: device_list_node(version).into(),
                item_id: "current".into(),
                payload: list.serialize(),
            });
            let (node, item_id) = bundle_node(version, device_id);
            items.push(PepItem {
                version,
                node,
                item_id,
                payload: device.bundle(version).to_element().serialize(),
            });
        }
        self.release(loaded);
        Ok(items)
    }
}
