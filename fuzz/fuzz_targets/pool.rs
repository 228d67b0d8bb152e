//! A client dialing two servers through its connection pool (by key and by address),
//! letting handles go, giving dials up, closing, and setting the idle time, each side a
//! driver behind the handles, through a network the fuzzer controls. The body is
//! `weir_driver::fuzz::Target::Pool`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_driver::fuzz::Target::Pool.run(data);
});
