//! Any packets sent, ACKs (of packets sent, unsent, acknowledged or lost) and timer
//! expiries against loss recovery: every packet leaves flight exactly once.
//! The body is `weir_core::fuzz::recovery`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::recovery(data));
