//! A path whose rate is enforced by a policer (weir-sim): a token bucket at an ISP's or a
//! mobile carrier's edge that drops what exceeds a subscriber's rate instead of queueing
//! it. A sender above the rate sees no delay, only loss. Method and figures:
//! tests/congestion.md, "Policers".

mod figures;

use crate::common;

use std::cell::RefCell;

use bytes::Bytes;
use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::time::{Duration, Instant};
use weir_core::{Event, Priority, Read};
use weir_sim::{LinkConfig, NodeId, Policer, Sim};

use common::{run_to, run_to_time, Traffic};

/// The simulation's seed (the figures in the docs are over seeds 1-3, changed here by
/// hand).
const SEED: u64 = 1;

/// A policed path: the link's own rate (its buffer is one BDP, at least 64 kB), the rate
/// the policer enforces, its bucket, and the RTT.
#[derive(Clone, Copy, Debug)]
struct Path {
    link_mbit: u64,
    policed_mbit: u64,
    burst: usize,
    rtt_ms: u64,
    /// Random loss on the link, ahead of the policer (a mobile path's).
    loss: f64,
    /// Delay added to each datagram on the link, drawn up to this (reordering them).
    jitter: Duration,
}

impl Path {
    const fn new(link_mbit: u64, policed_mbit: u64, burst: usize, rtt_ms: u64) -> Path {
        Path {
            link_mbit,
            policed_mbit,
            burst,
            rtt_ms,
            loss: 0.0,
            jitter: Duration::ZERO,
        }
    }

    /// The path with `loss` random loss ahead of its policer.
    const fn lossy(self, loss: f64) -> Path {
        Path { loss, ..self }
    }

    /// The path with up to `ms` of delay jitter ahead of its policer.
    const fn jittery(self, ms: u64) -> Path {
        Path {
            jitter: Duration::from_millis(ms),
            ..self
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} Mbit/s policed to {} Mbit/s, a {} kB bucket, {} ms",
            self.link_mbit,
            self.policed_mbit,
            self.burst / 1000,
            self.rtt_ms
        )?;
        if self.loss > 0.0 {
            write!(f, ", {}% random loss", self.loss * 100.0)?;
        }
        if self.jitter > Duration::ZERO {
            write!(f, ", {} ms of jitter", self.jitter.as_millis())?;
        }
        Ok(())
    }
}

/// What a run delivered from 5 s to its end.
#[derive(Debug)]
struct Outcome {
    /// Each flow's goodput as a share of the policed rate.
    shares: Vec<f64>,
    /// Datagrams the policer dropped, as a share of those sent.
    dropped: f64,
}

/// A simulation of two nodes, a client and a server, `path` between them (policed on the
/// way to the server).
fn across(seed: u64, path: Path) -> (Sim, NodeId, NodeId) {
    let bdp = (path.link_mbit * 1_000_000 / 8 * path.rtt_ms / 1000) as usize;
    let forward = LinkConfig {
        bandwidth: Some(path.link_mbit * 1_000_000),
        queue_bytes: bdp.max(64_000),
        loss: path.loss,
        jitter: path.jitter,
        policer: Some(Policer {
            rate: path.policed_mbit * 1_000_000,
            burst_bytes: path.burst,
        }),
        ..LinkConfig::default()
    };
    joined(seed, path.rtt_ms, forward)
}

/// Two nodes, a client and a server, `forward` from the client to the server with half of
/// `rtt_ms` of delay each way; the way back has that delay and nothing else.
fn joined(seed: u64, rtt_ms: u64, forward: LinkConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let client = sim.add_node(weir_core::Config::default());
    let server = sim.add_node(weir_core::Config::default());
    let delay = Duration::from_micros(rtt_ms * 500);
    sim.link_one_way(client, server, LinkConfig { delay, ..forward });
    let back = LinkConfig {
        delay,
        ..LinkConfig::default()
    };
    sim.link_one_way(server, client, back);
    (sim, client, server)
}

/// `flows`, one bulk connection each from one node to another across `path`, for `secs`
/// seconds.
fn run(seed: u64, path: Path, flows: &[CongestionAlgorithm], secs: u64) -> Outcome {
    let (mut sim, client, server) = across(seed, path);
    let traffic = RefCell::new(Traffic::new());
    for cc in flows {
        let conn = sim.connect_with(client, server, cc.clone());
        traffic
            .borrow_mut()
            .bulk(client, conn, u64::MAX, Priority::Normal);
    }
    run_to(&mut sim, &traffic, 5);
    let read = |i| traffic.borrow().delivered_by(i);
    let before: Vec<u64> = (0..flows.len()).map(read).collect();
    let stats_before = sim.link_stats(client, server);
    run_to(&mut sim, &traffic, secs);
    let stats = sim.link_stats(client, server).since(&stats_before);
    let span = (secs - 5) as f64;
    let sent = stats.datagrams + stats.policer_drops + stats.queue_drops;
    Outcome {
        shares: (0..flows.len())
            .map(|i| (read(i) - before[i]) as f64 * 8.0 / span / (path.policed_mbit as f64 * 1e6))
            .collect(),
        dropped: stats.policer_drops as f64 / sent.max(1) as f64,
    }
}

/// Policed paths: a tenth to a third of the link's rate, buckets of 16 kB to 1 MB (a few
/// ms to a quarter second of the rate), 20-100 ms.
const PATHS: [Path; 5] = [
    Path::new(100, 10, 32_000, 40),
    Path::new(100, 20, 64_000, 60),
    Path::new(50, 5, 16_000, 100),
    Path::new(1000, 50, 256_000, 20),
    Path::new(100, 30, 1_000_000, 40),
];

fn ledbat() -> CongestionAlgorithm {
    CongestionAlgorithm::Ledbat(LedbatConfig::default())
}

/// LEDBAT alone through a policer: it drops at most 1% of what it sends and keeps 45% of
/// the rate (seeds 1-3: 0.03-0.53% and 0.52-0.80). Before, it took losses with no queue as
/// random until a fifth of what it sent was lost: 10-21% dropped, for 0.76-0.98 of the
/// rate. A path's losses are now tested at each cut: if they stop when the rate halves,
/// they follow the rate, and each is answered as congestion (module `loss_regime`).
#[test]
fn the_scavenger_does_not_overrun_a_policer() {
    alone_through(ledbat(), PATHS, 0.01, 0.45);
}

/// `cc` alone through each of `paths` for 20 s: the policer drops at most `most_dropped` of
/// what it sends, and it keeps at least `least_share` of the rate.
fn alone_through(cc: CongestionAlgorithm, paths: [Path; 5], most_dropped: f64, least_share: f64) {
    for path in paths {
        let o = run(SEED, path, std::slice::from_ref(&cc), 20);
        let (dropped, share) = (o.dropped * 100.0, o.shares[0]);
        println!("{cc:?}, {path}: {share:.3} of the rate, {dropped:.2}% dropped");
        assert!(o.dropped <= most_dropped, "{cc:?}, {path}: {dropped:.2}% dropped");
        assert!(share >= least_share, "{cc:?}, {path}: {share:.3} of the rate");
    }
}

/// A NewReno flow (what a user's other traffic does) beside LEDBAT through a policer keeps
/// 40% of the rate and more than LEDBAT, and the policer drops at most 3% (seeds 1-3:
/// NewReno 0.46-0.69, LEDBAT 0.17-0.32, 0.25-1.02% dropped). Before, LEDBAT took 69-91% and
/// NewReno 5-13%, with 11-20% dropped: the scavenger starved the flow it yields to.
#[test]
fn the_scavenger_yields_on_a_policed_path() {
    for path in PATHS {
        let o = run(SEED, path, &[CongestionAlgorithm::NewReno, ledbat()], 30);
        let [reno, scavenger] = [o.shares[0], o.shares[1]];
        println!(
            "NewReno beside LEDBAT, {path}: {reno:.3} and {scavenger:.3}, {:.2}% dropped",
            o.dropped * 100.0
        );
        assert!(
            reno >= 0.4 && reno > scavenger,
            "{path}: {reno:.3} against {scavenger:.3}"
        );
        assert!(o.dropped <= 0.03, "{path}: {:.2}% dropped", o.dropped * 100.0);
    }
}

/// BBR, the default, alone through a policer: at most 3% dropped, at least 75% of the rate
/// (seeds 1-3: 0.32-2.21% and 0.81-0.97). Before, its probes and its burst-inflated
/// estimate overran the bucket and its losses with no queue were random to it: 0.97 of the
/// rate with 5-11% dropped. It now finds that its probes lose more than the rest of what it
/// sends, and paces at a bound it cuts when a round loses more than its random loss
/// explains (`core/src/congestion/bbr/policed.rs`).
#[test]
fn bbr_does_not_overrun_a_policer() {
    alone_through(CongestionAlgorithm::Bbr, PATHS, 0.03, 0.75);
}

/// A NewReno flow beside BBR through a policer keeps at least 15% of the rate, and the
/// policer drops at most 3.5% (seeds 1-3: NewReno 0.22-0.30, 0.55-2.66% dropped). Before,
/// BBR took 0.95 and left NewReno 0.02-0.03, with 5-9% dropped.
#[test]
fn bbr_leaves_a_loss_based_flow_its_share_of_a_policer() {
    for path in PATHS {
        beside(path, 30, 0.15, 0.035);
    }
}

/// A NewReno flow beside BBR through `path` for `secs`: NewReno keeps at least `least` of
/// the rate and the policer drops at most `most_dropped`.
fn beside(path: Path, secs: u64, least: f64, most_dropped: f64) {
    let o = run(
        SEED,
        path,
        &[CongestionAlgorithm::NewReno, CongestionAlgorithm::Bbr],
        secs,
    );
    let [reno, bbr] = [o.shares[0], o.shares[1]];
    println!(
        "NewReno beside BBR, {path}: {reno:.3} and {bbr:.3}, {:.2}% dropped",
        o.dropped * 100.0
    );
    assert!(reno >= least, "{path}: {reno:.3} against {bbr:.3}");
    assert!(
        o.dropped <= most_dropped,
        "{path}: {:.2}% dropped",
        o.dropped * 100.0
    );
}

/// BBR alone through a policer behind 1% random loss (a mobile path): at least 80% of the
/// rate with at most 3.5% dropped by the policer (seeds 1-3: 0.85-0.97, 0.42-2.60%). A
/// loss-based bound would hold a fraction of it (NewReno 0.11-0.33, LEDBAT below): the
/// bound is cut only for losses its random loss, measured while the bound is low, does not
/// explain. Before: 0.97 with 4.7-9.4% dropped.
#[test]
fn bbr_on_a_lossy_policed_path_keeps_its_rate() {
    alone_through(CongestionAlgorithm::Bbr, PATHS.map(|p| p.lossy(0.01)), 0.035, 0.8);
}

/// Random loss with reordering on a bottleneck is not a policer: BBR alone through 100
/// Mbit/s at 20 ms with a BDP of buffer, 10% loss, 5% reordered and 2 ms of jitter, seeds
/// 1-4: the bottleneck's queue drops nothing. Its probes' tally can read a policer there (a
/// batch of losses counts by its newest packet, and a reordering path "loses" more of a
/// probe's closer-spaced datagrams); a bound that then grew past the bottleneck overran it
/// (seed 1: 324 queue drops in these 10 s; over 20 s, seeds 1-2 paced in 0.95 of the link
/// against 0.88, with about 1,000 queue drops). A queue
/// standing all round now ends the bound: BBR's model knows the bottleneck's rate.
#[test]
fn a_lossy_reordering_bottleneck_is_not_overrun() {
    for seed in 1..=4 {
        let (mbit, rtt_ms) = (100, 20);
        let forward = LinkConfig {
            bandwidth: Some(mbit * 1_000_000),
            queue_bytes: (mbit * 1_000_000 / 8 * rtt_ms / 1000) as usize,
            loss: 0.10,
            reorder: 0.05,
            jitter: Duration::from_millis(2),
            ..LinkConfig::default()
        };
        let (mut sim, client, server) = joined(seed, rtt_ms, forward);
        let traffic = bbr_bulk_to_5s(&mut sim, client, server);
        let before = sim.link_stats(client, server);
        run_to(&mut sim, &traffic, 15);
        let stats = sim.link_stats(client, server).since(&before);
        println!(
            "seed {seed}: {} queue drops of {}",
            stats.queue_drops, stats.datagrams
        );
        assert!(
            stats.queue_drops <= 10,
            "seed {seed}: {} queue drops",
            stats.queue_drops
        );
    }
}

/// Messages of 200 B to 100 kB in turn, each answered with 64 B before the next (what
/// `adapters/tokio/tests/message_paths.rs` sends over sockets).
const MESSAGE_SIZES: [usize; 6] = [200, 3_000, 20_000, 100_000, 1_300, 64];

/// What `count` exchanges over `path` cost: the seconds they took, and the share of the
/// client's datagrams the policer dropped.
fn exchanges(seed: u64, path: Path, cc: CongestionAlgorithm, count: usize) -> (f64, f64) {
    let (mut sim, client, server) = across(seed, path);
    sim.connect_with(client, server, cc);
    let message = |i: usize| Bytes::from(vec![i as u8; MESSAGE_SIZES[i % MESSAGE_SIZES.len()]]);
    let (answered, start) = (RefCell::new(0usize), RefCell::new(None));
    sim.run_until(
        Instant::ZERO + Duration::from_secs(600),
        |sim, node, e| match e {
            Event::Connected { conn, .. } if node == client => {
                *start.borrow_mut() = Some(sim.now());
                sim.endpoint(client).send_message(conn, None, message(0)).unwrap();
            }
            Event::StreamReadable { conn, stream } => {
                let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 20)
                else {
                    return;
                };
                if node == server {
                    let answer = bytes.slice(..bytes.len().min(64));
                    sim.endpoint(server).send_message(conn, None, answer).unwrap();
                } else {
                    let mut n = answered.borrow_mut();
                    let sent = message(*n);
                    assert_eq!(bytes, sent.slice(..sent.len().min(64)), "answer {n}");
                    *n += 1;
                    if *n < count {
                        sim.endpoint(client)
                            .send_message(conn, None, message(*n))
                            .unwrap();
                    }
                }
            }
            _ => {}
        },
        |_| *answered.borrow() == count,
    );
    assert_eq!(
        *answered.borrow(),
        count,
        "{path}: {count} exchanges not done in 600 s"
    );
    let stats = sim.link_stats(client, server);
    let sent = stats.datagrams + stats.policer_drops + stats.queue_drops;
    let took = sim.now() - start.borrow().expect("connected");
    (
        took.as_micros() as f64 / 1e6,
        stats.policer_drops as f64 / sent.max(1) as f64,
    )
}

/// Policed paths that a message workload overran.
const MESSAGE_PATHS: [Path; 3] = [
    Path::new(100, 5, 16_000, 40),
    Path::new(100, 10, 32_000, 40),
    Path::new(50, 5, 16_000, 100),
];

/// A path with random loss and no policer (one whose rate is the link's).
const fn unpoliced(loss: f64) -> Path {
    Path::new(20, 20, 100_000_000, 40).lossy(loss)
}

/// BBR sending messages through a policer, each answered before the next: at most 5%
/// dropped, in at most 1.1 times NewReno's time (seeds 1-3: 2.5-4.3% dropped, 0.95-1.06 of
/// NewReno's time). Before, 10-19% dropped (seed 1; 0.94-1.03 of NewReno's time): each pause
/// refilled the bucket, each message's first round trip went through it whole, and BBR's
/// estimate held that burst (the policer's rate plus the bucket per round trip); its probes
/// were no test, as the rest of what it sent lost as much. A burst's datagrams past its
/// first eight are now tested against those eight (`core/src/congestion/bbr/policed.rs`).
/// On paths with random loss alone the test binds nothing: BBR takes at most half
/// NewReno's time there (0.37-0.40, the same as before to the digit).
#[test]
fn bbr_sending_messages_does_not_overrun_a_policer() {
    for seed in 1..=3 {
        for path in MESSAGE_PATHS {
            let (secs, dropped) = exchanges(seed, path, CongestionAlgorithm::Bbr, 120);
            let (reno, _) = exchanges(seed, path, CongestionAlgorithm::NewReno, 120);
            println!(
                "seed {seed}, {path}: {secs:.2} s (NewReno {reno:.2} s), {:.2}% dropped",
                dropped * 100.0
            );
            assert!(dropped <= 0.05, "{path}: {:.2}% dropped", dropped * 100.0);
            assert!(
                secs <= reno * 1.1,
                "{path}: {secs:.2} s against NewReno's {reno:.2}"
            );
        }
    }
    for path in [unpoliced(0.05), unpoliced(0.2)] {
        let (secs, _) = exchanges(SEED, path, CongestionAlgorithm::Bbr, 120);
        let (reno, _) = exchanges(SEED, path, CongestionAlgorithm::NewReno, 120);
        println!("{path}: {secs:.2} s (NewReno {reno:.2} s)");
        assert!(
            secs <= reno * 0.5,
            "{path}: {secs:.2} s against NewReno's {reno:.2}"
        );
    }
}

/// BBR through a policer on a path whose delay jitters (the 20 Mbit/s policer and 32 kB
/// bucket of `adapters/tokio/tests/policer.rs`, behind a 1 Gbit/s link, 20 ms, with 6 ms
/// of reordering jitter), seeds 1-3: at most 4% dropped from 5 s to 10 s, and 80% of the
/// rate kept. Every round's delay samples reached the jitter, above the fixed threshold (an
/// eighth of 20 ms), so each round started the policer test again and it never ended:
/// 12.57% dropped at seed 1. The threshold is now above the path's jitter (what every one
/// of the last eight rounds reached): 2.20-2.35% dropped, 0.89-0.90 of the rate.
#[test]
fn bbr_finds_a_policer_through_delay_jitter() {
    let path = Path::new(1000, 20, 32_000, 20).jittery(6);
    for seed in 1..=3 {
        let out = run(seed, path, &[CongestionAlgorithm::Bbr], 10);
        println!(
            "{path}, seed {seed}: BBR {:.3} of the rate, {:.2}% dropped",
            out.shares[0],
            out.dropped * 100.0
        );
        assert!(
            out.dropped <= 0.04,
            "seed {seed}: {:.2}% dropped",
            out.dropped * 100.0
        );
        assert!(
            out.shares[0] >= 0.8,
            "seed {seed}: {:.3} of the rate",
            out.shares[0]
        );
    }
}

/// Policed paths whose windows are large: at 100 Mbit/s and 100 ms (a 1 MB bucket) and at
/// 500 Mbit/s and 40 ms (2 MB).
const LONG_FAT: [Path; 2] = [
    Path::new(1000, 100, 1_000_000, 100),
    Path::new(1000, 500, 2_000_000, 40),
];

/// BBR through a policer on a path whose window is hundreds of datagrams, with and without
/// 1% random loss: at most 3% dropped from 5 s to 15 s, and 70% of the rate kept (0.00%
/// dropped, 0.72-0.81 of the rate now). The probes' losses were tested against the rest's
/// with a table of the Poisson tail up to a mean of 32 datagrams, and a larger mean ended
/// the test as if both had lost alike: on these paths a probe or two reach it, so the
/// policer was found late or never (9.17% and 8.37% dropped without random loss, at 0.97
/// of the rate). Past the table the test now reads a bound just above the tail
/// (`poisson_tail` in core/src/congestion/bbr/policed.rs). The rate kept is the bound's
/// sawtooth: raised by a datagram per minimum RTT a round, it takes tens of rounds to
/// regain a cut of hundreds of datagrams (tests/congestion.md, "Policers").
#[test]
fn bbr_finds_a_policer_on_a_long_fat_path() {
    for path in LONG_FAT {
        for loss in [0.0, 0.01] {
            let path = path.lossy(loss);
            let out = run(SEED, path, &[CongestionAlgorithm::Bbr], 15);
            println!(
                "{path}: BBR {:.3} of the rate, {:.2}% dropped",
                out.shares[0],
                out.dropped * 100.0
            );
            assert!(out.dropped <= 0.03, "{path}: {:.2}% dropped", out.dropped * 100.0);
            assert!(out.shares[0] >= 0.7, "{path}: {:.3} of the rate", out.shares[0]);
        }
    }
}

/// Two flows through the policers of [`LONG_FAT`], from 5 s to 20 s: a NewReno flow beside
/// BBR keeps at least 8% of the rate, two BBR flows each keep 20%, and the policer drops at
/// most 3% (now: NewReno 0.221 and 0.105 of the rate; two BBR 0.412/0.438 and 0.367/0.490;
/// at most 0.05% dropped). Before the probes' test read past its table (above), BBR took
/// 0.973 of the 500 Mbit/s policer beside NewReno (NewReno 0.003, 8.30% dropped), and two
/// BBR flows overran both (8.89% and 10.03% dropped).
#[test]
fn two_flows_share_a_policer_on_a_long_fat_path() {
    for path in LONG_FAT {
        beside(path, 20, 0.08, 0.03);
        let o = run(
            SEED,
            path,
            &[CongestionAlgorithm::Bbr, CongestionAlgorithm::Bbr],
            20,
        );
        let [a, b] = [o.shares[0], o.shares[1]];
        println!(
            "two BBR, {path}: {a:.3} and {b:.3}, {:.2}% dropped",
            o.dropped * 100.0
        );
        assert!(a.min(b) >= 0.2, "{path}: {a:.3} and {b:.3}");
        assert!(o.dropped <= 0.03, "{path}: {:.2}% dropped", o.dropped * 100.0);
    }
}

/// Bursts of random loss with no policer behind them, as a radio's fades make (weir-sim's
/// Gilbert-Elliott chain, 1-2.4% of the datagrams lost on average, in bursts of about 10
/// and 50 all lost, and of 10 half lost): BBR keeps at least 85% of the link from 5 s to
/// 25 s, at 20 Mbit/s, 40 ms and 100 Mbit/s, 100 ms (now 0.929-0.961; NewReno, run here in
/// a throw-away build, kept 0.249 of the first). Bursts five times as
/// frequent can read as a policer and bind BBR's rate for nothing (`burst_loss_figures` in
/// `figures`; tests/congestion.md, "What the controllers still get wrong"): this holds
/// the line where they do not.
#[test]
fn bbr_keeps_its_rate_through_light_bursts_of_loss() {
    for (mbit, rtt_ms) in [(20, 40), (100, 100)] {
        for (enter, leave, loss_in_burst) in [(0.001, 0.1, 1.0), (0.0002, 0.02, 1.0), (0.002, 0.1, 0.5)] {
            let bursts = weir_sim::BurstLoss {
                enter,
                leave,
                loss_in_burst,
                slot: Duration::from_micros(12_000 / mbit),
            };
            let share = through_bursts(SEED, mbit, rtt_ms, bursts);
            println!("{mbit} Mbit/s, {rtt_ms} ms, bursts {enter}/{leave}/{loss_in_burst}: BBR {share:.3} of the link");
            assert!(
                share >= 0.85,
                "{mbit} Mbit/s, {rtt_ms} ms, bursts {enter}/{leave}: {share:.3}"
            );
        }
    }
}

/// BBR's goodput from 5 s to 25 s as a share of a `mbit` link with a BDP of buffer, `rtt_ms`,
/// and `bursts` of loss on the way there.
fn through_bursts(seed: u64, mbit: u64, rtt_ms: u64, bursts: weir_sim::BurstLoss) -> f64 {
    let bdp = (mbit * 1_000_000 / 8 * rtt_ms / 1000) as usize;
    let forward = LinkConfig {
        bandwidth: Some(mbit * 1_000_000),
        queue_bytes: bdp.max(64_000),
        burst: Some(bursts),
        ..LinkConfig::default()
    };
    let (mut sim, client, server) = joined(seed, rtt_ms, forward);
    let traffic = bbr_bulk_to_5s(&mut sim, client, server);
    let before = traffic.borrow().delivered_by(0);
    run_to(&mut sim, &traffic, 25);
    let after = traffic.borrow().delivered_by(0);
    (after - before) as f64 * 8.0 / 20.0 / (mbit as f64 * 1e6)
}

/// A BBR connection from `client` to `server` sending without end, run to 5 s.
fn bbr_bulk_to_5s(sim: &mut Sim, client: NodeId, server: NodeId) -> RefCell<Traffic> {
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(client, server, CongestionAlgorithm::Bbr);
    traffic
        .borrow_mut()
        .bulk(client, conn, u64::MAX, Priority::Normal);
    run_to(sim, &traffic, 5);
    traffic
}
