//! One step of the workload, run and judged: waits, crash steps, and steps
//! that change one pool (their meaning is `scenarios::step`'s; this is
//! what the world does around them). Sends are `send.rs`'s, races
//! `race.rs`'s.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use scenarios::step::Step;

use super::hosts::{World, violation};
use super::misuse::misuse_step;
use super::race::race_step;
use super::scrub::scrub_step;
use super::send::send_step;
use super::{Outcome, Violation};
use crate::world::faults::{FaultCounts, FaultKind};
use engine::error::Error;

/// One step, judged.
pub(super) async fn run_step(
    world: &Rc<RefCell<World>>,
    index: usize,
    step: &Step,
) -> Result<(Outcome, String), Violation> {
    let at = Some(index);
    // Blocks an earlier step found lost are that step's to judge.
    engine::zio::take_lost_blocks();
    {
        let mut w = world.borrow_mut();
        w.heal(at)?;
        let h = w.host(step.pool());
        if let Some(why) = step.skip_reason(&w.hosts[h].model) {
            return Ok((Outcome::Skipped, why));
        }
    }
    match step {
        Step::Wait { ms } => {
            madsim::time::sleep(Duration::from_millis(*ms)).await;
            Ok((Outcome::Done, String::new()))
        }
        Step::Crash { pool } => {
            let mut w = world.borrow_mut();
            let h = w.host(pool);
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            w.recover(h, at, "a power loss (crash step)")?;
            Ok((Outcome::Done, String::new()))
        }
        Step::Scrub { pool } => scrub_step(&mut world.borrow_mut(), at, pool),
        Step::Send { .. } => send_step(world, index, step).await,
        Step::Race(race) => race_step(world, index, race).await,
        Step::Misuse(misuse) => match misuse.receive() {
            Some(send) => send_step(world, index, send).await,
            None => misuse_step(&mut world.borrow_mut(), at, step, misuse),
        },
        _ => local_step(&mut world.borrow_mut(), at, step),
    }
}

/// A step that changes one pool, on the engine and then on the model, with
/// the faults its disk draws. A step that fails without a fault is a
/// violation; one a fault failed may have become durable or not, and the
/// pool is imported again.
fn local_step(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
) -> Result<(Outcome, String), Violation> {
    let h = w.host(step.pool());
    // Counted before the draw: a power loss drawn to strike at once is
    // this step's fault.
    let counts = w.injector.counts();
    w.draw_step_faults(&[h]);
    match apply_judged(w, at, step, &counts, &format!("`{step}` to succeed"))? {
        Applied::Done(detail) => {
            if w.heal(at)? {
                return Ok((Outcome::Faulted, format!("{detail} (then a power loss)")));
            }
            Ok((Outcome::Done, detail))
        }
        Applied::Faulted(e) => {
            w.recover(h, at, "a failed operation")?;
            Ok((Outcome::Faulted, e))
        }
    }
}

/// How a step that changes a pool went.
pub(super) enum Applied {
    Done(String),
    /// A fault failed it; its pool is down until imported again.
    Faulted(String),
}

/// Applies `step` to its pool and to the model: it must succeed (the state
/// it leaves may be what a crash finds), or fail with an errno the faults
/// fired since `counts` explain, after which the pool is taken down (its
/// memory may hold half an operation; a sync may have made it durable);
/// else a violation that expected `what`.
pub(super) fn apply_judged(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
    counts: &FaultCounts,
    what: &str,
) -> Result<Applied, Violation> {
    let h = w.host(step.pool());
    let result = {
        let host = &mut w.hosts[h];
        step.apply(&mut host.pool.borrow_mut(), &mut host.model)
    };
    match result {
        Ok(detail) => {
            let model = w.hosts[h].model.clone();
            w.hosts[h].candidates.push(model);
            Ok(Applied::Done(detail))
        }
        Err(e) if w.faulted_since(h, counts) => {
            explained_by_faults(w, at, counts, what, &e)?;
            if let Some(post) = step.post_model(&w.hosts[h].model) {
                w.hosts[h].candidates.push(post);
            }
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            Ok(Applied::Faulted(e.to_string()))
        }
        Err(e) => Err(violation(at, what, e.to_string())),
    }
}

/// A failure after a fault fired: its errno must be one the faults fired
/// since `counts` (or damage, or a pool gone down) explain; else a
/// violation that expected `what`, or that.
pub(super) fn explained_by_faults(
    w: &World,
    at: Option<usize>,
    counts: &FaultCounts,
    what: &str,
    e: &Error,
) -> Result<(), Violation> {
    let explained = w.explained(counts);
    if explained.contains(&e.errno()) {
        return Ok(());
    }
    Err(violation(
        at,
        format!("{what}, or a failure with an errno its faults explain ({explained:?})"),
        e.to_string(),
    ))
}
