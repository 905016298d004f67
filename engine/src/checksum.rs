//! ZFS block and stream checksums (fletcher-2, fletcher-4, SHA-256), bit-exact
//! with illumos `zfs_fletcher.c` / `zio_checksum.c`. Fletcher-4 is the send
//! stream checksum and sits on the hot path, so it runs as independent lane
//! accumulators (an AVX2 kernel picked at run time, a portable one otherwise)
//! whose results are folded back into ZFS's exact `a, b, c, d`.

use std::fmt;

/// ZFS's `zio_cksum_t`: four 64-bit words.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct ZioCksum(pub [u64; 4]);

impl ZioCksum {
    pub const ZERO: ZioCksum = ZioCksum([0; 4]);
}

/// Matches zstreamdump's `%llx/%llx/%llx/%llx`, so output can be diffed
/// against the real tools.
impl fmt::Display for ZioCksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:x}/{b:x}/{c:x}/{d:x}")
    }
}

/// Fletcher-2 over host-order 64-bit words.
///
/// Only whole 16-byte pairs are summed; a shorter tail is ignored. ZFS itself
/// only ever passes multiples of 512 bytes; for a length with an odd number of
/// 8-byte words its C loop would read one word past the buffer, which we
/// cannot (and do not) imitate.
pub fn fletcher_2_native(buf: &[u8]) -> ZioCksum {
    fletcher_2::<false>(buf)
}

/// Fletcher-2 over byte-reversed 64-bit words (blocks written by the other
/// endianness). Tail handling as in [`fletcher_2_native`].
pub fn fletcher_2_byteswap(buf: &[u8]) -> ZioCksum {
    fletcher_2::<true>(buf)
}

/// Fletcher-4 over host-order 32-bit words. Trailing bytes that do not fill a
/// whole word are ignored, exactly as ZFS's `ipend = ip + size / 4` loop does.
pub fn fletcher_4_native(buf: &[u8]) -> ZioCksum {
    let mut zc = ZioCksum::ZERO;
    fletcher_4_update::<false>(buf, &mut zc);
    zc
}

/// Fletcher-4 over byte-reversed 32-bit words. Tail handling as in
/// [`fletcher_4_native`].
pub fn fletcher_4_byteswap(buf: &[u8]) -> ZioCksum {
    let mut zc = ZioCksum::ZERO;
    fletcher_4_update::<true>(buf, &mut zc);
    zc
}

/// Continues a fletcher-4 from `zc` as if `buf`'s words followed the data
/// already summed; this is how the send stream checksum is built record by
/// record. Trailing partial words are ignored (and not carried over), so
/// chunked and one-shot results agree only when chunks are multiples of 4.
pub fn fletcher_4_incremental_native(buf: &[u8], zc: &mut ZioCksum) {
    fletcher_4_update::<false>(buf, zc);
}

/// Byte-swapped counterpart of [`fletcher_4_incremental_native`].
pub fn fletcher_4_incremental_byteswap(buf: &[u8], zc: &mut ZioCksum) {
    fletcher_4_update::<true>(buf, zc);
}

/// SHA-256 as ZFS stores it in a block pointer: the 32-byte digest read as
/// four big-endian words, so the words compare equal on every host.
pub fn sha256(buf: &[u8]) -> ZioCksum {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(buf);
    let mut words = [0u64; 4];
    for (w, bytes) in words.iter_mut().zip(digest.chunks_exact(8)) {
        *w = u64::from_be_bytes(bytes.try_into().expect("8-byte chunk"));
    }
    ZioCksum(words)
}

fn fletcher_2<const SWAP: bool>(buf: &[u8]) -> ZioCksum {
    let word = |b: &[u8]| {
        let w = u64::from_ne_bytes(b.try_into().expect("8-byte half"));
        if SWAP { w.swap_bytes() } else { w }
    };
    let (pairs, _tail) = buf.as_chunks::<16>();
    let [mut a0, mut a1, mut b0, mut b1] = [0u64; 4];
    for p in pairs {
        a0 = a0.wrapping_add(word(&p[..8]));
        a1 = a1.wrapping_add(word(&p[8..]));
        b0 = b0.wrapping_add(a0);
        b1 = b1.wrapping_add(a1);
    }
    ZioCksum([a0, a1, b0, b1])
}

/// Below this many words the lane set-up and fold cost more than they save;
/// 128 words is ZFS's SPA_MINBLOCKSIZE, where it draws the same line.
const PAR_MIN_WORDS: usize = 128;

/// Picked by measurement: at the x86_64 baseline (SSE2) LLVM keeps the
/// lanes scalar, and two lanes give the most instruction-level parallelism.
const PORTABLE_LANES: usize = 2;

#[inline(always)]
fn load<const SWAP: bool>(w: &[u8; 4]) -> u64 {
    let w = u32::from_ne_bytes(*w);
    u64::from(if SWAP { w.swap_bytes() } else { w })
}

fn fletcher_4_update<const SWAP: bool>(buf: &[u8], zc: &mut ZioCksum) {
    let (words, _partial) = buf.as_chunks::<4>();
    if words.len() < PAR_MIN_WORDS {
        scalar::<SWAP>(words, zc);
        return;
    }
    let (sums, used) = block_sums::<SWAP>(words);
    *zc = advance(*zc, used as u64, sums);
    scalar::<SWAP>(&words[used..], zc);
}

/// The ZFS loop itself; used for short inputs and the tail after the lanes.
fn scalar<const SWAP: bool>(words: &[[u8; 4]], zc: &mut ZioCksum) {
    let [mut a, mut b, mut c, mut d] = zc.0;
    for w in words {
        a = a.wrapping_add(load::<SWAP>(w));
        b = b.wrapping_add(a);
        c = c.wrapping_add(b);
        d = d.wrapping_add(c);
    }
    *zc = ZioCksum([a, b, c, d]);
}

fn block_sums<const SWAP: bool>(words: &[[u8; 4]]) -> (ZioCksum, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked to support AVX2.
        return unsafe { lanes_avx2::<SWAP>(words) };
    }
    lanes_portable::<SWAP>(words)
}

/// Fallback for CPUs without AVX2 and for other architectures.
fn lanes_portable<const SWAP: bool>(words: &[[u8; 4]]) -> (ZioCksum, usize) {
    lane_sums::<PORTABLE_LANES, SWAP>(words)
}

/// AVX2 build, selected at run time so the binary still runs on baseline
/// CPUs. Written with (safe) intrinsics because LLVM's SLP vectorizer only
/// vectorizes part of the lanes of [`lane_sums`] and does so differently
/// from one build to the next; this way the speed does not depend on it.
/// Eight lanes: two 4 x u64 registers per accumulator, lane `j` = word
/// `i % 8` as in [`fold_lanes`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes_avx2<const SWAP: bool>(words: &[[u8; 4]]) -> (ZioCksum, usize) {
    use std::arch::x86_64::*;

    /// Four words zero-extended into 4 x u64, byte-reversed if `SWAP`. The
    /// swapped form broadcasts the 16 bytes to both halves and lets one
    /// in-lane `vpshufb` reverse and zero-extend at once, so it costs the
    /// same single shuffle as the native `vpmovzxdq`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn widen<const SWAP: bool>(q: &[[u8; 4]]) -> __m256i {
        let w = |i: usize| i32::from_ne_bytes(q[i]);
        let v = _mm_set_epi32(w(3), w(2), w(1), w(0));
        if SWAP {
            const Z: i8 = -128; // pshufb: high bit set yields a zero byte
            #[rustfmt::skip]
            let rev_zext = _mm256_setr_epi8(
                3, 2, 1, 0, Z, Z, Z, Z, 7, 6, 5, 4, Z, Z, Z, Z,
                11, 10, 9, 8, Z, Z, Z, Z, 15, 14, 13, 12, Z, Z, Z, Z,
            );
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(v), rev_zext)
        } else {
            _mm256_cvtepu32_epi64(v)
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn lanes(v: __m256i) -> [u64; 4] {
        [
            _mm256_extract_epi64::<0>(v) as u64,
            _mm256_extract_epi64::<1>(v) as u64,
            _mm256_extract_epi64::<2>(v) as u64,
            _mm256_extract_epi64::<3>(v) as u64,
        ]
    }

    const L: usize = 8;
    let steps = words.chunks_exact(L);
    let used = words.len() - steps.remainder().len();
    let mut acc = [_mm256_setzero_si256(); 8];
    for step in steps {
        for (h, half) in step.chunks_exact(4).enumerate() {
            let [a, b, c, d] = [h, h + 2, h + 4, h + 6];
            acc[a] = _mm256_add_epi64(acc[a], widen::<SWAP>(half));
            acc[b] = _mm256_add_epi64(acc[b], acc[a]);
            acc[c] = _mm256_add_epi64(acc[c], acc[b]);
            acc[d] = _mm256_add_epi64(acc[d], acc[c]);
        }
    }
    let level = |k: usize| -> [u64; L] {
        let (lo, hi) = (lanes(acc[2 * k]), lanes(acc[2 * k + 1]));
        std::array::from_fn(|j| if j < 4 { lo[j] } else { hi[j - 4] })
    };
    (fold_lanes(&level(0), &level(1), &level(2), &level(3)), used)
}

/// Runs `L` independent fletcher-4 accumulators over interleaved words (word
/// `i` goes to lane `i % L`), which breaks the serial `a→b→c→d` chain into
/// independent lanes, then folds them into the fletcher-4 of the first
/// `used` words taken from a zero state.
#[inline(always)]
fn lane_sums<const L: usize, const SWAP: bool>(words: &[[u8; 4]]) -> (ZioCksum, usize) {
    let mut a = [0u64; L];
    let mut b = [0u64; L];
    let mut c = [0u64; L];
    let mut d = [0u64; L];
    let steps = words.chunks_exact(L);
    let used = words.len() - steps.remainder().len();
    for step in steps {
        // Whole-array adds: where LLVM's SLP vectorizer finds them
        // profitable they become vector adds, otherwise plain ILP.
        let w: [u64; L] = std::array::from_fn(|j| load::<SWAP>(&step[j]));
        a = add_lanes(a, w);
        b = add_lanes(b, a);
        c = add_lanes(c, b);
        d = add_lanes(d, c);
    }
    (fold_lanes(&a, &b, &c, &d), used)
}

#[inline(always)]
fn add_lanes<const L: usize>(x: [u64; L], y: [u64; L]) -> [u64; L] {
    std::array::from_fn(|j| x[j].wrapping_add(y[j]))
}

/// Folds `L` lanes (word `i` in lane `i % L`, `k` steps each) into the
/// fletcher-4 of those `n = k*L` words from a zero state.
///
/// Word `i = m*L + j` (lane `j`, step `m`) has `t = n - i = r*L - j`, where
/// `r = k - m`. From zero state ZFS weights it by `1`, `t`, `C(t+1,2)`,
/// `C(t+2,3)` in `a, b, c, d`; its lane weights it by `1`, `r`, `C(r+1,2)`,
/// `C(r+2,3)`. Writing each of ZFS's weights (polynomials in `r`) in the lane
/// basis gives
///
/// ```text
/// A = Σ a_j
/// B = Σ L·b_j − j·a_j
/// C = Σ L²·c_j + (C(j,2) − C(L+j,2))·b_j + C(j,2)·a_j
/// D = Σ L³·d_j + β_j·c_j + γ_j·b_j − C(j,3)·a_j
///   with γ_j = C(L+j,3) − C(j,3),  β_j = 2γ_j + C(j,3) − C(2L+j,3)
/// ```
///
/// (the lower coefficients come from evaluating both sides at r = 0, −1, −2,
/// where the higher basis polynomials vanish). These are integer identities,
/// so they hold mod 2^64 and the result is bit-exact for any length.
fn fold_lanes<const L: usize>(a: &[u64; L], b: &[u64; L], c: &[u64; L], d: &[u64; L]) -> ZioCksum {
    let l = L as u64;
    let (l2, l3) = (l.wrapping_mul(l), l.wrapping_mul(l).wrapping_mul(l));
    let mut out = [0u64; 4];
    for (j, &[c2j, c3j, b_c, g_d, b_d]) in const { fold_coefficients::<L>() }.iter().enumerate() {
        let jj = j as u64;
        let terms = [
            a[j],
            l.wrapping_mul(b[j]).wrapping_sub(jj.wrapping_mul(a[j])),
            l2.wrapping_mul(c[j])
                .wrapping_add(b_c.wrapping_mul(b[j]))
                .wrapping_add(c2j.wrapping_mul(a[j])),
            l3.wrapping_mul(d[j])
                .wrapping_add(b_d.wrapping_mul(c[j]))
                .wrapping_add(g_d.wrapping_mul(b[j]))
                .wrapping_sub(c3j.wrapping_mul(a[j])),
        ];
        for (o, t) in out.iter_mut().zip(terms) {
            *o = o.wrapping_add(t);
        }
    }
    ZioCksum(out)
}

/// `fold_lanes`' coefficients of lane `j`, worked out when it is compiled:
/// `C(j,2)`, `C(j,3)`, `b_c`, `g_d` and `b_d` as named there.
const fn fold_coefficients<const L: usize>() -> [[u64; 5]; L] {
    let l = L as u64;
    let mut k = [[0u64; 5]; L];
    let mut j = 0;
    while j < L {
        let jj = j as u64;
        let c2j = binom2(jj);
        let c3j = binom3(jj);
        let b_c = c2j.wrapping_sub(binom2(l + jj));
        let g_d = binom3(l + jj).wrapping_sub(c3j);
        let b_d = g_d
            .wrapping_mul(2)
            .wrapping_add(c3j)
            .wrapping_sub(binom3(2 * l + jj));
        k[j] = [c2j, c3j, b_c, g_d, b_d];
        j += 1;
    }
    k
}

/// State after `n` more words, given the prior state and the sums of those
/// words from zero: the prior `a` is added into `b` once per word, into `c`
/// `C(n+1,2)` times, and so on. Exact for any `n`, unlike OpenZFS's
/// `c1*(c1+1)/2*(c1+2)/3`, which overflows near 16 MiB and forces it to
/// split large buffers.
fn advance(prev: ZioCksum, n: u64, new: ZioCksum) -> ZioCksum {
    let [a0, b0, c0, d0] = prev.0;
    let [a, b, c, d] = new.0;
    let (k1, k2, k3) = (n, binom2(n + 1), binom3(n + 2));
    ZioCksum([
        a0.wrapping_add(a),
        b0.wrapping_add(k1.wrapping_mul(a0)).wrapping_add(b),
        c0.wrapping_add(k1.wrapping_mul(b0))
            .wrapping_add(k2.wrapping_mul(a0))
            .wrapping_add(c),
        d0.wrapping_add(k1.wrapping_mul(c0))
            .wrapping_add(k2.wrapping_mul(b0))
            .wrapping_add(k3.wrapping_mul(a0))
            .wrapping_add(d),
    ])
}

/// `C(n,2)` mod 2^64, dividing before multiplying so it never overflows.
const fn binom2(n: u64) -> u64 {
    let (x, y) = (n, n.wrapping_sub(1));
    if x % 2 == 0 {
        (x / 2).wrapping_mul(y)
    } else {
        x.wrapping_mul(y / 2)
    }
}

/// `C(n,3)` mod 2^64, dividing the factors by 3 and 2 first so it is exact
/// for every `n` (word counts here are at most `usize::MAX / 4 + 2`).
const fn binom3(n: u64) -> u64 {
    if n < 3 {
        return 0;
    }
    let mut f = [n, n - 1, n - 2];
    // One of three consecutive numbers is a multiple of 3.
    let i3 = if f[0].is_multiple_of(3) {
        0
    } else if f[1].is_multiple_of(3) {
        1
    } else {
        2
    };
    f[i3] /= 3;
    // Dividing by 3 keeps parity, so an even factor is still there.
    let i2 = if f[0].is_multiple_of(2) {
        0
    } else if f[1].is_multiple_of(2) {
        1
    } else {
        2
    };
    f[i2] /= 2;
    f[0].wrapping_mul(f[1]).wrapping_mul(f[2])
}

/// Each fletcher-4 path on its own, so benchmarks can compare them.
#[doc(hidden)]
pub mod paths {
    use super::*;

    pub fn scalar_native(buf: &[u8]) -> ZioCksum {
        let mut zc = ZioCksum::ZERO;
        scalar::<false>(buf.as_chunks::<4>().0, &mut zc);
        zc
    }

    pub fn portable_native(buf: &[u8]) -> ZioCksum {
        let words = buf.as_chunks::<4>().0;
        let (sums, used) = lanes_portable::<false>(words);
        let mut zc = advance(ZioCksum::ZERO, used as u64, sums);
        scalar::<false>(&words[used..], &mut zc);
        zc
    }

    /// `None` when the CPU lacks AVX2.
    pub fn avx2_native(buf: &[u8]) -> Option<ZioCksum> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let words = buf.as_chunks::<4>().0;
            // SAFETY: the CPU was just checked to support AVX2.
            let (sums, used) = unsafe { lanes_avx2::<false>(words) };
            let mut zc = advance(ZioCksum::ZERO, used as u64, sums);
            scalar::<false>(&words[used..], &mut zc);
            return Some(zc);
        }
        let _ = buf;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed-seed xorshift64 so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }

        fn state(&mut self) -> ZioCksum {
            ZioCksum([self.next(), self.next(), self.next(), self.next()])
        }
    }

    /// Straight transcription of ZFS's loop, independent of the code above.
    fn reference_f4(buf: &[u8], swap: bool, init: ZioCksum) -> ZioCksum {
        let [mut a, mut b, mut c, mut d] = init.0;
        let mut i = 0;
        while i + 4 <= buf.len() {
            let mut w = u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
            if swap {
                w = w.swap_bytes();
            }
            a = a.wrapping_add(w as u64);
            b = b.wrapping_add(a);
            c = c.wrapping_add(b);
            d = d.wrapping_add(c);
            i += 4;
        }
        ZioCksum([a, b, c, d])
    }

    fn words(buf: &[u8]) -> &[[u8; 4]] {
        buf.as_chunks::<4>().0
    }

    #[test]
    fn display_matches_zstreamdump() {
        let zc = ZioCksum([0xa341d9e10c3c, 0xf3826969d132851c, 0, 0x1]);
        assert_eq!(zc.to_string(), "a341d9e10c3c/f3826969d132851c/0/1");
        assert_eq!(ZioCksum::ZERO.to_string(), "0/0/0/0");
    }

    #[test]
    fn fletcher_2_hand_vector() {
        // Words 1,2,3,4: a0 = 1+3, a1 = 2+4, b0 = 1+4, b1 = 2+6.
        let mut buf: Vec<u8> = [1u64, 2, 3, 4]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(fletcher_2_native(&buf), ZioCksum([4, 6, 5, 8]));
        // An odd trailing word and loose bytes are ignored.
        buf.extend_from_slice(&[0xff; 15]);
        assert_eq!(fletcher_2_native(&buf), ZioCksum([4, 6, 5, 8]));
        let swapped: Vec<u8> = [1u64, 2, 3, 4]
            .iter()
            .flat_map(|w| w.swap_bytes().to_ne_bytes())
            .collect();
        assert_eq!(fletcher_2_byteswap(&swapped), ZioCksum([4, 6, 5, 8]));
        assert_eq!(fletcher_2_native(&[]), ZioCksum::ZERO);
        // Wrap-around: two all-ones pairs.
        let m = u64::MAX;
        assert_eq!(
            fletcher_2_native(&[0xff; 32]),
            ZioCksum([m - 1, m - 1, m.wrapping_add(m - 1), m.wrapping_add(m - 1)])
        );
    }

    #[test]
    fn fletcher_4_hand_vector() {
        // Words 1,2,3: a = 6, b = 1+3+6, c = 1+4+10, d = 1+5+15.
        let mut buf: Vec<u8> = [1u32, 2, 3].iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(fletcher_4_native(&buf), ZioCksum([6, 10, 15, 21]));
        buf.extend_from_slice(&[0xff; 3]);
        assert_eq!(fletcher_4_native(&buf), ZioCksum([6, 10, 15, 21]));
        let swapped: Vec<u8> = [1u32, 2, 3]
            .iter()
            .flat_map(|w| w.swap_bytes().to_ne_bytes())
            .collect();
        assert_eq!(fletcher_4_byteswap(&swapped), ZioCksum([6, 10, 15, 21]));
    }

    #[test]
    fn sha256_abc() {
        // FIPS 180-2 appendix B.1.
        assert_eq!(
            sha256(b"abc"),
            ZioCksum([
                0xba7816bf8f01cfea,
                0x414140de5dae2223,
                0xb00361a396177a9c,
                0xb410ff61f20015ad
            ])
        );
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zfs-fuse");

    /// The END record (last 312 bytes) carries at bytes 8..40 the fletcher-4
    /// of everything before it, as written by a real zfs send.
    fn end_checksum(stream: &[u8]) -> (ZioCksum, ZioCksum) {
        let (body, end) = stream.split_at(stream.len() - 312);
        assert_eq!(
            u32::from_le_bytes(end[..4].try_into().unwrap()),
            5,
            "DRR_END"
        );
        let mut want = [0u64; 4];
        for (w, b) in want.iter_mut().zip(end[8..40].chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().unwrap());
        }
        (fletcher_4_native(body), ZioCksum(want))
    }

    // Absolute fixture path: rewrite relative to the crate when integrated.
    #[test]
    fn fletcher_4_known_answer_empty_full_stream() {
        let stream = std::fs::read(format!("{FIXTURES}/empty_full.zsend")).unwrap();
        assert_eq!(stream.len(), 8504);
        let (got, want) = end_checksum(&stream);
        assert_eq!(got, want);
        // Also as zstreamdump printed it for this stream.
        assert_eq!(
            got.to_string(),
            "34242645cd/e7dde611d9d1/277c31baad0588e/f5ac41034a5144b8"
        );
        // And incrementally in 312-byte pieces (the sender goes record by
        // record; any split into multiples of 4 bytes gives the same).
        let mut zc = ZioCksum::ZERO;
        for piece in stream[..stream.len() - 312].chunks(312) {
            fletcher_4_incremental_native(piece, &mut zc);
        }
        assert_eq!(zc, want);
    }

    /// Every single-substream fixture (up to 5.5 MB, through the lane path).
    #[test]
    fn fletcher_4_known_answer_all_single_streams() {
        let names = [
            "empty_full",
            "small_full",
            "large_full",
            "sparse_full",
            "incr_base_full",
            "incr_i",
            "chain_c1_full",
            "chain_c1_c2_i",
            "chain_c2_c3_i",
            "chain_c3_c4_i",
            "clone_origin_full",
            "clone_i",
            "dedup_full_D",
            "dedup_i_D",
            "xattr_full",
            "xattr_i",
            "manyfiles_full",
            "manyfiles_i",
        ];
        for name in names {
            let stream = std::fs::read(format!("{FIXTURES}/{name}.zsend")).unwrap();
            let (got, want) = end_checksum(&stream);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn binomials_match_definition() {
        let exact = |n: u128, k: u32| -> u128 {
            match k {
                2 => n * n.saturating_sub(1) / 2,
                _ => n * n.saturating_sub(1) * n.saturating_sub(2) / 6,
            }
        };
        for n in (0..2000u64).chain([1 << 32, (1 << 40) + 7, (1 << 42) - 1]) {
            assert_eq!(binom2(n), exact(n as u128, 2) as u64, "C({n},2)");
            assert_eq!(binom3(n), exact(n as u128, 3) as u64, "C({n},3)");
        }
        // Past u128 range for the naive product: compare mod 2^64 via
        // C(n,3) = C(n-1,3) + C(n-1,2).
        for n in [u64::MAX / 4, u64::MAX / 4 + 2, u64::MAX - 5] {
            assert_eq!(binom3(n), binom3(n - 1).wrapping_add(binom2(n - 1)));
        }
    }

    /// Lane fold for several lane counts against the reference, including
    /// all-ones data where every accumulator wraps.
    #[test]
    fn lane_fold_exact_for_any_lane_count() {
        fn check<const L: usize>(buf: &[u8]) {
            let w = words(buf);
            let (sums, used) = lane_sums::<L, false>(w);
            assert_eq!(used % L, 0);
            let want = reference_f4(&buf[..used * 4], false, ZioCksum::ZERO);
            assert_eq!(sums, want, "L={L} len={}", buf.len());
        }
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for len in [0, 4, 64, 1000, 4096, 65536] {
            for buf in [rng.bytes(len), vec![0xff; len]] {
                check::<1>(&buf);
                check::<2>(&buf);
                check::<3>(&buf);
                check::<4>(&buf);
                check::<8>(&buf);
                check::<16>(&buf);
            }
        }
    }

    /// Public API (whichever path the CPU picks) and each path on its own,
    /// from random prior state, for every length 0..=4096 and odd lengths.
    #[test]
    fn fast_paths_match_reference_all_lengths() {
        let mut rng = Rng(0x2545f4914f6cdd1d);
        let data = rng.bytes(4096 + 64);
        let lens = (0..=4096usize).chain([4097, 4099, 8191, 12345, 65537, 131071, 131072]);
        let big = rng.bytes(131072 + 3);
        for len in lens {
            // Misaligned starts too: `off` shifts the slice within the vec.
            let off = len % 3;
            let buf = if len <= 4096 {
                &data[off..off + len]
            } else {
                &big[..len]
            };
            let init = rng.state();
            for swap in [false, true] {
                let want = reference_f4(buf, swap, init);
                let mut zc = init;
                if swap {
                    fletcher_4_incremental_byteswap(buf, &mut zc);
                } else {
                    fletcher_4_incremental_native(buf, &mut zc);
                }
                assert_eq!(zc, want, "len={len} swap={swap}");
            }
            let zero = reference_f4(buf, false, ZioCksum::ZERO);
            assert_eq!(fletcher_4_native(buf), zero, "len={len}");
            assert_eq!(
                fletcher_4_byteswap(buf),
                reference_f4(buf, true, ZioCksum::ZERO)
            );
            assert_eq!(paths::scalar_native(buf), zero, "scalar len={len}");
            assert_eq!(paths::portable_native(buf), zero, "portable len={len}");
            if let Some(zc) = paths::avx2_native(buf) {
                assert_eq!(zc, zero, "avx2 len={len}");
            }
        }
    }

    /// Each kernel's byteswap build directly, so a path the dispatcher does
    /// not pick on this CPU is still checked.
    #[test]
    fn byteswap_kernels_match_reference() {
        let mut rng = Rng(7);
        for len in [512, 513, 1024 + 12, 9000] {
            let buf = rng.bytes(len);
            let w = words(&buf);
            let (sums, used) = lanes_portable::<true>(w);
            assert_eq!(sums, reference_f4(&buf[..used * 4], true, ZioCksum::ZERO));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU was just checked to support AVX2.
                let (sums, used) = unsafe { lanes_avx2::<true>(w) };
                assert_eq!(sums, reference_f4(&buf[..used * 4], true, ZioCksum::ZERO));
            }
        }
    }

    /// Chunks that are multiples of 4 bytes, in random sizes straddling the
    /// scalar/lane threshold, give the one-shot result.
    #[test]
    fn incremental_chunks_equal_one_shot() {
        let mut rng = Rng(0xdeadbeefcafef00d);
        let buf = rng.bytes(300_000);
        for swap in [false, true] {
            let whole = if swap {
                fletcher_4_byteswap(&buf)
            } else {
                fletcher_4_native(&buf)
            };
            for round in 0..20 {
                let mut zc = ZioCksum::ZERO;
                let mut rest = &buf[..];
                while !rest.is_empty() {
                    let max_words = if round % 2 == 0 { 300 } else { 20_000 };
                    let n = ((rng.next() as usize % max_words) * 4).min(rest.len());
                    let (piece, tail) = rest.split_at(n);
                    if swap {
                        fletcher_4_incremental_byteswap(piece, &mut zc);
                    } else {
                        fletcher_4_incremental_native(piece, &mut zc);
                    }
                    rest = tail;
                }
                assert_eq!(zc, whole, "round={round} swap={swap}");
            }
        }
    }

    /// Large word counts exercise `advance` where OpenZFS's closed form
    /// would overflow; compare against two half-steps.
    #[test]
    fn advance_composes() {
        let mut rng = Rng(99);
        for n in [1u64, 1000, 1 << 22, 1 << 40, (1 << 61) + 3] {
            let (s, x, y) = (rng.state(), rng.state(), rng.state());
            // Sums of n words then m words from zero: advance(x, m, y).
            let m = n / 2 + 1;
            let joined = advance(x, m, y);
            assert_eq!(
                advance(advance(s, n, x), m, y),
                advance(s, n + m, joined),
                "n={n}"
            );
        }
    }
}
