//! TEMPORARY: replaced by the object-type table.
pub const DMU_OT_SA: u32 = 44;
pub const DMU_OT_DNODE: u32 = 10;
pub const DMU_OT_OBJSET: u32 = 11;
pub fn is_metadata(t: u32) -> bool {
    !matches!(t, 19 | 0)
}
pub fn is_valid(t: u32) -> bool {
    t < 54 || (t & 0x80 != 0)
}
pub const DMU_OT_OBJECT_DIRECTORY: u32 = 1;
#[derive(Clone, Copy, Debug)]
pub enum ByteswapClass {
    Uint8,
    Uint64,
}
pub fn byteswap_class(t: u32) -> Option<ByteswapClass> {
    if t == 19 {
        Some(ByteswapClass::Uint8)
    } else {
        Some(ByteswapClass::Uint64)
    }
}
pub fn byteswap(class: ByteswapClass, buf: &mut [u8]) {
    if let ByteswapClass::Uint64 = class {
        for c in buf.chunks_exact_mut(8) {
            c.reverse();
        }
    }
}
