//! `cargo bench -p weir-sim --bench pipe`: a relay piping one message from a sender to a
//! receiver, the three endpoints driven by hand in one thread with datagrams handed over in
//! memory (`weir_sim::relay`).
//!
//! - `pipe/relay`: the relay's forwarding throughput, counting only the time spent in the
//!   relay endpoint's own calls (fragments in, fragments out, acknowledgements, credit).
//! - `pipe/line`: the whole line, sender and receiver included, for scale.
//!
//! Before measuring, it prints the relay memory table (peak bytes waiting and in flight at
//! the relay for three arrival orders) beside Freenet's `PipedStream` figures; the pipe
//! suite asserts the same table.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::congestion::CongestionAlgorithm;
use weir_core::Config;
use weir_sim::relay::{relay_message, Arrival};

const SIZE: usize = 16 << 20;
const TABLE_SIZE: usize = 10 << 20;

fn config() -> Config {
    Config {
        congestion: CongestionAlgorithm::NewReno,
        ..Config::default()
    }
}

fn memory_table() {
    let msg = Bytes::from(vec![0x5au8; TABLE_SIZE]);
    println!("relay memory, one 10 MiB message (bytes):");
    println!("| arrival at the relay | waiting peak | in-flight peak | fragments out of order | Freenet PipedStream |");
    println!("|---|---|---|---|---|");
    for (arrival, freenet) in [
        (Arrival::InOrder, "0"),
        (Arrival::RunsOfTenReversed, "12 KB"),
        (Arrival::RoundReversed, "10 MB"),
    ] {
        let run = relay_message(&config(), arrival, msg.clone());
        assert_eq!(run.received.as_ref().map(Bytes::len), Some(TABLE_SIZE));
        let p = run.peak;
        println!(
            "| {arrival:?} | {} | {} | {} | {freenet} |",
            p.waiting_peak, p.in_flight_peak, p.fragments_out_of_order
        );
    }
}

fn pipe(c: &mut Criterion) {
    memory_table();
    let msg = Bytes::from(vec![0x42u8; SIZE]);
    let mut g = c.benchmark_group("pipe");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("relay/16 MiB", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let run = relay_message(&config(), Arrival::InOrder, msg.clone());
                    assert_eq!(run.received.as_ref().map(Bytes::len), Some(SIZE));
                    run.relay_busy
                })
                .sum()
        })
    });
    g.bench_function("line/16 MiB", |b| {
        b.iter(|| relay_message(&config(), Arrival::InOrder, msg.clone()))
    });
    g.finish();
}

criterion_group!(benches, pipe);
criterion_main!(benches);
