//! LZJB against real ZFS: every block a fixture stream carries is
//! compressed by zsim to exactly the physical size and checksum that ZFS's
//! block pointer recorded (the WRITE record's key).

mod common;

use common::*;
use engine::checksum::fletcher_4_native;
use engine::stream::{Record, StreamReader};
use engine::zio::compress::{Compressed, ZioCompress, compress_block};

#[test]
fn every_lzjb_block_of_every_fixture_compresses_as_zfs_did() {
    let (mut lzjb, mut plain_metadata) = (0, 0);
    for name in fixture_names() {
        let stream = fixture_stream(&name);
        let mut reader = StreamReader::new(&stream[..]);
        while let Some(entry) = reader.next_record().unwrap() {
            let Record::Write(w) = &entry.record else {
                continue;
            };
            if w.checksumtype != 7 {
                continue; // sha-256 (dedup) keys are checked by the dedup tests
            }
            let data = entry.payload;
            let metadata = engine::dmu::object_type::is_metadata(w.object_type);
            let compress = w.key.compress();
            if compress == ZioCompress::Lzjb as u8 {
                lzjb += 1;
                let Compressed::Stored {
                    data: phys,
                    compress,
                } = compress_block(ZioCompress::Lzjb, data).unwrap()
                else {
                    panic!("{name}: a hole")
                };
                assert_eq!(
                    compress,
                    ZioCompress::Lzjb,
                    "{name} object {} offset {}",
                    w.object,
                    w.offset
                );
                assert_eq!(
                    phys.len() as u64,
                    w.key.psize(),
                    "{name} object {} offset {}",
                    w.object,
                    w.offset
                );
                assert_eq!(
                    fletcher_4_native(&phys),
                    w.key.cksum,
                    "{name} object {} offset {}",
                    w.object,
                    w.offset
                );
            } else if metadata {
                // ZFS tried lzjb on this metadata block and it did not pay.
                plain_metadata += 1;
                assert!(
                    matches!(
                        compress_block(ZioCompress::Lzjb, data).unwrap(),
                        Compressed::Stored {
                            compress: ZioCompress::Off,
                            ..
                        }
                    ),
                    "{name} object {} offset {}",
                    w.object,
                    w.offset
                );
                assert_eq!(fletcher_4_native(data), w.key.cksum);
            }
        }
    }
    assert!(
        lzjb > 10 && plain_metadata > 10,
        "{lzjb} lzjb blocks, {plain_metadata} plain metadata blocks"
    );
}
