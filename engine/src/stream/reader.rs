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
    /// The stream's byte order (its first BEGIN's).
    pub order: ByteOrder,
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

/// Where the feed is inside the current record.
#[derive(Clone, Debug)]
enum Phase {
    /// Collecting the 312-byte header; `header_len` bytes are in.
    Header,
    /// The header was decoded and checked; collecting its payload.
    Payload {
        record: Record,
        payload_len: usize,
        cksum_before: ZioCksum,
    },
}

/// What [`RecordFeed::next_record`] has for its caller.
#[derive(Debug)]
pub enum Next<'a> {
    /// A whole record, checked, with its payload.
    Record(Entry<'a>),
    /// The bytes fed so far end inside a record: feed more (or the end of
    /// the input).
    NeedMore,
    /// A clean end of the stream: the input ended right after an END.
    End,
}

/// The stream reader's core, fed bytes in pieces of any size as they
/// arrive (a pipe's short reads) rather than pulling them: it yields a
/// record only once all of it is in, and keeps the running fletcher-4 and
/// the byte offset of every record for error messages. It holds at most one
/// record and what was fed beyond it.
pub struct RecordFeed {
    policy: ChecksumPolicy,
    order: Option<ByteOrder>,
    state: State,
    phase: Phase,
    cksum: ZioCksum,
    /// Bytes taken into records so far.
    offset: u64,
    /// Where the current record's header starts.
    record_offset: u64,
    index: u64,
    header: [u8; DRR_RECORD_SIZE],
    header_len: usize,
    payload: Vec<u8>,
    /// Bytes fed and not yet taken, from `pending_at` on.
    pending: Vec<u8>,
    pending_at: usize,
    /// The input has ended: what is pending is all there is.
    eof: bool,
}

impl Default for RecordFeed {
    fn default() -> Self {
        RecordFeed::new()
    }
}

impl RecordFeed {
    pub fn new() -> Self {
        RecordFeed {
            policy: ChecksumPolicy::Verify,
            order: None,
            state: State::Start,
            phase: Phase::Header,
            cksum: ZioCksum::ZERO,
            offset: 0,
            record_offset: 0,
            index: 0,
            header: [0; DRR_RECORD_SIZE],
            header_len: 0,
            payload: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            eof: false,
        }
    }

    pub fn with_checksum_policy(mut self, policy: ChecksumPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Bytes from the input, in order.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pending_at == self.pending.len() {
            self.pending.clear();
            self.pending_at = 0;
        } else if self.pending_at > self.pending.len() / 2 {
            self.pending.drain(..self.pending_at);
            self.pending_at = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    /// The input has ended.
    pub fn push_eof(&mut self) {
        self.eof = true;
    }

    /// Whether the input has ended.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Bytes the current record still lacks beyond what is pending, at most
    /// a read's worth: what a reader that pulls should ask its input for.
    pub fn wants(&self) -> usize {
        let missing = match &self.phase {
            Phase::Header => DRR_RECORD_SIZE - self.header_len,
            Phase::Payload { payload_len, .. } => {
                (payload_len - self.payload.len()).min(READ_CHUNK)
            }
        };
        missing.saturating_sub(self.pending.len() - self.pending_at)
    }

    /// The byte order of the stream, known once its first BEGIN was read.
    pub fn byte_order(&self) -> Option<ByteOrder> {
        self.order
    }

    /// Bytes taken into records so far.
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

    /// An error of the input itself (a failed read), placed at the record
    /// being read; nothing more is read after it.
    pub fn input_error(&mut self, error: Error) -> StreamError {
        let drr_type = match &self.phase {
            Phase::Header => None,
            Phase::Payload { record, .. } => Some(record.drr_type()),
        };
        self.state = State::Failed;
        StreamError {
            index: self.index,
            offset: self.record_offset,
            drr_type,
            error,
        }
    }

    /// The next whole record, if all of it was fed.
    pub fn next_record(&mut self) -> Result<Next<'_>, StreamError> {
        Ok(match self.advance()? {
            Status::Record(parsed) => Next::Record(self.entry(parsed)),
            Status::NeedMore => Next::NeedMore,
            Status::End => Next::End,
        })
    }

    /// [`next_record`](RecordFeed::next_record) without the borrow of the payload.
    fn advance(&mut self) -> Result<Status, StreamError> {
        match self.take_record() {
            Ok(Some(parsed)) => Ok(Status::Record(parsed)),
            Ok(None) if self.state == State::Failed || (self.eof && self.is_idle()) => {
                Ok(Status::End)
            }
            Ok(None) => Ok(Status::NeedMore),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn entry(&self, parsed: Parsed) -> Entry<'_> {
        Entry {
            index: parsed.index,
            offset: parsed.offset,
            record: parsed.record,
            payload: &self.payload[..parsed.payload_len],
            computed_checksum: parsed.computed_checksum,
            order: self.order.unwrap_or(ByteOrder::NATIVE),
        }
    }

    /// Nothing of a record taken in.
    fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Header) && self.header_len == 0
    }

    /// Moves up to `want` pending bytes into `out`; returns how many.
    fn take_pending(pending: &[u8], at: &mut usize, out: &mut [u8]) -> usize {
        let n = out.len().min(pending.len() - *at);
        out[..n].copy_from_slice(&pending[*at..*at + n]);
        *at += n;
        n
    }

    /// A record once all of it is in; `None` while bytes are missing (or
    /// at the end, or after a failure: [`next_record`](RecordFeed::next_record) tells).
    fn take_record(&mut self) -> Result<Option<Parsed>, StreamError> {
        if self.state == State::Failed {
            return Ok(None);
        }
        if let Phase::Header = self.phase {
            let got = Self::take_pending(
                &self.pending,
                &mut self.pending_at,
                &mut self.header[self.header_len..],
            );
            self.header_len += got;
            self.offset += got as u64;
            if self.header_len < DRR_RECORD_SIZE {
                if !self.eof {
                    return Ok(None);
                }
                return self.header_cut_short();
            }
            self.header_len = 0;
            self.phase = self.decode_header()?;
        }
        let Phase::Payload { payload_len, .. } = self.phase else {
            unreachable!("a decoded header");
        };
        let index = self.index;
        let offset = self.record_offset;
        while self.payload.len() < payload_len {
            let start = self.payload.len();
            let avail = self.pending.len() - self.pending_at;
            // Memory only for bytes that are really there.
            let want = (payload_len - start).min(READ_CHUNK).min(avail);
            if want == 0 {
                if !self.eof {
                    return Ok(None);
                }
                let Phase::Payload { record, .. } = &self.phase else {
                    unreachable!("a payload phase");
                };
                return Err(StreamError {
                    index,
                    offset,
                    drr_type: Some(record.drr_type()),
                    error: Error::new(
                        Errno::EINVAL,
                        format!("stream ends inside the payload ({start} of {payload_len} bytes)"),
                    ),
                });
            }
            self.payload.resize(start + want, 0);
            Self::take_pending(
                &self.pending,
                &mut self.pending_at,
                &mut self.payload[start..],
            );
            self.offset += want as u64;
        }
        let Phase::Payload {
            record,
            cksum_before,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Header)
        else {
            unreachable!("a payload phase");
        };
        let order = self.order.expect("known once a header was decoded");
        if self.policy != ChecksumPolicy::Skip && !planted!(StreamChecksumSkipsPayloads) {
            fold(&mut self.cksum, &self.payload, order);
        }

        let mut computed_checksum = None;
        match &record {
            Record::End(end) => {
                if self.policy != ChecksumPolicy::Skip {
                    computed_checksum = Some(cksum_before);
                    if self.policy == ChecksumPolicy::Verify && end.checksum != cksum_before {
                        return Err(StreamError {
                            index,
                            offset,
                            drr_type: Some(record.drr_type()),
                            error: Error::new(
                                Errno::ECKSUM,
                                format!(
                                    "checksum mismatch: stream says {}, computed {}",
                                    end.checksum, cksum_before
                                ),
                            ),
                        });
                    }
                }
                self.cksum = ZioCksum::ZERO;
                self.state = State::AfterEnd;
            }
            _ => self.state = State::InStream,
        }

        self.index += 1;
        self.record_offset = self.offset;
        Ok(Some(Parsed {
            index,
            offset,
            record,
            payload_len,
            computed_checksum,
        }))
    }

    /// The input ended inside a header, or cleanly after an END.
    fn header_cut_short(&mut self) -> Result<Option<Parsed>, StreamError> {
        let got = self.header_len;
        let reason = match (self.state, got) {
            (State::AfterEnd, 0) => return Ok(None),
            (State::Start, 0) => "empty stream: expected a BEGIN record".to_string(),
            (State::AfterEnd, n) => format!("garbage after END record: {n} trailing bytes"),
            (_, 0) => "stream ends before its END record".to_string(),
            (_, n) => {
                format!("stream ends inside a record header ({n} of {DRR_RECORD_SIZE} bytes)")
            }
        };
        Err(StreamError {
            index: self.index,
            offset: self.record_offset,
            drr_type: None,
            error: Error::new(Errno::EINVAL, reason),
        })
    }

    /// Decodes and checks a whole header (type, order in the stream, magic,
    /// payload length), folds it into the checksum, and says what payload
    /// to collect.
    fn decode_header(&mut self) -> Result<Phase, StreamError> {
        let index = self.index;
        let offset = self.record_offset;
        let fail = |drr_type: Option<DrrType>, error: Error| StreamError {
            index,
            offset,
            drr_type,
            error,
        };
        let state = self.state;
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
        Ok(Phase::Payload {
            record,
            payload_len,
            cksum_before,
        })
    }
}

/// The stream reader over an `io::Read`: a [`RecordFeed`] that pulls what
/// each record still lacks from its input, and no more.
pub struct StreamReader<R> {
    inner: R,
    feed: RecordFeed,
}

impl<R: Read> StreamReader<R> {
    pub fn new(inner: R) -> Self {
        StreamReader {
            inner,
            feed: RecordFeed::new(),
        }
    }

    pub fn with_checksum_policy(mut self, policy: ChecksumPolicy) -> Self {
        self.feed = self.feed.with_checksum_policy(policy);
        self
    }

    /// The byte order of the stream, known once its first BEGIN was read.
    pub fn byte_order(&self) -> Option<ByteOrder> {
        self.feed.byte_order()
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.feed.offset()
    }

    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.feed.records_read()
    }

    /// The running checksum of the current substream.
    pub fn checksum(&self) -> ZioCksum {
        self.feed.checksum()
    }

    /// The feed underneath, for a caller that goes on by record.
    pub fn feed_mut(&mut self) -> &mut RecordFeed {
        &mut self.feed
    }

    /// Pulls what the current record lacks into the feed: false once the
    /// input has ended.
    pub fn fill(&mut self) -> Result<bool, StreamError> {
        let mut buf = [0u8; DRR_RECORD_SIZE];
        let mut big = Vec::new();
        let want = self.feed.wants();
        if want == 0 {
            return Ok(!self.feed.at_eof());
        }
        let dst: &mut [u8] = if want <= buf.len() {
            &mut buf[..want]
        } else {
            big.resize(want, 0);
            &mut big
        };
        let got =
            read_full(&mut self.inner, dst).map_err(|e| self.feed.input_error(io_error(e)))?;
        self.feed.push(&dst[..got]);
        if got < want {
            self.feed.push_eof();
            return Ok(false);
        }
        Ok(true)
    }

    /// The next record, `None` at a clean end of stream (right after an END).
    pub fn next_record(&mut self) -> Result<Option<Entry<'_>>, StreamError> {
        loop {
            match self.feed.advance()? {
                Status::Record(parsed) => return Ok(Some(self.feed.entry(parsed))),
                Status::End => return Ok(None),
                Status::NeedMore => {
                    self.fill()?;
                }
            }
        }
    }
}

/// [`Next`] without the payload's borrow.
enum Status {
    Record(Parsed),
    NeedMore,
    End,
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
    // unreached: only a failing input: the command line's stdin or file; the simulation feeds a
    // RecordFeed and the fuzzers read from byte slices
    Error::new(Errno::EIO, format!("read error: {e}"))
}
