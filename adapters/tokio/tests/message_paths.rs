//! Figures, not a test: a message workload over real UDP through the impairing proxy, one
//! impairment at a time, for what the simulator's bulk transfers do not show. 120 messages
//! of 200 B, 3 kB, 20 kB, 100 kB, 1,300 B and 64 B in turn, each sent with
//! `Confirm::Acknowledged` and checked on arrival before the next, over a 40 ms round trip;
//! printed: the time, the slowest message, and the sender's statistics. Issue 35's
//! forty-seventh round found with it a black hole never detected under such messages, the
//! ACKs that path MTU probes lost on a narrower path (two probe timeouts in each run,
//! persistent congestion in three of five; the simulator did not show it), and a policer
//! dropping 17-19% of BBR's datagrams (NewReno's: 1.4-1.5%); the forty-eighth, that the
//! proxy held each datagram that came alone up to 8 ms past its delay, and BBR's test for
//! a policer under such messages (tests/congestion.md, "A narrower path", "Policers").
//!
//! `cargo test --release -p weir-tokio --test message_paths -- --ignored --nocapture`;
//! `WEIR_FIGURES_CASE=policer` runs the cases whose name holds it, `WEIR_FIGURES_CC=new-reno`
//! (or `ledbat`) sets the congestion controller of both ends, `WEIR_FIGURES_EACH=1` prints
//! the statistics after every message.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_core::congestion::{CongestionAlgorithm, LedbatConfig};
use weir_core::Config;
use weir_sim::proxy::{Burst, Impairment, Outage, Proxy};
use weir_sim::Policer;
use weir_tokio::{Confirm, Endpoint};

const SIZES: [usize; 6] = [200, 3_000, 20_000, 100_000, 1_300, 64];

/// How long one message may take before the run is reported stuck.
const STUCK: Duration = Duration::from_secs(30);

fn controller() -> CongestionAlgorithm {
    match std::env::var("WEIR_FIGURES_CC").as_deref() {
        Ok("new-reno") => CongestionAlgorithm::NewReno,
        Ok("ledbat") => CongestionAlgorithm::Ledbat(LedbatConfig::default()),
        _ => CongestionAlgorithm::Bbr,
    }
}

async fn run(name: &str, path: Impairment, count: u32) {
    let config = Config {
        congestion: controller(),
        ..common::config()
    };
    let bind = || Endpoint::bind(common::local(), config.clone()).unwrap();
    let (a, b) = (bind(), bind());
    let proxy = Proxy::start(b.local_addr(), path).unwrap();
    let conn = a.connect(proxy.addr()).await.unwrap();
    let peer = b.accept().await.unwrap();
    let each = std::env::var_os("WEIR_FIGURES_EACH").is_some();
    let start = Instant::now();
    let (mut slowest, mut bytes) = (Duration::ZERO, 0);
    for i in 0..count {
        let len = SIZES[i as usize % SIZES.len()];
        let m = Bytes::from(vec![i as u8; len]);
        bytes += len;
        let sent = Instant::now();
        let arrived = tokio::time::timeout(STUCK, async {
            conn.send_message_with(m.clone(), Confirm::Acknowledged)
                .await
                .unwrap();
            assert_eq!(peer.recv_message().await.unwrap(), m);
        })
        .await;
        if arrived.is_err() {
            println!(
                "{name}: message {i} ({len} B) stuck {STUCK:?}: {:?}",
                conn.stats().await
            );
            return;
        }
        slowest = slowest.max(sent.elapsed());
        if each {
            println!(
                "  message {i} ({len} B) in {:?}: {:?}",
                sent.elapsed(),
                conn.stats().await
            );
        }
    }
    let s = conn.stats().await.unwrap();
    println!(
        "{name}: {count} messages, {bytes} B in {:?}, slowest {slowest:?}; datagrams sent {}, lost {}, \
         bytes retransmitted {}, probes {}, persistent congestion {}, black holes {}, path MTU {}",
        start.elapsed(),
        s.datagrams_sent,
        s.packets_lost,
        s.bytes_retransmitted,
        s.probes,
        s.persistent_congestion,
        s.black_holes,
        s.path_mtu
    );
    drop(proxy);
}

#[tokio::test]
#[ignore = "figures: cargo test --release -p weir-tokio --test message_paths -- --ignored --nocapture"]
async fn figures() {
    let ms = Duration::from_millis;
    let base = Impairment {
        delay: ms(20),
        ..Impairment::default()
    };
    let cases = [
        ("clean", base),
        ("5% loss", Impairment { loss: 0.05, ..base }),
        ("20% loss", Impairment { loss: 0.2, ..base }),
        (
            "burst loss",
            Impairment {
                burst: Some(Burst {
                    enter: 0.02,
                    leave: 0.2,
                    slot: ms(5),
                }),
                ..base
            },
        ),
        (
            "30 ms jitter",
            Impairment {
                jitter: ms(30),
                ..base
            },
        ),
        (
            "10% duplicated, 10% reordered",
            Impairment {
                duplicate: 0.1,
                reorder: 0.1,
                ..base
            },
        ),
        (
            "policer of 5 Mbit/s, 16 kB bucket",
            Impairment {
                policer: Some(Policer {
                    rate: 5_000_000,
                    burst_bytes: 16_000,
                }),
                ..base
            },
        ),
        (
            "2 MB/s, 64 KiB queue",
            Impairment {
                rate: Some(2_000_000),
                queue_bytes: 64 << 10,
                ..base
            },
        ),
        (
            "2% corrupted, 2% truncated",
            Impairment {
                corrupt: 0.02,
                truncate: 0.02,
                ..base
            },
        ),
        (
            "1.5 s outage",
            Impairment {
                outage: Some(Outage {
                    after: ms(800),
                    lasts: ms(1500),
                }),
                ..base
            },
        ),
        (
            "a new address",
            Impairment {
                readdress: Some(ms(800)),
                ..base
            },
        ),
        (
            "1,280-byte path MTU",
            Impairment {
                mtu: Some(1280),
                ..base
            },
        ),
    ];
    let only = std::env::var("WEIR_FIGURES_CASE").unwrap_or_default();
    for (name, path) in cases {
        if name.contains(&only) {
            run(name, path, 120).await;
        }
    }
}
