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
    /// Traversal treats a level-0 hole as born before `fromtxg`.
    IncrementalSkipsL0Holes,
    /// Traversal skips holes above level 0 in an incremental walk.
    IncrementalSkipsIndirectHoles,
    /// `dump_dnode` leaves out the FREE from the end of the object onwards.
    NoFreePastEof,
    /// `dump_free` merges a FREE into the pending one without checking they are contiguous.
    FreeAggregationGap,
    /// `restore_freeobjects` steps past the object after each one it frees.
    FreeObjectsDoubleIncrement,
    /// `restore_object` drops the spill block of an object it reclaims.
    ReclaimDropsSpill,
    /// `restore_object` frees an existing object's contents as if its block size changed.
    ReclaimFreesContents,
    /// `restore_spill` swaps the spill data of a foreign-order stream.
    SpillByteswappedOnRecv,
    /// `dump_spill` swaps spill data into the stream's byte order.
    SpillSwappedBySender,
    /// `restore_write_byref` resolves every reference in the dataset being received.
    ByrefWrongDataset,
    /// `dmu_recv_begin_sync` makes a clone stream's new filesystem empty, not a clone of its origin.
    CloneRecvNotCloned,
    /// `dmu_recv_stream` returns EINTR without `dmu_recv_cleanup_ds`.
    SkipCleanupOnInterrupt,
    /// `restore_object` takes any object number.
    UnvalidatedObjectNumber,
    /// txg sync writes the uberblock without flushing the tree first.
    UberblockBeforeFlush,
    /// Frees are released at once instead of after the deferral window.
    FreeWithoutDeferral,
    /// Both the stream writer and reader leave payloads out of the END checksum.
    StreamChecksumSkipsPayloads,
    /// `dsl_destroy_head_check_impl` does not count long holds.
    DestroyIgnoresLongHolds,
    /// `dmu_send_impl` takes no long hold on the snapshot it sends.
    SendWithoutLongHold,
    /// `dsl_dataset_clone_swap_check_impl` skips its ETXTBSY check.
    RecvEndIgnoresChanges,
    /// `recv_begin_check_existing_impl` does not look for a `%recv` clone.
    RecvBeginIgnoresRecvClone,
    /// A read of a block with ditto copies gives up at the first bad one.
    DittoReadFirstCopyOnly,
}

impl Bug {
    /// Every bug, in declaration order.
    pub const ALL: &[Bug] = &[
        Bug::SkipRecvCleanup,
        Bug::IncrementalSkipsL0Holes,
        Bug::IncrementalSkipsIndirectHoles,
        Bug::NoFreePastEof,
        Bug::FreeAggregationGap,
        Bug::FreeObjectsDoubleIncrement,
        Bug::ReclaimDropsSpill,
        Bug::ReclaimFreesContents,
        Bug::SpillByteswappedOnRecv,
        Bug::SpillSwappedBySender,
        Bug::ByrefWrongDataset,
        Bug::CloneRecvNotCloned,
        Bug::SkipCleanupOnInterrupt,
        Bug::UnvalidatedObjectNumber,
        Bug::UberblockBeforeFlush,
        Bug::FreeWithoutDeferral,
        Bug::StreamChecksumSkipsPayloads,
        Bug::DestroyIgnoresLongHolds,
        Bug::SendWithoutLongHold,
        Bug::RecvEndIgnoresChanges,
        Bug::RecvBeginIgnoresRecvClone,
        Bug::DittoReadFirstCopyOnly,
    ];

    /// The name the command line and failure files use.
    pub fn name(self) -> &'static str {
        match self {
            Bug::SkipRecvCleanup => "skip-recv-cleanup",
            Bug::IncrementalSkipsL0Holes => "hole-birth-l0",
            Bug::IncrementalSkipsIndirectHoles => "hole-birth-indirect",
            Bug::NoFreePastEof => "no-free-past-eof",
            Bug::FreeAggregationGap => "free-aggregation-gap",
            Bug::FreeObjectsDoubleIncrement => "freeobjects-double-increment",
            Bug::ReclaimDropsSpill => "reclaim-drops-spill",
            Bug::ReclaimFreesContents => "reclaim-frees-contents",
            Bug::SpillByteswappedOnRecv => "spill-byteswapped-on-recv",
            Bug::SpillSwappedBySender => "spill-swapped-by-sender",
            Bug::ByrefWrongDataset => "byref-wrong-dataset",
            Bug::CloneRecvNotCloned => "clone-recv-not-cloned",
            Bug::SkipCleanupOnInterrupt => "skip-cleanup-on-interrupt",
            Bug::UnvalidatedObjectNumber => "unvalidated-object-number",
            Bug::UberblockBeforeFlush => "uberblock-before-flush",
            Bug::FreeWithoutDeferral => "free-without-deferral",
            Bug::StreamChecksumSkipsPayloads => "stream-checksum-skips-payloads",
            Bug::DestroyIgnoresLongHolds => "destroy-ignores-long-holds",
            Bug::SendWithoutLongHold => "send-without-long-hold",
            Bug::RecvEndIgnoresChanges => "recv-end-ignores-changes",
            Bug::RecvBeginIgnoresRecvClone => "recv-begin-ignores-recv-clone",
            Bug::DittoReadFirstCopyOnly => "ditto-read-first-copy-only",
        }
    }

    /// What goes wrong when the bug is planted.
    pub fn description(self) -> &'static str {
        match self {
            Bug::SkipRecvCleanup => "a failed receive leaves its %recv or new dataset behind",
            Bug::IncrementalSkipsL0Holes => {
                "an incremental stream sends no FREE for level-0 holes, as if born before its source (hole_birth, illumos 6370)"
            }
            Bug::IncrementalSkipsIndirectHoles => {
                "the L0 holes under an L1 hole are not sent in an incremental stream (illumos 6513)"
            }
            Bug::NoFreePastEof => {
                "blocks past a truncated object's new end survive on the receiver (truncate then write past EOF, illumos 7176)"
            }
            Bug::FreeAggregationGap => {
                "non-contiguous holes collapse into one FREE that covers data and misses the tail (mixed-birth hole collapse, illumos 9438)"
            }
            Bug::FreeObjectsDoubleIncrement => {
                "FREEOBJECTS skips every other object of its range (object iterator incremented twice, OpenZFS #6694)"
            }
            Bug::ReclaimDropsSpill => {
                "a reclaimed object loses a spill block the incremental did not resend (OpenZFS #8668)"
            }
            Bug::ReclaimFreesContents => {
                "an OBJECT record for an unchanged file zeroes it on the receiver (reclaim toggling the block size, OpenZFS #6224)"
            }
            Bug::SpillByteswappedOnRecv => {
                "spill data of a foreign-endian stream is swapped though no sender swapped it (spill byteswap, OpenZFS #7300)"
            }
            Bug::SpillSwappedBySender => {
                "a foreign-order sender swaps spill data that the receiver takes as it is: swapped once too often (OpenZFS #13002)"
            }
            Bug::ByrefWrongDataset => {
                "a WRITE_BYREF to an earlier snapshot reads the new dataset instead (incomplete guid map, ZoL #372)"
            }
            Bug::CloneRecvNotCloned => {
                "a received clone lacks its origin's contents (the clone case of the new dataset, illumos 5689)"
            }
            Bug::SkipCleanupOnInterrupt => {
                "a receive interrupted by a signal leaves its %recv behind (cleanup missed on one error path, OpenZFS #7650)"
            }
            Bug::UnvalidatedObjectNumber => {
                "an OBJECT record for object 0 or past DN_MAX_OBJECT is acted on (unvalidated object numbers, OpenZFS #6396)"
            }
            Bug::UberblockBeforeFlush => {
                "a crash can leave an uberblock pointing at blocks that never reached the disk (missing barrier in txg sync)"
            }
            Bug::FreeWithoutDeferral => {
                "a block freed in a txg is reused before that txg is durable, so a crash finds the older tree overwritten"
            }
            Bug::StreamChecksumSkipsPayloads => {
                "zsim's streams agree with each other but not with ZFS's (stream fletcher-4 over headers only; the seed's END checksum rule)"
            }
            Bug::DestroyIgnoresLongHolds => {
                "zfs destroy of a filesystem a receive is creating succeeds under the receive (zsim's own, found by its first race campaign)"
            }
            Bug::SendWithoutLongHold => {
                "a snapshot can be destroyed while it is being sent (no dsl_dataset_long_hold in dmu_send_impl)"
            }
            Bug::RecvEndIgnoresChanges => {
                "a receive without -F silently discards changes made to its target while it ran (no ETXTBSY at dmu_recv_end_check)"
            }
            Bug::RecvBeginIgnoresRecvClone => {
                "a second receive into a filesystem being received is not refused EBUSY (its %recv clone is not looked for)"
            }
            Bug::DittoReadFirstCopyOnly => {
                "a read of a block with ditto copies fails at the first bad copy instead of trying the others (zsim's own: what self-healing reads must not do)"
            }
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
