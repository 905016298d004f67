//! One seed's result: a line of `results.jsonl`, and the file's text.
//!
//! A [`SeedResult`] holds plain strings, numbers and maps (`sim` converts
//! its run reports into them), so that reports can be read, merged and
//! added up without the simulator. A file holds one result per line,
//! sorted by [`SeedResult::key`], so that it is the same however the seeds
//! were spread over threads or machines and can be merged a line at a time.
//! Maps are sorted by key.
//!
//! A line (wrapped here):
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
use std::io::Write;

use serde::{Deserialize, Serialize};

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
    /// How deep into the engine the run reached.
    #[serde(default, skip_serializing_if = "Reach::is_empty")]
    pub reach: Reach,
}

/// How deep into the engine a run reached: what the workload made the
/// engine handle, beyond which errors it hit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// The most indirect levels of any object in either pool at the end
    /// (`dn_nlevels`: 1 for an object with no indirect block).
    pub max_nlevels: u8,
    /// The longest stream sent, in bytes.
    pub max_stream_bytes: u64,
    /// Streams of more than 1 MiB.
    pub streams_over_1mib: u64,
    /// Object types (DMU numbers) in snapshots sent in the other byte
    /// order, so whose payloads were byteswapped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_types: Vec<u8>,
    /// Interleavings reached, by kind: an operation that ran while a
    /// transfer was in flight (`destroy-sent-snapshot`, ...), a txg sync,
    /// power loss or signal that came during a receive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interleavings: BTreeMap<String, u64>,
}

impl Reach {
    pub fn is_empty(&self) -> bool {
        *self == Reach::default()
    }

    /// Both runs' reach together.
    pub fn merge(&mut self, other: &Reach) {
        self.max_nlevels = self.max_nlevels.max(other.max_nlevels);
        self.max_stream_bytes = self.max_stream_bytes.max(other.max_stream_bytes);
        self.streams_over_1mib += other.streams_over_1mib;
        self.foreign_types.extend(&other.foreign_types);
        self.foreign_types.sort_unstable();
        self.foreign_types.dedup();
        for (kind, n) in &other.interleavings {
            *self.interleavings.entry(kind.clone()).or_default() += n;
        }
    }

    /// Counts one interleaving of `kind`.
    pub fn interleaved(&mut self, kind: &str) {
        *self.interleavings.entry(kind.to_string()).or_default() += 1;
    }
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

    pub(crate) fn add(&mut self, other: &Outcomes) {
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

    /// Writes [`SeedResult::to_line`] and a newline to `out`, without
    /// building the line first.
    pub fn write_line(&self, out: &mut impl Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self).map_err(std::io::Error::from)?;
        out.write_all(b"\n")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{failing, result, violation};

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
    fn a_result_written_to_a_stream_is_its_line() {
        let mut out = Vec::new();
        failing(2).write_line(&mut out).unwrap();
        result(1).write_line(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            to_jsonl(&[failing(2), result(1)])
        );
    }

    #[test]
    fn a_signature_writes_numbers_as_n_and_drops_details() {
        assert_eq!(
            violation("dst/r12@s3 to match src/fs1@s3").signature(),
            "dst/rN@sN to match src/fsN@sN"
        );
        assert_eq!(
            violation("the refused receive (EIO: read at 5 (x)) to leave the target as it was")
                .signature(),
            "the refused receive (…) to leave the target as it was"
        );
        let mut panic = violation("the run to end without a panic");
        assert_eq!(panic.at(), "the final check");
        panic.panicked = true;
        assert_eq!(panic.at(), "a panic (step unknown)");
    }
}
