//! `pool_image`: a pool whose blocks a fuzzer changed, read by everything
//! that reads pools (import, the check, the ZPL walk, every object's data
//! and spill, a send of every snapshot). The blocks' checksums are not
//! checked ([`Pool::import_unverified`]), so the changed bytes reach the
//! parsers behind them: dnodes, indirect blocks, ZAPs, znodes, the DSL,
//! compressed blocks. What must hold: no panic, no hang, no allocation
//! beyond a block's size, and an unchanged image reads clean.

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

/// A template: its image and every block on it (offset, size on disk).
struct Template {
    image: Rc<[u8]>,
    blocks: Vec<(u64, u64)>,
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

/// A pool with what the parsers parse: a ZPL filesystem (micro and fat ZAP
/// directories, files small and sparse over three levels, symlinks, a hard
/// link, extended attributes), its snapshots and a clone.
fn build(compressed: bool) -> Result<Template> {
    let base: Rc<[u8]> = vec![0u8; IMAGE_BYTES].into();
    let mut pool = Pool::create(
        Box::new(CowDevice::new(base, 512)),
        "fz",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(3)),
    )?;
    pool.zio_mut().mdcomp_disable = !compressed;
    let id = pool.create_fs("fz/z")?;
    if compressed {
        pool.set_prop("fz/z", "compression", "lzjb")?;
    }
    {
        let mut dmu = pool.dmu(id)?;
        zpl::create_fs(&mut dmu, stamp(100).now, 5)?;
        let s = stamp(200);
        vnops::mkdir(&mut dmu, s, b"a", 0o755)?;
        let f = vnops::create(&mut dmu, s, b"a/f", 0o644, 4096)?;
        vnops::write(&mut dmu, s, f, 0, &[b'x'; 9000])?;
        let sparse = vnops::create(&mut dmu, s, b"sparse", 0o644, 512)?;
        vnops::write(&mut dmu, s, sparse, 0, b"head")?;
        vnops::write(&mut dmu, s, sparse, 1 << 21, b"far")?;
        vnops::symlink(&mut dmu, s, b"a/up", b"../sparse")?;
        vnops::symlink(&mut dmu, s, b"long", &[b'l'; 300])?;
        vnops::link(&mut dmu, s, b"hard", b"a/f")?;
        vnops::set_xattr(&mut dmu, s, b"a/f", b"user.k", Some(b"v"))?;
        vnops::set_xattr(&mut dmu, s, b"a", b"user.big", Some(&[3; 3000]))?;
        vnops::mkdir(&mut dmu, s, b"fat", 0o755)?;
        for i in 0..40 {
            let mut name = format!("fat/entry-{i}-").into_bytes();
            name.resize(90, b'n');
            vnops::create(&mut dmu, s, &name, 0o600, 512)?;
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
        blocks.insert((bp.dva[0].offset(), bp.dva[0].asize()));
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
    Ok(Template {
        image: image.into(),
        blocks: blocks.into_iter().collect(),
    })
}

/// A device that fails every read past a budget (see [`READ_BUDGET`]).
struct Budgeted {
    dev: CowDevice,
    reads_left: u64,
}

impl BlockDevice for Budgeted {
    fn sector_size(&self) -> u64 {
        self.dev.sector_size()
    }
    fn size(&self) -> u64 {
        self.dev.size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.reads_left == 0 {
            return fail(Errno::EIO, "the fuzz input's read budget is spent");
        }
        self.reads_left -= 1;
        self.dev.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
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

/// The body: patch a template, then read the pool every way there is.
pub fn pool_image_of(input: &ImageInput) {
    let clean = reads_clean(input);
    if input.patches.is_empty() {
        // The template itself reads clean: the body reads what it claims.
        assert!(clean, "the unchanged template reads clean");
    }
}

/// Whether the patched template imports and reads everywhere without an
/// error (after reading it all, whatever the errors).
fn reads_clean(input: &ImageInput) -> bool {
    let t = template(input.compressed);
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
    let dev = Budgeted {
        dev,
        reads_left: READ_BUDGET,
    };
    read_everything(Box::new(dev)) == Ok(true)
}

/// Imports the pool and reads it every way: the check, then per dataset
/// the ZPL walk, every object's info, data and spill, and a send of each
/// snapshot. Returns whether all of it went without an error (a clean
/// check included); errors past the import are what a damaged pool gives,
/// and the reading goes on past them.
fn read_everything(dev: Box<dyn BlockDevice>) -> Result<bool> {
    let mut pool = Pool::import_unverified(
        dev,
        Box::new(ManualClock::new(1_800_000_100)),
        Box::new(SplitMix64::new(4)),
    )?;
    let mut clean = crate::check::check(&mut pool).is_ok_and(|r| r.is_clean());
    // File data is read below, object by object.
    let walk = zpl::WalkOptions {
        hash: false,
        xattrs: true,
        max_hash_bytes: 0,
    };
    for d in pool.list() {
        // The pool's root dataset holds no filesystem.
        if d.name != "fz" {
            clean &= zpl::walk_with(&mut pool, d.id, &walk).is_ok();
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
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RandomSource;

    #[test]
    fn the_unchanged_templates_read_clean() {
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
