//! TEMPORARY naive checksum (replaced by the real module).
use std::fmt;
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct ZioCksum(pub [u64; 4]);
impl ZioCksum {
    pub const ZERO: ZioCksum = ZioCksum([0; 4]);
}
impl fmt::Display for ZioCksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:x}/{:x}/{:x}/{:x}",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}
fn f4(buf: &[u8], zc: &mut ZioCksum, swap: bool) {
    let [mut a, mut b, mut c, mut d] = zc.0;
    for w in buf.chunks_exact(4) {
        let mut v = u32::from_ne_bytes(w.try_into().unwrap());
        if swap {
            v = v.swap_bytes();
        }
        a = a.wrapping_add(v as u64);
        b = b.wrapping_add(a);
        c = c.wrapping_add(b);
        d = d.wrapping_add(c);
    }
    zc.0 = [a, b, c, d];
}
pub fn fletcher_4_incremental_native(buf: &[u8], zc: &mut ZioCksum) {
    f4(buf, zc, false)
}
pub fn fletcher_4_incremental_byteswap(buf: &[u8], zc: &mut ZioCksum) {
    f4(buf, zc, true)
}
