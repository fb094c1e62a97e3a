//! `olmo`: a demonstration of the engine, and the small tools its users need.
//!
//! ```text
//! olmo                       run the demonstration
//! olmo demo                  the same
//! olmo inspect TYPE BODY     decode an Olm message from a Matrix event (type 0|1, base64 body)
//! olmo inspect megolm BODY   decode a Megolm message (a room event's ciphertext)
//! olmo inspect room-key KEY  show a session key's session id and first index
//! olmo migrate-account       read a libolm account pickle on stdin, write olmo storage on stdout
//! olmo xmpp bot --jid JID    an OMEMO echo bot on an XMPP server (see `olmo xmpp bot --help`)
//! ```

use std::io::{Read, Write};
use std::process::ExitCode;

mod megolm_demo;
mod omemo_demo;
mod xmpp_demo;

use olmo::crypto::base64;
use olmo::megolm::{ExportedSessionKey, MegolmMessage, SessionKey};
use olmo::olm::{Account, OlmMessage, Session};
use olmo::persist::StorageKey;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["demo"] => {
            demo();
            megolm_demo::run();
            omemo_demo::run();
            if let Err(error) = xmpp_demo::run() {
                eprintln!("olmo: the XMPP machine demonstration failed: {error}");
                return ExitCode::FAILURE;
            }
            println!(
                "\nTools: olmo inspect 0|1|megolm|room-key|omemo ... | olmo migrate-account (see --help)"
            );
            Ok(())
        }
        ["inspect", "megolm", body] => inspect_megolm(body),
        ["inspect", "room-key", key] => inspect_room_key(key),
        ["inspect", "omemo", xml] => inspect_omemo(xml),
        ["inspect", message_type, body] => inspect(message_type, body),
        ["migrate-account"] => migrate_account(),
        ["xmpp", "bot", ..] => xmpp_bot(&args[2..]),
        _ => {
            eprintln!("{}", include_str!("usage.txt"));
            Err("unknown command".to_owned())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("olmo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `olmo xmpp bot ...`: clap parses the rest (`--help` prints the options and exits 0).
fn xmpp_bot(args: &[String]) -> Result<(), String> {
    use clap::Parser;
    let argv = std::iter::once("olmo xmpp bot".to_owned()).chain(args.iter().cloned());
    let bot = olmo_xmpp_client::BotArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
    olmo_xmpp_client::run(bot).map_err(|e| e.to_string())
}

fn demo() {
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

fn inspect(message_type: &str, body: &str) -> Result<(), String> {
    let message_type: u8 = message_type.parse().map_err(|_| "TYPE must be 0 or 1")?;
    let message = OlmMessage::from_base64_parts(message_type, body).map_err(|e| e.to_string())?;
    let normal = match &message {
        OlmMessage::PreKey(pre_key) => {
            println!("pre-key message");
            println!("  one-time key   {}", pre_key.one_time_key());
            println!("  base key       {}", pre_key.base_key());
            println!("  identity key   {}", pre_key.identity_key());
            pre_key.message()
        }
        OlmMessage::Normal(message) => message,
    };
    println!("  ratchet key    {}", normal.ratchet_key());
    println!("  chain index    {}", normal.chain_index());
    println!("  ciphertext     {} bytes", normal.ciphertext().len());
    println!("  mac            {}", base64::encode(normal.mac()));
    Ok(())
}

fn inspect_megolm(body: &str) -> Result<(), String> {
    let message = MegolmMessage::from_base64(body).map_err(|e| e.to_string())?;
    println!("megolm message");
    println!("  message index  {}", message.message_index());
    println!("  ciphertext     {} bytes", message.ciphertext().len());
    println!("  mac            {}", base64::encode(message.mac()));
    println!("  signature      {}", message.signature().to_base64());
    Ok(())
}

/// Shows a session key's public parts: which session, from which index, signature valid.
fn inspect_room_key(key: &str) -> Result<(), String> {
    let (kind, session_id, index) = match SessionKey::from_base64(key) {
        Ok(key) => (
            "signed session key (m.room_key), signature valid",
            key.session_id(),
            key.ratchet().index(),
        ),
        Err(signed_error) => {
            let key = ExportedSessionKey::from_base64(key).map_err(|_| {
                format!("neither a session key ({signed_error}) nor an exported key")
            })?;
            (
                "exported session key (unsigned)",
                key.signing_key().to_base64(),
                key.ratchet().index(),
            )
        }
    };
    println!("{kind}");
    println!("  session id     {session_id}");
    println!("  first index    {index}");
    Ok(())
}

/// Decodes an OMEMO `<encrypted>` element (either version) or checks a `<bundle>`.
fn inspect_omemo(xml: &str) -> Result<(), String> {
    use olmo::omemo::stanza;
    if let Ok(element) = stanza::EncryptedElement::parse(xml) {
        println!(
            "{:?} message from device {}: {} keys, payload {}",
            element.version,
            element.sender_device,
            element.keys.len(),
            element
                .payload
                .as_ref()
                .map_or("none (empty message)".to_owned(), |p| format!(
                    "{} bytes",
                    p.len()
                ))
        );
        omemo_demo::describe(&element);
        return Ok(());
    }
    let element = stanza::BundleElement::parse(xml).map_err(|e| e.to_string())?;
    let bundle = olmo::omemo::VerifiedBundle::from_element(&element).map_err(|e| e.to_string())?;
    println!(
        "{:?} bundle: signature valid, identity fingerprint {}, signed pre-key {}, {} pre-keys",
        bundle.version(),
        bundle
            .identity_key()
            .fingerprint()
            .map_err(|e| e.to_string())?,
        bundle.signed_pre_key_id(),
        bundle.pre_keys().len()
    );
    Ok(())
}

fn migrate_account() -> Result<(), String> {
    let pickle_key = std::env::var("OLMO_LIBOLM_PICKLE_KEY")
        .map_err(|_| "set OLMO_LIBOLM_PICKLE_KEY to the libolm pickle key")?;
    let storage_key = std::env::var("OLMO_STORAGE_KEY")
        .map_err(|_| "set OLMO_STORAGE_KEY to 32 bytes of base64")?;
    let storage_key: [u8; 32] = base64::decode_secret(&storage_key)
        .ok()
        .and_then(|bytes| bytes.as_slice().try_into().ok())
        .ok_or("OLMO_STORAGE_KEY must be 32 bytes of base64")?;
    let mut pickle = String::new();
    std::io::stdin()
        .read_to_string(&mut pickle)
        .map_err(|e| e.to_string())?;
    let account =
        Account::from_libolm_pickle(&pickle, pickle_key.as_bytes()).map_err(|e| e.to_string())?;
    let stored = account.save(&StorageKey::from_bytes(storage_key));
    eprintln!("migrated account {}", account.curve25519_key());
    std::io::stdout()
        .write_all(base64::encode(stored).as_bytes())
        .map_err(|e| e.to_string())
}

fn rand_key() -> [u8; 32] {
    use rand::RngExt as _;
    rand::rng().random()
}

fn fail(what: &str) -> ! {
    eprintln!("olmo demo: {what} failed");
    std::process::exit(1)
}
