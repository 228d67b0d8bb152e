//! The shards' router sorting what one shard's socket received: every datagram goes to the
//! shard its header names, once, in order. The body is `weir_driver::fuzz::router::run`, so
//! `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_driver::fuzz::router::run(data));
