//! The ratchet state and its two transitions, encrypt and decrypt.
//!
//! Decrypt works on copies: it finds or derives the chain, advances a clone of it, checks the
//! MAC and decrypts, and only then writes the new chain, root key and skipped keys back. A
//! message that fails at any step leaves the state exactly as it was.

use std::collections::VecDeque;
use std::marker::PhantomData;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::chain::ReceivingChain;
use super::keys::{ChainKey, RootKey};
use super::skipped::{SkippedKey, SkippedKeys};
use super::{DecryptError, EncryptError, RatchetProfile};
use crate::crypto::{CipherKeys, Curve25519KeyPair, Curve25519PublicKey};

/// What the sender puts in a message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendingHeader {
    /// The sender's current ratchet public key.
    pub ratchet_key: Curve25519PublicKey,
    /// The message's index in the sending chain.
    pub index: u32,
    /// The length of the sender's previous sending chain (Signal's `pn`; Olm does not send it).
    pub previous_chain_length: u32,
}

/// The header fields the ratchet needs from a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedHeader {
    /// The sender's ratchet public key.
    pub ratchet_key: Curve25519PublicKey,
    /// The message's index in that chain.
    pub index: u32,
}

/// An encrypted message body and its truncated MAC, ready for the protocol's wire codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The encoded message as the protocol's encoder produced it (the MAC covers it).
    pub message: Vec<u8>,
    /// The MAC, truncated to the profile's length.
    pub mac: Vec<u8>,
}

/// The double-ratchet state of one session, for one protocol profile `P`. The profile is a
/// type so that a session of one protocol cannot be driven as another's; the code runs on
/// [`RatchetState`] with the profile's [`Params`] as a value, so it exists once in a binary
/// rather than once per protocol.
#[derive(Clone, Debug)]
pub struct DoubleRatchet<P> {
    pub(crate) state: RatchetState,
    profile: PhantomData<P>,
}

/// The fields of a [`DoubleRatchet`], whatever its profile.
#[derive(Clone, Debug)]
pub(crate) struct RatchetState {
    pub(crate) root_key: RootKey,
    /// Our newest ratchet key pair: it sends on the sending chain and answers the peer's next key.
    pub(crate) our_ratchet_key: Option<Curve25519KeyPair>,
    pub(crate) sending_chain: Option<ChainKey>,
    pub(crate) previous_chain_length: u32,
    /// Newest last.
    pub(crate) receiving_chains: VecDeque<ReceivingChain>,
    pub(crate) skipped: SkippedKeys,
}

/// A [`RatchetProfile`]'s constants as a value.
pub(crate) struct Params {
    root_info: &'static [u8],
    message_key_info: &'static [u8],
    mac_length: usize,
    max_message_gap: u32,
    pub(crate) max_skipped_keys: usize,
    pub(crate) max_receiving_chains: usize,
}

impl Params {
    pub(crate) const fn of<P: RatchetProfile>() -> Self {
        Self {
            root_info: P::ROOT_INFO,
            message_key_info: P::MESSAGE_KEY_INFO,
            mac_length: P::MAC_LENGTH,
            max_message_gap: P::MAX_MESSAGE_GAP,
            max_skipped_keys: P::MAX_SKIPPED_KEYS,
            max_receiving_chains: P::MAX_RECEIVING_CHAINS,
        }
    }
}

/// What decrypting one message will change, computed before anything is committed.
struct Plan {
    /// The chain to write back (and where it goes).
    chain: ReceivingChain,
    target: ChainTarget,
    /// The message's cipher keys (its seed is not kept).
    keys: CipherKeys,
    new_skipped: Vec<SkippedKey>,
    used_skipped: Option<usize>,
    new_root: Option<RootKey>,
}

/// The sending state after one message, computed by [`DoubleRatchet::encrypt_staged`]: the
/// next chain key's bytes (written over the current ones, so a steady-state message allocates
/// no new chain) and its index.
pub(crate) struct SendStep {
    next_chain_key: Zeroizing<[u8; 32]>,
    next_index: u32,
    /// The ratchet step the message started: the new root key and our new ratchet key pair.
    ratchet_step: Option<(RootKey, Curve25519KeyPair)>,
}

/// What [`DoubleRatchet::apply_send`] replaced, so that [`DoubleRatchet::undo_send`] can put it
/// back (a message to many sessions is all-or-nothing).
pub(crate) struct SendUndo {
    /// The sending chain's key bytes and index before the message (`None`: there was none).
    chain: Option<(Zeroizing<[u8; 32]>, u32)>,
    /// The root key and ratchet key pair a ratchet step replaced.
    ratchet_step: Option<(RootKey, Option<Curve25519KeyPair>)>,
}

/// What one received message changes, computed by [`DoubleRatchet::decrypt_staged`].
pub(crate) struct ReceiveStep(Plan);

impl ReceiveStep {
    /// The message opens a new receiving chain: applying it ends our sending chain.
    pub(crate) fn opens_chain(&self) -> bool {
        matches!(self.0.target, ChainTarget::New)
    }
}

enum ChainTarget {
    Existing(usize),
    New,
    Unchanged,
}

impl<P: RatchetProfile> DoubleRatchet<P> {
    const PARAMS: Params = Params::of::<P>();

    pub(crate) fn from_state(state: RatchetState) -> Self {
        Self {
            state,
            profile: PhantomData,
        }
    }

    /// A ratchet that can send at once on a chain derived during the key agreement
    /// (Olm's initiator: the first chain comes from the 3DH, not from a ratchet step).
    pub fn with_sending_chain(
        root_key: &[u8; 32],
        our_ratchet_key: Curve25519KeyPair,
        chain_key: &[u8; 32],
    ) -> Self {
        let mut state = RatchetState::empty(root_key);
        state.our_ratchet_key = Some(our_ratchet_key);
        state.sending_chain = Some(ChainKey::new(chain_key, 0));
        Self::from_state(state)
    }

    /// A ratchet whose first receiving chain came from the key agreement (Olm's responder).
    pub fn with_receiving_chain(
        root_key: &[u8; 32],
        their_ratchet_key: Curve25519PublicKey,
        chain_key: &[u8; 32],
    ) -> Self {
        let mut state = RatchetState::empty(root_key);
        state.receiving_chains.push_back(ReceivingChain::new(
            their_ratchet_key,
            ChainKey::new(chain_key, 0),
        ));
        Self::from_state(state)
    }

    /// A Signal-style initiator: one ratchet step against the responder's ratchet key at once.
    pub fn initiator(
        root_key: &[u8; 32],
        our_ratchet_key: Curve25519KeyPair,
        their_ratchet_key: &Curve25519PublicKey,
    ) -> Result<Self, EncryptError> {
        RatchetState::initiator(root_key, our_ratchet_key, their_ratchet_key, &Self::PARAMS)
            .map(Self::from_state)
    }

    /// A Signal-style responder: waits for the initiator's first message, answering with
    /// `our_ratchet_key` (the signed pre-key).
    pub fn responder(root_key: &[u8; 32], our_ratchet_key: Curve25519KeyPair) -> Self {
        let mut state = RatchetState::empty(root_key);
        state.our_ratchet_key = Some(our_ratchet_key);
        Self::from_state(state)
    }

    /// Our current ratchet public key, if we have one.
    pub fn our_ratchet_key(&self) -> Option<Curve25519PublicKey> {
        self.state
            .our_ratchet_key
            .as_ref()
            .map(Curve25519KeyPair::public_key)
    }

    /// The index the next sent message will have, if a sending chain exists.
    pub fn sending_index(&self) -> Option<u32> {
        self.state.sending_chain.as_ref().map(ChainKey::index)
    }

    /// Whether a message sent now needs randomness for a new ratchet key.
    pub fn needs_new_ratchet_key(&self) -> bool {
        self.state.sending_chain.is_none()
    }

    /// Encrypts `plaintext`. `encode` turns the header and AES ciphertext into the message
    /// bytes; the MAC is computed over `mac_prefix ‖ message`. The sending chain advances before
    /// this returns, so the caller can persist the state before the message leaves.
    pub fn encrypt(
        &mut self,
        rng: &mut impl CryptoRng,
        plaintext: &[u8],
        mac_prefix: &[&[u8]],
        encode: impl FnOnce(&SendingHeader, &[u8]) -> Vec<u8>,
    ) -> Result<Sealed, EncryptError> {
        let (sealed, step) = self.encrypt_staged(rng, plaintext, mac_prefix, encode)?;
        self.apply_send(step);
        Ok(sealed)
    }

    /// [`Self::encrypt`] without changing the state: the sending state after the message comes
    /// back as a [`SendStep`], which [`Self::apply_send`] writes. Encrypting to many sessions at
    /// once thus needs no copy of any of them to stay all-or-nothing.
    pub(crate) fn encrypt_staged(
        &self,
        rng: &mut impl CryptoRng,
        plaintext: &[u8],
        mac_prefix: &[&[u8]],
        encode: impl FnOnce(&SendingHeader, &[u8]) -> Vec<u8>,
    ) -> Result<(Sealed, SendStep), EncryptError> {
        // The one random thing a message may need, drawn only when a ratchet step can happen.
        let state = &self.state;
        let fresh = (state.sending_chain.is_none() && !state.receiving_chains.is_empty())
            .then(|| Curve25519KeyPair::generate(rng));
        let mut encode = Some(encode);
        let mut encode_once = |header: &SendingHeader, ciphertext: &[u8]| {
            encode
                .take()
                .map_or_else(Vec::new, |f| f(header, ciphertext))
        };
        state.encrypt_staged(
            fresh,
            plaintext,
            mac_prefix,
            &mut encode_once,
            &Self::PARAMS,
        )
    }

    /// Writes the sending state a [`Self::encrypt_staged`] on this state computed, and returns
    /// what it replaced (for [`Self::undo_send`]).
    pub(crate) fn apply_send(&mut self, step: SendStep) -> SendUndo {
        self.state.apply_send(step)
    }

    /// Puts back what [`Self::apply_send`] replaced: the state is as before that message.
    pub(crate) fn undo_send(&mut self, undo: SendUndo) {
        self.state.undo_send(undo);
    }

    /// Authenticates and decrypts one message. `authenticated` are the byte strings the MAC
    /// covers, in order; `tag` is the received MAC.
    pub fn decrypt(
        &mut self,
        header: &ReceivedHeader,
        authenticated: &[&[u8]],
        tag: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let (plaintext, step) = self.decrypt_staged(header, authenticated, tag, ciphertext)?;
        self.apply_receive(step);
        Ok(plaintext)
    }

    /// [`Self::decrypt`] without changing the state: what the message changes comes back as a
    /// [`ReceiveStep`], which [`Self::apply_receive`] writes.
    pub(crate) fn decrypt_staged(
        &self,
        header: &ReceivedHeader,
        authenticated: &[&[u8]],
        tag: &[u8],
        ciphertext: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, ReceiveStep), DecryptError> {
        self.state
            .decrypt_staged(header, authenticated, tag, ciphertext, &Self::PARAMS)
    }

    /// Writes what a [`Self::decrypt_staged`] on this state computed.
    pub(crate) fn apply_receive(&mut self, step: ReceiveStep) {
        self.state.commit(step.0, &Self::PARAMS);
    }

    /// Whether `header` would open a new receiving chain (the first message of a ratchet step).
    pub fn is_new_chain(&self, header: &ReceivedHeader) -> bool {
        self.state.find_chain(&header.ratchet_key).is_none()
    }
}

/// The ratchet's code, written once for every profile.
impl RatchetState {
    fn empty(root_key: &[u8; 32]) -> Self {
        Self {
            root_key: RootKey::from_bytes(root_key),
            our_ratchet_key: None,
            sending_chain: None,
            previous_chain_length: 0,
            receiving_chains: VecDeque::new(),
            skipped: SkippedKeys::default(),
        }
    }

    fn initiator(
        root_key: &[u8; 32],
        our_ratchet_key: Curve25519KeyPair,
        their_ratchet_key: &Curve25519PublicKey,
        params: &Params,
    ) -> Result<Self, EncryptError> {
        let mut ratchet = Self::empty(root_key);
        let dh = our_ratchet_key.diffie_hellman(their_ratchet_key)?;
        let (root, chain) = ratchet.root_key.step(dh.as_bytes(), params.root_info);
        ratchet.root_key = root;
        ratchet.sending_chain = Some(chain);
        ratchet.our_ratchet_key = Some(our_ratchet_key);
        Ok(ratchet)
    }

    /// `fresh` is the key pair a ratchet step sends with (drawn by the caller when one can
    /// happen).
    fn encrypt_staged(
        &self,
        fresh: Option<Curve25519KeyPair>,
        plaintext: &[u8],
        mac_prefix: &[&[u8]],
        encode: &mut dyn FnMut(&SendingHeader, &[u8]) -> Vec<u8>,
        params: &Params,
    ) -> Result<(Sealed, SendStep), EncryptError> {
        let new_chain;
        let (chain, ratchet_step) = match (&self.sending_chain, &self.our_ratchet_key) {
            (Some(chain), Some(_)) => (chain, None),
            (None, _) => {
                let (root, chain, key) = self.new_sending_chain(fresh, params)?;
                new_chain = chain;
                (&new_chain, Some((root, key)))
            }
            (Some(_), None) => return Err(EncryptError::NoSendingChain),
        };
        let our_key = match (&ratchet_step, &self.our_ratchet_key) {
            (Some((_, key)), _) | (None, Some(key)) => key.public_key(),
            (None, None) => return Err(EncryptError::NoSendingChain),
        };
        let next_index = chain
            .index()
            .checked_add(1)
            .ok_or(EncryptError::ChainExhausted)?;
        let header = SendingHeader {
            ratchet_key: our_key,
            index: chain.index(),
            previous_chain_length: self.previous_chain_length,
        };
        let mut hmac = chain.keyed();
        let keys = chain.message_cipher_keys(&mut hmac, params.message_key_info);
        let next_chain_key = ChainKey::next_key(&mut hmac);

        let ciphertext = keys.encrypt(plaintext);
        let message = encode(&header, &ciphertext);
        // The MAC's parts on the stack for the prefixes the protocols use (none, or two keys).
        let full_mac = match mac_prefix {
            [] => keys.mac(&[&message]),
            [first] => keys.mac(&[first, &message]),
            [first, second] => keys.mac(&[first, second, &message]),
            _ => {
                let mut parts = mac_prefix.to_vec();
                parts.push(&message);
                keys.mac(&parts)
            }
        };
        let mac = full_mac[..params.mac_length].to_vec();
        Ok((
            Sealed { message, mac },
            SendStep {
                next_chain_key,
                next_index,
                ratchet_step,
            },
        ))
    }

    fn apply_send(&mut self, step: SendStep) -> SendUndo {
        let chain = match &mut self.sending_chain {
            Some(chain) => {
                let old = (Zeroizing::new(*chain.key_bytes()), chain.index());
                chain.set(&step.next_chain_key, step.next_index);
                Some(old)
            }
            None => {
                self.sending_chain = Some(ChainKey::new(&step.next_chain_key, step.next_index));
                None
            }
        };
        let ratchet_step = step.ratchet_step.map(|(root, key)| {
            (
                std::mem::replace(&mut self.root_key, root),
                self.our_ratchet_key.replace(key),
            )
        });
        SendUndo {
            chain,
            ratchet_step,
        }
    }

    fn undo_send(&mut self, undo: SendUndo) {
        match (undo.chain, &mut self.sending_chain) {
            (Some((key, index)), Some(chain)) => chain.set(&key, index),
            (Some((key, index)), None) => self.sending_chain = Some(ChainKey::new(&key, index)),
            (None, _) => self.sending_chain = None,
        }
        if let Some((root, key)) = undo.ratchet_step {
            self.root_key = root;
            self.our_ratchet_key = key;
        }
    }

    /// A ratchet step on the sending side: a fresh key pair against the peer's newest key.
    fn new_sending_chain(
        &self,
        fresh: Option<Curve25519KeyPair>,
        params: &Params,
    ) -> Result<(RootKey, ChainKey, Curve25519KeyPair), EncryptError> {
        let their_key = self
            .receiving_chains
            .back()
            .map(|chain| chain.ratchet_key)
            .ok_or(EncryptError::NoSendingChain)?;
        let our_key = fresh.ok_or(EncryptError::NoSendingChain)?;
        let dh = our_key.diffie_hellman(&their_key)?;
        let (root, chain) = self.root_key.step(dh.as_bytes(), params.root_info);
        Ok((root, chain, our_key))
    }

    fn decrypt_staged(
        &self,
        header: &ReceivedHeader,
        authenticated: &[&[u8]],
        tag: &[u8],
        ciphertext: &[u8],
        params: &Params,
    ) -> Result<(Zeroizing<Vec<u8>>, ReceiveStep), DecryptError> {
        // A tag of the wrong length can never verify: refuse it before any key derivation.
        if tag.len() != params.mac_length {
            return Err(crate::crypto::CipherError::Mac.into());
        }
        let plan = self.plan(header, params)?;
        plan.keys.verify_mac(authenticated, tag)?;
        let plaintext = plan.keys.decrypt(ciphertext)?;
        Ok((plaintext, ReceiveStep(plan)))
    }

    fn find_chain(&self, ratchet_key: &Curve25519PublicKey) -> Option<usize> {
        self.receiving_chains
            .iter()
            .rposition(|chain| chain.ratchet_key == *ratchet_key)
    }

    fn plan(&self, header: &ReceivedHeader, params: &Params) -> Result<Plan, DecryptError> {
        let index = header.index;
        let (chain, target, new_root) = match self.find_chain(&header.ratchet_key) {
            Some(position) => {
                let chain = &self.receiving_chains[position];
                if index < chain.chain.index() {
                    return self.plan_skipped(chain, index, params);
                }
                (chain.clone(), ChainTarget::Existing(position), None)
            }
            None => {
                let our_key = self
                    .our_ratchet_key
                    .as_ref()
                    .ok_or(DecryptError::UnexpectedRatchetKey)?;
                let dh = our_key.diffie_hellman(&header.ratchet_key)?;
                let (root, chain_key) = self.root_key.step(dh.as_bytes(), params.root_info);
                let chain = ReceivingChain::new(header.ratchet_key, chain_key);
                (chain, ChainTarget::New, Some(root))
            }
        };
        self.plan_ahead(chain, target, new_root, index, params)
    }

    fn plan_skipped(
        &self,
        chain: &ReceivingChain,
        index: u32,
        params: &Params,
    ) -> Result<Plan, DecryptError> {
        let position = self.skipped.position(&chain.ratchet_key, index).ok_or(
            if index < chain.evicted_below {
                DecryptError::Expired { index }
            } else {
                DecryptError::Duplicate { index }
            },
        )?;
        let keys = self
            .skipped
            .get(position)
            .map(|key| key.seed.cipher_keys(params.message_key_info))
            .ok_or(DecryptError::Duplicate { index })?;
        Ok(Plan {
            chain: chain.clone(),
            target: ChainTarget::Unchanged,
            keys,
            new_skipped: Vec::new(),
            used_skipped: Some(position),
            new_root: None,
        })
    }

    fn plan_ahead(
        &self,
        mut chain: ReceivingChain,
        target: ChainTarget,
        new_root: Option<RootKey>,
        index: u32,
        params: &Params,
    ) -> Result<Plan, DecryptError> {
        let gap = index - chain.chain.index();
        if gap > params.max_message_gap {
            return Err(DecryptError::TooFarAhead {
                index,
                gap,
                limit: params.max_message_gap,
            });
        }
        // Only the newest skipped keys could survive eviction, so only those are kept.
        let keep_from = index.saturating_sub(params.max_skipped_keys as u32);
        let mut new_skipped = Vec::new();
        // One keying per chain key: each step's seed and next key come from the same HMAC.
        let mut hmac = chain.chain.keyed();
        while chain.chain.index() < index {
            if chain.chain.index() >= keep_from {
                new_skipped.push(SkippedKey {
                    ratchet_key: chain.ratchet_key,
                    index: chain.chain.index(),
                    seed: chain.chain.message_key_seed(&mut hmac),
                });
            } else {
                chain.evicted_below = chain.chain.index() + 1;
            }
            chain
                .chain
                .advance(&mut hmac)
                .ok_or(DecryptError::Expired { index })?;
            hmac.rekey(chain.chain.key_bytes());
        }
        let keys = chain
            .chain
            .message_cipher_keys(&mut hmac, params.message_key_info);
        // The message's own index is now used: the chain moves past it.
        chain
            .chain
            .advance(&mut hmac)
            .ok_or(DecryptError::Expired { index })?;
        Ok(Plan {
            chain,
            target,
            keys,
            new_skipped,
            used_skipped: None,
            new_root,
        })
    }

    fn commit(&mut self, plan: Plan, params: &Params) {
        if let Some(position) = plan.used_skipped {
            self.skipped.remove(position);
        }
        match plan.target {
            ChainTarget::Unchanged => {}
            ChainTarget::Existing(position) => self.receiving_chains[position] = plan.chain,
            ChainTarget::New => {
                self.receiving_chains.push_back(plan.chain);
                if self.receiving_chains.len() > params.max_receiving_chains
                    && let Some(dropped) = self.receiving_chains.pop_front()
                {
                    self.skipped.retain_other_chains(&dropped.ratchet_key);
                }
                // The peer has moved on: our key answered theirs and is spent. The next message
                // we send starts a new sending chain with a fresh key.
                if let Some(length) = self.sending_chain.as_ref().map(ChainKey::index) {
                    self.previous_chain_length = length;
                }
                self.sending_chain = None;
                self.our_ratchet_key = None;
            }
        }
        if let Some(root) = plan.new_root {
            self.root_key = root;
        }
        for key in plan.new_skipped {
            for evicted in self.skipped.push(key, params.max_skipped_keys) {
                if let Some(chain) = self
                    .receiving_chains
                    .iter_mut()
                    .find(|chain| chain.ratchet_key == evicted.ratchet_key)
                {
                    chain.evicted_below = chain.evicted_below.max(evicted.index + 1);
                }
            }
        }
    }
}
