//! `cargo sim dump`: the records of a send stream, as `zstreamdump` prints them.

use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::stream::dump::{DumpOptions, dump};

use super::{EXIT_FAILURE, open_stream};

/// Print the records of a ZFS send stream.
///
/// The output is byte for byte what `zstreamdump` prints for a valid stream.
/// A stream that is not whole (cut short, bad magic, unknown record type, a
/// length no block can have, an END checksum that does not match, bytes after
/// the END) is listed up to the damage, then summarised; each problem is
/// reported on standard error with its record index and byte offset, and the
/// exit status is 1.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Print every record, not only BEGIN and END (zstreamdump -v).
    #[arg(short, long)]
    pub verbose: bool,
    /// Do not verify the END checksums (zstreamdump -C).
    #[arg(short = 'C', long = "no-checksum")]
    pub no_checksum: bool,
    /// The stream to read; standard input when absent or "-".
    pub file: Option<PathBuf>,
}

pub fn run(args: &DumpArgs) -> ExitCode {
    let input = match open_stream(args.file.as_deref()) {
        Ok(input) => input,
        Err((code, message)) => {
            eprintln!("{message}");
            return code;
        }
    };
    let options = DumpOptions {
        verbose: args.verbose,
        skip_checksums: args.no_checksum,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let report = match dump(BufReader::with_capacity(1 << 20, input), &mut out, options)
        .and_then(|report| out.flush().map(|()| report))
    {
        Ok(report) => report,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dump: cannot write output: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    for error in report.errors() {
        eprintln!("dump: {error}");
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}
