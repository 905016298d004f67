//! A read-only walker of ZPL filesystems (`zfs_znode.h`, `zfs_dir.c`,
//! `zfs_vfsops.c`, `zfs_vnops.c`): from the master node to the root
//! directory, through every directory ZAP, to each file's znode, data,
//! symlink target and extended attributes.
//!
//! It is how zsim shows what a received backup holds, so it reads ZPL
//! version 1–4 znodes (`znode_phys_t` bonus buffers, no system attributes)
//! exactly as ZFS lays them out and refuses malformed ones with an error
//! naming the object, never a panic, a directory cycle or an unbounded read.
//!
//! `znode` and `vnops` write such filesystems (ZPL version 4, as zfs-fuse
//! does), so the simulator's workloads can make files, directories, links
//! and extended attributes that this walker, `cargo sim ls` and a real ZFS
//! read back.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::dmu::Dmu;
use crate::dmu::dnode::{DN_MAX_BONUSLEN, ObjectInfo};
use crate::dmu::objset::DMU_OST_ZFS;
use crate::dsl::DatasetId;
use crate::error::{Errno, Error, Result, fail};
use crate::spa::Pool;
use crate::zap;
use crate::zio::BLKPTR_SIZE;

pub mod vnops;
pub mod znode;

pub use vnops::Stamp;
pub use znode::create_fs;

/// `MASTER_NODE_OBJ`: the ZAP that names the root and the ZPL version.
pub const MASTER_NODE_OBJ: u64 = 1;
pub const ZPL_VERSION_STR: &str = "VERSION";
pub const ZFS_ROOT_OBJ: &str = "ROOT";
pub const ZFS_UNLINKED_SET: &str = "DELETE_QUEUE";
pub const ZFS_SHARES_DIR: &str = "SHARES";
pub const ZFS_SA_ATTRS: &str = "SA_ATTRS";
/// `ZPL_VERSION_SA`: znodes became system attributes.
pub const ZPL_VERSION_SA: u64 = 5;

/// The DMU object types of a ZPL objset (`dmu_object_type_t`).
pub const DMU_OT_ZNODE: u8 = 17;
pub const DMU_OT_PLAIN_FILE_CONTENTS: u8 = 19;
pub const DMU_OT_DIRECTORY_CONTENTS: u8 = 20;
pub const DMU_OT_MASTER_NODE: u8 = 21;
pub const DMU_OT_SA: u8 = 44;

/// `sizeof (znode_phys_t)`: the times, ids and sizes, then the ACL.
pub const ZNODE_PHYS_SIZE: usize = 264;
/// `MAXPATHLEN`: `zfs_symlink` refuses longer targets.
pub const MAXPATHLEN: u64 = 1024;

/// `S_IFMT` and the file formats of `zp_mode`.
pub const S_IFMT: u64 = 0o170000;
pub const S_IFIFO: u64 = 0o010000;
pub const S_IFCHR: u64 = 0o020000;
pub const S_IFDIR: u64 = 0o040000;
pub const S_IFBLK: u64 = 0o060000;
pub const S_IFREG: u64 = 0o100000;
pub const S_IFLNK: u64 = 0o120000;
pub const S_IFSOCK: u64 = 0o140000;

/// `ZFS_DIRENT_OBJ`: the low 48 bits of a directory entry.
pub fn zfs_dirent_obj(de: u64) -> u64 {
    de & ((1 << 48) - 1)
}

/// `ZFS_DIRENT_TYPE`: the top 4 bits, `IFTODT(mode)` (0 before ZPL v2).
pub fn zfs_dirent_type(de: u64) -> u64 {
    de >> 60
}

/// A ZFS time: seconds and nanoseconds, as `ZFS_TIME_ENCODE` stores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ZfsTime {
    pub secs: u64,
    pub nsecs: u64,
}

/// `znode_phys_t` without its ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Znode {
    pub atime: ZfsTime,
    pub mtime: ZfsTime,
    pub ctime: ZfsTime,
    pub crtime: ZfsTime,
    /// `zp_gen`: the txg that created the file.
    pub generation: u64,
    pub mode: u64,
    pub size: u64,
    pub parent: u64,
    pub links: u64,
    /// The hidden directory of extended attributes, or 0.
    pub xattr: u64,
    pub rdev: u64,
    pub flags: u64,
    pub uid: u64,
    pub gid: u64,
    pub zap: u64,
}

impl Znode {
    /// Decodes the znode at the front of a bonus buffer.
    pub fn decode(object: u64, bonus: &[u8]) -> Result<Znode> {
        if bonus.len() < ZNODE_PHYS_SIZE {
            return fail(
                Errno::EIO,
                format!(
                    "object {object}: bonus of {} bytes is too short for a znode ({ZNODE_PHYS_SIZE})",
                    bonus.len()
                ),
            );
        }
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bonus[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let t = |i: usize| ZfsTime {
            secs: w(i),
            nsecs: w(i + 1),
        };
        Ok(Znode {
            atime: t(0),
            mtime: t(2),
            ctime: t(4),
            crtime: t(6),
            generation: w(8),
            mode: w(9),
            size: w(10),
            parent: w(11),
            links: w(12),
            xattr: w(13),
            rdev: w(14),
            flags: w(15),
            uid: w(16),
            gid: w(17),
            zap: w(18),
        })
    }

    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

/// What a directory entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    /// FIFOs, devices, sockets, and what else `S_IFMT` may hold.
    Other {
        /// `mode & S_IFMT`.
        format: u64,
    },
}

impl FileType {
    pub fn from_mode(mode: u64) -> FileType {
        match mode & S_IFMT {
            S_IFREG => FileType::File,
            S_IFDIR => FileType::Dir,
            S_IFLNK => FileType::Symlink,
            format => FileType::Other { format },
        }
    }

    /// The name the manifests and `cargo sim verify` use.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Dir => "dir",
            FileType::Symlink => "symlink",
            FileType::Other { .. } => "other",
        }
    }
}

/// One file, directory or link of a walked filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the root, `/`-separated; the root itself is `.`. Bytes,
    /// because ZFS names need not be UTF-8.
    pub path: Vec<u8>,
    pub file_type: FileType,
    /// Permission bits with setuid, setgid and sticky (`mode & 07777`).
    pub mode: u64,
    /// `zp_size`: bytes of a file, target length of a symlink, entries + 2
    /// of a directory.
    pub size: u64,
    /// SHA-256 of a regular file's data, when hashing was asked for.
    pub sha256: Option<[u8; 32]>,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
    pub object: u64,
    pub nlink: u64,
    pub uid: u64,
    pub gid: u64,
    pub mtime: ZfsTime,
    /// Extended attributes: name to value.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl FileEntry {
    pub fn path_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.path)
    }

    /// The mode as the manifests write it: four octal digits.
    pub fn mode_octal(&self) -> String {
        format!("{:04o}", self.mode)
    }

    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256
            .map(|sum| sum.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// What a walk reads besides names and znodes.
#[derive(Clone, Copy, Debug)]
pub struct WalkOptions {
    /// Hash every regular file's data.
    pub hash: bool,
    /// Read extended attributes.
    pub xattrs: bool,
    /// Files larger than this are not hashed but refused (`EFBIG`): a sparse
    /// file may claim any size, and hashing reads all of it.
    pub max_hash_bytes: u64,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            hash: true,
            xattrs: true,
            max_hash_bytes: DEFAULT_MAX_HASH_BYTES,
        }
    }
}

/// 64 GiB: about a minute of hashing.
pub const DEFAULT_MAX_HASH_BYTES: u64 = 64 << 30;
/// Extended attribute values are read whole; Linux allows 64 KiB, ZFS's
/// xattr directories hold files of any size, so allow generously.
pub const MAX_XATTR_VALUE: u64 = 16 << 20;
/// Paths longer than this are refused rather than listed (`ENAMETOOLONG`):
/// a deep tree of long names costs its depth in every path below it.
pub const MAX_PATH_BYTES: usize = 64 << 10;

/// The master node's entries that matter for a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterNode {
    pub version: u64,
    pub root: u64,
    pub unlinked_set: Option<u64>,
    pub shares: Option<u64>,
}

/// Every file of a snapshot (or filesystem) of `pool`, sorted by path.
pub fn walk(pool: &mut Pool, dataset: DatasetId) -> Result<Vec<FileEntry>> {
    walk_with(pool, dataset, &WalkOptions::default())
}

/// [`walk`] with options.
pub fn walk_with(
    pool: &mut Pool,
    dataset: DatasetId,
    options: &WalkOptions,
) -> Result<Vec<FileEntry>> {
    pool.dmu(dataset)?;
    let name = pool.dataset_name(dataset);
    let mut dmu = pool.dmu(dataset)?;
    walk_objset(&mut dmu, options).map_err(|e| e.context(&name))
}

/// Walks the ZPL filesystem in an opened objset.
pub fn walk_objset(dmu: &mut Dmu<'_>, options: &WalkOptions) -> Result<Vec<FileEntry>> {
    let os_type = dmu.objset().os_type;
    if os_type != DMU_OST_ZFS {
        return fail(
            Errno::EINVAL,
            format!("objset type {os_type} is not a ZPL filesystem"),
        );
    }
    let master = master_node(dmu)?;
    Walker {
        dmu,
        options,
        contents: BTreeMap::new(),
    }
    .walk(master.root)
}

/// `zfs_init_fs`'s reading of the master node: the ZPL version and the root.
pub fn master_node(dmu: &mut Dmu<'_>) -> Result<MasterNode> {
    let info = object_info(dmu, MASTER_NODE_OBJ, "the master node")?;
    if info.dn_type != DMU_OT_MASTER_NODE {
        return fail(
            Errno::EIO,
            format!(
                "object {MASTER_NODE_OBJ} has type {}, not a ZPL master node",
                info.dn_type
            ),
        );
    }
    let mn = zap::read(dmu, MASTER_NODE_OBJ).map_err(|e| e.context("master node"))?;
    let get = |name: &str| -> Result<Option<u64>> {
        match mn.lookup_u64(MASTER_NODE_OBJ, name.as_bytes()) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.errno() == Errno::ENOENT => Ok(None),
            Err(e) => Err(Error::new(Errno::EIO, e.reason().to_string())),
        }
    };
    let Some(version) = get(ZPL_VERSION_STR)? else {
        return fail(Errno::EIO, "the master node has no VERSION");
    };
    if version >= ZPL_VERSION_SA || get(ZFS_SA_ATTRS)?.is_some() {
        return fail(
            Errno::ENOTSUP,
            format!(
                "ZPL version {version}: znodes kept as system attributes (version 5) are not \
                 supported, only versions 1 to 4"
            ),
        );
    }
    if version == 0 {
        return fail(Errno::EIO, "the master node says ZPL version 0");
    }
    let Some(root) = get(ZFS_ROOT_OBJ)? else {
        return fail(Errno::EIO, "the master node has no ROOT");
    };
    Ok(MasterNode {
        version,
        root,
        unlinked_set: get(ZFS_UNLINKED_SET)?,
        shares: get(ZFS_SHARES_DIR)?,
    })
}

fn object_info(dmu: &Dmu<'_>, object: u64, what: &str) -> Result<ObjectInfo> {
    dmu.object_info(object).map_err(|e| {
        Error::new(
            Errno::EIO,
            format!("{what} (object {object}) is not allocated: {}", e.reason()),
        )
    })
}

/// Reads the znode of a ZPL object (ZPL version 4: a `DMU_OT_ZNODE` bonus).
pub fn read_znode(dmu: &Dmu<'_>, object: u64) -> Result<Znode> {
    let info = object_info(dmu, object, "a file")?;
    znode_of(dmu, object, &info)
}

fn znode_of(dmu: &Dmu<'_>, object: u64, info: &ObjectInfo) -> Result<Znode> {
    match info.bonustype {
        DMU_OT_ZNODE => Znode::decode(object, &dmu.bonus(object)?),
        DMU_OT_SA => fail(
            Errno::ENOTSUP,
            format!("object {object} keeps its znode as system attributes (ZPL version 5)"),
        ),
        other => fail(
            Errno::EIO,
            format!("object {object} has bonus type {other}, not a znode"),
        ),
    }
}

/// What is read of a file besides its znode, once per object however many
/// links it has.
#[derive(Clone, Default)]
struct Contents {
    sha256: Option<[u8; 32]>,
    target: Option<Vec<u8>>,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

struct Walker<'w, 'a> {
    dmu: &'w mut Dmu<'a>,
    options: &'w WalkOptions,
    contents: BTreeMap<u64, Contents>,
}

impl Walker<'_, '_> {
    /// Depth-first from the root with an explicit stack (a deep tree cannot
    /// exhaust ours), each directory entered once: a second way into one is
    /// a cycle or a hard link to a directory, both malformed.
    fn walk(mut self, root: u64) -> Result<Vec<FileEntry>> {
        let (info, znode) = self.object(root, b".")?;
        if znode.file_type() != FileType::Dir {
            return fail(
                Errno::EIO,
                format!("the root (object {root}) is not a directory"),
            );
        }
        let mut out = vec![self.entry(b".".to_vec(), root, &info, &znode)?];
        let mut entered = BTreeSet::from([root]);
        let mut stack = vec![(root, Vec::new())];
        while let Some((dir, path)) = stack.pop() {
            let entries = zap::entries(self.dmu, dir).map_err(|e| {
                e.context(format!("directory object {dir} ({})", display_path(&path)))
            })?;
            for e in entries {
                let child = self.child_path(dir, &path, &e)?;
                let Some(de) = e.single_value().filter(|_| e.integer_size == 8) else {
                    return fail(
                        Errno::EIO,
                        format!(
                            "directory object {dir}: entry {:?} is not one 8-byte integer",
                            e.name_lossy()
                        ),
                    );
                };
                let object = zfs_dirent_obj(de);
                let (info, znode) = self.object(object, &child)?;
                let t = zfs_dirent_type(de);
                if t != 0 && t != (znode.mode & S_IFMT) >> 12 {
                    return fail(
                        Errno::EIO,
                        format!(
                            "directory object {dir}: entry {:?} says type {t}, object {object} \
                             has mode {:o}",
                            e.name_lossy(),
                            znode.mode
                        ),
                    );
                }
                out.push(self.entry(child.clone(), object, &info, &znode)?);
                if znode.file_type() == FileType::Dir {
                    if !entered.insert(object) {
                        return fail(
                            Errno::EIO,
                            format!(
                                "directory object {object} is reached a second time, at {}: \
                                 a directory cycle or a hard link to a directory",
                                display_path(&child)
                            ),
                        );
                    }
                    stack.push((object, child));
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn child_path(&self, dir: u64, path: &[u8], e: &zap::ZapEntry) -> Result<Vec<u8>> {
        let name = &e.name;
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return fail(
                Errno::EIO,
                format!(
                    "directory object {dir}: entry {:?} is not a file name",
                    e.name_lossy()
                ),
            );
        }
        let mut child = Vec::with_capacity(path.len() + 1 + name.len());
        if !path.is_empty() {
            child.extend_from_slice(path);
            child.push(b'/');
        }
        child.extend_from_slice(name);
        if child.len() > MAX_PATH_BYTES {
            return fail(
                Errno::ENAMETOOLONG,
                format!(
                    "directory object {dir}: the path to entry {:?} is longer than {MAX_PATH_BYTES} bytes",
                    e.name_lossy()
                ),
            );
        }
        Ok(child)
    }

    /// An object a directory entry names: allocated, with a znode, of the
    /// DMU type its mode calls for.
    fn object(&self, object: u64, path: &[u8]) -> Result<(ObjectInfo, Znode)> {
        let info = self.dmu.object_info(object).map_err(|e| {
            Error::new(
                Errno::EIO,
                format!(
                    "{} names object {object}, which is not allocated ({})",
                    display_path(path),
                    e.reason()
                ),
            )
        })?;
        let znode = znode_of(self.dmu, object, &info).map_err(|e| e.context(display_path(path)))?;
        let want = match znode.file_type() {
            FileType::Dir => DMU_OT_DIRECTORY_CONTENTS,
            _ => DMU_OT_PLAIN_FILE_CONTENTS,
        };
        if info.dn_type != want {
            return fail(
                Errno::EIO,
                format!(
                    "{}: object {object} of mode {:o} has DMU type {}, not {want}",
                    display_path(path),
                    znode.mode,
                    info.dn_type
                ),
            );
        }
        Ok((info, znode))
    }

    fn entry(
        &mut self,
        path: Vec<u8>,
        object: u64,
        info: &ObjectInfo,
        znode: &Znode,
    ) -> Result<FileEntry> {
        let contents = match self.contents.get(&object) {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .contents(object, info, znode)
                    .map_err(|e| e.context(display_path(&path)))?;
                self.contents.insert(object, c.clone());
                c
            }
        };
        Ok(FileEntry {
            path,
            file_type: znode.file_type(),
            mode: znode.mode & 0o7777,
            size: znode.size,
            sha256: contents.sha256,
            target: contents.target,
            object,
            nlink: znode.links,
            uid: znode.uid,
            gid: znode.gid,
            mtime: znode.mtime,
            xattrs: contents.xattrs,
        })
    }

    fn contents(&mut self, object: u64, info: &ObjectInfo, znode: &Znode) -> Result<Contents> {
        let mut c = Contents::default();
        match znode.file_type() {
            FileType::File if self.options.hash => {
                c.sha256 = Some(self.hash(object, znode.size)?);
            }
            FileType::Symlink => c.target = Some(self.symlink_target(object, info, znode)?),
            _ => {}
        }
        if znode.xattr != 0 && self.options.xattrs {
            c.xattrs = self.xattrs(object, znode.xattr)?;
        }
        Ok(c)
    }

    /// SHA-256 of `size` bytes of data, read a bounded piece at a time.
    fn hash(&mut self, object: u64, size: u64) -> Result<[u8; 32]> {
        if size > self.options.max_hash_bytes {
            // unreached: only a walk that hashes gets here: the command line's `verify` or
            // `ls --hash`; the oracle and the pool_image fuzzer walk without hashing
            return fail(
                Errno::EFBIG,
                format!(
                    "object {object}: {size} bytes is more than the {} this walk hashes",
                    self.options.max_hash_bytes
                ),
            );
        }
        const PIECE: u64 = 1 << 20;
        let mut sha = Sha256::new();
        let mut at = 0;
        while at < size {
            let n = PIECE.min(size - at);
            sha.update(self.dmu.read(object, at, n)?);
            at += n;
        }
        Ok(sha.finalize().into())
    }

    /// `zfs_readlink`: the target follows the znode in the bonus buffer when
    /// it fits there, else it is the start of block 0.
    fn symlink_target(&mut self, object: u64, info: &ObjectInfo, znode: &Znode) -> Result<Vec<u8>> {
        let len = znode.size;
        if len > MAXPATHLEN {
            return fail(
                Errno::EIO,
                format!("symlink object {object} has a target of {len} bytes"),
            );
        }
        let len = len as usize;
        // The bonus dbuf's size: what the dnode's block pointers leave.
        let bonus_room =
            DN_MAX_BONUSLEN.saturating_sub(usize::from(info.nblkptr.max(1) - 1) * BLKPTR_SIZE);
        if ZNODE_PHYS_SIZE + len <= bonus_room {
            let bonus = self.dmu.bonus(object)?;
            return match bonus.get(ZNODE_PHYS_SIZE..ZNODE_PHYS_SIZE + len) {
                Some(target) => Ok(target.to_vec()),
                None => fail(
                    Errno::EIO,
                    format!(
                        "symlink object {object}: a {len}-byte target should follow the znode, \
                         the bonus has {} bytes",
                        bonus.len()
                    ),
                ),
            };
        }
        if len > info.datablksz as usize {
            return fail(
                Errno::EIO,
                format!(
                    "symlink object {object}: a {len}-byte target does not fit its {}-byte block",
                    info.datablksz
                ),
            );
        }
        self.dmu.read(object, 0, len as u64)
    }

    /// The hidden xattr directory: each entry is a file holding one value.
    fn xattrs(&mut self, owner: u64, dir: u64) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let what = format!("xattr directory {dir} of object {owner}");
        let info = object_info(self.dmu, dir, &what)?;
        let znode = znode_of(self.dmu, dir, &info).map_err(|e| e.context(&what))?;
        if info.dn_type != DMU_OT_DIRECTORY_CONTENTS || znode.file_type() != FileType::Dir {
            return fail(
                Errno::EIO,
                format!("{what} is not a directory (type {})", info.dn_type),
            );
        }
        let mut out = BTreeMap::new();
        for e in zap::entries(self.dmu, dir).map_err(|e| e.context(&what))? {
            let Some(de) = e.single_value() else {
                return fail(
                    Errno::EIO,
                    format!("{what}: entry {:?} is not one integer", e.name_lossy()),
                );
            };
            let object = zfs_dirent_obj(de);
            let name = format!("{what}: attribute {:?}", e.name_lossy());
            let info = object_info(self.dmu, object, &name)?;
            let znode = znode_of(self.dmu, object, &info).map_err(|err| err.context(&name))?;
            if znode.file_type() != FileType::File || info.dn_type != DMU_OT_PLAIN_FILE_CONTENTS {
                return fail(
                    Errno::EIO,
                    format!("{name} (object {object}) is not a regular file"),
                );
            }
            if znode.size > MAX_XATTR_VALUE {
                return fail(
                    Errno::EFBIG,
                    format!(
                        "{name} (object {object}) has {} bytes, more than {MAX_XATTR_VALUE}",
                        znode.size
                    ),
                );
            }
            let value = self.dmu.read(object, 0, znode.size)?;
            out.insert(e.name, value);
        }
        Ok(out)
    }
}

fn display_path(path: &[u8]) -> Cow<'_, str> {
    if path.is_empty() {
        Cow::Borrowed(".")
    } else {
        String::from_utf8_lossy(path)
    }
}
