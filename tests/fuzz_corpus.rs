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

/// Targets whose checks need a workspace member's code: the command line's dump reader is
/// replayed by `clients/cli/tests/dump_corpus.rs`.
const CHECKED_ELSEWHERE: &[&str] = &["matrix_dump"];

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
        if CHECKED_ELSEWHERE.contains(&name.as_str()) {
            continue;
        }
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

/// The OMEMO fixture exercises what `omemo_decrypt` checks: every fresh key element and
/// element decrypts (once) on a copy of Bob, the last one with a new session, and every stale
/// one is refused without changing him; then every `omemo_decrypt` seed passes its check.
#[test]
fn omemo_fixture_is_live() {
    use olmo::omemo::Version;
    let fixture = checks::omemo_fixture();
    let mut rng = checks::DeterministicRng::new(40);
    let (alice, alice_device) = (checks::ALICE_JID, checks::ALICE_DEVICE);
    for version_fixture in &fixture.versions {
        let version = version_fixture.version;
        for key in &version_fixture.fresh_keys {
            let mut device = fixture.bob.clone();
            device
                .decrypt_key(version, alice, alice_device, key, &mut rng)
                .unwrap_or_else(|error| panic!("{version:?}: fresh key refused: {error}"));
            assert!(
                device
                    .decrypt_key(version, alice, alice_device, key, &mut rng)
                    .is_err()
            );
        }
        for element in &version_fixture.fresh_elements {
            let mut device = fixture.bob.clone();
            device
                .decrypt_message(alice, element, &mut rng)
                .unwrap_or_else(|error| panic!("{version:?}: fresh element refused: {error}"));
            assert!(device.decrypt_message(alice, element, &mut rng).is_err());
        }
        let new_session = version_fixture.fresh_elements.last().unwrap();
        let opened = fixture
            .bob
            .clone()
            .decrypt_message(alice, new_session, &mut rng)
            .unwrap();
        assert!(opened.new_session && opened.pre_key_used.is_some());
        let mut device = fixture.bob.clone();
        let before = checks::device_fingerprint(&device);
        for key in &version_fixture.stale_keys {
            assert!(
                device
                    .decrypt_key(version, alice, alice_device, key, &mut rng)
                    .is_err()
            );
        }
        for element in &version_fixture.stale_elements {
            assert!(device.decrypt_message(alice, element, &mut rng).is_err());
        }
        assert_eq!(checks::device_fingerprint(&device), before);
        assert_eq!(
            version == Version::Omemo2,
            version_fixture.fresh_elements[0].iv.is_none()
        );
    }
    // Both the key-element and the element form of the check see every seed through.
    for (target, name, data) in checks::seeds() {
        if target == "omemo_decrypt" {
            assert!(checks::run(target, &data), "omemo_decrypt/{name}");
        }
    }
}

/// The wire seeds decode, the bundle seeds are accepted (but for the small-order identities,
/// refused), and the stanza seeds parse as something (but for the hostile shapes, refused by a
/// limit): the fuzzer starts past the decoders.
#[test]
fn omemo_seeds_decode() {
    use olmo::omemo::stanza::{self, DeviceListElement, EncryptedElement, Envelope};
    use olmo::omemo::{Omemo2, Omemo03, OmemoProfile, VerifiedBundle};
    for (target, name, data) in checks::seeds() {
        let ok = match target {
            "omemo_message_decode" => {
                Omemo2::open(&data).is_ok()
                    || Omemo2::open_key_exchange(&data).is_ok()
                    || Omemo03::open(&data).is_ok()
                    || Omemo03::open_key_exchange(&data).is_ok()
            }
            "omemo_stanza_parse" => {
                let hostile;
                let xml = match data[..] {
                    // A hostile shape: refused with a limit, or (within the limits) parsed.
                    [0, shape, a, b, ref tail @ ..] => {
                        let tail = std::str::from_utf8(tail).unwrap();
                        hostile = checks::hostile_stanza(shape, a, b, tail);
                        let refusal = EncryptedElement::parse(&hostile).map(drop);
                        if matches!(refusal, Err(stanza::StanzaError::TooLarge(_))) {
                            continue;
                        }
                        hostile.as_str()
                    }
                    _ => std::str::from_utf8(&data).unwrap(),
                };
                EncryptedElement::parse(xml).is_ok()
                    || stanza::BundleElement::parse(xml).is_ok()
                    || DeviceListElement::parse(xml).is_ok()
                    || Envelope::parse(xml).is_ok()
            }
            "omemo_bundle" if name.starts_with("omemo") => {
                let element = match data[0] % 4 {
                    0 => stanza::BundleElement::parse(std::str::from_utf8(&data[1..]).unwrap())
                        .unwrap(),
                    1 => checks::structured_bundle(olmo::omemo::Version::Omemo2, &data[1..]),
                    2 => checks::structured_bundle(olmo::omemo::Version::Omemo03, &data[1..]),
                    _ => {
                        let (element, must_accept) = checks::mutated_bundle(&data[1..]);
                        assert_eq!(must_accept, name.ends_with("resigned"), "{name}");
                        element
                    }
                };
                // The small-order identity seeds must be refused, the others accepted.
                VerifiedBundle::from_element(&element).is_ok()
                    != name.ends_with("small-order-identity")
            }
            _ => continue,
        };
        assert!(ok, "{target}/{name} does not decode");
    }
}

/// The independent protobuf reader agrees with the wire format on real messages.
#[test]
fn protobuf_scanner_reads_real_messages() {
    let fixture = checks::omemo_fixture();
    for version_fixture in &fixture.versions {
        for key in version_fixture
            .fresh_keys
            .iter()
            .chain(&version_fixture.stale_keys)
        {
            let body = match version_fixture.version {
                olmo::omemo::Version::Omemo2 => &key.data[..],
                olmo::omemo::Version::Omemo03 if key.key_exchange => &key.data[1..],
                olmo::omemo::Version::Omemo03 => &key.data[1..key.data.len() - 8],
            };
            let fields = checks::scan_protobuf(body).unwrap();
            assert!(!fields.is_empty());
            assert!(matches!(
                fields[0],
                (1, checks::Field::Bytes(_) | checks::Field::Varint(_))
            ));
        }
    }
}

/// The Matrix fixture's real inputs are accepted whole (the room key decrypts, the events
/// decrypt, the responses apply), so the fuzzer starts past the machine's checks; a real
/// event with its room id changed is refused.
#[test]
fn matrix_fixture_is_live() {
    use checks::MatrixInput;
    let fixture = checks::matrix_fixture();
    let inputs = fixture
        .to_device
        .iter()
        .map(|input| (MatrixInput::ToDevice, input))
        .chain(
            fixture
                .room_events
                .iter()
                .map(|e| (MatrixInput::RoomEvent, e)),
        )
        .chain([
            (MatrixInput::QueryResponse, &fixture.query_response),
            (MatrixInput::ClaimResponse, &fixture.claim_response),
        ]);
    for (kind, input) in inputs {
        assert!(checks::run_matrix_input(fixture, kind, input), "{kind:?}");
    }
    let mut event = fixture.room_events[0].clone();
    event["content"]["session_id"] = "AAAA".into();
    assert!(!checks::run_matrix_input(
        fixture,
        MatrixInput::RoomEvent,
        &event
    ));
    assert!(
        checks::seeds()
            .iter()
            .any(|(target, _, _)| *target == "matrix_machine")
    );
}

/// The XMPP fixture's real inputs are accepted (so mutations start from working stanzas), and a
/// message with its payload swapped for another's is refused with only its failure counted.
#[test]
fn xmpp_fixture_is_live() {
    use checks::XmppInput;
    let fixture = checks::xmpp_fixture();
    for (kind, inputs) in [
        (XmppInput::DeviceList, &fixture.device_lists),
        (XmppInput::Bundle, &fixture.bundles),
        (XmppInput::Encrypted, &fixture.messages),
    ] {
        assert_eq!(inputs.len(), 2, "{kind:?}");
        for input in inputs {
            assert!(checks::run_xmpp_input(fixture, kind, input), "{kind:?}");
        }
    }
    let [first, second] = &fixture.messages[..] else {
        panic!("two messages")
    };
    let payload = |xml: &str| xml[xml.find("<payload>").unwrap()..].to_owned();
    let swapped = first.replace(&payload(first), &payload(second));
    assert!(!checks::run_xmpp_input(
        fixture,
        XmppInput::Encrypted,
        &swapped
    ));
    assert!(
        checks::seeds()
            .iter()
            .any(|(target, _, _)| *target == "xmpp_machine")
    );
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
