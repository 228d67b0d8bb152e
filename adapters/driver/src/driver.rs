//! The driver: the core endpoint and every application call waiting on it.
//!
//! Inputs: datagrams, timer expiries and [`Command`]s. Outputs: datagrams to send, answers
//! to the commands, and `tracing` events (connections opened and closed, handshake
//! failures, resets). After each input the core's events are read once, the connections
//! they name are marked, and every call waiting on a marked connection is tried again, in
//! the order the calls came. A waiting call holds no bytes beyond its own arguments: what
//! the peer sends stays in the core, under flow control, until a read takes it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;
use weir_core::time::Instant;
use weir_core::wire::{Label, Reason, StreamId};
use weir_core::{
    ApiError, CloseReason, Config, ConnectionHandle, Delivery, Event, HandshakeError, LocalRead, Negotiated,
    PipeFailure, PipeId, PipeStats, Read, StreamHeader, Transmit,
};

use crate::{
    Command, Confirm, ConnId, Connected, Error, Incoming, Now, OpId, Released, Reply, Returned,
    DEFAULT_MESSAGE_LIMIT,
};

/// Receipts a connection keeps for a `finish` that comes after them (`Conn::recent`).
const RECENT_RECEIPTS: usize = 64;
/// How long a shutting-down driver waits for the peers to acknowledge what was written.
const DRAIN_LIMIT: StdDuration = StdDuration::from_secs(3);
/// How long it then waits for the connections to end: the core's close lingers up to 3 s
/// (or three PTOs) for its last acknowledgements and receipts, then answers stragglers with
/// CLOSE for three PTOs (spec §8, Liveness and close).
const CLOSE_LIMIT: StdDuration = StdDuration::from_secs(4);
/// The environment variable naming the file a trace is recorded to (spec/trace.md).
pub const TRACE_ENV: &str = "WEIR_TRACE";

/// The core endpoint, the connections its handles know, and the calls waiting on it. See
/// the crate documentation for how an adapter drives it.
pub struct Driver {
    ep: weir_core::Endpoint,
    started: StdInstant,
    conns: BTreeMap<ConnId, Conn>,
    by_handle: BTreeMap<ConnectionHandle, ConnId>,
    next_conn: u64,
    /// Connections clients opened that no accept took yet.
    accepted: VecDeque<Connected>,
    waiting: BTreeMap<OpId, Waiter>,
    /// Connections whose state changed since their waiting calls were last tried.
    dirty: BTreeSet<ConnId>,
    pipes: BTreeMap<PipeId, PipeRecord>,
    shutdown: Option<Shutdown>,
    trace: Option<std::io::BufWriter<std::fs::File>>,
}

/// What the driver knows of one connection beyond the core.
#[derive(Default)]
struct Conn {
    /// The core's handle; `None` once the connection is gone from the core.
    handle: Option<ConnectionHandle>,
    negotiated: Option<Negotiated>,
    peer: Option<weir_core::PublicKey>,
    ended: Option<Ended>,
    /// The counters as the connection closed (from `Event::Closed`), for `Stats` once the
    /// core forgot it.
    last_stats: Option<weir_core::ConnectionStats>,
    /// Streams the peer opened that no call took yet, in the order they opened.
    opened: StreamQueue<StreamHeader>,
    /// Streams a message read began to gather (no longer offered to `accept_stream`).
    gathering: BTreeSet<StreamId>,
    /// Untaken streams with something new to read, in the order they became readable.
    readable: StreamQueue<()>,
    /// Bytes taken out of the core and not delivered yet: given back by a call that gave
    /// up, or saved when the connection closed.
    held: BTreeMap<StreamId, Held>,
    /// Streams the peer opened that `accept_stream` handed out and are still being read.
    taken: BTreeSet<StreamId>,
    /// Whole messages given back by calls that gave up, for the next `recv_message`.
    messages: VecDeque<Bytes>,
    /// Our streams the peer stopped, with its code.
    stopped: BTreeMap<StreamId, u64>,
    /// Our streams a call waits to see confirmed ([`Confirm`]), and how far each got:
    /// `None` until every byte is acknowledged, then `Some(None)`, then the receipt.
    /// Only streams a call waits on are kept.
    confirming: BTreeMap<StreamId, Option<Option<Delivery>>>,
    /// The latest receipts no call waited for (at most [`RECENT_RECEIPTS`]): a stream of
    /// announced length can be read to its end, and its receipt come, before the
    /// application finishes it; that `finish` then finds its answer here, even once the
    /// core forgot the stream or the connection ended.
    recent: VecDeque<(StreamId, Delivery)>,
    /// No application handle is left: forget the connection once it ended.
    released: bool,
    /// Calls on this connection waiting in [`Driver::waiting`]: while there are any, a call
    /// tried at once (`send_message_now` and the like) waits its turn behind them.
    waiters: usize,
}

impl Conn {
    /// `stream` is no longer one to accept.
    fn forget_opened(&mut self, stream: StreamId) {
        self.opened.remove(stream);
    }
}

/// Streams in the order they came, which also says whether a stream is among them without a
/// long walk: a connection's queues hold up to as many streams as its peer may open at once,
/// and every datagram that arrives asks about the streams it carries. A short queue is
/// searched (cheaper than a set's upkeep for the few streams a connection usually has); past
/// [`StreamQueue::INDEXED`] streams a set of its members is kept too, until it empties.
struct StreamQueue<T> {
    order: VecDeque<(StreamId, T)>,
    members: Option<BTreeSet<StreamId>>,
}

impl<T> Default for StreamQueue<T> {
    fn default() -> Self {
        StreamQueue {
            order: VecDeque::new(),
            members: None,
        }
    }
}

impl<T> StreamQueue<T> {
    /// Queued streams past which membership is looked up in a set.
    const INDEXED: usize = 32;

    fn contains(&self, stream: StreamId) -> bool {
        match &self.members {
            Some(m) => m.contains(&stream),
            None => self.order.iter().any(|(s, _)| *s == stream),
        }
    }

    fn front_id(&self) -> Option<StreamId> {
        self.order.front().map(|(s, _)| *s)
    }

    fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.order.iter().map(|(s, _)| *s)
    }

    /// Queues `stream` last, unless it is queued already.
    fn push_back(&mut self, stream: StreamId, value: T) {
        if self.admit(stream) {
            self.order.push_back((stream, value));
        }
    }

    /// Queues `stream` first, unless it is queued already.
    fn push_front(&mut self, stream: StreamId, value: T) {
        if self.admit(stream) {
            self.order.push_front((stream, value));
        }
    }

    /// Whether `stream` is new here; counts it in the set (made once the queue is long).
    fn admit(&mut self, stream: StreamId) -> bool {
        if self.members.is_none() {
            if self.contains(stream) {
                return false;
            }
            if self.order.len() < Self::INDEXED {
                return true;
            }
            self.members = Some(self.ids().collect());
        }
        self.members.as_mut().is_some_and(|m| m.insert(stream))
    }

    fn pop_front(&mut self) -> Option<(StreamId, T)> {
        let first = self.order.pop_front()?;
        self.forget(first.0);
        Some(first)
    }

    /// Takes `stream` out. Streams are mostly taken in the order they came, so it is nearly
    /// always the first; only one that is queued and not first costs a walk (and, in a long
    /// queue, one that is not queued costs none).
    fn remove(&mut self, stream: StreamId) -> Option<(StreamId, T)> {
        if self.front_id() == Some(stream) {
            return self.pop_front();
        }
        if self.members.as_ref().is_some_and(|m| !m.contains(&stream)) {
            return None;
        }
        let i = self.order.iter().position(|(s, _)| *s == stream)?;
        let taken = self.order.remove(i);
        self.forget(stream);
        taken
    }

    fn forget(&mut self, stream: StreamId) {
        if let Some(m) = self.members.as_mut() {
            m.remove(&stream);
            if m.is_empty() {
                self.members = None;
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(StreamId) -> bool) {
        self.order.retain(|(s, _)| keep(*s));
        if self.members.is_some() {
            self.members = (!self.order.is_empty()).then(|| self.ids().collect());
        }
    }

    fn clear(&mut self) {
        self.order.clear();
        self.members = None;
    }
}

#[derive(Default)]
struct Held {
    chunks: VecDeque<Bytes>,
    /// Every byte of the stream is in `chunks`.
    finished: bool,
    /// How the stream failed after `chunks` (a reset, a digest that did not match): told
    /// once they are read.
    failed: Option<Error>,
}

#[derive(Clone, Debug)]
enum Ended {
    Closed(CloseReason),
    Handshake(HandshakeError),
}

impl Ended {
    fn error(&self) -> Error {
        match self {
            Ended::Closed(r) => Error::Closed(r.clone()),
            Ended::Handshake(h) => Error::Handshake(h.clone()),
        }
    }
}

struct PipeRecord {
    stats: PipeStats,
    result: Option<Result<(), PipeFailure>>,
    released: bool,
}

/// A shutdown in progress: first the peers acknowledge what was written, then the
/// connections close.
struct Shutdown {
    drain_until: StdInstant,
    close_until: Option<StdInstant>,
}

/// A call that could not be answered at once.
enum Waiter {
    Connect {
        conn: ConnId,
        reply: Reply<Result<Connected, Error>>,
    },
    Accept {
        reply: Reply<Result<Connected, Error>>,
    },
    Send {
        conn: ConnId,
        label: Option<Label>,
        data: Bytes,
        /// A message larger than the send buffer goes as a stream written piece by piece.
        stream: Option<StreamId>,
        confirm: Confirm,
        reply: Reply<Result<(), Error>>,
    },
    /// A message sent or a stream finished, waiting to be confirmed as far as `until`.
    Confirm {
        conn: ConnId,
        stream: StreamId,
        until: Confirm,
        reply: Reply<Result<(), Error>>,
    },
    Recv {
        conn: ConnId,
        limit: u64,
        reply: Reply<Result<Bytes, Error>>,
    },
    Open {
        conn: ConnId,
        header: StreamHeader,
        reply: Reply<Result<StreamId, Error>>,
    },
    Write {
        conn: ConnId,
        stream: StreamId,
        data: Bytes,
        reply: Reply<Result<usize, Error>>,
    },
    AcceptStream {
        conn: ConnId,
        reply: Reply<Result<Incoming, Error>>,
    },
    Read {
        conn: ConnId,
        stream: StreamId,
        max: usize,
        reply: Reply<Result<Option<Vec<Bytes>>, Error>>,
    },
    PipeDone {
        pipe: PipeId,
        reply: Reply<Result<PipeStats, Error>>,
    },
}

impl Waiter {
    /// The connection whose changes may let this call finish.
    fn conn(&self) -> Option<ConnId> {
        match self {
            Waiter::Connect { conn, .. }
            | Waiter::Send { conn, .. }
            | Waiter::Confirm { conn, .. }
            | Waiter::Recv { conn, .. }
            | Waiter::Open { conn, .. }
            | Waiter::Write { conn, .. }
            | Waiter::AcceptStream { conn, .. }
            | Waiter::Read { conn, .. } => Some(*conn),
            Waiter::Accept { .. } | Waiter::PipeDone { .. } => None,
        }
    }

    /// Answers the call with `e`.
    fn fail(self, e: Error) {
        // Nothing to keep from an error that cannot be delivered.
        macro_rules! fail {
            ($reply:expr) => {{
                let _ = $reply(Err(e));
            }};
        }
        match self {
            Waiter::Connect { reply, .. } | Waiter::Accept { reply } => fail!(reply),
            Waiter::Send { reply, .. } | Waiter::Confirm { reply, .. } => fail!(reply),
            Waiter::Recv { reply, .. } => fail!(reply),
            Waiter::Open { reply, .. } => fail!(reply),
            Waiter::Write { reply, .. } => fail!(reply),
            Waiter::AcceptStream { reply, .. } => fail!(reply),
            Waiter::Read { reply, .. } => fail!(reply),
            Waiter::PipeDone { reply, .. } => fail!(reply),
        }
    }
}

/// Calls that must keep their order: a later one waits while an earlier one does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Queue {
    Send(ConnId),
    Write(ConnId, StreamId),
    Read(ConnId, StreamId),
}

/// What trying a waiting call came to.
enum Step<W> {
    Done,
    Wait(W),
}

/// 32 bytes from the operating system's generator; should it fail (no such generator on
/// this platform), the process's hash keys, the port and the clock, hashed: unpredictable
/// enough to keep endpoints apart, not enough for secrets.
fn os_seed(local: SocketAddr) -> weir_core::Seed {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_ok() {
        return weir_core::Seed::from_bytes(bytes);
    }
    tracing::warn!("no operating-system randomness: the endpoint's keys are guessable");
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u16(local.port());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    weir_core::Seed::from(h.finish())
}

impl Driver {
    /// A driver for an endpoint whose socket is bound at `local`. The seed is 32 bytes from
    /// the operating system's generator: the root of the endpoint's RETRY token keys (and of
    /// its identity, if the config names none), so it must be secret; 32 more are mixed in
    /// as fresh entropy (`Endpoint::add_entropy`), so that ephemeral keys do not follow from
    /// the seed alone. If the environment variable `WEIR_TRACE` names a file, everything the
    /// core endpoint is given and gives back is recorded there as a replayable trace
    /// (spec/trace.md), which holds no secret; the seed, the identity's key and the fresh
    /// entropy go to the same name with `.secrets` added, which the replayer takes apart.
    /// Both are created readable by their owner only; `{port}` in the name is replaced by
    /// the local port, so that several endpoints can record at once.
    pub fn new(config: Config, local: SocketAddr) -> Driver {
        let seed = os_seed(local);
        let trace_path = std::env::var_os(TRACE_ENV).map(|path| {
            path.to_string_lossy()
                .replace("{port}", &local.port().to_string())
        });
        let trace =
            trace_path.as_ref().and_then(
                |path| match crate::create_trace_file(std::path::Path::new(path)) {
                    Ok(f) => Some(std::io::BufWriter::new(f)),
                    Err(e) => {
                        tracing::warn!(%path, %e, "cannot record the trace");
                        None
                    }
                },
            );
        let mut ep = if trace.is_some() {
            weir_core::Endpoint::new_traced(config, seed)
        } else {
            weir_core::Endpoint::new(config, seed)
        };
        // Fresh bytes apart from the seed: the ephemeral keys, connection ids and packet
        // numbers left out then owe nothing to the seed alone (forward secrecy, spec §11.1).
        let mut fresh = [0u8; 32];
        if getrandom::fill(&mut fresh).is_ok() {
            ep.add_entropy(&fresh);
        }
        if let (Some(path), Some(secrets)) = (trace_path.filter(|_| trace.is_some()), ep.trace_secrets()) {
            // The trace records no secret; the replayer takes them from here (spec/trace.md).
            let path = crate::secrets_path(std::path::Path::new(&path));
            let written = crate::create_trace_file(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, secrets.to_text().as_bytes()));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), %e, "cannot write the trace's secrets");
            }
        }
        Driver {
            ep,
            started: StdInstant::now(),
            conns: BTreeMap::new(),
            by_handle: BTreeMap::new(),
            next_conn: 0,
            accepted: VecDeque::new(),
            waiting: BTreeMap::new(),
            dirty: BTreeSet::new(),
            pipes: BTreeMap::new(),
            shutdown: None,
            trace,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.started.elapsed().as_micros() as u64)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn deadline(&self) -> Option<StdInstant> {
        let mut at = self
            .ep
            .poll_timeout()
            .map(|t| self.started + StdDuration::from_micros(t.as_micros()));
        if let Some(s) = &self.shutdown {
            let limit = s.close_until.unwrap_or(s.drain_until);
            at = Some(at.map_or(limit, |t| t.min(limit)));
        }
        at
    }

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, datagram: BytesMut) {
        let now = self.now();
        self.ep.handle_datagram(now, from, datagram);
        self.progress();
    }

    /// One receive's worth from `from`: datagrams of `stride` bytes back to back, the last
    /// possibly shorter (a GRO batch; one datagram when `stride` is its length or 0). Each
    /// goes to the core as a view of `received`, uncopied; the waiting calls are answered
    /// once, after all of them.
    pub fn handle_received(&mut self, from: SocketAddr, received: BytesMut, stride: usize) {
        let now = self.now();
        for datagram in crate::io::datagrams(received, stride) {
            self.ep.handle_datagram(now, from, datagram);
        }
        self.progress();
    }

    /// Fires the core's timers that are due.
    pub fn handle_timeout(&mut self) {
        let now = self.now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        self.progress();
    }

    /// The next datagram to send, written into `buf` (at least
    /// [`MAX_DATAGRAM_SIZE`](weir_core::wire::MAX_DATAGRAM_SIZE) bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let now = self.now();
        self.ep.poll_transmit(now, buf)
    }

    /// This endpoint's public key: its identity, which clients name in `connect_to`.
    pub fn public_key(&self) -> weir_core::PublicKey {
        self.ep.public_key()
    }

    /// The core endpoint's counters.
    pub fn stats(&self) -> weir_core::EndpointStats {
        self.ep.stats()
    }

    /// An application call.
    pub fn command(&mut self, command: Command) {
        if self.shutdown.is_some() {
            // Handles letting go still count; new calls do not.
            match command {
                Command::Release(r) => self.release(r),
                Command::Cancel(op) => self.cancel(op),
                Command::Return(_) => {}
                c => refuse(c),
            }
            return;
        }
        // Only connecting and closing need the time: the clock is not read for the rest.
        match command {
            Command::Connect {
                op,
                remote,
                server,
                congestion,
                reply,
            } => match match (server, congestion) {
                (Some(key), Some(cc)) => self.ep.connect_to_with(self.now(), remote, key, cc),
                (Some(key), None) => self.ep.connect_to(self.now(), remote, key),
                (None, Some(cc)) => self.ep.connect_with(self.now(), remote, cc),
                (None, None) => self.ep.connect(self.now(), remote),
            } {
                Ok(h) => {
                    let conn = self.register(h);
                    self.wait(op, Waiter::Connect { conn, reply });
                }
                Err(e) => {
                    let _ = reply(Err(Error::Refused(e)));
                }
            },
            Command::Accept { op, reply } => self.wait(op, Waiter::Accept { reply }),
            Command::SendMessage {
                op,
                conn,
                label,
                data,
                confirm,
                reply,
            } => self.wait(
                op,
                Waiter::Send {
                    conn,
                    label,
                    data,
                    stream: None,
                    confirm,
                    reply,
                },
            ),
            Command::RecvMessage {
                op,
                conn,
                limit,
                reply,
            } => self.wait(op, Waiter::Recv { conn, limit, reply }),
            Command::OpenStream {
                op,
                conn,
                header,
                reply,
            } => self.wait(op, Waiter::Open { conn, header, reply }),
            Command::Write {
                op,
                conn,
                stream,
                data,
                reply,
            } => self.wait(
                op,
                Waiter::Write {
                    conn,
                    stream,
                    data,
                    reply,
                },
            ),
            Command::AcceptStream { op, conn, reply } => self.wait(op, Waiter::AcceptStream { conn, reply }),
            Command::Read {
                op,
                conn,
                stream,
                max,
                reply,
            } => self.wait(
                op,
                Waiter::Read {
                    conn,
                    stream,
                    max: max.max(1),
                    reply,
                },
            ),
            Command::Finish {
                op,
                conn,
                stream,
                confirm,
                reply,
            } => {
                let finished = self.on_conn(conn, |ep, h| ep.finish(h, stream));
                match (finished, self.receipt_came(conn, stream)) {
                    // The receipt came before the finish: the announced length was read.
                    (Err(_), Some(delivery)) if confirm != Confirm::Queued => {
                        let _ = reply(match delivery {
                            Delivery::Delivered { .. } => Ok(()),
                            failed => Err(Error::NotDelivered(failed)),
                        });
                    }
                    (Err(e), _) => {
                        let _ = reply(Err(self.error(conn, Some(stream), e)));
                    }
                    (Ok(()), _) if confirm == Confirm::Queued => {
                        let _ = reply(Ok(()));
                    }
                    (Ok(()), _) => self.confirm(op, conn, stream, confirm, reply),
                }
            }
            Command::ResetStream { conn, stream, code } => {
                let _ = self.on_conn(conn, |ep, h| ep.reset_stream(h, stream, code));
            }
            Command::StopSending { conn, stream, code } => {
                self.forget_stream(conn, stream);
                let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, code));
            }
            Command::Pipe {
                from,
                stream,
                to,
                reply,
            } => {
                let _ = reply(self.pipe(from, stream, &to));
            }
            Command::PipeDone { op, pipe, reply } => self.wait(op, Waiter::PipeDone { pipe, reply }),
            Command::PipeStats { pipe, reply } => {
                let _ = reply(self.pipes.get(&pipe).map(|p| p.stats));
            }
            Command::Close {
                conn,
                code,
                reason,
                reply,
            } => {
                let now = self.now();
                let r = self.on_conn(conn, |ep, h| ep.close(now, h, code, reason));
                let _ = reply(r.map_err(|e| self.error(conn, None, e)));
            }
            Command::Stats { conn, reply } => {
                let handle = self.conns.get(&conn).and_then(|c| c.handle);
                let live = handle.and_then(|h| self.ep.connection_stats(h));
                let last = self.conns.get(&conn).and_then(|c| c.last_stats);
                let _ = reply(live.or(last));
            }
            Command::Cancel(op) => self.cancel(op),
            Command::Release(r) => self.release(r),
            Command::Return(r) => self.restore(r),
        }
        self.progress();
    }

    // The calls below answer at once, without a reply channel, when they can: the common
    // case of a send with room and a receive with data already there costs no allocation,
    // no waiting-call bookkeeping and no wake-up. When one would have to wait (or a call
    // on the same connection already waits, which it must not overtake), it gives its
    // arguments back and the caller sends the matching `Command`, which waits.

    /// [`Command::SendMessage`], at once: [`Now::Done`] once the core took the whole message
    /// (or refused it), [`Now::Wait`] with the arguments back if the call has to wait (the
    /// send buffer or the peer's stream limit is full, or the message is larger than the
    /// send buffer and goes in pieces).
    pub fn send_message_now(
        &mut self,
        conn: ConnId,
        label: Option<Label>,
        data: Bytes,
    ) -> Now<Result<(), Error>, (Option<Label>, Bytes)> {
        if !self.may_try_now(conn) || data.len() as u64 > self.ep.config().send_buffer {
            return Now::Wait((label, data));
        }
        let r = self.on_conn(conn, |ep, h| ep.send_message(h, label.clone(), data.clone()));
        let answer = match r {
            Ok(_) => Ok(()),
            Err(ApiError::WouldBlock | ApiError::StreamLimit) => return Now::Wait((label, data)),
            Err(e) => Err(self.error(conn, None, e)),
        };
        self.progress();
        Now::Done(answer)
    }

    /// [`Command::RecvMessage`], at once: [`Now::Done`] with the next whole message (or
    /// why there will be none), [`Now::Wait`] if it is not all there yet.
    pub fn recv_message_now(&mut self, conn: ConnId, limit: u64) -> Now<Result<Bytes, Error>, ()> {
        if !self.may_try_now(conn) {
            return Now::Wait(());
        }
        let answer = self.take_message(conn, limit);
        // Reading freed credit and stream slots the peer is to hear of.
        self.progress();
        answer.map_or(Now::Wait(()), Now::Done)
    }

    /// [`Command::Read`], at once: [`Now::Done`] with the pieces there are (up to `max`
    /// bytes), `Ok(None)` at the stream's end, or its failure; [`Now::Wait`] while nothing
    /// new is there.
    pub fn read_now(
        &mut self,
        conn: ConnId,
        stream: StreamId,
        max: usize,
    ) -> Now<Result<Option<Vec<Bytes>>, Error>, ()> {
        if !self.may_try_now(conn) {
            return Now::Wait(());
        }
        let answer = self.take_read(conn, stream, max.max(1));
        self.progress();
        answer.map_or(Now::Wait(()), Now::Done)
    }

    /// Makes the delivery of a stream the peer sends the application's to confirm, at once
    /// (before a read could reach its end): see
    /// [`weir_core::Endpoint::defer_delivery`].
    pub fn defer_delivery(&mut self, conn: ConnId, stream: StreamId) -> Result<(), Error> {
        self.on_conn(conn, |ep, h| ep.defer_delivery(h, stream))
            .map_err(|e| self.error(conn, None, e))
    }

    /// Tells the sender that a deferred stream read to its end is delivered, at once: see
    /// [`weir_core::Endpoint::confirm_delivery`]. (A refusal is a stop: `Command::StopSending`.)
    pub fn confirm_delivery(&mut self, conn: ConnId, stream: StreamId) -> Result<(), Error> {
        let r = self.on_conn(conn, |ep, h| ep.confirm_delivery(h, stream));
        self.progress();
        r.map_err(|e| self.error(conn, None, e))
    }

    /// Starts a graceful shutdown: calls still waiting and any that come are answered with
    /// [`Error::Shutdown`]; the peers get up to 3 s to acknowledge what was written, then
    /// every connection is closed, and kept up to 4 s to finish its close (its last
    /// acknowledgements and receipts, then CLOSE, repeated to a peer that did not hear it). Keep driving the driver until
    /// [`is_shut_down`](Self::is_shut_down).
    pub fn shutdown(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        for (_, w) in std::mem::take(&mut self.waiting) {
            w.fail(Error::Shutdown);
        }
        for c in self.conns.values_mut() {
            c.waiters = 0;
        }
        self.shutdown = Some(Shutdown {
            drain_until: StdInstant::now() + DRAIN_LIMIT,
            close_until: None,
        });
        tracing::debug!(connections = self.ep.connection_count(), "shutting down");
    }

    /// Whether a shutdown finished: every connection closed and gone from the core, or the
    /// time allowed ran out. Moves the shutdown on as time passes.
    pub fn is_shut_down(&mut self) -> bool {
        let Some(s) = &self.shutdown else {
            return false;
        };
        let at = StdInstant::now();
        if s.close_until.is_none() {
            let unacked = self
                .live()
                .any(|h| self.ep.buffered(h).is_some_and(|(_, unacked)| unacked > 0));
            if unacked && at < s.drain_until {
                return false;
            }
            let now = self.now();
            let live: Vec<_> = self.live().collect();
            for h in live {
                let _ = self.ep.close(now, h, 0, Reason::default());
            }
            self.progress();
            if let Some(s) = &mut self.shutdown {
                s.close_until = Some(at + CLOSE_LIMIT);
            }
        }
        let close_until = self.shutdown.as_ref().and_then(|s| s.close_until);
        let done = self.ep.connection_count() == 0 || close_until.is_some_and(|t| at >= t);
        if done {
            self.flush_trace();
        }
        done
    }

    /// Core handles of the connections still open.
    fn live(&self) -> impl Iterator<Item = ConnectionHandle> + '_ {
        self.by_handle
            .keys()
            .copied()
            .filter(|&h| self.ep.is_established(h))
    }

    // ------------------------------------------------------------ bookkeeping

    fn register(&mut self, h: ConnectionHandle) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.by_handle.insert(h, id);
        self.conns.insert(
            id,
            Conn {
                handle: Some(h),
                ..Conn::default()
            },
        );
        id
    }

    fn wait(&mut self, op: OpId, w: Waiter) {
        if let Some(conn) = w.conn() {
            self.dirty.insert(conn);
        }
        self.park(op, w);
    }

    /// Puts `w` among the waiting calls, counted on its connection.
    fn park(&mut self, op: OpId, w: Waiter) {
        if let Some(c) = w.conn().and_then(|c| self.conns.get_mut(&c)) {
            c.waiters += 1;
        }
        self.waiting.insert(op, w);
    }

    /// Takes the waiting call `op` out, uncounted on its connection.
    fn unpark(&mut self, op: OpId) -> Option<Waiter> {
        let w = self.waiting.remove(&op)?;
        if let Some(c) = w.conn().and_then(|c| self.conns.get_mut(&c)) {
            c.waiters = c.waiters.saturating_sub(1);
        }
        Some(w)
    }

    /// Whether a call on `conn` may be tried at once: the connection is known and open in
    /// the core, no shutdown is under way, and no earlier call on it waits (it must not be
    /// overtaken).
    fn may_try_now(&self, conn: ConnId) -> bool {
        self.shutdown.is_none()
            && self
                .conns
                .get(&conn)
                .is_some_and(|c| c.waiters == 0 && c.handle.is_some())
    }

    /// Runs `f` on the connection's core handle.
    fn on_conn<T>(
        &mut self,
        conn: ConnId,
        f: impl FnOnce(&mut weir_core::Endpoint, ConnectionHandle) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let h = self
            .conns
            .get(&conn)
            .and_then(|c| c.handle)
            .ok_or(ApiError::UnknownConnection)?;
        f(&mut self.ep, h)
    }

    /// Why a call on `conn` failed: its end if it ended, the peer's stop if it stopped the
    /// stream, else the core's refusal.
    fn error(&self, conn: ConnId, stream: Option<StreamId>, e: ApiError) -> Error {
        let Some(c) = self.conns.get(&conn) else {
            return Error::Refused(e);
        };
        if let Some(code) = stream.and_then(|s| c.stopped.get(&s)) {
            return Error::Stopped { code: *code };
        }
        c.ended.as_ref().map_or(Error::Refused(e), Ended::error)
    }

    fn forget_stream(&mut self, conn: ConnId, stream: StreamId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.forget_opened(stream);
            c.gathering.remove(&stream);
            c.readable.remove(stream);
            c.held.remove(&stream);
            c.taken.remove(&stream);
        }
    }

    fn cancel(&mut self, op: OpId) {
        let Some(w) = self.unpark(op) else {
            return;
        };
        match &w {
            // A half-sent message cannot be taken back: the peer is told to drop it.
            Waiter::Send {
                conn,
                stream: Some(stream),
                ..
            } => {
                let (conn, stream) = (*conn, *stream);
                let _ = self.on_conn(conn, |ep, h| ep.reset_stream(h, stream, 0));
            }
            Waiter::Confirm { conn, stream, .. } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.confirming.remove(stream);
                }
            }
            Waiter::Connect { conn, .. } => {
                let conn = *conn;
                let now = self.now();
                let _ = self.on_conn(conn, |ep, h| ep.close(now, h, 0, Reason::default()));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.released = true;
                }
            }
            _ => {}
        }
        w.fail(Error::TimedOut);
    }

    fn release(&mut self, r: Released) {
        match r {
            Released::Connection(conn) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.released = true;
                    c.opened.clear();
                    c.held.clear();
                }
                self.close_if_acked(conn);
                self.forget_if_done(conn);
            }
            Released::SendStream(conn, stream) => {
                let finished = self.on_conn(conn, |ep, h| ep.finish(h, stream));
                if finished == Err(ApiError::TotalLength) {
                    let _ = self.on_conn(conn, |ep, h| ep.reset_stream(h, stream, 0));
                }
            }
            Released::RecvStream(conn, stream) => {
                let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, 0));
                self.forget_stream(conn, stream);
            }
            Released::Pipe(pipe) => {
                if let Some(p) = self.pipes.get_mut(&pipe) {
                    p.released = true;
                    if p.result.is_some() {
                        self.pipes.remove(&pipe);
                    }
                }
            }
        }
    }

    /// Closes a connection no handle is left of once the peer acknowledged everything
    /// written to it (a peer that stops answering ends it by the idle timeout).
    fn close_if_acked(&mut self, conn: ConnId) {
        let Some(h) = self
            .conns
            .get(&conn)
            .filter(|c| c.released)
            .and_then(|c| c.handle)
        else {
            return;
        };
        if self.ep.is_established(h) && self.ep.buffered(h).is_none_or(|(_, unacked)| unacked == 0) {
            let now = self.now();
            let _ = self.ep.close(now, h, 0, Reason::default());
        }
    }

    /// Keeps a value whose caller gave up for the next call, first in line.
    fn restore(&mut self, r: Returned) {
        let conn = match &r {
            Returned::Connection(c) => c.id,
            Returned::Message(c, _) | Returned::Stream(c, _) | Returned::Chunks(c, ..) => *c,
        };
        self.dirty.insert(conn);
        match r {
            Returned::Connection(c) => {
                if self.conns.get(&c.id).is_some_and(|s| s.handle.is_some()) {
                    self.accepted.push_front(c);
                }
            }
            Returned::Message(conn, message) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.messages.push_front(message);
                }
            }
            Returned::Stream(conn, incoming) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.taken.remove(&incoming.0);
                    c.opened.push_front(incoming.0, incoming.1);
                }
            }
            Returned::Chunks(conn, stream, chunks) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    let held = &mut c.held.entry(stream).or_default().chunks;
                    for chunk in chunks.into_iter().rev() {
                        held.push_front(chunk);
                    }
                }
            }
        }
    }

    /// Drops what is kept of a connection that ended and has no handle left.
    fn forget_if_done(&mut self, conn: ConnId) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.released && c.handle.is_none())
        {
            self.conns.remove(&conn);
        }
    }

    fn pipe(&mut self, from: ConnId, stream: StreamId, to: &[ConnId]) -> Result<PipeId, Error> {
        let handle = |c: &ConnId| self.conns.get(c).and_then(|c| c.handle);
        let targets: Option<Vec<_>> = to.iter().map(handle).collect();
        let targets = targets.ok_or(Error::Refused(ApiError::UnknownConnection))?;
        let r = self.on_conn(from, |ep, h| ep.pipe(h, stream, &targets, LocalRead::Discard));
        let pipe = r.map_err(|e| self.error(from, None, e))?;
        self.forget_stream(from, stream);
        self.pipes.insert(
            pipe,
            PipeRecord {
                stats: self.ep.pipe_stats(pipe).unwrap_or_default(),
                result: None,
                released: false,
            },
        );
        Ok(pipe)
    }

    // ------------------------------------------------------------ after each input

    /// Reads the core's events, then tries the waiting calls they may let finish.
    fn progress(&mut self) {
        // Answering calls may raise events of its own (a read that stops a stream); a few
        // rounds settle it.
        for _ in 0..4 {
            self.events();
            if self.dirty.is_empty() && self.accepted.is_empty() && !self.pipes_ended() {
                break;
            }
            self.retry();
        }
        for (&id, p) in self.pipes.iter_mut() {
            if p.result.is_none() {
                if let Some(s) = self.ep.pipe_stats(id) {
                    p.stats = s;
                }
            }
        }
        self.flush_trace();
    }

    fn pipes_ended(&self) -> bool {
        self.waiting
            .values()
            .any(|w| matches!(w, Waiter::PipeDone { pipe, .. } if self.pipes.get(pipe).is_none_or(|p| p.result.is_some())))
    }

    fn flush_trace(&mut self) {
        if let Some(out) = self.trace.as_mut() {
            let text = self.ep.take_trace();
            if !text.is_empty() && out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                tracing::warn!("writing the trace failed; recording stops");
                self.trace = None;
            }
        }
    }

    fn retry(&mut self) {
        // Copied out and emptied in place (not taken): an emptied set keeps its node, so the
        // next call's connection is marked without an allocation.
        let dirty: SmallVec<[ConnId; 8]> = self.dirty.iter().copied().collect();
        self.dirty.retain(|_| false);
        for &conn in &dirty {
            self.close_if_acked(conn);
        }
        let ops: SmallVec<[OpId; 8]> = self
            .waiting
            .iter()
            .filter(|(_, w)| match w {
                Waiter::Accept { .. } => !self.accepted.is_empty(),
                Waiter::PipeDone { .. } => true,
                w => w.conn().is_some_and(|c| dirty.contains(&c)),
            })
            .map(|(op, _)| *op)
            .collect();
        let mut blocked = BTreeSet::new();
        for op in ops {
            let Some(w) = self.unpark(op) else {
                continue;
            };
            if let Step::Wait(w) = self.try_finish(w, &mut blocked) {
                self.park(op, w);
            }
        }
    }

    /// Tries to answer one waiting call.
    fn try_finish(&mut self, w: Waiter, blocked: &mut BTreeSet<Queue>) -> Step<Waiter> {
        let queue = match &w {
            Waiter::Send { conn, .. } => Some(Queue::Send(*conn)),
            Waiter::Write { conn, stream, .. } => Some(Queue::Write(*conn, *stream)),
            Waiter::Read { conn, stream, .. } => Some(Queue::Read(*conn, *stream)),
            _ => None,
        };
        if queue.is_some_and(|q| blocked.contains(&q)) {
            return Step::Wait(w);
        }
        if let Some(conn) = w.conn() {
            // A connection gone from the driver (released, or never known) has nothing more.
            if !self.conns.contains_key(&conn) {
                w.fail(Error::Refused(ApiError::UnknownConnection));
                return Step::Done;
            }
        }
        let step = match w {
            Waiter::Connect { conn, reply } => self.finish_connect(conn, reply),
            Waiter::Accept { reply } => {
                let Some(c) = self.accepted.pop_front() else {
                    return Step::Wait(Waiter::Accept { reply });
                };
                if let Err(Ok(c)) = reply(Ok(c)) {
                    self.restore(Returned::Connection(c));
                }
                Step::Done
            }
            Waiter::Send {
                conn,
                label,
                mut data,
                mut stream,
                confirm,
                reply,
            } => match self.send_step(conn, &label, &mut data, &mut stream) {
                Ok(true) => match (confirm, stream) {
                    (Confirm::Queued, _) | (_, None) => {
                        let _ = reply(Ok(()));
                        Step::Done
                    }
                    (until, Some(stream)) => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.confirming.entry(stream).or_insert(None);
                        }
                        Step::Wait(Waiter::Confirm {
                            conn,
                            stream,
                            until,
                            reply,
                        })
                    }
                },
                Ok(false) => Step::Wait(Waiter::Send {
                    conn,
                    label,
                    data,
                    stream,
                    confirm,
                    reply,
                }),
                Err(e) => {
                    let _ = reply(Err(self.error(conn, stream, e)));
                    Step::Done
                }
            },
            Waiter::Confirm {
                conn,
                stream,
                until,
                reply,
            } => self.finish_confirm(conn, stream, until, reply),
            Waiter::Recv { conn, limit, reply } => self.finish_recv(conn, limit, reply),
            Waiter::Open { conn, header, reply } => {
                match self.on_conn(conn, |ep, h| ep.open_stream(h, header.clone())) {
                    Ok(s) => {
                        let _ = reply(Ok(s));
                        Step::Done
                    }
                    Err(ApiError::StreamLimit) => Step::Wait(Waiter::Open { conn, header, reply }),
                    Err(e) => {
                        let _ = reply(Err(self.error(conn, None, e)));
                        Step::Done
                    }
                }
            }
            Waiter::Write {
                conn,
                stream,
                data,
                reply,
            } => match self.on_conn(conn, |ep, h| ep.write(h, stream, data.clone())) {
                Ok(n) if n > 0 || data.is_empty() => {
                    let _ = reply(Ok(n));
                    Step::Done
                }
                Ok(_) | Err(ApiError::WouldBlock) => Step::Wait(Waiter::Write {
                    conn,
                    stream,
                    data,
                    reply,
                }),
                Err(e) => {
                    let _ = reply(Err(self.error(conn, Some(stream), e)));
                    Step::Done
                }
            },
            Waiter::AcceptStream { conn, reply } => self.finish_accept_stream(conn, reply),
            Waiter::Read {
                conn,
                stream,
                max,
                reply,
            } => self.finish_read(conn, stream, max, reply),
            Waiter::PipeDone { pipe, reply } => {
                let Some(p) = self.pipes.get(&pipe) else {
                    let _ = reply(Err(Error::Refused(ApiError::UnknownStream)));
                    return Step::Done;
                };
                match p.result {
                    None => Step::Wait(Waiter::PipeDone { pipe, reply }),
                    Some(r) => {
                        let _ = reply(r.map(|()| p.stats).map_err(Error::PipeFailed));
                        Step::Done
                    }
                }
            }
        };
        if let (Some(q), Step::Wait(_)) = (queue, &step) {
            blocked.insert(q);
        }
        step
    }

    fn finish_connect(&mut self, conn: ConnId, reply: Reply<Result<Connected, Error>>) -> Step<Waiter> {
        let c = &self.conns[&conn];
        if let Some(n) = c.negotiated {
            let connected = Connected {
                id: conn,
                negotiated: n,
                peer: c.peer,
            };
            if reply(Ok(connected)).is_err() {
                // Nobody took the connection: close it rather than leave it open unowned.
                self.release(Released::Connection(conn));
            }
            return Step::Done;
        }
        match c.ended.clone() {
            Some(end) => {
                let _ = reply(Err(end.error()));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.released = true;
                }
                self.forget_if_done(conn);
                Step::Done
            }
            None => Step::Wait(Waiter::Connect { conn, reply }),
        }
    }

    /// One step of sending a message: whole if it fits the send buffer, else as a stream
    /// written piece by piece. `Ok(true)` once all of it is in the core.
    /// The receipt that came for `stream` before any call waited for it.
    fn receipt_came(&self, conn: ConnId, stream: StreamId) -> Option<Delivery> {
        let c = self.conns.get(&conn)?;
        c.recent.iter().find(|(s, _)| *s == stream).map(|(_, d)| *d)
    }

    /// Parks a call until `stream` is confirmed as far as `until`.
    fn confirm(
        &mut self,
        op: OpId,
        conn: ConnId,
        stream: StreamId,
        until: Confirm,
        reply: Reply<Result<(), Error>>,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.confirming.entry(stream).or_insert(None);
        }
        self.wait(
            op,
            Waiter::Confirm {
                conn,
                stream,
                until,
                reply,
            },
        );
    }

    /// Answers a [`Waiter::Confirm`] once its stream got as far as it waits for, or can get
    /// no further.
    fn finish_confirm(
        &mut self,
        conn: ConnId,
        stream: StreamId,
        until: Confirm,
        reply: Reply<Result<(), Error>>,
    ) -> Step<Waiter> {
        let Some(c) = self.conns.get_mut(&conn) else {
            let _ = reply(Err(Error::Refused(ApiError::UnknownConnection)));
            return Step::Done;
        };
        let receipts = c
            .negotiated
            .is_some_and(|n| n.capabilities.contains(weir_core::wire::Capabilities::RECEIPTS));
        let answer = match c.confirming.get(&stream).copied().flatten() {
            Some(Some(Delivery::Delivered { .. })) => Some(Ok(())),
            Some(Some(failed)) => Some(Err(Error::NotDelivered(failed))),
            Some(None) if until == Confirm::Acknowledged || !receipts => Some(Ok(())),
            _ => match (c.stopped.get(&stream), &c.ended) {
                (Some(&code), _) => Some(Err(Error::Stopped { code })),
                (None, Some(end)) => Some(Err(end.error())),
                (None, None) => None,
            },
        };
        match answer {
            None => Step::Wait(Waiter::Confirm {
                conn,
                stream,
                until,
                reply,
            }),
            Some(answer) => {
                c.confirming.remove(&stream);
                let _ = reply(answer);
                Step::Done
            }
        }
    }

    fn send_step(
        &mut self,
        conn: ConnId,
        label: &Option<Label>,
        data: &mut Bytes,
        stream: &mut Option<StreamId>,
    ) -> Result<bool, ApiError> {
        let s = match *stream {
            Some(s) => s,
            None => {
                let len = data.len() as u64;
                if len <= self.ep.config().send_buffer {
                    return match self.on_conn(conn, |ep, h| ep.send_message(h, label.clone(), data.clone())) {
                        Ok(s) => {
                            *stream = Some(s);
                            Ok(true)
                        }
                        Err(ApiError::WouldBlock | ApiError::StreamLimit) => Ok(false),
                        Err(e) => Err(e),
                    };
                }
                let mut header = StreamHeader::default().with_total_len(len);
                header.label = label.clone();
                let s = match self.on_conn(conn, |ep, h| ep.open_stream(h, header)) {
                    Ok(s) => s,
                    Err(ApiError::StreamLimit) => return Ok(false),
                    Err(e) => return Err(e),
                };
                *stream = Some(s);
                s
            }
        };
        while !data.is_empty() {
            match self.on_conn(conn, |ep, h| ep.write(h, s, data.clone())) {
                Ok(0) | Err(ApiError::WouldBlock) => return Ok(false),
                Ok(n) => data.advance(n),
                Err(e) => return Err(e),
            }
        }
        self.on_conn(conn, |ep, h| ep.finish(h, s))?;
        Ok(true)
    }

    fn finish_recv(&mut self, conn: ConnId, limit: u64, reply: Reply<Result<Bytes, Error>>) -> Step<Waiter> {
        match self.take_message(conn, limit) {
            None => Step::Wait(Waiter::Recv { conn, limit, reply }),
            Some(Ok(message)) => self.deliver_message(conn, message, reply),
            Some(Err(e)) => {
                let _ = reply(Err(e));
                Step::Done
            }
        }
    }

    /// The next whole message on `conn`, or why there will be none; `None` while the next
    /// one is still on its way.
    fn take_message(&mut self, conn: ConnId, limit: u64) -> Option<Result<Bytes, Error>> {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return Some(Err(Error::Refused(ApiError::UnknownConnection)));
            };
            if let Some(message) = c.messages.pop_front() {
                return Some(Ok(message));
            }
            let Some(stream) = c.readable.front_id() else {
                return c.ended.as_ref().map(|end| Err(end.error()));
            };
            c.readable.pop_front();
            // Saved when the connection closed: whole, or nothing.
            if let Some(held) = c.held.remove(&stream) {
                c.forget_opened(stream);
                c.gathering.remove(&stream);
                if !held.finished {
                    continue;
                }
                return Some(Ok(crate::join(held.chunks)));
            }
            if c.ended.is_some() {
                continue;
            }
            let read = self.on_conn(conn, |ep, h| ep.read_message(h, stream, limit));
            let c = self.conns.get_mut(&conn).expect("looked up above");
            match read {
                Ok(Read::Data { bytes, .. }) => {
                    c.forget_opened(stream);
                    c.gathering.remove(&stream);
                    return Some(Ok(bytes));
                }
                // Not whole yet: its next StreamReadable brings it back. From now on it is
                // a message being gathered, not a stream to accept.
                Ok(Read::Pending) => {
                    if c.opened.remove(stream).is_some() {
                        c.gathering.insert(stream);
                    }
                }
                Ok(Read::VerificationFailed { expected, actual }) => {
                    c.forget_opened(stream);
                    c.gathering.remove(&stream);
                    return Some(Err(Error::VerificationFailed { expected, actual }));
                }
                Err(ApiError::MessageTooLong) => {
                    tracing::debug!(%conn, stream = stream.0, limit, "message too long; stream stopped");
                    self.forget_stream(conn, stream);
                    let _ = self.on_conn(conn, |ep, h| ep.stop_sending(h, stream, 0));
                }
                // Reset by the sender (it knows), or gone: nothing to deliver.
                Ok(_) | Err(_) => self.forget_stream(conn, stream),
            }
        }
    }

    fn deliver_message(
        &mut self,
        conn: ConnId,
        message: Bytes,
        reply: Reply<Result<Bytes, Error>>,
    ) -> Step<Waiter> {
        if let Err(Ok(message)) = reply(Ok(message)) {
            self.restore(Returned::Message(conn, message));
        }
        Step::Done
    }

    fn finish_accept_stream(&mut self, conn: ConnId, reply: Reply<Result<Incoming, Error>>) -> Step<Waiter> {
        let c = self.conns.get_mut(&conn).expect("checked by try_finish");
        match c.opened.pop_front() {
            Some(incoming) => {
                c.readable.remove(incoming.0);
                c.taken.insert(incoming.0);
                if let Err(Ok(incoming)) = reply(Ok(incoming)) {
                    self.restore(Returned::Stream(conn, incoming));
                }
                Step::Done
            }
            None => match &c.ended {
                Some(end) => {
                    let _ = reply(Err(end.error()));
                    Step::Done
                }
                None => Step::Wait(Waiter::AcceptStream { conn, reply }),
            },
        }
    }

    fn finish_read(
        &mut self,
        conn: ConnId,
        stream: StreamId,
        max: usize,
        reply: Reply<Result<Option<Vec<Bytes>>, Error>>,
    ) -> Step<Waiter> {
        let Some(result) = self.take_read(conn, stream, max) else {
            return Step::Wait(Waiter::Read {
                conn,
                stream,
                max,
                reply,
            });
        };
        match reply(result) {
            // The caller gave up: keep what was read for the next read.
            Err(Ok(Some(chunks))) => self.restore(Returned::Chunks(conn, stream, chunks)),
            Err(Ok(None)) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.held.entry(stream).or_default().finished = true;
                }
            }
            _ => {}
        }
        Step::Done
    }

    /// Up to `max` bytes of `stream`, in the pieces they came in, `Ok(None)` at its end, or
    /// how it failed; `None` while nothing new is there.
    fn take_read(
        &mut self,
        conn: ConnId,
        stream: StreamId,
        max: usize,
    ) -> Option<Result<Option<Vec<Bytes>>, Error>> {
        let c = self.conns.get_mut(&conn)?;
        let mut out = Vec::new();
        let mut room = max;
        // What follows the pieces in `out`: the stream's end (`Ok`) or its failure.
        let mut end: Option<Result<(), Error>> = None;
        let mut more = true;
        if let Some(held) = c.held.get_mut(&stream) {
            while room > 0 {
                let Some(mut chunk) = held.chunks.pop_front() else {
                    break;
                };
                if chunk.len() > room {
                    held.chunks.push_front(chunk.split_off(room));
                }
                room -= chunk.len();
                out.push(chunk);
            }
            more = held.chunks.is_empty();
            if more && held.finished {
                // Kept: every later read is told the end too.
                end = Some(Ok(()));
            } else if more {
                end = held.failed.take().map(Err);
                c.held.remove(&stream);
            }
        } else if let Some(ended) = &c.ended {
            end = Some(Err(ended.error()));
        }
        while more && end.is_none() && room > 0 {
            match self.on_conn(conn, |ep, h| ep.read(h, stream, room)) {
                Ok(Read::Data { bytes, .. }) => {
                    room -= bytes.len();
                    out.push(bytes);
                }
                Ok(Read::Pending) => more = false,
                Ok(Read::Finished) => end = Some(Ok(())),
                Ok(Read::Reset { code }) => end = Some(Err(Error::Reset { code })),
                Ok(Read::VerificationFailed { expected, actual }) => {
                    end = Some(Err(Error::VerificationFailed { expected, actual }))
                }
                // A kind of read this driver does not know yet: nothing it can deliver.
                Ok(_) => end = Some(Err(Error::Refused(ApiError::UnknownStream))),
                Err(e) => end = Some(Err(self.error(conn, Some(stream), e))),
            }
        }
        Some(match (out.is_empty(), end) {
            (true, None) => return None,
            (true, Some(Ok(()))) => Ok(None),
            (true, Some(Err(e))) => Err(e),
            (false, end) => {
                // The pieces now; how the stream ended, at the next read.
                if let (Some(end), Some(c)) = (end, self.conns.get_mut(&conn)) {
                    let held = c.held.entry(stream).or_default();
                    match end {
                        Ok(()) => held.finished = true,
                        Err(e) => held.failed = Some(e),
                    }
                }
                Ok(Some(out))
            }
        })
    }

    // ------------------------------------------------------------ core events

    fn events(&mut self) {
        while let Some(e) = self.ep.poll_event() {
            if let Some(h) = event_conn(&e) {
                self.touch(h);
            }
            match e {
                Event::Connected {
                    conn: h,
                    negotiated,
                    peer,
                } => {
                    let id = match self.by_handle.get(&h) {
                        Some(&id) => id,
                        None => {
                            let id = self.register(h);
                            self.accepted.push_back(Connected { id, negotiated, peer });
                            id
                        }
                    };
                    let remote = self.ep.remote_address(h);
                    tracing::info!(conn = %id, ?remote, version = negotiated.version, "connection established");
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.negotiated = Some(negotiated);
                        c.peer = peer;
                    }
                    self.dirty.insert(id);
                }
                Event::HandshakeFailed { conn: h, reason } => {
                    let remote = self.ep.remote_address(h);
                    tracing::warn!(?remote, %reason, "handshake failed");
                    self.end(h, Ended::Handshake(reason));
                }
                Event::Closed {
                    conn: h,
                    reason,
                    stats,
                } => {
                    if let Some(id) = self.by_handle.get(&h) {
                        tracing::info!(conn = %id, %reason, "connection closed");
                    }
                    if let Some(c) = self.conn_mut(h) {
                        c.last_stats = Some(*stats);
                    }
                    self.salvage(h);
                    self.end(h, Ended::Closed(reason));
                }
                Event::StreamOpened {
                    conn: h,
                    stream,
                    header,
                } => {
                    if let Some(c) = self.conn_mut(h) {
                        c.opened.push_back(stream, header);
                    }
                }
                Event::StreamReadable { conn: h, stream } => {
                    if let Some(c) = self.conn_mut(h) {
                        if c.gathering.contains(&stream) || c.opened.contains(stream) {
                            c.readable.push_back(stream, ());
                        }
                    }
                }
                Event::StreamReset {
                    conn: h,
                    stream,
                    code,
                } => {
                    tracing::debug!(conn = ?self.by_handle.get(&h), stream = stream.0, code, "stream reset by the peer");
                }
                Event::StreamStopped {
                    conn: h,
                    stream,
                    code,
                } => {
                    tracing::debug!(conn = ?self.by_handle.get(&h), stream = stream.0, code, "stream stopped by the peer");
                    if let Some(c) = self.conn_mut(h) {
                        c.stopped.insert(stream, code);
                    }
                }
                Event::StreamAcked { conn: h, stream } => {
                    if let Some(got) = self.conn_mut(h).and_then(|c| c.confirming.get_mut(&stream)) {
                        *got = Some(None);
                    }
                }
                Event::StreamDelivery {
                    conn: h,
                    stream,
                    delivery,
                } => {
                    tracing::debug!(conn = ?self.by_handle.get(&h), stream = stream.0, %delivery, "receipt");
                    if let Some(c) = self.conn_mut(h) {
                        match c.confirming.get_mut(&stream) {
                            Some(got) => *got = Some(Some(delivery)),
                            None => {
                                if c.recent.len() == RECENT_RECEIPTS {
                                    c.recent.pop_front();
                                }
                                c.recent.push_back((stream, delivery));
                            }
                        }
                    }
                }
                Event::PipeFinished { pipe } => self.pipe_ended(pipe, Ok(())),
                Event::PipeFailed { pipe, reason } => {
                    tracing::warn!(pipe = ?pipe, ?reason, "pipe failed");
                    self.pipe_ended(pipe, Err(reason));
                }
                _ => {}
            }
        }
    }

    fn conn_mut(&mut self, h: ConnectionHandle) -> Option<&mut Conn> {
        let id = self.by_handle.get(&h)?;
        self.conns.get_mut(id)
    }

    fn touch(&mut self, h: ConnectionHandle) {
        if let Some(&id) = self.by_handle.get(&h) {
            self.dirty.insert(id);
        }
    }

    fn pipe_ended(&mut self, pipe: PipeId, result: Result<(), PipeFailure>) {
        if let Some(p) = self.pipes.get_mut(&pipe) {
            if p.released {
                self.pipes.remove(&pipe);
            } else {
                p.result = Some(result);
                p.stats.in_flight = 0;
                p.stats.waiting = 0;
            }
        }
    }

    /// A connection closed: what was received and not yet read stays readable (the peer
    /// may have sent its last message just before closing). Whole messages of streams not
    /// taken yet, and what arrived of streams being read, are taken out of the core before
    /// it lets the connection go.
    fn salvage(&mut self, h: ConnectionHandle) {
        let Some(&id) = self.by_handle.get(&h) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let untaken: Vec<StreamId> = c.opened.ids().chain(c.gathering.iter().copied()).collect();
        let being_read: Vec<StreamId> = c.taken.iter().copied().collect();
        for s in being_read {
            let mut held = Held::default();
            loop {
                match self.ep.read(h, s, usize::MAX) {
                    Ok(Read::Data { bytes, .. }) => held.chunks.push_back(bytes),
                    Ok(Read::Finished) => {
                        held.finished = true;
                        break;
                    }
                    _ => break,
                }
            }
            if let Some(c) = self.conns.get_mut(&id) {
                let before = c.held.entry(s).or_default();
                before.chunks.extend(held.chunks);
                before.finished |= held.finished;
            }
        }
        let mut kept = BTreeMap::new();
        for s in untaken {
            if let Ok(Read::Data { bytes, .. }) = self.ep.read_message(h, s, DEFAULT_MESSAGE_LIMIT) {
                kept.insert(
                    s,
                    Held {
                        chunks: VecDeque::from([bytes]),
                        finished: true,
                        failed: None,
                    },
                );
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.opened.retain(|s| kept.contains_key(&s));
        c.gathering.retain(|s| kept.contains_key(s));
        c.readable.clear();
        for &s in kept.keys() {
            c.readable.push_back(s, ());
        }
        c.held.extend(kept);
    }

    /// A connection is over (handshake failed or closed): its waiting calls get the end.
    fn end(&mut self, h: ConnectionHandle, end: Ended) {
        let Some(id) = self.by_handle.remove(&h) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&id) {
            c.handle = None;
            c.ended = Some(end);
        }
        // A connection that ended before anyone accepted it stays in the queue: `accept`
        // still hands it out, with what it received, and its end. Only past the
        // endpoint's connection limit are the oldest ended ones let go, so that a flood of
        // short connections nobody accepts cannot grow the queue without bound.
        while self.accepted.len() > self.ep.config().max_connections {
            let oldest_ended = self
                .accepted
                .iter()
                .position(|c| self.conns.get(&c.id).is_none_or(|c| c.handle.is_none()));
            let Some(i) = oldest_ended else {
                break;
            };
            if let Some(Connected { id: gone, .. }) = self.accepted.remove(i) {
                if let Some(c) = self.conns.get_mut(&gone) {
                    c.released = true;
                }
                self.forget_if_done(gone);
            }
        }
        self.dirty.insert(id);
        self.forget_if_done(id);
    }
}

/// The connection an event names, if any.
fn event_conn(e: &Event) -> Option<ConnectionHandle> {
    match e {
        Event::Connected { conn, .. }
        | Event::HandshakeFailed { conn, .. }
        | Event::StreamOpened { conn, .. }
        | Event::StreamReadable { conn, .. }
        | Event::StreamReset { conn, .. }
        | Event::StreamStopped { conn, .. }
        | Event::StreamAcked { conn, .. }
        | Event::StreamDelivery { conn, .. }
        | Event::StreamsAvailable { conn }
        | Event::Writable { conn }
        | Event::Closed { conn, .. } => Some(*conn),
        _ => None,
    }
}

/// Answers a command that came after the shutdown began.
fn refuse(command: Command) {
    // An answer that cannot be delivered has nothing to keep.
    macro_rules! shut {
        ($reply:expr) => {{
            let _ = $reply(Err(Error::Shutdown));
        }};
    }
    match command {
        Command::Connect { reply, .. } | Command::Accept { reply, .. } => shut!(reply),
        Command::SendMessage { reply, .. } | Command::Finish { reply, .. } | Command::Close { reply, .. } => {
            shut!(reply)
        }
        Command::RecvMessage { reply, .. } => shut!(reply),
        Command::OpenStream { reply, .. } => shut!(reply),
        Command::Write { reply, .. } => shut!(reply),
        Command::AcceptStream { reply, .. } => shut!(reply),
        Command::Read { reply, .. } => shut!(reply),
        Command::Pipe { reply, .. } => shut!(reply),
        Command::PipeDone { reply, .. } => shut!(reply),
        Command::PipeStats { reply, .. } => {
            let _ = reply(None);
        }
        Command::Stats { reply, .. } => {
            let _ = reply(None);
        }
        Command::ResetStream { .. }
        | Command::StopSending { .. }
        | Command::Cancel(_)
        | Command::Release(_)
        | Command::Return(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Two drivers joined in memory: every datagram one sends, the other receives.
    struct Pair {
        a: Driver,
        b: Driver,
    }

    const A: &str = "127.0.0.1:1000";
    const B: &str = "127.0.0.1:2000";

    impl Pair {
        fn new() -> Pair {
            Pair::with(Config::default())
        }

        fn with(config: Config) -> Pair {
            Pair {
                a: Driver::new(config.clone(), A.parse().unwrap()),
                b: Driver::new(config, B.parse().unwrap()),
            }
        }

        /// Carries datagrams both ways until neither has more (bounded).
        fn settle(&mut self) {
            let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
            for _ in 0..10_000 {
                let mut moved = false;
                while let Some(t) = self.a.poll_transmit(&mut buf) {
                    self.b
                        .handle_datagram(A.parse().unwrap(), BytesMut::from(&buf[..t.len]));
                    moved = true;
                }
                while let Some(t) = self.b.poll_transmit(&mut buf) {
                    self.a
                        .handle_datagram(B.parse().unwrap(), BytesMut::from(&buf[..t.len]));
                    moved = true;
                }
                if !moved {
                    return;
                }
            }
            panic!("the pair never settled");
        }
    }

    /// A reply that delivers into `tx`.
    fn to<T: Send + 'static>(tx: mpsc::Sender<T>) -> Reply<T> {
        Box::new(move |v| tx.send(v).map_err(|e| e.0))
    }

    /// A reply whose caller already gave up.
    fn gone<T: Send + 'static>() -> Reply<T> {
        Box::new(Err)
    }

    /// Connects a to b; returns both sides' connection ids.
    fn connect(p: &mut Pair) -> (ConnId, ConnId) {
        let (tx, rx) = mpsc::channel();
        p.a.command(Command::Connect {
            op: OpId::next(),
            remote: B.parse().unwrap(),
            server: None,
            congestion: None,
            reply: to(tx),
        });
        let (tx2, rx2) = mpsc::channel();
        p.b.command(Command::Accept {
            op: OpId::next(),
            reply: to(tx2),
        });
        p.settle();
        let a = rx.try_recv().unwrap().unwrap().id;
        let b = rx2.try_recv().unwrap().unwrap().id;
        (a, b)
    }

    /// Has a send `data` as a message; the answer comes on the receiver returned.
    fn send_bytes(p: &mut Pair, conn: ConnId, data: Bytes) -> mpsc::Receiver<Result<(), Error>> {
        let (tx, rx) = mpsc::channel();
        p.a.command(Command::SendMessage {
            op: OpId::next(),
            conn,
            label: None,
            data,
            confirm: Confirm::Queued,
            reply: to(tx),
        });
        rx
    }

    /// Has b accept the stream a opened, which must be there already.
    fn accept_stream(p: &mut Pair, conn: ConnId) -> StreamId {
        let (tx, rx) = mpsc::channel();
        p.b.command(Command::AcceptStream {
            op: OpId::next(),
            conn,
            reply: to(tx),
        });
        rx.try_recv().unwrap().unwrap().0
    }

    fn send(p: &mut Pair, conn: ConnId, text: &'static str) {
        let rx = send_bytes(p, conn, Bytes::from_static(text.as_bytes()));
        p.settle();
        rx.try_recv().unwrap().unwrap();
    }

    fn recv(d: &mut Driver, conn: ConnId, reply: Reply<Result<Bytes, Error>>) {
        d.command(Command::RecvMessage {
            op: OpId::next(),
            conn,
            limit: 1 << 20,
            reply,
        });
    }

    #[test]
    fn a_stream_queue_keeps_order_and_membership_together() {
        let mut q = StreamQueue::default();
        for i in [4, 8, 0, 12] {
            q.push_back(StreamId(i), i);
        }
        q.push_back(StreamId(8), 99);
        assert_eq!(
            q.ids().map(|s| s.0).collect::<Vec<_>>(),
            [4, 8, 0, 12],
            "queued once"
        );
        assert_eq!(q.remove(StreamId(0)), Some((StreamId(0), 0)));
        assert_eq!(q.remove(StreamId(0)), None);
        assert!(!q.contains(StreamId(0)));
        assert_eq!(q.remove(StreamId(4)), Some((StreamId(4), 4)));
        q.push_front(StreamId(4), 44);
        q.retain(|s| s != StreamId(12));
        assert!(!q.contains(StreamId(12)));
        assert_eq!(q.pop_front(), Some((StreamId(4), 44)));
        assert_eq!(q.pop_front(), Some((StreamId(8), 8)));
        assert_eq!(q.pop_front(), None);
        assert!(!q.contains(StreamId(8)));
        q.push_back(StreamId(8), 1);
        q.clear();
        assert!(!q.contains(StreamId(8)) && q.front_id().is_none());

        // Long enough to keep a set of its members: the same answers.
        let n = 3 * StreamQueue::<u64>::INDEXED as u64;
        for i in (0..n).rev() {
            q.push_back(StreamId(i), i);
            q.push_back(StreamId(i), 0);
        }
        assert!(q.members.is_some());
        assert_eq!(q.ids().count() as u64, n);
        assert_eq!(q.remove(StreamId(5)), Some((StreamId(5), 5)));
        assert_eq!(q.remove(StreamId(5)), None);
        assert_eq!(q.remove(StreamId(n)), None);
        assert!(!q.contains(StreamId(5)) && q.contains(StreamId(6)));
        assert_eq!(q.ids().count() as u64, n - 1);
        q.retain(|s| s.0 % 2 == 0);
        assert!(!q.contains(StreamId(7)) && q.contains(StreamId(8)));
        while q.pop_front().is_some() {}
        assert!(q.members.is_none() && !q.contains(StreamId(8)));
    }

    #[test]
    fn calls_tried_at_once_are_answered_without_a_reply() {
        let mut p = Pair::new();
        let (a, b) = connect(&mut p);
        let sent = p.a.send_message_now(a, None, Bytes::from_static(b"at once"));
        assert!(matches!(sent, Now::Done(Ok(()))), "{sent:?}");
        assert!(matches!(p.b.recv_message_now(b, 1 << 20), Now::Wait(())));
        p.settle();
        match p.b.recv_message_now(b, 1 << 20) {
            Now::Done(Ok(m)) => assert_eq!(&m[..], b"at once"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(p.b.recv_message_now(b, 1 << 20), Now::Wait(())));

        // A stream read at once: its pieces, then its end.
        let (tx, rx) = mpsc::channel();
        p.a.command(Command::OpenStream {
            op: OpId::next(),
            conn: a,
            header: StreamHeader::default(),
            reply: to(tx),
        });
        let s = rx.try_recv().unwrap().unwrap();
        assert_eq!(
            p.a.on_conn(a, |ep, h| ep.write(h, s, Bytes::from_static(b"piece"))),
            Ok(5)
        );
        p.a.on_conn(a, |ep, h| ep.finish(h, s)).unwrap();
        p.settle();
        let incoming = accept_stream(&mut p, b);
        match p.b.read_now(b, incoming, 100) {
            Now::Done(Ok(Some(pieces))) => assert_eq!(crate::join(pieces), &b"piece"[..]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(p.b.read_now(b, incoming, 100), Now::Done(Ok(None))));
    }

    #[test]
    fn a_call_tried_at_once_does_not_overtake_a_waiting_one() {
        let mut p = Pair::new();
        let (a, b) = connect(&mut p);
        // A send parked and not tried yet (as one is between an input and the retry of
        // the calls it concerns).
        let (tx, first_sent) = mpsc::channel();
        p.a.wait(
            OpId::next(),
            Waiter::Send {
                conn: a,
                label: None,
                data: Bytes::from_static(b"first"),
                stream: None,
                confirm: Confirm::Queued,
                reply: to(tx),
            },
        );
        let second = p.a.send_message_now(a, None, Bytes::from_static(b"second"));
        let Now::Wait((None, second)) = second else {
            panic!("the second message went ahead of the first: {second:?}");
        };
        let second_sent = send_bytes(&mut p, a, second);
        first_sent.try_recv().unwrap().unwrap();
        second_sent.try_recv().unwrap().unwrap();
        p.settle();
        let (tx, rx) = mpsc::channel();
        for _ in 0..2 {
            recv(&mut p.b, b, to(tx.clone()));
        }
        assert_eq!(&rx.try_recv().unwrap().unwrap()[..], b"first");
        assert_eq!(&rx.try_recv().unwrap().unwrap()[..], b"second");
        // Nothing waits any more: the next call is answered at once again.
        assert!(matches!(
            p.a.send_message_now(a, None, Bytes::from_static(b"third")),
            Now::Done(Ok(()))
        ));
    }

    /// a's datagrams go as [`Outbox`] batches of at most `segments`, cut up again on b's
    /// side; b's go one by one. Returns the datagram count of every batch a sent.
    fn settle_batched(p: &mut Pair, segments: usize) -> Vec<usize> {
        let mut outbox = crate::Outbox::new();
        let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
        let mut batches = Vec::new();
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(batch) = outbox.next(&mut p.a, segments) {
                assert_eq!(batch.destination, B.parse().unwrap());
                batches.push(batch.datagrams());
                let received = BytesMut::from(batch.contents);
                p.b.handle_received(A.parse().unwrap(), received, batch.segment_size);
                moved = true;
            }
            while let Some(t) = p.b.poll_transmit(&mut buf) {
                p.a.handle_datagram(B.parse().unwrap(), BytesMut::from(&buf[..t.len]));
                moved = true;
            }
            if !moved {
                return batches;
            }
        }
        panic!("the pair never settled");
    }

    #[test]
    fn a_message_crosses_in_batches_of_equal_datagrams() {
        // NewReno paces its window over the RTT, so with no time passing whole bursts may
        // go; BBR paces at its bandwidth estimate from the first samples, 2 ms at a time.
        let mut p = Pair::with(Config {
            congestion: weir_core::congestion::CongestionAlgorithm::NewReno,
            ..Config::default()
        });
        let (a, b) = connect(&mut p);
        let message: Bytes = (0..300_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let rx = send_bytes(&mut p, a, message.clone());
        let (tx2, rx2) = mpsc::channel();
        recv(&mut p.b, b, to(tx2));
        let batches = settle_batched(&mut p, 8);
        rx.try_recv().unwrap().unwrap();
        assert_eq!(rx2.try_recv().unwrap().unwrap(), message);
        assert!(batches.iter().all(|&n| (1..=8).contains(&n)), "{batches:?}");
        // The congestion window lets whole bursts go: most datagrams travel in full batches.
        let full: usize = batches.iter().filter(|&&n| n == 8).sum();
        assert!(full * 2 > batches.iter().sum::<usize>(), "{batches:?}");
    }

    fn read(p: &mut Pair, conn: ConnId, stream: StreamId, max: usize) -> Result<Option<Vec<Bytes>>, Error> {
        let (tx, rx) = mpsc::channel();
        p.b.command(Command::Read {
            op: OpId::next(),
            conn,
            stream,
            max,
            reply: to(tx),
        });
        rx.try_recv().unwrap()
    }

    #[test]
    fn a_read_takes_every_piece_there_is_up_to_its_max() {
        let mut p = Pair::new();
        let (a, b) = connect(&mut p);
        let message: Bytes = (0..6_000u32).map(|i| i as u8).collect::<Vec<u8>>().into();
        let rx = send_bytes(&mut p, a, message.clone());
        p.settle();
        rx.try_recv().unwrap().unwrap();
        let stream = accept_stream(&mut p, b);
        // At most `max` bytes, however many pieces.
        let first = read(&mut p, b, stream, 100).unwrap().unwrap();
        assert_eq!(first.iter().map(Bytes::len).sum::<usize>(), 100);
        // The rest in one answer: several datagrams' pieces, in order.
        let rest = read(&mut p, b, stream, usize::MAX).unwrap().unwrap();
        assert!(rest.len() > 1, "{} pieces", rest.len());
        let got: Vec<u8> = first
            .iter()
            .chain(&rest)
            .flat_map(|c| c.iter().copied())
            .collect();
        assert_eq!(got, message);
        // Then the end, told by the next read.
        assert!(read(&mut p, b, stream, usize::MAX).unwrap().is_none());
    }

    #[test]
    fn a_message_whose_receiver_gave_up_goes_to_the_next_receive() {
        let mut p = Pair::new();
        let (a, b) = connect(&mut p);
        recv(&mut p.b, b, gone());
        send(&mut p, a, "kept");
        let (tx, rx) = mpsc::channel();
        recv(&mut p.b, b, to(tx));
        assert_eq!(&rx.try_recv().unwrap().unwrap()[..], b"kept");
    }

    #[test]
    fn returned_values_come_first_to_the_next_call() {
        let mut p = Pair::new();
        let (a, b) = connect(&mut p);
        send(&mut p, a, "second");
        p.b.command(Command::Return(Returned::Message(
            b,
            Bytes::from_static(b"first"),
        )));
        for want in ["first", "second"] {
            let (tx, rx) = mpsc::channel();
            recv(&mut p.b, b, to(tx));
            assert_eq!(&rx.try_recv().unwrap().unwrap()[..], want.as_bytes());
        }
    }

    #[test]
    fn a_cancelled_call_is_answered_once_with_timed_out() {
        let mut p = Pair::new();
        let (_, b) = connect(&mut p);
        let (tx, rx) = mpsc::channel();
        let op = OpId::next();
        p.b.command(Command::RecvMessage {
            op,
            conn: b,
            limit: 1 << 20,
            reply: to(tx),
        });
        assert!(rx.try_recv().is_err(), "nothing to receive yet");
        p.b.command(Command::Cancel(op));
        assert!(matches!(rx.try_recv().unwrap(), Err(Error::TimedOut)));
        p.b.command(Command::Cancel(op));
        assert!(rx.try_recv().is_err(), "answered twice");
    }

    #[test]
    fn a_connection_id_is_never_reused() {
        let mut p = Pair::new();
        let (a1, _) = connect(&mut p);
        p.a.command(Command::Release(Released::Connection(a1)));
        p.settle();
        let (a2, _) = connect(&mut p);
        assert_ne!(a1, a2);
        // The old id names the old, closed connection, not the new one.
        let (tx, rx) = mpsc::channel();
        p.a.command(Command::SendMessage {
            op: OpId::next(),
            conn: a1,
            label: None,
            data: Bytes::from_static(b"stale"),
            confirm: Confirm::Queued,
            reply: to(tx),
        });
        assert!(rx.try_recv().unwrap().is_err());
    }
}
