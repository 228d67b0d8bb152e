//! `weir sim`, `weir replay` and `weir trace` as a user runs them: a trace recorded, replayed,
//! shown, plotted and shrunk, and a file that is not a trace refused with its exit code.

mod common;

use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use common::{make_file, stderr_of, stdout_of, weir};

#[test]
fn sim_records_a_trace_that_replays_shows_plots_and_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("run.trace");
    let t = trace.to_str().unwrap();
    let out = weir()
        .args([
            "sim", "--size", "200KiB", "--loss", "5%", "--seed", "3", "--trace", t,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("verified:         digest matches"), "{text}");
    assert!(text.contains("virtual time"), "{text}");

    let out = weir().args(["replay", t]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("all identical"));

    let out = weir().args(["trace", "show", t]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown = stdout_of(&out);
    assert!(
        shown.contains("event  Connected"),
        "{}",
        &shown[..shown.len().min(2000)]
    );
    assert!(
        shown.contains("-> 10.0.0.1:4000"),
        "datagrams to the relay are listed"
    );
    assert!(shown.contains("call   write #0 s0 <"), "payloads are abbreviated");
    assert!(shown.contains("| cwnd "), "state is shown");

    let svg = dir.path().join("run.svg");
    let out = weir()
        .args(["trace", "plot", t, "-o", svg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg"), "{}", &drawn[..100.min(drawn.len())]);
    for caption in ["congestion window", "smoothed RTT", "delivered"] {
        assert!(drawn.contains(caption), "{caption} missing from the plot");
    }

    // A trace changed in one output no longer replays (exit 8) and shrinks to that record.
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.contains(" deadline => "))
        .expect("a deadline record");
    let mut changed = lines.clone();
    let tampered = format!("{} 1", lines[at].rsplit_once(' ').unwrap().0);
    changed[at] = &tampered;
    let bad = dir.path().join("bad.trace");
    std::fs::write(&bad, changed.join("\n")).unwrap();
    let out = weir().args(["replay", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(
        stderr_of(&out).contains(&format!("line {}: replay differs", at + 1)),
        "{}",
        stderr_of(&out)
    );
    let short = dir.path().join("short.trace");
    let out = weir()
        .args([
            "trace",
            "shrink",
            bad.to_str().unwrap(),
            "-o",
            short.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_to_string(&short).unwrap().lines().count(), at + 1);
    // The shrunk trace holds the seed as the trace does: its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&short).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn a_file_that_is_not_a_trace_is_exit_8() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "nope.trace", 100);
    let out = weir().args(["replay", path.to_str().unwrap()]).output().unwrap();
    // Not UTF-8 text: a file error; text that is not a trace: a trace error.
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    std::fs::write(&path, "hello\n").unwrap();
    let out = weir().args(["replay", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(
        stderr_of(&out).contains("not a weir trace"),
        "{}",
        stderr_of(&out)
    );
}

/// `--queue` sets the bottleneck's queue (`weir sim` used the simulator's 256 KiB whatever
/// its help said; now one bandwidth-delay product unless given): at 80 Mbit/s over 40 ms
/// (a BDP of 400 kB), a 32 KiB queue drops more than the default, and `--queue` needs
/// `--rate`. Virtual time: the same run every time.
#[test]
fn sim_queue_sets_the_bottleneck_s_queue() {
    let drops = |extra: &[&str]| {
        let mut args = vec![
            "sim", "--direct", "--size", "4MiB", "--loss", "0", "--delay", "20ms", "--rate", "80mbit",
        ];
        args.extend_from_slice(extra);
        let out = weir().args(&args).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let text = stdout_of(&out);
        let line = text
            .lines()
            .find(|l| l.starts_with("network:"))
            .unwrap_or_else(|| panic!("{text}"));
        let before = line.split(" dropped by queues").next().unwrap();
        before.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    let deep = drops(&[]);
    let shallow = drops(&["--queue", "32KiB"]);
    assert!(shallow > deep, "32 KiB: {shallow} dropped, one BDP: {deep}");
    common::fails_with(&["sim", "--queue", "32KiB"], 2, "--rate");
}

/// A standard output whose reader has gone, as `weir ... | head` leaves it once `head` has
/// its lines: the write end of a pipe whose one reader (`true`) has exited.
fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("true runs");
    let write_end = reader.stdin.take().expect("piped");
    reader.wait().expect("true exits");
    write_end.into()
}

/// `weir sim | head` and `weir trace show T | head`: a reader that stops reading ends the
/// output, not the command. It was a panic (exit 101) from `println!`; now the command goes
/// on to its own verdict: the trace is still written, a failed transfer still exits 1. A
/// standard output that cannot be written for another reason (a full disk) is exit 4.
#[test]
fn a_reader_that_stops_reading_ends_the_output_not_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("run.trace");
    let t = trace.to_str().unwrap();
    let run = |args: &[&str], stdout: Stdio| {
        let mut cmd = Command::cargo_bin("weir").expect("the weir binary");
        cmd.args(args).stdout(stdout).output().expect("weir runs")
    };

    let out = run(&["sim", "--size", "100KiB", "--trace", t], closed_pipe());
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("panicked"), "{}", stderr_of(&out));
    assert!(
        std::fs::metadata(&trace).unwrap().len() > 0,
        "the trace is written"
    );

    let out = run(&["trace", "show", t], closed_pipe());
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("records replayed"),
        "{}",
        stderr_of(&out)
    );

    let out = run(&["sim", "--size", "100KiB", "--limit", "1ms"], closed_pipe());
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("transfer"), "{}", stderr_of(&out));

    let full = std::fs::File::create("/dev/full").expect("Linux's /dev/full");
    let out = run(&["sim", "--size", "100KiB"], full.into());
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("cannot write to standard output"),
        "{}",
        stderr_of(&out)
    );
}
