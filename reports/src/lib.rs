//! Campaign reports: rendering the results of many seeded runs (outcomes,
//! faults fired, error sites hit, failing seeds with their replay commands) as
//! markdown tables, and merging shards run on other machines.
//!
//! Campaigns are not built yet; this crate holds its place in the workspace.
//! Reports written by `cargo sim campaign` land in this directory's `out/`.
