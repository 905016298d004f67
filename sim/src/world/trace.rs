//! The run's trace: every step, fault and outcome, stamped with virtual
//! time. Its SHA-256 is the run's fingerprint: the same seed must give the
//! same hash, in `cargo test` and in `cargo sim`, on any machine.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A shared, append-only trace.
#[derive(Clone, Default)]
pub struct Trace {
    inner: Rc<RefCell<TraceInner>>,
}

#[derive(Default)]
struct TraceInner {
    lines: Vec<String>,
    hasher: Sha256,
    /// Echo each line to stderr as it is recorded (`-v`).
    echo: bool,
}

impl Trace {
    pub fn new(echo: bool) -> Trace {
        let trace = Trace::default();
        trace.inner.borrow_mut().echo = echo;
        trace
    }

    /// Appends one line at virtual time `at` (since the run began).
    pub fn record(&self, at: Duration, line: impl AsRef<str>) {
        let line = format!("{} {}", stamp(at), line.as_ref());
        let mut inner = self.inner.borrow_mut();
        inner.hasher.update(line.as_bytes());
        inner.hasher.update(b"\n");
        if inner.echo {
            eprintln!("{line}");
        }
        inner.lines.push(line);
    }

    pub fn len(&self) -> usize {
        self.inner.borrow().lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn lines(&self) -> Vec<String> {
        self.inner.borrow().lines.clone()
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let inner = self.inner.borrow();
        inner.lines[inner.lines.len().saturating_sub(n)..].to_vec()
    }

    /// Hex SHA-256 of every line so far.
    pub fn hash(&self) -> String {
        let digest = self.inner.borrow().hasher.clone().finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `[  12.345678s]`: seconds of virtual time, to the microsecond.
pub fn stamp(at: Duration) -> String {
    format!("[{:>4}.{:06}s]", at.as_secs(), at.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_line_in_order() {
        let a = Trace::new(false);
        a.record(Duration::from_millis(1), "x");
        a.record(Duration::from_millis(2), "y");
        let b = Trace::new(false);
        b.record(Duration::from_millis(1), "x");
        b.record(Duration::from_millis(2), "y");
        assert_eq!(a.hash(), b.hash());
        let c = Trace::new(false);
        c.record(Duration::from_millis(1), "y");
        c.record(Duration::from_millis(2), "x");
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.tail(1), vec!["[   0.002000s] y".to_string()]);
    }
}
