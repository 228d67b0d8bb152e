//! Two endpoints exchange messages through a relay's circuit on a network the fuzzer
//! controls; what arrives is what was sent. The body is `weir_core::fuzz::relay`, so
//! `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::relay(data));
