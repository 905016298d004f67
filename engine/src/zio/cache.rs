//! The block pointers that blocks leading further down (indirect, objset
//! and dnode blocks) hold, kept by the zio for walks that go over the same
//! trees again: the check walks every block, then each dataset's space, and
//! reads each block once.
//!
//! It lives here, not with the walks, because what makes an entry stale is
//! a write, and the zio sees every write: [`Zio::write_block`] drops the
//! cache. An entry also answers only for the very block pointer it was read
//! from (same DVA, birth and checksum).
//!
//! [`Zio::write_block`]: super::Zio::write_block

use std::collections::{BTreeMap, HashMap};

use super::{Blkptr, SPA_MAXBLOCKSIZE};

#[derive(Debug, Default)]
pub(crate) struct BlkptrCache {
    blocks: HashMap<u64, (Blkptr, Vec<Blkptr>)>,
    /// Block pointers held, against [`BlkptrCache::LIMIT`].
    held: usize,
}

impl BlkptrCache {
    /// At most this many block pointers (128 bytes each, 32 MiB) are kept;
    /// blocks beyond are read again as before.
    const LIMIT: usize = 1 << 18;

    /// The non-hole block pointers `bp`'s block holds, in order, if cached.
    pub(crate) fn children(&self, bp: &Blkptr) -> Option<&[Blkptr]> {
        match self.blocks.get(&bp.dva[0].offset()) {
            Some((cached, children)) if cached == bp => Some(children),
            _ => None,
        }
    }

    /// Keeps the block pointers `bp`'s block holds, unless the cache is full.
    pub(crate) fn insert(&mut self, bp: &Blkptr, children: &[Blkptr]) {
        // Holes lead nowhere: walks skip them.
        let children: Vec<Blkptr> = children.iter().filter(|c| !c.is_hole()).copied().collect();
        if self.held + children.len() <= Self::LIMIT {
            self.held += children.len();
            self.blocks.insert(bp.dva[0].offset(), (*bp, children));
        }
    }
}

/// Blocks read and verified, decompressed, kept while the device vouches
/// that reading them again would give the same bytes (see
/// [`BlockDevice::read_epoch`]). The simulator's oracle walks a pool many
/// times over between two changes (the import, the check, one comparison
/// per candidate state); this spares it the reads, checksums and
/// decompressions, and nothing else: a read the device could fail, or the
/// media changed under, never comes from here.
///
/// [`BlockDevice::read_epoch`]: crate::vdev::BlockDevice::read_epoch
#[derive(Debug, Default)]
pub struct ReadCache {
    /// The device's epoch the entries were read in.
    epoch: u64,
    /// By DVA offset: the block pointer read, the mirror child that
    /// served it (0 on a plain disk) and the logical contents.
    blocks: BTreeMap<u64, (Blkptr, usize, Vec<u8>)>,
    /// Bytes of contents held, against [`ReadCache::LIMIT`].
    held: usize,
}

impl ReadCache {
    /// At most this many bytes of contents are kept; blocks beyond are read
    /// from the device as before.
    const LIMIT: usize = 32 << 20;

    /// Moves on to the device's epoch `epoch`: forgets the blocks over
    /// what changed since the entries' epoch (`changes`, from
    /// [`BlockDevice::changes_since`]), or everything when that is not
    /// known.
    ///
    /// [`BlockDevice::changes_since`]: crate::vdev::BlockDevice::changes_since
    pub(crate) fn enter(
        &mut self,
        epoch: u64,
        changes: impl FnOnce(u64) -> Option<Vec<(u64, u64)>>,
    ) {
        if epoch == self.epoch {
            return;
        }
        match changes(self.epoch) {
            Some(ranges) => {
                for (offset, len) in ranges {
                    self.overwrite(offset, len);
                }
            }
            None => {
                self.blocks.clear();
                self.held = 0;
            }
        }
        self.epoch = epoch;
    }

    /// The contents of `bp`'s block, if read before from this very block
    /// pointer (same DVA, birth and checksum) on mirror child `child`.
    pub(crate) fn get(&self, bp: &Blkptr, child: usize) -> Option<&[u8]> {
        match self.blocks.get(&bp.dva[0].offset()) {
            Some((cached, from, data)) if cached == bp && *from == child => Some(data),
            _ => None,
        }
    }

    /// Keeps `bp`'s contents, unless the cache is full (or the block is
    /// larger than a block may be, which [`ReadCache::overwrite`] would not
    /// find): then gives them back.
    pub(crate) fn insert(&mut self, bp: &Blkptr, child: usize, data: Vec<u8>) -> Option<Vec<u8>> {
        if self.held + data.len() > Self::LIMIT || bp.dva[0].asize() > SPA_MAXBLOCKSIZE {
            return Some(data);
        }
        self.held += data.len();
        if let Some((_, _, old)) = self.blocks.insert(bp.dva[0].offset(), (*bp, child, data)) {
            self.held -= old.len();
        }
        None
    }

    /// Drops every block that overlaps `len` bytes at `offset`, which are
    /// about to be written: a block pointer that still names them (a block
    /// freed too early) must find what the device holds.
    pub(crate) fn overwrite(&mut self, offset: u64, len: u64) {
        let first = offset.saturating_sub(SPA_MAXBLOCKSIZE);
        let end = offset.saturating_add(len);
        let stale: Vec<u64> = self
            .blocks
            .range(first..end)
            .filter(|(start, (bp, _, _))| *start + bp.dva[0].asize() > offset)
            .map(|(start, _)| *start)
            .collect();
        for start in stale {
            if let Some((_, _, data)) = self.blocks.remove(&start) {
                self.held -= data.len();
            }
        }
    }
}
