//! The engine's BUGGIFY probes (`engine::buggify`), driven by the world's
//! dice: the `enospc` fault kind.
//!
//! Fault model. A pool runs out of space: `metaslab_alloc` finds no free
//! extent while a txg syncs (the sync fails, the pool is suspended and is
//! imported again, as after a failed write), or `dmu_tx_assign` refuses a
//! transaction for space before it changes anything (a receive fails with
//! ENOSPC and must leave its target exactly as it was). A 48 MiB disk
//! never fills under the workloads, so without the probes neither path
//! would ever run. Each allocation and each assignment is an opportunity,
//! at `EngineOptions::enospc_probability`; every probe that fires is in the
//! trace, and the oracle accepts ENOSPC only from a step during which one
//! fired (`FaultKind::errnos`).

use engine::buggify::{Guard, Probe, install};

use super::faults::FaultKind;
use super::injector::Injector;
use super::options::EngineOptions;

/// Installs the probes on this thread for a run, or nothing when they are
/// off (then no die is ever rolled for them).
pub fn install_probes(injector: &Injector, options: &EngineOptions) -> Option<Guard> {
    let rate = options.enospc_probability;
    if rate <= 0.0 {
        return None;
    }
    let injector = injector.clone();
    Some(install(move |probe| {
        if !injector.roll(FaultKind::Enospc, rate) {
            return false;
        }
        let what = match probe {
            Probe::MetaslabAlloc => "the allocator finds no free extent (txg sync)",
            Probe::TxAssign => "a transaction is refused for space (dmu_tx_assign)",
        };
        injector.fired(FaultKind::Enospc, format!("engine: {what} [{probe}]"));
        true
    }))
}
