//! # weir-driver
//!
//! Everything of a weir adapter that does not depend on how it waits: the sans-IO
//! [`weir_core::Endpoint`] inside a [`Driver`], the application's handles ([`Endpoint`],
//! [`Connection`], [`SendStream`], [`RecvStream`], [`Pipe`]) with their calls as futures
//! and `poll_*` methods, the set-up of the UDP socket, and batched IO ([`Inbox`],
//! [`Outbox`]). An adapter adds a loop that moves datagrams and time between the driver
//! and its socket, and a [`Runtime`] that says what a call changed: `weir-tokio` (a task,
//! about 200 lines with its loop) and `weir-std` (a thread, and `block_on` to run each call
//! to completion on the calling thread); an adapter for another runtime needs the same two
//! pieces and nothing else.
//!
//! ## How a call waits
//! The driver sits behind a lock ([`Shared`]) that the handles' calls take too, so a call
//! runs in the calling task or thread and costs no switch to the loop when the core can
//! answer it at once. A call that cannot be answered yet registers the caller's waker with
//! the driver, keyed by what it waits on (a stream, a connection, the accept queue, a
//! pipe), and returns `Pending`; each input the loop hands the driver reads the core's
//! events and wakes the calls waiting on what they changed, which poll again. As in
//! quinn, values stay in the core until a poll takes them: nothing is handed to a caller
//! that might be gone, so no call has to give anything back, and the driver keeps no
//! record of the calls waiting beyond their wakers. Two exceptions keep the bytes inside
//! the driver, never with a caller: a message a receive began to gather is gathered as its
//! pieces arrive (its credit then goes out with the acknowledgement of the datagrams that
//! brought them, and its receive is woken once, when it is whole), and what arrived on a
//! connection that closed is saved for the reads that come after.
//!
//! Wakers are woken after the driver's lock is released ([`Locked`]): a task woken on
//! another thread would otherwise find it still held. Each call tells the runtime how
//! urgent what it left is ([`Urgency`]): a read's credit may wait for the answer the
//! application is about to write.
//!
//! ## The contract between an adapter and its driver
//! - The loop calls [`Driver::handle_received`] (or [`Driver::handle_datagram`]) with what
//!   the socket received, [`Driver::handle_timeout`] when [`Driver::deadline`] passes, and
//!   sends what [`Driver::poll_transmit`] gives (through an [`Outbox`], in GSO batches),
//!   each step under the lock of [`Shared::driver`] and never across a system call.
//! - [`Runtime::changed`] is called after every call with the lock held: the adapter sends
//!   what the call left, or wakes its loop to do so (at once for [`Urgency::Now`]; what a
//!   read left, [`Urgency::Soon`], may wait for a send the loop is about to make).
//! - A call the core may answer at once that must wait asks [`Runtime::poll_wait`] first:
//!   an adapter may receive for it in the calling task and hand what came to the driver
//!   ([`Shared::hand_over`], which then calls [`Runtime::received`]; given the call's
//!   [`CallId`], it wakes the calls what came lets go on but that one); the call asks the
//!   driver again after each hand-over, and tells [`Runtime::call_ready`] when it is ready
//!   whether other calls still wait with the driver, or [`Runtime::stops_receiving`] when
//!   it waits after as many hand-overs as it may make. Each poll of such a call first lets
//!   the adapter receive what its task may have been woken for
//!   ([`Runtime::receive_first`]). The defaults receive nothing.
//! - The loop lets go of the lock by dropping [`Shared::driver`]'s guard (or
//!   [`Locked::unlock`], which says how many calls it woke), and never wakes calls itself.
//! - The loop ends once [`Driver::is_shut_down`] after [`Shared::shutdown`], and calls
//!   [`Shared::stop`] however it ends: calls then fail with [`Error::Shutdown`].
//! - Backpressure is a pending call, never a queue that grows: a write waits while the
//!   core's send buffer is full, and received bytes stay in the core, under its flow
//!   control, until a read asks for them.
//!
//! ## Cancellation
//! Every call is cancel-safe in the sense that matters: dropping its future before it is
//! ready loses nothing the peer sent. Reads, accepts, `recv_message` and `open_stream` take
//! nothing until they are ready; a write is ready as soon as it took bytes, so a dropped
//! one wrote nothing. What a dropped call leaves behind is said where it is not nothing:
//! a connect is closed, a message send half written is reset, and a finish that waited for
//! its confirmation has still ended the stream. `weir-std`'s timeouts are exactly such
//! drops.
// Receiving into a block's room without writing it first needs `unsafe` (`io::open`, with
// its reasons), and so does advising the kernel about a large buffer's pages
// (`memory::advise_own_mapping`), and so does asking the CPU to prefetch a line
// (`prefetch::prefetch_line`); nothing else may.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod driver;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod handles;
pub mod identity_file;
mod io;
mod memory;
mod prefetch;
mod shards;
mod socket;

use std::net::SocketAddr;

use bytes::Bytes;
pub use weir_core::congestion::{CongestionAlgorithm, ControllerFactory, LedbatConfig};
pub use weir_core::wire::{CloseCode, Label, Reason, StreamId};
pub use weir_core::{
    ApiError, CloseReason, Config, ConnectionStats, Delivery, Digest, EndpointLoad, EndpointStats,
    HandshakeError, Identity, Mapping, Negotiated, Path, PeerPolicy, PipeFailure, PipeId, PipeStats,
    Priority, PublicKey, Reflexive, RelayConfig, RelayRefusal, Seed, StreamHeader,
};

pub use driver::{describe_metrics, CallId, Driver, PeerEvent, DEFAULT_POOL_IDLE, TRACE_ENV};
pub use handles::{
    ChannelError, ChannelReceiver, ChannelSender, Connection, Endpoint, Locked, Pipe, RecvStream, Reply,
    Request, RequestOptions, Responder, Runtime, SendStream, Shared, Urgency, CHANNEL_REFUSED,
    SLICE_WRITE_LIMIT,
};
pub use io::{Batch, Inbox, Outbox, MAX_BATCH_BYTES};
pub use memory::advise_huge_pages;
pub use prefetch::prefetch;
pub use shards::{shard_configs, Router};
pub use socket::{bind_socket, bind_sockets, udp_state, SOCKET_BUFFER};
pub use weir_core::{REQUEST_CANCELLED, REQUEST_REFUSED};

/// Longest message [`Connection::recv_message`] gathers: the memory one
/// message may take (a longer one is refused and its stream stopped).
pub const DEFAULT_MESSAGE_LIMIT: u64 = 256 << 20;

/// Longest request body the driver gathers for [`Connection::accept_request`]: a longer
/// request is refused (stopped with [`REQUEST_REFUSED`]) before it is read.
pub const REQUEST_LIMIT: u64 = DEFAULT_MESSAGE_LIMIT;

/// The pieces of a stream or message as one buffer: the one piece itself (no copy), or
/// one copy of several into a buffer of exactly their length (no growth along the way).
pub fn join(chunks: impl IntoIterator<Item = Bytes>) -> Bytes {
    let mut chunks: Vec<Bytes> = chunks.into_iter().collect();
    if chunks.len() <= 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
    for c in &chunks {
        out.extend_from_slice(c);
    }
    Bytes::from(out)
}

impl From<Error> for std::io::Error {
    /// For the adapters' `Read`/`Write` implementations: the kind says what happened.
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &e {
            Error::TimedOut => ErrorKind::TimedOut,
            Error::Closed(_) | Error::Reset { .. } | Error::Stopped { .. } => ErrorKind::ConnectionReset,
            Error::VerificationFailed { .. } => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// A CLOSE reason from `text`, cut at a character boundary to the
/// [`MAX_REASON_LEN`](weir_core::wire::MAX_REASON_LEN) bytes the wire allows.
pub fn close_reason(text: &str) -> Reason {
    let mut end = text.len().min(weir_core::wire::MAX_REASON_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Reason::new(Bytes::copy_from_slice(&text.as_bytes()[..end])).unwrap_or_default()
}

/// What a call on an endpoint, connection or stream can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed (binding it, or setting it up).
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection attempt failed.
    #[error("handshake failed: {0}")]
    Handshake(HandshakeError),
    /// The connection ended.
    #[error("connection {0}")]
    Closed(CloseReason),
    /// The peer abandoned the stream being read.
    #[error("the peer abandoned the stream{}", why_code(*code))]
    Reset {
        /// The peer's code.
        code: u64,
    },
    /// The peer no longer wants the stream being written: a write's answer. A call that
    /// waits for the stream's acknowledgement or receipt (a finish, a message sent) reports
    /// the same stop as [`NotDelivered`](Self::NotDelivered), with the peer's code.
    #[error("the peer stopped reading the stream{}", why_code(*code))]
    Stopped {
        /// The peer's code.
        code: u64,
    },
    /// The stream's bytes do not hash to the digest its sender attached: they were changed
    /// on the way.
    #[error("the stream's bytes do not match the digest its sender attached")]
    VerificationFailed {
        /// The digest the sender attached.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// The stream or message reached no further than its final receiver's refusal, or a
    /// relay's failure: the receipt says which and where (spec §8, Delivery). Also a
    /// write's answer, when a relay passed the refusal on before the stream was all written.
    #[error("{0}")]
    NotDelivered(Delivery),
    /// A pipe ended without delivering.
    #[error("the pipe failed: {0}")]
    PipeFailed(PipeFailure),
    /// The core refused the call (see [`ApiError`]): a misuse, or a limit reached.
    #[error("refused: {0}")]
    Refused(ApiError),
    /// The sender of an ordered message channel broke its framing, or sent a message over
    /// the reader's limit; the channel's stream was stopped.
    #[error("the channel's sender broke it: {0}")]
    Channel(ChannelError),
    /// A request failed (spec §8, Requests); the connection's end is
    /// [`Closed`](Self::Closed), as for every call.
    #[error("{0}")]
    Request(RequestError),
    /// The relay refused a reservation (spec §12.2); a circuit it refuses fails the
    /// connection's handshake instead ([`HandshakeError::Relay`]).
    #[error("the relay refused: {0}")]
    Relay(RelayRefusal),
    /// A call on a connection or stream of another endpoint.
    #[error("the connection belongs to another endpoint")]
    WrongEndpoint,
    /// No address of the peer answered ([`Endpoint::connect_to_peer`]): each attempt's
    /// failure, by address (none: no address was given).
    #[error("no address of the peer answered{}", unreachable(attempts))]
    Unreachable {
        /// Each address tried, and why it failed.
        attempts: Vec<(SocketAddr, Error)>,
    },
    /// The call's time ran out before it could finish (a blocking call's timeout).
    #[error("the call timed out")]
    TimedOut,
    /// The endpoint is shutting down or gone.
    #[error("the endpoint is shut down")]
    Shutdown,
}

/// Why a request got no reply (spec §8, Requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The responder refused the request (stopped it) with this code:
    /// [`REQUEST_REFUSED`] when it let the request go unanswered, or found it too long.
    #[error("the peer refused the request{}", why_code(*code))]
    Refused {
        /// The responder's code.
        code: u64,
    },
    /// The reply did not begin within the request's timeout; the request was cancelled.
    #[error("no reply began within the request's timeout")]
    TimedOut,
    /// The requester gave up on the request before the reply got to it (told to the
    /// responder, with the code the requester reset the request with).
    #[error("the requester gave up on the request{}", why_code(*code))]
    Cancelled {
        /// The requester's code ([`REQUEST_CANCELLED`]).
        code: u64,
    },
    /// The service label is longer than a request's label has room for
    /// ([`MAX_SERVICE_LEN`](weir_core::wire::request::MAX_SERVICE_LEN) bytes).
    #[error("the service label is too long for a request")]
    ServiceTooLong,
}

impl Error {
    /// A copy, for every call that waited on one outcome (a pool's dial): a socket error
    /// becomes one of the same kind and message.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            Error::Handshake(h) => Error::Handshake(h.clone()),
            Error::Closed(r) => Error::Closed(r.clone()),
            Error::Reset { code } => Error::Reset { code: *code },
            Error::Stopped { code } => Error::Stopped { code: *code },
            Error::VerificationFailed { expected, actual } => Error::VerificationFailed {
                expected: *expected,
                actual: *actual,
            },
            Error::NotDelivered(d) => Error::NotDelivered(*d),
            Error::PipeFailed(p) => Error::PipeFailed(*p),
            Error::Refused(e) => Error::Refused(*e),
            Error::Channel(e) => Error::Channel(*e),
            Error::Request(e) => Error::Request(*e),
            Error::Relay(r) => Error::Relay(*r),
            Error::WrongEndpoint => Error::WrongEndpoint,
            Error::Unreachable { attempts } => Error::Unreachable {
                attempts: attempts.iter().map(|(a, e)| (*a, e.duplicate())).collect(),
            },
            Error::TimedOut => Error::TimedOut,
            Error::Shutdown => Error::Shutdown,
        }
    }
}

/// The failed attempts of a [`Error::Unreachable`], for its message.
fn unreachable(attempts: &[(SocketAddr, Error)]) -> String {
    if attempts.is_empty() {
        return " (none was given)".to_string();
    }
    let each: Vec<String> = attempts.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    format!(": {}", each.join("; "))
}

/// A stream error code as people read it: the transport's own by name, others by number.
fn why_code(code: u64) -> String {
    match code {
        weir_core::PIPE_BROKEN => ": a relay lost the other side of its pipe".to_string(),
        weir_core::VERIFICATION_FAILED => ": the bytes did not match the sender's digest".to_string(),
        weir_core::REQUEST_REFUSED => " (refused)".to_string(),
        weir_core::REQUEST_CANCELLED => " (cancelled)".to_string(),
        0 => String::new(),
        code => format!(" (code {code})"),
    }
}

/// How far a sent message or a finished stream must have got before the call that sent it
/// returns (spec §8, Delivery).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Confirm {
    /// The endpoint took it: queued to be sent, nothing confirmed yet. The fastest, for
    /// callers that pipeline many messages and confirm another way.
    Queued,
    /// The peer acknowledged every byte: the next hop has it, which may be a relay.
    Acknowledged,
    /// The final receiver, through any relays, read every byte (and verified the digest,
    /// if one was attached), and said so in its receipt. With a peer that does not send
    /// receipts (an older weir), its acknowledgement is the most there is to wait for. The
    /// default.
    #[default]
    Delivered,
}

/// Where the secrets of the trace at `trace` go: the same name with `.secrets` added
/// (spec/trace.md §2.1). `weir trace` reads them from there.
pub fn secrets_path(trace: &std::path::Path) -> std::path::PathBuf {
    let mut name = trace.as_os_str().to_owned();
    name.push(".secrets");
    std::path::PathBuf::from(name)
}

/// Creates (or truncates) `path` for a trace or its secrets (spec/trace.md §2.1; a trace
/// holds none, but says what the endpoint did, and its secrets file decrypts it): readable
/// and writable by its owner only (mode 0600 on Unix: set as a new file is created, and on
/// a file that existed before anything is written to it).
pub fn create_trace_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

/// Where a handle on a stream the peer sends stands: read, held for the application's
/// word on its delivery, or done (spec §8, Delivery).
///
/// | from | input | to |
/// | --- | --- | --- |
/// | `New` | the application defers delivery | `Deferred` |
/// | `New` | a read | `Open` |
/// | `Open` | read to the end (the receipt goes at once) | `Done` |
/// | `Deferred` | read to the end | `Held` |
/// | `Held` | confirmed or stopped | `Done` |
/// | any | stopped, reset by the peer, digest mismatch, piped | `Done` |
///
/// Delivery can be deferred only before the first read: a read may fetch every piece there
/// is, the end included. Dropping a handle that is not `Done` stops the stream (code 0),
/// which refuses a `Held` one: the sender is told it was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvState {
    /// Nothing read yet.
    New,
    /// Being read; its end is its delivery.
    Open,
    /// Being read; its delivery waits for the application's word.
    Deferred,
    /// Read to its end; the application's word on its delivery is awaited.
    Held,
    /// Nothing more to read or to say.
    Done,
}

impl RecvState {
    /// The state once a read started.
    pub(crate) fn read_started(self) -> RecvState {
        match self {
            RecvState::New => RecvState::Open,
            other => other,
        }
    }

    /// The state once the stream's end was read.
    pub(crate) fn at_end(self) -> RecvState {
        match self {
            RecvState::Deferred => RecvState::Held,
            _ => RecvState::Done,
        }
    }

    /// The state once the application deferred the delivery: refused after the first
    /// read, which may have fetched the end already.
    pub(crate) fn deferred(self) -> Result<RecvState, Error> {
        match self {
            RecvState::New => Ok(RecvState::Deferred),
            _ => Err(Error::Refused(ApiError::UnknownStream)),
        }
    }

    /// The state once the application confirmed the delivery: only of a held stream.
    pub(crate) fn confirmed(self) -> Result<RecvState, Error> {
        match self {
            RecvState::Held => Ok(RecvState::Done),
            _ => Err(Error::Refused(ApiError::NothingToConfirm)),
        }
    }

    /// Whether bytes may still come.
    pub(crate) fn reading(self) -> bool {
        matches!(self, RecvState::New | RecvState::Open | RecvState::Deferred)
    }
}

/// A new connection and what its handshake agreed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Connected {
    /// The connection.
    pub(crate) id: weir_core::ConnectionHandle,
    /// Version, capabilities and cipher agreed.
    pub(crate) negotiated: Negotiated,
    /// The peer's public key, authenticated by the handshake; `None` on an unprotected
    /// (version 1) connection.
    pub(crate) peer: Option<PublicKey>,
}

/// A stream the peer opened, with what it announced.
pub(crate) type Incoming = (StreamId, StreamHeader);

#[cfg(test)]
mod tests {
    /// Any range may be shown, in use or not, aligned or not, empty or wrapping past the
    /// end of the address space: the hook only hints, and changes no byte.
    #[test]
    fn any_range_is_prefetched_without_a_fault_or_a_change() {
        let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let before = data.clone();
        crate::prefetch(data.as_ptr().wrapping_add(3), 997);
        crate::prefetch(data.as_ptr(), 0);
        crate::prefetch(std::ptr::null(), 4096);
        crate::prefetch((usize::MAX - 10) as *const u8, 200);
        let freed = Vec::<u8>::with_capacity(4096);
        let dangling = freed.as_ptr();
        drop(freed);
        crate::prefetch(dangling, 4096);
        assert_eq!(data, before);
    }

    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_trace_file_is_its_owner_s_alone() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("weir-trace-mode-{}.trace", std::process::id()));
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let _ = std::fs::remove_file(&path);
        drop(create_trace_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600, "a new file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_trace_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600, "an existing file, truncated");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_receive_handle_holds_its_delivery_only_if_deferred_before_reading() {
        use RecvState::*;
        assert_eq!(
            New.read_started().at_end(),
            Done,
            "read plainly: delivered at the end"
        );
        assert_eq!(Deferred.read_started(), Deferred);
        assert_eq!(Deferred.at_end(), Held);
        assert!(New.reading() && Deferred.reading() && !Held.reading() && !Done.reading());
    }

    #[test]
    fn joining_copies_only_several_pieces() {
        let one = Bytes::from_static(b"abc");
        assert_eq!(join([one.clone()]).as_ptr(), one.as_ptr());
        assert_eq!(
            join([one, Bytes::from_static(b"de"), Bytes::new()]),
            Bytes::from_static(b"abcde")
        );
        assert!(join([]).is_empty());
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let r = close_reason(&long);
        assert_eq!(r.as_str().len(), weir_core::wire::MAX_REASON_LEN);
        assert!(long.starts_with(r.as_str()));
        assert_eq!(close_reason("bye").as_str(), "bye");
    }
}
