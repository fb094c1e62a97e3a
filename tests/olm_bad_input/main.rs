//! Olm with hostile or broken input: malformed wire messages, tampered and replayed messages,
//! wrong keys, small-order points. Every case is an error, never a panic, and leaves the session
//! or account exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod account;
mod decoding;
mod decrypt;
mod fields;
mod keys;
mod limits;
