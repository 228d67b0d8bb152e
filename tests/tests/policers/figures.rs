//! The policed paths' printed figures (`--ignored`; tests/congestion.md, "Policers" and
//! "What the controllers still get wrong" quote them): each controller alone and in pairs
//! through the policers, the message workload, bursts of random loss with no policer, and
//! applications writing at a fixed rate. Nothing here is asserted; the rules are in the
//! module beside it.

use super::*;

/// Printed, not asserted (tests/congestion.md, "Policers", what is left): BBR through a
/// policer, alone, beside NewReno and beside BBR (two BBR flows through a small bucket
/// still overrun it); and LEDBAT alone and beside NewReno, NewReno alone and BBR alone, on
/// the same paths with 1% random loss ahead of the policer, as on a mobile path, where
/// LEDBAT keeps a fraction of the rate. Then each controller alone and each pair over 30 s
/// through the policers of paths whose windows are hundreds of datagrams
/// (tests/congestion.md, "Policers", "Large windows", and "What the controllers still get
/// wrong").
#[test]
#[ignore = "figures: cargo test --release -p weir-sim --test suites policers:: -- --ignored --nocapture"]
fn controllers() {
    use CongestionAlgorithm::{Bbr, NewReno};
    // Each path's runs: what they are, their flows, and their length in seconds.
    let runs = |path: Path, runs: Vec<(&str, Vec<CongestionAlgorithm>, u64)>| {
        let shown: Vec<String> = runs
            .into_iter()
            .map(|(what, flows, secs)| shown(what, &run(SEED, path, &flows, secs)))
            .collect();
        shown.join("; ")
    };
    for path in PATHS {
        let line = runs(
            path,
            vec![
                ("BBR alone", vec![Bbr], 20),
                ("NewReno beside BBR", vec![NewReno, Bbr], 30),
                ("two BBR", vec![Bbr, Bbr], 30),
            ],
        );
        println!("{path}: {line}");
    }
    for path in PATHS.map(|p| p.lossy(0.01)) {
        let line = runs(
            path,
            vec![
                ("LEDBAT alone", vec![ledbat()], 20),
                ("NewReno alone", vec![NewReno], 20),
                ("NewReno beside LEDBAT", vec![NewReno, ledbat()], 30),
                ("BBR alone", vec![Bbr], 20),
            ],
        );
        println!("{path}: {line}");
    }
    let large = LONG_FAT.into_iter().chain([
        Path::new(1000, 100, 256_000, 100),
        Path::new(1000, 200, 512_000, 50),
        LONG_FAT[0].lossy(0.01),
        Path::new(1000, 100, 256_000, 100).lossy(0.01),
    ]);
    for path in large {
        let line = runs(
            path,
            vec![
                ("BBR alone", vec![Bbr], 30),
                ("NewReno alone", vec![NewReno], 30),
                ("NewReno beside BBR", vec![NewReno, Bbr], 30),
                ("two BBR", vec![Bbr, Bbr], 30),
                ("LEDBAT alone", vec![ledbat()], 30),
                ("NewReno beside LEDBAT", vec![NewReno, ledbat()], 30),
            ],
        );
        println!("{path}, 30 s: {line}");
    }
}

/// One run's outcome as the figures print it: each flow's share of the rate, in the order
/// of its flows, and what the policer dropped.
fn shown(what: &str, o: &Outcome) -> String {
    let shares: Vec<String> = o.shares.iter().map(|s| format!("{s:.3}")).collect();
    format!(
        "{what} {} ({:.2}% dropped)",
        shares.join(" and "),
        o.dropped * 100.0
    )
}

/// Printed, not asserted: the message workload over every policed path and a long lossy
/// one, for each controller.
#[test]
#[ignore = "figures: cargo test --release -p weir-sim --test suites policers:: -- --ignored --nocapture"]
fn message_figures() {
    let long = Path::new(20, 20, 100_000_000, 200).lossy(0.02);
    let paths = [MESSAGE_PATHS[0], unpoliced(0.05), unpoliced(0.2), long]
        .into_iter()
        .chain(PATHS);
    for path in paths {
        for (cc, name) in [
            (CongestionAlgorithm::Bbr, "BBR"),
            (CongestionAlgorithm::NewReno, "NewReno"),
            (ledbat(), "LEDBAT"),
        ] {
            let (secs, dropped) = exchanges(SEED, path, cc, 120);
            println!(
                "{name}, {path}: 120 exchanges in {secs:.2} s, {:.2}% dropped",
                dropped * 100.0
            );
        }
    }
}

/// Printed, not asserted (tests/congestion.md, "What the controllers still get wrong"):
/// BBR alone on paths with no policer whose loss comes in bursts (the Gilbert-Elliott chain
/// of weir-sim, in bursts of about 2 to 50 datagrams), 5 s to 25 s, seeds 1-2: first with
/// 4.5-5.7% of datagrams lost on average (10% in one row), then the same bursts rarer, 1-2.4%
/// lost. A burst that falls in a probe can read as a policer: the path is then rate-bound
/// and BBR keeps a fraction of it.
#[test]
#[ignore = "figures: cargo test --release -p weir-sim --test suites policers:: -- --ignored --nocapture"]
fn burst_loss_figures() {
    // (enter, leave, loss in a burst): bursts of about 10, 50, 2 datagrams, and of 10 and
    // 5 with half their datagrams lost; then each five times rarer (the third six times,
    // as printed since these figures were first taken). Three of the rarer rows are
    // asserted: `bbr_keeps_its_rate_through_light_bursts_of_loss`.
    let heavy = [
        (0.005, 0.1, 1.0),
        (0.001, 0.02, 1.0),
        (0.03, 0.5, 1.0),
        (0.01, 0.1, 0.5),
        (0.05, 0.2, 0.5),
    ];
    let light = [
        (0.001, 0.1, 1.0),
        (0.0002, 0.02, 1.0),
        (0.005, 0.5, 1.0),
        (0.002, 0.1, 0.5),
        (0.01, 0.2, 0.5),
    ];
    for ((mbit, rtt_ms), bursts) in [(100u64, 100u64), (500, 40), (20, 40)]
        .into_iter()
        .flat_map(|path| [(path, heavy), (path, light)])
    {
        for (enter, leave, loss_in_burst) in bursts {
            for seed in 1..=2 {
                let share = through_bursts(
                    seed,
                    mbit,
                    rtt_ms,
                    weir_sim::BurstLoss {
                        enter,
                        leave,
                        loss_in_burst,
                        slot: Duration::from_micros(12_000 / mbit),
                    },
                );
                println!(
                    "{mbit} Mbit/s, {rtt_ms} ms, bursts {enter}/{leave}/{loss_in_burst}, seed {seed}: BBR {share:.3} of the link"
                );
            }
        }
    }
}

/// Printed, not asserted (tests/congestion.md, "Policers", "Large windows"): an application
/// that writes at a fixed rate, from half to 1.3 times the policed rate, dropping what the
/// transport does not take each millisecond (a live source), through the policed paths and
/// the jittery one; BBR and NewReno, seed 1, 5 s to 20 s.
#[test]
#[ignore = "figures: cargo test --release -p weir-sim --test suites policers:: -- --ignored --nocapture"]
fn fixed_rate_figures() {
    let paths = PATHS
        .into_iter()
        .chain([Path::new(1000, 20, 32_000, 20).jittery(6)]);
    for path in paths {
        for factor in [0.5, 0.8, 0.9, 1.05, 1.1, 1.3] {
            for (cc, name) in [
                (CongestionAlgorithm::Bbr, "BBR"),
                (CongestionAlgorithm::NewReno, "NewReno"),
            ] {
                let o = at_fixed_rate(path, factor, cc);
                println!("{path}, written at {factor} of the rate: {}", shown(name, &o));
            }
        }
    }
}

/// One connection through `path` whose application writes `factor` times the policed rate
/// (as [`fixed_rate_figures`] says): what it delivered from 5 s to 20 s as a share of
/// the policed rate, and what the policer dropped.
fn at_fixed_rate(path: Path, factor: f64, cc: CongestionAlgorithm) -> Outcome {
    let (mut sim, client, server) = across(SEED, path);
    let traffic = RefCell::new(Traffic::new());
    let conn = sim.connect_with(client, server, cc);
    let per_ms = (path.policed_mbit as f64 * 1e6 / 8.0 * factor / 1000.0) as usize;
    let chunk = Bytes::from(vec![7u8; per_ms]);
    let (mut stream, mut before) = (None, None);
    let delivered = |t: &RefCell<Traffic>| t.borrow().delivered.values().sum::<u64>();
    for ms in 1..=20_000 {
        run_to_time(&mut sim, &traffic, Duration::from_millis(ms));
        let ep = sim.endpoint(client);
        if stream.is_none() {
            stream = ep.open_stream(conn, weir_core::StreamHeader::default()).ok();
        }
        if let Some(s) = stream {
            // What the send buffer does not take now is dropped: a live source.
            let _ = ep.write(conn, s, chunk.clone());
        }
        if ms == 5_000 {
            before = Some((delivered(&traffic), sim.link_stats(client, server)));
        }
    }
    let (read, stats) = before.expect("the run passed 5 s");
    let stats = sim.link_stats(client, server).since(&stats);
    let sent = stats.datagrams + stats.policer_drops + stats.queue_drops;
    Outcome {
        shares: vec![(delivered(&traffic) - read) as f64 * 8.0 / 15.0 / (path.policed_mbit as f64 * 1e6)],
        dropped: stats.policer_drops as f64 / sent.max(1) as f64,
    }
}
