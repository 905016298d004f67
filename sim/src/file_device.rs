//! A pool image file as a block device: what `cargo sim pool`, `zdb`,
//! `send` and `recv` work on. The engine never touches files itself.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use engine::error::{Errno, Error, Result, fail};
use engine::vdev::BlockDevice;

pub struct FileDevice {
    file: File,
    size: u64,
    sector_size: u64,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(Errno::EIO, format!("{what} {}: {e}", path.display()))
}

impl FileDevice {
    /// A new sparse image of `size` bytes (rounded down to whole sectors).
    pub fn create(path: &Path, size: u64, sector_size: u64) -> Result<FileDevice> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error("cannot create", path, e))?;
        let size = size / sector_size * sector_size;
        file.set_len(size)
            .map_err(|e| io_error("cannot size", path, e))?;
        Ok(FileDevice {
            file,
            size,
            sector_size,
        })
    }

    /// An existing image; its sector size is taken as 512.
    pub fn open(path: &Path) -> Result<FileDevice> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_error("cannot open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| io_error("cannot stat", path, e))?
            .len();
        Ok(FileDevice {
            file,
            size: len / 512 * 512,
            sector_size: 512,
        })
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        let len = len as u64;
        if !offset.is_multiple_of(self.sector_size) || !len.is_multiple_of(self.sector_size) {
            return fail(
                Errno::EINVAL,
                format!("unaligned I/O at {offset} of {len} bytes"),
            );
        }
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return fail(
                Errno::EIO,
                format!(
                    "I/O at {offset} of {len} bytes is past the end ({})",
                    self.size
                ),
            );
        }
        Ok(())
    }
}

impl BlockDevice for FileDevice {
    fn sector_size(&self) -> u64 {
        self.sector_size
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::new(Errno::EIO, format!("read at {offset}: {e}")))
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::new(Errno::EIO, format!("write at {offset}: {e}")))
    }

    fn flush(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::new(Errno::EIO, format!("flush: {e}")))
    }
}
