//! A relay's pipe from a source stream to up to three targets, fragments in any order,
//! targets acknowledging, finishing or leaving at will: bytes out equal bytes in.
//! The body is `weir_core::fuzz::pipe`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_core::fuzz::pipe(data));
