//! # weir-sim
//!
//! A seeded, deterministic network simulator for weir endpoints: N endpoints joined by links
//! with loss (random and bursty), duplication, reordering, delay and jitter, bandwidth with
//! a finite drop-tail queue, timed partitions, corruption, an MTU, and NATs of every kind
//! RFC 4787 names ([`NatConfig`]). Virtual time jumps
//! straight to the next event, so a minute of simulated network runs in milliseconds, and
//! the same seed gives the same run, datagram for datagram. Its [`proxy`] does the same
//! harm to real UDP datagrams on 127.0.0.1, for the adapters' and the CLI's tests and the
//! demo.
//!
//! ```
//! use weir_core::{Config, Event, Read};
//! use weir_sim::{LinkConfig, Sim};
//!
//! let mut sim = Sim::new(7);
//! let client = sim.add_node(Config::default());
//! let server = sim.add_node(Config::default());
//! sim.link(client, server, LinkConfig { loss: 0.1, ..LinkConfig::default() });
//! let conn = sim.connect(client, server);
//! let mut got = None;
//! sim.run_for(weir_core::time::Duration::from_secs(10), |sim, node, event| match event {
//!     Event::Connected { conn, .. } if node == client => {
//!         sim.endpoint(client).send_message(conn, None, "hello".into()).unwrap();
//!     }
//!     Event::StreamReadable { conn, stream } if node == server => {
//!         if let Ok(Read::Data { bytes, .. }) = sim.endpoint(server).read_message(conn, stream, 1 << 20) {
//!             got = Some(bytes);
//!         }
//!     }
//!     _ => {}
//! });
//! assert_eq!(got.as_deref(), Some(&b"hello"[..]));
//! # let _ = conn;
//! ```

#[cfg(target_os = "linux")]
pub mod host_nat;
mod link;
pub mod loopback;
mod nat;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod proxy;
#[cfg(target_os = "linux")]
mod readable;
pub mod relay;
pub mod soak;
mod stalls;

pub use link::{BurstLoss, JitterOrdering, LinkConfig, LinkStats, Policer};
use link::{Link, Partition};
pub use nat::{kind_name, nat_kinds, Dependency, NatConfig, NatId, NatKind, PortAllocation};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use weir_core::time::{Duration, Instant};
use weir_core::{Config, ConnectionHandle, Endpoint, Event};

/// Index of a node in a [`Sim`].
pub type NodeId = usize;

/// Counters of what the simulated network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams delivered (duplicates included).
    pub delivered: u64,
    /// Lost to random or burst loss.
    pub lost: u64,
    /// Dropped by a full bottleneck queue.
    pub queue_drops: u64,
    /// Dropped by a policer ([`Policer`]).
    pub policer_drops: u64,
    /// Dropped by a partition.
    pub partitioned: u64,
    /// Dropped for exceeding the MTU.
    pub too_big: u64,
    /// Delivered with a flipped bit.
    pub corrupted: u64,
    /// Datagrams a man in the middle ([`Sim::intercept`]) changed or swallowed.
    pub intercepted: u64,
    /// Delivered twice.
    pub duplicated: u64,
    /// Dropped by a NAT: no live mapping, filtered, or a hairpin it does not do.
    pub nat_dropped: u64,
}

/// A simulated endpoint.
pub struct Node {
    /// Its address on the simulated network.
    pub addr: SocketAddr,
    /// The weir endpoint.
    pub endpoint: Endpoint,
    /// Its timers fire at the next multiple of this ([`Sim::timer_granularity`]).
    granularity: Duration,
    /// The NAT it sits behind, if any ([`Sim::add_node_behind`]).
    nat: Option<NatId>,
    /// Its datagrams leave only through [`Sim::send_one`] ([`Sim::send_by_hand`]).
    by_hand: bool,
}

impl Node {
    /// When its next timer fires: the endpoint's deadline, rounded up to the granularity.
    fn timer(&self) -> Option<Instant> {
        let at = self.endpoint.poll_timeout()?;
        let g = self.granularity.as_micros().max(1);
        Some(Instant::from_micros(at.as_micros().div_ceil(g) * g))
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: NodeId,
    from: SocketAddr,
    /// Through this NAT's public port: asked as it arrives ([`Sim::nat_admits`]).
    nat: Option<(NatId, u16)>,
    data: Bytes,
}

/// The simulator. See the crate docs.
pub struct Sim {
    now: Instant,
    rng: Xoshiro256PlusPlus,
    nodes: Vec<Node>,
    links: BTreeMap<(NodeId, NodeId), Link>,
    /// The stalls of each directed link whose jitter keeps the order.
    stalls: BTreeMap<(NodeId, NodeId), stalls::Stalls>,
    partitions: Vec<Partition>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    stats: NetStats,
    trace: Option<String>,
    buf: Vec<u8>,
    /// Datagrams sent so far on each directed link, and the ones to drop by number.
    counts: BTreeMap<(NodeId, NodeId), u64>,
    drops: std::collections::BTreeSet<(NodeId, NodeId, u64)>,
    /// Steps in a row that delivered nothing and did not move time: a timer that an
    /// endpoint never clears (a livelock in the core), reported instead of spinning forever.
    idle_steps: u32,
    /// Datagrams and bytes sent to addresses that are no node's (spoofed ones), by address.
    outside: BTreeMap<SocketAddr, (u64, u64)>,
    /// Datagrams sent to these outside addresses, kept for `take_captured`.
    captured: BTreeMap<SocketAddr, Vec<Bytes>>,
    meter: Option<Meter>,
    /// Datagrams seen on these directed links (an eavesdropper's copy), for `take_tapped`.
    taps: BTreeMap<(NodeId, NodeId), Vec<Bytes>>,
    /// Middleboxes: each may rewrite (or, returning `false`, swallow) what one node sends
    /// another, before the link's impairments.
    interceptors: BTreeMap<(NodeId, NodeId), Interceptor>,
    /// NATs, each with the nodes behind it ([`Sim::add_nat`]).
    nats: Vec<nat::Nat>,
}

/// A man in the middle on one direction of a link ([`Sim::intercept`]).
pub type Interceptor = Box<dyn FnMut(&mut Vec<u8>) -> bool>;

/// What [`Sim::meter`] counted for a node: heap bytes its endpoint (and the application's
/// handler on it) holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metered {
    /// Net bytes allocated by the node's calls so far.
    pub held: i64,
    /// The most `held` was after any call.
    pub peak: i64,
}

struct Meter {
    node: NodeId,
    live: fn() -> i64,
    counted: Metered,
}

/// `len` bytes of the xorshift64 sequence from `state` (not 0): payloads that differ from
/// one `state` to the next, cheap to make and compare, that no compression or pattern
/// could flatter.
pub fn xorshift_bytes(mut state: u64, len: usize) -> Bytes {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

impl Sim {
    /// The client's node in a [`connected_pair`](Self::connected_pair).
    pub const PAIR_CLIENT: NodeId = 0;
    /// The server's node in a [`connected_pair`](Self::connected_pair).
    pub const PAIR_SERVER: NodeId = 1;

    /// An empty network whose randomness comes from `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            now: Instant::ZERO,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            nodes: Vec::new(),
            links: BTreeMap::new(),
            stalls: BTreeMap::new(),
            partitions: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: NetStats::default(),
            trace: None,
            buf: vec![0u8; 65_536],
            counts: BTreeMap::new(),
            drops: std::collections::BTreeSet::new(),
            idle_steps: 0,
            outside: BTreeMap::new(),
            captured: BTreeMap::new(),
            meter: None,
            taps: BTreeMap::new(),
            interceptors: BTreeMap::new(),
            nats: Vec::new(),
        }
    }

    /// Adds an endpoint with `config`; its seed is drawn from the simulator's.
    pub fn add_node(&mut self, config: Config) -> NodeId {
        self.add(config, Endpoint::new)
    }

    /// [`add_node`](Self::add_node) with an endpoint that records a trace of its life
    /// (`Endpoint::new_traced`); read it with [`take_trace`](Self::take_trace).
    pub fn add_traced_node(&mut self, config: Config) -> NodeId {
        self.add(config, Endpoint::new_traced)
    }

    /// The trace a node made with [`add_traced_node`](Self::add_traced_node) recorded since
    /// the last call, self-contained: a simulation's seeds are not secret, so its secrets
    /// are written inline (`weir_core::trace::inline_secrets`) and it replays on its own.
    pub fn take_trace(&mut self, node: NodeId) -> String {
        let ep = self.endpoint(node);
        let text = ep.take_trace();
        match ep.trace_secrets() {
            // A simulation gives no fresh entropy, so inlining cannot fail.
            Some(secrets) => weir_core::trace::inline_secrets(&text, &secrets).unwrap_or(text),
            None => text,
        }
    }

    fn add(&mut self, config: Config, make: fn(Config, u64) -> Endpoint) -> NodeId {
        let id = self.nodes.len();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, (id >> 8) as u8, id as u8)), 4000);
        let seed = self.rng.next_u64();
        self.nodes.push(Node {
            addr,
            endpoint: make(config, seed),
            granularity: Duration::from_micros(1),
            nat: None,
            by_hand: false,
        });
        id
    }

    /// Makes `node`'s timers fire only at multiples of `granularity`, as a runtime's timer
    /// wheel does (tokio's ticks are 1 ms), instead of at the exact microsecond: what a
    /// deadline shorter than the tick costs shows in the simulation.
    pub fn timer_granularity(&mut self, node: NodeId, granularity: Duration) {
        self.nodes[node].granularity = granularity;
    }

    /// Sets both directions of the link between `a` and `b` (links default to
    /// [`LinkConfig::default`]).
    pub fn link(&mut self, a: NodeId, b: NodeId, config: LinkConfig) {
        self.link_one_way(a, b, config);
        self.link_one_way(b, a, config);
    }

    /// Sets the link from `from` to `to` only.
    pub fn link_one_way(&mut self, from: NodeId, to: NodeId, config: LinkConfig) {
        self.links.insert((from, to), Link::new(config, Instant::ZERO));
    }

    /// Moves `node` (not one behind a NAT) to `addr`, as a phone does when it leaves Wi-Fi
    /// for its mobile network: what it sends from now on leaves from `addr`, and what is sent
    /// to its old address no longer reaches it (what is already on its way still does).
    pub fn readdress(&mut self, node: NodeId, addr: SocketAddr) {
        self.nodes[node].addr = addr;
    }

    /// Changes the link from `from` to `to` while traffic crosses it, as a path does when a
    /// radio's rate adapts or a route moves: what the bottleneck has queued leaves as it was
    /// scheduled to, and what comes after queues behind it at the new rate; datagrams in
    /// flight keep the delay they were sent with; the link's statistics go on.
    pub fn change_link_one_way(&mut self, from: NodeId, to: NodeId, config: LinkConfig) {
        match self.links.get_mut(&(from, to)) {
            Some(link) => link.config = config,
            None => self.link_one_way(from, to, config),
        }
    }

    /// Joins `client` to `server` by a path with a bottleneck from client to server: a
    /// rate of `bits_per_second`, a drop-tail queue of one bandwidth-delay product (the
    /// classic rule of thumb) but at least 100 ms at that rate and 16 datagrams, and half
    /// of `rtt` of propagation delay each way; the way back has no rate limit. `loss`
    /// applies both ways.
    pub fn bottleneck_path(
        &mut self,
        client: NodeId,
        server: NodeId,
        rtt: Duration,
        bits_per_second: u64,
        loss: f64,
    ) {
        let queue = rtt.max(Duration::from_millis(100));
        self.bottleneck_path_with_queue(client, server, rtt, bits_per_second, loss, queue);
    }

    /// Like [`Sim::bottleneck_path`], with a drop-tail queue of `queue` at the rate (and at
    /// least 16 datagrams): `rtt` for the classic one bandwidth-delay product.
    pub fn bottleneck_path_with_queue(
        &mut self,
        client: NodeId,
        server: NodeId,
        rtt: Duration,
        bits_per_second: u64,
        loss: f64,
        queue: Duration,
    ) {
        let delay = Duration::from_micros(rtt.as_micros() / 2);
        let queue = (u128::from(bits_per_second / 8) * u128::from(queue.as_micros()) / 1_000_000) as usize;
        let back = LinkConfig {
            delay,
            loss,
            ..LinkConfig::default()
        };
        let forward = LinkConfig {
            bandwidth: Some(bits_per_second),
            queue_bytes: queue.max(16 * 1200),
            ..back
        };
        self.link_one_way(client, server, forward);
        self.link_one_way(server, client, back);
    }

    /// Cuts `a` from `b` (both ways) from `from` until `until`.
    pub fn partition(&mut self, a: NodeId, b: NodeId, from: Instant, until: Instant) {
        self.partitions.push(Partition { a, b, from, until });
    }

    /// Datagrams `from` sent to `to` so far, the count [`Sim::drop_nth`] goes by.
    pub fn sent_between(&self, from: NodeId, to: NodeId) -> u64 {
        self.counts.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Drops the `n`-th datagram (counting from 1) that `from` sends to `to`.
    pub fn drop_nth(&mut self, from: NodeId, to: NodeId, n: u64) {
        self.drops.insert((from, to, n));
    }

    /// Records every datagram and event as text, readable with [`Sim::trace`].
    pub fn enable_trace(&mut self) {
        self.trace = Some(String::new());
    }

    /// The trace so far (empty unless [`Sim::enable_trace`] was called).
    pub fn trace(&self) -> &str {
        self.trace.as_deref().unwrap_or("")
    }

    /// Virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// What the bottleneck and the policer of the link from `from` to `to` did so far (all
    /// zero unless the link has a bandwidth limit or a policer).
    pub fn link_stats(&self, from: NodeId, to: NodeId) -> LinkStats {
        self.links
            .get(&(from, to))
            .map_or_else(LinkStats::default, |l| l.stats)
    }

    /// A node's endpoint.
    pub fn endpoint(&mut self, node: NodeId) -> &mut Endpoint {
        &mut self.nodes[node].endpoint
    }

    /// A node's endpoint, to read.
    pub fn endpoint_ref(&self, node: NodeId) -> &Endpoint {
        &self.nodes[node].endpoint
    }

    /// A node's address.
    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.nodes[node].addr
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Runs until the connection `client` started to `server` is established at both
    /// ends (at most 5 simulated seconds), and returns each end's handle, client's first;
    /// `None` for an end that did not get there.
    pub fn run_until_connected(
        &mut self,
        client: NodeId,
        server: NodeId,
    ) -> (Option<ConnectionHandle>, Option<ConnectionHandle>) {
        let conns = core::cell::RefCell::new((None, None));
        let limit = self.now + Duration::from_secs(5);
        self.run_until(
            limit,
            |_, node, e| {
                if let Event::Connected { conn, .. } = e {
                    let mut k = conns.borrow_mut();
                    if node == client {
                        k.0 = Some(conn);
                    } else if node == server {
                        k.1 = Some(conn);
                    }
                }
            },
            |_| matches!(*conns.borrow(), (Some(_), Some(_))),
        );
        conns.into_inner()
    }

    /// Two nodes, a client ([`PAIR_CLIENT`](Self::PAIR_CLIENT)) configured by `client` and a
    /// server ([`PAIR_SERVER`](Self::PAIR_SERVER)) by `server`, linked both ways by `link` and connected: the sim and each end's
    /// connection, the client's first. Panics if they are not connected within 5 simulated
    /// seconds: a test's set-up, not its subject.
    pub fn connected_pair(
        seed: u64,
        client: Config,
        server: Config,
        link: LinkConfig,
    ) -> (Sim, ConnectionHandle, ConnectionHandle) {
        let mut sim = Sim::new(seed);
        let (c, s) = (sim.add_node(client), sim.add_node(server));
        // A new sim numbers its nodes from 0, in the order they are added.
        assert_eq!((c, s), (Self::PAIR_CLIENT, Self::PAIR_SERVER));
        sim.link(c, s, link);
        sim.connect(c, s);
        let (Some(cc), Some(sc)) = sim.run_until_connected(c, s) else {
            panic!("not connected within 5 s");
        };
        (sim, cc, sc)
    }

    /// Starts a connection from `client` to `server`.
    pub fn connect(&mut self, client: NodeId, server: NodeId) -> ConnectionHandle {
        let addr = self.nodes[server].addr;
        let now = self.now;
        self.nodes[client]
            .endpoint
            .connect(now, addr)
            .expect("the client is below its connection limit")
    }

    /// Starts a connection from `client` to `server` whose client side uses `congestion`
    /// (instead of the client's configured controller).
    pub fn connect_with(
        &mut self,
        client: NodeId,
        server: NodeId,
        congestion: weir_core::congestion::CongestionAlgorithm,
    ) -> ConnectionHandle {
        let addr = self.nodes[server].addr;
        let now = self.now;
        self.nodes[client]
            .endpoint
            .connect_with(now, addr, congestion)
            .expect("the client is below its connection limit")
    }

    /// Injects a datagram as if `from` had sent it to `to` (for hostile-peer tests); it goes
    /// through the link like any other.
    pub fn inject(&mut self, from: SocketAddr, to: NodeId, data: Bytes) {
        let seq = self.next_seq();
        self.queue.push(Reverse(InFlight {
            at: self.now,
            seq,
            to,
            from,
            nat: None,
            data,
        }));
    }

    /// Datagrams and bytes the nodes sent to `addr`, an address that is no node's (where a
    /// spoofed datagram's answers go).
    pub fn sent_outside(&self, addr: SocketAddr) -> (u64, u64) {
        self.outside.get(&addr).copied().unwrap_or_default()
    }

    /// Every outside address the nodes sent to, with its datagrams and bytes.
    pub fn outside_addresses(&self) -> impl Iterator<Item = (SocketAddr, (u64, u64))> + '_ {
        self.outside.iter().map(|(a, c)| (*a, *c))
    }

    /// Keeps the datagrams nodes send to `addr` (an address that is no node's: a hostile
    /// peer played by the test), for [`take_captured`](Self::take_captured).
    pub fn capture(&mut self, addr: SocketAddr) {
        self.captured.entry(addr).or_default();
    }

    /// The datagrams sent to a captured address since the last call, oldest first.
    pub fn take_captured(&mut self, addr: SocketAddr) -> Vec<Bytes> {
        self.captured
            .get_mut(&addr)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Counts the heap bytes node `node` holds from now on. `live` reads the bytes the
    /// calling thread has allocated and not freed (a counting global allocator in the test
    /// binary); the simulator reads it around every call into the node's endpoint and into
    /// the event handler for it, and hands the endpoint its own copy of each datagram it
    /// receives, so datagram bytes the endpoint keeps (zero-copy slices) count as its own.
    /// One node at a time.
    pub fn meter(&mut self, node: NodeId, live: fn() -> i64) {
        self.meter = Some(Meter {
            node,
            live,
            counted: Metered::default(),
        });
    }

    /// What the meter counted.
    pub fn metered(&self) -> Metered {
        self.meter.as_ref().map(|m| m.counted).unwrap_or_default()
    }

    /// Runs `f` (a call into node `node`), counting what it allocates if the node is metered.
    fn on_node<T>(&mut self, node: NodeId, f: impl FnOnce(&mut Sim) -> T) -> T {
        let Some(live) = self.meter.as_ref().filter(|m| m.node == node).map(|m| m.live) else {
            return f(self);
        };
        let before = live();
        let out = f(self);
        let grown = live() - before;
        if let Some(m) = self.meter.as_mut() {
            m.counted.held += grown;
            m.counted.peak = m.counted.peak.max(m.counted.held);
        }
        out
    }

    /// Puts a man in the middle on the path from `from` to `to`: every datagram that takes
    /// it passes through `rewrite` first (before taps and impairments), which may change its
    /// bytes in place or, returning `false`, swallow it.
    pub fn intercept(
        &mut self,
        from: NodeId,
        to: NodeId,
        rewrite: impl FnMut(&mut Vec<u8>) -> bool + 'static,
    ) {
        self.interceptors.insert((from, to), Box::new(rewrite));
    }

    /// Keeps a copy of every datagram `from` sends `to` from now on (as an eavesdropper on
    /// the path sees them: before any loss), for [`take_tapped`](Self::take_tapped).
    pub fn tap(&mut self, from: NodeId, to: NodeId) {
        self.taps.entry((from, to)).or_default();
    }

    /// The datagrams seen on a tapped link since the last call, oldest first.
    pub fn take_tapped(&mut self, from: NodeId, to: NodeId) -> Vec<Bytes> {
        self.taps
            .get_mut(&(from, to))
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, max: Duration) -> Duration {
        match max.as_micros() {
            0 => Duration::ZERO,
            m => Duration::from_micros(self.rng.next_u64() % (m + 1)),
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_mut() {
            let _ = writeln!(t, "{}", line());
        }
    }

    /// Sends every datagram every endpoint has ready into the network (but a node's that
    /// sends by hand).
    fn flush(&mut self) {
        for from in 0..self.nodes.len() {
            if !self.nodes[from].by_hand {
                while self.send_one(from) {}
            }
        }
    }

    /// From now on `node`'s datagrams leave only when [`send_one`](Self::send_one) sends
    /// them, one at a time: a test sees what each brings its receiver, and may act between
    /// them (the next datagram is made only when it is sent).
    pub fn send_by_hand(&mut self, node: NodeId) {
        self.nodes[node].by_hand = true;
    }

    /// Sends the next datagram `from` has ready (at the current time) into the network;
    /// whether there was one.
    pub fn send_one(&mut self, from: NodeId) -> bool {
        let now = self.now;
        let sent = self.on_node(from, |sim| {
            sim.nodes[from].endpoint.poll_transmit(now, &mut sim.buf)
        });
        let Some(t) = sent else {
            return false;
        };
        let data = Bytes::copy_from_slice(&self.buf[..t.len]);
        self.route(from, t.destination, data);
        true
    }

    /// The next moment anything happens: a delivery or an endpoint timer.
    fn next_event(&self) -> Option<Instant> {
        let delivery = self.queue.peek().map(|Reverse(f)| f.at);
        let timer = self.nodes.iter().filter_map(Node::timer).min();
        match (delivery, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances to the next event (not past `limit`) and handles it; returns false when
    /// nothing is left to happen before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.flush();
        let Some(next) = self.next_event().filter(|&t| t <= limit) else {
            self.now = self.now.max(limit);
            return false;
        };
        if next <= self.now && self.queue.peek().is_none_or(|Reverse(f)| f.at > self.now) {
            self.idle_steps += 1;
            if self.idle_steps > 10_000 {
                let timers: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("{:?}", n.endpoint.next_timer()))
                    .collect();
                panic!(
                    "livelock at {}: a timer stays due after handle_timeout: {timers:?}",
                    self.now
                );
            }
        } else {
            self.idle_steps = 0;
        }
        self.now = self.now.max(next);
        let now = self.now;
        while self.queue.peek().is_some_and(|Reverse(f)| f.at <= now) {
            let Some(Reverse(f)) = self.queue.pop() else { break };
            if let Some(at) = f.nat {
                if !self.nat_admits(at, f.from, f.to) {
                    self.stats.nat_dropped += 1;
                    continue;
                }
            }
            self.stats.delivered += 1;
            let metered = self.meter.as_ref().is_some_and(|m| m.node == f.to);
            if metered {
                // Its own copy, allocated under the meter; the network's is freed outside it.
                self.on_node(f.to, |sim| {
                    let data = BytesMut::from(&f.data[..]);
                    sim.nodes[f.to].endpoint.handle_datagram(now, f.from, data)
                });
            } else {
                self.nodes[f.to]
                    .endpoint
                    .handle_datagram(now, f.from, f.data.into());
            }
        }
        for n in 0..self.nodes.len() {
            if self.nodes[n].timer().is_some_and(|t| t <= now) {
                self.on_node(n, |sim| sim.nodes[n].endpoint.handle_timeout(now));
            }
        }
        self.flush();
        true
    }

    /// Runs for `duration` of virtual time, calling `on_event` with every event of every
    /// node as it happens (the handler may call into any endpoint).
    pub fn run_for(&mut self, duration: Duration, on_event: impl FnMut(&mut Sim, NodeId, Event)) {
        let limit = self.now + duration;
        self.run_until(limit, on_event, |_| false);
    }

    /// Runs until `limit`, or until `done` says so (checked after every step), calling
    /// `on_event` for every event. Returns whether `done` ended it.
    pub fn run_until(
        &mut self,
        limit: Instant,
        mut on_event: impl FnMut(&mut Sim, NodeId, Event),
        mut done: impl FnMut(&Sim) -> bool,
    ) -> bool {
        loop {
            self.dispatch(&mut on_event);
            if done(self) {
                return true;
            }
            if !self.step(limit) {
                self.dispatch(&mut on_event);
                return done(self);
            }
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(&mut Sim, NodeId, Event)) {
        loop {
            let mut any = false;
            for n in 0..self.nodes.len() {
                while let Some(e) = self.on_node(n, |sim| sim.nodes[n].endpoint.poll_event()) {
                    any = true;
                    let now = self.now;
                    self.log(|| format!("{now} n{n} {e:?}"));
                    self.on_node(n, |sim| on_event(sim, n, e));
                }
            }
            if !any {
                return;
            }
            // Commands from the handler may have produced output: send it now.
            self.flush();
        }
    }
}

/// A short description of a datagram for the trace: its packet type and first frame type
/// (the full packet cannot be decoded without the receiver's packet-number context).
fn describe(data: &[u8]) -> String {
    let Ok(inv) = weir_core::wire::Invariant::parse(data) else {
        return "garbage".into();
    };
    if inv.version != weir_core::wire::VERSION_1 {
        return format!("version={}", inv.version);
    }
    let pn_len = usize::from(data.get(2).copied().unwrap_or(0) & 3) + 1;
    let header = inv.len() + pn_len + 4;
    let kind = if inv.scid.is_some() { "handshake" } else { "data" };
    match data.get(header) {
        Some(t) => format!("{kind} first-frame={t:#04x}"),
        None => kind.into(),
    }
}
