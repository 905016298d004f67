//! `cargo sim run`: one seeded simulation, the command a storage engineer
//! replays a failure with. Same seed, same output, always.

use std::process::ExitCode;

use clap::Args;

use super::EXIT_USAGE;

/// Run one seeded simulation: two pools on simulated disks, a workload
/// from a scenario, faults from a plan, and an oracle that judges every
/// receive (the target matches its source, or the receive failed and left
/// the target exactly as it was) and every crash (the pool imports to a
/// state that could have been durable, and its check is clean).
///
/// Prints the fault plan, each step with its virtual time and outcome, the
/// engine error sites hit, and a summary. On a violation it prints what was
/// expected and what was found, the last trace lines, and the command that
/// replays it, and exits with status 1.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The seed: it fixes every decision of the run.
    #[arg(long)]
    pub seed: u64,
    /// A named scenario (mix, smoke, incremental-chain, clone-send, dedup,
    /// reclaim-blocksize, holes, crash-during-recv, foreign-endian,
    /// interrupted-send, deep, zpl, misuse, concurrent, destroy-during-send,
    /// recv-while-target-changes, two-receivers, replicate, redundant) or a path to a scenario
    /// .toml file.
    #[arg(long, default_value = "mix")]
    pub scenario: String,
    /// Fault plan: `swarm` (each kind on or off, rates drawn from the seed),
    /// `all`, `none`, or kinds with optional rates, e.g.
    /// `torn,eio-read:0.01,signal,endian`. Kinds: crash, torn, eio-read,
    /// eio-write, corrupt, misdirect, signal, endian, short-io, pipe-damage,
    /// hostile, enospc, malformed, disk-loss.
    /// Default: the scenario's plan.
    #[arg(long)]
    pub faults: Option<String>,
    /// Steps to generate (default: the scenario's).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Print the whole trace to stderr as it happens.
    #[arg(short, long)]
    pub verbose: bool,
    /// Run the seed twice and compare the trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write each pool's disk as it is at the end of the run to
    /// DIR/POOL.img (src.img, dst.img), for `cargo sim ls` and `zdb`.
    #[arg(long, value_name = "DIR")]
    pub save_images: Option<std::path::PathBuf>,
    /// Plant a known engine bug (skip-recv-cleanup), to see the oracle
    /// catch it.
    #[arg(long, hide = true)]
    pub plant: Vec<String>,
}

#[cfg(not(madsim))]
pub fn run(_args: &RunArgs) -> ExitCode {
    eprintln!("{}", super::NO_SIMULATOR);
    ExitCode::from(EXIT_USAGE)
}

#[cfg(madsim)]
pub fn run(args: &RunArgs) -> ExitCode {
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cargo sim run: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let report = crate::runner::run(&config);
    print!("{}", crate::runner::text::render(&report));
    if let Some(dir) = &args.save_images
        && let Err(e) = save_images(dir, &report.images)
    {
        eprintln!("cargo sim run: {e}");
        return ExitCode::from(super::EXIT_FAILURE);
    }
    if args.check_determinism {
        let again = crate::runner::run(&config);
        if again.trace_hash != report.trace_hash {
            println!(
                "determinism: FAILED: trace hash {} then {}",
                report.trace_hash, again.trace_hash
            );
            return ExitCode::from(super::EXIT_FAILURE);
        }
        println!("determinism: ok, the second run has the same trace hash");
    }
    if report.violation.is_some() {
        return ExitCode::from(super::EXIT_FAILURE);
    }
    ExitCode::SUCCESS
}

#[cfg(madsim)]
fn config(args: &RunArgs) -> Result<crate::runner::RunConfig, String> {
    let mut config = crate::runner::RunConfig::from_options(
        args.seed,
        &args.scenario,
        args.faults.as_deref(),
        args.steps,
        &args.plant,
    )?;
    config.verbose = args.verbose;
    config.save_images = args.save_images.is_some();
    Ok(config)
}

/// Writes each pool's image into `dir` (made if missing).
#[cfg(madsim)]
fn save_images(dir: &std::path::Path, images: &[(String, Vec<u8>)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (pool, bytes) in images {
        let path = dir.join(format!("{pool}.img"));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("image: {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
