//! A read-only ZAP reader (`zap_micro.c`, `zap.c`, `zap_leaf.c`): the
//! name/value objects that hold ZFS directories, the ZPL master node and
//! most other metadata, in both forms — the single-block microzap and the
//! fat ZAP of a header, a pointer table and leaf blocks of chunks.
//!
//! It exists to look inside received filesystems, so it trusts nothing: every
//! block type, magic number, chunk index, chain and length is checked against
//! the block it sits in, and anything malformed is an `EIO` naming the object,
//! never a panic, a loop or an allocation the input asks for.
//!
//! The writer (`create`, `add`, `remove`) makes objects of the same shapes,
//! so that a ZPL filesystem the simulator writes reads back here and in a
//! real ZFS: a microzap that grows by 512 bytes a block, upgraded to a fat
//! ZAP of 16 KiB blocks when a name or value does not fit it or it can grow
//! no more (`micro`, `fat`, `leaf`, `hash`). Each change reads the object
//! through the reader first, so it never acts on a malformed one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::dmu::Dmu;
use crate::error::{Errno, Error, Result, fail};

mod fat;
mod hash;
mod leaf;
mod micro;

pub use hash::zap_hash;

/// `zap_phys_t.zap_block_type` / `lh_block_type` / `mz_block_type` values.
pub const ZBT_LEAF: u64 = 1 << 63;
pub const ZBT_HEADER: u64 = (1 << 63) + 1;
pub const ZBT_MICRO: u64 = (1 << 63) + 3;
/// `zap_phys_t.zap_magic`.
pub const ZAP_MAGIC: u64 = 0x2_F52A_B2AB;
/// `zap_leaf_phys_t.l_hdr.lh_magic`.
pub const ZAP_LEAF_MAGIC: u32 = 0x2AB_1EAF;

/// `mzap_ent_phys_t`: value u64, cd u32, pad u16, then the name.
pub const MZAP_ENT_LEN: usize = 64;
pub const MZAP_NAME_LEN: usize = MZAP_ENT_LEN - 8 - 4 - 2;
/// A microzap is one block of at most `SPA_MAXBLOCKSIZE`.
pub const MZAP_MAX_BLKSZ: usize = 128 << 10;

pub const ZAP_LEAF_CHUNKSIZE: usize = 24;
/// Bytes of a name or value an array chunk holds (after type, before next).
pub const ZAP_LEAF_ARRAY_BYTES: usize = ZAP_LEAF_CHUNKSIZE - 3;
/// The leaf header takes two chunks' worth of bytes.
pub const ZAP_LEAF_HEADER_SIZE: usize = 2 * ZAP_LEAF_CHUNKSIZE;
pub const ZAP_CHUNK_FREE: u8 = 253;
pub const ZAP_CHUNK_ENTRY: u8 = 252;
pub const ZAP_CHUNK_ARRAY: u8 = 251;
/// End of a hash chain or an array chain.
pub const CHAIN_END: u16 = 0xffff;

/// Longest name, with its terminating NUL (`ZAP_MAXNAMELEN`).
pub const ZAP_MAXNAMELEN: usize = 256;
/// Longest value in bytes (`ZAP_MAXVALUELEN`).
pub const ZAP_MAXVALUELEN: usize = 8 << 10;

/// `zap_flags_t`.
pub const ZAP_FLAG_HASH64: u64 = 1 << 0;
pub const ZAP_FLAG_UINT64_KEY: u64 = 1 << 1;
pub const ZAP_FLAG_PRE_HASHED_KEY: u64 = 1 << 2;
/// Hash bits a fat ZAP can use (`zap_hashbits` with `ZAP_FLAG_HASH64`);
/// a pointer table never has more index bits than this.
const ZAP_MAX_HASHBITS: u64 = 48;

const SPA_MINBLOCKSHIFT: u32 = 9;
const SPA_MAXBLOCKSHIFT: u32 = 17;

/// One name/value pair of a ZAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZapEntry {
    /// The name as stored, without its terminating NUL. ZFS does not require
    /// names to be UTF-8, so they stay bytes. For a ZAP with
    /// `ZAP_FLAG_UINT64_KEY` these are the key's integers, big-endian.
    pub name: Vec<u8>,
    /// The collision differentiator (`mze_cd` / `le_cd`).
    pub cd: u32,
    /// Bytes per value integer: 1, 2, 4 or 8 (always 8 in a microzap).
    pub integer_size: u8,
    pub values: Vec<u64>,
}

impl ZapEntry {
    /// The name for display: UTF-8 as is, other bytes replaced.
    pub fn name_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// The value of an entry holding exactly one integer (a directory entry,
    /// a master node entry).
    pub fn single_value(&self) -> Option<u64> {
        match self.values[..] {
            [v] => Some(v),
            _ => None,
        }
    }
}

/// Which of the two layouts a ZAP object uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZapKind {
    Micro,
    Fat,
}

/// A ZAP object read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zap {
    pub kind: ZapKind,
    /// `mz_salt` / `zap_salt`: what ZFS stirs into the name hash.
    pub salt: u64,
    /// `zap_flags` (always 0 for a microzap).
    pub flags: u64,
    /// In storage order: chunk order in a microzap; leaf block, then chunk
    /// order in a fat ZAP.
    pub entries: Vec<ZapEntry>,
}

/// The blocks of a ZAP object, however they are stored: the DMU for real
/// objects, plain buffers in tests.
pub trait ZapBlocks {
    /// The object's data block size (`dn_datablksz`).
    fn block_size(&self) -> usize;
    /// How many blocks the object has (`dn_maxblkid + 1`).
    fn block_count(&self) -> u64;
    /// Block `blkid` (`block_size` bytes; a hole reads as zeros).
    fn read_block(&mut self, blkid: u64) -> Result<Vec<u8>>;
}

/// A ZAP object in an objset.
struct DmuBlocks<'d, 'a> {
    dmu: &'d mut Dmu<'a>,
    object: u64,
    block_size: usize,
    block_count: u64,
}

impl ZapBlocks for DmuBlocks<'_, '_> {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn block_count(&self) -> u64 {
        self.block_count
    }

    fn read_block(&mut self, blkid: u64) -> Result<Vec<u8>> {
        let bs = self.block_size as u64;
        let Some(offset) = blkid.checked_mul(bs) else {
            return fail(
                Errno::EIO,
                format!(
                    "ZAP object {}: block {blkid} is past the end of any object",
                    self.object
                ),
            );
        };
        self.dmu
            .read(self.object, offset, bs)
            .map_err(|e| e.context(format!("ZAP object {} block {blkid}", self.object)))
    }
}

/// Blocks held in memory, for tests and tools: the block size is the first
/// block's, blocks past the end read as holes, and a block of another size
/// is handed over as it is, for the parser to refuse.
impl ZapBlocks for Vec<Vec<u8>> {
    fn block_size(&self) -> usize {
        self.first().map_or(0, Vec::len)
    }

    fn block_count(&self) -> u64 {
        self.len() as u64
    }

    fn read_block(&mut self, blkid: u64) -> Result<Vec<u8>> {
        let size = self.block_size();
        Ok(usize::try_from(blkid)
            .ok()
            .and_then(|b| self.get(b))
            .map_or_else(|| vec![0; size], Clone::clone))
    }
}

/// Reads a ZAP object of a dataset.
pub fn read(dmu: &mut Dmu<'_>, object: u64) -> Result<Zap> {
    let info = dmu.object_info(object)?;
    let mut blocks = DmuBlocks {
        dmu,
        object,
        block_size: info.datablksz as usize,
        block_count: info.maxblkid.saturating_add(1),
    };
    parse(object, &mut blocks)
}

/// Every entry of a ZAP object, in storage order.
pub fn entries(dmu: &mut Dmu<'_>, object: u64) -> Result<Vec<ZapEntry>> {
    read(dmu, object).map(|zap| zap.entries)
}

/// The values stored under `name` (`zap_lookup`); `ENOENT` if there are none.
pub fn lookup(dmu: &mut Dmu<'_>, object: u64, name: &[u8]) -> Result<Vec<u64>> {
    read(dmu, object)?.lookup(object, name)
}

/// The single integer stored under `name`.
pub fn lookup_u64(dmu: &mut Dmu<'_>, object: u64, name: &[u8]) -> Result<u64> {
    read(dmu, object)?.lookup_u64(object, name)
}

/// The block a new ZAP starts with: a microzap of `SPA_MINBLOCKSIZE`.
pub const MZAP_INITIAL_BLKSZ: u32 = 512;
/// `fzap_default_block_shift`: a fat ZAP's blocks are 16 KiB.
pub const FZAP_BLOCK_SHIFT: u32 = 14;

/// A new ZAP's salt. ZFS stirs kernel addresses into it; zsim takes the
/// object number, so a run is the same every time.
fn salt_for(object: u64) -> u64 {
    let mut z = object.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// `zap_create`: a new object of type `ot` holding an empty microzap.
pub fn create(dmu: &mut Dmu<'_>, ot: u8, bonustype: u8, bonuslen: usize) -> Result<u64> {
    let object = dmu.object_alloc(ot, MZAP_INITIAL_BLKSZ, bonustype, bonuslen)?;
    mzap_create(dmu, object)?;
    Ok(object)
}

/// `zap_create_claim`: the same, as a given object number.
pub fn create_claim(
    dmu: &mut Dmu<'_>,
    object: u64,
    ot: u8,
    bonustype: u8,
    bonuslen: usize,
) -> Result<()> {
    dmu.object_claim(object, ot, MZAP_INITIAL_BLKSZ, bonustype, bonuslen)?;
    mzap_create(dmu, object)
}

fn mzap_create(dmu: &mut Dmu<'_>, object: u64) -> Result<()> {
    let block = micro::create_block(salt_for(object), MZAP_INITIAL_BLKSZ as usize);
    dmu.write(object, 0, &block)
}

/// `zap_add` of one 8-byte integer, as directories and the master node
/// hold.
pub fn add_u64(dmu: &mut Dmu<'_>, object: u64, name: &[u8], value: u64) -> Result<()> {
    add(dmu, object, name, 8, &[value])
}

/// `zap_add`: `name` with `values` of `integer_size` bytes each; `EEXIST`
/// if the name is there. A microzap takes it if it can (growing its block
/// by 512 bytes when every slot is used), else becomes a fat ZAP first.
pub fn add(
    dmu: &mut Dmu<'_>,
    object: u64,
    name: &[u8],
    integer_size: u8,
    values: &[u64],
) -> Result<()> {
    let value_bytes = values.len() * usize::from(integer_size);
    if name.is_empty() || name.len() >= ZAP_MAXNAMELEN || name.contains(&0) {
        // unreached: vnops::check_name refuses such names first; the other callers add fixed names
        // or hex object numbers
        return fail(
            Errno::ENAMETOOLONG,
            format!(
                "ZAP object {object}: a name of {} bytes cannot be stored (1 to {} bytes, no NUL)",
                name.len(),
                ZAP_MAXNAMELEN - 1
            ),
        );
    }
    if !matches!(integer_size, 1 | 2 | 4 | 8) || values.is_empty() || value_bytes > ZAP_MAXVALUELEN
    {
        // unreached: add's only caller, add_u64, passes one 8-byte integer
        return fail(
            Errno::E2BIG,
            format!(
                "ZAP object {object}: {} integers of {integer_size} bytes cannot be a value",
                values.len()
            ),
        );
    }
    let zap = read(dmu, object)?;
    if zap.flags & (ZAP_FLAG_UINT64_KEY | ZAP_FLAG_PRE_HASHED_KEY) != 0 {
        return fail(
            Errno::ENOTSUP,
            format!(
                "ZAP object {object} has flags {:#x}: only string keys are written",
                zap.flags
            ),
        );
    }
    if zap.entries.iter().any(|e| e.name == name) {
        return fail(
            Errno::EEXIST,
            format!(
                "ZAP object {object} already has an entry {:?}",
                String::from_utf8_lossy(name)
            ),
        );
    }
    let value: Vec<u8> = values
        .iter()
        .flat_map(|v| v.to_be_bytes()[8 - usize::from(integer_size)..].to_vec())
        .collect();
    let mut with_nul = name.to_vec();
    with_nul.push(0);
    match zap.kind {
        ZapKind::Fat => {
            let bs = u64::from(dmu.object_info(object)?.datablksz);
            let block0 = dmu.read(object, 0, bs)?;
            let mut fat = fat::FatZap::open(dmu, object, block0);
            fat.add(&with_nul, integer_size, &value, None)?;
            fat.finish()
        }
        ZapKind::Micro => {
            let bs = dmu.object_info(object)?.datablksz;
            let mut mz = micro::MicroBlock {
                block: dmu.read(object, 0, u64::from(bs))?,
            };
            let fits = integer_size == 8 && values.len() == 1 && name.len() < MZAP_NAME_LEN;
            let slot = match mz.free_slot() {
                Some(slot) => Some(slot),
                None if bs as usize + 512 <= MZAP_MAX_BLKSZ => {
                    dmu.set_blocksize(object, bs + 512)?;
                    mz.grow_to(bs as usize + 512);
                    mz.free_slot()
                }
                None => None,
            };
            match slot {
                Some(slot) if fits => {
                    let cd = mz.unused_cd(name);
                    mz.put(slot, name, cd, values[0]);
                    dmu.write(object, 0, &mz.block)
                }
                _ => {
                    let mut fat = mzap_upgrade(dmu, object, &mz, FZAP_BLOCK_SHIFT)?;
                    fat.add(&with_nul, integer_size, &value, None)?;
                    fat.finish()
                }
            }
        }
    }
}

/// `mzap_upgrade`: the microzap's entries, with their cds, in a new fat ZAP
/// of `1 << block_shift`-byte blocks.
fn mzap_upgrade<'d, 'a>(
    dmu: &'d mut Dmu<'a>,
    object: u64,
    mz: &micro::MicroBlock,
    block_shift: u32,
) -> Result<fat::FatZap<'d, 'a>> {
    let bs = 1usize << block_shift;
    dmu.set_blocksize(object, bs as u32)?;
    let mut fat = fat::FatZap::create(dmu, object, bs, mz.salt(), mz.normflags(), 0);
    for slot in mz.slots() {
        let mut name = slot.name;
        name.push(0);
        fat.add(&name, 8, &slot.value.to_be_bytes(), Some(slot.cd))?;
    }
    Ok(fat)
}

/// Upgrades a microzap to a fat ZAP of `1 << block_shift`-byte blocks now,
/// whatever it holds: small blocks make every fat ZAP path (leaf splits, a
/// pointer table outgrowing block 0) reachable with few entries in tests.
pub fn upgrade(dmu: &mut Dmu<'_>, object: u64, block_shift: u32) -> Result<()> {
    let zap = read(dmu, object)?;
    if zap.kind == ZapKind::Fat {
        return Ok(());
    }
    let bs = dmu.object_info(object)?.datablksz;
    let mz = micro::MicroBlock {
        block: dmu.read(object, 0, u64::from(bs))?,
    };
    mzap_upgrade(dmu, object, &mz, block_shift)?.finish()
}

/// `zap_remove`: `ENOENT` if the name is not there. A fat ZAP stays fat
/// and keeps its leaves, as in ZFS.
pub fn remove(dmu: &mut Dmu<'_>, object: u64, name: &[u8]) -> Result<()> {
    let zap = read(dmu, object)?;
    let missing = || {
        fail(
            Errno::ENOENT,
            format!(
                "ZAP object {object} has no entry {:?}",
                String::from_utf8_lossy(name)
            ),
        )
    };
    let bs = dmu.object_info(object)?.datablksz;
    let block0 = dmu.read(object, 0, u64::from(bs))?;
    match zap.kind {
        ZapKind::Micro => {
            let mut mz = micro::MicroBlock { block: block0 };
            let Some(slot) = mz.slots().into_iter().find(|s| s.name == name) else {
                return missing();
            };
            mz.clear(slot.index);
            dmu.write(object, 0, &mz.block)
        }
        ZapKind::Fat => {
            let mut with_nul = name.to_vec();
            with_nul.push(0);
            let mut fat = fat::FatZap::open(dmu, object, block0);
            if !fat.remove(&with_nul)? {
                return missing();
            }
            fat.finish()
        }
    }
}

impl Zap {
    /// The values stored under `name`; `ENOENT` if there are none.
    /// Names compare exactly, as `MT_EXACT` does.
    pub fn lookup(&self, object: u64, name: &[u8]) -> Result<Vec<u64>> {
        match self.entries.iter().find(|e| e.name == name) {
            Some(e) => Ok(e.values.clone()),
            None => fail(
                Errno::ENOENT,
                format!(
                    "ZAP object {object} has no entry {:?}",
                    String::from_utf8_lossy(name)
                ),
            ),
        }
    }

    /// The single integer stored under `name`: `EOVERFLOW` for an entry of
    /// several integers, as `zap_lookup` with room for one gives.
    pub fn lookup_u64(&self, object: u64, name: &[u8]) -> Result<u64> {
        match self.lookup(object, name)?[..] {
            [v] => Ok(v),
            ref other => fail(
                Errno::EOVERFLOW,
                format!(
                    "ZAP object {object} entry {:?} holds {} integers, not one",
                    String::from_utf8_lossy(name),
                    other.len()
                ),
            ),
        }
    }
}

/// Reads a ZAP from its blocks: a microzap or a fat ZAP, told apart by the
/// first word of block 0, as `mzap_open` does.
pub fn parse(object: u64, blocks: &mut dyn ZapBlocks) -> Result<Zap> {
    let bs = blocks.block_size();
    if !(2 * MZAP_ENT_LEN..=MZAP_MAX_BLKSZ).contains(&bs) {
        // unreached: a dnode's block size is 512 to 128K (Dnode::decode refuses any other), inside
        // this range
        return Err(corrupt(object, format!("block size {bs} is not a ZAP's")));
    }
    let block0 = blocks.read_block(0)?;
    if block0.len() != bs {
        // unreached: both ZapBlocks give block 0 exactly block_size bytes: Dmu::read returns the
        // length asked for, and a Vec's block size is the length of its block 0
        return Err(corrupt(
            object,
            format!("block 0 has {} bytes, not {bs}", block0.len()),
        ));
    }
    let zap = match u64_le(&block0, 0) {
        ZBT_MICRO => parse_micro(object, &block0)?,
        ZBT_HEADER => parse_fat(object, &block0, blocks)?,
        other => {
            return Err(corrupt(
                object,
                format!(
                    "block 0 has block type {other:#x}, neither a microzap nor a fat ZAP header"
                ),
            ));
        }
    };
    let mut names = BTreeSet::new();
    for e in &zap.entries {
        if !names.insert(&e.name) {
            return Err(corrupt(
                object,
                format!("name {:?} is stored twice", e.name_lossy()),
            ));
        }
    }
    Ok(zap)
}

#[track_caller]
fn corrupt(object: u64, reason: impl std::fmt::Display) -> Error {
    Error::new(Errno::EIO, format!("ZAP object {object}: {reason}"))
}

fn u64_le(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// `mzap_open`: a header of 64 bytes, then 64-byte entries; a slot is in use
/// when its name is not empty.
fn parse_micro(object: u64, block: &[u8]) -> Result<Zap> {
    let nchunks = block.len() / MZAP_ENT_LEN - 1;
    let mut entries = Vec::new();
    for i in 0..nchunks {
        let ent = &block[MZAP_ENT_LEN * (i + 1)..MZAP_ENT_LEN * (i + 2)];
        let name = &ent[14..14 + MZAP_NAME_LEN];
        if name[0] == 0 {
            continue;
        }
        let Some(len) = name.iter().position(|&b| b == 0) else {
            return Err(corrupt(
                object,
                format!("microzap entry {i} has a name without its terminating NUL"),
            ));
        };
        entries.push(ZapEntry {
            name: name[..len].to_vec(),
            cd: u32_le(ent, 8),
            integer_size: 8,
            values: vec![u64_le(ent, 0)],
        });
    }
    Ok(Zap {
        kind: ZapKind::Micro,
        salt: u64_le(block, 8),
        flags: 0,
        entries,
    })
}

/// `zap_phys_t`, the fat ZAP header in block 0.
struct FatHeader {
    zt_blk: u64,
    zt_numblks: u64,
    zt_shift: u64,
    freeblk: u64,
    num_leafs: u64,
    num_entries: u64,
    salt: u64,
    flags: u64,
}

impl FatHeader {
    fn decode(object: u64, block: &[u8]) -> Result<FatHeader> {
        if u64_le(block, 8) != ZAP_MAGIC {
            return Err(corrupt(
                object,
                format!("fat ZAP header has magic {:#x}", u64_le(block, 8)),
            ));
        }
        Ok(FatHeader {
            zt_blk: u64_le(block, 16),
            zt_numblks: u64_le(block, 24),
            zt_shift: u64_le(block, 32),
            freeblk: u64_le(block, 56),
            num_leafs: u64_le(block, 64),
            num_entries: u64_le(block, 72),
            salt: u64_le(block, 80),
            flags: u64_le(block, 96),
        })
    }
}

/// Where the pointers to one leaf sit in the pointer table.
#[derive(Clone, Copy)]
struct PointerRun {
    first: u64,
    last: u64,
    count: u64,
}

/// A fat ZAP: the pointer table (embedded in the second half of block 0, or
/// in blocks of its own) maps hash prefixes to leaf blocks; every entry lives
/// in exactly one leaf. Each leaf is read once, however many pointers it has.
fn parse_fat(object: u64, block0: &[u8], blocks: &mut dyn ZapBlocks) -> Result<Zap> {
    let bs = block0.len();
    if !bs.is_power_of_two() {
        return Err(corrupt(
            object,
            format!("fat ZAP block size {bs} is not a power of two"),
        ));
    }
    let shift = bs.trailing_zeros();
    if !(SPA_MINBLOCKSHIFT..=SPA_MAXBLOCKSHIFT).contains(&shift) {
        // unreached: only an in-memory Vec ZapBlocks of 128- or 256-byte blocks; a dnode's blocks
        // are at least 512 bytes, so no pool's ZAP has a smaller power of two
        return Err(corrupt(
            object,
            format!("fat ZAP block size {bs} is out of range"),
        ));
    }
    let hdr = FatHeader::decode(object, block0)?;
    let nblocks = blocks.block_count();
    // Leaves are blocks 1.. below both the allocation mark and the object's end.
    let leaf_limit = hdr.freeblk.min(nblocks);

    let mut runs: BTreeMap<u64, PointerRun> = BTreeMap::new();
    let mut note = |idx: u64, leaf: u64, table: Option<(u64, u64)>| -> Result<()> {
        let in_table = table.is_some_and(|(start, n)| leaf >= start && leaf - start < n);
        if leaf == 0 || leaf >= leaf_limit || in_table {
            return Err(corrupt(
                object,
                format!(
                    "pointer table entry {idx} points to block {leaf}, which is not a leaf \
                     (leaves are blocks 1..{leaf_limit} outside the table)"
                ),
            ));
        }
        let run = runs.entry(leaf).or_insert(PointerRun {
            first: idx,
            last: idx,
            count: 0,
        });
        run.last = idx;
        run.count += 1;
        Ok(())
    };

    let embedded_shift = u64::from(shift) - 3 - 1;
    if hdr.zt_numblks == 0 {
        // ZAP_EMBEDDED_PTRTBL_ENT: the second half of block 0.
        if hdr.zt_blk != 0 || hdr.zt_shift > embedded_shift {
            return Err(corrupt(
                object,
                format!(
                    "embedded pointer table with zt_blk {} and zt_shift {} (at most {embedded_shift})",
                    hdr.zt_blk, hdr.zt_shift
                ),
            ));
        }
        let base = 1usize << embedded_shift;
        for idx in 0..1u64 << hdr.zt_shift {
            let leaf = u64_le(block0, (base + idx as usize) * 8);
            note(idx, leaf, None)?;
        }
    } else {
        let per_block_shift = u64::from(shift) - 3;
        let table_end = hdr.zt_blk.checked_add(hdr.zt_numblks);
        let consistent = hdr.zt_shift <= ZAP_MAX_HASHBITS
            && hdr.zt_shift >= per_block_shift
            && hdr.zt_numblks == 1 << (hdr.zt_shift - per_block_shift)
            && hdr.zt_blk >= 1
            && table_end.is_some_and(|end| end <= nblocks);
        if !consistent {
            return Err(corrupt(
                object,
                format!(
                    "pointer table of {} blocks at block {} with zt_shift {} does not fit \
                     an object of {nblocks} blocks of {bs} bytes",
                    hdr.zt_numblks, hdr.zt_blk, hdr.zt_shift
                ),
            ));
        }
        let table = Some((hdr.zt_blk, hdr.zt_numblks));
        for b in 0..hdr.zt_numblks {
            let block = read_exact(object, blocks, hdr.zt_blk + b, bs)?;
            for (i, word) in block.chunks_exact(8).enumerate() {
                let idx = (b << per_block_shift) + i as u64;
                note(idx, u64_le(word, 0), table)?;
            }
        }
    }
    if runs.len() as u64 != hdr.num_leafs {
        return Err(corrupt(
            object,
            format!(
                "pointer table reaches {} leaves, the header counts {}",
                runs.len(),
                hdr.num_leafs
            ),
        ));
    }

    let mut entries = Vec::new();
    for (&blkid, run) in &runs {
        let block = read_exact(object, blocks, blkid, bs)?;
        let leaf = Leaf::open(object, blkid, &block, hdr.zt_shift)?;
        // A leaf of prefix p and length n owns the 2^(zt_shift - n)
        // consecutive pointers whose top n index bits are p.
        let span_shift = hdr.zt_shift - u64::from(leaf.prefix_len);
        let want_first = leaf.prefix << span_shift;
        if run.count != 1 << span_shift
            || run.first != want_first
            || run.last - run.first + 1 != run.count
        {
            return Err(corrupt(
                object,
                format!(
                    "leaf block {blkid} (prefix {:#x}/{}) has {} pointers from entry {}, \
                     not {} from entry {want_first}",
                    leaf.prefix,
                    leaf.prefix_len,
                    run.count,
                    run.first,
                    1u64 << span_shift
                ),
            ));
        }
        leaf.entries(hdr.flags, &mut entries)?;
    }
    if entries.len() as u64 != hdr.num_entries {
        return Err(corrupt(
            object,
            format!(
                "leaves hold {} entries, the header counts {}",
                entries.len(),
                hdr.num_entries
            ),
        ));
    }
    Ok(Zap {
        kind: ZapKind::Fat,
        salt: hdr.salt,
        flags: hdr.flags,
        entries,
    })
}

fn read_exact(object: u64, blocks: &mut dyn ZapBlocks, blkid: u64, bs: usize) -> Result<Vec<u8>> {
    let block = blocks.read_block(blkid)?;
    if block.len() != bs {
        // unreached: only an in-memory Vec ZapBlocks with a short block (tests); Dmu::read always
        // returns the block size asked for
        return Err(corrupt(
            object,
            format!("block {blkid} has {} bytes, not {bs}", block.len()),
        ));
    }
    Ok(block)
}

/// A leaf block (`zap_leaf_phys_t`): a header, a hash table of chunk
/// indices, then `ZAP_LEAF_NUMCHUNKS` 24-byte chunks.
struct Leaf<'b> {
    object: u64,
    blkid: u64,
    block: &'b [u8],
    prefix: u64,
    prefix_len: u16,
    nentries: u16,
    /// `ZAP_LEAF_HASH_SHIFT`.
    hash_shift: u32,
    nchunks: usize,
}

/// `le_*` of an entry chunk.
struct LeafEntry {
    value_intlen: u8,
    next: u16,
    name_chunk: u16,
    name_numints: u16,
    value_chunk: u16,
    value_numints: u16,
    cd: u32,
    hash: u64,
}

impl<'b> Leaf<'b> {
    fn open(object: u64, blkid: u64, block: &'b [u8], zt_shift: u64) -> Result<Leaf<'b>> {
        let shift = block.len().trailing_zeros();
        let hash_shift = shift - 5;
        let nhash = 1usize << hash_shift;
        let nchunks = (block.len() - 2 * nhash) / ZAP_LEAF_CHUNKSIZE - 2;
        let leaf = Leaf {
            object,
            blkid,
            block,
            prefix: u64_le(block, 16),
            prefix_len: u16_le(block, 32),
            nentries: u16_le(block, 30),
            hash_shift,
            nchunks,
        };
        if u64_le(block, 0) != ZBT_LEAF {
            return Err(leaf.corrupt(format!("block type {:#x}, not a leaf", u64_le(block, 0))));
        }
        if u32_le(block, 24) != ZAP_LEAF_MAGIC {
            return Err(leaf.corrupt(format!("leaf magic {:#x}", u32_le(block, 24))));
        }
        if u64::from(leaf.prefix_len) > zt_shift
            || (leaf.prefix_len < 64 && leaf.prefix >> leaf.prefix_len != 0)
        {
            return Err(leaf.corrupt(format!(
                "hash prefix {:#x} of {} bits does not fit a pointer table of {zt_shift} bits",
                leaf.prefix, leaf.prefix_len
            )));
        }
        Ok(leaf)
    }

    #[track_caller]
    fn corrupt(&self, reason: impl std::fmt::Display) -> Error {
        corrupt(self.object, format!("leaf block {}: {reason}", self.blkid))
    }

    fn chunk(&self, idx: usize) -> &'b [u8] {
        let start = ZAP_LEAF_HEADER_SIZE + 2 * (1 << self.hash_shift) + idx * ZAP_LEAF_CHUNKSIZE;
        &self.block[start..start + ZAP_LEAF_CHUNKSIZE]
    }

    fn chunk_type(&self, idx: usize) -> u8 {
        self.chunk(idx)[0]
    }

    fn entry(&self, idx: usize) -> LeafEntry {
        let c = self.chunk(idx);
        LeafEntry {
            value_intlen: c[1],
            next: u16_le(c, 2),
            name_chunk: u16_le(c, 4),
            name_numints: u16_le(c, 6),
            value_chunk: u16_le(c, 8),
            value_numints: u16_le(c, 10),
            cd: u32_le(c, 12),
            hash: u64_le(c, 16),
        }
    }

    /// `LEAF_HASH`: the bucket of a hash, from the bits after the prefix.
    fn bucket_of(&self, hash: u64) -> usize {
        let down = 64 - self.hash_shift - u32::from(self.prefix_len);
        ((hash >> down) & ((1 << self.hash_shift) - 1)) as usize
    }

    /// Appends every entry of the leaf, in chunk order, after checking that
    /// the hash chains reach each entry chunk exactly once, from its bucket.
    fn entries(&self, zap_flags: u64, out: &mut Vec<ZapEntry>) -> Result<()> {
        for idx in 0..self.nchunks {
            let t = self.chunk_type(idx);
            if !matches!(t, ZAP_CHUNK_ENTRY | ZAP_CHUNK_ARRAY | ZAP_CHUNK_FREE) {
                return Err(self.corrupt(format!("chunk {idx} has unknown type {t}")));
            }
        }

        let mut chained = vec![false; self.nchunks];
        for bucket in 0..1usize << self.hash_shift {
            let mut idx = u16_le(self.block, ZAP_LEAF_HEADER_SIZE + 2 * bucket);
            while idx != CHAIN_END {
                let i = usize::from(idx);
                if i >= self.nchunks {
                    return Err(self.corrupt(format!(
                        "hash chain of bucket {bucket} reaches chunk {i}, past the {} chunks",
                        self.nchunks
                    )));
                }
                if self.chunk_type(i) != ZAP_CHUNK_ENTRY {
                    return Err(self.corrupt(format!(
                        "hash chain of bucket {bucket} reaches chunk {i}, which is not an entry"
                    )));
                }
                if chained[i] {
                    return Err(self.corrupt(format!(
                        "hash chain of bucket {bucket} reaches chunk {i} a second time (a loop)"
                    )));
                }
                chained[i] = true;
                let le = self.entry(i);
                let prefix_ok = self.prefix_len == 0
                    || le.hash >> (64 - u32::from(self.prefix_len)) == self.prefix;
                if !prefix_ok || self.bucket_of(le.hash) != bucket {
                    return Err(self.corrupt(format!(
                        "entry chunk {i} with hash {:#x} is in bucket {bucket} of a leaf \
                         with prefix {:#x}/{}",
                        le.hash, self.prefix, self.prefix_len
                    )));
                }
                idx = le.next;
            }
        }

        let mut used = vec![false; self.nchunks];
        let mut count = 0usize;
        let key_len = if zap_flags & ZAP_FLAG_UINT64_KEY != 0 {
            8
        } else {
            1
        };
        for (idx, &in_chain) in chained.iter().enumerate() {
            if self.chunk_type(idx) != ZAP_CHUNK_ENTRY {
                continue;
            }
            if !in_chain {
                return Err(self.corrupt(format!("entry chunk {idx} is in no hash chain")));
            }
            count += 1;
            let le = self.entry(idx);
            if !matches!(le.value_intlen, 1 | 2 | 4 | 8) {
                return Err(self.corrupt(format!(
                    "entry chunk {idx} has values of {} bytes",
                    le.value_intlen
                )));
            }
            let name_bytes = usize::from(le.name_numints) * key_len;
            let name_max = if key_len == 1 {
                ZAP_MAXNAMELEN
            } else {
                ZAP_MAXVALUELEN
            };
            if le.name_numints == 0 || name_bytes > name_max {
                return Err(self.corrupt(format!(
                    "entry chunk {idx} has a name of {name_bytes} bytes"
                )));
            }
            let value_bytes = usize::from(le.value_numints) * usize::from(le.value_intlen);
            if value_bytes > ZAP_MAXVALUELEN {
                return Err(self.corrupt(format!(
                    "entry chunk {idx} has a value of {value_bytes} bytes"
                )));
            }
            let mut name = self.read_array(idx, "name", le.name_chunk, name_bytes, &mut used)?;
            if key_len == 1 {
                // The stored name includes its NUL, and has no other.
                if name.pop() != Some(0) || name.contains(&0) {
                    return Err(self.corrupt(format!(
                        "entry chunk {idx} has a name that is not one NUL-terminated string"
                    )));
                }
            }
            let value = self.read_array(idx, "value", le.value_chunk, value_bytes, &mut used)?;
            let values = value
                .chunks_exact(usize::from(le.value_intlen))
                .map(|int| int.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
                .collect();
            out.push(ZapEntry {
                name,
                cd: le.cd,
                integer_size: le.value_intlen,
                values,
            });
        }
        if count != usize::from(self.nentries) {
            return Err(self.corrupt(format!(
                "{count} entry chunks, the header counts {}",
                self.nentries
            )));
        }
        Ok(())
    }

    /// `zap_leaf_array_read`: `len` bytes from a chain of array chunks that
    /// must be exactly as long as they need and belong to nobody else.
    fn read_array(
        &self,
        entry: usize,
        what: &str,
        first: u16,
        len: usize,
        used: &mut [bool],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        let mut idx = first;
        while out.len() < len {
            let i = usize::from(idx);
            if idx == CHAIN_END {
                return Err(self.corrupt(format!(
                    "entry chunk {entry}: {what} chain ends after {} of {len} bytes",
                    out.len()
                )));
            }
            if i >= self.nchunks {
                return Err(self.corrupt(format!(
                    "entry chunk {entry}: {what} chain reaches chunk {i}, past the {} chunks",
                    self.nchunks
                )));
            }
            if self.chunk_type(i) != ZAP_CHUNK_ARRAY {
                return Err(self.corrupt(format!(
                    "entry chunk {entry}: {what} chain reaches chunk {i}, which is not an array"
                )));
            }
            if used[i] {
                return Err(self.corrupt(format!(
                    "entry chunk {entry}: {what} chain reaches chunk {i}, already used \
                     (a loop or a shared chain)"
                )));
            }
            used[i] = true;
            let c = self.chunk(i);
            let n = (len - out.len()).min(ZAP_LEAF_ARRAY_BYTES);
            out.extend_from_slice(&c[1..1 + n]);
            idx = u16_le(c, 1 + ZAP_LEAF_ARRAY_BYTES);
        }
        if idx != CHAIN_END {
            return Err(self.corrupt(format!(
                "entry chunk {entry}: {what} chain goes on past its {len} bytes"
            )));
        }
        Ok(out)
    }
}
