//! Running the built `olmo` as a user would, and making room dumps with the peer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The passphrase the dumps' key exports are made with.
pub const PASSPHRASE: &str = "test passphrase";

/// `olmo` with these arguments, nothing inherited but the environment we set.
pub fn olmo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_olmo"));
    command
        .args(args)
        .env_remove("OLMO_PASSPHRASE")
        .env_remove("OLMO_STORE_KEY")
        .stdin(Stdio::null());
    command
}

/// Runs and collects.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("olmo runs")
}

/// stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The peers' Python, or `None` (a failure under CI) when it is not installed.
pub fn python() -> Option<PathBuf> {
    let python = root().join(".venv/bin/python3");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import vodozemac, nio"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the peers' .venv (vodozemac, matrix-nio) is missing: run .ci/setup-python.sh"
        );
        eprintln!("skipped: no .venv with vodozemac and matrix-nio (run .ci/setup-python.sh)");
    }
    ok.then_some(python)
}

/// Makes a dump with the peer in `dir` (see test-vectors/matrix-dump/make_dump.py).
pub fn make_dump(python: &Path, dir: &Path, extra: &[&str]) {
    let status = Command::new(python)
        .arg(root().join("test-vectors/matrix-dump/make_dump.py"))
        .arg(dir)
        .args(extra)
        .env("OLMO_PASSPHRASE", PASSPHRASE)
        .status()
        .expect("the dump generator runs");
    assert!(status.success(), "make_dump.py failed");
}

/// Lines of JSON.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}
