//! olmo for Kotlin, Swift and Python, through UniFFI (proc-macros, no UDL).
//!
//! A thin layer: every function here converts arguments, calls the core, and converts the
//! result back; nothing here decides anything the core does not. Conventions, the same in every
//! module:
//! - public keys, session ids and Matrix session keys are unpadded base64 strings, as Matrix
//!   writes them; ciphertexts, plaintexts, stored blobs and storage keys are bytes;
//! - each stateful object holds its core value behind a mutex, so the foreign side may share it
//!   between threads; it is freed when the foreign handle is closed (Kotlin `close()`, Swift
//!   `deinit`, Python's `del` or the end of a `with` block), and the core wipes its secrets then;
//! - every failure is one [`OlmoError`] variant whose `reason` is the core error's text, which
//!   never holds a secret or a plaintext. Records never carry secrets or plaintexts, because
//!   generated records print their fields (`toString`, `__repr__`); those come back as bare
//!   bytes or behind objects.

mod error;
mod key_export;
mod machine;
mod megolm;
mod olm;
mod omemo;
mod stores;
mod sync;
mod xmpp;

pub use error::OlmoError;

uniffi::setup_scaffolding!("olmo");
