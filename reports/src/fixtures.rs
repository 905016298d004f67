//! Results the unit tests build on, shared so that each module's tests
//! add up, merge and render the same runs.

use crate::result::{Outcomes, SeedResult, Violation};
use crate::summary::Summary;

/// Fault kinds a test summary lists.
pub const FAULTS: &[&str] = &["crash", "torn", "signal"];
/// Step kinds a test summary lists.
pub const KINDS: &[&str] = &["create", "write", "send-full", "crash"];

/// A passing run of the smoke scenario.
pub fn result(seed: u64) -> SeedResult {
    SeedResult {
        seed,
        scenario: "smoke".into(),
        fault_spec: "all".into(),
        plan: "crash:0.01,signal:0.2".into(),
        planted: Vec::new(),
        steps: 4,
        outcomes: Outcomes {
            ok: 3,
            matched: 1,
            ..Outcomes::default()
        },
        violation: None,
        lost: None,
        faults: [("crash".to_string(), 0), ("signal".to_string(), 2)].into(),
        error_sites: [("ENOENT at a.rs:1".to_string(), 3)].into(),
        step_kinds: [("create".to_string(), 1), ("write".to_string(), 3)].into(),
        trace_hash: format!("hash{seed}"),
        virtual_time_ns: 1_500_000_000,
        replay: format!("cargo sim run --seed {seed} --scenario smoke"),
        reach: Default::default(),
    }
}

/// [`result`] with a violation at step 3, whose text needs escaping in a
/// markdown cell.
pub fn failing(seed: u64) -> SeedResult {
    let mut r = result(seed);
    r.outcomes.violation = 1;
    r.violation = Some(Violation {
        step: Some(3),
        expected: "dst/r1 matches | src".into(),
        found: "a\nb".into(),
        panicked: false,
    });
    r
}

/// A violation with no step, expecting `expected`.
pub fn violation(expected: &str) -> Violation {
    Violation {
        step: None,
        expected: expected.into(),
        found: String::new(),
        panicked: false,
    }
}

/// Four runs, three failing: two break one rule (seeds 1 and 5), one
/// another (seed 3).
pub fn grouped() -> Summary {
    let with = |seed, expected: &str| {
        let mut r = failing(seed);
        r.violation = Some(violation(expected));
        r
    };
    Summary::from_results(
        &[
            with(5, "dst/r1@s2 to match src/fs1@s2"),
            with(3, "src to import"),
            with(1, "dst/r7@s9 to match src/fs3@s9"),
            result(2),
        ],
        FAULTS,
        KINDS,
    )
}
