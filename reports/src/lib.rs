//! Campaign reports: the results of many seeded runs, one JSON line per
//! seed, what they add up to, and the report directory that holds them.
//! This crate knows nothing of the simulator: `sim` turns its runs into
//! [`result::SeedResult`]s and hands over the lists of kinds a report must
//! show, and the text of failure files.

pub mod dir;
pub mod merge;
pub mod render;
pub mod result;
pub mod summary;

#[cfg(test)]
mod fixtures;
