//! TEMPORARY: replaced by the device module.
use crate::error::{Errno, Result, fail};
pub trait BlockDevice {
    fn sector_size(&self) -> u64;
    fn size(&self) -> u64;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    fn flush(&mut self) -> Result<()>;
}
pub struct MemDevice {
    data: Vec<u8>,
    sector: u64,
}
impl MemDevice {
    pub fn new(size: u64, sector: u64) -> Self {
        MemDevice {
            data: vec![0; size as usize],
            sector,
        }
    }
}
impl BlockDevice for MemDevice {
    fn sector_size(&self) -> u64 {
        self.sector
    }
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let o = offset as usize;
        if o + buf.len() > self.data.len() {
            return fail(Errno::EIO, "range");
        }
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let o = offset as usize;
        if o + buf.len() > self.data.len() {
            return fail(Errno::EIO, "range");
        }
        self.data[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
