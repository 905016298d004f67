//! The `scrub` step: `zpool scrub` on one pool while faults fire, judged
//! copy by copy. A copy may read bad only where a fault put it out of
//! reach (damage at rest, a failed write on a mirror, a pulled disk) or
//! while read errors fire; a block may have no good copy only where every
//! copy was out of reach, which is a loss beyond the redundancy; and when
//! nothing disturbed the scrub, a second one, with every fault held off,
//! must find every copy the first rewrote good.

use engine::error::Errno;
use engine::scrub::ScrubReport;

use super::hosts::{World, judge_lost, violation};
use super::{Outcome, Violation};
use crate::world::faults::FaultKind;

pub(super) fn scrub_step(
    w: &mut World,
    at: Option<usize>,
    pool: &str,
) -> Result<(Outcome, String), Violation> {
    let h = w.host(pool);
    let counts = w.injector.counts();
    w.draw_step_faults(&[h]);
    let report = engine::scrub::scrub(&mut w.hosts[h].pool.borrow_mut());
    let detail = summary(&report);
    if w.heal(at)? {
        return Ok((Outcome::Faulted, format!("{detail} (then a power loss)")));
    }
    let fired = w.injector.counts().fired_since(&counts);
    let read_errors = fired.contains(&FaultKind::EioRead);
    let host = &w.hosts[h];
    let name = &host.name;
    // Blocks with no good copy: lost, if every copy was out of reach.
    let mut lost = Vec::new();
    for (bp, e) in &report.unrepairable {
        match e.errno() {
            Errno::EIO if read_errors => {}
            Errno::ECKSUM | Errno::EIO | Errno::ENXIO => lost.push(*bp),
            _ => {
                return Err(violation(
                    at,
                    format!("a scrub of {name} to read or find bad every block"),
                    format!(
                        "the block at {:#x} (birth txg {}): {e}",
                        bp.dva[0].offset(),
                        bp.birth
                    ),
                ));
            }
        }
    }
    if !lost.is_empty() {
        let mut v = violation(
            at,
            format!("a scrub of {name} to find a good copy of every block"),
            detail.clone(),
        );
        v.lost = true;
        return Err(judge_lost(host, &lost, v));
    }
    // A read error says nothing of where it struck; else each bad copy
    // must be one a fault put out of reach.
    if !read_errors
        && let Some(&(offset, len, child)) = report
            .bad_places
            .iter()
            .find(|&&(offset, len, child)| !host.lacks(host.disk_at(child), offset, len))
    {
        return Err(violation(
            at,
            format!("a scrub of {name} to find bad only copies a fault reached"),
            format!(
                "{detail}; the copy at {offset:#x} ({len} bytes) on {} was reached by no fault",
                host.disk_at(child).name()
            ),
        ));
    }
    let disturbed = read_errors
        || fired.contains(&FaultKind::EioWrite)
        || fired.contains(&FaultKind::Misdirect);
    if report.bad_copies > 0 && !disturbed {
        let again = w
            .injector
            .observe(|| engine::scrub::scrub(&mut host.pool.borrow_mut()));
        let pulled = host.pulled.map(|(i, _)| i);
        if let Some(&(offset, _, child)) = again
            .bad_places
            .iter()
            .find(|&&(_, _, child)| Some(child) != pulled)
        {
            return Err(violation(
                at,
                format!("every copy a scrub of {name} rewrote to read back good"),
                format!(
                    "{detail}; a second scrub: {}; the copy at {offset:#x} on {} is still bad",
                    summary(&again),
                    host.disk_at(child).name()
                ),
            ));
        }
    }
    Ok((Outcome::Done, detail))
}

/// The scrub's counts, on one line.
fn summary(report: &ScrubReport) -> String {
    report.to_string().lines().collect::<Vec<_>>().join("; ")
}
