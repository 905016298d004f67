//! Replication streams (`zfs send -R`) against real ZFS: the fixture made by
//! zfs-fuse is received as a tree (the filesystem sent becomes the target,
//! its child a child of the target) with the sent guids and files, in
//! either byte order; a bad header is refused naming its record.

mod common;

use common::plan::{manifest, new_pool};
use common::*;
use std::collections::BTreeSet;

use engine::Errno;
use engine::dsl::DatasetId;
use engine::nvlist::{NvList, NvValue, pack_xdr, unpack_xdr};
use engine::recv::RecvOptions;
use engine::send::NoInterrupt;
use engine::spa::Pool;
use engine::stream::{ByteOrder, DRR_RECORD_SIZE};

fn receive(pool: &mut Pool, target: &str, stream: &[u8]) -> engine::Result<Vec<DatasetId>> {
    pool.receive(target, stream, &RecvOptions::default(), &mut NoInterrupt)
}

/// A file as listed: path, size, SHA-256 (hex; empty for a non-file).
type File = (String, u64, String);

/// Names, guids and each snapshot's files.
fn tree(pool: &mut Pool, ids: &[DatasetId]) -> Vec<(String, u64, Vec<File>)> {
    ids.iter()
        .map(|&id| {
            let info = pool.info(id);
            let options = engine::zpl::WalkOptions {
                hash: true,
                ..Default::default()
            };
            let files = engine::zpl::walk_with(pool, id, &options)
                .unwrap()
                .into_iter()
                .map(|f| {
                    let sha = f
                        .sha256
                        .map(|s| s.iter().map(|b| format!("{b:02x}")).collect());
                    (
                        String::from_utf8_lossy(&f.path).into_owned(),
                        f.size,
                        sha.unwrap_or_default(),
                    )
                })
                .collect();
            (info.name, info.guid, files)
        })
        .collect()
}

#[test]
fn a_replication_stream_is_received_as_a_tree_with_the_sent_guids_and_files() {
    let m = manifest("replication_R");
    let mut pool = new_pool();
    let ids = receive(&mut pool, "fxp/t", &fixture_stream("replication_R")).unwrap();
    let got = tree(&mut pool, &ids);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["fxp/t@r1", "fxp/t@r2", "fxp/t/kid@r1", "fxp/t/kid@r2"]
    );
    // Each substream's snapshot keeps the guid it was sent with.
    let sent: Vec<u64> = m["substreams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["hdrtype"] == 1)
        .map(|s| u64::from_str_radix(s["toguid"].as_str().unwrap(), 16).unwrap())
        .collect();
    let guids: Vec<u64> = got.iter().map(|(_, g, _)| *g).collect();
    assert_eq!(guids, sent);
    // The files of the last snapshot of each filesystem, as the manifest.
    for (snap, want) in [
        ("fxp/t@r2", &m["files"]),
        ("fxp/t/kid@r2", &m["datasets"]["kid"]["files"]),
    ] {
        let (_, _, files) = got.iter().find(|(n, _, _)| n == snap).unwrap();
        for w in want
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["type"] == "file")
        {
            let path = w["path"].as_str().unwrap();
            let f = files
                .iter()
                .find(|f| f.0 == path)
                .unwrap_or_else(|| panic!("{snap}: {path}"));
            assert_eq!(f.1, w["size"].as_u64().unwrap(), "{snap}: {path}");
            assert_eq!(f.2, w["sha256"].as_str().unwrap(), "{snap}: {path}");
        }
    }
    // Received again into the same place: the target exists.
    let err = receive(&mut pool, "fxp/t", &fixture_stream("replication_R")).unwrap_err();
    assert_eq!(err.errno(), Errno::EEXIST, "{err}");
}

/// The stream's headers in the other byte order (its payloads as they
/// are, so only what the headers say is compared: names, guids, space).
#[test]
fn a_replication_stream_with_big_endian_headers_makes_the_same_tree() {
    let native = fixture_stream("replication_R");
    let big = rewrite(&native, ByteOrder::Big);
    let mut trees = Vec::new();
    for stream in [native, big] {
        let mut pool = new_pool();
        let ids = receive(&mut pool, "fxp/t", &stream).unwrap();
        let tree: Vec<(String, u64, u64)> = ids
            .iter()
            .map(|&id| {
                let info = pool.info(id);
                (info.name, info.guid, info.referenced)
            })
            .collect();
        trees.push(tree);
    }
    assert_eq!(trees[0].len(), 4);
    assert_eq!(trees[0], trees[1]);
}

/// The stream with its header's nvlist replaced by `list`.
fn with_header(stream: &[u8], list: &NvList) -> Vec<u8> {
    let len = u32::from_le_bytes(stream[4..8].try_into().unwrap()) as usize;
    let packed = pack_xdr(list);
    let mut out = stream[..DRR_RECORD_SIZE].to_vec();
    out[4..8].copy_from_slice(&(packed.len() as u32).to_le_bytes());
    out.extend_from_slice(&packed);
    out.extend_from_slice(&stream[DRR_RECORD_SIZE + len..]);
    out
}

#[test]
fn a_bad_replication_header_or_a_snapshot_target_is_refused_and_leaves_nothing() {
    let stream = fixture_stream("replication_R");
    let len = u32::from_le_bytes(stream[4..8].try_into().unwrap()) as usize;
    let header = unpack_xdr(&stream[DRR_RECORD_SIZE..DRR_RECORD_SIZE + len]).unwrap();
    assert!(header.get_nvlist("fss").is_some());

    let mut without = NvList::new();
    without.push("tosnap", NvValue::String("r2".into()));
    let mut pool = new_pool();
    let before = pool.list().len();
    let err = receive(&mut pool, "fxp/t", &with_header(&stream, &without)).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert!(
        err.to_string()
            .contains("record 0 (BEGIN) at byte offset 0")
            && err.to_string().contains("(fss)"),
        "{err}"
    );
    assert_eq!(pool.list().len(), before);

    let err = receive(&mut pool, "fxp/t@r2", &stream).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert!(err.to_string().contains("not a snapshot"), "{err}");
    assert_eq!(pool.list().len(), before);
}

/// The replication header's properties are set as received values before
/// each substream is written: the child, sent with `compression=on`,
/// stores its blocks compressed, and its snapshot sent again by zsim is
/// byte for byte the substream zfs-fuse wrote. A local value still wins.
#[test]
fn received_properties_shape_the_blocks_and_the_resent_substream_is_identical() {
    let stream = fixture_stream("replication_R");
    let mut pool = new_pool();
    receive(&mut pool, "fxp/rep", &stream).unwrap();
    assert_eq!(
        pool.get_prop("fxp/rep/kid", "compression").unwrap(),
        ("on".to_string(), "received".to_string())
    );
    assert_eq!(
        pool.get_prop("fxp/rep", "org.fixture:note").unwrap(),
        ("public-replication".to_string(), "received".to_string())
    );
    assert_eq!(
        pool.get_prop("fxp/rep/kid", "org.fixture:note").unwrap(),
        (
            "public-replication".to_string(),
            "inherited from fxp/rep".to_string()
        )
    );
    // The kid@r1 substream, from its BEGIN to the end of its END.
    let m = manifest("replication_R");
    let subs = m["substreams"].as_array().unwrap();
    let begin = subs
        .iter()
        .position(|s| s["toname"] == "fxp/rep/kid@r1")
        .unwrap();
    let start = subs[begin]["offset"].as_u64().unwrap() as usize;
    let end = subs[begin + 1]["offset"].as_u64().unwrap() as usize + DRR_RECORD_SIZE;
    let mut out = Vec::new();
    pool.send(
        "fxp/rep/kid@r1",
        None,
        &mut out,
        &engine::send::SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    assert!(out == stream[start..end], "the re-sent kid@r1 differs");

    pool.set_prop("fxp/rep/kid", "compression", "off").unwrap();
    assert_eq!(
        pool.get_prop("fxp/rep/kid", "compression").unwrap(),
        ("off".to_string(), "local".to_string())
    );
}

/// zsim's `send -R` of the tree received from the fixture: the header
/// describes the same tree (its filesystems' own guids aside: a receive
/// makes new filesystems), every substream after it is zfs-fuse's byte
/// for byte, the stream ends with a zero checksum, and zsim receives it
/// back as the same tree with the same properties.
#[test]
fn a_replication_stream_sent_by_zsim_carries_the_same_substreams_and_tree() {
    let fixture = fixture_stream("replication_R");
    let mut pool = new_pool();
    receive(&mut pool, "fxp/rep", &fixture).unwrap();
    let mut ours = Vec::new();
    pool.send_replication(
        "fxp/rep@r2",
        None,
        &mut ours,
        &engine::send::SendOptions::default(),
    )
    .unwrap();
    let header_len =
        |s: &[u8]| DRR_RECORD_SIZE + u32::from_le_bytes(s[4..8].try_into().unwrap()) as usize;
    let (h_ours, h_theirs) = (header_len(&ours), header_len(&fixture));
    let header = unpack_xdr(&ours[DRR_RECORD_SIZE..h_ours]).unwrap();
    assert_eq!(header.get_str("tosnap"), Some("r2"));
    assert!(header.get("fromsnap").is_none());
    let fss = header.get_nvlist("fss").unwrap();
    let names: Vec<&str> = fss
        .pairs
        .iter()
        .map(|(_, v)| match v {
            NvValue::NvList(fs) => fs.get_str("name").unwrap(),
            _ => panic!("an fss entry that is not an nvlist"),
        })
        .collect();
    assert_eq!(names, ["fxp/rep", "fxp/rep/kid"]);
    // After the header and its END: the same substreams, the same close.
    assert!(
        ours[h_ours + DRR_RECORD_SIZE..] == fixture[h_theirs + DRR_RECORD_SIZE..],
        "the substreams differ from zfs-fuse's"
    );

    let mut back = new_pool();
    let ids = receive(&mut back, "fxp/copy", &ours).unwrap();
    let sent: Vec<DatasetId> = [
        "fxp/rep@r1",
        "fxp/rep@r2",
        "fxp/rep/kid@r1",
        "fxp/rep/kid@r2",
    ]
    .iter()
    .map(|n| pool.lookup(n).unwrap())
    .collect();
    let first = tree(&mut pool, &sent);
    let again = tree(&mut back, &ids);
    let strip = |t: Vec<(String, u64, Vec<File>)>| -> Vec<(u64, Vec<File>)> {
        t.into_iter().map(|(_, g, f)| (g, f)).collect()
    };
    assert_eq!(strip(first), strip(again));
    for (prop, fs) in [
        ("compression", "fxp/copy/kid"),
        ("org.fixture:note", "fxp/copy"),
    ] {
        assert_eq!(
            back.get_prop(fs, prop).unwrap().1,
            "received",
            "{fs} {prop}"
        );
    }
}

/// Cut or damaged in substream k: the snapshots of the substreams before k
/// are received and stay, nothing of k is left (no `%recv`, no new
/// filesystem, no snapshot), and the pool checks clean.
#[test]
fn a_replication_stream_cut_or_damaged_in_substream_k_keeps_those_before_k_only() {
    let stream = fixture_stream("replication_R");
    let m = manifest("replication_R");
    let subs = m["substreams"].as_array().unwrap();
    // (BEGIN offset, END offset, snapshot) of each real substream.
    let mut spans = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        if s["hdrtype"] == 1 {
            let begin = s["offset"].as_u64().unwrap() as usize;
            let end = subs[i + 1]["offset"].as_u64().unwrap() as usize;
            let name = s["toname"].as_str().unwrap().replace("fxp/rep", "fxp/t");
            spans.push((begin, end, name));
        }
    }
    assert_eq!(spans.len(), 4);
    for (k, (begin, end, _)) in spans.iter().enumerate() {
        let middle = (begin + end) / 2;
        let mut damaged = stream.clone();
        damaged[middle] ^= 0x20;
        for (what, bad) in [("cut", stream[..middle].to_vec()), ("damaged", damaged)] {
            let mut pool = new_pool();
            let before = pool.list().len();
            let err = receive(&mut pool, "fxp/t", &bad).unwrap_err();
            assert!(
                matches!(err.errno(), Errno::EINVAL | Errno::ECKSUM),
                "{what} in substream {k}: {err}"
            );
            let names: Vec<String> = pool.list().into_iter().map(|i| i.name).collect();
            for (j, (_, _, snap)) in spans.iter().enumerate() {
                assert_eq!(
                    names.contains(snap),
                    j < k,
                    "{what} in substream {k}: {snap} in {names:?}"
                );
            }
            assert!(
                !names.iter().any(|n| n.contains('%')),
                "{what} {k}: {names:?}"
            );
            // A full substream's new filesystem goes with it.
            let fs_before_k: BTreeSet<&str> = spans[..k]
                .iter()
                .map(|(_, _, s)| s.split('@').next().unwrap())
                .collect();
            let filesystems = names.iter().filter(|n| !n.contains('@')).count();
            assert_eq!(
                filesystems,
                before + fs_before_k.len(),
                "{what} {k}: {names:?}"
            );
            let report = engine::check::check(&mut pool).unwrap();
            assert!(report.is_clean(), "{what} {k}: {report}");
        }
    }
}

/// `send -R` of a tree where a descendant lacks the snapshot is refused
/// (ENOENT, naming it) before anything is written, as zfs-fuse refuses it.
#[test]
fn send_replication_refuses_a_tree_whose_descendant_lacks_the_snapshot() {
    let mut pool = new_pool();
    receive(&mut pool, "fxp/rep", &fixture_stream("replication_R")).unwrap();
    pool.create_fs("fxp/rep/new").unwrap();
    let mut out = Vec::new();
    let err = pool
        .send_replication(
            "fxp/rep@r2",
            None,
            &mut out,
            &engine::send::SendOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ENOENT, "{err}");
    assert!(err.to_string().contains("fxp/rep/new@r2"), "{err}");
    assert!(out.is_empty());
}

/// A tree with a child and a clone of the child's snapshot (not the first
/// snapshot a listing shows), sent with zsim's
/// `-R` and then `-R -I`, is received by zsim: the clone is a clone of the
/// received origin, every snapshot keeps its guid, and the data matches.
#[test]
fn a_tree_with_a_clone_goes_through_send_r_and_r_i() {
    let mut src = new_pool();
    let a = src.create_fs("fxp/a").unwrap();
    let b = src.create_fs("fxp/a/b").unwrap();
    for (fs, fill) in [(a, 1u8), (b, 2)] {
        let mut dmu = src.dmu(fs).unwrap();
        let o = dmu.object_alloc(19, 4096, 0, 0).unwrap();
        dmu.write(o, 0, &[fill; 8192]).unwrap();
    }
    for snap in ["fxp/a@s1", "fxp/a/b@s1"] {
        src.snapshot(snap).unwrap();
    }
    let mut full = Vec::new();
    let options = engine::send::SendOptions::default();
    src.send_replication("fxp/a@s1", None, &mut full, &options)
        .unwrap();
    src.clone_fs("fxp/a/b@s1", "fxp/a/c").unwrap();
    let c = src.lookup("fxp/a/c").unwrap();
    let mut dmu = src.dmu(c).unwrap();
    let o = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    dmu.write(o, 0, &[3; 4096]).unwrap();
    drop(dmu);
    for snap in ["fxp/a@s2", "fxp/a/b@s2", "fxp/a/c@s2"] {
        src.snapshot(snap).unwrap();
    }
    let mut incremental = Vec::new();
    src.send_replication("fxp/a@s2", Some("@s1"), &mut incremental, &options)
        .unwrap();

    let mut dst = new_pool();
    receive(&mut dst, "fxp/t", &full).unwrap();
    let ids = receive(&mut dst, "fxp/t", &incremental).unwrap();
    let names: Vec<String> = ids.iter().map(|&id| dst.info(id).name).collect();
    assert_eq!(names, ["fxp/t@s2", "fxp/t/b@s2", "fxp/t/c@s2"]);
    let clone = dst.info(dst.lookup("fxp/t/c").unwrap());
    assert_eq!(clone.origin.as_deref(), Some("fxp/t/b@s1"));
    for (sent, got) in [
        ("fxp/a@s1", "fxp/t@s1"),
        ("fxp/a/b@s2", "fxp/t/b@s2"),
        ("fxp/a/c@s2", "fxp/t/c@s2"),
    ] {
        let (s, g) = (src.lookup(sent).unwrap(), dst.lookup(got).unwrap());
        assert_eq!(src.info(s).guid, dst.info(g).guid, "{got}");
        let mut sd = src.dmu(s).unwrap();
        let objects = sd.objects();
        let want: Vec<Vec<u8>> = objects
            .iter()
            .map(|&o| sd.read(o, 0, 8192).unwrap())
            .collect();
        drop(sd);
        let mut gd = dst.dmu(g).unwrap();
        let have: Vec<Vec<u8>> = objects
            .iter()
            .map(|&o| gd.read(o, 0, 8192).unwrap())
            .collect();
        assert!(have == want, "{got}");
    }
}

#[test]
fn a_recursive_snapshot_takes_the_tree_in_one_txg_or_nothing() {
    let mut pool = new_pool();
    for fs in ["fxp/a", "fxp/a/b", "fxp/a/b/c", "fxp/ab"] {
        pool.create_fs(fs).unwrap();
    }
    let ids = pool.snapshot_recursive("fxp/a@s1").unwrap();
    let infos: Vec<_> = ids.iter().map(|&id| pool.info(id)).collect();
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    // Not fxp/ab: a sibling whose name merely begins the same.
    assert_eq!(names, ["fxp/a@s1", "fxp/a/b@s1", "fxp/a/b/c@s1"]);
    assert!(
        infos
            .iter()
            .all(|i| i.creation_txg == infos[0].creation_txg)
    );
    let guids: BTreeSet<u64> = infos.iter().map(|i| i.guid).collect();
    assert_eq!(guids.len(), 3, "each snapshot its own guid");

    // One descendant has the name already: none is taken.
    pool.snapshot("fxp/a/b/c@s2").unwrap();
    let before = pool.list().len();
    let e = pool.snapshot_recursive("fxp/a@s2").unwrap_err();
    assert_eq!(e.errno(), Errno::EEXIST, "{e}");
    assert!(e.to_string().contains("fxp/a/b/c@s2"), "{e}");
    assert_eq!(pool.list().len(), before);
    assert!(pool.lookup("fxp/a@s2").is_err());

    // The tree, sent -R from the recursive snapshot, is received whole.
    let mut stream = Vec::new();
    pool.send_replication("fxp/a@s1", None, &mut stream, &Default::default())
        .unwrap();
    let mut dst = new_pool();
    let got = receive(&mut dst, "fxp/t", &stream).unwrap();
    let names: Vec<String> = got.iter().map(|&id| dst.info(id).name).collect();
    assert_eq!(names, ["fxp/t@s1", "fxp/t/b@s1", "fxp/t/b/c@s1"]);
}

#[test]
fn a_replicated_clone_whose_origin_is_not_here_is_enoent_and_found_by_guid_when_it_is() {
    let mut src = new_pool();
    src.create_fs("fxp/a").unwrap();
    src.snapshot("fxp/a@s1").unwrap();
    src.clone_fs("fxp/a@s1", "fxp/c").unwrap();
    src.snapshot("fxp/c@s2").unwrap();
    // -R of the clone alone: its first snapshot goes as a clone stream
    // from an origin outside the tree.
    let mut stream = Vec::new();
    src.send_replication("fxp/c@s2", None, &mut stream, &Default::default())
        .unwrap();

    let mut dst = new_pool();
    let before = dst.list();
    let e = receive(&mut dst, "fxp/t", &stream).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");
    assert!(e.to_string().contains("(BEGIN) at byte offset"), "{e}");
    assert!(
        e.to_string().contains("local origin for clone fxp/t"),
        "{e}"
    );
    assert_eq!(dst.list().len(), before.len());

    // With the origin received first (under any name), the clone finds it.
    let mut full = Vec::new();
    src.send(
        "fxp/a@s1",
        None,
        &mut full,
        &Default::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    receive(&mut dst, "fxp/o", &full).unwrap();
    receive(&mut dst, "fxp/t", &stream).unwrap();
    let t = dst.info(dst.lookup("fxp/t").unwrap());
    assert_eq!(t.origin.as_deref(), Some("fxp/o@s1"));
}

#[test]
fn a_child_of_a_clone_is_sent_after_the_clone_that_waits_for_its_origin() {
    let mut src = new_pool();
    // The clone sorts before its origin's filesystem, its child between.
    src.create_fs("fxp/d").unwrap();
    src.snapshot("fxp/d@s1").unwrap();
    src.clone_fs("fxp/d@s1", "fxp/c").unwrap();
    src.create_fs("fxp/c/x").unwrap();
    src.snapshot_recursive("fxp@s2").unwrap();
    let mut stream = Vec::new();
    src.send_replication("fxp@s2", None, &mut stream, &Default::default())
        .unwrap();
    let mut dst = new_pool();
    let ids = receive(&mut dst, "fxp/t", &stream).unwrap();
    let names: Vec<String> = ids.iter().map(|&id| dst.info(id).name).collect();
    assert_eq!(
        names,
        [
            "fxp/t@s2",
            "fxp/t/d@s1",
            "fxp/t/d@s2",
            "fxp/t/c@s2",
            "fxp/t/c/x@s2"
        ]
    );
    let c = dst.info(dst.lookup("fxp/t/c").unwrap());
    assert_eq!(c.origin.as_deref(), Some("fxp/t/d@s1"));
}

#[test]
fn a_replication_header_with_unknown_feature_flags_is_refused_enotsup() {
    let mut src = new_pool();
    src.create_fs("fxp/a").unwrap();
    src.snapshot("fxp/a@s1").unwrap();
    let mut stream = Vec::new();
    src.send_replication("fxp/a@s1", None, &mut stream, &Default::default())
        .unwrap();
    // drr_versioninfo of the header's BEGIN (little-endian here): feature
    // flags are its bits 2 to 31; bit 31 is no feature anyone knows.
    let at = 16;
    let mut vi = u64::from_le_bytes(stream[at..at + 8].try_into().unwrap());
    vi |= 1 << 31;
    stream[at..at + 8].copy_from_slice(&vi.to_le_bytes());
    let mut dst = new_pool();
    let before = dst.list();
    let e = receive(&mut dst, "fxp/t", &stream).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOTSUP, "{e}");
    assert!(
        e.to_string().contains("record 0 (BEGIN) at byte offset 0"),
        "{e}"
    );
    assert_eq!(dst.list(), before);
}

/// A `-R -I` substream that fails puts back the received property values
/// it set on the filesystem it was updating: the value from the stream
/// before stays.
#[test]
fn a_failed_substream_puts_back_the_received_properties_it_set() {
    let mut src = new_pool();
    src.create_fs("fxp/a").unwrap();
    src.create_fs("fxp/a/b").unwrap();
    src.set_prop("fxp/a/b", "org.test:x", "1").unwrap();
    src.snapshot_recursive("fxp/a@s1").unwrap();
    let mut full = Vec::new();
    src.send_replication("fxp/a@s1", None, &mut full, &Default::default())
        .unwrap();
    let mut dst = new_pool();
    receive(&mut dst, "fxp/t", &full).unwrap();
    let x = |p: &Pool| p.get_prop("fxp/t/b", "org.test:x").unwrap();
    assert_eq!(x(&dst), ("1".to_string(), "received".to_string()));

    src.set_prop("fxp/a/b", "org.test:x", "2").unwrap();
    src.snapshot_recursive("fxp/a@s2").unwrap();
    let mut incr = Vec::new();
    src.send_replication("fxp/a@s2", Some("@s1"), &mut incr, &Default::default())
        .unwrap();
    // Cut inside the last substream's END (b's, after a's): b fails.
    let cut = &incr[..incr.len() - DRR_RECORD_SIZE - 100];
    let e = receive(&mut dst, "fxp/t", cut).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    assert!(dst.lookup("fxp/t@s2").is_ok(), "a's substream stays");
    assert!(dst.lookup("fxp/t/b@s2").is_err());
    assert_eq!(x(&dst), ("1".to_string(), "received".to_string()));
    // Whole, it sets the new value.
    let mut dst2 = new_pool();
    receive(&mut dst2, "fxp/t", &full).unwrap();
    receive(&mut dst2, "fxp/t", &incr).unwrap();
    assert_eq!(x(&dst2), ("2".to_string(), "received".to_string()));
}

/// `zfs receive -o PROP=VALUE`: a local value on the top of the tree,
/// inherited below it, set before the data (a refused value refuses the
/// receive, nothing made); a failed substream puts the old value back.
#[test]
fn recv_o_sets_local_values_on_the_top_and_puts_them_back_on_failure() {
    let mut src = new_pool();
    src.create_fs("fxp/a").unwrap();
    src.create_fs("fxp/a/b").unwrap();
    src.snapshot_recursive("fxp/a@s1").unwrap();
    let mut full = Vec::new();
    src.send_replication("fxp/a@s1", None, &mut full, &Default::default())
        .unwrap();
    let with = |props: &[(&str, &str)]| RecvOptions {
        props: props
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect(),
        ..RecvOptions::default()
    };
    let mut dst = new_pool();
    let before = dst.list();
    let e = dst
        .receive(
            "fxp/t",
            &full[..],
            &with(&[("compression", "bogus")]),
            &mut NoInterrupt,
        )
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    assert_eq!(dst.list(), before);
    dst.receive(
        "fxp/t",
        &full[..],
        &with(&[("compression", "lzjb")]),
        &mut NoInterrupt,
    )
    .unwrap();
    let get = |p: &Pool, fs: &str| p.get_prop(fs, "compression").unwrap();
    assert_eq!(get(&dst, "fxp/t"), ("lzjb".into(), "local".into()));
    assert_eq!(
        get(&dst, "fxp/t/b"),
        ("lzjb".into(), "inherited from fxp/t".into())
    );

    src.snapshot_recursive("fxp/a@s2").unwrap();
    let mut incr = Vec::new();
    src.send_replication("fxp/a@s2", Some("@s1"), &mut incr, &Default::default())
        .unwrap();
    // Cut inside the top's substream, past its BEGIN: its -o value goes
    // back.
    let plan = src
        .replication_plan("fxp/a@s2", Some("@s1"), ByteOrder::NATIVE)
        .unwrap();
    let cut = &incr[..plan.header.len() + DRR_RECORD_SIZE + 100];
    let e = dst
        .receive(
            "fxp/t",
            cut,
            &with(&[("compression", "zle")]),
            &mut NoInterrupt,
        )
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    assert_eq!(get(&dst, "fxp/t"), ("lzjb".into(), "local".into()));
}
