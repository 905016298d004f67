//! The run itself: the world set up from the options, the txg-sync task,
//! the workload loop that takes each step and records its verdict, and the
//! final check once the workload is done.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use engine::error::SiteLog;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use scenarios::generate::{DST, Generator, SRC};
use scenarios::model::PoolModel;
use scenarios::oracle::{Mismatch, compare_pool_with};
use scenarios::step::Step;

use super::hosts::{Host, World, judge_check, violation};
use super::step::run_step;
use super::{Outcome, RunConfig, RunReport, StepRecord, Violation};
use crate::world::clock::SimClock;
use crate::world::faults::FaultCounts;
use crate::world::injector::Injector;
use crate::world::probes::install_probes;
use crate::world::streams::Streams;
use crate::world::trace::Trace;

/// The workload task, which is the run.
pub(super) async fn simulate(config: RunConfig) -> RunReport {
    let streams = Streams::new(config.seed);
    let trace = Trace::new(config.verbose);
    let clock = SimClock::current();
    let options = config.world();
    let injector = Injector::new(&streams, trace.clone(), clock.clone());
    let sites = SiteLog::start();
    let mut report = RunReport {
        seed: config.seed,
        scenario: config.spec.name.clone(),
        world: options.clone(),
        plan: options.plan(),
        planted: config.planted.clone(),
        steps: Vec::new(),
        workload_steps: 0,
        steps_given: config.fixed_steps.is_some() || config.guide.is_some(),
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
        reach: Default::default(),
        images: Vec::new(),
    };
    trace.record(
        clock.elapsed(),
        format!(
            "run seed={} scenario={} faults={}",
            config.seed, config.spec.name, report.plan
        ),
    );
    let hosts = match (
        Host::create(SRC, &options, &injector, &clock, &streams),
        Host::create(DST, &options, &injector, &clock, &streams),
    ) {
        (Ok(s), Ok(d)) => [s, d],
        (Err(e), _) | (_, Err(e)) => {
            report.violation = Some(violation(None, "the pools to be created", e.to_string()));
            return report;
        }
    };
    let world = Rc::new(RefCell::new(World {
        hosts,
        options,
        injector,
        clock,
        streams,
        trace,
        finished: false,
        reach: Default::default(),
        in_flight: None,
    }));
    // After the pools are made: a probe fires only in the run itself.
    let probes = {
        let w = world.borrow();
        install_probes(&w.injector, &w.options.engine)
    };
    let sync_task = madsim::task::spawn_local(txg_sync_task(world.clone()));
    workload(&config, &world, &mut report).await;
    report.workload_steps = report.steps.len();
    if report.violation.is_none() && report.lost.is_none() {
        liveness(&world, &mut report).await;
    }
    if report.violation.is_none() && report.lost.is_none() {
        match final_check(&world).map_err(|v| world.borrow().judged_spent(v)) {
            Err(v) if v.lost => report.lost = Some(format!("{}: {}", v.expected, v.found)),
            result => report.violation = result.err(),
        }
    }
    world.borrow_mut().finished = true;
    if config.save_images {
        let w = world.borrow();
        for host in &w.hosts {
            let bytes = host.disk.with_device(|d| d.durable_bytes().to_vec());
            report.images.push((host.name.to_string(), bytes));
        }
    }
    // Cancelled, not detached: a detached task asleep on a timer outlives
    // the runtime, and with it the whole world (both disks), every run.
    drop(sync_task.cancel_on_drop());
    drop(probes);
    finish(&world.borrow(), &mut report, sites);
    report
}

/// The steps, generated or replayed, each after a think time, until the
/// last or the first that stops the run.
async fn workload(config: &RunConfig, world: &Rc<RefCell<World>>, report: &mut RunReport) {
    let (streams, think_ms_max) = {
        let w = world.borrow();
        (w.streams, w.options.clock.think_time_ms_max)
    };
    let mut generator = Generator::new(config.spec.clone(), streams.stream("workload"));
    let mut think: ChaCha8Rng = streams.stream("think-time");
    let count = match (&config.fixed_steps, &config.guide) {
        (Some(steps), _) => steps.len(),
        (None, Some(guide)) => guide.len(),
        (None, None) => config.steps.unwrap_or(config.spec.steps),
    };
    for index in 0..count {
        let step = match (&config.fixed_steps, &config.guide) {
            (Some(steps), _) => steps[index].clone(),
            (None, Some(guide)) => {
                let w = world.borrow();
                let (kind, seed) = guide[index];
                generator.guided(kind, seed, &w.hosts[0].model, &w.hosts[1].model)
            }
            (None, None) => {
                let w = world.borrow();
                generator.next(&w.hosts[0].model, &w.hosts[1].model)
            }
        };
        madsim::time::sleep(Duration::from_millis(think.gen_range(1..think_ms_max))).await;
        // What reads find lost is judged step by step.
        engine::zio::take_lost_blocks();
        let result = run_step(world, index, &step).await;
        let w = world.borrow();
        if !record(&w, report, index, step, result) {
            break;
        }
    }
}

/// The liveness phase, after the workload (as TigerBeetle's VOPR runs
/// one): faults off for good, then every source filesystem's latest
/// snapshot must reach the destination and match, as an incremental with
/// `-F` onto each target received from that filesystem that lags behind,
/// or whole onto a new target when none was received from it. A pool that faults left unable to send or
/// receive (a `%recv` left behind, a hold never released) fails here.
async fn liveness(world: &Rc<RefCell<World>>, report: &mut RunReport) {
    let steps = {
        let w = world.borrow();
        w.injector.end_faults();
        w.log("liveness: faults off; every source filesystem's latest snapshot must reach dst");
        catch_up_steps(&w.hosts[0].model, &w.hosts[1].model)
    };
    let first = report.steps.len();
    for (i, step) in steps.into_iter().enumerate() {
        engine::zio::take_lost_blocks();
        let result = run_step(world, first + i, &step).await;
        let w = world.borrow();
        if !record(&w, report, first + i, step, result) {
            break;
        }
    }
}

/// The sends that bring `dst` up to date with `src` (see [`liveness`]): an
/// incremental with `-F` onto each target received from a filesystem that
/// lags behind its latest snapshot, and a whole send onto a new target of
/// each filesystem no target was received from.
fn catch_up_steps(src: &PoolModel, dst: &PoolModel) -> Vec<Step> {
    let mut steps = Vec::new();
    for (n, fs) in src.filesystems().filter(|f| f.contains('/')).enumerate() {
        let Some((latest, _)) = src.latest_snapshot(fs) else {
            continue;
        };
        let mut received = false;
        for target in dst.filesystems().filter(|f| f.contains('/')) {
            let Some((_, got)) = dst.latest_snapshot(target) else {
                continue;
            };
            let Some(from) = src.find_guid(got.guid) else {
                continue;
            };
            if from.split('@').next() != Some(fs) {
                continue;
            }
            received = true;
            if from != latest {
                steps.push(Step::Send {
                    snap: latest.to_string(),
                    from: Some(from.to_string()),
                    target: target.to_string(),
                    dedup: false,
                    force: true,
                    origin: None,
                    intermediate: false,
                    replicate: false,
                });
            }
        }
        if !received {
            steps.push(Step::Send {
                snap: latest.to_string(),
                from: None,
                target: format!("{DST}/live{n}"),
                dedup: false,
                force: false,
                origin: None,
                intermediate: false,
                replicate: false,
            });
        }
    }
    steps
}

/// Writes a step's verdict to the trace and the report; false when it
/// ends the run (a violation, or a pool lost beyond its redundancy).
fn record(
    w: &World,
    report: &mut RunReport,
    index: usize,
    step: Step,
    result: Result<(Outcome, String), Violation>,
) -> bool {
    let at = w.now();
    let result = result.map_err(|v| w.judged_spent(v));
    let (outcome, detail, line) = match result {
        Ok((outcome, detail)) => {
            let line = if detail.is_empty() {
                format!("step {index} {step}: {}", outcome.name())
            } else {
                format!("step {index} {step}: {}: {detail}", outcome.name())
            };
            (outcome, detail, line)
        }
        Err(v) if v.lost => {
            let why = format!("{}: {}", v.expected, v.found);
            let line =
                format!("step {index} {step}: stopped: pool lost beyond its redundancy ({why})");
            report.lost = Some(why);
            let detail = format!("pool lost beyond its redundancy: {}", v.found);
            (Outcome::Faulted, detail, line)
        }
        Err(v) => {
            let line = format!(
                "step {index} {step}: VIOLATION: expected {}, found {}",
                v.expected, v.found
            );
            let detail = v.found.clone();
            report.violation = Some(v);
            (Outcome::Violation, detail, line)
        }
    };
    w.trace.record(at, line);
    report.steps.push(StepRecord {
        index,
        at,
        step,
        outcome,
        detail,
    });
    report.violation.is_none() && report.lost.is_none()
}

/// The counters, error sites, final trace lines and hash of a finished run.
fn finish(w: &World, report: &mut RunReport, sites: SiteLog) {
    for host in &w.hosts {
        let stats = host.disk.stats();
        report.disk_writes += stats.writes;
        report.disk_reads += stats.reads;
    }
    if let Some(v) = &report.violation
        && v.step.is_none()
    {
        w.log(format!(
            "final check: VIOLATION: expected {}, found {}",
            v.expected, v.found
        ));
    }
    w.log(format!(
        "end: {} steps, {}",
        report.steps.len(),
        if report.violation.is_some() {
            "VIOLATION"
        } else {
            "no violation"
        }
    ));
    for site in sites.finish() {
        *report.error_sites.entry(site.to_string()).or_default() += 1;
    }
    report.faults = w.injector.counts();
    report.virtual_time = w.now();
    report.trace = w.trace.lines();
    report.trace_hash = w.trace.hash();
    // Last: its reads take virtual time, which the trace must not see.
    report.reach = w.reach.clone();
    report.reach.max_nlevels = w.max_nlevels();
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
        if w.in_flight.as_ref().is_some_and(|p| p.receiving()) {
            w.reach.interleaved("txg-sync-during-recv");
        }
        for h in 0..2 {
            let _ = w.sync(h, "timeout");
        }
    }
}

/// At the end: both pools sync, check clean, and hold what the model says.
fn final_check(world: &Rc<RefCell<World>>) -> Result<(), Violation> {
    engine::zio::take_lost_blocks();
    let mut w = world.borrow_mut();
    w.heal(None)?;
    for h in 0..2 {
        let injector = w.injector.clone();
        let synced = injector.suspended(|| w.sync(h, "end of run"));
        if let Err(e) = synced {
            return Err(violation(None, "a final sync", e.to_string()));
        }
        let host = &mut w.hosts[h];
        let damaged = host.is_damaged();
        let mut pool = host.pool.borrow_mut();
        let model = &host.model;
        let mut verified = host.verified.borrow_mut();
        injector.observe(|| {
            judge_check(
                &mut pool,
                damaged,
                None,
                &format!("{} at the end", host.name),
            )?;
            match compare_pool_with(&mut pool, model, &mut verified) {
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
