//! A client reaching a server through a circuit relay (the server reserves; the client
//! connects through the relay, or races the relay against the server's address), sending
//! messages the server echoes, letting go and closing, each side a driver behind the
//! handles, through a network the fuzzer controls. The body is
//! `weir_driver::fuzz::Target::Circuit`, so `cargo test` replays this corpus too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    weir_driver::fuzz::Target::Circuit.run(data);
});
