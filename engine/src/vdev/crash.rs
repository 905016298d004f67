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
//! one is lost), or all but the last, which is torn. Flushed writes always
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

use std::collections::BTreeMap;
use std::fmt;

use super::{BlockDevice, check_image, check_io, zeroed};
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

/// A write in the volatile cache.
#[derive(Clone)]
struct Pending {
    offset: u64,
    data: Vec<u8>,
}

/// An in-memory disk with a volatile write cache, barriers and power loss
/// (see the module documentation).
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
    /// The power is off, since a power loss, until `recover`.
    down: bool,
    last_crash: Option<CrashOutcome>,
    stats: DeviceStats,
}

impl fmt::Debug for CrashDevice {
    /// State and counters only: a pool image is too big to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashDevice")
            .field("size", &self.durable.len())
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
            down: false,
            last_crash: None,
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
                CrashMode::KeepSome => (0..sectors).map(|_| coin(&mut rng)).collect(),
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
        self.durable.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_up("read")?;
        check_io(self.sector_size, self.size(), offset, buf.len())?;
        let len = buf.len() as u64;
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

/// A fair coin from the crash's generator.
fn coin(rng: &mut SplitMix64) -> bool {
    rng.next_u64() >> 63 == 1
}

/// A number in `0..n` (n > 0); the modulo bias is irrelevant here.
fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n
}
