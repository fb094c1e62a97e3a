//! The Megolm part of the demonstration: a room of three, its key shared over Olm, a rotation
//! when a member leaves, a late joiner given a key from a later index, a bot's backlog and a
//! replayed event caught.

use olmo::megolm::{
    GroupSession, InboundGroupSession, MegolmMessage, ReplayRecord, RotationPolicy, SessionKey,
    Timestamp,
};
use olmo::olm::{Account, OlmMessage};
use serde_json::json;

use crate::olm_demo::fail;

/// A room member: an Olm account and the inbound sessions it holds.
struct Member {
    name: &'static str,
    account: Account,
    inbound: Vec<InboundGroupSession>,
}

impl Member {
    fn new(name: &'static str) -> Self {
        let mut account = Account::new();
        account.generate_one_time_keys(1);
        Self {
            name,
            account,
            inbound: Vec::new(),
        }
    }

    /// Reads a room message with whichever session it belongs to.
    fn read(&mut self, message: &MegolmMessage) -> String {
        let outcome = self
            .inbound
            .iter_mut()
            .find_map(|session| session.decrypt(message).ok());
        match outcome {
            Some(decrypted) => format!(
                "{:?} (index {})",
                String::from_utf8_lossy(&decrypted.plaintext),
                decrypted.message_index
            ),
            None => "cannot decrypt".to_owned(),
        }
    }
}

/// Sends `m.room_key` from `sender` to `member` inside a fresh Olm session, as a to-device
/// event would carry it.
fn share_over_olm(sender: &Account, member: &mut Member, room_id: &str, key: &SessionKey) {
    let (_, one_time_key) = member.account.unpublished_one_time_keys()[0];
    member.account.mark_keys_as_published();
    let mut session = sender
        .create_outbound_session(member.account.curve25519_key(), one_time_key)
        .unwrap_or_else(|_| fail("Olm session"));
    let content = json!({
        "type": "m.room_key",
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": room_id,
            "session_id": key.session_id(),
            "session_key": *key.to_base64(),
        },
    });
    let message = session
        .encrypt(content.to_string().as_bytes())
        .unwrap_or_else(|_| fail("Olm encrypt"));
    let OlmMessage::PreKey(pre_key) = &message else {
        fail("a first Olm message is a pre-key message")
    };
    let received = member
        .account
        .create_inbound_session(sender.curve25519_key(), pre_key)
        .unwrap_or_else(|_| fail("Olm inbound session"));
    member.account.generate_one_time_keys(1);
    let event: serde_json::Value =
        serde_json::from_slice(&received.plaintext).unwrap_or_else(|_| fail("m.room_key JSON"));
    let session_key = event["content"]["session_key"].as_str().unwrap_or_default();
    let key = SessionKey::from_base64(session_key).unwrap_or_else(|_| fail("session key"));
    member.inbound.push(InboundGroupSession::new(&key));
    println!(
        "  {} receives m.room_key over Olm ({} bytes of pre-key message), signature checked",
        member.name,
        pre_key.as_bytes().len()
    );
}

pub fn run() {
    println!("\n== Megolm: a room of three ==\n");
    let room_id = "!garden:example.org";
    let alice = Account::new();
    let mut bob = Member::new("Bob");
    let mut carol = Member::new("Carol");
    let start = Timestamp::from_millis(1_763_700_000_000);
    let policy = RotationPolicy::default();

    let mut outbound = GroupSession::new(start);
    println!("Alice creates session {}", outbound.session_id());
    for member in [&mut bob, &mut carol] {
        share_over_olm(&alice, member, room_id, &outbound.session_key());
    }
    let mut timeline = Vec::new();
    for text in ["Welcome to the garden.", "Tomatoes are in."] {
        let message = encrypt(&mut outbound, text);
        println!("  Bob reads   {}", bob.read(&message));
        println!("  Carol reads {}", carol.read(&message));
        timeline.push(message);
    }

    println!("\nCarol leaves the room: Alice invalidates the session.");
    outbound.invalidate();
    println!(
        "  rotation due: {:?}; encrypting now is refused: {}",
        outbound.rotation_due(&policy, start),
        outbound.encrypt(b"x").is_err()
    );
    let mut outbound = GroupSession::new(start);
    println!(
        "Alice creates session {} for Bob alone",
        outbound.session_id()
    );
    share_over_olm(&alice, &mut bob, room_id, &outbound.session_key());
    for text in ["Carol cannot read this.", "Nor this."] {
        let message = encrypt(&mut outbound, text);
        println!("  Bob reads   {}", bob.read(&message));
        println!("  Carol reads {}", carol.read(&message));
        timeline.push(message);
    }

    println!("\nDave joins late; Bob forwards the session from the next index on.");
    let bobs_copy = bob.inbound.last().unwrap_or_else(|| fail("Bob's session"));
    let exported = bobs_copy
        .export_at(outbound.message_index())
        .unwrap_or_else(|| fail("export"));
    let mut dave = InboundGroupSession::import(&exported);
    println!(
        "  Dave's copy starts at index {}; signed by the session itself: {}",
        dave.first_known_index(),
        dave.is_verified()
    );
    let late = encrypt(&mut outbound, "Hello Dave.");
    timeline.push(late.clone());
    let earlier = timeline.get(3).unwrap_or_else(|| fail("timeline"));
    match dave.decrypt(earlier) {
        Ok(_) => fail("Dave read history he was not given"),
        Err(error) => println!("  Dave on the earlier message: {error}"),
    }
    let read = dave
        .decrypt(&late)
        .unwrap_or_else(|_| fail("Dave decrypts"));
    println!(
        "  Dave reads {:?} (index {})",
        String::from_utf8_lossy(&read.plaintext),
        read.message_index
    );
    bot_catches_up(&outbound);
}

/// A bot that was offline reads a long backlog in one call, and catches a replayed event.
fn bot_catches_up(outbound: &GroupSession) {
    println!("\n== A bot catches up on 2,000 messages, delivered out of order ==\n");
    let mut sender = GroupSession::new(outbound.created_at());
    let mut bot = InboundGroupSession::new(&sender.session_key());
    let mut backlog: Vec<MegolmMessage> = (0..2000)
        .map(|i| {
            sender
                .encrypt(format!("event {i}").as_bytes())
                .unwrap_or_else(|_| fail("encrypt"))
        })
        .collect();
    backlog.reverse();
    let started = std::time::Instant::now();
    let results = bot.decrypt_backlog(&backlog);
    let opened = results.iter().filter(|result| result.is_ok()).count();
    println!(
        "  decrypted {opened}/{} in {:.1} ms (signatures verified in batches, one ratchet walk)",
        backlog.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    // Only a decrypted message can be recorded, so a forged one cannot claim an index first.
    let mut record = ReplayRecord::new();
    let Some(first) = results.iter().flatten().next() else {
        fail("backlog decryption")
    };
    let index = first.message_index;
    let outcome = record.check(first, "$original-event");
    println!("  index {index} seen in $original-event: {outcome:?}");
    let replay = record.check(first, "$copied-event");
    match replay {
        Err(replay) => println!("  the same ciphertext in $copied-event: {replay}"),
        Ok(()) => fail("replay detection"),
    }
}

fn encrypt(outbound: &mut GroupSession, text: &str) -> MegolmMessage {
    let message = outbound
        .encrypt(text.as_bytes())
        .unwrap_or_else(|_| fail("Megolm encrypt"));
    let body = message.to_base64();
    println!(
        "Alice sends index {}: {}…",
        message.message_index(),
        &body[..48.min(body.len())]
    );
    message
}
