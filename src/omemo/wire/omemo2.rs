//! OMEMO 2's protobuf (XEP-0384 0.8+): `OMEMOMessage`, `OMEMOAuthenticatedMessage`,
//! `OMEMOKeyExchange`. Keys are raw 32 bytes; the identity key is Ed25519.

use super::fields::{Field, Fields, encode};
use super::{
    KeyExchange, RatchetMessage, check_length, decode_canonical, fixed_field, public_key, required,
};
use crate::codec::DecodeError;
use crate::crypto::Ed25519PublicKey;
use crate::omemo::IdentityKey;
use crate::ratchet::SendingHeader;

/// The MAC length of OMEMO 2 (16 of HMAC-SHA-256's 32 bytes).
pub(crate) const MAC_LENGTH: usize = 16;

/// `OMEMOMessage`: n, pn, dh_pub, ciphertext.
const OMEMO_MESSAGE: [Field<'static>; 4] = [
    Field::Uint32(None),
    Field::Uint32(None),
    Field::Bytes(None),
    Field::Bytes(None),
];

/// `OMEMOAuthenticatedMessage`: mac, message.
const OMEMO_AUTHENTICATED_MESSAGE: [Field<'static>; 2] = [Field::Bytes(None), Field::Bytes(None)];

/// `OMEMOKeyExchange`: pk_id, spk_id, ik, ek, message.
const OMEMO_KEY_EXCHANGE: [Field<'static>; 5] = [
    Field::Uint32(None),
    Field::Uint32(None),
    Field::Bytes(None),
    Field::Bytes(None),
    Field::Bytes(None),
];

/// The serialized `OMEMOMessage`: the bytes the MAC covers after the associated data.
pub(crate) fn encode_message(header: &SendingHeader, ciphertext: &[u8]) -> Vec<u8> {
    encode(&[
        Field::Uint32(Some(header.index)),
        Field::Uint32(Some(header.previous_chain_length)),
        Field::Bytes(Some(header.ratchet_key.as_bytes())),
        Field::Bytes(Some(ciphertext)),
    ])
}

/// `OMEMOAuthenticatedMessage{mac, message}`.
pub(crate) fn seal(message: Vec<u8>, mac: Vec<u8>) -> Vec<u8> {
    encode(&[Field::Bytes(Some(&mac)), Field::Bytes(Some(&message))])
}

/// Decodes an `OMEMOAuthenticatedMessage` and the `OMEMOMessage` inside it.
pub(crate) fn open(bytes: &[u8]) -> Result<RatchetMessage, DecodeError> {
    check_length(bytes)?;
    let outer = decode_canonical(bytes, OMEMO_AUTHENTICATED_MESSAGE)?;
    let mac = fixed_field::<MAC_LENGTH>(outer.bytes(1), 1)?;
    let authenticated = required(outer.bytes(2), 2)?;
    let inner = Fields::decode(&authenticated, OMEMO_MESSAGE)?;
    Ok(RatchetMessage {
        index: required(inner.uint32(1), 1)?,
        previous_chain_length: required(inner.uint32(2), 2)?,
        ratchet_key: public_key(inner.bytes(3), 3)?,
        ciphertext: required(inner.bytes(4), 4)?,
        mac: mac.to_vec(),
        authenticated,
    })
}

/// `OMEMOKeyExchange` around a sealed first message.
pub(crate) fn encode_key_exchange(exchange: &KeyExchange, message: Vec<u8>) -> Vec<u8> {
    let identity_key = exchange.identity_key.wire_bytes();
    encode(&[
        Field::Uint32(Some(exchange.pre_key_id.unwrap_or(0))),
        Field::Uint32(Some(exchange.signed_pre_key_id)),
        Field::Bytes(Some(&identity_key)),
        Field::Bytes(Some(exchange.base_key.as_bytes())),
        Field::Bytes(Some(&message)),
    ])
}

/// Decodes an `OMEMOKeyExchange` and the message inside it.
pub(crate) fn open_key_exchange(
    bytes: &[u8],
) -> Result<(KeyExchange, RatchetMessage), DecodeError> {
    check_length(bytes)?;
    let outer = decode_canonical(bytes, OMEMO_KEY_EXCHANGE)?;
    let identity = Ed25519PublicKey::from_bytes(&fixed_field(outer.bytes(3), 3)?)
        .map_err(|_| DecodeError::NonCanonicalKey)?;
    let exchange = KeyExchange {
        pre_key_id: Some(required(outer.uint32(1), 1)?),
        signed_pre_key_id: required(outer.uint32(2), 2)?,
        identity_key: IdentityKey::Ed25519(identity),
        base_key: public_key(outer.bytes(4), 4)?,
        registration_id: None,
    };
    let message = open(&required(outer.bytes(5), 5)?)?;
    Ok((exchange, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Curve25519PublicKey;

    #[test]
    fn zero_fields_are_written_in_order() {
        let header = SendingHeader {
            ratchet_key: Curve25519PublicKey::from_bytes([7; 32]),
            index: 0,
            previous_chain_length: 0,
        };
        let bytes = encode_message(&header, &[0xaa; 16]);
        let mut expected = vec![0x08, 0x00, 0x10, 0x00, 0x1a, 0x20];
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[0x22, 0x10]);
        expected.extend_from_slice(&[0xaa; 16]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn missing_and_short_fields_are_typed() {
        let sealed = seal(vec![0x08, 0x00], vec![0; 16]);
        assert_eq!(open(&sealed).err(), Some(DecodeError::MissingField(2)));
        let sealed = seal(vec![], vec![0; 15]);
        assert!(matches!(
            open(&sealed),
            Err(DecodeError::BadLength { field: 1, .. })
        ));
        assert_eq!(open(&[0xff]).err(), Some(DecodeError::Protobuf));
    }
}
