//! The dump path over any byte string (body: `engine::fuzz::dump_any`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::dump_any(data));
