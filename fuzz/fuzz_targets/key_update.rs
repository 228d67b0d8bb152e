//! Two endpoints exchange messages and datagrams over a connection whose keys change every
//! few packets, on a network the fuzzer controls; what arrives is what was sent. The body
//! is `weir_core::fuzz::key_update`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::key_update(data));
