//! # weir-core
//!
//! The sans-IO core of weir, a reliable, message-oriented transport for peer-to-peer
//! systems. It performs no IO, reads no clock, starts no thread and draws no global
//! randomness: time and seeds are inputs, datagrams and deadlines are outputs, so the same
//! inputs always give byte-identical outputs. Drivers (tokio, threads, a simulator, a
//! fuzzer, a trace replayer) feed it and carry its output to the network.
//!
//! What is here so far:
//! - [`time`]: the core's own [`Instant`](time::Instant) and [`Duration`](time::Duration),
//!   microseconds from an origin the driver picks.
//! - [`wire`]: wire format version 1 (spec/protocol.md): zero-copy decoding into validated
//!   representations and exact encoding into caller-supplied buffers.
//!
//! Peer input never panics this crate: malformed bytes become a typed
//! [`wire::DecodeError`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;

mod config;
mod connection;
mod endpoint;
mod event;
/// Internal state machines for the benchmarks (feature `bench-internals`; not a stable API).
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    pub use crate::stream::recv::{RecvError, RecvStream};
}
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod handshake;
mod range_set;
mod recovery;
mod stream;
pub mod time;
pub mod wire;

pub use config::{AcceptPolicy, Config};
pub use connection::{ConnectionStats, Timer};
pub use endpoint::{Endpoint, EndpointStats, Transmit};
pub use event::{ApiError, CloseReason, ConnectionHandle, Event, Read};
pub use handshake::{HandshakeError, Negotiated};
