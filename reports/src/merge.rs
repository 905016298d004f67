//! Results from several sources (the shards of a campaign, say) merged
//! into one sorted set, one result per [`SeedResult::key`].
//!
//! A seed found twice is either an identical copy, dropped quietly, or a
//! conflict (another build, or a determinism bug): the first is kept and
//! the other described. [`merge_sorted`] does this a line at a time over
//! sorted files, so that a night's shards merge in constant memory;
//! [`merge`] does it in memory, and is what the streamed merge is tested
//! against.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::BufRead;

use crate::result::SeedResult;

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

impl<R: BufRead> Cursor<R> {
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
pub fn merge_sorted<R: BufRead>(
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
    let mut heap = BinaryHeap::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{failing, result};
    use crate::result::to_jsonl;

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
