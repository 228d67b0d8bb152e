//! Datagrams that do not authenticate, at both ends of an established encrypted
//! connection, change nothing (spec/protocol.md §11.4). The body is
//! `weir_core::fuzz::forgery`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::forgery(data));
