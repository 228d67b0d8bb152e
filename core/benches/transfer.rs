//! `cargo bench -p weir-core --bench transfer`: two endpoints driven in one thread, no loss,
//! datagrams handed over in memory: one 64 MiB message from client to server, read by the
//! receiver as it arrives. Measures the core's goodput on one core, unprotected (wire
//! version 1) and sealed with each cipher (version 2): the difference is the crypto's cost
//! per byte. The datagrams reach the receiver one per call; the `_gro_runs` rows hand them
//! over in runs, as weir-driver hands over what a Linux receive gives it (`pair::Handover`).
//! Then with 65,000-byte datagrams (what loopback carries), where the cost per packet is
//! spread over 45 times the bytes. Figures in adapters/bench/README.md.

#[path = "support/pair.rs"]
mod pair;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_core::wire::Cipher;

use pair::{Handover, Pair, Protection};

const SIZE: usize = 64 << 20;

fn transfer(c: &mut Criterion) {
    let msg = Bytes::from(vec![0x42u8; SIZE]);
    let mut g = c.benchmark_group("transfer");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    let (usual, large) = (weir_core::Config::default().max_datagram_size, 65_000);
    let (each, runs) = (Handover::OneByOne, Handover::GroRuns);
    let aes = Protection::Sealed(Cipher::Aes256Gcm);
    for (name, protection, datagram, handover) in [
        ("64MiB_one_thread_unprotected", Protection::None, usual, each),
        (
            "64MiB_one_thread_chacha20poly1305",
            Protection::Sealed(Cipher::ChaCha20Poly1305),
            usual,
            each,
        ),
        ("64MiB_one_thread_aes256gcm", aes, usual, each),
        (
            "64MiB_one_thread_unprotected_gro_runs",
            Protection::None,
            usual,
            runs,
        ),
        ("64MiB_one_thread_aes256gcm_gro_runs", aes, usual, runs),
        (
            "64MiB_one_thread_unprotected_65000B_datagrams",
            Protection::None,
            large,
            each,
        ),
        ("64MiB_one_thread_aes256gcm_65000B_datagrams", aes, large, each),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Pair::connected_with(protection, datagram).handing_over(handover),
                |mut p| p.transfer(&msg),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, transfer);
criterion_main!(benches);
