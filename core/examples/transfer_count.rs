//! The in-memory transfer of `--bench transfer` once, for an instruction count that does
//! not depend on what else the machine is doing:
//!
//! ```text
//! cargo build --release -p weir-core --example transfer_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/transfer_count aes256gcm   # or chacha20poly1305, unprotected
//! ```
//!
//! valgrind prints `Collected : N` (instructions): the connection set-up and a 16 MiB
//! message, sealed, opened and read. A second argument `messages` sends 10,000 messages of
//! 1 KiB instead, each read whole (the per-message path: streams opened, finished,
//! acknowledged and forgotten). `round-trips=N` makes N sequential round trips of 64 bytes
//! each way instead, each read whole (weir-bench's `rtt` workload in memory);
//! `sparse-round-trips=N` the same 5 s apart, each finding both ends trimmed (spec §8,
//! Liveness: what a peer asked something every few seconds costs, as a DHT's are).
//! `lose-every=N` sends the 16 MiB message with every N-th datagram from the client lost
//! (the same ones each run: the receive path under loss, pieces held behind gaps). `unread-trickle=N` sends
//! N rounds of 400,000 bytes on a stream the server reads and 1,000 on one it never reads,
//! and prints the receive blocks allocated afresh (an unread piece kept as a slice keeps its
//! block until a sweep copies it). `handshakes=N` makes N pairs of endpoints and their
//! handshakes instead (run it with two N and divide the difference: one handshake, both
//! sides, with its endpoints' set-up). The endpoints prefetch as weir-driver's do
//! (`Config::prefetch`; `WEIR_PREFETCH=off` leaves it out), and control congestion with
//! NewReno (`WEIR_PAIR_CONGESTION=bbr` for BBR, weir's default: the harness's docs).
//! Datagrams reach the other endpoint one per call; `WEIR_PAIR_HANDOVER=gro-runs` hands
//! them over in runs, as weir-driver hands over a Linux GRO receive (`pair::Handover`).
//! adapters/bench/README.md has the figures; a change that moves them
//! by more than a per cent or two changed the hot path. (Under valgrind ring picks its
//! AVX2 code paths, not AVX-512 ones: compare counts with counts, not with the native
//! run's time.)

#[path = "../benches/support/pair.rs"]
mod pair;

use bytes::Bytes;
use weir_core::wire::Cipher;

use pair::{Handover, Pair, Protection};

const SIZE: usize = 16 << 20;
const MESSAGES: usize = 10_000;
const MESSAGE: usize = 1024;

/// The count N of a second argument `{prefix}N`, if it is one.
fn count(prefix: &str) -> Option<usize> {
    std::env::args().nth(2)?.strip_prefix(prefix)?.parse().ok()
}

fn main() {
    let protection = match std::env::args().nth(1).as_deref() {
        Some("unprotected") => Protection::None,
        Some("chacha20poly1305") => Protection::Sealed(Cipher::ChaCha20Poly1305),
        Some("aes256gcm") | None => Protection::Sealed(Cipher::Aes256Gcm),
        Some(other) => {
            eprintln!("unknown protection {other:?}: unprotected, chacha20poly1305 or aes256gcm");
            std::process::exit(2);
        }
    };
    if let Some(n) = count("handshakes=") {
        // Each a pair of fresh endpoints and its handshake: the difference between two
        // counts, divided by the difference in n, is one handshake with its endpoints.
        for _ in 0..n {
            Pair::connected(protection);
        }
        println!("{n} handshakes");
        return;
    }
    let handover = match std::env::var("WEIR_PAIR_HANDOVER").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("one-by-one") => Handover::OneByOne,
        Ok("gro-runs") => Handover::GroRuns,
        other => {
            eprintln!("WEIR_PAIR_HANDOVER={other:?}: expected one-by-one or gro-runs");
            std::process::exit(2);
        }
    };
    let mut p = Pair::connected(protection).handing_over(handover);
    if let Some(n) = count("round-trips=") {
        // As weir-bench's `rtt`: 64 bytes each way, 40 µs apart (run it with two n and
        // divide the difference: one round trip, both sides).
        assert_eq!(
            p.round_trips(n, 64, weir_core::time::Duration::from_micros(40)),
            n
        );
        println!("{n} round trips of 64 bytes, {} datagrams in all", p.datagrams);
        return;
    }
    if let Some(n) = count("sparse-round-trips=") {
        // Each end trims a second after a round trip; one that comes more than a second
        // after the trim does not make the next wait longer, so every one finds both ends
        // trimmed.
        assert_eq!(p.round_trips(n, 64, weir_core::time::Duration::from_secs(5)), n);
        println!(
            "{n} sparse round trips of 64 bytes, {} datagrams in all",
            p.datagrams
        );
        return;
    }
    if let Some(n) = count("unread-trickle=") {
        let held = p.unread_trickle(n, 400_000, 1000);
        println!(
            "{held} bytes held unread; {} receive blocks of 256 KiB allocated",
            p.blocks_allocated
        );
        return;
    }
    if let Some(n) = count("lose-every=") {
        p.lose_every = n as u64;
    }
    if std::env::args().nth(2).as_deref() == Some("messages") {
        let msgs = vec![Bytes::from(vec![0x42u8; MESSAGE]); MESSAGES];
        assert_eq!(p.messages(&msgs), MESSAGES);
        println!(
            "{MESSAGES} messages of {MESSAGE} bytes transferred, {} datagrams in all",
            p.datagrams
        );
    } else {
        let msg = Bytes::from(vec![0x42u8; SIZE]);
        assert_eq!(p.transfer(&msg), SIZE);
        println!("{SIZE} bytes transferred, {} datagrams in all", p.datagrams);
    }
}
