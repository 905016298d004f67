//! `cargo sim fuzz`: runs the fuzzers (cargo-fuzz) for a while
//! and reports what they did.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use clap::Args;

use super::{EXIT_FAILURE, EXIT_USAGE};

/// The fuzz targets, in the order a campaign runs them.
pub const TARGETS: &[&str] = &[
    "recv_structured",
    "recv_raw",
    "recv_existing",
    "stream_decode",
    "dump",
    "pool_image",
    "sim_world",
];

/// Longest `sim_world` input, in bytes: room for its 64 steps (9 bytes
/// each) and the header; libFuzzer would otherwise grow inputs slowly from
/// a few bytes.
const SIM_WORLD_MAX_LEN: usize = 640;

/// Run the fuzzers in fuzz/ (cargo-fuzz, libFuzzer) and print executions
/// per second and coverage for each. Each target runs with an RSS limit and
/// a per-input timeout, so a stream that makes the receive allocate or loop
/// beyond its size is a failure. New corpus entries stay in fuzz/corpus;
/// a crash is saved under fuzz/artifacts and the exit status is 1.
///
/// `sim_world` runs the whole simulated world on a fuzzer-chosen workload
/// and fault schedule (`cargo sim corpus` runs its inputs as a campaign
/// does). It runs without the per-input timeout: libFuzzer's timer reads
/// the clock in a signal handler, which inside the simulation answers with
/// virtual time.
#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// One target (default: all of them, one after the other).
    pub target: Option<String>,
    /// How long each target runs: seconds, or with an s/m/h suffix.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time: u64,
    /// RSS limit for each target, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub rss_limit_mb: u64,
    /// Longest time one input may take, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// Parses `90`, `90s`, `10m`, `2h` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.chars().last() {
        Some('s') => (&text[..text.len() - 1], 1),
        Some('m') => (&text[..text.len() - 1], 60),
        Some('h') => (&text[..text.len() - 1], 3600),
        _ => (text, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration"))?;
    Ok(n * unit)
}

/// The last libFuzzer status line's numbers: execs, execs/s, coverage.
fn stats(output: &str) -> Option<(u64, u64, u64)> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("DONE") || l.contains("exec/s:"))?;
    let field = |name: &str| -> Option<u64> {
        let at = line.find(name)? + name.len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    let execs = line
        .trim_start_matches('#')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((execs, field("exec/s:")?, field("cov:")?))
}

pub fn run(args: &FuzzArgs) -> ExitCode {
    let targets: Vec<&str> = match &args.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => {
            eprintln!(
                "fuzz: no target {t:?}; the targets are {}",
                TARGETS.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
        None => TARGETS.to_vec(),
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("fuzz: cargo-fuzz is not installed: cargo install cargo-fuzz --locked");
        return ExitCode::from(EXIT_USAGE);
    }
    let mut failed = false;
    println!(
        "{:<16} {:>12} {:>10} {:>8}  result",
        "TARGET", "EXECS", "EXECS/S", "COV"
    );
    for target in targets {
        let mut command = Command::new("cargo");
        // sim_world needs the simulator; every target builds with it, so
        // that switching targets does not rebuild the crates they share.
        let rustflags = match std::env::var("RUSTFLAGS") {
            Ok(flags) if !flags.trim().is_empty() => format!("{flags} --cfg madsim"),
            _ => "--cfg madsim".to_string(),
        };
        command
            .current_dir(&dir)
            .env("RUSTFLAGS", rustflags)
            .args(["fuzz", "run", "--sanitizer", "none", target, "--"])
            .arg(format!("-max_total_time={}", args.time))
            .arg(format!("-rss_limit_mb={}", args.rss_limit_mb));
        if target == "sim_world" {
            command
                .arg("-timeout=0")
                .arg(format!("-max_len={SIM_WORLD_MAX_LEN}"));
        } else {
            command.arg(format!("-timeout={}", args.timeout));
        }
        let output = command
            .arg("-print_final_stats=1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output();
        let output = match output {
            Ok(output) => output,
            Err(e) => {
                eprintln!("fuzz: cannot run cargo fuzz: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let text = String::from_utf8_lossy(&output.stderr);
        let result = if output.status.success() {
            "ok"
        } else {
            "FAILED (see fuzz/artifacts)"
        };
        failed |= !output.status.success();
        match stats(&text) {
            Some((execs, rate, cov)) => {
                println!("{target:<16} {execs:>12} {rate:>10} {cov:>8}  {result}")
            }
            None => println!("{target:<16} {:>12} {:>10} {:>8}  {result}", "-", "-", "-"),
        }
        if !output.status.success() {
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            for line in tail.into_iter().rev() {
                eprintln!("  {line}");
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_final_stats_are_read() {
        let out = "#16761\tDONE   cov: 2548 ft: 6202 corp: 343/31Kb lim: 317 exec/s: 274 rss: 80Mb\nDone 16761 runs";
        assert_eq!(stats(out), Some((16761, 274, 2548)));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("soon").is_err());
    }
}
