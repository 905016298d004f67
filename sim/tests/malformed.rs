//! The malformed sender's dictionary, one malformation at a time: each one,
//! aimed at a ZPL filesystem with micro and fat directories, symlinks and
//! attributes, is received (a receive does not read what a directory or a
//! znode holds) and a walk of what it made is refused with its errno, by
//! its check, naming what is malformed. A check the engine loses fails
//! here; so does a malformation the stream no longer gives a record to.
//! Then the simulation: a `zpl` run with the sender always malformed
//! passes, judging walks and destroying what each receive made.

use std::collections::BTreeSet;

use engine::context::{ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::ByteOrder;
use engine::vdev::MemDevice;
use engine::zpl::{self, Stamp, ZfsTime, vnops};
use scenarios::spec::Spec;
use sim::runner::{Faults, Outcome, RunConfig, run};
use sim::world::faults::FaultSpec;
use sim::world::malformed::{Malformation, MalformedDraw, Reach, rewrite_with};

fn new_pool(name: &str) -> Pool {
    Pool::create(
        Box::new(MemDevice::new(128 << 20, 512)),
        name,
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(11)),
    )
    .unwrap()
}

/// tank/fs@s1: nested directories, files, symlinks (inline and in a
/// block), a hard link, attributes, and a directory big enough to be a fat
/// ZAP of several leaves, with long and short names.
fn source() -> Pool {
    let mut pool = new_pool("tank");
    pool.create_fs("tank/fs").unwrap();
    let id = pool.lookup("tank/fs").unwrap();
    let s = Stamp {
        now: ZfsTime {
            secs: 200,
            nsecs: 0,
        },
        txg: 5,
    };
    let mut dmu = pool.dmu(id).unwrap();
    zpl::create_fs(&mut dmu, s.now, 5).unwrap();
    vnops::mkdir(&mut dmu, s, b"a", 0o755).unwrap();
    vnops::mkdir(&mut dmu, s, b"a/b", 0o700).unwrap();
    let f = vnops::create(&mut dmu, s, b"a/f.txt", 0o644, 4096).unwrap();
    vnops::write(&mut dmu, s, f, 0, b"hello\n").unwrap();
    vnops::symlink(&mut dmu, s, b"a/b/up", b"../f.txt").unwrap();
    vnops::symlink(&mut dmu, s, b"far", &[b'z'; 200]).unwrap();
    vnops::link(&mut dmu, s, b"a/b/hard", b"a/f.txt").unwrap();
    vnops::set_xattr(&mut dmu, s, b"a/f.txt", b"user.k", Some(b"v1")).unwrap();
    vnops::mkdir(&mut dmu, s, b"many", 0o755).unwrap();
    for i in 0..600 {
        let name = if i % 3 == 0 {
            format!("many/s{i}")
        } else {
            format!("many/a-name-longer-than-a-microzap-holds-so-the-zap-is-fat-{i:04}")
        };
        vnops::create(&mut dmu, s, name.as_bytes(), 0o644, 512).unwrap();
    }
    pool.snapshot("tank/fs@s1").unwrap();
    pool
}

#[test]
fn every_malformation_is_received_and_refused_by_its_check() {
    let mut src = source();
    let mut stream = Vec::new();
    let options = SendOptions {
        byte_order: ByteOrder::NATIVE,
        dedup: false,
        corrupt_data: false,
    };
    src.send(
        "tank/fs@s1",
        None,
        &mut stream,
        &options,
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    // What a walk meets: the namespace's objects and the master node, and
    // their attribute directories and files.
    let id = src.lookup("tank/fs@s1").unwrap();
    let walked: BTreeSet<u64> = zpl::walk(&mut src, id)
        .unwrap()
        .iter()
        .map(|e| e.object)
        .collect();
    let mut attributes = BTreeSet::new();
    let mut dmu = src.dmu(id).unwrap();
    for &o in &walked {
        let dir = zpl::read_znode(&dmu, o).unwrap().xattr;
        if dir != 0 {
            attributes.insert(dir);
            for e in engine::zap::entries(&mut dmu, dir).unwrap() {
                attributes.insert(zpl::zfs_dirent_obj(e.values[0]));
            }
        }
    }
    drop(dmu);
    assert!(attributes.len() >= 2, "the source has attributes");

    // These have a check of their own where they strike an attribute.
    let attribute_checks = [
        Malformation::ZnodeModeType,
        Malformation::DirentUnallocated,
        Malformation::ZnodeSizeHuge,
    ];
    let mut refused = BTreeSet::new();
    let mut as_attribute = BTreeSet::new();
    for m in Malformation::ALL {
        for skip in 0..8 {
            if refused.contains(&m) && (!attribute_checks.contains(&m) || as_attribute.contains(&m))
            {
                break;
            }
            let draw = MalformedDraw { skip, seed: skip };
            let (sent, Some(struck)) = rewrite_with(m, draw, &stream) else {
                break;
            };
            assert_ne!(sent, stream, "{m}: nothing rewritten");
            let mut dst = new_pool("dst");
            dst.receive(
                "dst/r",
                &sent[..],
                &RecvOptions::default(),
                &mut NoInterrupt,
            )
            .unwrap_or_else(|e| panic!("{struck}: the receive refused it: {e}"));
            let id = dst.lookup("dst/r@s1").unwrap();
            let walk = zpl::walk(&mut dst, id);
            let o = struck.object;
            let r = match struck.reach {
                Reach::Master => &struck.refusal,
                Reach::Namespace if walked.contains(&o) => &struck.refusal,
                _ if attributes.contains(&o) => match &struck.attribute {
                    Some(r) => {
                        as_attribute.insert(m);
                        r
                    }
                    None => continue,
                },
                _ => continue,
            };
            let e = match walk {
                Ok(_) => panic!("{struck}: a walk listed it"),
                Err(e) => e,
            };
            assert_eq!(e.errno(), r.errno, "{struck}: {e}");
            assert!(
                e.site().file.ends_with(r.file),
                "{struck}: {e} at {:?}",
                e.site()
            );
            assert!(e.reason().contains(r.because), "{struck}: {e}");
            assert!(e.reason().contains(&r.names), "{struck}: {e}");
            refused.insert(m);
        }
    }
    let missing: Vec<&str> = Malformation::ALL
        .iter()
        .filter(|m| !refused.contains(m))
        .map(|m| m.name())
        .collect();
    assert!(
        missing.is_empty(),
        "never struck where a walk meets it: {missing:?}"
    );
}

/// A `zpl` run whose sender always malforms: every receive it strikes is
/// judged (the walk refused it, or it lies outside what a walk reads) and
/// destroyed, and the run passes.
#[test]
fn a_run_with_malformed_senders_judges_and_destroys_each_receive() {
    let mut c = RunConfig::new(3, Spec::load("zpl").unwrap());
    c.faults = Faults::Spec("malformed:1".parse::<FaultSpec>().unwrap());
    c.steps = Some(120);
    let report = run(&c);
    assert!(report.violation.is_none(), "{:?}", report.violation);
    let judged = report
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Destroyed && s.detail.contains("a walk refused it"))
        .count();
    assert!(judged >= 2, "{judged} receives judged by a walk");
}
