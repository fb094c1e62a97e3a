//! Bad input: every refusal is typed and leaves the session as it was.
//!
//! The libolm pickle is used as a fingerprint of an inbound session's whole state: libolm's
//! format derives its IV from the key, so the same state always gives the same string.

use olmo::DecodeError;
use olmo::crypto::{CipherError, Ed25519KeyPair};
use olmo::megolm::{
    InboundGroupSession, MegolmDecryptError, MegolmMessage, MegolmRatchet, SessionKey,
};

use super::{encrypt_many, pair};

const PICKLE_KEY: &[u8] = b"state fingerprint";

fn fingerprint(session: &InboundGroupSession) -> String {
    session.to_libolm_pickle(PICKLE_KEY)
}

/// A session from raw parts, so tests can sign messages the real sender never would.
fn forger() -> (MegolmRatchet, Ed25519KeyPair, InboundGroupSession) {
    let ratchet = MegolmRatchet::from_bytes(&[0x5A; MegolmRatchet::LENGTH], 0);
    let signing = Ed25519KeyPair::from_seed(&[0x17; 32]);
    let session = InboundGroupSession::new(&SessionKey::new(&ratchet, &signing));
    (ratchet, signing, session)
}

/// Re-signs `bytes` (version, body and MAC) with `signing`.
fn signed(bytes: &[u8], signing: &Ed25519KeyPair) -> MegolmMessage {
    let mut out = bytes.to_vec();
    out.extend_from_slice(signing.sign(bytes).as_bytes());
    MegolmMessage::decode(&out).unwrap()
}

#[test]
fn every_bit_flip_is_refused_without_changing_state() {
    let (mut outbound, mut inbound) = pair();
    let message = encrypt_many(&mut outbound, 1).remove(0);
    let before = fingerprint(&inbound);
    let bytes = message.to_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut tampered = bytes.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        if let Ok(tampered) = MegolmMessage::decode(&tampered) {
            assert!(inbound.decrypt(&tampered).is_err(), "bit {bit} accepted");
        }
        assert_eq!(fingerprint(&inbound), before, "bit {bit} changed state");
    }
    assert!(inbound.decrypt(&message).is_ok());
}

#[test]
fn a_bad_mac_under_a_good_signature_is_a_mac_error() {
    let (ratchet, signing, mut session) = forger();
    let message = MegolmMessage::encrypt(&ratchet, &signing, b"hello").unwrap();
    let mut unsigned = message.as_bytes()[..message.as_bytes().len() - 64].to_vec();
    *unsigned.last_mut().unwrap() ^= 0x80;
    let before = fingerprint(&session);
    assert_eq!(
        session.decrypt(&signed(&unsigned, &signing)).unwrap_err(),
        MegolmDecryptError::Cipher(CipherError::Mac)
    );
    assert_eq!(fingerprint(&session), before);
}

#[test]
fn a_forged_far_index_is_refused_and_not_remembered() {
    let (mut ratchet, signing, mut session) = forger();
    // Signed by the sender, but the MAC is made with keys for another index.
    let honest = MegolmMessage::encrypt(&ratchet, &signing, b"x").unwrap();
    let mut bytes = honest.as_bytes()[..honest.as_bytes().len() - 64].to_vec();
    bytes.splice(1..3, [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
    let far = signed(&bytes, &signing);
    assert_eq!(far.message_index(), u32::MAX);
    let before = fingerprint(&session);
    assert_eq!(
        session.decrypt(&far).unwrap_err(),
        MegolmDecryptError::Cipher(CipherError::Mac)
    );
    assert_eq!(fingerprint(&session), before);
    ratchet.advance().unwrap();
    let next = MegolmMessage::encrypt(&ratchet, &signing, b"y").unwrap();
    assert_eq!(&*session.decrypt(&next).unwrap().plaintext, b"y");
}

#[test]
fn unknown_index_and_wrong_session_are_typed() {
    let (mut outbound, inbound) = pair();
    let messages = encrypt_many(&mut outbound, 4);
    let mut late = InboundGroupSession::import(&inbound.export_at(2).unwrap());
    assert_eq!(
        late.decrypt(&messages[1]).unwrap_err(),
        MegolmDecryptError::UnknownIndex {
            message: 1,
            first_known: 2
        }
    );
    let (_, mut stranger) = pair();
    assert_eq!(
        stranger.decrypt(&messages[0]).unwrap_err(),
        MegolmDecryptError::Signature
    );
}

#[test]
fn malformed_messages_do_not_decode() {
    let (mut outbound, _) = pair();
    let bytes = encrypt_many(&mut outbound, 1).remove(0).to_bytes();
    for cut in 0..bytes.len() {
        assert!(MegolmMessage::decode(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut index_too_large = bytes.clone();
    index_too_large.splice(1..3, [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x10]);
    assert!(MegolmMessage::decode(&index_too_large).is_err());
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 2;
    assert!(MegolmMessage::decode(&wrong_version).is_err());
    let oversized = vec![3u8; olmo::megolm::MAX_MESSAGE_LENGTH + 1];
    assert_eq!(
        MegolmMessage::decode(&oversized).unwrap_err(),
        DecodeError::OutOfRange
    );
}
