//! The application's commands to an endpoint as values: one vocabulary for every call that
//! changes an endpoint (spec/architecture.md, "Commands").
//!
//! [`Endpoint::command`](crate::Endpoint::command) runs a [`Command`] and answers with
//! [`Done`]; every typed method (`connect`, `write`, `read_message`, `close`, ...) is that
//! call with its variant. Traces record commands in this form (spec/trace.md §3.3), the
//! replayer and the fuzzers build them, and an adapter can pass them through as they are.
//! Queries (`stats`, `peer_key`, ...) and the driving inputs (datagrams, timeouts, transmit
//! and event polls) are not commands.

use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::congestion::CongestionAlgorithm;
use crate::crypto::keys::PublicKey;
use crate::event::{Priority, Read, StreamHeader};
use crate::handle::ConnectionHandle;
use crate::pipe::{LocalRead, PipeId};
use crate::wire::{Label, Reason, StreamId};

/// One call of the application's API that changes an endpoint. Each variant names the
/// typed method it stands for; that method's documentation is the variant's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// [`connect`](crate::Endpoint::connect), or with a known server key
    /// [`connect_to`](crate::Endpoint::connect_to), or with a controller of its own
    /// [`connect_with`](crate::Endpoint::connect_with). Answered with [`Done::Conn`].
    Connect {
        /// The peer's address.
        remote: SocketAddr,
        /// The server's public key, if known (Noise IK, spec §11.2).
        server: Option<PublicKey>,
        /// A congestion controller instead of the configured one.
        congestion: Option<CongestionAlgorithm>,
    },
    /// [`open_stream`](crate::Endpoint::open_stream). Answered with [`Done::Stream`].
    OpenStream {
        /// The connection.
        conn: ConnectionHandle,
        /// What the opening frame announces.
        header: StreamHeader,
    },
    /// [`write`](crate::Endpoint::write). Answered with [`Done::Taken`]: how many bytes of
    /// `data` it took.
    Write {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream we send.
        stream: StreamId,
        /// The bytes, kept by reference until acknowledged.
        data: Bytes,
    },
    /// [`set_priority`](crate::Endpoint::set_priority). Answered with [`Done::Unit`].
    SetPriority {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream we send.
        stream: StreamId,
        /// Its class.
        priority: Priority,
    },
    /// [`finish`](crate::Endpoint::finish). Answered with [`Done::Unit`].
    Finish {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream we send.
        stream: StreamId,
    },
    /// [`send_message`](crate::Endpoint::send_message), or with
    /// [`MessageDigest::Attached`]
    /// [`send_verified_message`](crate::Endpoint::send_verified_message). Answered with
    /// [`Done::Stream`].
    SendMessage {
        /// The connection.
        conn: ConnectionHandle,
        /// The message's protocol label, if any.
        label: Option<Label>,
        /// The message.
        data: Bytes,
        /// Whether its digest goes with it.
        digest: MessageDigest,
    },
    /// [`reset_stream`](crate::Endpoint::reset_stream). Answered with [`Done::Unit`].
    ResetStream {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream we send.
        stream: StreamId,
        /// The application's code, for the peer.
        code: u64,
    },
    /// [`stop_sending`](crate::Endpoint::stop_sending). Answered with [`Done::Unit`].
    StopSending {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream the peer sends.
        stream: StreamId,
        /// The application's code, for the peer.
        code: u64,
    },
    /// [`defer_delivery`](crate::Endpoint::defer_delivery). Answered with [`Done::Unit`].
    DeferDelivery {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream the peer sends.
        stream: StreamId,
    },
    /// [`confirm_delivery`](crate::Endpoint::confirm_delivery). Answered with [`Done::Unit`].
    ConfirmDelivery {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream the peer sends.
        stream: StreamId,
    },
    /// [`accept_stream`](crate::Endpoint::accept_stream). Answered with [`Done::Stream`],
    /// or [`Done::Unit`] when no stream waits.
    AcceptStream {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// [`send_datagram`](crate::Endpoint::send_datagram). Answered with [`Done::Unit`].
    SendDatagram {
        /// The connection.
        conn: ConnectionHandle,
        /// The datagram.
        data: Bytes,
    },
    /// [`recv_datagram`](crate::Endpoint::recv_datagram). Answered with [`Done::Read`]:
    /// [`Read::Pending`] when none waits.
    RecvDatagram {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// [`next_message`](crate::Endpoint::next_message). Answered with [`Done::Read`]:
    /// [`Read::Pending`] when no message is whole.
    NextMessage {
        /// The connection.
        conn: ConnectionHandle,
        /// The longest message to accept.
        max_len: u64,
    },
    /// [`release`](crate::Endpoint::release). Answered with [`Done::Unit`].
    Release {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// [`read`](crate::Endpoint::read), or with [`ReadUnit::Message`]
    /// [`read_message`](crate::Endpoint::read_message). Answered with [`Done::Read`].
    Read {
        /// The connection.
        conn: ConnectionHandle,
        /// A stream the peer sends.
        stream: StreamId,
        /// The most bytes to take (contiguous) or the longest message to accept (message).
        max_len: u64,
        /// What to wait for.
        unit: ReadUnit,
    },
    /// [`close`](crate::Endpoint::close). Answered with [`Done::Unit`].
    Close {
        /// The connection.
        conn: ConnectionHandle,
        /// The application's code, for the peer.
        code: u64,
        /// The application's reason, for the peer.
        reason: Reason,
    },
    /// [`pipe`](crate::Endpoint::pipe). Answered with [`Done::Pipe`].
    Pipe {
        /// The connection the stream arrives on.
        from: ConnectionHandle,
        /// The stream to forward.
        stream: StreamId,
        /// The connections it goes on to.
        to: Vec<ConnectionHandle>,
        /// Whether the application reads it here too.
        local: LocalRead,
    },
    /// [`reserve`](crate::Endpoint::reserve). Answered with [`Done::Unit`].
    Reserve {
        /// Our connection to the relay.
        relay: ConnectionHandle,
    },
    /// [`connect_via`](crate::Endpoint::connect_via). Answered with [`Done::Conn`].
    ConnectVia {
        /// Our connection to the relay.
        relay: ConnectionHandle,
        /// The peer wanted.
        peer: PublicKey,
    },
    /// [`add_entropy`](crate::Endpoint::add_entropy). Answered with [`Done::Unit`].
    AddEntropy {
        /// Fresh random bytes.
        bytes: Bytes,
    },
}

/// Whether a message goes with its digest ([`Command::SendMessage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageDigest {
    /// No digest: `send_message`.
    None,
    /// The SHA-256 of the message, computed by the endpoint, for its final receiver to check
    /// (spec §8, Verification): `send_verified_message`.
    Attached,
}

/// What a [`Command::Read`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadUnit {
    /// The next contiguous bytes, as soon as they exist: `read`.
    Contiguous,
    /// The whole message, as one piece: `read_message`.
    Message,
}

/// What a command answers when it succeeds; which variant is named on each [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Done {
    /// Nothing more than success.
    Unit,
    /// The connection started.
    Conn(ConnectionHandle),
    /// The stream opened.
    Stream(StreamId),
    /// Bytes a write took.
    Taken(usize),
    /// What a read gave.
    Read(Read),
    /// The pipe started.
    Pipe(PipeId),
}

/// What a typed method answers, as the [`Done`] a trace records for it.
pub(crate) trait Answer: Clone {
    /// This answer as a `Done`.
    fn done(self) -> Done;
}

impl Answer for () {
    fn done(self) -> Done {
        Done::Unit
    }
}

impl Answer for ConnectionHandle {
    fn done(self) -> Done {
        Done::Conn(self)
    }
}

impl Answer for StreamId {
    fn done(self) -> Done {
        Done::Stream(self)
    }
}

impl Answer for Option<(StreamId, StreamHeader)> {
    fn done(self) -> Done {
        self.map_or(Done::Unit, |(id, _)| Done::Stream(id))
    }
}

impl Answer for Option<(StreamId, Read)> {
    fn done(self) -> Done {
        Done::Read(self.map_or(Read::Pending, |(_, read)| read))
    }
}

impl Answer for usize {
    fn done(self) -> Done {
        Done::Taken(self)
    }
}

impl Answer for Read {
    fn done(self) -> Done {
        Done::Read(self)
    }
}

impl Answer for PipeId {
    fn done(self) -> Done {
        Done::Pipe(self)
    }
}
