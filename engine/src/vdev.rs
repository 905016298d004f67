//! Block devices: the pool's only way to reach storage.
//!
//! The engine never opens a file. It talks to a [`BlockDevice`], and the
//! caller decides what is behind it: a [`MemDevice`] for plain tests, a
//! [`CrashDevice`] for crash-consistency tests, or a pool image file (the
//! `sim` crate's `FileDevice`). [`SharedDevice`] lets a test keep a handle on
//! a device the pool owns, so it can crash it mid-sync.
//!
//! # The fault model of [`CrashDevice`]
//!
//! A real disk acknowledges a write once the data sits in its volatile write
//! cache, and destages cached sectors to the media in whatever order suits
//! it. Only a cache flush (a barrier) promises that every write acknowledged
//! before it is on stable storage. A single sector is written atomically: it
//! holds its old or its new contents, never a mix; nothing larger is.
//!
//! So `CrashDevice` keeps a durable image and a cache: a list of the writes
//! issued since the last flush, in issue order. Reads see the newest data
//! (the cache over the image), as they do on a disk. [`BlockDevice::flush`]
//! moves the whole cache into the image. What can go wrong:
//!
//! * **Power loss** ([`CrashDevice::crash`], or armed to strike after exactly
//!   N writes with [`CrashDevice::crash_after_writes`]): the writes since the
//!   last flush persist all, none, any subset of their sectors (so a
//!   multi-sector write may be torn at any sector boundaries, in any order,
//!   and an older write may persist while a newer one is lost), or all but
//!   the last, which is torn. Flushed writes always survive. Afterwards the
//!   device holds only its durable image and the pool is imported afresh.
//! * **I/O errors**: a write that fails with a chosen errno (and writes
//!   nothing); reads of a byte range that fail with EIO once (a transient
//!   error) or until the fault is cleared (a media error).
//! * **Silent corruption at rest**: a sector's bits flip on the media and the
//!   device still reports success.
//!
//! Why the engine must survive all of it: ZFS never overwrites live data. A
//! txg writes its new blocks into free space, flushes, and only then writes
//! the uberblock that makes the new tree reachable, and flushes again. A lost
//! or torn block of an unfinished txg is therefore never referenced by a
//! durable uberblock, and a torn uberblock fails its checksum, so import must
//! find the last fully synced txg (or the one being synced, if its
//! uberblock made it) with every block it reaches intact. Corruption at rest
//! must surface as ECKSUM from the block checksums, and I/O errors as EIO:
//! never as wrong data, never as a panic.
//!
//! Not modelled (yet): a flush that lies, misdirected or phantom writes,
//! corruption in flight, a sector that is itself half written.

use std::cell::{Ref, RefCell, RefMut};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::rc::Rc;

use crate::error::{Errno, Error, Result, fail};

/// The pool's only way to reach storage.
///
/// Offsets and lengths must be multiples of [`sector_size`]: a request that
/// is not fails with EINVAL, one that reaches past [`size`] with EIO. Neither
/// ever panics, so a corrupt block pointer cannot bring the engine down.
///
/// [`sector_size`]: BlockDevice::sector_size
/// [`size`]: BlockDevice::size
pub trait BlockDevice {
    /// Smallest unit the device writes atomically (512 or 4096). Constant
    /// for the device's life.
    fn sector_size(&self) -> u64;
    /// Bytes, a multiple of `sector_size`. Constant for the device's life.
    fn size(&self) -> u64;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Completes into the device's cache: durable only after [`flush`].
    ///
    /// [`flush`]: BlockDevice::flush
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Makes every completed write durable (a cache flush / barrier).
    fn flush(&mut self) -> Result<()>;
}

impl<D: BlockDevice + ?Sized> BlockDevice for Box<D> {
    fn sector_size(&self) -> u64 {
        (**self).sector_size()
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn sector_size(&self) -> u64 {
        (**self).sector_size()
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
}

/// Checks a request against a device's geometry: EINVAL when `offset` or
/// `len` is not sector-aligned, EIO when it reaches past `size`. Every device
/// calls it first, so they all refuse the same requests the same way.
pub fn check_io(sector_size: u64, size: u64, offset: u64, len: usize) -> Result<()> {
    let len = len as u64;
    if !offset.is_multiple_of(sector_size) || !len.is_multiple_of(sector_size) {
        return fail(
            Errno::EINVAL,
            format!("I/O at {offset} of {len} bytes is not aligned to {sector_size}-byte sectors"),
        );
    }
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return fail(
            Errno::EIO,
            format!("I/O at {offset} of {len} bytes is past the end of the device ({size} bytes)"),
        );
    }
    Ok(())
}

/// Refuses sector sizes a disk cannot have, so alignment checks mean
/// something.
fn check_sector_size(sector_size: u64) -> Result<()> {
    if !sector_size.is_power_of_two() {
        return fail(
            Errno::EINVAL,
            format!("sector size {sector_size} is not a power of two"),
        );
    }
    Ok(())
}

/// The bytes of a new zeroed device of `size` bytes, rounded down to whole
/// sectors (as `FileDevice::create` does).
///
/// # Panics
///
/// If `sector_size` is not a power of two: a test's own mistake.
fn zeroed(size: u64, sector_size: u64) -> Vec<u8> {
    if let Err(e) = check_sector_size(sector_size) {
        panic!("{e}");
    }
    vec![0; (size / sector_size * sector_size) as usize]
}

/// Accepts an image only if it is whole sectors.
fn check_image(bytes: &[u8], sector_size: u64) -> Result<()> {
    check_sector_size(sector_size)?;
    if !(bytes.len() as u64).is_multiple_of(sector_size) {
        return fail(
            Errno::EINVAL,
            format!(
                "image of {} bytes is not a whole number of {sector_size}-byte sectors",
                bytes.len()
            ),
        );
    }
    Ok(())
}

/// A plain in-memory device: every write is durable at once, nothing fails.
#[derive(Clone, PartialEq, Eq)]
pub struct MemDevice {
    data: Vec<u8>,
    sector_size: u64,
}

impl fmt::Debug for MemDevice {
    /// Geometry only: a pool image is too big to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemDevice")
            .field("size", &self.data.len())
            .field("sector_size", &self.sector_size)
            .finish()
    }
}

impl MemDevice {
    /// A zeroed device of `size` bytes, rounded down to whole sectors.
    ///
    /// # Panics
    ///
    /// If `sector_size` is not a power of two.
    pub fn new(size: u64, sector_size: u64) -> MemDevice {
        MemDevice {
            data: zeroed(size, sector_size),
            sector_size,
        }
    }

    /// A device holding an existing image (a saved pool, a crashed
    /// device's durable image). EINVAL unless it is whole sectors.
    pub fn from_bytes(bytes: Vec<u8>, sector_size: u64) -> Result<MemDevice> {
        check_image(&bytes, sector_size)?;
        Ok(MemDevice {
            data: bytes,
            sector_size,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Direct access to the media, for tests that damage it on purpose.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

impl BlockDevice for MemDevice {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let start = offset as usize;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let start = offset as usize;
        self.data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What survives a power loss of a [`CrashDevice`]: which of the writes
/// since the last flush reach the durable image. Flushed data always does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// None of them: the durable image only.
    LoseAll,
    /// All of them, as if the cache had been flushed.
    KeepAll,
    /// Each pending sector kept or lost independently, with probability
    /// 1/2, from the seed. Tears multi-sector writes at any boundaries, in
    /// any order, and can keep an older write of a sector while losing a
    /// newer one.
    KeepSome,
    /// Every write but the last kept; the last one torn. A one-sector write
    /// is kept or lost whole (sectors are atomic). A longer one keeps, by a
    /// coin from the seed, either a proper prefix of its sectors (at least
    /// one, not all: a tear at a boundary strictly inside it) or an
    /// arbitrary subset of them.
    TornLast,
}

/// Counters of a [`CrashDevice`], for tests and benchmarks. Only requests
/// that succeeded count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Power losses, by [`CrashDevice::crash`] or an armed crash.
    pub crashes: u64,
}

/// What a crash did to the writes that were pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashOutcome {
    pub mode: CrashMode,
    pub seed: u64,
    /// Writes in the cache when the power went (none for an empty write).
    pub pending_writes: u64,
    /// Pending sector writes that reached the durable image.
    pub sectors_kept: u64,
    /// Pending sector writes that were lost.
    pub sectors_lost: u64,
}

/// A write in the volatile cache.
#[derive(Clone)]
struct Pending {
    offset: u64,
    data: Vec<u8>,
}

/// A crash that strikes by itself after a number of further writes.
#[derive(Clone, Copy, Debug)]
struct Armed {
    writes_left: u64,
    mode: CrashMode,
    seed: u64,
}

/// An in-memory device with a volatile write cache and injectable faults,
/// for crash-consistency tests of the engine. See the module documentation
/// for the fault model.
///
/// Memory: the durable image, plus the pending writes and an index entry
/// per pending sector; a flush empties the cache.
#[derive(Clone)]
pub struct CrashDevice {
    durable: Vec<u8>,
    sector_size: u64,
    /// Writes since the last flush, in issue order.
    cache: Vec<Pending>,
    /// For each sector with a pending write, the index in `cache` of the
    /// newest one: what a read of that sector sees.
    newest: BTreeMap<u64, usize>,
    armed: Option<Armed>,
    /// Set when an armed crash has fired: the power is off.
    down: bool,
    last_crash: Option<CrashOutcome>,
    /// Errnos for the next writes, one each.
    write_faults: VecDeque<Errno>,
    /// Byte ranges whose next overlapping read fails, once each.
    read_faults: Vec<Range<u64>>,
    /// Byte ranges every overlapping read fails on.
    unreadable: Vec<Range<u64>>,
    stats: DeviceStats,
}

impl fmt::Debug for CrashDevice {
    /// State and counters only: a pool image is too big to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashDevice")
            .field("size", &self.durable.len())
            .field("sector_size", &self.sector_size)
            .field("pending_writes", &self.cache.len())
            .field("armed", &self.armed)
            .field("down", &self.down)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl CrashDevice {
    /// A zeroed device of `size` bytes, rounded down to whole sectors.
    ///
    /// # Panics
    ///
    /// If `sector_size` is not a power of two.
    pub fn new(size: u64, sector_size: u64) -> CrashDevice {
        CrashDevice::with_image(zeroed(size, sector_size), sector_size)
    }

    /// A device whose durable image is `bytes`. EINVAL unless it is whole
    /// sectors.
    pub fn from_bytes(bytes: Vec<u8>, sector_size: u64) -> Result<CrashDevice> {
        check_image(&bytes, sector_size)?;
        Ok(CrashDevice::with_image(bytes, sector_size))
    }

    fn with_image(durable: Vec<u8>, sector_size: u64) -> CrashDevice {
        CrashDevice {
            durable,
            sector_size,
            cache: Vec::new(),
            newest: BTreeMap::new(),
            armed: None,
            down: false,
            last_crash: None,
            write_faults: VecDeque::new(),
            read_faults: Vec::new(),
            unreadable: Vec::new(),
            stats: DeviceStats::default(),
        }
    }

    /// What is on the media: what would survive `crash(LoseAll)`.
    pub fn durable_bytes(&self) -> &[u8] {
        &self.durable
    }

    /// What a read sees now: the cache over the durable image.
    pub fn current_bytes(&self) -> Vec<u8> {
        let mut bytes = self.durable.clone();
        for w in &self.cache {
            let start = w.offset as usize;
            bytes[start..start + w.data.len()].copy_from_slice(&w.data);
        }
        bytes
    }

    /// The durable image alone, e.g. to import a crashed pool on a plain
    /// device.
    pub fn into_durable_bytes(self) -> Vec<u8> {
        self.durable
    }

    /// Writes issued since the last flush.
    pub fn pending_writes(&self) -> usize {
        self.cache.len()
    }

    /// Distinct sectors with a write issued since the last flush.
    pub fn pending_sectors(&self) -> usize {
        self.newest.len()
    }

    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = DeviceStats::default();
    }

    /// Loses power now and comes back: the pending writes persist as `mode`
    /// says (choices drawn from `rng_seed`), the cache empties, and the
    /// device holds only its durable image. Disarms an armed crash. If an
    /// armed crash has already fired, the power is off and that crash has
    /// decided the image: this only powers the device back on (as
    /// [`recover`](CrashDevice::recover) does) and returns its outcome.
    pub fn crash(&mut self, mode: CrashMode, rng_seed: u64) -> CrashOutcome {
        self.armed = None;
        if std::mem::take(&mut self.down)
            && let Some(outcome) = self.last_crash
        {
            return outcome;
        }
        self.lose_power(mode, rng_seed)
    }

    /// Arms a power loss that strikes by itself right after the `n`th
    /// further successful write (at once if `n` is 0), resolving the cache
    /// as `mode` and `rng_seed` say. That write returns `Ok` (it reached the
    /// cache); from then on the device is down: every read, write and flush
    /// fails with EIO and changes nothing, until [`crash`] or [`recover`]
    /// powers it back on. Writes refused by an injected fault do not count.
    ///
    /// To crash at every write of a txg sync: for n = 0, 1, 2, ... arm
    /// `crash_after_writes(n, ..)`, run the sync, and stop at the first n
    /// for which [`is_down`] is still false afterwards (the sync finished
    /// before the crash); otherwise [`recover`], import and check.
    ///
    /// [`crash`]: CrashDevice::crash
    /// [`recover`]: CrashDevice::recover
    /// [`is_down`]: CrashDevice::is_down
    pub fn crash_after_writes(&mut self, n: u64, mode: CrashMode, rng_seed: u64) {
        self.armed = Some(Armed {
            writes_left: n,
            mode,
            seed: rng_seed,
        });
        if n == 0 {
            self.fire();
        }
    }

    /// Cancels an armed crash that has not fired.
    pub fn disarm(&mut self) {
        self.armed = None;
    }

    /// Whether an armed crash has fired and the device is still off.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Powers the device back on after an armed crash fired, and disarms.
    /// Its contents are the durable image the crash left.
    pub fn recover(&mut self) {
        self.armed = None;
        self.down = false;
    }

    /// What the most recent crash (called or armed) did.
    pub fn last_crash(&self) -> Option<CrashOutcome> {
        self.last_crash
    }

    /// The next write fails with `errno` and writes nothing. Each call
    /// queues one failure.
    pub fn fail_next_write(&mut self, errno: Errno) {
        self.write_faults.push_back(errno);
    }

    /// The next read overlapping the byte range `range` fails with EIO,
    /// once: a transient error, gone on retry.
    pub fn fail_reads_at(&mut self, range: Range<u64>) {
        self.read_faults.push(range);
    }

    /// Every read overlapping the byte range `range` fails with EIO until
    /// [`clear_faults`](CrashDevice::clear_faults): a media error.
    pub fn set_unreadable(&mut self, range: Range<u64>) {
        self.unreadable.push(range);
    }

    /// Drops every injected write and read fault that has not fired.
    pub fn clear_faults(&mut self) {
        self.write_faults.clear();
        self.read_faults.clear();
        self.unreadable.clear();
    }

    /// Flips every bit of sector number `sector` on the media, silently:
    /// reads return the damage unless a pending write of that sector hides
    /// it (a later flush overwrites it). EINVAL past the end.
    pub fn corrupt_sector(&mut self, sector: u64) -> Result<()> {
        let ss = self.sector_size;
        if sector >= self.durable.len() as u64 / ss {
            return fail(
                Errno::EINVAL,
                format!(
                    "no sector {sector} on a device of {} bytes",
                    self.durable.len()
                ),
            );
        }
        let start = (sector * ss) as usize;
        for byte in &mut self.durable[start..start + ss as usize] {
            *byte = !*byte;
        }
        Ok(())
    }

    /// Refuses everything while an armed crash has the power off.
    fn check_up(&self, what: &str) -> Result<()> {
        if self.down {
            return fail(
                Errno::EIO,
                format!("{what}: the device is down (an armed crash fired)"),
            );
        }
        Ok(())
    }

    /// The armed crash strikes.
    fn fire(&mut self) {
        if let Some(armed) = self.armed.take() {
            self.lose_power(armed.mode, armed.seed);
            self.down = true;
        }
    }

    /// Resolves the cache into the durable image as `mode` says.
    fn lose_power(&mut self, mode: CrashMode, seed: u64) -> CrashOutcome {
        let ss = self.sector_size as usize;
        let mut rng = SplitMix64::new(seed);
        let cache = std::mem::take(&mut self.cache);
        self.newest.clear();
        let mut outcome = CrashOutcome {
            mode,
            seed,
            pending_writes: cache.len() as u64,
            sectors_kept: 0,
            sectors_lost: 0,
        };
        let last = cache.len().wrapping_sub(1);
        for (i, w) in cache.iter().enumerate() {
            let sectors = w.data.len() / ss;
            let keep: Vec<bool> = match mode {
                CrashMode::LoseAll => vec![false; sectors],
                CrashMode::KeepAll => vec![true; sectors],
                CrashMode::KeepSome => (0..sectors).map(|_| rng.coin()).collect(),
                CrashMode::TornLast if i == last => torn(sectors, &mut rng),
                CrashMode::TornLast => vec![true; sectors],
            };
            for (s, kept) in keep.into_iter().enumerate() {
                if kept {
                    let start = w.offset as usize + s * ss;
                    self.durable[start..start + ss].copy_from_slice(&w.data[s * ss..(s + 1) * ss]);
                    outcome.sectors_kept += 1;
                } else {
                    outcome.sectors_lost += 1;
                }
            }
        }
        self.stats.crashes += 1;
        self.last_crash = Some(outcome);
        outcome
    }
}

/// Which sectors of a torn write of `sectors` sectors persist (see
/// [`CrashMode::TornLast`]).
fn torn(sectors: usize, rng: &mut SplitMix64) -> Vec<bool> {
    if sectors <= 1 {
        return (0..sectors).map(|_| rng.coin()).collect();
    }
    if rng.coin() {
        let prefix = 1 + rng.below(sectors as u64 - 1) as usize;
        (0..sectors).map(|s| s < prefix).collect()
    } else {
        (0..sectors).map(|_| rng.coin()).collect()
    }
}

/// Whether a request of `len` bytes at `offset` touches `range`.
fn overlaps(range: &Range<u64>, offset: u64, len: u64) -> bool {
    range.start < offset + len && offset < range.end
}

impl BlockDevice for CrashDevice {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }

    fn size(&self) -> u64 {
        self.durable.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_up("read")?;
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let len = buf.len() as u64;
        if let Some(i) = self
            .read_faults
            .iter()
            .position(|r| overlaps(r, offset, len))
        {
            let range = self.read_faults.remove(i);
            return fail(
                Errno::EIO,
                format!("read at {offset} of {len} bytes: injected error at {range:?}"),
            );
        }
        if let Some(range) = self.unreadable.iter().find(|r| overlaps(r, offset, len)) {
            return fail(
                Errno::EIO,
                format!("read at {offset} of {len} bytes: media error at {range:?}"),
            );
        }
        let start = offset as usize;
        buf.copy_from_slice(&self.durable[start..start + buf.len()]);
        let ss = self.sector_size;
        for (&sector, &i) in self.newest.range(offset / ss..(offset + len) / ss) {
            let w = &self.cache[i];
            let from = (sector * ss - w.offset) as usize;
            let to = (sector * ss - offset) as usize;
            buf[to..to + ss as usize].copy_from_slice(&w.data[from..from + ss as usize]);
        }
        self.stats.reads += 1;
        self.stats.bytes_read += len;
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check_up("write")?;
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let len = buf.len() as u64;
        if let Some(errno) = self.write_faults.pop_front() {
            return fail(
                errno,
                format!("write at {offset} of {len} bytes: injected error"),
            );
        }
        if !buf.is_empty() {
            let i = self.cache.len();
            let ss = self.sector_size;
            for sector in offset / ss..(offset + len) / ss {
                self.newest.insert(sector, i);
            }
            self.cache.push(Pending {
                offset,
                data: buf.to_vec(),
            });
        }
        self.stats.writes += 1;
        self.stats.bytes_written += len;
        if let Some(armed) = &mut self.armed {
            armed.writes_left = armed.writes_left.saturating_sub(1);
            if armed.writes_left == 0 {
                self.fire();
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.check_up("flush")?;
        for w in std::mem::take(&mut self.cache) {
            let start = w.offset as usize;
            self.durable[start..start + w.data.len()].copy_from_slice(&w.data);
        }
        self.newest.clear();
        self.stats.flushes += 1;
        Ok(())
    }
}

/// A device shared between the pool that owns it and the test that drives
/// it: clones are handles to the same device, like two cables to one disk.
///
/// The pool takes a `Box<dyn BlockDevice>` (which must be `'static`, so a
/// `&mut` borrow cannot be lent to it); give it a clone and keep one to arm
/// crashes, inject faults or read counters. Single-threaded, like the
/// engine. An I/O request made while the test holds a [`borrow_mut`] fails
/// with EBUSY rather than panicking.
///
/// [`borrow_mut`]: SharedDevice::borrow_mut
pub struct SharedDevice<D> {
    inner: Rc<RefCell<D>>,
    /// Cached: a borrowed device can still answer for its geometry.
    sector_size: u64,
    size: u64,
}

impl<D> Clone for SharedDevice<D> {
    fn clone(&self) -> Self {
        SharedDevice {
            inner: Rc::clone(&self.inner),
            sector_size: self.sector_size,
            size: self.size,
        }
    }
}

impl<D: fmt::Debug> fmt::Debug for SharedDevice<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_borrow() {
            Ok(dev) => f.debug_tuple("SharedDevice").field(&*dev).finish(),
            Err(_) => f.write_str("SharedDevice(<borrowed>)"),
        }
    }
}

impl<D: BlockDevice> SharedDevice<D> {
    pub fn new(dev: D) -> SharedDevice<D> {
        SharedDevice {
            sector_size: dev.sector_size(),
            size: dev.size(),
            inner: Rc::new(RefCell::new(dev)),
        }
    }

    /// # Panics
    ///
    /// If a [`borrow_mut`](SharedDevice::borrow_mut) is alive.
    pub fn borrow(&self) -> Ref<'_, D> {
        self.inner.borrow()
    }

    /// Hold it only between pool calls.
    ///
    /// # Panics
    ///
    /// If another borrow is alive.
    pub fn borrow_mut(&self) -> RefMut<'_, D> {
        self.inner.borrow_mut()
    }

    /// The device back, if this is the last handle.
    pub fn try_into_inner(self) -> std::result::Result<D, SharedDevice<D>> {
        let SharedDevice {
            inner,
            sector_size,
            size,
        } = self;
        Rc::try_unwrap(inner)
            .map(RefCell::into_inner)
            .map_err(|inner| SharedDevice {
                inner,
                sector_size,
                size,
            })
    }

    fn device(&self) -> Result<RefMut<'_, D>> {
        self.inner.try_borrow_mut().map_err(|_| {
            Error::new(
                Errno::EBUSY,
                "shared device is borrowed by its test during I/O",
            )
        })
    }
}

impl<D: BlockDevice> BlockDevice for SharedDevice<D> {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.device()?.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.device()?.write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.device()?.flush()
    }
}

/// The seeded coin flips a crash needs, from the engine's own generator.
struct SplitMix64(crate::context::SplitMix64);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(crate::context::SplitMix64::new(seed))
    }

    fn next_u64(&mut self) -> u64 {
        use crate::context::RandomSource;
        self.0.next_u64()
    }

    fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// A number in `0..n` (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SS: u64 = 512;

    fn sector(byte: u8) -> Vec<u8> {
        vec![byte; SS as usize]
    }

    fn read_at(dev: &mut impl BlockDevice, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        dev.read(offset, &mut buf).unwrap();
        buf
    }

    fn errno<T: fmt::Debug>(r: Result<T>) -> Errno {
        r.unwrap_err().errno()
    }

    /// The first byte of each of the first `n` sectors.
    fn sector_marks(bytes: &[u8], n: usize) -> Vec<u8> {
        (0..n).map(|s| bytes[s * SS as usize]).collect()
    }

    #[test]
    fn misaligned_and_out_of_range_requests_are_refused() {
        let mut devs: Vec<Box<dyn BlockDevice>> = vec![
            Box::new(MemDevice::new(8 * SS, SS)),
            Box::new(CrashDevice::new(8 * SS, SS)),
        ];
        for dev in &mut devs {
            let mut buf = vec![0; SS as usize];
            assert_eq!(errno(dev.read(1, &mut buf)), Errno::EINVAL);
            assert_eq!(errno(dev.write(100, &buf)), Errno::EINVAL);
            assert_eq!(errno(dev.read(0, &mut buf[..100])), Errno::EINVAL);
            assert_eq!(errno(dev.write(0, &buf[..511])), Errno::EINVAL);
            assert_eq!(errno(dev.read(8 * SS, &mut buf)), Errno::EIO);
            assert_eq!(
                errno(dev.write(7 * SS, &vec![0; 2 * SS as usize])),
                Errno::EIO
            );
            // An offset near u64::MAX must not overflow.
            let far = u64::MAX / SS * SS;
            assert_eq!(errno(dev.read(far, &mut buf)), Errno::EIO);
            // Zero-length requests are aligned and in range.
            dev.read(8 * SS, &mut []).unwrap();
            dev.write(0, &[]).unwrap();
            dev.flush().unwrap();
        }
        let err = check_io(4096, 1 << 20, 512, 4096).unwrap_err();
        assert!(err.reason().contains("not aligned"), "{err}");
    }

    #[test]
    fn mem_device_round_trips() {
        let mut dev = MemDevice::new(16 * SS + 100, SS);
        assert_eq!(dev.size(), 16 * SS, "size is rounded down to sectors");
        assert_eq!(dev.sector_size(), SS);
        let data: Vec<u8> = (0..3 * SS).map(|i| (i * 7) as u8).collect();
        dev.write(5 * SS, &data).unwrap();
        assert_eq!(read_at(&mut dev, 5 * SS, data.len()), data);
        assert_eq!(read_at(&mut dev, 4 * SS, SS as usize), sector(0));

        let bytes = dev.clone().into_bytes();
        assert_eq!(bytes, dev.as_bytes());
        let mut again = MemDevice::from_bytes(bytes, SS).unwrap();
        assert_eq!(read_at(&mut again, 5 * SS, data.len()), data);
        assert_eq!(
            errno(MemDevice::from_bytes(vec![0; 1000], SS)),
            Errno::EINVAL
        );
        assert_eq!(
            errno(MemDevice::from_bytes(vec![0; 1536], 768)),
            Errno::EINVAL
        );
    }

    #[test]
    fn boxes_and_borrows_are_devices() {
        fn fill(mut dev: impl BlockDevice, byte: u8) {
            dev.write(0, &sector(byte)).unwrap();
            dev.flush().unwrap();
        }
        let mut dev = MemDevice::new(4 * SS, SS);
        fill(&mut dev, 1);
        assert_eq!(dev.as_bytes()[0], 1);
        let mut boxed: Box<dyn BlockDevice> = Box::new(dev);
        fill(&mut boxed, 2);
        fill(&mut *boxed, 3);
        assert_eq!(read_at(&mut boxed, 0, SS as usize), sector(3));
    }

    #[test]
    fn reads_see_unflushed_writes_newest_first() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &[sector(1), sector(1), sector(1)].concat())
            .unwrap();
        dev.write(SS, &sector(2)).unwrap();
        assert_eq!(dev.pending_writes(), 2);
        assert_eq!(dev.pending_sectors(), 3);
        // A read spanning cached and never-written sectors.
        let got = read_at(&mut dev, 0, 5 * SS as usize);
        assert_eq!(sector_marks(&got, 5), [1, 2, 1, 0, 0]);
        assert_eq!(dev.current_bytes()[..5 * SS as usize], got[..]);
        assert!(dev.durable_bytes().iter().all(|&b| b == 0));

        dev.flush().unwrap();
        assert_eq!(dev.pending_writes(), 0);
        assert_eq!(sector_marks(dev.durable_bytes(), 5), [1, 2, 1, 0, 0]);
    }

    #[test]
    fn lose_all_drops_exactly_the_unflushed_writes() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &[sector(1), sector(1)].concat()).unwrap();
        dev.flush().unwrap();
        dev.write(SS, &[sector(2), sector(2)].concat()).unwrap();
        dev.write(4 * SS, &sector(3)).unwrap();
        let outcome = dev.crash(CrashMode::LoseAll, 7);
        assert_eq!(outcome.pending_writes, 2);
        assert_eq!((outcome.sectors_kept, outcome.sectors_lost), (0, 3));
        assert_eq!(dev.pending_writes(), 0);
        let got = read_at(&mut dev, 0, 8 * SS as usize);
        assert_eq!(sector_marks(&got, 8), [1, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(dev.stats().crashes, 1);
    }

    #[test]
    fn keep_all_keeps_every_write_in_order() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &[sector(1), sector(1)].concat()).unwrap();
        dev.write(SS, &sector(2)).unwrap();
        dev.crash(CrashMode::KeepAll, 0);
        assert_eq!(sector_marks(dev.durable_bytes(), 3), [1, 2, 0]);
    }

    /// 64 one-sector writes and two 8-sector ones, then a crash.
    fn keep_some(seed: u64) -> (Vec<u8>, CrashOutcome) {
        let mut dev = CrashDevice::new(128 * SS, SS);
        dev.write(127 * SS, &sector(9)).unwrap();
        dev.flush().unwrap();
        for s in 0..64 {
            dev.write(s * SS, &sector(s as u8 + 1)).unwrap();
        }
        dev.write(64 * SS, &vec![100; 8 * SS as usize]).unwrap();
        dev.write(64 * SS, &vec![200; 8 * SS as usize]).unwrap();
        let outcome = dev.crash(CrashMode::KeepSome, seed);
        (dev.into_durable_bytes(), outcome)
    }

    #[test]
    fn keep_some_is_a_deterministic_function_of_the_seed() {
        let (a, out_a) = keep_some(1);
        let (b, _) = keep_some(2);
        let (a_again, out_again) = keep_some(1);
        assert_eq!(a, a_again);
        assert_eq!(out_a, out_again);
        assert_ne!(a, b, "different seeds keep different sectors");
        assert_eq!(out_a.pending_writes, 66);
        assert_eq!(out_a.sectors_kept + out_a.sectors_lost, 80);
        assert!(out_a.sectors_kept > 0 && out_a.sectors_lost > 0);
        // Flushed data survives; every sector is old or new, never a mix.
        assert_eq!(a[127 * SS as usize], 9);
        for s in 0..72 {
            let bytes = &a[s * SS as usize..(s + 1) * SS as usize];
            assert!(bytes.iter().all(|&b| b == bytes[0]), "sector {s} mixed");
            let allowed: &[u8] = if s < 64 {
                &[0, s as u8 + 1]
            } else {
                &[0, 100, 200]
            };
            assert!(allowed.contains(&bytes[0]), "sector {s}: {}", bytes[0]);
        }
        // Some seed keeps the older of two writes of a sector and loses the
        // newer one: the cache destaged out of order.
        assert!((0..64).any(|seed| {
            let (img, _) = keep_some(seed);
            (64..72).any(|s| img[s * SS as usize] == 100)
        }));
    }

    /// An earlier write and then an 8-sector write, torn.
    fn torn_last(seed: u64) -> Vec<u8> {
        let mut dev = CrashDevice::new(16 * SS, SS);
        dev.write(0, &sector(1)).unwrap();
        dev.write(8 * SS, &vec![2; 8 * SS as usize]).unwrap();
        let outcome = dev.crash(CrashMode::TornLast, seed);
        assert_eq!(outcome.sectors_kept + outcome.sectors_lost, 9);
        sector_marks(dev.durable_bytes(), 16)
    }

    #[test]
    fn torn_last_tears_the_last_write_at_sector_boundaries() {
        let mut tears = 0;
        let mut prefixes = 0;
        for seed in 0..64 {
            let marks = torn_last(seed);
            assert_eq!(marks[0], 1, "earlier writes are kept");
            assert_eq!(marks, torn_last(seed), "seed {seed} is reproducible");
            let last = &marks[8..];
            let kept = last.iter().filter(|&&m| m == 2).count();
            if kept > 0 && kept < 8 {
                tears += 1;
                if last[..kept].iter().all(|&m| m == 2) {
                    prefixes += 1;
                }
            }
        }
        assert!(tears > 0, "some seed keeps some sectors and not others");
        assert!(
            prefixes > 0 && prefixes < tears,
            "prefixes and subsets both occur"
        );
    }

    #[test]
    fn crash_after_writes_stops_at_the_right_write() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &sector(9)).unwrap();
        dev.flush().unwrap();
        dev.crash_after_writes(3, CrashMode::KeepAll, 0);
        for s in 1..=3 {
            assert!(!dev.is_down());
            dev.write(s * SS, &sector(s as u8)).unwrap();
        }
        assert!(dev.is_down(), "the third write fired the crash");
        let outcome = dev.last_crash().unwrap();
        assert_eq!((outcome.pending_writes, outcome.sectors_kept), (3, 3));
        // Down: everything fails and nothing lands.
        assert_eq!(errno(dev.write(4 * SS, &sector(4))), Errno::EIO);
        assert_eq!(errno(dev.flush()), Errno::EIO);
        let mut buf = sector(0);
        assert_eq!(errno(dev.read(0, &mut buf)), Errno::EIO);
        assert_eq!(dev.stats().writes, 4);

        dev.recover();
        assert!(!dev.is_down());
        let got = read_at(&mut dev, 0, 8 * SS as usize);
        assert_eq!(sector_marks(&got, 6), [9, 1, 2, 3, 0, 0]);
        // Disarmed: writes go on as normal.
        dev.write(4 * SS, &sector(4)).unwrap();
        assert!(!dev.is_down());
    }

    #[test]
    fn crash_after_zero_writes_strikes_at_once_and_crash_powers_on() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &sector(1)).unwrap();
        dev.crash_after_writes(0, CrashMode::LoseAll, 0);
        assert!(dev.is_down());
        assert_eq!(errno(dev.write(0, &sector(2))), Errno::EIO);
        // The armed crash already lost the pending write; KeepAll cannot
        // bring it back.
        let outcome = dev.crash(CrashMode::KeepAll, 0);
        assert_eq!(outcome.mode, CrashMode::LoseAll);
        assert_eq!((outcome.pending_writes, outcome.sectors_lost), (1, 1));
        assert!(!dev.is_down());
        assert_eq!(read_at(&mut dev, 0, SS as usize), sector(0));
        assert_eq!(dev.stats().crashes, 1);
    }

    /// A toy txg sync with the engine's ordering: new blocks into free
    /// space, flush, the "uberblock" (sector 0: the txg and the block count)
    /// in two copies, flush.
    fn toy_sync(dev: &mut dyn BlockDevice, txg: u8) -> Result<()> {
        for b in 0..4u64 {
            dev.write((8 + 4 * txg as u64 + b) * SS, &sector(txg))?;
        }
        dev.flush()?;
        dev.write(0, &sector(txg))?;
        dev.write(SS, &sector(txg))?;
        dev.flush()
    }

    /// The toy import: the newest uberblock copy, and its blocks all there.
    fn toy_import(bytes: &[u8]) -> u8 {
        let txg = bytes[0].max(bytes[SS as usize]);
        for b in 0..4 {
            let s = 8 + 4 * txg as usize + b;
            assert_eq!(bytes[s * SS as usize], txg, "txg {txg} lost block {b}");
        }
        txg
    }

    #[test]
    fn crash_at_every_write_of_a_sync_through_a_shared_handle() {
        for mode in [CrashMode::LoseAll, CrashMode::KeepSome, CrashMode::TornLast] {
            let mut n = 0;
            loop {
                let disk = SharedDevice::new(CrashDevice::new(64 * SS, SS));
                let mut pool: Box<dyn BlockDevice> = Box::new(disk.clone());
                toy_sync(&mut *pool, 1).unwrap();
                disk.borrow_mut().crash_after_writes(n, mode, n);
                let result = toy_sync(&mut *pool, 2);
                drop(pool);
                let mut dev = disk.try_into_inner().unwrap();
                if !dev.is_down() {
                    result.unwrap();
                    assert_eq!(n, 7, "six writes: crash points 0 to 6");
                    break;
                }
                assert_eq!(errno(result), Errno::EIO);
                dev.recover();
                let txg = toy_import(dev.durable_bytes());
                assert!(txg == 1 || (txg == 2 && n >= 5), "{mode:?} n={n} txg={txg}");
                n += 1;
            }
        }
    }

    #[test]
    fn injected_faults_fire_once() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.fail_next_write(Errno::ENOSPC);
        assert_eq!(errno(dev.write(0, &sector(1))), Errno::ENOSPC);
        assert_eq!(dev.pending_writes(), 0, "a failed write writes nothing");
        dev.write(0, &sector(2)).unwrap();
        assert_eq!(dev.stats().writes, 1);

        dev.fail_reads_at(2 * SS..2 * SS + 1);
        let mut buf = sector(0);
        dev.read(0, &mut buf).unwrap();
        dev.read(3 * SS, &mut buf).unwrap();
        let mut two = vec![0; 2 * SS as usize];
        assert_eq!(errno(dev.read(SS, &mut two)), Errno::EIO);
        dev.read(SS, &mut two).unwrap();

        dev.set_unreadable(4 * SS..5 * SS);
        for _ in 0..3 {
            assert_eq!(errno(dev.read(4 * SS, &mut buf)), Errno::EIO);
        }
        dev.fail_next_write(Errno::EIO);
        dev.clear_faults();
        dev.read(4 * SS, &mut buf).unwrap();
        dev.write(4 * SS, &buf).unwrap();
    }

    #[test]
    fn corrupt_sector_flips_bits_at_rest() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &[sector(0x0f), sector(0x0f)].concat())
            .unwrap();
        dev.flush().unwrap();
        dev.corrupt_sector(1).unwrap();
        assert_eq!(read_at(&mut dev, 0, SS as usize), sector(0x0f));
        assert_eq!(read_at(&mut dev, SS, SS as usize), sector(0xf0));
        // A pending write hides the damage, and its flush repairs it.
        dev.write(SS, &sector(7)).unwrap();
        dev.corrupt_sector(1).unwrap();
        assert_eq!(read_at(&mut dev, SS, SS as usize), sector(7));
        dev.flush().unwrap();
        assert_eq!(read_at(&mut dev, SS, SS as usize), sector(7));
        assert_eq!(errno(dev.corrupt_sector(8)), Errno::EINVAL);
    }

    #[test]
    fn counters_count_successful_requests() {
        let mut dev = CrashDevice::new(8 * SS, SS);
        dev.write(0, &vec![1; 2 * SS as usize]).unwrap();
        let _ = dev.write(1, &sector(1));
        read_at(&mut dev, 0, SS as usize);
        dev.flush().unwrap();
        let stats = dev.stats();
        assert_eq!(
            stats,
            DeviceStats {
                reads: 1,
                writes: 1,
                flushes: 1,
                bytes_read: SS,
                bytes_written: 2 * SS,
                crashes: 0,
            }
        );
        dev.reset_stats();
        assert_eq!(dev.stats(), DeviceStats::default());
    }

    #[test]
    fn shared_handles_see_one_device_and_refuse_io_while_borrowed() {
        let disk = SharedDevice::new(CrashDevice::new(8 * SS, SS));
        let mut other = disk.clone();
        other.write(0, &sector(5)).unwrap();
        assert_eq!(disk.borrow().pending_writes(), 1);
        {
            let _held = disk.borrow_mut();
            assert_eq!(other.size(), 8 * SS);
            assert_eq!(errno(other.flush()), Errno::EBUSY);
        }
        let disk = disk.try_into_inner().unwrap_err();
        drop(other);
        let dev = disk.try_into_inner().unwrap();
        assert_eq!(dev.current_bytes()[0], 5);
    }

    #[test]
    fn splitmix_matches_the_published_sequence() {
        // The reference values of splitmix64 seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}

/// Page size of a [`CowDevice`] overlay.
const COW_PAGE: usize = 4096;

/// A device that reads through to a shared, immutable image and keeps its
/// own writes in an overlay of 4 KiB pages: a copy of a pool that costs
/// nothing until it is written. Fuzzing forks a template pool per input.
#[derive(Clone)]
pub struct CowDevice {
    base: std::rc::Rc<[u8]>,
    pages: std::collections::BTreeMap<u64, Box<[u8]>>,
    sector_size: u64,
}

impl fmt::Debug for CowDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CowDevice")
            .field("size", &self.base.len())
            .field("pages_written", &self.pages.len())
            .finish()
    }
}

impl CowDevice {
    /// `base` must be whole pages long (pool images are).
    pub fn new(base: std::rc::Rc<[u8]>, sector_size: u64) -> CowDevice {
        assert!(sector_size.is_power_of_two() && sector_size as usize <= COW_PAGE);
        assert_eq!(base.len() % COW_PAGE, 0, "a CowDevice image is whole pages");
        CowDevice {
            base,
            pages: std::collections::BTreeMap::new(),
            sector_size,
        }
    }

    /// Pages written since the copy was made.
    pub fn pages_written(&self) -> usize {
        self.pages.len()
    }
}

impl BlockDevice for CowDevice {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }

    fn size(&self) -> u64 {
        self.base.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let mut done = 0;
        while done < buf.len() {
            let at = offset as usize + done;
            let page = (at / COW_PAGE) as u64;
            let in_page = at % COW_PAGE;
            let n = (COW_PAGE - in_page).min(buf.len() - done);
            let src = match self.pages.get(&page) {
                Some(p) => &p[in_page..in_page + n],
                None => &self.base[at..at + n],
            };
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let mut done = 0;
        while done < buf.len() {
            let at = offset as usize + done;
            let page = (at / COW_PAGE) as u64;
            let in_page = at % COW_PAGE;
            let n = (COW_PAGE - in_page).min(buf.len() - done);
            let start = page as usize * COW_PAGE;
            let base = &self.base;
            let p = self
                .pages
                .entry(page)
                .or_insert_with(|| base[start..start + COW_PAGE].into());
            p[in_page..in_page + n].copy_from_slice(&buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod cow_tests {
    use super::*;

    #[test]
    fn a_cow_device_reads_through_and_keeps_its_writes_to_itself() {
        let base: std::rc::Rc<[u8]> = vec![7u8; 3 * COW_PAGE].into();
        let mut a = CowDevice::new(base.clone(), 512);
        let mut b = a.clone();
        a.write(COW_PAGE as u64 - 512, &[1u8; 1024]).unwrap();
        let mut buf = vec![0u8; 2048];
        a.read(COW_PAGE as u64 - 1024, &mut buf).unwrap();
        assert_eq!(&buf[..512], &[7u8; 512][..]);
        assert_eq!(&buf[512..1536], &[1u8; 1024][..]);
        assert_eq!(&buf[1536..], &[7u8; 512][..]);
        b.read(COW_PAGE as u64 - 1024, &mut buf).unwrap();
        assert_eq!(buf, vec![7u8; 2048]);
        assert_eq!(a.pages_written(), 2);
        assert!(a.write(1, &[0; 512]).is_err());
    }
}
