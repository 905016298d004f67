//! One module per `cargo sim` command.

pub mod campaign;
pub mod corpus;
pub mod coverage;
pub mod dump;
pub mod fuzz;
pub mod listing;
pub mod ls;
pub mod pool;
pub mod props;
pub mod recv;
pub mod replay;
pub mod report;
pub mod run;
pub mod scrub;
pub mod send;
pub mod verify;
pub mod zdb;
pub mod zoo;

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

/// Exit status of a command that found what it exists to find (a broken
/// stream, a violation, a leak).
pub const EXIT_FAILURE: u8 = 1;
/// What a simulation command says when the binary was built without
/// madsim's simulator (`--cfg madsim`, set in `.cargo/config.toml`).
pub const NO_SIMULATOR: &str = "this sim binary was built without --cfg madsim, so it has no \
simulated world: build it from the zsim checkout with `cargo sim ...`, or install it with \
`RUSTFLAGS=\"--cfg madsim\" cargo install --path sim` (a RUSTFLAGS variable replaces the \
flags in .cargo/config.toml)";

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

/// The host's clock, for commands that work on real pool images (creation
/// times are real there, as with ZFS). Simulations use the simulated clock.
pub fn host_clock() -> Box<dyn engine::context::Clock> {
    struct HostClock;
    impl engine::context::Clock for HostClock {
        fn now_secs(&self) -> u64 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        }
    }
    Box::new(HostClock)
}

/// Random guids for a real pool image: from `seed` when given (repeatable),
/// else from the current time.
pub fn host_random(seed: Option<u64>) -> Box<dyn engine::context::RandomSource> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32
    });
    Box::new(engine::context::SplitMix64::new(seed))
}

/// A reader that counts the bytes that pass: for rate reports, and to
/// place errors that come without a record.
pub struct Counted<R> {
    pub inner: R,
    pub bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// `zfs receive` wants the parent of a new filesystem to exist: makes the
/// missing ones between the pool and `fs`'s parent.
pub fn create_parents(pool: &mut engine::spa::Pool, fs: &str) -> engine::Result<()> {
    let parts: Vec<&str> = fs.split('/').collect();
    for n in 2..parts.len() {
        let parent = parts[..n].join("/");
        match pool.lookup(&parent) {
            Ok(_) => {}
            Err(e) if e.errno() == engine::error::Errno::ENOENT => {
                pool.create_fs(&parent)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
