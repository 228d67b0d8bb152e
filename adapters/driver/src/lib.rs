//! # weir-driver
//!
//! The half of a weir adapter that does not depend on how the adapter waits: the sans-IO
//! [`weir_core::Endpoint`], the application calls waiting on it, and the set-up of the UDP
//! socket. `weir-std` (threads) and `weir-tokio` (async) each add a loop that moves
//! datagrams and time between a [`Driver`] and a socket, and pass the application's
//! [`Command`]s in; so can an adapter for any other runtime. Both keep the driver behind a
//! lock that the application's calls take too, so a call runs in the calling thread or task
//! and costs no switch to the loop when the core can answer it at once.
//!
//! ## The contract between an adapter and its driver
//! - The adapter's loop calls [`Driver::handle_datagram`], [`Driver::handle_timeout`] (when
//!   [`Driver::deadline`] passes) and [`Driver::command`], and after each sends what
//!   [`Driver::poll_transmit`] gives. Each of those calls leaves the waiting calls answered
//!   as far as the core allows.
//! - Every [`Command`] that carries a [`Reply`] is answered exactly once: at once, or later
//!   when the core's events allow, or with [`Error::TimedOut`] after [`Command::Cancel`],
//!   or with [`Error::Shutdown`]. Backpressure is a reply that comes later, never a queue
//!   that grows: a write waits while the core's send buffer is full, and received bytes
//!   stay in the core, under its flow control, until a read asks for them.
//! - A [`Reply`] runs inside the driver call that answers it (with the driver borrowed, or
//!   its lock held): it must hand the value over and return, never call the driver again.
//! - A reply that can no longer be delivered (its receiver is gone) gives its value back:
//!   bytes read, messages and accepted connections or streams are kept for the next call,
//!   so a cancelled call loses nothing.
//! - The commonest calls can be tried at once first, without a reply:
//!   [`Driver::send_message_now`], [`Driver::recv_message_now`] and [`Driver::read_now`]
//!   answer ([`Now::Done`]) when the core can, and otherwise give their arguments back
//!   ([`Now::Wait`]) for the [`Command`] that waits. They never overtake a call still
//!   waiting on the same connection. A send answered this way costs no reply channel, no
//!   allocation of the driver's and no entry among the waiting calls (about a fifth of
//!   the CPU time per 1 KiB message in `weir-bench`'s messages workload).
//!
//! Connections are named by [`ConnId`]s, which unlike the core's handles are never reused:
//! a handle kept after its connection ended can only ever see that end.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod driver;
mod io;
mod socket;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
pub use weir_core::congestion::{CongestionAlgorithm, ControllerFactory, LedbatConfig};
pub use weir_core::wire::{Label, Reason, StreamId};
pub use weir_core::{
    ApiError, CloseReason, Config, ConnectionStats, Delivery, Digest, HandshakeError, Identity, Negotiated,
    PeerPolicy, PipeFailure, PipeId, PipeStats, PublicKey, Seed, StreamHeader,
};

pub use driver::{Driver, TRACE_ENV};
pub use io::{Batch, Inbox, Outbox, MAX_BATCH_BYTES};
pub use socket::{bind_socket, SOCKET_BUFFER};

/// Longest message [`Command::RecvMessage`] gathers unless told otherwise: the memory one
/// message may take (a longer one is refused and its stream stopped).
pub const DEFAULT_MESSAGE_LIMIT: u64 = 256 << 20;

/// The pieces of a stream or message as one buffer: the one piece itself (no copy), or
/// one copy of several.
pub fn join(chunks: impl IntoIterator<Item = Bytes>) -> Bytes {
    let mut chunks = chunks.into_iter();
    let Some(first) = chunks.next() else {
        return Bytes::new();
    };
    let Some(second) = chunks.next() else {
        return first;
    };
    let mut out = bytes::BytesMut::from(&first[..]);
    out.extend_from_slice(&second);
    for c in chunks {
        out.extend_from_slice(&c);
    }
    out.freeze()
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
    /// The peer no longer wants the stream being written.
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
    /// relay's failure: the receipt says which and where (spec §8, Delivery).
    #[error("{0}")]
    NotDelivered(Delivery),
    /// A pipe ended without delivering.
    #[error("the pipe failed: {0}")]
    PipeFailed(PipeFailure),
    /// The core refused the call (see [`ApiError`]): a misuse, or a limit reached.
    #[error("refused: {0}")]
    Refused(ApiError),
    /// A call on a connection or stream of another endpoint.
    #[error("the connection belongs to another endpoint")]
    WrongEndpoint,
    /// The call's time ran out ([`Command::Cancel`]) before it could finish.
    #[error("the call timed out")]
    TimedOut,
    /// The endpoint is shutting down or gone.
    #[error("the endpoint is shut down")]
    Shutdown,
}

/// A stream error code as people read it: the transport's own by name, others by number.
fn why_code(code: u64) -> String {
    match code {
        weir_core::PIPE_BROKEN => ": a relay lost the other side of its pipe".to_string(),
        weir_core::VERIFICATION_FAILED => ": the bytes did not match the sender's digest".to_string(),
        0 => String::new(),
        code => format!(" (code {code})"),
    }
}

/// Names a connection for the adapters' handles. Unlike a core
/// [`ConnectionHandle`](weir_core::ConnectionHandle), never reused within a driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Names one call, so that it can be cancelled ([`Command::Cancel`]). Unique in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(u64);

impl OpId {
    /// A fresh id.
    pub fn next() -> OpId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        OpId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Where the answer to a call goes: returns the value when it can no longer be delivered
/// (the caller gave up), so that the driver keeps it for the next call.
pub type Reply<T> = Box<dyn FnOnce(T) -> Result<(), T> + Send>;

/// What a call tried at once came to ([`Driver::send_message_now`] and the like).
#[derive(Debug)]
#[must_use]
pub enum Now<T, A> {
    /// The call is over: its answer.
    Done(T),
    /// It has to wait: its arguments back, for the [`Command`] that waits.
    Wait(A),
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

/// Where an adapter's handle on a stream the peer sends stands: read, held for the
/// application's word on its delivery, or done (spec §8, Delivery). The adapters share it.
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
pub enum RecvState {
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
    pub fn read_started(self) -> RecvState {
        match self {
            RecvState::New => RecvState::Open,
            other => other,
        }
    }

    /// The state once the stream's end was read.
    pub fn at_end(self) -> RecvState {
        match self {
            RecvState::Deferred => RecvState::Held,
            _ => RecvState::Done,
        }
    }

    /// The state once the application deferred the delivery: refused after the first
    /// read, which may have fetched the end already.
    pub fn deferred(self) -> Result<RecvState, Error> {
        match self {
            RecvState::New => Ok(RecvState::Deferred),
            _ => Err(Error::Refused(ApiError::UnknownStream)),
        }
    }

    /// The state once the application confirmed the delivery: only of a held stream.
    pub fn confirmed(self) -> Result<RecvState, Error> {
        match self {
            RecvState::Held => Ok(RecvState::Done),
            _ => Err(Error::Refused(ApiError::NothingToConfirm)),
        }
    }

    /// Whether bytes may still come.
    pub fn reading(self) -> bool {
        matches!(self, RecvState::New | RecvState::Open | RecvState::Deferred)
    }
}

/// A new connection and what its handshake agreed.
#[derive(Clone, Copy, Debug)]
pub struct Connected {
    /// The connection.
    pub id: ConnId,
    /// Version, capabilities and cipher agreed.
    pub negotiated: Negotiated,
    /// The peer's public key, authenticated by the handshake; `None` on an unprotected
    /// (version 1) connection.
    pub peer: Option<PublicKey>,
}

/// A stream the peer opened, with what it announced.
pub type Incoming = (StreamId, StreamHeader);

/// What an adapter's handles ask the driver.
#[non_exhaustive]
pub enum Command {
    /// Connect to `remote`; answered when the handshake ends.
    Connect {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The server.
        remote: std::net::SocketAddr,
        /// The server's public key, if known: the handshake is then Noise IK, and fails if
        /// the server does not hold it.
        server: Option<PublicKey>,
        /// This connection's congestion controller; `None`: the endpoint's
        /// (`Config::congestion`).
        congestion: Option<CongestionAlgorithm>,
        /// The new connection, or why the handshake failed.
        reply: Reply<Result<Connected, Error>>,
    },
    /// Take the next connection a client opened.
    Accept {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        reply: Reply<Result<Connected, Error>>,
    },
    /// Send `data` as one message; answered once the core took all of it.
    SendMessage {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// The message's protocol label.
        label: Option<Label>,
        /// The message.
        data: Bytes,
        /// What to wait for before answering.
        confirm: Confirm,
        /// Done, or why not.
        reply: Reply<Result<(), Error>>,
    },
    /// Take the next whole message: the first incoming stream not taken by
    /// [`Command::AcceptStream`] to be complete.
    RecvMessage {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// Longest message accepted.
        limit: u64,
        /// The message.
        reply: Reply<Result<Bytes, Error>>,
    },
    /// Open a stream to write to; waits while the peer allows no more streams.
    OpenStream {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// Its label, total length and digest.
        header: StreamHeader,
        /// The stream.
        reply: Reply<Result<StreamId, Error>>,
    },
    /// Write what fits of `data` on a stream; waits while nothing fits.
    Write {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// The stream.
        stream: StreamId,
        /// The bytes (kept by reference until acknowledged).
        data: Bytes,
        /// How many bytes were taken (at least one).
        reply: Reply<Result<usize, Error>>,
    },
    /// End a stream after what was written.
    Finish {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// The stream.
        stream: StreamId,
        /// What to wait for before answering.
        confirm: Confirm,
        /// Done, or why not.
        reply: Reply<Result<(), Error>>,
    },
    /// Abandon a stream we write.
    ResetStream {
        /// The connection.
        conn: ConnId,
        /// The stream.
        stream: StreamId,
        /// The code the peer is told.
        code: u64,
    },
    /// Take the next stream the peer opened, in the order they were opened.
    AcceptStream {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// The stream and what it announced.
        reply: Reply<Result<Incoming, Error>>,
    },
    /// Read the next contiguous bytes of a stream (at most `max`): every piece there is, up
    /// to `max` bytes in all, in one answer (a bulk reader takes a whole receive's worth per
    /// call, not a datagram's); `None` at its end.
    Read {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The connection.
        conn: ConnId,
        /// The stream.
        stream: StreamId,
        /// At most this many bytes.
        max: usize,
        /// The pieces (at least one, each a slice of the datagram it came in), or `None`
        /// once every byte was read.
        reply: Reply<Result<Option<Vec<Bytes>>, Error>>,
    },
    /// Tell the peer to stop sending a stream.
    StopSending {
        /// The connection.
        conn: ConnId,
        /// The stream.
        stream: StreamId,
        /// The code the peer is told.
        code: u64,
    },
    /// Forward a stream of `from` to a new stream on each connection of `to`.
    Pipe {
        /// The connection the stream comes in on.
        from: ConnId,
        /// The stream.
        stream: StreamId,
        /// The connections it goes out on.
        to: Vec<ConnId>,
        /// The pipe.
        reply: Reply<Result<PipeId, Error>>,
    },
    /// Wait for a pipe to end.
    PipeDone {
        /// For [`Command::Cancel`].
        op: OpId,
        /// The pipe.
        pipe: PipeId,
        /// Its counters, once every target acknowledged the whole stream.
        reply: Reply<Result<PipeStats, Error>>,
    },
    /// A pipe's counters so far.
    PipeStats {
        /// The pipe.
        pipe: PipeId,
        /// Its counters (the last seen, once it ended).
        reply: Reply<Option<PipeStats>>,
    },
    /// Close a connection; the peer is told `code` and `reason`.
    Close {
        /// The connection.
        conn: ConnId,
        /// The application's code.
        code: u64,
        /// Words for people.
        reason: Reason,
        /// Done, or why not.
        reply: Reply<Result<(), Error>>,
    },
    /// A connection's counters: live while it is open, then the ones it closed with.
    Stats {
        /// The connection.
        conn: ConnId,
        /// The counters.
        reply: Reply<Option<ConnectionStats>>,
    },
    /// Give up a waiting call: it is answered with [`Error::TimedOut`] if it has not been
    /// answered yet.
    Cancel(OpId),
    /// A handle is gone: see [`Released`].
    Release(Released),
    /// A value a call received but whose caller gave up before taking it (an async call
    /// dropped just after its answer came): kept for the next call, first in line.
    Return(Returned),
}

/// What [`Command::Return`] gives back.
#[derive(Debug)]
#[non_exhaustive]
pub enum Returned {
    /// An accepted connection.
    Connection(Connected),
    /// A whole message of a connection.
    Message(ConnId, Bytes),
    /// A stream the peer opened.
    Stream(ConnId, Incoming),
    /// Bytes read from a stream, in order.
    Chunks(ConnId, StreamId, Vec<Bytes>),
}

/// The handle an application dropped, and what the driver does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Released {
    /// The last handle of a connection: it is closed (code 0) once the peer acknowledged
    /// everything written to it, and forgotten.
    Connection(ConnId),
    /// A stream being written, neither finished nor reset: it is finished (or reset with
    /// code 0 if its announced length was not reached).
    SendStream(ConnId, StreamId),
    /// A stream being read, not to its end: the peer is told to stop sending it (code 0).
    RecvStream(ConnId, StreamId),
    /// A pipe nobody waits for any more: its result is forgotten (it goes on).
    Pipe(PipeId),
}

#[cfg(test)]
mod tests {
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
