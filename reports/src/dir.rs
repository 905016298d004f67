//! A report directory: the files a campaign writes and a merge reads and
//! writes, and the one place that knows where they are.
//!
//! `cargo sim campaign --report DIR` writes (and `cargo sim report merge`
//! reads and writes) the files below. `--report` without a directory
//! writes to `reports/out/latest` (git ignores `reports/out/`, and the
//! nightly workflow's `reports/shard-*` and `reports/nightly`).
//!
//! - `DIR/results.jsonl`: one [`SeedResult`] per line, as JSON, sorted by
//!   seed (then scenario, then plan); see [`crate::result`]. Being sorted
//!   lets a merge stream the files ([`merge_sorted`]) instead of holding
//!   them.
//! - `DIR/report.md`: [`render_markdown`] of the [`Summary`] of those
//!   results. It holds no wall-clock figures, so it is as repeatable as the
//!   results.
//! - `DIR/report.html`: [`render_html`] of the same summary: charts of
//!   outcomes, faults and error sites per engine file, inline SVG, one
//!   self-contained file; with seeds/s when timing.json is known.
//! - `DIR/timing.json`: `{"seeds": N, "wall_secs": S}`, the one file with
//!   wall-clock figures (a campaign's run; for a merge, the shards' seeds
//!   over the slowest shard's time, as shards run side by side). Left out
//!   of a merge when a shard has none.
//! - `DIR/failures/seed-N.toml`: one per failing seed, the file
//!   `cargo sim replay` reads. Its text comes from `sim`, which knows what
//!   a replay needs; this module only files it.
//! - `DIR/.results.jsonl.partial`: a merge's results while it runs, renamed
//!   to `results.jsonl` once complete.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::merge::{MergeCounts, Source, merge_sorted};
use crate::render::{Timing, render_html, render_markdown};
use crate::result::SeedResult;
use crate::summary::{Summary, SummaryBuilder};

/// The results file in a report directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// The markdown report in a report directory.
pub const REPORT_FILE: &str = "report.md";
/// The HTML report in a report directory.
pub const HTML_FILE: &str = "report.html";
/// The wall-clock figures of a report directory's run.
pub const TIMING_FILE: &str = "timing.json";
/// The directory of failure files in a report directory.
pub const FAILURES_DIR: &str = "failures";

/// Where a merge writes its results until they are complete: the output
/// directory may be one of those read, whose results.jsonl must survive
/// until the merge has read it (and a failed merge leaves it as it was).
const PARTIAL_RESULTS: &str = ".results.jsonl.partial";

/// Reads and writes files in buffers this large: results files run to
/// many megabytes, a line at a time.
const BUFFER: usize = 1 << 16;

/// A report directory, named by the path it was given (which messages
/// show as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDir {
    path: PathBuf,
}

impl ReportDir {
    /// The report directory at `path`; nothing is read or written yet.
    pub fn new(path: impl Into<PathBuf>) -> ReportDir {
        ReportDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn results_file(&self) -> PathBuf {
        self.path.join(RESULTS_FILE)
    }

    pub fn report_file(&self) -> PathBuf {
        self.path.join(REPORT_FILE)
    }

    pub fn html_file(&self) -> PathBuf {
        self.path.join(HTML_FILE)
    }

    /// The run's wall-clock figures, if timing.json is there and reads.
    pub fn timing(&self) -> Option<Timing> {
        let text = std::fs::read_to_string(self.path.join(TIMING_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(Timing {
            seeds: v["seeds"].as_u64()?,
            wall_secs: v["wall_secs"].as_f64()?,
        })
    }

    pub fn failures_dir(&self) -> PathBuf {
        self.path.join(FAILURES_DIR)
    }

    /// The line a command ends with to say where the report went:
    /// `report: DIR/report.md, DIR/results.jsonl`, and how many failure
    /// files it wrote if any.
    pub fn files_line(&self, failures: usize) -> String {
        let mut line = format!(
            "report: {}, {}, {}",
            self.report_file().display(),
            self.html_file().display(),
            self.results_file().display()
        );
        if failures > 0 {
            line += &format!(
                ", {} failure files in {}",
                failures,
                self.failures_dir().display()
            );
        }
        line
    }

    /// Creates the directory for a campaign, and empties it of an earlier
    /// campaign's results.jsonl, report.md and failure files, so that what
    /// it holds describes this campaign (a report.md only once it is
    /// complete).
    pub fn create(&self) -> Result<ReportWriter, String> {
        std::fs::create_dir_all(&self.path)
            .map_err(|e| format!("cannot create {}: {e}", self.path.display()))?;
        self.remove_failures()?;
        self.remove_reports()?;
        Ok(ReportWriter {
            results: ResultsWriter::create(&self.results_file())?,
            dir: self.clone(),
            failures: 0,
        })
    }

    /// Merges the report directories `shards` into this one, streaming
    /// their results files (each sorted, as campaigns write them) so that
    /// memory does not grow with them; only failure files are held.
    /// `summary` adds up the results kept; `warn` gets each conflict as it
    /// is found, in key order.
    ///
    /// This directory may be one of `shards`. It is created if missing;
    /// its results.jsonl, report.md and failure files are replaced. If the
    /// results cannot be merged, it is left as it was (or not created).
    pub fn merge(
        &self,
        shards: &[ReportDir],
        mut summary: SummaryBuilder,
        warn: impl FnMut(String),
    ) -> Result<MergedDir, String> {
        let mut sources = Vec::new();
        let mut failures = Vec::new();
        for shard in shards {
            sources.push(shard.open_results()?);
            failures.extend(shard.read_failures()?);
        }
        let failures = dedupe_failures(failures);

        let timings: Option<Vec<Timing>> = shards.iter().map(ReportDir::timing).collect();
        let counts = self.write_merged_results(sources, &mut summary, warn)?;
        let summary = summary.finish();
        let timing = timings.filter(|t| !t.is_empty()).map(|t| Timing {
            seeds: t.iter().map(|t| t.seeds).sum(),
            wall_secs: t.iter().map(|t| t.wall_secs).fold(0.0, f64::max),
        });
        self.remove_reports()?;
        self.write_report(&summary, timing)?;
        self.remove_failures()?;
        for (name, text) in &failures {
            self.write_failure(name, text)?;
        }
        Ok(MergedDir {
            counts,
            summary,
            failures: failures.len(),
        })
    }

    /// Writes the merge of `sources` to results.jsonl, through a partial
    /// file renamed into place once complete. On failure the partial file
    /// goes, and the directory too if this made it.
    fn write_merged_results(
        &self,
        sources: Vec<Source<BufReader<File>>>,
        summary: &mut SummaryBuilder,
        warn: impl FnMut(String),
    ) -> Result<MergeCounts, String> {
        let created = !self.path.exists();
        std::fs::create_dir_all(&self.path)
            .map_err(|e| format!("cannot create {}: {e}", self.path.display()))?;
        let partial = self.path.join(PARTIAL_RESULTS);
        let merged = ResultsWriter::create(&partial).and_then(|mut writer| {
            let counts = merge_sorted(
                sources,
                |r| {
                    summary.add(r);
                    writer.write(r)
                },
                warn,
            )?;
            writer.finish()?;
            let path = self.results_file();
            std::fs::rename(&partial, &path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(counts)
        });
        if merged.is_err() {
            let _ = std::fs::remove_file(&partial);
            if created {
                let _ = std::fs::remove_dir(&self.path);
            }
        }
        merged
    }

    /// The results file, to merge a line at a time: named in conflict
    /// warnings by this directory.
    fn open_results(&self) -> Result<Source<BufReader<File>>, String> {
        let path = self.results_file();
        let file = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Source {
            name: self.path.display().to_string(),
            file: path.display().to_string(),
            reader: BufReader::with_capacity(BUFFER, file),
        })
    }

    /// The failure files, as (file name, text), sorted by name.
    fn read_failures(&self) -> Result<Vec<(String, String)>, String> {
        let failures = self.failures_dir();
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
        // read_dir's order is the file system's.
        files.sort();
        Ok(files)
    }

    /// Writes report.md, report.html and, when known, timing.json.
    fn write_report(&self, summary: &Summary, timing: Option<Timing>) -> Result<(), String> {
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write(self.report_file(), render_markdown(summary))?;
        write(self.html_file(), render_html(summary, timing)?)?;
        if let Some(t) = timing {
            let json = serde_json::json!({"seeds": t.seeds, "wall_secs": t.wall_secs});
            write(self.path.join(TIMING_FILE), format!("{json}\n"))?;
        }
        Ok(())
    }

    /// Removes an earlier run's report.md, report.html and timing.json, so
    /// that none is left describing another run.
    fn remove_reports(&self) -> Result<(), String> {
        for name in [REPORT_FILE, HTML_FILE, TIMING_FILE] {
            let stale = self.path.join(name);
            if stale.exists() {
                std::fs::remove_file(&stale)
                    .map_err(|e| format!("cannot remove {}: {e}", stale.display()))?;
            }
        }
        Ok(())
    }

    /// Writes `failures/NAME`, creating `failures/` if need be.
    fn write_failure(&self, name: &str, text: &str) -> Result<(), String> {
        let failures_dir = self.failures_dir();
        std::fs::create_dir_all(&failures_dir)
            .map_err(|e| format!("cannot create {}: {e}", failures_dir.display()))?;
        let path = failures_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Removes the failure files (`failures/seed-*.toml`) an earlier
    /// campaign or merge left, so that the directory describes one run
    /// only. Other files there are left alone.
    fn remove_failures(&self) -> Result<(), String> {
        let failures_dir = self.failures_dir();
        if !failures_dir.is_dir() {
            return Ok(());
        }
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
        Ok(())
    }
}

/// A campaign's report directory, written as results come: results.jsonl
/// a line at a time, a failure file per failing seed, and report.md once
/// the campaign is over.
pub struct ReportWriter {
    dir: ReportDir,
    results: ResultsWriter,
    failures: usize,
}

impl ReportWriter {
    /// Appends `r` to results.jsonl. Results go in the order given, which
    /// must be the file's (sorted by key) for a merge to read it.
    pub fn result(&mut self, r: &SeedResult) -> Result<(), String> {
        self.results.write(r)
    }

    /// Writes `failures/seed-SEED.toml`.
    pub fn failure(&mut self, seed: u64, text: &str) -> Result<(), String> {
        self.failures += 1;
        self.dir.write_failure(&format!("seed-{seed}.toml"), text)
    }

    /// Finishes results.jsonl and writes report.md, report.html and (with
    /// `timing`) timing.json; returns the number of failure files written.
    pub fn finish(self, summary: &Summary, timing: Option<Timing>) -> Result<usize, String> {
        self.results.finish()?;
        self.dir.write_report(summary, timing)?;
        Ok(self.failures)
    }
}

/// What [`ReportDir::merge`] did.
#[derive(Debug)]
pub struct MergedDir {
    pub counts: MergeCounts,
    pub summary: Summary,
    /// Failure files written.
    pub failures: usize,
}

/// A results file written a line at a time, as results come.
struct ResultsWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl ResultsWriter {
    /// Creates (or empties) the file at `path`.
    fn create(path: &Path) -> Result<ResultsWriter, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(ResultsWriter {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(BUFFER, file),
        })
    }

    fn write(&mut self, r: &SeedResult) -> Result<(), String> {
        r.write_line(&mut self.file)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// Writes out what is buffered.
    fn finish(mut self) -> Result<(), String> {
        self.file
            .flush()
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fixtures::{FAULTS, KINDS};
    use crate::merge::merge;
    use crate::result::{Outcomes, Violation, parse_jsonl, sort, to_jsonl};

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
            reach: Default::default(),
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
        std::fs::write(dir.join(RESULTS_FILE), to_jsonl(results)).unwrap();
        for (name, text) in failures {
            std::fs::write(dir.join(FAILURES_DIR).join(name), text).unwrap();
        }
    }

    /// Merges `shards` into `out`, as `cargo sim report merge` does;
    /// returns what it did and the warnings given.
    fn merge_dirs(shards: &[PathBuf], out: &Path) -> Result<(MergedDir, Vec<String>), String> {
        let shards: Vec<ReportDir> = shards.iter().map(ReportDir::new).collect();
        let mut warnings = Vec::new();
        let merged =
            ReportDir::new(out).merge(&shards, SummaryBuilder::new(FAULTS, KINDS), |w| {
                warnings.push(w)
            })?;
        Ok((merged, warnings))
    }

    /// What the merge wrote before it streamed: everything read, merged in
    /// memory, sorted and summed up.
    fn in_memory(dirs: &[PathBuf]) -> (String, String, Vec<(String, String)>) {
        let mut sets = Vec::new();
        let mut failures = Vec::new();
        for dir in dirs {
            let text = std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap();
            sets.push((dir.display().to_string(), parse_jsonl(&text).unwrap()));
            failures.extend(ReportDir::new(dir).read_failures().unwrap());
        }
        let mut results = merge(sets).results;
        sort(&mut results);
        let summary = Summary::from_results(&results, FAULTS, KINDS);
        let mut failures = dedupe_failures(failures);
        failures.sort();
        (to_jsonl(&results), render_markdown(&summary), failures)
    }

    /// A report directory's files (report.md empty if missing).
    fn written(dir: &Path) -> (String, String, Vec<(String, String)>) {
        (
            std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap(),
            std::fs::read_to_string(dir.join(REPORT_FILE)).unwrap_or_default(),
            ReportDir::new(dir).read_failures().unwrap(),
        )
    }

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

    #[test]
    fn a_campaign_replaces_what_an_earlier_one_left() {
        let scratch = Scratch::new("campaign");
        let path = scratch.join("r");
        shard(
            &path,
            &[result(99, "old")],
            &[("seed-99.toml", "stale"), ("notes.toml", "kept")],
        );
        std::fs::write(path.join(REPORT_FILE), "stale").unwrap();
        let dir = ReportDir::new(&path);
        let mut writer = dir.create().unwrap();
        assert!(!path.join(REPORT_FILE).exists(), "no report until the end");
        assert!(!path.join(FAILURES_DIR).join("seed-99.toml").exists());
        let results = [result(1, "h"), failing(2, "h")];
        writer.result(&results[0]).unwrap();
        writer.failure(2, "seed = 2\n").unwrap();
        writer.result(&results[1]).unwrap();
        let summary = Summary::from_results(&results, FAULTS, KINDS);
        assert_eq!(writer.finish(&summary, None).unwrap(), 1);
        assert_eq!(
            written(&path),
            (
                to_jsonl(&results),
                render_markdown(&summary),
                vec![
                    ("notes.toml".to_string(), "kept".to_string()),
                    ("seed-2.toml".to_string(), "seed = 2\n".to_string())
                ]
            )
        );
        let p = path.display();
        assert_eq!(
            dir.files_line(1),
            format!(
                "report: {p}/report.md, {p}/report.html, {p}/results.jsonl, 1 failure files in {p}/failures"
            )
        );
        assert_eq!(
            dir.files_line(0),
            format!("report: {p}/report.md, {p}/report.html, {p}/results.jsonl")
        );
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
        sort(&mut b_results);
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
        let (merged, warnings) = merge_dirs(&dirs, &out).unwrap();
        let expected = in_memory(&dirs);
        assert!(written(&out) == expected, "{:#?}", written(&out).2);
        assert_eq!(
            (merged.counts.inputs, merged.counts.kept),
            (20 + 22 + 4, 41)
        );
        assert_eq!((merged.counts.duplicates, merged.counts.conflicts), (3, 2));
        assert_eq!(warnings.len(), 2);
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
