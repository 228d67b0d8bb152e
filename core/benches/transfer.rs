//! `cargo bench -p weir-core --bench transfer`: two endpoints driven in one thread, no loss,
//! datagrams handed over in memory: one 64 MiB message from client to server, read by the
//! receiver as it arrives. Measures the core's goodput on one core, unprotected (wire
//! version 1) and sealed with each cipher (version 2): the difference is the crypto's cost
//! per byte. Figures in README.md.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Cipher, VersionRange};
use weir_core::{Config, Endpoint, Event, Read};

const SIZE: usize = 64 << 20;

struct Pair {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    buf: Vec<u8>,
}

const CLIENT: &str = "10.0.0.1:4000";
const SERVER: &str = "10.0.0.2:4000";

/// What the connection is sealed with: nothing (version 1), or a cipher (version 2).
#[derive(Clone, Copy)]
enum Protection {
    None,
    Sealed(Cipher),
}

impl Pair {
    fn new(protection: Protection) -> Self {
        let (versions, ciphers) = match protection {
            Protection::None => (VersionRange::UNPROTECTED, Vec::new()),
            Protection::Sealed(c) => (VersionRange::ENCRYPTED, vec![c]),
        };
        let config = Config {
            versions,
            ciphers,
            stream_receive_window: 16 << 20,
            receive_window: 32 << 20,
            // One 64 MiB message, held by reference.
            send_buffer: 128 << 20,
            congestion: weir_core::congestion::CongestionControl::NewReno,
            ..Config::default()
        };
        Pair {
            client: Endpoint::new(config.clone(), 1),
            server: Endpoint::new(config, 2),
            now: Instant::ZERO,
            buf: vec![0u8; 2048],
        }
    }

    /// Moves every pending datagram across, both ways, until both are quiet; returns the
    /// server's events.
    fn shuttle(&mut self, events: &mut Vec<Event>) {
        let (c, s) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        loop {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
                self.server
                    .handle_datagram(self.now, c, BytesMut::from(&self.buf[..t.len]));
                moved = true;
            }
            while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
                self.client
                    .handle_datagram(self.now, s, BytesMut::from(&self.buf[..t.len]));
                moved = true;
            }
            events.extend(std::iter::from_fn(|| self.server.poll_event()));
            if !moved {
                return;
            }
        }
    }

    fn connected(protection: Protection) -> Self {
        let mut p = Pair::new(protection);
        p.client.connect(p.now, SERVER.parse().unwrap()).unwrap();
        let mut ev = Vec::new();
        for _ in 0..10 {
            p.shuttle(&mut ev);
            p.now += Duration::from_millis(1);
            p.client.handle_timeout(p.now);
            p.server.handle_timeout(p.now);
        }
        while p.client.poll_event().is_some() {}
        p
    }
}

fn transfer(c: &mut Criterion) {
    let msg = Bytes::from(vec![0x42u8; SIZE]);
    let mut g = c.benchmark_group("transfer");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    for (name, protection) in [
        ("64MiB_one_thread_unprotected", Protection::None),
        (
            "64MiB_one_thread_chacha20poly1305",
            Protection::Sealed(Cipher::ChaCha20Poly1305),
        ),
        (
            "64MiB_one_thread_aes256gcm",
            Protection::Sealed(Cipher::Aes256Gcm),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Pair::connected(protection),
                |mut p| {
                    let conn = weir_core::ConnectionHandle::from_index(0);
                    p.client.send_message(conn, None, msg.clone()).unwrap();
                    let mut received = 0usize;
                    let mut events = Vec::new();
                    while received < SIZE {
                        p.shuttle(&mut events);
                        for e in events.drain(..) {
                            if let Event::StreamReadable { conn, stream } = e {
                                while let Ok(Read::Data { bytes, .. }) =
                                    p.server.read(conn, stream, usize::MAX)
                                {
                                    received += bytes.len();
                                }
                            }
                        }
                        // Let delayed ACKs and timers fire; time is virtual.
                        p.now += Duration::from_millis(1);
                        p.client.handle_timeout(p.now);
                        p.server.handle_timeout(p.now);
                    }
                    received
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, transfer);
criterion_main!(benches);
