//! Space allocation on the pool's one device, with ZFS's deferred frees.
//!
//! Free space is a set of extents; allocation is first-fit from the lowest
//! offset, so the same sequence of operations always picks the same blocks.
//! A block freed in txg T becomes allocatable only after txg
//! T + [`TXG_DEFER_SIZE`] has synced: until then an older uberblock may still
//! point at it, and importing after a crash may need that older tree.
//!
//! zsim keeps no space maps on disk: import rebuilds the allocated set by
//! walking every block reachable from the chosen uberblock and from the ones
//! a deferral window before it (see `spa::import`).

use std::collections::{BTreeMap, VecDeque};

use crate::error::{Errno, Result, fail};

/// `TXG_DEFER_SIZE`: synced txgs a freed block waits before reuse.
pub const TXG_DEFER_SIZE: u64 = 2;

#[derive(Clone, Debug)]
pub struct Metaslab {
    /// Free extents: start -> length, non-overlapping and coalesced.
    free: BTreeMap<u64, u64>,
    /// Blocks freed but not yet reusable: (txg they were freed in, extents).
    deferred: VecDeque<(u64, Vec<(u64, u64)>)>,
    /// The same extents by start, so that a second free of one is seen.
    pending: BTreeMap<u64, u64>,
    start: u64,
    end: u64,
    /// Allocation granularity: the device's sector size.
    align: u64,
    allocated: u64,
}

impl Metaslab {
    /// All of `[start, end)` free.
    pub fn new(start: u64, end: u64, align: u64) -> Metaslab {
        let mut free = BTreeMap::new();
        if end > start {
            free.insert(start, end - start);
        }
        Metaslab {
            free,
            deferred: VecDeque::new(),
            pending: BTreeMap::new(),
            start,
            end,
            align,
            allocated: 0,
        }
    }

    pub fn align(&self) -> u64 {
        self.align
    }

    /// Bytes allocated, counting deferred frees as still allocated.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    pub fn capacity(&self) -> u64 {
        self.end - self.start
    }

    /// Bytes that can be allocated now.
    pub fn available(&self) -> u64 {
        self.free.values().sum()
    }

    /// Bytes waiting out the deferral window.
    pub fn deferred_bytes(&self) -> u64 {
        self.deferred
            .iter()
            .flat_map(|(_, v)| v.iter().map(|e| e.1))
            .sum()
    }

    /// Allocates `size` bytes (rounded up to the sector size).
    pub fn alloc(&mut self, size: u64) -> Result<u64> {
        let size = size.next_multiple_of(self.align);
        // BUGGIFY: the simulator makes a full pool happen now and then.
        let found = if buggify!(MetaslabAlloc) {
            None
        } else {
            self.free.iter().find(|(_, len)| **len >= size)
        };
        let Some((&start, &len)) = found else {
            return fail(Errno::ENOSPC, format!("no free extent of {size} bytes"));
        };
        self.free.remove(&start);
        if len > size {
            self.free.insert(start + size, len - size);
        }
        self.allocated += size;
        Ok(start)
    }

    /// Allocates `copies` extents of `size` bytes for the copies of one
    /// block, each placed by [`Metaslab::alloc_apart`]: all of them or
    /// none, as `metaslab_alloc` allocates a block's DVAs.
    pub fn alloc_copies(&mut self, size: u64, copies: usize) -> Result<Vec<u64>> {
        let mut offsets: Vec<u64> = Vec::with_capacity(copies);
        for _ in 0..copies {
            let offset = if offsets.is_empty() {
                self.alloc(size)
            } else {
                self.alloc_apart(size, &offsets)
            };
            match offset {
                Ok(offset) => offsets.push(offset),
                Err(e) => {
                    for &o in &offsets {
                        self.free_now(o, size.next_multiple_of(self.align));
                    }
                    return Err(e);
                }
            }
        }
        Ok(offsets)
    }

    /// Allocates `size` bytes for another copy of a block whose copies so
    /// far start at `others`: first fit at least an eighth of the device
    /// from each (`ditto_same_vdev_distance_shift`), so that one damaged
    /// region does not take every copy; anywhere when nothing fits so far
    /// apart, as `metaslab_alloc_dva` drops the distance on its last try.
    fn alloc_apart(&mut self, size: u64, others: &[u64]) -> Result<u64> {
        let size = size.next_multiple_of(self.align);
        let distance = (self.capacity() >> 3).next_multiple_of(self.align);
        let fit = |distance: u64| {
            self.free.iter().find_map(|(&start, &len)| {
                let end = start + len;
                let mut x = start;
                // Two others at most: three passes settle any order.
                for _ in 0..=others.len() {
                    for &o in others {
                        if x + distance > o && x < o + distance {
                            x = (o + distance).next_multiple_of(self.align);
                        }
                    }
                }
                let apart = others.iter().all(|&o| x.abs_diff(o) >= distance);
                (apart && x + size <= end).then_some((start, len, x))
            })
        };
        let Some((start, len, at)) = fit(distance).or_else(|| fit(0)) else {
            return fail(
                Errno::ENOSPC,
                format!("no free extent of {size} bytes for another copy"),
            );
        };
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        if start + len > at + size {
            self.free.insert(at + size, start + len - at - size);
        }
        self.allocated += size;
        Ok(at)
    }

    /// Marks an extent allocated (import: a block found in the tree).
    /// Returns false if any of it was not free.
    pub fn claim(&mut self, start: u64, size: u64) -> bool {
        let Some((&fstart, &flen)) = self.free.range(..=start).next_back() else {
            return false;
        };
        if start + size > fstart + flen {
            return false;
        }
        self.free.remove(&fstart);
        if start > fstart {
            self.free.insert(fstart, start - fstart);
        }
        if fstart + flen > start + size {
            self.free.insert(start + size, fstart + flen - start - size);
        }
        self.allocated += size;
        true
    }

    /// Frees an extent at once. Only for blocks no synced tree has seen.
    pub fn free_now(&mut self, start: u64, size: u64) {
        debug_assert!(start >= self.start && start + size <= self.end);
        self.allocated -= size;
        let mut start = start;
        let mut size = size;
        if let Some((&pstart, &plen)) = self.free.range(..start).next_back() {
            debug_assert!(pstart + plen <= start, "double free at {start:#x}");
            if pstart + plen == start {
                self.free.remove(&pstart);
                start = pstart;
                size += plen;
            }
        }
        if let Some(&nlen) = self.free.get(&(start + size)) {
            self.free.remove(&(start + size));
            size += nlen;
        }
        self.free.insert(start, size);
    }

    /// Frees an extent once txg `txg` and the deferral window have synced.
    /// EIO if any of it is free or already being freed: a block pointer
    /// from a damaged tree, which must not corrupt the free space.
    pub fn free_deferred(&mut self, txg: u64, start: u64, size: u64) -> Result<()> {
        let end = start.checked_add(size).filter(|&e| e <= self.end);
        if size == 0
            || start < self.start
            || end.is_none()
            || overlaps(&self.free, start, size)
            || overlaps(&self.pending, start, size)
        {
            return fail(
                Errno::EIO,
                format!(
                    "freeing {size} bytes at {start:#x}, not all allocated (a damaged block pointer)"
                ),
            );
        }
        if planted!(FreeWithoutDeferral) {
            self.free_now(start, size);
            return Ok(());
        }
        self.pending.insert(start, size);
        match self.deferred.back_mut() {
            Some((t, extents)) if *t == txg => extents.push((start, size)),
            _ => self.deferred.push_back((txg, vec![(start, size)])),
        }
        Ok(())
    }

    /// Called when txg `synced` is on disk: releases what was freed in txgs
    /// up to `synced - TXG_DEFER_SIZE`.
    pub fn sync_done(&mut self, synced: u64) {
        while let Some((txg, _)) = self.deferred.front() {
            if txg + TXG_DEFER_SIZE > synced {
                break;
            }
            let (_, extents) = self.deferred.pop_front().expect("front exists");
            for (start, size) in extents {
                self.pending.remove(&start);
                self.free_now(start, size);
            }
        }
    }

    /// Every allocated extent, coalesced (for the leak check).
    pub fn allocated_extents(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut cursor = self.start;
        for (&start, &len) in &self.free {
            if start > cursor {
                out.push((cursor, start - cursor));
            }
            cursor = start + len;
        }
        if cursor < self.end {
            out.push((cursor, self.end - cursor));
        }
        out
    }

    /// Extents freed but still deferred, with the txg they were freed in.
    pub fn deferred_extents(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.deferred
            .iter()
            .flat_map(|(txg, v)| v.iter().map(move |&(s, l)| (*txg, s, l)))
    }
}

/// Whether `[start, start + size)` meets an extent of `map` (extents that
/// do not overlap each other, by start).
fn overlaps(map: &BTreeMap<u64, u64>, start: u64, size: u64) -> bool {
    map.range(..start + size)
        .next_back()
        .is_some_and(|(&s, &len)| s + len > start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_is_deterministic_and_coalesces() {
        let mut ms = Metaslab::new(4096, 4096 * 10, 512);
        let a = ms.alloc(1000).unwrap();
        let b = ms.alloc(512).unwrap();
        assert_eq!((a, b), (4096, 4096 + 1024));
        ms.free_now(a, 1024);
        ms.free_now(b, 512);
        assert_eq!(ms.available(), 4096 * 9);
        assert_eq!(ms.free.len(), 1);
        assert_eq!(ms.allocated(), 0);
    }

    #[test]
    fn deferred_frees_wait_out_the_window() {
        let mut ms = Metaslab::new(0, 8192, 512);
        let a = ms.alloc(8192).unwrap();
        ms.free_deferred(5, a, 8192).unwrap();
        assert!(ms.alloc(512).is_err());
        ms.sync_done(5);
        ms.sync_done(6);
        assert_eq!(ms.available(), 0);
        ms.sync_done(7);
        assert_eq!(ms.available(), 8192);
    }

    #[test]
    fn claim_carves_allocated_extents() {
        let mut ms = Metaslab::new(0, 10 * 512, 512);
        assert!(ms.claim(1024, 1024));
        assert!(!ms.claim(1024, 512), "already taken");
        assert_eq!(ms.allocated_extents(), vec![(1024, 1024)]);
        assert_eq!(ms.alloc(1024).unwrap(), 0);
        assert_eq!(ms.alloc(512).unwrap(), 2048);
    }

    #[test]
    fn copies_go_an_eighth_of_the_device_apart_while_they_can() {
        let mut ms = Metaslab::new(0, 64 * 512, 512);
        let a = ms.alloc(512).unwrap();
        let b = ms.alloc_apart(512, &[a]).unwrap();
        let c = ms.alloc_apart(512, &[a, b]).unwrap();
        assert_eq!((a, b, c), (0, 8 * 512, 16 * 512));
        // Beside a later block, the copy goes first fit past the distance.
        let d = ms.alloc_apart(1024, &[9 * 512]).unwrap();
        assert_eq!(d, 512);
        // Nothing far enough: anywhere free.
        let mut small = Metaslab::new(0, 4 * 512, 512);
        let a = small.alloc(1024).unwrap();
        assert_eq!(small.alloc_apart(1024, &[a]).unwrap(), 1024);
        assert_eq!(
            small.alloc_apart(512, &[a]).unwrap_err().errno(),
            Errno::ENOSPC
        );
        assert_eq!(small.allocated(), 2048);
    }

    #[test]
    fn running_out_is_enospc() {
        let mut ms = Metaslab::new(0, 1024, 512);
        ms.alloc(1024).unwrap();
        assert_eq!(ms.alloc(1).unwrap_err().errno(), Errno::ENOSPC);
    }
}
