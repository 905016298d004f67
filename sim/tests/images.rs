//! `cargo sim run --save-images DIR` writes each simulated pool's disk as an
//! image that the pool commands open like any other: every ZPL snapshot
//! received into `dst` lists, through `cargo sim ls`, exactly as the source
//! snapshot it came from lists in `src` (same files, modes, sizes, links,
//! targets, attributes, times and data hashes).
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use engine::context::{ManualClock, SplitMix64};
use engine::spa::Pool;
use sim::file_device::FileDevice;

fn sim(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sim {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every snapshot of an image with its guid, and whether it holds a ZPL
/// filesystem.
fn snapshots(image: &Path) -> BTreeMap<u64, (String, bool)> {
    let dev = FileDevice::open(image).unwrap();
    let mut pool = Pool::import(
        Box::new(dev),
        Box::new(ManualClock::new(0)),
        Box::new(SplitMix64::new(0)),
    )
    .unwrap();
    let mut out = BTreeMap::new();
    for info in pool.list() {
        if !info.is_snapshot {
            continue;
        }
        let id = pool.lookup(&info.name).unwrap();
        let zpl = engine::zpl::master_node(&mut pool.dmu(id).unwrap()).is_ok();
        out.insert(info.guid, (info.name.clone(), zpl));
    }
    out
}

#[test]
fn simulated_zpl_snapshots_list_from_saved_images_as_their_sources() {
    let dir = std::env::temp_dir().join(format!("zsim-images-{}", std::process::id()));
    let dir_s = dir.to_str().unwrap();
    let out = sim(&[
        "run",
        "--seed",
        "2",
        "--scenario",
        "zpl",
        "--faults",
        "none",
        "--save-images",
        dir_s,
    ]);
    assert!(out.contains("run: OK"), "{out}");
    let (src, dst) = (dir.join("src.img"), dir.join("dst.img"));
    let (src_snaps, dst_snaps) = (snapshots(&src), snapshots(&dst));
    let (mut listed, mut entries) = (0, 0);
    for (guid, (name, zpl)) in &dst_snaps {
        if !zpl {
            continue;
        }
        // The source may have been destroyed since it was sent.
        let Some((source, _)) = src_snaps.get(guid) else {
            continue;
        };
        let got = sim(&["ls", dst.to_str().unwrap(), name, "--hash", "--json"]);
        let want = sim(&["ls", src.to_str().unwrap(), source, "--hash", "--json"]);
        let files = |json: &str| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            v["files"].clone()
        };
        assert_eq!(files(&got), files(&want), "{name} from {source}");
        entries += files(&got).as_array().unwrap().len();
        listed += 1;
    }
    assert!(listed >= 3, "ZPL snapshots received: {listed}");
    assert!(entries > 3 * listed, "entries listed: {entries}");
    std::fs::remove_dir_all(&dir).unwrap();
}
