//! `zap_hash`: where a name lives in a ZAP. ZFS hashes a name with the
//! CRC-64 of ECMA-182 (reflected, `ZFS_CRC64_POLY`) started from the ZAP's
//! salt, and keeps only the top hash bits, leaving the low ones for the
//! collision differentiator of a cursor.

use super::ZAP_FLAG_HASH64;

/// `ZFS_CRC64_POLY`.
const ZFS_CRC64_POLY: u64 = 0xC96C_5795_D787_0F42;

/// `zfs_crc64_table`.
static CRC64_TABLE: [u64; 256] = crc64_table();

const fn crc64_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut ct = i as u64;
        let mut bit = 0;
        while bit < 8 {
            ct = (ct >> 1) ^ ((ct & 1).wrapping_neg() & ZFS_CRC64_POLY);
            bit += 1;
        }
        table[i] = ct;
        i += 1;
    }
    table
}

/// `zap_hashbits`: how many top bits of a hash a ZAP uses.
pub fn hashbits(flags: u64) -> u32 {
    if flags & ZAP_FLAG_HASH64 != 0 { 48 } else { 28 }
}

/// `zap_hash` of a string name (without its NUL, which ZFS stores but
/// never hashed).
pub fn zap_hash(salt: u64, flags: u64, name: &[u8]) -> u64 {
    let mut h = salt;
    for &c in name {
        h = (h >> 8) ^ CRC64_TABLE[((h ^ u64::from(c)) & 0xff) as usize];
    }
    h & !((1u64 << (64 - hashbits(flags))) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_zfs_crc64() {
        // zap_hash asserts this entry of the table before using it.
        assert_eq!(CRC64_TABLE[128], ZFS_CRC64_POLY);
    }

    #[test]
    fn only_the_top_bits_are_kept() {
        let h = zap_hash(0x28b7_7b45, 0, b"name");
        assert_eq!(h & ((1 << 36) - 1), 0);
        assert_ne!(h, 0);
        let h64 = zap_hash(0x28b7_7b45, ZAP_FLAG_HASH64, b"name");
        assert_eq!(h64 >> 36, h >> 36);
    }
}
