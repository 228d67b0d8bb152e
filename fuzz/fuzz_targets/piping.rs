//! A sender, a relay that pipes, forks or refuses each stream it is sent, and two receivers
//! that read piece by piece, whole, or stop, each a driver behind the handles, through a
//! network the fuzzer controls. The body is `weir_driver::fuzz::Target::Piping`, so `cargo
//! test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_driver::fuzz::Target::Piping.run(data);
});
