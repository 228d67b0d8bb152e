//! Hostile peers (spec/protocol.md §10) in weir-sim. Each attack runs against a server while
//! a legitimate client sends it 10 MiB on the same endpoint; each test asserts that the
//! transfer completes, that the server's heap (counted by a counting allocator, per thread,
//! around every call into the server: `Sim::meter`) stays under a bound computed from its
//! configuration, and what the attack itself must not achieve.
//!
//! The peaks each attack reached are printed (`cargo test -p weir-sim --test suites hostile:: --
//! --nocapture`); tests/README.md's attack table quotes them, and each test checks that it
//! still does (the figures are deterministic: a change that moves one updates the table).

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Ack, AckRange, AckRanges, CloseCode, Side, StreamFrame, StreamId, TransportErrorCode};
use weir_core::wire::{
    Capabilities, ConnectionId, DecodeError, Frame, Header, Hello, Packet, PacketKind, PacketNumberLen,
    PacketWriter, ReceiptRun, TransportParams, VersionRange,
};
use weir_core::{
    AddressValidation, ApiError, CloseReason, Config, ConnectionHandle, ConnectionStats, EndpointLoad,
    EndpointStats, Event, Priority, Read, StreamHeader, ViolationKind,
};
use weir_sim::{LinkConfig, NodeId, Sim};

use crate::common;
use crate::counting;
mod floods;
mod liars;
mod pinning;
mod replay;
mod silent;
mod work;
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
/// may be one; `tests/crypto/` tests that).
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

/// tests/README.md, whose attack table shows each attack's heap peak and bound.
const README: &str = include_str!("../../README.md");

/// `n` with a comma between each group of three digits, as the table writes figures.
fn with_commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Checks what every attack must leave intact, prints the peaks, and checks that
/// tests/README.md's attack table shows them.
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
    let entry = format!(
        "{name}: {} KiB ({} KiB)",
        with_commas(report.peak_heap.max(0) as u64 / 1024),
        with_commas(bound / 1024)
    );
    // In the heap column of a row of the table, alone or one of several separated by "; ":
    // the test's own entry, not the same figures in another row.
    let shown = README.lines().filter(|l| l.starts_with('|')).any(|row| {
        row.split('|')
            .nth(3)
            .is_some_and(|heap| heap.split(';').any(|e| e.trim() == entry))
    });
    assert!(
        shown,
        "{name}: tests/README.md's attack table does not show its heap peak and bound, `{entry}`: update its row"
    );
}

#[test]
fn figures_are_written_as_the_table_writes_them() {
    assert_eq!(with_commas(0), "0");
    assert_eq!(with_commas(999), "999");
    assert_eq!(with_commas(3600), "3,600");
    assert_eq!(with_commas(44880), "44,880");
    assert_eq!(with_commas(1234567), "1,234,567");
}

/// An address on the attacker's side of the network (not a node's).
fn outsider(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0xac10_0000u32 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 1000 + (i % 50_000) as u16))
}

/// A HELLO as a client would send it, from connection id `scid`, padded to 1200 bytes.
fn hello(scid: u64, token: Bytes) -> Bytes {
    let hello = Frame::Hello(Box::new(Hello {
        versions: VersionRange::V1,
        capabilities: Capabilities::ALL,
        token,
        params: TransportParams::default(),
    }));
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
    /// The highest stream limit the server's MAX_STREAMS gave, if one came.
    max_streams: Option<u64>,
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
            max_streams: None,
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
                    Frame::MaxStreams(n) => self.max_streams = self.max_streams.max(Some(n)),
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
