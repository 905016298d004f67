//! Races: each operation carried out while a transfer is in flight gets
//! what ZFS gives it, and the receive ends as ZFS ends it, with the race
//! counted in the report.
#![cfg(madsim)]

use scenarios::spec::Spec;
use scenarios::step::Step;
use sim::runner::{Faults, Outcome, RunConfig, RunReport, run};
use sim::world::faults::FaultSpec;

/// tank `src/a` with one 64 KiB object at @s1, received whole as `dst/a`,
/// then half of it rewritten at @s2: an incremental of 8 WRITE records.
const BASE: [&str; 7] = [
    "create src/a",
    "alloc src/a type=19 blksz=4096 bonustype=0 bonuslen=0",
    "write src/a obj=1 off=0 len=65536 fill=7",
    "snapshot src/a@s1",
    "send src/a@s1 to=dst/a",
    "write src/a obj=1 off=0 len=32768 fill=8",
    "snapshot src/a@s2",
];

const INCREMENTAL: &str = "send src/a@s2 from=src/a@s1 to=dst/a";

/// Runs the base steps, then `race`, without faults.
fn race(race: &str) -> RunReport {
    let mut config = RunConfig::new(5, Spec::load("concurrent").unwrap());
    config.faults = Faults::Spec("none".parse::<FaultSpec>().unwrap());
    let mut steps: Vec<Step> = BASE.iter().map(|s| s.parse().unwrap()).collect();
    steps.push(format!("race {race}").parse().unwrap());
    config.fixed_steps = Some(steps);
    run(&config)
}

/// The race step's outcome and detail, after checking that its actor
/// acted while the transfer was in flight and the race was counted.
fn raced(report: &RunReport, interleaving: &str) -> (Outcome, String) {
    assert!(report.violation.is_none(), "{:?}", report.violation);
    let step = &report.steps[BASE.len()];
    assert!(
        step.detail.contains("of the transfer:"),
        "the actor went after the transfer: {}",
        step.detail
    );
    assert_eq!(
        report.reach.interleavings.get(interleaving),
        Some(&1),
        "{:?}",
        report.reach.interleavings
    );
    (step.outcome, step.detail.clone())
}

#[test]
fn destroying_the_snapshot_being_sent_is_ebusy_and_the_send_goes_on() {
    let report = race(&format!("{INCREMENTAL} || at record 1: destroy src/a@s2"));
    let (outcome, detail) = raced(&report, "destroy-sent-snapshot");
    assert_eq!(outcome, Outcome::Match, "{detail}");
    assert!(
        detail.contains("EBUSY") && detail.contains("being sent"),
        "{detail}"
    );
}

#[test]
fn a_change_to_the_target_during_a_receive_ends_it_in_etxtbsy_unless_forced() {
    let write = "write dst/a obj=1 off=0 len=512 fill=9";
    let report = race(&format!("{INCREMENTAL} || at record 1: {write}"));
    let (outcome, detail) = raced(&report, "target-change-during-recv");
    assert_eq!(outcome, Outcome::Destroyed, "{detail}");
    assert!(detail.starts_with("ETXTBSY"), "{detail}");

    let report = race(&format!("{INCREMENTAL} force || at record 1: {write}"));
    let (outcome, detail) = raced(&report, "target-change-during-recv");
    assert_eq!(outcome, Outcome::Match, "-F discards the change: {detail}");
}

#[test]
fn a_second_receive_into_the_same_filesystem_is_ebusy() {
    let report = race(&format!("{INCREMENTAL} || at record 1: {INCREMENTAL}"));
    let (outcome, detail) = raced(&report, "second-receive");
    assert_eq!(
        outcome,
        Outcome::Match,
        "the first receive goes on: {detail}"
    );
    assert!(
        detail.contains("EBUSY") && detail.contains("%recv"),
        "{detail}"
    );
}

#[test]
fn destroying_the_filesystem_a_receive_creates_is_ebusy() {
    let report = race("send src/a@s2 to=dst/b || at record 1: destroy dst/b");
    let (outcome, detail) = raced(&report, "destroy-receiving-fs");
    assert_eq!(outcome, Outcome::Match, "{detail}");
    assert!(detail.contains("EBUSY"), "{detail}");
}

#[test]
fn a_rollback_of_the_target_and_a_write_to_the_source_leave_the_receive_alone() {
    let report = race(&format!("{INCREMENTAL} || at record 1: rollback dst/a"));
    let (outcome, detail) = raced(&report, "rollback-target-during-recv");
    assert_eq!(outcome, Outcome::Match, "{detail}");

    let write = "write src/a obj=1 off=0 len=512 fill=10";
    let report = race(&format!("{INCREMENTAL} || at record 1: {write}"));
    let (outcome, detail) = raced(&report, "source-step-during-send");
    assert_eq!(outcome, Outcome::Match, "{detail}");
}

/// A race is part of the seed: the same seed gives the same trace, the
/// actor's moment included.
#[test]
fn races_replay_the_same_trace() {
    let line = format!("{INCREMENTAL} || at record 3: destroy src/a@s2");
    assert_eq!(race(&line).trace, race(&line).trace);
    let mut config = RunConfig::new(9, Spec::load("concurrent").unwrap());
    config.faults = Faults::Spec("all".parse::<FaultSpec>().unwrap());
    let (a, b) = (run(&config), run(&config));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert!(
        a.steps.iter().any(|s| s.step.kind() == "race"),
        "seed 9 of concurrent races"
    );
}

#[test]
fn a_snapshot_of_the_target_during_a_receive_ends_it_in_einval_even_forced() {
    for force in ["", " force"] {
        let report = race(&format!(
            "{INCREMENTAL}{force} || at record 2: snapshot dst/a@x"
        ));
        let (outcome, detail) = raced(&report, "snapshot-target-during-recv");
        assert_eq!(outcome, Outcome::Destroyed, "{detail}");
        assert!(
            detail.starts_with("EINVAL") && detail.contains("no longer branches"),
            "{detail}"
        );
    }
}

#[test]
fn a_snapshot_of_the_filesystem_a_receive_creates_is_ebusy() {
    let report = race("send src/a@s2 to=dst/b || at record 2: snapshot dst/b@x");
    let (outcome, detail) = raced(&report, "snapshot-receiving-fs");
    assert_eq!(outcome, Outcome::Match, "{detail}");
    assert!(
        detail.contains("EBUSY") && detail.contains("receive is in progress"),
        "{detail}"
    );
}

#[test]
fn a_power_loss_on_either_pool_ends_the_transfer_and_leaves_the_target_as_it_was() {
    let report = race(&format!("{INCREMENTAL} || at record 3: crash dst"));
    let (outcome, detail) = raced(&report, "power-loss-on-receiver");
    assert_eq!(outcome, Outcome::Destroyed, "{detail}");
    assert!(
        detail.starts_with("EIO") && detail.contains("imported again"),
        "{detail}"
    );

    let report = race("send src/a@s2 to=dst/b || at record 1: crash src");
    let (outcome, detail) = raced(&report, "power-loss-on-sender");
    assert_eq!(outcome, Outcome::Destroyed, "{detail}");
    assert!(detail.starts_with("EINVAL"), "{detail}");
}
