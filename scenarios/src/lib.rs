//! Workloads for zsim: named scenario specs and seeded step generators, the
//! reference model that knows what every snapshot must contain, the oracle that
//! judges each receive (match, or cleanly destroyed), the runner and shrinking.
//!
//! The scenario runner is not built yet; this crate holds its place in the
//! workspace so that the layering (`engine` <- `sim` <- `scenarios`) is fixed.
