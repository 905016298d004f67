//! The stream format against real ZFS streams: every fixture decodes to the
//! fields an independent parser found, its END checksums verify, and the
//! writer reproduces it byte for byte, in either byte order.

mod common;

use common::*;
use engine::checksum::ZioCksum;
use engine::stream::{ByteOrder, ChecksumPolicy, DrrType, Record, StreamReader, StreamWriter};
use serde_json::Value;

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| v.as_i64().unwrap() as u64)
}

/// Compares a decoded record with the line `records.jsonl` holds for it.
fn assert_matches_json(record: &Record, offset: u64, json: &Value) {
    assert_eq!(num(&json["off"]), offset);
    assert_eq!(
        json["type"].as_str().unwrap(),
        record.drr_type().name(),
        "at {offset}"
    );
    match record {
        Record::Begin(b) => {
            assert_eq!(hex(&json["magic"]), b.magic);
            assert_eq!(num(&json["hdrtype"]), b.hdrtype());
            assert_eq!(num(&json["features"]), b.features());
            assert_eq!(num(&json["creation_time"]), b.creation_time);
            assert_eq!(num(&json["ostype"]), u64::from(b.objset_type));
            assert_eq!(num(&json["flags"]), u64::from(b.flags));
            assert_eq!(hex(&json["toguid"]), b.toguid);
            assert_eq!(hex(&json["fromguid"]), b.fromguid);
            assert_eq!(json["toname"].as_str().unwrap(), b.toname_lossy());
            assert_eq!(num(&json["payloadlen"]), u64::from(b.payloadlen));
        }
        Record::Object(o) => {
            assert_eq!(num(&json["object"]), o.object);
            assert_eq!(num(&json["otype"]), u64::from(o.object_type));
            assert_eq!(num(&json["bonustype"]), u64::from(o.bonustype));
            assert_eq!(num(&json["blksz"]), u64::from(o.blksz));
            assert_eq!(num(&json["bonuslen"]), u64::from(o.bonuslen));
            assert_eq!(num(&json["checksumtype"]), u64::from(o.checksumtype));
            assert_eq!(num(&json["compress"]), u64::from(o.compress));
            assert_eq!(hex(&json["toguid"]), o.toguid);
        }
        Record::FreeObjects(f) => {
            assert_eq!(num(&json["firstobj"]), f.firstobj);
            assert_eq!(num(&json["numobjs"]), f.numobjs);
            assert_eq!(hex(&json["toguid"]), f.toguid);
        }
        Record::Write(w) => {
            assert_eq!(num(&json["object"]), w.object);
            assert_eq!(num(&json["offset"]), w.offset);
            assert_eq!(num(&json["length"]), w.length);
            assert_eq!(hex(&json["toguid"]), w.toguid);
        }
        Record::Free(f) => {
            assert_eq!(num(&json["object"]), f.object);
            assert_eq!(num(&json["offset"]), f.offset);
            assert_eq!(num(&json["length"]), f.length);
        }
        Record::WriteByref(w) => {
            assert_eq!(num(&json["object"]), w.object);
            assert_eq!(num(&json["offset"]), w.offset);
            assert_eq!(num(&json["length"]), w.length);
            assert_eq!(num(&json["refobject"]), w.refobject);
            assert_eq!(num(&json["refoffset"]), w.refoffset);
        }
        Record::End(e) => {
            assert_eq!(hex(&json["toguid"]), e.toguid);
        }
        Record::Spill(_) => panic!("no SPILL records in pool version 23 streams"),
    }
}

#[test]
fn every_fixture_decodes_to_what_an_independent_parser_found() {
    for name in fixture_names() {
        let stream = fixture_stream(&name);
        let lines = fixture_text(&name, ".records.jsonl");
        let mut expected = lines
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap());
        let mut reader = StreamReader::new(&stream[..]);
        let mut counts = [0u64; DrrType::COUNT];
        while let Some(entry) = reader
            .next_record()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        {
            let json = expected
                .next()
                .expect("as many records as the parser found");
            assert_matches_json(&entry.record, entry.offset, &json);
            counts[entry.record.drr_type() as usize] += 1;
        }
        assert!(expected.next().is_none(), "{name}: records left over");
        assert_eq!(reader.offset(), stream.len() as u64);
        assert_eq!(reader.byte_order(), Some(ByteOrder::Little));

        let manifest: Value = serde_json::from_str(&fixture_text(&name, ".manifest.json")).unwrap();
        for t in DrrType::ALL {
            let want = manifest["record_counts"][t.name()].as_u64().unwrap();
            assert_eq!(counts[t as usize], want, "{name}: {t} records");
        }
    }
}

#[test]
fn every_end_checksum_of_every_fixture_verifies() {
    let mut ends = 0;
    for name in fixture_names() {
        let stream = fixture_stream(&name);
        let mut reader =
            StreamReader::new(&stream[..]).with_checksum_policy(ChecksumPolicy::Verify);
        while let Some(entry) = reader
            .next_record()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        {
            if let Record::End(end) = &entry.record {
                assert_eq!(entry.computed_checksum, Some(end.checksum), "{name}");
                ends += 1;
            }
        }
    }
    // 18 simple streams with one END, the -I stream with 5, the -R one with 6.
    assert_eq!(ends, 18 + 5 + 6);
}

#[test]
fn the_writer_reproduces_every_fixture_byte_for_byte() {
    for name in fixture_names() {
        let stream = fixture_stream(&name);
        let rewritten = rewrite(&stream, ByteOrder::Little);
        assert!(rewritten == stream, "{name}: the rewritten stream differs");
    }
}

#[test]
fn a_big_endian_stream_reads_back_as_the_same_records_and_verifies() {
    for name in [
        "small_full",
        "dedup_full_D",
        "chain_c1_c4_I",
        "replication_R",
    ] {
        let native = fixture_stream(name);
        let big = rewrite(&native, ByteOrder::Big);
        assert_eq!(big.len(), native.len());
        assert_ne!(big, native);

        let mut a = StreamReader::new(&native[..]);
        let mut b = StreamReader::new(&big[..]);
        loop {
            let (ra, rb) = (a.next_record().unwrap(), b.next_record().unwrap());
            match (ra, rb) {
                (None, None) => break,
                (Some(ea), Some(eb)) => match (&ea.record, &eb.record) {
                    // Each END holds the checksum its own writer computed.
                    (Record::End(x), Record::End(y)) => assert_eq!(x.toguid, y.toguid),
                    _ => {
                        assert_eq!(ea.record, eb.record, "{name} record {}", ea.index);
                        assert_eq!(ea.payload, eb.payload);
                    }
                },
                _ => panic!("{name}: different record counts"),
            }
        }
        assert_eq!(b.byte_order(), Some(ByteOrder::Big));
        // And back again: the same bytes as the original.
        assert!(rewrite(&big, ByteOrder::Little) == native, "{name}");
    }
}

#[test]
fn a_big_endian_checksum_is_the_byteswapped_fletcher_of_the_same_words() {
    // What a big-endian host computes natively over its own words is, read
    // here, the byteswapped fletcher-4 of the same bytes: the END of a
    // big-endian stream must therefore differ from the little-endian one
    // while both verify.
    let native = fixture_stream("empty_full");
    let big = rewrite(&native, ByteOrder::Big);
    let end_checksum = |stream: &[u8], order| {
        let mut reader = StreamReader::new(stream);
        let mut last = ZioCksum::ZERO;
        while let Some(e) = reader.next_record().unwrap() {
            if let Record::End(end) = e.record {
                last = end.checksum;
            }
        }
        assert_eq!(reader.byte_order(), Some(order));
        last
    };
    assert_ne!(
        end_checksum(&native, ByteOrder::Little),
        end_checksum(&big, ByteOrder::Big)
    );
}

#[test]
fn writer_end_carries_the_checksum_of_its_substream_only() {
    let stream = fixture_stream("chain_c1_c4_I");
    let mut reader = StreamReader::new(&stream[..]);
    let mut writer = StreamWriter::new(Vec::new(), ByteOrder::Little);
    while let Some(entry) = reader.next_record().unwrap() {
        if let Record::End(end) = &entry.record {
            assert_eq!(writer.checksum(), end.checksum);
            writer.write_end(end.toguid).unwrap();
        } else {
            writer.write_record(&entry.record, entry.payload).unwrap();
        }
    }
    assert_eq!(writer.offset(), stream.len() as u64);
}
