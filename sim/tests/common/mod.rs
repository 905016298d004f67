//! Shared by the `sim` crate's integration tests.
#![allow(dead_code)]

pub mod zfs_fuse;

use std::path::PathBuf;

/// The real ZFS send streams (zfs-fuse 0.7.0) kept with the engine's tests.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/zfs-fuse")
}

pub fn fixture_path(name: &str) -> PathBuf {
    fixtures_dir().join(format!("{name}.zsend"))
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture stream")
}

/// A fixture's manifest.
pub fn manifest(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.manifest.json")))
        .expect("fixture manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

/// The SUMMARY section of a (zstreamdump or `sim dump`) listing.
pub fn summary(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != "SUMMARY:")
        .map(str::to_string)
        .collect()
}

/// A directory of its own for a test, removed when the test ends.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("zsim-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
