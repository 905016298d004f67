//! A report directory: the files a campaign writes and a merge reads and
//! writes.
//!
//! `cargo sim campaign --report DIR` writes (and `cargo sim report merge`
//! reads and writes) the files below. `--report` without a directory
//! writes to `reports/out/latest` (git ignores `reports/out/`, and the
//! nightly workflow's `reports/shard-*` and `reports/nightly`).
//!
//! - `DIR/results.jsonl`: one [`SeedResult`](crate::result::SeedResult) per line, as JSON, sorted by
//!   seed (then scenario, then plan); see [`crate::result`]. Being sorted
//!   lets a merge stream the files ([`merge_sorted`](crate::merge::merge_sorted)) instead of holding
//!   them.
//! - `DIR/report.md`: [`render_markdown`](crate::render::render_markdown)
//!   of the [`Summary`](crate::summary::Summary) of those results. It holds no wall-clock figures, so it is as repeatable as the
//!   results.
//! - `DIR/failures/seed-N.toml`: one per failing seed, the file
//!   `cargo sim replay` reads (written by `sim`, not by this crate).

/// The results file in a report directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// The markdown report in a report directory.
pub const REPORT_FILE: &str = "report.md";
/// The directory of failure files in a report directory.
pub const FAILURES_DIR: &str = "failures";
