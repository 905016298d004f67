//! Replays every fuzz corpus input and every saved crash through the target
//! bodies, so plain `cargo test` keeps what the fuzzers found.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut found = Vec::new();
    for sub in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            found.push((path, data));
        }
    }
    found.sort();
    found
}

#[test]
fn stream_decode_corpus_replays() {
    let inputs = inputs("stream_decode");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        engine::fuzz::stream_decode(&data);
    }
}

#[test]
fn dump_corpus_replays() {
    let inputs = inputs("dump");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        engine::fuzz::dump_any(&data);
    }
}

#[test]
fn recv_raw_corpus_replays() {
    let inputs = inputs("recv_raw");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        engine::fuzz::recv_raw(&data);
    }
}

#[test]
fn recv_existing_corpus_replays() {
    let inputs = inputs("recv_existing");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        engine::fuzz::recv_existing(&data);
    }
}

#[test]
fn recv_structured_corpus_replays() {
    let inputs = inputs("recv_structured");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        engine::fuzz::recv_structured(&data);
    }
}
