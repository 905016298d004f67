//! `cargo sim scrub`: `zpool scrub` of a pool image, run to completion.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::scrub::scrub;
use engine::spa::Pool;

use super::{EXIT_FAILURE, host_clock, host_random};
use crate::file_device::FileDevice;

/// Read every copy of every block of a pool image (the MOS, every
/// filesystem and snapshot) and rewrite each bad copy from a good one, as
/// `zpool scrub` does. Metadata has two copies (pool-wide metadata three),
/// data as many as its filesystem's `copies` property says. Prints the
/// blocks and copies read, the bad copies found and repaired, and every
/// block with no good copy left (lost data). Exits 1 if any block has no
/// good copy, or the image cannot be imported.
#[derive(Debug, Args)]
pub struct ScrubArgs {
    /// The pool image file; repaired copies are written to it.
    pub image: PathBuf,
}

pub fn run(args: &ScrubArgs) -> ExitCode {
    match scrub_image(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILURE),
        Err(e) => {
            eprintln!("scrub: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `Ok(false)` when some block has no good copy.
fn scrub_image(args: &ScrubArgs) -> Result<bool, String> {
    let dev = FileDevice::open(&args.image).map_err(|e| e.to_string())?;
    let mut pool = Pool::import(Box::new(dev), host_clock(), host_random(None))
        .map_err(|e| format!("cannot import {}: {e}", args.image.display()))?;
    let report = scrub(&mut pool);
    print!("pool {}: {report}", pool.name);
    // The repairs are written; export makes them durable.
    pool.export()
        .map_err(|e| format!("cannot write back {}: {e}", args.image.display()))?;
    Ok(report.unrepairable.is_empty())
}
