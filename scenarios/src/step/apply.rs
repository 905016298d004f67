//! What a step does: whether it still applies to a pool's model, the engine
//! call it makes, and the change it makes to the model. The runner decides
//! which pool a step runs on and judges the outcome; send, wait and crash
//! steps involve the simulated world, so the runner carries those out itself.

use engine::dmu::objset::DMU_OBJECT_END;
use engine::error::{Errno, Error};
use engine::spa::Pool;
use engine::zpl::vnops;

use super::Step;
use super::zpl::{self, stamp};
use crate::model::{PoolModel, fill_bytes};

impl Step {
    /// Why the step no longer applies to `model`, the model of its pool, or
    /// `None` if it still does. The generator only makes steps that apply,
    /// but a replayed or shrunk list can hold steps that no longer do.
    pub fn skip_reason(&self, model: &PoolModel) -> Option<String> {
        let m = model;
        let fs_ok = |fs: &str| m.exists(fs) && !fs.contains('@') && fs.contains('/');
        let obj = |fs: &str, o: u64| m.object(fs, o);
        let missing = |what: &str| Some(format!("{what} does not exist"));
        if let Some(why) = self.zpl_skip_reason(m) {
            return Some(why);
        }
        match self {
            Step::CreateFs { fs } => m.exists(fs).then(|| format!("{fs} exists")),
            Step::ZplInit { fs } => match m.get(fs) {
                Some(d) if fs_ok(fs) && d.objects.is_empty() && d.zpl.is_none() => None,
                _ => Some(format!("{fs} is no empty filesystem")),
            },
            Step::Mkdir { .. }
            | Step::MkFile { .. }
            | Step::Symlink { .. }
            | Step::Link { .. }
            | Step::Xattr { .. }
            | Step::Unlink { .. }
            | Step::Rmdir { .. } => None,
            Step::Alloc { fs, object, .. } => {
                if !fs_ok(fs) {
                    return missing(fs);
                }
                object
                    .filter(|o| obj(fs, *o).is_some())
                    .map(|o| format!("object {o} exists"))
            }
            Step::Write {
                fs,
                object,
                offset,
                len,
                ..
            } => match obj(fs, *object) {
                Some(o) if fs_ok(fs) => {
                    let blksz = o.shape.blksz as u64;
                    // Steps shrunk away can leave a write meant for another
                    // shape: an object of one odd-sized block cannot grow.
                    (!blksz.is_power_of_two() && offset + len > blksz)
                        .then(|| format!("{fs} object {object} has one {blksz}-byte block"))
                }
                _ => Some(format!("{fs} object {object} does not exist")),
            },
            Step::Reclaim { fs, object, .. }
            | Step::Punch { fs, object, .. }
            | Step::Truncate { fs, object, .. }
            | Step::FreeObject { fs, object }
            | Step::Props { fs, object, .. } => (!fs_ok(fs) || obj(fs, *object).is_none())
                .then(|| format!("{fs} object {object} does not exist")),
            Step::Bonus { fs, object, .. } => match obj(fs, *object) {
                Some(o) if fs_ok(fs) && o.shape.bonuslen > 0 => None,
                _ => Some(format!("{fs} object {object} has no bonus")),
            },
            Step::Spill { fs, object, .. } => match obj(fs, *object) {
                Some(o) if fs_ok(fs) && o.spill_fits() => None,
                _ => Some(format!(
                    "{fs} object {object} has no room for a spill pointer"
                )),
            },
            Step::Snapshot { snap, recursive } => {
                let fs = snap.split('@').next().unwrap_or_default();
                // `-r` may start at the pool's root filesystem.
                let root = *recursive && m.exists(fs) && !fs.contains(['/', '@']);
                if !(fs_ok(fs) || root) {
                    return missing(fs);
                }
                m.snapshots_taken(snap, *recursive)
                    .into_iter()
                    .find(|s| m.exists(s))
                    .map(|s| format!("{s} exists"))
            }
            Step::Clone { origin, fs } => {
                if !m.exists(origin) {
                    missing(origin)
                } else {
                    m.exists(fs).then(|| format!("{fs} exists"))
                }
            }
            Step::SetProp { fs, .. } => (!fs_ok(fs)).then(|| format!("{fs} does not exist")),
            Step::Rollback { fs } => (!fs_ok(fs) || m.latest_snapshot(fs).is_none())
                .then(|| format!("{fs} has no snapshot")),
            Step::Destroy { name } => {
                if !m.exists(name) || !name.contains('/') {
                    return missing(name);
                }
                let leaf = if name.contains('@') {
                    m.clones_of(name).is_empty()
                } else {
                    m.snapshots_of(name).is_empty() && m.children_of(name).is_empty()
                };
                (!leaf).then(|| format!("{name} has dependents"))
            }
            Step::Send {
                snap,
                from,
                replicate,
                ..
            } => {
                if !m.exists(snap) {
                    return missing(snap);
                }
                // `zfs send -R` refuses a tree with a filesystem lacking
                // the snapshot (ENOENT), before it writes a byte.
                if *replicate
                    && let Some(s) = m
                        .snapshots_taken(snap, true)
                        .into_iter()
                        .find(|s| !m.exists(s))
                {
                    return missing(&s);
                }
                from.as_ref()
                    .filter(|f| !m.exists(f))
                    .and_then(|f| missing(f))
            }
            Step::Wait { .. } | Step::Crash { .. } | Step::Scrub { .. } => None,
            Step::Race(r) => r.send.skip_reason(model),
            Step::Misuse(m) => match m.receive() {
                Some(send) => send.skip_reason(model),
                None => m
                    .refusal_in(model)
                    .is_none()
                    .then(|| "ZFS would not refuse it now".to_string()),
            },
        }
    }

    /// Runs a step that transfers nothing on `pool`, then on `model` (the
    /// model of that pool): what to report, or the engine's error, in which
    /// case the model is left as it was.
    ///
    /// # Panics
    ///
    /// On a send, wait or crash step, which the runner carries out itself.
    pub fn apply(&self, pool: &mut Pool, model: &mut PoolModel) -> Result<String, Error> {
        match self {
            Step::CreateFs { .. }
            | Step::Snapshot { .. }
            | Step::Clone { .. }
            | Step::Rollback { .. }
            | Step::SetProp { .. }
            | Step::Destroy { .. } => self.apply_dsl(pool, model),
            Step::Alloc { .. } | Step::Reclaim { .. } | Step::FreeObject { .. } => {
                self.apply_object(pool, model)
            }
            Step::ZplInit { fs } => zpl::create_fs(pool, model, fs),
            Step::Mkdir { .. }
            | Step::MkFile { .. }
            | Step::Symlink { .. }
            | Step::Link { .. }
            | Step::Xattr { .. }
            | Step::Unlink { .. }
            | Step::Rmdir { .. } => self.apply_zpl(pool, model),
            Step::Write { .. }
            | Step::Punch { .. }
            | Step::Truncate { .. }
            | Step::Bonus { .. }
            | Step::Spill { .. }
            | Step::Props { .. } => self.apply_contents(pool, model),
            Step::Send { .. }
            | Step::Wait { .. }
            | Step::Crash { .. }
            | Step::Scrub { .. }
            | Step::Misuse(_)
            | Step::Race(_) => {
                unreachable!("handled by the workload task")
            }
        }
    }

    /// Steps that make, remake or free an object: `dmu_object_alloc`,
    /// `dmu_object_claim`, `dmu_object_reclaim`, `dmu_object_free`.
    fn apply_object(&self, pool: &mut Pool, model: &mut PoolModel) -> Result<String, Error> {
        match self {
            Step::Alloc { fs, object, shape } => {
                let id = pool.lookup(fs)?;
                let mut dmu = pool.dmu(id)?;
                let s = shape;
                let n = match object {
                    Some(o) => {
                        dmu.object_claim(*o, s.dn_type, s.blksz, s.bonustype, s.bonuslen)?;
                        *o
                    }
                    None => dmu.object_alloc(s.dn_type, s.blksz, s.bonustype, s.bonuslen)?,
                };
                if model.object(fs, n).is_some() {
                    return Err(Error::new(
                        Errno::EEXIST,
                        format!("the engine allocated object {n}, which the model holds"),
                    ));
                }
                model.alloc(fs, n, *shape);
                Ok(format!("object {n}"))
            }
            Step::Reclaim { fs, object, shape } => {
                let id = pool.lookup(fs)?;
                let s = shape;
                pool.dmu(id)?.object_reclaim(
                    *object,
                    s.dn_type,
                    s.blksz,
                    s.bonustype,
                    s.bonuslen,
                )?;
                model.reclaim(fs, *object, *shape);
                Ok(String::new())
            }
            Step::FreeObject { fs, object } => {
                let id = pool.lookup(fs)?;
                pool.dmu(id)?.object_free(*object)?;
                model.objects_mut(fs).remove(object);
                Ok(String::new())
            }
            _ => unreachable!("not an object step: {self}"),
        }
    }

    /// Steps that change what an existing object holds: its blocks, bonus,
    /// spill block, checksum and compression.
    fn apply_contents(&self, pool: &mut Pool, model: &mut PoolModel) -> Result<String, Error> {
        match self {
            Step::Write {
                fs,
                object,
                offset,
                len,
                fill,
            } => {
                let id = pool.lookup(fs)?;
                let data = fill_bytes(*fill, *len as usize);
                if model.zpl_file(fs, *object) {
                    let stamp = stamp(pool);
                    vnops::write(&mut pool.dmu(id)?, stamp, *object, *offset, &data)?;
                    zpl::file_size(model, fs, *object, |size| size.max(offset + len));
                } else {
                    pool.dmu(id)?.write(*object, *offset, &data)?;
                }
                let o = model.objects_mut(fs).get_mut(object).expect("checked");
                o.write(*offset, &data);
                zpl::refresh_bonus(pool, model, fs, *object)?;
                Ok(String::new())
            }
            Step::Punch {
                fs,
                object,
                offset,
                len,
            } => {
                let id = pool.lookup(fs)?;
                if model.zpl_file(fs, *object) {
                    let stamp = stamp(pool);
                    vnops::free(&mut pool.dmu(id)?, stamp, *object, *offset, *len)?;
                } else {
                    pool.dmu(id)?.free_range(*object, *offset, *len)?;
                }
                let o = model.objects_mut(fs).get_mut(object).expect("checked");
                o.free_range(*offset, offset + len);
                zpl::refresh_bonus(pool, model, fs, *object)?;
                Ok(String::new())
            }
            Step::Truncate { fs, object, offset } => {
                let id = pool.lookup(fs)?;
                if model.zpl_file(fs, *object) {
                    let stamp = stamp(pool);
                    vnops::truncate(&mut pool.dmu(id)?, stamp, *object, *offset)?;
                    zpl::file_size(model, fs, *object, |_| *offset);
                } else {
                    pool.dmu(id)?.free_range(*object, *offset, DMU_OBJECT_END)?;
                }
                let o = model.objects_mut(fs).get_mut(object).expect("checked");
                o.free_range(*offset, u64::MAX);
                zpl::refresh_bonus(pool, model, fs, *object)?;
                Ok(String::new())
            }
            Step::Bonus { fs, object, fill } => {
                let id = pool.lookup(fs)?;
                let len = model.object(fs, *object).expect("checked").shape.bonuslen;
                let data = fill_bytes(*fill, len);
                pool.dmu(id)?.set_bonus(*object, &data)?;
                model
                    .objects_mut(fs)
                    .get_mut(object)
                    .expect("checked")
                    .bonus = data;
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
                pool.dmu(id)?.set_spill(*object, data.clone())?;
                model
                    .objects_mut(fs)
                    .get_mut(object)
                    .expect("checked")
                    .spill = data.map(Into::into);
                Ok(String::new())
            }
            Step::Props {
                fs,
                object,
                checksum,
                compress,
            } => {
                let id = pool.lookup(fs)?;
                let mut dmu = pool.dmu(id)?;
                dmu.set_checksum(*object, *checksum)?;
                dmu.set_compress(*object, *compress)?;
                let o = model.objects_mut(fs).get_mut(object).expect("checked");
                o.checksum = *checksum;
                o.compress = *compress;
                Ok(String::new())
            }
            _ => unreachable!("not an object contents step: {self}"),
        }
    }

    /// DSL steps: datasets and snapshots. Each one syncs a txg, which is
    /// why [`Step::post_model`] exists for them.
    fn apply_dsl(&self, pool: &mut Pool, model: &mut PoolModel) -> Result<String, Error> {
        match self {
            Step::CreateFs { fs } => {
                pool.create_fs(fs)?;
                model.create(fs);
                Ok(String::new())
            }
            Step::Snapshot {
                snap,
                recursive: false,
            } => {
                let id = pool.snapshot(snap)?;
                let info = pool.info(id);
                model.snapshot(snap, info.guid, info.creation_time);
                Ok(format!("guid {:#x}", info.guid))
            }
            Step::Snapshot {
                snap,
                recursive: true,
            } => {
                let ids = pool.snapshot_recursive(snap)?;
                for &id in &ids {
                    let info = pool.info(id);
                    model.snapshot(&info.name, info.guid, info.creation_time);
                }
                Ok(format!("{} snapshots", ids.len()))
            }
            Step::Clone { origin, fs } => {
                pool.clone_fs(origin, fs)?;
                model.clone_fs(origin, fs);
                Ok(String::new())
            }
            Step::Rollback { fs } => {
                pool.rollback(fs)?;
                model.rollback(fs);
                Ok(String::new())
            }
            Step::SetProp { fs, prop, value } => {
                pool.set_prop(fs, prop, value)?;
                model.set_prop(fs, prop, value);
                Ok(String::new())
            }
            Step::Destroy { name } => {
                pool.destroy(name)?;
                model.destroy(name);
                Ok(String::new())
            }
            _ => unreachable!("not a DSL step: {self}"),
        }
    }

    /// What `model` would be had this DSL step completed, for a step that
    /// failed on a fault: its sync may have become durable first. A
    /// snapshot's guid and creation time are unknown (0) until an import
    /// shows them. `None` for any other step.
    pub fn post_model(&self, model: &PoolModel) -> Option<PoolModel> {
        let mut post = model.clone();
        match self {
            Step::CreateFs { fs } => post.create(fs),
            Step::Snapshot { snap, recursive } => {
                for s in post.snapshots_taken(snap, *recursive) {
                    post.snapshot(&s, 0, 0);
                }
            }
            Step::Clone { origin, fs } => post.clone_fs(origin, fs),
            Step::Rollback { fs } => post.rollback(fs),
            Step::SetProp { fs, prop, value } => post.set_prop(fs, prop, value),
            Step::Destroy { name } => post.destroy(name),
            _ => return None,
        }
        Some(post)
    }
}

#[cfg(test)]
mod tests {
    use engine::context::{ManualClock, SplitMix64};
    use engine::vdev::MemDevice;

    use super::*;
    use crate::oracle::compare_pool;

    fn new_pool() -> Pool {
        Pool::create(
            Box::new(MemDevice::new(64 << 20, 512)),
            "p",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap()
    }

    fn steps(lines: &[&str]) -> Vec<Step> {
        lines.iter().map(|l| l.parse().unwrap()).collect()
    }

    #[test]
    fn applied_steps_leave_pool_and_model_alike() {
        let mut pool = new_pool();
        let mut model = PoolModel::new("p");
        for step in steps(&[
            "create p/a",
            "alloc p/a type=19 blksz=4096 bonustype=44 bonuslen=64",
            "claim p/a obj=9 type=19 blksz=512 bonustype=0 bonuslen=0",
            "write p/a obj=9 off=100 len=2000 fill=8",
            "snapshot p/a@s1",
            "punch p/a obj=9 off=512 len=512",
            "truncate p/a obj=9 off=1500",
            "bonus p/a obj=1 fill=3",
            "spill p/a obj=1 len=512 fill=2",
            "props p/a obj=9 checksum=7 compress=3",
            "reclaim p/a obj=9 type=26 blksz=1024 bonustype=0 bonuslen=0",
            "clone p/a@s1 p/c",
            "free p/c obj=1",
            "snapshot p/a@s2",
            "destroy p/a@s2",
            "rollback p/a",
            "create p/z",
            "zpl-init p/z",
            "mkdir p/z path=d mode=755",
            "mkfile p/z path=d/f mode=644 blksz=4096",
            "write p/z obj=6 off=5000 len=9000 fill=4",
            "mkdir p/z path=e mode=755",
            "mkfile p/z path=e/many-files-in-one-directory-with-long-names-to-fill-leaves mode=600 blksz=512 count=150",
            "symlink p/z path=l target=d/f",
            "link p/z path=h to=d/f",
            "xattr p/z path=d/f name=user.a len=100 fill=3",
            "xattr p/z path=d name=user.b len=3000 fill=2",
            "snapshot p/z@s1",
            "truncate p/z obj=6 off=10",
            "punch p/z obj=6 off=0 len=5",
            "xattr p/z path=h name=user.a len=7 fill=5",
            "unlink p/z path=d/f",
            "xattr p/z path=h name=user.a len=0 fill=0",
            "unlink p/z path=h",
            "rmdir p/z path=d",
            "rollback p/z",
            "set p/z prop=org.zsim:a value=v1",
            "set p/c prop=org.zsim:a value=v2",
            "set p/z prop=org.zsim:a value=v3",
            "snapshot -r p@r",
        ]) {
            assert_eq!(step.skip_reason(&model), None, "{step}");
            let detail = step.apply(&mut pool, &mut model).unwrap();
            match step.kind() {
                "alloc" => assert_eq!(detail, "object 1"),
                "claim" => assert_eq!(detail, "object 9"),
                "snapshot" if step.to_string().contains(" -r ") => {
                    assert_eq!(detail, "4 snapshots");
                }
                "snapshot" => assert!(detail.starts_with("guid 0x"), "{detail}"),
                "zpl-init" => assert_eq!(detail, "root 3"),
                "mkdir" | "symlink" | "link" | "unlink" | "rmdir" => {
                    assert!(detail.starts_with("object "), "{detail}");
                }
                "xattr" | "mkfile" => {}
                _ => assert_eq!(detail, "", "{step}"),
            }
            compare_pool(&mut pool, &model).unwrap_or_else(|m| panic!("after {step}: {m}"));
        }
        // `snapshot -r` of the root took every filesystem's.
        for fs in ["p", "p/a", "p/c", "p/z"] {
            assert!(pool.lookup(&format!("{fs}@r")).is_ok(), "{fs}@r");
        }
        // The oracle compares user properties, value and source.
        let mut other = model.clone();
        other.set_prop("p/z", "org.zsim:a", "v1");
        let m = compare_pool(&mut pool, &other).unwrap_err();
        assert!(m.to_string().contains("user properties"), "{m}");
        let mut other = model.clone();
        let recvd = [("org.zsim:a".to_string(), "v3".to_string())].into();
        other.datasets.get_mut("p/z").unwrap().props.clear();
        other.set_received("p/z", &recvd);
        let m = compare_pool(&mut pool, &other).unwrap_err();
        assert!(m.to_string().contains("received"), "{m}");
    }

    #[test]
    fn steps_that_no_longer_apply_say_why() {
        let mut model = PoolModel::new("p");
        model.create("p/a");
        model.snapshot("p/a@s1", 1, 0);
        model.clone_fs("p/a@s1", "p/c");
        let why = |line: &str| line.parse::<Step>().unwrap().skip_reason(&model);
        assert_eq!(why("create p/a").as_deref(), Some("p/a exists"));
        assert_eq!(
            why("write p/a obj=3 off=0 len=1 fill=0").as_deref(),
            Some("p/a object 3 does not exist")
        );
        assert_eq!(
            why("snapshot p/b@s1").as_deref(),
            Some("p/b does not exist")
        );
        assert_eq!(
            why("destroy p/a@s1").as_deref(),
            Some("p/a@s1 has dependents")
        );
        assert_eq!(why("rollback p/c").as_deref(), Some("p/c has no snapshot"));
        assert_eq!(why("wait ms=10"), None);
    }

    #[test]
    fn a_failed_step_leaves_the_model_as_it_was() {
        let mut pool = new_pool();
        let mut model = PoolModel::new("p");
        for step in steps(&[
            "create p/a",
            "claim p/a obj=4 type=19 blksz=512 bonustype=0 bonuslen=0",
        ]) {
            step.apply(&mut pool, &mut model).unwrap();
        }
        let before = model.clone();
        let again = &steps(&["claim p/a obj=4 type=19 blksz=512 bonustype=0 bonuslen=0"])[0];
        assert!(again.apply(&mut pool, &mut model).is_err());
        assert_eq!(model, before);
    }

    #[test]
    fn only_dsl_steps_have_a_post_model() {
        let mut model = PoolModel::new("p");
        model.create("p/a");
        let snap = &steps(&["snapshot p/a@s1"])[0];
        let post = snap.post_model(&model).unwrap();
        assert_eq!(post.get("p/a@s1").map(|d| d.guid), Some(0));
        let free = &steps(&["free p/a obj=1"])[0];
        assert_eq!(free.post_model(&model), None);
    }
}
