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
//! Inputs are `handle_datagram` (or `handle_datagrams`, for the several datagrams one receive
//! call gave), `handle_timeout` and commands (`connect`, `send_message`,
//! `read_message`, `open_stream`, `write`, `close`, ...); outputs are `poll_transmit`,
//! `poll_event` and `poll_timeout`, drained after every input. Time is whatever `now` the
//! driver passes. Two endpoints, a message from one to the other, and a "network" that
//! hands every datagram over at once (README.md shows the same code):
//!
//! ```
//! use core::net::SocketAddr;
//! use bytes::{Bytes, BytesMut};
//! use weir_core::{time::Instant, Config, Endpoint, Event, Read};
//!
//! let addrs: [SocketAddr; 2] = ["192.0.2.1:4000".parse().unwrap(), "192.0.2.2:4000".parse().unwrap()];
//! // The seed is the root of every secret: in production 32 random bytes (`Seed::from_bytes`).
//! let mut eps = [Endpoint::new(Config::default(), 1), Endpoint::new(Config::default(), 2)];
//! let mut now = Instant::ZERO;
//! eps[0].connect(now, addrs[1]).unwrap();
//! let mut buf = [0u8; 1500];
//! let mut got = None;
//! while got.is_none() {
//!     for i in 0..2 {
//!         // Output: datagrams, here handed straight to the other endpoint as its input.
//!         while let Some(t) = eps[i].poll_transmit(now, &mut buf) {
//!             let to = addrs.iter().position(|a| *a == t.destination).unwrap();
//!             eps[to].handle_datagram(now, addrs[i], BytesMut::from(&buf[..t.len]));
//!         }
//!         // Output: events, which the application answers with commands.
//!         while let Some(event) = eps[i].poll_event() {
//!             match event {
//!                 Event::Connected { conn, .. } if i == 0 => {
//!                     eps[0].send_message(conn, None, Bytes::from_static(b"hello")).unwrap();
//!                 }
//!                 Event::StreamReadable { conn, stream } => {
//!                     if let Ok(Read::Data { bytes, .. }) = eps[i].read_message(conn, stream, 1 << 20) {
//!                         got = Some(bytes);
//!                     }
//!                 }
//!                 _ => {}
//!             }
//!         }
//!     }
//!     // Input: time. Here it jumps to the next deadline (acknowledgement delays, pacing).
//!     if let Some(at) = eps.iter().filter_map(Endpoint::poll_timeout).min() {
//!         now = now.max(at);
//!         eps.iter_mut().for_each(|ep| ep.handle_timeout(now));
//!     }
//! }
//! assert_eq!(got.unwrap(), "hello");
//! ```
//!
//! Over sockets the loop is the same, with `now` from the clock and a wait on the socket
//! until `poll_timeout()`; `weir-tokio` and `weir-std` are such drivers, and weir-sim drives
//! endpoints over simulated links.
//!
//! # Modules
//!
//! - [`time`]: the core's own [`Instant`](time::Instant) and [`Duration`](time::Duration).
//! - [`wire`]: the wire format, versions 1 and 2 (spec/protocol.md): zero-copy decoding into validated
//!   representations and exact encoding into caller-supplied buffers.
//! - [`Endpoint`] (module `endpoint`): connections by id, accept policy, stateless answers;
//!   every call that changes it is a [`Command`] (module `command`), which the typed methods
//!   wrap and traces record ([`trace`]: module `record` writes them, `replay` replays them).
//!   Each connection (`connection`) combines `handshake`, `stream` (send: fragmentation and
//!   retransmission by offset; recv: reassembly), `recovery` (RTT, loss, probes, ACKs),
//!   [`congestion`] (the window and rate: BBR, LEDBAT or NewReno) and `pacing` (when the next datagram
//!   may leave). Across connections, `pipe` relays streams without reassembling them, and
//!   `verify` lets a stream's final receiver check it against the sender's [`Digest`].
//!
//! Errors come in two families: [`ApiError`] for calls the core cannot carry out (caller
//! bugs), and what the peer did wrong, which ends its connection with a typed
//! [`CloseReason`] in [`Event::Closed`] (and never panics: malformed bytes become a typed
//! [`wire::DecodeError`] and are dropped and counted).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Peer input never panics (the rules of the core): outside tests, no unwrap, expect,
// panic, todo or unimplemented; an invariant the type system cannot express may say
// `unreachable!`, allowed where it stands with why no input reaches it. Where outside bytes
// land (`wire`, `crypto`, `stream::recv`, the endpoint's stateless answers and relayed
// datagrams, the trace reader in `record` and `replay`), each module also denies
// `clippy::indexing_slicing`.
// Tables that index by what they filed themselves (connection slots, the deadline heap,
// stream slots, range sets) are not held to it; the fuzzers cover them.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;

mod admission;
mod black_hole;
mod chunk_deque;
mod command;
mod config;
pub mod congestion;
mod connection;
pub mod crypto;
mod delivery;
mod endpoint;
mod event;
mod flow;
mod handle;
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
mod maybe_pn;
mod mtu_search;
mod pacing;
mod pipe;
mod range_set;
mod record;
mod recovery;
mod relay;
mod replay;
mod stats;
mod stream;
mod stream_slots;
mod thin_deque;
pub mod time;
mod transitions;
/// Traces (spec/trace.md): the record of one endpoint's life, one line per call, enough to
/// rebuild it and check it byte for byte. An endpoint made with
/// [`Endpoint::new_traced`] records as it is driven ([`Endpoint::take_trace`] drains the
/// text, [`Endpoint::trace_secrets`] gives what it leaves out); [`replay`](trace::replay)
/// checks a trace against a fresh endpoint, [`shrink`](trace::shrink) cuts a failing one
/// down. Recording (module `record`) sits below the endpoint and replaying (module `replay`)
/// above it; this module only gathers their public items.
pub mod trace {
    pub use crate::record::{inline_secrets, TraceError, TraceSecrets, TRACE_VERSION};
    pub use crate::replay::{
        replay, replay_with, replay_with_controllers, replay_with_secrets, shrink, Replayed, Step,
    };
}
mod verify;
pub mod wire;

pub use command::{Command, Done, MessageDigest, ReadUnit};
pub use config::{
    AcceptPolicy, AddressValidation, Config, PeerDecision, PeerPolicy, RelayConfig,
    DEFAULT_MAX_DATAGRAM_SIZE, LARGE_BUFFER,
};
pub use connection::{Gathered, Timer};
pub use crypto::keys::{Identity, ParseKeyError, PublicKey, Seed};
pub use endpoint::{Endpoint, EndpointLoad, EndpointStats, Mapping, Reflexive, Transmit};
pub use event::{ApiError, CloseReason, Event, Path, Priority, Read, StreamHeader, ViolationKind};
pub use handle::ConnectionHandle;
pub use handshake::{HandshakeError, Negotiated};
pub use pipe::{LocalRead, PipeFailure, PipeId, PipeStats};
pub use relay::RelayRefusal;
pub use stats::ConnectionStats;
pub use verify::DigestHasher;
pub use wire::request::{REQUEST_CANCELLED, REQUEST_REFUSED};
pub use wire::{Delivery, Digest, PIPE_BROKEN, VERIFICATION_FAILED};
