//! Replays the fuzz seeds (`fuzz/seeds/<target>/*`) and saved crash inputs
//! (`fuzz/regressions/<target>/*`) through the same checks as the fuzz targets, on stable Rust
//! and without libFuzzer, so every crash the fuzzer finds becomes a test once its input is
//! saved. The checks live in `fuzz/src/checks.rs`, shared with the fuzz crate.
//!
//! Regenerate the seeds with
//! `OLMO_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_corpus -- --ignored write_seeds`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every non-hidden file under `root/<target>/`, as `(target, path)`.
fn inputs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(targets) = fs::read_dir(root) else {
        return found;
    };
    for target in targets {
        let target = target.unwrap();
        if !target.file_type().unwrap().is_dir() {
            continue;
        }
        let name = target.file_name().to_string_lossy().into_owned();
        assert!(
            checks::TARGETS.contains(&name.as_str()),
            "{}: no fuzz target named {name}",
            target.path().display()
        );
        for file in fs::read_dir(target.path()).unwrap() {
            let path = file.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|file_name| file_name.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                found.push((name.clone(), path));
            }
        }
    }
    found.sort();
    found
}

fn replay(root: &Path) -> usize {
    let inputs = inputs(root);
    for (target, path) in &inputs {
        let data = fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| checks::run(target, &data));
        match outcome {
            Ok(known) => assert!(known),
            Err(_) => panic!("{target}: {} fails its check", path.display()),
        }
    }
    inputs.len()
}

#[test]
fn seeds_pass() {
    let replayed = replay(&fuzz_dir().join("seeds"));
    assert!(replayed > 0, "no seeds under fuzz/seeds");
}

#[test]
fn every_target_has_seeds() {
    let inputs = inputs(&fuzz_dir().join("seeds"));
    for target in checks::TARGETS {
        assert!(
            inputs.iter().any(|(name, _)| name == target),
            "no seeds for fuzz target {target}"
        );
    }
}

#[test]
fn regressions_pass() {
    replay(&fuzz_dir().join("regressions"));
}

#[test]
fn generated_seeds_pass() {
    for (target, name, data) in checks::seeds() {
        assert!(checks::run(target, &data), "{target}/{name}");
    }
}

/// The session fixture must exercise what the decrypt target checks: fresh messages decrypt
/// (once), stale ones fail and leave the session able to decrypt the held-back message.
#[test]
fn session_fixture_is_live() {
    let fixture = checks::session_fixture();
    for (message, plaintext) in &fixture.fresh {
        let mut session = fixture.bob_session.clone();
        assert_eq!(&session.decrypt(message).unwrap()[..], *plaintext);
        assert!(session.decrypt(message).is_err());
    }
    for message in &fixture.stale {
        assert!(fixture.bob_session.clone().decrypt(message).is_err());
    }
    let mut session = fixture.bob_session.clone();
    assert_eq!(
        &session.decrypt(&fixture.held_back).unwrap()[..],
        checks::HELD_BACK_PLAINTEXT
    );
}

fn restores_group_state(name: &str, data: &[u8], key: &olmo::persist::StorageKey) -> bool {
    use olmo::megolm::{GroupSession, InboundGroupSession, ReplayRecord, Timestamp};
    let pickle = || std::str::from_utf8(data).unwrap();
    match name {
        "outbound.olmo" => GroupSession::restore(data, key).is_ok(),
        "inbound.olmo" => InboundGroupSession::restore(data, key).is_ok(),
        "replay.olmo" => ReplayRecord::restore(data, key).is_ok(),
        "outbound.libolm" => GroupSession::from_libolm_pickle(
            pickle(),
            checks::PICKLE_KEY,
            Timestamp::from_millis(0),
        )
        .is_ok(),
        "inbound.libolm" => {
            InboundGroupSession::from_libolm_pickle(pickle(), checks::PICKLE_KEY).is_ok()
        }
        other => panic!("unexpected group seed {other}"),
    }
}

/// The restore seeds really restore, so the fuzzer starts past authentication.
#[test]
fn restore_seeds_restore() {
    use olmo::olm::{Account, Session};
    let key = olmo::persist::StorageKey::from_bytes(checks::STORAGE_KEY);
    for (target, name, data) in checks::seeds() {
        let ok = match (target, name.ends_with(".libolm")) {
            ("restore_account", false) => Account::restore(&data, &key).is_ok(),
            ("restore_account", true) => {
                Account::from_libolm_pickle(std::str::from_utf8(&data).unwrap(), checks::PICKLE_KEY)
                    .is_ok()
            }
            ("restore_session", false) => Session::restore(&data, &key).is_ok(),
            ("restore_session", true) => {
                Session::from_libolm_pickle(std::str::from_utf8(&data).unwrap(), checks::PICKLE_KEY)
                    .is_ok()
            }
            ("restore_group_session", _) => restores_group_state(&name, &data, &key),
            _ => continue,
        };
        assert!(ok, "{target}/{name} does not restore");
    }
}

/// The key export seed `wrapped-counter-vector` is the `wrap-64` vector of
/// `test-vectors/key-export/`, copied unchanged.
#[test]
fn wrapped_counter_seed_is_the_vector() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors/key-export/vectors.json");
    let vectors: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let vector = vectors
        .iter()
        .find(|vector| vector["name"] == "wrap-64")
        .unwrap();
    assert_eq!(vector["counter"], "64");
    assert_eq!(vector["file"], checks::WRAPPED_COUNTER_VECTOR);
}

/// The rebuilt encodings agree with olmo's encoder on real messages.
#[test]
fn canonical_encoder_matches() {
    let fixture = checks::session_fixture();
    for (message, _) in &fixture.fresh {
        let rebuilt = match message {
            olmo::olm::OlmMessage::Normal(normal) => checks::encode_message(normal),
            olmo::olm::OlmMessage::PreKey(pre_key) => checks::encode_pre_key_message(pre_key),
        };
        assert_eq!(rebuilt, message.as_bytes());
    }
}

/// Writes the seed files. Run with `OLMO_WRITE_FUZZ_SEEDS=1` (see the module docs).
#[test]
#[ignore = "writes fuzz/seeds; run explicitly with OLMO_WRITE_FUZZ_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("OLMO_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let root = fuzz_dir().join("seeds");
    for (target, name, data) in checks::seeds() {
        let directory = root.join(target);
        fs::create_dir_all(&directory).unwrap();
        fs::write(directory.join(name), data).unwrap();
    }
}
