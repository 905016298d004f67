//! zsim next to the real ZFS: receive and send throughput on the largest
//! fixtures, measured in one run on one machine.
//!
//! `cargo bench -p sim --bench zfs_fuse`
//!
//! For each fixture (`manyfiles_full`, 5.6 MB of small files and dnodes;
//! `large_full`, 3.8 MB mostly of 128K blocks) it times, with a warm-up run
//! and then `ZSIM_BENCH_REPS` (default 11) repetitions, and prints the
//! median:
//!
//! - zsim through the library: `Pool::receive` of the stream held in memory
//!   and `Pool::send` into a `Vec`, on a `MemDevice` and on a `FileDevice`
//!   image file (a receive ends in a txg sync, which on the image file
//!   includes `fdatasync`); the received filesystem is destroyed between
//!   repetitions;
//! - zsim through the command line as a user runs it, `sim recv IMG FS <
//!   FILE` and `sim send IMG SNAP > FILE` (each run imports and exports the
//!   pool); a fresh image (`sim pool create`, not timed) per repetition;
//! - zfs-fuse (started by `tests/common/zfs_fuse.rs`, pool on a 256 MiB file
//!   vdev): `zfs recv FS < FILE` and `zfs send SNAP > FILE`, wall time of
//!   the commands; `zfs destroy -r FS` (not timed) between repetitions.
//!
//! Every stream sent back is checked to be the fixture, byte for byte (the
//! receiving pool is named `fxp`, as the fixtures' source pool was). MB/s
//! are 10^6 bytes of stream per second; the ratio is zsim's MB/s over
//! zfs-fuse's (above 1: zsim is faster). Without zfs-fuse the zfs-fuse rows
//! are left out (a panic when `CI` is set). Run without `--bench` (as `cargo
//! test --benches` does) it makes one repetition only.

#[path = "../tests/common/zfs_fuse.rs"]
mod zfs_fuse;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::context::{ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::vdev::{BlockDevice, MemDevice};
use sim::file_device::FileDevice;
use zfs_fuse::{Input, Output, ZfsFuse, run};

const FIXTURES: [&str; 2] = ["manyfiles_full", "large_full"];
const POOL_BYTES: u64 = 256 << 20;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures/zfs-fuse")
        .join(format!("{name}.zsend"))
}

/// BEGIN's `drr_toname`: the snapshot the stream holds (`fxp/many@m1`).
fn toname(stream: &[u8]) -> String {
    let name = &stream[56..312];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Timings of one operation by one implementation on one fixture.
struct Measured {
    fixture: &'static str,
    op: &'static str,
    who: &'static str,
    times: Vec<Duration>,
}

/// One stream, received and sent back `reps + 1` times (the first is a
/// warm-up) by `recv` and `send`, which return their own timings;
/// `between` cleans up after each repetition.
struct Timings {
    recv: Vec<Duration>,
    send: Vec<Duration>,
}

fn library(dev: impl Fn() -> Box<dyn BlockDevice>, stream: &[u8], reps: usize) -> Timings {
    let snap = toname(stream);
    let fs = snap.split('@').next().unwrap().to_string();
    let mut pool = Pool::create(
        dev(),
        "fxp",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap();
    let mut t = Timings {
        recv: Vec::new(),
        send: Vec::new(),
    };
    for rep in 0..=reps {
        let started = Instant::now();
        pool.receive(&fs, stream, &RecvOptions::default(), &mut NoInterrupt)
            .unwrap();
        let recv = started.elapsed();
        let mut out = Vec::with_capacity(stream.len());
        let started = Instant::now();
        pool.send(
            &snap,
            None,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        let send = started.elapsed();
        assert!(out == stream, "zsim did not send {snap} back identically");
        pool.destroy(&snap).unwrap();
        pool.destroy(&fs).unwrap();
        if rep > 0 {
            t.recv.push(recv);
            t.send.push(send);
        }
    }
    t
}

fn cli(path: &Path, stream: &[u8], dir: &Path, reps: usize) -> Timings {
    let sim = Path::new(env!("CARGO_BIN_EXE_sim"));
    let snap = toname(stream);
    let fs = snap.split('@').next().unwrap();
    let image = dir.join("cli.img");
    let image_arg = image.to_str().unwrap();
    let out = dir.join("cli-sent.zsend");
    let mut t = Timings {
        recv: Vec::new(),
        send: Vec::new(),
    };
    for rep in 0..=reps {
        let _ = std::fs::remove_file(&image);
        run(
            sim,
            &["pool", "create", image_arg, "--name", "fxp", "--seed", "1"],
            Input::Null,
            Output::Capture,
        )
        .expect_success();
        let recv = run(
            sim,
            &["recv", image_arg, fs],
            Input::File(path),
            Output::Capture,
        )
        .expect_success();
        let send = run(
            sim,
            &["send", image_arg, &snap],
            Input::Null,
            Output::File(&out),
        )
        .expect_success();
        assert!(
            std::fs::read(&out).unwrap() == stream,
            "sim send did not send {snap} back identically"
        );
        if rep > 0 {
            t.recv.push(recv.elapsed);
            t.send.push(send.elapsed);
        }
    }
    let _ = std::fs::remove_file(&image);
    let _ = std::fs::remove_file(&out);
    t
}

fn zfs_fuse(zfs: &ZfsFuse, path: &Path, stream: &[u8], reps: usize) -> Timings {
    let snap = toname(stream);
    let fs = snap.split('@').next().unwrap();
    let out = zfs.dir().join("sent.zsend");
    let mut t = Timings {
        recv: Vec::new(),
        send: Vec::new(),
    };
    for rep in 0..=reps {
        let recv = zfs.recv_file(fs, path, &[]).expect_success();
        let send = zfs.send_to_file(&snap, &[], &out).expect_success();
        assert!(
            std::fs::read(&out).unwrap() == stream,
            "zfs-fuse did not send {snap} back identically"
        );
        zfs.destroy_recursive(fs);
        if rep > 0 {
            t.recv.push(recv.elapsed);
            t.send.push(send.elapsed);
        }
    }
    t
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let reps = if bench_mode {
        std::env::var("ZSIM_BENCH_REPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(11)
    } else {
        1
    };
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("zsim-bench-zfs-fuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let streams: Vec<(&'static str, PathBuf, Vec<u8>)> = FIXTURES
        .iter()
        .map(|&name| {
            let path = fixture_path(name);
            let bytes = std::fs::read(&path).unwrap();
            (name, path, bytes)
        })
        .collect();

    let mut rows = Vec::new();
    let mut push = |fixture, who, t: Timings| {
        rows.push(Measured {
            fixture,
            op: "recv",
            who,
            times: t.recv,
        });
        rows.push(Measured {
            fixture,
            op: "send",
            who,
            times: t.send,
        });
    };
    for (name, path, bytes) in &streams {
        eprintln!("zsim: {name}");
        push(
            *name,
            "zsim library, MemDevice",
            library(|| Box::new(MemDevice::new(POOL_BYTES, 512)), bytes, reps),
        );
        let image = dir.join("lib.img");
        let file_device = || -> Box<dyn BlockDevice> {
            let _ = std::fs::remove_file(&image);
            let dev = FileDevice::create(&image, POOL_BYTES, 512).unwrap();
            Box::new(dev)
        };
        push(
            *name,
            "zsim library, FileDevice",
            library(file_device, bytes, reps),
        );
        let _ = std::fs::remove_file(&image);
        push(*name, "zsim CLI, image file", cli(path, bytes, &dir, reps));
    }
    let real = ZfsFuse::start("fxp");
    if let Some(zfs) = &real {
        for (name, path, bytes) in &streams {
            eprintln!("zfs-fuse: {name}");
            push(*name, "zfs-fuse", zfs_fuse(zfs, path, bytes, reps));
        }
    }
    drop(real);
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "receive and send of a full stream: median of {reps} runs after a warm-up \
         (MB = 10^6 bytes of stream; ratio = zsim MB/s / zfs-fuse MB/s)"
    );
    println!();
    println!(
        "{:<24} {:<5} {:<26} {:>10} {:>10} {:>9} {:>14}",
        "fixture", "op", "implementation", "median ms", "min ms", "MB/s", "zsim/zfs-fuse"
    );
    for (name, _, bytes) in &streams {
        let label = format!("{name} ({:.2} MB)", bytes.len() as f64 / 1e6);
        for op in ["recv", "send"] {
            let rate = |m: &Measured| bytes.len() as f64 / median(&m.times).as_secs_f64() / 1e6;
            let reference = rows
                .iter()
                .find(|m| m.fixture == *name && m.op == op && m.who == "zfs-fuse")
                .map(rate);
            for m in rows.iter().filter(|m| m.fixture == *name && m.op == op) {
                let ratio = match (m.who, reference) {
                    ("zfs-fuse", _) => "1.00".to_string(),
                    (_, Some(r)) => format!("{:.2}", rate(m) / r),
                    (_, None) => "n/a".to_string(),
                };
                println!(
                    "{:<24} {:<5} {:<26} {:>10.1} {:>10.1} {:>9.1} {:>14}",
                    label,
                    op,
                    m.who,
                    median(&m.times).as_secs_f64() * 1e3,
                    m.times.iter().min().unwrap().as_secs_f64() * 1e3,
                    rate(m),
                    ratio
                );
            }
        }
    }
    println!();
    println!("whole bench: {:.1} s", started.elapsed().as_secs_f64());
}
