//! The text of a run: what `cargo sim run` and `replay` print.

use std::fmt::Write;

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{Outcome, RunReport};
use crate::world::faults::FaultKind;
use crate::world::trace::stamp;

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "")]
    what: String,
    #[tabled(rename = "count")]
    count: String,
}

/// The command that runs this report's run again.
pub fn replay_command(report: &RunReport) -> String {
    if report.steps_given {
        return "cargo sim replay FILE, FILE being this run's failure file (the steps were \
                given, not drawn from the seed; `cargo sim corpus --save` and `cargo sim shrink` \
                write one)"
            .to_string();
    }
    let mut cmd = format!(
        "cargo sim run --seed {} --scenario {} --faults {} --steps {}",
        report.seed,
        report.scenario,
        report.plan,
        report.workload_steps.max(1)
    );
    for bug in &report.planted {
        let _ = write!(cmd, " --plant {bug}");
    }
    cmd
}

pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "zsim run: seed {} scenario {} faults {}",
        report.seed, report.scenario, report.plan
    );
    for line in report.world.describe() {
        let _ = writeln!(out, "  {line}");
    }
    for s in &report.steps {
        let detail = if s.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.detail)
        };
        let _ = writeln!(
            out,
            "{} step {:>3} {:<17} {}{detail}",
            stamp(s.at),
            s.index,
            s.outcome.name(),
            s.step
        );
    }
    if !report.error_sites.is_empty() {
        let _ = writeln!(out, "\nerror sites hit:");
        for (site, n) in &report.error_sites {
            let _ = writeln!(out, "  {n:>5}  {site}");
        }
    }
    let mut rows = Vec::new();
    for outcome in [
        Outcome::Done,
        Outcome::Match,
        Outcome::Destroyed,
        Outcome::Faulted,
        Outcome::Skipped,
    ] {
        rows.push(Row {
            what: format!("steps {}", outcome.name()),
            count: report.count(outcome).to_string(),
        });
    }
    for kind in FaultKind::ALL {
        if report.plan.is_on(kind) || report.faults.get(kind) > 0 {
            rows.push(Row {
                what: format!("fault {kind}"),
                count: report.faults.get(kind).to_string(),
            });
        }
    }
    rows.push(Row {
        what: "virtual time".into(),
        count: format!("{:.3}s", report.virtual_time.as_secs_f64()),
    });
    rows.push(Row {
        what: "disk reads / writes".into(),
        count: format!("{} / {}", report.disk_reads, report.disk_writes),
    });
    let _ = writeln!(out, "\n{}", Table::new(rows).with(Style::sharp()));
    let _ = writeln!(out, "trace hash {}", report.trace_hash);
    match &report.violation {
        None => {
            if let Some(lost) = &report.lost {
                let _ = writeln!(
                    out,
                    "run: stopped early, no violation: a pool was lost to injected faults beyond its redundancy, and the loss was detected ({lost})"
                );
            }
            let _ = writeln!(out, "run: OK: no violation in {} steps", report.steps.len());
        }
        Some(v) => {
            let at = v
                .step
                .map_or("the final check".to_string(), |s| format!("step {s}"));
            let _ = writeln!(out, "\nVIOLATION at {at}");
            let _ = writeln!(out, "  expected: {}", v.expected);
            let _ = writeln!(out, "  found:    {}", v.found);
            let _ = writeln!(out, "last trace lines:");
            for line in report.trace.iter().rev().take(12).rev() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out, "replay: {}", replay_command(report));
        }
    }
    out
}
