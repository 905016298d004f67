//! Misuse: steps that ask for something ZFS refuses, on purpose. A name
//! too long or malformed, creating what exists, destroying a filesystem
//! with snapshots or children or a snapshot with clones or holds, rolling
//! back past a later snapshot, claiming an allocated object number, shapes
//! and sizes out of range, an incremental send from a snapshot that is not
//! an earlier one, a replication send of a tree lacking the snapshot, a
//! receive the target must refuse. The model says which
//! errno ZFS refuses each with (`PoolModel::refusal`); the runner demands
//! exactly that errno and a pool left exactly as it was.

use engine::dmu::objset::DMU_OBJECT_END;
use engine::error::Error;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;

use super::Step;
use crate::model::{PoolModel, fill_bytes};

/// The tag of the user hold a `destroy-held` misuse takes and releases.
pub const HOLD_TAG: &str = "zsim-misuse";

/// Something the workload asks for knowing ZFS must refuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// An ordinary step in a state where ZFS refuses it (a send step: a
    /// receive the target refuses).
    Step(Box<Step>),
    /// `dmu_object_set_blocksize` of an object with blocks past its first.
    Blocksize { fs: String, object: u64, blksz: u32 },
    /// `dmu_set_bonus`: a bonus length beyond what the dnode's block
    /// pointers leave room for.
    Bonuslen { fs: String, object: u64, len: usize },
    /// `zfs hold`, `zfs destroy` of the held snapshot, `zfs release`.
    DestroyHeld { snap: String },
    /// `zfs hold` twice with one tag (then `zfs release`), or a hold of a
    /// filesystem.
    HoldTwice { name: String },
    /// `zfs release` of a tag never held.
    ReleaseUnheld { name: String },
    /// `zfs send` alone: only the sender's checks, the stream goes nowhere.
    SendOnly { snap: String, from: Option<String> },
    /// `zfs send -R` alone: a filesystem rather than a snapshot, or a tree
    /// with a filesystem that lacks the snapshot.
    SendReplicate { snap: String },
    /// `zfs send -nv`: only the size estimate (`dmu_send_estimate`), of a
    /// filesystem rather than a snapshot, or from a snapshot that is not
    /// an earlier one.
    Estimate { snap: String, from: Option<String> },
    /// `zfs destroy -d` of a filesystem: deferred destroy is for
    /// snapshots only.
    DestroyDeferred { name: String },
}

impl Misuse {
    /// The dataset name the misuse acts on first.
    pub fn target(&self) -> &str {
        match self {
            Misuse::Step(step) => step.pool(),
            Misuse::Blocksize { fs, .. } | Misuse::Bonuslen { fs, .. } => fs,
            Misuse::DestroyHeld { snap }
            | Misuse::SendOnly { snap, .. }
            | Misuse::SendReplicate { snap }
            | Misuse::Estimate { snap, .. } => snap,
            Misuse::HoldTwice { name }
            | Misuse::ReleaseUnheld { name }
            | Misuse::DestroyDeferred { name } => name,
        }
    }

    /// The errno ZFS refuses this with on a pool `model` describes
    /// ([`PoolModel::refusal`]).
    pub fn refusal_in(&self, model: &PoolModel) -> Option<engine::error::Errno> {
        model.refusal(self)
    }

    /// The receive a misuse sends into, which the runner carries out.
    pub fn receive(&self) -> Option<&Step> {
        match self {
            Misuse::Step(step) if matches!(**step, Step::Send { .. }) => Some(step),
            _ => None,
        }
    }

    /// Asks the engine for what the misuse asks, touching no model: the
    /// engine's refusal, or what it did instead.
    ///
    /// # Panics
    ///
    /// On a receive misuse, which the runner carries out.
    pub fn attempt(&self, pool: &mut Pool) -> Result<String, Error> {
        match self {
            Misuse::Step(step) => attempt_step(step, pool),
            Misuse::Blocksize { fs, object, blksz } => {
                let id = pool.lookup(fs)?;
                pool.dmu(id)?.set_blocksize(*object, *blksz)?;
                Ok(format!("object {object} now has {blksz}-byte blocks"))
            }
            Misuse::Bonuslen { fs, object, len } => {
                let id = pool.lookup(fs)?;
                pool.dmu(id)?.set_bonuslen(*object, *len)?;
                Ok(format!("object {object} now has a {len}-byte bonus"))
            }
            Misuse::DestroyHeld { snap } => {
                pool.hold(snap, HOLD_TAG)?;
                let destroyed = pool.destroy(snap);
                let released = pool.release(snap, HOLD_TAG);
                match destroyed {
                    Ok(()) => Ok("the held snapshot was destroyed".to_string()),
                    Err(e) => released.map(|()| String::new()).and(Err(e)),
                }
            }
            Misuse::SendOnly { snap, from } => {
                let summary = pool.send(
                    snap,
                    from.as_deref(),
                    &mut std::io::sink(),
                    &SendOptions::default(),
                    None,
                    &mut NoInterrupt,
                )?;
                Ok(format!("sent {} bytes", summary.bytes))
            }
            Misuse::HoldTwice { name } => {
                pool.hold(name, HOLD_TAG)?;
                let again = pool.hold(name, HOLD_TAG);
                let released = pool.release(name, HOLD_TAG);
                match again {
                    Ok(()) => released.map(|()| "held twice".to_string()),
                    Err(e) => released.and(Err(e)),
                }
            }
            Misuse::ReleaseUnheld { name } => {
                pool.release(name, HOLD_TAG)?;
                Ok("released".to_string())
            }
            Misuse::SendReplicate { snap } => {
                pool.send_replication(snap, None, &mut std::io::sink(), &SendOptions::default())?;
                Ok("sent".to_string())
            }
            Misuse::Estimate { snap, from } => {
                let bytes = pool.send_estimate(snap, from.as_deref())?;
                Ok(format!("estimated {bytes} bytes"))
            }
            Misuse::DestroyDeferred { name } => {
                pool.destroy_deferred(name)?;
                Ok("destroyed or marked for destroy".to_string())
            }
        }
    }
}

/// The engine call of an ordinary step, without the model's side.
fn attempt_step(step: &Step, pool: &mut Pool) -> Result<String, Error> {
    let done = |_| Ok(String::new());
    match step {
        Step::CreateFs { fs } => pool.create_fs(fs).and_then(done),
        Step::Snapshot {
            snap,
            recursive: false,
        } => pool.snapshot(snap).and_then(done),
        Step::Snapshot {
            snap,
            recursive: true,
        } => pool.snapshot_recursive(snap).map(|_| String::new()),
        Step::Clone { origin, fs } => pool.clone_fs(origin, fs).and_then(done),
        Step::Rollback { fs } => pool.rollback(fs).map(|()| String::new()),
        Step::SetProp { fs, prop, value } => pool.set_prop(fs, prop, value).map(|()| String::new()),
        Step::Destroy { name } => pool.destroy(name).map(|()| String::new()),
        Step::Alloc { fs, object, shape } => {
            let id = pool.lookup(fs)?;
            let mut dmu = pool.dmu(id)?;
            let s = shape;
            let n = match object {
                Some(o) => dmu
                    .object_claim(*o, s.dn_type, s.blksz, s.bonustype, s.bonuslen)
                    .map(|()| *o)?,
                None => dmu.object_alloc(s.dn_type, s.blksz, s.bonustype, s.bonuslen)?,
            };
            Ok(format!("object {n}"))
        }
        Step::Reclaim { fs, object, shape } => {
            let id = pool.lookup(fs)?;
            let s = shape;
            pool.dmu(id)?
                .object_reclaim(*object, s.dn_type, s.blksz, s.bonustype, s.bonuslen)?;
            Ok(String::new())
        }
        Step::Write {
            fs,
            object,
            offset,
            len,
            fill,
        } => {
            let id = pool.lookup(fs)?;
            let data = fill_bytes(*fill, *len as usize);
            pool.dmu(id)?.write(*object, *offset, &data)?;
            Ok(String::new())
        }
        Step::Punch {
            fs,
            object,
            offset,
            len,
        } => {
            let id = pool.lookup(fs)?;
            pool.dmu(id)?.free_range(*object, *offset, *len)?;
            Ok(String::new())
        }
        Step::Truncate { fs, object, offset } => {
            let id = pool.lookup(fs)?;
            pool.dmu(id)?.free_range(*object, *offset, DMU_OBJECT_END)?;
            Ok(String::new())
        }
        Step::FreeObject { fs, object } => {
            let id = pool.lookup(fs)?;
            pool.dmu(id)?.object_free(*object)?;
            Ok(String::new())
        }
        Step::Bonus { fs, object, fill } => {
            let id = pool.lookup(fs)?;
            pool.dmu(id)?.set_bonus(*object, &fill_bytes(*fill, 8))?;
            Ok(String::new())
        }
        Step::Spill {
            fs,
            object,
            len,
            fill,
        } => {
            let id = pool.lookup(fs)?;
            let data = (*len > 0).then(|| fill_bytes(*fill, *len as usize));
            pool.dmu(id)?.set_spill(*object, data)?;
            Ok(String::new())
        }
        Step::Props { fs, object, .. } => {
            let id = pool.lookup(fs)?;
            pool.dmu(id)?.set_checksum(*object, 0)?;
            Ok(String::new())
        }
        Step::ZplInit { .. }
        | Step::Mkdir { .. }
        | Step::MkFile { .. }
        | Step::Symlink { .. }
        | Step::Link { .. }
        | Step::Xattr { .. }
        | Step::Unlink { .. }
        | Step::Rmdir { .. } => super::zpl::attempt(step, pool),
        Step::Send { .. } => unreachable!("a receive misuse is carried out by the runner"),
        Step::Wait { .. }
        | Step::Crash { .. }
        | Step::Scrub { .. }
        | Step::Misuse(_)
        | Step::Race(_) => Ok("not something ZFS can refuse".to_string()),
    }
}
