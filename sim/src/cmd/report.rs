//! `cargo sim report merge`: several campaigns' report directories (the
//! shards of a night's run, say) joined into one.
//!
//! The directory's layout and the merge itself are the `reports` crate's
//! ([`ReportDir`]); this command adds what only the simulator knows, the
//! fault and step kinds every report lists.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reports::dir::ReportDir;
use reports::render::render_text;
use reports::summary::SummaryBuilder;

use super::{EXIT_FAILURE, EXIT_USAGE};

/// Work with campaign reports (`results.jsonl`, `report.md`, `report.html`,
/// `timing.json`, `failures/`): merge shards, compare nights.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    Merge(MergeArgs),
    Trend(TrendArgs),
}

/// Compare a series of report directories (a night's merged report after
/// another, oldest first): one row per directory with its seeds, seeds/s
/// (when its timing.json says), runs with a violation, error sites hit,
/// error sites new since the previous directory, and fault kinds that
/// fired. Sites the first directory hit are not counted as new.
///
/// Reads each DIR/results.jsonl (and DIR/timing.json if there). Prints a
/// markdown table, then each directory's new error sites by name. Exits
/// with status 2 if a directory cannot be read, else 0.
#[derive(Debug, Args)]
pub struct TrendArgs {
    /// Report directories in order, oldest first (`cargo sim campaign
    /// --report DIR` or `cargo sim report merge --out DIR`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// Merge the report directories of several campaigns (the shards of a
/// night's run, say) into one: reads each DIR/results.jsonl, keeps one
/// result per seed, scenario and plan (a seed found twice with different
/// results is kept as first seen, with a warning), writes the merged
/// results.jsonl, report.md, report.html (and timing.json, when every DIR
/// has one: their seeds over the slowest one's time) to the --out
/// directory and copies every failures/*.toml there. The --out directory
/// may be one of the DIRs.
///
/// The results files are read a line at a time, side by side, so each
/// must be sorted by seed, scenario and plan, as campaigns write them; one
/// that is not is refused.
///
/// Exits with status 1 if any merged result has a violation, 2 if a
/// directory cannot be read or written, or a results file is not sorted.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Report directories written by `cargo sim campaign --report DIR`.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged report (created if missing; its
    /// results.jsonl, report.md, report.html, timing.json and
    /// failures/seed-*.toml are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &ReportArgs) -> ExitCode {
    match &args.command {
        ReportCommand::Merge(args) => merge(args),
        ReportCommand::Trend(args) => trend(args),
    }
}

fn trend(args: &TrendArgs) -> ExitCode {
    let mut nights = Vec::new();
    for path in &args.dirs {
        let dir = ReportDir::new(path);
        let text = match std::fs::read_to_string(dir.results_file()) {
            Ok(text) => text,
            Err(e) => {
                eprintln!(
                    "cargo sim report trend: cannot read {}: {e}",
                    dir.results_file().display()
                );
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let results = match reports::result::parse_jsonl(&text) {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "cargo sim report trend: {}: {e}",
                    dir.results_file().display()
                );
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let mut summary = summary_builder();
        for r in &results {
            summary.add(r);
        }
        nights.push(Night {
            name: path.display().to_string(),
            summary: summary.finish(),
            timing: dir.timing(),
        });
    }
    print!("{}", render_trend(&nights));
    ExitCode::SUCCESS
}

/// One report directory of a trend.
pub struct Night {
    pub name: String,
    pub summary: reports::summary::Summary,
    pub timing: Option<reports::render::Timing>,
}

/// The trend table, then the new error sites of each night by name.
pub fn render_trend(nights: &[Night]) -> String {
    use std::collections::BTreeSet;
    use std::fmt::Write;
    let mut table = tabled::builder::Builder::default();
    table.push_record([
        "report",
        "seeds",
        "seeds/s",
        "violations",
        "error sites hit",
        "new error sites",
        "fault kinds fired",
    ]);
    let mut seen: Option<BTreeSet<&str>> = None;
    let mut new_sites: Vec<(&str, Vec<&str>)> = Vec::new();
    for night in nights {
        let s = &night.summary;
        let sites: BTreeSet<&str> = s.error_sites.iter().map(|t| t.name.as_str()).collect();
        let new: Vec<&str> = match &seen {
            Some(before) => sites.difference(before).copied().collect(),
            None => Vec::new(),
        };
        let fired: Vec<String> = s
            .faults
            .iter()
            .filter(|t| t.count > 0)
            .map(|t| format!("{} ({})", t.name, t.count))
            .collect();
        table.push_record([
            night.name.replace('|', "\\|"),
            s.seeds.to_string(),
            night
                .timing
                .map_or_else(|| "-".to_string(), |t| format!("{:.2}", t.seeds_per_sec())),
            s.with_violation.to_string(),
            sites.len().to_string(),
            if seen.is_some() {
                new.len().to_string()
            } else {
                "-".to_string()
            },
            if fired.is_empty() {
                "none".to_string()
            } else {
                fired.join(", ")
            },
        ]);
        if !new.is_empty() {
            new_sites.push((&night.name, new));
        }
        seen = Some(sites);
    }
    let mut table = table.build();
    table.with(tabled::settings::Style::markdown());
    let mut out = format!("{table}\n");
    for (name, sites) in new_sites {
        let _ = writeln!(out, "\nnew error sites in {name}:");
        for site in sites {
            let _ = writeln!(out, "  {site}");
        }
    }
    out
}

fn merge(args: &MergeArgs) -> ExitCode {
    let shards: Vec<ReportDir> = args.dirs.iter().map(ReportDir::new).collect();
    let out = ReportDir::new(&args.out);
    let merged = match out.merge(&shards, summary_builder(), |conflict| {
        eprintln!("cargo sim report merge: warning: {conflict}")
    }) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("cargo sim report merge: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (counts, summary) = (merged.counts, merged.summary);
    println!(
        "merged {} results from {} {} into {} ({} identical copies dropped, {} conflicts)",
        counts.inputs,
        args.dirs.len(),
        if args.dirs.len() == 1 {
            "directory"
        } else {
            "directories"
        },
        counts.kept,
        counts.duplicates,
        counts.conflicts
    );
    print!("{}", render_text(&summary));
    println!("{}", out.files_line(merged.failures));
    if summary.with_violation > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Fault kinds a report lists even when none fired. Without the simulator
/// compiled in, the kinds the results name are listed (a campaign writes
/// every kind in each result).
pub fn fault_kinds() -> Vec<&'static str> {
    #[cfg(madsim)]
    {
        crate::world::faults::FaultKind::ALL
            .iter()
            .map(|k| k.name())
            .collect()
    }
    #[cfg(not(madsim))]
    {
        Vec::new()
    }
}

/// A summary builder listing every fault and step kind.
pub fn summary_builder() -> SummaryBuilder {
    SummaryBuilder::new(&fault_kinds(), &scenarios::step::Step::KINDS)
}
