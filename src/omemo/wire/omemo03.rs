//! OMEMO 0.3's messages, libsignal's protocol version 3: a version byte, then `SignalMessage`
//! or `PreKeySignalMessage` protobuf; a signal message ends with its 8-byte MAC. Public keys
//! carry libsignal's type byte `0x05`.

use super::fields::{Field, Fields, encode};
use super::{KeyExchange, RatchetMessage, check_length, decode_canonical, public_key, required};
use crate::codec::DecodeError;
use crate::codec::proto::ProtoWriter;
use crate::crypto::Curve25519PublicKey;
use crate::omemo::IdentityKey;
use crate::ratchet::SendingHeader;

/// The MAC length of OMEMO 0.3.
pub(crate) const MAC_LENGTH: usize = 8;
/// libsignal's type byte for Curve25519 public keys.
pub(crate) const KEY_TYPE: u8 = 0x05;
/// The version byte we write: message version 3, current version 3. python-oldmemo accepts
/// only this; libsignal writes `0x34` (current version 4) and reads both.
pub(crate) const VERSION_BYTE: u8 = 0x33;

/// `SignalMessage`: ratchet key, counter, previous counter, ciphertext.
const SIGNAL_MESSAGE: [Field<'static>; 4] = [
    Field::Bytes(None),
    Field::Uint32(None),
    Field::Uint32(None),
    Field::Bytes(None),
];

/// `PreKeySignalMessage`: pre-key id, base key, identity key, message, registration id,
/// signed pre-key id.
const PRE_KEY_SIGNAL_MESSAGE: [Field<'static>; 6] = [
    Field::Uint32(None),
    Field::Bytes(None),
    Field::Bytes(None),
    Field::Bytes(None),
    Field::Uint32(None),
    Field::Uint32(None),
];

/// `0x05 ‖ key`.
pub(crate) fn encode_key(key: &Curve25519PublicKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(33);
    bytes.push(KEY_TYPE);
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

/// Reads `0x05 ‖ key`, refusing any other type byte or length.
pub(crate) fn decode_key(bytes: &[u8], field: u32) -> Result<Curve25519PublicKey, DecodeError> {
    match bytes {
        [KEY_TYPE, key @ ..] => public_key(Some(key.to_vec()), field),
        [other, _rest @ ..] if bytes.len() == 33 => Err(DecodeError::KeyType(*other)),
        _ => Err(DecodeError::BadLength {
            field,
            expected: 33,
            actual: bytes.len(),
        }),
    }
}

fn check_version(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    match bytes.split_first() {
        // Message version 3 from a sender whose current version is 3 (oldmemo, Conversations)
        // or 4 (libsignal). libsignal reads any low nibble, but the key exchange's version
        // byte is not MACed: taking only what peers write makes every bit flip an error.
        Some((&version, rest)) if version == VERSION_BYTE || version == 0x34 => Ok(rest),
        Some((&version, _)) => Err(DecodeError::UnsupportedVersion(version.into())),
        None => Err(DecodeError::Truncated),
    }
}

/// `version ‖ SignalMessage`: the bytes the MAC covers after the two identity keys. Written
/// field by field into one buffer with room for the MAC [`seal`] appends (the same bytes as
/// encoding a [`SignalMessage`]: every field, in number order), so neither the key nor the
/// ciphertext is copied into a message struct first.
pub(crate) fn encode_message(header: &SendingHeader, ciphertext: &[u8]) -> Vec<u8> {
    // Version, the key field (2 + 33), two varint fields (at most 1 + 5 each), the ciphertext's
    // tag and length (at most 1 + 10), the ciphertext and the MAC.
    let capacity = 1 + 35 + 12 + 11 + ciphertext.len() + MAC_LENGTH;
    let mut key = [KEY_TYPE; 33];
    key[1..].copy_from_slice(header.ratchet_key.as_bytes());
    ProtoWriter::with_prefix(&[VERSION_BYTE], capacity)
        .bytes_field(1, &key)
        .varint_field(2, header.index.into())
        .varint_field(3, header.previous_chain_length.into())
        .bytes_field(4, ciphertext)
        .finish()
}

/// `version ‖ SignalMessage ‖ mac`.
pub(crate) fn seal(mut message: Vec<u8>, mac: Vec<u8>) -> Vec<u8> {
    message.extend_from_slice(&mac);
    message
}

/// Splits and decodes `version ‖ SignalMessage ‖ mac`.
pub(crate) fn open(bytes: &[u8]) -> Result<RatchetMessage, DecodeError> {
    check_length(bytes)?;
    let split = bytes
        .len()
        .checked_sub(MAC_LENGTH)
        .ok_or(DecodeError::Truncated)?;
    let (authenticated, mac) = bytes.split_at(split);
    let body = check_version(authenticated)?;
    let message = Fields::decode(body, SIGNAL_MESSAGE)?;
    Ok(RatchetMessage {
        ratchet_key: decode_key(&required(message.bytes(1), 1)?, 1)?,
        index: required(message.uint32(2), 2)?,
        previous_chain_length: required(message.uint32(3), 3)?,
        ciphertext: required(message.bytes(4), 4)?,
        mac: mac.to_vec(),
        authenticated: authenticated.to_vec(),
    })
}

/// `version ‖ PreKeySignalMessage` around a sealed first message.
pub(crate) fn encode_key_exchange(exchange: &KeyExchange, message: Vec<u8>) -> Vec<u8> {
    let base_key = encode_key(&exchange.base_key);
    let identity_key = exchange.identity_key.wire_bytes();
    let mut bytes = vec![VERSION_BYTE];
    bytes.extend(encode(&[
        Field::Uint32(exchange.pre_key_id),
        Field::Bytes(Some(&base_key)),
        Field::Bytes(Some(&identity_key)),
        Field::Bytes(Some(&message)),
        Field::Uint32(exchange.registration_id),
        Field::Uint32(Some(exchange.signed_pre_key_id)),
    ]));
    bytes
}

/// Decodes `version ‖ PreKeySignalMessage` and the signal message inside it.
pub(crate) fn open_key_exchange(
    bytes: &[u8],
) -> Result<(KeyExchange, RatchetMessage), DecodeError> {
    check_length(bytes)?;
    let body = check_version(bytes)?;
    let outer = decode_canonical(body, PRE_KEY_SIGNAL_MESSAGE)?;
    let exchange = KeyExchange {
        pre_key_id: outer.uint32(1),
        signed_pre_key_id: required(outer.uint32(6), 6)?,
        identity_key: IdentityKey::Curve25519(decode_key(&required(outer.bytes(3), 3)?, 3)?),
        base_key: decode_key(&required(outer.bytes(2), 2)?, 2)?,
        registration_id: outer.uint32(5),
    };
    let message = open(&required(outer.bytes(4), 4)?)?;
    Ok((exchange, message))
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct SignalMessage {
        #[prost(bytes = "vec", optional, tag = "1")]
        ratchet_key: Option<Vec<u8>>,
        #[prost(uint32, optional, tag = "2")]
        counter: Option<u32>,
        #[prost(uint32, optional, tag = "3")]
        previous_counter: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "4")]
        ciphertext: Option<Vec<u8>>,
    }

    #[test]
    fn keys_need_their_type_byte() {
        let key = Curve25519PublicKey::from_bytes([9; 32]);
        assert_eq!(decode_key(&encode_key(&key), 1), Ok(key));
        let mut wrong = encode_key(&key);
        wrong[0] = 0x06;
        assert_eq!(decode_key(&wrong, 1), Err(DecodeError::KeyType(0x06)));
        assert!(matches!(
            decode_key(key.as_bytes(), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn message_encoding_is_prosts() {
        for (index, previous, length) in [
            (0, 0, 0),
            (5, 3, 48),
            (300, 70_000, 200),
            (u32::MAX, 1, 127),
        ] {
            let header = SendingHeader {
                ratchet_key: Curve25519PublicKey::from_bytes([index as u8; 32]),
                index,
                previous_chain_length: previous,
            };
            let ciphertext = vec![0xab; length];
            let mut expected = vec![VERSION_BYTE];
            SignalMessage {
                ratchet_key: Some(encode_key(&header.ratchet_key)),
                counter: Some(index),
                previous_counter: Some(previous),
                ciphertext: Some(ciphertext.clone()),
            }
            .encode(&mut expected)
            .unwrap();
            let encoded = encode_message(&header, &ciphertext);
            assert_eq!(encoded, expected);
            assert!(encoded.capacity() >= encoded.len() + MAC_LENGTH);
        }
    }

    #[test]
    fn versions() {
        assert_eq!(check_version(&[0x33, 1]), Ok(&[1][..]));
        assert_eq!(check_version(&[0x34]), Ok(&[][..]));
        assert_eq!(
            check_version(&[0x37]),
            Err(DecodeError::UnsupportedVersion(0x37))
        );
        assert_eq!(
            check_version(&[0x23]),
            Err(DecodeError::UnsupportedVersion(0x23))
        );
        assert_eq!(check_version(&[]), Err(DecodeError::Truncated));
    }
}
