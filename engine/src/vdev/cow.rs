//! A copy-on-write view of a shared pool image: a fork that costs nothing
//! until it is written.

use std::fmt;

use super::{BlockDevice, check_io};
use crate::error::Result;

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
mod tests {
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
