//! `weir-bench scale`: one endpoint over more than one core (weir-tokio's
//! `Endpoint::bind_sharded`). Many peers, each an endpoint with a socket of its own, send
//! 1 KiB messages to one server endpoint; the figure is messages per second, all peers
//! together, from the first message to the last answer. Each set-up runs in a process of
//! its own, on a tokio runtime with one worker thread per CPU, each pinned to its CPU:
//!
//! | set-up | CPUs | server shards |
//! | --- | --- | --- |
//! | `1 cpu` | 1 | 1 |
//! | `2 cpus` | 2 | 1 |
//! | `2 cpus, 2 shards` | 2 | 2 |
//!
//! The peers run in the same process as the server, so the CPUs carry both sides: what
//! rises from one CPU to two is the whole exchange's rate. With one shard, the server's
//! datagrams are handled under one lock, one thread at a time; with two, the operating
//! system spreads the peers over the shards' sockets by their addresses.

use std::num::NonZeroU8;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use weir_tokio::{Confirm, Endpoint};

use crate::report;

/// Peers (client endpoints, each on its own port).
const PEERS: usize = 16;
/// Connections each peer opens to the server.
const CONNECTIONS: usize = 2;
/// Messages each connection sends before it waits for the server's answer.
const MESSAGES: usize = 4_000;
/// Bytes per message.
const MESSAGE: usize = 1024;

/// The set-ups compared: (CPUs, server shards, label).
const SETUPS: [(usize, u8, &str); 3] = [(1, 1, "1 cpu"), (2, 1, "2 cpus"), (2, 2, "2 cpus, 2 shards")];

/// What a scale worker prints before its figure.
const TAG: &str = "weir-bench-scale";

/// Runs every set-up `reps` times, interleaved, and prints the medians and their ratios to
/// the one-CPU rate.
pub fn compare(reps: usize) -> ExitCode {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); SETUPS.len()];
    let mut failed = false;
    for rep in 1..=reps {
        for (i, &(cpus, shards, label)) in SETUPS.iter().enumerate() {
            eprint!("rep {rep}/{reps}: {label} ... ");
            let args = ["scale-worker", &cpus.to_string(), &shards.to_string()];
            let out = std::env::current_exe()
                .map_err(|e| e.to_string())
                .and_then(|exe| crate::run_worker(&exe, &args));
            let rate = out.and_then(|out| {
                out.lines()
                    .find_map(|l| l.strip_prefix(TAG))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .ok_or_else(|| "the worker printed no figure".to_string())
            });
            match rate {
                Ok(r) => {
                    eprintln!("{r:.0} messages/s");
                    rates[i].push(r);
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    failed = true;
                }
            }
        }
    }
    let medians: Vec<Option<f64>> = rates
        .iter()
        .map(|r| (!r.is_empty()).then(|| report::median(r)))
        .collect();
    println!("| set-up | messages per second, median (min–max) | vs 1 cpu |");
    println!("| --- | --- | --- |");
    for (i, &(_, _, label)) in SETUPS.iter().enumerate() {
        let (Some(m), Some(first)) = (medians[i], medians[0]) else {
            println!("| {label} | failed | |");
            continue;
        };
        println!(
            "| {label} | {} | {:.2}× |",
            report::cell(Some(&rates[i])),
            m / first
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One set-up in this process: prints its rate, in messages per second.
pub fn worker(cpus: usize, shards: NonZeroU8) -> ExitCode {
    let next = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .on_thread_start(move || crate::peers::pin(next.fetch_add(1, Ordering::Relaxed) % cpus))
        .enable_all()
        .build();
    let result = runtime
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(exchange(shards)));
    match result {
        Ok(rate) => {
            println!("{TAG} {rate}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scale {cpus} cpus, {shards} shards: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server's shards answer each connection once it has all its messages; the peers'
/// connections send theirs at once, each in a task of its own.
async fn exchange(shards: NonZeroU8) -> Result<f64, String> {
    let err = |e: weir_tokio::Error| e.to_string();
    let server = Endpoint::bind_sharded(crate::peers::localhost(), crate::peers::weir_config(), shards)
        .map_err(err)?;
    let addr = server[0].local_addr();
    let server: Vec<Arc<Endpoint>> = server.into_iter().map(Arc::new).collect();
    for shard in &server {
        let shard = Arc::clone(shard);
        tokio::spawn(async move {
            while let Ok(conn) = shard.accept().await {
                tokio::spawn(async move {
                    for _ in 0..MESSAGES {
                        if conn.recv_message().await.is_err() {
                            return;
                        }
                    }
                    let _ = conn.send_message(Bytes::from_static(b"done")).await;
                    // Until the peer closes: the answer's delivery is the peer's to see.
                    let _ = conn.recv_message().await;
                });
            }
        });
    }
    let mut peers = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..PEERS {
        let peer = Endpoint::bind(crate::peers::localhost(), crate::peers::weir_config()).map_err(err)?;
        for _ in 0..CONNECTIONS {
            conns.push(peer.connect(addr).await.map_err(err)?);
        }
        peers.push(peer);
    }
    let message = Bytes::from(vec![7u8; MESSAGE]);
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let message = message.clone();
            tokio::spawn(async move {
                for _ in 0..MESSAGES {
                    conn.send_message_with(message.clone(), Confirm::Queued).await?;
                }
                conn.recv_message().await?;
                conn.close(0, "done").await
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())?.map_err(err)?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((PEERS * CONNECTIONS * MESSAGES) as f64 / secs)
}
