//! What the core tells the application: events, the terminal reasons of connections, read
//! results, and the errors of API misuse.

use alloc::boxed::Box;
use core::fmt;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::crypto::keys::PublicKey;
use crate::handle::ConnectionHandle;
use crate::handshake::{HandshakeError, Negotiated};
use crate::pipe::{PipeFailure, PipeId};
use crate::stats::ConnectionStats;
use crate::verify::Digest;
use crate::wire::{CloseCode, DecodeError, Delivery, Label, Reason, StreamId, TransportErrorCode};

/// Why a connection ended. Delivered once, in [`Event::Closed`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed it with [`Endpoint::close`](crate::Endpoint::close).
    Local {
        /// The code it gave.
        code: u64,
    },
    /// The peer closed it and said why.
    Peer {
        /// Transport or application code.
        code: CloseCode,
        /// The peer's reason text.
        reason: Reason,
    },
    /// The peer broke the protocol; we closed the connection and told it
    /// [`kind.code()`](ViolationKind::code).
    ProtocolViolation {
        /// What the peer did.
        kind: ViolationKind,
    },
    /// Nothing heard from the peer for the idle timeout while nothing was under way: the
    /// connection was idle and the peer went quiet (spec §8, Liveness).
    TimedOut,
    /// Nothing heard from the peer for the idle timeout while something was under way: what
    /// we sent went unacknowledged however often we probed, or a stream it sends us waited
    /// for bytes. The peer, or the path to it, is gone (spec §8, Liveness).
    Unreachable,
    /// The connection's retransmissions passed `Config::max_retransmission_ratio` times what
    /// the peer acknowledged (spec §10.6): the path, or the peer, loses too much. The peer
    /// is told (NO_ERROR, "too lossy").
    TooLossy,
    /// The server no longer has the connection (it restarted, or forgot it) and said so
    /// with a stateless reset bearing the token its ACCEPT gave (spec §6.1): known at once,
    /// rather than at the idle timeout.
    Reset,
    /// A packet key reached its AEAD limit (spec §11.5): it sealed all it may and the peer
    /// never acknowledged a packet under it, so no key update could happen; or packets that
    /// failed authentication reached the integrity limit.
    KeysExhausted,
    /// The relay ended the circuit the connection ran through, its only path (spec §12.2):
    /// a limit of the relay's, or the relay or the other end left it.
    Relay(crate::RelayRefusal),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local { code } => write!(f, "closed here with code {code}"),
            CloseReason::Peer { code, reason } => {
                match code {
                    CloseCode::Transport(code) => write!(f, "closed by the peer: {code}")?,
                    CloseCode::Application(code) => write!(f, "closed by the peer with code {code}")?,
                }
                if !reason.as_str().is_empty() {
                    write!(f, " ({})", reason.as_str())?;
                }
                Ok(())
            }
            CloseReason::ProtocolViolation { kind } => {
                write!(f, "the peer broke the protocol ({}): {kind}", kind.code())
            }
            CloseReason::TimedOut => {
                f.write_str("timed out: nothing heard from the peer for the idle timeout")
            }
            CloseReason::Unreachable => {
                f.write_str("lost: the peer stopped answering (nothing heard for the idle timeout)")
            }
            CloseReason::TooLossy => f.write_str("the path lost too much (retransmission budget spent)"),
            CloseReason::Reset => {
                f.write_str("reset: the peer no longer has this connection (it restarted or forgot it)")
            }
            CloseReason::KeysExhausted => f.write_str("the packet keys reached their AEAD limits"),
            CloseReason::Relay(why) => write!(f, "the relay circuit, the only path, ended: {why}"),
        }
    }
}

/// What a peer did that broke the protocol (spec/protocol.md §10.4), in
/// [`CloseReason::ProtocolViolation`]. Each closes the connection with a transport error
/// code, [`code`](Self::code), that the peer is told, and counts against its address
/// (spec §10.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// An ACK named a packet number never sent: past the last one sent, or one the sender
    /// left out to catch optimistic ACKs (spec §8). PROTOCOL_VIOLATION.
    UnsentPacketAcked,
    /// Stream data (or a reset's final size) at or past the credit granted, for the stream
    /// or the connection, or past the `max_message_len` announced. FLOW_CONTROL_ERROR.
    PastCredit,
    /// A final size or total length broken: data past it, a FIN before or after it, two
    /// different ones, or one past `max_message_len`. FINAL_SIZE_ERROR.
    FinalSize,
    /// Bytes at offsets still held that differ from the ones received there before.
    /// PROTOCOL_VIOLATION.
    RewrittenBytes,
    /// Received stream data that would cost the heap more than the stream's or the
    /// connection's receive budget, twice its window (spec §10.3): pieces with gaps between
    /// them, or slices that keep large datagrams alive. PROTOCOL_VIOLATION.
    ReceiveBudget,
    /// A stream opened at or beyond the stream limit granted. STREAM_LIMIT_ERROR.
    StreamLimit,
    /// Data or a reset on a stream the peer did not open, or flow control (MAX_STREAM_DATA,
    /// STOP_SENDING) for one it does not send on. STREAM_STATE_ERROR.
    WrongStreamDirection,
    /// A datagram that passed the checksum but does not decode (spec §6), with the
    /// code its error maps to.
    Malformed {
        /// What the decoder found.
        error: DecodeError,
        /// FRAME_ENCODING_ERROR, PROTOCOL_VIOLATION or TRANSPORT_PARAMETER_ERROR.
        code: TransportErrorCode,
    },
}

impl ViolationKind {
    /// The transport error code the peer is told.
    pub fn code(&self) -> TransportErrorCode {
        match self {
            ViolationKind::UnsentPacketAcked
            | ViolationKind::RewrittenBytes
            | ViolationKind::ReceiveBudget => TransportErrorCode::PROTOCOL_VIOLATION,
            ViolationKind::PastCredit => TransportErrorCode::FLOW_CONTROL_ERROR,
            ViolationKind::FinalSize => TransportErrorCode::FINAL_SIZE_ERROR,
            ViolationKind::StreamLimit => TransportErrorCode::STREAM_LIMIT_ERROR,
            ViolationKind::WrongStreamDirection => TransportErrorCode::STREAM_STATE_ERROR,
            ViolationKind::Malformed { code, .. } => *code,
        }
    }

    /// A few words for the peer, sent as the CLOSE reason.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ViolationKind::UnsentPacketAcked => "ACK of a packet never sent",
            ViolationKind::PastCredit => "data past credit",
            ViolationKind::FinalSize => "final size broken",
            ViolationKind::RewrittenBytes => "stream bytes rewritten",
            ViolationKind::ReceiveBudget => "received data past the receive budget",
            ViolationKind::StreamLimit => "stream past the limit",
            ViolationKind::WrongStreamDirection => "frame for the other direction",
            ViolationKind::Malformed { .. } => "malformed packet",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViolationKind::Malformed { error, .. } => write!(f, "malformed packet: {error}"),
            other => f.write_str(other.reason()),
        }
    }
}

/// Something the application should know. Poll with
/// [`Endpoint::poll_event`](crate::Endpoint::poll_event) after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished: the connection carries streams now.
    Connected {
        /// The connection.
        conn: ConnectionHandle,
        /// Version, capabilities and cipher agreed.
        negotiated: Negotiated,
        /// The peer's public key, authenticated by the handshake (its identity, spec
        /// §11.1); `None` on an unprotected (version 1) connection.
        peer: Option<PublicKey>,
    },
    /// The peer says it sees our packets come from `address` (capability
    /// ADDRESS_DISCOVERY, spec §4.18): told after the handshake and whenever it changes.
    /// Behind a NAT, this is our public address as that peer sees it;
    /// [`Endpoint::reflexive`](crate::Endpoint::reflexive) sums up what every peer said.
    AddressObserved {
        /// The connection.
        conn: ConnectionHandle,
        /// Our address as the peer sees it.
        address: SocketAddr,
    },
    /// The connection moved to another path (spec §10.4, §12.5): the peer's address
    /// changed (a NAT rebinding), a hole punch took it off a relay's circuit onto a direct
    /// path, or a silent direct path sent it back to the circuit. Its streams are untouched;
    /// this is for the application's information only.
    PathChanged {
        /// The connection.
        conn: ConnectionHandle,
        /// Where its datagrams go now.
        path: Path,
    },
    /// The relay at the other end of `conn` keeps us reachable by our key
    /// ([`Endpoint::reserve`](crate::Endpoint::reserve); spec §12.2), for as long as the
    /// connection lasts.
    RelayReserved {
        /// Our connection to the relay.
        conn: ConnectionHandle,
    },
    /// The relay at the other end of `conn` refused a reservation.
    RelayRefused {
        /// Our connection to the relay.
        conn: ConnectionHandle,
        /// Why.
        reason: crate::RelayRefusal,
    },
    /// A connection attempt (from [`Endpoint::connect`](crate::Endpoint::connect)) failed.
    HandshakeFailed {
        /// The connection.
        conn: ConnectionHandle,
        /// Why.
        reason: HandshakeError,
    },
    /// The peer opened a stream: its label, total length and digest, when it sent them. It is
    /// offered to [`Endpoint::accept_stream`](crate::Endpoint::accept_stream) too, until the
    /// application takes it, unless its label makes it a request or a reply
    /// ([`wire::request`](crate::wire::request), spec §8 Requests): those are read by id,
    /// by the application's request layer, which only this event tells of them.
    StreamOpened {
        /// The connection.
        conn: ConnectionHandle,
        /// The stream.
        stream: StreamId,
        /// What the opening frame announced.
        header: StreamHeader,
    },
    /// New bytes (or the end) can be read from a stream; for a stream
    /// [`Endpoint::next_message`](crate::Endpoint::next_message) gathers, its message is whole
    /// (told once, not for each piece).
    StreamReadable {
        /// The connection.
        conn: ConnectionHandle,
        /// The stream.
        stream: StreamId,
    },
    /// The peer abandoned a stream it was sending us; or a pipe that forks it to other
    /// connections while the application reads it too (`LocalRead::Keep`) lost its targets
    /// before it arrived whole and stopped it, with code [`PIPE_BROKEN`](crate::PIPE_BROKEN)
    /// (spec §8, Piping). Either way the next read says [`Read::Reset`].
    StreamReset {
        /// The connection.
        conn: ConnectionHandle,
        /// The stream.
        stream: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// The peer no longer wants a stream we send; it was reset.
    StreamStopped {
        /// The connection.
        conn: ConnectionHandle,
        /// The stream.
        stream: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// Every byte of a stream we sent was acknowledged by the peer: the next hop has it. With
    /// receipts negotiated, [`Event::StreamDelivery`] follows with the final receiver's word.
    StreamAcked {
        /// The connection.
        conn: ConnectionHandle,
        /// The stream.
        stream: StreamId,
    },
    /// The final word on a stream we sent (capability RECEIPTS; spec §8, Delivery): the
    /// final receiver, through any relays, read it all, or why it did not. Once per stream,
    /// after [`Event::StreamAcked`]; a refusal that comes before every byte was acknowledged
    /// comes alone, and the stream was reset (a relay with only its start passed on the
    /// final receiver's refusal). A connection that ends first leaves the outcome unknown.
    StreamDelivery {
        /// The connection.
        conn: ConnectionHandle,
        /// The stream.
        stream: StreamId,
        /// What became of it.
        delivery: crate::Delivery,
    },
    /// A datagram from the peer waits for
    /// [`Endpoint::recv_datagram`](crate::Endpoint::recv_datagram) (told when the queue was
    /// empty: read until it returns `None`).
    DatagramReceived {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// The peer allows more streams: [`Endpoint::open_stream`](crate::Endpoint::open_stream)
    /// may succeed again after [`ApiError::StreamLimit`].
    StreamsAvailable {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// A write refused with [`ApiError::WouldBlock`] would now be accepted (at least in
    /// part; a whole message if it was a message).
    Writable {
        /// The connection.
        conn: ConnectionHandle,
    },
    /// The connection ended. No further event names it.
    Closed {
        /// The connection.
        conn: ConnectionHandle,
        /// Why.
        reason: CloseReason,
        /// Its counters as it ended (the endpoint may forget the connection before the
        /// event is read, and `Endpoint::connection_stats` with it). Boxed, so that every
        /// other event stays small.
        stats: Box<ConnectionStats>,
    },
    /// Every target of a pipe that did not fail acknowledged the whole stream.
    PipeFinished {
        /// The pipe.
        pipe: PipeId,
    },
    /// A pipe ended without delivering: the targets were reset, or the sender was told
    /// with a failed receipt (and a STOP_SENDING for what had not arrived; spec §8, Piping).
    PipeFailed {
        /// The pipe.
        pipe: PipeId,
        /// Why.
        reason: PipeFailure,
    },
    /// One target of a pipe reset its stream or lost its connection; the others go on.
    PipeTargetLost {
        /// The pipe.
        pipe: PipeId,
        /// The target's connection.
        conn: ConnectionHandle,
    },
}

/// How a connection reaches its peer ([`Endpoint::path`](crate::Endpoint::path),
/// [`Event::PathChanged`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Datagrams go straight to the peer's address.
    Direct(SocketAddr),
    /// Through a circuit of the relay at the other end of connection `relay`; the
    /// connection's own handshake and encryption are end to end (spec §12).
    Relayed {
        /// Our connection to the relay.
        relay: ConnectionHandle,
    },
    /// Through a relay, once the circuit asked for opens.
    Waiting,
}

/// What a stream announces in its opening frame (spec/protocol.md §4.12): given to
/// [`Endpoint::open_stream`](crate::Endpoint::open_stream), seen by the peer in
/// [`Event::StreamOpened`], and carried over by a pipe to the streams it feeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamHeader {
    /// The stream's protocol label (e.g. `/eth/68`).
    pub label: Option<Label>,
    /// The stream's length, when the sender knows it at the start; the sender may not write
    /// past it nor finish short of it.
    pub total_len: Option<u64>,
    /// The SHA-256 of the whole stream: its final receiver checks the bytes it reads against
    /// it and reports [`Read::VerificationFailed`] if they differ.
    pub digest: Option<Digest>,
}

impl StreamHeader {
    /// With a protocol label.
    pub fn with_label(mut self, label: Label) -> Self {
        self.label = Some(label);
        self
    }

    /// With a total length.
    pub fn with_total_len(mut self, total_len: u64) -> Self {
        self.total_len = Some(total_len);
        self
    }

    /// With a digest for the final receiver to verify ([`Digest::of`] the bytes, or a
    /// [`DigestHasher`](crate::DigestHasher) over them).
    pub fn with_digest(mut self, digest: Digest) -> Self {
        self.digest = Some(digest);
        self
    }
}

/// A stream's class in the send scheduler. Classes are strict: a stream is sent only when
/// no stream of a higher class has anything the windows allow; within a class streams take
/// turns, so one large message cannot starve the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Control traffic, heartbeats, small urgent messages.
    High = 0,
    /// Everything else. The default.
    #[default]
    Normal = 1,
    /// Bulk transfers that may wait.
    Low = 2,
}

impl Priority {
    pub(crate) const COUNT: usize = 3;
}

/// What a read from a stream gave.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Read {
    /// Bytes at `offset`: a slice of the datagram they arrived in.
    Data {
        /// Offset of the first byte in the stream.
        offset: u64,
        /// The bytes.
        bytes: Bytes,
    },
    /// Nothing to read yet; a [`Event::StreamReadable`] follows when there is.
    Pending,
    /// Every byte was read; the stream is gone.
    Finished,
    /// The peer reset the stream; the stream is gone.
    Reset {
        /// The peer's code.
        code: u64,
    },
    /// Every byte was read, but they do not hash to the digest the sender attached
    /// ([`StreamHeader::digest`]): somewhere on the way (a relay, most likely) they were
    /// changed. The stream is gone; the bytes read from it are not the sender's.
    VerificationFailed {
        /// The digest the sender attached.
        expected: Digest,
        /// The digest of the bytes read.
        actual: Digest,
    },
}

/// A call the core cannot carry out: a caller bug or a call at the wrong time. Never caused
/// by the peer alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No such connection (never existed, or closed and gone).
    #[error("unknown connection")]
    UnknownConnection,
    /// The connection is not established yet, or is closing.
    #[error("connection is not established")]
    NotEstablished,
    /// No such stream on this connection, or it finished and is gone.
    #[error("unknown stream")]
    UnknownStream,
    /// The operation needs the other direction (writing a stream the peer sends, say).
    #[error("wrong direction for this stream")]
    WrongDirection,
    /// The peer allows no more streams now; wait for [`Event::StreamsAvailable`].
    #[error("stream limit reached")]
    StreamLimit,
    /// The stream was finished or reset: no more writes.
    #[error("stream is finished")]
    StreamFinished,
    /// The peer stopped this stream (STOP_SENDING) before it was finished: it was reset,
    /// and the peer's code is told to the first call on it after.
    #[error("the peer stopped the stream (code {code})")]
    Stopped {
        /// The peer's code.
        code: u64,
    },
    /// The stream was settled before this call: the final receiver's receipt came (spec §8,
    /// Delivery) before the application finished it, saying that it read every byte of the
    /// announced length, or that it refused the stream (a refusal passed on by a relay that
    /// had only the start; the stream was reset). Told to the first call on it after.
    #[error("the stream was settled already: {delivery}")]
    Settled {
        /// The receipt.
        delivery: Delivery,
    },
    /// More bytes than the stream's announced total length, or finished short of it.
    #[error("write does not match the stream's announced total length")]
    TotalLength,
    /// The peer does not take unreliable datagrams (capability DATAGRAMS, spec §4.19).
    #[error("the peer does not take datagrams")]
    DatagramsUnsupported,
    /// A datagram larger than one packet on the path holds now.
    #[error("a datagram over the {max} bytes one packet holds")]
    DatagramTooLarge {
        /// The largest datagram that fits now.
        max: usize,
    },
    /// A whole-message read of a message longer than the caller's limit, a message to
    /// send longer than the whole send buffer ([`Config::send_buffer`](crate::Config::send_buffer),
    /// or the endpoint's [`Config::send_buffer_total`](crate::Config::send_buffer_total);
    /// send it with a stream instead), or a stream or message longer than the peer takes
    /// (its [`Config::max_message_len`](crate::Config::max_message_len), learned in the
    /// handshake).
    #[error("message is longer than the limit given")]
    MessageTooLong,
    /// The connection's send buffer is full (see
    /// [`Config::send_buffer`](crate::Config::send_buffer)), or the connections' send
    /// buffers together ([`Config::send_buffer_total`](crate::Config::send_buffer_total)):
    /// wait for [`Event::Writable`].
    #[error("send buffer full")]
    WouldBlock,
    /// The endpoint holds as many connections as its configuration allows.
    #[error("connection limit reached")]
    ConnectionLimit,
    /// A pipe needs at least one target, none of them its own source's connection.
    #[error("a pipe needs targets other than its source")]
    NoTargets,
    /// The stream is piped already.
    #[error("stream is piped already")]
    AlreadyPiped,
    /// A confirmation of delivery for a stream whose delivery was not deferred
    /// ([`Endpoint::defer_delivery`](crate::Endpoint::defer_delivery)), is not read to its
    /// end yet, or was settled already.
    #[error("the stream awaits no confirmation of delivery")]
    NothingToConfirm,
    /// The connection must prove the peer's identity (a key named with
    /// [`Endpoint::connect_to`](crate::Endpoint::connect_to), or a
    /// [`PeerPolicy`](crate::PeerPolicy) other than `Any`), but this endpoint's versions do
    /// not include version 2: plaintext version 1 proves nothing (spec §11.7).
    #[error("an identity can only be proven in version 2, which this endpoint does not speak")]
    IdentityNeedsEncryption,
    /// The connection did not negotiate what the call needs: the relay exchange (capability
    /// RELAY, version 2 only) with the relay named.
    #[error("the connection did not negotiate the capability this needs")]
    NotNegotiated,
    /// Piping the stream would hold more than the pipe's cap
    /// ([`Config::pipe_buffer`](crate::Config::pipe_buffer)) at once: it already holds
    /// `buffered` bytes the application has not read.
    #[error("pipe would hold {buffered} bytes, over its limit of {limit}")]
    BufferOverflow {
        /// Bytes the stream holds.
        buffered: u64,
        /// The pipe's cap.
        limit: u64,
    },
}

/// A stream's bytes did not hash to its digest: what the reader is told.
impl From<crate::verify::Mismatch> for Read {
    fn from(m: crate::verify::Mismatch) -> Self {
        Read::VerificationFailed {
            expected: m.expected,
            actual: m.actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn close_reasons_read_as_sentences() {
        let peer = CloseReason::Peer {
            code: CloseCode::Application(7),
            reason: Reason::from_static("bye").unwrap(),
        };
        assert_eq!(peer.to_string(), "closed by the peer with code 7 (bye)");
        let violation = CloseReason::ProtocolViolation {
            kind: ViolationKind::PastCredit,
        };
        assert_eq!(
            violation.to_string(),
            "the peer broke the protocol (FLOW_CONTROL_ERROR): data past credit"
        );
        assert_eq!(
            CloseReason::Local { code: 3 }.to_string(),
            "closed here with code 3"
        );
    }
}
