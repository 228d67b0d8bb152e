//! # weir-std
//!
//! weir over a real UDP socket with plain threads and no async runtime. Each [`Endpoint`]
//! holds the sans-IO core endpoint (inside a [`weir_driver::Driver`]) behind a lock, and
//! one driver thread that receives datagrams and sets the socket's read timeout to the
//! core's next deadline, so the core's timers fire on time. Every call is blocking: it runs
//! on the driver in the calling thread, sends what it left, and waits for the answer if
//! the core has none yet (a read of bytes not yet arrived, a write to a full buffer); the
//! driver thread answers it when what it waits for comes. A call that moves the core's
//! deadline earlier than the driver thread's sleep wakes it with a one-byte datagram from a
//! private waker socket (the driver thread drops datagrams from that address).
//!
//! Backpressure reaches the caller as a blocking call, never as an unbounded queue: a write
//! waits while the connection's send buffer is full, and what the peer sends stays in the
//! core, under its flow control, until a read asks for it. Every blocking call of a handle
//! gives up with [`Error::TimedOut`] after the handle's timeout, if one is set
//! (`set_timeout`); a call that gave up loses nothing (bytes it would have returned are
//! kept for the next call).
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
//! of the core endpoint (spec/trace.md; `{port}` in the name becomes the local port).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod run;

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
pub use weir_driver::{
    ApiError, CloseReason, Config, Confirm, CongestionAlgorithm, ConnectionStats, ControllerFactory,
    Delivery, Error, HandshakeError, Identity, Label, LedbatConfig, Negotiated, PeerPolicy, PipeStats,
    PublicKey, StreamHeader, StreamId, DEFAULT_MESSAGE_LIMIT,
};
use weir_driver::{Command, ConnId, Now, OpId, RecvState, Released, Reply};

/// A UDP socket driven by weir: connects out and accepts in.
pub struct Endpoint {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
    timeout: Option<Duration>,
}

/// What the endpoint's handles and its driver thread share.
struct Shared {
    /// Held for one call, or one step of the driver thread (never while it waits).
    core: Mutex<run::Core>,
    socket: run::Socket,
    /// The endpoint was dropped: the driver thread shuts down.
    stop: AtomicBool,
    /// The driver thread ended: calls fail at once.
    stopped: AtomicBool,
    waker: UdpSocket,
    driver_addr: SocketAddr,
    local: SocketAddr,
    public_key: PublicKey,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, run::Core> {
        // A panic under the lock is a bug; the calls after it carry on with the driver as
        // the panic left it rather than each panicking in turn.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the driver thread (a lost wake-up only delays it to its next deadline).
    fn wake(&self) {
        let _ = self.waker.send_to(&[0], self.driver_addr);
    }

    /// Runs `command` on the driver now, in the calling thread, and sends what it left; its
    /// answer, if the core has one at once, is sent before this returns.
    fn send(&self, command: Command) -> Result<(), Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let mut core = self.core();
        core.driver.command(command);
        self.socket.flush(&mut core);
        if core.oversleeps() {
            self.wake();
        }
        Ok(())
    }

    /// Runs `f` on the driver now, in the calling thread (a call tried at once), and sends
    /// what it left, as [`send`](Self::send) does.
    fn now<R>(&self, f: impl FnOnce(&mut weir_driver::Driver) -> R) -> Result<R, Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let mut core = self.core();
        let r = f(&mut core.driver);
        self.socket.flush(&mut core);
        if core.oversleeps() {
            self.wake();
        }
        Ok(r)
    }

    /// Sends the command `make` builds and waits for its answer, at most `timeout`: then
    /// the call is cancelled, and its answer (the real one if it raced the cancellation,
    /// else [`Error::TimedOut`]) still awaited, so that nothing the driver hands out is lost.
    fn call<T: Send + 'static>(
        &self,
        timeout: Option<Duration>,
        make: impl FnOnce(OpId, Reply<T>) -> Command,
    ) -> Result<T, Error> {
        let op = OpId::next();
        let (tx, rx) = mpsc::sync_channel(1);
        let reply: Reply<T> = Box::new(move |v| {
            tx.try_send(v).map_err(|e| match e {
                TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
            })
        });
        self.send(make(op, reply))?;
        let answer = match timeout {
            None => rx.recv(),
            Some(t) => match rx.recv_timeout(t) {
                Ok(v) => Ok(v),
                Err(RecvTimeoutError::Timeout) => {
                    self.send(Command::Cancel(op))?;
                    rx.recv()
                }
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Shutdown),
            },
        };
        answer.map_err(|_| Error::Shutdown)
    }

    fn release(&self, what: Released) {
        let _ = self.send(Command::Release(what));
    }
}

impl Endpoint {
    /// Binds a UDP socket at `addr` (IPv4 or IPv6; port 0 picks one) with raised buffers
    /// ([`weir_driver::SOCKET_BUFFER`]) and starts the driver thread.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Endpoint, Error> {
        let socket = weir_driver::bind_socket(addr)?;
        let local = socket.local_addr()?;
        // The driver is woken through its own socket; an unspecified address is reached
        // through the loopback address of its family.
        let driver_addr = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
            }
            _ => local,
        };
        let waker = UdpSocket::bind(SocketAddr::new(driver_addr.ip(), 0))?;
        let waker_addr = waker.local_addr()?;
        let core = run::Core::new(config, local);
        let shared = Arc::new(Shared {
            public_key: core.driver.public_key(),
            core: Mutex::new(core),
            socket: run::Socket::new(socket)?,
            stop: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            waker,
            driver_addr,
            local,
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(format!("weir-driver {local}"))
            .spawn(move || run::run(thread_shared, waker_addr))?;
        Ok(Endpoint {
            shared,
            driver: Some(handle),
            timeout: None,
        })
    }

    /// This endpoint's public key: its identity, which clients name in
    /// [`connect_to`](Self::connect_to). Configured (`Config::identity`) or, if not, new with
    /// each endpoint.
    pub fn public_key(&self) -> PublicKey {
        self.shared.public_key
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// How long [`connect`](Self::connect) and [`accept`](Self::accept) wait before giving
    /// up with [`Error::TimedOut`]; `None` (the default) waits as long as it takes (a
    /// connect still ends within the handshake timeout). Connections made afterwards, and
    /// their streams, start with the same timeout.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Connects to `remote`; returns once the handshake finished, or failed (within the
    /// configured handshake timeout) with [`Error::Handshake`].
    pub fn connect(&self, remote: SocketAddr) -> Result<Connection, Error> {
        self.connect_with_key(remote, None, None)
    }

    /// Like [`connect`](Self::connect), with a congestion controller of its own instead of
    /// the configured one: [`CongestionAlgorithm::Ledbat`] for a background transfer that
    /// should yield to the other connections, say.
    pub fn connect_with(
        &self,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
    ) -> Result<Connection, Error> {
        self.connect_with_key(remote, None, Some(congestion))
    }

    /// Like [`connect`](Self::connect), to a server whose public key we know (a Noise IK
    /// handshake): fails with [`HandshakeError::ServerKeyMismatch`] if the server at
    /// `remote` does not hold it.
    pub fn connect_to(&self, remote: SocketAddr, server: PublicKey) -> Result<Connection, Error> {
        self.connect_with_key(remote, Some(server), None)
    }

    fn connect_with_key(
        &self,
        remote: SocketAddr,
        server: Option<PublicKey>,
        congestion: Option<CongestionAlgorithm>,
    ) -> Result<Connection, Error> {
        let c = self.shared.call(self.timeout, |op, reply| Command::Connect {
            op,
            remote,
            server,
            congestion,
            reply,
        })??;
        Ok(self.connection(c))
    }

    /// Waits for the next client to connect.
    pub fn accept(&self) -> Result<Connection, Error> {
        let c = self
            .shared
            .call(self.timeout, |op, reply| Command::Accept { op, reply })??;
        Ok(self.connection(c))
    }

    fn connection(&self, c: weir_driver::Connected) -> Connection {
        Connection {
            inner: Arc::new(ConnInner {
                shared: Arc::clone(&self.shared),
                id: c.id,
                negotiated: c.negotiated,
                peer: c.peer,
            }),
            timeout: self.timeout,
        }
    }

    /// Forwards `stream` (one the peer of its connection sends) to a new stream on each
    /// connection of `targets`, fragment by fragment as it arrives, with the same label
    /// and what is left of its total length; the relay never holds the whole stream
    /// (spec/protocol.md §8, Piping). Every connection must belong to this endpoint.
    /// Forwarding starts where reading stopped: bytes a read already fetched (a
    /// `read_chunk(n)` may fetch up to `n` bytes and hand them out over several calls) are
    /// the application's, not forwarded.
    pub fn pipe(&self, stream: RecvStream, targets: &[&Connection]) -> Result<Pipe, Error> {
        let same = |c: &Arc<ConnInner>| Arc::ptr_eq(&c.shared, &self.shared);
        if !same(&stream.conn) || !targets.iter().all(|t| same(&t.inner)) {
            return Err(Error::WrongEndpoint);
        }
        let to: Vec<ConnId> = targets.iter().map(|t| t.inner.id).collect();
        let (from, id) = (stream.conn.id, stream.id);
        let pipe = self.shared.call(None, |_, reply| Command::Pipe {
            from,
            stream: id,
            to,
            reply,
        })??;
        // The pipe owns the stream now: dropping the handle must not stop it.
        let mut stream = stream;
        stream.state = RecvState::Done;
        Ok(Pipe {
            shared: Arc::clone(&self.shared),
            id: pipe,
        })
    }
}

impl Drop for Endpoint {
    /// Shuts down gracefully (bounded: at most a few seconds with unresponsive peers) and
    /// waits for the driver thread.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
    }
}

/// One connection of an [`Endpoint`]. Clones are handles to the same connection; when the
/// last one is dropped the connection is closed (code 0).
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
    timeout: Option<Duration>,
}

struct ConnInner {
    shared: Arc<Shared>,
    id: ConnId,
    negotiated: Negotiated,
    peer: Option<PublicKey>,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        self.shared.release(Released::Connection(self.id));
    }
}

impl Connection {
    /// The version, capabilities and cipher both sides agreed on.
    pub fn negotiated(&self) -> Negotiated {
        self.inner.negotiated
    }

    /// The peer's public key (its identity), authenticated by the handshake; `None` on an
    /// unprotected (version 1) connection.
    pub fn peer_key(&self) -> Option<PublicKey> {
        self.inner.peer
    }

    /// How long this handle's blocking calls wait before giving up with
    /// [`Error::TimedOut`]; `None` (the default) waits as long as it takes.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    fn call<T: Send + 'static>(&self, make: impl FnOnce(OpId, Reply<T>) -> Command) -> Result<T, Error> {
        self.inner.shared.call(self.timeout, make)
    }

    /// Sends `data` as one message (a stream of its own, whose length the peer learns at
    /// once) and returns once it was delivered: the final receiver, through any relays,
    /// read it all and said so ([`Confirm::Delivered`]; spec §8, Delivery). Fails with
    /// [`Error::NotDelivered`] if it was refused or a relay lost it, or with the connection's
    /// end if that came first. A message larger than the send buffer goes out in pieces as
    /// room frees up. [`send_message_with`](Self::send_message_with) waits less.
    pub fn send_message(&self, data: Bytes) -> Result<(), Error> {
        self.send_message_with(data, Confirm::Delivered)
    }

    /// [`send_message`](Self::send_message), returning once the message got as far as
    /// `confirm` says: [`Confirm::Queued`] once the core took all of it (for a sender that
    /// pipelines many), [`Confirm::Acknowledged`] once the peer acknowledged every byte.
    pub fn send_message_with(&self, data: Bytes, confirm: Confirm) -> Result<(), Error> {
        let conn = self.inner.id;
        let data = match confirm {
            Confirm::Queued => match self.inner.shared.now(|d| d.send_message_now(conn, None, data))? {
                Now::Done(r) => return r,
                Now::Wait((_, data)) => data,
            },
            _ => data,
        };
        self.call(|op, reply| Command::SendMessage {
            op,
            conn,
            label: None,
            data,
            confirm,
            reply,
        })?
    }

    /// Waits for the next whole message: the first stream the peer opened that
    /// [`accept_stream`](Self::accept_stream) did not take to be complete. Messages longer
    /// than [`DEFAULT_MESSAGE_LIMIT`] are refused (their stream is stopped).
    pub fn recv_message(&self) -> Result<Bytes, Error> {
        let conn = self.inner.id;
        let limit = DEFAULT_MESSAGE_LIMIT;
        if let Now::Done(r) = self.inner.shared.now(|d| d.recv_message_now(conn, limit))? {
            return r;
        }
        self.call(|op, reply| Command::RecvMessage {
            op,
            conn,
            limit,
            reply,
        })?
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
        let conn = self.inner.id;
        let id = self.call(|op, reply| Command::OpenStream {
            op,
            conn,
            header,
            reply,
        })??;
        Ok(SendStream {
            conn: Arc::clone(&self.inner),
            id,
            open: true,
            timeout: self.timeout,
        })
    }

    /// Waits for the next stream the peer opens (in the order they were opened) that
    /// [`recv_message`](Self::recv_message) did not take.
    pub fn accept_stream(&self) -> Result<RecvStream, Error> {
        let conn = self.inner.id;
        let (id, header) = self.call(|op, reply| Command::AcceptStream { op, conn, reply })??;
        Ok(RecvStream {
            conn: Arc::clone(&self.inner),
            id,
            header,
            state: RecvState::New,
            timeout: self.timeout,
            rest: VecDeque::new(),
        })
    }

    /// Closes the connection with an application `code` and a `reason` for people (cut to
    /// 256 bytes); the peer is told both.
    pub fn close(&self, code: u64, reason: &str) -> Result<(), Error> {
        let conn = self.inner.id;
        let reason = weir_driver::close_reason(reason);
        self.call(|_, reply| Command::Close {
            conn,
            code,
            reason,
            reply,
        })?
    }

    /// The connection's counters: live while it is open; once it ended, the ones it closed
    /// with.
    pub fn stats(&self) -> Option<ConnectionStats> {
        let conn = self.inner.id;
        self.call(|_, reply| Command::Stats { conn, reply })
            .ok()
            .flatten()
    }
}

/// A stream this side writes. Dropping it finishes it (or resets it, if it announced a
/// total length it did not reach).
pub struct SendStream {
    conn: Arc<ConnInner>,
    id: StreamId,
    open: bool,
    timeout: Option<Duration>,
}

impl SendStream {
    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// How long a write waits for room before giving up with [`Error::TimedOut`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Writes what fits of `data` (kept by reference until acknowledged, no copy); waits
    /// until at least one byte fits and says how many did.
    pub fn write_chunk(&mut self, data: Bytes) -> Result<usize, Error> {
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.call(self.timeout, |op, reply| Command::Write {
            op,
            conn,
            stream,
            data,
            reply,
        })?
    }

    /// Writes all of `data`, waiting for room as often as needed.
    pub fn write_all_chunk(&mut self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let n = self.write_chunk(data.clone())?;
            let _ = data.split_to(n);
        }
        Ok(())
    }

    /// Ends the stream after what was written, and returns once it was delivered: the
    /// final receiver, through any relays, read it all (and verified the digest, if one was
    /// attached) and said so ([`Confirm::Delivered`]; spec §8, Delivery). Fails with
    /// [`Error::NotDelivered`] if it was refused or a relay lost it, or with the connection's
    /// end if that came first. [`finish_with`](Self::finish_with) waits less.
    pub fn finish(self) -> Result<(), Error> {
        self.finish_with(Confirm::Delivered)
    }

    /// Ends the stream after what was written; returns once it got as far as `confirm`
    /// says ([`Confirm::Queued`]: at once).
    pub fn finish_with(mut self, confirm: Confirm) -> Result<(), Error> {
        self.open = false;
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.call(None, |op, reply| Command::Finish {
            op,
            conn,
            stream,
            confirm,
            reply,
        })?
    }

    /// Abandons the stream; the peer is told `code`.
    pub fn reset(mut self, code: u64) -> Result<(), Error> {
        self.open = false;
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.send(Command::ResetStream { conn, stream, code })
    }
}

impl io::Write for SendStream {
    /// Copies `buf` once (the core keeps bytes by reference; `write_chunk` avoids the copy).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_chunk(Bytes::copy_from_slice(buf))
            .map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        if self.open {
            self.conn
                .shared
                .release(Released::SendStream(self.conn.id, self.id));
        }
    }
}

/// A stream the peer opened. Dropping it before its end tells the peer to stop sending.
pub struct RecvStream {
    conn: Arc<ConnInner>,
    id: StreamId,
    header: StreamHeader,
    /// Read, held for the application's word on its delivery, or done.
    state: RecvState,
    timeout: Option<Duration>,
    /// Pieces a read fetched that its caller has not taken yet (a read fetches every piece
    /// there is, up to the caller's `max` in all, and hands them out one per call).
    rest: VecDeque<Bytes>,
}

impl RecvStream {
    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// What the peer announced: label, total length, digest.
    pub fn header(&self) -> &StreamHeader {
        &self.header
    }

    /// The stream's protocol label, if it has one.
    pub fn label(&self) -> Option<&Label> {
        self.header.label.as_ref()
    }

    /// The stream's length, if the peer announced it.
    pub fn total_len(&self) -> Option<u64> {
        self.header.total_len
    }

    /// How long a read waits before giving up with [`Error::TimedOut`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Waits for the next contiguous bytes (at most `max`), as slices of the datagrams they
    /// came in; `None` once every byte was read.
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        let max = max.max(1);
        if let Some(mut chunk) = self.rest.pop_front() {
            if chunk.len() > max {
                self.rest.push_front(chunk.split_off(max));
            }
            return Ok(Some(chunk));
        }
        if !self.state.reading() {
            return Ok(None);
        }
        let (conn, stream) = (self.conn.id, self.id);
        self.state = self.state.read_started();
        let read = match self.conn.shared.now(|d| d.read_now(conn, stream, max))? {
            Now::Done(r) => r,
            Now::Wait(()) => self.conn.shared.call(self.timeout, |op, reply| Command::Read {
                op,
                conn,
                stream,
                max,
                reply,
            })?,
        };
        match read {
            Ok(Some(chunks)) => {
                self.rest.extend(chunks);
                self.read_chunk(max)
            }
            Ok(None) => {
                self.state = self.state.at_end();
                Ok(None)
            }
            Err(e) => {
                if matches!(e, Error::Reset { .. } | Error::VerificationFailed { .. }) {
                    self.state = RecvState::Done;
                }
                Err(e)
            }
        }
    }

    /// Reads the whole stream; refuses (and stops the stream) past `limit` bytes.
    pub fn read_to_end(&mut self, limit: u64) -> Result<Bytes, Error> {
        if self.total_len().is_some_and(|t| t > limit) {
            return Err(Error::Refused(ApiError::MessageTooLong));
        }
        let mut chunks = Vec::new();
        let mut len = 0u64;
        while let Some(chunk) = self.read_chunk(usize::MAX)? {
            len += chunk.len() as u64;
            if len > limit {
                return Err(Error::Refused(ApiError::MessageTooLong));
            }
            chunks.push(chunk);
        }
        Ok(weir_driver::join(chunks))
    }

    /// Makes this stream's delivery yours to confirm (spec §8, Delivery): reading it to its
    /// end no longer tells the sender it was delivered; [`confirm_delivery`] does, once you
    /// have kept the bytes (a file flushed and renamed into place, say), and
    /// [`stop`](Self::stop) or dropping the handle tells it they were not. Call it before
    /// the first read (a read may fetch the end with the first bytes); after it, this is
    /// refused. Until confirmed, the stream counts against the streams the peer may open.
    ///
    /// [`confirm_delivery`]: Self::confirm_delivery
    pub fn defer_delivery(&mut self) -> Result<(), Error> {
        let (conn, stream) = (self.conn.id, self.id);
        let deferred = self.state.deferred()?;
        self.conn.shared.now(|d| d.defer_delivery(conn, stream))??;
        self.state = deferred;
        Ok(())
    }

    /// Tells the sender that this stream, deferred and read to its end, is delivered.
    /// [`ApiError::NothingToConfirm`] (as [`Error::Refused`]) if it was not deferred or its
    /// end was not read.
    pub fn confirm_delivery(mut self) -> Result<(), Error> {
        self.state = self.state.confirmed()?;
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.now(|d| d.confirm_delivery(conn, stream))?
    }

    /// Tells the peer to stop sending; what still arrives is discarded. On a stream whose
    /// delivery was deferred and whose end was read, tells the sender it was not delivered,
    /// with `code`.
    pub fn stop(mut self, code: u64) -> Result<(), Error> {
        self.state = RecvState::Done;
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.send(Command::StopSending { conn, stream, code })
    }
}

impl io::Read for RecvStream {
    /// Copies into `buf` (`read_chunk` hands out the received bytes without a copy).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(chunk) = self.read_chunk(buf.len()).map_err(io::Error::from)? else {
            return Ok(0);
        };
        buf[..chunk.len()].copy_from_slice(&chunk);
        let mut n = chunk.len();
        // The other pieces that read fetched, as far as they fit: one call per read, not
        // one per datagram.
        while n < buf.len() {
            let Some(mut next) = self.rest.pop_front() else {
                break;
            };
            if next.len() > buf.len() - n {
                self.rest.push_front(next.split_off(buf.len() - n));
            }
            buf[n..n + next.len()].copy_from_slice(&next);
            n += next.len();
        }
        Ok(n)
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        if self.state != RecvState::Done {
            self.conn
                .shared
                .release(Released::RecvStream(self.conn.id, self.id));
        }
    }
}

/// A stream being forwarded by [`Endpoint::pipe`]. Dropping the handle does not stop it.
pub struct Pipe {
    shared: Arc<Shared>,
    id: weir_driver::PipeId,
}

impl Pipe {
    /// Waits until every target acknowledged the whole stream; its counters then.
    pub fn wait(&self) -> Result<PipeStats, Error> {
        let pipe = self.id;
        self.shared
            .call(None, |op, reply| Command::PipeDone { op, pipe, reply })?
    }

    /// The pipe's counters so far (the last ones, once it ended).
    pub fn stats(&self) -> Option<PipeStats> {
        let pipe = self.id;
        self.shared
            .call(None, |_, reply| Command::PipeStats { pipe, reply })
            .ok()
            .flatten()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.shared.release(Released::Pipe(self.id));
    }
}
