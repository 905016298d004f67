//! `cargo sim verify` runs in bounded memory: a stream several times the
//! pool's dirty-data limit is received and listed with a peak RSS far below
//! the stream's size, and the scratch image is gone afterwards.
//!
//! The stream is the small_full fixture with one regular file grown to
//! [`BIG_FILE_BYTES`] of pseudo-random (incompressible) data: its OBJECT
//! record gets 128 KiB blocks and the new size, its old data records are
//! dropped, and the new WRITE records go just before END.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;

use engine::stream::{ByteOrder, DrrWrite, Record, StreamReader, StreamWriter};
use sha2::{Digest, Sha256};

/// Four times the engine's dirty-data limit (`DIRTY_SYNC_BYTES`, 64 MiB),
/// what a scratch pool in memory would have to hold at once.
const BIG_FILE_BYTES: u64 = 256 << 20;
const BLOCK: u64 = 128 << 10;
/// The budget: 64 MiB for verify itself plus the 64 MiB of dirty data a
/// txg may buffer before it syncs.
const PEAK_RSS_LIMIT_BYTES: u64 = 128 << 20;

const DMU_OT_PLAIN_FILE_CONTENTS: u32 = 19;
const DMU_OT_ZNODE: u32 = 17;
/// `zp_mode` and `zp_size` in `znode_phys_t`.
const ZP_MODE_OFFSET: usize = 72;
const ZP_SIZE_OFFSET: usize = 80;
const S_IFMT: u64 = 0o170000;
const S_IFREG: u64 = 0o100000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures/zfs-fuse")
        .join(name)
}

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Writes the grown stream to `out`; returns the SHA-256 of the grown file.
fn write_big_stream(out: &Path) -> String {
    let input = BufReader::new(File::open(fixture("small_full.zsend")).unwrap());
    let mut reader = StreamReader::new(input);
    let mut writer = StreamWriter::new(
        BufWriter::new(File::create(out).unwrap()),
        ByteOrder::Little,
    );
    let mut grown = None;
    let mut toguid = 0;
    let mut sha = Sha256::new();
    while let Some(entry) = reader.next_record().unwrap() {
        let mut record = entry.record;
        let mut payload = entry.payload.to_vec();
        match &mut record {
            Record::Object(o)
                if grown.is_none()
                    && o.object_type == DMU_OT_PLAIN_FILE_CONTENTS
                    && o.bonustype == DMU_OT_ZNODE
                    && word(&payload, ZP_MODE_OFFSET) & S_IFMT == S_IFREG =>
            {
                grown = Some(o.object);
                toguid = o.toguid;
                o.blksz = BLOCK as u32;
                payload.truncate(o.bonuslen as usize);
                payload[ZP_SIZE_OFFSET..ZP_SIZE_OFFSET + 8]
                    .copy_from_slice(&BIG_FILE_BYTES.to_le_bytes());
            }
            Record::Object(o) => payload.truncate(o.bonuslen as usize),
            Record::Write(w) if Some(w.object) == grown => continue,
            Record::Free(f) if Some(f.object) == grown => continue,
            Record::End(_) => {
                let object = grown.expect("the fixture has a regular file");
                let mut state = 0x9e37_79b9_7f4a_7c15u64;
                let mut data = vec![0u8; BLOCK as usize];
                for offset in (0..BIG_FILE_BYTES).step_by(BLOCK as usize) {
                    for w in data.chunks_exact_mut(8) {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        w.copy_from_slice(&state.to_le_bytes());
                    }
                    sha.update(&data);
                    let write = Record::Write(DrrWrite {
                        object,
                        object_type: DMU_OT_PLAIN_FILE_CONTENTS,
                        offset,
                        length: BLOCK,
                        toguid,
                        ..DrrWrite::default()
                    });
                    writer.write_record(&write, &data).unwrap();
                }
                writer.write_end(toguid).unwrap();
                continue;
            }
            _ => {}
        }
        writer.write_record(&record, &payload).unwrap();
    }
    writer.flush().unwrap();
    assert!(grown.is_some(), "the fixture has a regular file");
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The largest peak resident set of the children waited for so far, in
/// bytes. This file holds one test, so the only child is verify's.
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    // Linux counts ru_maxrss in KiB.
    (usage.ru_maxrss as u64) << 10
}

#[test]
fn verify_of_a_stream_four_times_the_dirty_limit_stays_in_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("zsim-verify-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scratch")).unwrap();
    let stream = dir.join("big.zsend");
    let want_sha256 = write_big_stream(&stream);
    assert!(std::fs::metadata(&stream).unwrap().len() > BIG_FILE_BYTES);

    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["verify", "--json", "--scratch"])
        .arg(dir.join("scratch"))
        .arg(&stream)
        .output()
        .unwrap();
    let peak = children_peak_rss();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{doc}");
    let big = doc["snapshots"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["size"] == BIG_FILE_BYTES)
        .unwrap_or_else(|| panic!("no file of {BIG_FILE_BYTES} bytes listed: {doc}"));
    assert_eq!(big["type"], "file", "{big}");
    assert_eq!(big["sha256"], want_sha256.as_str(), "{big}");
    assert!(
        peak <= PEAK_RSS_LIMIT_BYTES,
        "verify of a {BIG_FILE_BYTES}-byte file peaked at {peak} bytes resident, over {PEAK_RSS_LIMIT_BYTES}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("scratch")).unwrap().collect();
    assert!(
        left.is_empty(),
        "the scratch directory was not removed: {left:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
