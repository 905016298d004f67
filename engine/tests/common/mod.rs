//! Shared by the engine's integration tests: where the real ZFS fixtures are,
//! and small stream helpers.
#![allow(dead_code)]

pub mod plan;

use std::path::PathBuf;

use engine::stream::ByteOrder;

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

/// Rewrites a valid stream's headers in `order` (see `stream::writer::reencode`).
pub fn rewrite(stream: &[u8], order: ByteOrder) -> Vec<u8> {
    engine::stream::writer::reencode(stream, Vec::new(), order).expect("a valid stream")
}
