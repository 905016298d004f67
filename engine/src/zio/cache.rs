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

use std::collections::HashMap;

use super::Blkptr;

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
