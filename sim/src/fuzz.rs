//! `sim_world`: the whole simulated world as a fuzz target. An input,
//! decoded with `arbitrary`, is a workload (each step a kind and the seed
//! of its details) and a fault schedule (a seed and the fault kinds on);
//! the oracle is the assertion. The campaign draws workloads at random;
//! under libFuzzer, coverage feedback keeps the inputs that reach engine
//! paths the others did not, and mutates those.
//!
//! `fuzz/fuzz_targets/sim_world.rs` calls [`sim_world`]; `cargo sim corpus`
//! runs inputs as campaign runs (a report, error sites, failure files that
//! `cargo sim replay` runs); `cargo test` replays the corpus.

use arbitrary::{Arbitrary, Unstructured};
use scenarios::spec::{BUILTIN, Spec};

use crate::runner::{Faults, RunConfig, RunReport, run};
use crate::world::faults::{FaultKind, FaultSpec};

/// At most this many workload steps per input: a run stays a few tens of
/// milliseconds, so the fuzzer tries many.
pub const MAX_STEPS: usize = 64;

/// What a fuzz input decodes to.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct WorldInput {
    /// The run's seed: fault draws and their rates, think times, the
    /// pools' randomness.
    pub seed: u64,
    /// The built-in scenario (by index, wrapping) whose knobs the steps
    /// are made with: depth, fill palette, races.
    pub scenario: u8,
    /// A bit per fault kind, in [`FaultKind::ALL`]'s order: the kinds on,
    /// each at a rate the seed draws.
    pub faults: u16,
    /// The workload: per step, a step kind (by index into
    /// `Step::KINDS`, wrapping) and the seed of its details.
    pub steps: Vec<(u8, u64)>,
}

impl WorldInput {
    /// Any bytes decode (a short input gives zeros and no steps).
    pub fn decode(data: &[u8]) -> WorldInput {
        WorldInput::arbitrary_take_rest(Unstructured::new(data)).unwrap_or(WorldInput {
            seed: 0,
            scenario: 0,
            faults: 0,
            steps: Vec::new(),
        })
    }

    /// The run this input asks for.
    pub fn config(&self) -> RunConfig {
        let (name, text) = BUILTIN[usize::from(self.scenario) % BUILTIN.len()];
        let spec = Spec::parse(name, text).expect("a built-in scenario parses");
        let mut config = RunConfig::new(self.seed, spec);
        config.faults = Faults::Spec(FaultSpec::Kinds(
            FaultKind::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| self.faults & (1 << i) != 0)
                .map(|(_, k)| (*k, None))
                .collect(),
        ));
        config.guide = Some(self.steps.iter().take(MAX_STEPS).copied().collect());
        config
    }
}

/// Runs the input `data` decodes to.
pub fn run_input(data: &[u8]) -> RunReport {
    run(&WorldInput::decode(data).config())
}

/// The fuzz target's body: a violation is a crash, for libFuzzer to keep.
pub fn sim_world(data: &[u8]) {
    let report = run_input(data);
    if let Some(v) = &report.violation {
        panic!(
            "sim_world: violation at step {:?}: expected {}, found {} \
             (`cargo sim corpus FILE --save DIR` writes this input as a failure file)",
            v.step, v.expected, v.found
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_names_its_scenario_faults_and_steps() {
        let input = WorldInput {
            seed: 9,
            scenario: 1,
            faults: 0b1,
            steps: vec![(0, 5); MAX_STEPS + 3],
        };
        let config = input.config();
        assert_eq!(config.seed, 9);
        assert_eq!(config.spec.name, BUILTIN[1].0);
        assert_eq!(
            config.faults,
            Faults::Spec(FaultSpec::Kinds([(FaultKind::Crash, None)].into()))
        );
        assert_eq!(config.guide.as_ref().map(Vec::len), Some(MAX_STEPS));
    }

    #[test]
    fn any_bytes_decode() {
        assert_eq!(WorldInput::decode(&[]).steps, Vec::new());
        let input = WorldInput::decode(&[7u8; 200]);
        assert!(!input.steps.is_empty());
    }
}
