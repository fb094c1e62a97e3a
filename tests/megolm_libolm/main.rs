//! Megolm interop between olmo and libolm (python-olm 3.2.16), in both directions: messages,
//! exported keys, far indices and the u32 edge, pickles, backlogs, and compare/merge.
//!
//! Every test spawns its own libolm peer (`tests/peers/libolm_peer.py`); run
//! `.ci/setup-python.sh` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod sender;
mod support;

mod backlog;
mod delivery;
mod exports;
mod far;
mod merge;
mod pickles;
