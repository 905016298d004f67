//! The hostile sender's dictionary, mutation by mutation: each one, aimed
//! at every kind of record it strikes (full, incremental and two-substream
//! dedup streams, either byte order), is refused with its errno by its
//! check, in an error naming the record and its byte offset, and leaves the
//! target exactly as it was. A mutation the engine stops refusing fails
//! here; so does one the streams no longer give a record to strike.

use std::collections::BTreeMap;

use engine::check::check;
use engine::context::{ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{DedupTable, NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::{ByteOrder, DRR_RECORD_SIZE, StreamReader};
use engine::vdev::MemDevice;
use sim::world::hostile::{HostileDraw, HostileSender, Mutation};

fn new_pool(name: &str) -> Pool {
    Pool::create(
        Box::new(MemDevice::new(64 << 20, 512)),
        name,
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(7)),
    )
    .unwrap()
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// tank/a@s1: two objects with the same blocks (WRITE_BYREF in a `-D`
/// stream), one with a spill block, one of a single 1536-byte block, one
/// freed by @s2; @s2 rewrites a block,
/// frees an object and adds one whose data is a block of @s1 (a reference
/// into the earlier substream).
fn source() -> Pool {
    let mut pool = new_pool("tank");
    let fs = pool.create_fs("tank/a").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    let block = noise(16 << 10, 1);
    let a = dmu.object_alloc(19, 16 << 10, 17, 16).unwrap();
    dmu.write(a, 0, &[block.clone(), noise(20_000, 2)].concat())
        .unwrap();
    dmu.set_bonus(a, &[1; 16]).unwrap();
    let b = dmu.object_alloc(19, 16 << 10, 0, 0).unwrap();
    dmu.write(b, 0, &block).unwrap();
    let c = dmu.object_alloc(19, 4096, 44, 150).unwrap();
    dmu.write(c, 0, &noise(5000, 3)).unwrap();
    dmu.set_spill(c, Some(noise(512, 4))).unwrap();
    let odd = dmu.object_alloc(19, 1536, 0, 0).unwrap();
    dmu.write(odd, 0, &noise(1000, 7)).unwrap();
    let d = dmu.object_alloc(19, 4096, 0, 0).unwrap();
    dmu.write(d, 0, &noise(3000, 5)).unwrap();
    pool.snapshot("tank/a@s1").unwrap();
    let mut dmu = pool.dmu(fs).unwrap();
    dmu.write(a, 16 << 10, &noise(16 << 10, 6)).unwrap();
    dmu.object_free(d).unwrap();
    let e = dmu.object_alloc(19, 16 << 10, 0, 0).unwrap();
    dmu.write(e, 0, &block).unwrap();
    pool.snapshot("tank/a@s2").unwrap();
    pool
}

fn send(src: &mut Pool, snaps: &[(&str, Option<&str>)], order: ByteOrder, dedup: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut table = DedupTable::default();
    for (snap, from) in snaps {
        let options = SendOptions {
            byte_order: order,
            dedup,
            corrupt_data: false,
        };
        src.send(
            snap,
            *from,
            &mut out,
            &options,
            dedup.then_some(&mut table),
            &mut NoInterrupt,
        )
        .unwrap();
    }
    out
}

/// Where each record of a stream starts, and its type.
fn records(stream: &[u8]) -> Vec<(u64, engine::stream::DrrType)> {
    let mut reader = StreamReader::new(stream);
    let mut out = Vec::new();
    while let Some(e) = reader.next_record().unwrap() {
        out.push((e.offset, e.record.drr_type()));
    }
    out
}

/// Every dataset of the pool: name, guid, flags, space and contents.
fn state(pool: &mut Pool) -> Vec<String> {
    let mut out = Vec::new();
    for ds in pool.list() {
        let id = pool.lookup(&ds.name).unwrap();
        let mut objects = BTreeMap::new();
        let mut dmu = pool.dmu(id).unwrap();
        for object in dmu.objects() {
            let i = dmu.object_info(object).unwrap();
            let len = (i.maxblkid + 1) * u64::from(i.datablksz);
            objects.insert(
                object,
                (
                    format!("{i:?}"),
                    dmu.bonus(object).unwrap(),
                    dmu.read(object, 0, len).unwrap(),
                    dmu.spill(object).unwrap(),
                ),
            );
        }
        out.push(format!("{ds:?} {objects:?}"));
    }
    out
}

struct Case {
    name: &'static str,
    stream: Vec<u8>,
    target: &'static str,
}

#[test]
fn every_mutation_is_refused_exactly_and_changes_nothing() {
    let mut src = source();
    let mut dst = new_pool("dst");
    let base = send(&mut src, &[("tank/a@s1", None)], ByteOrder::NATIVE, false);
    dst.receive(
        "dst/a",
        &base[..],
        &RecvOptions::default(),
        &mut NoInterrupt,
    )
    .unwrap();
    let mut cases = Vec::new();
    for order in [ByteOrder::NATIVE, ByteOrder::NATIVE.other()] {
        cases.extend([
            Case {
                name: "full -D",
                stream: send(&mut src, &[("tank/a@s1", None)], order, true),
                target: "dst/full",
            },
            Case {
                name: "incremental",
                stream: send(&mut src, &[("tank/a@s2", Some("tank/a@s1"))], order, false),
                target: "dst/a",
            },
            Case {
                name: "two substreams -D",
                stream: send(
                    &mut src,
                    &[("tank/a@s1", None), ("tank/a@s2", Some("tank/a@s1"))],
                    order,
                    true,
                ),
                target: "dst/two",
            },
        ]);
    }
    let mut refused: BTreeMap<Mutation, u32> = BTreeMap::new();
    for case in &cases {
        // Unchanged when nothing is struck: the filter's own checksum is
        // the sender's.
        let mut idle = HostileSender::new(HostileDraw {
            skip: u64::MAX,
            seed: 0,
        });
        assert_eq!(idle.rewrite(&case.stream), case.stream, "{}", case.name);
        assert!(idle.applied().is_none());
        let count = records(&case.stream).len() as u64;
        for m in Mutation::ALL {
            let mut struck = Vec::new();
            for skip in 0..count {
                let mut hostile =
                    HostileSender::new(HostileDraw { skip, seed: skip }).restricted_to(&[m]);
                let sent = hostile.rewrite(&case.stream);
                let Some(applied) = hostile.applied().cloned() else {
                    continue;
                };
                // Three records of each kind are enough.
                if struck.contains(&applied.drr_type) || struck.len() >= 3 {
                    continue;
                }
                struck.push(applied.drr_type);
                let what = format!("{} ({}): {applied}", case.name, case.stream.len());
                let before = state(&mut dst);
                let err = dst
                    .receive(
                        case.target,
                        &sent[..],
                        &RecvOptions::default(),
                        &mut NoInterrupt,
                    )
                    .expect_err(&what);
                if let Err(why) = applied.judge(&err) {
                    panic!("{what}: refused with {err}: {why}");
                }
                assert_eq!(state(&mut dst), before, "{what}: the target changed");
                let report = check(&mut dst).unwrap();
                assert!(report.is_clean(), "{what}: {report}");
                *refused.entry(m).or_default() += 1;
            }
        }
    }
    let missing: Vec<Mutation> = Mutation::ALL
        .into_iter()
        .filter(|m| !refused.contains_key(m))
        .collect();
    assert!(
        missing.is_empty(),
        "no record of these streams was struck by {missing:?}"
    );
}

#[test]
fn a_draw_replays_and_leaves_the_records_before_its_strike_alone() {
    let mut src = source();
    let stream = send(&mut src, &[("tank/a@s1", None)], ByteOrder::NATIVE, true);
    let mut struck = BTreeMap::new();
    for skip in 0..4 {
        for seed in 0..64 {
            let draw = HostileDraw { skip, seed };
            let mut one = HostileSender::new(draw);
            let mut two = HostileSender::new(draw);
            let sent = one.rewrite(&stream);
            assert_eq!(two.rewrite(&stream), sent, "the same draw, the same bytes");
            let Some(applied) = one.applied().cloned() else {
                assert_eq!(sent, stream, "nothing struck, nothing changed");
                continue;
            };
            // Everything before the struck record (or the END or record
            // put in front of it) goes out as it was.
            let same = sent
                .iter()
                .zip(&stream)
                .position(|(a, b)| a != b)
                .unwrap_or(sent.len().min(stream.len())) as u64;
            let record = DRR_RECORD_SIZE as u64;
            assert!(
                same + record >= applied.offset && same < applied.offset + record,
                "{applied}: first change at byte {same}"
            );
            *struck.entry(applied.mutation).or_insert(0) += 1;
        }
    }
    // Drawn first, each mutation has its share.
    assert!(struck.len() > 20, "{struck:?}");
}

/// With the object-number check left out (the planted bug
/// `unvalidated-object-number`), the refusal comes from the DMU that acted
/// on the number, not from `restore_object`: the oracle tells them apart.
#[test]
fn an_unvalidated_object_number_is_caught_by_where_it_is_refused() {
    let mut src = source();
    let stream = send(&mut src, &[("tank/a@s1", None)], ByteOrder::NATIVE, false);
    for m in [Mutation::ObjectNumberZero, Mutation::ObjectNumberTooLarge] {
        for planted in [false, true] {
            let mut dst = new_pool("dst");
            let mut hostile =
                HostileSender::new(HostileDraw { skip: 1, seed: 3 }).restricted_to(&[m]);
            let sent = hostile.rewrite(&stream);
            let applied = hostile.applied().expect("struck").clone();
            let bugs = if planted {
                vec![engine::planted::Bug::UnvalidatedObjectNumber]
            } else {
                Vec::new()
            };
            let _guard = engine::planted::plant(&bugs);
            let err = dst
                .receive(
                    "dst/a",
                    &sent[..],
                    &RecvOptions::default(),
                    &mut NoInterrupt,
                )
                .expect_err("refused");
            let judged = applied.judge(&err);
            assert_eq!(
                judged.is_err(),
                planted,
                "{applied}, planted {planted}: {err} {judged:?}"
            );
        }
    }
}
