//! zsim's engine: a reimplementation of the ZFS DMU, DSL and send/receive
//! engine of the illumos 2013 era, and the send-stream format it reads and
//! writes byte for byte.
//!
//! The engine is synchronous and deterministic. It owns no clock, random
//! source or file: every effect goes through a trait, so the same code runs
//! on a real pool image and inside the simulator. Modules are named after the
//! ZFS layers they follow.

pub mod checksum;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod nvlist;
pub mod stream;

pub use error::{Errno, Error, Result};
pub mod byteswap;
pub mod check;
pub mod context;
pub mod dmu;
pub mod dsl;
pub mod metaslab;
pub mod recv;
pub mod send;
pub mod spa;
pub mod traverse;
pub mod vdev;
pub mod zap;
pub mod zio;
pub mod zpl;
