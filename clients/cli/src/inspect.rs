//! `olmo inspect`: what a message, a room key or an OMEMO element holds (nothing secret).

use olmo::crypto::base64;
use olmo::megolm::{ExportedSessionKey, MegolmMessage, SessionKey};
use olmo::olm::OlmMessage;

use crate::omemo_demo;

/// Decodes an Olm message of type 0 (pre-key) or 1.
pub fn olm(message_type: u8, body: &str) -> Result<(), String> {
    let message = OlmMessage::from_base64_parts(message_type, body)
        .map_err(|e| format!("not an Olm message of type {message_type}: {e}"))?;
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

pub fn megolm(body: &str) -> Result<(), String> {
    let message =
        MegolmMessage::from_base64(body).map_err(|e| format!("not a Megolm message: {e}"))?;
    println!("megolm message");
    println!("  message index  {}", message.message_index());
    println!("  ciphertext     {} bytes", message.ciphertext().len());
    println!("  mac            {}", base64::encode(message.mac()));
    println!("  signature      {}", message.signature().to_base64());
    Ok(())
}

/// Shows a session key's public parts: which session, from which index, signature valid.
pub fn room_key(key: &str) -> Result<(), String> {
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
pub fn omemo(xml: &str) -> Result<(), String> {
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
    let element = stanza::BundleElement::parse(xml)
        .map_err(|e| format!("neither an OMEMO <encrypted> element nor a <bundle>: {e}"))?;
    let bundle = olmo::omemo::VerifiedBundle::from_element(&element)
        .map_err(|e| format!("the bundle does not verify: {e}"))?;
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
