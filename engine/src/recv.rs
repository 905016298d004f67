//! Receiving a stream (`dmu_send.c`: `dmu_recv_begin`, `dmu_recv_stream`,
//! `restore_*`, `dmu_recv_end`), behaviour for behaviour, with every field
//! validated before it is acted on.
//!
//! A receive writes into a dataset nobody else sees: a new filesystem, or a
//! temporary clone `%recv` of the target's latest snapshot, flagged
//! INCONSISTENT. Only `recv_end` makes it visible: it swaps the clone's
//! contents into the target (or keeps the new filesystem) and snapshots it
//! with the stream's guid and creation time. Any error on the way destroys
//! what was created, so the target is exactly as it was.

use std::collections::BTreeMap;
use std::io::Read;

use crate::byteswap;
use crate::context::Interrupt;
use crate::dmu::dnode::DN_MAX_BONUSLEN;
use crate::dmu::object_type::{self, DMU_OT_DNODE, DMU_OT_OBJSET};
use crate::dmu::objset::{DMU_OBJECT_END, DMU_OST_NUMTYPES, Objset};
use crate::dsl::dataset::prop_from_nv;
use crate::dsl::{
    DS_FLAG_CI_DATASET, DS_FLAG_INCONSISTENT, DatasetId, DirId, MAXNAMELEN, PropValue,
    split_snapshot_name,
};
use crate::error::{Errno, Error, Result, fail};
use crate::nvlist::NvValue;
use crate::spa::{Pool, TXG_INITIAL};
use crate::stream::{
    ByteOrder, DMU_BACKUP_FEATURE_MASK, DMU_BACKUP_FEATURE_SA_SPILL, DMU_BACKUP_MAGIC,
    DMU_COMPOUNDSTREAM, DRR_FLAG_CI_DATA, DRR_FLAG_CLONE, DrrBegin, DrrFree, DrrFreeObjects,
    DrrObject, DrrSpill, DrrWrite, DrrWriteByref, Entry, Record, StreamReader,
};
use crate::zio::compress::ZIO_COMPRESS_FUNCTIONS;
use crate::zio::{SPA_MAXBLOCKSIZE, SPA_MINBLOCKSIZE, ZIO_CHECKSUM_FUNCTIONS};

/// `recv_clone_name`.
pub const RECV_CLONE_NAME: &str = "%recv";
/// `SPA_VERSION_SA`: the pool version that brought system attributes.
pub const SPA_VERSION_SA: u64 = 24;

/// `dmu_recv_cookie_t`: a receive between begin and end.
#[derive(Clone, Debug)]
pub struct RecvCookie {
    pub tofs: String,
    pub tosnap: String,
    pub drrb: DrrBegin,
    pub force: bool,
    /// The dataset being written: a new filesystem or `tofs/%recv`.
    pub ds: DatasetId,
    pub newfs: bool,
    pub byteswap: bool,
}

/// Snapshots received earlier in the same session, by guid, for
/// WRITE_BYREF records that refer to them (`guid_to_ds_map`).
pub type GuidMap = BTreeMap<u64, DatasetId>;

impl Pool {
    /// `dmu_recv_begin`: checks that the stream may be received into `tofs`
    /// (`dmu_recv_begin_check`) and creates the dataset it will be written
    /// into (`dmu_recv_begin_sync`).
    pub fn recv_begin(
        &mut self,
        tofs: &str,
        tosnap: &str,
        drrb: &DrrBegin,
        order: ByteOrder,
        force: bool,
        origin: Option<&str>,
    ) -> Result<RecvCookie> {
        self.check_usable()?;
        if drrb.magic != DMU_BACKUP_MAGIC {
            // unreached: the stream reader refuses a BEGIN without DMU_BACKUP_MAGIC before a
            // session sees it (stream/reader.rs)
            return fail(Errno::EINVAL, "bad magic number in the BEGIN record");
        }
        let origin_id = self.recv_begin_check(tofs, tosnap, drrb, force, origin)?;
        let crflags = if drrb.flags & DRR_FLAG_CI_DATA != 0 {
            DS_FLAG_CI_DATASET
        } else {
            0
        };
        let objset_type = u64::from(drrb.objset_type);
        let mut created = (0, false);
        self.txg_sync_with(|pool, txg| {
            created = pool.recv_begin_sync(tofs, origin_id, crflags, objset_type, txg)?;
            Ok(())
        })?;
        let (ds, newfs) = created;
        Ok(RecvCookie {
            tofs: tofs.to_string(),
            tosnap: tosnap.to_string(),
            drrb: drrb.clone(),
            force,
            ds,
            newfs,
            byteswap: order.is_swapped(),
        })
    }

    /// `dmu_recv_begin_check`, with libzfs's feature check and the name
    /// checks: whether the stream may be received into `tofs`. Returns the
    /// origin of a clone stream, looked up.
    fn recv_begin_check(
        &mut self,
        tofs: &str,
        tosnap: &str,
        drrb: &DrrBegin,
        force: bool,
        origin: Option<&str>,
    ) -> Result<Option<DatasetId>> {
        let flags = drrb.flags;
        if drrb.hdrtype() == DMU_COMPOUNDSTREAM
            || u64::from(drrb.objset_type) >= DMU_OST_NUMTYPES
            || (flags & DRR_FLAG_CLONE != 0 && origin.is_none())
        {
            return fail(
                Errno::EINVAL,
                if flags & DRR_FLAG_CLONE != 0 && origin.is_none() {
                    "a clone stream needs an origin (-o origin=FS@SNAP)".to_string()
                } else {
                    format!(
                        "cannot receive hdrtype {} / objset type {}",
                        drrb.hdrtype(),
                        drrb.objset_type
                    )
                },
            );
        }
        supported_features(drrb)?;
        if drrb.features() & DMU_BACKUP_FEATURE_SA_SPILL != 0
            && crate::spa::SPA_VERSION < SPA_VERSION_SA
        {
            // unreached: SPA_VERSION is 28, past SPA_VERSION_SA (24), so this is always false
            return fail(
                Errno::ENOTSUP,
                "stream uses spill blocks, which this pool version lacks",
            );
        }
        if !crate::dsl::valid_component(tosnap) {
            return fail(Errno::EINVAL, format!("invalid snapshot name {tosnap:?}"));
        }
        // `zfs_ioc_recv`'s check of the snapshot's whole name, once libzfs
        // has checked the stream's header.
        if tofs.len() + 1 + tosnap.len() >= MAXNAMELEN {
            return fail(Errno::EINVAL, format!("{tofs}@{tosnap}: name too long"));
        }
        let fromguid = drrb.fromguid;

        match self.lookup(tofs) {
            Ok(ds) => {
                if flags & DRR_FLAG_CLONE != 0 {
                    return fail(
                        Errno::EINVAL,
                        format!("{tofs} exists: a clone stream makes a new filesystem"),
                    );
                }
                self.recv_begin_check_existing(ds, tofs, tosnap, fromguid, force)?;
            }
            Err(e) if e.errno() == Errno::ENOENT => {
                if fromguid != 0 && flags & DRR_FLAG_CLONE == 0 {
                    return fail(
                        Errno::ENOENT,
                        format!("{tofs} does not exist: an incremental stream needs it"),
                    );
                }
                let Some((parent, _)) = tofs.rsplit_once('/') else {
                    return fail(
                        Errno::EINVAL,
                        format!("{tofs}: cannot receive into a pool's root by name"),
                    );
                };
                self.lookup(parent)?;
                if let Some(origin) = origin {
                    let o = self.lookup(origin)?;
                    let o = &self.dsl.datasets[&o];
                    if !o.is_snapshot() {
                        return fail(Errno::EINVAL, format!("origin {origin} is not a snapshot"));
                    }
                    if o.guid != fromguid {
                        return fail(
                            Errno::ENODEV,
                            format!("origin {origin} is not the stream's source snapshot"),
                        );
                    }
                }
                // The name itself must be acceptable.
                let last = tofs.rsplit('/').next().unwrap_or_default();
                if !crate::dsl::valid_component(last) {
                    return fail(Errno::EINVAL, format!("invalid dataset name {tofs:?}"));
                }
            }
            Err(e) => return Err(e),
        }
        origin.map(|o| self.lookup(o)).transpose()
    }

    /// `recv_begin_check_existing_impl`.
    fn recv_begin_check_existing(
        &mut self,
        ds: DatasetId,
        tofs: &str,
        tosnap: &str,
        fromguid: u64,
        force: bool,
    ) -> Result<()> {
        if !force && self.modified_since_last_snapshot(ds)? {
            return fail(
                Errno::ETXTBSY,
                format!("{tofs} has been modified since its most recent snapshot"),
            );
        }
        let dir = self.dsl.datasets[&ds].dir;
        if self.dsl.dirs[&dir].children.contains_key(RECV_CLONE_NAME)
            && !planted!(RecvBeginIgnoresRecvClone)
        {
            return fail(
                Errno::EBUSY,
                format!("{tofs}/{RECV_CLONE_NAME} exists: a receive is in progress"),
            );
        }
        if self.lookup(&format!("{tofs}@{tosnap}")).is_ok() {
            return fail(Errno::EEXIST, format!("{tofs}@{tosnap} already exists"));
        }
        let d = &self.dsl.datasets[&ds];
        if fromguid != 0 {
            let Some(prev) = d.prev_snap else {
                return fail(
                    Errno::ENODEV,
                    format!("{tofs} has no snapshot for an incremental stream"),
                );
            };
            let p = &self.dsl.datasets[&prev];
            if p.guid != fromguid {
                // Most recent snapshot must match fromguid, or there must be
                // no changes since the one that does.
                let birth = p.bp.birth;
                let mut cur = p.prev_snap;
                loop {
                    let Some(id) = cur else {
                        return fail(
                            Errno::ENODEV,
                            format!("{tofs} has no snapshot with the stream's source guid"),
                        );
                    };
                    let s = &self.dsl.datasets[&id];
                    if s.creation_txg < birth {
                        return fail(
                            Errno::ENODEV,
                            format!(
                                "{tofs}: the stream's source snapshot is not its most recent one"
                            ),
                        );
                    }
                    if s.guid == fromguid {
                        break;
                    }
                    cur = s.prev_snap;
                }
            }
        } else if d.prev_snap_txg >= TXG_INITIAL {
            // Its latest snapshot, or for a clone without one, its origin.
            let what = if self.snapshots_of(ds).is_empty() {
                "is a clone"
            } else {
                "has snapshots"
            };
            return fail(
                Errno::ENODEV,
                format!("{tofs} {what}: a full stream cannot be received into it"),
            );
        }
        Ok(())
    }

    /// `dmu_recv_begin_sync`: the temporary clone (or the new filesystem),
    /// flagged INCONSISTENT.
    fn recv_begin_sync(
        &mut self,
        tofs: &str,
        origin: Option<DatasetId>,
        crflags: u64,
        objset_type: u64,
        txg: u64,
    ) -> Result<(DatasetId, bool)> {
        let now = self.clock.now_secs();
        let guid = self.rng.next_u64();
        let (ds, newfs) = match self.lookup(tofs) {
            Ok(target) => {
                let dir = self.dsl.datasets[&target].dir;
                let prev = self.dsl.datasets[&target].prev_snap;
                let ds = match prev {
                    Some(prev) => {
                        self.clone_sync(dir, RECV_CLONE_NAME.to_string(), prev, txg, now, guid)
                    }
                    None => self.create_sync(dir, RECV_CLONE_NAME.to_string(), now, txg, guid),
                };
                (ds, false)
            }
            Err(_) => {
                let (parent, last) = tofs.rsplit_once('/').expect("checked");
                let parent_dir = self.lookup_dir(parent)?;
                let ds = match origin.filter(|_| !planted!(CloneRecvNotCloned)) {
                    Some(origin) => {
                        self.clone_sync(parent_dir, last.to_string(), origin, txg, now, guid)
                    }
                    None => self.create_sync(parent_dir, last.to_string(), now, txg, guid),
                };
                (ds, true)
            }
        };
        let d = self.dsl.datasets.get_mut(&ds).expect("created");
        d.flags |= DS_FLAG_INCONSISTENT | crflags;
        if d.bp.is_hole() {
            self.objsets.insert(ds, Objset::create(objset_type));
        }
        Ok((ds, newfs))
    }

    /// What `dmu_recv_stream` checks before its first record.
    fn recv_stream_start(&mut self, cookie: &RecvCookie) -> Result<()> {
        self.check_usable()?;
        if self.dsl.datasets[&cookie.ds].flags & DS_FLAG_INCONSISTENT == 0 {
            // unreached: recv_begin_sync has just flagged the dataset INCONSISTENT, and only
            // recv_end_sync clears the flag
            return fail(Errno::EINVAL, "the receive's dataset is not inconsistent");
        }
        Ok(())
    }

    /// A receive stopped by `e`: what it created is destroyed, as
    /// `dmu_recv_stream` does on any error.
    fn recv_stream_failed(&mut self, cookie: &RecvCookie, e: Error) -> Error {
        if !(e.errno() == Errno::EINTR && planted!(SkipCleanupOnInterrupt)) {
            self.recv_cleanup(cookie);
        }
        e
    }

    /// One record of `dmu_recv_stream`'s loop, each `restore_*` its own tx:
    /// true at END (the reader compared the checksum). An error names the
    /// record and its byte offset; the caller cleans up.
    pub fn recv_record(
        &mut self,
        cookie: &RecvCookie,
        entry: &Entry<'_>,
        guid_map: &GuidMap,
        interrupt: &mut dyn Interrupt,
    ) -> Result<bool> {
        let context = |e: Error| {
            e.context(format!(
                "record {} ({}) at byte offset {}",
                entry.index,
                entry.record.drr_type(),
                entry.offset
            ))
        };
        if interrupt.pending() {
            return Err(context(Error::new(Errno::EINTR, "receive interrupted")));
        }
        let payload = entry.payload;
        let result = match &entry.record {
            Record::Object(o) => self.restore_object(cookie, o, payload),
            Record::FreeObjects(f) => self.restore_freeobjects(cookie, f),
            Record::Write(w) => self.restore_write(cookie, w, payload.to_vec()),
            Record::WriteByref(w) => self.restore_write_byref(cookie, w, guid_map),
            Record::Free(f) => self.restore_free(cookie, f),
            Record::Spill(s) => self.restore_spill(cookie, s, payload.to_vec()),
            Record::End(_) => return Ok(true),
            // unreached: the reader refuses a BEGIN between a BEGIN and its END, the only stretch
            // in which the session is InStream
            Record::Begin(_) => fail(Errno::EINVAL, "BEGIN record inside a stream"),
        };
        result.map_err(context).map(|()| false)
    }

    fn recv_dmu(&mut self, cookie: &RecvCookie) -> Result<crate::dmu::Dmu<'_>> {
        self.dmu(cookie.ds)
    }

    /// `restore_object`.
    fn restore_object(
        &mut self,
        cookie: &RecvCookie,
        drro: &DrrObject,
        payload: &[u8],
    ) -> Result<()> {
        let t = drro.object_type;
        if t == 0
            || !object_type::is_valid(t)
            || !object_type::is_valid(drro.bonustype)
            || drro.checksumtype >= ZIO_CHECKSUM_FUNCTIONS
            || drro.compress >= ZIO_COMPRESS_FUNCTIONS
            || u64::from(drro.blksz) % SPA_MINBLOCKSIZE != 0
            || u64::from(drro.blksz) < SPA_MINBLOCKSIZE
            || u64::from(drro.blksz) > SPA_MAXBLOCKSIZE
            || drro.bonuslen as usize > DN_MAX_BONUSLEN
            || t > 0xff
            || drro.bonustype > 0xff
        {
            return fail(
                Errno::EINVAL,
                format!(
                    "invalid OBJECT {}: type {} bonustype {} blksz {} bonuslen {} checksum {} compress {}",
                    drro.object,
                    t,
                    drro.bonustype,
                    drro.blksz,
                    drro.bonuslen,
                    drro.checksumtype,
                    drro.compress
                ),
            );
        }
        // Not in the seed: every traversal (send, scrub, the check) reads a
        // block of these types as dnodes or as an objset, so an object of
        // either type would make its data the snapshot's metadata.
        if t == DMU_OT_DNODE || t == DMU_OT_OBJSET {
            return fail(
                Errno::EINVAL,
                format!(
                    "invalid OBJECT {}: type {t} ({}) belongs to the DMU's own structures",
                    drro.object,
                    object_type::dmu_ot(t).map_or("?", |i| i.name)
                ),
            );
        }
        if (drro.object == 0 || drro.object >= crate::dmu::dnode::DN_MAX_OBJECT)
            && !planted!(UnvalidatedObjectNumber)
        {
            return fail(
                Errno::EINVAL,
                format!("object number {} out of range", drro.object),
            );
        }
        let bonuslen = drro.bonuslen as usize;
        let mut bonus = payload[..bonuslen].to_vec();
        if cookie.byteswap
            && let Some(class) = object_type::byteswap_class(drro.bonustype)
        {
            byteswap::byteswap(class, &mut bonus);
        }
        let mut tx = self.tx_create(cookie.ds);
        tx.hold_bonus(crate::dmu::tx::DMU_NEW_OBJECT);
        self.tx_assign(&mut tx)?;
        let mut dmu = self.recv_dmu(cookie)?;
        let exists = dmu.object_info(drro.object).is_ok();
        let (dn_type, bonustype) = (t as u8, drro.bonustype as u8);
        let claimed = if exists {
            dmu.object_reclaim(drro.object, dn_type, drro.blksz, bonustype, bonuslen)
        } else {
            dmu.object_claim(drro.object, dn_type, drro.blksz, bonustype, bonuslen)
        };
        claimed.map_err(|e| {
            Error::new(
                Errno::EINVAL,
                format!("cannot allocate object {}: {}", drro.object, e.reason()),
            )
        })?;
        if exists && planted!(ReclaimFreesContents) {
            dmu.free_range(drro.object, 0, DMU_OBJECT_END)?;
        }
        if exists && planted!(ReclaimDropsSpill) {
            dmu.set_spill(drro.object, None)?;
        }
        dmu.set_checksum(drro.object, drro.checksumtype)?;
        dmu.set_compress(drro.object, drro.compress)?;
        if bonuslen > 0 {
            dmu.set_bonus(drro.object, &bonus)?;
        }
        self.tx_commit(tx)
    }

    /// `restore_freeobjects`: frees the allocated objects in the range (a
    /// range past every object is fine: only allocated ones are visited).
    fn restore_freeobjects(&mut self, cookie: &RecvCookie, drrfo: &DrrFreeObjects) -> Result<()> {
        let Some(end) = drrfo.firstobj.checked_add(drrfo.numobjs) else {
            return fail(
                Errno::EINVAL,
                format!(
                    "FREEOBJECTS {} + {} overflows",
                    drrfo.firstobj, drrfo.numobjs
                ),
            );
        };
        let dmu = self.recv_dmu(cookie)?;
        let victims: Vec<u64> = dmu
            .objects()
            .into_iter()
            .filter(|&o| o >= drrfo.firstobj && o < end)
            .collect();
        drop(dmu);
        let victims = if planted!(FreeObjectsDoubleIncrement) {
            victims.into_iter().step_by(2).collect()
        } else {
            victims
        };
        for object in victims {
            let mut tx = self.tx_create(cookie.ds);
            tx.hold_free(object, 0, DMU_OBJECT_END);
            self.tx_assign(&mut tx)?;
            self.recv_dmu(cookie)?.object_free(object)?;
            self.tx_commit(tx)?;
        }
        Ok(())
    }

    /// `restore_write`.
    fn restore_write(
        &mut self,
        cookie: &RecvCookie,
        drrw: &DrrWrite,
        mut data: Vec<u8>,
    ) -> Result<()> {
        if drrw.offset.checked_add(drrw.length).is_none()
            || !object_type::is_valid(drrw.object_type)
        {
            return fail(
                Errno::EINVAL,
                format!(
                    "invalid WRITE: type {} offset {} length {}",
                    drrw.object_type, drrw.offset, drrw.length
                ),
            );
        }
        let info = self
            .recv_dmu(cookie)?
            .object_info(drrw.object)
            .map_err(|_| {
                Error::new(
                    Errno::EINVAL,
                    format!("WRITE to object {}, which does not exist", drrw.object),
                )
            })?;
        let blksz = u64::from(info.datablksz);
        if !info.datablksz.is_power_of_two() && drrw.offset + drrw.length > blksz {
            return fail(
                Errno::EINVAL,
                format!(
                    "WRITE past the single {blksz}-byte block of object {}",
                    drrw.object
                ),
            );
        }
        let mut tx = self.tx_create(cookie.ds);
        tx.hold_write(drrw.object, drrw.offset, drrw.length);
        self.tx_assign(&mut tx)?;
        if cookie.byteswap
            && let Some(class) = object_type::byteswap_class(drrw.object_type)
        {
            byteswap::byteswap(class, &mut data);
        }
        self.recv_dmu(cookie)?
            .write(drrw.object, drrw.offset, &data)?;
        self.tx_commit(tx)
    }

    /// `restore_write_byref`: the data of a block sent earlier, in this
    /// stream (`refguid == toguid`) or in a snapshot received before.
    fn restore_write_byref(
        &mut self,
        cookie: &RecvCookie,
        drrwbr: &DrrWriteByref,
        guid_map: &GuidMap,
    ) -> Result<()> {
        if drrwbr.offset.checked_add(drrwbr.length).is_none() {
            return fail(Errno::EINVAL, "WRITE_BYREF offset + length overflows");
        }
        let ref_ds = if drrwbr.toguid != drrwbr.refguid && !planted!(ByrefWrongDataset) {
            *guid_map.get(&drrwbr.refguid).ok_or_else(|| {
                Error::new(
                    Errno::EINVAL,
                    format!("WRITE_BYREF to unknown guid {:#x}", drrwbr.refguid),
                )
            })?
        } else {
            cookie.ds
        };
        let mut ref_dmu = self.dmu(ref_ds)?;
        let info = ref_dmu.object_info(drrwbr.refobject)?;
        let blksz = u64::from(info.datablksz);
        if !drrwbr.refoffset.is_multiple_of(blksz) || drrwbr.length > blksz || drrwbr.length == 0 {
            return fail(
                Errno::EINVAL,
                format!(
                    "WRITE_BYREF of {} bytes from offset {} of object {} (block size {blksz})",
                    drrwbr.length, drrwbr.refoffset, drrwbr.refobject
                ),
            );
        }
        let data = ref_dmu.read(drrwbr.refobject, drrwbr.refoffset, drrwbr.length)?;
        let exists = self.recv_dmu(cookie)?.object_info(drrwbr.object).is_ok();
        if !exists {
            return fail(
                Errno::ENOENT,
                format!(
                    "WRITE_BYREF to object {}, which does not exist",
                    drrwbr.object
                ),
            );
        }
        let mut tx = self.tx_create(cookie.ds);
        tx.hold_write(drrwbr.object, drrwbr.offset, drrwbr.length);
        self.tx_assign(&mut tx)?;
        self.recv_dmu(cookie)?
            .write(drrwbr.object, drrwbr.offset, &data)
            .map_err(|e| Error::new(Errno::EINVAL, e.reason().to_string()))?;
        self.tx_commit(tx)
    }

    /// `restore_spill`. As in the seed, spill data is not byteswapped.
    fn restore_spill(&mut self, cookie: &RecvCookie, drrs: &DrrSpill, data: Vec<u8>) -> Result<()> {
        if drrs.length < SPA_MINBLOCKSIZE || drrs.length > SPA_MAXBLOCKSIZE {
            return fail(Errno::EINVAL, format!("SPILL of {} bytes", drrs.length));
        }
        if self.recv_dmu(cookie)?.object_info(drrs.object).is_err() {
            return fail(
                Errno::EINVAL,
                format!("SPILL for object {}, which does not exist", drrs.object),
            );
        }
        let mut tx = self.tx_create(cookie.ds);
        tx.hold_spill(drrs.object);
        self.tx_assign(&mut tx)?;
        let mut data = data;
        if cookie.byteswap && planted!(SpillByteswappedOnRecv) {
            byteswap::byteswap(crate::dmu::object_type::ByteswapClass::Uint64, &mut data);
        }
        self.recv_dmu(cookie)?.set_spill(drrs.object, Some(data))?;
        self.tx_commit(tx)
    }

    /// `restore_free`.
    fn restore_free(&mut self, cookie: &RecvCookie, drrf: &DrrFree) -> Result<()> {
        if drrf.length != u64::MAX && drrf.offset.checked_add(drrf.length).is_none() {
            return fail(
                Errno::EINVAL,
                format!("FREE {} + {} overflows", drrf.offset, drrf.length),
            );
        }
        if self.recv_dmu(cookie)?.object_info(drrf.object).is_err() {
            return fail(
                Errno::EINVAL,
                format!("FREE of object {}, which does not exist", drrf.object),
            );
        }
        let mut tx = self.tx_create(cookie.ds);
        tx.hold_free(drrf.object, drrf.offset, drrf.length);
        self.tx_assign(&mut tx)?;
        self.recv_dmu(cookie)?
            .free_range(drrf.object, drrf.offset, drrf.length)?;
        self.tx_commit(tx)
    }

    /// `dmu_recv_cleanup_ds`: destroys what the receive created. Nothing
    /// else was touched, so the target is as it was.
    pub fn recv_cleanup(&mut self, cookie: &RecvCookie) {
        if planted!(SkipRecvCleanup) {
            return;
        }
        if !self.dsl.datasets.contains_key(&cookie.ds) || self.check_usable().is_err() {
            return;
        }
        // Unsynced writes of the receive are dropped with its objset.
        self.objsets.remove(&cookie.ds);
        let ds = cookie.ds;
        // The receive wrote only into `ds`: the origin of a `%recv` clone
        // has the unique space it had, which the clone never held.
        let _ = self.txg_sync_with(|pool, _| pool.destroy_head_sync_impl(ds, false));
    }

    /// `dmu_recv_end`: makes the received data visible as `tofs@tosnap`.
    pub fn recv_end(&mut self, cookie: &RecvCookie, guid_map: &mut GuidMap) -> Result<DatasetId> {
        let result = self.recv_end_impl(cookie);
        match result {
            Ok(snap) => {
                // The seed adds only a new filesystem's snapshot
                // (`dmu_recv_new_end`), so a `send -D -I` into an existing
                // filesystem fails at the first WRITE_BYREF into an earlier
                // substream (EINVAL). zsim maps every snapshot received,
                // as later ZFS does.
                guid_map.insert(cookie.drrb.toguid, snap);
                Ok(snap)
            }
            Err(e) => {
                self.recv_cleanup(cookie);
                Err(e)
            }
        }
    }

    /// The sync task `dmu_recv_new_end` and `dmu_recv_existing_end` run:
    /// `dmu_recv_end_check`, then `dmu_recv_end_sync`.
    fn recv_end_impl(&mut self, cookie: &RecvCookie) -> Result<DatasetId> {
        self.check_usable()?;
        // Pending writes go out first: the checks look at synced state.
        self.txg_sync()?;
        let target = self.recv_end_check(cookie)?;
        let mut snap = 0;
        self.txg_sync_with(|pool, txg| {
            snap = pool.recv_end_sync(cookie, target, txg)?;
            Ok(())
        })?;
        Ok(snap)
    }

    /// `dmu_recv_end_check`: whether the received dataset can become
    /// `tofs@tosnap`. Returns the dataset to snapshot: the new filesystem,
    /// or the target that takes the clone's contents.
    fn recv_end_check(&mut self, cookie: &RecvCookie) -> Result<DatasetId> {
        let target = if cookie.newfs {
            cookie.ds
        } else {
            let head = self.lookup(&cookie.tofs)?;
            self.clone_swap_check(cookie.ds, head, cookie.force)?;
            // Its own hold on the clone is the one expected.
            self.destroy_head_check(cookie.ds, 1)?;
            head
        };
        let dir = self.dsl.datasets[&target].dir;
        if self
            .dsl
            .datasets
            .values()
            .any(|d| d.dir == dir && d.snapname.as_deref() == Some(cookie.tosnap.as_str()))
        {
            // unreached: recv_begin_check refused tosnap if it existed; since then a new
            // filesystem takes no snapshot (snapshot_many: EBUSY while INCONSISTENT), and one of
            // an incremental's target changes its prev_snap, which clone_swap_check refuses first
            return fail(
                Errno::EEXIST,
                format!("{}@{} already exists", cookie.tofs, cookie.tosnap),
            );
        }
        Ok(target)
    }

    /// `dmu_recv_end_sync`: swaps the clone's contents into `target` (not
    /// for a new filesystem), snapshots it with the stream's guid and
    /// creation time, and destroys the clone. Returns the snapshot.
    fn recv_end_sync(
        &mut self,
        cookie: &RecvCookie,
        target: DatasetId,
        txg: u64,
    ) -> Result<DatasetId> {
        let drrb = &cookie.drrb;
        if !cookie.newfs {
            self.clone_swap_sync(cookie.ds, target);
        }
        let snap = self.snapshot_sync(target, &cookie.tosnap, txg, drrb.creation_time, drrb.toguid);
        self.dsl.datasets.get_mut(&snap).expect("created").flags &= !DS_FLAG_INCONSISTENT;
        self.dsl.datasets.get_mut(&target).expect("exists").flags &= !DS_FLAG_INCONSISTENT;
        if !cookie.newfs {
            self.destroy_head_sync(cookie.ds)?;
        }
        Ok(snap)
    }

    /// `dsl_dataset_clone_swap_check_impl`.
    fn clone_swap_check(&mut self, clone: DatasetId, head: DatasetId, force: bool) -> Result<()> {
        let (c, h) = (&self.dsl.datasets[&clone], &self.dsl.datasets[&head]);
        if c.is_snapshot() || h.is_snapshot() || c.prev_snap != h.prev_snap {
            return fail(
                Errno::EINVAL,
                "the received clone no longer branches from its target",
            );
        }
        if self.dsl.dirs[&c.dir].parent != Some(h.dir) {
            // unreached: %recv is made in its target's dir, a dir with children cannot be destroyed
            // (EEXIST), and nothing renames or moves a dir
            return fail(
                Errno::EINVAL,
                "the received clone is not a child of its target",
            );
        }
        if !force && !planted!(RecvEndIgnoresChanges) && self.modified_since_last_snapshot(head)? {
            return fail(Errno::ETXTBSY, "the target was modified during the receive");
        }
        Ok(())
    }

    /// `dsl_dataset_clone_swap_sync_impl`: the target takes the clone's
    /// contents and space, the clone the target's (to be destroyed).
    fn clone_swap_sync(&mut self, clone: DatasetId, head: DatasetId) {
        let c = self.dsl.datasets[&clone].clone();
        let h = self.dsl.datasets.get_mut(&head).expect("exists");
        let old = (
            h.bp,
            h.referenced_bytes,
            h.compressed_bytes,
            h.uncompressed_bytes,
            h.unique_bytes,
            std::mem::take(&mut h.deadlist),
        );
        h.bp = c.bp;
        h.referenced_bytes = c.referenced_bytes;
        h.compressed_bytes = c.compressed_bytes;
        h.uncompressed_bytes = c.uncompressed_bytes;
        h.unique_bytes = c.unique_bytes;
        h.deadlist = c.deadlist;
        let c = self.dsl.datasets.get_mut(&clone).expect("exists");
        (
            c.bp,
            c.referenced_bytes,
            c.compressed_bytes,
            c.uncompressed_bytes,
            c.unique_bytes,
            c.deadlist,
        ) = old;
        // Open objsets follow their contents.
        let head_os = self.objsets.remove(&head);
        let clone_os = self.objsets.remove(&clone);
        if let Some(os) = clone_os {
            self.objsets.insert(head, os);
        }
        if let Some(os) = head_os {
            self.objsets.insert(clone, os);
        }
        self.dsl_dirty = true;
    }

    /// `zfs receive`: reads a stream from `input` and receives it into
    /// `target` (`fs` takes the stream's snapshot name, `fs@snap` names it),
    /// substream by substream for a compound (`-I`) stream, as libzfs does.
    /// Streams that follow one another in the input are received in turn,
    /// in one session (they share the dedup guid map), as a `zfs send -I`
    /// would have carried them. When one is refused, the error is returned
    /// and the ones before it stay received, whole; the refused one leaves
    /// nothing behind. A [`RecvSession`] fed from `input` record by record.
    pub fn receive(
        &mut self,
        target: &str,
        input: impl Read,
        options: &RecvOptions,
        interrupt: &mut dyn Interrupt,
    ) -> Result<Vec<DatasetId>> {
        let mut reader = StreamReader::new(input);
        let mut session = RecvSession::new(target, options);
        loop {
            match reader.next_record() {
                Ok(Some(entry)) => session.record(self, &entry, interrupt)?,
                Ok(None) => return session.end(self),
                Err(e) => return Err(session.fail(self, e.into())),
            }
        }
    }
}

/// Where a [`RecvSession`] is between two records.
#[derive(Clone, Debug)]
enum SessionState {
    /// Before the first BEGIN, or between two substreams.
    Between,
    /// After a compound (`-I`) stream's BEGIN: its END must follow.
    CompoundHeader,
    /// Inside a substream, written into the cookie's dataset.
    InStream(RecvCookie),
    /// A substream's END was read. Its snapshot is made once what follows
    /// is known to be a record or the end of the input, so that a stream
    /// with garbage after it is refused whole.
    Ended(RecvCookie),
    /// Ended or failed: nothing more is received.
    Closed,
}

/// `zfs receive` as a session a caller feeds one whole record at a time
/// (from a [`RecordFeed`](crate::stream::reader::RecordFeed) fed by a pipe),
/// so that anything may happen between two records: `dmu_recv_begin` at a
/// BEGIN, each record its own tx, `dmu_recv_end` after an END. Any error
/// destroys what the session created and closes it; so does
/// [`abort`](RecvSession::abort), for a caller that stops (a signal while
/// waiting for bytes). [`Pool::receive`] is this session over a reader.
#[derive(Clone, Debug)]
pub struct RecvSession {
    target: String,
    options: RecvOptions,
    guid_map: GuidMap,
    /// The long hold on each snapshot of the guid map, as the seed's
    /// `add_ds_to_guidmap` takes: a WRITE_BYREF of a later substream may
    /// read it, so it cannot be destroyed (EBUSY) until the session ends.
    guid_holds: Vec<(DatasetId, u64)>,
    received: Vec<DatasetId>,
    state: SessionState,
    /// The long hold on the dataset being written (`dsl_dataset_own`), by
    /// which a record finds out that its pool was imported again.
    hold: u64,
    /// For a replication stream (`zfs send -R`): the filesystem sent, whose
    /// place the target takes; every substream lands at the same place
    /// under the target (`fxp/rep/kid` sent as `fxp/rep`, into `T`: `T/kid`).
    sendfs: Option<String>,
    /// A replication stream's properties, by the name of the filesystem
    /// sent (`fss`, `props`), as text: set as received values on its
    /// target when its substream begins, so that the blocks it writes
    /// follow them (compression, checksum), as `zfs_ioc_recv` sets them.
    sent_props: SentProps,
    /// The target's received values before the substream in flight set
    /// its own: put back if it fails.
    props_before: Option<(DirId, BTreeMap<String, PropValue>)>,
    /// The same for the local values `-o` set.
    local_before: Option<(DirId, BTreeMap<String, Option<PropValue>>)>,
}

impl RecvSession {
    pub fn new(target: &str, options: &RecvOptions) -> RecvSession {
        RecvSession {
            target: target.to_string(),
            options: options.clone(),
            guid_map: GuidMap::new(),
            guid_holds: Vec::new(),
            received: Vec::new(),
            state: SessionState::Between,
            hold: 0,
            sendfs: None,
            sent_props: BTreeMap::new(),
            props_before: None,
            local_before: None,
        }
    }

    /// The receive written into now, between its BEGIN and its end.
    pub fn in_flight(&self) -> Option<&RecvCookie> {
        match &self.state {
            SessionState::InStream(c) | SessionState::Ended(c) => Some(c),
            _ => None,
        }
    }

    /// The snapshots received so far, whole.
    pub fn received(&self) -> &[DatasetId] {
        &self.received
    }

    /// Whether the session ended or failed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, SessionState::Closed)
    }

    /// One whole record, as the reader checked it.
    pub fn record(
        &mut self,
        pool: &mut Pool,
        entry: &Entry<'_>,
        interrupt: &mut dyn Interrupt,
    ) -> Result<()> {
        self.check_held(pool)?;
        let cookie = self.in_flight().map(|c| c.ds);
        let result = self.record_impl(pool, entry, interrupt);
        if result.is_err() {
            self.state = SessionState::Closed;
            self.undo_props(pool);
            self.release_guid_holds(pool);
        }
        self.release_if_done(pool, cookie);
        result
    }

    /// `dmu_recv_end` of the substream that just ended: its snapshot is
    /// made, received, put in the guid map and held there; what the
    /// substream set is kept.
    fn end_substream(&mut self, pool: &mut Pool, cookie: &RecvCookie) -> Result<()> {
        let snap = pool.recv_end(cookie, &mut self.guid_map)?;
        self.received.push(snap);
        self.guid_holds.push((snap, pool.long_hold(snap)));
        self.props_before = None;
        self.local_before = None;
        Ok(())
    }

    /// The session is over: the guid map's holds go (`free_guid_map_onexit`).
    fn release_guid_holds(&mut self, pool: &mut Pool) {
        for (ds, tag) in std::mem::take(&mut self.guid_holds) {
            pool.long_rele(ds, tag);
        }
    }

    /// A receive in flight whose pool was imported again (its `%recv` was
    /// destroyed at import, the holder with it) is over: EIO, and nothing
    /// of the new pool is touched.
    fn check_held(&mut self, pool: &Pool) -> Result<()> {
        match self.in_flight() {
            Some(c) if !pool.long_held(c.ds, Some(self.hold)) => {
                self.state = SessionState::Closed;
                // The pool imported again holds nothing of this session.
                self.guid_holds.clear();
                fail(
                    Errno::EIO,
                    "the receiving pool was imported again during the receive",
                )
            }
            _ => Ok(()),
        }
    }

    /// Releases the hold on `was` (the dataset in flight before a call)
    /// once the session has moved past it.
    fn release_if_done(&mut self, pool: &mut Pool, was: Option<DatasetId>) {
        if let Some(ds) = was
            && self.in_flight().map(|c| c.ds) != Some(ds)
        {
            pool.long_rele(ds, self.hold);
        }
        if let Some(c) = self.in_flight()
            && Some(c.ds) != was
        {
            let ds = c.ds;
            self.hold = pool.long_hold(ds);
        }
    }

    fn record_impl(
        &mut self,
        pool: &mut Pool,
        entry: &Entry<'_>,
        interrupt: &mut dyn Interrupt,
    ) -> Result<()> {
        match std::mem::replace(&mut self.state, SessionState::Closed) {
            // unreached: no caller feeds a session after an error or end(): Pool::receive returns
            // at its `?`, and the simulation's receive loop stops at the first error
            SessionState::Closed => fail(Errno::EINVAL, "the receive has ended"),
            SessionState::InStream(cookie) => {
                match pool.recv_record(&cookie, entry, &self.guid_map, interrupt) {
                    Ok(true) => self.state = SessionState::Ended(cookie),
                    Ok(false) => self.state = SessionState::InStream(cookie),
                    Err(e) => return Err(pool.recv_stream_failed(&cookie, e)),
                }
                Ok(())
            }
            SessionState::CompoundHeader => match entry.record {
                Record::End(_) => {
                    self.state = SessionState::Between;
                    Ok(())
                }
                _ => fail(Errno::EINVAL, "compound stream header without its END"),
            },
            SessionState::Ended(cookie) => {
                self.end_substream(pool, &cookie)?;
                self.between(pool, entry)
            }
            SessionState::Between => self.between(pool, entry),
        }
    }

    /// A record between substreams: a BEGIN, or a compound stream's closing
    /// END.
    fn between(&mut self, pool: &mut Pool, entry: &Entry<'_>) -> Result<()> {
        let begin = match &entry.record {
            Record::Begin(b) => b,
            // A compound stream's closing END.
            Record::End(_) if !self.received.is_empty() => {
                self.state = SessionState::Between;
                return Ok(());
            }
            other => {
                return fail(
                    Errno::EINVAL,
                    format!("expected a BEGIN record, found {}", other.drr_type()),
                );
            }
        };
        // A refused BEGIN is named as a refused record is.
        let at = format!(
            "record {} (BEGIN) at byte offset {}",
            entry.index, entry.offset
        );
        // libzfs checks every BEGIN's feature flags first, a compound
        // header's too, before it looks for a replicated clone's origin or
        // asks the kernel.
        supported_features(begin).map_err(|e| e.context(at.clone()))?;
        if begin.hdrtype() == DMU_COMPOUNDSTREAM {
            if begin.payloadlen != 0 {
                let (sendfs, props) = self.replication_header(begin, entry.payload, &at)?;
                self.sendfs = Some(sendfs);
                self.sent_props = props;
            }
            // Its END follows, then the substreams.
            self.state = SessionState::CompoundHeader;
            return Ok(());
        }
        let name = begin.toname_lossy();
        let snapname = split_snapshot_name(&name)
            .map(|(_, s)| s.to_string())
            .unwrap_or_default();
        let sent_fs = name.split('@').next().unwrap_or_default();
        let (tofs, tosnap) = match (&self.sendfs, split_snapshot_name(&self.target)) {
            (Some(sendfs), _) => {
                let Some(rest) = sent_fs
                    .strip_prefix(sendfs.as_str())
                    .filter(|r| r.is_empty() || r.starts_with('/'))
                else {
                    return fail(
                        Errno::EINVAL,
                        format!("{at}: substream of {sent_fs} is outside the tree sent ({sendfs})"),
                    );
                };
                (format!("{}{rest}", self.target), snapname)
            }
            (None, Some((fs, snap))) => (fs.to_string(), snap.to_string()),
            (None, None) => (self.target.clone(), snapname),
        };
        // In a replication stream a clone's origin was sent before it, or
        // must be here already: found by its guid, as libzfs finds it, or
        // ENOENT as libzfs refuses it ("local origin for clone ... does
        // not exist").
        let origin = match &self.sendfs {
            Some(_) if begin.flags & DRR_FLAG_CLONE != 0 => {
                let found = pool
                    .list()
                    .into_iter()
                    .find(|d| d.is_snapshot && d.guid == begin.fromguid);
                let Some(found) = found else {
                    return fail(
                        Errno::ENOENT,
                        format!(
                            "{at}: local origin for clone {tofs} does not exist (no snapshot \
                             has guid {:#x})",
                            begin.fromguid
                        ),
                    );
                };
                Some(found.name)
            }
            _ => self.options.origin.clone(),
        };
        if begin.fromguid == 0 && begin.flags & DRR_FLAG_CLONE == 0 && pool.lookup(&tofs).is_ok() {
            let fs = pool.lookup(&tofs)?;
            if !self.options.force {
                return fail(
                    Errno::EEXIST,
                    format!("destination {tofs} exists: must specify -F to overwrite it"),
                );
            }
            if !pool.snapshots_of(fs).is_empty() {
                return fail(
                    Errno::EEXIST,
                    format!("destination {tofs} has snapshots: must destroy them to overwrite it"),
                );
            }
        }
        let cookie = pool
            .recv_begin(
                &tofs,
                &tosnap,
                begin,
                entry.order,
                self.options.force,
                origin.as_deref(),
            )
            .map_err(|e| e.context(at.clone()))?;
        if let Some(values) = self.sent_props.get(sent_fs)
            && let Ok(dir) = pool.lookup_dir(&tofs)
        {
            let before = pool.set_received(dir, values);
            self.props_before = Some((dir, before));
        }
        if !self.options.props.is_empty()
            && self.received.is_empty()
            && let Ok(dir) = pool.lookup_dir(&tofs)
        {
            match pool.set_local_props(dir, &self.options.props) {
                Ok(before) => self.local_before = Some((dir, before)),
                Err(e) => {
                    self.undo_props(pool);
                    let e = e.context(format!("{at}: -o"));
                    return Err(pool.recv_stream_failed(&cookie, e));
                }
            }
        }
        if let Err(e) = pool.recv_stream_start(&cookie) {
            self.undo_props(pool);
            return Err(pool.recv_stream_failed(&cookie, e));
        }
        self.state = SessionState::InStream(cookie);
        Ok(())
    }

    /// Puts back the received property values the failed substream set,
    /// and the local ones `-o` set.
    fn undo_props(&mut self, pool: &mut Pool) {
        if let Some((dir, before)) = self.props_before.take() {
            pool.restore_received(dir, before);
        }
        if let Some((dir, before)) = self.local_before.take() {
            pool.restore_local(dir, before);
        }
    }

    /// A replication stream's header (`zfs send -R`): its nvlist must
    /// unpack and describe the filesystems sent (`fss`), and the target
    /// must be a filesystem. Returns the filesystem sent, and the
    /// properties of each filesystem in it (by its sent name).
    /// `at` names the header's BEGIN record.
    fn replication_header(
        &self,
        begin: &DrrBegin,
        payload: &[u8],
        at: &str,
    ) -> Result<(String, SentProps)> {
        let list = crate::nvlist::unpack_xdr(payload).map_err(|e| {
            Error::new(
                Errno::EINVAL,
                format!("{at}: cannot unpack the replication header: {e}"),
            )
        })?;
        let Some(fss) = list.get_nvlist("fss") else {
            return fail(
                Errno::EINVAL,
                format!("{at}: a replication header without the filesystems sent (fss)"),
            );
        };
        let mut props = BTreeMap::new();
        for (_, fs) in &fss.pairs {
            if let NvValue::NvList(fs) = fs
                && let (Some(name), Some(sent)) = (fs.get_str("name"), fs.get_nvlist("props"))
            {
                let texts = sent
                    .pairs
                    .iter()
                    .filter_map(|(p, v)| prop_from_nv(p, v).map(|t| (p.clone(), t)))
                    .collect();
                props.insert(name.to_string(), texts);
            }
        }
        if self.target.contains('@') {
            return fail(
                Errno::EINVAL,
                format!(
                    "{at}: a replication stream is received into a filesystem, not a snapshot \
                     ({})",
                    self.target
                ),
            );
        }
        let name = begin.toname_lossy();
        Ok((
            name.split('@').next().unwrap_or_default().to_string(),
            props,
        ))
    }

    /// The input ended cleanly (right after an END): the last substream's
    /// snapshot is made. Returns every snapshot received.
    pub fn end(&mut self, pool: &mut Pool) -> Result<Vec<DatasetId>> {
        self.check_held(pool)?;
        let was = self.in_flight().map(|c| c.ds);
        let result = self.end_impl(pool);
        if result.is_err() {
            self.undo_props(pool);
        }
        self.release_guid_holds(pool);
        self.release_if_done(pool, was);
        result
    }

    fn end_impl(&mut self, pool: &mut Pool) -> Result<Vec<DatasetId>> {
        match std::mem::replace(&mut self.state, SessionState::Closed) {
            SessionState::Ended(cookie) => self.end_substream(pool, &cookie)?,
            SessionState::InStream(cookie) => {
                // unreached: end() is called only when the reader reports a clean end, which comes
                // only right after an END, and that END moved the session out of InStream
                let e = Error::new(Errno::EINVAL, "stream ends before its END record");
                return Err(pool.recv_stream_failed(&cookie, e));
            }
            SessionState::CompoundHeader => {
                // unreached: a compound BEGIN leaves the reader InStream, so an input ending there
                // is the reader's own error and end() is not called
                return fail(Errno::EINVAL, "compound stream header without its END");
            }
            // unreached: end() runs at most once, and never after an error closed the session: both
            // receive loops stop at the first error
            SessionState::Closed => return fail(Errno::EINVAL, "the receive has ended"),
            SessionState::Between => {}
        }
        if self.received.is_empty() {
            return fail(Errno::EINVAL, "empty stream");
        }
        Ok(self.received.clone())
    }

    /// The input failed with `e` (a damaged or cut stream, a failed read):
    /// what the session created is destroyed. Returns `e`.
    pub fn fail(&mut self, pool: &mut Pool, e: Error) -> Error {
        if let Err(gone) = self.check_held(pool) {
            return e.context(gone.reason().to_string());
        }
        self.undo_props(pool);
        self.release_guid_holds(pool);
        match std::mem::replace(&mut self.state, SessionState::Closed) {
            SessionState::InStream(cookie) | SessionState::Ended(cookie) => {
                pool.long_rele(cookie.ds, self.hold);
                pool.recv_stream_failed(&cookie, e)
            }
            _ => e,
        }
    }

    /// The caller stops receiving (`zfs receive` killed): as
    /// [`fail`](RecvSession::fail).
    pub fn abort(&mut self, pool: &mut Pool, e: Error) -> Error {
        self.fail(pool, e)
    }
}

/// libzfs's `DMU_STREAM_SUPPORTED`: no feature flag zsim does not know.
fn supported_features(begin: &DrrBegin) -> Result<()> {
    if begin.features() & !DMU_BACKUP_FEATURE_MASK != 0 {
        return fail(
            Errno::ENOTSUP,
            format!(
                "stream has unsupported feature flags {:#x}",
                begin.features()
            ),
        );
    }
    Ok(())
}

/// A replication stream's properties as text, by the filesystem sent.
type SentProps = BTreeMap<String, Vec<(String, String)>>;

/// `zfs receive` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecvOptions {
    /// `-F`.
    pub force: bool,
    /// `-o origin=FS@SNAP` for a clone stream.
    pub origin: Option<String>,
    /// `-o PROP=VALUE`: set locally on the filesystem the first substream
    /// receives into (a replication stream's top), before its data.
    pub props: Vec<(String, String)>,
}
