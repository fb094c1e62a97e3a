//! The XMPP machine: one OMEMO account (OMEMO 2 and 0.3 at once) over a store, sans I/O. Stanza
//! payloads cross as XML strings; the app does the pubsub and message routing. Calls block
//! until the store answered: call them off the UI thread.

use std::sync::Arc;

use olmo::omemo::Version;
use olmo::store::block_on;
use olmo::time::Timestamp;
use olmo::xmpp::{
    DecryptOutcome, EncryptOutcome as CoreEncryptOutcome, EncryptedStanza as CoreStanza,
    PepItem as CorePepItem, Trust as CoreTrust, TrustPolicy as CorePolicy,
    XmppMachine as CoreMachine,
};

use crate::error::OlmoError;
use crate::stores::{AnyStore, OlmoStore};

/// An OMEMO version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OmemoVersion {
    /// OMEMO 2 (`urn:xmpp:omemo:2`).
    Omemo2,
    /// OMEMO 0.3 (`eu.siacs.conversations.axolotl`).
    Omemo03,
}

impl From<Version> for OmemoVersion {
    fn from(version: Version) -> Self {
        match version {
            Version::Omemo2 => OmemoVersion::Omemo2,
            Version::Omemo03 => OmemoVersion::Omemo03,
        }
    }
}

/// What is decided about one identity key of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IdentityTrust {
    /// The user verified the key.
    Trusted,
    /// The user refuses the key: nothing is encrypted to it, its messages are refused.
    Distrusted,
    /// Nobody decided and the policy does not trust it: nothing is encrypted to it until the
    /// user decides.
    Undecided,
    /// Used under the policy (blind trust before verification, or trust on first use) until the
    /// user decides.
    Blind,
}

impl From<CoreTrust> for IdentityTrust {
    fn from(trust: CoreTrust) -> Self {
        match trust {
            CoreTrust::Trusted => IdentityTrust::Trusted,
            CoreTrust::Distrusted => IdentityTrust::Distrusted,
            CoreTrust::Blind => IdentityTrust::Blind,
            // Undecided, and any decision a later core adds: nothing is encrypted to it.
            _ => IdentityTrust::Undecided,
        }
    }
}

impl From<IdentityTrust> for CoreTrust {
    fn from(trust: IdentityTrust) -> Self {
        match trust {
            IdentityTrust::Trusted => CoreTrust::Trusted,
            IdentityTrust::Distrusted => CoreTrust::Distrusted,
            IdentityTrust::Undecided => CoreTrust::Undecided,
            IdentityTrust::Blind => CoreTrust::Blind,
        }
    }
}

/// How the machine decides about identity keys nobody decided about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TrustPolicy {
    /// Blind trust before verification (the default): every key of a contact is used until the
    /// user verifies one of them; after that, new keys wait for a decision.
    BlindTrustBeforeVerification,
    /// Trust on first use: a contact's first key is used, later ones wait for a decision.
    TrustOnFirstUse,
}

/// A decision recorded about one of a contact's identity keys.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TrustDecision {
    /// The key's fingerprint (lowercase hex, as [`XmppDecrypted::fingerprint`] gives it).
    pub fingerprint: String,
    /// The decision.
    pub trust: IdentityTrust,
}

/// An item to publish on our PEP service: a device list or a bundle.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PepItem {
    /// The version it belongs to.
    pub version: OmemoVersion,
    /// The pubsub node.
    pub node: String,
    /// The item id.
    pub item_id: String,
    /// The item's payload, an XML element.
    pub payload: String,
}

impl From<CorePepItem> for PepItem {
    fn from(item: CorePepItem) -> Self {
        Self {
            version: item.version.into(),
            node: item.node,
            item_id: item.item_id,
            payload: item.payload,
        }
    }
}

/// What a received device list changed.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceListUpdate {
    /// Devices new to the list.
    pub added: Vec<u32>,
    /// Devices that left it.
    pub removed: Vec<u32>,
    /// Our own list lacks our device: publish again.
    pub republish: bool,
    /// Our device id was taken by another device of the account; this is the new one.
    pub new_device_id: Option<u32>,
}

/// A bundle to fetch (`<items node=…><item id=…/>` from the JID) and hand to
/// [`XmppMachine::receive_bundle`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct BundleRequest {
    /// The bundle's owner.
    pub jid: String,
    /// The device.
    pub device_id: u32,
    /// The version.
    pub version: OmemoVersion,
    /// The pubsub node.
    pub node: String,
    /// The item id.
    pub item_id: String,
}

/// An `<encrypted>` element to send in a `<message>` to `to`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EncryptedStanza {
    /// The version (one message per version).
    pub version: OmemoVersion,
    /// The bare JID to send it to.
    pub to: String,
    /// The `<encrypted>` element.
    pub payload: String,
}

impl From<CoreStanza> for EncryptedStanza {
    fn from(stanza: CoreStanza) -> Self {
        Self {
            version: stanza.version.into(),
            to: stanza.to,
            payload: stanza.payload,
        }
    }
}

/// A device that did not get a message, and why (the core's reason: no session, undecided or
/// distrusted identity).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SkippedDevice {
    /// The owner.
    pub jid: String,
    /// The device.
    pub device_id: u32,
    /// The version it would get.
    pub version: OmemoVersion,
    /// Why, as the core names it.
    pub reason: String,
}

/// What an encryption produced.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EncryptOutcome {
    /// One element per version that reaches a device.
    pub stanzas: Vec<EncryptedStanza>,
    /// Devices left out, and why.
    pub skipped: Vec<SkippedDevice>,
}

impl From<CoreEncryptOutcome> for EncryptOutcome {
    fn from(outcome: CoreEncryptOutcome) -> Self {
        Self {
            stanzas: outcome.stanzas.into_iter().map(Into::into).collect(),
            skipped: outcome
                .skipped
                .into_iter()
                .map(|s| SkippedDevice {
                    jid: s.jid,
                    device_id: s.device_id,
                    version: s.version.into(),
                    reason: format!("{:?}", s.reason),
                })
                .collect(),
        }
    }
}

/// What a decryption produced (an object: the body is plaintext).
#[derive(uniffi::Object)]
pub struct XmppDecrypted(DecryptOutcome);

#[uniffi::export]
impl XmppDecrypted {
    /// Whether a message came (false for an empty message: a key exchange, a heartbeat).
    pub fn has_message(&self) -> bool {
        self.0.message.is_some()
    }

    /// The body, if the message has one.
    pub fn body(&self) -> Option<String> {
        self.0.message.as_ref().and_then(|m| m.body.clone())
    }

    /// The sender's device.
    pub fn sender_device(&self) -> Option<u32> {
        self.0.message.as_ref().map(|m| m.sender_device)
    }

    /// The version the message came in.
    pub fn version(&self) -> Option<OmemoVersion> {
        self.0.message.as_ref().map(|m| m.version.into())
    }

    /// The sender's identity fingerprint.
    pub fn fingerprint(&self) -> Option<String> {
        self.0.message.as_ref().map(|m| m.fingerprint.clone())
    }

    /// Answers to send now (the empty message completing a key exchange).
    pub fn replies(&self) -> Vec<EncryptedStanza> {
        self.0.replies.iter().cloned().map(Into::into).collect()
    }

    /// A pre-key was used: publish the bundles again.
    pub fn republish(&self) -> bool {
        self.0.republish
    }
}

/// One XMPP account's OMEMO, both versions, over a store.
#[derive(uniffi::Object)]
pub struct XmppMachine(CoreMachine<AnyStore>);

#[uniffi::export]
impl XmppMachine {
    /// Opens the account of `jid` (bare) in `store` under a 32-byte storage key, creating it
    /// with a random device id and fresh keys on first use.
    #[uniffi::constructor]
    pub fn open(
        store: Arc<OlmoStore>,
        storage_key: Vec<u8>,
        jid: String,
    ) -> Result<Arc<Self>, OlmoError> {
        let key = crate::error::storage_key(&storage_key)?;
        let machine = block_on(CoreMachine::open(
            store.0.clone(),
            &key,
            &jid,
            Timestamp::now(),
            &mut rand::rng(),
        ))?;
        Ok(Arc::new(Self(machine)))
    }

    /// Our bare JID.
    pub fn jid(&self) -> String {
        self.0.jid().to_owned()
    }

    /// Our device id.
    pub fn device_id(&self) -> Result<u32, OlmoError> {
        Ok(block_on(self.0.device_id())?)
    }

    /// Our identity fingerprint.
    pub fn fingerprint(&self) -> Result<String, OlmoError> {
        Ok(block_on(self.0.fingerprint())?)
    }

    /// Everything to publish: both device lists and both bundles.
    pub fn publish(&self) -> Result<Vec<PepItem>, OlmoError> {
        let items = block_on(self.0.publish(Timestamp::now(), &mut rand::rng()))?;
        Ok(items.into_iter().map(Into::into).collect())
    }

    /// A device list received from `from_jid` (either version).
    pub fn receive_device_list(
        &self,
        from_jid: String,
        xml: String,
    ) -> Result<DeviceListUpdate, OlmoError> {
        let update = block_on(
            self.0
                .receive_device_list(&from_jid, &xml, &mut rand::rng()),
        )?;
        Ok(DeviceListUpdate {
            added: update.added,
            removed: update.removed,
            republish: update.republish,
            new_device_id: update.new_device_id,
        })
    }

    /// The bundles to fetch before encrypting to `jids`.
    pub fn bundle_requests(&self, jids: Vec<String>) -> Result<Vec<BundleRequest>, OlmoError> {
        let jids: Vec<&str> = jids.iter().map(String::as_str).collect();
        let requests = block_on(self.0.bundle_requests(&jids))?;
        Ok(requests
            .into_iter()
            .map(|r| BundleRequest {
                jid: r.jid,
                device_id: r.device_id,
                version: r.version.into(),
                node: r.node,
                item_id: r.item_id,
            })
            .collect())
    }

    /// A fetched bundle of `jid`'s device `device_id` (its signature is checked).
    pub fn receive_bundle(
        &self,
        jid: String,
        device_id: u32,
        xml: String,
    ) -> Result<(), OlmoError> {
        Ok(block_on(self.0.receive_bundle(
            &jid,
            device_id,
            &xml,
            &mut rand::rng(),
        ))?)
    }

    /// Encrypts `body` to every device of `recipients` that may receive it, and our own other
    /// devices, for a stanza addressed to `stanza_to`.
    pub fn encrypt(
        &self,
        recipients: Vec<String>,
        stanza_to: String,
        body: String,
    ) -> Result<EncryptOutcome, OlmoError> {
        let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
        let outcome = block_on(self.0.encrypt(
            &recipients,
            &stanza_to,
            &body,
            Timestamp::now(),
            &mut rand::rng(),
        ))?;
        Ok(outcome.into())
    }

    /// Decrypts an `<encrypted>` element from `from` in a stanza to `stanza_to`; with a
    /// `stanza_id`, the same id again returns the stored outcome without decrypting.
    pub fn decrypt(
        &self,
        from: String,
        stanza_to: String,
        xml: String,
        stanza_id: Option<String>,
    ) -> Result<Arc<XmppDecrypted>, OlmoError> {
        let outcome = block_on(self.0.decrypt(
            &from,
            &stanza_to,
            &xml,
            stanza_id.as_deref(),
            &mut rand::rng(),
        ))?;
        Ok(Arc::new(XmppDecrypted(outcome)))
    }

    /// The user's decision about `jid`'s identity key `fingerprint` (one commit). Under blind
    /// trust before verification, once one key of a contact is trusted, its new keys wait for a
    /// decision.
    pub fn set_trust(
        &self,
        jid: String,
        fingerprint: String,
        trust: IdentityTrust,
    ) -> Result<(), OlmoError> {
        Ok(block_on(self.0.set_trust(
            &jid,
            &fingerprint,
            trust.into(),
            &mut rand::rng(),
        ))?)
    }

    /// Every decision recorded about `jid`'s identity keys (the policy's and the user's).
    pub fn trust_decisions(&self, jid: String) -> Result<Vec<TrustDecision>, OlmoError> {
        let decisions = block_on(self.0.trust_decisions(&jid))?;
        Ok(decisions
            .into_iter()
            .map(|(fingerprint, trust)| TrustDecision {
                fingerprint,
                trust: trust.into(),
            })
            .collect())
    }

    /// Sets how identity keys nobody decided about are treated (one commit).
    pub fn set_trust_policy(&self, policy: TrustPolicy) -> Result<(), OlmoError> {
        let policy = match policy {
            TrustPolicy::BlindTrustBeforeVerification => CorePolicy::BlindTrustBeforeVerification,
            TrustPolicy::TrustOnFirstUse => CorePolicy::TrustOnFirstUse,
        };
        Ok(block_on(self.0.set_trust_policy(policy, &mut rand::rng()))?)
    }
}
