//! Cost of one ACK in each congestion controller (the per-ACK work of a sender).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use weir_core::congestion::{
    AckEvent, CongestionAlgorithm, CongestionController, LedbatConfig, RateSample, RttSample,
};
use weir_core::time::{Duration, Instant};

/// 1,000 ACKs of two datagrams each, 1 ms apart, with a queueing delay that rises and falls
/// around LEDBAT's target, so both growth and decrease are exercised, and a delivery-rate
/// sample of 2.4 MB/s each, so BBR's model and state machine run.
fn acks() -> Vec<AckEvent> {
    let rtt = Duration::from_millis(50);
    (0..1000u64)
        .map(|i| AckEvent {
            now: Instant::from_micros(1_000_000 + i * 1000),
            bytes_acked: 2400,
            newest_sent: Instant::from_micros(950_000 + i * 1000),
            rtt: RttSample {
                latest: rtt,
                smoothed: rtt,
                min: rtt,
            },
            one_way_delay: Some(25_000 + ((i * 7919) % 120_000) as u32),
            bytes_in_flight: 1 << 20,
            app_limited: false,
            rate: Some(RateSample {
                delivered: 120_000,
                interval: rtt,
                rtt,
                app_limited: false,
                prior_delivered: i * 2400,
                total_delivered: (i + 1) * 2400 + 120_000,
                acked: 2400,
            }),
        })
        .collect()
}

fn per_ack(c: &mut Criterion) {
    let acks = acks();
    for (name, cc) in [
        ("bbr", CongestionAlgorithm::Bbr),
        ("ledbat", CongestionAlgorithm::Ledbat(LedbatConfig::default())),
        ("new_reno", CongestionAlgorithm::NewReno),
    ] {
        c.bench_function(&format!("congestion/{name}/1000 acks"), |b| {
            b.iter_batched(
                || cc.build(1200),
                |mut controller: Box<dyn CongestionController>| {
                    for a in &acks {
                        controller.on_ack(black_box(a));
                    }
                    controller.window()
                },
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, per_ack);
criterion_main!(benches);
