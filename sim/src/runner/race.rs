//! A race step: a send, and one operation (the actor) carried out while the
//! transfer is in flight, from a task of its own that wakes as the receiver
//! handles records. What ZFS gives each depends on what is in flight when
//! the actor acts, which the runner sees (`Progress`) and the oracle
//! judges by:
//!
//! * a workload step on the source, or a rollback of the receive's target:
//!   done as ever, and the receive ends as it would have;
//! * `zfs destroy` of the snapshot being sent, of the filesystem a full
//!   receive is creating, or a second receive into the same filesystem:
//!   EBUSY, and nothing changes;
//! * a change to the filesystem an incremental receive goes into: the
//!   receive ends in ETXTBSY and leaves the change, or with `-F` is
//!   received and discards it;
//! * a snapshot of it: taken, and the receive ends in EINVAL, `-F` or not;
//!   of the filesystem a full receive is creating: EBUSY;
//! * a power loss on either pool, imported again at once: the side on it
//!   ends in EIO; a receiver cut off leaves nothing, one whose sender died
//!   is refused for the stream cut short.
//!
//! If the transfer got past where the actor should go before it could,
//! the actor goes after it, as an ordinary step.

use std::cell::RefCell;
use std::rc::Rc;

use engine::error::{Errno, Error};
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use scenarios::model::Expect;
use scenarios::step::{Interleaving, Race, Step};

use super::hosts::{World, violation};
use super::send::{Before, judge, prepare, run_transfer, transfer_spec};
use super::step::{Applied, apply_judged, explained_by_faults, run_step};
use super::{Outcome, Violation};
use crate::world::faults::FaultKind;
use crate::world::transfer::Progress;

/// What the actor did while the transfer was in flight.
struct Acted {
    result: Result<(Outcome, String), Violation>,
    /// The records the receiver had handled when it acted.
    at_record: u64,
}

/// A send raced by its actor, judged.
pub(super) async fn race_step(
    world: &Rc<RefCell<World>>,
    index: usize,
    race: &Race,
) -> Result<(Outcome, String), Violation> {
    let at = Some(index);
    let kind = race
        .interleaving()
        .map_err(|why| violation(at, "a race this harness can judge", why))?;
    let send = &*race.send;
    let mut before = match prepare(&mut world.borrow_mut(), at, send)? {
        Ok(before) => before,
        Err(skipped) => return Ok(skipped),
    };
    let spec = transfer_spec(send, &before);
    // A second receive reads a stream made now, as a second `zfs send`
    // started beside the first would.
    let second = match kind {
        Interleaving::SecondReceive => Some(second_stream(&world.borrow(), &before, send)),
        _ => None,
    };
    let progress = Rc::new(Progress::default());
    let actor = madsim::task::spawn_local(act(
        world.clone(),
        index,
        race.clone(),
        kind,
        progress.clone(),
        second,
    ));
    let outcome = run_transfer(world, &before, &spec, &progress, false).await;
    let acted = actor.await.unwrap_or(None);
    // The actor went first: what it got wrong is the first violation.
    if let Some(Acted { result: Err(v), .. }) = &acted {
        return Err(v.clone());
    }
    let verdict = {
        let mut w = world.borrow_mut();
        if let Some(acted) = &acted {
            w.reach.interleaved(kind.name());
            if let Ok((Outcome::Done, _)) = acted.result {
                sees_change(&mut w, kind, send, &mut before);
            }
        }
        judge(&mut w, at, send, &before, &outcome)
    };
    let (mut outcome, detail) = verdict?;
    let actor = &*race.actor;
    let (how, (actor_outcome, actor_detail)) = match acted {
        Some(acted) => (
            format!("at record {} of the transfer", acted.at_record),
            acted.result?,
        ),
        None => (
            "after the transfer".to_string(),
            // Boxed: a step that runs a step (never a race again).
            Box::pin(run_step(world, index, actor)).await?,
        ),
    };
    if actor_outcome == Outcome::Faulted {
        outcome = Outcome::Faulted;
    }
    let mut detail = format!("{detail}; {how}: {actor}: {}", actor_outcome.name());
    if !actor_detail.is_empty() {
        detail = format!("{detail}: {actor_detail}");
    }
    Ok((outcome, detail))
}

/// The actor's task: waits until the receiver has handled the race's
/// record (or stopped), then acts if what it races is still in flight.
async fn act(
    world: Rc<RefCell<World>>,
    index: usize,
    race: Race,
    kind: Interleaving,
    progress: Rc<Progress>,
    second: Option<Result<Vec<u8>, Error>>,
) -> Option<Acted> {
    progress
        .until(|p| p.records.get() >= race.at_record || p.recv_done.get())
        .await;
    let Step::Send { snap, .. } = &*race.send else {
        unreachable!("a race is a send's");
    };
    let racing = match kind {
        Interleaving::SourceStep => progress.in_flight(),
        Interleaving::DestroySentSnapshot => {
            progress.held.borrow().as_deref() == Some(snap.as_str())
        }
        Interleaving::CrashSender => !progress.send_done.get(),
        _ => progress.receiving(),
    };
    if !racing {
        return None;
    }
    let at = Some(index);
    let mut w = world.borrow_mut();
    let actor = &*race.actor;
    let result = match kind {
        Interleaving::SourceStep
        | Interleaving::TargetChange
        | Interleaving::RollbackTarget
        | Interleaving::SnapshotTarget => change(&mut w, at, actor),
        Interleaving::DestroySentSnapshot | Interleaving::DestroyReceivingFs => {
            let Step::Destroy { name } = actor else {
                unreachable!("a destroy");
            };
            let h = w.host(name);
            refused_busy(&mut w, at, actor, h, |pool| pool.destroy(name))
        }
        Interleaving::SnapshotReceivingFs => {
            let Step::Snapshot { snap, .. } = actor else {
                unreachable!("a snapshot");
            };
            refused_busy(&mut w, at, actor, 1, |pool| pool.snapshot(snap).map(drop))
        }
        Interleaving::CrashReceiver | Interleaving::CrashSender => {
            let Step::Crash { pool } = actor else {
                unreachable!("a power loss");
            };
            let h = w.host(pool);
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            w.recover(h, at, "a power loss during a transfer")
                .map(|()| (Outcome::Done, String::new()))
        }
        Interleaving::SecondReceive => {
            let Step::Send {
                target,
                force,
                origin,
                ..
            } = actor
            else {
                unreachable!("a send");
            };
            let options = RecvOptions {
                force: *force,
                origin: origin.clone(),
                props: Vec::new(),
            };
            let stream = match second {
                Some(Ok(stream)) => stream,
                Some(Err(e)) => {
                    return Some(Acted {
                        result: Ok((Outcome::Skipped, format!("no stream to receive: {e}"))),
                        at_record: progress.records.get(),
                    });
                }
                None => unreachable!("made for a second receive"),
            };
            refused_busy(&mut w, at, actor, 1, |pool| {
                pool.receive(target, &stream[..], &options, &mut NoInterrupt)
                    .map(drop)
            })
        }
    };
    Some(Acted {
        result,
        at_record: progress.records.get(),
    })
}

/// A step that changes a pool, done while the transfer runs: it must
/// succeed as it would alone. A fault that fails it takes its pool down
/// (the send's verdict imports it again, once the transfer is over).
fn change(w: &mut World, at: Option<usize>, step: &Step) -> Result<(Outcome, String), Violation> {
    let h = w.host(step.pool());
    if let Some(why) = step.skip_reason(&w.hosts[h].model) {
        return Ok((Outcome::Skipped, why));
    }
    let counts = w.injector.counts();
    let what = format!("`{step}` to succeed while the transfer runs");
    Ok(match apply_judged(w, at, step, &counts, &what)? {
        Applied::Done(detail) => (Outcome::Done, detail),
        Applied::Faulted(e) => (Outcome::Faulted, e),
    })
}

/// An operation the transfer in flight must make ZFS refuse with EBUSY
/// (a long hold, an owner, a `%recv` clone), changing nothing.
fn refused_busy(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
    h: usize,
    attempt: impl FnOnce(&mut engine::spa::Pool) -> Result<(), Error>,
) -> Result<(Outcome, String), Violation> {
    let counts = w.injector.counts();
    let result = attempt(&mut w.hosts[h].pool.borrow_mut());
    let expected = format!("`{step}` to be refused with EBUSY while the transfer holds it");
    match result {
        Err(e) if e.errno() == Errno::EBUSY => Ok((Outcome::Done, format!("refused: {e}"))),
        Err(e) if w.faulted_since(h, &counts) => {
            explained_by_faults(w, at, &counts, &expected, &e)?;
            w.hosts[h].disk.crash_now(FaultKind::Crash);
            Ok((Outcome::Faulted, e.to_string()))
        }
        Err(e) => Err(violation(at, expected, e.to_string())),
        Ok(()) => Err(violation(at, expected, "it was done")),
    }
}

/// What the receive must do now that the actor changed its target while
/// it ran: the target as the actor left it is what a refusal must leave
/// (its space as a sync now shows it, the receive's `%recv` clone aside),
/// and a change to it ends a receive without `-F` in ETXTBSY
/// (`dsl_dataset_clone_swap_check_impl`).
fn sees_change(w: &mut World, kind: Interleaving, send: &Step, before: &mut Before) {
    let Step::Send { force, .. } = send else {
        unreachable!("a send");
    };
    match kind {
        Interleaving::TargetChange
        | Interleaving::RollbackTarget
        | Interleaving::SnapshotTarget => {}
        // The pool imported again holds what it held before the receive.
        Interleaving::CrashReceiver => {
            before.model = w.hosts[1].model.clone();
            before.expect = Expect::Refuse(vec![Errno::EIO]);
            return;
        }
        _ => return,
    }
    before.model = w.hosts[1].model.clone();
    if !w.hosts[1].is_down() && w.sync(1, "after a change during a receive").is_ok() {
        before.space = w.space(1);
        before.space.retain(|line| !line.contains('%'));
    }
    match kind {
        Interleaving::TargetChange if !force => {
            before.expect = Expect::Refuse(vec![Errno::ETXTBSY]);
        }
        Interleaving::SnapshotTarget => before.expect = Expect::Refuse(vec![Errno::EINVAL]),
        _ => {}
    }
}

/// The stream of `send`, made on the source as it is now, faults aside
/// (damage at rest may still fail it).
fn second_stream(w: &World, before: &Before, send: &Step) -> Result<Vec<u8>, Error> {
    let Step::Send { snap, from, .. } = send else {
        unreachable!("a send");
    };
    let mut out = Vec::new();
    let made = w.injector.observe(|| {
        before.src.borrow_mut().send(
            snap,
            from.as_deref(),
            &mut out,
            &SendOptions::default(),
            None,
            &mut NoInterrupt,
        )
    });
    made.map(|_| out)
}
