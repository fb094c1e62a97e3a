//! The sessions of one version, keyed by (bare JID, device id). A new key exchange from a
//! device replaces its session but the old one is kept (a few of them) so that messages still
//! in flight on it open; one that does decrypt becomes current again, as libsignal does.
//!
//! Anyone can send key exchanges under device ids of their choosing, so the store is bounded:
//! at most [`MAX_DEVICES_PER_JID`] devices of one JID and [`MAX_DEVICES`] in all. Making room
//! evicts one device (all its sessions), chosen deterministically: a device none of whose
//! sessions was ever answered (see [`OmemoSession::is_answered`]) before one that was, then the one
//! least recently used (made, encrypted to or decrypted from), then the lowest (JID, device id).
//! Within a device, at most [`MAX_PREVIOUS_SESSIONS`] earlier sessions stay, the oldest
//! never-answered one going first. These are the limits
//! [`OmemoDevice::restore`](super::OmemoDevice::restore) enforces, so a device that filled them still
//! restores.

pub(super) mod storage;

use std::borrow::Borrow;
use std::cmp::Ordering;

use super::IdentityKey;
use super::profile::OmemoProfile;
use super::session::OmemoSession;
use crate::crypto::Curve25519PublicKey;
use crate::ratchet::ReceiveStep;
use crate::vec_map::VecMap;

/// Earlier sessions kept per device for delayed messages.
pub const MAX_PREVIOUS_SESSIONS: usize = 5;
/// Devices with a session, per version, in all. A real account (hundreds of contacts with a few
/// devices each) stays far below; a full store saves and restores in seconds.
pub const MAX_DEVICES: usize = 10_000;
/// Devices with a session per JID. Device lists keep stale ids for years, but not hundreds.
pub const MAX_DEVICES_PER_JID: usize = 100;
/// The longest JID a session is kept under: RFC 7622 allows 1023 bytes for each of its three
/// parts.
pub const MAX_JID_LENGTH: usize = 3071;

/// A device's current session and the ones it replaced, newest first.
#[derive(Debug, Clone)]
pub struct SessionSlot<P: OmemoProfile> {
    pub(super) current: OmemoSession<P>,
    /// At most [`MAX_PREVIOUS_SESSIONS`], newest first (a `Vec`: a `VecDeque` brought its own
    /// ring-buffer code per OMEMO version).
    pub(super) previous: Vec<OmemoSession<P>>,
    /// The store's clock when the device was last used (0: never since a schema-1 restore).
    last_used: u64,
    /// Another identity (its Curve25519 form) the application accepted for this device: its
    /// next session replaces the device's sessions (see [`super::OmemoDevice::accept_identity`]).
    pub(super) accepted: Option<Curve25519PublicKey>,
    /// The Curve25519 form of an Ed25519 identity of the device, once derived (a field
    /// inversion, for its fingerprint), with that identity: kept in the slot's own record, so
    /// a device read again does not derive it again. Used only while it is the current
    /// session's identity.
    pub(super) identity_curve: Option<(IdentityKey, Curve25519PublicKey)>,
}

impl<P: OmemoProfile> SessionSlot<P> {
    pub(crate) fn new(session: OmemoSession<P>) -> Self {
        Self {
            current: session,
            previous: Vec::new(),
            last_used: 0,
            accepted: None,
            identity_curve: None,
        }
    }

    /// The Curve25519 form of the current session's identity, if derived before.
    pub(crate) fn identity_curve(&self) -> Option<Curve25519PublicKey> {
        match &self.identity_curve {
            Some((key, curve)) if *key == self.current.their_identity() => Some(*curve),
            _ => None,
        }
    }

    /// Keeps `curve`, the Curve25519 form of the current session's identity.
    pub(crate) fn keep_identity_curve(&mut self, curve: Curve25519PublicKey) {
        self.identity_curve = Some((self.current.their_identity(), curve));
    }

    /// The current session.
    pub fn current(&self) -> &OmemoSession<P> {
        &self.current
    }

    /// The sessions it replaced, newest first.
    pub fn previous(&self) -> impl Iterator<Item = &OmemoSession<P>> {
        self.previous.iter()
    }

    /// The identity the device's sessions share (the Curve25519 form of their identity key).
    pub(crate) fn known_identity(&self) -> Option<Curve25519PublicKey> {
        self.current.their_identity().curve25519().ok()
    }

    /// [`Self::known_identity`] and the accepted one, what a new session's identity is checked
    /// against.
    pub(crate) fn identities(&self) -> SlotIdentities {
        (self.known_identity(), self.accepted)
    }

    /// The other identity the application accepted for the device, waiting for its session.
    pub fn accepted_identity(&self) -> Option<Curve25519PublicKey> {
        self.accepted
    }

    /// Whether any of the device's sessions was answered: eviction spares those first.
    pub fn is_answered(&self) -> bool {
        self.states().any(|(_, session)| session.is_answered())
    }

    /// Makes `session` current, keeping the one it replaces. Past [`MAX_PREVIOUS_SESSIONS`],
    /// the oldest never-answered previous session goes, or the oldest if all were answered.
    pub(crate) fn replace(&mut self, session: OmemoSession<P>) {
        let old = std::mem::replace(&mut self.current, session);
        self.previous.insert(0, old);
        if self.previous.len() > MAX_PREVIOUS_SESSIONS {
            let oldest = self.previous.len() - 1;
            let victim = self
                .previous
                .iter()
                .rposition(|session| !session.is_answered())
                .unwrap_or(oldest);
            self.previous.remove(victim);
        }
    }

    /// Applies a decryption staged on the state at `position` (`None`: current); a previous
    /// session that decrypted becomes current.
    pub(crate) fn commit(&mut self, position: Option<usize>, step: ReceiveStep) {
        match position {
            None => self.current.state.apply_receive(step),
            Some(index) => {
                if index < self.previous.len() {
                    let mut session = self.previous.remove(index);
                    session.state.apply_receive(step);
                    self.replace(session);
                }
            }
        }
    }

    /// Every state, current first, with its position for [`Self::commit`].
    pub(crate) fn states(&self) -> impl Iterator<Item = (Option<usize>, &OmemoSession<P>)> {
        std::iter::once((None, &self.current))
            .chain(self.previous.iter().enumerate().map(|(i, s)| (Some(i), s)))
    }
}

/// A slot's known identity and the one the application accepted (Curve25519 forms).
pub(crate) type SlotIdentities = (Option<Curve25519PublicKey>, Option<Curve25519PublicKey>);

/// A session store's map: sorted by address in a `Vec` (binary search), where a `BTreeMap`
/// brought 8 KB of node code per version to the `.wasm` package. Slots are boxed so an
/// insert moves 40-byte entries: at [`MAX_DEVICES`], 400 KB at most.
pub(super) type Slots<P> = VecMap<(String, u32), Box<SessionSlot<P>>>;

/// Sessions of one version by (bare JID, device id).
#[derive(Debug, Clone)]
pub struct SessionStore<P: OmemoProfile> {
    pub(super) slots: Slots<P>,
    /// Counts uses; a slot's `last_used` is its value at the slot's latest use.
    pub(super) clock: u64,
}

impl<P: OmemoProfile> Default for SessionStore<P> {
    fn default() -> Self {
        Self {
            slots: VecMap::new(),
            clock: 0,
        }
    }
}

impl<P: OmemoProfile> SessionStore<P> {
    /// The device's sessions, if any.
    pub fn get(&self, jid: &str, device_id: u32) -> Option<&SessionSlot<P>> {
        self.slots
            .get(&(jid, device_id) as &dyn Address)
            .map(|slot| &**slot)
    }

    /// The device's sessions, marked as used now.
    pub(crate) fn get_mut(&mut self, jid: &str, device_id: u32) -> Option<&mut SessionSlot<P>> {
        let now = self.tick();
        let slot = &mut **self.slots.get_mut(&(jid, device_id) as &dyn Address)?;
        slot.last_used = now;
        Some(slot)
    }

    /// The device's sessions, to change what is kept beside them (not marked as used).
    pub(crate) fn slot_mut(&mut self, jid: &str, device_id: u32) -> Option<&mut SessionSlot<P>> {
        Some(&mut **self.slots.get_mut(&(jid, device_id) as &dyn Address)?)
    }

    /// [`Self::get_mut`], also giving the slot's previous last use, for [`Self::rewind`].
    pub(crate) fn use_slot(
        &mut self,
        jid: &str,
        device_id: u32,
    ) -> Option<(&mut SessionSlot<P>, u64)> {
        let now = self.tick();
        let slot = &mut **self.slots.get_mut(&(jid, device_id) as &dyn Address)?;
        let before = std::mem::replace(&mut slot.last_used, now);
        Some((slot, before))
    }

    /// Undoes uses made since the clock read `clock`: the slot gets back the last use
    /// [`Self::use_slot`] gave, and the clock goes back. Returns the slot, to undo its change.
    pub(crate) fn rewind(
        &mut self,
        clock: u64,
        jid: &str,
        device_id: u32,
        last_used: u64,
    ) -> Option<&mut SessionSlot<P>> {
        self.clock = clock;
        let slot = &mut **self.slots.get_mut(&(jid, device_id) as &dyn Address)?;
        slot.last_used = last_used;
        Some(slot)
    }

    fn tick(&mut self) -> u64 {
        self.clock = self.clock.saturating_add(1);
        self.clock
    }

    /// Installs a new session for the device, keeping its old one as previous. A device new to
    /// the store may evict another (see the module documentation); the caller has checked that
    /// `jid` is at most [`MAX_JID_LENGTH`] bytes.
    pub(crate) fn install(&mut self, jid: &str, device_id: u32, session: OmemoSession<P>) {
        if let Some(slot) = self.get_mut(jid, device_id) {
            slot.replace(session);
            return;
        }
        let address = (jid.to_owned(), device_id);
        let mut slot = Box::new(SessionSlot::new(session));
        slot.last_used = self.tick();
        let (first, last) = (
            &(jid, 0u32) as &dyn Address,
            &(jid, u32::MAX) as &dyn Address,
        );
        if self.slots.range_inclusive(first, last).count() >= MAX_DEVICES_PER_JID {
            let victim = Self::victim(self.slots.range_inclusive(first, last));
            self.slots.remove(&victim);
        } else if self.slots.len() >= MAX_DEVICES {
            let victim = Self::victim(self.slots.iter());
            self.slots.remove(&victim);
        }
        self.slots.insert(address, slot);
    }

    /// The slot to evict among `candidates` (in increasing address order): never answered
    /// before answered, then least recently used, then the first.
    fn victim<'a>(
        candidates: impl Iterator<Item = (&'a (String, u32), &'a Box<SessionSlot<P>>)>,
    ) -> (String, u32)
    where
        P: 'a,
    {
        candidates
            .min_by_key(|(_, slot)| (slot.is_answered(), slot.last_used))
            .map(|(address, _)| address.clone())
            .unwrap_or_default()
    }

    /// Replaces all of the device's sessions by `session`, of the new identity the application
    /// accepted: the old identity's sessions are dropped.
    pub(crate) fn install_new_identity(
        &mut self,
        jid: &str,
        device_id: u32,
        session: OmemoSession<P>,
    ) {
        match self.get_mut(jid, device_id) {
            Some(slot) => {
                slot.current = session;
                slot.previous.clear();
                slot.accepted = None;
            }
            None => self.install(jid, device_id, session),
        }
    }

    /// Evicts, by the same rule as [`Self::install`], until the limits hold: how a schema-1
    /// blob stored before the limits existed still restores.
    pub(crate) fn trim(&mut self) {
        let rank = |(address, slot): (&(String, u32), &SessionSlot<P>)| {
            (slot.is_answered(), slot.last_used, address.clone())
        };
        // In address order a JID's slots are consecutive.
        let all: Vec<_> = self.slots.iter().map(|(a, s)| rank((a, s))).collect();
        let mut evict: Vec<(String, u32)> = Vec::new();
        for same_jid in all.chunk_by(|a, b| a.2.0 == b.2.0) {
            let excess = same_jid.len().saturating_sub(MAX_DEVICES_PER_JID);
            let mut ranked = same_jid.to_vec();
            ranked.sort();
            evict.extend(
                ranked
                    .into_iter()
                    .take(excess)
                    .map(|(_, _, address)| address),
            );
        }
        for address in &evict {
            self.slots.remove(address);
        }
        let excess = self.slots.len().saturating_sub(MAX_DEVICES);
        let mut ranked: Vec<_> = self.slots.iter().map(|(a, s)| rank((a, s))).collect();
        ranked.sort();
        let evict: Vec<_> = ranked.into_iter().take(excess).map(|(_, _, a)| a).collect();
        for address in &evict {
            self.slots.remove(address);
        }
    }

    /// Forgets every session with the device.
    pub fn remove(&mut self, jid: &str, device_id: u32) -> bool {
        self.slots
            .remove(&(jid, device_id) as &dyn Address)
            .is_some()
    }

    /// The (JID, device id) pairs with a session.
    pub fn devices(&self) -> impl Iterator<Item = (&str, u32)> {
        self.slots.keys().map(|(jid, id)| (jid.as_str(), *id))
    }

    /// How many devices have a session.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no device has a session.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// A session address, owned (the map's keys) or borrowed (a lookup), compared as
/// `(JID, device id)`: lookups need no `String`.
trait Address {
    fn parts(&self) -> (&str, u32);
}

impl Address for (String, u32) {
    fn parts(&self) -> (&str, u32) {
        (&self.0, self.1)
    }
}

impl Address for (&str, u32) {
    fn parts(&self) -> (&str, u32) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn Address + 'a> for (String, u32) {
    fn borrow(&self) -> &(dyn Address + 'a) {
        self
    }
}

impl PartialEq for dyn Address + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn Address + '_ {}

impl PartialOrd for dyn Address + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn Address + '_ {
    /// The order of `(String, u32)`, which `Borrow` requires.
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}
