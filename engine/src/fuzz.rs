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

/// The pool every receive fuzz input starts from: `fz/chain` holds the real
/// ZFS stream `chain_c1_full` at `@c1`, so both full streams (into a new
/// filesystem) and incrementals from `@c1` reach deep.
struct Template {
    pool: crate::spa::Pool,
    image: std::rc::Rc<[u8]>,
}

/// The real stream the template is made from (a public zfs-fuse fixture).
const TEMPLATE_STREAM: &[u8] = include_bytes!("../tests/fixtures/zfs-fuse/chain_c1_full.zsend");
const TEMPLATE_BYTES: u64 = 16 << 20;

thread_local! {
    static TEMPLATE: std::cell::RefCell<Option<Template>> = const { std::cell::RefCell::new(None) };
}

fn template_pool() -> Template {
    use crate::context::{ManualClock, SplitMix64};
    use crate::vdev::CowDevice;

    let zeros: std::rc::Rc<[u8]> = vec![0u8; TEMPLATE_BYTES as usize].into();
    let dev = CowDevice::new(zeros, 512);
    let mut pool = crate::spa::Pool::create(
        Box::new(dev),
        "fz",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(1)),
    )
    .expect("the template pool");
    pool.receive(
        "fz/chain",
        TEMPLATE_STREAM,
        &crate::recv::RecvOptions::default(),
        &mut crate::send::NoInterrupt,
    )
    .expect("the template stream");
    let mut image = vec![0u8; TEMPLATE_BYTES as usize];
    pool.device_mut()
        .read(0, &mut image)
        .expect("reading the template");
    Template {
        pool,
        image: image.into(),
    }
}

/// What a refused receive must leave exactly as it was.
fn summary(pool: &crate::spa::Pool) -> Vec<(String, u64, u64, u64, crate::zio::Blkptr)> {
    pool.list()
        .into_iter()
        .map(|d| (d.name, d.guid, d.referenced, d.flags, d.bp))
        .collect()
}

/// Receives `data` into a fresh copy of the template pool, as `target`,
/// and checks the invariant: refused means untouched and consistent;
/// accepted means the new snapshot exists and the pool is consistent.
fn recv_into(data: &[u8], target: &str) {
    use crate::context::{ManualClock, SplitMix64};
    use crate::vdev::CowDevice;

    TEMPLATE.with(|t| {
        let mut t = t.borrow_mut();
        let t = t.get_or_insert_with(template_pool);
        let dev = CowDevice::new(t.image.clone(), 512);
        let mut pool = t
            .pool
            .fork(
                Box::new(dev),
                Box::new(ManualClock::new(1_800_000_100)),
                Box::new(SplitMix64::new(2)),
            )
            .expect("forking the template");
        let before = summary(&pool);
        let space = pool.referenced_space();
        let txg = pool.synced_txg();
        let result = pool.receive(
            target,
            data,
            &crate::recv::RecvOptions::default(),
            &mut crate::send::NoInterrupt,
        );
        match result {
            Err(_) => {
                assert_eq!(summary(&pool), before, "a refused receive changed the pool");
                // Every block the receive wrote was freed again: nothing
                // leaked, nothing of the pool's was freed.
                assert_eq!(
                    pool.referenced_space(),
                    space,
                    "a refused receive leaked or lost space"
                );
                // The full check reads every block; do it for a sixteenth
                // of the inputs that got as far as writing something.
                let sample = crate::checksum::fletcher_4_native(data).0[0].is_multiple_of(16);
                if pool.synced_txg() != txg && sample {
                    let report = crate::check::check(&mut pool).expect("the check runs");
                    assert!(report.is_clean(), "after a refused receive: {report}");
                }
            }
            Ok(received) => {
                assert!(!received.is_empty());
                for id in received {
                    assert!(pool.dataset(id).snapname.is_some());
                }
                assert!(
                    !pool
                        .list()
                        .iter()
                        .any(|d| d.name.contains('%') || d.flags & 1 != 0)
                );
                let report = crate::check::check(&mut pool).expect("the check runs");
                assert!(report.is_clean(), "after an accepted receive: {report}");
            }
        }
    });
}

/// `recv_raw`: any bytes, received as a new filesystem.
pub fn recv_raw(data: &[u8]) {
    recv_into(data, "fz/new");
}

/// `recv_existing`: any bytes, received onto a filesystem with snapshots.
pub fn recv_existing(data: &[u8]) {
    recv_into(data, "fz/chain");
}
