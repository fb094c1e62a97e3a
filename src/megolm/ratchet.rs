//! The Megolm ratchet: four 32-byte parts `R0‖R1‖R2‖R3` and a u32 index.
//!
//! Part `i` changes every `2^(8·(3−i))` steps. When the index's lower bits roll over at part `h`
//! (the highest part whose lower bytes are all zero after the increment; part 3 otherwise),
//! parts `3` down to `h` are re-derived from the old `R_h` with `R_i = HMAC-SHA-256(R_h, [i])`.
//! Because a part never depends on a lower one, jumping to any later index costs at most 255
//! hashes per part, about a thousand in all, whatever the distance.

use std::fmt;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::MESSAGE_KEY_INFO;
use crate::crypto::{ByteHmac, CipherKeys};

const PART_LENGTH: usize = 32;
const PART_COUNT: usize = 4;

/// Why a ratchet could not move to an index. The ratchet is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AdvanceError {
    /// The requested index is below the ratchet's: its keys are gone, by design.
    #[error("index {requested} is before the ratchet's index {current}")]
    InThePast {
        /// The ratchet's index.
        current: u32,
        /// The index asked for.
        requested: u32,
    },
    /// The ratchet is at `u32::MAX`, the last index.
    #[error("the ratchet is at the last index")]
    Exhausted,
}

/// The ratchet state: wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MegolmRatchet {
    parts: Box<[[u8; PART_LENGTH]; PART_COUNT]>,
    index: u32,
}

impl MegolmRatchet {
    /// The length of the ratchet's bytes.
    pub const LENGTH: usize = PART_LENGTH * PART_COUNT;

    /// A fresh ratchet at index 0, its 128 bytes drawn from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut ratchet = Self::empty(0);
        for part in ratchet.parts.iter_mut() {
            rng.fill_bytes(part);
        }
        ratchet
    }

    /// A ratchet from its bytes `R0‖R1‖R2‖R3` at `index`.
    pub fn from_bytes(bytes: &[u8; Self::LENGTH], index: u32) -> Self {
        let mut ratchet = Self::empty(index);
        for (part, chunk) in ratchet
            .parts
            .iter_mut()
            .zip(bytes.chunks_exact(PART_LENGTH))
        {
            part.copy_from_slice(chunk);
        }
        ratchet
    }

    fn empty(index: u32) -> Self {
        Self {
            parts: Box::new([[0; PART_LENGTH]; PART_COUNT]),
            index,
        }
    }

    /// The index of the message these keys encrypt.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The ratchet's bytes `R0‖R1‖R2‖R3`, a secret.
    pub fn as_bytes(&self) -> &[u8; Self::LENGTH] {
        self.parts
            .as_flattened()
            .try_into()
            .unwrap_or_else(|_| unreachable!())
    }

    /// The message keys for this index: HKDF(zero salt, `R0‖R1‖R2‖R3`, `"MEGOLM_KEYS"`, 80).
    pub fn cipher_keys(&self) -> CipherKeys {
        CipherKeys::derive(self.as_bytes(), MESSAGE_KEY_INFO)
    }

    /// Moves to the next index.
    pub fn advance(&mut self) -> Result<(), AdvanceError> {
        let next = self.index.checked_add(1).ok_or(AdvanceError::Exhausted)?;
        let highest = if next & 0x00FF_FFFF == 0 {
            0
        } else if next & 0x0000_FFFF == 0 {
            1
        } else if next & 0x0000_00FF == 0 {
            2
        } else {
            3
        };
        self.step(highest);
        self.index = next;
        Ok(())
    }

    /// Moves forward to `index` in at most 4 × 255 steps (plus 10 re-derivations). Asking for
    /// the current index is a no-op; asking for an earlier one is an error and changes nothing.
    pub fn advance_to(&mut self, index: u32) -> Result<(), AdvanceError> {
        if index < self.index {
            return Err(AdvanceError::InThePast {
                current: self.index,
                requested: index,
            });
        }
        for part in 0..PART_COUNT {
            let shift = 8 * (PART_COUNT - 1 - part) as u32;
            let current = (self.index >> shift) & 0xFF;
            let target = (index >> shift) & 0xFF;
            // The higher bytes already agree, so `target >= current` here.
            let steps = target - current;
            if steps == 0 {
                continue;
            }
            // Every step but the last only moves this part; the last also resets the lower
            // parts, which a sequence of single advances would have re-derived from the
            // part's value just before its final step.
            if steps > 1 {
                // One hasher for the walk: its scratch is wiped once, not at every step.
                let mut hmac = ByteHmac::new(&self.parts[part]);
                self.parts[part] = hmac.mac(part as u8);
                for _ in 2..steps {
                    hmac.rekey(&self.parts[part]);
                    self.parts[part] = hmac.mac(part as u8);
                }
            }
            self.step(part);
            // The lower bytes are now zero, as after the roll-over that moves this part.
            let kept = if shift == 24 {
                0
            } else {
                u32::MAX << (shift + 8)
            };
            self.index = (index & kept) | (target << shift);
        }
        Ok(())
    }

    /// Re-derives parts 3 down to `highest` from the current `R_highest`.
    /// `R_i = HMAC-SHA-256(key = R_highest, data = [i])`, the key set up once for all parts.
    fn step(&mut self, highest: usize) {
        let mut key = ByteHmac::new(&self.parts[highest]);
        for part in (highest..PART_COUNT).rev() {
            self.parts[part] = key.mac(part as u8);
        }
    }
}

impl fmt::Debug for MegolmRatchet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MegolmRatchet")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac_sha256;

    fn seeded(index: u32) -> MegolmRatchet {
        let mut bytes = [0u8; MegolmRatchet::LENGTH];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = i as u8;
        }
        MegolmRatchet::from_bytes(&bytes, index)
    }

    fn jumped(from: u32, to: u32) -> MegolmRatchet {
        let mut ratchet = seeded(from);
        ratchet.advance_to(to).unwrap();
        assert_eq!(ratchet.index(), to);
        ratchet
    }

    #[test]
    fn single_steps_match_jumps_across_every_roll_over() {
        for start in [0u32, 0xF0, 0xFFF0, 0x00FF_FFF0, 0x01FF_FFF0, 0xFFFF_FFF0] {
            let mut stepped = seeded(start);
            for _ in 0..0x20u32.min(u32::MAX - start) {
                stepped.advance().unwrap();
                let jumped = jumped(start, stepped.index());
                assert_eq!(
                    stepped.as_bytes(),
                    jumped.as_bytes(),
                    "at {:#x}",
                    stepped.index()
                );
            }
        }
    }

    #[test]
    fn long_single_step_runs_match_jumps() {
        // 0 → 0x2_05 steps through two changes of R2 and every value of R3's byte.
        let mut stepped = seeded(0);
        for _ in 0..0x205 {
            stepped.advance().unwrap();
        }
        assert_eq!(stepped.as_bytes(), jumped(0, 0x205).as_bytes());
        // A chain of jumps equals one jump.
        let mut chained = seeded(0);
        for index in [
            0x3,
            0xFF,
            0x100,
            0x1_0203,
            0xFF_FFFF,
            0x100_0000,
            0x1234_5678,
        ] {
            chained.advance_to(index).unwrap();
            assert_eq!(chained.as_bytes(), jumped(0, index).as_bytes());
        }
    }

    #[test]
    fn roll_overs_re_derive_from_the_old_high_part() {
        let mut ratchet = seeded(0xFF);
        let old = *ratchet.as_bytes();
        ratchet.advance().unwrap();
        let r2: [u8; 32] = old[64..96].try_into().unwrap();
        assert_eq!(&ratchet.as_bytes()[..64], &old[..64]);
        assert_eq!(ratchet.as_bytes()[64..96], hmac_sha256(&r2, &[&[2]]));
        assert_eq!(ratchet.as_bytes()[96..], hmac_sha256(&r2, &[&[3]]));
    }

    #[test]
    fn forward_only() {
        let mut ratchet = seeded(10);
        assert_eq!(
            ratchet.advance_to(9),
            Err(AdvanceError::InThePast {
                current: 10,
                requested: 9
            })
        );
        let before = *ratchet.as_bytes();
        ratchet.advance_to(10).unwrap();
        assert_eq!(ratchet.as_bytes(), &before);

        let mut last = seeded(u32::MAX);
        assert_eq!(last.advance(), Err(AdvanceError::Exhausted));
        assert_eq!(last.index(), u32::MAX);
    }

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", seeded(7));
        assert_eq!(text, "MegolmRatchet { index: 7, .. }");
    }
}
