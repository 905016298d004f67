//! Block compression as ZFS does it (`zio_compress.c`, `lzjb.c`, `zle.c`).
//!
//! The exact bytes matter: a send stream carries each block's physical size
//! and its checksum over the compressed bytes, so a block zsim compresses
//! must come out as ZFS's did for a re-sent stream to be byte-identical.
//! Compression must save 12.5% and a whole sector or the block is stored
//! as it is; an all-zero block becomes a hole. Decompression never trusts
//! its input: a corrupt block is an error, never an out-of-bounds access.

use std::borrow::Cow;

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

    /// The zlib level of `gzip-N`, `None` for other functions.
    pub fn gzip_level(self) -> Option<u32> {
        let n = self as u8;
        (ZioCompress::Gzip1 as u8..=ZioCompress::Gzip9 as u8)
            .contains(&n)
            .then(|| u32::from(n - ZioCompress::Gzip1 as u8 + 1))
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
pub enum Compressed<'a> {
    /// All zeros: no block at all.
    Hole,
    /// The physical bytes (a whole number of sectors) and how they are
    /// compressed (`Off` when compression did not pay). Stored as they
    /// came, they are the caller's own bytes, not a copy.
    Stored {
        data: Cow<'a, [u8]>,
        compress: ZioCompress,
    },
}

/// `zio_compress_data` and the decision of `zio_write_bp_init`.
pub fn compress_block(compress: ZioCompress, src: &[u8]) -> Result<Compressed<'_>> {
    let stored = |data| Compressed::Stored {
        data: Cow::Borrowed(data),
        compress: ZioCompress::Off,
    };
    if compress == ZioCompress::Off {
        return Ok(stored(src));
    }
    // ZFS looks at whole 64-bit words; blocks are whole sectors.
    if is_all_zeros(src) {
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
    if let Some(level) = compress.gzip_level() {
        return Ok(match gzip_compress(src, level, d_len) {
            Some(mut data) => {
                data.resize(data.len().next_multiple_of(SPA_MINBLOCKSIZE as usize), 0);
                Compressed::Stored {
                    data: Cow::Owned(data),
                    compress,
                }
            }
            None => stored(src),
        });
    }
    let mut unsupported = None;
    let compressed = SCRATCH.with_borrow_mut(|dst| {
        if dst.len() < s_len {
            dst.resize(s_len, 0);
        }
        let dst = &mut dst[..s_len];
        let c_len = match compress {
            ZioCompress::Lzjb => lzjb_compress(src, dst, d_len),
            ZioCompress::Zle => zle_compress(src, dst, d_len, ZLE_LEVEL),
            other => {
                unsupported = Some(other);
                return None;
            }
        };
        if c_len > d_len {
            return None;
        }
        // Pad out the last sector with zeros, for repeatability.
        let r_len = c_len.next_multiple_of(SPA_MINBLOCKSIZE as usize);
        let mut data = Vec::with_capacity(r_len);
        data.extend_from_slice(&dst[..c_len]);
        data.resize(r_len, 0);
        Some(data)
    });
    if let Some(other) = unsupported {
        // unreached: WritePolicy resolves inherit and on (ZioCompress::select), so only off,
        // empty, gzip, lzjb and zle come here, all handled above
        return fail(
            Errno::ENOTSUP,
            format!("compression {} is not supported", other.name()),
        );
    }
    Ok(match compressed {
        Some(data) => Compressed::Stored {
            data: Cow::Owned(data),
            compress,
        },
        None => stored(src),
    })
}

thread_local! {
    /// Where lzjb and zle write before the result's size is known: one
    /// block's worth, reused, so a block written costs a copy of what it
    /// compressed to, not a zeroed buffer of its full size (both coders
    /// write every byte they hand back).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether every byte is zero: 64 bytes at a time (one test each, not 64),
/// stopping at the first chunk that is not.
pub fn is_all_zeros(buf: &[u8]) -> bool {
    let (chunks, rest) = buf.as_chunks::<64>();
    chunks.iter().all(|c| or_words(c) == 0) && rest.iter().all(|&b| b == 0)
}

/// The bitwise or of a chunk's eight words: zero if and only if every byte
/// of it is.
fn or_words(chunk: &[u8; 64]) -> u64 {
    chunk
        .as_chunks::<8>()
        .0
        .iter()
        .fold(0u64, |acc, w| acc | u64::from_ne_bytes(*w))
}

/// As [`decompress_block`], taking the physical bytes: a block stored
/// uncompressed is handed back without a copy.
pub fn decompress_block_owned(
    compress: ZioCompress,
    mut src: Vec<u8>,
    lsize: usize,
) -> Result<Vec<u8>> {
    match compress {
        ZioCompress::Off | ZioCompress::Empty | ZioCompress::Inherit | ZioCompress::On
            if src.len() >= lsize =>
        {
            src.truncate(lsize);
            Ok(src)
        }
        _ => decompress_block(compress, &src, lsize),
    }
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
        c if c.gzip_level().is_some() => gzip_decompress(src, lsize),
        // unreached: every ZioCompress variant is matched above, and from_u8 refuses codes past 14
        other => fail(
            Errno::ENOTSUP,
            format!("cannot decompress {} blocks", other.name()),
        ),
    }
}

/// `gzip_compress`: a zlib stream (zlib's `compress2`) at `level`, or
/// `None` when it would take more than `d_len` bytes (the block is then
/// stored as it is).
fn gzip_compress(src: &[u8], level: u32, d_len: usize) -> Option<Vec<u8>> {
    let mut z = flate2::Compress::new(flate2::Compression::new(level), true);
    let mut out = Vec::with_capacity(d_len);
    match z.compress_vec(src, &mut out, flate2::FlushCompress::Finish) {
        Ok(flate2::Status::StreamEnd) if out.len() <= d_len => Some(out),
        _ => None,
    }
}

/// `gzip_decompress` (zlib's `uncompress` into an `lsize` buffer): the
/// output may not exceed the block, so a damaged stream cannot make it
/// allocate more; a short one leaves zeros after it.
fn gzip_decompress(src: &[u8], lsize: usize) -> Result<Vec<u8>> {
    let mut z = flate2::Decompress::new(true);
    let mut out = vec![0u8; lsize];
    match z.decompress(src, &mut out, flate2::FlushDecompress::Finish) {
        Ok(flate2::Status::StreamEnd) => Ok(out),
        Ok(_) => fail(
            Errno::EIO,
            format!("corrupt gzip block: more than its {lsize} bytes, or cut short"),
        ),
        Err(e) => fail(Errno::EIO, format!("corrupt gzip block: {e}")),
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
    let mut lempel = [0u16; LEMPEL_SIZE];
    // `src[zeros.0..zeros.1]` is known to be all zeros (metadata blocks are
    // mostly zeros): matches inside it need no comparing.
    let mut zeros = (0usize, 0usize);
    // Eight items (a literal byte or a match) share a copymap byte, which
    // comes first: one group per turn.
    'groups: while s < s_len {
        // Deep in a run of zeros, every step is the same: the three zeros
        // hash to slot 0, which holds the previous step's position, so the
        // match is the MATCH_MAX zeros just before, at full length. A whole
        // group of eight such steps, written as the items below would be.
        if s >= zeros.0 + MATCH_MAX
            && s + ZERO_GROUP_SPAN <= zeros.1
            && lempel[0] == (s - MATCH_MAX) as u16
        {
            if d + 1 + 2 * NBBY as usize >= d_len {
                return s_len;
            }
            dst[d..d + ZERO_GROUP.len()].copy_from_slice(&ZERO_GROUP);
            d += ZERO_GROUP.len();
            s += ZERO_GROUP_SPAN;
            lempel[0] = (s - MATCH_MAX) as u16;
            continue;
        }
        if d + 1 + 2 * NBBY as usize >= d_len {
            return s_len;
        }
        let copymap = d;
        dst[d] = 0;
        d += 1;
        for copymask in (0..NBBY).map(|bit| 1u8 << bit) {
            if s + MATCH_MAX > s_len {
                // Too close to the end for a match.
                if s >= s_len {
                    break 'groups;
                }
                dst[d] = src[s];
                d += 1;
                s += 1;
                continue;
            }
            let here: &[u8; MATCH_MAX] = src[s..s + MATCH_MAX].try_into().expect("in bounds");
            let in_zeros = here[0] == 0 && {
                if s >= zeros.1 {
                    zeros = (s, s + zero_prefix(&src[s..]));
                }
                s + MATCH_MAX <= zeros.1
            };
            // Three zeros hash to 0.
            let hash = if in_zeros {
                0
            } else {
                // The first three bytes, big-endian: (b0 << 16) + (b1 << 8) + b2.
                let head: [u8; 4] = here[..4].try_into().expect("4 bytes");
                let mut hash = (u32::from_be_bytes(head) >> 8) as usize;
                hash += hash >> 9;
                hash += hash >> 5;
                hash
            };
            let slot = &mut lempel[hash & (LEMPEL_SIZE - 1)];
            let offset = (s.wrapping_sub(usize::from(*slot))) & OFFSET_MASK;
            *slot = s as u16;
            // The match runs as far as the bytes at `s` and `s - offset`
            // agree, up to MATCH_MAX; it counts from MATCH_MIN. An offset
            // of 0 or past the start is no match (`1..=s` in one test).
            let mlen = if offset.wrapping_sub(1) < s {
                let cpy = s - offset;
                if in_zeros && cpy >= zeros.0 {
                    MATCH_MAX
                } else {
                    common_prefix(
                        here,
                        src[cpy..cpy + MATCH_MAX].try_into().expect("in bounds"),
                    )
                }
            } else {
                0
            };
            if mlen >= MATCH_MIN {
                dst[copymap] |= copymask;
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
    }
    d
}

/// One full-length match at offset MATCH_MAX, as LZJB writes it.
const ZERO_MATCH: [u8; 2] = [
    (((MATCH_MAX - MATCH_MIN) << (NBBY - MATCH_BITS)) | (MATCH_MAX >> NBBY)) as u8,
    MATCH_MAX as u8,
];
/// A copymap byte with all eight bits set and eight such matches.
const ZERO_GROUP: [u8; 1 + 2 * NBBY as usize] = {
    let mut g = [0xff; 1 + 2 * NBBY as usize];
    let mut i = 0;
    while i < NBBY as usize {
        g[1 + 2 * i] = ZERO_MATCH[0];
        g[2 + 2 * i] = ZERO_MATCH[1];
        i += 1;
    }
    g
};
/// The source bytes a [`ZERO_GROUP`] stands for.
const ZERO_GROUP_SPAN: usize = NBBY as usize * MATCH_MAX;

/// How many bytes at the start of `buf` are zero: 512 at a time, then 64,
/// then eight, then one.
fn zero_prefix(buf: &[u8]) -> usize {
    let mut whole = buf
        .as_chunks::<512>()
        .0
        .iter()
        .take_while(|c| {
            c.as_chunks::<64>()
                .0
                .iter()
                .fold(0, |acc, c| acc | or_words(c))
                == 0
        })
        .count()
        * 512;
    whole += buf[whole..]
        .as_chunks::<64>()
        .0
        .iter()
        .take_while(|c| or_words(c) == 0)
        .count()
        * 64;
    let (words, rest) = buf[whole..].as_chunks::<8>();
    for (i, w) in words.iter().enumerate() {
        let v = u64::from_le_bytes(*w);
        if v != 0 {
            return whole + i * 8 + (v.trailing_zeros() / 8) as usize;
        }
    }
    whole + words.len() * 8 + rest.iter().take_while(|&&b| b == 0).count()
}

/// How many leading bytes `a` and `b` share: eight at a time, then one at
/// a time (the same answer as comparing byte by byte, in far fewer steps).
fn common_prefix(a: &[u8; MATCH_MAX], b: &[u8; MATCH_MAX]) -> usize {
    let (wa, _) = a.as_chunks::<8>();
    let (wb, _) = b.as_chunks::<8>();
    // Most positions are no match at all: one test settles those.
    let first = u64::from_le_bytes(wa[0]) ^ u64::from_le_bytes(wb[0]);
    if first != 0 {
        return (first.trailing_zeros() / 8) as usize;
    }
    for (i, (x, y)) in wa.iter().zip(wb).enumerate().skip(1) {
        let diff = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if diff != 0 {
            // Little-endian: the first differing byte holds the lowest set bit.
            return i * 8 + (diff.trailing_zeros() / 8) as usize;
        }
    }
    let mut n = wa.len() * 8;
    while n < MATCH_MAX && a[n] == b[n] {
        n += 1;
    }
    n
}

/// LZJB decompression of `src` into all of `dst`; an error for input that
/// runs out or points before the start of the output.
pub fn lzjb_decompress(src: &[u8], dst: &mut [u8]) -> Result<()> {
    let corrupt = |why: &str| fail(Errno::EIO, format!("corrupt lzjb block: {why}"));
    let mut s = 0usize;
    let mut d = 0usize;
    // A copymap byte, then its eight items: one group per turn. Output
    // stops as soon as `dst` is full, wherever that is in a group.
    while d < dst.len() {
        // A whole group of full-length matches at offset MATCH_MAX (what
        // runs of zeros compress to): the same copies as the items below
        // make, without decoding each.
        if d >= MATCH_MAX
            && d + ZERO_GROUP_SPAN <= dst.len()
            && src.get(s..s + ZERO_GROUP.len()) == Some(&ZERO_GROUP[..])
        {
            for _ in 0..NBBY {
                dst.copy_within(d - MATCH_MAX..d, d);
                d += MATCH_MAX;
            }
            s += ZERO_GROUP.len();
            continue;
        }
        let Some(&copymap) = src.get(s) else {
            return corrupt("input ends");
        };
        s += 1;
        // Eight literal bytes, with room for them: copied at once.
        let n = NBBY as usize;
        if copymap == 0 && d + n <= dst.len() && s + n <= src.len() {
            dst[d..d + n].copy_from_slice(&src[s..s + n]);
            d += n;
            s += n;
            continue;
        }
        for copymask in (0..NBBY).map(|bit| 1u8 << bit) {
            if d >= dst.len() {
                break;
            }
            if copymap & copymask != 0 {
                let (Some(&b0), Some(&b1)) = (src.get(s), src.get(s + 1)) else {
                    return corrupt("input ends in a match");
                };
                let mlen = (usize::from(b0) >> (NBBY - MATCH_BITS)) + MATCH_MIN;
                let offset = ((usize::from(b0) << NBBY) | usize::from(b1)) & OFFSET_MASK;
                s += 2;
                if offset > d {
                    return corrupt("match before the start");
                }
                // As if byte by byte: a match may overlap what it is
                // writing, so it is copied a period (`offset` bytes) at a
                // time; offset 0 copies each byte onto itself.
                let n = mlen.min(dst.len() - d);
                if offset != 0 {
                    let mut done = 0;
                    while done < n {
                        let k = (n - done).min(offset);
                        let from = d + done - offset;
                        dst.copy_within(from..from + k, d + done);
                        done += k;
                    }
                }
                d += n;
            } else {
                let Some(&b) = src.get(s) else {
                    return corrupt("input ends");
                };
                dst[d] = b;
                d += 1;
                s += 1;
            }
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
    fn every_function_round_trips_at_every_block_size() {
        let functions = [
            ZioCompress::Lzjb,
            ZioCompress::Zle,
            ZioCompress::Gzip1,
            ZioCompress::Gzip6,
            ZioCompress::Gzip9,
        ];
        for (i, size) in (512..=131072).step_by(512 * 13).chain([131072]).enumerate() {
            let data = compressible(size, i as u64 + 1);
            for c in functions {
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
    fn a_block_after_noise_is_padded_with_zeros() {
        // Noise leaves the coders' scratch full of bytes; what the next
        // block compresses to is padded out with zeros all the same.
        let mut next = xorshift(3);
        let noise: Vec<u8> = (0..131072).map(|_| next() as u8).collect();
        let mut small = vec![0u8; 16384];
        small[..5].copy_from_slice(b"zfs!!");
        for c in [ZioCompress::Lzjb, ZioCompress::Zle] {
            compress_block(c, &noise).unwrap();
            let Compressed::Stored { data, compress } = compress_block(c, &small).unwrap() else {
                panic!("not all zeros")
            };
            assert_eq!(compress, c);
            assert_eq!(data.len() % 512, 0, "{c:?}");
            assert!(data.len() < small.len(), "{c:?}");
            let mut d_len = 0;
            let mut scratch = vec![0u8; 16384];
            if c == ZioCompress::Lzjb {
                d_len = lzjb_compress(&small, &mut scratch, 14336);
            }
            if c == ZioCompress::Zle {
                d_len = zle_compress(&small, &mut scratch, 14336, ZLE_LEVEL);
            }
            assert_eq!(&data[..d_len], &scratch[..d_len], "{c:?}");
            assert!(
                data[d_len..].iter().all(|&b| b == 0),
                "{c:?} pads with noise"
            );
        }
    }

    #[test]
    fn gzip_blocks_are_zlib_streams_and_damage_is_eio() {
        let data = compressible(131072, 5);
        let Compressed::Stored {
            data: phys,
            compress,
        } = compress_block(ZioCompress::Gzip6, &data).unwrap()
        else {
            panic!("not all zeros")
        };
        assert_eq!(compress, ZioCompress::Gzip6);
        assert!(phys.len() < data.len() / 2, "{} bytes", phys.len());
        // zlib's header: deflate, 32 KiB window, a valid check value.
        assert_eq!(phys[0], 0x78);
        assert_eq!((u16::from(phys[0]) << 8 | u16::from(phys[1])) % 31, 0);
        for gzip in [ZioCompress::Gzip1, ZioCompress::Gzip9] {
            assert_eq!(decompress_block(gzip, &phys, 131072).unwrap(), data);
        }
        // More than the block holds is refused, not allocated.
        let err = decompress_block(ZioCompress::Gzip6, &phys, 65536).unwrap_err();
        assert_eq!(err.errno(), Errno::EIO);
        let mut bad = phys.to_vec();
        bad[40] ^= 0xff;
        bad.truncate(60);
        let err = decompress_block(ZioCompress::Gzip6, &bad, 131072).unwrap_err();
        assert_eq!(err.errno(), Errno::EIO);
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
        for c in [ZioCompress::Lzjb, ZioCompress::Gzip9] {
            assert_eq!(
                compress_block(c, &noise).unwrap(),
                Compressed::Stored {
                    data: Cow::Borrowed(&noise[..]),
                    compress: ZioCompress::Off
                }
            );
        }
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

    /// `lzjb_compress` as `lzjb.c` spells it, byte by byte: the reference
    /// the word-at-a-time one must match exactly.
    fn lzjb_compress_bytewise(src: &[u8], dst: &mut [u8], d_len: usize) -> usize {
        let s_len = src.len();
        let (mut s, mut d, mut copymap) = (0usize, 0usize, 0usize);
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
            let mut hash = (usize::from(src[s]) << 16)
                + (usize::from(src[s + 1]) << 8)
                + usize::from(src[s + 2]);
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

    /// `lzjb_decompress` byte by byte, for the same comparison.
    fn lzjb_decompress_bytewise(src: &[u8], dst: &mut [u8]) -> bool {
        let (mut s, mut d, mut copymap) = (0usize, 0usize, 0u8);
        let mut copymask: u32 = 1 << (NBBY - 1);
        while d < dst.len() {
            copymask <<= 1;
            if copymask == 1 << NBBY {
                copymask = 1;
                let Some(&map) = src.get(s) else { return false };
                copymap = map;
                s += 1;
            }
            if copymap as u32 & copymask != 0 {
                let (Some(&b0), Some(&b1)) = (src.get(s), src.get(s + 1)) else {
                    return false;
                };
                let mlen = (usize::from(b0) >> (NBBY - MATCH_BITS)) + MATCH_MIN;
                let offset = ((usize::from(b0) << NBBY) | usize::from(b1)) & OFFSET_MASK;
                s += 2;
                if offset > d {
                    return false;
                }
                for cpy in (d - offset..).take(mlen) {
                    if d >= dst.len() {
                        break;
                    }
                    dst[d] = dst[cpy];
                    d += 1;
                }
            } else {
                let Some(&b) = src.get(s) else { return false };
                dst[d] = b;
                d += 1;
                s += 1;
            }
        }
        true
    }

    #[test]
    fn lzjb_matches_the_bytewise_reference_exactly() {
        let mut next = xorshift(11);
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for (i, size) in [512, 1024, 4096, 16384, 131072].into_iter().enumerate() {
            inputs.push(compressible(size, 100 + i as u64));
            // Mostly zeros with a few words set, like indirect and dnode blocks.
            let mut sparse = vec![0u8; size];
            for _ in 0..(size / 1024).max(1) {
                let at = (next() as usize % size) & !7;
                sparse[at..at + 8].copy_from_slice(&next().to_le_bytes());
            }
            inputs.push(sparse);
            // Runs of zeros of every length between bits of noise, and a
            // block pointer's worth of data at any offset in zeros.
            let mut runs = Vec::with_capacity(size);
            while runs.len() < size {
                let zeros = (next() % 1200) as usize;
                runs.extend(std::iter::repeat_n(0u8, zeros));
                let noise = (next() % 140) as usize;
                runs.extend((0..noise).map(|_| next() as u8));
            }
            runs.truncate(size);
            inputs.push(runs);
            for _ in 0..4 {
                let mut one = vec![0u8; size];
                let at = next() as usize % size;
                let n = (size - at).min(128);
                one[at..at + n].iter_mut().for_each(|b| *b = next() as u8);
                inputs.push(one);
            }
            // Short periods (overlapping matches) and noise.
            inputs.push((0..size).map(|j| (j % (1 + i * 3)) as u8).collect());
            // A period of MATCH_MAX, which is not zeros but compresses to
            // the same groups of matches as zeros do.
            inputs.push((0..size).map(|j| 1 + (j % MATCH_MAX) as u8).collect());
            inputs.push((0..size).map(|_| next() as u8 % 3).collect());
            inputs.push((0..size).map(|_| next() as u8).collect());
        }
        // Zero runs ending and starting at every alignment around the
        // matches' steps: a few bytes of noise among long runs of zeros.
        for _ in 0..400 {
            let size = 1024 << (next() % 4);
            let mut block = vec![0u8; size];
            for _ in 0..1 + next() % 6 {
                let at = next() as usize % size;
                let n = ((next() % 4) as usize).min(size - at);
                block[at..at + n]
                    .iter_mut()
                    .for_each(|b| *b = 1 + next() as u8 % 255);
            }
            inputs.push(block);
        }
        // One byte of noise at every position near either end of zeros.
        for at in (0..600).chain(2048 - 600..2048) {
            let mut block = vec![0u8; 2048];
            block[at] = 0x5a;
            inputs.push(block);
        }
        for src in &inputs {
            let s_len = src.len();
            for d_len in [s_len, s_len - (s_len >> 3), s_len / 4, 64] {
                let (mut a, mut b) = (vec![0u8; s_len], vec![0u8; s_len]);
                let (na, nb) = (
                    lzjb_compress(src, &mut a, d_len),
                    lzjb_compress_bytewise(src, &mut b, d_len),
                );
                assert_eq!(na, nb, "length, {s_len} bytes into {d_len}");
                // `s_len` means "did not fit".
                if na <= d_len && na < s_len {
                    assert_eq!(a[..na], b[..nb], "bytes, {s_len} bytes into {d_len}");
                    // Into a buffer that is not zeros: every byte is written.
                    let mut out = vec![0xaa; s_len];
                    lzjb_decompress(&a[..na], &mut out).unwrap();
                    assert_eq!(&out, src);
                    let mut reference = vec![0xaa; s_len];
                    assert!(lzjb_decompress_bytewise(&a[..na], &mut reference));
                    assert_eq!(out, reference);
                }
            }
        }
        // Any input decompresses as the reference does, error or not.
        for _ in 0..3000 {
            let len = (next() % 700) as usize;
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let size = 512 << (next() % 4);
            let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
            let ok = lzjb_decompress(&junk, &mut a).is_ok();
            assert_eq!(ok, lzjb_decompress_bytewise(&junk, &mut b));
            if ok {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn zero_detection_and_uncompressed_reads() {
        for len in [0, 1, 7, 63, 64, 65, 512, 4096 + 3] {
            assert!(is_all_zeros(&vec![0u8; len]));
            for at in 0..len {
                let mut v = vec![0u8; len];
                v[at] = 0x80;
                assert!(!is_all_zeros(&v), "{len} {at}");
            }
        }
        let data: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
        assert_eq!(
            decompress_block_owned(ZioCompress::Off, data.clone(), 512).unwrap(),
            data[..512]
        );
        assert!(decompress_block_owned(ZioCompress::Off, data, 2048).is_err());
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
