//! Dataset operations with ZFS's rules: create, snapshot, clone, destroy,
//! rollback, user holds and properties. Each one checks everything first and
//! returns the errno ZFS would (`*_check`), and only then changes the pool,
//! in syncing context (`*_sync`), so a refused operation changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{DatasetId, DirId, DslDataset, DslDir, PropValue};
use super::{
    DS_FLAG_CI_DATASET, DS_FLAG_DEFER_DESTROY, DS_FLAG_INCONSISTENT, MAXNAMELEN,
    split_snapshot_name, valid_component,
};
use crate::dmu::dnode::{DNODE_SIZE, WritePolicy};
use crate::dmu::objset::{DMU_OST_ZFS, Objset};
use crate::error::{Errno, Error, Result, fail};
use crate::nvlist::NvValue;
use crate::spa::{Pool, new_head_dataset};
use crate::traverse::{WalkOptions, walk};
use crate::zio::{Blkptr, SPA_MAXBLOCKSIZE, SPA_MINBLOCKSIZE, ZioChecksum, ZioCompress};

/// What `zfs list` / `zdb` show of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    pub id: DatasetId,
    pub name: String,
    pub is_snapshot: bool,
    pub guid: u64,
    pub creation_txg: u64,
    pub creation_time: u64,
    pub referenced: u64,
    pub unique: u64,
    pub flags: u64,
    pub origin: Option<String>,
    pub holds: Vec<String>,
    pub bp: Blkptr,
}

/// A dataset's space, as `zfs list -o used,referenced,unique,written` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceInfo {
    /// For a filesystem: everything it and its snapshots and children hold
    /// that is not shared with its origin; for a snapshot: `unique`.
    pub used: u64,
    pub referenced: u64,
    pub unique: u64,
    /// Space written since the previous snapshot that is still referenced.
    pub written: u64,
}

/// The properties zsim understands, with their defaults.
pub const PROPERTIES: &[(&str, &str)] = &[
    ("recordsize", "131072"),
    ("checksum", "on"),
    ("compression", "off"),
    ("dedup", "off"),
    ("copies", "1"),
    ("atime", "on"),
    // The default is the filesystem's name under `/`.
    ("mountpoint", ""),
];

/// Where ZFS keeps a received value: beside the local one, under the
/// property's name with this suffix (`ZPROP_RECVD_SUFFIX`).
pub(crate) const RECVD_SUFFIX: &str = "$recvd";

/// Longest user property value (`ZAP_MAXVALUELEN`).
const MAX_USER_VALUE: usize = 8192;

/// A user property: `module:property`, as ZFS names them.
pub fn is_user_prop(prop: &str) -> bool {
    prop.contains(':') && prop.len() <= 256 && !prop.contains(RECVD_SUFFIX)
}

/// A property's value checked as `zfs set` checks it.
pub fn parse_prop(prop: &str, value: &str) -> Result<PropValue> {
    let one_of = |allowed: &[&str]| {
        if allowed.contains(&value) {
            Ok(PropValue::Text(value.to_string()))
        } else {
            fail(
                Errno::EINVAL,
                format!("{prop} {value:?} is not one of {}", allowed.join(", ")),
            )
        }
    };
    match prop {
        "recordsize" => {
            let n: u64 = value.parse().map_err(|_| {
                Error::new(
                    Errno::EINVAL,
                    format!("recordsize {value:?} is not a number"),
                )
            })?;
            if !n.is_power_of_two() || !(SPA_MINBLOCKSIZE..=SPA_MAXBLOCKSIZE).contains(&n) {
                return fail(
                    Errno::EINVAL,
                    format!("recordsize {n} must be a power of two from 512 to 128K"),
                );
            }
            Ok(PropValue::Number(n))
        }
        "checksum" => one_of(&["on", "off", "fletcher2", "fletcher4", "sha256"]),
        "compression" => match ZioCompress::from_name(value) {
            Some(c) if c.is_supported() => Ok(PropValue::Text(value.to_string())),
            Some(_) => fail(
                Errno::ENOTSUP,
                format!("compression {value:?} is not supported by zsim"),
            ),
            None => fail(
                Errno::EINVAL,
                format!("compression {value:?} is not a compression"),
            ),
        },
        "dedup" => one_of(&["on", "off", "sha256"]),
        "copies" => match value {
            "1" | "2" | "3" => Ok(PropValue::Number(value.parse().expect("a digit"))),
            _ => fail(Errno::EINVAL, format!("copies {value:?} is not 1, 2 or 3")),
        },
        "atime" => one_of(&["on", "off"]),
        "mountpoint" => {
            if value == "none" || value == "legacy" || value.starts_with('/') {
                // `/` keeps its slash; any other path loses a trailing one.
                let path = value.trim_end_matches('/');
                Ok(PropValue::Text(
                    if path.is_empty() { "/" } else { path }.to_string(),
                ))
            } else {
                fail(
                    Errno::EINVAL,
                    format!("mountpoint {value:?} must be an absolute path, none or legacy"),
                )
            }
        }
        _ if is_user_prop(prop) => {
            if value.len() >= MAX_USER_VALUE {
                fail(
                    Errno::E2BIG,
                    format!("{prop}: a value of {} bytes is too long", value.len()),
                )
            } else {
                Ok(PropValue::Text(value.to_string()))
            }
        }
        _ => fail(Errno::EINVAL, format!("{prop:?} is not a property")),
    }
}

/// How an index property's values are numbered where libzfs sends them as
/// numbers (a replication stream's nvlist).
enum Index {
    /// `ZioCompress`: compression.
    Compress,
    /// `ZioChecksum`: checksum, and dedup (which names a checksum).
    Checksum,
    /// 0 off, 1 on: atime.
    OnOff,
}

fn index_of(prop: &str) -> Option<Index> {
    match prop {
        "compression" => Some(Index::Compress),
        "checksum" | "dedup" => Some(Index::Checksum),
        "atime" => Some(Index::OnOff),
        _ => None,
    }
}

/// A property's value as a replication stream's nvlist carries it: index
/// properties by number, other numbers as numbers, the rest as strings.
pub(crate) fn prop_to_nv(prop: &str, value: &PropValue) -> Option<NvValue> {
    match (index_of(prop), value) {
        (Some(Index::Compress), PropValue::Text(t)) => {
            ZioCompress::from_name(t).map(|c| NvValue::Uint64(c as u64))
        }
        (Some(Index::Checksum), PropValue::Text(t)) => {
            ZioChecksum::from_name(t).map(|c| NvValue::Uint64(c as u64))
        }
        (Some(Index::OnOff), PropValue::Text(t)) => Some(NvValue::Uint64(u64::from(t == "on"))),
        (_, PropValue::Number(n)) => Some(NvValue::Uint64(*n)),
        (_, PropValue::Text(t)) => Some(NvValue::String(t.clone())),
    }
}

/// The inverse of [`prop_to_nv`]: a value from a replication stream's
/// nvlist as `zfs set` would take it; `None` for what zsim cannot name.
pub(crate) fn prop_from_nv(prop: &str, value: &NvValue) -> Option<String> {
    let byte = |n: &u64| u8::try_from(*n).ok();
    match (index_of(prop), value) {
        (Some(Index::Compress), NvValue::Uint64(n)) => byte(n)
            .and_then(ZioCompress::from_u8)
            .map(|c| c.name().to_string()),
        (Some(Index::Checksum), NvValue::Uint64(n)) => byte(n)
            .and_then(ZioChecksum::from_u8)
            .map(|c| c.name().to_string()),
        (Some(Index::OnOff), NvValue::Uint64(n)) => {
            Some(if *n == 0 { "off" } else { "on" }.to_string())
        }
        (_, NvValue::Uint64(n)) => Some(n.to_string()),
        (_, NvValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

impl Pool {
    /// The directory of a filesystem name (`pool/a/b`).
    pub fn lookup_dir(&self, name: &str) -> Result<DirId> {
        let mut parts = name.split('/');
        let root = parts.next().unwrap_or_default();
        if root != self.name {
            return fail(Errno::ENOENT, format!("{name}: no such pool {root:?}"));
        }
        let mut dir = self.root_dir();
        for part in parts {
            dir = *self.dsl.dirs[&dir]
                .children
                .get(part)
                .ok_or_else(|| Error::new(Errno::ENOENT, format!("{name}: no such dataset")))?;
        }
        Ok(dir)
    }

    fn root_dir(&self) -> DirId {
        *self
            .dsl
            .dirs
            .iter()
            .find(|(_, d)| d.parent.is_none())
            .expect("a pool has a root directory")
            .0
    }

    /// The dataset a name refers to: a filesystem's head or a snapshot.
    pub fn lookup(&self, name: &str) -> Result<DatasetId> {
        match split_snapshot_name(name) {
            Some((fs, snap)) => {
                let dir = self.lookup_dir(fs)?;
                self.snapshot_in(dir, snap)
                    .ok_or_else(|| Error::new(Errno::ENOENT, format!("{name}: no such snapshot")))
            }
            None => Ok(self.dsl.dirs[&self.lookup_dir(name)?].head),
        }
    }

    pub(crate) fn snapshot_in(&self, dir: DirId, snap: &str) -> Option<DatasetId> {
        self.dsl
            .datasets
            .values()
            .find(|d| d.dir == dir && d.snapname.as_deref() == Some(snap))
            .map(|d| d.id)
    }

    pub fn dir_name(&self, dir: DirId) -> String {
        let mut name = String::new();
        self.push_dir_name(dir, &mut name);
        name
    }

    /// Appends `dir`'s full name: one string grown in place, as listing
    /// datasets names every one of them.
    fn push_dir_name(&self, dir: DirId, name: &mut String) {
        let d = &self.dsl.dirs[&dir];
        if let Some(p) = d.parent {
            self.push_dir_name(p, name);
            name.push('/');
        }
        name.push_str(&d.name);
    }

    pub fn dataset_name(&self, id: DatasetId) -> String {
        let ds = &self.dsl.datasets[&id];
        let mut name = String::new();
        self.push_dir_name(ds.dir, &mut name);
        if let Some(snap) = &ds.snapname {
            name.push('@');
            name.push_str(snap);
        }
        name
    }

    pub fn dataset(&self, id: DatasetId) -> &DslDataset {
        &self.dsl.datasets[&id]
    }

    /// Snapshots of a filesystem, oldest first.
    pub fn snapshots_of(&self, fs: DatasetId) -> Vec<DatasetId> {
        let mut out = Vec::new();
        let mut cur = self.dsl.datasets[&fs].prev_snap;
        let dir = self.dsl.datasets[&fs].dir;
        while let Some(id) = cur {
            let ds = &self.dsl.datasets[&id];
            if ds.dir != dir {
                break; // the origin of a clone belongs to another filesystem
            }
            out.push(id);
            cur = ds.prev_snap;
        }
        out.reverse();
        out
    }

    pub fn info(&self, id: DatasetId) -> DatasetInfo {
        let ds = &self.dsl.datasets[&id];
        let origin = self.dsl.dirs[&ds.dir].origin.map(|o| self.dataset_name(o));
        DatasetInfo {
            id,
            name: self.dataset_name(id),
            is_snapshot: ds.is_snapshot(),
            guid: ds.guid,
            creation_txg: ds.creation_txg,
            creation_time: ds.creation_time,
            referenced: ds.referenced_bytes,
            unique: ds.unique_bytes,
            flags: ds.flags,
            origin: if ds.is_snapshot() { None } else { origin },
            holds: ds.userrefs.keys().cloned().collect(),
            bp: ds.bp,
        }
    }

    /// Every dataset, filesystems before their snapshots, in name order.
    pub fn list(&self) -> Vec<DatasetInfo> {
        let mut out: Vec<DatasetInfo> = self.dsl.datasets.keys().map(|&id| self.info(id)).collect();
        out.sort_by_key(|a| a.name.replace('@', "\u{1}"));
        out
    }

    /// Every filesystem below `fs`, by name (parents first); a receive's
    /// hidden `%` clone is none (`zfs list` does not show it either).
    pub(crate) fn filesystems_below(&self, fs: &str) -> Vec<String> {
        let below = format!("{fs}/");
        self.list()
            .into_iter()
            .filter(|i| !i.is_snapshot && i.name.starts_with(&below) && !i.name.contains('%'))
            .map(|i| i.name)
            .collect()
    }

    fn check_new_name(&self, name: &str) -> Result<(DirId, String)> {
        if name.len() >= MAXNAMELEN {
            return fail(Errno::ENAMETOOLONG, format!("{name}: name too long"));
        }
        let Some((parent, last)) = name.rsplit_once('/') else {
            return fail(
                Errno::EEXIST,
                format!("{name}: the pool's root filesystem exists"),
            );
        };
        if !valid_component(last) && !last.starts_with('%') {
            return fail(Errno::EINVAL, format!("{name}: invalid dataset name"));
        }
        let parent_dir = self.lookup_dir(parent)?;
        if self.dsl.dirs[&parent_dir].children.contains_key(last) {
            return fail(Errno::EEXIST, format!("{name}: dataset already exists"));
        }
        Ok((parent_dir, last.to_string()))
    }

    fn insert_dir(
        &mut self,
        parent: DirId,
        name: String,
        origin: Option<DatasetId>,
    ) -> (DirId, DatasetId) {
        let dir = self.dsl.alloc_id();
        let head = self.dsl.alloc_id();
        self.dsl
            .dirs
            .get_mut(&parent)
            .expect("checked")
            .children
            .insert(name.clone(), dir);
        self.dsl.dirs.insert(
            dir,
            DslDir {
                id: dir,
                name,
                parent: Some(parent),
                head,
                origin,
                children: BTreeMap::new(),
                props: BTreeMap::new(),
            },
        );
        (dir, head)
    }

    /// `dmu_objset_create`: a new, empty filesystem.
    pub fn create_fs(&mut self, name: &str) -> Result<DatasetId> {
        self.check_usable()?;
        let (parent, last) = self.check_new_name(name)?;
        let now = self.clock.now_secs();
        let guid = self.rng.next_u64();
        let head = self.create_sync(parent, last, now, self.open_txg(), guid);
        self.objsets.insert(head, Objset::create(DMU_OST_ZFS));
        self.txg_sync()?;
        Ok(head)
    }

    /// A new, empty filesystem in syncing context (checked by the caller).
    pub(crate) fn create_sync(
        &mut self,
        parent: DirId,
        name: String,
        now: u64,
        txg: u64,
        guid: u64,
    ) -> DatasetId {
        let (dir, head) = self.insert_dir(parent, name, None);
        self.dsl
            .datasets
            .insert(head, new_head_dataset(head, dir, now, txg, guid));
        self.dsl_dirty = true;
        head
    }

    /// `dsl_dataset_snapshot`: `fs@snap` holding exactly what `fs` holds
    /// once the open txg has synced.
    pub fn snapshot(&mut self, name: &str) -> Result<DatasetId> {
        let created = self.snapshot_many(name, false)?;
        Ok(created[0])
    }

    /// `zfs snapshot -r`: `fs@snap` and the snapshot of the same name of
    /// every filesystem below `fs`, all in one txg (one sync task, as
    /// `dmu_objset_snapshot` takes them), or none at all: EEXIST if any of
    /// them has it already. The ids come parents first, by name.
    pub fn snapshot_recursive(&mut self, name: &str) -> Result<Vec<DatasetId>> {
        self.snapshot_many(name, true)
    }

    fn snapshot_many(&mut self, name: &str, recursive: bool) -> Result<Vec<DatasetId>> {
        self.check_usable()?;
        let Some((fs, snap)) = split_snapshot_name(name) else {
            return fail(Errno::EINVAL, format!("{name}: not a snapshot name"));
        };
        if name.len() >= MAXNAMELEN {
            return fail(Errno::ENAMETOOLONG, format!("{name}: name too long"));
        }
        if !valid_component(snap) {
            return fail(Errno::EINVAL, format!("{name}: invalid snapshot name"));
        }
        let top = self.lookup_dir(fs)?;
        let mut dirs = vec![(fs.to_string(), top)];
        if recursive {
            for name in self.filesystems_below(fs) {
                let dir = self.lookup_dir(&name)?;
                dirs.push((name, dir));
            }
        }
        for (fs, dir) in &dirs {
            if fs.len() + 1 + snap.len() >= MAXNAMELEN {
                return fail(Errno::ENAMETOOLONG, format!("{fs}@{snap}: name too long"));
            }
            if self.snapshot_in(*dir, snap).is_some() {
                return fail(
                    Errno::EEXIST,
                    format!("{fs}@{snap}: snapshot already exists"),
                );
            }
            // Not in the seed, which lets a user snapshot the filesystem a
            // full receive is creating: the receive's cleanup then cannot
            // destroy it (it has a snapshot) and leaves it half received.
            // Later ZFS refuses it here, as this does.
            let head = self.dsl.dirs[dir].head;
            if self.dsl.datasets[&head].flags & DS_FLAG_INCONSISTENT != 0 {
                return fail(Errno::EBUSY, format!("{fs}: a receive is in progress"));
            }
        }
        let heads: Vec<(DatasetId, u64)> = dirs
            .iter()
            .map(|(_, dir)| (self.dsl.dirs[dir].head, self.rng.next_u64()))
            .collect();
        let now = self.clock.now_secs();
        let snap = snap.to_string();
        let mut created = Vec::new();
        self.txg_sync_with(|pool, txg| {
            for &(head, guid) in &heads {
                created.push(pool.snapshot_sync(head, &snap, txg, now, guid));
            }
            Ok(())
        })?;
        Ok(created)
    }

    /// `dsl_dataset_snapshot_sync_impl`: the head's state becomes the
    /// snapshot's; the head starts a new deadlist.
    pub(crate) fn snapshot_sync(
        &mut self,
        head: DatasetId,
        snap: &str,
        txg: u64,
        now: u64,
        guid: u64,
    ) -> DatasetId {
        let id = self.dsl.alloc_id();
        let h = self.dsl.datasets.get_mut(&head).expect("checked");
        let snapshot = DslDataset {
            id,
            dir: h.dir,
            snapname: Some(snap.to_string()),
            prev_snap: h.prev_snap,
            prev_snap_txg: h.prev_snap_txg,
            next_snap: Some(head),
            next_clones: BTreeSet::new(),
            creation_time: now,
            creation_txg: txg,
            guid,
            flags: h.flags & DS_FLAG_CI_DATASET,
            bp: h.bp,
            referenced_bytes: h.referenced_bytes,
            compressed_bytes: h.compressed_bytes,
            uncompressed_bytes: h.uncompressed_bytes,
            // It shares everything with the head, for now.
            unique_bytes: 0,
            deadlist: std::mem::take(&mut h.deadlist),
            userrefs: BTreeMap::new(),
        };
        let prev = h.prev_snap;
        h.prev_snap = Some(id);
        h.prev_snap_txg = txg;
        h.unique_bytes = 0;
        if let Some(p) = prev {
            let p = self.dsl.datasets.get_mut(&p).expect("prev exists");
            if p.next_snap == Some(head) {
                p.next_snap = Some(id);
            } else if p.next_clones.remove(&head) {
                // The origin's clone is now reached through this snapshot.
                p.next_clones.insert(head);
            }
        }
        self.dsl.datasets.insert(id, snapshot);
        self.dsl_dirty = true;
        id
    }

    /// `dmu_objset_clone`: a new filesystem sharing everything with `origin`.
    /// As `dmu_objset_clone_check`, the new name is checked before the
    /// origin is looked up.
    pub fn clone_fs(&mut self, origin: &str, name: &str) -> Result<DatasetId> {
        self.check_usable()?;
        let (parent, last) = self.check_new_name(name)?;
        let origin_id = self.lookup(origin)?;
        let o = &self.dsl.datasets[&origin_id];
        if !o.is_snapshot() {
            return fail(
                Errno::EINVAL,
                format!("{origin}: a clone's origin must be a snapshot"),
            );
        }
        if o.flags & DS_FLAG_INCONSISTENT != 0 {
            // unreached: no snapshot is ever INCONSISTENT: snapshot_sync keeps only the CI flag of
            // its head; a hand-made image could carry the flag, but no command-line tool clones
            return fail(Errno::EINVAL, format!("{origin}: origin is inconsistent"));
        }
        let now = self.clock.now_secs();
        let guid = self.rng.next_u64();
        let mut created = 0;
        self.txg_sync_with(|pool, txg| {
            created = pool.clone_sync(parent, last, origin_id, txg, now, guid);
            Ok(())
        })?;
        Ok(created)
    }

    pub(crate) fn clone_sync(
        &mut self,
        parent: DirId,
        name: String,
        origin: DatasetId,
        txg: u64,
        now: u64,
        guid: u64,
    ) -> DatasetId {
        let (dir, head) = self.insert_dir(parent, name, Some(origin));
        let o = self.dsl.datasets.get_mut(&origin).expect("checked");
        o.next_clones.insert(head);
        let ds = DslDataset {
            prev_snap: Some(origin),
            prev_snap_txg: o.creation_txg,
            bp: o.bp,
            referenced_bytes: o.referenced_bytes,
            compressed_bytes: o.compressed_bytes,
            uncompressed_bytes: o.uncompressed_bytes,
            flags: o.flags & DS_FLAG_CI_DATASET,
            ..new_head_dataset(head, dir, now, txg, guid)
        };
        self.dsl.datasets.insert(head, ds);
        self.dsl_dirty = true;
        head
    }

    /// `zfs destroy NAME`: a snapshot, or a filesystem without snapshots or
    /// children.
    pub fn destroy(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        let id = self.lookup(name)?;
        if self.dsl.datasets[&id].is_snapshot() {
            self.destroy_snapshot_check(id, false)?;
            self.txg_sync_with(|pool, txg| pool.destroy_snapshot_sync(id, txg))
        } else {
            self.destroy_head_check(id, 0)?;
            self.txg_sync_with(|pool, _| pool.destroy_head_sync(id))
        }
    }

    /// `zfs destroy -d`: a snapshot with clones is marked and destroyed when
    /// its last clone goes.
    pub fn destroy_deferred(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        let id = self.lookup(name)?;
        self.destroy_snapshot_check(id, true)?;
        if self.has_clones(id) || !self.dsl.datasets[&id].userrefs.is_empty() {
            self.dsl.datasets.get_mut(&id).expect("exists").flags |= DS_FLAG_DEFER_DESTROY;
            self.dsl_dirty = true;
            return self.txg_sync();
        }
        self.txg_sync_with(|pool, txg| pool.destroy_snapshot_sync(id, txg))
    }

    fn has_clones(&self, id: DatasetId) -> bool {
        !self.dsl.datasets[&id].next_clones.is_empty()
    }

    /// `dsl_destroy_snapshot_check`.
    pub(crate) fn destroy_snapshot_check(&self, id: DatasetId, defer: bool) -> Result<()> {
        let ds = &self.dsl.datasets[&id];
        let name = self.dataset_name(id);
        if !ds.is_snapshot() {
            return fail(Errno::EINVAL, format!("{name}: not a snapshot"));
        }
        if self.long_held(id, None) {
            return fail(Errno::EBUSY, format!("{name}: snapshot is being sent"));
        }
        if defer {
            return Ok(());
        }
        if !ds.userrefs.is_empty() {
            return fail(Errno::EBUSY, format!("{name}: snapshot has user holds"));
        }
        if self.has_clones(id) {
            return fail(
                Errno::EEXIST,
                format!("{name}: snapshot has dependent clones"),
            );
        }
        Ok(())
    }

    /// `dsl_destroy_snapshot_sync_impl`: frees what only this snapshot held
    /// and hands its deadlist to its successor.
    pub(crate) fn destroy_snapshot_sync(&mut self, id: DatasetId, txg: u64) -> Result<()> {
        let s = self.dsl.datasets.remove(&id).expect("checked");
        self.snapshot_views.remove(&id);
        let next = s.next_snap.expect("a snapshot has a successor");
        let prev_txg = s.prev_snap_txg;
        let mut freed = Vec::new();
        {
            let n = self.dsl.datasets.get_mut(&next).expect("successor exists");
            let mut kept = Vec::with_capacity(n.deadlist.len() + s.deadlist.len());
            for bp in std::mem::take(&mut n.deadlist) {
                if bp.birth > prev_txg {
                    freed.push(bp);
                } else {
                    kept.push(bp);
                }
            }
            kept.extend_from_slice(&s.deadlist);
            n.deadlist = kept;
            n.prev_snap = s.prev_snap;
            n.prev_snap_txg = prev_txg;
        }
        for bp in &freed {
            self.zio.free_block(txg, bp)?;
        }
        if let Some(p) = s.prev_snap {
            let p = self.dsl.datasets.get_mut(&p).expect("prev exists");
            if p.next_snap == Some(id) {
                p.next_snap = Some(next);
            }
        }
        self.dsl_dirty = true;
        self.recompute_unique(next)?;
        if let Some(p) = s.prev_snap {
            self.recompute_unique(p)?;
        }
        Ok(())
    }

    /// `dsl_destroy_head_check_impl`: `expected_holds` are the caller's own
    /// long holds (a receive destroying its clone holds it once); any other
    /// (a receive creating it, a send of it) makes it EBUSY.
    pub(crate) fn destroy_head_check(&self, id: DatasetId, expected_holds: usize) -> Result<()> {
        let ds = &self.dsl.datasets[&id];
        let dir = &self.dsl.dirs[&ds.dir];
        let name = self.dataset_name(id);
        if dir.parent.is_none() {
            return fail(
                Errno::EINVAL,
                format!("{name}: the pool's root filesystem cannot be destroyed"),
            );
        }
        if self.long_holds.get(&id).map_or(0, Vec::len) != expected_holds
            && !planted!(DestroyIgnoresLongHolds)
        {
            return fail(
                Errno::EBUSY,
                format!("{name}: filesystem is in use (a receive or send holds it)"),
            );
        }
        if let Some(prev) = ds.prev_snap
            && self.dsl.datasets[&prev].dir == ds.dir
        {
            return fail(Errno::EBUSY, format!("{name}: filesystem has snapshots"));
        }
        if !dir.children.is_empty() {
            return fail(Errno::EEXIST, format!("{name}: filesystem has children"));
        }
        Ok(())
    }

    /// `dsl_destroy_head_sync_impl`: frees every block born since the
    /// origin (or ever, without one).
    pub(crate) fn destroy_head_sync(&mut self, id: DatasetId) -> Result<()> {
        self.destroy_head_sync_impl(id, true)
    }

    /// As [`Pool::destroy_head_sync`]; a clone's origin has its unique
    /// space counted again only if `recount_origin` (a clone holds none of
    /// it, but what happened before the destroy may have changed it).
    pub(crate) fn destroy_head_sync_impl(
        &mut self,
        id: DatasetId,
        recount_origin: bool,
    ) -> Result<()> {
        let ds = self.dsl.datasets[&id].clone();
        self.objsets.remove(&id);
        let mut blocks = Vec::new();
        let options = WalkOptions {
            min_birth: ds.prev_snap_txg,
            read_data: false,
        };
        walk(
            &mut self.zio,
            &ds.bp,
            options,
            &mut BTreeSet::new(),
            &mut |bp| {
                blocks.push(*bp);
            },
        )?;
        self.pending_frees.extend(blocks);
        let dir = self.dsl.dirs.remove(&ds.dir).expect("exists");
        if let Some(parent) = dir.parent {
            self.dsl
                .dirs
                .get_mut(&parent)
                .expect("parent")
                .children
                .remove(&dir.name);
        }
        self.dsl.datasets.remove(&id);
        if let Some(origin) = dir.origin {
            let o = self.dsl.datasets.get_mut(&origin).expect("origin exists");
            o.next_clones.remove(&id);
            let deferred = o.flags & DS_FLAG_DEFER_DESTROY != 0
                && o.next_clones.is_empty()
                && o.userrefs.is_empty();
            if recount_origin {
                self.recompute_unique(origin)?;
            }
            if deferred {
                let txg = self.open_txg();
                self.destroy_snapshot_sync(origin, txg)?;
            }
        }
        self.dsl_dirty = true;
        Ok(())
    }

    /// `zfs rollback`: the filesystem goes back to its latest snapshot.
    pub fn rollback(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        let (fs, target) = match split_snapshot_name(name) {
            Some((fs, _)) => (self.lookup(fs)?, Some(self.lookup(name)?)),
            None => (self.lookup(name)?, None),
        };
        let ds = &self.dsl.datasets[&fs];
        let latest = self.snapshots_of(fs).last().copied();
        let Some(latest) = latest else {
            return fail(
                Errno::ESRCH,
                format!("{}: no snapshot to roll back to", self.dataset_name(fs)),
            );
        };
        // unreached: only a receive's new filesystem or `%recv` clone is INCONSISTENT, and
        // neither has a snapshot of its own (ESRCH above): snapshot_many refuses an
        // INCONSISTENT head, and the receive's own snapshot clears the flag in the same sync
        if ds.flags & DS_FLAG_INCONSISTENT != 0 {
            return fail(
                Errno::EBUSY,
                format!("{}: a receive is in progress", self.dataset_name(fs)),
            );
        }
        if let Some(t) = target
            && t != latest
        {
            return fail(
                Errno::EEXIST,
                format!("{name}: more recent snapshots exist (destroy them first)"),
            );
        }
        self.txg_sync_with(|pool, _| pool.rollback_sync(fs, latest))
    }

    pub(crate) fn rollback_sync(&mut self, fs: DatasetId, snap: DatasetId) -> Result<()> {
        let s = self.dsl.datasets[&snap].clone();
        let d = self.dsl.datasets[&fs].clone();
        let mut blocks = Vec::new();
        let options = WalkOptions {
            min_birth: s.creation_txg,
            read_data: false,
        };
        walk(
            &mut self.zio,
            &d.bp,
            options,
            &mut BTreeSet::new(),
            &mut |bp| blocks.push(*bp),
        )?;
        self.pending_frees.extend(blocks);
        let d = self.dsl.datasets.get_mut(&fs).expect("exists");
        d.bp = s.bp;
        d.deadlist.clear();
        d.referenced_bytes = s.referenced_bytes;
        d.compressed_bytes = s.compressed_bytes;
        d.uncompressed_bytes = s.uncompressed_bytes;
        d.unique_bytes = 0;
        self.objsets.remove(&fs);
        self.dsl_dirty = true;
        self.recompute_unique(snap)
    }

    /// `dsl_dataset_user_hold`.
    pub fn hold(&mut self, snapshot: &str, tag: &str) -> Result<()> {
        self.check_usable()?;
        let id = self.lookup(snapshot)?;
        let now = self.clock.now_secs();
        let ds = self.dsl.datasets.get_mut(&id).expect("found");
        if !ds.is_snapshot() {
            return fail(
                Errno::EINVAL,
                format!("{snapshot}: holds are for snapshots"),
            );
        }
        if ds.userrefs.contains_key(tag) {
            return fail(
                Errno::EEXIST,
                format!("{snapshot}: tag {tag:?} is already held"),
            );
        }
        ds.userrefs.insert(tag.to_string(), now);
        self.dsl_dirty = true;
        self.txg_sync()
    }

    /// `dsl_dataset_user_release`: a deferred-destroy snapshot goes with its
    /// last hold.
    pub fn release(&mut self, snapshot: &str, tag: &str) -> Result<()> {
        self.check_usable()?;
        let id = self.lookup(snapshot)?;
        let ds = self.dsl.datasets.get_mut(&id).expect("found");
        if ds.userrefs.remove(tag).is_none() {
            return fail(
                Errno::ESRCH,
                format!("{snapshot}: no hold with tag {tag:?}"),
            );
        }
        let destroy = ds.flags & DS_FLAG_DEFER_DESTROY != 0
            && ds.userrefs.is_empty()
            && ds.next_clones.is_empty();
        self.dsl_dirty = true;
        if destroy {
            self.txg_sync_with(|pool, txg| pool.destroy_snapshot_sync(id, txg))
        } else {
            self.txg_sync()
        }
    }

    /// `dsl_dataset_modified_since_lastsnap`: the head's meta-dnode differs
    /// from its latest snapshot's (pending writes are synced first).
    pub fn modified_since_last_snapshot(&mut self, fs: DatasetId) -> Result<bool> {
        self.txg_sync()?;
        let ds = &self.dsl.datasets[&fs];
        let Some(prev) = ds.prev_snap else {
            return Ok(false);
        };
        let prev = self.dsl.datasets[&prev].clone();
        let ds = ds.clone();
        if ds.bp.birth <= prev.creation_txg {
            return Ok(false);
        }
        let a = self.zio.read_block(&ds.bp)?;
        let b = self.zio.read_block(&prev.bp)?;
        Ok(a[..DNODE_SIZE] != b[..DNODE_SIZE])
    }

    /// Sets a property on a filesystem (validated as `zfs set` does).
    pub fn set_prop(&mut self, name: &str, prop: &str, value: &str) -> Result<()> {
        self.check_usable()?;
        let dir = self.lookup_dir(name)?;
        let parsed = parse_prop(prop, value)?;
        self.dsl
            .dirs
            .get_mut(&dir)
            .expect("found")
            .props
            .insert(prop.to_string(), parsed);
        self.dsl_dirty = true;
        // Open objsets pick the new policy up when next used.
        self.txg_sync()
    }

    /// Sets the received values of properties on a filesystem's
    /// directory (`ZPROP_SRC_RECEIVED`), as a receive does with a
    /// replication stream's: a local value still wins. Replaces every
    /// value received before. Values zsim does not know or cannot check
    /// are left out, as ZFS leaves out one it cannot set. Returns the
    /// received values it replaced, for [`Pool::restore_received`]. Synced
    /// with the next txg.
    pub(crate) fn set_received(
        &mut self,
        dir: DirId,
        values: &[(String, String)],
    ) -> BTreeMap<String, PropValue> {
        let props = &mut self.dsl.dirs.get_mut(&dir).expect("a directory").props;
        let old: BTreeMap<String, PropValue> = props
            .iter()
            .filter(|(k, _)| k.ends_with(RECVD_SUFFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        props.retain(|k, _| !k.ends_with(RECVD_SUFFIX));
        for (prop, value) in values {
            // parse_prop refuses names zsim does not know.
            if let Ok(v) = parse_prop(prop, value) {
                props.insert(format!("{prop}{RECVD_SUFFIX}"), v);
            }
        }
        self.dsl_dirty = true;
        old
    }

    /// `zfs receive -o PROP=VALUE`: local values set on a filesystem's
    /// directory as its receive begins, before its data is written (so a
    /// `compression` applies to it). Every value is checked first, as
    /// `zfs set` checks it (EINVAL, nothing changed). Returns what each
    /// replaced (`None`: no local value), for [`Pool::restore_local`].
    pub(crate) fn set_local_props(
        &mut self,
        dir: DirId,
        values: &[(String, String)],
    ) -> Result<BTreeMap<String, Option<PropValue>>> {
        let parsed = values
            .iter()
            .map(|(p, v)| Ok((p.clone(), parse_prop(p, v)?)))
            .collect::<Result<Vec<_>>>()?;
        let props = &mut self.dsl.dirs.get_mut(&dir).expect("a directory").props;
        let mut old = BTreeMap::new();
        for (prop, value) in parsed {
            let was = props.insert(prop.clone(), value);
            old.entry(prop).or_insert(was);
        }
        self.dsl_dirty = true;
        Ok(old)
    }

    /// Puts back the local values [`Pool::set_local_props`] replaced.
    pub(crate) fn restore_local(&mut self, dir: DirId, old: BTreeMap<String, Option<PropValue>>) {
        if let Some(d) = self.dsl.dirs.get_mut(&dir) {
            for (prop, was) in old {
                match was {
                    Some(v) => d.props.insert(prop, v),
                    None => d.props.remove(&prop),
                };
            }
            self.dsl_dirty = true;
        }
    }

    /// Puts back the received values [`Pool::set_received`] replaced (a
    /// failed receive leaves the target as it was).
    pub(crate) fn restore_received(&mut self, dir: DirId, old: BTreeMap<String, PropValue>) {
        if let Some(d) = self.dsl.dirs.get_mut(&dir) {
            d.props.retain(|k, _| !k.ends_with(RECVD_SUFFIX));
            d.props.extend(old);
            self.dsl_dirty = true;
        }
    }

    /// A property's effective value and where it comes from, as `zfs get`
    /// shows them: `local`, `received`, `inherited from FS`, `default`
    /// (`-` and `-` for a user property set nowhere).
    pub fn get_prop(&self, name: &str, prop: &str) -> Result<(String, String)> {
        let fs = split_snapshot_name(name).map_or(name, |(fs, _)| fs);
        let dir = self.lookup_dir(fs)?;
        let default = PROPERTIES.iter().find(|(p, _)| *p == prop).map(|(_, d)| *d);
        if default.is_none() && !is_user_prop(prop) {
            // unreached: only the command line's `get IMAGE PROP NAME` asks for a name that is no
            // property; all_props and recordsize ask only for known or user properties
            return fail(Errno::EINVAL, format!("{prop:?} is not a property"));
        }
        match self.prop_set_on(dir, prop) {
            Some((v, d, received)) => {
                let source = match (d == dir, received) {
                    (true, false) => "local".to_string(),
                    (true, true) => "received".to_string(),
                    (false, _) => format!("inherited from {}", self.dir_name(d)),
                };
                let mut text = prop_text(v);
                // An inherited mountpoint is the ancestor's, with the path
                // from the ancestor to here after it.
                if prop == "mountpoint" && d != dir && text.starts_with('/') {
                    let from = self.dir_name(d);
                    let rest = &self.dir_name(dir)[from.len()..];
                    text = format!("{}{rest}", text.trim_end_matches('/'));
                }
                Ok((text, source))
            }
            None if prop == "mountpoint" => {
                Ok((format!("/{}", self.dir_name(dir)), "default".into()))
            }
            None => match default {
                Some(d) => Ok((d.to_string(), "default".to_string())),
                None => Ok(("-".to_string(), "-".to_string())),
            },
        }
    }

    /// Every property of a filesystem (`zfs get all`): the ones zsim
    /// knows, in order, then the user properties set on it or an ancestor,
    /// by name; each with its value and source.
    pub fn all_props(&self, name: &str) -> Result<Vec<(String, String, String)>> {
        let fs = split_snapshot_name(name).map_or(name, |(fs, _)| fs);
        let mut user = BTreeSet::new();
        let mut cur = Some(self.lookup_dir(fs)?);
        while let Some(d) = cur {
            let d = &self.dsl.dirs[&d];
            for k in d.props.keys() {
                let k = k.trim_end_matches(RECVD_SUFFIX);
                if is_user_prop(k) {
                    user.insert(k.to_string());
                }
            }
            cur = d.parent;
        }
        let names = PROPERTIES.iter().map(|(p, _)| p.to_string()).chain(user);
        names
            .map(|p| {
                let (value, source) = self.get_prop(name, &p)?;
                Ok((p, value, source))
            })
            .collect()
    }

    /// The value `dir` or its nearest ancestor sets for `prop` (a local
    /// value before a received one), which directory that is, and whether
    /// the value was received.
    fn prop_set_on(&self, dir: DirId, prop: &str) -> Option<(&PropValue, DirId, bool)> {
        // The received value's name, put together on the stack: this runs
        // for three properties of every DMU handle taken.
        let mut buf = [0u8; 320];
        let n = prop.len() + RECVD_SUFFIX.len();
        let long;
        let received = if n <= buf.len() {
            buf[..prop.len()].copy_from_slice(prop.as_bytes());
            buf[prop.len()..n].copy_from_slice(RECVD_SUFFIX.as_bytes());
            std::str::from_utf8(&buf[..n]).expect("two strings end to end")
        } else {
            long = format!("{prop}{RECVD_SUFFIX}");
            &long
        };
        let mut cur = Some(dir);
        while let Some(d) = cur {
            let d = &self.dsl.dirs[&d];
            if let Some(v) = d.props.get(prop) {
                return Some((v, d.id, false));
            }
            if let Some(v) = d.props.get(received) {
                return Some((v, d.id, true));
            }
            cur = d.parent;
        }
        None
    }

    pub(crate) fn write_policy(&self, dir: DirId) -> WritePolicy {
        // As `get_prop` would give it, without going through the name.
        let get = |p: &str| match self.prop_set_on(dir, p) {
            Some((v, _, _)) => prop_text(v),
            None => PROPERTIES
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, default)| default.to_string())
                .unwrap_or_default(),
        };
        let os_checksum = ZioChecksum::select(
            ZioChecksum::from_name(&get("checksum")).unwrap_or(ZioChecksum::On),
            ZioChecksum::Fletcher4,
        );
        let os_compress = ZioCompress::select(
            ZioCompress::from_name(&get("compression")).unwrap_or(ZioCompress::Off),
            ZioCompress::Off,
        );
        let os_dedup_checksum = if get("dedup") == "off" {
            ZioChecksum::Off
        } else {
            ZioChecksum::Sha256
        };
        WritePolicy {
            os_checksum,
            os_compress,
            os_dedup_checksum,
            mdcomp_disable: false,
            os_copies: get("copies").parse().unwrap_or(1),
        }
    }

    /// The `recordsize` a filesystem's new files get.
    pub fn recordsize(&self, fs: DatasetId) -> u32 {
        let name = self.dir_name(self.dsl.datasets[&fs].dir);
        self.get_prop(&name, "recordsize")
            .ok()
            .and_then(|v| v.0.parse().ok())
            .unwrap_or(SPA_MAXBLOCKSIZE as u32)
    }

    /// Recomputes a dataset's unique space from its tree (after a snapshot
    /// next to it went away): the blocks born since its previous snapshot
    /// that its successor does not also hold.
    pub(crate) fn recompute_unique(&mut self, id: DatasetId) -> Result<()> {
        let unique = self.compute_unique(id)?;
        self.dsl.datasets.get_mut(&id).expect("exists").unique_bytes = unique;
        self.dsl_dirty = true;
        Ok(())
    }

    /// A dataset's unique space, from the trees.
    pub(crate) fn compute_unique(&mut self, id: DatasetId) -> Result<u64> {
        let ds = self.dsl.datasets[&id].clone();
        let options = WalkOptions {
            min_birth: ds.prev_snap_txg,
            read_data: false,
        };
        // As ZFS counts it: what the next snapshot (or the head) does not
        // hold. Clones do not count: a snapshot with clones cannot go.
        // The next one's blocks are walked first; walking this one's then
        // skips them, and with them the subtrees beneath, which are the
        // same blocks in both trees (most of them, usually).
        let mut theirs = BTreeSet::new();
        if let Some(next) = ds.next_snap {
            let bp = self.dsl.datasets[&next].bp;
            walk(&mut self.zio, &bp, options, &mut theirs, &mut |_| {})?;
        }
        let mut unique = 0;
        walk(&mut self.zio, &ds.bp, options, &mut theirs, &mut |bp| {
            unique += bp.asize();
        })?;
        Ok(unique)
    }

    /// Space charged to a filesystem: everything its head and snapshots hold
    /// that is not shared with its origin, plus its children's.
    pub fn used_bytes(&mut self, fs: DatasetId) -> Result<u64> {
        let dir = self.dsl.datasets[&fs].dir;
        let origin_txg = self.dsl.dirs[&dir]
            .origin
            .map_or(0, |o| self.dsl.datasets[&o].creation_txg);
        let mut members: Vec<Blkptr> = self
            .dsl
            .datasets
            .values()
            .filter(|d| d.dir == dir)
            .map(|d| d.bp)
            .collect();
        members.sort_by_key(|bp| bp.birth);
        let options = WalkOptions {
            min_birth: origin_txg,
            read_data: false,
        };
        let mut seen = BTreeSet::new();
        let mut total = 0;
        for bp in members {
            walk(&mut self.zio, &bp, options, &mut seen, &mut |b| {
                total += b.asize()
            })?;
        }
        let children: Vec<DirId> = self.dsl.dirs[&dir].children.values().copied().collect();
        for child in children {
            let head = self.dsl.dirs[&child].head;
            total += self.used_bytes(head)?;
        }
        Ok(total)
    }

    /// Used, referenced, unique and written space of a dataset.
    pub fn space_info(&mut self, id: DatasetId) -> Result<SpaceInfo> {
        let ds = self.dsl.datasets[&id].clone();
        let written = crate::traverse::space_born_after(&mut self.zio, &ds.bp, ds.prev_snap_txg)?;
        let used = if ds.is_snapshot() {
            ds.unique_bytes
        } else {
            self.used_bytes(id)?
        };
        Ok(SpaceInfo {
            used,
            referenced: ds.referenced_bytes,
            unique: ds.unique_bytes,
            written,
        })
    }

    /// Import's last step: datasets a crash left INCONSISTENT (a receive in
    /// flight) are destroyed, as ZFS does on import.
    pub(crate) fn destroy_inconsistent(&mut self) -> Result<()> {
        let victims: Vec<DatasetId> = self
            .dsl
            .datasets
            .values()
            .filter(|d| !d.is_snapshot() && d.flags & DS_FLAG_INCONSISTENT != 0)
            .map(|d| d.id)
            .collect();
        if victims.is_empty() {
            return Ok(());
        }
        for id in victims {
            // Snapshots taken of it (none, for a receive) would block this.
            if self.destroy_head_check(id, 0).is_ok() {
                self.txg_sync_with(|pool, _| pool.destroy_head_sync(id))?;
            }
        }
        Ok(())
    }
}

/// A property value as `get` shows it.
fn prop_text(v: &PropValue) -> String {
    match v {
        PropValue::Number(n) => n.to_string(),
        PropValue::Text(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{ManualClock, SplitMix64};
    use crate::vdev::MemDevice;

    fn new_pool() -> Pool {
        Pool::create(
            Box::new(MemDevice::new(16 << 20, 512)),
            "tank",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap()
    }

    /// A filesystem's used space counts its children's: each level adds
    /// what it holds itself to what is below it.
    #[test]
    fn used_space_adds_up_the_children() {
        let mut pool = new_pool();
        let a = pool.create_fs("tank/a").unwrap();
        let b = pool.create_fs("tank/a/b").unwrap();
        for (fs, len) in [(a, 100_000usize), (b, 300_000)] {
            let mut dmu = pool.dmu(fs).unwrap();
            let obj = dmu.object_alloc(19, 131072, 0, 0).unwrap();
            dmu.write(obj, 0, &vec![9u8; len]).unwrap();
        }
        pool.txg_sync().unwrap();
        let root = pool.lookup("tank").unwrap();
        let (used_root, used_a, used_b) = (
            pool.used_bytes(root).unwrap(),
            pool.used_bytes(a).unwrap(),
            pool.used_bytes(b).unwrap(),
        );
        let own = |pool: &Pool, id| pool.dsl.datasets[&id].referenced_bytes;
        assert!(used_b >= 300_000, "{used_b}");
        assert_eq!(used_b, own(&pool, b));
        assert_eq!(used_a, own(&pool, a) + used_b);
        assert_eq!(used_root, own(&pool, root) + used_a);
    }

    fn flags(pool: &Pool, name: &str) -> u64 {
        pool.dsl.datasets[&pool.lookup(name).unwrap()].flags
    }

    /// A clone compares names as its origin does, and takes no other flag
    /// of it.
    #[test]
    fn a_clone_keeps_only_its_origins_case_insensitivity() {
        let mut pool = new_pool();
        for (fs, ci) in [("tank/plain", 0), ("tank/ci", DS_FLAG_CI_DATASET)] {
            let head = pool.create_fs(fs).unwrap();
            pool.dsl.datasets.get_mut(&head).unwrap().flags |= ci;
            pool.snapshot(&format!("{fs}@s")).unwrap();
            pool.hold(&format!("{fs}@s"), "keep").unwrap();
            pool.destroy_deferred(&format!("{fs}@s")).unwrap();
            assert_ne!(flags(&pool, &format!("{fs}@s")) & DS_FLAG_DEFER_DESTROY, 0);
            pool.clone_fs(&format!("{fs}@s"), &format!("{fs}-clone"))
                .unwrap();
            assert_eq!(flags(&pool, &format!("{fs}-clone")), ci, "{fs}");
        }
    }

    /// `zfs destroy -d`: at once for a snapshot nothing needs, else once
    /// its last clone or hold goes.
    #[test]
    fn a_deferred_destroy_waits_for_clones_and_holds_only() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        for s in ["plain", "cloned", "held"] {
            pool.snapshot(&format!("tank/a@{s}")).unwrap();
        }
        pool.clone_fs("tank/a@cloned", "tank/c").unwrap();
        pool.hold("tank/a@held", "keep").unwrap();
        for s in ["plain", "cloned", "held"] {
            pool.destroy_deferred(&format!("tank/a@{s}")).unwrap();
        }
        assert!(pool.lookup("tank/a@plain").is_err(), "destroyed at once");
        pool.lookup("tank/a@cloned").unwrap();
        pool.lookup("tank/a@held").unwrap();
        pool.destroy("tank/c").unwrap();
        assert!(pool.lookup("tank/a@cloned").is_err(), "gone with its clone");
        pool.release("tank/a@held", "keep").unwrap();
        assert!(pool.lookup("tank/a@held").is_err(), "gone with its hold");
    }

    /// A replication stream's nvlist carries index properties as libzfs
    /// sends them, by number, and a receive names them again.
    #[test]
    fn index_properties_travel_as_numbers() {
        for (prop, name, number) in [
            ("checksum", "sha256", ZioChecksum::Sha256 as u64),
            ("dedup", "sha256", ZioChecksum::Sha256 as u64),
            ("compression", "lzjb", ZioCompress::Lzjb as u64),
            ("atime", "off", 0),
            ("atime", "on", 1),
        ] {
            let sent = prop_to_nv(prop, &PropValue::Text(name.to_string()));
            assert_eq!(sent, Some(NvValue::Uint64(number)), "{prop}={name}");
            let back = prop_from_nv(prop, &NvValue::Uint64(number));
            assert_eq!(back.as_deref(), Some(name), "{prop}={number}");
        }
        // Not an index property: a number stays a number, text stays text.
        let n = prop_to_nv("recordsize", &PropValue::Number(8192));
        assert_eq!(n, Some(NvValue::Uint64(8192)));
        let back = prop_from_nv("recordsize", &NvValue::Uint64(8192));
        assert_eq!(back.as_deref(), Some("8192"));
        let t = prop_to_nv("mountpoint", &PropValue::Text("/srv".into()));
        assert_eq!(t, Some(NvValue::String("/srv".into())));
    }

    /// Releasing one of two holds on a snapshot marked for deferred destroy
    /// leaves it in place; it goes with the other.
    #[test]
    fn a_deferred_destroy_waits_for_the_last_hold() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.snapshot("tank/a@s").unwrap();
        pool.hold("tank/a@s", "one").unwrap();
        pool.hold("tank/a@s", "two").unwrap();
        pool.destroy_deferred("tank/a@s").unwrap();
        pool.release("tank/a@s", "one").unwrap();
        pool.lookup("tank/a@s").expect("still held");
        pool.release("tank/a@s", "two").unwrap();
        assert!(pool.lookup("tank/a@s").is_err(), "gone with its last hold");
    }

    /// Releasing the last hold of a snapshot nobody asked to destroy leaves
    /// it in place.
    #[test]
    fn releasing_the_last_hold_keeps_a_snapshot_not_marked_for_destroy() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.snapshot("tank/a@s").unwrap();
        pool.hold("tank/a@s", "keep").unwrap();
        pool.release("tank/a@s", "keep").unwrap();
        pool.lookup("tank/a@s").expect("not marked for destroy");
        assert_eq!(flags(&pool, "tank/a@s") & DS_FLAG_DEFER_DESTROY, 0);
    }

    /// Releasing the last hold of a deferred-destroy snapshot that still
    /// has a clone leaves it in place; it goes with the clone.
    #[test]
    fn a_deferred_destroy_outlives_its_last_hold_while_cloned() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.snapshot("tank/a@s").unwrap();
        pool.clone_fs("tank/a@s", "tank/c").unwrap();
        pool.hold("tank/a@s", "keep").unwrap();
        pool.destroy_deferred("tank/a@s").unwrap();
        pool.release("tank/a@s", "keep").unwrap();
        pool.lookup("tank/a@s").expect("its clone still needs it");
        pool.destroy("tank/c").unwrap();
        assert!(pool.lookup("tank/a@s").is_err(), "gone with its clone");
    }

    /// Putting back the received values a failed receive replaced keeps
    /// the target's local values, and drops what the receive added.
    #[test]
    fn restoring_received_values_keeps_local_ones() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.set_prop("tank/a", "org.test:x", "mine").unwrap();
        pool.set_prop("tank/a", "compression", "lzjb").unwrap();
        let dir = pool.lookup_dir("tank/a").unwrap();
        let first = [
            ("org.test:x".to_string(), "sent".to_string()),
            ("atime".to_string(), "off".to_string()),
        ];
        assert!(pool.set_received(dir, &first).is_empty());
        let second = [("copies".to_string(), "2".to_string())];
        let before = pool.set_received(dir, &second);
        pool.restore_received(dir, before);
        let get = |p: &str| pool.get_prop("tank/a", p).unwrap();
        assert_eq!(get("org.test:x"), ("mine".into(), "local".into()));
        assert_eq!(get("compression"), ("lzjb".into(), "local".into()));
        assert_eq!(get("atime"), ("off".into(), "received".into()));
        assert_eq!(get("copies"), ("1".into(), "default".into()));
        let props = &pool.dsl.dirs[&dir].props;
        assert_eq!(
            props.get(&format!("org.test:x{RECVD_SUFFIX}")),
            Some(&PropValue::Text("sent".into()))
        );
    }

    /// `zfs get all` lists the known properties in order, then the user
    /// properties set on the filesystem or an ancestor by name, each with
    /// its value and where it comes from.
    #[test]
    fn all_props_lists_known_then_user_properties_with_sources() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.set_prop("tank", "atime", "off").unwrap();
        pool.set_prop("tank", "org.test:owner", "ops").unwrap();
        pool.set_prop("tank/a", "compression", "lzjb").unwrap();
        pool.set_prop("tank/a", "org.test:a", "1").unwrap();
        let all = pool.all_props("tank/a").unwrap();
        let names: Vec<&str> = all.iter().map(|(p, _, _)| p.as_str()).collect();
        let mut expected: Vec<&str> = PROPERTIES.iter().map(|(p, _)| *p).collect();
        expected.extend(["org.test:a", "org.test:owner"]);
        assert_eq!(names, expected);
        let find = |p: &str| {
            let (_, v, s) = all.iter().find(|(q, _, _)| q == p).unwrap();
            (v.as_str(), s.as_str())
        };
        assert_eq!(find("recordsize"), ("131072", "default"));
        assert_eq!(find("compression"), ("lzjb", "local"));
        assert_eq!(find("atime"), ("off", "inherited from tank"));
        assert_eq!(find("mountpoint"), ("/tank/a", "default"));
        assert_eq!(find("org.test:a"), ("1", "local"));
        assert_eq!(find("org.test:owner"), ("ops", "inherited from tank"));
        // A snapshot shows its filesystem's.
        pool.snapshot("tank/a@s").unwrap();
        assert_eq!(pool.all_props("tank/a@s").unwrap(), all);
    }

    /// An unset known property reads its default with source `default`,
    /// an unset user property reads `-` with source `-`, and an unset
    /// mountpoint is the filesystem's name under `/`.
    #[test]
    fn unset_properties_read_their_defaults() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.create_fs("tank/a/b").unwrap();
        let get = |fs: &str, p: &str| pool.get_prop(fs, p).unwrap();
        let pair = |v: &str, s: &str| (v.to_string(), s.to_string());
        assert_eq!(get("tank/a", "atime"), pair("on", "default"));
        assert_eq!(get("tank/a", "compression"), pair("off", "default"));
        assert_eq!(get("tank/a", "copies"), pair("1", "default"));
        assert_eq!(get("tank/a", "recordsize"), pair("131072", "default"));
        assert_eq!(get("tank/a", "org.test:unset"), pair("-", "-"));
        assert_eq!(get("tank", "mountpoint"), pair("/tank", "default"));
        assert_eq!(get("tank/a", "mountpoint"), pair("/tank/a", "default"));
        assert_eq!(get("tank/a/b", "mountpoint"), pair("/tank/a/b", "default"));
    }

    /// A mountpoint path set on a filesystem reads as set there, and below
    /// it as that path with the names from it down after it; a trailing
    /// slash, or `/` itself, gives no doubled slash.
    #[test]
    fn an_inherited_mountpoint_path_adds_the_names_below_it() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.create_fs("tank/a/b").unwrap();
        pool.create_fs("tank/a/b/c").unwrap();
        let pair = |v: &str, s: &str| (v.to_string(), s.to_string());
        for set in ["/mnt/x", "/mnt/x/"] {
            pool.set_prop("tank/a", "mountpoint", set).unwrap();
            let get = |fs: &str| pool.get_prop(fs, "mountpoint").unwrap();
            assert_eq!(get("tank/a"), pair("/mnt/x", "local"), "{set}");
            assert_eq!(
                get("tank/a/b"),
                pair("/mnt/x/b", "inherited from tank/a"),
                "{set}"
            );
            assert_eq!(
                get("tank/a/b/c"),
                pair("/mnt/x/b/c", "inherited from tank/a"),
                "{set}"
            );
            assert_eq!(get("tank"), pair("/tank", "default"), "{set}");
        }
        pool.set_prop("tank/a", "mountpoint", "/").unwrap();
        let get = |fs: &str| pool.get_prop(fs, "mountpoint").unwrap();
        assert_eq!(get("tank/a"), pair("/", "local"));
        assert_eq!(get("tank/a/b"), pair("/b", "inherited from tank/a"));
    }

    /// A mountpoint of `none` or `legacy` is inherited as it is, with no
    /// names after it.
    #[test]
    fn an_inherited_none_or_legacy_mountpoint_stays_as_set() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.create_fs("tank/a/b").unwrap();
        for set in ["none", "legacy"] {
            pool.set_prop("tank/a", "mountpoint", set).unwrap();
            let get = |fs: &str| pool.get_prop(fs, "mountpoint").unwrap();
            assert_eq!(get("tank/a"), (set.to_string(), "local".to_string()));
            assert_eq!(
                get("tank/a/b"),
                (set.to_string(), "inherited from tank/a".to_string())
            );
        }
    }

    /// Properties other than mountpoint are inherited unchanged, even a
    /// user property whose value looks like a path.
    #[test]
    fn other_inherited_properties_keep_their_value() {
        let mut pool = new_pool();
        pool.create_fs("tank/a").unwrap();
        pool.create_fs("tank/a/b").unwrap();
        pool.set_prop("tank/a", "org.test:path", "/srv").unwrap();
        pool.set_prop("tank/a", "compression", "lzjb").unwrap();
        let get = |fs: &str, p: &str| pool.get_prop(fs, p).unwrap();
        let pair = |v: &str, s: &str| (v.to_string(), s.to_string());
        assert_eq!(get("tank/a", "org.test:path"), pair("/srv", "local"));
        assert_eq!(
            get("tank/a/b", "org.test:path"),
            pair("/srv", "inherited from tank/a")
        );
        assert_eq!(
            get("tank/a/b", "compression"),
            pair("lzjb", "inherited from tank/a")
        );
    }
}
