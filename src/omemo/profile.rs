//! What makes the shared ratchet OMEMO 2 or OMEMO 0.3: KDF strings, MAC length, limits, the
//! wire codec and what the MAC covers.

use super::wire::{KeyExchange, RatchetMessage, omemo2, omemo03};
use super::{IdentityKey, Version};
use crate::codec::DecodeError;
use crate::ratchet::{RatchetProfile, SendingHeader};

/// An OMEMO version as a profile of the double ratchet. Implemented by [`Omemo2`] and
/// [`Omemo03`] only.
pub trait OmemoProfile:
    RatchetProfile + private::Sealed + Clone + std::fmt::Debug + Sized + 'static
{
    /// The version.
    const VERSION: Version;
    /// HKDF info of the X3DH shared secret.
    const X3DH_INFO: &'static [u8];

    /// Encodes the header and ciphertext: the bytes the MAC covers after its prefix.
    fn encode_message(header: &SendingHeader, ciphertext: &[u8]) -> Vec<u8>;
    /// Joins the encoded message and its MAC.
    fn seal(message: Vec<u8>, mac: Vec<u8>) -> Vec<u8>;
    /// Decodes a sealed message.
    fn open(bytes: &[u8]) -> Result<RatchetMessage, DecodeError>;
    /// Wraps a sealed first message in the key exchange.
    fn encode_key_exchange(exchange: &KeyExchange, message: Vec<u8>) -> Vec<u8>;
    /// Decodes a key exchange and its message.
    fn open_key_exchange(bytes: &[u8]) -> Result<(KeyExchange, RatchetMessage), DecodeError>;
    /// What the MAC covers before the message: OMEMO 2's fixed associated data
    /// (initiator ‖ responder), OMEMO 0.3's sender ‖ receiver.
    fn mac_prefix<'a>(
        initiator: &'a [u8],
        responder: &'a [u8],
        sender_is_initiator: bool,
    ) -> [&'a [u8]; 2];
    /// Whether `key` has this version's identity form.
    fn accepts_identity(key: &IdentityKey) -> bool;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Omemo2 {}
    impl Sealed for super::Omemo03 {}
}

/// OMEMO 2 (`urn:xmpp:omemo:2`).
#[derive(Debug, Clone, Copy)]
pub struct Omemo2;

impl RatchetProfile for Omemo2 {
    const ROOT_INFO: &'static [u8] = b"OMEMO Root Chain";
    const MESSAGE_KEY_INFO: &'static [u8] = b"OMEMO Message Key Material";
    const MAC_LENGTH: usize = omemo2::MAC_LENGTH;
    /// XEP-0384: at most 1000 skipped keys per message and per session.
    const MAX_MESSAGE_GAP: u32 = 1000;
    const MAX_SKIPPED_KEYS: usize = 1000;
    const MAX_RECEIVING_CHAINS: usize = 5;
}

impl OmemoProfile for Omemo2 {
    const VERSION: Version = Version::Omemo2;
    const X3DH_INFO: &'static [u8] = b"OMEMO X3DH";

    fn encode_message(header: &SendingHeader, ciphertext: &[u8]) -> Vec<u8> {
        omemo2::encode_message(header, ciphertext)
    }
    fn seal(message: Vec<u8>, mac: Vec<u8>) -> Vec<u8> {
        omemo2::seal(message, mac)
    }
    fn open(bytes: &[u8]) -> Result<RatchetMessage, DecodeError> {
        omemo2::open(bytes)
    }
    fn encode_key_exchange(exchange: &KeyExchange, message: Vec<u8>) -> Vec<u8> {
        omemo2::encode_key_exchange(exchange, message)
    }
    fn open_key_exchange(bytes: &[u8]) -> Result<(KeyExchange, RatchetMessage), DecodeError> {
        omemo2::open_key_exchange(bytes)
    }
    fn mac_prefix<'a>(
        initiator: &'a [u8],
        responder: &'a [u8],
        _sender_is_initiator: bool,
    ) -> [&'a [u8]; 2] {
        [initiator, responder]
    }
    fn accepts_identity(key: &IdentityKey) -> bool {
        matches!(key, IdentityKey::Ed25519(_))
    }
}

/// OMEMO 0.3 (`eu.siacs.conversations.axolotl`), libsignal's protocol version 3.
#[derive(Debug, Clone, Copy)]
pub struct Omemo03;

impl RatchetProfile for Omemo03 {
    const ROOT_INFO: &'static [u8] = b"WhisperRatchet";
    const MESSAGE_KEY_INFO: &'static [u8] = b"WhisperMessageKeys";
    const MAC_LENGTH: usize = omemo03::MAC_LENGTH;
    /// libsignal-java and libomemo-c: 2000 forward jumps and 2000 stored keys.
    const MAX_MESSAGE_GAP: u32 = 2000;
    const MAX_SKIPPED_KEYS: usize = 2000;
    const MAX_RECEIVING_CHAINS: usize = 5;
}

impl OmemoProfile for Omemo03 {
    const VERSION: Version = Version::Omemo03;
    const X3DH_INFO: &'static [u8] = b"WhisperText";

    fn encode_message(header: &SendingHeader, ciphertext: &[u8]) -> Vec<u8> {
        omemo03::encode_message(header, ciphertext)
    }
    fn seal(message: Vec<u8>, mac: Vec<u8>) -> Vec<u8> {
        omemo03::seal(message, mac)
    }
    fn open(bytes: &[u8]) -> Result<RatchetMessage, DecodeError> {
        omemo03::open(bytes)
    }
    fn encode_key_exchange(exchange: &KeyExchange, message: Vec<u8>) -> Vec<u8> {
        omemo03::encode_key_exchange(exchange, message)
    }
    fn open_key_exchange(bytes: &[u8]) -> Result<(KeyExchange, RatchetMessage), DecodeError> {
        omemo03::open_key_exchange(bytes)
    }
    fn mac_prefix<'a>(
        initiator: &'a [u8],
        responder: &'a [u8],
        sender_is_initiator: bool,
    ) -> [&'a [u8]; 2] {
        if sender_is_initiator {
            [initiator, responder]
        } else {
            [responder, initiator]
        }
    }
    fn accepts_identity(key: &IdentityKey) -> bool {
        matches!(key, IdentityKey::Curve25519(_))
    }
}
