//! Hostile peers (spec/protocol.md §10) in weir-sim. Each attack runs against a server while
//! a legitimate client sends it 10 MiB on the same endpoint; each test asserts that the
//! transfer completes, that the server's heap (counted by a counting allocator, per thread,
//! around every call into the server: `Sim::meter`) stays under a bound computed from its
//! configuration, and what the attack itself must not achieve.
//!
//! The peaks each attack reached are printed (`cargo test -p weir-sim --test hostile --
//! --nocapture`); tests/README.md's attack table quotes them.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Ack, AckRange, AckRanges, CloseCode, Side, StreamFrame, StreamId, TransportErrorCode};
use weir_core::wire::{
    Capabilities, ConnectionId, Frame, Header, Hello, Packet, PacketKind, PacketNumberLen, PacketWriter,
    TransportParams, VersionRange,
};
use weir_core::{
    AddressValidation, ApiError, CloseReason, Config, ConnectionHandle, ConnectionStats, EndpointLoad,
    EndpointStats, Event, Priority, Read, StreamHeader, ViolationKind,
};
use weir_sim::{LinkConfig, NodeId, Sim};

mod common;
mod counting;
use common::Traffic;
use counting::{allocations, live};

// ------------------------------------------------------------------ the arena

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// The legitimate transfer each attack must not stop.
const TRANSFER: u64 = 10 * MIB;

/// Heap a connection's state takes at most, whatever it buffers (tests/tests/scale.rs
/// measures under 4 KiB for an idle one; this leaves room for recovery state and streams).
const PER_CONNECTION: u64 = 16 * KIB;
/// Memory the server holds besides its connections: tables, queues, the admission state
/// and the legitimate connection's congestion and recovery history.
const BASE: u64 = 512 * KIB;

/// The server's configuration: defaults, with smaller windows so the bound is tight, and
/// unprotected (wire version 1), so that the raw peers here can forge packets as a
/// connection's authenticated peer could (what they test is what a peer may do, not who
/// may be one; `tests/crypto.rs` tests that).
fn server_config() -> Config {
    Config {
        versions: VersionRange::UNPROTECTED,
        stream_receive_window: 256 * KIB,
        max_stream_receive_window: MIB,
        receive_window: MIB,
        max_receive_window: 2 * MIB,
        ..Config::default()
    }
}

/// An honest peer of the server: unprotected like it.
fn peer_config() -> Config {
    Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    }
}

/// The most heap `config` lets a server hold with `idle` connections that cannot carry
/// stream data (handshakes not confirmed) and `active` ones: each one's state, and what the
/// active peers may make it buffer (their receive windows at most).
fn bound(config: &Config, idle: u64, active: u64) -> u64 {
    BASE + (idle + active) * PER_CONNECTION + active * config.max_receive_window
}

/// What an attack run saw.
#[derive(Debug, Default)]
struct Report {
    /// When the legitimate transfer completed.
    done: Option<Instant>,
    /// The server's heap at its highest (net bytes its calls allocated).
    peak_heap: i64,
    /// The server's load gauges, each at its highest.
    peak: EndpointLoad,
    stats: EndpointStats,
    /// The server's Closed events.
    closed: Vec<Event>,
}

struct Arena {
    sim: Sim,
    server: NodeId,
    client: NodeId,
    traffic: Traffic,
    /// Bytes the server's application sends on every connection other than the
    /// legitimate client's, as fast as its send buffer takes them.
    serve: u64,
    /// The legitimate client's connection on the server, once connected.
    legit: Option<ConnectionHandle>,
}

impl Arena {
    fn new(config: Config) -> Self {
        let mut sim = Sim::new(8);
        let client = sim.add_node(Config {
            versions: config.versions,
            ..Config::default()
        });
        let server = sim.add_node(config);
        sim.link(client, server, LinkConfig::default());
        sim.meter(server, live);
        let conn = sim.connect(client, server);
        let mut traffic = Traffic::new();
        traffic.bulk(client, conn, TRANSFER, Priority::Normal);
        Arena {
            sim,
            server,
            client,
            traffic,
            serve: 0,
            legit: None,
        }
    }

    fn config(&mut self) -> Config {
        self.sim.endpoint(self.server).config().clone()
    }

    /// Runs until the legitimate transfer is in and the attack over (`attack` returns
    /// false), or `limit` has passed, calling `attack` every `tick` of virtual time (the
    /// attacker's events, if it is a node, go to `on_attacker`).
    fn run(
        &mut self,
        limit: Duration,
        tick: Duration,
        mut attack: impl FnMut(&mut Sim, Instant) -> bool,
        mut on_attacker: impl FnMut(&mut Sim, NodeId, Event),
    ) -> Report {
        let end = self.sim.now() + limit;
        let mut report = Report::default();
        let (server, client, serve) = (self.server, self.client, self.serve);
        let client_addr = self.sim.addr(client);
        let closed = std::cell::RefCell::new(Vec::new());
        // The legitimate client's connection on the server (an attacker may connect first).
        let legit = std::cell::Cell::new(self.legit);
        let mut attacking = true;
        while self.sim.now() < end {
            let now = self.sim.now();
            // The tick after the attack's last one runs whole, so what it sent arrives.
            let settling = !attacking;
            attacking = attacking && attack(&mut self.sim, now);
            let until = (self.sim.now() + tick).min(end);
            let traffic = std::cell::RefCell::new(&mut self.traffic);
            let mut peak = report.peak;
            let mut done = report.done;
            let over = self.sim.run_until(
                until,
                |sim, node, event| {
                    if node == server {
                        if let Event::Connected { conn, .. } = event {
                            let from = sim.endpoint_ref(server).remote_address(conn);
                            if from == Some(client_addr) {
                                legit.set(Some(conn));
                            }
                            if serve > 0 && from != Some(client_addr) {
                                traffic.borrow_mut().bulk(server, conn, serve, Priority::Normal);
                            }
                        }
                        if matches!(event, Event::Closed { .. }) {
                            closed.borrow_mut().push(event.clone());
                        }
                    }
                    if node == server || node == client {
                        traffic.borrow_mut().on_event(sim, node, &event);
                    } else {
                        on_attacker(sim, node, event);
                    }
                },
                |sim| {
                    let l = sim.endpoint_ref(server).load();
                    peak.connections = peak.connections.max(l.connections);
                    peak.handshakes_pending = peak.handshakes_pending.max(l.handshakes_pending);
                    peak.addresses_tracked = peak.addresses_tracked.max(l.addresses_tracked);
                    peak.stateless_queued = peak.stateless_queued.max(l.stateless_queued);
                    peak.bytes_received_unread = peak.bytes_received_unread.max(l.bytes_received_unread);
                    peak.bytes_unacknowledged = peak.bytes_unacknowledged.max(l.bytes_unacknowledged);
                    peak.receive_budgets = peak.receive_budgets.max(l.receive_budgets);
                    let delivered = legit
                        .get()
                        .and_then(|c| traffic.borrow().delivered.get(&(server, c)).copied());
                    if done.is_none() && delivered >= Some(TRANSFER) {
                        done = Some(sim.now());
                    }
                    done.is_some() && settling
                },
            );
            report.peak = peak;
            report.done = done;
            self.legit = legit.get();
            if over {
                break;
            }
        }
        report.closed = closed.into_inner();
        report.peak_heap = self.sim.metered().peak;
        report.stats = self.sim.endpoint_ref(self.server).stats();
        report
    }
}

/// Checks what every attack must leave intact, and prints the peaks for tests/README.md.
fn assert_survived(name: &str, report: &Report, bound: u64) {
    println!(
        "{name}: transfer done at {:?}; server heap peak {} KiB (bound {} KiB); load peak {:?}; stats {:?}",
        report.done,
        report.peak_heap / 1024,
        bound / 1024,
        report.peak,
        report.stats
    );
    assert!(
        report.done.is_some(),
        "{name}: the legitimate 10 MiB transfer did not complete"
    );
    assert!(
        report.peak_heap <= bound as i64,
        "{name}: the server held {} bytes at peak, over its bound {bound}",
        report.peak_heap
    );
}

/// An address on the attacker's side of the network (not a node's).
fn outsider(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0xac10_0000u32 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 1000 + (i % 50_000) as u16))
}

/// A HELLO as a client would send it, from connection id `scid`, padded to 1200 bytes.
fn hello(scid: u64, token: Bytes) -> Bytes {
    let hello = Frame::Hello(Hello {
        versions: VersionRange::V1,
        capabilities: Capabilities::ALL,
        token,
        params: TransportParams::default(),
    });
    first_datagram(weir_core::wire::VERSION_1, scid, &hello)
}

/// A client's first datagram of wire version `version` from connection id `scid`, carrying
/// `frame`, padded to 1200 bytes.
fn first_datagram(version: u16, scid: u64, frame: &Frame) -> Bytes {
    let header = Header {
        version,
        key_phase: weir_core::wire::KeyPhase::Zero,
        kind: PacketKind::Handshake {
            scid: ConnectionId::from_u64(scid),
        },
        dcid: ConnectionId::UNSET,
        number: 0,
        number_len: PacketNumberLen::One,
        timestamp: 0,
    };
    let mut buf = BytesMut::zeroed(1200);
    let mut w = PacketWriter::new(&mut buf, &header).unwrap();
    w.push(frame).unwrap();
    w.pad_to(1200).unwrap();
    let len = w.finish().unwrap();
    buf.truncate(len);
    buf.freeze()
}

fn ignore(_: &mut Sim, _: NodeId, _: Event) {}

/// A peer the test plays byte for byte from an outside address: it handshakes as a client
/// would (answering RETRY), then sends whatever frames the attack wants.
struct RawPeer {
    addr: SocketAddr,
    cid: u64,
    token: Bytes,
    server_cid: Option<ConnectionId>,
    next_pn: u64,
    largest_received: Option<u64>,
    /// Numbers of the packets received since the test last took them.
    received: Vec<u64>,
    /// Bytes of the server's datagrams received.
    bytes_received: u64,
    /// The server closed the connection with this code.
    closed: Option<CloseCode>,
    /// A HELLO went out (`greet`).
    greeted: bool,
}

impl RawPeer {
    fn new(sim: &mut Sim, addr: SocketAddr, cid: u64) -> Self {
        sim.capture(addr);
        RawPeer {
            addr,
            cid,
            token: Bytes::new(),
            server_cid: None,
            next_pn: 1,
            largest_received: None,
            received: Vec::new(),
            bytes_received: 0,
            closed: None,
            greeted: false,
        }
    }

    /// Sends a HELLO (again, with the token of a RETRY if one came).
    fn hello(&mut self, sim: &mut Sim, server: NodeId) {
        sim.inject(self.addr, server, hello(self.cid, self.token.clone()));
    }

    /// Sends the first HELLO if none went out yet; whether it did.
    fn greet(&mut self, sim: &mut Sim, server: NodeId) -> bool {
        let first = !self.greeted;
        if first {
            self.hello(sim, server);
            self.greeted = true;
        }
        first
    }

    /// Reads what the server sent: ACCEPT (the connection is up: confirmed at once with a
    /// PING), RETRY (HELLO again with its token), CLOSE.
    fn poll(&mut self, sim: &mut Sim, server: NodeId) {
        for datagram in sim.take_captured(self.addr) {
            self.bytes_received += datagram.len() as u64;
            let Ok(packet) = Packet::decode(datagram, self.largest_received) else {
                continue;
            };
            self.largest_received = self.largest_received.max(Some(packet.header.number));
            self.received.push(packet.header.number);
            for frame in packet.frames() {
                match frame {
                    Frame::Accept(_) if self.server_cid.is_none() => {
                        if let PacketKind::Handshake { scid } = packet.header.kind {
                            self.server_cid = Some(scid);
                            self.send(sim, server, &[Frame::Ping]);
                        }
                    }
                    Frame::Retry(retry) if self.token.is_empty() => {
                        self.token = retry.token;
                        self.hello(sim, server);
                    }
                    Frame::Close(close) => self.closed = Some(close.code),
                    _ => {}
                }
            }
        }
    }

    /// A data packet carrying `frames`, padded to `pad_to` bytes, with the next packet
    /// number; `None` before ACCEPT.
    fn packet(&mut self, frames: &[Frame], pad_to: usize) -> Option<Bytes> {
        let header = Header {
            version: weir_core::wire::VERSION_1,
            key_phase: weir_core::wire::KeyPhase::Zero,
            kind: PacketKind::Data,
            dcid: self.server_cid?,
            number: self.next_pn,
            number_len: PacketNumberLen::Four,
            timestamp: 0,
        };
        self.next_pn += 1;
        let mut buf = BytesMut::zeroed(1200);
        let mut w = PacketWriter::new(&mut buf, &header).unwrap();
        for f in frames {
            w.push(f).unwrap();
        }
        w.pad_to(pad_to).unwrap();
        let len = w.finish().unwrap();
        buf.truncate(len);
        Some(buf.freeze())
    }

    fn send(&mut self, sim: &mut Sim, server: NodeId, frames: &[Frame]) -> bool {
        self.send_padded(sim, server, frames, 0)
    }

    /// Sends `frames` in a datagram of at least `pad_to` bytes.
    fn send_padded(&mut self, sim: &mut Sim, server: NodeId, frames: &[Frame], pad_to: usize) -> bool {
        match self.packet(frames, pad_to) {
            Some(p) => {
                sim.inject(self.addr, server, p);
                true
            }
            None => false,
        }
    }
}

/// A STREAM frame on the client's first stream.
fn on_stream_0(offset: u64, data: &'static [u8], total_len: Option<u64>) -> StreamFrame {
    StreamFrame {
        id: StreamId::new(Side::Client, 0),
        offset,
        data: Bytes::from_static(data),
        fin: false,
        total_len,
        label: None,
        digest: None,
    }
}

/// The server closed one connection, `peer`'s, for `kind`, and told it its code.
fn assert_closed_for(report: &Report, peer: &RawPeer, kind: ViolationKind) {
    assert_eq!(violations(&report.closed), vec![kind]);
    assert_eq!(peer.closed, Some(CloseCode::Transport(kind.code())));
}

/// The violations the server closed connections for, as its events said.
fn violations(events: &[Event]) -> Vec<ViolationKind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Closed {
                reason: CloseReason::ProtocolViolation { kind },
                ..
            } => Some(*kind),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ floods

#[test]
fn a_hundred_thousand_spoofed_hellos_get_retries_and_hold_no_state() {
    spoofed_hellos("spoofed HELLOs", server_config(), hello(0x5eed, Bytes::new()));
}

/// The same flood against an encrypted server (wire version 2): each admitted NOISE_HELLO
/// costs a Noise responder (two X25519 operations and its state), so admission must keep
/// them to the handshakes it lets through; the rest get a RETRY, a MAC each.
#[test]
fn a_hundred_thousand_spoofed_noise_hellos_cost_at_most_the_admitted_handshakes() {
    let config = Config {
        versions: VersionRange::ENCRYPTED,
        ..server_config()
    };
    spoofed_hellos("spoofed NOISE_HELLOs", config, noise_hello(0x5eed));
}

/// A NOISE_HELLO starting XX, from connection id `scid`: any 32 bytes make an ephemeral key
/// the server will compute with.
fn noise_hello(scid: u64) -> Bytes {
    noise_hello_with(scid, weir_core::wire::NoisePattern::Xx, &[0x42; 32])
}

/// A NOISE_HELLO of `pattern` whose first Noise message is `message`, from `scid`.
fn noise_hello_with(scid: u64, pattern: weir_core::wire::NoisePattern, message: &'static [u8]) -> Bytes {
    let hello = Frame::NoiseHello(weir_core::wire::NoiseHello {
        hello: Hello {
            versions: VersionRange::ENCRYPTED,
            capabilities: Capabilities::ALL,
            token: Bytes::new(),
            params: TransportParams::default(),
        },
        pattern,
        ciphers: weir_core::wire::Ciphers::ALL,
        message: Bytes::from_static(message),
    });
    first_datagram(weir_core::wire::VERSION_2, scid, &hello)
}

/// 100,000 copies of `datagram` from as many spoofed addresses in one second, while the
/// legitimate client (same versions as the server) sends its 10 MiB.
fn spoofed_hellos(name: &str, server: Config, datagram: Bytes) {
    const SPOOFED: u32 = 100_000;
    const PER_TICK: u32 = 1_000;
    let mut arena = Arena::new(server);
    let config = arena.config();
    let server = arena.server;
    let mut sent = 0;
    // 100,000 in one second of virtual time, while the legitimate client connects.
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            for _ in 0..PER_TICK.min(SPOOFED - sent) {
                sim.inject(outsider(sent), server, datagram.clone());
                sent += 1;
            }
            sent < SPOOFED
        },
        ignore,
    );
    let pending = match config.address_validation {
        AddressValidation::UnderLoad { pending } => pending as u64,
        _ => unreachable!("the default validates under load"),
    };
    // State for at most `pending` spoofed handshakes (plus the legitimate connection).
    assert_survived(name, &report, bound(&config, pending, 1));
    assert_eq!(sent, SPOOFED);
    assert!(report.peak.handshakes_pending as u64 <= pending + 1);
    assert!(report.stats.retries_sent >= u64::from(SPOOFED) - pending - 1);
    // Nothing sent to any spoofed address exceeds 3x the 1200 bytes it "sent".
    let sim = &arena.sim;
    let worst = (0..SPOOFED)
        .map(|i| sim.sent_outside(outsider(i)).1)
        .max()
        .unwrap();
    assert!(
        worst <= 3 * datagram.len() as u64,
        "{worst} bytes sent to one spoofed address"
    );
}

/// A NOISE_HELLO starting IK, from connection id `scid`, whose first message is garbage: the
/// server computes an X25519 with its ephemeral key before the encrypted static key fails to
/// open (REJECT KEY_MISMATCH).
fn garbage_ik_hello(scid: u64) -> Bytes {
    noise_hello_with(scid, weir_core::wire::NoisePattern::Ik, &[0x42; 96])
}

/// Issue 30, item 4: 100,000 garbage IK HELLOs from as many spoofed addresses in one second,
/// while the legitimate client sends its 10 MiB and 20 more weir clients connect. Each
/// garbage HELLO that reaches the handshake costs the server public-key work and fails it;
/// those now spend the handshake rate like any other, so the flood turns on address
/// validation, and the rest get a RETRY (a MAC) and cost nothing more. Before, failing
/// HELLOs never touched the rate: all 100,000 cost an X25519 and none was asked to
/// validate its address.
#[test]
fn a_flood_of_garbage_ik_hellos_is_held_to_the_handshake_rate() {
    const SPOOFED: u32 = 100_000;
    let mut arena = Arena::new(Config {
        versions: VersionRange::ENCRYPTED,
        ..server_config()
    });
    let config = arena.config();
    let server = arena.server;
    let clients: Vec<NodeId> = (0..20)
        .map(|_| {
            let n = arena.sim.add_node(Config {
                versions: VersionRange::ENCRYPTED,
                ..Config::default()
            });
            arena.sim.link(n, server, LinkConfig::default());
            n
        })
        .collect();
    let connected = std::cell::RefCell::new(Vec::new());
    let datagram = garbage_ik_hello(0x5eed);
    let mut sent = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, now| {
            if sent == 20_000 {
                // A fifth into the flood, the other clients connect.
                for &n in &clients {
                    sim.connect(n, server);
                }
            }
            for _ in 0..1_000.min(SPOOFED - sent) {
                sim.inject(outsider(sent), server, datagram.clone());
                sent += 1;
            }
            sent < SPOOFED || now < Instant::from_micros(1_500_000)
        },
        |sim, node, event| {
            if let Event::Connected { .. } = event {
                connected.borrow_mut().push((node, sim.now()));
            }
        },
    );
    let pending = match config.address_validation {
        AddressValidation::UnderLoad { pending } => pending as u64,
        _ => unreachable!("the default validates under load"),
    };
    assert_survived("garbage IK HELLOs", &report, bound(&config, pending, 21));
    let read = report.stats.noise_hellos_read;
    let last = connected.borrow().iter().map(|&(_, at)| at).max();
    println!(
        "{read} NOISE_HELLOs read of {SPOOFED} garbage and 21 genuine; {} RETRYs; {} of 20 clients connected, the last at {last:?} (they started at 0.2 s)",
        report.stats.retries_sent,
        connected.borrow().len()
    );
    // The rate's burst and its refill over the flood's second, and the genuine ones.
    let rate = u64::from(config.max_handshakes_per_second);
    assert!(read <= rate / 10 + rate * 2 + 21, "{read} read");
    assert!(
        report.stats.retries_sent + read >= u64::from(SPOOFED),
        "{:?}",
        report.stats
    );
    assert_eq!(connected.borrow().len(), 20, "every genuine client connected");
}

/// Issue 30, item 12: a host that rotates through the addresses of its IPv6 /64 (as any
/// host may, at will) is still one address to the per-address limit: 12 peers from one /64
/// get at most `max_connections_per_address` connections, the rest REJECT AT_CAPACITY, while
/// a peer in the next /64 connects. Before, each address counted apart, and one host could
/// take up to `max_connections`.
#[test]
fn addresses_rotated_within_one_ipv6_prefix_share_the_per_address_limit() {
    let mut arena = Arena::new(Config {
        max_connections_per_address: 4,
        ..server_config()
    });
    let server = arena.server;
    let v6 = |net: u16, host: u16| SocketAddr::from(([0x2001, 0xdb8, 0, net, host, 0, 0, 1], 4000));
    let mut peers: Vec<RawPeer> = (0..12u16)
        .map(|i| RawPeer::new(&mut arena.sim, v6(7, i + 1), 500 + u64::from(i)))
        .collect();
    let mut neighbour = RawPeer::new(&mut arena.sim, v6(8, 1), 600);
    let report = arena.run(
        Duration::from_secs(30),
        Duration::from_millis(10),
        |sim, now| {
            for p in peers.iter_mut().chain(std::iter::once(&mut neighbour)) {
                p.poll(sim, server);
                p.greet(sim, server);
            }
            now < Instant::from_micros(1_000_000)
        },
        ignore,
    );
    let connected = peers.iter().filter(|p| p.server_cid.is_some()).count();
    println!("one /64: {connected} of 12 connected; stats {:?}", report.stats);
    assert_eq!(connected, 4, "the /64 is one address");
    assert!(report.stats.rejected >= 8, "{:?}", report.stats);
    assert!(neighbour.server_cid.is_some(), "the next /64 is another address");
    assert!(report.done.is_some());
}

#[test]
fn garbage_from_ten_thousand_addresses_is_dropped_unanswered() {
    const SOURCES: u32 = 10_000;
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut round = 0u32;
    let mut injected = 0u64;
    // Ten datagrams of 1 to 1500 random bytes from each address, over a second.
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            for i in 0..SOURCES / 10 {
                let len = 1 + (next() % 1500) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                injected += len as u64;
                sim.inject(outsider((round % 10) * (SOURCES / 10) + i), server, bytes.into());
            }
            round += 1;
            round < 100
        },
        ignore,
    );
    assert_survived("garbage", &report, bound(&config, 0, 1));
    // Only what reads as a long header of an unknown version, at least 1200 bytes long, is
    // answered (VERSION_REJECT, spec §6), and far smaller than what came in.
    let sim = &arena.sim;
    let (answers, answered) = (0..SOURCES)
        .map(|i| sim.sent_outside(outsider(i)))
        .fold((0, 0), |(d, b), (dd, bb)| (d + dd, b + bb));
    assert_eq!(answers, report.stats.version_rejects_sent);
    assert!(
        answered * 10 < injected,
        "{answered} bytes answered to {injected} of garbage"
    );
    assert_eq!(report.peak.connections, 1);
}

// ------------------------------------------------------------------ liars

#[test]
fn an_optimistic_acker_is_closed_with_a_typed_violation_and_then_banned() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let attacker = outsider(1);
    // Three attempts from one IP address (three ports): each acknowledges a packet the
    // server never sent.
    let mut peers: Vec<RawPeer> = (0..3)
        .map(|i| {
            RawPeer::new(
                &mut arena.sim,
                SocketAddr::new(attacker.ip(), 7000 + i as u16),
                100 + i,
            )
        })
        .collect();
    let mut tick = 0u32;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            tick += 1;
            // One attempt every second, the next from the same address.
            let i = (tick / 20) as usize;
            if tick % 20 == 1 && i < peers.len() {
                peers[i].hello(sim, server);
            }
            for p in peers.iter_mut() {
                p.poll(sim, server);
                if p.server_cid.is_some() && p.closed.is_none() {
                    p.send(sim, server, &[claim_all_up_to(1_000_000)]);
                }
            }
            tick < 80
        },
        ignore,
    );
    for p in peers.iter_mut() {
        p.poll(&mut arena.sim, server);
    }
    assert_survived("optimistic ACKs", &report, bound(&config, 0, 3));
    // Two connections closed for the lie, each told why; the third attempt was refused.
    assert_eq!(
        violations(&report.closed),
        vec![ViolationKind::UnsentPacketAcked; 2]
    );
    for p in &peers[..2] {
        assert_eq!(
            p.closed,
            Some(CloseCode::Transport(TransportErrorCode::PROTOCOL_VIOLATION))
        );
    }
    assert!(peers[2].server_cid.is_none(), "a banned address got a connection");
    assert!(report.stats.dropped_banned >= 1);
    assert_eq!(report.stats.violations, 2);
    assert_eq!(report.peak.addresses_tracked, 1);
}

/// An ACK frame claiming every packet number from 0 to `largest`.
fn claim_all_up_to(largest: u64) -> Frame {
    Frame::Ack(Ack {
        ranges: AckRanges::single(0, largest).unwrap(),
        ack_delay: 0,
        one_way_delay: 0,
    })
}

#[test]
fn an_acker_claiming_every_number_up_to_the_largest_it_saw_is_caught_at_a_number_left_out() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    arena.serve = 4 * MIB;
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(1), 100);
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(20),
        |sim, _| {
            peer.greet(sim, server);
            peer.poll(sim, server);
            // It never names a number the server has not reached (the check of spec §8's
            // first rule never fires): it only hides which packets it missed, so the server
            // never slows down or resends. Only the numbers the server left out show it.
            if let (Some(largest), None) = (peer.largest_received, peer.closed) {
                peer.send(sim, server, &[claim_all_up_to(largest)]);
            }
            peer.closed.is_none()
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("claims every number", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::UnsentPacketAcked);
    // Caught at the first number left out (the 16th to 31st packet) or, if the claim
    // covering it came after the next, at that one (at most 2^4 + 2^5 + 2^6 packets in).
    let largest = peer.largest_received.unwrap();
    println!("claims every number: closed after the server's packet {largest}");
    assert!(largest < 16 + 32 + 64, "{largest}");
}

/// A peer the server sends 16 MiB that acknowledges one packet in ten it receives (and the
/// newest, after 100 ms without one), with `max_retransmission_ratio` at `ratio`: the
/// server's report, its counters as the connection ended (if it did), and the bytes it sent
/// the peer.
fn trickle_acker(ratio: Option<u32>) -> (Report, Option<ConnectionStats>, u64) {
    let mut arena = Arena::new(Config {
        max_retransmission_ratio: ratio,
        ..server_config()
    });
    arena.serve = 16 * MIB;
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(1), 100);
    let mut quiet_ticks = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(20),
        |sim, _| {
            peer.greet(sim, server);
            peer.poll(sim, server);
            let fresh = std::mem::take(&mut peer.received);
            let mut chosen: Vec<u64> = fresh.iter().copied().filter(|pn| pn % 10 == 0).collect();
            quiet_ticks = if chosen.is_empty() { quiet_ticks + 1 } else { 0 };
            if quiet_ticks >= 5 {
                chosen.extend(fresh.iter().max());
                quiet_ticks = 0;
            }
            if peer.server_cid.is_some() && peer.closed.is_none() {
                for pn in chosen {
                    let ack = Ack {
                        ranges: AckRanges::single(pn, pn).unwrap(),
                        ack_delay: 0,
                        one_way_delay: 0,
                    };
                    peer.send(sim, server, &[Frame::Ack(ack)]);
                }
            }
            peer.closed.is_none()
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    let ended = report.closed.iter().find_map(|e| match e {
        Event::Closed {
            reason: CloseReason::TooLossy,
            stats,
            ..
        } => Some(**stats),
        _ => None,
    });
    (report, ended, peer.bytes_received)
}

#[test]
fn a_peer_acknowledging_a_trickle_ends_its_connection_within_the_retransmission_budget() {
    let ratio = 2;
    let (report, ended, sent) = trickle_acker(Some(ratio));
    let config = server_config();
    assert_survived("trickle acker", &report, bound(&config, 0, 2));
    let stats = ended.expect("closed as too lossy");
    println!("trickle acker: closed after {sent} bytes sent to it; {stats:?}");
    // Past the budget (the counters are the ones it closed with), by at most what one ACK
    // or timer declares lost: a window's worth.
    let budget = u64::from(ratio) * stats.bytes_acked + (64 << 10);
    assert!(stats.bytes_retransmitted > budget, "{stats:?}");
    assert!(
        stats.bytes_retransmitted <= budget + stats.congestion_window.max(64 << 10),
        "{stats:?}"
    );
    // Without the bound it goes on for the whole minute, resending what the peer ignores.
    let (_, unbounded, sent_unbounded) = trickle_acker(None);
    assert!(unbounded.is_none());
    println!("trickle acker without the bound: {sent_unbounded} bytes sent in 60 s");
    assert!(sent_unbounded > 2 * sent, "{sent_unbounded} vs {sent}");
}

#[test]
fn streams_opened_and_left_empty_hold_nothing_and_one_more_is_a_violation() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(2), 7);
    let limit = config.max_concurrent_streams;
    let mut step = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            peer.poll(sim, server);
            if step == 0 {
                peer.hello(sim, server);
                step = 1;
            } else if step == 1 && peer.server_cid.is_some() {
                // Opening the last allowed stream opens every one below it: 128 streams, each
                // announcing a total length, none carrying a byte.
                let open = StreamFrame {
                    id: StreamId::new(Side::Client, limit - 1),
                    offset: 0,
                    data: Bytes::new(),
                    fin: false,
                    total_len: Some(1 << 30),
                    label: None,
                    digest: None,
                };
                peer.send(sim, server, &[Frame::Stream(open)]);
                step = 2;
            } else if (2..40).contains(&step) {
                step += 1;
            } else if step == 40 {
                // Two seconds later: one stream beyond the limit.
                let beyond = StreamFrame {
                    id: StreamId::new(Side::Client, limit),
                    offset: 0,
                    data: Bytes::from_static(b"x"),
                    fin: false,
                    total_len: None,
                    label: None,
                    digest: None,
                };
                peer.send(sim, server, &[Frame::Stream(beyond)]);
                step = 41;
            }
            step < 41
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("empty streams", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::StreamLimit);
}

#[test]
fn a_four_gib_message_sent_a_byte_a_second_holds_nothing_extra() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(3), 9);
    let mut sent = 0u64;
    let report = arena.run(
        Duration::from_secs(120),
        Duration::from_secs(1),
        |sim, _| {
            peer.poll(sim, server);
            if peer.greet(sim, server) {
                return true;
            }
            let frame = on_stream_0(sent, b".", (sent == 0).then_some(4 << 30));
            if peer.send(sim, server, &[Frame::Stream(frame)]) {
                sent += 1;
            }
            sent < 60
        },
        ignore,
    );
    assert_survived("4 GiB at a byte a second", &report, bound(&config, 0, 2));
    assert_eq!(sent, 60);
    // Still connected (slow is not a violation), holding what it was sent and read: nothing.
    assert!(report.closed.is_empty(), "{:?}", report.closed);
    assert_eq!(peer.closed, None);
    let load = arena.sim.endpoint_ref(server).load();
    assert_eq!(load.bytes_received_unread, 0);
}

#[test]
fn tiny_pieces_with_gaps_pin_no_datagrams_and_pass_the_stream_budget() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(4), 11);
    // Every other byte, one per 1,200-byte datagram, so each held slice would keep its whole
    // datagram alive: byte 1, 3, 5, ... of one stream, byte 0 never sent.
    let mut sent = 0u64;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            peer.poll(sim, server);
            if peer.greet(sim, server) {
                return true;
            }
            for _ in 0..200 {
                let frame = on_stream_0(2 * sent + 1, b".", None);
                if !peer.send_padded(sim, server, &[Frame::Stream(frame)], 1200) {
                    break;
                }
                sent += 1;
            }
            peer.closed.is_none() && sent < 100_000
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("tiny pieces with gaps", &report, bound(&config, 0, 2));
    // The stream's receive budget (twice its 256 KiB window, each one-byte piece charged
    // about 130 bytes) closed it, long before its window (131,072 such bytes) was used up;
    // what was sent counts a few ticks' datagrams in flight when the close came.
    assert_closed_for(&report, &peer, ViolationKind::ReceiveBudget);
    let most = 2 * config.stream_receive_window / 128;
    assert!(
        (most / 2..most + 1000).contains(&sent),
        "{sent} sent, at most {most} held"
    );
}

/// One tick of the gapped-pieces attack: up to 50 datagrams of forty one-byte frames each,
/// round robin over `streams` streams, at odd offsets, so every byte is a separate piece and
/// none is readable. Counts the frames sent in `sent`; whether to go on.
fn send_gapped_pieces(
    peer: &mut RawPeer,
    sim: &mut Sim,
    server: NodeId,
    streams: u64,
    sent: &mut u64,
) -> bool {
    peer.poll(sim, server);
    if peer.greet(sim, server) {
        return true;
    }
    for _ in 0..50 {
        let frames: Vec<Frame> = (*sent..*sent + 40)
            .map(|i| {
                let mut f = on_stream_0(2 * (i / streams) + 1, b".", None);
                f.id = StreamId::new(Side::Client, i % streams);
                Frame::Stream(f)
            })
            .collect();
        if !peer.send(sim, server, &frames) {
            break;
        }
        *sent += 40;
    }
    peer.closed.is_none() && *sent < 2_000_000
}

#[test]
fn one_byte_pieces_with_gaps_on_every_stream_pin_at_most_the_receive_budget() {
    // Default windows: the connection's grows to 32 MiB, so a cap on pieces derived from the
    // largest window (what it was) let this attack pin about 25 MiB.
    let mut arena = Arena::new(Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    });
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(6), 15);
    let streams = config.max_concurrent_streams;
    let mut sent = 0u64;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| send_gapped_pieces(&mut peer, sim, server, streams, &mut sent),
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    // The legitimate client's connection as elsewhere (it reads all it gets), and the
    // attacker's at most its receive budget: twice the window it was given, 2 KiB for each
    // stream it may open, and 4 KiB.
    let budget = 2 * config.receive_window + streams * 2 * KIB + 4 * KIB;
    let legit = BASE + 2 * PER_CONNECTION + 2 * server_config().max_receive_window;
    assert_survived("one-byte pieces on every stream", &report, legit + budget);
    assert_closed_for(&report, &peer, ViolationKind::ReceiveBudget);
    assert!(
        budget <= 2 * MIB + 260 * KIB,
        "the default budget is {budget} bytes"
    );
}

#[test]
fn gapped_pieces_from_many_connections_pin_at_most_the_endpoint_budget() {
    let total = 6 * MIB;
    let mut arena = Arena::new(Config {
        receive_buffer_total: total,
        max_connections: 10,
        ..server_config()
    });
    let server = arena.server;
    let mut peers: Vec<(RawPeer, u64)> = (0..8)
        .map(|i| {
            (
                RawPeer::new(&mut arena.sim, outsider(20 + i), 100 + u64::from(i)),
                0,
            )
        })
        .collect();
    // Fewer streams than a squeezed connection allows (one per 8 KiB of its window).
    let streams = 8;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            let mut any = false;
            for (peer, sent) in peers.iter_mut() {
                any |= send_gapped_pieces(peer, sim, server, streams, sent);
            }
            any
        },
        ignore,
    );
    // Eight attackers and the legitimate client share the endpoint's budget: together they
    // never hold more, and each attacker is closed for passing its own.
    assert!(report.peak.receive_budgets <= total, "{:?}", report.peak);
    assert_survived(
        "gapped pieces from eight connections",
        &report,
        BASE + 9 * PER_CONNECTION + total,
    );
    assert_eq!(violations(&report.closed), vec![ViolationKind::ReceiveBudget; 8]);
}

#[test]
fn a_message_longer_than_allowed_is_refused_at_both_ends() {
    let limit = 16 * MIB;
    let mut arena = Arena::new(Config {
        max_message_len: Some(limit),
        ..server_config()
    });
    let config = arena.config();
    let (client, server) = (arena.client, arena.server);
    let mut peer = RawPeer::new(&mut arena.sim, outsider(5), 13);
    let mut step = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            peer.poll(sim, server);
            if step == 0 {
                peer.hello(sim, server);
                step = 1;
            } else if step == 1 {
                let frame = on_stream_0(0, b"x", Some(limit + 1));
                if peer.send(sim, server, &[Frame::Stream(frame)]) {
                    step = 2;
                }
            }
            step < 2
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("message too long", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::FinalSize);
    // A weir sender learned the limit in the handshake: refused before a byte goes out.
    let ep = arena.sim.endpoint(client);
    let conn = ep.connections().next().expect("the legitimate connection");
    let header = StreamHeader::default().with_total_len(limit + 1);
    assert_eq!(ep.open_stream(conn, header), Err(ApiError::MessageTooLong));
    let header = StreamHeader::default().with_total_len(limit);
    assert!(ep.open_stream(conn, header).is_ok());
}

#[test]
fn receive_budgets_add_up_to_the_endpoint_budget_and_leave_room_for_every_connection() {
    let budget = 4 * MIB;
    let mut arena = Arena::new(Config {
        receive_buffer_total: budget,
        max_connections: 8,
        ..server_config()
    });
    let server = arena.server;
    // Six more weir clients, once the legitimate transfer is under way.
    let others: Vec<NodeId> = (0..6)
        .map(|_| {
            let n = arena.sim.add_node(peer_config());
            arena.sim.link(n, server, LinkConfig::default());
            n
        })
        .collect();
    let failed = std::cell::RefCell::new(Vec::new());
    let mut started = false;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(100),
        |sim, now| {
            if !started && now >= Instant::from_micros(200_000) {
                for &n in &others {
                    sim.connect(n, server);
                }
                started = true;
            }
            now < Instant::from_micros(2_000_000)
        },
        |_, node, event| {
            if let Event::HandshakeFailed { reason, .. } = event {
                failed.borrow_mut().push((node, reason));
            }
        },
    );
    let failed = failed.into_inner();
    let load = arena.sim.endpoint_ref(server).load();
    println!("receive budget: {load:?}, failed {failed:?}");
    // The connections' budgets never added up past the endpoint's, whatever they wanted...
    assert!(report.peak.receive_budgets <= budget, "{:?}", report.peak);
    // ... so the heap stays under the budget, not a window per connection.
    assert_survived("receive budget", &report, BASE + 8 * PER_CONNECTION + budget);
    // The legitimate connection took 1 MiB and grew; the later ones got what was left, but
    // never less than the floor kept for each of the eight connections allowed.
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(load.connections, 7);
    assert!(load.receive_budgets > 3 * MIB, "{load:?}");
}

#[test]
fn a_peer_that_never_reads_stalls_only_its_own_connection() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    arena.serve = 64 * MIB;
    // A weir client that connects and then never reads what it is sent.
    let idler = arena.sim.add_node(peer_config());
    let server = arena.server;
    arena.sim.link(idler, server, LinkConfig::default());
    let mut connected = false;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(100),
        |sim, now| {
            if !connected && now >= Instant::from_micros(100_000) {
                sim.connect(idler, server);
                connected = true;
            }
            now < Instant::from_micros(20_000_000)
        },
        ignore,
    );
    assert_survived("never reads", &report, bound(&config, 0, 2));
    // The server's application wrote what its send buffer took and no more; the idle
    // reader holds no more than the window it granted.
    assert!(report.peak.bytes_unacknowledged <= config.send_buffer);
    let idle = arena.sim.endpoint_ref(idler);
    let conn = idle.connections().next().expect("the idle reader's connection");
    let (unread, _) = idle.buffered(conn).unwrap();
    assert!(
        unread > 0 && unread <= Config::default().max_receive_window,
        "{unread}"
    );
}

// ------------------------------------------------------------------ work per datagram

/// What one `handle_datagram` call cost: allocations made, and heap bytes still held after.
fn cost_of(sim: &mut Sim, server: NodeId, from: SocketAddr, datagram: Bytes) -> (u64, i64) {
    let now = sim.now();
    let (made, held) = (allocations(), live());
    sim.endpoint(server).handle_datagram(now, from, datagram.into());
    (allocations() - made, live() - held)
}

#[test]
fn the_costliest_datagrams_cost_work_bounded_by_the_frames_they_carry() {
    let mut arena = Arena::new(server_config());
    arena.serve = 4 * MIB;
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(1), 100);
    let mut all = Vec::new();
    let report = arena.run(
        Duration::from_secs(30),
        Duration::from_millis(20),
        |sim, _| {
            peer.greet(sim, server);
            peer.poll(sim, server);
            // An honest receiver, so the server keeps sending.
            for pn in std::mem::take(&mut peer.received) {
                all.push(pn);
                let ack = Ack {
                    ranges: AckRanges::single(pn, pn).unwrap(),
                    ack_delay: 0,
                    one_way_delay: 0,
                };
                peer.send(sim, server, &[Frame::Ack(ack)]);
            }
            all.len() < 400
        },
        ignore,
    );
    assert!(report.done.is_some() && peer.closed.is_none());
    let sim = &mut arena.sim;
    // 1. An ACK of 64 ranges (the most a frame carries): every other packet received.
    all.sort_unstable();
    all.dedup();
    let mut picked: Vec<u64> = Vec::new();
    for &pn in all.iter().rev() {
        if picked.last().is_none_or(|&p| p > pn + 1) && picked.len() < 64 {
            picked.push(pn);
        }
    }
    let ranges = AckRanges::new(picked.iter().map(|&pn| AckRange {
        smallest: pn,
        largest: pn,
    }))
    .unwrap();
    let ack = peer
        .packet(
            &[Frame::Ack(Ack {
                ranges,
                ack_delay: 0,
                one_way_delay: 0,
            })],
            0,
        )
        .unwrap();
    // 2. A one-byte STREAM frame past a gap on each of 100 new streams (each opens a stream
    // and holds a piece).
    let opening: Vec<Frame> = (0..100)
        .map(|i| {
            let mut f = on_stream_0(1, b"x", None);
            f.id = StreamId::new(Side::Client, i);
            Frame::Stream(f)
        })
        .collect();
    let opening = peer.packet(&opening, 0).unwrap();
    // 3. As many one-byte pieces with gaps between them as fit, on one stream.
    let pieces: Vec<Frame> = (0..130)
        .map(|i| Frame::Stream(on_stream_0(1000 + 2 * i, b"y", None)))
        .collect();
    let pieces = peer.packet(&pieces, 0).unwrap();
    let mut rows = Vec::new();
    for (name, frames, datagram) in [
        ("ACK of 64 ranges", 1, ack),
        ("100 streams opened", 100, opening),
        ("130 gapped pieces", 130, pieces),
    ] {
        let len = datagram.len();
        let (allocations, held) = cost_of(sim, server, peer.addr, datagram);
        println!(
            "work per datagram: {name} ({len} bytes): {allocations} allocations, {held} bytes held after"
        );
        rows.push((name, frames, allocations));
        // A handful of allocations per frame, whatever the frames are; what stays is the
        // state of the streams opened (about 1.8 KiB each, at most 128 per connection).
        assert!(allocations <= 8 + 4 * frames, "{name}: {allocations}");
        assert!(held <= 2048 * frames as i64, "{name}: {held}");
    }
    assert!(
        sim.endpoint_ref(server).load().connections == 2,
        "no connection closed: {rows:?}"
    );
}

#[test]
fn send_buffers_add_up_to_the_endpoint_budget_and_a_reader_is_never_starved() {
    let budget = 2 * MIB;
    let mut arena = Arena::new(Config {
        send_buffer_total: budget,
        ..server_config()
    });
    let config = arena.config();
    // The server's application writes 8 MiB to each of three weir clients that never read
    // and to one that reads all it gets.
    arena.serve = 8 * MIB;
    let server = arena.server;
    let idlers: Vec<NodeId> = (0..3).map(|_| arena.sim.add_node(peer_config())).collect();
    let reader = arena.sim.add_node(peer_config());
    for &n in idlers.iter().chain([&reader]) {
        arena.sim.link(n, server, LinkConfig::default());
    }
    let mut started = false;
    let read = std::cell::Cell::new(0u64);
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(100),
        |sim, now| {
            if !started && now >= Instant::from_micros(100_000) {
                for &n in idlers.iter().chain([&reader]) {
                    sim.connect(n, server);
                }
                started = true;
            }
            read.get() < 8 * MIB
        },
        |sim, node, event| {
            if let (true, Event::StreamReadable { conn, stream }) = (node == reader, event) {
                while let Ok(Read::Data { bytes, .. }) = sim.endpoint(reader).read(conn, stream, usize::MAX) {
                    read.set(read.get() + bytes.len() as u64);
                }
            }
        },
    );
    let read = read.get();
    assert_survived("send budget", &report, bound(&config, 0, 5));
    let floors = 5 * 64 * KIB;
    println!(
        "send budget: {} bytes unacknowledged at peak; the reader read {read}",
        report.peak.bytes_unacknowledged
    );
    assert!(
        report.peak.bytes_unacknowledged <= budget + floors,
        "{:?}",
        report.peak
    );
    // The idlers hold the budget; the reader still got everything, on its floor and the
    // room its own acknowledgements free.
    assert_eq!(read, 8 * MIB);
}

// ------------------------------------------------------------------ replay and corruption

#[test]
fn replayed_datagrams_are_dropped_as_duplicates_from_any_address() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let (client, server) = (arena.client, arena.server);
    // With loss, some replays carry packets the server never got: new to it, but older
    // than what it has since received.
    arena.sim.link(
        client,
        server,
        LinkConfig {
            loss: 0.02,
            ..LinkConfig::default()
        },
    );
    arena.sim.tap(client, server);
    let client_addr = arena.sim.addr(client);
    let mut replayed = 0u64;
    let mut held = Vec::new();
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(20),
        |sim, now| {
            // Everything the client sent, sent again 20 to 40 ms later (after the original
            // arrived), from the attacker's address and from the client's own.
            for (i, d) in std::mem::take(&mut held).into_iter().enumerate() {
                let from = if i % 2 == 0 { outsider(4) } else { client_addr };
                sim.inject(from, server, d);
                replayed += 1;
            }
            held = sim.take_tapped(client, server);
            now < Instant::from_micros(3_000_000)
        },
        ignore,
    );
    assert_survived("replay", &report, bound(&config, 0, 1));
    assert!(replayed > 1000);
    let server_ep = arena.sim.endpoint_ref(server);
    let conn = server_ep.connections().next().expect("the legitimate connection");
    let stats = server_ep.connection_stats(conn).unwrap();
    // Every replay is a duplicate, but for replays of originals the link lost (new to the
    // server, and accepted: they authenticate), at most one per datagram lost.
    let lost = arena.sim.stats().lost;
    assert!(
        stats.duplicates_received + lost + 64 >= replayed,
        "{} of {replayed}, {lost} lost",
        stats.duplicates_received
    );
    // Replays from elsewhere did not take the connection away: it ends at the client's
    // address, and the attacker's address got next to nothing. (A replay of the newest
    // packet the server had, its original lost, moves the path until the client's next
    // packet, spec §10.4; the highest-number rule itself is what
    // `an_older_packet_replayed_from_elsewhere_does_not_move_the_connection` checks.)
    assert_eq!(server_ep.remote_address(conn), Some(client_addr));
    let (to_attacker, _) = arena.sim.sent_outside(outsider(4));
    assert!(
        to_attacker * 100 < replayed,
        "{to_attacker} datagrams went to the replayer"
    );
}

#[test]
fn flipped_bits_are_dropped_and_the_transfer_goes_on() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let (client, server) = (arena.client, arena.server);
    // The path itself flips a bit in 5% of datagrams, both ways...
    let flaky = LinkConfig {
        corrupt: 0.05,
        ..LinkConfig::default()
    };
    arena.sim.link(client, server, flaky);
    arena.sim.tap(client, server);
    let client_addr = arena.sim.addr(client);
    let mut flipped = 0u64;
    let mut bit = 0usize;
    let report = arena.run(
        Duration::from_secs(120),
        Duration::from_millis(20),
        |sim, now| {
            // ...and an attacker sends copies of the client's datagrams with one bit
            // flipped, from the client's address, ahead of the originals.
            for d in sim.take_tapped(client, server) {
                let mut v = d.to_vec();
                bit = (bit + 7919) % (v.len() * 8);
                v[bit / 8] ^= 1 << (bit % 8);
                sim.inject(client_addr, server, v.into());
                flipped += 1;
            }
            now < Instant::from_micros(10_000_000)
        },
        ignore,
    );
    assert_survived("flipped bits", &report, bound(&config, 0, 1));
    assert!(flipped > 1000);
    assert!(report.stats.dropped_malformed >= flipped, "{report:?}");
    assert!(report.closed.is_empty(), "{:?}", report.closed);
}

#[test]
fn each_lie_closes_its_connection_with_its_own_typed_violation() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    // One liar per address, so no ban stops the third.
    let mut peers: Vec<RawPeer> = (1..=3)
        .map(|i| RawPeer::new(&mut arena.sim, outsider(i), 100 + u64::from(i)))
        .collect();
    let mut lied = [false; 3];
    let window = config.stream_receive_window;
    let report = arena.run(
        Duration::from_secs(30),
        Duration::from_millis(20),
        |sim, _| {
            for (i, peer) in peers.iter_mut().enumerate() {
                peer.greet(sim, server);
                peer.poll(sim, server);
                if lied[i] || peer.server_cid.is_none() {
                    continue;
                }
                lied[i] = true;
                match i {
                    // A byte at the first offset past the stream's credit.
                    0 => {
                        peer.send(sim, server, &[Frame::Stream(on_stream_0(window, b"!", None))]);
                    }
                    // Data on a stream only the server may send on.
                    1 => {
                        let mut frame = on_stream_0(0, b"mine", None);
                        frame.id = StreamId::new(Side::Server, 0);
                        peer.send(sim, server, &[Frame::Stream(frame)]);
                    }
                    // A frame type that does not exist, in a datagram whose trailer checks.
                    _ => {
                        let packet = peer.packet(&[Frame::Ping], 0).unwrap();
                        let mut bytes = packet.to_vec();
                        let ping_at = bytes.len() - 1 - weir_core::wire::TRAILER_LEN;
                        bytes[ping_at] = 0x3f;
                        assert!(weir_core::wire::reseal(&mut bytes, None));
                        sim.inject(peer.addr, server, Bytes::from(bytes));
                    }
                }
            }
            lied.iter().any(|l| !l) || peers.iter().any(|p| p.closed.is_none())
        },
        ignore,
    );
    assert_survived("three lies", &report, bound(&config, 0, 4));
    let seen = violations(&report.closed);
    assert_eq!(seen.len(), 3, "{seen:?}");
    let malformed = seen.iter().find_map(|v| match v {
        ViolationKind::Malformed { error, code } => Some((*error, *code)),
        _ => None,
    });
    println!("three lies: {seen:?}");
    for (peer, kind) in peers
        .iter()
        .zip([ViolationKind::PastCredit, ViolationKind::WrongStreamDirection])
    {
        assert!(seen.contains(&kind), "{seen:?}");
        assert_eq!(peer.closed, Some(CloseCode::Transport(kind.code())));
    }
    let (error, code) = malformed.expect("the malformed datagram closed its connection");
    assert_eq!(code, TransportErrorCode::FRAME_ENCODING_ERROR, "{error}");
    assert_eq!(peers[2].closed, Some(CloseCode::Transport(code)));
}

#[test]
fn a_peer_that_rewrites_bytes_it_sent_is_closed() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(5), 11);
    let mut step = 0;
    let frame = |offset, data: &'static [u8]| {
        Frame::Stream(StreamFrame {
            id: StreamId::new(Side::Client, 0),
            offset,
            data: Bytes::from_static(data),
            fin: false,
            total_len: None,
            label: None,
            digest: None,
        })
    };
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            peer.poll(sim, server);
            match step {
                0 => peer.hello(sim, server),
                // Bytes past a gap (held, not yet readable), then other bytes at the same offsets.
                _ if peer.server_cid.is_none() => return true,
                1 => {
                    peer.send(sim, server, &[frame(100, b"honest")]);
                }
                2 => {
                    peer.send(sim, server, &[frame(98, b"--HONEST")]);
                }
                _ => return false,
            }
            step += 1;
            true
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("rewritten bytes", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::RewrittenBytes);
}

#[test]
fn a_new_address_gets_three_times_what_it_sent_until_it_acknowledges() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    // A second client the server sends 8 MiB to; it reads everything.
    arena.serve = 8 * MIB;
    let reader = arena.sim.add_node(peer_config());
    arena.sim.link(reader, server, LinkConfig::default());
    arena.sim.tap(reader, server);
    let thief = outsider(6);
    let mut injected = 0u64;
    let mut stage = 0;
    let report = arena.run(
        Duration::from_secs(60),
        // Ticks shorter than the link's delay: the copy overtakes its original.
        Duration::from_millis(5),
        |sim, now| {
            match stage {
                0 => {
                    sim.connect(reader, server);
                    stage = 1;
                }
                // Mid-transfer, the reader's newest datagram, copied from the path, is
                // sent from elsewhere while the reader's path is cut for half a second: the
                // server's newest packet from that connection comes from a new address.
                1 if now >= Instant::from_micros(100_000) => {
                    if let Some(newest) = sim.take_tapped(reader, server).pop() {
                        sim.partition(reader, server, now, now + Duration::from_millis(500));
                        injected += newest.len() as u64;
                        sim.inject(thief, server, newest);
                        stage = 2;
                    }
                }
                _ => {
                    sim.take_tapped(reader, server);
                }
            }
            now < Instant::from_micros(1_500_000)
        },
        |sim, node, event| {
            if let Event::StreamReadable { conn, stream } = event {
                while let Ok(weir_core::Read::Data { .. }) = sim.endpoint(node).read(conn, stream, usize::MAX)
                {
                }
            }
        },
    );
    assert_survived("path theft", &report, bound(&config, 0, 2));
    let (_, sent) = arena.sim.sent_outside(thief);
    assert!(
        sent > 0,
        "the connection never followed the copy (stage {stage}, injected {injected})"
    );
    assert!(
        sent <= 3 * injected,
        "{sent} bytes went to an address that sent {injected}"
    );
}

#[test]
fn an_older_packet_replayed_from_elsewhere_does_not_move_the_connection() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let (client, server) = (arena.client, arena.server);
    // The client's 200th datagram to the server is lost on the way, but an eavesdropper
    // kept a copy; it sends it from elsewhere once newer packets have arrived.
    arena.sim.drop_nth(client, server, 200);
    arena.sim.tap(client, server);
    let replayer = outsider(7);
    let mut seen = 0usize;
    let mut copy = None;
    let mut sent_at = None;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, now| {
            let tapped = sim.take_tapped(client, server);
            if seen < 200 && seen + tapped.len() >= 200 {
                copy = Some(tapped[199 - seen].clone());
                sent_at = Some(now);
            }
            seen += tapped.len();
            match (copy.take(), sent_at) {
                (Some(d), Some(at)) if now >= at + Duration::from_millis(50) => {
                    sim.inject(replayer, server, d);
                    false
                }
                (d, _) => {
                    copy = d;
                    true
                }
            }
        },
        ignore,
    );
    assert_survived("older packet from elsewhere", &report, bound(&config, 0, 1));
    assert!(seen >= 200 && copy.is_none(), "the copy was never replayed");
    // New to the server (its original was lost), but older than what it has: it is used,
    // and the connection stays where it was.
    assert_eq!(arena.sim.sent_outside(replayer), (0, 0));
}
