//! `cargo sim coverage`: which of the engine's error sites campaigns
//! reached, by module. The denominator is `engine::error::ALL_SITES`, every
//! place in `engine/src` that creates an error (found in the source when
//! the engine is built); the numerator is the sites the campaigns' runs
//! recorded, as `results.jsonl` keeps them ("EIO at engine/src/spa.rs:261").
//! A harness is worth what it reaches: this is the figure to raise.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::error::{ALL_SITES, SiteInfo};
use reports::result::Reach;
use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{EXIT_FAILURE, EXIT_USAGE};

/// Show which of the engine's error sites campaign runs reached: for each
/// engine module, its sites, how many were hit and the share; with
/// `--missed`, every site never hit (errno, file:line), to aim new steps,
/// faults or probes at, and apart from them the sites documented as
/// unreachable, each with the reason its `// unreached:` comment gives.
/// Then how deep the runs reached: the most indirect
/// levels of any object, the longest stream, streams over 1 MiB, and the
/// object types sent in the other byte order.
///
/// Sites are matched by file and line, so give it reports of a campaign
/// run by the same engine source.
///
/// Exit status 1 if a site documented as unreachable was hit (its comment
/// is wrong), 2 on a usage error.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Campaign report directories (each holds the `results.jsonl` that
    /// `cargo sim campaign --report DIR` or `report merge` wrote).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// List the sites never hit: the unexplored ones, then the ones
    /// documented as unreachable, with why.
    #[arg(long)]
    pub missed: bool,
}

#[derive(Tabled)]
struct Row {
    module: String,
    sites: usize,
    hit: usize,
    #[tabled(rename = "hit %")]
    share: String,
    /// Never hit, with an `// unreached:` reason in the source.
    unreachable: usize,
}

pub fn run(args: &CoverageArgs) -> ExitCode {
    let mut hit = BTreeSet::new();
    let mut reach = Reach::default();
    for dir in &args.reports {
        if let Err(e) = read_sites(&dir.join("results.jsonl"), &mut hit, &mut reach) {
            eprintln!("coverage: {e}");
            return ExitCode::from(if e.contains("cannot open") {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            });
        }
    }
    print!("{}", render(&hit, args.missed));
    let stale = stale(&hit);
    println!(
        "deepest object: {} levels (dn_nlevels); longest stream: {} bytes; streams over 1 MiB: {}",
        reach.max_nlevels, reach.max_stream_bytes, reach.streams_over_1mib
    );
    println!(
        "object types sent in the other byte order: {:?}",
        reach.foreign_types
    );
    if !stale.is_empty() {
        eprintln!("coverage: sites documented as unreachable were hit; their comments are wrong:");
        for site in stale {
            eprintln!("  {}:{}", site.file, site.line);
        }
        return ExitCode::from(EXIT_FAILURE);
    }
    ExitCode::SUCCESS
}

/// Adds the engine sites (file, line) and the reach of every result in a
/// results file.
fn read_sites(
    path: &PathBuf,
    hit: &mut BTreeSet<(String, u32)>,
    reach: &mut Reach,
) -> Result<(), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let result: reports::result::SeedResult = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        reach.merge(&result.reach);
        for key in result.error_sites.keys() {
            if let Some(site) = parse_site(key) {
                hit.insert(site);
            }
        }
    }
    Ok(())
}

/// "EIO at engine/src/spa.rs:261" → ("engine/src/spa.rs", 261).
fn parse_site(key: &str) -> Option<(String, u32)> {
    let (_, at) = key.split_once(" at ")?;
    let (file, line) = at.rsplit_once(':')?;
    Some((file.to_string(), line.parse().ok()?))
}

/// `engine/src/dsl/dataset.rs` → `dsl/dataset`.
fn module(file: &str) -> &str {
    let file = file.strip_prefix("engine/src/").unwrap_or(file);
    file.strip_suffix(".rs").unwrap_or(file)
}

/// Sites documented as unreachable that were hit: their comments are wrong.
fn stale(hit: &BTreeSet<(String, u32)>) -> Vec<&'static SiteInfo> {
    ALL_SITES
        .iter()
        .filter(|s| s.unreached.is_some() && hit.contains(&(s.file.to_string(), s.line)))
        .collect()
}

/// The table, a total, and (with `missed`) the sites never hit.
fn render(hit: &BTreeSet<(String, u32)>, missed: bool) -> String {
    let is_hit = |s: &SiteInfo| hit.contains(&(s.file.to_string(), s.line));
    let documented = |s: &SiteInfo| !is_hit(s) && s.unreached.is_some();
    let mut by_module: BTreeMap<&str, Vec<&SiteInfo>> = BTreeMap::new();
    for site in ALL_SITES {
        by_module.entry(module(site.file)).or_default().push(site);
    }
    let share = |n: usize, of: usize| format!("{:.0}", 100.0 * n as f64 / of.max(1) as f64);
    let mut rows: Vec<Row> = by_module
        .iter()
        .map(|(m, sites)| {
            let n = sites.iter().filter(|s| is_hit(s)).count();
            Row {
                module: m.to_string(),
                sites: sites.len(),
                hit: n,
                share: share(n, sites.len()),
                unreachable: sites.iter().filter(|s| documented(s)).count(),
            }
        })
        .collect();
    let total = ALL_SITES.iter().filter(|s| is_hit(s)).count();
    let unreachable = ALL_SITES.iter().filter(|s| documented(s)).count();
    rows.push(Row {
        module: "all".into(),
        sites: ALL_SITES.len(),
        hit: total,
        share: share(total, ALL_SITES.len()),
        unreachable,
    });
    let mut out = Table::new(rows).with(Style::sharp()).to_string();
    out.push('\n');
    out += &format!(
        "error sites hit: {total} of {} ({}%)\n",
        ALL_SITES.len(),
        share(total, ALL_SITES.len())
    );
    let unexplored = ALL_SITES.len() - total - unreachable;
    out +=
        &format!("never hit: {unexplored} unexplored, {unreachable} documented as unreachable\n");
    if missed {
        let line = |site: &SiteInfo| {
            let errno = site.errno.map_or("?".to_string(), |e| e.to_string());
            format!("  {errno:<12} {}:{}", site.file, site.line)
        };
        out += "\nnever hit, unexplored:\n";
        for site in ALL_SITES
            .iter()
            .filter(|s| !is_hit(s) && s.unreached.is_none())
        {
            out += &format!("{}\n", line(site));
        }
        out += "\nnever hit, documented as unreachable:\n";
        for site in ALL_SITES.iter().filter(|s| documented(s)) {
            let why = site.unreached.unwrap_or_default();
            out += &format!("{}\n      {why}\n", line(site));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_parse_and_group_by_module() {
        assert_eq!(
            parse_site("EIO at engine/src/spa.rs:261"),
            Some(("engine/src/spa.rs".to_string(), 261))
        );
        assert_eq!(parse_site("garbage"), None);
        assert_eq!(module("engine/src/dsl/dataset.rs"), "dsl/dataset");
    }

    #[test]
    fn the_table_counts_a_hit_site_once_and_lists_the_rest() {
        let first = &ALL_SITES[0];
        let mut hit = BTreeSet::new();
        hit.insert((first.file.to_string(), first.line));
        hit.insert(("sim/src/world/disk.rs".to_string(), 1));
        let text = render(&hit, true);
        assert!(
            text.contains(&format!("error sites hit: 1 of {}", ALL_SITES.len())),
            "{text}"
        );
        assert!(!text.contains(&format!("{}:{}\n", first.file, first.line)));
        let second = &ALL_SITES[1];
        assert!(text.contains(&format!("{}:{}\n", second.file, second.line)));
    }

    /// A site with an `// unreached:` reason is listed apart, with it, and
    /// hitting it is reported as a wrong comment.
    #[test]
    fn documented_sites_are_listed_with_their_reason_and_a_hit_one_is_stale() {
        let documented = ALL_SITES
            .iter()
            .find(|s| s.unreached.is_some())
            .expect("some site is documented as unreachable");
        let why = documented.unreached.unwrap();
        assert!(!why.is_empty() && !why.starts_with("//"), "{why:?}");
        let none = BTreeSet::new();
        let text = render(&none, true);
        let (unexplored, rest) = text
            .split_once("never hit, documented as unreachable:")
            .expect("the documented section");
        let at = format!("{}:{}\n", documented.file, documented.line);
        assert!(!unexplored.contains(&at), "{text}");
        assert!(rest.contains(&format!("{at}      {why}\n")), "{text}");
        let count = ALL_SITES.iter().filter(|s| s.unreached.is_some()).count();
        assert!(
            text.contains(&format!("{count} documented as unreachable")),
            "{text}"
        );
        assert!(stale(&none).is_empty());
        let mut hit = BTreeSet::new();
        hit.insert((documented.file.to_string(), documented.line));
        assert_eq!(stale(&hit), vec![documented]);
    }
}
