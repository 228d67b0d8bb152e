//! The `fuzz_trace` binary (fuzz/README.md, "A crash becomes a trace"), run as a user runs
//! it: its exit codes, what it says, and the traces it writes.
#![cfg(feature = "fuzzing")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fuzz_trace(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fuzz_trace"))
        .args(args)
        .output()
        .expect("fuzz_trace runs")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// A fresh folder for one test's traces.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-fuzz-trace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn an_input_that_fails_gives_traces_of_both_runs_and_exit_code_0() {
    let dir = scratch("fails");
    let input = repo("fuzz/findings/forgery.learned-stand-in-tag/input");
    let out = fuzz_trace(&[Path::new("forgery"), &input, &dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // The stand-in's learned tag forges only as fuzzed; the real AEAD refuses it.
    assert!(stdout.contains("as-fuzzed: FAILED: "), "{stdout}");
    assert!(stdout.contains("real: no failure"), "{stdout}");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "as-fuzzed-1.trace",
            "as-fuzzed-2.trace",
            "real-1.trace",
            "real-2.trace"
        ]
    );
    // Each real trace replays in any build, as the binary says.
    for file in ["real-1.trace", "real-2.trace"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        weir_core::trace::replay(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(stdout.contains(&format!("{file} (")), "{stdout}");
    }
    assert_eq!(stdout.matches(": replays, ").count(), 4, "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_input_that_fails_in_neither_run_exits_1() {
    let dir = scratch("clean");
    let input = repo("fuzz/findings/migration.receive-budget-honest-peer/input");
    let out = fuzz_trace(&[Path::new("migration"), &input, &dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("as-fuzzed: no failure") && stdout.contains("real: no failure"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let dir = scratch("usage");
    let input = repo("fuzz/findings/forgery.learned-stand-in-tag/input");
    for (args, says) in [
        (vec![Path::new("forgery")], "usage: fuzz_trace TARGET INPUT DIR"),
        (
            vec![
                Path::new("forgery"),
                Path::new("/nonexistent/input"),
                dir.as_path(),
            ],
            "cannot read /nonexistent/input",
        ),
        (
            vec![Path::new("decode_packet"), input.as_path(), dir.as_path()],
            "no endpoints to trace",
        ),
        (
            vec![Path::new("no_such_target"), input.as_path(), dir.as_path()],
            "no_such_target",
        ),
    ] {
        let out = fuzz_trace(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
