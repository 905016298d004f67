//! `cargo sim scrub`: `zpool scrub` of a pool image, run to completion.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::scrub::{resilver, scrub};
use engine::spa::Pool;

use super::{EXIT_FAILURE, host_clock, host_random};
use crate::file_device::import_image;

/// Read every copy of every block of a pool image (the MOS, every
/// filesystem and snapshot) and rewrite each bad copy from a good one, as
/// `zpool scrub` does. Metadata has two copies (pool-wide metadata three),
/// data as many as its filesystem's `copies` property says. Prints the
/// blocks and copies read, the bad copies found and repaired, and every
/// block with no good copy left (lost data), then each device's read,
/// write and checksum error counts, as `zpool status` shows them. A pool on
/// a mirror (`pool create --mirror`) is opened whole, by the paths its
/// labels record; a mirror device that missed txgs is resilvered first.
/// Exits 1 if any block has no good copy, or the image cannot be imported.
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
    let mut pool = import_image(&args.image, host_clock(), host_random(None))?;
    // A mirror device that missed txgs is brought up to date first, as
    // ZFS resilvers before it scrubs.
    if let Some(resilvered) = resilver(&mut pool) {
        print!("pool {}: resilver: {resilvered}", pool.name);
    }
    let report = scrub(&mut pool);
    print!("pool {}: {report}", pool.name);
    print_status(&pool);
    // The repairs are written; export makes them durable.
    pool.export()
        .map_err(|e| format!("cannot write back {}: {e}", args.image.display()))?;
    Ok(report.unrepairable.is_empty())
}

/// The devices and their error counts, as `zpool status` lays them out.
fn print_status(pool: &Pool) {
    let status = pool.vdev_status();
    println!(
        "{:<48} {:>6} {:>6} {:>6}",
        "DEVICE", "READ", "WRITE", "CKSUM"
    );
    let indent = if pool.is_mirror() {
        println!("  mirror-0");
        "    "
    } else {
        "  "
    };
    for child in status {
        let missed = match child.missing {
            Some((lo, hi)) => format!("  (missed txgs {lo}..={hi})"),
            None => String::new(),
        };
        println!(
            "{:<48} {:>6} {:>6} {:>6}{missed}",
            format!("{indent}{}", child.path),
            child.errors.read,
            child.errors.write,
            child.errors.cksum
        );
    }
}
