//! `blkptr_t`: the 128-byte block pointer of `sys/spa.h`.
//!
//! Every block in a pool is found through one. It says where the block is
//! (its DVA), how big it is logically and physically, how it is compressed
//! and checksummed, what it holds (object type and indirection level), how
//! many non-hole blocks lie beneath it (fill), and in which txg it was born.
//! A hole is a block pointer whose birth is 0, as in the seed's era. The
//! layout is ZFS's, so a dnode block holds what ZFS's would and byteswaps as
//! ZFS's does.

use crate::checksum::ZioCksum;

pub const SPA_MINBLOCKSHIFT: u32 = 9;
pub const SPA_MINBLOCKSIZE: u64 = 1 << SPA_MINBLOCKSHIFT;
pub const SPA_MAXBLOCKSHIFT: u32 = 17;
pub const SPA_MAXBLOCKSIZE: u64 = 1 << SPA_MAXBLOCKSHIFT;
/// `SPA_DVAS_PER_BP`: a block has at most three copies.
pub const SPA_DVAS_PER_BP: u8 = 3;
/// `SPA_BLKPTRSHIFT`: a block pointer is 128 bytes.
pub const SPA_BLKPTRSHIFT: u32 = 7;
pub const BLKPTR_SIZE: usize = 1 << SPA_BLKPTRSHIFT;

/// One data virtual address: where a copy of the block lives. zsim pools
/// have one device, so the vdev is always 0; a block written with more
/// than one copy (ditto blocks, `copies`) has one DVA per copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dva {
    pub word: [u64; 2],
}

impl Dva {
    pub fn new(offset: u64, asize: u64) -> Dva {
        Dva {
            word: [
                asize >> SPA_MINBLOCKSHIFT & 0xff_ffff,
                offset >> SPA_MINBLOCKSHIFT & !(1 << 63),
            ],
        }
    }

    /// Allocated size in bytes (`DVA_GET_ASIZE`).
    pub fn asize(&self) -> u64 {
        (self.word[0] & 0xff_ffff) << SPA_MINBLOCKSHIFT
    }

    /// Byte offset on the device (`DVA_GET_OFFSET`).
    pub fn offset(&self) -> u64 {
        (self.word[1] & !(1 << 63)) << SPA_MINBLOCKSHIFT
    }

    pub fn vdev(&self) -> u64 {
        self.word[0] >> 32
    }

    pub fn is_empty(&self) -> bool {
        self.word == [0, 0]
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Blkptr {
    pub dva: [Dva; 3],
    pub prop: u64,
    pub pad: [u64; 2],
    pub phys_birth: u64,
    pub birth: u64,
    pub fill: u64,
    pub cksum: ZioCksum,
}

/// `BF64_GET(x, low, len)`.
fn get_bits(x: u64, low: u32, len: u32) -> u64 {
    (x >> low) & ((1u64 << len) - 1)
}

fn set_bits(x: &mut u64, low: u32, len: u32, value: u64) {
    let mask = ((1u64 << len) - 1) << low;
    *x = (*x & !mask) | ((value << low) & mask);
}

impl Blkptr {
    /// A hole covering a block of the given type and level: birth 0, as the
    /// seed's era writes them (later ZFS records a hole's birth).
    pub const HOLE: Blkptr = Blkptr {
        dva: [Dva { word: [0, 0] }; 3],
        prop: 0,
        pad: [0, 0],
        phys_birth: 0,
        birth: 0,
        fill: 0,
        cksum: ZioCksum::ZERO,
    };

    pub fn is_hole(&self) -> bool {
        self.birth == 0
    }

    /// The copies of the block, in the order reads try them (`BP_GET_NDVAS`
    /// counts them: the DVAs that are not empty).
    pub fn dvas(&self) -> impl Iterator<Item = Dva> + '_ {
        self.dva.iter().copied().filter(|d| !d.is_empty())
    }

    /// Allocated size of every copy together (`bp_get_asize`): what the
    /// block costs the pool and its datasets.
    pub fn asize(&self) -> u64 {
        self.dvas().map(|d| d.asize()).sum()
    }

    pub fn lsize(&self) -> u64 {
        (get_bits(self.prop, 0, 16) + 1) << SPA_MINBLOCKSHIFT
    }

    pub fn psize(&self) -> u64 {
        (get_bits(self.prop, 16, 16) + 1) << SPA_MINBLOCKSHIFT
    }

    pub fn compress(&self) -> u8 {
        get_bits(self.prop, 32, 8) as u8
    }

    pub fn checksum(&self) -> u8 {
        get_bits(self.prop, 40, 8) as u8
    }

    pub fn object_type(&self) -> u8 {
        get_bits(self.prop, 48, 8) as u8
    }

    pub fn level(&self) -> u8 {
        get_bits(self.prop, 56, 5) as u8
    }

    pub fn dedup(&self) -> bool {
        get_bits(self.prop, 62, 1) != 0
    }

    /// 1 when the block's words are little-endian (`ZFS_HOST_BYTEORDER`).
    pub fn byteorder(&self) -> u8 {
        get_bits(self.prop, 63, 1) as u8
    }

    pub fn set_lsize(&mut self, size: u64) {
        set_bits(&mut self.prop, 0, 16, (size >> SPA_MINBLOCKSHIFT) - 1);
    }

    pub fn set_psize(&mut self, size: u64) {
        set_bits(&mut self.prop, 16, 16, (size >> SPA_MINBLOCKSHIFT) - 1);
    }

    pub fn set_compress(&mut self, compress: u8) {
        set_bits(&mut self.prop, 32, 8, u64::from(compress));
    }

    pub fn set_checksum(&mut self, checksum: u8) {
        set_bits(&mut self.prop, 40, 8, u64::from(checksum));
    }

    pub fn set_object_type(&mut self, t: u8) {
        set_bits(&mut self.prop, 48, 8, u64::from(t));
    }

    pub fn set_level(&mut self, level: u8) {
        set_bits(&mut self.prop, 56, 5, u64::from(level));
    }

    pub fn set_dedup(&mut self, dedup: bool) {
        set_bits(&mut self.prop, 62, 1, u64::from(dedup));
    }

    pub fn set_byteorder(&mut self, order: u8) {
        set_bits(&mut self.prop, 63, 1, u64::from(order));
    }

    /// The `ddk_prop` of a dedup key / send-stream WRITE record: lsize,
    /// psize and compression, in the same bits as `blk_prop`.
    pub fn ddt_prop(&self) -> u64 {
        self.prop & 0xff_ffff_ffff
    }

    /// Encodes in little-endian, the byte order zsim writes its pools in.
    pub fn encode(&self, out: &mut [u8]) {
        let words = [
            self.dva[0].word[0],
            self.dva[0].word[1],
            self.dva[1].word[0],
            self.dva[1].word[1],
            self.dva[2].word[0],
            self.dva[2].word[1],
            self.prop,
            self.pad[0],
            self.pad[1],
            self.phys_birth,
            self.birth,
            self.fill,
            self.cksum.0[0],
            self.cksum.0[1],
            self.cksum.0[2],
            self.cksum.0[3],
        ];
        let out: &mut [u8; BLKPTR_SIZE] = (&mut out[..BLKPTR_SIZE])
            .try_into()
            .expect("BLKPTR_SIZE bytes");
        for (chunk, word) in out.as_chunks_mut::<8>().0.iter_mut().zip(words) {
            *chunk = word.to_le_bytes();
        }
    }

    pub fn decode(buf: &[u8]) -> Blkptr {
        let buf: &[u8; BLKPTR_SIZE] = buf[..BLKPTR_SIZE].try_into().expect("BLKPTR_SIZE bytes");
        let words = buf.as_chunks::<8>().0;
        let w = |i: usize| u64::from_le_bytes(words[i]);
        Blkptr {
            dva: [
                Dva { word: [w(0), w(1)] },
                Dva { word: [w(2), w(3)] },
                Dva { word: [w(4), w(5)] },
            ],
            prop: w(6),
            pad: [w(7), w(8)],
            phys_birth: w(9),
            birth: w(10),
            fill: w(11),
            cksum: ZioCksum([w(12), w(13), w(14), w(15)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_live_in_zfs_bits_and_round_trip() {
        let mut bp = Blkptr {
            dva: [Dva::new(0x12_3400, 4096), Dva::default(), Dva::default()],
            birth: 7,
            fill: 1,
            cksum: ZioCksum([1, 2, 3, 4]),
            ..Blkptr::default()
        };
        bp.set_lsize(16384);
        bp.set_psize(1024);
        bp.set_compress(3);
        bp.set_checksum(7);
        bp.set_object_type(20);
        bp.set_level(0);
        bp.set_byteorder(1);
        // "props = 30001001f" in zstreamdump: 16K logical, 1K physical, lzjb.
        assert_eq!(bp.ddt_prop(), 0x3_0001_001f);
        assert_eq!((bp.lsize(), bp.psize(), bp.compress()), (16384, 1024, 3));
        assert_eq!((bp.checksum(), bp.object_type(), bp.level()), (7, 20, 0));
        assert_eq!((bp.dva[0].offset(), bp.dva[0].asize()), (0x12_3400, 4096));
        let mut buf = [0u8; BLKPTR_SIZE];
        bp.encode(&mut buf);
        assert_eq!(Blkptr::decode(&buf), bp);
        // blk_birth is word 10.
        assert_eq!(buf[80], 7);
        assert!(Blkptr::HOLE.is_hole() && !bp.is_hole());
    }
}
