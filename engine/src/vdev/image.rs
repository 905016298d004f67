//! A device's bytes in memory, whose pages outlive the device.
//!
//! A simulated disk is tens of MiB of which one run writes a few. A fresh
//! zeroed allocation of that size costs a page fault (and the kernel's
//! zeroing) for every page first written, and giving it back to the system
//! costs again; a campaign pays that for both disks of every seed. So an
//! image dropped on a thread is kept (a few per thread) and the next image
//! of the same size on that thread takes it, zeroing only the chunks
//! written since. Its contents are exactly a fresh zeroed image's: reuse
//! changes what a run costs, never what it sees.

use std::cell::RefCell;

/// Granularity of the record of what was written: a sector, so that a
/// device can tell a write over bytes never written (zeros, which it need
/// not keep a copy of) from one over old data.
const CHUNK: usize = 512;
/// Images kept per thread (a run holds two disks).
const KEPT: usize = 4;

thread_local! {
    static SPARE: RefCell<Vec<Image>> = const { RefCell::new(Vec::new()) };
}

/// The bytes of a device, with a record of the chunks ever written.
pub(crate) struct Image {
    bytes: Vec<u8>,
    /// One bit per [`CHUNK`]: set once anything in it may be non-zero.
    written: Vec<u64>,
}

impl Image {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Image {
        let spare = SPARE.with(|s| {
            let mut s = s.borrow_mut();
            let i = s.iter().position(|im| im.bytes.len() == len)?;
            Some(s.swap_remove(i))
        });
        match spare {
            Some(mut image) => {
                image.zero_written();
                image
            }
            None => Image {
                bytes: vec![0; len],
                written: vec![0; len.div_ceil(CHUNK).div_ceil(64)],
            },
        }
    }

    /// An image holding `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Image {
        let chunks = bytes.len().div_ceil(CHUNK);
        let mut written = vec![u64::MAX; chunks.div_ceil(64)];
        if let Some(last) = written.last_mut()
            && !chunks.is_multiple_of(64)
        {
            *last = (1 << (chunks % 64)) - 1;
        }
        Image { bytes, written }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// `len` bytes from `start`, to be written.
    pub fn slice_mut(&mut self, start: usize, len: usize) -> &mut [u8] {
        if len > 0 {
            for_words(start, len, |w, mask| self.written[w] |= mask);
        }
        &mut self.bytes[start..start + len]
    }

    /// Whether `len` bytes from `start` were never written since the image
    /// was zeroed, and so are all zeros.
    pub fn never_written(&self, start: usize, len: usize) -> bool {
        let mut clear = true;
        if len > 0 {
            for_words(start, len, |w, mask| clear &= self.written[w] & mask == 0);
        }
        clear
    }

    /// The bytes, taken out (the image is not kept).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// Zeroes every chunk written and forgets them.
    fn zero_written(&mut self) {
        // Runs of written chunks, each zeroed in one fill.
        let mut run: Option<(usize, usize)> = None;
        for w in 0..self.written.len() {
            let mut bits = std::mem::take(&mut self.written[w]);
            while bits != 0 {
                let chunk = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                match &mut run {
                    Some((_, end)) if *end == chunk => *end += 1,
                    _ => {
                        if let Some((first, end)) = run {
                            self.zero_chunks(first, end);
                        }
                        run = Some((chunk, chunk + 1));
                    }
                }
            }
        }
        if let Some((first, end)) = run {
            self.zero_chunks(first, end);
        }
    }

    fn zero_chunks(&mut self, first: usize, end: usize) {
        let end = (end * CHUNK).min(self.bytes.len());
        self.bytes[first * CHUNK..end].fill(0);
    }
}

/// Calls `f(word, mask)` for each word of a record of chunks, with the bits
/// of the chunks that `len` (> 0) bytes from `start` touch.
fn for_words(start: usize, len: usize, mut f: impl FnMut(usize, u64)) {
    let (first, last) = (start / CHUNK, (start + len - 1) / CHUNK);
    for w in first / 64..=last / 64 {
        let lo = if w == first / 64 { first % 64 } else { 0 };
        let hi = if w == last / 64 { last % 64 } else { 63 };
        f(w, (u64::MAX >> (63 - hi)) & (u64::MAX << lo));
    }
}

impl Clone for Image {
    fn clone(&self) -> Image {
        Image {
            bytes: self.bytes.clone(),
            written: self.written.clone(),
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.bytes);
        let written = std::mem::take(&mut self.written);
        // At thread exit the spares are gone: the bytes are simply freed
        // (as plain vectors, which do not come back here).
        let _ = SPARE.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s.len() >= KEPT {
                    s.remove(0);
                }
                s.push(Image { bytes, written });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_image_reads_as_zeros() {
        let len = 200 * CHUNK + 100;
        let mut a = Image::zeroed(len);
        a.slice_mut(CHUNK - 3, 10).fill(7);
        a.slice_mut(len - 1, 1).fill(9);
        let addr = a.as_slice().as_ptr();
        drop(a);
        let b = Image::zeroed(len);
        assert_eq!(b.as_slice().as_ptr(), addr, "the dropped image was reused");
        assert!(b.as_slice().iter().all(|&x| x == 0));
        assert!(b.never_written(0, len));
        // Written at sector grain: a sector touched, and only it.
        let mut e = b;
        e.slice_mut(CHUNK * 70 + 5, 1).fill(1);
        assert!(!e.never_written(CHUNK * 70, CHUNK));
        assert!(!e.never_written(0, len));
        assert!(e.never_written(0, CHUNK * 70));
        assert!(e.never_written(CHUNK * 71, len - CHUNK * 71));
        drop(e);
        let c = Image::from_vec(vec![1; len]);
        drop(c);
        let d = Image::zeroed(len);
        assert!(d.as_slice().iter().all(|&x| x == 0));
        assert_eq!(Image::zeroed(3 * CHUNK).len(), 3 * CHUNK);
    }
}
