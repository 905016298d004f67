//! The markdown report, `report.md`: the campaign at a glance, then one
//! table per section (step outcomes, faults, error sites, step kinds,
//! failing seeds with their replay commands).

use std::collections::BTreeMap;
use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use super::{SIGNATURE_SEEDS, lost_runs, seed_list};
use crate::summary::Summary;

/// A markdown table cell: one line, no column breaks.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn markdown_table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut builder = Builder::default();
    builder.push_record(header.iter().map(|h| h.to_string()));
    for row in rows {
        builder.push_record(row.iter().map(|c| cell(c)));
    }
    let mut table = builder.build();
    table.with(Style::markdown());
    table.to_string()
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(name, n)| format!("{name} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The markdown report: `report.md`.
pub fn render_markdown(summary: &Summary) -> String {
    let mut out = String::new();
    campaign(&mut out, summary);
    step_outcomes(&mut out, summary);
    faults(&mut out, summary);
    error_sites(&mut out, summary);
    step_kinds(&mut out, summary);
    failing_seeds(&mut out, summary);
    out
}

/// The title, the verdict and the campaign's figures.
fn campaign(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "# zsim campaign report\n");
    let verdict = if summary.with_violation == 0 {
        format!("no violation in {} runs", summary.seeds)
    } else {
        format!(
            "**{} of {} runs found a violation**",
            summary.with_violation, summary.seeds
        )
    };
    let _ = writeln!(out, "Verdict: {verdict}.\n");
    let rows = vec![
        vec!["seeds run".to_string(), summary.seeds.to_string()],
        vec!["seeds".to_string(), summary.seed_span()],
        vec!["scenarios".to_string(), counts(&summary.scenarios)],
        vec![
            "fault plans asked for".to_string(),
            counts(&summary.fault_specs),
        ],
        vec![
            "runs without a violation".to_string(),
            summary.without_violation.to_string(),
        ],
        vec![
            "runs with a violation".to_string(),
            summary.with_violation.to_string(),
        ],
        vec![
            "runs stopped early: a pool lost beyond its redundancy, detected".to_string(),
            lost_runs(&summary.lost),
        ],
        vec!["steps".to_string(), summary.outcomes.total().to_string()],
        vec![
            "virtual time".to_string(),
            format!("{:.3}s", summary.virtual_time_ns as f64 / 1e9),
        ],
    ];
    let _ = writeln!(out, "{}\n", markdown_table(&["campaign", ""], rows));
}

fn step_outcomes(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "## Step outcomes\n");
    let rows = summary
        .outcomes
        .named()
        .iter()
        .zip(summary.outcome_runs.named())
        .map(|((name, steps), (_, runs))| {
            vec![name.to_string(), steps.to_string(), runs.to_string()]
        })
        .collect();
    let _ = writeln!(
        out,
        "{}\n",
        markdown_table(&["outcome", "steps", "runs"], rows)
    );
}

fn faults(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "## Faults fired, by kind\n");
    let rows = summary
        .faults
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.count.to_string(),
                t.runs.to_string(),
                t.planned.to_string(),
            ]
        })
        .collect();
    let _ = writeln!(
        out,
        "{}\n",
        markdown_table(
            &["kind", "fired", "runs it fired in", "runs with it on"],
            rows
        )
    );
}

fn error_sites(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "## Error sites hit\n");
    if summary.error_sites.is_empty() {
        let _ = writeln!(out, "None.\n");
    } else {
        let rows = summary
            .error_sites
            .iter()
            .map(|t| vec![t.name.clone(), t.count.to_string(), t.runs.to_string()])
            .collect();
        let _ = writeln!(out, "{}\n", markdown_table(&["site", "hits", "runs"], rows));
    }
}

fn step_kinds(out: &mut String, summary: &Summary) {
    let covered = summary.step_kinds.iter().filter(|t| t.count > 0).count();
    let _ = writeln!(out, "## Step kinds covered\n");
    let _ = writeln!(
        out,
        "{covered} of {} kinds executed.\n",
        summary.step_kinds.len()
    );
    tallies(out, &summary.step_kinds, &["kind", "steps", "runs"]);
    if summary.interleavings.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Interleavings reached\n");
    let _ = writeln!(
        out,
        "Operations carried out while a transfer was in flight, and what came during a receive.\n"
    );
    tallies(
        out,
        &summary.interleavings,
        &["interleaving", "times", "runs"],
    );
}

/// A table of tallies: name, count, runs.
fn tallies(out: &mut String, tallies: &[crate::summary::Tally], headers: &[&str; 3]) {
    let rows = tallies
        .iter()
        .map(|t| vec![t.name.clone(), t.count.to_string(), t.runs.to_string()])
        .collect();
    let _ = writeln!(out, "{}\n", markdown_table(headers, rows));
}

/// The failing runs: grouped by what was expected, one row each, and the
/// commands that replay them. The report's last section.
fn failing_seeds(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "## Failing seeds\n");
    if summary.failures.is_empty() {
        let _ = writeln!(out, "None.");
        return;
    }
    let _ = writeln!(
        out,
        "By what was expected (numbers as N, details dropped):\n"
    );
    let rows = summary
        .signatures
        .iter()
        .map(|g| {
            vec![
                g.signature.clone(),
                g.seeds.len().to_string(),
                seed_list(&g.seeds, SIGNATURE_SEEDS),
            ]
        })
        .collect();
    let _ = writeln!(
        out,
        "{}\n",
        markdown_table(&["expected", "runs", "seeds"], rows)
    );
    let rows = summary
        .failures
        .iter()
        .map(|r| {
            let v = r.violation.as_ref().expect("a failure has a violation");
            vec![
                r.seed.to_string(),
                r.scenario.clone(),
                v.at(),
                v.expected.clone(),
                v.found.clone(),
            ]
        })
        .collect();
    let _ = writeln!(
        out,
        "{}\n",
        markdown_table(&["seed", "scenario", "at", "expected", "found"], rows)
    );
    let _ = writeln!(
        out,
        "Replay commands (the exact steps of each are in `failures/seed-N.toml`, for \
         `cargo sim replay`):\n"
    );
    let _ = writeln!(out, "```sh");
    for r in &summary.failures {
        let _ = writeln!(out, "# seed {} ({})", r.seed, r.scenario);
        let _ = writeln!(out, "{}", r.replay);
    }
    let _ = writeln!(out, "```");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{FAULTS, KINDS, failing, grouped, result};

    #[test]
    fn the_markdown_has_every_section_and_the_failing_seeds() {
        let s = Summary::from_results(&[result(1), failing(2)], FAULTS, KINDS);
        let md = render_markdown(&s);
        for heading in [
            "# zsim campaign report",
            "## Step outcomes",
            "## Faults fired, by kind",
            "## Error sites hit",
            "## Step kinds covered",
            "## Failing seeds",
        ] {
            assert!(md.contains(heading), "{heading} missing:\n{md}");
        }
        for kind in FAULTS.iter().chain(KINDS) {
            assert!(md.contains(&format!("| {kind} ")), "{kind} missing:\n{md}");
        }
        assert!(md.contains("| send-full "), "{md}");
        assert!(md.contains("**1 of 2 runs found a violation**"), "{md}");
        assert!(
            md.contains("dst/r1 matches \\| src"),
            "pipes escaped:\n{md}"
        );
        assert!(md.contains("| a b "), "newlines flattened:\n{md}");
        assert!(md.contains("# seed 2 (smoke)\ncargo sim run --seed 2 --scenario smoke\n"));
        assert!(md.contains("2 of 4 kinds executed"), "{md}");

        let clean = render_markdown(&Summary::from_results(&[result(1)], FAULTS, KINDS));
        assert!(
            clean.contains("Verdict: no violation in 1 runs."),
            "{clean}"
        );
        assert!(clean.ends_with("## Failing seeds\n\nNone.\n"), "{clean}");
    }

    #[test]
    fn violations_are_tabled_by_what_was_expected() {
        let md = render_markdown(&grouped());
        assert!(
            md.contains("| dst/rN@sN to match src/fsN@sN | 2    | 1, 5  |"),
            "{md}"
        );
    }

    #[test]
    fn an_empty_campaign_renders() {
        let md = render_markdown(&Summary::from_results(&[], FAULTS, KINDS));
        assert!(md.contains("| crash "), "{md}");
        assert!(md.contains("## Error sites hit\n\nNone."), "{md}");
    }
}
