//! Transactions in the spirit of `dmu_tx`: say what you will touch
//! (`hold_*`), get a txg (`assign`), make the changes, `commit`.
//!
//! zsim's engine is single-threaded, so there is one open txg and changes
//! go straight into it. What `assign` still decides is whether the change
//! may happen at all: a suspended pool is EIO, and a change whose worst-case
//! space (data, indirect blocks, dnode blocks, all copy-on-write) does not
//! fit in what the pool has free is ENOSPC, before anything was touched.

use crate::dsl::DatasetId;
use crate::error::{Errno, Result, fail};
use crate::spa::Pool;
use crate::zio::SPA_MAXBLOCKSIZE;

/// `DMU_NEW_OBJECT`: a hold on an object that does not exist yet.
pub const DMU_NEW_OBJECT: u64 = u64::MAX;

/// What a transaction will touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    Write { object: u64, offset: u64, len: u64 },
    Free { object: u64, offset: u64, len: u64 },
    Bonus { object: u64 },
    Spill { object: u64 },
}

#[derive(Debug)]
pub struct Tx {
    pub dataset: DatasetId,
    holds: Vec<Hold>,
    txg: Option<u64>,
}

/// Bytes an indirect block and a dnode block take, for the estimate.
const INDIRECT_BYTES: u64 = 16 << 10;

impl Tx {
    pub fn hold_write(&mut self, object: u64, offset: u64, len: u64) {
        self.holds.push(Hold::Write {
            object,
            offset,
            len,
        });
    }

    pub fn hold_free(&mut self, object: u64, offset: u64, len: u64) {
        self.holds.push(Hold::Free {
            object,
            offset,
            len,
        });
    }

    pub fn hold_bonus(&mut self, object: u64) {
        self.holds.push(Hold::Bonus { object });
    }

    pub fn hold_spill(&mut self, object: u64) {
        self.holds.push(Hold::Spill { object });
    }

    pub fn holds(&self) -> &[Hold] {
        &self.holds
    }

    /// The txg the transaction was assigned to.
    pub fn txg(&self) -> Option<u64> {
        self.txg
    }

    /// Worst-case bytes the holds may allocate: every written block new,
    /// plus a chain of indirect blocks for each, plus the dnode block, the
    /// meta-dnode's indirect chain and the objset block.
    fn worst_case_bytes(&self) -> u64 {
        let mut total = 0u64;
        for hold in &self.holds {
            total = total.saturating_add(match *hold {
                Hold::Write { len, .. } => {
                    let blocks = len.div_ceil(SPA_MAXBLOCKSIZE).max(1) + 1;
                    len.saturating_add(blocks.saturating_mul(512))
                        .saturating_add(blocks.div_ceil(128).saturating_mul(INDIRECT_BYTES) * 3)
                }
                Hold::Free { .. } => INDIRECT_BYTES * 3,
                Hold::Bonus { .. } => 0,
                Hold::Spill { .. } => SPA_MAXBLOCKSIZE,
            });
        }
        // Dnode block, seven meta-dnode levels, objset, MOS and DSL record.
        total.saturating_add(INDIRECT_BYTES * 12)
    }
}

impl Pool {
    /// `dmu_tx_create`.
    pub fn tx_create(&self, dataset: DatasetId) -> Tx {
        Tx {
            dataset,
            holds: Vec::new(),
            txg: None,
        }
    }

    /// `dmu_tx_assign(TXG_WAIT)`: the open txg, or why the change cannot
    /// happen. Space already promised to dirty data counts against it.
    pub fn tx_assign(&mut self, tx: &mut Tx) -> Result<u64> {
        self.check_usable()?;
        if !self.dsl.datasets.contains_key(&tx.dataset) {
            // unreached: only a receive makes a tx, on the dataset its session long-holds (a
            // destroy of it is EBUSY); check_held ends the session first if the pool was imported
            // again
            return fail(
                Errno::ENOENT,
                format!("dataset {} does not exist", tx.dataset),
            );
        }
        let need = tx.worst_case_bytes();
        // Keep 1/32 of the pool in reserve, as ZFS's slop space does, so
        // that frees and syncs can always proceed.
        let reserve = self.zio.ms.capacity() / 32;
        let fits = |pool: &Pool| {
            let free = pool.zio.ms.available().saturating_sub(pool.dirty_bytes);
            need.saturating_add(reserve) <= free
        };
        // Space promised to the open txg's dirty data is an estimate, of
        // the worst case: `dsl_dir_tempreserve_space` answers ERESTART
        // while some is in flight, and `dmu_tx_assign(TXG_WAIT)` waits for
        // that txg to sync and tries again. Only a pool full with nothing
        // in flight is ENOSPC (many small transactions, a receive of many
        // objects, promise more than the pool has long before they write it).
        if !fits(self) && self.dirty_bytes > 0 {
            self.txg_sync()?;
        }
        let free = self.zio.ms.available().saturating_sub(self.dirty_bytes);
        // BUGGIFY: the simulator refuses a transaction for space now and
        // then, so that every caller's ENOSPC path runs.
        if !fits(self) || buggify!(TxAssign) {
            return fail(
                Errno::ENOSPC,
                format!("transaction may need {need} bytes; {free} free with {reserve} reserved"),
            );
        }
        self.dirty_bytes += need;
        tx.txg = Some(self.open_txg());
        Ok(self.open_txg())
    }

    /// `dmu_tx_commit`. When the open txg holds a lot of dirty data it is
    /// synced here (the dirty-data throttle), so memory stays bounded.
    pub fn tx_commit(&mut self, tx: Tx) -> Result<()> {
        debug_assert!(tx.txg.is_some(), "commit of an unassigned transaction");
        if self.dirty_bytes > DIRTY_SYNC_BYTES {
            self.txg_sync()?;
        }
        Ok(())
    }

    /// `dmu_tx_abort`: nothing was changed.
    pub fn tx_abort(&mut self, tx: Tx) {
        drop(tx);
    }
}

/// Dirty data (by the estimate) that makes a commit sync the txg.
pub const DIRTY_SYNC_BYTES: u64 = 64 << 20;
