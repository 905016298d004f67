//! zsim's engine: a reimplementation of the ZFS DMU, DSL and send/receive
//! engine of the illumos 2013 era, and the send-stream format it reads and
//! writes byte for byte.
//!
//! The engine is synchronous and deterministic. It owns no clock, random
//! source or file: every effect goes through a trait, so the same code runs
//! on a real pool image and inside the simulator. Modules are named after the
//! ZFS layers they follow.

/// Whether the planted bug `planted::Bug::$bug` is on for this thread, at
/// the site where the engine would deviate: a constant `false` without the
/// `planted-bugs` feature, so a normal build has no way to plant one.
#[cfg(feature = "planted-bugs")]
macro_rules! planted {
    ($bug:ident) => {
        $crate::planted::is_enabled($crate::planted::Bug::$bug)
    };
}
#[cfg(not(feature = "planted-bugs"))]
macro_rules! planted {
    ($bug:ident) => {
        false
    };
}

/// Whether the BUGGIFY probe `buggify::Probe::$probe` fires here (the
/// harness's hook decides): a constant `false` without the `buggify`
/// feature, so a normal build never takes a probed path.
#[cfg(feature = "buggify")]
macro_rules! buggify {
    ($probe:ident) => {
        $crate::buggify::fires($crate::buggify::Probe::$probe)
    };
}
#[cfg(not(feature = "buggify"))]
macro_rules! buggify {
    ($probe:ident) => {
        false
    };
}

#[cfg(feature = "buggify")]
pub mod buggify;
pub mod checksum;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod nvlist;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod stream;

pub use error::{Errno, Error, Result};
pub mod byteswap;
pub mod check;
pub mod context;
pub mod dmu;
pub mod dsl;
pub mod metaslab;
pub mod recv;
pub mod replicate;
pub mod scrub;
pub mod send;
pub mod spa;
pub mod traverse;
pub mod vdev;
pub mod zap;
pub mod zio;
pub mod zpl;
