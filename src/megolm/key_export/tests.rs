//! Unit tests across the armour, the layout and the JSON, with the generated vectors in
//! `test-vectors/key-export/`.

use super::layout::{ExportKeys, VERSION};
use super::*;
use crate::crypto::Ed25519KeyPair;
use crate::megolm::MegolmRatchet;

/// Seals raw bytes with an explicit IV and counter, for files a conforming writer never makes.
fn seal_with(plaintext: &[u8], iv: [u8; 16], counter: Counter) -> Vec<u8> {
    let salt = [9; 16];
    let keys = ExportKeys::derive("pass", &salt, 10);
    let mut bytes = vec![VERSION];
    bytes.extend_from_slice(&salt);
    bytes.extend_from_slice(&iv);
    bytes.extend_from_slice(&10u32.to_be_bytes());
    let mut body = plaintext.to_vec();
    keys.apply_keystream(&iv, counter, &mut body);
    bytes.extend_from_slice(&body);
    let mac = keys.mac(&bytes);
    bytes.extend_from_slice(&mac);
    bytes
}

fn open_raw(text: &str, passphrase: &str, counter: Counter) -> Result<Vec<u8>, KeyExportError> {
    let bytes = unarmour(text)?;
    let envelope = Envelope::parse(&bytes)?;
    let keys = envelope.authenticate(passphrase)?;
    Ok(keys.decrypt(&envelope, counter).to_vec())
}

fn sample_key() -> ExportedRoomKey {
    let ratchet = MegolmRatchet::from_bytes(&[3; MegolmRatchet::LENGTH], 7);
    let signing = Ed25519KeyPair::from_seed(&[4; 32]).public_key();
    ExportedRoomKey::new(
        "!room:example.org",
        "sender",
        ExportedSessionKey::new(&ratchet, signing),
    )
}

/// The vectors in `test-vectors/key-export/` (made by pyca/cryptography and by matrix-nio, see
/// its README): `{name, plaintext, passphrase, rounds, counter, file, producer}`.
const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/test-vectors/key-export/vectors.json"
));

#[test]
fn generated_vectors() {
    let vectors: Vec<serde_json::Value> = serde_json::from_str(VECTORS).unwrap();
    let field = |vector: &serde_json::Value, name: &str| -> String {
        vector[name].as_str().unwrap().to_owned()
    };
    let mut disagreeing = Vec::new();
    let mut producers = Vec::new();
    for vector in &vectors {
        let name = field(vector, "name");
        let plaintext = field(vector, "plaintext");
        let passphrase = field(vector, "passphrase");
        let text = field(vector, "file");
        let (counter, other) = match field(vector, "counter").as_str() {
            "128" => (Counter::Full128, Counter::Low64),
            "64" => (Counter::Low64, Counter::Full128),
            counter => panic!("{name}: counter {counter}"),
        };
        let opened = open_raw(&text, &passphrase, counter).unwrap();
        assert_eq!(opened, plaintext.as_bytes(), "{name}");
        assert_eq!(
            open_raw(&text, "wrong", counter).unwrap_err(),
            KeyExportError::Mac,
            "{name}"
        );
        let bytes = unarmour(&text).unwrap();
        assert_eq!(
            u64::from(u32::from_be_bytes(bytes[33..37].try_into().unwrap())),
            vector["rounds"].as_u64().unwrap(),
            "{name}"
        );
        // The counters differ exactly when the IV's low half wraps inside the ciphertext.
        let disagree = Envelope::parse(&bytes).unwrap().counters_disagree();
        let by_other = open_raw(&text, &passphrase, other).unwrap();
        assert_eq!(by_other != opened, disagree, "{name}");
        if disagree {
            disagreeing.push(name.clone());
        }
        // Room key JSON also opens through the public reader, which retries the 64-bit counter.
        if plaintext.starts_with('[') {
            let keys = decrypt_key_export(&text, &passphrase).unwrap();
            let expected = from_json(plaintext.as_bytes()).unwrap();
            assert!(!keys.is_empty(), "{name}");
            assert!(
                keys.iter().all(ExportedRoomKey::session_id_matches),
                "{name}"
            );
            assert_eq!(*to_json(&keys), *to_json(&expected), "{name}");
        }
        producers.push(field(vector, "producer"));
    }
    assert_eq!(disagreeing, ["carry-128", "wrap-64"]);
    assert!(producers.iter().any(|p| p.starts_with("matrix-nio")));
    assert!(producers.iter().any(|p| p.contains("python cryptography")));
}

#[test]
fn both_counters_read_when_the_low_half_wraps() {
    let json = to_json(&[sample_key(), sample_key()]);
    assert!(json.len() > 32);
    let mut iv = [0xff; 16];
    iv[0] = 0x12;
    for counter in [Counter::Full128, Counter::Low64] {
        let text = armour(&seal_with(&json, iv, counter));
        let keys = decrypt_key_export(&text, "pass").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            *keys[0].session_key.to_bytes(),
            *sample_key().session_key.to_bytes()
        );
    }
    let envelope_bytes = seal_with(&json, iv, Counter::Full128);
    assert!(
        Envelope::parse(&envelope_bytes)
            .unwrap()
            .counters_disagree()
    );
    iv[8] = 0x7f;
    let envelope_bytes = seal_with(&json, iv, Counter::Full128);
    assert!(
        !Envelope::parse(&envelope_bytes)
            .unwrap()
            .counters_disagree()
    );
}

#[test]
fn writes_element_layout() {
    let keys: Vec<_> = (0..3).map(|_| sample_key()).collect();
    let text = encrypt_key_export(&keys, "pass", 1);
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines[0], KEY_EXPORT_HEADER);
    assert_eq!(lines[lines.len() - 2], KEY_EXPORT_FOOTER);
    assert_eq!(lines[lines.len() - 1], "");
    let body = &lines[1..lines.len() - 2];
    assert!(body.len() > 2);
    assert!(body[..body.len() - 1].iter().all(|line| line.len() == 128));
    assert_eq!(body[body.len() - 1].len() % 4, 0);
    let bytes = unarmour(&text).unwrap();
    assert_eq!(bytes[0], 1);
    assert_eq!(bytes[17 + 8] & 0x80, 0, "bit 63 of the IV is clear");
    assert_eq!(&bytes[33..37], &[0, 0, 0, 1]);
    assert_eq!(decrypt_key_export(&text, "pass").unwrap().len(), 3);
}

#[test]
fn rounds_are_bounded() {
    let json = to_json(&[]);
    for (rounds, ok) in [(0, false), (1, true), (KEY_EXPORT_MAX_ROUNDS + 1, false)] {
        let mut bytes = seal(&json, "p", 1, &[0; 16], &[0; 16]);
        bytes[33..37].copy_from_slice(&u32::to_be_bytes(rounds));
        let result = Envelope::parse(&bytes).map(|_| ());
        assert_eq!(result.is_ok(), ok, "{rounds}");
        if !ok {
            assert_eq!(result.unwrap_err(), KeyExportError::Rounds(rounds));
        }
    }
    // Writing clamps, so the file reads back.
    let text = encrypt_key_export(&[], "p", 0);
    assert_eq!(&unarmour(&text).unwrap()[33..37], &[0, 0, 0, 1]);
    assert!(decrypt_key_export(&text, "p").unwrap().is_empty());
}

#[test]
fn json_errors_keep_no_text() {
    let text = armour(&seal(
        br#"[{"algorithm": "secret"}]"#,
        "p",
        1,
        &[1; 16],
        &[2; 16],
    ));
    let error = decrypt_key_export(&text, "p").unwrap_err();
    assert!(matches!(error, KeyExportError::Json { line: 1, .. }));
    assert!(!format!("{error} {error:?}").contains("secret"));
}

#[test]
fn debug_shows_no_ratchet() {
    let key = sample_key();
    let text = format!("{key:?}");
    assert!(text.contains("ExportedSessionKey { index: 7"));
    assert!(!text.contains(&*key.session_key.to_base64()));
    assert!(key.session_id_matches());
}

#[test]
fn the_json_is_serdes_byte_for_byte_in_a_buffer_of_exactly_its_length() {
    let control: String = (0u8..0x80).map(char::from).collect();
    let mut odd = sample_key();
    odd.room_id = format!("{control}\u{e9}\u{1f600}\"\\");
    odd.sender_claimed_keys
        .insert("ed25519".into(), "k\n".into());
    odd.sender_claimed_keys
        .insert("a\u{1}".into(), String::new());
    odd.forwarding_curve25519_key_chain = vec!["one".into(), "t\"wo".into()];
    odd.shared_history = true;
    for keys in [vec![], vec![sample_key()], vec![sample_key(), odd]] {
        let json = super::json::to_json(&keys);
        assert_eq!(*json, serde_json::to_vec(&keys).unwrap());
        assert_eq!(json.len(), json.capacity());
    }
}

/// The hand-written reader against the serde derive it replaced: both accept or both refuse,
/// and give the same keys, for hand-picked edge cases and every one-byte edit of a key.
#[test]
fn the_reader_takes_what_the_derive_took() {
    let agree = |json: &[u8]| {
        let ours = from_json(json);
        let theirs = serde_json::from_slice::<Vec<ExportedRoomKey>>(json);
        let text = String::from_utf8_lossy(json);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => assert_eq!(*to_json(&ours), *to_json(&theirs), "{text}"),
            (Err(KeyExportError::Json { line, column }), Err(_)) => {
                assert!(line >= 1 && column >= 1, "{text}")
            }
            (ours, theirs) => panic!("{text}: ours {ours:?}, serde {:?}", theirs.err()),
        }
    };
    let session_key = sample_key().session_key.to_base64();
    let base = format!(
        r#"[{{"algorithm":"a","room_id":"r","sender_key":"s","session_id":"i","session_key":"{}","sender_claimed_keys":{{"ed25519":"e"}},"forwarding_curve25519_key_chain":["c"],"m.shared_history":true,"x":[{{"y":-1.5e+3}},null,"\u00e9"]}}]"#,
        &*session_key
    );
    let required = format!(
        r#""algorithm":"a","room_id":"r","sender_key":"s","session_id":"i","session_key":"{}""#,
        &*session_key
    );
    let cases = [
        "[]".to_owned(),
        " [ ] \n".to_owned(),
        "[] x".to_owned(),
        "{}".to_owned(),
        "[{}]".to_owned(),
        "[null]".to_owned(),
        format!("[{{{required}}}]"),
        format!("[{{{required}}},]"),
        format!("[{{{required},}}]"),
        format!("[{{{required},\"room_id\":\"r\"}}]"),
        format!("[{{{required},\"x\":1,\"x\":2}}]"),
        format!("[{{{required},\"sender_claimed_keys\":null}}]"),
        format!("[{{{required},\"sender_claimed_keys\":{{\"a\":\"1\",\"a\":\"2\"}}}}]"),
        format!("[{{{required},\"sender_claimed_keys\":{{\"a\":1}}}}]"),
        format!("[{{{required},\"forwarding_curve25519_key_chain\":[]}}]"),
        format!("[{{{required},\"forwarding_curve25519_key_chain\":[1]}}]"),
        format!("[{{{required},\"m.shared_history\":false}}]"),
        format!("[{{{required},\"m.shared_history\":1}}]"),
        format!("[{{{required},\"room\\u005fid\":\"r\"}}]"),
        format!("[{{{required},\"x\":\"\\ud800\"}}]"),
        format!("[{{{required},\"x\\ud800\":1}}]"),
        format!("[{{{required},\"x\":\"\\ud83d\\ude00\"}}]"),
        format!("[{{{required},\"x\":01}}]"),
        format!("[{{{required},\"x\":-}}]"),
        format!("[{{{required},\"x\":1.}}]"),
        format!("[{{{required},\"x\":1e}}]"),
        format!("[{{{required},\"x\":[[[[{{\"a\":[]}}]]]]}}]"),
        format!("[{{{required},\"x\":[1 2]}}]"),
        format!("[{{{required},\"x\":{{\"a\"}}}}]"),
        format!("[{{{required},\"x\":tru}}]"),
        format!("[{{{required},\"x\":\"\t\"}}]"),
        format!("[{{{required},\"x\":\"\\q\"}}]"),
        format!(
            "[{{\"algorithm\":\"\\ud83d\\ude00\\u00e9\\n\\/\",{}}}]",
            &required[16..]
        ),
        format!("[{{\"algorithm\":\"\\udc00\",{}}}]", &required[16..]),
        format!("[{{\"algorithm\":\"\\ud800\\u0041\",{}}}]", &required[16..]),
        format!("[{{\"algorithm\":7,{}}}]", &required[16..]),
        base.replace(&*session_key, "AAAA"),
        base.clone(),
    ];
    for case in &cases {
        agree(case.as_bytes());
    }
    let mut invalid_utf8 = format!("[{{{required},\"x\":\"\u{e9}\"}}]").into_bytes();
    let at = invalid_utf8.len() - 4;
    invalid_utf8[at] = 0xff;
    agree(&invalid_utf8);
    let mut bad_name = format!("[{{{required},\"\u{e9}\":1}}]").into_bytes();
    let at = bad_name.len() - 6;
    bad_name[at] = 0xff;
    agree(&bad_name);
    // Every deletion of one byte, and every replacement by a byte JSON gives meaning to.
    let bytes = base.as_bytes();
    for at in 0..bytes.len() {
        let mut cut = bytes.to_vec();
        cut.remove(at);
        agree(&cut);
        for byte in *b" \"\\,:[]{}0-.e1tn" {
            let mut edited = bytes.to_vec();
            edited[at] = byte;
            agree(&edited);
        }
    }
}
