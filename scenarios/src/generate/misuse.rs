//! The generator's misuse steps: one wrong thing at a time, asked of a
//! pool in a state where ZFS must refuse it (the model says with which
//! errno). A misuse that needs a state the pools are not in yet (a
//! filesystem with a child) makes that state first, with an ordinary step.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use engine::dmu::dnode::DN_MAX_OBJECT;
use engine::dsl::MAXNAMELEN;

use super::{DST, Generator, SRC, model_of, pick_fs, pick_object, random_shape, snapshots};
use crate::model::{Expect, PoolModel};
use crate::step::{Misuse, Shape, Step};

/// A name component ZFS refuses (`dataset_namecheck`).
const BAD_COMPONENTS: [&str; 4] = ["bad!name", "b*d", "a#b", "x$y"];

impl Generator {
    /// A misuse step that fits the pools now, or `None`.
    pub(super) fn misuse(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        let misuse = match self.rng.gen_range(0..14) {
            0 => self.misuse_create(src, dst)?,
            1 => self.misuse_snapshot(src, dst)?,
            2 => match self.misuse_destroy(src, dst)? {
                Ok(misuse) => misuse,
                // Not there yet: a filesystem with a child first.
                Err(setup) => return Some(setup),
            },
            3 => self.misuse_rollback(src, dst)?,
            4 => self.misuse_clone(src, dst)?,
            5 => self.misuse_claim(src, dst)?,
            6 => self.misuse_object(src, dst)?,
            7 => self.misuse_shape(src, dst)?,
            8 => {
                let snap = snapshots(src).choose(&mut self.rng)?.clone();
                let fs = snap.split('@').next().unwrap_or_default().to_string();
                match self.rng.gen_range(0..5) {
                    0 => Misuse::HoldTwice { name: snap },
                    1 => Misuse::HoldTwice { name: fs },
                    2 => Misuse::ReleaseUnheld { name: snap },
                    3 => Misuse::DestroyDeferred { name: fs },
                    _ => Misuse::DestroyHeld { snap },
                }
            }
            9 => self.misuse_send(src)?,
            10 => self.misuse_zpl(src, dst)?,
            11 => self.misuse_set(src, dst)?,
            _ => return self.misuse_receive(src, dst),
        };
        let model = model_of(misuse.target(), src, dst);
        model
            .refusal(&misuse)
            .is_some()
            .then_some(Step::Misuse(misuse))
    }

    /// A ZPL operation the namespace refuses: a name that exists, one
    /// under a directory that does not or under a file, a name too long
    /// or "." or "..", a symlink target past `MAXPATHLEN`, unlink of a
    /// directory, a hard link to one, rmdir of a file or of a directory
    /// with entries, removing an attribute that is not there; or any on a
    /// filesystem with no skeleton (or one whose number 1 is taken), or on
    /// a snapshot.
    fn misuse_zpl(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let model = if self.rng.gen_bool(0.8) { src } else { dst };
        let rng = &mut self.rng;
        let zpl_fss: Vec<&str> = model
            .filesystems()
            .filter(|f| model.tree(f).is_some())
            .collect();
        let fs = zpl_fss.choose(rng)?.to_string();
        let tree = model.tree(&fs)?;
        let names: Vec<&String> = tree.names.keys().collect();
        let any = |rng: &mut ChaCha8Rng| names.choose(rng).map(|p| p.to_string());
        let files = tree.non_dirs();
        let dirs: Vec<String> = tree.dirs().into_iter().filter(|d| !d.is_empty()).collect();
        let n = rng.gen_range(0..1000);
        let step = match rng.gen_range(0..12) {
            0 => Step::Mkdir {
                path: any(rng)?,
                mode: 0o755,
                fs,
            },
            1 => Step::MkFile {
                path: format!("gone{n}/f"),
                mode: 0o644,
                blksz: 512,
                count: 1,
                fs,
            },
            2 => Step::Symlink {
                path: format!("{}/l{n}", files.choose(rng)?),
                target: "x".to_string(),
                fs,
            },
            3 => Step::Mkdir {
                path: match rng.gen_range(0..3) {
                    0 => "n".repeat(256),
                    1 => ".".to_string(),
                    _ => format!("{}/..", dirs.choose(rng)?),
                },
                mode: 0o755,
                fs,
            },
            4 => Step::Symlink {
                path: format!("l{n}"),
                target: "t/".repeat(rng.gen_range(513..700)),
                fs,
            },
            5 => Step::Unlink {
                path: dirs.choose(rng)?.clone(),
                fs,
            },
            6 => Step::Link {
                path: format!("h{n}"),
                existing: dirs.choose(rng)?.clone(),
                fs,
            },
            7 => Step::Rmdir {
                path: if rng.gen_bool(0.5) {
                    files.choose(rng)?.clone()
                } else {
                    dirs.iter().find(|d| tree.entries_of(d) > 0)?.clone()
                },
                fs,
            },
            8 => Step::Xattr {
                path: any(rng)?,
                name: "user.none".to_string(),
                len: 0,
                fill: 0,
                fs,
            },
            9 => Step::Unlink {
                path: format!("gone{n}"),
                fs,
            },
            10 => {
                // A filesystem without the skeleton, or one with objects.
                let other: Vec<&str> = model
                    .filesystems()
                    .filter(|f| f.contains('/') && model.tree(f).is_none())
                    .collect();
                let other = other.choose(rng)?.to_string();
                if rng.gen_bool(0.5) {
                    Step::ZplInit { fs: other }
                } else {
                    Step::Mkdir {
                        fs: other,
                        path: format!("d{n}"),
                        mode: 0o755,
                    }
                }
            }
            _ => Step::Mkdir {
                fs: model.latest_snapshot(&fs)?.0.to_string(),
                path: format!("d{n}"),
                mode: 0o755,
            },
        };
        Some(Misuse::Step(Box::new(step)))
    }

    /// A name that is too long, malformed, the pool's own, under a parent
    /// that does not exist (or in a pool that does not), or taken.
    fn misuse_create(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let fs = pick_fs(&mut self.rng, src, dst)?;
        let pool = fs.split('/').next().unwrap_or(SRC).to_string();
        let rng = &mut self.rng;
        let fs = match rng.gen_range(0..6) {
            0 => long_name(rng, &fs, '/'),
            1 => format!("{fs}/{}", BAD_COMPONENTS.choose(rng).expect("names")),
            2 => pool,
            3 => format!("{fs}/gone/n{}", rng.gen_range(0..100)),
            // In a pool that does not exist (the source's host is asked).
            4 => format!("nopool/n{}", rng.gen_range(0..100)),
            _ => fs,
        };
        Some(Misuse::Step(Box::new(Step::CreateFs { fs })))
    }

    /// A snapshot that exists, a name too long or malformed, or of a
    /// filesystem that does not exist.
    fn misuse_snapshot(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let fs = pick_fs(&mut self.rng, src, dst)?;
        let model = model_of(&fs, src, dst);
        let rng = &mut self.rng;
        let snap = match rng.gen_range(0..6) {
            // `snapshot -r` with a name that fits the top but not a
            // filesystem below it.
            5 => {
                model
                    .filesystems()
                    .find(|c| c.starts_with(&format!("{fs}/")))?;
                let room = (MAXNAMELEN - 1).checked_sub(fs.len() + 1)?;
                return Some(Misuse::Step(Box::new(Step::Snapshot {
                    snap: format!("{fs}@{}", "s".repeat(room.max(1))),
                    recursive: true,
                })));
            }
            0 => long_name(rng, &fs, '@'),
            1 => format!("{fs}@{}", BAD_COMPONENTS.choose(rng).expect("names")),
            2 => format!("{fs}@a@b"),
            3 => format!("{fs}gone@s{}", rng.gen_range(0..100)),
            _ => model.latest_snapshot(&fs)?.0.to_string(),
        };
        Some(Misuse::Step(Box::new(Step::Snapshot {
            snap,
            recursive: false,
        })))
    }

    /// A filesystem with snapshots or children, a snapshot with clones,
    /// the pool's root or a name that does not exist; or, when no
    /// filesystem has a child yet, the step that makes one.
    fn misuse_destroy(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Result<Misuse, Step>> {
        let rng = &mut self.rng;
        let destroy = |name: &str| Ok(Misuse::Step(Box::new(Step::Destroy { name: name.into() })));
        match rng.gen_range(0..5) {
            0 => {
                let with: Vec<&str> = src
                    .filesystems()
                    .filter(|f| f.contains('/') && !src.snapshots_of(f).is_empty())
                    .collect();
                Some(destroy(with.choose(rng)?))
            }
            1 => {
                let parents: Vec<&str> = src
                    .filesystems()
                    .filter(|f| f.contains('/') && !src.children_of(f).is_empty())
                    .collect();
                if let Some(parent) = parents.choose(rng) {
                    return Some(destroy(parent));
                }
                if src.filesystems().count() > 8 {
                    return None;
                }
                let fs = pick_fs(rng, src, dst).filter(|f| f.starts_with(SRC))?;
                let n = self.name();
                Some(Err(Step::CreateFs {
                    fs: format!("{fs}/k{n}"),
                }))
            }
            2 => {
                let cloned: Vec<&String> = src
                    .datasets
                    .keys()
                    .filter(|n| n.contains('@') && !src.clones_of(n).is_empty())
                    .collect();
                Some(destroy(cloned.choose(rng)?))
            }
            3 => Some(destroy([SRC, DST].choose(rng).expect("pools"))),
            _ => Some(destroy(&format!("{SRC}/gone{}", rng.gen_range(0..100)))),
        }
    }

    /// Back to a snapshot with later ones after it, or a filesystem with
    /// no snapshot at all.
    fn misuse_rollback(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let fs = pick_fs(&mut self.rng, src, dst)?;
        let model = model_of(&fs, src, dst);
        let snaps = model.snapshots_of(&fs);
        let fs = if snaps.len() >= 2 && self.rng.gen_bool(0.7) {
            snaps[self.rng.gen_range(0..snaps.len() - 1)].0.to_string()
        } else {
            fs
        };
        Some(Misuse::Step(Box::new(Step::Rollback { fs })))
    }

    /// A clone of a filesystem (not a snapshot), of a snapshot that does
    /// not exist, or onto a name that exists.
    fn misuse_clone(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let fs = pick_fs(&mut self.rng, src, dst)?;
        let pool = fs.split('/').next().unwrap_or(SRC).to_string();
        let n = self.name();
        let rng = &mut self.rng;
        let (origin, fs) = match rng.gen_range(0..3) {
            0 => (fs, format!("{pool}/c{n}")),
            1 => (format!("{fs}@gone{n}"), format!("{pool}/c{n}")),
            _ => {
                let model = model_of(&fs, src, dst);
                (model.latest_snapshot(&fs)?.0.to_string(), fs)
            }
        };
        Some(Misuse::Step(Box::new(Step::Clone { origin, fs })))
    }

    /// A claim of an allocated number, of the meta-dnode's, or past the
    /// last; an object of a shape no object may have.
    fn misuse_claim(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let fs = pick_fs(&mut self.rng, src, dst)?;
        let model = model_of(&fs, src, dst);
        let rng = &mut self.rng;
        let mut shape = random_shape(rng);
        let object = match rng.gen_range(0..4) {
            0 => Some(
                **model
                    .get(&fs)?
                    .objects
                    .keys()
                    .collect::<Vec<_>>()
                    .choose(rng)?,
            ),
            1 => Some(0),
            2 => Some(DN_MAX_OBJECT + rng.gen_range(0..1000)),
            _ => {
                bad_shape(rng, &mut shape);
                rng.gen_bool(0.5).then(|| rng.gen_range(1..1000))
            }
        };
        Some(Misuse::Step(Box::new(Step::Alloc { fs, object, shape })))
    }

    /// Steps on an object that does not exist, writes into a snapshot,
    /// past 2^64 or past a single odd-sized block, a spill block of a size
    /// no block has or where no spill pointer fits, a reclaim to a shape
    /// no object may have.
    fn misuse_object(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let (fs, object, shape) = pick_object(&mut self.rng, src, dst, true)?;
        let model = model_of(&fs, src, dst);
        let rng = &mut self.rng;
        let fill = rng.r#gen();
        let top = model.get(&fs)?.objects.keys().last().copied().unwrap_or(0);
        let missing = top + rng.gen_range(1..100);
        let step = match rng.gen_range(0..7) {
            0 => Step::FreeObject {
                fs,
                object: missing,
            },
            1 => Step::Write {
                fs,
                object: if rng.gen_bool(0.5) { missing } else { object },
                offset: u64::MAX - rng.gen_range(0..4096),
                len: rng.gen_range(4097..8192),
                fill,
            },
            2 => {
                let blksz = u64::from(shape.blksz);
                Step::Write {
                    fs,
                    object,
                    offset: rng.gen_range(0..2 * blksz),
                    len: blksz + 1,
                    fill,
                }
            }
            3 => {
                let snap = model.latest_snapshot(&fs)?.0.to_string();
                let object = **model
                    .get(&snap)?
                    .objects
                    .keys()
                    .collect::<Vec<_>>()
                    .choose(rng)?;
                Step::Write {
                    fs: snap,
                    object,
                    offset: 0,
                    len: 512,
                    fill,
                }
            }
            4 => Step::Spill {
                fs,
                object,
                len: *[100u64, 513, 4000, 256 << 10].choose(rng).expect("sizes"),
                fill,
            },
            5 => Step::Spill {
                fs,
                object,
                len: 512,
                fill,
            },
            _ => {
                let mut bad = shape;
                bad_shape(rng, &mut bad);
                if rng.gen_bool(0.5) {
                    Step::Reclaim {
                        fs,
                        object,
                        shape: bad,
                    }
                } else {
                    // A number never allocated, or the meta-dnode's.
                    Step::Reclaim {
                        fs,
                        object: if rng.gen_bool(0.75) { missing } else { 0 },
                        shape,
                    }
                }
            }
        };
        Some(Misuse::Step(Box::new(step)))
    }

    /// A new block size for an object with data past its first block, or
    /// one no block may have, or a bonus longer than its dnode has room for.
    fn misuse_shape(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        let (fs, object, shape) = pick_object(&mut self.rng, src, dst, true)?;
        let rng = &mut self.rng;
        if rng.gen_bool(0.5) {
            // A size no block may have (not a multiple of 512, or past
            // 128 KiB) now and then.
            let blksz = **[512u32, 4096, 16384, 131072, 1000, 262_144]
                .iter()
                .filter(|b| **b != shape.blksz)
                .collect::<Vec<_>>()
                .choose(rng)?;
            return Some(Misuse::Blocksize { fs, object, blksz });
        }
        let nblkptr = engine::dmu::dnode::nblkptr_for_bonus(shape.bonustype, shape.bonuslen);
        let room = crate::model::DN_MAX_BONUSLEN - (usize::from(nblkptr) - 1) * 128;
        Some(Misuse::Bonuslen {
            fs,
            object,
            len: room + rng.gen_range(1..200),
        })
    }

    /// `zfs set` of a value the property does not take, of a property that
    /// does not exist, or on a snapshot.
    fn misuse_set(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Misuse> {
        const BAD: [(&str, &str); 11] = [
            ("recordsize", "1000"),
            ("recordsize", "256K"),
            ("checksum", "crc32"),
            ("compression", "gzip-9"),
            ("compression", "gzip"),
            ("compression", "lz5"),
            ("copies", "4"),
            ("atime", "maybe"),
            ("mountpoint", "relative/path"),
            ("nosuchprop", "1"),
            // Swapped below for a value of 8 KiB (E2BIG).
            ("org.zsim:big", ""),
        ];
        let rng = &mut self.rng;
        let model = if rng.gen_bool(0.5) { src } else { dst };
        let names: Vec<&String> = model.datasets.keys().filter(|n| n.contains('/')).collect();
        let fs = names.choose(rng)?.to_string();
        let (prop, value) = BAD.choose(rng)?;
        let value = if value.is_empty() {
            "v".repeat(8192)
        } else {
            value.to_string()
        };
        Some(Misuse::Step(Box::new(Step::SetProp {
            fs,
            prop: prop.to_string(),
            value,
        })))
    }

    /// `zfs send -i` from a later snapshot, from the snapshot itself, from
    /// another filesystem's, or of a filesystem rather than a snapshot;
    /// `zfs send -R` of a filesystem, or of a tree some filesystem of which
    /// lacks the snapshot.
    fn misuse_send(&mut self, src: &PoolModel) -> Option<Misuse> {
        let snaps = snapshots(src);
        let rng = &mut self.rng;
        let snap = snaps.choose(rng)?.clone();
        let fs = snap.split('@').next().unwrap_or_default().to_string();
        Some(match rng.gen_range(0..9) {
            0 => Misuse::SendOnly {
                snap: fs,
                from: None,
            },
            // `zfs send -nv`: the estimate's own checks.
            6 => Misuse::Estimate {
                snap: fs,
                from: None,
            },
            7 => Misuse::Estimate {
                from: Some(snap.clone()),
                snap,
            },
            8 => Misuse::Estimate {
                from: Some(snaps.choose(rng)?.clone()),
                snap,
            },
            1 => Misuse::SendOnly {
                from: Some(fs),
                snap,
            },
            2 => Misuse::SendOnly {
                from: Some(snap.clone()),
                snap,
            },
            3 => Misuse::SendOnly {
                from: Some(snaps.choose(rng)?.clone()),
                snap,
            },
            // `-R` of a filesystem, or of a snapshot whose name some
            // filesystem below lacks (kept only if one does).
            4 => Misuse::SendReplicate { snap: fs },
            _ => Misuse::SendReplicate { snap },
        })
    }

    /// A send whose receive the target must refuse with exactly one errno
    /// (`expect_receive`): a full stream onto an existing filesystem or
    /// into a name ZFS refuses or one too long, an incremental from a snapshot the target
    /// lacks, onto a filesystem that does not exist or changed since; a
    /// clone stream onto an existing filesystem, or with an origin that is
    /// missing, not a snapshot, or not the stream's source; a `-R` stream
    /// into a snapshot's name.
    fn misuse_receive(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        let snaps = snapshots(src);
        let targets: Vec<&str> = dst.filesystems().filter(|f| f.contains('/')).collect();
        let dst_names: Vec<&String> = dst.datasets.keys().filter(|n| n.contains('/')).collect();
        // `zfs recv` of a `-R` stream into a snapshot's name: EINVAL once
        // the replication header is read.
        if self.rng.gen_ratio(1, 8) {
            let rng = &mut self.rng;
            let target = match targets.choose(rng) {
                Some(t) if rng.gen_bool(0.5) => format!("{t}@s{}", rng.gen_range(0..9)),
                _ => format!("{DST}/r{}@s{}", rng.gen_range(0..1000), rng.gen_range(0..9)),
            };
            return Some(Step::Misuse(Misuse::Step(Box::new(Step::Send {
                snap: snaps.choose(rng)?.clone(),
                from: None,
                target,
                dedup: false,
                force: false,
                origin: None,
                intermediate: false,
                replicate: true,
            }))));
        }
        for _ in 0..8 {
            let rng = &mut self.rng;
            let snap = snaps.choose(rng)?.clone();
            let fs = snap.split('@').next().unwrap_or_default();
            let clone_of = src.get(fs).and_then(|d| d.origin.clone());
            let (from, origin) = match (rng.gen_range(0..4), clone_of) {
                // A clone stream, from the clone's origin, with an origin
                // on the target side drawn from whatever is there.
                (0, Some(o)) if src.is_before(&snap, &o) => {
                    let origin = match dst_names.choose(rng) {
                        Some(n) if rng.gen_bool(0.8) => n.to_string(),
                        _ => format!("{DST}/r{}@s{}", rng.gen_range(0..1000), rng.gen_range(0..9)),
                    };
                    (Some(o), Some(origin))
                }
                // From an earlier snapshot of the same filesystem: a stream
                // from a clone's origin needs `-o origin`, which this leaves
                // out.
                (0 | 1, _) => (None, None),
                _ => (
                    snaps
                        .choose(rng)
                        .filter(|f| f.starts_with(&format!("{fs}@")) && src.is_before(&snap, f))
                        .cloned(),
                    None,
                ),
            };
            let target = match (rng.gen_range(0..7), targets.choose(rng)) {
                (0, _) | (_, None) => format!("{DST}/r{}", rng.gen_range(0..1000)),
                (1, _) => format!("{DST}/{}", BAD_COMPONENTS.choose(rng)?),
                // With the snapshot's name, longer than a dataset name may be.
                (6, _) => format!("{DST}/{}", "n".repeat(rng.gen_range(245..260))),
                // No pool in the name: a pool's root by name.
                (2, _) => format!("r{}", rng.gen_range(0..1000)),
                (_, Some(t)) => t.to_string(),
            };
            let force = rng.gen_bool(0.3);
            let from_guid = from.as_ref().and_then(|f| src.get(f)).map(|d| d.guid);
            let source = src.get(&snap)?;
            let name = snap.split('@').nth(1).unwrap_or_default();
            let expect =
                dst.expect_receive(source, from_guid, &target, name, force, origin.as_deref());
            if matches!(&expect, Expect::Refuse(errnos) if errnos.len() == 1) {
                return Some(Step::Misuse(Misuse::Step(Box::new(Step::Send {
                    snap,
                    from,
                    target,
                    dedup: false,
                    force,
                    origin,
                    intermediate: false,
                    replicate: false,
                }))));
            }
        }
        None
    }
}

/// `base` and a separator followed by a component that makes the whole
/// name `MAXNAMELEN` bytes or longer.
fn long_name(rng: &mut ChaCha8Rng, base: &str, separator: char) -> String {
    let len = MAXNAMELEN + rng.gen_range(0..40) - base.len() - 1;
    format!("{base}{separator}{}", "n".repeat(len))
}

/// Makes one property of `shape` one no object may have.
fn bad_shape(rng: &mut ChaCha8Rng, shape: &mut Shape) {
    match rng.gen_range(0..4) {
        0 => shape.dn_type = *[0u8, 60, 0x7f].choose(rng).expect("types"),
        1 => shape.bonustype = 99,
        2 => shape.blksz = *[0u32, 100, 1000, 256 << 10].choose(rng).expect("sizes"),
        _ => shape.bonuslen = crate::model::DN_MAX_BONUSLEN + rng.gen_range(1..100),
    }
}
