//! The zfs-fuse harness (`common/zfs_fuse.rs`) runs a real ZFS: it receives
//! a fixture, lists it with the fixture's guid, sends it back, mounts it,
//! and stops.
//!
//! What zfs-fuse 0.7.0 does on this machine, asserted here: `zfs send` of a
//! received fixture gives back the fixture byte for byte when the snapshot
//! has the fixture's name (`fxp/small@s1`); under another name (`fxp/x@s1`)
//! only BEGIN's `toname` and, through it, END's stream checksum differ.
//! Mounting through FUSE works (`/dev/fuse` exists, the tests run as root):
//! the mounted files match the fixture's manifest.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::zfs_fuse::{Input, Output, ZfsFuse, run};
use common::{fixture, fixture_path, manifest, summary};

/// Size of a stream record header (`dmu_replay_record_t`).
const RECORD: usize = 312;
/// `drr_begin.drr_toname` within the BEGIN record.
const TONAME: std::ops::Range<usize> = 56..312;

/// `zstreamdump` of a stream, which must succeed without checksum errors.
fn zstreamdump(zfs: &ZfsFuse, stream: &[u8], what: &str) -> String {
    let dump = run(
        &zfs.binaries().zstreamdump,
        &[],
        Input::Bytes(stream),
        Output::Capture,
    );
    assert!(
        dump.success(),
        "{what}: zstreamdump failed: {}",
        dump.stderr
    );
    let text = dump.text();
    assert!(!text.contains("Expected checksum"), "{what}: {text}");
    text
}

fn hex_sha256(data: &[u8]) -> String {
    engine::checksum::sha256(data)
        .0
        .iter()
        .map(|w| format!("{w:016x}"))
        .collect()
}

#[test]
fn zfs_fuse_receives_lists_sends_and_mounts_a_fixture() {
    let Some(zfs) = ZfsFuse::start("fxp") else {
        return;
    };
    assert!(zfs.pid().is_some());
    let original = fixture("small_full");
    let m = manifest("small_full");
    let guid = u64::from_str_radix(m["to_guid"].as_str().unwrap(), 16).unwrap();

    // Into another name: fxp/x@s1.
    zfs.recv_file("fxp/x", &fixture_path("small_full"), &[])
        .expect_success();
    assert!(
        zfs.snapshots().contains(&"fxp/x@s1".to_string()),
        "{:?}",
        zfs.snapshots()
    );
    let listed = zfs.zfs_ok(&["list", "-H", "-t", "all", "-o", "name"]);
    assert_eq!(listed, "fxp\nfxp/x\nfxp/x@s1\n");
    assert_eq!(zfs.guid("fxp/x@s1"), Some(guid), "the guid travels");
    assert_eq!(zfs.guid("fxp/nonesuch"), None);

    let resent = zfs.send("fxp/x@s1", &[]);
    assert_eq!(resent.len(), original.len());
    let differing: Vec<usize> = (0..original.len())
        .filter(|&i| resent[i] != original[i])
        .collect();
    let end_checksum = original.len() - RECORD + 8..original.len() - RECORD + 40;
    assert!(
        differing
            .iter()
            .all(|i| TONAME.contains(i) || end_checksum.contains(i)),
        "bytes other than the toname and the END checksum differ: {differing:?}"
    );
    assert_eq!(&resent[TONAME.start..TONAME.start + 8], b"fxp/x@s1");
    let theirs = zstreamdump(&zfs, &resent, "resent fxp/x@s1");
    let fixture_dump = zstreamdump(&zfs, &original, "fixture");
    assert_eq!(summary(&theirs), summary(&fixture_dump));

    // Under the fixture's own name the stream comes back byte for byte.
    zfs.recv("fxp/small", &original, &[]).expect_success();
    assert_eq!(zfs.guid("fxp/small@s1"), Some(guid));
    assert!(
        zfs.send("fxp/small@s1", &[]) == original,
        "zfs-fuse re-sends a received stream identically"
    );

    // A second full stream into an existing filesystem is refused.
    let again = zfs.recv("fxp/small", &original, &[]);
    assert!(!again.success());
    assert!(again.stderr.contains("exists"), "{}", again.stderr);

    // Mounted through FUSE, the files are the manifest's.
    let root = match zfs.mount("fxp/x") {
        Ok(root) => root,
        Err(e) => panic!("/dev/fuse exists here, yet zfs-fuse cannot mount: {e}"),
    };
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 36);
    for f in files {
        let rel = f["path"].as_str().unwrap();
        let path = if rel == "." {
            root.clone()
        } else {
            root.join(rel)
        };
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mode = format!("{:04o}", meta.permissions().mode() & 0o7777);
        assert_eq!(mode, f["mode"].as_str().unwrap(), "{rel}");
        assert_eq!(meta.size(), f["size"].as_u64().unwrap(), "{rel}");
        if rel != "." {
            assert_eq!(meta.ino(), f["object"].as_u64().unwrap(), "{rel}");
        }
        match f["type"].as_str().unwrap() {
            "file" => {
                assert!(meta.is_file(), "{rel}");
                let data = std::fs::read(&path).unwrap();
                assert_eq!(hex_sha256(&data), f["sha256"].as_str().unwrap(), "{rel}");
            }
            "dir" => assert!(meta.is_dir(), "{rel}"),
            "symlink" => {
                let target = std::fs::read_link(&path).unwrap();
                assert_eq!(target, Path::new(f["target"].as_str().unwrap()), "{rel}");
            }
            other => panic!("{rel}: type {other}"),
        }
    }
    zfs.unmount("fxp/x");
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());
    zfs.stop();
}

/// What a destroy or unmount that stays busy blames, without a zfs-fuse:
/// the process holding a file under the mountpoint, by PID and path.
#[test]
fn a_busy_dataset_is_blamed_on_what_holds_its_mountpoint() {
    use common::zfs_fuse::{holders, is_busy};
    assert!(is_busy(
        "cannot destroy 'real/big/check': dataset is busy\n"
    ));
    assert!(is_busy("umount: /tmp/x: target is busy."));
    assert!(!is_busy("cannot open 'real/x': dataset does not exist"));

    let dir = std::env::temp_dir().join(format!("zsim-test-{}-holders", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let held = std::fs::File::create(dir.join("held-open")).unwrap();
    let said = holders("nopool/nofs", &dir);
    assert!(
        said.contains(&format!("pid {} ", std::process::id())) && said.contains("held-open"),
        "{said}"
    );
    drop(held);
    // A process that another test forks holds a copy of every descriptor
    // until it execs (close-on-exec): ask again while that can be so.
    let mut said = holders("nopool/nofs", &dir);
    for _ in 0..50 {
        if said.starts_with("no mount of it") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        said = holders("nopool/nofs", &dir);
    }
    assert!(said.starts_with("no mount of it"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
