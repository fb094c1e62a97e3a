//! OMEMO 2 and OMEMO 0.3 against python-omemo 2.1: its twomemo and oldmemo backends driven
//! directly (`backends.rs`) and a whole `omemo.SessionManager` (`manager.rs`). Each side reads
//! the XML the other publishes and sends: bundles, device lists and `<encrypted>` elements.
//!
//! The peer (`tests/peers/omemo_peer.py`) needs the venv from `.ci/setup-python.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod backends;
#[path = "../common/mod.rs"]
mod common;
mod manager;
mod support;
