//! One endpoint under datagrams from many addresses (honest peers, mutated copies, garbage)
//! and any application command: no panic, memory bounded, and the recorded trace replays.
//! The body is `weir_core::fuzz::endpoint`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::endpoint(data));
