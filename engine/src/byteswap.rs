//! Byte-order conversion of DMU object contents by object type, as the receive
//! side of `dmu_send.c` applies it to bonus buffers and WRITE data that come from
//! a host of the other byte order. The ten swap functions follow the illumos
//! (2013) `dmu_ot_byteswap[]`, by the classes of the object type table
//! ([`crate::dmu::object_type`]); every swap stays inside the buffer it is
//! given, whatever that buffer holds.

use crate::dmu::object_type::{ByteswapClass, DMU_OT_NONE, byteswap_class};

type B = ByteswapClass;

/// Converts `buf` in place from the other byte order to this host's, as
/// `dmu_ot_byteswap[class].ob_func(buf, buf.len())` does on receive.
///
/// Control fields that steer the walk (ACL version, ACE flags and type) are
/// read after swapping, i.e. in host order, like the C code; so this is not its
/// own inverse for [`ByteswapClass::Znode`], [`ByteswapClass::Acl`] and the
/// classes that embed them: use [`byteswap_to_foreign`] to go back.
///
/// Bounds (where the C code asserts or overruns, this stops instead):
/// - a field that does not lie wholly inside `buf` is left alone, as are
///   partial trailing words and a partial trailing dnode;
/// - a ZAP block shorter than 8 bytes is left alone (C reads its block type
///   past the end); a leaf smaller than 32 bytes has no hash table or chunks;
/// - each dnode's block-pointer, bonus and spill swaps stay inside its own
///   512 bytes (C lets `dn_nblkptr > 3` run into the following dnodes);
/// - a bonus whose type is invalid is not swapped (C indexes past its tables);
/// - znode and objset structures cut short by `buf` are swapped up to its end.
pub fn byteswap(class: ByteswapClass, buf: &mut [u8]) {
    swap_class(class, buf, Dir::ToHost);
}

/// Exact inverse of [`byteswap`]: converts host-order contents to the other
/// byte order, reading control fields before swapping them.
///
/// For building foreign-order data (tests, sending as another host would);
/// `byteswap(c, b)` after `byteswap_to_foreign(c, b)` restores `b`, and vice
/// versa, except that free dnodes (type 0) come back zeroed, as ZFS does.
pub fn byteswap_to_foreign(class: ByteswapClass, buf: &mut [u8]) {
    swap_class(class, buf, Dir::ToForeign);
}

/// Which side of a swap is in host order, and so where control fields are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Foreign input: read a control field after swapping it (the C behaviour).
    ToHost,
    /// Host input: read a control field before swapping it.
    ToForeign,
}

fn swap_class(class: ByteswapClass, buf: &mut [u8], dir: Dir) {
    match class {
        B::Uint8 => {}
        B::Uint16 => swap_array(buf, 2),
        B::Uint32 => swap_array(buf, 4),
        B::Uint64 => swap_array(buf, 8),
        B::Zap => zap_byteswap(buf),
        B::Dnode => dnode_buf_byteswap(buf, dir),
        B::Objset => objset_byteswap(buf, dir),
        B::Znode => znode_byteswap(buf, dir),
        B::OldAcl => oldace_byteswap(buf, buf.len() / ACE_T_SIZE),
        B::Acl => zfs_ace_byteswap(buf, dir),
    }
}

// ---- field helpers: every access is bounds-checked, nothing can panic ----

/// Swaps every whole `width`-byte word; a partial trailing word is left alone.
fn swap_array(buf: &mut [u8], width: usize) {
    for word in buf.chunks_exact_mut(width) {
        word.reverse();
    }
}

/// Swaps the `width`-byte field at `off` if it lies wholly inside `buf`.
fn swap_field(buf: &mut [u8], off: usize, width: usize) {
    if let Some(field) = off.checked_add(width).and_then(|end| buf.get_mut(off..end)) {
        field.reverse();
    }
}

fn read_ne<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    buf.get(off..end)?.try_into().ok()
}

fn read_u16(buf: &[u8], off: usize) -> Option<u16> {
    read_ne(buf, off).map(u16::from_ne_bytes)
}

fn read_u64(buf: &[u8], off: usize) -> Option<u64> {
    read_ne(buf, off).map(u64::from_ne_bytes)
}

/// Swaps a `u16` control field and returns its host-order value.
fn swap_read_u16(buf: &mut [u8], off: usize, dir: Dir) -> Option<u16> {
    match dir {
        Dir::ToHost => {
            swap_field(buf, off, 2);
            read_u16(buf, off)
        }
        Dir::ToForeign => {
            let v = read_u16(buf, off);
            swap_field(buf, off, 2);
            v
        }
    }
}

/// `buf[start..end]` clipped to the buffer.
fn clip(buf: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let len = buf.len();
    let start = start.min(len);
    &mut buf[start..end.clamp(start, len)]
}

// ---- ZAP (zap_micro.c, zap.c, zap_leaf.c) ----

const ZBT_LEAF: u64 = 1 << 63;
const ZBT_MICRO: u64 = (1 << 63) + 3;
const MZAP_ENT_LEN: usize = 64;
const ZAP_LEAF_CHUNKSIZE: usize = 24;
/// Size of `zap_leaf_header`, i.e. two chunks.
const ZAP_LEAF_HDR_SIZE: usize = 48;
const ZAP_CHUNK_FREE: u8 = 253;
const ZAP_CHUNK_ENTRY: u8 = 252;
const ZAP_CHUNK_ARRAY: u8 = 251;

/// `zap_byteswap`: the block type is compared in both orders, so micro vs fat
/// is decided the same way whichever order the block is in.
fn zap_byteswap(buf: &mut [u8]) {
    let Some(block_type) = read_u64(buf, 0) else {
        return;
    };
    if block_type == ZBT_MICRO || block_type == ZBT_MICRO.swap_bytes() {
        mzap_byteswap(buf);
    } else if block_type == ZBT_LEAF || block_type == ZBT_LEAF.swap_bytes() {
        zap_leaf_byteswap(buf);
    } else {
        // Fat ZAP header (ZBT_HEADER) or pointer-table block: all u64 words.
        swap_array(buf, 8);
    }
}

/// `mzap_byteswap`: header words, then each entry's value and cd; names and
/// `mze_pad` are untouched.
fn mzap_byteswap(buf: &mut [u8]) {
    for off in [0, 8, 16] {
        swap_field(buf, off, 8); // mz_block_type, mz_salt, mz_normflags
    }
    let entries = (buf.len() / MZAP_ENT_LEN).saturating_sub(1);
    for i in 1..=entries {
        let e = i * MZAP_ENT_LEN;
        swap_field(buf, e, 8); // mze_value
        swap_field(buf, e + 8, 4); // mze_cd
    }
}

/// `zap_leaf_byteswap`: the geometry comes from the buffer size (block shift =
/// highest bit of the size), each chunk is swapped by its one-byte type.
fn zap_leaf_byteswap(buf: &mut [u8]) {
    let Some(bs) = buf.len().checked_ilog2() else {
        return;
    };
    let bs = bs as usize;
    swap_field(buf, 0, 8); // lh_block_type
    swap_field(buf, 16, 8); // lh_prefix
    swap_field(buf, 24, 4); // lh_magic
    for off in [28, 30, 32, 34] {
        swap_field(buf, off, 2); // lh_nfree, lh_nentries, lh_prefix_len, lh_freelist
    }
    // ZAP_LEAF_HASH_SHIFT is bs - 5; C shifts by a negative count below 32 bytes.
    let hash_entries = if bs >= 5 { 1usize << (bs - 5) } else { 0 };
    for i in 0..hash_entries {
        swap_field(buf, ZAP_LEAF_HDR_SIZE + 2 * i, 2);
    }
    let chunks = (((1usize << bs) - 2 * hash_entries) / ZAP_LEAF_CHUNKSIZE).saturating_sub(2);
    let base = ZAP_LEAF_HDR_SIZE + 2 * hash_entries;
    for i in 0..chunks {
        let c = base + i * ZAP_LEAF_CHUNKSIZE;
        match buf.get(c).copied() {
            Some(ZAP_CHUNK_ENTRY) => {
                // le_next, le_name_chunk, le_name_numints, le_value_chunk,
                // le_value_numints; then le_cd and le_hash.
                for off in [2, 4, 6, 8, 10] {
                    swap_field(buf, c + off, 2);
                }
                swap_field(buf, c + 12, 4);
                swap_field(buf, c + 16, 8);
            }
            // la_next / lf_next; array bytes are stored byte-wise already.
            Some(ZAP_CHUNK_FREE | ZAP_CHUNK_ARRAY) => swap_field(buf, c + 22, 2),
            _ => {}
        }
    }
}

// ---- dnodes and objsets (dnode.c, dmu_objset.c) ----

const DNODE_SIZE: usize = 512;
const BLKPTR_SIZE: usize = 128;
const DN_BLKPTR_OFF: usize = 64;
const DN_SPILL_OFF: usize = 384;
const DNODE_FLAG_SPILL_BLKPTR: u8 = 1 << 2;
const OBJSET_PHYS_SIZE: usize = 2048;

/// `dnode_buf_byteswap`: every whole 512-byte dnode.
fn dnode_buf_byteswap(buf: &mut [u8], dir: Dir) {
    for dn in buf.chunks_exact_mut(DNODE_SIZE) {
        dnode_byteswap(dn, dir);
    }
}

/// `dnode_byteswap` on one dnode slot (at most 512 bytes). Every decision reads
/// a one-byte field or tests a `u16` for zero, so it is byte-order independent;
/// only the bonus and spill steps overlap, hence their order flips with `dir`.
fn dnode_byteswap(dn: &mut [u8], dir: Dir) {
    let dn = clip(dn, 0, DNODE_SIZE);
    let Some(&dn_type) = dn.first() else {
        return;
    };
    if u32::from(dn_type) == DMU_OT_NONE {
        dn.fill(0); // a free dnode is cleared, as ZFS does
        return;
    }
    let byte = |off: usize| dn.get(off).copied().unwrap_or(0);
    let nblkptr = usize::from(byte(3));
    let bonus_class = byteswap_class(u32::from(byte(4)));
    let spill = byte(7) & DNODE_FLAG_SPILL_BLKPTR != 0;
    let has_bonus = read_u16(dn, 10).is_some_and(|len| len != 0);
    // The bonus runs from behind the last block pointer to the end of the dnode.
    let bonus_start = DN_BLKPTR_OFF + nblkptr * BLKPTR_SIZE;

    if dir == Dir::ToForeign && spill {
        swap_array(clip(dn, DN_SPILL_OFF, DNODE_SIZE), 8);
    }
    swap_field(dn, 8, 2); // dn_datablkszsec
    swap_field(dn, 10, 2); // dn_bonuslen
    swap_field(dn, 16, 8); // dn_maxblkid
    swap_field(dn, 24, 8); // dn_used
    swap_array(clip(dn, DN_BLKPTR_OFF, bonus_start), 8);
    if has_bonus && let Some(class) = bonus_class {
        swap_class(class, clip(dn, bonus_start, DNODE_SIZE), dir);
    }
    if dir == Dir::ToHost && spill {
        swap_array(clip(dn, DN_SPILL_OFF, DNODE_SIZE), 8);
    }
}

/// `dmu_objset_byteswap`: meta-dnode, ZIL header, type and flags; the
/// user/group-used dnodes only when the buffer is exactly `objset_phys_t`
/// (2048 bytes), as C tests, not for the old 1024-byte layout.
fn objset_byteswap(buf: &mut [u8], dir: Dir) {
    dnode_byteswap(clip(buf, 0, DNODE_SIZE), dir);
    swap_array(clip(buf, 512, 704), 8); // zil_header_t: all u64 words
    swap_field(buf, 704, 8); // os_type
    swap_field(buf, 712, 8); // os_flags
    if buf.len() == OBJSET_PHYS_SIZE {
        dnode_byteswap(&mut buf[1024..1536], dir);
        dnode_byteswap(&mut buf[1536..2048], dir);
    }
}

// ---- ZPL: znode and ACLs (zfs_byteswap.c) ----

const ZNODE_ACL_OFF: usize = 176;
const ZNODE_ACE_DATA_OFF: usize = 192;
const ZFS_ACE_SPACE: usize = ACE_SLOT_CNT * ACE_T_SIZE;
const ACE_SLOT_CNT: usize = 6;
const ACE_T_SIZE: usize = 12;
const ZFS_ACL_VERSION_FUID: u16 = 1;
const ZFS_ACE_HDR_SIZE: usize = 8;
const ZFS_ACE_SIZE: usize = 16;
const ZFS_OBJECT_ACE_SIZE: usize = 48;
const ACE_IDENTIFIER_GROUP: u16 = 0x0040;
const ACE_OWNER: u16 = 0x1000;
const ACE_GROUP: u16 = 0x2000;
const ACE_EVERYONE: u16 = 0x4000;
const ACE_TYPE_FLAGS: u16 = ACE_OWNER | ACE_GROUP | ACE_EVERYONE | ACE_IDENTIFIER_GROUP;
const ACE_GROUP_AT: u16 = ACE_IDENTIFIER_GROUP | ACE_GROUP;
const ACE_OBJECT_TYPES: std::ops::RangeInclusive<u16> = 0x05..=0x08;

/// `zfs_znode_byteswap`: all 22 `u64` fields, the `zfs_acl_phys_t` header, and
/// the 72 bytes of inline ACEs in FUID layout if the (host-order) ACL version
/// is 1, else as six old `ace_t`s.
fn znode_byteswap(buf: &mut [u8], dir: Dir) {
    swap_array(clip(buf, 0, ZNODE_ACL_OFF), 8);
    swap_field(buf, ZNODE_ACL_OFF, 8); // z_acl_extern_obj
    swap_field(buf, ZNODE_ACL_OFF + 8, 4); // z_acl_size
    let version = swap_read_u16(buf, ZNODE_ACL_OFF + 12, dir);
    swap_field(buf, ZNODE_ACL_OFF + 14, 2); // z_acl_count
    let aces = clip(buf, ZNODE_ACE_DATA_OFF, ZNODE_ACE_DATA_OFF + ZFS_ACE_SPACE);
    if version == Some(ZFS_ACL_VERSION_FUID) {
        zfs_ace_byteswap(aces, dir);
    } else {
        oldace_byteswap(aces, ACE_SLOT_CNT);
    }
}

/// `zfs_oldace_byteswap`: `count` 12-byte `ace_t`s (who, mask, flags, type).
fn oldace_byteswap(buf: &mut [u8], count: usize) {
    for i in 0..count {
        let a = i * ACE_T_SIZE;
        swap_field(buf, a, 4);
        swap_field(buf, a + 4, 4);
        swap_field(buf, a + 8, 2);
        swap_field(buf, a + 10, 2);
    }
}

/// `zfs_ace_byteswap` in FUID layout: variable-size ACEs whose size follows
/// from their host-order flags and type; swapping stops where an ACE header no
/// longer fits, and a FUID is swapped only if it fits, as in C.
fn zfs_ace_byteswap(buf: &mut [u8], dir: Dir) {
    let end = buf.len();
    let mut ptr = 0;
    while end - ptr >= ZFS_ACE_HDR_SIZE {
        swap_field(buf, ptr + 4, 4); // z_access_mask
        let flags = swap_read_u16(buf, ptr + 2, dir).unwrap_or(0);
        let ace_type = swap_read_u16(buf, ptr, dir).unwrap_or(0);
        let size = match flags & ACE_TYPE_FLAGS {
            ACE_OWNER | ACE_EVERYONE | ACE_GROUP_AT => ZFS_ACE_HDR_SIZE,
            _ if end - ptr < ZFS_ACE_SIZE => ZFS_ACE_SIZE,
            _ => {
                swap_field(buf, ptr + 8, 8); // z_fuid
                if ACE_OBJECT_TYPES.contains(&ace_type) {
                    ZFS_OBJECT_ACE_SIZE
                } else {
                    ZFS_ACE_SIZE
                }
            }
        };
        match ptr.checked_add(size) {
            Some(next) if next < end => ptr = next,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmu::object_type::{DMU_OT_MASTER_NODE, DMU_OT_ZNODE, DMU_OTN_UINT64_METADATA};
    use std::collections::HashMap;

    const ZBT_HEADER: u64 = (1 << 63) + 1;
    const ZAP_MAGIC: u64 = 0x2_F52A_B2AB;
    const ZAP_LEAF_MAGIC: u64 = 0x2AB_1EAF;

    /// xorshift64 with fixed seeds, so every run sees the same bytes.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn byte(&mut self) -> u8 {
            (self.next() >> 24) as u8
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.byte()).collect()
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// Little-endian structure bytes to big-endian ones, on any host.
    fn le_to_be(class: ByteswapClass, buf: &mut [u8]) {
        if cfg!(target_endian = "little") {
            byteswap_to_foreign(class, buf);
        } else {
            byteswap(class, buf);
        }
    }

    /// Big-endian structure bytes to little-endian ones, on any host.
    fn be_to_le(class: ByteswapClass, buf: &mut [u8]) {
        if cfg!(target_endian = "little") {
            byteswap(class, buf);
        } else {
            byteswap_to_foreign(class, buf);
        }
    }

    /// Writes the low `width` bytes of `v` at `off` in the chosen byte order.
    fn put(buf: &mut [u8], off: usize, width: usize, v: u64, be: bool) {
        for i in 0..width {
            let shift = 8 * if be { width - 1 - i } else { i };
            buf[off + i] = (v >> shift) as u8;
        }
    }

    /// Reads a `width`-byte integer at `off` in the chosen byte order.
    fn get(buf: &[u8], off: usize, width: usize, be: bool) -> u64 {
        (0..width).fold(0, |v, i| {
            let b = if be {
                buf[off + i]
            } else {
                buf[off + width - 1 - i]
            };
            (v << 8) | u64::from(b)
        })
    }

    /// Converting the little-endian form gives the big-endian one and back.
    fn check_pair(class: ByteswapClass, le: &[u8], be: &[u8]) {
        let mut x = le.to_vec();
        le_to_be(class, &mut x);
        assert!(x == be, "{class:?}: LE -> BE differs");
        let mut y = be.to_vec();
        be_to_le(class, &mut y);
        assert!(y == le, "{class:?}: BE -> LE differs");
    }

    // ---- known answers: each structure built once per byte order ----

    fn build_mzap(be: bool) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        put(&mut b, 0, 8, ZBT_MICRO, be);
        put(&mut b, 8, 8, 0x1234_5678_9abc_def0, be);
        put(&mut b, 16, 8, 0x2, be);
        let entries: [(u64, u64, &[u8]); 2] = [
            (0x8000_0000_0000_0005, 0, b"file.txt"),
            (0x4000_0000_0000_0009, 1, b"subdir"),
        ];
        for (i, (value, cd, name)) in entries.into_iter().enumerate() {
            let e = 64 * (i + 1);
            put(&mut b, e, 8, value, be);
            put(&mut b, e + 8, 4, cd, be);
            b[e + 14..e + 14 + name.len()].copy_from_slice(name);
        }
        b
    }

    #[test]
    fn microzap_two_entries() {
        check_pair(B::Zap, &build_mzap(false), &build_mzap(true));
        // Entries are counted as size / 64 - 1, so a partial trailing entry is
        // not swapped even where its value and cd would fit.
        let (mut le, be) = (build_mzap(false), build_mzap(true));
        le.truncate(150);
        let mut x = le.clone();
        le_to_be(B::Zap, &mut x);
        assert_eq!(x[..128], be[..128]);
        assert_eq!(x[128..], le[128..]);
    }

    const LEAF_SIZE: usize = 16384;
    const LEAF_HASH: usize = 512;
    const LEAF_BASE: usize = 48 + 2 * LEAF_HASH;
    const LEAF_CHUNKS: usize = (LEAF_SIZE - 2 * LEAF_HASH) / 24 - 2;

    fn build_leaf(be: bool) -> Vec<u8> {
        let mut b = vec![0u8; LEAF_SIZE];
        put(&mut b, 0, 8, ZBT_LEAF, be);
        put(&mut b, 16, 8, 0x5, be); // lh_prefix
        put(&mut b, 24, 4, ZAP_LEAF_MAGIC, be);
        put(&mut b, 28, 2, (LEAF_CHUNKS - 4) as u64, be); // lh_nfree
        put(&mut b, 30, 2, 1, be); // lh_nentries
        put(&mut b, 32, 2, 3, be); // lh_prefix_len
        put(&mut b, 34, 2, 4, be); // lh_freelist
        b[36] = 1; // lh_flags
        for i in 0..LEAF_HASH {
            put(&mut b, 48 + 2 * i, 2, if i == 17 { 0 } else { 0xffff }, be);
        }
        let chunk = |i: usize| LEAF_BASE + 24 * i;
        let c = chunk(0); // entry
        b[c] = ZAP_CHUNK_ENTRY;
        b[c + 1] = 8;
        for (off, v) in [(2, 0xffff), (4, 1), (6, 6), (8, 2), (10, 1)] {
            put(&mut b, c + off, 2, v, be);
        }
        put(&mut b, c + 12, 4, 7, be);
        put(&mut b, c + 16, 8, 0x1122_3344_5566_7788, be);
        let c = chunk(1); // name array
        b[c] = ZAP_CHUNK_ARRAY;
        b[c + 1..c + 7].copy_from_slice(b"hello\0");
        put(&mut b, c + 22, 2, 0xffff, be);
        let c = chunk(2); // value array: ZAP stores integers MSB first anyway
        b[c] = ZAP_CHUNK_ARRAY;
        b[c + 1..c + 9].copy_from_slice(&42u64.to_be_bytes());
        put(&mut b, c + 22, 2, 0xffff, be);
        let c = chunk(3); // unknown chunk type: left exactly as it is
        for (i, x) in b[c..c + 24].iter_mut().enumerate() {
            *x = 0x11 + i as u8;
        }
        for i in 4..LEAF_CHUNKS {
            let c = chunk(i);
            b[c] = ZAP_CHUNK_FREE;
            let next = if i + 1 == LEAF_CHUNKS {
                0xffff
            } else {
                i as u64 + 1
            };
            put(&mut b, c + 22, 2, next, be);
        }
        assert_eq!(chunk(LEAF_CHUNKS), LEAF_SIZE);
        b
    }

    #[test]
    fn fat_zap_leaf() {
        check_pair(B::Zap, &build_leaf(false), &build_leaf(true));
    }

    fn build_fat_header(be: bool) -> Vec<u8> {
        let mut b = vec![0u8; LEAF_SIZE];
        let words = [
            ZBT_HEADER,
            ZAP_MAGIC,
            0,
            0,
            10,
            0,
            0,
            2,
            1,
            1000,
            0xfeed_f00d,
            0,
            0,
        ];
        for (i, w) in words.into_iter().enumerate() {
            put(&mut b, 8 * i, 8, w, be);
        }
        for i in LEAF_SIZE / 16..LEAF_SIZE / 8 {
            put(&mut b, 8 * i, 8, 1 + (i as u64 & 1), be); // embedded pointer table
        }
        b
    }

    #[test]
    fn fat_zap_header_and_pointer_block() {
        check_pair(B::Zap, &build_fat_header(false), &build_fat_header(true));
        // Any other first word is a pointer-table block: plain u64 words.
        let le: Vec<u8> = (1..=64u64).flat_map(u64::to_le_bytes).collect();
        let be: Vec<u8> = (1..=64u64).flat_map(u64::to_be_bytes).collect();
        check_pair(B::Zap, &le, &be);
    }

    /// Six FUID-layout ACEs filling the 72 inline bytes: three abstract
    /// (8 bytes), a user and a group ACE (16), an object ACE cut at 16 bytes.
    fn put_fuid_aces(b: &mut [u8], a: usize, be: bool) {
        let aces: [(u64, u64, u64, Option<u64>); 6] = [
            (0, 0x1000, 0x0016_00a9, None),
            (0, 0x2040, 0x0012_0081, None),
            (1, 0x4000, 0x0000_0006, None),
            (0, 0x0003, 0x001f_01ff, Some(0x0000_0001_0000_03e8)),
            (1, 0x0040, 0x0000_0002, Some(0x0000_0002_0000_0064)),
            (5, 0x0000, 0x0000_0020, Some(0x0102_0304_0506_0708)),
        ];
        let mut p = a;
        for (ty, flags, mask, fuid) in aces {
            put(b, p, 2, ty, be);
            put(b, p + 2, 2, flags, be);
            put(b, p + 4, 4, mask, be);
            p += 8;
            if let Some(f) = fuid {
                put(b, p, 8, f, be);
                p += 8;
            }
        }
        assert_eq!(p, a + 72);
    }

    fn put_old_aces(b: &mut [u8], a: usize, count: usize, be: bool) {
        for i in 0..count {
            let p = a + 12 * i;
            let i = i as u64;
            put(b, p, 4, 1000 + i, be);
            put(b, p + 4, 4, 0x0016_0000 | i, be);
            put(b, p + 8, 2, 0x1000 >> (i % 4), be);
            put(b, p + 10, 2, i % 2, be);
        }
    }

    /// A `znode_phys_t` at `off`; every `u64` field gets a distinct value.
    fn put_znode(b: &mut [u8], off: usize, be: bool, fuid: bool) {
        for i in 0..22u64 {
            put(
                b,
                off + 8 * i as usize,
                8,
                0x0102_0000_0000_0000 * (i + 1) + i,
                be,
            );
        }
        put(b, off + 72, 8, 0o100_644, be); // zp_mode
        put(b, off + 80, 8, 2_900_000, be); // zp_size
        put(b, off + 176, 8, 0, be); // z_acl_extern_obj
        if fuid {
            put(b, off + 184, 4, 72, be);
            put(b, off + 188, 2, 1, be);
            put(b, off + 190, 2, 6, be);
            put_fuid_aces(b, off + 192, be);
        } else {
            put(b, off + 184, 4, 6, be);
            put(b, off + 188, 2, 0, be);
            put(b, off + 190, 2, 0, be);
            put_old_aces(b, off + 192, 6, be);
        }
    }

    #[test]
    fn znode_with_fuid_and_old_acls() {
        for fuid in [true, false] {
            let build = |be: bool| {
                let mut b = vec![0u8; 274];
                put_znode(&mut b, 0, be, fuid);
                b[264..].copy_from_slice(b"target/abc"); // short symlink target
                b
            };
            check_pair(B::Znode, &build(false), &build(true));
        }
    }

    #[test]
    fn znode_version_is_read_in_host_order() {
        // What makes Znode not an involution: after one swap of a little-endian
        // FUID znode on a little-endian host the version reads 0x100, so a
        // second `byteswap` takes the old-ACE path; the inverse must be used.
        let mut le = vec![0u8; 264];
        put_znode(&mut le, 0, false, true);
        let mut be = le.clone();
        le_to_be(B::Znode, &mut be);
        let mut twice = be.clone();
        le_to_be(B::Znode, &mut twice);
        assert_ne!(twice, le);
        be_to_le(B::Znode, &mut be);
        assert_eq!(be, le);
    }

    fn put_dnode_header(b: &mut [u8], d: usize, be: bool, hdr: [u8; 8], bonuslen: u64) {
        b[d..d + 8].copy_from_slice(&hdr);
        put(b, d + 8, 2, 256, be); // dn_datablkszsec
        put(b, d + 10, 2, bonuslen, be);
        put(b, d + 16, 8, 22, be); // dn_maxblkid
        put(b, d + 24, 8, 0x2d_0000, be); // dn_used
    }

    fn put_words(b: &mut [u8], off: usize, count: usize, seed: u64, be: bool) {
        for i in 0..count {
            let v = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64) << 40 ^ 0x0a0b;
            put(b, off + 8 * i, 8, v, be);
        }
    }

    /// Seven dnodes, every kind of bonus handling, plus a partial trailing dnode.
    fn build_dnodes(be: bool) -> Vec<u8> {
        let mut b = vec![0u8; 7 * 512 + 100];
        // 0: plain file, znode bonus with FUID ACL, symlink bytes after it.
        put_dnode_header(&mut b, 0, be, [19, 14, 1, 1, 17, 7, 2, 1], 274);
        put_words(&mut b, 64, 16, 1, be);
        put_znode(&mut b, 192, be, true);
        b[456..466].copy_from_slice(b"target/abc");
        // 1: free dnode, all zero.
        // 2: directory with three block pointers and no bonus.
        put_dnode_header(&mut b, 1024, be, [20, 14, 2, 3, 0, 7, 2, 0], 0);
        put_words(&mut b, 1024 + 64, 48, 2, be);
        // 3: SA bonus (uint8, unswapped) and a spill block pointer.
        put_dnode_header(&mut b, 1536, be, [19, 14, 1, 1, 44, 7, 2, 5], 100);
        put_words(&mut b, 1536 + 64, 16, 3, be);
        for i in 192..384 {
            b[1536 + i] = i as u8;
        }
        put_words(&mut b, 1536 + 384, 16, 4, be);
        // 4: two block pointers, new-style uint64 metadata bonus: 24 words.
        let hdr = [26, 14, 1, 2, DMU_OTN_UINT64_METADATA as u8, 7, 2, 0];
        put_dnode_header(&mut b, 2048, be, hdr, 64);
        put_words(&mut b, 2048 + 64, 32, 5, be);
        put_words(&mut b, 2048 + 320, 24, 6, be);
        // 5: invalid bonus type: the bonus is left alone.
        put_dnode_header(&mut b, 2560, be, [19, 14, 1, 1, 60, 7, 2, 0], 50);
        put_words(&mut b, 2560 + 64, 16, 7, be);
        for i in 192..512 {
            b[2560 + i] = (i * 7) as u8;
        }
        // 6: old ACL bonus: 26 ace_t fill 312 of the 320 bytes, 8 stay.
        put_dnode_header(&mut b, 3072, be, [18, 14, 1, 1, 18, 7, 2, 0], 48);
        put_words(&mut b, 3072 + 64, 16, 8, be);
        put_old_aces(&mut b, 3072 + 192, 26, be);
        b[3072 + 504..3072 + 512].copy_from_slice(b"tailtail");
        // Partial trailing dnode: never touched.
        for (i, x) in b[3584..].iter_mut().enumerate() {
            *x = i as u8 | 1;
        }
        b
    }

    #[test]
    fn dnode_block_known_answer() {
        let (le, be) = (build_dnodes(false), build_dnodes(true));
        check_pair(B::Dnode, &le, &be);
        // The znode inside the bonus reads back field by field.
        let (lz, bz) = (&le[192..512], &be[192..512]);
        assert_eq!(get(bz, 72, 8, true), 0o100_644);
        assert_eq!(get(bz, 80, 8, true), 2_900_000);
        check_znode(lz, bz);
    }

    #[test]
    fn free_dnode_is_zeroed() {
        let (mut le, be) = (build_dnodes(false), build_dnodes(true));
        le[512 + 1..1024].fill(0xa5); // dn_type 0 with garbage behind it
        let mut x = le.clone();
        le_to_be(B::Dnode, &mut x);
        assert_eq!(x, be);
        be_to_le(B::Dnode, &mut x);
        le[512..1024].fill(0);
        assert_eq!(x, le);
    }

    fn build_objset(be: bool) -> Vec<u8> {
        let mut b = vec![0u8; 2048];
        put_dnode_header(&mut b, 0, be, [10, 14, 7, 3, 0, 7, 2, 0], 0);
        put_words(&mut b, 64, 48, 11, be);
        put_words(&mut b, 512, 24, 12, be); // zil_header_t
        put(&mut b, 704, 8, 2, be); // os_type
        put(&mut b, 712, 8, 1, be); // os_flags
        for (d, seed) in [(1024, 13), (1536, 14)] {
            put_dnode_header(&mut b, d, be, [39, 14, 1, 3, 0, 7, 2, 0], 0);
            put_words(&mut b, d + 64, 48, seed, be);
        }
        b
    }

    #[test]
    fn objset_phys_sizes() {
        let (le, be) = (build_objset(false), build_objset(true));
        check_pair(B::Objset, &le, &be);
        check_pair(B::Objset, &le[..1024], &be[..1024]);
        // Any other size: C swaps the user/group-used dnodes only at 2048.
        let mut x = le[..1536].to_vec();
        le_to_be(B::Objset, &mut x);
        assert_eq!(x[..1024], be[..1024]);
        assert_eq!(x[1024..], le[1024..1536]);
    }

    #[test]
    fn acl_object_and_old_acl() {
        // owner@, a group ACE without ACE_IDENTIFIER_GROUP (so not abstract),
        // a user ACE, an object ACE, everyone@; then zeros read as one 16-byte
        // ACE, and 4 bytes too short for a header.
        let build = |be: bool| {
            let mut b = vec![0u8; 116];
            let aces: [(u64, u64, Option<u64>, usize); 5] = [
                (0, 0x1000, None, 8),
                (0, 0x2000, Some(0x2_0000_0064), 16),
                (0, 0x0003, Some(0x1_0000_03e9), 16),
                (6, 0x0040, Some(7), 48),
                (1, 0x4000, None, 8),
            ];
            let mut p = 0;
            for (ty, flags, fuid, size) in aces {
                put(&mut b, p, 2, ty, be);
                put(&mut b, p + 2, 2, flags, be);
                put(&mut b, p + 4, 4, 0x0012_0000 + p as u64, be);
                if let Some(f) = fuid {
                    put(&mut b, p + 8, 8, f, be);
                }
                p += size;
            }
            assert_eq!(p, 96);
            for (i, x) in b[56..88].iter_mut().enumerate() {
                *x = 0x40 + i as u8; // object GUIDs: plain bytes
            }
            b[112..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
            b
        };
        check_pair(B::Acl, &build(false), &build(true));

        let old = |be: bool| {
            let mut b = vec![0x77u8; 5 * 12 + 7];
            put_old_aces(&mut b, 0, 5, be);
            b
        };
        check_pair(B::OldAcl, &old(false), &old(true));
    }

    #[test]
    fn integer_arrays_leave_partial_words() {
        let orig: Vec<u8> = (0..13).collect();
        for (class, width) in [(B::Uint16, 2), (B::Uint32, 4), (B::Uint64, 8)] {
            let mut x = orig.clone();
            byteswap(class, &mut x);
            let whole = 13 / width * width;
            for (i, &b) in x.iter().enumerate() {
                let want = if i < whole {
                    (i / width * width + width - 1 - i % width) as u8
                } else {
                    i as u8
                };
                assert_eq!(b, want, "{class:?} byte {i}");
            }
        }
        let mut x = orig.clone();
        byteswap(B::Uint8, &mut x);
        assert_eq!(x, orig);
    }

    // ---- properties on random and structured buffers ----

    const VALID_BONUS: [u8; 12] = [0, 1, 10, 17, 18, 19, 20, 26, 33, 44, 0xc3, 0x89];

    /// Random bytes with the fields that steer each class set to interesting
    /// values; `objset_bonus` allows bonus types that nest an objset.
    fn structured(rng: &mut Rng, class: ByteswapClass, len: usize, objset_bonus: bool) -> Vec<u8> {
        let mut b = rng.bytes(len);
        let be = rng.below(2) == 1;
        let mut bonus: Vec<u8> = VALID_BONUS.to_vec();
        bonus.push(60);
        if objset_bonus {
            bonus.extend([11, 0x86]);
        }
        match class {
            B::Zap if len >= 8 => {
                let other = rng.next();
                let w = rng.pick(&[ZBT_MICRO, ZBT_LEAF, ZBT_HEADER, other]);
                put(&mut b, 0, 8, w, be);
            }
            B::Dnode | B::Objset => {
                for d in [0, 512, 1024, 1536]
                    .into_iter()
                    .chain((2048..len).step_by(512))
                {
                    let fields = [
                        (0, 1 + rng.below(255) as u8),
                        (3, rng.pick(&[0, 1, 1, 2, 3, 4, 200])),
                        (4, rng.pick(&bonus)),
                        (7, rng.pick(&[0, 4, 5])),
                    ];
                    for (off, v) in fields {
                        if let Some(x) = b.get_mut(d + off) {
                            *x = v;
                        }
                    }
                }
            }
            B::Znode if len >= 190 => put(&mut b, 188, 2, rng.below(2), be),
            B::Acl => {
                for p in (0..len.saturating_sub(3)).step_by(8) {
                    put(
                        &mut b,
                        p + 2,
                        2,
                        rng.pick(&[0x1000, 0x2040, 0x4000, 0, 0x40, 0x2000]),
                        be,
                    );
                    put(&mut b, p, 2, rng.pick(&[0, 1, 5, 8, 9]), be);
                }
            }
            _ => {}
        }
        b
    }

    /// Every length up to 600, then a spread of odd and even ones.
    fn lengths() -> impl Iterator<Item = usize> {
        (0..=600)
            .chain((601..=2048).step_by(7))
            .chain([1024, 1536, 2048, 4095, 4096, 16383, 16384])
    }

    #[test]
    fn involution_where_c_is_one() {
        // Decisions of these classes do not depend on byte order, so one swap
        // undoes the other and both directions are the same function.
        let mut rng = Rng(0x5eed_0001);
        for class in [B::Uint8, B::Uint16, B::Uint32, B::Uint64, B::Zap, B::OldAcl] {
            for len in lengths() {
                for x in [rng.bytes(len), structured(&mut rng, class, len, true)] {
                    let mut y = x.clone();
                    byteswap(class, &mut y);
                    let mut z = x.clone();
                    byteswap_to_foreign(class, &mut z);
                    assert!(y == z, "{class:?} len {len}: directions differ");
                    byteswap(class, &mut y);
                    assert!(y == x, "{class:?} len {len}: not an involution");
                }
            }
        }
    }

    #[test]
    fn swap_then_inverse_is_identity() {
        let mut rng = Rng(0x5eed_0002);
        for class in ByteswapClass::ALL {
            for len in lengths() {
                let x = structured(&mut rng, class, len, false);
                let mut y = x.clone();
                byteswap(class, &mut y);
                byteswap_to_foreign(class, &mut y);
                assert!(y == x, "{class:?} len {len}: to_foreign(byteswap(x)) != x");
                let mut y = x.clone();
                byteswap_to_foreign(class, &mut y);
                byteswap(class, &mut y);
                assert!(y == x, "{class:?} len {len}: byteswap(to_foreign(x)) != x");
            }
        }
    }

    #[test]
    fn inverse_on_arbitrary_bytes() {
        // On raw bytes free dnodes (also nested in bonuses) get zeroed; past
        // that first pass, each direction undoes the other exactly.
        let mut rng = Rng(0x5eed_0003);
        for class in ByteswapClass::ALL {
            for len in lengths() {
                for x in [rng.bytes(len), structured(&mut rng, class, len, true)] {
                    let mut y = x.clone();
                    byteswap(class, &mut y);
                    let mut z = y.clone();
                    byteswap_to_foreign(class, &mut z);
                    byteswap(class, &mut z);
                    assert!(z == y, "{class:?} len {len}: host side");
                    let mut y = x.clone();
                    byteswap_to_foreign(class, &mut y);
                    let mut z = y.clone();
                    byteswap(class, &mut z);
                    byteswap_to_foreign(class, &mut z);
                    assert!(z == y, "{class:?} len {len}: foreign side");
                }
            }
        }
    }

    #[test]
    fn no_panic_on_hostile_buffers() {
        let mut rng = Rng(0x5eed_0004);
        let run = |class: ByteswapClass, x: &[u8]| {
            let mut y = x.to_vec();
            byteswap(class, &mut y);
            let mut y = x.to_vec();
            byteswap_to_foreign(class, &mut y);
        };
        for class in ByteswapClass::ALL {
            for len in 0..=2048 {
                run(class, &rng.bytes(len));
                run(class, &structured(&mut rng, class, len, true));
                run(class, &vec![0xff; len]);
            }
            for len in [131_071, 131_072, 131_073] {
                run(class, &rng.bytes(len));
                run(class, &structured(&mut rng, class, len, true));
            }
        }
        // Huge leaf geometry and a microzap of the largest block size.
        for w in [ZBT_LEAF, ZBT_LEAF.swap_bytes(), ZBT_MICRO.swap_bytes()] {
            let mut x = rng.bytes(1 << 20);
            x[..8].copy_from_slice(&w.to_ne_bytes());
            run(B::Zap, &x);
        }
    }

    // ---- real data: zfs-fuse send streams ----

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zfs-fuse");
    const DRR_BEGIN: u32 = 0;
    const DRR_OBJECT: u32 = 1;
    const DRR_WRITE: u32 = 3;
    const DRR_SPILL: u32 = 7;

    struct Record<'a> {
        kind: u32,
        hdr: &'a [u8],
        payload: &'a [u8],
    }

    fn le32(b: &[u8], off: usize) -> u64 {
        get(b, off, 4, false)
    }

    fn le64(b: &[u8], off: usize) -> u64 {
        get(b, off, 8, false)
    }

    /// Splits a little-endian stream into records with their payloads.
    fn records(data: &[u8]) -> Vec<Record<'_>> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let hdr = &data[off..off + 312];
            off += 312;
            let kind = le32(hdr, 0) as u32;
            let len = match kind {
                DRR_BEGIN if le64(hdr, 16) & 3 == 2 => le32(hdr, 4),
                DRR_OBJECT => le32(hdr, 28).div_ceil(8) * 8,
                DRR_WRITE => le64(hdr, 32),
                DRR_SPILL => le64(hdr, 16),
                _ => 0,
            } as usize;
            out.push(Record {
                kind,
                hdr,
                payload: &data[off..off + len],
            });
            off += len;
        }
        assert_eq!(off, data.len());
        out
    }

    /// Every fixture stream with its manifest, or `None` where they are absent.
    fn fixtures() -> Option<Vec<(String, Vec<u8>, String)>> {
        let dir = std::fs::read_dir(FIXTURES)
            .unwrap_or_else(|e| panic!("{FIXTURES}: {e}: the fixtures are part of the repository"));
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".zsend"))
            .collect();
        names.sort();
        assert!(names.len() >= 20, "expected the 20 zfs-fuse streams");
        let read = |n: &str| std::fs::read(format!("{FIXTURES}/{n}")).unwrap();
        Some(
            names
                .into_iter()
                .map(|n| {
                    let manifest = n.replace(".zsend", ".manifest.json");
                    let m = String::from_utf8(read(&manifest)).unwrap();
                    let data = read(&n);
                    (n, data, m)
                })
                .collect(),
        )
    }

    struct FileMeta {
        mode: u64,
        size: u64,
        nlink: u64,
        uid: u64,
        gid: u64,
        mtime_ns: u64,
    }

    fn json_num(line: &str, key: &str) -> Option<u64> {
        let pat = format!("\"{key}\": ");
        let rest = &line[line.find(&pat)? + pat.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let pat = format!("\"{key}\": \"");
        let rest = &line[line.find(&pat)? + pat.len()..];
        Some(&rest[..rest.find('"')?])
    }

    /// The manifest's `files` (one JSON object a line), by object number.
    fn manifest_files(manifest: &str) -> HashMap<u64, FileMeta> {
        let mut out = HashMap::new();
        let mut lines = manifest.lines().skip_while(|l| l.trim() != "\"files\": [");
        lines.next();
        for line in lines.take_while(|l| !l.trim().starts_with(']')) {
            let meta = (|| {
                Some(FileMeta {
                    mode: u64::from_str_radix(json_str(line, "mode")?, 8).ok()?,
                    size: json_num(line, "size")?,
                    nlink: json_num(line, "nlink")?,
                    uid: json_num(line, "uid")?,
                    gid: json_num(line, "gid")?,
                    mtime_ns: json_num(line, "mtime_ns")?,
                })
            })();
            if let (Some(obj), Some(meta)) = (json_num(line, "object"), meta) {
                out.insert(obj, meta);
            }
        }
        out
    }

    /// Walks FUID-layout ACEs of the little-endian original, comparing each
    /// field with the big-endian conversion.
    fn check_fuid_aces(le: &[u8], be: &[u8]) {
        let end = le.len();
        let mut p = 0;
        while p + 8 <= end {
            let ty = get(le, p, 2, false);
            let flags = get(le, p + 2, 2, false);
            assert_eq!(get(be, p, 2, true), ty);
            assert_eq!(get(be, p + 2, 2, true), flags);
            assert_eq!(get(be, p + 4, 4, true), get(le, p + 4, 4, false));
            if matches!(flags & 0x7040, 0x1000 | 0x4000 | 0x2040) {
                p += 8;
                continue;
            }
            if p + 16 > end {
                break;
            }
            assert_eq!(get(be, p + 8, 8, true), get(le, p + 8, 8, false));
            p += if (5..=8).contains(&ty) { 48 } else { 16 };
        }
    }

    /// Every znode field of `be` read big-endian equals `le` read little-endian.
    fn check_znode(le: &[u8], be: &[u8]) {
        assert!(le.len() >= 264 && le.len() == be.len());
        for off in (0..176).step_by(8) {
            assert_eq!(
                get(be, off, 8, true),
                get(le, off, 8, false),
                "znode word {off}"
            );
        }
        for (off, w) in [(176, 8), (184, 4), (188, 2), (190, 2)] {
            assert_eq!(
                get(be, off, w, true),
                get(le, off, w, false),
                "acl field {off}"
            );
        }
        if get(le, 188, 2, false) == 1 {
            check_fuid_aces(&le[192..264], &be[192..264]);
        } else {
            for p in (192..264).step_by(12) {
                for (o, w) in [(0, 4), (4, 4), (8, 2), (10, 2)] {
                    assert_eq!(get(be, p + o, w, true), get(le, p + o, w, false));
                }
            }
        }
        assert_eq!(le[264..], be[264..], "data behind the znode");
    }

    #[test]
    fn fixture_znode_bonuses() {
        let Some(streams) = fixtures() else { return };
        let (mut znodes, mut matched) = (0, 0);
        for (name, data, manifest) in &streams {
            let recs = records(data);
            let single = recs.iter().filter(|r| r.kind == DRR_BEGIN).count() == 1
                && !manifest.contains("\"kind\": \"replication\"");
            let files = manifest_files(manifest);
            for r in recs.iter().filter(|r| r.kind == DRR_OBJECT) {
                if le32(r.hdr, 20) != u64::from(DMU_OT_ZNODE) {
                    continue;
                }
                let le = &r.payload[..le32(r.hdr, 28) as usize];
                let mut be = le.to_vec();
                le_to_be(byteswap_class(DMU_OT_ZNODE).unwrap(), &mut be);
                check_znode(le, &be);
                let mut back = be.clone();
                be_to_le(B::Znode, &mut back);
                assert!(back == le, "{name}: znode round trip");
                znodes += 1;
                // The swapped fields, read big-endian, describe the real file.
                if let (true, Some(f)) = (single, files.get(&le64(r.hdr, 8))) {
                    let field = |i: usize| get(&be, 8 * i, 8, true);
                    assert_eq!(field(9) & 0o7777, f.mode, "{name}: mode");
                    assert_eq!(field(10), f.size, "{name}: size");
                    assert_eq!(field(12), f.nlink, "{name}: links");
                    assert_eq!((field(16), field(17)), (f.uid, f.gid), "{name}: ids");
                    assert_eq!(field(2) * 1_000_000_000, f.mtime_ns, "{name}: mtime");
                    let ifmt = field(9) & 0o170_000;
                    assert!([0o100_000, 0o040_000, 0o120_000].contains(&ifmt));
                    matched += 1;
                }
            }
        }
        eprintln!("{znodes} znode bonuses, {matched} checked against manifests");
        assert!(znodes > 5000 && matched > 5000);
    }

    #[test]
    fn fixture_zap_blocks() {
        let Some(streams) = fixtures() else { return };
        let (mut micro, mut header, mut leaf, mut master) = (0, 0, 0, 0);
        for (name, data, _) in &streams {
            for r in records(data).iter().filter(|r| r.kind == DRR_WRITE) {
                let otype = le32(r.hdr, 16) as u32;
                if byteswap_class(otype) != Some(B::Zap) {
                    continue;
                }
                let le = r.payload;
                let mut be = le.to_vec();
                le_to_be(B::Zap, &mut be);
                let word = |b: &[u8], off: usize, big: bool| get(b, off, 8, big);
                match le64(le, 0) {
                    ZBT_MICRO => {
                        micro += 1;
                        for off in [0, 8, 16] {
                            assert_eq!(word(&be, off, true), word(le, off, false));
                        }
                        let mut names = HashMap::new();
                        for e in (64..=le.len() - 64).step_by(64) {
                            assert_eq!(word(&be, e, true), word(le, e, false));
                            assert_eq!(get(&be, e + 8, 4, true), le32(le, e + 8));
                            assert_eq!(be[e + 12..e + 64], le[e + 12..e + 64]);
                            let n = &be[e + 14..e + 64];
                            let n = &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())];
                            names.insert(n.to_vec(), word(&be, e, true));
                        }
                        if otype == DMU_OT_MASTER_NODE {
                            master += 1;
                            assert_eq!(names[&b"ROOT"[..]], 3, "{name}");
                            assert_eq!(names[&b"DELETE_QUEUE"[..]], 2, "{name}");
                            assert_eq!(names[&b"VERSION"[..]], 4, "{name}");
                        }
                    }
                    ZBT_HEADER => {
                        header += 1;
                        assert_eq!(word(&be, 8, true), ZAP_MAGIC);
                        for off in (0..le.len()).step_by(8) {
                            assert_eq!(word(&be, off, true), word(le, off, false));
                        }
                    }
                    ZBT_LEAF => {
                        leaf += 1;
                        check_leaf(le, &be);
                    }
                    w => panic!("{name}: unexpected first ZAP word {w:#x}"),
                }
                let mut back = be.clone();
                be_to_le(B::Zap, &mut back);
                assert!(back == le, "{name}: ZAP round trip");
            }
        }
        eprintln!("{micro} microzaps ({master} master nodes), {header} fat headers, {leaf} leaves");
        assert!(micro > 50 && master > 0 && header > 0 && leaf > 0);
    }

    /// Compares every field of a fat ZAP leaf, walking the little-endian original.
    fn check_leaf(le: &[u8], be: &[u8]) {
        let bs = le.len().ilog2() as usize;
        for (off, w) in [(0, 8), (16, 8), (24, 4), (28, 2), (30, 2), (32, 2), (34, 2)] {
            assert_eq!(
                get(be, off, w, true),
                get(le, off, w, false),
                "leaf header {off}"
            );
        }
        assert_eq!(get(be, 24, 4, true), ZAP_LEAF_MAGIC);
        let hash = 1 << (bs - 5);
        for i in 0..hash {
            assert_eq!(get(be, 48 + 2 * i, 2, true), get(le, 48 + 2 * i, 2, false));
        }
        let base = 48 + 2 * hash;
        let mut entries = 0;
        for i in 0..((1 << bs) - 2 * hash) / 24 - 2 {
            let c = base + 24 * i;
            assert_eq!(be[c], le[c]);
            match le[c] {
                ZAP_CHUNK_ENTRY => {
                    entries += 1;
                    for (o, w) in [(2, 2), (4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 8)] {
                        assert_eq!(get(be, c + o, w, true), get(le, c + o, w, false));
                    }
                }
                ZAP_CHUNK_ARRAY | ZAP_CHUNK_FREE => {
                    assert_eq!(be[c + 1..c + 22], le[c + 1..c + 22]);
                    assert_eq!(get(be, c + 22, 2, true), get(le, c + 22, 2, false));
                }
                t => panic!("leaf chunk {i} has type {t}"),
            }
        }
        assert_eq!(entries, get(le, 30, 2, false), "lh_nentries");
    }

    #[test]
    fn fixture_dnode_blocks() {
        // Rebuild each stream's dnode blocks (32 dnodes of 512 bytes, free
        // slots zero) from its OBJECT records, as the sender's meta-dnode held them.
        let Some(streams) = fixtures() else { return };
        let mut dnodes = 0;
        for (name, data, _) in &streams {
            let mut blocks: HashMap<u64, Vec<u8>> = HashMap::new();
            for r in records(data).iter().filter(|r| r.kind == DRR_OBJECT) {
                let (obj, bonuslen) = (le64(r.hdr, 8), le32(r.hdr, 28) as usize);
                let block = blocks.entry(obj / 32).or_insert_with(|| vec![0; 16384]);
                let d = (obj % 32) as usize * 512;
                let nblkptr = 1 + (320 - bonuslen) / 128;
                let h = r.hdr;
                let hdr = [h[16], 17, 1, nblkptr as u8, h[20], h[32], h[33], 1];
                put_dnode_header(block, d, false, hdr, bonuslen as u64);
                put(block, d + 8, 2, le32(h, 24) / 512, false);
                put_words(block, d + 64, 16 * nblkptr, obj, false);
                let b = d + 64 + 128 * nblkptr;
                block[b..b + bonuslen].copy_from_slice(&r.payload[..bonuslen]);
            }
            for le in blocks.values() {
                let mut be = le.clone();
                le_to_be(B::Dnode, &mut be);
                for d in (0..16384).step_by(512) {
                    let (l, b) = (&le[d..d + 512], &be[d..d + 512]);
                    assert_eq!(l[..8], b[..8]);
                    if l[0] == 0 {
                        assert!(b.iter().all(|&x| x == 0));
                        continue;
                    }
                    dnodes += 1;
                    for (o, w) in [(8, 2), (10, 2), (16, 8), (24, 8)] {
                        assert_eq!(get(b, o, w, true), get(l, o, w, false), "{name}");
                    }
                    let start = 64 + 128 * usize::from(l[3]);
                    for o in (64..start).step_by(8) {
                        assert_eq!(get(b, o, 8, true), get(l, o, 8, false));
                    }
                    if u32::from(l[4]) == DMU_OT_ZNODE {
                        check_znode(&l[start..], &b[start..]);
                    } else {
                        assert_eq!(l[start..], b[start..]);
                    }
                }
                let mut back = be.clone();
                be_to_le(B::Dnode, &mut back);
                assert!(&back == le, "{name}: dnode block round trip");
            }
        }
        eprintln!("{dnodes} dnodes rebuilt from OBJECT records");
        assert!(dnodes > 5000);
    }
}
