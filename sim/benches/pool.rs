//! Engine throughput: a 256 MiB object written and read back through the
//! DMU, on the in-memory device and on a pool image file, and the latency of
//! a txg sync. `cargo bench -p sim --bench pool`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::context::{ManualClock, SplitMix64};
use engine::spa::Pool;
use engine::vdev::{BlockDevice, MemDevice};
use sim::file_device::FileDevice;

const OBJECT_BYTES: usize = 256 << 20;
const CHUNK: usize = 1 << 20;

fn pool_on(dev: Box<dyn BlockDevice>) -> Pool {
    Pool::create(
        dev,
        "bench",
        Box::new(ManualClock::new(0)),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap()
}

fn device(kind: &str) -> Box<dyn BlockDevice> {
    let size = 640 << 20;
    match kind {
        "memory" => Box::new(MemDevice::new(size, 512)),
        _ => {
            let path = std::env::temp_dir().join(format!("zsim-bench-{}.img", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let dev = FileDevice::create(&path, size, 512).unwrap();
            std::fs::remove_file(&path).unwrap(); // unlinked, still open
            Box::new(dev)
        }
    }
}

/// Writes the object in 1 MiB pieces and syncs; returns pool and object.
fn write_object(dev: Box<dyn BlockDevice>) -> (Pool, u64, u64) {
    let mut pool = pool_on(dev);
    let fs = pool.create_fs("bench/fs").unwrap();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 + 3) as u8).collect();
    let obj = pool
        .dmu(fs)
        .unwrap()
        .object_alloc(19, 131072, 0, 0)
        .unwrap();
    for i in 0..OBJECT_BYTES / CHUNK {
        let mut tx = pool.tx_create(fs);
        tx.hold_write(obj, (i * CHUNK) as u64, CHUNK as u64);
        pool.tx_assign(&mut tx).unwrap();
        pool.dmu(fs)
            .unwrap()
            .write(obj, (i * CHUNK) as u64, &chunk)
            .unwrap();
        pool.tx_commit(tx).unwrap();
    }
    pool.txg_sync().unwrap();
    (pool, fs, obj)
}

fn bench_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("dmu-256MiB");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(OBJECT_BYTES as u64));
    for kind in ["memory", "file"] {
        group.bench_with_input(BenchmarkId::new("write", kind), kind, |b, kind| {
            b.iter_with_large_drop(|| write_object(device(kind)))
        });
        let (mut pool, fs, obj) = write_object(device(kind));
        group.bench_with_input(BenchmarkId::new("read", kind), kind, |b, _| {
            b.iter(|| {
                let mut dmu = pool.dmu(fs).unwrap();
                let mut sum = 0u64;
                for i in 0..OBJECT_BYTES / CHUNK {
                    let data = dmu.read(obj, (i * CHUNK) as u64, CHUNK as u64).unwrap();
                    sum = sum.wrapping_add(u64::from(data[i % CHUNK]));
                }
                sum
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("txg-sync");
    group.sample_size(20);
    for blocks in [1usize, 64] {
        group.bench_with_input(
            BenchmarkId::new("dirty-128K-blocks", blocks),
            &blocks,
            |b, &blocks| {
                let mut pool = pool_on(device("memory"));
                let fs = pool.create_fs("bench/fs").unwrap();
                let obj = pool
                    .dmu(fs)
                    .unwrap()
                    .object_alloc(19, 131072, 0, 0)
                    .unwrap();
                let data = vec![0x5a; 131072];
                let mut round = 0u64;
                b.iter(|| {
                    round += 1;
                    let mut dmu = pool.dmu(fs).unwrap();
                    for i in 0..blocks {
                        dmu.write(
                            obj,
                            ((round as usize % 8) * blocks + i) as u64 * 131072,
                            &data,
                        )
                        .unwrap();
                    }
                    pool.txg_sync().unwrap();
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_pool);
criterion_main!(benches);
