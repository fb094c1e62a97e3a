//! A small blocking Matrix client: olmo's sans-I/O [`Machine`](olmo::matrix::Machine) driven
//! over HTTP (ureq), its state in SQLite (`olmo-sqlite`). It logs in with a password, syncs
//! (resuming from the sync token kept in the store), sends every request the machine asks for,
//! and reads and writes `m.room.message` events in encrypted rooms:
//!
//! ```no_run
//! # fn main() -> Result<(), olmo_matrix_client::Error> {
//! use olmo::persist::StorageKey;
//! use olmo_matrix_client::{Client, login};
//!
//! let session = login("https://matrix.example.org", "bot", "password", "olmo bot")?;
//! // Keep `session` and the storage key: reopening the same store with them resumes the device.
//! let key = StorageKey::from_bytes([7; 32]);
//! let mut client = Client::open(&session, "bot.sqlite", &key)?;
//! loop {
//!     for event in client.sync_once(30_000)? {
//!         if let Some(body) = event.body() {
//!             println!("{} in {}: {body}", event.sender, event.room_id);
//!         }
//!     }
//! }
//! # }
//! ```
//!
//! [`bot`] is `olmo matrix bot` built on this client: short enough to read as the reference
//! for bot authors (the inbox, idempotent replies, the saved session).

pub mod bot;
mod client;
mod http;
mod inbox;
mod rooms;
mod saved_session;
mod timeline;

pub use client::Client;
pub use http::{Session, login};
pub use rooms::Room;
pub use timeline::{EventKind, TimelineEvent};

use olmo::matrix::MachineError;
use olmo::store::StoreError;

/// What can go wrong talking to the homeserver or the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed (refused, timed out, TLS, an unreadable body).
    #[error("HTTP: {0}")]
    Http(#[from] ureq::Error),
    /// The homeserver answered with an error status.
    #[error("{method} {path}: status {status} {errcode}")]
    Status {
        /// The method.
        method: String,
        /// The path, without its query.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The Matrix `errcode`, empty if none.
        errcode: String,
    },
    /// The homeserver's answer lacks a field or is not JSON.
    #[error("unexpected response: {0}")]
    Response(&'static str),
    /// The machine refused an operation.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// The store failed to open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The room is encrypted with an algorithm olmo does not speak: nothing is sent.
    #[error("room {0} uses an unsupported encryption algorithm")]
    UnsupportedEncryption(String),
    /// The machine kept asking for requests: the server accepts them but nothing changes.
    #[error("outgoing requests did not settle")]
    RequestsUnsettled,
}
