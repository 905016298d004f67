//! Damaged streams: every way a stream can be broken is refused with the
//! record index, byte offset and errno, and nothing claimed by the input is
//! trusted before it is checked.

mod common;

use common::*;
use engine::Errno;
use engine::stream::{
    ByteOrder, ChecksumPolicy, DRR_RECORD_SIZE, DrrBegin, DrrType, DrrWrite, Record, StreamError,
    StreamReader, StreamWriter,
};

/// Reads a whole stream; the error that stopped it, if any.
fn read_all(stream: &[u8]) -> Result<u64, StreamError> {
    let mut reader = StreamReader::new(stream).with_checksum_policy(ChecksumPolicy::Verify);
    while reader.next_record()?.is_some() {}
    Ok(reader.records_read())
}

/// Byte offsets at which each record of a valid stream starts.
fn record_offsets(stream: &[u8]) -> Vec<u64> {
    let mut reader = StreamReader::new(stream);
    let mut offsets = Vec::new();
    while let Some(entry) = reader.next_record().unwrap() {
        offsets.push(entry.offset);
    }
    offsets
}

fn begin() -> Record {
    let mut b = DrrBegin {
        toguid: 0x1234,
        objset_type: 2,
        ..DrrBegin::default()
    };
    b.set_toname("pool/fs@snap");
    Record::Begin(Box::new(b))
}

fn write(length: u64) -> Record {
    Record::Write(DrrWrite {
        object: 8,
        object_type: 19,
        offset: 0,
        length,
        toguid: 0x1234,
        ..DrrWrite::default()
    })
}

#[test]
fn a_stream_cut_anywhere_is_refused_at_the_record_where_it_ends() {
    let stream = fixture_stream("small_full");
    let offsets = record_offsets(&stream);
    let mut cuts: Vec<usize> = vec![0, 1, 311, 312, 313, stream.len() - 312, stream.len() - 1];
    cuts.extend(offsets.iter().map(|&o| o as usize + 100));
    for cut in cuts {
        let err = read_all(&stream[..cut]).expect_err("a cut stream is refused");
        assert_eq!(err.errno(), Errno::EINVAL, "cut at {cut}: {err}");
        // The error names the record that was being read when bytes ran out.
        let index = offsets
            .iter()
            .rposition(|&o| o as usize <= cut)
            .unwrap_or(0);
        assert_eq!(err.index as usize, index, "cut at {cut}: {err}");
        assert_eq!(err.offset, offsets[index], "cut at {cut}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("EINVAL: record {index}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("at byte offset {}", offsets[index])),
            "{text}"
        );
    }
}

#[test]
fn an_empty_stream_is_not_a_stream() {
    let err = read_all(&[]).unwrap_err();
    assert_eq!((err.errno(), err.index, err.offset), (Errno::EINVAL, 0, 0));
    assert!(err.to_string().contains("empty stream"), "{err}");
}

#[test]
fn bad_magic_is_refused_at_record_zero() {
    let mut stream = fixture_stream("empty_full");
    stream[8] ^= 0xff;
    let err = read_all(&stream).unwrap_err();
    assert_eq!((err.errno(), err.index, err.offset), (Errno::EINVAL, 0, 0));
    assert!(err.to_string().contains("bad magic"), "{err}");
}

#[test]
fn an_unknown_record_type_is_refused_with_its_place() {
    let mut stream = fixture_stream("empty_full");
    let offsets = record_offsets(&stream);
    let at = offsets[3] as usize;
    stream[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
    let err = read_all(&stream).unwrap_err();
    assert_eq!(
        (err.errno(), err.index, err.offset),
        (Errno::EINVAL, 3, offsets[3])
    );
    assert!(err.to_string().contains("unknown record type 0x9"), "{err}");
}

#[test]
fn a_payload_length_no_block_can_have_is_refused_before_it_is_read() {
    for (length, why) in [
        (1u64 << 40, "exceeds SPA_MAXBLOCKSIZE"),
        (u64::MAX, "exceeds SPA_MAXBLOCKSIZE"),
        ((128 << 10) + 8, "exceeds SPA_MAXBLOCKSIZE"),
        (100, "not a multiple of 8"),
    ] {
        let mut w = StreamWriter::new(Vec::new(), ByteOrder::Little);
        w.write_record(&begin(), &[]).unwrap();
        // No payload follows: the claim alone must be enough to refuse.
        w.write_record(&write(length), &[]).unwrap();
        let err = read_all(&w.into_inner()).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
        assert_eq!(
            (err.index, err.offset, err.drr_type),
            (1, 312, Some(DrrType::Write))
        );
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn an_oversized_bonus_or_nvlist_is_refused() {
    let mut stream = fixture_stream("small_full");
    // Record 2 is OBJECT 1; its bonuslen is at offset 8 + 20 of the header.
    let at = record_offsets(&stream)[2] as usize;
    stream[at + 28..at + 32].copy_from_slice(&321u32.to_le_bytes());
    let err = read_all(&stream).unwrap_err();
    assert_eq!((err.index, err.drr_type), (2, Some(DrrType::Object)));
    assert!(err.to_string().contains("DN_MAX_BONUSLEN"), "{err}");

    let mut stream = fixture_stream("replication_R");
    stream[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = read_all(&stream).unwrap_err();
    assert_eq!((err.index, err.drr_type), (0, Some(DrrType::Begin)));
    assert!(err.to_string().contains("nvlist payload"), "{err}");
}

#[test]
fn a_flipped_byte_is_caught_by_the_end_checksum() {
    let mut stream = fixture_stream("large_full");
    let offsets = record_offsets(&stream);
    stream[1_000_000] ^= 0x10;
    let err = read_all(&stream).unwrap_err();
    assert_eq!(err.errno(), Errno::ECKSUM);
    assert_eq!(err.index as usize, offsets.len() - 1);
    assert_eq!(err.offset, *offsets.last().unwrap());
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn every_single_bit_flip_is_refused_unless_it_hits_bytes_no_checksum_covers() {
    let stream = fixture_stream("empty_full");
    let end = stream.len() - DRR_RECORD_SIZE;
    // The END record's own payloadlen, toguid and unused union bytes are not
    // covered by any checksum: ZFS does not look at them either.
    let uncovered = |i: usize| i >= end && (4..8).contains(&(i - end)) || i >= end + 40;
    for i in 0..stream.len() {
        let mut damaged = stream.clone();
        damaged[i] ^= 0x04;
        match read_all(&damaged) {
            Err(_) => assert!(!uncovered(i), "byte {i} is not checked by ZFS either"),
            Ok(_) => assert!(uncovered(i), "a flip at byte {i} went unnoticed"),
        }
    }
}

#[test]
fn garbage_after_end_is_refused() {
    let stream = fixture_stream("empty_full");
    for garbage in [
        vec![0u8; 100],
        vec![0u8; DRR_RECORD_SIZE],
        vec![0xa5; 2 * DRR_RECORD_SIZE],
    ] {
        let mut damaged = stream.clone();
        damaged.extend_from_slice(&garbage);
        let err = read_all(&damaged).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
        assert_eq!(err.offset, stream.len() as u64);
        assert!(err.to_string().contains("garbage after END"), "{err}");
    }
}

#[test]
fn concatenated_streams_read_as_consecutive_substreams() {
    let a = fixture_stream("chain_c1_full");
    let b = fixture_stream("chain_c1_c2_i");
    let both = [a.clone(), b.clone()].concat();
    let n = read_all(&both).unwrap();
    assert_eq!(n, read_all(&a).unwrap() + read_all(&b).unwrap());
}

#[test]
fn a_begin_inside_a_stream_is_refused() {
    let mut w = StreamWriter::new(Vec::new(), ByteOrder::Little);
    w.write_record(&begin(), &[]).unwrap();
    w.write_record(&begin(), &[]).unwrap();
    let err = read_all(&w.into_inner()).unwrap_err();
    assert_eq!(
        (err.errno(), err.index, err.offset),
        (Errno::EINVAL, 1, 312)
    );
}

#[test]
fn a_claimed_length_is_backed_by_memory_only_as_bytes_arrive() {
    // A compound BEGIN claiming a 16 MiB nvlist, then 10 bytes: refused as
    // cut short, without reserving the claimed size first.
    let mut b = DrrBegin::default();
    b.set_hdrtype(2);
    b.payloadlen = 16 << 20;
    let mut stream = Record::Begin(Box::new(b))
        .encode(ByteOrder::Little)
        .to_vec();
    stream.extend_from_slice(&[0; 10]);
    let err = read_all(&stream).unwrap_err();
    assert!(
        err.to_string()
            .contains("stream ends inside the payload (10 of 16777216 bytes)"),
        "{err}"
    );
}
