//! Replays every committed fuzz corpus (fuzz/corpus/TARGET/*) through the target bodies in
//! `weir_core::fuzz`, so that every seed and every crash turned regression runs in
//! `cargo test`, without nightly or cargo-fuzz.
#![cfg(feature = "fuzzing")]

use std::path::{Path, PathBuf};

use weir_core::fuzz::{TraceRun, TracedRun, TARGETS};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// A target's committed corpus files, in name order.
fn corpus(name: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_replays() {
    let root = corpus_root();
    for (name, body) in TARGETS {
        let files = corpus(name);
        assert!(!files.is_empty(), "target {name} has no committed corpus");
        for file in &files {
            // Captured unless the body panics: then it names the failing file.
            eprintln!("replaying {}", file.display());
            body(&std::fs::read(file).unwrap());
        }
    }
    // Every directory under fuzz/corpus belongs to a target listed here, or to one whose
    // body lives above the core and whose crate replays it.
    const REPLAYED_ELSEWHERE: &[(&str, &str)] = &[
        ("driver", "adapters/driver/tests/fuzz_corpus.rs"),
        ("circuit", "adapters/driver/tests/fuzz_corpus.rs"),
        ("piping", "adapters/driver/tests/fuzz_corpus.rs"),
        ("pool", "adapters/driver/tests/fuzz_corpus.rs"),
        ("router", "adapters/driver/tests/fuzz_corpus.rs"),
    ];
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let elsewhere = REPLAYED_ELSEWHERE.iter().find(|(t, _)| *t == name);
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name)
                || elsewhere.is_some_and(|(_, test)| root.join("../..").join(test).is_file()),
            "corpus {name} has no replay entry"
        );
    }
}

/// The determinism oracle (fuzz/README.md) over every corpus input of the whole-endpoint
/// targets (`traced_targets`): the same input run twice, each run in a fresh world, records the same traces
/// byte for byte at every endpoint (every input and output of every call). `endpoint` and
/// `hostile` check it under the fuzzer too, by replaying their trace; the others would pay
/// a second run per input there, so they are checked here, on what the fuzzer kept.
#[test]
fn every_whole_endpoint_corpus_input_runs_the_same_twice() {
    for name in weir_core::fuzz::traced_targets() {
        for file in corpus(name) {
            let input = std::fs::read(&file).unwrap();
            let traces = || {
                let mut run = TracedRun::new(TraceRun::AsFuzzed);
                run.run(name, &input).unwrap();
                run.traces()
            };
            let (first, second) = (traces(), traces());
            assert!(!first.is_empty(), "{}: nothing traced", file.display());
            assert!(first == second, "{}: a second run differs", file.display());
        }
    }
}

/// The determinism oracle above fires on runs whose outputs differ: two builds that differ
/// only in a flag (the primitives, the stand-in's against the real ones) record different
/// traces for the same input, as a build whose outputs depended on anything but its inputs
/// would. `handshake` uses the real primitives either way, so it is left out.
#[test]
fn the_determinism_oracle_tells_two_builds_apart() {
    for name in weir_core::fuzz::traced_targets().filter(|&t| t != "handshake") {
        let file = corpus(name)
            .into_iter()
            .max_by_key(|f| std::fs::metadata(f).unwrap().len());
        let input = std::fs::read(file.unwrap()).unwrap();
        let traces = |how| {
            let mut run = TracedRun::new(how);
            run.run(name, &input).unwrap();
            run.traces()
        };
        let (fuzzed, real) = (traces(TraceRun::AsFuzzed), traces(TraceRun::RealPrimitives));
        assert!(!fuzzed.is_empty(), "{name}: nothing traced");
        assert!(
            fuzzed != real,
            "{name}: the comparison cannot tell the builds apart"
        );
    }
}

/// The `PathChanged` events of every endpoint of `target` run on each of its corpus
/// inputs, one list per input.
fn path_changes(target: &str) -> Vec<Vec<String>> {
    corpus(target)
        .iter()
        .map(|file| {
            let mut run = TracedRun::new(TraceRun::AsFuzzed);
            run.run(target, &std::fs::read(file).unwrap()).unwrap();
            run.traces()
                .into_iter()
                .flat_map(|(_, t)| {
                    t.lines()
                        .filter(|l| l.contains("PathChanged"))
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect()
}

/// `relay` is also the target for hole punching and path switching (spec §12.5): on the
/// fuzzer's network, where every address reaches every other, the ends punch a direct
/// path, and the fuzzer's losses and delays send them back to the circuit. Its corpus
/// keeps both switches covered.
#[test]
fn the_relay_corpus_switches_paths_both_ways() {
    let (mut direct, mut back) = (0, 0);
    let files = path_changes("relay");
    for changes in &files {
        direct += usize::from(changes.iter().any(|l| l.contains("Direct(")));
        back += usize::from(changes.iter().any(|l| l.contains("Relayed {")));
    }
    println!(
        "{} inputs: {direct} went direct, {back} went back to the relay",
        files.len()
    );
    assert!(
        direct * 2 > files.len(),
        "{direct} of {} went direct",
        files.len()
    );
    assert!(
        back * 5 > files.len(),
        "{back} of {} went back to the relay",
        files.len()
    );
}

/// `migration`'s corpus (and its batched twin's) keeps the server following its client to
/// the port a NAT rebound it to (spec §10.2): in most inputs the server's connection
/// changes path.
#[test]
fn the_migration_corpus_follows_rebound_clients() {
    for target in ["migration", "migration_batch"] {
        let files = path_changes(target);
        let followed = files.iter().filter(|c| !c.is_empty()).count();
        println!(
            "{target}: {} inputs, the connection followed a rebinding in {followed}",
            files.len()
        );
        assert!(
            followed * 2 > files.len(),
            "{target}: {followed} of {}",
            files.len()
        );
    }
}

/// The batched targets hand datagrams over in batches: over each one's committed corpus,
/// every endpoint's trace (the relay's too, in `relay_batch`; the target's and its honest
/// peers', in `hostile_batch` and `endpoint_batch`) holds `batch` records (a call of several datagrams; one of
/// one datagram is an `in`), and they are no small share of the calls (else the target
/// would be `pair`, `relay`, `hostile`, `migration` or `endpoint` under another name). A duplicated or corrupted
/// datagram still goes alone, as do handshakes' single packets and the attackers'
/// datagrams.
#[test]
fn the_batched_targets_hand_several_datagrams_over_at_once() {
    for target in [
        "batch",
        "relay_batch",
        "hostile_batch",
        "migration_batch",
        "endpoint_batch",
    ] {
        let (mut alone, mut several) = (0, 0);
        let mut by_endpoint = std::collections::BTreeMap::new();
        for file in corpus(target) {
            let input = std::fs::read(&file).unwrap();
            let mut run = TracedRun::new(TraceRun::AsFuzzed);
            run.run(target, &input).unwrap();
            for (at, trace) in run.traces() {
                for line in trace.lines() {
                    match line.split(' ').nth(1) {
                        Some("in") => alone += 1,
                        Some("batch") => {
                            several += 1;
                            // By IP: a rebound client (`migration_batch`) keeps its IP, not its port.
                            *by_endpoint.entry(at.ip()).or_insert(0) += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
        eprintln!("{target}: {several} calls of several datagrams, {alone} of one: {by_endpoint:?}");
        assert!(
            several * 10 >= several + alone,
            "{target}: {several} of {}",
            several + alone
        );
        let endpoints = match target {
            "relay_batch" => 3,
            // The target and its two honest peers.
            "endpoint_batch" => 3,
            // The target and its three honest peers.
            "hostile_batch" => 4,
            _ => 2,
        };
        assert_eq!(by_endpoint.len(), endpoints, "{target}: {by_endpoint:?}");
    }
}
