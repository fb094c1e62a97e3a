//! `olmo matrix decrypt` on room dumps and key exports made by the peer (vodozemac-python,
//! which matrix-nio encrypts with, and nio's key export writer), as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{PASSPHRASE, json_lines, make_dump, olmo, python, run, text};

/// Checks each output line against what the generator says the event must give.
fn check_against_expected(dir: &Path, stdout: &str) {
    let expected = std::fs::read_to_string(dir.join("expected.jsonl")).expect("expected.jsonl");
    let expected = json_lines(&expected);
    let lines = json_lines(stdout);
    assert_eq!(lines.len(), expected.len(), "one line per input event");
    for (line, want) in lines.iter().zip(&expected) {
        assert_eq!(line["event_id"], want["event_id"], "{line}");
        match want["reason"].as_str() {
            None => {
                assert_eq!(line["status"], "decrypted", "{line}");
                assert_eq!(line["event"]["type"], "m.room.message");
                assert_eq!(line["event"]["content"]["body"], want["body"], "{line}");
                assert_eq!(line["forwarded"], true, "an imported key is only claimed");
            }
            Some("unencrypted") => assert_eq!(line["status"], "unencrypted", "{line}"),
            Some(reason) => {
                assert_eq!(line["status"], "failed", "{line}");
                assert_eq!(line["reason"], reason, "{line}");
            }
        }
    }
}

fn decrypt_shape(shape: &str) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    make_dump(
        &python,
        dir.path(),
        &[
            "--faults",
            "--shape",
            shape,
            "--sessions",
            "12",
            "--events",
            "150",
        ],
    );
    let events = dir.path().join(format!("events.{shape}"));
    let keys = dir.path().join("keys.txt");
    let output = run(olmo(&[
        "matrix",
        "decrypt",
        "--keys",
        keys.to_str().expect("utf-8"),
        events.to_str().expect("utf-8"),
    ])
    .env("OLMO_PASSPHRASE", PASSPHRASE));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    check_against_expected(dir.path(), &stdout);
    // The summary counts the failures by reason.
    assert!(stderr.contains("153 events: "), "{stderr}");
    assert!(stderr.contains("no_session"), "{stderr}");
    assert!(stderr.contains("replay 1"), "{stderr}");
    assert!(stderr.contains("bad_signature 1"), "{stderr}");
    assert!(stderr.contains("unknown_index"), "{stderr}");
}

#[test]
fn decrypts_json_lines() {
    decrypt_shape("lines");
}

#[test]
fn decrypts_a_json_array() {
    decrypt_shape("array");
}

#[test]
fn decrypts_messages_pages() {
    decrypt_shape("messages");
}

#[test]
fn decrypts_sync_responses() {
    decrypt_shape("sync");
}

#[test]
fn decrypts_the_admin_api_dump() {
    decrypt_shape("admin");
}

#[test]
fn stdin_and_a_passphrase_file() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    make_dump(&python, dir.path(), &["--sessions", "3", "--events", "20"]);
    let passphrase_file = dir.path().join("passphrase");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).expect("write");
    let events = std::fs::File::open(dir.path().join("events.lines")).expect("events");
    let output = run(olmo(&[
        "matrix",
        "decrypt",
        "--quiet",
        "--keys",
        dir.path().join("keys.txt").to_str().expect("utf-8"),
        "--passphrase-file",
        passphrase_file.to_str().expect("utf-8"),
    ])
    .stdin(events));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    check_against_expected(dir.path(), &stdout);

    // The wrong passphrase is named as such.
    std::fs::write(&passphrase_file, "wrong\n").expect("write");
    let output = run(&mut olmo(&[
        "matrix",
        "decrypt",
        "--keys",
        dir.path().join("keys.txt").to_str().expect("utf-8"),
        "--passphrase-file",
        passphrase_file.to_str().expect("utf-8"),
    ]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
}

#[test]
fn a_store_keeps_the_keys_and_the_replay_record() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    make_dump(
        &python,
        dir.path(),
        &["--faults", "--sessions", "12", "--events", "150"],
    );
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let events = dir.path().join("events.lines");
    let events = events.to_str().expect("utf-8");
    let keys = dir.path().join("keys.txt");
    let output = run(olmo(&[
        "matrix",
        "import-keys",
        keys.to_str().expect("utf-8"),
        "--store",
        &store,
    ])
    .env("OLMO_PASSPHRASE", PASSPHRASE));
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("11 room keys, 11 imported"), "{stderr}");

    // No key file this time: the store has the keys. Twice: the same lines (no replays).
    let first = run(&mut olmo(&["matrix", "decrypt", "--store", &store, events]));
    assert!(first.status.success(), "{}", text(&first).1);
    check_against_expected(dir.path(), &text(&first).0);
    let second = run(&mut olmo(&["matrix", "decrypt", "--store", &store, events]));
    assert_eq!(first.stdout, second.stdout);

    let stats = run(&mut olmo(&["matrix", "stats", "--store", &store]));
    let (stdout, stderr) = text(&stats);
    assert!(stats.status.success(), "{stderr}");
    assert!(stdout.starts_with("11 room keys in 2 rooms, "), "{stdout}");

    // Export one room's keys, read them back into a fresh store, decrypt that room again.
    let exported = dir.path().join("room0.txt");
    let output = run(olmo(&[
        "matrix",
        "export-keys",
        "--store",
        &store,
        "--room",
        "!room0:example.org",
        "--rounds",
        "1000",
        "-o",
        exported.to_str().expect("utf-8"),
    ])
    .env("OLMO_PASSPHRASE", "another"));
    assert!(output.status.success(), "{}", text(&output).1);
    let fresh = format!("sqlite:{}", dir.path().join("fresh.db").display());
    let output = run(olmo(&[
        "matrix",
        "decrypt",
        "--store",
        &fresh,
        "--keys",
        exported.to_str().expect("utf-8"),
        events,
    ])
    .env("OLMO_PASSPHRASE", "another"));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    for line in json_lines(&stdout) {
        if line["status"] == "decrypted" {
            assert_eq!(line["room_id"], "!room0:example.org", "{line}");
        }
    }
    // A wrong store key is refused by name.
    let output = run(olmo(&["matrix", "stats", "--store", &store]).env(
        "OLMO_STORE_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).1.contains("does not open with this key"),
        "{}",
        text(&output).1
    );
}

/// Lines in a file so far.
fn count_lines(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |bytes| bytes.iter().filter(|b| **b == b'\n').count())
}

#[test]
fn killed_half_way_then_resumed_gives_the_same_output() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    make_dump(
        &python,
        dir.path(),
        &[
            "--faults",
            "--sessions",
            "60",
            "--events",
            "3000",
            "--rooms",
            "3",
        ],
    );
    let events = dir.path().join("events.lines");
    let events = events.to_str().expect("utf-8");
    let keys = dir.path().join("keys.txt");
    let keys = keys.to_str().expect("utf-8");

    // The reference: one run to the end.
    let reference = dir.path().join("reference.jsonl");
    let store = format!("sqlite:{}", dir.path().join("reference.db").display());
    let output = run(
        olmo(&["matrix", "decrypt", "--keys", keys, "--store", &store, "-o"])
            .arg(&reference)
            .arg(events)
            .env("OLMO_PASSPHRASE", PASSPHRASE),
    );
    assert!(output.status.success(), "{}", text(&output).1);
    let reference_summary = text(&output)
        .1
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();

    // Killed (SIGKILL) once part of the output is written, then resumed.
    let out = dir.path().join("out.jsonl");
    let store = format!("sqlite:{}", dir.path().join("killed.db").display());
    let mut child = olmo(&["matrix", "decrypt", "--batch", "300", "--keys", keys])
        .args(["--store", &store, "-o"])
        .arg(&out)
        .arg(events)
        .env("OLMO_PASSPHRASE", PASSPHRASE)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while count_lines(&out) < 600 && start.elapsed() < Duration::from_secs(120) {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let written = count_lines(&out);
    assert!(
        written > 0 && written < 3_003,
        "killed half-way: {written} lines"
    );

    let output = run(
        olmo(&["matrix", "decrypt", "--batch", "700", "--store", &store])
            .args(["--resume", "-o"])
            .arg(&out)
            .arg(events),
    );
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resuming after the"), "{stderr}");
    assert_eq!(stderr.lines().last().unwrap_or_default(), reference_summary);
    let resumed = std::fs::read(&out).expect("output");
    let reference = std::fs::read(&reference).expect("reference");
    assert!(
        resumed == reference,
        "the resumed output differs from an uninterrupted run"
    );
}

#[test]
fn a_progress_bar_on_a_terminal() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    make_dump(
        &python,
        dir.path(),
        &["--sessions", "20", "--events", "3000"],
    );
    let events = dir.path().join("events.lines");
    let keys = dir.path().join("keys.txt");
    let out = dir.path().join("out.jsonl");
    let command = format!(
        "{} matrix decrypt --keys {} -o {} {}",
        env!("CARGO_BIN_EXE_olmo"),
        keys.display(),
        out.display(),
        events.display()
    );
    // `script` runs the command in a new pseudo-terminal and copies what it draws.
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("OLMO_PASSPHRASE", PASSPHRASE)
        .env("TERM", "xterm")
        .env_remove("OLMO_STORE_KEY")
        .output()
        .expect("script (util-linux) runs");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    assert!(
        terminal.contains('%') && terminal.contains("events, "),
        "{terminal}"
    );
    assert!(
        terminal.contains('\u{1b}'),
        "drawn with terminal control sequences"
    );
    assert!(
        terminal.contains("3000 events: 3000 decrypted"),
        "{terminal}"
    );
    assert_eq!(count_lines(&out), 3_000);
}

#[test]
fn counts_on_stderr_when_it_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("plain.jsonl");
    let line = r#"{"type":"m.room.message","event_id":"$e","room_id":"!r","content":{}}"#;
    std::fs::write(&events, format!("{line}\n").repeat(25_000)).expect("write");
    let output = run(olmo(&["matrix", "decrypt", "-o", "/dev/null"]).arg(&events));
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("olmo: 10000 events, 0 decrypted\nolmo: 20000 events"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(
        stderr.ends_with("olmo: 25000 events: 0 decrypted, 25000 unencrypted, 0 failed\n"),
        "{stderr}"
    );
}
