//! Crash consistency: power lost at any point of a txg sync (before the
//! blocks, between blocks and uberblock, in the middle of the uberblock
//! write), with unflushed writes lost, kept, kept in part or torn. After
//! import the pool is the last synced txg or the one being synced, never a
//! mix; the check finds nothing; no committed data is lost.

use std::collections::BTreeMap;

use engine::check::check;
use engine::context::{ManualClock, SplitMix64};
use engine::error::Result;
use engine::spa::Pool;
use engine::vdev::{BlockDevice, CrashDevice, CrashMode, SharedDevice};

const MODES: [CrashMode; 4] = [
    CrashMode::LoseAll,
    CrashMode::KeepSome,
    CrashMode::TornLast,
    CrashMode::KeepAll,
];

/// A [`CrashDevice`] whose power fails right after the n-th further
/// write: how these tests aim a crash at every write of a sync. Choosing
/// when to crash is the test's decision, so the countdown lives here, not
/// in the device.
#[derive(Debug)]
struct PowerCut {
    dev: CrashDevice,
    armed: Option<(u64, CrashMode, u64)>,
}

impl PowerCut {
    fn new(size: u64, sector_size: u64) -> PowerCut {
        PowerCut {
            dev: CrashDevice::new(size, sector_size),
            armed: None,
        }
    }

    /// The power fails right after `n` further successful writes (at once
    /// for 0), the cache resolved as `mode` and `seed` say.
    fn crash_after_writes(&mut self, n: u64, mode: CrashMode, seed: u64) {
        self.armed = Some((n, mode, seed));
        if n == 0 {
            self.strike();
        }
    }

    fn disarm(&mut self) {
        self.armed = None;
    }

    fn strike(&mut self) {
        if let Some((_, mode, seed)) = self.armed.take() {
            self.dev.power_loss(mode, seed);
        }
    }
}

impl std::ops::Deref for PowerCut {
    type Target = CrashDevice;
    fn deref(&self) -> &CrashDevice {
        &self.dev
    }
}

impl std::ops::DerefMut for PowerCut {
    fn deref_mut(&mut self) -> &mut CrashDevice {
        &mut self.dev
    }
}

impl BlockDevice for PowerCut {
    fn sector_size(&self) -> u64 {
        self.dev.sector_size()
    }
    fn size(&self) -> u64 {
        self.dev.size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.dev.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.dev.write(offset, buf)?;
        if let Some((n, ..)) = &mut self.armed {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.strike();
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        self.dev.flush()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

fn pool_on(disk: &SharedDevice<PowerCut>) -> Pool {
    Pool::create(
        Box::new(disk.clone()),
        "tank",
        Box::new(ManualClock::new(1_000)),
        Box::new(SplitMix64::new(7)),
    )
    .unwrap()
}

fn import(dev: PowerCut) -> engine::Result<Pool> {
    Pool::import(
        Box::new(dev.dev),
        Box::new(ManualClock::new(2_000)),
        Box::new(SplitMix64::new(8)),
    )
}

/// Every dataset with every object's bonus and contents.
type State = BTreeMap<String, BTreeMap<u64, (Vec<u8>, Vec<u8>)>>;

fn state(pool: &mut Pool) -> State {
    let mut out = State::new();
    for ds in pool.list() {
        let mut dmu = pool.dmu(ds.id).unwrap();
        let mut objects = BTreeMap::new();
        for object in dmu.objects() {
            let info = dmu.object_info(object).unwrap();
            let len = (info.maxblkid + 1) * u64::from(info.datablksz);
            objects.insert(
                object,
                (
                    dmu.bonus(object).unwrap(),
                    dmu.read(object, 0, len).unwrap(),
                ),
            );
        }
        out.insert(ds.name, objects);
    }
    out
}

fn assert_clean(pool: &mut Pool, what: &str) {
    let report = check(pool).unwrap();
    assert!(report.is_clean(), "{what}: {report}");
}

/// Builds a pool with one synced txg of data, then makes the changes of
/// the next txg (new data, a freed range, a new object and a snapshot
/// taken in syncing context); returns the pool ready to sync them.
fn prepare(disk: &SharedDevice<PowerCut>) -> (Pool, State) {
    let mut pool = pool_on(disk);
    let fs = pool.create_fs("tank/a").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let obj = dmu.object_alloc(19, 131072, 17, 64).unwrap();
    dmu.write(obj, 0, &pattern(300_000, 1)).unwrap();
    dmu.set_bonus(obj, &[5; 64]).unwrap();
    pool.txg_sync().unwrap();
    let before = state(&mut pool);
    let mut dmu = pool.dmu(fs).unwrap();
    dmu.write(obj, 100_000, &pattern(150_000, 2)).unwrap();
    dmu.free_range(obj, 0, 50_000).unwrap();
    let other = dmu.object_alloc(20, 16384, 0, 0).unwrap();
    dmu.write(other, 0, &pattern(16384, 3)).unwrap();
    (pool, before)
}

#[test]
fn a_crash_at_every_write_of_a_txg_sync_leaves_the_old_or_the_new_txg() {
    for mode in MODES {
        // The state the sync produces when nothing goes wrong.
        let after = {
            let disk = SharedDevice::new(PowerCut::new(64 << 20, 512));
            let (mut pool, _) = prepare(&disk);
            pool.snapshot("tank/a@s").unwrap();
            state(&mut pool)
        };
        let (mut old_seen, mut new_seen) = (0, 0);
        let mut n = 0;
        loop {
            let disk = SharedDevice::new(PowerCut::new(64 << 20, 512));
            let (mut pool, before) = prepare(&disk);
            disk.borrow_mut().crash_after_writes(n, mode, n * 31 + 5);
            let synced = pool.snapshot("tank/a@s");
            drop(pool);
            let mut dev = disk.try_into_inner().unwrap();
            if !dev.is_down() {
                synced.unwrap();
                break;
            }
            assert!(
                synced.is_err(),
                "{mode:?} n={n}: a sync that lost power cannot succeed"
            );
            dev.recover();
            let mut pool = import(dev).unwrap_or_else(|e| panic!("{mode:?} n={n}: import: {e}"));
            let now = state(&mut pool);
            if now == before {
                old_seen += 1;
            } else if now == after {
                new_seen += 1;
            } else {
                panic!("{mode:?}: a crash after {n} writes left a state that is neither txg");
            }
            assert_clean(&mut pool, &format!("{mode:?} n={n}"));
            // The pool goes on working after the crash.
            let fs = pool.lookup("tank/a").unwrap();
            pool.dmu(fs)
                .unwrap()
                .write(1, 0, b"after the crash")
                .unwrap();
            pool.txg_sync().unwrap();
            assert_clean(&mut pool, &format!("{mode:?} n={n}, after more writes"));
            n += 1;
        }
        assert!(n > 10, "{mode:?}: the sync has more than ten writes ({n})");
        assert!(
            old_seen > 0,
            "{mode:?}: some crashes fall back to the old txg"
        );
        if mode == CrashMode::KeepAll {
            assert!(
                new_seen > 0,
                "KeepAll: a crash after the uberblock write keeps the new txg"
            );
        }
    }
}

#[test]
fn a_torn_uberblock_write_falls_back_to_the_previous_uberblock() {
    // Crash on the very last writes of a sync (the uberblock copies) with
    // the last one torn: the newest uberblock that verifies wins.
    let disk = SharedDevice::new(PowerCut::new(64 << 20, 512));
    let (mut pool, _) = prepare(&disk);
    disk.borrow_mut().reset_stats();
    pool.txg_sync().unwrap();
    let writes = disk.borrow().stats().writes;

    for seed in 0..8 {
        let disk = SharedDevice::new(PowerCut::new(64 << 20, 4096));
        let (mut pool, before) = {
            let mut pool = pool_on(&disk);
            let fs = pool.create_fs("tank/a").unwrap();
            let obj = pool.dmu(fs).unwrap().object_alloc(19, 4096, 0, 0).unwrap();
            pool.dmu(fs)
                .unwrap()
                .write(obj, 0, &pattern(4096, 9))
                .unwrap();
            pool.txg_sync().unwrap();
            let before = state(&mut pool);
            pool.dmu(fs)
                .unwrap()
                .write(obj, 0, &pattern(4096, 10))
                .unwrap();
            (pool, before)
        };
        // Writes of a small sync: data, indirects, dnode block, objset, MOS,
        // then four uberblock copies; tear the first copy.
        disk.borrow_mut().reset_stats();
        let total = {
            let probe = SharedDevice::new(PowerCut::new(64 << 20, 4096));
            let mut p = pool_on(&probe);
            let fs = p.create_fs("tank/a").unwrap();
            let obj = p.dmu(fs).unwrap().object_alloc(19, 4096, 0, 0).unwrap();
            p.dmu(fs).unwrap().write(obj, 0, &pattern(4096, 9)).unwrap();
            p.txg_sync().unwrap();
            p.dmu(fs)
                .unwrap()
                .write(obj, 0, &pattern(4096, 10))
                .unwrap();
            probe.borrow_mut().reset_stats();
            p.txg_sync().unwrap();
            probe.borrow().stats().writes
        };
        disk.borrow_mut()
            .crash_after_writes(total - 4, CrashMode::TornLast, seed);
        assert!(pool.txg_sync().is_err());
        drop(pool);
        let mut dev = disk.try_into_inner().unwrap();
        dev.recover();
        let mut pool = import(dev).unwrap();
        assert_eq!(
            state(&mut pool),
            before,
            "seed {seed}: the previous txg is in charge"
        );
        assert_clean(&mut pool, "torn uberblock");
    }
    assert!(writes > 4);
}

/// A small seeded generator for the property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random change to the pool (errors such as ENOENT are expected and
/// ignored: the point is what survives a crash).
fn random_op(pool: &mut Pool, rng: &mut Rng, step: u64) {
    let fss = ["tank/a", "tank/b"];
    let fs_name = fss[rng.below(2) as usize];
    let Ok(fs) = pool.lookup(fs_name) else {
        let _ = pool.create_fs(fs_name);
        return;
    };
    match rng.below(10) {
        0..=3 => {
            let mut dmu = pool.dmu(fs).unwrap();
            let objects = dmu.objects();
            let obj = if objects.is_empty() || rng.below(4) == 0 {
                let blksz = 512 << rng.below(9);
                dmu.object_alloc(19, blksz as u32, 0, 0).unwrap()
            } else {
                objects[rng.below(objects.len() as u64) as usize]
            };
            let blksz = u64::from(dmu.object_info(obj).unwrap().datablksz);
            let offset = rng.below(8) * blksz;
            let len = 1 + rng.below(3 * blksz);
            let _ = dmu.write(obj, offset, &pattern(len as usize, step as u8));
        }
        4 => {
            let mut dmu = pool.dmu(fs).unwrap();
            if let Some(&obj) = dmu.objects().first() {
                let _ = dmu.free_range(obj, rng.below(100_000), rng.below(200_000));
            }
        }
        5 => {
            let mut dmu = pool.dmu(fs).unwrap();
            if let Some(&obj) = dmu.objects().last() {
                let _ = dmu.object_free(obj);
            }
        }
        6 => {
            let _ = pool.snapshot(&format!("{fs_name}@s{step}"));
        }
        7 => {
            let snaps = pool.snapshots_of(fs);
            if let Some(&snap) = snaps.first() {
                let name = pool.dataset_name(snap);
                let _ = pool.destroy(&name);
            }
        }
        8 => {
            let snaps = pool.snapshots_of(fs);
            if let Some(&snap) = snaps.last() {
                let name = pool.dataset_name(snap);
                let _ = pool.clone_fs(&name, &format!("tank/c{step}"));
            }
        }
        _ => {
            let _ = pool.rollback(fs_name);
        }
    }
}

#[test]
fn random_operations_with_crashes_keep_every_synced_txg() {
    let mut crashes = 0;
    for seed in 0..20u64 {
        let mut rng = Rng(seed);
        let mut disk = SharedDevice::new(PowerCut::new(64 << 20, 512));
        let mut pool = pool_on(&disk);
        pool.create_fs("tank/a").unwrap();
        let mut synced = state(&mut pool);
        for step in 0..50 {
            let txg = pool.synced_txg();
            random_op(&mut pool, &mut rng, step);
            if std::env::var_os("ZSIM_DEBUG_CHECK").is_some() {
                pool.txg_sync().unwrap();
                let report = check(&mut pool).unwrap();
                assert!(
                    report.is_clean(),
                    "seed {seed} step {step} (no crash yet): {report}"
                );
            }
            // Operations that sync on their own (snapshot, destroy, ...)
            // leave nothing pending; others leave dirty data.
            if pool.synced_txg() != txg {
                synced = state(&mut pool);
            }
            if rng.below(3) != 0 {
                continue;
            }
            let pending = state(&mut pool);
            let mode = MODES[rng.below(4) as usize];
            disk.borrow_mut()
                .crash_after_writes(rng.below(40), mode, rng.next());
            let result = pool.txg_sync();
            if !disk.borrow().is_down() {
                result.unwrap();
                disk.borrow_mut().disarm();
                synced = state(&mut pool);
                continue;
            }
            crashes += 1;
            drop(pool);
            let mut dev = disk.try_into_inner().unwrap();
            dev.recover();
            disk = SharedDevice::new(dev);
            pool = Pool::import(
                Box::new(disk.clone()),
                Box::new(ManualClock::new(3_000 + step)),
                Box::new(SplitMix64::new(seed * 100 + step)),
            )
            .unwrap_or_else(|e| panic!("seed {seed} step {step}: import: {e}"));
            let now = state(&mut pool);
            assert!(
                now == synced || now == pending,
                "seed {seed} step {step}: after the crash the pool is neither the last synced txg nor the next"
            );
            assert_clean(&mut pool, &format!("seed {seed} step {step}"));
            synced = now;
        }
        pool.txg_sync().unwrap();
        assert_clean(&mut pool, &format!("seed {seed} at the end"));
    }
    assert!(
        crashes > 10,
        "the property test crashed only {crashes} times"
    );
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/zfs-fuse/{name}.zsend",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn a_crash_during_a_receive_leaves_no_trace_after_import() {
    use engine::recv::RecvOptions;
    use engine::send::NoInterrupt;

    let base = fixture("chain_c1_full");
    let incr = fixture("chain_c1_c2_i");
    let mut outcomes = BTreeMap::new();
    for (what, first, stream, target) in [
        ("a new filesystem", None, &base, "tank/new"),
        (
            "an incremental onto an existing one",
            Some(&base),
            &incr,
            "tank/chain",
        ),
    ] {
        let mut n = 0;
        loop {
            let disk = SharedDevice::new(PowerCut::new(64 << 20, 512));
            let mut pool = pool_on(&disk);
            if let Some(first) = first {
                pool.receive(
                    "tank/chain",
                    &first[..],
                    &RecvOptions::default(),
                    &mut NoInterrupt,
                )
                .unwrap();
            }
            let before = state(&mut pool);
            disk.borrow_mut()
                .crash_after_writes(n, CrashMode::KeepSome, n);
            let result = pool.receive(
                target,
                &stream[..],
                &RecvOptions::default(),
                &mut NoInterrupt,
            );
            drop(pool);
            let mut dev = disk.try_into_inner().unwrap();
            if !dev.is_down() {
                result.unwrap();
                break;
            }
            assert!(result.is_err());
            dev.recover();
            let mut pool = import(dev).unwrap_or_else(|e| panic!("{what} n={n}: import: {e}"));
            let names: Vec<String> = pool.list().into_iter().map(|d| d.name).collect();
            assert!(
                !names.iter().any(|n| n.contains("%recv")),
                "{what} n={n}: {names:?}"
            );
            assert!(
                pool.list().iter().all(|d| d.flags & 1 == 0),
                "{what} n={n}: INCONSISTENT left"
            );
            let now = state(&mut pool);
            // Either nothing happened, or the receive had completed.
            let done = now
                .keys()
                .any(|k| k.ends_with("@c1") && k.starts_with(target))
                && now
                    .keys()
                    .any(|k| k.starts_with(target) && (k.ends_with("@c2") || first.is_none()));
            assert!(
                now == before || done,
                "{what} n={n}: a partial receive is visible"
            );
            *outcomes.entry((what, now == before)).or_insert(0) += 1;
            assert_clean(&mut pool, &format!("{what} n={n}"));
            n += 1;
        }
        assert!(n > 5, "{what}: {n} crash points");
    }
    assert!(outcomes.keys().any(|(_, untouched)| *untouched));
}

/// A device that fails its n-th write with EIO (a media error, not a crash).
struct FailingDevice {
    inner: SharedDevice<PowerCut>,
    countdown: std::rc::Rc<std::cell::Cell<Option<u64>>>,
}

impl engine::vdev::BlockDevice for FailingDevice {
    fn sector_size(&self) -> u64 {
        self.inner.sector_size()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> engine::Result<()> {
        self.inner.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> engine::Result<()> {
        match self.countdown.get() {
            Some(0) => {
                self.countdown.set(None);
                Err(engine::Error::new(
                    engine::Errno::EIO,
                    "injected write error",
                ))
            }
            Some(n) => {
                self.countdown.set(Some(n - 1));
                self.inner.write(offset, buf)
            }
            None => self.inner.write(offset, buf),
        }
    }
    fn flush(&mut self) -> engine::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn eio_from_the_device_during_a_receive_leaves_the_target_as_before_after_import() {
    use engine::recv::RecvOptions;
    use engine::send::NoInterrupt;

    let base = fixture("chain_c1_full");
    let incr = fixture("chain_c1_c2_i");
    let mut failed = 0;
    for n in 0..200 {
        let disk = SharedDevice::new(PowerCut::new(64 << 20, 512));
        let countdown = std::rc::Rc::new(std::cell::Cell::new(None));
        let dev = FailingDevice {
            inner: disk.clone(),
            countdown: countdown.clone(),
        };
        let mut pool = Pool::create(
            Box::new(dev),
            "tank",
            Box::new(ManualClock::new(1_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        pool.receive(
            "tank/chain",
            &base[..],
            &RecvOptions::default(),
            &mut NoInterrupt,
        )
        .unwrap();
        let before = state(&mut pool);
        countdown.set(Some(n));
        let result = pool.receive(
            "tank/chain",
            &incr[..],
            &RecvOptions::default(),
            &mut NoInterrupt,
        );
        if result.is_ok() {
            assert!(
                countdown.get().is_some(),
                "n={n}: a failed write went unnoticed"
            );
            break;
        }
        failed += 1;
        assert_eq!(result.unwrap_err().errno(), engine::Errno::EIO, "n={n}");
        drop(pool);
        let mut pool = import(disk.try_into_inner().unwrap()).unwrap();
        let now = state(&mut pool);
        assert!(!now.keys().any(|k| k.contains("%recv")), "n={n}");
        // A write error on one uberblock copy can still leave the new txg on
        // the others: then the receive is complete. Never anything between.
        let complete = now.contains_key("tank/chain@c2") && !now.keys().any(|k| k.contains('%'));
        assert!(now == before || complete, "n={n}: the target changed");
        assert_clean(&mut pool, &format!("EIO at write {n}"));
    }
    assert!(failed > 3, "only {failed} receives saw the error");
}
