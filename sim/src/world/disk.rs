//! SimDisk: the pool's disk in the simulated world, and its whole fault
//! model.
//!
//! Underneath is the engine's [`CrashDevice`], the media: sectors, a
//! volatile write cache, flush barriers, and what a power loss keeps. Every
//! decision to inject a fault is made here, from the run's [`Injector`] at
//! the rates and windows of [`DiskOptions`], and every fault that fires
//! lands in the trace:
//!
//! * **eio-read / eio-write** (per request): it fails with EIO and moves no
//!   data (a transient error: the same request may succeed next time).
//! * **misdirect** (per write): the write lands, whole, at another
//!   sector-aligned offset and reports success; the intended sectors keep
//!   their old contents. Nothing is spared (labels and uberblocks
//!   included): the checksums must catch it.
//! * **corrupt** (per step, [`SimDisk::draw_step_faults`]): the bits of one
//!   sector flip on the media ([`SimDisk::rot`]), chosen among the last
//!   `rot_recent_writes` writes so that it usually hits live data. Survives
//!   crashes.
//! * **crash / torn** (per step, [`SimDisk::draw_step_faults`]): a power
//!   loss armed to strike right after 0 to `crash_writes_max` further
//!   writes, in this step or a later one: it waits for writes, so it
//!   strikes inside a txg sync with writes pending, not in an idle moment
//!   when everything was flushed. A crash keeps all, none or some sectors
//!   of the unflushed writes, or some of them whole (in any order, or the
//!   oldest in issue order); a torn one keeps all but tears the last. This
//!   one countdown is the only one: the device underneath only knows how
//!   to lose power. The disk then refuses everything until
//!   [`SimDisk::power_on`], and the pool is imported again from what the
//!   crash left on the media.
//!
//! Why the pool must survive it: the engine writes a txg's blocks, flushes,
//! then the uberblock, then flushes again, so a crash finds a consistent
//! older tree, and checksums turn rot and misdirected writes into ECKSUM or
//! EIO, never wrong data. Every request also costs virtual time, so a run's
//! timeline (txg timeouts, snapshot times) moves with the I/O it does.
//!
//! Clones are handles to one disk: the pool owns one as its
//! `Box<dyn BlockDevice>` and the runner keeps another.
//!
//! The disks of a mirror pool are siblings ([`SimDisk::sibling`]): they
//! share one power supply, so a power loss that strikes one takes the
//! others down at the same moment (each at its next request, or when the
//! runner looks, keeping what its own cache had), and one of them can be
//! pulled ([`SimDisk::pull`]) while the others serve.

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
use super::options::DiskOptions;

/// A handle to one simulated disk (see the module documentation).
#[derive(Clone)]
pub struct SimDisk {
    inner: Rc<RefCell<Inner>>,
    name: Rc<str>,
    injector: Injector,
    options: Rc<DiskOptions>,
    /// Cached, so a busy disk can still answer for its geometry.
    sector_size: u64,
    size: u64,
    /// The power supply this disk shares with its siblings: set when a
    /// power loss struck one of them, until `power_on`.
    power_lost: Rc<Cell<bool>>,
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
    /// Damage at rest, where it struck: each rotten sector, and both
    /// places of each misdirected write (where it landed, and where it was
    /// meant to, which kept its old bytes).
    damage: Vec<(u64, u64)>,
    /// What changed on the media other than by the pool's own writes where
    /// it meant them, one entry per read epoch (the epoch is their number):
    /// the ranges a power loss resolved, a rotten sector, where a
    /// misdirected write landed, or `None` for direct access (anything).
    /// See [`BlockDevice::read_epoch`] and [`BlockDevice::changes_since`].
    changes: Vec<Option<Vec<(u64, u64)>>>,
    /// Pulled from its mirror: every request fails with ENXIO.
    pulled: bool,
    /// Writes that failed (an injected EIO, or while pulled): the sectors
    /// they meant to change kept their old bytes, until a later write
    /// there is flushed (a repair, a resilver, a new block).
    missed: Vec<(u64, u64)>,
    /// Writes since the last flush that landed where they were meant to,
    /// while some write had failed: a flush makes them undo misses.
    rewrites: Vec<(u64, u64)>,
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
    /// A zeroed disk of the options' size (rounded down to whole sectors)
    /// named `name` in the trace ("src", "dst").
    ///
    /// # Panics
    ///
    /// If the sector size is not a power of two (options are checked
    /// before a run starts).
    pub fn new(options: &DiskOptions, name: &str, injector: &Injector) -> SimDisk {
        let dev = CrashDevice::new(options.size_bytes, options.sector_size_bytes);
        SimDisk::on(dev, options, name, injector)
    }

    /// A disk around an existing device (a saved image, a test's setup);
    /// its geometry is the device's.
    pub fn on(dev: CrashDevice, options: &DiskOptions, name: &str, injector: &Injector) -> SimDisk {
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
                damage: Vec::new(),
                changes: Vec::new(),
                pulled: false,
                missed: Vec::new(),
                rewrites: Vec::new(),
            })),
            name: name.into(),
            injector: injector.clone(),
            options: Rc::new(options.clone()),
            power_lost: Rc::default(),
        }
    }

    /// A new zeroed disk like this one, named `name`, on the same power
    /// supply (the next device of a mirror).
    pub fn sibling(&self, name: &str) -> SimDisk {
        let mut disk = SimDisk::new(&self.options, name, &self.injector);
        disk.power_lost = self.power_lost.clone();
        disk
    }

    /// Pulls the disk: every request fails with ENXIO (no such device),
    /// which ranks below a checksum error or EIO in what a read of a
    /// mirror returns, until [`replug`].
    ///
    /// [`replug`]: SimDisk::replug
    pub fn pull(&self) {
        self.inner.borrow_mut().pulled = true;
    }

    pub fn replug(&self) {
        self.inner.borrow_mut().pulled = false;
    }

    pub fn is_pulled(&self) -> bool {
        self.inner.borrow().pulled
    }

    /// Whether a write that failed meant to change part of
    /// `[offset, offset + len)`, and no flushed write has covered it since:
    /// those sectors hold older bytes.
    pub fn missed_write(&self, offset: u64, len: u64) -> bool {
        self.inner
            .borrow()
            .missed
            .iter()
            .any(|&(o, l)| o < offset + len && offset < o + l)
    }

    /// Whether a write to this disk failed that no flushed write has
    /// covered since.
    pub fn missed_any_write(&self) -> bool {
        !self.inner.borrow().missed.is_empty()
    }

    /// Takes this disk down if a sibling's power loss struck since its
    /// last request: it loses power now, as it would have then (it took
    /// no request in between).
    pub fn follow_power(&self) {
        if !self.power_lost.get() || self.injector.is_suspended() {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        self.follow_power_in(&mut inner);
    }

    fn follow_power_in(&self, inner: &mut Inner) {
        if self.power_lost.get() && !inner.dev.is_down() {
            let (mode, seed) = self.draw_crash(FaultKind::Crash);
            inner.armed = Some(ArmedCrash {
                kind: FaultKind::Crash,
                writes_left: 0,
                mode,
                seed,
            });
            self.strike(inner);
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
        let mut inner = self.inner.borrow_mut();
        inner.changes.push(None);
        f(&mut inner.dev)
    }

    /// Whether a crash has the power off (until [`power_on`]).
    ///
    /// [`power_on`]: SimDisk::power_on
    pub fn is_down(&self) -> bool {
        self.inner.borrow().dev.is_down() || self.power_lost.get()
    }

    /// Whether damage at rest (rot, a misdirected write) ever struck this
    /// disk: from then on, unreadable blocks are damage found, not bugs.
    pub fn is_damaged(&self) -> bool {
        !self.inner.borrow().damage.is_empty()
    }

    /// Whether damage at rest reached the extent `[offset, offset + len)`.
    pub fn damage_reached(&self, offset: u64, len: u64) -> bool {
        self.inner
            .borrow()
            .damage
            .iter()
            .any(|&(o, l)| o < offset + len && offset < o + l)
    }

    /// Whether a crash is armed and has not struck yet.
    pub fn is_armed(&self) -> bool {
        self.inner.borrow().armed.is_some()
    }

    /// Arms a power loss of `kind` ([`FaultKind::Crash`]: the unflushed
    /// writes are all lost, all kept or kept sector by sector at random;
    /// [`FaultKind::Torn`]: all kept but the last, which is torn) to strike
    /// right after a number of further writes drawn from 0 to the options'
    /// `crash_writes_max` (0: at once). Returns that number, or
    /// `None` if nothing was armed (the injector is suspended or the power
    /// is already off).
    pub fn arm_crash(&self, kind: FaultKind) -> Option<u64> {
        if self.injector.is_suspended() || self.is_down() {
            return None;
        }
        let n = self
            .injector
            .draw(kind, |rng| rng.gen_range(0..=self.options.crash_writes_max));
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
        self.power_lost.set(false);
        let mut inner = self.inner.borrow_mut();
        inner.dev.recover();
        // Nothing changes on the media, but the pool before it is gone:
        // the oracle's record of what it verified ends with it.
        inner.changes.push(Some(Vec::new()));
        inner.armed = None;
        if inner.down.take().is_some() {
            self.injector.trace().record(
                self.injector.clock().elapsed(),
                format!("disk {}: power on", self.name),
            );
        }
    }

    /// The faults a step's start draws: a power loss armed to strike after
    /// some further writes (crash, else torn), and rot at rest. A crash
    /// armed earlier and still waiting for its writes is kept, not drawn
    /// again. Returns the kind of the power loss armed, if any.
    pub fn draw_step_faults(&self) -> Option<FaultKind> {
        let o = &self.options;
        let mut armed = None;
        for (kind, rate) in [
            (FaultKind::Crash, o.crash_probability),
            (FaultKind::Torn, o.torn_probability),
        ] {
            if armed.is_none() && !self.is_armed() && self.injector.roll(kind, rate) {
                self.arm_crash(kind);
                armed = Some(kind);
            }
        }
        if self.injector.roll(FaultKind::Corrupt, o.rot_probability) {
            self.rot();
        }
        armed
    }

    /// Rot at rest alone, at the options' rate (the faults a mirror's
    /// other disks draw at a step's start; the first draws power losses
    /// for them all).
    pub fn draw_rot(&self) {
        if self
            .injector
            .roll(FaultKind::Corrupt, self.options.rot_probability)
        {
            self.rot();
        }
    }

    /// Latent corruption: flips every bit of one sector on the media,
    /// chosen among the sectors of the last `rot_recent_writes` writes
    /// (preferring writes already flushed, whose damage a pending write
    /// would not hide). Survives crashes. Returns the sector, or `None`
    /// when nothing has been written yet, the power is off or the injector
    /// is suspended.
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
        inner.damage.push((sector * ss, ss));
        inner
            .changes
            .push(Some(vec![(sector * self.sector_size, self.sector_size)]));
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
                _ => [
                    CrashMode::LoseAll,
                    CrashMode::KeepSome,
                    CrashMode::KeepAll,
                    CrashMode::KeepWrites,
                    CrashMode::KeepOldest,
                ][rng.gen_range(0..5)],
            };
            (mode, rng.r#gen())
        })
    }

    /// The armed crash strikes: the power goes, now.
    fn strike(&self, inner: &mut Inner) -> Option<CrashOutcome> {
        let armed = inner.armed.take()?;
        // Unflushed, a rewrite may be lost with the rest.
        inner.rewrites.clear();
        let pending = inner.dev.pending();
        inner.changes.push(Some(pending));
        let outcome = inner.dev.power_loss(armed.mode, armed.seed);
        inner.down = Some(armed.kind);
        self.power_lost.set(true);
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

    /// The virtual time a request of `len` bytes costs beyond its base.
    fn transfer_time(&self, len: usize) -> Duration {
        Duration::from_micros(self.options.sector_latency_us * (len as u64 / self.sector_size))
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
        self.read_with(offset, buf.len(), &mut |data| buf.copy_from_slice(data))
    }

    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.charge_read(offset, len as u64);
        let mut inner = self.inner()?;
        self.follow_power_in(&mut inner);
        if inner.dev.is_down() {
            return inner.dev.read_with(offset, len, f);
        }
        if inner.pulled {
            return fail(Errno::ENXIO, format!("disk {} is pulled", self.name));
        }
        check_io(self.sector_size, self.size, offset, len)?;
        if self
            .injector
            .roll(FaultKind::EioRead, self.options.read_eio_probability)
        {
            let what = format!("disk {}: read at {offset} of {len} bytes failed", self.name);
            self.injector.fired(FaultKind::EioRead, &what);
            return fail(Errno::EIO, what);
        }
        inner.dev.read_with(offset, len, f)
    }

    /// Its reads are the crash device's, which lends its image.
    fn lends(&self) -> bool {
        true
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.injector.clock().jump(
            Duration::from_micros(self.options.write_latency_us) + self.transfer_time(buf.len()),
        );
        let mut inner = self.inner()?;
        self.follow_power_in(&mut inner);
        if inner.dev.is_down() {
            return inner.dev.write(offset, buf);
        }
        check_io(self.sector_size, self.size, offset, buf.len())?;
        let len = buf.len() as u64;
        if inner.pulled {
            inner.missed.push((offset, len));
            return fail(Errno::ENXIO, format!("disk {} is pulled", self.name));
        }
        if self
            .injector
            .roll(FaultKind::EioWrite, self.options.write_eio_probability)
        {
            let what = format!(
                "disk {}: write at {offset} of {len} bytes failed",
                self.name
            );
            self.injector.fired(FaultKind::EioWrite, &what);
            inner.missed.push((offset, len));
            return fail(Errno::EIO, what);
        }
        let mut target = offset;
        let ss = self.sector_size;
        let places = (self.size - len) / ss + 1;
        if places > 1
            && self.injector.roll(
                FaultKind::Misdirect,
                self.options.write_misdirect_probability,
            )
        {
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
            inner.damage.push((other, len));
            inner.damage.push((offset, len));
            inner.changes.push(Some(vec![(other, len)]));
        }
        inner.dev.write(target, buf)?;
        if target == offset && !inner.missed.is_empty() {
            inner.rewrites.push((offset, len));
        }
        let flushes = inner.flushes;
        if inner.recent.len() as u64 >= self.options.rot_recent_writes {
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
        self.injector
            .clock()
            .jump(Duration::from_micros(self.options.flush_latency_us));
        let mut inner = self.inner()?;
        self.follow_power_in(&mut inner);
        if inner.pulled && !inner.dev.is_down() {
            return fail(Errno::ENXIO, format!("disk {} is pulled", self.name));
        }
        inner.dev.flush()?;
        inner.flushes += 1;
        if !inner.rewrites.is_empty() {
            let rewrites = std::mem::take(&mut inner.rewrites);
            inner
                .missed
                .retain(|&(o, l)| !rewrites.iter().any(|&(ro, rl)| ro <= o && o + l <= ro + rl));
        }
        Ok(())
    }

    /// Reads are exact while no read fault can fire: the injector is
    /// suspended (the oracle looks) or read errors are off.
    fn read_epoch(&self) -> Option<u64> {
        let exact = self.injector.is_suspended() || self.options.read_eio_probability <= 0.0;
        let inner = self.inner.try_borrow().ok()?;
        // A pulled disk's reads fail: it vouches for none.
        (exact && !inner.dev.is_down() && !inner.pulled).then_some(inner.changes.len() as u64)
    }

    fn changes_since(&self, epoch: u64) -> Option<Vec<(u64, u64)>> {
        let inner = self.inner.try_borrow().ok()?;
        let since = inner.changes.get(usize::try_from(epoch).ok()?..)?;
        let mut ranges = Vec::new();
        for change in since {
            ranges.extend_from_slice(change.as_deref()?);
        }
        Some(ranges)
    }

    /// The virtual time of a read, also of one the cache spared, so that a
    /// run's timeline does not depend on it; none while the oracle looks.
    fn charge_read(&mut self, _offset: u64, len: u64) {
        if !self.injector.is_observing() {
            self.injector.clock().jump(
                Duration::from_micros(self.options.read_latency_us)
                    + self.transfer_time(len as usize),
            );
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

    const SS: u64 = 512;

    /// A disk of `sectors` sectors with the rates of `faults`.
    fn world<T>(seed: u64, faults: &str, f: impl FnOnce(Injector, DiskOptions) -> T) -> T {
        let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.block_on(async move {
            let streams = Streams::new(seed);
            let plan = faults.parse::<FaultSpec>().unwrap().resolve(&streams);
            let options = WorldOptions::from_plan(&plan).disk;
            let inj = Injector::new(&streams, Trace::new(false), SimClock::current());
            f(inj, options)
        })
    }

    fn disk(sectors: u64, options: &DiskOptions, name: &str, inj: &Injector) -> SimDisk {
        SimDisk::on(CrashDevice::new(sectors * SS, SS), options, name, inj)
    }

    fn errno(r: Result<()>) -> Errno {
        r.unwrap_err().errno()
    }

    #[test]
    fn io_costs_virtual_time_and_counts() {
        world(1, "none", |inj, o| {
            let mut disk = disk(64, &o, "src", &inj);
            let t0 = inj.clock().elapsed();
            disk.write(0, &[7; 4 * SS as usize]).unwrap();
            assert_eq!(
                inj.clock().elapsed() - t0,
                Duration::from_micros(o.write_latency_us + 4 * o.sector_latency_us)
            );
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
        world(2, "eio-read:1,eio-write:1", |inj, o| {
            let mut disk = disk(64, &o, "src", &inj);
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
        world(3, "misdirect:1", |inj, o| {
            let mut disk = disk(16, &o, "dst", &inj);
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
        world(4, "none", |inj, o| {
            let mut disk = disk(64, &o, "src", &inj);
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
                assert!(disk.arm_crash(FaultKind::Crash).unwrap() <= o.crash_writes_max);
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

    /// A crash drawn for a step waits for its writes, in later steps too,
    /// so it strikes with writes pending; the next steps do not draw it
    /// again (which would restart its count).
    #[test]
    fn an_armed_crash_waits_for_its_writes_across_steps() {
        world(7, "crash:1", |inj, o| {
            let mut disk = disk(64, &o, "src", &inj);
            assert!(disk.arm_crash_after(FaultKind::Crash, 2));
            for _ in 0..3 {
                assert_eq!(disk.draw_step_faults(), None, "already armed");
            }
            disk.write(0, &[1; 512]).unwrap();
            assert!(!disk.is_down());
            disk.write(SS, &[2; 512]).unwrap();
            assert!(disk.is_down());
            let line = inj.trace().lines().pop().unwrap();
            assert!(line.contains(": 2 unflushed writes"), "{line}");
            disk.power_on();
            assert_eq!(disk.draw_step_faults(), Some(FaultKind::Crash));
        });
    }

    #[test]
    fn rot_flips_a_recently_written_flushed_sector() {
        world(5, "corrupt:1", |inj, o| {
            let mut disk = disk(1024, &o, "src", &inj);
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

    /// What the disk tells a pool's read cache: reads are vouched for only
    /// while no read fault can fire, and each epoch names what changed on
    /// the media behind the pool's back.
    #[test]
    fn the_read_epoch_names_what_changed_behind_the_pool() {
        world(6, "eio-read:0.5,corrupt:1", |inj, o| {
            let mut disk = disk(1024, &o, "src", &inj);
            // Read faults can fire: nothing is vouched for, but under the
            // oracle.
            assert_eq!(disk.read_epoch(), None);
            let start = inj.suspended(|| disk.read_epoch()).unwrap();
            disk.write(10 * SS, &[1; 2 * SS as usize]).unwrap();
            disk.flush().unwrap();
            disk.write(40 * SS, &[2; SS as usize]).unwrap();
            // The pool's own writes move nothing.
            assert_eq!(inj.suspended(|| disk.read_epoch()), Some(start));
            assert_eq!(disk.changes_since(start), Some(vec![]));
            // A power loss changes only the write it resolved; the power
            // coming back changes nothing, but ends the epoch too.
            disk.crash_now(FaultKind::Crash).unwrap();
            assert_eq!(inj.suspended(|| disk.read_epoch()), None, "power off");
            disk.power_on();
            let after = inj.suspended(|| disk.read_epoch()).unwrap();
            assert_eq!(after, start + 2);
            assert_eq!(disk.changes_since(start), Some(vec![(40 * SS, SS)]));
            // Rot: its sector.
            let sector = disk.rot().unwrap();
            assert_eq!(disk.changes_since(after), Some(vec![(sector * SS, SS)]));
            // Direct access: anything.
            disk.with_device(|_| ());
            assert_eq!(disk.changes_since(after), None);
            assert_eq!(disk.changes_since(after + 100), None, "an epoch to come");
            // A pulled disk's reads fail: it vouches for none until put back.
            let before = inj.suspended(|| disk.read_epoch()).unwrap();
            disk.pull();
            assert_eq!(inj.suspended(|| disk.read_epoch()), None, "pulled");
            disk.replug();
            assert_eq!(inj.suspended(|| disk.read_epoch()), Some(before));
        });
    }
}
