//! A pool image file as a block device: what `cargo sim pool`, `zdb`,
//! `send` and `recv` work on. The engine never touches files itself, so this
//! lives in the `sim` crate.
//!
//! Reads and writes are positional (`pread`/`pwrite`), so the device keeps
//! no file offset; `flush` is `fdatasync`, the barrier the engine's txg sync
//! relies on. Every I/O error becomes EIO with the OS message in the reason,
//! as a disk driver reports it to ZFS.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use engine::error::{Errno, Error, Result};
use engine::vdev::{BlockDevice, check_io};

/// The sector size assumed for an image opened without being told.
pub const DEFAULT_SECTOR_SIZE: u64 = 512;

#[derive(Debug)]
pub struct FileDevice {
    file: File,
    /// For error messages.
    path: PathBuf,
    size: u64,
    sector_size: u64,
    /// Whether `flush` reaches stable storage (`fdatasync`); a scratch
    /// image, deleted when its run ends, has nothing to keep.
    durable: bool,
    /// Where `read_with` reads to: one buffer for every read, so a read
    /// the pool decompresses or copies costs no buffer of its own.
    scratch: Vec<u8>,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(Errno::EIO, format!("{what} {}: {e}", path.display()))
}

/// Refuses sector sizes a disk cannot have, so alignment checks mean
/// something.
fn check_sector_size(sector_size: u64) -> Result<()> {
    if !sector_size.is_power_of_two() {
        return Err(Error::new(
            Errno::EINVAL,
            format!("sector size {sector_size} is not a power of two"),
        ));
    }
    Ok(())
}

impl FileDevice {
    /// A new sparse image of `size` bytes (rounded down to whole sectors).
    /// Refuses to replace an existing file: it may be someone's pool.
    pub fn create(path: impl AsRef<Path>, size: u64, sector_size: u64) -> Result<FileDevice> {
        let path = path.as_ref();
        check_sector_size(sector_size)?;
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
            path: path.to_path_buf(),
            size,
            sector_size,
            durable: true,
            scratch: Vec::new(),
        })
    }

    /// As [`FileDevice::create`], for an image thrown away after use (what
    /// `cargo sim verify` receives into): flushes order nothing and skip the
    /// `fdatasync`, which would only wait for a disk nobody reads again.
    pub fn create_scratch(
        path: impl AsRef<Path>,
        size: u64,
        sector_size: u64,
    ) -> Result<FileDevice> {
        let mut dev = FileDevice::create(path, size, sector_size)?;
        dev.durable = false;
        Ok(dev)
    }

    /// An existing image, with 512-byte sectors.
    pub fn open(path: impl AsRef<Path>) -> Result<FileDevice> {
        FileDevice::open_with_sector_size(path, DEFAULT_SECTOR_SIZE)
    }

    /// An existing image. Its size is the file's, rounded down to whole
    /// sectors: a partial last sector is not part of the device.
    pub fn open_with_sector_size(path: impl AsRef<Path>, sector_size: u64) -> Result<FileDevice> {
        let path = path.as_ref();
        check_sector_size(sector_size)?;
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
            path: path.to_path_buf(),
            size: len / sector_size * sector_size,
            sector_size,
            durable: true,
            scratch: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        check_io(self.sector_size, self.size, offset, buf.len())?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| io_error(&format!("read at {offset} of"), &self.path, e))
    }

    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let read = self.read(offset, &mut buf[..len]);
        if read.is_ok() {
            f(&buf[..len]);
        }
        self.scratch = buf;
        read
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_io(self.sector_size, self.size, offset, buf.len())?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| io_error(&format!("write at {offset} of"), &self.path, e))
    }

    fn flush(&mut self) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| io_error("flush of", &self.path, e))
    }
}

/// Imports the pool in the image file `image`, with the other devices of
/// its mirror that its label names (by the absolute paths `pool create
/// --mirror` recorded). Errors read "cannot import IMAGE: why".
pub fn import_image(
    image: &Path,
    clock: Box<dyn engine::context::Clock>,
    rng: Box<dyn engine::context::RandomSource>,
) -> std::result::Result<engine::spa::Pool, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot import {}: {e}", image.display());
    let mut dev = FileDevice::open(image).map_err(|e| e.to_string())?;
    let partners = engine::spa::mirror_partners(&mut dev).map_err(|e| cannot(&e))?;
    let mut devices: Vec<(String, Box<dyn BlockDevice>)> =
        vec![(image.display().to_string(), Box::new(dev))];
    for path in partners {
        let dev = FileDevice::open(&path)
            .map_err(|e| cannot(&format!("its mirror device {path} cannot be opened ({e})")))?;
        devices.push((path, Box::new(dev)));
    }
    engine::spa::Pool::import_devices(devices, clock, rng).map_err(|e| cannot(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("zsim-file-device-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_device_round_trips_through_a_reopen() {
        let tmp = TempDir::new("round-trip");
        let path = tmp.0.join("pool.img");
        let data: Vec<u8> = (0..8192u32).map(|i| (i * 13) as u8).collect();
        {
            let mut dev = FileDevice::create(&path, (1 << 20) + 100, 4096).unwrap();
            assert_eq!(dev.size(), 1 << 20);
            assert_eq!(dev.sector_size(), 4096);
            dev.write(4096 * 3, &data).unwrap();
            dev.flush().unwrap();
            let mut back = vec![0; data.len()];
            dev.read(4096 * 3, &mut back).unwrap();
            assert_eq!(back, data);
            // Misaligned and out-of-range requests are refused.
            assert_eq!(dev.read(512, &mut back).unwrap_err().errno(), Errno::EINVAL);
            assert_eq!(dev.write(1 << 20, &data).unwrap_err().errno(), Errno::EIO);
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);

        let mut dev = FileDevice::open(&path).unwrap();
        assert_eq!((dev.size(), dev.sector_size()), (1 << 20, 512));
        let mut back = vec![0; data.len()];
        dev.read(4096 * 3, &mut back).unwrap();
        assert_eq!(back, data);
        let mut hole = vec![1; 512];
        dev.read(0, &mut hole).unwrap();
        assert!(hole.iter().all(|&b| b == 0), "the sparse image reads zeros");

        let dev = FileDevice::open_with_sector_size(&path, 4096).unwrap();
        assert_eq!(dev.sector_size(), 4096);
        assert_eq!(dev.path(), path);
    }

    #[test]
    fn file_device_reports_os_errors_as_eio() {
        let tmp = TempDir::new("errors");
        let path = tmp.0.join("pool.img");
        let err = FileDevice::open(&path).unwrap_err();
        assert_eq!(err.errno(), Errno::EIO);
        assert!(err.reason().contains("cannot open"), "{err}");
        assert!(err.reason().contains("pool.img"), "{err}");

        FileDevice::create(&path, 1 << 16, 512).unwrap();
        let err = FileDevice::create(&path, 1 << 16, 512).unwrap_err();
        assert_eq!(
            err.errno(),
            Errno::EIO,
            "an existing image is never replaced"
        );

        let err = FileDevice::create(tmp.0.join("odd.img"), 1 << 16, 1000).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
    }
}
