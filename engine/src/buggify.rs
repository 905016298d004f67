//! BUGGIFY probes, as FoundationDB's simulator has them: rare engine paths
//! (an allocator with no free extent, a transaction refused for space) made
//! likely under simulation, so the harness reaches the code that handles
//! them. A probe asks a hook the harness installs on its thread whether it
//! fires; the harness decides with its own seeded dice and records every
//! firing in its trace.
//!
//! Compiled only with the `buggify` feature. Without it the crate's
//! `buggify!` macro is a constant `false` and this module does not exist,
//! so the engine's own build has no way in; with it and no hook installed
//! no probe fires.

use std::cell::RefCell;
use std::fmt;

/// A place in the engine where a probe may fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    /// `metaslab_alloc` finds no free extent: ENOSPC in syncing context.
    MetaslabAlloc,
    /// `dmu_tx_assign` finds the worst case does not fit: ENOSPC before a
    /// change is made.
    TxAssign,
}

impl Probe {
    pub fn name(self) -> &'static str {
        match self {
            Probe::MetaslabAlloc => "metaslab-alloc",
            Probe::TxAssign => "tx-assign",
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Hook = Box<dyn FnMut(Probe) -> bool>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Installs `hook` on this thread until the guard is dropped, which puts
/// back the one installed before.
pub fn install(hook: impl FnMut(Probe) -> bool + 'static) -> Guard {
    let previous = HOOK.with(|h| h.borrow_mut().replace(Box::new(hook)));
    Guard { previous }
}

/// Whether `probe` fires here: the installed hook's answer, or false.
pub fn fires(probe: Probe) -> bool {
    HOOK.with(|h| h.borrow_mut().as_mut().is_some_and(|hook| hook(probe)))
}

/// Returned by [`install`].
#[must_use = "the hook is removed again when the guard is dropped"]
pub struct Guard {
    previous: Option<Hook>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        HOOK.with(|h| *h.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_fires_only_while_a_hook_says_so_on_its_thread() {
        assert!(!fires(Probe::TxAssign));
        {
            let _guard = install(|p| p == Probe::TxAssign);
            assert!(fires(Probe::TxAssign));
            assert!(buggify!(TxAssign));
            assert!(!fires(Probe::MetaslabAlloc));
            assert!(
                !std::thread::spawn(|| fires(Probe::TxAssign))
                    .join()
                    .unwrap()
            );
        }
        assert!(!fires(Probe::TxAssign));
    }
}
