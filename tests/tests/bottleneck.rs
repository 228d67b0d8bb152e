//! Congestion control against a modelled bottleneck (rate, drop-tail queue, base delay):
//! the table of goodput and queueing delay, and the floors asserted on it.

use std::cell::RefCell;

use weir_core::congestion::CongestionControl;
use weir_core::time::{Duration, Instant};
use weir_core::{Config, Event, Read};
use weir_sim::Sim;

const SIZE: usize = 10 << 20;

#[derive(Clone, Copy, Debug)]
struct Cell {
    ledbat: bool,
    rtt_ms: u64,
    mbit: u64,
    loss: f64,
}

#[derive(Clone, Copy, Debug)]
struct Outcome {
    /// From Connected to the last byte read by the server.
    elapsed: Duration,
    /// Goodput over the whole transfer, as a share of the bottleneck rate.
    share: f64,
    /// Goodput from the moment a quarter had arrived to the end.
    steady: f64,
    /// Mean time a datagram waited in the bottleneck queue.
    queueing: Duration,
    drops: u64,
}

fn controller(ledbat: bool) -> CongestionControl {
    if ledbat {
        CongestionControl::default()
    } else {
        CongestionControl::NewReno
    }
}

fn config() -> Config {
    Config {
        stream_receive_window: 64 << 20,
        receive_window: 64 << 20,
        ..Config::default()
    }
}

/// One 10 MiB message from client to server over the bottleneck, seeded.
fn transfer(cell: Cell, seed: u64) -> Outcome {
    let mut sim = Sim::new(seed);
    let client = sim.add_node(config());
    let server = sim.add_node(config());
    let rtt = Duration::from_millis(cell.rtt_ms);
    sim.bottleneck_path(client, server, rtt, cell.mbit * 1_000_000, cell.loss);
    sim.connect_with(client, server, controller(cell.ledbat));
    let start = RefCell::new(None::<Instant>);
    let got = RefCell::new(0usize);
    let quarter = RefCell::new(None::<Instant>);
    let body = bytes::Bytes::from(vec![0x5au8; SIZE]);
    let deadline = Instant::ZERO + Duration::from_secs(3_600);
    let done = sim.run_until(
        deadline,
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == client => {
                *start.borrow_mut() = Some(sim.now());
                sim.endpoint(client)
                    .send_message(conn, None, body.clone())
                    .unwrap();
            }
            Event::StreamReadable { conn, stream } if node == server => {
                while let Ok(Read::Data { bytes, .. }) = sim.endpoint(server).read(conn, stream, usize::MAX) {
                    *got.borrow_mut() += bytes.len();
                }
                if *got.borrow() >= SIZE / 4 && quarter.borrow().is_none() {
                    *quarter.borrow_mut() = Some(sim.now());
                }
            }
            _ => {}
        },
        |_| *got.borrow() >= SIZE,
    );
    assert!(done, "{cell:?}: {} of {SIZE} bytes in an hour", got.borrow());
    let end = sim.now();
    let start = start.borrow().unwrap();
    let elapsed = end - start;
    let rate = (cell.mbit * 1_000_000) as f64;
    let share = SIZE as f64 * 8.0 / (elapsed.as_micros() as f64 / 1e6) / rate;
    let steady_time = (end - quarter.borrow().unwrap()).as_micros() as f64 / 1e6;
    let steady = (SIZE - SIZE / 4) as f64 * 8.0 / steady_time / rate;
    let link = sim.link_stats(client, server);
    Outcome {
        elapsed,
        share,
        steady,
        queueing: link.mean_queueing_delay(),
        drops: link.queue_drops,
    }
}

fn row(cell: &Cell, o: &Outcome) -> String {
    format!(
        "| {} | {} | {} | {} | {:.3} | {:.1}% | {:.1}% | {:.1} | {} |",
        if cell.ledbat { "LEDBAT" } else { "NewReno" },
        cell.rtt_ms,
        cell.mbit,
        cell.loss * 100.0,
        o.elapsed.as_micros() as f64 / 1e6,
        o.share * 100.0,
        o.steady * 100.0,
        o.queueing.as_micros() as f64 / 1e3,
        o.drops
    )
}

/// Whether a 10 MiB transfer lasts at least 20 RTTs at the bottleneck rate: below that it is
/// mostly slow start and says little about the rate a controller holds.
fn long_enough(cell: &Cell) -> bool {
    let seconds_at_rate = SIZE as f64 * 8.0 / (cell.mbit as f64 * 1e6);
    seconds_at_rate >= 20.0 * cell.rtt_ms as f64 / 1e3
}

const SNAPSHOT: &str = "snapshots/bottleneck.md";

/// The table of spec'd cells (RTT × rate × random loss, both controllers), compared with
/// the snapshot in tests/snapshots/bottleneck.md (rewrite it with `WEIR_UPDATE_SNAPSHOTS=1`): the run is
/// deterministic, so any change in a figure is a change in behaviour to look at.
#[test]
fn goodput_and_queueing_delay_table() {
    let mut table = String::from(
        "| controller | RTT ms | Mbit/s | loss % | seconds | goodput | steady | queue ms | drops |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let target_ms = 60.0;
    for ledbat in [false, true] {
        for rtt_ms in [10, 50, 150, 300] {
            for mbit in [1, 10, 100] {
                for loss in [0.0, 0.001, 0.01] {
                    let cell = Cell {
                        ledbat,
                        rtt_ms,
                        mbit,
                        loss,
                    };
                    let o = transfer(cell, 1);
                    table.push_str(&row(&cell, &o));
                    table.push('\n');
                    if loss == 0.0 && long_enough(&cell) {
                        assert!(o.steady >= 0.8, "{cell:?}: {o:?}");
                    }
                    if ledbat {
                        let q = o.queueing.as_micros() as f64 / 1e3;
                        assert!(q <= 1.5 * target_ms, "{cell:?}: {o:?}");
                    }
                }
            }
        }
    }
    println!("{table}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var_os("WEIR_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &table).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        table, expected,
        "the table changed: review it, then rerun with WEIR_UPDATE_SNAPSHOTS=1"
    );
}
