//! The DSL: dataset directories, datasets, snapshots and clones, their names
//! (`pool/fs/child@snap`), properties and space (`dsl_dir.c`,
//! `dsl_dataset.c`, `dsl_destroy.c`, `dsl_deadlist.c`).
//!
//! Space is kept with ZFS's birth-time design: a block killed from a head
//! dataset is freed when it was born after the latest snapshot, and otherwise
//! goes on the head's deadlist, because that snapshot still holds it.
//! Destroying a snapshot walks its successor's deadlist to find what only it
//! held. zsim stores the whole DSL (with the deadlists) as one record in an
//! object of the MOS, rewritten copy-on-write in every txg that changes it.

pub mod dataset;
pub mod state;

pub use state::{DatasetId, DirId, DslDataset, DslDir, DslState, PropValue};

/// `DS_FLAG_INCONSISTENT`: a receive is writing into the dataset.
pub const DS_FLAG_INCONSISTENT: u64 = 1 << 0;
/// `DS_FLAG_NOPROMOTE`.
pub const DS_FLAG_NOPROMOTE: u64 = 1 << 1;
/// `DS_FLAG_UNIQUE_ACCURATE`.
pub const DS_FLAG_UNIQUE_ACCURATE: u64 = 1 << 2;
/// `DS_FLAG_DEFER_DESTROY`.
pub const DS_FLAG_DEFER_DESTROY: u64 = 1 << 3;
/// `DS_FLAG_CI_DATASET`: names compare case-insensitively.
pub const DS_FLAG_CI_DATASET: u64 = 1 << 16;

/// `MAXNAMELEN`: the longest full dataset name, NUL included.
pub const MAXNAMELEN: usize = 256;

/// Checks one component of a dataset or snapshot name (`zfs_component_namecheck`).
pub fn valid_component(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b' '))
}

/// Splits `pool/fs@snap` into the dataset path and the snapshot name.
pub fn split_snapshot_name(name: &str) -> Option<(&str, &str)> {
    let (fs, snap) = name.split_once('@')?;
    (!snap.contains('@')).then_some((fs, snap))
}
