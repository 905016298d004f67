//! Record headers: decode, encode, decode again (body: `engine::fuzz::stream_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::stream_decode(data));
