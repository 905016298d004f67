//! The scenario runner: one seeded simulation.
//!
//! Seed → options → run → verdict. A [`RunConfig`] resolves into the
//! seed and the whole [`WorldOptions`] before the run starts; a madsim
//! runtime seeded with the seed then hosts two pools, `src` and `dst`,
//! each on its own [`SimDisk`](crate::world::disk::SimDisk), one txg-sync
//! task that syncs both every `zfs_txg_timeout` of virtual time, and the
//! workload task, which takes steps from the generator (or a saved list),
//! runs each on the engine with the faults the devices draw, and asks the
//! oracle about the result. Sends go through a SimPipe between a sending
//! and a receiving task.
//!
//! The oracle accepts exactly one outcome per receive: the target matches
//! the source snapshot, or the receive failed with a cause and the target
//! is exactly as before. After a crash the pool must import to one of the
//! states the model says could have been durable, and `engine::check` must
//! find nothing wrong. Anything else is a violation and ends the run.

pub mod failure;
mod hosts;
mod misuse;
mod race;
mod scrub;
mod send;
pub mod shrink;
mod simulate;
mod step;
pub mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use scenarios::spec::Spec;
use scenarios::step::Step;

use crate::world::faults::{FaultCounts, FaultPlan, FaultSpec};
use crate::world::options::WorldOptions;
use crate::world::streams::Streams;
use rand::Rng;

/// What to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub spec: Spec,
    /// The world, or the fault spec to draw its rates from (`--faults`).
    pub faults: Faults,
    /// Steps to generate (`--steps`); the scenario's count by default.
    pub steps: Option<usize>,
    /// Steps to replay instead of generating them.
    pub fixed_steps: Option<Vec<Step>>,
    /// Steps chosen by a fuzzer (`sim_world`): for each, a step kind and
    /// the seed of its details ([`scenarios::generate::Generator::guided`]),
    /// instead of the seed's own draws. Ignored with `fixed_steps`.
    pub guide: Option<Vec<(u8, u64)>>,
    /// Echo the trace to stderr as it happens.
    pub verbose: bool,
    /// Bugs to plant (self-test only).
    pub planted: Vec<Planted>,
    /// Keep each pool's disk at the end of the run ([`RunReport::images`]).
    pub save_images: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Faults {
    /// Rates drawn per seed, on the default world.
    Spec(FaultSpec),
    /// The whole world, as a failure file saved it.
    World(Box<WorldOptions>),
}

/// Deliberate engine bugs the campaign must catch, by the names
/// `--plant` and failure files use.
pub use engine::planted::Bug as Planted;

impl RunConfig {
    pub fn new(seed: u64, spec: Spec) -> RunConfig {
        RunConfig {
            seed,
            spec,
            faults: Faults::Spec(FaultSpec::Swarm),
            steps: None,
            fixed_steps: None,
            guide: None,
            verbose: false,
            planted: Vec::new(),
            save_images: false,
        }
    }

    /// A run as the command line names it: a scenario by name or path, a
    /// fault plan (the scenario's when `faults` is `None`), a step count and
    /// planted bugs by name.
    pub fn from_options(
        seed: u64,
        scenario: &str,
        faults: Option<&str>,
        steps: Option<usize>,
        planted: &[String],
    ) -> Result<RunConfig, String> {
        let spec = Spec::load(scenario)?;
        let faults: FaultSpec = faults.unwrap_or(&spec.faults).parse()?;
        let mut config = RunConfig::new(seed, spec);
        config.faults = Faults::Spec(faults);
        config.steps = steps;
        config.planted = planted
            .iter()
            .map(|p| p.parse())
            .collect::<Result<_, _>>()?;
        Ok(config)
    }

    /// The world this run simulates.
    pub fn world(&self) -> WorldOptions {
        match &self.faults {
            Faults::World(world) => (**world).clone(),
            Faults::Spec(spec) => {
                let streams = Streams::new(self.seed);
                let mut world = WorldOptions::from_plan(&spec.resolve(&streams));
                // The pool shape, from its own stream: a scenario of one
                // shape draws nothing.
                let shapes = &self.spec.pool.devices;
                if shapes.len() > 1 {
                    let i = streams.stream("pool-shape").gen_range(0..shapes.len());
                    world.disk.devices = shapes[i];
                } else {
                    world.disk.devices = shapes[0];
                }
                world
            }
        }
    }

    /// The fault rates of that world.
    pub fn plan(&self) -> FaultPlan {
        self.world().plan()
    }
}

/// One step as it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub index: usize,
    pub at: Duration,
    pub step: Step,
    pub outcome: Outcome,
    pub detail: String,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The step did what it was asked.
    Done,
    /// A receive that matched its source.
    Match,
    /// A refused or failed receive that left the target as it was.
    Destroyed,
    /// The step failed because of an injected fault, and the pool was
    /// imported again.
    Faulted,
    /// The step no longer applies (a replayed list after shrinking).
    Skipped,
    Violation,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "ok",
            Outcome::Match => "match",
            Outcome::Destroyed => "cleanly-destroyed",
            Outcome::Faulted => "faulted",
            Outcome::Skipped => "skipped",
            Outcome::Violation => "VIOLATION",
        }
    }
}

/// What broke the rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The step it happened in (None: the final check).
    pub step: Option<usize>,
    /// Not a violation: a pool was lost to faults beyond its redundancy
    /// (damage at rest on every copy of a block, or on a mirror a failed
    /// write on one disk with the other pulled), and the loss was
    /// detected, not hidden. The run stops there.
    pub lost: bool,
    pub expected: String,
    pub found: String,
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub seed: u64,
    pub scenario: String,
    /// The world it ran in, and its fault rates as a plan.
    pub world: WorldOptions,
    pub plan: FaultPlan,
    pub planted: Vec<Planted>,
    /// Every step: the workload's, then the liveness phase's sends.
    pub steps: Vec<StepRecord>,
    /// How many of `steps` the workload took (the rest are the liveness
    /// phase's, which a replay runs again by itself).
    pub workload_steps: usize,
    /// Whether the steps were given (replayed, or chosen by a fuzzer)
    /// rather than drawn from the seed: the seed alone then does not
    /// reproduce the run, its failure file does.
    pub steps_given: bool,
    pub violation: Option<Violation>,
    /// Why the run stopped early without a violation (a pool lost to
    /// injected damage, detected).
    pub lost: Option<String>,
    pub faults: FaultCounts,
    /// Engine error sites hit (`errno at file:line`), with counts.
    pub error_sites: BTreeMap<String, u64>,
    pub trace: Vec<String>,
    pub trace_hash: String,
    pub virtual_time: Duration,
    pub disk_writes: u64,
    pub disk_reads: u64,
    pub bytes_sent: u64,
    /// How deep into the engine the run reached.
    pub reach: reports::result::Reach,
    /// With [`RunConfig::save_images`]: each pool's name and what its disk
    /// durably holds at the end (after the final sync, if the run got
    /// there), an image `cargo sim ls` and `zdb` open.
    pub images: Vec<(String, Vec<u8>)>,
}

impl RunReport {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.steps.iter().filter(|s| s.outcome == outcome).count()
    }

    /// Steps executed (not skipped) by kind.
    pub fn step_kinds(&self) -> BTreeMap<&'static str, u64> {
        let mut kinds = BTreeMap::new();
        for s in self.steps.iter().filter(|s| s.outcome != Outcome::Skipped) {
            *kinds.entry(s.step.kind()).or_default() += 1;
        }
        kinds
    }

    /// The workload's steps as run, for replay and shrinking.
    pub fn step_list(&self) -> Vec<Step> {
        self.steps[..self.workload_steps]
            .iter()
            .map(|s| s.step.clone())
            .collect()
    }
}

/// Runs one simulation to its end or its first violation.
pub fn run(config: &RunConfig) -> RunReport {
    let runtime =
        madsim::runtime::Runtime::with_seed_and_config(config.seed, madsim::Config::default());
    let _planted = engine::planted::plant(&config.planted);
    runtime.block_on(simulate::simulate(config.clone()))
}
