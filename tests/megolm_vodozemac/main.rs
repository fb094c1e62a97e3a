//! Megolm against vodozemac 0.11.1, in both directions: the ratchet and codecs (`ratchet`),
//! sessions, exports and compare/merge (`sessions`), far indices and the u32 edge (`edges`), and
//! libolm-format pickles read by vodozemac (`pickles`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

mod edges;
mod pickles;
mod ratchet;
mod sessions;
