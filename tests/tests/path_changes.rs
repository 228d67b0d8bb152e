//! A path that changes under a transfer (weir-sim): its bottleneck's rate falls or rises,
//! its RTT grows or shrinks, as a radio's rate adapts or a route moves
//! (`Sim::change_link_one_way`: what is queued stays queued through the change); or the
//! client moves to another address with it, as a phone that leaves Wi-Fi does
//! (`Sim::readdress`). Method and figures: tests/congestion.md, "A path whose rate falls"
//! and "A new path".

mod common;

use std::cell::RefCell;

use weir_core::congestion::CongestionAlgorithm;
use weir_core::time::{Duration, Instant};
use weir_core::{Config, Priority};
use weir_sim::{LinkConfig, Sim};

use common::{controllers, Traffic};

/// One side of a change: the RTT (ms) and the bottleneck's rate (Mbit/s).
#[derive(Clone, Copy, Debug)]
struct Path {
    rtt_ms: u64,
    mbit: u64,
}

/// The way out: half the RTT and the bottleneck, with a drop-tail queue of `queue_bytes`.
fn forward(path: Path, queue_bytes: usize) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(path.rtt_ms * 500),
        bandwidth: Some(path.mbit * 1_000_000),
        queue_bytes,
        ..LinkConfig::default()
    }
}

/// The way back: half the RTT, no limit.
fn back(path: Path) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(path.rtt_ms * 500),
        ..LinkConfig::default()
    }
}

/// What each half second after the change brought: goodput as a share of the new rate, and
/// datagrams the bottleneck dropped.
struct After {
    shares: Vec<f64>,
    drops: Vec<u64>,
}

impl After {
    /// How long the transfer stalled or crawled after the change: until the first 2 s in a
    /// row that each delivered at least half the new rate (zero if it never crawled). A
    /// later dip is not the change's: LEDBAT's periodic slowdowns (two RTTs at two
    /// datagrams, by design) take about half of a half second on a 100 ms path; the
    /// share from 2 s on is asserted for what comes after.
    fn crawled_until(&self) -> Duration {
        let first = self
            .shares
            .windows(4)
            .position(|w| w.iter().all(|s| *s >= 0.5))
            .unwrap_or(self.shares.len());
        Duration::from_millis(500 * first as u64)
    }

    /// Goodput from `from` after the change to the run's end, as a share of the new rate.
    fn share_from(&self, from: Duration) -> f64 {
        let rest = &self.shares[(from.as_millis() / 500) as usize..];
        rest.iter().sum::<f64>() / rest.len() as f64
    }

    /// Datagrams dropped in the first `halves` half seconds after the change.
    fn dropped(&self, halves: usize) -> u64 {
        self.drops.iter().take(halves).sum()
    }
}

/// How the path changes: in place, or with the client's address (a new path, RFC 9000 §9.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// The links change; the addresses stay (a radio's rate, a route).
    InPlace,
    /// The client moves to a new IP address as the links change (Wi-Fi to a mobile
    /// network and back).
    NewAddress,
}

/// A bulk transfer over `before` that becomes `after` at 10 s, `how`; 10 s after the change,
/// measured in half seconds.
fn change(
    cc: &CongestionAlgorithm,
    seed: u64,
    before: Path,
    after: Path,
    queue: usize,
    how: Change,
) -> After {
    let mut sim = Sim::new(seed);
    let c = sim.add_node(Config::default());
    let s = sim.add_node(Config::default());
    sim.link_one_way(c, s, forward(before, queue));
    sim.link_one_way(s, c, back(before));
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(c, s, cc.clone());
    traffic.borrow_mut().bulk(c, conn, u64::MAX, Priority::Normal);
    let run = |sim: &mut Sim, until: Instant| {
        sim.run_until(
            until,
            |sim, node, e| traffic.borrow_mut().on_event(sim, node, &e),
            |_| false,
        )
    };
    let mut at = Instant::ZERO + Duration::from_secs(10);
    run(&mut sim, at);
    sim.change_link_one_way(c, s, forward(after, queue));
    sim.change_link_one_way(s, c, back(after));
    if how == Change::NewAddress {
        sim.readdress(c, "192.0.2.77:4000".parse().expect("an address"));
    }
    let half = Duration::from_millis(500);
    let mut out = After {
        shares: Vec::new(),
        drops: Vec::new(),
    };
    let mut stats = sim.link_stats(c, s);
    for _ in 0..20 {
        let got = traffic.borrow().delivered_by(0);
        at += half;
        run(&mut sim, at);
        let bits = (traffic.borrow().delivered_by(0) - got) as f64 * 8.0;
        out.shares.push(bits / 0.5 / (after.mbit as f64 * 1e6));
        let now = sim.link_stats(c, s);
        out.drops.push(now.since(&stats).queue_drops);
        stats = now;
    }
    out
}

fn show(name: &str, what: &str, a: &After) {
    let shares: Vec<String> = a.shares.iter().map(|s| format!("{s:.2}")).collect();
    println!(
        "{name}, {what}: under half the rate until {} s, {:.2} of it from 2 s on, {} dropped in 5 s; by half second {}",
        a.crawled_until().as_millis() as f64 / 1e3,
        a.share_from(Duration::from_secs(2)),
        a.dropped(10),
        shares.join(" ")
    );
}

/// The bottleneck's rate falls to a tenth, a quarter, a half, or a tenth behind a shallow
/// queue, seeds 1 and 2: every controller is back at half the new rate, for 2 s in a row,
/// within 2 s of the change, and keeps 90% of it from 2 s on; BBR within 1.5 s, dropping
/// at most about half what it did when its bandwidth filter kept the old rate for ten
/// rounds, each stretched by the full queue: at 100 to 10 Mbit/s it crawled for 4.5-5 s
/// then, retransmissions meeting the full queue too, and the bottleneck dropped
/// 2,521-2,918 datagrams in 5 s (tests/congestion.md has every row before and after).
#[test]
fn a_rate_that_falls_is_followed() {
    let fast = Path {
        rtt_ms: 40,
        mbit: 100,
    };
    let cases = [
        (
            "40 ms, 100 -> 10 Mbit/s, 500 kB queue",
            fast,
            Path { mbit: 10, ..fast },
            500_000,
            1_500,
        ),
        (
            "40 ms, 100 -> 25 Mbit/s, 500 kB queue",
            fast,
            Path { mbit: 25, ..fast },
            500_000,
            1_200,
        ),
        (
            "40 ms, 100 -> 50 Mbit/s, 500 kB queue",
            fast,
            Path { mbit: 50, ..fast },
            500_000,
            650,
        ),
        (
            "40 ms, 100 -> 10 Mbit/s, 100 kB queue",
            fast,
            Path { mbit: 10, ..fast },
            100_000,
            1_800,
        ),
        (
            "10 ms, 50 -> 5 Mbit/s, 62.5 kB queue",
            Path { rtt_ms: 10, mbit: 50 },
            Path { rtt_ms: 10, mbit: 5 },
            62_500,
            200,
        ),
    ];
    for (cc, name) in controllers() {
        let bbr = cc == CongestionAlgorithm::Bbr;
        for ((what, before, after, queue, most_dropped), seed) in
            cases.into_iter().flat_map(|case| [(case, 1), (case, 2)])
        {
            let a = change(&cc, seed, before, after, queue, Change::InPlace);
            show(name, &format!("{what}, seed {seed}"), &a);
            let crawled = a.crawled_until();
            let bound = Duration::from_millis(if bbr { 1500 } else { 2000 });
            assert!(
                crawled <= bound,
                "{cc:?}, {what}: under half the rate until {crawled:?}"
            );
            let kept = a.share_from(Duration::from_secs(2));
            assert!(kept >= 0.9, "{cc:?}, {what}: {kept:.2} of the new rate");
            if bbr {
                assert!(a.dropped(10) <= most_dropped, "{what}: {} dropped", a.dropped(10));
            }
        }
    }
}

/// The rate rises tenfold, and the RTT grows fivefold or shrinks, the addresses staying:
/// every controller keeps 90% of the new rate over the last 2 s of the 10, but LEDBAT after
/// an RTT that grew, which keeps the old path's base delay and reads the longer path as a
/// queue above its target (75-81%: asserted at 70%). How long each took is printed
/// (tests/congestion.md, "A path whose rate falls"): NewReno finds a tenfold rise at a
/// datagram a round trip, BBR an RTT grown past twice its minimum only when ProbeRtt
/// re-measures it.
#[test]
fn rises_and_moved_routes_end_at_the_new_rate() {
    let cases = [
        (
            "40 ms, 10 -> 100 Mbit/s",
            Path { rtt_ms: 40, mbit: 10 },
            Path {
                rtt_ms: 40,
                mbit: 100,
            },
            500_000,
        ),
        (
            "20 Mbit/s, 20 -> 100 ms",
            Path { rtt_ms: 20, mbit: 20 },
            Path {
                rtt_ms: 100,
                mbit: 20,
            },
            250_000,
        ),
        (
            "20 Mbit/s, 100 -> 20 ms",
            Path {
                rtt_ms: 100,
                mbit: 20,
            },
            Path { rtt_ms: 20, mbit: 20 },
            250_000,
        ),
    ];
    for (cc, name) in controllers() {
        for (what, before, after, queue) in cases {
            let a = change(&cc, 1, before, after, queue, Change::InPlace);
            show(name, what, &a);
            let longer = after.rtt_ms > before.rtt_ms;
            let ledbat = matches!(cc, CongestionAlgorithm::Ledbat(_));
            let least = if ledbat && longer { 0.7 } else { 0.9 };
            let kept = a.share_from(Duration::from_secs(8));
            assert!(
                kept >= least,
                "{cc:?}, {what}: {kept:.2} of the new rate at the end"
            );
        }
    }
}

/// The client leaves a fast, short path for a slow, long one with a new address, and back
/// (Wi-Fi and a mobile network): the connection follows it, and on the new path congestion
/// control and the RTT estimate start over (spec §8, A new path; RFC 9000 §9.4). Every
/// controller is at half the new path's rate, for 2 s in a row, within 1.5 s of the move. BBR
/// kept its old model before: from Wi-Fi to the mobile network its window of two of the
/// short path's BDPs held the flight under half the long path's for 6 s (its estimate
/// falling with each round), and LEDBAT read the longer path as a queue above its target.
#[test]
fn a_client_that_changes_networks_starts_afresh_on_the_new_path() {
    let wifi = Path {
        rtt_ms: 20,
        mbit: 100,
    };
    let mobile = Path {
        rtt_ms: 100,
        mbit: 20,
    };
    for (cc, name) in controllers() {
        for (what, before, after) in [
            ("Wi-Fi to mobile", wifi, mobile),
            ("mobile to Wi-Fi", mobile, wifi),
        ] {
            let a = change(&cc, 1, before, after, 250_000, Change::NewAddress);
            show(name, what, &a);
            let crawled = a.crawled_until();
            assert!(
                crawled <= Duration::from_millis(1500),
                "{cc:?}, {what}: under half the rate until {crawled:?}"
            );
            let kept = a.share_from(Duration::from_secs(2));
            assert!(kept >= 0.9, "{cc:?}, {what}: {kept:.2} of the new rate");
        }
    }
}
