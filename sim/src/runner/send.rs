//! A send step: `zfs send | zfs receive` from `src` to `dst` through the
//! simulated pipe, and its judgement. The receive must match its source
//! snapshot, or fail with a cause and leave the target exactly as it was;
//! without a fault, the model says which of the two it must be.

use std::cell::RefCell;
use std::rc::Rc;

use engine::error::{Errno, Error};
use engine::spa::Pool;
use scenarios::model::{Expect, PoolModel};
use scenarios::oracle::{Mismatch, compare_pool};
use scenarios::step::Step;

use super::hosts::{World, violation};
use super::{Outcome, Violation};
use crate::world::faults::FaultCounts;
use crate::world::transfer::{TransferOutcome, TransferSpec, transfer};
use engine::stream::ByteOrder;

/// What a send step knows before its transfer starts.
struct Before {
    src: Rc<RefCell<Pool>>,
    dst: Rc<RefCell<Pool>>,
    /// The source snapshot, as the model holds it.
    source: scenarios::model::Dataset,
    /// Whether the source changed since `from` (an incremental carries
    /// changes).
    changed: bool,
    expect: Expect,
    /// The target pool's model and space before the receive.
    model: PoolModel,
    space: Vec<String>,
    counts: FaultCounts,
}

/// A send through the pipe into a receive, judged by the oracle.
pub(super) async fn send_step(
    world: &Rc<RefCell<World>>,
    index: usize,
    step: &Step,
) -> Result<(Outcome, String), Violation> {
    let at = Some(index);
    let Step::Send {
        snap,
        from,
        target,
        dedup,
        force,
        origin,
    } = step
    else {
        unreachable!("a send step");
    };
    let before = match prepare(&mut world.borrow_mut(), at, step)? {
        Ok(before) => before,
        Err(skipped) => return Ok(skipped),
    };
    let spec = TransferSpec {
        tosnap: snap.clone(),
        fromsnap: from.clone(),
        dedup: *dedup,
        target: target.clone(),
        force: *force,
        origin: origin.clone(),
    };
    let (options, injector) = {
        let w = world.borrow();
        (w.options.clone(), w.injector.clone())
    };
    let outcome = transfer(&before.src, &before.dst, &spec, &options, &injector).await;
    judge(&mut world.borrow_mut(), at, step, &before, &outcome)
}

/// Syncs both pools (a receive starts from synced pools, as `zfs recv`
/// does), draws the step's disk faults and asks the model what the receive
/// must do. `Ok(Err(..))` when the step no longer applies.
fn prepare(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
) -> Result<Result<Before, (Outcome, String)>, Violation> {
    let Step::Send {
        snap,
        from,
        target,
        force,
        origin,
        ..
    } = step
    else {
        unreachable!("a send step");
    };
    for h in 0..2 {
        if w.sync(h, "before a send").is_err() {
            w.hosts[h]
                .disk
                .crash_now(crate::world::faults::FaultKind::Crash);
            w.recover(h, at, "a failed sync")?;
        }
    }
    // A recovery just now may have taken the snapshots back.
    let h = w.host(step.pool());
    if let Some(why) = step.skip_reason(&w.hosts[h].model) {
        return Ok(Err((
            Outcome::Skipped,
            format!("{why} (after the pool was imported again)"),
        )));
    }
    // Counted before the draw: a power loss drawn to strike at once is
    // this step's fault.
    let counts = w.injector.counts();
    w.draw_step_faults(&[0, 1]);
    let src = &w.hosts[0].model;
    let source = src.get(snap).expect("checked").clone();
    let from_guid = from.as_ref().map(|f| src.get(f).expect("checked").guid);
    let changed = src.changed_since(from.as_deref(), snap);
    let dst = &w.hosts[1].model;
    let expect = dst.expect_receive(
        &source,
        from_guid,
        target,
        snap_name(snap),
        *force,
        origin.as_deref(),
    );
    Ok(Ok(Before {
        src: w.hosts[0].pool.clone(),
        dst: w.hosts[1].pool.clone(),
        source,
        changed,
        expect,
        model: dst.clone(),
        space: w.space(1),
        counts,
    }))
}

fn snap_name(snap: &str) -> &str {
    snap.split('@').nth(1).unwrap_or_default()
}

/// The verdict on a transfer: the hosts recovered if they went down, then
/// the receive matched, or was refused and changed nothing.
fn judge(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
    before: &Before,
    outcome: &TransferOutcome,
) -> Result<(Outcome, String), Violation> {
    let Step::Send {
        snap,
        target,
        origin,
        ..
    } = step
    else {
        unreachable!("a send step");
    };
    let src_model = w.hosts[0].model.clone();
    w.hosts[0].candidates.push(src_model);
    let faulted = w.injector.counts().failing() > before.counts.failing()
        || w.hosts.iter().any(|h| h.disk.is_damaged() || h.is_down());
    let mut after = before.model.clone();
    after.receive(
        &before.source,
        before.changed,
        target,
        snap_name(snap),
        origin.as_deref(),
    );
    let received = matches!(outcome.recv, Some(Ok(_)));
    // The received state may be durable: a receive that returned, whatever
    // failed after it (the txg-sync task runs alongside the transfer), or
    // one a power loss cut short after its last sync.
    if received || matches!(before.expect, Expect::Match | Expect::Either(_)) {
        w.hosts[1].candidates.push(after.clone());
    }
    let bytes = outcome.bytes_sent;
    let order = format!("{:?}", outcome.byte_order);
    w.reach.max_stream_bytes = w.reach.max_stream_bytes.max(bytes);
    w.reach.streams_over_1mib += u64::from(bytes > 1 << 20);
    if outcome.byte_order != ByteOrder::NATIVE && bytes > 0 {
        let types = before.source.objects.values().map(|o| o.shape.dn_type);
        w.reach.foreign_types.extend(types);
        w.reach.foreign_types.sort_unstable();
        w.reach.foreign_types.dedup();
    }
    // The sender's pool lost power or failed a sync: it is imported
    // again; that changes nothing for the receiver.
    if w.hosts[0].is_down() {
        w.recover(0, at, "a power loss or failed sync while sending")?;
    }
    // The receiver's did: it must come back before or after the receive.
    if w.hosts[1].is_down() {
        w.recover(1, at, "a power loss or failed sync while receiving")?;
        let how = if w.hosts[1].model == after {
            "received, then a power loss"
        } else {
            "not received: power loss or failed sync"
        };
        return Ok((Outcome::Faulted, format!("{how} ({bytes} bytes, {order})")));
    }
    let verdict = Verdict {
        before,
        faulted,
        sender_failed: outcome.send.is_err(),
        bytes,
        order,
    };
    match &outcome.recv {
        Some(Ok(_)) => verdict.matched(w, at, step, after),
        Some(Err(e)) => verdict.refused(w, at, e, &before.expect),
        None => {
            let e = match &outcome.send {
                Err(e) => e.clone(),
                Ok(_) => Error::new(Errno::EINVAL, "nothing was received"),
            };
            if !faulted {
                return Err(violation(at, format!("`{step}` to send"), e.to_string()));
            }
            verdict.refused(w, at, &e, &Expect::Either(Vec::new()))
        }
    }
}

/// How a transfer went, for judging its receive.
struct Verdict<'a> {
    before: &'a Before,
    /// A fault that can fail an operation fired, or a disk is damaged or
    /// down.
    faulted: bool,
    /// The sender stopped early: the receiver got a stream cut short.
    sender_failed: bool,
    bytes: u64,
    order: String,
}

impl Verdict<'_> {
    /// A receive that returned: the target holds the source snapshot, and
    /// without a fault the model must have expected it.
    fn matched(
        &self,
        w: &mut World,
        at: Option<usize>,
        step: &Step,
        after: PoolModel,
    ) -> Result<(Outcome, String), Violation> {
        let Step::Send { snap, target, .. } = step else {
            unreachable!("a send step");
        };
        let injector = w.injector.clone();
        let dst = &mut w.hosts[1];
        let damaged = dst.disk.is_damaged();
        // `after` holds the source snapshot (objects, guid, creation) as
        // `target@snap`: one comparison judges it and the rest.
        let judged = {
            let mut pool = dst.pool.borrow_mut();
            injector.suspended(|| compare_pool(&mut pool, &after))
        };
        match judged {
            Ok(()) => {}
            Err(Mismatch::Unreadable(_)) if damaged || self.faulted => {}
            Err(m) => {
                return Err(violation(
                    at,
                    format!("{target}@{} to match {snap}", snap_name(snap)),
                    m.to_string(),
                ));
            }
        }
        // No fault makes a receive the model refuses acceptable.
        if let Expect::Refuse(errnos) = &self.before.expect {
            return Err(violation(
                at,
                format!("the receive to be refused with {errnos:?}"),
                "it was received",
            ));
        }
        dst.model = after;
        w.heal(at)?;
        Ok((
            Outcome::Match,
            format!("{} bytes, {}", self.bytes, self.order),
        ))
    }

    /// A receive that failed: the target must be exactly as before, and
    /// without a fault the failure must be one the model expected.
    fn refused(
        &self,
        w: &mut World,
        at: Option<usize>,
        e: &Error,
        expect: &Expect,
    ) -> Result<(Outcome, String), Violation> {
        let injector = w.injector.clone();
        let damaged = w.hosts[1].disk.is_damaged();
        let judged = {
            let mut pool = w.hosts[1].pool.borrow_mut();
            injector.suspended(|| compare_pool(&mut pool, &self.before.model))
        };
        match judged {
            Ok(()) => {}
            Err(Mismatch::Unreadable(_)) if damaged => {}
            Err(m) => {
                return Err(violation(
                    at,
                    format!("the refused receive ({e}) to leave the target as it was"),
                    m.to_string(),
                ));
            }
        }
        let space = w.space(1);
        if space != self.before.space {
            let diff: Vec<&String> = space
                .iter()
                .filter(|l| !self.before.space.contains(l))
                .collect();
            return Err(violation(
                at,
                format!("the refused receive ({e}) to leave every dataset's space as it was"),
                format!("{diff:?}"),
            ));
        }
        if self.faulted {
            let mut explained = w.explained(&self.before.counts);
            if let Expect::Refuse(errnos) | Expect::Either(errnos) = expect {
                explained.extend(errnos);
            }
            // A sender that dies (`zfs send` killed, or failing on its
            // pool) leaves the receiver a stream cut short.
            if self.sender_failed {
                explained.push(Errno::EINVAL);
            }
            if !explained.contains(&e.errno()) {
                return Err(violation(
                    at,
                    format!("a refusal its faults or the model explain ({explained:?})"),
                    e.to_string(),
                ));
            }
        } else {
            match expect {
                Expect::Match => {
                    return Err(violation(
                        at,
                        "the receive to succeed and match",
                        e.to_string(),
                    ));
                }
                Expect::Refuse(errnos) if !errnos.contains(&e.errno()) => {
                    return Err(violation(
                        at,
                        format!("a refusal with {errnos:?}"),
                        e.to_string(),
                    ));
                }
                _ => {}
            }
        }
        Ok((Outcome::Destroyed, format!("{e} ({} bytes)", self.bytes)))
    }
}
