//! `cargo sim recv`: a ZFS send stream into a pool image.

use std::io::{self, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use engine::recv::RecvOptions;
use engine::send::NoInterrupt;
use engine::spa::Pool;
use engine::stream::{ChecksumPolicy, Record, StreamReader};

use super::{Counted, EXIT_FAILURE, EXIT_USAGE, host_clock, host_random};
use crate::file_device::FileDevice;

/// Receive a send stream from standard input into a pool image (as
/// `zfs receive`): a full stream makes a new filesystem, an incremental one
/// adds a snapshot to an existing one, a clone stream needs -o origin=, and a
/// compound -I stream is received substream by substream. A stream that
/// fails for any reason leaves the pool as it was.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// pool/fs (the snapshot keeps the stream's name) or pool/fs@snap.
    pub target: String,
    /// Force: discard changes made to the target since its latest snapshot,
    /// and let a full stream replace a filesystem without snapshots.
    #[arg(short = 'F')]
    pub force: bool,
    /// Properties: only origin=pool/fs@snap (the clone stream's origin).
    #[arg(short = 'o', value_name = "origin=FS@SNAP")]
    pub options: Vec<String>,
    /// Do not receive: read and verify the whole stream, and say what would
    /// be received.
    #[arg(short = 'n')]
    pub dry_run: bool,
    /// Report what is received, and the size and rate, on standard error.
    #[arg(short = 'v')]
    pub verbose: bool,
}

pub fn run(args: &RecvArgs) -> ExitCode {
    let mut origin = None;
    for option in &args.options {
        match option.split_once('=') {
            Some(("origin", value)) => origin = Some(value.to_string()),
            _ => {
                eprintln!("recv: unsupported property {option:?}: only origin=FS@SNAP is");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Error: Backup stream can not be read from a terminal.\nYou must redirect standard input."
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let mut input = Counted {
        inner: BufReader::with_capacity(1 << 20, stdin.lock()),
        bytes: 0,
    };
    let started = Instant::now();
    if args.dry_run {
        return dry_run(&mut input, &args.target);
    }
    let dev = match FileDevice::open(&args.image) {
        Ok(dev) => dev,
        Err(e) => {
            eprintln!("recv: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let mut pool = match Pool::import(Box::new(dev), host_clock(), host_random(None)) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("recv: cannot import {}: {e}", args.image.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let options = RecvOptions {
        force: args.force,
        origin,
    };
    let result = pool.receive(&args.target, &mut input, &options, &mut NoInterrupt);
    let received = match result {
        Ok(received) => received,
        Err(e) => {
            eprintln!("recv: cannot receive into {}: {e}", args.target);
            let _ = pool.export();
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let names: Vec<String> = received.iter().map(|&id| pool.dataset_name(id)).collect();
    if let Err(e) = pool.export() {
        eprintln!("recv: cannot write the pool back: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    if args.verbose {
        for name in &names {
            eprintln!("received {name}");
        }
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        eprintln!(
            "received {} bytes stream in {secs:.3} s ({:.1} MB/s)",
            input.bytes,
            input.bytes as f64 / secs / 1e6
        );
    }
    ExitCode::SUCCESS
}

/// `zfs recv -n`: the whole stream is read and verified, nothing is written.
fn dry_run(input: &mut impl Read, target: &str) -> ExitCode {
    let mut reader = StreamReader::new(input).with_checksum_policy(ChecksumPolicy::Verify);
    loop {
        match reader.next_record() {
            Ok(Some(entry)) => {
                if let Record::Begin(b) = &entry.record
                    && b.hdrtype() == 1
                {
                    let kind = if b.fromguid == 0 {
                        "full"
                    } else {
                        "incremental"
                    };
                    eprintln!(
                        "would receive {kind} stream of {} into {target}",
                        b.toname_lossy()
                    );
                }
            }
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("recv: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
}
