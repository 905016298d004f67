//! What the ZPL steps do: whether they apply (the model's namespace says),
//! the engine's `zpl::vnops` call, and the model's change. The namespace is
//! the model's own; the objects are the engine's where only it can say what
//! they hold: every ZAP of the filesystem (directories, the master node,
//! the delete queue) is taken whole from the pool after a ZPL step, and
//! every znode's bonus too (it records times), while file, symlink and
//! attribute data is the model's, written as the step says.

use std::rc::Rc;

use engine::dsl::DatasetId;
use engine::error::{Errno, Error};
use engine::spa::Pool;
use engine::zpl::{self as ezpl, Stamp, ZNODE_PHYS_SIZE, ZfsTime, vnops};

use super::{Shape, Step};
use crate::model::tree::{Kind, Node, Tree, parent_of};
use crate::model::{DN_MAX_BONUSLEN, Object, PoolModel, fill_bytes};

/// `DMU_OT_PLAIN_FILE_CONTENTS` and `DMU_OT_ZNODE`.
const PLAIN_FILE: u8 = 19;
const ZNODE: u8 = 17;

/// The `i`th name of a batch of files (from 1): `path`, `path.2`, ...
pub fn batch_path(path: &str, i: u64) -> String {
    if i == 1 {
        path.to_string()
    } else {
        format!("{path}.{i}")
    }
}

/// Now, as the pool's clock and open txg say.
pub fn stamp(pool: &Pool) -> Stamp {
    Stamp {
        now: ZfsTime {
            secs: pool.now(),
            nsecs: 0,
        },
        txg: pool.open_txg(),
    }
}

fn file_shape(blksz: u32, bonuslen: usize) -> Shape {
    Shape {
        dn_type: PLAIN_FILE,
        blksz,
        bonustype: ZNODE,
        bonuslen,
    }
}

fn tree_mut<'m>(model: &'m mut PoolModel, fs: &str) -> &'m mut Tree {
    model
        .datasets
        .get_mut(fs)
        .and_then(|d| d.zpl.as_mut().map(Rc::make_mut))
        .expect("checked by skip_reason")
}

/// A ZPL file's size changes as `f` says.
pub fn file_size(model: &mut PoolModel, fs: &str, object: u64, f: impl FnOnce(u64) -> u64) {
    let node = tree_mut(model, fs)
        .nodes
        .get_mut(&object)
        .expect("a ZPL file");
    node.size = f(node.size);
}

/// An object as the pool holds it, whole.
fn copy_object(pool: &mut Pool, id: DatasetId, object: u64) -> Result<Object, Error> {
    let mut dmu = pool.dmu(id)?;
    let info = dmu.object_info(object)?;
    let mut o = Object::new(Shape {
        dn_type: info.dn_type,
        blksz: info.datablksz,
        bonustype: info.bonustype,
        bonuslen: info.bonuslen,
    });
    o.bonus = dmu.bonus(object)?;
    o.checksum = info.checksum;
    o.compress = info.compress;
    let bs = u64::from(info.datablksz);
    for blkid in dmu.blocks(object)? {
        let data = dmu.read(object, blkid * bs, bs)?;
        o.blocks.insert(blkid, data.into());
    }
    Ok(o)
}

/// After a change to a ZPL file's data: its znode, from the pool.
pub fn refresh_bonus(
    pool: &mut Pool,
    model: &mut PoolModel,
    fs: &str,
    object: u64,
) -> Result<(), Error> {
    if !model.zpl_file(fs, object) {
        return Ok(());
    }
    let id = pool.lookup(fs)?;
    let bonus = pool.dmu(id)?.bonus(object)?;
    model
        .objects_mut(fs)
        .get_mut(&object)
        .expect("a ZPL file")
        .bonus = bonus;
    Ok(())
}

/// After a ZPL step: every ZAP of the filesystem, whole, and every other
/// znode's bonus, from the pool.
fn refresh(pool: &mut Pool, model: &mut PoolModel, fs: &str) -> Result<(), Error> {
    let id = pool.lookup(fs)?;
    let tree = model.tree(fs).expect("a ZPL filesystem").clone();
    let mut zaps = Vec::new();
    for object in tree.zap_objects() {
        zaps.push((object, copy_object(pool, id, object)?));
    }
    let mut bonuses = Vec::new();
    for object in tree.leaf_znodes() {
        bonuses.push((object, pool.dmu(id)?.bonus(object)?));
    }
    let objects = model.objects_mut(fs);
    objects.extend(zaps);
    for (object, bonus) in bonuses {
        if let Some(o) = objects.get_mut(&object) {
            o.bonus = bonus;
        }
    }
    Ok(())
}

/// `zfs create`'s second half: the skeleton in the new filesystem.
pub fn create_fs(pool: &mut Pool, model: &mut PoolModel, fs: &str) -> Result<String, Error> {
    let id = pool.lookup(fs)?;
    let s = stamp(pool);
    let mn = ezpl::create_fs(&mut pool.dmu(id)?, s.now, s.txg)?;
    let tree = Tree::new(
        ezpl::MASTER_NODE_OBJ,
        mn.unlinked_set.unwrap_or(0),
        mn.root,
        mn.shares.unwrap_or(0),
    );
    model.datasets.get_mut(fs).expect("created").zpl = Some(Rc::new(tree));
    refresh(pool, model, fs)?;
    Ok(format!("root {}", mn.root))
}

/// A ZPL step's engine call alone, the model untouched (a misuse: the
/// engine must refuse it).
pub fn attempt(step: &Step, pool: &mut Pool) -> Result<String, Error> {
    let id = pool.lookup(step.pool_dataset())?;
    let s = stamp(pool);
    let mut dmu = pool.dmu(id)?;
    let object = match step {
        Step::ZplInit { .. } => ezpl::create_fs(&mut dmu, s.now, s.txg)?.root,
        Step::Mkdir { path, mode, .. } => vnops::mkdir(&mut dmu, s, path.as_bytes(), *mode)?,
        Step::MkFile {
            path, mode, blksz, ..
        } => vnops::create(&mut dmu, s, path.as_bytes(), *mode, *blksz)?,
        Step::Symlink { path, target, .. } => {
            vnops::symlink(&mut dmu, s, path.as_bytes(), target.as_bytes())?
        }
        Step::Link { path, existing, .. } => {
            vnops::link(&mut dmu, s, path.as_bytes(), existing.as_bytes())?
        }
        Step::Xattr {
            path,
            name,
            len,
            fill,
            ..
        } => {
            let value = fill_bytes(*fill, *len as usize);
            let set = (*len > 0).then_some(&value[..]);
            vnops::set_xattr(&mut dmu, s, path.as_bytes(), name.as_bytes(), set)?;
            return Ok(String::new());
        }
        Step::Unlink { path, .. } => vnops::remove(&mut dmu, s, path.as_bytes())?,
        Step::Rmdir { path, .. } => vnops::rmdir(&mut dmu, s, path.as_bytes())?,
        _ => unreachable!("not a ZPL step: {step}"),
    };
    Ok(format!("object {object}"))
}

impl Step {
    /// Why a step does not apply to a ZPL filesystem's model: a ZPL step
    /// whose path does not fit the namespace, or another step on an
    /// object only ZPL steps may change. `None` otherwise.
    pub(super) fn zpl_skip_reason(&self, m: &PoolModel) -> Option<String> {
        let owned = |fs: &str, o: u64| {
            m.zpl_owns(fs, o)
                .then(|| format!("{fs} object {o} belongs to its ZPL filesystem"))
        };
        match self {
            Step::Reclaim { fs, object, .. }
            | Step::FreeObject { fs, object }
            | Step::Bonus { fs, object, .. }
            | Step::Spill { fs, object, .. } => return owned(fs, *object),
            Step::Write { fs, object, .. }
            | Step::Punch { fs, object, .. }
            | Step::Truncate { fs, object, .. } => {
                return owned(fs, *object).filter(|_| !m.zpl_file(fs, *object));
            }
            _ => {}
        }
        let (fs, path) = match self {
            Step::Mkdir { fs, path, .. }
            | Step::MkFile { fs, path, .. }
            | Step::Symlink { fs, path, .. }
            | Step::Link { fs, path, .. }
            | Step::Xattr { fs, path, .. }
            | Step::Unlink { fs, path }
            | Step::Rmdir { fs, path } => (fs, path.as_str()),
            _ => return None,
        };
        let Some(t) = m.tree(fs).filter(|_| !fs.contains('@')) else {
            return Some(format!("{fs} is not a ZPL filesystem"));
        };
        let absent = |p: &str| {
            let name = p.rsplit('/').next().unwrap_or("");
            if name.is_empty() || !t.is_dir(parent_of(p)) {
                Some(format!("{fs}: {p} has no directory to go in"))
            } else {
                t.lookup(p).map(|_| format!("{fs}: {p} exists"))
            }
        };
        let kind = |p: &str| t.node(p).map(|n| n.kind.clone());
        let missing = || Some(format!("{fs}: {path} does not exist"));
        match self {
            Step::MkFile { count, .. } => (1..=*count).find_map(|i| absent(&batch_path(path, i))),
            Step::Mkdir { .. } | Step::Symlink { .. } => absent(path),
            Step::Link { existing, .. } => match kind(existing) {
                Some(Kind::Dir) | None => Some(format!("{fs}: {existing} is no file to link")),
                Some(_) => absent(path),
            },
            Step::Xattr { name, len, .. } => match t.node(path) {
                None => missing(),
                Some(n) if *len == 0 && !n.xattrs.contains_key(name) => {
                    Some(format!("{fs}: {path} has no attribute {name}"))
                }
                Some(_) => None,
            },
            Step::Unlink { .. } => match kind(path) {
                None => missing(),
                Some(Kind::Dir) => Some(format!("{fs}: {path} is a directory")),
                Some(_) => None,
            },
            Step::Rmdir { .. } => match kind(path) {
                None => missing(),
                Some(Kind::Dir) if !path.is_empty() && t.entries_of(path) == 0 => None,
                Some(_) => Some(format!("{fs}: {path} is no empty directory")),
            },
            _ => None,
        }
    }

    /// A ZPL step, on the pool and then on the model.
    pub(super) fn apply_zpl(
        &self,
        pool: &mut Pool,
        model: &mut PoolModel,
    ) -> Result<String, Error> {
        let fs = match self {
            Step::Mkdir { fs, .. }
            | Step::MkFile { fs, .. }
            | Step::Symlink { fs, .. }
            | Step::Link { fs, .. }
            | Step::Xattr { fs, .. }
            | Step::Unlink { fs, .. }
            | Step::Rmdir { fs, .. } => fs,
            _ => unreachable!("not a ZPL step: {self}"),
        };
        let id = pool.lookup(fs)?;
        let s = stamp(pool);
        let detail = match self {
            Step::Mkdir { path, mode, .. } => {
                let object = vnops::mkdir(&mut pool.dmu(id)?, s, path.as_bytes(), *mode)?;
                tree_mut(model, fs).add(path, object, Some(Node::new(Kind::Dir, *mode & 0o7777)));
                format!("object {object}")
            }
            Step::MkFile {
                path,
                mode,
                blksz,
                count,
                ..
            } => {
                let mut made = Vec::new();
                let mut dmu = pool.dmu(id)?;
                for i in 1..=*count {
                    let p = batch_path(path, i);
                    made.push((
                        p.clone(),
                        vnops::create(&mut dmu, s, p.as_bytes(), *mode, *blksz)?,
                    ));
                }
                drop(dmu);
                let first = made[0].1;
                for (p, object) in made {
                    model
                        .objects_mut(fs)
                        .insert(object, Object::new(file_shape(*blksz, ZNODE_PHYS_SIZE)));
                    let node = Node::new(Kind::File, *mode & 0o7777);
                    tree_mut(model, fs).add(&p, object, Some(node));
                }
                match count {
                    1 => format!("object {first}"),
                    n => format!("objects {first} and {} more", n - 1),
                }
            }
            Step::Symlink { path, target, .. } => {
                let object =
                    vnops::symlink(&mut pool.dmu(id)?, s, path.as_bytes(), target.as_bytes())?;
                let len = target.len();
                let o = if ZNODE_PHYS_SIZE + len <= DN_MAX_BONUSLEN {
                    Object::new(file_shape(512, ZNODE_PHYS_SIZE + len))
                } else {
                    let mut o = Object::new(file_shape(vnops::block_for(len), ZNODE_PHYS_SIZE));
                    o.write(0, target.as_bytes());
                    o
                };
                model.objects_mut(fs).insert(object, o);
                let node = Node::new(Kind::Symlink(target.as_bytes().to_vec()), 0o777);
                tree_mut(model, fs).add(path, object, Some(node));
                format!("object {object}")
            }
            Step::Link { path, existing, .. } => {
                let object =
                    vnops::link(&mut pool.dmu(id)?, s, path.as_bytes(), existing.as_bytes())?;
                tree_mut(model, fs).add(path, object, None);
                format!("object {object}")
            }
            Step::Xattr {
                path,
                name,
                len,
                fill,
                ..
            } => self.apply_xattr(pool, model, id, s, fs, path, name, *len, *fill)?,
            Step::Unlink { path, .. } | Step::Rmdir { path, .. } => {
                let mut dmu = pool.dmu(id)?;
                let object = match self {
                    Step::Unlink { .. } => vnops::remove(&mut dmu, s, path.as_bytes())?,
                    _ => vnops::rmdir(&mut dmu, s, path.as_bytes())?,
                };
                if let Some(gone) = tree_mut(model, fs).remove(path) {
                    model.objects_mut(fs).remove(&gone);
                }
                format!("object {object}")
            }
            _ => unreachable!("not a ZPL step: {self}"),
        };
        refresh(pool, model, fs)?;
        Ok(detail)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_xattr(
        &self,
        pool: &mut Pool,
        model: &mut PoolModel,
        id: DatasetId,
        s: Stamp,
        fs: &str,
        path: &str,
        name: &str,
        len: u64,
        fill: u64,
    ) -> Result<String, Error> {
        let value = fill_bytes(fill, len as usize);
        let mut dmu = pool.dmu(id)?;
        let set = (len > 0).then_some(&value[..]);
        vnops::set_xattr(&mut dmu, s, path.as_bytes(), name.as_bytes(), set)?;
        let tree = model.tree(fs).expect("checked");
        let owner = tree.lookup(path).expect("checked");
        let old = tree.nodes[&owner].xattrs.get(name).map(|(o, _)| *o);
        let xdir = ezpl::read_znode(&dmu, owner)?.xattr;
        let attr = if len > 0 {
            let de = engine::zap::lookup_u64(&mut dmu, xdir, name.as_bytes())?;
            Some(ezpl::zfs_dirent_obj(de))
        } else {
            None
        };
        drop(dmu);
        let objects = model.objects_mut(fs);
        if let Some(old) = old {
            objects.remove(&old);
        }
        if let Some(attr) = attr {
            if objects.contains_key(&attr) {
                return Err(Error::new(
                    Errno::EEXIST,
                    format!("the engine made attribute file {attr}, which the model holds"),
                ));
            }
            let mut o = Object::new(file_shape(vnops::block_for(value.len()), ZNODE_PHYS_SIZE));
            o.write(0, &value);
            objects.insert(attr, o);
        }
        let node = tree_mut(model, fs).nodes.get_mut(&owner).expect("checked");
        node.xattr_dir = Some(xdir);
        match attr {
            Some(attr) => {
                node.xattrs.insert(name.to_string(), (attr, value));
                Ok(format!("object {attr}"))
            }
            None => {
                node.xattrs.remove(name);
                Ok(String::new())
            }
        }
    }
}
