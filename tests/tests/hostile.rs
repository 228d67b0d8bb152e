//! Hostile peers (spec/protocol.md §10) in weir-sim. Each attack runs against a server while
//! a legitimate client sends it 10 MiB on the same endpoint; each test asserts that the
//! transfer completes, that the server's heap (counted by a counting allocator, per thread,
//! around every call into the server: `Sim::meter`) stays under a bound computed from its
//! configuration, and what the attack itself must not achieve.
//!
//! The peaks each attack reached are printed (`cargo test -p weir-sim --test hostile --
//! --nocapture`); README.md's attack table quotes them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::wire::{
    Capabilities, ConnectionId, Frame, Header, Hello, PacketKind, PacketNumberLen, PacketWriter,
    TransportParams, VersionRange,
};
use weir_core::{AddressValidation, Config, EndpointLoad, EndpointStats, Event, Priority};
use weir_sim::{LinkConfig, NodeId, Sim};

mod common;
use common::Traffic;

// ------------------------------------------------------------------ heap counting

struct Counting;

thread_local! {
    /// Bytes this thread allocated and has not freed (frees of another thread's blocks
    /// count here too; the simulator runs on one thread).
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    // `try_with`: the allocator runs during thread teardown too, after the slot is gone.
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count(new as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> i64 {
    LIVE.with(Cell::get)
}

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

/// The server's configuration: defaults, with smaller windows so the bound is tight.
fn server_config() -> Config {
    Config {
        stream_receive_window: 256 * KIB,
        max_stream_receive_window: MIB,
        receive_window: MIB,
        max_receive_window: 2 * MIB,
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
}

struct Arena {
    sim: Sim,
    server: NodeId,
    client: NodeId,
    traffic: Traffic,
}

impl Arena {
    fn new(config: Config) -> Self {
        let mut sim = Sim::new(8);
        let client = sim.add_node(Config::default());
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
        let (server, client) = (self.server, self.client);
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
                    if done.is_none() && traffic.borrow().delivered_by(0) >= TRANSFER {
                        done = Some(sim.now());
                    }
                    done.is_some() && settling
                },
            );
            report.peak = peak;
            report.done = done;
            if over {
                break;
            }
        }
        report.peak_heap = self.sim.metered().peak;
        report.stats = self.sim.endpoint_ref(self.server).stats();
        report
    }
}

/// Checks what every attack must leave intact, and prints the peaks for README.md.
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
    let header = Header {
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
    w.push(&Frame::Hello(Hello {
        versions: VersionRange::V1,
        capabilities: Capabilities::ALL_V1,
        token,
        params: TransportParams::default(),
    }))
    .unwrap();
    w.pad_to(1200).unwrap();
    let len = w.finish().unwrap();
    buf.truncate(len);
    buf.freeze()
}

fn ignore(_: &mut Sim, _: NodeId, _: Event) {}

// ------------------------------------------------------------------ floods

#[test]
fn a_hundred_thousand_spoofed_hellos_get_retries_and_hold_no_state() {
    const SPOOFED: u32 = 100_000;
    const PER_TICK: u32 = 1_000;
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let datagram = hello(0x5eed, Bytes::new());
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
    assert_survived("spoofed HELLOs", &report, bound(&config, pending, 1));
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
