//! One module per `cargo sim` command.

pub mod dump;

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

/// Exit status of a command that found what it exists to find (a broken
/// stream, a violation, a leak).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a command that was called wrongly.
pub const EXIT_USAGE: u8 = 2;

/// Opens a stream named on the command line, or standard input when none is,
/// refusing a terminal as `zstreamdump` and `zfs recv` do.
pub fn open_stream(path: Option<&Path>) -> Result<Box<dyn Read>, (ExitCode, String)> {
    match path {
        Some(path) if path != Path::new("-") => match File::open(path) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) => Err((
                ExitCode::from(EXIT_USAGE),
                format!("cannot open {}: {e}", path.display()),
            )),
        },
        _ => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                return Err((
                    ExitCode::from(EXIT_USAGE),
                    "Error: Backup stream can not be read from a terminal.\n\
                     You must redirect standard input."
                        .to_string(),
                ));
            }
            Ok(Box::new(stdin.lock()))
        }
    }
}
