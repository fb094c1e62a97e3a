//! A live XMPP bot over olmo's XMPP machine, on the SQLite store: it logs in with tokio-xmpp,
//! publishes its OMEMO 2 and 0.3 device lists and bundles, catches up on its message archive,
//! follows device lists with PEP notifications, and answers every OMEMO message it can
//! decrypt with an encrypted echo. Its source is meant
//! to be read: [`bot`] is the loop a bot author adapts; the other modules are plumbing.

pub mod bot;
mod connection;
mod ledger;
mod pep;
mod stanzas;

use olmo::store::StoreError;
use olmo::xmpp::XmppError;
use thiserror::Error;

pub use bot::{BotArgs, run};

/// Why the bot stopped (or a step of it failed). No variant carries a password, key or
/// message text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The environment variable named for the password is not set.
    #[error("the password variable {0} is not set")]
    Password(String),
    /// The JID given is not a bare JID.
    #[error("{0:?} is not a bare JID")]
    Jid(String),
    /// The storage key file could not be read or made.
    #[error("storage key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The XMPP machine refused an operation.
    #[error(transparent)]
    Machine(#[from] XmppError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection failed (login, socket).
    #[error("xmpp connection: {0}")]
    Connection(String),
    /// The server answered an IQ with an error, or not in time.
    #[error("xmpp request: {0}")]
    Iq(String),
    /// An XML payload did not parse.
    #[error("malformed XML payload")]
    Xml,
    /// A record of the bot's own is malformed.
    #[error("stored {0} is malformed")]
    Corrupt(&'static str),
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(String),
}
