//! splitmix64: the deterministic generator the tests share, so that a seed gives the same keys,
//! nonces, padding and choices on every run.

use std::convert::Infallible;

/// Which half of the next 64-bit word `next_u32` answers. The streams of `next_u64` and
/// `fill_bytes` are the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum U32Half {
    /// The low 32 bits (`word as u32`).
    Low,
    /// The high 32 bits (`word >> 32`).
    High,
}

/// splitmix64 over a 64-bit state. `fill_bytes` takes one word per 8 bytes, little-endian, and
/// the first bytes of a word for a shorter tail.
#[derive(Clone, Debug)]
pub struct TestRng {
    state: u64,
    u32_half: U32Half,
}

impl TestRng {
    /// Seeded with `seed`; `next_u32` answers the low half of each word.
    pub const fn new(seed: u64) -> Self {
        Self::with_u32_half(seed, U32Half::Low)
    }

    /// Seeded with `seed`; `next_u32` answers the given half of each word.
    pub const fn with_u32_half(seed: u64, u32_half: U32Half) -> Self {
        Self {
            state: seed,
            u32_half,
        }
    }

    /// The next 64-bit word.
    pub fn next_word(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next `N` bytes, as `fill_bytes` would give them.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        rand_core::Rng::fill_bytes(self, &mut out);
        out
    }
}

impl rand_core::TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let word = self.next_word();
        Ok(match self.u32_half {
            U32Half::Low => word as u32,
            U32Half::High => (word >> 32) as u32,
        })
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_word())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}
