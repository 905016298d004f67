//! A pool whose blocks the fuzzer changed, read every way there is, with
//! block checksums off (body: `engine::fuzz::pool_image`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::pool_image(data));
