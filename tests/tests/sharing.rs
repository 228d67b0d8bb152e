//! How BBR, the default controller, shares: two flows on one bottleneck, BBR beside
//! NewReno, and a transfer through a relay whose two hops both lose datagrams (issue 31's
//! flow-level targets; the single-flow matrix is `bottleneck`, the scavenger's yielding is
//! in `control`).

use crate::common;

use std::cell::RefCell;

use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::time::{Duration, Instant};
use weir_core::{Config, Event, LocalRead, Priority, Read};
use weir_sim::{NodeId, Sim};

use common::Traffic;

fn config() -> Config {
    Config {
        stream_receive_window: 16 << 20,
        receive_window: 16 << 20,
        send_buffer: 64 << 20,
        ..Config::default()
    }
}

/// Jain's fairness index of `shares`: 1 when all are equal, 1/n when one has everything.
fn jain(shares: &[f64]) -> f64 {
    let sum: f64 = shares.iter().sum();
    let squares: f64 = shares.iter().map(|x| x * x).sum();
    sum * sum / (shares.len() as f64 * squares)
}

/// Two BBR flows, the second started `gap` seconds after the first, on a 1-BDP bottleneck of
/// `mbit` and `rtt_ms`, in a simulation of `seed`: each flow's bytes over each `(start,
/// seconds)` span, as shares of the link.
fn two_flows(seed: u64, mbit: u64, rtt_ms: u64, gap: u64, spans: &[(u64, u64)]) -> Vec<Vec<f64>> {
    let bbr = || CongestionAlgorithm::Bbr;
    two_flows_of([bbr(), bbr()], seed, (mbit, rtt_ms, 1), gap, spans)
}

/// [`two_flows`] with each flow's controller given, on a path of (Mbit/s, RTT ms, queue in
/// BDPs).
fn two_flows_of(
    controllers: [CongestionAlgorithm; 2],
    seed: u64,
    (mbit, rtt_ms, bdps): (u64, u64, u32),
    gap: u64,
    spans: &[(u64, u64)],
) -> Vec<Vec<f64>> {
    let mut sim = Sim::new(seed);
    let c = sim.add_node(config());
    let s = sim.add_node(config());
    let rtt = Duration::from_millis(rtt_ms);
    sim.bottleneck_path_with_queue(
        c,
        s,
        rtt,
        mbit * 1_000_000,
        0.0,
        rtt.saturating_mul(u64::from(bdps)),
    );
    let traffic = RefCell::new(Traffic::new());
    let run = |sim: &mut Sim, until: Instant| {
        sim.run_until(
            until,
            |sim, node, e| traffic.borrow_mut().on_event(sim, node, &e),
            |_| false,
        );
    };
    for (i, cc) in (0..).zip(controllers) {
        run(&mut sim, Instant::ZERO + Duration::from_secs(gap * i));
        let conn = sim.connect_with(c, s, cc);
        traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
    }
    spans
        .iter()
        .map(|&(start, seconds)| {
            let from = Instant::ZERO + Duration::from_secs(start);
            run(&mut sim, from);
            let before: Vec<u64> = (0..2).map(|i| traffic.borrow().delivered_by(i)).collect();
            run(&mut sim, from + Duration::from_secs(seconds));
            let link = (mbit * 1_000_000) as f64 * seconds as f64;
            (0..2)
                .map(|i| (traffic.borrow().delivered_by(i) - before[i]) as f64 * 8.0 / link)
                .collect()
        })
        .collect()
}

/// Issue 31: two flows of the default controller on one path, started together, share the
/// first 20 s with a Jain index of at least 0.95 and together keep the link busy.
/// Measured: 0.9990 to 0.9999 over seeds 1 to 3 (0.9964 to 1.0000 before ProbeBw's random
/// start phase).
#[test]
fn two_bbr_flows_started_together_share_a_bottleneck_evenly() {
    for (mbit, rtt_ms) in [(10, 40), (100, 40), (10, 100)] {
        let spans = two_flows(3, mbit, rtt_ms, 0, &[(0, 20)]);
        let shares = &spans[0];
        println!(
            "BBR x2 together, {mbit} Mbit/s, {rtt_ms} ms: 0-20 s {shares:?} (Jain {:.4})",
            jain(shares)
        );
        assert!(jain(shares) >= 0.95, "{mbit} Mbit/s, {rtt_ms} ms: {shares:?}");
        assert!(
            shares.iter().sum::<f64>() >= 0.85,
            "{mbit} Mbit/s, {rtt_ms} ms: {shares:?}"
        );
    }
}

/// A flow that joins 2 s after another gets an even share over the long run, but not a
/// steady one: it leaves Startup early (the first flow's queue stands), gains a few points
/// per ProbeBw cycle, and then the split swings by up to 25 points over tens of seconds at
/// 100 Mbit/s and 40 ms (BBRv1's cycle has no pull toward fairness but its probes' random
/// phases). So the share is judged over 80 s, from 10 s to 90 s, in seeds 1 to 3: each
/// index at least 0.95 (a split of 61/39) and their mean at least 0.98. A 20 s window
/// judged one seed's luck: after the handshake's RTT sample, seed 5 at 10 Mbit/s gives
/// 0.956 from 40 s to 60 s. Measured over 10 s to 90 s, seeds 1 to 5: 0.971 to 1.000
/// (`two_bbr_flows_started_apart_figures`; before the handshake sample, 0.942 to 1.000:
/// the same test run at 585c683).
/// Before ProbeBw started at a random phase, flows leaving ProbeRtt together probed in step
/// for ever and held splits such as 66/31 (0.856 from 10 s to 30 s).
#[test]
fn two_bbr_flows_started_apart_converge_to_an_even_split() {
    for (mbit, rtt_ms) in [(10, 40), (100, 40), (10, 100)] {
        let mut indices = Vec::new();
        for seed in 1..=3 {
            let spans = two_flows(seed, mbit, rtt_ms, 2, &[(10, 80)]);
            let shares = &spans[0];
            println!(
                "BBR x2 2 s apart, {mbit} Mbit/s, {rtt_ms} ms, seed {seed}: 10-90 s {shares:?} (Jain {:.4})",
                jain(shares)
            );
            assert!(
                jain(shares) >= 0.95,
                "{mbit} Mbit/s, {rtt_ms} ms, seed {seed}: {shares:?}"
            );
            assert!(
                shares.iter().sum::<f64>() >= 0.85,
                "{mbit} Mbit/s, {rtt_ms} ms, seed {seed}: {shares:?}"
            );
            indices.push(jain(shares));
        }
        let mean = indices.iter().sum::<f64>() / indices.len() as f64;
        assert!(mean >= 0.98, "{mbit} Mbit/s, {rtt_ms} ms: {indices:?}");
    }
}

/// The figures behind the test above and tests/congestion.md, on demand (about a minute in
/// release): `cargo test --release -p weir-sim --test suites sharing:: -- --ignored --nocapture`.
/// Jain's index from 10 s to 90 s, and from 40 s to 60 s (the window the test judged
/// before), for seeds 1 to 5 on the three paths; seed 1's shares in 4 s spans at 100 Mbit/s
/// and 40 ms.
#[test]
#[ignore = "about a minute in release: figures, not a check"]
fn two_bbr_flows_started_apart_figures() {
    for (mbit, rtt_ms) in [(10, 40), (100, 40), (10, 100)] {
        for (start, seconds) in [(10, 80), (40, 20)] {
            let indices: Vec<String> = (1..=5)
                .map(|seed| {
                    let shares = &two_flows(seed, mbit, rtt_ms, 2, &[(start, seconds)])[0];
                    format!("{:.4}", jain(shares))
                })
                .collect();
            let end = start + seconds;
            println!(
                "{mbit} Mbit/s, {rtt_ms} ms, {start}-{end} s, seeds 1-5: {}",
                indices.join(" ")
            );
        }
    }
    let spans: Vec<(u64, u64)> = (0..30).map(|i| (i * 4, 4)).collect();
    for ((start, _), shares) in spans.iter().zip(two_flows(1, 100, 40, 2, &spans)) {
        println!(
            "100 Mbit/s, 40 ms, seed 1, from {start} s: {:.2} {:.2}",
            shares[0], shares[1]
        );
    }
}

/// A BBR flow, then a NewReno flow 2 s later, on the same 1-BDP bottleneck: from 10 s to
/// 50 s NewReno keeps at least a sixth of the link, and the two together 90% of it. BBR
/// left it 8%, 12% and 15% on these three paths (its window, two BDPs, holds the queue full
/// of its own data, and it paced at an estimate above its share): now a cruise round with a
/// queue standing all round paces at 9/10 (`bbr`), and NewReno keeps 18%, 42% and 33%
/// (tests/congestion.md, "A path that stalls").
#[test]
fn bbr_leaves_a_loss_based_flow_its_part() {
    for (mbit, rtt_ms) in [(10, 40), (100, 40), (10, 100)] {
        let controllers = [CongestionAlgorithm::Bbr, CongestionAlgorithm::NewReno];
        let shares = &two_flows_of(controllers, 1, (mbit, rtt_ms, 1), 2, &[(10, 40)])[0];
        println!("BBR then NewReno, {mbit} Mbit/s, {rtt_ms} ms: 10-50 s {shares:?}");
        assert!(shares[1] >= 1.0 / 6.0, "{mbit} Mbit/s, {rtt_ms} ms: {shares:?}");
        assert!(
            shares.iter().sum::<f64>() >= 0.9,
            "{mbit} Mbit/s, {rtt_ms} ms: {shares:?}"
        );
    }
}

/// A BBR flow and a second flow started 2 s later, of BBR, NewReno or LEDBAT, on queues of
/// 1, 4 and 10 BDPs: the shares from 10 s to 50 s (seed 1). BBR's rule for a path whose
/// rate fell (`bbr`) must not fire here: without its loss condition it did beside NewReno
/// on the deeper queues at 10 Mbit/s and 100 ms (tests/congestion.md, "A path whose rate
/// falls"); and the early ProbeRtt tried for an RTT that grows in place moved the LEDBAT
/// rows ("Rises and moved routes").
#[test]
#[ignore = "about a minute in release: figures, not a check"]
fn deep_buffers_figures() {
    for (mbit, rtt_ms) in [(10, 40), (100, 40), (10, 100)] {
        for bdps in [1, 4, 10] {
            let path = (mbit, rtt_ms, bdps);
            let beside = |other| two_flows_of([CongestionAlgorithm::Bbr, other], 1, path, 2, &[(10, 40)]);
            println!(
                "{mbit} Mbit/s, {rtt_ms} ms, {bdps} BDPs: BBR beside NewReno {:.2?}, BBR {:.2?}, LEDBAT {:.2?}",
                beside(CongestionAlgorithm::NewReno)[0],
                beside(CongestionAlgorithm::Bbr)[0],
                beside(CongestionAlgorithm::Ledbat(LedbatConfig::default()))[0],
            );
        }
    }
}

/// A sender, a relay that pipes each stream on, a receiver; the first hop 20 Mbit/s, the
/// second 10 Mbit/s, 20 ms each way on each hop, 1% random loss on both, queues of one BDP.
/// Returns the receiver's goodput from a quarter to nine tenths of the message, as a share
/// of the slower hop.
fn relay_chain(size: usize) -> f64 {
    let mut sim = Sim::new(4);
    let nodes: Vec<NodeId> = (0..3).map(|_| sim.add_node(config())).collect();
    let rtt = Duration::from_millis(40);
    sim.bottleneck_path_with_queue(nodes[0], nodes[1], rtt, 20_000_000, 0.01, rtt);
    sim.bottleneck_path_with_queue(nodes[1], nodes[2], rtt, 10_000_000, 0.01, rtt);
    let up = sim.connect_with(nodes[0], nodes[1], CongestionAlgorithm::Bbr);
    let down = sim.connect_with(nodes[1], nodes[2], CongestionAlgorithm::Bbr);
    let body = bytes::Bytes::from(vec![0x17u8; size]);
    let got = RefCell::new(0usize);
    let marks = RefCell::new(Vec::<(Instant, usize)>::new());
    let mut connected = 0;
    let done = sim.run_until(
        Instant::ZERO + Duration::from_secs(600),
        |sim, node, e| match e {
            Event::Connected { .. } if node != nodes[2] => {
                connected += 1;
                // Send once the sender's connection is up.
                if node == nodes[0] {
                    sim.endpoint(nodes[0])
                        .send_message(up, None, body.clone())
                        .unwrap();
                }
            }
            Event::StreamOpened { conn, stream, .. } if node == nodes[1] && conn != down => {
                sim.endpoint(nodes[1])
                    .pipe(conn, stream, &[down], LocalRead::Discard)
                    .unwrap();
            }
            Event::StreamReadable { conn, stream } if node == nodes[2] => {
                while let Ok(Read::Data { bytes, .. }) = sim.endpoint(nodes[2]).read(conn, stream, usize::MAX)
                {
                    *got.borrow_mut() += bytes.len();
                }
                let mut marks = marks.borrow_mut();
                let next = [size / 4, size * 9 / 10].get(marks.len()).copied();
                if next.is_some_and(|n| *got.borrow() >= n) {
                    marks.push((sim.now(), *got.borrow()));
                }
            }
            _ => {}
        },
        |_| *got.borrow() >= size,
    );
    assert!(done, "{} of {size} bytes", got.borrow());
    assert!(connected >= 2);
    let marks = marks.take();
    let secs = (marks[1].0 - marks[0].0).as_micros() as f64 / 1e6;
    (marks[1].1 - marks[0].1) as f64 * 8.0 / secs / 10e6
}

/// Issue 31: through a relay chain of two hops losing 1% each, the end-to-end goodput is at
/// least 80% of the slower hop.
#[test]
fn a_relay_chain_with_loss_on_both_hops_runs_at_the_slower_hop() {
    let share = relay_chain(16 << 20);
    println!(
        "relay chain, 20 then 10 Mbit/s, 1% loss on each: {:.1}% of the slower hop",
        share * 100.0
    );
    assert!(share >= 0.8, "{share}");
}
