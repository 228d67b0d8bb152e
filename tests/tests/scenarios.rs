//! Scenarios in weir-sim: concurrent streams; small messages, long messages and a long
//! stream over a long path (the stream count and the windows growing to it); partitions;
//! garbage and corruption; memory within the windows. The property test over seeds and
//! links, which runs this file's transfer, is in `delivery_sweep`.

use crate::common;

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use common::Traffic;
use weir_core::time::{Duration, Instant};
use weir_core::{
    ApiError, CloseReason, Config, ConnectionHandle, Delivery, Event, Priority, Read, StreamHeader,
};
use weir_sim::{LinkConfig, NodeId, Sim};

pub(crate) fn body(m: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ m.wrapping_mul(17)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Client sends `msgs` once connected (as many at a time as the stream limit allows); the
/// server gathers whole messages by stream. Returns (messages by stream, close reasons seen).
pub(crate) struct Run {
    pub(crate) got: BTreeMap<u64, Bytes>,
    /// What the client heard of each stream's delivery.
    pub(crate) verdicts: BTreeMap<u64, Delivery>,
    pub(crate) closed: Vec<(NodeId, CloseReason)>,
    pub(crate) failed: bool,
}

impl Run {
    /// Records what the client hears of its streams, and every connection that ends.
    pub(crate) fn hear(&mut self, c: NodeId, node: NodeId, event: &Event) {
        match event {
            Event::StreamDelivery { stream, delivery, .. } if node == c => {
                self.verdicts.insert(stream.0, *delivery);
            }
            Event::Closed { reason, .. } => self.closed.push((node, reason.clone())),
            Event::HandshakeFailed { .. } => self.failed = true,
            _ => {}
        }
    }
}

pub(crate) fn transfer(sim: &mut Sim, c: NodeId, s: NodeId, msgs: Vec<Bytes>, limit: Duration) -> Run {
    let want = msgs.len();
    let queue = RefCell::new(msgs.into_iter().rev().collect::<Vec<_>>());
    let run = RefCell::new(Run {
        got: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        closed: Vec::new(),
        failed: false,
    });
    let send_more = |sim: &mut Sim, conn: ConnectionHandle| {
        let mut q = queue.borrow_mut();
        while let Some(m) = q.pop() {
            match sim.endpoint(c).send_message(conn, None, m.clone()) {
                Ok(_) => {}
                Err(ApiError::StreamLimit) => {
                    q.push(m);
                    break;
                }
                Err(_) => break,
            }
        }
    };
    sim.connect(c, s);
    let deadline = sim.now() + limit;
    sim.run_until(
        deadline,
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == c => send_more(sim, conn),
            Event::StreamsAvailable { conn } if node == c => send_more(sim, conn),
            Event::StreamReadable { conn, stream } if node == s => {
                if let Ok(Read::Data { bytes, .. }) = sim.endpoint(s).read_message(conn, stream, 64 << 20) {
                    let dup = run.borrow_mut().got.insert(stream.0, bytes);
                    assert!(dup.is_none(), "stream {stream} delivered twice");
                }
            }
            e => run.borrow_mut().hear(c, node, &e),
        },
        |_| {
            let r = run.borrow();
            r.got.len() == want || r.failed || r.closed.len() == 2
        },
    );
    run.into_inner()
}

pub(crate) fn pair(seed: u64, config: Config, link: LinkConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let c = sim.add_node(config.clone());
    let s = sim.add_node(config);
    sim.link(c, s, link);
    (sim, c, s)
}

#[test]
fn a_hundred_concurrent_streams() {
    let (mut sim, c, s) = pair(
        21,
        Config::default(),
        LinkConfig {
            loss: 0.05,
            ..LinkConfig::default()
        },
    );
    let msgs: Vec<Bytes> = (0..100).map(|m| body(m, 20_000 + m * 100)).collect();
    let run = transfer(&mut sim, c, s, msgs.clone(), Duration::from_secs(60));
    assert_eq!(run.got.len(), 100);
    assert!(run.got.into_values().collect::<Vec<_>>() == msgs);
    // Delivery counters: every byte once, however often it was sent (5% loss retransmits).
    let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();
    let conn = ConnectionHandle::from_index(0);
    let read = sim.endpoint_ref(s).connection_stats(conn).unwrap();
    assert_eq!(read.bytes_read, total);
    sim.run_for(Duration::from_secs(1), |_, _, _| {}); // the last ACKs reach the sender
    let sent = sim.endpoint_ref(c).connection_stats(conn).unwrap();
    assert!(sent.bytes_retransmitted > 0, "{sent:?}");
    assert_eq!(sent.bytes_acked, total);
}

/// Small messages over a long path (spec §8, Streams and credit): each message is a
/// stream, and the receiver grants streams as it reads them, so a connection carries at
/// most as many messages per round trip as the peer may have streams open, whatever the
/// path's bandwidth. A count fixed at 128 over a 40 ms round trip moves at most 3,200
/// messages a second (1 KiB messages: about 2.3 MB/s on a path that carries far more;
/// issue 35's eleventh round, adapters/bench/rounds.md), and the grants must come soon
/// enough that the count is used: at least three quarters of it a round trip, handshake
/// included (0.70 when grants were due at half the count used, 0.78 at a quarter).
/// By default the count starts at 256 and grows by auto-tuning while the application
/// keeps up, to 4,096: several times the rate, never past what 4,096 allow, and close to
/// what a count of 4,096 from the start allows. It grows only into what the endpoint's
/// receive budget leaves (spec §10.3): with no room beyond the 256 it starts with, never
/// past what 256 allow.
#[test]
fn small_messages_over_a_long_path_grow_the_stream_count_to_the_path() {
    let delay = Duration::from_millis(20);
    let n = 10_000;
    let rate = |config: Config| {
        let (mut sim, c, s) = pair(
            1,
            config,
            LinkConfig {
                delay,
                ..LinkConfig::default()
            },
        );
        let msgs = vec![Bytes::from(vec![7u8; 1024]); n];
        let start = sim.now();
        let run = transfer(&mut sim, c, s, msgs, Duration::from_secs(60));
        assert_eq!(run.got.len(), n, "not all read by {}", sim.now());
        let load = sim.endpoint_ref(s).load();
        assert!(load.receive_budgets <= sim.endpoint_ref(s).config().receive_buffer_total);
        n as f64 / (sim.now().saturating_duration_since(start).as_micros() as f64 / 1e6)
    };
    let fixed = rate(Config {
        initial_concurrent_streams: 128,
        max_concurrent_streams: 128,
        ..Config::default()
    });
    let tuned = rate(Config::default());
    // A count too large ever to bind: what the path and slow start allow.
    let unbound = rate(Config {
        initial_concurrent_streams: 4096,
        max_concurrent_streams: 4096,
        ..Config::default()
    });
    // One connection's budget at the start (a 1 MiB window: 2 MiB and 4 KiB, and 2 KiB for
    // each of the 256 streams it starts with), and no room to grow.
    let tight = rate(Config {
        max_connections: 1,
        receive_buffer_total: (2 << 20) + (4 << 10) + 256 * (2 << 10),
        ..Config::default()
    });
    println!(
        "1 KiB messages over a 40 ms round trip, a second: {fixed:.0} with 128 streams, \
         {tuned:.0} by default (256 growing to 4,096), {unbound:.0} with 4,096 from the \
         start, {tight:.0} with room for 256"
    );
    let ceiling = |streams: f64| streams / (2.0 * delay.as_micros() as f64 / 1e6);
    assert!(
        fixed <= ceiling(128.0),
        "{fixed:.0} a second, over {:.0}",
        ceiling(128.0)
    );
    assert!(
        fixed >= 0.75 * ceiling(128.0),
        "{fixed:.0} a second: the grants lag"
    );
    assert!(
        tuned <= ceiling(4096.0),
        "{tuned:.0} a second, over {:.0}",
        ceiling(4096.0)
    );
    assert!(
        tuned >= 3.0 * fixed,
        "{tuned:.0} against {fixed:.0}: the count did not grow"
    );
    // The growth keeps up with slow start: 0.86 of the unbound rate when a measurement
    // begun in slow start ran on until a whole count came (issue 35's twenty-ninth round),
    // 0.91 once it ended when it could no longer be fast enough, 0.85 since a message cut
    // by a datagram's end goes on in the next datagram (thirtieth round): the grants come
    // at other times, and by a throw-away log of the count's measurements the first to
    // succeed began 25 ms later (255 ms, not 230) and the doublings after it took as long as
    // before (over real sockets the rate did not move).
    assert!(
        tuned >= 0.84 * unbound,
        "{tuned:.0} against {unbound:.0} unbound: the count grew late"
    );
    assert!(
        tight <= ceiling(256.0),
        "{tight:.0} a second, over {:.0}",
        ceiling(256.0)
    );
    assert!(
        tight > 1.2 * fixed,
        "{tight:.0} against {fixed:.0}: the count did not grow"
    );
}

/// A long message over a long path (spec §8, Streams and credit): the receive windows start
/// small (256 KiB a stream, 1 MiB the connection) and double by auto-tuning while the
/// application keeps up, the connection's only into room its endpoint grants. 16 MiB over
/// a 40 ms round trip by default, against windows too large ever to bind: 679 ms (this test
/// with d5238f57's change taken back out) against
/// 507 (1.34 times as long) when a connection window that wanted to grow waited for its
/// next raise to use the room granted, 591 ms (1.16) once it used it at once, and 507 now
/// that the windows are raised at each quarter window read, not each half (they doubled
/// about every 1.4 round trips, slower than slow start's every round trip; issue 35's
/// thirteenth round).
#[test]
fn a_long_message_over_a_long_path_is_not_held_back_by_its_windows() {
    let link = LinkConfig {
        delay: Duration::from_millis(20),
        ..LinkConfig::default()
    };
    let tuned = long_transfer_time(3, Config::default(), link, 16 << 20, Sending::Message);
    let never_bind = Config {
        stream_receive_window: 256 << 20,
        max_stream_receive_window: 256 << 20,
        receive_window: 256 << 20,
        max_receive_window: 256 << 20,
        ..Config::default()
    };
    let unbound = long_transfer_time(3, never_bind, link, 16 << 20, Sending::Message);
    println!("16 MiB over a 40 ms round trip: {tuned} by default, {unbound} with windows that never bind");
    assert!(
        tuned.as_micros() * 100 <= unbound.as_micros() * 105,
        "{tuned} against {unbound}: the windows held the sender back"
    );
}

/// A long message over a long, fast, lossy path (spec §8, Streams and credit): each loss
/// leaves a hole the application cannot read past for a round trip and a half or more,
/// while the sender goes on up to the window past it, so the window such a path needs is
/// a few bandwidth-delay products, not one. 128 MiB at 1 Gbit/s over a 100 ms round trip
/// with 1% loss, by default against windows that may grow without bound (from the same
/// start): 3.88 s against 2.98 s while a stream's window grew to half the connection's (16
/// MiB of 32), 3.11 s now that it may grow as far (issue 35's thirty-ninth round).
#[test]
fn a_long_message_over_a_long_lossy_path_is_not_held_back_by_the_stream_s_window() {
    let len = 128 << 20;
    let link = LinkConfig {
        delay: Duration::from_millis(50),
        loss: 0.01,
        bandwidth: Some(1_000_000_000),
        queue_bytes: 12_500_000,
        ..LinkConfig::default()
    };
    // The sender's buffer takes the whole message: the receiver's windows are what is
    // measured.
    let config = Config {
        send_buffer: len as u64,
        ..Config::default()
    };
    let tuned = long_transfer_time(1, config.clone(), link, len, Sending::Message);
    let growing = Config {
        max_stream_receive_window: 256 << 20,
        max_receive_window: 256 << 20,
        ..config
    };
    let unbound = long_transfer_time(1, growing, link, len, Sending::Message);
    println!(
        "128 MiB over a 100 ms round trip, 1% loss: {tuned} by default, {unbound} with windows that may grow without bound"
    );
    assert!(
        tuned.as_micros() * 100 <= unbound.as_micros() * 115,
        "{tuned} against {unbound}: the windows' maxima held the sender back"
    );
}

/// A long stream over a long, fast path (spec §10.3, Limits): the sender's buffer bounds
/// what is in flight, so a buffer under the path's bandwidth-delay product binds before the
/// peer's credit does. 128 MiB written as the buffer takes it (in 256 KiB writes), at 1
/// Gbit/s over a 300 ms round trip (a 37.5 MB product): 5.98 s while the buffer was 16
/// MiB, 5.32 s now that it is 32 MiB, as far as the peer's connection window grows by
/// default, and as with a buffer that never binds (issue 35's thirty-ninth round; past 32
/// MiB the windows bind).
#[test]
fn a_long_stream_over_a_long_path_is_not_held_back_by_the_sender_s_buffer() {
    let len = 128 << 20;
    let link = LinkConfig {
        delay: Duration::from_millis(150),
        bandwidth: Some(1_000_000_000),
        queue_bytes: 37_500_000,
        ..LinkConfig::default()
    };
    let tuned = long_transfer_time(1, Config::default(), link, len, Sending::Stream);
    let roomy = Config {
        send_buffer: 256 << 20,
        ..Config::default()
    };
    let unbound = long_transfer_time(1, roomy, link, len, Sending::Stream);
    println!(
        "128 MiB over a 300 ms round trip: {tuned} by default, {unbound} with a send buffer that never binds"
    );
    assert!(
        tuned.as_micros() * 100 <= unbound.as_micros() * 105,
        "{tuned} against {unbound}: the send buffer held the sender back"
    );
}

/// How a long transfer's client hands it over.
#[derive(Clone, Copy)]
enum Sending {
    /// One message, whole (`send_message`): the send buffer must hold it all.
    Message,
    /// A stream written as its send buffer takes it, then finished (`common::Traffic`'s
    /// bulk sender).
    Stream,
}

/// How long `len` bytes take from the client's connect until the server's application has
/// read them all, over `link`.
fn long_transfer_time(seed: u64, config: Config, link: LinkConfig, len: usize, sending: Sending) -> Duration {
    let (mut sim, c, s) = pair(seed, config, link);
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect(c, s);
    if let Sending::Stream = sending {
        traffic.borrow_mut().bulk(c, conn, len as u64, Priority::Normal);
    }
    let read = || -> u64 {
        let t = traffic.borrow();
        t.delivered
            .iter()
            .filter(|((n, _), _)| *n == s)
            .map(|(_, got)| got)
            .sum()
    };
    let start = sim.now();
    sim.run_until(
        start + Duration::from_secs(30),
        |sim, node, event| {
            if let (Sending::Message, Event::Connected { conn, .. }) = (sending, &event) {
                if node == c {
                    let msg = Bytes::from(vec![7u8; len]);
                    sim.endpoint(c).send_message(*conn, None, msg).unwrap();
                }
            }
            traffic.borrow_mut().on_event(sim, node, &event);
        },
        |_| read() == len as u64,
    );
    assert_eq!(read(), len as u64, "not all read by {}", sim.now());
    sim.now().saturating_duration_since(start)
}

/// The stream count's auto-tuning under an impaired long path, over seeds: loss, jitter,
/// reordering and duplication on a 40 ms round trip. Every message arrives once and whole,
/// the count ends between where it starts and the most configured, and the endpoint's
/// receive budgets stay within their total.
#[test]
fn the_stream_count_stays_within_its_bounds_on_an_impaired_long_path_over_seeds() {
    let config = Config {
        max_concurrent_streams: 512,
        ..Config::default()
    };
    for seed in 0..6 {
        let (mut sim, c, s) = pair(
            100 + seed,
            config.clone(),
            LinkConfig {
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(2),
                loss: 0.02,
                reorder: 0.01,
                duplicate: 0.01,
                ..LinkConfig::default()
            },
        );
        let msgs: Vec<Bytes> = (0..3_000).map(|m| body(m, 1024)).collect();
        let run = transfer(&mut sim, c, s, msgs.clone(), Duration::from_secs(60));
        assert!(run.closed.is_empty(), "seed {seed}: {:?}", run.closed);
        assert!(
            run.got.into_values().collect::<Vec<_>>() == msgs,
            "seed {seed}: not every message once and whole"
        );
        let server = sim.endpoint_ref(s);
        let count = server
            .connection_stats(ConnectionHandle::from_index(0))
            .unwrap()
            .concurrent_streams;
        assert!((128..=512).contains(&count), "seed {seed}: {count} streams");
        assert!(server.load().receive_budgets <= server.config().receive_buffer_total);
    }
}

/// The count grows only as fast as the application reads (spec §8, §10.3): a peer that
/// opens streams as fast as it may, to a receiver whose application reads none, over a
/// 40 ms round trip, never makes it grow; it waits at the count it was first given.
#[test]
fn streams_nobody_reads_never_grow_the_count() {
    let (mut sim, c, s) = pair(
        7,
        Config::default(),
        LinkConfig {
            delay: Duration::from_millis(20),
            ..LinkConfig::default()
        },
    );
    let send_all = |sim: &mut Sim, conn: ConnectionHandle| {
        for m in 0..1_000 {
            if sim.endpoint(c).send_message(conn, None, body(m, 1024)).is_err() {
                break;
            }
        }
    };
    sim.connect(c, s);
    sim.run_for(Duration::from_secs(3), |sim, node, event| match event {
        Event::Connected { conn, .. } | Event::StreamsAvailable { conn } if node == c => send_all(sim, conn),
        _ => {}
    });
    let conn = ConnectionHandle::from_index(0);
    let server = sim.endpoint_ref(s).connection_stats(conn).unwrap();
    assert_eq!(
        server.concurrent_streams,
        Config::default().initial_concurrent_streams
    );
    let client = sim.endpoint_ref(c).connection_stats(conn).unwrap();
    assert!(client.streams_blocked > 0, "{client:?}");
}

#[test]
fn a_short_partition_is_survived() {
    let (mut sim, c, s) = pair(22, Config::default(), LinkConfig::default());
    // 5 s cut (idle timeout is 30 s) starting mid-transfer.
    sim.partition(
        c,
        s,
        Instant::from_micros(200_000),
        Instant::from_micros(5_200_000),
    );
    let msg = body(0, 4 << 20);
    let run = transfer(&mut sim, c, s, vec![msg.clone()], Duration::from_secs(60));
    assert!(run.closed.is_empty(), "{:?}", run.closed);
    assert!(run.got.get(&0) == Some(&msg));
    assert!(sim.stats().partitioned > 0);
    assert!(
        sim.now() > Instant::from_micros(5_200_000),
        "the transfer straddled the partition"
    );
}

#[test]
fn a_long_partition_times_out_both_sides_and_silences_them() {
    let config = Config {
        idle_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    // 10 Mbit/s: the 8 MiB message takes seconds, so the cut comes mid-transfer.
    let link = LinkConfig {
        bandwidth: Some(10_000_000),
        ..LinkConfig::default()
    };
    let (mut sim, c, s) = pair(23, config, link);
    sim.partition(c, s, Instant::from_micros(300_000), Instant::MAX);
    let run = transfer(&mut sim, c, s, vec![body(0, 8 << 20)], Duration::from_secs(30));
    assert!(run.got.is_empty());
    let mut reasons = run.closed.clone();
    reasons.sort_by_key(|(n, _)| *n);
    assert_eq!(
        reasons,
        vec![(c, CloseReason::Unreachable), (s, CloseReason::Unreachable)]
    );
    // Nothing is sent after both gave up: run on and count.
    let sent = sim.stats().sent;
    sim.run_for(Duration::from_secs(60), |_, _, _| {});
    assert_eq!(sim.stats().sent, sent, "a dead peer gets no more datagrams");
    assert_eq!(
        sim.endpoint(c).connection_count() + sim.endpoint(s).connection_count(),
        0
    );
}

#[test]
fn garbage_truncation_and_corruption_never_deliver_wrong_bytes() {
    let link = LinkConfig {
        corrupt: 0.05,
        loss: 0.02,
        ..LinkConfig::default()
    };
    let (mut sim, c, s) = pair(24, Config::default(), link);
    // Random datagrams from strangers and truncated copies of real traffic, throughout.
    let stranger = "192.0.2.7:999".parse().unwrap();
    for i in 0..2000u64 {
        let len = (i * 37 % 1400) as usize;
        let data: Vec<u8> = (0..len).map(|j| (i as usize * 7 + j * 13) as u8).collect();
        sim.inject(stranger, s, Bytes::from(data));
    }
    let msgs: Vec<Bytes> = (0..200).map(|m| body(m, 3000)).collect();
    let run = transfer(&mut sim, c, s, msgs.clone(), Duration::from_secs(60));
    assert!(run.closed.is_empty(), "{:?}", run.closed);
    assert!(
        run.got.into_values().collect::<Vec<_>>() == msgs,
        "every message intact"
    );
    assert!(sim.stats().corrupted > 10);
    // Every stranger's datagram was dropped, or (an unknown version on a long header of at
    // least 1200 bytes) answered statelessly with VERSION_REJECT, spec §3.1.
    let st = sim.endpoint(s).stats();
    let handled = st.dropped_malformed + st.dropped_unknown_connection + st.version_rejects_sent;
    assert!(
        handled >= 2000,
        "garbage and corrupted datagrams were dropped: {st:?}"
    );
}

#[test]
fn memory_held_stays_within_the_configured_windows() {
    // Windows that may not grow: the bound is the configured maximum.
    let config = Config {
        stream_receive_window: 64 << 10,
        max_stream_receive_window: 64 << 10,
        receive_window: 256 << 10,
        max_receive_window: 256 << 10,
        ..Config::default()
    };
    let (mut sim, c, s) = pair(
        25,
        config,
        LinkConfig {
            loss: 0.05,
            ..LinkConfig::default()
        },
    );
    sim.connect(c, s);
    let msg = body(1, 10 << 20);
    let peak = RefCell::new(0u64);
    let read = RefCell::new(0u64);
    let limit = sim.now() + Duration::from_secs(120);
    sim.run_until(
        limit,
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == c => {
                let id = sim
                    .endpoint(c)
                    .open_stream(conn, StreamHeader::default())
                    .unwrap();
                sim.endpoint(c).write(conn, id, msg.clone()).unwrap();
                sim.endpoint(c).finish(conn, id).unwrap();
            }
            // The receiver reads incrementally, chunk by chunk, as bytes become contiguous.
            Event::StreamReadable { conn, stream } if node == s => {
                while let Ok(Read::Data { bytes, .. }) = sim.endpoint(s).read(conn, stream, usize::MAX) {
                    *read.borrow_mut() += bytes.len() as u64;
                }
            }
            _ => {}
        },
        |sim| {
            let mut p = peak.borrow_mut();
            if let Some((held, _)) = sim_endpoint_buffered(sim) {
                *p = (*p).max(held);
            }
            *read.borrow() == 10 << 20
        },
    );
    assert_eq!(*read.borrow(), 10 << 20);
    let peak = *peak.borrow();
    assert!(
        peak > 0 && peak <= 64 << 10,
        "the receiver held {peak} bytes; its stream window is 64 KiB"
    );
    // An idle connection holds nothing for the application.
    assert_eq!(
        sim.endpoint(s).buffered(ConnectionHandle::from_index(0)),
        Some((0, 0))
    );
}

/// The server's buffered bytes (node 1, its only connection).
fn sim_endpoint_buffered(sim: &Sim) -> Option<(u64, u64)> {
    // `endpoint` needs `&mut`; the closure gets `&Sim`, so read through a shared accessor.
    sim.endpoint_ref(1).buffered(ConnectionHandle::from_index(0))
}
