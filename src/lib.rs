//! olmo: end-to-end encryption for Matrix (Olm, Megolm) and XMPP (OMEMO) on one double-ratchet
//! core.
//!
//! Layers, bottom up: [`crypto`] (typed keys and primitives) → [`ratchet`] (the double ratchet,
//! generic over a protocol profile) → protocols ([`olm`]; [`megolm`], the group hash ratchet,
//! its messages and session keys; [`omemo`]) → [`persist`] (versioned, encrypted storage of
//! every state object, plus libolm pickle import and export) and [`store`] (the contract every
//! storage backend meets: sealed, versioned records and all-or-nothing commits). [`time`] holds
//! the one timestamp type; the core never reads a clock unless asked.
//!
//! ```
//! use olmo::olm::{Account, OlmMessage};
//!
//! let alice = Account::new();
//! let mut bob = Account::new();
//! bob.generate_one_time_keys(1);
//! let (_, otk) = bob.unpublished_one_time_keys()[0];
//! bob.mark_keys_as_published();
//!
//! let mut alice_session = alice
//!     .create_outbound_session(bob.curve25519_key(), otk)
//!     .unwrap();
//! let first = alice_session.encrypt(b"Hello, Bob").unwrap();
//!
//! let OlmMessage::PreKey(pre_key) = &first else { unreachable!() };
//! let inbound = bob
//!     .create_inbound_session(alice.curve25519_key(), pre_key)
//!     .unwrap();
//! assert_eq!(&inbound.plaintext[..], b"Hello, Bob");
//! ```

pub mod crypto;
pub mod matrix;
pub mod megolm;
pub mod olm;
pub mod omemo;
pub mod persist;
pub mod ratchet;
pub mod store;
pub mod time;
pub mod xmpp;

mod codec;
mod vec_map;

pub use codec::DecodeError;

/// The README's example, compiled and run as a doc test so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
