//! Walking block trees from a block pointer down (`dmu_traverse.c`).
//!
//! A block's type and level say what it holds: indirect blocks hold block
//! pointers, an objset block holds the meta-dnode, a dnode block holds
//! dnodes whose own pointers lead further down. The walk is pre-order and
//! prunes every subtree born at or before `min_birth`, because nothing
//! beneath a block can be younger than the block itself: that is what makes
//! incremental traversal and space queries cheap.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::dmu::dnode::{
    DN_SPILL_OFFSET, DNODE_CORE_SIZE, DNODE_FLAG_SPILL_BLKPTR, DNODE_SIZE, Dnode,
};
use crate::dmu::object_type::{DMU_OT_DNODE, DMU_OT_OBJSET};
use crate::error::{Errno, Result, fail};
use crate::zio::{BLKPTR_SIZE, Blkptr, Zio};

/// How a walk treats the blocks it meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOptions {
    /// Skip subtrees born at or before this txg.
    pub min_birth: u64,
    /// Read (and so verify) level-0 data blocks too, not only the blocks
    /// that lead further down.
    pub read_data: bool,
}

/// Calls `f` for every non-hole block pointer beneath (and including)
/// `root`, skipping any whose DVA offset is already in `seen` (shared
/// subtrees are walked once). Blocks that lead further down are read.
pub fn walk(
    zio: &mut Zio,
    root: &Blkptr,
    options: WalkOptions,
    seen: &mut BTreeSet<u64>,
    f: &mut dyn FnMut(&Blkptr),
) -> Result<()> {
    walk_impl(zio, root, options, seen, f, None)
}

/// As [`walk`], but a block that cannot be read is recorded in `errors` and
/// its subtree skipped, so one bad block does not hide the rest (the check).
pub fn walk_lenient(
    zio: &mut Zio,
    root: &Blkptr,
    options: WalkOptions,
    seen: &mut BTreeSet<u64>,
    f: &mut dyn FnMut(&Blkptr),
    errors: &mut Vec<(Blkptr, crate::error::Error)>,
) {
    let _ = walk_impl(zio, root, options, seen, f, Some(errors));
}

fn walk_impl(
    zio: &mut Zio,
    root: &Blkptr,
    options: WalkOptions,
    seen: &mut BTreeSet<u64>,
    f: &mut dyn FnMut(&Blkptr),
    mut errors: Option<&mut Vec<(Blkptr, crate::error::Error)>>,
) -> Result<()> {
    let mut stack = vec![*root];
    let mut children = Vec::new();
    // Holes and blocks too old to walk would be skipped when popped: they
    // are never pushed (an indirect block is mostly holes).
    let walked = |c: &&Blkptr| !c.is_hole() && c.birth > options.min_birth;
    while let Some(bp) = stack.pop() {
        if bp.is_hole() || bp.birth <= options.min_birth || !seen.insert(bp.dva[0].offset()) {
            continue;
        }
        f(&bp);
        let level = bp.level();
        let t = u32::from(bp.object_type());
        let descends = level > 0 || t == DMU_OT_OBJSET || t == DMU_OT_DNODE;
        if !descends && !options.read_data {
            continue;
        }
        if let Some(cached) = zio.blkptr_cache.as_ref().and_then(|c| c.children(&bp)) {
            // Pre-order, children in ascending order.
            stack.extend(cached.iter().rev().filter(walked));
            continue;
        }
        children.clear();
        let result = zio.with_block(&bp, |data| {
            if level > 0 {
                // A hole's birth (its eleventh word) is zero.
                children.extend(
                    data.chunks_exact(BLKPTR_SIZE)
                        .filter(|c| c[80..88] != [0; 8])
                        .map(Blkptr::decode),
                );
            } else if t == DMU_OT_OBJSET {
                if data.len() < DNODE_SIZE {
                    // unreached: a block pointer's lsize is at least 512 (DNODE_SIZE), and
                    // with_block hands over exactly lsize bytes
                    return fail(Errno::EIO, "objset block too small");
                }
                dnode_children(&data[..DNODE_SIZE], &mut children)?;
            } else if t == DMU_OT_DNODE {
                for slot in data.chunks_exact(DNODE_SIZE) {
                    dnode_children(slot, &mut children)?;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            match errors.as_deref_mut() {
                Some(errors) => {
                    errors.push((bp, e));
                    continue;
                }
                None => return Err(e),
            }
        }
        if descends && let Some(cache) = zio.blkptr_cache.as_mut() {
            cache.insert(&bp, &children);
        }
        // Pre-order, children in ascending order.
        stack.extend(children.iter().rev().filter(walked));
    }
    Ok(())
}

/// The block pointers of one encoded dnode (none for a free slot).
fn dnode_children(dnode: &[u8], out: &mut Vec<Blkptr>) -> Result<()> {
    if dnode[0] == 0 {
        return Ok(());
    }
    let nblkptr = usize::from(dnode[3]);
    if nblkptr == 0 || DNODE_CORE_SIZE + nblkptr * BLKPTR_SIZE > DNODE_SIZE {
        return fail(Errno::EIO, format!("corrupt dnode: nblkptr {nblkptr}"));
    }
    for i in 0..nblkptr {
        let at = DNODE_CORE_SIZE + i * BLKPTR_SIZE;
        out.push(Blkptr::decode(&dnode[at..at + BLKPTR_SIZE]));
    }
    if dnode[7] & DNODE_FLAG_SPILL_BLKPTR != 0 {
        out.push(Blkptr::decode(&dnode[DN_SPILL_OFFSET..]));
    }
    Ok(())
}

/// Allocated bytes of every block beneath `root` born after `min_birth`.
pub fn space_born_after(zio: &mut Zio, root: &Blkptr, min_birth: u64) -> Result<u64> {
    let mut total = 0;
    let options = WalkOptions {
        min_birth,
        read_data: false,
    };
    walk(zio, root, options, &mut BTreeSet::new(), &mut |bp| {
        total += bp.asize()
    })?;
    Ok(total)
}

/// `zbookmark_t`: where a block sits in a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bookmark {
    /// 0 is the meta-dnode.
    pub object: u64,
    pub level: u8,
    pub blkid: u64,
}

/// `DMU_SPILL_BLKID`: the bookmark of a spill block.
pub const DMU_SPILL_BLKID: u64 = u64::MAX;

/// What `traverse_dataset` hands its callback for each block pointer.
pub struct Visit<'a> {
    /// `None` for a hole.
    pub bp: Option<&'a Blkptr>,
    pub zb: Bookmark,
    /// The dnode the block belongs to (the meta-dnode for dnode blocks).
    pub dnode: &'a crate::dmu::dnode::Dnode,
    /// For a dnode block: its dnodes, decoded (`None` for a free slot).
    pub dnodes: Option<&'a [Option<crate::dmu::dnode::Dnode>]>,
}

/// `traverse_dataset(ds, txg_start, TRAVERSE_PRE, cb)` as of the seed's era:
/// pre-order from the objset block down, skipping blocks born at or before
/// `min_txg`, and reporting every hole (a pointer with birth 0) whatever its
/// birth, with the bookmark of the span it covers. The callback gets the
/// zio to read level-0 data itself; returning an error stops the walk.
/// A [`TraverseCursor`] driven to its end.
pub fn traverse_dataset(
    zio: &mut Zio,
    objset_bp: &Blkptr,
    min_txg: u64,
    cb: &mut dyn FnMut(&mut Zio, &Visit) -> Result<()>,
) -> Result<()> {
    let mut cursor = TraverseCursor::new(*objset_bp, min_txg);
    while let Some(visit) = cursor.next(zio)? {
        cb(zio, &visit.as_visit())?;
    }
    Ok(())
}

/// One visit of a [`TraverseCursor`], owning what it refers to.
pub struct CursorVisit {
    bp: Option<Blkptr>,
    zb: Bookmark,
    dnode: DnodeRef,
    dnodes: Option<Rc<Vec<Option<Dnode>>>>,
}

impl CursorVisit {
    pub fn as_visit(&self) -> Visit<'_> {
        Visit {
            bp: self.bp.as_ref(),
            zb: self.zb,
            dnode: self.dnode.get(),
            dnodes: self.dnodes.as_deref().map(Vec::as_slice),
        }
    }
}

/// A dnode the walk is beneath: the meta-dnode, or one slot of a decoded
/// dnode block, shared with the block rather than copied out of it.
#[derive(Clone)]
enum DnodeRef {
    Meta(Rc<Dnode>),
    Slot(Rc<Vec<Option<Dnode>>>, usize),
}

impl DnodeRef {
    fn get(&self) -> &Dnode {
        match self {
            DnodeRef::Meta(dn) => dn,
            DnodeRef::Slot(block, i) => block[*i].as_ref().expect("a slot holding a dnode"),
        }
    }
}

/// What a [`TraverseCursor`] has yet to do, innermost last.
enum Frame {
    /// The objset block: read it for the meta-dnode.
    Objset(Blkptr),
    /// Every block of a dnode: its top pointers, then its spill block.
    Dnode(DnodeRef),
    /// The `i`th dnode of a decoded dnode block.
    Child(Rc<Vec<Option<Dnode>>>, usize),
    /// One block pointer, visited.
    Bp(DnodeRef, Blkptr, Bookmark),
    /// An indirect block already visited, whose children are to be read.
    Indirect(DnodeRef, Blkptr, Bookmark),
    /// The children of a read indirect block at `zb`, the `next`th to be
    /// visited next: one frame for all of them, not one each.
    Children {
        dn: DnodeRef,
        zb: Bookmark,
        children: Vec<Blkptr>,
        next: usize,
    },
}

/// The traversal of [`traverse_dataset`] taken one visit at a time, so a
/// caller (a send, `dmu_send`'s `backup_cb`) can stop between any two and
/// go on later: its explicit stack is where the recursion was. Reads and
/// visits happen in exactly the recursive order.
pub struct TraverseCursor {
    stack: Vec<Frame>,
    min_txg: u64,
    /// Hand out only the visits of dnode blocks (the walk and its reads
    /// are the same).
    dnodes_only: bool,
}

impl TraverseCursor {
    pub fn new(objset_bp: Blkptr, min_txg: u64) -> TraverseCursor {
        let stack = if objset_bp.is_hole() || objset_bp.birth <= min_txg {
            Vec::new()
        } else {
            vec![Frame::Objset(objset_bp)]
        };
        TraverseCursor {
            stack,
            min_txg,
            dnodes_only: false,
        }
    }

    /// The same walk, handing out only the visits of dnode blocks: for a
    /// caller that looks at the objects alone, without a visit built and
    /// passed up for every other block.
    pub fn dnode_blocks(objset_bp: Blkptr) -> TraverseCursor {
        TraverseCursor {
            dnodes_only: true,
            ..TraverseCursor::new(objset_bp, 0)
        }
    }

    /// The next visit, `None` once the walk is over. An error ends it.
    pub fn next(&mut self, zio: &mut Zio) -> Result<Option<CursorVisit>> {
        let result = self.step(zio);
        if result.is_err() {
            self.stack.clear();
        }
        result
    }

    fn step(&mut self, zio: &mut Zio) -> Result<Option<CursorVisit>> {
        let min_txg = self.min_txg;
        loop {
            // The next child of an indirect block is taken in place: its
            // subtree goes above the frame, which stays for the rest.
            if let Some(Frame::Children {
                dn,
                zb,
                children,
                next,
            }) = self.stack.last_mut()
            {
                let Some(&child) = children.get(*next) else {
                    self.stack.pop();
                    continue;
                };
                let i = *next as u64;
                *next += 1;
                let czb = Bookmark {
                    object: zb.object,
                    level: zb.level - 1,
                    blkid: zb.blkid.wrapping_mul(children.len() as u64).wrapping_add(i),
                };
                let dn = dn.clone();
                if let Some(visit) = self.visit_bp(zio, dn, child, czb, min_txg)? {
                    return Ok(Some(visit));
                }
                continue;
            }
            let Some(frame) = self.stack.pop() else {
                return Ok(None);
            };
            match frame {
                Frame::Objset(bp) => {
                    let meta = zio.with_block(&bp, |data| {
                        if data.len() < DNODE_SIZE {
                            // unreached: a block pointer's lsize is at least 512 (DNODE_SIZE), and
                            // with_block hands over exactly lsize bytes
                            return fail(Errno::EIO, "objset block too small");
                        }
                        Dnode::decode(0, &data[..DNODE_SIZE])
                    })?;
                    let meta = meta.ok_or_else(|| {
                        crate::error::Error::new(Errno::EIO, "objset without a meta-dnode")
                    })?;
                    self.stack.push(Frame::Dnode(DnodeRef::Meta(Rc::new(meta))));
                }
                Frame::Dnode(dref) => {
                    let dn = dref.get();
                    if dn.flags & DNODE_FLAG_SPILL_BLKPTR != 0 {
                        let zb = Bookmark {
                            object: dn.object,
                            level: 0,
                            blkid: DMU_SPILL_BLKID,
                        };
                        self.stack.push(Frame::Bp(dref.clone(), dn.spill_bp(), zb));
                    }
                    let top = dn.top_bps();
                    for (j, bp) in top.iter().enumerate().rev() {
                        let zb = Bookmark {
                            object: dn.object,
                            level: dn.nlevels - 1,
                            blkid: j as u64,
                        };
                        self.stack.push(Frame::Bp(dref.clone(), *bp, zb));
                    }
                }
                Frame::Child(dnodes, i) => {
                    // The dnodes after this one come after its blocks.
                    let next = dnodes[i + 1..].iter().position(Option::is_some);
                    if let Some(k) = next {
                        self.stack.push(Frame::Child(dnodes.clone(), i + 1 + k));
                    }
                    if dnodes[i].is_some() {
                        self.stack.push(Frame::Dnode(DnodeRef::Slot(dnodes, i)));
                    }
                }
                Frame::Indirect(dn, bp, zb) => {
                    let children: Vec<Blkptr> = zio.with_block(&bp, |data| {
                        Ok(data.chunks_exact(BLKPTR_SIZE).map(Blkptr::decode).collect())
                    })?;
                    self.stack.push(Frame::Children {
                        dn,
                        zb,
                        children,
                        next: 0,
                    });
                }
                Frame::Children { .. } => unreachable!("taken in place above"),
                Frame::Bp(dn, bp, zb) => {
                    if let Some(visit) = self.visit_bp(zio, dn, bp, zb, min_txg)? {
                        return Ok(Some(visit));
                    }
                }
            }
        }
    }

    /// What `visit_bp` did for one pointer: the visit to hand out (none for
    /// a block too old), with what comes beneath it pushed to do next.
    fn visit_bp(
        &mut self,
        zio: &mut Zio,
        dn: DnodeRef,
        bp: Blkptr,
        zb: Bookmark,
        min_txg: u64,
    ) -> Result<Option<CursorVisit>> {
        let visit = |bp: Option<Blkptr>, dn: DnodeRef, dnodes| CursorVisit {
            bp,
            zb,
            dnode: dn,
            dnodes,
        };
        if bp.is_hole() {
            // The seed's era reports every hole: it cannot tell when a hole
            // was made. The hole_birth bugs came from deciding that it could.
            let thought_old = match zb.level {
                0 => planted!(IncrementalSkipsL0Holes),
                _ => planted!(IncrementalSkipsIndirectHoles),
            };
            if thought_old && min_txg > 0 {
                return Ok(None);
            }
            return Ok((!self.dnodes_only).then(|| visit(None, dn, None)));
        }
        if bp.birth <= min_txg {
            return Ok(None);
        }
        // Where a pointer sits fixes its level; a pointer that says
        // otherwise would send the walk below level 0.
        if bp.level() != zb.level {
            return fail(
                Errno::EIO,
                format!(
                    "object {} block {}: a block pointer of level {} at level {}",
                    zb.object,
                    zb.blkid,
                    bp.level(),
                    zb.level
                ),
            );
        }
        if bp.level() > 0 {
            self.stack.push(Frame::Indirect(dn.clone(), bp, zb));
            return Ok((!self.dnodes_only).then(|| visit(Some(bp), dn, None)));
        }
        if u32::from(bp.object_type()) == DMU_OT_DNODE {
            let dnodes = zio.with_block(&bp, |data| {
                let epb = (data.len() / DNODE_SIZE) as u64;
                data.chunks_exact(DNODE_SIZE)
                    .enumerate()
                    .map(|(i, slot)| {
                        Dnode::decode(zb.blkid.wrapping_mul(epb).wrapping_add(i as u64), slot)
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            let dnodes = Rc::new(dnodes);
            if let Some(first) = dnodes.iter().position(Option::is_some) {
                self.stack.push(Frame::Child(dnodes.clone(), first));
            }
            return Ok(Some(visit(Some(bp), dn, Some(dnodes))));
        }
        Ok((!self.dnodes_only).then(|| visit(Some(bp), dn, None)))
    }
}
