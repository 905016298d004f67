//! Campaign reports: the results of many seeded runs, one JSON line per
//! seed, and what they add up to (outcomes, faults fired, error sites hit,
//! step kinds covered, failing seeds with their replay commands), rendered
//! as markdown tables and as a short text summary.
//!
//! This crate knows nothing of the simulator: a [`SeedResult`] holds plain
//! strings, numbers and maps, and `sim` converts its run reports into them.
//! The lists of kinds a report must show even when nothing of that kind
//! happened (fault kinds, step kinds) are passed in by the caller.
//!
//! # Files
//!
//! `cargo sim campaign --report DIR` writes (and `cargo sim report merge`
//! reads and writes) the files below. `--report` without a directory
//! writes to `reports/out/latest` (git ignores `reports/out/`, and the
//! nightly workflow's `reports/shard-*` and `reports/nightly`).
//!
//! - `DIR/results.jsonl`: one [`SeedResult`] per line, as JSON, sorted by
//!   seed (then scenario, then plan), so that the file is the same however
//!   the seeds were spread over threads or machines. Maps are sorted by key.
//!   Being sorted lets a merge stream the files ([`merge_sorted`]) instead of
//!   holding them.
//! - `DIR/report.md`: [`render_markdown`] of the [`Summary`] of those
//!   results. It holds no wall-clock figures, so it is as repeatable as the
//!   results.
//! - `DIR/failures/seed-N.toml`: one per failing seed, the file
//!   `cargo sim replay` reads (written by `sim`, not by this crate).
//!
//! A line of `results.jsonl` (wrapped here):
//!
//! ```json
//! {"seed":3,"scenario":"smoke","fault_spec":"none","plan":"none","steps":30,
//!  "outcomes":{"ok":26,"match":4,"cleanly-destroyed":0,"faulted":0,"skipped":0,"violation":0},
//!  "violation":null,"faults":{"corrupt":0,"crash":0,...},
//!  "error_sites":{"ENOENT at engine/src/dsl/dataset.rs:70":12},
//!  "step_kinds":{"alloc":8,"create":4,...},"trace_hash":"b3ad98...","virtual_time_ns":15724845000,
//!  "replay":"cargo sim run --seed 3 --scenario smoke --faults none --steps 30"}
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use tabled::builder::Builder;
use tabled::settings::Style;

/// The results file in a report directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// The markdown report in a report directory.
pub const REPORT_FILE: &str = "report.md";
/// The directory of failure files in a report directory.
pub const FAILURES_DIR: &str = "failures";

/// One seed's run: one line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    /// The scenario's name (or a scenario file's stem).
    pub scenario: String,
    /// The fault plan asked for (`--faults`, or the scenario's): `swarm`,
    /// `all`, `none` or a list of kinds.
    pub fault_spec: String,
    /// The plan the seed resolved it to: `kind:rate,...` or `none`.
    pub plan: String,
    /// Engine bugs planted on purpose (self-tests only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planted: Vec<String>,
    /// Steps taken, skipped ones included.
    pub steps: u64,
    pub outcomes: Outcomes,
    /// The first violation, which ends a run; `null` if none.
    pub violation: Option<Violation>,
    /// Not a violation: the run stopped early because damage injected at
    /// rest cost a pool (a single disk without ditto blocks cannot always
    /// survive it) and the loss was detected, not hidden. What was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
    /// Faults fired, by kind (every kind, 0 if it did not fire).
    pub faults: BTreeMap<String, u64>,
    /// Engine error sites hit (`errno at file:line`), with counts.
    pub error_sites: BTreeMap<String, u64>,
    /// Steps executed (not skipped), by kind; kinds not executed are left
    /// out.
    pub step_kinds: BTreeMap<String, u64>,
    pub trace_hash: String,
    /// Virtual time at the end of the run, in nanoseconds (an integer, so
    /// that a file read and written again is the same file).
    pub virtual_time_ns: u64,
    /// The command that runs this seed again.
    pub replay: String,
}

/// Steps by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// The step did what it was asked.
    pub ok: u64,
    /// A receive whose target matched its source.
    #[serde(rename = "match")]
    pub matched: u64,
    /// A refused or failed receive that left the target as it was.
    #[serde(rename = "cleanly-destroyed")]
    pub cleanly_destroyed: u64,
    /// A step failed by an injected fault, after which the pool imported.
    pub faulted: u64,
    /// A step that no longer applied.
    pub skipped: u64,
    pub violation: u64,
}

impl Outcomes {
    /// Each outcome by its name, in the order reports list them.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("match", self.matched),
            ("cleanly-destroyed", self.cleanly_destroyed),
            ("faulted", self.faulted),
            ("ok", self.ok),
            ("skipped", self.skipped),
            ("violation", self.violation),
        ]
    }

    pub fn total(&self) -> u64 {
        self.named().iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, other: &Outcomes) {
        self.ok += other.ok;
        self.matched += other.matched;
        self.cleanly_destroyed += other.cleanly_destroyed;
        self.faulted += other.faulted;
        self.skipped += other.skipped;
        self.violation += other.violation;
    }
}

/// What broke the rules, as the oracle put it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The step it happened in; `null`: the final check (or, for a panic,
    /// not known).
    pub step: Option<u64>,
    pub expected: String,
    pub found: String,
    /// The run panicked instead of finishing: the harness or the engine
    /// broke, and `found` says where.
    #[serde(default, skip_serializing_if = "is_false")]
    pub panicked: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Violation {
    /// What kind of violation this is: the expectation with numbers
    /// (dataset names, counts) written `N` and parenthesised details
    /// dropped, so that runs that broke the same rule group together.
    pub fn signature(&self) -> String {
        let mut out = String::new();
        let mut depth = 0;
        let mut last_digit = false;
        for c in self.expected.chars() {
            match c {
                '(' => {
                    if depth == 0 {
                        out.push_str("(…)");
                    }
                    depth += 1;
                }
                ')' if depth > 0 => depth -= 1,
                _ if depth > 0 => {}
                '0'..='9' => {
                    if !last_digit {
                        out.push('N');
                    }
                }
                _ => out.push(c),
            }
            last_digit = depth == 0 && c.is_ascii_digit();
        }
        out
    }

    /// Where it happened, in words.
    pub fn at(&self) -> String {
        match self.step {
            Some(s) => format!("step {s}"),
            None if self.panicked => "a panic (step unknown)".to_string(),
            None => "the final check".to_string(),
        }
    }
}

impl SeedResult {
    /// What makes a result the same run: the key results are sorted and
    /// deduplicated by.
    pub fn key(&self) -> (u64, &str, &str) {
        (self.seed, &self.scenario, &self.plan)
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a seed result serializes")
    }
}

/// Sorts results into the order files hold them in: seed, scenario, plan.
pub fn sort(results: &mut [SeedResult]) {
    results.sort_by(|a, b| a.key().cmp(&b.key()));
}

/// The text of a `results.jsonl` file: one line per result, in the order
/// given.
pub fn to_jsonl(results: &[SeedResult]) -> String {
    let mut out = String::new();
    for r in results {
        out.push_str(&r.to_line());
        out.push('\n');
    }
    out
}

/// Reads a `results.jsonl` file's text; blank lines are ignored.
pub fn parse_jsonl(text: &str) -> Result<Vec<SeedResult>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Results from several sources, merged.
#[derive(Debug, Default)]
pub struct Merged {
    /// Sorted, one per key.
    pub results: Vec<SeedResult>,
    /// Results seen more than once: identical copies are dropped quietly,
    /// different ones (another build, or a determinism bug) keep the first
    /// and are described here.
    pub conflicts: Vec<String>,
    /// Identical copies dropped.
    pub duplicates: u64,
}

/// Merges result sets, each named by where it came from, deduplicating by
/// seed, scenario and plan.
pub fn merge(sets: Vec<(String, Vec<SeedResult>)>) -> Merged {
    let mut seen: BTreeMap<(u64, String, String), (String, SeedResult)> = BTreeMap::new();
    let mut merged = Merged::default();
    for (source, results) in sets {
        for r in results {
            let key = (r.seed, r.scenario.clone(), r.plan.clone());
            match seen.get(&key) {
                None => {
                    seen.insert(key, (source.clone(), r));
                }
                Some((_, first)) if *first == r => merged.duplicates += 1,
                Some((first_source, first)) => {
                    merged
                        .conflicts
                        .push(conflict(first_source, first, &source, &r))
                }
            }
        }
    }
    merged.results = seen.into_values().map(|(_, r)| r).collect();
    merged
}

/// The warning for a result that differs from the first of its key.
fn conflict(first_source: &str, first: &SeedResult, source: &str, r: &SeedResult) -> String {
    format!(
        "seed {} ({}, plan {}) differs between {first_source} (trace hash {}) and \
         {source} (trace hash {}): keeping the first",
        r.seed, r.scenario, r.plan, first.trace_hash, r.trace_hash
    )
}

/// A `results.jsonl` to merge, read a line at a time.
pub struct Source<R> {
    /// What conflict warnings call it (its report directory).
    pub name: String,
    /// What errors call it (its file).
    pub file: String,
    pub reader: R,
}

/// What [`merge_sorted`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Results read, over all sources.
    pub inputs: u64,
    /// Results kept: one per key.
    pub kept: u64,
    /// Identical copies dropped.
    pub duplicates: u64,
    /// Differing copies dropped (each one warned about).
    pub conflicts: u64,
}

/// One source's reading position.
struct Cursor<R> {
    source: Source<R>,
    line: String,
    line_no: u64,
    /// The key of the last result read, to check the order.
    last: Option<(u64, String, String)>,
}

impl<R: std::io::BufRead> Cursor<R> {
    /// The next result, checked to sort no lower than the one before.
    fn next(&mut self) -> Result<Option<SeedResult>, String> {
        loop {
            self.line.clear();
            let n = self
                .source
                .reader
                .read_line(&mut self.line)
                .map_err(|e| format!("cannot read {}: {e}", self.source.file))?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            let r: SeedResult = serde_json::from_str(&self.line)
                .map_err(|e| format!("{}: line {}: {e}", self.source.file, self.line_no))?;
            if let Some(last) = &self.last
                && r.key() < (last.0, last.1.as_str(), last.2.as_str())
            {
                return Err(format!(
                    "{}: line {}: not sorted: seed {} ({}, plan {}) comes after seed {} ({}, \
                     plan {}); a results file is sorted by seed, scenario and plan",
                    self.source.file,
                    self.line_no,
                    r.seed,
                    r.scenario,
                    r.plan,
                    last.0,
                    last.1,
                    last.2
                ));
            }
            self.last = Some((r.seed, r.scenario.clone(), r.plan.clone()));
            return Ok(Some(r));
        }
    }
}

/// A source's next result, waiting its turn: the heap pops the lowest key
/// first, and of equal keys the earliest source's.
struct Head {
    result: SeedResult,
    source: usize,
}

impl Head {
    fn rank(&self) -> ((u64, &str, &str), usize) {
        (self.result.key(), self.source)
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.rank().cmp(&self.rank())
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Head {}

/// [`merge`] for sources each sorted by [`SeedResult::key`], as
/// `results.jsonl` files are, read a line at a time so that memory does
/// not grow with their length. `keep` gets the kept results in order;
/// `warn` gets a warning for each conflict, in key order. The same results
/// are kept, and the same copies dropped, as [`merge`] keeps and drops.
///
/// Errors (naming the file, and the line for a bad or out-of-order one)
/// are a source's read error, a line that is not a result, a result that
/// sorts below the one before it in its file, or `keep`'s.
pub fn merge_sorted<R: std::io::BufRead>(
    sources: Vec<Source<R>>,
    mut keep: impl FnMut(&SeedResult) -> Result<(), String>,
    mut warn: impl FnMut(String),
) -> Result<MergeCounts, String> {
    let mut cursors: Vec<Cursor<R>> = sources
        .into_iter()
        .map(|source| Cursor {
            source,
            line: String::new(),
            line_no: 0,
            last: None,
        })
        .collect();
    let mut heap = std::collections::BinaryHeap::new();
    for (source, cursor) in cursors.iter_mut().enumerate() {
        if let Some(result) = cursor.next()? {
            heap.push(Head { result, source });
        }
    }
    let mut counts = MergeCounts::default();
    // The first result of the key being merged, and its source.
    let mut first: Option<Head> = None;
    while let Some(head) = heap.pop() {
        counts.inputs += 1;
        if let Some(result) = cursors[head.source].next()? {
            heap.push(Head {
                result,
                source: head.source,
            });
        }
        match &first {
            Some(f) if f.result.key() == head.result.key() => {
                if f.result == head.result {
                    counts.duplicates += 1;
                } else {
                    counts.conflicts += 1;
                    warn(conflict(
                        &cursors[f.source].source.name,
                        &f.result,
                        &cursors[head.source].source.name,
                        &head.result,
                    ));
                }
            }
            _ => {
                if let Some(f) = first.replace(head) {
                    keep(&f.result)?;
                    counts.kept += 1;
                }
            }
        }
    }
    if let Some(f) = first {
        keep(&f.result)?;
        counts.kept += 1;
    }
    Ok(counts)
}

/// One row of a coverage table: a fault kind, an error site or a step kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub name: String,
    /// Times it happened, over all runs.
    pub count: u64,
    /// Runs it happened in.
    pub runs: u64,
    /// Runs whose fault plan had it on (fault kinds only).
    pub planned: u64,
}

/// What a set of results adds up to.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub seeds: u64,
    pub lowest_seed: Option<u64>,
    pub highest_seed: Option<u64>,
    /// Scenarios, with the runs of each.
    pub scenarios: BTreeMap<String, u64>,
    /// Fault plans asked for, with the runs of each.
    pub fault_specs: BTreeMap<String, u64>,
    pub with_violation: u64,
    pub without_violation: u64,
    /// Steps by outcome, over all runs.
    pub outcomes: Outcomes,
    /// Runs with at least one step of each outcome.
    pub outcome_runs: Outcomes,
    /// Virtual time over all runs, in nanoseconds.
    pub virtual_time_ns: u64,
    /// Every fault kind asked for, in its order, then any others seen.
    pub faults: Vec<Tally>,
    /// Sites by hits, most first.
    pub error_sites: Vec<Tally>,
    /// Every step kind asked for, in its order, then any others seen.
    pub step_kinds: Vec<Tally>,
    /// The results with a violation, in order.
    pub failures: Vec<SeedResult>,
    /// Seeds whose run stopped early on a pool lost to damage at rest.
    pub lost: Vec<u64>,
    /// Violations grouped by [`Violation::signature`], most runs first.
    pub signatures: Vec<Signature>,
}

/// Runs that broke the same rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub signature: String,
    /// Their seeds, in order.
    pub seeds: Vec<u64>,
}

impl Summary {
    /// Adds up `results`. `fault_kinds` and `step_kinds` are listed in the
    /// report in the order given, with 0 for those that never happened;
    /// kinds the results name that are not in these lists follow, sorted.
    pub fn from_results(
        results: &[SeedResult],
        fault_kinds: &[&str],
        step_kinds: &[&str],
    ) -> Summary {
        let mut builder = SummaryBuilder::new(fault_kinds, step_kinds);
        for r in results {
            builder.add(r);
        }
        builder.finish()
    }

    /// The seeds as a range, `lowest..=highest` (or `none`).
    pub fn seed_span(&self) -> String {
        match (self.lowest_seed, self.highest_seed) {
            (Some(lo), Some(hi)) if lo == hi => format!("{lo}"),
            (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
            _ => "none".to_string(),
        }
    }
}

/// A [`Summary`] added up one result at a time, in any order, so that a
/// campaign or a merge need not hold its results: it keeps tallies, the
/// results with a violation and the seeds of lost runs.
pub struct SummaryBuilder {
    summary: Summary,
    faults: Tallies,
    sites: Tallies,
    kinds: Tallies,
}

impl SummaryBuilder {
    /// `fault_kinds` and `step_kinds` are listed in the report in the order
    /// given, with 0 for those that never happened; kinds the results name
    /// that are not in these lists follow, sorted.
    pub fn new(fault_kinds: &[&str], step_kinds: &[&str]) -> SummaryBuilder {
        SummaryBuilder {
            summary: Summary {
                seeds: 0,
                lowest_seed: None,
                highest_seed: None,
                scenarios: BTreeMap::new(),
                fault_specs: BTreeMap::new(),
                with_violation: 0,
                without_violation: 0,
                outcomes: Outcomes::default(),
                outcome_runs: Outcomes::default(),
                virtual_time_ns: 0,
                faults: Vec::new(),
                error_sites: Vec::new(),
                step_kinds: Vec::new(),
                failures: Vec::new(),
                lost: Vec::new(),
                signatures: Vec::new(),
            },
            faults: Tallies::new(fault_kinds),
            sites: Tallies::new(&[]),
            kinds: Tallies::new(step_kinds),
        }
    }

    pub fn add(&mut self, r: &SeedResult) {
        let summary = &mut self.summary;
        summary.seeds += 1;
        summary.lowest_seed = Some(summary.lowest_seed.map_or(r.seed, |s| s.min(r.seed)));
        summary.highest_seed = Some(summary.highest_seed.map_or(r.seed, |s| s.max(r.seed)));
        *summary.scenarios.entry(r.scenario.clone()).or_default() += 1;
        *summary.fault_specs.entry(r.fault_spec.clone()).or_default() += 1;
        if r.violation.is_some() {
            summary.with_violation += 1;
            summary.failures.push(r.clone());
        } else {
            summary.without_violation += 1;
        }
        if r.lost.is_some() {
            summary.lost.push(r.seed);
        }
        summary.outcomes.add(&r.outcomes);
        summary.outcome_runs.add(&Outcomes {
            ok: u64::from(r.outcomes.ok > 0),
            matched: u64::from(r.outcomes.matched > 0),
            cleanly_destroyed: u64::from(r.outcomes.cleanly_destroyed > 0),
            faulted: u64::from(r.outcomes.faulted > 0),
            skipped: u64::from(r.outcomes.skipped > 0),
            violation: u64::from(r.outcomes.violation > 0),
        });
        summary.virtual_time_ns += r.virtual_time_ns;
        for (kind, n) in &r.faults {
            self.faults.add(kind, *n);
        }
        for kind in plan_kinds(&r.plan) {
            self.faults.entry(kind).planned += 1;
        }
        for (site, n) in &r.error_sites {
            self.sites.add(site, *n);
        }
        for (kind, n) in &r.step_kinds {
            self.kinds.add(kind, *n);
        }
    }

    /// The summary, its lists in the order of the results' keys.
    pub fn finish(self) -> Summary {
        let mut summary = self.summary;
        summary.failures.sort_by(|a, b| a.key().cmp(&b.key()));
        summary.lost.sort_unstable();
        summary.faults = self.faults.into_rows();
        summary.error_sites = self.sites.into_rows();
        summary
            .error_sites
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        summary.step_kinds = self.kinds.into_rows();
        let mut signatures: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for r in &summary.failures {
            if let Some(v) = &r.violation {
                signatures.entry(v.signature()).or_default().push(r.seed);
            }
        }
        summary.signatures = signatures
            .into_iter()
            .map(|(signature, seeds)| Signature { signature, seeds })
            .collect();
        summary.signatures.sort_by(|a, b| {
            b.seeds
                .len()
                .cmp(&a.seeds.len())
                .then_with(|| a.signature.cmp(&b.signature))
        });
        summary
    }
}

/// How many runs stopped early, and which.
fn lost_runs(seeds: &[u64]) -> String {
    if seeds.is_empty() {
        return "0".to_string();
    }
    format!(
        "{} (seeds {})",
        seeds.len(),
        seed_list(seeds, SIGNATURE_SEEDS)
    )
}

/// The kinds a resolved plan (`kind:rate,...` or `none`) has on.
fn plan_kinds(plan: &str) -> impl Iterator<Item = &str> {
    plan.split(',')
        .map(|item| item.split(':').next().unwrap_or("").trim())
        .filter(|kind| !kind.is_empty() && *kind != "none")
}

/// Tallies by name: the listed names first, in order, then others sorted.
struct Tallies {
    listed: Vec<Tally>,
    others: BTreeMap<String, Tally>,
}

impl Tallies {
    fn new(names: &[&str]) -> Tallies {
        Tallies {
            listed: names
                .iter()
                .map(|n| Tally {
                    name: n.to_string(),
                    count: 0,
                    runs: 0,
                    planned: 0,
                })
                .collect(),
            others: BTreeMap::new(),
        }
    }

    fn entry(&mut self, name: &str) -> &mut Tally {
        if let Some(i) = self.listed.iter().position(|t| t.name == name) {
            return &mut self.listed[i];
        }
        self.others
            .entry(name.to_string())
            .or_insert_with(|| Tally {
                name: name.to_string(),
                count: 0,
                runs: 0,
                planned: 0,
            })
    }

    fn add(&mut self, name: &str, n: u64) {
        let tally = self.entry(name);
        tally.count += n;
        tally.runs += u64::from(n > 0);
    }

    fn into_rows(self) -> Vec<Tally> {
        let mut rows = self.listed;
        rows.extend(self.others.into_values());
        rows
    }
}

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
            "runs stopped early: a pool lost to damage at rest, detected".to_string(),
            lost_runs(&summary.lost),
        ],
        vec!["steps".to_string(), summary.outcomes.total().to_string()],
        vec![
            "virtual time".to_string(),
            format!("{:.3}s", summary.virtual_time_ns as f64 / 1e9),
        ],
    ];
    let _ = writeln!(out, "{}\n", markdown_table(&["campaign", ""], rows));

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

    let covered = summary.step_kinds.iter().filter(|t| t.count > 0).count();
    let _ = writeln!(out, "## Step kinds covered\n");
    let _ = writeln!(
        out,
        "{covered} of {} kinds executed.\n",
        summary.step_kinds.len()
    );
    let rows = summary
        .step_kinds
        .iter()
        .map(|t| vec![t.name.clone(), t.count.to_string(), t.runs.to_string()])
        .collect();
    let _ = writeln!(
        out,
        "{}\n",
        markdown_table(&["kind", "steps", "runs"], rows)
    );

    let _ = writeln!(out, "## Failing seeds\n");
    if summary.failures.is_empty() {
        let _ = writeln!(out, "None.");
        return out;
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
    out
}

/// How many seeds a signature row lists.
const SIGNATURE_SEEDS: usize = 8;

/// `1, 5, 9` or `1, 5, 9, ... (12 in all)`.
fn seed_list(seeds: &[u64], most: usize) -> String {
    let mut text = seeds
        .iter()
        .take(most)
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if seeds.len() > most {
        let _ = write!(text, ", ... ({} in all)", seeds.len());
    }
    text
}

/// How many signatures the text summary lists.
const TEXT_SIGNATURES: usize = 8;

/// How many failing seeds the text summary lists.
const TEXT_FAILURES: usize = 5;

/// A short text summary, for standard output.
pub fn render_text(summary: &Summary) -> String {
    let mut out = String::new();
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
            "runs stopped early on a pool lost to damage at rest (detected, not a violation): {}",
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
    if !summary.signatures.is_empty() {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULTS: &[&str] = &["crash", "torn", "signal"];
    const KINDS: &[&str] = &["create", "write", "send-full", "crash"];

    fn result(seed: u64) -> SeedResult {
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
        }
    }

    fn failing(seed: u64) -> SeedResult {
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

    #[test]
    fn a_result_is_one_json_line_that_reads_back() {
        let rs = vec![result(1), failing(2)];
        let text = to_jsonl(&rs);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains(r#""match":1"#), "{text}");
        assert!(text.contains(r#""cleanly-destroyed":0"#), "{text}");
        assert!(text.contains(r#""violation":null"#), "{text}");
        assert!(
            !text.contains("planted"),
            "empty planted lists are left out"
        );
        assert_eq!(parse_jsonl(&format!("\n{text}\n")).unwrap(), rs);
        assert_eq!(
            to_jsonl(&parse_jsonl(&text).unwrap()),
            text,
            "read and written again"
        );
        let err = parse_jsonl("{\"seed\":1}\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn the_summary_adds_up_and_lists_every_kind() {
        let mut other = result(7);
        other.faults.insert("pipe-damage".into(), 1);
        other.step_kinds.insert("shiny".into(), 2);
        other.plan = "none".into();
        let s = Summary::from_results(&[failing(9), result(3), other], FAULTS, KINDS);
        assert_eq!(s.seeds, 3);
        assert_eq!((s.lowest_seed, s.highest_seed), (Some(3), Some(9)));
        assert_eq!((s.with_violation, s.without_violation), (1, 2));
        assert_eq!(s.outcomes.ok, 9);
        assert_eq!(s.outcomes.matched, 3);
        assert_eq!(s.outcome_runs.violation, 1);
        assert_eq!(s.outcomes.total(), 13);
        let faults: Vec<(&str, u64, u64, u64)> = s
            .faults
            .iter()
            .map(|t| (t.name.as_str(), t.count, t.runs, t.planned))
            .collect();
        assert_eq!(
            faults,
            [
                ("crash", 0, 0, 2),
                ("torn", 0, 0, 0),
                ("signal", 6, 3, 2),
                ("pipe-damage", 1, 1, 0)
            ]
        );
        let kinds: Vec<(&str, u64)> = s
            .step_kinds
            .iter()
            .map(|t| (t.name.as_str(), t.count))
            .collect();
        assert_eq!(
            kinds,
            [
                ("create", 3),
                ("write", 9),
                ("send-full", 0),
                ("crash", 0),
                ("shiny", 2)
            ]
        );
        assert_eq!(s.error_sites[0].count, 9);
        assert_eq!(s.error_sites[0].runs, 3);
        assert_eq!(s.failures.len(), 1);
        assert_eq!(s.failures[0].seed, 9);
    }

    #[test]
    fn the_summary_does_not_depend_on_the_order_of_results() {
        let a = Summary::from_results(&[result(1), failing(2), result(3)], FAULTS, KINDS);
        let b = Summary::from_results(&[result(3), result(1), failing(2)], FAULTS, KINDS);
        assert_eq!(a, b);
        assert_eq!(render_markdown(&a), render_markdown(&b));
    }

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
        let text = render_text(&s);
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

        let clean = render_markdown(&Summary::from_results(&[result(1)], FAULTS, KINDS));
        assert!(
            clean.contains("Verdict: no violation in 1 runs."),
            "{clean}"
        );
        assert!(clean.ends_with("## Failing seeds\n\nNone.\n"), "{clean}");
    }

    #[test]
    fn violations_group_by_what_was_expected() {
        let v = |expected: &str| Violation {
            step: None,
            expected: expected.into(),
            found: String::new(),
            panicked: false,
        };
        assert_eq!(
            v("dst/r12@s3 to match src/fs1@s3").signature(),
            "dst/rN@sN to match src/fsN@sN"
        );
        assert_eq!(
            v("the refused receive (EIO: read at 5 (x)) to leave the target as it was").signature(),
            "the refused receive (…) to leave the target as it was"
        );
        let with = |seed, expected: &str| {
            let mut r = failing(seed);
            r.violation = Some(v(expected));
            r
        };
        let s = Summary::from_results(
            &[
                with(5, "dst/r1@s2 to match src/fs1@s2"),
                with(3, "src to import"),
                with(1, "dst/r7@s9 to match src/fs3@s9"),
                result(2),
            ],
            FAULTS,
            KINDS,
        );
        let groups: Vec<(&str, &[u64])> = s
            .signatures
            .iter()
            .map(|g| (g.signature.as_str(), g.seeds.as_slice()))
            .collect();
        assert_eq!(
            groups,
            [
                ("dst/rN@sN to match src/fsN@sN", &[1, 5][..]),
                ("src to import", &[3][..])
            ]
        );
        let md = render_markdown(&s);
        assert!(
            md.contains("| dst/rN@sN to match src/fsN@sN | 2    | 1, 5  |"),
            "{md}"
        );
        assert!(render_text(&s).contains("      2  dst/rN@sN to match src/fsN@sN (seeds 1, 5)"));
        assert_eq!(seed_list(&[1, 2, 3, 4], 2), "1, 2, ... (4 in all)");
        let mut panic = v("the run to end without a panic");
        assert_eq!(panic.at(), "the final check");
        panic.panicked = true;
        assert_eq!(panic.at(), "a panic (step unknown)");
    }

    #[test]
    fn an_empty_campaign_renders() {
        let s = Summary::from_results(&[], FAULTS, KINDS);
        assert_eq!(s.seed_span(), "none");
        let md = render_markdown(&s);
        assert!(md.contains("| crash "), "{md}");
        assert!(md.contains("## Error sites hit\n\nNone."), "{md}");
    }

    #[test]
    fn the_builder_in_any_order_adds_up_to_from_results() {
        let mut lost = result(6);
        lost.lost = Some("src: pool damaged at rest".into());
        let mut other = failing(4);
        other.scenario = "mix".into();
        other.plan = "none".into();
        other.faults.insert("pipe-damage".into(), 1);
        other.step_kinds.insert("shiny".into(), 2);
        other.error_sites.insert("EIO at b.rs:2".into(), 5);
        let mut panicked = failing(8);
        panicked.violation = Some(Violation {
            step: None,
            expected: "the run to end without a panic".into(),
            found: "panic at x.rs:1".into(),
            panicked: true,
        });
        let mut sorted = vec![
            result(1),
            failing(2),
            failing(4),
            other,
            lost,
            failing(7),
            panicked,
            result(9),
        ];
        sort(&mut sorted);
        let expected = Summary::from_results(&sorted, FAULTS, KINDS);
        assert_eq!(expected.failures.len(), 5);
        assert_eq!(expected.lost, [6]);
        let mut orders = vec![sorted.iter().rev().cloned().collect::<Vec<_>>()];
        for turn in 1..sorted.len() {
            let mut order = sorted.clone();
            order.rotate_left(turn);
            orders.push(order);
        }
        let (odd, even): (Vec<_>, Vec<_>) = sorted.iter().cloned().partition(|r| r.seed % 2 == 1);
        orders.push(odd.into_iter().chain(even).collect());
        for order in orders {
            let mut builder = SummaryBuilder::new(FAULTS, KINDS);
            for r in &order {
                builder.add(r);
            }
            let got = builder.finish();
            assert_eq!(got, expected);
            assert_eq!(render_markdown(&got), render_markdown(&expected));
            assert_eq!(render_text(&got), render_text(&expected));
            assert_eq!(got, Summary::from_results(&order, FAULTS, KINDS));
        }
    }

    /// Merges `sets` as files: each sorted, one line per result.
    fn merge_files(
        sets: &[(&str, Vec<SeedResult>)],
    ) -> Result<(Vec<SeedResult>, MergeCounts, Vec<String>), String> {
        let texts: Vec<(String, String)> = sets
            .iter()
            .map(|(name, results)| (name.to_string(), to_jsonl(results)))
            .collect();
        let sources = texts
            .iter()
            .map(|(name, text)| Source {
                name: name.clone(),
                file: format!("{name}/results.jsonl"),
                reader: text.as_bytes(),
            })
            .collect();
        let mut kept = Vec::new();
        let mut warnings = Vec::new();
        let counts = merge_sorted(
            sources,
            |r| {
                kept.push(r.clone());
                Ok(())
            },
            |w| warnings.push(w),
        )?;
        Ok((kept, counts, warnings))
    }

    #[test]
    fn merging_sorted_files_keeps_and_drops_what_merge_does() {
        let changed = |seed: u64, hash: &str| {
            let mut r = result(seed);
            r.trace_hash = hash.into();
            r
        };
        let mut mix = result(2);
        mix.scenario = "mix".into();
        let mut planless = result(2);
        planless.plan = "none".into();
        let sets = vec![
            ("a", vec![result(1), result(2), result(2), result(5)]),
            ("b", vec![mix, changed(2, "b2"), failing(3), result(5)]),
            ("c", vec![]),
            (
                "d",
                vec![result(0), changed(2, "d2"), planless, changed(5, "d5")],
            ),
            ("e", vec![failing(3), result(9)]),
        ];
        let (kept, counts, warnings) = merge_files(&sets).unwrap();
        let old = merge(
            sets.iter()
                .map(|(name, rs)| (name.to_string(), rs.clone()))
                .collect(),
        );
        assert_eq!(kept, old.results);
        assert_eq!(to_jsonl(&kept), to_jsonl(&old.results));
        assert_eq!(counts.inputs, 14);
        assert_eq!(counts.kept, old.results.len() as u64);
        assert_eq!(counts.duplicates, old.duplicates);
        assert_eq!((counts.duplicates, counts.conflicts), (3, 3));
        assert_eq!(counts.kept, 8);
        // The same warnings, in key order rather than source order.
        let mut sorted_old = old.conflicts.clone();
        sorted_old.sort();
        let mut sorted_new = warnings.clone();
        sorted_new.sort();
        assert_eq!(sorted_new, sorted_old);
        assert!(
            warnings[0].contains("seed 2 (smoke, plan crash:0.01,signal:0.2) differs between a")
                && warnings[0].contains("(trace hash hash2) and b (trace hash b2)"),
            "{warnings:?}"
        );
        assert!(warnings[2].contains("seed 5"), "{warnings:?}");
    }

    #[test]
    fn merging_refuses_unsorted_and_unreadable_lines() {
        let err = merge_files(&[
            ("a", vec![result(1), result(2)]),
            ("b", vec![result(1), result(4), result(3)]),
        ])
        .unwrap_err();
        assert!(
            err.starts_with("b/results.jsonl: line 3: not sorted: seed 3 (smoke, plan "),
            "{err}"
        );
        assert!(err.contains("comes after seed 4"), "{err}");

        let text = format!("{}\n\n{{\"seed\":1}}\n", result(1).to_line());
        let err = merge_sorted(
            vec![Source {
                name: "x".into(),
                file: "x/results.jsonl".into(),
                reader: text.as_bytes(),
            }],
            |_| Ok(()),
            |_| {},
        )
        .unwrap_err();
        assert!(err.starts_with("x/results.jsonl: line 3: "), "{err}");

        let mut kept = 0;
        let err = merge_sorted(
            vec![Source {
                name: "a".into(),
                file: "a/results.jsonl".into(),
                reader: to_jsonl(&[result(1), result(2)]).as_bytes(),
            }],
            |_| {
                kept += 1;
                Err("disk full".to_string())
            },
            |_| {},
        )
        .unwrap_err();
        assert_eq!((err.as_str(), kept), ("disk full", 1));
    }

    #[test]
    fn merging_sorts_and_drops_copies_and_reports_conflicts() {
        let mut changed = result(2);
        changed.trace_hash = "other".into();
        let merged = merge(vec![
            ("a".into(), vec![result(4), result(2)]),
            ("b".into(), vec![result(2), result(1), changed]),
        ]);
        let seeds: Vec<u64> = merged.results.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, [1, 2, 4]);
        assert_eq!(merged.results[1].trace_hash, "hash2");
        assert_eq!(merged.duplicates, 1);
        assert_eq!(merged.conflicts.len(), 1);
        assert!(
            merged.conflicts[0].contains("seed 2") && merged.conflicts[0].contains("between a"),
            "{:?}",
            merged.conflicts
        );
        let mut other_scenario = result(2);
        other_scenario.scenario = "mix".into();
        let merged = merge(vec![("a".into(), vec![result(2), other_scenario])]);
        assert_eq!(
            merged.results.len(),
            2,
            "a seed in two scenarios is two runs"
        );
    }
}
