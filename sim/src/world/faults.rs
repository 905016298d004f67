//! Fault plans, swarm style.
//!
//! A plan says which fault kinds are on and how often each fires, as a
//! probability per opportunity (a step, an I/O, a transfer; see
//! [`FaultKind::opportunity`]). Swarm testing draws a different plan for
//! each seed, so some runs are nearly clean and others brutal, and faults
//! that mask each other are not always on together.
//!
//! A plan prints as `kind:rate,kind:rate,...` (or `none`) and parses back,
//! so the plan a run used can be replayed exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use engine::error::Errno;
use rand::Rng;

use super::streams::Streams;

/// Every way the simulated world can misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Power loss: writes not yet flushed are lost, kept, or kept in part.
    Crash,
    /// Power loss in the middle of a multi-sector write, torn at a sector.
    Torn,
    EioRead,
    EioWrite,
    /// Bits flipped at rest, found by the block checksums.
    Corrupt,
    /// A write that lands on the wrong sectors.
    Misdirect,
    /// A signal to the sender or the receiver at a chosen byte (EINTR).
    Signal,
    /// The sender writes the other byte order.
    Endian,
    /// Short reads and writes and stalls on the pipe.
    ShortIo,
    /// Bits flipped, bytes dropped or duplicated, or the stream cut, in
    /// transit.
    PipeDamage,
    /// A sender that rewrites one record into one the receiver must refuse,
    /// with a valid stream checksum (see `hostile.rs`).
    Hostile,
    /// The pool runs out of space: a BUGGIFY probe in the engine's
    /// allocator or transaction assignment fires (`probes.rs`).
    Enospc,
    /// A sender whose stream is well formed but carries a malformed
    /// directory, master node or znode, which the receive accepts and a
    /// reader must refuse (see `malformed.rs`).
    Malformed,
    /// One device of a mirror pool pulled for some steps (every request
    /// to it fails), then put back and resilvered.
    DiskLoss,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Crash,
        FaultKind::Torn,
        FaultKind::EioRead,
        FaultKind::EioWrite,
        FaultKind::Corrupt,
        FaultKind::Misdirect,
        FaultKind::Signal,
        FaultKind::Endian,
        FaultKind::ShortIo,
        FaultKind::PipeDamage,
        FaultKind::Hostile,
        FaultKind::Enospc,
        FaultKind::Malformed,
        FaultKind::DiskLoss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Torn => "torn",
            FaultKind::EioRead => "eio-read",
            FaultKind::EioWrite => "eio-write",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Misdirect => "misdirect",
            FaultKind::Signal => "signal",
            FaultKind::Endian => "endian",
            FaultKind::ShortIo => "short-io",
            FaultKind::PipeDamage => "pipe-damage",
            FaultKind::Hostile => "hostile",
            FaultKind::Enospc => "enospc",
            FaultKind::Malformed => "malformed",
            FaultKind::DiskLoss => "disk-loss",
        }
    }

    /// Whether a fault of this kind can make an operation fail: a byte-order
    /// flip, short I/O and a mirror's pulled disk must not. Short I/O reaches the receiver's record
    /// reader now (a record arrives in pieces, the receiver waits), but it
    /// never changes a byte, so it changes when things happen (which the
    /// oracle follows), never what a receive must end as: it explains no
    /// errno, and a run it fails is a real bug.
    pub fn can_fail(self) -> bool {
        !matches!(
            self,
            FaultKind::Endian | FaultKind::ShortIo | FaultKind::Malformed | FaultKind::DiskLoss
        )
    }

    /// The errnos a fault of this kind can make an operation fail with: a
    /// failed operation must carry one its fired faults (or the model)
    /// explain.
    pub fn errnos(self) -> &'static [Errno] {
        match self {
            // The disk refuses everything once the power is off, and the
            // pool suspends: EIO.
            FaultKind::Crash | FaultKind::Torn | FaultKind::EioRead | FaultKind::EioWrite => {
                &[Errno::EIO]
            }
            // A mirror's other device serves it: nothing may fail for it
            // alone.
            FaultKind::DiskLoss => &[],
            // A block read back wrong fails its checksum; a label or
            // uberblock may fail to read at all.
            FaultKind::Corrupt | FaultKind::Misdirect => &[Errno::ECKSUM, Errno::EIO],
            FaultKind::Signal => &[Errno::EINTR],
            // A malformed stream is received; the walk of what it made is
            // refused, and the oracle holds that to its malformation.
            FaultKind::Endian | FaultKind::ShortIo | FaultKind::Malformed => &[],
            // A damaged stream is refused by the record checks (EINVAL) or
            // the END checksum (ECKSUM); a bit flipped in the BEGIN record's
            // feature flags, before any checksum can vouch for them, by the
            // feature check (ENOTSUP), as the seed's receive refuses it.
            FaultKind::PipeDamage => &[Errno::EINVAL, Errno::ECKSUM, Errno::ENOTSUP],
            // Each mutation names its own errno (`Mutation::errno`), and
            // the oracle holds a receive to exactly that one.
            FaultKind::Hostile => &[Errno::EINVAL, Errno::ENOTSUP, Errno::ENOENT, Errno::ECKSUM],
            FaultKind::Enospc => &[Errno::ENOSPC],
        }
    }

    /// What the rate is a probability of.
    pub fn opportunity(self) -> &'static str {
        match self {
            FaultKind::Crash | FaultKind::Torn => "per step, a power loss during it",
            FaultKind::EioRead => "per disk read",
            FaultKind::EioWrite => "per disk write",
            FaultKind::Corrupt => "per step, one sector flipped at rest",
            FaultKind::Misdirect => "per disk write",
            FaultKind::Signal => "per transfer, a signal to one side",
            FaultKind::Endian => "per send",
            FaultKind::ShortIo => "per pipe read or write",
            FaultKind::PipeDamage => "per transfer, one kind of damage",
            FaultKind::Hostile => "per transfer, one record rewritten by the sender",
            FaultKind::Enospc => "per allocation or transaction assignment in the engine",
            FaultKind::Malformed => {
                "per transfer, one directory, master node or znode rewritten by the sender"
            }
            FaultKind::DiskLoss => "per step, one device of a mirror pool pulled for 1 to 6 steps",
        }
    }

    /// The range swarm testing draws a rate from (log-uniformly), and the
    /// rate a kind named without one gets when it is not drawn.
    fn swarm_range(self) -> (f64, f64) {
        match self {
            FaultKind::Crash | FaultKind::Torn => (0.005, 0.15),
            FaultKind::EioRead | FaultKind::EioWrite => (0.0002, 0.01),
            // Damage at rest can cost a single-disk pool its metadata (no
            // ditto blocks here), which ends the run: keep it rarer.
            FaultKind::Misdirect => (0.00002, 0.001),
            FaultKind::Corrupt => (0.001, 0.02),
            FaultKind::Signal | FaultKind::PipeDamage => (0.02, 0.4),
            // A mutation strikes only streams with a record of its kind:
            // drawn more often, so the rarer ones (SPILL, WRITE_BYREF) fire.
            FaultKind::Hostile => (0.05, 0.6),
            // Only ZPL streams of one substream have what it rewrites.
            FaultKind::Malformed => (0.05, 0.6),
            FaultKind::Endian => (0.1, 0.9),
            FaultKind::ShortIo => (0.05, 0.9),
            // A sync allocates dozens of blocks and a receive assigns a
            // transaction per record: rare per opportunity.
            FaultKind::Enospc => (0.0002, 0.004),
            FaultKind::DiskLoss => (0.01, 0.1),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown fault kind {s:?}: the kinds are {}",
                    names.join(", ")
                )
            })
    }
}

/// What the user asked for: kinds with or without a rate. Resolved into a
/// [`FaultPlan`] per seed.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultSpec {
    /// Each kind on with probability 1/2, at a drawn rate: the default.
    Swarm,
    /// The listed kinds only; a kind without a rate gets a drawn one.
    Kinds(BTreeMap<FaultKind, Option<f64>>),
}

impl FaultSpec {
    pub fn none() -> FaultSpec {
        FaultSpec::Kinds(BTreeMap::new())
    }

    pub fn all() -> FaultSpec {
        FaultSpec::Kinds(FaultKind::ALL.into_iter().map(|k| (k, None)).collect())
    }

    /// The plan for one seed, from the seed's "fault-plan" stream.
    pub fn resolve(&self, streams: &Streams) -> FaultPlan {
        let mut rng = streams.stream("fault-plan");
        let mut rates = BTreeMap::new();
        for kind in FaultKind::ALL {
            // Draw for every kind in the same order whatever the spec says,
            // so that one kind's rate does not depend on the others.
            let on = rng.gen_bool(0.5);
            let (lo, hi) = kind.swarm_range();
            let drawn = (lo.ln() + rng.r#gen::<f64>() * (hi.ln() - lo.ln())).exp();
            let drawn = (drawn * 1e6).round() / 1e6;
            let rate = match self {
                FaultSpec::Swarm => on.then_some(drawn),
                FaultSpec::Kinds(kinds) => kinds.get(&kind).map(|r| r.unwrap_or(drawn)),
            };
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                rates.insert(kind, rate);
            }
        }
        FaultPlan { rates }
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "swarm" => return Ok(FaultSpec::Swarm),
            "all" => return Ok(FaultSpec::all()),
            "none" | "" => return Ok(FaultSpec::none()),
            _ => {}
        }
        let mut kinds = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, rate) = match item.split_once(':') {
                Some((name, rate)) => {
                    let rate: f64 = rate
                        .parse()
                        .map_err(|_| format!("fault {name}: rate {rate:?} is not a number"))?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(format!(
                            "fault {name}: rate {rate} is not a probability (0 to 1)"
                        ));
                    }
                    (name, Some(rate))
                }
                None => (item, None),
            };
            let kind: FaultKind = name.parse()?;
            if kinds.insert(kind, rate).is_some() {
                return Err(format!("fault {kind} is named twice"));
            }
        }
        Ok(FaultSpec::Kinds(kinds))
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultSpec::Swarm => f.write_str("swarm"),
            FaultSpec::Kinds(kinds) if kinds.is_empty() => f.write_str("none"),
            FaultSpec::Kinds(kinds)
                if kinds.len() == FaultKind::ALL.len() && kinds.values().all(Option::is_none) =>
            {
                f.write_str("all")
            }
            FaultSpec::Kinds(kinds) => {
                let items: Vec<String> = kinds
                    .iter()
                    .map(|(k, r)| match r {
                        Some(r) => format!("{k}:{r}"),
                        None => k.to_string(),
                    })
                    .collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// The faults of one run: each kind that is on, with its rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    rates: BTreeMap<FaultKind, f64>,
}

impl FaultPlan {
    /// The kinds whose rate is above 0.
    pub fn from_rates(rates: impl IntoIterator<Item = (FaultKind, f64)>) -> FaultPlan {
        FaultPlan {
            rates: rates.into_iter().filter(|(_, r)| *r > 0.0).collect(),
        }
    }

    pub fn rate(&self, kind: FaultKind) -> f64 {
        self.rates.get(&kind).copied().unwrap_or(0.0)
    }

    pub fn is_on(&self, kind: FaultKind) -> bool {
        self.rate(kind) > 0.0
    }

    pub fn kinds(&self) -> impl Iterator<Item = (FaultKind, f64)> + '_ {
        self.rates.iter().map(|(k, r)| (*k, *r))
    }

    /// The same plan without one kind (for shrinking).
    pub fn without(&self, kind: FaultKind) -> FaultPlan {
        let mut plan = self.clone();
        plan.rates.remove(&kind);
        plan
    }

    /// The plan as a spec that resolves to exactly it.
    pub fn to_spec(&self) -> FaultSpec {
        FaultSpec::Kinds(self.rates.iter().map(|(k, r)| (*k, Some(*r))).collect())
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rates.is_empty() {
            return f.write_str("none");
        }
        let items: Vec<String> = self.rates.iter().map(|(k, r)| format!("{k}:{r}")).collect();
        f.write_str(&items.join(","))
    }
}

/// Faults that fired, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts(pub BTreeMap<FaultKind, u64>);

impl FaultCounts {
    pub fn add(&mut self, kind: FaultKind) {
        *self.0.entry(kind).or_default() += 1;
    }

    pub fn get(&self, kind: FaultKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The kinds that fired more often here than in `before`.
    pub fn fired_since(&self, before: &FaultCounts) -> Vec<FaultKind> {
        self.0
            .iter()
            .filter(|(k, n)| **n > before.get(**k))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Faults fired of the kinds that can make an operation fail.
    pub fn failing(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.can_fail())
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests_errnos {
    use super::*;

    #[test]
    fn each_failing_kind_declares_its_errnos_and_counts_say_what_fired() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.can_fail(), !kind.errnos().is_empty(), "{kind}");
        }
        assert_eq!(FaultKind::Signal.errnos(), [Errno::EINTR]);
        let mut before = FaultCounts::default();
        before.add(FaultKind::Crash);
        let mut now = before.clone();
        now.add(FaultKind::Signal);
        now.add(FaultKind::ShortIo);
        assert_eq!(
            now.fired_since(&before),
            [FaultKind::Signal, FaultKind::ShortIo]
        );
        assert_eq!(now.failing(), 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_plan_prints_and_parses_back_to_itself() {
        for seed in 0..50 {
            for spec in [FaultSpec::Swarm, FaultSpec::all()] {
                let plan = spec.resolve(&Streams::new(seed));
                let again: FaultSpec = plan.to_string().parse().unwrap();
                assert_eq!(again.resolve(&Streams::new(seed + 1)), plan, "{plan}");
            }
        }
    }

    #[test]
    fn swarm_varies_the_kinds_and_all_turns_every_kind_on() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let plan = FaultSpec::Swarm.resolve(&Streams::new(seed));
            seen.insert(plan.kinds().count());
            let all = FaultSpec::all().resolve(&Streams::new(seed));
            assert_eq!(all.kinds().count(), FaultKind::ALL.len());
        }
        assert!(
            seen.len() >= 4,
            "swarm plans should differ in size: {seen:?}"
        );
        assert_eq!(
            FaultSpec::none().resolve(&Streams::new(3)),
            FaultPlan::default()
        );
    }

    #[test]
    fn specs_parse_as_documented() {
        let spec: FaultSpec = "torn,eio-read:0.01,signal,endian".parse().unwrap();
        let plan = spec.resolve(&Streams::new(9));
        assert_eq!(plan.rate(FaultKind::EioRead), 0.01);
        assert!(plan.is_on(FaultKind::Torn) && plan.is_on(FaultKind::Signal));
        assert!(!plan.is_on(FaultKind::Crash));
        assert_eq!(spec.to_string(), "torn,eio-read:0.01,signal,endian");
        assert!(
            "tron"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("unknown fault kind")
        );
        assert!(
            "crash:2"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("probability")
        );
        assert!(
            "crash,crash"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("twice")
        );
        assert_eq!("all".parse::<FaultSpec>().unwrap().to_string(), "all");
        assert_eq!("none".parse::<FaultSpec>().unwrap().to_string(), "none");
    }
}
