//! `pool_image`: a pool whose blocks a fuzzer changed, read by everything
//! that reads pools (import, the check, the ZPL walk, every object's data
//! and spill, a send of every snapshot). The blocks' checksums are not
//! checked ([`Pool::import_unverified`]), so the changed bytes reach the
//! parsers behind them: dnodes, indirect blocks, ZAPs, znodes, the DSL,
//! compressed blocks. Then it writes: a fixed list of ZPL operations on
//! every filesystem whose master node reads (on the root and the
//! template's directories, files and extended attributes), one txg sync,
//! an incremental receive that reclaims a three-level file, and the walk
//! again, so that the changed bytes also reach what only writes parse (a
//! ZAP added to or removed from, a znode changed, a leaf's free list, the
//! delete queue, a reclaim's free of the old tree) and the sync of what
//! the writes freed.
//! What must hold: no panic, no hang, no allocation beyond a block's size,
//! and an unchanged image reads clean and gives every write what it is
//! meant to.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;

use crate::context::{ManualClock, SplitMix64};
use crate::error::{Errno, Result, fail};
use crate::spa::Pool;
use crate::vdev::{BlockDevice, CowDevice};
use crate::zio::Blkptr;
use crate::zpl::{self, Stamp, ZfsTime, vnops};

/// Changes to the template pool's blocks, and which template.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct ImageInput {
    /// The template with compressed metadata and data (else all stored
    /// plain, so changes reach the structures directly).
    pub compressed: bool,
    pub patches: Vec<Patch>,
}

/// Four bytes flipped in one block of the template.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct Patch {
    /// Which block (modulo the template's block count).
    pub block: u16,
    /// Where in it (modulo its size on disk).
    pub at: u16,
    pub xor: u32,
}

const IMAGE_BYTES: usize = 8 << 20;
/// Device reads one input may take: a changed block pointer can make a
/// tree that shares one block a thousand times per level, and reading it
/// all would take forever; past this the device fails every read (EIO).
const READ_BUDGET: u64 = 40_000;
/// The most bytes of one object read back.
const READ_MAX: u64 = 256 << 10;
/// The ZPL walks: names, attributes and extended attributes; file data is
/// read object by object instead.
const WALK: zpl::WalkOptions = zpl::WalkOptions {
    hash: false,
    xattrs: true,
    max_hash_bytes: 0,
};
/// Device reads the write phase may take (its own budget, so that a read
/// phase that spent all of its budget still leaves the writes something).
const WRITE_PHASE_READ_BUDGET: u64 = 20_000;
/// Device writes one input may make: the write phase's operations and its
/// one txg sync write a few hundred blocks; past this every write fails.
const WRITE_BUDGET: u64 = 5_000;

/// A template: its image and every block on it (offset, size on disk).
struct Template {
    image: Rc<[u8]>,
    blocks: Vec<(u64, u64)>,
    /// An incremental stream from `fz/z@b` that reclaims `sparse` with
    /// another block size.
    reclaim: Vec<u8>,
}

thread_local! {
    static TEMPLATES: std::cell::RefCell<[Option<Rc<Template>>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

fn template(compressed: bool) -> Rc<Template> {
    TEMPLATES.with(|t| {
        t.borrow_mut()[compressed as usize]
            .get_or_insert_with(|| Rc::new(build(compressed).expect("the template pool")))
            .clone()
    })
}

fn stamp(secs: u64) -> Stamp {
    Stamp {
        now: ZfsTime { secs, nsecs: 0 },
        txg: 5,
    }
}

/// The name of the template's `i`-th entry of the fat ZAP directory `fat`.
fn fat_entry(i: u32) -> Vec<u8> {
    let mut name = format!("fat/entry-{i}-").into_bytes();
    name.resize(90, b'n');
    name
}

/// A pool with what the parsers parse: a ZPL filesystem (micro and fat ZAP
/// directories, files small and sparse over three levels, symlinks, a hard
/// link, extended attributes), its snapshots and a clone.
fn build(compressed: bool) -> Result<Template> {
    let base: Rc<[u8]> = vec![0u8; IMAGE_BYTES].into();
    // One copy of every block, so that the corpus's patches (by block
    // index) keep meaning the blocks they were found on.
    let mut pool = Pool::create_with(
        Box::new(CowDevice::new(base, 512)),
        "fz",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(3)),
        |zio| zio.max_replication = 1,
    )?;
    pool.zio_mut().mdcomp_disable = !compressed;
    let id = pool.create_fs("fz/z")?;
    if compressed {
        pool.set_prop("fz/z", "compression", "lzjb")?;
    }
    let sparse;
    {
        let mut dmu = pool.dmu(id)?;
        zpl::create_fs(&mut dmu, stamp(100).now, 5)?;
        let s = stamp(200);
        vnops::mkdir(&mut dmu, s, b"a", 0o755)?;
        let f = vnops::create(&mut dmu, s, b"a/f", 0o644, 4096)?;
        vnops::write(&mut dmu, s, f, 0, &[b'x'; 9000])?;
        sparse = vnops::create(&mut dmu, s, b"sparse", 0o644, 512)?;
        vnops::write(&mut dmu, s, sparse, 0, b"head")?;
        vnops::write(&mut dmu, s, sparse, 1 << 21, b"far")?;
        vnops::symlink(&mut dmu, s, b"a/up", b"../sparse")?;
        vnops::symlink(&mut dmu, s, b"long", &[b'l'; 300])?;
        vnops::link(&mut dmu, s, b"hard", b"a/f")?;
        vnops::set_xattr(&mut dmu, s, b"a/f", b"user.k", Some(b"v"))?;
        vnops::set_xattr(&mut dmu, s, b"a", b"user.big", Some(&[3; 3000]))?;
        vnops::mkdir(&mut dmu, s, b"fat", 0o755)?;
        for i in 0..40 {
            vnops::create(&mut dmu, s, &fat_entry(i), 0o600, 512)?;
        }
    }
    pool.snapshot("fz/z@a")?;
    {
        let mut dmu = pool.dmu(id)?;
        let s = stamp(300);
        vnops::remove(&mut dmu, s, b"hard")?;
        let g = vnops::create(&mut dmu, s, b"a/g", 0o644, 512)?;
        vnops::write(&mut dmu, s, g, 0, &[b'g'; 1500])?;
    }
    pool.snapshot("fz/z@b")?;
    pool.clone_fs("fz/z@a", "fz/c")?;
    pool.txg_sync()?;

    let mut blocks = BTreeSet::new();
    let mut record = |bp: &Blkptr| {
        blocks.extend(bp.dvas().map(|d| (d.offset(), d.asize())));
    };
    let all = crate::traverse::WalkOptions {
        min_birth: 0,
        read_data: false,
    };
    let mut seen = BTreeSet::new();
    let rootbp = pool.uberblock.rootbp;
    crate::traverse::walk(pool.zio_mut(), &rootbp, all, &mut seen, &mut record)?;
    for d in pool.list() {
        crate::traverse::walk(pool.zio_mut(), &d.bp, all, &mut seen, &mut record)?;
    }
    let mut image = vec![0u8; IMAGE_BYTES];
    pool.device_mut().read(0, &mut image)?;
    // Past the image: `sparse` made a new file of 1 KiB blocks (its number
    // reused, its znode kept), as `@c`, and sent from `@b`. Received into
    // the image, its OBJECT record frees the old file's three levels.
    {
        let mut dmu = pool.dmu(id)?;
        let info = dmu.object_info(sparse)?;
        let bonus = dmu.bonus(sparse)?;
        dmu.object_reclaim(sparse, info.dn_type, 1024, info.bonustype, bonus.len())?;
        dmu.set_bonus(sparse, &bonus)?;
    }
    pool.snapshot("fz/z@c")?;
    let mut reclaim = Vec::new();
    pool.send(
        "fz/z@c",
        Some("fz/z@b"),
        &mut reclaim,
        &crate::send::SendOptions::default(),
        None,
        &mut crate::send::NoInterrupt,
    )?;
    Ok(Template {
        image: image.into(),
        blocks: blocks.into_iter().collect(),
        reclaim,
    })
}

/// A device that fails every read past a budget (see [`READ_BUDGET`]),
/// which the body can set again, and every write past [`WRITE_BUDGET`].
struct Budgeted {
    dev: CowDevice,
    reads_left: Rc<Cell<u64>>,
    writes_left: u64,
}

impl BlockDevice for Budgeted {
    fn sector_size(&self) -> u64 {
        self.dev.sector_size()
    }
    fn size(&self) -> u64 {
        self.dev.size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.reads_left.get() == 0 {
            return fail(Errno::EIO, "the fuzz input's read budget is spent");
        }
        self.reads_left.set(self.reads_left.get() - 1);
        self.dev.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        if self.writes_left == 0 {
            return fail(Errno::EIO, "the fuzz input's write budget is spent");
        }
        self.writes_left -= 1;
        self.dev.write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.dev.flush()
    }
}

/// The body over the fuzzer's bytes, as [`ImageInput`].
pub fn pool_image(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    if let Ok(input) = <ImageInput as arbitrary::Arbitrary>::arbitrary(&mut u) {
        pool_image_of(&input);
    }
}

/// The body: patch a template, read the pool every way there is, then
/// write to it.
pub fn pool_image_of(input: &ImageInput) {
    let outcome = examine(input);
    if input.patches.is_empty() {
        // The template itself reads clean and takes every write as meant:
        // the body reads and writes what it claims.
        assert!(outcome.reads_clean, "the unchanged template reads clean");
        assert!(
            outcome.writes_clean,
            "the unchanged template takes the write phase as meant"
        );
    }
}

/// What one input did, each phase judged as on the unchanged template.
struct Outcome {
    /// The import, and every read after it, without an error.
    reads_clean: bool,
    /// Every write phase operation gave what it gives on the template,
    /// the sync went through, and the written filesystems walk again.
    writes_clean: bool,
}

/// Whether the patched template imports and reads everywhere without an
/// error (after reading it all, whatever the errors).
#[cfg(test)]
fn reads_clean(input: &ImageInput) -> bool {
    examine(input).reads_clean
}

/// Template `t` with the input's patches, on a copy-on-write device.
fn patched(t: &Template, input: &ImageInput) -> CowDevice {
    let mut dev = CowDevice::new(t.image.clone(), 512);
    for p in &input.patches {
        let (offset, asize) = t.blocks[usize::from(p.block) % t.blocks.len()];
        let at = offset + u64::from(p.at) % asize;
        let end = (at + 4).min(offset + asize);
        // Read, change and write back the sectors the four bytes touch.
        let first = at / 512 * 512;
        let mut sectors = vec![0u8; (end - first).next_multiple_of(512) as usize];
        dev.read(first, &mut sectors).expect("inside the image");
        let bytes = &mut sectors[(at - first) as usize..(end - first) as usize];
        for (byte, x) in bytes.iter_mut().zip(p.xor.to_le_bytes()) {
            *byte ^= x;
        }
        dev.write(first, &sectors).expect("inside the image");
    }
    dev
}

/// Imports the patched template, reads it all, then writes to it.
fn examine(input: &ImageInput) -> Outcome {
    let t = template(input.compressed);
    let reads_left = Rc::new(Cell::new(READ_BUDGET));
    let dev = Budgeted {
        dev: patched(&t, input),
        reads_left: reads_left.clone(),
        writes_left: WRITE_BUDGET,
    };
    let pool = Pool::import_unverified(
        Box::new(dev),
        Box::new(ManualClock::new(1_800_000_100)),
        Box::new(SplitMix64::new(4)),
    );
    let Ok(mut pool) = pool else {
        return Outcome {
            reads_clean: false,
            writes_clean: false,
        };
    };
    // As the template was written: one copy of each new block.
    pool.zio_mut().max_replication = 1;
    let reads_clean = read_everything(&mut pool);
    reads_left.set(WRITE_PHASE_READ_BUDGET);
    let writes_clean = write_everything(&mut pool, &t.reclaim);
    Outcome {
        reads_clean,
        writes_clean,
    }
}

/// Reads the imported pool every way: the check, then per dataset the ZPL
/// walk, every object's info, data and spill, and a send of each snapshot.
/// Returns whether all of it went without an error (a clean check
/// included); errors are what a damaged pool gives, and the reading goes
/// on past them.
fn read_everything(pool: &mut Pool) -> bool {
    let mut clean = crate::check::check(pool).is_ok_and(|r| r.is_clean());
    for d in pool.list() {
        // The pool's root dataset holds no filesystem.
        if d.name != "fz" {
            clean &= zpl::walk_with(pool, d.id, &WALK).is_ok();
        }
        match pool.dmu(d.id) {
            Err(_) => clean = false,
            Ok(mut dmu) => {
                for object in dmu.objects() {
                    let Ok(info) = dmu.object_info(object) else {
                        clean = false;
                        continue;
                    };
                    // A damaged dnode may claim any maxblkid.
                    let size =
                        (info.maxblkid.saturating_add(1)).saturating_mul(u64::from(info.datablksz));
                    let len = size.min(READ_MAX);
                    clean &= dmu.read(object, 0, len).is_ok();
                    clean &= dmu.spill(object).is_ok();
                }
            }
        }
        if d.is_snapshot {
            let sent = pool.send(
                &d.name,
                None,
                &mut std::io::sink(),
                &crate::send::SendOptions::default(),
                None,
                &mut crate::send::NoInterrupt,
            );
            clean &= sent.is_ok();
        }
    }
    clean
}

/// The write phase: [`write_filesystem`] on every filesystem (not a
/// snapshot) whose master node reads, one txg sync, the template's
/// `reclaim` stream received into `fz/z` with `-F`, and the walk of each
/// written filesystem again. Returns whether all of it went as on the
/// unchanged template; errors are what a damaged pool gives, and the
/// writing goes on past them.
fn write_everything(pool: &mut Pool, reclaim: &[u8]) -> bool {
    let mut clean = true;
    let mut written = Vec::new();
    for d in pool.list() {
        // Snapshots are read-only; the pool's root dataset holds no
        // filesystem.
        if d.is_snapshot || !d.name.contains('/') {
            continue;
        }
        let Ok(mut dmu) = pool.dmu(d.id) else {
            clean = false;
            continue;
        };
        // A filesystem whose master node does not read is not mounted: no
        // vnop reaches it.
        if zpl::master_node(&mut dmu).is_err() {
            clean = false;
            continue;
        }
        clean &= write_filesystem(&mut dmu);
        written.push(d.id);
    }
    clean &= pool.txg_sync().is_ok();
    // Last, what `zfs recv -F` does to `fz/z`: it discards the writes
    // above and frees the damaged tree's blocks (`restore_object`'s
    // reclaim).
    let options = crate::recv::RecvOptions {
        force: true,
        ..Default::default()
    };
    let received = pool.receive("fz/z", reclaim, &options, &mut crate::send::NoInterrupt);
    clean &= received.is_ok();
    for id in written {
        clean &= zpl::walk_with(pool, id, &WALK).is_ok();
    }
    clean
}

/// ZPL operations on one filesystem of the template (its head or the
/// clone), each through paths a damaged pool can break: microzap and fat
/// ZAP adds (a new name, a name that is there) and removes (a name that is
/// there, one that is not), a file created, written and cut, a hard link
/// and a write to the file it names, extended attributes made, replaced
/// and removed, a file whose last link goes (its attribute directory onto
/// the delete queue), a directory made and removed. Returns whether each
/// gave what it gives on the unchanged template.
fn write_filesystem(dmu: &mut crate::dmu::Dmu<'_>) -> bool {
    let s = stamp(400);
    let mut clean = true;
    let mut expect = |got: Result<()>, want: Option<Errno>| {
        clean &= got.err().map(|e| e.errno()) == want;
    };
    match vnops::create(dmu, s, b"w-file", 0o644, 4096) {
        Ok(file) => {
            expect(vnops::write(dmu, s, file, 0, &[b'w'; 5000]), None);
            expect(vnops::truncate(dmu, s, file, 100), None);
        }
        Err(e) => expect(Err(e), None),
    }
    expect(
        vnops::create(dmu, s, b"a", 0o644, 512).map(drop),
        Some(Errno::EEXIST),
    );
    expect(vnops::mkdir(dmu, s, b"a/w-dir", 0o755).map(drop), None);
    expect(
        vnops::symlink(dmu, s, b"a/w-dir/up", b"../..").map(drop),
        None,
    );
    expect(
        vnops::create(dmu, s, b"fat/w-entry", 0o600, 512).map(drop),
        None,
    );
    expect(
        vnops::create(dmu, s, &fat_entry(1), 0o600, 512).map(drop),
        Some(Errno::EEXIST),
    );
    match vnops::link(dmu, s, b"fat/w-link", b"sparse") {
        Ok(sparse) => {
            expect(vnops::write(dmu, s, sparse, (1 << 21) + 5, b"more"), None);
            expect(vnops::free(dmu, s, sparse, 0, 512), None);
        }
        Err(e) => expect(Err(e), None),
    }
    expect(
        vnops::set_xattr(dmu, s, b"sparse", b"user.w", Some(b"w")),
        None,
    );
    expect(
        vnops::set_xattr(dmu, s, b"a/f", b"user.k", Some(b"k2")),
        None,
    );
    expect(vnops::set_xattr(dmu, s, b"a", b"user.big", None), None);
    expect(vnops::remove(dmu, s, &fat_entry(0)).map(drop), None);
    expect(
        vnops::remove(dmu, s, b"w-missing").map(drop),
        Some(Errno::ENOENT),
    );
    expect(vnops::remove(dmu, s, b"long").map(drop), None);
    expect(vnops::remove(dmu, s, b"a/f").map(drop), None);
    expect(vnops::remove(dmu, s, b"a/w-dir/up").map(drop), None);
    expect(vnops::rmdir(dmu, s, b"a/w-dir").map(drop), None);
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RandomSource;

    #[test]
    fn the_unchanged_templates_read_and_write_clean() {
        for compressed in [false, true] {
            let t = template(compressed);
            assert!(t.blocks.len() > 40, "{} blocks", t.blocks.len());
            pool_image_of(&ImageInput {
                compressed,
                patches: Vec::new(),
            });
        }
    }

    /// Seeded changes, a few blocks at a time: each input reads to its end
    /// (errors, not panics), and some are noticed by the check or a walk.
    #[test]
    fn changed_blocks_are_errors_not_panics() {
        let mut rng = SplitMix64::new(11);
        let mut noticed = 0;
        for i in 0..200 {
            let patches = (0..1 + rng.next_u64() % 4)
                .map(|_| Patch {
                    block: rng.next_u64() as u16,
                    at: rng.next_u64() as u16,
                    xor: rng.next_u64() as u32 | 1,
                })
                .collect();
            let input = ImageInput {
                compressed: i % 2 == 0,
                patches,
            };
            pool_image_of(&input);
            noticed += !reads_clean(&input) as u32;
        }
        assert!(noticed > 25, "{noticed} of 200 changed images noticed");
    }
}
