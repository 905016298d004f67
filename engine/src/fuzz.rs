//! Bodies of the fuzz targets in `fuzz/`, kept in the library so that plain
//! `cargo test` replays every corpus input through the same code. Each body
//! asserts an invariant, not only the absence of a panic.

use crate::stream::dump::{DumpOptions, dump};
use crate::stream::{ByteOrder, ChecksumPolicy, DRR_RECORD_SIZE, Record, StreamReader};

/// `stream_decode`: any 312 bytes either fail to decode or decode to a record
/// that encodes and decodes back to itself, in both byte orders.
pub fn stream_decode(data: &[u8]) {
    for chunk in data.chunks_exact(DRR_RECORD_SIZE) {
        let bytes: &[u8; DRR_RECORD_SIZE] = chunk.try_into().expect("exact chunk");
        for order in [ByteOrder::Little, ByteOrder::Big] {
            if let Ok(record) = Record::decode(bytes, order) {
                let again = record.encode(order);
                assert_eq!(Record::decode(&again, order).as_ref(), Ok(&record));
                // Re-encoding is canonical: a second trip changes nothing.
                assert_eq!(Record::decode(&again, order).unwrap().encode(order), again);
            }
        }
    }
}

/// `dump`: any byte string dumps without panicking, never claims to have read
/// more than it was given, and a stream the dump calls clean is one the
/// strict reader accepts to its end.
pub fn dump_any(data: &[u8]) {
    for verbose in [false, true] {
        for skip_checksums in [false, true] {
            let options = DumpOptions {
                verbose,
                skip_checksums,
            };
            let report = dump(data, &mut std::io::sink(), options).expect("a sink never fails");
            assert!(report.total_stream_len <= data.len() as u64);
            if report.is_clean() && !skip_checksums {
                let mut reader =
                    StreamReader::new(data).with_checksum_policy(ChecksumPolicy::Verify);
                while reader
                    .next_record()
                    .expect("clean for the dump, clean for the reader")
                    .is_some()
                {}
                assert_eq!(reader.offset(), data.len() as u64);
            }
        }
    }
}
