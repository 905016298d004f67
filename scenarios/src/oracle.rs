//! The oracle: compares what a pool holds with what the model says it must.
//!
//! Comparison is object by object: shape (type, block size, bonus type and
//! length), bonus bytes, checksum and compression, every block's contents
//! (holes read as zeros) and the spill block; for snapshots also the guid
//! and creation time. A ZPL filesystem is also compared file by file: a
//! walk of it (`engine::zpl::walk`) must list what the model's namespace
//! holds, with every type, mode, size, link count, symlink target and
//! extended attribute; one whose content a sender made malformed must be
//! refused by a walk, by the check aimed at. A pool must also hold no
//! `%recv` and no INCONSISTENT dataset: a receive that failed must leave
//! nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

use engine::dsl::dataset::is_user_prop;
use engine::dsl::{DS_FLAG_INCONSISTENT, DatasetId};
use engine::error::{Errno, Error};
use engine::spa::Pool;
use engine::zio::Blkptr;
use engine::zio::compress::is_all_zeros;
use engine::zpl::{self, WalkOptions};

use crate::model::tree::{Listed, Tree};
use crate::model::{Dataset, Object, Objects, PoolModel, WalkRefusal};

/// How a pool differs from its model.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// The difference, as "expected ..., found ...".
    Differs(String),
    /// The pool could not be read (EIO, ECKSUM): damage was detected.
    Unreadable(String),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Differs(s) => f.write_str(s),
            Mismatch::Unreadable(s) => write!(f, "unreadable: {s}"),
        }
    }
}

fn unreadable(what: &str, e: Error) -> Mismatch {
    Mismatch::Unreadable(format!("{what}: {e}"))
}

/// Snapshots found to hold what a model says, so that comparing a pool
/// again reads only what may have changed. A snapshot never changes: one
/// read from the same block pointer, on media that changed since only by
/// the pool's own writes elsewhere (the device's read epoch, see
/// `engine::vdev::BlockDevice::read_epoch`), holds what it held, and if the
/// model's objects and namespace are the very ones it was found equal to,
/// it is equal still. Its guid and creation are compared every time.
#[derive(Default)]
pub struct Verified {
    snapshots: BTreeMap<String, Vec<Seen>>,
}

/// One comparison that found a snapshot equal to its model.
struct Seen {
    bp: Blkptr,
    epoch: u64,
    objects: Rc<Objects>,
    zpl: Option<Rc<Tree>>,
    malformed: Option<WalkRefusal>,
}

impl Seen {
    fn new(bp: Blkptr, epoch: u64, model: &Dataset) -> Seen {
        Seen {
            bp,
            epoch,
            objects: Rc::clone(&model.objects),
            zpl: model.zpl.clone(),
            malformed: model.malformed.clone(),
        }
    }

    fn answers(&self, bp: &Blkptr, epoch: u64, model: &Dataset) -> bool {
        let same_tree = match (&self.zpl, &model.zpl) {
            (None, None) => true,
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            _ => false,
        };
        self.bp == *bp
            && self.epoch == epoch
            && Rc::ptr_eq(&self.objects, &model.objects)
            && same_tree
            && self.malformed == model.malformed
    }
}

impl Verified {
    /// Comparisons kept per snapshot: a crash's candidate states differ
    /// mostly in the head filesystems, so a few cover them all.
    const PER_SNAPSHOT: usize = 4;

    fn knows(&self, name: &str, bp: &Blkptr, epoch: u64, model: &Dataset) -> bool {
        self.snapshots
            .get(name)
            .is_some_and(|seen| seen.iter().any(|s| s.answers(bp, epoch, model)))
    }

    fn learn(&mut self, name: &str, bp: Blkptr, epoch: u64, model: &Dataset) {
        let seen = self.snapshots.entry(name.to_string()).or_default();
        if seen.len() == Self::PER_SNAPSHOT {
            seen.remove(0);
        }
        seen.push(Seen::new(bp, epoch, model));
    }
}

/// Compares the whole pool with its model.
pub fn compare_pool(pool: &mut Pool, model: &PoolModel) -> Result<(), Mismatch> {
    compare_pool_with(pool, model, &mut Verified::default())
}

/// [`compare_pool`], skipping the snapshots `verified` vouches for and
/// adding those it finds equal.
pub fn compare_pool_with(
    pool: &mut Pool,
    model: &PoolModel,
    verified: &mut Verified,
) -> Result<(), Mismatch> {
    let list = pool.list();
    for info in &list {
        if info.name.contains('%') {
            return Err(Mismatch::Differs(format!(
                "expected no receive in progress, found {}",
                info.name
            )));
        }
        if info.flags & DS_FLAG_INCONSISTENT != 0 {
            return Err(Mismatch::Differs(format!(
                "expected no INCONSISTENT dataset, found {}",
                info.name
            )));
        }
    }
    let found: BTreeSet<&str> = list.iter().map(|i| i.name.as_str()).collect();
    let expected: BTreeSet<&str> = model.datasets.keys().map(String::as_str).collect();
    if found != expected {
        let missing: Vec<&&str> = expected.difference(&found).collect();
        let extra: Vec<&&str> = found.difference(&expected).collect();
        return Err(Mismatch::Differs(format!(
            "expected datasets {expected:?}, found {found:?} (missing {missing:?}, unexpected {extra:?})"
        )));
    }
    let mut unreadable = Ok(());
    for info in &list {
        keep_looking(
            compare_dataset_with(pool, &info.name, &model.datasets[&info.name], verified),
            &mut unreadable,
        )?;
    }
    unreadable
}

/// A difference ends a comparison; an unreadable part is remembered and the
/// comparison goes on, so that `Unreadable` means "all that could be read
/// matched" (after damage at rest, the rest must still be right).
fn keep_looking(
    result: Result<(), Mismatch>,
    unreadable: &mut Result<(), Mismatch>,
) -> Result<(), Mismatch> {
    match result {
        Err(m @ Mismatch::Unreadable(_)) => {
            if unreadable.is_ok() {
                *unreadable = Err(m);
            }
            Ok(())
        }
        other => other,
    }
}

/// Compares one dataset (by name) with its model.
pub fn compare_dataset(pool: &mut Pool, name: &str, model: &Dataset) -> Result<(), Mismatch> {
    compare_dataset_with(pool, name, model, &mut Verified::default())
}

fn compare_dataset_with(
    pool: &mut Pool,
    name: &str,
    model: &Dataset,
    verified: &mut Verified,
) -> Result<(), Mismatch> {
    let id = pool
        .lookup(name)
        .map_err(|e| Mismatch::Differs(format!("expected {name} to exist: {e}")))?;
    let info = pool.info(id);
    if info.is_snapshot && (info.guid, info.creation_time) != (model.guid, model.creation) {
        return Err(Mismatch::Differs(format!(
            "{name}: expected guid {:#x} created {}, found guid {:#x} created {}",
            model.guid, model.creation, info.guid, info.creation_time
        )));
    }
    if !info.is_snapshot {
        compare_props(pool, name, model)?;
        return compare_contents(pool, id, name, model);
    }
    let epoch = pool.read_epoch().filter(|_| !pool.is_suspended());
    if let Some(epoch) = epoch
        && verified.knows(name, &info.bp, epoch, model)
    {
        return Ok(());
    }
    compare_contents(pool, id, name, model)?;
    if let Some(epoch) = epoch {
        verified.learn(name, info.bp, epoch, model);
    }
    Ok(())
}

/// Compares a dataset's objects and files with its model.
fn compare_contents(
    pool: &mut Pool,
    id: DatasetId,
    name: &str,
    model: &Dataset,
) -> Result<(), Mismatch> {
    let mut dmu = pool.dmu(id).map_err(|e| unreadable(name, e))?;
    let objects: Vec<u64> = dmu.objects();
    let expected: Vec<u64> = model.objects.keys().copied().collect();
    if objects != expected {
        return Err(Mismatch::Differs(format!(
            "{name}: expected objects {expected:?}, found {objects:?}"
        )));
    }
    let mut unreadable = Ok(());
    for (&object, want) in model.objects.iter() {
        keep_looking(
            compare_object(&mut dmu, name, object, want),
            &mut unreadable,
        )?;
    }
    drop(dmu);
    // After damage the walk would only fail where the objects did.
    if let (Some(tree), Ok(())) = (&model.zpl, &unreadable) {
        keep_looking(compare_files(pool, id, name, tree), &mut unreadable)?;
    }
    if let (Some(refusal), Ok(())) = (&model.malformed, &unreadable) {
        keep_looking(compare_refusal(pool, id, name, refusal), &mut unreadable)?;
    }
    unreadable
}

/// A walk of a ZPL filesystem whose content was sent malformed: it must be
/// refused by the check the malformation is aimed at, naming what it found.
fn compare_refusal(
    pool: &mut Pool,
    id: DatasetId,
    name: &str,
    refusal: &WalkRefusal,
) -> Result<(), Mismatch> {
    let e = match zpl::walk_with(pool, id, &unhashed()) {
        Ok(files) => {
            return Err(Mismatch::Differs(format!(
                "{name}: expected a walk to be refused with {refusal}, found {} files",
                files.len()
            )));
        }
        Err(e) => e,
    };
    if below_the_zpl(&e) {
        return Err(unreadable(&format!("{name}: walking its files"), e));
    }
    let site = e.site();
    if e.errno() == refusal.errno
        && site.file.ends_with(refusal.file)
        && e.reason().contains(refusal.because)
        && e.reason().contains(&refusal.names)
    {
        return Ok(());
    }
    Err(Mismatch::Differs(format!(
        "{name}: expected a walk to be refused with {refusal}, found {e} at {}:{}",
        site.file, site.line
    )))
}

/// The oracle's walks hash no data: the objects compared before already
/// hold it.
fn unhashed() -> WalkOptions {
    WalkOptions {
        hash: false,
        ..WalkOptions::default()
    }
}

/// A read that failed below the ZPL (a device error, a checksum) is
/// damage; an error the walker or the ZAP reader decided is a malformed
/// filesystem.
fn below_the_zpl(e: &Error) -> bool {
    matches!(e.errno(), Errno::EIO | Errno::ECKSUM)
        && !e.site().file.contains("/zpl")
        && !e.site().file.contains("/zap")
}

/// The user properties set on a filesystem itself, locally or received,
/// as `zfs get` shows them.
fn compare_props(pool: &Pool, name: &str, model: &Dataset) -> Result<(), Mismatch> {
    let found: BTreeMap<String, (String, &'static str)> = pool
        .all_props(name)
        .map_err(|e| Mismatch::Differs(format!("{name}: properties: {e}")))?
        .into_iter()
        .filter(|(p, _, _)| is_user_prop(p))
        .filter_map(|(p, v, source)| match source.as_str() {
            "local" => Some((p, (v, "local"))),
            "received" => Some((p, (v, "received"))),
            _ => None,
        })
        .collect();
    let expected = model.own_props();
    if found != expected {
        return Err(Mismatch::Differs(format!(
            "{name}: expected user properties {expected:?}, found {found:?}"
        )));
    }
    Ok(())
}

/// A walk of a ZPL filesystem against the model's namespace. File data is
/// not hashed: the objects compared above already hold it.
pub fn compare_files(
    pool: &mut Pool,
    id: DatasetId,
    name: &str,
    tree: &Tree,
) -> Result<(), Mismatch> {
    let walked = match zpl::walk_with(pool, id, &unhashed()) {
        Ok(files) => files,
        Err(e) if below_the_zpl(&e) => {
            return Err(unreadable(&format!("{name}: walking its files"), e));
        }
        Err(e) => {
            return Err(Mismatch::Differs(format!(
                "{name}: expected its files to list, found {e}"
            )));
        }
    };
    let found: Vec<Listed> = walked
        .into_iter()
        .map(|f| Listed {
            path: f.path_lossy().into_owned(),
            kind: f.file_type.as_str(),
            mode: f.mode,
            size: f.size,
            nlink: f.nlink,
            object: f.object,
            target: f.target,
            xattrs: f
                .xattrs
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                .collect(),
        })
        .collect();
    let mut found = found;
    found.sort();
    let expected = tree.listing();
    if found == expected {
        return Ok(());
    }
    let differs = expected
        .iter()
        .zip(&found)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("first difference: expected {a:?}, found {b:?}"))
        .unwrap_or_default();
    Err(Mismatch::Differs(format!(
        "{name}: expected {} files, found {} ({differs})",
        expected.len(),
        found.len()
    )))
}

fn compare_object(
    dmu: &mut engine::dmu::Dmu<'_>,
    name: &str,
    object: u64,
    want: &Object,
) -> Result<(), Mismatch> {
    let at = format!("{name} object {object}");
    let info = dmu.object_info(object).map_err(|e| unreadable(&at, e))?;
    let found = (
        info.dn_type,
        info.datablksz,
        info.bonustype,
        info.bonuslen,
        info.checksum,
        info.compress,
    );
    let s = want.shape;
    let expected = (
        s.dn_type,
        s.blksz,
        s.bonustype,
        s.bonuslen,
        want.checksum,
        want.compress,
    );
    if found != expected {
        return Err(Mismatch::Differs(format!(
            "{at}: expected (type, blksz, bonustype, bonuslen, checksum, compress) {expected:?}, found {found:?}"
        )));
    }
    let bonus = dmu.bonus(object).map_err(|e| unreadable(&at, e))?;
    if bonus != want.bonus {
        return Err(Mismatch::Differs(format!(
            "{at}: bonus differs (expected {} bytes, found {})",
            want.bonus.len(),
            bonus.len()
        )));
    }
    let spill = dmu.spill(object).map_err(|e| unreadable(&at, e))?;
    // Holes read as zeros, spill blocks included: an all-zero spill block
    // is written as a hole, as any zero block is under compression.
    let zero = |s: Option<&[u8]>| s.is_none_or(is_all_zeros);
    let same = match (spill.as_deref(), want.spill.as_deref()) {
        (a, b) if zero(a) && zero(b) => true,
        (a, b) => a == b,
    };
    if !same {
        return Err(Mismatch::Differs(format!(
            "{at}: expected spill {:?} bytes, found {:?}",
            want.spill.as_ref().map(|s| s.len()),
            spill.as_ref().map(Vec::len)
        )));
    }
    let mut ids: BTreeSet<u64> = dmu
        .blocks(object)
        .map_err(|e| unreadable(&at, e))?
        .into_iter()
        .collect();
    ids.extend(want.blocks.keys());
    let blksz = u64::from(want.shape.blksz);
    // A block that cannot be read does not end the comparison: the blocks
    // after it must still be right.
    let mut unread = Ok(());
    for blkid in ids {
        // Compared where it is (a cached block, a dirty one): most blocks
        // match, and a copy of each would cost more than the comparison.
        let want_block = want.blocks.get(&blkid);
        let found = dmu.with_block(object, blkid, |data| {
            let same = match (data, want_block) {
                (Some(data), Some(block)) => data == &block[..],
                (Some(data), None) => is_all_zeros(data),
                // A hole reads as zeros of the block size.
                (None, Some(block)) => block.len() as u64 == blksz && is_all_zeros(block),
                (None, None) => true,
            };
            (!same).then(|| data.map_or_else(|| vec![0; blksz as usize], <[u8]>::to_vec))
        });
        let differs = match found {
            Ok(differs) => differs,
            Err(e) => {
                keep_looking(
                    Err(unreadable(&format!("{at} block {blkid}"), e)),
                    &mut unread,
                )?;
                continue;
            }
        };
        if let Some(data) = differs {
            let expected = want.block(blkid);
            let first = data.iter().zip(&expected).position(|(a, b)| a != b);
            return Err(Mismatch::Differs(format!(
                "{at} block {blkid}: contents differ (first at byte {first:?}; expected {}, found {})",
                describe(&expected),
                describe(&data)
            )));
        }
    }
    unread
}

fn describe(block: &[u8]) -> String {
    if is_all_zeros(block) {
        "zeros".to_string()
    } else {
        let head: Vec<String> = block.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}...", head.join(""))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use engine::context::{ManualClock, SplitMix64};
    use engine::error::Result;
    use engine::vdev::{BlockDevice, MemDevice, SharedDevice};

    use super::*;
    use crate::step::Step;

    /// A memory disk whose read epoch the test moves, as a simulated disk
    /// moves its own on damage.
    struct Epochs {
        dev: SharedDevice<MemDevice>,
        epoch: Rc<Cell<u64>>,
    }

    impl BlockDevice for Epochs {
        fn sector_size(&self) -> u64 {
            self.dev.sector_size()
        }
        fn size(&self) -> u64 {
            self.dev.size()
        }
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
            self.dev.read(offset, buf)
        }
        fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
            self.dev.write(offset, buf)
        }
        fn flush(&mut self) -> Result<()> {
            self.dev.flush()
        }
        fn read_epoch(&self) -> Option<u64> {
            Some(self.epoch.get())
        }
    }

    /// Pool `p` on `dev`, and its model, after `steps`.
    fn pool_after(dev: Box<dyn BlockDevice>, steps: &[&str]) -> (Pool, PoolModel) {
        let mut pool = Pool::create(
            dev,
            "p",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        let mut model = PoolModel::new("p");
        for line in steps {
            let step: Step = line.parse().unwrap();
            step.apply(&mut pool, &mut model).unwrap();
        }
        (pool, model)
    }

    #[test]
    fn a_verified_snapshot_is_compared_again_when_its_model_or_the_disk_changes() {
        let dev = SharedDevice::new(MemDevice::new(64 << 20, 512));
        let epoch = Rc::new(Cell::new(0));
        let device = Epochs {
            dev: dev.clone(),
            epoch: Rc::clone(&epoch),
        };
        let (mut pool, model) = pool_after(
            Box::new(device),
            &[
                "create p/a",
                "alloc p/a type=19 blksz=4096 bonustype=0 bonuslen=0",
                "write p/a obj=1 off=0 len=4096 fill=8",
                "snapshot p/a@s",
                "free p/a obj=1",
            ],
        );
        pool.txg_sync().unwrap();
        let mut verified = Verified::default();
        compare_pool_with(&mut pool, &model, &mut verified).unwrap();

        // The snapshot's block is the only copy of its bytes on the disk.
        let block = model.object("p/a@s", 1).unwrap().block(0);
        let at = {
            let bytes = dev.borrow_mut();
            let bytes = bytes.as_bytes();
            let found: Vec<usize> = (0..bytes.len() - block.len())
                .step_by(512)
                .filter(|&o| bytes[o..o + block.len()] == block[..])
                .collect();
            assert_eq!(found.len(), 1, "one copy of the block");
            found[0]
        };

        // Other objects than those found equal: compared again.
        let mut other = model.clone();
        let snap = other.datasets.get_mut("p/a@s").unwrap();
        Rc::make_mut(&mut snap.objects)
            .get_mut(&1)
            .unwrap()
            .write(0, &[1, 2, 3]);
        let m = compare_pool_with(&mut pool, &other, &mut verified).unwrap_err();
        assert!(m.to_string().contains("p/a@s object 1"), "{m}");

        // Rot the device does not own up to (the epoch stays) goes unseen:
        // this is what the epoch promises against.
        dev.borrow_mut().as_bytes_mut()[at] ^= 0xff;
        compare_pool_with(&mut pool, &model, &mut verified).unwrap();
        // Once the epoch moves, the snapshot is read again and the damage
        // found, by a fresh comparison and by one that verified it before.
        epoch.set(1);
        let m = compare_pool_with(&mut pool, &model, &mut verified).unwrap_err();
        assert!(matches!(m, Mismatch::Unreadable(_)), "{m}");
        let m = compare_pool(&mut pool, &model).unwrap_err();
        assert!(matches!(m, Mismatch::Unreadable(_)), "{m}");
    }

    #[test]
    fn every_block_is_compared_whether_held_or_a_hole_on_either_side() {
        let (mut pool, model) = pool_after(
            Box::new(MemDevice::new(64 << 20, 512)),
            &[
                "create p/a",
                "alloc p/a type=19 blksz=4096 bonustype=0 bonuslen=0",
                "write p/a obj=1 off=0 len=4096 fill=8",
                "write p/a obj=1 off=8192 len=4096 fill=1",
            ],
        );
        // Dirty blocks first, then as read back from the disk.
        for synced in [false, true] {
            if synced {
                pool.txg_sync().unwrap();
            }
            compare_pool(&mut pool, &model).unwrap();
            let object = |m: &mut PoolModel| {
                let fs = m.datasets.get_mut("p/a").unwrap();
                Rc::make_mut(&mut fs.objects).get_mut(&1).unwrap().clone()
            };
            let mut differs = |edit: &dyn Fn(&mut Object)| {
                let mut other = model.clone();
                let mut o = object(&mut other);
                edit(&mut o);
                let fs = other.datasets.get_mut("p/a").unwrap();
                Rc::make_mut(&mut fs.objects).insert(1, o);
                compare_pool(&mut pool, &other).unwrap_err().to_string()
            };
            // A block held on both sides, with other bytes.
            let m = differs(&|o| o.write(100, &[9]));
            assert!(
                m.contains("block 0: contents differ (first at byte Some(100)"),
                "{m}"
            );
            // A block the pool holds where the model has none.
            let m = differs(&|o| o.free_range(0, 4096));
            assert!(
                m.contains("block 0: contents differ (first at byte Some(0); expected zeros"),
                "{m}"
            );
            // A hole in the pool (block 1, never written) where the model holds bytes.
            let m = differs(&|o| o.write(4096 + 7, &[5]));
            assert!(
                m.contains("block 1: contents differ (first at byte Some(7); expected 0000"),
                "{m}"
            );
            assert!(m.contains("found zeros"), "{m}");
            // Zeros in the pool (fill=1 writes zeros: a dirty block, then a
            // hole once compressed away) where the model holds bytes.
            let m = differs(&|o| o.write(8192, &[4]));
            assert!(
                m.contains("block 2: contents differ (first at byte Some(0)"),
                "{m}"
            );
        }
    }
}
