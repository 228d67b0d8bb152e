//! `weir sim`: the demo's transfer (sender, relay, receiver) inside weir-sim's deterministic
//! network instead of real sockets. Virtual time: a transfer that takes minutes on the
//! links it describes runs in seconds, and the same seed gives the same run, datagram for
//! datagram, so a trace recorded here replays exactly.

use std::cell::{Cell, RefCell};
use std::fmt;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::Label;
use weir_core::{
    ConnectionHandle, ConnectionStats, Digest, Event, LocalRead, PipeId, PipeStats, Read, StreamHeader,
};
use weir_sim::{LinkConfig, NetStats, NodeId, Sim};

use crate::units;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Bytes in the message.
    pub size: u64,
    /// Each link, both directions.
    pub link: LinkConfig,
    /// Seeds the network, the endpoints and the message.
    pub seed: u64,
    /// Sender straight to receiver, no relay.
    pub direct: bool,
    /// Record the sender's trace.
    pub trace: bool,
    /// Virtual time after which the run is given up.
    pub limit: Duration,
    /// The endpoints' config.
    pub config: weir_core::Config,
}

/// How a simulated transfer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte arrived and matched the sender's digest.
    Verified,
    /// The bytes arrived but did not match.
    VerificationFailed,
    /// The transfer stopped: a connection closed, a stream was reset, or time ran out.
    Failed(String),
}

/// What a simulated transfer did.
#[derive(Clone, Debug)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes the receiver read.
    pub delivered: u64,
    /// Bytes in the message.
    pub size: u64,
    /// Virtual time from the stream opening to the last byte read (or to the end).
    pub elapsed: Duration,
    /// The sender's connection at the end.
    pub sender: Option<ConnectionStats>,
    /// The relay's pipe at its last sample (peaks over the run); `None` without a relay.
    pub relay: Option<PipeStats>,
    /// What the network did.
    pub net: NetStats,
    /// The sender's trace, if asked for.
    pub trace: Option<String>,
}

/// The label the demo's and the simulator's message stream carries.
pub const DEMO_LABEL: &str = "weir/demo";

struct Roles {
    sender: NodeId,
    relay: Option<NodeId>,
    receiver: NodeId,
    up: ConnectionHandle,
    down: Option<ConnectionHandle>,
}

/// Where the transfer is.
#[derive(Default)]
struct Progress {
    stream: Option<weir_core::wire::StreamId>,
    written: u64,
    opened_at: Option<Instant>,
    pipe_wanted: Option<(ConnectionHandle, weir_core::wire::StreamId)>,
    delivered: u64,
    outcome: Option<Outcome>,
    ended_at: Option<Instant>,
}

/// Runs the transfer `spec` describes to its end (or its time limit).
pub fn run(spec: &Spec) -> Report {
    let message = crate::payload::generate(spec.size, spec.seed);
    let digest = Digest::of(&message);
    let mut sim = Sim::new(spec.seed);
    let sender = if spec.trace {
        sim.add_traced_node(spec.config.clone())
    } else {
        sim.add_node(spec.config.clone())
    };
    let relay = (!spec.direct).then(|| sim.add_node(spec.config.clone()));
    let receiver = sim.add_node(spec.config.clone());
    let first_hop = relay.unwrap_or(receiver);
    sim.link(sender, first_hop, spec.link);
    let down = relay.map(|r| {
        sim.link(r, receiver, spec.link);
        sim.connect(r, receiver)
    });
    let up = sim.connect(sender, first_hop);
    let roles = Roles {
        sender,
        relay,
        receiver,
        up,
        down,
    };
    let p = RefCell::new(Progress::default());
    let pipe: Cell<Option<PipeId>> = Cell::new(None);
    let peak: Cell<Option<PipeStats>> = Cell::new(None);
    let limit = Instant::ZERO + spec.limit;
    let header = StreamHeader::default()
        .with_label(Label::from_static(DEMO_LABEL).expect("a valid label"))
        .with_total_len(spec.size)
        .with_digest(digest);
    sim.run_until(
        limit,
        |sim, node, event| {
            on_event(
                sim,
                &roles,
                node,
                event,
                &mut p.borrow_mut(),
                &pipe,
                &header,
                &message,
            )
        },
        |sim| {
            if let (Some(r), Some(id)) = (roles.relay, pipe.get()) {
                if let Some(s) = sim.endpoint_ref(r).pipe_stats(id) {
                    peak.set(Some(s));
                }
            }
            p.borrow().outcome.is_some()
        },
    );
    let p = p.into_inner();
    let now = sim.now();
    let outcome = p.outcome.clone().unwrap_or_else(|| {
        Outcome::Failed(format!(
            "not finished within {} of virtual time",
            fmt_duration(spec.limit)
        ))
    });
    let start = p.opened_at.unwrap_or(Instant::ZERO);
    let end = p.ended_at.unwrap_or(now);
    Report {
        outcome,
        delivered: p.delivered,
        size: spec.size,
        elapsed: end.saturating_duration_since(start),
        sender: sim.endpoint_ref(roles.sender).connection_stats(roles.up),
        relay: peak.get(),
        net: sim.stats(),
        trace: spec.trace.then(|| sim.take_trace(roles.sender)),
    }
}

#[allow(clippy::too_many_arguments)]
fn on_event(
    sim: &mut Sim,
    roles: &Roles,
    node: NodeId,
    event: Event,
    p: &mut Progress,
    pipe: &Cell<Option<PipeId>>,
    header: &StreamHeader,
    message: &Bytes,
) {
    let now = sim.now();
    match event {
        Event::Connected { conn, .. } if node == roles.sender && conn == roles.up => {
            match sim.endpoint(node).open_stream(conn, header.clone()) {
                Ok(s) => {
                    p.stream = Some(s);
                    p.opened_at = Some(now);
                    write_more(sim, roles, p, message);
                }
                Err(e) => p.outcome = Some(Outcome::Failed(format!("open_stream: {e}"))),
            }
        }
        Event::Writable { conn } if node == roles.sender && conn == roles.up => {
            write_more(sim, roles, p, message)
        }
        Event::StreamOpened { conn, stream, .. } if Some(node) == roles.relay => {
            p.pipe_wanted = Some((conn, stream));
            start_pipe(sim, roles, p, pipe);
        }
        Event::Connected { conn, .. } if Some(node) == roles.relay && Some(conn) == roles.down => {
            start_pipe(sim, roles, p, pipe);
        }
        Event::StreamReadable { conn, stream } if node == roles.receiver => loop {
            match sim.endpoint(node).read(conn, stream, usize::MAX) {
                Ok(Read::Data { bytes, .. }) => p.delivered += bytes.len() as u64,
                Ok(Read::Pending) => break,
                Ok(Read::Finished) => {
                    p.outcome.get_or_insert(Outcome::Verified);
                    p.ended_at.get_or_insert(now);
                    break;
                }
                Ok(Read::VerificationFailed { .. }) => {
                    p.outcome.get_or_insert(Outcome::VerificationFailed);
                    break;
                }
                Ok(Read::Reset { code }) => {
                    p.outcome
                        .get_or_insert(Outcome::Failed(format!("stream reset (code {code})")));
                    break;
                }
                Ok(other) => {
                    p.outcome
                        .get_or_insert(Outcome::Failed(format!("read: {other:?}")));
                    break;
                }
                Err(e) => {
                    p.outcome.get_or_insert(Outcome::Failed(format!("read: {e}")));
                    break;
                }
            }
        },
        Event::Closed { reason, .. } if p.outcome.is_none() => {
            p.outcome = Some(Outcome::Failed(format!("a connection ended: {reason}")));
            p.ended_at = Some(now);
        }
        Event::PipeFailed { reason, .. } if p.outcome.is_none() => {
            p.outcome = Some(Outcome::Failed(format!("the relay's pipe failed: {reason}")));
            p.ended_at = Some(now);
        }
        _ => {}
    }
}

fn write_more(sim: &mut Sim, roles: &Roles, p: &mut Progress, message: &Bytes) {
    let Some(stream) = p.stream else { return };
    while p.written < message.len() as u64 {
        let rest = message.slice(p.written as usize..);
        match sim.endpoint(roles.sender).write(roles.up, stream, rest) {
            Ok(n) => p.written += n as u64,
            Err(_) => return, // WouldBlock: Writable follows; anything else ends in Closed
        }
    }
    if p.written == message.len() as u64 {
        let _ = sim.endpoint(roles.sender).finish(roles.up, stream);
        p.stream = None;
    }
}

fn start_pipe(sim: &mut Sim, roles: &Roles, p: &mut Progress, pipe: &Cell<Option<PipeId>>) {
    let (Some(relay), Some(down), Some((from, stream))) = (roles.relay, roles.down, p.pipe_wanted) else {
        return;
    };
    if !sim.endpoint_ref(relay).is_established(down) {
        return; // piped once the relay's own connection is up
    }
    p.pipe_wanted = None;
    match sim
        .endpoint(relay)
        .pipe(from, stream, &[down], LocalRead::Discard)
    {
        Ok(id) => pipe.set(Some(id)),
        Err(e) => p.outcome = Some(Outcome::Failed(format!("pipe: {e}"))),
    }
}

/// A core duration the way a person reads it.
fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(std::time::Duration::from_micros(d.as_micros())).to_string()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let elapsed = std::time::Duration::from_micros(self.elapsed.as_micros());
        writeln!(
            f,
            "delivered:        {} of {} in {:.3} s of virtual time",
            units::bytes(self.delivered),
            units::bytes(self.size),
            elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "goodput:          {}",
            units::throughput(self.delivered, elapsed)
        )?;
        if let Some(s) = &self.sender {
            writeln!(
                f,
                "sender:           {} datagrams, {} packets lost, {} retransmitted, {} probes",
                s.datagrams_sent,
                s.packets_lost,
                units::bytes(s.bytes_retransmitted),
                s.probes
            )?;
            writeln!(
                f,
                "rtt:              smoothed {}, min {}",
                units::millis(s.smoothed_rtt),
                units::millis(s.min_rtt)
            )?;
        }
        if let Some(r) = &self.relay {
            writeln!(
                f,
                "relay peak:       {} in flight, {} waiting",
                units::bytes(r.in_flight_peak),
                units::bytes(r.waiting_peak)
            )?;
        }
        let n = &self.net;
        writeln!(
            f,
            "network:          {} datagrams sent, {} lost, {} dropped by queues, {} duplicated, {} corrupted",
            n.sent, n.lost, n.queue_drops, n.duplicated, n.corrupted
        )?;
        match &self.outcome {
            Outcome::Verified => write!(f, "verified:         digest matches"),
            Outcome::VerificationFailed => write!(f, "verified:         NO, the digest does not match"),
            Outcome::Failed(why) => write!(f, "failed:           {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: u64, loss: f64, seed: u64) -> Spec {
        Spec {
            size,
            link: LinkConfig {
                loss,
                ..LinkConfig::default()
            },
            seed,
            direct: false,
            trace: false,
            limit: Duration::from_secs(600),
            config: weir_core::Config::default(),
        }
    }

    #[test]
    fn a_message_crosses_the_relay_under_loss_and_verifies() {
        let r = run(&spec(1 << 20, 0.02, 3));
        assert_eq!(r.outcome, Outcome::Verified, "{r}");
        assert_eq!(r.delivered, 1 << 20);
        assert!(r.net.lost > 0, "the links lost nothing: {r}");
        assert!(r.relay.is_some_and(|p| p.in_flight_peak > 0), "{r}");
        assert!(r.sender.is_some_and(|s| s.bytes_retransmitted > 0), "{r}");
        assert!(r.to_string().contains("verified:         digest matches"));
    }

    #[test]
    fn the_same_seed_gives_the_same_run_and_trace() {
        let mut s = spec(200_000, 0.05, 9);
        s.trace = true;
        let (a, b) = (run(&s), run(&s));
        assert_eq!(a.to_string(), b.to_string());
        let trace = a.trace.expect("asked for");
        assert_eq!(Some(trace.clone()), b.trace);
        assert!(weir_core::trace::replay(&trace).is_ok_and(|r| r.outputs > 100));
    }

    #[test]
    fn a_partitioned_path_is_reported_as_not_finished() {
        let mut s = spec(100_000, 1.0, 1);
        s.limit = Duration::from_secs(5);
        s.direct = true;
        let r = run(&s);
        assert!(matches!(r.outcome, Outcome::Failed(_)), "{r}");
        assert_eq!(r.delivered, 0);
    }
}
