//! The DMU: objsets of objects, each a dnode with a tree of blocks, and the
//! object interface the layers above use (`dmu.c`, `dmu_object.c`,
//! `dmu_tx.c`).

pub mod dnode;
pub mod object_type;
pub mod objset;
pub mod tx;

use crate::dsl::DatasetId;
use crate::error::{Errno, Result, fail};
use crate::spa::Pool;
use crate::zio::Zio;
use dnode::ObjectInfo;
use objset::Objset;

/// An objset opened for object operations. Snapshots are read-only.
pub struct Dmu<'a> {
    os: &'a mut Objset,
    zio: &'a mut Zio,
    readonly: bool,
    name: String,
}

impl Pool {
    /// Opens a dataset's objset for object operations.
    pub fn dmu(&mut self, id: DatasetId) -> Result<Dmu<'_>> {
        self.check_usable()?;
        let Some(ds) = self.dsl.datasets.get(&id) else {
            // unreached: callers pass an id just looked up or long-held; a WRITE_BYREF's snapshot
            // from the guid map stays long-held (guid_holds) until the session ends, so destroying
            // it is EBUSY
            return fail(Errno::ENOENT, format!("dataset {id} does not exist"));
        };
        let readonly = ds.is_snapshot();
        // Only a snapshot's name is ever shown (EROFS).
        let name = if readonly {
            self.dataset_name(id)
        } else {
            String::new()
        };
        if readonly {
            if !self.snapshot_views.contains_key(&id) {
                let os = self.objset_snapshot_view(id)?;
                self.snapshot_views.insert(id, os);
            }
        } else {
            self.objset_mut(id)?;
        }
        let os = if readonly {
            self.snapshot_views.get_mut(&id)
        } else {
            self.objsets.get_mut(&id)
        }
        .expect("opened above");
        Ok(Dmu {
            os,
            zio: &mut self.zio,
            readonly,
            name,
        })
    }
}

impl Dmu<'_> {
    fn writable(&self) -> Result<()> {
        if self.readonly {
            return fail(Errno::EROFS, format!("{} is a snapshot", self.name));
        }
        Ok(())
    }

    pub fn objset(&self) -> &Objset {
        self.os
    }

    pub fn objects(&self) -> Vec<u64> {
        self.os.objects().collect()
    }

    pub fn object_info(&self, object: u64) -> Result<ObjectInfo> {
        self.os.object_info(object)
    }

    pub fn object_alloc(
        &mut self,
        dn_type: u8,
        blksz: u32,
        bonustype: u8,
        bonuslen: usize,
    ) -> Result<u64> {
        self.writable()?;
        self.os.object_alloc(dn_type, blksz, bonustype, bonuslen)
    }

    pub fn object_claim(
        &mut self,
        object: u64,
        dn_type: u8,
        blksz: u32,
        bonustype: u8,
        bonuslen: usize,
    ) -> Result<()> {
        self.writable()?;
        self.os
            .object_claim(object, dn_type, blksz, bonustype, bonuslen)
    }

    pub fn object_reclaim(
        &mut self,
        object: u64,
        dn_type: u8,
        blksz: u32,
        bonustype: u8,
        bonuslen: usize,
    ) -> Result<()> {
        self.writable()?;
        self.os
            .object_reclaim(self.zio, object, dn_type, blksz, bonustype, bonuslen)
    }

    pub fn object_free(&mut self, object: u64) -> Result<()> {
        self.writable()?;
        self.os.object_free(self.zio, object)
    }

    pub fn write(&mut self, object: u64, offset: u64, data: &[u8]) -> Result<()> {
        self.writable()?;
        self.os.write(self.zio, object, offset, data)
    }

    pub fn read(&mut self, object: u64, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.os.read(self.zio, object, offset, len)
    }

    /// See [`Objset::with_block`].
    pub fn with_block<R>(
        &mut self,
        object: u64,
        blkid: u64,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        self.os.with_block(self.zio, object, blkid, f)
    }

    pub fn free_range(&mut self, object: u64, offset: u64, len: u64) -> Result<()> {
        self.writable()?;
        self.os.free_range(self.zio, object, offset, len)
    }

    pub fn bonus(&self, object: u64) -> Result<Vec<u8>> {
        self.os.bonus(object).map(<[u8]>::to_vec)
    }

    pub fn set_bonus(&mut self, object: u64, data: &[u8]) -> Result<()> {
        self.writable()?;
        self.os.set_bonus(object, data)
    }

    pub fn set_bonuslen(&mut self, object: u64, len: usize) -> Result<()> {
        self.writable()?;
        self.os.set_bonuslen(object, len)
    }

    pub fn spill(&mut self, object: u64) -> Result<Option<Vec<u8>>> {
        self.os.spill(self.zio, object)
    }

    pub fn set_spill(&mut self, object: u64, data: Option<Vec<u8>>) -> Result<()> {
        self.writable()?;
        self.os.set_spill(object, data)
    }

    pub fn set_checksum(&mut self, object: u64, checksum: u8) -> Result<()> {
        self.writable()?;
        self.os.set_checksum(object, checksum)
    }

    pub fn set_compress(&mut self, object: u64, compress: u8) -> Result<()> {
        self.writable()?;
        self.os.set_compress(object, compress)
    }

    pub fn set_blocksize(&mut self, object: u64, size: u32) -> Result<()> {
        self.writable()?;
        self.os.set_blocksize(self.zio, object, size)
    }

    /// Every level-0 block of an object that is not a hole.
    pub fn blocks(&mut self, object: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let dn = self.os.dnode_mut_readonly(object)?;
        dn.visit_blocks(self.zio, &mut |b| out.push(b))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::context::{ManualClock, SplitMix64};
    use crate::spa::Pool;
    use crate::vdev::MemDevice;

    /// What a receive sets from an OBJECT record (`drr_checksumtype`,
    /// `drr_compress`) is what the object then has; `blocks` lists the
    /// level-0 blocks written, not the holes between them.
    #[test]
    fn an_objects_checksum_compression_and_blocks_read_back() {
        let mut pool = Pool::create(
            Box::new(MemDevice::new(16 << 20, 512)),
            "tank",
            Box::new(ManualClock::new(1_700_000_000)),
            Box::new(SplitMix64::new(7)),
        )
        .unwrap();
        let fs = pool.create_fs("tank/a").unwrap();
        let mut dmu = pool.dmu(fs).unwrap();
        let obj = dmu.object_alloc(19, 4096, 0, 0).unwrap();
        dmu.write(obj, 0, &[1; 4096]).unwrap();
        dmu.write(obj, 4096 * 5, &[2; 4096]).unwrap();
        dmu.set_checksum(obj, 7).unwrap();
        dmu.set_compress(obj, 3).unwrap();
        let info = dmu.object_info(obj).unwrap();
        assert_eq!((info.checksum, info.compress), (7, 3));
        assert_eq!(dmu.blocks(obj).unwrap(), vec![0, 5]);
    }
}
