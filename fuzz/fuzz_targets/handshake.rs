//! Client and server handshakes under loss, duplication, corruption, late replays and
//! forged ACCEPT, REJECT, RETRY, VERSION_REJECT and HELLO datagrams.
//! The body is `weir_core::fuzz::handshake`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::handshake(data));
