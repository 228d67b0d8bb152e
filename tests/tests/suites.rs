//! weir-sim's scenario suites, one module per file beside this one, compiled into one test
//! binary: `cargo test -p weir-sim --test suites [module::][test]` (e.g. `--test suites
//! scenarios::`). One binary instead of one per file so that CI compiles and links the shared
//! helpers once, not some forty times, and the harness spreads every suite's tests over the
//! CPUs (tests/README.md, "Running the suites", has what it changed).
//!
//! The suites are independent: each test builds its own simulator, and the counting
//! allocator (`counting`) counts per thread, so what one test counts is its own while others
//! run beside it.

// Helpers the suites share.
mod common;
mod counting;
#[allow(dead_code)] // The benchmarks' pair; the suites leave some of it unused.
#[path = "../../core/benches/support/pair.rs"]
mod pair;
mod pipe_world;
mod sweep;

mod allocations;
mod backlog;
mod bottleneck;
mod circuit_sweep;
mod closing;
mod control;
mod crypto;
mod datagrams;
mod delivery;
mod delivery_sweep;
mod docs;
mod handshake;
mod hostile;
mod jitter;
mod lifecycle;
mod liveness;
mod nat;
mod noise_finish;
mod path_changes;
mod path_mtu;
mod pipe;
mod pipe_ends;
mod pipe_sweep;
mod policers;
mod punch;
mod receiving;
mod relay;
mod scale;
mod scenarios;
mod scheduling;
mod sharing;
mod stopped_streams;
mod stream_ends;
mod stream_grants;
mod tail_loss;
mod traces;
mod transfer;
mod waiting_senders;
mod way_back;
