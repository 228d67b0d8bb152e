//! `cargo bench -p weir-core --features bench-internals --bench reassembly`: 10 MiB in 1,364-byte
//! fragments (7,688 of them, as in Freenet's streaming spike) inserted into a stream's
//! reassembly in order, in random order and in reverse, then read out. Figures in adapters/bench/README.md.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_core::bench_internals::RecvStream;

const TOTAL: usize = 10 << 20;
const FRAGMENT: usize = 1364;

fn fragments(order: &str) -> Vec<(u64, Bytes)> {
    let data = Bytes::from(vec![0x5au8; TOTAL]);
    let mut v: Vec<(u64, Bytes)> = (0..TOTAL)
        .step_by(FRAGMENT)
        .map(|o| (o as u64, data.slice(o..(o + FRAGMENT).min(TOTAL))))
        .collect();
    match order {
        "reverse" => v.reverse(),
        "random" => {
            // A fixed shuffle (xorshift), so every run inserts in the same order.
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for i in (1..v.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.swap(i, (x % (i as u64 + 1)) as usize);
            }
        }
        _ => {}
    }
    v
}

fn reassembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("reassembly_10MiB");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.sample_size(20);
    for order in ["in_order", "random", "reverse"] {
        let frags = fragments(order);
        g.bench_function(order, |b| {
            b.iter_batched(
                || frags.clone(),
                |frags| {
                    let mut s = RecvStream::new(TOTAL as u64);
                    let last = frags.len();
                    for (i, (offset, data)) in frags.into_iter().enumerate() {
                        s.insert(offset, data, i + 1 == last && order == "in_order")
                            .unwrap();
                    }
                    let mut read = 0;
                    while let Some((_, b)) = s.read(usize::MAX) {
                        read += b.len();
                    }
                    black_box(read)
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    // The first fragment of a 10 MiB stream is readable as soon as it is inserted.
    let first = fragments("in_order").swap_remove(0);
    c.bench_function("first_fragment_readable", |b| {
        b.iter(|| {
            let mut s = RecvStream::new(TOTAL as u64);
            s.insert(first.0, first.1.clone(), false).unwrap();
            black_box(s.read(usize::MAX))
        })
    });
}

criterion_group!(benches, reassembly);
criterion_main!(benches);
