//! Scenario specs: TOML files under `scenarios/` that say how many steps a
//! run takes, which fault plan it uses unless told otherwise, and how often
//! the generator picks each step kind.
//!
//! ```toml
//! description = "Full and incremental sends of a changing filesystem."
//! steps = 60
//! faults = "none"
//! [weights]
//! write = 10
//! snapshot = 3
//! send-incremental = 4
//! [depth]            # optional: how deep into the engine objects reach
//! far_share = 0.3
//! ```
//!
//! and optionally `fill_palette = N` (writes repeat N contents) and a
//! `[race]` table weighing the races of `race` steps.
//!
//! The named scenarios are compiled in, so `cargo sim run --scenario smoke`
//! works from any directory; `--scenario path/to/file.toml` reads a file.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::step::{Interleaving, Step};

/// A parsed scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub name: String,
    pub description: String,
    /// Steps the generator makes (`--steps` overrides).
    pub steps: usize,
    /// The fault plan unless `--faults` is given: `none`, `all`, `swarm`, or
    /// a list of `kind[:rate]`.
    #[serde(default = "default_faults")]
    pub faults: String,
    /// Relative weights of step kinds (see `Step::KINDS`); kinds left out
    /// are never chosen.
    pub weights: BTreeMap<String, u32>,
    /// How large and sparse objects get.
    #[serde(default)]
    pub depth: Depth,
    /// Writes draw their contents from this many fills only (0: any), so
    /// the same block recurs across objects and snapshots and overwrites
    /// replace blocks that later writes repeat: what `-D` streams need for
    /// a WRITE_BYREF to point at a block the receiver has since changed.
    #[serde(default)]
    pub fill_palette: u64,
    /// Relative weights of the races a `race` step draws, by interleaving
    /// name (`Interleaving::name`); empty: every race alike. Each seed
    /// then turns about half of them off (swarm testing).
    #[serde(default)]
    pub race: BTreeMap<String, u32>,
    /// The pools' shape: `[pool] devices = [1, 2, 3]` draws each seed's
    /// disks per pool (1, or a 2- or 3-way mirror) from the list.
    #[serde(default)]
    pub pool: PoolShape,
}

/// How many disks each pool of a run has, drawn per seed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolShape {
    pub devices: Vec<u8>,
}

impl Default for PoolShape {
    /// One disk, as every scenario had before mirrors.
    fn default() -> PoolShape {
        PoolShape { devices: vec![1] }
    }
}

/// How deep into the engine a workload's objects reach: how far writes,
/// holes and truncations go, how much a write covers, how sparse object
/// numbers get. The defaults are the shallow workload every scenario had
/// before these knobs, draw for draw.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Depth {
    /// Writes, holes and truncations near the start reach this many blocks.
    pub span_blocks: u64,
    /// A write covers up to this many blocks.
    pub write_blocks_max: u64,
    /// The share of writes, holes and truncations at a far offset, below
    /// `2^far_offset_log2` bytes: sparse objects with many indirect levels
    /// (a 512-byte block at 2^40 needs six).
    pub far_share: f64,
    pub far_offset_log2: u32,
    /// A claimed object number lies 1 to this many numbers above the
    /// highest object (a wide gap means long FREEOBJECTS ranges).
    pub claim_gap_max: u64,
    /// The share of claims that take back the number of an object freed
    /// since a snapshot of its filesystem, half of them with the old
    /// object's very shape: the receiver then keeps the old object and
    /// only the stream's frees (past the new end, too) clear what it held.
    pub reuse_share: f64,
    /// The share of new filesystems made below an existing source
    /// filesystem rather than at the top: trees for `send -R`.
    pub nest_share: f64,
    /// New objects get one of these block sizes (empty: any the generator
    /// knows): one size lets a block recur across objects.
    pub block_sizes: Vec<u32>,
}

impl Default for Depth {
    fn default() -> Depth {
        Depth {
            span_blocks: 6,
            write_blocks_max: 2,
            far_share: 0.0,
            far_offset_log2: 40,
            claim_gap_max: 20,
            reuse_share: 0.0,
            nest_share: 0.0,
            block_sizes: Vec::new(),
        }
    }
}

impl Depth {
    /// Refuses knobs the generator cannot use, naming them.
    fn check(&self, name: &str) -> Result<(), String> {
        let bad = |what: &str| Err(format!("scenario {name}: [depth] {what}"));
        if self.span_blocks == 0 || self.write_blocks_max == 0 || self.claim_gap_max < 2 {
            return bad(
                "span_blocks and write_blocks_max must be at least 1, claim_gap_max at least 2",
            );
        }
        if [self.far_share, self.reuse_share, self.nest_share]
            .iter()
            .any(|s| !(0.0..=1.0).contains(s))
        {
            return bad("far_share, reuse_share and nest_share must be between 0 and 1");
        }
        if self
            .block_sizes
            .iter()
            .any(|b| !engine::dmu::dnode::valid_blksz(u64::from(*b)))
        {
            return bad("block_sizes must be multiples of 512 up to 128 KiB");
        }
        if !(17..=50).contains(&self.far_offset_log2) {
            return bad("far_offset_log2 must be between 17 and 50");
        }
        Ok(())
    }
}

fn default_faults() -> String {
    "swarm".to_string()
}

/// The scenarios shipped with zsim, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("mix", include_str!("../mix.toml")),
    ("smoke", include_str!("../smoke.toml")),
    (
        "incremental-chain",
        include_str!("../incremental-chain.toml"),
    ),
    ("clone-send", include_str!("../clone-send.toml")),
    ("dedup", include_str!("../dedup.toml")),
    (
        "reclaim-blocksize",
        include_str!("../reclaim-blocksize.toml"),
    ),
    ("holes", include_str!("../holes.toml")),
    (
        "crash-during-recv",
        include_str!("../crash-during-recv.toml"),
    ),
    ("foreign-endian", include_str!("../foreign-endian.toml")),
    ("interrupted-send", include_str!("../interrupted-send.toml")),
    ("deep", include_str!("../deep.toml")),
    ("zpl", include_str!("../zpl.toml")),
    ("misuse", include_str!("../misuse.toml")),
    ("concurrent", include_str!("../concurrent.toml")),
    ("replicate", include_str!("../replicate.toml")),
    (
        "destroy-during-send",
        include_str!("../destroy-during-send.toml"),
    ),
    (
        "recv-while-target-changes",
        include_str!("../recv-while-target-changes.toml"),
    ),
    ("two-receivers", include_str!("../two-receivers.toml")),
    ("redundant", include_str!("../redundant.toml")),
];

impl Spec {
    pub fn parse(name: &str, text: &str) -> Result<Spec, String> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| format!("scenario {name}: {e}"))?;
        spec.name = name.to_string();
        for kind in spec.weights.keys() {
            if !Step::KINDS.contains(&kind.as_str()) {
                return Err(format!(
                    "scenario {name}: unknown step kind {kind:?} in [weights]; the kinds are {}",
                    Step::KINDS.join(", ")
                ));
            }
        }
        if spec.weights.values().all(|w| *w == 0) {
            return Err(format!("scenario {name}: every weight is zero"));
        }
        spec.depth.check(name)?;
        if spec.pool.devices.is_empty() || spec.pool.devices.iter().any(|d| !(1..=3).contains(d)) {
            return Err(format!(
                "scenario {name}: [pool] devices must list disk counts of 1, 2 or 3"
            ));
        }
        for kind in spec.race.keys() {
            if !Interleaving::ALL.iter().any(|i| i.name() == kind) {
                let names: Vec<&str> = Interleaving::ALL.iter().map(|i| i.name()).collect();
                return Err(format!(
                    "scenario {name}: unknown race {kind:?} in [race]; the races are {}",
                    names.join(", ")
                ));
            }
        }
        Ok(spec)
    }

    /// A built-in scenario by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Spec, String> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Spec::parse(name, text);
        }
        let path = std::path::Path::new(name_or_path);
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("scenario {name_or_path}: {e}"))?;
            let name = path.file_stem().map_or(name_or_path.to_string(), |s| {
                s.to_string_lossy().into_owned()
            });
            return Spec::parse(&name, &text);
        }
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        Err(format!(
            "no scenario {name_or_path:?}: the named ones are {}, or give a path to a .toml file",
            names.join(", ")
        ))
    }

    pub fn weight(&self, kind: &str) -> u32 {
        self.weights.get(kind).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_parses() {
        for (name, _) in BUILTIN {
            let spec = Spec::load(name).unwrap();
            assert!(spec.steps > 0, "{name}");
        }
        assert!(Spec::load("nope").unwrap_err().contains("smoke"));
        let bad = Spec::parse("x", "description = \"\"\nsteps = 1\n[weights]\nwrit = 1\n");
        assert!(bad.unwrap_err().contains("unknown step kind"));
    }
}
