//! `cargo sim campaign` and `cargo sim report merge`, through the binary:
//! the files they write, their determinism across thread timing and
//! sharding, the failure files, and their exit statuses.
#![cfg(madsim)]

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::Scratch;
use reports::result::SeedResult;
use scenarios::step::Step;
use sim::world::faults::FaultKind;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap()
}

fn status(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn both(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A small campaign of the smoke scenario, reported to `dir`.
fn campaign(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "campaign",
        "--scenario",
        "smoke",
        "--steps",
        "12",
        "--report",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sim(&args)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn results(dir: &Path) -> Vec<SeedResult> {
    reports::result::parse_jsonl(&read(&dir.join("results.jsonl"))).unwrap()
}

fn seeds(dir: &Path) -> Vec<u64> {
    results(dir).iter().map(|r| r.seed).collect()
}

#[test]
fn a_campaign_reports_every_seed_in_order_and_repeats_itself_exactly() {
    let scratch = Scratch::new("campaign-repeat");
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    let out = campaign(&a, &["--seeds", "0..6", "--jobs", "2"]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    assert_eq!(seeds(&a), [0, 1, 2, 3, 4, 5]);
    for r in results(&a) {
        assert_eq!(r.scenario, "smoke");
        // The workload's 12, then the liveness phase's sends.
        assert!(r.steps >= 12, "{}", r.steps);
        assert!(r.replay.contains(" --steps 12"), "{}", r.replay);
        assert!(r.violation.is_none());
        assert_eq!(r.faults.len(), FaultKind::ALL.len(), "every fault kind");
        assert!(
            r.replay
                .starts_with(&format!("cargo sim run --seed {} ", r.seed))
        );
    }
    let report = read(&a.join("report.md"));
    for kind in FaultKind::ALL {
        assert!(report.contains(&format!("| {kind} ")), "{kind}:\n{report}");
    }
    for kind in Step::KINDS {
        assert!(report.contains(&format!("| {kind} ")), "{kind}:\n{report}");
    }
    assert!(
        report.contains("Verdict: no violation in 6 runs."),
        "{report}"
    );
    assert!(!a.join("failures").exists());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("runs: 6 without a violation, 0 with one"),
        "{text}"
    );

    // Other threads, other timing: the same files.
    let out = campaign(&b, &["--seeds", "0..6", "--jobs", "3"]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    assert_eq!(
        read(&a.join("results.jsonl")),
        read(&b.join("results.jsonl"))
    );
    assert_eq!(report, read(&b.join("report.md")));

    // And each line is the run `cargo sim run` makes of that seed.
    let one = sim(&["run", "--seed", "4", "--scenario", "smoke", "--steps", "12"]);
    let hash = &results(&a)[4].trace_hash;
    assert!(
        String::from_utf8_lossy(&one.stdout).contains(&format!("trace hash {hash}")),
        "{}",
        both(&one)
    );
}

#[test]
fn shards_partition_the_seeds_and_merge_into_the_whole() {
    let scratch = Scratch::new("campaign-shards");
    let whole = scratch.join("whole");
    let out = campaign(&whole, &["--seeds", "0..6", "--jobs", "2"]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    let (s0, s1) = (scratch.join("shard-0"), scratch.join("shard-1"));
    for (dir, shard) in [(&s0, "0/2"), (&s1, "1/2")] {
        let out = campaign(dir, &["--seeds", "0..6", "--jobs", "2", "--shard", shard]);
        assert_eq!(status(&out), 0, "{}", both(&out));
    }
    assert_eq!(seeds(&s0), [0, 2, 4]);
    assert_eq!(seeds(&s1), [1, 3, 5]);

    let merged = scratch.join("merged");
    // Shard 1 twice: identical copies are dropped.
    let out = sim(&[
        "report",
        "merge",
        s1.to_str().unwrap(),
        s0.to_str().unwrap(),
        s1.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    assert_eq!(
        read(&merged.join("results.jsonl")),
        read(&whole.join("results.jsonl"))
    );
    assert_eq!(
        read(&merged.join("report.md")),
        read(&whole.join("report.md"))
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 identical copies dropped"),
        "{}",
        both(&out)
    );

    // Into one of the directories it reads.
    let out = sim(&[
        "report",
        "merge",
        s0.to_str().unwrap(),
        s1.to_str().unwrap(),
        "--out",
        s0.to_str().unwrap(),
    ]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    assert_eq!(
        read(&s0.join("results.jsonl")),
        read(&whole.join("results.jsonl"))
    );
    assert_eq!(read(&s0.join("report.md")), read(&whole.join("report.md")));
    let names: Vec<_> = std::fs::read_dir(&s0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");

    // A results file out of order is refused, naming the file and line.
    let path = s1.join("results.jsonl");
    let mut lines: Vec<String> = read(&path).lines().map(String::from).collect();
    lines.reverse();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let unsorted = scratch.join("unsorted");
    let out = sim(&[
        "report",
        "merge",
        s0.to_str().unwrap(),
        s1.to_str().unwrap(),
        "--out",
        unsorted.to_str().unwrap(),
    ]);
    assert_eq!(status(&out), 2, "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: line 2: not sorted: seed 3 ", path.display())),
        "{stderr}"
    );
    assert!(!unsorted.exists(), "nothing written");
}

#[test]
fn results_go_out_in_seed_order_whichever_seed_finishes_first() {
    let scratch = Scratch::new("campaign-order");
    let (one, four) = (scratch.join("one"), scratch.join("four"));
    // What an earlier campaign left in the directory goes.
    std::fs::create_dir_all(four.join("failures")).unwrap();
    std::fs::write(four.join("failures/seed-99.toml"), "stale").unwrap();
    std::fs::write(four.join("report.md"), "stale").unwrap();
    std::fs::write(four.join("results.jsonl"), "stale").unwrap();
    let extra = ["--seeds", "3..27", "--faults", "all"];
    let out = campaign(&one, &[&extra[..], &["--jobs", "1"]].concat());
    assert_eq!(status(&out), 0, "{}", both(&out));
    let out = campaign(&four, &[&extra[..], &["--jobs", "4"]].concat());
    assert_eq!(status(&out), 0, "{}", both(&out));
    assert_eq!(seeds(&four), (3..27).collect::<Vec<u64>>());
    assert_eq!(
        read(&one.join("results.jsonl")),
        read(&four.join("results.jsonl"))
    );
    assert_eq!(read(&one.join("report.md")), read(&four.join("report.md")));
    assert!(!four.join("failures/seed-99.toml").exists());
}

#[test]
fn a_failing_seed_is_saved_replayable_and_fails_the_campaign() {
    let scratch = Scratch::new("campaign-failing");
    let dir = scratch.join("r");
    // A planted engine bug (a failed receive that leaves its target
    // behind), and damaged streams to make receives fail.
    let out = campaign(
        &dir,
        &[
            "--seeds",
            "0..6",
            "--jobs",
            "2",
            "--faults",
            "pipe-damage:0.5",
            "--plant",
            "skip-recv-cleanup",
        ],
    );
    assert_eq!(status(&out), 1, "{}", both(&out));
    let failing: Vec<SeedResult> = results(&dir)
        .into_iter()
        .filter(|r| r.violation.is_some())
        .collect();
    assert!(!failing.is_empty());
    let report = read(&dir.join("report.md"));
    for r in &failing {
        assert!(report.contains(&format!("# seed {} (smoke)\n{}\n", r.seed, r.replay)));
        assert!(
            r.replay.ends_with(" --plant skip-recv-cleanup"),
            "{}",
            r.replay
        );
        let file = read(&dir.join(format!("failures/seed-{}.toml", r.seed)));
        let saved: toml::Table = toml::from_str(&file).unwrap();
        let mut keys: Vec<&str> = saved.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "faults",
                "planted",
                "scenario",
                "seed",
                "steps",
                "violation",
                "world"
            ]
        );
        let world = saved["world"].as_table().unwrap();
        let mut devices: Vec<&str> = world.keys().map(String::as_str).collect();
        devices.sort();
        assert_eq!(devices, ["clock", "disk", "engine", "pipe", "transfer"]);
        assert_eq!(saved["seed"].as_integer(), Some(r.seed as i64));
        assert_eq!(saved["scenario"].as_str(), Some("smoke"));
        assert_eq!(saved["faults"].as_str(), Some(r.plan.as_str()));
        let steps = saved["steps"].as_array().unwrap();
        assert_eq!(steps.len() as u64, r.steps);
        for step in steps {
            step.as_str().unwrap().parse::<Step>().unwrap();
        }
        let v = r.violation.as_ref().unwrap();
        assert_eq!(
            saved["violation"].as_str().unwrap(),
            format!("expected {}, found {}", v.expected, v.found)
        );
        assert_eq!(
            saved["planted"].as_array().unwrap()[0].as_str(),
            Some("skip-recv-cleanup")
        );
    }
    // Only failing seeds get a file.
    let files = std::fs::read_dir(dir.join("failures")).unwrap().count();
    assert_eq!(files, failing.len());

    // The replay command fails the same way.
    let r = &failing[0];
    let args: Vec<&str> = r.replay.split(' ').skip(2).collect();
    let again = sim(&args);
    assert_eq!(status(&again), 1, "{}", both(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains(&r.violation.as_ref().unwrap().found));

    // A merge carries the failure files and the failure.
    let merged = scratch.join("merged");
    let out = sim(&[
        "report",
        "merge",
        dir.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(status(&out), 1, "{}", both(&out));
    assert_eq!(
        read(&merged.join(format!("failures/seed-{}.toml", r.seed))),
        read(&dir.join(format!("failures/seed-{}.toml", r.seed)))
    );

    // Without the bug the same campaign passes, and the stale failure
    // files are gone.
    let out = campaign(
        &dir,
        &[
            "--seeds",
            "0..6",
            "--jobs",
            "2",
            "--faults",
            "pipe-damage:0.5",
        ],
    );
    assert_eq!(status(&out), 0, "{}", both(&out));
    let left = std::fs::read_dir(dir.join("failures")).unwrap().count();
    assert_eq!(left, 0);
}

#[test]
fn a_time_budget_takes_seeds_upward_within_the_shard() {
    let scratch = Scratch::new("campaign-time");
    let dir = scratch.join("r");
    let out = campaign(
        &dir,
        &[
            "--time", "1s", "--seeds", "100..", "--shard", "1/3", "--jobs", "2",
        ],
    );
    assert_eq!(status(&out), 0, "{}", both(&out));
    let seeds = seeds(&dir);
    assert!(!seeds.is_empty());
    let expected: Vec<u64> = (0..seeds.len() as u64).map(|i| 100 + 3 * i).collect();
    assert_eq!(seeds, expected);
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new("campaign-usage");
    let dir = scratch.join("r");
    let dir = dir.to_str().unwrap();
    for args in [
        &["campaign", "--seeds", "5..2"][..],
        &["campaign", "--seeds", "5"],
        &["campaign", "--seeds", "5.."],
        &["campaign", "--time", "10x"],
        &["campaign", "--time", "0s"],
        &["campaign", "--shard", "2/2"],
        &["campaign", "--shard", "1"],
        &["campaign", "--jobs", "0"],
        &["campaign", "--scenario", "nope"],
        &["campaign", "--faults", "tron"],
        &["campaign", "--steps", "many"],
        &["campaign", "--bogus"],
        &["report", "merge", "--out", dir],
        &["report", "merge", "/nonexistent/zsim-report", "--out", dir],
    ] {
        let out = sim(args);
        assert_eq!(status(&out), 2, "{args:?}: {}", both(&out));
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    assert!(!Path::new(dir).exists(), "nothing written on a usage error");

    let help = sim(&["campaign", "--help"]);
    assert_eq!(status(&help), 0);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--seeds",
        "--time",
        "--jobs",
        "--shard",
        "--scenario",
        "--faults",
        "--steps",
        "--report",
        "results.jsonl",
        "seed-N.toml",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(!help.contains("--plant"), "{help}");
}

/// The lines of a file that hold no wall-clock figure (a campaign's and
/// a merge's files have none today; a timing line would differ run to run).
fn without_timing(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.contains("seeds/s") && !l.contains("wall clock"))
        .collect()
}

#[test]
fn the_local_sharded_flow_merges_into_what_one_process_reports() {
    let scratch = Scratch::new("campaign-local-flow");
    let (flow, single) = (scratch.join("flow"), scratch.join("single"));
    let same = [
        "--seeds",
        "0..60",
        "--faults",
        "all",
        "--scenario",
        "smoke",
        "--steps",
        "12",
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/campaign.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("3")
        .arg(&flow)
        .args(same)
        .args(["--jobs", "1"])
        .env("SIM", env!("CARGO_BIN_EXE_sim"))
        .output()
        .unwrap();
    assert!(matches!(status(&out), 0 | 1), "{}", both(&out));
    for k in 0..3u64 {
        let shard = seeds(&flow.join(format!("shard-{k}")));
        assert_eq!(shard, (k..60).step_by(3).collect::<Vec<_>>(), "shard {k}");
    }
    let alone = sim(&[
        &["campaign", "--report", single.to_str().unwrap()],
        &same[..],
    ]
    .concat());
    assert_eq!(status(&alone), status(&out), "{}", both(&alone));
    let merged = flow.join("merged");
    assert_eq!(seeds(&merged), (0..60).collect::<Vec<_>>());
    for file in ["results.jsonl", "report.md", "report.html"] {
        assert_eq!(
            without_timing(&read(&merged.join(file))),
            without_timing(&read(&single.join(file))),
            "{file}: the sharded flow and one process differ"
        );
    }
}

/// The error sites a report directory's results hit.
fn sites(dir: &Path) -> std::collections::BTreeSet<String> {
    results(dir)
        .into_iter()
        .flat_map(|r| r.error_sites.into_keys())
        .collect()
}

#[test]
fn a_trend_has_a_row_per_night_with_the_sites_new_since_the_night_before() {
    let scratch = Scratch::new("campaign-trend");
    let nights = [
        (
            scratch.join("night-1"),
            ["--seeds", "0..3", "--faults", "none"],
        ),
        (
            scratch.join("night-2"),
            ["--seeds", "0..6", "--faults", "all"],
        ),
        (
            scratch.join("night-3"),
            ["--seeds", "6..9", "--faults", "all"],
        ),
    ];
    for (dir, args) in &nights {
        let out = campaign(dir, args);
        assert_eq!(status(&out), 0, "{}", both(&out));
        let html = read(&dir.join("report.html"));
        assert_eq!(html.matches("<svg").count(), 3, "report.html charts");
        assert!(html.contains("seeds/s"), "a campaign's page has its speed");
    }
    let dirs: Vec<&str> = nights.iter().map(|(d, _)| d.to_str().unwrap()).collect();
    let out = sim(&[&["report", "trend"], &dirs[..]].concat());
    assert_eq!(status(&out), 0, "{}", both(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("night-"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    let (s1, s2, s3) = (
        sites(&nights[0].0),
        sites(&nights[1].0),
        sites(&nights[2].0),
    );
    // report, seeds, seeds/s, violations, sites hit, new sites, faults fired
    assert_eq!(rows[0][1..2], ["3"]);
    assert_eq!(rows[1][1], "6");
    assert_eq!(rows[2][1], "3");
    for row in &rows {
        assert!(
            row[2].parse::<f64>().is_ok_and(|v| v > 0.0),
            "seeds/s: {row:?}"
        );
        assert_eq!(row[3], "0");
    }
    assert_eq!(rows[0][4], s1.len().to_string());
    assert_eq!(rows[0][5], "-", "the first night has no night before");
    assert_eq!(rows[0][6], "none", "no faults on the first night");
    assert_eq!(rows[1][5], s2.difference(&s1).count().to_string());
    assert_eq!(rows[2][5], s3.difference(&s2).count().to_string());
    assert_ne!(rows[1][6], "none", "every fault kind was on");
    assert!(
        s2.difference(&s1).count() > 0,
        "faults reach new error sites"
    );
    for site in s2.difference(&s1) {
        assert!(
            text.contains(&format!("  {site}\n")),
            "{site} listed: {text}"
        );
    }
    let missing = scratch.join("missing");
    let out = sim(&["report", "trend", missing.to_str().unwrap()]);
    assert_eq!(status(&out), 2, "{}", both(&out));
}

/// "error sites hit: N of M (P%)" from `cargo sim coverage`: N. Its exit
/// status must be 0: no site the source documents as unreachable was hit.
fn sites_hit(out: &Output) -> usize {
    assert_eq!(status(out), 0, "{}", both(out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("error sites hit: "))
        .unwrap_or_else(|| panic!("no total in {}", both(out)));
    line.split(' ').next().unwrap().parse().unwrap()
}

/// A stream fuzzer's corpus runs through its body, one result per input
/// with the engine error sites it hit, and `cargo sim coverage` adds them
/// to a campaign's.
#[test]
fn a_stream_fuzzers_corpus_joins_the_campaigns_coverage() {
    let scratch = Scratch::new("corpus-streams");
    let (camp, fuzz) = (scratch.join("camp"), scratch.join("fuzz"));
    let out = campaign(&camp, &["--seeds", "0..4"]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/recv_raw");
    let inputs = std::fs::read_dir(&corpus).unwrap().count();
    let out = sim(&[
        "corpus",
        "--target",
        "recv_raw",
        "--report",
        fuzz.to_str().unwrap(),
    ]);
    assert_eq!(status(&out), 0, "{}", both(&out));
    let found = results(&fuzz);
    assert_eq!(found.len(), inputs);
    assert_eq!(seeds(&fuzz), (0..inputs as u64).collect::<Vec<_>>());
    assert!(found.iter().all(|r| r.scenario == "fuzz:recv_raw"));
    assert!(
        found.iter().any(|r| r
            .error_sites
            .keys()
            .any(|s| s.contains(" at engine/src/recv.rs:"))),
        "receive refusals recorded"
    );
    let alone = sites_hit(&sim(&["coverage", camp.to_str().unwrap()]));
    let joined = sites_hit(&sim(&[
        "coverage",
        camp.to_str().unwrap(),
        fuzz.to_str().unwrap(),
    ]));
    assert!(
        joined > alone,
        "{joined} sites with the fuzzer, {alone} without"
    );
    // Options of sim_world inputs only are refused, not ignored.
    let out = sim(&[
        "corpus",
        "--target",
        "dump",
        "--plant",
        "skip-cleanup-on-interrupt",
    ]);
    assert_eq!(status(&out), 2, "{}", both(&out));
}
