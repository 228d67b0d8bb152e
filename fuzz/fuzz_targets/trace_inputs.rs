//! A weir trace's recorded inputs, its text changed by the fuzzer, drive an endpoint; no
//! panic, memory within bounds, and the run's own trace replays. The body is
//! `weir_core::fuzz::trace_inputs`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::trace_inputs(data));
