//! Olm interop between olmo and libolm (python-olm), in both directions.
//!
//! Every test spawns its own libolm peer (`tests/peers/libolm_peer.py`); run
//! `.ci/setup-python.sh` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod support;

mod account_pickles;
mod delivery;
mod fallback;
mod session_pickles;
mod sessions;
mod signatures;
