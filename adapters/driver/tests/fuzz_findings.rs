//! The findings of the fuzz targets over drivers (`driver`, `piping`, `pool`, `circuit`) as traces
//! (fuzz/README.md, "A crash becomes a trace"): each folder `fuzz/findings/TARGET.WHAT/`
//! holds the input the fuzzer found and the traces every endpoint's core recorded on it
//! with the real primitives (`real-PORT.trace`, secrets inlined: for `driver` 1000 the
//! client's and 2000 the server's, for `piping` 1000 the sender's, 2000 the relay's, 3000
//! and 4000 the receivers'), as `cargo run -p weir-driver --features fuzzing --bin
//! driver_finding` writes them. Here the input runs again without failing (the fix holds),
//! records the same traces byte for byte, and each replays. A change of behaviour made on
//! purpose rewrites them, to be reviewed in the diff:
//!
//! ```text
//! WEIR_UPDATE_TRACES=1 cargo test -p weir-driver --features fuzzing --test fuzz_findings
//! ```
//!
//! (The other targets' findings are weir-core's: `core/tests/fuzz_findings.rs`.)
#![cfg(feature = "fuzzing")]

use std::path::{Path, PathBuf};

use weir_core::crypto::Primitives;
use weir_core::trace::TraceSecrets;
use weir_driver::fuzz::Target;

fn findings() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| target(p).is_some())
        .collect();
    dirs.sort();
    dirs
}

/// The target a finding's folder is of, by its name: `driver` or `piping`.
fn target(dir: &Path) -> Option<Target> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    Target::ALL
        .into_iter()
        .find(|t| name.starts_with(&format!("{}.", t.name())))
}

/// The traces `input` records now on `target`, secrets inlined, by file name.
fn recorded(target: Target, input: &[u8]) -> Vec<(String, String)> {
    let scratch = std::env::temp_dir().join(format!("weir-driver-findings-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let pattern = scratch.join("real-{port}.trace");
    target.record(input, Primitives::Real, &pattern.to_string_lossy());
    let traces = target
        .ports()
        .iter()
        .map(|port| {
            let file = format!("real-{port}.trace");
            let path = scratch.join(&file);
            let text = std::fs::read_to_string(&path).unwrap();
            let secrets = std::fs::read_to_string(weir_driver::secrets_path(&path)).unwrap();
            let secrets = TraceSecrets::parse(&secrets).unwrap();
            (file, weir_core::trace::inline_secrets(&text, &secrets).unwrap())
        })
        .collect();
    std::fs::remove_dir_all(&scratch).unwrap();
    traces
}

#[test]
fn every_finding_over_drivers_runs_clean_and_its_traces_replay() {
    let dirs = findings();
    assert!(!dirs.is_empty(), "no findings of the targets over drivers");
    let update = std::env::var_os("WEIR_UPDATE_TRACES").is_some();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(dir.join("input")).unwrap_or_else(|e| panic!("{name}: input: {e}"));
        let target = target(&dir).expect("filtered by target");
        for (file, text) in recorded(target, &input) {
            let at = dir.join(&file);
            if update {
                std::fs::write(&at, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&at).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert!(
                committed == text,
                "{name}/{file}: the run records another trace now (behaviour changed; if on \
                 purpose, WEIR_UPDATE_TRACES=1 and review the diff)"
            );
            let replayed = weir_core::trace::replay(&text).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert!(replayed.outputs > 0, "{name}/{file}: nothing to compare");
        }
    }
}

/// The findings over drivers not fixed yet (fuzz/open/, laid out as fuzz/findings/ but with
/// only an input): each fails until its fix lands, when it moves to fuzz/findings/ with its
/// traces. `cargo test -p weir-driver --features fuzzing --test fuzz_findings -- --ignored`
/// shows them failing.
#[test]
#[ignore = "open findings fail until fixed: fuzz/open/"]
fn every_open_finding_over_drivers_runs_clean() {
    let open = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/open");
    let Ok(entries) = std::fs::read_dir(&open) else {
        return;
    };
    for dir in entries.map(|e| e.unwrap().path()) {
        if let Some(target) = target(&dir) {
            let input = std::fs::read(dir.join("input")).unwrap();
            target.run(&input);
        }
    }
}
