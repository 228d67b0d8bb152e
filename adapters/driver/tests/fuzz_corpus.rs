//! The `driver` fuzz target's corpus (fuzz/corpus/driver), replayed as `cargo test` runs:
//! every input passes the target's oracles, and twice over gives the same datagrams and
//! answers (the drivers are deterministic: a given seed, a clock moved only by the script).
//! Feature `fuzzing` (the workspace's tests run with every feature).
#![cfg(feature = "fuzzing")]

use std::path::PathBuf;

use weir_core::crypto::Primitives;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/driver");
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

#[test]
fn every_driver_corpus_input_passes_its_oracles_and_repeats_exactly() {
    let inputs = corpus();
    assert!(inputs.len() >= 100, "a corpus of {} inputs", inputs.len());
    for (path, data) in &inputs {
        let first = weir_driver::fuzz::run(data);
        assert_eq!(
            first,
            weir_driver::fuzz::run(data),
            "{}: a second run differs",
            path.display()
        );
    }
}

/// The corpus reaches what the target is for: requests replied to, refused and timed out,
/// channels read to their end, messages delivered, datagrams read.
#[test]
fn the_driver_corpus_exercises_every_kind_of_call() {
    let mut seen = std::collections::BTreeSet::new();
    for (_, data) in corpus() {
        for line in weir_driver::fuzz::answers(&data, Primitives::FuzzingStandIn).lines() {
            let kind = match line {
                l if l.starts_with("reply") && l.contains("Ok(") => "a reply",
                l if l.starts_with("reply") && l.contains("refused") => "a refusal",
                l if l.starts_with("reply") && l.contains("timeout") => "a timeout",
                l if l.starts_with("cancelled") => "a cancel",
                l if l.starts_with("channel end") => "a channel's end",
                l if l.starts_with("channel message") => "a channel message",
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
        "a refusal",
        "a timeout",
        "a cancel",
        "a channel's end",
        "a channel message",
        "a message sent",
        "a datagram read",
        "a close",
    ];
    let missing: Vec<_> = all.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "the corpus never gives {missing:?}");
}
