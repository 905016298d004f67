//! A misuse step, judged: the pool must refuse it with exactly the errno
//! the model says ZFS refuses it with, and be left exactly as it was
//! (datasets, contents, space). A misuse that succeeds, or fails with
//! another errno, is a violation, unless a fault fired during it and
//! explains the errno (then the pool is imported again, as after any
//! failed step; an import drops a misuse's hold, see `World::recover`).
//! A receive misuse is a send step whose receive the model
//! refuses (`send.rs` judges it).

use scenarios::step::{Misuse, Step};

use super::hosts::{World, violation};
use super::step::explained_by_faults;
use super::{Outcome, Violation};
use crate::world::faults::FaultKind;

/// A misuse that stays on one pool.
pub(super) fn misuse_step(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
    misuse: &Misuse,
) -> Result<(Outcome, String), Violation> {
    let h = w.host(step.pool());
    let Some(expected) = misuse.refusal_in(&w.hosts[h].model) else {
        unreachable!("a misuse ZFS would not refuse is skipped");
    };
    // A hold and its release each sync a txg, which would turn what the
    // open txg holds into space: start from a synced pool, as a send does.
    let holds = matches!(
        misuse,
        Misuse::DestroyHeld { .. } | Misuse::HoldTwice { .. }
    );
    if holds && w.sync(h, "before a hold").is_err() {
        w.hosts[h].disk.crash_now(FaultKind::Crash);
        w.recover(h, at, "a failed sync")?;
        if misuse.refusal_in(&w.hosts[h].model).is_none() {
            return Ok((
                Outcome::Skipped,
                "no longer refused after the import".into(),
            ));
        }
    }
    let counts = w.injector.counts();
    w.draw_step_faults(&[h]);
    let space = w.space(h);
    let result = misuse.attempt(&mut w.hosts[h].pool.borrow_mut());
    let refused =
        |found: String| violation(at, format!("`{step}` to be refused with {expected}"), found);
    match result {
        Err(e) if e.errno() == expected => {
            // Refused as it must be, then a power loss struck (a hold's
            // sync): nothing of the pool's to judge until it is back.
            if w.hosts[h].is_down() {
                w.heal(at)?;
                return Ok((
                    Outcome::Faulted,
                    format!("refused: {e} (then a power loss)"),
                ));
            }
            if let Err(m) = w.holds(h, &w.hosts[h].model) {
                return Err(violation(
                    at,
                    format!("the refused `{step}` ({e}) to leave the pool as it was"),
                    m.to_string(),
                ));
            }
            if let Some(diff) = w.space_changed(h, &space, &[]) {
                return Err(violation(
                    at,
                    format!("the refused `{step}` ({e}) to leave every dataset's space as it was"),
                    format!("{diff:?}"),
                ));
            }
            if w.heal(at)? {
                return Ok((
                    Outcome::Faulted,
                    format!("refused: {e} (then a power loss)"),
                ));
            }
            Ok((Outcome::Done, format!("refused: {e}")))
        }
        Err(e) if w.faulted_since(h, &counts) => {
            let what = format!("`{step}` to be refused with {expected}");
            explained_by_faults(w, at, &counts, &what, &e)?;
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            w.recover(h, at, "a failed operation")?;
            Ok((Outcome::Faulted, e.to_string()))
        }
        Err(e) => Err(refused(e.to_string())),
        Ok(detail) => Err(refused(format!("it was done ({detail})"))),
    }
}
