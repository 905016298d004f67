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

/// Every input of `target` through its body; the target has some.
fn replay(target: &str, body: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no inputs for {target}");
    for (_, data) in inputs {
        body(&data);
    }
}

#[test]
fn stream_decode_corpus_replays() {
    replay("stream_decode", engine::fuzz::stream_decode);
}

#[test]
fn dump_corpus_replays() {
    replay("dump", engine::fuzz::dump_any);
}

#[test]
fn recv_raw_corpus_replays() {
    replay("recv_raw", engine::fuzz::recv_raw);
}

#[test]
fn recv_existing_corpus_replays() {
    replay("recv_existing", engine::fuzz::recv_existing);
}

#[test]
fn recv_structured_corpus_replays() {
    replay("recv_structured", engine::fuzz::recv_structured);
}

#[test]
fn pool_image_corpus_replays() {
    replay("pool_image", engine::fuzz::pool_image);
}

/// Every error the corpora make comes from a site the engine's site list
/// (`engine::error::ALL_SITES`, found in the source by `build.rs`) names,
/// with the same errno: the denominator of error-site coverage is right;
/// and none of them is one the source documents as unreachable (an
/// `// unreached:` comment a corpus input proves wrong). Also prints how
/// many of the listed sites the corpora reach.
#[test]
fn every_site_the_corpora_reach_is_listed() {
    use std::collections::BTreeSet;

    use engine::error::{ALL_SITES, SiteLog};

    let log = SiteLog::start();
    for (target, body) in [
        ("stream_decode", engine::fuzz::stream_decode as fn(&[u8])),
        ("dump", engine::fuzz::dump_any),
        ("recv_raw", engine::fuzz::recv_raw),
        ("recv_existing", engine::fuzz::recv_existing),
        ("recv_structured", engine::fuzz::recv_structured),
        ("pool_image", engine::fuzz::pool_image),
    ] {
        for (_, data) in inputs(target) {
            body(&data);
        }
    }
    let hit: BTreeSet<_> = log
        .finish()
        .into_iter()
        .filter(|s| {
            s.file.starts_with("engine/src/")
                && s.file != "engine/src/fuzz.rs"
                && !s.file.starts_with("engine/src/fuzz/")
        })
        .collect();
    assert!(hit.len() > 30, "the corpora reach {} sites", hit.len());
    for site in &hit {
        let listed = ALL_SITES
            .iter()
            .find(|l| l.file == site.file && l.line == site.line);
        let listed = listed.unwrap_or_else(|| panic!("{site} is not in ALL_SITES"));
        assert_eq!(listed.errno, Some(site.errno), "{site}");
        assert!(
            listed.unreached.is_none(),
            "{site} is documented as unreachable ({:?}), yet a corpus input reaches it",
            listed.unreached
        );
    }
    let distinct: BTreeSet<_> = hit.iter().map(|s| (s.file, s.line)).collect();
    println!(
        "the fuzz corpora reach {} of the engine's {} error sites",
        distinct.len(),
        ALL_SITES.len()
    );
}
