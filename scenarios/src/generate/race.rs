//! `race` steps: a send, and an actor drawn from the races the seed turned
//! on (swarm testing: each seed leaves about half of them out, so a race
//! that hides behind another still gets seeds of its own).

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Generator, random_range, weighted};
use crate::model::PoolModel;
use crate::step::{Interleaving, Race, Step};

impl Generator {
    /// A send raced by one actor, or `None` if no race fits now.
    pub(super) fn race(&mut self, src: &PoolModel, dst: &PoolModel) -> Option<Step> {
        let kinds = self.race_kinds().to_vec();
        let kind = weighted(&mut self.rng, &kinds)?;
        let send = match kind {
            Interleaving::DestroyReceivingFs | Interleaving::SnapshotReceivingFs => {
                self.send_full(src, dst, false)?
            }
            Interleaving::SourceStep
            | Interleaving::DestroySentSnapshot
            | Interleaving::CrashReceiver
            | Interleaving::CrashSender => match self.rng.gen_range(0..3) {
                0 => self.send_full(src, dst, false)?,
                _ => {
                    let force = self.rng.gen_bool(0.3);
                    self.send_incremental(src, dst, false, force)?
                }
            },
            _ => {
                let force = self.rng.gen_bool(0.3);
                self.send_incremental(src, dst, false, force)?
            }
        };
        let Step::Send { snap, target, .. } = &send else {
            return None;
        };
        let actor = match kind {
            Interleaving::SourceStep => {
                // A change to the source pool that keeps every snapshot.
                let kind = *["write", "write", "snapshot", "alloc", "punch", "bonus"]
                    .choose(&mut self.rng)?;
                let step = self.build(kind, src, dst)?;
                if step.pool() != super::SRC {
                    return None;
                }
                step
            }
            Interleaving::DestroySentSnapshot => Step::Destroy { name: snap.clone() },
            Interleaving::TargetChange => {
                let objects: Vec<_> = dst
                    .get(target)?
                    .objects
                    .iter()
                    .filter(|(o, _)| !dst.zpl_owns(target, **o) || dst.zpl_file(target, **o))
                    .map(|(o, obj)| (*o, obj.shape.blksz))
                    .collect();
                let (object, blksz) = *objects.choose(&mut self.rng)?;
                let (offset, len) = random_range(&mut self.rng, blksz, &self.spec.depth);
                Step::Write {
                    fs: target.clone(),
                    object,
                    offset,
                    len,
                    fill: self.rng.r#gen(),
                }
            }
            Interleaving::SecondReceive => send.clone(),
            Interleaving::DestroyReceivingFs => {
                if dst.exists(target) {
                    return None;
                }
                Step::Destroy {
                    name: target.clone(),
                }
            }
            Interleaving::RollbackTarget => Step::Rollback { fs: target.clone() },
            Interleaving::SnapshotTarget | Interleaving::SnapshotReceivingFs => {
                if (kind == Interleaving::SnapshotReceivingFs) == dst.exists(target) {
                    return None;
                }
                let n = self.name();
                Step::Snapshot {
                    snap: format!("{target}@s{n}"),
                    recursive: false,
                }
            }
            Interleaving::CrashReceiver => Step::Crash {
                pool: super::DST.to_string(),
            },
            Interleaving::CrashSender => Step::Crash {
                pool: super::SRC.to_string(),
            },
        };
        // Mostly early in the stream, where every stream has records.
        let mut at_record = 1;
        while at_record < 16 && self.rng.gen_bool(0.5) {
            at_record += 1;
        }
        let race = Race {
            send: Box::new(send),
            at_record,
            actor: Box::new(actor),
        };
        debug_assert_eq!(race.interleaving(), Ok(kind), "{race}");
        Some(Step::Race(race))
    }

    /// The races this seed draws from, with their weights: the scenario's
    /// `[race]` weights (every race alike if it has none), about half of
    /// them turned off on the first race drawn.
    fn race_kinds(&mut self) -> &[(Interleaving, u32)] {
        if self.race_kinds.is_empty() {
            let weight = |i: Interleaving| match self.spec.race.is_empty() {
                true => 1,
                false => self.spec.race.get(i.name()).copied().unwrap_or(0),
            };
            let all: Vec<(Interleaving, u32)> = Interleaving::ALL
                .iter()
                .map(|&i| (i, weight(i)))
                .filter(|(_, w)| *w > 0)
                .collect();
            let mut on: Vec<(Interleaving, u32)> = all
                .iter()
                .copied()
                .filter(|_| self.rng.gen_bool(0.5))
                .collect();
            if on.is_empty() {
                on.push(
                    *all.choose(&mut self.rng)
                        .unwrap_or(&(Interleaving::SourceStep, 1)),
                );
            }
            self.race_kinds = on;
        }
        &self.race_kinds
    }
}
