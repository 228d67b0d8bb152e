//! # weir-core
//!
//! The sans-IO core of weir, a reliable, message-oriented transport for peer-to-peer
//! systems. It performs no IO, reads no clock, starts no thread and draws no global
//! randomness: time and seeds are inputs, datagrams and deadlines are outputs, so the same
//! inputs always give byte-identical outputs. Drivers (tokio, threads, a simulator, a
//! fuzzer, a trace replayer) feed it and carry its output to the network.
//!
//! # Driving an [`Endpoint`]
//!
//! ```text
//! let mut ep = Endpoint::new(config, seed);            // seed: all randomness comes from it
//! loop {
//!     ep.handle_datagram(now, from, bytes_mut);        // each datagram the socket received
//!     ep.handle_timeout(now);                          // once poll_timeout() has passed
//!     /* commands: connect, open_stream, write, finish, send_message, read, close, ... */
//!     while let Some(t) = ep.poll_transmit(now, &mut buf) { socket.send_to(&buf[..t.len], t.destination) }
//!     while let Some(e) = ep.poll_event() { /* Connected, StreamReadable, Closed, ... */ }
//!     wait until ep.poll_timeout() or the next datagram;
//! }
//! ```
//!
//! Inputs are `handle_*` calls and commands; outputs are the three `poll_*` calls, drained
//! after every input. Time is whatever `now` the driver passes.
//!
//! # Modules
//!
//! - [`time`]: the core's own [`Instant`](time::Instant) and [`Duration`](time::Duration).
//! - [`wire`]: wire format version 1 (spec/protocol.md): zero-copy decoding into validated
//!   representations and exact encoding into caller-supplied buffers.
//! - [`Endpoint`] (module `endpoint`): connections by id, accept policy, stateless answers.
//!   Each connection (`connection`) combines `handshake`, `stream` (send: fragmentation and
//!   retransmission by offset; recv: reassembly), `recovery` (RTT, loss, probes, ACKs),
//!   [`congestion`] (the window: LEDBAT or NewReno) and `pacing` (when the next datagram
//!   may leave). Across connections, `pipe` relays streams without reassembling them, and
//!   `integrity` lets a stream's final receiver check it against the sender's [`Digest`].
//!
//! Errors come in two families: [`ApiError`] for calls the core cannot carry out (caller
//! bugs), and what the peer did wrong, which ends its connection with a typed
//! [`CloseReason`] in [`Event::Closed`] (and never panics: malformed bytes become a typed
//! [`wire::DecodeError`] and are dropped and counted).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;

mod admission;
mod black_hole;
mod config;
pub mod congestion;
mod connection;
pub mod crypto;
mod delivery;
mod endpoint;
mod event;
mod flow;
/// Internal state machines for the benchmarks (feature `bench-internals`; not a stable API).
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    pub use crate::recovery::BenchSender;
    pub use crate::stream::held::Datagram;
    pub use crate::stream::recv::{RecvError, RecvStream};
}
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod handshake;
mod integrity;
mod pacing;
mod pipe;
mod range_set;
mod recovery;
mod stream;
pub mod time;
pub mod trace;
pub mod wire;

pub use config::{AcceptPolicy, AddressValidation, Config, PeerDecision, PeerPolicy};
pub use connection::{ConnectionStats, Timer};
pub use crypto::keys::{Identity, ParseKeyError, PublicKey, Seed};
pub use delivery::{Delivery, VERIFICATION_FAILED};
pub use endpoint::{Endpoint, EndpointLoad, EndpointStats, Transmit};
pub use event::{
    ApiError, CloseReason, ConnectionHandle, Event, Priority, Read, StreamHeader, ViolationKind,
};
pub use handshake::{HandshakeError, Negotiated};
pub use integrity::{Digest, DigestHasher};
pub use pipe::{LocalRead, PipeFailure, PipeId, PipeStats, PIPE_BROKEN};
