//! # weir-tokio
//!
//! weir over a real UDP socket on tokio. Each [`Endpoint`] holds the sans-IO core endpoint
//! (inside a [`weir_driver::Driver`]) behind a lock, and one driver task that owns the UDP
//! socket and one timer set to the core's next deadline. The handles run their calls on the
//! driver themselves, in the calling task (no task switch for a call the core can answer at
//! once: a loop of sends goes on until tokio's cooperative budget makes it yield, and the
//! driver task then sends what they wrote together), and wake the driver task when there is
//! something to send. Backpressure is a pending future, never an unbounded queue: a write
//! is pending while the connection's send buffer is full, and what the peer sends stays in
//! the core, under its flow control, until a read asks for it.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use weir_tokio::{Config, Endpoint};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Endpoint::bind("127.0.0.1:4433".parse()?, Config::default())?;
//! let client = Endpoint::bind("127.0.0.1:0".parse()?, Config::default())?;
//! let conn = client.connect(server.local_addr()).await?;
//! let mut out = conn.open_stream(None).await?;
//! out.write_all(b"hello over weir").await?;
//! out.shutdown().await?; // finishes the stream
//! let incoming = server.accept().await?;
//! let mut stream = incoming.accept_stream().await?;
//! let mut text = String::new();
//! stream.read_to_string(&mut text).await?;
//! assert_eq!(text, "hello over weir");
//! # Ok(())
//! # }
//! ```
//!
//! Cancellation: [`Endpoint::accept`], [`Connection::recv_message`],
//! [`Connection::accept_stream`] and every read of a [`RecvStream`] are cancel-safe (a
//! future dropped after its answer came gives the answer back for the next call); writes
//! through [`SendStream::write_chunk`] are not (an unknown prefix may have been written).
//!
//! Dropping an [`Endpoint`] starts a graceful shutdown in the background (the peers get a
//! bounded time to acknowledge what was written, then every connection is closed with a
//! CLOSE frame); [`Endpoint::close`] does the same and waits for it. `WEIR_TRACE=file`
//! records a replayable trace of the core endpoint (`{port}` becomes the local port).
// One registration of the socket with tokio needs `unsafe` (module `socket`, with its
// reason); nothing else may.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod run;
mod socket;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, Notify};
pub use weir_driver::{
    ApiError, CloseReason, Config, Confirm, CongestionAlgorithm, ConnectionStats, ControllerFactory,
    Delivery, Error, HandshakeError, Identity, Label, LedbatConfig, Negotiated, PeerPolicy, PipeStats,
    PublicKey, StreamHeader, StreamId, DEFAULT_MESSAGE_LIMIT,
};
use weir_driver::{Command, ConnId, Driver, Now, OpId, RecvState, Released, Reply, Returned};

/// A UDP socket driven by weir: connects out and accepts in.
pub struct Endpoint {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What the endpoint's handles and its driver task share.
struct Shared {
    /// Held for one call, or one step of the driver task, never across a system call or
    /// an await.
    driver: Mutex<Driver>,
    /// Wakes the driver task: a call left something to send, or an earlier deadline.
    wake: Notify,
    /// The driver task ended: calls fail at once.
    stopped: AtomicBool,
    local: SocketAddr,
    public_key: PublicKey,
}

impl Shared {
    fn driver(&self) -> MutexGuard<'_, Driver> {
        // A panic under the lock is a bug; the calls after it carry on with the driver as
        // the panic left it rather than each panicking in turn.
        self.driver.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `command` on the driver now, in the calling task; its answer, if the core has
    /// one at once, is sent before this returns.
    fn send(&self, command: Command) -> Result<(), Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        self.driver().command(command);
        self.wake.notify_one();
        Ok(())
    }

    /// Runs `f` on the driver now, in the calling task (a call tried at once), and wakes
    /// the driver task for what it left to send; `None` once the driver task ended.
    fn now<R>(&self, f: impl FnOnce(&mut Driver) -> R) -> Option<R> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let r = f(&mut self.driver());
        self.wake.notify_one();
        Some(r)
    }

    /// Starts the graceful shutdown (once; later calls change nothing).
    fn shutdown(&self) {
        self.driver().shutdown();
        self.wake.notify_one();
    }

    /// Runs the command `make` builds; the answer comes through the returned future (at
    /// once, if the core could answer it at once).
    fn call<T: Send + 'static>(
        self: &Arc<Self>,
        make: impl FnOnce(OpId, Reply<T>) -> Command,
        give_back: Option<GiveBack<T>>,
    ) -> Answer<T> {
        let (tx, rx) = oneshot::channel();
        let reply: Reply<T> = Box::new(move |v| tx.send(v));
        let op = OpId::next();
        let rx = self.send(make(op, reply)).ok().map(|()| rx);
        Answer {
            op,
            rx,
            shared: Arc::clone(self),
            give_back,
        }
    }

    fn release(&self, what: Released) {
        let _ = self.send(Command::Release(what));
    }
}

/// The answer to a call. Dropped before the answer came, it cancels the call; dropped
/// after the answer came but before it was taken, it gives the value back to the driver
/// (`give_back`) so the next call gets it.
struct Answer<T> {
    op: OpId,
    rx: Option<oneshot::Receiver<T>>,
    shared: Arc<Shared>,
    give_back: Option<GiveBack<T>>,
}

/// How an answer that came too late is handed back to the driver.
type GiveBack<T> = Box<dyn FnOnce(T) -> Option<Returned> + Send>;

impl<T> Future for Answer<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(Err(Error::Shutdown));
        };
        let v = ready!(Pin::new(rx).poll(cx));
        self.rx = None;
        Poll::Ready(v.map_err(|_| Error::Shutdown))
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            // After close() the driver's reply fails and it keeps the value itself; a value
            // that came before is handed back here.
            rx.close();
            match rx.try_recv() {
                Ok(v) => {
                    if let Some(r) = self.give_back.take().and_then(|g| g(v)) {
                        let _ = self.shared.send(Command::Return(r));
                    }
                }
                // Not answered yet: the driver stops waiting for it (a caller cancelling
                // in a loop must not leave a waiting call behind each time).
                Err(oneshot::error::TryRecvError::Empty) => {
                    let _ = self.shared.send(Command::Cancel(self.op));
                }
                Err(oneshot::error::TryRecvError::Closed) => {}
            }
        }
    }
}

impl Endpoint {
    /// Binds a UDP socket at `addr` (IPv4 or IPv6; port 0 picks one) with raised buffers
    /// ([`weir_driver::SOCKET_BUFFER`]) and spawns the driver task. Must be called within a
    /// tokio runtime.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Endpoint, Error> {
        let socket = weir_driver::bind_socket(addr)?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let driver = Driver::new(config, local);
        let shared = Arc::new(Shared {
            public_key: driver.public_key(),
            driver: Mutex::new(driver),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            local,
        });
        let task = tokio::spawn(run::run(Arc::clone(&shared), socket));
        Ok(Endpoint {
            shared,
            task: Some(task),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// This endpoint's public key: its identity, which clients name in
    /// [`connect_to`](Self::connect_to). Configured (`Config::identity`) or, if not, new with
    /// each endpoint.
    pub fn public_key(&self) -> PublicKey {
        self.shared.public_key
    }

    /// Connects to `remote`; ready once the handshake finished, or failed (within the
    /// configured handshake timeout) with [`Error::Handshake`].
    pub async fn connect(&self, remote: SocketAddr) -> Result<Connection, Error> {
        self.connect_with_key(remote, None, None).await
    }

    /// Like [`connect`](Self::connect), with a congestion controller of its own instead of
    /// the configured one: [`CongestionAlgorithm::Ledbat`] for a background transfer that
    /// should yield to the other connections, say.
    pub async fn connect_with(
        &self,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
    ) -> Result<Connection, Error> {
        self.connect_with_key(remote, None, Some(congestion)).await
    }

    /// Like [`connect`](Self::connect), to a server whose public key we know (a Noise IK
    /// handshake): fails with [`HandshakeError::ServerKeyMismatch`] if the server at
    /// `remote` does not hold it.
    pub async fn connect_to(&self, remote: SocketAddr, server: PublicKey) -> Result<Connection, Error> {
        self.connect_with_key(remote, Some(server), None).await
    }

    async fn connect_with_key(
        &self,
        remote: SocketAddr,
        server: Option<PublicKey>,
        congestion: Option<CongestionAlgorithm>,
    ) -> Result<Connection, Error> {
        let answer = self.shared.call(
            |op, reply| Command::Connect {
                op,
                remote,
                server,
                congestion,
                reply,
            },
            None,
        );
        Ok(self.connection(answer.await??))
    }

    /// The next client that connects. Cancel-safe.
    pub async fn accept(&self) -> Result<Connection, Error> {
        let answer = self.shared.call(
            |op, reply| Command::Accept { op, reply },
            Some(Box::new(|r: Result<_, Error>| r.ok().map(Returned::Connection))),
        );
        Ok(self.connection(answer.await??))
    }

    fn connection(&self, c: weir_driver::Connected) -> Connection {
        Connection {
            inner: Arc::new(ConnInner {
                shared: Arc::clone(&self.shared),
                id: c.id,
                negotiated: c.negotiated,
                peer: c.peer,
            }),
        }
    }

    /// Forwards `stream` (one the peer of its connection sends) to a new stream on each
    /// connection of `targets`, fragment by fragment as it arrives, with the same label
    /// and what is left of its total length; the relay never holds the whole stream
    /// (spec/protocol.md §8, Piping). Every connection must belong to this endpoint.
    /// Forwarding starts where reading stopped: bytes a read already fetched (a
    /// `read_chunk(n)` may fetch up to `n` bytes and hand them out over several calls) are
    /// the application's, not forwarded.
    pub async fn pipe(&self, mut stream: RecvStream, targets: &[&Connection]) -> Result<Pipe, Error> {
        let same = |c: &Arc<ConnInner>| Arc::ptr_eq(&c.shared, &self.shared);
        if !same(&stream.conn) || !targets.iter().all(|t| same(&t.inner)) {
            return Err(Error::WrongEndpoint);
        }
        let to: Vec<ConnId> = targets.iter().map(|t| t.inner.id).collect();
        let (from, id) = (stream.conn.id, stream.id);
        let answer = self.shared.call(
            |_, reply| Command::Pipe {
                from,
                stream: id,
                to,
                reply,
            },
            None,
        );
        let pipe = answer.await??;
        // The pipe owns the stream now: dropping the handle must not stop it.
        stream.state = RecvState::Done;
        Ok(Pipe {
            shared: Arc::clone(&self.shared),
            id: pipe,
        })
    }

    /// Shuts down gracefully and waits until done: the peers get up to a few seconds to
    /// acknowledge what was written, then every connection is closed with a CLOSE frame.
    pub async fn close(mut self) {
        self.shared.shutdown();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Endpoint {
    /// Starts the graceful shutdown; the driver task finishes it in the background.
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// One connection of an [`Endpoint`]. Clones are handles to the same connection; when the
/// last one is dropped the connection is closed (code 0) once the peer acknowledged what
/// was written.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
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

    /// Sends `data` as one message (a stream of its own, whose length the peer learns at
    /// once); ready once it was delivered: the final receiver, through any relays, read it
    /// all and said so ([`Confirm::Delivered`]; spec §8, Delivery). Fails with
    /// [`Error::NotDelivered`] if it was refused or a relay lost it, or with the
    /// connection's end if that came first. A message larger than the send buffer goes out
    /// in pieces as room frees up. [`send_message_with`](Self::send_message_with) waits
    /// less. Not cancel-safe: a message cancelled midway is reset.
    pub async fn send_message(&self, data: Bytes) -> Result<(), Error> {
        self.send_message_with(data, Confirm::Delivered).await
    }

    /// [`send_message`](Self::send_message), ready once the message got as far as `confirm`
    /// says: [`Confirm::Queued`] once the core took all of it (for a sender that pipelines
    /// many), [`Confirm::Acknowledged`] once the peer acknowledged every byte.
    pub async fn send_message_with(&self, data: Bytes, confirm: Confirm) -> Result<(), Error> {
        let conn = self.inner.id;
        // A call answered at once never yields by itself: the task's budget makes a loop
        // of them let the driver task run now and then.
        tokio::task::coop::consume_budget().await;
        let data = match confirm {
            Confirm::Queued => match self.inner.shared.now(|d| d.send_message_now(conn, None, data)) {
                None => return Err(Error::Shutdown),
                Some(Now::Done(r)) => return r,
                Some(Now::Wait((_, data))) => data,
            },
            _ => data,
        };
        let answer = self.inner.shared.call(
            |op, reply| Command::SendMessage {
                op,
                conn,
                label: None,
                data,
                confirm,
                reply,
            },
            None,
        );
        answer.await?
    }

    /// The next whole message: the first stream the peer opened that
    /// [`accept_stream`](Self::accept_stream) did not take to be complete. Messages longer
    /// than [`DEFAULT_MESSAGE_LIMIT`] are refused (their stream is stopped). Cancel-safe.
    pub async fn recv_message(&self) -> Result<Bytes, Error> {
        let conn = self.inner.id;
        tokio::task::coop::consume_budget().await;
        match self
            .inner
            .shared
            .now(|d| d.recv_message_now(conn, DEFAULT_MESSAGE_LIMIT))
        {
            None => return Err(Error::Shutdown),
            Some(Now::Done(r)) => return r,
            Some(Now::Wait(())) => {}
        }
        let answer = self.inner.shared.call(
            |op, reply| Command::RecvMessage {
                op,
                conn,
                limit: DEFAULT_MESSAGE_LIMIT,
                reply,
            },
            Some(Box::new(move |r: Result<_, Error>| {
                r.ok().map(|m| Returned::Message(conn, m))
            })),
        );
        answer.await?
    }

    /// Opens a stream to write to, with a protocol label (or none); pending while the peer
    /// allows no more streams.
    pub async fn open_stream(&self, label: Option<Label>) -> Result<SendStream, Error> {
        let mut header = StreamHeader::default();
        header.label = label;
        self.open_stream_with(header).await
    }

    /// [`open_stream`](Self::open_stream) with a full header: label, total length (the
    /// stream must then be exactly that long) and digest (checked by the final receiver).
    pub async fn open_stream_with(&self, header: StreamHeader) -> Result<SendStream, Error> {
        let conn = self.inner.id;
        let answer = self.inner.shared.call(
            |op, reply| Command::OpenStream {
                op,
                conn,
                header,
                reply,
            },
            None,
        );
        let id = answer.await??;
        Ok(SendStream {
            conn: Arc::clone(&self.inner),
            id,
            open: true,
            writing: None,
            finishing: None,
        })
    }

    /// The next stream the peer opens (in the order they were opened) that
    /// [`recv_message`](Self::recv_message) did not take. Cancel-safe.
    pub async fn accept_stream(&self) -> Result<RecvStream, Error> {
        let conn = self.inner.id;
        let answer = self.inner.shared.call(
            |op, reply| Command::AcceptStream { op, conn, reply },
            Some(Box::new(move |r: Result<_, Error>| {
                r.ok().map(|s| Returned::Stream(conn, s))
            })),
        );
        let (id, header) = answer.await??;
        Ok(RecvStream {
            conn: Arc::clone(&self.inner),
            id,
            header,
            reading: None,
            rest: VecDeque::new(),
            state: RecvState::New,
        })
    }

    /// Closes the connection with an application `code` and a `reason` for people (cut to
    /// 256 bytes); the peer is told both.
    pub async fn close(&self, code: u64, reason: &str) -> Result<(), Error> {
        let conn = self.inner.id;
        let reason = weir_driver::close_reason(reason);
        let answer = self.inner.shared.call(
            |_, reply| Command::Close {
                conn,
                code,
                reason,
                reply,
            },
            None,
        );
        answer.await?
    }

    /// The connection's counters: live while it is open; once it ended, the ones it closed
    /// with.
    pub async fn stats(&self) -> Option<ConnectionStats> {
        let conn = self.inner.id;
        let answer = self
            .inner
            .shared
            .call(|_, reply| Command::Stats { conn, reply }, None);
        answer.await.ok().flatten()
    }
}

type WriteAnswer = Answer<Result<usize, Error>>;
type DoneAnswer = Answer<Result<(), Error>>;

/// A stream this side writes. [`AsyncWrite`] copies each buffer once;
/// [`write_chunk`](Self::write_chunk) hands over a `Bytes` without copying.
/// `shutdown()` finishes the stream; dropping it unfinished finishes it too (or resets it,
/// if it announced a total length it did not reach).
pub struct SendStream {
    conn: Arc<ConnInner>,
    id: StreamId,
    open: bool,
    /// A write `poll_write` started and has not seen answered.
    writing: Option<WriteAnswer>,
    finishing: Option<DoneAnswer>,
}

impl SendStream {
    /// The stream's id on its connection.
    pub fn id(&self) -> StreamId {
        self.id
    }

    fn write_command(&self, data: Bytes) -> WriteAnswer {
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.call(
            |op, reply| Command::Write {
                op,
                conn,
                stream,
                data,
                reply,
            },
            None,
        )
    }

    /// Writes what fits of `data` (kept by reference until acknowledged, no copy); pending
    /// until at least one byte fits, then says how many did. Not cancel-safe.
    pub async fn write_chunk(&mut self, data: Bytes) -> Result<usize, Error> {
        self.write_command(data).await?
    }

    /// Writes all of `data`, waiting for room as often as needed. Not cancel-safe.
    pub async fn write_all_chunk(&mut self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let n = self.write_chunk(data.clone()).await?;
            let _ = data.split_to(n);
        }
        Ok(())
    }

    /// Ends the stream after what was written; ready once it was delivered: the final
    /// receiver, through any relays, read it all (and verified the digest, if one was
    /// attached) and said so ([`Confirm::Delivered`]; spec §8, Delivery). Fails with
    /// [`Error::NotDelivered`] if it was refused or a relay lost it, or with the
    /// connection's end if that came first. [`finish_with`](Self::finish_with) waits less.
    pub async fn finish(self) -> Result<(), Error> {
        self.finish_with(Confirm::Delivered).await
    }

    /// Ends the stream after what was written; ready once it got as far as `confirm` says
    /// ([`Confirm::Queued`]: at once).
    pub async fn finish_with(mut self, confirm: Confirm) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_finish(cx, confirm)).await
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>, confirm: Confirm) -> Poll<Result<(), Error>> {
        if !self.open && self.finishing.is_none() {
            return Poll::Ready(Ok(()));
        }
        if self.finishing.is_none() {
            let (conn, stream) = (self.conn.id, self.id);
            self.finishing = Some(self.conn.shared.call(
                |op, reply| Command::Finish {
                    op,
                    conn,
                    stream,
                    confirm,
                    reply,
                },
                None,
            ));
            self.open = false;
        }
        let finishing = self.finishing.as_mut().expect("set above");
        let r = ready!(Pin::new(finishing).poll(cx));
        self.finishing = None;
        Poll::Ready(r.and_then(|r| r))
    }

    /// Abandons the stream; the peer is told `code`.
    pub fn reset(mut self, code: u64) -> Result<(), Error> {
        self.open = false;
        let (conn, stream) = (self.conn.id, self.id);
        self.conn.shared.send(Command::ResetStream { conn, stream, code })
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.writing.is_none() {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            // The one copy of this path: the core keeps bytes by reference from here on.
            let answer = self.write_command(Bytes::copy_from_slice(buf));
            self.writing = Some(answer);
        }
        let writing = self.writing.as_mut().expect("set above");
        let r = ready!(Pin::new(writing).poll(cx));
        self.writing = None;
        Poll::Ready(r.and_then(|r| r).map_err(io::Error::from))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(writing) = self.writing.as_mut() {
            let r = ready!(Pin::new(writing).poll(cx));
            self.writing = None;
            r.and_then(|r| r).map_err(io::Error::from)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Ends the stream once the core took it, as a TCP socket's shutdown does: nothing is
    /// confirmed ([`SendStream::finish`] waits for the receipt).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.poll_finish(cx, Confirm::Queued).map_err(io::Error::from)
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

type ReadAnswer = Answer<Result<Option<Vec<Bytes>>, Error>>;

/// A stream the peer opened: [`AsyncRead`], a [`futures_core::Stream`] of chunks as they
/// become contiguous, or [`read_to_end`](Self::read_to_end). Dropping it before its end
/// tells the peer to stop sending.
pub struct RecvStream {
    conn: Arc<ConnInner>,
    id: StreamId,
    header: StreamHeader,
    /// A read asked of the driver and not answered yet (kept across cancelled calls).
    reading: Option<ReadAnswer>,
    /// Pieces a read fetched that its caller has not taken yet (a read fetches every piece
    /// there is, up to the caller's `max` in all, and hands them out one per call).
    rest: VecDeque<Bytes>,
    /// Read, held for the application's word on its delivery, or done.
    state: RecvState,
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

    /// The next contiguous bytes (at most `max`), as slices of the datagrams they came in;
    /// `None` once every byte was read. Cancel-safe.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, Error> {
        std::future::poll_fn(|cx| self.poll_chunk(cx, max)).await
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<Result<Option<Bytes>, Error>> {
        let max = max.max(1);
        if let Some(mut chunk) = self.rest.pop_front() {
            if chunk.len() > max {
                self.rest.push_front(chunk.split_off(max));
            }
            return Poll::Ready(Ok(Some(chunk)));
        }
        if !self.state.reading() {
            return Poll::Ready(Ok(None));
        }
        if self.reading.is_none() {
            let (conn, stream) = (self.conn.id, self.id);
            self.state = self.state.read_started();
            // A read answered at once spends the task's budget as a waiting one does when
            // its answer comes, so that a loop of them lets the driver task run now and then.
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            match self.conn.shared.now(|d| d.read_now(conn, stream, max)) {
                None => return Poll::Ready(Err(Error::Shutdown)),
                Some(Now::Done(r)) => {
                    coop.made_progress();
                    return self.took(cx, max, r);
                }
                Some(Now::Wait(())) => {}
            }
            self.reading = Some(self.conn.shared.call(
                |op, reply| Command::Read {
                    op,
                    conn,
                    stream,
                    max,
                    reply,
                },
                Some(Box::new(move |r: Result<Option<Vec<Bytes>>, Error>| {
                    r.ok().flatten().map(|c| Returned::Chunks(conn, stream, c))
                })),
            ));
        }
        let reading = self.reading.as_mut().expect("set above");
        let r = ready!(Pin::new(reading).poll(cx));
        self.reading = None;
        self.took(cx, max, r.and_then(|r| r))
    }

    /// What a read of the driver answered, handed out.
    fn took(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        r: Result<Option<Vec<Bytes>>, Error>,
    ) -> Poll<Result<Option<Bytes>, Error>> {
        match r {
            Ok(Some(chunks)) => {
                self.rest.extend(chunks);
                self.poll_chunk(cx, max)
            }
            Ok(None) => {
                self.state = self.state.at_end();
                Poll::Ready(Ok(None))
            }
            Err(e) => {
                if matches!(e, Error::Reset { .. } | Error::VerificationFailed { .. }) {
                    self.state = RecvState::Done;
                }
                Poll::Ready(Err(e))
            }
        }
    }

    /// Reads the whole stream; refuses (and stops the stream) past `limit` bytes.
    pub async fn read_to_end(&mut self, limit: u64) -> Result<Bytes, Error> {
        if self.total_len().is_some_and(|t| t > limit) {
            return Err(Error::Refused(ApiError::MessageTooLong));
        }
        let mut chunks = Vec::new();
        let mut len = 0u64;
        while let Some(chunk) = self.read_chunk(usize::MAX).await? {
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
        self.conn
            .shared
            .now(|d| d.defer_delivery(conn, stream))
            .unwrap_or(Err(Error::Shutdown))?;
        self.state = deferred;
        Ok(())
    }

    /// Tells the sender that this stream, deferred and read to its end, is delivered.
    /// [`ApiError::NothingToConfirm`] (as [`Error::Refused`]) if it was not deferred or its
    /// end was not read.
    pub fn confirm_delivery(mut self) -> Result<(), Error> {
        self.state = self.state.confirmed()?;
        let (conn, stream) = (self.conn.id, self.id);
        self.conn
            .shared
            .now(|d| d.confirm_delivery(conn, stream))
            .unwrap_or(Err(Error::Shutdown))
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

impl AsyncRead for RecvStream {
    /// Copies into `buf` (the chunk APIs hand out the received bytes without a copy).
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let max = buf.remaining();
        if let Some(chunk) = ready!(self.poll_chunk(cx, max)).map_err(io::Error::from)? {
            buf.put_slice(&chunk);
            // The other pieces that read fetched, as far as they fit: one call per read,
            // not one per datagram.
            while buf.remaining() > 0 {
                let Some(mut next) = self.rest.pop_front() else {
                    break;
                };
                if next.len() > buf.remaining() {
                    self.rest.push_front(next.split_off(buf.remaining()));
                }
                buf.put_slice(&next);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl futures_core::Stream for RecvStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.state.reading() && self.rest.is_empty() && self.reading.is_none() {
            return Poll::Ready(None);
        }
        ready!(self.poll_chunk(cx, usize::MAX)).transpose().into()
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
    /// Ready once every target acknowledged the whole stream, with the pipe's counters.
    pub async fn wait(&self) -> Result<PipeStats, Error> {
        let pipe = self.id;
        let answer = self
            .shared
            .call(|op, reply| Command::PipeDone { op, pipe, reply }, None);
        answer.await?
    }

    /// The pipe's counters so far (the last ones, once it ended).
    pub async fn stats(&self) -> Option<PipeStats> {
        let pipe = self.id;
        let answer = self
            .shared
            .call(|_, reply| Command::PipeStats { pipe, reply }, None);
        answer.await.ok().flatten()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.shared.release(Released::Pipe(self.id));
    }
}
