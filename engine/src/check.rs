//! The pool consistency check (`zdb -b`): every block reachable from the
//! uberblock, through the MOS and every dataset and snapshot, is read and
//! its checksum verified; the set of referenced blocks is compared with the
//! allocator (leaked, doubly referenced or unallocated blocks) and each
//! dataset's recorded space with what its tree really holds.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::spa::Pool;
use crate::traverse::{WalkOptions, walk, walk_lenient};
use crate::zio::Blkptr;

/// What the check found. Empty problem lists mean the pool is consistent.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub blocks: u64,
    pub bytes: u64,
    /// Allocated extents no tree references and no deferred free covers.
    pub leaked: Vec<(u64, u64)>,
    /// Referenced blocks the allocator thinks are free.
    pub unallocated: Vec<(u64, u64)>,
    /// Referenced blocks that overlap another referenced block.
    pub overlapping: Vec<(u64, u64)>,
    /// Blocks that could not be read or did not verify.
    pub unreadable: Vec<(Blkptr, Error)>,
    /// Datasets whose recorded space disagrees with their tree.
    pub space: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.leaked.is_empty()
            && self.unallocated.is_empty()
            && self.overlapping.is_empty()
            && self.unreadable.is_empty()
            && self.space.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} blocks, {} bytes referenced", self.blocks, self.bytes)?;
        for (off, len) in &self.leaked {
            writeln!(f, "leaked: {len} bytes at {off:#x}")?;
        }
        for (off, len) in &self.unallocated {
            writeln!(f, "referenced but free: {len} bytes at {off:#x}")?;
        }
        for (off, len) in &self.overlapping {
            writeln!(f, "overlapping block: {len} bytes at {off:#x}")?;
        }
        for (bp, e) in &self.unreadable {
            writeln!(
                f,
                "unreadable block at {:#x} (birth {}): {e}",
                bp.dva[0].offset(),
                bp.birth
            )?;
        }
        for s in &self.space {
            writeln!(f, "space: {s}")?;
        }
        if self.is_clean() {
            writeln!(f, "no problems found")?;
        }
        Ok(())
    }
}

/// Merges extents into sorted, non-overlapping ranges.
fn coalesce(mut extents: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    extents.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, len) in extents {
        match out.last_mut() {
            Some((s, l)) if *s + *l >= start => *l = (*l).max(start + len - *s),
            _ => out.push((start, len)),
        }
    }
    out
}

/// Ranges of `a` not covered by `b` (both coalesced).
fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(start, len) in a {
        let mut cur = start;
        let end = start + len;
        for &(bs, bl) in b {
            let be = bs + bl;
            if be <= cur || bs >= end {
                continue;
            }
            if bs > cur {
                out.push((cur, bs - cur));
            }
            cur = cur.max(be);
        }
        if cur < end {
            out.push((cur, end - cur));
        }
    }
    out
}

/// The space figures a dataset records that a walk of its tree can recount
/// (`dmu_send_estimate` and `zfs list` read them).
#[derive(Clone, Copy, Debug, Default)]
struct Space {
    referenced: u64,
    compressed: u64,
    uncompressed: u64,
}

/// One dataset as the DSL records it, taken before the walks borrow the pool.
struct Recorded {
    id: u64,
    name: String,
    bp: Blkptr,
    space: Space,
    unique: u64,
    prev_snap_txg: u64,
    is_snapshot: bool,
}

/// Checks the pool as of its last synced txg.
pub fn check(pool: &mut Pool) -> Result<CheckReport> {
    // The first pass reads and verifies every block; the space passes walk
    // the same trees again from what it read.
    pool.zio.blkptr_cache = Some(crate::zio::BlkptrCache::default());
    let report = check_impl(pool);
    pool.zio.blkptr_cache = None;
    report
}

fn check_impl(pool: &mut Pool) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let roots = pool.tree_roots();
    let datasets: Vec<Recorded> = pool
        .dsl
        .datasets
        .values()
        .map(|d| Recorded {
            id: d.id,
            name: pool.dataset_name(d.id),
            bp: d.bp,
            space: Space {
                referenced: d.referenced_bytes,
                compressed: d.compressed_bytes,
                uncompressed: d.uncompressed_bytes,
            },
            unique: d.unique_bytes,
            prev_snap_txg: d.prev_snap_txg,
            is_snapshot: d.is_snapshot(),
        })
        .collect();

    let options = WalkOptions {
        min_birth: 0,
        read_data: true,
    };
    let mut seen = BTreeSet::new();
    let mut extents = Vec::new();
    let mut errors = Vec::new();
    let mut blocks = 0;
    let mut record = |bp: &Blkptr| {
        blocks += 1;
        extents.extend(bp.dvas().map(|d| (d.offset(), d.asize())));
    };
    for root in &roots {
        walk_lenient(
            &mut pool.zio,
            root,
            options,
            &mut seen,
            &mut record,
            &mut errors,
        );
    }
    report.unreadable = errors;
    report.blocks = blocks;
    report.bytes = extents.iter().map(|e| e.1).sum();

    extents.sort_unstable();
    for pair in extents.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            report.overlapping.push(pair[1]);
        }
    }
    let referenced = coalesce(extents);
    let deferred = coalesce(
        pool.zio
            .ms
            .deferred_extents()
            .map(|(_, s, l)| (s, l))
            .collect(),
    );
    let allocated = pool.zio.ms.allocated_extents();
    let covered = coalesce(referenced.iter().chain(deferred.iter()).copied().collect());
    report.leaked = subtract(&allocated, &covered);
    report.unallocated = subtract(&referenced, &allocated);

    if report.unreadable.is_empty() {
        for d in datasets {
            let name = &d.name;
            let mut total = Space::default();
            let all = WalkOptions {
                min_birth: 0,
                read_data: false,
            };
            walk(&mut pool.zio, &d.bp, all, &mut BTreeSet::new(), &mut |b| {
                total.referenced += b.asize();
                total.compressed += b.psize();
                total.uncompressed += b.lsize();
            })?;
            for (what, recorded, counted) in [
                ("referenced", d.space.referenced, total.referenced),
                ("compressed", d.space.compressed, total.compressed),
                ("uncompressed", d.space.uncompressed, total.uncompressed),
            ] {
                if recorded != counted {
                    report.space.push(format!(
                        "{name}: {what} {recorded} recorded, {counted} in its tree"
                    ));
                }
            }
            let unique = if d.is_snapshot {
                pool.compute_unique(d.id)?
            } else {
                crate::traverse::space_born_after(&mut pool.zio, &d.bp, d.prev_snap_txg)?
            };
            if unique != d.unique {
                report.space.push(format!(
                    "{name}: unique {} recorded, {unique} in its tree alone",
                    d.unique
                ));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{ManualClock, SplitMix64};
    use crate::vdev::MemDevice;
    use std::collections::BTreeMap;

    /// A pool with snapshots and a clone: trees that share blocks.
    fn pool_with_history() -> Pool {
        let mut pool = Pool::create(
            Box::new(MemDevice::new(64 << 20, 512)),
            "tank",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        let a = pool.create_fs("tank/a").unwrap();
        let obj = {
            let mut dmu = pool.dmu(a).unwrap();
            let obj = dmu.object_alloc(19, 131072, 0, 0).unwrap();
            dmu.write(obj, 0, &vec![5u8; 600 << 10]).unwrap();
            obj
        };
        pool.snapshot("tank/a@1").unwrap();
        pool.dmu(a)
            .unwrap()
            .write(obj, 128 << 10, &vec![6u8; 200 << 10])
            .unwrap();
        pool.snapshot("tank/a@2").unwrap();
        pool.clone_fs("tank/a@1", "tank/c").unwrap();
        let c = pool.lookup("tank/c").unwrap();
        pool.dmu(c).unwrap().write(obj, 0, &[7u8; 4096]).unwrap();
        pool.txg_sync().unwrap();
        pool
    }

    /// Unique space as the two walks count it: this snapshot's blocks born
    /// after the one before it, less every block the next one holds.
    fn unique_by_two_walks(pool: &mut Pool, id: u64) -> u64 {
        let ds = pool.dsl.datasets[&id].clone();
        let options = WalkOptions {
            min_birth: ds.prev_snap_txg,
            read_data: false,
        };
        let mut mine = BTreeMap::new();
        walk(
            &mut pool.zio,
            &ds.bp,
            options,
            &mut BTreeSet::new(),
            &mut |bp| {
                mine.insert(bp.dva[0].offset(), bp.asize());
            },
        )
        .unwrap();
        if let Some(next) = ds.next_snap {
            let bp = pool.dsl.datasets[&next].bp;
            walk(
                &mut pool.zio,
                &bp,
                options,
                &mut BTreeSet::new(),
                &mut |bp| {
                    mine.remove(&bp.dva[0].offset());
                },
            )
            .unwrap();
        }
        mine.values().sum()
    }

    #[test]
    fn unique_space_is_what_two_walks_count() {
        let mut pool = pool_with_history();
        let a = pool.lookup("tank/a").unwrap();
        // More history: a third snapshot after frees and a new object, and
        // the head changed again after it.
        {
            let mut dmu = pool.dmu(a).unwrap();
            dmu.free_range(1, 64 << 10, 256 << 10).unwrap();
            let obj = dmu.object_alloc(19, 4096, 0, 0).unwrap();
            dmu.write(obj, 0, &vec![9u8; 40 << 10]).unwrap();
        }
        pool.snapshot("tank/a@3").unwrap();
        pool.dmu(a).unwrap().write(1, 0, &[1u8; 4096]).unwrap();
        pool.txg_sync().unwrap();
        let snaps: Vec<u64> = pool
            .dsl
            .datasets
            .values()
            .filter(|d| d.is_snapshot())
            .map(|d| d.id)
            .collect();
        assert_eq!(snaps.len(), 3);
        let mut nonzero = 0;
        for id in snaps {
            let want = unique_by_two_walks(&mut pool, id);
            assert_eq!(pool.compute_unique(id).unwrap(), want, "snapshot {id}");
            nonzero += usize::from(want > 0);
        }
        assert!(nonzero >= 2);
        assert!(check(&mut pool).unwrap().is_clean());
    }

    #[test]
    fn a_check_finds_wrong_space_and_leaks_and_leaves_no_cache_behind() {
        let mut pool = pool_with_history();
        let reads = pool.zio.stats.blocks_read;
        let clean = check(&mut pool).unwrap();
        assert!(clean.is_clean(), "{clean}");
        // Every block is read once, though the space passes walk again.
        assert_eq!(pool.zio.stats.blocks_read - reads, clean.blocks);
        assert!(pool.zio.blkptr_cache.is_none());
        // The same answer every time.
        let again = check(&mut pool).unwrap();
        assert_eq!((again.blocks, again.bytes), (clean.blocks, clean.bytes));

        let s1 = pool.lookup("tank/a@1").unwrap();
        let c = pool.lookup("tank/c").unwrap();
        pool.dsl.datasets.get_mut(&s1).unwrap().unique_bytes += 512;
        pool.dsl.datasets.get_mut(&c).unwrap().referenced_bytes -= 512;
        let a2 = pool.lookup("tank/a@2").unwrap();
        pool.dsl.datasets.get_mut(&a2).unwrap().compressed_bytes += 1;
        pool.dsl.datasets.get_mut(&a2).unwrap().uncompressed_bytes -= 1;
        let leak = pool.zio.ms.alloc(4096).unwrap();
        let report = check(&mut pool).unwrap();
        let space = report.space.join("\n");
        assert_eq!(report.space.len(), 4, "{report}");
        for want in [
            "tank/a@1: unique",
            "tank/c: referenced",
            "tank/a@2: compressed",
            "tank/a@2: uncompressed",
        ] {
            assert!(space.contains(want), "{want}: {report}");
        }
        assert_eq!(report.leaked, vec![(leak, 4096)]);
        assert!(pool.zio.blkptr_cache.is_none());
    }

    #[test]
    fn ranges_coalesce_and_subtract() {
        assert_eq!(
            coalesce(vec![(10, 5), (0, 10), (20, 1)]),
            vec![(0, 15), (20, 1)]
        );
        assert_eq!(
            subtract(&[(0, 100)], &[(10, 10), (50, 60)]),
            vec![(0, 10), (20, 30)]
        );
        assert!(subtract(&[(5, 5)], &[(0, 20)]).is_empty());
    }
}
