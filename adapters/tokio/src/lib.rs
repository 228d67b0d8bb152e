//! # weir-tokio
//!
//! weir over a real UDP socket on tokio. Each [`Endpoint`] holds the sans-IO core endpoint
//! (inside a [`weir_driver::Driver`]) behind a lock, and one driver task that drives the
//! UDP socket and one timer set to the core's next deadline. The handles run their calls on
//! the driver themselves, in the calling task (no task switch for a call the core can
//! answer at once: a loop of sends goes on until tokio's cooperative budget makes it yield,
//! and the driver task then sends what they wrote together); a call that must wait
//! registers its task's waker with the driver, which wakes it when what it waits for
//! changes, and first receives what the socket holds itself, so that the datagram it waits
//! for wakes its task directly (while calls do, the driver task stands by: module `io`).
//! Backpressure is a pending future, never an unbounded queue: a write
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
//! records a replayable trace of the core endpoint (`{port}` becomes the local port; without
//! it, an endpoint whose name another of the process records to adds `.PORT`).
// Registering the socket and the timer with tokio needs `unsafe` (modules `socket` and
// `alarm`, with their reasons); nothing else may.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod alarm;
mod io;
mod receive;
mod run;
mod socket;
mod timer;

use std::net::SocketAddr;
use std::num::NonZeroU8;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::sync::Notify;
/// An identity kept in a file across runs (weir-driver's `identity_file`).
pub use weir_driver::identity_file;
pub use weir_driver::{
    advise_huge_pages, ApiError, ChannelError, ChannelReceiver, ChannelSender, CloseCode, CloseReason,
    Config, Confirm, CongestionAlgorithm, Connection, ConnectionStats, ControllerFactory, Delivery,
    EndpointLoad, EndpointStats, Error, HandshakeError, Identity, Label, LedbatConfig, Mapping, Negotiated,
    Path, PeerEvent, PeerPolicy, Pipe, PipeFailure, PipeStats, Priority, PublicKey, RecvStream, Reflexive,
    RelayConfig, RelayRefusal, Reply, Request, RequestError, RequestOptions, Responder, SendStream,
    StreamHeader, StreamId, CHANNEL_REFUSED, DEFAULT_MESSAGE_LIMIT, DEFAULT_POOL_IDLE, REQUEST_CANCELLED,
    REQUEST_REFUSED, SLICE_WRITE_LIMIT,
};
use weir_driver::{CallId, Driver, Router, Runtime, Shared, Urgency};

use io::{Change, Io};

/// A UDP socket driven by weir: connects out and accepts in. Its calls (`connect`,
/// `accept`, `pipe`, ...) are [`weir_driver::Endpoint`]'s, which it derefs to.
pub struct Endpoint {
    inner: weir_driver::Endpoint,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What the handles tell tokio: a call left something to send (the driver task is woken),
/// the task's cooperative budget, and a waiting call's receive (module `receive`).
struct Tokio {
    wake: Arc<Notify>,
    /// The socket, and the reads since a call last sent (`Io::reads`), counted to let the
    /// driver task run every [`READS_PER_TURN`] of them.
    io: Arc<Io>,
}

/// How many reads calls make without a send before one lets the driver task run, so that
/// the credit they freed reaches the peer while the application reads on: a reader that
/// took a whole window's worth of messages before the driver task sent any credit would
/// have its sender wait out each window in turn. A send starts the count again: it wakes
/// the driver task, whose send carries that credit. (Counted in all, every 64th round trip
/// of weir-bench's `rtt` yielded on the server's read right after its answer went, and
/// took 12 to 30 µs longer: the round trip's p99 was 1.8 to 2.2 times its p50.)
const READS_PER_TURN: u32 = 64;

impl Runtime for Tokio {
    fn changed(&self, driver: &mut Driver, urgency: Urgency) {
        if urgency == Urgency::Now {
            self.io.reads.store(0, Ordering::Relaxed);
        }
        if self.io.changed(driver, Change::Call(urgency)) {
            self.wake.notify_one();
        }
    }

    fn received(&self, driver: &mut Driver) {
        if self.io.changed(driver, Change::Received) {
            self.wake.notify_one();
        }
    }

    /// A call answered at once spends the task's budget as a waiting one does when it is
    /// woken, so that a loop of them lets the driver task run now and then; a reader also
    /// lets it run every [`READS_PER_TURN`] reads made without a send.
    fn poll_proceed(&self, cx: &mut Context<'_>, urgency: Urgency) -> Poll<()> {
        ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
        if urgency == Urgency::Soon && self.io.reads.fetch_add(1, Ordering::Relaxed) >= READS_PER_TURN - 1 {
            self.io.reads.store(0, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    fn poll_wait(&self, shared: &Shared, cx: &mut Context<'_>, call: Option<CallId>) -> Poll<()> {
        self.io.poll_wait(shared, &self.wake, cx, call)
    }

    fn receive_first(&self, shared: &Shared, cx: &mut Context<'_>, call: Option<CallId>) -> bool {
        self.io.receive_first(shared, cx, call)
    }

    fn call_ready(&self, cx: &Context<'_>, others_wait: bool) {
        if self.io.call_ready(cx.waker(), others_wait) {
            self.wake.notify_one();
        }
    }

    fn stops_receiving(&self, cx: &Context<'_>) {
        if self.io.call_stops_receiving(cx.waker()) {
            self.wake.notify_one();
        }
    }
}

impl Endpoint {
    /// Binds a UDP socket at `addr` (IPv4 or IPv6; port 0 picks one) with raised buffers
    /// ([`weir_driver::SOCKET_BUFFER`]) and spawns the driver task. Must be called within a
    /// tokio runtime.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Endpoint, Error> {
        let socket = weir_driver::bind_socket(addr)?;
        Ok(spawn(prepare(socket, config, true)?, None))
    }

    /// One endpoint in `shards` shards on one address, each with a socket (`SO_REUSEPORT`),
    /// a core endpoint and a driver task of its own, so that its connections spread over
    /// the runtime's threads: what one endpoint does on one core, `shards` of them do on as
    /// many (spec §3.3, routing among shards). Unix only; elsewhere more than one shard is
    /// an [`Error::Io`] of kind `Unsupported`. Must be called within a tokio runtime.
    ///
    /// Each shard is an [`Endpoint`] of its own: accept on each (a task per shard), and
    /// spread connects over them. The operating system hands a peer's datagrams to one
    /// shard by their addresses; one that reaches a shard other than its connection's (the
    /// answers to a connection a shard opened, say) is handed to the right one by its
    /// connection id. All shards have one identity (the configured one, or one new one),
    /// and each holds the config's limits on its own. A shard's trace
    /// (`WEIR_TRACE`) goes to the file's name with `.0`, `.1`, ... added.
    ///
    /// A shard dropped or closed stops, and a peer of its connections that arrives at
    /// another shard is not taken up there: drop or close them together.
    pub fn bind_sharded(addr: SocketAddr, config: Config, shards: NonZeroU8) -> Result<Vec<Endpoint>, Error> {
        let sockets = weir_driver::bind_sockets(addr, shards.get().into())?;
        let prepared = sockets
            .into_iter()
            .zip(weir_driver::shard_configs(config, shards))
            .map(|(socket, config)| prepare(socket, config, false))
            .collect::<Result<Vec<_>, Error>>()?;
        let router = Router::new(prepared.iter().map(|p| Arc::clone(&p.shared)).collect());
        Ok(prepared
            .into_iter()
            .enumerate()
            .map(|(i, p)| spawn(p, Some((i, Arc::clone(&router)))))
            .collect())
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

/// An endpoint ready for its driver task: its driver, what wakes the task, and its socket.
struct Prepared {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    io: Arc<Io>,
}

/// The driver of an endpoint whose socket is `socket`, registered with the current
/// runtime; its calls may receive unless it is a shard (module `io`).
fn prepare(socket: std::net::UdpSocket, config: Config, calls_may_receive: bool) -> Result<Prepared, Error> {
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let io = Arc::new(Io::new(socket, calls_may_receive)?);
    let wake = Arc::new(Notify::new());
    let runtime = Tokio {
        wake: Arc::clone(&wake),
        io: Arc::clone(&io),
    };
    Ok(Prepared {
        shared: Shared::new(Driver::new(config, local), local, Box::new(runtime)),
        wake,
        io,
    })
}

/// Spawns the driver task of a [`prepare`]d endpoint.
fn spawn(p: Prepared, shard: run::Shard) -> Endpoint {
    let task = tokio::spawn(run::run(Arc::clone(&p.shared), p.wake, p.io, shard));
    Endpoint {
        inner: weir_driver::Endpoint::new(p.shared),
        task: Some(task),
    }
}

impl std::ops::Deref for Endpoint {
    type Target = weir_driver::Endpoint;

    fn deref(&self) -> &weir_driver::Endpoint {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The handles' side of an endpoint's runtime, with the runtime its socket is
    /// registered with (entered only for that: the calls' polls below run outside any
    /// task, where tokio's cooperative budget does not count them).
    fn runtime() -> (tokio::runtime::Runtime, Tokio) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let io = {
            let _entered = rt.enter();
            Arc::new(Io::new(socket, true).unwrap())
        };
        let tokio = Tokio {
            wake: Arc::new(Notify::new()),
            io,
        };
        (rt, tokio)
    }

    /// How many of `n` reads' polls went on at once.
    fn reads(rt: &Tokio, cx: &mut Context<'_>, n: u32) -> u32 {
        (0..n)
            .map(|_| u32::from(rt.poll_proceed(cx, Urgency::Soon).is_ready()))
            .sum()
    }

    #[test]
    fn a_task_that_only_reads_lets_the_driver_task_run_every_64_reads() {
        let ((_runtime, rt), woken) = (runtime(), Arc::new(Count(AtomicUsize::new(0))));
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(reads(&rt, &mut cx, READS_PER_TURN - 1), READS_PER_TURN - 1);
        assert!(rt.poll_proceed(&mut cx, Urgency::Soon).is_pending());
        assert_eq!(woken.0.load(Ordering::Relaxed), 1, "woken to go on at once");
        assert_eq!(reads(&rt, &mut cx, READS_PER_TURN - 1), READS_PER_TURN - 1);
        // Sends are not counted.
        assert!(rt.poll_proceed(&mut cx, Urgency::Now).is_ready());
        assert!(rt.poll_proceed(&mut cx, Urgency::Soon).is_pending());
    }

    /// A task that answers what it reads (weir-bench's `rtt` server) never yields on a read:
    /// its sends wake the driver task anyway. Counted in all, every 64th round trip yielded
    /// on the read right after the answer and took 12 to 30 µs longer.
    #[test]
    fn a_send_starts_the_count_of_reads_again() {
        let (_runtime, rt) = runtime();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let mut driver = Driver::new(Config::default(), "127.0.0.1:1".parse().unwrap());
        for _ in 0..10 {
            assert_eq!(reads(&rt, &mut cx, READS_PER_TURN - 1), READS_PER_TURN - 1);
            rt.changed(&mut driver, Urgency::Now);
        }
        // A read's own credit (`Urgency::Soon`) does not start it again.
        assert_eq!(reads(&rt, &mut cx, READS_PER_TURN - 1), READS_PER_TURN - 1);
        rt.changed(&mut driver, Urgency::Soon);
        assert!(rt.poll_proceed(&mut cx, Urgency::Soon).is_pending());
    }
}
