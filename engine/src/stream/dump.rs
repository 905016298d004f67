//! `zstreamdump`: a listing of a send stream's records and a summary.
//!
//! The text is byte for byte what zfs-fuse's `zstreamdump` prints for a valid
//! stream, so the two can be diffed. Unlike it, a broken stream is not
//! skimmed over: the listing stops at the first record that cannot be read
//! and the caller gets that error (which record, where, why) after the
//! summary of what was read before it.

use std::io::{self, Read, Write};

use super::reader::{ChecksumPolicy, StreamError, StreamReader};
use super::record::{DMU_COMPOUNDSTREAM, DrrType, Record};
use crate::error::{Errno, Error};
use crate::nvlist;

/// The options `zstreamdump` has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// `-v`: every record, not only BEGIN and END.
    pub verbose: bool,
    /// `-C`: do not compute or compare the END checksums.
    pub skip_checksums: bool,
}

/// What a dump found, besides the text it printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpReport {
    /// Records by `drr_type`.
    pub counts: [u64; DrrType::COUNT],
    /// Sum of WRITE payload lengths.
    pub total_write_size: u64,
    /// Bytes of the stream that were read.
    pub total_stream_len: u64,
    /// Problems that did not stop the listing (END checksum mismatches, an
    /// nvlist that cannot be decoded), in stream order.
    pub problems: Vec<StreamError>,
    /// The error that stopped it, if the stream is not whole.
    pub fatal: Option<StreamError>,
}

impl DumpReport {
    /// Whether the stream was read to its end with nothing wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.fatal.is_none()
    }

    /// Every error found, in stream order.
    pub fn errors(&self) -> impl Iterator<Item = &StreamError> {
        self.problems.iter().chain(self.fatal.iter())
    }
}

/// Dumps the stream read from `input` to `out`. Only a failure to write `out`
/// is an `Err`; everything wrong with the stream is in the report.
pub fn dump(
    input: impl Read,
    out: &mut impl Write,
    options: DumpOptions,
) -> io::Result<DumpReport> {
    let policy = if options.skip_checksums {
        ChecksumPolicy::Skip
    } else {
        ChecksumPolicy::Report
    };
    let mut reader = StreamReader::new(input).with_checksum_policy(policy);
    let mut report = DumpReport::default();
    loop {
        let entry = match reader.next_record() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(e) => {
                report.fatal = Some(e);
                break;
            }
        };
        report.counts[entry.record.drr_type() as usize] += 1;
        match &entry.record {
            Record::Begin(b) => {
                writeln!(out, "BEGIN record")?;
                writeln!(out, "\thdrtype = {}", b.hdrtype())?;
                writeln!(out, "\tfeatures = {:x}", b.features())?;
                writeln!(out, "\tmagic = {:x}", b.magic)?;
                writeln!(out, "\tcreation_time = {:x}", b.creation_time)?;
                writeln!(out, "\ttype = {}", b.objset_type)?;
                writeln!(out, "\tflags = 0x{:x}", b.flags)?;
                writeln!(out, "\ttoguid = {:x}", b.toguid)?;
                writeln!(out, "\tfromguid = {:x}", b.fromguid)?;
                out.write_all(b"\ttoname = ")?;
                out.write_all(b.toname_bytes())?;
                out.write_all(b"\n")?;
                if options.verbose {
                    writeln!(out)?;
                }
                if b.hdrtype() == DMU_COMPOUNDSTREAM && b.payloadlen != 0 {
                    match nvlist::unpack_xdr(entry.payload) {
                        Ok(list) => {
                            let mut text = String::new();
                            nvlist::print(&list, &mut text)
                                .expect("formatting into a String cannot fail");
                            out.write_all(text.as_bytes())?;
                        }
                        Err(e) => report.problems.push(StreamError {
                            index: entry.index,
                            offset: entry.offset,
                            drr_type: Some(DrrType::Begin),
                            error: Error::new(
                                Errno::EINVAL,
                                format!("cannot unpack the nvlist payload: {e}"),
                            ),
                        }),
                    }
                }
            }
            Record::End(e) => {
                if let Some(computed) = entry.computed_checksum
                    && computed != e.checksum
                {
                    writeln!(out, "Expected checksum differs from checksum in stream.")?;
                    writeln!(out, "Expected checksum = {computed}")?;
                    report.problems.push(StreamError {
                        index: entry.index,
                        offset: entry.offset,
                        drr_type: Some(DrrType::End),
                        error: Error::new(
                            Errno::ECKSUM,
                            format!(
                                "checksum mismatch: stream says {}, computed {computed}",
                                e.checksum
                            ),
                        ),
                    });
                }
                writeln!(out, "END checksum = {}", e.checksum)?;
            }
            Record::Object(o) if options.verbose => writeln!(
                out,
                "OBJECT object = {} type = {} bonustype = {} blksz = {} bonuslen = {}",
                o.object, o.object_type, o.bonustype, o.blksz, o.bonuslen
            )?,
            Record::FreeObjects(f) if options.verbose => writeln!(
                out,
                "FREEOBJECTS firstobj = {} numobjs = {}",
                f.firstobj, f.numobjs
            )?,
            Record::Write(w) => {
                report.total_write_size = report.total_write_size.wrapping_add(w.length);
                if options.verbose {
                    writeln!(
                        out,
                        "WRITE object = {} type = {} checksum type = {}",
                        w.object, w.object_type, w.checksumtype
                    )?;
                    writeln!(
                        out,
                        "offset = {} length = {} props = {:x}",
                        w.offset, w.length, w.key.prop
                    )?;
                }
            }
            Record::WriteByref(w) if options.verbose => {
                writeln!(
                    out,
                    "WRITE_BYREF object = {} checksum type = {} props = {:x}",
                    w.object, w.checksumtype, w.key.prop
                )?;
                writeln!(out, "offset = {} length = {}", w.offset, w.length)?;
                writeln!(out, "toguid = {:x} refguid = {:x}", w.toguid, w.refguid)?;
                writeln!(
                    out,
                    "refobject = {} refoffset = {}",
                    w.refobject, w.refoffset
                )?;
            }
            // C's %lld: a length of "to the end" prints as -1.
            Record::Free(f) if options.verbose => writeln!(
                out,
                "FREE object = {} offset = {} length = {}",
                f.object, f.offset, f.length as i64
            )?,
            Record::Spill(s) if options.verbose => writeln!(
                out,
                "SPILL block for object = {} length={}",
                s.object, s.length
            )?,
            _ => {}
        }
    }
    report.total_stream_len = reader.offset();
    write_summary(out, &report)?;
    Ok(report)
}

fn write_summary(out: &mut impl Write, report: &DumpReport) -> io::Result<()> {
    let count = |t: DrrType| report.counts[t as usize];
    // zstreamdump's total leaves out WRITE_BYREF and SPILL records.
    let shown = [
        DrrType::Begin,
        DrrType::End,
        DrrType::Object,
        DrrType::FreeObjects,
        DrrType::Write,
        DrrType::Free,
    ];
    writeln!(out, "SUMMARY:")?;
    for t in shown {
        writeln!(out, "\tTotal DRR_{} records = {}", t.name(), count(t))?;
    }
    let total: u64 = shown.iter().map(|&t| count(t)).sum();
    writeln!(out, "\tTotal records = {total}")?;
    let w = report.total_write_size;
    writeln!(out, "\tTotal write size = {w} (0x{w:x})")?;
    let s = report.total_stream_len;
    writeln!(out, "\tTotal stream length = {s} (0x{s:x})")?;
    Ok(())
}
