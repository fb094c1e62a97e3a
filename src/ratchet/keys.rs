//! The ratchet's secret values, one type per role, boxed and wiped on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{ByteHmac, CipherKeys, hkdf_sha256};

/// Input bytes for the two chain-step HMACs (the same in Olm, Megolm and Signal). Both are
/// one-byte HMACs under the chain key, so they run on [`ByteHmac`], keyed once for both: a
/// receiver jumping ahead (up to the profile's gap, forged messages included) pays six
/// compressions a step and nothing else.
const MESSAGE_KEY_SEED: u8 = 0x01;
const CHAIN_KEY_SEED: u8 = 0x02;

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub(crate) struct $name(Box<[u8; 32]>);

        impl $name {
            pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
                Self(Box::new(*bytes))
            }

            pub(crate) fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<secret>)"))
            }
        }
    };
}

secret_bytes!(
    /// The root key: mixed with every new Diffie-Hellman output.
    RootKey
);
secret_bytes!(
    /// A chain key at some index.
    ChainKeyBytes
);
secret_bytes!(
    /// The seed of one message's cipher keys.
    MessageKeySeed
);

impl RootKey {
    /// One root step: `root' ‖ chain = HKDF(salt = root, ikm = dh, info, 64)`.
    pub(crate) fn step(&self, dh: &[u8; 32], info: &[u8]) -> (RootKey, ChainKey) {
        let mut okm = Zeroizing::new([0u8; 64]);
        hkdf_sha256(self.as_bytes(), dh, info, okm.as_mut());
        let (root, chain) = split(&okm);
        (RootKey::from_bytes(&root), ChainKey::new(&chain, 0))
    }
}

/// Splits 64 secret bytes into two 32-byte halves, both wiped when dropped.
pub(crate) fn split(bytes: &[u8; 64]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut first = Zeroizing::new([0u8; 32]);
    let mut second = Zeroizing::new([0u8; 32]);
    first.copy_from_slice(&bytes[..32]);
    second.copy_from_slice(&bytes[32..]);
    (first, second)
}

/// A chain key and the index of the next message key it will give.
#[derive(Clone, Debug)]
pub(crate) struct ChainKey {
    key: ChainKeyBytes,
    index: u32,
}

impl ChainKey {
    pub(crate) fn new(key: &[u8; 32], index: u32) -> Self {
        Self {
            key: ChainKeyBytes::from_bytes(key),
            index,
        }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn key_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The HMAC keyed with this chain key: one keying (two compressions) serves both of a
    /// step's inputs, the message key seed and the next chain key.
    pub(crate) fn keyed(&self) -> ByteHmac {
        ByteHmac::new(self.key.as_bytes())
    }

    /// The message key seed at the current index; `hmac` is keyed with this chain key
    /// ([`Self::keyed`]).
    pub(crate) fn message_key_seed(&self, hmac: &mut ByteHmac) -> MessageKeySeed {
        let mut seed = hmac.mac(MESSAGE_KEY_SEED);
        let key = MessageKeySeed::from_bytes(&seed);
        seed.zeroize();
        key
    }

    /// The cipher keys of the message at the current index, without keeping its seed (what a
    /// sender needs: nothing is stored for later); `hmac` is keyed with this chain key.
    pub(crate) fn message_cipher_keys(&self, hmac: &mut ByteHmac, info: &[u8]) -> CipherKeys {
        let seed = Zeroizing::new(hmac.mac(MESSAGE_KEY_SEED));
        CipherKeys::derive(seed.as_ref(), info)
    }

    /// The chain key at the next index (what [`Self::advance`] would move to), without moving;
    /// `hmac` is keyed with this chain key.
    pub(crate) fn next_key(hmac: &mut ByteHmac) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac.mac(CHAIN_KEY_SEED))
    }

    /// Overwrites the key and index in place (no new allocation for the key).
    pub(crate) fn set(&mut self, key: &[u8; 32], index: u32) {
        *self.key.0 = *key;
        self.index = index;
    }

    /// Moves to the next index with `hmac` keyed with the current chain key; `None` if the
    /// index would overflow. `hmac` still holds the old key: [`ByteHmac::rekey`] it with
    /// [`Self::key_bytes`] before another step.
    pub(crate) fn advance(&mut self, hmac: &mut ByteHmac) -> Option<()> {
        let index = self.index.checked_add(1)?;
        let mut next = hmac.mac(CHAIN_KEY_SEED);
        *self.key.0 = next;
        next.zeroize();
        self.index = index;
        Some(())
    }
}

impl MessageKeySeed {
    pub(crate) fn cipher_keys(&self, info: &[u8]) -> CipherKeys {
        CipherKeys::derive(self.as_bytes(), info)
    }
}
