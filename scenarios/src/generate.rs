//! The seeded step generator, in the spirit of ztest: at each step it picks
//! a kind by the scenario's weights and builds a step that makes sense for
//! the current model (an object that exists, a snapshot the target has).
//! Now and then it makes a mistake on purpose (a stale incremental, a full
//! stream onto an existing filesystem) so that refusals are exercised too;
//! `misuse` steps (`generate/misuse.rs`) ask for what ZFS refuses outright;
//! `race` steps (`generate/race.rs`) act while a transfer is in flight.

mod misuse;
mod race;

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{DN_MAX_BONUSLEN, PoolModel};
use crate::spec::{Depth, Spec};
use crate::step::{Interleaving, Shape, Step};

/// The pools every run has: the sender's and the receiver's.
pub const SRC: &str = "src";
pub const DST: &str = "dst";

/// Object types of every byteswap class whose contents may be any bytes:
/// byte, 16-, 32- and 64-bit arrays, V0 ACEs (`ace_t`) and FUID ACLs
/// (`zfs_ace_t`, which the sender swaps from host order and the receiver
/// back, so any bytes come back). ZAPs and znodes come from ZPL steps.
const TYPES: [u8; 8] = [19, 25, 26, 2, 0x82, 0x81, 18, 33];
/// User properties `set` steps give values to: few, so values get
/// replaced.
const USER_PROPS: [&str; 3] = ["org.zsim:a", "org.zsim:b", "com.example:note"];
/// Modes of new directories and files.
const DIR_MODES: [u64; 4] = [0o755, 0o700, 0o750, 0o1777];
const FILE_MODES: [u64; 5] = [0o644, 0o600, 0o755, 0o640, 0o4755];
/// A ZPL file's block size, as a recordsize would give it.
const FILE_BLOCK_SIZES: [u32; 5] = [512, 4096, 16384, 131072, 131072];
/// Extended attribute names: few, so values get replaced and removed.
const XATTR_NAMES: [&str; 5] = ["user.a", "user.b", "user.c", "user.mime", "user.checksum"];
const BONUS_TYPES: [u8; 4] = [0, 25, 26, 44];
const BLOCK_SIZES: [u32; 10] = [
    512, 1024, 4096, 8192, 16384, 32768, 65536, 131072, 1536, 3072,
];
/// Per-object checksum (inherit, on, fletcher2, fletcher4, sha256) and
/// compression (inherit, on, off, lzjb, zle) values.
const CHECKSUMS: [u8; 5] = [0, 1, 6, 7, 8];
const COMPRESSIONS: [u8; 5] = [0, 1, 2, 3, 14];

pub struct Generator {
    spec: Spec,
    rng: ChaCha8Rng,
    next_name: u64,
    /// A step that must come next (the skeleton of a filesystem just made).
    pending: Option<Step>,
    /// The races this seed draws `race` steps from (drawn at the first).
    race_kinds: Vec<(Interleaving, u32)>,
}

impl Generator {
    pub fn new(spec: Spec, rng: ChaCha8Rng) -> Generator {
        Generator {
            spec,
            rng,
            next_name: 0,
            pending: None,
            race_kinds: Vec::new(),
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    fn name(&mut self) -> u64 {
        self.next_name += 1;
        self.next_name
    }

    /// The next step, of kind `Step::KINDS[kind % len]` with its details
    /// drawn from `seed`, when a fuzzer chooses the workload (`sim_world`):
    /// the kind and the seed are the input's, so mutating one changes one
    /// step. A kind that does not fit the pools yet is replaced as
    /// [`Generator::next`] replaces it.
    pub fn guided(&mut self, kind: u8, seed: u64, src: &PoolModel, dst: &PoolModel) -> Step {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        if let Some(step) = self.pending.take() {
            return step;
        }
        let kind = Step::KINDS[usize::from(kind) % Step::KINDS.len()];
        self.build(kind, src, dst)
            .unwrap_or_else(|| self.make_room(src, dst))
    }

    /// The next step for pools in the state `src` and `dst` describe.
    pub fn next(&mut self, src: &PoolModel, dst: &PoolModel) -> Step {
        if let Some(step) = self.pending.take() {
            return step;
        }
        let kinds: Vec<(&'static str, u32)> = Step::KINDS
            .iter()
            .map(|k| (*k, self.spec.weight(k)))
            .filter(|(_, w)| *w > 0)
            .collect();
        for _ in 0..16 {
            let kind = weighted(&mut self.rng, &kinds).expect("a kind");
            if let Some(step) = self.build(kind, src, dst) {
                return step;
            }
        }
        self.make_room(src, dst)
    }

    /// A step for when nothing the weights allow fits yet: one that makes
    /// room for more (a filesystem, a snapshot).
    fn make_room(&mut self, src: &PoolModel, dst: &PoolModel) -> Step {
        match src.filesystems().filter(|f| f.contains('/')).count() {
            0 => self.build("create", src, dst),
            _ => self.build("snapshot", src, dst),
        }
        .unwrap_or(Step::Wait { ms: 1000 })
    }

    /// A step of `kind` that makes sense now, or `None` if none does.
    fn build(&mut self, kind: &str, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        if let step @ Some(_) = self.build_object_step(kind, src, dst) {
            return step;
        }
        let rng = &mut self.rng;
        match kind {
            "create" => {
                if src.filesystems().count() > 4 {
                    return None;
                }
                // Drawn only when on, so other scenarios draw as before.
                let nest = self.spec.depth.nest_share;
                let parent = if nest > 0.0 && rng.gen_bool(nest) {
                    let fss: Vec<&str> = src.filesystems().filter(|f| f.contains('/')).collect();
                    fss.choose(rng).map_or(SRC.to_string(), |f| f.to_string())
                } else {
                    SRC.to_string()
                };
                let n = self.name();
                Some(Step::CreateFs {
                    fs: format!("{parent}/fs{n}"),
                })
            }
            // The skeleton goes into an empty filesystem, made now if
            // there is none (the skeleton is then the next step).
            "zpl-init" => {
                let empty = src.filesystems().find(|f| {
                    f.contains('/')
                        && src
                            .get(f)
                            .is_some_and(|d| d.objects.is_empty() && d.zpl.is_none())
                });
                if let Some(fs) = empty {
                    return Some(Step::ZplInit { fs: fs.to_string() });
                }
                let step = self.build("create", src, dst)?;
                if let Step::CreateFs { fs } = &step {
                    self.pending = Some(Step::ZplInit { fs: fs.clone() });
                }
                Some(step)
            }
            "mkdir" | "mkfile" | "symlink" | "link" | "xattr" | "unlink" | "rmdir" => {
                self.build_zpl_step(kind, src, dst)
            }
            "snapshot" => {
                let fs = pick_fs(rng, src, dst)?;
                let n = self.name();
                Some(Step::Snapshot {
                    snap: format!("{fs}@s{n}"),
                    recursive: false,
                })
            }
            "clone" => {
                let snaps = snapshots(src);
                let origin = snaps.choose(rng)?.clone();
                let n = self.name();
                Some(Step::Clone {
                    origin,
                    fs: format!("{SRC}/c{n}"),
                })
            }
            "send-full" => self.send_full(src, dst, false),
            "send-replicate" => self.send_replicate(src, dst),
            "set" => {
                let fs = pick_fs(rng, src, dst)?;
                let prop = USER_PROPS.choose(rng)?.to_string();
                let value = format!("v{}", self.name());
                Some(Step::SetProp { fs, prop, value })
            }
            "send-incremental" => self.send_incremental(src, dst, false, false),
            "recv-force" => self.send_incremental(src, dst, false, true),
            "send-clone" => self.send_clone(src, dst, false),
            // `-I -D`: a WRITE_BYREF may point into an earlier substream.
            "send-intermediate" => {
                let mut step = self.send_incremental(src, dst, true, false)?;
                let Step::Send {
                    intermediate,
                    from,
                    target,
                    ..
                } = &mut step
                else {
                    return None;
                };
                // From the target's latest snapshot only: a stale base puts
                // snapshots the target has in the middle of the chain.
                let latest = dst.latest_snapshot(target)?.1.guid;
                if src.get(from.as_deref()?)?.guid != latest {
                    return None;
                }
                *intermediate = true;
                Some(step)
            }
            "send-dedup" => match self.rng.gen_range(0..3) {
                0 => self.send_full(src, dst, true),
                1 => self.send_clone(src, dst, true),
                _ => self.send_incremental(src, dst, true, false),
            },
            "rollback" => {
                let fs = pick_fs(rng, src, dst)?;
                let model = model_of(&fs, src, dst);
                model.latest_snapshot(&fs)?;
                Some(Step::Rollback { fs })
            }
            "destroy" => {
                let mut names: Vec<String> = Vec::new();
                for model in [src, dst] {
                    for name in model.datasets.keys() {
                        let leaf = if name.contains('@') {
                            model.clones_of(name).is_empty()
                        } else {
                            name.contains('/')
                                && model.snapshots_of(name).is_empty()
                                && model.children_of(name).is_empty()
                        };
                        if leaf {
                            names.push(name.clone());
                        }
                    }
                }
                let name = names.choose(rng)?.clone();
                Some(Step::Destroy { name })
            }
            "wait" => Some(Step::Wait {
                ms: rng.gen_range(100..8000),
            }),
            "crash" => Some(Step::Crash {
                pool: [SRC, DST].choose(rng).expect("pools").to_string(),
            }),
            "scrub" => Some(Step::Scrub {
                pool: [SRC, DST].choose(rng).expect("pools").to_string(),
            }),
            "misuse" => self.misuse(src, dst),
            "race" => self.race(src, dst),
            _ => None,
        }
    }

    /// A step on one object, if `kind` is one and an object fits.
    fn build_object_step(&mut self, kind: &str, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        let palette = self.spec.fill_palette;
        let rng = &mut self.rng;
        match kind {
            "alloc" | "claim" => {
                let fs = pick_fs(rng, src, dst)?;
                let model = model_of(&fs, src, dst);
                let mut shape = random_shape(rng);
                if let Some(blksz) = self.spec.depth.block_sizes.choose(rng) {
                    shape.blksz = *blksz;
                }
                // Drawn only when on, so other scenarios draw as before.
                let reuse = self.spec.depth.reuse_share;
                if kind == "claim" && reuse > 0.0 && rng.gen_bool(reuse) {
                    let freed = freed_objects(model, &fs);
                    if let Some((object, old)) = freed.choose(rng) {
                        if rng.gen_bool(0.5) {
                            shape = *old;
                        }
                        return Some(Step::Alloc {
                            fs,
                            object: Some(*object),
                            shape,
                        });
                    }
                }
                let object = (kind == "claim").then(|| {
                    let top = model
                        .get(&fs)
                        .and_then(|d| d.objects.keys().last().copied());
                    let mut o = top.unwrap_or(0) + rng.gen_range(1..self.spec.depth.claim_gap_max);
                    while model.object(&fs, o).is_some() {
                        o += 1;
                    }
                    o
                });
                Some(Step::Alloc { fs, object, shape })
            }
            "reclaim" => {
                let (fs, object, old) = pick_object(rng, src, dst, false)?;
                let mut shape = old;
                match rng.gen_range(0..3) {
                    0 => shape.blksz = *BLOCK_SIZES.choose(rng).expect("sizes"),
                    1 => shape.dn_type = *TYPES.choose(rng).expect("types"),
                    _ => {
                        shape.bonustype = *BONUS_TYPES.choose(rng).expect("types");
                        shape.bonuslen = random_bonuslen(rng, shape.bonustype);
                    }
                }
                Some(Step::Reclaim { fs, object, shape })
            }
            "write" => {
                let (fs, object, shape) = pick_object(rng, src, dst, true)?;
                let (offset, len) = random_range(rng, shape.blksz, &self.spec.depth);
                let fill = if palette > 0 {
                    palette_fill(rng.gen_range(0..palette))
                } else {
                    rng.r#gen()
                };
                Some(Step::Write {
                    fs,
                    object,
                    offset,
                    len,
                    fill,
                })
            }
            "punch" => {
                let (fs, object, shape) = pick_object(rng, src, dst, true)?;
                let (offset, len) = random_range(rng, shape.blksz, &self.spec.depth);
                Some(Step::Punch {
                    fs,
                    object,
                    offset,
                    len,
                })
            }
            "truncate" => {
                let (fs, object, shape) = pick_object(rng, src, dst, true)?;
                let (offset, _) = random_range(rng, shape.blksz, &self.spec.depth);
                Some(Step::Truncate { fs, object, offset })
            }
            "free" => {
                let (fs, object, _) = pick_object(rng, src, dst, false)?;
                Some(Step::FreeObject { fs, object })
            }
            "bonus" => {
                let (fs, object, shape) = pick_object(rng, src, dst, false)?;
                (shape.bonuslen > 0).then(|| Step::Bonus {
                    fs,
                    object,
                    fill: rng.r#gen(),
                })
            }
            "spill" => {
                let (fs, object, shape) = pick_object(rng, src, dst, false)?;
                let nblkptr =
                    engine::dmu::dnode::nblkptr_for_bonus(shape.bonustype, shape.bonuslen);
                if !engine::dmu::dnode::spill_fits(nblkptr, shape.bonuslen) {
                    return None;
                }
                Some(Step::Spill {
                    fs,
                    object,
                    len: *[0u64, 512, 1024, 4096].choose(rng).expect("sizes"),
                    fill: rng.r#gen(),
                })
            }
            "props" => {
                let (fs, object, _) = pick_object(rng, src, dst, true)?;
                Some(Step::Props {
                    fs,
                    object,
                    checksum: *CHECKSUMS.choose(rng).expect("values"),
                    compress: *COMPRESSIONS.choose(rng).expect("values"),
                })
            }
            _ => None,
        }
    }

    /// A ZPL step on a filesystem that has the skeleton: a new name in a
    /// directory (half the time the fullest one, so that some grow into
    /// fat ZAPs; a quarter of the names too long for a microzap), or a
    /// change to a name the model holds.
    fn build_zpl_step(&mut self, kind: &str, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        let model = if self.rng.gen_bool(0.1) { dst } else { src };
        let zpl_fss: Vec<&str> = model
            .filesystems()
            .filter(|f| model.tree(f).is_some())
            .collect();
        let fs = zpl_fss.choose(&mut self.rng)?.to_string();
        let tree = model.tree(&fs)?;
        let n = self.name();
        let rng = &mut self.rng;
        let new_path = |prefix: &str, rng: &mut ChaCha8Rng| {
            let dirs = tree.dirs();
            let dir = if rng.gen_bool(0.5) {
                dirs.iter()
                    .max_by_key(|d| (tree.entries_of(d), d.len()))?
                    .clone()
            } else {
                dirs.choose(rng)?.clone()
            };
            let mut name = format!("{prefix}{n}");
            if rng.gen_bool(0.25) {
                let len = rng.gen_range(50..=160);
                name.push('-');
                while name.len() < len {
                    name.push((b'a' + (name.len() % 26) as u8) as char);
                }
            }
            Some(if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            })
        };
        let non_dirs = tree.non_dirs();
        Some(match kind {
            "mkdir" => Step::Mkdir {
                path: new_path("d", rng)?,
                mode: *DIR_MODES.choose(rng)?,
                fs,
            },
            // Now and then a batch, which can split a fat ZAP's leaf.
            "mkfile" => Step::MkFile {
                path: new_path("f", rng)?,
                mode: *FILE_MODES.choose(rng)?,
                blksz: *FILE_BLOCK_SIZES.choose(rng)?,
                count: if rng.gen_bool(0.08) {
                    rng.gen_range(20..=200)
                } else {
                    1
                },
                fs,
            },
            "symlink" => {
                let path = new_path("l", rng)?;
                let depth = path.matches('/').count();
                let mut target = match tree.names.keys().collect::<Vec<_>>().choose(rng) {
                    Some(to) => format!("{}{to}", "../".repeat(depth)),
                    None => format!("t{n}"),
                };
                // A target too long for the bonus goes to a block.
                if rng.gen_bool(0.3) {
                    let len = rng.gen_range(60..=400);
                    target.push('/');
                    while target.len() < len {
                        target.push('t');
                    }
                }
                Step::Symlink { path, target, fs }
            }
            "link" => Step::Link {
                existing: non_dirs.choose(rng)?.clone(),
                path: new_path("h", rng)?,
                fs,
            },
            "xattr" => {
                let paths: Vec<&String> = tree.names.keys().collect();
                let path = (*paths.choose(rng)?).clone();
                let node = tree.node(&path)?;
                let name = XATTR_NAMES.choose(rng)?.to_string();
                let len = if node.xattrs.contains_key(&name) && rng.gen_bool(0.3) {
                    0
                } else {
                    match rng.gen_range(0..3) {
                        0 => rng.gen_range(1..=64),
                        1 => rng.gen_range(65..=2000),
                        _ => rng.gen_range(2001..=9000),
                    }
                };
                Step::Xattr {
                    fs,
                    path,
                    name,
                    len,
                    fill: rng.r#gen(),
                }
            }
            "unlink" => Step::Unlink {
                path: non_dirs.choose(rng)?.clone(),
                fs,
            },
            "rmdir" => {
                let empty: Vec<String> = tree
                    .dirs()
                    .into_iter()
                    .filter(|d| !d.is_empty() && tree.entries_of(d) == 0)
                    .collect();
                Step::Rmdir {
                    path: empty.choose(rng)?.clone(),
                    fs,
                }
            }
            _ => return None,
        })
    }

    fn send_full(&mut self, src: &PoolModel, dst: &PoolModel, dedup: bool) -> Option<Step> {
        let snap = snapshots(src).choose(&mut self.rng)?.clone();
        // Now and then onto an existing filesystem: refused (EEXIST).
        let existing: Vec<&str> = dst.filesystems().filter(|f| f.contains('/')).collect();
        let (target, force) = if !existing.is_empty() && self.rng.gen_bool(0.1) {
            (
                existing.choose(&mut self.rng)?.to_string(),
                self.rng.gen_bool(0.5),
            )
        } else {
            let n = self.name();
            (format!("{DST}/r{n}"), false)
        };
        Some(Step::Send {
            snap,
            from: None,
            target,
            dedup,
            force,
            origin: None,
            intermediate: false,
            replicate: false,
        })
    }

    /// An incremental onto a target that has a copy of one of the source's
    /// snapshots, usually its latest.
    fn send_incremental(
        &mut self,
        src: &PoolModel,
        dst: &PoolModel,
        dedup: bool,
        force: bool,
    ) -> Option<Step> {
        let mut options = Vec::new();
        for target in dst.filesystems().filter(|f| f.contains('/')) {
            let snaps = dst.snapshots_of(target);
            let Some((_, latest)) = snaps.last() else {
                continue;
            };
            // Usually the latest; sometimes an older one (a stale source).
            let base = if self.rng.gen_bool(0.9) || snaps.len() < 2 {
                latest
            } else {
                &snaps[self.rng.gen_range(0..snaps.len() - 1)].1
            };
            let Some(from) = src.find_guid(base.guid) else {
                continue;
            };
            let fs = from.split('@').next().expect("a snapshot");
            let from_seq = src.get(from).expect("found").seq;
            for (later, d) in src.snapshots_of(fs) {
                if d.seq > from_seq {
                    options.push((later.to_string(), from.to_string(), target.to_string()));
                }
            }
        }
        let (snap, from, target) = options.choose(&mut self.rng)?.clone();
        Some(Step::Send {
            snap,
            from: Some(from),
            target,
            dedup,
            force,
            origin: None,
            intermediate: false,
            replicate: false,
        })
    }

    /// `zfs snapshot -r TOP@new`, then (the next step) `zfs send -R
    /// TOP@new` received as a new tree, or `-R -I` from the snapshot of
    /// `TOP` a target tree holds last: the pool's root (every filesystem
    /// and clone) or a source filesystem with what lies below it.
    fn send_replicate(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        let mut tops: Vec<&str> = src.filesystems().filter(|f| f.contains('/')).collect();
        if tops.is_empty() {
            return None;
        }
        tops.push(SRC);
        let top = tops.choose(&mut self.rng)?.to_string();
        // Targets whose latest snapshot is a copy of one of `top`'s.
        let bases: Vec<(String, String)> = dst
            .filesystems()
            .filter(|f| f.contains('/'))
            .filter_map(|t| {
                let (_, latest) = dst.latest_snapshot(t)?;
                let from = src.find_guid(latest.guid)?;
                (from.split('@').next() == Some(top.as_str()))
                    .then(|| (t.to_string(), from.to_string()))
            })
            .collect();
        let (target, from) = match bases.choose(&mut self.rng) {
            Some((t, f)) if self.rng.gen_bool(0.6) => (t.clone(), Some(f.clone())),
            _ => (format!("{DST}/r{}", self.name()), None),
        };
        let snap = format!("{top}@s{}", self.name());
        self.pending = Some(Step::Send {
            snap: snap.clone(),
            intermediate: from.is_some(),
            from,
            target,
            dedup: false,
            force: false,
            origin: None,
            replicate: true,
        });
        Some(Step::Snapshot {
            snap,
            recursive: true,
        })
    }

    /// A snapshot of a clone, sent from its origin onto the target's copy
    /// of the origin.
    fn send_clone(&mut self, src: &PoolModel, dst: &PoolModel, dedup: bool) -> Option<Step> {
        let mut options = Vec::new();
        for (fs, d) in &src.datasets {
            let Some(origin) = &d.origin else { continue };
            let Some(copy) = dst.find_guid(src.get(origin)?.guid) else {
                continue;
            };
            for (snap, _) in src.snapshots_of(fs) {
                options.push((snap.to_string(), origin.clone(), copy.to_string()));
            }
        }
        let (snap, from, origin) = options.choose(&mut self.rng)?.clone();
        let n = self.name();
        Some(Step::Send {
            snap,
            from: Some(from),
            target: format!("{DST}/r{n}"),
            dedup,
            force: false,
            origin: Some(origin),
            intermediate: false,
            replicate: false,
        })
    }
}

/// One of `items`, each as likely as its weight (one draw); `None` if no
/// weight is above zero.
fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> Option<T> {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut pick = rng.gen_range(0..total);
    items.iter().find_map(|&(item, w)| {
        if pick < w {
            Some(item)
        } else {
            pick -= w;
            None
        }
    })
}

fn model_of<'a>(name: &str, src: &'a PoolModel, dst: &'a PoolModel) -> &'a PoolModel {
    if name.starts_with(DST) { dst } else { src }
}

fn snapshots(model: &PoolModel) -> Vec<String> {
    model
        .datasets
        .keys()
        .filter(|n| n.contains('@'))
        .cloned()
        .collect()
}

/// A filesystem to change: mostly the source's, sometimes a received one
/// (which then needs -F, or is refused with ETXTBSY).
fn pick_fs(rng: &mut ChaCha8Rng, src: &PoolModel, dst: &PoolModel) -> Option<String> {
    let model = if rng.gen_bool(0.1) { dst } else { src };
    let fss: Vec<&str> = model.filesystems().filter(|f| f.contains('/')).collect();
    fss.choose(rng).map(|s| s.to_string())
}

/// Objects of `fs`'s snapshots that its head no longer has (by number,
/// lowest first, with their shapes), leaving out those a ZPL filesystem
/// owns.
fn freed_objects(model: &PoolModel, fs: &str) -> Vec<(u64, Shape)> {
    let Some(head) = model.get(fs) else {
        return Vec::new();
    };
    let mut freed = BTreeMap::new();
    for (name, snap) in model.snapshots_of(fs) {
        for (o, obj) in snap.objects.iter() {
            if !head.objects.contains_key(o) && !model.zpl_owns(name, *o) {
                freed.entry(*o).or_insert(obj.shape);
            }
        }
    }
    freed.into_iter().collect()
}

/// An object to change: any but those of a ZPL filesystem, whose regular
/// files only (`zpl_files`) steps on data may pick.
fn pick_object(
    rng: &mut ChaCha8Rng,
    src: &PoolModel,
    dst: &PoolModel,
    zpl_files: bool,
) -> Option<(String, u64, Shape)> {
    let fs = pick_fs(rng, src, dst)?;
    let model = model_of(&fs, src, dst);
    let objects: Vec<(u64, Shape)> = model
        .get(&fs)?
        .objects
        .iter()
        .filter(|(o, _)| !model.zpl_owns(&fs, **o) || (zpl_files && model.zpl_file(&fs, **o)))
        .map(|(o, obj)| (*o, obj.shape))
        .collect();
    let (object, shape) = *objects.choose(rng)?;
    Some((fs, object, shape))
}

/// The `n`th fill of a palette: bytes that do not compress to nothing
/// (`fill_bytes` modes 0 and 2, never all zeros), so each is a real block.
fn palette_fill(n: u64) -> u64 {
    0x5eed_0000 + n * 4 + (n & 1) * 2
}

fn random_shape(rng: &mut ChaCha8Rng) -> Shape {
    let bonustype = *BONUS_TYPES.choose(rng).expect("types");
    Shape {
        dn_type: *TYPES.choose(rng).expect("types"),
        blksz: *BLOCK_SIZES.choose(rng).expect("sizes"),
        bonustype,
        bonuslen: random_bonuslen(rng, bonustype),
    }
}

fn random_bonuslen(rng: &mut ChaCha8Rng, bonustype: u8) -> usize {
    match rng.gen_range(0..4) {
        0 => 0,
        1 => DN_MAX_BONUSLEN,
        _ if bonustype == 26 => rng.gen_range(0..=DN_MAX_BONUSLEN / 8) * 8,
        _ => rng.gen_range(1..=DN_MAX_BONUSLEN),
    }
}

/// An offset and length within the first `span_blocks` blocks, or now and
/// then (`far_share`) anywhere below `2^far_offset_log2`; within the single
/// block of an object whose block size is not a power of two.
fn random_range(rng: &mut ChaCha8Rng, blksz: u32, depth: &Depth) -> (u64, u64) {
    let blksz = u64::from(blksz);
    if !blksz.is_power_of_two() {
        let offset = rng.gen_range(0..blksz);
        return (offset, rng.gen_range(1..=blksz - offset));
    }
    // Drawn only when on, so the shallow default draws as it always did.
    if depth.far_share > 0.0 && rng.gen_bool(depth.far_share) {
        let blocks = (1u64 << depth.far_offset_log2) / blksz;
        let offset = rng.gen_range(0..blocks) * blksz;
        return (
            offset,
            blksz * rng.gen_range(1..=depth.write_blocks_max.min(4)),
        );
    }
    let span_blocks = depth.span_blocks;
    let span = blksz * span_blocks;
    let offset = if rng.gen_bool(0.6) {
        rng.gen_range(0..span_blocks) * blksz
    } else {
        rng.gen_range(0..span)
    };
    let len = if rng.gen_bool(0.5) {
        blksz * rng.gen_range(1..=depth.write_blocks_max)
    } else {
        rng.gen_range(1..=blksz * depth.write_blocks_max)
    };
    (offset, len.min(span - offset).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_takes_back_a_number_freed_since_a_snapshot() {
        let spec = Spec::parse(
            "reuse",
            "description = \"t\"\nsteps = 10\n[weights]\nclaim = 1\n[depth]\nreuse_share = 1.0\n",
        )
        .unwrap();
        let old = Shape {
            dn_type: 19,
            blksz: 4096,
            bonustype: 0,
            bonuslen: 0,
        };
        let mut src = PoolModel::new("src");
        src.create("src/fs");
        src.alloc("src/fs", 7, old);
        src.alloc("src/fs", 9, old);
        src.snapshot("src/fs@a", 1, 1);
        src.objects_mut("src/fs").remove(&7);
        assert_eq!(freed_objects(&src, "src/fs"), vec![(7, old)]);

        let dst = PoolModel::new("dst");
        let mut generator = Generator::new(spec, ChaCha8Rng::seed_from_u64(3));
        let (mut same, mut other) = (0, 0);
        for _ in 0..40 {
            match generator.next(&src, &dst) {
                Step::Alloc {
                    object: Some(7),
                    shape,
                    ..
                } => *(if shape == old { &mut same } else { &mut other }) += 1,
                step => panic!("expected a claim of object 7, got {step}"),
            }
        }
        // Both the old shape (the receiver keeps the object) and a new one.
        assert!(
            same > 5 && other > 5,
            "{same} with the old shape, {other} new"
        );
    }
}
