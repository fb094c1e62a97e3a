//! olmo's reader and writer on their own: armour variants, tampering, round counts and
//! deterministic output.

use std::time::Instant;

use olmo::crypto::base64;
use olmo::crypto::hazmat::sha256;
use olmo::megolm::{
    ExportedRoomKey, KEY_EXPORT_DEFAULT_ROUNDS, KEY_EXPORT_FOOTER, KEY_EXPORT_HEADER,
    KEY_EXPORT_MAX_ROUNDS, KeyExportError, decrypt_key_export, encrypt_key_export,
    encrypt_key_export_with_rng,
};

use crate::support::{ROUNDS, Room, TestRng, assert_same_keys, open};

const PASSPHRASE: &str = "passphrase";

fn sample_keys() -> Vec<ExportedRoomKey> {
    let room = Room::new("!room:example.org", 7, 2);
    let mut first = room.exported(0, "sender-curve", "sender-ed");
    first.forwarding_curve25519_key_chain = vec!["a".to_owned(), "b".to_owned()];
    first.shared_history = true;
    vec![first, room.exported(1, "sender-curve", "sender-ed")]
}

/// The armoured body joined into one base64 string, and its decoded bytes.
fn body(text: &str) -> (String, Vec<u8>) {
    let inner: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let bytes = base64::decode(&inner).unwrap();
    (inner, bytes)
}

/// The round count field of a file, if its body decodes that far.
fn rounds_of(text: &str) -> Option<u32> {
    let start = text.find(KEY_EXPORT_HEADER)? + KEY_EXPORT_HEADER.len();
    let end = start + text[start..].find(KEY_EXPORT_FOOTER)?;
    let inner: String = text[start..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::decode(&inner).ok()?;
    Some(u32::from_be_bytes(bytes.get(33..37)?.try_into().ok()?))
}

fn armour(body: &str) -> String {
    format!("{KEY_EXPORT_HEADER}\n{body}\n{KEY_EXPORT_FOOTER}\n")
}

/// Standard padded base64, as other writers produce it.
fn padded(bytes: &[u8]) -> String {
    let mut text = base64::encode(bytes);
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    text
}

fn wrap(text: &str, width: usize, newline: &str) -> String {
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(width)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    lines.join(newline)
}

#[test]
fn round_trip_keeps_every_field_and_decrypts() {
    let keys = sample_keys();
    let text = encrypt_key_export(&keys, PASSPHRASE, ROUNDS);
    let read = decrypt_key_export(&text, PASSPHRASE).unwrap();
    assert_same_keys(&read, &keys);
    let room = Room::new("!room:example.org", 7, 2);
    for (index, (message, plaintext)) in room.messages.iter().enumerate() {
        let opened = open(&read[0].session_key, message).unwrap();
        assert_eq!(
            (opened.0.as_str(), opened.1),
            (plaintext.as_str(), index as u32)
        );
    }
    assert!(open(&read[1].session_key, &room.messages[0].0).is_none());
    assert!(
        decrypt_key_export(&encrypt_key_export(&[], "", 1), "")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn deterministic_rng_gives_stable_files() {
    let keys = sample_keys();
    let text = encrypt_key_export_with_rng(&keys, PASSPHRASE, ROUNDS, &mut TestRng::new(42));
    assert_eq!(
        text,
        encrypt_key_export_with_rng(&keys, PASSPHRASE, ROUNDS, &mut TestRng::new(42))
    );
    assert_ne!(
        text,
        encrypt_key_export_with_rng(&keys, PASSPHRASE, ROUNDS, &mut TestRng::new(43))
    );
    // Pinned: a change to the JSON, the layout or the cipher shows up here.
    assert_eq!(
        base64::encode(sha256(&[text.as_bytes()])),
        "MzLRTnDze1uVzwO44SDpTxSddWdFln2s/dmRZX2LIZc"
    );
    let (_, bytes) = body(&text);
    assert_eq!(bytes[0], 1);
    assert_eq!(bytes[25] & 0x80, 0, "bit 63 of the IV is clear");
    assert_eq!(
        u32::from_be_bytes(bytes[33..37].try_into().unwrap()),
        ROUNDS
    );
}

#[test]
fn reads_any_armour_layout() {
    let keys = sample_keys();
    let text = encrypt_key_export(&keys, PASSPHRASE, ROUNDS);
    let (joined, bytes) = body(&text);
    let unpadded = base64::encode(&bytes);
    let variants = [
        text.replace('\n', "\r\n"),
        armour(&wrap(&joined, 64, "\n")),
        armour(&wrap(&joined, 64, "\r\n")).replace('\n', "\r\n"),
        armour(&joined),
        armour(&unpadded),
        armour(&wrap(&padded(&bytes), 76, "\n")),
        format!("{KEY_EXPORT_HEADER}{joined}{KEY_EXPORT_FOOTER}"),
        format!(
            "  {KEY_EXPORT_HEADER}  \n\t{}\n  {KEY_EXPORT_FOOTER}  ",
            wrap(&joined, 50, " \n\t")
        ),
        format!("Exported by a client, keep safe.\n\n{text}\n-- \nsignature\n"),
        text.trim_end().to_owned(),
    ];
    for (index, variant) in variants.iter().enumerate() {
        let read = decrypt_key_export(variant, PASSPHRASE)
            .unwrap_or_else(|error| panic!("variant {index}: {error:?}"));
        assert_same_keys(&read, &keys);
    }
}

#[test]
fn malformed_files_have_typed_errors() {
    let text = encrypt_key_export(&sample_keys(), PASSPHRASE, ROUNDS);
    let (joined, bytes) = body(&text);
    let with_bytes = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = bytes.clone();
        edit(&mut bytes);
        decrypt_key_export(&armour(&padded(&bytes)), PASSPHRASE).unwrap_err()
    };
    use KeyExportError::*;
    let cases = [
        (decrypt_key_export("", PASSPHRASE).unwrap_err(), NoArmour),
        (
            decrypt_key_export(&joined, PASSPHRASE).unwrap_err(),
            NoArmour,
        ),
        (
            decrypt_key_export(&text.replace(KEY_EXPORT_FOOTER, ""), PASSPHRASE).unwrap_err(),
            NoArmour,
        ),
        (
            decrypt_key_export(
                &format!("{KEY_EXPORT_FOOTER}\n{KEY_EXPORT_HEADER}"),
                PASSPHRASE,
            )
            .unwrap_err(),
            NoArmour,
        ),
        (
            decrypt_key_export(&armour(""), PASSPHRASE).unwrap_err(),
            TooShort,
        ),
        (
            decrypt_key_export(&armour("AQ!D"), PASSPHRASE).unwrap_err(),
            Base64,
        ),
        (
            decrypt_key_export(&armour(&format!("{joined}=")), PASSPHRASE).unwrap_err(),
            Base64,
        ),
        (with_bytes(&|b| b.truncate(68)), TooShort),
        (with_bytes(&|b| b[0] = 2), UnsupportedVersion(2)),
        (with_bytes(&|b| b[0] = 0), UnsupportedVersion(0)),
        (
            with_bytes(&|b| b[33..37].copy_from_slice(&[0; 4])),
            Rounds(0),
        ),
        (
            with_bytes(&|b| b[33..37].copy_from_slice(&[0xff; 4])),
            Rounds(u32::MAX),
        ),
        (
            with_bytes(&|b| b[33..37].copy_from_slice(&(KEY_EXPORT_MAX_ROUNDS + 1).to_be_bytes())),
            Rounds(KEY_EXPORT_MAX_ROUNDS + 1),
        ),
        (
            with_bytes(&|b| b[33..37].copy_from_slice(&(ROUNDS + 1).to_be_bytes())),
            Mac,
        ),
        (with_bytes(&|b| b.truncate(b.len() - 1)), Mac),
        (decrypt_key_export(&text, "passphrasf").unwrap_err(), Mac),
        (decrypt_key_export(&text, "").unwrap_err(), Mac),
    ];
    for (index, (found, expected)) in cases.into_iter().enumerate() {
        assert_eq!(found, expected, "case {index}");
    }
}

/// Every single-bit change to the file's bytes is refused; every single-bit change to its
/// text is refused or leaves the same keys (a flip outside the armour, or one the base64
/// reader reads the same way). Nothing panics.
#[test]
fn bit_flips_are_refused() {
    let keys = vec![sample_keys().remove(1)];
    let text = encrypt_key_export_with_rng(&keys, PASSPHRASE, 1, &mut TestRng::new(9));
    let (_, bytes) = body(&text);
    for position in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[position] ^= 1 << bit;
            let rounds = u32::from_be_bytes(flipped[33..37].try_into().unwrap());
            if (33..37).contains(&position) && (1 << 14..=KEY_EXPORT_MAX_ROUNDS).contains(&rounds) {
                continue; // Refused by the MAC too, but only after millions of PBKDF2 rounds.
            }
            let result = decrypt_key_export(&armour(&padded(&flipped)), PASSPHRASE);
            assert!(result.is_err(), "byte {position} bit {bit} accepted");
        }
    }
    for position in 0..text.len() {
        for bit in 0..7 {
            let mut flipped = text.clone().into_bytes();
            flipped[position] ^= 1 << bit;
            let flipped = String::from_utf8(flipped).unwrap();
            if rounds_of(&flipped).is_some_and(|rounds| rounds >= 1 << 14) {
                continue; // As above: refused by the round limit or, slowly, by the MAC.
            }
            if let Ok(read) = decrypt_key_export(&flipped, PASSPHRASE) {
                assert_same_keys(&read, &keys);
            }
        }
    }
}

/// One file at the default count; prints how long PBKDF2 took. Unoptimised SHA-512 needs
/// 15-30 s for it, so debug builds skip it: `cargo test --release --test megolm_key_export`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "500,000 PBKDF2 rounds take 15-30 s unoptimised; run with --release"
)]
fn default_rounds_round_trip() {
    let keys = sample_keys();
    let start = Instant::now();
    let text = encrypt_key_export(&keys, PASSPHRASE, KEY_EXPORT_DEFAULT_ROUNDS);
    let written = start.elapsed();
    let (_, bytes) = body(&text);
    assert_eq!(&bytes[33..37], &KEY_EXPORT_DEFAULT_ROUNDS.to_be_bytes());
    let start = Instant::now();
    assert_same_keys(&decrypt_key_export(&text, PASSPHRASE).unwrap(), &keys);
    eprintln!(
        "PBKDF2-HMAC-SHA-512 at {KEY_EXPORT_DEFAULT_ROUNDS} rounds: write {written:?}, read {:?}",
        start.elapsed()
    );
}
