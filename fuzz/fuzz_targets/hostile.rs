//! One endpoint with tight admission limits (spec/protocol.md §10) under forged handshakes,
//! stolen and altered tokens, protocol violations and garbage from many addresses, beside
//! honest peers: no panic, bounds and anti-amplification hold, and the trace replays. The
//! body is `weir_core::fuzz::hostile`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::hostile(data));
