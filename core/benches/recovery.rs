//! `cargo bench -p weir-core --features bench-internals --bench recovery`: the sender's loss
//! recovery processing one ACK of 64 packets of 1,452 bytes, all acknowledged, or with
//! every eighth left out (those eight declared lost by the packet threshold once later
//! ones are acknowledged). What one ACK costs a bulk sender; figures in adapters/bench/README.md.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use weir_core::bench_internals::BenchSender;
use weir_core::time::{Duration, Instant};

const PACKETS: usize = 64;

fn sent() -> (BenchSender, Vec<u64>) {
    let mut s = BenchSender::default();
    let numbers = s.send(Instant::ZERO, PACKETS, 1452);
    (s, numbers)
}

fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery_ack_of_64");
    let at = Instant::ZERO + Duration::from_millis(1);
    g.bench_function("all_acknowledged", |b| {
        b.iter_batched(
            sent,
            |(mut s, numbers)| {
                let (acked, lost) = s.ack(at, &numbers);
                assert_eq!((acked, lost), (PACKETS, 0));
                black_box(s)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("every_eighth_lost", |b| {
        b.iter_batched(
            || {
                let (s, numbers) = sent();
                let acked: Vec<u64> = (0..numbers.len())
                    .filter(|i| i % 8 != 0)
                    .map(|i| numbers[i])
                    .collect();
                (s, acked)
            },
            |(mut s, acked)| {
                let (got, lost) = s.ack(at, &acked);
                assert!(got == acked.len() && lost > 0, "{got} acked, {lost} lost");
                black_box(s)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, recovery);
criterion_main!(benches);
