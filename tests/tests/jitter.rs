//! Throughput over a path whose delay jitters datagram by datagram (Wi-Fi, cellular): each
//! datagram waits an extra 0 to `jitter` after the bottleneck, so datagrams arrive out of
//! order by up to the jitter. Loss detection must learn that reordering (RFC 9002 §6.1
//! allows adapting both thresholds) and the controllers must keep the link.

use std::cell::RefCell;

use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::time::{Duration, Instant};
use weir_core::{Config, ConnectionStats, Event, Read};
use weir_sim::{LinkConfig, Sim};

fn config() -> Config {
    Config {
        stream_receive_window: 64 << 20,
        receive_window: 64 << 20,
        send_buffer: 64 << 20,
        ..Config::default()
    }
}

/// 8 MiB over 40 ms and 20 Mbit/s (a queue of one BDP) with `jitter` on the data's way:
/// the goodput from a quarter to nine tenths received, as a share of the link, and the
/// sender's statistics.
fn transfer(cc: CongestionAlgorithm, jitter: Duration) -> (f64, ConnectionStats) {
    let (rtt_ms, mbit, size) = (40u64, 20u64, 8usize << 20);
    let mut sim = Sim::new(1);
    let client = sim.add_node(config());
    let server = sim.add_node(config());
    let back = LinkConfig {
        delay: Duration::from_millis(rtt_ms / 2),
        ..LinkConfig::default()
    };
    let forward = LinkConfig {
        bandwidth: Some(mbit * 1_000_000),
        queue_bytes: (mbit * 1_000_000 / 8 * rtt_ms / 1000) as usize,
        jitter,
        ..back
    };
    sim.link_one_way(client, server, forward);
    sim.link_one_way(server, client, back);
    let conn = sim.connect_with(client, server, cc);
    let got = RefCell::new(0usize);
    let marks = RefCell::new(Vec::<(Instant, usize)>::new());
    let body = bytes::Bytes::from(vec![0x5au8; size]);
    let done = sim.run_until(
        Instant::ZERO + Duration::from_secs(600),
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == client => {
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
    let [(from, from_bytes), (to, to_bytes)] = [marks[0], marks[1]];
    let seconds = (to - from).as_micros() as f64 / 1e6;
    let share = (to_bytes - from_bytes) as f64 * 8.0 / seconds / (mbit as f64 * 1e6);
    let stats = sim.endpoint_ref(client).connection_stats(conn).unwrap();
    (share, stats)
}

/// With 10 and 20 ms of jitter on a 40 ms path, BBR keeps 85% of the link, and so does
/// LEDBAT. Before the time threshold adapted, every datagram delayed past 9/8 RTT was
/// declared lost, a quarter of all datagrams were resent for nothing, and BBR's estimate fell
/// to a tenth of the link (measured: 23.9% and 5.5%). NewReno, which halves on every loss
/// and has no undo when a loss turns out spurious, is printed, not asserted: 34.8% and 28.6%
/// (the few losses before the threshold grows each halve it).
#[test]
fn the_link_stays_full_when_the_delay_jitters() {
    for cc in [
        CongestionAlgorithm::Bbr,
        CongestionAlgorithm::Ledbat(LedbatConfig::default()),
        CongestionAlgorithm::NewReno,
    ] {
        for jitter_ms in [10, 20] {
            let (share, stats) = transfer(cc.clone(), Duration::from_millis(jitter_ms));
            let name = match cc {
                CongestionAlgorithm::Bbr => "BBR",
                CongestionAlgorithm::NewReno => "NewReno",
                _ => "LEDBAT",
            };
            println!(
                "{name}, {jitter_ms} ms jitter: {:.1}% of the link, {} lost ({} spurious), {} bytes resent",
                share * 100.0,
                stats.packets_lost,
                stats.spurious_losses,
                stats.bytes_retransmitted
            );
            if cc != CongestionAlgorithm::NewReno {
                assert!(share >= 0.85, "{name}, {jitter_ms} ms: {share}");
                // Resent: under 2% of the 8 MiB (a quarter before).
                assert!(
                    stats.bytes_retransmitted < 160_000,
                    "{name}, {jitter_ms} ms: {stats:?}"
                );
            }
        }
    }
}
