//! What ZFS refuses, and with which errno: the model's side of a misuse
//! step. The rules are ZFS's check functions, in their order:
//! `dmu_objset_create_check` and `dmu_objset_clone_check` (the new name,
//! then the origin), `dsl_dataset_snapshot_check`, the destroy checks
//! (`dsl_destroy_head_check_impl`, `dsl_destroy_snapshot_check_impl`),
//! `dsl_dataset_rollback_check`, `dmu_object_claim` / `dnode_hold_impl`,
//! `dmu_set_bonus`, `dnode_set_blksz`, `dmu_send` and `dmu_send_impl`.
//!
//! Where ZFS only asserts (a data block size or an object type out of
//! range, a write past a single odd-sized block or past 2^64) the engine
//! refuses, as the seed's `restore_object` does for a stream, and the model
//! follows the engine: EINVAL, or ENOTSUP for the odd-sized block as
//! `dnode_set_blksz` says for a block size that can no longer change.

use engine::dmu::dnode::{DN_MAX_OBJECT, valid_blksz};
use engine::dmu::object_type;
use engine::dsl::{MAXNAMELEN, split_snapshot_name, valid_component};
use engine::error::Errno;

use crate::model::{DN_MAX_BONUSLEN, PoolModel};
use crate::step::{Misuse, Shape, Step};

impl PoolModel {
    /// The errno ZFS refuses `misuse` with on a pool in this state, or
    /// `None` if it would not refuse it (or the model cannot tell). A
    /// receive misuse is the target's to judge (`expect_receive`): `None`.
    pub fn refusal(&self, misuse: &Misuse) -> Option<Errno> {
        match misuse {
            Misuse::Step(step) => self.step_refusal(step),
            Misuse::Blocksize { fs, object, blksz } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                let Some(o) = self.object(fs, *object) else {
                    return Some(Errno::ENOENT);
                };
                if *blksz == o.shape.blksz {
                    return None;
                }
                if !valid_blksz(u64::from(*blksz)) {
                    return Some(Errno::EINVAL);
                }
                // `dn_maxblkid != 0`: a block past the first holds data.
                // One that reads as zeros may be a hole with no trace.
                let beyond_first = o
                    .blocks
                    .iter()
                    .any(|(id, b)| *id > 0 && b.iter().any(|&x| x != 0));
                beyond_first.then_some(Errno::ENOTSUP)
            }
            Misuse::Bonuslen { fs, object, len } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                let o = self.object(fs, *object)?;
                let room = DN_MAX_BONUSLEN - (usize::from(o.nblkptr()) - 1) * 128;
                (*len > room).then_some(Errno::EINVAL)
            }
            // `dsl_dataset_user_hold_check`: a snapshot, not held with the
            // tag already; `dsl_dataset_user_release_check`: held with it.
            Misuse::HoldTwice { name } => Some(if !self.exists(name) {
                Errno::ENOENT
            } else if !name.contains('@') {
                Errno::EINVAL
            } else {
                Errno::EEXIST
            }),
            Misuse::ReleaseUnheld { name } => Some(if self.exists(name) {
                Errno::ESRCH
            } else {
                Errno::ENOENT
            }),
            Misuse::DestroyHeld { snap } => {
                // The hold needs the snapshot; then its user reference
                // comes first among the destroy checks.
                (snap.contains('@') && self.exists(snap)).then_some(Errno::EBUSY)
            }
            Misuse::SendOnly { snap, from } => {
                if !snap.contains('@') || from.as_ref().is_some_and(|f| !f.contains('@')) {
                    return Some(Errno::EINVAL);
                }
                if !self.exists(snap) || from.as_ref().is_some_and(|f| !self.exists(f)) {
                    return Some(Errno::ENOENT);
                }
                match from {
                    Some(from) if !self.is_before(snap, from) => Some(Errno::EXDEV),
                    _ => None,
                }
            }
            // `dmu_send_estimate`: the snapshot is found first, then
            // checked to be one; then the source, which must come before.
            Misuse::Estimate { snap, from } => {
                if !self.exists(snap) || from.as_ref().is_some_and(|f| !self.exists(f)) {
                    return Some(Errno::ENOENT);
                }
                if !snap.contains('@') {
                    return Some(Errno::EINVAL);
                }
                match from {
                    Some(from) if !self.is_before(snap, from) => Some(Errno::EXDEV),
                    _ => None,
                }
            }
            // `dsl_destroy_snapshot_check` with defer: a snapshot, then
            // nothing else refused (holds and clones only defer it).
            Misuse::DestroyDeferred { name } => {
                if !self.exists(name) {
                    Some(Errno::ENOENT)
                } else if !name.contains('@') {
                    Some(Errno::EINVAL)
                } else {
                    None
                }
            }
            Misuse::SendReplicate { snap } => {
                if !snap.contains('@') {
                    return Some(Errno::EINVAL);
                }
                // The snapshot itself, then each filesystem below its own:
                // one missing is ENOENT, before a byte is written.
                self.snapshots_taken(snap, true)
                    .iter()
                    .chain([snap])
                    .any(|s| !self.exists(s))
                    .then_some(Errno::ENOENT)
            }
        }
    }

    /// `dsl_dataset_is_before`: `earlier` is a snapshot that `later`
    /// descends from, in its filesystem or through clone origins.
    pub fn is_before(&self, later: &str, earlier: &str) -> bool {
        let (Some(l), Some(e)) = (self.get(later), self.get(earlier)) else {
            return false;
        };
        if e.seq >= l.seq {
            return false;
        }
        let fs = |name: &str| name.split('@').next().unwrap_or_default().to_string();
        let lfs = fs(later);
        if lfs == fs(earlier) {
            return true;
        }
        match self.get(&lfs).and_then(|d| d.origin.clone()) {
            None => false,
            Some(origin) if origin == earlier => true,
            Some(origin) => self.is_before(&origin, earlier),
        }
    }

    /// Why an object step may not change `fs` at all: it does not exist
    /// (ENOENT), or it is a snapshot (EROFS).
    fn writable_fs(&self, fs: &str) -> Option<Errno> {
        if !self.exists(fs) {
            Some(Errno::ENOENT)
        } else if fs.contains('@') {
            Some(Errno::EROFS)
        } else {
            None
        }
    }

    /// The checks a new filesystem's (or clone's) name must pass.
    fn new_name_refusal(&self, name: &str) -> Option<Errno> {
        if name.len() >= MAXNAMELEN {
            return Some(Errno::ENAMETOOLONG);
        }
        let Some((parent, last)) = name.rsplit_once('/') else {
            // The pool's root filesystem exists.
            return Some(Errno::EEXIST);
        };
        if !valid_component(last) {
            return Some(Errno::EINVAL);
        }
        if !self.exists(parent) || parent.contains('@') {
            return Some(Errno::ENOENT);
        }
        self.exists(name).then_some(Errno::EEXIST)
    }

    fn step_refusal(&self, step: &Step) -> Option<Errno> {
        match step {
            Step::CreateFs { fs } => self.new_name_refusal(fs),
            Step::Snapshot { snap, recursive } => {
                let Some((fs, name)) = split_snapshot_name(snap) else {
                    return Some(Errno::EINVAL);
                };
                if snap.len() >= MAXNAMELEN {
                    return Some(Errno::ENAMETOOLONG);
                }
                if !valid_component(name) {
                    return Some(Errno::EINVAL);
                }
                if !self.exists(fs) || fs.contains('@') {
                    return Some(Errno::ENOENT);
                }
                let taken = self.snapshots_taken(snap, *recursive);
                if taken.iter().any(|s| s.len() >= MAXNAMELEN) {
                    return Some(Errno::ENAMETOOLONG);
                }
                taken
                    .iter()
                    .any(|s| self.exists(s))
                    .then_some(Errno::EEXIST)
            }
            Step::Clone { origin, fs } => {
                if let Some(e) = self.new_name_refusal(fs) {
                    return Some(e);
                }
                if !self.exists(origin) {
                    return Some(Errno::ENOENT);
                }
                // Only a snapshot can be cloned.
                (!origin.contains('@')).then_some(Errno::EINVAL)
            }
            Step::Destroy { name } => {
                if !self.exists(name) {
                    return Some(Errno::ENOENT);
                }
                if name.contains('@') {
                    return (!self.clones_of(name).is_empty()).then_some(Errno::EEXIST);
                }
                if !name.contains('/') {
                    return Some(Errno::EINVAL);
                }
                if !self.snapshots_of(name).is_empty() {
                    return Some(Errno::EBUSY);
                }
                (!self.children_of(name).is_empty()).then_some(Errno::EEXIST)
            }
            Step::SetProp { fs, prop, value } => {
                if !self.exists(fs) || fs.contains('@') {
                    return Some(Errno::ENOENT);
                }
                prop_refusal(prop, value)
            }
            Step::Rollback { fs: name } => {
                let fs = name.split('@').next().unwrap_or_default();
                if !self.exists(fs) || !self.exists(name) {
                    return Some(Errno::ENOENT);
                }
                let Some((latest, _)) = self.latest_snapshot(fs) else {
                    // A clone with no snapshot of its own: ZFS rolls it
                    // back to its origin, which the engine does not.
                    return self.get(fs)?.origin.is_none().then_some(Errno::ESRCH);
                };
                (name.contains('@') && name != latest).then_some(Errno::EEXIST)
            }
            Step::Alloc { fs, object, shape } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                match object {
                    // `dmu_object_claim` of the meta-dnode.
                    Some(0) => Some(Errno::EBADF),
                    Some(o) if *o >= DN_MAX_OBJECT => Some(Errno::EINVAL),
                    _ if shape_refusal(shape).is_some() => shape_refusal(shape),
                    Some(o) => self.object(fs, *o).map(|_| Errno::EEXIST),
                    None => None,
                }
            }
            Step::Reclaim { fs, object, shape } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                if *object == 0 {
                    return Some(Errno::EBADF);
                }
                if let Some(e) = shape_refusal(shape) {
                    return Some(e);
                }
                self.object(fs, *object).is_none().then_some(Errno::ENOENT)
            }
            Step::Write {
                fs,
                object,
                offset,
                len,
                ..
            } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                let Some(end) = offset.checked_add(*len) else {
                    return Some(Errno::EINVAL);
                };
                let Some(o) = self.object(fs, *object) else {
                    return Some(Errno::ENOENT);
                };
                let blksz = u64::from(o.shape.blksz);
                (!blksz.is_power_of_two() && end > blksz).then_some(Errno::ENOTSUP)
            }
            Step::Spill {
                fs, object, len, ..
            } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                let Some(o) = self.object(fs, *object) else {
                    return Some(Errno::ENOENT);
                };
                let bad = *len > 0 && (!valid_blksz(*len) || !o.spill_fits());
                bad.then_some(Errno::EINVAL)
            }
            Step::Punch { fs, object, .. }
            | Step::Truncate { fs, object, .. }
            | Step::FreeObject { fs, object }
            | Step::Bonus { fs, object, .. }
            | Step::Props { fs, object, .. } => {
                if let Some(e) = self.writable_fs(fs) {
                    return Some(e);
                }
                self.object(fs, *object).is_none().then_some(Errno::ENOENT)
            }
            Step::ZplInit { .. }
            | Step::Mkdir { .. }
            | Step::MkFile { .. }
            | Step::Symlink { .. }
            | Step::Link { .. }
            | Step::Xattr { .. }
            | Step::Unlink { .. }
            | Step::Rmdir { .. } => self.zpl_refusal(step),
            Step::Send { .. }
            | Step::Wait { .. }
            | Step::Crash { .. }
            | Step::Scrub { .. }
            | Step::Misuse(_)
            | Step::Race(_) => None,
        }
    }
}

/// An object shape no object may have: EINVAL (the seed's `restore_object`
/// checks; ZFS's `dnode_allocate` asserts them).
fn shape_refusal(shape: &Shape) -> Option<Errno> {
    let bad = shape.dn_type == 0
        || !object_type::is_valid(u32::from(shape.dn_type))
        || !object_type::is_valid(u32::from(shape.bonustype))
        || !valid_blksz(u64::from(shape.blksz))
        || shape.bonuslen > DN_MAX_BONUSLEN;
    bad.then_some(Errno::EINVAL)
}

impl PoolModel {
    /// What ZFS refuses a ZPL step with: the filesystem must exist and
    /// hold the ZPL's skeleton (the master node is read first: EIO when
    /// it is not there), then `zfs_*`'s checks in the engine's order (the
    /// namespace's, see [`crate::model::tree::Tree::refusal`]), then a
    /// snapshot is read-only.
    fn zpl_refusal(&self, step: &Step) -> Option<Errno> {
        let fs = step.pool_dataset();
        if let Step::ZplInit { fs } = step {
            if let Some(e) = self.writable_fs(fs) {
                return Some(e);
            }
            // `zap_create_claim` of the master node's number.
            return self.object(fs, 1).map(|_| Errno::EEXIST);
        }
        if !self.exists(fs) {
            return Some(Errno::ENOENT);
        }
        let Some(tree) = self.tree(fs) else {
            return Some(Errno::EIO);
        };
        if let Some(e) = tree.refusal(step) {
            return Some(e);
        }
        fs.contains('@').then_some(Errno::EROFS)
    }
}

/// How `zfs set` refuses a value (`zfs_prop_set` and the property table of
/// this era): EINVAL for a value the property does not take or a property
/// that does not exist; ENOTSUP for a gzip compression, which zsim does not
/// write. A user property's value of 8 KiB or more is E2BIG.
fn prop_refusal(prop: &str, value: &str) -> Option<Errno> {
    let one_of = |allowed: &[&str]| (!allowed.contains(&value)).then_some(Errno::EINVAL);
    match prop {
        "recordsize" => {
            let ok = value
                .parse::<u64>()
                .is_ok_and(|n| n.is_power_of_two() && (512..=128 << 10).contains(&n));
            (!ok).then_some(Errno::EINVAL)
        }
        "checksum" => one_of(&["on", "off", "fletcher2", "fletcher4", "sha256"]),
        "compression" if value == "gzip" || value.starts_with("gzip-") => {
            let level = value.strip_prefix("gzip-").unwrap_or("6");
            Some(
                if matches!(level, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9") {
                    Errno::ENOTSUP
                } else {
                    Errno::EINVAL
                },
            )
        }
        "compression" => one_of(&["inherit", "on", "off", "lzjb", "empty", "zle"]),
        "dedup" => one_of(&["on", "off", "sha256"]),
        "copies" => one_of(&["1", "2", "3"]),
        "atime" => one_of(&["on", "off"]),
        "mountpoint" => {
            let ok = value == "none" || value == "legacy" || value.starts_with('/');
            (!ok).then_some(Errno::EINVAL)
        }
        _ if prop.contains(':') => (value.len() >= 8192).then_some(Errno::E2BIG),
        _ => Some(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use engine::context::{ManualClock, SplitMix64};
    use engine::spa::Pool;
    use engine::vdev::MemDevice;

    use super::*;
    use crate::oracle::compare_pool;

    fn steps(lines: &[&str]) -> Vec<Step> {
        lines.iter().map(|l| l.parse().unwrap()).collect()
    }

    /// Each misuse, in the text form, with the errno ZFS refuses it with:
    /// the model must predict exactly that errno, the engine must refuse
    /// with it, and the pool must be left as it was. The table is the
    /// specification of the refusal rules.
    #[test]
    fn every_misuse_is_refused_with_the_errno_zfs_gives() {
        let mut pool = Pool::create(
            Box::new(MemDevice::new(64 << 20, 512)),
            "p",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        let mut model = PoolModel::new("p");
        for step in steps(&[
            "create p/a",
            "create p/a/kid",
            "create p/lone",
            "claim p/a obj=3 type=19 blksz=1536 bonustype=0 bonuslen=0",
            "claim p/a obj=4 type=19 blksz=512 bonustype=0 bonuslen=0",
            "write p/a obj=4 off=0 len=2048 fill=8",
            "claim p/a obj=5 type=19 blksz=512 bonustype=0 bonuslen=320",
            "snapshot p/a@s1",
            "snapshot p/a@s2",
            "clone p/a@s1 p/c",
        ]) {
            step.apply(&mut pool, &mut model).unwrap();
        }
        let long = format!("p/a/{}", "n".repeat(260));
        let long_snap = format!("p/a@{}", "n".repeat(260));
        let table: Vec<(String, Errno)> = [
            (format!("create {long}"), Errno::ENAMETOOLONG),
            ("create p/a/b!d".into(), Errno::EINVAL),
            ("create p".into(), Errno::EEXIST),
            ("create p/a".into(), Errno::EEXIST),
            ("create p/none/x".into(), Errno::ENOENT),
            (format!("snapshot {long_snap}"), Errno::ENAMETOOLONG),
            ("snapshot p/a@b*d".into(), Errno::EINVAL),
            ("snapshot p/a@x@y".into(), Errno::EINVAL),
            ("snapshot p/none@s".into(), Errno::ENOENT),
            ("snapshot p/a@s2".into(), Errno::EEXIST),
            ("destroy p".into(), Errno::EINVAL),
            ("destroy p/none".into(), Errno::ENOENT),
            ("destroy p/a".into(), Errno::EBUSY),
            ("destroy p/a@s1".into(), Errno::EEXIST),
            ("destroy-held p/a@s2".into(), Errno::EBUSY),
            ("rollback p/lone".into(), Errno::ESRCH),
            ("rollback p/a@s1".into(), Errno::EEXIST),
            ("rollback p/a@gone".into(), Errno::ENOENT),
            ("clone p/a p/c2".into(), Errno::EINVAL),
            ("clone p/a@gone p/c2".into(), Errno::ENOENT),
            ("clone p/a@s1 p/c".into(), Errno::EEXIST),
            ("clone p/a@gone p/c".into(), Errno::EEXIST),
            (
                "claim p/a obj=4 type=19 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::EEXIST,
            ),
            (
                "claim p/a obj=0 type=19 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::EBADF,
            ),
            (
                "claim p/a obj=281474976710656 type=19 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::EINVAL,
            ),
            (
                "alloc p/a type=0 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::EINVAL,
            ),
            (
                "alloc p/a type=19 blksz=1000 bonustype=0 bonuslen=0".into(),
                Errno::EINVAL,
            ),
            (
                "alloc p/a type=19 blksz=512 bonustype=99 bonuslen=0".into(),
                Errno::EINVAL,
            ),
            (
                "alloc p/a type=19 blksz=512 bonustype=0 bonuslen=321".into(),
                Errno::EINVAL,
            ),
            (
                "alloc p/a@s1 type=19 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::EROFS,
            ),
            (
                "reclaim p/a obj=9 type=19 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::ENOENT,
            ),
            (
                "reclaim p/a obj=4 type=19 blksz=0 bonustype=0 bonuslen=0".into(),
                Errno::EINVAL,
            ),
            (
                "write p/a obj=3 off=1000 len=1000 fill=1".into(),
                Errno::ENOTSUP,
            ),
            (
                "write p/a obj=4 off=18446744073709551000 len=1000 fill=1".into(),
                Errno::EINVAL,
            ),
            ("write p/a obj=9 off=0 len=10 fill=1".into(), Errno::ENOENT),
            (
                "write p/a@s1 obj=4 off=0 len=10 fill=1".into(),
                Errno::EROFS,
            ),
            ("free p/a obj=9".into(), Errno::ENOENT),
            ("punch p/a obj=9 off=0 len=1".into(), Errno::ENOENT),
            ("spill p/a obj=4 len=100 fill=1".into(), Errno::EINVAL),
            ("spill p/a obj=5 len=512 fill=1".into(), Errno::EINVAL),
            ("blocksize p/a obj=4 blksz=4096".into(), Errno::ENOTSUP),
            ("bonuslen p/a obj=4 len=400".into(), Errno::EINVAL),
            ("bonuslen p/a obj=5 len=321".into(), Errno::EINVAL),
            ("send-only p/a".into(), Errno::EINVAL),
            ("send-only p/a@s2 from=p/a".into(), Errno::EINVAL),
            ("send-only p/a@gone".into(), Errno::ENOENT),
            ("send-only p/a@s1 from=p/a@s2".into(), Errno::EXDEV),
            ("send-only p/a@s1 from=p/a@s1".into(), Errno::EXDEV),
            ("send-estimate p/a".into(), Errno::EINVAL),
            ("send-estimate p/a@gone".into(), Errno::ENOENT),
            ("send-estimate p/a@s2 from=p/a@gone".into(), Errno::ENOENT),
            ("send-estimate p/a@s1 from=p/a@s2".into(), Errno::EXDEV),
            ("send-estimate p/a@s1 from=p/a@s1".into(), Errno::EXDEV),
            ("destroy-deferred p/a".into(), Errno::EINVAL),
            ("destroy-deferred p/none@s".into(), Errno::ENOENT),
            (
                "reclaim p/a obj=0 type=19 blksz=512 bonustype=0 bonuslen=0".into(),
                Errno::EBADF,
            ),
        ]
        .into_iter()
        .collect();
        for (line, errno) in table {
            let Step::Misuse(misuse) = format!("misuse {line}").parse::<Step>().unwrap() else {
                unreachable!("a misuse line");
            };
            assert_eq!(model.refusal(&misuse), Some(errno), "the model, on {line}");
            let found = misuse.attempt(&mut pool).map_err(|e| e.errno());
            assert_eq!(found, Err(errno), "the engine, on {line}");
            compare_pool(&mut pool, &model).unwrap_or_else(|m| panic!("after {line}: {m}"));
        }
        // What is not a misuse is not refused.
        for line in [
            "send-only p/a@s2 from=p/a@s1",
            "send-only p/a@s2",
            "rollback p/a@s2",
            "blocksize p/a obj=3 blksz=1536",
        ] {
            let Step::Misuse(misuse) = format!("misuse {line}").parse::<Step>().unwrap() else {
                unreachable!("a misuse line");
            };
            assert_eq!(model.refusal(&misuse), None, "{line}");
        }
    }
}
