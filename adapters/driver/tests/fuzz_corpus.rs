//! The corpora of the fuzz targets over drivers (fuzz/corpus/driver, fuzz/corpus/piping,
//! fuzz/corpus/pool, fuzz/corpus/circuit),
//! replayed as `cargo test` runs: every input passes its target's oracles, and twice over
//! gives the same datagrams and answers (the drivers are deterministic: a given seed, a
//! clock moved only by the script). And the shards' router's (fuzz/corpus/router): every
//! input passes its oracles. Feature `fuzzing` (the workspace's tests run with every
//! feature).
#![cfg(feature = "fuzzing")]

use std::path::PathBuf;

use weir_core::crypto::Primitives;
use weir_driver::fuzz::Target;

fn corpus(target: Target) -> Vec<(PathBuf, Vec<u8>)> {
    corpus_named(target.name())
}

/// The inputs in fuzz/corpus/`name`, in name order.
fn corpus_named(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .map(|p| {
            let data = std::fs::read(&p).expect("a corpus file");
            (p, data)
        })
        .collect();
    inputs.sort();
    inputs
}

/// Every input of `target`'s corpus passes its oracles, and runs the same twice.
fn replay(target: Target) {
    let inputs = corpus(target);
    assert!(inputs.len() >= 100, "a corpus of {} inputs", inputs.len());
    for (path, data) in &inputs {
        let first = target.run(data);
        assert_eq!(
            first,
            target.run(data),
            "{}: a second run differs",
            path.display()
        );
    }
}

#[test]
fn every_driver_corpus_input_passes_its_oracles_and_repeats_exactly() {
    replay(Target::Driver);
}

#[test]
fn every_piping_corpus_input_passes_its_oracles_and_repeats_exactly() {
    replay(Target::Piping);
}

/// A kind of answer: its name, and whether an answer line is of that kind.
type AnswerKind = (&'static str, fn(&str) -> bool);

/// The kinds of answer `target`'s corpus never gives, of `kinds`.
fn missing(target: Target, kinds: &[AnswerKind]) -> Vec<&'static str> {
    let mut seen = std::collections::BTreeSet::new();
    for (_, data) in corpus(target) {
        for line in target.answers(&data, Primitives::FuzzingStandIn).lines() {
            seen.extend(kinds.iter().filter(|(_, is)| is(line)).map(|(name, _)| *name));
        }
    }
    kinds
        .iter()
        .map(|(name, _)| *name)
        .filter(|n| !seen.contains(n))
        .collect()
}

/// The piping corpus reaches what the target is for: streams piped to one receiver and to
/// both, forked (and a fork stopped by its reader, failing its pipe), refused, read whole and in pieces, stopped, reset by their sender, and
/// delivered; pipes that ended well, and pipes that passed their sender's reset on (the
/// sender holds a reset until its next send, so that the relay may have piped the stream
/// by then); closes and shutdowns.
#[test]
fn the_piping_corpus_exercises_every_kind_of_answer() {
    let kinds: &[AnswerKind] = &[
        ("a pipe to one receiver", |l| {
            l.starts_with("route") && l.contains("Pipe([1])")
        }),
        ("a pipe to both", |l| {
            l.starts_with("route") && l.contains("Pipe([1, 2])")
        }),
        ("a fork", |l| l.starts_with("route") && l.contains("Fork")),
        ("a refusal", |l| l.starts_with("refused")),
        ("a stream read whole by a receiver", |l| {
            l.starts_with("read whole (1") || l.starts_with("read whole (2")
        }),
        ("a stream read whole by the relay", |l| {
            l.starts_with("read whole (0")
        }),
        ("a stop", |l| l.starts_with("stopped")),
        ("a reset", |l| l.starts_with("reset")),
        ("a stream delivered", |l| {
            l.starts_with("sent") && l.contains("Ok(")
        }),
        ("a stream not delivered", |l| {
            l.starts_with("sent") && l.contains("not delivered")
        }),
        ("a pipe that ended well", |l| {
            l.starts_with("piped") && l.contains("Ok(")
        }),
        ("a pipe that passed its sender's reset on", |l| {
            l.starts_with("piped") && l.contains("the sender abandoned the stream")
        }),
        ("a fork its reader stopped", |l| l.starts_with("fork stopped")),
        ("a pipe that failed as stopped at the relay", |l| {
            l.starts_with("piped") && l.contains("the relay stopped the stream")
        }),
        ("a close", |l| l.starts_with("closed")),
        ("a shutdown", |l| l.starts_with("shut down")),
    ];
    let missing = missing(Target::Piping, kinds);
    assert!(missing.is_empty(), "the piping corpus never gives {missing:?}");
}

/// The corpus reaches what the target is for: requests replied to, refused and timed out,
/// replies read in pieces and refused over their call's limit, channels read to their end
/// and refusing a message over their reader's limit, messages delivered, datagrams read.
#[test]
fn the_driver_corpus_exercises_every_kind_of_call() {
    let mut seen = std::collections::BTreeSet::new();
    for (_, data) in corpus(Target::Driver) {
        for line in weir_driver::fuzz::answers(&data, Primitives::FuzzingStandIn).lines() {
            let kind = match line {
                l if l.starts_with("reply in pieces") => "a reply read in pieces",
                l if l.starts_with("reply") && l.contains("longer than the limit") => {
                    "a reply over its limit"
                }
                l if l.starts_with("reply") && l.contains("Ok(") => "a reply",
                l if l.starts_with("reply") && l.contains("refused") => "a refusal",
                l if l.starts_with("reply") && l.contains("timeout") => "a timeout",
                l if l.starts_with("cancelled") => "a cancel",
                l if l.starts_with("channel end") => "a channel's end",
                l if l.starts_with("channel message") => "a channel message",
                l if l.starts_with("channel error") && l.contains("-byte limit") => {
                    "a channel message over its limit"
                }
                l if l.starts_with("message sent") && l.contains("Ok(") => "a message sent",
                l if l.starts_with("datagram (") => "a datagram read",
                l if l.starts_with("closed") => "a close",
                _ => continue,
            };
            seen.insert(kind);
        }
    }
    let all = [
        "a reply",
        "a reply read in pieces",
        "a reply over its limit",
        "a refusal",
        "a timeout",
        "a cancel",
        "a channel's end",
        "a channel message",
        "a channel message over its limit",
        "a message sent",
        "a datagram read",
        "a close",
    ];
    let missing: Vec<_> = all.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "the corpus never gives {missing:?}");
}

#[test]
fn every_pool_corpus_input_passes_its_oracles_and_repeats_exactly() {
    replay(Target::Pool);
}

/// The pool corpus reaches what the target is for: dials by key and by address, a dial
/// given the connection an earlier one was and one given a new connection after the first
/// ended, a dial that failed and one given up; handles let go; closes at both ends, with
/// the client told of the connection going down; the idle time set.
#[test]
fn the_pool_corpus_exercises_every_kind_of_answer() {
    let kinds: &[AnswerKind] = &[
        ("a dial by key", |l| {
            l.starts_with("dialed") && l.contains("by_key: true")
        }),
        ("a dial by address", |l| {
            l.starts_with("dialed") && l.contains("by_key: false")
        }),
        ("the same connection again", |l| {
            l.starts_with("dialed") && l.contains("\"again\"")
        }),
        ("a dial that failed", |l| l.starts_with("dial failed")),
        ("a dial given up", |l| l.starts_with("dial given up")),
        ("a handle let go", |l| l.starts_with("let go")),
        ("a close by the client", |l| l.starts_with("closed")),
        ("a close by a server", |l| l.starts_with("server closed")),
        ("a connection down", |l| l.starts_with("peer event Down")),
        ("the idle time set", |l| l.starts_with("idle")),
    ];
    let missing = missing(Target::Pool, kinds);
    assert!(missing.is_empty(), "the pool corpus never gives {missing:?}");
}

#[test]
fn every_circuit_corpus_input_passes_its_oracles_and_repeats_exactly() {
    replay(Target::Circuit);
}

/// The circuit corpus reaches what the target is for: reservations made, connections
/// through the relay (by `connect_via` and by a race with the server's address) and
/// refused, messages the server read and echoed back, closes of the connection and of
/// either end's connection to the relay, and handles let go.
#[test]
fn the_circuit_corpus_exercises_every_kind_of_answer() {
    let kinds: &[AnswerKind] = &[
        ("a reservation", |l| l.starts_with("reserved Ok")),
        ("a connection via the relay", |l| {
            l.starts_with("connected (\"via\"")
        }),
        ("a connection won by a race", |l| {
            l.starts_with("connected (\"racing\"")
        }),
        ("a connection refused", |l| l.starts_with("not connected")),
        ("a message the server read", |l| l.starts_with("server read")),
        ("an echo read", |l| l.starts_with("echo")),
        ("a close", |l| l.starts_with("closed (")),
        ("a close to the relay", |l| l.starts_with("closed to relay")),
        ("a handle let go", |l| l.starts_with("let go")),
    ];
    let missing = missing(Target::Circuit, kinds);
    assert!(missing.is_empty(), "the circuit corpus never gives {missing:?}");
}

#[test]
fn every_router_corpus_input_passes_its_oracles() {
    let inputs = corpus_named("router");
    assert!(inputs.len() >= 20, "a corpus of {} inputs", inputs.len());
    for (_, data) in &inputs {
        weir_driver::fuzz::router::run(data);
    }
}
