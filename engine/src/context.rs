//! The host services the engine needs and must not own: time and randomness.
//!
//! ZFS reaches them through `zfs_context.h` (`gethrestime`, `spa_get_random`).
//! zsim passes them in as traits, so that the simulator can drive the clock
//! and seed every random choice, and the same run always does the same thing.

/// Wall-clock time as the pool sees it.
pub trait Clock {
    /// Seconds since the epoch (snapshot creation times, uberblock stamps).
    fn now_secs(&self) -> u64;
}

/// The pool's source of random numbers (guids).
pub trait RandomSource {
    fn next_u64(&mut self) -> u64;
}

/// A clock that stands still until told to move: tests and offline tools.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    secs: std::cell::Cell<u64>,
}

impl ManualClock {
    pub fn new(secs: u64) -> Self {
        ManualClock {
            secs: std::cell::Cell::new(secs),
        }
    }

    pub fn set(&self, secs: u64) {
        self.secs.set(secs);
    }

    pub fn advance(&self, secs: u64) {
        self.secs.set(self.secs.get() + secs);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        self.secs.get()
    }
}

impl<C: Clock + ?Sized> Clock for std::rc::Rc<C> {
    fn now_secs(&self) -> u64 {
        (**self).now_secs()
    }
}

/// SplitMix64: a tiny, well-known seeded generator, enough for guids. The
/// simulator supplies its own ChaCha streams; this one serves tests and tools.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The seed's `issig()`: whether the thread doing a send or receive has
/// been signalled. Both loops poll it where the seed does and stop with
/// EINTR; the simulator delivers signals through it.
pub trait Interrupt {
    fn pending(&mut self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_varies() {
        let mut a = SplitMix64::new(1);
        let mut b = SplitMix64::new(1);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
        assert_ne!(SplitMix64::new(2).next_u64(), xs[0]);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(100);
        assert_eq!(clock.now_secs(), 100);
        clock.advance(5);
        assert_eq!(clock.now_secs(), 105);
    }
}
