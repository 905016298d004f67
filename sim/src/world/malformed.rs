//! A sender whose stream is well formed but whose ZPL content is not: it
//! rewrites one directory ZAP block, master node or znode of the stream so
//! that the receive accepts it (ZFS's receive checks records, never what a
//! directory or a znode holds) and a reader of the received filesystem
//! must refuse it. The END checksum is recomputed, as a buggy or hostile
//! sender's own would be.
//!
//! This is how the simulation reaches the ZAP reader's and the ZPL
//! walker's checks: a well-formed workload never writes what they refuse.
//! Each [`Malformation`] is drawn only where one check is certain to
//! refuse it, so the oracle is exact: the received objects must hold the
//! rewritten bytes (the model is patched with the same [`Edit`]), and a
//! walk of the received snapshot must be refused with the malformation's
//! errno, by its check ([`WalkRefusal`]), naming its object. The runner
//! then destroys what the receive made, as an operator destroys a backup
//! found corrupt, and the target must be as it was.
//!
//! Only streams of one substream in the sender's native byte order, without
//! dedup, are rewritten: a foreign-order block is swapped by a receiver
//! that reads its block type first, a dedup stream copies the block to
//! other places, and what the runner destroys must be all the receive made.

use std::collections::BTreeMap;
use std::fmt;

use engine::checksum::ZioCksum;
use engine::dmu::dnode::DN_MAX_BONUSLEN;
use engine::dmu::object_type::DMU_OT_PACKED_NVLIST_SIZE;
use engine::error::Errno;
use engine::stream::reader::fold;
use engine::stream::{ByteOrder, DMU_COMPOUNDSTREAM, DrrEnd, Record};
use engine::zap::{
    CHAIN_END, MZAP_ENT_LEN, MZAP_NAME_LEN, ZAP_CHUNK_ARRAY, ZAP_CHUNK_ENTRY, ZAP_CHUNK_FREE,
    ZAP_LEAF_ARRAY_BYTES, ZAP_LEAF_CHUNKSIZE, ZAP_LEAF_HEADER_SIZE, ZAP_LEAF_MAGIC, ZAP_MAGIC,
    ZAP_MAXVALUELEN, ZBT_HEADER, ZBT_LEAF, ZBT_MICRO,
};
use engine::zpl::{
    DMU_OT_DIRECTORY_CONTENTS, DMU_OT_MASTER_NODE, DMU_OT_PLAIN_FILE_CONTENTS, DMU_OT_SA,
    DMU_OT_ZNODE, MASTER_NODE_OBJ, MAX_XATTR_VALUE, MAXPATHLEN, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
    ZFS_ROOT_OBJ, ZNODE_PHYS_SIZE, ZPL_VERSION_SA, ZPL_VERSION_STR,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scenarios::model::WalkRefusal;

use super::records::RawRecords;

/// Where a malformed transfer strikes and the seed of how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedDraw {
    /// How many of the records the malformation applies to go out
    /// unchanged before the one it strikes.
    pub skip: u64,
    pub seed: u64,
}

/// Every rewrite the sender knows. The ZAP ones strike a block of a
/// directory or of the master node; the others a directory entry, the
/// master node's entries or a znode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Malformation {
    /// Block 0's first word is neither a microzap's nor a fat header's.
    ZapBlockType,
    /// A microzap entry's name fills its 50 bytes: no NUL.
    ZapMicroNoNul,
    /// Two microzap entries with one name.
    ZapMicroDuplicate,
    /// A fat ZAP header without its magic.
    ZapFatMagic,
    /// A fat header counting one leaf more than its pointer table reaches.
    ZapFatLeafCount,
    /// A fat header counting more entries than its leaves hold.
    ZapFatEntryCount,
    /// The embedded pointer table's first entry points to block 0.
    ZapFatPointer,
    /// A leaf block without its magic.
    ZapLeafMagic,
    /// A leaf chunk of no known type.
    ZapLeafChunkType,
    /// A leaf header counting one entry more than its chunks hold.
    ZapLeafEntryCount,
    /// A leaf entry whose values are 3 (or another odd number of) bytes.
    ZapLeafValueIntlen,
    /// A hash bucket that starts past the leaf's chunks.
    ZapLeafHashChain,
    /// The embedded pointer table claims more index bits than it has room.
    ZapFatTableShift,
    /// One pointer of the embedded table moved to another leaf.
    ZapFatPointerRun,
    /// A leaf block whose block type is not a leaf's.
    ZapLeafBlockType,
    /// A leaf whose hash prefix is longer than any pointer table.
    ZapLeafPrefix,
    /// A hash bucket that starts at an array chunk.
    ZapLeafChainToArray,
    /// An entry chunk whose hash chain comes back to it.
    ZapLeafChainLoop,
    /// An entry whose hash puts it in another bucket.
    ZapLeafEntryHash,
    /// An entry with a name of no bytes.
    ZapLeafNameEmpty,
    /// An entry with a value longer than `ZAP_MAXVALUELEN`.
    ZapLeafValueLong,
    /// An entry whose stored name lost its terminating NUL.
    ZapLeafNameNoNul,
    /// A name's array chain that ends before the name does.
    ZapLeafArrayShort,
    /// A name's array chain that goes on after the name ends.
    ZapLeafArrayLong,
    /// A name's array chain that starts at the entry chunk itself.
    ZapLeafArrayNotArray,
    /// A value's array chain that is the name's.
    ZapLeafArrayShared,
    /// A directory entry whose value is 4 bytes, not an object number's 8.
    DirentWidth,
    /// A directory entry whose type bits say another file type.
    DirentType,
    /// The master node's VERSION entry renamed.
    NoVersion,
    /// The master node's object of another DMU type.
    MasterNodeType,
    /// A znode bonus said to hold system attributes (ZPL version 5).
    ZnodeBonusSa,
    /// A znode bonus of another bonus type.
    ZnodeBonusType,
    /// The root directory's object and znode made a plain file's.
    RootNotDir,
    /// A directory entry naming the root directory again.
    DirentCycle,
    /// An inline symlink target said longer than its bonus holds.
    SymlinkInlineShort,
    /// A symlink target in a block said longer than the block.
    SymlinkPastBlock,
    /// A plain file's size past what an attribute may hold.
    ZnodeSizeHuge,
    /// A directory entry named ".".
    DirentDot,
    /// A directory entry naming an object no dataset has.
    DirentUnallocated,
    /// The master node says ZPL version 0.
    VersionZero,
    /// The master node says ZPL version 5 or later (system attributes).
    VersionSa,
    /// The master node's ROOT entry renamed.
    NoRoot,
    /// A file's znode says directory, or a directory's says file.
    ZnodeModeType,
    /// A znode bonus shorter than `znode_phys_t`.
    ZnodeBonusShort,
    /// A symlink longer than `MAXPATHLEN`.
    SymlinkTooLong,
}

impl Malformation {
    pub const ALL: [Malformation; 45] = [
        Malformation::ZapBlockType,
        Malformation::ZapMicroNoNul,
        Malformation::ZapMicroDuplicate,
        Malformation::ZapFatMagic,
        Malformation::ZapFatLeafCount,
        Malformation::ZapFatEntryCount,
        Malformation::ZapFatPointer,
        Malformation::ZapLeafMagic,
        Malformation::ZapLeafChunkType,
        Malformation::ZapLeafEntryCount,
        Malformation::ZapLeafValueIntlen,
        Malformation::ZapLeafHashChain,
        Malformation::ZapFatTableShift,
        Malformation::ZapFatPointerRun,
        Malformation::ZapLeafBlockType,
        Malformation::ZapLeafPrefix,
        Malformation::ZapLeafChainToArray,
        Malformation::ZapLeafChainLoop,
        Malformation::ZapLeafEntryHash,
        Malformation::ZapLeafNameEmpty,
        Malformation::ZapLeafValueLong,
        Malformation::ZapLeafNameNoNul,
        Malformation::ZapLeafArrayShort,
        Malformation::ZapLeafArrayLong,
        Malformation::ZapLeafArrayNotArray,
        Malformation::ZapLeafArrayShared,
        Malformation::DirentWidth,
        Malformation::DirentType,
        Malformation::NoVersion,
        Malformation::MasterNodeType,
        Malformation::ZnodeBonusSa,
        Malformation::ZnodeBonusType,
        Malformation::RootNotDir,
        Malformation::DirentCycle,
        Malformation::SymlinkInlineShort,
        Malformation::SymlinkPastBlock,
        Malformation::ZnodeSizeHuge,
        Malformation::DirentDot,
        Malformation::DirentUnallocated,
        Malformation::VersionZero,
        Malformation::VersionSa,
        Malformation::NoRoot,
        Malformation::ZnodeModeType,
        Malformation::ZnodeBonusShort,
        Malformation::SymlinkTooLong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Malformation::ZapBlockType => "zap-block-type",
            Malformation::ZapMicroNoNul => "zap-micro-no-nul",
            Malformation::ZapMicroDuplicate => "zap-micro-duplicate",
            Malformation::ZapFatMagic => "zap-fat-magic",
            Malformation::ZapFatLeafCount => "zap-fat-leaf-count",
            Malformation::ZapFatEntryCount => "zap-fat-entry-count",
            Malformation::ZapFatPointer => "zap-fat-pointer",
            Malformation::ZapLeafMagic => "zap-leaf-magic",
            Malformation::ZapLeafChunkType => "zap-leaf-chunk-type",
            Malformation::ZapLeafEntryCount => "zap-leaf-entry-count",
            Malformation::ZapLeafValueIntlen => "zap-leaf-value-intlen",
            Malformation::ZapLeafHashChain => "zap-leaf-hash-chain",
            Malformation::ZapFatTableShift => "zap-fat-table-shift",
            Malformation::ZapFatPointerRun => "zap-fat-pointer-run",
            Malformation::ZapLeafBlockType => "zap-leaf-block-type",
            Malformation::ZapLeafPrefix => "zap-leaf-prefix",
            Malformation::ZapLeafChainToArray => "zap-leaf-chain-to-array",
            Malformation::ZapLeafChainLoop => "zap-leaf-chain-loop",
            Malformation::ZapLeafEntryHash => "zap-leaf-entry-hash",
            Malformation::ZapLeafNameEmpty => "zap-leaf-name-empty",
            Malformation::ZapLeafValueLong => "zap-leaf-value-long",
            Malformation::ZapLeafNameNoNul => "zap-leaf-name-no-nul",
            Malformation::ZapLeafArrayShort => "zap-leaf-array-short",
            Malformation::ZapLeafArrayLong => "zap-leaf-array-long",
            Malformation::ZapLeafArrayNotArray => "zap-leaf-array-not-array",
            Malformation::ZapLeafArrayShared => "zap-leaf-array-shared",
            Malformation::DirentWidth => "dirent-width",
            Malformation::DirentType => "dirent-type",
            Malformation::NoVersion => "master-node-no-version",
            Malformation::MasterNodeType => "master-node-type",
            Malformation::ZnodeBonusSa => "znode-bonus-sa",
            Malformation::ZnodeBonusType => "znode-bonus-type",
            Malformation::RootNotDir => "root-not-dir",
            Malformation::DirentCycle => "dirent-cycle",
            Malformation::SymlinkInlineShort => "symlink-inline-short",
            Malformation::SymlinkPastBlock => "symlink-past-block",
            Malformation::ZnodeSizeHuge => "znode-size-huge",
            Malformation::DirentDot => "dirent-dot",
            Malformation::DirentUnallocated => "dirent-unallocated",
            Malformation::VersionZero => "zpl-version-zero",
            Malformation::VersionSa => "zpl-version-sa",
            Malformation::NoRoot => "master-node-no-root",
            Malformation::ZnodeModeType => "znode-mode-type",
            Malformation::ZnodeBonusShort => "znode-bonus-short",
            Malformation::SymlinkTooLong => "symlink-too-long",
        }
    }

    /// The errno and the beginning of the reason of the check that must
    /// refuse it, and the engine file that check is in.
    fn refusal(self) -> (Errno, &'static str, &'static str) {
        use Malformation::*;
        const ZAP: &str = "engine/src/zap.rs";
        const ZPL: &str = "engine/src/zpl.rs";
        let (because, file) = match self {
            ZapBlockType => ("block 0 has block type", ZAP),
            ZapMicroNoNul => ("has a name without its terminating NUL", ZAP),
            ZapMicroDuplicate => ("is stored twice", ZAP),
            ZapFatMagic => ("fat ZAP header has magic", ZAP),
            ZapFatLeafCount => ("pointer table reaches", ZAP),
            ZapFatEntryCount => ("leaves hold", ZAP),
            ZapFatPointer => ("pointer table entry 0 points to block 0", ZAP),
            ZapLeafMagic => ("leaf magic", ZAP),
            ZapLeafChunkType => ("has unknown type", ZAP),
            ZapLeafEntryCount => ("entry chunks, the header counts", ZAP),
            ZapLeafValueIntlen => ("has values of", ZAP),
            ZapLeafHashChain => ("past the", ZAP),
            ZapFatTableShift => ("embedded pointer table with", ZAP),
            ZapFatPointerRun => ("pointers from entry", ZAP),
            ZapLeafBlockType => ("not a leaf", ZAP),
            ZapLeafPrefix => ("does not fit a pointer table", ZAP),
            ZapLeafChainToArray => ("which is not an entry", ZAP),
            ZapLeafChainLoop => ("a second time (a loop)", ZAP),
            ZapLeafEntryHash => ("is in bucket", ZAP),
            ZapLeafNameEmpty => ("has a name of 0 bytes", ZAP),
            ZapLeafValueLong => ("has a value of", ZAP),
            ZapLeafNameNoNul => ("not one NUL-terminated string", ZAP),
            ZapLeafArrayShort => ("chain ends after", ZAP),
            ZapLeafArrayLong => ("chain goes on past its", ZAP),
            ZapLeafArrayNotArray => ("which is not an array", ZAP),
            ZapLeafArrayShared => ("already used", ZAP),
            DirentWidth => ("is not one 8-byte integer", ZPL),
            DirentType => ("says type", ZPL),
            NoVersion => ("the master node has no VERSION", ZPL),
            MasterNodeType => ("not a ZPL master node", ZPL),
            ZnodeBonusSa => ("keeps its znode as system attributes", ZPL),
            ZnodeBonusType => ("not a znode", ZPL),
            RootNotDir => ("is not a directory", ZPL),
            DirentCycle => ("is reached a second time", ZPL),
            SymlinkInlineShort => ("should follow the znode", ZPL),
            SymlinkPastBlock => ("does not fit its", ZPL),
            ZnodeSizeHuge => ("more than", ZPL),
            DirentDot => ("is not a file name", ZPL),
            DirentUnallocated => ("which is not allocated", ZPL),
            VersionZero => ("the master node says ZPL version 0", ZPL),
            VersionSa => ("are not supported", ZPL),
            NoRoot => ("the master node has no ROOT", ZPL),
            ZnodeModeType => ("has DMU type", ZPL),
            ZnodeBonusShort => ("is too short for a znode", ZPL),
            SymlinkTooLong => ("has a target of", ZPL),
        };
        let errno = if matches!(self, VersionSa | ZnodeBonusSa) {
            Errno::ENOTSUP
        } else if self == ZnodeSizeHuge {
            Errno::EFBIG
        } else {
            Errno::EIO
        };
        (errno, because, file)
    }
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When the walk must meet the malformed object: the master node always;
/// any other object if it is in the sent snapshot's namespace, and then
/// its check refuses it (`refusal`); an attribute directory or file of the
/// namespace is read by other checks (`attribute`, where they refuse it);
/// an object the namespace does not name is not read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Master,
    Namespace,
    /// Only as an attribute file: a walk that hashes nothing reads a
    /// namespace file's size nowhere.
    Attribute,
}

/// How the received objects differ from the source's: what the model is
/// patched with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// One block's new contents.
    Block {
        object: u64,
        blkid: u64,
        data: Vec<u8>,
    },
    /// The object's new type, bonus type and bonus (its length is the
    /// new `bonuslen`).
    Object {
        object: u64,
        dn_type: u8,
        bonustype: u8,
        bonus: Vec<u8>,
    },
}

/// A rewrite the sender made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Struck {
    pub malformation: Malformation,
    pub object: u64,
    pub reach: Reach,
    pub edit: Edit,
    pub refusal: WalkRefusal,
    /// How the walk refuses it when it is an attribute directory or file.
    pub attribute: Option<WalkRefusal>,
    /// The record's index and byte offset in the stream, for the trace.
    pub index: u64,
    pub offset: u64,
    pub detail: String,
}

impl fmt::Display for Struck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in record {} at byte offset {} (object {}): {}, a walk must refuse it with {}",
            self.malformation,
            self.index,
            self.offset,
            self.object,
            self.detail,
            self.refusal.errno
        )
    }
}

/// Rewrites one record of `stream` (a whole stream as its sender wrote
/// it) with a malformation drawn from `draw` among those the stream has a
/// record for: the kinds are tried in a seeded order until one applies, so
/// a kind that needs a rare record (a symlink, a fat ZAP) is struck
/// whenever the stream has one, not once in many firings. Returns what is
/// really sent.
pub fn rewrite(draw: MalformedDraw, stream: &[u8]) -> (Vec<u8>, Option<Struck>) {
    let mut rng = ChaCha8Rng::seed_from_u64(draw.seed);
    let mut kinds = Malformation::ALL.to_vec();
    kinds.shuffle(&mut rng);
    for m in kinds {
        let (out, struck) = rewrite_as(m, draw.skip, &mut rng, stream);
        if struck.is_some() {
            return (out, struck);
        }
    }
    (stream.to_vec(), None)
}

/// [`rewrite`] with the malformation given (a test aims each one).
pub fn rewrite_with(
    m: Malformation,
    draw: MalformedDraw,
    stream: &[u8],
) -> (Vec<u8>, Option<Struck>) {
    let mut rng = ChaCha8Rng::seed_from_u64(draw.seed);
    rewrite_as(m, draw.skip, &mut rng, stream)
}

fn rewrite_as(
    m: Malformation,
    mut skip: u64,
    rng: &mut ChaCha8Rng,
    stream: &[u8],
) -> (Vec<u8>, Option<Struck>) {
    let mut out = Vec::with_capacity(stream.len());
    let mut struck = None;
    let mut cksum = ZioCksum::ZERO;
    // Each object's type, as its OBJECT record said.
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let mut full = false;
    let root = root_of(stream);
    let mut records = RawRecords::new(stream, None);
    // Where the bytes left as they are start.
    let mut rest = None;
    for (index, r) in (0u64..).zip(records.by_ref()) {
        // Another byte order, or a second substream: leave the rest alone.
        if r.order != ByteOrder::NATIVE {
            rest = Some(r.offset);
            break;
        }
        let record = r.record;
        let mut header = *r.header;
        let mut payload = r.payload.to_vec();
        match &record {
            Record::Begin(b) => {
                if b.hdrtype() == DMU_COMPOUNDSTREAM || index > 0 {
                    rest = Some(r.offset);
                    break;
                }
                full = b.fromguid == 0 && b.flags & engine::stream::DRR_FLAG_CLONE == 0;
            }
            Record::Object(o) => {
                seen.insert(o.object, o.object_type);
            }
            Record::End(e) => {
                header = Record::End(DrrEnd {
                    checksum: cksum,
                    toguid: e.toguid,
                })
                .encode(ByteOrder::NATIVE);
            }
            _ => {}
        }
        let seen_so_far = Context {
            seen: &seen,
            full,
            root,
        };
        if struck.is_none()
            && let Some(change) = applies(m, &record, &payload, &seen_so_far, rng)
        {
            if skip > 0 {
                skip -= 1;
            } else {
                let object = match &change.edit {
                    Edit::Block { object, .. } | Edit::Object { object, .. } => *object,
                };
                if let (
                    Edit::Object {
                        dn_type,
                        bonustype,
                        bonus,
                        ..
                    },
                    Record::Object(o),
                ) = (&change.edit, &record)
                {
                    let mut o = o.clone();
                    o.object_type = u32::from(*dn_type);
                    o.bonustype = u32::from(*bonustype);
                    o.bonuslen = bonus.len() as u32;
                    header = Record::Object(o).encode(ByteOrder::NATIVE);
                    payload = bonus.clone();
                    payload.resize(bonus.len().next_multiple_of(8), 0);
                } else if let Edit::Block { data, .. } = &change.edit {
                    payload.clone_from(data);
                }
                let (errno, because, file) = m.refusal();
                let attribute = attribute_refusal(m, object, &change);
                let names = change.names.unwrap_or_else(|| {
                    if file.ends_with("zap.rs") {
                        format!("ZAP object {object}")
                    } else {
                        format!("object {object}")
                    }
                });
                struck = Some(Struck {
                    malformation: m,
                    object,
                    reach: if object == MASTER_NODE_OBJ {
                        Reach::Master
                    } else if m == Malformation::ZnodeSizeHuge {
                        Reach::Attribute
                    } else {
                        Reach::Namespace
                    },
                    attribute,
                    edit: change.edit,
                    refusal: WalkRefusal {
                        errno,
                        file,
                        because,
                        names,
                    },
                    index,
                    offset: out.len() as u64,
                    detail: change.detail,
                });
            }
        }
        let is_end = matches!(record, Record::End(_));
        fold(&mut cksum, &header, ByteOrder::NATIVE);
        fold(&mut cksum, &payload, ByteOrder::NATIVE);
        out.extend_from_slice(&header);
        out.extend_from_slice(&payload);
        if is_end {
            cksum = ZioCksum::ZERO;
        }
    }
    out.extend_from_slice(match rest {
        Some(offset) => &stream[offset..],
        None => records.rest(),
    });
    (out, struck)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// The used entries of a microzap block: (slot, name without NUL).
fn micro_entries(block: &[u8]) -> Vec<(usize, Vec<u8>)> {
    (1..block.len() / MZAP_ENT_LEN)
        .filter_map(|slot| {
            let name = &block[slot * MZAP_ENT_LEN + 14..(slot + 1) * MZAP_ENT_LEN];
            let len = name.iter().position(|&b| b == 0)?;
            (len > 0).then(|| (slot, name[..len].to_vec()))
        })
        .collect()
}

/// A leaf block's geometry, for finding its buckets and chunks.
struct Leaf {
    nhash: usize,
    nchunks: usize,
}

impl Leaf {
    fn of(block: &[u8]) -> Leaf {
        let (nhash, nchunks) = leaf_shape(block.len());
        Leaf { nhash, nchunks }
    }

    /// The buckets whose hash chain is not empty.
    fn buckets(&self, block: &[u8]) -> Vec<usize> {
        (0..self.nhash)
            .filter(|&b| u16_at(block, ZAP_LEAF_HEADER_SIZE + 2 * b) != CHAIN_END)
            .collect()
    }

    /// The chunks of one type.
    fn chunks_of(&self, block: &[u8], t: u8) -> Vec<usize> {
        (0..self.nchunks)
            .filter(|&i| block[chunk_at(self.nhash, i)] == t)
            .collect()
    }

    /// One of its entry chunks, drawn.
    fn any_entry(&self, block: &[u8], rng: &mut ChaCha8Rng) -> Option<usize> {
        pick(rng, &self.chunks_of(block, ZAP_CHUNK_ENTRY))
    }

    fn valid(&self, idx: u16) -> Option<usize> {
        (usize::from(idx) < self.nchunks).then_some(usize::from(idx))
    }
}

/// A random value that is none of `excluded`.
fn other_than<T>(rng: &mut ChaCha8Rng, excluded: &[T]) -> T
where
    T: PartialEq,
    rand::distributions::Standard: rand::distributions::Distribution<T>,
{
    loop {
        let v: T = rng.r#gen();
        if !excluded.contains(&v) {
            return v;
        }
    }
}

fn pick(rng: &mut ChaCha8Rng, from: &[usize]) -> Option<usize> {
    (!from.is_empty()).then(|| from[rng.gen_range(0..from.len())])
}

/// A leaf block's geometry: hash buckets and chunks.
fn leaf_shape(bs: usize) -> (usize, usize) {
    let hash_shift = bs.trailing_zeros() - 5;
    let nhash = 1usize << hash_shift;
    let nchunks = (bs - 2 * nhash) / ZAP_LEAF_CHUNKSIZE - 2;
    (nhash, nchunks)
}

fn chunk_at(nhash: usize, idx: usize) -> usize {
    ZAP_LEAF_HEADER_SIZE + 2 * nhash + idx * ZAP_LEAF_CHUNKSIZE
}

/// A rewrite of one record: the edit, a description, and how the refusal
/// names what is malformed when not by the struck object's number.
struct Change {
    edit: Edit,
    detail: String,
    names: Option<String>,
    /// The object a rewritten directory entry names now.
    named: Option<u64>,
}

/// The change `m` makes of this record, if it applies.
/// How a walk refuses `m` struck at `object` when that is an attribute
/// directory or file (read by the walk's attribute checks, which look at
/// other things than the namespace's).
fn attribute_refusal(m: Malformation, object: u64, change: &Change) -> Option<WalkRefusal> {
    let (errno, because, names) = match (m, &change.edit) {
        (Malformation::ZnodeModeType, Edit::Object { dn_type, .. })
            if *dn_type == DMU_OT_PLAIN_FILE_CONTENTS =>
        {
            (
                Errno::EIO,
                "is not a regular file",
                format!("(object {object})"),
            )
        }
        (Malformation::ZnodeModeType, _) => (
            Errno::EIO,
            "is not a directory",
            format!("xattr directory {object}"),
        ),
        (Malformation::DirentUnallocated, _) => (
            Errno::EIO,
            "is not allocated",
            format!("(object {})", change.named?),
        ),
        (Malformation::ZnodeSizeHuge, _) => {
            (Errno::EFBIG, "more than", format!("(object {object})"))
        }
        _ => return None,
    };
    Some(WalkRefusal {
        errno,
        file: "engine/src/zpl.rs",
        because,
        names,
    })
}

/// The root directory's object, as the stream's master node names it
/// (OBJECT records come before the data of any object in their dnode
/// block, so the root's comes before the master node's data: look ahead).
fn root_of(stream: &[u8]) -> Option<u64> {
    let master = RawRecords::new(stream, None).find(
        |r| matches!(&r.record, Record::Write(w) if w.object == MASTER_NODE_OBJ && w.offset == 0),
    )?;
    let payload = master.payload;
    if payload.len() < 2 * MZAP_ENT_LEN || u64_at(payload, 0) != ZBT_MICRO {
        return None;
    }
    micro_entries(payload)
        .into_iter()
        .find(|(_, n)| n == ZFS_ROOT_OBJ.as_bytes())
        .map(|(slot, _)| u64_at(payload, slot * MZAP_ENT_LEN) & ((1 << 48) - 1))
}

/// What the stream has shown before the record at hand, and the root.
struct Context<'a> {
    /// Each object's type, as its OBJECT record said.
    seen: &'a BTreeMap<u64, u32>,
    /// A full stream: every object it describes, it creates.
    full: bool,
    root: Option<u64>,
}

fn applies(
    m: Malformation,
    record: &Record,
    payload: &[u8],
    cx: &Context<'_>,
    rng: &mut ChaCha8Rng,
) -> Option<Change> {
    use Malformation::*;
    let seen = cx.seen;
    match record {
        Record::Write(w) => {
            let dn_type = u8::try_from(*seen.get(&w.object)?).ok()?;
            if !matches!(dn_type, DMU_OT_DIRECTORY_CONTENTS | DMU_OT_MASTER_NODE)
                || w.length != payload.len() as u64
                || payload.len() < 2 * MZAP_ENT_LEN
                || w.offset % payload.len() as u64 != 0
            {
                return None;
            }
            let blkid = w.offset / payload.len() as u64;
            block_edit(m, w.object, blkid, dn_type, cx.root, payload.to_vec(), rng)
        }
        Record::Object(o) => {
            let fresh = cx.full;
            let mut dn_type = u8::try_from(o.object_type).ok()?;
            let mut bonustype = u8::try_from(o.bonustype).ok()?;
            let mut bonus = payload.get(..o.bonuslen as usize)?.to_vec();
            let is_file = dn_type == DMU_OT_PLAIN_FILE_CONTENTS;
            let is_dir = dn_type == DMU_OT_DIRECTORY_CONTENTS;
            let znode = bonustype == DMU_OT_ZNODE && bonus.len() >= ZNODE_PHYS_SIZE;
            // A new type or bonus type (and a shorter bonus) changes the
            // object's block pointer count: only for an object the stream
            // creates.
            let detail = match m {
                MasterNodeType if fresh && o.object == MASTER_NODE_OBJ => {
                    if dn_type != DMU_OT_MASTER_NODE {
                        return None;
                    }
                    dn_type = DMU_OT_DIRECTORY_CONTENTS;
                    format!("type {DMU_OT_MASTER_NODE} sent as {dn_type}")
                }
                _ if !znode || !(is_file || is_dir) => return None,
                ZnodeModeType => {
                    let mode = u64_at(&bonus, 72);
                    let new = match mode & S_IFMT {
                        S_IFREG if is_file => S_IFDIR,
                        S_IFDIR if is_dir => S_IFREG,
                        _ => return None,
                    };
                    put_u64(&mut bonus, 72, (mode & !S_IFMT) | new);
                    format!("mode {mode:o} sent as {:o}", (mode & !S_IFMT) | new)
                }
                ZnodeBonusShort if fresh => {
                    let len = rng.gen_range(1..ZNODE_PHYS_SIZE);
                    bonus.truncate(len);
                    format!("bonuslen {} sent as {len}", o.bonuslen)
                }
                ZnodeBonusSa if fresh => {
                    bonustype = DMU_OT_SA;
                    format!("bonus type {DMU_OT_ZNODE} sent as {bonustype}")
                }
                ZnodeBonusType if fresh => {
                    bonustype = DMU_OT_PACKED_NVLIST_SIZE as u8;
                    format!("bonus type {DMU_OT_ZNODE} sent as {bonustype}")
                }
                RootNotDir if fresh && Some(o.object) == cx.root && is_dir => {
                    let mode = u64_at(&bonus, 72);
                    dn_type = DMU_OT_PLAIN_FILE_CONTENTS;
                    put_u64(&mut bonus, 72, (mode & !S_IFMT) | S_IFREG);
                    "the root's type and mode sent as a plain file's".to_string()
                }
                SymlinkInlineShort | SymlinkPastBlock => {
                    if u64_at(&bonus, 72) & S_IFMT != S_IFLNK {
                        return None;
                    }
                    // What `zfs_readlink` finds room for after the znode.
                    let inline = DN_MAX_BONUSLEN - ZNODE_PHYS_SIZE;
                    let held = bonus.len() - ZNODE_PHYS_SIZE;
                    let range = if m == SymlinkInlineShort && held > 0 {
                        held as u64 + 1..=inline as u64
                    } else if m == SymlinkPastBlock && held == 0 {
                        u64::from(o.blksz).max(inline as u64) + 1..=MAXPATHLEN
                    } else {
                        return None;
                    };
                    if range.is_empty() {
                        return None;
                    }
                    let size = rng.gen_range(range);
                    let old = u64_at(&bonus, 80);
                    put_u64(&mut bonus, 80, size);
                    format!("symlink size {old} sent as {size}")
                }
                ZnodeSizeHuge if is_file && u64_at(&bonus, 72) & S_IFMT == S_IFREG => {
                    let size = rng.gen_range(MAX_XATTR_VALUE + 1..=1 << 40);
                    let old = u64_at(&bonus, 80);
                    put_u64(&mut bonus, 80, size);
                    format!("size {old} sent as {size}")
                }
                SymlinkTooLong => {
                    if u64_at(&bonus, 72) & S_IFMT != S_IFLNK {
                        return None;
                    }
                    let size = rng.gen_range(MAXPATHLEN + 1..=1 << 20);
                    let old = u64_at(&bonus, 80);
                    put_u64(&mut bonus, 80, size);
                    format!("symlink size {old} sent as {size}")
                }
                _ => return None,
            };
            Some(Change {
                edit: Edit::Object {
                    object: o.object,
                    dn_type,
                    bonustype,
                    bonus,
                },
                detail,
                names: None,
                named: None,
            })
        }
        _ => None,
    }
}

/// Rewrites a ZAP block (`blkid` of a directory or the master node) as `m`
/// asks, if `m` applies to it.
fn block_edit(
    m: Malformation,
    object: u64,
    blkid: u64,
    dn_type: u8,
    root: Option<u64>,
    mut block: Vec<u8>,
    rng: &mut ChaCha8Rng,
) -> Option<Change> {
    use Malformation::*;
    let data = block.as_mut_slice();
    let mut named = None;
    let bs = data.len();
    let word0 = u64_at(data, 0);
    let micro = blkid == 0 && word0 == ZBT_MICRO;
    let header = blkid == 0 && word0 == ZBT_HEADER;
    let leaf = blkid > 0 && word0 == ZBT_LEAF && u32_at(data, 24) == ZAP_LEAF_MAGIC;
    let master = dn_type == DMU_OT_MASTER_NODE;
    let dir = dn_type == DMU_OT_DIRECTORY_CONTENTS;
    let mut names = None;
    let detail = match m {
        ZapBlockType if micro || header => {
            let t: u64 = other_than(rng, &[ZBT_MICRO, ZBT_HEADER, ZBT_LEAF]);
            put_u64(data, 0, t);
            format!("block 0's type {word0:#x} sent as {t:#x}")
        }
        ZapMicroNoNul if micro => {
            let used = micro_entries(data);
            let (slot, _) = used.get(rng.gen_range(0..used.len().max(1)))?;
            let at = slot * MZAP_ENT_LEN + 14;
            for b in &mut data[at..at + MZAP_NAME_LEN] {
                if *b == 0 {
                    *b = b'~';
                }
            }
            format!("microzap slot {slot}'s name without its NUL")
        }
        ZapMicroDuplicate if micro => {
            let used = micro_entries(data);
            if used.len() < 2 {
                return None;
            }
            let i = rng.gen_range(0..used.len());
            let j = (i + rng.gen_range(1..used.len())) % used.len();
            let (from, to) = (used[i].0, used[j].0);
            let name = data[from * MZAP_ENT_LEN + 14..(from + 1) * MZAP_ENT_LEN].to_vec();
            data[to * MZAP_ENT_LEN + 14..(to + 1) * MZAP_ENT_LEN].copy_from_slice(&name);
            format!(
                "microzap slot {to} named {:?} as slot {from} is",
                String::from_utf8_lossy(&used[i].1)
            )
        }
        ZapFatMagic if header => {
            let magic: u64 = other_than(rng, &[ZAP_MAGIC]);
            put_u64(data, 8, magic);
            format!("fat header magic sent as {magic:#x}")
        }
        ZapFatLeafCount if header => {
            let n = u64_at(data, 64);
            put_u64(data, 64, n.wrapping_add(rng.gen_range(1..=4)));
            format!("leaf count {n} sent as {}", u64_at(data, 64))
        }
        ZapFatEntryCount if header => {
            let n = u64_at(data, 72);
            put_u64(data, 72, n.wrapping_add(rng.gen_range(1..=1000)));
            format!("entry count {n} sent as {}", u64_at(data, 72))
        }
        ZapFatPointer if header && u64_at(data, 24) == 0 => {
            let at = bs / 2;
            let leaf = u64_at(data, at);
            put_u64(data, at, 0);
            format!("embedded pointer 0 to leaf {leaf} sent as 0")
        }
        ZapLeafMagic if leaf => {
            let magic: u32 = other_than(rng, &[ZAP_LEAF_MAGIC]);
            data[24..28].copy_from_slice(&magic.to_le_bytes());
            format!("leaf {blkid}'s magic sent as {magic:#x}")
        }
        ZapLeafChunkType if leaf => {
            let (nhash, nchunks) = leaf_shape(bs);
            let idx = rng.gen_range(0..nchunks);
            let t: u8 = other_than(rng, &[ZAP_CHUNK_ENTRY, ZAP_CHUNK_ARRAY, ZAP_CHUNK_FREE]);
            data[chunk_at(nhash, idx)] = t;
            format!("leaf {blkid}'s chunk {idx} type sent as {t}")
        }
        ZapLeafEntryCount if leaf => {
            let n = u16_at(data, 30);
            if n == u16::MAX {
                return None;
            }
            put_u16(data, 30, n + 1);
            format!("leaf {blkid}'s entry count {n} sent as {}", n + 1)
        }
        ZapLeafValueIntlen if leaf => {
            let (nhash, nchunks) = leaf_shape(bs);
            let entries: Vec<usize> = (0..nchunks)
                .filter(|&i| data[chunk_at(nhash, i)] == ZAP_CHUNK_ENTRY)
                .collect();
            let idx = *entries.get(rng.gen_range(0..entries.len().max(1)))?;
            let intlen: u8 = other_than(rng, &[1, 2, 4, 8]);
            data[chunk_at(nhash, idx) + 1] = intlen;
            format!("leaf {blkid}'s entry chunk {idx} values of {intlen} bytes")
        }
        ZapLeafHashChain if leaf => {
            let (nhash, nchunks) = leaf_shape(bs);
            let used: Vec<usize> = (0..nhash)
                .filter(|&b| u16_at(data, ZAP_LEAF_HEADER_SIZE + 2 * b) != CHAIN_END)
                .collect();
            let bucket = *used.get(rng.gen_range(0..used.len().max(1)))?;
            let past = rng.gen_range(nchunks as u16..CHAIN_END);
            put_u16(data, ZAP_LEAF_HEADER_SIZE + 2 * bucket, past);
            format!("leaf {blkid}'s bucket {bucket} starts at chunk {past}")
        }
        DirentDot if micro && dir => {
            let used = micro_entries(data);
            let (slot, name) = used.get(rng.gen_range(0..used.len().max(1)))?;
            let at = slot * MZAP_ENT_LEN + 14;
            data[at..at + MZAP_NAME_LEN].fill(0);
            data[at] = b'.';
            format!("entry {:?} renamed \".\"", String::from_utf8_lossy(name))
        }
        DirentUnallocated if micro && dir => {
            let used = micro_entries(data);
            let (slot, name) = used.get(rng.gen_range(0..used.len().max(1)))?;
            let at = slot * MZAP_ENT_LEN;
            let de = u64_at(data, at);
            // Far past any object a simulated dataset allocates.
            let object = rng.gen_range(1u64 << 40..1 << 48);
            put_u64(data, at, (de & !((1 << 48) - 1)) | object);
            names = Some(format!("names object {object}"));
            named = Some(object);
            format!(
                "entry {:?} sent naming object {object}",
                String::from_utf8_lossy(name)
            )
        }
        VersionZero | VersionSa if micro && master => {
            let used = micro_entries(data);
            let (slot, _) = used.iter().find(|(_, n)| n == ZPL_VERSION_STR.as_bytes())?;
            let v = if m == VersionZero {
                0
            } else {
                rng.gen_range(ZPL_VERSION_SA..=ZPL_VERSION_SA + 10)
            };
            let old = u64_at(data, slot * MZAP_ENT_LEN);
            put_u64(data, slot * MZAP_ENT_LEN, v);
            names = Some(if m == VersionZero {
                "the master node".to_string()
            } else {
                format!("ZPL version {v}")
            });
            format!("VERSION {old} sent as {v}")
        }
        NoRoot if micro && master => {
            let used = micro_entries(data);
            let (slot, _) = used.iter().find(|(_, n)| n == ZFS_ROOT_OBJ.as_bytes())?;
            let at = slot * MZAP_ENT_LEN + 14 + ZFS_ROOT_OBJ.len() - 1;
            data[at] = b'X';
            names = Some("the master node".to_string());
            "ROOT renamed ROOX".to_string()
        }
        ZapFatTableShift if header && u64_at(data, 24) == 0 => {
            let embedded = u64::from(bs.trailing_zeros()) - 4;
            let shift = rng.gen_range(embedded + 1..=63);
            put_u64(data, 32, shift);
            format!("embedded table's zt_shift sent as {shift} (room for {embedded})")
        }
        ZapFatPointerRun if header && u64_at(data, 24) == 0 => {
            let n = 1usize << u64_at(data, 32).min(20);
            let base = bs / 2;
            let ptrs: Vec<u64> = (0..n)
                .map_while(|i| {
                    data.get(base + 8 * i..base + 8 * i + 8)
                        .map(|w| u64_at(w, 0))
                })
                .collect();
            let count = |leaf: u64| ptrs.iter().filter(|&&p| p == leaf).count();
            // A leaf left with no pointer would change the leaf count,
            // another check: take one from a leaf that has two or more.
            let from: Vec<usize> = (0..ptrs.len()).filter(|&i| count(ptrs[i]) >= 2).collect();
            let i = *from.get(rng.gen_range(0..from.len().max(1)))?;
            let others: Vec<u64> = ptrs.iter().copied().filter(|&p| p != ptrs[i]).collect();
            let to = *others.get(rng.gen_range(0..others.len().max(1)))?;
            put_u64(data, base + 8 * i, to);
            format!("embedded pointer {i} to leaf {} sent to leaf {to}", ptrs[i])
        }
        ZapLeafBlockType if leaf => {
            let t: u64 = other_than(rng, &[ZBT_LEAF]);
            put_u64(data, 0, t);
            format!("leaf {blkid}'s block type sent as {t:#x}")
        }
        ZapLeafPrefix if leaf => {
            let len = rng.gen_range(49..=u16::MAX);
            put_u16(data, 32, len);
            format!("leaf {blkid}'s prefix length sent as {len}")
        }
        ZapLeafChainToArray if leaf => {
            let l = Leaf::of(data);
            let bucket = pick(rng, &l.buckets(data))?;
            let array = pick(rng, &l.chunks_of(data, ZAP_CHUNK_ARRAY))?;
            put_u16(data, ZAP_LEAF_HEADER_SIZE + 2 * bucket, array as u16);
            format!("leaf {blkid}'s bucket {bucket} starts at array chunk {array}")
        }
        ZapLeafChainLoop if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            put_u16(data, chunk_at(l.nhash, e) + 2, e as u16);
            format!("leaf {blkid}'s entry chunk {e} chained to itself")
        }
        ZapLeafEntryHash if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            let prefix_len = u32::from(u16_at(data, 32));
            let down = 64u32.checked_sub(l.nhash.trailing_zeros() + prefix_len)?;
            let at = chunk_at(l.nhash, e) + 16;
            let hash = u64_at(data, at);
            put_u64(data, at, hash ^ (1 << down));
            format!("leaf {blkid}'s entry chunk {e} hash {hash:#x} with bit {down} flipped")
        }
        ZapLeafNameEmpty if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            put_u16(data, chunk_at(l.nhash, e) + 6, 0);
            format!("leaf {blkid}'s entry chunk {e} with a name of 0 bytes")
        }
        ZapLeafValueLong if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            let c = chunk_at(l.nhash, e);
            let intlen = usize::from(data[c + 1]).max(1);
            let n = rng.gen_range((ZAP_MAXVALUELEN / intlen + 1).min(65535)..=65535) as u16;
            put_u16(data, c + 10, n);
            format!("leaf {blkid}'s entry chunk {e} with {n} values of {intlen} bytes")
        }
        ZapLeafNameNoNul if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            let c = chunk_at(l.nhash, e);
            let n = usize::from(u16_at(data, c + 6)).checked_sub(1)?;
            let mut idx = u16_at(data, c + 4);
            for _ in 0..n / ZAP_LEAF_ARRAY_BYTES {
                idx = u16_at(
                    data,
                    chunk_at(l.nhash, l.valid(idx)?) + 1 + ZAP_LEAF_ARRAY_BYTES,
                );
            }
            let at = chunk_at(l.nhash, l.valid(idx)?) + 1 + n % ZAP_LEAF_ARRAY_BYTES;
            if data[at] != 0 {
                return None;
            }
            data[at] = b'x';
            format!("leaf {blkid}'s entry chunk {e}: its name's NUL sent as 'x'")
        }
        ZapLeafArrayShort | ZapLeafArrayLong if leaf => {
            let l = Leaf::of(data);
            let long = m == ZapLeafArrayShort;
            let entries: Vec<usize> = l
                .chunks_of(data, ZAP_CHUNK_ENTRY)
                .into_iter()
                .filter(|&e| {
                    let n = usize::from(u16_at(data, chunk_at(l.nhash, e) + 6));
                    (n > ZAP_LEAF_ARRAY_BYTES) == long && n > 0
                })
                .collect();
            let e = pick(rng, &entries)?;
            let first = l.valid(u16_at(data, chunk_at(l.nhash, e) + 4))?;
            let next = if long { CHAIN_END } else { 0 };
            put_u16(
                data,
                chunk_at(l.nhash, first) + 1 + ZAP_LEAF_ARRAY_BYTES,
                next,
            );
            format!("leaf {blkid}'s entry chunk {e}: its name's chain next sent as {next:#x}")
        }
        ZapLeafArrayNotArray if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            put_u16(data, chunk_at(l.nhash, e) + 4, e as u16);
            format!("leaf {blkid}'s entry chunk {e}: its name starts at itself")
        }
        ZapLeafArrayShared if leaf => {
            let l = Leaf::of(data);
            let e = l.any_entry(data, rng)?;
            let c = chunk_at(l.nhash, e);
            if u16_at(data, c + 10) == 0 {
                return None;
            }
            let name = u16_at(data, c + 4);
            put_u16(data, c + 8, name);
            format!("leaf {blkid}'s entry chunk {e}: its value chain is its name's")
        }
        DirentWidth if leaf && dir => {
            let l = Leaf::of(data);
            let entries: Vec<usize> = l
                .chunks_of(data, ZAP_CHUNK_ENTRY)
                .into_iter()
                .filter(|&e| {
                    let c = chunk_at(l.nhash, e);
                    data[c + 1] == 8 && u16_at(data, c + 10) == 1
                })
                .collect();
            let e = pick(rng, &entries)?;
            data[chunk_at(l.nhash, e) + 1] = 4;
            format!("leaf {blkid}'s entry chunk {e}: a value of 4 bytes")
        }
        DirentType if micro && dir => {
            let used = micro_entries(data);
            let (slot, name) = used.get(rng.gen_range(0..used.len().max(1)))?;
            let at = slot * MZAP_ENT_LEN;
            let de = u64_at(data, at);
            let t = de >> 60;
            if t == 0 {
                return None;
            }
            let new = (t - 1 + rng.gen_range(1..15)) % 15 + 1;
            put_u64(data, at, (de & ((1 << 60) - 1)) | new << 60);
            format!(
                "entry {:?}'s type {t} sent as {new}",
                String::from_utf8_lossy(name)
            )
        }
        DirentCycle if micro && dir => {
            let root = root?;
            let used = micro_entries(data);
            let (slot, name) = used.get(rng.gen_range(0..used.len().max(1)))?;
            let at = slot * MZAP_ENT_LEN;
            put_u64(data, at, (S_IFDIR >> 12) << 60 | root);
            names = Some(format!("directory object {root}"));
            format!(
                "entry {:?} sent naming the root (object {root})",
                String::from_utf8_lossy(name)
            )
        }
        NoVersion if micro && master => {
            let used = micro_entries(data);
            let (slot, _) = used.iter().find(|(_, n)| n == ZPL_VERSION_STR.as_bytes())?;
            data[slot * MZAP_ENT_LEN + 14 + ZPL_VERSION_STR.len() - 1] = b'X';
            names = Some("the master node".to_string());
            "VERSION renamed VERSIOX".to_string()
        }
        _ => return None,
    };
    Some(Change {
        edit: Edit::Block {
            object,
            blkid,
            data: block,
        },
        detail,
        names,
        named,
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
