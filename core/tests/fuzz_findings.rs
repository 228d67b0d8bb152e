//! Every fuzz finding as a trace (fuzz/README.md, "A crash becomes a trace"): each folder of
//! fuzz/findings/, named `TARGET.WHAT`, holds the input the fuzzer found and the traces of
//! the target's endpoints on it (`real-N.trace`, N the endpoint's last address byte), as
//! `cargo run -p weir-driver --features fuzzing --bin fuzz_trace` writes them with the
//! real primitives. Here the input runs again without failing (the fix holds), records
//! the same traces byte for byte, and each trace replays. A change of behaviour made on
//! purpose rewrites them, to be reviewed in the diff:
//!
//! ```text
//! WEIR_UPDATE_TRACES=1 cargo test -p weir-core --features fuzzing --test fuzz_findings
//! ```
#![cfg(feature = "fuzzing")]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use weir_core::fuzz::{TraceRun, TraceTargetError, TracedRun};

fn findings() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/findings")
}

#[test]
fn every_finding_runs_clean_and_its_traces_replay() {
    check_findings(&findings());
}

/// The findings not fixed yet (fuzz/open/, laid out as fuzz/findings/): each fails until its
/// fix lands, then moves to fuzz/findings/. `cargo test -- --ignored` shows them failing.
#[test]
#[ignore = "open findings fail until fixed: fuzz/open/"]
fn every_open_finding_runs_clean() {
    let open = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/open");
    // Git keeps no empty folder: none is open.
    if open.exists() {
        check_findings(&open);
    }
}

/// Each finding under `root` runs clean, records its committed traces and replays them.
fn check_findings(root: &Path) {
    let update = std::env::var_os("WEIR_UPDATE_TRACES").is_some();
    // The findings of the targets over drivers (`driver`, `piping`, `pool`, `circuit`) are
    // weir-driver's
    // (adapters/driver/tests/fuzz_findings.rs).
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                ["driver.", "piping.", "pool.", "circuit."]
                    .iter()
                    .any(|t| n.starts_with(t))
            })
        })
        .collect();
    dirs.sort();
    // (fuzz/open/ may hold only findings over drivers, or none of the core's.)
    assert!(
        !dirs.is_empty() || root.ends_with("open"),
        "no findings in {}",
        root.display()
    );
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let target = name.split('.').next().unwrap();
        let input = std::fs::read(dir.join("input")).unwrap_or_else(|e| panic!("{name}: input: {e}"));
        eprintln!("finding {name}");
        let mut run = TracedRun::new(TraceRun::RealPrimitives);
        run.run(target, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let recorded: BTreeMap<String, String> = run
            .traces()
            .into_iter()
            .map(|(addr, text)| {
                let last = match addr.ip() {
                    IpAddr::V4(ip) => ip.octets()[3],
                    IpAddr::V6(ip) => ip.octets()[15],
                };
                (format!("real-{last}.trace"), text)
            })
            .collect();
        let committed: BTreeMap<String, String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "trace"))
            .map(|p| {
                let file = p.file_name().unwrap().to_string_lossy().into_owned();
                (file, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        if update {
            for file in committed.keys().filter(|f| !recorded.contains_key(*f)) {
                std::fs::remove_file(dir.join(file)).unwrap();
            }
            for (file, text) in &recorded {
                std::fs::write(dir.join(file), text).unwrap();
            }
            continue;
        }
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            recorded.keys().collect::<Vec<_>>(),
            "{name}: the endpoints traced"
        );
        for (file, text) in &recorded {
            assert!(
                committed[file] == *text,
                "{name}/{file}: the run records another trace now (behaviour changed; if on \
                 purpose, WEIR_UPDATE_TRACES=1 and review the diff)"
            );
            let replayed = weir_core::trace::replay(text).unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert!(replayed.outputs > 0, "{name}/{file}: nothing to compare");
        }
    }
}

/// A run that fails keeps its endpoints' traces up to the failure, and they replay. The
/// input carries a packet tag the fuzzer had learned from the stand-in's comparisons before
/// they were folded (fuzz/README.md): as fuzzed, its forged packet opens and closes the
/// connection, which the `forgery` oracle reports; the server's trace shows the datagram
/// and the close it caused.
#[test]
fn a_failing_run_keeps_its_traces_up_to_the_failure() {
    let input = std::fs::read(findings().join("forgery.learned-stand-in-tag/input")).unwrap();
    let mut run = TracedRun::new(TraceRun::AsFuzzed);
    let outcome = catch_unwind(AssertUnwindSafe(|| run.run("forgery", &input)));
    assert!(outcome.is_err(), "the stand-in's learned tag no longer forges");
    let traces = run.traces();
    assert_eq!(traces.len(), 2);
    for (addr, text) in &traces {
        assert!(text.contains("primitives=fuzzing-stand-in"), "{addr}");
        weir_core::trace::replay(text).unwrap_or_else(|e| panic!("{addr}: {e}"));
    }
    let server = &traces[1].1;
    let close = server.find("event => Closed").expect("the close is recorded");
    let forged = server[..close]
        .rfind(" in 10.0.0.1:4433 ")
        .expect("the datagram before it");
    assert!(
        server[forged..close].lines().count() <= 4,
        "the close follows the datagram"
    );
}

#[test]
fn a_state_machine_target_or_an_unknown_name_has_no_trace() {
    let mut run = TracedRun::new(TraceRun::AsFuzzed);
    assert_eq!(run.run("flow", b""), Err(TraceTargetError::NoEndpoints));
    assert_eq!(run.run("nonesuch", b""), Err(TraceTargetError::Unknown));
    assert!(run.traces().is_empty());
}
