//! An olmo machine and a matrix-nio 0.26 device (its real `nio.crypto.Olm`, through
//! tests/peers/nio_machine_peer.py) on the harness homeserver: key uploads and queries, Olm
//! to-device both ways, room keys and messages both ways, rotation on each side, replays,
//! one-time key top-ups, and wedged sessions replaced from either side.
//!
//! Forwarded keys are not tested against nio: nio accepts only forwards it requested, and the
//! machine has no key import that nio's export could feed.

use olmo::matrix::{ToDeviceError, ToDeviceOutcome, UnableToDecrypt};
use olmo::store::block_on;
use serde_json::{Value, json};

use super::common::peer::Peer;
use super::harness::Homeserver;
use super::{Client, NOW, body};

const ROOM: &str = "!nio:example.org";
const OLMO: &str = "@olmo:example.org";
const OLMO_DEVICE: &str = "OLMO";
const NIO: &str = "@nio:example.org";
const NIO_DEVICE: &str = "NIO";
const MEMBERS: [&str; 2] = [OLMO, NIO];

/// The nio device: its peer process, driven like nio's client drives its machine, with the
/// harness as its homeserver.
struct Nio {
    peer: Peer,
    curve25519: String,
    ed25519: String,
    sent: u64,
}

impl Nio {
    fn new(hs: &mut Homeserver) -> Self {
        hs.join(NIO, NIO_DEVICE);
        let mut peer = Peer::nio_machine();
        let keys = peer.call(json!({"op": "create", "user_id": NIO, "device_id": NIO_DEVICE}));
        let mut nio = Self {
            peer,
            curve25519: keys["curve25519"].as_str().unwrap().to_owned(),
            ed25519: keys["ed25519"].as_str().unwrap().to_owned(),
            sent: 0,
        };
        assert!(nio.upload(hs));
        nio
    }

    fn call(&mut self, op: &str, fields: Value) -> Value {
        let mut request = fields;
        request["op"] = op.into();
        self.peer.call(request)
    }

    fn handle(hs: &mut Homeserver, endpoint: &str, body: &Value) -> Value {
        hs.handle(
            NIO,
            NIO_DEVICE,
            &format!("/_matrix/client/v3/{endpoint}"),
            body,
        )
    }

    /// Uploads what nio wants to upload; whether it wanted to.
    fn upload(&mut self, hs: &mut Homeserver) -> bool {
        let body = self.call("keys_upload", json!({}))["body"].clone();
        if body.is_null() {
            return false;
        }
        let response = Self::handle(hs, "keys/upload", &body);
        self.call("keys_upload_response", json!({ "body": response }));
        true
    }

    /// Queries `users`' devices; nio's `changed` map.
    fn query(&mut self, hs: &mut Homeserver, users: &[&str]) -> Value {
        let body = self.call("keys_query_request", json!({ "users": users }))["body"].clone();
        assert!(!body.is_null(), "nio had nothing to query");
        let response = Self::handle(hs, "keys/query", &body);
        self.call("keys_query_response", json!({ "body": response }))["changed"].clone()
    }

    /// Claims one-time keys for the devices nio has no session with (or wedged ones); the
    /// devices it now has a session with.
    fn claim(&mut self, hs: &mut Homeserver, users: &[&str]) -> Value {
        let body = self.call("keys_claim_request", json!({ "users": users }))["body"].clone();
        assert!(!body.is_null(), "nio had nothing to claim");
        let response = Self::handle(hs, "keys/claim", &body);
        self.call("keys_claim_response", json!({ "body": response }))["sessions"].clone()
    }

    fn send_to_device(&mut self, hs: &mut Homeserver, event_type: &str, messages: &Value) {
        self.sent += 1;
        let path = format!("sendToDevice/{event_type}/nio-{}", self.sent);
        Self::handle(hs, &path, &json!({ "messages": messages }));
    }

    /// Sends nio's queued to-device messages (m.dummy, key requests); their types.
    fn send_outgoing(&mut self, hs: &mut Homeserver) -> Vec<String> {
        let requests = self.call("outgoing_to_device", json!({}))["requests"].clone();
        let mut types = Vec::new();
        for request in requests.as_array().unwrap() {
            let event_type = request["type"].as_str().unwrap();
            self.send_to_device(hs, event_type, &request["messages"]);
            types.push(event_type.to_owned());
        }
        types
    }

    /// Hands nio the to-device events the server holds for it, and its key count; nio's
    /// results, one per event.
    fn sync(&mut self, hs: &mut Homeserver) -> Vec<Value> {
        let sync = hs.sync(NIO, NIO_DEVICE);
        self.receive(&sync.to_device)
    }

    fn receive(&mut self, events: &[Value]) -> Vec<Value> {
        let results = self.call("receive_to_device", json!({ "events": events }));
        results["results"].as_array().unwrap().clone()
    }

    /// Shares nio's room session with the members' devices it has a session with, and sends
    /// it; the peer's answer (session id, whether a new session was shared).
    fn share(&mut self, hs: &mut Homeserver) -> Value {
        let share = self.call(
            "share_room_key",
            json!({ "room_id": ROOM, "users": MEMBERS }),
        );
        assert_eq!(share["without_session"], json!({}), "{share}");
        if share["shared"] == json!(true) {
            self.send_to_device(hs, "m.room.encrypted", &share["messages"]);
        }
        share
    }

    /// A room message from nio, as the server would hand it to others.
    fn send(&mut self, text: &str) -> Value {
        let content = self.call(
            "encrypt_room",
            json!({
                "room_id": ROOM,
                "type": "m.room.message",
                "content": {"msgtype": "m.text", "body": text},
            }),
        )["content"]
            .clone();
        self.sent += 1;
        json!({
            "type": "m.room.encrypted",
            "sender": NIO,
            "event_id": format!("$nio-{}", self.sent),
            "origin_server_ts": NOW.as_millis() + self.sent,
            "content": content,
        })
    }

    /// nio's decryption of a room event: its body.
    fn read(&mut self, event: &Value) -> String {
        let decrypted = self.call("decrypt_room", json!({ "room_id": ROOM, "event": event }));
        assert_eq!(decrypted["type"], "m.room.message", "{decrypted}");
        decrypted["content"]["body"].as_str().unwrap().to_owned()
    }
}

/// An olmo machine and a nio device that uploaded their keys and queried each other.
fn introduced() -> (Homeserver, Client, Nio) {
    let mut hs = Homeserver::new();
    let mut olmo = Client::new(&mut hs, OLMO, OLMO_DEVICE, 41);
    let mut nio = Nio::new(&mut hs);
    block_on(olmo.machine.update_tracked_users(&MEMBERS, &mut olmo.rng)).unwrap();
    olmo.flush(&mut hs);
    assert_eq!(nio.query(&mut hs, &[OLMO]), json!({ OLMO: [OLMO_DEVICE] }));
    (hs, olmo, nio)
}

/// Both sides with Olm sessions (each claimed the other's one-time key) and each other's room
/// keys, after one message each way.
fn connected() -> (Homeserver, Client, Nio) {
    let (mut hs, mut olmo, mut nio) = introduced();
    assert_eq!(nio.claim(&mut hs, &[OLMO]), json!({ OLMO: [OLMO_DEVICE] }));
    olmo.share(&mut hs, ROOM, &MEMBERS);
    let [received] = &nio.sync(&mut hs)[..] else {
        panic!("one room key expected")
    };
    assert_eq!(received["type"], "m.room_key", "{received}");
    assert_eq!(received["room_key_stored"], true, "{received}");
    assert_eq!(nio.read(&olmo.send(ROOM, "hello nio")), "hello nio");

    nio.share(&mut hs);
    let outcomes = olmo.sync(&mut hs);
    assert!(
        matches!(&outcomes[..], [ToDeviceOutcome::Decrypted(e)] if e.event_type == "m.room_key")
    );
    assert_eq!(
        body(&olmo.read(ROOM, &nio.send("hello olmo")).unwrap()),
        "hello olmo"
    );
    (hs, olmo, nio)
}

#[test]
fn each_side_takes_the_others_self_signed_device_keys() {
    let (_hs, olmo, mut nio) = introduced();
    let devices = block_on(olmo.machine.devices(NIO)).unwrap();
    let [device] = &devices[..] else {
        panic!("olmo knows {devices:?}")
    };
    assert_eq!(
        (
            device.device_id.as_str(),
            device.curve25519.as_str(),
            device.ed25519.as_str()
        ),
        (NIO_DEVICE, nio.curve25519.as_str(), nio.ed25519.as_str())
    );
    let listed = nio.call("devices", json!({ "user_id": OLMO }))["devices"].clone();
    let keys = olmo.machine.identity_keys();
    assert_eq!(listed[0]["device_id"], OLMO_DEVICE);
    assert_eq!(listed[0]["curve25519"], keys.curve25519.to_base64());
    assert_eq!(listed[0]["ed25519"], keys.ed25519.to_base64());
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn olm_and_room_keys_both_ways_with_one_time_keys_topped_up() {
    let (mut hs, mut olmo, mut nio) = introduced();

    // nio claims one of olmo's 50 keys; olmo's next sync uploads one more.
    assert_eq!(nio.claim(&mut hs, &[OLMO]), json!({ OLMO: [OLMO_DEVICE] }));
    assert_eq!(hs.sync(OLMO, OLMO_DEVICE).one_time_key_count, 49);
    olmo.sync(&mut hs);
    assert_eq!(hs.sync(OLMO, OLMO_DEVICE).one_time_key_count, 50);

    // olmo claims one of nio's, shares its room key over Olm; nio's count is topped up too.
    let share = olmo.share(&mut hs, ROOM, &MEMBERS);
    assert!(share.without_session.is_empty());
    let nio_count = hs.sync(NIO, NIO_DEVICE);
    assert_eq!(nio_count.one_time_key_count, 49);
    let [received] = &nio.receive(&nio_count.to_device)[..] else {
        panic!("one room key expected")
    };
    assert_eq!(received["decrypted"], true, "{received}");
    assert_eq!(received["type"], "m.room_key");
    assert_eq!(received["sender_device"], OLMO_DEVICE);
    assert_eq!(received["room_key_stored"], true);
    let upload = nio.call("otk_count", json!({"signed_curve25519": 49}));
    assert_eq!(upload["upload_needed"], true);
    assert!(nio.upload(&mut hs));
    assert_eq!(hs.sync(NIO, NIO_DEVICE).one_time_key_count, 50);

    let first = olmo.send(ROOM, "hello nio");
    let second = olmo.send(ROOM, "second");
    assert_eq!(nio.read(&second), "second");
    assert_eq!(nio.read(&first), "hello nio");

    // nio shares its own session over Olm (on the session it made from olmo's key).
    let share = nio.share(&mut hs);
    assert_eq!(share["shared"], true);
    let outcomes = olmo.sync(&mut hs);
    let [ToDeviceOutcome::Decrypted(key)] = &outcomes[..] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(key.event_type, "m.room_key");
    assert_eq!(key.sender, NIO);
    assert_eq!(key.sender_key.as_deref(), Some(nio.curve25519.as_str()));
    assert_eq!(key.content["session_id"], share["session_id"]);

    let reply = nio.send("hello olmo");
    let read = olmo.read(ROOM, &reply).unwrap();
    assert_eq!(body(&read), "hello olmo");
    assert_eq!(read.sender, NIO);
    assert_eq!(read.sender_device.as_deref(), Some(NIO_DEVICE));
    assert_eq!(read.session_id, share["session_id"].as_str().unwrap());
    assert_eq!(read.message_index, 0);
    assert!(!read.forwarded && !read.verified);
    // olmo reads its own messages too, and nio's again (the same event is no replay).
    assert_eq!(body(&olmo.read(ROOM, &first).unwrap()), "hello nio");
    assert_eq!(body(&olmo.read(ROOM, &reply).unwrap()), "hello olmo");
}

#[test]
fn a_replayed_nio_event_is_caught_by_olmo() {
    let (_hs, mut olmo, mut nio) = connected();
    let event = nio.send("once");
    assert_eq!(body(&olmo.read(ROOM, &event).unwrap()), "once");
    let mut replayed = event.clone();
    replayed["event_id"] = "$replayed".into();
    let first_event_id = event["event_id"].as_str().unwrap().to_owned();
    assert_eq!(
        olmo.read(ROOM, &replayed),
        Err(UnableToDecrypt::Replay {
            index: 1,
            first_event_id
        })
    );
}

#[test]
fn rotation_on_either_side_reaches_the_other() {
    let (mut hs, mut olmo, mut nio) = connected();
    let before = olmo.send(ROOM, "before");

    // olmo rotates (as when a member leaves): nio gets the new session and reads both.
    block_on(olmo.machine.invalidate_room_key(ROOM, &mut olmo.rng)).unwrap();
    olmo.share(&mut hs, ROOM, &MEMBERS);
    let [received] = &nio.sync(&mut hs)[..] else {
        panic!("one room key expected")
    };
    let after = olmo.send(ROOM, "after olmo rotated");
    assert_ne!(
        after["content"]["session_id"],
        before["content"]["session_id"]
    );
    assert_eq!(
        received["content"]["session_id"],
        after["content"]["session_id"]
    );
    assert_eq!(nio.read(&after), "after olmo rotated");
    assert_eq!(nio.read(&before), "before");

    // A member leaving rotates too: olmo shares with itself alone, then with nio again.
    olmo.share(&mut hs, ROOM, &[OLMO]);
    let alone = olmo.send(ROOM, "alone");
    assert!(nio.sync(&mut hs).is_empty());
    assert_ne!(
        alone["content"]["session_id"],
        after["content"]["session_id"]
    );
    olmo.share(&mut hs, ROOM, &MEMBERS);
    assert_eq!(nio.sync(&mut hs).len(), 1);
    // A member joining needs no rotation: nio gets the session from its current index.
    let back = olmo.send(ROOM, "nio is back");
    assert_eq!(
        back["content"]["session_id"],
        alone["content"]["session_id"]
    );
    let unknown = nio
        .peer
        .try_call(json!({"op": "decrypt_room", "room_id": ROOM, "event": alone}));
    assert!(unknown.is_err(), "{unknown:?}");
    assert_eq!(nio.read(&back), "nio is back");

    // nio rotates: olmo gets the new session and reads both of nio's sessions.
    let old = nio.send("old session");
    let old_session = nio.call("room_key_info", json!({ "room_id": ROOM }))["session_id"].clone();
    let rotated = nio.call("rotate_room_key", json!({ "room_id": ROOM }));
    assert_eq!(rotated["invalidated"], true);
    let share = nio.share(&mut hs);
    assert_eq!(share["shared"], true);
    assert_ne!(share["session_id"], old_session);
    let outcomes = olmo.sync(&mut hs);
    assert!(
        matches!(&outcomes[..], [ToDeviceOutcome::Decrypted(e)] if e.event_type == "m.room_key")
    );
    let new = nio.send("new session");
    assert_eq!(new["content"]["session_id"], share["session_id"]);
    assert_eq!(body(&olmo.read(ROOM, &new).unwrap()), "new session");
    assert_eq!(body(&olmo.read(ROOM, &old).unwrap()), "old session");
}

/// The ciphertext for `recipient_key` in an Olm to-device event, tampered with.
fn tamper(event: &mut Value, recipient_key: &str) -> u64 {
    let ciphertext = &mut event["content"]["ciphertext"][recipient_key];
    let body = ciphertext["body"].as_str().unwrap().to_owned();
    let (kept, tail) = body.split_at(body.len() - 4);
    let replaced = if tail == "AAAA" { "BBBB" } else { "AAAA" };
    ciphertext["body"] = format!("{kept}{replaced}").into();
    ciphertext["type"].as_u64().unwrap()
}

#[test]
fn olmo_replaces_a_session_nio_wedged() {
    let (mut hs, mut olmo, mut nio) = connected();
    let olmo_key = olmo.machine.identity_keys().curve25519.to_base64();

    // A message on the established session that olmo cannot decrypt.
    let sent = nio.call(
        "encrypt_to_device",
        json!({"user_id": OLMO, "device_id": OLMO_DEVICE, "type": "m.test", "content": {"n": 1}}),
    );
    nio.send_to_device(&mut hs, "m.room.encrypted", &sent["messages"]);
    let mut sync = hs.sync(OLMO, OLMO_DEVICE);
    assert_eq!(tamper(&mut sync.to_device[0], &olmo_key), 1);
    let changes = olmo::matrix::SyncChanges {
        to_device_events: &sync.to_device,
        ..Default::default()
    };
    let outcomes = block_on(
        olmo.machine
            .receive_sync_changes(changes, &[], &mut olmo.rng),
    )
    .unwrap();
    assert_eq!(
        outcomes,
        vec![ToDeviceOutcome::Failed(ToDeviceError::NoSession)]
    );

    // olmo claims a new key of nio's device and tells it with an m.dummy on the new session.
    let claim = block_on(olmo.machine.missing_sessions(&[NIO], &mut olmo.rng))
        .unwrap()
        .expect("the wedged device is claimed for");
    assert_eq!(
        claim.body,
        json!({"one_time_keys": { NIO: { NIO_DEVICE: "signed_curve25519" } }})
    );
    let response = hs.handle(OLMO, OLMO_DEVICE, &claim.endpoint().1, &claim.body);
    block_on(
        olmo.machine
            .mark_request_as_sent(&claim.id, &response, &mut olmo.rng),
    )
    .unwrap();
    olmo.flush(&mut hs);
    let [dummy] = &nio.sync(&mut hs)[..] else {
        panic!("one m.dummy expected")
    };
    assert_eq!(dummy["decrypted"], true, "{dummy}");
    assert_eq!(dummy["type"], "m.dummy");
    assert!(
        block_on(olmo.machine.missing_sessions(&[NIO], &mut olmo.rng))
            .unwrap()
            .is_none()
    );

    // Both directions work again.
    let again = nio.call(
        "encrypt_to_device",
        json!({"user_id": OLMO, "device_id": OLMO_DEVICE, "type": "m.test", "content": {"n": 2}}),
    );
    nio.send_to_device(&mut hs, "m.room.encrypted", &again["messages"]);
    let outcomes = olmo.sync(&mut hs);
    let [ToDeviceOutcome::Decrypted(event)] = &outcomes[..] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(
        (event.event_type.as_str(), &event.content),
        ("m.test", &json!({"n": 2}))
    );
    block_on(olmo.machine.invalidate_room_key(ROOM, &mut olmo.rng)).unwrap();
    olmo.share(&mut hs, ROOM, &MEMBERS);
    assert_eq!(nio.sync(&mut hs)[0]["room_key_stored"], true);
    assert_eq!(nio.read(&olmo.send(ROOM, "unwedged")), "unwedged");
}

#[test]
fn nio_replaces_a_session_olmo_wedged() {
    let (mut hs, mut olmo, mut nio) = connected();

    // olmo rotates; its room key reaches nio tampered, on a session nio has used for an hour.
    block_on(olmo.machine.invalidate_room_key(ROOM, &mut olmo.rng)).unwrap();
    olmo.share(&mut hs, ROOM, &MEMBERS);
    let mut sync = hs.sync(NIO, NIO_DEVICE);
    let curve25519 = nio.curve25519.clone();
    assert_eq!(tamper(&mut sync.to_device[0], &curve25519), 1);
    nio.call("age_olm_sessions", json!({"minutes": 61}));
    let [refused] = &nio.receive(&sync.to_device)[..] else {
        panic!("one result expected")
    };
    assert_eq!(refused["decrypted"], false, "{refused}");
    let wedged = nio.call("wedged", json!({}))["devices"].clone();
    assert_eq!(wedged, json!({ OLMO: [OLMO_DEVICE] }));

    // nio claims a new key of olmo's device and sends an m.dummy on the new session.
    assert_eq!(nio.claim(&mut hs, &[]), json!({ OLMO: [OLMO_DEVICE] }));
    let sent = nio.send_outgoing(&mut hs);
    assert_eq!(sent, vec!["m.room.encrypted"]);
    let outcomes = olmo.sync(&mut hs);
    let [ToDeviceOutcome::Decrypted(dummy)] = &outcomes[..] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(dummy.event_type, "m.dummy");

    // nio's room key reaches olmo on the new session, and olmo's next rotation reaches nio.
    nio.call("rotate_room_key", json!({ "room_id": ROOM }));
    nio.share(&mut hs);
    assert_eq!(olmo.sync(&mut hs).len(), 1);
    assert_eq!(
        body(&olmo.read(ROOM, &nio.send("unwedged")).unwrap()),
        "unwedged"
    );
    block_on(olmo.machine.invalidate_room_key(ROOM, &mut olmo.rng)).unwrap();
    olmo.share(&mut hs, ROOM, &MEMBERS);
    assert_eq!(nio.sync(&mut hs)[0]["room_key_stored"], true);
    assert_eq!(nio.read(&olmo.send(ROOM, "and back")), "and back");
}

#[test]
fn neither_side_takes_device_keys_whose_self_signature_fails() {
    let mut hs = Homeserver::new();
    let mut olmo = Client::new(&mut hs, OLMO, OLMO_DEVICE, 42);
    let mut nio = Nio::new(&mut hs);
    let olmo_ed25519 = olmo.machine.identity_keys().ed25519.to_base64();

    // The server swaps nio's Ed25519 key for olmo's: the self-signature no longer verifies.
    block_on(olmo.machine.update_tracked_users(&[NIO], &mut olmo.rng)).unwrap();
    let requests = block_on(olmo.machine.outgoing_requests(&mut olmo.rng)).unwrap();
    let [query] = &requests[..] else {
        panic!("one query expected")
    };
    let mut response = hs.handle(OLMO, OLMO_DEVICE, &query.endpoint().1, &query.body);
    let key_id = format!("ed25519:{NIO_DEVICE}");
    response["device_keys"][NIO][NIO_DEVICE]["keys"][&key_id] = olmo_ed25519.clone().into();
    block_on(
        olmo.machine
            .mark_request_as_sent(&query.id, &response, &mut olmo.rng),
    )
    .unwrap();
    assert!(block_on(olmo.machine.devices(NIO)).unwrap().is_empty());

    // And nio's view of olmo's keys with nio's Ed25519 key in them.
    let body = nio.call("keys_query_request", json!({ "users": [OLMO] }))["body"].clone();
    let mut response = Nio::handle(&mut hs, "keys/query", &body);
    let key_id = format!("ed25519:{OLMO_DEVICE}");
    response["device_keys"][OLMO][OLMO_DEVICE]["keys"][&key_id] = nio.ed25519.clone().into();
    let answer = nio.call("keys_query_response", json!({ "body": response }));
    assert_eq!(answer["changed"], json!({}), "{answer}");
    let listed = nio.call("devices", json!({ "user_id": OLMO }))["devices"].clone();
    assert_eq!(listed, json!([]));
}
