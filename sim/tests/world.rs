//! The simulated world's disk, pipe and transfer under each fault kind:
//! every fault fires, lands in the trace, and the engine handles it (an
//! error, a fallback to the previous txg, a refused stream), never wrong
//! data or a panic. And a seed replays to the same trace.
#![cfg(madsim)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use engine::Errno;
use engine::check::check;
use engine::dsl::DS_FLAG_INCONSISTENT;
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::ByteOrder;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::world::clock::SimClock;
use sim::world::disk::SimDisk;
use sim::world::faults::{FaultKind, FaultSpec};
use sim::world::injector::Injector;
use sim::world::options::WorldOptions;
use sim::world::pipe::Damage;
use sim::world::streams::{ChaChaSource, Streams};
use sim::world::trace::Trace;
use sim::world::transfer::{
    Side, TransferFaults, TransferOutcome, TransferSpec, transfer, transfer_with,
};

const DISK: u64 = 32 << 20;
const SS: u64 = 512;

fn run<T>(seed: u64, f: impl Future<Output = T>) -> T {
    madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(f)
}

/// One run's streams and injector; made inside the runtime.
struct World {
    streams: Streams,
    options: WorldOptions,
    inj: Injector,
}

fn world(seed: u64, faults: &str) -> World {
    let streams = Streams::new(seed);
    let plan = faults.parse::<FaultSpec>().unwrap().resolve(&streams);
    let mut options = WorldOptions::from_plan(&plan);
    options.disk.size_bytes = DISK;
    options.disk.sector_size_bytes = SS;
    let inj = Injector::new(&streams, Trace::new(false), SimClock::current());
    World {
        streams,
        options,
        inj,
    }
}

impl World {
    fn disk(&self, name: &str) -> SimDisk {
        SimDisk::new(&self.options.disk, name, &self.inj)
    }

    /// A new pool, with no fault firing while it is made.
    fn create(&self, disk: &SimDisk, name: &str) -> Pool {
        self.inj
            .suspended(|| {
                Pool::create(
                    Box::new(disk.clone()),
                    name,
                    Box::new(self.inj.clock().clone()),
                    Box::new(ChaChaSource(self.streams.stream(&format!("guid:{name}")))),
                )
            })
            .unwrap()
    }

    /// Imports what is on the disk, with faults as they are.
    fn import(&self, disk: &SimDisk) -> engine::Result<Pool> {
        Pool::import(
            Box::new(disk.clone()),
            Box::new(self.inj.clock().clone()),
            Box::new(ChaChaSource(self.streams.stream("guid:import"))),
        )
    }

    /// Imports with no fault firing (the oracle's view).
    fn import_clean(&self, disk: &SimDisk) -> engine::Result<Pool> {
        self.inj.suspended(|| self.import(disk))
    }
}

/// Incompressible bytes, from a seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// Contents that say what they should be: 8 bytes of seed, then its noise.
fn tagged(len: usize, seed: u64) -> Vec<u8> {
    let mut out = seed.to_le_bytes().to_vec();
    out.extend(noise(len - 8, seed));
    out
}

fn is_tagged(data: &[u8]) -> bool {
    data.len() >= 8 && {
        let seed = u64::from_le_bytes(data[..8].try_into().unwrap());
        data[8..] == noise(data.len() - 8, seed)[..]
    }
}

/// Every dataset with every object's bonus and contents.
type State = BTreeMap<String, BTreeMap<u64, (Vec<u8>, Vec<u8>)>>;

fn state(pool: &mut Pool) -> State {
    let mut out = State::new();
    for ds in pool.list() {
        out.insert(ds.name.clone(), objects(pool, &ds.name));
    }
    out
}

fn objects(pool: &mut Pool, name: &str) -> BTreeMap<u64, (Vec<u8>, Vec<u8>)> {
    let id = pool.lookup(name).unwrap();
    let mut dmu = pool.dmu(id).unwrap();
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
    objects
}

fn assert_clean(pool: &mut Pool, what: &str) {
    let report = check(pool).unwrap();
    assert!(report.is_clean(), "{what}: {report}");
}

/// No half-received dataset anywhere.
fn assert_no_partial_receive(pool: &Pool, what: &str) {
    for d in pool.list() {
        assert!(!d.name.contains('%'), "{what}: {} left", d.name);
        assert_eq!(
            d.flags & DS_FLAG_INCONSISTENT,
            0,
            "{what}: {} is inconsistent",
            d.name
        );
    }
}

fn is_corruption(e: &engine::Error) -> bool {
    matches!(e.errno(), Errno::EIO | Errno::ECKSUM)
}

/// A pool with tank/a: one synced txg with an object of `blocks` 128 KiB
/// blocks; then the changes of the next txg, left to sync.
fn stage(w: &World, disk: &SimDisk, blocks: usize) -> (Pool, State) {
    let mut pool = w.create(disk, "tank");
    let fs = pool.create_fs("tank/a").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let obj = dmu.object_alloc(19, 128 << 10, 0, 0).unwrap();
    dmu.write(obj, 0, &noise(blocks * (128 << 10), 1)).unwrap();
    pool.txg_sync().unwrap();
    let before = state(&mut pool);
    let mut dmu = pool.dmu(fs).unwrap();
    dmu.write(obj, 0, &noise(blocks * (128 << 10), 2)).unwrap();
    let other = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    dmu.write(other, 0, &noise(4096, 3)).unwrap();
    (pool, before)
}

/// Writes of the sync `stage` leaves, counted on a disk of its own.
fn sync_writes(w: &World, blocks: usize) -> u64 {
    let probe = w.disk("probe");
    let (mut pool, _) = stage(w, &probe, blocks);
    let start = probe.stats().writes;
    pool.txg_sync().unwrap();
    probe.stats().writes - start
}

#[test]
fn a_torn_uberblock_write_falls_back_to_the_previous_uberblock() {
    let mut torn = 0;
    for seed in 0..8 {
        run(seed, async {
            let w = world(seed, "none");
            let writes = sync_writes(&w, 1);
            let disk = w.disk("src");
            let (mut pool, before) = stage(&w, &disk, 1);
            let old = pool.synced_txg();
            // The four uberblock copies are the last writes of a sync, after
            // a flush: tear the first (1 KiB slots of two 512-byte sectors).
            assert!(disk.arm_crash_after(FaultKind::Torn, writes - 3));
            assert_eq!(pool.txg_sync().unwrap_err().errno(), Errno::EIO);
            drop(pool);
            assert!(disk.is_down());
            let outcome = disk.with_device(|d| d.last_crash()).unwrap();
            assert_eq!(outcome.pending_writes, 1, "only the uberblock is unflushed");
            assert_eq!(outcome.sectors_kept + outcome.sectors_lost, 2);
            assert_eq!(w.inj.counts().get(FaultKind::Torn), 1);
            assert!(w.inj.trace().lines()[0].contains("TornLast"));
            disk.power_on();
            let mut pool = w.import_clean(&disk).unwrap();
            if outcome.sectors_kept == 2 {
                assert_eq!(pool.synced_txg(), old + 1, "seed {seed}: kept whole");
            } else {
                torn += 1;
                assert_eq!(pool.synced_txg(), old, "seed {seed}: the previous txg");
                assert_eq!(state(&mut pool), before, "seed {seed}");
            }
            assert_clean(&mut pool, &format!("seed {seed}"));
        });
    }
    assert!(torn > 0, "some seed tore the uberblock");
}

/// A write a pulled disk missed keeps counting as missed until a later
/// write there is flushed; a power loss before that flush forgets the
/// rewrite (it may be lost with the rest of the cache).
#[test]
fn a_missed_write_counts_until_a_rewrite_of_it_is_flushed() {
    use engine::vdev::BlockDevice;
    run(1, async {
        let w = world(1, "none");
        let disk = w.disk("src");
        let mut dev = disk.clone();
        let block = vec![7u8; 1024];
        disk.pull();
        assert_eq!(dev.write(8192, &block).unwrap_err().errno(), Errno::ENXIO);
        disk.replug();
        assert!(disk.missed_write(8192, 512) && disk.missed_any_write());
        dev.write(8192, &block).unwrap();
        assert!(disk.missed_write(8192, 1024), "not flushed yet");
        disk.crash_now(FaultKind::Crash);
        disk.power_on();
        dev.write(8192, &block[..512]).unwrap();
        dev.flush().unwrap();
        assert!(
            disk.missed_write(8192, 1024),
            "a rewrite of half the miss leaves it"
        );
        dev.write(8192, &block).unwrap();
        dev.flush().unwrap();
        assert!(!disk.missed_write(8192, 1024) && !disk.missed_any_write());
    })
}

#[test]
fn a_torn_data_block_of_an_unfinished_txg_is_never_referenced() {
    run(1, async {
        let w = world(1, "none");
        let writes = sync_writes(&w, 3);
        let mut lost = 0;
        // The first writes of the sync are the new 128 KiB data blocks
        // (256 sectors each); tear each in turn.
        for n in 1..=4.min(writes - 5) {
            let disk = w.disk("src");
            let (mut pool, before) = stage(&w, &disk, 3);
            let old = pool.synced_txg();
            assert!(disk.arm_crash_after(FaultKind::Torn, n));
            assert!(pool.txg_sync().is_err());
            drop(pool);
            let outcome = disk.with_device(|d| d.last_crash()).unwrap();
            assert_eq!(outcome.pending_writes, n);
            lost += outcome.sectors_lost;
            disk.power_on();
            let mut pool = w.import_clean(&disk).unwrap();
            assert_eq!(pool.synced_txg(), old);
            assert_eq!(state(&mut pool), before, "torn at write {n}");
            assert_clean(&mut pool, &format!("torn at write {n}"));
        }
        assert!(lost > 0, "some data write was torn");
    });
}

#[test]
fn rot_at_rest_reads_as_a_checksum_error_never_as_wrong_data() {
    let mut caught = 0;
    for seed in 0..6 {
        run(seed, async {
            let w = world(seed, "corrupt:1");
            let disk = w.disk("src");
            let mut pool = w.create(&disk, "tank");
            let fs = pool.create_fs("tank/a").unwrap();
            let mut dmu = pool.dmu(fs).unwrap();
            for i in 0..6 {
                let obj = dmu.object_alloc(19, 128 << 10, 0, 0).unwrap();
                dmu.write(obj, 0, &tagged(256 << 10, 100 + i)).unwrap();
            }
            pool.txg_sync().unwrap();
            let txg = pool.synced_txg();
            drop(pool);
            let rotted = (0..8).filter_map(|_| disk.rot()).count() as u64;
            assert_eq!(w.inj.counts().get(FaultKind::Corrupt), rotted);
            assert!(rotted > 0);
            let mut pool = match w.import(&disk) {
                Ok(pool) => pool,
                Err(e) => {
                    assert!(is_corruption(&e), "seed {seed}: import: {e}");
                    caught += 1;
                    return;
                }
            };
            // A tree the rot made unreadable sends import back to an older
            // txg: caught too.
            let fell_back = pool.synced_txg() < txg;
            let errors = read_all(&mut pool, 256 << 10, &format!("seed {seed}"));
            let report = check(&mut pool).unwrap();
            assert!(errors == 0 || !report.unreadable.is_empty(), "{report}");
            if fell_back || !report.unreadable.is_empty() {
                caught += 1;
            }
        });
    }
    assert!(caught > 0, "some rot hit live data and was caught");
}

/// Opens `tank/a` and runs one step of a workload: a new object of tagged
/// contents, then a sync. Any error is returned as is.
fn workload_step(pool: &mut Pool, step: u64) -> engine::Result<()> {
    let fs = pool.lookup("tank/a")?;
    let mut dmu = pool.dmu(fs)?;
    let obj = dmu.object_alloc(19, 16 << 10, 0, 0)?;
    dmu.write(obj, 0, &tagged(40 << 10, step))?;
    pool.txg_sync()
}

/// Reads every object of `tank/a` (`len` bytes each): each is its tagged
/// contents or an error of corruption. Returns the errors seen.
fn read_all(pool: &mut Pool, len: u64, what: &str) -> u64 {
    let mut errors = 0;
    let fs = match pool.lookup("tank/a") {
        Ok(fs) => fs,
        Err(e) => panic!("{what}: {e}"),
    };
    let objects = match pool.dmu(fs) {
        Ok(dmu) => dmu.objects(),
        Err(e) => {
            assert!(is_corruption(&e), "{what}: {e}");
            return 1;
        }
    };
    for obj in objects {
        let result = pool.dmu(fs).and_then(|mut dmu| dmu.read(obj, 0, len));
        match result {
            Ok(data) => assert!(is_tagged(&data), "{what}: object {obj} is wrong"),
            Err(e) => {
                assert!(is_corruption(&e), "{what}: {e}");
                errors += 1;
            }
        }
    }
    errors
}

#[test]
fn eio_at_high_rates_gives_eio_never_wrong_data() {
    run(7, async {
        let w = world(7, "eio-read:0.03,eio-write:0.03");
        let disk = w.disk("src");
        let mut pool = w.create(&disk, "tank");
        w.inj.suspended(|| pool.create_fs("tank/a")).unwrap();
        let (mut failures, mut synced) = (0, 0);
        for step in 0..40 {
            match workload_step(&mut pool, step) {
                Ok(()) => synced += 1,
                Err(e) => {
                    assert_eq!(e.errno(), Errno::EIO, "step {step}: {e}");
                    failures += 1;
                    // Whatever was dirty is gone; the disk has the last
                    // synced txg (or the one that failed, if its uberblock
                    // made it to some label).
                    drop(pool);
                    pool = w.import_clean(&disk).unwrap();
                }
            }
        }
        let read_errors: u64 = (0..5)
            .map(|_| read_all(&mut pool, 40 << 10, "under EIO"))
            .sum();
        drop(pool);
        let mut pool = w.import_clean(&disk).unwrap();
        assert_eq!(
            w.inj.suspended(|| read_all(&mut pool, 40 << 10, "clean")),
            0
        );
        w.inj.suspended(|| assert_clean(&mut pool, "after EIO"));
        let counts = w.inj.counts();
        assert!(counts.get(FaultKind::EioRead) > 0 && counts.get(FaultKind::EioWrite) > 0);
        assert!(
            failures > 3 && synced > 3,
            "{failures} failed, {synced} synced"
        );
        assert!(read_errors > 0, "some read failed");
    });
}

#[test]
fn misdirected_writes_are_caught_by_checksums() {
    let mut caught = 0;
    for seed in 0..6 {
        run(seed, async {
            let w = world(seed, "misdirect:0.08");
            let disk = w.disk("src");
            let mut pool = w.create(&disk, "tank");
            w.inj.suspended(|| pool.create_fs("tank/a")).unwrap();
            for step in 0..8 {
                // A misdirected write reports success: nothing fails here,
                // unless a misdirected block is read back while syncing.
                if let Err(e) = workload_step(&mut pool, step) {
                    assert!(is_corruption(&e), "seed {seed} step {step}: {e}");
                    break;
                }
            }
            drop(pool);
            assert!(w.inj.counts().get(FaultKind::Misdirect) > 0);
            let mut pool = match w.import_clean(&disk) {
                Ok(pool) => pool,
                Err(e) => {
                    assert!(is_corruption(&e), "seed {seed}: import: {e}");
                    caught += 1;
                    return;
                }
            };
            let errors = w
                .inj
                .suspended(|| read_all(&mut pool, 40 << 10, &format!("seed {seed}")));
            let report = w.inj.suspended(|| check(&mut pool)).unwrap();
            assert!(errors == 0 || !report.unreadable.is_empty());
            if !report.unreadable.is_empty() {
                caught += 1;
            }
        });
    }
    assert!(caught > 0, "some misdirected write was caught");
}

#[test]
fn a_crash_at_a_drawn_write_leaves_a_synced_txg() {
    let mut crashed = 0;
    for seed in 0..6 {
        run(seed, async {
            let w = world(seed, "crash:1");
            let disk = w.disk("src");
            let (mut pool, before) = stage(&w, &disk, 2);
            let after = w.inj.suspended(|| {
                let probe = w.disk("probe");
                let (mut p, _) = stage(&w, &probe, 2);
                p.txg_sync().unwrap();
                state(&mut p)
            });
            let n = disk.arm_crash(FaultKind::Crash).unwrap();
            let synced = pool.txg_sync();
            if !disk.is_down() {
                synced.unwrap();
                assert_eq!(w.inj.counts().get(FaultKind::Crash), 0, "n = {n}");
                return;
            }
            crashed += 1;
            assert!(synced.is_err());
            drop(pool);
            assert_eq!(w.inj.counts().get(FaultKind::Crash), 1);
            disk.power_on();
            let mut pool = w.import_clean(&disk).unwrap();
            let now = state(&mut pool);
            assert!(now == before || now == after, "seed {seed}: n = {n}");
            assert_clean(&mut pool, &format!("seed {seed}"));
            // Power lost at once, with nothing pending: no change at all.
            pool.txg_sync().unwrap();
            let synced = state(&mut pool);
            drop(pool);
            disk.crash_now(FaultKind::Crash).unwrap();
            disk.power_on();
            let mut pool = w.import_clean(&disk).unwrap();
            assert_eq!(state(&mut pool), synced);
            assert_eq!(w.inj.counts().get(FaultKind::Crash), 2);
        });
    }
    assert!(crashed > 2, "{crashed} runs crashed");
}

// Transfers.

type Shared = Rc<RefCell<Pool>>;

fn shared(pool: Pool) -> Shared {
    Rc::new(RefCell::new(pool))
}

/// tank/a with files at @s1, changed (data rewritten, an object freed,
/// one added) at @s2.
fn source(w: &World) -> Shared {
    let disk = w.disk("src");
    let mut pool = w.create(&disk, "tank");
    w.inj.suspended(|| {
        let fs = pool.create_fs("tank/a").unwrap();
        let mut dmu = pool.dmu(fs).unwrap();
        for i in 0..5 {
            let obj = dmu.object_alloc(19, 16 << 10, 17, 16).unwrap();
            dmu.write(obj, 0, &noise(30_000 + 7_000 * i, i as u64))
                .unwrap();
            dmu.set_bonus(obj, &[i as u8; 16]).unwrap();
        }
        pool.snapshot("tank/a@s1").unwrap();
        let mut dmu = pool.dmu(fs).unwrap();
        let objs = dmu.objects();
        dmu.write(objs[1], 4096, &noise(20_000, 50)).unwrap();
        dmu.object_free(objs[2]).unwrap();
        let obj = dmu.object_alloc(19, 8192, 0, 0).unwrap();
        dmu.write(obj, 0, &noise(10_000, 51)).unwrap();
        pool.snapshot("tank/a@s2").unwrap();
    });
    shared(pool)
}

fn spec(tosnap: &str, fromsnap: Option<&str>, target: &str) -> TransferSpec {
    TransferSpec {
        tosnap: tosnap.into(),
        fromsnap: fromsnap.map(Into::into),
        target: target.into(),
        ..TransferSpec::default()
    }
}

/// The stream a clean send gives.
fn stream(src: &Shared, tosnap: &str, fromsnap: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    src.borrow_mut()
        .send(
            tosnap,
            fromsnap,
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
        .unwrap();
    out
}

/// A destination pool holding pool/a@s1, received from `src`.
fn destination(w: &World, src: &Shared, name: &str) -> Shared {
    let disk = w.disk(name);
    let mut pool = w.create(&disk, name);
    let base = stream(src, "tank/a@s1", None);
    pool.receive(
        &format!("{name}/a"),
        &base[..],
        &RecvOptions::default(),
        &mut NoInterrupt,
    )
    .unwrap();
    shared(pool)
}

/// The target is as it was, and consistent.
fn assert_unchanged(dst: &Shared, before: &State, what: &str) {
    let mut pool = dst.borrow_mut();
    assert_no_partial_receive(&pool, what);
    assert_eq!(&state(&mut pool), before, "{what}: the target changed");
    assert_clean(&mut pool, what);
}

/// The received snapshot holds what the sent one does.
fn assert_same(src: &Shared, snap: &str, dst: &Shared, copy: &str) {
    let want = objects(&mut src.borrow_mut(), snap);
    let got = objects(&mut dst.borrow_mut(), copy);
    assert!(want == got, "{copy} differs from {snap}");
}

/// How long a clean transfer takes, in virtual time (receiving into a
/// throwaway target on a fresh destination).
async fn duration(
    w: &World,
    src: &Shared,
    to: &str,
    from: Option<&str>,
    target: &str,
) -> std::time::Duration {
    let dst = destination(w, src, "dst");
    let t0 = w.inj.clock().elapsed();
    let out = transfer_with(
        src,
        &dst,
        &spec(to, from, target),
        &w.options.pipe,
        &w.inj,
        TransferFaults::default(),
    )
    .await;
    out.recv.unwrap().unwrap();
    w.inj.clock().elapsed() - t0
}

#[test]
fn a_signal_to_the_receiver_at_any_moment_leaves_the_target_as_before() {
    run(3, async {
        let w = world(3, "none");
        let src = source(&w);
        for (from, to, target) in [
            (Some("tank/a@s1"), "tank/a@s2", "dst/a"),
            (None, "tank/a@s2", "dst/b"),
        ] {
            let len = duration(&w, &src, to, from, target).await;
            let mut moments: Vec<_> = (0..=12).map(|i| len * i / 10).collect();
            moments.push(std::time::Duration::ZERO);
            let mut delivered = 0;
            for at in moments {
                let dst = destination(&w, &src, "dst");
                let before = state(&mut dst.borrow_mut());
                let faults = TransferFaults {
                    signal: Some((Side::Receiver, at)),
                    ..TransferFaults::default()
                };
                let out = transfer_with(
                    &src,
                    &dst,
                    &spec(to, from, target),
                    &w.options.pipe,
                    &w.inj,
                    faults,
                )
                .await;
                let signal = out.signal.unwrap();
                let what = format!("{target} signal at {at:?} of {len:?}");
                if signal.delivered {
                    delivered += 1;
                    let err = out.recv.unwrap().unwrap_err();
                    assert_eq!(err.errno(), Errno::EINTR, "{what}: {err}");
                    assert_unchanged(&dst, &before, &what);
                    // The sender finished, or found the pipe closed.
                    if let Err(e) = &out.send {
                        assert_eq!(e.errno(), Errno::EPIPE, "{what}: {e}");
                    }
                } else {
                    // Past its last record (the end's syncs take time too).
                    out.send.as_ref().unwrap();
                    out.recv.unwrap().unwrap();
                    assert_same(&src, to, &dst, &format!("{target}@s2"));
                    // The next moment needs the target as it was.
                    dst.borrow_mut().destroy(&format!("{target}@s2")).unwrap();
                    if from.is_none() {
                        dst.borrow_mut().destroy(target).unwrap();
                    }
                }
            }
            assert!(delivered >= 4, "{target}: {delivered} delivered");
        }
    });
}

#[test]
fn a_signal_to_the_sender_stops_the_send_with_eintr() {
    run(4, async {
        let w = world(4, "none");
        let src = source(&w);
        let dst = destination(&w, &src, "dst");
        let before = state(&mut dst.borrow_mut());
        let len = stream(&src, "tank/a@s2", Some("tank/a@s1")).len() as u64;
        let micros = [0, 1, 5, 20, 60, 150];
        for us in micros {
            let at = std::time::Duration::from_micros(us);
            let faults = TransferFaults {
                signal: Some((Side::Sender, at)),
                ..TransferFaults::default()
            };
            let out = transfer_with(
                &src,
                &dst,
                &spec("tank/a@s2", Some("tank/a@s1"), "dst/a"),
                &w.options.pipe,
                &w.inj,
                faults,
            )
            .await;
            let what = format!("sender signalled at {at:?} ({len} bytes)");
            assert_eq!(out.send.unwrap_err().errno(), Errno::EINTR, "{what}");
            assert!(out.signal.unwrap().delivered);
            assert!(out.bytes_sent >= 312 && out.bytes_sent < len, "{what}");
            assert_eq!(out.bytes_delivered, out.bytes_sent);
            let err = out.recv.unwrap().unwrap_err();
            assert_eq!(err.errno(), Errno::EINVAL, "{what}: {err}");
            assert_unchanged(&dst, &before, &what);
        }
        assert_eq!(w.inj.counts().get(FaultKind::Signal), micros.len() as u64);
    });
}

/// A world whose source disk reads slowly (the sender takes a long
/// virtual time per block, so the receiver often waits on an empty pipe),
/// with the pipe's short reads and stalls on.
fn slow_world(seed: u64) -> World {
    let mut w = world(seed, "short-io:0.7");
    w.options.disk.read_latency_us = 40_000;
    w.options.pipe.recv_chunk_bytes = 4096;
    w.options.pipe.stall_ms_min = 20;
    w.options.pipe.stall_ms_max = 60;
    w
}

#[test]
fn a_signal_reaches_a_receiver_waiting_on_an_empty_pipe_and_the_sender_gets_epipe() {
    run(12, async {
        let w = slow_world(12);
        let src = source(&w);
        let dst = destination(&w, &src, "dst");
        let before = state(&mut dst.borrow_mut());
        let len = stream(&src, "tank/a@s2", None).len() as u64;
        let mut waiting = 0;
        for ms in [30, 90, 150, 210, 270] {
            let at = std::time::Duration::from_millis(ms);
            let faults = TransferFaults {
                signal: Some((Side::Receiver, at)),
                ..TransferFaults::default()
            };
            let out = transfer_with(
                &src,
                &dst,
                &spec("tank/a@s2", None, "dst/b"),
                &w.options.pipe,
                &w.inj,
                faults,
            )
            .await;
            let what = format!("signal at {at:?}");
            let signal = out.signal.unwrap();
            assert!(signal.delivered, "{what}");
            waiting += u32::from(signal.while_waiting);
            let err = out.recv.unwrap().unwrap_err();
            assert_eq!(err.errno(), Errno::EINTR, "{what}: {err}");
            assert_unchanged(&dst, &before, &what);
            // The receiver died mid-stream: the sender, still sending,
            // found the pipe broken.
            let e = out.send.unwrap_err();
            assert_eq!(e.errno(), Errno::EPIPE, "{what}: {e}");
            assert!(out.bytes_sent < len, "{what}: it stopped early");
        }
        assert!(waiting >= 3, "{waiting} of 5 while waiting on the pipe");
    });
}

#[test]
fn a_receive_spans_txg_syncs_in_partial_reads_with_a_workload_step_between_records() {
    run(13, async {
        let w = slow_world(13);
        let src = source(&w);
        let dst = destination(&w, &src, "dst");
        let synced_before = dst.borrow().synced_txg();
        // The destination's txg-sync task, every 50 ms of virtual time.
        let syncer = {
            let dst = dst.clone();
            madsim::task::spawn_local(async move {
                let mut syncs = 0u64;
                loop {
                    madsim::time::sleep(std::time::Duration::from_millis(50)).await;
                    dst.borrow_mut().txg_sync().unwrap();
                    syncs += 1;
                    if syncs == 1_000 {
                        return;
                    }
                }
            })
        };
        // A workload step while the receive is in flight: a new file on
        // the source, and a filesystem created on the destination.
        let done = Rc::new(std::cell::Cell::new(false));
        let worker = {
            let (src, dst, done) = (src.clone(), dst.clone(), done.clone());
            madsim::task::spawn_local(async move {
                // Once the receive has begun (its dataset is INCONSISTENT
                // until its end), and some records later.
                let mut seen = 0;
                while seen < 20 {
                    if done.get() {
                        return false;
                    }
                    madsim::time::sleep(std::time::Duration::from_millis(1)).await;
                    let in_flight = dst
                        .borrow()
                        .list()
                        .iter()
                        .any(|d| d.flags & DS_FLAG_INCONSISTENT != 0);
                    seen += u32::from(in_flight);
                }
                let mut pool = src.borrow_mut();
                workload_step(&mut pool, 99).unwrap();
                dst.borrow_mut().create_fs("dst/other").unwrap();
                dst.borrow()
                    .list()
                    .iter()
                    .any(|d| d.flags & DS_FLAG_INCONSISTENT != 0)
            })
        };
        let out = transfer_with(
            &src,
            &dst,
            &spec("tank/a@s2", None, "dst/b"),
            &w.options.pipe,
            &w.inj,
            TransferFaults::default(),
        )
        .await;
        assert!(
            worker.await.unwrap(),
            "the step ran while the receive was in flight"
        );
        drop(syncer.cancel_on_drop());
        out.send.unwrap();
        out.recv.unwrap().unwrap();
        assert_same(&src, "tank/a@s2", &dst, "dst/b@s2");
        assert!(
            out.records_received > 10,
            "{} records",
            out.records_received
        );
        assert!(
            w.inj.counts().get(FaultKind::ShortIo) > 10,
            "short reads and stalls"
        );
        // recv_begin and recv_end sync once each; the rest are the task's.
        let syncs = dst.borrow().synced_txg() - synced_before;
        assert!(syncs >= 4, "{syncs} txgs synced during the receive");
        assert!(dst.borrow().lookup("dst/other").is_ok());
        assert_clean(&mut dst.borrow_mut(), "after the receive");
    });
}

#[test]
fn an_endian_flipped_stream_is_received_like_the_native_one() {
    run(5, async {
        let w = world(5, "endian:1");
        let src = source(&w);
        let dst = destination(&w, &src, "dst");
        // Drawn: every send flips.
        for (from, to, target, dedup) in [
            (None, "tank/a@s1", "dst/full", false),
            (None, "tank/a@s2", "dst/dedup", true),
            (Some("tank/a@s1"), "tank/a@s2", "dst/a", false),
        ] {
            let mut spec = spec(to, from, target);
            spec.dedup = dedup;
            let out = transfer(&src, &dst, &spec, &w.options, &w.inj).await;
            assert_eq!(out.byte_order, ByteOrder::NATIVE.other());
            out.send.unwrap();
            out.recv.unwrap().unwrap();
            let snap = to.split_once('@').unwrap().1;
            assert_same(&src, to, &dst, &format!("{target}@{snap}"));
        }
        assert_eq!(w.inj.counts().get(FaultKind::Endian), 3);
        assert_clean(&mut dst.borrow_mut(), "after flipped receives");
    });
}

/// Bytes of an END record no checksum covers: after its type, payload
/// length, stream checksum and toguid, the rest of the 312-byte header is
/// padding the receiver ignores (as ZFS's does).
const END_UNCHECKED: u64 = 4 + 4 + 32 + 8;

/// A damaged transfer's outcome, judged: refused with the target as before;
/// or, when the damage left the stream's meaning whole (a flipped bit in
/// the END record's padding), received intact. Returns whether it was
/// received.
fn judge_damage(
    out: &TransferOutcome,
    len: u64,
    src: &Shared,
    dst: &Shared,
    before: &State,
    what: &str,
) -> bool {
    let damage = out
        .damage
        .unwrap_or_else(|| panic!("{what}: no damage applied"));
    let harmless = match damage {
        Damage::BitFlip { at, .. } => at >= len - 312 + END_UNCHECKED,
        _ => false,
    };
    match out.recv.as_ref().unwrap() {
        Err(e) if !harmless => {
            assert_ne!(e.errno(), Errno::EINTR, "{what}: {e}");
            assert_unchanged(dst, before, &format!("{what} (refused: {e})"));
            false
        }
        _ => {
            assert!(harmless, "{what}: a damaged stream was accepted");
            assert_same(src, "tank/a@s2", dst, "dst/a@s2");
            true
        }
    }
}

#[test]
fn a_damaged_stream_is_refused_and_the_target_is_unchanged() {
    run(6, async {
        let w = world(6, "none");
        let src = source(&w);
        let incr = stream(&src, "tank/a@s2", Some("tank/a@s1"));
        let len = incr.len() as u64;
        let mut cases = Vec::new();
        for at in [
            0,
            8,
            100,
            311,
            312,
            1000,
            len / 3,
            len / 2,
            len - 300,
            len - 1,
        ] {
            cases.push(Damage::BitFlip {
                at,
                mask: 1 << (at % 8),
            });
        }
        for at in [1, 312, 700, len / 2, len - 312, len - 1] {
            cases.push(Damage::Truncate { at });
        }
        for (at, n) in [
            (0, 1),
            (312, 312),
            (500, 8),
            (len / 2, 1000),
            (len - 312, 312),
            (len - 1, 1),
        ] {
            cases.push(Damage::Drop { at, len: n });
            cases.push(Damage::Duplicate { at, len: n });
        }
        let mut accepted = 0;
        let n = cases.len() as u64;
        for damage in cases {
            let dst = destination(&w, &src, "dst");
            let before = state(&mut dst.borrow_mut());
            let faults = TransferFaults {
                damage: Some(damage),
                ..TransferFaults::default()
            };
            let spec = spec("tank/a@s2", Some("tank/a@s1"), "dst/a");
            let out = transfer_with(&src, &dst, &spec, &w.options.pipe, &w.inj, faults).await;
            // The sender finishes, or gets EPIPE from a receiver that
            // refused the stream before its end.
            match &out.send {
                Ok(_) => assert_eq!(out.bytes_sent, len),
                Err(e) => {
                    assert_eq!(e.errno(), Errno::EPIPE, "{damage}: {e}");
                    assert!(!matches!(out.recv, Some(Ok(_))), "{damage}");
                }
            }
            if judge_damage(&out, len, &src, &dst, &before, &damage.to_string()) {
                accepted += 1;
            }
        }
        // Received intact: the last byte flipped (END padding). Everything
        // else is refused, bytes after END included: the END record twice
        // (a second END whose checksum covers nothing) and the last byte
        // twice (part of a record header).
        assert_eq!(accepted, 1);
        assert_eq!(w.inj.counts().get(FaultKind::PipeDamage), n);
    });
}

#[test]
fn drawn_damage_of_every_kind_is_refused() {
    run(8, async {
        let w = world(8, "pipe-damage:1");
        let src = source(&w);
        let len = stream(&src, "tank/a@s2", Some("tank/a@s1")).len() as u64;
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..40 {
            let dst = destination(&w, &src, "dst");
            let before = state(&mut dst.borrow_mut());
            let spec = spec("tank/a@s2", Some("tank/a@s1"), "dst/a");
            let out = transfer(&src, &dst, &spec, &w.options, &w.inj).await;
            if out.damage.is_none() {
                // Drawn past the end of the stream (the hint is an estimate).
                out.recv.unwrap().unwrap();
                continue;
            }
            kinds.insert(out.damage.unwrap().kind());
            judge_damage(&out, len, &src, &dst, &before, &format!("transfer {i}"));
            if kinds.len() == 4 && i >= 12 {
                break;
            }
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    });
}

#[test]
fn short_io_carries_a_transfer_intact() {
    run(9, async {
        let w = world(9, "short-io:0.9");
        let src = source(&w);
        let dst = destination(&w, &src, "dst");
        let start = w.inj.clock().elapsed();
        let out = transfer(
            &src,
            &dst,
            &spec("tank/a@s2", None, "dst/full"),
            &w.options,
            &w.inj,
        )
        .await;
        out.send.unwrap();
        out.recv.unwrap().unwrap();
        assert_eq!(out.bytes_delivered, out.bytes_sent);
        assert_same(&src, "tank/a@s2", &dst, "dst/full@s2");
        assert!(w.inj.counts().get(FaultKind::ShortIo) > 5);
        assert!(w.inj.clock().elapsed() > start, "stalls take virtual time");
    });
}

/// A small run with every fault kind on: a workload on `src` with crashes
/// and rot, and transfers to `dst`. Returns the trace's hash and length.
fn scenario(seed: u64) -> (String, usize, u64) {
    run(seed, async {
        let w = world(
            seed,
            "crash:0.15,torn:0.1,eio-read:0.005,eio-write:0.005,corrupt:0.1,misdirect:0.002,\
             signal:0.3,endian:0.5,short-io:0.3,pipe-damage:0.3",
        );
        let trace = w.inj.trace().clone();
        let at = || w.inj.clock().elapsed();
        let disk = w.disk("src");
        let src = shared(w.create(&disk, "tank"));
        w.inj
            .suspended(|| src.borrow_mut().create_fs("tank/a"))
            .unwrap();
        let dst = shared(w.create(&w.disk("dst"), "dst"));
        let mut sent: Option<String> = None;
        for step in 0..24u64 {
            disk.draw_step_faults();
            let result = {
                let mut pool = src.borrow_mut();
                workload_step(&mut pool, step).and_then(|()| {
                    if step % 4 == 3 {
                        let snap = format!("tank/a@s{step}");
                        pool.snapshot(&snap)?;
                        Ok(Some(snap))
                    } else {
                        Ok(None)
                    }
                })
            };
            trace.record(at(), format!("step {step}: {result:?}"));
            match result {
                Ok(Some(snap)) => {
                    let mut spec = spec(&snap, sent.as_deref(), "dst/a");
                    spec.force = true;
                    let out = transfer(&src, &dst, &spec, &w.options, &w.inj).await;
                    trace.record(
                        at(),
                        format!(
                            "transfer {snap}: send {:?}, recv {:?}, {} bytes",
                            out.send.map(|s| s.bytes),
                            out.recv.map(|r| r.map(|ids| ids.len())),
                            out.bytes_delivered
                        ),
                    );
                    let ok = dst.borrow().lookup(&format!("dst/a@s{step}")).is_ok();
                    if ok {
                        sent = Some(snap);
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    disk.disarm();
                    disk.power_on();
                    match w.import_clean(&disk) {
                        Ok(pool) => *src.borrow_mut() = pool,
                        Err(e) => {
                            trace.record(at(), format!("pool lost: {e}"));
                            break;
                        }
                    }
                    if sent
                        .as_ref()
                        .is_some_and(|s| src.borrow().lookup(s).is_err())
                    {
                        sent = None;
                    }
                }
            }
        }
        let fired = w.inj.counts().total();
        (trace.hash(), trace.len(), fired)
    })
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let a = scenario(11);
    let b = scenario(11);
    assert_eq!(a, b);
    assert!(a.2 > 5, "faults fired: {}", a.2);
    let c = scenario(12);
    assert_ne!(a.0, c.0);
}
