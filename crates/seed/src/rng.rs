//! Where randomness comes from: every decision is a function of the seed and of what it is
//! about, never of the order in which things were generated. That is what lets patients be
//! generated one at a time, in parallel chunks, or singly for a test, with the same result.
//!
//! Two sources:
//! - [`stream`]: an independent ChaCha8 stream per (purpose, index), for content (a patient's
//!   demographics, a patient's history).
//! - [`unit`] / [`mix`]: a stateless hash for decisions that two parts of the generator must
//!   agree on without talking to each other (whether a clinic slot is taken: the shared part
//!   writes it as free, the patient's record books it).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is for; each purpose gets its own family of streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A household: its shape, family name, address, ages of the family members.
    Household = 1,
    /// A patient's profile: demographics, conditions, referrals (cheap, recomputed often).
    Profile = 2,
    /// A patient's record: the content of their history.
    Record = 3,
    /// The shared part: organisations and staff.
    Region = 4,
}

/// An independent stream for `(seed, purpose, index)`.
pub(crate) fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, purpose as u64));
    rng.set_stream(index);
    rng
}

/// SplitMix64's finaliser: a bijective scramble of 64 bits.
pub(crate) fn scramble(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of two words.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    scramble(scramble(a) ^ b.rotate_left(17) ^ 0x2545_F491_4F6C_DD1D)
}

/// A uniform number in [0, 1) determined by `(seed, a, b, c)`.
pub(crate) fn unit(seed: u64, a: u64, b: u64, c: u64) -> f64 {
    let h = mix(mix(mix(seed, a), b), c);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Small helpers on any generator.
pub(crate) trait Draw {
    fn chance(&mut self, p: f64) -> bool;
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T;
    fn pick_weighted<'a, T>(&mut self, items: &'a [(T, f64)]) -> &'a T;
    fn normal(&mut self, mean: f64, sd: f64) -> f64;
}

impl<R: Rng> Draw for R {
    fn chance(&mut self, p: f64) -> bool {
        self.random::<f64>() < p
    }

    /// `items` is never empty in this crate (they are constant tables).
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.random_range(0..items.len().max(1));
        &items[i.min(items.len().saturating_sub(1))]
    }

    fn pick_weighted<'a, T>(&mut self, items: &'a [(T, f64)]) -> &'a T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.random::<f64>() * total;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len().saturating_sub(1)].0
    }

    /// Box–Muller: one normal deviate.
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1: f64 = self.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.random();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_index_and_purpose_and_repeat_exactly() {
        let a: u64 = stream(7, Purpose::Record, 1).random();
        let b: u64 = stream(7, Purpose::Record, 2).random();
        let c: u64 = stream(7, Purpose::Profile, 1).random();
        let again: u64 = stream(7, Purpose::Record, 1).random();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, again);
    }

    #[test]
    fn unit_is_spread_over_the_interval() {
        let n = 10_000;
        let below_half = (0..n).filter(|&i| unit(1, 2, 3, i) < 0.5).count();
        assert!((4_700..5_300).contains(&below_half), "{below_half}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&unit(9, i, 0, 0))));
    }
}
