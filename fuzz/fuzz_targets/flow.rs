//! A receive window and a send credit joined by a channel that loses, duplicates and
//! reorders limits: credit is never exceeded and never deadlocks.
//! The body is `weir_core::fuzz::flow`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::flow(data));
