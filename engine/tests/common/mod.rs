//! Shared by the engine's integration tests: where the real ZFS fixtures are,
//! and small stream helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use engine::stream::{ByteOrder, ChecksumPolicy, Record, StreamReader, StreamWriter};

/// Streams made by a real ZFS (zfs-fuse 0.7.0), with manifests and dumps.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zfs-fuse")
}

/// Every fixture name (`small_full`, ...), sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".zsend").map(str::to_string)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 20, "the public fixture set has 20 streams");
    names
}

pub fn fixture_stream(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(format!("{name}.zsend"))).expect("fixture stream")
}

pub fn fixture_text(name: &str, suffix: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(format!("{name}{suffix}"))).expect("fixture text")
}

/// Rewrites a stream as a host of `order` would have written it: every header
/// field in that order, the END checksums as that host computes them. Payloads
/// are carried over unchanged (their bytes are opaque here).
pub fn rewrite(stream: &[u8], order: ByteOrder) -> Vec<u8> {
    let mut reader = StreamReader::new(stream).with_checksum_policy(ChecksumPolicy::Verify);
    let mut writer = StreamWriter::new(Vec::new(), order);
    while let Some(entry) = reader.next_record().expect("a valid stream") {
        match &entry.record {
            // The writer's own checksum; after an END it is zero, which is
            // what a compound stream's closing END carries.
            Record::End(end) => writer.write_end(end.toguid).unwrap(),
            Record::Object(o) => writer
                .write_record(&entry.record, &entry.payload[..o.bonuslen as usize])
                .unwrap(),
            record => writer.write_record(record, entry.payload).unwrap(),
        }
    }
    writer.into_inner()
}
