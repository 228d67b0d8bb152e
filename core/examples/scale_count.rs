//! The scale bench's `message-paced/N` (`--bench scale`: a 64-byte message on a different
//! one of N connections each time, virtual time moving so that each connection has one
//! every 100 ms) counted rather than timed, for the per-message cost's split between work
//! and cache misses at each count (issue 35: the cost per event must not grow with the
//! count). N connections are established first, then M messages sent; only the messages
//! are counted, by callgrind with its cache simulation:
//!
//! ```text
//! cargo build --release -p weir-core --example scale_count
//! valgrind --tool=callgrind --cache-sim=yes --collect-atstart=no \
//!     --toggle-collect='*scale_count::messages*' --callgrind-out-file=OUT \
//!     target/release/examples/scale_count 10000 20000
//! callgrind_annotate OUT | head -20
//! ```
//!
//! The totals divided by M are a message's instructions (Ir), first-level data misses
//! (D1mr + D1mw) and last-level misses (DLmr + DLmw), both endpoints together. The
//! last-level cache simulated is this machine's, as valgrind reads it (it says which at
//! the start of its output). Figures in adapters/bench/README.md ("Many connections").
//! The endpoints prefetch as the bench's do (`WEIR_PREFETCH=off` to leave it out); valgrind
//! does not simulate a prefetch, so these counts are the same either way but for the
//! hook's own instructions: what it saves shows only in the timed bench. With
//! `WEIR_PREFETCH=read` the hook reads a byte of each line it is shown instead
//! (`benches/support/prefetch.rs`): the misses a prefetch would start early are then
//! counted in the hook (`scale_count::scale_world::prefetch::read`), and those the rest of
//! the code still takes are the ones no prefetch covers. `--LL=2097152,16,64` simulates a
//! 2 MiB last-level cache instead of the machine's (which valgrind reads as 480 MiB on
//! this VM, where nothing below 100,000 connections would miss).

#[path = "../benches/support/scale_world.rs"]
mod scale_world;

use scale_world::World;
use weir_core::time::Duration;

/// `m` messages, each on the next connection in the stride, each followed by its share of
/// 100 ms of virtual time (at least a microsecond).
#[inline(always)]
fn paced(world: &mut World, n: usize, m: usize) {
    let step = Duration::from_micros((100_000 / n as u64).max(1));
    for _ in 0..m {
        world.message(true, step);
    }
}

/// The counted messages: a function of their own, named in callgrind's toggle.
#[inline(never)]
fn messages(world: &mut World, n: usize, m: usize) {
    paced(world, n, m);
}

/// One message on each connection, not counted.
#[inline(never)]
fn warm_up(world: &mut World, n: usize) {
    paced(world, n, n);
}

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (n, m) = (arg(1, 10_000), arg(2, 20_000));
    let mut world = World::new(n);
    // A round of every connection first, uncounted: each has had a message and its
    // answer before the counted ones, as in the bench after its warm-up.
    warm_up(&mut world, n);
    world.report("set-up and a message on each connection");
    messages(&mut world, n, m);
    world.report(&format!("{m} messages over {n} connections"));
}
