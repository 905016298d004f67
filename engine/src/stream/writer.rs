//! Writes send streams, byte for byte as a ZFS host of either byte order would.
//!
//! The running checksum is the one the seed's `dump_bytes` keeps: fletcher-4
//! over every header and payload in the writer's byte order, which a host of
//! the other order reads as the byteswapped fletcher-4. `write_end` stores it
//! in the END record and starts over, so compound streams come out right.

use std::io::{self, Read, Write};

use super::reader::{ChecksumPolicy, StreamReader, fold};
use super::record::{ByteOrder, DrrEnd, Record};
use crate::checksum::ZioCksum;
use crate::error::{Errno, Error};

pub struct StreamWriter<W> {
    inner: W,
    order: ByteOrder,
    cksum: ZioCksum,
    offset: u64,
}

/// Zeros that pad an OBJECT's bonus buffer to 8 bytes.
const PAD: [u8; 8] = [0; 8];

impl<W: Write> StreamWriter<W> {
    pub fn new(inner: W, order: ByteOrder) -> Self {
        StreamWriter {
            inner,
            order,
            cksum: ZioCksum::ZERO,
            offset: 0,
        }
    }

    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// Bytes written so far (the seed's `dsa_off`, the progress offset).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The checksum an END written now would carry.
    pub fn checksum(&self) -> ZioCksum {
        self.cksum
    }

    /// Writes a record exactly as given, with its payload. An OBJECT's bonus
    /// is padded to 8 bytes here; every other payload is written as it is.
    /// The caller supplies payloads already in the writer's byte order.
    pub fn write_record(&mut self, record: &Record, payload: &[u8]) -> io::Result<()> {
        let header = record.encode(self.order);
        self.emit(&header)?;
        let after_header = self.cksum;
        let pad = match record {
            Record::Object(_) => payload.len().next_multiple_of(8) - payload.len(),
            _ => 0,
        };
        if pad == 0 {
            self.emit(payload)?;
        } else {
            // The seed checksums the padded bonus in one piece: fletcher-4
            // drops a trailing partial word of each piece it is given.
            let mut padded = payload.to_vec();
            padded.extend_from_slice(&PAD[..pad]);
            self.emit(&padded)?;
        }
        if planted!(StreamChecksumSkipsPayloads) {
            self.cksum = after_header;
        }
        if let Record::End(_) = record {
            self.cksum = ZioCksum::ZERO;
        }
        Ok(())
    }

    /// Ends the current substream with the checksum of everything before it.
    pub fn write_end(&mut self, toguid: u64) -> io::Result<()> {
        let end = Record::End(DrrEnd {
            checksum: self.cksum,
            toguid,
        });
        self.write_record(&end, &[])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Where the bytes go.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        fold(&mut self.cksum, bytes, self.order);
        self.inner.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// Re-encodes a whole stream in `order`: every header field in that order and
/// every END checksum as a host of that order computes it. Payloads are
/// carried over unchanged, so this is what a foreign host's *headers* look
/// like; swapping payloads by object type is the sender's business.
pub fn reencode<R: Read, W: Write>(input: R, output: W, order: ByteOrder) -> Result<W, Error> {
    let mut reader = StreamReader::new(input).with_checksum_policy(ChecksumPolicy::Verify);
    let mut writer = StreamWriter::new(output, order);
    // unreached: only a caller's own failing writer gets here; reencode's callers (tests) write
    // into a Vec
    let write_error = |e: io::Error| Error::new(Errno::EIO, format!("write error: {e}"));
    while let Some(entry) = reader.next_record()? {
        match &entry.record {
            // After an END the running checksum is zero, which is what a
            // compound stream's closing END carries.
            Record::End(end) => writer.write_end(end.toguid),
            Record::Object(o) => {
                writer.write_record(&entry.record, &entry.payload[..o.bonuslen as usize])
            }
            record => writer.write_record(record, entry.payload),
        }
        .map_err(write_error)?;
    }
    writer.flush().map_err(write_error)?;
    Ok(writer.into_inner())
}
