//! `cargo sim zoo`: the simulator's self-test against the bugs planted in
//! the engine (`engine::planted`), each re-creating one from ZFS history.
//!
//! For each bug, switched on at run time, seeds are taken upward from 0,
//! each with a scenario and a fault plan picked from the seed (a cycle over
//! the scenarios that give the bugs a chance, under `all`, `swarm` and the
//! scenario's own faults), until one fails with the bug and passes without
//! it, or the time budget is spent. The failing run is then shrunk. A bug
//! made the same way on both sides of a transfer cancels out between two
//! zsim pools, so those are judged by known answers instead: real ZFS
//! streams received with the bug must list as they do without it. Which
//! seed catches a bug depends only on the arguments; the budget decides
//! only how many seeds are tried.

// Without the simulator only the argument checks are used.
#![cfg_attr(not(madsim), allow(dead_code))]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::EXIT_USAGE;
use engine::planted::Bug as Planted;

/// Run the planted-bug zoo: for each bug planted in the engine (each a
/// small deviation re-creating a bug from ZFS history), switch it on, run
/// seeds until the oracle catches it or the time per bug is spent, shrink
/// the failing run, and print a table: bug | caught by | seed | time to
/// detect | shrunk steps | sim_world corpus.
///
/// The last column replays the `sim_world` fuzzer's committed corpus
/// (fuzz/corpus/sim_world) with the bug, under the same time budget: the
/// first input that fails with the bug and passes without it, or how many
/// ran without a catch. It tells what coverage-guided workloads found so
/// far would catch; it does not run the fuzzer.
///
/// Seed N runs scenario SCENARIOS[N % 11] (mix, holes, reclaim-blocksize,
/// dedup, foreign-endian, crash-during-recv, interrupted-send, clone-send,
/// incremental-chain, deep, concurrent) under fault plan `all`, `swarm` or
/// the scenario's own, in turn for each 11 seeds. A seed counts only if it fails with the
/// bug and passes without it. Bugs that cancel out between two zsim pools
/// (the same mistake in the sender and the receiver) are checked against
/// known answers: the real ZFS streams in engine/tests/fixtures/zfs-fuse,
/// received with the bug, must list exactly as without it.
///
/// Exits with status 1 if any bug escaped (listed as ESCAPED), 0 if every
/// one was caught, 2 on a usage error. Which seed catches a bug is the
/// same on every run with the same arguments; only the time budget can cut
/// the search short.
#[derive(Debug, Args)]
pub struct ZooArgs {
    /// Wall-clock budget per bug, e.g. 30s, 2m (0s tries nothing: every
    /// simulated bug escapes). Seeds already running finish.
    #[arg(long, value_name = "DUR", default_value = "60s")]
    pub time_per_bug: String,
    /// Worker threads, each running one seed at a time (default: the
    /// available parallelism). Seeds run in batches of this size and the
    /// lowest failing seed of a batch wins.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Only this bug (repeatable); default: every planted bug.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Print the table as markdown (for a CI job summary).
    #[arg(long)]
    pub markdown: bool,
    /// Runs a shrink may take per caught bug.
    #[arg(long, value_name = "RUNS", default_value_t = 200)]
    pub shrink_budget: usize,
}

/// Scenarios cycled through by seed: between them they write, punch,
/// truncate, reclaim, dedup, clone, swap byte order, crash, interrupt and
/// race a transfer.
pub const SCENARIOS: [&str; 11] = [
    "mix",
    "holes",
    "reclaim-blocksize",
    "dedup",
    "foreign-endian",
    "crash-during-recv",
    "interrupted-send",
    "clone-send",
    "incremental-chain",
    "deep",
    "concurrent",
];

/// Fault plans cycled through, one per round of the scenarios: `None` is
/// the scenario's own plan.
const FAULT_PLANS: [Option<&str>; 3] = [Some("all"), Some("swarm"), None];

/// The scenario and fault plan seed `seed` runs.
pub fn trial(seed: u64) -> (&'static str, Option<&'static str>) {
    let n = SCENARIOS.len() as u64;
    (
        SCENARIOS[(seed % n) as usize],
        FAULT_PLANS[((seed / n) % FAULT_PLANS.len() as u64) as usize],
    )
}

/// Bugs that cancel out between two zsim pools, with why: the simulation
/// cannot see them, known answers can.
pub fn cancels_out(bug: Planted) -> Option<&'static str> {
    match bug {
        Planted::StreamChecksumSkipsPayloads => {
            Some("the writer and the reader compute the same wrong checksum")
        }
        _ => None,
    }
}

/// Chains of real ZFS streams (fixture names, received in order) whose
/// listings are the known answers.
const KNOWN_ANSWER_CHAINS: &[&[&str]] = &[
    &[
        "chain_c1_full",
        "chain_c1_c2_i",
        "chain_c2_c3_i",
        "chain_c3_c4_i",
    ],
    &["small_full"],
    &["sparse_full"],
    &["xattr_full", "xattr_i"],
    &["incr_base_full", "incr_i"],
    &["manyfiles_full", "manyfiles_i"],
];

/// Where the fixtures are in the checkout this binary was built from.
fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/zfs-fuse")
}

/// How one bug fared.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub bug: Planted,
    /// `None` when the bug escaped.
    pub caught: Option<Catch>,
    /// Seeds tried (simulated bugs only).
    pub seeds_tried: u64,
    /// What the `sim_world` fuzzer's corpus did with the bug: the first
    /// input that caught it and how long the replay took, or how many
    /// inputs ran without a catch (`None`: not tried).
    pub corpus: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Catch {
    /// `scenario/faults`, or `known answers (...)`.
    pub by: String,
    pub seed: Option<u64>,
    pub time: Duration,
    /// Steps of the shrunk repro (simulated bugs only).
    pub shrunk_steps: Option<usize>,
    /// What the oracle or the known answer said.
    pub found: String,
}

#[cfg(not(madsim))]
pub fn run(_args: &ZooArgs) -> ExitCode {
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(madsim)]
pub fn run(args: &ZooArgs) -> ExitCode {
    let budget = match super::campaign::parse_span(&args.time_per_bug, "--time-per-bug") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("zoo: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut bugs: Vec<Planted> = Vec::new();
    for name in &args.bugs {
        match name.parse::<Planted>() {
            Ok(bug) if !bugs.contains(&bug) => bugs.push(bug),
            Ok(_) => {}
            Err(e) => {
                eprintln!("zoo: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if bugs.is_empty() {
        bugs = Planted::ALL.to_vec();
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut outcomes = Vec::new();
    for &bug in &bugs {
        eprintln!("zoo: {bug}: {}", bug.description());
        let outcome = match cancels_out(bug) {
            Some(_) => known_answers(bug),
            None => {
                let mut outcome = simulate::hunt(bug, budget, jobs, args.shrink_budget);
                outcome.corpus = Some(simulate::corpus_hunt(bug, budget, jobs));
                outcome
            }
        };
        match &outcome.caught {
            Some(c) => eprintln!(
                "zoo: {bug}: caught by {} in {} ({})",
                c.by,
                seconds(c.time),
                c.found
            ),
            None => eprintln!("zoo: {bug}: ESCAPED after {} seeds", outcome.seeds_tried),
        }
        outcomes.push(outcome);
    }
    println!("{}", render(&outcomes, args.markdown));
    if outcomes.iter().all(|o| o.caught.is_some()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    }
}

/// Receives every known-answer chain with `bug` planted on this thread and
/// compares each listing with the bug-free engine's (which the fixture
/// tests hold to the streams' manifests).
fn known_answers(bug: Planted) -> Outcome {
    let start = Instant::now();
    let dir = fixtures_dir();
    let mut caught = None;
    for chain in KNOWN_ANSWER_CHAINS {
        let paths: Vec<PathBuf> = chain
            .iter()
            .map(|name| dir.join(format!("{name}.zsend")))
            .collect();
        let expected = super::verify::listing_json(&paths);
        let got = {
            let _planted = engine::planted::plant(&[bug]);
            super::verify::listing_json(&paths)
        };
        if got != expected {
            caught = Some(Catch {
                by: format!("known answers ({})", chain.join(",")),
                seed: None,
                time: start.elapsed(),
                shrunk_steps: None,
                found: first_difference(&expected, &got),
            });
            break;
        }
    }
    Outcome {
        bug,
        caught,
        seeds_tried: 0,
        corpus: None,
    }
}

/// A short account of where two listings part.
fn first_difference(expected: &str, got: &str) -> String {
    let at = expected
        .bytes()
        .zip(got.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let from = at.saturating_sub(40);
    let excerpt = |s: &str| {
        s.get(from..(at + 80).min(s.len()))
            .unwrap_or("")
            .to_string()
    };
    format!("expected …{}…, got …{}…", excerpt(expected), excerpt(got))
}

#[cfg(madsim)]
mod simulate {
    use std::panic::AssertUnwindSafe;
    use std::time::{Duration, Instant};

    use super::{Catch, Outcome, trial};
    use crate::fuzz::WorldInput;
    use crate::runner::{Planted, RunConfig, run, shrink::shrink};

    /// Whether a run failed, and how (a violation, or a panic).
    fn verdict(config: &RunConfig) -> Option<String> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| run(config))) {
            Ok(report) => report
                .violation
                .map(|v| format!("expected {}, found {}", v.expected, v.found)),
            Err(panic) => Some(match panic.downcast_ref::<&str>() {
                Some(s) => format!("panic: {s}"),
                None => match panic.downcast_ref::<String>() {
                    Some(s) => format!("panic: {s}"),
                    None => "panic".to_string(),
                },
            }),
        }
    }

    fn config(seed: u64, bug: Planted) -> RunConfig {
        let (scenario, faults) = trial(seed);
        let mut config = RunConfig::from_options(seed, scenario, faults, None, &[])
            .expect("a built-in scenario");
        config.planted = vec![bug];
        config
    }

    /// Runs seeds 0, 1, ... in batches of `jobs` until one fails with the
    /// bug and not without it, or the budget is spent between batches.
    pub fn hunt(bug: Planted, budget: Duration, jobs: usize, shrink_budget: usize) -> Outcome {
        // The panic hook would print every caught panic of every seed.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let start = Instant::now();
        let mut next = 0u64;
        let mut found = None;
        while found.is_none() && start.elapsed() < budget {
            let batch: Vec<u64> = (next..next + jobs as u64).collect();
            next += jobs as u64;
            let verdicts: Vec<(u64, Option<String>)> = std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|&seed| s.spawn(move || (seed, verdict(&config(seed, bug)))))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("verdicts catch panics"))
                    .collect()
            });
            for (seed, v) in verdicts {
                let Some(v) = v else { continue };
                let mut clean = config(seed, bug);
                clean.planted.clear();
                if verdict(&clean).is_none() {
                    found = Some((seed, v, start.elapsed()));
                    break;
                }
            }
        }
        let caught = found.map(|(seed, found, time)| {
            let config = config(seed, bug);
            let (scenario, faults) = trial(seed);
            let shrunk = std::panic::catch_unwind(AssertUnwindSafe(|| {
                shrink(&config, shrink_budget).map(|(r, _)| r.step_list().len())
            }))
            .ok()
            .flatten();
            Catch {
                by: format!("{scenario}/{}", faults.unwrap_or("own")),
                seed: Some(seed),
                time,
                shrunk_steps: shrunk,
                found,
            }
        });
        std::panic::set_hook(hook);
        Outcome {
            bug,
            caught,
            seeds_tried: next,
            corpus: None,
        }
    }

    /// Replays the `sim_world` corpus (inputs in name order, in batches of
    /// `jobs`) with the bug planted until an input fails with it and not
    /// without it, or the budget is spent between batches.
    pub fn corpus_hunt(bug: Planted, budget: Duration, jobs: usize) -> String {
        // The committed corpus, as `cargo sim corpus` reads it.
        let Ok(inputs) = crate::cmd::corpus::input_files(&[], "sim_world") else {
            return "no corpus".to_string();
        };
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let start = Instant::now();
        let planted = |path: &std::path::Path, on: bool| {
            let data = std::fs::read(path).unwrap_or_default();
            let mut config = WorldInput::decode(&data).config();
            if on {
                config.planted = vec![bug];
            }
            verdict(&config)
        };
        let mut tried = 0;
        let mut found = None;
        for batch in inputs.chunks(jobs) {
            if found.is_some() || start.elapsed() >= budget {
                break;
            }
            let failed: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|p| s.spawn(move || planted(p, true).is_some()))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("verdicts catch panics"))
                    .collect()
            });
            tried += batch.len();
            found = batch
                .iter()
                .zip(failed)
                .find(|(p, failed)| *failed && planted(p, false).is_none())
                .map(|(p, _)| p.clone());
        }
        std::panic::set_hook(hook);
        let time = super::seconds(start.elapsed());
        match found {
            Some(path) => {
                let name = path
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned());
                format!("{} ({time})", &name[..name.len().min(8)])
            }
            None => format!("not caught ({tried} of {} inputs, {time})", inputs.len()),
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The zoo's table, then the median and worst time to detect.
pub fn render(outcomes: &[Outcome], markdown: bool) -> String {
    let mut builder = tabled::builder::Builder::default();
    builder.push_record([
        "bug",
        "caught by",
        "seed",
        "time to detect",
        "shrunk steps",
        "sim_world corpus",
    ]);
    for o in outcomes {
        let corpus = o.corpus.clone().unwrap_or_else(|| "-".to_string());
        match &o.caught {
            Some(c) => builder.push_record([
                o.bug.name().to_string(),
                c.by.clone(),
                c.seed.map_or("-".to_string(), |s| s.to_string()),
                seconds(c.time),
                c.shrunk_steps.map_or("-".to_string(), |s| s.to_string()),
                corpus,
            ]),
            None => builder.push_record([
                o.bug.name().to_string(),
                "ESCAPED".to_string(),
                "-".to_string(),
                format!("({} seeds)", o.seeds_tried),
                "-".to_string(),
                corpus,
            ]),
        }
    }
    let mut table = builder.build();
    if markdown {
        table.with(tabled::settings::Style::markdown());
    } else {
        table.with(tabled::settings::Style::modern());
    }
    let mut times: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.caught.as_ref().map(|c| c.time))
        .collect();
    times.sort();
    let caught = times.len();
    let summary = match (times.get(caught / 2), times.last()) {
        (Some(median), Some(worst)) => format!(
            "caught {caught} of {}; time to detect: median {}, worst {}",
            outcomes.len(),
            seconds(*median),
            seconds(*worst)
        ),
        _ => format!("caught 0 of {}", outcomes.len()),
    };
    format!("{table}\n\n{summary}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_cycle_every_scenario_under_every_plan() {
        let n = (SCENARIOS.len() * FAULT_PLANS.len()) as u64;
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..n {
            seen.insert(trial(seed));
        }
        assert_eq!(seen.len() as u64, n);
        assert_eq!(trial(0), ("mix", Some("all")));
        assert_eq!(trial(SCENARIOS.len() as u64), ("mix", Some("swarm")));
        assert_eq!(trial(n), trial(0));
    }

    #[test]
    fn every_scenario_of_the_cycle_exists() {
        for name in SCENARIOS {
            scenarios::spec::Spec::load(name).unwrap();
        }
    }
}
