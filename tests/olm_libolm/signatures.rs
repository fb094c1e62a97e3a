//! Signatures both ways, and identity key encodings.

use olmo::crypto::{Ed25519PublicKey, Ed25519Signature};
use olmo::olm::{Account, MessageType};
use serde_json::json;

use crate::common::peer::Peer;
use crate::support::{curve, lib_account, lib_otks};

#[test]
fn signatures_both_ways() {
    let mut peer = Peer::libolm();
    let account = Account::new();
    let messages = [
        "",
        "hello",
        r#"{"algorithms":["m.olm.v1.curve25519-aes-sha2"],"device_id":"DEV","user_id":"@a:b"}"#,
        "ünïcødé ✓ 🔐",
    ];
    for m in messages {
        let sig = account.sign(m.as_bytes()).to_base64();
        let r = peer.call(
            json!({"op": "ed25519_verify", "key": account.ed25519_key().to_base64(),
            "message": m, "signature": sig}),
        );
        assert_eq!(
            r["valid"],
            json!(true),
            "libolm rejects olmo's signature of {m:?}"
        );
        let r = peer.call(
            json!({"op": "ed25519_verify", "key": account.ed25519_key().to_base64(),
            "message": format!("{m}x"), "signature": sig}),
        );
        assert_eq!(r["valid"], json!(false));
    }

    let (lib, _, lib_ed) = lib_account(&mut peer);
    let key = Ed25519PublicKey::from_base64(&lib_ed).unwrap();
    assert_eq!(key.to_base64(), lib_ed);
    for m in messages {
        let sig_b64 = peer.call_str(
            json!({"op": "account_sign", "account": lib, "message": m}),
            "signature",
        );
        let sig = Ed25519Signature::from_base64(&sig_b64).unwrap();
        assert_eq!(sig.to_base64(), sig_b64);
        key.verify(m.as_bytes(), &sig)
            .unwrap_or_else(|e| panic!("olmo rejects libolm's signature of {m:?}: {e:?}"));
        assert!(key.verify(format!("{m}x").as_bytes(), &sig).is_err());
        assert!(account.ed25519_key().verify(m.as_bytes(), &sig).is_err());
    }
}

// ---------------------------------------------------------------------------
// Identity key encoding sanity
// ---------------------------------------------------------------------------

#[test]
fn key_encodings_round_trip() {
    let mut peer = Peer::libolm();
    let (lib, lib_curve, lib_ed) = lib_account(&mut peer);
    assert_eq!(curve(&lib_curve).to_base64(), lib_curve);
    assert_eq!(
        Ed25519PublicKey::from_base64(&lib_ed).unwrap().to_base64(),
        lib_ed
    );
    // libolm's key ids use the same unpadded base64 of a big-endian counter.
    let ids: Vec<String> = lib_otks(&mut peer, &lib, 2)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut olmo_account = Account::new();
    olmo_account.generate_one_time_keys(2);
    let ours: Vec<String> = olmo_account
        .unpublished_one_time_keys()
        .into_iter()
        .map(|(id, _)| id.to_base64())
        .collect();
    assert_eq!(ids, ours);
    let _ = MessageType::PreKey;
}
