//! The real zstreamdump (zfs-fuse) accepts every stream zsim writes: full,
//! incremental, clone, -D, in both byte orders. Its summary counts match
//! zsim's own dump, and it finds no checksum error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use engine::context::{ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{DedupTable, NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::ByteOrder;
use engine::vdev::MemDevice;

fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/zfs-fuse");
    std::fs::read(dir.join(format!("{name}.zsend"))).unwrap()
}

fn zstreamdump() -> Option<PathBuf> {
    let found = ["/usr/sbin/zstreamdump", "/sbin/zstreamdump"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have zfs-fuse: .ci/run installs it"
        );
        eprintln!("!!! zstreamdump not found: skipping (apt-get install zfs-fuse)");
    }
    found
}

fn run(program: &Path, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn summary(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != "SUMMARY:")
        .map(str::to_string)
        .collect()
}

#[test]
fn zstreamdump_accepts_every_stream_zsim_writes() {
    let Some(real) = zstreamdump() else { return };
    let mut pool = Pool::create(
        Box::new(MemDevice::new(256 << 20, 512)),
        "fxp",
        Box::new(ManualClock::new(1)),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap();
    let none = RecvOptions::default();
    for (target, stream) in [
        ("fxp/chain", "chain_c1_full"),
        ("fxp/chain", "chain_c1_c2_i"),
        ("fxp/corigin", "clone_origin_full"),
    ] {
        pool.receive(target, &fixture(stream)[..], &none, &mut NoInterrupt)
            .unwrap();
    }
    let clone = RecvOptions {
        origin: Some("fxp/corigin@o".into()),
        ..RecvOptions::default()
    };
    pool.receive("fxp/cln", &fixture("clone_i")[..], &clone, &mut NoInterrupt)
        .unwrap();

    let cases: [(&str, Option<&str>, bool); 4] = [
        ("fxp/chain@c1", None, false),
        ("fxp/chain@c2", Some("fxp/chain@c1"), false),
        ("fxp/cln@m1", Some("fxp/corigin@o"), false),
        ("fxp/chain@c2", None, true),
    ];
    let sim = Path::new(env!("CARGO_BIN_EXE_sim"));
    for (snap, from, dedup) in cases {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let options = SendOptions {
                byte_order: order,
                ..SendOptions::default()
            };
            let mut table = DedupTable::default();
            let mut out = Vec::new();
            pool.send(
                snap,
                from,
                &mut out,
                &options,
                dedup.then_some(&mut table),
                &mut NoInterrupt,
            )
            .unwrap();
            let what = format!("{snap} from {from:?} dedup {dedup} {order:?}");
            let (code, theirs) = run(&real, &["-v"], &out);
            assert_eq!(code, 0, "{what}: zstreamdump refused it");
            assert!(
                !theirs.contains("Expected checksum"),
                "{what}: zstreamdump found a checksum error"
            );
            assert!(!theirs.contains("INVALID"), "{what}");
            let (code, ours) = run(sim, &["dump", "-v"], &out);
            assert_eq!(code, 0, "{what}");
            assert_eq!(summary(&ours), summary(&theirs), "{what}");
            assert!(
                ours == theirs,
                "{what}: zsim's dump differs from zstreamdump's"
            );
        }
    }
}
