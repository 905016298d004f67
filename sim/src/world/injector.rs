//! The dice of the fault model and its record: each fault kind has its own
//! seeded stream, from which a device decides whether a fault fires at an
//! opportunity (at the rate its options give) and draws how; every fault
//! that fires is recorded in the trace (with its virtual time) and in the
//! counts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::clock::SimClock;
use super::faults::{FaultCounts, FaultKind};
use super::streams::Streams;
use super::trace::Trace;

/// Shared by the disk, the pipe and the runner of one run.
#[derive(Clone)]
pub struct Injector {
    inner: Rc<RefCell<Inner>>,
    trace: Trace,
    clock: SimClock,
}

struct Inner {
    /// One stream per kind: whether it fires and the details of how.
    rngs: BTreeMap<FaultKind, ChaCha8Rng>,
    counts: FaultCounts,
    /// While suspended nothing fires: the oracle looks at the world through
    /// the same devices and must not be lied to.
    suspended: u32,
    /// While observing, the oracle reads the world: nothing fires and its
    /// reads take no virtual time. (What it reads can still spare the
    /// engine a later read, a snapshot it opened staying open, so what it
    /// skips as already verified can shift a run's timeline.)
    observing: u32,
}

impl Injector {
    pub fn new(streams: &Streams, trace: Trace, clock: SimClock) -> Injector {
        let rngs = FaultKind::ALL
            .into_iter()
            .map(|k| (k, streams.stream(&format!("fault:{k}"))))
            .collect();
        Injector {
            inner: Rc::new(RefCell::new(Inner {
                rngs,
                counts: FaultCounts::default(),
                suspended: 0,
                observing: 0,
            })),
            trace,
            clock,
        }
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// Whether `kind` fires at this opportunity, with probability `rate`.
    /// Draws nothing when the rate is 0, so turning a kind off does not
    /// disturb the others.
    pub fn roll(&self, kind: FaultKind, rate: f64) -> bool {
        let mut inner = self.inner.borrow_mut();
        if rate <= 0.0 || inner.suspended > 0 {
            return false;
        }
        let rng = inner.rngs.get_mut(&kind).expect("a stream per kind");
        rng.gen_bool(rate.min(1.0))
    }

    /// A detail of a fault of `kind` (where, how much), from its stream.
    pub fn draw<T>(&self, kind: FaultKind, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        let mut inner = self.inner.borrow_mut();
        f(inner.rngs.get_mut(&kind).expect("a stream per kind"))
    }

    /// Counts a fault that fired and writes it to the trace.
    pub fn fired(&self, kind: FaultKind, what: impl AsRef<str>) {
        self.inner.borrow_mut().counts.add(kind);
        self.trace.record(
            self.clock.elapsed(),
            format!("fault {kind}: {}", what.as_ref()),
        );
    }

    pub fn counts(&self) -> FaultCounts {
        self.inner.borrow().counts.clone()
    }

    /// Runs `f` with every fault held off.
    pub fn suspended<T>(&self, f: impl FnOnce() -> T) -> T {
        self.inner.borrow_mut().suspended += 1;
        let out = f();
        self.inner.borrow_mut().suspended -= 1;
        out
    }

    /// Runs the oracle's `f`: faults held off, and reads free of virtual
    /// time.
    pub fn observe<T>(&self, f: impl FnOnce() -> T) -> T {
        self.inner.borrow_mut().observing += 1;
        let out = self.suspended(f);
        self.inner.borrow_mut().observing -= 1;
        out
    }

    pub fn is_observing(&self) -> bool {
        self.inner.borrow().observing > 0
    }

    /// Holds every fault off for the rest of the run: the faults phase is
    /// over.
    pub fn end_faults(&self) {
        self.inner.borrow_mut().suspended += 1;
    }

    pub fn is_suspended(&self) -> bool {
        self.inner.borrow().suspended > 0
    }
}
