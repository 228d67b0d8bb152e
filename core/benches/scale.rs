//! `cargo bench -p weir-core --bench scale`: what an event costs one endpoint holding many
//! connections, at 1,000, 10,000 and 100,000 (issue 35: the cost per event must not grow
//! with the count). A client endpoint and a server endpoint in one thread, datagrams handed
//! over in memory, every connection established first (default configuration, encrypted;
//! admission control off, since every client comes from one address at once):
//!
//! - `message/N`: a 64-byte message on one of the N connections (a different one each
//!   time, spread over all of them) sent, carried, read by the server, and what the server
//!   answers (its acknowledgement) carried back; virtual time moves 10 µs per message and
//!   every timer that comes due fires (keep-alives and acknowledgement delays included).
//! - `message-paced/N`: as `message/N`, but virtual time moves 100 ms / N per message (in
//!   whole microseconds: counts up to 100,000), so that each connection has one message
//!   every 100 ms at every count. In `message/N` a connection's messages come 10 µs x N
//!   apart: 10 ms at 1,000, within the client's acknowledgement delay (25 ms), so its
//!   acknowledgement of the server's receipt rides on the next message; 100 ms and more
//!   from 10,000 on, so it goes alone when the delay runs out, a third datagram. This
//!   variant keeps the traffic each connection sees the same, leaving what the count
//!   itself costs.
//! - `message-one/N`: the same on connection 0 every time: what the count costs the
//!   endpoint's own structures (indices, timer queue), without the cache misses of
//!   touching a different connection's state each time.
//! - `idle/N`: a millisecond of virtual time with no message, every timer that comes due
//!   firing: the background work N connections make (a hundredth of it is in `message/N`).
//! - `handshake/N`: one more connection's whole handshake (Noise XX), made and then closed,
//!   with N connections already held.
//!
//! After each message group, the datagrams per message (both ways) are printed: what the
//! group's time is spread over.
//!
//! Set-up takes a while at 100,000 (about a minute here); `WEIR_SCALE=1000,10000` picks the
//! counts. Figures in adapters/bench/README.md ("Many connections").

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use weir_core::time::{Duration, Instant};
use weir_core::{AddressValidation, Config, ConnectionHandle, Endpoint, Event, Read};

const CLIENT: &str = "10.0.0.1:4000";
const SERVER: &str = "10.0.0.2:4000";

struct World {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    buf: Vec<u8>,
    n: u32,
    next: u32,
    msg: Bytes,
    /// Datagrams carried either way, and messages sent, since the last `take_counts`.
    datagrams: u64,
    messages: u64,
}

impl World {
    fn new(n: usize) -> World {
        // Room beyond n for the handshake bench's connections, which close but are kept
        // while they drain.
        let config = Config {
            max_connections: n + 50_000,
            max_connections_per_address: n + 50_000,
            // The receive budget is a bound, not an allocation: the default (2 GiB) admits
            // about 12,800 connections at the smallest window.
            receive_buffer_total: 1 << 40,
            max_handshakes_per_second: u32::MAX,
            address_validation: AddressValidation::Off,
            ..Config::default()
        };
        let mut w = World {
            client: Endpoint::new(config.clone(), 1),
            server: Endpoint::new(config, 2),
            now: Instant::ZERO,
            buf: vec![0u8; 2048],
            n: n as u32,
            next: 0,
            msg: Bytes::from(vec![7u8; 64]),
            datagrams: 0,
            messages: 0,
        };
        let server: SocketAddr = SERVER.parse().unwrap();
        for _ in 0..n {
            w.client.connect(w.now, server).unwrap();
        }
        let mut connected = 0;
        for _ in 0..10_000 {
            connected += w.shuttle();
            if connected == 2 * n {
                break;
            }
            w.tick(Duration::from_millis(1));
        }
        assert_eq!(connected, 2 * n, "every handshake completes");
        w
    }

    /// Moves every datagram across both ways until both are quiet, reading the server's
    /// messages; how many `Connected` events came (both sides).
    fn shuttle(&mut self) -> usize {
        let (c, s): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        let mut connected = 0;
        loop {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
                let d = BytesMut::from(&self.buf[..t.len]);
                self.server.handle_datagram(self.now, c, d);
                self.datagrams += 1;
                moved = true;
            }
            while let Some(e) = self.server.poll_event() {
                match e {
                    Event::Connected { .. } => connected += 1,
                    Event::StreamReadable { conn, stream } => {
                        if let Ok(Read::Data { bytes, .. }) = self.server.read_message(conn, stream, 1 << 20)
                        {
                            assert_eq!(bytes.len(), self.msg.len());
                        }
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
                let d = BytesMut::from(&self.buf[..t.len]);
                self.client.handle_datagram(self.now, s, d);
                self.datagrams += 1;
                moved = true;
            }
            while let Some(e) = self.client.poll_event() {
                if let Event::Connected { .. } = e {
                    connected += 1;
                }
            }
            if !moved {
                return connected;
            }
        }
    }

    /// Virtual time moves by `by`; the timers that came due fire.
    fn tick(&mut self, by: Duration) {
        self.now += by;
        for ep in [&mut self.client, &mut self.server] {
            if ep.poll_timeout().is_some_and(|t| t <= self.now) {
                ep.handle_timeout(self.now);
            }
        }
    }

    /// One message on the next connection in a stride that visits every one (`spread`), or
    /// on connection 0; then virtual time moves by `step`.
    fn message(&mut self, spread: bool, step: Duration) {
        // A stride coprime with every count used: consecutive messages land far apart.
        if spread {
            self.next = (self.next + 7919) % self.n;
        }
        let conn = ConnectionHandle::from_index(self.next);
        self.client.send_message(conn, None, self.msg.clone()).unwrap();
        self.messages += 1;
        self.shuttle();
        self.tick(step);
    }

    /// Prints the datagrams per message since the last call, and starts counting again.
    fn report(&mut self, group: &str) {
        if self.messages > 0 {
            let per = self.datagrams as f64 / self.messages as f64;
            eprintln!(
                "{group}: {per:.2} datagrams a message ({} messages)",
                self.messages
            );
        }
        (self.datagrams, self.messages) = (0, 0);
    }

    /// One more connection's handshake, then its close, carried to the end.
    fn handshake(&mut self) {
        let conn = match self.client.connect(self.now, SERVER.parse().unwrap()) {
            Ok(conn) => conn,
            Err(e) => panic!("{e:?} with {:?}", self.client.load()),
        };
        assert_eq!(self.shuttle(), 2);
        self.client.close(self.now, conn, 0, Default::default()).unwrap();
        self.shuttle();
        self.tick(Duration::from_micros(10));
    }
}

fn counts() -> Vec<usize> {
    std::env::var("WEIR_SCALE")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(20);
    for n in counts() {
        let mut world = World::new(n);
        let step = Duration::from_micros(10);
        world.report("set-up");
        g.bench_with_input(BenchmarkId::new("message", n), &n, |b, _| {
            b.iter(|| world.message(true, step))
        });
        world.report(&format!("message/{n}"));
        let paced = Duration::from_micros(100_000 / n as u64);
        g.bench_with_input(BenchmarkId::new("message-paced", n), &n, |b, _| {
            b.iter(|| world.message(true, paced))
        });
        world.report(&format!("message-paced/{n}"));
        world.next = 0;
        g.bench_with_input(BenchmarkId::new("message-one", n), &n, |b, _| {
            b.iter(|| world.message(false, step))
        });
        world.report(&format!("message-one/{n}"));
        g.bench_with_input(BenchmarkId::new("idle", n), &n, |b, _| {
            b.iter(|| {
                world.tick(Duration::from_millis(1));
                world.shuttle()
            })
        });
        g.bench_with_input(BenchmarkId::new("handshake", n), &n, |b, _| {
            b.iter(|| world.handshake())
        });
    }
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
