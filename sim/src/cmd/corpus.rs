//! `cargo sim corpus`: `sim_world` fuzz inputs run as a campaign runs
//! seeds, so that what the fuzzer found can be read, compared and replayed
//! with the campaign's tools.

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
/// Exit status 1 if any input fails, 2 on a usage error.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Input files, or directories of them (default: fuzz/corpus/sim_world).
    pub inputs: Vec<PathBuf>,
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

/// The input files `paths` name, a directory's files sorted by name; with
/// none, the committed corpus, fuzz/corpus/sim_world.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let default = [PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sim_world")];
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
pub fn run(_args: &CorpusArgs) -> ExitCode {
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(madsim)]
pub fn run(args: &CorpusArgs) -> ExitCode {
    match exec(args) {
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

    use super::EXIT_FAILURE;
    use super::campaign::{from_report, panic_message};
    use crate::fuzz::WorldInput;
    use crate::runner::{Faults, run};

    let files = input_files(&args.inputs)?;
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
    if let Some(dir) = &report_dir {
        println!("{}", dir.files_line(0));
    }
    Ok(if failed > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
