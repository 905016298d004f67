//! Shrinking: the smallest step list and fault plan that still fail.
//!
//! Steps are removed in ever smaller chunks (delta debugging), then fault
//! kinds one at a time; a candidate is kept when it still ends in a
//! violation of the same kind (the same expectation, numbers aside), so that
//! shrinking does not wander off to another bug. Steps that no longer apply
//! after a removal are skipped by the runner, so every candidate is a valid
//! run.

use super::{Faults, RunConfig, RunReport, run};

/// Shrinks a failing run; returns the smallest failing report found and
/// the number of runs it took.
pub fn shrink(config: &RunConfig, budget: usize) -> Option<(RunReport, usize)> {
    let mut best = run(config);
    let kind = signature(&best)?;
    let same = |report: &RunReport| signature(report).as_ref() == Some(&kind);
    let mut config = config.clone();
    config.verbose = false;
    config.faults = Faults::World(Box::new(best.world.clone()));
    let mut steps = best.step_list();
    let mut runs = 1;
    let mut chunk = steps.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < steps.len() && runs < budget {
            let mut candidate = steps.clone();
            candidate.drain(i..(i + chunk).min(steps.len()));
            config.fixed_steps = Some(candidate.clone());
            let report = run(&config);
            runs += 1;
            if same(&report) {
                // The run stops at its violation: keep only what it ran.
                steps = report.step_list();
                best = report;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 || runs >= budget {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    config.fixed_steps = Some(steps.clone());
    for (kind, _) in best.plan.clone().kinds() {
        if runs >= budget {
            break;
        }
        let mut candidate = config.clone();
        candidate.faults = Faults::World(Box::new(config.world().without(kind)));
        let report = run(&candidate);
        runs += 1;
        if same(&report) {
            config = candidate;
            best = report;
        }
    }
    Some((best, runs))
}

/// The kind of a run's violation, as campaign reports group them.
fn signature(report: &RunReport) -> Option<String> {
    let v = report.violation.as_ref()?;
    let v = reports::result::Violation {
        step: None,
        expected: v.expected.clone(),
        found: String::new(),
        panicked: false,
    };
    Some(v.signature())
}
