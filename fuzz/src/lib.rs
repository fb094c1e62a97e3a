//! Shared code of olmo's fuzz targets. The checks live in `checks.rs`, which
//! `tests/fuzz_corpus.rs` also includes, so a fuzz crash replays as an ordinary test; the dump
//! reader's check is in `dump.rs`, replayed by the command line's tests.

mod checks;
mod dump;

pub use checks::*;
pub use dump::check_matrix_dump;
