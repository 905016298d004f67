//! What a set of results adds up to: runs with and without a violation,
//! step outcomes, faults fired, error sites hit, step kinds covered, and
//! the failing runs grouped by the rule they broke.
//!
//! A [`SummaryBuilder`] takes results one at a time and in any order, so
//! that a campaign or a merge can add them up as they stream past and
//! still get the summary a sorted, complete set gives.

use std::collections::BTreeMap;

use crate::result::{Outcomes, SeedResult};

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
    /// Interleavings reached (operations during a transfer, and what came
    /// during a receive), by name.
    pub interleavings: Vec<Tally>,
    /// The results with a violation, in order.
    pub failures: Vec<SeedResult>,
    /// Seeds whose run stopped early on a pool lost to faults beyond its
    /// redundancy (damage at rest, or a failed write with a disk pulled).
    pub lost: Vec<u64>,
    /// Violations grouped by [`Violation::signature`](crate::result::Violation::signature),
    /// most runs first.
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
    interleavings: Tallies,
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
                interleavings: Vec::new(),
                failures: Vec::new(),
                lost: Vec::new(),
                signatures: Vec::new(),
            },
            faults: Tallies::new(fault_kinds),
            sites: Tallies::new(&[]),
            kinds: Tallies::new(step_kinds),
            interleavings: Tallies::new(&[]),
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
        for (kind, n) in &r.reach.interleavings {
            self.interleavings.add(kind, *n);
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
        summary.interleavings = self.interleavings.into_rows();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{FAULTS, KINDS, failing, grouped, result};
    use crate::render::{render_markdown, render_text};
    use crate::result::{Violation, sort};

    #[test]
    fn interleavings_add_up_by_name_and_show_in_the_reports() {
        let mut a = result(1);
        a.reach.interleaved("second-receive");
        a.reach.interleaved("second-receive");
        let mut b = result(2);
        b.reach.interleaved("second-receive");
        b.reach.interleaved("destroy-sent-snapshot");
        let s = Summary::from_results(&[a, b, result(3)], FAULTS, KINDS);
        let got: Vec<(&str, u64, u64)> = s
            .interleavings
            .iter()
            .map(|t| (t.name.as_str(), t.count, t.runs))
            .collect();
        assert_eq!(
            got,
            [("destroy-sent-snapshot", 1, 1), ("second-receive", 3, 2)]
        );
        assert!(
            render_text(&s).contains("interleavings: destroy-sent-snapshot 1, second-receive 3")
        );
        let md = render_markdown(&s);
        assert!(md.contains("## Interleavings reached"), "{md}");
        assert!(md.contains("| second-receive "), "{md}");
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
    fn violations_group_by_what_was_expected() {
        let groups: Vec<(String, Vec<u64>)> = grouped()
            .signatures
            .into_iter()
            .map(|g| (g.signature, g.seeds))
            .collect();
        assert_eq!(
            groups,
            [
                ("dst/rN@sN to match src/fsN@sN".to_string(), vec![1, 5]),
                ("src to import".to_string(), vec![3])
            ]
        );
    }

    #[test]
    fn an_empty_summary_spans_no_seeds() {
        let s = Summary::from_results(&[], FAULTS, KINDS);
        assert_eq!(s.seed_span(), "none");
        assert_eq!(s.faults.len(), FAULTS.len());
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
}
