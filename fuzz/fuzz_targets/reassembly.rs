//! Any STREAM data, total lengths, resets, reads and credit updates against one receive
//! stream, checked step by step against a model with one flag per byte.
//! The body is `weir_core::fuzz::reassembly`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::reassembly(data));
