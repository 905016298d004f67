//! `cargo sim send`: a snapshot of a pool image as a ZFS send stream.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use engine::send::{DedupTable, NoInterrupt, SendOptions};
use engine::stream::ByteOrder;

use super::{EXIT_FAILURE, EXIT_USAGE, host_clock, host_random};
use crate::file_device::import_image;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Order {
    Native,
    Little,
    Big,
}

/// Write a snapshot as a send stream to standard output (as `zfs send`):
/// full, or incremental from an earlier snapshot of the same filesystem or
/// of its origin (a clone stream); with -R, a replication stream of the
/// filesystem and its descendants.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// The snapshot to send: pool/fs@snap.
    pub snapshot: String,
    /// Incremental from this snapshot: @snap (same filesystem) or pool/fs@snap.
    #[arg(short = 'i')]
    pub from: Option<String>,
    /// Deduplicate: repeated blocks become WRITE_BYREF records.
    #[arg(short = 'D', conflicts_with = "replicate")]
    pub dedup: bool,
    /// Replication stream (`zfs send -R`): the filesystem and every
    /// descendant that has the snapshot, each with all its snapshots up to
    /// it, clones after their origins, and the properties set on each, in
    /// one compound stream.
    #[arg(short = 'R', id = "replicate", conflicts_with_all = ["from", "estimate"])]
    pub replicate: bool,
    /// With -R: only the snapshots after this one (`@snap`), each
    /// filesystem's first as an incremental from it.
    #[arg(short = 'I', value_name = "@FROM", requires = "replicate")]
    pub from_all: Option<String>,
    /// Byte order of the stream, as a host of that order would write it.
    #[arg(long, value_enum, default_value_t = Order::Native)]
    pub byte_order: Order,
    /// Print the estimated stream size and send nothing.
    #[arg(long)]
    pub estimate: bool,
    /// Report what is sent, and the size and rate, on standard error.
    #[arg(short = 'v')]
    pub verbose: bool,
}

pub fn run(args: &SendArgs) -> ExitCode {
    let from = args.from.as_ref().map(|f| match f.strip_prefix('@') {
        Some(snap) => format!(
            "{}@{snap}",
            args.snapshot.split('@').next().unwrap_or_default()
        ),
        None => f.clone(),
    });
    if !args.estimate && io::stdout().is_terminal() {
        eprintln!(
            "Error: Stream can not be written to a terminal.\nYou must redirect standard output."
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let mut pool = match import_image(&args.image, host_clock(), host_random(None)) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("send: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let estimate = pool.send_estimate(&args.snapshot, from.as_deref());
    if (args.estimate || args.verbose) && !args.replicate {
        match &estimate {
            Ok(size) => {
                let kind = if from.is_some() {
                    "incremental"
                } else {
                    "full"
                };
                eprintln!("{kind} send of {} estimated size is {size}", args.snapshot);
                if args.estimate {
                    println!("{size}");
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) => {
                eprintln!("send: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
    let options = SendOptions {
        byte_order: match args.byte_order {
            Order::Native => ByteOrder::NATIVE,
            Order::Little => ByteOrder::Little,
            Order::Big => ByteOrder::Big,
        },
        ..SendOptions::default()
    };
    let mut table = DedupTable::default();
    let started = Instant::now();
    let stdout = io::stdout();
    // Headers and small payloads are gathered; a payload of 64 KiB or more
    // goes straight out from where it was read, not through a copy.
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    if args.replicate {
        let result = pool
            .send_replication(&args.snapshot, args.from_all.as_deref(), &mut out, &options)
            .and_then(|()| {
                out.flush()
                    .map_err(|e| engine::Error::new(engine::Errno::EIO, e.to_string()))
            });
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("send: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    let result = pool.send(
        &args.snapshot,
        from.as_deref(),
        &mut out,
        &options,
        args.dedup.then_some(&mut table),
        &mut NoInterrupt,
    );
    let flushed = out.flush();
    match result.and_then(|s| {
        flushed
            .map(|()| s)
            .map_err(|e| engine::Error::new(engine::Errno::EIO, e.to_string()))
    }) {
        Ok(summary) => {
            if args.verbose {
                let secs = started.elapsed().as_secs_f64().max(1e-6);
                eprintln!(
                    "sent {} bytes in {} records in {:.3} s ({:.1} MB/s)",
                    summary.bytes,
                    summary.records,
                    secs,
                    summary.bytes as f64 / secs / 1e6
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("send: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
