//! OMEMO 2's protobuf (XEP-0384 0.8+): `OMEMOMessage`, `OMEMOAuthenticatedMessage`,
//! `OMEMOKeyExchange`. Keys are raw 32 bytes; the identity key is Ed25519.

use prost::Message as _;

use super::{
    KeyExchange, RatchetMessage, check_length, decode_canonical, fixed_field, protobuf, public_key,
    required,
};
use crate::codec::DecodeError;
use crate::crypto::Ed25519PublicKey;
use crate::omemo::IdentityKey;
use crate::ratchet::SendingHeader;

/// The MAC length of OMEMO 2 (16 of HMAC-SHA-256's 32 bytes).
pub(crate) const MAC_LENGTH: usize = 16;

#[derive(Clone, PartialEq, prost::Message)]
struct OmemoMessage {
    #[prost(uint32, optional, tag = "1")]
    n: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pn: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    dh_pub: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    ciphertext: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OmemoAuthenticatedMessage {
    #[prost(bytes = "vec", optional, tag = "1")]
    mac: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    message: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OmemoKeyExchange {
    #[prost(uint32, optional, tag = "1")]
    pk_id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    spk_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    ik: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    ek: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    message: Option<Vec<u8>>,
}

/// The serialized `OMEMOMessage`: the bytes the MAC covers after the associated data.
pub(crate) fn encode_message(header: &SendingHeader, ciphertext: &[u8]) -> Vec<u8> {
    OmemoMessage {
        n: Some(header.index),
        pn: Some(header.previous_chain_length),
        dh_pub: Some(header.ratchet_key.as_bytes().to_vec()),
        ciphertext: Some(ciphertext.to_vec()),
    }
    .encode_to_vec()
}

/// `OMEMOAuthenticatedMessage{mac, message}`.
pub(crate) fn seal(message: Vec<u8>, mac: Vec<u8>) -> Vec<u8> {
    OmemoAuthenticatedMessage {
        mac: Some(mac),
        message: Some(message),
    }
    .encode_to_vec()
}

/// Decodes an `OMEMOAuthenticatedMessage` and the `OMEMOMessage` inside it.
pub(crate) fn open(bytes: &[u8]) -> Result<RatchetMessage, DecodeError> {
    check_length(bytes)?;
    let outer: OmemoAuthenticatedMessage = decode_canonical(bytes)?;
    let mac = fixed_field::<MAC_LENGTH>(outer.mac, 1)?;
    let authenticated = required(outer.message, 2)?;
    let inner = OmemoMessage::decode(authenticated.as_slice()).map_err(protobuf)?;
    Ok(RatchetMessage {
        index: required(inner.n, 1)?,
        previous_chain_length: required(inner.pn, 2)?,
        ratchet_key: public_key(inner.dh_pub, 3)?,
        ciphertext: required(inner.ciphertext, 4)?,
        mac: mac.to_vec(),
        authenticated,
    })
}

/// `OMEMOKeyExchange` around a sealed first message.
pub(crate) fn encode_key_exchange(exchange: &KeyExchange, message: Vec<u8>) -> Vec<u8> {
    OmemoKeyExchange {
        pk_id: Some(exchange.pre_key_id.unwrap_or(0)),
        spk_id: Some(exchange.signed_pre_key_id),
        ik: Some(exchange.identity_key.wire_bytes()),
        ek: Some(exchange.base_key.as_bytes().to_vec()),
        message: Some(message),
    }
    .encode_to_vec()
}

/// Decodes an `OMEMOKeyExchange` and the message inside it.
pub(crate) fn open_key_exchange(
    bytes: &[u8],
) -> Result<(KeyExchange, RatchetMessage), DecodeError> {
    check_length(bytes)?;
    let outer: OmemoKeyExchange = decode_canonical(bytes)?;
    let identity = Ed25519PublicKey::from_bytes(&fixed_field(outer.ik, 3)?)
        .map_err(|_| DecodeError::NonCanonicalKey)?;
    let exchange = KeyExchange {
        pre_key_id: Some(required(outer.pk_id, 1)?),
        signed_pre_key_id: required(outer.spk_id, 2)?,
        identity_key: IdentityKey::Ed25519(identity),
        base_key: public_key(outer.ek, 4)?,
        registration_id: None,
    };
    let message = open(&required(outer.message, 5)?)?;
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
