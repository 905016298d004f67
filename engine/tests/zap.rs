//! The ZAP reader on real ZFS blocks and on damaged ones: every microzap
//! and fat ZAP that `zdb -dddd` printed for a fixture reads back with the
//! same names and values; fat ZAPs with external pointer tables, several
//! leaves and every integer size read back as built; and every kind of
//! damage (truncation, bad block types, chunk indices out of range, loops
//! in hash and array chains, lengths beyond the block) is an `EIO` naming
//! the object, while random damage never panics.

mod common;

use std::collections::BTreeMap;

use common::plan::{new_pool, receive_plan};
use common::*;
use engine::Errno;
use engine::context::{RandomSource, SplitMix64};
use engine::zap::{self, ZapBlocks, ZapEntry, ZapKind};
use engine::zpl;

// ---- real ZAPs ----------------------------------------------------------

/// A `name = value` line of zdb, with the `(type: ...)` of a directory entry.
type ZdbEntry = (String, u64, Option<String>);

/// `name = value` or `name = value (type: ...)` lines of every ZAP object
/// in a `zdb -dddd` listing, by object, with the entry count a microzap's
/// line announced (none for a fat ZAP).
fn zdb_zaps(text: &str) -> BTreeMap<u64, (Option<usize>, Vec<ZdbEntry>)> {
    let mut out = BTreeMap::new();
    let mut object: Option<i64> = None;
    let mut header_next = false;
    for line in text.lines() {
        if line.trim_start().starts_with("Object  lvl") {
            header_next = true;
            continue;
        }
        if header_next {
            header_next = false;
            object = line.split_whitespace().next().and_then(|t| t.parse().ok());
            continue;
        }
        let Some(obj) = object.filter(|&o| o >= 1).map(|o| o as u64) else {
            continue;
        };
        if let Some(rest) = line.trim().strip_prefix("microzap: ") {
            let count = rest.split(", ").nth(1).and_then(|c| {
                c.trim_end_matches(" entries")
                    .trim_end_matches(" entry")
                    .parse()
                    .ok()
            });
            out.insert(obj, (count, Vec::new()));
        } else if line.trim() == "Fat ZAP stats:" {
            out.insert(obj, (None, Vec::new()));
        } else if let (Some(body), Some(entry)) = (
            line.strip_prefix("\t\t").filter(|b| !b.starts_with('\t')),
            out.get_mut(&obj),
        ) && let Some((name, value)) = body.split_once(" = ")
        {
            let value = value.trim_end();
            let (number, kind) = match value.split_once(" (type: ") {
                Some((n, t)) => (n, Some(t.trim_end_matches(')').to_string())),
                None => (value, None),
            };
            entry
                .1
                .push((name.to_string(), number.parse().unwrap(), kind));
        }
    }
    out
}

fn dirent_type_name(t: u64) -> &'static str {
    match t {
        4 => "Directory",
        8 => "Regular File",
        10 => "Symbolic Link",
        _ => "?",
    }
}

#[test]
fn every_zap_zdb_printed_reads_back_the_same() {
    let mut objects = 0;
    let mut entries = 0;
    for name in fixture_names() {
        if name == "replication_R" {
            continue;
        }
        let want = zdb_zaps(&fixture_text(&name, ".zdb.txt"));
        let mut pool = new_pool();
        let snap = *receive_plan(&mut pool, &name).last().unwrap();
        let mut dmu = pool.dmu(snap).unwrap();
        for (&object, (count, want)) in &want {
            let zap = zap::read(&mut dmu, object).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(count) = count {
                assert_eq!(zap.entries.len(), *count, "{name} object {object}");
                assert_eq!(zap.kind, ZapKind::Micro);
            } else {
                assert_eq!(zap.kind, ZapKind::Fat);
            }
            if want.is_empty() && count.is_none_or(|c| c > 0) {
                continue; // zdb -ddd: counts only
            }
            let mut got: Vec<ZdbEntry> = zap
                .entries
                .iter()
                .map(|e| {
                    let v = e.single_value().unwrap();
                    match want.iter().find(|w| w.0 == e.name_lossy()) {
                        Some((_, _, Some(_))) => (
                            e.name_lossy().into_owned(),
                            zpl::zfs_dirent_obj(v),
                            Some(dirent_type_name(zpl::zfs_dirent_type(v)).to_string()),
                        ),
                        _ => (e.name_lossy().into_owned(), v, None),
                    }
                })
                .collect();
            let mut want = want.clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{name} object {object}");
            objects += 1;
            entries += got.len();
        }
    }
    assert!(
        objects > 90 && entries > 300,
        "{objects} objects, {entries} entries"
    );
}

#[test]
fn a_thousand_entry_microzap_directory_reads_whole() {
    let mut pool = new_pool();
    let snap = receive_plan(&mut pool, "manyfiles_full")[0];
    let mut dmu = pool.dmu(snap).unwrap();
    let root = zpl::master_node(&mut dmu).unwrap().root;
    for dir in zap::entries(&mut dmu, root).unwrap() {
        let object = zpl::zfs_dirent_obj(dir.single_value().unwrap());
        let info = dmu.object_info(object).unwrap();
        let z = zap::read(&mut dmu, object).unwrap();
        assert_eq!(z.kind, ZapKind::Micro);
        assert_eq!(info.datablksz, 63 << 10, "a 63K microzap block");
        assert_eq!(z.entries.len(), 1000, "{}", dir.name_lossy());
        assert!(z.entries.iter().all(|e| e.name.starts_with(b"file")));
        // lookup finds every one of them.
        let last = &z.entries[999];
        assert_eq!(
            zap::lookup_u64(&mut dmu, object, &last.name).unwrap(),
            last.values[0]
        );
    }
}

/// The one fat ZAP of the fixtures: small_full's `longnames` directory (a
/// 255-byte name does not fit a microzap entry).
const LONGNAMES: u64 = 34;

fn longnames_blocks() -> Vec<Vec<u8>> {
    let mut pool = new_pool();
    let snap = receive_plan(&mut pool, "small_full")[0];
    let mut dmu = pool.dmu(snap).unwrap();
    let info = dmu.object_info(LONGNAMES).unwrap();
    let bs = u64::from(info.datablksz);
    (0..=info.maxblkid)
        .map(|b| dmu.read(LONGNAMES, b * bs, bs).unwrap())
        .collect()
}

#[test]
fn the_fat_zap_directory_with_long_names_reads_back() {
    let mut blocks = longnames_blocks();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].len(), 16 << 10);
    let z = zap::parse(LONGNAMES, &mut blocks).unwrap();
    assert_eq!(z.kind, ZapKind::Fat);
    assert_eq!(z.salt, 0x28b7_7b45);
    let mut names: Vec<(usize, u8, u64)> = z
        .entries
        .iter()
        .map(|e| (e.name.len(), e.name[0], zpl::zfs_dirent_obj(e.values[0])))
        .collect();
    names.sort();
    assert_eq!(names, [(64, b'n', 35), (255, b'L', 36)]);
    assert!(
        z.entries
            .iter()
            .all(|e| e.integer_size == 8 && e.values.len() == 1)
    );
    let long = vec![b'L'; 255];
    assert_eq!(z.lookup_u64(LONGNAMES, &long).unwrap() & 0xffff, 36);
    let e = z.lookup(LONGNAMES, b"missing").unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
}

// ---- fat ZAPs built here ------------------------------------------------

const CHAIN_END: u16 = 0xffff;

/// One leaf to build: its hash prefix and its entries (name, integer size,
/// values).
struct LeafSpec {
    prefix: u64,
    prefix_len: u16,
    entries: Vec<(Vec<u8>, u8, Vec<u64>)>,
}

fn put(block: &mut [u8], at: usize, bytes: &[u8]) {
    block[at..at + bytes.len()].copy_from_slice(bytes);
}

fn chunk_at(shift: u32, idx: usize) -> usize {
    48 + 2 * (1 << (shift - 5)) + 24 * idx
}

/// Stores `bytes` in a chain of array chunks from `*next` on.
fn array(shift: u32, block: &mut [u8], next: &mut usize, bytes: &[u8]) -> u16 {
    let mut head = CHAIN_END;
    let mut prev: Option<usize> = None;
    for piece in bytes.chunks(21) {
        let idx = *next;
        *next += 1;
        let at = chunk_at(shift, idx);
        block[at] = 251;
        put(block, at + 1, piece);
        put(block, at + 22, &CHAIN_END.to_le_bytes());
        match prev {
            Some(p) => put(block, chunk_at(shift, p) + 22, &(idx as u16).to_le_bytes()),
            None => head = idx as u16,
        }
        prev = Some(idx);
    }
    head
}

/// A leaf block laid out as `zap_leaf.c` lays it out: entry chunk, name
/// chunks, value chunks for each entry in turn; hash chains by bucket;
/// the rest free. Names are stored with their NUL unless `uint64_keys`.
fn build_leaf(shift: u32, spec: &LeafSpec, uint64_keys: bool) -> Vec<u8> {
    let bs = 1usize << shift;
    let nhash = 1usize << (shift - 5);
    let nchunks = (bs - 2 * nhash) / 24 - 2;
    let mut block = vec![0u8; bs];
    put(&mut block, 0, &(1u64 << 63).to_le_bytes());
    put(&mut block, 16, &spec.prefix.to_le_bytes());
    put(&mut block, 24, &0x2AB1EAFu32.to_le_bytes());
    put(&mut block, 30, &(spec.entries.len() as u16).to_le_bytes());
    put(&mut block, 32, &spec.prefix_len.to_le_bytes());
    for b in 0..nhash {
        put(&mut block, 48 + 2 * b, &CHAIN_END.to_le_bytes());
    }
    let mut next = 0usize;
    for (i, (name, intlen, values)) in spec.entries.iter().enumerate() {
        let idx = next;
        next += 1;
        let mut stored = name.clone();
        if !uint64_keys {
            stored.push(0);
        }
        let name_chunk = array(shift, &mut block, &mut next, &stored);
        let value: Vec<u8> = values
            .iter()
            .flat_map(|v| v.to_be_bytes()[8 - usize::from(*intlen)..].to_vec())
            .collect();
        let value_chunk = array(shift, &mut block, &mut next, &value);
        let top = if spec.prefix_len == 0 {
            0
        } else {
            spec.prefix << (64 - spec.prefix_len)
        };
        let hash = top | ((i as u64 + 1) << 28);
        let bucket =
            ((hash >> (64 - (shift - 5) - u32::from(spec.prefix_len))) as usize) & (nhash - 1);
        let at = chunk_at(shift, idx);
        block[at] = 252;
        block[at + 1] = *intlen;
        let head = u16::from_le_bytes([block[48 + 2 * bucket], block[49 + 2 * bucket]]);
        put(&mut block, at + 2, &head.to_le_bytes());
        put(&mut block, at + 4, &name_chunk.to_le_bytes());
        let numints = if uint64_keys {
            stored.len() / 8
        } else {
            stored.len()
        };
        put(&mut block, at + 6, &(numints as u16).to_le_bytes());
        put(&mut block, at + 8, &value_chunk.to_le_bytes());
        put(&mut block, at + 10, &(values.len() as u16).to_le_bytes());
        put(&mut block, at + 16, &hash.to_le_bytes());
        put(&mut block, 48 + 2 * bucket, &(idx as u16).to_le_bytes());
    }
    assert!(next <= nchunks, "the test leaf overflows");
    for idx in next..nchunks {
        let at = chunk_at(shift, idx);
        block[at] = 253;
        let n = if idx + 1 == nchunks {
            CHAIN_END
        } else {
            idx as u16 + 1
        };
        put(&mut block, at + 22, &n.to_le_bytes());
    }
    put(&mut block, 28, &((nchunks - next) as u16).to_le_bytes());
    put(&mut block, 34, &(next as u16).to_le_bytes());
    block
}

/// A whole fat ZAP: header (block 0), an external pointer table when
/// asked (block 1), then the leaves.
fn build_fat(shift: u32, leaves: &[LeafSpec], external: bool, flags: u64) -> Vec<Vec<u8>> {
    let bs = 1usize << shift;
    let mut header = vec![0u8; bs];
    let first_leaf = if external { 2 } else { 1 };
    let zt_shift = if external { shift - 3 } else { shift - 4 };
    let mut table = vec![0u64; 1 << zt_shift];
    for (i, leaf) in leaves.iter().enumerate() {
        let span = zt_shift - u32::from(leaf.prefix_len);
        let start = (leaf.prefix << span) as usize;
        for slot in &mut table[start..start + (1 << span)] {
            *slot = (first_leaf + i) as u64;
        }
    }
    assert!(
        table.iter().all(|&b| b != 0),
        "the test leaves cover the table"
    );
    let words = [
        (1u64 << 63) + 1,
        0x2_F52A_B2AB,
        if external { 1 } else { 0 },
        if external { 1 } else { 0 },
        u64::from(zt_shift),
        0,
        0,
        (first_leaf + leaves.len()) as u64,
        leaves.len() as u64,
        leaves.iter().map(|l| l.entries.len() as u64).sum(),
        0x1234_5678,
        0,
        flags,
    ];
    for (i, w) in words.iter().enumerate() {
        put(&mut header, i * 8, &w.to_le_bytes());
    }
    let mut blocks = vec![header];
    if external {
        let mut t = vec![0u8; bs];
        for (i, w) in table.iter().enumerate() {
            put(&mut t, i * 8, &w.to_le_bytes());
        }
        blocks.push(t);
    } else {
        let base = bs / 16;
        for (i, w) in table.iter().enumerate() {
            put(&mut blocks[0], (base + i) * 8, &w.to_le_bytes());
        }
    }
    for leaf in leaves {
        blocks.push(build_leaf(
            shift,
            leaf,
            flags & zap::ZAP_FLAG_UINT64_KEY != 0,
        ));
    }
    blocks
}

fn names(prefix: &str, n: usize) -> Vec<(Vec<u8>, u8, Vec<u64>)> {
    (0..n)
        .map(|i| {
            (
                format!("{prefix}{i}").into_bytes(),
                8,
                vec![1000 + i as u64],
            )
        })
        .collect()
}

/// Three leaves behind an external pointer table: prefixes 0/1, 10/2, 11/2.
fn three_leaves() -> Vec<Vec<u8>> {
    build_fat(
        9,
        &[
            LeafSpec {
                prefix: 0,
                prefix_len: 1,
                entries: names("zero-", 3),
            },
            LeafSpec {
                prefix: 2,
                prefix_len: 2,
                entries: vec![
                    (b"bytes".to_vec(), 1, vec![1, 2, 3, 255]),
                    (b"shorts".to_vec(), 2, vec![0xbeef, 7]),
                ],
            },
            LeafSpec {
                prefix: 3,
                prefix_len: 2,
                entries: vec![
                    (b"words".to_vec(), 4, vec![0xdead_beef]),
                    (b"empty".to_vec(), 8, vec![]),
                    (
                        b"a name of more than one chunk".to_vec(),
                        8,
                        vec![u64::MAX, 0],
                    ),
                ],
            },
        ],
        true,
        0,
    )
}

fn sorted(entries: &[ZapEntry]) -> Vec<(String, u8, Vec<u64>)> {
    let mut v: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.name_lossy().into_owned(),
                e.integer_size,
                e.values.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_external_pointer_table_with_several_leaves_reads_back() {
    let mut blocks = three_leaves();
    let z = zap::parse(7, &mut blocks).unwrap();
    assert_eq!(z.kind, ZapKind::Fat);
    assert_eq!(z.salt, 0x1234_5678);
    let want: Vec<(String, u8, Vec<u64>)> = vec![
        ("a name of more than one chunk".into(), 8, vec![u64::MAX, 0]),
        ("bytes".into(), 1, vec![1, 2, 3, 255]),
        ("empty".into(), 8, vec![]),
        ("shorts".into(), 2, vec![0xbeef, 7]),
        ("words".into(), 4, vec![0xdead_beef]),
        ("zero-0".into(), 8, vec![1000]),
        ("zero-1".into(), 8, vec![1001]),
        ("zero-2".into(), 8, vec![1002]),
    ];
    assert_eq!(sorted(&z.entries), want);
    let e = z.lookup_u64(7, b"bytes").unwrap_err();
    assert_eq!(e.errno(), Errno::EOVERFLOW);
}

#[test]
fn an_embedded_pointer_table_with_two_leaves_and_16k_blocks_reads_back() {
    let long = vec![b'x'; 255];
    let mut blocks = build_fat(
        14,
        &[
            LeafSpec {
                prefix: 0,
                prefix_len: 1,
                entries: vec![(long.clone(), 8, vec![42])],
            },
            LeafSpec {
                prefix: 1,
                prefix_len: 1,
                entries: names("f", 100),
            },
        ],
        false,
        0,
    );
    let z = zap::parse(9, &mut blocks).unwrap();
    assert_eq!(z.entries.len(), 101);
    assert_eq!(z.lookup_u64(9, &long).unwrap(), 42);
    assert_eq!(z.lookup_u64(9, b"f99").unwrap(), 1099);
}

#[test]
fn uint64_keys_come_back_as_their_big_endian_bytes() {
    let key: Vec<u8> = [7u64, 9].iter().flat_map(|k| k.to_be_bytes()).collect();
    let mut blocks = build_fat(
        9,
        &[LeafSpec {
            prefix: 0,
            prefix_len: 0,
            entries: vec![(key.clone(), 8, vec![5])],
        }],
        false,
        zap::ZAP_FLAG_UINT64_KEY,
    );
    let z = zap::parse(3, &mut blocks).unwrap();
    assert_eq!(z.flags, zap::ZAP_FLAG_UINT64_KEY);
    assert_eq!(z.entries[0].name, key);
}

#[test]
fn non_utf8_names_are_kept_as_bytes() {
    let name = vec![b'a', 0xff, 0xfe, b'z'];
    let mut blocks = build_fat(
        9,
        &[LeafSpec {
            prefix: 0,
            prefix_len: 0,
            entries: vec![(name.clone(), 8, vec![1])],
        }],
        false,
        0,
    );
    let z = zap::parse(3, &mut blocks).unwrap();
    assert_eq!(z.entries[0].name, name);
    assert_eq!(z.entries[0].name_lossy(), "a\u{fffd}\u{fffd}z");
}

// ---- damage ------------------------------------------------------------

/// Parses and demands an EIO that names the object and says `why`.
#[track_caller]
fn refused(object: u64, mut blocks: Vec<Vec<u8>>, why: &str) {
    match zap::parse(object, &mut blocks) {
        Ok(z) => panic!("damage not noticed ({why}): {} entries", z.entries.len()),
        Err(e) => {
            assert_eq!(e.errno(), Errno::EIO, "{e}");
            assert!(
                e.reason().starts_with(&format!("ZAP object {object}: ")),
                "{e}"
            );
            assert!(e.reason().contains(why), "wanted {why:?}: {e}");
        }
    }
}

fn set16(block: &mut [u8], at: usize, v: u16) {
    put(block, at, &v.to_le_bytes());
}

fn set64(block: &mut [u8], at: usize, v: u64) {
    put(block, at, &v.to_le_bytes());
}

/// The chunk index of the real leaf's entry for the 255-byte name, and its
/// byte offset.
fn long_entry(leaf: &[u8]) -> (usize, usize) {
    let shift = leaf.len().trailing_zeros();
    let nchunks = (leaf.len() - 2 * (1 << (shift - 5))) / 24 - 2;
    (0..nchunks)
        .map(|i| (i, chunk_at(shift, i)))
        .find(|&(_, at)| leaf[at] == 252 && u16::from_le_bytes([leaf[at + 6], leaf[at + 7]]) == 256)
        .unwrap()
}

#[test]
fn a_truncated_fat_zap_is_refused() {
    let blocks = longnames_blocks();
    refused(LONGNAMES, blocks[..1].to_vec(), "which is not a leaf");
    let mut short = blocks.clone();
    short[1].truncate(8192);
    refused(LONGNAMES, short, "block 1 has 8192 bytes, not 16384");
    let mut short = blocks.clone();
    short[0].truncate(100);
    match zap::parse(LONGNAMES, &mut short) {
        Err(e) => assert!(e.reason().contains("block size 100"), "{e}"),
        Ok(_) => panic!("a 100-byte ZAP block"),
    }
    // A leaf block that is a hole.
    let mut hole = blocks.clone();
    hole[1].fill(0);
    refused(LONGNAMES, hole, "block type 0x0, not a leaf");
}

#[test]
fn bad_block_types_and_magic_are_refused() {
    let blocks = longnames_blocks();
    let mut b = blocks.clone();
    set64(&mut b[0], 0, 42);
    refused(LONGNAMES, b, "neither a microzap nor a fat ZAP header");
    let mut b = blocks.clone();
    set64(&mut b[0], 8, 42);
    refused(LONGNAMES, b, "fat ZAP header has magic 0x2a");
    let mut b = blocks.clone();
    put(&mut b[1], 24, &7u32.to_le_bytes());
    refused(LONGNAMES, b, "leaf magic 0x7");
    let mut b = blocks.clone();
    set64(&mut b[1], 0, (1 << 63) + 3);
    refused(LONGNAMES, b, "not a leaf");
}

#[test]
fn chunk_indices_out_of_range_are_refused() {
    let blocks = longnames_blocks();
    let (_, at) = long_entry(&blocks[1]);
    let mut b = blocks.clone();
    set16(&mut b[1], at + 4, 0xfff0); // le_name_chunk
    refused(
        LONGNAMES,
        b,
        "name chain reaches chunk 65520, past the 638 chunks",
    );
    let mut b = blocks.clone();
    set16(&mut b[1], at + 8, 700); // le_value_chunk
    refused(LONGNAMES, b, "value chain reaches chunk 700");
    // A hash bucket pointing past the chunks.
    let mut b = blocks.clone();
    let bucket = (0..512)
        .find(|&i| u16::from_le_bytes([b[1][48 + 2 * i], b[1][49 + 2 * i]]) == CHAIN_END)
        .unwrap();
    set16(&mut b[1], 48 + 2 * bucket, 638);
    refused(LONGNAMES, b, "reaches chunk 638, past the 638 chunks");
    // A chunk of no known type.
    let mut b = blocks.clone();
    b[1][chunk_at(14, 600)] = 7;
    refused(LONGNAMES, b, "chunk 600 has unknown type 7");
}

#[test]
fn loops_in_chains_are_refused() {
    let blocks = longnames_blocks();
    let (idx, at) = long_entry(&blocks[1]);
    // The hash chain: the entry follows itself.
    let mut b = blocks.clone();
    set16(&mut b[1], at + 2, idx as u16);
    refused(LONGNAMES, b, "a second time (a loop)");
    // The name's array chain: its second chunk points back at its first.
    let mut b = blocks.clone();
    let first = u16::from_le_bytes([b[1][at + 4], b[1][at + 5]]);
    let second_at = chunk_at(14, usize::from(first)) + 22;
    let second = u16::from_le_bytes([b[1][second_at], b[1][second_at + 1]]);
    set16(&mut b[1], chunk_at(14, usize::from(second)) + 22, first);
    refused(LONGNAMES, b, "already used (a loop or a shared chain)");
    // Two entries sharing one value chain.
    let mut b = three_leaves();
    let leaf = &mut b[2];
    let entries: Vec<usize> = (0..18).filter(|&i| leaf[chunk_at(9, i)] == 252).collect();
    let v0 = u16::from_le_bytes([
        leaf[chunk_at(9, entries[0]) + 8],
        leaf[chunk_at(9, entries[0]) + 9],
    ]);
    set16(leaf, chunk_at(9, entries[1]) + 8, v0);
    refused(7, b, "already used");
}

#[test]
fn lengths_beyond_the_block_or_the_limits_are_refused() {
    let blocks = longnames_blocks();
    let (_, at) = long_entry(&blocks[1]);
    let mut b = blocks.clone();
    set16(&mut b[1], at + 6, 257); // le_name_numints
    refused(LONGNAMES, b, "has a name of 257 bytes");
    let mut b = blocks.clone();
    set16(&mut b[1], at + 6, 200); // shorter than the chain
    refused(LONGNAMES, b, "chain goes on past its 200 bytes");
    let mut b = blocks.clone();
    set16(&mut b[1], at + 10, 2000); // le_value_numints: 16000 bytes
    refused(LONGNAMES, b, "has a value of 16000 bytes");
    let mut b = blocks.clone();
    set16(&mut b[1], at + 10, 3); // 24 bytes: the one-chunk chain ends early
    refused(LONGNAMES, b, "value chain ends after 21 of 24 bytes");
    let mut b = blocks.clone();
    b[1][at + 1] = 3; // le_value_intlen
    refused(LONGNAMES, b, "has values of 3 bytes");
    let mut b = blocks.clone();
    set16(&mut b[1], at + 6, 0);
    refused(LONGNAMES, b, "has a name of 0 bytes");
}

#[test]
fn names_must_be_one_nul_terminated_string() {
    let blocks = longnames_blocks();
    let (_, at) = long_entry(&blocks[1]);
    let mut b = blocks.clone();
    set16(&mut b[1], at + 6, 255); // drops the NUL from the length
    refused(LONGNAMES, b, "not one NUL-terminated string");
    // The NUL overwritten, in the name's last chunk (byte 255 of the name).
    let mut b = blocks.clone();
    let mut chunk = u16::from_le_bytes([b[1][at + 4], b[1][at + 5]]);
    for _ in 0..255 / 21 {
        let c = chunk_at(14, usize::from(chunk));
        chunk = u16::from_le_bytes([b[1][c + 22], b[1][c + 23]]);
    }
    b[1][chunk_at(14, usize::from(chunk)) + 1 + 255 % 21] = b'!';
    refused(LONGNAMES, b, "not one NUL-terminated string");
}

#[test]
fn counts_that_disagree_with_the_blocks_are_refused() {
    let blocks = longnames_blocks();
    let mut b = blocks.clone();
    set64(&mut b[0], 72, 3); // zap_num_entries
    refused(LONGNAMES, b, "leaves hold 2 entries, the header counts 3");
    let mut b = blocks.clone();
    set64(&mut b[0], 64, 2); // zap_num_leafs
    refused(LONGNAMES, b, "reaches 1 leaves, the header counts 2");
    let mut b = blocks.clone();
    set16(&mut b[1], 30, 1); // lh_nentries
    refused(LONGNAMES, b, "2 entry chunks, the header counts 1");
    // An entry chunk no hash chain reaches.
    let mut b = blocks.clone();
    for i in 0..512 {
        set16(&mut b[1], 48 + 2 * i, CHAIN_END);
    }
    refused(LONGNAMES, b, "is in no hash chain");
}

#[test]
fn pointer_tables_that_point_astray_are_refused() {
    let blocks = longnames_blocks();
    let base = (16 << 10) / 2;
    for (bad, why) in [
        (0u64, "points to block 0"),
        (2, "points to block 2"),
        (1 << 40, "points to block 1099511627776"),
    ] {
        let mut b = blocks.clone();
        set64(&mut b[0], base + 8 * 17, bad);
        refused(LONGNAMES, b, why);
    }
    // An embedded table claiming more entries than half a block holds.
    let mut b = blocks.clone();
    set64(&mut b[0], 32, 11);
    refused(
        LONGNAMES,
        b,
        "embedded pointer table with zt_blk 0 and zt_shift 11",
    );
    // An external table far bigger than the object.
    let mut b = three_leaves();
    set64(&mut b[0], 24, 1 << 40);
    set64(&mut b[0], 32, 46);
    refused(7, b, "pointer table of 1099511627776 blocks");
    // A table block pointing into itself.
    let mut b = three_leaves();
    set64(&mut b[1], 0, 1);
    refused(7, b, "points to block 1");
    // A leaf whose prefix disagrees with the pointers to it.
    let mut b = three_leaves();
    set64(&mut b[3], 16, 3); // the 10/2 leaf claims 11/2
    refused(7, b, "has 16 pointers from entry 32, not 16 from entry 48");
    // A leaf holding an entry whose hash belongs elsewhere.
    let mut b = three_leaves();
    let at = (0..18)
        .map(|i| chunk_at(9, i))
        .find(|&at| b[2][at] == 252)
        .unwrap();
    let hash = u64::from_le_bytes(b[2][at + 16..at + 24].try_into().unwrap());
    set64(&mut b[2], at + 16, hash | 1 << 63);
    refused(7, b, "is in bucket");
}

#[test]
fn damaged_microzaps_are_refused() {
    let mut pool = new_pool();
    let snap = receive_plan(&mut pool, "small_full")[0];
    let mut dmu = pool.dmu(snap).unwrap();
    let root = zpl::master_node(&mut dmu).unwrap().root;
    let bs = u64::from(dmu.object_info(root).unwrap().datablksz);
    let block = dmu.read(root, 0, bs).unwrap();
    let used = (1..block.len() / 64)
        .find(|i| block[i * 64 + 14] != 0)
        .unwrap()
        * 64;
    assert!(zap::parse(root, &mut vec![block.clone()]).is_ok());

    let mut b = block.clone();
    b[used + 14..used + 64].fill(b'n');
    refused(root, vec![b], "a name without its terminating NUL");
    let mut b = block.clone();
    let other = (1..block.len() / 64)
        .map(|i| i * 64)
        .find(|&at| at != used && block[at + 14] != 0)
        .unwrap();
    let copy = b[used..used + 64].to_vec();
    put(&mut b, other, &copy);
    refused(root, vec![b], "is stored twice");
    let mut b = block.clone();
    set64(&mut b, 0, (1 << 63) + 2);
    refused(root, vec![b], "block type 0x8000000000000002");
    match zap::parse(root, &mut vec![block[..64].to_vec()]) {
        Err(e) => assert!(e.reason().contains("block size 64"), "{e}"),
        Ok(_) => panic!("a 64-byte microzap"),
    }
}

/// Random damage never panics: every result is a ZAP or an error.
#[test]
fn random_damage_never_panics() {
    let mut rng = SplitMix64::new(0x2a9);
    let mut pool = new_pool();
    let snap = receive_plan(&mut pool, "small_full")[0];
    let mut dmu = pool.dmu(snap).unwrap();
    let root_bs = u64::from(dmu.object_info(3).unwrap().datablksz);
    let micro = vec![dmu.read(3, 0, root_bs).unwrap()];
    drop(dmu);
    let originals = [longnames_blocks(), three_leaves(), micro];
    let (mut ok, mut refused) = (0, 0);
    for round in 0..6000 {
        let mut blocks = originals[round % originals.len()].clone();
        let flips = 1 + rng.next_u64() % 8;
        for _ in 0..flips {
            let b = (rng.next_u64() % blocks.len() as u64) as usize;
            let len = blocks[b].len() as u64;
            // Aim at the headers and the first chunks, where damage bites.
            let at = (rng.next_u64()
                % len.min(if rng.next_u64().is_multiple_of(2) {
                    2048
                } else {
                    len
                })) as usize;
            match rng.next_u64() % 4 {
                0 => blocks[b][at] ^= 1 << (rng.next_u64() % 8),
                1 => blocks[b][at] = rng.next_u64() as u8,
                2 => blocks[b][at] = [0, 0xff, 251, 252, 253][(rng.next_u64() % 5) as usize],
                _ => {
                    let v = (rng.next_u64() % 700) as u16;
                    if at + 2 <= blocks[b].len() {
                        set16(&mut blocks[b], at, v);
                    }
                }
            }
        }
        if rng.next_u64().is_multiple_of(16) {
            let keep = (rng.next_u64() % blocks.len() as u64) as usize + 1;
            blocks.truncate(keep);
        }
        match zap::parse(1, &mut blocks) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(matches!(e.errno(), Errno::EIO), "{e}");
                refused += 1;
            }
        }
    }
    assert!(refused > 3000 && ok > 0, "{ok} read, {refused} refused");
}

#[test]
fn the_vec_block_source_reads_missing_blocks_as_holes() {
    let mut blocks: Vec<Vec<u8>> = vec![vec![1; 512]];
    assert_eq!(blocks.block_size(), 512);
    assert_eq!(blocks.read_block(5).unwrap(), vec![0; 512]);
}
