//! Shared helpers: the wire format, conversation parties (olmo or libolm), session setup
//! in both directions and long scripted conversations.

use olmo::crypto::Curve25519PublicKey;
use olmo::olm::{Account, OlmMessage, PreKeyMessage, Session};
use olmo::persist::LibolmPickleError;
use serde_json::{Value, json};

use crate::common::peer::Peer;

/// A message on the wire: libolm's (type, unpadded base64 body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wire {
    pub(crate) ty: u8,
    pub(crate) body: String,
}

impl Wire {
    pub(crate) fn from_olmo(message: &OlmMessage) -> Wire {
        let (ty, body) = message.to_parts();
        Wire { ty, body }
    }

    pub(crate) fn from_peer(response: &Value) -> Wire {
        Wire {
            ty: u8::try_from(response["type"].as_u64().expect("type")).unwrap(),
            body: response["body"].as_str().expect("body").to_string(),
        }
    }

    pub(crate) fn to_olmo(&self) -> OlmMessage {
        OlmMessage::from_base64_parts(self.ty, &self.body)
            .unwrap_or_else(|e| panic!("olmo cannot parse libolm message {self:?}: {e:?}"))
    }

    pub(crate) fn pre_key(&self) -> PreKeyMessage {
        match self.to_olmo() {
            OlmMessage::PreKey(m) => m,
            OlmMessage::Normal(_) => panic!("expected a pre-key message, got {self:?}"),
        }
    }
}

pub(crate) fn curve(b64: &str) -> Curve25519PublicKey {
    Curve25519PublicKey::from_base64(b64).unwrap()
}

pub(crate) fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A new libolm account: (handle, curve25519, ed25519).
pub(crate) fn lib_account(peer: &mut Peer) -> (String, String, String) {
    let r = peer.call(json!({"op": "account_new"}));
    (s(&r["account"]), s(&r["curve25519"]), s(&r["ed25519"]))
}

/// Generates `count` one-time keys on a libolm account and returns all its unpublished ones.
pub(crate) fn lib_otks(peer: &mut Peer, account: &str, count: usize) -> Vec<(String, String)> {
    let r = peer.call(json!({"op": "generate_one_time_keys", "account": account, "count": count}));
    let mut keys: Vec<(String, String)> = r["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, k)| (id.clone(), s(k)))
        .collect();
    keys.sort();
    keys
}

/// One side of a conversation: an olmo session or a libolm session handle.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Party {
    Olmo(Session),
    Lib(String),
}

impl Party {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Party::Olmo(_) => "olmo",
            Party::Lib(_) => "libolm",
        }
    }

    pub(crate) fn olmo(&mut self) -> &mut Session {
        match self {
            Party::Olmo(s) => s,
            Party::Lib(_) => panic!("not an olmo party"),
        }
    }

    pub(crate) fn encrypt(&mut self, peer: &mut Peer, plaintext: &str) -> Wire {
        match self {
            Party::Olmo(session) => {
                Wire::from_olmo(&session.encrypt(plaintext.as_bytes()).unwrap())
            }
            Party::Lib(h) => Wire::from_peer(
                &peer.call(json!({"op": "encrypt", "session": h, "plaintext": plaintext})),
            ),
        }
    }

    pub(crate) fn decrypt(&mut self, peer: &mut Peer, wire: &Wire) -> Result<String, String> {
        match self {
            Party::Olmo(session) => session
                .decrypt(&wire.to_olmo())
                .map(|p| String::from_utf8(p.to_vec()).unwrap())
                .map_err(|e| format!("{e:?}")),
            Party::Lib(h) => peer
                .try_call(
                    json!({"op": "decrypt", "session": h, "type": wire.ty, "body": wire.body}),
                )
                .map(|r| s(&r["plaintext"])),
        }
    }

    pub(crate) fn session_id(&self, peer: &mut Peer) -> String {
        match self {
            Party::Olmo(session) => session.session_id(),
            Party::Lib(h) => peer.call_str(json!({"op": "session_id", "session": h}), "session_id"),
        }
    }

    /// Moves the session to the other implementation through a libolm session pickle.
    pub(crate) fn transfer(self, peer: &mut Peer, key: &str) -> Party {
        match self {
            Party::Olmo(session) => {
                let pickle = session.to_libolm_pickle(key.as_bytes());
                let r = peer
                    .try_call(json!({"op": "unpickle_session", "pickle": pickle, "key": key}))
                    .unwrap_or_else(|e| {
                        panic!("libolm cannot unpickle olmo's session pickle: {e}")
                    });
                assert_eq!(s(&r["session_id"]), session.session_id());
                Party::Lib(s(&r["session"]))
            }
            Party::Lib(h) => {
                let pickle = peer.call_str(
                    json!({"op": "pickle_session", "session": h, "key": key}),
                    "pickle",
                );
                let session =
                    Session::from_libolm_pickle(&pickle, key.as_bytes()).unwrap_or_else(|e| {
                        panic!("olmo cannot import libolm's session pickle: {e:?}")
                    });
                let id = peer.call_str(json!({"op": "session_id", "session": h}), "session_id");
                assert_eq!(session.session_id(), id);
                assert_eq!(
                    Session::from_libolm_pickle(&pickle, b"wrong key").unwrap_err(),
                    LibolmPickleError::Authentication
                );
                Party::Olmo(session)
            }
        }
    }
}

/// Decrypts and checks the plaintext.
pub(crate) fn expect_decrypt(peer: &mut Peer, to: &mut Party, wire: &Wire, plaintext: &str) {
    let name = to.name();
    match to.decrypt(peer, wire) {
        Ok(p) => assert_eq!(p, plaintext, "{name} decrypted the wrong plaintext"),
        Err(e) => panic!("{name} failed to decrypt {plaintext:?} ({wire:?}): {e}"),
    }
}

/// olmo Alice (outbound) and libolm Bob (inbound), after Bob decrypted Alice's first
/// pre-key message. Returns (alice, bob).
pub(crate) fn olmo_alice_lib_bob(peer: &mut Peer) -> (Party, Party) {
    let (bob, bob_curve, _) = lib_account(peer);
    let (_, otk) = lib_otks(peer, &bob, 1).remove(0);
    peer.call(json!({"op": "mark_keys_as_published", "account": bob}));
    let alice_account = Account::new();
    let mut alice = alice_account
        .create_outbound_session(curve(&bob_curve), curve(&otk))
        .unwrap();
    let first = Wire::from_olmo(&alice.encrypt(b"hello from olmo").unwrap());
    assert_eq!(first.ty, 0);
    let r = peer.call(json!({
        "op": "inbound_session", "account": bob, "body": first.body,
        "sender_key": alice_account.curve25519_key().to_base64(),
    }));
    assert_eq!(s(&r["plaintext"]), "hello from olmo");
    assert_eq!(s(&r["session_id"]), alice.session_id());
    (Party::Olmo(alice), Party::Lib(s(&r["session"])))
}

/// libolm Alice (outbound) and olmo Bob (inbound), after Bob decrypted Alice's first
/// pre-key message. Returns (alice, bob).
pub(crate) fn lib_alice_olmo_bob(peer: &mut Peer) -> (Party, Party) {
    let (alice, alice_curve, _) = lib_account(peer);
    let mut bob_account = Account::new();
    bob_account.generate_one_time_keys(1);
    let (_, otk) = bob_account.unpublished_one_time_keys()[0];
    bob_account.mark_keys_as_published();
    let r = peer.call(json!({
        "op": "outbound_session", "account": alice,
        "identity_key": bob_account.curve25519_key().to_base64(), "one_time_key": otk.to_base64(),
    }));
    let mut alice = Party::Lib(s(&r["session"]));
    let first = alice.encrypt(peer, "hello from libolm");
    assert_eq!(first.ty, 0);
    let created = bob_account
        .create_inbound_session(curve(&alice_curve), &first.pre_key())
        .unwrap();
    assert_eq!(&created.plaintext[..], b"hello from libolm");
    assert_eq!(created.session.session_id(), s(&r["session_id"]));
    (alice, Party::Olmo(created.session))
}

/// Tiny deterministic generator for conversation scripts.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// A long conversation with direction changes and bursts; every plaintext is checked, and
/// every message is a normal (type 1) message since both sides have received one.
pub(crate) fn long_exchange(
    peer: &mut Peer,
    a: &mut Party,
    b: &mut Party,
    rounds: usize,
    seed: u64,
) {
    let mut rng = Lcg(seed);
    let mut counter = 0;
    for round in 0..rounds {
        let a_sends = round % 2 == 0 || rng.next(3) == 0;
        let burst = 1 + rng.next(5) as usize;
        let (from, to) = if a_sends {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        let mut sent = Vec::new();
        for _ in 0..burst {
            counter += 1;
            let text = match counter % 7 {
                0 => format!("{counter}: {}", "long ".repeat(400)),
                3 => format!("{counter}: ünïcødé ✓ 🔐"),
                _ => format!("{counter} from {} in round {round}", from.name()),
            };
            let wire = from.encrypt(peer, &text);
            assert_eq!(
                wire.ty,
                1,
                "{} sent a pre-key message mid-conversation",
                from.name()
            );
            sent.push((wire, text));
        }
        for (wire, text) in &sent {
            expect_decrypt(peer, to, wire, text);
        }
    }
}

/// Establishes both directions (Alice's first message was already decrypted by Bob; Bob
/// replies, Alice decrypts) so the rest of the conversation is normal messages.
pub(crate) fn bob_replies(peer: &mut Peer, alice: &mut Party, bob: &mut Party) {
    let reply = bob.encrypt(peer, "reply from bob");
    assert_eq!(
        reply.ty,
        1,
        "{} (Bob) must send normal messages",
        bob.name()
    );
    expect_decrypt(peer, alice, &reply, "reply from bob");
    let next = alice.encrypt(peer, "alice after reply");
    assert_eq!(
        next.ty,
        1,
        "{} (Alice) must switch to normal messages",
        alice.name()
    );
    expect_decrypt(peer, bob, &next, "alice after reply");
}

/// A new libolm Alice starts a session with `key` of olmo's `bob` account and sends `text`.
pub(crate) fn lib_alice_to(
    peer: &mut Peer,
    bob: &Account,
    key: Curve25519PublicKey,
    text: &str,
) -> (String, String, Wire) {
    let (alice, alice_curve, _) = lib_account(peer);
    let r = peer.call(json!({
        "op": "outbound_session", "account": alice,
        "identity_key": bob.curve25519_key().to_base64(), "one_time_key": key.to_base64(),
    }));
    let session = s(&r["session"]);
    let wire = Party::Lib(session.clone()).encrypt(peer, text);
    (session, alice_curve, wire)
}

pub(crate) const PICKLE_KEY: &str = "pickle passphrase ✓";
