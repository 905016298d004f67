//! The simulation itself: the hosts, the tasks, and the judging of each
//! step.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use engine::error::{Errno, Error, SiteLog};
use engine::spa::Pool;
use engine::vdev::BlockDevice;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use scenarios::generate::{DST, Generator, SRC};
use scenarios::model::{Expect, PoolModel};
use scenarios::oracle::{Mismatch, compare_pool};
use scenarios::step::Step;

use super::{Outcome, RunConfig, RunReport, StepRecord, Violation};
use crate::world::clock::SimClock;
use crate::world::disk::SimDisk;
use crate::world::faults::{FaultCounts, FaultKind};
use crate::world::injector::Injector;
use crate::world::options::WorldOptions;
use crate::world::streams::{ChaChaSource, Streams};
use crate::world::trace::Trace;
use crate::world::transfer::{TransferSpec, transfer};

/// One pool on one disk, and what the model says it holds.
struct Host {
    name: &'static str,
    disk: SimDisk,
    pool: Rc<RefCell<Pool>>,
    model: PoolModel,
    /// States the pool may come back in after a crash: every state since
    /// the last sync known to have completed.
    candidates: Vec<PoolModel>,
    /// The power loss armed for the current step.
    armed: Option<FaultKind>,
    imports: u64,
}

struct World {
    hosts: [Host; 2],
    options: WorldOptions,
    injector: Injector,
    clock: SimClock,
    streams: Streams,
    trace: Trace,
    finished: bool,
}

/// Faults that can make an operation fail (endianness and short I/O must
/// not).
const FAILING: [FaultKind; 8] = [
    FaultKind::Crash,
    FaultKind::Torn,
    FaultKind::EioRead,
    FaultKind::EioWrite,
    FaultKind::Corrupt,
    FaultKind::Misdirect,
    FaultKind::Signal,
    FaultKind::PipeDamage,
];

fn failing(counts: &FaultCounts) -> u64 {
    FAILING.iter().map(|k| counts.get(*k)).sum()
}

fn violation(
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

impl World {
    fn host(&mut self, name: &str) -> usize {
        usize::from(name.split(['/', '@']).next() == Some(DST))
    }

    fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    fn log(&self, line: impl AsRef<str>) {
        self.trace.record(self.now(), line);
    }

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
    fn sync(&mut self, h: usize, why: &str) -> Result<(), Error> {
        let host = &mut self.hosts[h];
        if host.pool.borrow().is_suspended() || host.disk.is_down() {
            return Err(Error::new(Errno::EIO, "pool suspended"));
        }
        let result = host.pool.borrow_mut().txg_sync();
        match &result {
            Ok(()) => host.candidates = vec![host.model.clone()],
            Err(e) => {
                let line = format!("{}: txg sync ({why}) failed: {e}", host.name);
                self.log(line);
            }
        }
        result
    }

    /// Power-cycles a host's disk and imports its pool afresh; the pool
    /// must come back as one of the candidate states, with a clean check.
    fn recover(&mut self, h: usize, step: Option<usize>, why: &str) -> Result<(), Violation> {
        let rng = self.new_pool_rng(h);
        let clock = Box::new(self.clock.clone());
        let host = &mut self.hosts[h];
        host.disk.disarm();
        // A pool given up without a power loss (a failed sync) is taken
        // back as `zpool clear` would: the disk's cache is written out
        // first, so that what the import reads is what stays.
        let flushed = if host.disk.is_down() {
            Ok(())
        } else {
            let mut disk = host.disk.clone();
            self.injector.suspended(|| disk.flush())
        };
        host.disk.power_on();
        if let Err(e) = flushed {
            return Err(violation(
                step,
                format!("{} to flush its cache after {why}", host.name),
                e.to_string(),
            ));
        }
        let dev = Box::new(host.disk.clone());
        let imported = self.injector.suspended(|| Pool::import(dev, clock, rng));
        let mut pool = match imported {
            Ok(pool) => pool,
            Err(e) => {
                let mut v = violation(
                    step,
                    format!("{} to import after {why}", host.name),
                    format!("import failed: {e}"),
                );
                v.lost = host.disk.is_damaged() && matches!(e.errno(), Errno::EIO | Errno::ECKSUM);
                return Err(v);
            }
        };
        let damaged = host.disk.is_damaged();
        let outcome = self.injector.suspended(|| {
            judge_check(
                &mut pool,
                damaged,
                step,
                &format!("{} after {why}", host.name),
            )?;
            let mut mismatches = Vec::new();
            for candidate in host.candidates.iter_mut() {
                learn_snapshots(candidate, &pool);
            }
            // A state that reads back whole beats one that matches only in
            // what could be read.
            let mut partly = None;
            for (i, candidate) in host.candidates.iter().enumerate().rev() {
                match compare_pool(&mut pool, candidate) {
                    Ok(()) => return Ok(i),
                    Err(Mismatch::Unreadable(_)) if damaged => {
                        partly.get_or_insert(i);
                    }
                    Err(m) => mismatches.push(m.to_string()),
                }
            }
            if let Some(i) = partly {
                return Ok(i);
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
            // Damage at rest can make import fall back to an older txg:
            // detected (the txg went back), but the model cannot follow.
            v.lost = damaged;
            Err(v)
        })?;
        let mut chosen = host.candidates[outcome].clone();
        for other in &host.candidates {
            chosen.merge_unseen_changes(other);
        }
        let back = host.candidates.len() - 1 - outcome;
        host.model = chosen.clone();
        host.candidates = vec![chosen];
        *host.pool.borrow_mut() = pool;
        let line = format!(
            "{}: imported after {why}: txg {} ({} state{} back)",
            host.name,
            host.pool.borrow().synced_txg(),
            back,
            if back == 1 { "" } else { "s" }
        );
        self.log(line);
        Ok(())
    }

    /// Recovers any host whose disk lost power or whose pool is suspended.
    fn heal(&mut self, step: Option<usize>) -> Result<bool, Violation> {
        let mut healed = false;
        for h in 0..2 {
            let host = &self.hosts[h];
            // A power loss drawn for the step strikes by its end.
            if host.disk.is_armed() {
                let kind = host.armed.unwrap_or(FaultKind::Crash);
                host.disk.disarm();
                host.disk.crash_now(kind);
            }
            let host = &self.hosts[h];
            if host.disk.is_down() || host.pool.borrow().is_suspended() {
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

    /// The faults each pool's disk draws at the start of a step.
    fn draw_step_faults(&mut self, pools: &[usize]) {
        for &h in pools {
            self.hosts[h].armed = self.hosts[h].disk.draw_step_faults();
        }
    }

    /// Whether a step no longer applies to the model (a replayed list).
    fn skip_reason(&mut self, step: &Step) -> Option<String> {
        let h = self.host(step.pool());
        step.skip_reason(&self.hosts[h].model)
    }

    /// Runs a step that does not transfer anything, on the engine and then
    /// on the model.
    fn local_step(&mut self, step: &Step) -> Result<String, Error> {
        let h = self.host(step.pool());
        let host = &mut self.hosts[h];
        step.apply(&mut host.pool.borrow_mut(), &mut host.model)
    }

    /// Datasets and their space, to prove a failed receive changed nothing.
    fn space(&mut self, h: usize) -> Vec<String> {
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

/// The txg-sync task of both pools: a sync every `zfs_txg_timeout`.
async fn txg_sync_task(world: Rc<RefCell<World>>) {
    let timeout = world.borrow().options.txg_timeout();
    loop {
        madsim::time::sleep(timeout).await;
        let mut w = world.borrow_mut();
        if w.finished {
            return;
        }
        for h in 0..2 {
            let _ = w.sync(h, "timeout");
        }
    }
}

fn make_host(
    name: &'static str,
    options: &WorldOptions,
    injector: &Injector,
    clock: &SimClock,
    streams: &Streams,
) -> Result<Host, Error> {
    let disk = SimDisk::new(&options.disk, name, injector);
    let pool = injector.suspended(|| {
        Pool::create(
            Box::new(disk.clone()),
            name,
            Box::new(clock.clone()),
            Box::new(ChaChaSource(streams.stream(&format!("guid:{name}:0")))),
        )
    })?;
    let model = PoolModel::new(name);
    Ok(Host {
        name,
        disk,
        pool: Rc::new(RefCell::new(pool)),
        candidates: vec![model.clone()],
        model,
        armed: None,
        imports: 0,
    })
}

/// The workload task, which is the run.
pub(super) async fn simulate(config: RunConfig) -> RunReport {
    let streams = Streams::new(config.seed);
    let trace = Trace::new(config.verbose);
    let clock = SimClock::current();
    let options = config.world();
    let plan = options.plan();
    let injector = Injector::new(&streams, trace.clone(), clock.clone());
    let sites = SiteLog::start();
    trace.record(
        clock.elapsed(),
        format!(
            "run seed={} scenario={} faults={plan}",
            config.seed, config.spec.name
        ),
    );
    let mut report = RunReport {
        seed: config.seed,
        scenario: config.spec.name.clone(),
        world: options.clone(),
        plan: plan.clone(),
        planted: config.planted.clone(),
        steps: Vec::new(),
        violation: None,
        lost: None,
        faults: FaultCounts::default(),
        error_sites: BTreeMap::new(),
        trace: Vec::new(),
        trace_hash: String::new(),
        virtual_time: Duration::ZERO,
        disk_writes: 0,
        disk_reads: 0,
        bytes_sent: 0,
    };
    let hosts = match (
        make_host(SRC, &options, &injector, &clock, &streams),
        make_host(DST, &options, &injector, &clock, &streams),
    ) {
        (Ok(s), Ok(d)) => [s, d],
        (Err(e), _) | (_, Err(e)) => {
            report.violation = Some(violation(None, "the pools to be created", e.to_string()));
            return report;
        }
    };
    let think_ms_max = options.clock.think_time_ms_max;
    let world = Rc::new(RefCell::new(World {
        hosts,
        options,
        injector: injector.clone(),
        clock: clock.clone(),
        streams,
        trace: trace.clone(),
        finished: false,
    }));
    let sync_task = madsim::task::spawn_local(txg_sync_task(world.clone()));

    let mut generator = Generator::new(config.spec.clone(), streams.stream("workload"));
    let mut think: ChaCha8Rng = streams.stream("think-time");
    let count = config
        .fixed_steps
        .as_ref()
        .map_or(config.steps.unwrap_or(config.spec.steps), Vec::len);
    for index in 0..count {
        let step = match &config.fixed_steps {
            Some(steps) => steps[index].clone(),
            None => {
                let w = world.borrow();
                generator.next(&w.hosts[0].model, &w.hosts[1].model)
            }
        };
        madsim::time::sleep(Duration::from_millis(think.gen_range(1..think_ms_max))).await;
        let result = run_step(&world, index, &step).await;
        let at = clock.elapsed();
        let (outcome, detail) = match result {
            Ok(r) => r,
            Err(v) if v.lost => {
                let why = format!("{}: {}", v.expected, v.found);
                trace.record(
                    at,
                    format!("step {index} {step}: stopped: pool lost to injected damage ({why})"),
                );
                report.steps.push(StepRecord {
                    index,
                    at,
                    step,
                    outcome: Outcome::Faulted,
                    detail: format!("pool lost to injected damage: {}", v.found),
                });
                report.lost = Some(why);
                break;
            }
            Err(v) => {
                let line = format!(
                    "step {index} {step}: VIOLATION: expected {}, found {}",
                    v.expected, v.found
                );
                trace.record(at, line);
                report.steps.push(StepRecord {
                    index,
                    at,
                    step,
                    outcome: Outcome::Violation,
                    detail: v.found.clone(),
                });
                report.violation = Some(v);
                break;
            }
        };
        let line = if detail.is_empty() {
            format!("step {index} {step}: {}", outcome.name())
        } else {
            format!("step {index} {step}: {}: {detail}", outcome.name())
        };
        trace.record(at, line);
        report.steps.push(StepRecord {
            index,
            at,
            step,
            outcome,
            detail,
        });
    }
    if report.violation.is_none() && report.lost.is_none() {
        match final_check(&world) {
            Err(v) if v.lost => report.lost = Some(format!("{}: {}", v.expected, v.found)),
            result => report.violation = result.err(),
        }
    }
    world.borrow_mut().finished = true;
    // Cancelled, not detached: a detached task asleep on a timer outlives
    // the runtime, and with it the whole world (both disks), every run.
    drop(sync_task.cancel_on_drop());
    let w = world.borrow();
    for host in &w.hosts {
        let stats = host.disk.stats();
        report.disk_writes += stats.writes;
        report.disk_reads += stats.reads;
    }
    if let Some(v) = &report.violation
        && v.step.is_none()
    {
        trace.record(
            clock.elapsed(),
            format!(
                "final check: VIOLATION: expected {}, found {}",
                v.expected, v.found
            ),
        );
    }
    trace.record(
        clock.elapsed(),
        format!(
            "end: {} steps, {}",
            report.steps.len(),
            if report.violation.is_some() {
                "VIOLATION"
            } else {
                "no violation"
            }
        ),
    );
    for site in sites.finish() {
        *report.error_sites.entry(site.to_string()).or_default() += 1;
    }
    report.faults = injector.counts();
    report.virtual_time = clock.elapsed();
    report.trace = trace.lines();
    report.trace_hash = trace.hash();
    report
}

/// `engine::check` on a pool (`what` names it and when): it must be clean.
/// After damage at rest, unreadable blocks are detected damage, and blocks
/// beneath them cannot be walked, so they are not counted as leaks; every
/// other finding still is a violation.
fn judge_check(
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

/// At the end: both pools sync, check clean, and hold what the model says.
fn final_check(world: &Rc<RefCell<World>>) -> Result<(), Violation> {
    let mut w = world.borrow_mut();
    w.heal(None)?;
    for h in 0..2 {
        let injector = w.injector.clone();
        let synced = injector.suspended(|| w.sync(h, "end of run"));
        if let Err(e) = synced {
            return Err(violation(None, "a final sync", e.to_string()));
        }
        let host = &mut w.hosts[h];
        let damaged = host.disk.is_damaged();
        let mut pool = host.pool.borrow_mut();
        let model = &host.model;
        injector.suspended(|| {
            judge_check(
                &mut pool,
                damaged,
                None,
                &format!("{} at the end", host.name),
            )?;
            match compare_pool(&mut pool, model) {
                Ok(()) => Ok(()),
                Err(Mismatch::Unreadable(_)) if damaged => Ok(()),
                Err(m) => Err(violation(
                    None,
                    format!("{} at the end to hold what the model holds", host.name),
                    m.to_string(),
                )),
            }
        })?;
    }
    Ok(())
}

/// One step, judged.
async fn run_step(
    world: &Rc<RefCell<World>>,
    index: usize,
    step: &Step,
) -> Result<(Outcome, String), Violation> {
    let at = Some(index);
    {
        let mut w = world.borrow_mut();
        w.heal(at)?;
        if let Some(why) = w.skip_reason(step) {
            return Ok((Outcome::Skipped, why));
        }
    }
    match step {
        Step::Wait { ms } => {
            madsim::time::sleep(Duration::from_millis(*ms)).await;
            return Ok((Outcome::Done, String::new()));
        }
        Step::Crash { pool } => {
            let mut w = world.borrow_mut();
            let h = w.host(pool);
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            w.recover(h, at, "a power loss (crash step)")?;
            return Ok((Outcome::Done, String::new()));
        }
        Step::Send { .. } => return send_step(world, index, step).await,
        _ => {}
    }
    let mut w = world.borrow_mut();
    let h = w.host(step.pool());
    w.draw_step_faults(&[h]);
    let before = failing(&w.injector.counts());
    let result = w.local_step(step);
    let faulted = failing(&w.injector.counts()) > before || w.hosts[h].disk.is_damaged();
    match result {
        Ok(detail) => {
            let host = &mut w.hosts[h];
            let model = host.model.clone();
            host.candidates.push(model);
            if w.heal(at)? {
                return Ok((Outcome::Faulted, format!("{detail} (then a power loss)")));
            }
            Ok((Outcome::Done, detail))
        }
        Err(e)
            if faulted || w.hosts[h].disk.is_down() || w.hosts[h].pool.borrow().is_suspended() =>
        {
            // An operation that syncs may have become durable before the
            // fault struck it.
            if let Some(post) = step.post_model(&w.hosts[h].model) {
                w.hosts[h].candidates.push(post);
            }
            // The pool's memory may hold half an operation: reboot.
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            w.recover(h, at, "a failed operation")?;
            Ok((Outcome::Faulted, e.to_string()))
        }
        Err(e) => Err(violation(at, format!("`{step}` to succeed"), e.to_string())),
    }
}

/// A send through the pipe into a receive, judged by the oracle.
async fn send_step(
    world: &Rc<RefCell<World>>,
    index: usize,
    step: &Step,
) -> Result<(Outcome, String), Violation> {
    let at = Some(index);
    let Step::Send {
        snap,
        from,
        target,
        dedup,
        force,
        origin,
    } = step
    else {
        unreachable!("a send step");
    };
    let (
        src_pool,
        dst_pool,
        injector,
        source,
        changed,
        expect,
        before_model,
        before_space,
        before_counts,
    ) = {
        let mut w = world.borrow_mut();
        // A receive starts from synced pools, as `zfs recv` does.
        for h in 0..2 {
            if w.sync(h, "before a send").is_err() {
                w.hosts[h].disk.crash_now(FaultKind::Crash);
                w.recover(h, at, "a failed sync")?;
            }
        }
        // A recovery just now may have taken the snapshots back.
        if let Some(why) = w.skip_reason(step) {
            return Ok((
                Outcome::Skipped,
                format!("{why} (after the pool was imported again)"),
            ));
        }
        w.draw_step_faults(&[0, 1]);
        let src = &w.hosts[0].model;
        let source = src.get(snap).expect("checked").clone();
        let from_guid = from.as_ref().map(|f| src.get(f).expect("checked").guid);
        let changed = src.changed_since(from.as_deref(), snap);
        let snapname = snap.split('@').nth(1).unwrap_or_default().to_string();
        let dst = &w.hosts[1].model;
        let expect = dst.expect_receive(
            &source,
            from_guid,
            target,
            &snapname,
            *force,
            origin.as_deref(),
        );
        let before_model = dst.clone();
        let before_space = w.space(1);
        (
            w.hosts[0].pool.clone(),
            w.hosts[1].pool.clone(),
            w.injector.clone(),
            source,
            changed,
            expect,
            before_model,
            before_space,
            w.injector.counts(),
        )
    };
    let spec = TransferSpec {
        tosnap: snap.clone(),
        fromsnap: from.clone(),
        dedup: *dedup,
        target: target.clone(),
        force: *force,
        origin: origin.clone(),
    };
    let options = world.borrow().options.clone();
    let outcome = transfer(&src_pool, &dst_pool, &spec, &options, &injector).await;
    let mut w = world.borrow_mut();
    let src_model = w.hosts[0].model.clone();
    w.hosts[0].candidates.push(src_model);
    let faulted = failing(&w.injector.counts()) > failing(&before_counts)
        || w.hosts
            .iter()
            .any(|h| h.disk.is_damaged() || h.disk.is_down() || h.pool.borrow().is_suspended());
    let snapname = snap.split('@').nth(1).unwrap_or_default().to_string();
    let mut after = before_model.clone();
    after.receive(&source, changed, target, &snapname, origin.as_deref());
    let received = matches!(outcome.recv, Some(Ok(_)));
    // The received state may be durable: a receive that returned, whatever
    // failed after it (the txg-sync task runs alongside the transfer), or
    // one a power loss cut short after its last sync.
    if received || matches!(expect, Expect::Match | Expect::Either(_)) {
        w.hosts[1].candidates.push(after.clone());
    }
    let bytes = outcome.bytes_sent;
    let order = format!("{:?}", outcome.byte_order);
    // The sender's pool lost power or failed a sync: it is imported
    // again; that changes nothing for the receiver.
    {
        let src = &w.hosts[0];
        if src.disk.is_down() || src.pool.borrow().is_suspended() {
            w.recover(0, at, "a power loss or failed sync while sending")?;
        }
    }
    // The receiver's did: it must come back before or after the receive.
    let dst_failed = {
        let dst = &w.hosts[1];
        dst.disk.is_down() || dst.pool.borrow().is_suspended()
    };
    if dst_failed {
        w.recover(1, at, "a power loss or failed sync while receiving")?;
        let dst_now = w.hosts[1].model.clone();
        let how = if dst_now == after {
            "received, then a power loss"
        } else {
            "not received: power loss or failed sync"
        };
        return Ok((Outcome::Faulted, format!("{how} ({bytes} bytes, {order})")));
    }
    let injector = w.injector.clone();
    let dst = &mut w.hosts[1];
    let damaged = dst.disk.is_damaged();
    match &outcome.recv {
        Some(Ok(_)) => {
            let mut pool = dst.pool.borrow_mut();
            // `after` holds the source snapshot (objects, guid, creation)
            // as `target@snap`: one comparison judges it and the rest.
            let judged = injector.suspended(|| compare_pool(&mut pool, &after));
            drop(pool);
            match judged {
                Ok(()) => {}
                Err(Mismatch::Unreadable(_)) if damaged || faulted => {}
                Err(m) => {
                    return Err(violation(
                        at,
                        format!("{target}@{snapname} to match {snap}"),
                        m.to_string(),
                    ));
                }
            }
            if let Expect::Refuse(errnos) = &expect
                && !faulted
            {
                return Err(violation(
                    at,
                    format!("the receive to be refused with {errnos:?}"),
                    "it was received",
                ));
            }
            dst.model = after;
            w.heal(at)?;
            Ok((Outcome::Match, format!("{bytes} bytes, {order}")))
        }
        Some(Err(e)) => judge_refusal(
            &mut w,
            at,
            &before_model,
            &before_space,
            e,
            &expect,
            faulted,
            bytes,
        ),
        None => {
            let e = match &outcome.send {
                Err(e) => e.clone(),
                Ok(_) => Error::new(Errno::EINVAL, "nothing was received"),
            };
            if !faulted {
                return Err(violation(at, format!("`{step}` to send"), e.to_string()));
            }
            judge_refusal(
                &mut w,
                at,
                &before_model,
                &before_space,
                &e,
                &Expect::Either(Vec::new()),
                faulted,
                bytes,
            )
        }
    }
}

/// A receive that failed: the target must be exactly as before, and
/// without a fault the failure must be one the model expected.
#[allow(clippy::too_many_arguments)]
fn judge_refusal(
    w: &mut World,
    at: Option<usize>,
    before_model: &PoolModel,
    before_space: &[String],
    e: &Error,
    expect: &Expect,
    faulted: bool,
    bytes: u64,
) -> Result<(Outcome, String), Violation> {
    let injector = w.injector.clone();
    let damaged = w.hosts[1].disk.is_damaged();
    let judged = {
        let mut pool = w.hosts[1].pool.borrow_mut();
        injector.suspended(|| compare_pool(&mut pool, before_model))
    };
    match judged {
        Ok(()) => {}
        Err(Mismatch::Unreadable(_)) if damaged => {}
        Err(m) => {
            return Err(violation(
                at,
                format!("the refused receive ({e}) to leave the target as it was"),
                m.to_string(),
            ));
        }
    }
    let space = w.space(1);
    if space != before_space {
        let diff: Vec<&String> = space.iter().filter(|l| !before_space.contains(l)).collect();
        return Err(violation(
            at,
            format!("the refused receive ({e}) to leave every dataset's space as it was"),
            format!("{diff:?}"),
        ));
    }
    if !faulted {
        match expect {
            Expect::Match => {
                return Err(violation(
                    at,
                    "the receive to succeed and match",
                    e.to_string(),
                ));
            }
            Expect::Refuse(errnos) if !errnos.contains(&e.errno()) => {
                return Err(violation(
                    at,
                    format!("a refusal with {errnos:?}"),
                    e.to_string(),
                ));
            }
            _ => {}
        }
    }
    Ok((Outcome::Destroyed, format!("{e} ({bytes} bytes)")))
}
