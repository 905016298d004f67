//! The storage pool: labels, the uberblock ring, txg sync, create, import
//! and export (`spa.c`, `vdev_label.c`, `txg.c`, `dsl_pool.c`).
//!
//! Device layout: four 256 KiB labels, two at the front and two at the end,
//! each holding the pool's config (an XDR nvlist, checksummed) and a ring of
//! uberblocks; data lives between them. A txg sync writes every dirty block
//! copy-on-write, flushes, writes the uberblock to slot `txg % slots` of
//! every label, and flushes again. Import takes the newest uberblock whose
//! own checksum verifies and whose tree reads; a torn or lost uberblock
//! write leaves the previous one in charge.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::context::{Clock, RandomSource};
use crate::dmu::objset::{DMU_OST_META, DMU_OST_ZFS, Objset};
use crate::dsl::{DatasetId, DslDataset, DslDir, DslState};
use crate::error::{Errno, Error, Result, fail};
use crate::metaslab::{Metaslab, TXG_DEFER_SIZE};
use crate::nvlist::{self, NvList, NvValue};
use crate::traverse::{WalkOptions, walk};
use crate::vdev::{BlockDevice, Mirror, MirrorChild};
use crate::zio::{BLKPTR_SIZE, Blkptr, ReadCache, Zio};

pub const VDEV_LABEL_SIZE: u64 = 256 << 10;
/// Where the config nvlist sits in a label, and how much room it has.
const LABEL_CONFIG_OFFSET: u64 = 16 << 10;
const LABEL_CONFIG_SIZE: usize = 112 << 10;
const LABEL_RING_OFFSET: u64 = 128 << 10;
const LABEL_RING_SIZE: u64 = 128 << 10;
/// Data starts after the two front labels.
pub const DATA_START: u64 = 2 * VDEV_LABEL_SIZE;
/// The smallest device a pool can be made on.
pub const SPA_MINDEVSIZE: u64 = 8 << 20;
pub const UBERBLOCK_MAGIC: u64 = 0x00ba_b10c;
/// The txg a new pool's first sync writes (`TXG_INITIAL`).
pub const TXG_INITIAL: u64 = 4;
/// The pool version zsim pools have: 28, the last before feature flags, so
/// that streams with spill blocks (`SPA_VERSION_SA`, 24) can be received.
pub const SPA_VERSION: u64 = 28;
/// The MOS object holding the DSL record.
const MOS_DSL_OBJECT: u64 = 1;
/// A mirror pool's MOS object whose bonus records each child's missed
/// txgs (`DTL_MISSING`, which ZFS keeps in a space map per leaf), so that
/// what a child missed is still known after an import.
const MOS_VDEV_DTL_OBJECT: u64 = 2;
/// Room in its bonus: a count, then (guid, first, last + 1) per child.
const DTL_RECORD_LEN: usize = 8 + 24 * crate::vdev::MIRROR_MAX_CHILDREN;

/// What `spa_sync` leaves in a ring slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uberblock {
    pub version: u64,
    pub txg: u64,
    pub guid_sum: u64,
    pub timestamp: u64,
    pub rootbp: Blkptr,
}

impl Uberblock {
    /// The slot's bytes with the checksum left zero, and the hash of what
    /// it covers: the copies differ only in the offset that verifies them.
    fn encode(&self, slot_size: usize) -> (Vec<u8>, Sha256) {
        let mut buf = vec![0u8; slot_size];
        for (i, v) in [
            UBERBLOCK_MAGIC,
            self.version,
            self.txg,
            self.guid_sum,
            self.timestamp,
        ]
        .into_iter()
        .enumerate()
        {
            buf[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.rootbp.encode(&mut buf[40..40 + BLKPTR_SIZE]);
        let hashed = Sha256::new_with_prefix(&buf[..slot_size - 32]);
        (buf, hashed)
    }

    fn decode(buf: &[u8], offset: u64) -> Option<Uberblock> {
        let n = buf.len();
        let word =
            |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        // The magic first: most slots of a young pool's rings were never
        // written, and import would otherwise hash every one of them.
        if word(0) != UBERBLOCK_MAGIC || label_checksum(&buf[..n - 32], offset) != buf[n - 32..] {
            return None;
        }
        Some(Uberblock {
            version: word(1),
            txg: word(2),
            guid_sum: word(3),
            timestamp: word(4),
            rootbp: Blkptr::decode(&buf[40..40 + BLKPTR_SIZE]),
        })
    }
}

/// SHA-256 with the block's own offset as verifier (`zio_checksum_label`),
/// so a label written to the wrong place does not verify.
fn label_checksum(data: &[u8], offset: u64) -> [u8; 32] {
    label_checksum_of_hashed(Sha256::new_with_prefix(data), offset)
}

/// [`label_checksum`] of data already fed to `hashed`: the four labels'
/// configs differ only in the offset, so their data is hashed once.
fn label_checksum_of_hashed(mut hashed: Sha256, offset: u64) -> [u8; 32] {
    hashed.update(offset.to_le_bytes());
    hashed.finalize().into()
}

/// Pool state recorded in the labels.
pub const POOL_STATE_ACTIVE: u64 = 0;
pub const POOL_STATE_EXPORTED: u64 = 1;

/// An open pool: the SPA and the DSL pool together.
pub struct Pool {
    pub name: String,
    pub guid: u64,
    /// The top-level vdev's guid (the pool's own on a single disk).
    top_guid: u64,
    pub(crate) zio: Zio,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) rng: Box<dyn RandomSource>,
    slot_size: u64,
    open_txg: u64,
    synced_txg: u64,
    mos: Objset,
    pub(crate) dsl: DslState,
    pub(crate) dsl_dirty: bool,
    /// Open objsets of head datasets, by dataset.
    pub(crate) objsets: BTreeMap<DatasetId, Objset>,
    /// Snapshots' objsets, opened read-only.
    pub(crate) snapshot_views: BTreeMap<DatasetId, Objset>,
    /// Space promised to the open txg by assigned transactions.
    pub(crate) dirty_bytes: u64,
    /// Blocks to free when the open txg syncs (destroy, rollback).
    pub(crate) pending_frees: Vec<Blkptr>,
    /// Set when a sync failed: the in-memory state is then not what is on
    /// disk, and the pool must be imported again.
    failed: Option<Error>,
    pub uberblock: Uberblock,
    /// Uberblocks of this pool with a valid checksum that import passed
    /// over, newest first, because their tree did not load: the txg and
    /// why. After a power loss alone this is always empty (the tree is
    /// flushed before its uberblock is written), so a simulator can tell a
    /// missing barrier from bad luck.
    pub import_skipped: Vec<(u64, String)>,
    /// `ds_long_holds`: snapshots held by a send in progress, with the tag
    /// of each holder. In memory only, as in ZFS: a pool imported again
    /// has none (its senders died with it).
    pub(crate) long_holds: BTreeMap<DatasetId, Vec<u64>>,
}

/// Long-hold tags, unique across every pool of the process: a session
/// finds out that its pool was imported again by its tag being gone, so a
/// pool imported again must never hand out a tag an older one did. Only
/// their equality matters, so runs on other threads drawing tags in
/// between change nothing a run does.
static NEXT_HOLD_TAG: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn label_offsets(size: u64) -> [u64; 4] {
    [
        0,
        VDEV_LABEL_SIZE,
        size - 2 * VDEV_LABEL_SIZE,
        size - VDEV_LABEL_SIZE,
    ]
}

fn slot_size(sector: u64) -> u64 {
    sector.max(1 << 10)
}

impl Pool {
    /// `spa_create`: a new pool on `dev`, with its root filesystem.
    pub fn create(
        dev: Box<dyn BlockDevice>,
        name: &str,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
    ) -> Result<Pool> {
        Pool::create_with(dev, name, clock, rng, |_| {})
    }

    /// [`Pool::create`] with the zio's tunables set by `setup` before the
    /// first block is written (a fuzz template's `max_replication`).
    pub fn create_with(
        dev: Box<dyn BlockDevice>,
        name: &str,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
        setup: impl FnOnce(&mut Zio),
    ) -> Result<Pool> {
        Pool::create_on(vec![(String::new(), dev)], name, clock, rng, setup)
    }

    /// `zpool create NAME mirror DEV DEV [DEV]`: a new pool on a mirror of
    /// the devices, each named by its path (what the labels record).
    pub fn create_mirror(
        children: Vec<(String, Box<dyn BlockDevice>)>,
        name: &str,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
    ) -> Result<Pool> {
        Pool::create_on(children, name, clock, rng, |_| {})
    }

    fn create_on(
        children: Vec<(String, Box<dyn BlockDevice>)>,
        name: &str,
        clock: Box<dyn Clock>,
        mut rng: Box<dyn RandomSource>,
        setup: impl FnOnce(&mut Zio),
    ) -> Result<Pool> {
        if !crate::dsl::valid_component(name) || name.contains(' ') {
            // unreached: only a pool name given at the command line (`pool create --name`) can be
            // invalid; the simulation's and the fuzzers' pool names are fixed
            return fail(Errno::EINVAL, format!("invalid pool name {name:?}"));
        }
        let single = children.len() == 1;
        let mut vdev = Mirror::new(
            children
                .into_iter()
                .map(|(path, dev)| MirrorChild::new(dev, 0, path))
                .collect(),
        )?;
        let (sector, size) = (vdev.sector_size(), vdev.size());
        if size < SPA_MINDEVSIZE {
            // unreached: only a device under 8 MiB, from `pool create --size` at the command line;
            // the simulation's world options refuse a disk that small
            return fail(
                Errno::EOVERFLOW,
                format!("device of {size} bytes is smaller than the minimum {SPA_MINDEVSIZE}"),
            );
        }
        let guid = rng.next_u64() | 1;
        // A single disk is named by the pool's guid; a mirror's children
        // and the mirror itself draw their own.
        let top_guid = if single {
            vdev.children[0].guid = guid;
            guid
        } else {
            for child in &mut vdev.children {
                child.guid = rng.next_u64() | 1;
            }
            rng.next_u64() | 1
        };
        write_all_labels(
            &mut vdev,
            name,
            guid,
            top_guid,
            POOL_STATE_ACTIVE,
            TXG_INITIAL,
        )?;
        let ms = Metaslab::new(DATA_START, size - 2 * VDEV_LABEL_SIZE, sector);
        let mut zio = Zio::on(vdev, ms);
        zio.pool_guid = guid;
        setup(&mut zio);
        let mut pool = Pool {
            name: name.to_string(),
            guid,
            top_guid,
            zio,
            clock,
            rng,
            slot_size: slot_size(sector),
            open_txg: TXG_INITIAL,
            synced_txg: 0,
            mos: Objset::create(DMU_OST_META),
            dsl: DslState::default(),
            dsl_dirty: true,
            objsets: BTreeMap::new(),
            snapshot_views: BTreeMap::new(),
            dirty_bytes: 0,
            pending_frees: Vec::new(),
            failed: None,
            uberblock: Uberblock {
                version: SPA_VERSION,
                txg: 0,
                guid_sum: guid,
                timestamp: 0,
                rootbp: Blkptr::HOLE,
            },
            import_skipped: Vec::new(),
            long_holds: BTreeMap::new(),
        };
        pool.mos.object_claim(
            MOS_DSL_OBJECT,
            crate::dmu::object_type::DMU_OT_OBJECT_DIRECTORY as u8,
            16 << 10,
            0,
            0,
        )?;
        if !single {
            pool.mos.object_claim(
                MOS_VDEV_DTL_OBJECT,
                crate::dmu::object_type::DMU_OT_SPACE_MAP_HEADER as u8,
                512,
                0,
                // Room for three children's records beside the block
                // pointers (`dn_nblkptr` follows the bonus length).
                DTL_RECORD_LEN,
            )?;
            pool.zio.vdev.dtl_dirty = true;
        }
        pool.create_root_dataset()?;
        pool.txg_sync()?;
        Ok(pool)
    }

    fn create_root_dataset(&mut self) -> Result<()> {
        let dir = self.dsl.alloc_id();
        let ds = self.dsl.alloc_id();
        let now = self.clock.now_secs();
        let guid = self.rng.next_u64();
        self.dsl.dirs.insert(
            dir,
            DslDir {
                id: dir,
                name: self.name.clone(),
                parent: None,
                head: ds,
                origin: None,
                children: BTreeMap::new(),
                props: BTreeMap::new(),
            },
        );
        self.dsl
            .datasets
            .insert(ds, new_head_dataset(ds, dir, now, self.open_txg, guid));
        self.objsets.insert(ds, Objset::create(DMU_OST_ZFS));
        self.dsl_dirty = true;
        Ok(())
    }

    /// `spa_import`: opens the pool on `dev` from its newest usable
    /// uberblock and rebuilds the free space from what its trees reference.
    pub fn import(
        dev: Box<dyn BlockDevice>,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
    ) -> Result<Pool> {
        Pool::import_with(vec![(String::new(), dev)], clock, rng, |_| {})
    }

    /// [`Pool::import`] of a pool on every device of its vdev (one disk,
    /// or each child of its mirror, in any order), each named by its path.
    pub fn import_devices(
        children: Vec<(String, Box<dyn BlockDevice>)>,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
    ) -> Result<Pool> {
        Pool::import_with(children, clock, rng, |_| {})
    }

    /// [`Pool::import_devices`] with the blocks an earlier pool on the same
    /// device read ([`Pool::take_read_cache`]): those the device says did
    /// not change since are not read again.
    pub fn import_cached(
        children: Vec<(String, Box<dyn BlockDevice>)>,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
        cache: ReadCache,
    ) -> Result<Pool> {
        Pool::import_with(children, clock, rng, |zio| zio.read_cache = cache)
    }

    /// Fuzzing only: [`Pool::import`] of a pool whose block checksums are
    /// never checked (labels and uberblocks still are), so the fuzzer's
    /// changes to blocks reach every parser behind the checksums.
    #[cfg(feature = "fuzzing")]
    pub fn import_unverified(
        dev: Box<dyn BlockDevice>,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
    ) -> Result<Pool> {
        Pool::import_with(vec![(String::new(), dev)], clock, rng, |zio| {
            zio.unverified = true
        })
    }

    fn import_with(
        children: Vec<(String, Box<dyn BlockDevice>)>,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
        setup: impl FnOnce(&mut Zio),
    ) -> Result<Pool> {
        let (name, guid, top_guid, mut vdev) = open_vdev(children)?;
        let (sector, size) = (vdev.sector_size(), vdev.size());
        let slot = slot_size(sector);
        let rings = read_uberblocks(&mut vdev, slot);
        // What each child of a mirror last heard: a child whose newest
        // uberblock is older than the one chosen missed the txgs between.
        let heard: Vec<Option<u64>> = if vdev.is_mirror() {
            (0..vdev.width())
                .map(|c| rings.newest_on(c, guid))
                .collect()
        } else {
            Vec::new()
        };
        let mut candidates = rings.filter(|ub| ub.guid_sum == guid && !ub.rootbp.is_hole());
        let ms = Metaslab::new(DATA_START, size - 2 * VDEV_LABEL_SIZE, sector);
        let mut zio = Zio::on(vdev, ms);
        zio.pool_guid = guid;
        setup(&mut zio);
        // Trees that may be older than the last sync are read below: no
        // copy of theirs is rewritten (see `Zio::self_heal`).
        let self_heal = std::mem::replace(&mut zio.self_heal, false);

        let mut chosen = None;
        let mut skipped = Vec::new();
        let mut last_error = Error::new(Errno::EIO, "no valid uberblock");
        let mut newest = None;
        for ub in candidates.by_ref() {
            // The trees of the newest uberblock and of those a deferral
            // window before it must be whole; older ones may have had their
            // blocks freed and written over since.
            let newest = *newest.get_or_insert(ub.txg);
            zio.losses_recorded = ub.txg + TXG_DEFER_SIZE >= newest;
            // Reads skip the children that did not hear of this txg.
            for (child, &heard) in zio.vdev.children.iter_mut().zip(&heard) {
                child.missing = match heard {
                    Some(t) if t >= ub.txg => None,
                    Some(t) => Some((t + 1, ub.txg)),
                    None => Some((0, ub.txg)),
                };
            }
            match load_mos(&mut zio, &ub.rootbp) {
                Ok((mos, dsl)) => {
                    chosen = Some((ub, mos, dsl));
                    break;
                }
                Err(e) => {
                    skipped.push((ub.txg, e.to_string()));
                    last_error = e.context(format!("uberblock of txg {}", ub.txg));
                }
            }
        }
        zio.losses_recorded = true;
        let Some((ub, mos, dsl)) = chosen else {
            return Err(last_error.context("no usable uberblock"));
        };
        // What the children missed besides: the writes they failed in
        // txgs they heard of, as the pool recorded them.
        if zio.vdev.is_mirror() {
            load_dtl(&mut zio.vdev, &mos)?;
        }

        // Everything the chosen tree references is allocated; what only the
        // trees of the deferral window before it reference stays deferred.
        let mut seen = BTreeSet::new();
        claim_tree(&mut zio, &ub.rootbp, &dsl, &mut seen)?;
        for older in candidates.take(TXG_DEFER_SIZE as usize) {
            let Ok((_, older_dsl)) = load_mos(&mut zio, &older.rootbp) else {
                continue;
            };
            let mut extra = BTreeSet::new();
            let mut all = seen.clone();
            let before = all.len();
            if claim_tree_into(&mut zio, &older.rootbp, &older_dsl, &mut all, &mut extra).is_ok() {
                debug_assert!(all.len() >= before);
                // Freed in the txg after the older one: reusable once the
                // deferral window from there has passed.
                for (offset, asize) in extra {
                    if zio.ms.claim(offset, asize) {
                        zio.ms.free_deferred(older.txg + 1, offset, asize)?;
                    }
                }
                seen = all;
            }
        }

        let mut pool = Pool {
            name,
            guid,
            top_guid,
            zio,
            clock,
            rng,
            slot_size: slot,
            open_txg: ub.txg + 1,
            synced_txg: ub.txg,
            mos,
            dsl,
            dsl_dirty: false,
            objsets: BTreeMap::new(),
            snapshot_views: BTreeMap::new(),
            dirty_bytes: 0,
            pending_frees: Vec::new(),
            failed: None,
            uberblock: ub,
            import_skipped: skipped,
            long_holds: BTreeMap::new(),
        };
        pool.zio.ms.sync_done(ub.txg);
        pool.zio.self_heal = self_heal;
        pool.destroy_inconsistent()?;
        Ok(pool)
    }

    /// `spa_export`: syncs, marks the labels exported and hands the device
    /// back.
    pub fn export(mut self) -> Result<Vec<Box<dyn BlockDevice>>> {
        self.txg_sync()?;
        write_all_labels(
            &mut self.zio.vdev,
            &self.name,
            self.guid,
            self.top_guid,
            POOL_STATE_EXPORTED,
            self.synced_txg,
        )?;
        Ok(self.zio.vdev.into_devices())
    }

    /// A copy of this pool's in-memory state working on `dev`, which must
    /// hold the same bytes as this pool's device (a copy-on-write clone of
    /// it): as if `dev` had been imported, without walking the pool again.
    /// The pool must have nothing unsynced.
    pub fn fork(
        &self,
        dev: Box<dyn BlockDevice>,
        clock: Box<dyn Clock>,
        rng: Box<dyn RandomSource>,
    ) -> Result<Pool> {
        self.check_usable()?;
        if self.dsl_dirty
            || self.objsets.values().any(|os| os.is_dirty())
            || !self.pending_frees.is_empty()
        {
            // unreached: fork's only caller (fuzz.rs) forks the fuzz template, which its receive
            // left synced
            return fail(
                Errno::EBUSY,
                "a pool with unsynced changes cannot be forked",
            );
        }
        let vdev = &self.zio.vdev;
        if vdev.is_mirror()
            || dev.size() / dev.sector_size() * dev.sector_size() != vdev.size()
            || dev.sector_size() != vdev.sector_size()
        {
            // unreached: fork's only caller (fuzz.rs) passes a CowDevice over the template's own
            // image, with its sector size
            return fail(
                Errno::EINVAL,
                "a fork needs one device of the same geometry",
            );
        }
        let child = &vdev.children()[0];
        let mut zio = Zio::on(
            Mirror::single(dev, child.guid, &child.path),
            self.zio.ms.clone(),
        );
        zio.stats = self.zio.stats;
        zio.mdcomp_disable = self.zio.mdcomp_disable;
        zio.max_replication = self.zio.max_replication;
        zio.pool_guid = self.zio.pool_guid;
        zio.self_heal = self.zio.self_heal;
        Ok(Pool {
            name: self.name.clone(),
            guid: self.guid,
            top_guid: self.top_guid,
            zio,
            clock,
            rng,
            slot_size: self.slot_size,
            open_txg: self.open_txg,
            synced_txg: self.synced_txg,
            mos: self.mos.clone(),
            dsl: self.dsl.clone(),
            dsl_dirty: false,
            objsets: self.objsets.clone(),
            snapshot_views: self.snapshot_views.clone(),
            dirty_bytes: 0,
            pending_frees: Vec::new(),
            failed: None,
            uberblock: self.uberblock,
            import_skipped: self.import_skipped.clone(),
            long_holds: BTreeMap::new(),
        })
    }

    /// Gives up the pool without syncing (a crash, from the pool's
    /// side): its devices, in child order.
    pub fn into_devices(self) -> Vec<Box<dyn BlockDevice>> {
        self.zio.vdev.into_devices()
    }

    /// The blocks this pool read, for the next import of its device
    /// ([`Pool::import_cached`]); the pool keeps none.
    pub fn take_read_cache(&mut self) -> ReadCache {
        std::mem::take(&mut self.zio.read_cache)
    }

    /// The device's read epoch ([`BlockDevice::read_epoch`]): while it
    /// stays the same, what the pool reads stays the same.
    pub fn read_epoch(&self) -> Option<u64> {
        self.zio.vdev.read_epoch()
    }

    /// The first device of the pool's vdev (on one disk, its disk).
    pub fn device_mut(&mut self) -> &mut dyn BlockDevice {
        self.zio.vdev.first_mut()
    }

    /// Each device of the pool's vdev as `zpool status` shows it: its
    /// path, error counts and the txgs it may have missed.
    pub fn vdev_status(&self) -> &[MirrorChild] {
        self.zio.vdev.children()
    }

    /// Whether the pool is on a mirror.
    pub fn is_mirror(&self) -> bool {
        self.zio.vdev.is_mirror()
    }

    pub fn open_txg(&self) -> u64 {
        self.open_txg
    }

    pub fn synced_txg(&self) -> u64 {
        self.synced_txg
    }

    pub fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    pub fn zio_stats(&self) -> crate::zio::ZioStats {
        self.zio.stats
    }

    /// The I/O pipeline, for walks over the pool's blocks.
    pub fn zio_mut(&mut self) -> &mut Zio {
        &mut self.zio
    }

    /// The roots of every tree of the last synced txg: the MOS's, then
    /// each dataset's (snapshots included). Walked from these, every block
    /// the pool references is reached.
    pub fn tree_roots(&self) -> Vec<Blkptr> {
        let mut roots = vec![self.uberblock.rootbp];
        roots.extend(self.dsl.datasets.values().map(|d| d.bp));
        roots
    }

    /// Bytes allocated to blocks some tree still references: the allocated
    /// bytes less the frees waiting out the deferral window.
    pub fn referenced_space(&self) -> u64 {
        self.zio.ms.allocated() - self.zio.ms.deferred_bytes()
    }

    /// Allocator view: (allocated bytes, capacity).
    pub fn space(&self) -> (u64, u64) {
        (self.zio.ms.allocated(), self.zio.ms.capacity())
    }

    /// Whether a sync failed: the pool then refuses everything until it is
    /// imported again, as ZFS suspends a pool on lost writes.
    pub fn is_suspended(&self) -> bool {
        self.failed.is_some()
    }

    /// `dsl_dataset_long_hold`: keeps `ds` from being destroyed (EBUSY)
    /// until [`long_rele`](Pool::long_rele) with the tag returned.
    pub fn long_hold(&mut self, ds: DatasetId) -> u64 {
        let tag = NEXT_HOLD_TAG.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.long_holds.entry(ds).or_default().push(tag);
        tag
    }

    /// `dsl_dataset_long_rele`. A hold this pool does not have (a pool
    /// imported again since) is nothing to release.
    pub fn long_rele(&mut self, ds: DatasetId, tag: u64) {
        if let Some(tags) = self.long_holds.get_mut(&ds) {
            tags.retain(|&t| t != tag);
            if tags.is_empty() {
                self.long_holds.remove(&ds);
            }
        }
    }

    /// Whether `ds` has the long hold `tag` (or, with `None`, any).
    pub fn long_held(&self, ds: DatasetId, tag: Option<u64>) -> bool {
        self.long_holds
            .get(&ds)
            .is_some_and(|tags| tag.is_none_or(|t| tags.contains(&t)))
    }

    pub(crate) fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(e) => fail(
                Errno::EIO,
                format!(
                    "pool {} is suspended after a failed sync ({e}): import it again",
                    self.name
                ),
            ),
            None => Ok(()),
        }
    }

    /// `txg_wait_synced`: writes out the open txg.
    pub fn txg_sync(&mut self) -> Result<()> {
        self.txg_sync_with(|_, _| Ok(()))
    }

    /// Syncs the open txg, running `task` in syncing context after the
    /// datasets' objsets were written and before the MOS and uberblock are
    /// (`dsl_sync_task`): a snapshot taken there holds exactly this txg.
    pub fn txg_sync_with(&mut self, task: impl FnOnce(&mut Pool, u64) -> Result<()>) -> Result<()> {
        self.check_usable()?;
        let result = self.sync_impl(task);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn sync_impl(&mut self, task: impl FnOnce(&mut Pool, u64) -> Result<()>) -> Result<()> {
        let txg = self.open_txg;
        let ids: Vec<DatasetId> = self.objsets.keys().copied().collect();
        for id in ids {
            let os = self.objsets.get_mut(&id).expect("listed");
            if !os.is_dirty() {
                continue;
            }
            let out = os.sync(&mut self.zio, txg)?;
            self.dataset_synced(id, txg, out)?;
        }
        task(self, txg)?;
        for bp in std::mem::take(&mut self.pending_frees) {
            self.zio.free_block(txg, &bp)?;
        }
        if self.dsl_dirty {
            let mut record = self.dsl.encode();
            let len = record.len() as u64;
            // The record replaces the object's contents: written as whole
            // blocks (zeros after the record, as the free below would
            // leave them), the old ones need not be read.
            let blksz = u64::from(self.mos.object_info(MOS_DSL_OBJECT)?.datablksz);
            record.resize(len.next_multiple_of(blksz) as usize, 0);
            self.mos.write(&mut self.zio, MOS_DSL_OBJECT, 0, &record)?;
            self.mos.free_range(
                &mut self.zio,
                MOS_DSL_OBJECT,
                record.len() as u64,
                crate::dmu::objset::DMU_OBJECT_END,
            )?;
            let mut bonus = self.mos.bonus(MOS_DSL_OBJECT)?.to_vec();
            if bonus.len() < 8 {
                self.mos.set_bonuslen(MOS_DSL_OBJECT, 8)?;
                bonus = vec![0; 8];
            }
            bonus[..8].copy_from_slice(&len.to_le_bytes());
            self.mos.set_bonus(MOS_DSL_OBJECT, &bonus)?;
            self.dsl_dirty = false;
        }
        if self.zio.vdev.dtl_dirty && self.zio.vdev.is_mirror() {
            let record = encode_dtl(&self.zio.vdev);
            self.mos.set_bonuslen(MOS_VDEV_DTL_OBJECT, record.len())?;
            self.mos.set_bonus(MOS_VDEV_DTL_OBJECT, &record)?;
            self.zio.vdev.dtl_dirty = false;
        }
        let mos_out = self.mos.sync(&mut self.zio, txg)?;
        for bp in &mos_out.killed {
            self.zio.free_block(txg, bp)?;
        }
        if !planted!(UberblockBeforeFlush) {
            self.zio.vdev.flush(txg)?;
        }
        let ub = Uberblock {
            version: SPA_VERSION,
            txg,
            guid_sum: self.guid,
            timestamp: self.clock.now_secs(),
            rootbp: mos_out.bp,
        };
        let slot_size = self.slot_size;
        let slots = LABEL_RING_SIZE / slot_size;
        let (mut bytes, hashed) = ub.encode(slot_size as usize);
        // Each child's labels, at the ends of that child. A mirror's child
        // has the uberblock when one of its labels took it (as
        // `vdev_uberblock_sync` counts good writes); a single disk must
        // take it in every label.
        let mirror = self.zio.vdev.is_mirror();
        self.zio.vdev.for_each_child(txg, |dev| {
            let size = dev.size() / dev.sector_size() * dev.sector_size();
            let mut first_error = None;
            let mut good = 0;
            for base in label_offsets(size) {
                let offset = base + LABEL_RING_OFFSET + (txg % slots) * slot_size;
                let sum = label_checksum_of_hashed(hashed.clone(), offset);
                bytes[slot_size as usize - 32..].copy_from_slice(&sum);
                match dev.write(offset, &bytes) {
                    Ok(()) => good += 1,
                    Err(e) if mirror => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            match first_error {
                Some(e) if good == 0 => Err(e),
                _ => Ok(()),
            }
        })?;
        self.zio.vdev.flush(txg)?;
        self.uberblock = ub;
        self.synced_txg = txg;
        self.open_txg = txg + 1;
        self.zio.ms.sync_done(txg);
        self.dirty_bytes = 0;
        Ok(())
    }

    /// Space bookkeeping for a head dataset whose objset was just written
    /// (`dsl_dataset_block_born` / `dsl_dataset_block_kill`).
    fn dataset_synced(
        &mut self,
        id: DatasetId,
        txg: u64,
        out: crate::dmu::objset::SyncOutput,
    ) -> Result<()> {
        let ds = self
            .dsl
            .datasets
            .get_mut(&id)
            .expect("open objset of a known dataset");
        // Referenced, compressed, uncompressed and unique bytes of `bps`;
        // a block is unique when born after `unique_after`.
        let totals = |bps: &[Blkptr], unique_after: u64| {
            bps.iter().fold([0u64; 4], |[a, p, l, u], bp| {
                let asize = bp.asize();
                let unique = if bp.birth > unique_after { asize } else { 0 };
                [
                    a.saturating_add(asize),
                    p.saturating_add(bp.psize()),
                    l.saturating_add(bp.lsize()),
                    u.saturating_add(unique),
                ]
            })
        };
        let prev_snap_txg = ds.prev_snap_txg;
        let born = totals(&out.born, 0);
        let killed = totals(&out.killed, prev_snap_txg);
        let held = [
            &mut ds.referenced_bytes,
            &mut ds.compressed_bytes,
            &mut ds.uncompressed_bytes,
            &mut ds.unique_bytes,
        ];
        // A block pointer read from a damaged tree may claim sizes the
        // dataset never held: the sync fails (EIO) instead of the counts
        // wrapping below zero.
        if (0..4).any(|i| killed[i] > held[i].saturating_add(born[i])) {
            return fail(
                Errno::EIO,
                format!(
                    "dataset {id}: the blocks freed in txg {txg} are larger than all it holds \
                     (a damaged block pointer)"
                ),
            );
        }
        for (i, count) in held.into_iter().enumerate() {
            *count = *count + born[i] - killed[i];
        }
        ds.bp = out.bp;
        let prev = ds.prev_snap;
        for bp in &out.killed {
            if bp.birth > prev_snap_txg {
                self.zio.free_block(txg, bp)?;
            } else {
                let ds = self.dsl.datasets.get_mut(&id).expect("known");
                ds.deadlist.push(*bp);
                if let Some(p) = prev {
                    let p = self.dsl.datasets.get_mut(&p).expect("prev snapshot exists");
                    if p.next_snap == Some(id) && bp.birth > p.prev_snap_txg {
                        p.unique_bytes += bp.asize();
                    }
                }
            }
        }
        self.dsl_dirty = true;
        Ok(())
    }

    /// The open objset of a head dataset, opening it if needed.
    pub(crate) fn objset_mut(&mut self, id: DatasetId) -> Result<&mut Objset> {
        if !self.objsets.contains_key(&id) {
            let ds = &self.dsl.datasets[&id];
            let bp = ds.bp;
            let os = if bp.is_hole() {
                Objset::create(DMU_OST_ZFS)
            } else {
                self.open_objset_at(&bp)?
            };
            self.objsets.insert(id, os);
        }
        let policy = self.write_policy(self.dsl.datasets[&id].dir);
        let os = self.objsets.get_mut(&id).expect("just inserted");
        os.policy = policy;
        Ok(os)
    }

    /// Reads the objset of any dataset (snapshots included) as synced.
    pub(crate) fn objset_snapshot_view(&mut self, id: DatasetId) -> Result<Objset> {
        let bp = self.dsl.datasets[&id].bp;
        self.open_objset_at(&bp)
    }

    /// The objset at `bp`, as [`Objset::open`] reads it. An open objset
    /// whose block is `bp` and that has nothing unsynced (the head a
    /// snapshot or clone was just made of, a snapshot's view) already holds
    /// exactly that: it is copied, sharing its indirect blocks, instead of
    /// being read and decoded again.
    fn open_objset_at(&mut self, bp: &Blkptr) -> Result<Objset> {
        let open = self
            .objsets
            .values()
            .chain(self.snapshot_views.values())
            .find(|os| os.bp == *bp && !os.is_dirty());
        match open {
            Some(os) => Ok(os.reopened()),
            None => Objset::open(&mut self.zio, bp),
        }
    }
}

/// A new head dataset with an empty objset to come.
pub(crate) fn new_head_dataset(
    id: DatasetId,
    dir: u64,
    now: u64,
    txg: u64,
    guid: u64,
) -> DslDataset {
    DslDataset {
        id,
        dir,
        snapname: None,
        prev_snap: None,
        prev_snap_txg: 0,
        next_snap: None,
        next_clones: BTreeSet::new(),
        creation_time: now,
        creation_txg: txg,
        guid,
        flags: 0,
        bp: Blkptr::HOLE,
        referenced_bytes: 0,
        compressed_bytes: 0,
        uncompressed_bytes: 0,
        unique_bytes: 0,
        deadlist: Vec::new(),
        userrefs: BTreeMap::new(),
    }
}

fn config_nvlist(name: &str, guid: u64, sector: u64, size: u64, state: u64, txg: u64) -> NvList {
    let mut nv = NvList::new();
    nv.push("version", NvValue::Uint64(SPA_VERSION));
    nv.push("name", NvValue::String(name.to_string()));
    nv.push("state", NvValue::Uint64(state));
    nv.push("txg", NvValue::Uint64(txg));
    nv.push("pool_guid", NvValue::Uint64(guid));
    nv.push(
        "ashift",
        NvValue::Uint64(u64::from(sector.trailing_zeros())),
    );
    nv.push("asize", NvValue::Uint64(size));
    nv
}

/// Writes the labels of every child of `vdev`: the pool's config, and on a
/// mirror each child's own guid and the whole vdev tree (what import needs
/// to find the other children). Fails only when no child took them.
fn write_all_labels(
    vdev: &mut Mirror,
    name: &str,
    guid: u64,
    top_guid: u64,
    state: u64,
    txg: u64,
) -> Result<()> {
    let (sector, size) = (vdev.sector_size(), vdev.size());
    let mut config = config_nvlist(name, guid, sector, size, state, txg);
    if !vdev.is_mirror() {
        return vdev.for_each_child(txg, |dev| write_labels(dev, &config));
    }
    let children: Vec<NvList> = vdev
        .children()
        .iter()
        .enumerate()
        .map(|(id, c)| {
            let mut nv = NvList::new();
            nv.push("type", NvValue::String("disk".into()));
            nv.push("id", NvValue::Uint64(id as u64));
            nv.push("guid", NvValue::Uint64(c.guid));
            nv.push("path", NvValue::String(c.path.clone()));
            nv
        })
        .collect();
    let mut tree = NvList::new();
    tree.push("type", NvValue::String("mirror".into()));
    tree.push("id", NvValue::Uint64(0));
    tree.push("guid", NvValue::Uint64(top_guid));
    tree.push("children", NvValue::NvListArray(children));
    config.push("top_guid", NvValue::Uint64(top_guid));
    config.push("vdev_tree", NvValue::NvList(tree));
    let guids: Vec<u64> = vdev.children().iter().map(|c| c.guid).collect();
    let mut next = guids.iter();
    vdev.for_each_child(txg, |dev| {
        let mut own = config.clone();
        own.push(
            "guid",
            NvValue::Uint64(*next.next().expect("one per child")),
        );
        write_labels(dev, &own)
    })
}

fn write_labels(dev: &mut dyn BlockDevice, config: &NvList) -> Result<()> {
    let size = dev.size() / dev.sector_size() * dev.sector_size();
    let packed = nvlist::pack_xdr(config);
    let mut region = vec![0u8; LABEL_CONFIG_SIZE];
    if packed.len() + 8 + 32 > LABEL_CONFIG_SIZE {
        // unreached: only a pool name of about 112 KiB given at the command line fills a label; the
        // simulation's and the fuzzers' pool names are a few bytes
        return fail(Errno::E2BIG, "pool config does not fit in a label");
    }
    region[..8].copy_from_slice(&(packed.len() as u64).to_le_bytes());
    region[8..8 + packed.len()].copy_from_slice(&packed);
    let hashed = Sha256::new_with_prefix(&region[..LABEL_CONFIG_SIZE - 32]);
    for (l, base) in label_offsets(size).into_iter().enumerate() {
        let offset = base + LABEL_CONFIG_OFFSET;
        let sum = label_checksum_of_hashed(hashed.clone(), offset);
        region[LABEL_CONFIG_SIZE - 32..].copy_from_slice(&sum);
        dev.write(offset, &region)?;
        // The label an import reads first: known good, if read back as
        // written, without hashing it again.
        if l == 0 {
            remember_verified(&region, offset);
        }
    }
    dev.flush()
}

fn read_config(dev: &mut dyn BlockDevice, size: u64) -> Result<NvList> {
    for base in label_offsets(size) {
        let offset = base + LABEL_CONFIG_OFFSET;
        // Looked at where the device holds it, not copied out. A label
        // that cannot be read is passed over.
        let mut config = None;
        let _ = dev.read_with(offset, LABEL_CONFIG_SIZE, &mut |region| {
            // Hashing 112 KiB is most of what reading a label costs: a
            // region that verified before at this offset is compared, not
            // hashed.
            if !config_verifies(region, offset) {
                return;
            }
            let len = u64::from_le_bytes(region[..8].try_into().expect("8 bytes")) as usize;
            if len > LABEL_CONFIG_SIZE - 40 {
                return;
            }
            config = nvlist::unpack_xdr(&region[8..8 + len]).ok();
        });
        if let Some(nv) = config {
            return Ok(nv);
        }
    }
    fail(Errno::ENXIO, "no valid pool label on the device")
}

/// The pool's vdev from the devices given for it: each one's label must
/// name the same pool, and a mirror's every child must be there (in any
/// order given; in the labels' order after). Returns the pool's name, guid
/// and top-level guid with the vdev.
fn open_vdev(children: Vec<(String, Box<dyn BlockDevice>)>) -> Result<(String, u64, u64, Mirror)> {
    // `path: ` before a message, when the device has a path.
    let on = |path: &str, e: Error| {
        if path.is_empty() {
            e
        } else {
            e.context(path.to_string())
        }
    };
    let mut found = Vec::new();
    // Devices of a mirror whose labels cannot be read (a disk failing
    // every request): they take the places no label claims, as devices
    // that missed everything, and the pool imports degraded.
    let mut unlabeled = Vec::new();
    let given = children.len();
    for (path, mut dev) in children {
        let sector = dev.sector_size();
        let size = dev.size() / sector * sector;
        if size < SPA_MINDEVSIZE {
            // unreached: only an image file under 8 MiB given to the command line; the simulation
            // and the fuzzers import devices a pool was created on
            return Err(on(
                &path,
                Error::new(Errno::ENXIO, "device too small to hold a pool"),
            ));
        }
        match read_config(&mut *dev, size) {
            Ok(config) => found.push((path, dev, config)),
            Err(e) if given > 1 => unlabeled.push((path, dev, e)),
            Err(e) => return Err(on(&path, e)),
        }
    }
    if found.is_empty()
        && let Some((path, _, e)) = unlabeled.pop()
    {
        return Err(on(&path, e));
    }
    let Some((_, _, config)) = found.first() else {
        return fail(Errno::EINVAL, "no device given for the pool");
    };
    // unreached: only a label written by another tool: a label must pass its checksum, and
    // write_labels always writes the name
    let name = config
        .get_str("name")
        .ok_or_else(|| Error::new(Errno::EIO, "pool config has no name"))?
        .to_string();
    // unreached: only a label written by another tool: a label must pass its checksum, and
    // write_labels always writes pool_guid
    let guid = config
        .get_u64("pool_guid")
        .ok_or_else(|| Error::new(Errno::EIO, "pool config has no guid"))?;
    let listed = mirror_children(config)?.unwrap_or_else(|| vec![(guid, String::new())]);
    let top_guid = config
        .get_nvlist("vdev_tree")
        .and_then(|t| t.get_u64("guid"))
        .unwrap_or(guid);
    let mut slots: Vec<Option<MirrorChild>> = listed.iter().map(|_| None).collect();
    for (path, dev, config) in found {
        if config.get_u64("pool_guid") != Some(guid) {
            return fail(
                Errno::EINVAL,
                format!("{path}: the device belongs to another pool than {name}"),
            );
        }
        let own = config.get_u64("guid").unwrap_or(guid);
        let Some(at) = listed.iter().position(|(g, _)| *g == own) else {
            return fail(
                Errno::EINVAL,
                format!("{path}: pool {name}'s labels do not list this device"),
            );
        };
        if slots[at].is_some() {
            return fail(
                Errno::EINVAL,
                format!("{path}: the same device of pool {name} was given twice"),
            );
        }
        slots[at] = Some(MirrorChild::new(dev, own, named(path, &listed[at].1)));
    }
    let mut children = Vec::new();
    let mut unlabeled = unlabeled.into_iter();
    for (slot, (g, path)) in slots.into_iter().zip(&listed) {
        match slot {
            Some(child) => children.push(child),
            None if unlabeled.len() > 0 => {
                let (given_path, dev, _) = unlabeled.next().expect("one left");
                children.push(MirrorChild::new(dev, *g, named(given_path, path)));
            }
            None => {
                return fail(
                    Errno::ENXIO,
                    format!("pool {name}: mirror device {path} (guid {g:#x}) was not given"),
                );
            }
        }
    }
    if let Some((path, _, e)) = unlabeled.next() {
        return Err(on(
            &path,
            e.context("a device the pool's labels have no place for"),
        ));
    }
    Ok((name, guid, top_guid, Mirror::new(children)?))
}

/// The paths a device's label records for the other devices of its
/// pool's mirror (none for a pool on one disk): what an import of that
/// device must also open.
pub fn mirror_partners(dev: &mut dyn BlockDevice) -> Result<Vec<String>> {
    let size = dev.size() / dev.sector_size() * dev.sector_size();
    if size < SPA_MINDEVSIZE {
        return fail(Errno::ENXIO, "device too small to hold a pool");
    }
    let config = read_config(dev, size)?;
    let own = config.get_u64("guid");
    Ok(mirror_children(&config)?
        .unwrap_or_default()
        .into_iter()
        .filter(|&(guid, _)| Some(guid) != own)
        .map(|(_, path)| path)
        .collect())
}

/// The (guid, path) of each child a mirror pool's label config lists, in
/// child order; `None` for a pool on one disk (no vdev tree).
fn mirror_children(config: &NvList) -> Result<Option<Vec<(u64, String)>>> {
    match config.get_nvlist("vdev_tree").map(|t| t.get("children")) {
        None => Ok(None),
        Some(Some(NvValue::NvListArray(kids))) => Ok(Some(
            kids.iter()
                .map(|k| {
                    (
                        k.get_u64("guid").unwrap_or(0),
                        k.get_str("path").unwrap_or("").to_string(),
                    )
                })
                .collect(),
        )),
        Some(_) => fail(Errno::EIO, "pool config's vdev tree has no children"),
    }
}

/// A child's path: the one it was given by, else the one its labels
/// record.
fn named(given: String, recorded: &str) -> String {
    if given.is_empty() {
        recorded.to_string()
    } else {
        given
    }
}

/// A mirror's record of each child's missed txgs, for its MOS object.
fn encode_dtl(vdev: &Mirror) -> Vec<u8> {
    let mut out = Vec::with_capacity(DTL_RECORD_LEN);
    out.extend_from_slice(&(vdev.width() as u64).to_le_bytes());
    for c in vdev.children() {
        let (lo, end) = c.missing.map_or((0, 0), |(lo, hi)| (lo, hi + 1));
        for v in [c.guid, lo, end] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Reads back what [`encode_dtl`] recorded, into the children it names.
fn load_dtl(vdev: &mut Mirror, mos: &Objset) -> Result<()> {
    let record = mos.bonus(MOS_VDEV_DTL_OBJECT)?;
    let word = |i: usize| {
        record
            .get(i * 8..i * 8 + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let n = word(0).unwrap_or(0) as usize;
    for i in 0..n.min(crate::vdev::MIRROR_MAX_CHILDREN) {
        let (Some(guid), Some(lo), Some(end)) = (word(1 + 3 * i), word(2 + 3 * i), word(3 + 3 * i))
        else {
            return fail(Errno::EIO, "the mirror's missed-txg record is cut short");
        };
        if end > lo
            && let Some(child) = vdev.children.iter_mut().find(|c| c.guid == guid)
        {
            child.miss(lo, end - 1);
        }
    }
    Ok(())
}

/// Every uberblock that verifies on any child of `vdev`, newest first (one
/// per txg; of several copies of a txg, the first in child, label and slot
/// order that verifies).
fn read_uberblocks(vdev: &mut Mirror, slot: u64) -> UberblockRings {
    let slot = slot as usize;
    let mut rings = UberblockRings {
        slot,
        bytes: Vec::new(),
        slots: Vec::new(),
        next: 0,
        last_txg: None,
    };
    for c in 0..vdev.width() {
        let dev = &mut *vdev.children[c].dev;
        let size = dev.size() / dev.sector_size() * dev.sector_size();
        for base in label_offsets(size) {
            let ring_offset = base + LABEL_RING_OFFSET;
            // Looked at where the device holds it: of a ring's 128 KiB only
            // the slots in use are kept. A ring that cannot be read is
            // passed over.
            let _ = dev.read_with(ring_offset, LABEL_RING_SIZE as usize, &mut |ring| {
                let word = |buf: &[u8], i: usize| {
                    u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8"))
                };
                let in_use = |buf: &&[u8]| word(buf, 0) == UBERBLOCK_MAGIC;
                let used = ring.chunks_exact(slot).filter(in_use).count();
                rings.bytes.reserve(used * slot);
                for (i, buf) in ring
                    .chunks_exact(slot)
                    .enumerate()
                    .filter(|(_, b)| in_use(b))
                {
                    let offset = ring_offset + (i * slot) as u64;
                    rings
                        .slots
                        .push((word(buf, 2), c, offset, rings.bytes.len()));
                    rings.bytes.extend_from_slice(buf);
                }
            });
        }
    }
    // Stable: copies of one txg stay in child, label and slot order.
    rings
        .slots
        .sort_by_key(|&(txg, _, _, _)| std::cmp::Reverse(txg));
    rings
}

/// The uberblocks of a vdev's rings as [`read_uberblocks`] finds them,
/// each checksummed only when it is reached: import wants the newest usable
/// one and the few before it, not every slot of four rings.
struct UberblockRings {
    slot: usize,
    /// The slots that carry the magic, one after another.
    bytes: Vec<u8>,
    /// (txg the slot claims, its child, its device offset, where in
    /// `bytes`), newest first.
    slots: Vec<(u64, usize, u64, usize)>,
    next: usize,
    /// The txg of the uberblock returned last: its other copies are skipped.
    last_txg: Option<u64>,
}

impl UberblockRings {
    /// The txg of the newest uberblock of pool `guid` that verifies on
    /// child `child`.
    fn newest_on(&self, child: usize, guid: u64) -> Option<u64> {
        self.slots
            .iter()
            .filter(|&&(_, c, _, _)| c == child)
            .find_map(|&(_, _, offset, at)| {
                Uberblock::decode(&self.bytes[at..at + self.slot], offset)
                    .filter(|ub| ub.guid_sum == guid)
            })
            .map(|ub| ub.txg)
    }
}

impl Iterator for UberblockRings {
    type Item = Uberblock;

    fn next(&mut self) -> Option<Uberblock> {
        while let Some(&(txg, _, offset, at)) = self.slots.get(self.next) {
            self.next += 1;
            if self.last_txg == Some(txg) {
                continue;
            }
            if let Some(ub) = Uberblock::decode(&self.bytes[at..at + self.slot], offset) {
                self.last_txg = Some(txg);
                return Some(ub);
            }
        }
        None
    }
}

/// Opens the MOS and decodes the DSL record it holds.
fn load_mos(zio: &mut Zio, rootbp: &Blkptr) -> Result<(Objset, DslState)> {
    let mut mos = Objset::open(zio, rootbp)?;
    let len = mos.bonus(MOS_DSL_OBJECT)?;
    if len.len() < 8 {
        return fail(Errno::EIO, "MOS DSL object has no length");
    }
    let len = u64::from_le_bytes(len[..8].try_into().expect("8 bytes"));
    if len > 1 << 32 {
        return fail(Errno::EIO, format!("MOS DSL record claims {len} bytes"));
    }
    let record = mos.read(zio, MOS_DSL_OBJECT, 0, len)?;
    let dsl = DslState::decode(&record)?;
    // Every dataset's objset must at least open for the tree to count as read.
    for ds in dsl.datasets.values() {
        if !ds.bp.is_hole() {
            zio.read_block(&ds.bp)
                .map_err(|e| e.context(format!("objset of dataset {}", ds.id)))?;
        }
    }
    Ok((mos, dsl))
}

/// Claims every block reachable from the MOS and every dataset.
fn claim_tree(
    zio: &mut Zio,
    rootbp: &Blkptr,
    dsl: &DslState,
    seen: &mut BTreeSet<u64>,
) -> Result<()> {
    let mut extents = BTreeSet::new();
    claim_tree_into(zio, rootbp, dsl, seen, &mut extents)?;
    for (offset, asize) in extents {
        if !zio.ms.claim(offset, asize) {
            return fail(
                Errno::EIO,
                format!("block at {offset:#x} is referenced twice"),
            );
        }
    }
    Ok(())
}

/// Collects `(offset, asize)` of blocks reachable from the MOS and the
/// datasets that are not yet in `seen`.
fn claim_tree_into(
    zio: &mut Zio,
    rootbp: &Blkptr,
    dsl: &DslState,
    seen: &mut BTreeSet<u64>,
    extents: &mut BTreeSet<(u64, u64)>,
) -> Result<()> {
    let options = WalkOptions {
        min_birth: 0,
        read_data: false,
    };
    let mut collect = |bp: &Blkptr| {
        extents.extend(bp.dvas().map(|d| (d.offset(), d.asize())));
    };
    walk(zio, rootbp, options, seen, &mut collect)?;
    for ds in dsl.datasets.values() {
        walk(zio, &ds.bp, options, seen, &mut collect)?;
    }
    Ok(())
}

thread_local! {
    /// Label config regions that verified lately, with their offsets.
    static VERIFIED_CONFIGS: std::cell::RefCell<Vec<(u64, Vec<u8>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether a label's config region read at `offset` carries its checksum.
/// The answer depends only on the bytes and the offset, so a region equal
/// to one that verified at the same offset verifies without hashing again.
fn config_verifies(region: &[u8], offset: u64) -> bool {
    let known = VERIFIED_CONFIGS.with(|v| {
        v.borrow()
            .iter()
            .any(|(at, bytes)| *at == offset && bytes[..] == *region)
    });
    if known {
        return true;
    }
    let n = region.len();
    if label_checksum(&region[..n - 32], offset) != region[n - 32..] {
        return false;
    }
    remember_verified(region, offset);
    true
}

/// Records a config region that carries its checksum at `offset`.
fn remember_verified(region: &[u8], offset: u64) {
    VERIFIED_CONFIGS.with(|v| {
        let mut v = v.borrow_mut();
        // The labels read first of two pools of up to three disks, and
        // a few read after a first one failed.
        if v.len() >= 8 {
            v.remove(0);
        }
        v.push((offset, region.to_vec()));
    });
}
