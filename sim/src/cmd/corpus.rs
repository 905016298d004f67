//! `cargo sim corpus`: `sim_world` fuzz inputs run as a campaign runs
//! seeds, so that what the fuzzer found can be read, compared and replayed
//! with the campaign's tools; the stream fuzzers' inputs run through their
//! bodies (`engine::fuzz`), so that `cargo sim coverage` joins the error
//! sites they reach with a campaign's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::EXIT_USAGE;

/// Run `sim_world` fuzz inputs (see `cargo sim fuzz`) through the simulator,
/// each as one campaign run: print the campaign's summary; with `--report
/// DIR`, write the campaign's report (`cargo sim coverage DIR` then shows
/// the error sites the inputs reach); with `--save DIR`, write each input
/// that fails as a failure file (DIR/INPUT.toml, its steps and world) that
/// `cargo sim replay` and `cargo sim shrink` take.
///
/// With `--target` a stream fuzzer (`recv_raw`, `recv_existing`,
/// `recv_structured`, `dump`, `stream_decode`) or the pool image fuzzer
/// (`pool_image`), each input runs through that
/// target's body as the fuzzer runs it, and the report records the engine
/// error sites it hit (one line of results.jsonl per input, in file
/// order), so that `cargo sim coverage CAMPAIGN_DIR FUZZ_DIR...` shows what
/// the simulation and the fuzzers reach together.
///
/// Exit status 1 if any input fails, 2 on a usage error.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Input files, or directories of them (default: fuzz/corpus/TARGET).
    pub inputs: Vec<PathBuf>,
    /// The fuzz target whose inputs these are.
    #[arg(long, value_name = "TARGET", default_value = "sim_world", value_parser = TARGETS)]
    pub target: String,
    /// Write a campaign report here (results.jsonl, report.md, report.html).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write a failure file here for each input that fails.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Plant an engine bug (self-test), as `cargo sim run --plant` does.
    #[arg(long = "plant", value_name = "BUG")]
    pub planted: Vec<String>,
}

/// The fuzz targets whose inputs `cargo sim corpus` runs.
const TARGETS: [&str; 7] = [
    "sim_world",
    "pool_image",
    "recv_raw",
    "recv_existing",
    "recv_structured",
    "dump",
    "stream_decode",
];

/// The body of a stream fuzz target, as `fuzz/fuzz_targets/` calls it.
fn stream_body(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "recv_raw" => engine::fuzz::recv_raw,
        "recv_existing" => engine::fuzz::recv_existing,
        "recv_structured" => engine::fuzz::recv_structured,
        "dump" => engine::fuzz::dump_any,
        "stream_decode" => engine::fuzz::stream_decode,
        "pool_image" => engine::fuzz::pool_image,
        _ => return None,
    })
}

/// The input files `paths` name, a directory's files sorted by name; with
/// none, the committed corpus of `target`, fuzz/corpus/TARGET.
pub fn input_files(paths: &[PathBuf], target: &str) -> Result<Vec<PathBuf>, String> {
    let default =
        [PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/corpus/{target}"))];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("no input file or directory {}", path.display()));
        }
    }
    Ok(files)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "input".to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(not(madsim))]
pub fn run(args: &CorpusArgs) -> ExitCode {
    if let Some(body) = stream_body(&args.target) {
        return finish(streams(args, body));
    }
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(madsim)]
pub fn run(args: &CorpusArgs) -> ExitCode {
    if let Some(body) = stream_body(&args.target) {
        return finish(streams(args, body));
    }
    finish(exec(args))
}

fn finish(result: Result<ExitCode, String>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cargo sim corpus: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

#[cfg(madsim)]
fn exec(args: &CorpusArgs) -> Result<ExitCode, String> {
    use std::panic::AssertUnwindSafe;
    use std::time::Instant;

    use reports::dir::ReportDir;
    use reports::render::{Timing, render_text};

    use super::campaign::{from_report, panic_message};
    use crate::fuzz::WorldInput;
    use crate::runner::{Faults, run};

    let files = input_files(&args.inputs, &args.target)?;
    let planted = args
        .planted
        .iter()
        .map(|p| p.parse())
        .collect::<Result<Vec<_>, _>>()?;
    let report_dir = args.report.as_deref().map(ReportDir::new);
    let mut out = report_dir.as_ref().map(ReportDir::create).transpose()?;
    if let Some(dir) = &args.save {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut summary = super::report::summary_builder();
    let started = Instant::now();
    let mut failed = 0usize;
    for file in &files {
        let data =
            std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let mut config = WorldInput::decode(&data).config();
        config.planted = planted.clone();
        let Faults::Spec(fault_spec) = &config.faults else {
            unreachable!("an input names its fault kinds")
        };
        // The engine recurses through block trees: the campaign's room.
        let done = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(16 << 20)
                .spawn_scoped(scope, || {
                    std::panic::catch_unwind(AssertUnwindSafe(|| {
                        from_report(&run(&config), fault_spec, None)
                    }))
                    .map_err(|p| panic_message(&p))
                })
                .map_err(|e| format!("cannot start a thread: {e}"))?
                .join()
                .map_err(|_| "a run's thread died".to_string())
        })?;
        let name = name_of(file);
        let mut done = match done {
            Ok(done) => done,
            Err(message) => {
                failed += 1;
                println!("{name}: PANIC: {message}");
                continue;
            }
        };
        done.result.replay = format!("cargo sim corpus {}", file.display());
        // Each input names its own kinds: one name for the lot keeps the
        // summary's header to a line.
        done.result.fault_spec = "sim_world".to_string();
        if let Some(v) = &done.result.violation {
            failed += 1;
            println!(
                "{name}: VIOLATION: expected {}, found {}",
                v.expected, v.found
            );
            if let (Some(dir), Some(text)) = (&args.save, &done.failure) {
                let path = dir.join(format!("{name}.toml"));
                std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!("  saved: cargo sim replay {}", path.display());
            }
        }
        summary.add(&done.result);
        if let Some(out) = out.as_mut() {
            out.result(&done.result)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = summary.finish();
    if let Some(out) = out {
        out.finish(
            &summary,
            Some(Timing {
                seeds: files.len() as u64,
                wall_secs: elapsed,
            }),
        )?;
    }
    print!("{}", render_text(&summary));
    println!(
        "corpus: {} inputs in {elapsed:.1}s, {failed} failed",
        files.len()
    );
    Ok(ended(report_dir.as_ref(), failed))
}

/// Runs a stream fuzzer's inputs through its body, each under a log of the
/// engine error sites it hits; a body's assertion that fails (a panic) is
/// a failed input, as it is for the fuzzer.
fn streams(args: &CorpusArgs, body: fn(&[u8])) -> Result<ExitCode, String> {
    use std::collections::BTreeMap;
    use std::panic::AssertUnwindSafe;
    use std::time::Instant;

    use engine::error::SiteLog;
    use reports::dir::ReportDir;
    use reports::render::Timing;
    use reports::result::{SeedResult, Violation};

    use super::campaign::panic_message;

    if !args.planted.is_empty() {
        return Err("--plant applies to sim_world inputs only".to_string());
    }
    if args.save.is_some() {
        return Err(
            "--save applies to sim_world inputs only: a stream input is its own replay".to_string(),
        );
    }
    let files = input_files(&args.inputs, &args.target)?;
    let report_dir = args.report.as_deref().map(ReportDir::new);
    let mut out = report_dir.as_ref().map(ReportDir::create).transpose()?;
    let mut summary = super::report::summary_builder();
    let started = Instant::now();
    let mut failed = 0usize;
    let mut sites_hit = BTreeMap::<String, u64>::new();
    for (i, file) in files.iter().enumerate() {
        let data =
            std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let log = SiteLog::start();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| body(&data)));
        let mut error_sites = BTreeMap::new();
        for site in log.finish() {
            *error_sites.entry(site.to_string()).or_default() += 1;
        }
        for site in error_sites.keys() {
            *sites_hit.entry(site.clone()).or_default() += 1;
        }
        let violation = outcome.err().map(|p| {
            failed += 1;
            let message = panic_message(&p);
            println!("{}: PANIC: {message}", name_of(file));
            Violation {
                step: None,
                expected: format!("the {} body to hold for any input", args.target),
                found: message,
                panicked: true,
            }
        });
        let result = SeedResult {
            seed: i as u64,
            scenario: format!("fuzz:{}", args.target),
            fault_spec: "none".to_string(),
            plan: "none".to_string(),
            planted: Vec::new(),
            steps: 0,
            outcomes: Default::default(),
            violation,
            lost: None,
            faults: BTreeMap::new(),
            error_sites,
            step_kinds: BTreeMap::new(),
            trace_hash: String::new(),
            virtual_time_ns: 0,
            replay: format!(
                "cargo sim corpus --target {} {}",
                args.target,
                file.display()
            ),
            reach: Default::default(),
        };
        summary.add(&result);
        if let Some(out) = out.as_mut() {
            out.result(&result)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(out) = out {
        out.finish(
            &summary.finish(),
            Some(Timing {
                seeds: files.len() as u64,
                wall_secs: elapsed,
            }),
        )?;
    }
    let engine_sites = sites_hit
        .keys()
        .filter(|s| s.contains(" at engine/"))
        .count();
    println!(
        "corpus: {} {} inputs in {elapsed:.1}s, {failed} failed; engine error sites hit: {engine_sites}",
        files.len(),
        args.target
    );
    Ok(ended(report_dir.as_ref(), failed))
}

/// Names the report's files, and the exit status for `failed` inputs.
fn ended(report_dir: Option<&reports::dir::ReportDir>, failed: usize) -> ExitCode {
    if let Some(dir) = report_dir {
        println!("{}", dir.files_line(0));
    }
    if failed > 0 {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}
