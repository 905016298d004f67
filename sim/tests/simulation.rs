//! The simulator judged as a whole: determinism, the planted-bug self-test,
//! the regression files, and snapshots of `cargo sim run` output.
#![cfg(madsim)]

use std::path::Path;
use std::process::Command;

use scenarios::spec::Spec;
use sim::runner::failure::Failure;
use sim::runner::{Faults, Planted, RunConfig, run, shrink::shrink};
use sim::world::faults::FaultSpec;

fn config(seed: u64, scenario: &str, faults: &str, steps: usize) -> RunConfig {
    let mut c = RunConfig::new(seed, Spec::load(scenario).unwrap());
    c.faults = Faults::Spec(faults.parse::<FaultSpec>().unwrap());
    c.steps = Some(steps);
    c
}

/// A run gives back everything it made: a campaign runs hundreds of
/// thousands of seeds in one process.
#[test]
fn a_finished_run_holds_no_disk() {
    for seed in 0..6 {
        let report = run(&config(seed, "mix", "all", 30));
        assert!(report.virtual_time > std::time::Duration::ZERO);
        assert_eq!(sim::world::disk::live_disks(), 0, "seed {seed}");
    }
}

/// Same seed, same trace: for many seeds and every fault kind, run twice in
/// this process, and once through the `sim` binary (`cargo sim run`).
#[test]
fn the_same_seed_gives_the_same_trace_hash_everywhere() {
    let mut hashes = std::collections::BTreeSet::new();
    for seed in 0..24 {
        let c = config(seed, "mix", "all", 25);
        let a = run(&c);
        let b = run(&c);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.trace, b.trace, "seed {seed}");
        hashes.insert(a.trace_hash.clone());
        if seed % 8 == 0 {
            let out = Command::new(env!("CARGO_BIN_EXE_sim"))
                .args([
                    "run",
                    "--seed",
                    &seed.to_string(),
                    "--faults",
                    "all",
                    "--steps",
                    "25",
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("trace hash {}", a.trace_hash)),
                "seed {seed}: cargo sim run printed another trace:\n{text}"
            );
        }
    }
    assert_eq!(hashes.len(), 24, "different seeds must give different runs");
}

/// A known bug planted in the engine (a failed receive skips its cleanup)
/// is caught within a few seeds and shrunk to a short repro that needs the
/// bug: without it, the same steps pass.
#[test]
fn a_planted_bug_is_caught_and_shrunk_to_a_short_repro() {
    let mut caught = None;
    for seed in 0..16 {
        let mut c = config(seed, "interrupted-send", "signal:0.6,short-io:0.5", 40);
        c.planted = vec![Planted::SkipRecvCleanup];
        if run(&c).violation.is_some() {
            caught = Some(c);
            break;
        }
    }
    let c = caught.expect("the planted bug is caught within 16 seeds");
    let (report, _runs) = shrink(&c, 300).expect("it fails");
    let v = report.violation.as_ref().unwrap();
    assert!(
        v.found.contains("%recv") || v.found.contains("INCONSISTENT"),
        "{v:?}"
    );
    let steps = report.step_list();
    assert!(
        steps.len() <= 10,
        "shrunk to {} steps: {steps:?}",
        steps.len()
    );
    let failure = Failure::from_report(&report);
    let mut again = Failure::parse(&failure.to_toml())
        .unwrap()
        .config()
        .unwrap();
    assert!(run(&again).violation.is_some(), "the saved repro fails");
    again.planted.clear();
    let clean = run(&again);
    assert!(clean.violation.is_none(), "{:?}", clean.violation);
}

/// A failure file holds the whole world it failed in, and a replay, in
/// this process or through `cargo sim replay`, runs on exactly that world
/// even where it differs from the defaults.
#[test]
fn a_failure_file_replays_on_the_world_it_saved() {
    let c = config(
        5,
        "mix",
        "short-io:0.5,pipe-damage:0.4,signal:0.3,crash:0.1",
        40,
    );
    let default = run(&c);
    let mut failure = Failure::from_report(&default);
    let world = failure.world.as_mut().expect("a failure saves its world");
    assert_eq!(*world, c.world());
    world.pipe.capacity_bytes = 1024;
    world.pipe.send_chunk_bytes = 700;
    world.pipe.recv_chunk_bytes = 333;
    world.pipe.damage_kinds = vec![sim::world::pipe::DamageKind::Truncate];
    world.disk.crash_writes_max = 2;
    world.clock.txg_timeout_ms = 1500;
    let changed = world.clone();
    let text = failure.to_toml();
    assert!(text.contains("[world.pipe]") && text.contains("capacity_bytes = 1024"));

    let config = Failure::parse(&text).unwrap().config().unwrap();
    assert_eq!(config.world(), changed);
    let a = run(&config);
    assert_eq!(a.world, changed);
    assert_ne!(a.trace_hash, default.trace_hash, "the options were used");
    assert_eq!(run(&config).trace_hash, a.trace_hash);

    let file = std::env::temp_dir().join(format!("zsim-world-{}.toml", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["replay", file.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("capacity_bytes=1024") && stdout.contains("txg_timeout_ms=1500"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("trace hash {}", a.trace_hash)),
        "{stdout}"
    );

    // Options no device can run with are refused, by name.
    let bad = text.replace("stall_ms_min = 1", "stall_ms_min = 99");
    let err = Failure::parse(&bad).unwrap().config().unwrap_err();
    assert!(err.contains("pipe.stall_ms_min"), "{err}");
}

/// A txg sync that writes its uberblock before its tree is flushed (a
/// missing barrier, planted) is caught at import: the newest uberblock
/// with a valid checksum had a tree that did not load.
#[test]
fn a_missing_barrier_is_caught_at_import() {
    let mut c = config(23, "foreign-endian", "all", 40);
    c.planted = vec![Planted::UberblockBeforeFlush];
    let report = run(&c);
    let v = report.violation.expect("the missing barrier is caught");
    assert!(v.expected.contains("newest uberblock"), "{v:?}");
    c.planted.clear();
    assert!(
        run(&c).violation.is_none(),
        "without the bug the seed passes"
    );
}

/// The same missing barrier where ditto blocks hide it from import: a
/// copy of each block the crash kept, so the tree loads; a scrub of what
/// the imported txg wrote finds the copies that never reached the disk.
#[test]
fn a_missing_barrier_that_ditto_copies_hide_is_caught_by_the_scrub() {
    let mut c = config(82, "crash-during-recv", "all", 12);
    c.planted = vec![Planted::UberblockBeforeFlush];
    let v = run(&c).violation.expect("the missing barrier is caught");
    assert!(v.expected.contains("every copy of what txg"), "{v:?}");
    assert!(v.found.contains("0 with no good copy"), "{v:?}");
    c.planted.clear();
    assert!(
        run(&c).violation.is_none(),
        "without the bug the seed passes"
    );
}

/// Mirror pools under the `redundant` scenario's heavy damage: nothing
/// within the redundancy is lost (no violation, no run stopped early), a
/// pulled disk is put back and resilvered, and rot is repaired from the
/// other side.
#[test]
fn mirror_pools_lose_nothing_to_damage_within_their_redundancy() {
    let (mut pulled, mut resilvered, mut rot, mut scrub_repairs) = (0, 0, 0, 0);
    for seed in 0..12 {
        let c = config(
            seed,
            "redundant",
            "crash,torn,eio-read,eio-write,corrupt:0.05,misdirect:0.002,disk-loss:0.1",
            60,
        );
        assert!(c.world().disk.devices >= 2);
        let report = run(&c);
        assert!(
            report.violation.is_none(),
            "seed {seed}: {:?}",
            report.violation
        );
        assert!(report.lost.is_none(), "seed {seed}: {:?}", report.lost);
        pulled += report.faults.get(sim::world::faults::FaultKind::DiskLoss);
        rot += report.faults.get(sim::world::faults::FaultKind::Corrupt);
        resilvered += report
            .trace
            .iter()
            .filter(|l| l.contains("resilver:") && l.contains("resilvered"))
            .count();
        // A scrub step that found bad copies and rewrote them all (the
        // step then scrubs again, with faults held off, to see them good).
        scrub_repairs += report
            .steps
            .iter()
            .filter(|s| s.step.kind() == "scrub" && s.outcome == sim::runner::Outcome::Done)
            .filter(|s| {
                let bad = count_before(&s.detail, " bad");
                bad > 0 && bad == count_before(&s.detail, " repaired")
            })
            .count();
    }
    assert!(pulled >= 3 && rot >= 10, "{pulled} disks pulled, {rot} rot");
    assert!(resilvered >= 1, "a stale disk was resilvered");
    assert!(scrub_repairs >= 1, "a scrub step repaired bad copies");
}

/// The number just before `what` in `text` ("3 bad" gives 3 for " bad").
fn count_before(text: &str, what: &str) -> u64 {
    let at = text.find(what).unwrap_or(0);
    let digits: String = text[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or(0)
}

/// Two faults beat a 2-way mirror: a write of a data block (one copy)
/// failed on one disk, then the other disk was pulled. The block is
/// unreadable; the run stops as a loss beyond the redundancy and names
/// what put each copy out of reach, rather than passing or failing.
#[test]
fn a_block_whose_only_good_copy_is_on_a_pulled_disk_is_a_detected_loss() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/regressions");
    let file = dir.join("a-block-whose-only-good-copy-is-on-a-pulled-disk-is-a-detected-loss.toml");
    let failure = Failure::parse(&std::fs::read_to_string(file).unwrap()).unwrap();
    let report = run(&failure.config().unwrap());
    assert!(report.violation.is_none(), "{:?}", report.violation);
    let lost = report.lost.expect("a loss beyond the redundancy");
    assert!(
        lost.contains("on src: failed write") && lost.contains("on src-1: pulled"),
        "{lost}"
    );
}

/// An object number taken back with the old object's shape: the receiver
/// keeps the old object, so only the FREE past the new end (planted away
/// here) clears the old blocks beyond it.
#[test]
fn a_reused_object_number_loses_the_old_tail_only_by_the_free_past_its_end() {
    let text = r#"
seed = 1
scenario = "mix"
faults = "none"
steps = ["create src/fs1", "claim src/fs1 obj=10 type=19 blksz=4096 bonustype=0 bonuslen=0", "write src/fs1 obj=10 off=0 len=16384 fill=7", "snapshot src/fs1@a", "send src/fs1@a to=dst/r1", "free src/fs1 obj=10", "claim src/fs1 obj=10 type=19 blksz=4096 bonustype=0 bonuslen=0", "write src/fs1 obj=10 off=0 len=4096 fill=9", "snapshot src/fs1@b", "send src/fs1@b from=src/fs1@a to=dst/r1"]
violation = ""
planted = []
"#;
    let mut c = Failure::parse(text).unwrap().config().unwrap();
    assert!(run(&c).violation.is_none());
    c.planted = vec![Planted::NoFreePastEof];
    let v = run(&c).violation.expect("the old tail survives");
    assert!(v.found.contains("object 10 block 3"), "{v:?}");
}

/// `zfs snapshot -r` and `zfs send -R` (then `-R -I`) of a tree with a
/// child, a clone and user properties: each received tree matches, child
/// by child, received properties included; and an
/// object number taken back in the child, with the FREE past its end
/// planted away, is caught in the child of the received tree.
#[test]
fn a_replicated_tree_is_judged_filesystem_by_filesystem() {
    let text = r#"
seed = 1
scenario = "replicate"
faults = "none"
steps = ["create src/fs1", "create src/fs1/fs2", "claim src/fs1/fs2 obj=10 type=19 blksz=4096 bonustype=0 bonuslen=0", "write src/fs1/fs2 obj=10 off=0 len=16384 fill=7", "snapshot src/fs1@a", "clone src/fs1@a src/fs1/c3", "set src/fs1/fs2 prop=org.zsim:a value=v1", "snapshot -r src/fs1@b", "send src/fs1@b to=dst/r1 replicate", "free src/fs1/fs2 obj=10", "claim src/fs1/fs2 obj=10 type=19 blksz=4096 bonustype=0 bonuslen=0", "write src/fs1/fs2 obj=10 off=0 len=4096 fill=9", "write src/fs1/c3 obj=1 off=0 len=512 fill=4", "set src/fs1/fs2 prop=org.zsim:a value=v2", "set src/fs1 prop=org.zsim:b value=v3", "snapshot -r src/fs1@c", "send src/fs1@c from=src/fs1@b to=dst/r1 intermediate replicate"]
violation = ""
planted = []
"#;
    let mut c = Failure::parse(text).unwrap().config().unwrap();
    let report = run(&c);
    assert!(report.violation.is_none(), "{:?}", report.violation);
    let sends: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.step.kind() == "send-replicate")
        .take(2)
        .collect();
    assert_eq!(sends.len(), 2);
    for s in sends {
        assert_eq!(
            s.outcome,
            sim::runner::Outcome::Match,
            "{}: {}",
            s.step,
            s.detail
        );
    }
    c.planted = vec![Planted::NoFreePastEof];
    let v = run(&c)
        .violation
        .expect("the old tail survives in the child");
    assert!(v.found.contains("object 10 block 3"), "{v:?}");
    assert!(v.expected.contains("dst/r1@c"), "{v:?}");
}

/// Transfer faults land inside replication streams: a receive refused in
/// substream k keeps the k before it, and the oracle holds it to exactly
/// that (these seeds cut, damage and interrupt `-R` streams).
#[test]
fn a_replication_stream_refused_part_way_keeps_the_substreams_before() {
    let mut kept = 0;
    for seed in 0..6 {
        let c = config(seed, "replicate", "pipe-damage:0.5,signal:0.3", 50);
        let report = run(&c);
        assert!(
            report.violation.is_none(),
            "seed {seed}: {:?}",
            report.violation
        );
        kept += report
            .steps
            .iter()
            .filter(|s| s.step.kind() == "send-replicate" && s.detail.contains("substreams)"))
            .count();
    }
    assert!(kept > 0, "no replication stream was refused part way");
}

/// After the workload, with faults off for good, every source filesystem's
/// latest snapshot reaches the destination and matches.
#[test]
fn the_liveness_phase_brings_every_target_up_to_date() {
    let report = run(&config(1, "mix", "all", 40));
    assert!(report.violation.is_none(), "{:?}", report.violation);
    let live = &report.steps[report.workload_steps..];
    assert!(!live.is_empty());
    for s in live {
        assert_eq!(s.outcome, sim::runner::Outcome::Match, "{}", s.step);
        assert!(
            matches!(s.step, scenarios::step::Step::Send { .. }),
            "{}",
            s.step
        );
    }
    assert_eq!(report.step_list().len(), report.workload_steps);
}

/// Every failure saved under scenarios/regressions/ passes now.
#[test]
fn every_saved_regression_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let failure = Failure::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let report = run(&failure.config().unwrap());
        assert!(
            report.violation.is_none(),
            "{}: {:?}",
            file.display(),
            report.violation
        );
    }
}

/// `cargo sim run` output with the error sites' line numbers left out
/// (`file.rs:N`): the sites' files and counts are behaviour, their lines
/// move with every edit of the code around them.
fn rendered(report: &sim::runner::RunReport) -> String {
    let text = sim::runner::text::render(report);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find(".rs:") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// `cargo sim run` output for fixed seeds: any change of behaviour shows
/// in review.
#[test]
fn run_output_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.bind(|| {
        for (seed, scenario, faults) in [
            (1, "smoke", "none"),
            (2, "mix", "all"),
            (3, "holes", "swarm"),
        ] {
            let report = run(&config(seed, scenario, faults, 20));
            insta::assert_snapshot!(format!("run_{scenario}_seed_{seed}"), rendered(&report));
        }
        // A match, a cleanly-destroyed receive, a step failed by a fault
        // and the recovery after it, and races, in one run: the first seed
        // that has them all (a change to the workload moves it).
        let outcomes = [" match ", " cleanly-destroyed send", " faulted ", " race "];
        let text = (0..100)
            .map(|seed| rendered(&run(&config(seed, "mix", "all", 24))))
            .find(|text| outcomes.iter().all(|o| text.contains(o)))
            .expect("a seed below 100 with every outcome");
        insta::assert_snapshot!("run_mix_every_outcome", text);
        // A violation, as `run` prints it: a planted bug caught.
        let mut c = config(0, "interrupted-send", "signal:0.6,short-io:0.5", 40);
        c.planted = vec![Planted::SkipRecvCleanup];
        let report = run(&c);
        assert!(report.violation.is_some());
        insta::assert_snapshot!(
            "run_interrupted_send_seed_0_planted_violation",
            rendered(&report)
        );
    });
}

/// Power losses strike where they hurt: inside txg syncs, with writes in
/// the disk's cache (before crashes waited for their writes across steps,
/// about three in four struck with nothing pending).
#[test]
fn most_power_losses_find_unflushed_writes() {
    let (mut pending, mut all) = (0, 0);
    for seed in 0..8 {
        for line in run(&config(seed, "mix", "all", 60)).trace {
            let Some((_, rest)) = line.split_once("power lost (") else {
                continue;
            };
            let unflushed: u64 = rest
                .split(": ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{line}"));
            all += 1;
            pending += (unflushed > 0) as u32;
        }
    }
    assert!(all >= 20, "{all} power losses");
    assert!(
        pending * 3 >= all * 2,
        "{pending} of {all} found writes pending"
    );
}
