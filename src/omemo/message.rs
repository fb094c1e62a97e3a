//! Whole messages: one payload encrypted once, its key material encrypted to every recipient
//! device, all in one `<encrypted>` element; and the reverse, which commits the session only
//! once the payload has authenticated too.

use std::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

use super::device::{
    DeviceError, OmemoDevice, Select, Staged, VersionState, commit_key, no_session, stage_key,
};
use super::identity::DeviceIdentity;
use super::payload::{self, PayloadError};
use super::profile::{Omemo2, Omemo03, OmemoProfile};
use super::session::DecryptedKeyMaterial;
use super::stanza::{self, EncryptedElement};
use super::store::SessionStore;
use super::{IdentityKey, Version};

/// Key elements addressed to us that one message may make us try (device ids can collide; an
/// attacker must not make us run X3DH without bound).
pub const MAX_KEY_ATTEMPTS: usize = 4;

/// Why a message could not be decrypted. The device is unchanged. [`MessageError::reason`]
/// gives the cause without the layers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The element has no key for this device.
    #[error("the message has no key for this device")]
    NotForUs,
    /// OMEMO 0.3 element without `<iv>`.
    #[error("the message has no IV")]
    MissingIv,
    /// No `<payload>`, but the key material is not an empty message's (OMEMO 2: 32 zero
    /// bytes; 0.3: a bare 16-byte key): the payload was stripped.
    #[error("the message has no payload but its key is not an empty message's")]
    MissingPayload,
    /// The key element was refused.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The payload was refused.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// A decrypted `<encrypted>` element.
pub struct ReceivedMessage {
    /// The version it came in.
    pub version: Version,
    /// The sender's device id.
    pub sender_device: u32,
    /// The sender's identity key, as its session knows it.
    pub sender_identity: IdentityKey,
    /// The payload: an SCE envelope (OMEMO 2) or the body (0.3). `None` for an empty message.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The message started a new session.
    pub new_session: bool,
    /// The pre-key the new session used was replaced: publish the bundle again.
    pub pre_key_used: Option<u32>,
    /// Send an empty message back: the key exchange wants completing, or a heartbeat is due.
    pub reply_due: bool,
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("version", &self.version)
            .field("sender_device", &self.sender_device)
            .field("empty", &self.plaintext.is_none())
            .field("new_session", &self.new_session)
            .field("reply_due", &self.reply_due)
            .finish_non_exhaustive()
    }
}

impl OmemoDevice {
    /// Encrypts `plaintext` once and its key to every recipient device (each needs a session,
    /// see [`OmemoDevice::build_session`]). For OMEMO 2 the plaintext is an SCE envelope
    /// ([`stanza::Envelope`]); for 0.3 the body text. All sessions advance, or none does
    /// (persist the device before sending).
    pub fn encrypt_message(
        &mut self,
        version: Version,
        recipients: &[(&str, u32)],
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<EncryptedElement, DeviceError> {
        match version {
            Version::Omemo2 => {
                let sealed = payload::encrypt_omemo2(plaintext, rng);
                let keys = self.encrypt_keys::<Omemo2>(recipients, &sealed.key_material, rng)?;
                Ok(self.element(version, keys, None, Some(sealed.ciphertext)))
            }
            Version::Omemo03 => {
                let sealed = payload::encrypt_omemo03(plaintext, rng);
                let keys = self.encrypt_keys::<Omemo03>(recipients, &sealed.key_material, rng)?;
                Ok(self.element(
                    version,
                    keys,
                    Some(sealed.iv.to_vec()),
                    Some(sealed.ciphertext),
                ))
            }
        }
    }

    /// An empty message (no payload) to the recipients: completes key exchanges, answers
    /// heartbeats. OMEMO 2 sends 32 zero bytes through the ratchet; 0.3 sends a random 16-byte
    /// key and an IV, as python-omemo and libsignal clients do.
    pub fn encrypt_empty(
        &mut self,
        version: Version,
        recipients: &[(&str, u32)],
        rng: &mut impl CryptoRng,
    ) -> Result<EncryptedElement, DeviceError> {
        match version {
            Version::Omemo2 => {
                let keys = self.encrypt_keys::<Omemo2>(recipients, &[0; 32], rng)?;
                Ok(self.element(version, keys, None, None))
            }
            Version::Omemo03 => {
                let mut key = Zeroizing::new([0u8; 16]);
                rng.fill_bytes(key.as_mut());
                let mut iv = [0u8; 12];
                rng.fill_bytes(&mut iv);
                let keys = self.encrypt_keys::<Omemo03>(recipients, key.as_ref(), rng)?;
                Ok(self.element(version, keys, Some(iv.to_vec()), None))
            }
        }
    }

    fn encrypt_keys<P: Select>(
        &mut self,
        recipients: &[(&str, u32)],
        key_material: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<stanza::KeyElement>, DeviceError> {
        let sessions = &mut P::state_mut(self).sessions;
        encrypt_keys(P::VERSION, sessions, recipients, key_material, rng)
    }

    fn element(
        &self,
        version: Version,
        keys: Vec<stanza::KeyElement>,
        iv: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
    ) -> EncryptedElement {
        EncryptedElement {
            version,
            sender_device: self.device_id,
            keys,
            iv,
            payload,
        }
    }

    /// Decrypts an `<encrypted>` element from `sender_jid` (a bare JID). The key element for
    /// this device is decrypted, then the payload is authenticated and decrypted, and only
    /// then does the session change.
    pub fn decrypt_message(
        &mut self,
        sender_jid: &str,
        element: &EncryptedElement,
        rng: &mut impl CryptoRng,
    ) -> Result<ReceivedMessage, MessageError> {
        match element.version {
            Version::Omemo2 => self.decrypt_message_as::<Omemo2>(sender_jid, element, rng),
            Version::Omemo03 => self.decrypt_message_as::<Omemo03>(sender_jid, element, rng),
        }
    }

    fn decrypt_message_as<P: Select>(
        &mut self,
        sender_jid: &str,
        element: &EncryptedElement,
        rng: &mut impl CryptoRng,
    ) -> Result<ReceivedMessage, MessageError> {
        let device_id = self.device_id;
        let (jid, identity, state) = P::split(self);
        let us = ((P::VERSION == Version::Omemo2).then_some(jid), device_id);
        decrypt_message(P::VERSION, identity, state, us, sender_jid, element, rng)
    }
}

/// [`OmemoDevice::encrypt_message`]'s keys in `sessions`, of `version` (`P`'s, as a value: this
/// code exists once for both versions).
fn encrypt_keys<P: OmemoProfile>(
    version: Version,
    sessions: &mut SessionStore<P>,
    recipients: &[(&str, u32)],
    key_material: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<stanza::KeyElement>, DeviceError> {
    // Each session encrypts and advances in one lookup; if a recipient fails, the sessions
    // already advanced are put back (they are few and failures rare), so all advance or
    // none does.
    let clock = sessions.clock;
    // The last recipient's change never needs undoing: one recipient needs no list.
    let mut undo = Vec::with_capacity(recipients.len().saturating_sub(1));
    let mut keys = Vec::with_capacity(recipients.len());
    for (index, &(jid, device_id)) in recipients.iter().enumerate() {
        // A failure gives the failing slot's last use too (`use_slot` changed it).
        let encrypted = match sessions.use_slot(jid, device_id) {
            None => Err((no_session(version, jid, device_id), None)),
            Some((slot, last_used)) => {
                let session = &mut slot.current.state;
                match session.encrypt_staged(key_material, rng) {
                    Ok((key, step)) => Ok((key, last_used, session.apply_send(step))),
                    Err(error) => Err((error.into(), Some(last_used))),
                }
            }
        };
        match encrypted {
            Ok((key, last_used, step_undo)) => {
                keys.push(stanza::KeyElement {
                    jid: (version == Version::Omemo2).then(|| jid.to_owned()),
                    device_id,
                    key_exchange: key.key_exchange,
                    data: key.data,
                });
                if index + 1 < recipients.len() {
                    undo.push((last_used, step_undo));
                }
            }
            Err((error, last_used)) => {
                if let Some(last_used) = last_used {
                    sessions.rewind(clock, jid, device_id, last_used);
                }
                let done = recipients.iter().zip(undo).rev();
                for (&(jid, device_id), (last_used, step_undo)) in done {
                    if let Some(slot) = sessions.rewind(clock, jid, device_id, last_used) {
                        slot.current.state.undo_send(step_undo);
                    }
                }
                sessions.clock = clock;
                return Err(error);
            }
        }
    }
    Ok(keys)
}

/// [`OmemoDevice::decrypt_message`] in `state`, of `version` (`P`'s, as a value); `us` is our
/// JID as OMEMO 2's key elements name it (0.3's do not) and our device id.
fn decrypt_message<P: OmemoProfile>(
    version: Version,
    identity: &DeviceIdentity,
    state: &mut VersionState<P>,
    us: (Option<&str>, u32),
    sender_jid: &str,
    element: &EncryptedElement,
    rng: &mut impl CryptoRng,
) -> Result<ReceivedMessage, MessageError> {
    // The keys addressed to us, on the stack (they borrow the element, not the device).
    let mut keys: [Option<&stanza::KeyElement>; MAX_KEY_ATTEMPTS] = [None; MAX_KEY_ATTEMPTS];
    for (slot, key) in keys.iter_mut().zip(element.keys_for(us.0, us.1)) {
        *slot = Some(key);
    }
    // Each key addressed to us is tried (ids may collide); the first that opens the
    // payload too is committed, and a failed one changes nothing.
    let mut first_error = None;
    for key in keys.into_iter().flatten() {
        match open_with(version, identity, state, sender_jid, element, key) {
            Ok((staged, decrypted, plaintext)) => {
                let sender_identity = staged.their_identity();
                let opened = commit_key(state, staged, decrypted, rng);
                return Ok(ReceivedMessage {
                    version,
                    sender_device: element.sender_device,
                    sender_identity,
                    plaintext,
                    new_session: opened.new_session,
                    pre_key_used: opened.pre_key_used,
                    reply_due: key.key_exchange || opened.decrypted.heartbeat_due,
                });
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(MessageError::NotForUs))
}

/// Decrypts one key element and the payload with it, changing nothing.
fn open_with<'a, P: OmemoProfile>(
    version: Version,
    identity: &DeviceIdentity,
    state: &VersionState<P>,
    sender_jid: &'a str,
    element: &EncryptedElement,
    key: &stanza::KeyElement,
) -> Result<Opened<'a>, MessageError> {
    let (staged, decrypted) = stage_key(
        version,
        identity,
        state,
        (sender_jid, element.sender_device),
        &key.data,
        key.key_exchange,
    )?;
    let plaintext = match (&element.payload, version) {
        (None, _) if is_empty_message(version, &decrypted.key_material) => None,
        (None, _) => return Err(MessageError::MissingPayload),
        (Some(ciphertext), Version::Omemo2) => Some(payload::decrypt_omemo2(
            &decrypted.key_material,
            ciphertext,
        )?),
        (Some(ciphertext), Version::Omemo03) => {
            let iv = element.iv.as_deref().ok_or(MessageError::MissingIv)?;
            Some(payload::decrypt_omemo03(
                &decrypted.key_material,
                iv,
                ciphertext,
            )?)
        }
    };
    Ok((staged, decrypted, plaintext))
}

/// A key element and payload decrypted, not yet committed: the staged session change, the key
/// element's content and the plaintext (`None`: an empty message).
type Opened<'a> = (Staged<'a>, DecryptedKeyMaterial, Option<Zeroizing<Vec<u8>>>);

/// Whether key material that came without a payload is an empty message's: OMEMO 2's 32 zero
/// bytes, or 0.3's bare 16-byte key (what olmo, python-omemo and libsignal clients send). A
/// payload key, which carries its tag (48 or 32 bytes), means the payload was stripped.
fn is_empty_message(version: Version, key_material: &[u8]) -> bool {
    match version {
        Version::Omemo2 => {
            key_material.len() == 32 && bool::from(key_material.ct_eq(&[0u8; 32][..]))
        }
        Version::Omemo03 => key_material.len() == 16,
    }
}
