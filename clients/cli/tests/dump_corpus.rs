//! Replays the `matrix_dump` fuzz target's seeds and saved crash inputs
//! (`fuzz/seeds/matrix_dump/*`, `fuzz/regressions/matrix_dump/*`) through its check on stable
//! Rust: the dump reader never panics, and what it reads does not depend on how the input is
//! split. The check is `fuzz/src/dump.rs`, shared with the fuzz crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/src/dump.rs"]
mod dump;

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("matrix_dump");
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.is_file()
                && !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .collect();
    found.sort();
    found
}

fn replay(kind: &str) -> usize {
    let inputs = inputs(kind);
    for path in &inputs {
        let data = fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| dump::check_matrix_dump(&data));
        assert!(
            matches!(outcome, Ok(true)),
            "{} fails the dump reader's check",
            path.display()
        );
    }
    inputs.len()
}

#[test]
fn seeds_pass() {
    assert!(
        replay("seeds") >= 5,
        "seeds missing under fuzz/seeds/matrix_dump"
    );
}

#[test]
fn regressions_pass() {
    replay("regressions");
}

/// Every byte position of every seed, cut or flipped, still reads the same in any split.
#[test]
fn cut_and_flipped_seeds_pass() {
    for path in inputs("seeds") {
        let data = fs::read(&path).unwrap();
        for end in 1..data.len() {
            assert!(dump::check_matrix_dump(&data[..end]));
            let mut flipped = data.clone();
            flipped[end] ^= 0x20;
            assert!(dump::check_matrix_dump(&flipped));
        }
    }
}
