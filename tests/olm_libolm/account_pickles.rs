//! libolm account pickles, both ways (one-time and fallback keys included).

use olmo::olm::Account;
use olmo::persist::LibolmPickleError;
use serde_json::json;

use crate::common::peer::Peer;
use crate::support::{
    PICKLE_KEY, Party, Wire, bob_replies, curve, lib_account, lib_alice_to, lib_otks, s,
};

#[test]
fn libolm_account_pickle_into_olmo() {
    let mut peer = Peer::libolm();
    let (lib, lib_curve, lib_ed) = lib_account(&mut peer);
    lib_otks(&mut peer, &lib, 3);
    peer.call(json!({"op": "mark_keys_as_published", "account": lib}));
    let unpublished = lib_otks(&mut peer, &lib, 2);
    assert_eq!(unpublished.len(), 2);
    let fb = peer.call(json!({"op": "generate_fallback_key", "account": lib}));
    let (fallback_id, fallback) = fb["keys"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(i, k)| (i.clone(), s(k)))
        .unwrap();
    let pickle = peer.call_str(
        json!({"op": "pickle_account", "account": lib, "key": PICKLE_KEY}),
        "pickle",
    );

    assert_eq!(
        Account::from_libolm_pickle(&pickle, b"wrong").unwrap_err(),
        LibolmPickleError::Authentication
    );
    let mut account = Account::from_libolm_pickle(&pickle, PICKLE_KEY.as_bytes())
        .unwrap_or_else(|e| panic!("olmo cannot import libolm's account pickle: {e:?}"));
    assert_eq!(account.curve25519_key().to_base64(), lib_curve);
    assert_eq!(account.ed25519_key().to_base64(), lib_ed);
    // Ed25519 is deterministic: the same key gives the same signature.
    let lib_sig = peer.call_str(
        json!({"op": "account_sign", "account": lib, "message": "same"}),
        "signature",
    );
    assert_eq!(account.sign(b"same").to_base64(), lib_sig);
    // The unpublished keys and their ids survive, and so does the unpublished fallback key.
    let mut ours: Vec<(String, String)> = account
        .unpublished_one_time_keys()
        .into_iter()
        .map(|(id, k)| (id.to_base64(), k.to_base64()))
        .collect();
    ours.sort();
    assert_eq!(ours, unpublished);
    let (fid, fkey) = account
        .unpublished_fallback_key()
        .expect("fallback key lost");
    assert_eq!(
        (fid.to_base64(), fkey.to_base64()),
        (fallback_id, fallback.clone())
    );

    // A libolm Alice reaches the imported account on one of its published keys, an
    // unpublished one and the fallback key.
    let all = peer.call(json!({"op": "account_one_time_keys", "account": lib}));
    assert_eq!(
        all["keys"].as_object().unwrap().len(),
        2,
        "python lists unpublished keys only"
    );
    for (i, key) in [
        unpublished[0].1.clone(),
        unpublished[1].1.clone(),
        fallback.clone(),
    ]
    .iter()
    .enumerate()
    {
        let text = format!("to imported account {i}");
        let (alice_session, alice_curve, wire) =
            lib_alice_to(&mut peer, &account, curve(key), &text);
        let created = account
            .create_inbound_session(curve(&alice_curve), &wire.pre_key())
            .unwrap_or_else(|e| panic!("imported account, key {i}: {e:?}"));
        assert_eq!(&created.plaintext[..], text.as_bytes());
        let mut alice = Party::Lib(alice_session);
        let mut bob = Party::Olmo(created.session);
        bob_replies(&mut peer, &mut alice, &mut bob);
    }
    // The two one-time keys are used up, the fallback key is not.
    assert!(account.unpublished_one_time_keys().is_empty());
    assert!(account.unpublished_fallback_key().is_some());

    // And back: the imported account exports to a pickle libolm accepts, with the same keys.
    let back = account.to_libolm_pickle(PICKLE_KEY.as_bytes());
    let r = peer
        .try_call(json!({"op": "unpickle_account", "pickle": back, "key": PICKLE_KEY}))
        .unwrap_or_else(|e| panic!("libolm cannot unpickle the re-exported account: {e}"));
    assert_eq!(s(&r["curve25519"]), lib_curve);
    assert_eq!(s(&r["ed25519"]), lib_ed);
    let keys = peer.call(json!({"op": "account_one_time_keys", "account": s(&r["account"])}));
    assert_eq!(keys["keys"].as_object().unwrap().len(), 0);
}

#[test]
fn libolm_account_pickle_published_keys_into_olmo() {
    // The published one-time keys of a libolm account are still usable after import.
    let mut peer = Peer::libolm();
    let (lib, _, _) = lib_account(&mut peer);
    let published = lib_otks(&mut peer, &lib, 4);
    peer.call(json!({"op": "mark_keys_as_published", "account": lib}));
    let pickle = peer.call_str(
        json!({"op": "pickle_account", "account": lib, "key": PICKLE_KEY}),
        "pickle",
    );
    let mut account = Account::from_libolm_pickle(&pickle, PICKLE_KEY.as_bytes()).unwrap();
    assert!(account.unpublished_one_time_keys().is_empty());
    for (i, (_, key)) in published.iter().enumerate().rev() {
        let text = format!("published key {i}");
        let (_, alice_curve, wire) = lib_alice_to(&mut peer, &account, curve(key), &text);
        let created = account
            .create_inbound_session(curve(&alice_curve), &wire.pre_key())
            .unwrap_or_else(|e| panic!("published key {i}: {e:?}"));
        assert_eq!(&created.plaintext[..], text.as_bytes());
    }
    // New keys continue libolm's id counter.
    account.generate_one_time_keys(1);
    let (new_id, _) = account.unpublished_one_time_keys()[0];
    let last = published.iter().map(|(id, _)| id.clone()).max().unwrap();
    assert!(new_id.to_base64() > last, "{new_id} after {last}");
}

#[test]
fn olmo_account_pickle_into_libolm() {
    let mut peer = Peer::libolm();
    let mut account = Account::new();
    account.generate_one_time_keys(3);
    let published: Vec<_> = account.unpublished_one_time_keys();
    account.generate_fallback_key();
    account.mark_keys_as_published();
    account.generate_one_time_keys(2);
    let unpublished: Vec<_> = account.unpublished_one_time_keys();
    let (_, fallback) = account
        .unpublished_fallback_key()
        .map_or_else(|| (None, None), |(i, k)| (Some(i), Some(k)));
    assert!(fallback.is_none());

    let pickle = account.to_libolm_pickle(PICKLE_KEY.as_bytes());
    let r = peer
        .try_call(json!({"op": "unpickle_account", "pickle": pickle, "key": PICKLE_KEY}))
        .unwrap_or_else(|e| panic!("libolm cannot unpickle olmo's account: {e}"));
    let lib = s(&r["account"]);
    assert_eq!(s(&r["curve25519"]), account.curve25519_key().to_base64());
    assert_eq!(s(&r["ed25519"]), account.ed25519_key().to_base64());
    let lib_sig = peer.call_str(
        json!({"op": "account_sign", "account": lib, "message": "same"}),
        "signature",
    );
    assert_eq!(account.sign(b"same").to_base64(), lib_sig);
    let mut ours: Vec<(String, String)> = unpublished
        .iter()
        .map(|(id, k)| (id.to_base64(), k.to_base64()))
        .collect();
    ours.sort();
    let theirs = lib_otks(&mut peer, &lib, 0);
    assert_eq!(
        theirs, ours,
        "libolm sees different unpublished one-time keys"
    );
    assert!(
        peer.call(json!({"op": "account_fallback_key", "account": lib}))["keys"]
            .as_object()
            .unwrap()
            .is_empty(),
        "the published fallback key must stay published"
    );

    // olmo Alices reach the libolm copy on a published key, an unpublished key and the
    // (published) fallback key.
    let lib_curve = curve(&s(&r["curve25519"]));
    for (i, key) in [published[1].1, unpublished[0].1].iter().enumerate() {
        let alice_account = Account::new();
        let mut alice = Party::Olmo(
            alice_account
                .create_outbound_session(lib_curve, *key)
                .unwrap(),
        );
        let text = format!("to exported account {i}");
        let wire = alice.encrypt(&mut peer, &text);
        let r = peer
            .try_call(json!({
                "op": "inbound_session", "account": lib, "body": wire.body,
                "sender_key": alice_account.curve25519_key().to_base64(),
            }))
            .unwrap_or_else(|e| panic!("libolm as the exported account, key {i}: {e}"));
        assert_eq!(s(&r["plaintext"]), text);
        let mut bob = Party::Lib(s(&r["session"]));
        bob_replies(&mut peer, &mut alice, &mut bob);
    }
    // libolm removed the one unpublished key it used.
    assert_eq!(lib_otks(&mut peer, &lib, 0).len(), 1);
}

#[test]
fn olmo_account_fallback_keys_into_libolm() {
    // Current and previous fallback keys both survive an export to libolm.
    let mut peer = Peer::libolm();
    let mut account = Account::new();
    account.generate_fallback_key();
    let (_, old) = account.unpublished_fallback_key().unwrap();
    account.mark_keys_as_published();
    account.generate_fallback_key();
    let (_, new) = account.unpublished_fallback_key().unwrap();
    let pickle = account.to_libolm_pickle(PICKLE_KEY.as_bytes());
    let r = peer.call(json!({"op": "unpickle_account", "pickle": pickle, "key": PICKLE_KEY}));
    let lib = s(&r["account"]);
    let listed = peer.call(json!({"op": "account_fallback_key", "account": lib}));
    let listed: Vec<String> = listed["keys"]
        .as_object()
        .unwrap()
        .values()
        .map(s)
        .collect();
    assert_eq!(
        listed,
        vec![new.to_base64()],
        "libolm should list the unpublished new fallback key"
    );
    for (i, key) in [old, new].iter().enumerate() {
        let alice_account = Account::new();
        let mut alice = alice_account
            .create_outbound_session(account.curve25519_key(), *key)
            .unwrap();
        let wire = Wire::from_olmo(&alice.encrypt(format!("fallback {i}").as_bytes()).unwrap());
        let r = peer
            .try_call(
                json!({"op": "inbound_session", "account": lib, "body": wire.body,
                "sender_key": alice_account.curve25519_key().to_base64()}),
            )
            .unwrap_or_else(|e| panic!("libolm with exported fallback key {i}: {e}"));
        assert_eq!(s(&r["plaintext"]), format!("fallback {i}"));
    }
    // And olmo reads libolm's pickle of it back with both fallback keys.
    let again = peer.call_str(
        json!({"op": "pickle_account", "account": lib, "key": PICKLE_KEY}),
        "pickle",
    );
    let mut back = Account::from_libolm_pickle(&again, PICKLE_KEY.as_bytes()).unwrap();
    for (i, key) in [old, new].iter().enumerate() {
        let (_, alice_curve, wire) = lib_alice_to(&mut peer, &back, *key, "round trip");
        back.create_inbound_session(curve(&alice_curve), &wire.pre_key())
            .unwrap_or_else(|e| panic!("fallback key {i} after the round trip: {e:?}"));
    }
    assert!(back.forget_fallback_key());
}
