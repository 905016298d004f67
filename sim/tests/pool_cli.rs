//! `cargo sim pool create` and `cargo sim zdb` on real image files.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::Scratch;

use engine::context::{ManualClock, SplitMix64};
use engine::spa::Pool;
use sim::file_device::FileDevice;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An image with a filesystem, two snapshots and a clone, made through the
/// engine's API.
fn populated_image(path: &Path) {
    let dev = FileDevice::create(path, 64 << 20, 512).unwrap();
    let mut pool = Pool::create(
        Box::new(dev),
        "img",
        Box::new(ManualClock::new(1_700_000_000)),
        Box::new(SplitMix64::new(3)),
    )
    .unwrap();
    let fs = pool.create_fs("img/data").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let a = dmu.object_alloc(19, 131072, 17, 264).unwrap();
    dmu.write(a, 0, &vec![7u8; 400_000]).unwrap();
    let b = dmu.object_alloc(20, 512, 0, 0).unwrap();
    dmu.write(b, 0, &[1u8; 512]).unwrap();
    pool.snapshot("img/data@first").unwrap();
    pool.dmu(fs).unwrap().free_range(a, 0, 200_000).unwrap();
    pool.snapshot("img/data@second").unwrap();
    pool.clone_fs("img/data@first", "img/copy").unwrap();
    pool.export().unwrap();
}

/// Flips a byte in the first 4 KiB of `populated_image`'s file data (one
/// copy: nothing can repair it).
fn damage_file_data(image: &Path) {
    let mut bytes = std::fs::read(image).unwrap();
    let pattern = vec![7u8; 4096];
    let at = bytes
        .windows(4096)
        .position(|w| w == &pattern[..])
        .expect("file data on disk");
    bytes[at + 100] ^= 0xff;
    std::fs::write(image, &bytes).unwrap();
}

#[test]
fn pool_create_makes_an_image_zdb_can_read() {
    let dir = Scratch::new("create");
    let image = dir.join("tank.img");
    let out = sim(&[
        "pool",
        "create",
        image.to_str().unwrap(),
        "--size",
        "32M",
        "--seed",
        "9",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text(&out).starts_with("created pool tank (guid 0x"));
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 32 << 20);

    let out = sim(&["zdb", image.to_str().unwrap(), "-b"]);
    assert!(out.status.success());
    let t = text(&out);
    assert!(t.starts_with("pool tank guid 0x"), "{t}");
    assert!(t.contains("no problems found"), "{t}");

    // An existing image is not overwritten.
    let out = sim(&["pool", "create", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = sim(&[
        "pool",
        "create",
        dir.join("x.img").to_str().unwrap(),
        "--size",
        "1M",
    ]);
    assert_eq!(out.status.code(), Some(1), "too small a pool is refused");
    assert!(!dir.join("x.img").exists());
}

#[test]
fn zdb_lists_datasets_objects_and_finds_damage() {
    let dir = Scratch::new("zdb");
    let image = dir.join("img.img");
    populated_image(&image);
    let out = sim(&["zdb", image.to_str().unwrap(), "-dd", "-b"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for name in [
        "img/data@first",
        "img/data@second",
        "img/copy",
        "Dataset img/data, 2 objects",
    ] {
        assert!(t.contains(name), "{name} missing from:\n{t}");
    }
    // Object 1: two levels, 128K blocks, maxblkid 3, plain file, 264-byte bonus.
    assert!(
        t.contains("         1    2  16384 131072          3    19      264         17       1"),
        "{t}"
    );
    assert!(t.contains("no problems found"));

    let out = sim(&["zdb", image.to_str().unwrap(), "img/data@first", "-d"]);
    let t = text(&out);
    assert!(t.contains("Dataset img/data@first, 2 objects"), "{t}");
    assert!(!t.contains("img/copy"));

    // Flip bytes in the data area: the check reports it and exits 1.
    damage_file_data(&image);
    let out = sim(&["zdb", image.to_str().unwrap(), "-b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("unreadable block at"), "{}", text(&out));

    let out = sim(&["zdb", dir.join("missing.img").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

/// `cargo sim scrub` reads every copy and rewrites the bad ones: damage
/// to the second copy of every metadata block (which no ordinary read
/// reaches) is found and repaired, and a scrub after finds nothing; a data
/// block with one copy damaged is reported lost, with exit status 1.
#[test]
fn scrub_repairs_every_damaged_copy_and_names_lost_blocks() {
    let dir = Scratch::new("scrub");
    let image = dir.join("img.img");
    populated_image(&image);
    let second_copies: Vec<u64> = {
        let dev = FileDevice::open(&image).unwrap();
        let mut pool = Pool::import(
            Box::new(dev),
            Box::new(ManualClock::new(1_700_000_100)),
            Box::new(SplitMix64::new(4)),
        )
        .unwrap();
        let options = engine::traverse::WalkOptions {
            min_birth: 0,
            read_data: false,
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut offsets = Vec::new();
        for root in pool.tree_roots() {
            engine::traverse::walk(pool.zio_mut(), &root, options, &mut seen, &mut |bp| {
                offsets.extend(bp.dvas().skip(1).map(|d| d.offset()))
            })
            .unwrap();
        }
        offsets
    };
    assert!(second_copies.len() > 10, "{second_copies:?}");
    let mut bytes = std::fs::read(&image).unwrap();
    for &at in &second_copies {
        bytes[at as usize + 3] ^= 0x40;
    }
    std::fs::write(&image, &bytes).unwrap();

    let out = sim(&["scrub", image.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let n = second_copies.len();
    assert!(
        t.contains(&format!("{n} bad, {n} repaired, 0 with no good copy")),
        "{t}"
    );
    let out = sim(&["scrub", image.to_str().unwrap()]);
    assert!(text(&out).contains(": 0 bad, 0 repaired"), "{}", text(&out));
    let out = sim(&["zdb", image.to_str().unwrap(), "-b"]);
    assert!(out.status.success(), "{}", text(&out));

    // File data has one copy (copies=1): nothing to repair it from.
    damage_file_data(&image);
    let out = sim(&["scrub", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("1 with no good copy"), "{}", text(&out));
    assert!(text(&out).contains("lost: block at"), "{}", text(&out));
}

/// `pool create --mirror`: every command opens the other images by the
/// paths the labels record. Damage to one side's file data is repaired by
/// `scrub` from the other side and counted against that device; with an
/// image gone, the import names it.
#[test]
fn a_mirror_of_images_is_scrubbed_from_its_good_side() {
    let dir = Scratch::new("mirror");
    let (a, b) = (dir.join("a.img"), dir.join("b.img"));
    let out = sim(&[
        "pool",
        "create",
        a.to_str().unwrap(),
        "--mirror",
        b.to_str().unwrap(),
        "--size",
        "64M",
        "--seed",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text(&out).contains("on a mirror of"), "{}", text(&out));
    {
        let mut pool = sim::file_device::import_image(
            &b,
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(3)),
        )
        .unwrap();
        assert!(pool.is_mirror());
        let fs = pool.create_fs("a/data").unwrap();
        let mut dmu = pool.dmu(fs).unwrap();
        let obj = dmu.object_alloc(19, 131072, 17, 264).unwrap();
        dmu.write(obj, 0, &vec![7u8; 400_000]).unwrap();
        pool.export().unwrap();
    }
    damage_file_data(&b);
    let out = sim(&["scrub", a.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(": 1 bad, 1 repaired, 0 with no good copy"),
        "{t}"
    );
    let b_line = t
        .lines()
        .find(|l| l.contains("b.img"))
        .expect("b.img listed");
    assert!(b_line.split_whitespace().last() == Some("1"), "{t}");
    let out = sim(&["scrub", b.to_str().unwrap()]);
    assert!(text(&out).contains(": 0 bad, 0 repaired"), "{}", text(&out));
    let out = sim(&["zdb", a.to_str().unwrap(), "-b"]);
    assert!(out.status.success(), "{}", text(&out));

    std::fs::remove_file(&b).unwrap();
    let out = sim(&["scrub", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b.img") && err.contains("cannot be opened"),
        "{err}"
    );
}

/// `--help` names every built-in scenario, and `run --help` every fault
/// kind: a list that goes stale misleads whoever reads it.
#[test]
fn help_names_every_scenario_and_fault_kind() {
    for cmd in ["run", "campaign"] {
        let help = text(&sim(&[cmd, "--help"]));
        for (name, _) in scenarios::spec::BUILTIN {
            assert!(help.contains(name), "`{cmd} --help` lacks scenario {name}");
        }
    }
    let help = text(&sim(&["run", "--help"]));
    for kind in sim::world::faults::FaultKind::ALL {
        assert!(
            help.contains(kind.name()),
            "`run --help` lacks fault kind {}",
            kind.name()
        );
    }
}

/// Output into a pipe that closes early (`cargo sim zdb IMAGE -dddd | head
/// -1`) ends the command quietly, as any Unix tool, not with a panic. The
/// listing of 3,000 objects is far more than a pipe holds, so the command
/// is still writing when the reader goes.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = Scratch::new("epipe");
    let image = dir.join("many.img");
    let dev = FileDevice::create(&image, 64 << 20, 512).unwrap();
    let mut pool = Pool::create(
        Box::new(dev),
        "many",
        Box::new(ManualClock::new(1_700_000_000)),
        Box::new(SplitMix64::new(5)),
    )
    .unwrap();
    let fs = pool.create_fs("many/fs").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    for _ in 0..3000 {
        dmu.object_alloc(19, 512, 0, 0).unwrap();
    }
    pool.export().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["zdb", image.to_str().unwrap(), "-dddd"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("pool many"), "{first}");
    // The reader is gone: the rest of the listing has nowhere to go.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `pool create -O`, `create -o`, `set` and `get`: properties set where
/// asked, inherited below, shown with ZFS's sources; a bad property or
/// value is a usage error and changes nothing.
#[test]
fn properties_are_set_inherited_and_shown_as_zfs_get_shows_them() {
    let dir = Scratch::new("props");
    let image = dir.join("p.img");
    let image = image.to_str().unwrap();
    let ok = |args: &[&str]| {
        let out = sim(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text(&out)
    };
    ok(&[
        "pool",
        "create",
        image,
        "--seed",
        "1",
        "-O",
        "compression=on",
        "-O",
        "org.x:y=hello",
    ]);
    ok(&["create", image, "p/a", "-o", "recordsize=8192"]);
    ok(&["create", image, "p/a/b"]);
    ok(&["set", image, "mountpoint=/mnt/a", "p/a"]);
    let rows = ok(&["get", image, "all", "p/a/b", "-H"]);
    for row in [
        "p/a/b\trecordsize\t8192\tinherited from p/a",
        "p/a/b\tchecksum\ton\tdefault",
        "p/a/b\tcompression\ton\tinherited from p",
        "p/a/b\tmountpoint\t/mnt/a/b\tinherited from p/a",
        "p/a/b\torg.x:y\thello\tinherited from p",
    ] {
        assert!(rows.lines().any(|l| l == row), "no {row:?} in\n{rows}");
    }
    let table = ok(&["get", image, "recordsize,org.z:q", "p/a"]);
    assert_eq!(
        table.lines().collect::<Vec<_>>(),
        [
            "NAME  PROPERTY    VALUE  SOURCE",
            "p/a   recordsize  8192   local",
            "p/a   org.z:q     -      -",
        ]
    );
    for bad in [
        vec!["set", image, "color=red", "p/a"],
        vec!["set", image, "recordsize=1000", "p/a"],
        vec!["set", image, "compression", "p/a"],
        vec!["create", image, "p/c", "-o", "copies=4"],
        vec!["get", image, "bogus", "p/a"],
    ] {
        let out = sim(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let rows = ok(&["get", image, "recordsize", "p/a", "-H"]);
    assert_eq!(rows, "p/a\trecordsize\t8192\tlocal\n");
    assert!(!sim(&["get", image, "all", "p/c"]).status.success());
}

/// `recv -o PROP=VALUE` sets the value locally on the filesystem received
/// into; a value `zfs set` would refuse is a usage error before anything
/// is read.
#[test]
fn recv_o_sets_properties_on_the_received_filesystem() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = Scratch::new("recv-o");
    let image = dir.join("r.img");
    populated_image(&image);
    let image = image.to_str().unwrap();
    let sent = sim(&["send", image, "img/data@first"]);
    assert!(sent.status.success());
    let recv = |extra: &[&str]| {
        let mut args = vec!["recv", image, "img/r"];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A refused option may end the command before it reads a byte.
        let _ = child.stdin.take().unwrap().write_all(&sent.stdout);
        child.wait_with_output().unwrap()
    };
    for bad in [
        ["-o", "compression=bogus"],
        ["-o", "nosuchprop=1"],
        ["-o", "junk"],
    ] {
        let out = recv(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    assert!(!sim(&["get", image, "all", "img/r"]).status.success());
    let out = recv(&["-o", "compression=lzjb", "-o", "org.t:x=1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = text(&sim(&["get", image, "compression,org.t:x", "img/r", "-H"]));
    assert_eq!(
        rows,
        "img/r\tcompression\tlzjb\tlocal\nimg/r\torg.t:x\t1\tlocal\n"
    );
}
