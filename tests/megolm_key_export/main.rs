//! Room key export files: olmo against matrix-nio in both directions, and olmo's reader on
//! its own (armour variants, tampering, round counts, determinism).
//!
//! The nio tests spawn `tests/peers/nio_peer.py`, which drives real `nio.crypto.Olm` machines;
//! run `.ci/setup-python.sh` first. Files use 1,000 PBKDF2 rounds for speed, except one test
//! at the default.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod support;

mod format;
mod nio;
