//! `driver_finding` as a user runs it (fuzz/README.md, "A crash becomes a trace"): what it
//! writes, what it says, its exit codes. Feature `fuzzing`.
#![cfg(feature = "fuzzing")]

use std::path::PathBuf;
use std::process::Command;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_driver_finding"))
}

#[test]
fn an_input_that_passes_gives_its_answers_and_traces_that_replay_and_exit_1() {
    let input = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/driver/regress-streams-blocked-channels");
    let dir = std::env::temp_dir().join(format!("weir-driver-finding-{}", std::process::id()));
    let out = tool().arg(&input).arg(&dir).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("as-fuzzed: no failure") && said.contains("real: no failure"),
        "{said}"
    );
    assert_eq!(said.matches("replays, ").count(), 4, "{said}");
    for run in ["as-fuzzed", "real"] {
        let answers = std::fs::read_to_string(dir.join(format!("{run}.answers"))).unwrap();
        assert!(answers.contains("channel end"), "{answers}");
        for port in [1000, 2000] {
            let trace = dir.join(format!("{run}-{port}.trace"));
            assert!(std::fs::metadata(&trace).unwrap().len() > 0);
            assert!(!weir_driver::secrets_path(&trace).exists(), "its secrets inlined");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_usage_or_file_error_exits_2() {
    assert_eq!(tool().output().unwrap().status.code(), Some(2));
    let out = tool().args(["/nonexistent/input", "/tmp/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn a_piping_input_gives_every_endpoint_s_trace() {
    let input =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings/piping.crossed-closes/input");
    let dir = std::env::temp_dir().join(format!("weir-piping-finding-{}", std::process::id()));
    let out = tool()
        .args(["--target", "piping"])
        .arg(&input)
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    // Fixed: it fails in neither run.
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.matches("replays, ").count(), 8, "{said}");
    for port in [1000, 2000, 3000, 4000] {
        assert!(
            std::fs::metadata(dir.join(format!("real-{port}.trace")))
                .unwrap()
                .len()
                > 0
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_target_exits_2_and_says_so() {
    let out = tool()
        .args(["--target", "nope", "in", "/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no target \"nope\""));
}
