//! SimClock: the engine's clock on madsim's virtual time.
//!
//! Snapshot creation times and uberblock stamps come from it, and the
//! txg-sync task sleeps on the same time, so a run's timestamps are a
//! function of its seed. madsim starts each run at a seeded instant in 2022.

use std::time::{Duration, SystemTime};

use madsim::time::TimeHandle;

/// The engine's [`engine::context::Clock`], reading virtual time.
#[derive(Clone)]
pub struct SimClock {
    time: TimeHandle,
}

impl SimClock {
    /// The clock of the runtime this is called in.
    pub fn current() -> SimClock {
        SimClock {
            time: TimeHandle::current(),
        }
    }

    /// Virtual time since the run began.
    pub fn elapsed(&self) -> Duration {
        self.time.elapsed()
    }

    /// Jumps forward, as a clock step or a long stall would: timers due in
    /// between fire when the running task next yields.
    pub fn jump(&self, by: Duration) {
        self.time.advance(by);
    }
}

impl engine::context::Clock for SimClock {
    fn now_secs(&self) -> u64 {
        self.time
            .now_time()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
