//! The two hosts of a run and their lifecycle: each pool on its disk with
//! what the model says it holds, txg syncs, and power loss followed by an
//! import that must find a state that could have been durable, with a clean
//! check. Everything here runs on the workload task or the txg-sync task,
//! never across an await.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use engine::error::{Errno, Error};
use engine::spa::Pool;
use engine::vdev::BlockDevice;
use scenarios::generate::DST;
use scenarios::model::PoolModel;
use scenarios::oracle::{Mismatch, Verified, compare_pool_with};
use scenarios::step::HOLD_TAG;

use super::Violation;
use crate::world::clock::SimClock;
use crate::world::disk::SimDisk;
use crate::world::faults::{FaultCounts, FaultKind};
use crate::world::injector::Injector;
use crate::world::options::WorldOptions;
use crate::world::streams::{ChaChaSource, Streams};
use crate::world::trace::Trace;
use rand::Rng;

/// One pool on its disk (or a mirror of disks), and what the model says
/// it holds.
pub(super) struct Host {
    pub name: &'static str,
    /// The pool's first disk: the one whose power losses the faults arm.
    pub disk: SimDisk,
    /// The other disks of a mirror pool, on the same power supply.
    pub mirrors: Vec<SimDisk>,
    /// A disk pulled from the mirror (its index) and the steps until it
    /// is put back.
    pub pulled: Option<(usize, u32)>,
    pub pool: Rc<RefCell<Pool>>,
    pub model: PoolModel,
    /// States the pool may come back in after a crash: every state since
    /// the last sync known to have completed.
    pub candidates: Vec<PoolModel>,
    /// The txg of the last sync known to have completed: an import must
    /// find at least that one, or no candidate describes what it found.
    pub durable_txg: u64,
    /// Snapshots the oracle found equal to the model before: compared
    /// again only when they or the disk changed.
    pub verified: RefCell<Verified>,
    imports: u64,
}

/// Everything the tasks of one run share.
pub(super) struct World {
    pub hosts: [Host; 2],
    pub options: WorldOptions,
    pub injector: Injector,
    pub clock: SimClock,
    pub streams: Streams,
    pub trace: Trace,
    /// Set when the workload is done: the txg-sync task stops.
    pub finished: bool,
    /// What the run made the engine handle so far.
    pub reach: reports::result::Reach,
    /// The transfer in flight, if any: what the txg-sync task and racing
    /// operations find going on.
    pub in_flight: Option<Rc<crate::world::transfer::Progress>>,
}

/// A loss to damage at rest stands only where the damage reached every
/// copy of each block reads found with no copy that verifies: a copy no
/// damage touched that still did not verify is the engine's failure (a
/// read that did not try it, a copy never written), a violation. The loss
/// then names the blocks.
pub(super) fn judged_loss(host: &Host, pool_guid: u64, v: Violation) -> Violation {
    let lost = lost_blocks(pool_guid);
    judge_lost(host, &lost, v)
}

/// The blocks of pool `pool_guid` reads found with no good copy since the
/// last take.
fn lost_blocks(pool_guid: u64) -> Vec<engine::zio::blkptr::Blkptr> {
    engine::zio::take_lost_blocks()
        .into_iter()
        .filter(|&(guid, _)| guid == pool_guid)
        .map(|(_, bp)| bp)
        .collect()
}

pub(super) fn judge_lost(
    host: &Host,
    lost: &[engine::zio::blkptr::Blkptr],
    mut v: Violation,
) -> Violation {
    if !v.lost {
        return v;
    }
    for bp in lost {
        let untouched = bp.dvas().find(|d| {
            host.disks()
                .any(|disk| !host.lacks(disk, d.offset(), d.asize()))
        });
        if let Some(d) = untouched {
            v.lost = false;
            v.expected = format!(
                "{} (or, after damage at rest, a block with no good copy)",
                v.expected
            );
            v.found = format!(
                "{}; but the block at {:#x} (birth txg {}) failed every checksum though its copy at {:#x} was reached by no damage",
                v.found,
                bp.dva[0].offset(),
                bp.birth,
                d.offset()
            );
            return v;
        }
    }
    if !lost.is_empty() {
        // Each block, and what put each copy out of reach on each disk.
        let names: Vec<String> = lost
            .iter()
            .map(|bp| {
                let copies = bp.dvas().count();
                let why: Vec<String> = bp
                    .dvas()
                    .flat_map(|d| {
                        host.disks().map(move |disk| {
                            let why = host.why_lacks(disk, d.offset(), d.asize());
                            format!(
                                "{:#x} on {}: {}",
                                d.offset(),
                                disk.name(),
                                why.unwrap_or("?")
                            )
                        })
                    })
                    .collect();
                format!(
                    "{:#x} (birth txg {}, {copies} cop{}; {})",
                    bp.dva[0].offset(),
                    bp.birth,
                    if copies == 1 { "y" } else { "ies" },
                    why.join(", ")
                )
            })
            .collect();
        v.found = format!(
            "{} [every copy out of reach: {}]",
            v.found,
            names.join("; ")
        );
    }
    v
}

pub(super) fn violation(
    step: Option<usize>,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> Violation {
    Violation {
        step,
        lost: false,
        expected: expected.into(),
        found: found.into(),
    }
}

/// A mirror's disks as the engine takes them: each named by its disk's
/// name (what its labels record as its path).
fn named_devices<'a>(
    disks: impl Iterator<Item = &'a SimDisk>,
) -> Vec<(String, Box<dyn BlockDevice>)> {
    disks
        .map(|d| {
            let dev: Box<dyn BlockDevice> = Box::new(d.clone());
            (d.name().to_string(), dev)
        })
        .collect()
}

impl Host {
    /// The pool's disk number `i` (0: the first).
    pub fn disk_at(&self, i: usize) -> &SimDisk {
        self.disks().nth(i).expect("a disk of the host")
    }

    /// Every disk of the pool, the first first.
    pub fn disks(&self) -> impl Iterator<Item = &SimDisk> {
        std::iter::once(&self.disk).chain(&self.mirrors)
    }

    /// Whether damage at rest struck any of the pool's disks.
    pub fn is_damaged(&self) -> bool {
        self.disks().any(SimDisk::is_damaged)
    }

    /// Whether `disk` may not hold what the pool last wrote over
    /// `[offset, offset + len)`: damage at rest reached it, or (on a
    /// mirror, whose writes succeed while one disk takes them) a write
    /// there failed on it, or it is pulled.
    pub fn lacks(&self, disk: &SimDisk, offset: u64, len: u64) -> bool {
        self.why_lacks(disk, offset, len).is_some()
    }

    /// Why [`Host::lacks`] holds, in a word or two, for a loss's report.
    fn why_lacks(&self, disk: &SimDisk, offset: u64, len: u64) -> Option<&'static str> {
        if disk.damage_reached(offset, len) {
            Some("damage")
        } else if self.mirrors.is_empty() {
            None
        } else if disk.is_pulled() {
            Some("pulled")
        } else if disk.missed_write(offset, len) {
            Some("failed write")
        } else {
            None
        }
    }

    /// Whether two faults may have beaten the mirror: one disk is pulled
    /// and a write to one failed, so the only good copy of a block may be
    /// on the pulled disk.
    pub fn redundancy_spent(&self) -> bool {
        self.pulled.is_some() && self.disks().any(SimDisk::missed_any_write)
    }

    /// A new pool named `name` on a new disk, created with no fault firing.
    pub fn create(
        name: &'static str,
        options: &WorldOptions,
        injector: &Injector,
        clock: &SimClock,
        streams: &Streams,
    ) -> Result<Host, Error> {
        let disk = SimDisk::new(&options.disk, name, injector);
        let mirrors: Vec<SimDisk> = (1..options.disk.devices)
            .map(|i| disk.sibling(&format!("{name}-{i}")))
            .collect();
        let pool = injector.suspended(|| {
            let clock = Box::new(clock.clone());
            let rng = Box::new(ChaChaSource(streams.stream(&format!("guid:{name}:0"))));
            if mirrors.is_empty() {
                Pool::create(Box::new(disk.clone()), name, clock, rng)
            } else {
                let devices = named_devices(std::iter::once(&disk).chain(&mirrors));
                Pool::create_mirror(devices, name, clock, rng)
            }
        })?;
        let model = PoolModel::new(name);
        Ok(Host {
            name,
            disk,
            mirrors,
            pulled: None,
            pool: Rc::new(RefCell::new(pool)),
            candidates: vec![model.clone()],
            model,
            durable_txg: 0,
            verified: RefCell::default(),
            imports: 0,
        })
    }

    /// Whether the pool is gone until imported again: power lost, or a
    /// failed sync suspended it.
    pub fn is_down(&self) -> bool {
        self.disks().any(SimDisk::is_down) || self.pool.borrow().is_suspended()
    }

    /// Everything the model holds is durable, as of the pool's last
    /// completed sync: the only state a crash may come back in, and the
    /// oldest txg an import may find.
    pub fn all_durable(&mut self) {
        self.candidates = vec![self.model.clone()];
        self.durable_txg = self.pool.borrow().synced_txg();
    }
}

impl World {
    /// The host a dataset name lives on.
    pub fn host(&self, name: &str) -> usize {
        usize::from(name.split(['/', '@']).next() == Some(DST))
    }

    pub fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    pub fn log(&self, line: impl AsRef<str>) {
        self.trace.record(self.now(), line);
    }

    /// The guid stream of a host's next import.
    fn new_pool_rng(&mut self, h: usize) -> Box<ChaChaSource> {
        let host = &mut self.hosts[h];
        host.imports += 1;
        Box::new(ChaChaSource(
            self.streams
                .stream(&format!("guid:{}:{}", host.name, host.imports)),
        ))
    }

    /// A txg sync of one pool; on success everything the model holds is
    /// durable.
    pub fn sync(&mut self, h: usize, why: &str) -> Result<(), Error> {
        let host = &mut self.hosts[h];
        if host.is_down() {
            return Err(Error::new(Errno::EIO, "pool suspended"));
        }
        let result = host.pool.borrow_mut().txg_sync();
        match &result {
            Ok(()) => host.all_durable(),
            Err(e) => {
                let line = format!("{}: txg sync ({why}) failed: {e}", host.name);
                self.log(line);
            }
        }
        result
    }

    /// The faults each pool's disk draws at the start of a step.
    pub fn draw_step_faults(&mut self, pools: &[usize]) {
        for &h in pools {
            let host = &self.hosts[h];
            host.disk.draw_step_faults();
            for disk in &host.mirrors {
                disk.draw_rot();
            }
            if !host.mirrors.is_empty() {
                self.draw_disk_loss(h);
            }
        }
    }

    /// A mirror's pulled disk is put back when its time is up (and the
    /// pool, if up, resilvers it); else one disk may be pulled.
    fn draw_disk_loss(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        match host.pulled {
            Some((i, left)) if left > 1 => host.pulled = Some((i, left - 1)),
            Some((i, _)) => {
                host.pulled = None;
                let disk = host.disk_at(i).clone();
                disk.replug();
                let line = format!("disk {}: put back", disk.name());
                self.log(line);
                self.resilver(h);
            }
            None => {
                let rate = self.options.disk.disk_loss_probability;
                if !self.injector.roll(FaultKind::DiskLoss, rate) {
                    return;
                }
                let n = host.mirrors.len() + 1;
                let (i, steps) = self.injector.draw(FaultKind::DiskLoss, |rng| {
                    (rng.gen_range(0..n), rng.gen_range(1..=6u32))
                });
                let disk = host.disk_at(i).clone();
                disk.pull();
                host.pulled = Some((i, steps));
                self.injector.fired(
                    FaultKind::DiskLoss,
                    format!("disk {}: pulled for {steps} steps", disk.name()),
                );
            }
        }
    }

    /// `zpool online`'s resilver of host `h`'s pool, if it is up and a
    /// disk missed txgs; logged.
    pub fn resilver(&mut self, h: usize) {
        let host = &self.hosts[h];
        if host.is_down() {
            return;
        }
        let mut pool = host.pool.borrow_mut();
        let before = pool.synced_txg();
        let report = self
            .injector
            .suspended(|| engine::scrub::resilver(&mut pool));
        let synced = pool.synced_txg() > before;
        drop(pool);
        if synced {
            self.hosts[h].all_durable();
        }
        let host = &self.hosts[h];
        if let Some(report) = report {
            let line = format!("{}: resilver: {}", host.name, report.to_string().trim_end());
            self.log(line);
        }
    }

    /// A violation in a run where two faults may have spent a mirror's
    /// redundancy ([`Host::redundancy_spent`]): a loss beyond the
    /// redundancy instead, if reads in its step found blocks of that pool
    /// with no good copy and every copy of each was out of reach (on a
    /// pulled disk, or where a write to its disk failed or damage struck);
    /// else it stands, saying which copy was not.
    pub fn judged_spent(&self, v: Violation) -> Violation {
        if v.lost {
            return v;
        }
        let Some(host) = self.hosts.iter().find(|h| h.redundancy_spent()) else {
            return v;
        };
        let lost = lost_blocks(host.pool.borrow().guid);
        if lost.is_empty() {
            return v;
        }
        judge_lost(host, &lost, Violation { lost: true, ..v })
    }

    /// Whether something may have failed an operation on host `h` since
    /// `before`: a fault that can fail one fired, its disk holds damage at
    /// rest, or its pool went down.
    pub fn faulted_since(&self, h: usize, before: &FaultCounts) -> bool {
        self.injector.counts().failing() > before.failing()
            || self.hosts[h].is_damaged()
            || self.hosts[h].is_down()
    }

    /// The errnos that the faults fired since `before`, damage at rest on
    /// either disk, or a pool gone down explain.
    pub fn explained(&self, before: &FaultCounts) -> Vec<Errno> {
        let mut errnos: Vec<Errno> = self
            .injector
            .counts()
            .fired_since(before)
            .into_iter()
            .flat_map(|k| k.errnos().iter().copied())
            .collect();
        if self.hosts.iter().any(Host::is_damaged) {
            errnos.extend([Errno::ECKSUM, Errno::EIO]);
        }
        if self.hosts.iter().any(Host::is_down) {
            errnos.push(Errno::EIO);
        }
        errnos.sort();
        errnos.dedup();
        errnos
    }

    /// The most indirect levels of any object in either pool now (read with
    /// no fault firing; an unreadable dataset counts for nothing).
    pub fn max_nlevels(&self) -> u8 {
        self.injector.observe(|| {
            let mut most = 0;
            for host in &self.hosts {
                let mut pool = host.pool.borrow_mut();
                for ds in pool.list() {
                    let Ok(dmu) = pool.dmu(ds.id) else { continue };
                    for object in dmu.objects() {
                        if let Ok(info) = dmu.object_info(object) {
                            most = most.max(info.nlevels);
                        }
                    }
                }
            }
            most
        })
    }

    /// Whether host `h`'s pool holds `model`, read with every fault held
    /// off; on a damaged disk, all that can be read must match.
    pub fn holds(&self, h: usize, model: &PoolModel) -> Result<(), Mismatch> {
        let host = &self.hosts[h];
        let damaged = host.is_damaged();
        let mut pool = host.pool.borrow_mut();
        let mut verified = host.verified.borrow_mut();
        match self
            .injector
            .observe(|| compare_pool_with(&mut pool, model, &mut verified))
        {
            Err(Mismatch::Unreadable(_)) if damaged => Ok(()),
            other => other,
        }
    }

    /// Datasets and their space, to prove a failed receive changed nothing.
    pub fn space(&self, h: usize) -> Vec<String> {
        let pool = self.hosts[h].pool.borrow();
        pool.list()
            .iter()
            .map(|i| {
                format!(
                    "{} guid={:#x} refd={} uniq={} flags={} origin={:?}",
                    i.name, i.guid, i.referenced, i.unique, i.flags, i.origin
                )
            })
            .collect()
    }

    /// The lines of [`World::space`] that were not there `before`, if the
    /// space of host `h`'s datasets other than `except` changed.
    pub fn space_changed(
        &self,
        h: usize,
        before: &[String],
        except: &[String],
    ) -> Option<Vec<String>> {
        let counted = |line: &String| !except.iter().any(|n| line.split(' ').next() == Some(n));
        let before: Vec<&String> = before.iter().filter(|l| counted(l)).collect();
        let now: Vec<String> = self.space(h).into_iter().filter(counted).collect();
        (now.iter().ne(before.iter().copied()))
            .then(|| now.into_iter().filter(|l| !before.contains(&l)).collect())
    }

    /// Recovers any host whose disk lost power or whose pool is suspended.
    pub fn heal(&mut self, step: Option<usize>) -> Result<bool, Violation> {
        let mut healed = false;
        for h in 0..2 {
            // A power loss drawn earlier and still armed waits for the
            // writes it was drawn to strike after.
            let host = &self.hosts[h];
            if host.is_down() {
                let why = if host.pool.borrow().is_suspended() {
                    "a failed sync"
                } else {
                    "a power loss"
                };
                self.recover(h, step, why)?;
                healed = true;
            }
        }
        Ok(healed)
    }

    /// Power-cycles a host's disk and imports its pool afresh; the pool
    /// must come back as one of the candidate states, with a clean check.
    pub fn recover(&mut self, h: usize, step: Option<usize>, why: &str) -> Result<(), Violation> {
        let mut pool = self.reimport(h, step, why)?;
        let host = &mut self.hosts[h];
        let damaged = host.is_damaged();
        // Without damage at rest, the newest uberblock with a valid
        // checksum always has its tree on disk (it was flushed first):
        // passing over one is a write-ordering bug, not bad luck.
        if let Some((txg, cause)) = pool.import_skipped.first()
            && !damaged
        {
            return Err(violation(
                step,
                format!(
                    "{} after {why} to import its newest uberblock (txg {txg}), whose tree was flushed before it",
                    host.name
                ),
                format!(
                    "its tree did not load ({cause}): import passed over {} uberblock{} to an older one",
                    pool.import_skipped.len(),
                    if pool.import_skipped.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ),
            ));
        }
        // The same barrier puts every copy of what the imported txg wrote
        // on disk before its uberblock: with ditto blocks, a tree that
        // loads may still have lost a copy, which only a read of each copy
        // finds.
        if !damaged {
            let since = pool.synced_txg().saturating_sub(1);
            let scrubbed = self
                .injector
                .observe(|| engine::scrub::scrub_born_after(&mut pool, since));
            // On a mirror, a copy a failed write left behind on one disk
            // is not lost: it is one the scrub must find and repair.
            let unexplained = scrubbed
                .bad_places
                .iter()
                .any(|&(offset, len, child)| !host.lacks(host.disk_at(child), offset, len));
            if unexplained || !scrubbed.unrepairable.is_empty() {
                let mut v = violation(
                    step,
                    format!(
                        "{} after {why} to hold every copy of what txg {} wrote, as its sync completed",
                        host.name,
                        pool.synced_txg()
                    ),
                    format!(
                        "a scrub of those blocks: {}",
                        scrubbed.to_string().trim_end()
                    ),
                );
                // With a disk pulled and a write to another failed, a
                // block may have no copy within reach.
                if !unexplained && host.redundancy_spent() {
                    v.lost = true;
                    let lost: Vec<_> = scrubbed.unrepairable.iter().map(|(bp, _)| *bp).collect();
                    return Err(judge_lost(host, &lost, v));
                }
                return Err(v);
            }
        }
        // Damage at rest can make import fall back past the last sync that
        // completed, to a state no candidate describes (they all start
        // there): parts of it may still match one, but the model cannot
        // follow. Without damage, a completed sync lost is a write-ordering
        // bug.
        if pool.synced_txg() < host.durable_txg {
            let mut v = violation(
                step,
                format!(
                    "{} after {why} to import txg {} or later, which a sync completed",
                    host.name, host.durable_txg
                ),
                format!("it imported txg {}", pool.synced_txg()),
            );
            // On a mirror, a sync completes when one disk took its
            // uberblock: if a write to another failed and the one that
            // took it is pulled now, two faults beat two disks.
            v.lost = damaged || host.redundancy_spent();
            return Err(judged_loss(host, pool.guid, v));
        }
        let chosen = self.injector.observe(|| {
            judge_check(
                &mut pool,
                damaged,
                step,
                &format!("{} after {why}", host.name),
            )?;
            choose_candidate(host, &mut pool, damaged, step, why)
        })?;
        let mut model = host.candidates[chosen].clone();
        for other in &host.candidates {
            model.merge_unseen_changes(other);
        }
        let back = host.candidates.len() - 1 - chosen;
        host.model = model;
        *host.pool.borrow_mut() = pool;
        host.all_durable();
        // A misuse's hold is taken and released in one step; an import
        // that falls back to a state between the two brings it back, and
        // the model knows no holds: release it, as an operator would.
        let held: Vec<String> = host
            .pool
            .borrow()
            .list()
            .into_iter()
            .filter(|i| i.holds.iter().any(|t| t == HOLD_TAG))
            .map(|i| i.name)
            .collect();
        for snap in held {
            let mut pool = host.pool.borrow_mut();
            if let Err(e) = self.injector.suspended(|| pool.release(&snap, HOLD_TAG)) {
                return Err(violation(
                    step,
                    format!("the hold on {snap} to be released"),
                    e.to_string(),
                ));
            }
        }
        let line = format!(
            "{}: imported after {why}: txg {} ({} state{} back)",
            host.name,
            host.pool.borrow().synced_txg(),
            back,
            if back == 1 { "" } else { "s" }
        );
        self.log(line);
        self.resilver(h);
        Ok(())
    }

    /// The power cycle and the import of [`recover`](World::recover).
    fn reimport(&mut self, h: usize, step: Option<usize>, why: &str) -> Result<Pool, Violation> {
        let rng = self.new_pool_rng(h);
        let clock = Box::new(self.clock.clone());
        let host = &mut self.hosts[h];
        host.disk.disarm();
        // A power loss that struck one disk took its siblings down then.
        for disk in host.disks() {
            disk.follow_power();
        }
        // A pool given up without a power loss (a failed sync) is taken
        // back as `zpool clear` would: the disks' caches are written out
        // first, so that what the import reads is what stays (a pulled
        // disk's is lost with it).
        let mut flushed = Ok(());
        for disk in host.disks() {
            if !disk.is_down() && !disk.is_pulled() && flushed.is_ok() {
                let mut disk = disk.clone();
                flushed = self.injector.suspended(|| disk.flush());
            }
        }
        for disk in host.disks() {
            disk.power_on();
        }
        if let Err(e) = flushed {
            return Err(violation(
                step,
                format!("{} to flush its cache after {why}", host.name),
                e.to_string(),
            ));
        }
        let devices: Vec<(String, Box<dyn BlockDevice>)> = if host.mirrors.is_empty() {
            vec![(String::new(), Box::new(host.disk.clone()))]
        } else {
            named_devices(host.disks())
        };
        // What the pool read that the power loss did not touch need not be
        // read again (the disk says which writes it resolved).
        let cache = host.pool.borrow_mut().take_read_cache();
        self.injector
            .suspended(|| Pool::import_cached(devices, clock, rng, cache))
            .map_err(|e| {
                let mut v = violation(
                    step,
                    format!("{} to import after {why}", host.name),
                    format!("import failed: {e}"),
                );
                // Damage at rest can leave a block unreadable or wrong, or
                // (misdirected writes over all four labels) no label at all.
                v.lost = host.is_damaged()
                    && matches!(e.errno(), Errno::EIO | Errno::ECKSUM | Errno::ENXIO);
                judged_loss(host, host.pool.borrow().guid, v)
            })
    }
}

/// Which candidate state an imported pool holds (its index): the newest
/// that matches, or after damage at rest one that matches in all it could
/// read. None is a violation.
fn choose_candidate(
    host: &mut Host,
    pool: &mut Pool,
    damaged: bool,
    step: Option<usize>,
    why: &str,
) -> Result<usize, Violation> {
    let mut mismatches = Vec::new();
    for candidate in host.candidates.iter_mut() {
        learn_snapshots(candidate, pool);
    }
    // A state that reads back whole beats one that matches only in what
    // could be read.
    let mut partly = Vec::new();
    for (i, candidate) in host.candidates.iter().enumerate().rev() {
        match compare_pool_with(pool, candidate, &mut host.verified.borrow_mut()) {
            Ok(()) => return Ok(i),
            Err(Mismatch::Unreadable(_)) if damaged => partly.push(i),
            Err(m) => mismatches.push(m.to_string()),
        }
    }
    if let Some(&newest) = partly.first() {
        // Two different states that each match in all that can be read:
        // the damage hides which one the pool holds, and a guess would
        // carry a wrong model on to every target sent from it.
        let same = partly
            .iter()
            .all(|&i| host.candidates[i] == host.candidates[newest]);
        if same {
            return Ok(newest);
        }
        let mut v = violation(
            step,
            format!(
                "{} after {why} to hold one state the model can tell",
                host.name
            ),
            format!(
                "{} different states match all that can be read: damage at rest hides which one it holds",
                partly.len()
            ),
        );
        v.lost = true;
        return Err(judged_loss(host, pool.guid, v));
    }
    let mut v = violation(
        step,
        format!(
            "{} after {why} to hold one of the {} states that could be durable",
            host.name,
            host.candidates.len()
        ),
        match mismatches.as_slice() {
            [] => "no candidate".to_string(),
            [only] => only.clone(),
            // The newest and the oldest state say most.
            [newest, .., oldest] => format!("{newest}; and the oldest state: {oldest}"),
        },
    );
    // Damage at rest can make import fall back to an older txg: detected
    // (the txg went back), but the model cannot follow.
    v.lost = damaged;
    Err(judged_loss(host, pool.guid, v))
}

/// Fills in the guid and creation time of snapshots a candidate does not
/// know yet (0) from the imported pool.
fn learn_snapshots(candidate: &mut PoolModel, pool: &Pool) {
    for (name, ds) in candidate.datasets.iter_mut() {
        if name.contains('@')
            && ds.guid == 0
            && let Ok(id) = pool.lookup(name)
        {
            let info = pool.info(id);
            ds.guid = info.guid;
            ds.creation = info.creation_time;
        }
    }
}

/// `engine::check` on a pool (`what` names it and when): it must be clean.
/// After damage at rest, unreadable blocks are detected damage, and blocks
/// beneath them cannot be walked, so they are not counted as leaks; every
/// other finding still is a violation.
pub(super) fn judge_check(
    pool: &mut Pool,
    damaged: bool,
    step: Option<usize>,
    what: &str,
) -> Result<(), Violation> {
    match engine::check::check(pool) {
        Ok(r) if r.is_clean() => Ok(()),
        Ok(r)
            if damaged
                && (r.leaked.is_empty() || !r.unreadable.is_empty())
                && r.unallocated.is_empty()
                && r.overlapping.is_empty()
                && r.space.is_empty() =>
        {
            Ok(())
        }
        Ok(r) => Err(violation(
            step,
            format!("a clean check of {what}"),
            format!(
                "leaked {:?}, unallocated {:?}, overlapping {:?}, unreadable {}, space {:?}",
                r.leaked,
                r.unallocated,
                r.overlapping,
                r.unreadable.len(),
                r.space
            ),
        )),
        Err(_) if damaged => Ok(()),
        Err(e) => Err(violation(
            step,
            format!("a clean check of {what}"),
            format!("check failed: {e}"),
        )),
    }
}
