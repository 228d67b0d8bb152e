//! One endpoint with 10,000 connections (and, on demand, 100,000): every handshake
//! completes, a message crosses each, all go quiet for three seconds, and the core memory
//! the server holds per idle connection is counted by a counting allocator (per thread:
//! the test runs every endpoint on its own thread). What an event costs at these counts is measured by
//! `cargo bench -p weir-core --bench scale`.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::{AddressValidation, Config, Endpoint, Event, Read};

use crate::counting;
use counting::live;

/// Net bytes the server's calls allocated (calls into the client are not counted).
struct Meter(i64);

impl Meter {
    fn run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let before = live();
        let out = f();
        self.0 += live() - before;
        out
    }
}

/// Heap bytes the server may hold per idle connection: issue 35's 2 KiB.
const BOUND: i64 = 2048;

#[test]
fn ten_thousand_connections_on_one_endpoint() {
    let per_connection = connections_on_one_endpoint(10_000);
    // History (the figures before issue 35's fifth session were about 1 KB low, see below).
    // About 1.3 KB of it were the packet keys: two AES-256-GCM key schedules and GHASH
    // tables (send, receive) of the default cipher, until a trim let their expanded form go
    // while idle. Issue 31 added about 120 bytes (5,112 to
    // 5,233): the delivery-rate state every connection keeps for BBR, a statistics field and
    // loss detection's adaptive time threshold. Issue 33 added about 1 KB (5,234 to 6,219):
    // each side's OBSERVED_ADDRESS makes the server's first tracked packet, so its
    // sent-packet queue (four slots, kept for the next flight) and control queue are
    // allocated, as they were before for any connection that ever sent a PING or a byte;
    // the address report itself is 40 bytes. Relay circuits and hole punching added 79 more
    // (6,219 to 6,298: two boxed parts made on first use, the punch timer, three counters).
    // Issue 34 added about 130 more (6,298 to 6,430): five counters (the unreliable
    // datagrams', the path MTU), the path MTU search's state (32 bytes) and the pointer to
    // the datagram queues. Issue 35 took 1,831 off (6,430 to 4,599): each connection boxed
    // in the endpoint's slot table (1,591: the table held 2.5 KB a slot, and as a vector
    // grown by doubling, 16,384 slots for 10,000 connections), and the handshake's state
    // boxed so that a connection past its handshake holds none of it (240). BBR's estimate
    // of ACK aggregation added 63 (4,600 to 4,663: ten rounds' maxima and its epoch).
    // Then the sent-packet queue let go when empty (4,069). A connection quiet for a second
    // lets go of its packet keys' expanded form and its empty events queue's room (spec §8,
    // Liveness): 4,166 bytes just connected, 2,689 idle. The connection then stored only
    // the counters of its statistics (the rest is read from its parts when asked: 2,577),
    // its timer table without an `Option` per timer (2,513) and a server's handshake state
    // in one box (2,465; 3,942 just connected). Every figure so far was about 1 KB a
    // connection too low: the meter subtracted the client's datagram buffers, which the
    // server frees (`client_datagrams`). Counted right, 3,468 idle and 4,944 just connected.
    // The endpoint's events queue then let go of a burst's room once drained (341), a trim
    // let go of the control queue's room (128), and the packet keys' box shrank from 272
    // bytes to 160 (the next receive key derived when needed): 2,891.
    // Then the test sent a message on every connection, not one in a hundred, and let
    // the server's datagrams reach the client while idle (they were dropped, so the
    // connections that had a message kept resending and never went quiet): a used idle
    // connection held about 4,300 bytes (the spare stream box 936, the owed receipts' emptied
    // B-tree node 368, the inbox's lists). A trim now lets those go: 2,848.
    // Then `Option<Instant>` and `Option<Duration>` took 8 bytes, not 16 (each time type
    // holds its count plus one in a `NonZeroU64`: 2,763); a client's own congestion
    // controller choice was boxed and given up once built, fourteen rare-event counters
    // took 32 bits, and a client's NOISE_FINISH resend state was boxed (the connection
    // 1,920 bytes inline: 2,651).
    // The receipts' book and the streams' send queues then became boxes made on first use
    // and let go by a trim once empty (the connection 1,728 bytes inline: 2,459). A HELLO
    // is then known by a 16-byte digest of its address, client id and content, in the
    // endpoint's index and the connection, not by the three (2,384). Then narrower parts
    // of what every connection keeps: the peer's parameters cut to the limits still read
    // (80 to 48 bytes), the events and control queues and the stream table's spares and
    // send queues one pointer while empty, loss recovery's skipped numbers by their low 32
    // bits, a pacing bucket in 64 bits, BBR's optional fields without separate flags
    // (the connection 1,504 bytes inline: 2,152). Then a packet number or none in 8 bytes
    // (`MaybePn`: the largest acknowledged, a path's probe, the black-hole probe), the ACK
    // book's watched packets in a fixed array and its range limit in 16 bits, the
    // probe-timeout count in 8, a path's anti-amplification account in 32-bit counts, BBR's
    // lowest one-way delay without an `Option`, the blocked report folded into the send
    // credit's limit, and two copies of the configuration (the retransmission ratio, a
    // stream's largest window) read from it instead (the connection 1,408 bytes inline:
    // 2,048; 2,034 later). The endpoint's index of connection ids then became an
    // open-addressing table, 12 bytes a place and at most three-quarters full, where a
    // B-tree's nodes had held them a little more densely (2,040). The endpoint then kept
    // its list of the deadlines due between firings (4 KiB, b3643945) and the room of the
    // event queue it lends (448 bytes, 1e3cf375): 20,406,744 → 20,411,288 bytes in all,
    // 2,041 a connection.
    assert!(
        per_connection <= BOUND,
        "{per_connection} bytes per idle connection (aim: 2 KiB)"
    );
}

/// The same at 100,000 connections, in about a minute (release): `cargo test --release -p
/// weir-sim --test suites scale:: -- --ignored`. The bound is the 10,000 one's: memory per
/// connection does not grow with the count.
#[test]
#[ignore = "about a minute in release, far longer in debug: run on demand"]
fn a_hundred_thousand_connections_on_one_endpoint() {
    let per_connection = connections_on_one_endpoint(100_000);
    assert!(
        per_connection <= BOUND,
        "{per_connection} bytes per idle connection"
    );
}

/// Connects `n` clients to one server endpoint, sends a message on each (an idle connection
/// is one that was used: what using it left behind counts), and returns the heap bytes the
/// server holds per connection once all are idle.
fn connections_on_one_endpoint(n: usize) -> i64 {
    let client_addr: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    // Admission control is not what this test measures (tests/tests/hostile.rs does): all
    // clients come from one address, at once, and are let in without a RETRY round.
    let config = Config {
        max_connections: n,
        max_connections_per_address: n,
        // The receive budget is a bound, not an allocation: the default (2 GiB) admits
        // about 12,800 connections at the smallest window.
        receive_buffer_total: 1 << 40,
        max_handshakes_per_second: u32::MAX,
        address_validation: AddressValidation::Off,
        ..Config::default()
    };
    let mut client = Endpoint::new(config.clone(), 1);
    let mut meter = Meter(0);
    let mut server = meter.run(|| Endpoint::new(config, 2));
    let mut now = Instant::ZERO;
    for _ in 0..n {
        client.connect(now, server_addr).unwrap();
    }
    let mut buf = vec![0u8; 2048];
    let (mut connected, mut server_connected, mut got) = (0, 0, 0);
    let mut sent = false;
    // Datagrams cross instantly; time moves 1 ms a round. Bounded: 2,000 rounds.
    for _round in 0..2000 {
        for d in client_datagrams(&mut client, now, &mut buf) {
            meter.run(|| server.handle_datagram(now, client_addr, Bytes::copy_from_slice(&d).into()));
        }
        let mut to_client = Vec::new();
        // Copied outside the meter: the client frees these.
        while let Some(t) = meter.run(|| server.poll_transmit(now, &mut buf)) {
            to_client.push(Bytes::copy_from_slice(&buf[..t.len]));
        }
        for d in to_client {
            client.handle_datagram(now, server_addr, d.into());
        }
        while let Some(e) = client.poll_event() {
            if let Event::Connected { .. } = e {
                connected += 1;
            }
        }
        while let Some(e) = meter.run(|| server.poll_event()) {
            match e {
                Event::Connected { .. } => server_connected += 1,
                Event::StreamReadable { conn, stream } => {
                    // Read and dropped within the meter: what the message's bytes hold
                    // (the datagrams they are slices of) is freed where it was counted.
                    let len = meter.run(|| match server.read_message(conn, stream, 1 << 20) {
                        Ok(Read::Data { bytes, .. }) => Some(bytes.len()),
                        _ => None,
                    });
                    if let Some(len) = len {
                        assert_eq!(len, 3000);
                        got += 1;
                    }
                }
                Event::StreamOpened { .. } | Event::AddressObserved { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        if connected == n && !sent {
            sent = true;
            for i in 0..n as u32 {
                client
                    .send_message(handle(i), None, Bytes::from(vec![7u8; 3000]))
                    .unwrap();
            }
        }
        if server_connected == n && got == n {
            break;
        }
        now += Duration::from_millis(1);
        client.handle_timeout(now);
        meter.run(|| server.handle_timeout(now));
    }
    assert_eq!(connected, n);
    assert_eq!(server_connected, n);
    assert_eq!(got, n);
    // Idle now: three seconds pass (acknowledgements and receipts still crossing, both
    // ways), past the quiet second after which a connection lets go of what only an active
    // one uses (spec §8).
    let active = meter.0;
    for _ in 0..6 {
        now += Duration::from_millis(500);
        client.handle_timeout(now);
        meter.run(|| server.handle_timeout(now));
        for d in client_datagrams(&mut client, now, &mut buf) {
            meter.run(|| server.handle_datagram(now, client_addr, Bytes::copy_from_slice(&d).into()));
        }
        while let Some(t) = meter.run(|| server.poll_transmit(now, &mut buf)) {
            client.handle_datagram(now, server_addr, BytesMut::from(&buf[..t.len]));
        }
    }
    assert_eq!(server.connection_count(), n);
    println!(
        "server memory, just connected: {} bytes per connection",
        active / n as i64
    );
    let per_connection = meter.0 / n as i64;
    println!(
        "server memory: {} bytes in all, {per_connection} bytes per connection",
        meter.0
    );
    per_connection
}

/// What the client sends now. The server's copy of each is made within the meter, where
/// the server frees it: a buffer made outside the meter and freed inside would count
/// against the server (it did, until issue 35's fifth session: about 1 KB a connection).
fn client_datagrams(client: &mut Endpoint, now: Instant, buf: &mut [u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = client.poll_transmit(now, buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

/// The `i`-th handle the client gave out (handles are slots, given out in order).
fn handle(i: u32) -> weir_core::ConnectionHandle {
    weir_core::ConnectionHandle::from_index(i)
}
