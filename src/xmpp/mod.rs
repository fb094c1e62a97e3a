//! The XMPP machine: one OMEMO account, OMEMO 2 and 0.3 at once, over a [store](crate::store),
//! sans I/O: stanza payloads (XML) in, stanza payloads and requests out. It does for a client
//! what python-omemo's `SessionManager` does, with every step one commit:
//!
//! 1. [`XmppMachine::open`] the account (a random device id and fresh keys on first use) and
//!    publish what [`XmppMachine::publish`] gives (device lists and bundles, both versions);
//! 2. hand every device list received (PEP notifications, ours included) to
//!    [`XmppMachine::receive_device_list`]; republish when it says so;
//! 3. before sending, fetch what [`XmppMachine::bundle_requests`] names and hand each bundle
//!    to [`XmppMachine::receive_bundle`], then [`XmppMachine::encrypt`];
//! 4. [`XmppMachine::decrypt`] every `<encrypted>` received (live or from the archive, with its
//!    stanza id), and send the replies it returns;
//! 5. record the user's trust decisions with [`XmppMachine::set_trust`].

mod contacts;
mod error;
mod machine;
mod memo;
mod messages;
mod meta;
mod publish;
mod tables;
mod trust;

pub use contacts::{BundleRequest, DeviceListUpdate};
pub use error::{DecryptFailure, XmppError};
pub use machine::{TrustPolicy, XmppMachine};
pub use messages::{
    DecryptOutcome, EncryptOutcome, EncryptedStanza, ReceivedMessage, SkipReason, SkippedDevice,
};
pub use publish::{PepItem, bundle_node, device_list_node};
pub use trust::Trust;

#[cfg(test)]
mod schema_tests;
