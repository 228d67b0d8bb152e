//! `weir send`, `weir recv` and `weir relay`: files between machines over weir, through any
//! number of relays that never hold a whole file.
//!
//! A file travels as one stream labelled [`FILE_LABEL`] whose header carries its total
//! length and SHA-256 digest, so every relay forwards it fragment by fragment (spec §8,
//! Piping) and only the final receiver checks it. The stream starts with the file's name:
//! a 2-byte big-endian length, then that many bytes of UTF-8; the file's bytes follow.
//! The receiver writes into `.NAME.weir-part` in its directory and renames it to `NAME`
//! only once every byte arrived and matched the digest; it refuses a name that exists there
//! unless told `--force`, and removes the partial file however the transfer ends. It
//! defers the stream's delivery and confirms it only once the file is synced and renamed,
//! so `weir send` reports success only for a file that is in place; a failure to write it
//! is told to the sender as [`code::WRITE_FAILED`]. Ctrl-C
//! closes the connection with [`code::INTERRUPTED`], so the other end says so.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use indicatif::MultiProgress;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_core::wire::Label;
use weir_core::DigestHasher;
use weir_tokio::{Config, Connection, Endpoint, RecvStream, StreamHeader};

use crate::circuits;
use crate::error::{CliError, Total};
use crate::net::{self, NetArgs};
use crate::output::say;
use crate::units;
use crate::verdict::{self, code, Partial};

/// The label of a file stream.
pub const FILE_LABEL: &str = "weir/file";
/// The longest file name sent.
const MAX_NAME: usize = 255;
/// Bytes read from disk per write: large enough to keep the send buffer full, small enough
/// that a slow path does not hold much of the file in memory.
const CHUNK: usize = 1 << 20;
/// How often progress bars and acknowledgement counts are refreshed.
pub(crate) const TICK: Duration = Duration::from_millis(100);

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// The name header that opens a file stream.
fn name_header(name: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + name.len());
    b.put_u16(name.len() as u16);
    b.put_slice(name.as_bytes());
    b.freeze()
}

/// The file name to send for `path`: its last component, which must be UTF-8 and short.
fn send_name(path: &Path) -> Result<String, CliError> {
    let bad = |why: &str| CliError::File {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string()),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("the file name must be UTF-8"))?;
    if name.len() > MAX_NAME {
        return Err(bad("the file name is longer than 255 bytes"));
    }
    Ok(name.to_string())
}

/// Whether `name` (from the peer) is safe to create in the output directory: one plain
/// path component, so a sender cannot write outside it.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1
}

/// `weir send FILE --to ADDR`.
pub async fn send(
    path: &Path,
    to: net::Target,
    key: Option<weir_tokio::PublicKey>,
    net: &NetArgs,
) -> Result<(), CliError> {
    let name = send_name(path)?;
    let len = tokio::fs::metadata(path).await.map_err(file_error(path))?.len();
    // First pass: the digest, so the receiver can verify what every relay forwarded.
    let header = name_header(&name);
    let mut hasher = DigestHasher::new();
    hasher.update(&header);
    let mut file = tokio::fs::File::open(path).await.map_err(file_error(path))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await.map_err(file_error(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let total = header.len() as u64 + len;
    let first_hop = match to {
        net::Target::Address(a) => a,
        net::Target::Via { relay, .. } => relay,
    };
    let endpoint = net::bind(net::any_for(first_hop), net.apply(Config::default())?)?;
    // Through a circuit relay, the connection to it carries the circuit: it is held until
    // the end.
    let (_to_relay, conn, relay) = match to {
        net::Target::Address(a) => {
            let conn = verdict::unless_interrupted(net::connect(&endpoint, a, key, net.versions)).await?;
            (None, conn, None)
        }
        net::Target::Via { relay, peer } => {
            let (r, c) =
                verdict::unless_interrupted(net::connect_via(&endpoint, relay, peer, net.versions)).await?;
            (Some(r), c, Some(relay))
        }
    };
    tracing::info!(%to, file = %name, bytes = len, "connected; sending");
    let last_path = Arc::new(Mutex::new(None));
    let watcher =
        relay.map(|relay| tokio::spawn(circuits::watch_path(conn.clone(), relay, Arc::clone(&last_path))));
    let out = conn
        .open_stream_with(
            StreamHeader::default()
                .with_label(Label::from_static(FILE_LABEL).expect("a valid label"))
                .with_total_len(total)
                .with_digest(hasher.finish()),
        )
        .await
        .map_err(CliError::Net)?;
    // Kept here, not in the sending future: at Ctrl-C it is reset with the reason, not
    // dropped (which resets it with none).
    let mut out = Some(out);
    let multi = MultiProgress::new();
    let bar = net::bar(&multi, "acknowledged", Some(total));
    let started = Instant::now();
    let interrupted = |acked: u64, e: weir_tokio::Error| CliError::Interrupted {
        delivered: acked,
        total: Total(Some(total)),
        why: verdict::why(&e),
    };
    // Second pass: the bytes, one chunk read ahead of the network at most.
    let sending = async {
        let stream = out.as_mut().expect("open until finished");
        stream.write_all_chunk(header).await?;
        let mut file = tokio::fs::File::open(path).await?;
        loop {
            let mut chunk = BytesMut::zeroed(CHUNK);
            let n = file.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            stream.write_all_chunk(chunk.freeze()).await?;
        }
        out.take().expect("open until finished").finish().await?;
        Ok::<(), weir_tokio::Error>(())
    };
    let acked = tokio::select! {
        acked = watch_acks(&conn, total, &bar, sending) => Some(acked),
        () = verdict::interrupt() => None,
    };
    let Some(acked) = acked else {
        bar.abandon();
        if let Some(stream) = out.take() {
            let _ = stream.reset(code::INTERRUPTED);
        }
        let _ = conn.close(code::INTERRUPTED, "interrupted (Ctrl-C)").await;
        drop(conn);
        endpoint.close().await;
        return Err(CliError::Cancelled(Some(format!(
            "{name} was not delivered; the receiver was told"
        ))));
    };
    let acked = acked.map_err(|(n, e)| interrupted(n, e))?;
    bar.finish();
    tracing::info!(file = %name, "delivered: the receiver read and verified every byte");
    if let Some(public) = conn.observed_address() {
        // Behind a NAT, our public address toward the receiver (spec §4.18).
        tracing::info!(%public, "the receiver sees us at this address");
    }
    let elapsed = started.elapsed();
    let stats = conn.stats().await.unwrap_or_default();
    if let Some(w) = watcher {
        w.abort();
    }
    let path = match relay {
        Some(_) => format!(
            "; path {} (moves: {})",
            // The path now, or the last one the connection took if it ended (the receiver
            // closes it once the file is in place).
            net::path_text(
                conn.path()
                    .or(*last_path.lock().unwrap_or_else(|e| e.into_inner())),
                relay
            ),
            stats.migrations + stats.fallbacks
        ),
        None => String::new(),
    };
    say!(
        "sent {name} ({}) to {to} in {:.2} s, delivered and verified: {}; {} retransmitted, rtt {}{path}",
        units::bytes(len),
        elapsed.as_secs_f64(),
        units::throughput(acked, elapsed),
        units::bytes(stats.bytes_retransmitted),
        units::millis(stats.smoothed_rtt),
    )?;
    drop(conn);
    endpoint.close().await;
    Ok(())
}

/// Runs `sending`, which ends with the stream's delivery (its `finish` waits for the final
/// receiver's receipt, spec §8, Delivery), while showing the acknowledged bytes on `bar`.
/// All `total` bytes once delivered; or how many the next hop acknowledged, and why the
/// transfer did not complete. Only the receipt counts: bytes acknowledged by a relay, or by
/// a receiver whose connection then ended, are not a transfer done.
pub(crate) async fn watch_acks(
    conn: &Connection,
    total: u64,
    bar: &indicatif::ProgressBar,
    sending: impl std::future::Future<Output = Result<(), weir_tokio::Error>>,
) -> Result<u64, (u64, weir_tokio::Error)> {
    let mut acked = 0;
    tokio::pin!(sending);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            r = &mut sending => {
                let last = conn.stats().await.map_or(acked, |s| s.bytes_acked);
                bar.set_position(last);
                return match r {
                    Ok(()) => Ok(total),
                    Err(e) => Err((last, e)),
                };
            }
            _ = tick.tick() => {
                acked = conn.stats().await.map_or(acked, |s| s.bytes_acked);
                bar.set_position(acked);
            }
        }
    }
}

/// What `weir recv` does with what it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// A file of the same name in the directory: the transfer is refused.
    Refuse,
    /// It is replaced once the new one arrived whole and verified.
    Replace,
}

/// `weir recv --listen ADDR --out DIR`: receives files until interrupted (or one, `once`).
/// Ctrl-C closes every connection with [`code::INTERRUPTED`].
pub async fn recv(
    listen: SocketAddr,
    dir: &Path,
    once: bool,
    existing: Existing,
    via: Option<SocketAddr>,
    net: &NetArgs,
) -> Result<(), CliError> {
    let meta = std::fs::metadata(dir).map_err(file_error(dir))?;
    if !meta.is_dir() {
        return Err(file_error(dir)(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let endpoint = net::bind(listen, net.apply(Config::default())?)?;
    say!(
        "listening on {} key {}",
        endpoint.local_addr(),
        endpoint.public_key()
    )?;
    // The reservation lasts as long as this connection to the relay.
    let _reserved = match via {
        Some(relay) => {
            let r = verdict::unless_interrupted(net::reserve(&endpoint, relay, net.versions)).await?;
            say!("reachable through relay {relay} as {}", endpoint.public_key())?;
            Some(r)
        }
        None => None,
    };
    let multi = MultiProgress::new();
    // The connections being served, to tell each of them at Ctrl-C.
    let live = verdict::Serving::default();
    let serving = async {
        if once {
            let conn = endpoint.accept().await.map_err(CliError::Net)?;
            live.add(0, &conn);
            tracing::info!("a sender connected");
            let stream = conn.accept_stream().await.map_err(|e| interrupted(0, None, e))?;
            say!("{}", receive_file(stream, dir, existing, &multi).await?)?;
            return Ok(());
        }
        // Senders are served side by side, each connection's files one after another.
        for n in 1.. {
            let conn = endpoint.accept().await.map_err(CliError::Net)?;
            tracing::info!("a sender connected");
            live.add(n, &conn);
            let (dir, multi, live) = (dir.to_path_buf(), multi.clone(), live.clone());
            tokio::spawn(async move {
                while let Ok(stream) = conn.accept_stream().await {
                    // A file that arrived is on disk whether or not its line can be printed.
                    let done = receive_file(stream, &dir, existing, &multi).await;
                    if let Err(e) = done.and_then(|line| say!("{line}")) {
                        eprintln!("weir: {e}");
                    }
                }
                live.remove(n);
            });
        }
        Ok(())
    };
    let outcome = tokio::select! {
        r = serving => r,
        () = verdict::interrupt() => {
            live.interrupt_all([]).await;
            Err(CliError::Cancelled(Some("partial files removed; the senders were told".into())))
        }
    };
    endpoint.close().await;
    outcome
}

fn interrupted(delivered: u64, total: Option<u64>, e: weir_tokio::Error) -> CliError {
    match e {
        weir_tokio::Error::VerificationFailed { .. } => CliError::Verification,
        e => CliError::Interrupted {
            delivered,
            total: Total(total),
            why: verdict::why(&e),
        },
    }
}

/// Reads one file stream into `dir`; the line to print once it is there.
async fn receive_file(
    mut stream: RecvStream,
    dir: &Path,
    existing: Existing,
    multi: &MultiProgress,
) -> Result<String, CliError> {
    let total = stream.total_len();
    let started = Instant::now();
    let bad = |why: &str| CliError::Interrupted {
        delivered: 0,
        total: Total(total),
        why: why.to_string(),
    };
    if stream.label().map(|l| l.as_str()) != Some(FILE_LABEL) {
        let _ = stream.stop(code::NOT_A_FILE);
        return Err(bad("the stream is not a weir file"));
    }
    // Delivered means in place under its name: the sender hears so only after the rename.
    // (Before the first read, which may fetch the end with the first bytes.)
    stream.defer_delivery().map_err(|e| interrupted(0, total, e))?;
    // The name header, which may span chunks.
    let mut head = BytesMut::new();
    let mut rest = Bytes::new();
    let name = loop {
        if head.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
            if head.len() >= 2 + len {
                rest = head.split_off(2 + len).freeze();
                break String::from_utf8(head[2..].to_vec()).ok();
            }
        }
        match stream.read_chunk(usize::MAX).await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => break None,
            Err(e) => return Err(interrupted(0, total, e)),
        }
    };
    let Some(name) = name.filter(|n| safe_name(n)) else {
        let _ = stream.stop(code::NOT_A_FILE);
        return Err(bad("the stream's file name is missing or unsafe"));
    };
    let header_len = 2 + name.len() as u64;
    let file_total = total.map(|t| t.saturating_sub(header_len));
    let part = dir.join(format!(".{name}.weir-part"));
    let target = dir.join(&name);
    if existing == Existing::Refuse && tokio::fs::try_exists(&target).await.unwrap_or(true) {
        let _ = stream.stop(code::EXISTS);
        return Err(CliError::File {
            path: target,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists: refused the transfer (--force replaces it)",
            ),
        });
    }
    tracing::info!(file = %name, bytes = ?file_total, "receiving");
    let mut file = match tokio::fs::File::create(&part).await {
        Ok(file) => file,
        Err(e) => {
            let _ = stream.stop(code::WRITE_FAILED);
            return Err(file_error(&part)(e));
        }
    };
    let partial = Partial::new(&part);
    let bar = net::bar(multi, &name, file_total);
    let mut written = 0u64;
    let mut next = (!rest.is_empty()).then_some(rest);
    let outcome = loop {
        let chunk = match next.take() {
            Some(c) => c,
            None => match stream.read_chunk(usize::MAX).await {
                Ok(Some(c)) => c,
                Ok(None) => break Ok(()),
                Err(e) => break Err(interrupted(written, file_total, e)),
            },
        };
        if let Err(e) = file.write_all(&chunk).await {
            break Err(file_error(&part)(e));
        }
        written += chunk.len() as u64;
        bar.set_position(written);
    };
    let outcome = match outcome {
        Ok(()) => match file.sync_all().await {
            Ok(()) => tokio::fs::rename(&part, &target)
                .await
                .map_err(file_error(&target)),
            Err(e) => Err(file_error(&part)(e)),
        },
        e => e,
    };
    drop(file);
    if let Err(e) = outcome {
        bar.abandon();
        if let CliError::File { .. } = e {
            // Ours, not the transfer's: the sender is told it was not kept.
            let _ = stream.stop(code::WRITE_FAILED);
        }
        return Err(e);
    }
    bar.finish();
    partial.keep();
    stream
        .confirm_delivery()
        .map_err(|e| interrupted(written, file_total, e))?;
    let elapsed = started.elapsed();
    Ok(format!(
        "received {} ({}) in {:.2} s: {}; verified: digest matches",
        target.display(),
        units::bytes(written),
        elapsed.as_secs_f64(),
        units::throughput(written, elapsed)
    ))
}

/// `weir relay --listen ADDR --to ADDR...`: forwards every stream it receives to each
/// target, fragment by fragment, until interrupted.
pub async fn relay(listen: SocketAddr, targets: Vec<SocketAddr>, net: NetArgs) -> Result<(), CliError> {
    let endpoint = Arc::new(net::bind(listen, net.apply(Config::default())?)?);
    say!(
        "relaying {} (key {}) -> {}",
        endpoint.local_addr(),
        endpoint.public_key(),
        targets
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let downstream = Arc::new(tokio::sync::Mutex::new(Vec::<(SocketAddr, Connection)>::new()));
    let upstream = verdict::Serving::default();
    let mut tasks = tokio::task::JoinSet::new();
    let serving = async {
        for n in 0.. {
            let conn = endpoint.accept().await.map_err(CliError::Net)?;
            tracing::info!("a sender connected");
            upstream.add(n, &conn);
            let (endpoint, targets, downstream, net, upstream) = (
                Arc::clone(&endpoint),
                targets.clone(),
                Arc::clone(&downstream),
                net.clone(),
                upstream.clone(),
            );
            tasks.spawn(async move {
                while let Ok(stream) = conn.accept_stream().await {
                    let done = forward(&endpoint, stream, &targets, &downstream, &net).await;
                    if let Err(e) = done.and_then(|line| say!("{line}")) {
                        eprintln!("weir: {e}");
                    }
                }
                upstream.remove(n);
            });
        }
        Ok(())
    };
    let outcome = tokio::select! {
        r = serving => r,
        () = verdict::interrupt() => {
            // Both sides of every pipe hear why it ends.
            let downstream: Vec<Connection> = downstream.lock().await.drain(..).map(|(_, c)| c).collect();
            upstream.interrupt_all(downstream).await;
            Err(CliError::Cancelled(Some("the relay stopped; its peers were told".into())))
        }
    };
    // The tasks hold the endpoint: once they are gone, its close sends what is due.
    tasks.shutdown().await;
    upstream.forget_all();
    if let Ok(endpoint) = Arc::try_unwrap(endpoint) {
        endpoint.close().await;
    }
    outcome
}

/// Pipes `stream` to a connection to each target (connecting, or reconnecting, as needed).
async fn forward(
    endpoint: &Endpoint,
    stream: RecvStream,
    targets: &[SocketAddr],
    downstream: &tokio::sync::Mutex<Vec<(SocketAddr, Connection)>>,
    net: &NetArgs,
) -> Result<String, CliError> {
    let conns = {
        let mut known = downstream.lock().await;
        let mut conns = Vec::new();
        for &t in targets {
            if !known.iter().any(|(a, _)| *a == t) {
                known.push((t, net::connect(endpoint, t, None, net.versions).await?));
            }
            conns.extend(known.iter().filter(|(a, _)| *a == t).map(|(_, c)| c.clone()));
        }
        conns
    };
    let total = stream.total_len();
    let started = Instant::now();
    let refs: Vec<&Connection> = conns.iter().collect();
    let piped = match endpoint.pipe(stream, &refs).await {
        Ok(pipe) => pipe.wait().await,
        Err(e) => Err(e),
    };
    let stats = match piped {
        Ok(stats) => stats,
        Err(e) => {
            // A target may have gone: the next stream connects afresh.
            downstream.lock().await.clear();
            return Err(interrupted(0, total, e));
        }
    };
    Ok(format!(
        "relayed {} to {} target(s) in {:.2} s; peak held {}",
        units::bytes(stats.bytes_forwarded),
        targets.len(),
        started.elapsed().as_secs_f64(),
        units::bytes(stats.in_flight_peak + stats.waiting_peak)
    ))
}

/// Where `weir recv` would put `name` (for tests).
#[cfg(test)]
fn output_path(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    safe_name(name).then(|| dir.join(name))
}

/// The digest of a whole file stream: name header then bytes (for tests).
#[cfg(test)]
fn stream_digest(name: &str, bytes: &[u8]) -> weir_core::Digest {
    let mut h = DigestHasher::new();
    h.update(&name_header(name));
    h.update(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_written() {
        let dir = Path::new("/tmp/out");
        assert_eq!(output_path(dir, "a.bin"), Some(dir.join("a.bin")));
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "nul\0"] {
            assert_eq!(output_path(dir, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_name_header_is_length_then_utf8() {
        assert_eq!(&name_header("ab")[..], &[0, 2, b'a', b'b']);
        assert_ne!(stream_digest("a", b"x"), stream_digest("b", b"x"));
    }

    #[test]
    fn names_that_cannot_travel_are_refused() {
        assert!(send_name(Path::new("dir/file.txt")).is_ok_and(|n| n == "file.txt"));
        let long = "x".repeat(256);
        assert!(send_name(Path::new(&long)).is_err());
    }

    /// The receiver reads a stream of announced length whole and closes the connection
    /// before the sender finished the stream: the sender's `finish` fails, yet every byte
    /// was acknowledged, so the transfer succeeded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_receiver_that_closes_before_the_finish_still_completes_the_transfer() {
        let local = "127.0.0.1:0".parse().unwrap();
        let server = weir_tokio::Endpoint::bind(local, Config::default()).unwrap();
        let client = weir_tokio::Endpoint::bind(local, Config::default()).unwrap();
        let conn = client.connect(server.local_addr()).await.unwrap();
        let data = Bytes::from(vec![5u8; 10_000]);
        let total = data.len() as u64;
        let mut out = conn
            .open_stream_with(StreamHeader::default().with_total_len(total))
            .await
            .unwrap();
        let receiver = tokio::spawn(async move {
            let incoming = server.accept().await.unwrap();
            let mut stream = incoming.accept_stream().await.unwrap();
            let got = stream.read_to_end(1 << 20).await.unwrap();
            // Read whole (its length was announced): close at once, no FIN awaited.
            incoming.close(0, "done").await.unwrap();
            got.len()
        });
        let closed = conn.clone();
        let sending = async move {
            out.write_all_chunk(data).await?;
            // Finishing only once the peer closed: the race, made certain.
            while closed.accept_stream().await.is_ok() {}
            out.finish().await
        };
        let bar = indicatif::ProgressBar::hidden();
        let r = tokio::time::timeout(Duration::from_secs(30), watch_acks(&conn, total, &bar, sending))
            .await
            .expect("bounded");
        assert_eq!(r.map_err(|(n, e)| (n, e.to_string())), Ok(total));
        assert_eq!(receiver.await.unwrap(), total as usize);
    }
}
