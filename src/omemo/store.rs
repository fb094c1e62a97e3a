//! The sessions of one version, keyed by (bare JID, device id). A new key exchange from a
//! device replaces its session but the old one is kept (a few of them) so that messages still
//! in flight on it open; one that does decrypt becomes current again, as libsignal does.

use std::collections::{BTreeMap, VecDeque};

use super::profile::OmemoProfile;
use super::session::Session;

/// Earlier sessions kept per device for delayed messages.
pub const MAX_PREVIOUS_SESSIONS: usize = 5;

/// A device's current session and the ones it replaced, newest first.
#[derive(Debug, Clone)]
pub struct SessionSlot<P: OmemoProfile> {
    pub(crate) current: Session<P>,
    pub(crate) previous: VecDeque<Session<P>>,
}

impl<P: OmemoProfile> SessionSlot<P> {
    pub(crate) fn new(session: Session<P>) -> Self {
        Self {
            current: session,
            previous: VecDeque::new(),
        }
    }

    /// The current session.
    pub fn current(&self) -> &Session<P> {
        &self.current
    }

    /// The sessions it replaced, newest first.
    pub fn previous(&self) -> impl Iterator<Item = &Session<P>> {
        self.previous.iter()
    }

    /// Makes `session` current, keeping the one it replaces.
    pub(crate) fn replace(&mut self, session: Session<P>) {
        let old = std::mem::replace(&mut self.current, session);
        self.previous.push_front(old);
        self.previous.truncate(MAX_PREVIOUS_SESSIONS);
    }

    /// Puts `session` back as the state at `position` (`None`: current) after it decrypted;
    /// a previous session that decrypted becomes current.
    pub(crate) fn commit(&mut self, position: Option<usize>, session: Session<P>) {
        match position {
            None => self.current = session,
            Some(index) => {
                self.previous.remove(index);
                self.replace(session);
            }
        }
    }

    /// Every state, current first, with its position for [`Self::commit`].
    pub(crate) fn states(&self) -> impl Iterator<Item = (Option<usize>, &Session<P>)> {
        std::iter::once((None, &self.current))
            .chain(self.previous.iter().enumerate().map(|(i, s)| (Some(i), s)))
    }
}

/// Sessions of one version by (bare JID, device id).
#[derive(Debug, Clone)]
pub struct SessionStore<P: OmemoProfile> {
    pub(crate) slots: BTreeMap<(String, u32), SessionSlot<P>>,
}

impl<P: OmemoProfile> Default for SessionStore<P> {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
        }
    }
}

impl<P: OmemoProfile> SessionStore<P> {
    /// The device's sessions, if any.
    pub fn get(&self, jid: &str, device_id: u32) -> Option<&SessionSlot<P>> {
        self.slots.get(&(jid.to_owned(), device_id))
    }

    pub(crate) fn get_mut(&mut self, jid: &str, device_id: u32) -> Option<&mut SessionSlot<P>> {
        self.slots.get_mut(&(jid.to_owned(), device_id))
    }

    /// Installs a new session for the device, keeping its old one as previous.
    pub(crate) fn install(&mut self, jid: &str, device_id: u32, session: Session<P>) {
        match self.get_mut(jid, device_id) {
            Some(slot) => slot.replace(session),
            None => {
                self.slots
                    .insert((jid.to_owned(), device_id), SessionSlot::new(session));
            }
        }
    }

    /// Forgets every session with the device.
    pub fn remove(&mut self, jid: &str, device_id: u32) -> bool {
        self.slots.remove(&(jid.to_owned(), device_id)).is_some()
    }

    /// The (JID, device id) pairs with a session.
    pub fn devices(&self) -> impl Iterator<Item = (&str, u32)> {
        self.slots.keys().map(|(jid, id)| (jid.as_str(), *id))
    }
}
