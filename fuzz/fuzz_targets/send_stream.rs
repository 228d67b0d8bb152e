//! Writes, finishes, credit, chunks taken, acknowledgements and losses against one send
//! stream, checked against a model. The body is `weir_core::fuzz::send_stream`, so
//! `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::send_stream(data));
