//! The pool as a user of the engine sees it: datasets, snapshots, clones,
//! their rules and errnos, space that never leaks, and a pool that comes
//! back the same after export and import.

use engine::Errno;
use engine::check::check;
use engine::context::{ManualClock, SplitMix64};
use engine::spa::Pool;
use engine::vdev::MemDevice;

fn new_pool() -> Pool {
    Pool::create(
        Box::new(MemDevice::new(64 << 20, 512)),
        "tank",
        Box::new(ManualClock::new(1_700_000_000)),
        Box::new(SplitMix64::new(7)),
    )
    .unwrap()
}

fn reimport(pool: Pool) -> Pool {
    let dev = pool.export().unwrap().remove(0);
    Pool::import(
        dev,
        Box::new(ManualClock::new(1_700_000_100)),
        Box::new(SplitMix64::new(8)),
    )
    .unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

fn assert_consistent(pool: &mut Pool) {
    let report = check(pool).unwrap();
    assert!(report.is_clean(), "{report}");
}

/// Writes `len` bytes of `seed` pattern into a new plain-file object.
fn new_file(pool: &mut Pool, fs: &str, len: usize, seed: u8) -> u64 {
    let id = pool.lookup(fs).unwrap();
    let mut dmu = pool.dmu(id).unwrap();
    let obj = dmu.object_alloc(19, 131072, 0, 0).unwrap();
    dmu.write(obj, 0, &pattern(len, seed)).unwrap();
    obj
}

fn read_all(pool: &mut Pool, name: &str, obj: u64, len: usize) -> Vec<u8> {
    let id = pool.lookup(name).unwrap();
    pool.dmu(id).unwrap().read(obj, 0, len as u64).unwrap()
}

#[test]
fn data_and_datasets_survive_export_and_import() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    let obj = new_file(&mut pool, "tank/a", 1_000_000, 1);
    pool.snapshot("tank/a@one").unwrap();
    let id = pool.lookup("tank/a").unwrap();
    pool.dmu(id).unwrap().write(obj, 0, &[0xee; 5000]).unwrap();
    pool.txg_sync().unwrap();
    assert_consistent(&mut pool);
    let guid = pool.info(pool.lookup("tank/a@one").unwrap()).guid;

    let mut pool = reimport(pool);
    assert_eq!(
        read_all(&mut pool, "tank/a@one", obj, 1_000_000),
        pattern(1_000_000, 1)
    );
    let now = read_all(&mut pool, "tank/a", obj, 6000);
    assert_eq!(&now[..5000], &[0xee; 5000][..]);
    assert_eq!(&now[5000..], &pattern(6000, 1)[5000..]);
    assert_eq!(pool.info(pool.lookup("tank/a@one").unwrap()).guid, guid);
    assert_consistent(&mut pool);
}

#[test]
fn names_and_their_errors() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    assert_eq!(pool.create_fs("tank/a").unwrap_err().errno(), Errno::EEXIST);
    assert_eq!(
        pool.create_fs("tank/nope/b").unwrap_err().errno(),
        Errno::ENOENT
    );
    assert_eq!(
        pool.create_fs("tank/bad*name").unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pool.create_fs(&format!("tank/{}", "x".repeat(300)))
            .unwrap_err()
            .errno(),
        Errno::ENAMETOOLONG
    );
    pool.snapshot("tank/a@s").unwrap();
    assert_eq!(
        pool.snapshot("tank/a@s").unwrap_err().errno(),
        Errno::EEXIST
    );
    assert_eq!(
        pool.snapshot("tank/zz@s").unwrap_err().errno(),
        Errno::ENOENT
    );
    assert_eq!(pool.lookup("tank/a@t").unwrap_err().errno(), Errno::ENOENT);
    assert_eq!(
        pool.clone_fs("tank/a", "tank/c").unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pool.dmu(pool.lookup("tank/a@s").unwrap())
            .unwrap()
            .object_alloc(19, 512, 0, 0)
            .unwrap_err()
            .errno(),
        Errno::EROFS
    );
}

#[test]
fn destroy_follows_zfs_rules() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    new_file(&mut pool, "tank/a", 300_000, 2);
    pool.snapshot("tank/a@s").unwrap();
    pool.create_fs("tank/a/child").unwrap();
    assert_eq!(
        pool.destroy("tank/a").unwrap_err().errno(),
        Errno::EBUSY,
        "has snapshots"
    );
    pool.clone_fs("tank/a@s", "tank/c").unwrap();
    assert_eq!(
        pool.destroy("tank/a@s").unwrap_err().errno(),
        Errno::EEXIST,
        "has a clone"
    );
    pool.hold("tank/a@s", "keep").unwrap();
    assert_eq!(
        pool.hold("tank/a@s", "keep").unwrap_err().errno(),
        Errno::EEXIST
    );
    assert_eq!(
        pool.release("tank/a@s", "other").unwrap_err().errno(),
        Errno::ESRCH
    );
    assert_eq!(pool.destroy("tank").unwrap_err().errno(), Errno::EINVAL);

    // Deferred destroy: the snapshot goes with its last clone and hold.
    pool.destroy_deferred("tank/a@s").unwrap();
    assert!(pool.lookup("tank/a@s").is_ok());
    pool.destroy("tank/c").unwrap();
    assert!(pool.lookup("tank/a@s").is_ok(), "still held");
    pool.release("tank/a@s", "keep").unwrap();
    assert_eq!(pool.lookup("tank/a@s").unwrap_err().errno(), Errno::ENOENT);

    assert_eq!(
        pool.destroy("tank/a").unwrap_err().errno(),
        Errno::EEXIST,
        "has a child"
    );
    pool.destroy("tank/a/child").unwrap();
    pool.destroy("tank/a").unwrap();
    assert_consistent(&mut pool);
    let mut pool = reimport(pool);
    assert_consistent(&mut pool);
}

#[test]
fn space_is_accounted_through_snapshots_clones_and_rollback() {
    let mut pool = new_pool();
    let (allocated_empty, _) = pool.space();
    pool.create_fs("tank/a").unwrap();
    let obj = new_file(&mut pool, "tank/a", 2_000_000, 3);
    pool.snapshot("tank/a@1").unwrap();
    let id = pool.lookup("tank/a").unwrap();
    pool.dmu(id)
        .unwrap()
        .write(obj, 500_000, &pattern(700_000, 9))
        .unwrap();
    pool.snapshot("tank/a@2").unwrap();
    pool.dmu(id).unwrap().free_range(obj, 0, 1_000_000).unwrap();
    pool.snapshot("tank/a@3").unwrap();
    pool.clone_fs("tank/a@2", "tank/b").unwrap();
    let b = pool.lookup("tank/b").unwrap();
    pool.dmu(b)
        .unwrap()
        .write(obj, 0, &pattern(300_000, 4))
        .unwrap();
    pool.txg_sync().unwrap();
    assert_consistent(&mut pool);

    // The middle snapshot goes: what only it held is freed, the rest stays.
    pool.destroy("tank/b").unwrap();
    pool.destroy("tank/a@2").unwrap();
    assert_consistent(&mut pool);
    assert_eq!(
        read_all(&mut pool, "tank/a@1", obj, 2_000_000),
        pattern(2_000_000, 3)
    );

    // Rollback to @3 discards what came after.
    pool.dmu(id).unwrap().write(obj, 0, &[1; 100_000]).unwrap();
    pool.txg_sync().unwrap();
    assert!(pool.modified_since_last_snapshot(id).unwrap());
    pool.rollback("tank/a").unwrap();
    assert!(!pool.modified_since_last_snapshot(id).unwrap());
    assert_eq!(
        read_all(&mut pool, "tank/a", obj, 1_000_000),
        vec![0; 1_000_000]
    );
    assert_eq!(
        pool.rollback("tank/a@1").unwrap_err().errno(),
        Errno::EEXIST
    );
    assert_consistent(&mut pool);

    for snap in ["tank/a@1", "tank/a@3"] {
        pool.destroy(snap).unwrap();
        assert_consistent(&mut pool);
    }
    pool.destroy("tank/a").unwrap();
    // Wait out the deferral window: everything comes back.
    for _ in 0..3 {
        pool.txg_sync().unwrap();
    }
    assert_consistent(&mut pool);
    let (allocated, _) = pool.space();
    assert!(
        allocated <= allocated_empty + (64 << 10),
        "{allocated} vs {allocated_empty} when empty"
    );
}

#[test]
fn properties_are_validated_and_inherited() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    pool.create_fs("tank/a/b").unwrap();
    pool.set_prop("tank/a", "compression", "lzjb").unwrap();
    pool.set_prop("tank/a", "recordsize", "8192").unwrap();
    assert_eq!(
        pool.get_prop("tank/a/b", "compression").unwrap(),
        ("lzjb".into(), "inherited from tank/a".into())
    );
    assert_eq!(pool.get_prop("tank/a/b", "checksum").unwrap().1, "default");
    assert_eq!(
        pool.set_prop("tank/a", "recordsize", "1000")
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pool.set_prop("tank/a", "checksum", "md5")
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pool.set_prop("tank/a", "color", "red").unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(pool.recordsize(pool.lookup("tank/a/b").unwrap()), 8192);
}

/// Each property with a fixed set of values takes them and nothing else.
#[test]
fn every_enumerated_property_takes_its_values_only() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    for (prop, good, bad) in [
        ("checksum", "fletcher4", "md5"),
        ("dedup", "sha256", "sha512"),
        ("copies", "3", "4"),
        ("atime", "off", "sometimes"),
        ("mountpoint", "/srv/a/", "srv"),
        ("mountpoint", "none", "nowhere"),
        ("mountpoint", "legacy", "srv/a"),
    ] {
        pool.set_prop("tank/a", prop, good).unwrap();
        let want = good.trim_end_matches('/');
        assert_eq!(
            pool.get_prop("tank/a", prop).unwrap(),
            (want.into(), "local".into())
        );
        let e = pool.set_prop("tank/a", prop, bad).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL, "{prop}={bad}: {e}");
        assert_eq!(
            pool.get_prop("tank/a", prop).unwrap().0,
            want,
            "{prop} unchanged"
        );
    }
    // A compression ZFS has and zsim does not write: ENOTSUP, not EINVAL.
    let e = pool
        .set_prop("tank/a", "compression", "gzip-9")
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ENOTSUP, "{e}");
}

#[test]
fn a_corrupted_block_reads_as_eio_and_the_check_finds_it() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    let obj = new_file(&mut pool, "tank/a", 131072, 5);
    pool.txg_sync().unwrap();
    let mut dev_bytes = vec![0u8; 512];
    // The file's data is the only 128K block; scan the device for it.
    let want = pattern(512, 5);
    let size = pool.device_mut().size();
    let mut found = None;
    let mut off = 0;
    while off < size {
        pool.device_mut().read(off, &mut dev_bytes).unwrap();
        if dev_bytes == want {
            found = Some(off);
            break;
        }
        off += 512;
    }
    let off = found.expect("the block is on the device");
    dev_bytes[7] ^= 1;
    pool.device_mut().write(off, &dev_bytes).unwrap();
    let mut pool = {
        let dev = pool.into_devices().remove(0);
        Pool::import(
            dev,
            Box::new(ManualClock::new(0)),
            Box::new(SplitMix64::new(1)),
        )
        .unwrap()
    };
    let id = pool.lookup("tank/a").unwrap();
    let err = pool.dmu(id).unwrap().read(obj, 0, 100).unwrap_err();
    assert_eq!(err.errno(), Errno::EIO);
    let report = check(&mut pool).unwrap();
    assert_eq!(report.unreadable.len(), 1, "{report}");
}

#[test]
fn used_referenced_unique_and_written_follow_the_data() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    let obj = new_file(&mut pool, "tank/a", 1 << 20, 1);
    pool.snapshot("tank/a@1").unwrap();
    let a = pool.lookup("tank/a").unwrap();
    let s1 = pool.lookup("tank/a@1").unwrap();
    let at_snap = pool.space_info(a).unwrap();
    assert_eq!(at_snap.written, 0, "nothing written since the snapshot");
    assert!(at_snap.referenced >= 1 << 20);

    // Overwrite half: the snapshot now holds that half alone.
    pool.dmu(a)
        .unwrap()
        .write(obj, 0, &pattern(512 << 10, 2))
        .unwrap();
    pool.txg_sync().unwrap();
    let head = pool.space_info(a).unwrap();
    let snap = pool.space_info(s1).unwrap();
    // The data plus the metadata above it (indirect, dnode and meta-dnode blocks).
    assert!(
        head.written >= 512 << 10 && head.written < 700 << 10,
        "{head:?}"
    );
    assert_eq!(head.unique, head.written);
    assert!(
        snap.unique >= 512 << 10 && snap.unique < 700 << 10,
        "{snap:?}"
    );
    assert!(
        head.used >= head.referenced + snap.unique - (64 << 10),
        "{head:?} {snap:?}"
    );
    assert_consistent(&mut pool);
}

/// The compression of every block of the pool born after `txg`, metadata
/// and data apart, as (metadata, data) lists of `compress` values.
fn block_compression(pool: &mut Pool, txg: u64) -> (Vec<u8>, Vec<u8>) {
    let mut roots = vec![pool.uberblock.rootbp];
    roots.extend(pool.list().into_iter().map(|d| d.bp));
    let (mut metadata, mut data) = (Vec::new(), Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    let options = engine::traverse::WalkOptions {
        min_birth: 0,
        read_data: true,
    };
    for root in roots {
        engine::traverse::walk(pool.zio_mut(), &root, options, &mut seen, &mut |bp| {
            // Plain-file contents (type 19) are data; everything else here
            // (dnodes, indirect blocks, ZAPs, objsets, the MOS) metadata.
            if bp.birth <= txg {
                return;
            }
            if bp.level() == 0 && bp.object_type() == 19 {
                data.push(bp.compress());
            } else {
                metadata.push(bp.compress());
            }
        })
        .unwrap();
    }
    (metadata, data)
}

#[test]
fn mdcomp_disable_writes_metadata_uncompressed_and_the_pool_stays_whole() {
    const LZJB: u8 = 3;
    const OFF: u8 = 2;
    for disable in [false, true] {
        let mut pool = new_pool();
        pool.zio_mut().mdcomp_disable = disable;
        let txg = pool.synced_txg();
        pool.create_fs("tank/a").unwrap();
        let obj = new_file(&mut pool, "tank/a", 300_000, 3);
        pool.txg_sync().unwrap();
        pool.snapshot("tank/a@s1").unwrap();
        let (metadata, data) = block_compression(&mut pool, txg);
        assert!(!metadata.is_empty() && !data.is_empty());
        assert!(data.iter().all(|&c| c == OFF), "compression=off data");
        if disable {
            assert!(metadata.iter().all(|&c| c == OFF), "{metadata:?}");
        } else {
            assert!(metadata.contains(&LZJB), "{metadata:?}");
        }
        assert_consistent(&mut pool);
        let mut pool = reimport(pool);
        assert_eq!(
            read_all(&mut pool, "tank/a@s1", obj, 300_000),
            pattern(300_000, 3)
        );
        assert_consistent(&mut pool);
    }
}

/// `zfs snapshot -r`: a name that fits the top but not a filesystem below
/// is refused for all of them, to the byte.
#[test]
fn a_recursive_snapshot_too_long_for_a_filesystem_below_is_refused() {
    let mut pool = new_pool();
    pool.create_fs("tank/a").unwrap();
    // `tank/a/` and 247 bytes: 254; with `@s`, 256, one too many.
    let child = format!("tank/a/{}", "c".repeat(247));
    pool.create_fs(&child).unwrap();
    let e = pool.snapshot_recursive("tank/a@s").unwrap_err();
    assert_eq!(e.errno(), Errno::ENAMETOOLONG, "{e}");
    assert!(pool.lookup("tank/a@s").is_err(), "none is taken");
    pool.destroy(&child).unwrap();
    let child = format!("tank/a/{}", "c".repeat(246));
    pool.create_fs(&child).unwrap();
    pool.snapshot_recursive("tank/a@s").unwrap();
    pool.lookup(&format!("{child}@s")).unwrap();
}
