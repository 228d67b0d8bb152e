//! `cargo bench -p weir-core --bench scale`: what an event costs one endpoint holding many
//! connections, at 1,000, 10,000 and 100,000 (issue 35: the cost per event must not grow
//! with the count). A client endpoint and a server endpoint in one thread, datagrams handed
//! over in memory, every connection established first (default configuration, encrypted;
//! admission control off, since every client comes from one address at once):
//!
//! - `message/N`: a 64-byte message on one of the N connections (a different one each
//!   time, spread over all of them) sent, carried, read by the server, and what the server
//!   answers (its acknowledgement) carried back; virtual time moves 10 µs per message and
//!   every timer that comes due fires (keep-alives and acknowledgement delays included).
//!   At 100,000 a connection's messages come 1 s apart, as long as a connection's quiet
//!   before it trims (spec §8, Liveness): a throw-away build that printed each trim
//!   counted 63,606 of them during a run's 163,605 messages (warm-up included), each
//!   making the connection's keys and queues' room again at its next packet; with trims
//!   switched off (a throw-away build) the figure was the same within its spread
//!   (adapters/bench/rounds.md, "Issue 35, fiftieth round").
//! - `message-paced/N`: as `message/N`, but virtual time moves 100 ms / N per message (in
//!   whole microseconds: counts up to 100,000), so that each connection has one message
//!   every 100 ms at every count. In `message/N` a connection's messages come 10 µs x N
//!   apart: 10 ms at 1,000, within the client's acknowledgement delay (25 ms), so its
//!   acknowledgement of the server's receipt rides on the next message; 100 ms and more
//!   from 10,000 on, so it goes alone when the delay runs out, a third datagram. This
//!   variant keeps the traffic each connection sees the same, leaving what the count
//!   itself costs.
//! - `message-one/N`: the same on connection 0 every time: what the count costs the
//!   endpoint's own structures (indices, timer queue), without the cache misses of
//!   touching a different connection's state each time.
//! - `idle/N`: a millisecond of virtual time with no message, every timer that comes due
//!   firing: the background work N connections make (a hundredth of it is in `message/N`).
//! - `handshake/N`: one more connection's whole handshake (Noise XX), made and then closed,
//!   with N connections already held.
//!
//! Both endpoints prefetch a connection's memory as an input reaches it, with the hook
//! weir-driver gives its endpoints (`Config::prefetch`; `support/prefetch.rs`);
//! `WEIR_PREFETCH=off` runs them without it, to compare in one build.
//!
//! After each message group, the datagrams per message (both ways) are printed: what the
//! group's time is spread over. Between groups, what the last one left owed (receipts'
//! lazy acknowledgements) goes out unmeasured (`World::settle`).
//!
//! Set-up takes a while at 100,000 (about a minute here); `WEIR_SCALE=1000,10000` picks the
//! counts. Figures in adapters/bench/README.md ("Many connections").

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use weir_core::time::Duration;

#[path = "support/scale_world.rs"]
mod scale_world;

use scale_world::World;

fn counts() -> Vec<usize> {
    std::env::var("WEIR_SCALE")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(20);
    for n in counts() {
        let mut world = World::new(n);
        let step = Duration::from_micros(10);
        world.report("set-up");
        g.bench_with_input(BenchmarkId::new("message", n), &n, |b, _| {
            b.iter(|| world.message(true, step))
        });
        world.report(&format!("message/{n}"));
        world.settle();
        let paced = Duration::from_micros(100_000 / n as u64);
        g.bench_with_input(BenchmarkId::new("message-paced", n), &n, |b, _| {
            b.iter(|| world.message(true, paced))
        });
        world.report(&format!("message-paced/{n}"));
        world.settle();
        world.next = 0;
        g.bench_with_input(BenchmarkId::new("message-one", n), &n, |b, _| {
            b.iter(|| world.message(false, step))
        });
        world.report(&format!("message-one/{n}"));
        world.settle();
        g.bench_with_input(BenchmarkId::new("idle", n), &n, |b, _| {
            b.iter(|| {
                world.tick(Duration::from_millis(1));
                world.shuttle()
            })
        });
        g.bench_with_input(BenchmarkId::new("handshake", n), &n, |b, _| {
            b.iter(|| world.handshake())
        });
    }
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
