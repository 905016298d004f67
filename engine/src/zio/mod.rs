//! The I/O pipeline: turning a logical block into a checksummed, compressed,
//! allocated block on the device, and reading it back verified.
//!
//! Writes never overwrite a live block (copy-on-write): every block is
//! written to freshly allocated space and found through the new block
//! pointer. Every read verifies the checksum the pointer carries; a mismatch
//! is ECKSUM here and EIO to the DMU's callers, as in ZFS.

pub mod blkptr;
mod cache;
pub mod compress;

pub use blkptr::{
    BLKPTR_SIZE, Blkptr, Dva, SPA_DVAS_PER_BP, SPA_MAXBLOCKSIZE, SPA_MINBLOCKSHIFT,
    SPA_MINBLOCKSIZE,
};
pub(crate) use cache::BlkptrCache;
pub use cache::ReadCache;
pub use compress::ZioCompress;

use crate::checksum::{ZioCksum, fletcher_2_native, fletcher_4_native, sha256};
use crate::error::{Errno, Error, Result, fail};
use crate::metaslab::Metaslab;
use crate::vdev::{BlockDevice, Mirror};

/// `enum zio_checksum`, numbered as on disk and in send streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ZioChecksum {
    Inherit = 0,
    On = 1,
    Off = 2,
    Label = 3,
    GangHeader = 4,
    Zilog = 5,
    Fletcher2 = 6,
    Fletcher4 = 7,
    Sha256 = 8,
    Zilog2 = 9,
}

/// `ZIO_CHECKSUM_FUNCTIONS`.
pub const ZIO_CHECKSUM_FUNCTIONS: u8 = 10;

impl ZioChecksum {
    pub fn from_u8(v: u8) -> Option<ZioChecksum> {
        use ZioChecksum::*;
        [
            Inherit, On, Off, Label, GangHeader, Zilog, Fletcher2, Fletcher4, Sha256, Zilog2,
        ]
        .get(usize::from(v))
        .copied()
    }

    pub fn name(self) -> &'static str {
        use ZioChecksum::*;
        match self {
            Inherit => "inherit",
            On => "on",
            Off => "off",
            Label => "label",
            GangHeader => "gang_header",
            Zilog => "zilog",
            Fletcher2 => "fletcher2",
            Fletcher4 => "fletcher4",
            Sha256 => "sha256",
            Zilog2 => "zilog2",
        }
    }

    pub fn from_name(name: &str) -> Option<ZioChecksum> {
        (0..ZIO_CHECKSUM_FUNCTIONS)
            .filter_map(ZioChecksum::from_u8)
            .find(|c| c.name() == name)
    }

    /// `zio_checksum_select`: a child's setting, or the parent's when the
    /// child inherits; `on` means fletcher4 in this era.
    pub fn select(child: ZioChecksum, parent: ZioChecksum) -> ZioChecksum {
        match child {
            ZioChecksum::Inherit => parent,
            ZioChecksum::On => ZioChecksum::Fletcher4,
            c => c,
        }
    }

    /// `ci_correctable` and `ci_eck` of `zio_checksum_table`: whether the
    /// function is good enough for metadata (else metadata uses fletcher4).
    pub fn fit_for_metadata(self) -> bool {
        matches!(self, ZioChecksum::Fletcher4 | ZioChecksum::Sha256)
    }

    /// `ci_dedup`: strong enough to identify a block by its checksum.
    pub fn is_dedup_grade(self) -> bool {
        self == ZioChecksum::Sha256
    }

    /// The checksum of `data` by this function (zero for `off`).
    pub fn compute(self, data: &[u8]) -> ZioCksum {
        match self {
            ZioChecksum::Fletcher2 | ZioChecksum::Zilog => fletcher_2_native(data),
            ZioChecksum::Fletcher4 | ZioChecksum::Zilog2 => fletcher_4_native(data),
            ZioChecksum::Sha256 | ZioChecksum::Label | ZioChecksum::GangHeader => sha256(data),
            ZioChecksum::Off | ZioChecksum::Inherit | ZioChecksum::On => ZioCksum::ZERO,
        }
    }
}

/// How a block is to be written (what `dmu_write_policy` decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteProps {
    pub object_type: u8,
    pub level: u8,
    /// A concrete function (not inherit/on).
    pub checksum: ZioChecksum,
    /// A concrete function (not inherit/on).
    pub compress: ZioCompress,
    pub fill: u64,
    /// Copies to write (`zp_copies`), 1 to 3: the objset's `copies`, one
    /// more for metadata; [`Zio::max_replication`] caps it.
    pub copies: u8,
}

thread_local! {
    /// Blocks a read found with no good copy, since the last
    /// [`take_lost_blocks`]; the first [`LOST_KEPT`] only.
    static LOST: std::cell::RefCell<Vec<(u64, Blkptr)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many bad copies a scrub names.
pub(crate) const BAD_KEPT: usize = 64;

/// How many lost blocks [`take_lost_blocks`] keeps between takes.
const LOST_KEPT: usize = 64;

fn record_lost(pool_guid: u64, bp: &Blkptr) {
    LOST.with(|lost| {
        let mut lost = lost.borrow_mut();
        let entry = (pool_guid, *bp);
        if lost.len() < LOST_KEPT && !lost.contains(&entry) {
            lost.push(entry);
        }
    });
}

/// The blocks reads on this thread found with every copy failing its
/// checksum since the last call, each with its pool's guid: the
/// simulator's oracle asks of each whether the damage it injected reached
/// every copy, as only then may data be lost.
pub fn take_lost_blocks() -> Vec<(u64, Blkptr)> {
    LOST.with(|lost| std::mem::take(&mut *lost.borrow_mut()))
}

/// Keeps the worse of two copies' errors, as `zio_worst_error` ranks
/// them: EIO over ECKSUM over ENXIO (a device not there says least about
/// the block), any other errno over all three; the first of equal rank.
pub(crate) fn keep_worst(worst: &mut Option<Error>, e: Error) {
    fn rank(errno: Errno) -> u8 {
        match errno {
            Errno::ENXIO => 1,
            Errno::ECKSUM => 2,
            Errno::EIO => 3,
            _ => 4,
        }
    }
    if worst
        .as_ref()
        .is_none_or(|w| rank(e.errno()) > rank(w.errno()))
    {
        *worst = Some(e);
    }
}

/// I/O counters, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZioStats {
    pub blocks_written: u64,
    pub bytes_written: u64,
    pub blocks_read: u64,
    pub bytes_read: u64,
    pub checksum_errors: u64,
    /// Copies that failed their read (EIO or checksum) while another copy
    /// of the block served it.
    pub bad_copies: u64,
    /// Bad copies rewritten from a good one (self-healing).
    pub repaired: u64,
    /// Copies that failed on a mirror child known to have missed the
    /// block's txg (not damage: what a resilver is for).
    pub stale_copies: u64,
    /// Stale copies rewritten from a good one.
    pub resilvered: u64,
}

/// The pool's device and allocator: everything that moves blocks.
pub struct Zio {
    /// The pool's top-level vdev: one disk or a mirror.
    pub vdev: Mirror,
    pub ms: Metaslab,
    pub stats: ZioStats,
    /// Set by the check for its walks; any block write drops it.
    pub(crate) blkptr_cache: Option<BlkptrCache>,
    /// Blocks read while the device vouched for its reads.
    pub(crate) read_cache: ReadCache,
    /// `zfs_mdcomp_disable`: metadata is written uncompressed (all-zero
    /// blocks are still holes). Off by default, as in ZFS; the fuzz targets
    /// set it, because compressing metadata is most of a txg sync's cost
    /// and not what they test.
    pub mdcomp_disable: bool,
    /// `spa_max_replication`: the most copies a block gets (3, a block
    /// pointer's DVAs). The `pool_image` fuzz target sets 1, so that its
    /// corpus keeps addressing the blocks it was made on.
    pub max_replication: u8,
    /// A read that found a bad copy rewrites it from the good one. Off
    /// while import loads trees (an older tree's blocks may have been
    /// reused since: rewriting them would damage live ones).
    pub self_heal: bool,
    /// The guid of the pool this zio serves (0 until the pool sets it),
    /// naming the pool in [`take_lost_blocks`].
    pub pool_guid: u64,
    /// Whether a block found with no good copy is recorded for
    /// [`take_lost_blocks`]: not while import tries an uberblock older
    /// than the deferral window allows, whose blocks may rightly have
    /// been reused since.
    pub(crate) losses_recorded: bool,
    /// While a scrub runs: each bad copy its reads found, as (offset,
    /// size, child), the first [`BAD_KEPT`] only.
    pub(crate) bad_log: Option<Vec<(u64, u64, usize)>>,
    /// Fuzzing only: reads skip the block checksum, so that bytes a fuzzer
    /// changed on the device reach the code that parses them instead of
    /// stopping at ECKSUM (a block with a valid checksum and a bad inside
    /// is what a software bug or a crafted image makes).
    #[cfg(feature = "fuzzing")]
    pub unverified: bool,
}

impl Zio {
    /// A zio on one disk.
    pub fn new(dev: Box<dyn BlockDevice>, ms: Metaslab) -> Zio {
        Zio::on(Mirror::single(dev, 0, ""), ms)
    }

    /// A zio on a top-level vdev.
    pub fn on(vdev: Mirror, ms: Metaslab) -> Zio {
        Zio {
            vdev,
            ms,
            stats: ZioStats::default(),
            blkptr_cache: None,
            read_cache: ReadCache::default(),
            mdcomp_disable: false,
            max_replication: SPA_DVAS_PER_BP,
            self_heal: true,
            pool_guid: 0,
            losses_recorded: true,
            bad_log: None,
            #[cfg(feature = "fuzzing")]
            unverified: false,
        }
    }

    /// Whether reads check block checksums: always, but in a fuzz target
    /// that turned it off.
    fn verifies(&self) -> bool {
        #[cfg(feature = "fuzzing")]
        if self.unverified {
            return false;
        }
        true
    }

    /// Compresses, checksums, allocates and writes one block born in `txg`,
    /// in as many copies as `props` asks for (each its own DVA, as far
    /// apart as the allocator can put them). A block that compresses to
    /// nothing (all zeros, compression on) is a hole and writes nothing, as
    /// `zio_write_bp_init` does.
    pub fn write_block(&mut self, txg: u64, data: &[u8], props: &WriteProps) -> Result<Blkptr> {
        self.blkptr_cache = None;
        let lsize = data.len() as u64;
        debug_assert!(
            lsize > 0 && lsize.is_multiple_of(SPA_MINBLOCKSIZE) && lsize <= SPA_MAXBLOCKSIZE
        );
        let (physical, compress) = match compress::compress_block(props.compress, data)? {
            compress::Compressed::Hole => return Ok(Blkptr::HOLE),
            compress::Compressed::Stored { data, compress } => (data, compress),
        };
        let psize = physical.len() as u64;
        let asize = psize.next_multiple_of(self.ms.align());
        let copies = props.copies.clamp(1, self.max_replication.max(1)) as usize;
        let offsets = self.ms.alloc_copies(asize, copies)?;

        let mut bp = Blkptr {
            birth: txg,
            fill: props.fill,
            cksum: props.checksum.compute(&physical),
            ..Blkptr::default()
        };
        for (dva, &offset) in bp.dva.iter_mut().zip(&offsets) {
            *dva = Dva::new(offset, asize);
        }
        bp.set_lsize(lsize);
        bp.set_psize(psize);
        bp.set_compress(compress as u8);
        bp.set_checksum(props.checksum as u8);
        bp.set_object_type(props.object_type);
        bp.set_level(props.level);
        bp.set_byteorder(1);

        // Padded to the allocation with zeros; a block that fills it is
        // written from where it is.
        let physical = if physical.len() as u64 == asize {
            physical
        } else {
            let mut padded = physical.into_owned();
            padded.resize(asize as usize, 0);
            padded.into()
        };
        for &offset in &offsets {
            self.read_cache.overwrite(offset, asize);
            if let Err(e) = self.vdev.write(txg, offset, &physical) {
                // Never referenced: the space can be reused at once.
                for &o in &offsets {
                    self.ms.free_now(o, asize);
                }
                return Err(e);
            }
            self.stats.blocks_written += 1;
            self.stats.bytes_written += asize;
        }
        Ok(bp)
    }

    /// Reads a block and returns its logical contents, verified. A hole
    /// reads as `lsize` zeros of the size the caller expects.
    pub fn read_block(&mut self, bp: &Blkptr) -> Result<Vec<u8>> {
        self.with_block(bp, |data| Ok(data.to_vec()))
    }

    /// [`Zio::read_block`] for a reader that only looks: `f` sees the
    /// contents where they are (in the read cache, when the device vouches
    /// for its reads), with no copy made for it.
    pub fn with_block<R>(&mut self, bp: &Blkptr, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        debug_assert!(!bp.is_hole());
        let Some(epoch) = self.vdev.read_epoch() else {
            return f(&self.read_copies(bp)?.0);
        };
        // The child a read would try first: a cached block answers only for
        // it, as the read would have found there just what it found before.
        let dva = bp.dva[0];
        let first = self.vdev.read_order(dva.offset(), bp.birth)[0];
        let vdev = &self.vdev;
        self.read_cache
            .enter(epoch, |since| vdev.changes_since(since));
        if self.read_cache.get(bp, first).is_some() {
            self.vdev.charge_read(first, dva.offset(), dva.asize());
            self.stats.blocks_read += 1;
            self.stats.bytes_read += dva.asize();
            return f(self.read_cache.get(bp, first).expect("just found"));
        }
        let (data, clean) = self.read_copies(bp)?;
        // On a mirror, only a read that its first try served is kept: one
        // that met a bad copy first would not be the same read again.
        if self.vdev.is_mirror() && !clean {
            return f(&data);
        }
        match self.read_cache.insert(bp, first, data) {
            Some(data) => f(&data),
            None => f(self.read_cache.get(bp, first).expect("just kept")),
        }
    }

    /// Reads the block's copies in DVA order, each from the mirror's
    /// children in [`Mirror::read_order`], until one verifies, and
    /// rewrites the ones before it that did not (`vdev_mirror`'s handling
    /// of ditto blocks and of its children). With every copy bad, the
    /// worst error, as `zio_worst_error` ranks them: EIO over ECKSUM.
    /// Also says whether the first copy tried, on the first child tried,
    /// served the read.
    fn read_copies(&mut self, bp: &Blkptr) -> Result<(Vec<u8>, bool)> {
        let mut bad: Vec<(Dva, usize)> = Vec::new();
        let mut worst: Option<Error> = None;
        // A hole has no copies; a damaged pointer may have none either.
        let dvas: Vec<Dva> = if bp.dvas().next().is_none() {
            vec![bp.dva[0]]
        } else {
            bp.dvas().collect()
        };
        let tried = if planted!(DittoReadFirstCopyOnly) {
            1
        } else {
            dvas.len()
        };
        let lsize = bp.lsize() as usize;
        let compress = ZioCompress::from_u8(bp.compress());
        let unknown = || Error::new(Errno::EIO, format!("unknown compression {}", bp.compress()));
        for dva in dvas.into_iter().take(tried) {
            let order = self.vdev.read_order(dva.offset(), bp.birth);
            for &child in &order[..self.vdev.width()] {
                let read = if self.vdev.child_lends(child) {
                    // Decompressed (or copied) from where the device holds
                    // the copy; its physical bytes kept only to heal bad ones.
                    let healing = !bad.is_empty();
                    self.read_copy_with(bp, dva, child, |physical| {
                        let data = compress
                            .ok_or_else(unknown)
                            .and_then(|c| compress::decompress_block(c, physical, lsize));
                        (data, healing.then(|| physical.to_vec()))
                    })
                } else {
                    // Read into a buffer of its own, which a block stored
                    // as it is becomes.
                    self.read_copy(bp, dva, child).map(|physical| {
                        self.heal(bp, &bad, dva, &physical);
                        let data = compress
                            .ok_or_else(unknown)
                            .and_then(|c| compress::decompress_block_owned(c, physical, lsize));
                        (data, None)
                    })
                };
                match read {
                    Ok((data, physical)) => {
                        if let Some(physical) = physical {
                            self.heal(bp, &bad, dva, &physical);
                        }
                        return Ok((data?, bad.is_empty()));
                    }
                    Err(e) => {
                        bad.push((dva, child));
                        keep_worst(&mut worst, e);
                    }
                }
            }
        }
        let worst = worst.expect("a block pointer has a first DVA");
        // Every copy read and failed its checksum: what is there is not
        // the block (a device error says nothing about the media).
        if worst.errno() == Errno::ECKSUM && self.losses_recorded {
            record_lost(self.pool_guid, bp);
        }
        Err(worst)
    }

    /// One copy's physical bytes (`psize` of them) from one mirror child,
    /// verified.
    fn read_copy(&mut self, bp: &Blkptr, dva: Dva, child: usize) -> Result<Vec<u8>> {
        self.read_copy_with(bp, dva, child, <[u8]>::to_vec)
    }

    /// [`read_copy`](Zio::read_copy) handing the verified bytes to `f`
    /// where the device holds them (see [`BlockDevice::read_with`]), so a
    /// block decompressed or copied once is not first copied out whole.
    fn read_copy_with<R>(
        &mut self,
        bp: &Blkptr,
        dva: Dva,
        child: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let (offset, asize, psize) = (dva.offset(), dva.asize(), bp.psize());
        if asize == 0
            || psize > asize
            || offset
                .checked_add(asize)
                .is_none_or(|end| end > self.vdev.size())
        {
            return fail(
                Errno::EIO,
                format!("block pointer out of range: offset {offset:#x} asize {asize}"),
            );
        }
        let checksum = ZioChecksum::from_u8(bp.checksum()).unwrap_or(ZioChecksum::Fletcher4);
        let verify = checksum != ZioChecksum::Off && self.verifies();
        let mut f = Some(f);
        let mut out = None;
        let read = self
            .vdev
            .read_child_with(child, offset, asize as usize, &mut |bytes| {
                let physical = &bytes[..psize as usize];
                if verify && checksum.compute(physical) != bp.cksum {
                    return;
                }
                out = f.take().map(|f| f(physical));
            });
        if let Err(e) = read {
            self.vdev.children[child].errors.read += 1;
            return Err(e);
        }
        self.stats.blocks_read += 1;
        self.stats.bytes_read += asize;
        let Some(out) = out else {
            self.stats.checksum_errors += 1;
            self.vdev.children[child].errors.cksum += 1;
            return fail(
                Errno::ECKSUM,
                format!(
                    "checksum mismatch in the block at {offset:#x} (birth txg {})",
                    bp.birth
                ),
            );
        };
        Ok(out)
    }

    /// Reads every copy of a block on every child, bypassing the cache,
    /// and rewrites the bad ones from a good one (a scrub's or a
    /// resilver's read). With no good copy, the worst error.
    pub(crate) fn scrub_block(&mut self, bp: &Blkptr) -> Result<()> {
        let mut bad = Vec::new();
        let mut good: Option<(Dva, Vec<u8>)> = None;
        let mut worst: Option<Error> = None;
        for dva in bp.dvas() {
            for child in 0..self.vdev.width() {
                match self.read_copy(bp, dva, child) {
                    Ok(physical) => {
                        if good.is_none() {
                            good = Some((dva, physical));
                        }
                    }
                    Err(e) => {
                        bad.push((dva, child));
                        keep_worst(&mut worst, e);
                    }
                }
            }
        }
        match good {
            Some((dva, physical)) => {
                self.heal(bp, &bad, dva, &physical);
                Ok(())
            }
            None => Err(worst.unwrap_or_else(|| Error::new(Errno::EIO, "a block with no copies"))),
        }
    }

    /// Rewrites bad copies (each a DVA on one child) with the bytes of the
    /// good copy `good` (its `psize` bytes, padded here to its size on
    /// disk). A copy on a child that missed the block's txg is stale, not
    /// bad, and is rewritten all the same. A failed rewrite changes
    /// nothing: the copy stays bad, and reads still skip it.
    fn heal(&mut self, bp: &Blkptr, bad: &[(Dva, usize)], good: Dva, physical: &[u8]) {
        if bad.is_empty() {
            return;
        }
        let stale = bad
            .iter()
            .filter(|&&(_, c)| self.vdev.children[c].missed(bp.birth))
            .count() as u64;
        self.stats.stale_copies += stale;
        self.stats.bad_copies += bad.len() as u64 - stale;
        if let Some(log) = &mut self.bad_log {
            for &(dva, child) in bad {
                if log.len() < BAD_KEPT && !self.vdev.children[child].missed(bp.birth) {
                    log.push((dva.offset(), dva.asize(), child));
                }
            }
        }
        if !self.self_heal {
            return;
        }
        let mut whole = physical.to_vec();
        whole.resize(good.asize() as usize, 0);
        for &(dva, child) in bad.iter().filter(|(d, _)| d.asize() == good.asize()) {
            self.read_cache.overwrite(dva.offset(), dva.asize());
            if self.vdev.write_child(child, dva.offset(), &whole).is_ok() {
                if self.vdev.children[child].missed(bp.birth) {
                    self.stats.resilvered += 1;
                } else {
                    self.stats.repaired += 1;
                }
            }
        }
    }

    /// Frees a block after `txg` and the deferral window have synced.
    pub fn free_block(&mut self, txg: u64, bp: &Blkptr) -> Result<()> {
        if bp.is_hole() {
            return Ok(());
        }
        if bp.dvas().next().is_none() {
            return fail(
                Errno::EIO,
                "freeing a block with no copies (a damaged block pointer)",
            );
        }
        for dva in bp.dvas() {
            self.ms.free_deferred(txg, dva.offset(), dva.asize())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::vdev::{MemDevice, SharedDevice};

    /// A memory disk that vouches for its reads in an epoch the test moves,
    /// and counts them. A clone is another handle to the same disk and
    /// cells: the test keeps one, each zio owns one.
    #[derive(Clone)]
    struct Epochs {
        dev: SharedDevice<MemDevice>,
        epoch: Rc<Cell<Option<u64>>>,
        reads: Rc<Cell<u64>>,
        /// What `changes_since` answers for any epoch.
        changed: Rc<Cell<Option<(u64, u64)>>>,
    }

    impl BlockDevice for Epochs {
        fn sector_size(&self) -> u64 {
            self.dev.sector_size()
        }
        fn size(&self) -> u64 {
            self.dev.size()
        }
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
            self.reads.set(self.reads.get() + 1);
            self.dev.read(offset, buf)
        }
        fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
            self.dev.write(offset, buf)
        }
        fn flush(&mut self) -> Result<()> {
            self.dev.flush()
        }
        fn read_epoch(&self) -> Option<u64> {
            self.epoch.get()
        }
        fn changes_since(&self, _epoch: u64) -> Option<Vec<(u64, u64)>> {
            self.changed.get().map(|range| vec![range])
        }
    }

    impl Epochs {
        fn new(epoch: Option<u64>) -> Epochs {
            Epochs {
                dev: SharedDevice::new(MemDevice::new(1 << 20, 512)),
                epoch: Rc::new(Cell::new(epoch)),
                reads: Rc::new(Cell::new(0)),
                changed: Rc::new(Cell::new(None)),
            }
        }

        /// A zio on this disk.
        fn zio(&self) -> Zio {
            Zio::new(Box::new(self.clone()), Metaslab::new(0, 1 << 20, 512))
        }

        /// What a read returns, and how many device reads it took.
        fn read(&self, zio: &mut Zio, bp: &Blkptr) -> (std::result::Result<Vec<u8>, Errno>, u64) {
            let before = self.reads.get();
            let data = zio.read_block(bp).map_err(|e| e.errno());
            (data, self.reads.get() - before)
        }
    }

    const PROPS: WriteProps = WriteProps {
        object_type: 19,
        level: 0,
        checksum: ZioChecksum::Fletcher4,
        compress: ZioCompress::Lzjb,
        fill: 1,
        copies: 1,
    };

    fn block(seed: u8) -> Vec<u8> {
        (0..4096u32).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[test]
    fn reads_come_from_the_cache_only_while_the_device_vouches_for_them() {
        let rig = Epochs::new(None);
        let (epoch, dev) = (&rig.epoch, &rig.dev);
        let mut zio = rig.zio();
        let bp = zio.write_block(5, &block(1), &PROPS).unwrap();
        // No epoch: every read goes to the device.
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 1));
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 1));
        // Within an epoch, once.
        epoch.set(Some(1));
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 1));
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 0));
        // A new epoch forgets.
        epoch.set(Some(2));
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 1));

        // The block freed too early and its space written again: the old
        // block pointer must meet the new bytes, not the cached ones.
        zio.ms.free_now(bp.dva[0].offset(), bp.dva[0].asize());
        let again = zio.write_block(6, &block(2), &PROPS).unwrap();
        assert_eq!(again.dva[0].offset(), bp.dva[0].offset());
        assert_eq!(rig.read(&mut zio, &bp), (Err(Errno::ECKSUM), 1));

        // Bytes changed behind the pool's back within an epoch are not seen
        // (the device vouched they would not change); in the next, they are.
        assert_eq!(rig.read(&mut zio, &again), (Ok(block(2)), 1));
        dev.borrow_mut().as_bytes_mut()[again.dva[0].offset() as usize] ^= 1;
        assert_eq!(rig.read(&mut zio, &again), (Ok(block(2)), 0));
        epoch.set(Some(3));
        assert_eq!(rig.read(&mut zio, &again), (Err(Errno::ECKSUM), 1));
    }

    /// A new epoch whose changes the device can name forgets only the
    /// blocks over them, and a cache handed to another zio on the same
    /// device (an import after a power loss) keeps serving the rest.
    #[test]
    fn a_new_epoch_forgets_only_the_blocks_over_what_changed() {
        let rig = Epochs::new(Some(1));
        let (epoch, dev, changed) = (&rig.epoch, &rig.dev, &rig.changed);
        let mut zio = rig.zio();
        let a = zio.write_block(5, &block(1), &PROPS).unwrap();
        let b = zio.write_block(5, &block(2), &PROPS).unwrap();
        assert_eq!(rig.read(&mut zio, &a), (Ok(block(1)), 1));
        assert_eq!(rig.read(&mut zio, &b), (Ok(block(2)), 1));
        // `b`'s last sector changed behind the zio's back.
        let b_end = b.dva[0].offset() + b.dva[0].asize();
        dev.borrow_mut().as_bytes_mut()[b_end as usize - 1] ^= 1;
        changed.set(Some((b_end - 512, 512)));
        epoch.set(Some(2));
        let mut next = rig.zio();
        next.read_cache = std::mem::take(&mut zio.read_cache);
        assert_eq!(rig.read(&mut next, &a), (Ok(block(1)), 0));
        assert_eq!(rig.read(&mut next, &b), (Err(Errno::ECKSUM), 1));
        // Changes it cannot name: nothing is kept.
        changed.set(None);
        epoch.set(Some(3));
        assert_eq!(rig.read(&mut next, &a), (Ok(block(1)), 1));
    }

    /// A mirror vouches for its reads while every child does, and a read
    /// is kept for the child that served it at the first try: not a read
    /// that met a bad copy first, and not for another child.
    #[test]
    fn a_mirror_keeps_a_read_only_for_the_child_that_served_it_first() {
        use crate::vdev::MirrorChild;
        let (a, b) = (Epochs::new(Some(1)), Epochs::new(Some(1)));
        let mirror = Mirror::new(vec![
            MirrorChild::new(Box::new(a.clone()), 1, "a".into()),
            MirrorChild::new(Box::new(b.clone()), 2, "b".into()),
        ])
        .unwrap();
        let mut zio = Zio::on(mirror, Metaslab::new(0, 1 << 20, 512));
        let read = |zio: &mut Zio, bp: &Blkptr| {
            let before = a.reads.get() + b.reads.get();
            let data = zio.read_block(bp).map_err(|e| e.errno());
            (data, a.reads.get() + b.reads.get() - before)
        };
        let bp = zio.write_block(5, &block(1), &PROPS).unwrap();
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 1));
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 0));
        // A child that cannot vouch: neither can the mirror.
        b.epoch.set(None);
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 1));
        b.epoch.set(Some(1));
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 0));

        // The child read first may now lack the block: a read goes to the
        // other one, and is kept for that one.
        let offset = bp.dva[0].offset();
        let first = zio.vdev.read_order(offset, 5)[0];
        zio.vdev.children[first].missing = Some((5, 5));
        assert_eq!(zio.vdev.read_order(offset, 5)[0], 1 - first);
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 1));
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 0));
        zio.vdev.children[first].missing = None;
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 1));

        // Damage on the child read first, named as a change: the read meets
        // it, heals it from the other child and is not kept; the next one,
        // served at the first try, is.
        let rig = if first == 0 { &a } else { &b };
        rig.dev.borrow_mut().as_bytes_mut()[offset as usize] ^= 1;
        rig.changed.set(Some((offset, bp.dva[0].asize())));
        rig.epoch.set(Some(2));
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 2));
        assert_eq!(zio.stats.repaired, 1);
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 1));
        assert_eq!(read(&mut zio, &bp), (Ok(block(1)), 0));
    }

    /// Ditto blocks: a bad copy is read past and rewritten from a good
    /// one; with every copy bad, the read fails.
    #[test]
    fn a_bad_copy_is_read_past_and_healed() {
        let rig = Epochs::new(None);
        let dev = &rig.dev;
        let mut zio = rig.zio();
        let props = WriteProps { copies: 3, ..PROPS };
        let bp = zio.write_block(5, &block(1), &props).unwrap();
        let dvas: Vec<Dva> = bp.dvas().collect();
        assert_eq!(dvas.len(), 3);
        assert_eq!(bp.asize(), 3 * dvas[0].asize());
        let at = |d: &Dva| d.offset() as usize;
        let first = dev.borrow().as_bytes()[at(&dvas[0])..][..dvas[0].asize() as usize].to_vec();
        dev.borrow_mut().as_bytes_mut()[at(&dvas[0])] ^= 1;
        dev.borrow_mut().as_bytes_mut()[at(&dvas[1]) + 7] ^= 1;
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 3));
        assert_eq!((zio.stats.bad_copies, zio.stats.repaired), (2, 2));
        for d in &dvas[..2] {
            assert_eq!(&dev.borrow().as_bytes()[at(d)..][..first.len()], &first[..]);
        }
        // Healed: the first copy serves the next read.
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 1));

        // Without healing (an import loading its trees), nothing is written.
        dev.borrow_mut().as_bytes_mut()[at(&dvas[0])] ^= 1;
        zio.self_heal = false;
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 2));
        assert_eq!(rig.read(&mut zio, &bp), (Ok(block(1)), 2));
        assert_eq!(zio.stats.repaired, 2);

        for d in &dvas[1..] {
            dev.borrow_mut().as_bytes_mut()[at(d)] ^= 1;
        }
        assert_eq!(rig.read(&mut zio, &bp), (Err(Errno::ECKSUM), 3));

        // Freeing frees every copy.
        let before = zio.ms.allocated();
        zio.free_block(5, &bp).unwrap();
        zio.ms.sync_done(7);
        assert_eq!(before - zio.ms.allocated(), bp.asize());
    }

    /// The copies cap: `max_replication`, and a block written whole or not
    /// at all when the space for every copy is not there.
    #[test]
    fn copies_are_capped_and_all_or_nothing() {
        let rig = Epochs::new(None);
        let mut zio = rig.zio();
        zio.max_replication = 2;
        let bp = zio
            .write_block(5, &block(1), &WriteProps { copies: 3, ..PROPS })
            .unwrap();
        assert_eq!(bp.dvas().count(), 2);
        // Room for one copy: ENOSPC, and nothing kept.
        let one = bp.dva[0].asize();
        zio.ms = Metaslab::new(0, one, 512);
        let err = zio.write_block(6, &block(1), &WriteProps { copies: 2, ..PROPS });
        assert_eq!(err.unwrap_err().errno(), Errno::ENOSPC);
        assert_eq!(zio.ms.allocated(), 0);
        assert_eq!(zio.stats.blocks_written, 2);
    }
}
