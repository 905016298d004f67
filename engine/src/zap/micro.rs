//! A microzap being changed (`zap_micro.c`): one block of 64-byte entries
//! after a 64-byte header (`mzap_phys_t`), a slot free when its name is
//! empty. Only names shorter than `MZAP_NAME_LEN` with one 8-byte value
//! fit; anything else, or a block that can grow no more, upgrades the
//! object to a fat ZAP.

use super::hash::zap_hash;
use super::leaf::{put_u64, u64_at};
use super::{MZAP_ENT_LEN, MZAP_NAME_LEN, ZBT_MICRO};

/// A new microzap's block: the header, every slot free.
pub fn create_block(salt: u64, block_size: usize) -> Vec<u8> {
    let mut block = vec![0; block_size];
    put_u64(&mut block, 0, ZBT_MICRO);
    put_u64(&mut block, 8, salt);
    block
}

pub struct MicroBlock {
    pub block: Vec<u8>,
}

/// One used slot.
pub struct Slot {
    pub index: usize,
    pub name: Vec<u8>,
    pub cd: u32,
    pub value: u64,
}

impl MicroBlock {
    pub fn salt(&self) -> u64 {
        u64_at(&self.block, 8)
    }

    pub fn normflags(&self) -> u64 {
        u64_at(&self.block, 16)
    }

    fn nslots(&self) -> usize {
        self.block.len() / MZAP_ENT_LEN - 1
    }

    fn slot_at(&self, index: usize) -> usize {
        MZAP_ENT_LEN * (index + 1)
    }

    /// Used slots in slot order (the reader has checked every name ends).
    pub fn slots(&self) -> Vec<Slot> {
        (0..self.nslots())
            .filter_map(|index| {
                let at = self.slot_at(index);
                let name = &self.block[at + 14..at + MZAP_ENT_LEN];
                let len = name.iter().position(|&b| b == 0)?;
                (len > 0).then(|| Slot {
                    index,
                    name: name[..len].to_vec(),
                    cd: u32::from_le_bytes(self.block[at + 8..at + 12].try_into().expect("4")),
                    value: u64_at(&self.block, at),
                })
            })
            .collect()
    }

    pub fn free_slot(&self) -> Option<usize> {
        (0..self.nslots()).find(|&i| self.block[self.slot_at(i) + 14] == 0)
    }

    /// `mze_find_unused_cd`: the lowest cd no entry of the same hash has.
    pub fn unused_cd(&self, name: &[u8]) -> u32 {
        let salt = self.salt();
        let hash = zap_hash(salt, 0, name);
        let used: Vec<u32> = self
            .slots()
            .into_iter()
            .filter(|s| zap_hash(salt, 0, &s.name) == hash)
            .map(|s| s.cd)
            .collect();
        (0..).find(|cd| !used.contains(cd)).expect("a free cd")
    }

    /// `mzap_addent` into a free slot.
    pub fn put(&mut self, index: usize, name: &[u8], cd: u32, value: u64) {
        debug_assert!(name.len() < MZAP_NAME_LEN);
        let at = self.slot_at(index);
        let ent = &mut self.block[at..at + MZAP_ENT_LEN];
        ent.fill(0);
        ent[..8].copy_from_slice(&value.to_le_bytes());
        ent[8..12].copy_from_slice(&cd.to_le_bytes());
        ent[14..14 + name.len()].copy_from_slice(name);
    }

    /// `mze_remove` and the slot cleared on disk, as `zap_remove` does.
    pub fn clear(&mut self, index: usize) {
        let at = self.slot_at(index);
        self.block[at..at + MZAP_ENT_LEN].fill(0);
    }

    /// Grows the block by `SPA_MINBLOCKSIZE`: more free slots.
    pub fn grow_to(&mut self, block_size: usize) {
        self.block.resize(block_size, 0);
    }
}
