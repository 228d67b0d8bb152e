//! Liveness in weir-sim (issue 29; spec §8, Liveness): a connection gives up on its peer
//! only when nothing was heard for the idle timeout, whatever the RTT; outages shorter than
//! that and burst loss are survived; keep-alives never hold loss detection back; a path that
//! drops large datagrams is detected and the connection carries on with small ones; and the
//! longest stretch without progress, while the path delivers, is bounded.

use std::cell::RefCell;

use bytes::Bytes;
use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::time::{Duration, Instant};
use weir_core::{CloseReason, Config, ConnectionHandle, ConnectionStats, Event, Read, StreamHeader};
use weir_sim::{BurstLoss, LinkConfig, NodeId, Sim};

const C: NodeId = 0;
const S: NodeId = 1;

fn body(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 11)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A path like loopback (100 µs each way), at 100 Mbit/s so that a transfer takes a while.
fn loopback() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(100),
        bandwidth: Some(100_000_000),
        ..LinkConfig::default()
    }
}

/// What a one-message transfer did.
#[derive(Debug, Default)]
struct Outcome {
    /// The bytes the receiver read, in order.
    received: Vec<u8>,
    /// Whether the receiver read the end of the stream.
    complete: bool,
    /// When each side's connection closed, and why.
    closed: Vec<(NodeId, Instant, CloseReason)>,
    /// The longest time between two reads that made progress (from the connection's start).
    longest_stall: Duration,
    /// When that stall ended.
    stall_ended: Instant,
    /// The longest time from the moment the path had delivered a datagram each way, after
    /// the last progress, to the next progress: a stall while the path works. (In the
    /// Gilbert-Elliott model a burst lasts a number of datagrams, however sparse they are,
    /// so a burst that falls while a connection only probes lasts long in time; that time
    /// is the path's, not the protocol's.)
    longest_working_stall: Duration,
    sender: Option<ConnectionStats>,
}

/// The client sends `msg` on one stream once connected; the server reads it piece by
/// piece. Runs until the server read it all and the sender saw it acknowledged, both sides
/// closed, or `limit` passed.
fn transfer(sim: Sim, msg: &Bytes, limit: Duration) -> (Sim, Outcome) {
    transfer_through(sim, msg, limit, None, None)
}

/// [`transfer`] over a path that becomes `impaired` once the handshake is done, and is cut
/// until `resumes`: the stall while the path works is counted from then, not from the last
/// progress before the cut.
fn transfer_through(
    mut sim: Sim,
    msg: &Bytes,
    limit: Duration,
    impaired: Option<LinkConfig>,
    resumes: Option<Instant>,
) -> (Sim, Outcome) {
    let out = RefCell::new(Outcome::default());
    let last_progress = RefCell::new(Instant::ZERO);
    // Per direction (client to server, back): datagrams through the link so far, and when
    // the first one after the last progress went through.
    let delivered = RefCell::new([(0u64, None::<Instant>); 2]);
    let resumed = RefCell::new(false);
    let acked = RefCell::new(false);
    sim.connect(C, S);
    let deadline = sim.now() + limit;
    sim.run_until(
        deadline,
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == C => {
                if let Some(link) = impaired {
                    sim.link(C, S, link);
                }
                let ep = sim.endpoint(C);
                let id = ep.open_stream(conn, StreamHeader::default()).unwrap();
                assert_eq!(ep.write(conn, id, msg.clone()), Ok(msg.len()));
                ep.finish(conn, id).unwrap();
            }
            Event::StreamAcked { .. } if node == C => *acked.borrow_mut() = true,
            Event::StreamReadable { conn, stream } if node == S => loop {
                match sim.endpoint(S).read(conn, stream, usize::MAX) {
                    Ok(Read::Data { bytes, .. }) => {
                        let now = sim.now();
                        let mut o = out.borrow_mut();
                        let mut last = last_progress.borrow_mut();
                        if !bytes.is_empty() {
                            if now - *last > o.longest_stall {
                                o.longest_stall = now - *last;
                                o.stall_ended = now;
                            }
                            let mut d = delivered.borrow_mut();
                            let since = resumes.filter(|&r| r <= now).map_or(*last, |r| r.max(*last));
                            let working = d.iter().filter_map(|(_, at)| *at).fold(since, Instant::max);
                            o.longest_working_stall = o.longest_working_stall.max(now - working);
                            for (_, at) in d.iter_mut() {
                                *at = None;
                            }
                            *last = now;
                        }
                        o.received.extend_from_slice(&bytes);
                    }
                    Ok(Read::Finished) => {
                        out.borrow_mut().complete = true;
                        break;
                    }
                    _ => break,
                }
            },
            Event::Closed { reason, .. } => {
                let now = sim.now();
                out.borrow_mut().closed.push((node, now, reason));
            }
            _ => {}
        },
        |sim| {
            let mut d = delivered.borrow_mut();
            if resumes.is_some_and(|r| sim.now() >= r) && !*resumed.borrow() {
                *resumed.borrow_mut() = true;
                for (_, at) in d.iter_mut() {
                    *at = None;
                }
            }
            for (i, (from, to)) in [(C, S), (S, C)].into_iter().enumerate() {
                let count = sim.link_stats(from, to).datagrams;
                if count != d[i].0 {
                    d[i].0 = count;
                    d[i].1 = d[i].1.or(Some(sim.now()));
                }
            }
            let o = out.borrow();
            (o.complete && *acked.borrow()) || o.closed.len() == 2
        },
    );
    let mut out = out.into_inner();
    out.sender = sim
        .endpoint_ref(C)
        .connection_stats(ConnectionHandle::from_index(0));
    (sim, out)
}

fn pair(seed: u64, config: Config, link: LinkConfig) -> Sim {
    let mut sim = Sim::new(seed);
    sim.add_node(config.clone());
    sim.add_node(config);
    sim.link(C, S, link);
    sim
}

/// Issue 29, item 2: at loopback RTTs the old rule, 8 unanswered probes, was spent within
/// seconds. Outages of 5, 8 and 15 s in the middle of a transfer, with the default 30 s
/// idle timeout, are survived, and the transfer goes on at once when the path returns.
#[test]
fn outages_shorter_than_the_idle_timeout_are_survived() {
    for (seed, outage_secs) in [(1, 5), (2, 8), (3, 15)] {
        let mut sim = pair(seed, Config::default(), loopback());
        let start = Instant::ZERO + Duration::from_millis(50);
        let end = start + Duration::from_secs(outage_secs);
        sim.partition(C, S, start, end);
        let msg = body(4 << 20);
        let (sim, out) = transfer(sim, &msg, Duration::from_secs(60));
        assert!(out.closed.is_empty(), "{outage_secs} s: {:?}", out.closed);
        assert!(out.complete && out.received == msg[..], "{outage_secs} s");
        assert!(sim.stats().partitioned > 0);
        // Probes back off to 2 s (Config::max_probe_interval): the first after the path
        // returned finds it.
        let resumed = out.stall_ended - end;
        assert!(
            out.stall_ended > end && resumed <= Duration::from_millis(2_100),
            "{outage_secs} s: progress resumed {resumed:?} after the path returned"
        );
    }
}

/// An outage longer than the idle timeout ends the connection on both sides as
/// unreachable (both were waiting on an answer: the sender for its data, the receiver for
/// its keep-alive), within the idle timeout of the last word heard plus 10%.
#[test]
fn an_outage_longer_than_the_idle_timeout_is_unreachable_on_both_sides() {
    let mut sim = pair(4, Config::default(), loopback());
    let start = Instant::ZERO + Duration::from_millis(50);
    sim.partition(C, S, start, start + Duration::from_secs(60));
    let (_, out) = transfer(sim, &body(4 << 20), Duration::from_secs(60));
    assert!(!out.complete);
    let mut closed = out.closed.clone();
    closed.sort_by_key(|(n, _, _)| *n);
    assert_eq!(
        closed.iter().map(|(n, _, r)| (*n, r.clone())).collect::<Vec<_>>(),
        vec![(C, CloseReason::Unreachable), (S, CloseReason::Unreachable)]
    );
    for (node, at, _) in closed {
        let after = at - start;
        assert!(
            after >= Duration::from_secs(29) && after <= Duration::from_secs(33),
            "node {node} gave up {after:?} into the outage"
        );
    }
}

/// Issue 29, item 3: Gilbert-Elliott loss of about 5% in bursts of 5, 10 and 20 datagrams on
/// average (datagram times at the link's rate, so a burst lasts as long whether the
/// connection sends bulk data or only probes), both ways; each transfer completes.
#[test]
fn burst_loss_is_survived() {
    for (seed, mean_burst) in [(5u64, 5.0), (6, 10.0), (7, 20.0), (8, 20.0)] {
        let leave = 1.0 / mean_burst;
        let link = LinkConfig {
            burst: Some(BurstLoss {
                enter: 0.05 * leave / 0.95,
                leave,
                loss_in_burst: 1.0,
                // A 1200-byte datagram's time at 100 Mbit/s.
                slot: Duration::from_micros(96),
            }),
            ..loopback()
        };
        let msg = body(4 << 20);
        let (_, out) = transfer(
            pair(seed, Config::default(), link),
            &msg,
            Duration::from_secs(300),
        );
        assert!(out.closed.is_empty(), "bursts of {mean_burst}: {:?}", out.closed);
        assert!(out.complete && out.received == msg[..], "bursts of {mean_burst}");
        assert!(out.sender.unwrap().packets_lost > 0);
    }
}

/// Issue 29, item 5: a keep-alive interval shorter than the probe timeout re-armed the
/// probe timer with each PING, so while the path was cut no probe ever fired (and loss
/// detection never ran). Keep-alives now wait while something is in flight.
#[test]
fn keep_alives_do_not_hold_probes_back() {
    let config = Config {
        keep_alive: Some(Duration::from_millis(5)),
        ..Config::default()
    };
    let mut sim = pair(9, config, LinkConfig::default());
    let start = Instant::ZERO + Duration::from_millis(100);
    sim.partition(C, S, start, start + Duration::from_secs(3));
    let msg = body(1 << 20);
    let (_, out) = transfer(sim, &msg, Duration::from_secs(30));
    assert!(out.complete && out.received == msg[..]);
    let stats = out.sender.unwrap();
    assert!(stats.probes >= 2, "{stats:?}");
    assert!(stats.persistent_congestion >= 1, "{stats:?}");
}

/// Issue 34 and RFC 8899 (DPLPMTUD): a path that drops datagrams above 1300 bytes while
/// both ends allow 1452. The connection starts at 1200 bytes and finds the path's size by
/// probing with padded PINGs: it settles within one search step below 1300, loses no data
/// to the narrow hop (the probes carry none), and never takes it for a black hole.
#[test]
fn a_narrow_path_is_found_by_probing_and_costs_no_data() {
    let link = LinkConfig {
        mtu: 1300,
        ..LinkConfig::default()
    };
    let msg = body(1 << 20);
    let (sim, out) = transfer(pair(10, Config::default(), link), &msg, Duration::from_secs(60));
    assert!(out.closed.is_empty(), "{:?}", out.closed);
    assert!(out.complete && out.received == msg[..]);
    let stats = out.sender.unwrap();
    assert_eq!(stats.black_holes, 0, "{stats:?}");
    assert!((1285..=1300).contains(&stats.path_mtu), "{stats:?}");
    assert_eq!(
        stats.bytes_retransmitted, 0,
        "no data went in a datagram too large: {stats:?}"
    );
    assert_eq!(
        stats.congestion_events, 0,
        "a lost probe is no congestion: {stats:?}"
    );
    assert!(sim.stats().too_big > 0, "the probes above 1300 were dropped");
}

/// A clean path carries the default largest datagram: the search confirms 1452 bytes with
/// its first probe, and data goes at that size.
#[test]
fn a_clean_path_rises_to_the_largest_datagram_at_once() {
    let msg = body(1 << 20);
    let (sim, out) = transfer(
        pair(10, Config::default(), loopback()),
        &msg,
        Duration::from_secs(60),
    );
    assert!(out.complete && out.received == msg[..]);
    let stats = out.sender.unwrap();
    assert_eq!(stats.path_mtu, 1452, "{stats:?}");
    assert_eq!(sim.stats().too_big, 0);
    // 1 MiB in 1452-byte datagrams: well under the 1200-byte count.
    assert!(stats.datagrams_sent < (1 << 20) / 1300, "{stats:?}");
    let off = Config {
        max_datagram_size: 1200,
        ..Config::default()
    };
    let (_, out) = transfer(pair(10, off, loopback()), &msg, Duration::from_secs(60));
    let stats = out.sender.unwrap();
    assert_eq!(stats.path_mtu, 1200, "1200 turns the search off: {stats:?}");
    assert!(stats.datagrams_sent > (1 << 20) / 1200, "{stats:?}");
}

/// Issue 29, item 5 and RFC 8899 §4.3, §5.1.2: a path whose size shrinks under a live
/// connection (a route change onto a tunnel) drops every large datagram. Black-hole
/// detection falls back to 1200 bytes, and the search finds the narrower size at once;
/// once the path heals, the search, done short of the maximum, tries it again 600 s later
/// and takes the connection back to 1452, and the probes it lost meanwhile cost it no
/// congestion event.
#[test]
fn a_path_that_narrows_is_detected_and_the_large_size_is_tried_again() {
    // 150 kbit/s: the transfer (about 900 s) outlasts the raise timer.
    let wide = LinkConfig {
        bandwidth: Some(150_000),
        ..LinkConfig::default()
    };
    let narrow = LinkConfig { mtu: 1300, ..wide };
    let msg = body(16 << 20);
    let narrow_at = Instant::ZERO + Duration::from_secs(20);
    let heal_at = Instant::ZERO + Duration::from_secs(300);
    let (log, stats) = progress_of(
        pair(12, Config::default(), wide),
        &msg,
        Duration::from_secs(1_200),
        &[(narrow_at, narrow), (heal_at, wide)],
    );
    assert_eq!(stats[0].path_mtu, 1452, "large before: {:?}", stats[0]);
    assert!(
        stats[1].black_holes == 1 && (1285..=1300).contains(&stats[1].path_mtu),
        "fell back, and found the narrower size, before the path healed: {:?}",
        stats[1]
    );
    let (end, _) = log[log.len() - 1];
    assert!(
        end > heal_at + Duration::from_secs(400),
        "the transfer outlasted the raise timer"
    );
    assert!(
        stats[2].black_holes == 1 && stats[2].path_mtu == 1452,
        "large again: {:?}",
        stats[2]
    );
    let congestion_events = stats[2].congestion_events - stats[1].congestion_events;
    assert!(
        congestion_events < 5,
        "{congestion_events} congestion events after the fallback"
    );
}

/// RFC 8899 §5.2 on a path that narrows and stays narrow: after the black hole's fallback to
/// 1200 bytes the search starts over at once, below the size that failed, and finds the
/// narrower size within 30 s: the connection is not left at 1200 bytes (before the
/// forty-seventh round it waited the 600 s raise timer for that).
#[test]
fn after_a_black_hole_a_path_that_stays_narrow_is_searched_again() {
    let wide = LinkConfig {
        bandwidth: Some(150_000),
        ..LinkConfig::default()
    };
    let narrow = LinkConfig { mtu: 1300, ..wide };
    let msg = body(2 << 20);
    let narrow_at = Instant::ZERO + Duration::from_secs(20);
    let (_, stats) = progress_of(
        pair(13, Config::default(), wide),
        &msg,
        Duration::from_secs(300),
        &[(narrow_at, narrow), (narrow_at + Duration::from_secs(30), narrow)],
    );
    assert_eq!(stats[0].path_mtu, 1452, "large before: {:?}", stats[0]);
    assert!(
        stats[1].black_holes == 1 && (1285..=1300).contains(&stats[1].path_mtu),
        "the narrower size found within 30 s: {:?}",
        stats[1]
    );
}

/// Random loss of large datagrams alone does not look like a black hole: small ones are
/// lost as often, and large ones keep getting through.
#[test]
fn random_loss_is_not_taken_for_a_black_hole() {
    let config = Config::default();
    for seed in 11..14 {
        let link = LinkConfig {
            loss: 0.1,
            ..loopback()
        };
        let msg = body(1 << 20);
        let (_, out) = transfer(pair(seed, config.clone(), link), &msg, Duration::from_secs(120));
        assert!(out.complete && out.received == msg[..]);
        assert_eq!(out.sender.unwrap().black_holes, 0, "seed {seed}");
    }
}

/// The sweep's size: `WEIR_SWEEP_SEEDS` seeds (default 120, so that it fits in CI; the
/// closing note of issue 29 gives a run of thousands).
fn sweep_seeds() -> u64 {
    std::env::var("WEIR_SWEEP_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

/// Longest stretch without progress the sweep accepts while the path delivers: a probe
/// period at its cap (2 s) several times over, for probes or their acknowledgements lost in
/// a row at 30% loss or in a burst.
const STALL_BOUND: Duration = Duration::from_secs(12);

/// Over seeds, on a path impaired once the handshake is done (the handshake under loss is
/// `handshake.rs`'s): loss 0-30%, Gilbert-Elliott bursts, reordering and duplication, an outage
/// shorter than the idle timeout, or a path that drops large datagrams (links need a rate
/// here: the sim counts deliveries at the bottleneck). Every transfer completes, no
/// connection closes, and the longest stretch without progress while the path delivers
/// each way stays within [`STALL_BOUND`].
#[test]
fn sweep_every_transfer_completes_and_never_stalls_long() {
    let mut worst = (Duration::ZERO, 0);
    for seed in 0..sweep_seeds() {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let kind = next(4);
        let mut link = LinkConfig {
            delay: Duration::from_micros(100 + next(20_000)),
            bandwidth: Some(20_000_000 + next(80) * 1_000_000),
            reorder: (next(10) as f64) / 100.0,
            duplicate: (next(5) as f64) / 100.0,
            ..LinkConfig::default()
        };
        let config = Config::default();
        let mut outage = None;
        match kind {
            0 => link.loss = (next(31) as f64) / 100.0,
            1 => {
                let leave = 1.0 / (5 + next(16)) as f64;
                link.burst = Some(BurstLoss {
                    enter: 0.05 * leave / 0.95,
                    leave,
                    loss_in_burst: 1.0,
                    slot: Duration::from_micros(1200 * 8 * 1_000_000 / link.bandwidth.unwrap_or(1)),
                });
            }
            2 => outage = Some(Duration::from_millis(1_000 + next(19_000))),
            _ => {
                link.mtu = 1280 + next(150) as usize;
                link.loss = (next(5) as f64) / 100.0;
            }
        }
        // A narrow hop is the path's from the start (path MTU discovery finds it during the
        // handshake's first round trips); a path that narrows under a live connection is
        // `a_path_that_narrows_is_detected_and_the_large_size_is_tried_again`'s.
        let clean = LinkConfig {
            delay: link.delay,
            bandwidth: link.bandwidth,
            mtu: link.mtu,
            ..LinkConfig::default()
        };
        let mut sim = pair(seed, config, clean);
        let start = Instant::ZERO + Duration::from_millis(30 + next(200));
        if let Some(d) = outage {
            sim.partition(C, S, start, start + d);
        }
        let msg = body(256 << 10);
        let resumes = outage.map(|d| start + d);
        let (_, out) = transfer_through(sim, &msg, Duration::from_secs(240), Some(link), resumes);
        let what = format!("seed {seed}: {link:?}, outage {outage:?}");
        assert!(out.closed.is_empty(), "{what}: {:?}", out.closed);
        assert!(
            out.complete && out.received == msg[..],
            "{what}: {} bytes",
            out.received.len()
        );
        let stall = out.longest_working_stall;
        assert!(stall <= STALL_BOUND, "{what}: no progress for {stall:?}");
        if stall > worst.0 {
            worst = (stall, seed);
        }
    }
    eprintln!("longest stall {:?} (seed {})", worst.0, worst.1);
}

/// The receiver's progress over time (when, bytes read so far) in a one-message transfer,
/// and the sender's stats at the end; the path between them becomes each `changes` link at
/// its instant.
fn progress_of(
    mut sim: Sim,
    msg: &Bytes,
    limit: Duration,
    changes: &[(Instant, LinkConfig)],
) -> (Vec<(Instant, u64)>, Vec<ConnectionStats>) {
    let log = RefCell::new(vec![(Instant::ZERO, 0u64)]);
    let done = RefCell::new(false);
    sim.connect(C, S);
    let deadline = sim.now() + limit;
    let mut on_event = |sim: &mut Sim, node, event| match event {
        Event::Connected { conn, .. } if node == C => {
            let ep = sim.endpoint(C);
            let id = ep.open_stream(conn, StreamHeader::default()).unwrap();
            assert_eq!(ep.write(conn, id, msg.clone()), Ok(msg.len()));
            ep.finish(conn, id).unwrap();
        }
        Event::StreamReadable { conn, stream } if node == S => loop {
            match sim.endpoint(S).read(conn, stream, usize::MAX) {
                Ok(Read::Data { bytes, .. }) => {
                    let now = sim.now();
                    let mut l = log.borrow_mut();
                    let total = l.last().map_or(0, |&(_, t)| t) + bytes.len() as u64;
                    l.push((now, total));
                }
                Ok(Read::Finished) => {
                    *done.borrow_mut() = true;
                    break;
                }
                _ => break,
            }
        },
        _ => {}
    };
    let stats = |sim: &Sim| {
        sim.endpoint_ref(C)
            .connection_stats(ConnectionHandle::from_index(0))
            .unwrap()
    };
    let mut seen = Vec::new();
    for (at, link) in changes {
        sim.run_until(*at, &mut on_event, |_| *done.borrow());
        seen.push(stats(&sim));
        sim.link(C, S, *link);
    }
    sim.run_until(deadline, &mut on_event, |_| *done.borrow());
    assert!(done.into_inner(), "the transfer completed");
    seen.push(stats(&sim));
    (log.into_inner(), seen)
}

/// Bytes read between `from` and `to`.
fn read_between(log: &[(Instant, u64)], from: Instant, to: Instant) -> u64 {
    let at = |t: Instant| {
        log.iter()
            .take_while(|&&(when, _)| when <= t)
            .last()
            .map_or(0, |&(_, b)| b)
    };
    at(to) - at(from)
}

/// Issue 29, "recovery resumes at full speed when the path returns": an outage is not
/// congestion. A bulk transfer on a long path (20 Mbit/s, 150 ms RTT, a queue of one
/// bandwidth-delay product) loses the path for 3 s. Once progress resumes, slow start
/// rebuilds the window in log2(window) round trips, and the second after that moves at least
/// 90% of what a second before the outage moved. Before: the probes lost in the outage ended
/// slow start at the minimum window, and LEDBAT crawled back at one datagram per RTT (74 KB
/// in that second against 2.4 MB).
///
/// Progress resumes within `max_probe_interval` (2 s) and one and a half RTTs of the path's
/// return: the next probe finds the path up to 2 s after it returned, and carries new data;
/// its ACK makes the sender retransmit the data the outage lost, which the reader waits for.
/// Where in that span it falls depends on the probes' timing before the outage (printed with
/// `--nocapture`): 2.105 s for BBR since the handshake gives the first RTT sample, its last
/// probe before the path returned having gone just before it; within 2.1 s before.
///
/// Over five seeds: with seeds 3, 6, 8 and 10 LEDBAT moved 0.60 of its rate in that second
/// (issue 35's thirteenth round), its post-outage slow start followed two RTTs later by
/// LEDBAT++'s initial slowdown, meant for the connection's first slow start only
/// (`congestion/ledbat`).
#[test]
fn after_an_outage_the_transfer_regains_its_rate_at_once() {
    for ((name, congestion), seed) in [
        ("bbr", CongestionAlgorithm::Bbr),
        ("ledbat", CongestionAlgorithm::Ledbat(LedbatConfig::default())),
        ("newreno", CongestionAlgorithm::NewReno),
    ]
    .into_iter()
    .flat_map(|c| [7, 3, 6, 8, 10].map(|seed| (c.clone(), seed)))
    {
        // A 4 MiB initial receive window, as when the bound was set: with 1 MiB (the default
        // since issue 30) NewReno's first read after the path returned came 2.2 s after it,
        // past the bound; flow control, not congestion control, is then part of what this
        // measures.
        let config = Config {
            congestion,
            send_buffer: 64 << 20,
            send_buffer_total: 64 << 20,
            receive_window: 4 << 20,
            ..Config::default()
        };
        let link = LinkConfig {
            delay: Duration::from_millis(75),
            bandwidth: Some(20_000_000),
            queue_bytes: 375_000,
            ..LinkConfig::default()
        };
        let mut sim = pair(seed, config, link);
        let (cut, back) = (
            Instant::ZERO + Duration::from_secs(8),
            Instant::ZERO + Duration::from_secs(11),
        );
        sim.partition(C, S, cut, back);
        let msg = body(40 << 20);
        let (log, _) = progress_of(sim, &msg, Duration::from_secs(120), &[]);
        let second = Duration::from_secs(1);
        let before = read_between(&log, cut - second - second, cut - second);
        let resumed = log
            .iter()
            .map(|&(when, _)| when)
            .find(|&when| when > back)
            .unwrap();
        let rtt = link.delay.saturating_mul(2);
        let bound = Config::default().max_probe_interval + rtt + link.delay;
        println!(
            "{name}, seed {seed}: resumed {:?} after the path returned",
            resumed - back
        );
        assert!(
            resumed - back <= bound,
            "{name}, seed {seed}: resumed {:?} late",
            resumed - back
        );
        let after = read_between(&log, resumed + second, resumed + second + second);
        assert!(
            after * 10 >= before * 9,
            "{name}, seed {seed}: {before} bytes in a second before the outage, {after} in the second second after"
        );
    }
}

/// The buffer a datagram is written into is not the path's limit. A driver may hand out
/// buffers of the current datagram size (the later datagrams of a GSO batch); one such
/// buffer, offered when a probe was due, used to end the search at the size already
/// confirmed and put it off for RAISE_AFTER (ten minutes at 1200 bytes; seen as a flaky
/// loopback test under CPU contention, where batches are longer). Two endpoints in memory:
/// the client's datagrams get 1200-byte buffers until a few turns after it connected (when
/// its first probe is due), then 1500-byte ones, and the search still reaches 1452.
#[test]
fn a_short_buffer_does_not_end_the_path_mtu_search() {
    use bytes::BytesMut;
    use std::net::SocketAddr;
    use weir_core::Endpoint;
    let addrs: [SocketAddr; 2] = [
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:4000".parse().unwrap(),
    ];
    let mut eps = [
        Endpoint::new(Config::default(), 1),
        Endpoint::new(Config::default(), 2),
    ];
    let mut now = Instant::ZERO;
    let conn = eps[0].connect(now, addrs[1]).unwrap();
    let (mut connected, mut short_turns) = (false, 0);
    for _ in 0..10_000 {
        for i in 0..2 {
            // The client's buffers are short until a few turns after it connected.
            let len = if i == 0 && short_turns < 3 { 1200 } else { 1500 };
            let mut buf = vec![0u8; len];
            while let Some(t) = eps[i].poll_transmit(now, &mut buf) {
                let to = addrs.iter().position(|a| *a == t.destination).unwrap();
                eps[to].handle_datagram(now, addrs[i], BytesMut::from(&buf[..t.len]));
            }
            if i == 0 && connected {
                short_turns += 1;
            }
            while let Some(event) = eps[i].poll_event() {
                if let Event::Connected { .. } = event {
                    connected |= i == 0;
                }
            }
        }
        let stats = eps[0].connection_stats(conn).unwrap();
        if stats.path_mtu == 1452 {
            return;
        }
        // Data keeps the connection busy, so the search has packets to probe with.
        if connected {
            let _ = eps[0].send_message(conn, None, Bytes::from(vec![1u8; 4000]));
        }
        if let Some(at) = eps.iter().filter_map(Endpoint::poll_timeout).min() {
            now = now.max(at);
            eps.iter_mut().for_each(|ep| ep.handle_timeout(now));
        }
    }
    panic!(
        "the search never reached 1452: {:?}",
        eps[0].connection_stats(conn)
    );
}

/// One end keeps a quiet connection alive, not both (spec §8, Liveness): a PING heard puts
/// the hearer's own off, and its acknowledgement is what keeps its NAT's mapping. Over
/// 100 s with nothing to send and the default 10 s keep-alive, 20 datagrams crossed, a PING
/// and its acknowledgement every 10 s; 40 when both ends pinged.
#[test]
fn one_end_keeps_a_quiet_connection_alive() {
    let mut sim = pair(1, Config::default(), loopback());
    sim.connect(C, S);
    let (Some(_), Some(_)) = sim.run_until_connected(C, S) else {
        panic!("not connected");
    };
    sim.run_for(Duration::from_secs(1), |_, _, _| {});
    let sent = |sim: &Sim| [C, S].map(|n| sim.endpoint_ref(n).stats().datagrams_sent);
    let before = sent(&sim);
    let closed = RefCell::new(Vec::new());
    sim.run_for(Duration::from_secs(100), |_, n, e| {
        if let Event::Closed { reason, .. } = e {
            closed.borrow_mut().push((n, reason));
        }
    });
    let after = sent(&sim);
    let (client, server) = (after[0] - before[0], after[1] - before[1]);
    println!("100 s quiet: client sent {client} datagrams, server {server}");
    assert!(closed.borrow().is_empty(), "{:?}", closed.borrow());
    assert!(
        client + server <= 24,
        "client sent {client} datagrams, server {server}"
    );
}

/// An outage in a connection's first round trips, while BBR is in Startup and NewReno in
/// slow start (cut 0.3 s in, for 3.7 s; 40 Mbit/s, 80 ms round trip, a queue of 64 KiB):
/// once progress resumes, the second after the first moves at least 90% of what the same
/// transfer with no outage moved in its second second. Found over real sockets by
/// weir-tokio's soak (`adapters/tokio/tests/soak.rs`, seed 260): 1.4 MB took 5 s after such an
/// outage. Before, BBR took the outage's losses, declared by the first ACK after it, for
/// a congestive round: Startup ended and its flight was capped at a fraction of the
/// little it had sent, and it moved 17% of the rate in that second;
/// NewReno's threshold was set to its window at the cut, and it climbed back at a datagram
/// per round trip (20%). tests/congestion.md, "An outage in Startup".
#[test]
fn after_an_outage_in_startup_the_transfer_regains_its_rate_at_once() {
    for ((name, congestion), seed) in [
        ("bbr", CongestionAlgorithm::Bbr),
        ("newreno", CongestionAlgorithm::NewReno),
    ]
    .into_iter()
    .flat_map(|c| [7, 3].map(|seed| (c.clone(), seed)))
    {
        let config = Config {
            congestion,
            send_buffer: 64 << 20,
            send_buffer_total: 64 << 20,
            ..Config::default()
        };
        let link = LinkConfig {
            delay: Duration::from_millis(40),
            bandwidth: Some(40_000_000),
            queue_bytes: 64 << 10,
            ..LinkConfig::default()
        };
        let second = Duration::from_secs(1);
        let msg = body(16 << 20);
        // With no outage: the second second of the transfer.
        let (log, _) = progress_of(
            pair(seed, config.clone(), link),
            &msg,
            Duration::from_secs(60),
            &[],
        );
        let start = log[0].0;
        let before = read_between(&log, start + second, start + second + second);
        let mut sim = pair(seed, config, link);
        let (cut, back) = (
            Instant::ZERO + Duration::from_millis(300),
            Instant::ZERO + Duration::from_millis(4_000),
        );
        sim.partition(C, S, cut, back);
        let (log, _) = progress_of(sim, &msg, Duration::from_secs(60), &[]);
        let resumed = log
            .iter()
            .map(|&(when, _)| when)
            .find(|&when| when > back)
            .unwrap();
        let after = read_between(&log, resumed + second, resumed + second + second);
        println!("{name}, seed {seed}: {before} bytes in the second second, {after} in the second after the outage");
        assert!(
            after * 10 >= before * 9,
            "{name}, seed {seed}: {before} bytes in the second second with no outage, {after} in the second second after it"
        );
    }
}
