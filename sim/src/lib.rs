//! zsim's simulated world and its command line.
//!
//! The command line (`cargo sim <command>`) is deliberately thin: each command
//! in [`cmd`] parses its arguments, calls the engine, and turns the outcome
//! into text and an exit status (0 success, 1 the failure the command exists
//! to find, 2 a usage error).

pub mod cmd;
pub mod file_device;
#[cfg(madsim)]
pub mod fuzz;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod world;
