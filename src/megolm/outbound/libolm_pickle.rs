//! libolm's outbound group session pickle, version 1: `u32 1 ‖ ratchet (R0‖R1‖R2‖R3 (128) ‖
//! u32 counter) ‖ Ed25519 public (32) ‖ expanded secret (64)`.

use super::GroupSession;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::persist::fields::{read_megolm_ratchet, write_megolm_ratchet};
use crate::persist::libolm::fields::{read_signing_key, write_signing_key};
use crate::persist::libolm::{LibolmPickleError, decrypt, encrypt};
use crate::time::Timestamp;

const OUTBOUND_VERSION: u32 = 1;

impl GroupSession {
    /// Imports a libolm outbound group session pickle (version 1). libolm does not record when
    /// a session was created, so the import is stamped with `created_at`.
    pub fn from_libolm_pickle(
        pickle: &str,
        pickle_key: &[u8],
        created_at: Timestamp,
    ) -> Result<Self, LibolmPickleError> {
        let raw = decrypt(pickle, pickle_key)?;
        let mut input = ByteReader::new(&raw);
        match input.u32()? {
            OUTBOUND_VERSION => {}
            other => return Err(LibolmPickleError::UnsupportedVersion(other)),
        }
        let ratchet = read_megolm_ratchet(&mut input)?;
        let signing_key = read_signing_key(&mut input)?;
        input.finish()?;
        Ok(Self {
            ratchet,
            signing_key,
            created_at,
            invalidated: false,
        })
    }

    /// Exports the session as a libolm outbound pickle (version 1) under `pickle_key`. The
    /// creation time and invalidation are not part of libolm's format and are lost.
    pub fn to_libolm_pickle(&self, pickle_key: &[u8]) -> String {
        let mut out = ByteWriter::default();
        out.u32(OUTBOUND_VERSION);
        write_megolm_ratchet(&mut out, &self.ratchet);
        write_signing_key(&mut out, &self.signing_key);
        encrypt(&out.finish(), pickle_key)
    }
}
