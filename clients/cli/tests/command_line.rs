//! The command line as a person meets it: help on every command, and errors that say what
//! was wrong and where.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{olmo, run, text};

/// Every command path of the command line.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["demo"],
    &["inspect"],
    &["inspect", "0"],
    &["inspect", "1"],
    &["inspect", "megolm"],
    &["inspect", "room-key"],
    &["inspect", "omemo"],
    &["migrate-account"],
    &["matrix"],
    &["matrix", "decrypt"],
    &["matrix", "import-keys"],
    &["matrix", "export-keys"],
    &["matrix", "stats"],
    &["xmpp"],
];

#[test]
fn help_on_every_command_exits_zero() {
    for command in COMMANDS {
        for flag in ["--help", "-h"] {
            let mut args = command.to_vec();
            args.push(flag);
            let output = run(&mut olmo(&args));
            let (stdout, stderr) = text(&output);
            assert!(output.status.success(), "{args:?}: {stderr}");
            assert!(stdout.contains("Usage: olmo"), "{args:?}: {stdout}");
            assert!(stderr.is_empty(), "{args:?}: {stderr}");
        }
    }
    let output = run(&mut olmo(&["help", "matrix", "decrypt"]));
    assert!(output.status.success());
    assert!(text(&output).0.contains("--passphrase-env"));
    let output = run(&mut olmo(&["--version"]));
    assert!(output.status.success());
}

#[test]
fn a_bad_base64_argument_is_named_with_its_position() {
    let output = run(&mut olmo(&["inspect", "1", "not base64!!"]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("<BODY>"), "{stderr}");
    assert!(stderr.contains("' ' at position 4"), "{stderr}");
}

#[test]
fn a_message_that_does_not_decode_says_what_it_is_not() {
    let output = run(&mut olmo(&["inspect", "megolm", "AAAA"]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a Megolm message"), "{stderr}");
}

#[test]
fn unknown_commands_and_options_are_named() {
    let output = run(&mut olmo(&["frobnicate"]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
    assert!(!stderr.contains("unknown command"), "{stderr}");

    let output = run(&mut olmo(&["matrix", "decrypt", "--passphrase", "x"]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("--passphrase"), "{stderr}");

    let output = run(&mut olmo(&["matrix", "stats", "--store", "postgres://db"]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("unknown store kind `postgres`"), "{stderr}");

    let output = run(&mut olmo(&["matrix", "decrypt", "--resume"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("--output"));
}

#[test]
fn the_passphrase_is_asked_for_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "not a key file").expect("write");
    let keys = keys.to_str().expect("utf-8");
    let output = run(&mut olmo(&["matrix", "decrypt", "--keys", keys]));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("OLMO_PASSPHRASE"), "{stderr}");
    assert!(stderr.contains("--passphrase-file"), "{stderr}");

    let output = run(olmo(&["matrix", "decrypt", "--keys", keys]).env("OLMO_PASSPHRASE", "x"));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("keys.txt") && stderr.contains("armour"),
        "{stderr}"
    );
}

#[test]
fn input_that_is_not_json_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "{\"type\":\"m.room.message\"}\n\n{\"type\" 1}\n").expect("write");
    let output = run(&mut olmo(&[
        "matrix",
        "decrypt",
        "--room",
        "!r",
        events.to_str().expect("utf-8"),
    ]));
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("events.jsonl: line 3: expected `:`"),
        "{stderr}"
    );
    // The event before the error was answered.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn the_demonstration_still_runs_without_arguments() {
    let output = run(&mut olmo(&[]));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("== Olm: Alice and Bob"), "{stdout}");
}
