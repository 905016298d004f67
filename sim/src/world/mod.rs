//! The simulated world the engine runs in: madsim's executor and virtual
//! time, a disk, a clock and a pipe that misbehave as a seeded fault plan
//! says, the engine's BUGGIFY probes, and a trace of everything that
//! happened.
//!
//! Every decision comes from the run's seed (see [`streams`]), so a seed
//! replays exactly.

pub mod clock;
pub mod disk;
pub mod faults;
pub mod hostile;
pub mod injector;
pub mod malformed;
pub mod options;
pub mod pipe;
pub mod probes;
pub mod records;
pub mod streams;
pub mod trace;
pub mod transfer;
