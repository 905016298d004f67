//! A streaming reader of send streams over any `io::Read`.
//!
//! It yields each record with its payload and keeps the running fletcher-4
//! as the seed's receiver does (`restore_read`): every header and payload is
//! folded in as it is read, natively or byteswapped according to the first
//! BEGIN's magic, and reset after each END, whose stored checksum covers
//! everything of its substream before it. Lengths claimed by a record are
//! checked against the largest legal payload *before* anything is allocated,
//! so memory stays bounded whatever the input says.

use std::fmt;
use std::io::{self, Read};

use super::record::{
    ByteOrder, DMU_BACKUP_MAGIC, DMU_COMPOUNDSTREAM, DRR_RECORD_SIZE, DecodeError, DrrType, Record,
    detect_byte_order,
};
use crate::checksum::{ZioCksum, fletcher_4_incremental_byteswap, fletcher_4_incremental_native};
use crate::error::{Errno, Error};

/// `SPA_MAXBLOCKSIZE` of the seed's era: the largest WRITE or SPILL payload.
pub const SPA_MAXBLOCKSIZE: u64 = 128 << 10;
/// `DN_MAX_BONUSLEN`: the largest bonus buffer an OBJECT record can carry.
pub const DN_MAX_BONUSLEN: u64 = 320;
/// The largest packed nvlist accepted after a compound stream's BEGIN. ZFS
/// sets no limit; this one holds the header of a replication stream of tens
/// of thousands of datasets while keeping a hostile length harmless.
pub const MAX_NVLIST_PAYLOAD: u64 = 16 << 20;

/// A payload is read in pieces of at most this size, so a claimed length is
/// only ever backed by memory once the bytes have really arrived.
const READ_CHUNK: usize = 1 << 20;

/// What the reader does with the END checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// A mismatch is an ECKSUM error, as in the seed's `dmu_recv_stream`.
    Verify,
    /// Compute it and hand it to the caller with the END record, but go on
    /// (`zstreamdump` prints the difference and continues).
    Report,
    /// Do not compute it at all (`zstreamdump -C`).
    Skip,
}

/// One record as it came off the stream.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Position of the record in the stream, counting from 0.
    pub index: u64,
    /// Byte offset of the record's header.
    pub offset: u64,
    pub record: Record,
    /// The bytes that followed the header (an OBJECT's bonus with its padding).
    pub payload: &'a [u8],
    /// For an END record (unless checksums are skipped): the fletcher-4 the
    /// reader computed over the substream before it.
    pub computed_checksum: Option<ZioCksum>,
}

/// A stream the reader cannot go on with: which record, where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    pub index: u64,
    pub offset: u64,
    /// The record's type when its header could be decoded.
    pub drr_type: Option<DrrType>,
    pub error: Error,
}

impl StreamError {
    pub fn errno(&self) -> Errno {
        self.error.errno()
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: record {}", self.error.errno(), self.index)?;
        if let Some(t) = self.drr_type {
            write!(f, " ({t})")?;
        }
        write!(
            f,
            " at byte offset {}: {}",
            self.offset,
            self.error.reason()
        )
    }
}

impl std::error::Error for StreamError {}

impl From<StreamError> for Error {
    fn from(e: StreamError) -> Error {
        let context = match e.drr_type {
            Some(t) => format!("record {} ({t}) at byte offset {}", e.index, e.offset),
            None => format!("record {} at byte offset {}", e.index, e.offset),
        };
        e.error.context(context)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing read yet: a BEGIN must come first.
    Start,
    /// Inside a substream (or a compound header), before its END.
    InStream,
    /// Just after an END: the stream may end, or a BEGIN or a compound
    /// stream's closing END may follow.
    AfterEnd,
    /// An error was returned; nothing more is read.
    Failed,
}

pub struct StreamReader<R> {
    inner: R,
    policy: ChecksumPolicy,
    order: Option<ByteOrder>,
    state: State,
    cksum: ZioCksum,
    offset: u64,
    index: u64,
    header: [u8; DRR_RECORD_SIZE],
    payload: Vec<u8>,
}

impl<R: Read> StreamReader<R> {
    pub fn new(inner: R) -> Self {
        StreamReader {
            inner,
            policy: ChecksumPolicy::Verify,
            order: None,
            state: State::Start,
            cksum: ZioCksum::ZERO,
            offset: 0,
            index: 0,
            header: [0; DRR_RECORD_SIZE],
            payload: Vec::new(),
        }
    }

    pub fn with_checksum_policy(mut self, policy: ChecksumPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The byte order of the stream, known once its first BEGIN was read.
    pub fn byte_order(&self) -> Option<ByteOrder> {
        self.order
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.index
    }

    /// The running checksum of the current substream.
    pub fn checksum(&self) -> ZioCksum {
        self.cksum
    }

    /// The next record, `None` at a clean end of stream (right after an END).
    pub fn next_record(&mut self) -> Result<Option<Entry<'_>>, StreamError> {
        match self.read_record() {
            Ok(Some(next)) => Ok(Some(Entry {
                index: next.index,
                offset: next.offset,
                record: next.record,
                payload: &self.payload[..next.payload_len],
                computed_checksum: next.computed_checksum,
            })),
            Ok(None) => Ok(None),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn read_record(&mut self) -> Result<Option<Parsed>, StreamError> {
        let index = self.index;
        let offset = self.offset;
        let fail = |drr_type: Option<DrrType>, error: Error| StreamError {
            index,
            offset,
            drr_type,
            error,
        };

        let state = self.state;
        if state == State::Failed {
            return Ok(None);
        }
        let got =
            read_full(&mut self.inner, &mut self.header).map_err(|e| fail(None, io_error(e)))?;
        self.offset += got as u64;
        if got < DRR_RECORD_SIZE {
            let reason = match (state, got) {
                (State::AfterEnd, 0) => return Ok(None),
                (State::Start, 0) => "empty stream: expected a BEGIN record".to_string(),
                (State::AfterEnd, n) => format!("garbage after END record: {n} trailing bytes"),
                (_, 0) => "stream ends before its END record".to_string(),
                (_, n) => {
                    format!("stream ends inside a record header ({n} of {DRR_RECORD_SIZE} bytes)")
                }
            };
            return Err(fail(None, Error::new(Errno::EINVAL, reason)));
        }

        let order = match self.order {
            Some(order) => order,
            None => {
                let order = detect_byte_order(&self.header).ok_or_else(|| {
                    fail(
                        None,
                        Error::new(Errno::EINVAL, "invalid stream (bad magic number)"),
                    )
                })?;
                self.order = Some(order);
                order
            }
        };
        let record =
            Record::decode(&self.header, order).map_err(|DecodeError::UnknownType(t)| {
                let reason = if state == State::AfterEnd {
                    format!("garbage after END record (unknown record type {t:#x})")
                } else {
                    format!("unknown record type {t:#x}")
                };
                fail(None, Error::new(Errno::EINVAL, reason))
            })?;
        let drr_type = record.drr_type();
        let refuse = |reason: String| Err(fail(Some(drr_type), Error::new(Errno::EINVAL, reason)));

        match (state, drr_type) {
            (State::Start, DrrType::Begin) => {}
            (State::Start, _) => return refuse("stream does not start with a BEGIN record".into()),
            (State::AfterEnd, DrrType::Begin | DrrType::End) => {}
            (State::AfterEnd, _) => return refuse("garbage after END record".into()),
            (_, DrrType::Begin) => {
                return refuse("BEGIN record inside a stream, before its END".into());
            }
            _ => {}
        }
        if let Record::Begin(begin) = &record
            && begin.magic != DMU_BACKUP_MAGIC
        {
            let reason = format!(
                "bad magic number {:#x} in a {} stream",
                begin.magic,
                order.name()
            );
            return refuse(if state == State::AfterEnd {
                format!("garbage after END record ({reason})")
            } else {
                reason
            });
        }

        let payload_len = record.wire_payload_len();
        let max = match &record {
            Record::Begin(b) if b.hdrtype() == DMU_COMPOUNDSTREAM => MAX_NVLIST_PAYLOAD,
            Record::Object(_) => DN_MAX_BONUSLEN.next_multiple_of(8),
            Record::Write(_) | Record::Spill(_) => SPA_MAXBLOCKSIZE,
            _ => 0,
        };
        if payload_len > max {
            let what = match &record {
                Record::Object(o) => format!(
                    "bonuslen {} exceeds DN_MAX_BONUSLEN ({DN_MAX_BONUSLEN})",
                    o.bonuslen
                ),
                Record::Begin(_) => {
                    format!("nvlist payload of {payload_len} bytes exceeds the {max}-byte limit")
                }
                _ => format!("payload length {payload_len} exceeds SPA_MAXBLOCKSIZE ({max})"),
            };
            return refuse(what);
        }
        if matches!(record, Record::Write(_) | Record::Spill(_)) && payload_len % 8 != 0 {
            // The seed's restore_read() asserts 8-byte multiples; no sender
            // writes anything else.
            return refuse(format!(
                "payload length {payload_len} is not a multiple of 8"
            ));
        }
        // Bounded by `max` above, so this fits in memory and in usize.
        let payload_len = payload_len as usize;

        let cksum_before = self.cksum;
        if self.policy != ChecksumPolicy::Skip {
            fold(&mut self.cksum, &self.header, order);
        }

        self.payload.clear();
        while self.payload.len() < payload_len {
            let start = self.payload.len();
            let want = (payload_len - start).min(READ_CHUNK);
            self.payload.resize(start + want, 0);
            let got = read_full(&mut self.inner, &mut self.payload[start..])
                .map_err(|e| fail(Some(drr_type), io_error(e)))?;
            self.offset += got as u64;
            if got < want {
                return refuse(format!(
                    "stream ends inside the payload ({} of {payload_len} bytes)",
                    start + got
                ));
            }
        }
        if self.policy != ChecksumPolicy::Skip && !planted!(StreamChecksumSkipsPayloads) {
            fold(&mut self.cksum, &self.payload, order);
        }

        let mut computed_checksum = None;
        match &record {
            Record::End(end) => {
                if self.policy != ChecksumPolicy::Skip {
                    computed_checksum = Some(cksum_before);
                    if self.policy == ChecksumPolicy::Verify && end.checksum != cksum_before {
                        return Err(fail(
                            Some(drr_type),
                            Error::new(
                                Errno::ECKSUM,
                                format!(
                                    "checksum mismatch: stream says {}, computed {}",
                                    end.checksum, cksum_before
                                ),
                            ),
                        ));
                    }
                }
                self.cksum = ZioCksum::ZERO;
                self.state = State::AfterEnd;
            }
            _ => self.state = State::InStream,
        }

        self.index += 1;
        Ok(Some(Parsed {
            index,
            offset,
            record,
            payload_len,
            computed_checksum,
        }))
    }
}

struct Parsed {
    index: u64,
    offset: u64,
    record: Record,
    payload_len: usize,
    computed_checksum: Option<ZioCksum>,
}

/// Folds bytes written in `order` into a running stream checksum.
pub fn fold(cksum: &mut ZioCksum, bytes: &[u8], order: ByteOrder) {
    if order.is_swapped() {
        fletcher_4_incremental_byteswap(bytes, cksum);
    } else {
        fletcher_4_incremental_native(bytes, cksum);
    }
}

/// Reads until `buf` is full or the input ends; returns how much arrived.
fn read_full(inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match inner.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn io_error(e: io::Error) -> Error {
    Error::new(Errno::EIO, format!("read error: {e}"))
}
