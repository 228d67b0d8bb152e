//! A client that a NAT rebinds at any step exchanges messages and datagrams with its
//! server; what arrives is what was sent. The body is `weir_core::fuzz::migration`, so
//! `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::migration(data));
