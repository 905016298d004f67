//! SimDisk: the pool's disk in the simulated world.
//!
//! A [`CrashDevice`] (sectors, a volatile write cache, flush barriers, power
//! loss that keeps all, none or some of the unflushed writes) driven by the
//! run's [`Injector`], so that every fault is drawn from the seed and lands
//! in the trace:
//!
//! * **eio-read / eio-write**: a request fails with EIO and moves no data
//!   (a transient error: the same request may succeed next time).
//! * **misdirect**: a write lands, whole, at another sector-aligned offset
//!   of the device and reports success; the intended sectors keep their old
//!   contents. Nothing is spared (labels and uberblocks included): the
//!   checksums must catch it.
//! * **corrupt**: [`SimDisk::rot`] flips the bits of one sector on the media,
//!   chosen among recently written ones so that it usually hits live data.
//! * **crash / torn**: [`SimDisk::arm_crash`] makes the power fail right
//!   after a drawn number of further writes; [`SimDisk::crash_now`] makes it
//!   fail at once. The device then refuses everything until
//!   [`SimDisk::power_on`], and the pool is imported again from what the
//!   crash left on the media.
//!
//! Every request also costs virtual time, so that a run's timeline (txg
//! timeouts, snapshot times) moves with the I/O it does.
//!
//! Clones are handles to one disk: the pool owns one as its
//! `Box<dyn BlockDevice>` and the runner keeps another to inject faults.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use engine::error::{Errno, Error, Result, fail};
use engine::vdev::{BlockDevice, CrashDevice, CrashMode, CrashOutcome, DeviceStats, check_io};
use rand::Rng;

use super::faults::FaultKind;
use super::injector::Injector;

/// Fixed cost of a read, in virtual time.
pub const READ_BASE: Duration = Duration::from_micros(20);
/// Fixed cost of a write.
pub const WRITE_BASE: Duration = Duration::from_micros(10);
/// Transfer cost per sector, read or written.
pub const PER_SECTOR: Duration = Duration::from_micros(2);
/// A cache flush: the disk destages its cache.
pub const FLUSH: Duration = Duration::from_micros(200);

/// How many recent writes [`SimDisk::rot`] chooses among.
pub const RECENT_WRITES: usize = 1024;

/// The most writes an [`SimDisk::arm_crash`] lets through before the power
/// fails: a small txg sync has about a dozen writes, a large one more, so
/// crashes land anywhere from the first block to the uberblocks.
pub const MAX_WRITES_BEFORE_CRASH: u64 = 48;

/// A handle to one simulated disk (see the module documentation).
#[derive(Clone)]
pub struct SimDisk {
    inner: Rc<RefCell<Inner>>,
    name: Rc<str>,
    injector: Injector,
    /// Cached, so a busy disk can still answer for its geometry.
    sector_size: u64,
    size: u64,
}

struct Inner {
    dev: CrashDevice,
    /// The last writes (offset, length, flushes before them), oldest first.
    recent: VecDeque<(u64, u64, u64)>,
    flushes: u64,
    /// A crash waiting for its write.
    armed: Option<ArmedCrash>,
    /// The kind of the crash that has the power off, until `power_on`.
    down: Option<FaultKind>,
    /// Damage at rest happened: rot, or a write that landed elsewhere.
    damaged: bool,
}

thread_local! {
    static LIVE_DISKS: Cell<usize> = const { Cell::new(0) };
}

/// Disk images still held on this thread. A finished run holds none: one
/// kept alive past its run (by a task the runtime never dropped) costs a
/// campaign both disks of every seed.
pub fn live_disks() -> usize {
    LIVE_DISKS.with(Cell::get)
}

impl Drop for Inner {
    fn drop(&mut self) {
        LIVE_DISKS.with(|n| n.set(n.get() - 1));
    }
}

#[derive(Clone, Copy, Debug)]
struct ArmedCrash {
    kind: FaultKind,
    writes_left: u64,
    mode: CrashMode,
    seed: u64,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDisk")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("sector_size", &self.sector_size)
            .finish_non_exhaustive()
    }
}

impl SimDisk {
    /// A zeroed disk of `size` bytes (rounded down to whole sectors) named
    /// `name` in the trace ("src", "dst").
    ///
    /// # Panics
    ///
    /// If `sector_size` is not a power of two (a caller's mistake).
    pub fn new(size: u64, sector_size: u64, name: &str, injector: &Injector) -> SimDisk {
        SimDisk::on(CrashDevice::new(size, sector_size), name, injector)
    }

    /// A disk around an existing device (a saved image, a test's setup).
    pub fn on(dev: CrashDevice, name: &str, injector: &Injector) -> SimDisk {
        LIVE_DISKS.with(|n| n.set(n.get() + 1));
        SimDisk {
            sector_size: dev.sector_size(),
            size: dev.size(),
            inner: Rc::new(RefCell::new(Inner {
                dev,
                recent: VecDeque::new(),
                flushes: 0,
                armed: None,
                down: None,
                damaged: false,
            })),
            name: name.into(),
            injector: injector.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests that succeeded, and power losses.
    pub fn stats(&self) -> DeviceStats {
        self.inner.borrow().dev.stats()
    }

    /// Direct access to the device underneath, between pool calls (tests,
    /// the oracle's image comparisons). I/O through another handle while
    /// `f` runs fails with EBUSY.
    pub fn with_device<T>(&self, f: impl FnOnce(&mut CrashDevice) -> T) -> T {
        f(&mut self.inner.borrow_mut().dev)
    }

    /// Whether a crash has the power off (until [`power_on`]).
    ///
    /// [`power_on`]: SimDisk::power_on
    pub fn is_down(&self) -> bool {
        self.inner.borrow().dev.is_down()
    }

    /// Whether a crash is armed and has not struck yet.
    /// Whether damage at rest (rot, a misdirected write) ever struck this
    /// disk: from then on, unreadable blocks are damage found, not bugs.
    pub fn is_damaged(&self) -> bool {
        self.inner.borrow().damaged
    }

    pub fn is_armed(&self) -> bool {
        self.inner.borrow().armed.is_some()
    }

    /// Arms a power loss of `kind` ([`FaultKind::Crash`]: the unflushed
    /// writes are all lost, all kept or kept sector by sector at random;
    /// [`FaultKind::Torn`]: all kept but the last, which is torn) to strike
    /// right after a number of further writes drawn from 0 to
    /// [`MAX_WRITES_BEFORE_CRASH`] (0: at once). Returns that number, or
    /// `None` if nothing was armed (the injector is suspended or the power
    /// is already off).
    pub fn arm_crash(&self, kind: FaultKind) -> Option<u64> {
        if self.injector.is_suspended() || self.is_down() {
            return None;
        }
        let n = self
            .injector
            .draw(kind, |rng| rng.gen_range(0..=MAX_WRITES_BEFORE_CRASH));
        self.arm_crash_after(kind, n).then_some(n)
    }

    /// [`arm_crash`](SimDisk::arm_crash) after exactly `n` further writes,
    /// for tests that aim at one write. Writes made while the injector is
    /// suspended do not count: a crash never strikes under the oracle.
    /// Replaces a crash already armed. Returns whether it armed one (not
    /// while suspended or with the power off).
    pub fn arm_crash_after(&self, kind: FaultKind, n: u64) -> bool {
        if self.injector.is_suspended() || self.is_down() {
            return false;
        }
        let (mode, seed) = self.draw_crash(kind);
        let mut inner = self.inner.borrow_mut();
        inner.armed = Some(ArmedCrash {
            kind,
            writes_left: n,
            mode,
            seed,
        });
        if n == 0 {
            self.strike(&mut inner);
        }
        true
    }

    /// Cancels an armed crash that has not struck.
    pub fn disarm(&self) {
        self.inner.borrow_mut().armed = None;
    }

    /// A power loss of `kind` now. The power stays off until
    /// [`power_on`](SimDisk::power_on). Nothing happens if it is already
    /// off, or while the injector is suspended.
    pub fn crash_now(&self, kind: FaultKind) -> Option<CrashOutcome> {
        if self.injector.is_suspended() || self.is_down() {
            return None;
        }
        let (mode, seed) = self.draw_crash(kind);
        let mut inner = self.inner.borrow_mut();
        inner.armed = Some(ArmedCrash {
            kind,
            writes_left: 0,
            mode,
            seed,
        });
        self.strike(&mut inner)
    }

    /// Powers the disk back on after a crash: it holds what the crash left
    /// on the media, and the pool can be imported from it again.
    pub fn power_on(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.dev.recover();
        inner.armed = None;
        if inner.down.take().is_some() {
            self.injector.trace().record(
                self.injector.clock().elapsed(),
                format!("disk {}: power on", self.name),
            );
        }
    }

    /// Latent corruption: flips every bit of one sector on the media,
    /// chosen among the sectors of the last [`RECENT_WRITES`] writes
    /// (preferring writes already flushed, whose damage a pending write
    /// would not hide). Survives crashes. The runner calls it when
    /// `roll(Corrupt)` fires; returns the sector, or `None` when nothing
    /// has been written yet, the power is off or the injector is
    /// suspended.
    pub fn rot(&self) -> Option<u64> {
        if self.injector.is_suspended() {
            return None;
        }
        let mut inner = self.inner.borrow_mut();
        if inner.dev.is_down() || inner.recent.is_empty() {
            return None;
        }
        let flushed: Vec<(u64, u64)> = inner
            .recent
            .iter()
            .filter(|&&(_, _, gen_)| gen_ < inner.flushes)
            .map(|&(o, l, _)| (o, l))
            .collect();
        let pool: Vec<(u64, u64)> = if flushed.is_empty() {
            inner.recent.iter().map(|&(o, l, _)| (o, l)).collect()
        } else {
            flushed
        };
        let ss = self.sector_size;
        let sector = self.injector.draw(FaultKind::Corrupt, |rng| {
            let (offset, len) = pool[rng.gen_range(0..pool.len())];
            offset / ss + rng.gen_range(0..(len / ss).max(1))
        });
        inner.dev.corrupt_sector(sector).ok()?;
        inner.damaged = true;
        self.injector.fired(
            FaultKind::Corrupt,
            format!(
                "disk {}: bits flipped at rest in sector {sector} (byte {})",
                self.name,
                sector * ss
            ),
        );
        Some(sector)
    }

    /// The mode and seed of a power loss of `kind`, from its stream.
    fn draw_crash(&self, kind: FaultKind) -> (CrashMode, u64) {
        self.injector.draw(kind, |rng| {
            let mode = match kind {
                FaultKind::Torn => CrashMode::TornLast,
                _ => [CrashMode::LoseAll, CrashMode::KeepSome, CrashMode::KeepAll]
                    [rng.gen_range(0..3)],
            };
            (mode, rng.r#gen())
        })
    }

    /// The armed crash strikes: the power goes, now.
    fn strike(&self, inner: &mut Inner) -> Option<CrashOutcome> {
        let armed = inner.armed.take()?;
        inner.dev.crash_after_writes(0, armed.mode, armed.seed);
        let outcome = inner.dev.last_crash()?;
        inner.down = Some(armed.kind);
        self.injector.fired(
            armed.kind,
            format!(
                "disk {}: power lost ({:?}): {} unflushed writes, {} sectors kept, {} lost",
                self.name,
                outcome.mode,
                outcome.pending_writes,
                outcome.sectors_kept,
                outcome.sectors_lost
            ),
        );
        Some(outcome)
    }

    fn inner(&self) -> Result<RefMut<'_, Inner>> {
        self.inner.try_borrow_mut().map_err(|_| {
            Error::new(
                Errno::EBUSY,
                format!("disk {} is held by the runner during I/O", self.name),
            )
        })
    }

    fn sectors(&self, len: usize) -> u32 {
        u32::try_from(len as u64 / self.sector_size).unwrap_or(u32::MAX)
    }
}

impl BlockDevice for SimDisk {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.injector
            .clock()
            .jump(READ_BASE + PER_SECTOR * self.sectors(buf.len()));
        let mut inner = self.inner()?;
        if inner.dev.is_down() {
            return inner.dev.read(offset, buf);
        }
        check_io(self.sector_size, self.size, offset, buf.len())?;
        if self.injector.roll(FaultKind::EioRead) {
            let what = format!(
                "disk {}: read at {offset} of {} bytes failed",
                self.name,
                buf.len()
            );
            self.injector.fired(FaultKind::EioRead, &what);
            return fail(Errno::EIO, what);
        }
        inner.dev.read(offset, buf)
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.injector
            .clock()
            .jump(WRITE_BASE + PER_SECTOR * self.sectors(buf.len()));
        let mut inner = self.inner()?;
        if inner.dev.is_down() {
            return inner.dev.write(offset, buf);
        }
        check_io(self.sector_size, self.size, offset, buf.len())?;
        let len = buf.len() as u64;
        if self.injector.roll(FaultKind::EioWrite) {
            let what = format!(
                "disk {}: write at {offset} of {len} bytes failed",
                self.name
            );
            self.injector.fired(FaultKind::EioWrite, &what);
            return fail(Errno::EIO, what);
        }
        let mut target = offset;
        let ss = self.sector_size;
        let places = (self.size - len) / ss + 1;
        if places > 1 && self.injector.roll(FaultKind::Misdirect) {
            // Any other place the write fits: a different sector-aligned
            // offset, drawn uniformly.
            let other = self.injector.draw(FaultKind::Misdirect, |rng| {
                let i = rng.gen_range(0..places - 1);
                let i = if i >= offset / ss { i + 1 } else { i };
                i * ss
            });
            self.injector.fired(
                FaultKind::Misdirect,
                format!(
                    "disk {}: write of {len} bytes meant for {offset} landed at {other}",
                    self.name
                ),
            );
            target = other;
            inner.damaged = true;
        }
        inner.dev.write(target, buf)?;
        let flushes = inner.flushes;
        if inner.recent.len() == RECENT_WRITES {
            inner.recent.pop_front();
        }
        if len > 0 {
            inner.recent.push_back((target, len, flushes));
        }
        if !self.injector.is_suspended()
            && let Some(armed) = &mut inner.armed
        {
            armed.writes_left = armed.writes_left.saturating_sub(1);
            if armed.writes_left == 0 {
                self.strike(&mut inner);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.injector.clock().jump(FLUSH);
        let mut inner = self.inner()?;
        inner.dev.flush()?;
        inner.flushes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::clock::SimClock;
    use crate::world::faults::FaultSpec;
    use crate::world::streams::Streams;
    use crate::world::trace::Trace;

    const SS: u64 = 512;

    fn world<T>(seed: u64, faults: &str, f: impl FnOnce(Injector) -> T) -> T {
        let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.block_on(async move {
            let streams = Streams::new(seed);
            let plan = faults.parse::<FaultSpec>().unwrap().resolve(&streams);
            f(Injector::new(
                plan,
                &streams,
                Trace::new(false),
                SimClock::current(),
            ))
        })
    }

    fn errno(r: Result<()>) -> Errno {
        r.unwrap_err().errno()
    }

    #[test]
    fn io_costs_virtual_time_and_counts() {
        world(1, "none", |inj| {
            let mut disk = SimDisk::new(64 * SS, SS, "src", &inj);
            let t0 = inj.clock().elapsed();
            disk.write(0, &[7; 4 * SS as usize]).unwrap();
            assert_eq!(inj.clock().elapsed() - t0, WRITE_BASE + 4 * PER_SECTOR);
            let mut buf = vec![0; 2 * SS as usize];
            disk.read(SS, &mut buf).unwrap();
            disk.flush().unwrap();
            assert_eq!(buf, vec![7; 2 * SS as usize]);
            let s = disk.stats();
            assert_eq!((s.reads, s.writes, s.flushes), (1, 1, 1));
            assert_eq!((s.bytes_read, s.bytes_written), (2 * SS, 4 * SS));
            assert_eq!(errno(disk.write(1, &[0; 512])), Errno::EINVAL);
            assert!(inj.trace().is_empty());
        });
    }

    #[test]
    fn eio_moves_no_data() {
        world(2, "eio-read:1,eio-write:1", |inj| {
            let mut disk = SimDisk::new(64 * SS, SS, "src", &inj);
            assert_eq!(errno(disk.write(0, &[1; 512])), Errno::EIO);
            let mut buf = [9; 512];
            assert_eq!(errno(disk.read(0, &mut buf)), Errno::EIO);
            assert_eq!(buf, [9; 512]);
            let counts = inj.counts();
            assert_eq!(counts.get(FaultKind::EioRead), 1);
            assert_eq!(counts.get(FaultKind::EioWrite), 1);
            // Suspended: nothing fires.
            inj.suspended(|| {
                disk.write(0, &[1; 512]).unwrap();
                disk.read(0, &mut buf).unwrap();
            });
            assert_eq!(buf, [1; 512]);
            assert_eq!(inj.counts().total(), 2);
        });
    }

    #[test]
    fn a_misdirected_write_lands_elsewhere_and_leaves_the_target_alone() {
        world(3, "misdirect:1", |inj| {
            let mut disk = SimDisk::new(16 * SS, SS, "dst", &inj);
            disk.write(4 * SS, &[5; 2 * SS as usize]).unwrap();
            let bytes = disk.with_device(|d| d.current_bytes());
            assert_eq!(&bytes[4 * SS as usize..6 * SS as usize], &[0; 1024][..]);
            assert_eq!(bytes.iter().filter(|&&b| b == 5).count(), 1024);
            let lines = inj.trace().lines();
            assert!(lines[0].contains("meant for 2048 landed at"), "{lines:?}");
        });
    }

    #[test]
    fn an_armed_crash_strikes_once_after_its_writes() {
        world(4, "none", |inj| {
            let mut disk = SimDisk::new(64 * SS, SS, "src", &inj);
            disk.write(0, &[1; 512]).unwrap();
            disk.flush().unwrap();
            disk.arm_crash_after(FaultKind::Torn, 2);
            disk.write(SS, &[2; 512]).unwrap();
            // Writes under the oracle do not count.
            inj.suspended(|| disk.write(2 * SS, &[3; 512]).unwrap());
            assert!(!disk.is_down() && disk.is_armed());
            disk.write(3 * SS, &[4; 1024]).unwrap();
            assert!(disk.is_down());
            assert_eq!(errno(disk.write(0, &[0; 512])), Errno::EIO);
            assert_eq!(errno(disk.flush()), Errno::EIO);
            assert_eq!(inj.counts().get(FaultKind::Torn), 1);
            let line = inj.trace().lines().pop().unwrap();
            assert!(line.contains("TornLast): 3 unflushed writes"), "{line}");
            disk.power_on();
            assert!(!disk.is_down());
            let bytes = disk.with_device(|d| d.current_bytes());
            assert_eq!(
                (bytes[0], bytes[SS as usize], bytes[2 * SS as usize]),
                (1, 2, 3)
            );
            assert_eq!(inj.counts().get(FaultKind::Torn), 1);
            // At once, and the drawn count stays in range.
            let out = disk.crash_now(FaultKind::Crash).unwrap();
            assert_ne!(out.mode, CrashMode::TornLast);
            assert!(disk.crash_now(FaultKind::Crash).is_none(), "already down");
            disk.power_on();
            for _ in 0..20 {
                assert!(disk.arm_crash(FaultKind::Crash).unwrap() <= MAX_WRITES_BEFORE_CRASH);
                disk.power_on();
            }
            disk.disarm();
            // Nothing strikes under a suspended injector.
            inj.suspended(|| {
                assert_eq!(disk.arm_crash(FaultKind::Torn), None);
                assert!(!disk.arm_crash_after(FaultKind::Torn, 0));
                assert!(disk.crash_now(FaultKind::Crash).is_none());
            });
            assert!(!disk.is_down() && !disk.is_armed());
        });
    }

    #[test]
    fn rot_flips_a_recently_written_flushed_sector() {
        world(5, "corrupt:1", |inj| {
            let mut disk = SimDisk::new(1024 * SS, SS, "src", &inj);
            assert_eq!(disk.rot(), None, "nothing written yet");
            disk.write(100 * SS, &[0x0f; 4 * SS as usize]).unwrap();
            disk.flush().unwrap();
            disk.write(200 * SS, &[0x0f; SS as usize]).unwrap();
            let sector = disk.rot().unwrap();
            assert!((100..104).contains(&sector), "{sector}");
            let mut buf = [0; 512];
            disk.read(sector * SS, &mut buf).unwrap();
            assert_eq!(buf, [0xf0; 512]);
            assert_eq!(inj.suspended(|| disk.rot()), None);
            assert_eq!(inj.counts().get(FaultKind::Corrupt), 1);
        });
    }
}
