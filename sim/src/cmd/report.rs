//! `cargo sim report merge`, and the report directory that it and
//! `cargo sim campaign` write.
//!
//! A report directory holds `results.jsonl` (one JSON line per seed, in
//! seed order), `report.md` (the markdown summary) and `failures/seed-N.toml`
//! (one file per failing seed, for `cargo sim replay`). The formats are
//! described in the `reports` crate and in `cargo sim campaign --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reports::{FAILURES_DIR, REPORT_FILE, RESULTS_FILE, SeedResult, Summary};

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
/// failures/*.toml there.
///
/// Exits with status 1 if any merged result has a violation, 2 if a
/// directory cannot be read or written.
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
    let mut sets = Vec::new();
    let mut failures = Vec::new();
    for dir in &args.dirs {
        let path = dir.join(RESULTS_FILE);
        let results = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|text| {
                reports::parse_jsonl(&text).map_err(|e| format!("{}: {e}", path.display()))
            });
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cargo sim report merge: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        sets.push((dir.display().to_string(), results));
        match read_failures(dir) {
            Ok(f) => failures.extend(f),
            Err(e) => {
                eprintln!("cargo sim report merge: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let inputs: usize = sets.iter().map(|(_, r)| r.len()).sum();
    let merged = reports::merge(sets);
    for conflict in &merged.conflicts {
        eprintln!("cargo sim report merge: warning: {conflict}");
    }
    let failures = dedupe_failures(failures);
    let summary = match write_dir(&args.out, &merged.results, &failures) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cargo sim report merge: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    println!(
        "merged {} results from {} {} into {} ({} identical copies dropped, {} conflicts)",
        inputs,
        args.dirs.len(),
        if args.dirs.len() == 1 {
            "directory"
        } else {
            "directories"
        },
        merged.results.len(),
        merged.duplicates,
        merged.conflicts.len()
    );
    print!("{}", reports::render_text(&summary));
    println!(
        "report: {}, {}{}",
        args.out.join(REPORT_FILE).display(),
        args.out.join(RESULTS_FILE).display(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(
                ", {} failure files in {}",
                failures.len(),
                args.out.join(FAILURES_DIR).display()
            )
        }
    );
    if summary.with_violation > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The failure files of a report directory, as (file name, text), sorted
/// by name.
fn read_failures(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let failures = dir.join(FAILURES_DIR);
    if !failures.is_dir() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(&failures).map_err(|e| format!("{}: {e}", failures.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("{}: {e}", failures.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = path
                .file_name()
                .expect("a file has a name")
                .to_string_lossy()
                .into_owned();
            files.push((name, text));
        }
    }
    files.sort();
    Ok(files)
}

/// Drops identical copies; a name taken by a different file gets a
/// numbered one (`seed-7.toml`, `seed-7-2.toml`, ...).
fn dedupe_failures(files: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, text) in files {
        if out.iter().any(|(n, t)| *n == name && *t == text) {
            continue;
        }
        let mut unique = name.clone();
        let stem = name.strip_suffix(".toml").unwrap_or(&name).to_string();
        let mut n = 2;
        while out.iter().any(|(taken, _)| *taken == unique) {
            unique = format!("{stem}-{n}.toml");
            n += 1;
        }
        out.push((unique, text));
    }
    out
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

/// The summary of `results`, with every fault and step kind listed.
pub fn summarize(results: &[SeedResult]) -> Summary {
    Summary::from_results(results, &fault_kinds(), &scenarios::step::Step::KINDS)
}

/// Writes a report directory: `results.jsonl` (sorted), `report.md`, and
/// `failures/` with the given (file name, text) pairs. Failure files left
/// by an earlier campaign in the same directory (`failures/seed-*.toml`)
/// are removed first, so the directory describes this run only.
pub fn write_dir(
    dir: &Path,
    results: &[SeedResult],
    failures: &[(String, String)],
) -> Result<Summary, String> {
    let mut results = results.to_vec();
    reports::sort(&mut results);
    let summary = summarize(&results);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(dir.join(RESULTS_FILE), &reports::to_jsonl(&results))?;
    write(dir.join(REPORT_FILE), &reports::render_markdown(&summary))?;
    let failures_dir = dir.join(FAILURES_DIR);
    if failures_dir.is_dir() {
        let entries = std::fs::read_dir(&failures_dir)
            .map_err(|e| format!("{}: {e}", failures_dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("{}: {e}", failures_dir.display()))?
                .path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with("seed-") && n.ends_with(".toml")) {
                std::fs::remove_file(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            }
        }
    }
    if !failures.is_empty() {
        std::fs::create_dir_all(&failures_dir)
            .map_err(|e| format!("cannot create {}: {e}", failures_dir.display()))?;
        for (name, text) in failures {
            write(failures_dir.join(name), text)?;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_files_keep_one_copy_and_rename_clashes() {
        let files = vec![
            ("seed-1.toml".to_string(), "a".to_string()),
            ("seed-1.toml".to_string(), "a".to_string()),
            ("seed-1.toml".to_string(), "b".to_string()),
            ("seed-1.toml".to_string(), "c".to_string()),
            ("seed-2.toml".to_string(), "a".to_string()),
        ];
        let names: Vec<String> = dedupe_failures(files).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "seed-1.toml",
                "seed-1-2.toml",
                "seed-1-3.toml",
                "seed-2.toml"
            ]
        );
    }
}
