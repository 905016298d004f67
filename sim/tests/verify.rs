//! `cargo sim verify` and `cargo sim ls` against the real ZFS fixtures: every
//! public fixture chain, received as its manifest's `receive_plan` says,
//! lists exactly the manifest's files; refused, damaged and misordered
//! streams exit 1 with the errno and the place; `ls` lists what `recv` put
//! in a pool image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use engine::context::{ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::ByteOrder;
use engine::vdev::MemDevice;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/zfs-fuse")
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("{name}.manifest.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zsim-verify-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo sim verify --json` of some streams: exit code and document.
fn verify_json(streams: &[PathBuf]) -> (i32, Value) {
    let mut args = vec!["verify".to_string(), "--json".to_string()];
    args.extend(streams.iter().map(|p| p.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sim(&args);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), doc)
}

fn plan_streams(name: &str) -> Vec<PathBuf> {
    manifest(name)["receive_plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| fixture(step["stream"].as_str().unwrap()))
        .collect()
}

fn snapshot<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no snapshot {name} in {doc}"))
}

/// The listing has exactly the manifest's files, field by field.
fn assert_lists(what: &str, got: &Value, want: &Value) {
    let want: Vec<&Value> = want
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("child_mountpoint").is_none())
        .collect();
    let got = got.as_array().unwrap();
    let got_paths: Vec<&str> = got.iter().map(|f| f["path"].as_str().unwrap()).collect();
    let want_paths: Vec<&str> = want.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(got_paths, want_paths, "{what}: paths");
    for (g, w) in got.iter().zip(want) {
        let at = format!("{what}: {}", w["path"]);
        for key in [
            "type", "mode", "size", "sha256", "target", "object", "nlink", "uid", "gid",
        ] {
            assert_eq!(g.get(key), w.get(key), "{at}: {key}");
        }
        assert_eq!(
            g["mtime"].as_u64().unwrap() * 1_000_000_000,
            w["mtime_ns"].as_u64().unwrap(),
            "{at}: mtime"
        );
        let want_xattrs = w.get("xattrs").and_then(Value::as_object);
        let got_xattrs = g.get("xattrs").and_then(Value::as_object);
        match (got_xattrs, want_xattrs) {
            (None, None) => {}
            (None, Some(w)) => assert!(w.is_empty(), "{at}: xattrs missing"),
            (Some(g), Some(w)) => {
                assert_eq!(
                    g.keys().collect::<Vec<_>>(),
                    w.keys().collect::<Vec<_>>(),
                    "{at}"
                );
                for (k, v) in g {
                    assert_eq!(v["size"], w[k]["size"], "{at}: xattr {k}");
                    assert_eq!(v["sha256"], w[k]["sha256"], "{at}: xattr {k}");
                }
            }
            (Some(g), None) => panic!("{at}: unexpected xattrs {g:?}"),
        }
    }
}

#[test]
fn every_fixture_chain_verifies_to_its_manifest() {
    let names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".zsend").map(str::to_string)
        })
        // Its snapshots are of two filesystems: see the test below.
        .filter(|n| n != "replication_R")
        .collect();
    assert_eq!(names.len(), 19);
    for name in names {
        let m = manifest(&name);
        let (code, doc) = verify_json(&plan_streams(&name));
        assert_eq!(code, 0, "{name}: {doc}");
        assert_eq!(doc["ok"], true, "{name}");
        assert_eq!(doc["error"], Value::Null, "{name}");
        let to = m["to"].as_str().unwrap();
        let snapshots = doc["snapshots"].as_array().unwrap();
        assert_eq!(
            snapshots.last().unwrap()["name"],
            to,
            "{name}: the last snapshot"
        );
        assert_lists(&name, &snapshot(&doc, to)["files"], &m["files"]);
        if let Some(from) = m["from"].as_str() {
            assert_lists(
                &format!("{name} (from)"),
                &snapshot(&doc, from)["files"],
                &m["from_files"],
            );
        }
    }
}

#[test]
fn a_compound_i_stream_lists_every_snapshot_it_carries() {
    let (code, doc) = verify_json(&plan_streams("chain_c1_c4_I"));
    assert_eq!(code, 0);
    let names: Vec<&str> = doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "fxp/chain@c1",
            "fxp/chain@c2",
            "fxp/chain@c3",
            "fxp/chain@c4"
        ]
    );
    // c2 and c3 are what the -i chain produces step by step.
    let (_, stepwise) = verify_json(&plan_streams("chain_c3_c4_i"));
    for snap in ["fxp/chain@c2", "fxp/chain@c3", "fxp/chain@c4"] {
        assert_eq!(snapshot(&doc, snap), snapshot(&stepwise, snap), "{snap}");
    }
}

/// A `zfs send -R` stream lists every filesystem of the tree, each
/// snapshot under the name it was sent with, with the manifest's files.
#[test]
fn a_replication_stream_verifies_every_filesystem_to_its_manifest() {
    let m = manifest("replication_R");
    let (code, doc) = verify_json(&[fixture("replication_R.zsend")]);
    assert_eq!(code, 0, "{doc}");
    let names: Vec<&str> = doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "fxp/rep@r1",
            "fxp/rep@r2",
            "fxp/rep/kid@r1",
            "fxp/rep/kid@r2"
        ]
    );
    let top: Vec<Value> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        // The child's mountpoint is a directory of the parent's own.
        .filter(|f| f.get("child_mountpoint").is_none())
        .cloned()
        .collect();
    let listed: Vec<Value> = snapshot(&doc, "fxp/rep@r2")["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] != "kid")
        .cloned()
        .collect();
    assert_lists("replication_R", &Value::Array(listed), &Value::Array(top));
    assert_lists(
        "replication_R kid",
        &snapshot(&doc, "fxp/rep/kid@r2")["files"],
        &m["datasets"]["kid"]["files"],
    );
}

/// `recv` takes a replication stream as a tree: into a named filesystem,
/// or placed by its sent name (-d) or its last element (-e); a second
/// receive into the same place is refused, naming the errno.
#[test]
fn recv_takes_a_replication_stream_as_a_tree_placed_as_asked() {
    let dir = scratch("recv-r");
    let image = dir.join("back.img");
    let image = image.to_str().unwrap();
    assert!(
        sim(&["pool", "create", image, "--size", "64M", "--seed", "1"])
            .status
            .success()
    );
    let r = fixture("replication_R.zsend");
    for (args, snap) in [
        (vec!["recv", image, "back/x"], "back/x/kid@r2"),
        (vec!["recv", image, "back", "-d"], "back/rep/kid@r2"),
        (vec!["recv", image, "back/e", "-e"], "back/e/rep/kid@r2"),
    ] {
        let out = sim_with_stdin(&args, &r);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = sim(&["ls", image, snap, "--hash", "--json"]);
        assert!(
            out.status.success(),
            "{snap}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_lists(
            snap,
            &doc["files"],
            &manifest("replication_R")["datasets"]["kid"]["files"],
        );
    }
    let out = sim_with_stdin(&["recv", image, "back/x"], &r);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EEXIST") && err.contains("back/x"), "{err}");
    // -d of a plain stream: its path less the pool, parents made.
    let out = sim_with_stdin(
        &["recv", image, "back/d", "-d"],
        &fixture("chain_c1_full.zsend"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sim(&["ls", image, "back/d/chain@c1"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_stream_fails_with_its_record_and_offset() {
    let dir = scratch("damaged");
    let stream = std::fs::read(fixture("small_full.zsend")).unwrap();
    let cut = dir.join("cut.zsend");
    std::fs::write(&cut, &stream[..100_000]).unwrap();
    let (code, doc) = verify_json(std::slice::from_ref(&cut));
    assert_eq!(code, 1);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains(
            "EINVAL: record 80 (WRITE) at byte offset 53128: stream ends inside the payload"
        ),
        "{error}"
    );

    // A flipped bit in the data: the END checksum catches it.
    let mut flipped = stream.clone();
    flipped[200_000] ^= 0x10;
    let bad = dir.join("flipped.zsend");
    std::fs::write(&bad, &flipped).unwrap();
    let (code, doc) = verify_json(std::slice::from_ref(&bad));
    assert_eq!(code, 1);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("ECKSUM") && error.contains("byte offset"),
        "{error}"
    );
}

#[test]
fn streams_out_of_order_fail_and_keep_what_was_received() {
    // An incremental without its base.
    let (code, doc) = verify_json(&[fixture("chain_c1_c2_i.zsend")]);
    assert_eq!(code, 1);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("ENOENT: record 0 (BEGIN) at byte offset 0: fxp/chain does not exist"),
        "{doc}"
    );
    // A step skipped: the base is listed, the error names the second stream.
    let (code, doc) = verify_json(&[
        fixture("chain_c1_full.zsend"),
        fixture("chain_c2_c3_i.zsend"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(doc["snapshots"].as_array().unwrap().len(), 1);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("chain_c2_c3_i.zsend (stream 2 of 2)"),
        "{error}"
    );
    assert!(error.contains("ENODEV"), "{error}");
    // A clone stream without its origin.
    let (code, doc) = verify_json(&[fixture("clone_i.zsend")]);
    assert_eq!(code, 1);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("a clone stream needs its origin, the snapshot with guid 0x4bcae04ba7dc332c"),
        "{doc}"
    );
}

#[test]
fn the_text_listing_shows_types_modes_sizes_sums_and_targets() {
    let out = sim(&["verify", fixture("small_full.zsend").to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "fxp/small@s1: 36 entries");
    assert!(lines.contains(
        &"  file    0644         1234  11aa7d814b5efb0b8b0e7138375fc9dd5c26174a7c08b25bc9ac6f9739bb2cba  README.txt"
    ));
    assert!(lines.contains(&"  file    4755          100  8a9e98c789a42d195bb4dc850a0b0eb44c19c5ab630c01d01931f4f886538803  setuid.bin"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  symlink 0777           16  -  ")
                && l.ends_with("  a/b/uplink -> ../../README.txt"))
    );
    assert_eq!(
        *lines.last().unwrap(),
        "verify: OK: received 1 of 1 stream, listed 1 snapshot with 36 entries"
    );
}

#[test]
fn unreadable_streams_are_usage_errors() {
    let out = sim(&["verify", "/nonexistent/backup.zsend"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/backup.zsend"));
    assert_eq!(sim(&["verify"]).status.code(), Some(2));
}

/// small_full received by zsim into `fs@snap` of a pool `pool_name`, and
/// sent again from there in `order`.
fn resent_as(pool_name: &str, fs: &str, snap: &str, order: ByteOrder) -> Vec<u8> {
    let mut pool = Pool::create(
        Box::new(MemDevice::new(256 << 20, 512)),
        pool_name,
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap();
    let parts: Vec<&str> = fs.split('/').collect();
    for n in 2..parts.len() {
        pool.create_fs(&parts[..n].join("/")).unwrap();
    }
    let stream = std::fs::read(fixture("small_full.zsend")).unwrap();
    let options = RecvOptions {
        force: fs == pool_name,
        origin: None,
        props: Vec::new(),
    };
    pool.receive(
        &format!("{fs}@{snap}"),
        &stream[..],
        &options,
        &mut NoInterrupt,
    )
    .unwrap();
    let mut out = Vec::new();
    pool.send(
        &format!("{fs}@{snap}"),
        None,
        &mut out,
        &SendOptions {
            byte_order: order,
            ..SendOptions::default()
        },
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    out
}

#[test]
fn streams_of_a_pool_root_and_of_a_deep_filesystem_verify() {
    let dir = scratch("names");
    let want = manifest("small_full");
    for (pool, fs) in [("tank", "tank"), ("tank", "tank/home/backups/small")] {
        let path = dir.join("s.zsend");
        std::fs::write(&path, resent_as(pool, fs, "daily", ByteOrder::Little)).unwrap();
        let (code, doc) = verify_json(std::slice::from_ref(&path));
        assert_eq!(code, 0, "{fs}: {doc}");
        let name = format!("{fs}@daily");
        assert_lists(&name, &snapshot(&doc, &name)["files"], &want["files"]);
    }
}

#[test]
fn a_big_endian_stream_lists_the_same_files() {
    let dir = scratch("big-endian");
    let path = dir.join("be.zsend");
    std::fs::write(&path, resent_as("fxp", "fxp/small", "s1", ByteOrder::Big)).unwrap();
    let (code, doc) = verify_json(std::slice::from_ref(&path));
    assert_eq!(code, 0, "{doc}");
    let want = manifest("small_full");
    assert_lists(
        "big-endian",
        &snapshot(&doc, "fxp/small@s1")["files"],
        &want["files"],
    );
}

fn sim_with_stdin(args: &[&str], input: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(input).unwrap();
    // A refused stream is left unread: the pipe closes early.
    let _ = child.stdin.take().unwrap().write_all(&data);
    child.wait_with_output().unwrap()
}

#[test]
fn ls_lists_a_snapshot_received_into_a_pool_image() {
    let dir = scratch("ls");
    let image = dir.join("fxp.img");
    let image = image.to_str().unwrap();
    assert!(
        sim(&["pool", "create", image, "--size", "64M", "--seed", "1"])
            .status
            .success()
    );
    for stream in ["xattr_full.zsend", "xattr_i.zsend"] {
        let out = sim_with_stdin(&["recv", image, "fxp/xat"], &fixture(stream));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let m = manifest("xattr_i");
    let out = sim(&["ls", image, "fxp/xat@x2", "--hash", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["name"], "fxp/xat@x2");
    assert_lists("ls xattr_i", &doc["files"], &m["files"]);

    // Without --hash there are no sums; the text form has a line per file.
    let out = sim(&["ls", image, "fxp/xat@x1", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.get("sha256").is_none())
    );
    let out = sim(&["ls", image, "fxp/xat@x1"]);
    let text = stdout(&out);
    assert!(text.starts_with("fxp/xat@x1: 7 entries\n"), "{text}");
    assert!(text.contains(&format!(
        "  file    0644         1000  {:<64}  plain.txt\n",
        "-"
    )));

    let out = sim(&["ls", image, "fxp/xat@nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such snapshot"));
}
