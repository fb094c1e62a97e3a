//! The ratchet's part of the storage format (see `persist`): fixed-width big-endian fields.
//! Public keys are stored beside their secrets, so restoring needs no curve arithmetic.

use std::collections::VecDeque;

use super::chain::ReceivingChain;
use super::keys::{ChainKey, MessageKeySeed, RootKey};
use super::skipped::{SkippedKey, SkippedKeys};
use super::state::{Params, RatchetState};
use super::{DoubleRatchet, RatchetProfile};
use crate::codec::DecodeError;
use crate::codec::bytes::{ByteReader, ByteWriter};
use crate::crypto::{Curve25519KeyPair, Curve25519PublicKey, Curve25519SecretKey};

impl<P: RatchetProfile> DoubleRatchet<P> {
    pub(crate) fn write_to(&self, out: &mut ByteWriter) {
        self.state.write_to(out);
    }

    pub(crate) fn read_from(input: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        RatchetState::read_from(input, &Params::of::<P>()).map(Self::from_state)
    }
}

impl RatchetState {
    fn write_to(&self, out: &mut ByteWriter) {
        out.bytes(self.root_key.as_bytes());
        out.bool(self.our_ratchet_key.is_some());
        if let Some(key) = &self.our_ratchet_key {
            write_key_pair(out, key);
        }
        out.bool(self.sending_chain.is_some());
        if let Some(chain) = &self.sending_chain {
            out.bytes(chain.key_bytes()).u32(chain.index());
        }
        out.u32(self.previous_chain_length);
        out.u32(self.receiving_chains.len() as u32);
        for chain in &self.receiving_chains {
            out.bytes(chain.ratchet_key.as_bytes())
                .bytes(chain.chain.key_bytes())
                .u32(chain.chain.index())
                .u32(chain.evicted_below);
        }
        out.u32(self.skipped.len() as u32);
        for key in self.skipped.iter() {
            out.bytes(key.ratchet_key.as_bytes())
                .u32(key.index)
                .bytes(key.seed.as_bytes());
        }
    }

    fn read_from(input: &mut ByteReader<'_>, params: &Params) -> Result<Self, DecodeError> {
        let root_key = RootKey::from_bytes(&*input.secret::<32>()?);
        let our_ratchet_key = if input.bool()? {
            Some(read_key_pair(input)?)
        } else {
            None
        };
        let sending_chain = if input.bool()? {
            let key = input.secret::<32>()?;
            Some(ChainKey::new(&key, input.u32()?))
        } else {
            None
        };
        let previous_chain_length = input.u32()?;
        let mut receiving_chains = VecDeque::new();
        for _ in 0..input.count(params.max_receiving_chains)? {
            let ratchet_key = Curve25519PublicKey::from_bytes(input.array()?);
            let key = input.secret::<32>()?;
            let mut chain = ReceivingChain::new(ratchet_key, ChainKey::new(&key, input.u32()?));
            chain.evicted_below = input.u32()?;
            receiving_chains.push_back(chain);
        }
        let mut skipped = SkippedKeys::default();
        for _ in 0..input.count(params.max_skipped_keys)? {
            let ratchet_key = Curve25519PublicKey::from_bytes(input.array()?);
            let index = input.u32()?;
            let seed = MessageKeySeed::from_bytes(&*input.secret::<32>()?);
            skipped.push(
                SkippedKey {
                    ratchet_key,
                    index,
                    seed,
                },
                params.max_skipped_keys,
            );
        }
        Ok(Self {
            root_key,
            our_ratchet_key,
            sending_chain,
            previous_chain_length,
            receiving_chains,
            skipped,
        })
    }
}

pub(crate) fn write_key_pair(out: &mut ByteWriter, key: &Curve25519KeyPair) {
    out.bytes(&*key.secret().to_bytes())
        .bytes(key.public_key().as_bytes());
}

pub(crate) fn read_key_pair(input: &mut ByteReader<'_>) -> Result<Curve25519KeyPair, DecodeError> {
    let secret = Curve25519SecretKey::from_bytes(&*input.secret::<32>()?);
    let public = Curve25519PublicKey::from_bytes(input.array()?);
    Ok(Curve25519KeyPair::from_parts_unchecked(secret, public))
}
