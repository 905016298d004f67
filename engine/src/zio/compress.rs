//! Block compression as ZFS does it (`zio_compress.c`, `lzjb.c`, `zle.c`).
//!
//! The exact bytes matter: a send stream carries each block's physical size
//! and its checksum over the compressed bytes, so a block zsim compresses
//! must come out as ZFS's did for a re-sent stream to be byte-identical.
//! Compression must save 12.5% and a whole sector or the block is stored
//! as it is; an all-zero block becomes a hole. Decompression never trusts
//! its input: a corrupt block is an error, never an out-of-bounds access.

use crate::error::{Errno, Result, fail};
use crate::zio::blkptr::SPA_MINBLOCKSIZE;

/// `enum zio_compress`, numbered as on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ZioCompress {
    Inherit = 0,
    On = 1,
    Off = 2,
    Lzjb = 3,
    Empty = 4,
    Gzip1 = 5,
    Gzip2 = 6,
    Gzip3 = 7,
    Gzip4 = 8,
    Gzip5 = 9,
    Gzip6 = 10,
    Gzip7 = 11,
    Gzip8 = 12,
    Gzip9 = 13,
    Zle = 14,
}

/// `ZIO_COMPRESS_FUNCTIONS`.
pub const ZIO_COMPRESS_FUNCTIONS: u8 = 15;

impl ZioCompress {
    const ALL: [ZioCompress; ZIO_COMPRESS_FUNCTIONS as usize] = [
        ZioCompress::Inherit,
        ZioCompress::On,
        ZioCompress::Off,
        ZioCompress::Lzjb,
        ZioCompress::Empty,
        ZioCompress::Gzip1,
        ZioCompress::Gzip2,
        ZioCompress::Gzip3,
        ZioCompress::Gzip4,
        ZioCompress::Gzip5,
        ZioCompress::Gzip6,
        ZioCompress::Gzip7,
        ZioCompress::Gzip8,
        ZioCompress::Gzip9,
        ZioCompress::Zle,
    ];

    pub fn from_u8(v: u8) -> Option<ZioCompress> {
        ZioCompress::ALL.get(usize::from(v)).copied()
    }

    pub fn name(self) -> &'static str {
        use ZioCompress::*;
        match self {
            Inherit => "inherit",
            On => "on",
            Off => "off",
            Lzjb => "lzjb",
            Empty => "empty",
            Gzip1 => "gzip-1",
            Gzip2 => "gzip-2",
            Gzip3 => "gzip-3",
            Gzip4 => "gzip-4",
            Gzip5 => "gzip-5",
            Gzip6 => "gzip-6",
            Gzip7 => "gzip-7",
            Gzip8 => "gzip-8",
            Gzip9 => "gzip-9",
            Zle => "zle",
        }
    }

    pub fn from_name(name: &str) -> Option<ZioCompress> {
        if name == "gzip" {
            return Some(ZioCompress::Gzip6);
        }
        ZioCompress::ALL.into_iter().find(|c| c.name() == name)
    }

    /// gzip would need zlib's exact output to be ZFS's; zsim does not
    /// write it.
    pub fn is_supported(self) -> bool {
        !matches!(self as u8, 5..=13)
    }

    /// `zio_compress_select`: a child's setting or its parent's; `on` is
    /// lzjb in this era.
    pub fn select(child: ZioCompress, parent: ZioCompress) -> ZioCompress {
        match child {
            ZioCompress::Inherit => parent,
            ZioCompress::On => ZioCompress::Lzjb,
            c => c,
        }
    }
}

/// What compressing a block gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compressed {
    /// All zeros: no block at all.
    Hole,
    /// The physical bytes (a whole number of sectors) and how they are
    /// compressed (`Off` when compression did not pay).
    Stored {
        data: Vec<u8>,
        compress: ZioCompress,
    },
}

/// `zio_compress_data` and the decision of `zio_write_bp_init`.
pub fn compress_block(compress: ZioCompress, src: &[u8]) -> Result<Compressed> {
    let stored = |data: &[u8]| Compressed::Stored {
        data: data.to_vec(),
        compress: ZioCompress::Off,
    };
    if compress == ZioCompress::Off {
        return Ok(stored(src));
    }
    // ZFS looks at whole 64-bit words; blocks are whole sectors.
    if src.iter().all(|&b| b == 0) {
        return Ok(Compressed::Hole);
    }
    if compress == ZioCompress::Empty {
        return Ok(stored(src));
    }
    let s_len = src.len();
    // Compress at least 12.5%, and by at least a sector.
    let d_len = (s_len - (s_len >> 3)) / SPA_MINBLOCKSIZE as usize * SPA_MINBLOCKSIZE as usize;
    if d_len == 0 {
        return Ok(stored(src));
    }
    let mut dst = vec![0u8; s_len];
    let c_len = match compress {
        ZioCompress::Lzjb => lzjb_compress(src, &mut dst, d_len),
        ZioCompress::Zle => zle_compress(src, &mut dst, d_len, ZLE_LEVEL),
        other => {
            return fail(
                Errno::ENOTSUP,
                format!("compression {} is not supported", other.name()),
            );
        }
    };
    if c_len > d_len {
        return Ok(stored(src));
    }
    // Pad out the last sector with zeros, for repeatability.
    let r_len = c_len.next_multiple_of(SPA_MINBLOCKSIZE as usize);
    dst.truncate(r_len);
    dst[c_len..].fill(0);
    Ok(Compressed::Stored {
        data: dst,
        compress,
    })
}

/// `zio_decompress_data`: the `lsize` logical bytes of a physical block.
pub fn decompress_block(compress: ZioCompress, src: &[u8], lsize: usize) -> Result<Vec<u8>> {
    match compress {
        ZioCompress::Off | ZioCompress::Empty | ZioCompress::Inherit | ZioCompress::On => {
            if src.len() < lsize {
                return fail(
                    Errno::EIO,
                    format!("block of {} bytes holds less than its {lsize}", src.len()),
                );
            }
            Ok(src[..lsize].to_vec())
        }
        ZioCompress::Lzjb => {
            let mut dst = vec![0u8; lsize];
            lzjb_decompress(src, &mut dst)?;
            Ok(dst)
        }
        ZioCompress::Zle => {
            let mut dst = vec![0u8; lsize];
            zle_decompress(src, &mut dst, ZLE_LEVEL)?;
            Ok(dst)
        }
        other => fail(
            Errno::ENOTSUP,
            format!("cannot decompress {} blocks", other.name()),
        ),
    }
}

const NBBY: u32 = 8;
const MATCH_BITS: u32 = 6;
const MATCH_MIN: usize = 3;
const MATCH_MAX: usize = (1 << MATCH_BITS) + (MATCH_MIN - 1);
const OFFSET_MASK: usize = (1 << (16 - MATCH_BITS)) - 1;
const LEMPEL_SIZE: usize = 1024;

/// LZJB, byte for byte as ZFS writes it. ZFS's hash table holds the low 16
/// bits of source *addresses*, so its output depends on where the buffer
/// sits modulo 1 KiB; ZFS's block buffers of 4 KiB and more are page
/// aligned, which is what positions from 0 reproduce. Returns more than
/// `d_len` when the output would not fit.
pub fn lzjb_compress(src: &[u8], dst: &mut [u8], d_len: usize) -> usize {
    let s_len = src.len();
    let mut s = 0usize;
    let mut d = 0usize;
    let mut copymap = 0usize;
    let mut copymask: u32 = 1 << (NBBY - 1);
    let mut lempel = [0u16; LEMPEL_SIZE];
    while s < s_len {
        copymask <<= 1;
        if copymask == 1 << NBBY {
            if d + 1 + 2 * NBBY as usize >= d_len {
                return s_len;
            }
            copymask = 1;
            copymap = d;
            dst[d] = 0;
            d += 1;
        }
        if s + MATCH_MAX > s_len {
            dst[d] = src[s];
            d += 1;
            s += 1;
            continue;
        }
        let mut hash =
            (usize::from(src[s]) << 16) + (usize::from(src[s + 1]) << 8) + usize::from(src[s + 2]);
        hash += hash >> 9;
        hash += hash >> 5;
        let slot = &mut lempel[hash & (LEMPEL_SIZE - 1)];
        let offset = (s.wrapping_sub(usize::from(*slot))) & OFFSET_MASK;
        *slot = s as u16;
        if offset != 0
            && offset <= s
            && src[s] == src[s - offset]
            && src[s + 1] == src[s - offset + 1]
            && src[s + 2] == src[s - offset + 2]
        {
            let cpy = s - offset;
            dst[copymap] |= copymask as u8;
            let mut mlen = MATCH_MIN;
            while mlen < MATCH_MAX && src[s + mlen] == src[cpy + mlen] {
                mlen += 1;
            }
            dst[d] = (((mlen - MATCH_MIN) << (NBBY - MATCH_BITS)) | (offset >> NBBY)) as u8;
            dst[d + 1] = offset as u8;
            d += 2;
            s += mlen;
        } else {
            dst[d] = src[s];
            d += 1;
            s += 1;
        }
    }
    d
}

/// LZJB decompression of `src` into all of `dst`; an error for input that
/// runs out or points before the start of the output.
pub fn lzjb_decompress(src: &[u8], dst: &mut [u8]) -> Result<()> {
    let corrupt = |why: &str| fail(Errno::EIO, format!("corrupt lzjb block: {why}"));
    let mut s = 0usize;
    let mut d = 0usize;
    let mut copymap = 0u8;
    let mut copymask: u32 = 1 << (NBBY - 1);
    while d < dst.len() {
        copymask <<= 1;
        if copymask == 1 << NBBY {
            copymask = 1;
            let Some(&map) = src.get(s) else {
                return corrupt("input ends");
            };
            copymap = map;
            s += 1;
        }
        if copymap as u32 & copymask != 0 {
            let (Some(&b0), Some(&b1)) = (src.get(s), src.get(s + 1)) else {
                return corrupt("input ends in a match");
            };
            let mlen = (usize::from(b0) >> (NBBY - MATCH_BITS)) + MATCH_MIN;
            let offset = ((usize::from(b0) << NBBY) | usize::from(b1)) & OFFSET_MASK;
            s += 2;
            if offset > d {
                return corrupt("match before the start");
            }
            // Byte by byte: a match may overlap what it is writing.
            for cpy in (d - offset..).take(mlen) {
                if d >= dst.len() {
                    break;
                }
                dst[d] = dst[cpy];
                d += 1;
            }
        } else {
            let Some(&b) = src.get(s) else {
                return corrupt("input ends");
            };
            dst[d] = b;
            d += 1;
            s += 1;
        }
    }
    Ok(())
}

/// The level ZFS runs ZLE at.
pub const ZLE_LEVEL: usize = 64;

/// Zero-length encoding, as ZFS writes it. Returns more than `d_len` when
/// the output would not fit.
pub fn zle_compress(src: &[u8], dst: &mut [u8], d_len: usize, n: usize) -> usize {
    let s_end = src.len();
    let (mut s, mut d) = (0usize, 0usize);
    while s < s_end && d + 1 < d_len {
        let first = s;
        let len_at = d;
        d += 1;
        if src[s] == 0 {
            let last = (s + (256 - n)).min(s_end);
            while s < last && src[s] == 0 {
                s += 1;
            }
            dst[len_at] = (s - first - 1 + n) as u8;
        } else {
            if d_len - d < n {
                break;
            }
            let last = (s + n).min(s_end);
            while s + 1 < last && (src[s] | src[s + 1]) != 0 {
                dst[d] = src[s];
                d += 1;
                s += 1;
            }
            if s < s_end && src[s] != 0 {
                dst[d] = src[s];
                d += 1;
                s += 1;
            }
            dst[len_at] = (s - first - 1) as u8;
        }
    }
    if s == s_end { d } else { src.len() }
}

/// Zero-length decoding of `src` into all of `dst`.
pub fn zle_decompress(src: &[u8], dst: &mut [u8], n: usize) -> Result<()> {
    let (mut s, mut d) = (0usize, 0usize);
    while s < src.len() && d < dst.len() {
        let len = 1 + usize::from(src[s]);
        s += 1;
        if len <= n {
            if s + len > src.len() || d + len > dst.len() {
                return fail(Errno::EIO, "corrupt zle block: a literal runs past the end");
            }
            dst[d..d + len].copy_from_slice(&src[s..s + len]);
            s += len;
            d += len;
        } else {
            let zeros = len - n;
            if d + zeros > dst.len() {
                return fail(Errno::EIO, "corrupt zle block: a run of zeros past the end");
            }
            dst[d..d + zeros].fill(0);
            d += zeros;
        }
    }
    if d == dst.len() {
        Ok(())
    } else {
        fail(Errno::EIO, "corrupt zle block: too short")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Data that compresses: runs, repeats and some noise.
    fn compressible(len: usize, seed: u64) -> Vec<u8> {
        let mut next = xorshift(seed);
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match next() % 4 {
                0 => out.extend(std::iter::repeat_n(0u8, (next() % 64) as usize)),
                1 => {
                    let back = (next() % 512) as usize;
                    let n = (next() % 40) as usize;
                    for _ in 0..n {
                        let b = if out.len() > back {
                            out[out.len() - back - 1]
                        } else {
                            7
                        };
                        out.push(b);
                    }
                }
                _ => out.push(next() as u8 % 16),
            }
        }
        out.truncate(len);
        out
    }

    #[test]
    fn lzjb_and_zle_round_trip_at_every_block_size() {
        for (i, size) in (512..=131072).step_by(512 * 13).chain([131072]).enumerate() {
            let data = compressible(size, i as u64 + 1);
            for c in [ZioCompress::Lzjb, ZioCompress::Zle] {
                match compress_block(c, &data).unwrap() {
                    Compressed::Stored {
                        data: phys,
                        compress,
                    } => {
                        assert_eq!(phys.len() % 512, 0);
                        assert_eq!(
                            decompress_block(compress, &phys, size).unwrap(),
                            data,
                            "{c:?} {size}"
                        );
                    }
                    Compressed::Hole => panic!("not all zeros"),
                }
            }
        }
    }

    #[test]
    fn zeros_are_a_hole_and_noise_is_stored() {
        assert_eq!(
            compress_block(ZioCompress::Lzjb, &[0; 4096]).unwrap(),
            Compressed::Hole
        );
        assert!(matches!(
            compress_block(ZioCompress::Off, &[0; 4096]).unwrap(),
            Compressed::Stored {
                compress: ZioCompress::Off,
                ..
            }
        ));
        let mut next = xorshift(9);
        let noise: Vec<u8> = (0..8192).map(|_| next() as u8).collect();
        assert_eq!(
            compress_block(ZioCompress::Lzjb, &noise).unwrap(),
            Compressed::Stored {
                data: noise.clone(),
                compress: ZioCompress::Off
            }
        );
        // A 512-byte block can never save a whole sector.
        let mut small = vec![0u8; 512];
        small[0] = 1;
        assert!(matches!(
            compress_block(ZioCompress::Lzjb, &small).unwrap(),
            Compressed::Stored {
                compress: ZioCompress::Off,
                ..
            }
        ));
    }

    #[test]
    fn corrupt_input_is_an_error_never_a_panic() {
        let data = compressible(16384, 3);
        let Compressed::Stored {
            data: phys,
            compress,
        } = compress_block(ZioCompress::Lzjb, &data).unwrap()
        else {
            panic!()
        };
        assert_eq!(compress, ZioCompress::Lzjb);
        for cut in 0..phys.len() {
            let _ = decompress_block(ZioCompress::Lzjb, &phys[..cut], 16384);
        }
        let mut next = xorshift(5);
        for _ in 0..2000 {
            let len = (next() % 600) as usize;
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decompress_block(ZioCompress::Lzjb, &junk, 4096);
            let _ = decompress_block(ZioCompress::Zle, &junk, 4096);
        }
        assert!(decompress_block(ZioCompress::Off, &[0; 10], 512).is_err());
    }

    #[test]
    fn names_and_numbers_are_zfs_ones() {
        assert_eq!(ZioCompress::from_name("lzjb"), Some(ZioCompress::Lzjb));
        assert_eq!(ZioCompress::from_name("gzip"), Some(ZioCompress::Gzip6));
        assert_eq!(ZioCompress::Zle as u8, 14);
        assert!(!ZioCompress::Gzip1.is_supported());
        assert_eq!(
            ZioCompress::select(ZioCompress::On, ZioCompress::Off),
            ZioCompress::Lzjb
        );
    }
}
