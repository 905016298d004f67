//! `cargo sim ls`: the files of a snapshot in a pool image, as `verify`
//! lists a received backup, for looking at what `cargo sim recv` put there.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::zpl::{self, WalkOptions};

use super::listing::{snapshot_json, write_text};
use super::{EXIT_FAILURE, host_clock, host_random};
use crate::file_device::import_image;

/// List the files of a ZFS filesystem snapshot in a pool image: type, mode,
/// size and path of each, a symlink's target, and with --hash the SHA-256 of
/// each regular file. Nothing is written but what import itself does (it
/// destroys a receive a crash left half done).
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// The snapshot (pool/fs@snap), or a filesystem's current state.
    #[arg(value_name = "FS@SNAP")]
    pub dataset: String,
    /// Hash every regular file (SHA-256).
    #[arg(long)]
    pub hash: bool,
    /// Print JSON: {"name", "files": [...]}, as one snapshot of `verify --json`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &LsArgs) -> ExitCode {
    // Not exported afterwards: listing changes nothing worth writing.
    let mut pool = match import_image(&args.image, host_clock(), host_random(Some(0))) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("ls: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let id = match pool.lookup(&args.dataset) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("ls: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let options = WalkOptions {
        hash: args.hash,
        ..WalkOptions::default()
    };
    let files = match zpl::walk_with(&mut pool, id, &options) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("ls: cannot list {}: {e}", args.dataset);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let name = pool.dataset_name(id);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = if args.json {
        out.write_all(snapshot_json(&name, &files).render().as_bytes())
    } else {
        write_text(&mut out, &name, &files)
    }
    .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ls: cannot write output: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
