//! Throughput over a path whose delay jitters (Wi-Fi, cellular). Either each datagram waits
//! an extra 0 to `jitter` after the bottleneck, so datagrams arrive out of order by up to
//! the jitter: loss detection must learn that reordering (RFC 9002 §6.1 allows adapting both
//! thresholds) and the controllers must keep the link. Or the path stalls now and then for
//! up to `jitter` and then delivers what it held at once, in order (a Wi-Fi hop's medium
//! access and aggregation: `JitterOrdering::InOrder`): the bursts must not make a controller
//! overrun the bottleneck's queue.

use std::cell::RefCell;

use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::time::{Duration, Instant};
use weir_core::{Config, ConnectionStats, Event, Read};
use weir_sim::{JitterOrdering, LinkConfig, Sim};

fn config() -> Config {
    Config {
        stream_receive_window: 64 << 20,
        receive_window: 64 << 20,
        send_buffer: 64 << 20,
        ..Config::default()
    }
}

/// A path: its round trip without jitter, in ms, and its bottleneck, in Mbit/s.
#[derive(Clone, Copy)]
struct Path {
    rtt_ms: u64,
    mbit: u64,
}

/// The suite's first path: 40 ms and 20 Mbit/s.
const WIDE_AREA: Path = Path { rtt_ms: 40, mbit: 20 };
/// A local network's: 4 ms and 100 Mbit/s, whose Wi-Fi hop may delay a datagram by more
/// than the whole round trip.
const LOCAL: Path = Path { rtt_ms: 4, mbit: 100 };

/// 8 MiB over `path` (a queue of one BDP) with `jitter` on the data's way, and with
/// stalls ([`JitterOrdering::InOrder`]) on the ACKs' way too: the goodput from a quarter to
/// nine tenths received, as a share of the link, the sender's statistics, and the
/// datagrams the network dropped.
fn transfer(
    cc: CongestionAlgorithm,
    path: Path,
    jitter: Duration,
    ordering: JitterOrdering,
) -> (f64, ConnectionStats, u64) {
    let sent = send(cc, path, jitter, ordering, 8 << 20);
    let [(from, from_bytes), (to, to_bytes)] = sent.marks;
    let seconds = (to - from).as_micros() as f64 / 1e6;
    let share = (to_bytes - from_bytes) as f64 * 8.0 / seconds / (path.mbit as f64 * 1e6);
    (share, sent.stats, sent.dropped)
}

/// What [`send`] measured.
struct Sent {
    /// When a quarter and nine tenths of the message had been received, and the bytes then.
    marks: [(Instant, usize); 2],
    /// The sender's statistics.
    stats: ConnectionStats,
    /// The datagrams the network dropped.
    dropped: u64,
    /// From `Connected` to the last byte received, in seconds.
    took: f64,
}

/// A message of `size` bytes over `path` as [`transfer`] sends it.
fn send(
    cc: CongestionAlgorithm,
    path: Path,
    jitter: Duration,
    ordering: JitterOrdering,
    size: usize,
) -> Sent {
    let Path { rtt_ms, mbit } = path;
    let mut sim = Sim::new(1);
    let client = sim.add_node(config());
    let server = sim.add_node(config());
    let mut back = LinkConfig {
        delay: Duration::from_millis(rtt_ms / 2),
        ordering,
        ..LinkConfig::default()
    };
    let forward = LinkConfig {
        bandwidth: Some(mbit * 1_000_000),
        queue_bytes: (mbit * 1_000_000 / 8 * rtt_ms / 1000) as usize,
        jitter,
        ..back
    };
    if ordering == JitterOrdering::InOrder {
        back.jitter = jitter;
    }
    sim.link_one_way(client, server, forward);
    sim.link_one_way(server, client, back);
    let conn = sim.connect_with(client, server, cc);
    let got = RefCell::new(0usize);
    let marks = RefCell::new(Vec::<(Instant, usize)>::new());
    let body = bytes::Bytes::from(vec![0x5au8; size]);
    let connected = RefCell::new(Instant::ZERO);
    let done = sim.run_until(
        Instant::ZERO + Duration::from_secs(600),
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == client => {
                *connected.borrow_mut() = sim.now();
                sim.endpoint(client)
                    .send_message(conn, None, body.clone())
                    .unwrap();
            }
            Event::StreamReadable { conn, stream } if node == server => {
                while let Ok(Read::Data { bytes, .. }) = sim.endpoint(server).read(conn, stream, usize::MAX) {
                    *got.borrow_mut() += bytes.len();
                }
                let got = *got.borrow();
                let mut marks = marks.borrow_mut();
                let next = [size / 4, size * 9 / 10].get(marks.len()).copied();
                if next.is_some_and(|n| got >= n) {
                    marks.push((sim.now(), got));
                }
            }
            _ => {}
        },
        |_| *got.borrow() >= size,
    );
    assert!(done, "{} of {size} bytes in 600 s", got.borrow());
    let marks = marks.take();
    let net = sim.stats();
    Sent {
        marks: [marks[0], marks[1]],
        stats: sim.endpoint_ref(client).connection_stats(conn).unwrap(),
        dropped: net.lost + net.queue_drops,
        took: (sim.now() - connected.take()).as_micros() as f64 / 1e6,
    }
}

/// The three controllers, each with its name.
fn controllers() -> [(CongestionAlgorithm, &'static str); 3] {
    [
        (CongestionAlgorithm::Bbr, "BBR"),
        (CongestionAlgorithm::Ledbat(LedbatConfig::default()), "LEDBAT"),
        (CongestionAlgorithm::NewReno, "NewReno"),
    ]
}

/// With 10 and 20 ms of jitter on a 40 ms path, every controller keeps 85% of the link.
/// Before the time threshold adapted, every datagram delayed past 9/8 RTT was declared lost,
/// a quarter of all datagrams were resent for nothing, and BBR's estimate fell to a tenth of
/// the link (measured: 23.9% and 5.5%). NewReno kept 38.8% and 33.6% until a reduction whose
/// losses all arrived after all was undone (`new_reno`) and the server kept the data that
/// overtook its NOISE_FINISH (whose loss no undo could take back: `endpoint::early`).
/// BBR and LEDBAT resend under 2% of the message; NewReno, which finds the link's rate by
/// filling the queue, resends what the queue drops, but under 1% of the datagrams for
/// nothing.
#[test]
fn the_link_stays_full_when_the_delay_jitters() {
    let mut failed = Vec::new();
    for (cc, name) in controllers() {
        for jitter_ms in [10, 20] {
            let (share, stats, dropped) = transfer(
                cc.clone(),
                WIDE_AREA,
                Duration::from_millis(jitter_ms),
                JitterOrdering::Reorders,
            );
            println!(
                "{name}, {jitter_ms} ms jitter: {:.1}% of the link, {} lost ({} dropped, {} spurious found), {} bytes resent",
                share * 100.0,
                stats.packets_lost,
                dropped,
                stats.spurious_losses,
                stats.bytes_retransmitted
            );
            if share < 0.85 {
                failed.push(format!("{name}, {jitter_ms} ms: {share} of the link"));
            }
            // Resent: under 2% of the 8 MiB (a quarter before).
            if cc != CongestionAlgorithm::NewReno && stats.bytes_retransmitted >= 160_000 {
                failed.push(format!("{name}, {jitter_ms} ms: {stats:?}"));
            }
            // Declared lost, and not dropped: resent for nothing (of some 7,000 datagrams).
            let for_nothing = stats.packets_lost.saturating_sub(dropped);
            if for_nothing >= 70 {
                failed.push(format!("{name}, {jitter_ms} ms: {for_nothing} lost for nothing"));
            }
        }
    }
    // Checked once every row is printed.
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A local path (4 ms, 100 Mbit/s) whose datagrams are delayed by up to 10 or 20 ms, more
/// than the round trip, as a Wi-Fi hop's can be. Two faults resent a fifth of all
/// datagrams for nothing here, and BBR kept 16% of the link at 10 ms (4% at 20):
/// - The time threshold grew by an eighth of an RTT per round trip, to at most two RTTs,
///   and RTT samples, taken from the newest packet acknowledged, are the ones that were not
///   delayed: the threshold stayed far below how late a datagram came. It now grows at once
///   to how late the late one was (`recovery`), up to eight RTTs.
/// - A datagram that arrived after the receiver's ACKs had moved past it (their frame seen by
///   the peer, RFC 9000 §13.2.4) was never reported, so its sender never learned it was
///   only late, and resent it (`recovery::received`).
///
/// At 20 ms BBR still keeps only a third of the link: its window is two bandwidth-delay
/// products at the *lowest* RTT, 4 ms, while a datagram takes up to 24 (printed, not
/// asserted; tests/congestion.md, "A path whose delay jitters"). NewReno keeps 85% at 10
/// ms since its reductions for late datagrams are undone and the server keeps the data that
/// overtakes its NOISE_FINISH (30.5% before).
#[test]
fn jitter_beyond_the_rtt_is_learned_not_resent() {
    let mut failed = Vec::new();
    for (cc, name) in controllers() {
        for jitter_ms in [10, 20] {
            let (share, stats, dropped) = transfer(
                cc.clone(),
                LOCAL,
                Duration::from_millis(jitter_ms),
                JitterOrdering::Reorders,
            );
            // Declared lost, and not dropped: resent for nothing.
            let for_nothing = stats.packets_lost.saturating_sub(dropped);
            println!(
                "{name}, {jitter_ms} ms jitter on 4 ms: {:.1}% of the link, {} lost ({} dropped, {} spurious found), {} bytes resent",
                share * 100.0,
                stats.packets_lost,
                dropped,
                stats.spurious_losses,
                stats.bytes_retransmitted
            );
            // Under 1% of the 7,000 datagrams, whatever the controller.
            if for_nothing >= 70 {
                failed.push(format!("{name}, {jitter_ms} ms: {for_nothing} lost for nothing"));
            }
            let floor = match cc {
                CongestionAlgorithm::Bbr => 0.85,
                CongestionAlgorithm::NewReno => 0.85,
                _ => 0.0,
            };
            if jitter_ms == 10 && share < floor {
                failed.push(format!("{name}, {jitter_ms} ms: {share} of the link"));
            }
        }
    }
    // Checked once every row is printed.
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A path that stalls now and then for up to 2, 5 or 10 ms and then delivers what it held
/// at once and in order, both ways (a Wi-Fi hop waiting for the medium, then sending an
/// aggregate). The bursts make rate samples run faster than the link, and BBR's estimate,
/// the highest of them, settled above it: cruising at the estimate filled the one-BDP queue
/// until it dropped. A cruise round with a queue standing all round now paces at 9/10
/// (`bbr`). BBR keeps 90% of the link on both paths and, on the 40 ms one, the queue drops
/// under 0.6% of its datagrams (before: 51 and 88 of 6,000 at 5 and 10 ms; now 12 and 25).
/// On the 4 ms path, whose queue is 4 ms deep, it still drops 1.8-3.2% (printed, as are the
/// other controllers, which keep 55% of that path at 10 ms: tests/congestion.md, "A path
/// that stalls"). Every controller sees no datagram declared lost that then arrives: the
/// stalls keep the order, end to end.
#[test]
fn a_path_that_stalls_is_not_overrun() {
    let mut failed: Vec<String> = Vec::new();
    for (cc, name) in controllers() {
        for (path, path_name) in [(WIDE_AREA, "40 ms"), (LOCAL, "4 ms")] {
            for stall_ms in [2, 5, 10] {
                let (share, stats, dropped) = transfer(
                    cc.clone(),
                    path,
                    Duration::from_millis(stall_ms),
                    JitterOrdering::InOrder,
                );
                println!(
                    "{name}, {path_name}, stalls of {stall_ms} ms: {:.1}% of the link, {} dropped of {} sent, {} lost for nothing",
                    share * 100.0,
                    dropped,
                    stats.datagrams_sent,
                    stats.spurious_losses,
                );
                // Stalls keep the order: no datagram is overtaken, so none is declared lost
                // and then acknowledged.
                if stats.spurious_losses > 0 {
                    failed.push(format!("{name}, {path_name}, {stall_ms} ms: {stats:?}"));
                }
                if cc != CongestionAlgorithm::Bbr {
                    continue;
                }
                if share < 0.9 {
                    failed.push(format!("{name}, {path_name}, {stall_ms} ms: {share} of the link"));
                }
                if path.rtt_ms == WIDE_AREA.rtt_ms && dropped * 1000 >= stats.datagrams_sent * 6 {
                    failed.push(format!("{name}, {path_name}, {stall_ms} ms: {dropped} dropped"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Printed, not asserted (tests/congestion.md, "What the controllers still get wrong"): how
/// long 2 and 16 MiB take, mostly Startup for the first, with reordering jitter of 0 to 20
/// ms on paths of 100 Mbit/s and 40 or 100 ms, and 20 Mbit/s and 40 ms.
#[test]
#[ignore = "figures: cargo test --release -p weir-sim --test suites jitter::startup -- --ignored --nocapture"]
fn startup_under_jitter_figures() {
    let paths = [
        Path {
            rtt_ms: 40,
            mbit: 100,
        },
        WIDE_AREA,
        Path {
            rtt_ms: 100,
            mbit: 100,
        },
    ];
    for path in paths {
        for (cc, name) in [
            (CongestionAlgorithm::Bbr, "BBR"),
            (CongestionAlgorithm::NewReno, "NewReno"),
        ] {
            for jitter_ms in [0, 2, 5, 10, 20] {
                let jitter = Duration::from_millis(jitter_ms);
                let took = [2usize << 20, 16 << 20]
                    .map(|size| send(cc.clone(), path, jitter, JitterOrdering::Reorders, size).took);
                println!(
                    "{name}, {} Mbit/s, {} ms, {jitter_ms} ms of jitter: 2 MiB in {:.3} s, 16 MiB in {:.3} s",
                    path.mbit, path.rtt_ms, took[0], took[1]
                );
            }
        }
    }
}
