//! Bodies of the fuzz targets in `fuzz/`, kept in the library so that plain
//! `cargo test` replays every corpus input through the same code. Each body
//! asserts an invariant, not only the absence of a panic.

use crate::stream::dump::{DumpOptions, dump};
use crate::stream::{ByteOrder, ChecksumPolicy, DRR_RECORD_SIZE, Record, StreamReader};

pub mod image;
pub use image::pool_image;

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
    // One copy of every block: a receive parses the same records with
    // ditto blocks or without, and the fuzzer's time goes to parsing.
    let mut pool = crate::spa::Pool::create_with(
        Box::new(dev),
        "fz",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(1)),
        |zio| zio.max_replication = 1,
    )
    .expect("the template pool");
    // As every fork will: a refused receive rewrites the pool's metadata,
    // which must take the same space it took before.
    pool.zio_mut().mdcomp_disable = true;
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
            Err(e) => {
                // Consecutive streams are received in turn: the ones before
                // the refused one stay received, whole. Everything that was
                // there before is untouched.
                let after = summary(&pool);
                let extra: Vec<_> = after.iter().filter(|d| !before.contains(d)).collect();
                assert!(
                    before.iter().all(|d| after.contains(d)),
                    "a refused receive ({e}) changed the pool: before {before:?}, after {after:?}"
                );
                assert!(
                    extra.iter().all(|d| !d.0.contains('%') && d.3 & 1 == 0),
                    "a refused receive ({e}) left a %recv or INCONSISTENT dataset: {extra:?}"
                );
                if extra.is_empty() {
                    // Every block the receive wrote was freed again: nothing
                    // leaked, nothing of the pool's was freed.
                    assert_eq!(
                        pool.referenced_space(),
                        space,
                        "a refused receive leaked or lost space"
                    );
                }
                // The full check reads every block; do it whenever an earlier
                // stream was kept, and for a sixteenth of the other inputs
                // that got as far as writing something.
                let sample = crate::checksum::fletcher_4_native(data).0[0].is_multiple_of(16);
                if !extra.is_empty() || (pool.synced_txg() != txg && sample) {
                    let report = crate::check::check(&mut pool).expect("the check runs");
                    assert!(report.is_clean(), "after a refused receive: {report}");
                }
            }
            Ok(received) => {
                assert!(!received.is_empty());
                let leftover = pool
                    .list()
                    .into_iter()
                    .any(|d| d.name.contains('%') || d.flags & 1 != 0);
                assert!(
                    !leftover,
                    "an accepted receive left a %recv or INCONSISTENT dataset"
                );
                // Every block the receive wrote reads back and verifies.
                let options = crate::traverse::WalkOptions {
                    min_birth: txg,
                    read_data: true,
                };
                for id in received {
                    let ds = pool.dataset(id).clone();
                    assert!(ds.snapname.is_some());
                    let mut seen = std::collections::BTreeSet::new();
                    crate::traverse::walk(pool.zio_mut(), &ds.bp, options, &mut seen, &mut |_| {})
                        .expect("a received snapshot reads back");
                }
                // The whole-pool check, for a sixteenth of the inputs.
                let sample = crate::checksum::fletcher_4_native(data).0[0].is_multiple_of(16);
                if sample {
                    let report = crate::check::check(&mut pool).expect("the check runs");
                    assert!(report.is_clean(), "after an accepted receive: {report}");
                }
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

/// A stream described by its records, for `recv_structured`: the fuzzer
/// chooses the records and their fields; lengths, payloads, the BEGIN and
/// the END checksum are made consistent, so the input reaches `restore_*`
/// instead of dying at the checksum.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct StructuredStream {
    pub big_endian: bool,
    /// From the template's `fz/chain@c1` (else a full stream).
    pub incremental: bool,
    pub records: Vec<StructuredRecord>,
}

#[derive(Debug, arbitrary::Arbitrary)]
pub enum StructuredRecord {
    Object {
        object: u16,
        dn_type: u8,
        bonustype: u8,
        blksz_sectors: u8,
        bonuslen: u16,
        checksum: u8,
        compress: u8,
        fill: u8,
    },
    FreeObjects {
        firstobj: u16,
        numobjs: u64,
    },
    Write {
        object: u16,
        dn_type: u8,
        offset: u32,
        len_sectors: u8,
        fill: u8,
    },
    Free {
        object: u16,
        offset: u32,
        length: Option<u32>,
    },
    WriteByref {
        object: u16,
        offset: u32,
        len_sectors: u8,
        refobject: u16,
        refoffset: u32,
        other_guid: bool,
    },
    Spill {
        object: u16,
        len_sectors: u8,
        fill: u8,
    },
}

/// The guid the structured streams' snapshots get.
const STRUCTURED_GUID: u64 = 0x5eed_0000_0000_0001;

impl StructuredStream {
    /// The stream's bytes, as a host of the chosen order would write them.
    pub fn encode(&self, fromguid: u64) -> Vec<u8> {
        use crate::stream::*;
        let order = if self.big_endian {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let mut w = StreamWriter::new(Vec::new(), order);
        let mut begin = DrrBegin {
            creation_time: 1_800_000_000,
            objset_type: 2,
            toguid: STRUCTURED_GUID,
            fromguid: if self.incremental { fromguid } else { 0 },
            ..DrrBegin::default()
        };
        let mut features = 0;
        for r in &self.records {
            match r {
                StructuredRecord::Spill { .. } => features |= DMU_BACKUP_FEATURE_SA_SPILL,
                StructuredRecord::WriteByref { .. } => features |= DMU_BACKUP_FEATURE_DEDUP,
                _ => {}
            }
        }
        begin.set_features(features);
        begin.set_toname("fz/x@fuzz");
        let write = |w: &mut StreamWriter<Vec<u8>>, r: Record, payload: &[u8]| {
            w.write_record(&r, payload).expect("writing to memory");
        };
        write(&mut w, Record::Begin(Box::new(begin)), &[]);
        for r in &self.records {
            match *r {
                StructuredRecord::Object {
                    object,
                    dn_type,
                    bonustype,
                    blksz_sectors,
                    bonuslen,
                    checksum,
                    compress,
                    fill,
                } => {
                    let bonuslen = u32::from(bonuslen % 330);
                    let record = Record::Object(DrrObject {
                        object: u64::from(object),
                        object_type: u32::from(dn_type),
                        bonustype: u32::from(bonustype),
                        blksz: u32::from(blksz_sectors) * 512,
                        bonuslen,
                        checksumtype: checksum,
                        compress,
                        toguid: STRUCTURED_GUID,
                    });
                    write(&mut w, record, &vec![fill; bonuslen as usize]);
                }
                StructuredRecord::FreeObjects { firstobj, numobjs } => write(
                    &mut w,
                    Record::FreeObjects(DrrFreeObjects {
                        firstobj: u64::from(firstobj),
                        numobjs,
                        toguid: STRUCTURED_GUID,
                    }),
                    &[],
                ),
                StructuredRecord::Write {
                    object,
                    dn_type,
                    offset,
                    len_sectors,
                    fill,
                } => {
                    let length = u64::from(len_sectors.max(1)) * 512;
                    let record = Record::Write(DrrWrite {
                        object: u64::from(object),
                        object_type: u32::from(dn_type),
                        offset: u64::from(offset),
                        length,
                        toguid: STRUCTURED_GUID,
                        ..DrrWrite::default()
                    });
                    write(&mut w, record, &vec![fill; length as usize]);
                }
                StructuredRecord::Free {
                    object,
                    offset,
                    length,
                } => write(
                    &mut w,
                    Record::Free(DrrFree {
                        object: u64::from(object),
                        offset: u64::from(offset),
                        length: length.map_or(u64::MAX, u64::from),
                        toguid: STRUCTURED_GUID,
                    }),
                    &[],
                ),
                StructuredRecord::WriteByref {
                    object,
                    offset,
                    len_sectors,
                    refobject,
                    refoffset,
                    other_guid,
                } => write(
                    &mut w,
                    Record::WriteByref(DrrWriteByref {
                        object: u64::from(object),
                        offset: u64::from(offset),
                        length: u64::from(len_sectors) * 512,
                        toguid: STRUCTURED_GUID,
                        refguid: if other_guid {
                            fromguid
                        } else {
                            STRUCTURED_GUID
                        },
                        refobject: u64::from(refobject),
                        refoffset: u64::from(refoffset),
                        ..DrrWriteByref::default()
                    }),
                    &[],
                ),
                StructuredRecord::Spill {
                    object,
                    len_sectors,
                    fill,
                } => {
                    let length = u64::from(len_sectors) * 512;
                    let record = Record::Spill(DrrSpill {
                        object: u64::from(object),
                        length,
                        toguid: STRUCTURED_GUID,
                    });
                    write(&mut w, record, &vec![fill; length as usize]);
                }
            }
        }
        w.write_end(STRUCTURED_GUID).expect("writing to memory");
        w.into_inner()
    }
}

/// `recv_structured`: a consistent stream of fuzzer-chosen records, full
/// into a new filesystem or incremental onto the template's.
pub fn recv_structured(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(stream) = <StructuredStream as arbitrary::Arbitrary>::arbitrary(&mut u) else {
        return;
    };
    let fromguid = TEMPLATE.with(|t| {
        let mut t = t.borrow_mut();
        let t = t.get_or_insert_with(template_pool);
        let c1 = t.pool.lookup("fz/chain@c1").expect("the template has @c1");
        t.pool.dataset(c1).guid
    });
    let bytes = stream.encode(fromguid);
    let target = if stream.incremental {
        "fz/chain"
    } else {
        "fz/new"
    };
    recv_into(&bytes, target);
}
