//! Writing znodes as ZPL version 4 does (`zfs_znode.c`): a new object's
//! `znode_phys_t` bonus with its times, generation, mode, size, parent and
//! link count, the flags and the trivial ACL a mode gives (six inline
//! FUID-layout ACEs, as zfs-fuse writes them), and `zfs_create_fs`'s
//! skeleton: the master node, the delete queue, the root directory and the
//! shares directory.

use super::{
    DMU_OT_DIRECTORY_CONTENTS, DMU_OT_MASTER_NODE, DMU_OT_ZNODE, MASTER_NODE_OBJ, MasterNode,
    S_IFDIR, S_IFMT, ZFS_ROOT_OBJ, ZFS_SHARES_DIR, ZFS_UNLINKED_SET, ZNODE_PHYS_SIZE,
    ZPL_VERSION_STR, ZfsTime,
};
use crate::dmu::Dmu;
use crate::error::Result;
use crate::zap;

/// The ZPL version zsim writes: the last before system attributes.
pub const ZPL_VERSION: u64 = 4;
/// `DMU_OT_UNLINKED_SET`: the delete queue's type.
pub const DMU_OT_UNLINKED_SET: u8 = 22;

/// `zp_flags` bits (`zfs_znode.h`).
pub const ZFS_XATTR: u64 = 0x1;
pub const ZFS_ACL_TRIVIAL: u64 = 0x4;
pub const ZFS_ACL_AUTO_INHERIT: u64 = 0x40;
pub const ZFS_NO_EXECS_DENIED: u64 = 0x100;
pub const ZFS_ARCHIVE: u64 = 0x8_0000_0000;
pub const ZFS_AV_MODIFIED: u64 = 0x400_0000_0000;

/// Word indices of `znode_phys_t` fields (8-byte words).
pub const ZP_ATIME: usize = 0;
pub const ZP_MTIME: usize = 2;
pub const ZP_CTIME: usize = 4;
pub const ZP_CRTIME: usize = 6;
pub const ZP_GEN: usize = 8;
pub const ZP_MODE: usize = 9;
pub const ZP_SIZE: usize = 10;
pub const ZP_PARENT: usize = 11;
pub const ZP_LINKS: usize = 12;
pub const ZP_XATTR: usize = 13;
pub const ZP_FLAGS: usize = 15;
/// `zp_acl`: `z_acl_extern_obj`, then size, version and count, then ACEs.
const ZP_ACL: usize = 22;

/// `ZFS_ACL_VERSION_FUID`.
const ZFS_ACL_VERSION_FUID: u64 = 1;
/// `ace_t` types and the `zfs_ace_hdr_t` flags of the three trivial
/// entries (`ACE_OWNER`, `ACE_GROUP | ACE_IDENTIFIER_GROUP`, `ACE_EVERYONE`).
const ALLOW: u16 = 0;
const DENY: u16 = 1;
const OWNER: u16 = 0x1000;
const GROUP: u16 = 0x2040;
const EVERYONE: u16 = 0x4000;
/// Access-mask bits: read, write and append, execute.
const ACE_READ_DATA: u32 = 0x1;
const ACE_WRITE_APPEND: u32 = 0x6;
const ACE_EXECUTE: u32 = 0x20;
/// What the owner is always allowed and everyone else always denied:
/// write ACL, owner, attributes and named attributes.
const OWNER_ALWAYS: u32 = 0xc0110;
/// What everyone is always allowed: synchronize, read ACL, attributes and
/// named attributes.
const EVERYONE_ALWAYS: u32 = 0x120088;

/// The access bits one `rwx` triple of a mode grants.
fn granted(rwx: u64) -> u32 {
    let mut m = 0;
    if rwx & 4 != 0 {
        m |= ACE_READ_DATA;
    }
    if rwx & 2 != 0 {
        m |= ACE_WRITE_APPEND;
    }
    if rwx & 1 != 0 {
        m |= ACE_EXECUTE;
    }
    m
}

fn withheld(rwx: u64) -> u32 {
    (ACE_READ_DATA | ACE_WRITE_APPEND | ACE_EXECUTE) & !granted(rwx)
}

/// The six inline ACEs of a mode's trivial ACL: deny then allow, for the
/// owner, the group and everyone.
fn trivial_aces(mode: u64) -> [(u16, u16, u32); 6] {
    let (u, g, o) = ((mode >> 6) & 7, (mode >> 3) & 7, mode & 7);
    [
        (DENY, OWNER, withheld(u)),
        (ALLOW, OWNER, OWNER_ALWAYS | granted(u)),
        (DENY, GROUP, withheld(g)),
        (ALLOW, GROUP, granted(g)),
        (DENY, EVERYONE, OWNER_ALWAYS | withheld(o)),
        (ALLOW, EVERYONE, EVERYONE_ALWAYS | granted(o)),
    ]
}

/// The flags zfs-fuse gives a new znode of `mode`.
fn flags_for(mode: u64, xattr: bool) -> u64 {
    let mut flags = ZFS_ARCHIVE | ZFS_AV_MODIFIED | ZFS_ACL_TRIVIAL;
    if mode & S_IFMT == S_IFDIR {
        flags |= ZFS_ACL_AUTO_INHERIT;
    }
    if mode & 0o111 == 0o111 {
        flags |= ZFS_NO_EXECS_DENIED;
    }
    if xattr {
        flags |= ZFS_XATTR;
    }
    flags
}

/// What a new znode holds besides its times.
pub struct NewZnode {
    pub mode: u64,
    pub size: u64,
    pub parent: u64,
    pub links: u64,
    /// In an xattr directory, or one itself.
    pub xattr: bool,
}

/// A new `znode_phys_t` (`zfs_mknode`): every time `now`, generation
/// `txg`, owner root, a trivial ACL.
pub fn encode(z: &NewZnode, now: ZfsTime, txg: u64) -> Vec<u8> {
    let mut b = vec![0u8; ZNODE_PHYS_SIZE];
    for at in [ZP_ATIME, ZP_MTIME, ZP_CTIME, ZP_CRTIME] {
        set_word(&mut b, at, now.secs);
        set_word(&mut b, at + 1, now.nsecs);
    }
    set_word(&mut b, ZP_GEN, txg);
    set_word(&mut b, ZP_MODE, z.mode);
    set_word(&mut b, ZP_SIZE, z.size);
    set_word(&mut b, ZP_PARENT, z.parent);
    set_word(&mut b, ZP_LINKS, z.links);
    set_word(&mut b, ZP_FLAGS, flags_for(z.mode, z.xattr));
    let aces = trivial_aces(z.mode);
    let acl_size = (aces.len() * 8) as u64;
    set_word(
        &mut b,
        ZP_ACL + 1,
        acl_size | (ZFS_ACL_VERSION_FUID << 32) | ((aces.len() as u64) << 48),
    );
    for (i, (ace_type, flags, mask)) in aces.into_iter().enumerate() {
        let at = (ZP_ACL + 2) * 8 + i * 8;
        b[at..at + 2].copy_from_slice(&ace_type.to_le_bytes());
        b[at + 2..at + 4].copy_from_slice(&flags.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&mask.to_le_bytes());
    }
    b
}

pub fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
}

pub fn set_word(b: &mut [u8], i: usize, v: u64) {
    b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
}

/// A new directory (`zfs_mknode` of a `VDIR`): a ZAP with a znode bonus,
/// size 2 ("." and ".."). `parent` 0 means itself (the root, the shares
/// directory).
pub fn mkdir_object(
    dmu: &mut Dmu<'_>,
    mode: u64,
    parent: u64,
    links: u64,
    xattr: bool,
    now: ZfsTime,
    txg: u64,
) -> Result<u64> {
    let obj = zap::create(
        dmu,
        DMU_OT_DIRECTORY_CONTENTS,
        DMU_OT_ZNODE,
        ZNODE_PHYS_SIZE,
    )?;
    let z = NewZnode {
        mode: S_IFDIR | (mode & 0o7777),
        size: 2,
        parent: if parent == 0 { obj } else { parent },
        links,
        xattr,
    };
    dmu.set_bonus(obj, &encode(&z, now, txg))?;
    Ok(obj)
}

/// `zfs_create_fs`: the master node (object 1) names the ZPL version, the
/// delete queue, the root directory and the shares directory, and holds
/// the normalization properties, all zero.
pub fn create_fs(dmu: &mut Dmu<'_>, now: ZfsTime, txg: u64) -> Result<MasterNode> {
    zap::create_claim(dmu, MASTER_NODE_OBJ, DMU_OT_MASTER_NODE, 0, 0)?;
    for prop in ["normalization", "utf8only", "casesensitivity"] {
        zap::add_u64(dmu, MASTER_NODE_OBJ, prop.as_bytes(), 0)?;
    }
    zap::add_u64(
        dmu,
        MASTER_NODE_OBJ,
        ZPL_VERSION_STR.as_bytes(),
        ZPL_VERSION,
    )?;
    let unlinked = zap::create(dmu, DMU_OT_UNLINKED_SET, 0, 0)?;
    zap::add_u64(dmu, MASTER_NODE_OBJ, ZFS_UNLINKED_SET.as_bytes(), unlinked)?;
    let root = mkdir_object(dmu, 0o755, 0, 2, false, now, txg)?;
    zap::add_u64(dmu, MASTER_NODE_OBJ, ZFS_ROOT_OBJ.as_bytes(), root)?;
    let shares = mkdir_object(dmu, 0o555, 0, 2, false, now, txg)?;
    zap::add_u64(dmu, MASTER_NODE_OBJ, ZFS_SHARES_DIR.as_bytes(), shares)?;
    Ok(MasterNode {
        version: ZPL_VERSION,
        root,
        unlinked_set: Some(unlinked),
        shares: Some(shares),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_acls_are_the_ones_zfs_fuse_writes() {
        // From the xattr_full fixture: a 0755 directory and a 0644 file.
        let aces = |mode| {
            let b = encode(
                &NewZnode {
                    mode,
                    size: 0,
                    parent: 1,
                    links: 1,
                    xattr: false,
                },
                ZfsTime::default(),
                1,
            );
            (23..30).map(|i| word(&b, i)).collect::<Vec<u64>>()
        };
        assert_eq!(
            aces(0o40755),
            [
                0x6_0001_0000_0030,
                0x1000_0001,
                0xc_0137_1000_0000,
                0x6_2040_0001,
                0x21_2040_0000,
                0xc_0116_4000_0001,
                0x12_00a9_4000_0000
            ]
        );
        assert_eq!(
            aces(0o100644),
            [
                0x6_0001_0000_0030,
                0x20_1000_0001,
                0xc_0117_1000_0000,
                0x26_2040_0001,
                0x1_2040_0000,
                0xc_0136_4000_0001,
                0x12_0089_4000_0000
            ]
        );
        assert_eq!(flags_for(0o40755, false), 0x408_0000_0144);
        assert_eq!(flags_for(0o100644, false), 0x408_0000_0004);
        assert_eq!(flags_for(0o41777, true), 0x408_0000_0145);
        assert_eq!(flags_for(0o120777, false), 0x408_0000_0104);
    }
}
