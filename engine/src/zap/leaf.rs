//! A fat ZAP leaf block being changed (`zap_leaf.c`): its header, the hash
//! table of chunk chains, and the 24-byte chunks an entry, its name and its
//! value are made of. The layout is `zap_leaf_phys_t`'s; the reader in
//! `zap.rs` checked the block before it got here, except its free list,
//! which this checks as it takes from it.

use super::{
    CHAIN_END, ZAP_CHUNK_ARRAY, ZAP_CHUNK_ENTRY, ZAP_CHUNK_FREE, ZAP_LEAF_ARRAY_BYTES,
    ZAP_LEAF_CHUNKSIZE, ZAP_LEAF_MAGIC, ZBT_LEAF,
};
use crate::error::{Errno, Error, Result};

/// The leaf header takes two chunks.
const HEADER_SIZE: usize = 2 * ZAP_LEAF_CHUNKSIZE;
/// `ZLF_ENTRIES_CDSORTED`: hash chains are kept in collision-differentiator
/// order, which every leaf this writes is.
const ZLF_ENTRIES_CDSORTED: u8 = 1 << 0;

/// `ZAP_LEAF_ARRAY_NCHUNKS`: chunks an array of `bytes` takes.
pub fn array_nchunks(bytes: usize) -> usize {
    bytes.div_ceil(ZAP_LEAF_ARRAY_BYTES)
}

pub struct LeafBlock {
    pub buf: Vec<u8>,
    hash_shift: u32,
    nchunks: usize,
}

/// One entry's fields (`zap_leaf_entry`).
pub struct Entry {
    pub value_intlen: u8,
    pub next: u16,
    pub name_chunk: u16,
    pub name_numints: u16,
    pub value_chunk: u16,
    pub value_numints: u16,
    pub cd: u32,
    pub hash: u64,
}

impl LeafBlock {
    /// `zap_leaf_init`: no entries, every chunk on the free list in order.
    pub fn init(block_size: usize, prefix: u64, prefix_len: u16) -> LeafBlock {
        let mut leaf = LeafBlock::open(vec![0; block_size]);
        put_u64(&mut leaf.buf, 0, ZBT_LEAF);
        put_u32(&mut leaf.buf, 24, ZAP_LEAF_MAGIC);
        leaf.set_prefix(prefix, prefix_len);
        leaf.buf[36] = ZLF_ENTRIES_CDSORTED;
        leaf.clear_hash();
        for i in 0..leaf.nchunks {
            let next = if i + 1 == leaf.nchunks {
                CHAIN_END
            } else {
                (i + 1) as u16
            };
            let c = leaf.chunk_at(i);
            leaf.buf[c] = ZAP_CHUNK_FREE;
            put_u16(&mut leaf.buf, c + 1 + ZAP_LEAF_ARRAY_BYTES, next);
        }
        leaf.set_u16(28, leaf.nchunks as u16);
        leaf.set_u16(34, 0);
        leaf
    }

    /// A leaf block as read; its geometry follows from its size.
    pub fn open(buf: Vec<u8>) -> LeafBlock {
        let hash_shift = buf.len().trailing_zeros() - 5;
        let nchunks = (buf.len() - 2 * (1 << hash_shift)) / ZAP_LEAF_CHUNKSIZE - 2;
        LeafBlock {
            buf,
            hash_shift,
            nchunks,
        }
    }

    pub fn nchunks(&self) -> usize {
        self.nchunks
    }

    pub fn prefix(&self) -> u64 {
        u64_at(&self.buf, 16)
    }

    pub fn prefix_len(&self) -> u16 {
        u16_at(&self.buf, 32)
    }

    fn set_prefix(&mut self, prefix: u64, prefix_len: u16) {
        put_u64(&mut self.buf, 16, prefix);
        self.set_u16(32, prefix_len);
    }

    pub fn nfree(&self) -> usize {
        usize::from(u16_at(&self.buf, 28))
    }

    pub fn nentries(&self) -> u16 {
        u16_at(&self.buf, 30)
    }

    fn set_u16(&mut self, at: usize, v: u16) {
        put_u16(&mut self.buf, at, v);
    }

    fn chunk_at(&self, idx: usize) -> usize {
        HEADER_SIZE + 2 * (1 << self.hash_shift) + idx * ZAP_LEAF_CHUNKSIZE
    }

    fn chunk_type(&self, idx: u16) -> u8 {
        self.buf[self.chunk_at(usize::from(idx))]
    }

    fn clear_hash(&mut self) {
        for b in 0..1usize << self.hash_shift {
            put_u16(&mut self.buf, HEADER_SIZE + 2 * b, CHAIN_END);
        }
    }

    /// `LEAF_HASH`: the bucket of a hash, from the bits after the prefix.
    fn bucket(&self, hash: u64) -> usize {
        let down = 64 - self.hash_shift - u32::from(self.prefix_len());
        ((hash >> down) & ((1 << self.hash_shift) - 1)) as usize
    }

    pub fn entry(&self, idx: u16) -> Entry {
        let c = self.chunk_at(usize::from(idx));
        let b = &self.buf;
        Entry {
            value_intlen: b[c + 1],
            next: u16_at(b, c + 2),
            name_chunk: u16_at(b, c + 4),
            name_numints: u16_at(b, c + 6),
            value_chunk: u16_at(b, c + 8),
            value_numints: u16_at(b, c + 10),
            cd: u32_at(b, c + 12),
            hash: u64_at(b, c + 16),
        }
    }

    fn put_entry(&mut self, idx: u16, e: &Entry) {
        let c = self.chunk_at(usize::from(idx));
        let b = &mut self.buf;
        b[c] = ZAP_CHUNK_ENTRY;
        b[c + 1] = e.value_intlen;
        put_u16(b, c + 2, e.next);
        put_u16(b, c + 4, e.name_chunk);
        put_u16(b, c + 6, e.name_numints);
        put_u16(b, c + 8, e.value_chunk);
        put_u16(b, c + 10, e.value_numints);
        put_u32(b, c + 12, e.cd);
        put_u64(b, c + 16, e.hash);
    }

    /// `zap_leaf_chunk_alloc`: the head of the free list.
    fn chunk_alloc(&mut self, object: u64) -> Result<u16> {
        let idx = u16_at(&self.buf, 34);
        if self.nfree() == 0 || usize::from(idx) >= self.nchunks {
            return Err(self.bad_free_list(object, idx));
        }
        if self.chunk_type(idx) != ZAP_CHUNK_FREE {
            return Err(self.bad_free_list(object, idx));
        }
        let c = self.chunk_at(usize::from(idx));
        let next = u16_at(&self.buf, c + 1 + ZAP_LEAF_ARRAY_BYTES);
        self.set_u16(34, next);
        self.set_u16(28, (self.nfree() - 1) as u16);
        Ok(idx)
    }

    fn bad_free_list(&self, object: u64, idx: u16) -> Error {
        Error::new(
            Errno::EIO,
            format!(
                "ZAP object {object}: leaf with prefix {:#x}/{}: free list reaches chunk {idx}, \
                 which is not free ({} free counted)",
                self.prefix(),
                self.prefix_len(),
                self.nfree()
            ),
        )
    }

    /// `zap_leaf_chunk_free`.
    fn chunk_free(&mut self, idx: u16) {
        let c = self.chunk_at(usize::from(idx));
        let head = u16_at(&self.buf, 34);
        self.buf[c..c + ZAP_LEAF_CHUNKSIZE].fill(0);
        self.buf[c] = ZAP_CHUNK_FREE;
        put_u16(&mut self.buf, c + 1 + ZAP_LEAF_ARRAY_BYTES, head);
        self.set_u16(34, idx);
        self.set_u16(28, (self.nfree() + 1) as u16);
    }

    /// `zap_leaf_array_create`: `bytes` in a chain of array chunks.
    fn array_create(&mut self, object: u64, bytes: &[u8]) -> Result<u16> {
        let mut first = CHAIN_END;
        let mut prev: Option<usize> = None;
        for piece in bytes.chunks(ZAP_LEAF_ARRAY_BYTES) {
            let idx = self.chunk_alloc(object)?;
            let c = self.chunk_at(usize::from(idx));
            self.buf[c..c + ZAP_LEAF_CHUNKSIZE].fill(0);
            self.buf[c] = ZAP_CHUNK_ARRAY;
            self.buf[c + 1..c + 1 + piece.len()].copy_from_slice(piece);
            put_u16(&mut self.buf, c + 1 + ZAP_LEAF_ARRAY_BYTES, CHAIN_END);
            match prev {
                Some(p) => put_u16(&mut self.buf, p + 1 + ZAP_LEAF_ARRAY_BYTES, idx),
                None => first = idx,
            }
            prev = Some(c);
        }
        Ok(first)
    }

    /// The chunks of an array chain, in order.
    fn array_chunks(&self, first: u16) -> Vec<u16> {
        let mut out = Vec::new();
        let mut idx = first;
        while idx != CHAIN_END && out.len() < self.nchunks {
            out.push(idx);
            let c = self.chunk_at(usize::from(idx));
            idx = u16_at(&self.buf, c + 1 + ZAP_LEAF_ARRAY_BYTES);
        }
        out
    }

    /// `zap_leaf_array_read` of a whole array.
    pub fn array_read(&self, first: u16, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        for idx in self.array_chunks(first) {
            let c = self.chunk_at(usize::from(idx));
            let n = (len - out.len()).min(ZAP_LEAF_ARRAY_BYTES);
            out.extend_from_slice(&self.buf[c + 1..c + 1 + n]);
        }
        out
    }

    /// The stored name of an entry (with its NUL).
    fn name_of(&self, e: &Entry) -> Vec<u8> {
        self.array_read(e.name_chunk, usize::from(e.name_numints))
    }

    /// The entry chunk holding `name` (given with its NUL), if any.
    pub fn find(&self, hash: u64, name: &[u8]) -> Option<u16> {
        let mut idx = self.bucket_head(hash);
        while idx != CHAIN_END {
            let e = self.entry(idx);
            if e.hash == hash && self.name_of(&e) == name {
                return Some(idx);
            }
            idx = e.next;
        }
        None
    }

    fn bucket_head(&self, hash: u64) -> u16 {
        u16_at(&self.buf, HEADER_SIZE + 2 * self.bucket(hash))
    }

    /// The lowest collision differentiator no entry of this hash has.
    pub fn unused_cd(&self, hash: u64) -> u32 {
        let mut used = Vec::new();
        let mut idx = self.bucket_head(hash);
        while idx != CHAIN_END {
            let e = self.entry(idx);
            if e.hash == hash {
                used.push(e.cd);
            }
            idx = e.next;
        }
        (0..).find(|cd| !used.contains(cd)).expect("a free cd")
    }

    /// `zap_leaf_rehash_entry`: links an entry chunk into its bucket's
    /// chain, which is kept in cd order.
    fn rehash(&mut self, idx: u16) {
        let e = self.entry(idx);
        let bucket_at = HEADER_SIZE + 2 * self.bucket(e.hash);
        // The link to rewrite: the bucket's head, or an entry's `le_next`.
        let mut link = bucket_at;
        let mut cur = u16_at(&self.buf, link);
        while cur != CHAIN_END {
            let other = self.entry(cur);
            if other.cd > e.cd {
                break;
            }
            link = self.chunk_at(usize::from(cur)) + 2;
            cur = other.next;
        }
        let own_next = self.chunk_at(usize::from(idx)) + 2;
        put_u16(&mut self.buf, own_next, cur);
        put_u16(&mut self.buf, link, idx);
    }

    /// `zap_entry_create`: the caller has checked there is room
    /// (`1 + array_nchunks(name) + array_nchunks(value)` free chunks).
    pub fn entry_create(
        &mut self,
        object: u64,
        hash: u64,
        cd: u32,
        name: &[u8],
        value_intlen: u8,
        value: &[u8],
    ) -> Result<()> {
        let idx = self.chunk_alloc(object)?;
        let name_chunk = self.array_create(object, name)?;
        let value_chunk = self.array_create(object, value)?;
        self.put_entry(
            idx,
            &Entry {
                value_intlen,
                next: CHAIN_END,
                name_chunk,
                name_numints: name.len() as u16,
                value_chunk,
                value_numints: (value.len() / usize::from(value_intlen)) as u16,
                cd,
                hash,
            },
        );
        self.rehash(idx);
        self.set_u16(30, self.nentries() + 1);
        Ok(())
    }

    /// `zap_entry_remove`: frees the entry and its arrays.
    pub fn entry_remove(&mut self, idx: u16) {
        let e = self.entry(idx);
        for c in self.array_chunks(e.name_chunk) {
            self.chunk_free(c);
        }
        for c in self.array_chunks(e.value_chunk) {
            self.chunk_free(c);
        }
        self.unlink(idx, &e);
        self.chunk_free(idx);
        self.set_u16(30, self.nentries() - 1);
    }

    fn unlink(&mut self, idx: u16, e: &Entry) {
        let mut link = HEADER_SIZE + 2 * self.bucket(e.hash);
        loop {
            let cur = u16_at(&self.buf, link);
            if cur == idx {
                put_u16(&mut self.buf, link, e.next);
                return;
            }
            if cur == CHAIN_END {
                return;
            }
            link = self.chunk_at(usize::from(cur)) + 2;
        }
    }

    /// `zap_leaf_split`: this leaf takes one more prefix bit; entries whose
    /// hash has that bit set move to `new` (a fresh leaf), the rest are
    /// linked again under the longer prefix.
    pub fn split(&mut self, object: u64, new: &mut LeafBlock) -> Result<()> {
        let old_len = self.prefix_len();
        let bit = 63 - u32::from(old_len);
        let prefix = self.prefix() << 1;
        self.set_prefix(prefix, old_len + 1);
        new.set_prefix(prefix | 1, old_len + 1);
        self.clear_hash();
        for i in 0..self.nchunks as u16 {
            if self.chunk_type(i) != ZAP_CHUNK_ENTRY {
                continue;
            }
            let e = self.entry(i);
            if e.hash & (1 << bit) != 0 {
                self.transfer_entry(object, i, &e, new)?;
            } else {
                self.rehash(i);
            }
        }
        Ok(())
    }

    /// `zap_leaf_transfer_entry`.
    fn transfer_entry(
        &mut self,
        object: u64,
        idx: u16,
        e: &Entry,
        new: &mut LeafBlock,
    ) -> Result<()> {
        let name = self.array_read(e.name_chunk, usize::from(e.name_numints));
        let value_len = usize::from(e.value_numints) * usize::from(e.value_intlen);
        let value = self.array_read(e.value_chunk, value_len);
        new.entry_create(object, e.hash, e.cd, &name, e.value_intlen, &value)?;
        for c in self.array_chunks(e.name_chunk) {
            self.chunk_free(c);
        }
        for c in self.array_chunks(e.value_chunk) {
            self.chunk_free(c);
        }
        self.chunk_free(idx);
        self.set_u16(30, self.nentries() - 1);
        Ok(())
    }
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
