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
//!
//! Then, at scale (with `--bench` only, and only with zfs-fuse): a 256 MiB
//! file of seeded random bytes (128K records, nothing compresses) in a
//! filesystem made by zfs-fuse, sent once and cached under
//! `target/zfs-fuse-bench/` (about 270 MB; delete it to make it again).
//! Each of `ZSIM_BENCH_SCALE_REPS` (default 5) rounds, after a warm-up
//! round, runs zsim's command and zfs-fuse's in alternation (A B A B, so
//! the drift of a shared machine falls on both): `sim recv IMG FS < FILE`
//! (into a fresh sparse image file) against `zfs recv FS < FILE`, `sim send
//! IMG SNAP > /dev/null` against `zfs send SNAP > /dev/null`, and `sim dump
//! FILE > /dev/null` against `zstreamdump < FILE > /dev/null`. It prints
//! the median wall time of each, the median of the rounds' ratios, and the
//! peak RSS of each zsim command (from GNU time, `/usr/bin/time`, when it
//! is installed). The warm-up round also checks
//! that zsim sends the stream back byte for byte.

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
    let at_scale = if bench_mode { scale::measure() } else { None };

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
    match at_scale {
        Some(table) => print!("{table}"),
        None if bench_mode => println!("\nat scale: skipped (no zfs-fuse)"),
        None => println!("\nat scale: skipped (runs with --bench only)"),
    }
    println!();
    println!("whole bench: {:.1} s", started.elapsed().as_secs_f64());
}

/// The 256 MiB comparison (see the module documentation).
mod scale {
    use std::fmt::Write as _;
    use std::fs::File;
    use std::io::{BufWriter, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::median;
    use super::zfs_fuse::ZfsFuse;

    const FILE_BYTES: usize = 256 << 20;
    /// zfs-fuse's vdev: the file once, received once, and room to spare.
    const VDEV_BYTES: u64 = 1 << 30;
    const SOURCE_FS: &str = "fxp/scale";
    const SNAPSHOT: &str = "fxp/scale@s";

    fn cached_stream() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/zfs-fuse-bench/random-256m.zsend")
    }

    /// Makes the stream with zfs-fuse: a filesystem with one file of
    /// seeded random bytes, snapshotted and sent; written to a temporary
    /// name and renamed, so a cut-short run leaves no half stream.
    fn make_stream(zfs: &ZfsFuse, path: &Path) {
        eprintln!("at scale: making the 256 MiB stream with zfs-fuse (once)");
        zfs.zfs_ok(&["create", "-o", "compression=off", SOURCE_FS]);
        let mnt = zfs.mount(SOURCE_FS).expect("mount the new filesystem");
        {
            let file = File::create(mnt.join("random")).expect("create the file");
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut rng = ChaCha8Rng::seed_from_u64(256);
            let mut chunk = vec![0u8; 1 << 20];
            for _ in 0..FILE_BYTES / chunk.len() {
                rng.fill_bytes(&mut chunk);
                out.write_all(&chunk).expect("write the file");
            }
            out.into_inner()
                .expect("flush the file")
                .sync_all()
                .expect("sync the file");
        }
        zfs.unmount(SOURCE_FS);
        zfs.zfs_ok(&["snapshot", SNAPSHOT]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let partial = path.with_extension("partial");
        zfs.send_to_file(SNAPSHOT, &[], &partial).expect_success();
        std::fs::rename(&partial, path).unwrap();
        zfs.destroy_recursive(SOURCE_FS);
    }

    /// A command's wall time and peak resident set.
    struct Timed {
        elapsed: Duration,
        /// From GNU time (`/usr/bin/time -f %M`), when it is installed.
        peak_rss: Option<u64>,
    }

    const GNU_TIME: &str = "/usr/bin/time";

    /// Runs `program args` with standard input from `input` (or nothing)
    /// and standard output to `output` (or `/dev/null`); panics with its
    /// standard error unless it succeeds.
    ///
    /// The command runs under GNU time when it is installed, which forks it
    /// and reports its peak RSS. A peak RSS taken here (`wait4`) would not
    /// do: a child spawned from this process starts its high-water mark
    /// from this process's, which holds the fixtures' pools. Commands of
    /// both implementations run the same way, so each pays the same
    /// fork.
    fn timed(program: &Path, args: &[&str], input: Option<&Path>, output: Option<&Path>) -> Timed {
        let errors = tempfile_path("stderr");
        let rss_file = tempfile_path("rss");
        let gnu_time = Path::new(GNU_TIME).is_file();
        let mut cmd = if gnu_time {
            let mut cmd = Command::new(GNU_TIME);
            cmd.args(["-f", "%M", "-o"]).arg(&rss_file).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .stdin(input.map_or_else(Stdio::null, |p| File::open(p).unwrap().into()))
            .stdout(File::create(output.unwrap_or(Path::new("/dev/null"))).unwrap())
            .stderr(File::create(&errors).unwrap());
        let started = Instant::now();
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let elapsed = started.elapsed();
        let text = std::fs::read_to_string(&errors).unwrap_or_default();
        let _ = std::fs::remove_file(&errors);
        assert!(
            status.success(),
            "`{} {}` failed ({status}): {}",
            program.display(),
            args.join(" "),
            text.trim_end()
        );
        // GNU time writes the KiB figure as the last line of its file.
        let peak_rss = std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|t| t.lines().last()?.trim().parse::<u64>().ok())
            .map(|kib| kib << 10);
        let _ = std::fs::remove_file(&rss_file);
        Timed { elapsed, peak_rss }
    }

    fn tempfile_path(what: &str) -> PathBuf {
        std::env::temp_dir().join(format!("zsim-bench-scale-{}-{what}", std::process::id()))
    }

    /// One operation's rounds: zsim's and zfs-fuse's times, zsim's RSS.
    #[derive(Default)]
    struct Pair {
        zsim: Vec<Duration>,
        zfs: Vec<Duration>,
        rss: Vec<Option<u64>>,
    }

    impl Pair {
        fn push(&mut self, zsim: Timed, zfs: Duration) {
            self.zsim.push(zsim.elapsed);
            self.rss.push(zsim.peak_rss);
            self.zfs.push(zfs);
        }
    }

    /// Runs the rounds; `None` without zfs-fuse.
    pub fn measure() -> Option<String> {
        let reps: usize = std::env::var("ZSIM_BENCH_SCALE_REPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5);
        let zfs = ZfsFuse::start_sized("fxp", VDEV_BYTES)?;
        let stream = cached_stream();
        if !stream.is_file() {
            make_stream(&zfs, &stream);
        }
        let stream_bytes = std::fs::metadata(&stream).unwrap().len();
        let sim = Path::new(env!("CARGO_BIN_EXE_sim"));
        let zfs_bin = zfs.binaries().zfs.clone();
        let zstreamdump = zfs.binaries().zstreamdump.clone();
        let image = tempfile_path("image");
        let image_arg = image.to_str().unwrap().to_string();
        let stream_arg = stream.to_str().unwrap().to_string();
        let fs = SOURCE_FS;
        let (mut recv, mut send, mut dump) = (Pair::default(), Pair::default(), Pair::default());
        for round in 0..=reps {
            eprintln!("at scale: round {round} of {reps} (0 is the warm-up)");
            let _ = std::fs::remove_file(&image);
            timed(
                sim,
                &[
                    "pool", "create", &image_arg, "--name", "fxp", "--size", "1G", "--seed", "1",
                ],
                None,
                None,
            );
            let zsim_recv = timed(sim, &["recv", &image_arg, fs], Some(&stream), None);
            let zfs_recv = timed(&zfs_bin, &["recv", fs], Some(&stream), None).elapsed;
            if round == 0 {
                let back = tempfile_path("sent");
                timed(sim, &["send", &image_arg, SNAPSHOT], None, Some(&back));
                assert!(
                    same_file(&back, &stream),
                    "sim send did not send {SNAPSHOT} back byte for byte"
                );
                let _ = std::fs::remove_file(&back);
            }
            let zsim_send = timed(sim, &["send", &image_arg, SNAPSHOT], None, None);
            let zfs_send = timed(&zfs_bin, &["send", SNAPSHOT], None, None).elapsed;
            let zsim_dump = timed(sim, &["dump", &stream_arg], None, None);
            let zfs_dump = timed(&zstreamdump, &[], Some(&stream), None).elapsed;
            zfs.destroy_recursive(fs);
            if round > 0 {
                recv.push(zsim_recv, zfs_recv);
                send.push(zsim_send, zfs_send);
                dump.push(zsim_dump, zfs_dump);
            }
        }
        let _ = std::fs::remove_file(&image);
        drop(zfs);

        let mut out = String::new();
        let mb = stream_bytes as f64 / 1e6;
        writeln!(out).unwrap();
        writeln!(
            out,
            "at scale: one 256 MiB file of random bytes, a {mb:.0} MB stream made by zfs-fuse; \
             {reps} rounds, zsim and zfs-fuse in alternation, medians"
        )
        .unwrap();
        writeln!(out).unwrap();
        writeln!(
            out,
            "{:<6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>14}",
            "op", "zsim ms", "zsim MB/s", "zfs ms", "zfs MB/s", "ratio", "zsim peak RSS"
        )
        .unwrap();
        for (op, pair) in [("recv", &recv), ("send", &send), ("dump", &dump)] {
            let (a, b) = (median(&pair.zsim), median(&pair.zfs));
            let mut ratios: Vec<f64> = pair
                .zsim
                .iter()
                .zip(&pair.zfs)
                .map(|(z, f)| f.as_secs_f64() / z.as_secs_f64())
                .collect();
            ratios.sort_by(f64::total_cmp);
            let rss = match pair.rss.iter().copied().collect::<Option<Vec<u64>>>() {
                Some(all) => format!("{} MB", all.iter().max().unwrap() / 1_000_000),
                None => format!("n/a ({GNU_TIME}?)"),
            };
            writeln!(
                out,
                "{:<6} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>9.2} {:>14}",
                op,
                a.as_secs_f64() * 1e3,
                mb / a.as_secs_f64(),
                b.as_secs_f64() * 1e3,
                mb / b.as_secs_f64(),
                ratios[ratios.len() / 2],
                rss,
            )
            .unwrap();
        }
        writeln!(
            out,
            "(ratio: the median over rounds of zfs-fuse's time / zsim's; above 1, zsim is faster; \
             RSS: the largest of the rounds)"
        )
        .unwrap();
        Some(out)
    }

    fn same_file(a: &Path, b: &Path) -> bool {
        use std::io::Read;
        let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
        if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
            return false;
        }
        let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        loop {
            let n = fa.read(&mut ba).unwrap();
            if n == 0 {
                return true;
            }
            fb.read_exact(&mut bb[..n]).unwrap();
            if ba[..n] != bb[..n] {
                return false;
            }
        }
    }
}
