//! A saved failure: everything needed to run it again, in a small TOML
//! file that `cargo sim replay` reads, `shrink` and `campaign` write, and
//! `cargo test` replays from `scenarios/regressions/`.
//!
//! ```toml
//! seed = 7
//! scenario = "mix"
//! faults = "crash:0.05,signal:0.2"
//! steps = ["create src/fs1", "alloc src/fs1 type=19 blksz=4096 bonustype=0 bonuslen=0"]
//! violation = "expected ..., found ..."
//! planted = []
//!
//! [world.disk]
//! size_bytes = 50331648
//! crash_probability = 0.05
//! # ... every field of WorldOptions: [world.pipe], [world.transfer],
//! # [world.clock]
//! ```
//!
//! The `[world]` tables are the whole simulated world the run failed in,
//! and a replay uses them as they are; `faults` then only names their
//! rates. A file without them (saved before they existed) replays on the
//! default world with the rates of `faults`.

use serde::{Deserialize, Serialize};

use super::{Faults, RunConfig, RunReport};
use crate::world::options::WorldOptions;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub seed: u64,
    pub scenario: String,
    /// The resolved plan, `kind:rate,...` or `none`.
    pub faults: String,
    pub steps: Vec<String>,
    #[serde(default)]
    pub violation: String,
    #[serde(default)]
    pub planted: Vec<String>,
    /// Last: TOML writes tables after plain values.
    #[serde(default)]
    pub world: Option<WorldOptions>,
}

impl Failure {
    pub fn from_report(report: &RunReport) -> Failure {
        Failure {
            seed: report.seed,
            scenario: report.scenario.clone(),
            faults: report.plan.to_string(),
            steps: report.step_list().iter().map(ToString::to_string).collect(),
            violation: report
                .violation
                .as_ref()
                .map(|v| format!("expected {}, found {}", v.expected, v.found))
                .unwrap_or_default(),
            planted: report.planted.iter().map(ToString::to_string).collect(),
            world: Some(report.world.clone()),
        }
    }

    pub fn parse(text: &str) -> Result<Failure, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a failure serializes")
    }

    /// The run this failure describes: its steps replayed as saved.
    pub fn config(&self) -> Result<RunConfig, String> {
        let steps = self
            .steps
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<_>, _>>()?;
        let mut config = RunConfig::from_options(
            self.seed,
            &self.scenario,
            Some(&self.faults),
            None,
            &self.planted,
        )?;
        if let Some(world) = &self.world {
            world
                .check()
                .map_err(|e| format!("the failure's [world] options: {e}"))?;
            config.faults = Faults::World(Box::new(world.clone()));
        }
        config.fixed_steps = Some(steps);
        Ok(config)
    }
}
