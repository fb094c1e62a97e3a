//! The checks behind every fuzz target, plus the deterministic fixtures and seed inputs they use.
//!
//! This file is the library of the `olmo-fuzz` crate and is also included by path from
//! `tests/fuzz_corpus.rs`, so every seed and every saved crash replays as an ordinary test on
//! stable Rust without libFuzzer. Keep it to olmo's public API and `rand_core`.

use std::convert::Infallible;
use std::sync::OnceLock;

use olmo::crypto::{CipherKeys, base64};
use olmo::olm::{Account, Message, OlmMessage, PreKeyMessage, Session};
use olmo::persist::StorageKey;
use rand_core::{TryCryptoRng, TryRng};

#[path = "megolm_checks.rs"]
mod megolm_checks;

pub use megolm_checks::*;

#[path = "key_export_checks.rs"]
mod key_export_checks;

pub use key_export_checks::*;

#[path = "omemo_checks.rs"]
mod omemo_checks;

pub use omemo_checks::*;

#[path = "matrix_checks.rs"]
mod matrix_checks;

pub use matrix_checks::*;

#[path = "xmpp_checks.rs"]
mod xmpp_checks;

pub use xmpp_checks::*;

/// The fuzz targets; also the directory names under `fuzz/seeds/` and `fuzz/regressions/`.
pub const TARGETS: &[&str] = &[
    "olm_message_decode",
    "olm_prekey_decode",
    "olm_session_decrypt",
    "restore_account",
    "restore_session",
    "megolm_message_decode",
    "megolm_session_key_decode",
    "megolm_decrypt",
    "restore_group_session",
    "key_export_file",
    "omemo_message_decode",
    "omemo_stanza_parse",
    "omemo_bundle",
    "omemo_decrypt",
    "matrix_machine",
    "xmpp_machine",
];

/// Runs the check of fuzz target `target` on `data`; `false` if there is no such target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "olm_message_decode" => check_message_decode(data),
        "olm_prekey_decode" => check_prekey_decode(data),
        "olm_session_decrypt" => check_session_decrypt(data),
        "restore_account" => check_restore_account(data),
        "restore_session" => check_restore_session(data),
        "key_export_file" => check_key_export_file(data),
        "matrix_machine" => check_matrix_machine(data),
        "xmpp_machine" => check_xmpp_machine(data),
        _ => return run_megolm(target, data) || run_omemo(target, data),
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Wire format

/// `olm_message_decode`: a normal message that decodes re-encodes to exactly its input.
pub fn check_message_decode(data: &[u8]) {
    check_decode(1, data);
}

/// `olm_prekey_decode`: a pre-key message that decodes re-encodes to exactly its input.
pub fn check_prekey_decode(data: &[u8]) {
    check_decode(0, data);
}

fn check_decode(message_type: u8, data: &[u8]) {
    let Ok(message) = OlmMessage::from_parts(message_type, data) else {
        return;
    };
    assert_eq!(message.message_type().as_u8(), message_type);
    assert_eq!(
        message.as_bytes(),
        data,
        "as_bytes() differs from the decoded input"
    );
    // `as_bytes()` hands back the received bytes, so also rebuild the encoding from the parsed
    // fields: a strict decoder accepts only the one canonical encoding of those fields.
    let rebuilt = match &message {
        OlmMessage::Normal(normal) => encode_message(normal),
        OlmMessage::PreKey(pre_key) => encode_pre_key_message(pre_key),
    };
    assert_eq!(rebuilt, data, "a non-canonical encoding was accepted");
    let (type_number, body) = message.to_parts();
    let reparsed = OlmMessage::from_base64_parts(type_number, &body)
        .expect("a decoded message survives its base64 form");
    assert_eq!(reparsed, message);
}

/// The canonical encoding of a normal message, built from its fields: version 3, then fields 1
/// (ratchet key), 2 (chain index) and 4 (ciphertext) in order with shortest varints, then the
/// MAC.
pub fn encode_message(message: &Message) -> Vec<u8> {
    let mut out = vec![3];
    push_bytes_field(&mut out, 1, message.ratchet_key().as_bytes());
    push_varint(&mut out, 2 << 3);
    push_varint(&mut out, u64::from(message.chain_index()));
    push_bytes_field(&mut out, 4, message.ciphertext());
    out.extend_from_slice(message.mac());
    out
}

/// The canonical encoding of a pre-key message: version 3, then fields 1 (one-time key),
/// 2 (base key), 3 (identity key) and 4 (the normal message) in order.
pub fn encode_pre_key_message(message: &PreKeyMessage) -> Vec<u8> {
    let mut out = vec![3];
    push_bytes_field(&mut out, 1, message.one_time_key().as_bytes());
    push_bytes_field(&mut out, 2, message.base_key().as_bytes());
    push_bytes_field(&mut out, 3, message.identity_key().as_bytes());
    push_bytes_field(&mut out, 4, &encode_message(message.message()));
    out
}

fn push_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    push_varint(out, (field << 3) | 2);
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

// ---------------------------------------------------------------------------------------------
// Session decryption

/// The plaintext of [`SessionFixture::held_back`].
pub const HELD_BACK_PLAINTEXT: &[u8] = b"held back";

/// `olm_session_decrypt`: the first byte's low bit picks the type (0 pre-key, 1 normal), the
/// rest is the body. Decrypting with a copy of Bob's fixed session may fail but must not panic;
/// after a failure the session still decrypts the held-back message, and a message that did
/// decrypt does not decrypt a second time.
pub fn check_session_decrypt(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let Ok(message) = OlmMessage::from_parts(selector & 1, body) else {
        return;
    };
    let fixture = session_fixture();
    let mut session = fixture.bob_session.clone();
    if session.decrypt(&message).is_ok() {
        assert!(
            session.decrypt(&message).is_err(),
            "a message decrypted twice"
        );
    } else {
        let plaintext = session
            .decrypt(&fixture.held_back)
            .expect("a failed decryption left the session unable to decrypt a valid message");
        assert_eq!(&plaintext[..], HELD_BACK_PLAINTEXT);
    }
}

/// A small deterministic generator for fixtures. It is **not** cryptographically secure; it
/// claims [`TryCryptoRng`] only so olmo's `*_with_rng` functions accept it in fuzzing code.
#[derive(Debug, Clone)]
pub struct DeterministicRng(u64);

impl DeterministicRng {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// SplitMix64.
    fn step(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl TryRng for DeterministicRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.step() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.step())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.step().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for DeterministicRng {}

/// A fixed Alice/Bob exchange, built once per process from [`DeterministicRng`].
///
/// Alice sends pre-key messages `p1`, `p2`; Bob starts his session from `p1` and replies `r1`;
/// Alice sends `n2`, `n3` (held back), `n4`; Bob decrypts `n2` and replies `r2`; Alice decrypts
/// it and sends `n5` on a new chain.
pub struct SessionFixture {
    /// Alice's account.
    pub alice: Account,
    /// Bob's account (its one-time key used up, a fallback key published).
    pub bob: Account,
    /// Alice's session after the exchange.
    pub alice_session: Session,
    /// Bob's session after the exchange; every input decrypts against a clone of it.
    pub bob_session: Session,
    /// `n3`: a message Bob has not decrypted, with plaintext [`HELD_BACK_PLAINTEXT`].
    pub held_back: OlmMessage,
    /// Messages of this session Bob has not decrypted yet, with their plaintexts: `p2`, `n4`,
    /// `n5`.
    pub fresh: Vec<(OlmMessage, &'static [u8])>,
    /// Messages Bob already decrypted (`p1`, `n2`), and Bob's own `r1`, `r2`.
    pub stale: Vec<OlmMessage>,
}

/// The fixture, built on first use.
pub fn session_fixture() -> &'static SessionFixture {
    static FIXTURE: OnceLock<SessionFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_session_fixture)
}

fn build_session_fixture() -> SessionFixture {
    let mut rng = DeterministicRng::new(0x6f6c_6d6f_6675_7a7a);
    let alice = Account::with_rng(&mut rng);
    let mut bob = Account::with_rng(&mut rng);
    bob.generate_one_time_keys_with_rng(2, &mut rng);
    bob.generate_fallback_key_with_rng(&mut rng);
    let (_, one_time_key) = bob.unpublished_one_time_keys()[0];
    bob.mark_keys_as_published();

    let mut alice_session = alice
        .create_outbound_session_with_rng(bob.curve25519_key(), one_time_key, &mut rng)
        .expect("fixture: outbound session");
    let mut send = |session: &mut Session, plaintext: &[u8]| {
        session
            .encrypt_with_rng(plaintext, &mut rng)
            .expect("fixture: encrypt")
    };
    let p1 = send(&mut alice_session, b"pre-key one");
    let p2 = send(&mut alice_session, b"pre-key two");
    let OlmMessage::PreKey(p1_pre_key) = &p1 else {
        unreachable!("fixture: Alice's first message is a pre-key message")
    };
    let created = bob
        .create_inbound_session(alice.curve25519_key(), p1_pre_key)
        .expect("fixture: inbound session");
    assert_eq!(&created.plaintext[..], b"pre-key one");
    let mut bob_session = created.session;

    let r1 = send(&mut bob_session, b"reply one");
    let decrypt = |session: &mut Session, message: &OlmMessage, expected: &[u8]| {
        let plaintext = session.decrypt(message).expect("fixture: decrypt");
        assert_eq!(&plaintext[..], expected);
    };
    decrypt(&mut alice_session, &r1, b"reply one");
    let n2 = send(&mut alice_session, b"normal two");
    let n3 = send(&mut alice_session, HELD_BACK_PLAINTEXT);
    let n4 = send(&mut alice_session, b"normal four");
    decrypt(&mut bob_session, &n2, b"normal two");
    let r2 = send(&mut bob_session, b"reply two");
    decrypt(&mut alice_session, &r2, b"reply two");
    let n5 = send(&mut alice_session, b"normal five, new chain");

    SessionFixture {
        alice,
        bob,
        alice_session,
        bob_session,
        held_back: n3,
        fresh: vec![
            (p2, b"pre-key two"),
            (n4, b"normal four"),
            (n5, b"normal five, new chain"),
        ],
        stale: vec![p1, n2, r1, r2],
    }
}

// ---------------------------------------------------------------------------------------------
// Restoring stored state

/// The storage key the restore targets use.
pub const STORAGE_KEY: [u8; 32] = [7; 32];

/// The libolm pickle key the restore targets use.
pub const PICKLE_KEY: &[u8] = b"key";

/// `restore_account`: `data` as our storage blob and, if UTF-8, as a libolm pickle. Neither may
/// panic; whatever restores must survive another save and restore.
pub fn check_restore_account(data: &[u8]) {
    // As stored bytes, and as the decrypted contents behind a valid envelope or pickle MAC:
    // sealing the input here is what lets the fuzzer reach the parsers past authentication,
    // with no switch in olmo that skips a check.
    check_stored_account(data);
    check_stored_account(&seal_payload(ACCOUNT_KIND, data));
    check_libolm_account(&libolm_pickle(data));
    if let Ok(pickle) = std::str::from_utf8(data) {
        check_libolm_account(pickle);
    }
}

fn check_stored_account(data: &[u8]) {
    let key = StorageKey::from_bytes(STORAGE_KEY);
    if let Ok(account) = Account::restore(data, &key) {
        let blob = account.save_with_rng(&key, &mut DeterministicRng::new(1));
        let again = Account::restore(&blob, &key).expect("a saved account restores");
        assert_eq!(again.identity_keys(), account.identity_keys());
        assert!(again.unpublished_one_time_keys() == account.unpublished_one_time_keys());
        assert!(again.unpublished_fallback_key() == account.unpublished_fallback_key());
    }
}

fn check_libolm_account(pickle: &str) {
    if let Ok(account) = Account::from_libolm_pickle(pickle, PICKLE_KEY) {
        let exported = account.to_libolm_pickle(PICKLE_KEY);
        let again = Account::from_libolm_pickle(&exported, PICKLE_KEY)
            .expect("an exported libolm account pickle imports");
        assert_eq!(again.identity_keys(), account.identity_keys());
        assert!(again.unpublished_one_time_keys() == account.unpublished_one_time_keys());
    }
}

/// `restore_session`: as [`check_restore_account`] for sessions; a restored session must also
/// survive an encryption attempt.
pub fn check_restore_session(data: &[u8]) {
    check_stored_session(data);
    check_stored_session(&seal_payload(SESSION_KIND, data));
    check_libolm_session(&libolm_pickle(data));
    if let Ok(pickle) = std::str::from_utf8(data) {
        check_libolm_session(pickle);
    }
}

fn check_stored_session(data: &[u8]) {
    let key = StorageKey::from_bytes(STORAGE_KEY);
    if let Ok(session) = Session::restore(data, &key) {
        let blob = session.save_with_rng(&key, &mut DeterministicRng::new(1));
        let again = Session::restore(&blob, &key).expect("a saved session restores");
        assert_same_session(&again, &session);
        let _ = session
            .clone()
            .encrypt_with_rng(b"x", &mut DeterministicRng::new(2));
    }
}

fn check_libolm_session(pickle: &str) {
    if let Ok(session) = Session::from_libolm_pickle(pickle, PICKLE_KEY) {
        let exported = session.to_libolm_pickle(PICKLE_KEY);
        let again = Session::from_libolm_pickle(&exported, PICKLE_KEY)
            .expect("an exported libolm session pickle imports");
        assert_same_session(&again, &session);
        let _ = session
            .clone()
            .encrypt_with_rng(b"x", &mut DeterministicRng::new(2));
    }
}

const ACCOUNT_KIND: u8 = 1;
const SESSION_KIND: u8 = 2;

/// Wraps `payload` in olmo's storage envelope (documented in `olmo::persist`) under
/// [`STORAGE_KEY`]: `"olmo" ‖ 1 ‖ kind ‖ nonce ‖ XChaCha20-Poly1305(payload)`.
pub fn seal_payload(kind: u8, payload: &[u8]) -> Vec<u8> {
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let header = [b'o', b'l', b'm', b'o', 1, kind];
    let nonce = [9u8; 24];
    let ciphertext = XChaCha20Poly1305::new(&STORAGE_KEY.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: payload,
                aad: &header,
            },
        )
        .expect("in-memory encryption");
    [&header[..], &nonce, &ciphertext].concat()
}

/// Wraps `raw` as libolm does a pickle under [`PICKLE_KEY`].
pub fn libolm_pickle(raw: &[u8]) -> String {
    let keys = CipherKeys::derive_with_salt(&[], PICKLE_KEY, b"Pickle");
    let mut bytes = keys.encrypt(raw);
    let mac = keys.mac(&[&bytes]);
    bytes.extend_from_slice(&mac[..8]);
    base64::encode(bytes)
}

fn assert_same_session(left: &Session, right: &Session) {
    assert_eq!(left.session_keys(), right.session_keys());
    assert_eq!(left.has_received_message(), right.has_received_message());
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// The seed inputs committed under `fuzz/seeds/`: `(target, file name, contents)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let fixture = session_fixture();
    let mut seeds = Vec::new();
    let mut all: Vec<&OlmMessage> = fixture.stale.iter().collect();
    all.push(&fixture.held_back);
    all.extend(fixture.fresh.iter().map(|(message, _)| message));
    let (mut normal, mut pre_key) = (0, 0);
    for message in &all {
        let (target, count) = match message {
            OlmMessage::Normal(_) => ("olm_message_decode", &mut normal),
            OlmMessage::PreKey(_) => ("olm_prekey_decode", &mut pre_key),
        };
        *count += 1;
        seeds.push((
            target,
            format!("fixture-{count}"),
            message.as_bytes().to_vec(),
        ));
    }
    for (index, message) in fixture
        .fresh
        .iter()
        .map(|(message, _)| message)
        .chain(&fixture.stale)
        .enumerate()
    {
        let mut input = vec![message.message_type().as_u8()];
        input.extend_from_slice(message.as_bytes());
        seeds.push((
            "olm_session_decrypt",
            format!("fixture-{}", index + 1),
            input,
        ));
    }

    let key = StorageKey::from_bytes(STORAGE_KEY);
    let mut rng = DeterministicRng::new(3);
    let mut fresh_account = Account::with_rng(&mut rng);
    fresh_account.generate_one_time_keys_with_rng(3, &mut rng);
    fresh_account.generate_fallback_key_with_rng(&mut rng);
    for (name, account) in [
        ("alice", &fixture.alice),
        ("bob", &fixture.bob),
        ("fresh", &fresh_account),
    ] {
        seeds.push((
            "restore_account",
            format!("{name}.olmo"),
            account.save_with_rng(&key, &mut rng),
        ));
        seeds.push((
            "restore_account",
            format!("{name}.libolm"),
            account.to_libolm_pickle(PICKLE_KEY).into_bytes(),
        ));
    }
    for (name, session) in [
        ("alice", &fixture.alice_session),
        ("bob", &fixture.bob_session),
    ] {
        seeds.push((
            "restore_session",
            format!("{name}.olmo"),
            session.save_with_rng(&key, &mut rng),
        ));
        seeds.push((
            "restore_session",
            format!("{name}.libolm"),
            session.to_libolm_pickle(PICKLE_KEY).into_bytes(),
        ));
    }
    seeds.extend(megolm_seeds());
    seeds.extend(key_export_seeds());
    seeds.extend(omemo_seeds());
    seeds.extend(matrix_seeds());
    seeds.extend(xmpp_seeds());
    seeds
}
