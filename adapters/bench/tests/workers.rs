//! Every peer of the benchmark completes every workload it runs as a worker process and
//! reports its figures: the harness works end to end (the figures themselves are
//! adapters/bench/README.md's, from release builds; a debug build's are not compared with
//! anything). The far workloads' proxy process, `weir-bench ab` and `many`'s worker are run
//! too. About 30 s in CI's debug build.

use std::process::Command;

/// Runs weir-bench with `args` and `env`, checks that it exited successfully (saying what
/// it printed on standard error if not), and returns its standard output and error.
fn bench_ok(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir-bench"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "weir-bench {}: {stderr}", args.join(" "));
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

const PEERS: [&str; 7] = [
    "weir-tokio",
    "weir-std",
    "quinn",
    "tcp",
    "udp",
    "weir-tokio-64k",
    "libp2p-weir",
];

/// Each workload and the figures it reports.
const WORKLOADS: [(&str, &[&str]); 5] = [
    ("bulk", &["BulkMBps", "BulkCpuMs"]),
    ("bulk-whole", &["BulkMBps", "BulkCpuMs"]),
    ("messages", &["MessagesPerSec", "MessageCpuUs"]),
    (
        "rtt",
        &["RttP50", "RttP95", "RttP99", "RttStallsPerMs", "RttCpuUs"],
    ),
    ("big-request", &["BigP50", "BigP95", "BigCpuMs"]),
];

#[test]
fn every_peer_completes_every_workload_and_reports_its_figures() {
    for peer in PEERS {
        for (workload, keys) in WORKLOADS {
            // Raw UDP neither orders nor recovers: it only runs the round-trip floor.
            if peer == "udp" && workload != "rtt" {
                continue;
            }
            let (stdout, _) = bench_ok(&["worker", peer, workload], &[]);
            let run = format!("{peer} {workload}");
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("weir-bench-result "))
                .unwrap_or_else(|| panic!("{run} printed no result: {stdout}"));
            for key in keys.iter().chain(&["PeakRssMiB"]) {
                let value: f64 = line
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or_else(|| panic!("{run}: no {key} in {line}"))
                    .parse()
                    .unwrap();
                assert!(value > 0.0, "{run}: {key}={value}");
            }
        }
    }
}

/// `WEIR_BENCH_ROUND_TRIPS=N` makes the round-trip workload N exchanges long, on both sides
/// (the server echoes N, the client times N: `WEIR_BENCH_TIMES` writes one line each).
#[test]
fn the_round_trip_count_is_set_from_the_environment() {
    for peer in ["udp", "weir-tokio"] {
        let dir = std::env::temp_dir().join(format!("weir-bench-times-{}-{peer}", std::process::id()));
        let dir_name = dir.to_string_lossy();
        bench_ok(
            &["worker", peer, "rtt"],
            &[("WEIR_BENCH_ROUND_TRIPS", "37"), ("WEIR_BENCH_TIMES", &dir_name)],
        );
        let times = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(times.lines().count(), 37, "{peer}");
    }
}

/// Raw UDP's round trips with `env` set complete and report their figures; what the run
/// printed on standard error is returned.
fn raw_udp_round_trips_with(env: &[(&str, &str)]) -> String {
    let (stdout, stderr) = bench_ok(&["worker", "udp", "rtt"], env);
    assert!(stdout.contains("RttP50="), "{stdout}");
    stderr
}

/// Raw UDP's round trips with `env` set complete, and each side says it keeps the timer
/// `kind`.
fn raw_udp_round_trips_complete_with(env: &[(&str, &str)], kind: &str) {
    let stderr = raw_udp_round_trips_with(env);
    let said = format!("raw UDP keeps a {kind} firing every 2ms");
    assert_eq!(stderr.matches(&said).count(), 2, "{stderr}");
}

/// `WEIR_BENCH_UDP_UNCONNECTED=1` leaves raw UDP's sockets unconnected, each send naming
/// its peer: the round trips still complete, and both sides' sockets report no peer (each
/// side prints what its socket says); by default both are connected and nothing is said.
#[test]
fn raw_udp_round_trips_complete_on_unconnected_sockets() {
    let stderr = raw_udp_round_trips_with(&[("WEIR_BENCH_UDP_UNCONNECTED", "1")]);
    for side in ["client", "server"] {
        let said = format!("raw UDP's {side} socket is unconnected");
        assert_eq!(stderr.matches(&said).count(), 1, "{stderr}");
    }
    let stderr = raw_udp_round_trips_with(&[]);
    assert!(!stderr.contains("is unconnected"), "{stderr}");
}

/// `WEIR_BENCH_UDP_TIMER_MS=N` keeps a timer pending on raw UDP's runtimes: the run still
/// completes and reports its figures (the timer task never ends the runtime's work).
#[test]
fn raw_udp_with_a_pending_timer_completes_its_round_trips() {
    raw_udp_round_trips_complete_with(&[("WEIR_BENCH_UDP_TIMER_MS", "2")], "tokio timer");
}

/// The same with the timer a timerfd (`WEIR_BENCH_UDP_TIMERFD=1`), where there is one.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn raw_udp_with_a_pending_timerfd_completes_its_round_trips() {
    raw_udp_round_trips_complete_with(
        &[("WEIR_BENCH_UDP_TIMER_MS", "2"), ("WEIR_BENCH_UDP_TIMERFD", "1")],
        "timerfd",
    );
}

/// The workloads over a long path run through the proxy in a process of its own, which
/// runs while the worker does and ends with its run (`peers::route`), and report the
/// peers' CPU time as the loopback rows do. About 5 s.
#[test]
fn the_far_workloads_run_through_a_proxy_process_that_ends_with_the_run() {
    use std::io::Read;
    use std::process::Stdio;
    let runs: [(&str, &str, &[&str]); 3] = [
        ("weir-tokio", "messages-far", &["MessagesPerSec", "MessageCpuUs"]),
        ("weir-tokio", "bulk-far", &["BulkMBps", "BulkCpuMs"]),
        ("quinn", "messages-far", &["MessagesPerSec", "MessageCpuUs"]),
    ];
    for (peer, workload, keys) in runs {
        let run = format!("{peer} {workload}");
        let mut worker = Command::new(env!("CARGO_BIN_EXE_weir-bench"))
            .args(["worker", peer, workload])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Looked for while the worker runs (its 40 ms path holds it for a second and more):
        // a proxy in the worker's own process would never be seen.
        let mut seen = false;
        let status = loop {
            seen |= proxies_running() > 0;
            if let Some(status) = worker.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let (mut stdout, mut stderr) = (String::new(), String::new());
        worker.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        worker.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(status.success(), "{run}: {stderr}");
        assert!(seen, "{run}: no proxy process while it ran");
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("weir-bench-result "))
            .unwrap_or_else(|| panic!("{run} printed no result: {stdout}"));
        for key in keys {
            assert!(line.contains(&format!("{key}=")), "{run}: no {key} in {line}");
        }
        assert_eq!(proxies_running(), 0, "{run} left its proxy running");
    }
}

/// `WEIR_BENCH_FAR_LOSS` makes the long path lose that percentage of datagrams: the
/// client's statistics (`WEIR_BENCH_STATS`) count packets lost, where the lossless path
/// loses none. A value that is no percentage fails the run with a message that says so,
/// and the run ends (before, a worker whose client failed waited for ever on its server).
#[test]
fn the_far_path_loses_what_the_loss_variable_asks() {
    let run = |loss: &str| {
        let mut worker = Command::new(env!("CARGO_BIN_EXE_weir-bench"))
            .args(["worker", "weir-tokio", "messages-far"])
            .env("WEIR_BENCH_FAR_LOSS", loss)
            .env("WEIR_BENCH_STATS", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded, so that a run that never ends fails here instead of holding CI.
        for _ in 0..6_000 {
            if worker.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ended = worker.try_wait().unwrap().is_some();
        if !ended {
            worker.kill().unwrap();
        }
        let out = worker.wait_with_output().unwrap();
        assert!(ended, "WEIR_BENCH_FAR_LOSS={loss}: the run did not end in 60 s");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let lost = |stderr: &str| -> u64 {
        let client = stderr.split("client: ").nth(1).expect("the client's statistics");
        let line = client
            .lines()
            .find(|l| l.trim().starts_with("packets_lost:"))
            .unwrap();
        line.trim()
            .trim_start_matches("packets_lost:")
            .trim_end_matches(',')
            .trim()
            .parse()
            .unwrap()
    };
    let (ok, stderr) = run("0");
    assert!(ok, "{stderr}");
    assert_eq!(lost(&stderr), 0, "no loss asked");
    let (ok, stderr) = run("3");
    assert!(ok, "{stderr}");
    assert!(lost(&stderr) > 0, "3% asked: {stderr}");
    let (ok, stderr) = run("lots");
    assert!(!ok && stderr.contains("is not a percentage"), "{stderr}");
    assert_eq!(proxies_running(), 0, "a failed run left its proxy running");
}

/// How many `weir-bench proxy` processes this benchmark's binary has running (from
/// `/proc`; none elsewhere than Linux).
fn proxies_running() -> usize {
    let exe = env!("CARGO_BIN_EXE_weir-bench");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.first() == Some(&exe.as_bytes()) && args.get(1) == Some(&&b"proxy"[..])
        })
        .count()
}

/// `weir-bench ab OTHER` runs each workload with both builds (here the same binary twice)
/// and prints each figure's two medians and their ratio; a build that cannot run fails it.
#[test]
fn two_builds_compared_give_both_medians_and_their_ratio() {
    let exe = env!("CARGO_BIN_EXE_weir-bench");
    let (stdout, _) = bench_ok(
        &[
            "ab",
            exe,
            "--reps",
            "1",
            "--peers",
            "weir-tokio",
            "--workloads",
            "messages",
        ],
        &[],
    );
    let row = stdout
        .lines()
        .find(|l| l.contains("| weir-tokio | msgs/s |"))
        .unwrap_or_else(|| panic!("no row: {stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // "", workload, peer, figure, this, other, ratio, "".
    assert_eq!(cells.len(), 8, "{row}");
    for cell in &cells[4..=6] {
        let number: f64 = cell
            .split_whitespace()
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("not a figure: {cell} in {row}"));
        assert!(number > 0.0, "{row}");
    }

    let missing = Command::new(exe)
        .args([
            "ab",
            "/nonexistent/weir-bench",
            "--reps",
            "1",
            "--workloads",
            "rtt",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success(), "a build that cannot run is a failure");
}

/// `weir-bench many`'s worker opens its connections, carries every message, and reports its
/// four figures (CPU time a message, messages a second, datagrams a message, CPU time a
/// handshake), with the prefetch hook and without, and with no uncounted messages first.
#[test]
fn the_many_connections_worker_reports_its_figures() {
    for (prefetch, passes) in [("on", "3"), ("off", "3"), ("on", "0")] {
        let args = [
            "many-worker",
            "20",
            "--messages",
            "200",
            "--prefetch",
            prefetch,
            "--warm-up-passes",
            passes,
        ];
        let (stdout, _) = bench_ok(&args, &[]);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("weir-bench-many "))
            .unwrap_or_else(|| panic!("no figures: {stdout}"));
        let figures: Vec<f64> = line.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_eq!(figures.len(), 4, "{line}");
        assert!(figures.iter().all(|&v| v > 0.0), "{line}");
        // Each message is a datagram at least, and its acknowledgement at most another.
        assert!((1.0..=4.0).contains(&figures[2]), "{line}");
        // A handshake's key agreements alone take tens of microseconds.
        assert!(figures[3] >= 10.0, "{line}");
    }
}
