//! Two endpoints exchange messages both ways through a network the fuzzer controls; what
//! arrives is what was sent. The body is `weir_core::fuzz::pair`, so `cargo test` replays
//! this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::pair(data));
