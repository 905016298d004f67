//! Fuzzer-chosen records made into a consistent stream (body:
//! `engine::fuzz::recv_structured`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::recv_structured(data));
