//! The ZPL writer, read back by the walker: a filesystem made through the
//! engine (master node, directories micro and fat, files, symlinks inline
//! and in a block, hard links, extended attributes) lists as made; removals
//! keep sizes and link counts right and send an orphaned attribute
//! directory to the delete queue; and a snapshot sent in either byte order
//! (every ZAP and znode swapped on the way) is received equal, object by
//! object and file by file.

use std::collections::BTreeMap;

use engine::Errno;
use engine::context::{ManualClock, SplitMix64};
use engine::dsl::DatasetId;
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::ByteOrder;
use engine::vdev::MemDevice;
use engine::zap::{self, ZapKind};
use engine::zpl::{self, FileEntry, FileType, Stamp, ZfsTime, vnops};

fn new_pool(name: &str) -> Pool {
    Pool::create(
        Box::new(MemDevice::new(256 << 20, 512)),
        name,
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(9)),
    )
    .unwrap()
}

fn stamp(secs: u64) -> Stamp {
    Stamp {
        now: ZfsTime { secs, nsecs: 0 },
        txg: 5,
    }
}

/// A filesystem `p/fs` with the ZPL skeleton.
fn zpl_fs(pool: &mut Pool) -> DatasetId {
    pool.create_fs("p/fs").unwrap();
    let id = pool.lookup("p/fs").unwrap();
    let mn = zpl::create_fs(&mut pool.dmu(id).unwrap(), stamp(100).now, 5).unwrap();
    assert_eq!((mn.root, mn.unlinked_set, mn.shares), (3, Some(2), Some(4)));
    id
}

fn listing(pool: &mut Pool, id: DatasetId) -> BTreeMap<String, FileEntry> {
    zpl::walk(pool, id)
        .unwrap()
        .into_iter()
        .map(|e| (e.path_lossy().into_owned(), e))
        .collect()
}

fn long(n: usize) -> Vec<u8> {
    let mut v = format!("long-{n}-").into_bytes();
    v.resize(80, b'x');
    v
}

/// Builds the tree every test starts from.
fn build(pool: &mut Pool, id: DatasetId) {
    let mut dmu = pool.dmu(id).unwrap();
    let s = stamp(200);
    vnops::mkdir(&mut dmu, s, b"a", 0o755).unwrap();
    vnops::mkdir(&mut dmu, s, b"a/b", 0o700).unwrap();
    let f = vnops::create(&mut dmu, s, b"a/f.txt", 0o644, 4096).unwrap();
    vnops::write(&mut dmu, s, f, 0, b"hello, world\n").unwrap();
    vnops::write(&mut dmu, s, f, 10_000, b"tail").unwrap();
    let g = vnops::create(&mut dmu, s, b"g", 0o600, 512).unwrap();
    vnops::write(&mut dmu, s, g, 0, &[7; 3000]).unwrap();
    vnops::truncate(&mut dmu, s, g, 1000).unwrap();
    vnops::symlink(&mut dmu, s, b"a/b/up", b"../f.txt").unwrap();
    vnops::symlink(&mut dmu, s, b"far", &[b'z'; 200]).unwrap();
    vnops::link(&mut dmu, s, b"a/b/hard", b"a/f.txt").unwrap();
    vnops::set_xattr(&mut dmu, s, b"a/f.txt", b"user.k", Some(b"v1")).unwrap();
    vnops::set_xattr(&mut dmu, s, b"a/f.txt", b"user.big", Some(&[3; 5000])).unwrap();
    vnops::set_xattr(&mut dmu, s, b"a", b"user.dir", Some(b"on a directory")).unwrap();
    vnops::mkdir(&mut dmu, s, b"many", 0o755).unwrap();
    for i in 0..60 {
        let path = [b"many/".to_vec(), long(i)].concat();
        vnops::create(&mut dmu, s, &path, 0o644, 512).unwrap();
    }
}

#[test]
fn a_written_tree_lists_as_made() {
    let mut pool = new_pool("p");
    let id = zpl_fs(&mut pool);
    build(&mut pool, id);
    let l = listing(&mut pool, id);
    assert_eq!(l.len(), 9 + 60);
    let root = &l["."];
    assert_eq!(
        (root.file_type, root.mode, root.size, root.nlink),
        (FileType::Dir, 0o755, 6, 4)
    );
    let a = &l["a"];
    assert_eq!((a.size, a.nlink), (4, 3));
    assert_eq!(a.xattrs[&b"user.dir".to_vec()], b"on a directory");
    let f = &l["a/f.txt"];
    assert_eq!(
        (f.file_type, f.mode, f.size, f.nlink),
        (FileType::File, 0o644, 10_004, 2)
    );
    assert_eq!(f.xattrs.len(), 2);
    assert_eq!(f.xattrs[&b"user.big".to_vec()], vec![3; 5000]);
    assert_eq!(l["a/b/hard"].object, f.object);
    assert_eq!(l["a/b/hard"].sha256, f.sha256);
    assert_eq!(l["a/b"].mode, 0o700);
    assert_eq!(l["a/b/up"].target.as_deref(), Some(&b"../f.txt"[..]));
    assert_eq!(l["far"].target.as_deref(), Some(&[b'z'; 200][..]));
    assert_eq!(l["far"].size, 200);
    assert_eq!(l["g"].size, 1000);
    assert_eq!(l["many"].size, 62);
    // The long names made the directory a fat ZAP; the root stays micro.
    let mut dmu = pool.dmu(id).unwrap();
    let many = l["many"].object;
    assert_eq!(zap::read(&mut dmu, many).unwrap().kind, ZapKind::Fat);
    assert_eq!(zap::read(&mut dmu, 3).unwrap().kind, ZapKind::Micro);
    // The master node reads as zfs-fuse's does.
    let mn = zpl::master_node(&mut dmu).unwrap();
    assert_eq!(mn.version, 4);
    assert_eq!(zap::lookup_u64(&mut dmu, 1, b"casesensitivity").unwrap(), 0);
}

#[test]
fn removals_keep_counts_and_queue_orphaned_attribute_directories() {
    let mut pool = new_pool("p");
    let id = zpl_fs(&mut pool);
    build(&mut pool, id);
    let before = listing(&mut pool, id);
    let xattr_dir = {
        let dmu = pool.dmu(id).unwrap();
        zpl::read_znode(&dmu, before["a/f.txt"].object)
            .unwrap()
            .xattr
    };
    let mut dmu = pool.dmu(id).unwrap();
    let s = stamp(300);
    let e = vnops::rmdir(&mut dmu, s, b"a/b").unwrap_err();
    assert_eq!(e.errno(), Errno::EEXIST, "not empty");
    assert_eq!(
        vnops::remove(&mut dmu, s, b"a").unwrap_err().errno(),
        Errno::EPERM
    );
    assert_eq!(
        vnops::mkdir(&mut dmu, s, b"g", 0o755).unwrap_err().errno(),
        Errno::EEXIST
    );
    assert_eq!(
        vnops::create(&mut dmu, s, b"nope/x", 0o644, 512)
            .unwrap_err()
            .errno(),
        Errno::ENOENT
    );
    assert_eq!(
        vnops::create(&mut dmu, s, b"g/x", 0o644, 512)
            .unwrap_err()
            .errno(),
        Errno::ENOTDIR
    );
    vnops::remove(&mut dmu, s, b"a/f.txt").unwrap();
    vnops::remove(&mut dmu, s, b"a/b/up").unwrap();
    vnops::set_xattr(&mut dmu, s, b"a", b"user.dir", None).unwrap();
    for i in (0..60).step_by(2) {
        vnops::remove(&mut dmu, s, &[b"many/".to_vec(), long(i)].concat()).unwrap();
    }
    let l = listing(&mut pool, id);
    assert_eq!(l["a/b/hard"].nlink, 1);
    assert_eq!(l["a/b/hard"].xattrs.len(), 2);
    assert!(l["a"].xattrs.is_empty());
    assert_eq!(l["a"].size, 3);
    assert_eq!(l["many"].size, 32);
    let mut dmu = pool.dmu(id).unwrap();
    vnops::remove(&mut dmu, s, b"a/b/hard").unwrap();
    vnops::rmdir(&mut dmu, s, b"a/b").unwrap();
    assert!(dmu.object_info(before["a/f.txt"].object).is_err(), "freed");
    let queue = zap::read(&mut dmu, 2).unwrap();
    assert_eq!(
        queue
            .lookup_u64(2, format!("{xattr_dir:x}").as_bytes())
            .unwrap(),
        xattr_dir
    );
    let l = listing(&mut pool, id);
    assert_eq!((l["a"].size, l["a"].nlink, l["."].nlink), (2, 2, 4));
    assert!(!l.contains_key("a/b"));
}

#[test]
fn a_zpl_snapshot_is_received_equal_in_either_byte_order() {
    let mut src = new_pool("p");
    let id = zpl_fs(&mut src);
    build(&mut src, id);
    src.snapshot("p/fs@s1").unwrap();
    {
        let mut dmu = src.dmu(id).unwrap();
        let s = stamp(400);
        vnops::remove(&mut dmu, s, b"a/f.txt").unwrap();
        vnops::mkdir(&mut dmu, s, b"new", 0o750).unwrap();
        for i in 60..200 {
            let path = [b"many/".to_vec(), long(i)].concat();
            vnops::create(&mut dmu, s, &path, 0o644, 512).unwrap();
        }
    }
    src.snapshot("p/fs@s2").unwrap();
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let options = SendOptions {
            byte_order: order,
            ..SendOptions::default()
        };
        let mut dst = new_pool("q");
        for (snap, from) in [("p/fs@s1", None), ("p/fs@s2", Some("p/fs@s1"))] {
            let mut stream = Vec::new();
            src.send(snap, from, &mut stream, &options, None, &mut NoInterrupt)
                .unwrap();
            dst.receive(
                "q/r",
                &stream[..],
                &RecvOptions::default(),
                &mut NoInterrupt,
            )
            .unwrap();
        }
        for snap in ["s1", "s2"] {
            let want_id = src.lookup(&format!("p/fs@{snap}")).unwrap();
            let got_id = dst.lookup(&format!("q/r@{snap}")).unwrap();
            assert_eq!(
                listing(&mut dst, got_id),
                listing(&mut src, want_id),
                "{order:?} {snap}"
            );
            let (w, g) = (
                src.dmu(want_id).unwrap().objects(),
                dst.dmu(got_id).unwrap().objects(),
            );
            assert_eq!(w, g);
            for o in w {
                let wd = src.dmu(want_id).unwrap();
                let gd = dst.dmu(got_id).unwrap();
                assert_eq!(
                    wd.bonus(o).unwrap(),
                    gd.bonus(o).unwrap(),
                    "{order:?} object {o}"
                );
                drop((wd, gd));
                let info = src.dmu(want_id).unwrap().object_info(o).unwrap();
                let len = (info.maxblkid + 1) * u64::from(info.datablksz);
                let a = src.dmu(want_id).unwrap().read(o, 0, len).unwrap();
                let b = dst.dmu(got_id).unwrap().read(o, 0, len).unwrap();
                assert!(a == b, "{order:?} object {o} data");
            }
        }
    }
}
