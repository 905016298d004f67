//! `zfs send | zfs receive` in the simulated world: a sending task and a
//! receiving task joined by a [`SimPipe`](super::pipe).
//!
//! The engine's send and receive are synchronous calls, and each runs as one
//! synchronous step of its task: the sender runs `Pool::send` into a buffer,
//! then writes the buffer into the pipe in chunks (short writes, waiting
//! while the pipe is full); the receiver reads the pipe to EOF, then runs
//! `Pool::receive` over what arrived. So the pipe carries the bytes between
//! them in virtual time, with its short I/O, stalls and damage, but the two
//! engine calls never overlap. What that still shows: a receive only ever
//! sees a prefix of the stream, or a damaged one, and must refuse it with
//! the target as it was; a signal stops either side with EINTR at the
//! record where it arrives.
//!
//! The faults of one transfer are drawn up front ([`TransferFaults::draw`],
//! at the rates of [`TransferOptions`] and the pipe's [`PipeOptions`]) and
//! recorded in the trace when they take effect:
//!
//! * **endian** (per send): the stream is written in the other byte order,
//!   which the receiver must read just the same.
//! * **signal** (per transfer): a side and a byte offset; delivered through
//!   the engine's [`Interrupt`] once the sender has written, or the receive
//!   has consumed, that many bytes. A signal whose byte is never reached is
//!   not delivered and not recorded as a fault. An interrupted sender closes
//!   the pipe after what it wrote, like a killed `zfs send`.
//! * **pipe-damage** (per transfer): drawn by the pipe, see [`Damage`].
//! * **hostile** (per transfer): a seed and a count; the sender rewrites
//!   one record, see [`hostile`](super::hostile). Recorded when the
//!   rewritten record is sent.
//!
//! The receiver always receives when any byte arrived (as `zfs recv` reads
//! whatever the pipe gives it), so a cut stream is the receiver's EINVAL.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;

use engine::context::Interrupt;
use engine::dsl::DatasetId;
use engine::error::{Errno, Error, Result};
use engine::recv::RecvOptions;
use engine::send::{DedupTable, SendOptions, SendSummary};
use engine::spa::Pool;
use engine::stream::ByteOrder;
use rand::Rng;

use super::faults::FaultKind;
use super::hostile::{Applied, HostileDraw, HostileSender};
use super::injector::Injector;
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

/// A signal drawn for a transfer, and whether its byte was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    pub side: Side,
    /// The byte offset of the stream it is aimed at.
    pub at: u64,
    pub delivered: bool,
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
}

/// The faults of one transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferFaults {
    /// Send in the other byte order.
    pub flip_endian: bool,
    /// A signal to one side at a byte offset.
    pub signal: Option<(Side, u64)>,
    /// Damage in transit.
    pub damage: Option<Damage>,
    /// A record rewritten by the sender.
    pub hostile: Option<HostileDraw>,
}

impl TransferFaults {
    /// Rolls endian, signal and pipe-damage once each; offsets are drawn
    /// within `len_hint` bytes (at least `fault_window_min_bytes`).
    pub fn draw(options: &WorldOptions, injector: &Injector, len_hint: u64) -> TransferFaults {
        let TransferOptions {
            endian_probability,
            signal_probability,
            fault_window_min_bytes,
            hostile_probability,
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
                    (side, rng.gen_range(0..len_hint))
                })
            });
        let damage = Damage::draw(&options.pipe, injector, len_hint);
        let hostile = injector
            .roll(FaultKind::Hostile, hostile_probability)
            .then(|| {
                injector.draw(FaultKind::Hostile, |rng| {
                    // Geometric: mostly the first records of a kind, which
                    // nearly every stream has, and now and then a later one.
                    let mut skip = 0;
                    while skip < 64 && rng.gen_bool(0.5) {
                        skip += 1;
                    }
                    HostileDraw {
                        skip,
                        seed: rng.r#gen(),
                    }
                })
            });
        TransferFaults {
            flip_endian,
            signal,
            damage,
            hostile,
        }
    }
}

/// What happened to a transfer.
#[derive(Debug)]
pub struct TransferOutcome {
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
    /// The record the sender rewrote, if it sent one.
    pub hostile: Option<Applied>,
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
    // A hint for where faults land; not part of the fault model, so no
    // fault fires while it is computed.
    let hint = injector
        .suspended(|| {
            with_pool(src, |p| {
                p.send_estimate(&spec.tosnap, spec.fromsnap.as_deref())
            })
        })
        .unwrap_or(0);
    let faults = TransferFaults::draw(options, injector, hint);
    transfer_with(src, dst, spec, &options.pipe, injector, faults).await
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
    let signal_at = |side: Side| faults.signal.filter(|&(s, _)| s == side).map(|(_, at)| at);
    let delivered = Rc::new(Cell::new(false));
    let (writer, reader) = pipe(pipe_options, injector, faults.damage);
    let chunk = usize::try_from(pipe_options.send_chunk_bytes).unwrap_or(usize::MAX);

    let sender = madsim::task::spawn_local(send_task(
        src.clone(),
        spec.clone(),
        SendOptions {
            byte_order,
            dedup: spec.dedup,
            corrupt_data: false,
        },
        ByteSignal::new(Side::Sender, signal_at(Side::Sender), &delivered, injector),
        writer,
        chunk.max(1),
        faults.hostile.map(HostileSender::new),
    ));
    let receiver = madsim::task::spawn_local(recv_task(
        dst.clone(),
        spec.clone(),
        ByteSignal::new(
            Side::Receiver,
            signal_at(Side::Receiver),
            &delivered,
            injector,
        ),
        reader,
    ));
    let (send, bytes_sent, hostile) = sender
        .await
        .unwrap_or_else(|_| (Err(cancelled("sender")), 0, None));
    let (recv, damage, bytes_delivered) = receiver
        .await
        .unwrap_or_else(|_| (Some(Err(cancelled("receiver"))), None, 0));
    TransferOutcome {
        send,
        byte_order,
        signal: faults.signal.map(|(side, at)| Signal {
            side,
            at,
            delivered: delivered.get(),
        }),
        damage,
        bytes_sent,
        bytes_delivered,
        recv,
        hostile,
    }
}

/// The sending task: `zfs send` into a buffer, then the buffer (rewritten
/// by a hostile sender, if one was drawn) into the pipe in chunks. Returns
/// the send's result, the bytes it wrote and the record it rewrote.
async fn send_task(
    src: Rc<RefCell<Pool>>,
    spec: TransferSpec,
    options: SendOptions,
    mut interrupt: ByteSignal,
    mut writer: PipeWriter,
    chunk: usize,
    hostile: Option<HostileSender>,
) -> (Result<SendSummary>, u64, Option<Applied>) {
    let mut out = CountingWriter {
        bytes: Vec::new(),
        count: interrupt.count.clone(),
    };
    let mut table = DedupTable::default();
    let mut from = spec.fromsnap.clone();
    let mut send = Err(Error::new(Errno::EINVAL, "nothing to send"));
    for snap in spec.intermediate.iter().chain([&spec.tosnap]) {
        send = with_pool(&src, |p| {
            p.send(
                snap,
                from.as_deref(),
                &mut out,
                &options,
                spec.dedup.then_some(&mut table),
                &mut interrupt,
            )
        });
        if send.is_err() {
            break;
        }
        from = Some(snap.clone());
    }
    let mut applied = None;
    let bytes = match hostile {
        Some(mut hostile) => {
            let bytes = hostile.rewrite(&out.bytes);
            applied = hostile.applied().cloned();
            if let Some(a) = &applied {
                // The sender's own injector, as its signal reports.
                interrupt
                    .injector
                    .fired(FaultKind::Hostile, format!("send of {}: {a}", spec.tosnap));
            }
            bytes
        }
        None => out.bytes,
    };
    // What the send wrote, even if it failed, goes down the pipe: a killed
    // `zfs send` leaves its output in the pipe too.
    for chunk in bytes.chunks(chunk) {
        if writer.write_all(chunk).await.is_err() {
            break;
        }
    }
    let sent = writer.stats().bytes_written;
    drop(writer);
    (send, sent, applied)
}

/// What the receiving task returns: the receive's result (`None` when not
/// a byte arrived), the damage the pipe did, and the bytes delivered.
type Received = (Option<Result<Vec<DatasetId>>>, Option<Damage>, u64);

/// The receiving task: the pipe read to EOF, then `zfs receive` over what
/// arrived.
async fn recv_task(
    dst: Rc<RefCell<Pool>>,
    spec: TransferSpec,
    mut interrupt: ByteSignal,
    mut reader: PipeReader,
) -> Received {
    let mut got = Vec::new();
    // The reader never fails: its errors are the writer's.
    let _ = reader.read_to_end(&mut got).await;
    let damage = reader.damage();
    let bytes_delivered = reader.stats().bytes_read;
    drop(reader);
    let recv = (!got.is_empty()).then(|| {
        let input = CountingReader {
            inner: &got[..],
            count: interrupt.count.clone(),
        };
        let options = RecvOptions {
            force: spec.force,
            origin: spec.origin.clone(),
        };
        with_pool(&dst, |p| {
            p.receive(&spec.target, input, &options, &mut interrupt)
        })
    });
    (recv, damage, bytes_delivered)
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

/// The signal of one side: pending once `count` bytes have reached `at`.
struct ByteSignal {
    side: Side,
    at: Option<u64>,
    count: Rc<Cell<u64>>,
    delivered: Rc<Cell<bool>>,
    injector: Injector,
}

impl ByteSignal {
    fn new(side: Side, at: Option<u64>, delivered: &Rc<Cell<bool>>, injector: &Injector) -> Self {
        ByteSignal {
            side,
            at,
            count: Rc::new(Cell::new(0)),
            delivered: delivered.clone(),
            injector: injector.clone(),
        }
    }
}

impl Interrupt for ByteSignal {
    fn pending(&mut self) -> bool {
        let Some(at) = self.at else {
            return false;
        };
        let count = self.count.get();
        if count < at {
            return false;
        }
        if !self.delivered.replace(true) {
            let verb = match self.side {
                Side::Sender => "written",
                Side::Receiver => "consumed",
            };
            self.injector.fired(
                FaultKind::Signal,
                format!(
                    "SIGINT to the {} at byte {at} (delivered with {count} bytes {verb})",
                    self.side
                ),
            );
        }
        true
    }
}

/// The sender's output: a buffer, and a count its signal watches.
struct CountingWriter {
    bytes: Vec<u8>,
    count: Rc<Cell<u64>>,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        self.count.set(self.bytes.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The receiver's input, counting what the receive consumed.
struct CountingReader<'a> {
    inner: &'a [u8],
    count: Rc<Cell<u64>>,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}
