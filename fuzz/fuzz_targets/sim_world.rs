//! The whole simulated world, with a fuzzer-chosen workload and fault
//! schedule (body: `sim::fuzz::sim_world`). It needs the simulator:
//! `RUSTFLAGS="--cfg madsim"`, which `cargo sim fuzz` sets.
#![no_main]

#[cfg(not(madsim))]
compile_error!("sim_world runs the simulated world: build it with RUSTFLAGS=\"--cfg madsim\" (cargo sim fuzz sets it)");

#[cfg(madsim)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sim::fuzz::sim_world(data));
