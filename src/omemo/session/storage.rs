//! One OMEMO session's stored form (kind 7 for OMEMO 2, kind 8 for OMEMO 0.3, schema 1), so a
//! session of one version never restores as the other: `schema ‖ session record`.
//!
//! A session record is `initiator ‖ confirmed ‖ our identity ‖ their identity ‖ key exchange ‖
//! ratchet` (the ratchet as `DoubleRatchet::write_to` lays it out); an identity key is its form
//! (0: Ed25519, 1: Curve25519) and 32 bytes; the key exchange is `signed pre-key id ‖ pre-key
//! id? ‖ identity key ‖ base key ‖ registration id?`, where `x?` is a presence byte and, if
//! present, the u32. The device's records hold session records the same way.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{OmemoSession, Ratchet, SessionState, accepts_identity, on_ratchet};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519PublicKey, DecodedKeys};
use crate::omemo::{IdentityKey, KeyExchange, OmemoProfile, Version};
use crate::persist::{Kind, PersistError, StorageKey, open, seal};
use crate::ratchet::DoubleRatchet;

/// The schema of a single session's record.
const SCHEMA: u32 = 1;

const ED25519: u8 = 0;
const CURVE25519: u8 = 1;

fn read_schema(input: &mut ByteReader<'_>) -> Result<(), PersistError> {
    match input.u32()? {
        SCHEMA => Ok(()),
        other => Err(PersistError::UnsupportedVersion(other)),
    }
}

/// The blob kind of a session of `version`.
fn session_kind(version: Version) -> Kind {
    match version {
        Version::Omemo2 => Kind::Omemo2Session,
        Version::Omemo03 => Kind::Omemo03Session,
    }
}

impl<P: OmemoProfile> OmemoSession<P> {
    /// Encrypts the session for storage under `key`. A session of the other OMEMO version
    /// does not restore from the result.
    pub fn save(&self, key: &StorageKey) -> Vec<u8> {
        self.save_with_rng(key, &mut rand::rng())
    }

    /// As [`OmemoSession::save`], drawing the nonce from `rng`.
    pub fn save_with_rng(&self, key: &StorageKey, rng: &mut impl CryptoRng) -> Vec<u8> {
        seal(session_kind(P::VERSION), &self.to_record(), key, rng)
    }

    /// Restores a session saved by [`OmemoSession::save`] (of this version: a session of the other
    /// one is [`PersistError::WrongKind`]).
    pub fn restore(blob: &[u8], key: &StorageKey) -> Result<Self, PersistError> {
        Self::from_record(&open(session_kind(P::VERSION), blob, key)?)
    }

    /// The unsealed stored form: schema, then the session record. It does not say its
    /// version: the caller keeps OMEMO 2 and 0.3 records apart.
    pub(crate) fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = ByteWriter::default();
        out.u32(SCHEMA);
        write_session(&mut out, &self.state);
        out.finish()
    }

    /// Reads [`OmemoSession::to_record`]'s bytes, with every check a restore makes.
    pub(crate) fn from_record(bytes: &[u8]) -> Result<Self, PersistError> {
        let mut input = ByteReader::new(bytes);
        read_schema(&mut input)?;
        let session = read_session(P::VERSION, &mut input, &mut DecodedKeys::default())?;
        input.finish()?;
        Ok(Self::from_state(session))
    }
}

fn write_identity_key(out: &mut ByteWriter, key: &IdentityKey) {
    match key {
        IdentityKey::Ed25519(key) => out.u8(ED25519).bytes(key.as_bytes()),
        IdentityKey::Curve25519(key) => out.u8(CURVE25519).bytes(key.as_bytes()),
    };
}

/// An identity key in `version`'s form (an Ed25519 one must be a valid point). `keys` holds the
/// Ed25519 keys this read already decompressed: a session record names our identity and the
/// peer's (often twice: its key exchange), and a device's previous sessions the same ones again,
/// so each is decompressed (a field square root, ~13k instructions) once per read, not per use.
fn read_identity_key(
    version: Version,
    input: &mut ByteReader<'_>,
    keys: &mut DecodedKeys,
) -> Result<IdentityKey, DecodeError> {
    let key = match input.u8()? {
        ED25519 => IdentityKey::Ed25519(
            keys.decode(&input.array()?)
                .map_err(|_| DecodeError::OutOfRange)?,
        ),
        CURVE25519 => IdentityKey::Curve25519(Curve25519PublicKey::from_bytes(input.array()?)),
        _ => return Err(DecodeError::OutOfRange),
    };
    if accepts_identity(version, &key) {
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

pub(in crate::omemo) fn write_session(out: &mut ByteWriter, session: &SessionState) {
    out.bool(session.initiator).bool(session.confirmed);
    write_identity_key(out, &session.our_identity);
    write_identity_key(out, &session.their_identity);
    let exchange = &session.key_exchange;
    out.u32(exchange.signed_pre_key_id);
    write_optional_u32(out, exchange.pre_key_id);
    write_identity_key(out, &exchange.identity_key);
    out.bytes(exchange.base_key.as_bytes());
    write_optional_u32(out, exchange.registration_id);
    on_ratchet!(&session.ratchet, r => r.write_to(out));
}

/// One session record of `version`; `keys` as [`read_identity_key`]'s (shared by the records of
/// one read).
pub(in crate::omemo) fn read_session(
    version: Version,
    input: &mut ByteReader<'_>,
    keys: &mut DecodedKeys,
) -> Result<SessionState, DecodeError> {
    let initiator = input.bool()?;
    let confirmed = input.bool()?;
    let our_identity = read_identity_key(version, input, keys)?;
    let their_identity = read_identity_key(version, input, keys)?;
    let signed_pre_key_id = input.u32()?;
    let pre_key_id = read_optional_u32(input)?;
    let key_exchange = KeyExchange {
        pre_key_id,
        signed_pre_key_id,
        identity_key: read_identity_key(version, input, keys)?,
        base_key: Curve25519PublicKey::from_bytes(input.array()?),
        registration_id: read_optional_u32(input)?,
    };
    let ratchet = match version {
        Version::Omemo2 => Ratchet::Omemo2(DoubleRatchet::read_from(input)?),
        Version::Omemo03 => Ratchet::Omemo03(DoubleRatchet::read_from(input)?),
    };
    Ok(SessionState {
        ratchet,
        our_identity,
        their_identity,
        initiator,
        key_exchange,
        confirmed,
    })
}
