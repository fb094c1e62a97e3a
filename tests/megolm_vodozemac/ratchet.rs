//! The first layer against vodozemac: the ratchet derives the same message keys at every index
//! (single steps and long jumps across each part's roll-over), vodozemac's session and exported
//! keys decode with our codecs, and messages decrypt both ways.

use olmo::crypto::Ed25519KeyPair;
use olmo::megolm::{
    ExportedSessionKey, MegolmDecryptError, MegolmMessage, MegolmRatchet, SessionKey,
};
use vodozemac::megolm::{
    ExportedSessionKey as VExportedKey, GroupSession, InboundGroupSession,
    MegolmMessage as VMessage, SessionConfig, SessionKey as VSessionKey,
};

/// The indices where a jump crosses interesting boundaries: each part's roll-over and beyond.
const FAR_INDICES: [u32; 9] = [
    255,
    256,
    300,
    65_535,
    70_000,
    0x00FF_FFFF,
    (1 << 24) + 3,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
];

fn our_session_key(outbound: &GroupSession) -> SessionKey {
    SessionKey::decode(&outbound.session_key().to_bytes()).expect("vodozemac's session key")
}

/// Decrypts a vodozemac message with our ratchet at its index, checking signature and MAC.
fn our_decrypt(key: &SessionKey, message: &VMessage) -> Vec<u8> {
    let ours = MegolmMessage::decode(&message.to_bytes()).unwrap();
    assert_eq!(ours.to_bytes(), message.to_bytes(), "kept as received");
    let mut ratchet = key.ratchet().clone();
    ratchet.advance_to(ours.message_index()).unwrap();
    ours.decrypt(&ratchet, &key.signing_key()).unwrap().to_vec()
}

#[test]
fn session_key_from_vodozemac_decodes_and_verifies() {
    let outbound = GroupSession::new(SessionConfig::version_1());
    let v_key = outbound.session_key();
    let key = our_session_key(&outbound);
    assert_eq!(key.session_id(), outbound.session_id());
    assert_eq!(key.ratchet().index(), 0);
    assert_eq!(*key.to_bytes(), v_key.to_bytes(), "canonical re-encoding");
    assert_eq!(*key.to_base64(), v_key.to_base64());

    // Flipping any byte of the signed part or the signature is caught.
    let bytes = v_key.to_bytes();
    for position in [0, 1, 5, 100, 133, 165, 200, 228] {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        assert!(SessionKey::decode(&tampered).is_err(), "{position}");
    }
}

#[test]
fn our_ratchet_decrypts_vodozemac_messages_step_by_step() {
    let mut outbound = GroupSession::new(SessionConfig::version_1());
    let key = our_session_key(&outbound);
    let mut ratchet = key.ratchet().clone();
    for index in 0u32..300 {
        let plaintext = format!("message {index}");
        let message = outbound.encrypt(&plaintext);
        let ours = MegolmMessage::decode(&message.to_bytes()).unwrap();
        assert_eq!(ours.message_index(), index);
        assert_eq!(ratchet.index(), index);
        let decrypted = ours.decrypt(&ratchet, &key.signing_key()).unwrap();
        assert_eq!(&decrypted[..], plaintext.as_bytes());
        if index < 6 {
            assert_eq!(our_decrypt(&key, &message), plaintext.as_bytes());
        }
        ratchet.advance().unwrap();
    }
}

#[test]
fn vodozemac_decrypts_ours() {
    let signing = Ed25519KeyPair::from_seed(&[42; 32]);
    let mut ratchet = MegolmRatchet::from_bytes(&[17; MegolmRatchet::LENGTH], 0);
    let v_key = VSessionKey::from_bytes(&SessionKey::new(&ratchet, &signing).to_bytes()).unwrap();
    let mut inbound = InboundGroupSession::new(&v_key, SessionConfig::version_1());
    assert_eq!(inbound.session_id(), signing.public_key().to_base64());
    for index in [0, 1, 2, 3, 4, 5, 300, 70_000, (1 << 24) + 3] {
        ratchet.advance_to(index).unwrap();
        let message = MegolmMessage::encrypt(&ratchet, &signing, b"from olmo").unwrap();
        let decrypted = inbound
            .decrypt(&VMessage::from_bytes(message.as_bytes()).unwrap())
            .unwrap();
        assert_eq!(decrypted.message_index, index);
        assert_eq!(decrypted.plaintext, b"from olmo");
    }
}

#[test]
fn jumps_match_vodozemac_exports() {
    let outbound = GroupSession::new(SessionConfig::version_1());
    let key = our_session_key(&outbound);
    let mut inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
    for index in FAR_INDICES {
        // vodozemac's export at `index` is its ratchet advanced there from the session key.
        let v_export = inbound.export_at(index).unwrap().to_bytes();
        let mut ours = key.ratchet().clone();
        ours.advance_to(index).unwrap();
        let export = ExportedSessionKey::new(&ours, key.signing_key());
        assert_eq!(*export.to_bytes(), v_export, "index {index:#x}");

        // And the export decodes with our codec to the same ratchet.
        let decoded = ExportedSessionKey::decode(&v_export).unwrap();
        assert_eq!(decoded.ratchet().index(), index);
        assert_eq!(decoded.ratchet().as_bytes(), ours.as_bytes());
        assert_eq!(decoded.signing_key(), key.signing_key());
    }
}

#[test]
fn our_jumps_decrypt_vodozemac_messages_at_far_indices() {
    // vodozemac's outbound session only moves one message at a time; to have it encrypt at a
    // far index, give it a pickle whose ratchet is vodozemac's own export at that index.
    let outbound = GroupSession::new(SessionConfig::version_1());
    let key = our_session_key(&outbound);
    let mut inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
    let pickle = serde_json::to_value(outbound.pickle()).unwrap();
    // The last pair ends at u32::MAX: one more vodozemac encrypt would overflow its counter
    // (a panic in debug builds, a wrap to 0 in release); our ratchet refuses to advance there.
    for index in [300, 70_000, (1 << 24) + 3, 0xFFFF_FFFD] {
        let export = inbound.export_at(index).unwrap().to_bytes();
        let mut moved = pickle.clone();
        moved["ratchet"]["inner"] = serde_json::json!(export[5..133].to_vec());
        moved["ratchet"]["counter"] = serde_json::json!(index);
        let mut far = GroupSession::from_pickle(serde_json::from_value(moved).unwrap());
        assert_eq!(far.message_index(), index);
        for offset in 0..2 {
            let message = far.encrypt(b"far away");
            assert_eq!(
                our_decrypt(&key, &message),
                b"far away",
                "{index} + {offset}"
            );
        }
    }
}

#[test]
fn vodozemac_exports_decode_and_wrong_keys_fail() {
    let mut outbound = GroupSession::new(SessionConfig::version_1());
    let key = our_session_key(&outbound);
    let message = outbound.encrypt(b"secret");
    let ours = MegolmMessage::decode(&message.to_bytes()).unwrap();

    // Another session's key: the signature check fails before anything else.
    let other = our_session_key(&GroupSession::new(SessionConfig::version_1()));
    assert_eq!(
        ours.decrypt(key.ratchet(), &other.signing_key()),
        Err(MegolmDecryptError::Signature)
    );
    // The right key at the wrong index is refused.
    let mut later = key.ratchet().clone();
    later.advance().unwrap();
    assert!(matches!(
        ours.decrypt(&later, &key.signing_key()),
        Err(MegolmDecryptError::WrongIndex { .. })
    ));

    // Our exported key imports into vodozemac, which then decrypts the message.
    let exported = ExportedSessionKey::from(&key);
    let v_export = VExportedKey::from_bytes(&exported.to_bytes()).unwrap();
    let mut imported = InboundGroupSession::import(&v_export, SessionConfig::version_1());
    assert_eq!(imported.decrypt(&message).unwrap().plaintext, b"secret");
}
