//! Any bytes received as a new filesystem (body: `engine::fuzz::recv_raw`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::recv_raw(data));
