//! Bad input for the machine: malformed and forged to-device events, room events, key query
//! and claim responses, and inputs past the machine's limits. Each gets a typed error or
//! outcome, and the store is unchanged (byte for byte), or changed by exactly what the
//! machine legitimately records.

use olmo::crypto::Curve25519PublicKey;
use olmo::matrix::{
    MachineError, OLM_V1, SyncChanges, ToDeviceError, ToDeviceOutcome, UnableToDecrypt,
    signing_bytes,
};
use olmo::megolm::GroupSession;
use olmo::olm::{Account, Session};
use olmo::store::block_on;
use serde_json::{Value, json};

use super::common::rng::TestRng;
use super::harness::Homeserver;
use super::{Client, NOW};

const ROOM: &str = "!room:example.org";
const OTHER_ROOM: &str = "!other:example.org";
const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const MALLORY: &str = "@mallory:example.org";

/// A change to a forged Olm payload.
type PayloadEdit<'a> = Box<dyn Fn(&mut Value) + 'a>;

type Snapshot = Vec<(String, Vec<u8>, olmo::store::Record)>;

fn snapshot(client: &Client) -> Snapshot {
    client.machine.backend().snapshot()
}

/// Records added, removed or changed between two snapshots, as table names.
fn changed_tables(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut tables: Vec<String> = before
        .iter()
        .filter(|record| !after.contains(record))
        .chain(after.iter().filter(|record| !before.contains(record)))
        .map(|(table, _, _)| table.clone())
        .collect();
    tables.sort();
    tables.dedup();
    tables
}

/// Hands `events` to the client as a sync's to-device events, and nothing else.
fn deliver(client: &mut Client, events: &[Value]) -> Vec<ToDeviceOutcome> {
    let changes = SyncChanges {
        to_device_events: events,
        ..SyncChanges::default()
    };
    block_on(
        client
            .machine
            .receive_sync_changes(changes, &[], &mut client.rng),
    )
    .unwrap()
}

/// Delivers one event that must be refused with `expected`, leaving the store byte-identical.
fn refused(client: &mut Client, event: &Value, expected: &ToDeviceError) {
    let before = snapshot(client);
    let outcomes = deliver(client, std::slice::from_ref(event));
    assert_eq!(
        outcomes,
        vec![ToDeviceOutcome::Failed(expected.clone())],
        "{event}"
    );
    assert!(snapshot(client) == before, "the store changed for {event}");
}

/// Alice and Bob in a room: Bob shared his room key, Alice knows Bob's device but has not
/// read the key yet. Returns the still undelivered to-device events for Alice (one pre-key
/// message with Bob's room key).
fn alice_and_bob(hs: &mut Homeserver, seed: u64) -> (Client, Client, Vec<Value>) {
    let mut alice = Client::new(hs, ALICE, "ALICE", seed);
    let mut bob = Client::new(hs, BOB, "BOB", seed + 1);
    bob.share(hs, ROOM, &[ALICE, BOB]);
    block_on(alice.machine.update_tracked_users(&[BOB], &mut alice.rng)).unwrap();
    alice.flush(hs);
    let events = hs.sync(ALICE, "ALICE").to_device;
    assert_eq!(events.len(), 1);
    (alice, bob, events)
}

/// A device outside the machine (built on `olmo::olm` directly) with an Olm session to a
/// machine's device, able to encrypt any payload to it.
struct Forger {
    account: Account,
    session: Session,
    recipient_curve25519: String,
}

impl Forger {
    /// Claims one of `user`'s `device`'s one-time keys on the server and starts a session.
    fn new(hs: &mut Homeserver, client: &Client, seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let account = Account::with_rng(&mut rng);
        let user = client.machine.user_id().to_owned();
        let device = client.machine.device_id().to_owned();
        let claim =
            json!({ "one_time_keys": { user.clone(): { device.clone(): "signed_curve25519" } } });
        let response = hs.handle(MALLORY, "MALLORY", "/keys/claim", &claim);
        let keys = response["one_time_keys"][&user][&device]
            .as_object()
            .unwrap();
        let (_, key) = keys.iter().next().unwrap();
        let one_time_key = Curve25519PublicKey::from_base64(key["key"].as_str().unwrap()).unwrap();
        let identity = client.machine.identity_keys();
        let session = account
            .create_outbound_session_with_rng(identity.curve25519, one_time_key, &mut rng)
            .unwrap();
        Self {
            account,
            session,
            recipient_curve25519: identity.curve25519.to_base64(),
        }
    }

    fn curve25519(&self) -> String {
        self.account.curve25519_key().to_base64()
    }

    fn ed25519(&self) -> String {
        self.account.ed25519_key().to_base64()
    }

    /// A to-device event from `sender` carrying `payload`, encrypted to the recipient.
    fn event(&mut self, sender: &str, payload: &Value) -> Value {
        let message = self
            .session
            .encrypt(&serde_json::to_vec(payload).unwrap())
            .unwrap();
        let (message_type, body) = message.to_parts();
        json!({
            "type": "m.room.encrypted",
            "sender": sender,
            "content": {
                "algorithm": OLM_V1,
                "sender_key": self.curve25519(),
                "ciphertext": { self.recipient_curve25519.clone(): { "type": message_type, "body": body } },
            },
        })
    }

    /// A payload that passes every check for `recipient` (a machine's user and Ed25519 key).
    fn payload(&self, sender: &str, recipient: &Client, event_type: &str, content: Value) -> Value {
        json!({
            "type": event_type,
            "content": content,
            "sender": sender,
            "recipient": recipient.machine.user_id(),
            "recipient_keys": { "ed25519": recipient.machine.identity_keys().ed25519.to_base64() },
            "keys": { "ed25519": self.ed25519() },
        })
    }
}

fn ciphertext_body(event: &Value) -> (String, String) {
    let (key, ciphertext) = event["content"]["ciphertext"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    (key.clone(), ciphertext["body"].as_str().unwrap().to_owned())
}

fn with_body(event: &Value, body: Value) -> Value {
    let (key, _) = ciphertext_body(event);
    let mut event = event.clone();
    event["content"]["ciphertext"][&key]["body"] = body;
    event
}

/// A base64 body with one bit of its decoded bytes flipped at `position`.
fn bit_flipped(body: &str, position: usize) -> String {
    let mut bytes = olmo::crypto::base64::decode(body).unwrap();
    let position = position.min(bytes.len() - 1);
    bytes[position] ^= 0x01;
    olmo::crypto::base64::encode(&bytes)
}

fn truncated(body: &str) -> String {
    let bytes = olmo::crypto::base64::decode(body).unwrap();
    olmo::crypto::base64::encode(&bytes[..bytes.len() - 9])
}

#[test]
fn malformed_to_device_events_are_refused_and_change_nothing() {
    let mut hs = Homeserver::new();
    let (mut alice, _bob, events) = alice_and_bob(&mut hs, 10);
    let good = &events[0];
    let malformed = |what| ToDeviceError::Malformed(what);
    let mut cases: Vec<(Value, ToDeviceError)> = Vec::new();
    let mut without = |path: &[&str], what| {
        let mut event = good.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut object = &mut event;
        for parent in parents {
            object = &mut object[*parent];
        }
        object.as_object_mut().unwrap().remove(*last);
        cases.push((event, malformed(what)));
    };
    without(&["sender"], "sender");
    without(&["type"], "type");
    without(&["content"], "content");
    without(&["content", "algorithm"], "algorithm");
    without(&["content", "sender_key"], "sender_key");
    let mut edited = |edit: &dyn Fn(&mut Value), expected: ToDeviceError| {
        let mut event = good.clone();
        edit(&mut event);
        cases.push((event, expected));
    };
    edited(&|e| e["sender"] = json!(7), malformed("sender"));
    edited(
        &|e| e["type"] = json!(["m.room.encrypted"]),
        malformed("type"),
    );
    edited(
        &|e| e["content"]["algorithm"] = json!("m.megolm.v1.aes-sha2"),
        malformed("algorithm"),
    );
    edited(
        &|e| e["content"]["algorithm"] = json!("m.olm.v2.unknown"),
        malformed("algorithm"),
    );
    edited(
        &|e| e["content"]["sender_key"] = json!("not a key"),
        malformed("sender_key"),
    );
    edited(
        &|e| e["content"]["sender_key"] = json!(42),
        malformed("sender_key"),
    );
    edited(
        &|e| {
            let (key, _) = ciphertext_body(e);
            let ciphertext = e["content"]["ciphertext"][&key].take();
            e["content"]["ciphertext"] = json!({ "someone else": ciphertext });
        },
        ToDeviceError::NotForUs,
    );
    edited(
        &|e| e["content"]["ciphertext"] = json!("text"),
        ToDeviceError::NotForUs,
    );
    edited(
        &|e| {
            let (key, _) = ciphertext_body(e);
            e["content"]["ciphertext"][&key]["type"] = json!("0");
        },
        malformed("ciphertext type"),
    );
    edited(
        &|e| {
            let (key, _) = ciphertext_body(e);
            e["content"]["ciphertext"][&key]["type"] = json!(256);
        },
        malformed("ciphertext type"),
    );
    edited(
        &|e| {
            let (key, _) = ciphertext_body(e);
            e["content"]["ciphertext"][&key]["type"] = json!(7);
        },
        malformed("olm message"),
    );
    cases.push((with_body(good, json!(12)), malformed("ciphertext body")));
    cases.push((
        with_body(good, json!("not base64 at all!")),
        malformed("olm message"),
    ));
    cases.push((
        with_body(good, json!("A".repeat(64 * 1024 + 4))),
        malformed("ciphertext too large"),
    ));
    let (_, body) = ciphertext_body(good);
    cases.push((
        with_body(good, json!(truncated(&body))),
        malformed("olm message"),
    ));
    for (event, expected) in &cases {
        refused(&mut alice, event, expected);
    }

    // Bit flips anywhere in the pre-key message: refused, and the one-time key it names is
    // kept, so the real message still opens afterwards.
    let length = olmo::crypto::base64::decode(&body).unwrap().len();
    for position in (0..length).step_by(7) {
        let flipped = with_body(good, json!(bit_flipped(&body, position)));
        let before = snapshot(&alice);
        let outcome = deliver(&mut alice, std::slice::from_ref(&flipped));
        assert!(
            matches!(&outcome[..], [ToDeviceOutcome::Failed(_)]),
            "bit {position}: {outcome:?}"
        );
        assert!(
            snapshot(&alice) == before,
            "bit {position} changed the store"
        );
    }
    let outcome = deliver(&mut alice, std::slice::from_ref(good));
    assert!(
        matches!(&outcome[..], [ToDeviceOutcome::Decrypted(e)] if e.event_type == "m.room_key")
    );
}

#[test]
fn a_broken_normal_message_records_only_a_wedged_session() {
    let mut hs = Homeserver::new();
    let (mut alice, mut bob, events) = alice_and_bob(&mut hs, 20);
    deliver(&mut alice, &events);
    alice.share(&mut hs, ROOM, &[ALICE, BOB]);
    bob.sync(&mut hs);
    // Bob has now received from Alice, so his next message to her is a normal (type 1) one.
    block_on(bob.machine.invalidate_room_key(ROOM, &mut bob.rng)).unwrap();
    bob.share(&mut hs, ROOM, &[ALICE, BOB]);
    let events = hs.sync(ALICE, "ALICE").to_device;
    let good = &events[0];
    let (key, body) = ciphertext_body(good);
    assert_eq!(good["content"]["ciphertext"][&key]["type"], 1);

    let before = snapshot(&alice);
    let flipped = with_body(good, json!(bit_flipped(&body, 40)));
    let outcome = deliver(&mut alice, &[flipped]);
    assert_eq!(
        outcome,
        vec![ToDeviceOutcome::Failed(ToDeviceError::NoSession)]
    );
    let after = snapshot(&alice);
    assert_eq!(changed_tables(&before, &after), ["matrix.wedged_devices"]);
    assert_eq!(after.len(), before.len() + 1);

    // The session itself is untouched: the real message still decrypts.
    let outcome = deliver(&mut alice, std::slice::from_ref(good));
    assert!(matches!(&outcome[..], [ToDeviceOutcome::Decrypted(_)]));
}

#[test]
fn forged_olm_payloads_are_refused_and_change_nothing() {
    let mut hs = Homeserver::new();
    let (mut alice, _bob, events) = alice_and_bob(&mut hs, 30);
    deliver(&mut alice, &events); // Alice knows Bob's device now
    let bob_ed25519 = block_on(alice.machine.devices(BOB)).unwrap()[0]
        .ed25519
        .clone();
    let mismatch = ToDeviceError::Mismatch;
    let cases: Vec<(&str, PayloadEdit<'_>, ToDeviceError)> = vec![
        (
            "sender",
            Box::new(|p| p["sender"] = json!(BOB)),
            mismatch("sender"),
        ),
        (
            "no sender",
            Box::new(|p| drop(p.as_object_mut().unwrap().remove("sender"))),
            mismatch("sender"),
        ),
        (
            "recipient",
            Box::new(|p| p["recipient"] = json!(BOB)),
            mismatch("recipient"),
        ),
        (
            "recipient_keys",
            Box::new(|p| p["recipient_keys"]["ed25519"] = json!(bob_ed25519.clone())),
            mismatch("recipient_keys"),
        ),
        (
            "no recipient_keys",
            Box::new(|p| drop(p.as_object_mut().unwrap().remove("recipient_keys"))),
            mismatch("recipient_keys"),
        ),
        (
            "no keys",
            Box::new(|p| drop(p.as_object_mut().unwrap().remove("keys"))),
            mismatch("keys"),
        ),
    ];
    for (seed, (name, edit, expected)) in cases.into_iter().enumerate() {
        let mut forger = Forger::new(&mut hs, &alice, 300 + seed as u64);
        let mut payload = forger.payload(MALLORY, &alice, "m.dummy", json!({}));
        edit(&mut payload);
        let event = forger.event(MALLORY, &payload);
        let before = snapshot(&alice);
        let outcome = deliver(&mut alice, std::slice::from_ref(&event));
        assert_eq!(outcome, vec![ToDeviceOutcome::Failed(expected)], "{name}");
        assert!(snapshot(&alice) == before, "{name}: the store changed");
    }

    // Bob's device named as the sender, with a key that is not his: refused.
    let mut forger = Forger::new(&mut hs, &alice, 390);
    let mut payload = forger.payload(BOB, &alice, "m.dummy", json!({}));
    payload["sender_device"] = json!("BOB");
    let event = forger.event(BOB, &payload);
    refused(&mut alice, &event, &mismatch("keys"));

    // The one-time keys those pre-key messages named were kept: the same payload, correct,
    // on a fresh session over one of them decrypts.
    let mut forger = Forger::new(&mut hs, &alice, 391);
    let payload = forger.payload(MALLORY, &alice, "m.dummy", json!({}));
    let outcome = deliver(&mut alice, &[forger.event(MALLORY, &payload)]);
    assert!(matches!(&outcome[..], [ToDeviceOutcome::Decrypted(_)]));
}

/// A Megolm session of Mallory's, its key delivered to Alice over a valid Olm payload, for a
/// room other than the one its events name, or used by events claiming another sender.
#[test]
fn room_events_naming_another_room_or_sender_are_refused() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, ALICE, "ALICE", 40);
    let mut rng = TestRng::new(41);
    let mut group = GroupSession::new_with_rng(olmo::megolm::Timestamp::from_millis(0), &mut rng);
    let mut forger = Forger::new(&mut hs, &alice, 42);
    let key = json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": OTHER_ROOM,
        "session_id": group.session_id(),
        "session_key": *group.session_key().to_base64(),
    });
    let payload = forger.payload(MALLORY, &alice, "m.room_key", key);
    let outcome = deliver(&mut alice, &[forger.event(MALLORY, &payload)]);
    assert!(matches!(&outcome[..], [ToDeviceOutcome::Decrypted(_)]));

    let mut event = |room: &str, sender: &str| {
        let plaintext =
            json!({"type": "m.room.message", "content": {"body": "x"}, "room_id": room});
        let message = group
            .encrypt(&serde_json::to_vec(&plaintext).unwrap())
            .unwrap();
        json!({
            "type": "m.room.encrypted",
            "sender": sender,
            "event_id": format!("${}", message.message_index()),
            "origin_server_ts": NOW.as_millis(),
            "content": {
                "algorithm": "m.megolm.v1.aes-sha2",
                "sender_key": forger.curve25519(),
                "session_id": group.session_id(),
                "ciphertext": message.to_base64(),
            },
        })
    };
    let another_room = event(ROOM, MALLORY);
    let another_sender = event(OTHER_ROOM, BOB);
    let fine = event(OTHER_ROOM, MALLORY);
    let before = snapshot(&alice);
    assert_eq!(
        alice.read(OTHER_ROOM, &another_room).unwrap_err(),
        UnableToDecrypt::SenderMismatch("the event names another room")
    );
    assert_eq!(
        alice.read(OTHER_ROOM, &another_sender).unwrap_err(),
        UnableToDecrypt::SenderMismatch("the room key came from another user")
    );
    // In the room its key names, under its claimed room id: no key there.
    assert!(matches!(
        alice.read(ROOM, &another_room).unwrap_err(),
        UnableToDecrypt::NoSession { .. }
    ));
    assert!(snapshot(&alice) == before);
    assert_eq!(alice.read(OTHER_ROOM, &fine).unwrap().content["body"], "x");
}

#[test]
fn malformed_room_events_are_refused_and_change_nothing() {
    let mut hs = Homeserver::new();
    let (mut alice, mut bob, events) = alice_and_bob(&mut hs, 50);
    deliver(&mut alice, &events);
    let good = bob.send(ROOM, "hello");
    let ciphertext = good["content"]["ciphertext"].as_str().unwrap().to_owned();
    let malformed = UnableToDecrypt::Malformed;
    let mut cases: Vec<(Value, UnableToDecrypt)> = Vec::new();
    for (path, expected) in [
        (&["sender"][..], malformed("sender or event_id")),
        (&["event_id"], malformed("sender or event_id")),
        (&["content"], malformed("algorithm")),
        (&["content", "algorithm"], malformed("algorithm")),
        (
            &["content", "session_id"],
            malformed("session_id or ciphertext"),
        ),
        (
            &["content", "ciphertext"],
            malformed("session_id or ciphertext"),
        ),
    ] {
        let mut event = good.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut object = &mut event;
        for parent in parents {
            object = &mut object[*parent];
        }
        object.as_object_mut().unwrap().remove(*last);
        cases.push((event, expected));
    }
    let edits: Vec<(&str, Value, UnableToDecrypt)> = vec![
        ("sender", json!(1), malformed("sender or event_id")),
        ("algorithm", json!(OLM_V1), malformed("algorithm")),
        (
            "algorithm",
            json!("m.megolm.v2.unknown"),
            malformed("algorithm"),
        ),
        (
            "session_id",
            json!(["x"]),
            malformed("session_id or ciphertext"),
        ),
        (
            "ciphertext",
            json!("%%% not base64"),
            malformed("ciphertext"),
        ),
        (
            "ciphertext",
            json!(truncated(&ciphertext)),
            malformed("ciphertext"),
        ),
        (
            "session_id",
            json!("AAAA"),
            UnableToDecrypt::NoSession {
                session_id: "AAAA".into(),
            },
        ),
    ];
    for (field, value, expected) in edits {
        let mut event = good.clone();
        match field {
            "sender" => event[field] = value,
            _ => event["content"][field] = value,
        }
        cases.push((event, expected));
    }
    cases.push((json!(null), malformed("sender or event_id")));
    cases.push((json!("text"), malformed("sender or event_id")));
    let before = snapshot(&alice);
    for (event, expected) in &cases {
        assert_eq!(&alice.read(ROOM, event).unwrap_err(), expected, "{event}");
    }
    // Bit flips: the signature or MAC catches them, or the encoding does.
    let length = olmo::crypto::base64::decode(&ciphertext).unwrap().len();
    for position in (0..length).step_by(5) {
        let mut event = good.clone();
        event["content"]["ciphertext"] = json!(bit_flipped(&ciphertext, position));
        let error = alice.read(ROOM, &event).unwrap_err();
        assert!(
            matches!(
                error,
                UnableToDecrypt::BadSignature
                    | UnableToDecrypt::Malformed("ciphertext")
                    | UnableToDecrypt::UnknownIndex { .. }
                    | UnableToDecrypt::NoSession { .. }
            ),
            "bit {position}: {error:?}"
        );
    }
    // Past the batch limit.
    let many = vec![good.clone(); 10_001];
    let error = block_on(
        alice
            .machine
            .decrypt_room_events(ROOM, &many, &[], &mut alice.rng),
    )
    .unwrap_err();
    assert_eq!(error, malformed("batch too large"));
    assert!(snapshot(&alice) == before);
    assert_eq!(super::body(&alice.read(ROOM, &good).unwrap()), "hello");
}

#[test]
fn too_many_to_device_events_are_refused_whole() {
    let mut hs = Homeserver::new();
    let (mut alice, _bob, events) = alice_and_bob(&mut hs, 60);
    let many = vec![events[0].clone(); 1_001];
    let before = snapshot(&alice);
    let changes = SyncChanges {
        to_device_events: &many,
        ..SyncChanges::default()
    };
    let error = block_on(
        alice
            .machine
            .receive_sync_changes(changes, &[], &mut alice.rng),
    )
    .unwrap_err();
    assert_eq!(error, MachineError::TooLarge("to-device events"));
    assert!(snapshot(&alice) == before);
}

/// Sends the client's pending requests but the one of `kind`, whose id and body it returns.
fn pending(client: &mut Client, kind: &str) -> (String, Value) {
    let requests = block_on(client.machine.outgoing_requests(&mut client.rng)).unwrap();
    let request = requests
        .into_iter()
        .find(|r| r.endpoint().1.ends_with(kind))
        .unwrap();
    (request.id.clone(), request.body.clone())
}

/// Device keys signed by `account` for `user`'s `device`.
fn device_keys(account: &Account, user: &str, device: &str) -> Value {
    let mut keys = json!({
        "user_id": user,
        "device_id": device,
        "algorithms": [OLM_V1, "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{device}"): account.curve25519_key().to_base64(),
            format!("ed25519:{device}"): account.ed25519_key().to_base64(),
        },
    });
    let signature = account.sign(signing_bytes(&keys).unwrap().as_bytes());
    keys["signatures"] = json!({ user: { format!("ed25519:{device}"): signature.to_base64() } });
    keys
}

#[test]
fn forged_device_keys_in_a_query_response_are_not_trusted() {
    let mut hs = Homeserver::new();
    let (mut alice, _bob, events) = alice_and_bob(&mut hs, 70);
    deliver(&mut alice, &events);
    let bob_device = block_on(alice.machine.devices(BOB)).unwrap();
    assert_eq!(bob_device.len(), 1);

    // Bob's device list changed: Alice queries him again and gets a forged answer.
    let changes = SyncChanges {
        changed_users: &[BOB.to_owned()],
        ..SyncChanges::default()
    };
    block_on(
        alice
            .machine
            .receive_sync_changes(changes, &[], &mut alice.rng),
    )
    .unwrap();
    let (id, _) = pending(&mut alice, "/keys/query");
    let mut rng = TestRng::new(71);
    let impostor = Account::with_rng(&mut rng);
    let carol = Account::with_rng(&mut rng);
    let mut bad_signature = device_keys(&carol, BOB, "BADSIG");
    bad_signature["keys"]["curve25519:BADSIG"] = json!(impostor.curve25519_key().to_base64());
    let response = json!({
        "device_keys": { BOB: {
            // A changed Ed25519 key (validly self-signed) for Bob's known device.
            "BOB": device_keys(&impostor, BOB, "BOB"),
            // Device keys listed under another device id, and under another user.
            "OTHER": device_keys(&carol, BOB, "CAROL"),
            "CAROL": device_keys(&carol, "@carol:example.org", "CAROL"),
            // A self-signature that does not cover the keys.
            "BADSIG": bad_signature,
            "JUNK": "not an object",
        }},
        "failures": {},
    });
    let before = snapshot(&alice);
    block_on(
        alice
            .machine
            .mark_request_as_sent(&id, &response, &mut alice.rng),
    )
    .unwrap();
    // The machine records the query as answered (the request and the outdated mark are
    // removed, the device list rewritten), but trusts none of the forged entries.
    let after = snapshot(&alice);
    assert_eq!(
        changed_tables(&before, &after),
        [
            "matrix.devices",
            "matrix.outdated_users",
            "matrix.outgoing_requests"
        ]
    );
    assert_eq!(block_on(alice.machine.devices(BOB)).unwrap(), bob_device);
}

#[test]
fn malformed_or_oversized_query_responses_change_nothing() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, ALICE, "ALICE", 80);
    block_on(alice.machine.update_tracked_users(&[BOB], &mut alice.rng)).unwrap();
    let (id, _) = pending(&mut alice, "/keys/query");
    let mut rng = TestRng::new(81);
    let account = Account::with_rng(&mut rng);
    let keys = device_keys(&account, BOB, "D");
    let mut too_many = serde_json::Map::new();
    for index in 0..1_001 {
        too_many.insert(format!("D{index}"), keys.clone());
    }
    let cases = [
        (json!({}), MachineError::Json("device_keys")),
        (
            json!({"device_keys": []}),
            MachineError::Json("device_keys"),
        ),
        (json!("text"), MachineError::Json("device_keys")),
        (
            json!({ "device_keys": { BOB: too_many } }),
            MachineError::TooLarge("devices of one user"),
        ),
    ];
    let before = snapshot(&alice);
    for (response, expected) in cases {
        let error = block_on(
            alice
                .machine
                .mark_request_as_sent(&id, &response, &mut alice.rng),
        )
        .unwrap_err();
        assert_eq!(error, expected);
        assert!(snapshot(&alice) == before);
    }
    let error = block_on(alice.machine.mark_request_as_sent(
        "no such request",
        &json!({}),
        &mut alice.rng,
    ))
    .unwrap_err();
    assert_eq!(error, MachineError::UnknownRequest);
    assert!(snapshot(&alice) == before);
}

#[test]
fn forged_one_time_keys_in_a_claim_response_start_no_session() {
    let mut hs = Homeserver::new();
    let mut alice = Client::new(&mut hs, ALICE, "ALICE", 90);
    let _bob = Client::new(&mut hs, BOB, "BOB", 91);
    block_on(alice.machine.update_tracked_users(&[BOB], &mut alice.rng)).unwrap();
    alice.flush(&mut hs);
    let claim = block_on(alice.machine.missing_sessions(&[BOB], &mut alice.rng))
        .unwrap()
        .unwrap();
    let real = hs.handle(ALICE, "ALICE", "/keys/claim", &claim.body);
    let (key_id, signed) = real["one_time_keys"][BOB]["BOB"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let mut rng = TestRng::new(92);
    let other = Account::with_rng(&mut rng);
    let mut bad_signature = signed.clone();
    bad_signature["key"] = json!(other.curve25519_key().to_base64());
    let response = json!({
        "one_time_keys": {
            BOB: {
                "BOB": { key_id.clone(): bad_signature },
                "UNKNOWN": { key_id.clone(): signed.clone() },
            },
            "@nobody:example.org": { "X": { key_id.clone(): signed.clone() } },
        },
        "failures": {},
    });
    let before = snapshot(&alice);
    for malformed in [json!({}), json!({"one_time_keys": 3}), json!(null)] {
        let error = block_on(alice.machine.mark_request_as_sent(
            &claim.id,
            &malformed,
            &mut alice.rng,
        ))
        .unwrap_err();
        assert_eq!(error, MachineError::Json("one_time_keys"));
        assert!(snapshot(&alice) == before);
    }
    block_on(
        alice
            .machine
            .mark_request_as_sent(&claim.id, &response, &mut alice.rng),
    )
    .unwrap();
    // Only the request is gone; no session was started, so Bob's device still needs one.
    let after = snapshot(&alice);
    assert_eq!(
        changed_tables(&before, &after),
        ["matrix.outgoing_requests"]
    );
    assert_eq!(after.len() + 1, before.len());
    assert!(
        block_on(alice.machine.missing_sessions(&[BOB], &mut alice.rng))
            .unwrap()
            .is_some()
    );
}
