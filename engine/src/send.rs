//! Sending a snapshot as a stream (`dmu_send.c`: `dmu_send`,
//! `dmu_send_impl`, `backup_cb`, `dump_*`, `dmu_send_estimate`), and the
//! dedup filter that `zfs send -D` runs over it (libzfs's `cksummer`).
//!
//! The stream follows the traversal: for each dnode block its OBJECT and
//! FREEOBJECTS records, then each object's blocks as WRITE records and its
//! holes as FREE records. Consecutive FREE (same object, contiguous) and
//! FREEOBJECTS (contiguous) records are merged while pending, exactly as the
//! seed does, which is what makes the stream byte-identical to ZFS's.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use crate::byteswap;
use crate::checksum::ZioCksum;
use crate::context::Interrupt;
use crate::dmu::dnode::{DNODE_SHIFT, Dnode};
use crate::dmu::object_type::{DMU_OT_DNODE, DMU_OT_OBJSET, DMU_OT_SA, byteswap_class};
use crate::dsl::{DS_FLAG_CI_DATASET, DatasetId};
use crate::error::{Errno, Error, Result, fail};
use crate::spa::Pool;
use crate::stream::{
    ByteOrder, DMU_BACKUP_FEATURE_DEDUP, DMU_BACKUP_FEATURE_DEDUPPROPS,
    DMU_BACKUP_FEATURE_SA_SPILL, DRR_CHECKSUM_DEDUP, DRR_FLAG_CI_DATA, DRR_FLAG_CLONE, DdtKey,
    DrrBegin, DrrFree, DrrFreeObjects, DrrObject, DrrSpill, DrrWrite, DrrWriteByref, Record,
    StreamWriter,
};
use crate::traverse::{DMU_SPILL_BLKID, TraverseCursor, Visit};
use crate::zio::{Blkptr, SPA_MINBLOCKSHIFT, Zio, ZioChecksum};

/// What `zfs send` was asked for.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// Byte order of the stream (a big-endian sender swaps every header field
    /// and every payload by its object type).
    pub byte_order: ByteOrder,
    /// `-D`: replace repeated blocks by WRITE_BYREF records.
    pub dedup: bool,
    /// `zfs_send_corrupt_data`: send a marked pattern instead of failing on
    /// a block that cannot be read.
    pub corrupt_data: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            byte_order: ByteOrder::NATIVE,
            dedup: false,
            corrupt_data: false,
        }
    }
}

/// The pattern `zfs_send_corrupt_data` sends for an unreadable block.
pub const CORRUPT_DATA_PATTERN: u64 = 0x02f5_badd_b10c;

/// Blocks already in the stream, by checksum and properties, with where
/// they were sent (libzfs's dedup table). Keep one across the substreams of
/// one `send -D` so later substreams refer back to earlier ones.
#[derive(Clone, Debug, Default)]
pub struct DedupTable {
    seen: BTreeMap<([u64; 4], u64), (u64, u64, u64)>,
}

/// What a send produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendSummary {
    pub bytes: u64,
    pub records: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Free,
    FreeObjects,
}

/// `dmu_sendarg_t`: the state of one send.
struct SendArg<'w, W: Write> {
    out: StreamWriter<W>,
    pending: Pending,
    pending_record: Record,
    toguid: u64,
    options: SendOptions,
    dedup: Option<&'w mut DedupTable>,
    records: u64,
    interrupt: &'w mut dyn Interrupt,
}

impl<W: Write> SendArg<'_, W> {
    fn emit(&mut self, record: &Record, payload: &[u8]) -> Result<()> {
        self.records += 1;
        // unreached: only the command line's stdout can fail here; the simulation and the fuzzers
        // write the stream into a Vec or a sink
        self.out
            .write_record(record, payload)
            .map_err(|e| Error::new(Errno::EIO, format!("writing the stream: {e}")))
    }

    fn push_pending(&mut self) -> Result<()> {
        if self.pending != Pending::None {
            let record = self.pending_record.clone();
            self.emit(&record, &[])?;
            self.pending = Pending::None;
        }
        Ok(())
    }

    /// `dump_free`.
    fn dump_free(&mut self, object: u64, offset: u64, length: u64) -> Result<()> {
        let length = if length != u64::MAX && offset.checked_add(length).is_none() {
            u64::MAX
        } else {
            length
        };
        if self.pending == Pending::FreeObjects {
            self.push_pending()?;
        }
        if self.pending == Pending::Free {
            if let Record::Free(f) = &mut self.pending_record
                && length != u64::MAX
                && f.object == object
                && (f.offset.wrapping_add(f.length) == offset || planted!(FreeAggregationGap))
            {
                f.length = f.length.wrapping_add(length);
                return Ok(());
            }
            self.push_pending()?;
        }
        let record = Record::Free(DrrFree {
            object,
            offset,
            length,
            toguid: self.toguid,
        });
        if length == u64::MAX {
            self.emit(&record, &[])
        } else {
            self.pending_record = record;
            self.pending = Pending::Free;
            Ok(())
        }
    }

    /// `dump_spill`: a SPILL record and the spill block's data.
    fn dump_spill(&mut self, object: u64, data: &[u8]) -> Result<()> {
        self.push_pending()?;
        let record = Record::Spill(DrrSpill {
            object,
            length: data.len() as u64,
            toguid: self.toguid,
        });
        // The seed's restore_spill() does not byteswap spill data, so a
        // sender of either order writes it as it is.
        if planted!(SpillSwappedBySender) && self.options.byte_order.is_swapped() {
            let mut swapped = data.to_vec();
            byteswap::byteswap_to_foreign(
                crate::dmu::object_type::ByteswapClass::Uint64,
                &mut swapped,
            );
            return self.emit(&record, &swapped);
        }
        self.emit(&record, data)
    }

    /// `dump_freeobjects`.
    fn dump_freeobjects(&mut self, firstobj: u64, numobjs: u64) -> Result<()> {
        if self.pending == Pending::Free {
            self.push_pending()?;
        }
        if self.pending == Pending::FreeObjects {
            if let Record::FreeObjects(f) = &mut self.pending_record
                && f.firstobj.wrapping_add(f.numobjs) == firstobj
            {
                f.numobjs = f.numobjs.wrapping_add(numobjs);
                return Ok(());
            }
            self.push_pending()?;
        }
        self.pending_record = Record::FreeObjects(DrrFreeObjects {
            firstobj,
            numobjs,
            toguid: self.toguid,
        });
        self.pending = Pending::FreeObjects;
        Ok(())
    }

    /// Swaps a payload as a host of the stream's byte order holds it (a
    /// copy only when it is swapped).
    fn payload_in_order<'a>(&self, object_type: u32, data: &'a [u8]) -> Cow<'a, [u8]> {
        match byteswap_class(object_type) {
            Some(class) if self.options.byte_order.is_swapped() => {
                let mut data = data.to_vec();
                byteswap::byteswap_to_foreign(class, &mut data);
                Cow::Owned(data)
            }
            _ => Cow::Borrowed(data),
        }
    }

    /// `dump_dnode`.
    fn dump_dnode(&mut self, object: u64, dn: Option<&Dnode>) -> Result<()> {
        let Some(dn) = dn.filter(|d| d.dn_type != 0) else {
            return self.dump_freeobjects(object, 1);
        };
        self.push_pending()?;
        let record = Record::Object(DrrObject {
            object,
            object_type: u32::from(dn.dn_type),
            bonustype: u32::from(dn.bonustype),
            blksz: dn.datablksz,
            bonuslen: dn.bonus.len() as u32,
            checksumtype: dn.checksum,
            compress: dn.compress,
            toguid: self.toguid,
        });
        let bonus = self.payload_in_order(u32::from(dn.bonustype), &dn.bonus);
        self.emit(&record, &bonus)?;
        if planted!(NoFreePastEof) {
            return Ok(());
        }
        // Free anything past the end of the file.
        let end = (dn.maxblkid.wrapping_add(1)).wrapping_mul(u64::from(dn.datablksz));
        self.dump_free(object, end, u64::MAX)
    }

    /// `dump_data`, with the `-D` filter applied.
    fn dump_data(
        &mut self,
        object_type: u32,
        object: u64,
        offset: u64,
        bp: &Blkptr,
        data: &[u8],
    ) -> Result<()> {
        self.push_pending()?;
        let checksum = ZioChecksum::from_u8(bp.checksum()).unwrap_or(ZioChecksum::Off);
        let mut write = DrrWrite {
            object,
            object_type,
            offset,
            length: data.len() as u64,
            toguid: self.toguid,
            checksumtype: bp.checksum(),
            checksumflags: if checksum.is_dedup_grade() {
                DRR_CHECKSUM_DEDUP
            } else {
                0
            },
            key: DdtKey {
                cksum: bp.cksum,
                prop: DdtKey::make_prop(bp.lsize(), bp.psize(), bp.compress()),
            },
        };
        let payload = self.payload_in_order(object_type, data);
        if let Some(table) = self.dedup.as_deref_mut() {
            // libzfs: use the block's checksum when it is dedup-grade, else
            // compute a sha-256 of the data as sent.
            if write.key.cksum == ZioCksum::ZERO || write.checksumflags & DRR_CHECKSUM_DEDUP == 0 {
                write.key.cksum = crate::checksum::sha256(&payload);
                write.checksumtype = ZioChecksum::Sha256 as u8;
                write.checksumflags = DRR_CHECKSUM_DEDUP;
            }
            let key = (write.key.cksum.0, write.key.prop);
            if let Some(&(refguid, refobject, refoffset)) = table.seen.get(&key) {
                let byref = Record::WriteByref(DrrWriteByref {
                    object,
                    offset,
                    length: write.length,
                    toguid: self.toguid,
                    refguid,
                    refobject,
                    refoffset,
                    checksumtype: write.checksumtype,
                    // libzfs copies the checksum type here (sic); a stream
                    // byte-identical with ZFS's has to as well.
                    checksumflags: write.checksumtype,
                    key: write.key,
                });
                return self.emit(&byref, &[]);
            }
            table.seen.insert(key, (self.toguid, object, offset));
        }
        self.emit(&Record::Write(write), &payload)
    }

    /// `backup_cb`.
    fn backup_cb(&mut self, zio: &mut Zio, visit: &Visit) -> Result<()> {
        if self.interrupt.pending() {
            return fail(Errno::EINTR, "send interrupted");
        }
        let zb = visit.zb;
        let dn = visit.dnode;
        let span = || {
            let shift = SPA_MINBLOCKSHIFT + u32::from(zb.level) * (u32::from(dn.indblkshift) - 7);
            u64::from(dn.datablksz >> SPA_MINBLOCKSHIFT)
                .checked_shl(shift)
                .unwrap_or(0)
        };
        let Some(bp) = visit.bp else {
            if zb.object == 0 {
                let span = span();
                let dnobj = zb.blkid.wrapping_mul(span) >> DNODE_SHIFT;
                return self.dump_freeobjects(dnobj, span >> DNODE_SHIFT);
            }
            if zb.blkid == DMU_SPILL_BLKID {
                return Ok(());
            }
            let span = span();
            return self.dump_free(zb.object, zb.blkid.wrapping_mul(span), span);
        };
        let object_type = u32::from(bp.object_type());
        if zb.level > 0 || object_type == DMU_OT_OBJSET {
            return Ok(());
        }
        if object_type == DMU_OT_DNODE {
            let dnodes = visit.dnodes.unwrap_or(&[]);
            let first = zb.blkid * dnodes.len() as u64;
            for (i, dnode) in dnodes.iter().enumerate() {
                self.dump_dnode(first + i as u64, dnode.as_ref())?;
            }
            return Ok(());
        }
        // The block is sent from where it was read, not from a copy.
        let mut sent = None;
        let read = zio.with_block(bp, |data| {
            sent = Some(self.dump_block(object_type, zb, bp, data));
            Ok(())
        });
        if let Some(sent) = sent {
            return sent;
        }
        let e = read.expect_err("with_block gives its reader every block it reads");
        if !self.options.corrupt_data {
            return Err(Error::new(Errno::EIO, e.reason().to_string()));
        }
        let mut data = Vec::with_capacity(bp.lsize() as usize);
        while data.len() < bp.lsize() as usize {
            data.extend_from_slice(&CORRUPT_DATA_PATTERN.to_ne_bytes());
        }
        self.dump_block(object_type, zb, bp, &data)
    }

    /// A level-0 block's records: a SPILL for a spill block, else a WRITE.
    fn dump_block(
        &mut self,
        object_type: u32,
        zb: crate::traverse::Bookmark,
        bp: &Blkptr,
        data: &[u8],
    ) -> Result<()> {
        if object_type == DMU_OT_SA && zb.blkid == DMU_SPILL_BLKID {
            return self.dump_spill(zb.object, data);
        }
        let offset = zb.blkid.wrapping_mul(data.len() as u64);
        self.dump_data(object_type, zb.object, offset, bp, data)
    }
}

/// One send between its BEGIN and its END: the traversal taken one block
/// at a time, each [`step`](SendSession::step) writing that block's records
/// (`backup_cb`, checking for a signal first), so that a caller can wait
/// for room in a pipe, or let anything else run, between two of them. The
/// snapshot stays long-held until [`end`](SendSession::end); a step finds
/// its hold gone (the pool was imported again under it) and fails with EIO.
pub struct SendSession<'a, W: Write> {
    arg: SendArg<'a, W>,
    cursor: TraverseCursor,
    ds: DatasetId,
    hold: Option<u64>,
    ended: bool,
}

impl<W: Write> SendSession<'_, W> {
    /// The records of the next block, or the END once the traversal is
    /// over: true while there is more to send.
    pub fn step(&mut self, pool: &mut Pool) -> Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let held = self
            .hold
            .is_some_and(|tag| pool.long_held(self.ds, Some(tag)));
        if !held {
            return fail(Errno::EIO, "the sent snapshot's pool was imported again");
        }
        pool.check_usable()?;
        match self.cursor.next(&mut pool.zio)? {
            Some(visit) => {
                self.arg.backup_cb(&mut pool.zio, &visit.as_visit())?;
                Ok(true)
            }
            None => {
                let arg = &mut self.arg;
                arg.push_pending()?;
                // unreached: only the command line's stdout can fail here; the simulation and the
                // fuzzers write the stream into a Vec or a sink
                arg.out
                    .write_end(arg.toguid)
                    .map_err(|e| Error::new(Errno::EIO, format!("writing the stream: {e}")))?;
                arg.records += 1;
                // unreached: only the command line's stdout can fail a flush; the simulation and
                // the fuzzers write the stream into a Vec or a sink
                arg.out
                    .flush()
                    .map_err(|e| Error::new(Errno::EIO, format!("writing the stream: {e}")))?;
                self.ended = true;
                Ok(false)
            }
        }
    }

    /// Where the stream goes (a caller that carries the bytes on drains
    /// them from here between steps).
    pub fn out_mut(&mut self) -> &mut W {
        self.arg.out.get_mut()
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.arg.out.offset()
    }

    /// The snapshot being sent.
    pub fn dataset(&self) -> DatasetId {
        self.ds
    }

    /// Releases the long hold (also after a failure); what was sent.
    pub fn end(&mut self, pool: &mut Pool) -> SendSummary {
        if let Some(tag) = self.hold.take() {
            pool.long_rele(self.ds, tag);
        }
        SendSummary {
            bytes: self.arg.out.offset(),
            records: self.arg.records,
        }
    }
}

/// Never interrupted.
pub struct NoInterrupt;

impl Interrupt for NoInterrupt {
    fn pending(&mut self) -> bool {
        false
    }
}

impl Pool {
    /// `dsl_dataset_is_before`: `earlier` is a snapshot that `later` descends
    /// from, in the same filesystem or through clone origins.
    pub fn is_before(&self, later: DatasetId, earlier: DatasetId) -> bool {
        let (l, e) = (&self.dsl.datasets[&later], &self.dsl.datasets[&earlier]);
        if e.creation_txg >= l.creation_txg {
            return false;
        }
        if l.dir == e.dir {
            return true;
        }
        match self.dsl.dirs[&l.dir].origin {
            None => false,
            Some(origin) if origin == earlier => true,
            Some(origin) => self.is_before(origin, earlier),
        }
    }

    /// `dmu_send`: a full stream of snapshot `tosnap`, or an incremental one
    /// from `fromsnap` (an earlier snapshot of the same filesystem or of its
    /// origin: EXDEV otherwise). Both names are `pool/fs@snap`.
    pub fn send(
        &mut self,
        tosnap: &str,
        fromsnap: Option<&str>,
        out: &mut impl Write,
        options: &SendOptions,
        dedup: Option<&mut DedupTable>,
        interrupt: &mut dyn Interrupt,
    ) -> Result<SendSummary> {
        let (ds, fromds) = self.send_lookup(tosnap, fromsnap)?;
        self.send_impl(ds, fromds, out, options, dedup, interrupt)
    }

    /// `zfs send`'s arguments looked up: the snapshot `tosnap` and the
    /// incremental source `fromsnap` (names `pool/fs@snap`).
    pub fn send_lookup(
        &self,
        tosnap: &str,
        fromsnap: Option<&str>,
    ) -> Result<(DatasetId, Option<DatasetId>)> {
        self.check_usable()?;
        if !tosnap.contains('@') || fromsnap.is_some_and(|f| !f.contains('@')) {
            return fail(Errno::EINVAL, "send needs snapshot names (pool/fs@snap)");
        }
        let ds = self.lookup(tosnap)?;
        let fromds = fromsnap.map(|f| self.lookup(f)).transpose()?;
        Ok((ds, fromds))
    }

    /// `dmu_send_impl`: a [`SendSession`] driven to its end.
    pub fn send_impl(
        &mut self,
        ds: DatasetId,
        fromds: Option<DatasetId>,
        out: &mut impl Write,
        options: &SendOptions,
        dedup: Option<&mut DedupTable>,
        interrupt: &mut dyn Interrupt,
    ) -> Result<SendSummary> {
        let mut session = self.send_begin(ds, fromds, out, options, dedup, interrupt)?;
        loop {
            match session.step(self) {
                Ok(true) => {}
                Ok(false) => return Ok(session.end(self)),
                Err(e) => {
                    session.end(self);
                    return Err(e);
                }
            }
        }
    }

    /// The start of `dmu_send_impl`: the BEGIN record written to `out`, and
    /// the snapshot long-held (`dsl_dataset_long_hold`) until
    /// [`SendSession::end`], so that it cannot be destroyed while it is
    /// being sent.
    pub fn send_begin<'a, W: Write>(
        &mut self,
        ds: DatasetId,
        fromds: Option<DatasetId>,
        out: W,
        options: &SendOptions,
        dedup: Option<&'a mut DedupTable>,
        interrupt: &'a mut dyn Interrupt,
    ) -> Result<SendSession<'a, W>> {
        if let Some(from) = fromds
            && !self.is_before(ds, from)
        {
            return fail(
                Errno::EXDEV,
                format!(
                    "{} is not an earlier snapshot of {} or of its origin",
                    self.dataset_name(from),
                    self.dataset_name(ds)
                ),
            );
        }
        let d = self.dsl.datasets[&ds].clone();
        let objset_bp = d.bp;
        let os_type = if objset_bp.is_hole() {
            crate::dmu::objset::DMU_OST_ZFS
        } else {
            self.objset_type(&objset_bp)?
        };
        let mut begin = DrrBegin {
            creation_time: d.creation_time,
            objset_type: os_type as u32,
            toguid: d.guid,
            ..DrrBegin::default()
        };
        let mut features = 0;
        if self.uses_spill(&objset_bp)? {
            features |= DMU_BACKUP_FEATURE_SA_SPILL;
        }
        if dedup.is_some() {
            features |= DMU_BACKUP_FEATURE_DEDUP | DMU_BACKUP_FEATURE_DEDUPPROPS;
        }
        begin.set_features(features);
        let mut fromtxg = 0;
        if let Some(from) = fromds {
            let f = &self.dsl.datasets[&from];
            if f.dir != d.dir {
                begin.flags |= DRR_FLAG_CLONE;
            }
            begin.fromguid = f.guid;
            fromtxg = f.creation_txg;
        }
        if d.flags & DS_FLAG_CI_DATASET != 0 {
            begin.flags |= DRR_FLAG_CI_DATA;
        }
        begin.set_toname(&self.dataset_name(ds));

        let mut arg = SendArg {
            out: StreamWriter::new(out, options.byte_order),
            pending: Pending::None,
            pending_record: Record::End(Default::default()),
            toguid: d.guid,
            options: options.clone(),
            dedup,
            records: 0,
            interrupt,
        };
        arg.emit(&Record::Begin(Box::new(begin)), &[])?;
        let hold = (!planted!(SendWithoutLongHold)).then(|| self.long_hold(ds));
        Ok(SendSession {
            arg,
            cursor: TraverseCursor::new(objset_bp, fromtxg),
            ds,
            hold,
            ended: false,
        })
    }

    /// `os_type` of the objset at `bp`: the word after the meta-dnode and
    /// the ZIL header.
    fn objset_type(&mut self, bp: &Blkptr) -> Result<u64> {
        let data = self.zio.read_block(bp)?;
        let Some(word) = data.get(704..712) else {
            return fail(
                Errno::EIO,
                format!("objset block of {} bytes has no type", data.len()),
            );
        };
        Ok(u64::from_le_bytes(word.try_into().expect("8 bytes")))
    }

    /// Whether any object of the objset has a spill block (the stream then
    /// carries SPILL records and says so with the SA_SPILL feature).
    fn uses_spill(&mut self, bp: &Blkptr) -> Result<bool> {
        if bp.is_hole() {
            return Ok(false);
        }
        // The whole walk, as `traverse_dataset` makes it (the same reads),
        // though only the dnodes are looked at.
        let mut found = false;
        let mut cursor = TraverseCursor::dnode_blocks(*bp);
        while let Some(visit) = cursor.next(&mut self.zio)? {
            if let Some(dnodes) = visit.as_visit().dnodes {
                found |= dnodes.iter().flatten().any(|d| d.info().has_spill);
            }
        }
        Ok(found)
    }

    /// `dmu_send_estimate`: the stream size, from the space the snapshot
    /// holds (or has written since `fromsnap`).
    pub fn send_estimate(&mut self, tosnap: &str, fromsnap: Option<&str>) -> Result<u64> {
        let ds = self.lookup(tosnap)?;
        if !self.dsl.datasets[&ds].is_snapshot() {
            return fail(Errno::EINVAL, format!("{tosnap} is not a snapshot"));
        }
        let fromds = fromsnap.map(|f| self.lookup(f)).transpose()?;
        if let Some(from) = fromds
            && !self.is_before(ds, from)
        {
            return fail(
                Errno::EXDEV,
                format!(
                    "{} is not an earlier snapshot of {tosnap}",
                    fromsnap.unwrap_or("")
                ),
            );
        }
        let d = self.dsl.datasets[&ds].clone();
        let size = match fromds {
            None => d.uncompressed_bytes,
            Some(from) => {
                let txg = self.dsl.datasets[&from].creation_txg;
                let mut total = 0;
                let options = crate::traverse::WalkOptions {
                    min_birth: txg,
                    read_data: false,
                };
                crate::traverse::walk(
                    &mut self.zio,
                    &d.bp,
                    options,
                    &mut Default::default(),
                    &mut |bp| total += bp.lsize(),
                )?;
                total
            }
        };
        Ok(estimate_stream_size(size, u64::from(self.recordsize(ds))))
    }
}

/// `dmu_send_estimate`'s arithmetic on `size` bytes of blocks: as if every
/// block were `recordsize` bytes of data, less a block pointer each (the
/// indirect blocks' share), plus a record header each.
fn estimate_stream_size(size: u64, recordsize: u64) -> u64 {
    let size = size - size / recordsize * crate::zio::BLKPTR_SIZE as u64;
    size + size / recordsize * crate::stream::DRR_RECORD_SIZE as u64
}

#[cfg(test)]
mod tests {
    use super::estimate_stream_size;

    #[test]
    fn the_estimate_trades_a_block_pointer_for_a_record_header_per_block() {
        // 20 blocks of 128 KiB: 20 block pointers (128 bytes) out, then
        // 19 record headers (312 bytes) in, by the smaller size.
        let size = 20 * 131_072;
        assert_eq!(estimate_stream_size(size, 131_072), size - 2560 + 19 * 312);
        // 4 blocks of 512 bytes: 4 pointers out leave 1536 bytes, 3 headers.
        assert_eq!(estimate_stream_size(2048, 512), 2048 - 512 + 3 * 312);
        assert_eq!(estimate_stream_size(100, 512), 100);
    }
}
