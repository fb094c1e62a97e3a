//! OMEMO's low-level device: identity, pre-keys, bundles and sessions of both versions, with
//! save/restore. Stanza parts cross as XML strings (what goes into `<bundle>` and
//! `<encrypted>`); the XMPP machine ([`crate::xmpp`]) is the layer most apps want.

use std::sync::Arc;

use olmo::omemo::stanza::{BundleElement, EncryptedElement};
use olmo::omemo::{OmemoDevice as CoreDevice, ReceivedMessage, VerifiedBundle, Version};

use crate::error::{OlmoError, storage_key};
use crate::sync::Locked;
use crate::xmpp::OmemoVersion;

fn core_version(version: OmemoVersion) -> Version {
    match version {
        OmemoVersion::Omemo2 => Version::Omemo2,
        OmemoVersion::Omemo03 => Version::Omemo03,
    }
}

/// A recipient device: its bare JID and device id.
#[derive(Debug, Clone, uniffi::Record)]
pub struct OmemoAddress {
    /// The bare JID.
    pub jid: String,
    /// The device id.
    pub device_id: u32,
}

/// A decrypted OMEMO message (an object: the plaintext is secret).
#[derive(uniffi::Object)]
pub struct OmemoReceived(ReceivedMessage);

#[uniffi::export]
impl OmemoReceived {
    /// The version it came in.
    pub fn version(&self) -> OmemoVersion {
        self.0.version.into()
    }

    /// The sender's device id.
    pub fn sender_device(&self) -> u32 {
        self.0.sender_device
    }

    /// The payload (an SCE envelope for OMEMO 2, the body for 0.3); none for an empty message.
    pub fn plaintext(&self) -> Option<Vec<u8>> {
        self.0.plaintext.as_ref().map(|p| p.to_vec())
    }

    /// The message started a new session (answer it with an empty message).
    pub fn new_session(&self) -> bool {
        self.0.new_session
    }

    /// The pre-key the new session used, now replaced: publish the bundle again.
    pub fn pre_key_used(&self) -> Option<u32> {
        self.0.pre_key_used
    }
}

/// One OMEMO device: its identity, pre-keys and sessions of both versions.
#[derive(uniffi::Object)]
pub struct OmemoDevice(Locked<CoreDevice>);

#[uniffi::export]
impl OmemoDevice {
    /// A new device of `jid` with id `device_id` and fresh keys.
    #[uniffi::constructor]
    pub fn new(jid: String, device_id: u32) -> Arc<Self> {
        Arc::new(Self(Locked::new(CoreDevice::new(&jid, device_id))))
    }

    /// Restores a device from [`OmemoDevice::save`]'s blob and the same 32-byte key.
    #[uniffi::constructor]
    pub fn restore(blob: Vec<u8>, key: Vec<u8>) -> Result<Arc<Self>, OlmoError> {
        let device = CoreDevice::restore(&blob, &storage_key(&key)?)?;
        Ok(Arc::new(Self(Locked::new(device))))
    }

    /// The device sealed under a 32-byte key; save after every encrypt and decrypt.
    pub fn save(&self, key: Vec<u8>) -> Result<Vec<u8>, OlmoError> {
        Ok(self.0.lock().save(&storage_key(&key)?))
    }

    /// The bare JID.
    pub fn jid(&self) -> String {
        self.0.lock().jid().to_owned()
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.0.lock().device_id()
    }

    /// The identity's fingerprint, as clients show it.
    pub fn fingerprint(&self) -> String {
        self.0.lock().identity().fingerprint()
    }

    /// The `<bundle>` element to publish for `version`.
    pub fn bundle(&self, version: OmemoVersion) -> String {
        self.0
            .lock()
            .bundle(core_version(version))
            .to_element()
            .serialize()
    }

    /// Starts a session with `jid`'s device `device_id` from its published `<bundle>` (the
    /// signature is checked first).
    pub fn build_session(
        &self,
        jid: String,
        device_id: u32,
        bundle: String,
    ) -> Result<(), OlmoError> {
        let element = BundleElement::parse(&bundle).map_err(omemo_error)?;
        let bundle = VerifiedBundle::from_element(&element).map_err(omemo_error)?;
        self.0
            .lock()
            .build_session(&jid, device_id, &bundle, &mut rand::rng())
            .map_err(omemo_error)
    }

    /// Encrypts `plaintext` once, with a key for each recipient device (sessions needed); the
    /// `<encrypted>` element.
    pub fn encrypt_message(
        &self,
        version: OmemoVersion,
        recipients: Vec<OmemoAddress>,
        plaintext: Vec<u8>,
    ) -> Result<String, OlmoError> {
        let recipients: Vec<(&str, u32)> = recipients
            .iter()
            .map(|r| (r.jid.as_str(), r.device_id))
            .collect();
        let element = self
            .0
            .lock()
            .encrypt_message(
                core_version(version),
                &recipients,
                &plaintext,
                &mut rand::rng(),
            )
            .map_err(omemo_error)?;
        Ok(element.serialize())
    }

    /// Decrypts an `<encrypted>` element from `sender_jid`.
    pub fn decrypt_message(
        &self,
        sender_jid: String,
        element: String,
    ) -> Result<Arc<OmemoReceived>, OlmoError> {
        let element = EncryptedElement::parse(&element).map_err(|e| OlmoError::Decode {
            reason: e.to_string(),
        })?;
        let received = self
            .0
            .lock()
            .decrypt_message(&sender_jid, &element, &mut rand::rng())
            .map_err(|e| OlmoError::Decrypt {
                reason: e.to_string(),
            })?;
        Ok(Arc::new(OmemoReceived(received)))
    }
}

fn omemo_error(error: impl std::fmt::Display) -> OlmoError {
    OlmoError::Omemo {
        reason: error.to_string(),
    }
}
