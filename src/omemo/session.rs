//! An OMEMO session with one device, for one version: X3DH to start it, the shared double
//! ratchet to run it. The initiator repeats its key exchange on every message until a reply
//! decrypts; either side learns when a heartbeat is due.

pub(super) mod storage;

use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use super::bundle::{BundleError, VerifiedBundle};
use super::identity::{DeviceIdentity, WireIdentity};
use super::prekeys::{PreKeyError, PreKeys};
use super::profile::OmemoProfile;
use super::wire::{KeyExchange, RatchetMessage};
use super::{IdentityKey, x3dh};
use crate::codec::DecodeError;
use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, KeyError};
use crate::ratchet::{
    DecryptError, DoubleRatchet, EncryptError, ReceiveStep, ReceivedHeader, SendStep, SendUndo,
};

/// A message this far into a receiving chain that we have not answered yet means the peer
/// sent that many without a reply: send an empty message (XEP-0384's heartbeat), so its
/// ratchet moves on. python-omemo sends one for every such message; the first one of a chain
/// arriving that late is the case XEP-0384 names.
pub const HEARTBEAT_THRESHOLD: u32 = 53;
/// The largest plaintext a session encrypts (it carries payload keys, 32 or 48 bytes).
pub const MAX_KEY_MATERIAL_LENGTH: usize = 1024;

/// Why a session could not be made or could not decrypt. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The message or key exchange is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The bundle was refused.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The key exchange names pre-keys we do not have.
    #[error(transparent)]
    PreKey(#[from] PreKeyError),
    /// A key was invalid or a Diffie-Hellman result non-contributory.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The identity key is not in this version's form or not a valid point.
    #[error("the identity key is invalid for this version")]
    IdentityKey,
    /// A key exchange that belongs to another session.
    #[error("the key exchange belongs to another session")]
    SessionMismatch,
    /// The ratchet refused the message (MAC, replay, too far ahead, ...).
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The ratchet refused to encrypt.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
}

/// An encrypted key element's content, and whether it carries the key exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// The bytes inside `<key>`: a key exchange or a ratchet message.
    pub data: Vec<u8>,
    /// Whether `data` is a key exchange (`kex='true'`, `prekey='true'`).
    pub key_exchange: bool,
}

/// A decrypted key element.
pub struct DecryptedKeyMaterial {
    /// The key material (payload key, or 32 zero bytes for an empty message).
    pub key_material: Zeroizing<Vec<u8>>,
    /// The message has index ≥ [`HEARTBEAT_THRESHOLD`] on a chain we have not answered: send
    /// an empty message back.
    pub heartbeat_due: bool,
}

impl fmt::Debug for DecryptedKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptedKeyMaterial")
            .field("key_material", &"<secret>")
            .field("heartbeat_due", &self.heartbeat_due)
            .finish()
    }
}

/// A new session on the responder's side, made from a key exchange that decrypted.
#[derive(Debug)]
pub struct OmemoInboundSession<P: OmemoProfile> {
    /// The session.
    pub session: OmemoSession<P>,
    /// The first message's content.
    pub decrypted: DecryptedKeyMaterial,
    /// The one-time pre-key the exchange used: remove it from the pool (and republish).
    pub used_pre_key: Option<u32>,
}

/// A session with one remote device.
#[derive(Clone)]
pub struct OmemoSession<P: OmemoProfile> {
    ratchet: DoubleRatchet<P>,
    our_identity: IdentityKey,
    their_identity: IdentityKey,
    initiator: bool,
    /// The key exchange: the initiator sends it until a reply decrypts; the responder keeps it
    /// to recognise repeats.
    key_exchange: KeyExchange,
    confirmed: bool,
}

impl<P: OmemoProfile> OmemoSession<P> {
    /// Starts a session from a device's bundle (verified when it was made); OMEMO 2
    /// requires a one-time pre-key, OMEMO 0.3 uses one when the bundle has any.
    /// `registration_id` is 0.3's `registrationId` (Conversations sends its device id).
    pub fn initiate(
        identity: &DeviceIdentity,
        bundle: &VerifiedBundle,
        registration_id: Option<u32>,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, SessionError> {
        if bundle.version() != P::VERSION {
            return Err(SessionError::IdentityKey);
        }
        let pre_key = match bundle.choose_pre_key(rng) {
            Ok(pre_key) => Some(pre_key),
            Err(BundleError::NoPreKeys) if P::VERSION == super::Version::Omemo03 => None,
            Err(error) => return Err(error.into()),
        };
        let base_key = Curve25519KeyPair::generate(rng);
        let root = x3dh::initiate(
            P::X3DH_INFO,
            identity,
            &base_key,
            bundle.identity_curve25519(),
            bundle.signed_pre_key(),
            pre_key.as_ref().map(|(_, key)| key),
        )?;
        let ratchet = DoubleRatchet::initiator(
            &root,
            Curve25519KeyPair::generate(rng),
            bundle.signed_pre_key(),
        )?;
        let key_exchange = KeyExchange {
            pre_key_id: pre_key.map(|(id, _)| id),
            signed_pre_key_id: bundle.signed_pre_key_id(),
            identity_key: identity.identity_key(P::VERSION),
            base_key: base_key.public_key(),
            registration_id: match P::VERSION {
                super::Version::Omemo2 => None,
                super::Version::Omemo03 => registration_id,
            },
        };
        Ok(Self {
            ratchet,
            our_identity: identity.identity_key(P::VERSION),
            their_identity: bundle.identity_key(),
            initiator: true,
            key_exchange,
            confirmed: false,
        })
    }

    /// Answers a key exchange (the bytes of a `kex`/`prekey` key element): finds the pre-keys
    /// it names, runs X3DH and decrypts its message. Only a message that decrypts makes a
    /// session; `pre_keys` is not changed (remove [`OmemoInboundSession::used_pre_key`] then).
    pub fn respond(
        identity: &DeviceIdentity,
        pre_keys: &PreKeys,
        key_exchange: &[u8],
    ) -> Result<OmemoInboundSession<P>, SessionError> {
        let (exchange, message) = P::open_key_exchange(key_exchange)?;
        Self::respond_to(identity, pre_keys, exchange, &message)
    }

    pub(crate) fn respond_to(
        identity: &DeviceIdentity,
        pre_keys: &PreKeys,
        exchange: KeyExchange,
        message: &RatchetMessage,
    ) -> Result<OmemoInboundSession<P>, SessionError> {
        if pre_keys.version() != P::VERSION || !P::accepts_identity(&exchange.identity_key) {
            return Err(SessionError::IdentityKey);
        }
        let signed = pre_keys.find_signed(exchange.signed_pre_key_id)?;
        let pre_key = match exchange.pre_key_id {
            Some(id) => Some(pre_keys.find_pre_key(id)?),
            None if P::VERSION == super::Version::Omemo2 => {
                return Err(PreKeyError::MissingPreKey.into());
            }
            None => None,
        };
        let their_identity = exchange
            .identity_key
            .curve25519()
            .map_err(|_| SessionError::IdentityKey)?;
        let root = x3dh::respond(
            P::X3DH_INFO,
            identity,
            signed,
            pre_key,
            &their_identity,
            &exchange.base_key,
        )?;
        let mut session = Self {
            ratchet: DoubleRatchet::responder(&root, signed.clone()),
            our_identity: identity.identity_key(P::VERSION),
            their_identity: exchange.identity_key,
            initiator: false,
            key_exchange: exchange,
            confirmed: true,
        };
        let decrypted = session.decrypt_message(message)?;
        Ok(OmemoInboundSession {
            used_pre_key: session.key_exchange.pre_key_id,
            session,
            decrypted,
        })
    }

    /// The remote device's identity key, as its key exchange or bundle gave it.
    pub fn their_identity(&self) -> IdentityKey {
        self.their_identity
    }

    /// Whether we started the session.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Whether messages we send still carry the key exchange (no reply has decrypted yet).
    pub fn sends_key_exchange(&self) -> bool {
        self.initiator && !self.confirmed
    }

    /// Whether the peer has shown it received a message of ours: as initiator, a reply
    /// decrypted (it answers our key exchange); as responder, a message on a second receiving
    /// chain decrypted, which only a peer holding our ratchet key, sent after its key exchange,
    /// can make. Anyone can send a key exchange; only a real correspondent gets this far.
    pub fn is_answered(&self) -> bool {
        let chains = self.ratchet.state.receiving_chains.len();
        if self.initiator {
            chains >= 1
        } else {
            chains >= 2
        }
    }

    /// The initiator's base key, which identifies the key exchange (and this session).
    pub fn base_key(&self) -> Curve25519PublicKey {
        self.key_exchange.base_key
    }

    /// Encrypts key material with the thread's CSPRNG for ratchet steps.
    pub fn encrypt(&mut self, key_material: &[u8]) -> Result<SealedKey, SessionError> {
        self.encrypt_with_rng(key_material, &mut rand::rng())
    }

    /// Encrypts key material. The ratchet has advanced when this returns: persist the session
    /// before sending.
    pub fn encrypt_with_rng(
        &mut self,
        key_material: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<SealedKey, SessionError> {
        let (key, step) = self.encrypt_staged(key_material, rng)?;
        self.apply_send(step);
        Ok(key)
    }

    /// [`Self::encrypt_with_rng`] without changing the session; [`Self::apply_send`] writes
    /// the step.
    pub(crate) fn encrypt_staged(
        &self,
        key_material: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<(SealedKey, SendStep), SessionError> {
        if key_material.len() > MAX_KEY_MATERIAL_LENGTH {
            return Err(EncryptError::MessageTooLarge {
                length: key_material.len(),
                limit: MAX_KEY_MATERIAL_LENGTH,
            }
            .into());
        }
        let (initiator, responder) = self.identities();
        let prefix = P::mac_prefix(initiator.as_slice(), responder.as_slice(), self.initiator);
        let (sealed, step) =
            self.ratchet
                .encrypt_staged(rng, key_material, &prefix, P::encode_message)?;
        let message = P::seal(sealed.message, sealed.mac);
        let key = if self.sends_key_exchange() {
            SealedKey {
                data: P::encode_key_exchange(&self.key_exchange, message),
                key_exchange: true,
            }
        } else {
            SealedKey {
                data: message,
                key_exchange: false,
            }
        };
        Ok((key, step))
    }

    /// Writes a step [`Self::encrypt_staged`] computed on this session; returns what it
    /// replaced, for [`Self::undo_send`].
    pub(crate) fn apply_send(&mut self, step: SendStep) -> SendUndo {
        self.ratchet.apply_send(step)
    }

    /// Puts back what [`Self::apply_send`] replaced.
    pub(crate) fn undo_send(&mut self, undo: SendUndo) {
        self.ratchet.undo_send(undo);
    }

    /// Decrypts a key element's content. A key exchange must be this session's own (a repeat
    /// of the one that made it). On any error the session is unchanged.
    pub fn decrypt(&mut self, key: &SealedKey) -> Result<DecryptedKeyMaterial, SessionError> {
        let message = if key.key_exchange {
            let (exchange, message) = P::open_key_exchange(&key.data)?;
            if !self.matches(&exchange) {
                return Err(SessionError::SessionMismatch);
            }
            message
        } else {
            P::open(&key.data)?
        };
        self.decrypt_message(&message)
    }

    /// Whether `exchange` is the one that made this session. Every field the MAC does not
    /// cover must repeat exactly (0.3's `registrationId` aside, which nothing uses), so that no
    /// bit of a repeated key exchange changes unnoticed.
    pub(crate) fn matches(&self, exchange: &KeyExchange) -> bool {
        let ours = &self.key_exchange;
        !self.initiator
            && exchange.base_key == ours.base_key
            && exchange.identity_key == self.their_identity
            && exchange.pre_key_id == ours.pre_key_id
            && exchange.signed_pre_key_id == ours.signed_pre_key_id
    }

    pub(crate) fn decrypt_message(
        &mut self,
        message: &RatchetMessage,
    ) -> Result<DecryptedKeyMaterial, SessionError> {
        let (decrypted, step) = self.decrypt_staged(message)?;
        self.apply_receive(step);
        Ok(decrypted)
    }

    /// Decrypts a message without changing the session; [`Self::apply_receive`] writes the
    /// step.
    pub(crate) fn decrypt_staged(
        &self,
        message: &RatchetMessage,
    ) -> Result<(DecryptedKeyMaterial, ReceiveStep), SessionError> {
        let header = ReceivedHeader {
            ratchet_key: message.ratchet_key,
            index: message.index,
        };
        let (initiator, responder) = self.identities();
        let [first, second] =
            P::mac_prefix(initiator.as_slice(), responder.as_slice(), !self.initiator);
        let (key_material, step) = self.ratchet.decrypt_staged(
            &header,
            &[first, second, &message.authenticated],
            &message.mac,
            &message.ciphertext,
        )?;
        // No sending chain once the step is applied: nothing sent since the peer's newest
        // ratchet key arrived.
        let no_sending_chain = step.opens_chain() || self.ratchet.needs_new_ratchet_key();
        Ok((
            DecryptedKeyMaterial {
                key_material,
                heartbeat_due: message.index >= HEARTBEAT_THRESHOLD && no_sending_chain,
            },
            step,
        ))
    }

    /// Writes a step [`Self::decrypt_staged`] computed on this session.
    pub(crate) fn apply_receive(&mut self, step: ReceiveStep) {
        self.ratchet.apply_receive(step);
        self.confirmed = true;
    }

    fn identities(&self) -> (WireIdentity, WireIdentity) {
        let ours = self.our_identity.wire_form();
        let theirs = self.their_identity.wire_form();
        if self.initiator {
            (ours, theirs)
        } else {
            (theirs, ours)
        }
    }
}

impl<P: OmemoProfile> fmt::Debug for OmemoSession<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OmemoSession")
            .field("version", &P::VERSION)
            .field("their_identity", &self.their_identity)
            .field("initiator", &self.initiator)
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}
