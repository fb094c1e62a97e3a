//! The Megolm fuzz checks: message and session-key decoding, decryption (single and backlog)
//! and restoring group sessions. Part of `checks.rs`, shared with `tests/fuzz_corpus.rs`.

use std::sync::OnceLock;

use olmo::crypto::Ed25519KeyPair;
use olmo::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage, MegolmRatchet,
    ReplayRecord, SessionKey, Timestamp,
};
use olmo::persist::StorageKey;

use super::{DeterministicRng, PICKLE_KEY, STORAGE_KEY, libolm_pickle, seal_payload};

/// Runs Megolm target `target` (listed in `TARGETS`); `false` if there is no such target.
pub fn run_megolm(target: &str, data: &[u8]) -> bool {
    match target {
        "megolm_message_decode" => check_megolm_message_decode(data),
        "megolm_session_key_decode" => check_session_key_decode(data),
        "megolm_decrypt" => check_megolm_decrypt(data),
        "restore_group_session" => check_restore_group_session(data),
        _ => return false,
    }
    true
}

/// `megolm_message_decode`: a message that decodes is exactly the canonical encoding of its
/// fields, and survives base64.
pub fn check_megolm_message_decode(data: &[u8]) {
    let Ok(message) = MegolmMessage::decode(data) else {
        return;
    };
    assert_eq!(message.as_bytes(), data);
    let mut rebuilt = vec![3];
    super::push_varint(&mut rebuilt, 1 << 3);
    super::push_varint(&mut rebuilt, u64::from(message.message_index()));
    super::push_varint(&mut rebuilt, (2 << 3) | 2);
    super::push_varint(&mut rebuilt, message.ciphertext().len() as u64);
    rebuilt.extend_from_slice(message.ciphertext());
    rebuilt.extend_from_slice(message.mac());
    rebuilt.extend_from_slice(message.signature().as_bytes());
    assert_eq!(rebuilt, data, "a non-canonical encoding was accepted");
    let again = MegolmMessage::from_base64(&message.to_base64()).expect("base64 round trip");
    assert_eq!(again, message);
}

/// `megolm_session_key_decode`: the input as an exported key and as a session key, and, with
/// the fixture's key and signature put in, as a session key that gets past the signature.
pub fn check_session_key_decode(data: &[u8]) {
    if let Ok(key) = ExportedSessionKey::decode(data) {
        assert_eq!(&*key.to_bytes(), data);
    }
    if let Ok(key) = SessionKey::decode(data) {
        assert_eq!(&*key.to_bytes(), data);
    }
    let signing = &fixture().signing;
    let mut unsigned = data.to_vec();
    if let Some(key_bytes) = unsigned.get_mut(133..165) {
        key_bytes.copy_from_slice(signing.public_key().as_bytes());
    }
    let mut signed = unsigned.clone();
    signed.extend_from_slice(signing.sign(&unsigned).as_bytes());
    if let Ok(key) = SessionKey::decode(&signed) {
        assert_eq!(&*key.to_bytes(), signed.as_slice());
        let session = InboundGroupSession::new(&key);
        assert_eq!(session.first_known_index(), key.ratchet().index());
    }
}

/// The fixture: a session at index 0 and messages 0..8 of it.
pub struct MegolmFixture {
    /// The sender's signing key, used to sign fuzzed messages so they reach the MAC check.
    pub signing: Ed25519KeyPair,
    /// The receiver's session, from index 0.
    pub inbound: InboundGroupSession,
    /// The sender's messages, index 0 to 7.
    pub messages: Vec<MegolmMessage>,
}

/// The shared fixture, built once.
pub fn fixture() -> &'static MegolmFixture {
    static FIXTURE: OnceLock<MegolmFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut ratchet = MegolmRatchet::from_bytes(&[0x42; MegolmRatchet::LENGTH], 0);
        let signing = Ed25519KeyPair::from_seed(&[0x24; 32]);
        let inbound = InboundGroupSession::new(&SessionKey::new(&ratchet, &signing));
        let mut messages = Vec::new();
        for index in 0..8u8 {
            let plaintext = vec![index; usize::from(index) * 7];
            messages.push(MegolmMessage::encrypt(&ratchet, &signing, &plaintext).expect("fits"));
            ratchet.advance().expect("far from the end");
        }
        MegolmFixture {
            signing,
            inbound,
            messages,
        }
    })
}

/// `megolm_decrypt`: the input is version, body and MAC; the check signs it with the
/// fixture's key so the fuzzer reaches the index, MAC and cipher. A refusal leaves the session
/// unchanged; a message that decrypts does so again and agrees with the backlog path.
pub fn check_megolm_decrypt(data: &[u8]) {
    let fixture = fixture();
    let mut signed = data.to_vec();
    signed.extend_from_slice(fixture.signing.sign(data).as_bytes());
    let Ok(message) = MegolmMessage::decode(&signed) else {
        return;
    };
    let mut session = fixture.inbound.clone();
    let before = session.to_libolm_pickle(PICKLE_KEY);
    match session.decrypt(&message) {
        Ok(first) => {
            let again = session.decrypt(&message).expect("a message decrypts twice");
            assert_eq!(again.plaintext, first.plaintext);
            let batch = fixture
                .inbound
                .clone()
                .decrypt_backlog(&[message.clone(), fixture.messages[3].clone()]);
            assert_eq!(
                batch[0].as_ref().expect("backlog agrees").plaintext,
                first.plaintext
            );
            assert!(batch[1].is_ok());
        }
        Err(error) => {
            assert_eq!(session.to_libolm_pickle(PICKLE_KEY), before, "{error}");
            let batch = session.decrypt_backlog(&[message]);
            assert!(batch[0].is_err(), "backlog accepted what decrypt refused");
            assert_eq!(session.to_libolm_pickle(PICKLE_KEY), before);
            let held_back = &fixture.messages[5];
            assert!(session.decrypt(held_back).is_ok());
        }
    }
}

const GROUP_SESSION_KIND: u8 = 3;
const INBOUND_GROUP_SESSION_KIND: u8 = 4;
const REPLAY_RECORD_KIND: u8 = 5;

/// `restore_group_session`: the input as our stored outbound session, inbound session and
/// replay record (raw and sealed past authentication), and as libolm group pickles. What
/// restores must save and restore again, and survive use.
pub fn check_restore_group_session(data: &[u8]) {
    let key = StorageKey::from_bytes(STORAGE_KEY);
    for kind in [
        GROUP_SESSION_KIND,
        INBOUND_GROUP_SESSION_KIND,
        REPLAY_RECORD_KIND,
    ] {
        for blob in [data.to_vec(), seal_payload(kind, data)] {
            restore_stored(&blob, &key);
        }
    }
    let pickle = libolm_pickle(data);
    restore_libolm(&pickle);
    if let Ok(text) = std::str::from_utf8(data) {
        restore_libolm(text);
    }
}

fn restore_stored(blob: &[u8], key: &StorageKey) {
    let mut rng = DeterministicRng::new(5);
    if let Ok(session) = GroupSession::restore(blob, key) {
        let again = GroupSession::restore(&session.save_with_rng(key, &mut rng), key)
            .expect("a saved group session restores");
        assert_eq!(again.session_id(), session.session_id());
        assert_eq!(again.message_index(), session.message_index());
        let _ = again.session_key();
        let _ = { session }.encrypt(b"x");
    }
    if let Ok(session) = InboundGroupSession::restore(blob, key) {
        let again = InboundGroupSession::restore(&session.save_with_rng(key, &mut rng), key)
            .expect("a saved inbound session restores");
        assert_eq!(again.first_known_index(), session.first_known_index());
        let _ = { again }.decrypt(&fixture().messages[1]);
    }
    if let Ok(record) = ReplayRecord::restore(blob, key) {
        let again = ReplayRecord::restore(&record.save_with_rng(key, &mut rng), key)
            .expect("a saved replay record restores");
        assert_eq!(again, record);
    }
}

fn restore_libolm(pickle: &str) {
    if let Ok(session) =
        GroupSession::from_libolm_pickle(pickle, PICKLE_KEY, Timestamp::from_millis(0))
    {
        let exported = session.to_libolm_pickle(PICKLE_KEY);
        let again =
            GroupSession::from_libolm_pickle(&exported, PICKLE_KEY, Timestamp::from_millis(0))
                .expect("an exported outbound pickle imports");
        assert_eq!(again.to_libolm_pickle(PICKLE_KEY), exported);
    }
    if let Ok(session) = InboundGroupSession::from_libolm_pickle(pickle, PICKLE_KEY) {
        let exported = session.to_libolm_pickle(PICKLE_KEY);
        let again = InboundGroupSession::from_libolm_pickle(&exported, PICKLE_KEY)
            .expect("an exported inbound pickle imports");
        assert_eq!(again.to_libolm_pickle(PICKLE_KEY), exported);
        let _ = { again }.decrypt(&fixture().messages[1]);
    }
}

/// Seed inputs for the Megolm targets.
pub fn megolm_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let fixture = fixture();
    let mut seeds = Vec::new();
    for (index, message) in fixture.messages.iter().enumerate() {
        let bytes = message.as_bytes();
        seeds.push((
            "megolm_message_decode",
            format!("fixture-{index}"),
            bytes.to_vec(),
        ));
        let unsigned = bytes[..bytes.len() - 64].to_vec();
        seeds.push(("megolm_decrypt", format!("fixture-{index}"), unsigned));
    }
    let session_key = SessionKey::new(
        &MegolmRatchet::from_bytes(&[0x42; MegolmRatchet::LENGTH], 0),
        &fixture.signing,
    );
    seeds.push((
        "megolm_session_key_decode",
        "session-key".into(),
        session_key.to_bytes().to_vec(),
    ));
    let exported = fixture
        .inbound
        .export_at(300)
        .expect("after the first index");
    seeds.push((
        "megolm_session_key_decode",
        "exported-300".into(),
        exported.to_bytes().to_vec(),
    ));

    let key = StorageKey::from_bytes(STORAGE_KEY);
    let mut rng = DeterministicRng::new(6);
    let mut outbound = GroupSession::new_with_rng(Timestamp::from_millis(1), &mut rng);
    let mut reader = InboundGroupSession::new(&outbound.session_key());
    let first = outbound
        .encrypt(b"one")
        .expect("a short plaintext encrypts");
    let mut record = ReplayRecord::new();
    if let Ok(decrypted) = reader.decrypt(&first) {
        let _ = record.check(&decrypted, "$event");
    }
    let inbound = InboundGroupSession::new(&outbound.session_key());
    let seeds_of_kind = [
        ("outbound.olmo", outbound.save_with_rng(&key, &mut rng)),
        ("inbound.olmo", inbound.save_with_rng(&key, &mut rng)),
        ("replay.olmo", record.save_with_rng(&key, &mut rng)),
        (
            "outbound.libolm",
            outbound.to_libolm_pickle(PICKLE_KEY).into_bytes(),
        ),
        (
            "inbound.libolm",
            inbound.to_libolm_pickle(PICKLE_KEY).into_bytes(),
        ),
    ];
    for (name, bytes) in seeds_of_kind {
        seeds.push(("restore_group_session", name.into(), bytes));
    }
    seeds
}
