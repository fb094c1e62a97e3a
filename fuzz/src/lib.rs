//! Shared code of olmo's fuzz targets. The checks live in `checks.rs`, which
//! `tests/fuzz_corpus.rs` also includes, so a fuzz crash replays as an ordinary test.

mod checks;

pub use checks::*;
