//! libolm's Session pickle, version 1.
//!
//! `u32 version ‖ u8 received ‖ Alice identity ‖ base key ‖ one-time key ‖ root key ‖
//! u32 n ‖ sender {public, secret, chain key, u32 index}* ‖ u32 n ‖ receiver {public, chain key,
//! u32 index}* (newest first) ‖ u32 n ‖ skipped {public, message key, u32 index}* (newest first)`.

use std::collections::VecDeque;

use super::{Session, SessionKeys};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::Curve25519PublicKey;
use crate::olm::OlmProfile;
use crate::persist::libolm::fields::{read_key_pair, write_key_pair};
use crate::persist::libolm::{LibolmPickleError, decrypt, encrypt};
use crate::ratchet::chain::ReceivingChain;
use crate::ratchet::keys::{ChainKey, MessageKeySeed, RootKey};
use crate::ratchet::skipped::{SkippedKey, SkippedKeys};
use crate::ratchet::{DoubleRatchet, RatchetProfile, RatchetState};

const VERSION: u32 = 1;
/// libolm's bound on stored skipped keys; an export keeps the newest.
const LIBOLM_MAX_SKIPPED_KEYS: usize = 40;

impl Session {
    /// Imports a libolm session pickle (version 1) encrypted under `pickle_key`.
    pub fn from_libolm_pickle(pickle: &str, pickle_key: &[u8]) -> Result<Self, LibolmPickleError> {
        let raw = decrypt(pickle, pickle_key)?;
        let mut input = ByteReader::new(&raw);
        match input.u32()? {
            VERSION => {}
            other => return Err(LibolmPickleError::UnsupportedVersion(other)),
        }
        let received_message = input.bool()?;
        let keys = SessionKeys {
            identity_key: Curve25519PublicKey::from_bytes(input.array()?),
            base_key: Curve25519PublicKey::from_bytes(input.array()?),
            one_time_key: Curve25519PublicKey::from_bytes(input.array()?),
        };
        let root_key = RootKey::from_bytes(&*input.secret::<32>()?);
        let (mut our_ratchet_key, mut sending_chain) = (None, None);
        for _ in 0..input.count(1)? {
            our_ratchet_key = Some(read_key_pair(&mut input)?);
            let chain_key = input.secret::<32>()?;
            sending_chain = Some(ChainKey::new(&chain_key, input.u32()?));
        }
        let mut receiving_chains = VecDeque::new();
        for _ in 0..input.count(OlmProfile::MAX_RECEIVING_CHAINS)? {
            let ratchet_key = Curve25519PublicKey::from_bytes(input.array()?);
            let chain_key = input.secret::<32>()?;
            let chain = ChainKey::new(&chain_key, input.u32()?);
            receiving_chains.push_front(ReceivingChain::new(ratchet_key, chain));
        }
        let mut newest_first = Vec::new();
        for _ in 0..input.count(OlmProfile::MAX_SKIPPED_KEYS)? {
            let ratchet_key = Curve25519PublicKey::from_bytes(input.array()?);
            let seed = MessageKeySeed::from_bytes(&*input.secret::<32>()?);
            let index = input.u32()?;
            newest_first.push(SkippedKey {
                ratchet_key,
                index,
                seed,
            });
        }
        input.finish()?;
        let mut skipped = SkippedKeys::default();
        for key in newest_first.into_iter().rev() {
            skipped.push(key, OlmProfile::MAX_SKIPPED_KEYS);
        }
        if our_ratchet_key.is_none() && receiving_chains.is_empty() {
            return Err(DecodeError::MissingField(0).into());
        }
        Ok(Self {
            keys,
            ratchet: DoubleRatchet::from_state(RatchetState {
                root_key,
                our_ratchet_key,
                sending_chain,
                previous_chain_length: 0,
                receiving_chains,
                skipped,
            }),
            received_message,
        })
    }

    /// Exports the session as a libolm version 1 pickle under `pickle_key`. libolm keeps at
    /// most 40 skipped message keys; older ones are left out.
    pub fn to_libolm_pickle(&self, pickle_key: &[u8]) -> String {
        let ratchet = &self.ratchet.state;
        let mut out = ByteWriter::default();
        out.u32(VERSION)
            .bool(self.received_message)
            .bytes(self.keys.identity_key.as_bytes())
            .bytes(self.keys.base_key.as_bytes())
            .bytes(self.keys.one_time_key.as_bytes())
            .bytes(ratchet.root_key.as_bytes());
        match (&ratchet.our_ratchet_key, &ratchet.sending_chain) {
            (Some(key), Some(chain)) => {
                out.u32(1);
                write_key_pair(&mut out, key);
                out.bytes(chain.key_bytes()).u32(chain.index());
            }
            _ => {
                out.u32(0);
            }
        }
        out.u32(ratchet.receiving_chains.len() as u32);
        for chain in ratchet.receiving_chains.iter().rev() {
            out.bytes(chain.ratchet_key.as_bytes())
                .bytes(chain.chain.key_bytes())
                .u32(chain.chain.index());
        }
        let newest: Vec<&SkippedKey> = ratchet
            .skipped
            .iter()
            .rev()
            .take(LIBOLM_MAX_SKIPPED_KEYS)
            .collect();
        out.u32(newest.len() as u32);
        for key in newest {
            out.bytes(key.ratchet_key.as_bytes())
                .bytes(key.seed.as_bytes())
                .u32(key.index);
        }
        encrypt(&out.finish(), pickle_key)
    }
}
