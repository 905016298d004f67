//! `cargo sim report merge`, and the report directory that it and
//! `cargo sim campaign` write.
//!
//! A report directory holds `results.jsonl` (one JSON line per seed, in
//! seed order), `report.md` (the markdown summary) and `failures/seed-N.toml`
//! (one file per failing seed, for `cargo sim replay`). The formats are
//! described in the `reports` crate and in `cargo sim campaign --help`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reports::dir::{FAILURES_DIR, REPORT_FILE, RESULTS_FILE};
use reports::merge::{MergeCounts, Source};
use reports::render::render_markdown;
use reports::result::SeedResult;
use reports::summary::{Summary, SummaryBuilder};

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
    let merged = match merge_dirs(&args.dirs, &args.out) {
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
    print!("{}", reports::render::render_text(&summary));
    println!(
        "report: {}, {}{}",
        args.out.join(REPORT_FILE).display(),
        args.out.join(RESULTS_FILE).display(),
        if merged.failures == 0 {
            String::new()
        } else {
            format!(
                ", {} failure files in {}",
                merged.failures,
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

/// What [`merge_dirs`] did.
#[derive(Debug)]
struct Merged {
    counts: MergeCounts,
    summary: Summary,
    /// Failure files written.
    failures: usize,
}

/// Where a merge writes its results until they are complete: `out` may be
/// one of the directories read, whose results.jsonl must survive until
/// the merge has read it (and a failed merge leaves it as it was).
const PARTIAL_RESULTS: &str = ".results.jsonl.partial";

/// Merges the report directories `dirs` into `out`, streaming their
/// results files (each sorted, as campaigns write them) so that memory
/// does not grow with them; only failure files are held. Conflicts are
/// warned about on standard error as they are found, in key order.
fn merge_dirs(dirs: &[PathBuf], out: &Path) -> Result<Merged, String> {
    let mut sources = Vec::new();
    let mut failures = Vec::new();
    for dir in dirs {
        let path = dir.join(RESULTS_FILE);
        let file = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        sources.push(Source {
            name: dir.display().to_string(),
            file: path.display().to_string(),
            reader: BufReader::with_capacity(1 << 16, file),
        });
        failures.extend(read_failures(dir)?);
    }
    let failures = dedupe_failures(failures);

    let created = !out.exists();
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let partial = out.join(PARTIAL_RESULTS);
    let mut summary = summary_builder();
    let merged = ResultsWriter::create(&partial).and_then(|mut writer| {
        let counts = reports::merge::merge_sorted(
            sources,
            |r| {
                summary.add(r);
                writer.write(r)
            },
            |conflict| eprintln!("cargo sim report merge: warning: {conflict}"),
        )?;
        writer.finish()?;
        let path = out.join(RESULTS_FILE);
        std::fs::rename(&partial, &path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(counts)
    });
    let counts = match merged {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            if created {
                let _ = std::fs::remove_dir(out);
            }
            return Err(e);
        }
    };
    let summary = summary.finish();
    write_report(out, &summary)?;
    remove_failures(out)?;
    for (name, text) in &failures {
        write_failure(out, name, text)?;
    }
    Ok(Merged {
        counts,
        summary,
        failures: failures.len(),
    })
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

/// A summary builder listing every fault and step kind.
pub fn summary_builder() -> SummaryBuilder {
    SummaryBuilder::new(&fault_kinds(), &scenarios::step::Step::KINDS)
}

/// A results file written a line at a time, as results come.
pub struct ResultsWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl ResultsWriter {
    /// Creates (or empties) the file at `path`.
    pub fn create(path: &Path) -> Result<ResultsWriter, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(ResultsWriter {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Appends one line: what [`reports::result::to_jsonl`] writes for it.
    pub fn write(&mut self, r: &SeedResult) -> Result<(), String> {
        serde_json::to_writer(&mut self.file, r)
            .map_err(std::io::Error::from)
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// Writes out what is buffered.
    pub fn finish(mut self) -> Result<(), String> {
        self.file
            .flush()
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// Writes `report.md` into `dir`.
pub fn write_report(dir: &Path, summary: &Summary) -> Result<(), String> {
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, render_markdown(summary))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Removes the failure files (`failures/seed-*.toml`) an earlier campaign
/// or merge left in `dir`, so that the directory describes one run only.
pub fn remove_failures(dir: &Path) -> Result<(), String> {
    let failures_dir = dir.join(FAILURES_DIR);
    if !failures_dir.is_dir() {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(&failures_dir).map_err(|e| format!("{}: {e}", failures_dir.display()))?;
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
    Ok(())
}

/// Writes `failures/NAME` into `dir`, creating `failures/` if need be.
pub fn write_failure(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let failures_dir = dir.join(FAILURES_DIR);
    std::fs::create_dir_all(&failures_dir)
        .map_err(|e| format!("cannot create {}: {e}", failures_dir.display()))?;
    let path = failures_dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
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

#[cfg(test)]
mod merge_tests {
    use std::collections::BTreeMap;

    use reports::result::{Outcomes, Violation};

    use super::*;

    /// A directory under the system's temporary one, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("zsim-report-unit-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn result(seed: u64, hash: &str) -> SeedResult {
        let kinds = ["create", "write", "send-full"];
        SeedResult {
            seed,
            scenario: "mix".into(),
            fault_spec: "all".into(),
            plan: format!("torn:0.0{}", seed % 7),
            planted: Vec::new(),
            steps: 10 + seed % 5,
            outcomes: Outcomes {
                ok: 6 + seed % 3,
                matched: 2,
                faulted: seed % 2,
                ..Outcomes::default()
            },
            violation: None,
            lost: (seed % 11 == 4).then(|| "src: damaged at rest".to_string()),
            faults: [("torn".to_string(), seed % 3)].into(),
            error_sites: [(format!("ENOENT at a.rs:{}", seed % 4), 1 + seed % 2)].into(),
            step_kinds: BTreeMap::from([(kinds[(seed % 3) as usize].to_string(), 3)]),
            trace_hash: hash.to_string(),
            virtual_time_ns: 1_000_000 * seed,
            replay: format!("cargo sim run --seed {seed} --scenario mix"),
        }
    }

    fn failing(seed: u64, hash: &str) -> SeedResult {
        let mut r = result(seed, hash);
        r.outcomes.violation = 1;
        r.violation = Some(Violation {
            step: Some(seed % 9),
            expected: format!("dst/r{seed} to match src/fs1"),
            found: "a | b".into(),
            panicked: false,
        });
        r
    }

    /// Writes a report directory as a campaign would: results in the order
    /// given, and failure files.
    fn shard(dir: &Path, results: &[SeedResult], failures: &[(&str, &str)]) {
        std::fs::create_dir_all(dir.join(FAILURES_DIR)).unwrap();
        std::fs::write(dir.join(RESULTS_FILE), reports::result::to_jsonl(results)).unwrap();
        for (name, text) in failures {
            std::fs::write(dir.join(FAILURES_DIR).join(name), text).unwrap();
        }
    }

    /// What the merge wrote before it streamed: everything read, merged in
    /// memory, sorted and summed up.
    fn in_memory(dirs: &[PathBuf]) -> (String, String, Vec<(String, String)>) {
        let mut sets = Vec::new();
        let mut failures = Vec::new();
        for dir in dirs {
            let text = std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap();
            sets.push((
                dir.display().to_string(),
                reports::result::parse_jsonl(&text).unwrap(),
            ));
            failures.extend(read_failures(dir).unwrap());
        }
        let mut results = reports::merge::merge(sets).results;
        reports::result::sort(&mut results);
        let summary =
            Summary::from_results(&results, &fault_kinds(), &scenarios::step::Step::KINDS);
        let mut failures = dedupe_failures(failures);
        failures.sort();
        (
            reports::result::to_jsonl(&results),
            render_markdown(&summary),
            failures,
        )
    }

    /// A report directory's files (report.md empty if missing).
    fn written(dir: &Path) -> (String, String, Vec<(String, String)>) {
        (
            std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap(),
            std::fs::read_to_string(dir.join(REPORT_FILE)).unwrap_or_default(),
            read_failures(dir).unwrap(),
        )
    }

    #[test]
    fn the_streamed_merge_writes_what_the_in_memory_one_did() {
        let scratch = Scratch::new("same");
        let (a, b, c) = (scratch.join("a"), scratch.join("b"), scratch.join("c"));
        let a_results: Vec<SeedResult> = (0..40)
            .step_by(2)
            .map(|s| {
                if s % 10 == 6 {
                    failing(s, "h")
                } else {
                    result(s, "h")
                }
            })
            .collect();
        shard(
            &a,
            &a_results,
            &[("seed-6.toml", "six"), ("seed-16.toml", "16")],
        );
        let mut b_results: Vec<SeedResult> = (1..40).step_by(2).map(|s| result(s, "h")).collect();
        // A copy of a's seed 6, and a seed 8 from another build.
        b_results.push(failing(6, "h"));
        b_results.push(result(8, "other"));
        reports::result::sort(&mut b_results);
        shard(
            &b,
            &b_results,
            &[("seed-6.toml", "six"), ("seed-7.toml", "7")],
        );
        // A shard that has a copy of a seed twice, and one from yet another
        // build, and a blank line.
        let c_results = [
            result(3, "h"),
            result(3, "h"),
            result(8, "third"),
            result(41, "h"),
        ];
        shard(&c, &c_results, &[("seed-6.toml", "not six")]);
        let text = std::fs::read_to_string(c.join(RESULTS_FILE)).unwrap();
        std::fs::write(c.join(RESULTS_FILE), format!("\n{text}\n")).unwrap();

        let dirs = vec![a.clone(), b.clone(), c.clone()];
        let out = scratch.join("out");
        // A failure file left by an earlier merge into `out` goes.
        shard(&out, &[result(99, "old")], &[("seed-99.toml", "stale")]);
        let merged = merge_dirs(&dirs, &out).unwrap();
        let expected = in_memory(&dirs);
        assert!(written(&out) == expected, "{:#?}", written(&out).2);
        assert_eq!(
            (merged.counts.inputs, merged.counts.kept),
            (20 + 22 + 4, 41)
        );
        assert_eq!((merged.counts.duplicates, merged.counts.conflicts), (3, 2));
        assert_eq!(merged.summary.with_violation, 4);
        assert_eq!(merged.failures, 4);
        assert!(!out.join(PARTIAL_RESULTS).exists());

        // Into one of the directories read.
        merge_dirs(&dirs, &b).unwrap();
        assert!(written(&b) == expected);
        assert!(!b.join(PARTIAL_RESULTS).exists());
    }

    #[test]
    fn an_unsorted_or_unreadable_results_file_is_refused_and_nothing_written() {
        let scratch = Scratch::new("unsorted");
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        shard(&a, &[result(1, "h"), result(2, "h")], &[]);
        shard(&b, &[result(3, "h"), result(5, "h"), result(4, "h")], &[]);
        let out = scratch.join("out");
        let err = merge_dirs(&[a.clone(), b.clone()], &out).unwrap_err();
        let file = b.join(RESULTS_FILE).display().to_string();
        assert!(
            err.starts_with(&format!("{file}: line 3: not sorted: seed 4 ")),
            "{err}"
        );
        assert!(!out.exists(), "the directory made for it is gone");

        // Into an existing directory (one read): left as it was.
        let before = written(&a);
        let err = merge_dirs(&[a.clone(), b.clone()], &a).unwrap_err();
        assert!(err.contains("not sorted"), "{err}");
        assert_eq!(written(&a), before);
        assert!(!a.join(PARTIAL_RESULTS).exists());

        std::fs::write(
            b.join(RESULTS_FILE),
            format!("{}\n{{\n", result(1, "h").to_line()),
        )
        .unwrap();
        let err = merge_dirs(&[a.clone(), b.clone()], &out).unwrap_err();
        assert!(err.starts_with(&format!("{file}: line 2: ")), "{err}");
        assert!(!out.exists());
    }
}
