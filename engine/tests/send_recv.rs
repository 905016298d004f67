//! Send and receive against real ZFS streams: what zsim receives it sends
//! back byte for byte; incremental and clone streams have the same effects;
//! every refusal of `dmu_recv_begin` has ZFS's errno and leaves the target
//! untouched; dedup and big-endian streams give the same objects.

mod common;

use std::collections::BTreeMap;

use common::*;
use engine::Errno;
use engine::check::check;
use engine::context::{Interrupt, ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{DedupTable, NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::{ByteOrder, Record, StreamReader};
use engine::vdev::MemDevice;

fn new_pool(name: &str) -> Pool {
    Pool::create(
        Box::new(MemDevice::new(512 << 20, 512)),
        name,
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(11)),
    )
    .unwrap()
}

fn begin_of(stream: &[u8]) -> engine::stream::DrrBegin {
    let mut reader = StreamReader::new(stream);
    match reader.next_record().unwrap().unwrap().record {
        Record::Begin(b) => *b,
        _ => unreachable!(),
    }
}

fn receive(pool: &mut Pool, target: &str, stream: &[u8]) -> engine::Result<Vec<u64>> {
    pool.receive(target, stream, &RecvOptions::default(), &mut NoInterrupt)
}

/// Everything about every object of a dataset, for comparing two copies.
#[derive(Debug, PartialEq, Eq)]
struct ObjectState {
    info: (u8, u8, usize, u32, u8, u8),
    bonus: Vec<u8>,
    data: Vec<u8>,
    spill: Option<Vec<u8>>,
}

fn objects(pool: &mut Pool, name: &str) -> BTreeMap<u64, ObjectState> {
    let id = pool.lookup(name).unwrap();
    let mut dmu = pool.dmu(id).unwrap();
    let mut out = BTreeMap::new();
    for object in dmu.objects() {
        let i = dmu.object_info(object).unwrap();
        let len = (i.maxblkid + 1) * u64::from(i.datablksz);
        out.insert(
            object,
            ObjectState {
                info: (
                    i.dn_type,
                    i.bonustype,
                    i.bonuslen,
                    i.datablksz,
                    i.checksum,
                    i.compress,
                ),
                bonus: dmu.bonus(object).unwrap(),
                data: dmu.read(object, 0, len).unwrap(),
                spill: dmu.spill(object).unwrap(),
            },
        );
    }
    out
}

/// What the pool holds, to show a refused receive changed nothing.
/// Per dataset: name, guid, referenced bytes, flags, objects.
type PoolState = Vec<(String, u64, u64, u64, BTreeMap<u64, ObjectState>)>;

fn pool_state(pool: &mut Pool) -> PoolState {
    let list = pool.list();
    list.into_iter()
        .map(|d| {
            let objs = objects(pool, &d.name);
            (d.name, d.guid, d.referenced, d.flags, objs)
        })
        .collect()
}

const FULL_FIXTURES: &[&str] = &[
    "empty_full",
    "small_full",
    "large_full",
    "sparse_full",
    "incr_base_full",
    "chain_c1_full",
    "clone_origin_full",
    "xattr_full",
    "manyfiles_full",
];

#[test]
fn every_full_fixture_is_resent_byte_for_byte() {
    for name in FULL_FIXTURES {
        let stream = fixture_stream(name);
        let begin = begin_of(&stream);
        let toname = begin.toname_lossy();
        let (fs, _) = toname.split_once('@').unwrap();
        let mut pool = new_pool(fs.split('/').next().unwrap());
        receive(&mut pool, fs, &stream).unwrap_or_else(|e| panic!("{name}: {e}"));
        let snap = pool.info(pool.lookup(&toname).unwrap());
        assert_eq!(
            snap.guid, begin.toguid,
            "{name}: the snapshot takes the stream's guid"
        );
        assert_eq!(snap.creation_time, begin.creation_time, "{name}");
        let mut out = Vec::new();
        pool.send(
            &toname,
            None,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        assert!(out == stream, "{name}: the re-sent stream differs");
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{name}: {report}");
    }
}

#[test]
fn a_dedup_stream_is_resent_byte_for_byte_from_a_dedup_filesystem() {
    let stream = fixture_stream("dedup_full_D");
    let mut pool = new_pool("fxp");
    pool.set_prop("fxp", "dedup", "on").unwrap();
    receive(&mut pool, "fxp/dedup", &stream).unwrap();
    let mut out = Vec::new();
    let mut table = DedupTable::default();
    pool.send(
        "fxp/dedup@d1",
        None,
        &mut out,
        &SendOptions::default(),
        Some(&mut table),
        &mut NoInterrupt,
    )
    .unwrap();
    assert!(out == stream, "the re-sent -D stream differs");
}

/// Receives `chain` (base first) into a fresh pool and returns it.
fn received(chain: &[&str], target: &str) -> Pool {
    let mut pool = new_pool("fxp");
    for name in chain {
        receive(&mut pool, target, &fixture_stream(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    pool
}

#[test]
fn incremental_and_clone_streams_resent_by_zsim_have_the_same_effects() {
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["incr_base_full", "incr_i"],
            "fxp/incr",
            "fxp/incr@base",
            "fxp/incr@next",
        ),
        (
            &["chain_c1_full", "chain_c1_c2_i"],
            "fxp/chain",
            "fxp/chain@c1",
            "fxp/chain@c2",
        ),
        (
            &["xattr_full", "xattr_i"],
            "fxp/xat",
            "fxp/xat@x1",
            "fxp/xat@x2",
        ),
        (
            &["manyfiles_full", "manyfiles_i"],
            "fxp/many",
            "fxp/many@m1",
            "fxp/many@m2",
        ),
    ];
    for (chain, fs, from, to) in cases {
        let mut pool = received(chain, fs);
        let mut ours = Vec::new();
        pool.send(
            to,
            Some(from),
            &mut ours,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        let want = objects(&mut pool, to);

        // Replay the original and zsim's stream onto the base in fresh pools.
        let theirs = fixture_stream(chain[1]);
        for (label, stream) in [("zfs", &theirs), ("zsim", &ours)] {
            let mut replay = received(&chain[..1], fs);
            receive(&mut replay, fs, stream).unwrap_or_else(|e| panic!("{fs} {label}: {e}"));
            assert!(
                objects(&mut replay, to) == want,
                "{fs}: {label}'s incremental gives other objects"
            );
        }
    }

    // A clone stream, received with its origin.
    let mut pool = received(&["clone_origin_full"], "fxp/corigin");
    let clone = fixture_stream("clone_i");
    let options = RecvOptions {
        origin: Some("fxp/corigin@o".into()),
        ..Default::default()
    };
    pool.receive("fxp/cln", &clone[..], &options, &mut NoInterrupt)
        .unwrap();
    let mut ours = Vec::new();
    pool.send(
        "fxp/cln@m1",
        Some("fxp/corigin@o"),
        &mut ours,
        &SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    assert_eq!(begin_of(&ours).flags & engine::stream::DRR_FLAG_CLONE, 1);
    let want = objects(&mut pool, "fxp/cln@m1");
    let mut replay = received(&["clone_origin_full"], "fxp/corigin");
    replay
        .receive("fxp/cln", &ours[..], &options, &mut NoInterrupt)
        .unwrap();
    assert!(objects(&mut replay, "fxp/cln@m1") == want);
}

#[test]
fn a_compound_i_stream_is_received_substream_by_substream() {
    let mut pool = received(&["chain_c1_full", "chain_c1_c4_I"], "fxp/chain");
    for snap in ["c1", "c2", "c3", "c4"] {
        pool.lookup(&format!("fxp/chain@{snap}")).unwrap();
    }
    let mut stepwise = received(
        &[
            "chain_c1_full",
            "chain_c1_c2_i",
            "chain_c2_c3_i",
            "chain_c3_c4_i",
        ],
        "fxp/chain",
    );
    assert!(objects(&mut pool, "fxp/chain@c4") == objects(&mut stepwise, "fxp/chain@c4"));
}

#[test]
fn dedup_and_big_endian_streams_give_the_same_objects() {
    // The dedup chain, received as sent...
    let mut native = received(&["dedup_full_D", "dedup_i_D"], "fxp/dedup");
    let want = objects(&mut native, "fxp/dedup@d2");

    // ...zsim's own -D stream of it, in both byte orders, and a plain one.
    for (dedup, order) in [
        (true, ByteOrder::Little),
        (true, ByteOrder::Big),
        (false, ByteOrder::Big),
    ] {
        let options = SendOptions {
            byte_order: order,
            ..SendOptions::default()
        };
        let mut table = DedupTable::default();
        let mut full = Vec::new();
        native
            .send(
                "fxp/dedup@d1",
                None,
                &mut full,
                &options,
                dedup.then_some(&mut table),
                &mut NoInterrupt,
            )
            .unwrap();
        let mut incr = Vec::new();
        native
            .send(
                "fxp/dedup@d2",
                Some("fxp/dedup@d1"),
                &mut incr,
                &options,
                dedup.then_some(&mut table),
                &mut NoInterrupt,
            )
            .unwrap();
        if dedup {
            assert!(count_byref(&full) > 0, "a -D stream refers back");
        }
        // One session, as `zfs send -D` output is received: the incremental
        // may refer to blocks of the full stream.
        let mut pool = new_pool("fxp");
        receive(&mut pool, "fxp/dedup", &[full, incr].concat()).unwrap();
        assert!(
            objects(&mut pool, "fxp/dedup@d2") == want,
            "dedup {dedup} {order:?}"
        );
    }
}

fn count_byref(stream: &[u8]) -> usize {
    let mut reader = StreamReader::new(stream);
    let mut n = 0;
    while let Some(e) = reader.next_record().unwrap() {
        n += matches!(e.record, Record::WriteByref(_)) as usize;
    }
    n
}

#[test]
fn every_receive_begin_refusal_has_zfs_errno_and_leaves_the_target_untouched() {
    let base = fixture_stream("chain_c1_full");
    let incr = fixture_stream("chain_c1_c2_i");
    let clone = fixture_stream("clone_i");
    let mut bad_features = base.clone();
    // versioninfo: feature bit 4 (unknown); the END checksum no longer matches,
    // but the BEGIN is refused first.
    bad_features[16] |= 1 << 6;
    // drr_type, the objset type (a little-endian u32 at byte 32): one past
    // the types ZFS knows.
    let mut bad_objset_type = base.clone();
    bad_objset_type[32..36].copy_from_slice(&99u32.to_le_bytes());

    type Setup = fn(&mut Pool);
    type Case<'a> = (&'a str, Setup, &'a str, Vec<u8>, RecvOptions, Errno);
    let cases: Vec<Case> = vec![
        (
            "incremental onto a modified target without force",
            |p| {
                let id = p.lookup("fxp/chain").unwrap();
                p.dmu(id).unwrap().write(5, 0, b"changed").unwrap();
                p.txg_sync().unwrap();
            },
            "fxp/chain",
            incr.clone(),
            RecvOptions::default(),
            Errno::ETXTBSY,
        ),
        (
            "a receive already in progress",
            |p| {
                p.create_fs("fxp/chain/%recv").unwrap();
            },
            "fxp/chain",
            incr.clone(),
            RecvOptions::default(),
            Errno::EBUSY,
        ),
        (
            "the snapshot name is taken",
            |p| {
                p.snapshot("fxp/chain@c2").unwrap();
            },
            "fxp/chain",
            incr.clone(),
            RecvOptions::default(),
            Errno::EEXIST,
        ),
        (
            "the target's snapshot is not the stream's source",
            |p| {
                p.destroy("fxp/chain@c1").unwrap();
                p.snapshot("fxp/chain@other").unwrap();
            },
            "fxp/chain",
            incr.clone(),
            RecvOptions::default(),
            Errno::ENODEV,
        ),
        (
            "a later snapshot of the target after a change since the source",
            |p| {
                let id = p.lookup("fxp/chain").unwrap();
                p.dmu(id).unwrap().write(5, 0, b"changed").unwrap();
                p.txg_sync().unwrap();
                p.snapshot("fxp/chain@later").unwrap();
            },
            "fxp/chain",
            incr.clone(),
            RecvOptions::default(),
            Errno::ENODEV,
        ),
        (
            "an incremental into a missing filesystem",
            |_| {},
            "fxp/nothere",
            incr.clone(),
            RecvOptions::default(),
            Errno::ENOENT,
        ),
        (
            "a snapshot name longer than a dataset name may be",
            |_| {},
            // `fxp/` and 250 bytes, then `@c1`: 257 bytes.
            Box::leak(format!("fxp/{}", "n".repeat(250)).into_boxed_str()),
            base.clone(),
            RecvOptions::default(),
            Errno::EINVAL,
        ),
        (
            "a clone stream without an origin",
            |_| {},
            "fxp/newclone",
            clone.clone(),
            RecvOptions::default(),
            Errno::EINVAL,
        ),
        (
            "a clone stream into an existing filesystem",
            |_| {},
            "fxp/chain",
            clone.clone(),
            RecvOptions {
                origin: Some("fxp/chain@c1".into()),
                ..Default::default()
            },
            Errno::EINVAL,
        ),
        (
            "a clone stream whose origin is not its source",
            |_| {},
            "fxp/newclone",
            clone.clone(),
            RecvOptions {
                origin: Some("fxp/chain@c1".into()),
                ..Default::default()
            },
            Errno::ENODEV,
        ),
        (
            "unsupported feature flags",
            |_| {},
            "fxp/other",
            bad_features,
            RecvOptions::default(),
            Errno::ENOTSUP,
        ),
        (
            "an objset type no ZFS knows",
            |_| {},
            "fxp/other",
            bad_objset_type,
            RecvOptions::default(),
            Errno::EINVAL,
        ),
        (
            "a full stream onto a filesystem with snapshots",
            |_| {},
            "fxp/chain",
            base.clone(),
            RecvOptions {
                force: true,
                ..Default::default()
            },
            Errno::EEXIST,
        ),
        (
            "a full stream onto an existing filesystem without -F",
            |_| {},
            "fxp/chain",
            base.clone(),
            RecvOptions::default(),
            Errno::EEXIST,
        ),
    ];
    for (what, setup, target, stream, options, errno) in cases {
        let mut pool = received(&["chain_c1_full"], "fxp/chain");
        setup(&mut pool);
        pool.txg_sync().unwrap();
        let before = pool_state(&mut pool);
        let err = pool
            .receive(target, &stream[..], &options, &mut NoInterrupt)
            .expect_err(what);
        assert_eq!(err.errno(), errno, "{what}: {err}");
        // Two refusals share an errno; the reason tells the user which.
        let why = match what {
            "a clone stream without an origin" => "needs an origin",
            "an objset type no ZFS knows" => "objset type 99",
            // libzfs's checks, before the kernel's (which would say the
            // snapshot exists, or ENODEV).
            "a full stream onto a filesystem with snapshots" => "has snapshots",
            "a full stream onto an existing filesystem without -F" => "must specify -F",
            _ => "",
        };
        assert!(err.reason().contains(why), "{what}: {err}");
        assert!(pool_state(&mut pool) == before, "{what}: the pool changed");
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{what}: {report}");
    }
}

/// What the begin checks let through: `-F` onto a changed target (the
/// change is rolled back), an incremental whose source is not the target's
/// latest snapshot but nothing changed since it (the walk back), a full
/// stream with `-F` onto a filesystem without snapshots.
#[test]
fn the_begin_checks_let_through_what_zfs_lets_through() {
    let base = fixture_stream("chain_c1_full");
    let incr = fixture_stream("chain_c1_c2_i");
    let forced = RecvOptions {
        force: true,
        ..Default::default()
    };
    let mut pool = received(&["chain_c1_full"], "fxp/chain");
    let id = pool.lookup("fxp/chain").unwrap();
    pool.dmu(id).unwrap().write(5, 0, b"changed").unwrap();
    pool.txg_sync().unwrap();
    pool.receive("fxp/chain", &incr[..], &forced, &mut NoInterrupt)
        .expect("-F onto a changed target");
    assert!(pool.lookup("fxp/chain@c2").is_ok());

    let mut pool = received(&["chain_c1_full"], "fxp/chain");
    pool.snapshot("fxp/chain@later").unwrap();
    receive(&mut pool, "fxp/chain", &incr).expect("a walk back over an unchanged snapshot");
    assert!(pool.lookup("fxp/chain@c2").is_ok());

    let mut pool = new_pool("fxp");
    pool.create_fs("fxp/empty").unwrap();
    pool.txg_sync().unwrap();
    pool.receive("fxp/empty", &base[..], &forced, &mut NoInterrupt)
        .expect("-F full onto a filesystem without snapshots");
    assert!(pool.lookup("fxp/empty@c1").is_ok());

    // The walk back when the source snapshot was taken in the txg of the
    // head's last change (its birth is the snapshot's creation txg): the
    // stream of a@s1..a@s2 received into `a` rolled back to s1 and
    // snapshotted again without a change.
    let mut pool = new_pool("own");
    let a = pool.create_fs("own/a").unwrap();
    let object = pool.dmu(a).unwrap().object_alloc(19, 4096, 0, 0).unwrap();
    pool.dmu(a).unwrap().write(object, 0, &[1; 4096]).unwrap();
    pool.snapshot("own/a@s1").unwrap();
    pool.dmu(a).unwrap().write(object, 0, &[2; 4096]).unwrap();
    pool.snapshot("own/a@s2").unwrap();
    let mut stream = Vec::new();
    let opts = SendOptions::default();
    pool.send(
        "own/a@s2",
        Some("own/a@s1"),
        &mut stream,
        &opts,
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    pool.destroy("own/a@s2").unwrap();
    pool.rollback("own/a").unwrap();
    pool.snapshot("own/a@later").unwrap();
    receive(&mut pool, "own/a", &stream).expect("a walk back to a snapshot of the head's last txg");
    assert!(pool.lookup("own/a@s2").is_ok());
}

/// `stream` written again record by record, each record and its payload
/// first given to `change`, which says whether it changed them; every
/// END's checksum is computed anew (each covers what precedes it), so a
/// change reaches the receive's own checks. Panics if nothing changed.
fn rewritten(stream: &[u8], mut change: impl FnMut(&mut Record, &mut Vec<u8>) -> bool) -> Vec<u8> {
    let mut reader = StreamReader::new(stream);
    let mut writer = engine::stream::writer::StreamWriter::new(Vec::new(), ByteOrder::Little);
    let mut changed = false;
    while let Some(entry) = reader.next_record().unwrap() {
        let mut record = entry.record;
        let mut payload = entry.payload.to_vec();
        changed |= change(&mut record, &mut payload);
        match record {
            Record::End(end) => writer.write_end(end.toguid).unwrap(),
            record => writer.write_record(&record, &payload).unwrap(),
        }
    }
    assert!(changed, "nothing in the stream to change");
    writer.into_inner()
}

/// `stream` with only the first record `change` acts on (it says whether
/// it did) changed.
fn first_rewritten(
    stream: &[u8],
    mut change: impl FnMut(&mut Record, &mut Vec<u8>) -> bool,
) -> Vec<u8> {
    let mut done = false;
    rewritten(stream, |record, payload| {
        !done && {
            done = change(record, payload);
            done
        }
    })
}

/// `stream` with its first OBJECT record changed by `change`.
fn with_object_changed(
    stream: &[u8],
    change: impl Fn(&mut engine::stream::DrrObject, &mut Vec<u8>),
) -> Vec<u8> {
    first_rewritten(stream, |record, payload| match record {
        Record::Object(drro) => {
            change(drro, payload);
            true
        }
        _ => false,
    })
}

/// Each field `restore_object` validates is refused on its own, the others
/// valid: EINVAL from that check, the target untouched.
#[test]
fn an_object_record_with_any_one_invalid_field_is_refused() {
    type Change = fn(&mut engine::stream::DrrObject, &mut Vec<u8>);
    let base = fixture_stream("chain_c1_full");
    let cases: [(&str, Change); 10] = [
        ("type 0", |o, _| o.object_type = 0),
        ("a type no table has", |o, _| o.object_type = 60),
        ("a bonus type no table has", |o, _| o.bonustype = 60),
        ("a checksum no ZFS has", |o, _| o.checksumtype = 99),
        ("a compression no ZFS has", |o, _| o.compress = 99),
        ("a block size not of 512-byte sectors", |o, _| {
            o.blksz = 1000
        }),
        ("a block size of 0", |o, _| o.blksz = 0),
        ("a block size over 128 KiB", |o, _| o.blksz = 256 << 10),
        ("a type past 8 bits", |o, _| o.object_type = 0x1_13),
        ("a bonus type past 8 bits", |o, _| o.bonustype = 0x1_13),
    ];
    for (what, change) in cases {
        let stream = with_object_changed(&base, change);
        let mut pool = new_pool("fxp");
        let before = pool_state(&mut pool);
        let err = receive(&mut pool, "fxp/bad", &stream).expect_err(what);
        assert_eq!(err.errno(), Errno::EINVAL, "{what}: {err}");
        assert!(err.reason().contains("invalid OBJECT"), "{what}: {err}");
        assert!(pool_state(&mut pool) == before, "{what}: the pool changed");
    }
    // Object numbers no dnode can have: 0 (the meta-dnode's own) and from
    // DN_MAX_OBJECT on.
    let cases: [(&str, Change); 2] = [
        ("object 0", |o, _| o.object = 0),
        ("object DN_MAX_OBJECT", |o, _| {
            o.object = engine::dmu::dnode::DN_MAX_OBJECT
        }),
    ];
    for (what, change) in cases {
        let stream = with_object_changed(&base, change);
        let mut pool = new_pool("fxp");
        let before = pool_state(&mut pool);
        let err = receive(&mut pool, "fxp/bad", &stream).expect_err(what);
        assert_eq!(err.errno(), Errno::EINVAL, "{what}: {err}");
        assert!(err.reason().contains("out of range"), "{what}: {err}");
        assert!(pool_state(&mut pool) == before, "{what}: the pool changed");
    }
}

#[test]
fn a_damaged_stream_is_refused_and_the_target_stays_as_it_was() {
    let incr = fixture_stream("chain_c1_c2_i");
    for (what, at) in [
        ("a flipped byte in a WRITE", 200_000),
        ("a flipped byte in an OBJECT", 1000),
    ] {
        let mut pool = received(&["chain_c1_full"], "fxp/chain");
        let before = pool_state(&mut pool);
        let mut damaged = incr.clone();
        damaged[at] ^= 0x40;
        let err = receive(&mut pool, "fxp/chain", &damaged).expect_err(what);
        assert!(
            matches!(err.errno(), Errno::ECKSUM | Errno::EINVAL),
            "{what}: {err}"
        );
        assert!(pool_state(&mut pool) == before, "{what}");
        assert!(pool.lookup("fxp/chain/%recv").is_err());
        let report = check(&mut pool).unwrap();
        assert!(report.is_clean(), "{what}: {report}");
    }
    // Cut short.
    let mut pool = received(&["chain_c1_full"], "fxp/chain");
    let before = pool_state(&mut pool);
    let err = receive(&mut pool, "fxp/chain", &incr[..incr.len() / 2]).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert!(err.to_string().contains("byte offset"), "{err}");
    assert!(pool_state(&mut pool) == before);
}

#[test]
fn garbage_after_end_refuses_the_stream_it_follows() {
    let full = fixture_stream("chain_c1_full");
    let incr = fixture_stream("chain_c1_c2_i");
    // Part of a record header, a header of zeros, a stray WRITE header.
    let garbage = [vec![0x5a; 100], vec![0; 312], incr[312..624].to_vec()];
    for tail in &garbage {
        let mut pool = new_pool("fxp");
        let before = pool_state(&mut pool);
        let err = receive(&mut pool, "fxp/chain", &[&full[..], tail].concat()).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{err}");
        assert!(err.to_string().contains("garbage after END"), "{err}");
        assert!(
            pool_state(&mut pool) == before,
            "a full stream left something"
        );
        assert!(check(&mut pool).unwrap().is_clean());

        let mut pool = received(&["chain_c1_full"], "fxp/chain");
        let before = pool_state(&mut pool);
        let err = receive(&mut pool, "fxp/chain", &[&incr[..], tail].concat()).unwrap_err();
        assert!(err.to_string().contains("garbage after END"), "{err}");
        assert!(
            pool_state(&mut pool) == before,
            "an incremental left something"
        );
        assert!(check(&mut pool).unwrap().is_clean());
    }
    // A stream followed by the next one is received whole, then the next.
    let mut pool = new_pool("fxp");
    let ids = receive(&mut pool, "fxp/chain", &[&full[..], &incr[..]].concat()).unwrap();
    assert_eq!(ids.len(), 2);
}

/// Interrupts after `n` polls, as a signal arriving mid-receive.
struct After(u64);

impl Interrupt for After {
    fn pending(&mut self) -> bool {
        if self.0 == 0 {
            return true;
        }
        self.0 -= 1;
        false
    }
}

#[test]
fn eintr_at_any_record_of_a_receive_leaves_the_target_as_before() {
    let incr = fixture_stream("chain_c1_c2_i");
    let records = {
        let mut reader = StreamReader::new(&incr[..]);
        let mut n = 0;
        while reader.next_record().unwrap().is_some() {
            n += 1;
        }
        n
    };
    let mut pool = received(&["chain_c1_full"], "fxp/chain");
    let before = pool_state(&mut pool);
    for n in (0..records - 1).step_by(3) {
        let err = pool
            .receive(
                "fxp/chain",
                &incr[..],
                &RecvOptions::default(),
                &mut After(n),
            )
            .unwrap_err();
        assert_eq!(err.errno(), Errno::EINTR, "after {n} records");
        assert!(pool_state(&mut pool) == before, "after {n} records");
    }
    let report = check(&mut pool).unwrap();
    assert!(report.is_clean(), "{report}");
    // And then it goes through.
    receive(&mut pool, "fxp/chain", &incr).unwrap();
}

#[test]
fn send_refuses_what_zfs_refuses() {
    let mut pool = received(&["chain_c1_full", "chain_c1_c2_i"], "fxp/chain");
    let mut out = Vec::new();
    let opts = SendOptions::default();
    let err = pool
        .send(
            "fxp/chain@c1",
            Some("fxp/chain@c2"),
            &mut out,
            &opts,
            None,
            &mut NoInterrupt,
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EXDEV);
    let err = pool
        .send("fxp/chain", None, &mut out, &opts, None, &mut NoInterrupt)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    let err = pool
        .send(
            "fxp/chain@nope",
            None,
            &mut out,
            &opts,
            None,
            &mut NoInterrupt,
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ENOENT);
    // The estimate is in the right range.
    let size = pool.send_estimate("fxp/chain@c2", None).unwrap();
    let mut full = Vec::new();
    pool.send(
        "fxp/chain@c2",
        None,
        &mut full,
        &opts,
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    assert!(
        size > full.len() as u64 / 2 && size < full.len() as u64 * 2,
        "{size} vs {}",
        full.len()
    );
    assert_eq!(
        pool.send_estimate("fxp/chain@c1", Some("fxp/chain@c2"))
            .unwrap_err()
            .errno(),
        Errno::EXDEV
    );
    // And an incremental's, from the blocks born since the earlier one.
    let size = pool
        .send_estimate("fxp/chain@c2", Some("fxp/chain@c1"))
        .unwrap();
    let mut incr = Vec::new();
    pool.send(
        "fxp/chain@c2",
        Some("fxp/chain@c1"),
        &mut incr,
        &opts,
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    assert!(
        size > incr.len() as u64 / 2 && size < incr.len() as u64 * 2,
        "{size} vs {}",
        incr.len()
    );
}

#[test]
fn an_interrupted_send_stops_with_eintr() {
    let mut pool = received(&["chain_c1_full"], "fxp/chain");
    let mut out = Vec::new();
    let err = pool
        .send(
            "fxp/chain@c1",
            None,
            &mut out,
            &SendOptions::default(),
            None,
            &mut After(5),
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINTR);
    assert!(!out.is_empty() && out.len() < 100_000);
}

#[test]
fn an_unreadable_block_fails_the_send_unless_corrupt_data_is_set() {
    use engine::vdev::{BlockDevice, CowDevice};

    // A pool on a copy-on-write device, so the test can damage a block.
    let zeros: std::rc::Rc<[u8]> = vec![0u8; 64 << 20].into();
    let mut pool = Pool::create(
        Box::new(CowDevice::new(zeros, 512)),
        "fxp",
        Box::new(ManualClock::new(1)),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap();
    receive(&mut pool, "fxp/large", &fixture_stream("large_full")).unwrap();
    // Damage one 128K data block of big.bin (its bytes are in the stream).
    let stream = fixture_stream("large_full");
    let mut reader = StreamReader::new(&stream[..]);
    let mut block = None;
    while let Some(e) = reader.next_record().unwrap() {
        if let Record::Write(w) = &e.record
            && w.length == 131072
        {
            block = Some(e.payload.to_vec());
            break;
        }
    }
    let block = block.unwrap();
    let dev = pool.device_mut();
    let mut buf = vec![0u8; 131072];
    let mut at = None;
    let mut off = engine::spa::DATA_START;
    while off + 131072 <= dev.size() {
        dev.read(off, &mut buf).unwrap();
        if buf == block {
            at = Some(off);
            break;
        }
        off += 512;
    }
    let at = at.expect("the block is on the device");
    buf[1000] ^= 0xff;
    dev.write(at, &buf).unwrap();

    let mut out = Vec::new();
    let err = pool
        .send(
            "fxp/large@s1",
            None,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EIO);

    let options = SendOptions {
        corrupt_data: true,
        ..SendOptions::default()
    };
    let mut out = Vec::new();
    pool.send(
        "fxp/large@s1",
        None,
        &mut out,
        &options,
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    let pattern = engine::send::CORRUPT_DATA_PATTERN.to_ne_bytes();
    let marked = out
        .windows(16)
        .any(|w| w[..8] == pattern && w[8..] == pattern);
    assert!(marked, "the unreadable block is sent as 0x2f5baddb10c");
    assert_eq!(out.len(), stream.len());
}

#[test]
fn spill_blocks_survive_sync_send_and_receive_in_both_byte_orders() {
    let mut pool = new_pool("tank");
    let fs = pool.create_fs("tank/sa").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    // A bonus that leaves room for the spill pointer (at most 192 bytes).
    let obj = dmu.object_alloc(19, 4096, 44, 150).unwrap();
    dmu.set_bonus(obj, &[3; 150]).unwrap();
    dmu.write(obj, 0, &[4; 4096]).unwrap();
    let spill: Vec<u8> = (0..1024).map(|i| i as u8).collect();
    dmu.set_spill(obj, Some(spill.clone())).unwrap();
    let full_bonus = dmu.object_alloc(19, 512, 17, 320).unwrap();
    assert_eq!(
        dmu.set_spill(full_bonus, Some(vec![1; 512]))
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    pool.snapshot("tank/sa@1").unwrap();

    let snap = pool.lookup("tank/sa@1").unwrap();
    assert_eq!(
        pool.dmu(snap).unwrap().spill(obj).unwrap(),
        Some(spill.clone())
    );
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let options = SendOptions {
            byte_order: order,
            ..SendOptions::default()
        };
        let mut out = Vec::new();
        pool.send(
            "tank/sa@1",
            None,
            &mut out,
            &options,
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        let begin = begin_of(&out);
        assert_ne!(
            begin.features() & engine::stream::DMU_BACKUP_FEATURE_SA_SPILL,
            0
        );
        let mut reader = StreamReader::new(&out[..]);
        let mut spills = 0;
        while let Some(e) = reader.next_record().unwrap() {
            spills += matches!(e.record, Record::Spill(_)) as usize;
        }
        assert_eq!(spills, 1);
        let mut other = new_pool("tank");
        receive(&mut other, "tank/copy", &out).unwrap();
        let copy = other.lookup("tank/copy@1").unwrap();
        assert_eq!(
            other.dmu(copy).unwrap().spill(obj).unwrap(),
            Some(spill.clone()),
            "{order:?}"
        );
        assert!(
            objects(&mut other, "tank/copy@1") == objects(&mut pool, "tank/sa@1"),
            "{order:?}"
        );
    }
    // Removing the spill block frees it.
    pool.dmu(fs).unwrap().set_spill(obj, None).unwrap();
    pool.txg_sync().unwrap();
    assert_eq!(pool.dmu(fs).unwrap().spill(obj).unwrap(), None);
    let report = check(&mut pool).unwrap();
    assert!(report.is_clean(), "{report}");
}

/// Objects freed between two snapshots go in the incremental stream as
/// FREEOBJECTS ranges and are gone on the receiver; the others stay as
/// they were.
#[test]
fn an_incremental_frees_on_the_receiver_the_objects_the_source_freed() {
    let mut src = new_pool("src");
    let fs = src.create_fs("src/fs").unwrap();
    let mut dmu = src.dmu(fs).unwrap();
    let objects_made: Vec<u64> = (0..6)
        .map(|i| {
            let o = dmu.object_alloc(19, 4096, 0, 0).unwrap();
            dmu.write(o, 0, &[i as u8 + 1; 5000]).unwrap();
            o
        })
        .collect();
    drop(dmu);
    src.snapshot("src/fs@a").unwrap();
    let mut dmu = src.dmu(fs).unwrap();
    for &o in &objects_made[2..5] {
        dmu.object_free(o).unwrap();
    }
    drop(dmu);
    src.snapshot("src/fs@b").unwrap();
    let send = |pool: &mut Pool, to: &str, from: Option<&str>| {
        let mut out = Vec::new();
        pool.send(
            to,
            from,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        out
    };
    let full = send(&mut src, "src/fs@a", None);
    let incr = send(&mut src, "src/fs@b", Some("src/fs@a"));
    let mut dst = new_pool("dst");
    receive(&mut dst, "dst/fs", &full).unwrap();
    receive(&mut dst, "dst/fs", &incr).unwrap();
    let got = objects(&mut dst, "dst/fs@b");
    let want = objects(&mut src, "src/fs@b");
    for &o in &objects_made[2..5] {
        assert!(!got.contains_key(&o), "object {o} was freed at the source");
    }
    assert!(got == want, "the received snapshot differs from its source");
}

/// The stream with its first SPILL record's data replaced by `data`.
fn with_spill_data(stream: &[u8], data: &[u8]) -> Vec<u8> {
    first_rewritten(stream, |record, payload| match record {
        Record::Spill(drrs) => {
            drrs.length = data.len() as u64;
            *payload = data.to_vec();
            true
        }
        _ => false,
    })
}

/// A SPILL record holds one legal block: from 512 bytes to 128 KiB, both
/// ends received; 504 bytes is refused EINVAL and changes nothing.
#[test]
fn a_spill_record_from_512_bytes_to_128_kib_is_received_and_a_shorter_one_refused() {
    let mut pool = new_pool("tank");
    let fs = pool.create_fs("tank/sa").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let obj = dmu.object_alloc(19, 4096, 44, 150).unwrap();
    dmu.set_spill(obj, Some(vec![9; 1024])).unwrap();
    drop(dmu);
    pool.snapshot("tank/sa@1").unwrap();
    let mut stream = Vec::new();
    pool.send(
        "tank/sa@1",
        None,
        &mut stream,
        &SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    for len in [512, 128 << 10] {
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8 + 1).collect();
        let mut other = new_pool("tank");
        receive(&mut other, "tank/copy", &with_spill_data(&stream, &data))
            .unwrap_or_else(|e| panic!("a spill of {len} bytes: {e}"));
        let copy = other.lookup("tank/copy@1").unwrap();
        assert_eq!(
            other.dmu(copy).unwrap().spill(obj).unwrap(),
            Some(data),
            "{len}"
        );
    }
    let mut other = new_pool("tank");
    let before = pool_state(&mut other);
    let err = receive(
        &mut other,
        "tank/copy",
        &with_spill_data(&stream, &[5; 504]),
    )
    .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert!(err.reason().contains("SPILL of 504 bytes"), "{err}");
    assert!(pool_state(&mut other) == before);
}

/// A WRITE_BYREF to a block of an earlier stream's snapshot reads that
/// snapshot, not the filesystem being received, whose block at the same
/// place has changed since.
#[test]
fn a_write_byref_to_an_earlier_snapshot_reads_that_snapshot() {
    let mut src = new_pool("src");
    src.set_prop("src", "dedup", "on").unwrap();
    let fs = src.create_fs("src/fs").unwrap();
    let (x, y) = (vec![0x11u8; 4096], vec![0x22u8; 4096]);
    let mut dmu = src.dmu(fs).unwrap();
    let a = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    let b = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    dmu.write(a, 0, &x).unwrap();
    dmu.write(b, 0, &[0x33; 4096]).unwrap();
    drop(dmu);
    src.snapshot("src/fs@a").unwrap();
    let mut dmu = src.dmu(fs).unwrap();
    dmu.write(a, 0, &y).unwrap();
    dmu.write(b, 0, &x).unwrap();
    drop(dmu);
    src.snapshot("src/fs@b").unwrap();
    let mut table = DedupTable::default();
    let mut input = Vec::new();
    for (to, from) in [("src/fs@a", None), ("src/fs@b", Some("src/fs@a"))] {
        src.send(
            to,
            from,
            &mut input,
            &SendOptions::default(),
            Some(&mut table),
            &mut NoInterrupt,
        )
        .unwrap();
    }
    let guid_a = src.info(src.lookup("src/fs@a").unwrap()).guid;
    let mut reader = StreamReader::new(&input[..]);
    let mut byref = false;
    while let Some(e) = reader.next_record().unwrap() {
        byref |= matches!(e.record, Record::WriteByref(r) if r.refguid == guid_a && r.object == b);
    }
    assert!(byref, "object {b} refers back to @a");
    // Both streams in one input: one session, one guid map.
    let mut dst = new_pool("dst");
    receive(&mut dst, "dst/fs", &input).unwrap();
    assert!(objects(&mut dst, "dst/fs@b") == objects(&mut src, "src/fs@b"));
    let id = dst.lookup("dst/fs@b").unwrap();
    assert_eq!(dst.dmu(id).unwrap().read(b, 0, 4096).unwrap(), x);
}

/// An incremental that changes an object's data but not its spill block
/// sends the object again without the spill: the receiver keeps the spill.
#[test]
fn an_incremental_that_leaves_a_spill_alone_keeps_it_on_the_receiver() {
    let mut src = new_pool("src");
    let fs = src.create_fs("src/fs").unwrap();
    let spill: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    let mut dmu = src.dmu(fs).unwrap();
    let obj = dmu.object_alloc(19, 4096, 44, 150).unwrap();
    dmu.set_spill(obj, Some(spill.clone())).unwrap();
    dmu.write(obj, 0, &[1; 4096]).unwrap();
    drop(dmu);
    src.snapshot("src/fs@a").unwrap();
    src.dmu(fs).unwrap().write(obj, 0, &[2; 4096]).unwrap();
    src.snapshot("src/fs@b").unwrap();
    let mut dst = new_pool("dst");
    for (to, from) in [("src/fs@a", None), ("src/fs@b", Some("src/fs@a"))] {
        let mut out = Vec::new();
        src.send(
            to,
            from,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        if from.is_some() {
            let mut reader = StreamReader::new(&out[..]);
            let (mut objects_sent, mut spills) = (0, 0);
            while let Some(e) = reader.next_record().unwrap() {
                objects_sent += matches!(e.record, Record::Object(_)) as usize;
                spills += matches!(e.record, Record::Spill(_)) as usize;
            }
            assert_eq!((objects_sent > 0, spills), (true, 0));
        }
        receive(&mut dst, "dst/fs", &out).unwrap();
    }
    let id = dst.lookup("dst/fs@b").unwrap();
    assert_eq!(dst.dmu(id).unwrap().spill(obj).unwrap(), Some(spill));
    assert!(objects(&mut dst, "dst/fs@b") == objects(&mut src, "src/fs@b"));
}

/// `send -D` keys a block by its own checksum when that is dedup-grade
/// (sha256, as `dedup=on` writes): for a compressed block, the checksum of
/// what is on disk, not of the data as sent.
#[test]
fn a_dedup_stream_keys_a_compressed_block_by_its_block_checksum() {
    let mut pool = new_pool("tank");
    pool.set_prop("tank", "dedup", "on").unwrap();
    pool.set_prop("tank", "compression", "lzjb").unwrap();
    let fs = pool.create_fs("tank/d").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let obj = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    let data: Vec<u8> = b"compressible "
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    dmu.write(obj, 0, &data).unwrap();
    drop(dmu);
    pool.snapshot("tank/d@1").unwrap();
    let mut out = Vec::new();
    let mut table = DedupTable::default();
    pool.send(
        "tank/d@1",
        None,
        &mut out,
        &SendOptions::default(),
        Some(&mut table),
        &mut NoInterrupt,
    )
    .unwrap();
    let mut reader = StreamReader::new(&out[..]);
    let mut checked = 0;
    while let Some(e) = reader.next_record().unwrap() {
        if let Record::Write(w) = &e.record
            && w.object == obj
        {
            assert_ne!(w.key.cksum, engine::checksum::sha256(e.payload));
            assert_ne!(w.key.cksum, engine::checksum::ZioCksum::ZERO);
            checked += 1;
        }
    }
    assert_eq!(checked, 1);
}

/// `stream` with its first WRITE record changed by `change` (header and
/// payload).
fn with_write_changed(
    stream: &[u8],
    change: impl Fn(&mut engine::stream::DrrWrite, &mut Vec<u8>),
) -> Vec<u8> {
    first_rewritten(stream, |record, payload| match record {
        Record::Write(drrw) => {
            change(drrw, payload);
            true
        }
        _ => false,
    })
}

/// `restore_write`'s checks, each on its own: an offset and length that
/// wrap, a type no table has, a WRITE past an object's single odd-sized
/// block. Each is EINVAL from that check, the target untouched.
#[test]
fn a_write_record_with_any_one_invalid_field_is_refused() {
    let mut src = new_pool("src");
    let fs = src.create_fs("src/a").unwrap();
    let mut dmu = src.dmu(fs).unwrap();
    // One block of 1536 bytes: not a power of two, so the only block.
    let obj = dmu.object_alloc(19, 1536, 0, 0).unwrap();
    dmu.write(obj, 0, &[7; 1536]).unwrap();
    src.snapshot("src/a@s").unwrap();
    let mut base = Vec::new();
    src.send(
        "src/a@s",
        None,
        &mut base,
        &SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    type Change = fn(&mut engine::stream::DrrWrite, &mut Vec<u8>);
    let cases: [(&str, Change, &str); 3] = [
        (
            "an offset and length that wrap",
            |w, _| w.offset = u64::MAX - 511,
            "invalid WRITE",
        ),
        (
            "a type no table has",
            |w, _| w.object_type = 60,
            "invalid WRITE",
        ),
        (
            "a WRITE past the single block",
            |w, p| {
                w.length = 2048;
                p.resize(2048, 7);
            },
            "past the single 1536-byte block",
        ),
    ];
    for (what, change, why) in cases {
        let stream = with_write_changed(&base, change);
        let mut pool = new_pool("dst");
        let before = pool_state(&mut pool);
        let err = receive(&mut pool, "dst/bad", &stream).expect_err(what);
        assert_eq!(err.errno(), Errno::EINVAL, "{what}: {err}");
        assert!(err.reason().contains(why), "{what}: {err}");
        assert!(pool_state(&mut pool) == before, "{what}: the pool changed");
    }
    // Unchanged, it is received.
    let mut pool = new_pool("dst");
    receive(&mut pool, "dst/good", &base).unwrap();
}

/// An object of type `DMU_OT_SA` (44) that holds data of its own: its
/// blocks go as WRITE records, not as SPILL (only a spill block, blkid
/// `DMU_SPILL_BLKID`, is one), and the copy reads the same.
#[test]
fn an_sa_object_with_data_blocks_is_sent_as_writes() {
    let mut src = new_pool("src");
    let fs = src.create_fs("src/a").unwrap();
    let mut dmu = src.dmu(fs).unwrap();
    let obj = dmu.object_alloc(44, 4096, 0, 0).unwrap();
    dmu.write(obj, 0, &[5; 8192]).unwrap();
    src.snapshot("src/a@s").unwrap();
    let mut out = Vec::new();
    let summary = src
        .send(
            "src/a@s",
            None,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
    let mut reader = StreamReader::new(&out[..]);
    let (mut writes, mut spills, mut records) = (0, 0, 0);
    while let Some(e) = reader.next_record().unwrap() {
        records += 1;
        match e.record {
            Record::Write(w) if w.object == obj => writes += 1,
            Record::Spill(_) => spills += 1,
            _ => {}
        }
    }
    assert_eq!((writes, spills), (2, 0));
    // What the send says it wrote is what the stream holds.
    assert_eq!(summary.records, records);
    assert_eq!(summary.bytes, out.len() as u64);
    let mut dst = new_pool("dst");
    receive(&mut dst, "dst/b", &out).unwrap();
    assert!(objects(&mut dst, "dst/b@s") == objects(&mut src, "src/a@s"));
}

/// `zfs send -i` from a snapshot the clone does not descend from: one of
/// its origin's filesystem taken after the origin. EXDEV, as
/// `dsl_dataset_is_before` refuses it.
#[test]
fn an_incremental_from_after_a_clones_origin_is_exdev() {
    let mut pool = new_pool("src");
    pool.create_fs("src/a").unwrap();
    pool.snapshot("src/a@s1").unwrap();
    pool.clone_fs("src/a@s1", "src/c").unwrap();
    pool.snapshot("src/a@s2").unwrap();
    pool.snapshot("src/c@s3").unwrap();
    let mut out = Vec::new();
    let e = pool
        .send(
            "src/c@s3",
            Some("src/a@s2"),
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EXDEV, "{e}");
    // From the origin itself it is a clone stream.
    pool.send(
        "src/c@s3",
        Some("src/a@s1"),
        &mut out,
        &SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
}

/// A send stepped a block at a time says where it is: the bytes written
/// so far, and the snapshot it sends.
#[test]
fn a_send_session_reports_its_offset_and_snapshot() {
    let mut pool = new_pool("src");
    let fs = pool.create_fs("src/a").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let obj = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    dmu.write(obj, 0, &[9; 16384]).unwrap();
    let snap = pool.snapshot("src/a@s").unwrap();
    let mut irq = NoInterrupt;
    let mut session = pool
        .send_begin(
            snap,
            None,
            Vec::new(),
            &SendOptions::default(),
            None,
            &mut irq,
        )
        .unwrap();
    assert_eq!(session.dataset(), snap);
    let mut written = 0;
    loop {
        let more = session.step(&mut pool).unwrap();
        written += std::mem::take(session.out_mut()).len() as u64;
        assert_eq!(session.offset(), written);
        if !more {
            break;
        }
    }
    assert!(written > 16384);
    let summary = session.end(&mut pool);
    assert_eq!(summary.bytes, written);
}

/// A stream from a case-insensitive filesystem (`DRR_FLAG_CI_DATA`) makes
/// a case-insensitive snapshot, whose own stream says so again.
#[test]
fn a_case_insensitive_stream_is_received_and_sent_as_one() {
    let base = fixture_stream("chain_c1_full");
    let ci = rewritten(&base, |record, _| match record {
        Record::Begin(b) => {
            b.flags |= engine::stream::DRR_FLAG_CI_DATA;
            true
        }
        _ => false,
    });
    let mut pool = new_pool("fxp");
    let ids = receive(&mut pool, "fxp/ci", &ci).unwrap();
    let info = pool.info(ids[0]);
    let head = pool.info(pool.lookup("fxp/ci").unwrap());
    for i in [&info, &head] {
        assert_ne!(i.flags & engine::dsl::DS_FLAG_CI_DATASET, 0, "{}", i.name);
        assert_eq!(i.flags & engine::dsl::DS_FLAG_INCONSISTENT, 0, "{}", i.name);
    }
    let mut out = Vec::new();
    pool.send(
        &info.name,
        None,
        &mut out,
        &SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    assert_ne!(begin_of(&out).flags & engine::stream::DRR_FLAG_CI_DATA, 0);
    // Without the flag, neither.
    let mut pool = new_pool("fxp");
    let ids = receive(&mut pool, "fxp/cs", &base).unwrap();
    assert_eq!(pool.info(ids[0]).flags & engine::dsl::DS_FLAG_CI_DATASET, 0);
}

/// An END where a substream's BEGIN must come (after a compound header,
/// before anything was received) is refused as that, not taken for the
/// closing END of an empty stream.
#[test]
fn an_end_where_the_first_substream_must_begin_is_refused_as_no_begin() {
    let mut writer = engine::stream::writer::StreamWriter::new(Vec::new(), ByteOrder::Little);
    let header = engine::stream::DrrBegin {
        versioninfo: engine::stream::DMU_COMPOUNDSTREAM,
        ..Default::default()
    };
    writer
        .write_record(&Record::Begin(Box::new(header)), &[])
        .unwrap();
    writer.write_end(0).unwrap();
    writer.write_end(0).unwrap();
    let stream = writer.into_inner();
    let mut pool = new_pool("fxp");
    let e = receive(&mut pool, "fxp/x", &stream).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    assert!(
        e.to_string().contains("expected a BEGIN record, found END"),
        "{e}"
    );
}
