//! Shared helpers for integration tests. Use with `mod common;`.

// Not every test binary uses every helper.
#![allow(dead_code)]
// Test helpers are expected to panic on failure.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod counting_store;
pub mod hex;
pub mod peer;
pub mod rng;
pub mod vectors;
