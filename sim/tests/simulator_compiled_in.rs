//! The simulation tests (`simulation.rs`, `world.rs`, `campaign.rs`...) are
//! `#![cfg(madsim)]`: built without `--cfg madsim` they compile to nothing,
//! and `cargo test` would pass having tested none of the simulator. That
//! happens whenever a `RUSTFLAGS` variable is set, because it replaces the
//! flags of `.cargo/config.toml` instead of adding to them. This test makes
//! such a build fail, saying why.

#[cfg(not(madsim))]
#[test]
fn the_simulator_is_compiled_in() {
    panic!(
        "the simulator was compiled out: these tests were built without `--cfg madsim`, so \
         every simulation test compiled to nothing. A RUSTFLAGS variable replaces the \
         rustflags of .cargo/config.toml; unset it, or add the flag to it, e.g. \
         RUSTFLAGS=\"--cfg madsim -Copt-level=1\" cargo test --workspace"
    );
}

/// With the simulator compiled in, its world exists and runs a seed.
#[cfg(madsim)]
#[test]
fn the_simulator_is_compiled_in() {
    let spec = scenarios::spec::Spec::load("smoke").expect("the smoke scenario");
    let mut config = sim::runner::RunConfig::new(0, spec);
    config.steps = Some(3);
    let report = sim::runner::run(&config);
    assert_eq!(report.steps.len(), 3, "a seed of the simulator ran 3 steps");
}
