//! A hostile (or buggy) sender: it rewrites one record of its own stream
//! into one that a correct receiver must refuse, and checksums what it
//! really sends, so the END checksum still vouches for the stream and the
//! mutation reaches the receiver's record validation instead of the
//! checksum.
//!
//! Fault model: once per transfer (at `hostile_probability`), a seed and a
//! count are drawn ([`HostileDraw`]); from the seed, one mutation of
//! [`Mutation`], drawn first so that each gets its share whatever the
//! streams are made of, which strikes the record that many after the first
//! one it applies to (none, if the stream ends first: then nothing
//! fired). A mutation changes one field to a
//! value the seed's `restore_*` (or the engine's own stricter rule, where
//! the seed trusts the field) must refuse, inserts or duplicates a record
//! where no record may stand, or puts a record before the one it depends
//! on. Each mutation is drawn only where its refusal is certain, whatever
//! the target holds, so the oracle is exact: the receive must be refused
//! with the mutation's errno, by the check that owns it ([`Refuser`]), in
//! an error that names the record and its byte offset, and the target must
//! be left as it was.
//!
//! [`HostileSender`] is a filter over the records a sender emits, one at a
//! time ([`HostileSender::record`]), with its own running fletcher-4 that
//! rewrites every END's checksum; [`HostileSender::rewrite`] runs it over a
//! whole buffered stream.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use engine::checksum::ZioCksum;
use engine::dmu::dnode::DN_MAX_OBJECT;
use engine::dmu::object_type::{
    DMU_BSWAP_NUMFUNCS, DMU_OT_BYTESWAP_MASK, DMU_OT_DNODE, DMU_OT_NEWTYPE, DMU_OT_NUMTYPES,
    DMU_OT_OBJSET,
};
use engine::dmu::objset::DMU_OST_NUMTYPES;
use engine::error::{Errno, Error};
use engine::stream::reader::{DN_MAX_BONUSLEN, SPA_MAXBLOCKSIZE, fold};
use engine::stream::{
    ByteOrder, DMU_BACKUP_FEATURE_MASK, DMU_BACKUP_MAGIC, DMU_COMPOUNDSTREAM, DRR_FLAG_CLONE,
    DRR_RECORD_SIZE, DrrEnd, DrrType, Record, detect_byte_order,
};
use engine::zio::compress::ZIO_COMPRESS_FUNCTIONS;
use engine::zio::{SPA_MINBLOCKSIZE, ZIO_CHECKSUM_FUNCTIONS};
use rand::{Rng, SeedableRng};

use super::records::RawRecords;
use rand_chacha::ChaCha8Rng;

/// Where a hostile transfer strikes and the seed of how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostileDraw {
    /// How many of the records the mutation applies to go out unchanged
    /// before the one it strikes.
    pub skip: u64,
    /// Seeds the choice of mutation and the values it writes.
    pub seed: u64,
}

/// The check that must refuse a mutation: the stream reader (framing,
/// lengths, types, the END checksum) or the receive's `restore_*` and
/// begin checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refuser {
    Reader,
    Receive,
}

impl Refuser {
    /// The engine source file its error sites are in.
    pub fn file(self) -> &'static str {
        match self {
            Refuser::Reader => "engine/src/stream/reader.rs",
            Refuser::Receive => "engine/src/recv.rs",
        }
    }
}

/// Every rewrite the hostile sender knows, by the record it strikes. The
/// doc of each says which rule refuses it; "zsim" marks a rule of the
/// engine's where the seed trusts the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mutation {
    /// BEGIN magic neither order's `DMU_BACKUP_MAGIC` (libzfs: "invalid
    /// stream (bad magic number)"): EINVAL.
    BeginBadMagic,
    /// A feature flag outside `DMU_BACKUP_FEATURE_MASK` (libzfs's
    /// `DMU_STREAM_SUPPORTED`): ENOTSUP.
    BeginUnknownFeature,
    /// `drr_type >= DMU_OST_NUMTYPES` (`dmu_recv_begin_check`): EINVAL.
    BeginObjsetType,
    /// A copy of the substream's BEGIN before a record inside it
    /// (`dmu_recv_stream`'s default case): EINVAL.
    BeginInsideStream,
    /// OBJECT for object 0, the meta-dnode (`dmu_object_info` fails with
    /// EINVAL in `restore_object`): EINVAL.
    ObjectNumberZero,
    /// OBJECT for an object at or past `DN_MAX_OBJECT` (idem): EINVAL.
    ObjectNumberTooLarge,
    /// `drr_type == DMU_OT_NONE` (`restore_object`): EINVAL.
    ObjectTypeNone,
    /// `!DMU_OT_IS_VALID(drr_type)` (`restore_object`): EINVAL.
    ObjectTypeInvalid,
    /// An object of type DNODE or OBJSET, which every traversal would read
    /// as the DMU's own structures (zsim): EINVAL.
    ObjectTypeDmu,
    /// `!DMU_OT_IS_VALID(drr_bonustype)` (`restore_object`): EINVAL.
    ObjectBonustypeInvalid,
    /// `drr_checksumtype >= ZIO_CHECKSUM_FUNCTIONS` (`restore_object`):
    /// EINVAL.
    ObjectChecksumType,
    /// `drr_compress >= ZIO_COMPRESS_FUNCTIONS` (`restore_object`): EINVAL.
    ObjectCompress,
    /// A block size that is not a multiple of `SPA_MINBLOCKSIZE`
    /// (`restore_object`): EINVAL.
    ObjectBlkszUnaligned,
    /// A block size of 0 (`restore_object`): EINVAL.
    ObjectBlkszZero,
    /// A block size past `SPA_MAXBLOCKSIZE` (`restore_object`): EINVAL.
    ObjectBlkszTooLarge,
    /// `drr_bonuslen > DN_MAX_BONUSLEN`, refused before the bonus is read
    /// (`restore_object`; the reader, before allocating): EINVAL.
    ObjectBonuslenTooLarge,
    /// `firstobj + numobjs` wraps (`restore_freeobjects`): EINVAL.
    FreeObjectsOverflow,
    /// `offset + length` wraps (`restore_write`): EINVAL.
    WriteOffsetOverflow,
    /// `!DMU_OT_IS_VALID(drr_type)` (`restore_write`): EINVAL.
    WriteTypeInvalid,
    /// A payload past `SPA_MAXBLOCKSIZE` (zsim: lengths are checked before
    /// anything is allocated; the seed overruns its buffer): EINVAL.
    WriteLengthTooLarge,
    /// A payload length that is not a multiple of 8 (the seed's
    /// `restore_read` asserts it; zsim refuses): EINVAL.
    WriteLengthUnaligned,
    /// WRITE past the end of an object whose one block has a size that is
    /// not a power of two, as the substream's OBJECT record set it (zsim:
    /// such an object has a single block; the seed asserts it): EINVAL.
    WriteBeyondSingleBlock,
    /// WRITE to an object that cannot exist: 0, past `DN_MAX_OBJECT`, or
    /// in a full substream one it has not created (`restore_write`):
    /// EINVAL.
    WriteNoSuchObject,
    /// `offset + length` wraps, length not `-1` (`restore_free`): EINVAL.
    FreeOverflow,
    /// FREE of an object that cannot exist (`restore_free`): EINVAL.
    FreeNoSuchObject,
    /// `offset + length` wraps (`restore_write_byref`): EINVAL.
    ByrefOverflow,
    /// A `drr_refguid` that is neither the stream's nor a snapshot received
    /// before it in the session (`restore_write_byref`'s guid map): EINVAL.
    ByrefUnknownGuid,
    /// WRITE_BYREF into an object that cannot exist (the seed's
    /// `dmu_tx_hold_write` on a missing dnode): ENOENT.
    ByrefNoSuchObject,
    /// SPILL shorter than `SPA_MINBLOCKSIZE`, with the bytes it claims
    /// (`restore_spill`): EINVAL.
    SpillTooShort,
    /// SPILL longer than `SPA_MAXBLOCKSIZE` (`restore_spill`; the reader,
    /// before allocating): EINVAL.
    SpillTooLong,
    /// SPILL for an object that cannot exist (`restore_spill`): EINVAL.
    SpillNoSuchObject,
    /// END whose checksum is not the stream's (`dmu_recv_stream`): ECKSUM.
    EndChecksum,
    /// A record of no known type before a record (`dmu_recv_stream`'s
    /// default case): EINVAL.
    UnknownType,
    /// An END with a valid checksum before a record inside the substream,
    /// so the record follows an END (zsim: nothing but a BEGIN or a
    /// compound stream's END may): EINVAL.
    EndTooEarly,
    /// A record sent again right after its substream's END (idem): EINVAL.
    RecordAfterEnd,
    /// In a full substream, an OBJECT record sent after the first record
    /// that writes to or frees its object, which therefore does not exist
    /// yet (`restore_write`, `restore_free`, `restore_spill`: EINVAL;
    /// `restore_write_byref`: ENOENT).
    ObjectAfterItsData,
}

impl Mutation {
    pub const ALL: [Mutation; 36] = [
        Mutation::BeginBadMagic,
        Mutation::BeginUnknownFeature,
        Mutation::BeginObjsetType,
        Mutation::BeginInsideStream,
        Mutation::ObjectNumberZero,
        Mutation::ObjectNumberTooLarge,
        Mutation::ObjectTypeNone,
        Mutation::ObjectTypeInvalid,
        Mutation::ObjectTypeDmu,
        Mutation::ObjectBonustypeInvalid,
        Mutation::ObjectChecksumType,
        Mutation::ObjectCompress,
        Mutation::ObjectBlkszUnaligned,
        Mutation::ObjectBlkszZero,
        Mutation::ObjectBlkszTooLarge,
        Mutation::ObjectBonuslenTooLarge,
        Mutation::FreeObjectsOverflow,
        Mutation::WriteOffsetOverflow,
        Mutation::WriteTypeInvalid,
        Mutation::WriteLengthTooLarge,
        Mutation::WriteLengthUnaligned,
        Mutation::WriteBeyondSingleBlock,
        Mutation::WriteNoSuchObject,
        Mutation::FreeOverflow,
        Mutation::FreeNoSuchObject,
        Mutation::ByrefOverflow,
        Mutation::ByrefUnknownGuid,
        Mutation::ByrefNoSuchObject,
        Mutation::SpillTooShort,
        Mutation::SpillTooLong,
        Mutation::SpillNoSuchObject,
        Mutation::EndChecksum,
        Mutation::UnknownType,
        Mutation::EndTooEarly,
        Mutation::RecordAfterEnd,
        Mutation::ObjectAfterItsData,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutation::BeginBadMagic => "begin-bad-magic",
            Mutation::BeginUnknownFeature => "begin-unknown-feature",
            Mutation::BeginObjsetType => "begin-objset-type",
            Mutation::BeginInsideStream => "begin-inside-stream",
            Mutation::ObjectNumberZero => "object-number-zero",
            Mutation::ObjectNumberTooLarge => "object-number-too-large",
            Mutation::ObjectTypeNone => "object-type-none",
            Mutation::ObjectTypeInvalid => "object-type-invalid",
            Mutation::ObjectTypeDmu => "object-type-dmu",
            Mutation::ObjectBonustypeInvalid => "object-bonustype-invalid",
            Mutation::ObjectChecksumType => "object-checksum-type",
            Mutation::ObjectCompress => "object-compress",
            Mutation::ObjectBlkszUnaligned => "object-blksz-unaligned",
            Mutation::ObjectBlkszZero => "object-blksz-zero",
            Mutation::ObjectBlkszTooLarge => "object-blksz-too-large",
            Mutation::ObjectBonuslenTooLarge => "object-bonuslen-too-large",
            Mutation::FreeObjectsOverflow => "freeobjects-overflow",
            Mutation::WriteOffsetOverflow => "write-offset-overflow",
            Mutation::WriteTypeInvalid => "write-type-invalid",
            Mutation::WriteLengthTooLarge => "write-length-too-large",
            Mutation::WriteLengthUnaligned => "write-length-unaligned",
            Mutation::WriteBeyondSingleBlock => "write-beyond-single-block",
            Mutation::WriteNoSuchObject => "write-no-such-object",
            Mutation::FreeOverflow => "free-overflow",
            Mutation::FreeNoSuchObject => "free-no-such-object",
            Mutation::ByrefOverflow => "byref-overflow",
            Mutation::ByrefUnknownGuid => "byref-unknown-guid",
            Mutation::ByrefNoSuchObject => "byref-no-such-object",
            Mutation::SpillTooShort => "spill-too-short",
            Mutation::SpillTooLong => "spill-too-long",
            Mutation::SpillNoSuchObject => "spill-no-such-object",
            Mutation::EndChecksum => "end-checksum",
            Mutation::UnknownType => "unknown-type",
            Mutation::EndTooEarly => "end-too-early",
            Mutation::RecordAfterEnd => "record-after-end",
            Mutation::ObjectAfterItsData => "object-after-its-data",
        }
    }

    /// The errno the receiver must refuse it with (for
    /// [`Mutation::ObjectAfterItsData`], when the record that overtakes the
    /// OBJECT is not a WRITE_BYREF).
    pub fn errno(self) -> Errno {
        match self {
            Mutation::BeginUnknownFeature => Errno::ENOTSUP,
            Mutation::ByrefNoSuchObject => Errno::ENOENT,
            Mutation::EndChecksum => Errno::ECKSUM,
            _ => Errno::EINVAL,
        }
    }

    /// The check that must refuse it (for a BEGIN of a later substream,
    /// the reader refuses a bad magic too).
    pub fn refuser(self) -> Refuser {
        match self {
            Mutation::BeginBadMagic
            | Mutation::BeginInsideStream
            | Mutation::ObjectBonuslenTooLarge
            | Mutation::WriteLengthTooLarge
            | Mutation::WriteLengthUnaligned
            | Mutation::SpillTooLong
            | Mutation::EndChecksum
            | Mutation::UnknownType
            | Mutation::EndTooEarly
            | Mutation::RecordAfterEnd => Refuser::Reader,
            _ => Refuser::Receive,
        }
    }

    /// How the check that must refuse it begins its reason: the oracle
    /// tells the check the seed puts first from a later one that refuses
    /// the same field only after something acted on it.
    pub fn because(self) -> &'static [&'static str] {
        use Mutation::*;
        match self {
            BeginBadMagic => &[
                "invalid stream (bad magic number)",
                "garbage after END record (bad magic number",
            ],
            BeginUnknownFeature => &["stream has unsupported feature flags"],
            BeginObjsetType => &["cannot receive hdrtype"],
            BeginInsideStream => &["BEGIN record inside a stream"],
            ObjectNumberZero | ObjectNumberTooLarge => &["object number"],
            ObjectTypeNone
            | ObjectTypeInvalid
            | ObjectTypeDmu
            | ObjectBonustypeInvalid
            | ObjectChecksumType
            | ObjectCompress
            | ObjectBlkszUnaligned
            | ObjectBlkszZero
            | ObjectBlkszTooLarge => &["invalid OBJECT"],
            ObjectBonuslenTooLarge => &["bonuslen"],
            FreeObjectsOverflow => &["FREEOBJECTS"],
            WriteOffsetOverflow | WriteTypeInvalid => &["invalid WRITE"],
            WriteLengthTooLarge | WriteLengthUnaligned | SpillTooLong => &["payload length"],
            WriteBeyondSingleBlock => &["WRITE past the single"],
            WriteNoSuchObject => &["WRITE to object"],
            FreeOverflow => &["FREE "],
            FreeNoSuchObject => &["FREE of object"],
            ByrefOverflow => &["WRITE_BYREF offset + length overflows"],
            ByrefUnknownGuid => &["WRITE_BYREF to unknown guid"],
            ByrefNoSuchObject => &["WRITE_BYREF to object"],
            SpillTooShort => &["SPILL of"],
            SpillNoSuchObject => &["SPILL for object"],
            EndChecksum => &["checksum mismatch"],
            UnknownType => &[
                "invalid stream (bad magic number)",
                "unknown record type",
                "garbage after END record (unknown record type",
            ],
            EndTooEarly | RecordAfterEnd => &["garbage after END record"],
            ObjectAfterItsData => &[
                "WRITE to object",
                "FREE of object",
                "SPILL for object",
                "WRITE_BYREF to object",
            ],
        }
    }

    /// The record type it strikes (for insertions, the record it goes
    /// before or after).
    fn strikes(self, t: DrrType) -> bool {
        use Mutation::*;
        match self {
            BeginBadMagic | BeginUnknownFeature | BeginObjsetType => t == DrrType::Begin,
            BeginInsideStream => t != DrrType::Begin,
            ObjectNumberZero
            | ObjectNumberTooLarge
            | ObjectTypeNone
            | ObjectTypeInvalid
            | ObjectTypeDmu
            | ObjectBonustypeInvalid
            | ObjectChecksumType
            | ObjectCompress
            | ObjectBlkszUnaligned
            | ObjectBlkszZero
            | ObjectBlkszTooLarge
            | ObjectBonuslenTooLarge
            | ObjectAfterItsData => t == DrrType::Object,
            FreeObjectsOverflow => t == DrrType::FreeObjects,
            WriteOffsetOverflow
            | WriteTypeInvalid
            | WriteLengthTooLarge
            | WriteLengthUnaligned
            | WriteBeyondSingleBlock
            | WriteNoSuchObject => t == DrrType::Write,
            FreeOverflow | FreeNoSuchObject => t == DrrType::Free,
            ByrefOverflow | ByrefUnknownGuid | ByrefNoSuchObject => t == DrrType::WriteByref,
            SpillTooShort | SpillTooLong | SpillNoSuchObject => t == DrrType::Spill,
            EndChecksum => t == DrrType::End,
            UnknownType => true,
            EndTooEarly | RecordAfterEnd => t != DrrType::Begin && t != DrrType::End,
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mutation the sender made: what the receiver must refuse, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub mutation: Mutation,
    /// The index and byte offset, in what was sent, of the record the
    /// receiver must refuse.
    pub index: u64,
    pub offset: u64,
    /// Its type; `None` for a record of no known type.
    pub drr_type: Option<DrrType>,
    pub errno: Errno,
    pub refuser: Refuser,
    /// How the refusing check's reason begins.
    pub because: &'static [&'static str],
    /// What was changed, for the trace.
    pub detail: String,
}

impl Applied {
    /// How the receiver's error must name the record.
    pub fn names(&self) -> String {
        match self.drr_type {
            Some(t) => format!("record {} ({t}) at byte offset {}", self.index, self.offset),
            None => format!("record {} at byte offset {}", self.index, self.offset),
        }
    }

    /// Whether `e` is the refusal this mutation must get: its errno, from
    /// its check, naming its record.
    pub fn judge(&self, e: &Error) -> Result<(), String> {
        let mut wrong = Vec::new();
        if e.errno() != self.errno {
            wrong.push(format!("errno {} instead of {}", e.errno(), self.errno));
        }
        if !e.site().file.ends_with(self.refuser.file()) {
            wrong.push(format!(
                "refused at {}:{}, not by a check in {}",
                e.site().file,
                e.site().line,
                self.refuser.file()
            ));
        }
        let named = format!("{}: ", self.names());
        match e.reason().find(&named) {
            None => wrong.push(format!("the error does not name {}", self.names())),
            Some(at) => {
                let why = &e.reason()[at + named.len()..];
                if !self.because.iter().any(|b| why.starts_with(b)) {
                    wrong.push(format!(
                        "refused by another check than the one that begins {:?}",
                        self.because
                    ));
                }
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}: {}, must be refused with {} by {}",
            self.mutation,
            self.names(),
            self.detail,
            self.errno,
            self.refuser.file()
        )
    }
}

/// What a record carries through the filter: its header bytes and
/// payload, as they go on the wire.
struct Wire {
    header: [u8; DRR_RECORD_SIZE],
    payload: Vec<u8>,
}

/// A record the filter must put in the stream later.
enum Deferred {
    /// Sent again right after the next END.
    AfterEnd(Wire, Mutation),
    /// An OBJECT held back until the next record, which goes before it
    /// when it writes to or frees the same object.
    Object(Wire, u64),
}

/// The sender's side of a hostile transfer: every record the sender emits
/// goes through [`HostileSender::record`], which writes what is really
/// sent.
pub struct HostileSender {
    rng: ChaCha8Rng,
    order: Option<ByteOrder>,
    /// Records and bytes really sent.
    out_index: u64,
    out_offset: u64,
    /// Fletcher-4 of what was sent in the current substream.
    cksum: ZioCksum,
    /// The current substream's BEGIN, as sent.
    begin: Option<[u8; DRR_RECORD_SIZE]>,
    toguid: u64,
    /// Whether the current substream is a full one (into a new, empty
    /// objset), and the objects its OBJECT records created so far.
    full: bool,
    created: BTreeSet<u64>,
    /// The block size each OBJECT record of the substream set.
    blksz: BTreeMap<u64, u32>,
    /// The guids of every substream so far: the receiver's guid map holds
    /// no other.
    guids: BTreeSet<u64>,
    /// The mutations it may draw.
    allowed: Vec<Mutation>,
    /// The mutation drawn (at the first record, from the seed).
    chosen: Option<Mutation>,
    /// Records it applies to still to let through.
    skip: u64,
    /// Still looking for the record to strike.
    armed: bool,
    deferred: Option<Deferred>,
    /// The next END's checksum is to be wrong.
    spoil_end: bool,
    /// The last BEGIN was a compound stream's header, and whether an END
    /// came after the last BEGIN: records outside a kernel substream
    /// (a replication header, its END, the closing END) face only the
    /// checks libzfs makes of any BEGIN (magic, feature flags).
    compound: bool,
    ended: bool,
    /// A replication header came: a clone's BEGIN is then first checked
    /// for its local origin, found by guid (ENOENT if the target lacks
    /// it), before the kernel's checks.
    replication: bool,
    applied: Option<Applied>,
}

impl HostileSender {
    pub fn new(draw: HostileDraw) -> HostileSender {
        HostileSender {
            rng: ChaCha8Rng::seed_from_u64(draw.seed),
            order: None,
            out_index: 0,
            out_offset: 0,
            cksum: ZioCksum::ZERO,
            begin: None,
            toguid: 0,
            full: false,
            created: BTreeSet::new(),
            blksz: BTreeMap::new(),
            guids: BTreeSet::new(),
            allowed: Mutation::ALL.to_vec(),
            chosen: None,
            skip: draw.skip,
            armed: true,
            deferred: None,
            spoil_end: false,
            compound: false,
            ended: false,
            replication: false,
            applied: None,
        }
    }

    /// Draws only among `allowed` (a test aims one mutation this way).
    pub fn restricted_to(mut self, allowed: &[Mutation]) -> HostileSender {
        self.allowed = allowed.to_vec();
        self
    }

    /// The mutation made, once the sender has sent it.
    pub fn applied(&self) -> Option<&Applied> {
        self.applied.as_ref()
    }

    /// Runs the filter over a whole stream as the sender wrote it; a
    /// trailing partial record (a sender killed mid-record) goes out as is.
    pub fn rewrite(&mut self, stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(stream.len() + DRR_RECORD_SIZE);
        let mut records = RawRecords::new(stream, self.order);
        for r in records.by_ref() {
            self.record(r.header, r.payload, &mut out);
        }
        self.finish(&mut out);
        out.extend_from_slice(records.rest());
        out
    }

    /// One record as the sender emits it (its header and its payload, in
    /// the stream's byte order): appends to `out` what is really sent.
    pub fn record(&mut self, header: &[u8; DRR_RECORD_SIZE], payload: &[u8], out: &mut Vec<u8>) {
        let order = match self.order.or_else(|| detect_byte_order(header)) {
            Some(order) => order,
            None => {
                // Not a stream this filter understands: pass it on.
                out.extend_from_slice(header);
                out.extend_from_slice(payload);
                return;
            }
        };
        self.order = Some(order);
        let Ok(record) = Record::decode(header, order) else {
            out.extend_from_slice(header);
            out.extend_from_slice(payload);
            return;
        };
        let wire = Wire {
            header: *header,
            payload: payload.to_vec(),
        };
        if matches!(self.deferred, Some(Deferred::Object(..)))
            && let Some(Deferred::Object(held, object)) = self.deferred.take()
        {
            if self.is_data_of(&record, object) {
                let (errno, what) = match record.drr_type() {
                    DrrType::WriteByref => (Errno::ENOENT, "WRITE_BYREF"),
                    t => (Errno::EINVAL, t.name()),
                };
                self.mark(
                    Mutation::ObjectAfterItsData,
                    Some(record.drr_type()),
                    errno,
                    format!("the OBJECT record of object {object} sent after its first {what}"),
                );
                self.send(wire, &record, out);
                self.send_decoded(held, out);
                return;
            }
            // Not the record it depends on: send both as they were, and
            // look for the next record to strike.
            self.armed = true;
            self.send_decoded(held, out);
        }
        if let Record::Begin(b) = &record {
            self.begin = Some(*header);
            self.toguid = b.toguid;
            self.full = b.fromguid == 0 && b.flags & DRR_FLAG_CLONE == 0;
            self.created.clear();
            self.blksz.clear();
            self.guids.insert(b.toguid);
            self.compound = b.hdrtype() == DMU_COMPOUNDSTREAM;
            self.replication |= self.compound && b.payloadlen != 0;
            self.ended = false;
        }
        let outside = self.compound || self.ended;
        if matches!(record, Record::End(_)) {
            self.ended = true;
        }
        if self.armed && !self.allowed.is_empty() {
            let m = *self
                .chosen
                .get_or_insert_with(|| self.allowed[self.rng.gen_range(0..self.allowed.len())]);
            let checked =
                !outside || matches!(m, Mutation::BeginBadMagic | Mutation::BeginUnknownFeature);
            if m.strikes(record.drr_type()) && checked && self.applies(m, &record) {
                if self.skip > 0 {
                    self.skip -= 1;
                } else {
                    self.armed = false;
                    self.strike(m, wire, record, order, out);
                    return;
                }
            }
        }
        self.send(wire, &record, out);
    }

    /// The end of the sender's output: a held-back record goes out as it
    /// was (no END came for a record to follow).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(Deferred::Object(held, _)) = self.deferred.take() {
            self.send_decoded(held, out);
        }
        // A record to send again after an END that never came: not sent.
    }

    /// Whether `m` is certain to be refused at this record.
    fn applies(&self, m: Mutation, record: &Record) -> bool {
        match (m, record) {
            (Mutation::WriteOffsetOverflow, Record::Write(w)) => w.length > 0,
            (Mutation::WriteBeyondSingleBlock, Record::Write(w)) => {
                w.length > 0
                    && self
                        .blksz
                        .get(&w.object)
                        .is_some_and(|b| !b.is_power_of_two())
            }
            (Mutation::ByrefOverflow, Record::WriteByref(w)) => w.length > 0,
            (Mutation::FreeOverflow, Record::Free(_)) => true,
            (Mutation::ObjectAfterItsData, Record::Object(_)) => self.full,
            (Mutation::BeginInsideStream, _) => self.begin.is_some(),
            (Mutation::BeginObjsetType, Record::Begin(b)) => {
                !(self.replication && b.flags & DRR_FLAG_CLONE != 0)
            }
            _ => true,
        }
    }

    /// Whether `record` writes to or frees `object` (so it needs it).
    fn is_data_of(&self, record: &Record, object: u64) -> bool {
        match record {
            Record::Write(w) => w.object == object,
            Record::Free(f) => f.object == object,
            Record::Spill(s) => s.object == object,
            Record::WriteByref(w) => w.object == object,
            _ => false,
        }
    }

    /// An object number no object of the target can have: 0, past
    /// `DN_MAX_OBJECT`, or in a full substream one it has not created.
    fn no_such_object(&mut self) -> u64 {
        let kinds = if self.full { 3 } else { 2 };
        match self.rng.gen_range(0..kinds) {
            0 => 0,
            1 => self.rng.gen_range(DN_MAX_OBJECT..=u64::MAX),
            _ => loop {
                let o = self.rng.gen_range(1..DN_MAX_OBJECT);
                if !self.created.contains(&o) {
                    break o;
                }
            },
        }
    }

    /// A type `DMU_OT_IS_VALID` refuses: past the legacy table, or a new
    /// type whose byteswap function does not exist.
    fn invalid_type(&mut self) -> u32 {
        if self.rng.gen_bool(0.5) {
            self.rng.gen_range(DMU_OT_NUMTYPES..DMU_OT_NEWTYPE)
        } else {
            let class = self
                .rng
                .gen_range(DMU_BSWAP_NUMFUNCS..=DMU_OT_BYTESWAP_MASK);
            DMU_OT_NEWTYPE | class | if self.rng.gen_bool(0.5) { 0x40 } else { 0 }
        }
    }

    /// `offset` such that `offset + length` wraps, `length > 0`.
    fn wrapping_offset(&mut self, length: u64) -> u64 {
        self.rng.gen_range((u64::MAX - length + 1)..=u64::MAX)
    }

    fn strike(
        &mut self,
        m: Mutation,
        mut wire: Wire,
        mut record: Record,
        order: ByteOrder,
        out: &mut Vec<u8>,
    ) {
        let t = record.drr_type();
        let detail = match (&mut record, m) {
            // Insertions and moves first: they strike any record type.
            (Record::End(_), Mutation::EndChecksum) => {
                self.spoil_end = true;
                self.mark(m, Some(t), m.errno(), "a checksum one off".to_string());
                self.send(wire, &record, out);
                return;
            }
            (_, Mutation::UnknownType) => {
                let drr_type = self.rng.gen_range(DrrType::COUNT as u32..=u32::MAX);
                let mut inserted = [0u8; DRR_RECORD_SIZE];
                inserted[..4].copy_from_slice(&match order {
                    ByteOrder::Little => drr_type.to_le_bytes(),
                    ByteOrder::Big => drr_type.to_be_bytes(),
                });
                self.mark(
                    m,
                    None,
                    m.errno(),
                    format!("record type {drr_type} inserted"),
                );
                self.send_raw(&inserted, &[], out);
                self.send(wire, &record, out);
                return;
            }
            (_, Mutation::BeginInsideStream) => {
                let begin = self.begin.expect("applies() checked");
                self.mark(
                    m,
                    Some(DrrType::Begin),
                    m.errno(),
                    format!("the substream's BEGIN sent again before a {t}"),
                );
                self.send_raw(&begin, &[], out);
                self.send(wire, &record, out);
                return;
            }
            (_, Mutation::EndTooEarly) => {
                let end = Record::End(DrrEnd {
                    checksum: ZioCksum::ZERO,
                    toguid: self.toguid,
                });
                self.send(
                    Wire {
                        header: end.encode(order),
                        payload: Vec::new(),
                    },
                    &end,
                    out,
                );
                self.mark(
                    m,
                    Some(t),
                    m.errno(),
                    format!("an END sent before this {t}"),
                );
                self.send(wire, &record, out);
                return;
            }
            (_, Mutation::RecordAfterEnd) => {
                let copy = Wire {
                    header: wire.header,
                    payload: wire.payload.clone(),
                };
                self.deferred = Some(Deferred::AfterEnd(copy, m));
                self.send(wire, &record, out);
                return;
            }
            (Record::Begin(b), Mutation::BeginBadMagic) => {
                let magic = loop {
                    let v: u64 = self.rng.r#gen();
                    if v != DMU_BACKUP_MAGIC && v != DMU_BACKUP_MAGIC.swap_bytes() {
                        break v;
                    }
                };
                b.magic = magic;
                format!("magic {magic:#x}")
            }
            (Record::Begin(b), Mutation::BeginUnknownFeature) => {
                let unknown = loop {
                    let bit = 1u64 << self.rng.gen_range(0..30);
                    if bit & DMU_BACKUP_FEATURE_MASK == 0 {
                        break bit;
                    }
                };
                b.set_features(b.features() | unknown);
                format!("feature flags {:#x}", b.features())
            }
            (Record::Begin(b), Mutation::BeginObjsetType) => {
                b.objset_type = self.rng.gen_range(DMU_OST_NUMTYPES as u32..=u32::MAX);
                format!("objset type {}", b.objset_type)
            }
            (Record::Object(o), m) => {
                let before = o.clone();
                match m {
                    Mutation::ObjectNumberZero => o.object = 0,
                    Mutation::ObjectNumberTooLarge => {
                        o.object = self.rng.gen_range(DN_MAX_OBJECT..=u64::MAX);
                    }
                    Mutation::ObjectTypeNone => o.object_type = 0,
                    Mutation::ObjectTypeInvalid => o.object_type = self.invalid_type(),
                    Mutation::ObjectTypeDmu => {
                        o.object_type = if self.rng.gen_bool(0.5) {
                            DMU_OT_DNODE
                        } else {
                            DMU_OT_OBJSET
                        };
                    }
                    Mutation::ObjectBonustypeInvalid => o.bonustype = self.invalid_type(),
                    Mutation::ObjectChecksumType => {
                        o.checksumtype = self.rng.gen_range(ZIO_CHECKSUM_FUNCTIONS..=u8::MAX);
                    }
                    Mutation::ObjectCompress => {
                        o.compress = self.rng.gen_range(ZIO_COMPRESS_FUNCTIONS..=u8::MAX);
                    }
                    Mutation::ObjectBlkszUnaligned => {
                        let min = SPA_MINBLOCKSIZE as u32;
                        o.blksz = loop {
                            let b = self.rng.gen_range(1..=SPA_MAXBLOCKSIZE as u32);
                            if b % min != 0 {
                                break b;
                            }
                        };
                    }
                    Mutation::ObjectBlkszZero => o.blksz = 0,
                    Mutation::ObjectBlkszTooLarge => {
                        let min = SPA_MINBLOCKSIZE as u32;
                        let sectors = self
                            .rng
                            .gen_range((SPA_MAXBLOCKSIZE as u32 / min + 1)..=(u32::MAX / min));
                        o.blksz = sectors * min;
                    }
                    Mutation::ObjectBonuslenTooLarge => {
                        o.bonuslen = self.rng.gen_range((DN_MAX_BONUSLEN as u32 + 1)..=u32::MAX);
                    }
                    Mutation::ObjectAfterItsData => {
                        self.deferred = Some(Deferred::Object(wire, o.object));
                        self.created.insert(o.object);
                        return;
                    }
                    _ => unreachable!("{m} strikes OBJECT records only when listed"),
                }
                format!("{before:?} sent as {o:?}")
            }
            (Record::FreeObjects(f), Mutation::FreeObjectsOverflow) => {
                f.firstobj = self.rng.gen_range(1..=u64::MAX);
                f.numobjs = self.rng.gen_range((u64::MAX - f.firstobj + 1)..=u64::MAX);
                format!("firstobj {} numobjs {}", f.firstobj, f.numobjs)
            }
            (Record::Write(w), m) => {
                match m {
                    Mutation::WriteOffsetOverflow => w.offset = self.wrapping_offset(w.length),
                    Mutation::WriteTypeInvalid => w.object_type = self.invalid_type(),
                    Mutation::WriteLengthTooLarge => {
                        w.length = self.rng.gen_range((SPA_MAXBLOCKSIZE / 8 + 1)..=(1 << 40)) * 8;
                    }
                    Mutation::WriteLengthUnaligned => {
                        w.length = loop {
                            let l = self.rng.gen_range(1..=SPA_MAXBLOCKSIZE);
                            if l % 8 != 0 {
                                break l;
                            }
                        };
                    }
                    Mutation::WriteBeyondSingleBlock => {
                        let blksz = u64::from(self.blksz[&w.object]);
                        let first = (blksz + 1).saturating_sub(w.length);
                        w.offset = self.rng.gen_range(first..=(1 << 40));
                    }
                    Mutation::WriteNoSuchObject => w.object = self.no_such_object(),
                    _ => unreachable!("{m} strikes WRITE records only when listed"),
                }
                format!(
                    "object {} type {} offset {} length {}",
                    w.object, w.object_type, w.offset, w.length
                )
            }
            (Record::Free(f), m) => {
                match m {
                    Mutation::FreeOverflow => {
                        f.offset = self.rng.gen_range(2..=u64::MAX);
                        f.length = self.rng.gen_range((u64::MAX - f.offset + 1)..u64::MAX);
                    }
                    Mutation::FreeNoSuchObject => f.object = self.no_such_object(),
                    _ => unreachable!("{m} strikes FREE records only when listed"),
                }
                format!(
                    "object {} offset {} length {}",
                    f.object, f.offset, f.length
                )
            }
            (Record::WriteByref(w), m) => {
                match m {
                    Mutation::ByrefOverflow => w.offset = self.wrapping_offset(w.length),
                    Mutation::ByrefUnknownGuid => {
                        w.refguid = loop {
                            let g: u64 = self.rng.r#gen();
                            if g != w.toguid && !self.guids.contains(&g) {
                                break g;
                            }
                        };
                    }
                    Mutation::ByrefNoSuchObject => w.object = self.no_such_object(),
                    _ => unreachable!("{m} strikes WRITE_BYREF records only when listed"),
                }
                format!(
                    "object {} offset {} length {} refguid {:#x}",
                    w.object, w.offset, w.length, w.refguid
                )
            }
            (Record::Spill(s), m) => {
                match m {
                    Mutation::SpillTooShort => {
                        s.length = self.rng.gen_range(1..SPA_MINBLOCKSIZE / 8) * 8;
                        wire.payload.truncate(s.length as usize);
                    }
                    Mutation::SpillTooLong => {
                        s.length = self.rng.gen_range((SPA_MAXBLOCKSIZE / 8 + 1)..=(1 << 40)) * 8;
                    }
                    Mutation::SpillNoSuchObject => s.object = self.no_such_object(),
                    _ => unreachable!("{m} strikes SPILL records only when listed"),
                }
                format!("object {} length {}", s.object, s.length)
            }
            (_, m) => unreachable!("{m} does not strike a {t}"),
        };
        wire.header = record.encode(order);
        // A first BEGIN without the magic leaves the reader no byte order
        // to decode its type in.
        let named = if m == Mutation::BeginBadMagic && self.out_index == 0 {
            None
        } else {
            Some(t)
        };
        self.mark(m, named, m.errno(), detail);
        self.send(wire, &record, out);
    }

    /// Records the mutation as made at the next record sent.
    fn mark(
        &mut self,
        mutation: Mutation,
        drr_type: Option<DrrType>,
        errno: Errno,
        detail: String,
    ) {
        self.applied = Some(Applied {
            mutation,
            index: self.out_index,
            offset: self.out_offset,
            drr_type,
            errno,
            refuser: mutation.refuser(),
            because: mutation.because(),
            detail,
        });
    }

    fn send_decoded(&mut self, wire: Wire, out: &mut Vec<u8>) {
        let order = self.order.expect("known once a record was decoded");
        match Record::decode(&wire.header, order) {
            Ok(record) => self.send(wire, &record, out),
            Err(_) => self.send_raw(&wire.header, &wire.payload, out),
        }
    }

    /// Sends a record; an END gets the checksum of what this substream
    /// really sent.
    fn send(&mut self, mut wire: Wire, record: &Record, out: &mut Vec<u8>) {
        let Record::End(end) = record else {
            if let Record::Object(o) = record {
                self.created.insert(o.object);
                self.blksz.insert(o.object, o.blksz);
            }
            self.send_raw(&wire.header, &wire.payload, out);
            return;
        };
        let mut checksum = self.cksum;
        if std::mem::take(&mut self.spoil_end) {
            checksum.0[0] = checksum.0[0].wrapping_add(1);
        }
        let order = self.order.expect("known once a record was decoded");
        wire.header = Record::End(DrrEnd {
            checksum,
            toguid: end.toguid,
        })
        .encode(order);
        self.send_raw(&wire.header, &wire.payload, out);
        self.cksum = ZioCksum::ZERO;
        if let Some(Deferred::AfterEnd(copy, m)) = self.deferred.take() {
            let t = Record::decode(&copy.header, order)
                .map(|r| r.drr_type())
                .ok();
            self.mark(
                m,
                t,
                m.errno(),
                "the record sent again after its substream's END".to_string(),
            );
            self.send_raw(&copy.header, &copy.payload, out);
            self.cksum = ZioCksum::ZERO;
        }
    }

    fn send_raw(&mut self, header: &[u8; DRR_RECORD_SIZE], payload: &[u8], out: &mut Vec<u8>) {
        let order = self.order.unwrap_or(ByteOrder::NATIVE);
        fold(&mut self.cksum, header, order);
        fold(&mut self.cksum, payload, order);
        out.extend_from_slice(header);
        out.extend_from_slice(payload);
        self.out_index += 1;
        self.out_offset += (DRR_RECORD_SIZE + payload.len()) as u64;
    }
}
