//! # weir-std
//!
//! weir over a real UDP socket with plain threads and no async runtime. Each [`Endpoint`]
//! holds the sans-IO core endpoint (inside a [`weir_driver::Driver`]) behind a lock, and
//! one driver thread that receives datagrams while no call does and sets the socket's read
//! timeout to the core's next deadline, so the core's timers fire on time. Every call is
//! blocking: it is `weir-driver`'s handle call (the same as `weir-tokio`'s) run to
//! completion on the calling thread (a `block_on` of its own): it runs on the driver in
//! the calling thread, sends what it left, and if the core has no answer yet (a read of
//! bytes not yet arrived, a write to a full buffer) waits. A waiting call receives from
//! the socket itself when the driver thread has yielded it (as it does after waking calls),
//! so the datagram it waits for wakes its own thread, not the driver thread that would then
//! wake it; otherwise it parks until the driver thread, handing the core what it waits for,
//! wakes it. A call that moves the core's deadline earlier than the driver thread's sleep
//! wakes it (with a one-byte datagram from a private waker socket, which receivers drop).
//! A send made within 200 µs of a call the thread got an answer to at once (or of a send
//! that waited for room) is part of a burst: it is held until the burst's 200 µs are up,
//! 32 sends are held, or the thread waits for something, so that a burst of small messages
//! leaves in full datagrams, a system call for many; a send after any other call that
//! waited (a request after its reply) goes at once.

//! Backpressure reaches the caller as a blocking call, never as an unbounded queue: a write
//! waits while the connection's send buffer is full, and what the peer sends stays in the
//! core, under its flow control, until a read asks for it. Every blocking call of a handle
//! gives up with [`Error::TimedOut`] after the handle's timeout, if one is set
//! (`set_timeout`); a call that gave up loses nothing (a read takes bytes out of the core
//! only when it returns them), except that a message send given up half written is reset.
//!
//! ```no_run
//! use weir_std::{Config, Endpoint};
//!
//! let server = Endpoint::bind("127.0.0.1:4433".parse()?, Config::default())?;
//! let client = Endpoint::bind("127.0.0.1:0".parse()?, Config::default())?;
//! let conn = client.connect(server.local_addr())?;
//! conn.send_message("hello".into())?;
//! let incoming = server.accept()?;
//! assert_eq!(&incoming.recv_message()?[..], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Dropping an [`Endpoint`] shuts it down gracefully: the peers get a bounded time to
//! acknowledge what was written, then every connection is closed with a CLOSE frame.
//! Setting the environment variable `WEIR_TRACE` to a file name records a replayable trace
//! of the core endpoint (spec/trace.md; `{port}` in the name becomes the local port; without
//! it, an endpoint whose name another of the process records to adds `.PORT`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod channel;
mod request;
mod run;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
/// An identity kept in a file across runs (weir-driver's `identity_file`).
pub use weir_driver::identity_file;
pub use weir_driver::{
    advise_huge_pages, ApiError, ChannelError, CloseCode, CloseReason, Config, Confirm, CongestionAlgorithm,
    ConnectionStats, ControllerFactory, Delivery, EndpointLoad, EndpointStats, Error, HandshakeError,
    Identity, Label, LedbatConfig, Mapping, Negotiated, Path, PeerEvent, PeerPolicy, PipeFailure, PipeStats,
    Priority, PublicKey, Reflexive, RelayConfig, RelayRefusal, Request, RequestError, RequestOptions,
    StreamHeader, StreamId, CHANNEL_REFUSED, DEFAULT_MESSAGE_LIMIT, DEFAULT_POOL_IDLE, REQUEST_CANCELLED,
    REQUEST_REFUSED, SLICE_WRITE_LIMIT,
};

pub use channel::{ChannelReceiver, ChannelSender};
pub use request::{Reply, Responder};
use run::{block_on, wait};

/// A UDP socket driven by weir: connects out and accepts in.
pub struct Endpoint {
    inner: weir_driver::Endpoint,
    io: Arc<run::Io>,
    thread: Option<JoinHandle<()>>,
    timeout: Option<Duration>,
}

impl Endpoint {
    /// Binds a UDP socket at `addr` (IPv4 or IPv6; port 0 picks one) with raised buffers
    /// ([`weir_driver::SOCKET_BUFFER`]) and starts the driver thread.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Endpoint, Error> {
        let (inner, io, thread) = run::start(addr, config)?;
        Ok(Endpoint {
            inner,
            io,
            thread: Some(thread),
            timeout: None,
        })
    }

    /// This endpoint's public key: its identity, which clients name in
    /// [`connect_to`](Self::connect_to). Configured (`Config::identity`) or, if not, new with
    /// each endpoint.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key()
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// Our public addresses as recent peers saw them, and whether one serves every
    /// destination (weir-driver's `Endpoint::reflexive`).
    pub fn reflexive(&self) -> Reflexive {
        self.inner.reflexive()
    }

    /// How long [`connect`](Self::connect) and [`accept`](Self::accept) wait before giving
    /// up with [`Error::TimedOut`]; `None` (the default) waits as long as it takes (a
    /// connect still ends within the handshake timeout). Connections made afterwards, and
    /// their streams, start with the same timeout.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Connects to `remote`; returns once the handshake finished, or failed (within the
    /// configured handshake timeout) with [`Error::Handshake`]. Given up at the timeout,
    /// the attempt is closed.
    pub fn connect(&self, remote: SocketAddr) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.connect(remote)))
    }

    /// Like [`connect`](Self::connect), with a congestion controller of its own instead of
    /// the configured one: [`CongestionAlgorithm::Ledbat`] for a background transfer that
    /// should yield to the other connections, say.
    pub fn connect_with(
        &self,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
    ) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.connect_with(remote, congestion)))
    }

    /// Like [`connect`](Self::connect), to a server whose public key we know (a Noise IK
    /// handshake): fails with [`HandshakeError::ServerKeyMismatch`] if the server at
    /// `remote` does not hold it.
    pub fn connect_to(&self, remote: SocketAddr, server: PublicKey) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.connect_to(remote, server)))
    }

    /// Connects to the peer whose public key is `key` at whichever of `addresses` answers
    /// first, the other attempts closed; [`Error::Unreachable`] lists each address's
    /// failure when none answers or holds the key (see `weir_driver::Endpoint::connect_to_peer`).
    pub fn connect_to_peer(&self, key: PublicKey, addresses: &[SocketAddr]) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.connect_to_peer(key, addresses)))
    }

    /// Connects to the peer holding `peer` through the relay at the other end of `relay`,
    /// sealed end to end; it moves to a direct path if a hole punch opens one (see
    /// `weir_driver::Endpoint::connect_via`).
    pub fn connect_via(&self, relay: &Connection, peer: PublicKey) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.connect_via(&relay.inner, peer)))
    }

    /// Asks the relay at the other end of `relay` to keep this endpoint reachable by its
    /// key (see `weir_driver::Endpoint::reserve`).
    pub fn reserve(&self, relay: &Connection) -> Result<(), Error> {
        wait(self.timeout, self.inner.reserve(&relay.inner))
    }

    /// [`connect_to_peer`](Self::connect_to_peer) through relays too (see
    /// `weir_driver::Endpoint::connect_to_peer_via`).
    pub fn connect_to_peer_via(
        &self,
        key: PublicKey,
        addresses: &[SocketAddr],
        relays: &[&Connection],
    ) -> Result<Connection, Error> {
        let relays: Vec<&weir_driver::Connection> = relays.iter().map(|r| &r.inner).collect();
        self.connection(wait(
            self.timeout,
            self.inner.connect_to_peer_via(key, addresses, &relays),
        ))
    }

    /// Waits for the next client to connect.
    pub fn accept(&self) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.accept()))
    }

    /// The pool's connection to the peer whose key is `key`, or one dial for it shared by
    /// the concurrent calls (weir-driver's `Endpoint::dial`: a connection the peer opened
    /// counts; one no handle holds is closed after the pool's idle time).
    pub fn dial(&self, key: PublicKey, addresses: &[SocketAddr]) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.dial(key, addresses)))
    }

    /// [`dial`](Self::dial) by address (weir-driver's `Endpoint::dial_addr`).
    pub fn dial_addr(&self, remote: SocketAddr) -> Result<Connection, Error> {
        self.connection(wait(self.timeout, self.inner.dial_addr(remote)))
    }

    /// How long a pooled connection no handle holds stays open
    /// ([`DEFAULT_POOL_IDLE`] until set).
    pub fn set_pool_idle(&self, idle: Duration) {
        self.inner.set_pool_idle(idle)
    }

    /// Blocks until the next connection event: a connection came up or went down.
    pub fn peer_event(&self) -> Result<PeerEvent, Error> {
        wait(self.timeout, self.inner.peer_event())
    }

    fn connection(&self, c: Result<weir_driver::Connection, Error>) -> Result<Connection, Error> {
        Ok(Connection {
            inner: c?,
            timeout: self.timeout,
        })
    }

    /// Forwards `stream` (one the peer of its connection sends) to a new stream on each
    /// connection of `targets`, as [`weir_driver::Endpoint::pipe`] says: fragment by
    /// fragment as it arrives, from where reading stopped, never holding the whole stream.
    /// Every connection must belong to this endpoint.
    pub fn pipe(&self, stream: RecvStream, targets: &[&Connection]) -> Result<Pipe, Error> {
        let targets: Vec<&weir_driver::Connection> = targets.iter().map(|t| &t.inner).collect();
        let inner = wait(None, self.inner.pipe(stream.inner, &targets))?;
        Ok(Pipe { inner })
    }

    /// Forwards `stream` to each of `targets` while the caller keeps reading it through
    /// `stream` (weir-driver's `Endpoint::fork`).
    pub fn fork(&self, stream: &RecvStream, targets: &[&Connection]) -> Result<Pipe, Error> {
        let targets: Vec<&weir_driver::Connection> = targets.iter().map(|t| &t.inner).collect();
        let inner = wait(None, self.inner.fork(&stream.inner, &targets))?;
        Ok(Pipe { inner })
    }

    /// The endpoint's counters since it started (weir-driver's `Endpoint::stats`).
    pub fn stats(&self) -> EndpointStats {
        self.inner.stats()
    }

    /// What the endpoint holds now (weir-driver's `Endpoint::load`).
    pub fn load(&self) -> EndpointLoad {
        self.inner.load()
    }
}

impl Drop for Endpoint {
    /// Shuts down gracefully (bounded: at most a few seconds with unresponsive peers) and
    /// waits for the driver thread.
    fn drop(&mut self) {
        self.inner.shutdown();
        self.io.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection of an [`Endpoint`]: [`weir_driver::Connection`]'s calls, blocking.
/// Clones are handles to the same connection; when the last one is dropped the connection
/// is closed (code 0).
#[derive(Clone)]
pub struct Connection {
    inner: weir_driver::Connection,
    timeout: Option<Duration>,
}

impl Connection {
    /// The version, capabilities and cipher both sides agreed on.
    pub fn negotiated(&self) -> Negotiated {
        self.inner.negotiated()
    }

    /// The peer's public key (its identity), authenticated by the handshake; `None` on an
    /// unprotected (version 1) connection.
    pub fn peer_key(&self) -> Option<PublicKey> {
        self.inner.peer_key()
    }

    /// How the connection reaches its peer now (weir-driver's `Connection::path`).
    pub fn path(&self) -> Option<Path> {
        self.inner.path()
    }

    /// Blocks until the connection moves to another path, and returns the path it is on
    /// now (weir-driver's `Connection::path_changed`: a punch onto a direct path, a fall
    /// back to the relay's circuit, a NAT rebinding); each move is returned once.
    pub fn path_changed(&self) -> Result<Path, Error> {
        wait(self.timeout, self.inner.path_changed())
    }

    /// Our address as the peer last said it sees it (weir-driver's
    /// `Connection::observed_address`).
    pub fn observed_address(&self) -> Option<SocketAddr> {
        self.inner.observed_address()
    }

    /// How long this handle's blocking calls wait before giving up with
    /// [`Error::TimedOut`]; `None` (the default) waits as long as it takes.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Sends `data` as one message and returns once it was delivered: the final receiver,
    /// through any relays, read it all and said so ([`Confirm::Delivered`]; spec §8,
    /// Delivery); see [`weir_driver::Connection::send_message`]. Given up at the timeout,
    /// a message not yet whole in the core is reset.
    pub fn send_message(&self, data: Bytes) -> Result<(), Error> {
        self.send_message_with(data, Confirm::Delivered)
    }

    /// [`send_message`](Self::send_message), returning once the message got as far as
    /// `confirm` says: [`Confirm::Queued`] once the core took all of it (for a sender that
    /// pipelines many), [`Confirm::Acknowledged`] once the peer acknowledged every byte.
    pub fn send_message_with(&self, data: Bytes, confirm: Confirm) -> Result<(), Error> {
        wait(self.timeout, self.inner.send_message_with(data, confirm))
    }

    /// Sends `data` as one unreliable datagram (weir-driver's `Connection::send_datagram`:
    /// returns at once, never retransmitted).
    pub fn send_datagram(&self, data: Bytes) -> Result<(), Error> {
        self.inner.send_datagram(data)
    }

    /// Waits for the next datagram the peer sent.
    pub fn recv_datagram(&self) -> Result<Bytes, Error> {
        wait(self.timeout, self.inner.recv_datagram())
    }

    /// The largest datagram [`send_datagram`](Self::send_datagram) takes now; `None` if
    /// the peer does not take datagrams.
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.inner.max_datagram_size()
    }

    /// Waits for the next whole message: the first stream the peer opened that
    /// [`accept_stream`](Self::accept_stream) did not take to be complete. Messages longer
    /// than [`DEFAULT_MESSAGE_LIMIT`] are refused (their stream is stopped).
    pub fn recv_message(&self) -> Result<Bytes, Error> {
        wait(self.timeout, self.inner.recv_message())
    }

    /// Opens a stream to write to, with a protocol label (or none); waits while the peer
    /// allows no more streams.
    pub fn open_stream(&self, label: Option<Label>) -> Result<SendStream, Error> {
        let mut header = StreamHeader::default();
        header.label = label;
        self.open_stream_with(header)
    }

    /// [`open_stream`](Self::open_stream) with a full header: label, total length (the
    /// stream must then be exactly that long) and digest (checked by the final receiver).
    pub fn open_stream_with(&self, header: StreamHeader) -> Result<SendStream, Error> {
        let inner = wait(self.timeout, self.inner.open_stream_with(header))?;
        Ok(SendStream {
            inner,
            timeout: self.timeout,
        })
    }

    /// Waits for the next stream the peer opens (in the order they were opened) that
    /// [`recv_message`](Self::recv_message) did not take.
    pub fn accept_stream(&self) -> Result<RecvStream, Error> {
        let inner = wait(self.timeout, self.inner.accept_stream())?;
        Ok(RecvStream {
            inner,
            timeout: self.timeout,
        })
    }

    /// Closes the connection with an application `code` and a `reason` for people (cut to
    /// 256 bytes); the peer is told both.
    pub fn close(&self, code: u64, reason: &str) -> Result<(), Error> {
        wait(None, self.inner.close(code, reason))
    }

    /// The connection's counters: live while it is open; once it ended, the ones it closed
    /// with.
    pub fn stats(&self) -> Option<ConnectionStats> {
        block_on(None, self.inner.stats()).flatten()
    }
}

/// A stream this side writes: [`weir_driver::SendStream`]'s calls, blocking.
/// [`io::Write`] copies each buffer once; [`write_chunk`](Self::write_chunk) hands over a
/// `Bytes` without copying. Dropping it unfinished finishes it (or resets it, if it
/// announced a total length it did not reach).
pub struct SendStream {
    inner: weir_driver::SendStream,
    timeout: Option<Duration>,
}

impl SendStream {
    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.inner.id()
    }

    /// Sets the class the stream is sent in (weir-driver's `SendStream::set_priority`).
    pub fn set_priority(&self, priority: Priority) -> Result<(), Error> {
        self.inner.set_priority(priority)
    }

    /// How long a write or a finish waits before giving up with [`Error::TimedOut`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Writes what fits of `data` (kept by reference until acknowledged, no copy); blocks
    /// until at least one byte fits, then says how many did.
    pub fn write_chunk(&mut self, data: Bytes) -> Result<usize, Error> {
        wait(self.timeout, self.inner.write_chunk(data))
    }

    /// Writes all of `data`, waiting for room as often as needed (the timeout applies to
    /// each wait).
    pub fn write_all_chunk(&mut self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let n = self.write_chunk(data.clone())?;
            let _ = data.split_to(n);
        }
        Ok(())
    }

    /// Ends the stream after what was written and returns once it was delivered: the final
    /// receiver, through any relays, read it all (and verified the digest, if one was
    /// attached) and said so ([`Confirm::Delivered`]; spec §8, Delivery); see
    /// [`weir_driver::SendStream::finish`].
    pub fn finish(self) -> Result<(), Error> {
        self.finish_with(Confirm::Delivered)
    }

    /// Ends the stream after what was written; returns once it got as far as `confirm`
    /// says ([`Confirm::Queued`]: at once).
    pub fn finish_with(self, confirm: Confirm) -> Result<(), Error> {
        wait(self.timeout, self.inner.finish_with(confirm))
    }

    /// Abandons the stream; the peer is told `code`.
    pub fn reset(self, code: u64) -> Result<(), Error> {
        self.inner.reset(code)
    }
}

impl io::Write for SendStream {
    /// Copies at most [`SLICE_WRITE_LIMIT`] bytes of `buf` once (the core keeps bytes by
    /// reference; `write_chunk` avoids the copy), and says how many it took: a larger piece
    /// would be kept alive whole for the part the core took, and copied again by
    /// `write_all` for the rest.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let piece = &buf[..buf.len().min(SLICE_WRITE_LIMIT)];
        self.write_chunk(Bytes::copy_from_slice(piece))
            .map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A stream the peer opened: [`weir_driver::RecvStream`]'s calls, blocking. Dropping it
/// before its end tells the peer to stop sending.
pub struct RecvStream {
    inner: weir_driver::RecvStream,
    timeout: Option<Duration>,
}

impl RecvStream {
    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.inner.id()
    }

    /// What the peer announced: label, total length, digest.
    pub fn header(&self) -> &StreamHeader {
        self.inner.header()
    }

    /// The stream's protocol label, if it has one.
    pub fn label(&self) -> Option<&Label> {
        self.inner.label()
    }

    /// The stream's length, if the peer announced it.
    pub fn total_len(&self) -> Option<u64> {
        self.inner.total_len()
    }

    /// How long a read waits before giving up with [`Error::TimedOut`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Waits for the next contiguous bytes (at most `max`), as slices of the datagrams they
    /// came in; `None` once every byte was read.
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        wait(self.timeout, self.inner.read_chunk(max))
    }

    /// Reads the whole stream; refuses (and stops the stream) past `limit` bytes. The
    /// timeout applies to the whole read.
    pub fn read_to_end(&mut self, limit: u64) -> Result<Bytes, Error> {
        wait(self.timeout, self.inner.read_to_end(limit))
    }

    /// Makes this stream's delivery yours to confirm: see
    /// [`weir_driver::RecvStream::defer_delivery`]. Call it before the first read.
    pub fn defer_delivery(&mut self) -> Result<(), Error> {
        self.inner.defer_delivery()
    }

    /// Tells the sender that this stream, deferred and read to its end, is delivered.
    /// [`ApiError::NothingToConfirm`] (as [`Error::Refused`]) if it was not deferred or its
    /// end was not read.
    pub fn confirm_delivery(self) -> Result<(), Error> {
        self.inner.confirm_delivery()
    }

    /// Tells the peer to stop sending; what still arrives is discarded. On a stream whose
    /// delivery was deferred and whose end was read, tells the sender it was not delivered,
    /// with `code`.
    pub fn stop(self, code: u64) -> Result<(), Error> {
        self.inner.stop(code)
    }
}

impl io::Read for RecvStream {
    /// Copies into `buf` (`read_chunk` hands out the received bytes without a copy).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        wait(
            self.timeout,
            std::future::poll_fn(|cx| inner.poll_read_into(cx, buf)),
        )
        .map_err(io::Error::from)
    }
}

/// A stream being forwarded by [`Endpoint::pipe`]. Dropping the handle does not stop it.
pub struct Pipe {
    inner: weir_driver::Pipe,
}

impl Pipe {
    /// Waits until every target acknowledged the whole stream; its counters then.
    pub fn wait(&self) -> Result<PipeStats, Error> {
        wait(None, self.inner.wait())
    }

    /// The pipe's counters so far (the last ones, once it ended).
    pub fn stats(&self) -> Option<PipeStats> {
        block_on(None, self.inner.stats()).flatten()
    }
}
