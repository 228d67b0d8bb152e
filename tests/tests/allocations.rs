//! Allocation bounds of the steady state, counted by the counting allocator: two endpoints
//! in memory (the harness of weir-core's `--bench transfer`), connected first, then counted
//! while a message crosses. What the core allocates per datagram and per message is deterministic,
//! so a change that adds an allocation to the hot path fails here rather than showing as
//! noise in a benchmark.

// Not every protection the harness offers is used here.
#[allow(dead_code)]
#[path = "../../core/benches/support/pair.rs"]
mod pair;

use bytes::Bytes;
use weir_core::wire::Cipher;

mod counting;
use counting::allocations;
use pair::{Pair, Protection};

/// A 4 MiB message, sealed with AES-256-GCM: the harness's receive blocks (one per 256 KiB)
/// aside, the core allocates about once per three datagrams (B-tree nodes of the reassembly
/// map as the window slides, and the lists of packets an ACK acknowledged).
#[test]
fn a_bulk_transfer_allocates_less_than_once_per_datagram() {
    let msg = Bytes::from(vec![7u8; 4 << 20]);
    let mut p = Pair::connected(Protection::Sealed(Cipher::Aes256Gcm));
    let (before, datagrams) = (allocations(), p.datagrams);
    assert_eq!(p.transfer(&msg), msg.len());
    let per = (allocations() - before) as f64 / (p.datagrams - datagrams) as f64;
    println!("{per:.3} allocations per datagram");
    assert!(per < 0.45, "{per:.3} allocations per datagram");
}

/// 1,000 messages of 1 KiB, each a stream of its own, each read whole.
#[test]
fn a_message_costs_a_bounded_number_of_allocations() {
    let msgs = vec![Bytes::from(vec![7u8; 1024]); 1000];
    let mut p = Pair::connected(Protection::Sealed(Cipher::Aes256Gcm));
    let before = allocations();
    assert_eq!(p.messages(&msgs), msgs.len());
    let per = (allocations() - before) as f64 / msgs.len() as f64;
    println!("{per:.2} allocations per message");
    assert!(per < 5.5, "{per:.2} allocations per message");
}
