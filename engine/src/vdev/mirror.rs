//! The pool's top-level vdev: one disk, or a mirror of two or three
//! (`vdev_mirror.c`).
//!
//! Every block is written to every child at the same offset, so each copy
//! of a block pointer (each DVA) exists once per child. A write succeeds
//! when one child took it: a child that failed it has missed that txg
//! (`DTL_MISSING`), reads skip it for blocks born then, and a resilver
//! rewrites them on it. Errors are counted per child, as `zpool status`
//! shows them. A pool on one disk is a mirror of one: its writes fail when
//! its disk fails them, and it never records missed txgs.

use crate::error::{Errno, Error, Result, fail};

use super::BlockDevice;

/// The most children a mirror has here (a three-way mirror).
pub const MIRROR_MAX_CHILDREN: usize = 3;

/// Bits of a mirror's read epoch per child: three children fit in 64 bits,
/// and a child past 2^21 changes stops vouching.
const EPOCH_BITS: u32 = 21;

/// A child's error counters (`vs_read_errors`, `vs_write_errors`,
/// `vs_checksum_errors`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VdevErrors {
    pub read: u64,
    pub write: u64,
    pub cksum: u64,
}

/// One child of the top-level vdev.
pub struct MirrorChild {
    pub(crate) dev: Box<dyn BlockDevice>,
    pub guid: u64,
    /// What the labels record as the child's path (an image file's path,
    /// or a simulated disk's name).
    pub path: String,
    pub errors: VdevErrors,
    /// `DTL_MISSING`: the txgs (first, last) whose writes this child may
    /// lack. One range: the union of every miss, which is only ever more
    /// than was missed.
    pub missing: Option<(u64, u64)>,
}

impl MirrorChild {
    /// A child with no errors counted and nothing missed.
    pub fn new(dev: Box<dyn BlockDevice>, guid: u64, path: String) -> MirrorChild {
        MirrorChild {
            dev,
            guid,
            path,
            errors: VdevErrors::default(),
            missing: None,
        }
    }

    /// Whether this child may lack what was written in `txg`.
    pub fn missed(&self, txg: u64) -> bool {
        self.missing.is_some_and(|(lo, hi)| lo <= txg && txg <= hi)
    }

    /// Adds `first..=last` to the txgs this child may lack.
    pub fn miss(&mut self, first: u64, last: u64) {
        self.missing = Some(match self.missing {
            None => (first, last),
            Some((lo, hi)) => (lo.min(first), hi.max(last)),
        });
    }
}

/// The top-level vdev (see the module documentation).
pub struct Mirror {
    pub(crate) children: Vec<MirrorChild>,
    size: u64,
    sector_size: u64,
    /// Set when a child's missed txgs changed since the pool last
    /// recorded them.
    pub(crate) dtl_dirty: bool,
}

impl Mirror {
    /// A vdev over `children` (1 to 3, all of one sector size); its size is
    /// the smallest child's, in whole sectors.
    pub fn new(children: Vec<MirrorChild>) -> Result<Mirror> {
        if children.is_empty() || children.len() > MIRROR_MAX_CHILDREN {
            return fail(
                Errno::EINVAL,
                format!(
                    "a mirror has 1 to {MIRROR_MAX_CHILDREN} devices, not {}",
                    children.len()
                ),
            );
        }
        let sector_size = children[0].dev.sector_size();
        if let Some(c) = children.iter().find(|c| c.dev.sector_size() != sector_size) {
            return fail(
                Errno::EINVAL,
                format!(
                    "mirror devices differ in sector size: {} has {}, {} has {sector_size}",
                    c.path,
                    c.dev.sector_size(),
                    children[0].path
                ),
            );
        }
        let size = children
            .iter()
            .map(|c| c.dev.size() / sector_size * sector_size)
            .min()
            .expect("at least one child");
        Ok(Mirror {
            children,
            size,
            sector_size,
            dtl_dirty: false,
        })
    }

    /// A vdev of one disk.
    pub fn single(dev: Box<dyn BlockDevice>, guid: u64, path: &str) -> Mirror {
        Mirror::new(vec![MirrorChild::new(dev, guid, path.to_string())]).expect("one child")
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sector_size(&self) -> u64 {
        self.sector_size
    }

    /// How many children: 1 for a plain disk.
    pub fn width(&self) -> usize {
        self.children.len()
    }

    pub fn is_mirror(&self) -> bool {
        self.children.len() > 1
    }

    pub fn children(&self) -> &[MirrorChild] {
        &self.children
    }

    /// The first child's device (a pool on one disk: its disk).
    pub fn first_mut(&mut self) -> &mut dyn BlockDevice {
        &mut *self.children[0].dev
    }

    pub fn into_devices(self) -> Vec<Box<dyn BlockDevice>> {
        self.children.into_iter().map(|c| c.dev).collect()
    }

    /// Records that child `c` may lack what was written in `txg`.
    fn missed(&mut self, c: usize, txg: u64) {
        if !self.children[c].missed(txg) {
            self.children[c].miss(txg, txg);
            self.dtl_dirty = true;
        }
    }

    /// Writes `buf` at `offset` on every child, for txg `txg`. A child
    /// that fails it has missed the txg; the write fails only when every
    /// child failed it (with the worst of their errors, as a read).
    pub fn write(&mut self, txg: u64, offset: u64, buf: &[u8]) -> Result<()> {
        self.for_each_child(txg, |dev| dev.write(offset, buf))
    }

    /// Flushes every child: as [`Mirror::write`], a child that fails it
    /// has missed the txg.
    pub fn flush(&mut self, txg: u64) -> Result<()> {
        self.for_each_child(txg, |dev| dev.flush())
    }

    /// Runs `f` on every child's device for txg `txg`, as [`Mirror::write`]
    /// does a write: a child it fails for has missed the txg, and it fails
    /// only when it failed for every child.
    pub(crate) fn for_each_child(
        &mut self,
        txg: u64,
        mut f: impl FnMut(&mut dyn BlockDevice) -> Result<()>,
    ) -> Result<()> {
        let mut worst: Option<Error> = None;
        let mut ok = false;
        for c in 0..self.children.len() {
            match f(&mut *self.children[c].dev) {
                Ok(()) => ok = true,
                Err(e) => {
                    self.children[c].errors.write += 1;
                    if self.is_mirror() {
                        self.missed(c, txg);
                    }
                    crate::zio::keep_worst(&mut worst, e);
                }
            }
        }
        match worst {
            Some(e) if !ok => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes one child only (a repair of its copy).
    pub fn write_child(&mut self, c: usize, offset: u64, buf: &[u8]) -> Result<()> {
        let result = self.children[c].dev.write(offset, buf);
        if result.is_err() {
            self.children[c].errors.write += 1;
        }
        result
    }

    /// Reads one child.
    pub fn read_child(&mut self, c: usize, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.children[c].dev.read(offset, buf)
    }

    /// [`read_child`](Mirror::read_child) handing the bytes to `f` where
    /// the child holds them (see [`BlockDevice::read_with`]).
    pub fn read_child_with(
        &mut self,
        c: usize,
        offset: u64,
        len: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
        self.children[c].dev.read_with(offset, len, f)
    }

    /// See [`BlockDevice::lends`].
    pub fn child_lends(&self, c: usize) -> bool {
        self.children[c].dev.lends()
    }

    /// The order to try the children in, for a read at `offset` of a
    /// block born in `birth`: the children that cannot lack it, from a
    /// preferred one that moves with the offset so that the reads spread
    /// over the children (`vdev_mirror_child_select`, deterministic here);
    /// then those that may lack it, as a last resort. The first
    /// [`Mirror::width`] entries count (no allocation: every uncached
    /// read asks).
    pub fn read_order(&self, offset: u64, birth: u64) -> [usize; MIRROR_MAX_CHILDREN] {
        let mut order = [0; MIRROR_MAX_CHILDREN];
        let n = self.children.len();
        if n == 1 {
            return order;
        }
        let first = ((offset >> 17) % n as u64) as usize;
        let rotated = (0..n).map(|i| (first + i) % n);
        let fresh = rotated.clone().filter(|&c| !self.children[c].missed(birth));
        let stale = rotated.filter(|&c| self.children[c].missed(birth));
        for (slot, c) in order.iter_mut().zip(fresh.chain(stale)) {
            *slot = c;
        }
        order
    }

    /// `Some(epoch)` when every child vouches for its reads (see
    /// [`BlockDevice::read_epoch`]): each child's epoch in its own bits, so
    /// the mirror's moves when any child's does. A read may go to either
    /// child, so a cached block answers only for the child that served it
    /// (see `Zio::with_block`).
    pub fn read_epoch(&self) -> Option<u64> {
        match &self.children[..] {
            [only] => only.dev.read_epoch(),
            many => many.iter().enumerate().try_fold(0u64, |packed, (i, c)| {
                let epoch = c.dev.read_epoch()?;
                (epoch < 1 << EPOCH_BITS).then_some(packed | epoch << (EPOCH_BITS * i as u32))
            }),
        }
    }

    pub fn changes_since(&self, epoch: u64) -> Option<Vec<(u64, u64)>> {
        match &self.children[..] {
            [only] => only.dev.changes_since(epoch),
            many => {
                let mut changes = Vec::new();
                for (i, c) in many.iter().enumerate() {
                    let own = (epoch >> (EPOCH_BITS * i as u32)) & ((1 << EPOCH_BITS) - 1);
                    changes.extend(c.dev.changes_since(own)?);
                }
                Some(changes)
            }
        }
    }

    /// Charges child `c` for a read answered from the cache.
    pub fn charge_read(&mut self, c: usize, offset: u64, len: u64) {
        self.children[c].dev.charge_read(offset, len)
    }
}
