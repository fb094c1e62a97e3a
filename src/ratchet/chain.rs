//! A receiving chain: the peer's ratchet public key and where its chain key stands.

use super::keys::ChainKey;
use crate::crypto::Curve25519PublicKey;

#[derive(Clone, Debug)]
pub(crate) struct ReceivingChain {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) chain: ChainKey,
    /// Indices below this may have had their skipped keys evicted: a missing key there is
    /// "expired", above it "already decrypted".
    pub(crate) evicted_below: u32,
}

impl ReceivingChain {
    pub(crate) fn new(ratchet_key: Curve25519PublicKey, chain: ChainKey) -> Self {
        Self {
            ratchet_key,
            chain,
            evicted_below: 0,
        }
    }
}
