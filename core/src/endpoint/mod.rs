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
//!     endpoint.handle_datagrams(now, from, batch);       // or those of one receive call (GRO)
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
//!
//! This file holds the endpoint's state and its driving inputs and outputs (datagrams in
//! and routed, timeouts, transmit, events); each concern's methods are in a file of their
//! own:
//!
//! | file | decides |
//! | --- | --- |
//! | `commands` | the application's commands: [`Endpoint::command`] and the typed methods |
//! | `slots` | connection slots, handles and ids; `touch` after every call, which rebuilds the connection's timers (unless its own input did: `touch_fresh`) and files its deadline |
//! | `cid_index` | which slot holds the connection a datagram's connection id names (an owned part) |
//! | `deadlines` | each slot's next deadline, earliest first: the timer index (an owned part) |
//! | `firing` | when the timers fire: the next deadline, and each due connection's timers run in order |
//! | `batch` | datagrams that arrived together: a run of packets for one connection touched once, at its end |
//! | `accept` | a HELLO through policy, admission, budgets and negotiation; a client's connect |
//! | `stateless` | REJECT, VERSION_REJECT, RETRY and stateless resets |
//! | `budgets` | the endpoint-wide receive and send budgets |
//! | `piping` | moving each pipe's bytes, credit and receipts between connections |
//! | `prefetching` | when a connection's memory is shown to the host's prefetch hook (`Config::prefetch`) |
//! | `queries` | what the application may ask without changing anything |
//! | `reflexive` | what peers say of our public address, summed up (an owned part; spec §4.18) |
//! | `punching` | hole punching coordinated over a relayed connection (spec §12.5) |
//! | `relaying` | relay circuits: requests, RELAY_* frames, relayed datagrams in and out (spec §12) |
//! | `event_loan` | which connection has the one event queue the endpoint lends, so that a call's events land in warm memory (an owned part) |
//! | `early` | sealed datagrams that came before their keys (a server's XX handshake), kept within bounds and opened once the keys are in (an owned part) |
//! | `retained` | connections that ended with something untold (bytes unread, a stream settled), kept until taken or released (an owned part) |

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::admission::{Admission, Admissions, Dropped, HelloDigest, HelloKey, Load, Token};
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

mod accept;
mod batch;
mod budgets;
mod cid_index;
mod commands;
mod datagrams;
mod deadlines;
mod early;
mod event_loan;
mod firing;
#[cfg(test)]
mod harness;
mod piping;
mod prefetching;
mod punching;
mod queries;
mod reflexive;
mod relaying;
mod retained;
mod slots;
mod stateless;

use cid_index::CidIndex;
use deadlines::Deadlines;
pub use reflexive::{Mapping, Reflexive};
use stateless::{write_stateless, Stateless};

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
    /// As a relay: datagrams forwarded on a circuit (spec §12.3).
    pub relay_forwarded: u64,
    /// As a relay: relayed datagrams dropped: from another address than their leg's, past a
    /// circuit's limit, or with the forwarding queue full.
    pub relay_dropped: u64,
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

/// The events' room kept once the application has taken them all (about 26 KB): what a
/// busy moment needs, without holding a burst's high-water mark for good.
const EVENTS_KEPT: usize = 256;

/// A weir endpoint: one local socket's worth of connections. See the module docs for the
/// driving loop.
pub struct Endpoint {
    config: Config,
    conns: Vec<Option<Box<Connection>>>,
    /// Empty slots, with the generation of the connection each held last.
    free: Vec<(u32, u32)>,
    /// Each connection's slot by the connection id we chose for it (module `cid_index`).
    by_cid: CidIndex,
    /// Our client connections by the stateless reset token their server gave (spec §6.1).
    by_reset: BTreeMap<[u8; 16], u32>,
    /// Server connections, by the digest of the HELLO that made each (a copy of it finds
    /// its connection), for as long as the connection lives.
    by_hello: BTreeMap<HelloDigest, u32>,
    /// Each connection slot's next deadline (module `deadlines`).
    deadlines: Deadlines,
    /// The deadlines due at a firing, kept empty between firings for its room (module
    /// `firing`).
    due: Vec<(Instant, u32)>,
    ready: VecDeque<u32>,
    /// Each slot's marks: whether it waits in `ready`, whether its server handshake is
    /// half-open (module `slots`). One vector, so that a touch reads one line for both.
    marks: Vec<slots::Marks>,
    events: VecDeque<Event>,
    /// One event queue with room, lent to the connection being called (module
    /// `event_loan`).
    loan: event_loan::EventLoan,
    /// The slot whose connection was last shown to `Config::prefetch` (module `prefetching`):
    /// not shown again while inputs keep reaching it. (`u32::MAX`, never a slot: none yet.)
    prefetched: u32,
    /// Tests only: every range `Config::prefetch` was shown, start and length, in order.
    #[cfg(test)]
    shown: Vec<(usize, usize)>,
    stateless: VecDeque<Stateless>,
    stats: EndpointStats,
    /// Who gets a connection (module `admission`), and the server handshakes in progress:
    /// `marks[slot].half_open` for each, `pending` of them.
    admission: Admissions,
    pending: usize,
    /// Each connection's shares of the endpoint's budgets, as of its last touch (module
    /// `budgets`): of `Config::receive_buffer_total` (`Connection::budget_reserved`) and of
    /// `Config::send_buffer_total`. One vector, so that a touch reads one line for both.
    shares: Vec<budgets::Shares>,
    /// The receive budget's sum over the connections.
    windows_total: u64,
    /// Connections that ended with something untold, kept until taken or released (an owned part,
    /// module `retained`).
    retained: retained::Retained,
    /// Sealed datagrams of servers still waiting for their keys (module `early`).
    early: early::Early,
    /// What peers said of our public address (an owned part, module `reflexive`).
    reflexive: reflexive::Reports,
    /// As a relay (`Config::relay`): reservations and circuits (module `relay::serve`).
    relay: Option<crate::relay::serve::Relay>,
    /// As a circuit's end: requests, reservations, circuits (module `relay::ends`).
    ends: crate::relay::ends::Ends,
    /// Relayed datagrams to forward, with where to (module `relay::forwards`).
    forwards: crate::relay::forwards::Forwards,
    /// Hole punches under way, by relayed connection (module `punching`).
    punches: BTreeMap<ConnectionHandle, punching::Round>,
    /// What the connections' send buffers hold in all (`Config::send_buffer_total`'s use),
    /// and the connections whose writes that budget refused, to be told `Writable` once it
    /// has room for them.
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
    /// A connection that pipes take part in ended (module `slots`, `retire`): the pipes are to
    /// be given their turn before the call returns, as no later input may come to do it.
    pipes_lost_conn: bool,
    /// Set by [`Endpoint::new_traced`]: the trace being recorded (module `trace`), and the
    /// deadline it last recorded.
    trace: Option<Box<Recorder>>,
    traced_deadline: Option<Instant>,
    /// Inside [`handle_datagrams`](Self::handle_datagrams), the connection whose
    /// bookkeeping waits for the end of its run (module `batch`).
    batch: batch::Batch,
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
        let primitives = config.primitives();
        let identity = match &config.identity {
            Some(identity) => identity.to_primitives(primitives),
            None => Identity::from_seed_under(&seed, primitives),
        };
        let relay = config.relay.clone().map(crate::relay::serve::Relay::new);
        Endpoint {
            identity,
            entropy: Entropy::new(&seed, b"weir connection secrets"),
            config,
            conns: Vec::new(),
            free: Vec::new(),
            by_cid: CidIndex::default(),
            by_reset: BTreeMap::new(),
            by_hello: BTreeMap::new(),
            deadlines: Deadlines::default(),
            due: Vec::new(),
            ready: VecDeque::new(),
            marks: Vec::new(),
            events: VecDeque::new(),
            loan: event_loan::EventLoan::default(),
            prefetched: u32::MAX,
            #[cfg(test)]
            shown: Vec::new(),
            stateless: VecDeque::new(),
            stats: EndpointStats::default(),
            admission,
            pending: 0,
            shares: Vec::new(),
            windows_total: 0,
            retained: retained::Retained::default(),
            early: early::Early::default(),
            reflexive: reflexive::Reports::default(),
            relay,
            ends: Default::default(),
            forwards: Default::default(),
            punches: BTreeMap::new(),
            sends_total: 0,
            send_waiters: BTreeSet::new(),
            rate: TokenBucket::new(Instant::ZERO, burst),
            rate_wake: None,
            pipes: BTreeMap::new(),
            pipes_by_conn: BTreeSet::new(),
            pipes_reserved: 0,
            pipes_lost_conn: false,
            next_pipe: 0,
            trace: None,
            traced_deadline: None,
            batch: batch::Batch::Single,
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

    // ------------------------------------------------------------ slots

    // ------------------------------------------------------------ inputs

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
        self.receive(now, from, datagram);
        self.trace_deadline();
    }

    /// [`handle_datagram`](Self::handle_datagram) but for the trace.
    fn receive(&mut self, now: Instant, from: SocketAddr, datagram: BytesMut) {
        if crate::relay::circuit_of(from).is_some() {
            // A circuit address is the endpoint's name for a peer behind a relay: only an
            // unwrapped relayed datagram comes from one.
            self.stats.datagrams_received += 1;
            self.stats.dropped_malformed += 1;
            return;
        }
        self.on_datagram(now, from, datagram);
        self.pump_if_lost();
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, datagram: BytesMut) {
        self.stats.datagrams_received += 1;
        if let Some(id) = crate::wire::read_relay_header(&datagram) {
            // The packet a relayed datagram carries is accounted at once, not left waiting
            // in a batch (module `batch`): the relaying that follows it sees it done.
            self.settle_deferred();
            let batch = core::mem::replace(&mut self.batch, batch::Batch::Single);
            self.on_relayed(now, from, id, datagram);
            self.batch = batch;
            return;
        }
        let Ok(invariant) = Invariant::parse(&datagram) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        // A client may fall back to version 1, so an endpoint reads both if it speaks either.
        let speaks = |v: u16| v == VERSION_1 || v == VERSION_2;
        let readable = speaks(invariant.version)
            && (self.config.versions.contains(invariant.version)
                || self.by_cid.contains_key(&invariant.dcid));
        // Within a batch, one connection's bookkeeping may be waiting (module `batch`): it is
        // done before anything but another packet of that connection.
        let slot = match invariant.version {
            0 => None,
            _ if readable => self.by_cid.get(&invariant.dcid),
            _ => None,
        };
        if let Some(slot) = slot {
            self.prefetch(slot);
        }
        match slot {
            Some(slot) => self.settle_unless(slot),
            None => self.settle_deferred(),
        }
        match invariant.version {
            0 => self.on_version_reject(now, datagram.freeze()),
            _ if readable => match slot {
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
        if invariant.is_sealed() && conn.awaits_keys() {
            // Data that overtook the NOISE_FINISH: kept, to be opened with it (module
            // `early`), or dropped as it was before if there is no room.
            let held = early::Held {
                conn: conn.handle,
                from,
                invariant,
                datagram,
            };
            if self.early.keep(held).is_err() {
                self.stats.dropped_unauthenticated += 1;
                conn.count_unauthenticated();
            }
            // Its length counted for the anti-amplification limit: accounted now.
            self.undefer(slot);
            self.touch(slot);
            return;
        }
        self.on_sealed_or_plain(slot, now, from, invariant, datagram);
        if !invariant.is_sealed() {
            self.open_early(slot, now);
        }
    }

    /// A datagram for connection `slot`, its length counted: opened (if sealed) or decoded,
    /// and handled.
    fn on_sealed_or_plain(
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
        let sealed = invariant.is_sealed();
        let mut decoded = if sealed {
            // Opened in place (spec §11.4).
            conn.open(datagram)
        } else {
            Packet::decode(datagram.freeze(), conn.largest_received())
        };
        if decoded.as_ref().is_ok_and(Packet::carries_relay_frames) {
            // What relay frames do reaches beyond this connection: its earlier packets are
            // accounted before this one is handled (module `batch`).
            self.settle_deferred();
        }
        // Settling touches only an open connection, which stays in its slot.
        let Some(conn) = self.conns[slot as usize].as_mut() else {
            return;
        };
        // By reference: a packet is some 540 bytes, and a binding by value copies it.
        match &mut decoded {
            Ok(packet) => {
                let token_before = conn.reset_token();
                self.loan.lend(slot, conn.events_mut());
                conn.handle_packet(now, &self.config, from, packet);
                if let (None, Some(token)) = (token_before, conn.reset_token()) {
                    // The ACCEPT gave the server's token: a reset bearing it ends this one.
                    self.by_reset.insert(token, slot);
                }
                self.on_relay_frames(slot, now);
            }
            Err(DecodeError::AuthenticationFailed) => {
                self.stats.dropped_unauthenticated += 1;
                if sealed {
                    conn.count_unauthenticated();
                }
            }
            &mut Err(e) => {
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
        match decoded {
            // The rest of a batch's run first (module `batch`).
            Ok(_) if self.defer_touch(slot) => {}
            // The packet's handling rebuilt the timers.
            Ok(_) => self.touch_fresh(slot),
            // The datagram's length still counted for the anti-amplification limit; the
            // connection is accounted now, with any of its packets a batch held back.
            Err(_) => {
                self.undefer(slot);
                self.touch(slot)
            }
        }
        self.pump_pipes(handle);
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

    /// Whether [`poll_transmit`](Self::poll_transmit) may give a datagram now. `false` only
    /// when nothing waits to go (no connection asked for a turn to send since its last,
    /// nothing to forward or to answer statelessly, no send rate holding datagrams back)
    /// and no trace records the call: `poll_transmit` would then give `None` at any time
    /// and change nothing. A driver that asks this first need not read its clock for a
    /// call that sends nothing.
    pub fn may_transmit(&self) -> bool {
        !self.ready.is_empty()
            || !self.forwards.is_empty()
            || !self.stateless.is_empty()
            || self.rate_wake.is_some()
            || self.trace.is_some()
    }

    fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(t) = self.next_forward(buf) {
            self.stats.datagrams_sent += 1;
            return Some(t);
        }
        while let Some(s) = self.stateless.pop_front() {
            if let Some(t) = self.write_routed(s, now, buf) {
                self.stats.datagrams_sent += 1;
                return Some(t);
            }
        }
        if self.rate_limited(now) {
            return None;
        }
        while let Some(slot) = self.ready.pop_front() {
            if self.conns[slot as usize].is_none() {
                self.marks[slot as usize].queued = false;
                continue;
            }
            match self.poll_routed(slot, now, buf) {
                Some((destination, len)) => {
                    self.stats.datagrams_sent += 1;
                    self.rate.take(len);
                    // Its turn ends: `touch` files it at the back of the queue for another.
                    self.marks[slot as usize].queued = false;
                    self.touch_fresh(slot);
                    return Some(Transmit { destination, len });
                }
                None => {
                    self.marks[slot as usize].queued = false;
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

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > EVENTS_KEPT {
            // Drained: a burst (ten thousand connections made at once) leaves room for as
            // many events, which idle connections would otherwise hold for good.
            self.events.shrink_to(EVENTS_KEPT);
        }
        if let Some(t) = self.trace.as_mut() {
            t.event(e.as_ref());
        }
        e
    }

    // ------------------------------------------------------------ application commands
}

/// spec/protocol.md §6: which decode errors close the connection, with which code. `None`:
/// drop silently (the datagram may be line noise, not the peer's word).
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
