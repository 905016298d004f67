//! The ZAP writer, read back by the reader: microzaps that grow a block at
//! a time, the upgrade to a fat ZAP (a long name, a value that is not one
//! integer, a full 128 KiB block), fat ZAPs that split leaves and move
//! their pointer table out of block 0 and double it, removal; and the hash
//! that places entries is the one a real ZFS used (the fixture's fat ZAP).

mod common;

use std::collections::BTreeMap;

use common::plan::{new_pool, receive_plan};
use engine::Errno;
use engine::context::{ManualClock, SplitMix64};
use engine::spa::Pool;
use engine::vdev::MemDevice;
use engine::zap::{self, ZapKind};

fn pool() -> Pool {
    Pool::create(
        Box::new(MemDevice::new(256 << 20, 512)),
        "p",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(3)),
    )
    .unwrap()
}

/// A ZAP object in a new filesystem, and the filesystem.
fn new_zap(pool: &mut Pool) -> (engine::dsl::DatasetId, u64) {
    pool.create_fs("p/z").unwrap();
    let id = pool.lookup("p/z").unwrap();
    let obj = zap::create(&mut pool.dmu(id).unwrap(), 27, 0, 0).unwrap();
    (id, obj)
}

/// Every entry as name → (integer size, values).
fn contents(
    pool: &mut Pool,
    id: engine::dsl::DatasetId,
    obj: u64,
) -> BTreeMap<Vec<u8>, (u8, Vec<u64>)> {
    zap::read(&mut pool.dmu(id).unwrap(), obj)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.name, (e.integer_size, e.values)))
        .collect()
}

fn kind(pool: &mut Pool, id: engine::dsl::DatasetId, obj: u64) -> ZapKind {
    zap::read(&mut pool.dmu(id).unwrap(), obj).unwrap().kind
}

fn name(i: usize, len: usize) -> Vec<u8> {
    let mut n = format!("e{i}-").into_bytes();
    while n.len() < len {
        n.push(b'a' + (n.len() % 26) as u8);
    }
    n
}

#[test]
fn a_microzap_grows_a_block_at_a_time_and_keeps_its_entries() {
    let mut pool = pool();
    let (id, obj) = new_zap(&mut pool);
    let mut want = BTreeMap::new();
    for i in 0..40 {
        let n = name(i, 10);
        zap::add_u64(&mut pool.dmu(id).unwrap(), obj, &n, i as u64 * 3).unwrap();
        want.insert(n, (8, vec![i as u64 * 3]));
    }
    assert_eq!(kind(&mut pool, id, obj), ZapKind::Micro);
    // 40 entries of 64 bytes after a 64-byte header: 41 slots, 2624 bytes.
    let info = pool.dmu(id).unwrap().object_info(obj).unwrap();
    assert_eq!(info.datablksz, 2624_u32.div_ceil(512) * 512);
    assert_eq!(contents(&mut pool, id, obj), want);
    for i in (0..40).step_by(3) {
        zap::remove(&mut pool.dmu(id).unwrap(), obj, &name(i, 10)).unwrap();
        want.remove(&name(i, 10));
    }
    assert_eq!(contents(&mut pool, id, obj), want);
    let mut dmu = pool.dmu(id).unwrap();
    let e = zap::add_u64(&mut dmu, obj, &name(1, 10), 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EEXIST);
    let e = zap::remove(&mut dmu, obj, b"nope").unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
    assert_eq!(zap::lookup_u64(&mut dmu, obj, &name(2, 10)).unwrap(), 6);
}

#[test]
fn a_long_name_or_a_wide_value_upgrades_to_a_fat_zap_keeping_every_entry() {
    for wide in [false, true] {
        let mut pool = pool();
        let (id, obj) = new_zap(&mut pool);
        let mut want = BTreeMap::new();
        for i in 0..12 {
            zap::add_u64(&mut pool.dmu(id).unwrap(), obj, &name(i, 20), i as u64).unwrap();
            want.insert(name(i, 20), (8, vec![i as u64]));
        }
        let mut dmu = pool.dmu(id).unwrap();
        if wide {
            zap::add(&mut dmu, obj, b"wide", 2, &[1, 2, 0xffff]).unwrap();
            want.insert(b"wide".to_vec(), (2, vec![1, 2, 0xffff]));
        } else {
            let long = name(99, 200);
            zap::add_u64(&mut dmu, obj, &long, 7).unwrap();
            want.insert(long, (8, vec![7]));
        }
        assert_eq!(kind(&mut pool, id, obj), ZapKind::Fat);
        let info = pool.dmu(id).unwrap().object_info(obj).unwrap();
        assert_eq!(info.datablksz, 16 << 10);
        assert_eq!(contents(&mut pool, id, obj), want);
    }
}

#[test]
fn a_full_128k_microzap_upgrades() {
    let mut pool = pool();
    let (id, obj) = new_zap(&mut pool);
    // 128 KiB holds 2047 entries after its header.
    for i in 0..2047 {
        zap::add_u64(&mut pool.dmu(id).unwrap(), obj, &name(i, 8), i as u64).unwrap();
    }
    assert_eq!(kind(&mut pool, id, obj), ZapKind::Micro);
    assert_eq!(
        pool.dmu(id).unwrap().object_info(obj).unwrap().datablksz,
        128 << 10
    );
    zap::add_u64(&mut pool.dmu(id).unwrap(), obj, b"one-more", 1).unwrap();
    assert_eq!(kind(&mut pool, id, obj), ZapKind::Fat);
    let got = contents(&mut pool, id, obj);
    assert_eq!(got.len(), 2048);
    assert_eq!(got[&name(2000, 8)], (8, vec![2000]));
}

#[test]
fn a_fat_zap_splits_leaves_and_outgrows_its_embedded_pointer_table() {
    let mut pool = pool();
    let (id, obj) = new_zap(&mut pool);
    // 512-byte blocks: an embedded table of 32 pointers, 18 chunks a leaf,
    // so a few hundred entries need an external table that doubles twice.
    zap::upgrade(&mut pool.dmu(id).unwrap(), obj, 9).unwrap();
    let mut want = BTreeMap::new();
    for i in 0..600 {
        let n = name(i, 6 + i % 30);
        let values: Vec<u64> = (0..1 + i % 3).map(|v| (i * 10 + v) as u64).collect();
        zap::add(&mut pool.dmu(id).unwrap(), obj, &n, 8, &values).unwrap();
        want.insert(n, (8, values));
    }
    assert_eq!(contents(&mut pool, id, obj), want);
    let mut dmu = pool.dmu(id).unwrap();
    let block0 = dmu.read(obj, 0, 512).unwrap();
    let word = |at: usize| u64::from_le_bytes(block0[at..at + 8].try_into().unwrap());
    let (zt_numblks, zt_shift) = (word(24), word(32));
    assert!(
        zt_numblks >= 2,
        "the table left block 0 and doubled: {zt_numblks}"
    );
    assert_eq!(zt_numblks, 1 << (zt_shift - 6));
    for i in (0..600).step_by(2) {
        let n = name(i, 6 + i % 30);
        zap::remove(&mut dmu, obj, &n).unwrap();
        want.remove(&n);
    }
    for i in 600..700 {
        let n = name(i, 40);
        zap::add_u64(&mut dmu, obj, &n, i as u64).unwrap();
        want.insert(n, (8, vec![i as u64]));
    }
    assert_eq!(contents(&mut pool, id, obj), want);
    // And it survives a txg sync and an export/import.
    pool.txg_sync().unwrap();
    let dev = pool.export().unwrap().remove(0);
    let mut pool = Pool::import(
        dev,
        Box::new(ManualClock::new(1_800_000_100)),
        Box::new(SplitMix64::new(4)),
    )
    .unwrap();
    let id = pool.lookup("p/z").unwrap();
    assert_eq!(contents(&mut pool, id, obj), want);
}

#[test]
fn many_entries_split_16k_leaves() {
    let mut pool = pool();
    let (id, obj) = new_zap(&mut pool);
    let mut want = BTreeMap::new();
    for i in 0..1500 {
        let n = name(i, 60);
        zap::add_u64(&mut pool.dmu(id).unwrap(), obj, &n, i as u64).unwrap();
        want.insert(n, (8, vec![i as u64]));
    }
    assert_eq!(contents(&mut pool, id, obj), want);
    let info = pool.dmu(id).unwrap().object_info(obj).unwrap();
    assert!(info.maxblkid >= 8, "several leaves: {}", info.maxblkid);
}

#[test]
fn names_are_hashed_as_a_real_zfs_hashed_them() {
    let mut pool = new_pool();
    let snap = receive_plan(&mut pool, "small_full")[0];
    let mut dmu = pool.dmu(snap).unwrap();
    // small_full's `longnames` directory, the fixtures' one fat ZAP.
    let (obj, bs) = (34, 16 << 10);
    let salt = zap::read(&mut dmu, obj).unwrap().salt;
    let leaf = dmu.read(obj, bs, bs).unwrap();
    let u16_at = |at: usize| u16::from_le_bytes([leaf[at], leaf[at + 1]]);
    let chunk = |i: usize| 48 + 2 * 512 + 24 * i;
    let mut seen = 0;
    for i in 0..(bs as usize - 1024) / 24 - 2 {
        let c = chunk(i);
        if leaf[c] != 252 {
            continue;
        }
        let hash = u64::from_le_bytes(leaf[c + 16..c + 24].try_into().unwrap());
        let (mut idx, len) = (u16_at(c + 4), usize::from(u16_at(c + 6)));
        let mut name = Vec::new();
        while name.len() < len {
            let a = chunk(usize::from(idx));
            name.extend_from_slice(&leaf[a + 1..a + 1 + (len - name.len()).min(21)]);
            idx = u16_at(a + 22);
        }
        name.pop();
        assert_eq!(
            zap::zap_hash(salt, 0, &name),
            hash,
            "{}",
            String::from_utf8_lossy(&name)
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
}
