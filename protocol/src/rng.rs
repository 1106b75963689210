//! The cores' only source of randomness: a seeded SplitMix64 generator.
//!
//! It is part of the core's state (so it is `Clone + Eq + Hash` like the rest, which the model
//! checkers need) and is seeded from the configuration: the same seed gives the same choices.
//! SplitMix64 (Steele, Lea, Flood 2014) passes BigCrush and is eight lines; jitter needs nothing
//! stronger.

/// A seeded pseudo-random generator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole future is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`, without modulo bias worth measuring (Lemire's multiply-shift).
    pub fn up_to(&mut self, max: u32) -> u32 {
        let range = u64::from(max) + 1;
        ((u128::from(self.next_u64()) * u128::from(range)) >> 64) as u32
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}
