//! `weir-bench`: the side-by-side loopback benchmark of issue 10. weir (through weir-tokio
//! and weir-std), quinn, tokio TCP and raw UDP run the same four workloads over
//! 127.0.0.1, interleaved, each (peer, workload) in a process of its own so that one run's
//! memory and threads cannot colour the next; the table gives medians with their range.
//!
//! ```text
//! cargo run --release -p weir-bench                 # everything, 3 repetitions
//! cargo run --release -p weir-bench -- --reps 5 --peers weir-tokio,quinn --workloads bulk
//! cargo run --release -p weir-bench -- scale        # one endpoint over 1 and 2 CPUs
//! cargo run --release -p weir-bench -- many         # a message's cost at 100 and 10,000 connections
//! cargo run --release -p weir-bench -- ab /tmp/old --peers weir-tokio --workloads messages
//! ```

mod ab;
mod many;
mod peers;
mod report;
mod scale;
mod workload;

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use peers::Peer;
use report::Runs;
use workload::{Metric, Workload};

/// The longest one worker may take before it is killed and its run counted as failed.
const WORKER_LIMIT: Duration = Duration::from_secs(300);

/// What a worker prints before its figures, on a line of their own.
const RESULT_TAG: &str = "weir-bench-result";

#[derive(Parser)]
#[command(about = "weir against quinn, TCP and raw UDP on loopback, side by side")]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// How many times each (peer, workload) runs; the table gives the median.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The peers to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    peers: Vec<Peer>,
    /// The workloads to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
}

#[derive(Subcommand)]
enum Mode {
    /// One endpoint over 1 and 2 CPUs: many peers' messages to an endpoint of one shard
    /// and of two (module `scale`).
    Scale {
        /// How many times each set-up runs; the table gives the median.
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// What a message costs one endpoint at each connection count, with the prefetch hook
    /// and without (module `many`).
    Many {
        /// How many times each set-up runs; the table gives the median.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// The connection counts.
        #[arg(long, value_delimiter = ',', default_values_t = [100, 10_000])]
        connections: Vec<usize>,
        /// Messages per run.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
        messages: u32,
        /// Uncounted messages on each connection before those counted (0: the first
        /// message on each finds it as the set-up left it, trimmed once that took over a
        /// second).
        #[arg(long, default_value_t = many::WARM_UP_PASSES)]
        warm_up_passes: usize,
    },
    /// Runs one set-up of `many` in this process and prints its figures.
    #[command(hide = true)]
    ManyWorker {
        /// Connections the client opens to the server.
        connections: usize,
        /// Messages sent, one connection after another.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
        messages: u32,
        /// Whether the endpoints prefetch.
        #[arg(long, value_enum, default_value_t = many::Prefetch::On)]
        prefetch: many::Prefetch,
        /// Uncounted messages on each connection before those counted.
        #[arg(long, default_value_t = many::WARM_UP_PASSES)]
        warm_up_passes: usize,
    },
    /// Two builds compared, interleaved: this one's workers and OTHER's (a weir-bench built
    /// at another commit) run each (peer, workload) by turns (module `ab`).
    Ab {
        /// The other build's weir-bench binary.
        other: std::path::PathBuf,
        /// How many turns each build runs each (peer, workload); the table gives medians.
        #[arg(long, default_value_t = 9)]
        reps: usize,
        /// The peers to run (default: weir-tokio).
        #[arg(long, value_enum, value_delimiter = ',')]
        peers: Vec<Peer>,
        /// The workloads to run (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        workloads: Vec<Workload>,
    },
    /// Runs one set-up of `scale` in this process and prints its figure.
    #[command(hide = true)]
    ScaleWorker {
        /// CPUs the process runs on (and the runtime's worker threads).
        cpus: usize,
        /// The server endpoint's shards.
        shards: std::num::NonZeroU8,
    },
    /// Runs one (peer, workload) in this process and prints its figures (used by the
    /// benchmark itself, one process per run).
    #[command(hide = true)]
    Worker {
        #[arg(value_enum)]
        peer: Peer,
        #[arg(value_enum)]
        workload: Workload,
    },
    /// Runs the impairing proxy of a workload over a long path in this process, until
    /// its standard input closes (used by a worker, module `peers::route`).
    #[command(hide = true)]
    Proxy {
        /// The server's address.
        to: std::net::SocketAddr,
        /// How long each datagram is held, each way, ms.
        delay_ms: u64,
        /// The percentage of datagrams lost, each way (`WEIR_BENCH_FAR_LOSS`).
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Worker { peer, workload }) => return worker(peer, workload),
        Some(Mode::Scale { reps }) => return scale::compare(reps),
        Some(Mode::Ab {
            other,
            reps,
            peers,
            workloads,
        }) => {
            let peers = if peers.is_empty() {
                vec![Peer::WeirTokio]
            } else {
                peers
            };
            let workloads = if workloads.is_empty() {
                Workload::ALL.to_vec()
            } else {
                workloads
            };
            return ab::compare(&other, reps, &peers, &workloads);
        }
        Some(Mode::ScaleWorker { cpus, shards }) => return scale::worker(cpus, shards),
        Some(Mode::Many {
            reps,
            connections,
            messages,
            warm_up_passes,
        }) => return many::compare(reps, &connections, messages as usize, warm_up_passes),
        Some(Mode::ManyWorker {
            connections,
            messages,
            prefetch,
            warm_up_passes,
        }) => return many::worker(connections, messages as usize, prefetch, warm_up_passes),
        Some(Mode::Proxy { to, delay_ms, loss }) => return peers::serve_proxy(to, delay_ms, loss),
        None => {}
    }
    let peers = if cli.peers.is_empty() {
        Peer::ALL.to_vec()
    } else {
        cli.peers
    };
    let workloads = if cli.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        cli.workloads
    };
    let mut runs = Runs::default();
    let mut failed = false;
    for rep in 1..=cli.reps {
        for &w in &workloads {
            for &p in peers.iter().filter(|p| p.runs(w)) {
                eprint!("rep {rep}/{}: {} {} ... ", cli.reps, p.name(), w.name());
                match spawn(p, w) {
                    Ok(figures) => {
                        eprintln!("{}", report::brief(&figures));
                        runs.add(p, w, figures);
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e}");
                        failed = true;
                    }
                }
            }
        }
    }
    print!("{}", report::table(&runs, &peers, &workloads, cli.reps));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One run in a process of its own: this program again, as a worker.
fn spawn(peer: Peer, workload: Workload) -> Result<Vec<(Metric, f64)>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    spawn_with(&exe, peer, workload)
}

/// One run in a process of its own: the weir-bench at `exe` (this one, or another build's
/// for `ab`), as a worker.
fn spawn_with(exe: &std::path::Path, peer: Peer, workload: Workload) -> Result<Vec<(Metric, f64)>, String> {
    let out = run_worker(exe, &["worker", peer.name(), workload.name()])?;
    out.lines()
        .find_map(|l| l.strip_prefix(RESULT_TAG))
        .map(report::parse)
        .ok_or_else(|| "the worker printed no result".to_string())?
}

/// Runs the program at `exe` with `args`, within [`WORKER_LIMIT`]; what it printed.
fn run_worker(exe: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > WORKER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no result within {WORKER_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).map_err(|e| e.to_string())?;
    }
    if !status.success() {
        return Err(format!("the worker exited with {status}"));
    }
    Ok(out)
}

/// The worker: runs once, prints its figures and its peak RSS.
fn worker(peer: Peer, workload: Workload) -> ExitCode {
    match peer.run(workload) {
        Ok(mut figures) => {
            if let Some((peak, file)) = peak_rss_mib() {
                figures.push((Metric::PeakRssMiB, peak));
                figures.push((Metric::PeakAnonMiB, peak - file));
            }
            println!("{RESULT_TAG}{}", report::format(&figures));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{} {}: {e}", peer.name(), workload.name());
            ExitCode::FAILURE
        }
    }
}

/// This process's peak resident set (Linux's `VmHWM`) and its file-backed pages resident
/// now (`RssFile`), in MiB.
fn peak_rss_mib() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmHWM:")?, field("RssFile:")?))
}
