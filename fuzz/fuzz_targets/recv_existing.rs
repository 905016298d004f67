//! Any bytes received onto a filesystem with snapshots (body:
//! `engine::fuzz::recv_existing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::recv_existing(data));
