//! Seeded randomness: one ChaCha stream per component.
//!
//! Every random decision of a run is drawn from a stream named after the
//! component that makes it ("disk", "pipe", "workload", "fault:torn", ...).
//! All streams share the run's seed and differ by their ChaCha stream
//! number, a hash of the name, so adding a component or a fault kind never
//! shifts what the others draw.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The run's seed, and the streams derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streams {
    seed: u64,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        Streams { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The stream of `component`: the same name always gives the same
    /// sequence for the same seed.
    pub fn stream(&self, component: &str) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(fnv1a(component.as_bytes()));
        rng
    }
}

/// FNV-1a, 64-bit: a fixed, platform-independent hash of a stream's name.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The engine's source of guids, fed from a ChaCha stream.
pub struct ChaChaSource(pub ChaCha8Rng);

impl engine::context::RandomSource for ChaChaSource {
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let s = Streams::new(7);
        let a: Vec<u64> = (0..4).map(|_| s.stream("disk").next_u64()).collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "a fresh stream restarts"
        );
        let mut disk = s.stream("disk");
        let mut pipe = s.stream("pipe");
        let d: Vec<u64> = (0..4).map(|_| disk.next_u64()).collect();
        let p: Vec<u64> = (0..4).map(|_| pipe.next_u64()).collect();
        assert_ne!(d, p);
        assert_ne!(Streams::new(8).stream("disk").next_u64(), d[0]);
    }
}
