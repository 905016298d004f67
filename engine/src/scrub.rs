//! `zpool scrub`: read every copy of every block the pool references and
//! rewrite the bad ones from a good copy.
//!
//! An ordinary read stops at the first copy that verifies, so damage to
//! the others stays unseen until that copy goes bad too; a scrub finds it
//! while a good copy is still there. The pool's last synced trees are
//! walked (the MOS and every dataset, snapshots included), as `dsl_scan`
//! walks them; a block shared by several trees is scrubbed once.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::Error;
use crate::spa::Pool;
use crate::traverse::{WalkOptions, walk_lenient};
use crate::zio::Blkptr;

/// What a scrub found and did, as `zpool status` sums it up.
#[derive(Debug, Default)]
pub struct ScrubReport {
    pub blocks: u64,
    /// Copies read (a block written with ditto copies has two or three,
    /// each on every device of a mirror).
    pub copies: u64,
    /// Copies that failed to read or verify.
    pub bad_copies: u64,
    /// Bad copies rewritten from a good one.
    pub repaired: u64,
    /// Copies found bad on a mirror child known to have missed their txg
    /// (stale, not damaged), and how many of them were rewritten.
    pub stale_copies: u64,
    pub resilvered: u64,
    /// Where the bad copies were, as (offset, size, device index): the
    /// first 64, of copies served by another.
    pub bad_places: Vec<(u64, u64, usize)>,
    /// Blocks with no good copy: their data is lost.
    pub unrepairable: Vec<(Blkptr, Error)>,
}

impl ScrubReport {
    /// Every copy read back good, or was repaired (or resilvered).
    pub fn is_clean(&self) -> bool {
        self.unrepairable.is_empty()
            && self.repaired == self.bad_copies
            && self.resilvered == self.stale_copies
    }
}

impl fmt::Display for ScrubReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scrubbed {} blocks ({} copies): {} bad, {} repaired, {} with no good copy",
            self.blocks,
            self.copies,
            self.bad_copies,
            self.repaired,
            self.unrepairable.len()
        )?;
        if self.stale_copies > 0 {
            writeln!(
                f,
                "resilvered {} of {} stale copies on mirror devices that missed their txg",
                self.resilvered, self.stale_copies
            )?;
        }
        for (bp, e) in &self.unrepairable {
            writeln!(
                f,
                "lost: block at {:#x} (birth {}): {e}",
                bp.dva[0].offset(),
                bp.birth
            )?;
        }
        Ok(())
    }
}

/// Scrubs the pool as of its last synced txg. A block whose tree cannot
/// be read is reported with no good copy, and the walk goes on past it.
pub fn scrub(pool: &mut Pool) -> ScrubReport {
    scrub_born_after(pool, 0)
}

/// [`scrub`] of the blocks born after txg `min_birth` only (a resilver's
/// txg range; the simulator's check that what a sync wrote reached the
/// disk, every copy of it, before its uberblock did).
pub fn scrub_born_after(pool: &mut Pool, min_birth: u64) -> ScrubReport {
    let mut report = ScrubReport::default();
    let options = WalkOptions {
        min_birth,
        read_data: false,
    };
    // The walk reads the tree's indirect blocks (through their first good
    // copy, healing the ones before it); every copy of every block it
    // names is then read on its own.
    let stats_before = pool.zio.stats;
    let outer_log = pool.zio.bad_log.replace(Vec::new());
    let mut seen = BTreeSet::new();
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    for root in &pool.tree_roots() {
        walk_lenient(
            &mut pool.zio,
            root,
            options,
            &mut seen,
            &mut |bp| blocks.push(*bp),
            &mut errors,
        );
    }
    let mut lost_copies = 0;
    report.blocks = blocks.len() as u64;
    // Each copy is on every device of a mirror.
    let width = pool.zio.vdev.width() as u64;
    for bp in &blocks {
        report.copies += bp.dvas().count() as u64 * width;
        if let Err(e) = pool.zio.scrub_block(bp) {
            lost_copies += bp.dvas().count() as u64 * width;
            report.unrepairable.push((*bp, e));
        }
    }
    // What the walk's reads found (and healed) counts as well.
    report.bad_copies = pool.zio.stats.bad_copies - stats_before.bad_copies + lost_copies;
    report.repaired = pool.zio.stats.repaired - stats_before.repaired;
    report.bad_places = std::mem::replace(&mut pool.zio.bad_log, outer_log).unwrap_or_default();
    report.stale_copies = pool.zio.stats.stale_copies - stats_before.stale_copies;
    report.resilvered = pool.zio.stats.resilvered - stats_before.resilvered;
    // A block the walk could not parse though a copy verified (a bug, or
    // a crafted pool): its subtree went unscrubbed.
    for (bp, e) in errors {
        if !report.unrepairable.iter().any(|(b, _)| b == &bp) {
            report.unrepairable.push((bp, e));
        }
    }
    report
}

/// `zpool online` / the resilver after an import: every block born since
/// the first txg a mirror child may have missed is read on every child and
/// rewritten where it is stale or bad. A child none of whose rewrites
/// failed then holds everything, and its missed txgs are forgotten; a txg
/// sync then records that and puts the newest uberblock on every child,
/// as the resilver's own syncs do in ZFS (the child's labels still name
/// the txg before it left). `None` when no child missed anything.
pub fn resilver(pool: &mut Pool) -> Option<ScrubReport> {
    let first = pool
        .zio
        .vdev
        .children()
        .iter()
        .filter_map(|c| c.missing)
        .map(|(lo, _)| lo)
        .min()?;
    let write_errors: Vec<u64> = pool
        .zio
        .vdev
        .children()
        .iter()
        .map(|c| c.errors.write)
        .collect();
    let report = scrub_born_after(pool, first.saturating_sub(1));
    if report.unrepairable.is_empty() {
        let mut forgot = false;
        for (child, before) in pool.zio.vdev.children.iter_mut().zip(write_errors) {
            if child.missing.is_some() && child.errors.write == before {
                child.missing = None;
                forgot = true;
            }
        }
        pool.zio.vdev.dtl_dirty |= forgot;
        // A failed sync suspends the pool, which says so to its next
        // caller: nothing more to do here.
        if forgot {
            let _ = pool.txg_sync();
        }
    }
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::context::{ManualClock, SplitMix64};
    use crate::traverse::walk;
    use crate::vdev::{MemDevice, SharedDevice};

    /// A pool with a filesystem, a snapshot and a file of 600 KiB, synced,
    /// on a device the test keeps a handle on.
    fn pool(copies: &str) -> (Pool, SharedDevice<MemDevice>) {
        let dev = SharedDevice::new(MemDevice::new(64 << 20, 512));
        let mut pool = Pool::create(
            Box::new(dev.clone()),
            "tank",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        let a = pool.create_fs("tank/a").unwrap();
        pool.set_prop("tank/a", "copies", copies).unwrap();
        let mut dmu = pool.dmu(a).unwrap();
        let obj = dmu.object_alloc(19, 131072, 0, 0).unwrap();
        let data: Vec<u8> = (0..600u32 << 10).map(|i| (i % 253) as u8).collect();
        dmu.write(obj, 0, &data).unwrap();
        pool.snapshot("tank/a@1").unwrap();
        pool.txg_sync().unwrap();
        (pool, dev)
    }

    fn blocks(pool: &mut Pool) -> Vec<Blkptr> {
        let mut out = Vec::new();
        let options = WalkOptions {
            min_birth: 0,
            read_data: false,
        };
        let mut seen = BTreeSet::new();
        for root in &pool.tree_roots() {
            walk(&mut pool.zio, root, options, &mut seen, &mut |bp| {
                out.push(*bp)
            })
            .unwrap();
        }
        out
    }

    fn damage(dev: &SharedDevice<MemDevice>, offset: u64) {
        dev.borrow_mut().as_bytes_mut()[offset as usize + 3] ^= 0x40;
    }

    fn reimport(dev: &SharedDevice<MemDevice>) -> Pool {
        Pool::import(
            Box::new(dev.clone()),
            Box::new(ManualClock::new(1_700_000_100)),
            Box::new(SplitMix64::new(8)),
        )
        .unwrap()
    }

    /// Ditto blocks: metadata has two copies, the MOS three, data one.
    /// Damage to the first copy of every metadata block loses nothing:
    /// import reads past it, and the first reads after rewrite it.
    #[test]
    fn a_damaged_ditto_copy_is_read_past_and_healed() {
        let (mut pool, dev) = pool("1");
        let all = blocks(&mut pool);
        let mos = |bp: &Blkptr| bp.dvas().count() == 3;
        assert!(all.iter().any(mos));
        assert!(
            all.iter()
                .all(|bp| bp.level() > 0 || bp.object_type() != 19 || bp.dvas().count() == 1)
        );
        assert!(all.iter().all(|bp| bp.dvas().count() >= 1));
        let ditto: Vec<Blkptr> = all.into_iter().filter(|bp| bp.dvas().count() > 1).collect();
        drop(pool);
        for bp in &ditto {
            damage(&dev, bp.dva[0].offset());
        }
        let mut pool = reimport(&dev);
        assert_eq!(pool.zio.stats.repaired, 0, "import rewrites nothing");
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(pool.zio.stats.repaired, ditto.len() as u64);
        // Healed: a scrub finds nothing left to do.
        let scrubbed = scrub(&mut pool);
        assert!(scrubbed.is_clean(), "{scrubbed}");
        assert_eq!(scrubbed.bad_copies, 0, "{scrubbed}");
    }

    /// Copies past the first are read by nothing but a scrub, which finds
    /// and rewrites every bad one; data with one copy is reported lost.
    #[test]
    fn a_scrub_repairs_every_copy_it_can_and_names_what_it_cannot() {
        let (mut pool, dev) = pool("1");
        let all = blocks(&mut pool);
        let mut damaged = 0;
        for bp in &all {
            if let Some(last) = bp.dvas().skip(1).last() {
                damage(&dev, last.offset());
                damaged += 1;
            }
        }
        let data = all
            .iter()
            .find(|bp| bp.level() == 0 && bp.object_type() == 19)
            .copied()
            .unwrap();
        damage(&dev, data.dva[0].offset());
        let mut pool = reimport(&dev);
        let first = scrub(&mut pool);
        assert_eq!(first.blocks, all.len() as u64, "{first}");
        assert_eq!(first.repaired, damaged, "{first}");
        assert_eq!(first.bad_copies, damaged + 1, "{first}");
        assert_eq!(first.unrepairable.len(), 1, "{first}");
        assert_eq!(first.unrepairable[0].0, data);
        let again = scrub(&mut pool);
        assert_eq!((again.bad_copies, again.repaired), (1, 0), "{again}");
    }

    /// `copies=2` gives data two copies (and its metadata three): a file
    /// whose first copies are all damaged still reads back whole.
    #[test]
    fn copies_2_keeps_data_through_damage_to_one_copy() {
        let (mut pool, dev) = pool("2");
        let all = blocks(&mut pool);
        let data: Vec<Blkptr> = all
            .iter()
            .filter(|bp| bp.level() == 0 && bp.object_type() == 19)
            .copied()
            .collect();
        assert!(!data.is_empty());
        assert!(data.iter().all(|bp| bp.dvas().count() == 2));
        let referenced = pool.dsl.datasets[&pool.lookup("tank/a").unwrap()].referenced_bytes;
        let asize: u64 = data.iter().map(|bp| bp.asize()).sum();
        assert!(referenced >= asize, "every copy is charged");
        for bp in &data {
            damage(&dev, bp.dva[0].offset());
        }
        let mut pool = reimport(&dev);
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{report}");
        assert!(pool.zio.stats.repaired >= data.len() as u64);
    }

    /// A memory disk that can be pulled: while `gone`, every request
    /// fails with EIO.
    #[derive(Clone)]
    struct Pullable {
        dev: SharedDevice<MemDevice>,
        gone: std::rc::Rc<std::cell::Cell<bool>>,
    }

    impl crate::vdev::BlockDevice for Pullable {
        fn sector_size(&self) -> u64 {
            self.dev.sector_size()
        }
        fn size(&self) -> u64 {
            self.dev.size()
        }
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> crate::error::Result<()> {
            self.up()?;
            self.dev.read(offset, buf)
        }
        fn write(&mut self, offset: u64, buf: &[u8]) -> crate::error::Result<()> {
            self.up()?;
            self.dev.write(offset, buf)
        }
        fn flush(&mut self) -> crate::error::Result<()> {
            self.up()?;
            self.dev.flush()
        }
    }

    impl Pullable {
        fn new() -> Pullable {
            Pullable {
                dev: SharedDevice::new(MemDevice::new(64 << 20, 512)),
                gone: Default::default(),
            }
        }
        fn up(&self) -> crate::error::Result<()> {
            if self.gone.get() {
                return crate::error::fail(crate::error::Errno::EIO, "pulled");
            }
            Ok(())
        }
    }

    fn children(disks: &[Pullable]) -> Vec<(String, Box<dyn crate::vdev::BlockDevice>)> {
        disks
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let dev: Box<dyn crate::vdev::BlockDevice> = Box::new(d.clone());
                (format!("disk{i}"), dev)
            })
            .collect()
    }

    /// A pool on a mirror of `disks`, with a file of 600 KiB in tank/a.
    fn mirror_pool(disks: &[Pullable]) -> Pool {
        let mut pool = Pool::create_mirror(
            children(disks),
            "tank",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        let a = pool.create_fs("tank/a").unwrap();
        write_file(&mut pool, a, 1);
        pool
    }

    fn write_file(pool: &mut Pool, ds: crate::dsl::DatasetId, seed: u32) {
        let mut dmu = pool.dmu(ds).unwrap();
        let obj = dmu.object_alloc(19, 131072, 0, 0).unwrap();
        let data: Vec<u8> = (0..600u32 << 10)
            .map(|i| (i % 253) as u8 ^ seed as u8)
            .collect();
        dmu.write(obj, 0, &data).unwrap();
        pool.txg_sync().unwrap();
    }

    fn reimport_mirror(disks: &[Pullable]) -> Pool {
        let mut given = children(disks);
        given.reverse();
        Pool::import_devices(
            given,
            Box::new(ManualClock::new(1_700_000_100)),
            Box::new(SplitMix64::new(8)),
        )
        .unwrap()
    }

    /// Rot over every copy of every block on one side of a mirror loses
    /// nothing: reads go to the other side, and a scrub rewrites every
    /// copy on the rotten side, counted against it as `zpool status`
    /// shows.
    #[test]
    fn a_scrub_after_rot_on_one_mirror_side_repairs_every_block() {
        let disks = [Pullable::new(), Pullable::new()];
        let mut pool = mirror_pool(&disks);
        let all = blocks(&mut pool);
        drop(pool);
        let copies: u64 = all.iter().map(|bp| bp.dvas().count() as u64).sum();
        for bp in &all {
            for d in bp.dvas() {
                damage(&disks[1].dev, d.offset());
            }
        }
        // Given in the other order: the labels put them back in theirs.
        let mut pool = reimport_mirror(&disks);
        assert!(pool.is_mirror());
        let status = pool.vdev_status();
        assert_eq!(status[0].path, "disk0");
        assert_eq!(status[1].path, "disk1");
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{report}");
        let first = scrub(&mut pool);
        assert!(first.is_clean(), "{first}");
        assert_eq!(first.blocks, all.len() as u64);
        assert_eq!(first.copies, 2 * copies);
        let status = pool.vdev_status();
        assert_eq!(status[0].errors, crate::vdev::VdevErrors::default());
        // Every copy on the rotten side was found bad and rewritten once
        // (by the reads of the check, or by the scrub).
        assert!(status[1].errors.cksum >= copies);
        assert_eq!(pool.zio.stats.repaired, copies);
        let again = scrub(&mut pool);
        assert_eq!((again.bad_copies, again.repaired), (0, 0), "{again}");
        // Both sides now hold the same bytes everywhere a block is.
        for bp in &all {
            for d in bp.dvas() {
                let range = d.offset() as usize..(d.offset() + d.asize()) as usize;
                assert_eq!(
                    disks[0].dev.borrow().as_bytes()[range.clone()],
                    disks[1].dev.borrow().as_bytes()[range]
                );
            }
        }
    }

    /// A disk pulled while the pool writes misses those txgs: the pool
    /// goes on with the other, records what was missed (in memory and,
    /// for an import after a crash, on disk), and once the disk is back a
    /// resilver rewrites exactly that, so that it alone can serve reads.
    #[test]
    fn a_disk_that_missed_writes_is_resilvered() {
        let disks = [Pullable::new(), Pullable::new()];
        let mut pool = mirror_pool(&disks);
        let a = pool.lookup("tank/a").unwrap();
        let before = pool.synced_txg();
        disks[1].gone.set(true);
        write_file(&mut pool, a, 2);
        write_file(&mut pool, a, 3);
        let after = pool.synced_txg();
        let missed = pool.vdev_status()[1].missing.unwrap();
        assert!(missed.0 > before && missed.1 >= after - 1, "{missed:?}");
        assert!(pool.vdev_status()[1].errors.write > 0);
        assert_eq!(pool.vdev_status()[0].missing, None);
        // A crash now (the pool given up): the record survives import,
        // which also finds the child's uberblocks behind.
        drop(pool);
        disks[1].gone.set(false);
        let mut pool = reimport_mirror(&disks);
        let missed = pool.vdev_status()[1].missing.unwrap();
        assert!(missed.0 > before && missed.1 >= after, "{missed:?}");
        // Reads skip the stale side: the check finds nothing bad.
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(pool.zio.stats.bad_copies, 0);

        let resilvered = resilver(&mut pool).unwrap();
        assert!(resilvered.is_clean(), "{resilvered}");
        assert!(resilvered.resilvered > 0, "{resilvered}");
        assert_eq!(resilvered.bad_copies, 0, "{resilvered}");
        assert_eq!(pool.vdev_status()[1].missing, None);
        assert!(resilver(&mut pool).is_none());
        pool.txg_sync().unwrap();
        let all = blocks(&mut pool);
        drop(pool);
        // The resilvered side alone serves every block.
        for bp in &all {
            for d in bp.dvas() {
                damage(&disks[0].dev, d.offset());
            }
        }
        let mut pool = reimport_mirror(&disks);
        assert_eq!(pool.vdev_status()[1].missing, None, "forgotten on disk too");
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{report}");
        let scrubbed = scrub(&mut pool);
        assert!(scrubbed.is_clean(), "{scrubbed}");
        assert_eq!(scrubbed.stale_copies, 0, "{scrubbed}");
    }

    /// Without a resilver, damage to the only side that has a block loses
    /// it: the stale side is not a copy of it.
    #[test]
    fn a_stale_side_is_not_a_copy() {
        let disks = [Pullable::new(), Pullable::new()];
        let mut pool = mirror_pool(&disks);
        let a = pool.lookup("tank/a").unwrap();
        disks[1].gone.set(true);
        write_file(&mut pool, a, 2);
        disks[1].gone.set(false);
        let born = pool.synced_txg();
        let data: Vec<Blkptr> = blocks(&mut pool)
            .into_iter()
            .filter(|bp| bp.birth == born && bp.level() == 0 && bp.object_type() == 19)
            .collect();
        assert!(!data.is_empty());
        drop(pool);
        for bp in &data {
            damage(&disks[0].dev, bp.dva[0].offset());
        }
        let mut pool = reimport_mirror(&disks);
        let report = scrub(&mut pool);
        assert_eq!(report.unrepairable.len(), data.len(), "{report}");
    }

    /// Import needs every device of a mirror, and only the pool's.
    #[test]
    fn a_mirror_imports_only_whole_and_only_its_own() {
        let disks = [Pullable::new(), Pullable::new()];
        drop(mirror_pool(&disks));
        let clock = || Box::new(ManualClock::new(1));
        let rng = || Box::new(SplitMix64::new(1));
        let mut one = children(&disks);
        one.truncate(1);
        let err = Pool::import_devices(one, clock(), rng()).err().unwrap();
        assert_eq!(err.errno(), crate::error::Errno::ENXIO);
        assert!(err.to_string().contains("disk1"), "{err}");

        let other = Pullable::new();
        drop(mirror_pool(std::slice::from_ref(&other)));
        let mut mixed = children(&disks);
        mixed[1] = ("other".into(), Box::new(other.clone()));
        let err = Pool::import_devices(mixed, clock(), rng()).err().unwrap();
        assert_eq!(err.errno(), crate::error::Errno::EINVAL);
        assert!(err.to_string().contains("other"), "{err}");
    }
}
