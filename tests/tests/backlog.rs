//! What a sender holds for messages its path has not let go yet (modules
//! `connection::unsent` and `connection::in_flight` in weir-core): counted by the counting
//! allocator, in memory and over simulated paths.

// Not every protection the harness offers is used here.
use crate::pair;

use std::cell::Cell;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::Cipher;
use weir_core::{ApiError, Config, Event, Read};
use weir_sim::{LinkConfig, Sim};

use crate::counting;
use counting::{live, peak, reset_peak};
use pair::{Pair, Protection};

/// A backlog of messages the path has not let go yet holds little beyond their bytes (which
/// are the application's, shared here): 4,000 messages of 1 KiB sent at once, with a stream
/// count that lets all of them open. The first 256 waiting (none in a fuzzing build, as the
/// workspace's tests run) get their stream's state (384 bytes) at once; the rest wait as
/// their bytes and header (48 bytes in a queue) until their first turn (issue 35's
/// thirty-third round): 84 bytes a message (57 in a fuzzing build). With a state each, the
/// backlog held 425 bytes a message.
#[test]
fn a_backlog_of_messages_waits_as_its_bytes() {
    let msg = Bytes::from(vec![7u8; 1024]);
    let mut p = Pair::connected_granting(Protection::Sealed(Cipher::Aes256Gcm), 4096);
    let before = live();
    assert_eq!(p.queue_messages(&msg, 4000), 4000);
    let per = (live() - before) / 4000;
    println!("{per} bytes held a message waiting");
    assert!(per <= 128, "{per} bytes held a message waiting");
}

/// What [`send_messages`] saw.
struct Run {
    /// The heap's peak above what was held connected, KiB.
    held: i64,
    /// When the server read the last message.
    last_read: Instant,
}

impl Run {
    /// Prints the peak and when the last message was read, and holds the peak to `bound_kib`.
    fn held_at_most(&self, bound_kib: i64) {
        println!(
            "{} KiB at the peak, the last message read at {:?}",
            self.held, self.last_read
        );
        assert!(self.held <= bound_kib, "{} KiB at the peak", self.held);
    }
}

/// A client sends `count` messages, `message(i)` the `i`th, to a server that grants 4,096
/// streams at once, over `link` both ways, as fast as the stream count lets it; the server
/// reads each whole and gives it to `read`. Runs until the server has read every one and
/// the client was told every one acknowledged.
fn send_messages(
    seed: u64,
    link: LinkConfig,
    count: usize,
    message: impl Fn(usize) -> Bytes,
    mut read: impl FnMut(Bytes),
) -> Run {
    let mut sim = Sim::new(seed);
    let client = sim.add_node(Config::default());
    let server = sim.add_node(Config {
        initial_concurrent_streams: 4096,
        ..Config::default()
    });
    sim.link(client, server, link);
    let (sent, reads, acked) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let (conn, last_read) = (Cell::new(None), Cell::new(None));
    sim.connect(client, server);
    // A first message made before the count: shared bytes (`sevens`) are made once, there.
    drop(message(0));
    reset_peak();
    let before = live();
    let limit = sim.now() + Duration::from_secs(120);
    sim.run_until(
        limit,
        |sim, node, event| match event {
            Event::Connected { conn: c, .. } | Event::StreamsAvailable { conn: c } if node == client => {
                conn.set(Some(c));
                while sent.get() < count {
                    match sim.endpoint(client).send_message(c, None, message(sent.get())) {
                        Ok(_) => sent.set(sent.get() + 1),
                        Err(ApiError::StreamLimit) => break,
                        Err(e) => panic!("send: {e:?}"),
                    }
                }
            }
            Event::StreamAcked { .. } if node == client => acked.set(acked.get() + 1),
            Event::StreamReadable { conn: c, stream } if node == server => {
                if let Ok(Read::Data { bytes, .. }) = sim.endpoint(server).read_message(c, stream, 1 << 20) {
                    read(bytes);
                    reads.set(reads.get() + 1);
                    if reads.get() == count {
                        last_read.set(Some(sim.now()));
                    }
                }
            }
            _ => {}
        },
        |_| reads.get() == count && acked.get() == count,
    );
    let held = (peak() - before) / 1024;
    assert_eq!(
        (reads.get(), acked.get()),
        (count, count),
        "seed {seed}: read and acknowledged by {:?}",
        sim.now()
    );
    let conn = conn.get().expect("connected");
    assert_eq!(
        sim.endpoint(client).buffered(conn),
        Some((0, 0)),
        "seed {seed}: held after"
    );
    Run {
        held,
        last_read: last_read.get().expect("all read"),
    }
}

/// 1 KiB of sevens, shared: the application's bytes, which the measures leave out.
fn sevens(_: usize) -> Bytes {
    thread_local!(static MSG: Bytes = Bytes::from(vec![7u8; 1024]));
    MSG.with(Bytes::clone)
}

/// A peer that grants 4,096 streams at once, a path of 8 Mbit/s and 20 ms each way: the
/// application sends 10,000 messages of 1 KiB as fast as the stream count lets it, far
/// more than the path carries, so most wait. Both endpoints together held 1,811 KiB at
/// their peak above what they held connected while each waiting message had its state
/// (384 bytes) from the start; 443 KiB once a backlog waits as its bytes (373 in a fuzzing
/// build, where every message waits so; 350 there once every stream in flight also waits
/// without its state, module `connection::in_flight`, which in a normal build this path
/// never reaches: it carries fewer than 256 at once). The last message is read at the same
/// virtual instant either way: what the sender sends does not change. With the peer's
/// default stream count, which grows only as far as the path keeps up, the backlog stays
/// under 256 here, and both hold 221 KiB.
#[test]
fn a_backlog_deeper_than_its_path_holds_little() {
    let link = LinkConfig {
        delay: Duration::from_millis(20),
        bandwidth: Some(8_000_000),
        ..LinkConfig::default()
    };
    let run = send_messages(1, link, 10_000, sevens, |bytes| assert_eq!(bytes.len(), 1024));
    run.held_at_most(640);
}

/// A path with room for every message the stream count lets open, 20 ms each way: the
/// application sends 10,000 messages of 1 KiB as fast as the peer's 4,096 streams let it,
/// so thousands are in flight at once, each waiting for its acknowledgement. Past 256
/// states (none in a fuzzing build), a stream whose bytes have all gone waits without its
/// state (module `connection::in_flight` in weir-core: 96 bytes in a queue in id order,
/// against a 384-byte state in a box). The peak, above what was held connected: 5,265 KiB
/// while every message in flight kept its state, 4,397 KiB without it while a packet in
/// flight was recorded in 168 bytes, 4,234 KiB with 128 (weir-core's
/// `recovery::sent_packets`), 4,042 KiB once an owed receipt's place was 16 bytes, not 40
/// (weir-core's `delivery`), 3,827 KiB once a packet's record was 112 bytes and the
/// streams waiting without their state were queued in chunks, not in a ring grown by
/// doubling (`chunk_deque`), 3,704 KiB now that the packets in flight are in a ring grown
/// by a quarter past 256 places, not by doubling. About 2,460 KiB of it is the simulator's
/// own copies of the datagrams on the wire (heaptrack: `Sim::send_one`), the same in every
/// build; the rest is both endpoints'. The last message is read at the same virtual instant
/// in each.
#[test]
fn messages_in_flight_hold_little_beside_their_bytes() {
    let link = LinkConfig {
        delay: Duration::from_millis(20),
        ..LinkConfig::default()
    };
    let run = send_messages(1, link, 10_000, sevens, |bytes| assert_eq!(bytes.len(), 1024));
    run.held_at_most(3730);
}

/// Streams in flight without their states (module `connection::in_flight` in weir-core)
/// over a path that loses, reorders and duplicates: thousands of messages in flight at
/// once, so that past 256 states most wait so, and the losses and acknowledgements out of
/// order make some states again. Every message arrives once, with its own bytes; the
/// sender is told each one acknowledged; and it holds nothing once all are
/// (`send_messages` checks the last two).
#[test]
fn messages_in_flight_survive_loss_reordering_and_duplication() {
    const MESSAGES: usize = 3_000;
    // Message i: 1 KiB of the byte i % 251, its index in its first eight bytes.
    let message = |i: usize| {
        let mut m = vec![(i % 251) as u8; 1024];
        m[..8].copy_from_slice(&(i as u64).to_le_bytes());
        Bytes::from(m)
    };
    for seed in 0..3 {
        let link = LinkConfig {
            delay: Duration::from_millis(20),
            loss: 0.03,
            reorder: 0.05,
            duplicate: 0.02,
            ..LinkConfig::default()
        };
        let mut seen = vec![false; MESSAGES];
        send_messages(seed, link, MESSAGES, message, |bytes| {
            let i = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            assert_eq!(bytes, message(i), "seed {seed}: message {i}'s bytes");
            assert!(!seen[i], "seed {seed}: message {i} read twice");
            seen[i] = true;
        });
        assert!(seen.iter().all(|&s| s), "seed {seed}: every message read");
    }
}

/// ACKs that name hundreds of packets at once, as they do when the ACKs before them were
/// lost or held up: the sender reads each packet's frames where it recorded them (weir-core's
/// `recovery::sent_packets`) and lists only their places, 8 bytes a packet. A list of the
/// packets' records taken out, 112 bytes each, was 400–530 KiB of the sender's peak heap
/// over weir-bench's `bulk-far`, where one ACK named thousands (issue 35's
/// thirty-seventh round); here the most an ACK raised the heap was 28,840 bytes with that
/// list and is 2,216 without it. In memory, two endpoints: a 4 MiB message warms the
/// connection's windows up; then the server's datagrams to the client are held while the
/// client sends the next 4 MiB (its window lets it all go at once), and handed over one by
/// one, each acknowledging about 250 packets (the last fewer).
#[test]
fn an_ack_of_hundreds_of_packets_copies_none_of_them() {
    use bytes::BytesMut;
    use std::net::SocketAddr;
    use weir_core::{ConnectionHandle, Endpoint};

    let addrs: [SocketAddr; 2] = ["10.0.0.1:4000".parse().unwrap(), "10.0.0.2:4000".parse().unwrap()];
    // Windows that let a flight of megabytes go at once.
    let config = Config {
        stream_receive_window: 16 << 20,
        receive_window: 32 << 20,
        ..Config::default()
    };
    let mut eps = [Endpoint::new(config.clone(), 1), Endpoint::new(config, 2)];
    let mut now = Instant::ZERO;
    let conn = eps[0].connect(now, addrs[1]).unwrap();
    let mut buf = vec![0u8; 2048];
    let msg = Bytes::from(vec![7u8; 4 << 20]);
    let mut server_conn: Option<ConnectionHandle> = None;
    // Moves the client's datagrams to the server, and the server's to the client unless
    // `held` takes them; the server reads what comes. Returns the bytes it read.
    let mut step = |eps: &mut [Endpoint; 2], now: Instant, held: Option<&mut Vec<BytesMut>>| {
        let mut read = 0;
        while let Some(t) = eps[0].poll_transmit(now, &mut buf) {
            eps[1].handle_datagram(now, addrs[0], BytesMut::from(&buf[..t.len]));
        }
        let mut from_server = Vec::new();
        while let Some(t) = eps[1].poll_transmit(now, &mut buf) {
            from_server.push(BytesMut::from(&buf[..t.len]));
        }
        match held {
            Some(held) => held.extend(from_server),
            None => from_server
                .into_iter()
                .for_each(|d| eps[0].handle_datagram(now, addrs[1], d)),
        }
        while let Some(event) = eps[1].poll_event() {
            if let Event::StreamReadable { conn, stream } = event {
                server_conn = Some(conn);
                while let Ok(Read::Data { bytes, .. }) = eps[1].read(conn, stream, usize::MAX) {
                    read += bytes.len();
                }
            }
        }
        while eps[0].poll_event().is_some() {}
        read
    };
    let tick = |eps: &mut [Endpoint; 2], now: &mut Instant| {
        *now += Duration::from_millis(1);
        eps.iter_mut().for_each(|ep| ep.handle_timeout(*now));
    };
    while !eps[0].is_established(conn) {
        step(&mut eps, now, None);
        tick(&mut eps, &mut now);
    }
    eps[0].send_message(conn, None, msg.clone()).unwrap();
    let mut read = 0;
    while read < msg.len() {
        read += step(&mut eps, now, None);
        tick(&mut eps, &mut now);
    }
    // The next message, the server's answers held until the client sends nothing more.
    eps[0].send_message(conn, None, msg.clone()).unwrap();
    let mut held = Vec::new();
    loop {
        let sent = eps[0].stats().datagrams_sent;
        step(&mut eps, now, Some(&mut held));
        if eps[0].stats().datagrams_sent == sent && !held.is_empty() {
            break;
        }
        tick(&mut eps, &mut now);
    }
    assert!(server_conn.is_some());
    // The heap's peak while the client handles each of the server's datagrams, above what
    // it held before.
    let (mut most_held, mut least_acked) = (0, u64::MAX);
    for datagram in held {
        let acked = eps[0].connection_stats(conn).unwrap().bytes_acked;
        let before = live();
        reset_peak();
        eps[0].handle_datagram(now, addrs[1], datagram);
        most_held = most_held.max(peak() - before);
        let acked = eps[0].connection_stats(conn).unwrap().bytes_acked - acked;
        if acked > 0 {
            least_acked = least_acked.min(acked);
        }
    }
    println!("{most_held} bytes at the most above what was held, for ACKs of {least_acked} bytes or more");
    assert!(least_acked >= 150 * 1200, "ACKs of {least_acked} bytes");
    assert!(most_held <= 4 << 10, "{most_held} bytes");
}
