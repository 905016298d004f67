//! Bugs planted on purpose, for the simulator's self-test: it must catch
//! each one and shrink the failing run to a short repro.
//!
//! Compiled only with the `planted-bugs` feature. Bugs are switched on per
//! thread, so runs on other threads (other tests, other seeds) see none.
//! The engine asks at each deviation site with the crate's `planted!`
//! macro, which is a constant `false` without the feature.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// A deliberate deviation from the seed's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// `dmu_recv_cleanup_ds` does nothing.
    SkipRecvCleanup,
}

impl Bug {
    /// Every bug, in declaration order.
    pub const ALL: &[Bug] = &[Bug::SkipRecvCleanup];

    /// The name the command line and failure files use.
    pub fn name(self) -> &'static str {
        match self {
            Bug::SkipRecvCleanup => "skip-recv-cleanup",
        }
    }

    /// What goes wrong when the bug is planted.
    pub fn description(self) -> &'static str {
        match self {
            Bug::SkipRecvCleanup => "a failed receive leaves its %recv or new dataset behind",
        }
    }

    fn bit(self) -> u64 {
        1 << self as u32
    }
}

// One bit per bug in the per-thread set.
const _: () = assert!(Bug::ALL.len() <= u64::BITS as usize);

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Bug, String> {
        Bug::ALL
            .iter()
            .copied()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "unknown planted bug {s:?}: known bugs are {}",
                    names.join(", ")
                )
            })
    }
}

thread_local! {
    static ENABLED: Cell<u64> = const { Cell::new(0) };
}

/// Switches `bugs` on for this thread, in addition to those already on.
pub fn enable(bugs: &[Bug]) {
    let add = bugs.iter().fold(0, |set, b| set | b.bit());
    ENABLED.with(|e| e.set(e.get() | add));
}

/// Switches every bug off for this thread.
pub fn clear() {
    ENABLED.with(|e| e.set(0));
}

/// Whether `bug` is on for this thread.
pub fn is_enabled(bug: Bug) -> bool {
    ENABLED.with(|e| e.get() & bug.bit() != 0)
}

/// Switches `bugs` on until the guard is dropped, which puts back the set
/// that was on before.
pub fn plant(bugs: &[Bug]) -> Guard {
    let previous = ENABLED.with(Cell::get);
    enable(bugs);
    Guard { previous }
}

/// Returned by [`plant`].
#[must_use = "the bugs are switched off again when the guard is dropped"]
pub struct Guard {
    previous: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for (i, &bug) in Bug::ALL.iter().enumerate() {
            assert_eq!(bug as usize, i, "ALL is in declaration order");
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
            assert_eq!(bug.to_string(), bug.name());
            assert!(!bug.description().is_empty());
        }
        let mut names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Bug::ALL.len());
        let err = "no-such-bug".parse::<Bug>().unwrap_err();
        assert!(err.contains("skip-recv-cleanup"), "{err}");
    }

    #[test]
    fn a_guard_puts_back_what_was_on_and_other_threads_see_nothing() {
        clear();
        assert!(!is_enabled(Bug::SkipRecvCleanup));
        {
            let _guard = plant(&[Bug::SkipRecvCleanup]);
            assert!(is_enabled(Bug::SkipRecvCleanup));
            assert!(planted!(SkipRecvCleanup));
            let elsewhere = std::thread::spawn(|| is_enabled(Bug::SkipRecvCleanup));
            assert!(!elsewhere.join().unwrap());
        }
        assert!(!is_enabled(Bug::SkipRecvCleanup));
        enable(&[Bug::SkipRecvCleanup]);
        assert!(is_enabled(Bug::SkipRecvCleanup));
        clear();
        assert!(!is_enabled(Bug::SkipRecvCleanup));
    }
}
