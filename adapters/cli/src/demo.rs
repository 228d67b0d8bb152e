//! `weir demo`: a sender, a relay and a receiver in this process, on 127.0.0.1, over real
//! UDP sockets, with an impairing proxy (`weir_sim::proxy`) on each hop. The sender
//! writes one generated message as a stream with its length and digest; the relay pipes it
//! on fragment by fragment without holding it; the receiver reads it as it arrives and the
//! core checks the digest at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar};
use weir_core::congestion::CongestionAlgorithm;
use weir_core::wire::Label;
use weir_core::{ConnectionStats, Digest, PipeStats};
use weir_sim::proxy::{DirectionStats, Impairment, Proxy};
use weir_sim::JitterOrdering;
use weir_tokio::{Config, Connection, Endpoint, StreamHeader};

use crate::error::{CliError, Total};
use crate::net;
use crate::output::say;
use crate::sim::DEMO_LABEL;
use crate::transfer::{watch_acks, TICK};
use crate::units;

/// What the demo sends and over what path.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Bytes in the message.
    pub size: u64,
    /// Loss per datagram on each hop.
    pub loss: f64,
    /// One-way delay on each hop, each direction.
    pub delay: Duration,
    /// Extra delay per datagram on each hop, drawn from zero to this (datagrams overtake
    /// each other by up to it, unless `ordering` keeps the order).
    pub jitter: Duration,
    /// Whether the jitter may reorder datagrams.
    pub ordering: JitterOrdering,
    /// Chance a datagram is held back by up to the delay + 2 ms and overtaken.
    pub reorder: f64,
    /// Seeds the message and the loss pattern.
    pub seed: u64,
    /// No relay: sender straight to receiver.
    pub direct: bool,
    /// Bottleneck rate of each hop in bits per second; `None`: unlimited.
    pub rate: Option<u64>,
    /// The bottleneck's drop-tail queue in bytes, with `rate`.
    pub queue_bytes: usize,
    /// The endpoints' config.
    pub config: Config,
}

/// What the receiver saw.
struct Received {
    bytes: u64,
    done_at: Instant,
}

/// The rough ceiling a loss-based transport has on this path (Mathis et al. 1997:
/// rate ≈ 1.22 × datagram / (RTT × √loss)), in bytes per second, so the demo can say what
/// to expect before it starts; `None` without loss.
fn loss_bound(spec: &Spec) -> Option<f64> {
    let rtt = 2.0 * spec.delay.as_secs_f64();
    (spec.loss > 0.0 && rtt > 0.0)
        .then(|| 1.22 * f64::from(spec.config.max_datagram_size) / (rtt * spec.loss.sqrt()))
}

/// What will bound the run's speed, in one line, before it starts.
fn speed_note(spec: &Spec) -> Option<String> {
    let loss = spec.loss * 100.0;
    match spec.config.congestion {
        CongestionAlgorithm::NewReno => loss_bound(spec).map(|bound| {
            format!(
                "note: NewReno reads every loss as congestion and halves its window, so {loss}% random \
                 loss holds it under about {:.2} MB/s on this path (the Mathis bound): this run takes \
                 at least {:.0} s. The default, --congestion bbr, is not held back by random loss.",
                bound / 1e6,
                spec.size as f64 / bound
            )
        }),
        CongestionAlgorithm::Bbr => {
            let bound = match spec.rate {
                Some(bits) => format!(
                    "the {} bottleneck",
                    units::throughput(bits / 8, Duration::from_secs(1))
                ),
                None => "what this machine's CPU and the proxies forward (loopback has no \
                         bottleneck)"
                    .to_string(),
            };
            Some(format!(
                "note: BBR paces at its estimate of the path's bandwidth and reads loss as \
                 congestion only when a queue built up with it, so {loss}% random loss costs \
                 the resends, not the rate: the speed is {bound}."
            ))
        }
        _ => (spec.loss > 0.0).then(|| {
            format!(
                "note: LEDBAT is the scavenger: it keeps its window through random loss ({loss}% \
                 here) but grows it slowly, by at most a datagram per round trip, and yields to \
                 any other traffic."
            )
        }),
    }
}

/// Runs the demo and prints its summary.
pub async fn run(spec: Spec) -> Result<(), CliError> {
    let local: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let receiver = net::bind(local, spec.config.clone())?;
    let relay = if spec.direct {
        None
    } else {
        Some(Arc::new(net::bind(local, spec.config.clone())?))
    };
    let sender = net::bind(local, spec.config.clone())?;
    let impairment = |seed| Impairment {
        loss: spec.loss,
        delay: spec.delay,
        jitter: spec.jitter,
        ordering: spec.ordering,
        reorder: spec.reorder,
        seed,
        rate: spec.rate.map(|bits| bits / 8),
        queue_bytes: spec.queue_bytes,
        ..Impairment::default()
    };
    let proxy_error = |e| CliError::Net(weir_tokio::Error::Io(e));
    let last_hop = Proxy::start(receiver.local_addr(), impairment(spec.seed)).map_err(proxy_error)?;
    let first_hop = match &relay {
        Some(r) => {
            Some(Proxy::start(r.local_addr(), impairment(spec.seed.wrapping_add(1))).map_err(proxy_error)?)
        }
        None => None,
    };
    let hops = if spec.direct {
        "sender -> receiver"
    } else {
        "sender -> relay -> receiver"
    };
    let mut also = String::new();
    if !spec.jitter.is_zero() {
        also += &format!(
            " plus up to {} of jitter{}",
            humantime::format_duration(spec.jitter),
            match spec.ordering {
                JitterOrdering::Reorders => "",
                JitterOrdering::InOrder => " (in order)",
            }
        );
    }
    if spec.reorder > 0.0 {
        also += &format!(", holds back {}% to be overtaken", spec.reorder * 100.0);
    }
    say!(
        "weir demo: {} from {hops} over UDP on 127.0.0.1; each hop loses {}% of datagrams and delays \
         them {} each way{also}",
        units::bytes(spec.size),
        spec.loss * 100.0,
        humantime::format_duration(spec.delay)
    )?;
    if let Some(note) = speed_note(&spec) {
        say!("{note}")?;
    }
    let message = crate::payload::generate(spec.size, spec.seed);
    let header = StreamHeader::default()
        .with_label(Label::from_static(DEMO_LABEL).expect("a valid label"))
        .with_total_len(spec.size)
        .with_digest(Digest::of(&message));
    let multi = MultiProgress::new();
    let first_name = if spec.direct {
        "sender -> receiver"
    } else {
        "sender -> relay"
    };
    let bars = [
        net::bar(&multi, first_name, Some(spec.size)),
        net::bar(&multi, "relay -> receiver", Some(spec.size)),
        net::bar(&multi, "receiver read", Some(spec.size)),
    ];
    if spec.direct {
        multi.remove(&bars[1]);
    }
    let started = Instant::now();

    let receiving = tokio::spawn(receive(receiver, bars[2].clone()));
    let relaying = relay.clone().map(|r| {
        let target = last_hop.addr();
        let bar = bars[1].clone();
        tokio::spawn(async move { forward(&r, target, bar).await })
    });
    let to = first_hop.as_ref().map_or(last_hop.addr(), Proxy::addr);
    let conn = net::connect(&sender, to, None, spec.config.versions).await?;
    let mut out = conn.open_stream_with(header).await.map_err(CliError::Net)?;
    let sending = async {
        out.write_all_chunk(message.clone()).await?;
        out.finish().await
    };
    let acked = watch_acks(&conn, spec.size, &bars[0], sending).await;
    let interrupted = |delivered, why: String| CliError::Interrupted {
        delivered,
        total: Total(Some(spec.size)),
        why,
    };
    acked.map_err(|(n, e)| interrupted(n, format!("the sender's connection: {e}")))?;
    bars[0].finish();
    let sender_stats = conn.stats().await.unwrap_or_default();
    let relay_stats = match relaying {
        Some(task) => Some(
            task.await
                .map_err(|e| interrupted(0, format!("the relay stopped: {e}")))?
                .map_err(|(n, e)| interrupted(n, format!("the relay: {e}")))?,
        ),
        None => None,
    };
    let received = receiving
        .await
        .map_err(|e| interrupted(0, format!("the receiver stopped: {e}")))?;
    let received = match received {
        Ok(r) => r,
        Err((_, weir_tokio::Error::VerificationFailed { .. })) => return Err(CliError::Verification),
        Err((n, e)) => return Err(interrupted(n, format!("the receiver: {e}"))),
    };
    if received.bytes != spec.size {
        return Err(interrupted(received.bytes, "the stream ended early".into()));
    }
    let paths: Vec<(&str, [DirectionStats; 2])> = match &first_hop {
        Some(p) => vec![
            ("sender -> relay", p.stats()),
            ("relay -> receiver", last_hop.stats()),
        ],
        None => vec![("sender -> receiver", last_hop.stats())],
    };
    let printed = print_summary(
        &spec,
        received.done_at - started,
        &sender_stats,
        relay_stats.as_ref(),
        &paths,
    );
    drop(conn);
    sender.close().await;
    printed
}

/// The receiver: accepts the sender's (or relay's) connection and reads the stream.
async fn receive(receiver: Endpoint, bar: ProgressBar) -> Result<Received, (u64, weir_tokio::Error)> {
    let conn = receiver.accept().await.map_err(|e| (0, e))?;
    let mut stream = conn.accept_stream().await.map_err(|e| (0, e))?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.read_chunk(usize::MAX).await.map_err(|e| (bytes, e))? {
        bytes += chunk.len() as u64;
        bar.set_position(bytes);
    }
    bar.finish();
    Ok(Received {
        bytes,
        done_at: Instant::now(),
    })
}

/// The relay: accepts the sender, connects to the receiver (through its proxy), pipes the
/// stream; its counters once the receiver acknowledged everything.
async fn forward(
    relay: &Endpoint,
    target: SocketAddr,
    bar: ProgressBar,
) -> Result<RelayStats, (u64, weir_tokio::Error)> {
    let upstream = relay.accept().await.map_err(|e| (0, e))?;
    let down = relay.connect(target).await.map_err(|e| (0, e))?;
    let stream = upstream.accept_stream().await.map_err(|e| (0, e))?;
    let pipe = relay.pipe(stream, &[&down]).await.map_err(|e| (0, e))?;
    let mut tick = tokio::time::interval(TICK);
    let wait = pipe.wait();
    tokio::pin!(wait);
    let pipe_stats = loop {
        tokio::select! {
            r = &mut wait => break r.map_err(|e| (bar.position(), e))?,
            _ = tick.tick() => {
                if let Some(s) = down.stats().await {
                    bar.set_position(s.bytes_acked);
                }
            }
        }
    };
    let down_stats = down.stats().await.unwrap_or_default();
    bar.set_position(down_stats.bytes_acked);
    bar.finish();
    Ok(RelayStats {
        pipe: pipe_stats,
        down: down_stats,
        _upstream: upstream,
        _down: down,
    })
}

/// The relay's counters, and its connections, kept open until the summary is printed.
struct RelayStats {
    pipe: PipeStats,
    down: ConnectionStats,
    _upstream: Connection,
    _down: Connection,
}

fn print_summary(
    spec: &Spec,
    elapsed: Duration,
    sender: &ConnectionStats,
    relay: Option<&RelayStats>,
    paths: &[(&str, [DirectionStats; 2])],
) -> Result<(), CliError> {
    say!(
        "delivered:         {} in {:.2} s",
        units::bytes(spec.size),
        elapsed.as_secs_f64()
    )?;
    say!("goodput:           {}", units::throughput(spec.size, elapsed))?;
    let hop = |name: &str, s: &ConnectionStats| {
        say!(
            "{:<18} {} datagrams sent, {} packets lost, {} retransmitted; rtt smoothed {}, min {}",
            format!("{name}:"),
            s.datagrams_sent,
            s.packets_lost,
            units::bytes(s.bytes_retransmitted),
            units::millis(s.smoothed_rtt),
            units::millis(s.min_rtt)
        )
    };
    hop(if spec.direct { "sender" } else { "sender -> relay" }, sender)?;
    if let Some(r) = relay {
        hop("relay -> receiver", &r.down)?;
        say!(
            "relay peak:        {} buffered ({} awaiting acknowledgement, {} waiting), of a {} limit",
            units::bytes(r.pipe.in_flight_peak + r.pipe.waiting_peak),
            units::bytes(r.pipe.in_flight_peak),
            units::bytes(r.pipe.waiting_peak),
            units::bytes(spec.config.pipe_buffer)
        )?;
    }
    for (name, [fwd, back]) in paths {
        say!(
            "{:<18} {} datagrams forwarded, {} dropped; {} and {} back",
            format!("path {name}:"),
            fwd.forwarded,
            fwd.dropped,
            back.forwarded,
            back.dropped
        )?;
    }
    say!("verified:          digest matches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_bound_follows_the_square_root_law() {
        let spec = |loss, ms| Spec {
            size: 1,
            loss,
            delay: Duration::from_millis(ms),
            jitter: Duration::ZERO,
            ordering: JitterOrdering::Reorders,
            reorder: 0.0,
            seed: 1,
            direct: false,
            rate: None,
            queue_bytes: 0,
            config: Config::default(),
        };
        assert_eq!(loss_bound(&spec(0.0, 20)), None);
        let b = loss_bound(&spec(0.02, 20)).unwrap();
        // 1.22 × 1452 B (the default largest datagram, which path MTU discovery reaches on
        // the demo's links) / (40 ms × √0.02) ≈ 313 kB/s
        assert!((b - 313_150.0).abs() < 1_000.0, "{b}");
        assert!((loss_bound(&spec(0.005, 20)).unwrap() / b - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_note_names_what_bounds_the_run() {
        let spec = |congestion, loss| Spec {
            size: 64 << 20,
            loss,
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
            ordering: JitterOrdering::Reorders,
            reorder: 0.0,
            seed: 1,
            direct: false,
            rate: Some(80_000_000),
            queue_bytes: 100_000,
            config: Config {
                congestion,
                ..Config::default()
            },
        };
        let bbr = speed_note(&spec(CongestionAlgorithm::Bbr, 0.02)).unwrap();
        assert!(bbr.contains("BBR") && bbr.contains("2% random loss"), "{bbr}");
        assert!(bbr.contains("the 10.0 MB/s (80 Mbit/s) bottleneck"), "{bbr}");
        let reno = speed_note(&spec(CongestionAlgorithm::NewReno, 0.02)).unwrap();
        assert!(
            reno.contains("Mathis") && reno.contains("at least 214 s"),
            "{reno}"
        );
        assert_eq!(speed_note(&spec(CongestionAlgorithm::NewReno, 0.0)), None);
    }
}
