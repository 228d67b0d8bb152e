//! Replays every committed fuzz corpus (fuzz/corpus/TARGET/*) through the target bodies in
//! `weir_core::fuzz`, so that every seed and every crash turned regression runs in
//! `cargo test`, without nightly or cargo-fuzz.
#![cfg(feature = "fuzzing")]

use std::path::Path;

/// A fuzz target's body.
type Body = fn(&[u8]);

/// Each fuzz target by name, with its body.
const TARGETS: &[(&str, Body)] = &[
    ("decode_packet", weir_core::fuzz::decode_packet),
    ("endpoint", weir_core::fuzz::endpoint),
    ("flow", weir_core::fuzz::flow),
    ("forgery", weir_core::fuzz::forgery),
    ("handshake", weir_core::fuzz::handshake),
    ("hostile", weir_core::fuzz::hostile),
    ("pair", weir_core::fuzz::pair),
    ("pipe", weir_core::fuzz::pipe),
    ("reassembly", weir_core::fuzz::reassembly),
    ("recovery", weir_core::fuzz::recovery),
];

#[test]
fn every_corpus_file_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, body) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "target {name} has no committed corpus");
        for file in &files {
            // Captured unless the body panics: then it names the failing file.
            eprintln!("replaying {}", file.display());
            body(&std::fs::read(file).unwrap());
        }
    }
    // Every directory under fuzz/corpus belongs to a target listed here.
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "corpus {name} has no replay entry"
        );
    }
}
