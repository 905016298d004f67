//! Dump throughput on the largest public fixture (`cargo bench -p engine --bench dump`).

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::stream::dump::{DumpOptions, dump};

fn largest_fixture() -> (String, Vec<u8>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zfs-fuse");
    let mut streams: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "zsend").then(|| {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
        })
        .collect();
    streams.sort_by_key(|(_, s)| s.len());
    streams.pop().unwrap()
}

fn bench_dump(c: &mut Criterion) {
    let (name, stream) = largest_fixture();
    let mut group = c.benchmark_group(format!("dump/{name}"));
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for (label, verbose) in [("plain", false), ("verbose", true)] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let options = DumpOptions {
                    verbose,
                    skip_checksums: false,
                };
                let report = dump(&stream[..], &mut std::io::sink(), options).unwrap();
                assert!(report.is_clean());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dump);
criterion_main!(benches);
