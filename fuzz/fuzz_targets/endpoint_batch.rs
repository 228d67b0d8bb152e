//! `endpoint` on a network that hands each delivered datagram over with every later one on
//! its path, in one `Endpoint::handle_datagrams` call, as a GRO receive does. The body is
//! `weir_core::fuzz::endpoint_batch`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::endpoint_batch(data));
