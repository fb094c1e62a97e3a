//! libolm's inbound group session pickle, versions 1 and 2: `u32 version ‖ initial ratchet ‖
//! latest ratchet ‖ Ed25519 public (32)`, and from version 2 on `‖ u8 signing key verified`
//! (version 1 sessions all came from signed session keys). A ratchet is `R0‖R1‖R2‖R3 (128) ‖
//! u32 counter`.

use super::InboundGroupSession;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::Ed25519PublicKey;
use crate::persist::fields::{read_megolm_ratchet, write_megolm_ratchet};
use crate::persist::libolm::{LibolmPickleError, decrypt, encrypt};

const INBOUND_VERSION: u32 = 2;

impl InboundGroupSession {
    /// Imports a libolm inbound group session pickle (version 1 or 2).
    pub fn from_libolm_pickle(pickle: &str, pickle_key: &[u8]) -> Result<Self, LibolmPickleError> {
        let raw = decrypt(pickle, pickle_key)?;
        let mut input = ByteReader::new(&raw);
        let version = input.u32()?;
        if !matches!(version, 1 | INBOUND_VERSION) {
            return Err(LibolmPickleError::UnsupportedVersion(version));
        }
        let initial = read_megolm_ratchet(&mut input)?;
        let latest = read_megolm_ratchet(&mut input)?;
        let signing_key = Ed25519PublicKey::from_bytes(&input.array()?)
            .map_err(|_| LibolmPickleError::InvalidKey)?;
        let signing_key_verified = version == 1 || input.bool()?;
        input.finish()?;
        // The latest ratchet is a cache; one behind the initial (libolm's modular order at the
        // u32 edge) is replaced by the initial one.
        let latest = if latest.index() >= initial.index() {
            latest
        } else {
            initial.clone()
        };
        Ok(Self {
            initial,
            latest,
            signing_key,
            signing_key_verified,
        })
    }

    /// Exports the session as a libolm inbound pickle (version 2) under `pickle_key`.
    pub fn to_libolm_pickle(&self, pickle_key: &[u8]) -> String {
        let mut out = ByteWriter::default();
        out.u32(INBOUND_VERSION);
        write_megolm_ratchet(&mut out, &self.initial);
        write_megolm_ratchet(&mut out, &self.latest);
        out.bytes(self.signing_key.as_bytes())
            .bool(self.signing_key_verified);
        encrypt(&out.finish(), pickle_key)
    }
}
