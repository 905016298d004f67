//! The I/O pipeline: turning a logical block into a checksummed, compressed,
//! allocated block on the device, and reading it back verified.
//!
//! Writes never overwrite a live block (copy-on-write): every block is
//! written to freshly allocated space and found through the new block
//! pointer. Every read verifies the checksum the pointer carries; a mismatch
//! is ECKSUM here and EIO to the DMU's callers, as in ZFS.

pub mod blkptr;
mod cache;
pub mod compress;

pub use blkptr::{BLKPTR_SIZE, Blkptr, Dva, SPA_MAXBLOCKSIZE, SPA_MINBLOCKSHIFT, SPA_MINBLOCKSIZE};
pub(crate) use cache::BlkptrCache;
pub use compress::ZioCompress;

use crate::checksum::{ZioCksum, fletcher_2_native, fletcher_4_native, sha256};
use crate::error::{Errno, Error, Result, fail};
use crate::metaslab::Metaslab;
use crate::vdev::BlockDevice;

/// `enum zio_checksum`, numbered as on disk and in send streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ZioChecksum {
    Inherit = 0,
    On = 1,
    Off = 2,
    Label = 3,
    GangHeader = 4,
    Zilog = 5,
    Fletcher2 = 6,
    Fletcher4 = 7,
    Sha256 = 8,
    Zilog2 = 9,
}

/// `ZIO_CHECKSUM_FUNCTIONS`.
pub const ZIO_CHECKSUM_FUNCTIONS: u8 = 10;

impl ZioChecksum {
    pub fn from_u8(v: u8) -> Option<ZioChecksum> {
        use ZioChecksum::*;
        [
            Inherit, On, Off, Label, GangHeader, Zilog, Fletcher2, Fletcher4, Sha256, Zilog2,
        ]
        .get(usize::from(v))
        .copied()
    }

    pub fn name(self) -> &'static str {
        use ZioChecksum::*;
        match self {
            Inherit => "inherit",
            On => "on",
            Off => "off",
            Label => "label",
            GangHeader => "gang_header",
            Zilog => "zilog",
            Fletcher2 => "fletcher2",
            Fletcher4 => "fletcher4",
            Sha256 => "sha256",
            Zilog2 => "zilog2",
        }
    }

    pub fn from_name(name: &str) -> Option<ZioChecksum> {
        (0..ZIO_CHECKSUM_FUNCTIONS)
            .filter_map(ZioChecksum::from_u8)
            .find(|c| c.name() == name)
    }

    /// `zio_checksum_select`: a child's setting, or the parent's when the
    /// child inherits; `on` means fletcher4 in this era.
    pub fn select(child: ZioChecksum, parent: ZioChecksum) -> ZioChecksum {
        match child {
            ZioChecksum::Inherit => parent,
            ZioChecksum::On => ZioChecksum::Fletcher4,
            c => c,
        }
    }

    /// `ci_correctable` and `ci_eck` of `zio_checksum_table`: whether the
    /// function is good enough for metadata (else metadata uses fletcher4).
    pub fn fit_for_metadata(self) -> bool {
        matches!(self, ZioChecksum::Fletcher4 | ZioChecksum::Sha256)
    }

    /// `ci_dedup`: strong enough to identify a block by its checksum.
    pub fn is_dedup_grade(self) -> bool {
        self == ZioChecksum::Sha256
    }

    /// The checksum of `data` by this function (zero for `off`).
    pub fn compute(self, data: &[u8]) -> ZioCksum {
        match self {
            ZioChecksum::Fletcher2 | ZioChecksum::Zilog => fletcher_2_native(data),
            ZioChecksum::Fletcher4 | ZioChecksum::Zilog2 => fletcher_4_native(data),
            ZioChecksum::Sha256 | ZioChecksum::Label | ZioChecksum::GangHeader => sha256(data),
            ZioChecksum::Off | ZioChecksum::Inherit | ZioChecksum::On => ZioCksum::ZERO,
        }
    }
}

/// How a block is to be written (what `dmu_write_policy` decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteProps {
    pub object_type: u8,
    pub level: u8,
    /// A concrete function (not inherit/on).
    pub checksum: ZioChecksum,
    /// A concrete function (not inherit/on).
    pub compress: ZioCompress,
    pub fill: u64,
}

/// I/O counters, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZioStats {
    pub blocks_written: u64,
    pub bytes_written: u64,
    pub blocks_read: u64,
    pub bytes_read: u64,
    pub checksum_errors: u64,
}

/// The pool's device and allocator: everything that moves blocks.
pub struct Zio {
    pub dev: Box<dyn BlockDevice>,
    pub ms: Metaslab,
    pub stats: ZioStats,
    /// Set by the check for its walks; any block write drops it.
    pub(crate) blkptr_cache: Option<BlkptrCache>,
    /// `zfs_mdcomp_disable`: metadata is written uncompressed (all-zero
    /// blocks are still holes). Off by default, as in ZFS; the fuzz targets
    /// set it, because compressing metadata is most of a txg sync's cost
    /// and not what they test.
    pub mdcomp_disable: bool,
}

impl Zio {
    pub fn new(dev: Box<dyn BlockDevice>, ms: Metaslab) -> Zio {
        Zio {
            dev,
            ms,
            stats: ZioStats::default(),
            blkptr_cache: None,
            mdcomp_disable: false,
        }
    }

    /// Compresses, checksums, allocates and writes one block born in `txg`.
    /// A block that compresses to nothing (all zeros, compression on) is a
    /// hole and writes nothing, as `zio_write_bp_init` does.
    pub fn write_block(&mut self, txg: u64, data: &[u8], props: &WriteProps) -> Result<Blkptr> {
        self.blkptr_cache = None;
        let lsize = data.len() as u64;
        debug_assert!(
            lsize > 0 && lsize.is_multiple_of(SPA_MINBLOCKSIZE) && lsize <= SPA_MAXBLOCKSIZE
        );
        let (physical, compress) = match compress::compress_block(props.compress, data)? {
            compress::Compressed::Hole => return Ok(Blkptr::HOLE),
            compress::Compressed::Stored { data, compress } => (data, compress),
        };
        let psize = physical.len() as u64;
        let asize = psize.next_multiple_of(self.ms.align());
        let offset = self.ms.alloc(asize)?;

        let mut bp = Blkptr {
            dva: [Dva::new(offset, asize), Dva::default(), Dva::default()],
            birth: txg,
            fill: props.fill,
            cksum: props.checksum.compute(&physical),
            ..Blkptr::default()
        };
        bp.set_lsize(lsize);
        bp.set_psize(psize);
        bp.set_compress(compress as u8);
        bp.set_checksum(props.checksum as u8);
        bp.set_object_type(props.object_type);
        bp.set_level(props.level);
        bp.set_byteorder(1);

        let result = if asize == psize {
            self.dev.write(offset, &physical)
        } else {
            let mut padded = physical;
            padded.resize(asize as usize, 0);
            self.dev.write(offset, &padded)
        };
        if let Err(e) = result {
            // Never referenced: the space can be reused at once.
            self.ms.free_now(offset, asize);
            return Err(e);
        }
        self.stats.blocks_written += 1;
        self.stats.bytes_written += asize;
        Ok(bp)
    }

    /// Reads a block and returns its logical contents, verified. A hole
    /// reads as `lsize` zeros of the size the caller expects.
    pub fn read_block(&mut self, bp: &Blkptr) -> Result<Vec<u8>> {
        debug_assert!(!bp.is_hole());
        let dva = bp.dva[0];
        let (offset, asize, psize) = (dva.offset(), dva.asize(), bp.psize());
        if asize == 0
            || psize > asize
            || offset
                .checked_add(asize)
                .is_none_or(|end| end > self.dev.size())
        {
            return fail(
                Errno::EIO,
                format!("block pointer out of range: offset {offset:#x} asize {asize}"),
            );
        }
        let mut physical = vec![0u8; asize as usize];
        self.dev.read(offset, &mut physical)?;
        physical.truncate(psize as usize);
        self.stats.blocks_read += 1;
        self.stats.bytes_read += asize;

        let checksum = ZioChecksum::from_u8(bp.checksum()).unwrap_or(ZioChecksum::Fletcher4);
        if checksum != ZioChecksum::Off && checksum.compute(&physical) != bp.cksum {
            self.stats.checksum_errors += 1;
            return fail(
                Errno::ECKSUM,
                format!(
                    "checksum mismatch in the block at {offset:#x} (birth txg {})",
                    bp.birth
                ),
            );
        }
        let compress = ZioCompress::from_u8(bp.compress()).ok_or_else(|| {
            Error::new(Errno::EIO, format!("unknown compression {}", bp.compress()))
        })?;
        compress::decompress_block_owned(compress, physical, bp.lsize() as usize)
    }

    /// Frees a block after `txg` and the deferral window have synced.
    pub fn free_block(&mut self, txg: u64, bp: &Blkptr) {
        if !bp.is_hole() {
            self.ms
                .free_deferred(txg, bp.dva[0].offset(), bp.dva[0].asize());
        }
    }
}
