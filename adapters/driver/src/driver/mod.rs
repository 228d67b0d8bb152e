//! The driver: the core endpoint, what its handles know of it, and the calls waiting on it.
//!
//! Inputs: datagrams, timer expiries (from the adapter's loop) and the handles' calls
//! (`calls.rs`, each a `poll_*` that answers now or registers the caller's waker).
//! Outputs: datagrams to send, answers, wake-ups, and `tracing` events (connections opened
//! and closed, handshake failures, resets). After each input the core's events are read
//! once ([`Driver::events`]); what they name (a stream, or a whole connection) is marked,
//! and the calls waiting on it are woken to poll again. A value is taken out of the core
//! only by the poll that returns it, so a call dropped before its answer loses nothing,
//! and a waiting call holds no bytes: what the peer sends stays in the core, under flow
//! control, until a read takes it.
//!
//! | file | concern |
//! | --- | --- |
//! | `mod.rs` | the driver's state, the loop's inputs and outputs, shutdown |
//! | `events.rs` | the core's events: what each marks for the waiting calls, and the records it moves |
//! | `waiting.rs` | the calls waiting: what each waits on, and whom a change wakes (those on a connection found by its slot) |
//! | `conn.rs` | what the driver keeps of one connection: its end, the ends of streams being read, the confirmations awaited |
//! | `conn_table.rs` | where those records are found: by the core handle's slot, with the ended ones whose slot was reused set aside |
//! | `calls.rs` | the handles' calls: connect, accept, send, open, write, finish, close, pipes |
//! | `reads.rs` | reads: a stream's bytes, whole messages, the streams the peer opened |
//! | `metrics.rs` | the endpoint's counters and gauges through the `metrics` facade |
//! | `pool.rs` | the connection pool: one connection per peer, dials coalesced, idle connections parked, up/down events |
//! | `requests.rs` | requests and replies: the bodies of the peer's requests, replies matched to ours, cancels |
//! | `recording.rs` | the trace file (`WEIR_TRACE`): its name, held while the endpoint records to it |

mod calls;
mod clock;
mod conn;
mod conn_table;
mod events;
mod metrics;
mod pipes;
mod pool;
mod reads;
mod recording;
mod requests;
#[cfg(test)]
mod tests;
mod waiting;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use bytes::BytesMut;
use weir_core::time::Instant;
use weir_core::wire::{Reason, StreamId};
use weir_core::{Config, ConnectionHandle, PipeId, Transmit};

pub(crate) use calls::Sending;
pub(crate) use calls::{refused, stop_for};
use clock::Clock;
use conn::{Conn, PipeRecord, Shutdown};
pub use metrics::describe as describe_metrics;
pub(crate) use pool::{Claim, PoolKey};
pub use pool::{PeerEvent, DEFAULT_POOL_IDLE};
use recording::Recording;
pub use waiting::CallId;
pub(crate) use waiting::Spared;
use waiting::{Parked, Wait};

use crate::Connected;

/// How long a shutting-down driver waits for the peers to acknowledge what was written.
const DRAIN_LIMIT: StdDuration = StdDuration::from_secs(3);

/// How long it then waits for the connections to end: the core's close lingers up to 3 s
/// (or three PTOs) for its last acknowledgements and receipts, then answers stragglers with
/// CLOSE for three PTOs (spec §8, Liveness and close).
const CLOSE_LIMIT: StdDuration = StdDuration::from_secs(4);
/// The environment variable naming the file a trace is recorded to (spec/trace.md).
pub const TRACE_ENV: &str = "WEIR_TRACE";

/// The core endpoint, the connections its handles know, and the wakers of the calls waiting
/// on it. See the crate documentation for how an adapter drives it.
pub struct Driver {
    ep: weir_core::Endpoint,
    /// The socket's address: the figures' label.
    local: SocketAddr,
    /// What the figures sum (module `metrics`).
    metrics: metrics::Sums,
    /// Where the core's time starts (its zero), by `clock`.
    started: StdInstant,
    /// The clock's last reading ([`wall`](Self::wall)), for what needs the time only
    /// roughly: the figures' one-second period (`publish_metrics`), checked after every
    /// call, read the clock each time, a tenth of a round trip's clock reads.
    seen: std::cell::Cell<StdInstant>,
    /// The core's last deadline and its wall-clock time ([`deadline`](Self::deadline)):
    /// asked after nearly every call, mostly unchanged, and the sum that converts it is a
    /// tenth of what the question cost.
    core_deadline: std::cell::Cell<Option<(Instant, StdInstant)>>,
    /// The clock's last reading converted to the core's time, beside that reading: a
    /// batch's datagrams after its first are polled at it (`poll_transmit_next`), and the
    /// conversion for each was 0.5% of the instructions of weir-bench's `big-request`
    /// sender (callgrind).
    seen_core: std::cell::Cell<Option<(StdInstant, Instant)>>,
    /// Where time comes from.
    clock: Clock,
    /// How often the clock was read (tests: a batch reads it once).
    #[cfg(test)]
    reads: std::cell::Cell<u64>,
    /// The connections the handles know, by their core handle: handles are
    /// generation-tagged and never name another connection, so one kept after its
    /// connection ended can only ever see that end (kept here until released).
    conns: conn_table::ConnTable,
    /// Connections clients opened that no accept took yet.
    accepted: VecDeque<Connected>,
    /// The calls waiting, by what they wait on.
    wakers: waiting::Waiters,
    /// Calls to wake once the driver's lock is released ([`Driver::take_woken`]): a task
    /// woken under the lock would only find it held.
    woken: Vec<Parked>,
    /// The call being asked, if it has an identity: what a call that must wait registers
    /// as (module `waiting`; set by every call through `Shared`, `None` for most).
    pub(crate) asking: Option<CallId>,
    /// What changed since the waiting calls were last woken: a stream of a connection, or
    /// (`None`) the whole connection; in the order marked, with repeats (`wake_changed`
    /// sorts them and drops the repeats). A list, not an ordered set: a burst of messages
    /// marks two or three streams per message, and the set's emptying (`BTreeSet::retain`,
    /// 2.0%) and B-tree insertions (1.4%; gone with the set) were 3.4% of a messages run's
    /// client (adapters/bench/rounds.md, issue 35's tenth round).
    dirty: Vec<(ConnectionHandle, Option<StreamId>)>,
    /// A handshake ended since [`take_handshake_ended`](Self::take_handshake_ended) last
    /// looked.
    handshake_ended: bool,
    pipes: BTreeMap<PipeId, PipeRecord>,
    /// The connection pool (module `pool`).
    pool: pool::Pool,
    /// When our requests stop waiting for their replies to begin (module `requests`).
    request_deadlines: BTreeSet<(StdInstant, ConnectionHandle, StreamId)>,
    shutdown: Option<Shutdown>,
    trace: Option<Recording>,
}

/// 32 bytes from the operating system's generator; should it fail (no such generator on
/// this platform), the process's hash keys, the port and the clock, hashed: unpredictable
/// enough to keep endpoints apart, not enough for secrets.
pub(crate) fn os_seed(local: SocketAddr) -> weir_core::Seed {
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
    /// the local port, so that several endpoints can record at once, and a shard of an
    /// endpoint (`Config::connection_id_prefix`) adds its number: `.0`, `.1`, ... A name
    /// another endpoint of this process records to gets `.PORT` added (module `recording`).
    pub fn new(config: Config, local: SocketAddr) -> Driver {
        // Fresh bytes apart from the seed: the ephemeral keys, connection ids and packet
        // numbers left out then owe nothing to the seed alone (forward secrecy, spec §11.1).
        let mut fresh = [0u8; 32];
        let fresh = getrandom::fill(&mut fresh).is_ok().then_some(fresh);
        let pattern = std::env::var_os(TRACE_ENV).map(|p| p.to_string_lossy().into_owned());
        Driver::with(config, local, (os_seed(local), fresh), Clock::System, pattern)
    }

    /// A driver on `seed` and, if given, fresh entropy besides (`Endpoint::add_entropy`),
    /// whose time comes from `clock`, recording its trace where `pattern` says (`WEIR_TRACE`'s
    /// form), if given.
    fn with(
        config: Config,
        local: SocketAddr,
        (seed, fresh): (weir_core::Seed, Option<[u8; 32]>),
        clock: Clock,
        pattern: Option<String>,
    ) -> Driver {
        let config = Config {
            prefetch: config.prefetch.or(Some(crate::prefetch)),
            ..config
        };
        let trace = pattern.and_then(|pattern| Recording::open(&pattern, local, config.connection_id_prefix));
        let mut ep = if trace.is_some() {
            weir_core::Endpoint::new_traced(config, seed)
        } else {
            weir_core::Endpoint::new(config, seed)
        };
        if let Some(fresh) = fresh {
            ep.add_entropy(&fresh);
        }
        if let (Some(trace), Some(secrets)) = (&trace, ep.trace_secrets()) {
            // The trace records no secret; the replayer takes them from here (spec/trace.md).
            let path = crate::secrets_path(std::path::Path::new(trace.name()));
            let written = crate::create_trace_file(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, secrets.to_text().as_bytes()));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), %e, "cannot write the trace's secrets");
            }
        }
        Driver {
            ep,
            local,
            metrics: metrics::Sums::default(),
            started: clock.now(),
            seen: std::cell::Cell::new(clock.now()),
            core_deadline: std::cell::Cell::new(None),
            seen_core: std::cell::Cell::new(None),
            clock,
            #[cfg(test)]
            reads: std::cell::Cell::new(0),
            conns: conn_table::ConnTable::default(),
            accepted: VecDeque::new(),
            wakers: waiting::Waiters::default(),
            asking: None,
            woken: Vec::new(),
            dirty: Vec::new(),
            handshake_ended: false,
            pipes: BTreeMap::new(),
            pool: pool::Pool::default(),
            request_deadlines: BTreeSet::new(),
            shutdown: None,
            trace,
        }
    }

    fn now(&self) -> Instant {
        let wall = self.wall();
        let now = self.instant(wall);
        self.seen_core.set(Some((wall, now)));
        now
    }

    /// The clock's last reading ([`seen`](Self::seen)) as the core's time.
    fn seen_now(&self) -> Instant {
        let seen = self.seen();
        match self.seen_core.get() {
            Some((at, now)) if at == seen => now,
            _ => {
                let now = self.instant(seen);
                self.seen_core.set(Some((seen, now)));
                now
            }
        }
    }

    /// `at` as the core's time.
    fn instant(&self, at: StdInstant) -> Instant {
        Instant::from_micros(at.saturating_duration_since(self.started).as_micros() as u64)
    }

    /// The driver's clock as it last read it (every call, datagram and timeout reads it),
    /// without reading it again: for a loop that needs only roughly how far off
    /// [`deadline`](Self::deadline) is.
    pub fn last_reading(&self) -> StdInstant {
        self.seen()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn deadline(&self) -> Option<StdInstant> {
        let mut at = self.ep.poll_timeout().map(|t| match self.core_deadline.get() {
            Some((core, wall)) if core == t => wall,
            _ => {
                let wall = self.started + StdDuration::from_micros(t.as_micros());
                self.core_deadline.set(Some((t, wall)));
                wall
            }
        });
        if let Some(s) = &self.shutdown {
            let limit = s.close_until.unwrap_or(s.drain_until);
            at = Some(at.map_or(limit, |t| t.min(limit)));
        }
        let ours = [
            self.next_request_deadline(),
            self.next_pool_deadline(),
            self.metrics_deadline(),
        ];
        for limit in ours.into_iter().flatten() {
            at = Some(at.map_or(limit, |t| t.min(limit)));
        }
        at
    }

    /// Whether `datagram` is for a connection or relay circuit this driver's endpoint
    /// holds (`weir_core::Endpoint::holds_destination`): how the shards of one endpoint
    /// find the one a relayed datagram is for.
    pub fn holds_destination(&self, datagram: &[u8]) -> bool {
        self.ep.holds_destination(datagram)
    }

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, datagram: BytesMut) {
        self.handle_datagrams([(from, datagram)]);
    }

    /// Datagrams arrived, each from its source (another shard's socket received them,
    /// module `shards`): each run from one source goes to the core as one batch
    /// (`Endpoint::handle_datagrams`); the waiting calls are answered once, after all of
    /// them.
    pub fn handle_datagrams(&mut self, datagrams: impl IntoIterator<Item = (SocketAddr, BytesMut)>) {
        let now = self.now();
        let mut datagrams = datagrams.into_iter().peekable();
        while let Some((from, first)) = datagrams.next() {
            let run = std::iter::from_fn(|| datagrams.next_if(|(f, _)| *f == from).map(|(_, d)| d));
            self.ep
                .handle_datagrams(now, from, std::iter::once(first).chain(run));
        }
        self.progress();
    }

    /// One receive's worth from `from`: datagrams of `stride` bytes back to back, the last
    /// possibly shorter (a GRO batch; one datagram when `stride` is its length or 0). Each
    /// goes to the core as a view of `received`, uncopied, and all as one batch (the core
    /// accounts a run of packets for one connection once: `Endpoint::handle_datagrams`); the
    /// waiting calls are answered once, after all of them.
    pub fn handle_received(&mut self, from: SocketAddr, received: BytesMut, stride: usize) {
        let now = self.now();
        self.ep
            .handle_datagrams(now, from, crate::io::datagrams(received, stride));
        self.progress();
    }

    /// Whether a connection's handshake ended since the last call. A client's then has
    /// its handshake's last message to send, which the server waits for before its
    /// `accept` answers: a loop that lets the woken calls run before it sends would hold it
    /// for as long as the application runs on (weir-tokio's driver task sends it first).
    pub fn take_handshake_ended(&mut self) -> bool {
        std::mem::take(&mut self.handshake_ended)
    }

    /// Fires the core's timers that are due.
    pub fn handle_timeout(&mut self) {
        let now = self.now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        let at = self.wall();
        self.expire_requests(at);
        self.expire_parked(at);
        self.progress();
    }

    /// The next datagram to send, written into `buf` (at least
    /// [`MAX_DATAGRAM_SIZE`](weir_core::wire::MAX_DATAGRAM_SIZE) bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        // Most polls find nothing to send (one after each call, to see whether it left
        // something): those read no clock (`Endpoint::may_transmit`), a third of a round
        // trip's clock reads.
        if !self.ep.may_transmit() {
            return None;
        }
        let now = self.now();
        self.ep.poll_transmit(now, buf)
    }

    /// The next datagram of a batch whose first came from
    /// [`poll_transmit`](Self::poll_transmit), at that one's time (the clock's last
    /// reading) rather than a new one: the datagrams of a batch leave together, in one
    /// system call. A reading for each was 2.6% of a sender's CPU time (weir-bench's
    /// `big-request` client, `perf record`).
    pub fn poll_transmit_next(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let now = self.seen_now();
        self.ep.poll_transmit(now, buf)
    }

    /// The endpoint's [`Config::advise_buffer`]: what a whole-stream read shows its large
    /// buffers to.
    pub(crate) fn advise_buffer(&self) -> Option<fn(*const u8, usize)> {
        self.ep.config().advise_buffer
    }

    /// This endpoint's public key: its identity, which clients name in `connect_to`.
    pub fn public_key(&self) -> weir_core::PublicKey {
        self.ep.public_key()
    }

    /// The core endpoint's counters.
    pub fn stats(&self) -> weir_core::EndpointStats {
        self.ep.stats()
    }

    /// Reads the core's events and wakes the calls waiting on what they changed.
    fn progress(&mut self) {
        self.events();
        if !self.dirty.is_empty() || !self.accepted.is_empty() {
            self.wake_changed();
        }
        for (&id, p) in self.pipes.iter_mut() {
            if p.result.is_none() {
                if let Some(s) = self.ep.pipe_stats(id) {
                    p.stats = s;
                }
            }
        }
        self.flush_trace();
        self.publish_metrics();
    }

    fn flush_trace(&mut self) {
        if let Some(Recording { out, .. }) = self.trace.as_mut() {
            let text = self.ep.take_trace();
            if !text.is_empty() && out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                tracing::warn!("writing the trace failed; recording stops");
                self.trace = None;
            }
        }
    }

    /// Starts a graceful shutdown: calls still waiting (woken now) and any that come are
    /// answered with [`Error::Shutdown`](crate::Error::Shutdown); the peers get up to 3 s
    /// to acknowledge what was written, then every connection is closed, and kept up to
    /// 4 s to finish its close (its last acknowledgements and receipts, then CLOSE,
    /// repeated to a peer that did not hear it). Keep driving the driver until
    /// [`is_shut_down`](Self::is_shut_down).
    pub fn shutdown(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        self.wake_all();
        self.shutdown = Some(Shutdown {
            drain_until: self.wall() + DRAIN_LIMIT,
            close_until: None,
        });
        tracing::debug!(connections = self.ep.connection_count(), "shutting down");
    }

    /// Whether a shutdown began.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Whether a shutdown finished: every connection closed and gone from the core, or the
    /// time allowed ran out. Moves the shutdown on as time passes.
    pub fn is_shut_down(&mut self) -> bool {
        let Some(s) = &self.shutdown else {
            return false;
        };
        let at = self.wall();
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
        self.conns
            .iter()
            .filter(|(_, c)| c.ended.is_none())
            .map(|(h, _)| h)
            .filter(|&h| self.ep.is_established(h))
    }

    // ------------------------------------------------------------ bookkeeping

    /// A connection the handles will know: its record, and the `tracing` span its events
    /// are logged in (named `connection`, with its handle and the peer's address).
    fn register(&mut self, h: ConnectionHandle) -> ConnectionHandle {
        let remote = self.ep.remote_address(h);
        let span = tracing::info_span!("connection", conn = %h, ?remote);
        self.conns.insert(
            h,
            Conn {
                // A span no subscriber wants is not kept: entering it for each event would
                // cost every event (with `tracing`'s `log` fallback on, two log records).
                span: Some(span).filter(|s| !s.is_disabled()),
                ..Conn::default()
            },
        );
        h
    }

    /// `h`, if it names a connection the handles know that has not ended.
    fn live_conn(&self, h: ConnectionHandle) -> Option<ConnectionHandle> {
        self.conns.get(&h).filter(|c| c.ended.is_none()).map(|_| h)
    }

    /// Drops what is kept of a connection that ended and has no handle left, and lets the
    /// core let go of it too (it keeps one that ended with something untold until released).
    fn forget_if_done(&mut self, conn: ConnectionHandle) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.released && c.ended.is_some())
        {
            self.conns.remove(&conn);
            // Refused only if the core let go of it already.
            let _ = self.ep.release(conn);
        }
    }

    /// Closes a connection no handle is left of once the peer acknowledged everything
    /// written to it (a peer that stops answering ends it by the idle timeout).
    fn close_if_acked(&mut self, conn: ConnectionHandle) {
        if !self.conns.get(&conn).is_some_and(|c| c.released) {
            return;
        }
        let Some(h) = self.live_conn(conn) else {
            return;
        };
        if self.ep.is_established(h) && self.ep.buffered(h).is_none_or(|(_, unacked)| unacked == 0) {
            let now = self.now();
            let _ = self.ep.close(now, h, 0, Reason::default());
        }
    }
}
