//! The scale bench's world (`--bench scale`), shared with the `scale_count` example: a
//! client endpoint and a server endpoint in one thread, N connections established,
//! datagrams handed over in memory, virtual time moved by hand.

#![allow(dead_code)] // Each includer uses its part.

#[path = "prefetch.rs"]
mod prefetch;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::{AddressValidation, Config, ConnectionHandle, Endpoint, Event, Read};

const CLIENT: &str = "10.0.0.1:4000";
const SERVER: &str = "10.0.0.2:4000";

pub struct World {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    buf: Vec<u8>,
    n: u32,
    pub next: u32,
    msg: Bytes,
    /// Datagrams carried either way, and messages sent, since the last `take_counts`.
    datagrams: u64,
    messages: u64,
}

impl World {
    pub fn new(n: usize) -> World {
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
            prefetch: prefetch::hook(),
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
    pub fn shuttle(&mut self) -> usize {
        let (c, s): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        let mut connected = 0;
        loop {
            let mut moved = carry(&mut self.client, &mut self.server, c, self.now, &mut self.buf);
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
            moved += carry(&mut self.server, &mut self.client, s, self.now, &mut self.buf);
            while let Some(e) = self.client.poll_event() {
                if let Event::Connected { .. } = e {
                    connected += 1;
                }
            }
            if moved == 0 {
                return connected;
            }
            self.datagrams += moved;
        }
    }

    /// Virtual time moves by `by`; the timers that came due fire.
    pub fn tick(&mut self, by: Duration) {
        self.now += by;
        for ep in [&mut self.client, &mut self.server] {
            if ep.poll_timeout().is_some_and(|t| t <= self.now) {
                ep.handle_timeout(self.now);
            }
        }
    }

    /// Lets out, outside any measurement, what the last group left owed: acknowledgements
    /// of receipts, which wait up to 250 ms (spec §8, Acknowledgements, lazy packets), one
    /// per connection that had a message then. Left in, a group paid for its predecessor's:
    /// `message-one/100000` carried `message-paced`'s 100,000 (3.1 datagrams a message
    /// instead of 2.1, and twice the time). Virtual time moves 300 ms in 10 ms steps; the
    /// datagrams are not counted.
    pub fn settle(&mut self) {
        for _ in 0..30 {
            self.tick(Duration::from_millis(10));
            self.shuttle();
        }
        (self.datagrams, self.messages) = (0, 0);
    }

    /// One message on the next connection in a stride that visits every one (`spread`), or
    /// on connection 0; then virtual time moves by `step`.
    pub fn message(&mut self, spread: bool, step: Duration) {
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
    pub fn report(&mut self, group: &str) {
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
    pub fn handshake(&mut self) {
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

/// Hands every datagram `from` has to send to `to`, as coming from `addr`; how many.
fn carry(from: &mut Endpoint, to: &mut Endpoint, addr: SocketAddr, now: Instant, buf: &mut [u8]) -> u64 {
    let mut carried = 0;
    while let Some(t) = from.poll_transmit(now, buf) {
        to.handle_datagram(now, addr, BytesMut::from(&buf[..t.len]));
        carried += 1;
    }
    carried
}
