//! Flow and congestion control in weir-sim: backpressure to a slow receiver, windows that
//! grow on a long fat path, priorities, LEDBAT yielding, fairness, recovery after losses.

use crate::common;

use std::cell::RefCell;

use weir_core::congestion::{CongestionAlgorithm, LedbatConfig, LedbatDecrease, LedbatSlowdown};
use weir_core::time::{Duration, Instant};
use weir_core::{ApiError, Config, ConnectionHandle, Event, Priority, StreamHeader};
use weir_sim::{LinkConfig, NodeId, Sim};

use common::Traffic;

/// A client and a server joined by [`Sim::bottleneck_path`] of `mbit` and `rtt_ms`.
fn path(seed: u64, config: Config, rtt_ms: u64, mbit: u64) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let c = sim.add_node(config.clone());
    let s = sim.add_node(config);
    sim.bottleneck_path(c, s, Duration::from_millis(rtt_ms), mbit * 1_000_000, 0.0);
    (sim, c, s)
}

fn run(sim: &mut Sim, traffic: &RefCell<Traffic>, until: Instant) {
    sim.run_until(
        until,
        |sim, node, e| traffic.borrow_mut().on_event(sim, node, &e),
        |_| false,
    );
}

fn rate_share(bytes: u64, seconds: f64, mbit: u64) -> f64 {
    bytes as f64 * 8.0 / seconds / (mbit as f64 * 1e6)
}

#[test]
fn a_slow_receiver_is_never_overrun_and_the_sender_buffers_within_its_limit() {
    let config = Config {
        send_buffer: 1 << 20,
        ..Config::default()
    };
    let window = config.stream_receive_window;
    let (mut sim, c, s) = path(1, config.clone(), 40, 10);
    let traffic = RefCell::new(Traffic::new());
    let total = 4u64 << 20;
    let conn = sim.connect(c, s);
    traffic.borrow_mut().bulk(c, conn, total, Priority::Normal);
    // Reads only in ticks, 1/10th of the 10 Mbit/s link: 12,500 bytes every 100 ms.
    traffic.borrow_mut().read_budget = Some(0);
    let mut peak_recv = 0;
    let mut peak_send = 0;
    let server_conn = ConnectionHandle::from_index(0);
    for _ in 0..400 {
        let until = sim.now() + Duration::from_millis(100);
        run(&mut sim, &traffic, until);
        {
            let mut t = traffic.borrow_mut();
            t.read_budget = Some(12_500);
            let stream = weir_core::wire::StreamId::new(weir_core::wire::Side::Client, 0);
            t.drain(&mut sim, s, server_conn, stream);
            t.read_budget = Some(0);
        }
        if let Some((held, _)) = sim.endpoint_ref(s).buffered(server_conn) {
            peak_recv = peak_recv.max(held);
        }
        if let Some((_, sending)) = sim.endpoint_ref(c).buffered(conn) {
            peak_send = peak_send.max(sending);
        }
        if traffic.borrow().delivered_by(0) == total {
            break;
        }
    }
    let t = traffic.borrow();
    assert_eq!(t.delivered_by(0), total, "everything arrives");
    assert!(
        peak_recv > 0 && peak_recv <= window,
        "receiver held {peak_recv} > {window}"
    );
    assert!(peak_send <= config.send_buffer, "sender held {peak_send}");
    assert!(
        t.would_block > 0 && t.writable > 0,
        "the sender met backpressure and resumed"
    );
    let stats = sim.endpoint_ref(c).connection_stats(conn).unwrap();
    assert!(stats.stream_data_blocked > 0, "{stats:?}");
}

#[test]
fn windows_grow_on_a_long_fat_path() {
    // Default windows: 256 KiB per stream at first, which alone would hold a 150 ms path to
    // 14 Mbit/s.
    let (mut sim, c, s) = path(2, Config::default(), 150, 100);
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(c, s, CongestionAlgorithm::NewReno);
    traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(10));
    let before = traffic.borrow().delivered_by(0);
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(20));
    let share = rate_share(traffic.borrow().delivered_by(0) - before, 10.0, 100);
    assert!(share > 0.8, "{share}");
    let client = sim.endpoint_ref(c).connection_stats(conn).unwrap();
    let server = sim
        .endpoint_ref(s)
        .connection_stats(ConnectionHandle::from_index(0))
        .unwrap();
    assert!(
        client.stream_data_blocked > 0,
        "credit-limited at first: {client:?}"
    );
    assert!(server.peer_blocked > 0, "{server:?}");
}

/// A high-priority message of 1 KiB written while a low-priority bulk transfer keeps the
/// send buffer full arrives within two RTTs of its write. The bulk writer refills the buffer
/// whenever it hears `Writable`, so the message may find it full; the application then
/// writes it first at the next `Writable`, as one that knows what matters to it does (the
/// buffer admits bytes, priorities order what leaves).
#[test]
fn a_high_priority_message_overtakes_a_bulk_transfer() {
    let (mut sim, c, s) = path(3, Config::default(), 40, 100);
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect(c, s);
    traffic.borrow_mut().bulk(c, conn, 100 << 20, Priority::Low);
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(2));
    assert!(
        traffic.borrow().delivered_by(0) > 10 << 20,
        "the bulk transfer is under way"
    );
    let rtt = sim.endpoint_ref(c).rtt(conn).unwrap();
    let id = sim
        .endpoint(c)
        .open_stream(conn, StreamHeader::default().with_total_len(1024))
        .unwrap();
    sim.endpoint(c).set_priority(conn, id, Priority::High).unwrap();
    // Writes the message if the buffer takes it whole; when it was written.
    let write = |sim: &mut Sim| match sim.endpoint(c).write(conn, id, vec![7u8; 1024].into()) {
        Ok(1024) => {
            sim.endpoint(c).finish(conn, id).unwrap();
            Some(sim.now())
        }
        Err(ApiError::WouldBlock) => None,
        other => panic!("{other:?}"),
    };
    let written = RefCell::new(write(&mut sim));
    let arrived = RefCell::new(None);
    let started = sim.now();
    sim.run_until(
        started + Duration::from_secs(5),
        |sim, node, e| match e {
            Event::StreamReadable { conn, stream } if node == s && stream == id => {
                if let Ok(weir_core::Read::Data { bytes, .. }) =
                    sim.endpoint(s).read_message(conn, stream, 1024)
                {
                    assert_eq!(bytes.len(), 1024);
                    *arrived.borrow_mut() = Some(sim.now());
                }
            }
            Event::Writable { .. } if node == c && written.borrow().is_none() => {
                *written.borrow_mut() = write(sim);
                traffic.borrow_mut().on_event(sim, node, &e)
            }
            e => traffic.borrow_mut().on_event(sim, node, &e),
        },
        |_| arrived.borrow().is_some(),
    );
    let written = written.borrow().expect("the message was written");
    let took = arrived.borrow().expect("the message arrived") - written;
    println!(
        "written {} after asked, arrived {took} after written, RTT {rtt}",
        written - started
    );
    assert!(took <= rtt.saturating_mul(2), "took {took}, RTT {rtt}");
    assert!(
        traffic.borrow().delivered_by(0) < 100 << 20,
        "while the bulk transfer went on"
    );
}

/// Bytes each accepted connection delivered between `from` and `to`, as shares of the link.
fn shares(
    sim: &mut Sim,
    traffic: &RefCell<Traffic>,
    from: Instant,
    to: Instant,
    n: usize,
    mbit: u64,
) -> Vec<f64> {
    run(sim, traffic, from);
    let before: Vec<u64> = (0..n).map(|i| traffic.borrow().delivered_by(i)).collect();
    run(sim, traffic, to);
    let secs = (to - from).as_micros() as f64 / 1e6;
    (0..n)
        .map(|i| rate_share(traffic.borrow().delivered_by(i) - before[i], secs, mbit))
        .collect()
}

#[test]
fn ledbat_takes_the_link_alone_and_yields_to_newreno() {
    let (mut sim, c, s) = path(4, Config::default(), 50, 10);
    let traffic = RefCell::new(Traffic::new());
    let ledbat = sim.connect_with(c, s, CongestionAlgorithm::Ledbat(LedbatConfig::default()));
    traffic.borrow_mut().bulk(c, ledbat, u64::MAX, Priority::Normal);
    let alone = shares(
        &mut sim,
        &traffic,
        Instant::ZERO + Duration::from_secs(5),
        Instant::ZERO + Duration::from_secs(15),
        1,
        10,
    );
    // Issue 31's scavenger targets: at least 85% of the link alone, at most 10% beside a
    // NewReno flow (measured: 92% alone, 3.4% beside it).
    assert!(alone[0] >= 0.85, "alone: {alone:?}");
    let reno = sim.connect_with(c, s, CongestionAlgorithm::NewReno);
    traffic.borrow_mut().bulk(c, reno, u64::MAX, Priority::Normal);
    let both = shares(
        &mut sim,
        &traffic,
        Instant::ZERO + Duration::from_secs(25),
        Instant::ZERO + Duration::from_secs(45),
        2,
        10,
    );
    println!("LEDBAT alone {alone:?}, beside NewReno {both:?}");
    assert!(both[0] <= 0.10, "{both:?}");
    assert!(both[1] > 0.7, "{both:?}");
}

/// Bulk transfer over 10 Mbit/s and 150 ms; both directions cut for `cut` at 10 s. Returns
/// how long after the cut ends the goodput over a 300 ms window (two RTTs) is back to 80%
/// of the link, the share of the link over the 3 s after that, and the connection's stats.
fn recovery_after_cut(cc: CongestionAlgorithm, cut: Duration) -> (Duration, f64, weir_core::ConnectionStats) {
    let (mut sim, c, s) = path(7, Config::default(), 150, 10);
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(c, s, cc.clone());
    traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
    let start = Instant::ZERO + Duration::from_secs(10);
    let end = start + cut;
    sim.partition(c, s, start, end);
    run(&mut sim, &traffic, end);
    let step = Duration::from_millis(300);
    let mut at = end;
    loop {
        let before = traffic.borrow().delivered_by(0);
        run(&mut sim, &traffic, at + step);
        let share = rate_share(traffic.borrow().delivered_by(0) - before, 0.3, 10);
        if share >= 0.8 {
            let stats = sim.endpoint_ref(c).connection_stats(conn).unwrap();
            let (back, before) = (at + step, traffic.borrow().delivered_by(0));
            run(&mut sim, &traffic, back + Duration::from_secs(3));
            let after = rate_share(traffic.borrow().delivered_by(0) - before, 3.0, 10);
            return (back - step - end, after, stats);
        }
        at += step;
        assert!(
            at - end < Duration::from_secs(60),
            "{cc:?} never recovered after {cut}"
        );
    }
}

#[test]
fn goodput_recovers_after_losses_and_timeouts_without_a_death_spiral() {
    // The bound, after a burst of losses (300 ms cut) or probe timeouts and persistent
    // congestion (3 s cut), counted from when the path comes back: 30 RTTs for both. A cut
    // is silence with no loss before it, so slow start climbs back to the whole old window
    // (module `congestion`); NewReno used to climb to half of it and regain the rest at one
    // datagram per RTT (RFC 9002 §7.3.3), 60 to 100 RTTs on this path (measured: 9.0 s and
    // 15.3 s; now 1.5 s and 3.0 s).
    for (cc, rtts) in [
        (CongestionAlgorithm::Bbr, 30),
        (CongestionAlgorithm::Ledbat(LedbatConfig::default()), 30),
        (CongestionAlgorithm::NewReno, 30),
    ] {
        let bound = Duration::from_millis(150 * rtts);
        let (burst, _, _) = recovery_after_cut(cc.clone(), Duration::from_millis(300));
        let (timeout, kept, stats) = recovery_after_cut(cc.clone(), Duration::from_secs(3));
        println!(
            "{cc:?}: back to 80% {burst} after a 300 ms cut, {timeout} after a 3 s cut, then {kept:.2} of the link for 3 s ({stats:?})"
        );
        assert!(stats.persistent_congestion > 0, "{stats:?}");
        assert!(burst <= bound && timeout <= bound, "{cc:?}: {burst} / {timeout}");
        // Back for good, not a peak: the window was rebuilt, not one lucky round (a
        // LEDBAT++ slowdown, two RTTs at the minimum window, may fall in these 3 s).
        assert!(kept >= 0.75, "{cc:?}: {kept:.2} of the link after recovering");
    }
}

#[test]
fn the_endpoint_rate_limit_is_shared_by_the_connections_with_data() {
    let rate = 500_000u64;
    let sender = Config {
        max_send_rate: Some(rate),
        ..Config::default()
    };
    let mut sim = Sim::new(8);
    let c = sim.add_node(sender);
    let s = sim.add_node(Config::default());
    sim.link(c, s, LinkConfig::default());
    let traffic = RefCell::new(Traffic::new());
    let quiet = sim.connect(c, s);
    for _ in 0..2 {
        let conn = sim.connect(c, s);
        traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
    }
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(2));
    let before: Vec<u64> = (0..3).map(|i| traffic.borrow().delivered_by(i)).collect();
    let sent_before = sim.endpoint_ref(c).stats().datagrams_sent;
    // A message on the quiet connection still gets through at once.
    sim.endpoint(c)
        .send_message(quiet, None, vec![1u8; 1000].into())
        .unwrap();
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(12));
    let got: Vec<u64> = (0..3)
        .map(|i| traffic.borrow().delivered_by(i) - before[i])
        .collect();
    let datagrams = sim.endpoint_ref(c).stats().datagrams_sent - sent_before;
    println!("rate limit {rate} B/s: {got:?} bytes in 10 s over {datagrams} datagrams");
    // The endpoint never sends above its rate (plus one burst of 10 ms).
    assert!(
        datagrams * 1200 <= rate * 10 + rate / 100,
        "{datagrams} datagrams"
    );
    // The two bulk connections split it evenly; the quiet one took only its message.
    assert_eq!(got[0], 1000);
    let (a, b) = (got[1] as f64, got[2] as f64);
    assert!((a / (a + b) - 0.5).abs() < 0.05, "{got:?}");
    assert!(a + b >= 0.8 * (rate * 10) as f64, "{got:?}");
}

/// 4 NewReno flows started together; shares over two minutes, a few dozen halvings each (a
/// drop-tail queue drops one datagram of one flow per overflow, so over a short span a
/// flow's share depends on how many halvings happened to hit it).
#[test]
fn four_newreno_flows_share_evenly() {
    let (mut sim, c, s) = path(5, Config::default(), 50, 10);
    let traffic = RefCell::new(Traffic::new());
    for _ in 0..4 {
        let conn = sim.connect_with(c, s, CongestionAlgorithm::NewReno);
        traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
    }
    let got = shares(
        &mut sim,
        &traffic,
        Instant::ZERO + Duration::from_secs(10),
        Instant::ZERO + Duration::from_secs(130),
        4,
        10,
    );
    println!("NewReno x4: {got:?}");
    assert_even(&got);
}

fn assert_even(got: &[f64]) {
    assert_even_within(got, 0.05);
}

/// Four shares of at least 90% of the path, each within `tolerance` of a quarter.
fn assert_even_within(got: &[f64], tolerance: f64) {
    let total: f64 = got.iter().sum();
    assert!(total > 0.9, "{got:?}");
    for g in got {
        assert!((g / total - 0.25).abs() <= tolerance, "{got:?}");
    }
}

/// 4 LEDBAT flows started 5 s apart on `rtt_ms`; shares from 30 s to 60 s. The receive
/// windows start at 4 MiB, as they did when these shares were measured: the shares move
/// with any change to the first round trips (see below), and 1 MiB (the default since
/// issue 30) is such a change.
fn latecomers(ledbat: LedbatConfig, rtt_ms: u64) -> Vec<f64> {
    latecomers_seeded(6, ledbat, rtt_ms)
}

fn latecomers_seeded(seed: u64, ledbat: LedbatConfig, rtt_ms: u64) -> Vec<f64> {
    let config = Config {
        receive_window: 4 << 20,
        ..Config::default()
    };
    let (mut sim, c, s) = path(seed, config, rtt_ms, 10);
    let traffic = RefCell::new(Traffic::new());
    for i in 0..4u64 {
        run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(5 * i));
        let conn = sim.connect_with(c, s, CongestionAlgorithm::Ledbat(ledbat));
        traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
        // Connecting makes output: flush it with the events.
        let now = sim.now();
        run(&mut sim, &traffic, now);
    }
    shares(
        &mut sim,
        &traffic,
        Instant::ZERO + Duration::from_secs(30),
        Instant::ZERO + Duration::from_secs(60),
        4,
        10,
    )
}

/// RFC 6817 §4.4's latecomer advantage, measured, and LEDBAT++'s remedies (the default
/// config): at 50, 150 and 300 ms no flow falls below half its share, and at 150 ms the
/// shares averaged over seeds 1 to 4 are each within 7 points of a quarter. At 10 ms the
/// remedies hold only partly: over seeds 1 to 8 the first flow got 12-15% and the last up to
/// 42% (5-15% and 51% before LEDBAT regrew faster with no queue, issue 31), so there the test
/// asks only that the four fill the path. One seed's shares move with
/// any change to the first round trips or to the random draws (over seeds 1 to 8 at 150 ms
/// the first flow got 18-28% and single shares were up to 7 points off a quarter): this
/// test asked ± 5% at 150 ms and ± 8% at 50 ms of seed 6 alone, which held by chance until
/// issue 30 drew connection ids and left-out packet numbers from a keyed generator.
#[test]
fn ledbat_latecomers_share_evenly_with_the_remedies() {
    let rfc = LedbatConfig {
        slowdown: LedbatSlowdown::Disabled,
        decrease: LedbatDecrease::Linear,
        ..LedbatConfig::default()
    };
    let plain = latecomers(rfc, 50);
    println!("LEDBAT x4 started 5 s apart, 50 ms, RFC 6817: {plain:?}");
    let mut mean = [0.0; 4];
    for seed in 1..=4 {
        let remedied = latecomers_seeded(seed, LedbatConfig::default(), 150);
        println!("LEDBAT x4 started 5 s apart, 150 ms, seed {seed}, LEDBAT++ remedies: {remedied:?}");
        for (m, g) in mean.iter_mut().zip(&remedied) {
            *m += g / 4.0;
        }
    }
    assert_even_within(&mean, 0.07);
    for rtt_ms in [50, 150, 300] {
        let remedied = latecomers(LedbatConfig::default(), rtt_ms);
        println!("LEDBAT x4 started 5 s apart, {rtt_ms} ms, LEDBAT++ remedies: {remedied:?}");
        let total: f64 = remedied.iter().sum();
        assert!(remedied.iter().all(|g| g / total >= 0.125), "{remedied:?}");
    }
    let short = latecomers(LedbatConfig::default(), 10);
    println!("LEDBAT x4 started 5 s apart, 10 ms, LEDBAT++ remedies: {short:?}");
    assert!(short.iter().sum::<f64>() > 0.9, "{short:?}");
}

/// A stream the peer opens after the connection's streams grew their windows starts with
/// the grown window, and the sender is told as soon as the stream's first frame arrives: a
/// message after a bulk transfer is not held to the configured 256 KiB per stream and then
/// to each doubling, round trip by round trip, as the first stream was. (On this path it
/// still meets the 256 KiB once: the news takes a round trip, in which 100 Mbit/s would
/// send more. Without the grown window it is held three times.)
#[test]
fn a_new_stream_starts_with_the_window_the_connections_streams_grew_to() {
    let (mut sim, c, s) = path(9, Config::default(), 40, 100);
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(c, s, CongestionAlgorithm::NewReno);
    traffic.borrow_mut().bulk(c, conn, 8 << 20, Priority::Normal);
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(10));
    assert_eq!(traffic.borrow().delivered_by(0), 8 << 20);
    let blocked = |sim: &Sim| {
        sim.endpoint_ref(c)
            .connection_stats(conn)
            .unwrap()
            .stream_data_blocked
    };
    let before = blocked(&sim);
    assert!(before > 0, "the first stream was held to its credit");
    let message = bytes::Bytes::from(vec![7u8; 1 << 20]);
    sim.endpoint(c).send_message(conn, None, message).unwrap();
    run(&mut sim, &traffic, Instant::ZERO + Duration::from_secs(20));
    assert_eq!(traffic.borrow().delivered_by(0), (8 << 20) + (1 << 20));
    let held = blocked(&sim) - before;
    assert!(
        held <= 1,
        "the message was held {held} times by its stream's credit"
    );
}

/// A host busy for a moment (here the client did not read its socket for 60 ms after the
/// handshake, as when the application blocks its runtime to build what it sends) gives an
/// RTT sample 60 times the path's, and the smoothed RTT forgets it by 1/8 per sample: the
/// pacer must not hold the transfer to that pace meanwhile. With timers that fire on 1 ms
/// ticks, as tokio's do, the pacer must also let out what the rate earned in a tick, not
/// only the next datagram. 2 MiB over a 1 ms path: slow start from ten datagrams needs about
/// eight round trips.
#[test]
fn a_sender_paces_at_the_path_s_rate_after_a_busy_moment() {
    use std::rc::Rc;
    let mut sim = Sim::new(5);
    let c = sim.add_node(Config::default());
    let s = sim.add_node(Config::default());
    sim.link(
        c,
        s,
        LinkConfig {
            delay: Duration::from_micros(500),
            ..LinkConfig::default()
        },
    );
    sim.timer_granularity(c, Duration::from_millis(1));
    sim.timer_granularity(s, Duration::from_millis(1));
    let busy = Rc::new(RefCell::new(None::<Vec<bytes::Bytes>>));
    let unread = Rc::clone(&busy);
    sim.intercept(s, c, move |datagram| match unread.borrow_mut().as_mut() {
        Some(held) => {
            held.push(bytes::Bytes::from(std::mem::take(datagram)));
            false
        }
        None => true,
    });
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(c, s, CongestionAlgorithm::NewReno);
    traffic.borrow_mut().bulk(c, conn, 2 << 20, Priority::Normal);
    let connected = RefCell::new(None);
    let on_event = |sim: &mut Sim, node, e: Event| match e {
        Event::Connected { .. } if node == c => {
            *busy.borrow_mut() = Some(Vec::new());
            *connected.borrow_mut() = Some(e);
        }
        e => traffic.borrow_mut().on_event(sim, node, &e),
    };
    sim.run_until(Instant::ZERO + Duration::from_secs(1), on_event, |_| {
        connected.borrow().is_some()
    });
    let until = sim.now() + Duration::from_millis(60);
    sim.run_until(until, on_event, |_| false);
    let from = sim.addr(s);
    for datagram in busy.borrow_mut().take().expect("held") {
        sim.inject(from, c, datagram);
    }
    let start = sim.now();
    let connected = connected.borrow_mut().take().expect("connected");
    traffic.borrow_mut().on_event(&mut sim, c, &connected);
    let done = sim.run_until(start + Duration::from_secs(10), on_event, |_| {
        traffic.borrow().delivered_by(0) == 2 << 20
    });
    assert!(done);
    // 11.5 ms. Measured with throw-away builds of the pacer: on the smoothed RTT 64.5 ms,
    // with bursts of at most 16 datagrams 114.5 ms, both (as before 1449ca4) 160.5 ms.
    let took = sim.now() - start;
    assert!(took <= Duration::from_millis(20), "{took:?}");
}

/// A sender the pacer holds back is woken for a millisecond of its rate, not for each
/// datagram (spec §8.6; `WAKE_QUANTUM` in core/src/pacing.rs). With exact timers, as
/// weir-std's are, a sender woken for each datagram the pacer let go sent it alone: over a
/// 40 ms path its CPU a message was twice weir-tokio's. 8 MiB over 100 Mbit/s and a 40 ms
/// round trip, counted in the sender's trace: its datagrams sent against its wake-ups.
/// Before the quantum: 5,977 datagrams over 4,819 wake-ups, the last byte delivered at
/// 959.5 ms; with it, 5,976 over 125, at 961.8 ms.
#[test]
fn a_paced_sender_with_exact_timers_sends_many_datagrams_a_wake_up() {
    let mut sim = Sim::new(11);
    let c = sim.add_traced_node(Config::default());
    let s = sim.add_node(Config::default());
    sim.link(
        c,
        s,
        LinkConfig {
            delay: Duration::from_millis(20),
            bandwidth: Some(100_000_000),
            queue_bytes: 1 << 20,
            ..LinkConfig::default()
        },
    );
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect(c, s);
    traffic.borrow_mut().bulk(c, conn, 8 << 20, Priority::Normal);
    let done = sim.run_until(
        Instant::ZERO + Duration::from_secs(30),
        |sim, node, e| traffic.borrow_mut().on_event(sim, node, &e),
        |_| traffic.borrow().delivered_by(0) == 8 << 20,
    );
    assert!(done);
    let trace = sim.take_trace(c);
    let wakes = trace.lines().filter(|l| l.ends_with(" expire")).count();
    let sent = trace
        .lines()
        .filter(|l| l.contains(" out ") && !l.ends_with("=> none"))
        .count();
    println!(
        "{sent} datagrams sent over {wakes} timer wake-ups, delivered at {:?}",
        sim.now()
    );
    assert!(sent > 5_000 && wakes > 0, "{sent} {wakes}");
    assert!(sent >= 8 * wakes, "{sent} datagrams over {wakes} wake-ups");
}
