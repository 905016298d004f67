//! A plain in-memory device, for tests and scratch pools.

use std::fmt;

use super::{BlockDevice, check_image, check_io, zeroed};
use crate::error::Result;

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
