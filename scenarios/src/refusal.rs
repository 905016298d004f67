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
                if *blksz == o.shape.blksz || !valid_blksz(u64::from(*blksz)) {
                    return None;
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
            Step::Snapshot { snap } => {
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
                self.exists(snap).then_some(Errno::EEXIST)
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
            Step::Send { .. } | Step::Wait { .. } | Step::Crash { .. } | Step::Misuse(_) => None,
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
