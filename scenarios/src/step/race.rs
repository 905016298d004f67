//! Races: a send with one other operation carried out while it is in
//! flight, where the real send/receive bugs lived. The other operation (the
//! actor) goes once the receiver has handled `at_record` records; if the
//! transfer ended before that, it goes after, as an ordinary step.
//!
//! ```text
//! race send src/fs1@s4 from=src/fs1@s2 to=dst/r3 || at record 2: write dst/r3 obj=1 off=0 len=512 fill=9
//! ```
//!
//! What ZFS gives each operation depends on which of them is in flight when
//! the actor acts ([`Interleaving`]); the runner knows that order and the
//! oracle judges by it.

use std::fmt;
use std::str::FromStr;

use super::Step;

/// A send and the operation that races it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Race {
    /// A `Step::Send` (not `-I`: its holds move from snapshot to snapshot).
    pub send: Box<Step>,
    /// The actor goes once the receiver has handled this many records
    /// (at least 1: the BEGIN record).
    pub at_record: u64,
    pub actor: Box<Step>,
}

/// Which race a [`Race`] is, by what its actor touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interleaving {
    /// A workload step on the source pool while the transfer runs: it
    /// changes nothing the send reads (a snapshot does not change).
    SourceStep,
    /// `zfs destroy` of the snapshot being sent: EBUSY while the sender
    /// holds it (`dsl_dataset_long_hold`).
    DestroySentSnapshot,
    /// A change to the filesystem an incremental receive goes into: the
    /// receive ends in ETXTBSY (`dsl_dataset_clone_swap_check_impl`), or
    /// with `-F` discards the change.
    TargetChange,
    /// The same receive again into the same filesystem: EBUSY, its
    /// `%recv` clone exists.
    SecondReceive,
    /// `zfs destroy` of the new filesystem a full receive is creating:
    /// EBUSY, the receive owns it (`dsl_destroy_head_check_impl`).
    DestroyReceivingFs,
    /// `zfs rollback` of the filesystem an incremental receive goes into:
    /// allowed (the receive owns only its clone), and the receive still
    /// ends as it would have.
    RollbackTarget,
    /// `zfs snapshot` of the filesystem an incremental receive goes into:
    /// taken, and the receive ends in EINVAL, `-F` or not: its clone no
    /// longer branches from the target's latest snapshot
    /// (`dsl_dataset_clone_swap_check_impl`).
    SnapshotTarget,
    /// `zfs snapshot` of the filesystem a full receive is creating: EBUSY
    /// while it is INCONSISTENT (else the receive's cleanup could not
    /// destroy it).
    SnapshotReceivingFs,
    /// A power loss on the receiving pool, which is imported again: the
    /// receive is over (EIO), and import destroys what it had made.
    CrashReceiver,
    /// A power loss on the sending pool, which is imported again: the send
    /// is over (EIO), and the receiver gets a stream cut short.
    CrashSender,
}

impl Interleaving {
    /// Every kind, in report order.
    pub const ALL: [Interleaving; 10] = [
        Interleaving::SourceStep,
        Interleaving::DestroySentSnapshot,
        Interleaving::TargetChange,
        Interleaving::SecondReceive,
        Interleaving::DestroyReceivingFs,
        Interleaving::RollbackTarget,
        Interleaving::SnapshotTarget,
        Interleaving::SnapshotReceivingFs,
        Interleaving::CrashReceiver,
        Interleaving::CrashSender,
    ];

    /// Its name in reports and in a scenario's `[race]` weights.
    pub fn name(self) -> &'static str {
        match self {
            Interleaving::SourceStep => "source-step-during-send",
            Interleaving::DestroySentSnapshot => "destroy-sent-snapshot",
            Interleaving::TargetChange => "target-change-during-recv",
            Interleaving::SecondReceive => "second-receive",
            Interleaving::DestroyReceivingFs => "destroy-receiving-fs",
            Interleaving::RollbackTarget => "rollback-target-during-recv",
            Interleaving::SnapshotTarget => "snapshot-target-during-recv",
            Interleaving::SnapshotReceivingFs => "snapshot-receiving-fs",
            Interleaving::CrashReceiver => "power-loss-on-receiver",
            Interleaving::CrashSender => "power-loss-on-sender",
        }
    }

    /// Whether the actor races the receiver (else the sender).
    pub fn on_receiver(self) -> bool {
        !matches!(
            self,
            Interleaving::SourceStep
                | Interleaving::DestroySentSnapshot
                | Interleaving::CrashSender
        )
    }
}

impl Race {
    /// Which race this is, or why it is none this harness can judge.
    pub fn interleaving(&self) -> Result<Interleaving, String> {
        let Step::Send {
            snap,
            from,
            target,
            intermediate,
            replicate,
            ..
        } = &*self.send
        else {
            return Err(format!("{}: a race is a send's", self.send));
        };
        if *intermediate {
            return Err("a race's send is not -I".into());
        }
        let src = self.send.pool();
        let dst = target.split('/').next().unwrap_or(target);
        let actor = &*self.actor;
        let on_target = |fs: &str| fs == target;
        let on_target_fs = |name: &str| name.split_once('@').is_some_and(|(fs, _)| on_target(fs));
        let kind = match actor {
            // A `-R` receive keeps the substreams it finished, which a
            // power loss between them leaves: not judged here.
            Step::Crash { pool } if src != dst && !replicate && pool == dst => {
                Interleaving::CrashReceiver
            }
            Step::Crash { pool } if src != dst && !replicate && pool == src => {
                Interleaving::CrashSender
            }
            Step::Snapshot {
                snap: name,
                recursive: false,
            } if on_target_fs(name) => match from {
                Some(_) => Interleaving::SnapshotTarget,
                None => Interleaving::SnapshotReceivingFs,
            },
            Step::Destroy { name } if name == snap => Interleaving::DestroySentSnapshot,
            Step::Destroy { name } if on_target(name) && from.is_none() => {
                Interleaving::DestroyReceivingFs
            }
            Step::Send { target: t, .. } if on_target(t) && from.is_some() => {
                Interleaving::SecondReceive
            }
            Step::Rollback { fs } if on_target(fs) && from.is_some() => {
                Interleaving::RollbackTarget
            }
            Step::Write { fs, .. }
            | Step::Punch { fs, .. }
            | Step::Truncate { fs, .. }
            | Step::Bonus { fs, .. }
            | Step::Alloc { fs, .. }
                if on_target(fs) && from.is_some() =>
            {
                Interleaving::TargetChange
            }
            Step::Send { .. }
            | Step::Misuse(_)
            | Step::Race(_)
            | Step::Crash { .. }
            | Step::Scrub { .. }
            | Step::Wait { .. }
            | Step::Destroy { .. }
            | Step::Rollback { .. } => {
                return Err(format!("{actor}: not an actor this harness can judge"));
            }
            _ if actor.pool() == src => Interleaving::SourceStep,
            _ => return Err(format!("{actor}: not an actor this harness can judge")),
        };
        Ok(kind)
    }
}

impl fmt::Display for Race {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} || at record {}: {}",
            self.send, self.at_record, self.actor
        )
    }
}

impl FromStr for Race {
    type Err = String;

    /// `<send> || at record <k>: <actor>`, after the `race` verb.
    fn from_str(text: &str) -> Result<Race, String> {
        let bad = || format!("{text:?}: expected `<send> || at record <k>: <step>`");
        let (send, rest) = text.split_once(" || ").ok_or_else(bad)?;
        let rest = rest.trim().strip_prefix("at record ").ok_or_else(bad)?;
        let (k, actor) = rest.split_once(':').ok_or_else(bad)?;
        let at_record: u64 = k.trim().parse().map_err(|_| bad())?;
        if at_record == 0 {
            return Err(format!("{text:?}: records count from 1 (the BEGIN record)"));
        }
        let race = Race {
            send: Box::new(send.trim().parse()?),
            at_record,
            actor: Box::new(actor.trim().parse()?),
        };
        race.interleaving()?;
        Ok(race)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &str) -> Result<Interleaving, String> {
        line.parse::<Race>().and_then(|r| r.interleaving())
    }

    #[test]
    fn each_race_is_told_by_what_its_actor_touches() {
        let inc = "send src/a@s2 from=src/a@s1 to=dst/a";
        let full = "send src/a@s2 to=dst/b";
        for (line, want) in [
            (
                format!("{inc} || at record 1: destroy src/a@s2"),
                Interleaving::DestroySentSnapshot,
            ),
            (
                format!("{inc} || at record 2: write src/a obj=1 off=0 len=10 fill=3"),
                Interleaving::SourceStep,
            ),
            (
                format!("{inc} || at record 3: write dst/a obj=1 off=0 len=10 fill=3"),
                Interleaving::TargetChange,
            ),
            (
                format!("{inc} || at record 1: {inc}"),
                Interleaving::SecondReceive,
            ),
            (
                format!("{full} || at record 2: destroy dst/b"),
                Interleaving::DestroyReceivingFs,
            ),
            (
                format!("{inc} || at record 2: rollback dst/a"),
                Interleaving::RollbackTarget,
            ),
            (
                format!("{inc} || at record 2: snapshot dst/a@x"),
                Interleaving::SnapshotTarget,
            ),
            (
                format!("{full} || at record 2: snapshot dst/b@x"),
                Interleaving::SnapshotReceivingFs,
            ),
            (
                format!("{inc} || at record 3: crash dst"),
                Interleaving::CrashReceiver,
            ),
            (
                format!("{full} || at record 1: crash src"),
                Interleaving::CrashSender,
            ),
        ] {
            assert_eq!(kind(&line), Ok(want), "{line}");
            let race: Race = line.parse().unwrap();
            assert_eq!(race.to_string(), line, "prints back");
        }
    }

    #[test]
    fn races_the_harness_cannot_judge_are_refused_when_read() {
        let inc = "send src/a@s2 from=src/a@s1 to=dst/a";
        for line in [
            format!("{inc} || at record 0: destroy src/a@s2"),
            "send src/a@s2 to=dst/b replicate || at record 1: crash dst".to_string(),
            "send src/a@s2 to=src/b || at record 1: crash src".to_string(),
            format!("{inc} || at record 1: write dst/other obj=1 off=0 len=1 fill=1"),
            format!("{inc} intermediate || at record 1: destroy src/a@s2"),
            "destroy src/a@s2 || at record 1: destroy src/a@s2".to_string(),
            format!("{inc} at record 1: destroy src/a@s2"),
        ] {
            assert!(kind(&line).is_err(), "{line} was accepted");
        }
    }
}
