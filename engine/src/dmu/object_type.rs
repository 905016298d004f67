//! DMU object types (`dmu_object_type_t`) and their table (`dmu_ot[]`):
//! each type's name, whether it is metadata, and how its contents are
//! byte-swapped (`dmu_object_byteswap_t`), as of illumos 2013. Receive
//! checks object and bonus types against it, traversal and send tell blocks
//! apart by it, and [`crate::byteswap`] swaps contents by its classes.

/// How the contents of an object type are byte-swapped (`dmu_object_byteswap_t`).
///
/// The discriminants are the on-disk `DMU_BSWAP_*` numbers, because new-style
/// object types carry them in their low bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ByteswapClass {
    Uint8 = 0,
    Uint16 = 1,
    Uint32 = 2,
    Uint64 = 3,
    Zap = 4,
    Dnode = 5,
    Objset = 6,
    Znode = 7,
    OldAcl = 8,
    Acl = 9,
}

type B = ByteswapClass;

impl ByteswapClass {
    /// Every class, in `DMU_BSWAP_*` order.
    pub const ALL: [ByteswapClass; DMU_BSWAP_NUMFUNCS as usize] = [
        B::Uint8,
        B::Uint16,
        B::Uint32,
        B::Uint64,
        B::Zap,
        B::Dnode,
        B::Objset,
        B::Znode,
        B::OldAcl,
        B::Acl,
    ];

    /// The class numbered `n` (`DMU_BSWAP_*`), as a new-style type encodes it.
    pub const fn from_index(n: u32) -> Option<Self> {
        if n < DMU_BSWAP_NUMFUNCS {
            Some(Self::ALL[n as usize])
        } else {
            None
        }
    }

    /// The on-disk `DMU_BSWAP_*` number.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The `ob_name` of `dmu_ot_byteswap[]`; zdb also names new-style types by it.
    pub const fn name(self) -> &'static str {
        match self {
            B::Uint8 => "uint8",
            B::Uint16 => "uint16",
            B::Uint32 => "uint32",
            B::Uint64 => "uint64",
            B::Zap => "zap",
            B::Dnode => "dnode",
            B::Objset => "objset",
            B::Znode => "znode",
            B::OldAcl => "oldacl",
            B::Acl => "acl",
        }
    }
}

/// Number of byteswap classes (`DMU_BSWAP_NUMFUNCS`).
pub const DMU_BSWAP_NUMFUNCS: u32 = 10;
/// Bit 7 marks a new-style type that encodes its own class and metadata flag.
pub const DMU_OT_NEWTYPE: u32 = 0x80;
/// Metadata flag of a new-style type.
pub const DMU_OT_METADATA: u32 = 0x40;
/// Where a new-style type keeps its byteswap class.
pub const DMU_OT_BYTESWAP_MASK: u32 = 0x3f;

/// Builds a new-style type number (the `DMU_OT()` macro).
pub const fn dmu_ot_new(class: ByteswapClass, metadata: bool) -> u32 {
    let meta = if metadata { DMU_OT_METADATA } else { 0 };
    DMU_OT_NEWTYPE | meta | (class as u32 & DMU_OT_BYTESWAP_MASK)
}

pub const DMU_OT_NONE: u32 = 0;
pub const DMU_OT_OBJECT_DIRECTORY: u32 = 1;
pub const DMU_OT_OBJECT_ARRAY: u32 = 2;
pub const DMU_OT_PACKED_NVLIST: u32 = 3;
pub const DMU_OT_PACKED_NVLIST_SIZE: u32 = 4;
pub const DMU_OT_BPOBJ: u32 = 5;
pub const DMU_OT_BPOBJ_HDR: u32 = 6;
pub const DMU_OT_SPACE_MAP_HEADER: u32 = 7;
pub const DMU_OT_SPACE_MAP: u32 = 8;
pub const DMU_OT_INTENT_LOG: u32 = 9;
pub const DMU_OT_DNODE: u32 = 10;
pub const DMU_OT_OBJSET: u32 = 11;
pub const DMU_OT_DSL_DIR: u32 = 12;
pub const DMU_OT_DSL_DIR_CHILD_MAP: u32 = 13;
pub const DMU_OT_DSL_DS_SNAP_MAP: u32 = 14;
pub const DMU_OT_DSL_PROPS: u32 = 15;
pub const DMU_OT_DSL_DATASET: u32 = 16;
pub const DMU_OT_ZNODE: u32 = 17;
pub const DMU_OT_OLDACL: u32 = 18;
pub const DMU_OT_PLAIN_FILE_CONTENTS: u32 = 19;
pub const DMU_OT_DIRECTORY_CONTENTS: u32 = 20;
pub const DMU_OT_MASTER_NODE: u32 = 21;
pub const DMU_OT_UNLINKED_SET: u32 = 22;
pub const DMU_OT_ZVOL: u32 = 23;
pub const DMU_OT_ZVOL_PROP: u32 = 24;
pub const DMU_OT_PLAIN_OTHER: u32 = 25;
pub const DMU_OT_UINT64_OTHER: u32 = 26;
pub const DMU_OT_ZAP_OTHER: u32 = 27;
pub const DMU_OT_ERROR_LOG: u32 = 28;
pub const DMU_OT_SPA_HISTORY: u32 = 29;
pub const DMU_OT_SPA_HISTORY_OFFSETS: u32 = 30;
pub const DMU_OT_POOL_PROPS: u32 = 31;
pub const DMU_OT_DSL_PERMS: u32 = 32;
pub const DMU_OT_ACL: u32 = 33;
pub const DMU_OT_SYSACL: u32 = 34;
pub const DMU_OT_FUID: u32 = 35;
pub const DMU_OT_FUID_SIZE: u32 = 36;
pub const DMU_OT_NEXT_CLONES: u32 = 37;
pub const DMU_OT_SCAN_QUEUE: u32 = 38;
pub const DMU_OT_USERGROUP_USED: u32 = 39;
pub const DMU_OT_USERGROUP_QUOTA: u32 = 40;
pub const DMU_OT_USERREFS: u32 = 41;
pub const DMU_OT_DDT_ZAP: u32 = 42;
pub const DMU_OT_DDT_STATS: u32 = 43;
/// Class `Uint8`: SA layouts are swapped by the SA layer when read, not here.
pub const DMU_OT_SA: u32 = 44;
pub const DMU_OT_SA_MASTER_NODE: u32 = 45;
pub const DMU_OT_SA_ATTR_REGISTRATION: u32 = 46;
pub const DMU_OT_SA_ATTR_LAYOUTS: u32 = 47;
pub const DMU_OT_SCAN_XLATE: u32 = 48;
pub const DMU_OT_DEDUP: u32 = 49;
pub const DMU_OT_DEADLIST: u32 = 50;
pub const DMU_OT_DEADLIST_HDR: u32 = 51;
pub const DMU_OT_DSL_CLONES: u32 = 52;
pub const DMU_OT_BPOBJ_SUBOBJ: u32 = 53;
/// Number of legacy (table) types; new types use [`dmu_ot_new`] instead.
pub const DMU_OT_NUMTYPES: u32 = 54;

pub const DMU_OTN_UINT8_DATA: u32 = dmu_ot_new(B::Uint8, false);
pub const DMU_OTN_UINT8_METADATA: u32 = dmu_ot_new(B::Uint8, true);
pub const DMU_OTN_UINT16_DATA: u32 = dmu_ot_new(B::Uint16, false);
pub const DMU_OTN_UINT16_METADATA: u32 = dmu_ot_new(B::Uint16, true);
pub const DMU_OTN_UINT32_DATA: u32 = dmu_ot_new(B::Uint32, false);
pub const DMU_OTN_UINT32_METADATA: u32 = dmu_ot_new(B::Uint32, true);
pub const DMU_OTN_UINT64_DATA: u32 = dmu_ot_new(B::Uint64, false);
pub const DMU_OTN_UINT64_METADATA: u32 = dmu_ot_new(B::Uint64, true);
pub const DMU_OTN_ZAP_DATA: u32 = dmu_ot_new(B::Zap, false);
pub const DMU_OTN_ZAP_METADATA: u32 = dmu_ot_new(B::Zap, true);

/// One row of the object type table (`dmu_object_type_info_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmuObjectTypeInfo {
    pub name: &'static str,
    pub metadata: bool,
    pub byteswap: ByteswapClass,
}

const fn ot(byteswap: ByteswapClass, metadata: bool, name: &'static str) -> DmuObjectTypeInfo {
    DmuObjectTypeInfo {
        name,
        metadata,
        byteswap,
    }
}

/// `dmu_ot[]`, indexed by legacy type number.
static DMU_OT_TABLE: [DmuObjectTypeInfo; DMU_OT_NUMTYPES as usize] = [
    ot(B::Uint8, true, "unallocated"),
    ot(B::Zap, true, "object directory"),
    ot(B::Uint64, true, "object array"),
    ot(B::Uint8, true, "packed nvlist"),
    ot(B::Uint64, true, "packed nvlist size"),
    ot(B::Uint64, true, "bpobj"),
    ot(B::Uint64, true, "bpobj header"),
    ot(B::Uint64, true, "SPA space map header"),
    ot(B::Uint64, true, "SPA space map"),
    ot(B::Uint64, true, "ZIL intent log"),
    ot(B::Dnode, true, "DMU dnode"),
    ot(B::Objset, true, "DMU objset"),
    ot(B::Uint64, true, "DSL directory"),
    ot(B::Zap, true, "DSL directory child map"),
    ot(B::Zap, true, "DSL dataset snap map"),
    ot(B::Zap, true, "DSL props"),
    ot(B::Uint64, true, "DSL dataset"),
    ot(B::Znode, true, "ZFS znode"),
    ot(B::OldAcl, true, "ZFS V0 ACL"),
    ot(B::Uint8, false, "ZFS plain file"),
    ot(B::Zap, true, "ZFS directory"),
    ot(B::Zap, true, "ZFS master node"),
    ot(B::Zap, true, "ZFS delete queue"),
    ot(B::Uint8, false, "zvol object"),
    ot(B::Zap, true, "zvol prop"),
    ot(B::Uint8, false, "other uint8[]"),
    ot(B::Uint64, false, "other uint64[]"),
    ot(B::Zap, true, "other ZAP"),
    ot(B::Zap, true, "persistent error log"),
    ot(B::Uint8, true, "SPA history"),
    ot(B::Uint64, true, "SPA history offsets"),
    ot(B::Zap, true, "Pool properties"),
    ot(B::Zap, true, "DSL permissions"),
    ot(B::Acl, true, "ZFS ACL"),
    ot(B::Uint8, true, "ZFS SYSACL"),
    ot(B::Uint8, true, "FUID table"),
    ot(B::Uint64, true, "FUID table size"),
    ot(B::Zap, true, "DSL dataset next clones"),
    ot(B::Zap, true, "scan work queue"),
    ot(B::Zap, true, "ZFS user/group used"),
    ot(B::Zap, true, "ZFS user/group quota"),
    ot(B::Zap, true, "snapshot refcount tags"),
    ot(B::Zap, true, "DDT ZAP algorithm"),
    ot(B::Zap, true, "DDT statistics"),
    ot(B::Uint8, true, "System attributes"),
    ot(B::Zap, true, "SA master node"),
    ot(B::Zap, true, "SA attr registration"),
    ot(B::Zap, true, "SA attr layouts"),
    ot(B::Zap, true, "scan translations"),
    ot(B::Uint8, false, "deduplicated block"),
    ot(B::Zap, true, "DSL deadlist map"),
    ot(B::Uint64, true, "DSL deadlist map hdr"),
    ot(B::Zap, true, "DSL dir clones"),
    ot(B::Uint64, true, "bpobj subobj"),
];

/// Rows for new-style types, at `2 * class + metadata`; C has no table for
/// them, so this exists only to give [`dmu_ot`] one answer for every valid type.
static DMU_OTN_TABLE: [DmuObjectTypeInfo; 2 * DMU_BSWAP_NUMFUNCS as usize] = {
    let mut t = [ot(B::Uint8, false, ""); 2 * DMU_BSWAP_NUMFUNCS as usize];
    let mut i = 0;
    while i < DMU_BSWAP_NUMFUNCS as usize {
        let c = ByteswapClass::ALL[i];
        t[2 * i] = ot(c, false, c.name());
        t[2 * i + 1] = ot(c, true, c.name());
        i += 1;
    }
    t
};

/// Type information for `t`, or `None` where `DMU_OT_IS_VALID(t)` is false.
///
/// Decoded on the full `u32` exactly as the C macros do: with bit 7 set the low
/// six bits are the class and bit 6 the metadata flag (higher bits are ignored);
/// otherwise `t` indexes the legacy table. New-style types are named by class.
pub fn dmu_ot(t: u32) -> Option<&'static DmuObjectTypeInfo> {
    if t & DMU_OT_NEWTYPE != 0 {
        let class = (t & DMU_OT_BYTESWAP_MASK) as usize;
        let meta = usize::from(t & DMU_OT_METADATA != 0);
        DMU_OTN_TABLE.get(2 * class + meta)
    } else {
        DMU_OT_TABLE.get(t as usize)
    }
}

/// `DMU_OT_IS_VALID`: receive rejects object and bonus types for which this fails.
pub fn is_valid(t: u32) -> bool {
    dmu_ot(t).is_some()
}

/// `DMU_OT_IS_METADATA`; false for invalid types (C would read past `dmu_ot[]`).
pub fn is_metadata(t: u32) -> bool {
    dmu_ot(t).is_some_and(|i| i.metadata)
}

/// `DMU_OT_BYTESWAP`; `None` for invalid types (C would read past its tables).
pub fn byteswap_class(t: u32) -> Option<ByteswapClass> {
    dmu_ot(t).map(|i| i.byteswap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_type_table() {
        let names: Vec<&str> = (0..DMU_OT_NUMTYPES)
            .map(|t| dmu_ot(t).unwrap().name)
            .collect();
        assert_eq!(names.len(), 54);
        let expect = [
            (DMU_OT_NONE, "unallocated", B::Uint8, true),
            (DMU_OT_OBJECT_DIRECTORY, "object directory", B::Zap, true),
            (DMU_OT_DNODE, "DMU dnode", B::Dnode, true),
            (DMU_OT_OBJSET, "DMU objset", B::Objset, true),
            (DMU_OT_ZNODE, "ZFS znode", B::Znode, true),
            (DMU_OT_OLDACL, "ZFS V0 ACL", B::OldAcl, true),
            (
                DMU_OT_PLAIN_FILE_CONTENTS,
                "ZFS plain file",
                B::Uint8,
                false,
            ),
            (DMU_OT_DIRECTORY_CONTENTS, "ZFS directory", B::Zap, true),
            (DMU_OT_MASTER_NODE, "ZFS master node", B::Zap, true),
            (DMU_OT_UNLINKED_SET, "ZFS delete queue", B::Zap, true),
            (DMU_OT_ZVOL, "zvol object", B::Uint8, false),
            (DMU_OT_UINT64_OTHER, "other uint64[]", B::Uint64, false),
            (DMU_OT_ACL, "ZFS ACL", B::Acl, true),
            (DMU_OT_SA, "System attributes", B::Uint8, true),
            (DMU_OT_DEDUP, "deduplicated block", B::Uint8, false),
            (DMU_OT_BPOBJ_SUBOBJ, "bpobj subobj", B::Uint64, true),
        ];
        for (t, name, class, meta) in expect {
            let i = dmu_ot(t).unwrap();
            assert_eq!(
                (i.name, i.byteswap, i.metadata),
                (name, class, meta),
                "type {t}"
            );
            assert!(is_valid(t));
            assert_eq!(is_metadata(t), meta);
            assert_eq!(byteswap_class(t), Some(class));
        }
        let data_types: Vec<u32> = (0..DMU_OT_NUMTYPES).filter(|&t| !is_metadata(t)).collect();
        assert_eq!(data_types, [19, 23, 25, 26, 49]);
        for t in [DMU_OT_NUMTYPES, 55, 0x7f, 0x100, !DMU_OT_NEWTYPE] {
            assert!(!is_valid(t) && !is_metadata(t) && byteswap_class(t).is_none());
        }
    }

    #[test]
    fn newtype_encoding() {
        for class in ByteswapClass::ALL {
            assert_eq!(ByteswapClass::from_index(class.index()), Some(class));
            for meta in [false, true] {
                let t = dmu_ot_new(class, meta);
                assert_eq!(t & !0xff, 0);
                let i = dmu_ot(t).unwrap();
                assert_eq!(
                    (i.byteswap, i.metadata, i.name),
                    (class, meta, class.name())
                );
                assert_eq!(byteswap_class(t), Some(class));
                assert_eq!(is_metadata(t), meta);
            }
        }
        assert_eq!(ByteswapClass::from_index(10), None);
        // `dmu_ot_byteswap[]`'s names, in class order: zdb shows them.
        let names: Vec<&str> = ByteswapClass::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "uint8", "uint16", "uint32", "uint64", "zap", "dnode", "objset", "znode", "oldacl",
                "acl"
            ]
        );
        assert_eq!(DMU_OTN_UINT8_DATA, 0x80);
        assert_eq!(DMU_OTN_ZAP_METADATA, 0xc4);
        assert_eq!(byteswap_class(DMU_OTN_UINT64_METADATA), Some(B::Uint64));
        // Classes past DMU_BSWAP_NUMFUNCS are invalid, with or without metadata.
        for t in [0x8a, 0xbf, 0xca, 0xff] {
            assert!(!is_valid(t) && byteswap_class(t).is_none(), "{t:#x}");
        }
        // The macros look only at bits 0..7 once bit 7 is set.
        assert_eq!(byteswap_class(0x1c4), Some(B::Zap));
    }
}
