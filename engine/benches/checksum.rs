//! Fletcher-4 throughput per path against a memcpy of the same buffer
//! (warm cache).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::checksum::{fletcher_4_byteswap, fletcher_4_native, paths};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    for size in [128 << 10, 1 << 20] {
        // Source and destination share one page-aligned arena at equal page
        // offsets: with glibc's `rep movsb` on AMD, a destination a few bytes
        // past the source modulo 4 KiB runs ~15x slower, which would make the
        // memcpy baseline depend on where the allocator happened to put it.
        let mut arena = vec![1u8; 2 * size + 4096];
        let base = arena.as_ptr().align_offset(4096);
        let (src, dst) = arena[base..base + 2 * size].split_at_mut(size);
        for (i, b) in src.iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
        let src = &*src;
        let label = format!("{}KiB", size >> 10);
        let mut g = c.benchmark_group("fletcher4");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("memcpy", &label), src, |b, s| {
            b.iter(|| {
                dst.copy_from_slice(black_box(s));
                black_box(&dst);
            })
        });
        g.bench_with_input(BenchmarkId::new("dispatch", &label), src, |b, s| {
            b.iter(|| fletcher_4_native(black_box(s)))
        });
        g.bench_with_input(
            BenchmarkId::new("dispatch_byteswap", &label),
            src,
            |b, s| b.iter(|| fletcher_4_byteswap(black_box(s))),
        );
        if paths::avx2_native(src).is_some() {
            g.bench_with_input(BenchmarkId::new("avx2", &label), src, |b, s| {
                b.iter(|| paths::avx2_native(black_box(s)))
            });
        }
        g.bench_with_input(BenchmarkId::new("portable", &label), src, |b, s| {
            b.iter(|| paths::portable_native(black_box(s)))
        });
        g.bench_with_input(BenchmarkId::new("scalar", &label), src, |b, s| {
            b.iter(|| paths::scalar_native(black_box(s)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
