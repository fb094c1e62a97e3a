//! An OMEMO session with one device, for one version: X3DH to start it, the shared double
//! ratchet to run it. The initiator repeats its key exchange on every message until a reply
//! decrypts; either side learns when a heartbeat is due.

pub(super) mod storage;

use std::fmt;
use std::marker::PhantomData;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use super::bundle::{BundleError, VerifiedBundle};
use super::identity::{DeviceIdentity, WireIdentity};
use super::prekeys::{PreKeyError, PreKeys};
use super::profile::{Omemo2, Omemo03, OmemoProfile};
use super::wire::{KeyExchange, RatchetMessage, omemo2, omemo03};
use super::{IdentityKey, Version, x3dh};
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

/// A session with one remote device. The version is a type, so that a session of one version
/// cannot be driven as the other's; the code runs on [`SessionState`], whose ratchet says the
/// version at run time, so it exists once in a binary rather than once per version (the `.wasm`
/// package carries both).
#[derive(Clone)]
pub struct OmemoSession<P: OmemoProfile> {
    pub(crate) state: SessionState,
    profile: PhantomData<P>,
}

/// A session's ratchet, of its version.
#[derive(Clone)]
pub(crate) enum Ratchet {
    Omemo2(DoubleRatchet<Omemo2>),
    Omemo03(DoubleRatchet<Omemo03>),
}

/// Runs `$body` on the ratchet of either version (bound to `$r`).
macro_rules! on_ratchet {
    ($ratchet:expr, $r:ident => $body:expr) => {
        match $ratchet {
            Ratchet::Omemo2($r) => $body,
            Ratchet::Omemo03($r) => $body,
        }
    };
}
pub(crate) use on_ratchet;

impl Ratchet {
    /// The version of the session.
    pub(crate) fn version(&self) -> Version {
        match self {
            Ratchet::Omemo2(_) => Version::Omemo2,
            Ratchet::Omemo03(_) => Version::Omemo03,
        }
    }

    fn initiator(
        version: Version,
        root: &[u8; 32],
        our_ratchet_key: Curve25519KeyPair,
        their_ratchet_key: &Curve25519PublicKey,
    ) -> Result<Self, EncryptError> {
        Ok(match version {
            Version::Omemo2 => Ratchet::Omemo2(DoubleRatchet::initiator(
                root,
                our_ratchet_key,
                their_ratchet_key,
            )?),
            Version::Omemo03 => Ratchet::Omemo03(DoubleRatchet::initiator(
                root,
                our_ratchet_key,
                their_ratchet_key,
            )?),
        })
    }

    fn responder(version: Version, root: &[u8; 32], our_ratchet_key: Curve25519KeyPair) -> Self {
        match version {
            Version::Omemo2 => Ratchet::Omemo2(DoubleRatchet::responder(root, our_ratchet_key)),
            Version::Omemo03 => Ratchet::Omemo03(DoubleRatchet::responder(root, our_ratchet_key)),
        }
    }

    fn receiving_chains(&self) -> usize {
        on_ratchet!(self, r => r.state.receiving_chains.len())
    }
}

/// The fields and code of an [`OmemoSession`], whatever its version.
#[derive(Clone)]
pub(crate) struct SessionState {
    pub(crate) ratchet: Ratchet,
    pub(crate) our_identity: IdentityKey,
    pub(crate) their_identity: IdentityKey,
    pub(crate) initiator: bool,
    /// The key exchange: the initiator sends it until a reply decrypts; the responder keeps it
    /// to recognise repeats.
    pub(crate) key_exchange: KeyExchange,
    pub(crate) confirmed: bool,
}

impl<P: OmemoProfile> OmemoSession<P> {
    /// A typed session of a state of `P`'s version (the caller made or read it as that).
    pub(crate) fn from_state(state: SessionState) -> Self {
        debug_assert_eq!(state.version(), P::VERSION);
        Self {
            state,
            profile: PhantomData,
        }
    }

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
        SessionState::initiate(identity, bundle, registration_id, rng).map(Self::from_state)
    }

    /// Answers a key exchange (the bytes of a `kex`/`prekey` key element): finds the pre-keys
    /// it names, runs X3DH and decrypts its message. Only a message that decrypts makes a
    /// session; `pre_keys` is not changed (remove [`OmemoInboundSession::used_pre_key`] then).
    pub fn respond(
        identity: &DeviceIdentity,
        pre_keys: &PreKeys,
        key_exchange: &[u8],
    ) -> Result<OmemoInboundSession<P>, SessionError> {
        let (exchange, message) = open_key_exchange(P::VERSION, key_exchange)?;
        let (state, decrypted) =
            SessionState::respond_to(P::VERSION, identity, pre_keys, exchange, &message)?;
        Ok(OmemoInboundSession {
            used_pre_key: state.key_exchange.pre_key_id,
            session: Self::from_state(state),
            decrypted,
        })
    }

    /// The remote device's identity key, as its key exchange or bundle gave it.
    pub fn their_identity(&self) -> IdentityKey {
        self.state.their_identity
    }

    /// Whether we started the session.
    pub fn is_initiator(&self) -> bool {
        self.state.initiator
    }

    /// Whether messages we send still carry the key exchange (no reply has decrypted yet).
    pub fn sends_key_exchange(&self) -> bool {
        self.state.sends_key_exchange()
    }

    /// Whether the peer has shown it received a message of ours: as initiator, a reply
    /// decrypted (it answers our key exchange); as responder, a message on a second receiving
    /// chain decrypted, which only a peer holding our ratchet key, sent after its key exchange,
    /// can make. Anyone can send a key exchange; only a real correspondent gets this far.
    pub fn is_answered(&self) -> bool {
        self.state.is_answered()
    }

    /// The initiator's base key, which identifies the key exchange (and this session).
    pub fn base_key(&self) -> Curve25519PublicKey {
        self.state.key_exchange.base_key
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
        let (key, step) = self.state.encrypt_staged(key_material, rng)?;
        self.state.apply_send(step);
        Ok(key)
    }

    /// Decrypts a key element's content. A key exchange must be this session's own (a repeat
    /// of the one that made it). On any error the session is unchanged.
    pub fn decrypt(&mut self, key: &SealedKey) -> Result<DecryptedKeyMaterial, SessionError> {
        self.state.decrypt(key)
    }
}

impl SessionState {
    /// The session's version.
    pub(crate) fn version(&self) -> Version {
        self.ratchet.version()
    }

    /// [`OmemoSession::initiate`] in the bundle's version.
    pub(crate) fn initiate(
        identity: &DeviceIdentity,
        bundle: &VerifiedBundle,
        registration_id: Option<u32>,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, SessionError> {
        let version = bundle.version();
        let pre_key = match bundle.choose_pre_key(rng) {
            Ok(pre_key) => Some(pre_key),
            Err(BundleError::NoPreKeys) if version == Version::Omemo03 => None,
            Err(error) => return Err(error.into()),
        };
        let base_key = Curve25519KeyPair::generate(rng);
        let root = x3dh::initiate(
            x3dh_info(version),
            identity,
            &base_key,
            bundle.identity_curve25519(),
            bundle.signed_pre_key(),
            pre_key.as_ref().map(|(_, key)| key),
        )?;
        let ratchet = Ratchet::initiator(
            version,
            &root,
            Curve25519KeyPair::generate(rng),
            bundle.signed_pre_key(),
        )?;
        let key_exchange = KeyExchange {
            pre_key_id: pre_key.map(|(id, _)| id),
            signed_pre_key_id: bundle.signed_pre_key_id(),
            identity_key: identity.identity_key(version),
            base_key: base_key.public_key(),
            registration_id: match version {
                Version::Omemo2 => None,
                Version::Omemo03 => registration_id,
            },
        };
        Ok(Self {
            ratchet,
            our_identity: identity.identity_key(version),
            their_identity: bundle.identity_key(),
            initiator: true,
            key_exchange,
            confirmed: false,
        })
    }

    /// Answers a key exchange of `version` (see [`OmemoSession::respond`]): the session and
    /// its first message's content.
    pub(crate) fn respond_to(
        version: Version,
        identity: &DeviceIdentity,
        pre_keys: &PreKeys,
        exchange: KeyExchange,
        message: &RatchetMessage,
    ) -> Result<(Self, DecryptedKeyMaterial), SessionError> {
        if pre_keys.version() != version || !accepts_identity(version, &exchange.identity_key) {
            return Err(SessionError::IdentityKey);
        }
        let signed = pre_keys.find_signed(exchange.signed_pre_key_id)?;
        let pre_key = match exchange.pre_key_id {
            Some(id) => Some(pre_keys.find_pre_key(id)?),
            None if version == Version::Omemo2 => {
                return Err(PreKeyError::MissingPreKey.into());
            }
            None => None,
        };
        let their_identity = exchange
            .identity_key
            .curve25519()
            .map_err(|_| SessionError::IdentityKey)?;
        let root = x3dh::respond(
            x3dh_info(version),
            identity,
            signed,
            pre_key,
            &their_identity,
            &exchange.base_key,
        )?;
        let mut session = Self {
            ratchet: Ratchet::responder(version, &root, signed.clone()),
            our_identity: identity.identity_key(version),
            their_identity: exchange.identity_key,
            initiator: false,
            key_exchange: exchange,
            confirmed: true,
        };
        let decrypted = session.decrypt_message(message)?;
        Ok((session, decrypted))
    }

    /// See [`OmemoSession::sends_key_exchange`].
    pub(crate) fn sends_key_exchange(&self) -> bool {
        self.initiator && !self.confirmed
    }

    /// See [`OmemoSession::is_answered`].
    pub(crate) fn is_answered(&self) -> bool {
        let chains = self.ratchet.receiving_chains();
        if self.initiator {
            chains >= 1
        } else {
            chains >= 2
        }
    }

    /// [`OmemoSession::encrypt_with_rng`] without changing the session; [`Self::apply_send`]
    /// writes the step.
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
        let version = self.version();
        let prefix = mac_prefix(
            version,
            initiator.as_slice(),
            responder.as_slice(),
            self.initiator,
        );
        let (sealed, step) = match &self.ratchet {
            Ratchet::Omemo2(r) => {
                r.encrypt_staged(rng, key_material, &prefix, omemo2::encode_message)?
            }
            Ratchet::Omemo03(r) => {
                r.encrypt_staged(rng, key_material, &prefix, omemo03::encode_message)?
            }
        };
        let message = match version {
            Version::Omemo2 => omemo2::seal(sealed.message, sealed.mac),
            Version::Omemo03 => omemo03::seal(sealed.message, sealed.mac),
        };
        let key = if self.sends_key_exchange() {
            let data = match version {
                Version::Omemo2 => omemo2::encode_key_exchange(&self.key_exchange, message),
                Version::Omemo03 => omemo03::encode_key_exchange(&self.key_exchange, message),
            };
            SealedKey {
                data,
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
        on_ratchet!(&mut self.ratchet, r => r.apply_send(step))
    }

    /// Puts back what [`Self::apply_send`] replaced.
    pub(crate) fn undo_send(&mut self, undo: SendUndo) {
        on_ratchet!(&mut self.ratchet, r => r.undo_send(undo));
    }

    /// See [`OmemoSession::decrypt`].
    pub(crate) fn decrypt(
        &mut self,
        key: &SealedKey,
    ) -> Result<DecryptedKeyMaterial, SessionError> {
        let message = if key.key_exchange {
            let (exchange, message) = open_key_exchange(self.version(), &key.data)?;
            if !self.matches(&exchange) {
                return Err(SessionError::SessionMismatch);
            }
            message
        } else {
            open(self.version(), &key.data)?
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
        let [first, second] = mac_prefix(
            self.version(),
            initiator.as_slice(),
            responder.as_slice(),
            !self.initiator,
        );
        let authenticated: [&[u8]; 3] = [first, second, &message.authenticated];
        let (key_material, step) = on_ratchet!(&self.ratchet, r => r.decrypt_staged(
            &header,
            &authenticated,
            &message.mac,
            &message.ciphertext,
        ))?;
        // No sending chain once the step is applied: nothing sent since the peer's newest
        // ratchet key arrived.
        let no_sending_chain =
            step.opens_chain() || on_ratchet!(&self.ratchet, r => r.needs_new_ratchet_key());
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
        on_ratchet!(&mut self.ratchet, r => r.apply_receive(step));
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

/// HKDF info of the X3DH shared secret.
fn x3dh_info(version: Version) -> &'static [u8] {
    match version {
        Version::Omemo2 => Omemo2::X3DH_INFO,
        Version::Omemo03 => Omemo03::X3DH_INFO,
    }
}

/// What the MAC covers before the message (see [`OmemoProfile::mac_prefix`]).
fn mac_prefix<'a>(
    version: Version,
    initiator: &'a [u8],
    responder: &'a [u8],
    sender_is_initiator: bool,
) -> [&'a [u8]; 2] {
    match version {
        Version::Omemo2 => Omemo2::mac_prefix(initiator, responder, sender_is_initiator),
        Version::Omemo03 => Omemo03::mac_prefix(initiator, responder, sender_is_initiator),
    }
}

/// Whether `key` has `version`'s identity form.
pub(crate) fn accepts_identity(version: Version, key: &IdentityKey) -> bool {
    match version {
        Version::Omemo2 => Omemo2::accepts_identity(key),
        Version::Omemo03 => Omemo03::accepts_identity(key),
    }
}

/// Decodes a sealed message of `version`.
pub(crate) fn open(version: Version, bytes: &[u8]) -> Result<RatchetMessage, DecodeError> {
    match version {
        Version::Omemo2 => omemo2::open(bytes),
        Version::Omemo03 => omemo03::open(bytes),
    }
}

/// Decodes a key exchange of `version` and its message.
pub(crate) fn open_key_exchange(
    version: Version,
    bytes: &[u8],
) -> Result<(KeyExchange, RatchetMessage), DecodeError> {
    match version {
        Version::Omemo2 => omemo2::open_key_exchange(bytes),
        Version::Omemo03 => omemo03::open_key_exchange(bytes),
    }
}

impl<P: OmemoProfile> fmt::Debug for OmemoSession<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OmemoSession")
            .field("version", &P::VERSION)
            .field("their_identity", &self.state.their_identity)
            .field("initiator", &self.state.initiator)
            .field("confirmed", &self.state.confirmed)
            .finish_non_exhaustive()
    }
}
