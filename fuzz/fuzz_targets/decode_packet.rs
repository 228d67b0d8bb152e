//! Any bytes: a datagram or a typed error, never a panic; what decodes re-encodes identically.
//! The body is `weir_core::fuzz::decode_packet`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::decode_packet(data));
