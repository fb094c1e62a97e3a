//! The XMPP machine's tables in the store, each record named by a keyed hash of the identifiers
//! it stands for; record contents as [`crate::store::records`] lays them out.

pub(crate) use crate::store::records::{SCHEMA, load, remove, store};

/// The account: its device (identity, pre-keys) and settings. One record.
pub const ACCOUNT: &str = "xmpp.account";
/// One record per session slot, by (version, bare JID, device id).
pub const SESSIONS: &str = "xmpp.sessions";
/// Device lists as received, by (version, bare JID).
pub const DEVICE_LISTS: &str = "xmpp.device_lists";
/// Trust decisions, by (bare JID, identity fingerprint).
pub const TRUST: &str = "xmpp.trust";
/// Consecutive decryption failures, by (version, bare JID, device id).
pub const FAILURES: &str = "xmpp.failures";
/// Messages already decrypted, by (sender bare JID, stanza id): an archive catch-up run again
/// returns what the first run gave.
pub const PROCESSED: &str = "xmpp.processed";
