//! A congestion controller under a made-up path; its window, pacing rate and queueing
//! delay stay sane. The body is `weir_core::fuzz::congestion`, so `cargo test` replays
//! this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::congestion(data));
