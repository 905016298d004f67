//! Interop with a real ZFS both ways, checked file by file, and the same
//! refusals with the same errnos.
//!
//! # real → zsim → real
//!
//! [`real_zsim_real_every_snapshot_matches_its_manifest`]: every fixture
//! chain (streams a real zfs-fuse 0.7.0 wrote) is received with `sim recv`
//! into a pool image; then `sim send` sends every snapshot back, the first
//! of each chain as a full stream (the clone `fxp/cln@m1` as a clone stream
//! from `fxp/corigin@o`), each later one as an `-i` stream from the one
//! before (`-D` for the dedup chain), with `--byte-order native` and with
//! `--byte-order big`. A real zfs-fuse daemon (`common/zfs_fuse.rs`, started
//! with `-x` so that extended attributes are visible) receives the streams of
//! each byte order under a filesystem of its own (`real/native/...`,
//! `real/big/...`), the whole chain with plain `zfs recv` (no `-F`). Each
//! snapshot's guid must be the manifest's `to_guid` (the guid travelled real
//! → zsim → real). Then every snapshot is `zfs clone`d, the clone mounted
//! through FUSE, and every entry compared with that snapshot's
//! `*.manifest.json`: the set of paths, and of each entry every field the
//! manifest has (type, size, mode, sha256, symlink target, object number,
//! nlink, uid, gid, mtime_ns, xattrs with their size, sha256 and value).
//!
//! Why clones: zfs-fuse 0.7.0 has no `.zfs/snapshot` directory (ENOENT), and
//! mounting the target itself between incrementals does not work for every
//! chain: listing extended attributes through a `-x` zfs-fuse writes (it
//! creates the xattr directory an entry lacks), so the next `zfs recv` says "destination has been modified since most recent snapshot"; with
//! `readonly=on` it answers ENOTSUP to `llistxattr` instead. A clone takes
//! those writes and leaves the received filesystem alone.
//!
//! The chains: `chain_c1_full` → `chain_c1_c2_i` → `chain_c2_c3_i` →
//! `chain_c3_c4_i`; the same four snapshots received from `chain_c1_full` +
//! the compound `-I` stream `chain_c1_c4_I` (zsim has no `-I` send: they go
//! back as `-i` streams); `clone_origin_full` + `clone_i` (a clone received
//! with `-o origin=`; zfs-fuse finds the origin by guid and the received
//! filesystem's `origin` must be the received `corigin@o`); `dedup_full_D` +
//! `dedup_i_D`; `small_full`; `sparse_full`; `large_full`; `empty_full`;
//! `manyfiles_full` + `manyfiles_i`; `xattr_full` + `xattr_i`;
//! `incr_base_full` + `incr_i`.
//!
//! Not checked this way: `replication_R`, a `zfs send -R` stream (its files
//! are checked against the manifest in verify.rs; a tree with a child and a
//! clone, sent by zfs-fuse with `-R` then `-R -I`, received by zsim, sent
//! back by zsim with `-R` and received by zfs-fuse with `recv -d`, is
//! checked by [`a_replication_tree_from_zfs_fuse_is_received_full_then_incremental`]).
//! The root directory's `object` is not compared: the
//! manifest has its ZFS object number (3), FUSE reports inode 1 for every
//! mount root (see the fixtures' README).
//!
//! # The same mistakes, the same refusals
//!
//! [`zsim_and_zfs_fuse_refuse_the_same_mistakes_with_the_same_errno`]: a
//! table of mistakes (incremental onto a modified target, a snapshot name
//! that exists, a source guid the target does not have, a flipped bit, a
//! truncated stream, ...), each done to a zfs-fuse filesystem with `zfs recv`
//! and to a zsim filesystem with `sim recv`, both prepared from the same
//! fixtures. Both must refuse; zfs-fuse's message (libzfs `zfs_receive`
//! turns the ioctl's errno into a sentence, see [`LIBZFS_MESSAGES`]) must
//! name the errno the case is about, and zsim's error line must name the
//! same errno. Both targets must be as before (zfs-fuse: names, guids,
//! creation, referenced and used bytes of the filesystem and its snapshots;
//! zsim: its `sim zdb` rows and the `sim ls --hash` listing of the head) and
//! the zsim pool must pass `sim zdb -b` at the end. The table is printed.
//!
//! One row differs on purpose and says so: the same incremental received
//! twice (its snapshot name exists *and* the target's latest snapshot is no
//! longer its source). zfs-fuse 0.7.0's `dmu_recv_begin` checks the source
//! snapshot first (ENODEV); zsim follows its seed, illumos 2013
//! `recv_begin_check_existing_impl`, which checks the name first (EEXIST).
//!
//! Not in the table: an incremental into a filesystem that does not exist.
//! zsim refuses it (ENOENT), but zfs-fuse's libzfs looks the source snapshot
//! up by guid and receives into the filesystem that has it, under another
//! name: there is no refusal to compare.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::zfs_fuse::{Input, Output, Run, ZfsFuse, run};
use common::{Scratch, fixture, fixture_path, manifest};
use engine::stream::{DMU_BACKUP_MAGIC, Record, StreamReader};
use serde_json::Value;

fn sim(args: &[&str], input: Input<'_>, output: Output<'_>) -> Run {
    run(Path::new(env!("CARGO_BIN_EXE_sim")), args, input, output)
}

fn hex_sha256(data: &[u8]) -> String {
    engine::checksum::sha256(data)
        .0
        .iter()
        .map(|w| format!("{w:016x}"))
        .collect()
}

/// Standard base64 with padding, as the manifests' `value_b64`.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Comparing a mounted filesystem with a manifest
// ---------------------------------------------------------------------------

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in a path")
}

/// `llistxattr`: the names of a file's extended attributes.
fn xattr_names(path: &Path) -> std::io::Result<Vec<String>> {
    let p = c_path(path);
    let mut buf = vec![0u8; 64 << 10];
    // SAFETY: `p` is NUL-terminated; `buf` is writable for `buf.len()` bytes.
    let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// `lgetxattr`: one extended attribute's value.
fn xattr_value(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let p = c_path(path);
    let n = CString::new(name).expect("no NUL in a name");
    let mut buf = vec![0u8; 1 << 16];
    // SAFETY: `p` and `n` are NUL-terminated; `buf` is writable for
    // `buf.len()` bytes (an xattr value is at most 64 KiB on Linux).
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// Every entry under `root`, not following symlinks: `"."` and relative
/// paths as the manifests write them.
fn walk(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    found.insert(".".to_string(), root.to_path_buf());
    let mut dirs = vec![(String::new(), root.to_path_buf())];
    while let Some((rel, dir)) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                dirs.push((rel.clone(), path.clone()));
            }
            found.insert(rel, path);
        }
    }
    found
}

fn type_name(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "file"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else {
        "other"
    }
}

/// The differences between one manifest entry's `xattrs` and the file's.
fn compare_xattrs(path: &Path, want: &Value, diffs: &mut Vec<String>, rel: &str) {
    let Some(want) = want.as_object() else {
        diffs.push(format!("{rel}: xattrs in the manifest is not an object"));
        return;
    };
    let names = match xattr_names(path) {
        Ok(names) => names,
        Err(e) => {
            diffs.push(format!("{rel}: llistxattr: {e}"));
            return;
        }
    };
    let got: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let listed: BTreeSet<&str> = want.keys().map(String::as_str).collect();
    if got != listed {
        diffs.push(format!("{rel}: xattr names {got:?}, manifest {listed:?}"));
    }
    for (name, fields) in want {
        let Ok(value) = xattr_value(path, name) else {
            continue;
        };
        for (field, expect) in fields.as_object().into_iter().flatten() {
            let actual = match field.as_str() {
                "size" => Value::from(value.len()),
                "sha256" => Value::from(hex_sha256(&value)),
                "value_b64" => Value::from(base64(&value)),
                other => {
                    diffs.push(format!(
                        "{rel}: xattr {name}: unknown manifest field {other}"
                    ));
                    continue;
                }
            };
            if &actual != expect {
                diffs.push(format!(
                    "{rel}: xattr {name} {field}: {actual}, manifest {expect}"
                ));
            }
        }
    }
}

/// Compares the tree mounted at `root` with a manifest's `files`: the same
/// paths, and for each entry every field the manifest has. Returns the
/// number of entries and the differences.
fn compare_with_manifest(root: &Path, m: &Value) -> (usize, Vec<String>) {
    let files = m["files"].as_array().expect("manifest files");
    let on_disk = walk(root);
    let mut diffs = Vec::new();
    let listed: BTreeSet<&str> = files
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    for rel in on_disk.keys() {
        if !listed.contains(rel.as_str()) {
            diffs.push(format!("{rel}: not in the manifest"));
        }
    }
    for f in files {
        let rel = f["path"].as_str().expect("path");
        let Some(path) = on_disk.get(rel) else {
            diffs.push(format!("{rel}: missing"));
            continue;
        };
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                diffs.push(format!("{rel}: {e}"));
                continue;
            }
        };
        for (key, want) in f.as_object().expect("entry") {
            let got = match key.as_str() {
                "path" => continue,
                "type" => Value::from(type_name(&meta)),
                "size" => Value::from(meta.size()),
                "mode" => Value::from(format!("{:04o}", meta.mode() & 0o7777)),
                "sha256" => match std::fs::read(path) {
                    Ok(data) => Value::from(hex_sha256(&data)),
                    Err(e) => Value::from(format!("unreadable: {e}")),
                },
                "target" => match std::fs::read_link(path) {
                    Ok(t) => Value::from(String::from_utf8_lossy(t.as_os_str().as_bytes())),
                    Err(e) => Value::from(format!("not a symlink: {e}")),
                },
                // FUSE gives the mount root inode 1 (README).
                "object" if rel == "." => continue,
                "object" => Value::from(meta.ino()),
                "nlink" => Value::from(meta.nlink()),
                "uid" => Value::from(meta.uid()),
                "gid" => Value::from(meta.gid()),
                "mtime_ns" => Value::from(meta.mtime() * 1_000_000_000 + meta.mtime_nsec()),
                "xattrs" => {
                    compare_xattrs(path, want, &mut diffs, rel);
                    continue;
                }
                other => {
                    diffs.push(format!("{rel}: unknown manifest field {other}"));
                    continue;
                }
            };
            if &got != want {
                diffs.push(format!("{rel}: {key} {got}, manifest {want}"));
            }
        }
    }
    (files.len(), diffs)
}

// ---------------------------------------------------------------------------
// real → zsim → real
// ---------------------------------------------------------------------------

/// One filesystem's snapshots, as the fixtures bring them.
struct Chain {
    /// `fxp/FS` in zsim, `real/ORDER/FS` in zfs-fuse.
    fs: &'static str,
    /// What `sim recv` receives into it, in order.
    fixtures: &'static [&'static str],
    /// The clone origin (`-o origin=fxp/...`), a snapshot of an earlier chain.
    origin: Option<&'static str>,
    /// Every snapshot, oldest first, and the fixture whose manifest
    /// describes it.
    snapshots: &'static [(&'static str, &'static str)],
    /// Sent with `-D`.
    dedup: bool,
}

const CHAINS: &[Chain] = &[
    Chain {
        fs: "chain",
        fixtures: &[
            "chain_c1_full",
            "chain_c1_c2_i",
            "chain_c2_c3_i",
            "chain_c3_c4_i",
        ],
        origin: None,
        snapshots: &[
            ("c1", "chain_c1_full"),
            ("c2", "chain_c1_c2_i"),
            ("c3", "chain_c2_c3_i"),
            ("c4", "chain_c3_c4_i"),
        ],
        dedup: false,
    },
    Chain {
        fs: "chain_all",
        fixtures: &["chain_c1_full", "chain_c1_c4_I"],
        origin: None,
        snapshots: &[
            ("c1", "chain_c1_full"),
            ("c2", "chain_c1_c2_i"),
            ("c3", "chain_c2_c3_i"),
            ("c4", "chain_c1_c4_I"),
        ],
        dedup: false,
    },
    Chain {
        fs: "corigin",
        fixtures: &["clone_origin_full"],
        origin: None,
        snapshots: &[("o", "clone_origin_full")],
        dedup: false,
    },
    Chain {
        fs: "cln",
        fixtures: &["clone_i"],
        origin: Some("corigin@o"),
        snapshots: &[("m1", "clone_i")],
        dedup: false,
    },
    Chain {
        fs: "dedup",
        fixtures: &["dedup_full_D", "dedup_i_D"],
        origin: None,
        snapshots: &[("d1", "dedup_full_D"), ("d2", "dedup_i_D")],
        dedup: true,
    },
    Chain {
        fs: "small",
        fixtures: &["small_full"],
        origin: None,
        snapshots: &[("s1", "small_full")],
        dedup: false,
    },
    Chain {
        fs: "sparse",
        fixtures: &["sparse_full"],
        origin: None,
        snapshots: &[("s1", "sparse_full")],
        dedup: false,
    },
    Chain {
        fs: "large",
        fixtures: &["large_full"],
        origin: None,
        snapshots: &[("s1", "large_full")],
        dedup: false,
    },
    Chain {
        fs: "empty",
        fixtures: &["empty_full"],
        origin: None,
        snapshots: &[("s0", "empty_full")],
        dedup: false,
    },
    Chain {
        fs: "many",
        fixtures: &["manyfiles_full", "manyfiles_i"],
        origin: None,
        snapshots: &[("m1", "manyfiles_full"), ("m2", "manyfiles_i")],
        dedup: false,
    },
    Chain {
        fs: "xat",
        fixtures: &["xattr_full", "xattr_i"],
        origin: None,
        snapshots: &[("x1", "xattr_full"), ("x2", "xattr_i")],
        dedup: false,
    },
    Chain {
        fs: "incr",
        fixtures: &["incr_base_full", "incr_i"],
        origin: None,
        snapshots: &[("base", "incr_base_full"), ("next", "incr_i")],
        dedup: false,
    },
];

const ORDERS: [&str; 2] = ["native", "big"];

/// A stream `sim send` wrote.
struct Sent {
    path: PathBuf,
    toguid: u64,
    byref: usize,
}

/// The BEGIN's toguid and the number of WRITE_BYREF records of a stream
/// file; its BEGIN magic must be in `order`.
fn inspect(path: &Path, order: &str) -> (u64, usize) {
    let bytes = std::fs::read(path).expect("stream file");
    let magic: [u8; 8] = bytes[8..16].try_into().unwrap();
    let want = if order == "big" {
        DMU_BACKUP_MAGIC.to_be_bytes()
    } else {
        DMU_BACKUP_MAGIC.to_ne_bytes()
    };
    assert_eq!(magic, want, "{}: BEGIN magic bytes", path.display());
    let mut reader = StreamReader::new(&bytes[..]);
    let (mut toguid, mut byref) = (None, 0);
    while let Some(entry) = reader.next_record().expect("a readable stream") {
        match entry.record {
            Record::Begin(b) if toguid.is_none() => toguid = Some(b.toguid),
            Record::WriteByref(_) => byref += 1,
            _ => {}
        }
    }
    (toguid.expect("a BEGIN"), byref)
}

fn guid_of(m: &Value) -> u64 {
    u64::from_str_radix(m["to_guid"].as_str().expect("to_guid"), 16).expect("hex guid")
}

/// Receives every chain into a zsim pool image and sends every snapshot
/// back, in both byte orders: `streams[order][chain][snapshot]`.
fn zsim_roundtrip(dir: &Scratch) -> BTreeMap<&'static str, Vec<Vec<Sent>>> {
    let image = dir.join("fxp.img");
    let image = image.to_str().unwrap();
    sim(
        &["pool", "create", image, "--size", "512M", "--seed", "5"],
        Input::Null,
        Output::Capture,
    )
    .expect_success();
    for chain in CHAINS {
        let fs = format!("fxp/{}", chain.fs);
        let origin = chain.origin.map(|o| format!("origin=fxp/{o}"));
        for name in chain.fixtures {
            let mut args = vec!["recv", image, &fs];
            if let Some(o) = &origin {
                args.extend(["-o", o]);
            }
            let got = sim(&args, Input::File(&fixture_path(name)), Output::Capture);
            assert!(got.success(), "sim recv {fs} < {name}: {}", got.stderr);
        }
    }
    let mut streams = BTreeMap::new();
    for order in ORDERS {
        let mut per_chain = Vec::new();
        for chain in CHAINS {
            let mut sent = Vec::new();
            for (i, (snap, _)) in chain.snapshots.iter().enumerate() {
                let snapshot = format!("fxp/{}@{snap}", chain.fs);
                let from = match (i, chain.origin) {
                    (0, Some(origin)) => Some(format!("fxp/{origin}")),
                    (0, None) => None,
                    _ => Some(format!("@{}", chain.snapshots[i - 1].0)),
                };
                let path = dir.join(&format!("{}@{snap}.{order}.zsend", chain.fs));
                let mut args = vec!["send", image, &snapshot, "--byte-order", order];
                if let Some(from) = &from {
                    args.extend(["-i", from]);
                }
                if chain.dedup {
                    args.push("-D");
                }
                let out = sim(&args, Input::Null, Output::File(&path));
                assert!(
                    out.success(),
                    "sim send {snapshot} ({order}): {}",
                    out.stderr
                );
                let (toguid, byref) = inspect(&path, order);
                sent.push(Sent {
                    path,
                    toguid,
                    byref,
                });
            }
            per_chain.push(sent);
        }
        streams.insert(order, per_chain);
    }
    streams
}

#[test]
fn real_zsim_real_every_snapshot_matches_its_manifest() {
    let Some(zfs) = ZfsFuse::start_with("real", &["-x"]) else {
        return;
    };
    let started = Instant::now();
    let dir = Scratch::new("roundtrip");
    let streams = zsim_roundtrip(&dir);
    eprintln!(
        "zsim received and sent everything in {:?}",
        started.elapsed()
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    println!(
        "{:<7} {:<22} {:<16} {:>7}  result",
        "order", "snapshot", "manifest", "entries"
    );
    for order in ORDERS {
        let parent = format!("real/{order}");
        zfs.zfs_ok(&["create", "-o", "atime=off", &parent]);
        // Where each snapshot is cloned to be mounted.
        let check = format!("{parent}/check");
        for (chain, sent) in CHAINS.iter().zip(&streams[order]) {
            let target = format!("{parent}/{}", chain.fs);
            // The whole chain first, as a backup is restored: nothing but
            // `zfs recv` touches the target.
            for (i, ((snap, fixture_name), s)) in chain.snapshots.iter().zip(sent).enumerate() {
                let m = manifest(fixture_name);
                let what = format!("{target}@{snap} ({order}, manifest {fixture_name})");
                assert!(
                    m["to"]
                        .as_str()
                        .is_some_and(|t| t.ends_with(&format!("@{snap}"))),
                    "{what}: the manifest describes {}",
                    m["to"]
                );
                if chain.dedup && m["record_counts"]["WRITE_BYREF"].as_u64() > Some(0) {
                    assert!(s.byref > 0, "{what}: the -D stream has no WRITE_BYREF");
                }
                let received = zfs.recv_file(&target, &s.path, &[]);
                assert!(
                    received.success(),
                    "{what}: zfs recv refused zsim's stream: {}",
                    received.stderr
                );
                let snapshot = format!("{target}@{snap}");
                assert_eq!(s.toguid, guid_of(&m), "{what}: zsim sent another guid");
                assert_eq!(zfs.guid(&snapshot), Some(s.toguid), "{what}: guid");
                if let (0, Some(origin)) = (i, chain.origin) {
                    let got = zfs.zfs_ok(&["get", "-H", "-o", "value", "origin", &target]);
                    assert_eq!(got.trim(), format!("{parent}/{origin}"), "{what}: origin");
                }
            }
            // Then every snapshot, through a clone of it: reading extended
            // attributes through zfs-fuse writes (it gives a directory that
            // has none an xattr directory), which must not touch the target.
            for (snap, fixture_name) in chain.snapshots {
                let m = manifest(fixture_name);
                let snapshot = format!("{target}@{snap}");
                let what = format!("{snapshot} ({order}, manifest {fixture_name})");
                zfs.zfs_ok(&["clone", &snapshot, &check]);
                let root = zfs
                    .mount(&check)
                    .unwrap_or_else(|e| panic!("{what}: cannot mount a clone: {e}"));
                let (entries, diffs) = compare_with_manifest(&root, &m);
                zfs.unmount(&check);
                zfs.destroy(&check, &[]);
                println!(
                    "{order:<7} {:<22} {fixture_name:<16} {entries:>7}  {}",
                    format!("{}@{snap}", chain.fs),
                    if diffs.is_empty() {
                        "same".to_string()
                    } else {
                        format!("{} differences", diffs.len())
                    }
                );
                failures.extend(diffs.into_iter().take(20).map(|d| format!("{what}: {d}")));
                checked += 1;
            }
        }
        if order == "native" {
            // Out of the way: the big-endian clone stream must find its
            // origin (by guid) among the big-endian receives.
            zfs.destroy(&parent, &["-R"]);
        }
    }
    let snapshots: usize = CHAINS.iter().map(|c| c.snapshots.len()).sum();
    assert_eq!(checked, 2 * snapshots);
    assert!(
        failures.is_empty(),
        "received files differ from the manifests:\n{}",
        failures.join("\n")
    );
    eprintln!("{checked} snapshots checked in {:?}", started.elapsed());
    zfs.stop();
}

// ---------------------------------------------------------------------------
// The same mistakes, the same refusals
// ---------------------------------------------------------------------------

/// libzfs `zfs_receive`'s messages (whitespace folded) and the errno each
/// one names: the ioctl's ETXTBSY, EEXIST, ENODEV, ECKSUM and EINVAL (its
/// EZFS_BADSTREAM), and libzfs's own EZFS_EXISTS for a full stream onto an
/// existing filesystem.
const LIBZFS_MESSAGES: &[(&str, &str)] = &[
    ("has been modified since most recent snapshot", "ETXTBSY"),
    ("destination already exists", "EEXIST"),
    ("exists must specify -F to overwrite it", "EEXIST"),
    ("does not match incremental source", "ENODEV"),
    ("incremental source no longer exists", "ENODEV"),
    ("invalid stream (checksum mismatch)", "ECKSUM"),
    ("invalid backup stream", "EINVAL"),
];

fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The errno zfs-fuse's message names, if it names one.
fn libzfs_errno(stderr: &str) -> Option<&'static str> {
    let text = fold(stderr);
    LIBZFS_MESSAGES
        .iter()
        .find(|(message, _)| text.contains(message))
        .map(|&(_, errno)| errno)
}

/// The errno in `sim recv`'s error line ("cannot receive into T: ERRNO: ...").
fn zsim_errno(stderr: &str) -> Option<String> {
    let (_, rest) = stderr.split_once("cannot receive into ")?;
    let (_, rest) = rest.split_once(": ")?;
    let errno = rest.split(':').next()?.trim();
    errno.starts_with('E').then(|| errno.to_string())
}

/// A stream with the first bit of the middle byte of its first WRITE
/// payload flipped: only END's checksum can tell.
fn flip_write_payload(name: &str) -> Vec<u8> {
    let mut stream = fixture(name);
    let (offset, len) = first_write(&stream);
    stream[offset + len / 2] ^= 1;
    stream
}

/// Offset and length of the first non-empty WRITE payload.
fn first_write(stream: &[u8]) -> (usize, usize) {
    let mut reader = StreamReader::new(stream);
    while let Some(e) = reader.next_record().expect("fixture") {
        if matches!(e.record, Record::Write(_)) && !e.payload.is_empty() {
            return (e.offset as usize + 312, e.payload.len());
        }
    }
    panic!("no WRITE record")
}

/// A stream cut in the middle of its first WRITE payload.
fn cut_in_write(name: &str) -> Vec<u8> {
    let stream = fixture(name);
    let (offset, len) = first_write(&stream);
    stream[..offset + len / 2].to_vec()
}

/// A stream without its END record (cut at a record boundary).
fn without_end(name: &str) -> Vec<u8> {
    let stream = fixture(name);
    let mut reader = StreamReader::new(&stream[..]);
    let mut end = None;
    while let Some(e) = reader.next_record().expect("fixture") {
        if matches!(e.record, Record::End(_)) {
            end = Some(e.offset as usize);
        }
    }
    stream[..end.expect("an END")].to_vec()
}

struct Refusal {
    /// Filesystem name, in both pools.
    id: &'static str,
    case: &'static str,
    /// Fixtures received into the target first.
    setup: &'static [&'static str],
    /// Write to the target after its latest snapshot.
    modify: bool,
    /// `@name`: receive as this snapshot instead of the stream's name.
    snapshot: Option<&'static str>,
    stream: fn() -> Vec<u8>,
    /// What the case is about: the errno zfs-fuse's message must name.
    errno: &'static str,
    /// zsim's errno when it differs from zfs-fuse's by design, and why.
    zsim_differs: Option<(&'static str, &'static str)>,
}

const REFUSALS: &[Refusal] = &[
    Refusal {
        id: "modified",
        case: "incremental onto a target modified since its last snapshot, no -F",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: true,
        snapshot: None,
        stream: || fixture("chain_c2_c3_i"),
        errno: "ETXTBSY",
        zsim_differs: None,
    },
    Refusal {
        id: "name_taken",
        case: "incremental @c2->@c3 received as @c2, a snapshot that exists",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: false,
        snapshot: Some("c2"),
        stream: || fixture("chain_c2_c3_i"),
        errno: "EEXIST",
        zsim_differs: None,
    },
    Refusal {
        id: "full_onto_fs",
        case: "full stream onto an existing filesystem, no -F",
        setup: &["chain_c1_full"],
        modify: false,
        snapshot: None,
        stream: || fixture("chain_c1_full"),
        errno: "EEXIST",
        zsim_differs: None,
    },
    Refusal {
        id: "wrong_source",
        case: "incremental whose fromguid (@c3) is no snapshot of the target",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: false,
        snapshot: None,
        stream: || fixture("chain_c3_c4_i"),
        errno: "ENODEV",
        zsim_differs: None,
    },
    Refusal {
        id: "old_source",
        case: "incremental from @c1 onto a target whose latest is @c3 (as @x)",
        setup: &["chain_c1_full", "chain_c1_c2_i", "chain_c2_c3_i"],
        modify: false,
        snapshot: Some("x"),
        stream: || fixture("chain_c1_c2_i"),
        errno: "ENODEV",
        zsim_differs: None,
    },
    Refusal {
        id: "again",
        case: "the same incremental again (@c2 exists, latest is not @c1)",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: false,
        snapshot: None,
        stream: || fixture("chain_c1_c2_i"),
        errno: "ENODEV",
        zsim_differs: Some((
            "EEXIST",
            "zsim checks the new snapshot's name before the source snapshot, as its seed \
             (illumos 2013 recv_begin_check_existing_impl) does; zfs-fuse 0.7.0 checks \
             the source first",
        )),
    },
    Refusal {
        id: "flipped",
        case: "a bit flipped in a WRITE payload (END checksum fails)",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: false,
        snapshot: None,
        stream: || flip_write_payload("chain_c2_c3_i"),
        errno: "ECKSUM",
        zsim_differs: None,
    },
    Refusal {
        id: "cut_in_write",
        case: "stream truncated inside a WRITE payload",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: false,
        snapshot: None,
        stream: || cut_in_write("chain_c2_c3_i"),
        errno: "EINVAL",
        zsim_differs: None,
    },
    Refusal {
        id: "no_end",
        case: "stream truncated before its END record",
        setup: &["chain_c1_full", "chain_c1_c2_i"],
        modify: false,
        snapshot: None,
        stream: || without_end("chain_c2_c3_i"),
        errno: "EINVAL",
        zsim_differs: None,
    },
];

/// zfs-fuse's view of a filesystem and its snapshots: names, guids,
/// creation times, referenced and used bytes.
fn zfs_state(zfs: &ZfsFuse, fs: &str) -> String {
    let listed = zfs.zfs(&[
        "get",
        "-Hp",
        "-r",
        "-o",
        "name,property,value",
        "guid,creation,referenced,used",
        fs,
    ]);
    format!("{}{}", listed.text(), listed.stderr)
}

/// zsim's view of a filesystem: its `sim zdb` rows (itself, its snapshots,
/// anything below it such as a `%recv`) and its head's files with hashes.
fn zsim_state(image: &str, fs: &str) -> String {
    let zdb = sim(&["zdb", image], Input::Null, Output::Capture).expect_success();
    let rows: Vec<&str> = zdb
        .stdout
        .split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or_default();
            name == fs || name.starts_with(&format!("{fs}@")) || name.starts_with(&format!("{fs}/"))
        })
        .collect();
    let ls = sim(&["ls", "--hash", image, fs], Input::Null, Output::Capture);
    format!("{}\n{}{}", rows.join("\n"), ls.text(), ls.stderr)
}

/// Writes into a zsim filesystem's head (an existing file object, from the
/// manifest), as a user would between snapshots.
fn modify_zsim(image: &str, fs: &str, object: u64) {
    let dev = sim::file_device::FileDevice::open(image).expect("image");
    let mut pool = engine::spa::Pool::import(
        Box::new(dev),
        sim::cmd::host_clock(),
        sim::cmd::host_random(Some(1)),
    )
    .expect("import");
    let id = pool.lookup(fs).expect("target");
    pool.dmu(id)
        .expect("dmu")
        .write(object, 0, b"modified after the last snapshot")
        .expect("write");
    pool.txg_sync().expect("sync");
    pool.export().expect("export");
}

/// Writes a new file into a zfs-fuse filesystem's head.
fn modify_zfs(zfs: &ZfsFuse, fs: &str) {
    let root = zfs.mount(fs).expect("mount");
    std::fs::write(
        root.join("modified.txt"),
        b"modified after the last snapshot",
    )
    .expect("write through FUSE");
    zfs.unmount(fs);
}

#[test]
fn zsim_and_zfs_fuse_refuse_the_same_mistakes_with_the_same_errno() {
    let Some(zfs) = ZfsFuse::start("refuse") else {
        return;
    };
    let dir = Scratch::new("refuse");
    let image = dir.join("fxp.img");
    let image = image.to_str().unwrap();
    sim(
        &["pool", "create", image, "--size", "256M", "--seed", "9"],
        Input::Null,
        Output::Capture,
    )
    .expect_success();
    // A file of the chain's first snapshot, to modify in zsim.
    let c1 = manifest("chain_c1_full");
    let file_object = c1["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "file")
        .and_then(|f| f["object"].as_u64())
        .expect("a file in chain_c1_full");

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for r in REFUSALS {
        let real_fs = format!("refuse/{}", r.id);
        let zsim_fs = format!("fxp/{}", r.id);
        for name in r.setup {
            zfs.recv_file(&real_fs, &fixture_path(name), &[])
                .expect_success();
            sim(
                &["recv", image, &zsim_fs],
                Input::File(&fixture_path(name)),
                Output::Capture,
            )
            .expect_success();
        }
        if r.modify {
            modify_zfs(&zfs, &real_fs);
            modify_zsim(image, &zsim_fs, file_object);
        }
        let stream = (r.stream)();
        let (real_target, zsim_target) = match r.snapshot {
            Some(s) => (format!("{real_fs}@{s}"), format!("{zsim_fs}@{s}")),
            None => (real_fs.clone(), zsim_fs.clone()),
        };

        let real_before = zfs_state(&zfs, &real_fs);
        let real = zfs.recv(&real_target, &stream, &[]);
        let real_after = zfs_state(&zfs, &real_fs);
        let zsim_before = zsim_state(image, &zsim_fs);
        let ours = sim(
            &["recv", image, &zsim_target],
            Input::Bytes(&stream),
            Output::Capture,
        );
        let zsim_after = zsim_state(image, &zsim_fs);

        let real_errno = libzfs_errno(&real.stderr);
        let zsim_errno = zsim_errno(&ours.stderr);
        let mut problems = Vec::new();
        if real.success() {
            problems.push("zfs-fuse received it".to_string());
        }
        if ours.success() {
            problems.push("zsim received it".to_string());
        }
        if real_errno != Some(r.errno) {
            problems.push(format!(
                "zfs-fuse's message names {real_errno:?}, the case is about {}",
                r.errno
            ));
        }
        let want_zsim = r.zsim_differs.map_or(real_errno, |(errno, _)| Some(errno));
        if zsim_errno.as_deref() != want_zsim {
            problems.push(format!("zsim says {zsim_errno:?}, expected {want_zsim:?}"));
        }
        if real_before != real_after {
            problems.push(format!(
                "the zfs-fuse target changed:\n{real_before}\n---\n{real_after}"
            ));
        }
        if zsim_before != zsim_after {
            problems.push(format!(
                "the zsim target changed:\n{zsim_before}\n---\n{zsim_after}"
            ));
        }
        for p in problems {
            failures.push(format!("{}: {p}", r.case));
        }
        rows.push((
            r,
            fold(&real.stderr),
            real_errno.unwrap_or("?"),
            zsim_errno.unwrap_or_else(|| "?".to_string()),
            fold(&ours.stderr),
        ));
    }

    println!("\n{:<68} {:<8} {:<8}", "case", "zfs-fuse", "zsim");
    for (r, real_msg, real_errno, zsim_errno, zsim_msg) in &rows {
        println!("{:<68} {real_errno:<8} {zsim_errno:<8}", r.case);
        println!("    zfs-fuse: {real_msg}");
        println!("    zsim:     {zsim_msg}");
        if let Some((_, why)) = r.zsim_differs {
            println!("    differs by design: {why}");
        }
    }
    let check = sim(&["zdb", "-b", image], Input::Null, Output::Capture);
    assert!(
        check.success(),
        "the zsim pool is inconsistent after the refusals: {}{}",
        check.text(),
        check.stderr
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    zfs.stop();
}

/// A tree made by zfs-fuse (a filesystem, its child, and a clone of the
/// first snapshot inside the tree), sent with `zfs send -R` and then
/// `zfs send -R -I`, and received by `sim recv`: every snapshot lands at
/// its place under the target with zfs-fuse's guid and the files written.
#[test]
fn a_replication_tree_from_zfs_fuse_is_received_full_then_incremental() {
    let Some(zfs) = ZfsFuse::start("reptree") else {
        return;
    };
    let top = "reptree/a";
    let (child, clone) = (format!("{top}/b"), format!("{top}/c"));
    zfs.zfs_ok(&["create", "-o", "atime=off", "-o", "org.test:v=1", top]);
    zfs.zfs_ok(&["create", &child]);
    let write = |fs: &str, name: &str, data: &[u8]| {
        let root = zfs.mount(fs).expect("mount");
        std::fs::write(root.join(name), data).expect("write through FUSE");
        zfs.unmount(fs);
    };
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(top, "one.txt", b"the first version");
    write(&child, "two.bin", &big);
    zfs.zfs_ok(&["snapshot", "-r", &format!("{top}@s1")]);
    // Before the clone: `zfs send -R` wants every filesystem of the tree
    // to have the snapshot.
    let full = zfs.send(&format!("{top}@s1"), &["-R"]);
    zfs.zfs_ok(&["clone", &format!("{top}@s1"), &clone]);
    write(&clone, "three.txt", b"written in the clone");
    write(top, "one.txt", b"the second version");
    zfs.zfs_ok(&["set", "org.test:v=2", top]);
    zfs.zfs_ok(&["snapshot", "-r", &format!("{top}@s2")]);
    let incremental = zfs.send(&format!("{top}@s2"), &["-R", "-I", "@s1"]);
    // The incremental with a byte of its first WRITE's data flipped: its
    // first substream fails at its END checksum.
    let mut damaged = incremental.clone();
    let mut reader = StreamReader::new(&incremental[..]);
    let mut at = None;
    while let Some(entry) = reader.next_record().unwrap() {
        if matches!(entry.record, Record::Write(_)) {
            at = Some(reader.offset() as usize - 1);
            break;
        }
    }
    damaged[at.expect("a WRITE in the incremental")] ^= 0x01;

    let dir = Scratch::new("reptree");
    let image = dir.join("fxp.img");
    let image = image.to_str().unwrap();
    sim(
        &["pool", "create", image, "--size", "256M", "--seed", "3"],
        Input::Null,
        Output::Capture,
    )
    .expect_success();
    let prop = |fs: &str| {
        sim(
            &["get", image, "org.test:v", fs, "-H"],
            Input::Null,
            Output::Capture,
        )
        .expect_success()
        .text()
    };
    sim(
        &["recv", image, "fxp/back"],
        Input::Bytes(&full),
        Output::Capture,
    )
    .expect_success();
    assert_eq!(prop("fxp/back"), "fxp/back\torg.test:v\t1\treceived\n");
    assert_eq!(
        prop("fxp/back/b"),
        "fxp/back/b\torg.test:v\t1\tinherited from fxp/back\n"
    );
    // A failed substream puts back the values it received.
    let failed = sim(
        &["recv", image, "fxp/back"],
        Input::Bytes(&damaged),
        Output::Capture,
    );
    assert!(!failed.success());
    assert_eq!(prop("fxp/back"), "fxp/back\torg.test:v\t1\treceived\n");
    sim(
        &["recv", image, "fxp/back"],
        Input::Bytes(&incremental),
        Output::Capture,
    )
    .expect_success();
    assert_eq!(prop("fxp/back"), "fxp/back\torg.test:v\t2\treceived\n");
    // `verify` of the two backups lists every snapshot of the tree under
    // the name it was sent with.
    let (full_file, incremental_file) = (dir.join("full.zsend"), dir.join("incr.zsend"));
    std::fs::write(&full_file, &full).unwrap();
    std::fs::write(&incremental_file, &incremental).unwrap();
    let verified = sim(
        &[
            "verify",
            "--json",
            full_file.to_str().unwrap(),
            incremental_file.to_str().unwrap(),
        ],
        Input::Null,
        Output::Capture,
    )
    .expect_success();
    let doc: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    let names: BTreeSet<&str> = doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = [
        "reptree/a@s1",
        "reptree/a@s2",
        "reptree/a/b@s1",
        "reptree/a/b@s2",
        "reptree/a/c@s2",
    ]
    .into();
    assert_eq!(names, want);
    let zdb = sim(&["zdb", image], Input::Null, Output::Capture)
        .expect_success()
        .text();
    for (sent, got) in [
        ("a@s1", "back@s1"),
        ("a@s2", "back@s2"),
        ("a/b@s1", "back/b@s1"),
        ("a/b@s2", "back/b@s2"),
        ("a/c@s2", "back/c@s2"),
    ] {
        let guid = zfs.guid(&format!("reptree/{sent}")).expect("a guid");
        let row = zdb
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&format!("fxp/{got}")))
            .unwrap_or_else(|| panic!("no fxp/{got} in\n{zdb}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(format!("{guid:x}").as_str()),
            "{got}: {row}"
        );
    }
    for (snap, file, data) in [
        ("fxp/back@s1", "one.txt", &b"the first version"[..]),
        ("fxp/back@s2", "one.txt", &b"the second version"[..]),
        ("fxp/back/b@s2", "two.bin", &big[..]),
        ("fxp/back/c@s2", "three.txt", &b"written in the clone"[..]),
        ("fxp/back/c@s2", "one.txt", &b"the first version"[..]),
    ] {
        let ls = sim(
            &["ls", "--hash", "--json", image, snap],
            Input::Null,
            Output::Capture,
        )
        .expect_success();
        let doc: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
        let entry = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == file)
            .unwrap_or_else(|| panic!("no {file} in {snap}: {doc}"));
        assert_eq!(entry["sha256"], hex_sha256(data), "{snap}: {file}");
    }

    // And back: zsim's own `send -R` of the tree it received, which
    // zfs-fuse receives with `recv -d`: the same snapshots and guids, the
    // clone made from its origin, the property received, the files.
    let ours = sim(
        &["send", image, "fxp/back@s2", "-R"],
        Input::Null,
        Output::Capture,
    )
    .expect_success()
    .stdout;
    zfs.zfs_ok(&["create", "-o", "atime=off", "reptree/z"]);
    zfs.recv("reptree/z", &ours, &["-d"]).expect_success();
    for (sent, got) in [
        ("a@s1", "z/back@s1"),
        ("a@s2", "z/back@s2"),
        ("a/b@s1", "z/back/b@s1"),
        ("a/b@s2", "z/back/b@s2"),
        ("a/c@s2", "z/back/c@s2"),
    ] {
        assert_eq!(
            zfs.guid(&format!("reptree/{got}")),
            zfs.guid(&format!("reptree/{sent}")),
            "{got}"
        );
    }
    assert_eq!(
        zfs.zfs_ok(&["get", "-H", "-o", "value", "origin", "reptree/z/back/c"])
            .trim(),
        "reptree/z/back@s1"
    );
    assert_eq!(
        zfs.zfs_ok(&["get", "-H", "-o", "value", "org.test:v", "reptree/z/back"])
            .trim(),
        "2"
    );
    for (fs, file, data) in [
        ("reptree/z/back", "one.txt", &b"the second version"[..]),
        ("reptree/z/back/b", "two.bin", &big[..]),
        (
            "reptree/z/back/c",
            "three.txt",
            &b"written in the clone"[..],
        ),
    ] {
        let root = zfs.mount(fs).expect("mount");
        let read = std::fs::read(root.join(file)).expect("read through FUSE");
        zfs.unmount(fs);
        assert!(read == data, "{fs}/{file} differs");
    }
    zfs.stop();
}

/// A `compression=on` filesystem made by zfs-fuse, received by zsim into a
/// pool whose root sets `compression=on` (so the target inherits it), is
/// sent back byte for byte as zfs-fuse sent it; without the property the
/// blocks are stored uncompressed and the stream differs.
#[test]
fn a_compressed_filesystem_is_resent_identical_under_inherited_compression() {
    let Some(zfs) = ZfsFuse::start("comp") else {
        return;
    };
    zfs.zfs_ok(&[
        "create",
        "-o",
        "atime=off",
        "-o",
        "compression=on",
        "comp/c",
    ]);
    let root = zfs.mount("comp/c").expect("mount");
    let text: Vec<u8> = b"a line of text that compresses well\n"
        .iter()
        .copied()
        .cycle()
        .take(400_000)
        .collect();
    std::fs::write(root.join("log.txt"), &text).expect("write through FUSE");
    std::fs::write(root.join("small"), b"tiny").expect("write through FUSE");
    zfs.unmount("comp/c");
    zfs.zfs_ok(&["snapshot", "comp/c@s"]);
    let stream = zfs.send("comp/c@s", &[]);

    let dir = Scratch::new("comp");
    let mut sent = Vec::new();
    for props in [&["-O", "compression=on"][..], &[][..]] {
        let image = dir.join(&format!("comp-{}.img", props.len()));
        let image = image.to_str().unwrap();
        let mut args = vec!["pool", "create", image, "--name", "comp", "--seed", "4"];
        args.extend_from_slice(props);
        sim(&args, Input::Null, Output::Capture).expect_success();
        sim(
            &["recv", image, "comp/c"],
            Input::Bytes(&stream),
            Output::Capture,
        )
        .expect_success();
        let out = sim(&["send", image, "comp/c@s"], Input::Null, Output::Capture).expect_success();
        sent.push(out.stdout);
    }
    assert!(
        sent[0] == stream,
        "the re-sent stream differs from zfs-fuse's"
    );
    assert!(sent[1] != stream, "compression made no difference");
    zfs.stop();
}
