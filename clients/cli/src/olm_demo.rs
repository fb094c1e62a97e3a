//! The first part of the demonstration: Alice and Bob set up an Olm session.

use olmo::olm::{Account, OlmMessage, Session};
use olmo::persist::StorageKey;

/// Runs the Olm part of the demonstration.
pub fn run() {
    println!("== Olm: Alice and Bob set up a pairwise session ==\n");
    let alice = Account::new();
    let mut bob = Account::new();
    println!("Alice  curve25519 {}", alice.curve25519_key());
    println!("       ed25519    {}", alice.ed25519_key());
    println!("Bob    curve25519 {}", bob.curve25519_key());

    bob.generate_one_time_keys(3);
    let (key_id, one_time_key) = bob.unpublished_one_time_keys()[0];
    bob.mark_keys_as_published();
    let signature = bob.sign(one_time_key.to_base64().as_bytes());
    println!("\nBob publishes one-time key {key_id} = {one_time_key}, signed {signature:?}");
    bob.ed25519_key()
        .verify(one_time_key.to_base64().as_bytes(), &signature)
        .unwrap_or_else(|_| fail("signature"));
    println!("Alice checks Bob's signature on it: valid");

    let mut alice_session = alice
        .create_outbound_session(bob.curve25519_key(), one_time_key)
        .unwrap_or_else(|_| fail("outbound session"));
    let first = encrypt(
        &mut alice_session,
        "Alice",
        "Hello Bob! This crosses the wire encrypted.",
    );
    let OlmMessage::PreKey(pre_key) = &first else {
        fail("the first message is a pre-key message")
    };
    let inbound = bob
        .create_inbound_session(alice.curve25519_key(), pre_key)
        .unwrap_or_else(|_| fail("inbound session"));
    let mut bob_session = inbound.session;
    println!(
        "Bob    builds the session from it and reads: {:?}",
        String::from_utf8_lossy(&inbound.plaintext)
    );
    println!(
        "Session id on both sides: {} / {}",
        alice_session.session_id(),
        bob_session.session_id()
    );

    for (from, text) in [
        ("Bob", "Hi Alice, the ratchet turns on every reply."),
        ("Alice", "Each reply brings a fresh ratchet key."),
        ("Alice", "Two in a row stay on the same chain."),
        ("Bob", "And persist your session before you send."),
    ] {
        let (sender, receiver) = if from == "Alice" {
            (&mut alice_session, &mut bob_session)
        } else {
            (&mut bob_session, &mut alice_session)
        };
        let message = encrypt(sender, from, text);
        let plaintext = receiver
            .decrypt(&message)
            .unwrap_or_else(|_| fail("decrypt"));
        println!(
            "       decrypted: {:?}",
            String::from_utf8_lossy(&plaintext)
        );
    }

    let key = StorageKey::from_bytes(rand_key());
    let stored = bob_session.save(&key);
    let restored = Session::restore(&stored, &key).unwrap_or_else(|_| fail("restore"));
    println!(
        "\nBob saves his session ({} bytes, encrypted with a random nonce) and restores it: id {}",
        stored.len(),
        restored.session_id()
    );
    let pickle = bob_session.to_libolm_pickle(b"migration key");
    println!(
        "The same session as a libolm pickle: {} characters",
        pickle.len()
    );
}

fn encrypt(session: &mut Session, from: &str, text: &str) -> OlmMessage {
    let message = session
        .encrypt(text.as_bytes())
        .unwrap_or_else(|_| fail("encrypt"));
    let json = serde_json::to_string(&message).unwrap_or_default();
    let shown: String = json.chars().take(96).collect();
    println!("\n{from:<6} sends {shown}…");
    message
}

fn rand_key() -> [u8; 32] {
    use rand::RngExt as _;
    rand::rng().random()
}

pub(crate) fn fail(what: &str) -> ! {
    eprintln!("olmo demo: {what} failed");
    std::process::exit(1)
}
