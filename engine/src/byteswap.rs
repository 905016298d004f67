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
