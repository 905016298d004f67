//! One device, many handles: how a test keeps hold of the disk a pool owns.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;

use super::BlockDevice;
use crate::error::{Errno, Error, Result};

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
            // unreached: only a test that borrows the device during I/O; SharedDevice is test-only
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
    fn read_with(&mut self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.device()?.read_with(offset, len, f)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.device()?.write(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.device()?.flush()
    }
}
