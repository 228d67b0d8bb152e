//! Cost of the end-to-end digest (spec §8, Verification) a receiver computes over what it reads,
//! and why it is SHA-256: BLAKE3 (a dev-dependency, here only to be compared) beside it, fed
//! the way a receiver reads (one datagram's payload at a time) and in large buffers.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use weir_core::DigestHasher;

/// 4 MiB of varied bytes.
fn data() -> Vec<u8> {
    (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn digests(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("digest");
    group.throughput(Throughput::Bytes(data.len() as u64));
    // 1,100 bytes: about one datagram's stream payload; 1 MiB: a large contiguous buffer.
    for piece in [1100usize, 1 << 20] {
        group.bench_function(format!("sha256/{piece}-byte pieces"), |b| {
            b.iter(|| {
                let mut h = DigestHasher::new();
                data.chunks(piece).for_each(|p| h.update(p));
                black_box(h.finish())
            })
        });
        group.bench_function(format!("blake3/{piece}-byte pieces"), |b| {
            b.iter(|| {
                let mut h = blake3::Hasher::new();
                data.chunks(piece).for_each(|p| {
                    h.update(p);
                });
                black_box(h.finalize())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, digests);
criterion_main!(benches);
