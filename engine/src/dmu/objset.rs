//! Objsets: a meta-dnode whose data blocks are dnode blocks, and the objects
//! those dnodes describe (`dmu_objset.c`, `dmu_object.c`).
//!
//! The meta-dnode has three top-level pointers and as many levels as it
//! takes to address `DN_MAX_OBJECT` dnodes (seven), exactly as ZFS sizes it:
//! its holes are what a send stream reports as FREEOBJECTS spans. All of an
//! open objset's dnodes are decoded in memory; a sync re-encodes the dnode
//! blocks that hold changed dnodes and writes the objset block last.

use std::collections::{BTreeMap, BTreeSet};

use super::dnode::{
    DN_MAX_BONUSLEN, DN_MAX_INDBLKSHIFT, DN_MAX_OBJECT, DNODE_BLOCK_SIZE, DNODE_SIZE,
    DNODES_PER_BLOCK, DNODES_PER_BLOCK_SHIFT, Dnode, ObjectInfo, WritePolicy, valid_blksz,
};
use crate::dmu::object_type;
use crate::error::{Errno, Error, Result, fail};
use crate::zio::{Blkptr, SPA_DVAS_PER_BP, Zio};

/// `dmu_objset_type_t`.
pub const DMU_OST_NONE: u64 = 0;
pub const DMU_OST_META: u64 = 1;
pub const DMU_OST_ZFS: u64 = 2;
pub const DMU_OST_ZVOL: u64 = 3;
pub const DMU_OST_OTHER: u64 = 4;
pub const DMU_OST_NUMTYPES: u64 = 6;

/// `OBJSET_OLD_PHYS_SIZE`: the meta-dnode, the ZIL header, type and flags.
pub const OBJSET_PHYS_SIZE: usize = 1024;
const OS_TYPE_OFFSET: usize = DNODE_SIZE + 192;

/// `DMU_OBJECT_END`: a length that reaches the end of the object.
pub const DMU_OBJECT_END: u64 = u64::MAX;

/// What a sync of an objset produced.
#[derive(Debug, Default)]
pub struct SyncOutput {
    /// The new objset block pointer.
    pub bp: Blkptr,
    /// Block pointers that are no longer referenced by this objset.
    pub killed: Vec<Blkptr>,
    /// Block pointers written in this txg.
    pub born: Vec<Blkptr>,
}

#[derive(Clone, Debug)]
pub struct Objset {
    pub os_type: u64,
    meta: Dnode,
    objects: BTreeMap<u64, Dnode>,
    dirty_dnode_blocks: BTreeSet<u64>,
    killed: Vec<Blkptr>,
    obj_next: u64,
    pub policy: WritePolicy,
    /// The objset block as last synced (a hole for a new objset).
    pub bp: Blkptr,
    dirty: bool,
}

impl Objset {
    /// `dmu_objset_create_impl`: an empty objset.
    pub fn create(os_type: u64) -> Objset {
        let mut meta = Dnode::allocate(
            0,
            object_type::DMU_OT_DNODE as u8,
            DNODE_BLOCK_SIZE as u32,
            DN_MAX_INDBLKSHIFT,
            0,
            0,
        );
        // Enough levels for DN_MAX_OBJECT dnodes, as ZFS computes them.
        let mut levels = 1u32;
        while (u64::from(meta.nblkptr)
            << (DNODES_PER_BLOCK_SHIFT + (levels - 1) * (u32::from(DN_MAX_INDBLKSHIFT) - 7)))
            < DN_MAX_OBJECT
        {
            levels += 1;
        }
        meta.nlevels = levels as u8;
        Objset {
            os_type,
            meta,
            objects: BTreeMap::new(),
            dirty_dnode_blocks: BTreeSet::new(),
            killed: Vec::new(),
            obj_next: 1,
            policy: WritePolicy::default(),
            bp: Blkptr::HOLE,
            dirty: true,
        }
    }

    /// Opens the objset a block pointer points at, decoding every dnode.
    pub fn open(zio: &mut Zio, bp: &Blkptr) -> Result<Objset> {
        if bp.is_hole() {
            return fail(Errno::EIO, "objset block pointer is a hole");
        }
        let block = zio
            .read_block(bp)
            .map_err(|e| e.context("reading an objset block"))?;
        if block.len() < OBJSET_PHYS_SIZE {
            return fail(Errno::EIO, format!("objset block of {} bytes", block.len()));
        }
        let mut meta = Dnode::decode(0, &block[..DNODE_SIZE])?
            .ok_or_else(|| Error::new(Errno::EIO, "objset without a meta-dnode"))?;
        if u32::from(meta.dn_type) != object_type::DMU_OT_DNODE
            || meta.datablksz as usize != DNODE_BLOCK_SIZE
        {
            return fail(Errno::EIO, "corrupt meta-dnode");
        }
        let os_type = u64::from_le_bytes(
            block[OS_TYPE_OFFSET..OS_TYPE_OFFSET + 8]
                .try_into()
                .expect("8 bytes"),
        );
        let mut blkids = Vec::new();
        meta.visit_blocks(zio, &mut |blkid| blkids.push(blkid))?;
        let mut objects = BTreeMap::new();
        for blkid in blkids {
            let Some(data) = meta.read_block(zio, blkid)? else {
                continue;
            };
            for (i, slot) in data.chunks_exact(DNODE_SIZE).enumerate() {
                let object = (blkid << DNODES_PER_BLOCK_SHIFT) + i as u64;
                if object == 0 {
                    continue;
                }
                if let Some(dn) = Dnode::decode(object, slot)? {
                    objects.insert(object, dn);
                }
            }
        }
        Ok(Objset {
            os_type,
            meta,
            objects,
            dirty_dnode_blocks: BTreeSet::new(),
            killed: Vec::new(),
            obj_next: 1,
            policy: WritePolicy::default(),
            bp: *bp,
            dirty: false,
        })
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// This objset as [`Objset::open`] of its block would give it: the
    /// objset must have nothing unsynced. What differs from an open is only
    /// what was already read (indirect blocks in memory, shared with this
    /// one) and the state an open starts afresh (allocation cursor, write
    /// policy).
    pub fn reopened(&self) -> Objset {
        debug_assert!(
            !self.dirty && self.killed.is_empty() && self.dirty_dnode_blocks.is_empty(),
            "reopening an objset with unsynced changes"
        );
        Objset {
            obj_next: 1,
            policy: WritePolicy::default(),
            ..self.clone()
        }
    }

    /// Allocated object numbers, in order.
    pub fn objects(&self) -> impl Iterator<Item = u64> + '_ {
        self.objects.keys().copied()
    }

    /// The meta-dnode (object 0), for traversal.
    pub fn meta_dnode(&mut self) -> &mut Dnode {
        &mut self.meta
    }

    pub fn dnode(&self, object: u64) -> Result<&Dnode> {
        self.objects
            .get(&object)
            .ok_or_else(|| not_allocated(object))
    }

    /// The dnode of an allocated object, for changing it: the objset and
    /// the object's dnode block are dirty from here on, so a call that may
    /// still refuse checks first ([`Objset::dnode`]); a refused call must
    /// leave the dataset unmodified, as in ZFS.
    pub fn dnode_mut(&mut self, object: u64) -> Result<&mut Dnode> {
        let dn = self.objects.get_mut(&object).ok_or_else(|| {
            Error::new(Errno::ENOENT, format!("object {object} is not allocated"))
        })?;
        self.dirty = true;
        self.dirty_dnode_blocks
            .insert(object >> DNODES_PER_BLOCK_SHIFT);
        Ok(dn)
    }

    /// The dnode of an allocated object, to walk its blocks (not to change it).
    pub fn dnode_mut_readonly(&mut self, object: u64) -> Result<&mut Dnode> {
        self.objects
            .get_mut(&object)
            .ok_or_else(|| not_allocated(object))
    }

    /// `dmu_object_info`.
    pub fn object_info(&self, object: u64) -> Result<ObjectInfo> {
        self.dnode(object).map(Dnode::info)
    }

    fn check_new_object(dn_type: u8, blksz: u32, bonustype: u8, bonuslen: usize) -> Result<()> {
        if dn_type == 0 || !object_type::is_valid(u32::from(dn_type)) {
            return fail(Errno::EINVAL, format!("invalid object type {dn_type}"));
        }
        if !object_type::is_valid(u32::from(bonustype)) {
            return fail(Errno::EINVAL, format!("invalid bonus type {bonustype}"));
        }
        if !valid_blksz(u64::from(blksz)) {
            return fail(Errno::EINVAL, format!("invalid block size {blksz}"));
        }
        if bonuslen > DN_MAX_BONUSLEN {
            return fail(
                Errno::EINVAL,
                format!("bonus length {bonuslen} exceeds {DN_MAX_BONUSLEN}"),
            );
        }
        Ok(())
    }

    /// `dmu_object_alloc`: the next free object number from where the last
    /// allocation left off; numbers freed behind it wait for the objset to be
    /// reopened, as in ZFS.
    pub fn object_alloc(
        &mut self,
        dn_type: u8,
        blksz: u32,
        bonustype: u8,
        bonuslen: usize,
    ) -> Result<u64> {
        Self::check_new_object(dn_type, blksz, bonustype, bonuslen)?;
        let mut object = self.obj_next.max(1);
        while self.objects.contains_key(&object) {
            object += 1;
        }
        if object >= DN_MAX_OBJECT {
            // unreached: obj_next starts at 1 and the scan steps only over allocated objects, so
            // reaching 2^48 would take 2^48 objects in memory first
            return fail(Errno::ENOSPC, "no free object numbers");
        }
        self.insert(Dnode::allocate(
            object,
            dn_type,
            blksz,
            DN_MAX_INDBLKSHIFT,
            bonustype,
            bonuslen,
        ));
        self.obj_next = object + 1;
        Ok(object)
    }

    /// `dmu_object_claim`: allocate a given object number.
    pub fn object_claim(
        &mut self,
        object: u64,
        dn_type: u8,
        blksz: u32,
        bonustype: u8,
        bonuslen: usize,
    ) -> Result<()> {
        // Object 0 is the meta-dnode: `dmu_object_claim` says EBADF before
        // `dnode_hold_impl` says EINVAL for numbers out of range.
        if object == 0 {
            return fail(Errno::EBADF, "object 0 is the meta-dnode");
        }
        if object >= DN_MAX_OBJECT {
            return fail(
                Errno::EINVAL,
                format!("object number {object} out of range"),
            );
        }
        Self::check_new_object(dn_type, blksz, bonustype, bonuslen)?;
        if self.objects.contains_key(&object) {
            return fail(
                Errno::EEXIST,
                format!("object {object} is already allocated"),
            );
        }
        self.insert(Dnode::allocate(
            object,
            dn_type,
            blksz,
            DN_MAX_INDBLKSHIFT,
            bonustype,
            bonuslen,
        ));
        Ok(())
    }

    /// `dmu_object_reclaim`: the same number as a new object instance. A
    /// no-op when nothing changes; the contents are freed when the block size
    /// changes or block pointers are lost to a longer bonus.
    pub fn object_reclaim(
        &mut self,
        zio: &mut Zio,
        object: u64,
        dn_type: u8,
        blksz: u32,
        bonustype: u8,
        bonuslen: usize,
    ) -> Result<()> {
        if object == 0 {
            return fail(Errno::EBADF, "object 0 is the meta-dnode");
        }
        Self::check_new_object(dn_type, blksz, bonustype, bonuslen)?;
        let dn = self.dnode(object)?;
        if dn.dn_type == dn_type
            && dn.datablksz == blksz
            && dn.bonustype == bonustype
            && dn.bonus.len() == bonuslen
        {
            return Ok(());
        }
        let nblkptr = super::dnode::nblkptr_for_bonus(bonustype, bonuslen);
        if dn.nblkptr > nblkptr || dn.datablksz != blksz {
            self.free_range(zio, object, 0, DMU_OBJECT_END)?;
        }
        let mut killed = Vec::new();
        let dn = self.dnode_mut(object)?;
        // dnode_reallocate: the new shape; the tree (now empty, or kept when
        // only the type or a shorter bonus changes) stays.
        if dn.datablksz != blksz {
            dn.maxblkid = 0;
            dn.datablksz = blksz;
        }
        dn.dn_type = dn_type;
        dn.bonustype = bonustype;
        dn.bonus = vec![0; bonuslen];
        if nblkptr != dn.nblkptr {
            dn.set_nblkptr(nblkptr);
        }
        if dn.flags & super::dnode::DNODE_FLAG_SPILL_BLKPTR != 0
            && !super::dnode::spill_fits(nblkptr, bonuslen)
        {
            dn.set_spill(None, &mut killed)?;
        }
        dn.dirty = true;
        self.killed.extend(killed);
        Ok(())
    }

    fn insert(&mut self, dn: Dnode) {
        self.dirty = true;
        self.dirty_dnode_blocks
            .insert(dn.object >> DNODES_PER_BLOCK_SHIFT);
        self.objects.insert(dn.object, dn);
    }

    /// `dmu_object_free`: frees an object and every block it has.
    pub fn object_free(&mut self, zio: &mut Zio, object: u64) -> Result<()> {
        let mut killed = Vec::new();
        self.dnode_mut(object)?.kill_all(zio, &mut killed)?;
        self.objects.remove(&object);
        self.killed.extend(killed);
        Ok(())
    }

    /// `dmu_write`.
    pub fn write(&mut self, zio: &mut Zio, object: u64, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| Error::new(Errno::EINVAL, "write past the end of the address space"))?;
        let dn = self.dnode(object)?;
        let blksz = u64::from(dn.datablksz);
        if !dn.is_power_of_two() && end > blksz {
            return fail(
                Errno::ENOTSUP,
                format!("object {object} has one {blksz}-byte block; cannot write up to {end}"),
            );
        }
        let dn = self.dnode_mut(object)?;
        let mut at = offset;
        while at < end {
            let blkid = at / blksz;
            let in_block = (at % blksz) as usize;
            let n = ((blksz - at % blksz).min(end - at)) as usize;
            let src = &data[(at - offset) as usize..(at - offset) as usize + n];
            // A block written whole is not read first (`dmu_buf_will_fill`).
            if n as u64 == blksz {
                dn.fill_block(zio, blkid, src.to_vec())?;
            } else {
                dn.dirty_block(zio, blkid)?[in_block..in_block + n].copy_from_slice(src);
            }
            at += n as u64;
        }
        Ok(())
    }

    /// `dmu_read`: holes read as zeros.
    pub fn read(&mut self, zio: &mut Zio, object: u64, offset: u64, len: u64) -> Result<Vec<u8>> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::new(Errno::EINVAL, "read past the end of the address space"))?;
        // unreached: every caller resolves the object first (object_info, dnode or the list of
        // allocated objects), and nothing frees it before the read
        let dn = self.objects.get_mut(&object).ok_or_else(|| {
            Error::new(Errno::ENOENT, format!("object {object} is not allocated"))
        })?;
        let blksz = u64::from(dn.datablksz);
        let mut out = Vec::with_capacity(len.min(1 << 30) as usize);
        let mut at = offset;
        while at < end {
            let blkid = at / blksz;
            let in_block = (at % blksz) as usize;
            let n = ((blksz - at % blksz).min(end - at)) as usize;
            // Copied once, from where the block is.
            dn.with_block(zio, blkid, |block| match block {
                Some(block) => out.extend_from_slice(&block[in_block..in_block + n]),
                None => out.resize(out.len() + n, 0),
            })?;
            at += n as u64;
        }
        Ok(out)
    }

    /// Block `blkid` of `object` handed to `f` where it is, not copied
    /// (`None` for a hole, which reads as zeros): for a caller that only
    /// looks at it, as a comparison does.
    pub fn with_block<R>(
        &mut self,
        zio: &mut Zio,
        object: u64,
        blkid: u64,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        self.dnode_mut_readonly(object)?.with_block(zio, blkid, f)
    }

    /// `dmu_free_long_range`: frees `[offset, offset + len)`; a length of
    /// [`DMU_OBJECT_END`] also truncates `maxblkid`. Blocks only partly in
    /// the range are zeroed in the range.
    pub fn free_range(&mut self, zio: &mut Zio, object: u64, offset: u64, len: u64) -> Result<()> {
        let trunc = len == DMU_OBJECT_END || offset.checked_add(len).is_none();
        let end = if trunc { u64::MAX } else { offset + len };
        let mut killed = Vec::new();
        let dn = self.dnode_mut(object)?;
        let blksz = u64::from(dn.datablksz);
        if end <= offset {
            return Ok(());
        }
        // A non-power-of-two object has exactly one block: zero part of it,
        // or free it whole.
        let first_whole = offset.div_ceil(blksz);
        if !offset.is_multiple_of(blksz) {
            let blkid = offset / blksz;
            let stop = end.min(blkid.saturating_add(1).saturating_mul(blksz));
            if dn.read_block(zio, blkid)?.is_some() {
                let block = dn.dirty_block(zio, blkid)?;
                block[(offset % blksz) as usize..(stop - blkid * blksz) as usize].fill(0);
            }
        }
        let end_block = end / blksz;
        if !trunc
            && end % blksz != 0
            && end_block >= first_whole
            && dn.read_block(zio, end_block)?.is_some()
        {
            let block = dn.dirty_block(zio, end_block)?;
            block[..(end % blksz) as usize].fill(0);
        }
        let last_whole = if trunc {
            Some(u64::MAX)
        } else {
            end_block.checked_sub(1)
        };
        if let Some(last) = last_whole
            && last >= first_whole
        {
            dn.free_blocks(zio, first_whole, last, &mut killed)?;
        }
        if trunc {
            // Only ever lowered, as `dnode_free_range` does: raised, an
            // object of one level would claim blocks it cannot address, and
            // an incremental stream would free only past that end.
            if dn.maxblkid >= first_whole {
                dn.maxblkid = first_whole.saturating_sub(1);
            }
            dn.dirty = true;
        }
        self.killed.extend(killed);
        Ok(())
    }

    pub fn bonus(&self, object: u64) -> Result<&[u8]> {
        Ok(&self.dnode(object)?.bonus)
    }

    /// Replaces the bonus buffer's contents (its length is the object's
    /// bonus length: `dmu_set_bonus` changes that).
    pub fn set_bonus(&mut self, object: u64, data: &[u8]) -> Result<()> {
        let dn = self.dnode_mut(object)?;
        let n = data.len().min(dn.bonus.len());
        dn.bonus[..n].copy_from_slice(&data[..n]);
        dn.bonus[n..].fill(0);
        Ok(())
    }

    /// `dmu_set_bonus`: a new bonus length, within what the dnode's block
    /// pointers leave room for.
    pub fn set_bonuslen(&mut self, object: u64, bonuslen: usize) -> Result<()> {
        let dn = self.dnode(object)?;
        let room = DN_MAX_BONUSLEN - (usize::from(dn.nblkptr) - 1) * 128;
        if bonuslen > room {
            return fail(
                Errno::EINVAL,
                format!(
                    "bonus length {bonuslen} does not fit beside {} block pointers",
                    dn.nblkptr
                ),
            );
        }
        self.dnode_mut(object)?.bonus.resize(bonuslen, 0);
        Ok(())
    }

    pub fn spill(&mut self, zio: &mut Zio, object: u64) -> Result<Option<Vec<u8>>> {
        self.objects
            .get_mut(&object)
            .ok_or_else(|| not_allocated(object))?
            .spill(zio)
    }

    pub fn set_spill(&mut self, object: u64, data: Option<Vec<u8>>) -> Result<()> {
        let mut killed = Vec::new();
        if let Some(data) = &data {
            self.dnode(object)?.check_spill(data.len())?;
        }
        self.dnode_mut(object)?.set_spill(data, &mut killed)?;
        self.killed.extend(killed);
        Ok(())
    }

    /// `dmu_object_set_checksum`.
    pub fn set_checksum(&mut self, object: u64, checksum: u8) -> Result<()> {
        self.dnode_mut(object)?.checksum = checksum;
        Ok(())
    }

    /// `dmu_object_set_compress`.
    pub fn set_compress(&mut self, object: u64, compress: u8) -> Result<()> {
        self.dnode_mut(object)?.compress = compress;
        Ok(())
    }

    /// `dmu_object_set_blocksize`.
    pub fn set_blocksize(&mut self, zio: &mut Zio, object: u64, size: u32) -> Result<()> {
        let dn = self.dnode_mut_readonly(object)?;
        if size == dn.datablksz {
            return Ok(());
        }
        // Refused before it changes anything; the dnode is dirty after.
        dn.set_blocksize(zio, size)?;
        self.dnode_mut(object).map(|_| ())
    }

    /// Writes everything dirty for `txg` and returns the new objset pointer
    /// with the pointers it killed and wrote.
    pub fn sync(&mut self, zio: &mut Zio, txg: u64) -> Result<SyncOutput> {
        let mut out = SyncOutput {
            killed: std::mem::take(&mut self.killed),
            ..SyncOutput::default()
        };
        if !self.dirty {
            out.bp = self.bp;
            return Ok(out);
        }
        let policy = WritePolicy {
            mdcomp_disable: zio.mdcomp_disable,
            os_copies: if self.os_type == DMU_OST_META {
                SPA_DVAS_PER_BP
            } else {
                self.policy.os_copies
            },
            ..self.policy
        };
        for dn in self.objects.values_mut().filter(|dn| dn.dirty) {
            dn.sync(zio, txg, &policy, &mut out.killed, &mut out.born)?;
            self.dirty_dnode_blocks
                .insert(dn.object >> DNODES_PER_BLOCK_SHIFT);
            dn.dirty = false;
        }
        for blkid in std::mem::take(&mut self.dirty_dnode_blocks) {
            let first = blkid << DNODES_PER_BLOCK_SHIFT;
            let mut block = vec![0u8; DNODE_BLOCK_SIZE];
            for (&object, dn) in self.objects.range(first..first + DNODES_PER_BLOCK) {
                let at = ((object - first) as usize) * DNODE_SIZE;
                dn.encode(&mut block[at..at + DNODE_SIZE]);
            }
            // Every dnode of the block is in memory: the old block is
            // replaced whole, never read.
            self.meta.fill_block(zio, blkid, block)?;
        }
        self.meta
            .sync(zio, txg, &policy, &mut out.killed, &mut out.born)?;
        self.meta.dirty = false;

        let mut block = vec![0u8; OBJSET_PHYS_SIZE];
        self.meta.encode(&mut block[..DNODE_SIZE]);
        block[OS_TYPE_OFFSET..OS_TYPE_OFFSET + 8].copy_from_slice(&self.os_type.to_le_bytes());
        let props = policy.props(
            object_type::DMU_OT_OBJSET as u8,
            0,
            0,
            0,
            self.objects.len() as u64 + 1,
        );
        let bp = zio.write_block(txg, &block, &props)?;
        debug_assert!(!bp.is_hole());
        if !self.bp.is_hole() {
            out.killed.push(self.bp);
        }
        out.born.push(bp);
        self.bp = bp;
        self.dirty = false;
        out.bp = bp;
        Ok(out)
    }
}

/// The error for an object number with no object behind it.
fn not_allocated(object: u64) -> Error {
    Error::new(Errno::ENOENT, format!("object {object} is not allocated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metaslab::Metaslab;
    use crate::vdev::MemDevice;

    fn zio() -> Zio {
        let size = 64 << 20;
        Zio::new(
            Box::new(MemDevice::new(size, 512)),
            Metaslab::new(1 << 20, size, 512),
        )
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn objects_survive_sync_and_reopen() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 131072, 17, 264).unwrap();
        let b = os.object_alloc(19, 1536, 0, 0).unwrap();
        assert_eq!((a, b), (1, 2));
        let data = pattern(300_000, 1);
        os.write(&mut zio, a, 1000, &data).unwrap();
        os.write(&mut zio, b, 0, &pattern(1536, 2)).unwrap();
        os.set_bonus(a, &[7; 264]).unwrap();
        let out = os.sync(&mut zio, 4).unwrap();
        assert!(!out.bp.is_hole());
        assert!(out.killed.is_empty());

        let mut again = Objset::open(&mut zio, &out.bp).unwrap();
        assert_eq!(
            again.read(&mut zio, a, 1000, data.len() as u64).unwrap(),
            data
        );
        assert_eq!(again.read(&mut zio, a, 0, 1000).unwrap(), vec![0; 1000]);
        assert_eq!(again.bonus(a).unwrap(), &[7; 264]);
        let info = again.object_info(a).unwrap();
        assert_eq!((info.nblkptr, info.maxblkid, info.nlevels), (1, 2, 2));
        assert_eq!(again.object_info(b).unwrap().nblkptr, 3);
        assert_eq!(again.read(&mut zio, b, 0, 1536).unwrap(), pattern(1536, 2));
    }

    /// Everything the objset shows of itself, for comparing two.
    fn contents(os: &mut Objset, zio: &mut Zio) -> Vec<String> {
        let mut out = vec![format!("{} {:?}", os.os_type, os.meta.info())];
        for object in os.objects().collect::<Vec<_>>() {
            let info = os.object_info(object).unwrap();
            let len = (info.maxblkid + 1) * u64::from(info.datablksz);
            let data = os.read(zio, object, 0, len).unwrap();
            let spill = os.spill(zio, object).unwrap();
            out.push(format!(
                "{info:?} {:?} {spill:?} {}",
                os.bonus(object).unwrap(),
                crate::checksum::fletcher_4_native(&data)
            ));
        }
        out
    }

    #[test]
    fn a_synced_objset_reopened_is_what_an_open_reads() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 4096, 17, 200).unwrap();
        os.write(&mut zio, a, 0, &pattern(4096 * 300, 1)).unwrap();
        os.set_bonus(a, &[3; 200]).unwrap();
        let b = os.object_alloc(20, 1536, 44, 100).unwrap();
        os.write(&mut zio, b, 0, &pattern(1536, 2)).unwrap();
        os.set_spill(b, Some(pattern(512, 3))).unwrap();
        os.object_claim(70, 19, 512, 0, 0).unwrap();
        os.write(&mut zio, 70, 0, &pattern(512 * 3, 4)).unwrap();
        os.set_checksum(70, 8).unwrap();
        os.sync(&mut zio, 4).unwrap();
        // A second txg that frees and rewrites some of it.
        os.free_range(&mut zio, a, 4096 * 10, 4096 * 100).unwrap();
        os.object_free(&mut zio, 70).unwrap();
        os.write(&mut zio, a, 4096 * 299, &[9; 10]).unwrap();
        let out = os.sync(&mut zio, 5).unwrap();
        os.obj_next = 40;
        // What the DSL sets from properties, an open starts without.
        os.policy.os_copies = 3;

        let mut reopened = os.reopened();
        let mut opened = Objset::open(&mut zio, &out.bp).unwrap();
        assert_eq!((reopened.obj_next, opened.obj_next), (1, 1));
        assert_eq!(
            contents(&mut reopened, &mut zio),
            contents(&mut opened, &mut zio)
        );
        // And they go on the same way, each on its own copy of the device.
        let mut image = vec![0u8; zio.vdev.size() as usize];
        zio.vdev.read_child(0, 0, &mut image).unwrap();
        let mut copy = Zio::new(
            Box::new(MemDevice::from_bytes(image, 512).unwrap()),
            zio.ms.clone(),
        );
        let next_txg = |os: &mut Objset, zio: &mut Zio| {
            let c = os.object_alloc(19, 512, 0, 0).unwrap();
            os.write(zio, c, 0, &[5; 512]).unwrap();
            os.write(zio, a, 0, &[6; 100]).unwrap();
            os.sync(zio, 6).unwrap()
        };
        let x = next_txg(&mut reopened, &mut zio);
        let y = next_txg(&mut opened, &mut copy);
        assert_eq!((x.bp, x.killed, x.born), (y.bp, y.killed, y.born));
    }

    /// A data object's indirect blocks are metadata (`level > 0`): one
    /// more copy than its data, as `dmu_write_policy` gives them.
    #[test]
    fn a_data_objects_indirect_blocks_are_written_as_metadata() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 4096, 0, 0).unwrap();
        os.write(&mut zio, a, 0, &pattern(4096 * 300, 1)).unwrap();
        let out = os.sync(&mut zio, 4).unwrap();
        let copies = |level: u8| -> Vec<usize> {
            let mut n: Vec<usize> = out
                .born
                .iter()
                .filter(|bp| bp.object_type() == 19 && bp.level() == level)
                .map(|bp| bp.dvas().count())
                .collect();
            n.dedup();
            n
        };
        assert_eq!(copies(0), vec![1]);
        assert_eq!(copies(1), vec![2]);
        // An indirect block's fill is its children's: 128 blocks under each
        // full one, 300 in all.
        let fills: Vec<u64> = out
            .born
            .iter()
            .filter(|bp| bp.object_type() == 19 && bp.level() == 1)
            .map(|bp| bp.fill)
            .collect();
        assert_eq!(fills.iter().sum::<u64>(), 300);
        assert!(fills.contains(&128), "{fills:?}");
        // A txg that changes only another object rewrites none of them.
        let b = os.object_alloc(20, 512, 0, 0).unwrap();
        os.write(&mut zio, b, 0, &pattern(512, 2)).unwrap();
        let next = os.sync(&mut zio, 5).unwrap();
        assert!(next.born.iter().all(|bp| bp.object_type() != 19));
        assert!(next.killed.iter().all(|bp| bp.object_type() != 19));
        // One of its indirect blocks read (loaded, clean) and another one's
        // data changed: only the changed one is written again.
        os.read(&mut zio, a, 0, 4096).unwrap();
        os.write(&mut zio, a, 4096 * 200, &pattern(4096, 3))
            .unwrap();
        let third = os.sync(&mut zio, 6).unwrap();
        let l1 = third
            .born
            .iter()
            .filter(|bp| bp.object_type() == 19 && bp.level() == 1)
            .count();
        assert_eq!(l1, 1);
    }

    /// A spill block survives the dnode's trip to disk: its flag
    /// (`DNODE_FLAG_SPILL_BLKPTR`, bit 2 of `dn_flags` at byte 7, where
    /// zdb and a byteswap look) says the last block pointer is the spill.
    #[test]
    fn a_spill_block_is_flagged_on_disk_and_read_back() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let b = os.object_alloc(20, 1536, 44, 100).unwrap();
        os.set_spill(b, Some(pattern(512, 3))).unwrap();
        let out = os.sync(&mut zio, 4).unwrap();
        // The spill block is written as what it holds, system attributes,
        // whatever the object's own type.
        let sa = |bp: &&Blkptr| u32::from(bp.object_type()) == object_type::DMU_OT_SA;
        assert_eq!(out.born.iter().filter(sa).count(), 1);
        let mut opened = Objset::open(&mut zio, &out.bp).unwrap();
        assert!(opened.object_info(b).unwrap().has_spill);
        assert_eq!(opened.spill(&mut zio, b).unwrap(), Some(pattern(512, 3)));
        let mut phys = [0u8; DNODE_SIZE];
        opened.dnode(b).unwrap().encode(&mut phys);
        assert_eq!(phys[7] & 0b100, 0b100);
        // Removed, the flag goes, and no other with it.
        opened.set_spill(b, None).unwrap();
        let out = opened.sync(&mut zio, 5).unwrap();
        let mut reopened = Objset::open(&mut zio, &out.bp).unwrap();
        assert!(!reopened.object_info(b).unwrap().has_spill);
        assert_eq!(reopened.spill(&mut zio, b).unwrap(), None);
        let mut after = [0u8; DNODE_SIZE];
        reopened.dnode(b).unwrap().encode(&mut after);
        assert_eq!(after[7], phys[7] & !0b100);
    }

    /// `dnode_set_blksz` refuses an object whose `maxblkid` went past block
    /// 0, even when the blocks past it are holes now.
    #[test]
    fn the_block_size_stays_once_an_object_went_past_block_zero() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 512, 0, 0).unwrap();
        os.write(&mut zio, a, 0, &pattern(512, 1)).unwrap();
        os.write(&mut zio, a, 1024, &pattern(512, 2)).unwrap();
        os.free_range(&mut zio, a, 1024, 512).unwrap();
        assert_eq!(os.object_info(a).unwrap().maxblkid, 2);
        let e = os.set_blocksize(&mut zio, a, 1024).unwrap_err();
        assert_eq!(e.errno(), Errno::ENOTSUP);
        // One block only: the size changes.
        let b = os.object_alloc(19, 512, 0, 0).unwrap();
        os.write(&mut zio, b, 0, &pattern(512, 3)).unwrap();
        os.set_blocksize(&mut zio, b, 1024).unwrap();
        assert_eq!(os.object_info(b).unwrap().datablksz, 1024);
    }

    /// A dnode read from disk is refused for each out-of-range shape field
    /// on its own (a crafted pool must not drive the walks), and taken at
    /// the edges of the ranges.
    #[test]
    fn a_dnode_with_a_bad_shape_is_refused_field_by_field() {
        let mut phys = [0u8; DNODE_SIZE];
        Dnode::allocate(5, 19, 4096, 14, 0, 0).encode(&mut phys);
        let with = |at: usize, v: u8| {
            let mut p = phys;
            p[at] = v;
            Dnode::decode(5, &p)
        };
        assert!(Dnode::decode(5, &phys).unwrap().is_some());
        // indblkshift (byte 1): 10 to 14.
        for (v, ok) in [(9, false), (10, true), (14, true), (15, false)] {
            assert_eq!(with(1, v).is_ok(), ok, "indblkshift {v}");
        }
        // nlevels (byte 2): 1 to 32.
        for (v, ok) in [(0, false), (1, true), (32, true), (33, false)] {
            assert_eq!(with(2, v).is_ok(), ok, "nlevels {v}");
        }
    }

    /// `dn_used` of an object whose block pointers are its data blocks is
    /// what those blocks take on disk.
    #[test]
    fn a_one_level_objects_used_bytes_are_its_blocks() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 4096, 0, 0).unwrap();
        let noise: Vec<u8> = (0..3 * 4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        os.write(&mut zio, a, 0, &noise).unwrap();
        let out = os.sync(&mut zio, 4).unwrap();
        let info = os.object_info(a).unwrap();
        assert_eq!(info.nlevels, 1);
        let blocks: u64 = out
            .born
            .iter()
            .filter(|bp| bp.object_type() == 19)
            .map(|bp| bp.asize())
            .sum();
        assert!(blocks >= 3 * 4096, "{blocks}");
        assert_eq!(info.used, blocks);
    }

    /// An objset block whose meta-dnode has the wrong block size is
    /// refused, whatever its type says.
    #[test]
    fn an_objset_with_a_meta_dnode_of_the_wrong_block_size_is_refused() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        os.object_alloc(19, 512, 0, 0).unwrap();
        let out = os.sync(&mut zio, 4).unwrap();
        let reopen = |zio: &mut Zio, block: &[u8]| {
            let bp = zio
                .write_block(5, block, &WritePolicy::default().props(10, 0, 0, 0, 1))
                .unwrap();
            Objset::open(zio, &bp)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let block = zio.read_block(&out.bp).unwrap();
        assert_eq!(reopen(&mut zio, &block), Ok(()));
        // dn_datablkszsec (bytes 8..10): 8 sectors, not 32; refused before
        // anything reads dnode blocks of that size.
        let mut wrong = block.clone();
        wrong[8..10].copy_from_slice(&8u16.to_le_bytes());
        let e = reopen(&mut zio, &wrong).unwrap_err();
        assert!(
            e.starts_with("EIO") && e.contains("corrupt meta-dnode"),
            "{e}"
        );
    }

    #[test]
    fn meta_dnode_has_seven_levels_of_three_pointers() {
        let os = Objset::create(DMU_OST_ZFS);
        assert_eq!((os.meta.nlevels, os.meta.nblkptr), (7, 3));
    }

    #[test]
    fn overwrite_kills_the_old_block_and_free_makes_holes() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 4096, 0, 0).unwrap();
        os.write(&mut zio, a, 0, &pattern(4096 * 4, 3)).unwrap();
        let first = os.sync(&mut zio, 5).unwrap();
        let data_bps: Vec<Blkptr> = first
            .born
            .iter()
            .filter(|b| b.level() == 0 && b.object_type() == 19)
            .copied()
            .collect();
        assert_eq!(data_bps.len(), 4);

        os.write(&mut zio, a, 4096, &[1; 10]).unwrap();
        os.free_range(&mut zio, a, 8192, 4096).unwrap();
        let second = os.sync(&mut zio, 6).unwrap();
        assert!(second.killed.contains(&data_bps[1]));
        assert!(second.killed.contains(&data_bps[2]));
        assert!(!second.killed.contains(&data_bps[0]));
        // The block after a freed range that ends on its boundary is left
        // alone, not written again.
        assert!(!second.killed.contains(&data_bps[3]));
        assert!(
            second.killed.contains(&first.bp),
            "the old objset block goes too"
        );

        let mut again = Objset::open(&mut zio, &second.bp).unwrap();
        assert_eq!(again.read(&mut zio, a, 8192, 4096).unwrap(), vec![0; 4096]);
        // A part of a block written: the rest of it is what was there.
        let mut want = pattern(4096 * 4, 3)[4096..8192].to_vec();
        want[..10].copy_from_slice(&[1; 10]);
        assert_eq!(again.read(&mut zio, a, 4096, 4096).unwrap(), want);
    }

    #[test]
    fn truncate_to_end_lowers_maxblkid() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 512, 0, 0).unwrap();
        os.write(&mut zio, a, 0, &pattern(512 * 10, 4)).unwrap();
        os.free_range(&mut zio, a, 1000, DMU_OBJECT_END).unwrap();
        let info = os.object_info(a).unwrap();
        assert_eq!(info.maxblkid, 1);
        assert_eq!(os.read(&mut zio, a, 1000, 24).unwrap(), vec![0; 24]);
        assert_eq!(os.read(&mut zio, a, 0, 1000).unwrap(), pattern(1000, 4));
        // Past the end, a truncation leaves it: the object does not grow.
        os.free_range(&mut zio, a, 512 * 30, DMU_OBJECT_END)
            .unwrap();
        let after = os.object_info(a).unwrap();
        assert_eq!((after.maxblkid, after.nlevels), (1, info.nlevels));
        // A range that is not to the end frees it and leaves what follows.
        let b = os.object_alloc(19, 512, 0, 0).unwrap();
        os.write(&mut zio, b, 0, &pattern(512 * 4, 5)).unwrap();
        os.free_range(&mut zio, b, 512, 512).unwrap();
        assert_eq!(os.object_info(b).unwrap().maxblkid, 3);
        assert_eq!(
            os.read(&mut zio, b, 1024, 1024).unwrap(),
            pattern(512 * 4, 5)[1024..]
        );
        // A range inside one block zeroes that range and nothing before it.
        os.free_range(&mut zio, b, 1024 + 100, 100).unwrap();
        let mut want = pattern(512 * 4, 5)[1024..1536].to_vec();
        want[100..200].fill(0);
        assert_eq!(os.read(&mut zio, b, 1024, 512).unwrap(), want);
        // Across a block boundary, into the middle of the next block.
        os.free_range(&mut zio, b, 1024 + 300, 512).unwrap();
        want[300..].fill(0);
        assert_eq!(os.read(&mut zio, b, 1024, 512).unwrap(), want);
        let mut next = pattern(512 * 4, 5)[1536..2048].to_vec();
        next[..300].fill(0);
        assert_eq!(os.read(&mut zio, b, 1536, 512).unwrap(), next);
        // From offset 0 to the end, everything goes: maxblkid is 0 again.
        os.free_range(&mut zio, b, 0, DMU_OBJECT_END).unwrap();
        assert_eq!(os.object_info(b).unwrap().maxblkid, 0);
        assert_eq!(os.read(&mut zio, b, 0, 2048).unwrap(), vec![0; 2048]);
    }

    /// A refused call changes nothing: were the objset dirtied, its
    /// filesystem would count as modified since its snapshot, and an
    /// incremental receive would then be refused (ETXTBSY).
    #[test]
    fn refused_object_calls_leave_the_objset_clean() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        os.object_claim(5, 19, 1536, 0, 0).unwrap();
        os.object_claim(6, 19, 512, 0, 0).unwrap();
        os.write(&mut zio, 6, 0, &[1; 2048]).unwrap();
        os.sync(&mut zio, 4).unwrap();
        assert!(!os.is_dirty());
        let refusals = [
            os.write(&mut zio, 5, 1000, &[1; 1000]).unwrap_err(),
            os.set_bonuslen(5, 400).unwrap_err(),
            os.set_spill(5, Some(vec![0; 100])).unwrap_err(),
            os.set_spill(5, Some(vec![0; 512])).unwrap_err(),
            os.set_blocksize(&mut zio, 6, 4096).unwrap_err(),
            os.object_claim(0, 19, 512, 0, 0).unwrap_err(),
            os.object_reclaim(&mut zio, 0, 19, 512, 0, 0).unwrap_err(),
        ];
        let errnos: Vec<Errno> = refusals.iter().map(Error::errno).collect();
        use Errno::*;
        assert_eq!(
            errnos,
            [ENOTSUP, EINVAL, EINVAL, EINVAL, ENOTSUP, EBADF, EBADF]
        );
        assert!(!os.is_dirty(), "a refused call dirtied the objset");
        // The same size again is no change either.
        os.set_blocksize(&mut zio, 5, 1536).unwrap();
        assert!(!os.is_dirty());
    }

    #[test]
    fn a_new_object_is_refused_for_a_bad_type_and_a_bonus_fits_to_the_byte() {
        let mut os = Objset::create(DMU_OST_ZFS);
        for (dn_type, bonustype) in [(0, 0), (100, 0), (19, 100)] {
            let err = os.object_alloc(dn_type, 512, bonustype, 0).unwrap_err();
            assert_eq!(err.errno(), Errno::EINVAL, "type {dn_type}/{bonustype}");
        }
        assert_eq!(os.objects().count(), 0);
        let object = os.object_alloc(19, 512, 0, 0).unwrap();
        // Three block pointers leave 320 - 2 * 128 bytes of bonus.
        assert_eq!(os.object_info(object).unwrap().nblkptr, 3);
        os.set_bonuslen(object, 64).unwrap();
        assert_eq!(os.object_info(object).unwrap().bonuslen, 64);
        let err = os.set_bonuslen(object, 65).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
    }

    #[test]
    fn a_freed_object_number_waits_for_the_objset_to_be_reopened() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 512, 0, 0).unwrap();
        let b = os.object_alloc(19, 512, 0, 0).unwrap();
        assert_eq!((a, b), (1, 2));
        os.object_free(&mut zio, b).unwrap();
        // The allocation goes on from where the last one left off.
        assert_eq!(os.object_alloc(19, 512, 0, 0).unwrap(), 3);
        let out = os.sync(&mut zio, 4).unwrap();
        // Reopened, it starts from the beginning again and finds 2 free.
        let mut again = Objset::open(&mut zio, &out.bp).unwrap();
        assert_eq!(again.object_alloc(19, 512, 0, 0).unwrap(), 2);
    }

    #[test]
    fn a_sync_writes_the_dnode_blocks_that_changed_as_the_pool_compresses_metadata() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        let a = os.object_alloc(19, 512, 0, 0).unwrap();
        let first = os.sync(&mut zio, 4).unwrap();
        // Objects 0 to 31 share dnode block 0, and no other is written; the
        // objset block's fill counts the meta-dnode with the objects.
        assert_eq!(os.meta_dnode().maxblkid, 0);
        assert_eq!(first.bp.fill, 2);
        let compressed = |b: &Blkptr| b.compress() != crate::zio::compress::ZioCompress::Off as u8;
        assert!(first.born.iter().any(compressed), "lzjb on metadata");
        // With metadata compression off (`zfs_mdcomp_disable`), the next
        // sync writes its metadata as it is.
        zio.mdcomp_disable = true;
        os.write(&mut zio, a, 0, &[1; 512]).unwrap();
        let second = os.sync(&mut zio, 5).unwrap();
        assert!(second.born.iter().all(|b| !compressed(b)));
        assert_eq!(os.meta_dnode().maxblkid, 0);
    }

    #[test]
    fn claim_reclaim_and_errors() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        os.object_claim(40, 19, 512, 0, 0).unwrap();
        assert_eq!(
            os.object_claim(40, 19, 512, 0, 0).unwrap_err().errno(),
            Errno::EEXIST
        );
        assert_eq!(
            os.object_claim(0, 19, 512, 0, 0).unwrap_err().errno(),
            Errno::EBADF
        );
        assert_eq!(
            os.object_claim(DN_MAX_OBJECT, 19, 512, 0, 0)
                .unwrap_err()
                .errno(),
            Errno::EINVAL
        );
        assert_eq!(
            os.object_claim(41, 19, 1000, 0, 0).unwrap_err().errno(),
            Errno::EINVAL
        );
        assert_eq!(
            os.object_claim(41, 19, 512, 0, 321).unwrap_err().errno(),
            Errno::EINVAL
        );
        os.write(&mut zio, 40, 0, &[9; 512]).unwrap();
        // Same shape: a no-op that keeps the contents.
        os.object_reclaim(&mut zio, 40, 19, 512, 0, 0).unwrap();
        assert_eq!(os.read(&mut zio, 40, 0, 512).unwrap(), vec![9; 512]);
        // New block size: contents freed.
        os.object_reclaim(&mut zio, 40, 20, 1024, 0, 0).unwrap();
        assert_eq!(os.read(&mut zio, 40, 0, 1024).unwrap(), vec![0; 1024]);
        assert_eq!(os.object_info(40).unwrap().dn_type, 20);
        assert_eq!(os.object_info(99).unwrap_err().errno(), Errno::ENOENT);
        // A non-power-of-two block size allows one block only.
        os.object_claim(42, 19, 1536, 0, 0).unwrap();
        assert_eq!(
            os.write(&mut zio, 42, 1536, &[1]).unwrap_err().errno(),
            Errno::ENOTSUP
        );
    }

    #[test]
    fn a_reclaim_keeps_what_its_new_shape_allows() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        os.object_claim(5, 19, 512, 17, 100).unwrap();
        os.set_bonus(5, &[7; 100]).unwrap();
        os.write(&mut zio, 5, 0, &pattern(1024, 1)).unwrap();
        // The same shape: nothing changes, the bonus neither.
        os.object_reclaim(&mut zio, 5, 19, 512, 17, 100).unwrap();
        assert_eq!(os.bonus(5).unwrap(), &[7; 100][..]);
        // A new type alone keeps the data and the block count.
        os.object_reclaim(&mut zio, 5, 20, 512, 17, 100).unwrap();
        assert_eq!(os.read(&mut zio, 5, 0, 1024).unwrap(), pattern(1024, 1));
        let info = os.object_info(5).unwrap();
        assert_eq!((info.dn_type, info.maxblkid), (20, 1));
        // A new block size frees the data and starts from block 0.
        os.object_reclaim(&mut zio, 5, 20, 1024, 17, 100).unwrap();
        let info = os.object_info(5).unwrap();
        assert_eq!((info.datablksz, info.maxblkid), (1024, 0));
        assert_eq!(os.read(&mut zio, 5, 0, 1024).unwrap(), vec![0; 1024]);

        // A spill stays while the new bonus leaves its pointer room (the
        // last 128 bytes of the dnode), and goes when it does not.
        let b = os.object_alloc(20, 1536, 44, 100).unwrap();
        os.set_spill(b, Some(pattern(512, 3))).unwrap();
        os.object_reclaim(&mut zio, b, 20, 1536, 44, 192).unwrap();
        assert_eq!(os.spill(&mut zio, b).unwrap(), Some(pattern(512, 3)));
        // The spill is the dnode's only flag (a pool without used-bytes
        // accounting): the test is of that bit, not of the flags at large.
        os.dnode_mut(b).unwrap().flags = crate::dmu::dnode::DNODE_FLAG_SPILL_BLKPTR;
        os.object_reclaim(&mut zio, b, 20, 1536, 44, 193).unwrap();
        assert_eq!(os.spill(&mut zio, b).unwrap(), None);
        assert!(!os.object_info(b).unwrap().has_spill);
    }

    #[test]
    fn reclaim_with_a_longer_bonus_gives_up_block_pointers() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        os.object_claim(5, 19, 512, 0, 0).unwrap();
        os.write(&mut zio, 5, 0, &[1; 2048]).unwrap();
        assert_eq!(os.object_info(5).unwrap().nblkptr, 3);
        os.object_reclaim(&mut zio, 5, 19, 512, 17, 300).unwrap();
        let info = os.object_info(5).unwrap();
        assert_eq!((info.nblkptr, info.bonuslen), (1, 300));
        assert_eq!(os.read(&mut zio, 5, 0, 2048).unwrap(), vec![0; 2048]);
        let out = os.sync(&mut zio, 7).unwrap();
        let again = Objset::open(&mut zio, &out.bp).unwrap();
        assert_eq!(again.object_info(5).unwrap().nblkptr, 1);
    }

    #[test]
    fn freeing_all_dnodes_of_a_block_makes_it_a_hole_in_the_meta_dnode() {
        let mut zio = zio();
        let mut os = Objset::create(DMU_OST_ZFS);
        os.object_claim(40, 19, 512, 0, 0).unwrap();
        os.object_claim(3, 19, 512, 0, 0).unwrap();
        os.sync(&mut zio, 4).unwrap();
        os.object_free(&mut zio, 40).unwrap();
        let out = os.sync(&mut zio, 5).unwrap();
        let mut again = Objset::open(&mut zio, &out.bp).unwrap();
        assert_eq!(again.objects().collect::<Vec<_>>(), vec![3]);
        let mut blocks = Vec::new();
        again
            .meta_dnode()
            .visit_blocks(&mut zio, &mut |b| blocks.push(b))
            .unwrap();
        // Dnode block 1 held only object 40: all zeros now, compressed away.
        assert_eq!(blocks, vec![0]);
    }
}
