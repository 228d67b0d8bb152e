//! `weir-bench many`: what a message costs one endpoint as its connection count grows, over
//! real sockets (issue 35: the cost per event must not grow with the count; the in-memory
//! curve is `cargo bench -p weir-core --bench scale`). A client endpoint opens N
//! connections to a server endpoint (weir-tokio, both in one process, on one
//! current-thread runtime pinned to CPU 0), then sends 64-byte messages, each on the next
//! connection of a stride that visits every one, yielding to the endpoints' tasks every
//! 32 messages; the server reads each whole. Before the first message, the endpoints are
//! left until they send nothing for 200 ms (what follows the handshakes is over); then
//! every connection has [`WARM_UP_PASSES`] messages (or `--warm-up-passes`), not counted. The figures: the
//! process's CPU time per message (both sides, system calls included), messages per
//! second, from the first counted message to the server's last read, and the datagrams
//! both sides sent per message (acknowledgements included: a connection that has a message
//! only now and then has each acknowledged alone, one with many has several acknowledged
//! at once), with the CPU time per datagram; and the CPU time the connections' set-up took,
//! per connection (both ends of each handshake, made one after another).
//!
//! Each count runs with weir-driver's prefetch hook (`Config::prefetch`, the default of
//! weir-tokio's endpoints) and with a hook that does nothing, in a process of its own,
//! interleaved, `reps` times; the table gives medians with their range.
//!
//! To profile the message phase alone (the set-up of 50,000 connections takes ten times
//! as long): `mkfifo /tmp/ctl; WEIR_PERF_CONTROL=/tmp/ctl perf record --control=fifo:/tmp/ctl
//! -D -1 weir-bench many-worker 50000`; the worker writes `enable` to that file before the
//! first message and `disable` after the last read.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use weir_core::{AddressValidation, Config};
use weir_tokio::{Confirm, Endpoint};

use crate::report;

/// Bytes per message.
const MESSAGE: usize = 64;
/// Messages sent before the sender yields to the endpoints' tasks.
const BURST: usize = 32;
/// A stride coprime with every count used, so that consecutive messages go to connections
/// far apart.
const STRIDE: usize = 7_919;

/// Passes over every connection, a message each, before the messages counted. At 50,000
/// connections each has a message every two seconds or so, and the first after the 45 s of
/// handshakes finds it trimmed (spec §8, Liveness); its trim then waits longer after each
/// quick reuse (2 s, 4 s), so that by the third pass a connection in use keeps its memory
/// between messages. Without them, most messages counted at 50,000 found their connection
/// trimmed: 38.4 µs a message against 25.0 with them (medians of three, at abb3eb8f and
/// a37dee3b), where a build that never trims took 24.2–24.5 without them
/// (adapters/bench/rounds.md, issue 35's fifty-sixth round). The default of
/// `--warm-up-passes`; 0 counts the first message on each connection after the set-up,
/// which finds both ends trimmed once the set-up took more than a second: the case of
/// peers that each ask something now and then (a DHT's).
pub const WARM_UP_PASSES: usize = 3;

/// What a worker prints before its figures.
const TAG: &str = "weir-bench-many";

/// Whether the endpoints prefetch a connection's memory as an input reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Prefetch {
    /// weir-driver's hook, as weir-tokio's endpoints have by default.
    On,
    /// A hook that does nothing.
    Off,
}

impl Prefetch {
    /// As the worker's `--prefetch` takes it, and as the table shows it.
    fn name(self) -> &'static str {
        match self {
            Prefetch::On => "on",
            Prefetch::Off => "off",
        }
    }
}

/// One worker's figures.
struct Figures {
    cpu_us: f64,
    rate: f64,
    /// Datagrams both endpoints sent, per message.
    datagrams: f64,
    /// CPU µs the connections' set-up took, per connection: both ends of a handshake (its
    /// key agreements, its datagrams each way), made one after another; what the server
    /// does after the client is connected overlaps the next one.
    handshake_us: f64,
}

/// Runs every (count, prefetch) `reps` times, interleaved, and prints the table.
pub fn compare(reps: usize, counts: &[usize], messages: usize, warm_up_passes: usize) -> ExitCode {
    let setups: Vec<(usize, Prefetch)> = counts
        .iter()
        .flat_map(|&n| [(n, Prefetch::On), (n, Prefetch::Off)])
        .collect();
    let mut runs: Vec<Vec<Figures>> = setups.iter().map(|_| Vec::new()).collect();
    let mut failed = false;
    for rep in 1..=reps {
        for (i, &(n, prefetch)) in setups.iter().enumerate() {
            eprint!(
                "rep {rep}/{reps}: {n} connections, prefetch {} ... ",
                prefetch.name()
            );
            let args = [
                "many-worker".to_string(),
                n.to_string(),
                format!("--messages={messages}"),
                format!("--prefetch={}", prefetch.name()),
                format!("--warm-up-passes={warm_up_passes}"),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let figures = std::env::current_exe()
                .map_err(|e| e.to_string())
                .and_then(|exe| crate::run_worker(&exe, &args))
                .and_then(|out| parse(&out));
            match figures {
                Ok(f) => {
                    eprintln!(
                        "{:.2} µs of CPU a message, {:.0} messages/s, {:.2} datagrams a message, {:.0} µs of CPU a handshake",
                        f.cpu_us, f.rate, f.datagrams, f.handshake_us
                    );
                    runs[i].push(f);
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    failed = true;
                }
            }
        }
    }
    println!("{warm_up_passes} uncounted messages on each connection before those counted.\n");
    println!("| connections | prefetch | CPU µs a message, median (min–max) | messages per second, median (min–max) | datagrams a message | CPU µs a datagram | CPU µs a handshake, median (min–max) |");
    println!("| ---: | --- | --- | --- | ---: | ---: | --- |");
    for ((n, prefetch), runs) in setups.iter().zip(&runs) {
        if runs.is_empty() {
            println!("| {n} | {} | failed | failed | | | failed |", prefetch.name());
            continue;
        }
        let cpu: Vec<f64> = runs.iter().map(|f| f.cpu_us).collect();
        let rate: Vec<f64> = runs.iter().map(|f| f.rate).collect();
        let datagrams: Vec<f64> = runs.iter().map(|f| f.datagrams).collect();
        let per_datagram: Vec<f64> = runs.iter().map(|f| f.cpu_us / f.datagrams).collect();
        let handshake: Vec<f64> = runs.iter().map(|f| f.handshake_us).collect();
        println!(
            "| {n} | {} | {} | {} | {:.2} | {:.2} | {} |",
            prefetch.name(),
            report::cell(Some(&cpu)),
            report::cell(Some(&rate)),
            report::median(&datagrams),
            report::median(&per_datagram),
            report::cell(Some(&handshake)),
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A worker's figures from its output: `TAG cpu_us rate datagrams handshake_us`.
fn parse(out: &str) -> Result<Figures, String> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(TAG))
        .ok_or_else(|| "the worker printed no figures".to_string())?;
    let values: Result<Vec<f64>, _> = line.split_whitespace().map(str::parse::<f64>).collect();
    match values.as_deref() {
        Ok(&[cpu_us, rate, datagrams, handshake_us]) => Ok(Figures {
            cpu_us,
            rate,
            datagrams,
            handshake_us,
        }),
        _ => Err(format!("unreadable figures: {line}")),
    }
}

/// One (count, prefetch) in this process: prints its figures.
pub fn worker(connections: usize, messages: usize, prefetch: Prefetch, warm_up_passes: usize) -> ExitCode {
    crate::peers::pin(0);
    let result = crate::peers::runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(exchange(connections, messages, prefetch, warm_up_passes)));
    match result {
        Ok(f) => {
            println!("{TAG} {} {} {} {}", f.cpu_us, f.rate, f.datagrams, f.handshake_us);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("many {connections} connections: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A prefetch hook that does nothing: the endpoints without prefetching.
fn ignore(_: *const u8, _: usize) {}

/// The endpoints' configuration: the benchmark's, with room for every connection from one
/// address at once (admission control off, as in the in-memory scale bench).
fn config(connections: usize, prefetch: Prefetch) -> Config {
    Config {
        max_connections: connections + 16,
        max_connections_per_address: connections + 16,
        // A bound, not an allocation: the default admits about 12,800 connections at the
        // smallest window.
        receive_buffer_total: 1 << 40,
        max_handshakes_per_second: u32::MAX,
        address_validation: AddressValidation::Off,
        prefetch: match prefetch {
            Prefetch::On => None,
            Prefetch::Off => Some(ignore),
        },
        ..crate::peers::weir_config()
    }
}

async fn exchange(
    connections: usize,
    messages: usize,
    prefetch: Prefetch,
    warm_up_passes: usize,
) -> Result<Figures, String> {
    if connections == 0 {
        return Err("no connections".into());
    }
    let err = |e: weir_tokio::Error| e.to_string();
    let server = Endpoint::bind(crate::peers::localhost(), config(connections, prefetch)).map_err(err)?;
    let client = Endpoint::bind(crate::peers::localhost(), config(connections, prefetch)).map_err(err)?;
    let read = Arc::new(AtomicUsize::new(0));
    // How many reads wake the sender: the warm-up's, then all of them.
    let until = Arc::new(AtomicUsize::new(0));
    let all_read = Arc::new(tokio::sync::Notify::new());
    let server = Arc::new(server);
    {
        let (server, read, until, all_read) = (
            Arc::clone(&server),
            Arc::clone(&read),
            Arc::clone(&until),
            Arc::clone(&all_read),
        );
        tokio::spawn(async move {
            while let Ok(conn) = server.accept().await {
                let (read, until, all_read) = (Arc::clone(&read), Arc::clone(&until), Arc::clone(&all_read));
                tokio::spawn(async move {
                    while conn.recv_message().await.is_ok() {
                        if read.fetch_add(1, Ordering::Relaxed) + 1 == until.load(Ordering::Relaxed) {
                            all_read.notify_one();
                        }
                    }
                });
            }
        });
    }
    let mut conns = Vec::with_capacity(connections);
    let set_up = cpu_time::ProcessTime::try_now().map_err(|e| e.to_string())?;
    for _ in 0..connections {
        conns.push(client.connect(server.local_addr()).await.map_err(err)?);
    }
    let handshakes = set_up.try_elapsed().map_err(|e| e.to_string())?;
    settle(&[&client, &server]).await;
    let message = Bytes::from(vec![7u8; MESSAGE]);
    let warm_up = warm_up_passes * connections;
    until.store(warm_up, Ordering::Relaxed);
    let mut walk = std::iter::successors(Some(0), |&c| Some((c + STRIDE) % connections)).skip(1);
    if warm_up > 0 {
        send(&conns, walk.by_ref().take(warm_up), &message).await?;
        all_read.notified().await;
    }
    let before = datagrams_sent(&[&client, &server]);
    until.store(warm_up + messages, Ordering::Relaxed);
    perf_control("enable");
    let cpu = cpu_time::ProcessTime::try_now().map_err(|e| e.to_string())?;
    let start = Instant::now();
    send(&conns, walk.take(messages), &message).await?;
    all_read.notified().await;
    let secs = start.elapsed().as_secs_f64();
    let spent = cpu.try_elapsed().map_err(|e| e.to_string())?;
    perf_control("disable");
    Ok(Figures {
        cpu_us: spent.as_secs_f64() * 1e6 / messages as f64,
        rate: messages as f64 / secs,
        datagrams: (datagrams_sent(&[&client, &server]) - before) as f64 / messages as f64,
        handshake_us: handshakes.as_secs_f64() * 1e6 / connections as f64,
    })
}

/// Sends `message` on each connection `to` names in turn, yielding to the endpoints' tasks
/// every [`BURST`].
async fn send(
    conns: &[weir_tokio::Connection],
    to: impl Iterator<Item = usize>,
    message: &Bytes,
) -> Result<(), String> {
    for (i, c) in to.enumerate() {
        conns[c]
            .send_message_with(message.clone(), Confirm::Queued)
            .await
            .map_err(|e| e.to_string())?;
        if i % BURST == BURST - 1 {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// Writes `command` to the file `WEIR_PERF_CONTROL` names, if it names one (perf's
/// `--control=fifo:`), so that a profile covers the message phase alone.
fn perf_control(command: &str) {
    let Some(path) = std::env::var_os("WEIR_PERF_CONTROL") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{command}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "cannot write {command} to {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}

/// Waits until `endpoints` sent nothing for 200 ms (at most 20 s): what follows the
/// handshakes (their confirmations, the path MTU search's probes) is over before the
/// messages are counted.
async fn settle(endpoints: &[&Endpoint]) {
    let mut last = datagrams_sent(endpoints);
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = datagrams_sent(endpoints);
        if now == last {
            return;
        }
        last = now;
    }
}

/// The datagrams `endpoints` sent, together.
fn datagrams_sent(endpoints: &[&Endpoint]) -> u64 {
    endpoints.iter().map(|e| e.stats().datagrams_sent).sum()
}
