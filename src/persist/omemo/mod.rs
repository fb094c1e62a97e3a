//! The stored forms of OMEMO state: a whole [`Device`](crate::omemo::Device) (kind 6, schema 2;
//! schema 1 still restores), and one [`Session`](crate::omemo::Session) of OMEMO 2 (kind 7) or OMEMO 0.3
//! (kind 8), schema 1, so a session of one version never restores as the other.
//!
//! Fields shared by both: an identity key is its form (0: Ed25519, 1: Curve25519) and 32 bytes;
//! a session record is `initiator ‖ confirmed ‖ our identity ‖ their identity ‖ key exchange ‖
//! ratchet` (the ratchet as `DoubleRatchet::write_to` lays it out); the key exchange is
//! `signed pre-key id ‖ pre-key id? ‖ identity key ‖ base key ‖ registration id?`, where `x?` is
//! a presence byte and, if present, the u32.

mod device;
mod session;

use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519PublicKey, Ed25519PublicKey};
use crate::omemo::store::MAX_JID_LENGTH;
use crate::omemo::{IdentityKey, KeyExchange, OmemoProfile, Session};
use crate::ratchet::DoubleRatchet;

use super::{Kind, PersistError};

/// The schema of a single session's blob.
const SCHEMA: u32 = 1;

const ED25519: u8 = 0;
const CURVE25519: u8 = 1;

fn read_schema(input: &mut ByteReader<'_>) -> Result<(), PersistError> {
    match input.u32()? {
        SCHEMA => Ok(()),
        other => Err(PersistError::UnsupportedVersion(other)),
    }
}

/// The blob kind of a session of `P`'s version.
fn session_kind<P: OmemoProfile>() -> Kind {
    match P::VERSION {
        crate::omemo::Version::Omemo2 => Kind::Omemo2Session,
        crate::omemo::Version::Omemo03 => Kind::Omemo03Session,
    }
}

/// A JID: its length (u32, at most [`MAX_JID_LENGTH`]) and its UTF-8 bytes.
fn write_jid(out: &mut ByteWriter, jid: &str) {
    out.u32(jid.len() as u32).bytes(jid.as_bytes());
}

fn read_jid(input: &mut ByteReader<'_>) -> Result<String, DecodeError> {
    let length = input.count(MAX_JID_LENGTH)?;
    std::str::from_utf8(input.take(length)?)
        .map(str::to_owned)
        .map_err(|_| DecodeError::OutOfRange)
}

fn write_identity_key(out: &mut ByteWriter, key: &IdentityKey) {
    match key {
        IdentityKey::Ed25519(key) => out.u8(ED25519).bytes(key.as_bytes()),
        IdentityKey::Curve25519(key) => out.u8(CURVE25519).bytes(key.as_bytes()),
    };
}

/// An identity key in `P`'s form (an Ed25519 one must be a valid point).
fn read_identity_key<P: OmemoProfile>(
    input: &mut ByteReader<'_>,
) -> Result<IdentityKey, DecodeError> {
    let key = match input.u8()? {
        ED25519 => IdentityKey::Ed25519(
            Ed25519PublicKey::from_bytes(&input.array()?).map_err(|_| DecodeError::OutOfRange)?,
        ),
        CURVE25519 => IdentityKey::Curve25519(Curve25519PublicKey::from_bytes(input.array()?)),
        _ => return Err(DecodeError::OutOfRange),
    };
    if P::accepts_identity(&key) {
        Ok(key)
    } else {
        Err(DecodeError::OutOfRange)
    }
}

fn write_optional_u32(out: &mut ByteWriter, value: Option<u32>) {
    out.bool(value.is_some());
    if let Some(value) = value {
        out.u32(value);
    }
}

fn read_optional_u32(input: &mut ByteReader<'_>) -> Result<Option<u32>, DecodeError> {
    if input.bool()? {
        input.u32().map(Some)
    } else {
        Ok(None)
    }
}

fn write_session<P: OmemoProfile>(out: &mut ByteWriter, session: &Session<P>) {
    out.bool(session.initiator).bool(session.confirmed);
    write_identity_key(out, &session.our_identity);
    write_identity_key(out, &session.their_identity);
    let exchange = &session.key_exchange;
    out.u32(exchange.signed_pre_key_id);
    write_optional_u32(out, exchange.pre_key_id);
    write_identity_key(out, &exchange.identity_key);
    out.bytes(exchange.base_key.as_bytes());
    write_optional_u32(out, exchange.registration_id);
    session.ratchet.write_to(out);
}

fn read_session<P: OmemoProfile>(input: &mut ByteReader<'_>) -> Result<Session<P>, DecodeError> {
    let initiator = input.bool()?;
    let confirmed = input.bool()?;
    let our_identity = read_identity_key::<P>(input)?;
    let their_identity = read_identity_key::<P>(input)?;
    let signed_pre_key_id = input.u32()?;
    let pre_key_id = read_optional_u32(input)?;
    let key_exchange = KeyExchange {
        pre_key_id,
        signed_pre_key_id,
        identity_key: read_identity_key::<P>(input)?,
        base_key: Curve25519PublicKey::from_bytes(input.array()?),
        registration_id: read_optional_u32(input)?,
    };
    Ok(Session {
        ratchet: DoubleRatchet::read_from(input)?,
        our_identity,
        their_identity,
        initiator,
        key_exchange,
        confirmed,
    })
}
