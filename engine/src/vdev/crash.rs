//! A disk's media, as a crash sees it.
//!
//! A real disk acknowledges a write once the data sits in its volatile write
//! cache, and destages cached sectors to the media in whatever order suits
//! it. Only a cache flush (a barrier) promises that every write acknowledged
//! before it is on stable storage. A single sector is written atomically: it
//! holds its old or its new contents, never a mix; nothing larger is.
//!
//! So [`CrashDevice`] keeps a durable image and a cache: the writes issued
//! since the last flush, in issue order. Reads see the newest data (the
//! cache over the image), as they do on a disk; [`BlockDevice::flush`] moves
//! the whole cache into the image. A power loss
//! ([`CrashDevice::power_loss`]) resolves the cache as a [`CrashMode`]
//! says: the writes since the last flush persist all, none, any subset of
//! their sectors (so a multi-sector write may be torn at any sector
//! boundaries, in any order, and an older write may persist while a newer
//! one is lost), any subset of whole writes, the oldest of them in issue
//! order, or all but the last, which is torn. Flushed writes always
//! survive. The power then stays off, every request failing with EIO, until
//! [`CrashDevice::recover`]. Bits can also flip on the media at rest
//! ([`CrashDevice::corrupt_sector`]).
//!
//! Why the engine must survive all of it: ZFS never overwrites live data. A
//! txg writes its new blocks into free space, flushes, and only then writes
//! the uberblock that makes the new tree reachable, and flushes again. A lost
//! or torn block of an unfinished txg is therefore never referenced by a
//! durable uberblock, and a torn uberblock fails its checksum, so import must
//! find the last fully synced txg (or the one being synced, if its
//! uberblock made it) with every block it reaches intact. Corruption at rest
//! must surface as ECKSUM from the block checksums: never as wrong data,
//! never as a panic.
//!
//! When a power loss or rot strikes is not this device's decision: the
//! simulated disk (`sim::world::disk`) draws it, and a crash test of the
//! engine counts writes itself.

use std::collections::BTreeSet;
use std::fmt;

use super::image::Image;
use super::{BlockDevice, check_image, check_io, check_sector_size};
use crate::context::{RandomSource, SplitMix64};
use crate::error::{Errno, Result, fail};

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
    /// Each pending write kept or lost whole, independently, with
    /// probability 1/2: a cache that destages whole requests in any order,
    /// so a newer write may persist while an older one is lost.
    KeepWrites,
    /// The oldest pending writes kept whole, up to a point drawn from the
    /// seed, and the rest lost: a cache that destages in issue order.
    KeepOldest,
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
    /// Power losses.
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

/// A write in the volatile cache: where, and how long. What the sectors
/// held before it sits in [`CrashDevice::log`] (unless they were never
/// written: zeros); what it wrote is in the image until a later pending
/// write covers it, and a power loss recovers it on its way back (see
/// [`CrashDevice::lose_power`]).
#[derive(Clone, Copy)]
struct Pending {
    offset: u64,
    len: usize,
    /// Where its before bytes start in the log; `None` when they are
    /// zeros, never written (most writes of a young pool).
    at: Option<usize>,
}

impl Pending {
    /// Copies what its sectors held before it into `out`.
    fn put_before(&self, log: &[u8], out: &mut [u8]) {
        match self.at {
            Some(at) => out.copy_from_slice(&log[at..at + self.len]),
            None => out.fill(0),
        }
    }
}

/// An in-memory disk with a volatile write cache, barriers and power loss
/// (see the module documentation).
///
/// Writes go straight into the image, which is therefore what a read sees,
/// and each one logs the bytes it replaced (unless they were never
/// written: zeros): a power loss undoes the log back to the durable image
/// and then lets through what its mode keeps, and a flush just forgets the
/// log. Reads are one copy, writes two (one over fresh space), flushes
/// cost nothing; a power loss pays for what it resolves.
///
/// Memory: the image, plus at most the bytes written since the last flush.
#[derive(Clone)]
pub struct CrashDevice {
    /// What a read sees: the durable image with every pending write on it.
    image: Image,
    sector_size: u64,
    /// Writes since the last flush, in issue order.
    cache: Vec<Pending>,
    /// The before bytes of the pending writes (kept allocated from one
    /// flush to the next).
    log: Vec<u8>,
    /// The power is off, since a power loss, until `recover`.
    down: bool,
    last_crash: Option<CrashOutcome>,
    stats: DeviceStats,
}

impl fmt::Debug for CrashDevice {
    /// State and counters only: a pool image is too big to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashDevice")
            .field("size", &self.image.len())
            .field("sector_size", &self.sector_size)
            .field("pending_writes", &self.cache.len())
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
        if let Err(e) = check_sector_size(sector_size) {
            panic!("{e}");
        }
        let len = (size / sector_size * sector_size) as usize;
        CrashDevice::with_image(Image::zeroed(len), sector_size)
    }

    /// A device whose durable image is `bytes`. EINVAL unless it is whole
    /// sectors.
    pub fn from_bytes(bytes: Vec<u8>, sector_size: u64) -> Result<CrashDevice> {
        check_image(&bytes, sector_size)?;
        Ok(CrashDevice::with_image(Image::from_vec(bytes), sector_size))
    }

    fn with_image(image: Image, sector_size: u64) -> CrashDevice {
        CrashDevice {
            image,
            sector_size,
            cache: Vec::new(),
            log: Vec::new(),
            down: false,
            last_crash: None,
            stats: DeviceStats::default(),
        }
    }

    /// What is on the media: what would survive `crash(LoseAll)`.
    pub fn durable_bytes(&self) -> Vec<u8> {
        let mut bytes = self.image.as_slice().to_vec();
        for w in self.cache.iter().rev() {
            let start = w.offset as usize;
            w.put_before(&self.log, &mut bytes[start..start + w.len]);
        }
        bytes
    }

    /// What a read sees now: the cache over the durable image.
    pub fn current_bytes(&self) -> Vec<u8> {
        self.image.as_slice().to_vec()
    }

    /// The durable image alone, e.g. to import a crashed pool on a plain
    /// device.
    pub fn into_durable_bytes(mut self) -> Vec<u8> {
        self.undo_pending();
        std::mem::replace(&mut self.image, Image::from_vec(Vec::new())).into_vec()
    }

    /// Writes issued since the last flush.
    pub fn pending_writes(&self) -> usize {
        self.cache.len()
    }

    /// Distinct sectors with a write issued since the last flush.
    pub fn pending_sectors(&self) -> usize {
        let ss = self.sector_size;
        let sectors: BTreeSet<u64> = self
            .cache
            .iter()
            .flat_map(|w| w.offset / ss..(w.offset + w.len as u64) / ss)
            .collect();
        sectors.len()
    }

    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = DeviceStats::default();
    }

    /// Loses power now and comes back at once: the pending writes persist
    /// as `mode` says (choices drawn from `rng_seed`), the cache empties,
    /// and the device holds only its durable image. If the power is already
    /// off, the loss that turned it off decided the image: this only powers
    /// the device back on and returns that loss's outcome.
    pub fn crash(&mut self, mode: CrashMode, rng_seed: u64) -> CrashOutcome {
        if std::mem::take(&mut self.down)
            && let Some(outcome) = self.last_crash
        {
            return outcome;
        }
        self.lose_power(mode, rng_seed)
    }

    /// Loses power now and stays off: the cache is resolved as `mode` says,
    /// and every read, write and flush fails with EIO and changes nothing
    /// until [`recover`](CrashDevice::recover). A second loss while off
    /// changes nothing and returns the first one's outcome.
    pub fn power_loss(&mut self, mode: CrashMode, rng_seed: u64) -> CrashOutcome {
        if self.down
            && let Some(outcome) = self.last_crash
        {
            return outcome;
        }
        let outcome = self.lose_power(mode, rng_seed);
        self.down = true;
        outcome
    }

    /// The writes in the volatile cache (offset, length): all a power loss
    /// now could change.
    pub fn pending(&self) -> Vec<(u64, u64)> {
        self.cache
            .iter()
            .map(|w| (w.offset, w.len as u64))
            .collect()
    }

    /// Whether a power loss has the power off.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Powers the device back on after [`power_loss`]: its contents are the
    /// durable image the loss left.
    ///
    /// [`power_loss`]: CrashDevice::power_loss
    pub fn recover(&mut self) {
        self.down = false;
    }

    /// What the most recent power loss did.
    pub fn last_crash(&self) -> Option<CrashOutcome> {
        self.last_crash
    }

    /// Flips every bit of sector number `sector` on the media, silently:
    /// reads return the damage unless a pending write of that sector hides
    /// it (a later flush overwrites it). EINVAL past the end.
    pub fn corrupt_sector(&mut self, sector: u64) -> Result<()> {
        let ss = self.sector_size;
        if sector >= self.image.len() as u64 / ss {
            // unreached: its only caller, SimDisk::rot, picks a sector of a recent write that
            // check_io kept on the device
            return fail(
                Errno::EINVAL,
                format!(
                    "no sector {sector} on a device of {} bytes",
                    self.image.len()
                ),
            );
        }
        let start = sector * ss;
        // The media's copy: in the log of the first pending write of the
        // sector if there is one (the image shows the pending data over
        // it), else in the image.
        let first = self
            .cache
            .iter_mut()
            .find(|w| w.offset <= start && start < w.offset + w.len as u64);
        let bytes = match first {
            Some(w) => {
                // Zeros not kept are kept now, to be damaged.
                let at = *w.at.get_or_insert_with(|| {
                    self.log.resize(self.log.len() + w.len, 0);
                    self.log.len() - w.len
                });
                let at = at + (start - w.offset) as usize;
                &mut self.log[at..at + ss as usize]
            }
            None => self.image.slice_mut(start as usize, ss as usize),
        };
        for byte in bytes {
            *byte = !*byte;
        }
        Ok(())
    }

    /// Refuses everything while the power is off.
    fn check_up(&self, what: &str) -> Result<()> {
        if self.down {
            return fail(
                Errno::EIO,
                format!("{what}: the device is down (power lost)"),
            );
        }
        Ok(())
    }

    /// Puts back what the pending writes replaced, newest first: the image
    /// is the durable one again, and the cache is empty.
    fn undo_pending(&mut self) {
        let cache = std::mem::take(&mut self.cache);
        for w in cache.iter().rev() {
            let range = self.image.slice_mut(w.offset as usize, w.len);
            w.put_before(&self.log, range);
        }
        self.log.clear();
    }

    /// Resolves the cache into the durable image as `mode` says.
    fn lose_power(&mut self, mode: CrashMode, seed: u64) -> CrashOutcome {
        let ss = self.sector_size as usize;
        let mut rng = SplitMix64::new(seed);
        let cache = std::mem::take(&mut self.cache);
        // Undone newest first, each write's range holds just what it wrote
        // when its turn comes (the later ones are undone already): kept,
        // the writes one after another in issue order, before the undo.
        let mut starts = Vec::with_capacity(cache.len());
        let mut total = 0;
        for w in &cache {
            starts.push(total);
            total += w.len;
        }
        let mut written = vec![0u8; total];
        for (w, &start) in cache.iter().zip(&starts).rev() {
            let range = self.image.slice_mut(w.offset as usize, w.len);
            written[start..start + w.len].copy_from_slice(range);
            w.put_before(&self.log, range);
        }
        let mut outcome = CrashOutcome {
            mode,
            seed,
            pending_writes: cache.len() as u64,
            sectors_kept: 0,
            sectors_lost: 0,
        };
        let last = cache.len().wrapping_sub(1);
        // KeepOldest: how many of the writes, in issue order, persist.
        let oldest = match mode {
            CrashMode::KeepOldest => below(&mut rng, cache.len() as u64 + 1) as usize,
            _ => 0,
        };
        for (i, (w, &start)) in cache.iter().zip(&starts).enumerate() {
            let sectors = w.len / ss;
            let keep: Vec<bool> = match mode {
                CrashMode::LoseAll => vec![false; sectors],
                CrashMode::KeepAll => vec![true; sectors],
                CrashMode::KeepSome => (0..sectors).map(|_| coin(&mut rng)).collect(),
                CrashMode::KeepWrites => vec![coin(&mut rng); sectors],
                CrashMode::KeepOldest => vec![i < oldest; sectors],
                CrashMode::TornLast if i == last => torn(sectors, &mut rng),
                CrashMode::TornLast => vec![true; sectors],
            };
            let data = &written[start..start + w.len];
            for (s, kept) in keep.into_iter().enumerate() {
                if kept {
                    self.image
                        .slice_mut(w.offset as usize + s * ss, ss)
                        .copy_from_slice(&data[s * ss..(s + 1) * ss]);
                    outcome.sectors_kept += 1;
                } else {
                    outcome.sectors_lost += 1;
                }
            }
        }
        self.log.clear();
        self.stats.crashes += 1;
        self.last_crash = Some(outcome);
        outcome
    }
}

/// Which sectors of a torn write of `sectors` sectors persist (see
/// [`CrashMode::TornLast`]).
fn torn(sectors: usize, rng: &mut SplitMix64) -> Vec<bool> {
    if sectors <= 1 {
        return (0..sectors).map(|_| coin(rng)).collect();
    }
    if coin(rng) {
        let prefix = 1 + below(rng, sectors as u64 - 1) as usize;
        (0..sectors).map(|s| s < prefix).collect()
    } else {
        (0..sectors).map(|_| coin(rng)).collect()
    }
}

impl BlockDevice for CrashDevice {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }

    fn size(&self) -> u64 {
        self.image.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read_with(offset, buf.len(), &mut |data| buf.copy_from_slice(data))
    }

    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.check_up("read")?;
        check_io(self.sector_size, self.size(), offset, len)?;
        let start = offset as usize;
        f(&self.image.as_slice()[start..start + len]);
        self.stats.reads += 1;
        self.stats.bytes_read += len as u64;
        Ok(())
    }

    fn lends(&self) -> bool {
        true
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check_up("write")?;
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let len = buf.len() as u64;
        if !buf.is_empty() {
            let start = offset as usize;
            let at = if self.image.never_written(start, buf.len()) {
                None
            } else {
                self.log
                    .extend_from_slice(&self.image.as_slice()[start..start + buf.len()]);
                Some(self.log.len() - buf.len())
            };
            self.cache.push(Pending {
                offset,
                len: buf.len(),
                at,
            });
            self.image.slice_mut(start, buf.len()).copy_from_slice(buf);
        }
        self.stats.writes += 1;
        self.stats.bytes_written += len;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.check_up("flush")?;
        // Everything written is in the image already.
        self.cache.clear();
        self.log.clear();
        self.stats.flushes += 1;
        Ok(())
    }
}

/// A fair coin from the crash's generator.
fn coin(rng: &mut SplitMix64) -> bool {
    rng.next_u64() >> 63 == 1
}

/// A number in `0..n` (n > 0); the modulo bias is irrelevant here.
fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n
}
