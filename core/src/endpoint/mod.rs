//! The endpoint: owns every connection, routes datagrams to them by connection id, accepts
//! or refuses new clients, answers what has no connection (statelessly), and hands the
//! application one stream of outputs (spec/protocol.md §3.6, §6, §7).
//!
//! # Driving it
//!
//! ```text
//! loop {
//!     // inputs: whatever happened since the last turn
//!     endpoint.handle_datagram(now, from, bytes);        // for each datagram received
//!     endpoint.handle_timeout(now);                      // when poll_timeout() has passed
//!     endpoint.connect(..) / write(..) / read(..) / ..   // application commands
//!     // outputs: drain them all, in this order
//!     while let Some(t) = endpoint.poll_transmit(now, &mut buf) { send(&buf[..t.len], t.destination) }
//!     while let Some(e) = endpoint.poll_event() { handle(e) }
//!     sleep_until(endpoint.poll_timeout());              // or until a datagram arrives
//! }
//! ```
//!
//! Nothing happens between calls: the endpoint reads no clock and starts no timer; `now` is
//! whatever the driver says. Same configuration, seed and inputs give byte-identical outputs.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::admission::{Admission, Admissions, Dropped, HelloKey, Load, Token};
use crate::command::{Command, Done, MessageDigest, ReadUnit};
use crate::config::{AcceptPolicy, Config};
use crate::congestion::CongestionAlgorithm;
use crate::connection::{Connection, ServerAnswer, Slot, Timer};
use crate::crypto::keys::{Entropy, Identity, PublicKey, Seed};
use crate::event::{ApiError, CloseReason, Event, Priority, Read, StreamHeader, ViolationKind};
use crate::handle::ConnectionHandle;
use crate::handshake::{self, Negotiated};
use crate::pacing::TokenBucket;
use crate::pipe::{Branch, LocalRead, Pipe, PipeFailure, PipeId, PipeStats, Target, TargetState};
use crate::record::Recorder;
use crate::stats::ConnectionStats;
use crate::stream::held;
use crate::time::{Duration, Instant};
use crate::verify::Digest;
use crate::wire::{
    self, ConnectionId, DecodeError, Field, Frame, Header, Invariant, KeyPhase, Label, Limit, Packet,
    PacketKind, PacketNumberLen, PacketWriter, Reason, Reject, RejectReason, StreamId, TransportErrorCode,
    VersionReject, Violation, MIN_DATAGRAM_SIZE, PIPE_BROKEN, VERSION_1, VERSION_2,
};

mod commands;
mod piping;
mod stateless;

use stateless::{write_stateless, Stateless, MAX_RESET_LEN, MIN_RESET_LEN};

/// A datagram to send: the first `len` bytes of the buffer given to
/// [`Endpoint::poll_transmit`], to `destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer it takes.
    pub len: usize,
}

/// Counters of what the endpoint received, dropped and answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to [`Endpoint::handle_datagram`].
    pub datagrams_received: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Dropped: not a weir datagram of a version we read (bad header, bad trailer, ...).
    pub dropped_malformed: u64,
    /// Dropped: for a connection id we do not know.
    pub dropped_unknown_connection: u64,
    /// HELLOs refused with REJECT (capacity, policy, version).
    pub rejected: u64,
    /// Answers to unreadable versions.
    pub version_rejects_sent: u64,
    /// Stateless answers not sent because too many were waiting.
    pub stateless_dropped: u64,
    /// HELLOs answered with RETRY: the client must prove its address first (spec §10.1).
    pub retries_sent: u64,
    /// HELLOs refused for a token that was not ours, or too old (REJECT INVALID_TOKEN).
    pub invalid_tokens: u64,
    /// HELLOs dropped unanswered because their address is banned for past violations
    /// (spec §10.5).
    pub dropped_banned: u64,
    /// HELLOs dropped unanswered because the handshake rate was spent (spec §10.3).
    pub dropped_rate_limited: u64,
    /// Connections closed because the peer broke the protocol.
    pub violations: u64,
    /// Datagrams that failed authentication (version 2: a sealed packet whose tag did not
    /// verify under its connection's keys): dropped, never answered (spec §11.4).
    pub dropped_unauthenticated: u64,
    /// NOISE_HELLOs whose first message the endpoint read: each cost public-key operations
    /// (one or two X25519), whether it then opened or not. Admission keeps them to the
    /// handshake rate (spec §10.3): the rest get a RETRY, a MAC each.
    pub noise_hellos_read: u64,
    /// Stateless resets sent: answers to data packets for connection ids we do not know,
    /// each shorter than what it answers (spec §6.1).
    pub resets_sent: u64,
    /// Client connections ended by their server's stateless reset (`CloseReason::Reset`).
    pub resets_received: u64,
}

/// What an endpoint holds now: the quantities its limits bound (spec/protocol.md §10.3).
/// Computed on demand by walking every connection: for monitoring, not for a hot loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointLoad {
    /// Connections held, in any state (at most `Config::max_connections`).
    pub connections: usize,
    /// Server handshakes in progress: state kept for clients not yet confirmed.
    pub handshakes_pending: usize,
    /// Addresses whose protocol violations are remembered (at most
    /// `Config::max_tracked_addresses`).
    pub addresses_tracked: usize,
    /// Stateless answers waiting to be sent (at most 256).
    pub stateless_queued: usize,
    /// Stream bytes received and not yet read by the application, all connections.
    pub bytes_received_unread: u64,
    /// Stream bytes written and not yet acknowledged, all connections (held by reference to
    /// the application's buffers).
    pub bytes_unacknowledged: u64,
    /// The connections' receive budgets added up (each twice its receive window, with the
    /// growth granted it, and a small floor; spec §10.3): the most heap their peers may make
    /// the endpoint hold with received data (at most `Config::receive_buffer_total`).
    pub receive_budgets: u64,
}

/// The endpoint's send rate allows bursts of 1/this of a second's worth.
const RATE_BURSTS_PER_SECOND: u64 = 100;

/// The burst the endpoint's send rate allows (bytes), and the datagram size it waits for.
fn rate_burst(config: &Config, rate: u64) -> (u64, usize) {
    let datagram = usize::from(config.max_datagram_size).max(MIN_DATAGRAM_SIZE);
    ((rate / RATE_BURSTS_PER_SECOND).max(2 * datagram as u64), datagram)
}

/// Most stateless answers waiting at once; beyond, new ones are dropped (they are cheap to
/// lose: the client retries).
const MAX_STATELESS: usize = 256;

/// The smallest receive window a new connection starts with when
/// `Config::receive_buffer_total` is nearly spoken for: below it, the connection is refused
/// (the spec's default initial credit, §4.14).
const MIN_RECEIVE_WINDOW: u64 = 64 << 10;

/// What each connection may hold in its send buffer whatever `Config::send_buffer_total`
/// has left (if `send_buffer` is not smaller): a connection is never starved by others.
const SEND_FLOOR: u64 = 64 << 10;

/// A weir endpoint: one local socket's worth of connections. See the module docs for the
/// driving loop.
pub struct Endpoint {
    config: Config,
    conns: Vec<Option<Connection>>,
    /// Empty slots, with the generation of the connection each held last.
    free: Vec<(u32, u32)>,
    by_cid: BTreeMap<ConnectionId, u32>,
    /// Our client connections by the stateless reset token their server gave (spec §6.1).
    by_reset: BTreeMap<[u8; 16], u32>,
    /// Server connections still answering their HELLO, by what identifies that HELLO.
    by_hello: BTreeMap<HelloKey, u32>,
    /// (deadline, slot), one entry per connection with a timer; `timer_of` says which.
    timers: BTreeSet<(Instant, u32)>,
    timer_of: Vec<Option<Instant>>,
    ready: VecDeque<u32>,
    queued: Vec<bool>,
    events: VecDeque<Event>,
    stateless: VecDeque<Stateless>,
    stats: EndpointStats,
    /// Who gets a connection (module `admission`), and the server handshakes in progress:
    /// `half_open[slot]` for each, `pending` of them.
    admission: Admissions,
    half_open: Vec<bool>,
    pending: usize,
    /// What each connection's receive budget holds of `Config::receive_buffer_total`
    /// (`Connection::budget_reserved`, as of its last touch), and their sum.
    windows: Vec<u64>,
    windows_total: u64,
    /// What each connection's send buffer holds (as of its last touch), their sum
    /// (`Config::send_buffer_total`'s use), and the connections whose writes that budget
    /// refused, to be told `Writable` once it has room for them.
    sends: Vec<u64>,
    sends_total: u64,
    send_waiters: BTreeSet<u32>,
    /// The endpoint-wide send rate (`Config::max_send_rate`), and when it next allows a
    /// datagram if it held one back.
    rate: TokenBucket,
    rate_wake: Option<Instant>,
    /// Pipes by id (module `pipe`), and the next id to give.
    pipes: BTreeMap<PipeId, Pipe>,
    next_pipe: u32,
    /// Each pipe under every connection it involves (source and targets), so a datagram
    /// pumps only its connection's pipes.
    pipes_by_conn: BTreeSet<(ConnectionHandle, PipeId)>,
    /// The sum of `Pipe::reserved` over `pipes` (the endpoint-wide cap's use).
    pipes_reserved: u64,
    /// Set by [`Endpoint::new_traced`]: the trace being recorded (module `trace`), and the
    /// deadline it last recorded.
    trace: Option<Box<Recorder>>,
    traced_deadline: Option<Instant>,
    /// The latest time a command carried: what the typed methods that take no time pass
    /// [`Endpoint::command`] (the commands they stand for do not read it).
    latest: Instant,
    /// Who this endpoint is to its peers (spec §11.1): the configured identity, or one from
    /// the seed.
    identity: Identity,
    /// Secrets for each connection's handshake (spec §11.1).
    entropy: Entropy,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.by_cid.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with `config`, all of whose randomness (connection ids, packet numbers
    /// left out, ephemeral keys, RETRY token keys, and its identity if the config names
    /// none) comes from `seed`, and from what [`add_entropy`](Self::add_entropy) mixes in.
    /// A number will do in tests and simulations; anywhere an attacker may be, pass 32
    /// secret random bytes ([`Seed::from_bytes`]), and fresh ones to `add_entropy`.
    pub fn new(config: Config, seed: impl Into<Seed>) -> Self {
        let seed = seed.into();
        let burst = config.max_send_rate.map_or(0, |r| rate_burst(&config, r).0);
        let admission = Admissions::new(&config, &seed);
        let identity = config
            .identity
            .clone()
            .unwrap_or_else(|| Identity::from_seed(&seed));
        Endpoint {
            identity,
            entropy: Entropy::new(&seed, b"weir connection secrets"),
            config,
            conns: Vec::new(),
            free: Vec::new(),
            by_cid: BTreeMap::new(),
            by_reset: BTreeMap::new(),
            by_hello: BTreeMap::new(),
            timers: BTreeSet::new(),
            timer_of: Vec::new(),
            ready: VecDeque::new(),
            queued: Vec::new(),
            events: VecDeque::new(),
            stateless: VecDeque::new(),
            stats: EndpointStats::default(),
            admission,
            half_open: Vec::new(),
            pending: 0,
            windows: Vec::new(),
            windows_total: 0,
            sends: Vec::new(),
            sends_total: 0,
            send_waiters: BTreeSet::new(),
            rate: TokenBucket::new(Instant::ZERO, burst),
            rate_wake: None,
            pipes: BTreeMap::new(),
            pipes_by_conn: BTreeSet::new(),
            pipes_reserved: 0,
            next_pipe: 0,
            trace: None,
            traced_deadline: None,
            latest: Instant::ZERO,
        }
    }

    /// [`new`](Self::new), recording a trace (spec/trace.md) of everything the endpoint is
    /// given and gives back from now on; drain it with [`take_trace`](Self::take_trace) and
    /// check it with [`trace::replay`](crate::trace::replay). Recording reads what the
    /// calls pass and return and changes nothing else: a traced endpoint behaves exactly as
    /// an untraced one.
    pub fn new_traced(config: Config, seed: impl Into<Seed>) -> Self {
        let seed = seed.into();
        let recorder = Recorder::new(&config, &seed);
        let mut ep = Self::new(config, seed);
        ep.trace = Some(Box::new(recorder));
        ep
    }

    /// The trace text recorded since the last call (the header comes with the first); empty
    /// if the endpoint was not made with [`new_traced`](Self::new_traced). Until drained the
    /// text stays in memory: drain it as often as it should be bounded.
    pub fn take_trace(&mut self) -> String {
        self.trace.as_mut().map(|t| t.take()).unwrap_or_default()
    }

    /// What the trace leaves out (spec/trace.md §2.1): the seed, the configured identity's
    /// secret key and the fresh entropy given so far, for the replayer to take apart from
    /// the trace. Write it where only the trace's owner reads it; `None` if the endpoint
    /// was not made with [`new_traced`](Self::new_traced).
    pub fn trace_secrets(&self) -> Option<crate::trace::TraceSecrets> {
        self.trace.as_ref().map(|t| t.secrets().clone())
    }

    /// Records the deadline if it changed since it was last recorded (spec/trace.md: the
    /// recorder writes the next timeout after each call that moves it).
    fn trace_deadline(&mut self) {
        if self.trace.is_none() {
            return;
        }
        let at = self.poll_timeout();
        if let Some(t) = self.trace.as_mut() {
            if at != self.traced_deadline {
                self.traced_deadline = at;
                t.deadline(at);
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// What the endpoint holds now (walks every connection).
    pub fn load(&self) -> EndpointLoad {
        let mut load = EndpointLoad {
            connections: self.by_cid.len(),
            handshakes_pending: self.pending,
            addresses_tracked: self.admission.tracked(),
            stateless_queued: self.stateless.len(),
            receive_budgets: self.windows_total,
            ..EndpointLoad::default()
        };
        for conn in self.conns.iter().flatten() {
            let (recv, send) = conn.buffered();
            load.bytes_received_unread += recv;
            load.bytes_unacknowledged += send;
        }
        load
    }

    /// How many connections the endpoint holds (in any state).
    pub fn connection_count(&self) -> usize {
        self.by_cid.len()
    }

    /// The connections the endpoint holds (in any state), in handle order: for tools that
    /// watch an endpoint they did not drive themselves, such as a trace's replay.
    pub fn connections(&self) -> impl Iterator<Item = ConnectionHandle> + '_ {
        self.conns.iter().filter_map(|c| c.as_ref().map(|c| c.handle))
    }

    // ------------------------------------------------------------ slots

    fn fresh_cid(&mut self) -> ConnectionId {
        loop {
            let id = ConnectionId::from_u64(self.entropy.next_u64());
            if id != ConnectionId::UNSET && !self.by_cid.contains_key(&id) {
                return id;
            }
        }
    }

    /// A slot for a new connection, with its id and secret.
    fn new_slot(&mut self) -> Slot {
        let cid = self.fresh_cid();
        self.new_slot_with(cid)
    }

    /// A slot for a new connection whose id is `cid` (from `fresh_cid`).
    fn new_slot_with(&mut self, cid: ConnectionId) -> Slot {
        let skip_seed = self.entropy.next_u64();
        Slot {
            handle: self.alloc_slot(),
            cid,
            skip_seed,
            entropy: self.entropy.child(),
        }
    }

    /// A free slot, as the handle of its next connection (a new generation of a reused one).
    fn alloc_slot(&mut self) -> ConnectionHandle {
        if let Some((slot, last)) = self.free.pop() {
            return ConnectionHandle::new(slot, last.wrapping_add(1));
        }
        self.conns.push(None);
        self.timer_of.push(None);
        self.queued.push(false);
        self.half_open.push(false);
        self.windows.push(0);
        self.sends.push(0);
        ConnectionHandle::new((self.conns.len() - 1) as u32, 0)
    }

    /// The connection `h` names: none if its slot is empty or holds a later connection.
    fn conn(&mut self, h: ConnectionHandle) -> Result<&mut Connection, ApiError> {
        self.conns
            .get_mut(h.slot())
            .and_then(Option::as_mut)
            .filter(|c| c.handle == h)
            .ok_or(ApiError::UnknownConnection)
    }

    /// As [`conn`](Self::conn), to look at.
    fn lookup(&self, h: ConnectionHandle) -> Option<&Connection> {
        self.conns.get(h.slot())?.as_ref().filter(|c| c.handle == h)
    }

    /// The handle of the connection in `slot`, if any.
    fn handle_of(&self, slot: u32) -> Option<ConnectionHandle> {
        Some(self.conns.get(slot as usize)?.as_ref()?.handle)
    }

    /// Keeps the sum of receive budgets under `Config::receive_buffer_total` (spec §10.3):
    /// re-counts `slot`'s (nothing once closed) and lets its window grow into what is left
    /// if it wanted to (each byte of window takes two of the budget).
    fn account_window(&mut self, slot: u32) {
        let i = slot as usize;
        self.windows_total -= self.windows[i];
        self.windows[i] = 0;
        // What the others hold and what is kept for newcomers, before borrowing this one.
        let others = self.windows_total + self.floors_for_newcomers(0);
        let budget = self.config.receive_buffer_total;
        let Some(conn) = self.conns[i].as_mut().filter(|c| !c.is_closed()) else {
            return;
        };
        if conn.window_starved() {
            let used = others + conn.budget_reserved();
            conn.grant_window_room(budget.saturating_sub(used) / 2);
        }
        self.windows[i] = conn.budget_reserved();
        self.windows_total += self.windows[i];
    }

    /// Updates what `slot`'s send buffer holds of `Config::send_buffer_total`, and tells
    /// the connections the budget refused once it has room for them: one whose own bytes
    /// left enough of its floor, or all once the total fell to three quarters.
    fn account_send(&mut self, slot: u32) {
        let i = slot as usize;
        let held = match self.conns[i].as_ref().filter(|c| !c.is_closed()) {
            // The counter, not `buffered()`, which walks the streams: this runs every touch.
            Some(c) => c.send_buffered(),
            None => {
                // Its handle may be reused: it waits for nothing any more.
                self.send_waiters.remove(&slot);
                0
            }
        };
        let before = self.sends_total;
        self.sends_total = self.sends_total - self.sends[i] + held;
        self.sends[i] = held;
        if self.send_waiters.is_empty() || self.sends_total >= before {
            return;
        }
        let woken: Vec<u32> = if self.sends_total <= self.config.send_buffer_total / 4 * 3 {
            core::mem::take(&mut self.send_waiters).into_iter().collect()
        } else if self.send_waiters.contains(&slot) && self.send_room(slot) >= self.send_floor() / 4 {
            self.send_waiters.remove(&slot);
            alloc::vec![slot]
        } else {
            return;
        };
        for w in woken {
            if let Some(c) = self.conns[w as usize].as_ref().filter(|c| !c.is_closed()) {
                self.events.push_back(Event::Writable { conn: c.handle });
            }
        }
    }

    /// Bytes `slot` may add to its send buffer as far as `Config::send_buffer_total` goes:
    /// what is left of the budget, or of its floor if more.
    fn send_room(&self, slot: u32) -> u64 {
        let held = self.sends.get(slot as usize).copied().unwrap_or(0);
        let floor = self.send_floor().saturating_sub(held);
        let shared = self.config.send_buffer_total.saturating_sub(self.sends_total);
        floor.max(shared)
    }

    /// What a connection may always hold, whatever the others hold.
    fn send_floor(&self) -> u64 {
        SEND_FLOOR.min(self.config.send_buffer)
    }

    /// The most one connection's send buffer can ever hold under `Config::send_buffer_total`.
    fn most_buffered(&self) -> u64 {
        self.config.send_buffer_total.max(self.send_floor())
    }

    /// Runs a write on `h` within `Config::send_buffer_total`: `f` gets the room the budget
    /// leaves; if it answers `WouldBlock` and the budget was short, `Writable` follows when
    /// the budget has room.
    fn budgeted_write<T>(
        &mut self,
        h: ConnectionHandle,
        wanted: u64,
        f: impl FnOnce(&mut Connection, u64) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let room = self.send_room(h.index());
        let out = self.with_conn(h, |c| f(c, room));
        if matches!(out, Err(ApiError::WouldBlock)) && room < wanted {
            self.send_waiters.insert(h.index());
        }
        out
    }

    /// What `Config::receive_buffer_total` keeps back for connections still to come, less
    /// `joining`: a floor each (`budget_floor`), up to `max_connections` (or as many as the
    /// total holds), so windows grown early never leave a later connection nothing.
    fn floors_for_newcomers(&self, joining: usize) -> u64 {
        let floor = self.budget_floor();
        let fit = usize::try_from(self.config.receive_buffer_total / floor).unwrap_or(usize::MAX);
        let slots = self.config.max_connections.min(fit);
        let still = slots.saturating_sub(self.by_cid.len() + joining);
        (still as u64).saturating_mul(floor)
    }

    /// The smallest receive window a connection starts with.
    fn window_floor(&self) -> u64 {
        MIN_RECEIVE_WINDOW.min(self.config.receive_window)
    }

    /// The configuration a new connection starts with: the configured one if its receive
    /// budget fits in what is left of `Config::receive_buffer_total` (less the floors kept
    /// for later connections); else a squeezed one, with at most
    /// [`held::SQUEEZED_STREAMS`] streams and the window what is left pays for; `None` if
    /// that is under [`MIN_RECEIVE_WINDOW`].
    fn connection_config(&self) -> Option<Config> {
        let used = self.windows_total + self.floors_for_newcomers(1);
        let left = self.config.receive_buffer_total.saturating_sub(used);
        let mut config = self.config.clone();
        if held::budget(config.receive_window, config.max_concurrent_streams) <= left {
            return Some(config);
        }
        config.max_concurrent_streams = config.max_concurrent_streams.min(held::SQUEEZED_STREAMS);
        let for_window = left.saturating_sub(held::budget(0, config.max_concurrent_streams));
        config.receive_window = config.receive_window.min(for_window / 2);
        (config.receive_window >= self.window_floor()).then_some(config)
    }

    /// The budget kept back for each connection still to come: a squeezed one's, at the
    /// smallest window.
    fn budget_floor(&self) -> u64 {
        let streams = self.config.max_concurrent_streams.min(held::SQUEEZED_STREAMS);
        held::budget(self.window_floor(), streams)
    }

    /// After anything touched connection `slot`: collect its events, free it if closed,
    /// re-file its timer and offer it a turn to send.
    fn touch(&mut self, slot: u32) {
        self.refile_timer(slot);
        self.account_window(slot);
        self.account_send(slot);
        let Some(conn) = self.conns.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        if self.half_open[slot as usize] && (conn.is_closed() || !conn.is_half_open()) {
            self.half_open[slot as usize] = false;
            self.pending -= 1;
        }
        if conn.is_closed() {
            // Its slot may be reused: pipes must let go of it now.
            let handle = conn.handle;
            for (_, id) in self.pipes_of(handle) {
                if let Some(pipe) = self.pipes.get_mut(&id) {
                    pipe.lose(handle);
                }
            }
            self.by_cid.remove(&conn.local_cid);
            if let Some(token) = conn.reset_token() {
                self.by_reset.remove(&token);
            }
            if let Some(key) = conn.hello_key {
                self.by_hello.remove(&key);
                self.admission.release(key.from.ip());
            }
            if let Some(old) = self.timer_of[slot as usize].take() {
                self.timers.remove(&(old, slot));
            }
            let generation = conn.handle.generation();
            self.conns[slot as usize] = None;
            self.free.push((slot, generation));
            return;
        }
        if !self.queued[slot as usize] {
            self.queued[slot as usize] = true;
            self.ready.push_back(slot);
        }
    }

    // ------------------------------------------------------------ inputs

    fn open_connection(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
        server: Option<PublicKey>,
    ) -> Result<ConnectionHandle, ApiError> {
        let proves = server.is_some() || self.config.peer_policy.checks();
        if proves && !self.config.versions.contains(VERSION_2) {
            return Err(ApiError::IdentityNeedsEncryption);
        }
        if self.by_cid.len() >= self.config.max_connections {
            return Err(ApiError::ConnectionLimit);
        }
        let config = self.connection_config().ok_or(ApiError::ConnectionLimit)?;
        let ids = self.new_slot();
        let (slot, cid, handle) = (ids.handle.index(), ids.cid, ids.handle);
        let conn = Connection::client(ids, now, &config, remote, congestion, &self.identity, server);
        self.conns[slot as usize] = Some(conn);
        self.by_cid.insert(cid, slot);
        self.touch(slot);
        Ok(handle)
    }

    /// A datagram arrived from `from`. Malformed or unexpected datagrams are dropped and
    /// counted; nothing a peer sends can make this panic.
    ///
    /// The buffer is the driver's to give: a sealed packet is opened in place, and the
    /// stream bytes it carries reach the application as slices of it, never copied. A
    /// driver that receives many datagrams into one allocation (`BytesMut::split_to`) hands
    /// each over as its own `BytesMut`; a slice the application keeps holds that whole
    /// allocation alive.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: BytesMut) {
        if let Some(t) = self.trace.as_mut() {
            t.datagram_in(now, from, &datagram);
        }
        self.on_datagram(now, from, datagram);
        self.trace_deadline();
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, datagram: BytesMut) {
        self.stats.datagrams_received += 1;
        let Ok(invariant) = Invariant::parse(&datagram) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        // A client may fall back to version 1, so an endpoint reads both if it speaks either.
        let speaks = |v: u16| v == VERSION_1 || v == VERSION_2;
        let readable = speaks(invariant.version)
            && (self.config.versions.contains(invariant.version)
                || self.by_cid.contains_key(&invariant.dcid));
        match invariant.version {
            0 => self.on_version_reject(now, datagram.freeze()),
            _ if readable => match self.by_cid.get(&invariant.dcid).copied() {
                Some(slot) => self.on_packet_for(slot, now, from, invariant, datagram),
                None if invariant.dcid == ConnectionId::UNSET && invariant.scid.is_some() => {
                    self.on_hello(now, from, datagram.freeze())
                }
                None => self.on_unknown_connection(from, &invariant, &datagram),
            },
            _ => {
                // spec §3.1: only a long header of at least 1200 bytes earns an answer.
                match invariant.scid {
                    Some(scid) if datagram.len() >= MIN_DATAGRAM_SIZE => {
                        self.stats.version_rejects_sent += 1;
                        self.push_stateless(Stateless::VersionReject {
                            to: from,
                            dcid: scid,
                            scid: invariant.dcid,
                            versions: self.config.versions,
                        });
                    }
                    _ => self.stats.dropped_malformed += 1,
                }
            }
        }
    }

    /// A datagram for a connection id we do not know (spec §6.1): a stateless reset for one
    /// of our client connections if it ends with that connection's token (the connection
    /// ends, `CloseReason::Reset`); else, if it looks like a data packet of a connection we
    /// lost and is longer than any reset, answered with a stateless reset of our own.
    fn on_unknown_connection(&mut self, from: SocketAddr, invariant: &Invariant, datagram: &[u8]) {
        self.stats.dropped_unknown_connection += 1;
        let len = datagram.len();
        if len < MIN_RESET_LEN {
            return;
        }
        let mut tail = [0u8; 16];
        tail.copy_from_slice(&datagram[len - 16..]);
        if let Some(&slot) = self.by_reset.get(&tail) {
            if let Some(conn) = self.conns[slot as usize].as_mut() {
                conn.on_stateless_reset();
                self.stats.resets_received += 1;
            }
            self.touch(slot);
            return;
        }
        if invariant.scid.is_some() || len <= MAX_RESET_LEN {
            // Only data packets, and only those longer than any reset: a reset never answers
            // a reset, so two endpoints that lost state do not answer each other.
            return;
        }
        if self.stateless.len() >= MAX_STATELESS {
            // No room to answer: no token or random bytes made for nothing.
            self.stats.stateless_dropped += 1;
            return;
        }
        let mut random = [0u8; MAX_RESET_LEN - 16];
        self.entropy.fill(&mut random);
        // Of a random length, so that resets do not stand out by one.
        let spread = (MAX_RESET_LEN - MIN_RESET_LEN + 1) as u8;
        let reset_len = MIN_RESET_LEN as u8 + random[MAX_RESET_LEN - 17] % spread;
        self.stats.resets_sent += 1;
        self.push_stateless(Stateless::Reset {
            to: from,
            version: invariant.version,
            len: reset_len,
            random,
            token: self.identity.reset_token(&invariant.dcid.0),
        });
    }

    /// Answers a HELLO of wire version `version` with REJECT (statelessly) and counts it.
    fn reject(&mut self, to: SocketAddr, client: ConnectionId, reject: Reject, version: u16) {
        self.stats.rejected += 1;
        self.push_stateless(Stateless::Reject {
            to,
            client,
            reject,
            version,
        });
    }

    fn push_stateless(&mut self, s: Stateless) {
        if self.stateless.len() < MAX_STATELESS {
            self.stateless.push_back(s);
        } else {
            self.stats.stateless_dropped += 1;
        }
    }

    fn on_version_reject(&mut self, now: Instant, datagram: Bytes) {
        let Ok(vr) = VersionReject::decode(datagram) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let Some(&slot) = self.by_cid.get(&vr.dcid) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        let Some(&server) = vr.versions.first() else {
            return;
        };
        if let Some(conn) = self.conns[slot as usize].as_mut() {
            conn.on_version_reject(now, server, &self.config);
        }
        self.touch(slot);
    }

    fn on_packet_for(
        &mut self,
        slot: u32,
        now: Instant,
        from: SocketAddr,
        invariant: Invariant,
        datagram: BytesMut,
    ) {
        let Some(conn) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if !conn.speaks(invariant.version) {
            // Not of this connection's version: on an encrypted connection, plaintext that
            // anyone who saw its id in clear could have forged (threat model: an off-path
            // attacker with known connection ids). It changes nothing: no close, no
            // violation charged, no budget, not even the connection's idle clock.
            self.stats.dropped_unauthenticated += 1;
            return;
        }
        conn.on_datagram_len(from, datagram.len());
        let sealed = invariant.version == VERSION_2 && invariant.scid.is_none();
        let decoded = if sealed {
            // Opened in place (spec §11.4).
            conn.open(datagram)
        } else {
            Packet::decode(datagram.freeze(), conn.largest_received())
        };
        match decoded {
            Ok(packet) => {
                let token_before = conn.reset_token();
                conn.handle_packet(now, &self.config, from, &packet);
                if let (None, Some(token)) = (token_before, conn.reset_token()) {
                    // The ACCEPT gave the server's token: a reset bearing it ends this one.
                    self.by_reset.insert(token, slot);
                }
            }
            Err(DecodeError::AuthenticationFailed) => self.stats.dropped_unauthenticated += 1,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                // spec §6: once the trailer checks, a decode error is the peer's doing; in
                // version 2 only a sealed packet's tag says so (§11.4).
                let authentic = invariant.version == VERSION_1 || sealed;
                if let Some(code) = close_code(&e).filter(|_| authentic) {
                    conn.protocol_error(now, &self.config, ViolationKind::Malformed { error: e, code });
                }
            }
        }
        let handle = self.handle_of(slot);
        self.touch(slot);
        self.pump_pipes(handle);
    }

    fn on_hello(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let len = datagram.len();
        let Ok(packet) = Packet::decode(datagram, None) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let PacketKind::Handshake { scid: client } = packet.header.kind else {
            return;
        };
        let version = packet.header.version;
        let Some((hello, noise)) = packet.frames().find_map(|f| match f {
            Frame::Hello(h) => Some((h, None)),
            Frame::NoiseHello(n) => Some((n.hello.clone(), Some(n))),
            _ => None,
        }) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        let key = HelloKey::new(from, client, noise.as_ref());
        if let Some(&slot) = self.by_hello.get(&key) {
            // Another copy: the connection answers with the same ACCEPT.
            if let Some(conn) = self.conns[slot as usize].as_mut() {
                conn.on_datagram_len(from, len);
                conn.handle_packet(now, &self.config, from, &packet);
            }
            self.touch(slot);
            return;
        }
        let refuse = |reason| Reject {
            reason,
            versions: self.config.versions,
        };
        // Policy first (an endpoint that only connects out has nothing to validate), then
        // admission (spec §10), then the versions and parameters.
        if self.config.accept == AcceptPolicy::Refuse {
            return self.reject(from, client, refuse(RejectReason::REFUSED), version);
        }
        let load = Load {
            pending: self.pending,
            connections: self.by_cid.len(),
        };
        let validated = match self
            .admission
            .decide(&self.config, now, from, client, &hello.token, load)
        {
            Admission::Admit { validated } => validated,
            Admission::Reject(reason) => {
                if reason == RejectReason::INVALID_TOKEN {
                    self.stats.invalid_tokens += 1;
                }
                return self.reject(from, client, refuse(reason), version);
            }
            Admission::Retry(token) => {
                self.stats.retries_sent += 1;
                return self.push_stateless(Stateless::Retry {
                    to: from,
                    client,
                    token,
                    version,
                });
            }
            Admission::Drop(Dropped::Banned) => return self.stats.dropped_banned += 1,
            Admission::Drop(Dropped::RateLimited) => return self.stats.dropped_rate_limited += 1,
        };
        let Some(config) = self.connection_config() else {
            // Every byte of the receive budget is promised to other connections.
            return self.reject(from, client, refuse(RejectReason::AT_CAPACITY), version);
        };
        // The connection's id first: its stateless reset token goes in the ACCEPT.
        let cid = self.fresh_cid();
        let reset = Some(self.identity.reset_token(&cid.0));
        let answer = match noise {
            None => handshake::negotiate(&config, &hello, version, reset).map(ServerAnswer::V1),
            Some(n) => {
                self.stats.noise_hellos_read += 1;
                let entropy = self.entropy.child();
                handshake::accept_noise(&config, &self.identity, entropy, client, &n, reset)
                    .map(ServerAnswer::V2)
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(reject) => return self.reject(from, client, reject, version),
        };
        self.admission.admitted(from.ip());
        let ids = self.new_slot_with(cid);
        let slot = ids.handle.index();
        let mut conn = Connection::server(
            ids,
            now,
            &config,
            from,
            (client, key),
            &packet.header,
            &hello.params,
            answer,
            validated,
        );
        conn.on_datagram_len(from, len);
        self.conns[slot as usize] = Some(conn);
        self.by_cid.insert(cid, slot);
        self.by_hello.insert(key, slot);
        self.half_open[slot as usize] = true;
        self.pending += 1;
        self.touch(slot);
    }

    /// Fires every timer due at `now`. Calling it early, or twice, does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.trace.as_mut() {
            t.expire(now);
        }
        self.on_timeout(now);
        self.trace_deadline();
    }

    fn on_timeout(&mut self, now: Instant) {
        // A held-back datagram may go now: the next poll_transmit sends it.
        if self.rate_wake.is_some_and(|at| at <= now) {
            self.rate_wake = None;
        }
        let due: Vec<u32> = self
            .timers
            .range(..=(now, u32::MAX))
            .map(|&(_, slot)| slot)
            .collect();
        for slot in due {
            if let Some(conn) = self.conns[slot as usize].as_mut() {
                conn.handle_timeout(now, &self.config);
            }
            self.touch(slot);
        }
        self.pump_pipes(None);
    }

    // ------------------------------------------------------------ outputs

    /// Writes the next datagram to send into `buf` (at least 1200 bytes; as large as the
    /// configured datagram size to use it fully) and says where it goes; `None` when there is
    /// nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let out = self.next_transmit(now, buf);
        if let Some(t) = self.trace.as_mut() {
            t.transmit(now, buf.len(), out.map(|o| (o.destination, &buf[..o.len])));
            self.trace_deadline();
        }
        out
    }

    fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(s) = self.stateless.pop_front() {
            if let Some(t) = write_stateless(s, now, buf) {
                self.stats.datagrams_sent += 1;
                return Some(t);
            }
        }
        if self.rate_limited(now) {
            return None;
        }
        while let Some(slot) = self.ready.pop_front() {
            let Some(conn) = self.conns[slot as usize].as_mut() else {
                self.queued[slot as usize] = false;
                continue;
            };
            match conn.poll_transmit(now, &self.config, buf) {
                Some(len) => {
                    let destination = conn.remote;
                    self.stats.datagrams_sent += 1;
                    self.rate.take(len);
                    // Its turn ends: `touch` files it at the back of the queue for another.
                    self.queued[slot as usize] = false;
                    self.touch(slot);
                    return Some(Transmit { destination, len });
                }
                None => {
                    self.queued[slot as usize] = false;
                    self.refile_timer(slot);
                }
            }
        }
        None
    }

    /// Whether the endpoint's send rate holds datagrams back now (then `rate_wake` says
    /// until when). Connections keep their place in the ready queue meanwhile, so each with
    /// something to send gets the next datagram in turn: an even share of the rate.
    fn rate_limited(&mut self, now: Instant) -> bool {
        self.rate_wake = None;
        let Some(rate) = self.config.max_send_rate else {
            return false;
        };
        if self.ready.is_empty() {
            return false;
        }
        let (capacity, datagram) = rate_burst(&self.config, rate);
        self.rate_wake = self.rate.delay(now, rate, capacity, datagram);
        self.rate_wake.is_some()
    }

    /// Collects a connection's events and re-files its timer (without offering it a turn).
    fn refile_timer(&mut self, slot: u32) {
        let Some(conn) = self.conns[slot as usize].as_mut() else {
            return;
        };
        while let Some(e) = conn.take_event() {
            if let Event::Closed {
                reason: CloseReason::ProtocolViolation { .. },
                ..
            } = e
            {
                self.stats.violations += 1;
                let ip = conn.hello_key.map_or(conn.remote, |k| k.from).ip();
                self.admission.violation(&self.config, conn.clock(), ip);
            }
            self.events.push_back(e);
        }
        let next = conn.next_timeout().map(|(at, _)| at);
        if next == self.timer_of[slot as usize] {
            // Unchanged (most packets of a transfer): the ordered set is left alone.
            return;
        }
        if let Some(old) = self.timer_of[slot as usize].take() {
            self.timers.remove(&(old, slot));
        }
        if let Some(at) = next {
            self.timers.insert((at, slot));
            self.timer_of[slot as usize] = Some(at);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if let Some(t) = self.trace.as_mut() {
            t.event(e.as_ref());
        }
        e
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next needed: a connection's timer,
    /// or, while the endpoint's send rate holds datagrams back, the moment it lets the next
    /// one go (timers due before then wait for it: what they would send could not leave
    /// sooner, and a deadline in the past would have the driver spin).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rate_wake.or_else(|| self.timers.first().map(|&(at, _)| at))
    }

    /// The next deadline with the connection and timer that set it (for debugging).
    pub fn next_timer(&self) -> Option<(Instant, ConnectionHandle, Timer)> {
        let &(at, slot) = self.timers.first()?;
        let conn = self.conns.get(slot as usize)?.as_ref()?;
        let (_, timer) = conn.next_timeout()?;
        Some((at, conn.handle, timer))
    }

    // ------------------------------------------------------------ application commands

    fn with_conn<T>(
        &mut self,
        h: ConnectionHandle,
        f: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let out = f(self.conn(h)?);
        if let Some(conn) = self.conns[h.slot()].as_mut() {
            conn.refresh_timers(&self.config);
        }
        self.touch(h.index());
        out
    }

    /// What the handshake agreed, once connected.
    pub fn negotiated(&self, conn: ConnectionHandle) -> Option<Negotiated> {
        self.lookup(conn)?.negotiated()
    }

    /// This endpoint's public key: its identity, which peers learn in the handshake and
    /// which a client names in [`connect_to`](Self::connect_to) (spec §11.1).
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The peer's public key, authenticated by the handshake; `None` before the handshake is
    /// confirmed (a server's connection whose client has not yet sent a packet under the new
    /// keys: its HELLO may be a replay), on an unprotected (version 1) connection, or for an
    /// unknown handle.
    pub fn peer_key(&self, conn: ConnectionHandle) -> Option<PublicKey> {
        self.lookup(conn)?.peer_key()
    }

    /// Whether the connection is established (handshake done, not closing).
    pub fn is_established(&self, conn: ConnectionHandle) -> bool {
        self.lookup(conn).is_some_and(Connection::is_established)
    }

    /// The connection's smoothed RTT estimate.
    pub fn rtt(&self, conn: ConnectionHandle) -> Option<Duration> {
        Some(self.lookup(conn)?.rtt())
    }

    /// The connection's counters.
    pub fn connection_stats(&self, conn: ConnectionHandle) -> Option<ConnectionStats> {
        Some(self.lookup(conn)?.stats())
    }

    /// Bytes a connection holds for the application: `(received, unread)` and
    /// `(written, unacknowledged)`; the first is bounded by the receive windows.
    pub fn buffered(&self, conn: ConnectionHandle) -> Option<(u64, u64)> {
        Some(self.lookup(conn)?.buffered())
    }

    /// The peer's address as last seen.
    pub fn remote_address(&self, conn: ConnectionHandle) -> Option<SocketAddr> {
        Some(self.lookup(conn)?.remote)
    }
}

/// spec/protocol.md §6: which decode errors close the connection, with which code. `None`:
/// drop silently (the datagram may be line noise, not the peer's word).
/// Whether a message of `len` bytes can go whole on `c` now, with `room` left in the
/// endpoint's send budget of which one connection can hold at most `most`.
fn message_fits(c: &mut Connection, len: u64, room: u64, most: u64) -> Result<(), ApiError> {
    c.message_room(len)?;
    if len > most {
        return Err(ApiError::MessageTooLong);
    }
    if len > room {
        return Err(ApiError::WouldBlock);
    }
    Ok(())
}

fn close_code(e: &DecodeError) -> Option<TransportErrorCode> {
    match e {
        DecodeError::ChecksumMismatch { .. } | DecodeError::UnknownVersion(_) => None,
        DecodeError::Truncated(
            Field::Version | Field::Flags | Field::DestinationCid | Field::SourceCid | Field::Trailer,
        ) => None,
        DecodeError::Violation(Violation::LimitExceeded {
            limit: Limit::DatagramSize,
            ..
        }) => None,
        DecodeError::Violation(
            Violation::InvalidTransportParameter { .. } | Violation::TransportParameterOrder { .. },
        ) => Some(TransportErrorCode::TRANSPORT_PARAMETER_ERROR),
        DecodeError::Violation(
            Violation::FrameNotAllowed { .. }
            | Violation::HandshakeFrameCount { .. }
            | Violation::EmptyPacket
            | Violation::OpenFieldsNotAtStart { .. }
            | Violation::TotalLengthMismatch { .. }
            | Violation::InvalidAckRange,
        )
        | DecodeError::ReservedBits(_) => Some(TransportErrorCode::PROTOCOL_VIOLATION),
        _ => Some(TransportErrorCode::FRAME_ENCODING_ERROR),
    }
}
