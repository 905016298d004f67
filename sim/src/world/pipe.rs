//! SimPipe: the pipe between `zfs send` and `zfs receive`, as madsim tasks
//! see it.
//!
//! A bounded byte buffer with a writing end and a reading end. A writer
//! waits (in virtual time, for the reader) while the pipe is full; a reader
//! waits while it is empty and reads 0 once the writer has closed. Closing
//! the reader makes further writes fail with `BrokenPipe`, as EPIPE does.
//!
//! Its fault model, every decision made here at the rates and sizes of
//! [`PipeOptions`]:
//!
//! * **short-io**, per read or write: a write takes only part of its buffer;
//!   a read returns only part of what it could, or stalls first for
//!   `stall_ms_min..=stall_ms_max` of virtual time. The bytes are never
//!   changed: a reader that loops must see exactly what was written.
//! * **pipe-damage**, once per transfer ([`Damage::draw`]): one [`Damage`]
//!   of the kinds `damage_kinds` allows (a flipped bit, the stream cut, a
//!   span dropped or a span delivered twice) at byte offsets drawn within a
//!   length hint. It is applied to the bytes as they pass and recorded in
//!   the trace when it is; a stream shorter than the hint may escape it.
//!
//! Why the receiver must survive it: a real pipe delivers in pieces of any
//! size, and a stream stored or carried elsewhere can be cut or damaged;
//! `zfs receive` must then refuse it (its END checksum, its record checks)
//! and leave the target as it was.
//!
//! Waiting uses a waker per end, set by the pending side and woken by the
//! other, so the pipe needs nothing from madsim but its executor (and its
//! clock for stalls). Single-threaded, like the rest of the world.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::faults::FaultKind;
use super::injector::Injector;
use super::options::PipeOptions;

/// The kinds of [`Damage`], as `PipeOptions::damage_kinds` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamageKind {
    BitFlip,
    Truncate,
    Drop,
    Duplicate,
}

impl DamageKind {
    pub const ALL: [DamageKind; 4] = [
        DamageKind::BitFlip,
        DamageKind::Truncate,
        DamageKind::Drop,
        DamageKind::Duplicate,
    ];
}

/// Damage in transit, at offsets of the stream as the writer wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The byte at `at` arrives XORed with `mask` (never 0).
    BitFlip { at: u64, mask: u8 },
    /// Nothing from `at` on arrives: the reader sees EOF there.
    Truncate { at: u64 },
    /// `len` bytes from `at` are lost.
    Drop { at: u64, len: u64 },
    /// `len` bytes from `at` arrive twice, the copy right after the span.
    Duplicate { at: u64, len: u64 },
}

impl Damage {
    /// The stream offset where the damage starts.
    pub fn at(&self) -> u64 {
        match *self {
            Damage::BitFlip { at, .. }
            | Damage::Truncate { at }
            | Damage::Drop { at, .. }
            | Damage::Duplicate { at, .. } => at,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Damage::BitFlip { .. } => "bit-flip",
            Damage::Truncate { .. } => "truncate",
            Damage::Drop { .. } => "drop",
            Damage::Duplicate { .. } => "duplicate",
        }
    }

    /// Whether damage strikes a transfer (`damage_probability`), and if so
    /// one of the allowed kinds at offsets within a stream of about
    /// `len_hint` bytes, from the pipe-damage stream. Spans are 1 to
    /// `damage_span_max_bytes` bytes.
    pub fn draw(options: &PipeOptions, injector: &Injector, len_hint: u64) -> Option<Damage> {
        if options.damage_kinds.is_empty()
            || !injector.roll(FaultKind::PipeDamage, options.damage_probability)
        {
            return None;
        }
        let len_hint = len_hint.max(1);
        let kinds = &options.damage_kinds;
        Some(injector.draw(FaultKind::PipeDamage, |rng| {
            let at = rng.gen_range(0..len_hint);
            let len = rng.gen_range(1..=options.damage_span_max_bytes);
            // u32, as the draw has always been made: the same seed, the same damage.
            match kinds[rng.gen_range(0..kinds.len() as u32) as usize] {
                DamageKind::BitFlip => Damage::BitFlip {
                    at,
                    mask: 1 << rng.gen_range(0..8),
                },
                DamageKind::Truncate => Damage::Truncate { at },
                DamageKind::Drop => Damage::Drop { at, len },
                DamageKind::Duplicate => Damage::Duplicate { at, len },
            }
        }))
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Damage::BitFlip { at, mask } => write!(f, "bit flip at byte {at} (mask {mask:#04x})"),
            Damage::Truncate { at } => write!(f, "stream cut at byte {at}"),
            Damage::Drop { at, len } => write!(f, "bytes {at}..{} dropped", at + len),
            Damage::Duplicate { at, len } => {
                write!(f, "bytes {at}..{} delivered twice", at + len)
            }
        }
    }
}

/// Counters of one pipe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipeStats {
    /// Bytes the writer handed over (what the sender sent).
    pub bytes_written: u64,
    /// Bytes the reader got (what the receiver received).
    pub bytes_read: u64,
    pub writes: u64,
    pub reads: u64,
    pub short_writes: u64,
    pub short_reads: u64,
    pub stalls: u64,
}

struct State {
    buf: VecDeque<u8>,
    capacity: usize,
    writer_closed: bool,
    reader_closed: bool,
    /// The reader waiting for bytes or EOF.
    reader_waker: Option<Waker>,
    /// The writer waiting for room.
    writer_waker: Option<Waker>,
    stats: PipeStats,
    /// The damage still to apply (taken once it has been).
    planned: Option<Damage>,
    /// What was applied, with the extent it really had.
    applied: Option<Damage>,
    /// Bytes of a Drop or Duplicate span seen so far.
    span: Vec<u8>,
    dropped: u64,
}

impl State {
    /// Takes bytes from the writer at stream offset `stats.bytes_written`,
    /// applying the damage as they pass. Returns what the damage did, once.
    fn accept(&mut self, bytes: &[u8]) -> Option<Damage> {
        let start = self.stats.bytes_written;
        self.stats.bytes_written += bytes.len() as u64;
        let Some(damage) = self.planned else {
            self.buf.extend(bytes);
            return None;
        };
        let mut fired = None;
        for (i, &b) in bytes.iter().enumerate() {
            let o = start + i as u64;
            match damage {
                Damage::BitFlip { at, mask } if o == at => {
                    self.buf.push_back(b ^ mask);
                    fired = Some(damage);
                }
                Damage::Truncate { at } if o >= at => {
                    if o == at {
                        fired = Some(damage);
                    }
                }
                Damage::Drop { at, len } if o >= at && o < at + len => {
                    self.dropped += 1;
                    if o + 1 == at + len {
                        fired = Some(damage);
                    }
                }
                Damage::Duplicate { at, len } if o >= at && o < at + len => {
                    self.buf.push_back(b);
                    self.span.push(b);
                    if o + 1 == at + len {
                        self.buf.extend(&self.span);
                        self.span = Vec::new();
                        fired = Some(damage);
                    }
                }
                _ => self.buf.push_back(b),
            }
        }
        if fired.is_some() && !matches!(damage, Damage::Truncate { .. }) {
            self.planned = None;
        }
        if fired.is_some() {
            self.applied = fired;
        }
        fired
    }

    /// At the writer's close: a drop cut short by the end of the stream
    /// still happened, over the bytes it covered.
    fn finish(&mut self) -> Option<Damage> {
        match self.planned.take() {
            Some(Damage::Drop { at, .. }) if self.dropped > 0 => {
                let d = Damage::Drop {
                    at,
                    len: self.dropped,
                };
                self.applied = Some(d);
                Some(d)
            }
            _ => None,
        }
    }
}

type Shared = Rc<RefCell<State>>;

/// The writing end. Dropping it closes the pipe (EOF for the reader).
pub struct PipeWriter {
    state: Shared,
    injector: Injector,
    options: Rc<PipeOptions>,
}

/// The reading end. Dropping it makes the writer's writes fail (EPIPE).
pub struct PipeReader {
    state: Shared,
    injector: Injector,
    options: Rc<PipeOptions>,
}

/// A pipe of the options' capacity (at least 1 byte) that applies
/// `damage` (drawn by [`Damage::draw`], or aimed by a test) to what it
/// carries.
pub fn pipe(
    options: &PipeOptions,
    injector: &Injector,
    damage: Option<Damage>,
) -> (PipeWriter, PipeReader) {
    let state = Rc::new(RefCell::new(State {
        buf: VecDeque::new(),
        capacity: usize::try_from(options.capacity_bytes)
            .unwrap_or(usize::MAX)
            .max(1),
        writer_closed: false,
        reader_closed: false,
        reader_waker: None,
        writer_waker: None,
        stats: PipeStats::default(),
        planned: damage,
        applied: None,
        span: Vec::new(),
        dropped: 0,
    }));
    let options = Rc::new(options.clone());
    (
        PipeWriter {
            state: state.clone(),
            injector: injector.clone(),
            options: options.clone(),
        },
        PipeReader {
            state,
            injector: injector.clone(),
            options,
        },
    )
}

fn record_damage(injector: &Injector, damage: Damage) {
    injector.fired(
        FaultKind::PipeDamage,
        format!("pipe: {} ({})", damage, damage.kind()),
    );
}

impl PipeWriter {
    /// Writes some of `buf`, waiting while the pipe is full: all of it that
    /// fits, or less on a short write. `BrokenPipe` once the reader is gone.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut want = buf.len();
        if want > 1
            && self
                .injector
                .roll(FaultKind::ShortIo, self.options.short_io_probability)
        {
            want = self
                .injector
                .draw(FaultKind::ShortIo, |rng| rng.gen_range(1..want));
            self.state.borrow_mut().stats.short_writes += 1;
            self.injector.fired(
                FaultKind::ShortIo,
                format!("pipe: short write of {want} of {} bytes", buf.len()),
            );
        }
        let (n, damage) = poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if st.reader_closed {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
            }
            let room = st.capacity.saturating_sub(st.buf.len());
            if room == 0 {
                st.writer_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = room.min(want);
            let damage = st.accept(&buf[..n]);
            st.stats.writes += 1;
            if let Some(w) = st.reader_waker.take() {
                w.wake();
            }
            Poll::Ready(Ok((n, damage)))
        })
        .await?;
        if let Some(d) = damage {
            record_damage(&self.injector, d);
        }
        Ok(n)
    }

    /// Writes all of `buf`, through as many short writes as it takes.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Closes the pipe: the reader reads what is left, then EOF.
    pub fn close(self) {}

    pub fn stats(&self) -> PipeStats {
        self.state.borrow().stats
    }

    /// The damage applied so far, with its real extent.
    pub fn damage(&self) -> Option<Damage> {
        self.state.borrow().applied
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let damage = {
            let mut st = self.state.borrow_mut();
            st.writer_closed = true;
            if let Some(w) = st.reader_waker.take() {
                w.wake();
            }
            st.finish()
        };
        if let Some(d) = damage {
            record_damage(&self.injector, d);
        }
    }
}

impl PipeReader {
    /// Reads up to `buf.len()` bytes, waiting while the pipe is empty; 0 at
    /// EOF (the writer closed and everything was read). May return fewer
    /// bytes than are there, or stall first, on short I/O.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut want = buf.len();
        let o = &self.options;
        if self
            .injector
            .roll(FaultKind::ShortIo, o.short_io_probability)
        {
            let (stall, limit) = self.injector.draw(FaultKind::ShortIo, |rng| {
                if rng.gen_bool(0.5) {
                    let ms = rng.gen_range(o.stall_ms_min..=o.stall_ms_max);
                    (Some(Duration::from_millis(ms)), want)
                } else {
                    (None, rng.gen_range(1..=want))
                }
            });
            want = limit;
            if let Some(stall) = stall {
                self.state.borrow_mut().stats.stalls += 1;
                self.injector.fired(
                    FaultKind::ShortIo,
                    format!("pipe: read stalls for {} ms", stall.as_millis()),
                );
                madsim::time::sleep(stall).await;
            } else {
                self.state.borrow_mut().stats.short_reads += 1;
                self.injector.fired(
                    FaultKind::ShortIo,
                    format!("pipe: short read of at most {want} bytes"),
                );
            }
        }
        poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if st.buf.is_empty() {
                if st.writer_closed {
                    return Poll::Ready(Ok(0));
                }
                st.reader_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = want.min(st.buf.len());
            // The ring's two halves, copied whole.
            let (a, b) = st.buf.as_slices();
            let k = n.min(a.len());
            buf[..k].copy_from_slice(&a[..k]);
            buf[k..n].copy_from_slice(&b[..n - k]);
            st.buf.drain(..n);
            st.stats.reads += 1;
            st.stats.bytes_read += n as u64;
            if let Some(w) = st.writer_waker.take() {
                w.wake();
            }
            Poll::Ready(Ok(n))
        })
        .await
    }

    /// Reads until EOF, appending to `out`; returns the bytes read.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let len = usize::try_from(self.options.recv_chunk_bytes).unwrap_or(usize::MAX);
        let mut chunk = vec![0u8; len.max(1)];
        let start = out.len();
        loop {
            let n = self.read(&mut chunk).await?;
            if n == 0 {
                return Ok(out.len() - start);
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn stats(&self) -> PipeStats {
        self.state.borrow().stats
    }

    /// Whether nothing is waiting to be read (a read now waits).
    pub fn is_empty(&self) -> bool {
        self.state.borrow().buf.is_empty()
    }

    /// The damage applied to what was read, with its real extent (final
    /// once [`read`](PipeReader::read) has returned EOF).
    pub fn damage(&self) -> Option<Damage> {
        self.state.borrow().applied
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut st = self.state.borrow_mut();
        st.reader_closed = true;
        if let Some(w) = st.writer_waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::clock::SimClock;
    use crate::world::faults::FaultSpec;
    use crate::world::options::WorldOptions;
    use crate::world::streams::Streams;
    use crate::world::trace::Trace;

    fn injector(seed: u64) -> Injector {
        Injector::new(&Streams::new(seed), Trace::new(false), SimClock::current())
    }

    /// The pipe options of `faults` with a capacity of `capacity` bytes.
    fn options(seed: u64, faults: &str, capacity: u64) -> PipeOptions {
        let plan = faults
            .parse::<FaultSpec>()
            .unwrap()
            .resolve(&Streams::new(seed));
        let mut options = WorldOptions::from_plan(&plan).pipe;
        options.capacity_bytes = capacity;
        options
    }

    fn run<T>(seed: u64, f: impl std::future::Future<Output = T>) -> T {
        madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(f)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Writes `bytes` through a pipe from one task and reads it in another.
    async fn carry(
        bytes: Vec<u8>,
        inj: &Injector,
        options: &PipeOptions,
        damage: Option<Damage>,
    ) -> (Vec<u8>, PipeStats, Option<Damage>) {
        let (mut w, mut r) = pipe(options, inj, damage);
        let writer = madsim::task::spawn_local(async move {
            for chunk in bytes.chunks(10_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.stats()
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        let written = writer.await.unwrap();
        assert_eq!(written.bytes_written, r.stats().bytes_written);
        (got, r.stats(), r.damage())
    }

    #[test]
    fn short_io_delivers_every_byte_in_order() {
        run(1, async {
            let inj = injector(1);
            let options = options(1, "short-io:0.9", 4096);
            let bytes = data(300_000);
            let t0 = inj.clock().elapsed();
            let (got, stats, _) = carry(bytes.clone(), &inj, &options, None).await;
            assert!(got == bytes, "the bytes arrive intact");
            assert_eq!(stats.bytes_read, bytes.len() as u64);
            assert_eq!(stats.bytes_written, bytes.len() as u64);
            assert!(stats.short_reads > 10 && stats.stalls > 10, "{stats:?}");
            assert!(inj.counts().get(FaultKind::ShortIo) > 30);
            assert!(inj.clock().elapsed() - t0 >= Duration::from_millis(stats.stalls));
        });
    }

    #[test]
    fn each_damage_is_applied_as_described() {
        run(2, async {
            let inj = injector(2);
            let options = options(2, "none", 4096);
            let bytes = data(50_000);
            let cases = [
                Damage::BitFlip { at: 777, mask: 4 },
                Damage::Truncate { at: 20_000 },
                Damage::Drop {
                    at: 9_990,
                    len: 100,
                },
                Damage::Duplicate {
                    at: 4_000,
                    len: 300,
                },
                Damage::Drop {
                    at: 49_990,
                    len: 100,
                },
                Damage::Duplicate {
                    at: 49_990,
                    len: 100,
                },
                Damage::Truncate { at: 60_000 },
            ];
            for damage in cases {
                let (got, _, applied) = carry(bytes.clone(), &inj, &options, Some(damage)).await;
                let mut want = bytes.clone();
                let expect = match damage {
                    Damage::BitFlip { at, mask } => {
                        want[at as usize] ^= mask;
                        Some(damage)
                    }
                    Damage::Truncate { at } if at < 50_000 => {
                        want.truncate(at as usize);
                        Some(damage)
                    }
                    Damage::Truncate { .. } => None,
                    Damage::Drop { at, len } => {
                        let end = (at + len).min(50_000) as usize;
                        want.drain(at as usize..end);
                        Some(Damage::Drop {
                            at,
                            len: end as u64 - at,
                        })
                    }
                    Damage::Duplicate { at, len } if at + len <= 50_000 => {
                        let span = want[at as usize..(at + len) as usize].to_vec();
                        want.splice((at + len) as usize..(at + len) as usize, span);
                        Some(damage)
                    }
                    Damage::Duplicate { .. } => None,
                };
                assert!(got == want, "{damage}");
                assert_eq!(applied, expect, "{damage}");
            }
            assert_eq!(inj.counts().get(FaultKind::PipeDamage), 5);
        });
    }

    #[test]
    fn a_full_pipe_waits_and_a_closed_reader_breaks_it() {
        run(3, async {
            let inj = injector(3);
            let (mut w, mut r) = pipe(&options(3, "none", 8), &inj, None);
            assert_eq!(w.write(&[1; 20]).await.unwrap(), 8);
            let writer = madsim::task::spawn_local(async move {
                let n = w.write(&[2; 4]).await;
                (n.unwrap(), w)
            });
            madsim::time::sleep(Duration::from_millis(5)).await;
            let mut buf = [0; 3];
            assert_eq!(r.read(&mut buf).await.unwrap(), 3);
            let (n, mut w) = writer.await.unwrap();
            assert_eq!(n, 3, "the writer got the room the reader made");
            drop(r);
            let err = w.write(&[3]).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        });
    }

    #[test]
    fn damage_is_drawn_of_the_allowed_kinds_or_not_at_all() {
        run(4, async {
            let inj = injector(4);
            let on = options(4, "pipe-damage:1", 64);
            let mut kinds = std::collections::BTreeSet::new();
            for _ in 0..40 {
                let d = Damage::draw(&on, &inj, 1000).unwrap();
                kinds.insert(d.kind());
                let at = match d {
                    Damage::BitFlip { at, .. }
                    | Damage::Truncate { at }
                    | Damage::Drop { at, .. }
                    | Damage::Duplicate { at, .. } => at,
                };
                assert!(at < 1000);
            }
            assert_eq!(kinds.len(), 4);
            let mut only = on.clone();
            only.damage_kinds = vec![DamageKind::Drop];
            for _ in 0..10 {
                let d = Damage::draw(&only, &inj, 1000).unwrap();
                assert!(matches!(d, Damage::Drop { len, .. } if len <= 4096), "{d}");
            }
            assert_eq!(Damage::draw(&options(4, "none", 64), &inj, 1000), None);
        });
    }
}
