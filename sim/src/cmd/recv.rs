//! `cargo sim recv`: a ZFS send stream into a pool image.

use std::io::{self, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use engine::recv::RecvOptions;
use engine::send::NoInterrupt;
use engine::stream::{ChecksumPolicy, DRR_RECORD_SIZE, Record, StreamReader, detect_byte_order};

use super::{Counted, EXIT_FAILURE, EXIT_USAGE, host_clock, host_random};
use crate::file_device::import_image;

/// Receive a send stream from standard input into a pool image (as
/// `zfs receive`): a full stream makes a new filesystem, an incremental one
/// adds a snapshot to an existing one, a clone stream needs -o origin=, and a
/// compound -I stream is received substream by substream, a replication
/// stream (-R) as a tree. A stream that fails for any reason leaves the
/// pool as it was.
///
/// A replication stream (`zfs send -R`, also `-R -I`) is received as a tree:
/// the filesystem sent becomes the target, its children children of the
/// target, clones are made after their origins. Its substreams are received
/// in turn; when one fails, the ones before it stay and it leaves nothing.
/// The properties it carries are set as received values before each
/// filesystem's data is written (a local value still wins).
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// pool/fs (the snapshot keeps the stream's name) or pool/fs@snap; with
    /// -d or -e, the filesystem the stream's name is placed under.
    pub target: String,
    /// Place the stream under the target by its sent name less the pool:
    /// `fxp/a/b@s` into `T` goes to `T/a/b@s` (missing parents are made).
    #[arg(short = 'd', conflicts_with = "last")]
    pub discard_pool: bool,
    /// Place the stream under the target by the last element of its sent
    /// filesystem: `fxp/a/b@s` into `T` goes to `T/b@s`.
    #[arg(short = 'e', id = "last")]
    pub last: bool,
    /// Force: discard changes made to the target since its latest snapshot,
    /// and let a full stream replace a filesystem without snapshots.
    #[arg(short = 'F')]
    pub force: bool,
    /// `origin=pool/fs@snap`: the origin of a clone stream. Any other
    /// `PROP=VALUE` (a property `cargo sim set` takes) is set locally on
    /// the filesystem received into (a replication stream's top) before
    /// its data is written, so `compression=` applies to the received
    /// blocks; a failed receive puts the old value back. Repeatable.
    #[arg(short = 'o', value_name = "PROP=VALUE")]
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
    let mut props = Vec::new();
    for option in &args.options {
        // Checked as `cargo sim set` checks it, before the pool is touched.
        let checked = super::props::assignment(option).and_then(|(prop, value)| {
            if prop != "origin" {
                super::props::check_all(std::slice::from_ref(option))?;
            }
            Ok((prop, value))
        });
        match checked {
            Ok(("origin", value)) => origin = Some(value.to_string()),
            Ok((prop, value)) => props.push((prop.to_string(), value.to_string())),
            Err(e) => {
                eprintln!("recv: -o {e}");
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
    let mut stream = BufReader::with_capacity(1 << 20, stdin.lock());
    // With -d or -e the target depends on the name in the first BEGIN:
    // read it, then put it back in front of the rest.
    let mut head = Vec::new();
    let target = if args.discard_pool || args.last {
        let mut buf = [0u8; DRR_RECORD_SIZE];
        if let Err(e) = stream.read_exact(&mut buf) {
            eprintln!("recv: cannot read the stream's BEGIN record: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
        head = buf.to_vec();
        match placed_target(&args.target, &buf, args.last) {
            Ok(target) => target,
            Err(e) => {
                eprintln!("recv: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        args.target.clone()
    };
    let mut input = Counted {
        inner: io::Cursor::new(head).chain(stream),
        bytes: 0,
    };
    let started = Instant::now();
    if args.dry_run {
        return dry_run(&mut input, &target);
    }
    let mut pool = match import_image(&args.image, host_clock(), host_random(None)) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("recv: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let options = RecvOptions {
        force: args.force,
        origin,
        props,
    };
    if (args.discard_pool || args.last)
        && let Err(e) = super::create_parents(&mut pool, &target)
    {
        eprintln!("recv: cannot create the parents of {target}: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    let result = pool.receive(&target, &mut input, &options, &mut NoInterrupt);
    let received = match result {
        Ok(received) => received,
        Err(e) => {
            eprintln!("recv: cannot receive into {target}: {e}");
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

/// The filesystem a stream goes to with -d (`last` false: the sent name
/// less its pool) or -e (`last`: the last element of the sent filesystem),
/// under `target`; `first` is the stream's first record.
fn placed_target(
    target: &str,
    first: &[u8; DRR_RECORD_SIZE],
    last: bool,
) -> Result<String, String> {
    if target.contains('@') {
        return Err(format!(
            "with -d or -e the target is a filesystem, not a snapshot ({target})"
        ));
    }
    let order = detect_byte_order(first)
        .ok_or("record 0 (BEGIN) at byte offset 0: not a ZFS send stream (bad magic)")?;
    let Ok(Record::Begin(begin)) = Record::decode(first, order) else {
        return Err("record 0 at byte offset 0: the stream does not begin with a BEGIN".into());
    };
    Ok(placed_under(target, &begin.toname_lossy(), last))
}

/// Where `recv -d` (`last` false) or `-e` (`last`) puts a stream sent as
/// `sent` (`pool/fs@snap`) under `target`: the sent filesystem less its
/// pool, or its last element, below `target`.
pub fn placed_under(target: &str, sent: &str, last: bool) -> String {
    let fs = sent.split('@').next().unwrap_or_default();
    let tail = if last {
        fs.rsplit('/').next()
    } else {
        fs.split_once('/').map(|(_, rest)| rest)
    };
    match tail {
        Some(tail) if !tail.is_empty() => format!("{target}/{tail}"),
        _ => target.to_string(),
    }
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
