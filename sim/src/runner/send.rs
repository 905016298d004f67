//! A send step: `zfs send | zfs receive` from `src` to `dst` through the
//! simulated pipe, and its judgement. The receive must match its source
//! snapshot, or fail with a cause and leave the target exactly as it was;
//! without a fault, the model says which of the two it must be.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use engine::error::{Errno, Error};
use engine::spa::Pool;
use scenarios::model::{Expect, PoolModel};
use scenarios::oracle::{Mismatch, compare_pool_with};
use scenarios::step::Step;

use super::hosts::{World, judged_loss, violation};
use super::{Outcome, Violation};
use crate::world::faults::{FaultCounts, FaultKind};
use crate::world::hostile::Applied;
use crate::world::malformed::{Edit, Reach, Struck};
use crate::world::transfer::{
    Progress, Side, TransferOutcome, TransferSpec, draw_faults, transfer_watched,
};
use engine::stream::{ByteOrder, DRR_RECORD_SIZE};

/// Every errno `dmu_recv_begin`'s checks (and libzfs's before them) can
/// refuse a BEGIN record with.
const BEGIN_CHECK_ERRNOS: [Errno; 7] = [
    Errno::EINVAL,
    Errno::ENOTSUP,
    Errno::ENOENT,
    Errno::EEXIST,
    Errno::ENODEV,
    Errno::ETXTBSY,
    Errno::EBUSY,
];

/// What a send step knows before its transfer starts.
pub(super) struct Before {
    pub(super) src: Rc<RefCell<Pool>>,
    pub(super) dst: Rc<RefCell<Pool>>,
    /// The snapshots before `snap` that a `-I` send also sends.
    pub(super) intermediate: Vec<String>,
    /// More than one substream (`-I`, `-R`): damage anywhere may strike
    /// a later substream's BEGIN.
    pub(super) compound: bool,
    /// `-R`: a closing END follows the last substream, so a receive that
    /// fails there keeps every substream (as libzfs does).
    pub(super) replicate: bool,
    /// The object types of what is sent, bonus types included (a bonus is
    /// swapped by its own type).
    pub(super) types: Vec<u8>,
    pub(super) expect: Expect,
    /// The target pool's model and space before the receive.
    pub(super) model: PoolModel,
    /// The target pool's model after each substream (one, but for `-I`):
    /// a receive refused in substream k keeps the k before it.
    pub(super) states: Vec<PoolModel>,
    /// How many of `states` the model lets the receive reach.
    pub(super) receivable: usize,
    /// `-R`: the target pool's model with substream k's received
    /// properties set and its data not yet received, for each k updating
    /// a filesystem that exists: a power loss in substream k may leave
    /// that (the values are set before the data, as ZFS sets them).
    pub(super) props_states: Vec<(usize, PoolModel)>,
    pub(super) space: Vec<String>,
    pub(super) counts: FaultCounts,
}

/// A send through the pipe into a receive, judged by the oracle.
pub(super) async fn send_step(
    world: &Rc<RefCell<World>>,
    index: usize,
    step: &Step,
) -> Result<(Outcome, String), Violation> {
    let at = Some(index);
    let before = match prepare(&mut world.borrow_mut(), at, step)? {
        Ok(before) => before,
        Err(skipped) => return Ok(skipped),
    };
    let spec = transfer_spec(step, &before);
    let outcome = run_transfer(world, &before, &spec, &Rc::default(), true).await;
    judge(&mut world.borrow_mut(), at, step, &before, &outcome)
}

/// The transfer itself, with its faults drawn, known to the world as the
/// one in flight while it runs. `malformed_ok`: no other task acts on the
/// target meanwhile, so what a malformed stream made can be destroyed
/// after it (see `malformed.rs`).
pub(super) async fn run_transfer(
    world: &Rc<RefCell<World>>,
    before: &Before,
    spec: &TransferSpec,
    progress: &Rc<Progress>,
    malformed_ok: bool,
) -> TransferOutcome {
    let (options, injector) = {
        let mut w = world.borrow_mut();
        w.in_flight = Some(progress.clone());
        (w.options.clone(), w.injector.clone())
    };
    let mut faults = draw_faults(&before.src, spec, &options, &injector);
    if !malformed_ok {
        faults.malformed = None;
    }
    let outcome = transfer_watched(
        &before.src,
        &before.dst,
        spec,
        &options.pipe,
        &injector,
        faults,
        progress,
    )
    .await;
    let mut w = world.borrow_mut();
    w.in_flight = None;
    // What came during the receive, beyond the races a step asks for.
    if let Some(signal) = outcome.signal.filter(|s| s.delivered && s.while_waiting) {
        w.reach.interleaved(match signal.side {
            Side::Sender => "signal-while-sender-waits",
            Side::Receiver => "signal-while-receiver-waits",
        });
    }
    if matches!(&outcome.send, Err(e) if e.errno() == Errno::EPIPE) {
        w.reach.interleaved("sender-epipe");
    }
    if w.hosts[1].is_down() && outcome.records_received > 0 && !matches!(outcome.recv, Some(Ok(_)))
    {
        w.reach.interleaved("power-loss-during-recv");
    }
    outcome
}

/// What the transfer of a send step sends, and where.
pub(super) fn transfer_spec(step: &Step, before: &Before) -> TransferSpec {
    let Step::Send {
        snap,
        from,
        target,
        dedup,
        force,
        origin,
        replicate,
        ..
    } = step
    else {
        unreachable!("a send step");
    };
    TransferSpec {
        tosnap: snap.clone(),
        fromsnap: from.clone(),
        dedup: *dedup,
        target: target.clone(),
        force: *force,
        origin: origin.clone(),
        intermediate: before.intermediate.clone(),
        replicate: *replicate,
    }
}

/// Syncs both pools (a receive starts from synced pools, as `zfs recv`
/// does), draws the step's disk faults and asks the model what the receive
/// must do. `Ok(Err(..))` when the step no longer applies.
pub(super) fn prepare(
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
        intermediate,
        replicate,
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
    let between = match (intermediate, from, replicate) {
        (true, Some(from), false) => between(src, from, snap),
        _ => Vec::new(),
    };
    let subs = if *replicate {
        replicated(src, snap, from.as_deref(), target)
    } else {
        let mut prev = from.clone();
        let mut subs = Vec::new();
        for (k, name) in between.iter().chain([snap]).enumerate() {
            subs.push(Substream {
                snap: name.clone(),
                from: prev.replace(name.clone()),
                target: target.clone(),
                origin: if k == 0 { origin.clone() } else { None },
                origin_guid: None,
                props: None,
            });
        }
        subs
    };
    let dst = &w.hosts[1].model;
    // Each substream is judged against the target as the ones before it
    // left it: a later one can be refused (a snapshot the target already
    // holds, as after a walk-back receive) where the first is not.
    // `zfs recv` refuses a snapshot's name for a replication stream once
    // it has read the stream's header, before any substream.
    let mut expect = match *replicate && target.contains('@') {
        true => Expect::Refuse(vec![Errno::EINVAL]),
        false => Expect::Match,
    };
    let mut receivable = 0;
    let mut states = Vec::new();
    let mut state = dst.clone();
    let mut types = Vec::new();
    let mut props_states = Vec::new();
    for (k, sub) in subs.iter().enumerate() {
        let source = src.get(&sub.snap).expect("checked");
        let from_guid = sub.from.as_ref().map(|f| src.get(f).expect("checked").guid);
        // A replication stream's clone finds its origin by guid, among
        // what the receiving pool holds by then.
        let origin = match sub.origin_guid {
            Some(guid) => state.find_guid_listed(guid).map(str::to_string),
            None => sub.origin.clone(),
        };
        let name = snap_name(&sub.snap);
        if !matches!(expect, Expect::Refuse(_)) {
            let this = if sub.origin_guid.is_some() && origin.is_none() {
                Expect::Refuse(vec![Errno::ENOENT])
            } else {
                state.expect_receive(
                    source,
                    from_guid,
                    &sub.target,
                    name,
                    *force,
                    origin.as_deref(),
                )
            };
            expect = match (expect, this) {
                (Expect::Refuse(v), _) => Expect::Refuse(v),
                (Expect::Match, this) => this,
                (Expect::Either(mut v), Expect::Refuse(w) | Expect::Either(w)) => {
                    v.extend(w);
                    Expect::Either(v)
                }
                (Expect::Either(v), Expect::Match) => Expect::Either(v),
            };
            if !matches!(expect, Expect::Refuse(_)) {
                receivable += 1;
            }
        }
        // The substreams the model refuses are still sent: their states,
        // for a receive that takes them anyway (a violation), and their
        // types.
        let changed = src.changed_since(sub.from.as_deref(), &sub.snap);
        if let Some(props) = &sub.props
            && state.exists(&sub.target)
        {
            let mut set = state.clone();
            set.set_received(&sub.target, props);
            props_states.push((k, set));
        }
        state.receive(source, changed, &sub.target, name, origin.as_deref());
        if let Some(props) = &sub.props {
            state.set_received(&sub.target, props);
        }
        states.push(state.clone());
        for o in source.objects.values() {
            types.push(o.shape.dn_type);
            if o.shape.bonuslen > 0 {
                types.push(o.shape.bonustype);
            }
        }
    }
    Ok(Ok(Before {
        src: w.hosts[0].pool.clone(),
        dst: w.hosts[1].pool.clone(),
        compound: subs.len() > 1 || *replicate,
        replicate: *replicate,
        intermediate: between,
        types,
        expect,
        model: dst.clone(),
        states,
        receivable,
        props_states,
        space: w.space(1),
        counts,
    }))
}

/// One kernel stream of a transfer, as the model sees it.
struct Substream {
    /// The source snapshot sent, and the one it is sent from (of the same
    /// filesystem, or a clone's origin).
    snap: String,
    from: Option<String>,
    /// Where it is received (a filesystem).
    target: String,
    /// `-o origin=`, or for a replication stream's clone the guid its
    /// origin is looked up by.
    origin: Option<String>,
    origin_guid: Option<u64>,
    /// A replication stream's properties for its filesystem (what the
    /// header says the source filesystem has set on itself).
    props: Option<BTreeMap<String, String>>,
}

/// The substreams of `zfs send -R snap [-I from]` received at `target`,
/// in the order the engine sends them: the filesystem of `snap` and every
/// one below it, parents before children and origins before their clones;
/// each with its snapshots up to `snap`'s name (from `from`'s name on, or
/// all of them for a filesystem that lacks it).
fn replicated(src: &PoolModel, snap: &str, from: Option<&str>, target: &str) -> Vec<Substream> {
    let (top, name) = snap.split_once('@').unwrap_or_default();
    let from = from.map(snap_name);
    let tree = src.descendants(top);
    let origin_fs = |fs: &str| {
        src.get(fs)
            .and_then(|d| d.origin.as_deref())
            .and_then(|o| o.split_once('@'))
            .map(|(f, _)| f.to_string())
    };
    // Origins first: a clone waits until its origin's filesystem is in,
    // unless that one is not sent at all; a child waits for its parent.
    let mut order: Vec<&str> = Vec::new();
    let mut pending = tree.clone();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|fs| {
            let parent = fs.rsplit_once('/').map(|(p, _)| p.to_string());
            let ready = [origin_fs(fs), parent]
                .into_iter()
                .flatten()
                .all(|d| !tree.contains(&d.as_str()) || order.contains(&d.as_str()));
            if ready {
                order.push(fs);
            }
            !ready
        });
        if pending.len() == before {
            break;
        }
    }
    let mut subs = Vec::new();
    for fs in order {
        let snaps: Vec<&str> = src.snapshots_of(fs).into_iter().map(|(n, _)| n).collect();
        let Some(last) = snaps.iter().position(|s| snap_name(s) == name) else {
            continue;
        };
        let first = from
            .and_then(|f| snaps.iter().position(|s| snap_name(s) == f))
            .map_or(0, |i| i + 1);
        let mut prev = from.map(|f| format!("{fs}@{f}")).filter(|f| src.exists(f));
        let place = format!("{target}{}", &fs[top.len()..]);
        let props = src.get(fs).map(|d| d.sent_props()).unwrap_or_default();
        let fs_origin = src.get(fs).and_then(|d| d.origin.clone());
        for s in snaps.iter().take(last + 1).skip(first) {
            // The first snapshot sent of a clone goes from its origin.
            let clone_of = prev.is_none().then(|| fs_origin.clone()).flatten();
            subs.push(Substream {
                snap: s.to_string(),
                from: prev.clone().or(clone_of.clone()),
                target: place.clone(),
                origin: None,
                origin_guid: clone_of.and_then(|o| src.get(&o)).map(|d| d.guid),
                props: Some(props.clone()),
            });
            prev = Some(s.to_string());
        }
    }
    subs
}

/// The snapshots of `from`'s filesystem after `from` and before `snap`,
/// oldest first: what `zfs send -I from snap` sends before `snap`.
fn between(src: &PoolModel, from: &str, snap: &str) -> Vec<String> {
    let fs = from.split('@').next().unwrap_or_default();
    let (Some(first), Some(last)) = (src.get(from), src.get(snap)) else {
        return Vec::new();
    };
    src.snapshots_of(fs)
        .into_iter()
        .filter(|(_, d)| d.seq > first.seq && d.seq < last.seq)
        .map(|(name, _)| name.to_string())
        .collect()
}

fn snap_name(snap: &str) -> &str {
    snap.split('@').nth(1).unwrap_or_default()
}

/// The verdict on a transfer: the hosts recovered if they went down, then
/// the receive matched, or was refused and changed nothing.
pub(super) fn judge(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
    before: &Before,
    outcome: &TransferOutcome,
) -> Result<(Outcome, String), Violation> {
    let src_model = w.hosts[0].model.clone();
    w.hosts[0].candidates.push(src_model);
    let now = w.injector.counts();
    let disks = w.hosts.iter().any(|h| h.is_damaged() || h.is_down());
    let faulted = now.failing() > before.counts.failing() || disks;
    // Faults other than a hostile sender's, which alone is judged exactly.
    let others = |c: &FaultCounts| c.failing() - c.get(FaultKind::Hostile);
    let others_faulted = others(&now) > others(&before.counts) || disks;
    // A malformed stream's receive leaves the rewritten object: the states
    // it may reach are the model's with the same edit.
    let states: Vec<PoolModel> = match &outcome.malformed {
        Some(struck) => {
            let src = &w.hosts[0].model;
            before
                .states
                .iter()
                .map(|s| malformed_state(s, src, step, struck))
                .collect()
        }
        None => before.states.clone(),
    };
    let after = states.last().expect("one substream at least").clone();
    let received = matches!(outcome.recv, Some(Ok(_)));
    // The received state may be durable: a receive that returned, whatever
    // failed after it (the txg-sync task runs alongside the transfer), or
    // one a power loss cut short after its last sync (for `-I`, after any
    // of its substreams).
    let reached = if received {
        before.states.len()
    } else {
        before.receivable
    };
    w.hosts[1]
        .candidates
        .extend(states[..reached].iter().cloned());
    w.hosts[1].candidates.extend(
        before
            .props_states
            .iter()
            .filter(|(k, _)| *k <= reached)
            .map(|(_, s)| s.clone()),
    );
    let bytes = outcome.bytes_sent;
    let order = format!("{:?}", outcome.byte_order);
    w.reach.max_stream_bytes = w.reach.max_stream_bytes.max(bytes);
    w.reach.streams_over_1mib += u64::from(bytes > 1 << 20);
    if outcome.byte_order != ByteOrder::NATIVE && bytes > 0 {
        w.reach.foreign_types.extend(&before.types);
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
            if let Some(struck) = &outcome.malformed {
                destroy_malformed(w, at, step, before, struck)?;
            }
            "received, then a power loss"
        } else {
            "not received: power loss or failed sync"
        };
        return Ok((Outcome::Faulted, format!("{how} ({bytes} bytes, {order})")));
    }
    let verdict = Verdict {
        before,
        faulted,
        others_faulted,
        hostile: outcome.hostile.as_ref(),
        malformed: outcome.malformed.as_ref(),
        // For `-I`, damage anywhere may reach a later substream's BEGIN.
        begin_damaged: outcome
            .damage
            .as_ref()
            .is_some_and(|d| d.at() < DRR_RECORD_SIZE as u64 || before.compound),
        sender_failed: outcome.sender_failed(),
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
    /// The same, leaving out a hostile sender.
    others_faulted: bool,
    /// The record a hostile sender rewrote: the receive must refuse it.
    hostile: Option<&'a Applied>,
    /// The object a malformed sender rewrote: the receive must take it,
    /// and a walk refuse it.
    malformed: Option<&'a Struck>,
    /// The pipe damaged a BEGIN record (the first, or for `-I` maybe a
    /// later one), which the receive-begin checks act on before any
    /// checksum can vouch for it.
    begin_damaged: bool,
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
        // The receiver read every record, the rewritten one too.
        if let Some(hostile) = self.hostile {
            return Err(violation(
                at,
                format!("the hostile stream to be refused ({hostile})"),
                "it was received",
            ));
        }
        let injector = w.injector.clone();
        let dst = &mut w.hosts[1];
        let damaged = dst.is_damaged();
        // `after` holds the source snapshot (objects, guid, creation) as
        // `target@snap`: one comparison judges it and the rest.
        let judged = {
            let mut pool = dst.pool.borrow_mut();
            let mut verified = dst.verified.borrow_mut();
            injector.observe(|| compare_pool_with(&mut pool, &after, &mut verified))
        };
        match judged {
            Ok(()) => {}
            Err(Mismatch::Unreadable(_)) if damaged || self.faulted => {}
            Err(m) => {
                // `-I` from a sender that died between substreams: the
                // receiver saw whole substreams, then the end of its input.
                let kept = if self.sender_failed {
                    self.kept_substreams(w)
                } else {
                    None
                };
                let Some(k) = kept else {
                    return Err(violation(
                        at,
                        format!("{target}@{} to match {snap}", snap_name(snap)),
                        m.to_string(),
                    ));
                };
                w.heal(at)?;
                let detail = format!(
                    "received {} of {} substreams before the sender failed ({} bytes, {})",
                    k + 1,
                    self.before.states.len(),
                    self.bytes,
                    self.order
                );
                return Ok((Outcome::Faulted, detail));
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
        if let Some(struck) = self.malformed {
            let judged = if after
                .get(&format!("{target}@{}", snap_name(snap)))
                .is_some_and(|d| d.malformed.is_some())
            {
                "a walk refused it"
            } else {
                "outside the namespace a walk reads"
            };
            dst.model = after;
            destroy_malformed(w, at, step, self.before, struck)?;
            return Ok((
                Outcome::Destroyed,
                format!(
                    "received {struck} ({judged}), then destroyed ({} bytes, {})",
                    self.bytes, self.order
                ),
            ));
        }
        dst.model = after;
        w.heal(at)?;
        Ok((
            Outcome::Match,
            format!("{} bytes, {}", self.bytes, self.order),
        ))
    }

    /// For `-I`: which of the states after the first substreams (all but
    /// the last) the target holds, if any; the model becomes that state.
    /// For `-R`, the last too: a receive can fail at the closing END.
    /// On a damaged disk, a state whose every readable part matches will
    /// do, as it does for the state before.
    fn kept_substreams(&self, w: &mut World) -> Option<usize> {
        let n = self.before.states.len() - usize::from(!self.before.replicate);
        let partial = &self.before.states[..n];
        let k = partial.iter().position(|s| w.holds(1, s).is_ok())?;
        w.hosts[1].model = partial[k].clone();
        Some(k)
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
        if let Some(hostile) = self.hostile
            && !self.others_faulted
        {
            hostile_refusal(at, hostile, e, expect)?;
        }
        let mut kept = None;
        if let Err(m) = w.holds(1, &self.before.model) {
            // `-I`, `-R`: the substreams before the refused one stay
            // received.
            kept = self.kept_substreams(w);
            if kept.is_none() {
                return Err(violation(
                    at,
                    format!("the refused receive ({e}) to leave the target as it was"),
                    m.to_string(),
                ));
            }
        }
        if let Some(diff) = w.space_changed(1, &self.before.space, &[])
            && kept.is_none()
        {
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
            // A damaged BEGIN record is another stream to those checks: a
            // flipped fromguid or flag can make it a full stream onto an
            // existing filesystem (EEXIST), an incremental from a snapshot
            // the target lacks (ENODEV), and so on.
            if self.begin_damaged {
                explained.extend(BEGIN_CHECK_ERRNOS);
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
        let kept = kept.map_or(String::new(), |k| {
            format!(
                ", kept {} of {} substreams",
                k + 1,
                self.before.states.len()
            )
        });
        Ok((
            Outcome::Destroyed,
            format!("{e} ({} bytes{kept})", self.bytes),
        ))
    }
}

/// A receive refused with only a hostile sender's fault: refused at the
/// rewritten record with its errno by its check ([`Applied::judge`]), or
/// before it for a reason the model gives.
fn hostile_refusal(
    at: Option<usize>,
    hostile: &Applied,
    e: &Error,
    expect: &Expect,
) -> Result<(), Violation> {
    if e.reason().contains(&hostile.names()) {
        return hostile.judge(e).map_err(|why| {
            violation(
                at,
                format!("the refusal of {hostile}"),
                format!("{e}: {why}"),
            )
        });
    }
    match expect {
        Expect::Refuse(errnos) | Expect::Either(errnos) if errnos.contains(&e.errno()) => Ok(()),
        _ => Err(violation(
            at,
            format!("the refusal of {hostile}"),
            e.to_string(),
        )),
    }
}

/// The target's model after receiving a malformed stream into `state`: the
/// received snapshot and its filesystem hold the rewritten object, and a
/// walk of them must be refused where it must meet it (the master node of
/// any ZPL filesystem; another object the sent snapshot's namespace holds,
/// or an attribute directory or file of it, each by its own check).
fn malformed_state(state: &PoolModel, src: &PoolModel, step: &Step, struck: &Struck) -> PoolModel {
    let Step::Send { snap, target, .. } = step else {
        unreachable!("a send step");
    };
    let o = struck.object;
    let refusal = src.get(snap).and_then(|d| d.zpl.as_ref()).and_then(|tree| {
        let attribute = tree
            .nodes
            .values()
            .any(|n| n.xattr_dir == Some(o) || n.xattrs.values().any(|(file, _)| *file == o));
        match struck.reach {
            Reach::Master => Some(struck.refusal.clone()),
            Reach::Namespace if tree.nodes.contains_key(&o) => Some(struck.refusal.clone()),
            _ if attribute => struck.attribute.clone(),
            _ => None,
        }
    });
    let mut out = state.clone();
    let names = [target.clone(), format!("{target}@{}", snap_name(snap))];
    out.malform(
        &names,
        struck.object,
        |o| match &struck.edit {
            Edit::Block { blkid, data, .. } => {
                o.blocks.insert(*blkid, Rc::from(data.as_slice()));
            }
            Edit::Object {
                dn_type,
                bonustype,
                bonus,
                ..
            } => {
                o.shape.dn_type = *dn_type;
                o.shape.bonustype = *bonustype;
                o.bonus.clone_from(bonus);
                o.shape.bonuslen = bonus.len();
            }
        },
        refusal,
    );
    out
}

/// Destroys what a malformed stream's receive made, as an operator
/// destroys a backup found corrupt: the received snapshot, then the new
/// filesystem or (for an incremental) the changes after the snapshot
/// before. The target must then be exactly as before the receive.
fn destroy_malformed(
    w: &mut World,
    at: Option<usize>,
    step: &Step,
    before: &Before,
    struck: &Struck,
) -> Result<(), Violation> {
    let Step::Send { snap, target, .. } = step else {
        unreachable!("a send step");
    };
    let snapshot = format!("{target}@{}", snap_name(snap));
    let new_fs = !before.model.exists(target);
    let injector = w.injector.clone();
    let damaged = w.hosts[1].is_damaged();
    let undone = {
        let mut pool = w.hosts[1].pool.borrow_mut();
        injector.suspended(|| {
            pool.destroy(&snapshot).and_then(|()| {
                if new_fs {
                    pool.destroy(target)
                } else {
                    pool.rollback(target)
                }
            })
        })
    };
    if let Err(e) = undone {
        let mut v = violation(
            at,
            format!("the receive of {struck} to be destroyed"),
            e.to_string(),
        );
        // Damage at rest under what the destroy reads: detected, and the
        // malformed target stays, which the model cannot follow.
        v.lost = damaged && matches!(e.errno(), Errno::EIO | Errno::ECKSUM);
        let guid = w.hosts[1].pool.borrow().guid;
        return Err(judged_loss(&w.hosts[1], guid, v));
    }
    if let Err(m) = w.holds(1, &before.model) {
        return Err(violation(
            at,
            format!("destroying the receive of {struck} to leave the target as it was"),
            m.to_string(),
        ));
    }
    // A receive onto a head changed since its snapshot in ways that read
    // the same (the model's either-way case) replaced that head, and the
    // rollback gives it its snapshot's space, not its own from before: the
    // head and its snapshot (whose unique space counts against the head)
    // are held to their contents above; every other dataset to its space.
    let replaced: Vec<String> = match before.model.get(target) {
        Some(head) if !new_fs && head.modified => std::iter::once(target.clone())
            .chain(
                before
                    .model
                    .latest_snapshot(target)
                    .map(|(n, _)| n.to_string()),
            )
            .collect(),
        _ => Vec::new(),
    };
    if let Some(diff) = w.space_changed(1, &before.space, &replaced) {
        return Err(violation(
            at,
            format!("destroying the receive of {struck} to leave every dataset's space as it was"),
            format!("{diff:?}"),
        ));
    }
    // The destroy was synced: the state before is the only durable one.
    w.hosts[1].model = before.model.clone();
    w.hosts[1].all_durable();
    w.heal(at).map(|_| ())
}
