//! An OMEMO device: one identity, and for each version its pre-keys and sessions keyed by
//! (bare JID, device id). This is the object an XMPP client keeps and persists.

pub(crate) mod parts;
mod storage;

use rand_core::CryptoRng;
use thiserror::Error;

use super::IdentityKey;
use super::Version;
use super::bundle::VerifiedBundle;
use super::identity::{DeviceIdentity, hex};
use super::prekeys::PreKeys;
use super::profile::{Omemo2, Omemo03, OmemoProfile};
use super::session::{
    self, DecryptedKeyMaterial, OmemoSession, SealedKey, SessionError, SessionState,
};
use super::store::{MAX_JID_LENGTH, SessionSlot, SessionStore, SlotIdentities};
use crate::crypto::{Curve25519PublicKey, XEdDsaError};
use crate::ratchet::ReceiveStep;
use crate::time::Timestamp;

/// Why a device operation failed. The device is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// There is no session with this device (build one from its bundle first).
    #[error("no {version} session with device {device_id} of {jid}")]
    NoSession {
        /// The version.
        version: Version,
        /// The remote bare JID.
        jid: String,
        /// The remote device id.
        device_id: u32,
    },
    /// The JID is longer than a JID can be ([`MAX_JID_LENGTH`] bytes): no session is kept
    /// under it.
    #[error("a JID of {length} bytes")]
    JidTooLong {
        /// Its length in bytes.
        length: usize,
    },
    /// A key exchange or bundle for a known device under another identity key than its
    /// sessions have. Nothing changed (the pre-key is not used) and the known session keeps
    /// working; once the application accepts the new identity ([`OmemoDevice::accept_identity`]),
    /// its next key exchange (they repeat until answered) or the same element again replaces
    /// the device's sessions.
    #[error(
        "{version} device {device_id} of {jid} offers identity {offered}, not the known {known}"
    )]
    IdentityChanged {
        /// The version.
        version: Version,
        /// The remote bare JID.
        jid: String,
        /// The remote device id.
        device_id: u32,
        /// The fingerprint of the identity its sessions have (lowercase hex of the Curve25519
        /// form, as [`IdentityKey::fingerprint`] gives it).
        known: String,
        /// The fingerprint of the identity offered.
        offered: String,
    },
    /// [`OmemoDevice::accept_identity`] was given something that is not a fingerprint.
    #[error("not a fingerprint (64 hex digits)")]
    InvalidFingerprint,
    /// The session refused.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Refuses a JID no session may be stored under (the device would no longer restore).
fn check_jid(jid: &str) -> Result<(), DeviceError> {
    if jid.len() > MAX_JID_LENGTH {
        return Err(DeviceError::JidTooLong { length: jid.len() });
    }
    Ok(())
}

/// One version's keys and sessions.
#[derive(Debug, Clone)]
pub struct VersionState<P: OmemoProfile> {
    pre_keys: PreKeys,
    pub(super) sessions: SessionStore<P>,
}

/// An OMEMO device: the identity, and per version the pre-keys and sessions.
#[derive(Debug, Clone)]
pub struct OmemoDevice {
    pub(super) jid: String,
    pub(super) device_id: u32,
    identity: DeviceIdentity,
    omemo2: VersionState<Omemo2>,
    omemo03: VersionState<Omemo03>,
}

/// Picks a version's state out of a device (the one place the two are told apart).
pub(crate) trait Select: OmemoProfile {
    fn state(device: &OmemoDevice) -> &VersionState<Self>;
    fn state_mut(device: &mut OmemoDevice) -> &mut VersionState<Self>;
    /// Our JID and identity beside the version's state, for code that changes the state.
    fn split(device: &mut OmemoDevice) -> (&str, &DeviceIdentity, &mut VersionState<Self>);
}

impl Select for Omemo2 {
    fn state(device: &OmemoDevice) -> &VersionState<Self> {
        &device.omemo2
    }
    fn state_mut(device: &mut OmemoDevice) -> &mut VersionState<Self> {
        &mut device.omemo2
    }
    fn split(device: &mut OmemoDevice) -> (&str, &DeviceIdentity, &mut VersionState<Self>) {
        (&device.jid, &device.identity, &mut device.omemo2)
    }
}

impl Select for Omemo03 {
    fn state(device: &OmemoDevice) -> &VersionState<Self> {
        &device.omemo03
    }
    fn state_mut(device: &mut OmemoDevice) -> &mut VersionState<Self> {
        &mut device.omemo03
    }
    fn split(device: &mut OmemoDevice) -> (&str, &DeviceIdentity, &mut VersionState<Self>) {
        (&device.jid, &device.identity, &mut device.omemo03)
    }
}

impl OmemoDevice {
    /// A new device with a fresh identity and fresh pre-keys for both versions, dated by the
    /// system clock (not on `wasm32`: use [`OmemoDevice::generate`] with the time).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(jid: &str, device_id: u32) -> Self {
        Self::generate(jid, device_id, Timestamp::now(), &mut rand::rng())
    }

    /// [`OmemoDevice::new`] with the time and randomness given.
    pub fn generate(jid: &str, device_id: u32, now: Timestamp, rng: &mut impl CryptoRng) -> Self {
        let identity = DeviceIdentity::generate(rng);
        let omemo2 = PreKeys::generate(&identity, Version::Omemo2, now, rng);
        let omemo03 = PreKeys::generate(&identity, Version::Omemo03, now, rng);
        Self::from_parts(jid, device_id, identity, omemo2, omemo03)
    }

    /// A device from an existing identity and pre-keys (see [`DeviceIdentity::from_seed`],
    /// [`DeviceIdentity::from_curve25519_secret`] and [`PreKeys::import`]): how a device
    /// moves to olmo from another client without a new identity.
    pub fn from_parts(
        jid: &str,
        device_id: u32,
        identity: DeviceIdentity,
        omemo2: PreKeys,
        omemo03: PreKeys,
    ) -> Self {
        Self {
            jid: jid.to_owned(),
            device_id,
            identity,
            omemo2: VersionState {
                pre_keys: omemo2,
                sessions: SessionStore::default(),
            },
            omemo03: VersionState {
                pre_keys: omemo03,
                sessions: SessionStore::default(),
            },
        }
    }

    /// Our bare JID.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// Our device id.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// The same device under another id (keys, pre-keys and sessions kept): how an account
    /// moves off an id another of its devices took.
    pub fn with_device_id(mut self, device_id: u32) -> Self {
        self.device_id = device_id;
        self
    }

    /// The identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// A version's pre-keys.
    pub fn pre_keys(&self, version: Version) -> &PreKeys {
        with_profile!(version, P => &P::state(self).pre_keys)
    }

    /// The bundle to publish for `version`.
    pub fn bundle(&self, version: Version) -> VerifiedBundle {
        self.pre_keys(version).bundle(&self.identity)
    }

    /// Rotates old signed pre-keys and refills the pools; returns the versions whose bundle
    /// changed (publish those again).
    pub fn maintain(&mut self, now: Timestamp, rng: &mut impl CryptoRng) -> Vec<Version> {
        let mut changed = Vec::new();
        if self.omemo2.pre_keys.maintain(&self.identity, now, rng) {
            changed.push(Version::Omemo2);
        }
        if self.omemo03.pre_keys.maintain(&self.identity, now, rng) {
            changed.push(Version::Omemo03);
        }
        changed
    }

    /// Whether a session with the device exists.
    pub fn has_session(&self, version: Version, jid: &str, device_id: u32) -> bool {
        with_profile!(version, P => P::state(self).sessions.get(jid, device_id).is_some())
    }

    /// The sessions of a version.
    pub fn omemo2_sessions(&self) -> &SessionStore<Omemo2> {
        &self.omemo2.sessions
    }

    /// The sessions of OMEMO 0.3.
    pub fn omemo03_sessions(&self) -> &SessionStore<Omemo03> {
        &self.omemo03.sessions
    }

    /// The Curve25519 form of `identity`, the identity of a session with `jid`'s `device_id`
    /// (its X3DH checked it): as the device's slot keeps it, or derived now, then kept with
    /// the slot (and its record) when it is the current session's.
    pub(crate) fn session_identity_curve(
        &mut self,
        version: Version,
        jid: &str,
        device_id: u32,
        identity: &IdentityKey,
    ) -> Result<Curve25519PublicKey, XEdDsaError> {
        match version {
            Version::Omemo2 => identity_curve(&mut self.omemo2.sessions, jid, device_id, identity),
            Version::Omemo03 => {
                identity_curve(&mut self.omemo03.sessions, jid, device_id, identity)
            }
        }
    }

    /// Starts a session with a device from its bundle (verified when it was parsed). Replaces an existing
    /// one, which is kept for delayed messages. A bundle under another identity than the
    /// device's sessions have is [`DeviceError::IdentityChanged`] until the application accepts
    /// that identity ([`OmemoDevice::accept_identity`]); then the new session replaces them all.
    pub fn build_session(
        &mut self,
        jid: &str,
        device_id: u32,
        bundle: &VerifiedBundle,
        rng: &mut impl CryptoRng,
    ) -> Result<(), DeviceError> {
        check_jid(jid)?;
        with_profile!(bundle.version(), P => {
            let session = OmemoSession::<P>::initiate(&self.identity, bundle, Some(self.device_id), rng)?;
            let slot = P::state(self).sessions.get(jid, device_id);
            let new_identity = check_identity(
                P::VERSION,
                slot.map(SessionSlot::identities),
                jid,
                device_id,
                &session.their_identity(),
            )?;
            let sessions = &mut P::state_mut(self).sessions;
            if new_identity {
                sessions.install_new_identity(jid, device_id, session);
            } else {
                sessions.install(jid, device_id, session);
            }
            Ok(())
        })
    }

    /// Accepts `fingerprint` (as [`DeviceError::IdentityChanged`] reported it) as the identity
    /// of a known device. Its next key exchange, or a bundle built from, then replaces the
    /// device's sessions, and the old identity's sessions are dropped; until then they keep
    /// working. Accepting again replaces the choice.
    pub fn accept_identity(
        &mut self,
        version: Version,
        jid: &str,
        device_id: u32,
        fingerprint: &str,
    ) -> Result<(), DeviceError> {
        let identity = parse_fingerprint(fingerprint).ok_or(DeviceError::InvalidFingerprint)?;
        with_profile!(version, P => {
            let slot = P::state_mut(self)
                .sessions
                .get_mut(jid, device_id)
                .ok_or_else(|| no_session(version, jid, device_id))?;
            slot.accepted = (slot.known_identity() != Some(identity)).then_some(identity);
            Ok(())
        })
    }

    /// Test hook: copies the current session with `from` to each of `addresses` as if a key
    /// exchange had made it there (evicting as that would), without the X3DH each costs, so
    /// tests fill the session store to its limits quickly. Returns whether `from` had one.
    #[doc(hidden)]
    pub fn copy_session_for_tests(
        &mut self,
        version: Version,
        from: (&str, u32),
        addresses: &[(String, u32)],
    ) -> bool {
        with_profile!(version, P => {
            let Some(slot) = P::state(self).sessions.get(from.0, from.1) else {
                return false;
            };
            let session = slot.current.clone();
            for (jid, device_id) in addresses {
                if check_jid(jid).is_ok() {
                    P::state_mut(self).sessions.install(jid, *device_id, session.clone());
                }
            }
            true
        })
    }

    /// Encrypts key material for one device. The session has advanced when this returns:
    /// persist the device before sending.
    pub fn encrypt_key(
        &mut self,
        version: Version,
        jid: &str,
        device_id: u32,
        key_material: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<SealedKey, DeviceError> {
        with_profile!(version, P => self.encrypt_key_for::<P>(jid, device_id, key_material, rng))
    }

    fn encrypt_key_for<P: Select>(
        &mut self,
        jid: &str,
        device_id: u32,
        key_material: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<SealedKey, DeviceError> {
        let slot = P::state(self)
            .sessions
            .get(jid, device_id)
            .ok_or_else(|| no_session(P::VERSION, jid, device_id))?;
        let (key, step) = slot.current.state.encrypt_staged(key_material, rng)?;
        if let Some(slot) = P::state_mut(self).sessions.get_mut(jid, device_id) {
            slot.current.state.apply_send(step);
        }
        Ok(key)
    }

    /// Decrypts a key element from a device. A key exchange that is not a repeat of a known
    /// session's makes a new session (consuming the pre-key it used; the pool is refilled, so
    /// publish [`OmemoDevice::bundle`] again when [`DecryptedKey::pre_key_used`] is set); from a
    /// known device under another identity key it is [`DeviceError::IdentityChanged`] until
    /// the application accepts that identity. Other messages are tried on the current session,
    /// then on the previous ones.
    pub fn decrypt_key(
        &mut self,
        version: Version,
        jid: &str,
        device_id: u32,
        key: &SealedKey,
        rng: &mut impl CryptoRng,
    ) -> Result<DecryptedKey, DeviceError> {
        with_profile!(version, P => self.decrypt_key_for::<P>(jid, device_id, key, rng))
    }

    fn decrypt_key_for<P: Select>(
        &mut self,
        jid: &str,
        device_id: u32,
        key: &SealedKey,
        rng: &mut impl CryptoRng,
    ) -> Result<DecryptedKey, DeviceError> {
        let (staged, decrypted) =
            self.stage_key::<P>(jid, device_id, &key.data, key.key_exchange)?;
        Ok(self.commit_key::<P>(staged, decrypted, rng))
    }

    /// Decrypts a key element without changing any session: the caller commits with
    /// [`OmemoDevice::commit_key`] once everything else (the payload) checked out.
    pub(crate) fn stage_key<'a, P: Select>(
        &self,
        jid: &'a str,
        device_id: u32,
        data: &[u8],
        key_exchange: bool,
    ) -> Result<(Staged<'a>, DecryptedKeyMaterial), DeviceError> {
        stage_key(
            P::VERSION,
            &self.identity,
            P::state(self),
            (jid, device_id),
            data,
            key_exchange,
        )
    }

    /// Applies a staged decryption: the session moves on, a new session is installed and the
    /// pre-key it used is replaced.
    pub(crate) fn commit_key<P: Select>(
        &mut self,
        staged: Staged<'_>,
        decrypted: DecryptedKeyMaterial,
        rng: &mut impl CryptoRng,
    ) -> DecryptedKey {
        commit_key(P::state_mut(self), staged, decrypted, rng)
    }
}

/// [`OmemoDevice::stage_key`] in `state`, of `version` (`P`'s, as a value: this code exists
/// once for both versions).
pub(crate) fn stage_key<'a, P: OmemoProfile>(
    version: Version,
    identity: &DeviceIdentity,
    state: &VersionState<P>,
    (jid, device_id): (&'a str, u32),
    data: &[u8],
    key_exchange: bool,
) -> Result<(Staged<'a>, DecryptedKeyMaterial), DeviceError> {
    check_jid(jid)?;
    let slot = state.sessions.get(jid, device_id);
    let message = if key_exchange {
        let (exchange, message) =
            session::open_key_exchange(version, data).map_err(SessionError::from)?;
        let known = slot.and_then(|slot| {
            slot.states()
                .find(|(_, session)| session.state.matches(&exchange))
                .map(|(position, _)| position)
        });
        let Some(position) = known else {
            let (session, decrypted) =
                SessionState::respond_to(version, identity, &state.pre_keys, exchange, &message)?;
            let their_identity = session.their_identity;
            let new_identity = check_identity(
                version,
                slot.map(SessionSlot::identities),
                jid,
                device_id,
                &their_identity,
            )?;
            let staged = Staged {
                jid,
                device_id,
                their_identity,
                change: Change::New {
                    used_pre_key: session.key_exchange.pre_key_id,
                    session: Box::new(session),
                    new_identity,
                },
            };
            return Ok((staged, decrypted));
        };
        let slot = slot.ok_or_else(|| no_session(version, jid, device_id))?;
        let session = match position {
            None => Some(&slot.current),
            Some(index) => slot.previous.get(index),
        };
        let session = session.ok_or_else(|| no_session(version, jid, device_id))?;
        let (decrypted, step) = session.state.decrypt_staged(&message)?;
        let staged = Staged::known((jid, device_id), session.their_identity(), position, step);
        return Ok((staged, decrypted));
    } else {
        session::open(version, data).map_err(SessionError::from)?
    };
    let slot = slot.ok_or_else(|| no_session(version, jid, device_id))?;
    let mut first_error = None;
    for (position, session) in slot.states() {
        match session.state.decrypt_staged(&message) {
            Ok((decrypted, step)) => {
                let staged =
                    Staged::known((jid, device_id), session.their_identity(), position, step);
                return Ok((staged, decrypted));
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(SessionError::SessionMismatch).into())
}

/// [`OmemoDevice::commit_key`] in `state`.
pub(crate) fn commit_key<P: OmemoProfile>(
    state: &mut VersionState<P>,
    staged: Staged<'_>,
    decrypted: DecryptedKeyMaterial,
    rng: &mut impl CryptoRng,
) -> DecryptedKey {
    let (jid, device_id) = (staged.jid, staged.device_id);
    match staged.change {
        Change::Known { position, step } => {
            if let Some(slot) = state.sessions.get_mut(jid, device_id) {
                slot.commit(position, step);
            }
            DecryptedKey {
                decrypted,
                pre_key_used: None,
                new_session: false,
            }
        }
        Change::New {
            session,
            used_pre_key,
            new_identity,
        } => {
            if let Some(id) = used_pre_key {
                state.pre_keys.consume(id);
                state.pre_keys.refill(rng);
            }
            let session = OmemoSession::from_state(*session);
            if new_identity {
                state.sessions.install_new_identity(jid, device_id, session);
            } else {
                state.sessions.install(jid, device_id, session);
            }
            DecryptedKey {
                decrypted,
                pre_key_used: used_pre_key,
                new_session: true,
            }
        }
    }
}

/// A decryption computed but not yet applied.
pub(crate) struct Staged<'a> {
    jid: &'a str,
    device_id: u32,
    /// The remote identity of the session that decrypted.
    their_identity: IdentityKey,
    change: Change,
}

impl<'a> Staged<'a> {
    /// A step of the state at `position` of the session with (jid, device id), whether that
    /// state was named by a key exchange or found by trial.
    fn known(
        (jid, device_id): (&'a str, u32),
        their_identity: IdentityKey,
        position: Option<usize>,
        step: ReceiveStep,
    ) -> Self {
        Self {
            jid,
            device_id,
            their_identity,
            change: Change::Known { position, step },
        }
    }

    /// The remote identity of the session that decrypted.
    pub(crate) fn their_identity(&self) -> IdentityKey {
        self.their_identity
    }
}

enum Change {
    /// An existing state decrypted; `position` as in [`super::store::SessionSlot::states`].
    Known {
        position: Option<usize>,
        step: ReceiveStep,
    },
    /// A key exchange made a new session.
    New {
        /// Boxed: the common case, [`Change::Known`], stays small.
        session: Box<SessionState>,
        used_pre_key: Option<u32>,
        /// It is of the new identity the application accepted for the device.
        new_identity: bool,
    },
}

/// Whether a new session under `offered` may go into `slot`: yes for a device without sessions
/// or of the same identity (`false`), or of the identity the application accepted (`true`: it
/// replaces the old identity's sessions); otherwise [`DeviceError::IdentityChanged`].
/// Identities compare in their Curve25519 form, the one fingerprints show.
fn check_identity(
    version: Version,
    slot: Option<SlotIdentities>,
    jid: &str,
    device_id: u32,
    offered: &IdentityKey,
) -> Result<bool, DeviceError> {
    let Some((known, accepted)) = slot else {
        return Ok(false);
    };
    let offered = offered
        .curve25519()
        .map_err(|_| SessionError::IdentityKey)?;
    let Some(known) = known else {
        return Ok(false);
    };
    if known == offered {
        return Ok(false);
    }
    if accepted == Some(offered) {
        return Ok(true);
    }
    Err(DeviceError::IdentityChanged {
        version,
        jid: jid.to_owned(),
        device_id,
        known: hex(known.as_bytes()),
        offered: hex(offered.as_bytes()),
    })
}

/// The Curve25519 key a fingerprint (64 hex digits, either case) shows.
fn parse_fingerprint(fingerprint: &str) -> Option<Curve25519PublicKey> {
    let digits = fingerprint.as_bytes();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(Curve25519PublicKey::from_bytes(key))
}

pub(crate) fn no_session(version: Version, jid: &str, device_id: u32) -> DeviceError {
    DeviceError::NoSession {
        version,
        jid: jid.to_owned(),
        device_id,
    }
}

/// A decrypted key element and what it changed.
#[derive(Debug)]
pub struct DecryptedKey {
    /// The key material and the heartbeat signal.
    pub decrypted: DecryptedKeyMaterial,
    /// The one-time pre-key a new key exchange used (now removed and replaced: publish the
    /// bundle again).
    pub pre_key_used: Option<u32>,
    /// Whether the message started a new session.
    pub new_session: bool,
}

/// [`OmemoDevice::session_identity_curve`] in one version's sessions.
fn identity_curve<P: OmemoProfile>(
    sessions: &mut SessionStore<P>,
    jid: &str,
    device_id: u32,
    identity: &IdentityKey,
) -> Result<Curve25519PublicKey, XEdDsaError> {
    // A Curve25519 identity is its own form: nothing to keep.
    if !matches!(identity, IdentityKey::Ed25519(_)) {
        return identity.session_curve25519();
    }
    let Some(slot) = sessions.slot_mut(jid, device_id) else {
        return identity.session_curve25519();
    };
    let current = slot.current().their_identity() == *identity;
    if current && let Some(curve) = slot.identity_curve() {
        return Ok(curve);
    }
    let curve = identity.session_curve25519()?;
    if current {
        slot.keep_identity_curve(curve);
    }
    Ok(curve)
}
