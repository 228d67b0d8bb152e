//! # weir-tokio
//!
//! weir over a real UDP socket on tokio. Each [`Endpoint`] holds the sans-IO core endpoint
//! (inside a [`weir_driver::Driver`]) behind a lock, and one driver task that owns the UDP
//! socket and one timer set to the core's next deadline. The handles run their calls on the
//! driver themselves, in the calling task (no task switch for a call the core can answer at
//! once: a loop of sends goes on until tokio's cooperative budget makes it yield, and the
//! driver task then sends what they wrote together); a call that must wait registers its
//! task's waker with the driver, which wakes it when what it waits for changes. Backpressure is a pending future, never an unbounded queue: a write
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
//! The handles ([`Connection`], [`SendStream`], [`RecvStream`], [`Pipe`], and the calls of
//! [`weir_driver::Endpoint`] this crate's [`Endpoint`] derefs to) are `weir-driver`'s, the
//! same for every runtime; this crate adds the driver task and tokio's `AsyncRead`,
//! `AsyncWrite` and `Stream` for the streams. Every call's future is cancel-safe: a poll
//! takes a value out of the core only when it returns it, so a future dropped before it was
//! ready loses nothing (each handle's documentation says what a dropped send or finish
//! leaves behind).
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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::sync::Notify;
/// An identity kept in a file across runs (weir-driver's `identity_file`).
pub use weir_driver::identity_file;
pub use weir_driver::{
    ApiError, ChannelError, ChannelReceiver, ChannelSender, CloseCode, CloseReason, Config, Confirm,
    CongestionAlgorithm, Connection, ConnectionStats, ControllerFactory, Delivery, EndpointLoad,
    EndpointStats, Error, HandshakeError, Identity, Label, LedbatConfig, Mapping, Negotiated, Path,
    PeerEvent, PeerPolicy, Pipe, PipeStats, Priority, PublicKey, RecvStream, Reflexive, RelayConfig,
    RelayRefusal, Reply, Request, RequestError, RequestOptions, Responder, SendStream, StreamHeader,
    StreamId, CHANNEL_REFUSED, DEFAULT_MESSAGE_LIMIT, DEFAULT_POOL_IDLE, REQUEST_CANCELLED, REQUEST_REFUSED,
    SLICE_WRITE_LIMIT,
};
use weir_driver::{Driver, Runtime, Shared, Urgency};

/// A UDP socket driven by weir: connects out and accepts in. Its calls (`connect`,
/// `accept`, `pipe`, ...) are [`weir_driver::Endpoint`]'s, which it derefs to.
pub struct Endpoint {
    inner: weir_driver::Endpoint,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What the handles tell tokio: a call left something to send (the driver task is woken),
/// and the task's cooperative budget.
struct Tokio {
    wake: Arc<Notify>,
    /// Reads, counted to let the driver task run every [`READS_PER_TURN`] of them.
    reads: AtomicU32,
}

/// How many reads a task makes before it lets the driver task run, so that the credit
/// they freed reaches the peer while the application reads on: a reader that took a whole
/// window's worth of messages before the driver task sent any credit would have its sender
/// wait out each window in turn.
const READS_PER_TURN: u32 = 64;

impl Runtime for Tokio {
    fn changed(&self, _: &mut Driver, _: Urgency) {
        self.wake.notify_one();
    }

    /// A call answered at once spends the task's budget as a waiting one does when it is
    /// woken, so that a loop of them lets the driver task run now and then; a reader also
    /// lets it run every [`READS_PER_TURN`] reads.
    fn poll_proceed(&self, cx: &mut Context<'_>, urgency: Urgency) -> Poll<()> {
        ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
        if urgency == Urgency::Soon
            && self.reads.fetch_add(1, Ordering::Relaxed) % READS_PER_TURN == READS_PER_TURN - 1
        {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
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
        let wake = Arc::new(Notify::new());
        let runtime = Tokio {
            wake: Arc::clone(&wake),
            reads: AtomicU32::new(0),
        };
        let shared = Shared::new(Driver::new(config, local), local, Box::new(runtime));
        let task = tokio::spawn(run::run(Arc::clone(&shared), wake, socket));
        Ok(Endpoint {
            inner: weir_driver::Endpoint::new(shared),
            task: Some(task),
        })
    }

    /// Shuts down gracefully and waits until done: the peers get up to a few seconds to
    /// acknowledge what was written, then every connection is closed with a CLOSE frame.
    /// (Dropping the endpoint starts the same in the background.)
    pub async fn close(mut self) {
        self.inner.shutdown();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl std::ops::Deref for Endpoint {
    type Target = weir_driver::Endpoint;

    fn deref(&self) -> &weir_driver::Endpoint {
        &self.inner
    }
}
