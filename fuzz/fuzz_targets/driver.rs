//! Two endpoints' drivers behind the handles an application uses: requests and replies,
//! ordered channels, messages with their confirmations, datagrams and closes, through a
//! network the fuzzer controls. The body is `weir_driver::fuzz::run`, so `cargo test`
//! replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_driver::fuzz::run(data);
});
