//! `zfs send | zfs receive` in the simulated world: a sending task and a
//! receiving task joined by a [`SimPipe`](super::pipe), running alongside
//! everything else.
//!
//! Both sides go a record at a time, as the seed does (each `restore_*` is
//! one tx): the sender steps a [`SendSession`] one block at a time and
//! writes what it produced into the pipe, waiting for room; the receiver
//! reads whatever the pipe gives it (short reads, stalls, damage, EOF) into
//! a [`RecordFeed`] and hands each whole record to a [`RecvSession`]. So a
//! receive spans txgs (the txg-sync task runs while records arrive), and
//! any other task may run between two records. A receiver that stops
//! (refusal, signal, crash) closes its end, and the sender's next write
//! fails with EPIPE, as `zfs send` into a dead pipe does.
//!
//! The faults of one transfer are drawn up front ([`TransferFaults::draw`],
//! at the rates of [`TransferOptions`] and the pipe's [`PipeOptions`]) and
//! recorded in the trace when they take effect:
//!
//! * **endian** (per send): the stream is written in the other byte order,
//!   which the receiver must read just the same.
//! * **signal** (per transfer): a side and a moment, within
//!   `signal_window_us_per_kib` of virtual time per KiB of the send's
//!   estimate (at least 1 ms) after the transfer starts. The side
//!   sees it where the seed checks `issig`: the sender per block
//!   (`backup_cb`), the receiver per record, and either while it waits on
//!   the pipe. A signal whose moment comes after that side is done is not
//!   delivered and not recorded as a fault. An interrupted sender closes
//!   the pipe after what it wrote, like a killed `zfs send`.
//! * **pipe-damage** (per transfer): drawn by the pipe, see [`Damage`].
//! * **hostile** (per transfer): a seed and a count; the sender rewrites
//!   one record, see [`hostile`](super::hostile). Recorded when the
//!   rewritten record is sent. A hostile sender buffers its whole stream
//!   before writing it (the filter may hold a record back to reorder it).
//! * **malformed** (per transfer): a seed and a count; the sender rewrites
//!   one directory, master node or znode, see
//!   [`malformed`](super::malformed), and buffers its stream the same way.
//!   Drawn only where [`TransferFaults::malformed_ok`] lets the oracle
//!   judge it.
//!
//! The receiver receives whatever arrives (as `zfs recv` reads whatever the
//! pipe gives it), so a cut stream is the receiver's EINVAL.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use engine::context::Interrupt;
use engine::dsl::DatasetId;
use engine::error::{Errno, Error, Result};
use engine::recv::{RecvOptions, RecvSession};
use engine::send::{DedupTable, SendOptions, SendSummary};
use engine::spa::Pool;
use engine::stream::{ByteOrder, Next, RecordFeed};
use rand::Rng;

use super::clock::SimClock;
use super::faults::FaultKind;
use super::hostile::{Applied, HostileDraw, HostileSender};
use super::injector::Injector;
use super::malformed::{MalformedDraw, Struck, rewrite as rewrite_malformed};
use super::options::{PipeOptions, TransferOptions, WorldOptions};
use super::pipe::{Damage, PipeReader, PipeWriter, pipe};

/// Which end of the pipe a signal goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Sender,
    Receiver,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        })
    }
}

/// A signal drawn for a transfer, and whether it was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    pub side: Side,
    /// Virtual time after the transfer's start it is sent at.
    pub at: Duration,
    pub delivered: bool,
    /// Delivered while its side waited on the pipe (not between records).
    pub while_waiting: bool,
}

/// What to send and where to receive it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferSpec {
    /// `pool/fs@snap`.
    pub tosnap: String,
    /// `-i pool/fs@earlier`.
    pub fromsnap: Option<String>,
    /// `-D`.
    pub dedup: bool,
    /// `zfs receive`'s argument: `pool/fs` or `pool/fs@snap`.
    pub target: String,
    /// `-F`.
    pub force: bool,
    /// `-o origin=` for a clone stream.
    pub origin: Option<String>,
    /// `-I`: the snapshots between `fromsnap` and `tosnap`, oldest first;
    /// each gets a substream of its own before `tosnap`'s, all in one
    /// session (one dedup table, one guid map on the receiving side).
    pub intermediate: Vec<String>,
    /// `-R`: a replication stream of `tosnap`'s filesystem and those below
    /// it (with `fromsnap`, `-R -I`), its substreams as the engine plans
    /// them; `intermediate` is then unused.
    pub replicate: bool,
}

/// The faults of one transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferFaults {
    /// Send in the other byte order.
    pub flip_endian: bool,
    /// A signal to one side, this long after the transfer starts.
    pub signal: Option<(Side, Duration)>,
    /// Damage in transit.
    pub damage: Option<Damage>,
    /// A record rewritten by the sender.
    pub hostile: Option<HostileDraw>,
    /// A directory, master node or znode rewritten by the sender (only
    /// where [`TransferFaults::malformed_ok`] says the oracle can judge it).
    pub malformed: Option<MalformedDraw>,
}

impl TransferFaults {
    /// Rolls endian, signal and pipe-damage once each; damage offsets are
    /// drawn within `len_hint` bytes (at least `fault_window_min_bytes`),
    /// a signal's moment within a window that grows with `len_hint`.
    pub fn draw(options: &WorldOptions, injector: &Injector, len_hint: u64) -> TransferFaults {
        let TransferOptions {
            endian_probability,
            signal_probability,
            fault_window_min_bytes,
            signal_window_us_per_kib,
            hostile_probability,
            malformed_probability,
        } = options.transfer;
        let len_hint = len_hint.max(fault_window_min_bytes);
        let flip_endian = injector.roll(FaultKind::Endian, endian_probability);
        let signal = injector
            .roll(FaultKind::Signal, signal_probability)
            .then(|| {
                injector.draw(FaultKind::Signal, |rng| {
                    let side = if rng.gen_bool(0.5) {
                        Side::Sender
                    } else {
                        Side::Receiver
                    };
                    let window = (len_hint / 1024)
                        .saturating_mul(signal_window_us_per_kib)
                        .max(1000);
                    (side, Duration::from_micros(rng.gen_range(0..window)))
                })
            });
        let damage = Damage::draw(&options.pipe, injector, len_hint);
        let hostile = strike(injector, FaultKind::Hostile, hostile_probability, 64)
            .map(|(skip, seed)| HostileDraw { skip, seed });
        let malformed = strike(injector, FaultKind::Malformed, malformed_probability, 16)
            .map(|(skip, seed)| MalformedDraw { skip, seed });
        TransferFaults {
            flip_endian,
            signal,
            damage,
            hostile,
            malformed,
        }
    }

    /// Whether a malformed sender may strike `spec`'s stream: one substream
    /// (what the receive made is then one snapshot the runner can destroy),
    /// no dedup (a WRITE_BYREF would copy the rewritten block), the
    /// sender's byte order (the receiver swaps a block by what its first
    /// word says), no `-F` (its rollback cannot be undone), and no
    /// hostile record beside it.
    pub fn malformed_ok(&self, spec: &TransferSpec) -> bool {
        !(spec.dedup
            || spec.force
            || spec.replicate
            || !spec.intermediate.is_empty()
            || self.flip_endian
            || self.hostile.is_some())
    }
}

/// Whether a rewriting sender of `kind` strikes this transfer, and if so
/// how many of the records it applies to it lets through first and the
/// seed of how it rewrites. The count is geometric, at most `most`:
/// mostly the first records of a kind, which nearly every stream has, and
/// now and then a later one.
fn strike(injector: &Injector, kind: FaultKind, rate: f64, most: u64) -> Option<(u64, u64)> {
    injector.roll(kind, rate).then(|| {
        injector.draw(kind, |rng| {
            let mut skip = 0;
            while skip < most && rng.gen_bool(0.5) {
                skip += 1;
            }
            (skip, rng.r#gen())
        })
    })
}

/// How far a transfer has gone, as the other tasks of the world see it
/// between two of its records: what a racing operation finds in flight.
#[derive(Debug, Default)]
pub struct Progress {
    /// Records the receiver has handled (the BEGIN record is the first).
    pub records: Cell<u64>,
    /// The receiver has stopped: received, refused or failed.
    pub recv_done: Cell<bool>,
    /// The snapshot the sender holds now (`dsl_dataset_long_hold`).
    pub held: RefCell<Option<String>>,
    /// The sender has stopped.
    pub send_done: Cell<bool>,
    /// Tasks waiting for the transfer to get further.
    waiters: RefCell<Vec<Waker>>,
}

impl Progress {
    /// Wakes whoever waits on the transfer: it got further.
    fn changed(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Waits until `ready` holds, checking it each time the transfer gets
    /// further (a record handled, a side stopped).
    pub async fn until(&self, ready: impl Fn(&Progress) -> bool) {
        poll_fn(|cx| {
            if ready(self) {
                return Poll::Ready(());
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The receive has begun and not ended: its BEGIN record was taken
    /// (a refused one ends it at once).
    pub fn receiving(&self) -> bool {
        self.records.get() > 0 && !self.recv_done.get()
    }

    /// Either side is still at work.
    pub fn in_flight(&self) -> bool {
        !(self.send_done.get() && self.recv_done.get())
    }
}

/// What happened to a transfer.
#[derive(Debug)]
pub struct TransferOutcome {
    /// The sender's result: EPIPE when the receiver stopped first.
    pub send: Result<SendSummary>,
    pub byte_order: ByteOrder,
    pub signal: Option<Signal>,
    /// The damage the pipe did, with its real extent (none if the stream
    /// ended before it).
    pub damage: Option<Damage>,
    /// Bytes the sender wrote into the pipe.
    pub bytes_sent: u64,
    /// Bytes the receiver read from it.
    pub bytes_delivered: u64,
    /// `None` when not a byte arrived (the sender failed at once).
    pub recv: Option<Result<Vec<DatasetId>>>,
    /// Records the receiver handled, and pipe reads that found it empty
    /// (the receiver waited).
    pub records_received: u64,
    pub waits: u64,
    /// The record the sender rewrote, if it sent one.
    pub hostile: Option<Applied>,
    /// The directory, master node or znode it rewrote, if it did.
    pub malformed: Option<Struck>,
}

impl TransferOutcome {
    /// The sender stopped by itself (not because the receiver went away).
    pub fn sender_failed(&self) -> bool {
        matches!(&self.send, Err(e) if e.errno() != Errno::EPIPE)
    }
}

/// Sends `spec.tosnap` from `src` into `spec.target` of `dst` (which may be
/// the same pool), with the faults drawn for it.
pub async fn transfer(
    src: &Rc<RefCell<Pool>>,
    dst: &Rc<RefCell<Pool>>,
    spec: &TransferSpec,
    options: &WorldOptions,
    injector: &Injector,
) -> TransferOutcome {
    let faults = draw_faults(src, spec, options, injector);
    transfer_watched(
        src,
        dst,
        spec,
        &options.pipe,
        injector,
        faults,
        &Rc::default(),
    )
    .await
}

/// The faults of sending `spec` from `src` ([`TransferFaults::draw`], with
/// the send's estimated size as the window they land in).
pub fn draw_faults(
    src: &Rc<RefCell<Pool>>,
    spec: &TransferSpec,
    options: &WorldOptions,
    injector: &Injector,
) -> TransferFaults {
    // A hint for where faults land; not part of the fault model, so no
    // fault fires while it is computed.
    let hint = injector
        .observe(|| {
            with_pool(src, |p| {
                p.send_estimate(&spec.tosnap, spec.fromsnap.as_deref())
            })
        })
        .unwrap_or(0);
    let mut faults = TransferFaults::draw(options, injector, hint);
    if !faults.malformed_ok(spec) {
        faults.malformed = None;
    }
    faults
}

/// [`transfer`] with the faults given (tests aim them; a runner may draw
/// them itself).
pub async fn transfer_with(
    src: &Rc<RefCell<Pool>>,
    dst: &Rc<RefCell<Pool>>,
    spec: &TransferSpec,
    pipe_options: &PipeOptions,
    injector: &Injector,
    faults: TransferFaults,
) -> TransferOutcome {
    transfer_watched(
        src,
        dst,
        spec,
        pipe_options,
        injector,
        faults,
        &Rc::default(),
    )
    .await
}

/// [`transfer_with`], keeping `progress` up to date for whatever races it.
pub async fn transfer_watched(
    src: &Rc<RefCell<Pool>>,
    dst: &Rc<RefCell<Pool>>,
    spec: &TransferSpec,
    pipe_options: &PipeOptions,
    injector: &Injector,
    faults: TransferFaults,
    progress: &Rc<Progress>,
) -> TransferOutcome {
    let byte_order = if faults.flip_endian {
        ByteOrder::NATIVE.other()
    } else {
        ByteOrder::NATIVE
    };
    if faults.flip_endian {
        injector.fired(
            FaultKind::Endian,
            format!(
                "send of {} in {} byte order",
                spec.tosnap,
                byte_order.name()
            ),
        );
    }
    let clock = injector.clock().clone();
    let start = clock.elapsed();
    let delivered = Rc::new(Cell::new(None));
    let signal = |side: Side| TimeSignal {
        side,
        at: faults
            .signal
            .filter(|&(s, _)| s == side)
            .map(|(_, at)| start + at),
        clock: clock.clone(),
        delivered: delivered.clone(),
        injector: injector.clone(),
    };
    let (writer, reader) = pipe(pipe_options, injector, faults.damage);
    let send_chunk = usize::try_from(pipe_options.send_chunk_bytes).unwrap_or(usize::MAX);
    let recv_chunk = usize::try_from(pipe_options.recv_chunk_bytes).unwrap_or(usize::MAX);

    let sender = madsim::task::spawn_local(send_task(
        src.clone(),
        spec.clone(),
        SendOptions {
            byte_order,
            dedup: spec.dedup,
            corrupt_data: false,
        },
        signal(Side::Sender),
        (writer, send_chunk.max(1)),
        Rewriters {
            hostile: faults.hostile.map(HostileSender::new),
            malformed: faults.malformed,
        },
        progress.clone(),
    ));
    let receiver = madsim::task::spawn_local(recv_task(
        dst.clone(),
        spec.clone(),
        signal(Side::Receiver),
        reader,
        recv_chunk.max(1),
        progress.clone(),
    ));
    let Sent {
        send,
        bytes: bytes_sent,
        hostile,
        malformed,
    } = sender.await.unwrap_or_else(|_| Sent {
        send: Err(cancelled("sender")),
        bytes: 0,
        hostile: None,
        malformed: None,
    });
    let received = receiver.await.unwrap_or_else(|_| Received {
        recv: Some(Err(cancelled("receiver"))),
        ..Received::default()
    });
    TransferOutcome {
        send,
        byte_order,
        signal: faults.signal.map(|(side, at)| Signal {
            side,
            at,
            delivered: delivered.get().is_some(),
            while_waiting: delivered.get() == Some(true),
        }),
        damage: received.damage,
        bytes_sent,
        bytes_delivered: received.bytes,
        recv: received.recv,
        records_received: received.records,
        waits: received.waits,
        hostile,
        malformed,
    }
}

/// The senders that buffer the whole stream and rewrite it before it goes
/// down the pipe.
struct Rewriters {
    hostile: Option<HostileSender>,
    malformed: Option<MalformedDraw>,
}

/// What the sending task did.
struct Sent {
    send: Result<SendSummary>,
    bytes: u64,
    hostile: Option<Applied>,
    malformed: Option<Struck>,
}

/// The sending task: each substream a [`SendSession`] stepped one block at
/// a time, what each step wrote carried into the pipe before the next (or,
/// for a hostile sender, the whole stream buffered, rewritten, then
/// carried), into the pipe in `chunk`-byte writes. Returns the send's
/// result, the bytes it wrote and the record it rewrote.
async fn send_task(
    src: Rc<RefCell<Pool>>,
    spec: TransferSpec,
    options: SendOptions,
    signal: TimeSignal,
    (mut writer, chunk): (PipeWriter, usize),
    rewriters: Rewriters,
    progress: Rc<Progress>,
) -> Sent {
    let Rewriters {
        mut hostile,
        malformed,
    } = rewriters;
    let buffered = hostile.is_some() || malformed.is_some();
    let mut held = buffered.then(Vec::new);
    let mut out = Out {
        writer: &mut writer,
        held: held.as_mut(),
        chunk,
        progress: &progress,
    };
    let mut send = if spec.replicate {
        send_replicated(&src, &spec, &options, &signal, &mut out).await
    } else {
        send_chain(&src, &spec, &options, &signal, &mut out).await
    };
    let mut applied = None;
    let mut struck = None;
    if let Some(mut bytes) = held {
        if let Some(hostile) = hostile.as_mut() {
            bytes = hostile.rewrite(&bytes);
            applied = hostile.applied().cloned();
            if let Some(a) = &applied {
                // The sender's own injector, as its signal reports.
                signal
                    .injector
                    .fired(FaultKind::Hostile, format!("send of {}: {a}", spec.tosnap));
            }
        }
        if let Some(draw) = malformed {
            let (rewritten, s) = rewrite_malformed(draw, &bytes);
            bytes = rewritten;
            if let Some(s) = &s {
                signal.injector.fired(
                    FaultKind::Malformed,
                    format!("send of {}: {s}", spec.tosnap),
                );
            }
            struck = s;
        }
        // What the send wrote, even if it failed, goes down the pipe: a
        // killed `zfs send` leaves its output in the pipe too.
        if let Err(e) = write_out(&mut writer, &bytes, chunk, &signal).await
            && send.is_ok()
        {
            send = Err(e);
        }
    }
    let bytes = writer.stats().bytes_written;
    drop(writer);
    progress.send_done.set(true);
    progress.changed();
    Sent {
        send,
        bytes,
        hostile: applied,
        malformed: struck,
    }
}

/// Where a sender's bytes go: the pipe, or a rewriting sender's buffer.
struct Out<'a> {
    writer: &'a mut PipeWriter,
    held: Option<&'a mut Vec<u8>>,
    chunk: usize,
    progress: &'a Progress,
}

impl Out<'_> {
    async fn put(&mut self, bytes: &[u8], signal: &TimeSignal) -> Result<()> {
        match self.held.as_deref_mut() {
            Some(held) => {
                held.extend_from_slice(bytes);
                Ok(())
            }
            None => write_out(self.writer, bytes, self.chunk, signal).await,
        }
    }
}

/// `zfs send [-i | -I]`: one substream, or (`-I`) one per snapshot up to
/// `tosnap`, sharing one dedup table.
async fn send_chain(
    src: &Rc<RefCell<Pool>>,
    spec: &TransferSpec,
    options: &SendOptions,
    signal: &TimeSignal,
    out: &mut Out<'_>,
) -> Result<SendSummary> {
    let mut table = DedupTable::default();
    let mut from = spec.fromsnap.clone();
    let mut send = Err(Error::new(Errno::EINVAL, "nothing to send"));
    for snap in spec.intermediate.iter().chain([&spec.tosnap]) {
        let dedup = spec.dedup.then_some(&mut table);
        send = send_one(src, snap, from.as_deref(), options, dedup, signal, out).await;
        if send.is_err() {
            break;
        }
        from = Some(snap.clone());
    }
    send
}

/// `zfs send -R [-I]`: the header, each substream the engine's plan
/// names (stepped a block at a time, as any other), the closing END.
async fn send_replicated(
    src: &Rc<RefCell<Pool>>,
    spec: &TransferSpec,
    options: &SendOptions,
    signal: &TimeSignal,
    out: &mut Out<'_>,
) -> Result<SendSummary> {
    let from = spec
        .fromsnap
        .as_deref()
        .map(|f| f.split_once('@').map_or(f, |(_, s)| s));
    let plan = with_pool(src, |p| {
        p.replication_plan(&spec.tosnap, from, options.byte_order)
    })?;
    out.put(&plan.header, signal).await?;
    let mut summary = SendSummary::default();
    for sub in &plan.substreams {
        let (snap, from) = with_pool(src, |p| {
            Ok((p.info(sub.snap).name, sub.from.map(|f| p.info(f).name)))
        })?;
        summary = send_one(src, &snap, from.as_deref(), options, None, signal, out).await?;
    }
    out.put(&plan.end, signal).await?;
    Ok(summary)
}

/// One substream: `dmu_send_impl` a block at a time, under its long hold.
async fn send_one(
    src: &Rc<RefCell<Pool>>,
    snap: &str,
    from: Option<&str>,
    options: &SendOptions,
    dedup: Option<&mut DedupTable>,
    signal: &TimeSignal,
    out: &mut Out<'_>,
) -> Result<SendSummary> {
    let mut interrupt = signal.clone();
    let mut session = with_pool(src, |p| {
        let (ds, fromds) = p.send_lookup(snap, from)?;
        p.send_begin(ds, fromds, Vec::new(), options, dedup, &mut interrupt)
    })?;
    *out.progress.held.borrow_mut() = Some(snap.to_string());
    let result = loop {
        let more = with_pool(src, |p| session.step(p));
        // What a step wrote goes down the pipe even if it then failed: a
        // killed `zfs send` leaves its output in the pipe too.
        let bytes = std::mem::take(session.out_mut());
        if let Err(e) = out.put(&bytes, signal).await {
            break Err(e);
        }
        match more {
            // Between two blocks, anything else may run.
            Ok(true) => madsim::task::yield_now().await,
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let summary = with_pool(src, |p| Ok(session.end(p)));
    *out.progress.held.borrow_mut() = None;
    result.and(summary)
}

/// Writes `bytes` into the pipe in chunks, through short writes, waiting
/// for room: EPIPE once the receiver is gone, EINTR if the sender's signal
/// comes while it waits.
async fn write_out(
    writer: &mut PipeWriter,
    bytes: &[u8],
    chunk: usize,
    signal: &TimeSignal,
) -> Result<()> {
    for piece in bytes.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            match signal.or_signal(writer.write(rest)).await {
                None => {
                    return Err(Error::new(
                        Errno::EINTR,
                        "send interrupted while waiting for room in the pipe",
                    ));
                }
                Some(Ok(n)) => rest = &rest[n..],
                Some(Err(_)) => {
                    return Err(Error::new(
                        Errno::EPIPE,
                        "the receiver closed the pipe (broken pipe)",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What the receiving task returns.
#[derive(Default)]
struct Received {
    /// The receive's result (`None` when not a byte arrived).
    recv: Option<Result<Vec<DatasetId>>>,
    /// The damage the pipe did.
    damage: Option<Damage>,
    /// Bytes delivered.
    bytes: u64,
    records: u64,
    waits: u64,
}

/// The receiving task: what the pipe delivers fed to a [`RecordFeed`], and
/// each whole record to a [`RecvSession`]; between records other tasks run.
/// It closes its end of the pipe when it stops.
async fn recv_task(
    dst: Rc<RefCell<Pool>>,
    spec: TransferSpec,
    signal: TimeSignal,
    mut reader: PipeReader,
    chunk: usize,
    progress: Rc<Progress>,
) -> Received {
    let options = RecvOptions {
        force: spec.force,
        origin: spec.origin.clone(),
        props: Vec::new(),
    };
    let mut interrupt = signal.clone();
    let mut session = RecvSession::new(&spec.target, &options);
    let mut feed = RecordFeed::new();
    let mut buf = vec![0u8; chunk];
    let mut arrived = false;
    let mut waits = 0;
    let recv = loop {
        let next = match feed.next_record() {
            Ok(Next::Record(entry)) => {
                progress.records.set(progress.records.get() + 1);
                progress.changed();
                match with_pool(&dst, |p| session.record(p, &entry, &mut interrupt)) {
                    Ok(()) => Step::Record,
                    Err(e) => Step::Done(Err(e)),
                }
            }
            Ok(Next::End) => Step::Done(with_pool(&dst, |p| session.end(p))),
            Ok(Next::NeedMore) => Step::Read,
            Err(e) => Step::Done(Err(stop(&dst, &mut session, e.into()))),
        };
        match next {
            Step::Done(result) => break Some(result),
            // Between two records, anything else may run.
            Step::Record => madsim::task::yield_now().await,
            Step::Read => {
                if reader.is_empty() {
                    waits += 1;
                }
                match signal.or_signal(reader.read(&mut buf)).await {
                    None => {
                        let e = Error::new(
                            Errno::EINTR,
                            "receive interrupted while waiting on the pipe",
                        );
                        break Some(Err(stop(&dst, &mut session, e)));
                    }
                    Some(Ok(0)) if !arrived => break None,
                    Some(Ok(0)) => feed.push_eof(),
                    Some(Ok(n)) => {
                        arrived = true;
                        feed.push(&buf[..n]);
                    }
                    Some(Err(e)) => {
                        let e = Error::new(Errno::EIO, format!("reading the pipe: {e}"));
                        break Some(Err(stop(&dst, &mut session, e)));
                    }
                }
            }
        }
    };
    let received = Received {
        recv,
        damage: reader.damage(),
        bytes: reader.stats().bytes_read,
        records: progress.records.get(),
        waits,
    };
    // The receiver is gone: the sender's next write fails with EPIPE.
    drop(reader);
    progress.recv_done.set(true);
    progress.changed();
    received
}

/// What the receiver does next.
enum Step {
    Record,
    Read,
    Done(Result<Vec<DatasetId>>),
}

/// The receive stops with `e`: what it created is destroyed.
fn stop(dst: &Rc<RefCell<Pool>>, session: &mut RecvSession, e: Error) -> Error {
    match dst.try_borrow_mut() {
        Ok(mut pool) => session.fail(&mut pool, e),
        Err(_) => e,
    }
}

fn cancelled(side: &str) -> Error {
    Error::new(Errno::EINTR, format!("the {side} task was cancelled"))
}

/// Runs `f` on the pool, or EBUSY if something holds it (never across an
/// await, so only a caller's own mistake).
fn with_pool<T>(pool: &Rc<RefCell<Pool>>, f: impl FnOnce(&mut Pool) -> Result<T>) -> Result<T> {
    let mut pool = pool
        .try_borrow_mut()
        .map_err(|_| Error::new(Errno::EBUSY, "the pool is in use by another task"))?;
    f(&mut pool)
}

/// The signal of one side: due from the moment `at` of virtual time on.
#[derive(Clone)]
struct TimeSignal {
    side: Side,
    at: Option<Duration>,
    clock: SimClock,
    /// Set once delivered: whether while waiting on the pipe.
    delivered: Rc<Cell<Option<bool>>>,
    injector: Injector,
}

impl TimeSignal {
    fn due(&self) -> bool {
        self.at.is_some_and(|at| self.clock.elapsed() >= at)
    }

    /// Records the delivery in the trace, once.
    fn deliver(&self, while_waiting: bool) {
        if self.delivered.get().is_some() {
            return;
        }
        self.delivered.set(Some(while_waiting));
        let at = self.at.unwrap_or_default();
        let now = self.clock.elapsed();
        let how = if while_waiting {
            "while it waited on the pipe"
        } else {
            match self.side {
                Side::Sender => "at a block",
                Side::Receiver => "at a record",
            }
        };
        self.injector.fired(
            FaultKind::Signal,
            format!(
                "SIGINT to the {} at {:.6}s (seen at {:.6}s, {how})",
                self.side,
                at.as_secs_f64(),
                now.as_secs_f64()
            ),
        );
    }

    /// `f`, unless the signal comes first (`None`: delivered).
    async fn or_signal<F: Future>(&self, f: F) -> Option<F::Output> {
        let Some(at) = self.at else {
            return Some(f.await);
        };
        let mut f = pin!(f);
        let wait = at.saturating_sub(self.clock.elapsed());
        let mut alarm = pin!(madsim::time::sleep(wait));
        // The alarm first: a signal that came while this side was blocked
        // interrupts the wait even if bytes or room came at the same time,
        // as a pending signal makes a blocking read or write return EINTR.
        let out = poll_fn(|cx| {
            if alarm.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            f.as_mut().poll(cx).map(Some)
        })
        .await;
        if out.is_none() {
            self.deliver(true);
        }
        out
    }
}

impl Interrupt for TimeSignal {
    fn pending(&mut self) -> bool {
        if !self.due() {
            return false;
        }
        self.deliver(false);
        true
    }
}
