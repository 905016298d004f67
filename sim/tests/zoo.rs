//! `cargo sim zoo` through the binary: planted bugs are caught, shrunk and
//! tabled, and an escaped bug fails the command.
#![cfg(madsim)]

use std::process::{Command, Output};

fn zoo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("zoo")
        .args(args)
        .output()
        .unwrap()
}

fn both(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The row of `bug` in the table.
fn row<'a>(stdout: &'a str, bug: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(&format!(" {bug} ")))
        .unwrap_or_else(|| panic!("no row for {bug} in\n{stdout}"))
}

/// Two bugs the workload reaches in the first seeds are both caught,
/// each with the scenario and seed that caught it and a shrunk repro, and
/// the zoo exits 0.
#[test]
fn the_zoo_catches_two_fast_bugs_and_exits_zero() {
    let out = zoo(&[
        "--bug",
        "skip-recv-cleanup",
        "--bug",
        "hole-birth-indirect",
        "--time-per-bug",
        "30s",
        "--jobs",
        "2",
        "--shrink-budget",
        "30",
        "--markdown",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for bug in ["skip-recv-cleanup", "hole-birth-indirect"] {
        let row = row(&stdout, bug);
        assert!(!row.contains("ESCAPED"), "{row}");
        // bug | caught by | seed | time | shrunk steps
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells[2].contains('/'), "scenario/faults: {row}");
        assert!(cells[3].parse::<u64>().is_ok(), "seed: {row}");
        assert!(cells[5].parse::<usize>().is_ok(), "shrunk steps: {row}");
        // The sim_world corpus: the input that caught it, or how many ran.
        assert!(
            cells[6].ends_with("s)") && cells[6].contains(" ("),
            "corpus: {row}"
        );
    }
    // A bug the corpus catches at once names the input.
    let row = row(&stdout, "skip-recv-cleanup");
    assert!(!row.contains("not caught"), "{row}");
    assert!(stdout.contains("caught 2 of 2"), "{stdout}");
}

/// With no time to try a seed, a simulated bug escapes, is listed as
/// ESCAPED, and the zoo exits 1; a bug judged by known answers needs no
/// seeds and is still caught.
#[test]
fn a_bug_not_caught_in_its_budget_is_escaped_and_exits_one() {
    let out = zoo(&[
        "--bug",
        "skip-recv-cleanup",
        "--bug",
        "stream-checksum-skips-payloads",
        "--time-per-bug",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        row(&stdout, "skip-recv-cleanup").contains("ESCAPED"),
        "{stdout}"
    );
    assert!(
        row(&stdout, "stream-checksum-skips-payloads").contains("known answers"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_bug_is_a_usage_error() {
    let out = zoo(&["--bug", "no-such-bug"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skip-recv-cleanup"));
}
