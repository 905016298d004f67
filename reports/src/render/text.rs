//! The short text summary commands print to standard output: a line per
//! figure, then the commonest violations and the first failing seeds with
//! their replay commands (the report has the rest).

use std::fmt::Write;

use super::{lost_runs, seed_list};
use crate::summary::Summary;

/// How many signatures the text summary lists.
const TEXT_SIGNATURES: usize = 8;

/// How many failing seeds the text summary lists.
const TEXT_FAILURES: usize = 5;

/// A short text summary, for standard output.
pub fn render_text(summary: &Summary) -> String {
    let mut out = String::new();
    figures(&mut out, summary);
    signatures(&mut out, summary);
    failures(&mut out, summary);
    out
}

/// What ran, what it found, and what it covered.
fn figures(out: &mut String, summary: &Summary) {
    let _ = writeln!(
        out,
        "seeds: {} ({}), scenario {}, faults {}",
        summary.seeds,
        summary.seed_span(),
        summary
            .scenarios
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        summary
            .fault_specs
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    let _ = writeln!(
        out,
        "runs: {} without a violation, {} with one",
        summary.without_violation, summary.with_violation
    );
    if !summary.lost.is_empty() {
        let _ = writeln!(
            out,
            "runs stopped early on a pool lost to faults beyond its redundancy (detected, not a violation): {}",
            lost_runs(&summary.lost)
        );
    }
    let outcomes: Vec<String> = summary
        .outcomes
        .named()
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "steps: {} ({})",
        summary.outcomes.total(),
        outcomes.join(", ")
    );
    let fired: Vec<String> = summary
        .faults
        .iter()
        .filter(|t| t.count > 0)
        .map(|t| format!("{} {}", t.name, t.count))
        .collect();
    let fired_total: u64 = summary.faults.iter().map(|t| t.count).sum();
    if fired.is_empty() {
        let _ = writeln!(out, "faults fired: 0");
    } else {
        let _ = writeln!(out, "faults fired: {fired_total} ({})", fired.join(", "));
    }
    let covered = summary.step_kinds.iter().filter(|t| t.count > 0).count();
    let _ = writeln!(
        out,
        "step kinds: {covered} of {} executed; error sites: {} distinct, {} hits",
        summary.step_kinds.len(),
        summary.error_sites.len(),
        summary.error_sites.iter().map(|t| t.count).sum::<u64>()
    );
    if !summary.interleavings.is_empty() {
        let reached: Vec<String> = summary
            .interleavings
            .iter()
            .map(|t| format!("{} {}", t.name, t.count))
            .collect();
        let _ = writeln!(out, "interleavings: {}", reached.join(", "));
    }
}

/// The commonest violations, by what was expected.
fn signatures(out: &mut String, summary: &Summary) {
    if summary.signatures.is_empty() {
        return;
    }
    let _ = writeln!(out, "violations by what was expected:");
    for g in summary.signatures.iter().take(TEXT_SIGNATURES) {
        let _ = writeln!(
            out,
            "  {:>5}  {} (seeds {})",
            g.seeds.len(),
            g.signature,
            seed_list(&g.seeds, 3)
        );
    }
    if summary.signatures.len() > TEXT_SIGNATURES {
        let _ = writeln!(
            out,
            "  ... and {} more kinds (see the report)",
            summary.signatures.len() - TEXT_SIGNATURES
        );
    }
}

/// The first failing seeds, with their replay commands.
fn failures(out: &mut String, summary: &Summary) {
    for r in summary.failures.iter().take(TEXT_FAILURES) {
        let v = r.violation.as_ref().expect("a failure has a violation");
        let _ = writeln!(
            out,
            "VIOLATION seed {} ({}) at {}: expected {}, found {}",
            r.seed,
            r.scenario,
            v.at(),
            v.expected,
            v.found
        );
        let _ = writeln!(out, "  replay: {}", r.replay);
    }
    if summary.failures.len() > TEXT_FAILURES {
        let _ = writeln!(
            out,
            "... and {} more failing seeds (see the report)",
            summary.failures.len() - TEXT_FAILURES
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{FAULTS, KINDS, failing, grouped, result};

    #[test]
    fn the_text_has_the_figures_and_the_failing_seeds() {
        let text = render_text(&Summary::from_results(
            &[result(1), failing(2)],
            FAULTS,
            KINDS,
        ));
        assert!(
            text.contains("runs: 1 without a violation, 1 with one"),
            "{text}"
        );
        assert!(
            text.contains("VIOLATION seed 2 (smoke) at step 3: expected dst/r1 matches | src"),
            "{text}"
        );
        assert!(text.contains("  replay: cargo sim run --seed 2"), "{text}");
        assert!(text.contains("faults fired: 4 (signal 4)"), "{text}");
    }

    #[test]
    fn violations_are_listed_by_what_was_expected() {
        assert!(
            render_text(&grouped()).contains("      2  dst/rN@sN to match src/fsN@sN (seeds 1, 5)")
        );
    }
}
