//! The reference model: what every filesystem and snapshot must contain.
//!
//! It is deliberately simple (objects as maps of whole blocks) and knows
//! nothing of block pointers, txgs or streams, so that it can judge the
//! engine rather than repeat it. Values only the engine can choose (an
//! allocated object number, a snapshot's guid and creation time) are taken
//! from the engine when the step that makes them succeeds.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use engine::dmu::dnode::{nblkptr_for_bonus, spill_fits};
use engine::dsl::valid_component;
use engine::error::Errno;
use engine::zio::compress::is_all_zeros;

use crate::step::Shape;

pub mod tree;

use tree::Tree;

/// Largest bonus ZFS allows (`DN_MAX_BONUSLEN`).
pub const DN_MAX_BONUSLEN: usize = 320;

/// One object's logical state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub shape: Shape,
    pub bonus: Vec<u8>,
    pub checksum: u8,
    pub compress: u8,
    /// Whole blocks by block id; a missing block reads as zeros.
    pub blocks: BTreeMap<u64, Rc<[u8]>>,
    pub spill: Option<Rc<[u8]>>,
}

impl Object {
    pub fn new(shape: Shape) -> Object {
        Object {
            shape,
            bonus: vec![0; shape.bonuslen],
            checksum: 0,
            compress: 0,
            blocks: BTreeMap::new(),
            spill: None,
        }
    }

    /// Whether a spill block fits beside the bonus and block pointers.
    pub fn spill_fits(&self) -> bool {
        spill_fits(self.nblkptr(), self.shape.bonuslen)
    }

    pub fn nblkptr(&self) -> u8 {
        nblkptr_for_bonus(self.shape.bonustype, self.shape.bonuslen)
    }

    fn blksz(&self) -> u64 {
        u64::from(self.shape.blksz)
    }

    /// Whether the two read the same: shape, properties and bonus, blocks
    /// with holes as zeros, and a spill block with none as zeros.
    pub fn reads_same(&self, other: &Object) -> bool {
        let zero = is_all_zeros;
        let blocks_same = |a: &Object, b: &Object| {
            a.blocks.iter().all(|(id, block)| match b.blocks.get(id) {
                Some(other) => block == other,
                None => zero(block),
            })
        };
        let spill_same = match (&self.spill, &other.spill) {
            (Some(a), Some(b)) => a == b,
            (Some(s), None) | (None, Some(s)) => zero(s),
            (None, None) => true,
        };
        self.shape == other.shape
            && self.bonus == other.bonus
            && self.checksum == other.checksum
            && self.compress == other.compress
            && spill_same
            && blocks_same(self, other)
            && blocks_same(other, self)
    }

    /// What a receiver that had `old` in this object's place keeps of its
    /// spill block. A 2013 stream has no record for a spill block that is
    /// gone (or all zeros, hence a hole): only a SPILL record for one that
    /// exists. So an object received with no spill keeps the one it had,
    /// unless restoring the OBJECT record dropped it (`dmu_object_reclaim`
    /// to a shape with no room for the pointer). Later OpenZFS added stream
    /// flags for this (openzfs/zfs#8668); zsim speaks the 2013 format.
    pub fn keep_unsent_spill(&mut self, old: &Object) {
        let zero = |s: &Option<Rc<[u8]>>| s.as_deref().is_none_or(is_all_zeros);
        if !zero(&self.spill) || zero(&old.spill) {
            return;
        }
        if old.shape == self.shape || self.spill_fits() {
            self.spill.clone_from(&old.spill);
        }
    }

    /// A block as it reads: its bytes, or zeros.
    pub fn block(&self, blkid: u64) -> Vec<u8> {
        match self.blocks.get(&blkid) {
            Some(b) => b.to_vec(),
            None => vec![0; self.shape.blksz as usize],
        }
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let blksz = self.blksz();
        let end = offset + data.len() as u64;
        let mut at = offset;
        while at < end {
            let blkid = at / blksz;
            let within = (at % blksz) as usize;
            let n = (blksz - at % blksz).min(end - at) as usize;
            let mut block = self.block(blkid);
            let src = (at - offset) as usize;
            block[within..within + n].copy_from_slice(&data[src..src + n]);
            self.blocks.insert(blkid, block.into());
            at += n as u64;
        }
    }

    /// `dmu_free_range`: blocks wholly inside go, blocks partly inside are
    /// zeroed in the range (if they exist).
    pub fn free_range(&mut self, offset: u64, end: u64) {
        let blksz = self.blksz();
        let ids: Vec<u64> = self.blocks.keys().copied().collect();
        for blkid in ids {
            let start = blkid * blksz;
            let stop = start + blksz;
            if stop <= offset || start >= end {
                continue;
            }
            if offset <= start && end >= stop {
                self.blocks.remove(&blkid);
            } else {
                let mut block = self.block(blkid);
                let a = offset.max(start) - start;
                let b = end.min(stop) - start;
                block[a as usize..b as usize].fill(0);
                self.blocks.insert(blkid, block.into());
            }
        }
    }
}

pub type Objects = BTreeMap<u64, Object>;

/// Whether two sets of objects read the same ([`Object::reads_same`]).
pub fn reads_same(a: &Objects, b: &Objects) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ia, oa), (ib, ob))| ia == ib && oa.reads_same(ob))
}

/// A filesystem or a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Shared until written ([`Rc::make_mut`]): a snapshot and the states a
    /// crash may leave hold the same objects as the head they copy, and
    /// copying a model is then as cheap as its datasets.
    pub objects: Rc<Objects>,
    /// Snapshots: chosen by the engine when it took (or received) them.
    pub guid: u64,
    pub creation: u64,
    /// Filesystems: the snapshot a clone grew from.
    pub origin: Option<String>,
    /// Filesystems: changed since their latest snapshot (or, with none, since
    /// their origin): the engine's `modified_since_last_snapshot`.
    pub modified: bool,
    /// Snapshots: the filesystem changed between the snapshot before this one
    /// and this one. Destroying the latest snapshot hands this on to the
    /// head, as ZFS compares the head with whichever snapshot is now latest.
    pub changed: bool,
    /// Snapshots: order of creation within the pool.
    pub seq: u64,
    /// A ZPL filesystem's namespace, if the dataset holds one.
    pub zpl: Option<Rc<Tree>>,
    /// Filesystems: the user properties set on it (`zfs set`), and those a
    /// replication stream gave it (received values; a local one wins).
    pub props: BTreeMap<String, String>,
    pub received: BTreeMap<String, String>,
    /// A received filesystem whose ZPL content its sender made malformed
    /// (its `zpl` is then `None`): how a walk of it must be refused, when
    /// the walk must meet what is malformed.
    pub malformed: Option<WalkRefusal>,
}

/// How a walk of a malformed ZPL filesystem must be refused: with this
/// errno, by a check in this engine file, in an error whose reason holds
/// `because` and names what is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkRefusal {
    pub errno: Errno,
    pub file: &'static str,
    pub because: &'static str,
    pub names: String,
}

impl fmt::Display for WalkRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} ({:?}, naming {:?})",
            self.errno, self.file, self.because, self.names
        )
    }
}

impl Dataset {
    fn fs(objects: Rc<Objects>, origin: Option<String>) -> Dataset {
        Dataset {
            objects,
            guid: 0,
            creation: 0,
            origin,
            modified: false,
            changed: false,
            seq: 0,
            zpl: None,
            props: BTreeMap::new(),
            received: BTreeMap::new(),
            malformed: None,
        }
    }

    /// The user properties set on the filesystem itself as `zfs get`
    /// shows them: each value with its source, `local` or `received`.
    pub fn own_props(&self) -> BTreeMap<String, (String, &'static str)> {
        let mut out: BTreeMap<String, (String, &'static str)> = self
            .received
            .iter()
            .map(|(k, v)| (k.clone(), (v.clone(), "received")))
            .collect();
        for (k, v) in &self.props {
            out.insert(k.clone(), (v.clone(), "local"));
        }
        out
    }

    /// What `zfs send -R` sends of them: each one's local value, or else
    /// its received one.
    pub fn sent_props(&self) -> BTreeMap<String, String> {
        self.own_props()
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect()
    }
}

/// What a pool must hold: every dataset by full name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolModel {
    pub datasets: BTreeMap<String, Dataset>,
    next_seq: u64,
}

/// What the oracle expects of a receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// It must succeed and match the source snapshot.
    Match,
    /// It must be refused with one of these errnos.
    Refuse(Vec<Errno>),
    /// Either: the model cannot tell (the seed's guid search walks back over
    /// snapshots with no changes between them, which the model does not
    /// track to the txg).
    Either(Vec<Errno>),
}

impl Expect {
    /// This, or else a refusal with `errno`.
    fn or_refused(self, errno: Errno) -> Expect {
        match self {
            Expect::Match => Expect::Either(vec![errno]),
            Expect::Refuse(mut v) => {
                v.push(errno);
                Expect::Refuse(v)
            }
            Expect::Either(mut v) => {
                v.push(errno);
                Expect::Either(v)
            }
        }
    }
}

impl PoolModel {
    pub fn new(pool: &str) -> PoolModel {
        let mut m = PoolModel::default();
        m.datasets
            .insert(pool.to_string(), Dataset::fs(Rc::default(), None));
        m
    }

    /// When a power loss leaves a pool in a state that `other` would read
    /// the same as (the same datasets, guids and objects), the two cannot be
    /// told apart by reading: a write that left the contents as they were
    /// may or may not be durable. The engine's notion of "modified" can see
    /// it, so this takes on `other`'s changes too; an unchanged head then
    /// leaves either answer open (see [`PoolModel::expect_receive`]).
    pub fn merge_unseen_changes(&mut self, other: &PoolModel) {
        let same = self.datasets.len() == other.datasets.len()
            && self
                .datasets
                .iter()
                .zip(&other.datasets)
                .all(|((na, a), (nb, b))| {
                    na == nb && a.guid == b.guid && reads_same(&a.objects, &b.objects)
                });
        if !same {
            return;
        }
        for (ds, theirs) in self.datasets.values_mut().zip(other.datasets.values()) {
            ds.modified |= theirs.modified;
            ds.changed |= theirs.changed;
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.datasets.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&Dataset> {
        self.datasets.get(name)
    }

    pub fn filesystems(&self) -> impl Iterator<Item = &str> {
        self.datasets
            .keys()
            .filter(|n| !n.contains('@'))
            .map(String::as_str)
    }

    /// A filesystem's snapshots, oldest first.
    pub fn snapshots_of(&self, fs: &str) -> Vec<(&str, &Dataset)> {
        let prefix = format!("{fs}@");
        let mut snaps: Vec<(&str, &Dataset)> = self
            .datasets
            .iter()
            .filter(|(n, _)| n.starts_with(&prefix))
            .map(|(n, d)| (n.as_str(), d))
            .collect();
        snaps.sort_by_key(|(_, d)| d.seq);
        snaps
    }

    pub fn latest_snapshot(&self, fs: &str) -> Option<(&str, &Dataset)> {
        self.snapshots_of(fs).pop()
    }

    /// Clones whose origin is `snap`.
    pub fn clones_of(&self, snap: &str) -> Vec<&str> {
        self.datasets
            .iter()
            .filter(|(_, d)| d.origin.as_deref() == Some(snap))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// A filesystem and every filesystem below it, by name (as the
    /// engine lists them: parents first).
    pub fn descendants(&self, fs: &str) -> Vec<&str> {
        let below = format!("{fs}/");
        self.filesystems()
            .filter(|n| *n == fs || n.starts_with(&below))
            .collect()
    }

    /// The snapshots `zfs snapshot [-r] snap` takes: `snap`, and with
    /// `recursive` the one of the same name of every filesystem below
    /// (also what `zfs send -R snap` needs each of them to have).
    pub fn snapshots_taken(&self, snap: &str, recursive: bool) -> Vec<String> {
        let (fs, name) = snap.split_once('@').unwrap_or((snap, ""));
        if !recursive {
            return vec![snap.to_string()];
        }
        self.descendants(fs)
            .into_iter()
            .map(|f| format!("{f}@{name}"))
            .collect()
    }

    /// Direct children of a filesystem.
    pub fn children_of(&self, fs: &str) -> Vec<&str> {
        let prefix = format!("{fs}/");
        self.filesystems()
            .filter(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('/'))
            })
            .collect()
    }

    pub fn find_guid(&self, guid: u64) -> Option<&str> {
        self.datasets
            .iter()
            .find(|(n, d)| n.contains('@') && d.guid == guid)
            .map(|(n, _)| n.as_str())
    }

    /// The snapshot with `guid` the engine's listing comes to first (its
    /// order puts `fs@snap` before `fs/child`), as a receive looks up a
    /// replication stream's clone origin.
    pub fn find_guid_listed(&self, guid: u64) -> Option<&str> {
        self.datasets
            .iter()
            .filter(|(n, d)| n.contains('@') && d.guid == guid)
            .map(|(n, _)| n.as_str())
            .min_by_key(|n| n.replace('@', "\u{1}"))
    }

    pub fn objects_mut(&mut self, fs: &str) -> &mut Objects {
        let ds = self.datasets.get_mut(fs).expect("checked by the caller");
        ds.modified = true;
        Rc::make_mut(&mut ds.objects)
    }

    pub fn object(&self, fs: &str, object: u64) -> Option<&Object> {
        self.datasets.get(fs)?.objects.get(&object)
    }

    /// The ZPL namespace of a filesystem that holds one.
    pub fn tree(&self, fs: &str) -> Option<&Tree> {
        self.datasets.get(fs)?.zpl.as_deref()
    }

    /// Whether only ZPL steps may change `object` of `fs`.
    pub fn zpl_owns(&self, fs: &str, object: u64) -> bool {
        self.tree(fs).is_some_and(|t| t.owns(object))
    }

    /// Whether `object` of `fs` is a ZPL regular file, whose writes keep
    /// its znode's size.
    pub fn zpl_file(&self, fs: &str, object: u64) -> bool {
        self.tree(fs).is_some_and(|t| t.is_file(object))
    }

    pub fn create(&mut self, fs: &str) {
        self.datasets
            .insert(fs.to_string(), Dataset::fs(Rc::default(), None));
    }

    pub fn alloc(&mut self, fs: &str, object: u64, shape: Shape) {
        self.objects_mut(fs).insert(object, Object::new(shape));
    }

    /// `dmu_object_reclaim`, as the seed does it: nothing when nothing
    /// changes; the contents go when the block size changes or block
    /// pointers are lost to a longer bonus; the bonus starts over as
    /// zeros; a spill pointer goes when the new bonus leaves it no room.
    pub fn reclaim(&mut self, fs: &str, object: u64, shape: Shape) {
        let Some(obj) = self.object(fs, object) else {
            return;
        };
        if obj.shape == shape {
            return;
        }
        let obj = self.objects_mut(fs).get_mut(&object).expect("exists");
        let new_nblkptr = nblkptr_for_bonus(shape.bonustype, shape.bonuslen);
        if obj.nblkptr() > new_nblkptr || obj.shape.blksz != shape.blksz {
            obj.blocks.clear();
        }
        obj.shape = shape;
        obj.bonus = vec![0; shape.bonuslen];
        if !spill_fits(new_nblkptr, shape.bonuslen) {
            obj.spill = None;
        }
    }

    pub fn snapshot(&mut self, snap: &str, guid: u64, creation: u64) {
        let (fs, _) = snap.split_once('@').expect("a snapshot name");
        let head = self.datasets.get_mut(fs).expect("checked by the caller");
        let changed = std::mem::take(&mut head.modified);
        let objects = head.objects.clone();
        let zpl = head.zpl.clone();
        self.next_seq += 1;
        self.datasets.insert(
            snap.to_string(),
            Dataset {
                objects,
                guid,
                creation,
                origin: None,
                modified: false,
                changed,
                seq: self.next_seq,
                zpl,
                props: BTreeMap::new(),
                received: BTreeMap::new(),
                malformed: None,
            },
        );
    }

    /// `zfs set PROP=VALUE FS` of a user property.
    pub fn set_prop(&mut self, fs: &str, prop: &str, value: &str) {
        if let Some(d) = self.datasets.get_mut(fs) {
            d.props.insert(prop.to_string(), value.to_string());
        }
    }

    /// A replication substream's properties, set on `fs` as received
    /// values (replacing those received before).
    pub fn set_received(&mut self, fs: &str, values: &BTreeMap<String, String>) {
        if let Some(d) = self.datasets.get_mut(fs) {
            d.received.clone_from(values);
        }
    }

    pub fn clone_fs(&mut self, origin: &str, fs: &str) {
        let objects = self.datasets[origin].objects.clone();
        let zpl = self.datasets[origin].zpl.clone();
        self.datasets.insert(
            fs.to_string(),
            Dataset {
                zpl,
                ..Dataset::fs(objects, Some(origin.to_string()))
            },
        );
    }

    pub fn rollback(&mut self, fs: &str) {
        if let Some((_, snap)) = self.latest_snapshot(fs) {
            let objects = snap.objects.clone();
            let zpl = snap.zpl.clone();
            let head = self.datasets.get_mut(fs).expect("exists");
            head.objects = objects;
            head.zpl = zpl;
            head.modified = false;
        }
    }

    pub fn destroy(&mut self, name: &str) {
        let Some(gone) = self.datasets.remove(name) else {
            return;
        };
        let Some((fs, _)) = name.split_once('@') else {
            return;
        };
        if !gone.changed {
            return;
        }
        // What changed before the destroyed snapshot now lies between its
        // neighbours: the next snapshot, or the head.
        let next = self
            .snapshots_of(fs)
            .into_iter()
            .find(|(_, s)| s.seq > gone.seq)
            .map(|(n, _)| n.to_string());
        let heir = next.as_deref().unwrap_or(fs);
        if let Some(ds) = self.datasets.get_mut(heir) {
            if next.is_some() {
                ds.changed = true;
            } else {
                ds.modified = true;
            }
        }
    }

    /// Whether a stream from `from` (a snapshot of the same filesystem or
    /// its origin; none for a full stream) to `to` carries any change:
    /// whether any snapshot after `from` up to `to` changed its filesystem.
    pub fn changed_since(&self, from: Option<&str>, to: &str) -> bool {
        let Some(from) = from else {
            return true;
        };
        let Some((fs, _)) = to.split_once('@') else {
            return true;
        };
        let Some(to) = self.get(to) else {
            return true;
        };
        let after = match from.split_once('@') {
            Some((from_fs, _)) if from_fs == fs => self.get(from).map_or(0, |f| f.seq),
            _ => 0,
        };
        self.snapshots_of(fs)
            .iter()
            .any(|(_, s)| s.seq > after && s.seq <= to.seq && s.changed)
    }

    /// What receiving `snap` (a snapshot of another pool's model) into
    /// `target` must do, by the seed's `dmu_recv_begin` checks in order.
    pub fn expect_receive(
        &self,
        source: &Dataset,
        from_guid: Option<u64>,
        target: &str,
        snapname: &str,
        force: bool,
        origin: Option<&str>,
    ) -> Expect {
        let _ = source;
        // `zfs_ioc_recv` checks the snapshot's whole name first.
        if target.len() + 1 + snapname.len() >= engine::dsl::MAXNAMELEN {
            return Expect::Refuse(vec![Errno::EINVAL]);
        }
        let exists = self.exists(target);
        // A new filesystem's name is checked last of all, after its pool:
        // a name without one is refused as a pool's root.
        let last = target.rsplit('/').next().unwrap_or_default();
        let named = if exists || (target.contains('/') && valid_component(last)) {
            Expect::Match
        } else {
            Expect::Refuse(vec![Errno::EINVAL])
        };
        if let Some(origin) = origin {
            // A clone stream makes a new filesystem, under a pool: the
            // target's name comes before the origin.
            if exists || !target.contains('/') {
                return Expect::Refuse(vec![Errno::EINVAL]);
            }
            return match self.get(origin) {
                None => Expect::Refuse(vec![Errno::ENOENT]),
                Some(_) if !origin.contains('@') => Expect::Refuse(vec![Errno::EINVAL]),
                Some(o) if Some(o.guid) != from_guid => Expect::Refuse(vec![Errno::ENODEV]),
                Some(_) => named,
            };
        }
        let Some(head) = self.get(target) else {
            return match from_guid {
                Some(_) => Expect::Refuse(vec![Errno::ENOENT]),
                None => named,
            };
        };
        let snaps = self.snapshots_of(target);
        if from_guid.is_none() {
            // libzfs refuses a full stream onto an existing filesystem
            // without -F, or with snapshots.
            if !force || !snaps.is_empty() {
                return Expect::Refuse(vec![Errno::EEXIST]);
            }
            // The seed: a full stream only onto a filesystem whose latest
            // snapshot is $ORIGIN, which a clone's origin is not.
            if head.origin.is_some() {
                return Expect::Refuse(vec![Errno::ENODEV]);
            }
            return Expect::Match;
        }
        let rest = self.expect_incremental(from_guid, target, snapname);
        // The engine compares the head with its latest snapshot, or with its
        // origin if it has none; with neither, nothing counts as modified.
        let prev = match snaps.last() {
            Some((_, latest)) => Some(*latest),
            None => head.origin.as_deref().and_then(|o| self.get(o)),
        };
        match prev {
            Some(_) if force || !head.modified => rest,
            // Written since, yet reading the same: ZFS sees a change only if
            // a rewritten block is still there (a dnode block whose objects
            // were all freed again becomes a hole, as it was), which depends
            // on block layout the model does not keep. And after a power
            // loss, a lost write of zeros leaves no trace the model can see.
            Some(prev) if reads_same(&prev.objects, &head.objects) => {
                rest.or_refused(Errno::ETXTBSY)
            }
            Some(_) => Expect::Refuse(vec![Errno::ETXTBSY]),
            None => rest,
        }
    }

    /// The checks of an incremental receive after the one for changes.
    fn expect_incremental(&self, from_guid: Option<u64>, target: &str, snapname: &str) -> Expect {
        if self.exists(&format!("{target}@{snapname}")) {
            return Expect::Refuse(vec![Errno::EEXIST]);
        }
        let chain = self.ancestry(target);
        match chain.first() {
            None => Expect::Refuse(vec![Errno::ENODEV]),
            Some(latest) if Some(latest.guid) == from_guid => Expect::Match,
            Some(_) if chain.iter().any(|s| Some(s.guid) == from_guid) => {
                Expect::Either(vec![Errno::ENODEV])
            }
            Some(_) => Expect::Refuse(vec![Errno::ENODEV]),
        }
    }

    /// The snapshots an incremental receive's walk back may visit, newest
    /// first: the filesystem's own, then (for a clone) its origin and the
    /// origin's earlier snapshots, and so on, as `ds_prev_snap_obj` links
    /// them in the seed's `recv_begin_check_existing_impl`.
    fn ancestry(&self, fs: &str) -> Vec<&Dataset> {
        let mut chain = Vec::new();
        let mut fs = fs.to_string();
        let mut upto = u64::MAX;
        for _ in 0..self.datasets.len() + 1 {
            let own = self.snapshots_of(&fs);
            chain.extend(
                own.iter()
                    .rev()
                    .filter(|(_, d)| d.seq <= upto)
                    .map(|(_, d)| *d),
            );
            let Some(origin) = self.get(&fs).and_then(|h| h.origin.clone()) else {
                break;
            };
            let Some(o) = self.get(&origin) else {
                break;
            };
            upto = o.seq;
            fs = origin.split('@').next().unwrap_or_default().to_string();
        }
        chain
    }

    /// A receive that succeeded: `target@snapname` now holds `source`.
    /// `changed`: the stream carried changes (`changed_since` on the
    /// sending side), so the target changed since its previous snapshot.
    pub fn receive(
        &mut self,
        source: &Dataset,
        changed: bool,
        target: &str,
        snapname: &str,
        origin: Option<&str>,
    ) {
        let mut objects = source.objects.clone();
        let shared = Rc::make_mut(&mut objects);
        // An incremental (or clone) receive starts from the latest snapshot
        // (or the origin), whose spill blocks may outlive the stream.
        let base = match origin {
            Some(o) => self.get(o),
            None => self
                .latest_snapshot(target)
                .map(|(_, d)| d)
                .or_else(|| self.get(self.get(target)?.origin.as_deref()?)),
        };
        if let Some(base) = base {
            for (id, obj) in shared.iter_mut() {
                if let Some(old) = base.objects.get(id) {
                    obj.keep_unsent_spill(old);
                }
            }
        }
        match self.datasets.get_mut(target) {
            Some(head) => {
                head.objects = objects.clone();
                head.zpl.clone_from(&source.zpl);
                head.malformed = None;
                head.modified = false;
            }
            None => {
                self.datasets.insert(
                    target.to_string(),
                    Dataset {
                        zpl: source.zpl.clone(),
                        ..Dataset::fs(objects.clone(), origin.map(str::to_string))
                    },
                );
            }
        }
        self.next_seq += 1;
        self.datasets.insert(
            format!("{target}@{snapname}"),
            Dataset {
                objects,
                guid: source.guid,
                creation: source.creation,
                origin: None,
                modified: false,
                changed,
                seq: self.next_seq,
                zpl: source.zpl.clone(),
                props: BTreeMap::new(),
                received: BTreeMap::new(),
                malformed: None,
            },
        );
    }

    /// What a receive of a stream with one object rewritten leaves in the
    /// datasets `names` (the received snapshot and its filesystem): `edit`
    /// applied to that object, and instead of a namespace, the refusal a
    /// walk must meet (`None`: the walk need not meet the object).
    pub fn malform(
        &mut self,
        names: &[String],
        object: u64,
        edit: impl Fn(&mut Object),
        refusal: Option<WalkRefusal>,
    ) {
        for name in names {
            if let Some(d) = self.datasets.get_mut(name) {
                if let Some(o) = Rc::make_mut(&mut d.objects).get_mut(&object) {
                    edit(o);
                }
                d.zpl = None;
                d.malformed.clone_from(&refusal);
            }
        }
    }
}

/// The bytes a `fill` seed stands for. Its low two bits choose how
/// compressible they are: random, all zeros, a short repeated pattern, or
/// mostly zeros.
pub fn fill_bytes(fill: u64, len: usize) -> Vec<u8> {
    let mut state = fill.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    match fill & 3 {
        0 => (0..len).map(|_| next() as u8).collect(),
        1 => vec![0; len],
        2 => {
            let pattern: Vec<u8> = (0..16).map(|_| next() as u8).collect();
            (0..len).map(|i| pattern[i % 16]).collect()
        }
        _ => (0..len)
            .map(|_| {
                let r = next();
                if r % 16 == 0 { (r >> 8) as u8 } else { 0 }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(blksz: u32) -> Shape {
        Shape {
            dn_type: 19,
            blksz,
            bonustype: 0,
            bonuslen: 0,
        }
    }

    #[test]
    fn writes_and_frees_work_on_whole_and_partial_blocks() {
        let mut o = Object::new(shape(512));
        o.write(100, &[1; 1000]);
        assert_eq!(o.blocks.len(), 3);
        assert_eq!(o.block(0)[99..101], [0, 1]);
        o.free_range(512, 1024);
        assert_eq!(o.blocks.len(), 2);
        o.free_range(0, 200);
        assert_eq!(o.block(0)[..200], [0; 200]);
        assert_eq!(o.block(0)[200], 1);
        assert_eq!(o.block(7), vec![0; 512]);
    }

    #[test]
    fn reclaim_frees_contents_only_when_the_shape_demands() {
        let mut m = PoolModel::new("p");
        m.create("p/a");
        m.alloc("p/a", 1, shape(1024));
        m.objects_mut("p/a").get_mut(&1).unwrap().write(0, &[5; 10]);
        m.reclaim(
            "p/a",
            1,
            Shape {
                dn_type: 26,
                ..shape(1024)
            },
        );
        assert_eq!(m.object("p/a", 1).unwrap().blocks.len(), 1, "type only");
        m.reclaim(
            "p/a",
            1,
            Shape {
                dn_type: 26,
                ..shape(2048)
            },
        );
        assert!(
            m.object("p/a", 1).unwrap().blocks.is_empty(),
            "new block size"
        );
    }

    #[test]
    fn receive_expectations_follow_the_seed() {
        let mut m = PoolModel::new("d");
        let src = Dataset {
            guid: 42,
            ..Dataset::fs(Rc::default(), None)
        };
        assert_eq!(
            m.expect_receive(&src, None, "d/r", "s1", false, None),
            Expect::Match
        );
        assert_eq!(
            m.expect_receive(&src, Some(1), "d/r", "s1", false, None),
            Expect::Refuse(vec![Errno::ENOENT])
        );
        // With `@s1`, 256 bytes: one too many.
        let long = format!("d/{}", "n".repeat(251));
        assert_eq!(
            m.expect_receive(&src, Some(1), &long, "s1", false, None),
            Expect::Refuse(vec![Errno::EINVAL])
        );
        assert_eq!(
            m.expect_receive(&src, None, &long[..long.len() - 1], "s1", false, None),
            Expect::Match
        );
        m.receive(&src, true, "d/r", "s1", None);
        assert_eq!(m.get("d/r@s1").unwrap().guid, 42);
        assert_eq!(
            m.expect_receive(&src, None, "d/r", "s2", true, None),
            Expect::Refuse(vec![Errno::EEXIST])
        );
        assert_eq!(
            m.expect_receive(&src, Some(42), "d/r", "s2", false, None),
            Expect::Match
        );
        // Written, but reading as before: ZFS may or may not see a change.
        m.objects_mut("d/r");
        assert_eq!(
            m.expect_receive(&src, Some(42), "d/r", "s2", false, None),
            Expect::Either(vec![Errno::ETXTBSY])
        );
        m.alloc("d/r", 1, shape(512));
        assert_eq!(
            m.expect_receive(&src, Some(42), "d/r", "s2", false, None),
            Expect::Refuse(vec![Errno::ETXTBSY])
        );
        assert_eq!(
            m.expect_receive(&src, Some(42), "d/r", "s2", true, None),
            Expect::Match
        );
        assert_eq!(
            m.expect_receive(&src, Some(7), "d/r", "s2", true, None),
            Expect::Refuse(vec![Errno::ENODEV])
        );
    }

    #[test]
    fn destroying_the_latest_snapshot_hands_its_changes_to_the_head() {
        let mut m = PoolModel::new("p");
        m.create("p/a");
        m.snapshot("p/a@s1", 1, 0);
        m.alloc("p/a", 1, shape(512));
        m.snapshot("p/a@s2", 2, 0);
        m.snapshot("p/a@s3", 3, 0);
        assert!(!m.get("p/a").unwrap().modified);
        assert!(m.get("p/a@s2").unwrap().changed);
        assert!(!m.get("p/a@s3").unwrap().changed);
        assert!(m.changed_since(Some("p/a@s1"), "p/a@s3"));
        assert!(!m.changed_since(Some("p/a@s2"), "p/a@s3"));
        // s2's change now lies between s1 and s3.
        m.destroy("p/a@s2");
        assert!(m.get("p/a@s3").unwrap().changed);
        assert!(!m.get("p/a").unwrap().modified);
        // And between s1 and the head.
        m.destroy("p/a@s3");
        assert!(m.get("p/a").unwrap().modified);
        let src = Dataset {
            guid: 9,
            ..Dataset::fs(Rc::default(), None)
        };
        assert_eq!(
            m.expect_receive(&src, Some(1), "p/a", "s4", false, None),
            Expect::Refuse(vec![Errno::ETXTBSY])
        );
        // With no snapshot left there is nothing to be modified against.
        m.destroy("p/a@s1");
        assert_eq!(
            m.expect_receive(&src, Some(1), "p/a", "s4", false, None),
            Expect::Refuse(vec![Errno::ENODEV])
        );
    }

    #[test]
    fn fills_are_deterministic_and_vary_in_kind() {
        assert_eq!(fill_bytes(8, 64), fill_bytes(8, 64));
        assert_eq!(fill_bytes(1, 64), vec![0; 64]);
        assert_ne!(fill_bytes(0, 64), fill_bytes(4, 64));
    }
}
