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

/// Work with campaign reports (`results.jsonl`, `report.md`, `failures/`).
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    Merge(MergeArgs),
}

/// Merge the report directories of several campaigns (the shards of a
/// night's run, say) into one: reads each DIR/results.jsonl, keeps one
/// result per seed, scenario and plan (a seed found twice with different
/// results is kept as first seen, with a warning), writes the merged
/// results.jsonl and report.md to the --out directory and copies every
/// failures/*.toml there. The --out directory may be one of the DIRs.
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
    /// results.jsonl, report.md and failures/seed-*.toml are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &ReportArgs) -> ExitCode {
    match &args.command {
        ReportCommand::Merge(args) => merge(args),
    }
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
