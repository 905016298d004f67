//! A fat ZAP being changed (`zap.c`): the header in block 0 (`zap_phys_t`),
//! the pointer table that maps the top `zt_shift` bits of a hash to a leaf
//! (in the second half of block 0 until it outgrows it, then in blocks of
//! its own), and the leaves. A full leaf splits in two by one more hash
//! bit, doubling the pointer table first when the leaf already uses all of
//! its bits, as `zap_expand_leaf` does. Blocks are read once and written
//! back together at the end.

use std::collections::{BTreeMap, BTreeSet};

use super::hash::{hashbits, zap_hash};
use super::leaf::{LeafBlock, array_nchunks, put_u64, u64_at};
use super::{ZAP_MAGIC, ZBT_HEADER};
use crate::dmu::Dmu;
use crate::error::{Errno, Error, Result};

/// `zap_phys_t` field offsets.
const ZT_BLK: usize = 16;
const ZT_NUMBLKS: usize = 24;
const ZT_SHIFT: usize = 32;
const ZT_NEXTBLK: usize = 40;
const ZT_BLKS_COPIED: usize = 48;
const FREEBLK: usize = 56;
const NUM_LEAFS: usize = 64;
const NUM_ENTRIES: usize = 72;
const SALT: usize = 80;
const NORMFLAGS: usize = 88;
const FLAGS: usize = 96;

pub struct FatZap<'d, 'a> {
    dmu: &'d mut Dmu<'a>,
    object: u64,
    bs: usize,
    header: Vec<u8>,
    leaves: BTreeMap<u64, LeafBlock>,
    /// Blocks of an external pointer table, by block id.
    table: BTreeMap<u64, Vec<u8>>,
    dirty: BTreeSet<u64>,
}

impl<'d, 'a> FatZap<'d, 'a> {
    /// A fat ZAP the reader has checked, with block 0 as read.
    pub fn open(dmu: &'d mut Dmu<'a>, object: u64, header: Vec<u8>) -> FatZap<'d, 'a> {
        FatZap {
            dmu,
            object,
            bs: header.len(),
            header,
            leaves: BTreeMap::new(),
            table: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// `fzap_upgrade`: a header whose embedded pointer table points every
    /// hash at one empty leaf, block 1. The object's block size is already
    /// `block_size`.
    pub fn create(
        dmu: &'d mut Dmu<'a>,
        object: u64,
        block_size: usize,
        salt: u64,
        normflags: u64,
        flags: u64,
    ) -> FatZap<'d, 'a> {
        let mut header = vec![0; block_size];
        put_u64(&mut header, 0, ZBT_HEADER);
        put_u64(&mut header, 8, ZAP_MAGIC);
        let embedded_shift = block_size.trailing_zeros() - 3 - 1;
        put_u64(&mut header, ZT_SHIFT, u64::from(embedded_shift));
        put_u64(&mut header, FREEBLK, 2);
        put_u64(&mut header, NUM_LEAFS, 1);
        put_u64(&mut header, SALT, salt);
        put_u64(&mut header, NORMFLAGS, normflags);
        put_u64(&mut header, FLAGS, flags);
        for idx in 0..1usize << embedded_shift {
            put_u64(&mut header, block_size / 2 + idx * 8, 1);
        }
        let mut zap = FatZap::open(dmu, object, header);
        zap.leaves.insert(1, LeafBlock::init(block_size, 0, 0));
        zap.dirty.extend([0, 1]);
        zap
    }

    fn field(&self, at: usize) -> u64 {
        u64_at(&self.header, at)
    }

    fn set_field(&mut self, at: usize, v: u64) {
        put_u64(&mut self.header, at, v);
        self.dirty.insert(0);
    }

    fn flags(&self) -> u64 {
        self.field(FLAGS)
    }

    fn hash(&self, name: &[u8]) -> u64 {
        zap_hash(self.field(SALT), self.flags(), name)
    }

    fn read_block(&mut self, blkid: u64) -> Result<Vec<u8>> {
        let bs = self.bs as u64;
        self.dmu.read(self.object, blkid * bs, bs)
    }

    /// Which pointer-table block holds entry `idx`, and where in it.
    fn table_slot(&self, idx: u64) -> (u64, usize) {
        let per_block = (self.bs / 8) as u64;
        (
            self.field(ZT_BLK) + idx / per_block,
            (idx % per_block) as usize * 8,
        )
    }

    fn table_block(&mut self, blkid: u64) -> Result<&mut Vec<u8>> {
        if !self.table.contains_key(&blkid) {
            let block = self.read_block(blkid)?;
            self.table.insert(blkid, block);
        }
        Ok(self.table.get_mut(&blkid).expect("loaded"))
    }

    /// `zap_idx_to_blk`.
    fn ptr(&mut self, idx: u64) -> Result<u64> {
        if self.field(ZT_NUMBLKS) == 0 {
            return Ok(u64_at(&self.header, self.bs / 2 + idx as usize * 8));
        }
        let (blkid, at) = self.table_slot(idx);
        Ok(u64_at(self.table_block(blkid)?, at))
    }

    /// `zap_set_idx_to_blk`.
    fn set_ptr(&mut self, idx: u64, leaf: u64) -> Result<()> {
        if self.field(ZT_NUMBLKS) == 0 {
            let at = self.bs / 2 + idx as usize * 8;
            put_u64(&mut self.header, at, leaf);
            self.dirty.insert(0);
            return Ok(());
        }
        let (blkid, at) = self.table_slot(idx);
        put_u64(self.table_block(blkid)?, at, leaf);
        self.dirty.insert(blkid);
        Ok(())
    }

    /// The leaf a hash belongs to (`zap_deref_leaf`).
    fn leaf_of(&mut self, hash: u64) -> Result<u64> {
        let shift = self.field(ZT_SHIFT);
        let idx = if shift == 0 { 0 } else { hash >> (64 - shift) };
        let blkid = self.ptr(idx)?;
        if !self.leaves.contains_key(&blkid) {
            let block = self.read_block(blkid)?;
            self.leaves.insert(blkid, LeafBlock::open(block));
        }
        Ok(blkid)
    }

    /// `fzap_add_cd`: `name` with its NUL; `cd` as the microzap had it when
    /// upgrading, else the lowest free one. The caller has checked that the
    /// name is not there.
    pub fn add(&mut self, name: &[u8], intlen: u8, value: &[u8], cd: Option<u32>) -> Result<()> {
        let hash = self.hash(&name[..name.len() - 1]);
        let need = 1 + array_nchunks(name.len()) + array_nchunks(value.len());
        loop {
            let blkid = self.leaf_of(hash)?;
            let object = self.object;
            let leaf = self.leaves.get_mut(&blkid).expect("loaded");
            if need > leaf.nchunks() {
                // unreached: an added entry needs at most 15 chunks (a name under 256 bytes, one
                // u64), and the smallest leaf, 512 bytes (parse refuses smaller blocks), has 18
                return Err(Error::new(
                    Errno::E2BIG,
                    format!(
                        "ZAP object {object}: an entry of {need} chunks does not fit a leaf of {}",
                        leaf.nchunks()
                    ),
                ));
            }
            if leaf.nfree() >= need {
                let cd = cd.unwrap_or_else(|| leaf.unused_cd(hash));
                leaf.entry_create(object, hash, cd, name, intlen, value)?;
                self.dirty.insert(blkid);
                let n = self.field(NUM_ENTRIES);
                self.set_field(NUM_ENTRIES, n + 1);
                return Ok(());
            }
            self.expand_leaf(blkid)?;
        }
    }

    /// `fzap_remove`; `ENOENT` if the name is not there.
    pub fn remove(&mut self, name: &[u8]) -> Result<bool> {
        let hash = self.hash(&name[..name.len() - 1]);
        let blkid = self.leaf_of(hash)?;
        let leaf = self.leaves.get_mut(&blkid).expect("loaded");
        let Some(idx) = leaf.find(hash, name) else {
            return Ok(false);
        };
        leaf.entry_remove(idx);
        self.dirty.insert(blkid);
        let n = self.field(NUM_ENTRIES);
        self.set_field(NUM_ENTRIES, n - 1);
        Ok(true)
    }

    /// `zap_allocate_blocks`.
    fn allocate_blocks(&mut self, n: u64) -> u64 {
        let first = self.field(FREEBLK);
        self.set_field(FREEBLK, first + n);
        first
    }

    /// `zap_expand_leaf`: split a full leaf, growing the table if the leaf
    /// already tells apart as many hash bits as the table does.
    fn expand_leaf(&mut self, blkid: u64) -> Result<()> {
        let old_len = u64::from(self.leaves[&blkid].prefix_len());
        if old_len == self.field(ZT_SHIFT) {
            self.grow_ptrtbl()?;
        }
        let shift = self.field(ZT_SHIFT);
        let prefix_diff = shift - (old_len + 1);
        let sibling = ((self.leaves[&blkid].prefix() << 1) | 1) << prefix_diff;
        let new_blk = self.allocate_blocks(1);
        let leafs = self.field(NUM_LEAFS);
        self.set_field(NUM_LEAFS, leafs + 1);
        let mut new = LeafBlock::init(self.bs, 0, 0);
        let object = self.object;
        self.leaves
            .get_mut(&blkid)
            .expect("loaded")
            .split(object, &mut new)?;
        self.leaves.insert(new_blk, new);
        self.dirty.extend([blkid, new_blk]);
        for i in 0..1u64 << prefix_diff {
            self.set_ptr(sibling + i, new_blk)?;
        }
        Ok(())
    }

    /// `zap_grow_ptrtbl`: twice the entries, each old one copied to two.
    /// The embedded table moves to a block of its own; an external one to
    /// twice as many new blocks, the old ones freed (ZFS copies a block
    /// per call, and finishes before the table is used at the new size;
    /// this copies them all at once).
    fn grow_ptrtbl(&mut self) -> Result<()> {
        let shift = self.field(ZT_SHIFT);
        if shift >= u64::from(hashbits(self.flags())) - 2 {
            // unreached: a table of 2^26 entries: leaf splits reach it after 512 MiB of leaves,
            // past every simulated disk (48 MiB) and fuzz template (8 MiB); only an image made
            // by hand with 4,096 table blocks of 128 KiB could hold one
            return Err(Error::new(
                Errno::ENOSPC,
                format!(
                    "ZAP object {}: the pointer table already uses {shift} hash bits",
                    self.object
                ),
            ));
        }
        let old: Vec<u64> = (0..1u64 << shift)
            .map(|idx| self.ptr(idx))
            .collect::<Result<_>>()?;
        let numblks = self.field(ZT_NUMBLKS);
        let (old_blk, new_numblks) = (self.field(ZT_BLK), (numblks * 2).max(1));
        let new_blk = self.allocate_blocks(new_numblks);
        for b in 0..new_numblks {
            self.table.insert(new_blk + b, vec![0; self.bs]);
        }
        self.set_field(ZT_BLK, new_blk);
        self.set_field(ZT_NUMBLKS, new_numblks);
        self.set_field(ZT_SHIFT, shift + 1);
        self.set_field(ZT_NEXTBLK, 0);
        self.set_field(ZT_BLKS_COPIED, 0);
        for (idx, leaf) in old.into_iter().enumerate() {
            self.set_ptr(2 * idx as u64, leaf)?;
            self.set_ptr(2 * idx as u64 + 1, leaf)?;
        }
        if numblks > 0 {
            for b in old_blk..old_blk + numblks {
                self.table.remove(&b);
                self.dirty.remove(&b);
            }
            let bs = self.bs as u64;
            self.dmu
                .free_range(self.object, old_blk * bs, numblks * bs)?;
        }
        Ok(())
    }

    /// Writes every changed block.
    pub fn finish(self) -> Result<()> {
        let bs = self.bs as u64;
        for blkid in &self.dirty {
            let block = if *blkid == 0 {
                &self.header
            } else if let Some(leaf) = self.leaves.get(blkid) {
                &leaf.buf
            } else {
                &self.table[blkid]
            };
            self.dmu.write(self.object, blkid * bs, block)?;
        }
        Ok(())
    }
}
