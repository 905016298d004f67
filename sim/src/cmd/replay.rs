//! `cargo sim replay FILE` and `cargo sim shrink --seed N ...`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::EXIT_USAGE;

/// Replay a saved failure (seed, fault plan, scenario and the exact steps)
/// and print the run as `cargo sim run` does. Exit status 1 if it still
/// fails.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A failure file written by `shrink` or `campaign` (see
    /// scenarios/regressions/ for examples).
    pub file: PathBuf,
    /// Print the whole trace to stderr as it happens.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Reduce a failing run to a short list of steps and the fewest fault
/// kinds that still fail, and save it as a failure file (by default under
/// scenarios/regressions/, where `cargo test` replays it forever). The run
/// is a seed's (`--seed`, with its scenario, faults and steps), or a saved
/// failure's (`--file`, as `cargo sim corpus --save` writes them).
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    #[arg(long, required_unless_present = "file")]
    pub seed: Option<u64>,
    /// A failure file to shrink instead of a seed's run.
    #[arg(long, conflicts_with_all = ["seed", "faults", "steps"])]
    pub file: Option<PathBuf>,
    #[arg(long, default_value = "mix")]
    pub scenario: String,
    /// The fault plan of the failing run (as `run` printed it).
    #[arg(long)]
    pub faults: Option<String>,
    #[arg(long)]
    pub steps: Option<usize>,
    /// Where to save the shrunk failure.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Most runs to spend.
    #[arg(long, default_value_t = 400)]
    pub budget: usize,
    #[arg(long, hide = true)]
    pub plant: Vec<String>,
}

#[cfg(not(madsim))]
pub fn replay(_args: &ReplayArgs) -> ExitCode {
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(not(madsim))]
pub fn shrink(_args: &ShrinkArgs) -> ExitCode {
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(madsim)]
pub fn replay(args: &ReplayArgs) -> ExitCode {
    use crate::runner::failure::Failure;
    let config = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("{}: {e}", args.file.display()))
        .and_then(|text| Failure::parse(&text).map_err(|e| format!("{}: {e}", args.file.display())))
        .and_then(|f| f.config());
    let mut config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cargo sim replay: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    config.verbose = args.verbose;
    let report = crate::runner::run(&config);
    print!("{}", crate::runner::text::render(&report));
    if report.violation.is_some() {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(madsim)]
pub fn shrink(args: &ShrinkArgs) -> ExitCode {
    use crate::runner::failure::Failure;
    let config = match (&args.file, args.seed) {
        (Some(file), _) => std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|text| Failure::parse(&text).map_err(|e| format!("{}: {e}", file.display())))
            .and_then(|f| f.config()),
        (None, Some(seed)) => crate::runner::RunConfig::from_options(
            seed,
            &args.scenario,
            args.faults.as_deref(),
            args.steps,
            &args.plant,
        ),
        (None, None) => Err("give --seed or --file".to_string()),
    };
    let what = match &args.file {
        Some(file) => file.display().to_string(),
        None => format!("seed {}", args.seed.unwrap_or_default()),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cargo sim shrink: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some((report, runs)) = crate::runner::shrink::shrink(&config, args.budget) else {
        println!("shrink: {what} does not fail: nothing to shrink");
        return ExitCode::SUCCESS;
    };
    let failure = Failure::from_report(&report);
    let out = args.out.clone().unwrap_or_else(|| match &args.file {
        Some(file) => {
            let stem = file
                .file_stem()
                .map_or("failure".into(), |s| s.to_string_lossy());
            PathBuf::from(format!("scenarios/regressions/{stem}-shrunk.toml"))
        }
        None => PathBuf::from(format!(
            "scenarios/regressions/seed-{}-{}.toml",
            config.seed, args.scenario
        )),
    });
    if let Some(dir) = out.parent()
        && !dir.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&out, failure.to_toml()) {
        eprintln!("cargo sim shrink: {}: {e}", out.display());
        return ExitCode::from(super::EXIT_FAILURE);
    }
    println!(
        "shrink: {} steps and faults {} still fail ({runs} runs):",
        failure.steps.len(),
        failure.faults
    );
    for step in &failure.steps {
        println!("  {step}");
    }
    println!("  {}", failure.violation);
    println!(
        "saved {}; replay it with: cargo sim replay {}",
        out.display(),
        out.display()
    );
    ExitCode::from(super::EXIT_FAILURE)
}
