//! The `sim_world` fuzz target's inputs, run as `cargo test` runs them:
//! its corpus must pass, and a failing input must become a failure file
//! that replays the same failure.
#![cfg(madsim)]

use std::path::Path;

use sim::fuzz::{WorldInput, run_input};
use sim::runner::failure::Failure;
use sim::runner::{Planted, run};

/// Every input in fuzz/corpus/sim_world passes.
#[test]
fn every_sim_world_corpus_input_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sim_world");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 10, "a corpus in {}", dir.display());
    for file in files {
        let report = run_input(&std::fs::read(&file).unwrap());
        assert!(
            report.violation.is_none(),
            "{}: {:?} (cargo sim corpus {} --save DIR)",
            file.display(),
            report.violation,
            file.display()
        );
    }
}

/// A fuzzer-chosen run that fails is saved with its steps and world, and
/// the saved file fails the same way (the seed alone would not: the
/// steps were not the seed's).
#[test]
fn a_failing_input_becomes_a_failure_file_that_replays_it() {
    let input = WorldInput {
        seed: 5,
        scenario: 0,
        // Power losses, whole and torn, and failed writes.
        faults: 0b1011,
        steps: (0..24u64).map(|i| ((i * 7 % 40) as u8, i)).collect(),
    };
    let mut config = input.config();
    let clean = config.clone();
    config.planted = vec![Planted::UberblockBeforeFlush];
    let mut caught = None;
    for seed in 0..256 {
        config.seed = seed;
        let report = run(&config);
        if report.violation.is_some() {
            caught = Some(report);
            break;
        }
    }
    let report = caught.expect("the missing barrier caught within 256 seeds");
    let mut clean = clean;
    clean.seed = report.seed;
    assert!(run(&clean).violation.is_none(), "without the bug it passes");
    assert!(report.steps_given);
    let text = Failure::from_report(&report).to_toml();
    let again = run(&Failure::parse(&text).unwrap().config().unwrap());
    assert_eq!(again.violation, report.violation);
    assert_eq!(again.trace_hash, report.trace_hash);
}
