//! `dnode_phys_t` and the in-memory dnode with its tree of blocks.
//!
//! A dnode is 512 bytes: a header, `nblkptr` top-level block pointers, the
//! bonus buffer and optionally a spill pointer. `nblkptr` follows from the
//! bonus length (`1 + (320 - bonuslen) / 128`). Beneath the top pointers
//! hang indirect blocks of 128 pointers (indirect shift 14) down to the data
//! blocks; `nlevels` grows as blocks further out are written. The send stream
//! sees all of this (which pointers are holes at which level, `maxblkid`), so
//! the shape is ZFS's.
//!
//! In memory, the tree keeps indirect blocks it has read (they are small and
//! read often) and data blocks only while they are dirty: after a sync a data
//! block is just its block pointer again, and reading it goes to the device
//! and verifies its checksum.

use std::rc::Rc;

use crate::dmu::object_type;
use crate::error::{Errno, Error, Result, fail};
use crate::zio::{
    BLKPTR_SIZE, Blkptr, SPA_DVAS_PER_BP, SPA_MAXBLOCKSIZE, SPA_MINBLOCKSIZE, WriteProps, Zio,
    ZioChecksum, ZioCompress,
};

pub const DNODE_SHIFT: u32 = 9;
pub const DNODE_SIZE: usize = 1 << DNODE_SHIFT;
pub const DNODE_BLOCK_SHIFT: u32 = 14;
pub const DNODE_BLOCK_SIZE: usize = 1 << DNODE_BLOCK_SHIFT;
pub const DNODES_PER_BLOCK_SHIFT: u32 = DNODE_BLOCK_SHIFT - DNODE_SHIFT;
pub const DNODES_PER_BLOCK: u64 = 1 << DNODES_PER_BLOCK_SHIFT;
/// Bytes before the block pointers in a dnode (`DNODE_CORE_SIZE`).
pub const DNODE_CORE_SIZE: usize = 64;
pub const DN_MAX_NBLKPTR: usize = 3;
pub const DN_MAX_BONUSLEN: usize = DNODE_SIZE - DNODE_CORE_SIZE - BLKPTR_SIZE;
pub const DN_MAX_INDBLKSHIFT: u8 = 14;
pub const DN_MIN_INDBLKSHIFT: u8 = 10;
/// `DN_MAX_OBJECT_SHIFT`: object numbers are below 2^48.
pub const DN_MAX_OBJECT: u64 = 1 << 48;
/// Offset of the spill block pointer (`DN_SPILL_BLKPTR`).
pub const DN_SPILL_OFFSET: usize = DNODE_SIZE - BLKPTR_SIZE;

pub const DNODE_FLAG_USED_BYTES: u8 = 1 << 0;
pub const DNODE_FLAG_SPILL_BLKPTR: u8 = 1 << 2;

/// Top-level block pointers a dnode has room for with this bonus length.
pub fn nblkptr_for_bonus(bonustype: u8, bonuslen: usize) -> u8 {
    if u32::from(bonustype) == object_type::DMU_OT_SA {
        1
    } else {
        (1 + (DN_MAX_BONUSLEN - bonuslen.min(DN_MAX_BONUSLEN)) / BLKPTR_SIZE) as u8
    }
}

/// Whether a spill block pointer fits in a dnode beside `nblkptr` block
/// pointers and a bonus of `bonuslen` bytes: it takes the last 128 bytes of
/// the dnode, which neither may reach (ZFS adds spill blocks only to SA
/// objects, whose single block pointer leaves that room).
pub fn spill_fits(nblkptr: u8, bonuslen: usize) -> bool {
    DNODE_CORE_SIZE + usize::from(nblkptr) * BLKPTR_SIZE + bonuslen <= DN_SPILL_OFFSET
}

/// Whether a data block size is one the DMU accepts.
pub fn valid_blksz(blksz: u64) -> bool {
    (SPA_MINBLOCKSIZE..=SPA_MAXBLOCKSIZE).contains(&blksz) && blksz.is_multiple_of(SPA_MINBLOCKSIZE)
}

/// A node of a dnode's block tree.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// As on disk (or a hole): nothing loaded.
    Stored(Blkptr),
    /// An indirect block that has been read or created. Shared between
    /// copies of the tree (a forked pool's objsets) until one changes it.
    Indirect(Rc<Indirect>),
    /// A data block dirtied in the open txg.
    Data(Box<DataBlock>),
}

#[derive(Clone, Debug)]
pub(crate) struct Indirect {
    /// The block pointer it was read from (a hole for a new one).
    old: Blkptr,
    dirty: bool,
    children: Vec<Node>,
}

#[derive(Clone, Debug)]
pub(crate) struct DataBlock {
    old: Blkptr,
    data: Vec<u8>,
}

impl Node {
    const HOLE: Node = Node::Stored(Blkptr::HOLE);

    fn is_dirty(&self) -> bool {
        match self {
            Node::Stored(_) => false,
            Node::Indirect(ind) => ind.dirty,
            Node::Data(_) => true,
        }
    }

    /// The block pointer as of the last sync.
    fn synced_bp(&self) -> Blkptr {
        match self {
            Node::Stored(bp) => *bp,
            Node::Indirect(ind) => ind.old,
            Node::Data(d) => d.old,
        }
    }
}

/// What a dnode's tree needs from its objset to write blocks.
#[derive(Clone, Copy, Debug)]
pub struct WritePolicy {
    /// The objset's `checksum` property, resolved.
    pub os_checksum: ZioChecksum,
    /// The objset's `compression` property, resolved.
    pub os_compress: ZioCompress,
    /// `sha256` when the objset dedups, else `off`.
    pub os_dedup_checksum: ZioChecksum,
    /// The pool's [`crate::zio::Zio::mdcomp_disable`], as of the sync.
    pub mdcomp_disable: bool,
    /// The objset's `copies` property (`os_copies`); the MOS's is
    /// `spa_max_replication`.
    pub os_copies: u8,
}

impl Default for WritePolicy {
    fn default() -> Self {
        WritePolicy {
            os_checksum: ZioChecksum::Fletcher4,
            os_compress: ZioCompress::Off,
            os_dedup_checksum: ZioChecksum::Off,
            mdcomp_disable: false,
            os_copies: 1,
        }
    }
}

impl WritePolicy {
    /// `dmu_write_policy`: metadata (indirect blocks and metadata types) is
    /// always compressed with lzjb and checksummed with a strong function;
    /// data follows the object's settings, falling back to the objset's.
    pub fn props(
        &self,
        dn_type: u8,
        dn_checksum: u8,
        dn_compress: u8,
        level: u8,
        fill: u64,
    ) -> WriteProps {
        self.props_for(dn_type, dn_checksum, dn_compress, level, fill, false)
    }

    /// As [`WritePolicy::props`]; `spill` blocks are metadata whatever
    /// their type (`WP_SPILL`).
    pub fn props_for(
        &self,
        dn_type: u8,
        dn_checksum: u8,
        dn_compress: u8,
        level: u8,
        fill: u64,
        spill: bool,
    ) -> WriteProps {
        let metadata = spill || level > 0 || object_type::is_metadata(u32::from(dn_type));
        let (checksum, compress) = if metadata {
            let checksum = if self.os_checksum.fit_for_metadata() {
                self.os_checksum
            } else {
                ZioChecksum::Fletcher4
            };
            let compress = if self.mdcomp_disable {
                ZioCompress::Empty
            } else {
                ZioCompress::Lzjb
            };
            (checksum, compress)
        } else {
            let compress = ZioCompress::select(
                ZioCompress::from_u8(dn_compress).unwrap_or(ZioCompress::Inherit),
                self.os_compress,
            );
            let checksum = if self.os_dedup_checksum != ZioChecksum::Off {
                self.os_dedup_checksum
            } else {
                ZioChecksum::select(
                    ZioChecksum::from_u8(dn_checksum).unwrap_or(ZioChecksum::Inherit),
                    self.os_checksum,
                )
            };
            (checksum, compress)
        };
        WriteProps {
            object_type: dn_type,
            level,
            checksum,
            compress,
            fill,
            // Ditto blocks: metadata gets one copy more than data.
            copies: (self.os_copies + u8::from(metadata)).min(SPA_DVAS_PER_BP),
        }
    }
}

/// A dnode in memory: its header, bonus, spill and block tree.
#[derive(Clone, Debug)]
pub struct Dnode {
    pub object: u64,
    pub dn_type: u8,
    pub indblkshift: u8,
    pub nlevels: u8,
    pub nblkptr: u8,
    pub bonustype: u8,
    pub checksum: u8,
    pub compress: u8,
    pub flags: u8,
    pub datablksz: u32,
    pub maxblkid: u64,
    /// Bytes of blocks beneath this dnode (`dn_used`, as of the last sync).
    pub used: u64,
    pub bonus: Vec<u8>,
    top: Vec<Node>,
    spill: Node,
    /// Changed in the open txg.
    pub dirty: bool,
}

/// The fields of `dnode_phys_t` that describe an object, for callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub object: u64,
    pub dn_type: u8,
    pub bonustype: u8,
    pub bonuslen: usize,
    pub datablksz: u32,
    pub indblkshift: u8,
    pub nlevels: u8,
    pub nblkptr: u8,
    pub maxblkid: u64,
    pub checksum: u8,
    pub compress: u8,
    pub used: u64,
    pub has_spill: bool,
}

impl Dnode {
    /// `dnode_allocate`: a new object with no blocks.
    pub fn allocate(
        object: u64,
        dn_type: u8,
        blksz: u32,
        indblkshift: u8,
        bonustype: u8,
        bonuslen: usize,
    ) -> Dnode {
        let nblkptr = nblkptr_for_bonus(bonustype, bonuslen);
        Dnode {
            object,
            dn_type,
            indblkshift,
            nlevels: 1,
            nblkptr,
            bonustype,
            checksum: 0,
            compress: 0,
            flags: DNODE_FLAG_USED_BYTES,
            datablksz: blksz,
            maxblkid: 0,
            used: 0,
            bonus: vec![0; bonuslen],
            top: vec![Node::HOLE; usize::from(nblkptr)],
            spill: Node::HOLE,
            dirty: true,
        }
    }

    pub fn info(&self) -> ObjectInfo {
        ObjectInfo {
            object: self.object,
            dn_type: self.dn_type,
            bonustype: self.bonustype,
            bonuslen: self.bonus.len(),
            datablksz: self.datablksz,
            indblkshift: self.indblkshift,
            nlevels: self.nlevels,
            nblkptr: self.nblkptr,
            maxblkid: self.maxblkid,
            checksum: self.checksum,
            compress: self.compress,
            used: self.used,
            has_spill: self.flags & DNODE_FLAG_SPILL_BLKPTR != 0,
        }
    }

    /// A new number of top-level block pointers after a reallocation
    /// (`dn_next_nblkptr`): gained ones are holes; lost ones must already be
    /// holes (the caller freed the contents).
    pub fn set_nblkptr(&mut self, nblkptr: u8) {
        debug_assert!(
            self.top
                .iter()
                .skip(usize::from(nblkptr))
                .all(|n| n.synced_bp().is_hole() && !n.is_dirty()),
            "losing block pointers that are not holes"
        );
        self.top.resize(usize::from(nblkptr), Node::HOLE);
        self.nblkptr = nblkptr;
        self.dirty = true;
    }

    /// Block pointers per indirect block, as a shift.
    fn epbs(&self) -> u32 {
        u32::from(self.indblkshift) - crate::zio::blkptr::SPA_BLKPTRSHIFT
    }

    /// Whether the data block size is a power of two (`dn_datablkshift` != 0).
    pub fn is_power_of_two(&self) -> bool {
        self.datablksz.is_power_of_two()
    }

    /// Level-0 blocks the current levels can address.
    fn capacity(&self) -> u64 {
        let shift = self.epbs() * (u32::from(self.nlevels) - 1);
        if shift >= 64 {
            u64::MAX
        } else {
            u64::from(self.nblkptr).saturating_mul(1u64 << shift)
        }
    }

    /// The block pointers at the top of the tree (after a sync: on disk).
    pub fn top_bps(&self) -> Vec<Blkptr> {
        self.top.iter().map(Node::synced_bp).collect()
    }

    pub fn spill_bp(&self) -> Blkptr {
        self.spill.synced_bp()
    }

    /// Reads block `blkid`, `None` for a hole.
    pub fn read_block(&mut self, zio: &mut Zio, blkid: u64) -> Result<Option<Vec<u8>>> {
        self.with_block(zio, blkid, |data| data.map(<[u8]>::to_vec))
    }

    /// [`read_block`](Dnode::read_block) handing the block to `f` where it
    /// is (read, cached or dirty) rather than a copy of it: `None` for a
    /// hole.
    pub fn with_block<R>(
        &mut self,
        zio: &mut Zio,
        blkid: u64,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        if blkid >= self.capacity() {
            return Ok(f(None));
        }
        let epbs = self.epbs();
        let nlevels = self.nlevels;
        let blksz = self.datablksz as usize;
        let object = self.object;
        let top_idx = index_at(blkid, epbs, nlevels, nlevels - 1);
        let mut node = &mut self.top[top_idx];
        for level in (1..nlevels).rev() {
            let child = index_at(blkid, epbs, nlevels, level - 1);
            load_indirect(zio, node, epbs)?;
            match node {
                Node::Indirect(ind) => node = &mut Rc::make_mut(ind).children[child],
                _ => return Ok(f(None)),
            }
        }
        match node {
            Node::Data(d) => Ok(f(Some(&d.data))),
            Node::Stored(bp) if bp.is_hole() => Ok(f(None)),
            Node::Stored(bp) => zio
                .with_block(bp, |data| {
                    // Every data block of an object has its block size;
                    // readers slice it by that.
                    if data.len() != blksz {
                        return fail(
                            Errno::EIO,
                            format!(
                                "object {object} block {blkid}: {} bytes where its blocks are {blksz}",
                                data.len()
                            ),
                        );
                    }
                    Ok(f(Some(data)))
                })
                .map_err(dmu_error),
            // unreached: level 0 holds only Stored or Data nodes: load_indirect and grow_levels
            // make Indirect nodes only at level 1 or above, and nlevels never shrinks
            Node::Indirect(_) => fail(Errno::EIO, "indirect block found at level 0"),
        }
    }

    /// Adds levels until `blkid` is addressable (`dnode_increase_indirection`):
    /// the old top pointers move into a new indirect block under `blkptr[0]`.
    fn grow_levels(&mut self, blkid: u64) -> Result<()> {
        while blkid >= self.capacity() {
            if self.epbs() * u32::from(self.nlevels) >= 64 {
                // unreached: blkid is an offset divided by a block size of at least 512, so
                // below 2^55, and a tree whose epbs * nlevels reaches 64 already addresses at
                // least 2^57 blocks
                return fail(Errno::EFBIG, format!("block {blkid} is beyond any level"));
            }
            let mut children = vec![Node::HOLE; 1 << self.epbs()];
            let any = self
                .top
                .iter()
                .any(|n| !n.synced_bp().is_hole() || n.is_dirty());
            for (i, node) in self.top.drain(..).enumerate() {
                children[i] = node;
            }
            let ind = Indirect {
                old: Blkptr::HOLE,
                dirty: any,
                children,
            };
            self.top = vec![Node::HOLE; usize::from(self.nblkptr)];
            self.top[0] = if any {
                Node::Indirect(Rc::new(ind))
            } else {
                Node::HOLE
            };
            self.nlevels += 1;
            self.dirty = true;
        }
        Ok(())
    }

    /// The data of block `blkid`, dirtied in the open txg (created as zeros if
    /// it is a hole). `maxblkid` and the levels grow as needed.
    pub fn dirty_block(&mut self, zio: &mut Zio, blkid: u64) -> Result<&mut Vec<u8>> {
        self.dirty_block_impl(zio, blkid, None)
    }

    /// As [`Dnode::dirty_block`] for a caller that replaces the whole block
    /// (`dmu_buf_will_fill`) with `data`, of the block size: a block on
    /// disk is not read first, and no zeros are written only to be
    /// overwritten.
    pub fn fill_block(&mut self, zio: &mut Zio, blkid: u64, data: Vec<u8>) -> Result<()> {
        debug_assert_eq!(data.len(), self.datablksz as usize);
        self.dirty_block_impl(zio, blkid, Some(data)).map(drop)
    }

    fn dirty_block_impl(
        &mut self,
        zio: &mut Zio,
        blkid: u64,
        mut fill: Option<Vec<u8>>,
    ) -> Result<&mut Vec<u8>> {
        if blkid > 0 && !self.is_power_of_two() {
            // unreached: only a hand-made image (an object of a non-power-of-2 block size with a block
            // past 0) received into by the command line; the engine never writes such an object
            return fail(
                Errno::ENOTSUP,
                format!(
                    "object {} has a {}-byte block size, which allows only one block",
                    self.object, self.datablksz
                ),
            );
        }
        self.grow_levels(blkid)?;
        self.dirty = true;
        self.maxblkid = self.maxblkid.max(blkid);
        let epbs = self.epbs();
        let nlevels = self.nlevels;
        let blksz = self.datablksz as usize;
        let top_idx = index_at(blkid, epbs, nlevels, nlevels - 1);
        let mut node = &mut self.top[top_idx];
        for level in (1..nlevels).rev() {
            let child = index_at(blkid, epbs, nlevels, level - 1);
            load_indirect(zio, node, epbs)?;
            let Node::Indirect(ind) = node else {
                unreachable!("load_indirect leaves an indirect")
            };
            let ind = Rc::make_mut(ind);
            ind.dirty = true;
            node = &mut ind.children[child];
        }
        if let Node::Stored(bp) = *node {
            let data = match fill.take() {
                Some(data) => data,
                None if bp.is_hole() => vec![0; blksz],
                None => {
                    let mut data = read_verified(zio, &bp)?;
                    data.resize(blksz, 0);
                    data
                }
            };
            *node = Node::Data(Box::new(DataBlock { old: bp, data }));
        }
        match node {
            Node::Data(d) => {
                // Already dirty in this txg: the new contents replace it.
                if let Some(data) = fill {
                    d.data = data;
                }
                Ok(&mut d.data)
            }
            // unreached: the level-0 node is Data (a Stored one was made Data just above); only
            // load_indirect and grow_levels make Indirect nodes, always at level 1 or above
            _ => fail(Errno::EIO, "indirect block found at level 0"),
        }
    }

    /// Frees level-0 blocks `[first, last]`; every block pointer that goes
    /// away (data, and indirect blocks whose whole span is freed) is pushed
    /// onto `killed`. Partially covered blocks are the caller's business.
    pub fn free_blocks(
        &mut self,
        zio: &mut Zio,
        first: u64,
        last: u64,
        killed: &mut Vec<Blkptr>,
    ) -> Result<()> {
        if first > last || first >= self.capacity() {
            return Ok(());
        }
        let last = last.min(self.capacity() - 1);
        let epbs = self.epbs();
        let top_level = self.nlevels - 1;
        let span = span_blocks(epbs, top_level);
        let mut changed = false;
        for (i, node) in self.top.iter_mut().enumerate() {
            let start = (i as u64).saturating_mul(span);
            let end = start.saturating_add(span - 1);
            if end < first || start > last {
                continue;
            }
            changed |= free_node(zio, node, top_level, start, first, last, epbs, killed)?;
        }
        if changed {
            self.dirty = true;
        }
        Ok(())
    }

    /// Whether any block at or after `blkid` is not a hole (dirty included).
    pub fn has_blocks_from(&mut self, zio: &mut Zio, blkid: u64) -> Result<bool> {
        let mut found = false;
        self.visit_blocks(zio, &mut |b| {
            if b >= blkid {
                found = true;
            }
        })?;
        Ok(found)
    }

    /// Calls `f(blkid)` for every level-0 block that is not a hole, dirty
    /// ones included, in order.
    pub fn visit_blocks(&mut self, zio: &mut Zio, f: &mut dyn FnMut(u64)) -> Result<()> {
        let epbs = self.epbs();
        let top_level = self.nlevels - 1;
        let span = span_blocks(epbs, top_level);
        for (i, node) in self.top.iter_mut().enumerate() {
            visit_node(
                zio,
                node,
                top_level,
                (i as u64).saturating_mul(span),
                epbs,
                f,
            )?;
        }
        Ok(())
    }

    /// Changes the block size of an object that has at most block 0
    /// (`dnode_set_blksz`): block 0 keeps its data, cut or zero-filled.
    pub fn set_blocksize(&mut self, zio: &mut Zio, size: u32) -> Result<()> {
        if size == self.datablksz {
            return Ok(());
        }
        if !valid_blksz(u64::from(size)) {
            return fail(Errno::EINVAL, format!("invalid block size {size}"));
        }
        if self.maxblkid != 0 || self.has_blocks_from(zio, 1)? {
            return fail(
                Errno::ENOTSUP,
                format!(
                    "object {} has more than one block: its block size is fixed",
                    self.object
                ),
            );
        }
        let block0 = self.read_block(zio, 0)?;
        self.datablksz = size;
        if let Some(mut data) = block0 {
            data.resize(size as usize, 0);
            *self.dirty_block(zio, 0)? = data;
        }
        self.dirty = true;
        Ok(())
    }

    /// Writes every dirty block of the tree for `txg`, bottom-up, and kills
    /// the pointers they replace. Returns the bytes now beneath the dnode.
    pub fn sync(
        &mut self,
        zio: &mut Zio,
        txg: u64,
        policy: &WritePolicy,
        killed: &mut Vec<Blkptr>,
        born: &mut Vec<Blkptr>,
    ) -> Result<()> {
        let ctx = SyncCtx {
            txg,
            policy: *policy,
            dn_type: self.dn_type,
            dn_checksum: self.checksum,
            dn_compress: self.compress,
            epbs: self.epbs(),
            spill: false,
        };
        let top_level = self.nlevels - 1;
        for node in &mut self.top {
            sync_node(zio, node, top_level, &ctx, killed, born)?;
        }
        if self.spill.is_dirty() {
            let spill_ctx = SyncCtx {
                dn_type: object_type::DMU_OT_SA as u8,
                spill: true,
                ..ctx
            };
            sync_node(zio, &mut self.spill, 0, &spill_ctx, killed, born)?;
        }
        self.used = self
            .top
            .iter()
            .chain(std::iter::once(&self.spill))
            .map(|n| subtree_asize_hint(n.synced_bp()))
            .sum();
        Ok(())
    }

    /// The spill block's contents, if the object has one.
    pub fn spill(&mut self, zio: &mut Zio) -> Result<Option<Vec<u8>>> {
        match &self.spill {
            Node::Data(d) => Ok(Some(d.data.clone())),
            Node::Stored(bp) if bp.is_hole() => Ok(None),
            Node::Stored(bp) => read_verified(zio, &bp.clone()).map(Some),
            // unreached: the spill is only ever a hole, Stored (decode) or Data (set_spill); no
            // walk of the block tree reaches it, so load_indirect never makes it an Indirect
            Node::Indirect(_) => fail(Errno::EIO, "spill is not a data block"),
        }
    }

    /// Why a spill block of `len` bytes cannot be set, if it cannot.
    pub fn check_spill(&self, len: usize) -> Result<()> {
        if !valid_blksz(len as u64) {
            return fail(Errno::EINVAL, format!("invalid spill size {len}"));
        }
        if !spill_fits(self.nblkptr, self.bonus.len()) {
            return fail(
                Errno::EINVAL,
                format!(
                    "a {}-byte bonus beside {} block pointers leaves no room for a spill pointer",
                    self.bonus.len(),
                    self.nblkptr
                ),
            );
        }
        Ok(())
    }

    /// Sets (or with `None` removes) the spill block.
    pub fn set_spill(&mut self, data: Option<Vec<u8>>, killed: &mut Vec<Blkptr>) -> Result<()> {
        let old = self.spill.synced_bp();
        match data {
            Some(data) => {
                self.check_spill(data.len())?;
                self.spill = Node::Data(Box::new(DataBlock { old, data }));
                self.flags |= DNODE_FLAG_SPILL_BLKPTR;
            }
            None => {
                if !old.is_hole() {
                    killed.push(old);
                }
                self.spill = Node::HOLE;
                self.flags &= !DNODE_FLAG_SPILL_BLKPTR;
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Every block pointer in the tree (for freeing a whole object), reading
    /// indirect blocks as needed. Dirty blocks contribute their old pointer.
    pub fn kill_all(&mut self, zio: &mut Zio, killed: &mut Vec<Blkptr>) -> Result<()> {
        self.free_blocks(zio, 0, u64::MAX, killed)?;
        self.set_spill(None, killed)?;
        Ok(())
    }

    /// Encodes the dnode as `dnode_phys_t` (after its tree was synced).
    pub fn encode(&self, out: &mut [u8]) {
        let out = &mut out[..DNODE_SIZE];
        out.fill(0);
        out[0] = self.dn_type;
        out[1] = self.indblkshift;
        out[2] = self.nlevels;
        out[3] = self.nblkptr;
        out[4] = self.bonustype;
        out[5] = self.checksum;
        out[6] = self.compress;
        out[7] = self.flags;
        out[8..10].copy_from_slice(&((self.datablksz >> 9) as u16).to_le_bytes());
        out[10..12].copy_from_slice(&(self.bonus.len() as u16).to_le_bytes());
        out[16..24].copy_from_slice(&self.maxblkid.to_le_bytes());
        out[24..32].copy_from_slice(&self.used.to_le_bytes());
        for (i, node) in self.top.iter().enumerate() {
            let at = DNODE_CORE_SIZE + i * BLKPTR_SIZE;
            node.synced_bp().encode(&mut out[at..at + BLKPTR_SIZE]);
        }
        let bonus_at = DNODE_CORE_SIZE + usize::from(self.nblkptr) * BLKPTR_SIZE;
        out[bonus_at..bonus_at + self.bonus.len()].copy_from_slice(&self.bonus);
        if self.flags & DNODE_FLAG_SPILL_BLKPTR != 0 {
            self.spill
                .synced_bp()
                .encode(&mut out[DN_SPILL_OFFSET..DN_SPILL_OFFSET + BLKPTR_SIZE]);
        }
    }

    /// Decodes a `dnode_phys_t` read from disk; `None` for a free slot. A
    /// dnode whose header contradicts itself is corruption (EIO).
    pub fn decode(object: u64, buf: &[u8]) -> Result<Option<Dnode>> {
        let buf = &buf[..DNODE_SIZE];
        if buf[0] == 0 {
            return Ok(None);
        }
        let nblkptr = buf[3];
        let bonuslen = usize::from(u16::from_le_bytes([buf[10], buf[11]]));
        let datablksz = u32::from(u16::from_le_bytes([buf[8], buf[9]])) << 9;
        let indblkshift = buf[1];
        let nlevels = buf[2];
        let bad =
            |why: String| Error::new(Errno::EIO, format!("object {object}: corrupt dnode: {why}"));
        if nblkptr == 0 || usize::from(nblkptr) > DN_MAX_NBLKPTR {
            return Err(bad(format!("nblkptr {nblkptr}")));
        }
        let bonus_at = DNODE_CORE_SIZE + usize::from(nblkptr) * BLKPTR_SIZE;
        if bonus_at + bonuslen > DNODE_SIZE {
            return Err(bad(format!(
                "bonuslen {bonuslen} with {nblkptr} block pointers"
            )));
        }
        // An allocated dnode always has a block size; 0 would divide by
        // zero in every offset-to-block sum.
        if !valid_blksz(u64::from(datablksz)) {
            return Err(bad(format!("block size {datablksz}")));
        }
        if !(DN_MIN_INDBLKSHIFT..=DN_MAX_INDBLKSHIFT).contains(&indblkshift)
            || nlevels == 0
            || nlevels > 32
        {
            return Err(bad(format!("indblkshift {indblkshift} nlevels {nlevels}")));
        }
        let top = (0..usize::from(nblkptr))
            .map(|i| {
                let at = DNODE_CORE_SIZE + i * BLKPTR_SIZE;
                Node::Stored(Blkptr::decode(&buf[at..at + BLKPTR_SIZE]))
            })
            .collect();
        let flags = buf[7];
        let spill = if flags & DNODE_FLAG_SPILL_BLKPTR != 0 {
            Node::Stored(Blkptr::decode(&buf[DN_SPILL_OFFSET..]))
        } else {
            Node::HOLE
        };
        Ok(Some(Dnode {
            object,
            dn_type: buf[0],
            indblkshift,
            nlevels,
            nblkptr,
            bonustype: buf[4],
            checksum: buf[5],
            compress: buf[6],
            flags,
            datablksz,
            maxblkid: u64::from_le_bytes(buf[16..24].try_into().expect("8 bytes")),
            used: u64::from_le_bytes(buf[24..32].try_into().expect("8 bytes")),
            bonus: buf[bonus_at..bonus_at + bonuslen].to_vec(),
            top,
            spill,
            dirty: false,
        }))
    }
}

/// Level-0 blocks beneath one pointer at `level`.
fn span_blocks(epbs: u32, level: u8) -> u64 {
    let shift = epbs * u32::from(level);
    if shift >= 64 { u64::MAX } else { 1 << shift }
}

/// Reads a block, turning a checksum mismatch into EIO as the DMU reports it.
fn read_verified(zio: &mut Zio, bp: &Blkptr) -> Result<Vec<u8>> {
    zio.read_block(bp).map_err(dmu_error)
}

/// A checksum mismatch is EIO to the DMU's callers.
fn dmu_error(e: Error) -> Error {
    if e.errno() == Errno::ECKSUM {
        Error::new(Errno::EIO, e.reason().to_string())
    } else {
        e
    }
}

/// Index of `blkid`'s ancestor at `level` within its parent: an indirect
/// block's children, or at the top level the dnode's block pointers. A
/// tree deep enough for the shift to pass 64 bits (as a damaged dnode may
/// claim) has only index 0 on that path.
fn index_at(blkid: u64, epbs: u32, nlevels: u8, level: u8) -> usize {
    let shift = epbs * u32::from(level);
    let idx = if shift >= 64 { 0 } else { blkid >> shift };
    if level + 1 == nlevels {
        idx as usize
    } else {
        (idx & ((1 << epbs) - 1)) as usize
    }
}

/// Makes `node` a loaded indirect block (reading it, or creating an empty one
/// in place of a hole).
fn load_indirect(zio: &mut Zio, node: &mut Node, epbs: u32) -> Result<()> {
    if let Node::Stored(bp) = *node {
        let children = if bp.is_hole() {
            vec![Node::HOLE; 1 << epbs]
        } else {
            zio.with_block(&bp, |data| {
                if data.len() < BLKPTR_SIZE << epbs {
                    return fail(
                        Errno::EIO,
                        format!("indirect block of {} bytes", data.len()),
                    );
                }
                Ok(data
                    .chunks_exact(BLKPTR_SIZE)
                    .take(1 << epbs)
                    .map(|c| Node::Stored(Blkptr::decode(c)))
                    .collect())
            })
            .map_err(dmu_error)?
        };
        *node = Node::Indirect(Rc::new(Indirect {
            old: bp,
            dirty: false,
            children,
        }));
    }
    if let Node::Data(_) = node {
        // unreached: load_indirect runs only on nodes at level 1 or above (free_node frees a
        // level-0 node whole), and Data nodes exist only at level 0 or as the spill
        return fail(Errno::EIO, "data block found above level 0");
    }
    Ok(())
}

/// Frees the level-0 range `[first, last]` beneath `node` (which covers
/// blocks from `start`). Returns whether anything changed.
#[allow(clippy::too_many_arguments)]
fn free_node(
    zio: &mut Zio,
    node: &mut Node,
    level: u8,
    start: u64,
    first: u64,
    last: u64,
    epbs: u32,
    killed: &mut Vec<Blkptr>,
) -> Result<bool> {
    let span = span_blocks(epbs, level);
    let end = start.saturating_add(span - 1);
    if let Node::Stored(bp) = node
        && bp.is_hole()
    {
        return Ok(false);
    }
    if first <= start && end <= last {
        // The whole subtree goes.
        kill_subtree(zio, node, level, epbs, killed)?;
        *node = Node::HOLE;
        return Ok(true);
    }
    load_indirect(zio, node, epbs)?;
    let Node::Indirect(ind) = node else {
        return Ok(false);
    };
    let ind = Rc::make_mut(ind);
    let child_span = span_blocks(epbs, level - 1);
    let mut changed = false;
    for (i, child) in ind.children.iter_mut().enumerate() {
        let cstart = start.saturating_add((i as u64).saturating_mul(child_span));
        let cend = cstart.saturating_add(child_span - 1);
        if cend < first || cstart > last {
            continue;
        }
        changed |= free_node(zio, child, level - 1, cstart, first, last, epbs, killed)?;
    }
    if changed {
        ind.dirty = true;
    }
    Ok(changed)
}

/// Pushes every synced block pointer beneath (and including) `node`.
fn kill_subtree(
    zio: &mut Zio,
    node: &mut Node,
    level: u8,
    epbs: u32,
    killed: &mut Vec<Blkptr>,
) -> Result<()> {
    let old = node.synced_bp();
    if level > 0 {
        if !matches!(node, Node::Stored(bp) if bp.is_hole()) {
            load_indirect(zio, node, epbs)?;
        }
        if let Node::Indirect(ind) = node {
            for child in &mut Rc::make_mut(ind).children {
                kill_subtree(zio, child, level - 1, epbs, killed)?;
            }
        }
    }
    if !old.is_hole() {
        killed.push(old);
    }
    Ok(())
}

fn visit_node(
    zio: &mut Zio,
    node: &mut Node,
    level: u8,
    start: u64,
    epbs: u32,
    f: &mut dyn FnMut(u64),
) -> Result<()> {
    match node {
        Node::Stored(bp) if bp.is_hole() => Ok(()),
        Node::Data(_) => {
            f(start);
            Ok(())
        }
        Node::Stored(_) if level == 0 => {
            f(start);
            Ok(())
        }
        _ => {
            load_indirect(zio, node, epbs)?;
            let Node::Indirect(ind) = node else {
                return Ok(());
            };
            let child_span = span_blocks(epbs, level - 1);
            for (i, child) in Rc::make_mut(ind).children.iter_mut().enumerate() {
                visit_node(
                    zio,
                    child,
                    level - 1,
                    start.saturating_add((i as u64).saturating_mul(child_span)),
                    epbs,
                    f,
                )?;
            }
            Ok(())
        }
    }
}

struct SyncCtx {
    txg: u64,
    policy: WritePolicy,
    dn_type: u8,
    dn_checksum: u8,
    dn_compress: u8,
    epbs: u32,
    spill: bool,
}

fn sync_node(
    zio: &mut Zio,
    node: &mut Node,
    level: u8,
    ctx: &SyncCtx,
    killed: &mut Vec<Blkptr>,
    born: &mut Vec<Blkptr>,
) -> Result<()> {
    match node {
        Node::Stored(_) => Ok(()),
        Node::Indirect(ind) if !ind.dirty => Ok(()),
        Node::Indirect(ind) => {
            let ind = Rc::make_mut(ind);
            let mut block = vec![0u8; BLKPTR_SIZE << ctx.epbs];
            let mut fill = 0;
            for (child, out) in ind
                .children
                .iter_mut()
                .zip(block.chunks_exact_mut(BLKPTR_SIZE))
            {
                // Most children are as stored (holes, mostly): nothing to
                // write beneath them, and an empty pointer is the zeros the
                // block starts as.
                if let Node::Stored(bp) = child {
                    if bp.birth != 0 || *bp != Blkptr::HOLE {
                        fill += bp.fill;
                        bp.encode(out);
                    }
                    continue;
                }
                sync_node(zio, child, level - 1, ctx, killed, born)?;
                let bp = child.synced_bp();
                fill += bp.fill;
                bp.encode(out);
            }
            let props =
                ctx.policy
                    .props(ctx.dn_type, ctx.dn_checksum, ctx.dn_compress, level, fill);
            let bp = zio.write_block(ctx.txg, &block, &props)?;
            if !ind.old.is_hole() {
                killed.push(ind.old);
            }
            if !bp.is_hole() {
                born.push(bp);
            }
            ind.old = bp;
            ind.dirty = false;
            Ok(())
        }
        Node::Data(d) => {
            let props = ctx.policy.props_for(
                ctx.dn_type,
                ctx.dn_checksum,
                ctx.dn_compress,
                level,
                1,
                ctx.spill,
            );
            let bp = zio.write_block(ctx.txg, &d.data, &props)?;
            if !d.old.is_hole() {
                killed.push(d.old);
            }
            if !bp.is_hole() {
                born.push(bp);
            }
            *node = Node::Stored(bp);
            Ok(())
        }
    }
}

/// `dn_used` is kept as the allocated size of the top pointers' subtrees as
/// far as the top pointers know it; zsim keeps exact space in the DSL.
fn subtree_asize_hint(bp: Blkptr) -> u64 {
    if bp.is_hole() { 0 } else { bp.asize() }
}
