//! `dmu_replay_record_t`: the 312-byte record header of a ZFS send stream.
//!
//! Every record is the same size on the wire: a `drr_type`, a
//! `drr_payloadlen` and a union whose largest member (`drr_begin`) fixes the
//! length. A host writes the header in its own byte order; the receiver finds
//! out which from the BEGIN record's magic. Layouts follow illumos
//! `sys/zfs_ioctl.h` of the seed's era; padding is written as zeros and
//! ignored on decode, as ZFS does.

use std::fmt;

use crate::checksum::ZioCksum;

/// Size of every record header on the wire.
pub const DRR_RECORD_SIZE: usize = 312;
/// `DMU_BACKUP_MAGIC`, the first field of every BEGIN record.
pub const DMU_BACKUP_MAGIC: u64 = 0x2F5B_ACBAC;
/// `MAXNAMELEN`: room for `pool/fs@snap` in a BEGIN record.
pub const MAXNAMELEN: usize = 256;

/// `DMU_SUBSTREAM`: a stream of one snapshot (full or incremental).
pub const DMU_SUBSTREAM: u64 = 1;
/// `DMU_COMPOUNDSTREAM`: a wrapper around substreams (`zfs send -R` / `-I`).
pub const DMU_COMPOUNDSTREAM: u64 = 2;

/// Feature flags carried in `drr_versioninfo` bits 2..32.
pub const DMU_BACKUP_FEATURE_DEDUP: u64 = 1 << 0;
pub const DMU_BACKUP_FEATURE_DEDUPPROPS: u64 = 1 << 1;
pub const DMU_BACKUP_FEATURE_SA_SPILL: u64 = 1 << 2;
/// Every feature the seed's receiver understands.
pub const DMU_BACKUP_FEATURE_MASK: u64 =
    DMU_BACKUP_FEATURE_DEDUP | DMU_BACKUP_FEATURE_DEDUPPROPS | DMU_BACKUP_FEATURE_SA_SPILL;

/// BEGIN `drr_flags`.
pub const DRR_FLAG_CLONE: u32 = 1 << 0;
pub const DRR_FLAG_CI_DATA: u32 = 1 << 1;

/// WRITE / WRITE_BYREF `drr_checksumflags`: the key's checksum is a dedup-grade
/// one that the receiver may use to look the block up.
pub const DRR_CHECKSUM_DEDUP: u8 = 1 << 0;

/// The order in which a host wrote a stream's integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// The order of the machine zsim runs on.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };

    /// Whether data in this order must be swapped to be read here, which is
    /// also what selects `fletcher_4_incremental_byteswap` for its checksum.
    pub fn is_swapped(self) -> bool {
        self != ByteOrder::NATIVE
    }

    pub fn other(self) -> ByteOrder {
        match self {
            ByteOrder::Little => ByteOrder::Big,
            ByteOrder::Big => ByteOrder::Little,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        }
    }
}

/// `dmu_replay_record_t.drr_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum DrrType {
    Begin = 0,
    Object = 1,
    FreeObjects = 2,
    Write = 3,
    Free = 4,
    End = 5,
    WriteByref = 6,
    Spill = 7,
}

impl DrrType {
    /// `DRR_NUMTYPES`.
    pub const COUNT: usize = 8;
    pub const ALL: [DrrType; DrrType::COUNT] = [
        DrrType::Begin,
        DrrType::Object,
        DrrType::FreeObjects,
        DrrType::Write,
        DrrType::Free,
        DrrType::End,
        DrrType::WriteByref,
        DrrType::Spill,
    ];

    pub fn from_u32(value: u32) -> Option<DrrType> {
        DrrType::ALL.get(value as usize).copied()
    }

    /// The name used by `zstreamdump` (`DRR_` left off).
    pub fn name(self) -> &'static str {
        match self {
            DrrType::Begin => "BEGIN",
            DrrType::Object => "OBJECT",
            DrrType::FreeObjects => "FREEOBJECTS",
            DrrType::Write => "WRITE",
            DrrType::Free => "FREE",
            DrrType::End => "END",
            DrrType::WriteByref => "WRITE_BYREF",
            DrrType::Spill => "SPILL",
        }
    }
}

impl fmt::Display for DrrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `struct drr_begin`.
#[derive(Clone, PartialEq, Eq)]
pub struct DrrBegin {
    pub magic: u64,
    /// Stream header type in bits 0..2, feature flags in bits 2..32.
    pub versioninfo: u64,
    pub creation_time: u64,
    /// `dmu_objset_type_t` of the snapshot's objset.
    pub objset_type: u32,
    pub flags: u32,
    pub toguid: u64,
    pub fromguid: u64,
    /// NUL-terminated `pool/fs@snap`, kept as the raw bytes of the record.
    pub toname: [u8; MAXNAMELEN],
    /// `drr_payloadlen` of the header: the length of the packed nvlist that
    /// follows a compound stream's first BEGIN; zero in every other record.
    pub payloadlen: u32,
}

impl DrrBegin {
    /// `DMU_GET_STREAM_HDRTYPE`.
    pub fn hdrtype(&self) -> u64 {
        self.versioninfo & 0x3
    }

    /// `DMU_GET_FEATUREFLAGS`.
    pub fn features(&self) -> u64 {
        (self.versioninfo >> 2) & 0x3fff_ffff
    }

    pub fn set_hdrtype(&mut self, hdrtype: u64) {
        self.versioninfo = (self.versioninfo & !0x3) | (hdrtype & 0x3);
    }

    pub fn set_features(&mut self, features: u64) {
        self.versioninfo =
            (self.versioninfo & !(0x3fff_ffff << 2)) | ((features & 0x3fff_ffff) << 2);
    }

    /// The name up to its first NUL, as C's `%s` would print it.
    pub fn toname_bytes(&self) -> &[u8] {
        let end = self
            .toname
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAXNAMELEN);
        &self.toname[..end]
    }

    pub fn toname_lossy(&self) -> String {
        String::from_utf8_lossy(self.toname_bytes()).into_owned()
    }

    /// Sets the name, truncated so that a terminating NUL always fits.
    pub fn set_toname(&mut self, name: &str) {
        self.toname = [0; MAXNAMELEN];
        let bytes = name.as_bytes();
        let len = bytes.len().min(MAXNAMELEN - 1);
        self.toname[..len].copy_from_slice(&bytes[..len]);
    }
}

impl Default for DrrBegin {
    fn default() -> Self {
        DrrBegin {
            magic: DMU_BACKUP_MAGIC,
            versioninfo: DMU_SUBSTREAM,
            creation_time: 0,
            objset_type: 0,
            flags: 0,
            toguid: 0,
            fromguid: 0,
            toname: [0; MAXNAMELEN],
            payloadlen: 0,
        }
    }
}

impl fmt::Debug for DrrBegin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrrBegin")
            .field("magic", &format_args!("{:#x}", self.magic))
            .field("versioninfo", &format_args!("{:#x}", self.versioninfo))
            .field("creation_time", &self.creation_time)
            .field("objset_type", &self.objset_type)
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("toguid", &format_args!("{:#x}", self.toguid))
            .field("fromguid", &format_args!("{:#x}", self.fromguid))
            .field("toname", &self.toname_lossy())
            .field("payloadlen", &self.payloadlen)
            .finish()
    }
}

/// `struct drr_end`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrEnd {
    /// Fletcher-4 of every byte of the substream before this record.
    pub checksum: ZioCksum,
    pub toguid: u64,
}

/// `struct drr_object`: an object's dnode, followed by its bonus buffer
/// padded to 8 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrObject {
    pub object: u64,
    pub object_type: u32,
    pub bonustype: u32,
    pub blksz: u32,
    pub bonuslen: u32,
    pub checksumtype: u8,
    pub compress: u8,
    pub toguid: u64,
}

/// `struct drr_freeobjects`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrFreeObjects {
    pub firstobj: u64,
    pub numobjs: u64,
    pub toguid: u64,
}

/// `ddt_key_t`: the block's checksum and its size/compression properties, as
/// the dedup table keys it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DdtKey {
    pub cksum: ZioCksum,
    pub prop: u64,
}

impl DdtKey {
    const SECTOR_SHIFT: u32 = 9;

    /// Builds `ddk_prop` from logical/physical size (multiples of 512, at most
    /// 32 MiB) and a compression function number.
    pub fn make_prop(lsize: u64, psize: u64, compress: u8) -> u64 {
        let sectors = |size: u64| ((size >> Self::SECTOR_SHIFT).saturating_sub(1)) & 0xffff;
        sectors(lsize) | (sectors(psize) << 16) | (u64::from(compress) << 32)
    }

    /// `DDK_GET_LSIZE`.
    pub fn lsize(&self) -> u64 {
        ((self.prop & 0xffff) + 1) << Self::SECTOR_SHIFT
    }

    /// `DDK_GET_PSIZE`.
    pub fn psize(&self) -> u64 {
        (((self.prop >> 16) & 0xffff) + 1) << Self::SECTOR_SHIFT
    }

    /// `DDK_GET_COMPRESS`.
    pub fn compress(&self) -> u8 {
        ((self.prop >> 32) & 0xff) as u8
    }
}

/// `struct drr_write`: one data block, followed by `length` bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrWrite {
    pub object: u64,
    pub object_type: u32,
    pub offset: u64,
    pub length: u64,
    pub toguid: u64,
    pub checksumtype: u8,
    pub checksumflags: u8,
    pub key: DdtKey,
}

/// `struct drr_free`: a range of an object that is a hole. `length` of
/// `u64::MAX` means "to the end of the object".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrFree {
    pub object: u64,
    pub offset: u64,
    pub length: u64,
    pub toguid: u64,
}

/// `struct drr_write_byref`: a block whose data was already sent, named by the
/// dataset guid, object and offset where it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrWriteByref {
    pub object: u64,
    pub offset: u64,
    pub length: u64,
    pub toguid: u64,
    pub refguid: u64,
    pub refobject: u64,
    pub refoffset: u64,
    pub checksumtype: u8,
    pub checksumflags: u8,
    pub key: DdtKey,
}

/// `struct drr_spill`: an object's spill block, followed by `length` bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrrSpill {
    pub object: u64,
    pub length: u64,
    pub toguid: u64,
}

/// One decoded record header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Boxed: a BEGIN is rare and four times the size of any other record.
    Begin(Box<DrrBegin>),
    Object(DrrObject),
    FreeObjects(DrrFreeObjects),
    Write(DrrWrite),
    Free(DrrFree),
    End(DrrEnd),
    WriteByref(DrrWriteByref),
    Spill(DrrSpill),
}

/// Why 312 bytes are not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnknownType(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownType(t) => write!(f, "unknown record type {t} ({t:#x})"),
        }
    }
}

impl Record {
    pub fn drr_type(&self) -> DrrType {
        match self {
            Record::Begin(_) => DrrType::Begin,
            Record::Object(_) => DrrType::Object,
            Record::FreeObjects(_) => DrrType::FreeObjects,
            Record::Write(_) => DrrType::Write,
            Record::Free(_) => DrrType::Free,
            Record::End(_) => DrrType::End,
            Record::WriteByref(_) => DrrType::WriteByref,
            Record::Spill(_) => DrrType::Spill,
        }
    }

    /// `drr_payloadlen` as written in the header.
    pub fn payloadlen(&self) -> u32 {
        match self {
            Record::Begin(b) => b.payloadlen,
            _ => 0,
        }
    }

    /// Bytes that follow this header on the wire, as the claimed lengths say
    /// (before any validation). A BEGIN's nvlist follows only in a compound
    /// stream: a substream's receiver never reads one.
    pub fn wire_payload_len(&self) -> u64 {
        match self {
            Record::Begin(b) if b.hdrtype() == DMU_COMPOUNDSTREAM => u64::from(b.payloadlen),
            Record::Object(o) => u64::from(o.bonuslen).next_multiple_of(8),
            Record::Write(w) => w.length,
            Record::Spill(s) => s.length,
            _ => 0,
        }
    }

    /// The record's 312 bytes in the given byte order. Padding is zero.
    pub fn encode(&self, order: ByteOrder) -> [u8; DRR_RECORD_SIZE] {
        let mut enc = Encoder {
            buf: [0; DRR_RECORD_SIZE],
            pos: 0,
            order,
        };
        enc.u32(self.drr_type() as u32);
        enc.u32(self.payloadlen());
        match self {
            Record::Begin(b) => {
                enc.u64(b.magic);
                enc.u64(b.versioninfo);
                enc.u64(b.creation_time);
                enc.u32(b.objset_type);
                enc.u32(b.flags);
                enc.u64(b.toguid);
                enc.u64(b.fromguid);
                enc.bytes(&b.toname);
            }
            Record::End(e) => {
                enc.cksum(&e.checksum);
                enc.u64(e.toguid);
            }
            Record::Object(o) => {
                enc.u64(o.object);
                enc.u32(o.object_type);
                enc.u32(o.bonustype);
                enc.u32(o.blksz);
                enc.u32(o.bonuslen);
                enc.bytes(&[o.checksumtype, o.compress]);
                enc.skip(6);
                enc.u64(o.toguid);
            }
            Record::FreeObjects(f) => {
                enc.u64(f.firstobj);
                enc.u64(f.numobjs);
                enc.u64(f.toguid);
            }
            Record::Write(w) => {
                enc.u64(w.object);
                enc.u32(w.object_type);
                enc.skip(4);
                enc.u64(w.offset);
                enc.u64(w.length);
                enc.u64(w.toguid);
                enc.bytes(&[w.checksumtype, w.checksumflags]);
                enc.skip(6);
                enc.cksum(&w.key.cksum);
                enc.u64(w.key.prop);
            }
            Record::Free(f) => {
                enc.u64(f.object);
                enc.u64(f.offset);
                enc.u64(f.length);
                enc.u64(f.toguid);
            }
            Record::WriteByref(w) => {
                enc.u64(w.object);
                enc.u64(w.offset);
                enc.u64(w.length);
                enc.u64(w.toguid);
                enc.u64(w.refguid);
                enc.u64(w.refobject);
                enc.u64(w.refoffset);
                enc.bytes(&[w.checksumtype, w.checksumflags]);
                enc.skip(6);
                enc.cksum(&w.key.cksum);
                enc.u64(w.key.prop);
            }
            Record::Spill(s) => {
                enc.u64(s.object);
                enc.u64(s.length);
                enc.u64(s.toguid);
            }
        }
        enc.buf
    }

    /// Decodes 312 bytes written in `order`: a record from a host of the
    /// other order is swapped first, field by field ([`backup_byteswap`]).
    /// Only the type can be wrong here: every other field is taken as it is
    /// and validated by whoever acts on it.
    pub fn decode(buf: &[u8; DRR_RECORD_SIZE], order: ByteOrder) -> Result<Record, DecodeError> {
        if order.is_swapped() {
            let mut native = *buf;
            backup_byteswap(&mut native);
            Record::decode_native(&native)
        } else {
            Record::decode_native(buf)
        }
    }

    fn decode_native(buf: &[u8; DRR_RECORD_SIZE]) -> Result<Record, DecodeError> {
        let mut dec = Decoder {
            buf,
            pos: 0,
            order: ByteOrder::NATIVE,
        };
        let raw_type = dec.u32();
        let payloadlen = dec.u32();
        let drr_type = DrrType::from_u32(raw_type).ok_or(DecodeError::UnknownType(raw_type))?;
        Ok(match drr_type {
            DrrType::Begin => {
                let magic = dec.u64();
                let versioninfo = dec.u64();
                let creation_time = dec.u64();
                let objset_type = dec.u32();
                let flags = dec.u32();
                let toguid = dec.u64();
                let fromguid = dec.u64();
                let mut toname = [0; MAXNAMELEN];
                toname.copy_from_slice(dec.bytes(MAXNAMELEN));
                Record::Begin(Box::new(DrrBegin {
                    magic,
                    versioninfo,
                    creation_time,
                    objset_type,
                    flags,
                    toguid,
                    fromguid,
                    toname,
                    payloadlen,
                }))
            }
            DrrType::End => Record::End(DrrEnd {
                checksum: dec.cksum(),
                toguid: dec.u64(),
            }),
            DrrType::Object => {
                let object = dec.u64();
                let object_type = dec.u32();
                let bonustype = dec.u32();
                let blksz = dec.u32();
                let bonuslen = dec.u32();
                let checksumtype = dec.u8();
                let compress = dec.u8();
                dec.skip(6);
                Record::Object(DrrObject {
                    object,
                    object_type,
                    bonustype,
                    blksz,
                    bonuslen,
                    checksumtype,
                    compress,
                    toguid: dec.u64(),
                })
            }
            DrrType::FreeObjects => Record::FreeObjects(DrrFreeObjects {
                firstobj: dec.u64(),
                numobjs: dec.u64(),
                toguid: dec.u64(),
            }),
            DrrType::Write => {
                let object = dec.u64();
                let object_type = dec.u32();
                dec.skip(4);
                let offset = dec.u64();
                let length = dec.u64();
                let toguid = dec.u64();
                let checksumtype = dec.u8();
                let checksumflags = dec.u8();
                dec.skip(6);
                Record::Write(DrrWrite {
                    object,
                    object_type,
                    offset,
                    length,
                    toguid,
                    checksumtype,
                    checksumflags,
                    key: dec.ddt_key(),
                })
            }
            DrrType::Free => Record::Free(DrrFree {
                object: dec.u64(),
                offset: dec.u64(),
                length: dec.u64(),
                toguid: dec.u64(),
            }),
            DrrType::WriteByref => {
                let object = dec.u64();
                let offset = dec.u64();
                let length = dec.u64();
                let toguid = dec.u64();
                let refguid = dec.u64();
                let refobject = dec.u64();
                let refoffset = dec.u64();
                let checksumtype = dec.u8();
                let checksumflags = dec.u8();
                dec.skip(6);
                Record::WriteByref(DrrWriteByref {
                    object,
                    offset,
                    length,
                    toguid,
                    refguid,
                    refobject,
                    refoffset,
                    checksumtype,
                    checksumflags,
                    key: dec.ddt_key(),
                })
            }
            DrrType::Spill => Record::Spill(DrrSpill {
                object: dec.u64(),
                length: dec.u64(),
                toguid: dec.u64(),
            }),
        })
    }
}

/// `backup_byteswap`: swaps every integer field of a record written by a
/// host of the other byte order in place, its type first, then the fields
/// of that type; single bytes, padding and the BEGIN's name stay as they
/// are, and a record of unknown type keeps everything after its header.
fn backup_byteswap(buf: &mut [u8; DRR_RECORD_SIZE]) {
    let mut sw = Swapper { buf, pos: 0 };
    let drr_type = sw.u32();
    sw.u32(); // drr_payloadlen
    let Some(drr_type) = DrrType::from_u32(drr_type) else {
        return;
    };
    match drr_type {
        DrrType::Begin => {
            sw.u64s(3); // magic, versioninfo, creation_time
            sw.u32s(2); // type, flags
            sw.u64s(2); // toguid, fromguid
        }
        DrrType::End => sw.u64s(5), // checksum, toguid
        DrrType::Object => {
            sw.u64s(1); // object
            sw.u32s(4); // type, bonustype, blksz, bonuslen
            sw.skip(8); // checksumtype, compress, pad
            sw.u64s(1); // toguid
        }
        DrrType::FreeObjects => sw.u64s(3),
        DrrType::Write => {
            sw.u64s(1); // object
            sw.u32s(1); // type
            sw.skip(4);
            sw.u64s(3); // offset, length, toguid
            sw.skip(8); // checksumtype, checksumflags, pad
            sw.u64s(5); // key: cksum, prop
        }
        DrrType::Free => sw.u64s(4),
        DrrType::WriteByref => {
            sw.u64s(7); // object .. refoffset
            sw.skip(8); // checksumtype, checksumflags, pad
            sw.u64s(5); // key: cksum, prop
        }
        DrrType::Spill => sw.u64s(3),
    }
}

/// Walks a record's fields, reversing each integer in place.
struct Swapper<'a> {
    buf: &'a mut [u8; DRR_RECORD_SIZE],
    pos: usize,
}

impl Swapper<'_> {
    fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    /// Swaps the `u32` here and returns its value after the swap.
    fn u32(&mut self) -> u32 {
        let field = &mut self.buf[self.pos..self.pos + 4];
        field.reverse();
        self.pos += 4;
        u32::from_ne_bytes(field.try_into().expect("4 bytes"))
    }

    fn u32s(&mut self, n: usize) {
        for _ in 0..n {
            self.u32();
        }
    }

    fn u64s(&mut self, n: usize) {
        for _ in 0..n {
            self.buf[self.pos..self.pos + 8].reverse();
            self.pos += 8;
        }
    }
}

/// Reads the magic of what may be a BEGIN record and says which byte order
/// wrote it, or `None` if it is no magic at all.
pub fn detect_byte_order(buf: &[u8; DRR_RECORD_SIZE]) -> Option<ByteOrder> {
    let magic: [u8; 8] = buf[8..16].try_into().expect("8 bytes");
    if u64::from_le_bytes(magic) == DMU_BACKUP_MAGIC {
        Some(ByteOrder::Little)
    } else if u64::from_be_bytes(magic) == DMU_BACKUP_MAGIC {
        Some(ByteOrder::Big)
    } else {
        None
    }
}

struct Encoder {
    buf: [u8; DRR_RECORD_SIZE],
    pos: usize,
    order: ByteOrder,
}

impl Encoder {
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    fn u32(&mut self, v: u32) {
        match self.order {
            ByteOrder::Little => self.bytes(&v.to_le_bytes()),
            ByteOrder::Big => self.bytes(&v.to_be_bytes()),
        }
    }

    fn u64(&mut self, v: u64) {
        match self.order {
            ByteOrder::Little => self.bytes(&v.to_le_bytes()),
            ByteOrder::Big => self.bytes(&v.to_be_bytes()),
        }
    }

    fn cksum(&mut self, c: &ZioCksum) {
        for word in c.0 {
            self.u64(word);
        }
    }
}

struct Decoder<'a> {
    buf: &'a [u8; DRR_RECORD_SIZE],
    pos: usize,
    order: ByteOrder,
}

impl Decoder<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        out
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    fn u8(&mut self) -> u8 {
        self.bytes(1)[0]
    }

    fn u32(&mut self) -> u32 {
        let raw: [u8; 4] = self.bytes(4).try_into().expect("4 bytes");
        match self.order {
            ByteOrder::Little => u32::from_le_bytes(raw),
            ByteOrder::Big => u32::from_be_bytes(raw),
        }
    }

    fn u64(&mut self) -> u64 {
        let raw: [u8; 8] = self.bytes(8).try_into().expect("8 bytes");
        match self.order {
            ByteOrder::Little => u64::from_le_bytes(raw),
            ByteOrder::Big => u64::from_be_bytes(raw),
        }
    }

    fn cksum(&mut self) -> ZioCksum {
        ZioCksum([self.u64(), self.u64(), self.u64(), self.u64()])
    }

    fn ddt_key(&mut self) -> DdtKey {
        DdtKey {
            cksum: self.cksum(),
            prop: self.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let mut begin = DrrBegin {
            creation_time: 0x6b06_7cd0,
            objset_type: 2,
            flags: DRR_FLAG_CLONE | DRR_FLAG_CI_DATA,
            toguid: 0xb6d9_8090_250c_9b68,
            fromguid: 0x1234,
            ..DrrBegin::default()
        };
        begin.set_features(DMU_BACKUP_FEATURE_DEDUP | DMU_BACKUP_FEATURE_DEDUPPROPS);
        begin.set_toname("fxp/small@s1");
        let key = DdtKey {
            cksum: ZioCksum([1, 2, 3, u64::MAX]),
            prop: DdtKey::make_prop(131072, 4096, 2),
        };
        vec![
            Record::Begin(Box::new(begin)),
            Record::Object(DrrObject {
                object: 31,
                object_type: 19,
                bonustype: 17,
                blksz: 512,
                bonuslen: 280,
                checksumtype: 7,
                compress: 2,
                toguid: 9,
            }),
            Record::FreeObjects(DrrFreeObjects {
                firstobj: 64,
                numobjs: 422_212_465_065_920,
                toguid: 9,
            }),
            Record::Write(DrrWrite {
                object: 5,
                object_type: 19,
                offset: 131072,
                length: 131072,
                toguid: 9,
                checksumtype: 8,
                checksumflags: DRR_CHECKSUM_DEDUP,
                key,
            }),
            Record::Free(DrrFree {
                object: 1,
                offset: 512,
                length: u64::MAX,
                toguid: 9,
            }),
            Record::WriteByref(DrrWriteByref {
                object: 6,
                offset: 0,
                length: 131072,
                toguid: 9,
                refguid: 9,
                refobject: 5,
                refoffset: 131072,
                checksumtype: 8,
                checksumflags: DRR_CHECKSUM_DEDUP,
                key,
            }),
            Record::Spill(DrrSpill {
                object: 7,
                length: 512,
                toguid: 9,
            }),
            Record::End(DrrEnd {
                checksum: ZioCksum([0xa341_d9e1_0c3c, 2, 3, 4]),
                toguid: 9,
            }),
        ]
    }

    #[test]
    fn every_record_round_trips_in_both_byte_orders() {
        for record in samples() {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let bytes = record.encode(order);
                assert_eq!(
                    Record::decode(&bytes, order),
                    Ok(record.clone()),
                    "{order:?}"
                );
                assert_eq!(Record::decode(&bytes, order).unwrap().encode(order), bytes);
            }
        }
    }

    #[test]
    fn backup_byteswap_turns_a_record_into_the_other_orders() {
        for record in samples() {
            let mut swapped = record.encode(ByteOrder::NATIVE.other());
            backup_byteswap(&mut swapped);
            assert_eq!(swapped, record.encode(ByteOrder::NATIVE), "{record:?}");
        }
        // An unknown type: only the header is swapped.
        let mut unknown = [0xa5; DRR_RECORD_SIZE];
        unknown[..8].copy_from_slice(&[0, 0, 0, 99, 0, 0, 0, 1]);
        backup_byteswap(&mut unknown);
        assert_eq!(&unknown[..8], &[99, 0, 0, 0, 1, 0, 0, 0]);
        assert!(unknown[8..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn big_endian_header_is_the_little_endian_one_with_each_field_reversed() {
        let record = &samples()[1];
        let le = record.encode(ByteOrder::Little);
        let be = record.encode(ByteOrder::Big);
        // drr_type, then drr_object.drr_object: each field reversed in place.
        assert_eq!(&le[0..4], &[1, 0, 0, 0]);
        assert_eq!(&be[0..4], &[0, 0, 0, 1]);
        let mut object = be[8..16].to_vec();
        object.reverse();
        assert_eq!(&le[8..16], &object[..]);
        // u8 fields are not swapped.
        assert_eq!(le[32..34], be[32..34]);
    }

    #[test]
    fn layout_matches_zfs_ioctl_h() {
        let Record::Write(w) = &samples()[3] else {
            unreachable!()
        };
        let bytes = Record::Write(w.clone()).encode(ByteOrder::Little);
        let u64_at = |off: usize| u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap());
        // drr_u starts at 8; drr_write: object@0 type@8 pad@12 offset@16
        // length@24 toguid@32 cksumtype@40 flags@41 pad2@42 key@48.
        assert_eq!(u64_at(8), 5);
        assert_eq!(u64_at(8 + 16), 131072);
        assert_eq!(u64_at(8 + 24), 131072);
        assert_eq!(bytes[8 + 40], 8);
        assert_eq!(bytes[8 + 41], DRR_CHECKSUM_DEDUP);
        assert_eq!(u64_at(8 + 48 + 24), u64::MAX);
        assert_eq!(u64_at(8 + 48 + 32), w.key.prop);

        let begin = samples()[0].encode(ByteOrder::Little);
        assert_eq!(
            u64::from_le_bytes(begin[8..16].try_into().unwrap()),
            DMU_BACKUP_MAGIC
        );
        // drr_toname is the last 256 bytes: the record ends with it.
        assert_eq!(&begin[56..56 + 12], b"fxp/small@s1");
        assert_eq!(56 + MAXNAMELEN, DRR_RECORD_SIZE);
    }

    #[test]
    fn versioninfo_and_ddt_key_fields() {
        let Record::Begin(b) = &samples()[0] else {
            unreachable!()
        };
        assert_eq!(b.hdrtype(), DMU_SUBSTREAM);
        assert_eq!(b.features(), 3);
        assert_eq!(b.versioninfo, 0xd);

        // "props = 200ff00ff" in zstreamdump: 128K logical and physical, off.
        let key = DdtKey {
            cksum: ZioCksum::ZERO,
            prop: 0x2_00ff_00ff,
        };
        assert_eq!(
            (key.lsize(), key.psize(), key.compress()),
            (131072, 131072, 2)
        );
        assert_eq!(DdtKey::make_prop(131072, 131072, 2), 0x2_00ff_00ff);
        assert_eq!(DdtKey::make_prop(512, 512, 2), 0x2_0000_0000);
    }

    #[test]
    fn unknown_types_are_refused_and_magic_tells_the_order() {
        let mut bytes = samples()[0].encode(ByteOrder::Big);
        assert_eq!(detect_byte_order(&bytes), Some(ByteOrder::Big));
        bytes[3] = 8;
        assert_eq!(
            Record::decode(&bytes, ByteOrder::Big),
            Err(DecodeError::UnknownType(8))
        );
        bytes[8] ^= 1;
        assert_eq!(detect_byte_order(&bytes), None);
    }

    #[test]
    fn toname_is_truncated_to_leave_room_for_its_nul() {
        let mut b = DrrBegin::default();
        b.set_toname(&"x".repeat(400));
        assert_eq!(b.toname_bytes().len(), MAXNAMELEN - 1);
        assert_eq!(b.toname[MAXNAMELEN - 1], 0);
    }
}
