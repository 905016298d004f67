//! Block devices: the pool's only way to reach storage.
//!
//! The engine never opens a file. It talks to a [`BlockDevice`], and the
//! caller decides what is behind it: a [`MemDevice`] for plain tests, a
//! [`CrashDevice`] (a disk's media: a volatile write cache, barriers and
//! what a power loss keeps), a [`CowDevice`] copy of a shared image for the
//! fuzzers, or a pool image file (the `sim` crate's `FileDevice`).
//! [`SharedDevice`] lets a test keep a handle on a device the pool owns.
//!
//! No device here decides to fail: when a fault strikes (a power loss after
//! the n-th write, an I/O error, rot) is the caller's decision, and the
//! simulated disk (`sim::world::disk`) is where the simulation makes it.

mod cow;
mod crash;
mod image;
mod mem;
mod mirror;
mod shared;
#[cfg(test)]
mod tests;

pub use cow::CowDevice;
pub use crash::{CrashDevice, CrashMode, CrashOutcome, DeviceStats};
pub use mem::MemDevice;
pub use mirror::{MIRROR_MAX_CHILDREN, Mirror, MirrorChild, VdevErrors};
pub use shared::SharedDevice;

use crate::error::{Errno, Result, fail};

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
    /// [`read`](BlockDevice::read) of `len` bytes handed to `f` where the
    /// device holds them when it can (a device in memory), not copied out:
    /// the same checks, faults and counts as `read`. The default reads into
    /// a buffer.
    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut buf = vec![0; len];
        self.read(offset, &mut buf)?;
        f(&buf);
        Ok(())
    }
    /// Whether [`read_with`](BlockDevice::read_with) hands over the
    /// device's own bytes. A reader that keeps what it reads does better,
    /// on a device that does not, to read into a buffer of its own.
    fn lends(&self) -> bool {
        false
    }
    /// Completes into the device's cache: durable only after [`flush`].
    ///
    /// [`flush`]: BlockDevice::flush
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Makes every completed write durable (a cache flush / barrier).
    fn flush(&mut self) -> Result<()>;
    /// `Some(epoch)` while a read cannot fail and returns the media's bytes,
    /// and the media changed since `epoch` began only by this handle's own
    /// writes: the pool may then answer a read again from what it read
    /// before (when the epoch moves on, it forgets what
    /// [`changes_since`](BlockDevice::changes_since) names). `None`, the
    /// default, means every read goes to the device.
    fn read_epoch(&self) -> Option<u64> {
        None
    }
    /// What a read of `len` bytes at `offset` costs the device besides its
    /// bytes (a simulated disk's time), for a read answered from the cache,
    /// so that caching changes nothing else.
    fn charge_read(&mut self, _offset: u64, _len: u64) {}
    /// The byte ranges (offset, length) whose contents may have changed
    /// since read epoch `epoch` began other than by this handle's writes
    /// (a power loss: the writes it resolved; rot: a sector), so that what
    /// was read before elsewhere can still be used; `None` when the device
    /// cannot tell (then nothing read before can be).
    fn changes_since(&self, _epoch: u64) -> Option<Vec<(u64, u64)>> {
        None
    }
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
    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        (**self).read_with(offset, len, f)
    }
    fn lends(&self) -> bool {
        (**self).lends()
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn read_epoch(&self) -> Option<u64> {
        (**self).read_epoch()
    }
    fn charge_read(&mut self, offset: u64, len: u64) {
        (**self).charge_read(offset, len)
    }
    fn changes_since(&self, epoch: u64) -> Option<Vec<(u64, u64)>> {
        (**self).changes_since(epoch)
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
    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        (**self).read_with(offset, len, f)
    }
    fn lends(&self) -> bool {
        (**self).lends()
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn read_epoch(&self) -> Option<u64> {
        (**self).read_epoch()
    }
    fn charge_read(&mut self, offset: u64, len: u64) {
        (**self).charge_read(offset, len)
    }
    fn changes_since(&self, epoch: u64) -> Option<Vec<(u64, u64)>> {
        (**self).changes_since(epoch)
    }
}

/// Checks a request against a device's geometry: EINVAL when `offset` or
/// `len` is not sector-aligned, EIO when it reaches past `size`. Every device
/// calls it first, so they all refuse the same requests the same way.
pub fn check_io(sector_size: u64, size: u64, offset: u64, len: usize) -> Result<()> {
    let len = len as u64;
    if !offset.is_multiple_of(sector_size) || !len.is_multiple_of(sector_size) {
        // unreached: only a hand-made image on a device of 4096-byte sectors can hold a DVA that is
        // not aligned to them; every simulated and fuzzed device has 512-byte sectors
        return fail(
            Errno::EINVAL,
            format!("I/O at {offset} of {len} bytes is not aligned to {sector_size}-byte sectors"),
        );
    }
    if offset.checked_add(len).is_none_or(|end| end > size) {
        // unreached: Zio::with_block refuses a DVA past the device before reading, and labels,
        // uberblocks and allocations all lie inside it
        return fail(
            Errno::EIO,
            format!("I/O at {offset} of {len} bytes is past the end of the device ({size} bytes)"),
        );
    }
    Ok(())
}

/// Refuses sector sizes a disk cannot have, so alignment checks mean
/// something.
pub(crate) fn check_sector_size(sector_size: u64) -> Result<()> {
    if !sector_size.is_power_of_two() {
        // unreached: only from_bytes hands this back, with a sector size a caller chose (tests do);
        // new() panics instead, and the simulation checks its disks' sector size
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
pub(crate) fn zeroed(size: u64, sector_size: u64) -> Vec<u8> {
    if let Err(e) = check_sector_size(sector_size) {
        panic!("{e}");
    }
    vec![0; (size / sector_size * sector_size) as usize]
}

/// Accepts an image only if it is whole sectors.
pub(crate) fn check_image(bytes: &[u8], sector_size: u64) -> Result<()> {
    check_sector_size(sector_size)?;
    if !(bytes.len() as u64).is_multiple_of(sector_size) {
        // unreached: only from_bytes of an image that is not whole sectors (tests); the simulation,
        // the fuzzers and the command line never call from_bytes
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
