//! `cargo sim verify`: is this backup chain restorable, and what does it
//! hold? The streams are received in order into a scratch pool, exactly as
//! `zfs receive` would take them, and every snapshot received is listed file
//! by file with SHA-256 sums. The scratch pool lives on a sparse image in a
//! temporary directory, removed when verify ends, so memory does not grow
//! with the backup: a stream is read as it is received, and what the pool
//! holds in memory is bounded by its dirty-data limit, not by the stream.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use engine::dmu::objset::{DMU_OST_ZFS, DMU_OST_ZVOL};
use engine::dsl::DatasetId;
use engine::error::{Errno, Error};
use engine::recv::RecvOptions;
use engine::send::NoInterrupt;
use engine::spa::Pool;
use engine::stream::{DMU_COMPOUNDSTREAM, DRR_FLAG_CLONE, DrrBegin, Record, StreamReader};
use engine::zpl::{self, FileEntry};

use super::listing::{Json, snapshot_json, write_text};
use super::{Counted, EXIT_FAILURE, EXIT_USAGE, host_clock, host_random};
use crate::file_device::FileDevice;

/// Receive a chain of ZFS send streams into a scratch pool (a temporary
/// sparse image, see --scratch) and list every snapshot received: each
/// file's type, mode, size and SHA-256, each symlink's target.
///
/// The first stream is a full stream; each one after it is an incremental
/// stream of a snapshot received before it, or a clone stream of one (its
/// origin is found by the stream's source guid). Every filesystem keeps the
/// name it had where it was sent. The exit status is 0 only if every stream
/// was received cleanly and every snapshot could be listed; otherwise the
/// last line says why (errno, and for a damaged stream the record index and
/// byte offset) and the status is 1.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The streams, in the order to receive them.
    #[arg(required = true, value_name = "STREAM")]
    pub streams: Vec<PathBuf>,
    /// Print one JSON document instead: {"ok", "error", "snapshots": [{"name",
    /// "files": [...]}]}.
    #[arg(long)]
    pub json: bool,
    /// Where the scratch pool's image goes (a directory made inside it and
    /// removed at exit); the system's temporary directory by default. The
    /// image is sparse: it takes about the space of the data received.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// The scratch pool holds what the streams hold and more: blocks are kept
/// whole where the stream may carry holes or references, and metadata is
/// rewritten on each txg.
fn scratch_size(stream_bytes: u64) -> u64 {
    stream_bytes.saturating_mul(4).saturating_add(64 << 20)
}

/// A directory of verify's own for the scratch image, removed with all it
/// holds when dropped: on success, on a failed receive, on a panic.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(parent: &Path) -> io::Result<ScratchDir> {
        // Unique within this process too: tests run verify in threads.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("zsim-verify-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a stream's first BEGIN says about where it goes.
struct StreamHead {
    /// The first real substream's BEGIN (for a `-I` stream, the one after
    /// the compound header); the compound header of a `-R` stream.
    begin: DrrBegin,
    /// Bytes of the stream's first BEGIN record and its payload.
    first_record_len: u64,
}

fn read_head(path: &Path) -> Result<StreamHead, Error> {
    let file = File::open(path)
        .map_err(|e| Error::new(Errno::EIO, format!("cannot open {}: {e}", path.display())))?;
    let mut reader = StreamReader::new(BufReader::new(file));
    let mut first_record_len = 0;
    loop {
        let record = reader.next_record().map_err(Error::from)?.map(|e| e.record);
        if first_record_len == 0 {
            first_record_len = reader.offset();
        }
        match record {
            Some(Record::Begin(b)) if b.hdrtype() == DMU_COMPOUNDSTREAM && b.payloadlen == 0 => {
                continue; // the -I header: its END, then the first substream
            }
            Some(Record::Begin(b)) => {
                return Ok(StreamHead {
                    begin: *b,
                    first_record_len,
                });
            }
            Some(Record::End(_)) => continue,
            _ => return Err(Error::new(Errno::EINVAL, "a stream without a BEGIN record")),
        }
    }
}

/// The outcome of a verification: what was received, in order, and the
/// first thing that went wrong.
struct Report {
    /// In the order received; no files for a volume's snapshot.
    snapshots: Vec<(String, Option<Vec<FileEntry>>)>,
    streams_received: usize,
    error: Option<String>,
}

impl Report {
    /// Records a failure; a later one (a snapshot received before a broken
    /// stream that cannot be listed either) is added, not lost.
    fn fail(&mut self, error: String) {
        match &mut self.error {
            Some(first) => {
                first.push_str("; and ");
                first.push_str(&error);
            }
            None => self.error = Some(error),
        }
    }
}

pub fn run(args: &VerifyArgs) -> ExitCode {
    let mut total = 0u64;
    for path in &args.streams {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => total = total.saturating_add(m.len()),
            Ok(_) => {
                eprintln!("verify: {} is not a file", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
            Err(e) => {
                eprintln!("verify: cannot open {}: {e}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let parent = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = match ScratchDir::new(&parent) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!(
                "verify: cannot make a scratch directory in {}: {e}",
                parent.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let report = verify(&args.streams, total, &scratch.0);
    drop(scratch);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = if args.json {
        write_json(&mut out, &report)
    } else {
        write_report(&mut out, &report, args.streams.len())
    }
    .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("verify: cannot write output: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
        Ok(()) => {}
    }
    if report.error.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// What `verify --json` prints for a chain of streams (the chain received
/// into a scratch pool in the system temp dir, and every snapshot listed),
/// for comparing two engines' answers.
pub fn listing_json(streams: &[PathBuf]) -> String {
    let total = streams
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .fold(0u64, u64::saturating_add);
    let scratch = match ScratchDir::new(&std::env::temp_dir()) {
        Ok(dir) => dir,
        Err(e) => return format!("{{\"error\": \"no scratch directory: {e}\"}}"),
    };
    let report = verify(streams, total, &scratch.0);
    drop(scratch);
    let mut out = Vec::new();
    write_json(&mut out, &report).expect("writing to memory");
    String::from_utf8_lossy(&out).into_owned()
}

fn verify(streams: &[PathBuf], total: u64, scratch: &Path) -> Report {
    let mut report = Report {
        snapshots: Vec::new(),
        streams_received: 0,
        error: None,
    };
    let received = match receive_all(streams, total, scratch, &mut report) {
        Ok(received) => received,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let (mut pool, ids) = received;
    for id in ids {
        let name = pool.dataset_name(id);
        let os_type = match pool.dmu(id) {
            Ok(dmu) => dmu.objset().os_type,
            Err(e) => {
                report.fail(format!("cannot open {name}: {e}"));
                break;
            }
        };
        if os_type == DMU_OST_ZVOL {
            report.snapshots.push((name, None));
            continue;
        }
        match zpl::walk(&mut pool, id) {
            Ok(files) => report.snapshots.push((name, Some(files))),
            Err(e) if os_type != DMU_OST_ZFS => {
                report.fail(format!("cannot list {name} (objset type {os_type}): {e}"));
                break;
            }
            Err(e) => {
                report.fail(format!("cannot list {name}: {e}"));
                break;
            }
        }
    }
    report
}

/// Receives every stream in turn; on a failure, what was received before it
/// stays (and is listed) and the error names the stream.
fn receive_all(
    streams: &[PathBuf],
    total: u64,
    scratch: &Path,
    report: &mut Report,
) -> Result<(Pool, Vec<DatasetId>), String> {
    let first = &streams[0];
    let head = read_head(first).map_err(|e| format!("{}: {e}", first.display()))?;
    let toname = head.begin.toname_lossy();
    let pool_name = toname
        .split(['/', '@'])
        .next()
        .unwrap_or_default()
        .to_string();
    let image = scratch.join("scratch.img");
    let dev = FileDevice::create_scratch(&image, scratch_size(total), 512)
        .map_err(|e| format!("cannot make the scratch pool's image: {e}"))?;
    let mut pool = Pool::create(
        Box::new(dev),
        &pool_name,
        host_clock(),
        host_random(Some(0)),
    )
    .map_err(|e| {
        format!(
            "{}: cannot make a scratch pool named {pool_name:?} (from {toname:?}): {e}",
            first.display()
        )
    })?;
    let mut ids = Vec::new();
    for (i, path) in streams.iter().enumerate() {
        let which = format!("{} (stream {} of {})", path.display(), i + 1, streams.len());
        match receive_one(&mut pool, &pool_name, path) {
            Ok(received) => {
                ids.extend(received);
                report.streams_received += 1;
            }
            Err(e) => {
                report.fail(format!("{which}: {e}"));
                break;
            }
        }
    }
    Ok((pool, ids))
}

fn receive_one(pool: &mut Pool, pool_name: &str, path: &Path) -> Result<Vec<DatasetId>, String> {
    let head = read_head(path).map_err(|e| e.to_string())?;
    let begin = &head.begin;
    // Another pool's stream lands in ours, under the same path (`recv -d`).
    let tofs = super::recv::placed_under(pool_name, &begin.toname_lossy(), false);
    let full = begin.fromguid == 0;
    let clone = begin.flags & DRR_FLAG_CLONE != 0;
    let mut options = RecvOptions {
        // Only the pool's root filesystem exists before its full stream.
        force: full && tofs == pool_name,
        origin: None,
        props: Vec::new(),
    };
    if clone {
        let origin = pool
            .list()
            .into_iter()
            .find(|d| d.is_snapshot && d.guid == begin.fromguid)
            .ok_or_else(|| {
                format!(
                    "{}: record 0 (BEGIN) at byte offset 0: a clone stream needs its origin, \
                     the snapshot with guid {:#018x}, which no earlier stream holds",
                    Errno::ENOENT,
                    begin.fromguid
                )
            })?;
        options.origin = Some(origin.name);
    }
    if full || clone {
        super::create_parents(pool, &tofs)
            .map_err(|e| format!("cannot create the parents of {tofs}: {e}"))?;
    }
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut input = Counted {
        inner: BufReader::with_capacity(1 << 20, file),
        bytes: 0,
    };
    pool.receive(&tofs, &mut input, &options, &mut NoInterrupt)
        .map_err(|e| {
            // Stream errors say where they are; the checks of BEGIN and END
            // do not, but the reader consumes exactly one record at a time.
            let e = if e.reason().contains("byte offset") {
                e
            } else if input.bytes <= head.first_record_len {
                e.context("record 0 (BEGIN) at byte offset 0")
            } else {
                e.context(format!("the record ending at byte offset {}", input.bytes))
            };
            format!("cannot receive into {tofs}: {e}")
        })
}

fn write_report(out: &mut dyn Write, report: &Report, streams: usize) -> io::Result<()> {
    for (name, files) in &report.snapshots {
        match files {
            Some(files) => write_text(out, name, files)?,
            None => writeln!(out, "{name}: a volume, no files to list")?,
        }
        writeln!(out)?;
    }
    let snapshots = report.snapshots.len();
    let entries: usize = report
        .snapshots
        .iter()
        .filter_map(|(_, f)| f.as_ref())
        .map(Vec::len)
        .sum();
    let counts = format!(
        "received {} of {streams} {}, listed {snapshots} {} with {entries} entries",
        report.streams_received,
        plural(streams, "stream", "streams"),
        plural(snapshots, "snapshot", "snapshots"),
    );
    match &report.error {
        None => writeln!(out, "verify: OK: {counts}"),
        Some(error) => writeln!(out, "verify: FAILED ({counts}): {error}"),
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn write_json(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let snapshots: Vec<Json> = report
        .snapshots
        .iter()
        .map(|(name, files)| match files {
            Some(files) => snapshot_json(name, files),
            None => Json::obj([
                ("name", Json::str(name.as_str())),
                ("volume", Json::Bool(true)),
                ("files", Json::Arr(Vec::new())),
            ]),
        })
        .collect();
    let doc = Json::obj([
        ("ok", Json::Bool(report.error.is_none())),
        (
            "error",
            report
                .error
                .as_ref()
                .map_or(Json::Null, |e| Json::str(e.as_str())),
        ),
        ("snapshots", Json::Arr(snapshots)),
    ]);
    out.write_all(doc.render().as_bytes())
}
