//! Olm interoperability with vodozemac 0.11, both directions: session set-up (one-time and
//! fallback keys), long conversations, out-of-order delivery, the message-gap limit, signatures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olmo::crypto::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};
use olmo::olm::{Account, DecryptError, MessageType, OlmMessage, SessionDecryptError};
use vodozemac::olm::{
    Account as VAccount, DecryptionError as VDecryptError, OlmMessage as VMessage,
    Session as VSession, SessionConfig,
};

// ---------------------------------------------------------------------------------------------
// Conversions and a deterministic shuffle.

fn to_v_key(key: Curve25519PublicKey) -> vodozemac::Curve25519PublicKey {
    vodozemac::Curve25519PublicKey::from_bytes(*key.as_bytes())
}

fn from_v_key(key: vodozemac::Curve25519PublicKey) -> Curve25519PublicKey {
    Curve25519PublicKey::from_bytes(key.to_bytes())
}

/// A small deterministic generator for shuffles (splitmix64); not used for keys.
struct Shuffler(u64);

impl Shuffler {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One interface over both implementations' sessions.

/// A wire message: Matrix type number and raw bytes.
#[derive(Clone, Debug)]
struct Wire {
    message_type: u8,
    bytes: Vec<u8>,
}

#[derive(Debug)]
enum AnyDecryptError {
    Olmo(SessionDecryptError),
    Vodozemac(VDecryptError),
}

trait Endpoint {
    fn name(&self) -> &'static str;
    fn encrypt(&mut self, plaintext: &[u8]) -> Wire;
    fn decrypt(&mut self, wire: &Wire) -> Result<Vec<u8>, AnyDecryptError>;
    fn session_id(&self) -> String;
}

impl Endpoint for olmo::olm::Session {
    fn name(&self) -> &'static str {
        "olmo"
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Wire {
        let message = olmo::olm::Session::encrypt(self, plaintext).unwrap();
        Wire {
            message_type: message.message_type().as_u8(),
            bytes: message.as_bytes().to_vec(),
        }
    }

    fn decrypt(&mut self, wire: &Wire) -> Result<Vec<u8>, AnyDecryptError> {
        let message = OlmMessage::from_parts(wire.message_type, &wire.bytes)
            .expect("olmo decodes every message vodozemac or olmo wrote");
        olmo::olm::Session::decrypt(self, &message)
            .map(|plaintext| plaintext.to_vec())
            .map_err(AnyDecryptError::Olmo)
    }

    fn session_id(&self) -> String {
        olmo::olm::Session::session_id(self)
    }
}

impl Endpoint for VSession {
    fn name(&self) -> &'static str {
        "vodozemac"
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Wire {
        let (message_type, bytes) = VSession::encrypt(self, plaintext).unwrap().to_parts();
        Wire {
            message_type: u8::try_from(message_type).unwrap(),
            bytes,
        }
    }

    fn decrypt(&mut self, wire: &Wire) -> Result<Vec<u8>, AnyDecryptError> {
        let message = VMessage::from_parts(usize::from(wire.message_type), &wire.bytes)
            .expect("vodozemac decodes every message vodozemac or olmo wrote");
        VSession::decrypt(self, &message).map_err(AnyDecryptError::Vodozemac)
    }

    fn session_id(&self) -> String {
        VSession::session_id(self)
    }
}

/// Alice (the initiator) and Bob, after Bob created his session from Alice's pre-key messages.
struct Pair {
    alice: Box<dyn Endpoint>,
    bob: Box<dyn Endpoint>,
}

#[derive(Clone, Copy, Debug)]
enum Direction {
    /// olmo initiates, vodozemac responds.
    OlmoToVodozemac,
    /// vodozemac initiates, olmo responds.
    VodozemacToOlmo,
}

const DIRECTIONS: [Direction; 2] = [Direction::OlmoToVodozemac, Direction::VodozemacToOlmo];

/// How Bob's key for the session is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BobKey {
    OneTime,
    Fallback,
}

/// Alice sends `pre_keys` pre-key messages before hearing back; Bob creates his session from
/// the last one and then decrypts the earlier ones (late messages of the first chain).
fn establish(direction: Direction, bob_key: BobKey, pre_keys: usize) -> Pair {
    assert!(pre_keys >= 1);
    let texts: Vec<Vec<u8>> = (0..pre_keys)
        .map(|i| format!("pre-key message {i}").into_bytes())
        .collect();
    match direction {
        Direction::OlmoToVodozemac => {
            let alice_account = Account::new();
            let mut bob_account = VAccount::new();
            let otk = match bob_key {
                BobKey::OneTime => {
                    bob_account.generate_one_time_keys(1);
                    *bob_account.one_time_keys().values().next().unwrap()
                }
                BobKey::Fallback => {
                    bob_account.generate_fallback_key();
                    *bob_account.fallback_key().values().next().unwrap()
                }
            };
            bob_account.mark_keys_as_published();
            let mut alice = alice_account
                .create_outbound_session(from_v_key(bob_account.curve25519_key()), from_v_key(otk))
                .unwrap();
            let wires: Vec<Wire> = texts
                .iter()
                .map(|t| Endpoint::encrypt(&mut alice, t))
                .collect();
            assert!(!alice.has_received_message());
            assert!(wires.iter().all(|w| w.message_type == 0));
            let VMessage::PreKey(last) =
                VMessage::from_parts(0, &wires[pre_keys - 1].bytes).unwrap()
            else {
                panic!("expected a pre-key message");
            };
            let created = bob_account
                .create_inbound_session(
                    SessionConfig::version_1(),
                    to_v_key(alice_account.curve25519_key()),
                    &last,
                )
                .unwrap();
            assert_eq!(created.plaintext, texts[pre_keys - 1]);
            let mut bob = created.session;
            for (wire, text) in wires.iter().zip(&texts).take(pre_keys - 1) {
                assert_eq!(&Endpoint::decrypt(&mut bob, wire).unwrap(), text);
            }
            if bob_key == BobKey::OneTime {
                assert_eq!(bob_account.stored_one_time_key_count(), 0);
            }
            let pair = Pair {
                alice: Box::new(alice),
                bob: Box::new(bob),
            };
            assert_eq!(pair.alice.session_id(), pair.bob.session_id());
            pair
        }
        Direction::VodozemacToOlmo => {
            let alice_account = VAccount::new();
            let mut bob_account = Account::new();
            let otk = match bob_key {
                BobKey::OneTime => {
                    bob_account.generate_one_time_keys(1);
                    bob_account.unpublished_one_time_keys()[0].1
                }
                BobKey::Fallback => {
                    bob_account.generate_fallback_key();
                    bob_account.unpublished_fallback_key().unwrap().1
                }
            };
            bob_account.mark_keys_as_published();
            let mut alice = alice_account
                .create_outbound_session(
                    SessionConfig::version_1(),
                    to_v_key(bob_account.curve25519_key()),
                    to_v_key(otk),
                )
                .unwrap();
            let wires: Vec<Wire> = texts
                .iter()
                .map(|t| Endpoint::encrypt(&mut alice, t))
                .collect();
            assert!(!alice.has_received_message());
            assert!(wires.iter().all(|w| w.message_type == 0));
            let OlmMessage::PreKey(last) =
                OlmMessage::from_parts(0, &wires[pre_keys - 1].bytes).unwrap()
            else {
                panic!("expected a pre-key message");
            };
            let created = bob_account
                .create_inbound_session(from_v_key(alice_account.curve25519_key()), &last)
                .unwrap();
            assert_eq!(&created.plaintext[..], &texts[pre_keys - 1][..]);
            let mut bob = created.session;
            assert!(bob.matches_inbound_session(&last));
            for (wire, text) in wires.iter().zip(&texts).take(pre_keys - 1) {
                assert_eq!(&Endpoint::decrypt(&mut bob, wire).unwrap(), text);
            }
            let pair = Pair {
                alice: Box::new(alice),
                bob: Box::new(bob),
            };
            assert_eq!(pair.alice.session_id(), pair.bob.session_id());
            pair
        }
    }
}

/// Sends one message from `from` to `to` and checks it arrives.
fn deliver(from: &mut dyn Endpoint, to: &mut dyn Endpoint, text: &str) -> Wire {
    let wire = from.encrypt(text.as_bytes());
    let plaintext = to
        .decrypt(&wire)
        .unwrap_or_else(|e| panic!("{} → {}: {text}: {e:?}", from.name(), to.name()));
    assert_eq!(plaintext, text.as_bytes());
    wire
}

/// Bob answers, then the sides alternate in bursts (every turn is a ratchet step); 40 messages.
fn converse(pair: &mut Pair, tag: &str) {
    let reply = deliver(
        pair.bob.as_mut(),
        pair.alice.as_mut(),
        &format!("{tag} reply"),
    );
    assert_eq!(reply.message_type, 1, "Bob's messages are normal messages");
    let bursts = [1, 3, 5, 1, 1, 7, 2, 2, 4, 6, 3, 5];
    let mut sent = 0;
    for (turn, &count) in bursts.iter().enumerate() {
        for i in 0..count {
            let text = format!("{tag} turn {turn} message {i}");
            let wire = if turn % 2 == 0 {
                deliver(pair.alice.as_mut(), pair.bob.as_mut(), &text)
            } else {
                deliver(pair.bob.as_mut(), pair.alice.as_mut(), &text)
            };
            assert_eq!(
                wire.message_type, 1,
                "no pre-key messages after the first reply"
            );
            sent += 1;
        }
    }
    assert_eq!(sent, 40);
}

#[test]
fn conversation_both_directions() {
    for direction in DIRECTIONS {
        let mut pair = establish(direction, BobKey::OneTime, 1);
        converse(&mut pair, &format!("{direction:?}"));
    }
}

#[test]
fn repeated_pre_key_messages_before_the_first_reply() {
    for direction in DIRECTIONS {
        let mut pair = establish(direction, BobKey::OneTime, 5);
        converse(&mut pair, &format!("{direction:?} after 5 pre-keys"));
    }
}

#[test]
fn fallback_key_sessions_both_directions() {
    for direction in DIRECTIONS {
        let mut pair = establish(direction, BobKey::Fallback, 2);
        converse(&mut pair, &format!("{direction:?} fallback"));
    }
}

#[test]
fn fallback_key_serves_several_initiators() {
    // vodozemac Bob, two olmo Alices on the same fallback key.
    let mut bob = VAccount::new();
    bob.generate_fallback_key();
    let fallback = *bob.fallback_key().values().next().unwrap();
    bob.mark_keys_as_published();
    for i in 0..2 {
        let alice = Account::new();
        let mut session = alice
            .create_outbound_session(from_v_key(bob.curve25519_key()), from_v_key(fallback))
            .unwrap();
        let text = format!("alice {i}");
        let message = session.encrypt(text.as_bytes()).unwrap();
        let VMessage::PreKey(pre_key) = VMessage::from_parts(0, message.as_bytes()).unwrap() else {
            panic!("expected a pre-key message");
        };
        let created = bob
            .create_inbound_session(
                SessionConfig::version_1(),
                to_v_key(alice.curve25519_key()),
                &pre_key,
            )
            .unwrap();
        assert_eq!(created.plaintext, text.as_bytes());
        assert_eq!(created.session.session_id(), session.session_id());
    }

    // olmo Bob, two vodozemac Alices on the same fallback key.
    let mut bob = Account::new();
    bob.generate_fallback_key();
    let (_, fallback) = bob.unpublished_fallback_key().unwrap();
    bob.mark_keys_as_published();
    assert!(bob.unpublished_fallback_key().is_none());
    for i in 0..2 {
        let alice = VAccount::new();
        let mut session = alice
            .create_outbound_session(
                SessionConfig::version_1(),
                to_v_key(bob.curve25519_key()),
                to_v_key(fallback),
            )
            .unwrap();
        let text = format!("alice {i}");
        let (t, bytes) = session.encrypt(text.as_bytes()).unwrap().to_parts();
        let OlmMessage::PreKey(pre_key) =
            OlmMessage::from_parts(u8::try_from(t).unwrap(), &bytes).unwrap()
        else {
            panic!("expected a pre-key message");
        };
        let created = bob
            .create_inbound_session(from_v_key(alice.curve25519_key()), &pre_key)
            .unwrap();
        assert_eq!(&created.plaintext[..], text.as_bytes());
        assert_eq!(created.session.session_id(), session.session_id());
    }

    // After rotating twice and forgetting, the first fallback key no longer works.
    bob.generate_fallback_key();
    assert!(bob.forget_fallback_key());
    let alice = VAccount::new();
    let mut session = alice
        .create_outbound_session(
            SessionConfig::version_1(),
            to_v_key(bob.curve25519_key()),
            to_v_key(fallback),
        )
        .unwrap();
    let (_, bytes) = session.encrypt(b"too late").unwrap().to_parts();
    let OlmMessage::PreKey(pre_key) = OlmMessage::from_parts(0, &bytes).unwrap() else {
        panic!("expected a pre-key message");
    };
    assert_eq!(
        bob.create_inbound_session(from_v_key(alice.curve25519_key()), &pre_key)
            .unwrap_err(),
        olmo::olm::SessionCreationError::MissingOneTimeKey
    );
}

/// Messages from several chains of both sides are held back and then delivered shuffled.
fn out_of_order(pair: &mut Pair, seed: u64) {
    let mut shuffler = Shuffler(seed);
    deliver(pair.bob.as_mut(), pair.alice.as_mut(), "reply");

    // Alice: chain 1 (held), Bob answers (delivered), Alice: chain 2 (held), and so on.
    let mut held_for_bob = Vec::new();
    let mut held_for_alice = Vec::new();
    for round in 0..3 {
        for i in 0..6 {
            let text = format!("alice round {round} message {i}");
            held_for_bob.push((pair.alice.encrypt(text.as_bytes()), text));
        }
        // Bob cannot ratchet without a message from Alice: give him one of this round.
        let (wire, text) = held_for_bob.pop().unwrap();
        assert_eq!(pair.bob.decrypt(&wire).unwrap(), text.as_bytes());
        for i in 0..6 {
            let text = format!("bob round {round} message {i}");
            held_for_alice.push((pair.bob.encrypt(text.as_bytes()), text));
        }
        let (wire, text) = held_for_alice.pop().unwrap();
        assert_eq!(pair.alice.decrypt(&wire).unwrap(), text.as_bytes());
    }
    // A whole chain Bob has not seen yet: it opens with whichever message the shuffle puts first.
    for i in 0..6 {
        let text = format!("alice unseen chain message {i}");
        held_for_bob.push((pair.alice.encrypt(text.as_bytes()), text));
    }
    shuffler.shuffle(&mut held_for_bob);
    shuffler.shuffle(&mut held_for_alice);
    // Interleave deliveries in both directions.
    let mut a = held_for_bob.into_iter();
    let mut b = held_for_alice.into_iter();
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        if let Some((wire, text)) = x {
            let plaintext = pair
                .bob
                .decrypt(&wire)
                .unwrap_or_else(|e| panic!("{} ← {text}: {e:?}", pair.bob.name()));
            assert_eq!(plaintext, text.as_bytes());
        }
        if let Some((wire, text)) = y {
            let plaintext = pair
                .alice
                .decrypt(&wire)
                .unwrap_or_else(|e| panic!("{} ← {text}: {e:?}", pair.alice.name()));
            assert_eq!(plaintext, text.as_bytes());
        }
    }
    // Within one chain, reversed.
    let mut burst: Vec<(Wire, String)> = (0..10)
        .map(|i| {
            let text = format!("reversed {i}");
            (pair.alice.encrypt(text.as_bytes()), text)
        })
        .collect();
    burst.reverse();
    for (wire, text) in burst {
        assert_eq!(pair.bob.decrypt(&wire).unwrap(), text.as_bytes());
    }
    converse(pair, "after shuffling");
}

#[test]
fn out_of_order_delivery_within_and_across_chains() {
    for direction in DIRECTIONS {
        for seed in 0..4 {
            let mut pair = establish(direction, BobKey::OneTime, 1);
            out_of_order(&mut pair, seed);
        }
    }
}

/// The receiver refuses a message 2001 ahead of its chain, accepts one exactly 2000 ahead, and
/// both sides keep working.
fn gap_limit(sender: &mut dyn Endpoint, receiver: &mut dyn Endpoint) {
    let wires: Vec<Wire> = (0..2002)
        .map(|i| sender.encrypt(format!("gap {i}").as_bytes()))
        .collect();
    // The chain is new for the receiver (the sender just ratcheted), so it stands at index 0.
    match receiver.decrypt(&wires[2001]) {
        Err(AnyDecryptError::Olmo(error)) => assert_eq!(
            error,
            SessionDecryptError::Decrypt(DecryptError::TooFarAhead {
                index: 2001,
                gap: 2001,
                limit: 2000
            })
        ),
        Err(AnyDecryptError::Vodozemac(error)) => {
            assert!(
                matches!(error, VDecryptError::TooBigMessageGap(2001, 2000)),
                "{error:?}"
            );
        }
        Ok(_) => panic!("{} accepted a message 2001 ahead", receiver.name()),
    }
    assert_eq!(receiver.decrypt(&wires[2000]).unwrap(), b"gap 2000");
    // The refused message is only one ahead now, and decrypts.
    assert_eq!(receiver.decrypt(&wires[2001]).unwrap(), b"gap 2001");
    // Keys just before the accepted message were kept.
    assert_eq!(receiver.decrypt(&wires[1999]).unwrap(), b"gap 1999");
    deliver(receiver, sender, "still working");
    deliver(sender, receiver, "still working, too");
}

#[test]
fn message_gap_limit_both_directions() {
    for direction in DIRECTIONS {
        let mut pair = establish(direction, BobKey::OneTime, 1);
        deliver(pair.bob.as_mut(), pair.alice.as_mut(), "reply");
        // Alice sends on a new chain; Bob receives.
        gap_limit(pair.alice.as_mut(), pair.bob.as_mut());
        // Bob sends on a new chain; Alice receives.
        gap_limit(pair.bob.as_mut(), pair.alice.as_mut());
        converse(&mut pair, "after the gap");
    }
}

#[test]
fn signatures_both_directions() {
    let ours = Account::new();
    let theirs = VAccount::new();
    let message = b"{\"algorithms\":[\"m.olm.v1.curve25519-aes-sha2\"]}";

    // olmo signs, vodozemac verifies.
    let signature = ours.sign(message);
    let their_view_of_key =
        vodozemac::Ed25519PublicKey::from_slice(ours.ed25519_key().as_bytes()).unwrap();
    let their_view_of_signature =
        vodozemac::Ed25519Signature::from_slice(signature.as_bytes()).unwrap();
    their_view_of_key
        .verify(message, &their_view_of_signature)
        .unwrap();
    assert!(
        their_view_of_key
            .verify(b"something else", &their_view_of_signature)
            .is_err()
    );
    assert_eq!(
        vodozemac::Ed25519Signature::from_base64(&signature.to_base64())
            .unwrap()
            .to_base64(),
        signature.to_base64()
    );

    // vodozemac signs, olmo verifies.
    let signature = theirs.sign(message);
    let our_view_of_key = Ed25519PublicKey::from_bytes(theirs.ed25519_key().as_bytes()).unwrap();
    let our_view_of_signature = Ed25519Signature::from_base64(&signature.to_base64()).unwrap();
    our_view_of_key
        .verify(message, &our_view_of_signature)
        .unwrap();
    assert!(
        our_view_of_key
            .verify(b"something else", &our_view_of_signature)
            .is_err()
    );
    assert_eq!(
        our_view_of_key.to_base64(),
        theirs.ed25519_key().to_base64()
    );
    assert_eq!(
        ours.curve25519_key().to_base64(),
        to_v_key(ours.curve25519_key()).to_base64()
    );
}

#[test]
fn message_types_and_parts_agree() {
    let mut pair = establish(Direction::OlmoToVodozemac, BobKey::OneTime, 1);
    let reply = pair.bob.encrypt(b"reply");
    let ours = OlmMessage::from_parts(reply.message_type, &reply.bytes).unwrap();
    assert_eq!(ours.message_type(), MessageType::Normal);
    assert_eq!(ours.as_bytes(), &reply.bytes[..]);
    let (t, body) = ours.to_parts();
    let theirs =
        VMessage::from_parts(usize::from(t), &vodozemac::base64_decode(&body).unwrap()).unwrap();
    assert_eq!(theirs.to_parts().1, reply.bytes);
}
