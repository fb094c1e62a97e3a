//! The key export file check (`key_export_file`). Part of `checks.rs`, shared with
//! `tests/fuzz_corpus.rs`.
//!
//! The first input byte picks what the rest is (mod 4):
//!
//! - 0: the text of a file, read with [`KEY_EXPORT_PASSPHRASE`] (armour, base64, envelope,
//!   round limit, MAC).
//! - 1, 2, 3: the plaintext JSON, sealed here under [`KEY_EXPORT_PASSPHRASE`] so the input
//!   reaches the JSON and session-key decoding past the MAC: with bit 63 of the IV clear (1),
//!   or with an IV whose low half wraps, encrypted with the 128-bit counter (2) or the 64-bit
//!   one (3), which the reader retries.
//!
//! Reading may fail but must not panic; whatever is read writes out and reads back the same.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use olmo::crypto::hazmat::hmac_sha256;
use olmo::crypto::{Ed25519KeyPair, base64};
use olmo::megolm::{
    ExportedRoomKey, ExportedSessionKey, KEY_EXPORT_FOOTER, KEY_EXPORT_HEADER, MegolmRatchet,
    decrypt_key_export, encrypt_key_export_with_rng,
};

use super::DeterministicRng;

/// The passphrase of every sealed input and seed file.
pub const KEY_EXPORT_PASSPHRASE: &str = "fuzz";

/// Text inputs asking for more PBKDF2 rounds are skipped: they are only slower.
const FUZZ_MAX_ROUNDS: u32 = 64;

/// `key_export_file`: see the module documentation.
pub fn check_key_export_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = match mode % 4 {
        0 => {
            let text = String::from_utf8_lossy(rest).into_owned();
            if rounds_field(&text).is_some_and(|rounds| rounds > FUZZ_MAX_ROUNDS) {
                return;
            }
            text
        }
        1 => seal_key_export(rest, [0x11; 16], false),
        2 => seal_key_export(rest, wrapping_iv(), false),
        _ => seal_key_export(rest, wrapping_iv(), true),
    };
    let Ok(keys) = decrypt_key_export(&text, KEY_EXPORT_PASSPHRASE) else {
        return;
    };
    let written = encrypt_key_export_with_rng(
        &keys,
        KEY_EXPORT_PASSPHRASE,
        1,
        &mut DeterministicRng::new(4),
    );
    let again =
        decrypt_key_export(&written, KEY_EXPORT_PASSPHRASE).expect("a written file reads back");
    assert_eq!(again.len(), keys.len());
    for (read, reread) in keys.iter().zip(&again) {
        assert_eq!(read.algorithm, reread.algorithm);
        assert_eq!(read.room_id, reread.room_id);
        assert_eq!(read.sender_key, reread.sender_key);
        assert_eq!(read.session_id, reread.session_id);
        assert_eq!(*read.session_key.to_bytes(), *reread.session_key.to_bytes());
        assert_eq!(read.sender_claimed_keys, reread.sender_claimed_keys);
        assert_eq!(
            read.forwarding_curve25519_key_chain,
            reread.forwarding_curve25519_key_chain
        );
        assert_eq!(read.shared_history, reread.shared_history);
    }
}

/// An IV with bit 63 set whose low 64 bits wrap after the first block.
fn wrapping_iv() -> [u8; 16] {
    let mut iv = [0xff; 16];
    iv[0] = 0x22;
    iv
}

/// The round count of the file in `text`, if its body decodes that far.
fn rounds_field(text: &str) -> Option<u32> {
    let start = text.find(KEY_EXPORT_HEADER)? + KEY_EXPORT_HEADER.len();
    let end = start + text[start..].find(KEY_EXPORT_FOOTER)?;
    let body: String = text[start..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::decode(&body).ok()?;
    Some(u32::from_be_bytes(bytes.get(33..37)?.try_into().ok()?))
}

/// A key export file of `plaintext` under [`KEY_EXPORT_PASSPHRASE`] with one PBKDF2 round,
/// written independently of olmo's writer (which always clears bit 63 and counts in 128 bits).
pub fn seal_key_export(plaintext: &[u8], iv: [u8; 16], low_64_bit_counter: bool) -> String {
    let salt = [0x5a; 16];
    let rounds = 1u32;
    let mut keys = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(KEY_EXPORT_PASSPHRASE.as_bytes(), &salt, rounds, &mut keys);
    let mut key = [0u8; 32];
    key.copy_from_slice(&keys[..32]);
    let mut body = plaintext.to_vec();
    if low_64_bit_counter {
        ctr::Ctr64BE::<Aes256>::new(&key.into(), &iv.into()).apply_keystream(&mut body);
    } else {
        ctr::Ctr128BE::<Aes256>::new(&key.into(), &iv.into()).apply_keystream(&mut body);
    }
    let mut bytes = vec![1];
    bytes.extend_from_slice(&salt);
    bytes.extend_from_slice(&iv);
    bytes.extend_from_slice(&rounds.to_be_bytes());
    bytes.extend_from_slice(&body);
    let mac = hmac_sha256(&keys[32..], &[&bytes]);
    bytes.extend_from_slice(&mac);
    format!(
        "{KEY_EXPORT_HEADER}\n{}\n{KEY_EXPORT_FOOTER}\n",
        base64::encode(&bytes)
    )
}

fn sample_keys() -> Vec<ExportedRoomKey> {
    let mut rng = DeterministicRng::new(11);
    (0..2u32)
        .map(|index| {
            let mut ratchet = MegolmRatchet::generate(&mut rng);
            ratchet
                .advance_to(index * 300)
                .expect("a fresh ratchet advances");
            let signing = Ed25519KeyPair::generate(&mut rng).public_key();
            let mut key = ExportedRoomKey::new(
                format!("!room{index}:example.org"),
                "NvmgRzZzrBkwrpWKvK9SnwoW4eTZ65Z0w94BNLrNW3c",
                ExportedSessionKey::new(&ratchet, signing),
            );
            key.sender_claimed_keys
                .insert("ed25519".to_owned(), signing.to_base64());
            key.forwarding_curve25519_key_chain = vec![format!("forwarder{index}")];
            key.shared_history = index == 1;
            key
        })
        .collect()
}

/// The JSON of `keys` as a client writes it, built by hand (the fuzz crate has no serde_json).
fn keys_json(keys: &[ExportedRoomKey]) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|key| {
            format!(
                r#"{{"algorithm":"{}","room_id":"{}","sender_key":"{}","session_id":"{}","session_key":"{}","sender_claimed_keys":{{"ed25519":"{}"}},"forwarding_curve25519_key_chain":["{}"],"m.shared_history":{}}}"#,
                key.algorithm,
                key.room_id,
                key.sender_key,
                key.session_id,
                &*key.session_key.to_base64(),
                key.sender_claimed_keys["ed25519"],
                key.forwarding_curve25519_key_chain[0],
                key.shared_history,
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

/// The `wrap-64` vector of `test-vectors/key-export/vectors.json` (our own, made by
/// pyca/cryptography with the 64-bit counter and an all-ones IV: see its README), as a seed.
/// Its passphrase is not [`KEY_EXPORT_PASSPHRASE`], so the check stops at the MAC.
/// `tests/fuzz_corpus.rs` checks this copy against the JSON.
pub const WRAPPED_COUNTER_VECTOR: &str = "-----BEGIN MEGOLM SESSION DATA-----\n\
    AYjBsymcDtWEIotmzLXHU8//////////////////////AAAACv4N3pzw1SXdcKR5gf5b0Jug/1swgwkZoWcThQo1Xkr2PC4joB98f0FmC+aZbd8Zv353mxfY81d5Wmyt\n\
    irrPqlDuFJJ6dAULD/EUfzTZ6LTMUQJV9vYsFwFSpZWWmWcTYAiTFVJn+SAuPtU/BOoym+dyzTfXntgx1/FekmZf0LHVqF9EsE+Cm1bZYrQUW5A6o6FOaueOPmCjMGpX\n\
    nUR0woRl4CxhY4a8PgJseaXHbIZ6E4DGkJHgX3h6Y3ZWXx+E3kzhSXs3Ec7mU3vV1I7tE0P3GfO0zF7ma5Bp8EEEdzdjOELUzkAMnlhxAs4gjrCDn7+znNIQgwKGCz7N\n\
    AHK63m0nIzMcluXon2cp5jfR6OKJEMVIC4oDHFqKWNhMqsqS+gFyz1wGW+2PnbijKfcUs/qJVXUeOjZXzNnE8xDo3tBuGzQQMhdEIBH7gn1xntEGN741nhfPU541K5MF\n\
    hY6Cvm+/RokjWkWwfIDbswqfQ5JonetxNjCv1uMlyur7DddYKuRU0DDqVqGJ2iI+X7Zq7DKLmPFYg1SF1y6CtMWlo6gLVRY1sg1O8bkhba4XdsjgeLbeGB0XByqNhI9X\n\
    LOFf1B5hK0GfBpWzgJTn72EhtUJsL17KCJ00ccFTPrERIxrCis+Dxgv5aBYZvJrxjZxdpEpDswuvn36A2pmrVJQBUkmuPVfi9huWi2np0Uhtzh6hWSIdE0Thvo8D4o15\n\
    PzqvPnj936E35Agj+3hWj2SZmywlmtYpyR4v2oRySd8oEDe4cfyCgqWKJChdvGWDiG+Jd9RWBR8hAbNWsVWL5vtigPqMENWsYrKUi2LpYcj9IXTvhSEHlItNNdTuOMRI\n\
    u+EvmMJW5F35pRJRzU0NvNa4DWSK4GhV7dnv3hcZXF8gvP4joTkBERwCsCX3BX41NckpcRMsdyvaIx/3kA03jwk1bYX1JjsUOvESryo9LqAWIuvVr1ByOPizTzqoKYGH\n\
    DitqS6QPG/ImHCpXU9WFrJ/KvZAlI0kUg1x541B5+5MooMDXJt4CfsxY6Vecg78EPdq23TCcoSO99tfEFkUZDJ9kYwp853ee7LX7Q7x4hEAg7O7FbsPcRaaarGhOfQ5l\n\
    9XM5k1ioHDI2J0RnrHIoW/Gxlt7rphClnBuagP+irqWgiV+OpwRHBEoxLfSBgEAqspim77kY107od+k1+GMKJKUHlbgEeC8GySZIB/6kXaUqTHv4bCKxr8NYp2aOGY+b\n\
    AnnUJI77fGYUNtqt7QeuhFPVLC8GatoTeIi85JLxH+K06NmzUHGnCpahhNv0o3hh/BcJzD1QvAdaUlOmx3gVi47lvzMgTmBRHOzg2HDE8DowdEZkT9lrNPJuKF8dpqag\n\
    4p6rya5SRBd9h+jndy9hAan1txgUHhvuiaNIfck3ZjSz3nww/7w/+qiwjFr4DFRm9JkRK+eWEaayLWW5ufK2zQhqP3Mo6QNEJGHshnbbmA5ZJGov30e0TlkbIId8ZxtZ\n\
    Tsogut8n8sbZsb0Lyoh0Fg/xDJPflRMU7HhczSkylloqUugjcjxmxvZMLciAlN4P4Rgu6CJcYsLD2vBaxEVsWPwpgybYTRNn/dh9i87mIyK1d9U/0h3bSmM+qUq4J30t\n\
    4uo=\n\
    -----END MEGOLM SESSION DATA-----\n";

/// The seeds of `key_export_file`.
pub fn key_export_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let keys = sample_keys();
    let json = keys_json(&keys);
    let with_mode = |mode: u8, rest: &[u8]| [&[mode][..], rest].concat();
    let file = encrypt_key_export_with_rng(
        &keys,
        KEY_EXPORT_PASSPHRASE,
        1,
        &mut DeterministicRng::new(12),
    );
    vec![
        (
            "key_export_file",
            "olmo-file".to_owned(),
            with_mode(0, file.as_bytes()),
        ),
        (
            "key_export_file",
            "crlf-file".to_owned(),
            with_mode(0, file.replace('\n', "\r\n").as_bytes()),
        ),
        (
            "key_export_file",
            "wrapped-counter-vector".to_owned(),
            with_mode(0, WRAPPED_COUNTER_VECTOR.as_bytes()),
        ),
        (
            "key_export_file",
            "json".to_owned(),
            with_mode(1, json.as_bytes()),
        ),
        (
            "key_export_file",
            "json-empty".to_owned(),
            with_mode(1, b"[]"),
        ),
        (
            "key_export_file",
            "json-wrap-128".to_owned(),
            with_mode(2, json.as_bytes()),
        ),
        (
            "key_export_file",
            "json-wrap-64".to_owned(),
            with_mode(3, json.as_bytes()),
        ),
    ]
}
