//! Workload steps: what each one is (here), its one-line text form
//! (`text.rs`), and what it does to a pool and to the model (`apply.rs`).
//!
//! A step names everything it touches (pool, filesystem, object, sizes, the
//! seed of the bytes it writes), so a list of steps replays without the
//! generator that made it, and a shrunk list stays readable:
//!
//! ```text
//! write src/fs0 obj=3 off=4096 len=8192 fill=77
//! send src/fs0@s2 from=src/fs0@s1 to=dst/r0 dedup
//! ```

mod apply;
mod misuse;
mod race;
mod text;
mod zpl;

pub use misuse::{HOLD_TAG, Misuse};
pub use race::{Interleaving, Race};

/// One thing the workload does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    CreateFs {
        fs: String,
    },
    /// `zfs_create_fs`: the ZPL's skeleton (master node, delete queue,
    /// root and shares directories) in a filesystem with no objects yet.
    ZplInit {
        fs: String,
    },
    /// ZPL operations on a filesystem that has the skeleton, by path
    /// relative to its root: `zfs_mkdir`, `zfs_create` of a file with
    /// `blksz`-byte blocks (its data comes from write, punch and truncate
    /// steps on its object), `zfs_symlink`, `zfs_link` to `existing`,
    /// `zfs_remove`, `zfs_rmdir`.
    Mkdir {
        fs: String,
        path: String,
        mode: u64,
    },
    /// `count` files: `path`, then `path.2` ... `path.<count>` (as
    /// `touch f f.2 f.3 ...`), so that a directory can outgrow a fat ZAP
    /// leaf in one step.
    MkFile {
        fs: String,
        path: String,
        mode: u64,
        blksz: u32,
        count: u64,
    },
    Symlink {
        fs: String,
        path: String,
        target: String,
    },
    Link {
        fs: String,
        path: String,
        existing: String,
    },
    /// An extended attribute of `len` bytes of `fill`, or none (len 0).
    Xattr {
        fs: String,
        path: String,
        name: String,
        len: u64,
        fill: u64,
    },
    Unlink {
        fs: String,
        path: String,
    },
    Rmdir {
        fs: String,
        path: String,
    },
    /// `dmu_object_alloc`, or `dmu_object_claim` of a given number.
    Alloc {
        fs: String,
        object: Option<u64>,
        shape: Shape,
    },
    /// `dmu_object_reclaim`: the same number as a new object.
    Reclaim {
        fs: String,
        object: u64,
        shape: Shape,
    },
    Write {
        fs: String,
        object: u64,
        offset: u64,
        len: u64,
        fill: u64,
    },
    /// Punch a hole: `dmu_free_range`.
    Punch {
        fs: String,
        object: u64,
        offset: u64,
        len: u64,
    },
    /// Free everything from `offset` on, and shrink the object.
    Truncate {
        fs: String,
        object: u64,
        offset: u64,
    },
    FreeObject {
        fs: String,
        object: u64,
    },
    Bonus {
        fs: String,
        object: u64,
        fill: u64,
    },
    /// A spill block of `len` bytes, or none (len 0).
    Spill {
        fs: String,
        object: u64,
        len: u64,
        fill: u64,
    },
    /// Per-object checksum and compression.
    Props {
        fs: String,
        object: u64,
        checksum: u8,
        compress: u8,
    },
    /// `zfs snapshot [-r]`: with `recursive`, every filesystem below
    /// gets the snapshot too, in the same txg (`snap` may then be the
    /// pool's root filesystem).
    Snapshot {
        snap: String,
        recursive: bool,
    },
    Clone {
        origin: String,
        fs: String,
    },
    /// `zfs set PROP=VALUE FS` of a user property: what `send -R` carries
    /// to the receiving tree as received values.
    SetProp {
        fs: String,
        prop: String,
        value: String,
    },
    /// `zfs send [-D] [-i from | -I from] snap | zfs recv [-F] [-o origin=..] target`.
    Send {
        snap: String,
        from: Option<String>,
        target: String,
        dedup: bool,
        force: bool,
        origin: Option<String>,
        /// `-I`: every snapshot between `from` and `snap`, one substream
        /// each, received in one session.
        intermediate: bool,
        /// `-R`: a replication stream of `snap`'s filesystem and every one
        /// below it, each with its snapshots up to `snap`'s name (with
        /// `-I`, from `from`'s name on), received as a tree at `target`.
        replicate: bool,
    },
    /// Roll a filesystem back to its latest snapshot.
    Rollback {
        fs: String,
    },
    Destroy {
        name: String,
    },
    /// Let virtual time pass (the txg-sync task runs on its timeout).
    Wait {
        ms: u64,
    },
    /// Power loss on a pool's disk, then import afresh.
    Crash {
        pool: String,
    },
    /// `zpool scrub`: read every copy of every block of a pool's last
    /// synced state and rewrite the bad ones from a good one.
    Scrub {
        pool: String,
    },
    /// Something ZFS must refuse, asked for on purpose.
    Misuse(Misuse),
    /// A send with another operation while it is in flight.
    Race(Race),
}

/// An object's shape: what alloc and reclaim set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub dn_type: u8,
    pub blksz: u32,
    pub bonustype: u8,
    pub bonuslen: usize,
}

impl Step {
    /// The step's kind, for coverage counts and scenario weights.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::CreateFs { .. } => "create",
            Step::ZplInit { .. } => "zpl-init",
            Step::Mkdir { .. } => "mkdir",
            Step::MkFile { .. } => "mkfile",
            Step::Symlink { .. } => "symlink",
            Step::Link { .. } => "link",
            Step::Xattr { .. } => "xattr",
            Step::Unlink { .. } => "unlink",
            Step::Rmdir { .. } => "rmdir",
            Step::Alloc { object: None, .. } => "alloc",
            Step::Alloc {
                object: Some(_), ..
            } => "claim",
            Step::Reclaim { .. } => "reclaim",
            Step::Write { .. } => "write",
            Step::Punch { .. } => "punch",
            Step::Truncate { .. } => "truncate",
            Step::FreeObject { .. } => "free",
            Step::Bonus { .. } => "bonus",
            Step::Spill { .. } => "spill",
            Step::Props { .. } => "props",
            Step::Snapshot { .. } => "snapshot",
            Step::Clone { .. } => "clone",
            Step::SetProp { .. } => "set",
            Step::Send {
                replicate: true, ..
            } => "send-replicate",
            Step::Send {
                intermediate: true, ..
            } => "send-intermediate",
            Step::Send {
                from,
                origin,
                dedup,
                force,
                ..
            } => match (from, origin, dedup, force) {
                (_, _, true, _) => "send-dedup",
                (_, _, _, true) => "recv-force",
                (Some(_), Some(_), _, _) => "send-clone",
                (Some(_), None, _, _) => "send-incremental",
                (None, _, _, _) => "send-full",
            },
            Step::Rollback { .. } => "rollback",
            Step::Destroy { .. } => "destroy",
            Step::Wait { .. } => "wait",
            Step::Crash { .. } => "crash",
            Step::Scrub { .. } => "scrub",
            Step::Misuse(_) => "misuse",
            Step::Race(_) => "race",
        }
    }

    /// Every step kind, in a fixed order.
    pub const KINDS: [&'static str; 36] = [
        "create",
        "alloc",
        "claim",
        "reclaim",
        "write",
        "punch",
        "truncate",
        "free",
        "bonus",
        "spill",
        "props",
        "snapshot",
        "clone",
        "send-full",
        "send-incremental",
        "send-clone",
        "send-dedup",
        "rollback",
        "destroy",
        "wait",
        "crash",
        "recv-force",
        "send-intermediate",
        "zpl-init",
        "mkdir",
        "mkfile",
        "symlink",
        "link",
        "xattr",
        "unlink",
        "rmdir",
        "misuse",
        "race",
        "send-replicate",
        "set",
        "scrub",
    ];

    /// The dataset a step on one filesystem names (empty for others).
    pub fn pool_dataset(&self) -> &str {
        match self {
            Step::CreateFs { fs }
            | Step::ZplInit { fs }
            | Step::Mkdir { fs, .. }
            | Step::MkFile { fs, .. }
            | Step::Symlink { fs, .. }
            | Step::Link { fs, .. }
            | Step::Xattr { fs, .. }
            | Step::Unlink { fs, .. }
            | Step::Rmdir { fs, .. } => fs,
            _ => "",
        }
    }

    /// The pool the step acts on first.
    pub fn pool(&self) -> &str {
        let name = match self {
            Step::CreateFs { fs }
            | Step::ZplInit { fs }
            | Step::Mkdir { fs, .. }
            | Step::MkFile { fs, .. }
            | Step::Symlink { fs, .. }
            | Step::Link { fs, .. }
            | Step::Xattr { fs, .. }
            | Step::Unlink { fs, .. }
            | Step::Rmdir { fs, .. }
            | Step::Alloc { fs, .. }
            | Step::Reclaim { fs, .. }
            | Step::Write { fs, .. }
            | Step::Punch { fs, .. }
            | Step::Truncate { fs, .. }
            | Step::FreeObject { fs, .. }
            | Step::Bonus { fs, .. }
            | Step::Spill { fs, .. }
            | Step::Props { fs, .. }
            | Step::Rollback { fs }
            | Step::SetProp { fs, .. } => fs,
            Step::Snapshot { snap, .. } | Step::Send { snap, .. } => snap,
            Step::Clone { origin, .. } => origin,
            Step::Destroy { name } => name,
            Step::Crash { pool } | Step::Scrub { pool } => pool,
            Step::Misuse(m) => m.target(),
            Step::Race(r) => return r.send.pool(),
            Step::Wait { .. } => "",
        };
        name.split(['/', '@']).next().unwrap_or("")
    }
}
