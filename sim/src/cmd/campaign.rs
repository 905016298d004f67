//! `cargo sim campaign`: many seeds of one scenario, spread over worker
//! threads, added up into a report.
//!
//! Each seed is the same run `cargo sim run --seed N` makes: the runner
//! builds its own madsim runtime on the thread that calls it, so worker
//! threads run seeds side by side without touching each other. Results are
//! written in seed order as they come (one finished ahead of an earlier
//! seed waits for it), so the output is the same however the threads were
//! scheduled, and memory does not grow with the seeds run. The wall clock
//! is read for one thing only: `--time` decides when to stop taking new
//! seeds.

// Without the simulator only the argument checks below are used.
#![cfg_attr(not(madsim), allow(dead_code))]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::EXIT_USAGE;

/// Where `--report` without a directory writes.
pub const DEFAULT_REPORT_DIR: &str = "reports/out/latest";
/// Seeds run when neither --seeds nor --time is given.
const DEFAULT_SEEDS: (u64, u64) = (0, 100);

/// Run many seeds of a scenario across worker threads, and report what
/// they found: runs with and without a violation, step outcomes, faults
/// fired by kind, engine error sites hit, step kinds covered, and every
/// failing seed with the command that replays it.
///
/// Prints a short summary (and a progress bar on standard error when it is
/// a terminal). Exits with status 1 if any seed found a violation, 0 if
/// none did, 2 on a usage error.
#[derive(Debug, Args)]
#[command(after_long_help = FILES_HELP)]
pub struct CampaignArgs {
    /// Seeds to run: `A..B` runs A, A+1, ..., B-1. With --time, `A..`
    /// starts at A and runs until the time is spent (with `A..B` it also
    /// stops at B). Default: 0..100, or 0.. with --time.
    #[arg(long, value_name = "A..B")]
    pub seeds: Option<String>,
    /// Wall-clock budget, e.g. 90s, 10m, 1h, 1h30m: keep taking seeds
    /// upward from the start of --seeds until it is spent; seeds already
    /// running finish. It only decides how many seeds run, never what a
    /// seed does.
    #[arg(long, value_name = "DUR")]
    pub time: Option<String>,
    /// Worker threads, each running one seed at a time (default: the
    /// available parallelism).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run shard K of N (K in 0..N): only the seeds with seed % N == K, so
    /// that N machines (a CI matrix, an indexed Job, a Slurm array) split
    /// one campaign and `cargo sim report merge` joins their reports.
    /// See also --shards.
    #[arg(long, value_name = "K/N", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Run one of N shards, taking K from the scheduler's environment:
    /// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or
    /// SLURM_ARRAY_TASK_ID (a Slurm array, run as --array=0-(N-1)). Exactly
    /// one of them must be set (or both, equal), to a K in 0..N. The
    /// environment is read only when the shard count is given, here or by
    /// ZSIM_SHARDS: an index alone never shards a campaign, and --shard K/N
    /// wins over both (giving it with --shards is an error).
    #[arg(long, value_name = "N", env = "ZSIM_SHARDS")]
    pub shards: Option<u64>,
    /// A named scenario (mix, smoke, incremental-chain, clone-send, dedup,
    /// reclaim-blocksize, holes, crash-during-recv, foreign-endian,
    /// interrupted-send, deep, zpl, misuse, concurrent, destroy-during-send,
    /// recv-while-target-changes, two-receivers, replicate, redundant) or a path to a scenario
    /// .toml file.
    #[arg(long, default_value = "mix", value_name = "NAME|FILE")]
    pub scenario: String,
    /// Fault plan for every seed: `swarm` (each kind on or off, rates drawn
    /// from the seed), `all` (every kind on, rates drawn from the seed),
    /// `none`, or kinds with optional rates, e.g. `torn,eio-read:0.01`.
    /// Default: the scenario's plan.
    #[arg(long, value_name = "PLAN")]
    pub faults: Option<String>,
    /// Steps each seed generates (default: the scenario's).
    #[arg(long, value_name = "K")]
    pub steps: Option<usize>,
    /// Write results.jsonl, report.md, report.html, timing.json and
    /// failures/seed-N.toml to DIR
    /// (default when DIR is left out: reports/out/latest). Without
    /// --report nothing is written; the summary is printed either way.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = DEFAULT_REPORT_DIR)]
    pub report: Option<PathBuf>,
    /// Plant a known engine bug in every seed (self-test only).
    #[arg(long, hide = true)]
    pub plant: Vec<String>,
}

const FILES_HELP: &str = "\
Report directory (--report DIR):
  results.jsonl   one JSON object per seed, in seed order: seed, scenario,
                  fault_spec (as asked), plan (as resolved), steps, outcomes
                  (ok, match, cleanly-destroyed, faulted, skipped, violation),
                  violation ({step, expected, found} or null; a run that
                  panicked has \"panicked\": true and no step), faults
                  (fired, by kind), error_sites, step_kinds, trace_hash,
                  virtual_time_ns, replay (the command that runs the seed
                  again)
  report.md       the summary as markdown tables: no wall-clock figures, so
                  the same seeds give the same report; written when the
                  campaign ends (results.jsonl and failures/ fill as seeds
                  finish, and an earlier report.md is removed at the start)
  report.html     the same summary as one self-contained page: charts of
                  step outcomes, faults fired per kind and error-site hits
                  per source file (inline SVG), violations by rule, and
                  seeds/s from timing.json
  timing.json     {\"seeds\": N, \"wall_secs\": S}: the only wall-clock
                  figures kept (`cargo sim report trend` shows seeds/s)
  failures/       seed-N.toml for each failing seed, for `cargo sim replay`:
                    seed = N
                    scenario = \"mix\"
                    faults = \"<the resolved plan>\"
                    steps = [\"<step line>\", ...]   # the steps as run
                    violation = \"expected ..., found ...\"
                    planted = []
                  (none for a panicked run: its steps are unknown; use its
                  replay command); earlier failures/seed-*.toml in DIR are
                  removed first

Sharding from the environment (--shards N, or ZSIM_SHARDS=N):
  the shard index K is JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or
  SLURM_ARRAY_TASK_ID (Slurm array); deploy/k8s, deploy/slurm and
  deploy/local hold examples that run N shards and merge their reports.

Examples:
  cargo sim campaign --seeds 0..300 --faults all --jobs 2 --report
  cargo sim campaign --time 40m --shard 3/8 --faults all --report reports/shard-3
  JOB_COMPLETION_INDEX=3 cargo sim campaign --time 40m --shards 8 --report reports/shard-3
  cargo sim report merge reports/shard-* --out reports/nightly
  cargo sim report trend nightly/2026-12-04 nightly/2026-12-05 nightly/2026-12-06";

/// What the command line asked for, checked.
#[derive(Clone, Debug, PartialEq)]
struct Range {
    start: u64,
    /// Exclusive; None: until the time is spent.
    end: Option<u64>,
    time: Option<Duration>,
    /// (K, N).
    shard: (u64, u64),
}

/// Parses `A..B` (or `A..` when `open` is allowed).
fn parse_seeds(text: &str, open: bool) -> Result<(u64, Option<u64>), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("--seeds {text:?}: expected A..B (half-open), e.g. 0..100"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds {text:?}: {s:?} is not a seed number"))
    };
    let start = number(a)?;
    if b.trim().is_empty() {
        if open {
            return Ok((start, None));
        }
        return Err(format!(
            "--seeds {text:?}: an open range runs until --time is spent; give --time or an end"
        ));
    }
    let end = number(b)?;
    if end <= start {
        return Err(format!(
            "--seeds {text:?}: the range is empty (A..B runs A up to B-1)"
        ));
    }
    Ok((start, Some(end)))
}

/// Parses a duration: numbers with units h, m, s, e.g. `90s`, `10m`,
/// `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let total = parse_span(text, "--time")?;
    if total.is_zero() {
        return Err(format!("--time {text:?}: the budget must be more than 0"));
    }
    Ok(total)
}

/// Parses a duration that may be zero, naming `flag` in its error.
pub(crate) fn parse_span(text: &str, flag: &str) -> Result<Duration, String> {
    let bad = || format!("{flag} {text:?}: expected a duration such as 90s, 10m, 1h or 1h30m");
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut units = 0;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
        units += 1;
    }
    if !digits.is_empty() || units == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// The environment variables a scheduler sets to a task's index, in the
/// order they are named in messages.
pub const SHARD_INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// Shard K of `n`, K taken from whichever of [`SHARD_INDEX_VARS`] `env`
/// has (both may be set only to the same index).
fn shard_from_env(n: u64, env: impl Fn(&str) -> Option<String>) -> Result<(u64, u64), String> {
    let mut found: Option<(&str, String)> = None;
    for var in SHARD_INDEX_VARS {
        let Some(value) = env(var) else { continue };
        match &found {
            Some((first, k)) if k.trim() != value.trim() => {
                return Err(format!(
                    "--shards {n}: {first}={k} and {var}={value} disagree on the shard index"
                ));
            }
            Some(_) => {}
            None => found = Some((var, value)),
        }
    }
    let (var, value) = found.ok_or_else(|| {
        format!(
            "--shards {n}: the shard index comes from {} or {}, and neither is set \
             (use --shard K/N outside a Job or array)",
            SHARD_INDEX_VARS[0], SHARD_INDEX_VARS[1]
        )
    })?;
    let k: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("--shards {n}: {var}={value:?} is not a shard index"))?;
    if n == 0 || k >= n {
        return Err(format!(
            "--shards {n}: {var}={k} is not in 0..{n} (a Slurm array runs as --array=0-{})",
            n.saturating_sub(1)
        ));
    }
    Ok((k, n))
}

/// Parses `K/N`.
fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {text:?}: expected K/N with K in 0..N, e.g. 0/8");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

impl Range {
    fn from_args(args: &CampaignArgs) -> Result<Range, String> {
        let time = args.time.as_deref().map(parse_duration).transpose()?;
        let (start, end) = match (&args.seeds, time) {
            (Some(s), _) => parse_seeds(s, time.is_some())?,
            (None, Some(_)) => (0, None),
            (None, None) => (DEFAULT_SEEDS.0, Some(DEFAULT_SEEDS.1)),
        };
        let shard = match (args.shard.as_deref(), args.shards) {
            (Some(text), _) => parse_shard(text)?,
            (None, Some(n)) => shard_from_env(n, |var| std::env::var(var).ok())?,
            (None, None) => (0, 1),
        };
        Ok(Range {
            start,
            end,
            time,
            shard,
        })
    }

    /// The first seed of the shard, if there is one.
    fn first(&self) -> Option<u64> {
        let (k, n) = self.shard;
        let r = self.start % n;
        let offset = if k >= r { k - r } else { n - (r - k) };
        let first = self.start.checked_add(offset)?;
        match self.end {
            Some(end) if first >= end => None,
            _ => Some(first),
        }
    }

    /// Seeds in the range and shard, when it has an end.
    fn count(&self) -> Option<u64> {
        let end = self.end?;
        Some(self.first().map_or(0, |f| (end - 1 - f) / self.shard.1 + 1))
    }

    /// `A..B`, or `A..` for an open range.
    fn describe(&self) -> String {
        let mut text = match self.end {
            Some(end) => format!("seeds {}..{end}", self.start),
            None => format!("seeds {}..", self.start),
        };
        if self.shard.1 > 1 {
            text += &format!(" shard {}/{}", self.shard.0, self.shard.1);
        }
        if let Some(time) = self.time {
            text += &format!(" for {}s", time.as_secs());
        }
        text
    }
}

#[cfg(not(madsim))]
pub fn run(_args: &CampaignArgs) -> ExitCode {
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(madsim)]
pub fn run(args: &CampaignArgs) -> ExitCode {
    match exec::campaign(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cargo sim campaign: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// A run's result as campaigns record it, for `cargo sim corpus`.
#[cfg(madsim)]
pub(crate) use exec::from_report;

/// What a panic said, for the report that records it.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(madsim)]
mod exec {
    use std::cell::RefCell;

    use super::panic_message;
    use std::collections::BTreeMap;
    use std::io::IsTerminal;
    use std::panic::AssertUnwindSafe;
    use std::process::ExitCode;
    use std::sync::Mutex;
    use std::sync::mpsc;
    use std::time::Instant;

    use indicatif::{ProgressBar, ProgressStyle};
    use reports::dir::{ReportDir, ReportWriter};
    use reports::render::render_text;
    use reports::result::{Outcomes, SeedResult, Violation};
    use reports::summary::SummaryBuilder;

    use super::{CampaignArgs, Range};
    use crate::cmd::{EXIT_FAILURE, report};
    use crate::runner::failure::Failure;
    use crate::runner::text::replay_command;
    use crate::runner::{Faults, Outcome, RunConfig, RunReport};
    use crate::world::faults::{FaultKind, FaultSpec};

    /// Hands out seeds in increasing order, to any thread that asks.
    struct Seeds {
        next: Mutex<Option<u64>>,
        end: Option<u64>,
        step: u64,
        deadline: Option<Instant>,
    }

    impl Seeds {
        fn new(range: &Range, started: Instant) -> Seeds {
            Seeds {
                next: Mutex::new(range.first()),
                end: range.end,
                step: range.shard.1,
                deadline: range.time.map(|t| started + t),
            }
        }

        fn take(&self) -> Option<u64> {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            let mut next = self.next.lock().expect("no thread panics holding it");
            let seed = (*next)?;
            if self.end.is_some_and(|end| seed >= end) {
                return None;
            }
            *next = seed.checked_add(self.step);
            Some(seed)
        }
    }

    /// One seed's result, and its failure file if it failed.
    pub(crate) struct Done {
        pub(crate) result: SeedResult,
        pub(crate) failure: Option<String>,
    }

    /// What a campaign runs: the command line, checked.
    struct Plan {
        range: Range,
        template: RunConfig,
        fault_spec: FaultSpec,
        jobs: usize,
        /// The scenario file's path, for a scenario read from a file: its
        /// seeds are replayed from the same path.
        scenario_arg: Option<String>,
    }

    impl Plan {
        fn from_args(args: &CampaignArgs) -> Result<Plan, String> {
            let range = Range::from_args(args)?;
            let template = RunConfig::from_options(
                0,
                &args.scenario,
                args.faults.as_deref(),
                args.steps,
                &args.plant,
            )?;
            let Faults::Spec(fault_spec) = template.faults.clone() else {
                unreachable!("from_options takes a spec")
            };
            let jobs = match args.jobs {
                Some(0) => return Err("--jobs 0: at least one worker is needed".into()),
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            // No more workers than seeds.
            let jobs = range.count().map_or(jobs, |n| {
                jobs.min(usize::try_from(n).unwrap_or(jobs)).max(1)
            });
            let builtin = scenarios::spec::BUILTIN
                .iter()
                .any(|(name, _)| *name == args.scenario);
            let scenario_arg = (!builtin).then(|| args.scenario.clone());
            Ok(Plan {
                range,
                template,
                fault_spec,
                jobs,
                scenario_arg,
            })
        }
    }

    pub(super) fn campaign(args: &CampaignArgs) -> Result<ExitCode, String> {
        let plan = Plan::from_args(args)?;
        println!(
            "campaign: scenario {}, faults {}, {}, {} jobs",
            plan.template.spec.name,
            plan.fault_spec,
            plan.range.describe(),
            plan.jobs
        );
        let report_dir = args.report.as_deref().map(ReportDir::new);
        let mut out = report_dir.as_ref().map(ReportDir::create).transpose()?;
        let mut summary = report::summary_builder();
        record_panic_locations();
        let started = Instant::now();
        let finished = run_seeds(&plan, started, &mut summary, out.as_mut())?;
        let elapsed = started.elapsed();

        let summary = summary.finish();
        let timing = reports::render::Timing {
            seeds: finished,
            wall_secs: elapsed.as_secs_f64(),
        };
        let failures = match out {
            Some(out) => out.finish(&summary, Some(timing))?,
            None => 0,
        };
        print!("{}", render_text(&summary));
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "wall clock: {} seeds in {:.1}s, {:.2} seeds/s ({:.2} per job)",
            finished,
            secs,
            finished as f64 / secs,
            finished as f64 / secs / plan.jobs as f64
        );
        if let Some(dir) = &report_dir {
            println!("{}", dir.files_line(failures));
        }
        Ok(if summary.with_violation > 0 {
            ExitCode::from(EXIT_FAILURE)
        } else {
            ExitCode::SUCCESS
        })
    }

    /// Runs the plan's seeds on its worker threads, adding each result to
    /// `summary` and writing it to `out` in seed order; returns the number
    /// of seeds run.
    fn run_seeds(
        plan: &Plan,
        started: Instant,
        summary: &mut SummaryBuilder,
        mut out: Option<&mut ReportWriter>,
    ) -> Result<u64, String> {
        let seeds = Seeds::new(&plan.range, started);
        let bar = progress_bar(&plan.range);
        let mut order = InOrder::new(plan.range.first(), plan.range.shard.1);
        let mut finished = 0u64;
        let mut violations = 0u64;
        std::thread::scope(|scope| -> Result<(), String> {
            let (tx, rx) = mpsc::channel::<(u64, Done)>();
            for i in 0..plan.jobs {
                let tx = tx.clone();
                let seeds = &seeds;
                std::thread::Builder::new()
                    .name(format!("campaign-{i}"))
                    // The engine recurses through block trees: give workers
                    // the main thread's room.
                    .stack_size(16 << 20)
                    .spawn_scoped(scope, move || {
                        while let Some(seed) = seeds.take() {
                            let done = run_seed(
                                seed,
                                &plan.template,
                                &plan.fault_spec,
                                plan.scenario_arg.as_deref(),
                            );
                            if tx.send((seed, done)).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            }
            drop(tx);
            // An error returned here drops the receiver: workers stop after
            // the seed they are running.
            for (seed, d) in rx {
                violations += u64::from(d.result.violation.is_some());
                finished += 1;
                summary.add(&d.result);
                if let Some(out) = out.as_deref_mut() {
                    if let Some(failure) = &d.failure {
                        out.failure(seed, failure)?;
                    }
                    for r in order.push(seed, d.result) {
                        out.result(&r)?;
                    }
                }
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                bar.inc(1);
                bar.set_message(format!(
                    "violations {violations}, {:.1} seeds/s",
                    finished as f64 / secs
                ));
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        if let Some(out) = out {
            // Every seed taken yields one result, so nothing is left
            // waiting; should one be missing, the rest still go out.
            for r in order.rest() {
                out.result(&r)?;
            }
        }
        Ok(finished)
    }

    /// Results put back in seed order. Workers finish seeds in any order,
    /// but take them in increasing order, so only the seeds finished while
    /// an earlier one still runs wait here.
    struct InOrder {
        /// The seed to go out next; None: none will.
        next: Option<u64>,
        step: u64,
        waiting: BTreeMap<u64, SeedResult>,
    }

    impl InOrder {
        fn new(first: Option<u64>, step: u64) -> InOrder {
            InOrder {
                next: first,
                step,
                waiting: BTreeMap::new(),
            }
        }

        /// Takes `seed`'s result; returns those now due, in order.
        fn push(&mut self, seed: u64, result: SeedResult) -> Vec<SeedResult> {
            self.waiting.insert(seed, result);
            let mut due = Vec::new();
            while let Some(r) = self.next.and_then(|next| self.waiting.remove(&next)) {
                due.push(r);
                self.next = self.next.and_then(|next| next.checked_add(self.step));
            }
            due
        }

        /// Whatever is still waiting, in order.
        fn rest(self) -> impl Iterator<Item = SeedResult> {
            self.waiting.into_values()
        }
    }

    /// A progress bar on standard error, drawn only when it is a terminal
    /// and only when a seed finishes (no ticking thread).
    fn progress_bar(range: &Range) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let (bar, template) = match range.count() {
            Some(n) => (
                ProgressBar::new(n),
                "{elapsed_precise} [{wide_bar}] {pos}/{len} seeds, {msg}".to_string(),
            ),
            None => (
                ProgressBar::no_length(),
                format!(
                    "{{elapsed_precise}} of {}s: {{pos}} seeds, {{msg}}",
                    range.time.map_or(0, |t| t.as_secs())
                ),
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("violations 0");
        bar
    }

    thread_local! {
        /// Where this thread last panicked, as the panic hook saw it.
        static PANICKED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Records where each panic happens (the payload does not say), then
    /// does what the hook did before.
    fn record_panic_locations() {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(at) = info.location() {
                PANICKED_AT.with(|p| *p.borrow_mut() = Some(at.to_string()));
            }
            previous(info);
        }));
    }

    fn run_seed(
        seed: u64,
        template: &RunConfig,
        fault_spec: &FaultSpec,
        scenario_arg: Option<&str>,
    ) -> Done {
        let mut config = template.clone();
        config.seed = seed;
        PANICKED_AT.with(|p| p.borrow_mut().take());
        // Turning the report into a result is inside too: a seed taken
        // yields one result whatever happens, which the campaign's
        // in-order writing counts on.
        let run = || from_report(&crate::runner::run(&config), fault_spec, scenario_arg);
        match std::panic::catch_unwind(AssertUnwindSafe(run)) {
            Ok(done) => done,
            Err(panic) => {
                let mut message = format!("panic: {}", panic_message(&panic));
                if let Some(at) = PANICKED_AT.with(|p| p.borrow_mut().take()) {
                    message = format!("panic at {at}: {}", panic_message(&panic));
                }
                from_panic(&config, fault_spec, scenario_arg, message)
            }
        }
    }

    /// The replay command, naming a scenario file by the path it was given.
    fn replay(report: &RunReport, scenario_arg: Option<&str>) -> String {
        let command = replay_command(report);
        match scenario_arg {
            Some(path) => command.replacen(
                &format!(" --scenario {} ", report.scenario),
                &format!(" --scenario {path} "),
                1,
            ),
            None => command,
        }
    }

    fn fault_counts(get: impl Fn(FaultKind) -> u64) -> std::collections::BTreeMap<String, u64> {
        FaultKind::ALL
            .iter()
            .map(|k| (k.name().to_string(), get(*k)))
            .collect()
    }

    pub(crate) fn from_report(
        report: &RunReport,
        fault_spec: &FaultSpec,
        scenario_arg: Option<&str>,
    ) -> Done {
        let violation = report.violation.as_ref().map(|v| Violation {
            step: v.step.map(|s| s as u64),
            expected: v.expected.clone(),
            found: v.found.clone(),
            panicked: false,
        });
        let count = |o: Outcome| report.count(o) as u64;
        let result = SeedResult {
            seed: report.seed,
            scenario: report.scenario.clone(),
            fault_spec: fault_spec.to_string(),
            plan: report.plan.to_string(),
            planted: report.planted.iter().map(ToString::to_string).collect(),
            steps: report.steps.len() as u64,
            outcomes: Outcomes {
                ok: count(Outcome::Done),
                matched: count(Outcome::Match),
                cleanly_destroyed: count(Outcome::Destroyed),
                faulted: count(Outcome::Faulted),
                skipped: count(Outcome::Skipped),
                violation: count(Outcome::Violation),
            },
            violation,
            lost: report.lost.clone(),
            faults: fault_counts(|k| report.faults.get(k)),
            error_sites: report.error_sites.clone(),
            step_kinds: report
                .step_kinds()
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            trace_hash: report.trace_hash.clone(),
            virtual_time_ns: u64::try_from(report.virtual_time.as_nanos()).unwrap_or(u64::MAX),
            replay: replay(report, scenario_arg),
            reach: report.reach.clone(),
        };
        let failure = report.violation.is_some().then(|| {
            let mut file = Failure::from_report(report);
            if let Some(path) = scenario_arg {
                file.scenario = path.to_string();
            }
            file.to_toml()
        });
        Done { result, failure }
    }

    /// A seed whose run panicked: a violation at no step, with no steps to
    /// save (the replay command regenerates them).
    fn from_panic(
        config: &RunConfig,
        fault_spec: &FaultSpec,
        scenario_arg: Option<&str>,
        message: String,
    ) -> Done {
        let plan = config.plan().to_string();
        let steps = config.steps.unwrap_or(config.spec.steps);
        let mut replay = format!(
            "cargo sim run --seed {} --scenario {} --faults {plan} --steps {steps}",
            config.seed,
            scenario_arg.unwrap_or(&config.spec.name)
        );
        for bug in &config.planted {
            replay += &format!(" --plant {bug}");
        }
        let result = SeedResult {
            seed: config.seed,
            scenario: config.spec.name.clone(),
            fault_spec: fault_spec.to_string(),
            plan,
            planted: config.planted.iter().map(ToString::to_string).collect(),
            steps: 0,
            outcomes: Outcomes::default(),
            violation: Some(Violation {
                step: None,
                expected: "the run to end without a panic".into(),
                found: message,
                panicked: true,
            }),
            lost: None,
            faults: fault_counts(|_| 0),
            error_sites: Default::default(),
            step_kinds: Default::default(),
            trace_hash: String::new(),
            virtual_time_ns: 0,
            replay,
            reach: Default::default(),
        };
        Done {
            result,
            failure: None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn result(seed: u64) -> SeedResult {
            SeedResult {
                seed,
                scenario: "smoke".into(),
                fault_spec: "none".into(),
                plan: "none".into(),
                planted: Vec::new(),
                steps: 0,
                outcomes: Outcomes::default(),
                violation: None,
                lost: None,
                faults: Default::default(),
                error_sites: Default::default(),
                step_kinds: Default::default(),
                trace_hash: String::new(),
                virtual_time_ns: 0,
                replay: String::new(),
                reach: Default::default(),
            }
        }

        fn seeds(results: Vec<SeedResult>) -> Vec<u64> {
            results.into_iter().map(|r| r.seed).collect()
        }

        #[test]
        fn results_go_out_in_seed_order_as_soon_as_they_are_due() {
            // Shard 2/3 of 5..: seeds 5, 8, 11, 14, 17.
            let mut order = InOrder::new(Some(5), 3);
            assert!(order.push(11, result(11)).is_empty());
            assert!(order.push(8, result(8)).is_empty());
            assert_eq!(seeds(order.push(5, result(5))), [5, 8, 11]);
            assert_eq!(seeds(order.push(14, result(14))), [14]);
            assert!(order.push(20, result(20)).is_empty());
            assert_eq!(seeds(order.rest().collect()), [20]);

            let mut order = InOrder::new(Some(u64::MAX), 1);
            assert_eq!(seeds(order.push(u64::MAX, result(u64::MAX))), [u64::MAX]);
            assert_eq!(order.rest().count(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_as_documented() {
        assert_eq!(parse_seeds("0..6", false), Ok((0, Some(6))));
        assert_eq!(parse_seeds(" 10 .. 20 ", false), Ok((10, Some(20))));
        assert_eq!(parse_seeds("7..", true), Ok((7, None)));
        assert!(parse_seeds("7..", false).unwrap_err().contains("--time"));
        assert!(parse_seeds("5..5", false).unwrap_err().contains("empty"));
        assert!(parse_seeds("5..2", false).unwrap_err().contains("empty"));
        assert!(parse_seeds("5", false).unwrap_err().contains("A..B"));
        assert!(
            parse_seeds("a..3", false)
                .unwrap_err()
                .contains("not a seed")
        );
    }

    #[test]
    fn durations_parse_as_documented() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "10", "m", "10x", "1.5h", "-3s", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_shard_index_comes_from_one_scheduler_variable() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(v, _)| *v == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        assert_eq!(
            shard_from_env(3, env(&[("JOB_COMPLETION_INDEX", "2")])),
            Ok((2, 3))
        );
        assert_eq!(
            shard_from_env(8, env(&[("SLURM_ARRAY_TASK_ID", "0")])),
            Ok((0, 8))
        );
        assert_eq!(
            shard_from_env(
                4,
                env(&[("JOB_COMPLETION_INDEX", "1"), ("SLURM_ARRAY_TASK_ID", "1")])
            ),
            Ok((1, 4))
        );
        let err = |vars| shard_from_env(4, env(vars)).unwrap_err();
        assert!(err(&[]).contains("neither is set"));
        assert!(
            err(&[("JOB_COMPLETION_INDEX", "1"), ("SLURM_ARRAY_TASK_ID", "2")])
                .contains("disagree")
        );
        assert!(err(&[("SLURM_ARRAY_TASK_ID", "4")]).contains("not in 0..4"));
        assert!(err(&[("JOB_COMPLETION_INDEX", "x")]).contains("not a shard index"));
        assert!(shard_from_env(0, env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
    }

    #[test]
    fn shards_parse_and_split_the_seeds() {
        assert_eq!(parse_shard("0/8"), Ok((0, 8)));
        assert_eq!(parse_shard("7/8"), Ok((7, 8)));
        for bad in ["8/8", "1/0", "1", "a/2", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad:?}");
        }
        let range = |start, end, shard| Range {
            start,
            end,
            time: None,
            shard,
        };
        assert_eq!(range(0, Some(6), (0, 1)).count(), Some(6));
        assert_eq!(range(0, Some(6), (1, 2)).first(), Some(1));
        assert_eq!(range(0, Some(6), (1, 2)).count(), Some(3));
        assert_eq!(range(5, Some(6), (0, 2)).count(), Some(0));
        assert_eq!(range(5, Some(20), (2, 8)).first(), Some(10));
        assert_eq!(range(5, Some(20), (2, 8)).count(), Some(2));
        assert_eq!(range(5, None, (2, 8)).count(), None);
        assert_eq!(range(u64::MAX - 1, None, (0, 4)).first(), None);
        // The shards of a range partition it.
        for n in 1..5 {
            let total: u64 = (0..n)
                .map(|k| range(3, Some(40), (k, n)).count().unwrap())
                .sum();
            assert_eq!(total, 37);
        }
    }
}
