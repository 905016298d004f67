//! A stream as its sender wrote it, cut into records with their bytes as
//! they are: what a rewriting sender (`hostile`, `malformed`) walks over.
//! The cut stops at the first bytes that are not a whole record of a known
//! type (a sender killed mid-record), which [`RawRecords::rest`] returns.

use engine::stream::{ByteOrder, DRR_RECORD_SIZE, Record, detect_byte_order};

/// One record: where it starts, its header and payload bytes, and what
/// they decode to in the stream's byte order.
pub struct RawRecord<'a> {
    pub offset: usize,
    pub header: &'a [u8; DRR_RECORD_SIZE],
    pub payload: &'a [u8],
    pub record: Record,
    pub order: ByteOrder,
}

pub struct RawRecords<'a> {
    stream: &'a [u8],
    pos: usize,
    /// The byte order, once the first header has told it (`None` inside
    /// when it could not: then nothing is a record).
    order: Option<Option<ByteOrder>>,
}

impl<'a> RawRecords<'a> {
    /// The records of `stream`, in `order` if it is known already, else in
    /// the one its first BEGIN's magic tells.
    pub fn new(stream: &'a [u8], order: Option<ByteOrder>) -> RawRecords<'a> {
        RawRecords {
            stream,
            pos: 0,
            order: order.map(Some),
        }
    }

    /// What follows the last record returned.
    pub fn rest(&self) -> &'a [u8] {
        &self.stream[self.pos..]
    }
}

impl<'a> Iterator for RawRecords<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        let header: &'a [u8; DRR_RECORD_SIZE] = self
            .stream
            .get(self.pos..self.pos + DRR_RECORD_SIZE)?
            .try_into()
            .expect("a record's size");
        let order = (*self.order.get_or_insert_with(|| detect_byte_order(header)))?;
        let record = Record::decode(header, order).ok()?;
        let start = self.pos + DRR_RECORD_SIZE;
        let len = usize::try_from(record.wire_payload_len()).ok()?;
        let payload = self.stream.get(start..start.checked_add(len)?)?;
        let offset = self.pos;
        self.pos = start + len;
        Some(RawRecord {
            offset,
            header,
            payload,
            record,
            order,
        })
    }
}
