//! The ZPL's namespace and file operations on a filesystem in an objset
//! (`zfs_vnops.c`, `zfs_dir.c`), as ZPL version 4 makes them: directory
//! entries are ZAP entries whose value is the object number with the file
//! type in its top four bits; every change keeps the sizes, link counts
//! and times of the znodes it touches as ZFS does. Each operation finds
//! and checks everything it needs before it changes anything.
//!
//! Paths are `/`-separated and relative to the root. What the simulator
//! cannot have (a process holding a file open) is left out: a file whose
//! last link goes is freed at once, and its extended attribute directory
//! goes to the delete queue, as `zfs_remove` does when it may delete now.

use super::znode::{
    self, NewZnode, ZP_CTIME, ZP_LINKS, ZP_MODE, ZP_MTIME, ZP_PARENT, ZP_SIZE, ZP_XATTR, word,
};
use super::{
    DMU_OT_PLAIN_FILE_CONTENTS, DMU_OT_ZNODE, MAXPATHLEN, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
    ZNODE_PHYS_SIZE, ZfsTime, master_node,
};
use crate::dmu::Dmu;
use crate::dmu::dnode::DN_MAX_BONUSLEN;
use crate::dmu::objset::DMU_OBJECT_END;
use crate::error::{Errno, Result, fail};
use crate::zap;

/// When a change happens: the time znodes record, and the open txg (a new
/// znode's generation).
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub now: ZfsTime,
    pub txg: u64,
}

/// Longest file name (`MAXNAMELEN` less its NUL).
pub const NAME_MAX: usize = 255;
/// A file's data block size when the caller gives none: as large as ZFS
/// grows one for `len` bytes (a multiple of 512, at most 128 KiB).
pub fn block_for(len: usize) -> u32 {
    len.clamp(1, 128 << 10).div_ceil(512) as u32 * 512
}

/// `zfs_dirent`: the object and its `IFTODT` type.
fn dirent(object: u64, mode: u64) -> u64 {
    object | (((mode & S_IFMT) >> 12) << 60)
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return fail(
            Errno::EINVAL,
            format!("{:?} is not a file name", String::from_utf8_lossy(name)),
        );
    }
    if name.len() > NAME_MAX || name.contains(&0) {
        return fail(
            Errno::ENAMETOOLONG,
            format!(
                "a name of {} bytes (at most {NAME_MAX}, no NUL)",
                name.len()
            ),
        );
    }
    Ok(())
}

/// The znode bonus of `object` (`zfs_zget`).
fn znode(dmu: &Dmu<'_>, object: u64) -> Result<Vec<u8>> {
    let info = dmu.object_info(object)?;
    let bonus = dmu.bonus(object)?;
    if info.bonustype != DMU_OT_ZNODE || bonus.len() < ZNODE_PHYS_SIZE {
        return fail(
            Errno::EIO,
            format!(
                "object {object} has bonus type {} of {} bytes, not a znode",
                info.bonustype,
                bonus.len()
            ),
        );
    }
    Ok(bonus)
}

fn mode_of(dmu: &Dmu<'_>, object: u64) -> Result<u64> {
    Ok(word(&znode(dmu, object)?, ZP_MODE))
}

/// Changes fields of a znode in place, keeping the rest (ACL included).
fn patch(dmu: &mut Dmu<'_>, object: u64, f: impl FnOnce(&mut [u8])) -> Result<()> {
    let mut bonus = znode(dmu, object)?;
    f(&mut bonus);
    dmu.set_bonus(object, &bonus)
}

fn set_time(b: &mut [u8], at: usize, t: ZfsTime) {
    znode::set_word(b, at, t.secs);
    znode::set_word(b, at + 1, t.nsecs);
}

/// The directory entry `name` of `dir`, if any.
fn lookup(dmu: &mut Dmu<'_>, dir: u64, name: &[u8]) -> Result<Option<u64>> {
    match zap::lookup_u64(dmu, dir, name) {
        Ok(de) => Ok(Some(super::zfs_dirent_obj(de))),
        Err(e) if e.errno() == Errno::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// The directory a path names (the root for an empty path).
fn resolve_dir(dmu: &mut Dmu<'_>, path: &[u8]) -> Result<u64> {
    let mut dir = master_node(dmu)?.root;
    for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        let Some(next) = lookup(dmu, dir, part)? else {
            return fail(
                Errno::ENOENT,
                format!("{:?} does not exist", String::from_utf8_lossy(path)),
            );
        };
        if mode_of(dmu, next)? & S_IFMT != S_IFDIR {
            return fail(
                Errno::ENOTDIR,
                format!(
                    "{:?} in {:?} is not a directory",
                    String::from_utf8_lossy(part),
                    String::from_utf8_lossy(path)
                ),
            );
        }
        dir = next;
    }
    Ok(dir)
}

/// The parent directory of a path and its last name.
fn resolve_parent<'p>(dmu: &mut Dmu<'_>, path: &'p [u8]) -> Result<(u64, &'p [u8])> {
    let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    check_name(name)?;
    Ok((resolve_dir(dmu, parent)?, name))
}

/// The parent and name of a path that must not exist yet.
fn resolve_new<'p>(dmu: &mut Dmu<'_>, path: &'p [u8]) -> Result<(u64, &'p [u8])> {
    let (dir, name) = resolve_parent(dmu, path)?;
    if lookup(dmu, dir, name)?.is_some() {
        return fail(
            Errno::EEXIST,
            format!("{:?} exists", String::from_utf8_lossy(path)),
        );
    }
    Ok((dir, name))
}

/// The parent, name and object of a path that must exist.
fn resolve_existing(dmu: &mut Dmu<'_>, path: &[u8]) -> Result<(u64, Vec<u8>, u64)> {
    let (dir, name) = resolve_parent(dmu, path)?;
    match lookup(dmu, dir, name)? {
        Some(object) => Ok((dir, name.to_vec(), object)),
        None => fail(
            Errno::ENOENT,
            format!("{:?} does not exist", String::from_utf8_lossy(path)),
        ),
    }
}

/// `zfs_link_create`: the entry, and the directory's size (and link count,
/// for a subdirectory) and times.
fn link_create(
    dmu: &mut Dmu<'_>,
    stamp: Stamp,
    dir: u64,
    name: &[u8],
    object: u64,
    mode: u64,
) -> Result<()> {
    zap::add_u64(dmu, dir, name, dirent(object, mode))?;
    let is_dir = u64::from(mode & S_IFMT == S_IFDIR);
    patch(dmu, dir, |b| {
        znode::set_word(b, ZP_SIZE, word(b, ZP_SIZE) + 1);
        znode::set_word(b, ZP_LINKS, word(b, ZP_LINKS) + is_dir);
        set_time(b, ZP_MTIME, stamp.now);
        set_time(b, ZP_CTIME, stamp.now);
    })
}

/// `zfs_link_destroy`'s half on the directory.
fn link_destroy(
    dmu: &mut Dmu<'_>,
    stamp: Stamp,
    dir: u64,
    name: &[u8],
    is_dir: bool,
) -> Result<()> {
    zap::remove(dmu, dir, name)?;
    patch(dmu, dir, |b| {
        znode::set_word(b, ZP_SIZE, word(b, ZP_SIZE).saturating_sub(1));
        znode::set_word(
            b,
            ZP_LINKS,
            word(b, ZP_LINKS).saturating_sub(u64::from(is_dir)),
        );
        set_time(b, ZP_MTIME, stamp.now);
        set_time(b, ZP_CTIME, stamp.now);
    })
}

/// `zfs_mkdir`.
pub fn mkdir(dmu: &mut Dmu<'_>, stamp: Stamp, path: &[u8], mode: u64) -> Result<u64> {
    let (dir, name) = resolve_new(dmu, path)?;
    let object = znode::mkdir_object(dmu, mode, dir, 2, false, stamp.now, stamp.txg)?;
    link_create(dmu, stamp, dir, name, object, S_IFDIR)?;
    Ok(object)
}

/// A new regular file's object (`zfs_mknode` of a `VREG`).
fn new_file(
    dmu: &mut Dmu<'_>,
    stamp: Stamp,
    parent: u64,
    mode: u64,
    blksz: u32,
    xattr: bool,
) -> Result<u64> {
    let object = dmu.object_alloc(
        DMU_OT_PLAIN_FILE_CONTENTS,
        blksz,
        DMU_OT_ZNODE,
        ZNODE_PHYS_SIZE,
    )?;
    let z = NewZnode {
        mode: S_IFREG | (mode & 0o7777),
        size: 0,
        parent,
        links: 1,
        xattr,
    };
    dmu.set_bonus(object, &znode::encode(&z, stamp.now, stamp.txg))?;
    Ok(object)
}

/// `zfs_create` of a regular file with data blocks of `blksz` bytes.
pub fn create(dmu: &mut Dmu<'_>, stamp: Stamp, path: &[u8], mode: u64, blksz: u32) -> Result<u64> {
    let (dir, name) = resolve_new(dmu, path)?;
    let object = new_file(dmu, stamp, dir, mode, blksz, false)?;
    link_create(dmu, stamp, dir, name, object, S_IFREG)?;
    Ok(object)
}

/// `zfs_symlink`: the target follows the znode in the bonus when it fits
/// there, else it is the start of the object's one block.
pub fn symlink(dmu: &mut Dmu<'_>, stamp: Stamp, path: &[u8], target: &[u8]) -> Result<u64> {
    // A filesystem without its master node cannot be mounted: nothing
    // reaches `zfs_symlink`'s own checks (EIO, as every other vnop).
    master_node(dmu)?;
    if target.len() as u64 > MAXPATHLEN {
        return fail(
            Errno::ENAMETOOLONG,
            format!("a symlink target of {} bytes", target.len()),
        );
    }
    let (dir, name) = resolve_new(dmu, path)?;
    let inline = ZNODE_PHYS_SIZE + target.len() <= DN_MAX_BONUSLEN;
    let (bonuslen, blksz) = if inline {
        (ZNODE_PHYS_SIZE + target.len(), 512)
    } else {
        (ZNODE_PHYS_SIZE, block_for(target.len()))
    };
    let object = dmu.object_alloc(DMU_OT_PLAIN_FILE_CONTENTS, blksz, DMU_OT_ZNODE, bonuslen)?;
    let z = NewZnode {
        mode: S_IFLNK | 0o777,
        size: target.len() as u64,
        parent: dir,
        links: 1,
        xattr: false,
    };
    let mut bonus = znode::encode(&z, stamp.now, stamp.txg);
    if inline {
        bonus.extend_from_slice(target);
    } else {
        dmu.write(object, 0, target)?;
    }
    dmu.set_bonus(object, &bonus)?;
    link_create(dmu, stamp, dir, name, object, S_IFLNK)?;
    Ok(object)
}

/// `zfs_link`: another name for a file that is not a directory.
pub fn link(dmu: &mut Dmu<'_>, stamp: Stamp, path: &[u8], existing: &[u8]) -> Result<u64> {
    let (_, _, object) = resolve_existing(dmu, existing)?;
    let mode = mode_of(dmu, object)?;
    if mode & S_IFMT == S_IFDIR {
        return fail(
            Errno::EPERM,
            format!(
                "{:?} is a directory: no hard links to directories",
                String::from_utf8_lossy(existing)
            ),
        );
    }
    let (dir, name) = resolve_new(dmu, path)?;
    link_create(dmu, stamp, dir, name, object, mode)?;
    patch(dmu, object, |b| {
        znode::set_word(b, ZP_LINKS, word(b, ZP_LINKS) + 1);
        set_time(b, ZP_CTIME, stamp.now);
    })?;
    Ok(object)
}

/// The last link of `object` is gone: free it, and put its extended
/// attribute directory, if any, on the delete queue.
fn unlinked(dmu: &mut Dmu<'_>, object: u64, xattr_dir: u64) -> Result<()> {
    if xattr_dir != 0 {
        let queue = master_node(dmu)?.unlinked_set.unwrap_or(0);
        if queue != 0 {
            patch(dmu, xattr_dir, |b| znode::set_word(b, ZP_LINKS, 0))?;
            zap::add_u64(dmu, queue, format!("{xattr_dir:x}").as_bytes(), xattr_dir)?;
        }
    }
    dmu.object_free(object)
}

/// `zfs_remove`: a name of a file that is not a directory.
pub fn remove(dmu: &mut Dmu<'_>, stamp: Stamp, path: &[u8]) -> Result<u64> {
    let (dir, name, object) = resolve_existing(dmu, path)?;
    let bonus = znode(dmu, object)?;
    if word(&bonus, ZP_MODE) & S_IFMT == S_IFDIR {
        return fail(
            Errno::EPERM,
            format!(
                "{:?} is a directory (rmdir removes it)",
                String::from_utf8_lossy(path)
            ),
        );
    }
    link_destroy(dmu, stamp, dir, &name, false)?;
    let links = word(&bonus, ZP_LINKS).saturating_sub(1);
    if links == 0 {
        unlinked(dmu, object, word(&bonus, ZP_XATTR))?;
    } else {
        patch(dmu, object, |b| {
            znode::set_word(b, ZP_LINKS, links);
            set_time(b, ZP_CTIME, stamp.now);
        })?;
    }
    Ok(object)
}

/// `zfs_rmdir`: an empty directory other than the root. Solaris ZFS
/// refuses a directory that is not empty with `EEXIST`.
pub fn rmdir(dmu: &mut Dmu<'_>, stamp: Stamp, path: &[u8]) -> Result<u64> {
    let (dir, name, object) = resolve_existing(dmu, path)?;
    let bonus = znode(dmu, object)?;
    if word(&bonus, ZP_MODE) & S_IFMT != S_IFDIR {
        return fail(
            Errno::ENOTDIR,
            format!("{:?} is not a directory", String::from_utf8_lossy(path)),
        );
    }
    if word(&bonus, ZP_SIZE) > 2 {
        return fail(
            Errno::EEXIST,
            format!(
                "directory {:?} has {} entries",
                String::from_utf8_lossy(path),
                word(&bonus, ZP_SIZE) - 2
            ),
        );
    }
    link_destroy(dmu, stamp, dir, &name, true)?;
    unlinked(dmu, object, word(&bonus, ZP_XATTR))?;
    Ok(object)
}

/// Sets (`Some`) or removes (`None`) an extended attribute: a file in the
/// hidden attribute directory, made on first use (`zfs_make_xattrdir`:
/// mode 01777, two links, its parent the file). A value that is there is
/// replaced by a new file, as an `O_TRUNC` create would not grow a block
/// size the old value fixed.
pub fn set_xattr(
    dmu: &mut Dmu<'_>,
    stamp: Stamp,
    path: &[u8],
    name: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    check_name(name)?;
    let (_, _, object) = resolve_existing(dmu, path)?;
    let mut xdir = word(&znode(dmu, object)?, ZP_XATTR);
    let existing = if xdir == 0 {
        None
    } else {
        lookup(dmu, xdir, name)?
    };
    let Some(value) = value else {
        let Some(attr) = existing else {
            return fail(
                Errno::ENOENT,
                format!(
                    "{:?} has no attribute {:?}",
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(name)
                ),
            );
        };
        link_destroy(dmu, stamp, xdir, name, false)?;
        return dmu.object_free(attr);
    };
    if let Some(old) = existing {
        link_destroy(dmu, stamp, xdir, name, false)?;
        dmu.object_free(old)?;
    }
    if xdir == 0 {
        xdir = znode::mkdir_object(dmu, 0o1777, object, 2, true, stamp.now, stamp.txg)?;
        patch(dmu, object, |b| {
            znode::set_word(b, ZP_XATTR, xdir);
            set_time(b, ZP_CTIME, stamp.now);
        })?;
    }
    let attr = new_file(dmu, stamp, xdir, 0o660, block_for(value.len()), true)?;
    link_create(dmu, stamp, xdir, name, attr, S_IFREG)?;
    if !value.is_empty() {
        dmu.write(attr, 0, value)?;
    }
    patch(dmu, attr, |b| {
        znode::set_word(b, ZP_SIZE, value.len() as u64);
        set_time(b, ZP_MTIME, stamp.now);
        set_time(b, ZP_CTIME, stamp.now);
    })
}

/// `zfs_write`: the data, a size that covers it, new times.
pub fn write(dmu: &mut Dmu<'_>, stamp: Stamp, object: u64, offset: u64, data: &[u8]) -> Result<()> {
    let size = word(&znode(dmu, object)?, ZP_SIZE);
    dmu.write(object, offset, data)?;
    let end = offset.saturating_add(data.len() as u64);
    patch(dmu, object, |b| {
        znode::set_word(b, ZP_SIZE, size.max(end));
        set_time(b, ZP_MTIME, stamp.now);
        set_time(b, ZP_CTIME, stamp.now);
    })
}

/// `zfs_space` freeing a range (a hole punched): the size stays.
pub fn free(dmu: &mut Dmu<'_>, stamp: Stamp, object: u64, offset: u64, len: u64) -> Result<()> {
    znode(dmu, object)?;
    dmu.free_range(object, offset, len)?;
    patch(dmu, object, |b| {
        set_time(b, ZP_MTIME, stamp.now);
        set_time(b, ZP_CTIME, stamp.now);
    })
}

/// `zfs_freesp` to the end (`ftruncate`): everything from `size` on goes,
/// and the file is `size` bytes long, shorter or longer than before.
pub fn truncate(dmu: &mut Dmu<'_>, stamp: Stamp, object: u64, size: u64) -> Result<()> {
    znode(dmu, object)?;
    dmu.free_range(object, size, DMU_OBJECT_END)?;
    patch(dmu, object, |b| {
        znode::set_word(b, ZP_SIZE, size);
        set_time(b, ZP_MTIME, stamp.now);
        set_time(b, ZP_CTIME, stamp.now);
    })
}

/// The parent a znode names (for tests and tools).
pub fn parent_of(dmu: &Dmu<'_>, object: u64) -> Result<u64> {
    Ok(word(&znode(dmu, object)?, ZP_PARENT))
}
