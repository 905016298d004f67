//! Every stream the zsim command line writes is accepted by the real ZFS.
//!
//! The fixture chains are received with `sim recv` into a pool image made by
//! `sim pool create`, and sent back with `sim send`: full, incremental,
//! clone and `-D` streams, each with `--byte-order native` and `big`. Then:
//!
//! - the real `zstreamdump -v` (zfs-fuse) reads each one with exit status 0,
//!   finds no checksum error, and prints exactly what `sim dump -v` prints
//!   (so the record counts agree); a native stream of a snapshot that came
//!   from a fixture is that fixture, byte for byte;
//! - a real zfs-fuse daemon (`common/zfs_fuse.rs`) `zfs recv`s each one, in
//!   both byte orders, and lists the snapshot with the stream's guid.
//!
//! The received filesystems are not mounted here: `zfs_fuse_roundtrip.rs`
//! mounts every received snapshot and compares its files with the fixture's
//! manifest.

mod common;

use std::path::{Path, PathBuf};

use common::zfs_fuse::{self, Input, Output, Run, ZfsFuse, run};
use common::{Scratch, fixture, fixture_path};

fn sim(args: &[&str], input: Input<'_>, output: Output<'_>) -> Run {
    run(Path::new(env!("CARGO_BIN_EXE_sim")), args, input, output)
}

/// What `sim recv` receives, in order: target, fixture, clone origin.
const RECEIVE: &[(&str, &str, Option<&str>)] = &[
    ("fxp/chain", "chain_c1_full", None),
    ("fxp/chain", "chain_c1_c2_i", None),
    ("fxp/chain", "chain_c2_c3_i", None),
    ("fxp/chain_all", "chain_c1_full", None),
    ("fxp/chain_all", "chain_c1_c4_I", None),
    ("fxp/corigin", "clone_origin_full", None),
    ("fxp/cln", "clone_i", Some("fxp/corigin@o")),
    ("fxp/dedup", "dedup_full_D", None),
    ("fxp/dedup", "dedup_i_D", None),
    ("fxp/many", "manyfiles_full", None),
    ("fxp/many", "manyfiles_i", None),
    ("fxp/small", "small_full", None),
    ("fxp/sparse", "sparse_full", None),
    ("fxp/large", "large_full", None),
    ("fxp/xat", "xattr_full", None),
    ("fxp/xat", "xattr_i", None),
    ("fxp/incr", "incr_base_full", None),
    ("fxp/incr", "incr_i", None),
];

/// One `sim send`.
struct Case {
    /// Short name, for files and messages.
    name: &'static str,
    snapshot: &'static str,
    /// `-i` argument.
    from: Option<&'static str>,
    dedup: bool,
    /// The fixture a native stream must equal, byte for byte.
    fixture: Option<&'static str>,
    /// Where the real ZFS receives it (under POOL/ORDER/), in this order.
    target: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "chain_c1",
        snapshot: "fxp/chain@c1",
        from: None,
        dedup: false,
        fixture: Some("chain_c1_full"),
        target: "chain",
    },
    Case {
        name: "chain_c1_c2",
        snapshot: "fxp/chain@c2",
        from: Some("@c1"),
        dedup: false,
        fixture: Some("chain_c1_c2_i"),
        target: "chain",
    },
    Case {
        name: "chain_c2_c3",
        snapshot: "fxp/chain@c3",
        from: Some("fxp/chain@c2"),
        dedup: false,
        fixture: Some("chain_c2_c3_i"),
        target: "chain",
    },
    // @c4 came in a compound -I stream; its @c3 is chain@c3 (same guid).
    // Not the fixture chain_c3_c4_i: the name in BEGIN is chain_all's.
    Case {
        name: "chain_c3_c4",
        snapshot: "fxp/chain_all@c4",
        from: Some("@c3"),
        dedup: false,
        fixture: None,
        target: "chain",
    },
    Case {
        name: "chain_c3_D",
        snapshot: "fxp/chain@c3",
        from: None,
        dedup: true,
        fixture: None,
        target: "chain_d",
    },
    Case {
        name: "corigin",
        snapshot: "fxp/corigin@o",
        from: None,
        dedup: false,
        fixture: Some("clone_origin_full"),
        target: "corigin",
    },
    Case {
        name: "clone",
        snapshot: "fxp/cln@m1",
        from: Some("fxp/corigin@o"),
        dedup: false,
        fixture: Some("clone_i"),
        target: "cln",
    },
    Case {
        name: "dedup_d1_D",
        snapshot: "fxp/dedup@d1",
        from: None,
        dedup: true,
        fixture: Some("dedup_full_D"),
        target: "dedup",
    },
    Case {
        name: "dedup_d1_d2_D",
        snapshot: "fxp/dedup@d2",
        from: Some("@d1"),
        dedup: true,
        fixture: Some("dedup_i_D"),
        target: "dedup",
    },
    Case {
        name: "many_m1",
        snapshot: "fxp/many@m1",
        from: None,
        dedup: false,
        fixture: Some("manyfiles_full"),
        target: "many",
    },
    Case {
        name: "many_m1_m2",
        snapshot: "fxp/many@m2",
        from: Some("@m1"),
        dedup: false,
        fixture: Some("manyfiles_i"),
        target: "many",
    },
    Case {
        name: "many_m2_D",
        snapshot: "fxp/many@m2",
        from: None,
        dedup: true,
        fixture: None,
        target: "many_d",
    },
    Case {
        name: "small",
        snapshot: "fxp/small@s1",
        from: None,
        dedup: false,
        fixture: Some("small_full"),
        target: "small",
    },
    Case {
        name: "sparse",
        snapshot: "fxp/sparse@s1",
        from: None,
        dedup: false,
        fixture: Some("sparse_full"),
        target: "sparse",
    },
    Case {
        name: "large",
        snapshot: "fxp/large@s1",
        from: None,
        dedup: false,
        fixture: Some("large_full"),
        target: "large",
    },
    Case {
        name: "xattr_x1",
        snapshot: "fxp/xat@x1",
        from: None,
        dedup: false,
        fixture: Some("xattr_full"),
        target: "xat",
    },
    Case {
        name: "xattr_x1_x2",
        snapshot: "fxp/xat@x2",
        from: Some("@x1"),
        dedup: false,
        fixture: Some("xattr_i"),
        target: "xat",
    },
    Case {
        name: "incr_base",
        snapshot: "fxp/incr@base",
        from: None,
        dedup: false,
        fixture: Some("incr_base_full"),
        target: "incr",
    },
    Case {
        name: "incr_next",
        snapshot: "fxp/incr@next",
        from: Some("@base"),
        dedup: false,
        fixture: Some("incr_i"),
        target: "incr",
    },
];

const ORDERS: [&str; 2] = ["native", "big"];

/// A stream `sim send` wrote.
struct Sent {
    case: &'static Case,
    order: &'static str,
    path: PathBuf,
    toguid: u64,
}

/// Receives the fixtures with `sim recv` and sends every case back with
/// `sim send`, in both byte orders, into files in `dir`.
fn cli_streams(dir: &Scratch) -> Vec<Sent> {
    let image = dir.join("fxp.img");
    let image = image.to_str().unwrap();
    sim(
        &["pool", "create", image, "--size", "512M", "--seed", "11"],
        Input::Null,
        Output::Capture,
    )
    .expect_success();
    for &(target, stream, origin) in RECEIVE {
        let origin = origin.map(|o| format!("origin={o}"));
        let mut args = vec!["recv", image, target];
        if let Some(o) = &origin {
            args.extend(["-o", o]);
        }
        sim(&args, Input::File(&fixture_path(stream)), Output::Capture).expect_success();
    }
    let mut sent = Vec::new();
    for case in CASES {
        for order in ORDERS {
            let path = dir.join(&format!("{}.{order}.zsend", case.name));
            let mut args = vec!["send", image, case.snapshot, "--byte-order", order];
            if let Some(from) = case.from {
                args.extend(["-i", from]);
            }
            if case.dedup {
                args.push("-D");
            }
            let out = sim(&args, Input::Null, Output::File(&path));
            assert!(
                out.success(),
                "sim send {} ({order}): {}",
                case.name,
                out.stderr
            );
            let dump = sim(
                &["dump", path.to_str().unwrap()],
                Input::Null,
                Output::Capture,
            )
            .expect_success()
            .text();
            let toguid = dump
                .lines()
                .find_map(|l| l.trim().strip_prefix("toguid = "))
                .map(|hex| u64::from_str_radix(hex, 16).unwrap())
                .unwrap();
            sent.push(Sent {
                case,
                order,
                path,
                toguid,
            });
        }
    }
    sent
}

#[test]
fn zstreamdump_accepts_every_stream_the_cli_writes() {
    let Some(zstreamdump) = zfs_fuse::zstreamdump() else {
        return;
    };
    let dir = Scratch::new("accepts-dump");
    let streams = cli_streams(&dir);
    assert_eq!(streams.len(), CASES.len() * 2);
    for s in &streams {
        let what = format!("{} ({})", s.case.name, s.order);
        let theirs = run(&zstreamdump, &["-v"], Input::File(&s.path), Output::Capture);
        assert!(
            theirs.success(),
            "{what}: zstreamdump refused it: {}",
            theirs.stderr
        );
        let theirs = theirs.text();
        assert!(
            !theirs.contains("Expected checksum differs"),
            "{what}: zstreamdump found a checksum error"
        );
        assert!(theirs.contains("SUMMARY:"), "{what}");
        let ours = sim(
            &["dump", "-v", s.path.to_str().unwrap()],
            Input::Null,
            Output::Capture,
        );
        assert!(ours.success(), "{what}: {}", ours.stderr);
        let ours = ours.text();
        assert_eq!(
            common::summary(&ours),
            common::summary(&theirs),
            "{what}: record counts differ"
        );
        assert!(
            ours == theirs,
            "{what}: sim dump -v differs from zstreamdump -v"
        );
        if s.order == "big" {
            assert!(theirs.contains("magic = 2f5bacbac"), "{what}");
        }
        if let (Some(name), "native") = (s.case.fixture, s.order) {
            assert!(
                std::fs::read(&s.path).unwrap() == fixture(name),
                "{what}: not byte for byte the fixture {name}"
            );
        }
    }
}

#[test]
fn zfs_fuse_receives_every_stream_the_cli_writes() {
    let Some(zfs) = ZfsFuse::start("real") else {
        return;
    };
    let dir = Scratch::new("accepts-recv");
    let streams = cli_streams(&dir);
    for order in ORDERS {
        let parent = format!("real/{order}");
        zfs.zfs_ok(&["create", &parent]);
        for s in streams.iter().filter(|s| s.order == order) {
            let what = format!("{} ({order})", s.case.name);
            let target = format!("{parent}/{}", s.case.target);
            let received = zfs.recv_file(&target, &s.path, &[]);
            assert!(
                received.success(),
                "{what}: zfs recv {target} failed: {}",
                received.stderr
            );
            let snap = format!("{target}@{}", s.case.snapshot.split_once('@').unwrap().1);
            assert!(
                zfs.snapshots().contains(&snap),
                "{what}: {snap} not listed: {:?}",
                zfs.snapshots()
            );
            assert_eq!(zfs.guid(&snap), Some(s.toguid), "{what}: guid of {snap}");
        }
        if order == "native" {
            // Out of the way: the big-endian clone stream must find its
            // origin (by guid) among the big-endian receives.
            zfs.destroy(&parent, &["-R"]);
            assert!(!zfs.exists(&parent));
        }
    }
    let clone = zfs.zfs_ok(&["get", "-H", "-o", "value", "origin", "real/big/cln"]);
    assert_eq!(clone.trim(), "real/big/corigin@o");
    // Every case made a snapshot of its own.
    assert_eq!(zfs.snapshots().len(), CASES.len(), "{:?}", zfs.snapshots());
    zfs.stop();
}
