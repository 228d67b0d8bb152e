//! Piping in weir-sim: relays forward a stream fragment by fragment to one or more next
//! hops, under loss, reordering and duplication, with end-to-end backpressure and failure
//! propagation (issue 5; spec §8.8).

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use weir_core::congestion::CongestionAlgorithm;
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Reason, StreamId};
use weir_core::{
    ApiError, Config, ConnectionHandle, Digest, Event, LocalRead, PipeFailure, PipeId, PipeStats, Read,
    StreamHeader, PIPE_BROKEN,
};
use weir_sim::relay::{relay_message, Arrival};
use weir_sim::{LinkConfig, NodeId, Sim};

/// The largest datagram, which path MTU discovery reaches on these clean links: a bound on
/// the payload of one.
const DATAGRAM: u64 = weir_core::DEFAULT_MAX_DATAGRAM_SIZE as u64;

/// A rough hop: 1% loss, 1% duplication, 5% reordering, jitter.
fn rough() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        loss: 0.01,
        duplicate: 0.01,
        reorder: 0.05,
        ..LinkConfig::default()
    }
}

fn payload(len: usize) -> Bytes {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// A relay node's view: its upstream connections are the ones it did not start.
#[derive(Default)]
struct World {
    /// Per relay node: downstream connections it pipes to.
    relays: BTreeMap<NodeId, Vec<ConnectionHandle>>,
    /// Pipes started, by relay node.
    pipes: Vec<(NodeId, PipeId)>,
    /// Whole messages received, by receiver node.
    received: BTreeMap<NodeId, Vec<Bytes>>,
    /// Pipe outcomes.
    finished: Vec<PipeId>,
    failed: Vec<(PipeId, PipeFailure)>,
    targets_lost: Vec<(PipeId, ConnectionHandle)>,
    /// Stream resets seen by receivers.
    resets: Vec<(NodeId, u64)>,
    stopped: Vec<(NodeId, u64)>,
    local: LocalRead,
    /// Bytes a Keep relay read for itself.
    kept: BTreeMap<NodeId, u64>,
    /// A node whose application reads nothing.
    idle: Option<NodeId>,
    /// Stream headers receivers saw.
    opened: Vec<(NodeId, StreamHeader)>,
    /// Whole-message reads that failed their digest check.
    corrupt: Vec<(NodeId, Read)>,
    /// A receiver that closes its connection as soon as it has a whole message.
    closer: Option<NodeId>,
    /// The sender closes its connection as soon as the next hop acknowledged its message.
    sender_closes_when_acked: bool,
    /// It did, while the pipe was still going.
    sender_closed: bool,
    /// A buggy relay: instead of piping, it reads each message whole and sends it on with
    /// the same header (digest included) and its last byte changed.
    tamperer: Option<NodeId>,
}

impl World {
    fn on_event(&mut self, sim: &mut Sim, node: NodeId, e: Event) {
        match e {
            Event::StreamOpened { conn, stream, header } => {
                if self.tamperer == Some(node) {
                    self.opened.push((node, header));
                    return;
                }
                if let Some(down) = self.relays.get(&node) {
                    if !down.contains(&conn) {
                        let pipe = sim.endpoint(node).pipe(conn, stream, down, self.local).unwrap();
                        self.pipes.push((node, pipe));
                    }
                    return;
                }
                self.opened.push((node, header));
            }
            Event::StreamReadable { conn, stream } => self.read(sim, node, conn, stream),
            Event::StreamReset { code, .. } => self.resets.push((node, code)),
            Event::StreamStopped { code, .. } => self.stopped.push((node, code)),
            Event::StreamAcked { conn, .. } if node == 0 && self.sender_closes_when_acked => {
                let now = sim.now();
                sim.endpoint(0).close(now, conn, 0, Reason::default()).unwrap();
                self.sender_closed = self.finished.is_empty();
            }
            Event::PipeFinished { pipe } => self.finished.push(pipe),
            Event::PipeFailed { pipe, reason } => self.failed.push((pipe, reason)),
            Event::PipeTargetLost { pipe, conn } => self.targets_lost.push((pipe, conn)),
            _ => {}
        }
    }

    fn read(&mut self, sim: &mut Sim, node: NodeId, conn: ConnectionHandle, stream: StreamId) {
        if self.idle == Some(node) {
            return;
        }
        if self.tamperer == Some(node) {
            if let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 30) {
                let mut changed = bytes.to_vec();
                *changed.last_mut().unwrap() ^= 1;
                let header = self.opened.iter().rfind(|(n, _)| *n == node).unwrap().1.clone();
                let down = self.relays[&node][0];
                let ep = sim.endpoint(node);
                let id = ep.open_stream(down, header).unwrap();
                assert_eq!(ep.write(down, id, changed.into()), Ok(bytes.len()));
                ep.finish(down, id).unwrap();
            }
            return;
        }
        if self.relays.contains_key(&node) {
            // A Keep relay reads what it forwards.
            while let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read(conn, stream, usize::MAX) {
                *self.kept.entry(node).or_default() += bytes.len() as u64;
            }
            return;
        }
        match sim.endpoint(node).read_message(conn, stream, 1 << 30) {
            Ok(Read::Data { bytes, .. }) => {
                self.received.entry(node).or_default().push(bytes);
                if self.closer == Some(node) {
                    let now = sim.now();
                    sim.endpoint(node).close(now, conn, 0, Reason::default()).unwrap();
                }
            }
            Ok(failed @ Read::VerificationFailed { .. }) => self.corrupt.push((node, failed)),
            _ => {}
        }
    }
}

/// Nodes: 0 the sender, then `relays` relays in a chain, then `receivers` receivers, each
/// linked to the last relay. Every connection is made and established.
fn chain(
    seed: u64,
    relays: usize,
    receivers: usize,
    link: LinkConfig,
    config: Config,
) -> (Sim, RefCell<World>, ConnectionHandle) {
    chain_configured(seed, relays, receivers, link, &|_| config.clone())
}

/// [`chain`] with each node's own configuration.
fn chain_configured(
    seed: u64,
    relays: usize,
    receivers: usize,
    link: LinkConfig,
    config: &dyn Fn(NodeId) -> Config,
) -> (Sim, RefCell<World>, ConnectionHandle) {
    let mut sim = Sim::new(seed);
    let nodes: Vec<NodeId> = (0..1 + relays + receivers)
        .map(|n| sim.add_node(config(n)))
        .collect();
    let mut world = World::default();
    for i in 0..relays {
        sim.link(nodes[i], nodes[i + 1], link);
    }
    let last = relays;
    for r in 0..receivers {
        sim.link(nodes[last], nodes[last + 1 + r], link);
    }
    let first = sim.connect(nodes[0], nodes[1]);
    for i in 1..relays {
        let c = sim.connect(nodes[i], nodes[i + 1]);
        world.relays.insert(nodes[i], vec![c]);
    }
    let fan: Vec<ConnectionHandle> = (0..receivers)
        .map(|r| sim.connect(nodes[last], nodes[last + 1 + r]))
        .collect();
    world.relays.insert(nodes[last], fan);
    let world = RefCell::new(world);
    let n = nodes.len();
    let established = sim.run_until(
        Instant::ZERO + Duration::from_secs(10),
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| {
            (0..n).all(|node| {
                (0..4).all(|i| {
                    let h = ConnectionHandle::from_index(i);
                    sim.endpoint_ref(node).connection_stats(h).is_none()
                        || sim.endpoint_ref(node).is_established(h)
                })
            })
        },
    );
    assert!(established);
    (sim, world, first)
}

fn run(sim: &mut Sim, world: &RefCell<World>, secs: u64, done: impl Fn(&World) -> bool) -> bool {
    let limit = sim.now() + Duration::from_secs(secs);
    sim.run_until(
        limit,
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |_| done(&world.borrow()),
    )
}

fn send(sim: &mut Sim, conn: ConnectionHandle, msg: &Bytes) -> StreamId {
    sim.endpoint(0).send_message(conn, None, msg.clone()).unwrap()
}

#[test]
fn a_relay_forwards_a_message_intact_over_rough_hops() {
    let (mut sim, world, conn) = chain(1, 1, 1, rough(), Config::default());
    let msg = payload(1 << 20);
    send(&mut sim, conn, &msg);
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg]);
    assert!(w.failed.is_empty());
}

/// A receiver that closes as soon as it has the message may not have acknowledged its last
/// packets yet (a lone packet's ACK waits up to max_ack_delay): its CLOSE carries that ACK,
/// and the relay counts the target as reached, not lost, though the connection then closed.
#[test]
fn a_receiver_that_closes_at_once_after_the_message_was_reached() {
    for len in [1_000, 2_000, 3_000, 30_000] {
        let (mut sim, world, conn) = chain(3, 1, 1, LinkConfig::default(), Config::default());
        world.borrow_mut().closer = Some(2);
        let msg = payload(len);
        send(&mut sim, conn, &msg);
        let ended = |w: &World| !w.finished.is_empty() || !w.failed.is_empty();
        assert!(run(&mut sim, &world, 10, ended), "{len} bytes");
        let w = world.borrow();
        assert_eq!(w.received[&2], vec![msg], "{len} bytes");
        assert_eq!((w.finished.len(), &w.failed), (1, &vec![]), "{len} bytes");
    }
}

#[test]
fn a_chain_of_three_relays_delivers_every_byte() {
    let (mut sim, world, conn) = chain(2, 3, 1, rough(), Config::default());
    let msg = payload(2 << 20);
    // With a digest: each relay passes it on, the receiver checks the bytes against it.
    sim.endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    assert!(run(&mut sim, &world, 120, |w| w.finished.len() == 3));
    let w = world.borrow();
    assert_eq!(w.received[&4], vec![msg.clone()]);
    assert_eq!(w.opened[0].1.digest, Some(Digest::of(&msg)));
    let from_relay = ConnectionHandle::from_index(0);
    let stats = sim.endpoint_ref(4).connection_stats(from_relay).unwrap();
    assert_eq!((stats.streams_verified, stats.verification_failures), (1, 0));
}

#[test]
fn a_relay_that_changes_a_byte_is_caught_by_the_receiver() {
    let (mut sim, world, conn) = chain(9, 1, 1, rough(), Config::default());
    world.borrow_mut().tamperer = Some(1);
    let msg = payload(100_000);
    sim.endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    assert!(run(&mut sim, &world, 60, |w| !w.corrupt.is_empty()));
    let w = world.borrow();
    let mut changed = msg.to_vec();
    changed[msg.len() - 1] ^= 1;
    assert_eq!(
        w.corrupt,
        vec![(
            2,
            Read::VerificationFailed {
                expected: Digest::of(&msg),
                actual: Digest::of(&changed)
            }
        )]
    );
    assert!(
        !w.received.contains_key(&2),
        "the changed message is not delivered"
    );
    let from_relay = ConnectionHandle::from_index(0);
    let stats = sim.endpoint_ref(2).connection_stats(from_relay).unwrap();
    assert_eq!((stats.streams_verified, stats.verification_failures), (0, 1));
}

#[test]
fn piping_from_past_the_start_does_not_pass_the_digest_on() {
    let (mut sim, world, conn) = chain(10, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().relays.clear();
    world.borrow_mut().idle = Some(1);
    let msg = payload(5000);
    let id = sim
        .endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    run(&mut sim, &world, 1, |_| false);
    // The relay reads a 100-byte header, then pipes the rest: the digest covers bytes the
    // receiver will not get, so it stays behind.
    let (down, up) = (ConnectionHandle::from_index(0), ConnectionHandle::from_index(1));
    let Ok(Read::Data { bytes, .. }) = sim.endpoint(1).read(up, id, 100) else {
        panic!("the message's first bytes")
    };
    assert_eq!(bytes, msg.slice(..100));
    sim.endpoint(1).pipe(up, id, &[down], LocalRead::Discard).unwrap();
    assert!(run(&mut sim, &world, 10, |w| w.received.contains_key(&2)));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg.slice(100..)]);
    let at = |node| {
        w.opened
            .iter()
            .filter(move |(n, _)| *n == node)
            .map(|(_, h)| h.clone())
    };
    assert_eq!(at(1).last().and_then(|h| h.digest), Some(Digest::of(&msg)));
    assert_eq!(
        at(2).collect::<Vec<_>>(),
        vec![StreamHeader::default().with_total_len(4900)]
    );
}

#[test]
fn a_relay_fans_out_to_three_receivers() {
    let (mut sim, world, conn) = chain(3, 1, 3, rough(), Config::default());
    let msg = payload(1 << 20);
    send(&mut sim, conn, &msg);
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
    for r in 2..5 {
        assert_eq!(world.borrow().received[&r], vec![msg.clone()], "receiver {r}");
    }
}

#[test]
fn a_relay_that_keeps_a_copy_reads_what_it_forwards() {
    let (mut sim, world, conn) = chain(4, 1, 1, rough(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    let msg = payload(1 << 20);
    sim.endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg.clone()]);
    assert_eq!(w.kept[&1], msg.len() as u64);
    // Both readers checked the digest: the relay reading piece by piece, the receiver whole.
    for (node, conn) in [
        (1, ConnectionHandle::from_index(1)),
        (2, ConnectionHandle::from_index(0)),
    ] {
        let stats = sim.endpoint_ref(node).connection_stats(conn).unwrap();
        assert_eq!(
            (stats.streams_verified, stats.verification_failures),
            (1, 0),
            "node {node}"
        );
    }
}

#[test]
fn a_relay_that_keeps_a_copy_but_does_not_read_holds_back_the_sender() {
    let (mut sim, world, conn) = chain(11, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    world.borrow_mut().idle = Some(1);
    let msg = payload(4 << 20);
    let id = send(&mut sim, conn, &msg);
    run(&mut sim, &world, 10, |_| false);
    // The relay's application reads nothing: what it keeps stays within the stream's
    // window, so the sender waits, however fast the receiver takes the bytes.
    let up = ConnectionHandle::from_index(1);
    let (unread, _) = sim.endpoint_ref(1).buffered(up).unwrap();
    let window = Config::default().stream_receive_window;
    assert!(
        unread <= window,
        "the relay holds {unread} unread bytes, window {window}"
    );
    let down = ConnectionHandle::from_index(0);
    assert_eq!(
        sim.endpoint(1).pipe(up, id, &[down], LocalRead::Discard),
        Err(ApiError::AlreadyPiped)
    );
    assert!(!world.borrow().received.contains_key(&2));
    // Once it reads, the rest flows.
    world.borrow_mut().idle = None;
    world.borrow_mut().read(&mut sim, 1, up, id);
    assert!(run(&mut sim, &world, 30, |w| w.received.contains_key(&2)));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg.clone()]);
    assert_eq!(w.kept[&1], msg.len() as u64);
}

/// The relay's stats while a message goes through: what it held never passes its cap.
fn watch(sim: &mut Sim, world: &RefCell<World>, secs: u64) -> PipeStats {
    let mut peak = PipeStats::default();
    let limit = sim.now() + Duration::from_secs(secs);
    sim.run_until(
        limit,
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| {
            if let Some(&(relay, pipe)) = world.borrow().pipes.first() {
                if let Some(s) = sim.endpoint_ref(relay).pipe_stats(pipe) {
                    peak.in_flight_peak = peak.in_flight_peak.max(s.in_flight_peak);
                    peak.waiting_peak = peak.waiting_peak.max(s.waiting_peak);
                    peak.bytes_forwarded = s.bytes_forwarded;
                }
            }
            let w = world.borrow();
            !w.finished.is_empty() || !w.failed.is_empty()
        },
    );
    peak
}

#[test]
fn a_slow_receiver_slows_the_sender_and_the_relay_holds_at_most_its_cap() {
    let cap = 256 << 10;
    let config = Config {
        pipe_buffer: cap,
        ..Config::default()
    };
    let fast = LinkConfig::default();
    let (mut sim, world, conn) = chain(5, 1, 1, fast, config);
    // The last hop runs at 1 Mbit/s: a tenth of what the first could carry.
    sim.link_one_way(
        1,
        2,
        LinkConfig {
            bandwidth: Some(1_000_000),
            ..fast
        },
    );
    let msg = payload(4 << 20);
    send(&mut sim, conn, &msg);
    let peak = watch(&mut sim, &world, 120);
    assert_eq!(world.borrow().received[&2], vec![msg]);
    println!(
        "relay peak: in flight {} bytes, waiting {} bytes",
        peak.in_flight_peak, peak.waiting_peak
    );
    assert!(peak.in_flight_peak <= cap, "{peak:?}");
    assert!(peak.waiting_peak <= DATAGRAM, "{peak:?}");
    let sender = sim.endpoint_ref(0).connection_stats(conn).unwrap();
    assert!(
        sender.stream_data_blocked > 0,
        "the sender waited on credit: {sender:?}"
    );
}

/// Three messages piped at once through a relay whose last hop is slow: the peak of the
/// bytes all pipes hold together (in flight plus waiting).
fn held_by_three_pipes(relay: Config) -> u64 {
    let fast = LinkConfig::default();
    // The receiver's windows are large: the relay's caps are what bound it.
    let receiver = Config {
        stream_receive_window: 1 << 20,
        ..Config::default()
    };
    let config = |n| if n == 1 { relay.clone() } else { receiver.clone() };
    let (mut sim, world, conn) = chain_configured(12, 1, 1, fast, &config);
    sim.link_one_way(
        1,
        2,
        LinkConfig {
            bandwidth: Some(1_000_000),
            ..fast
        },
    );
    let msgs: Vec<Bytes> = (0..3).map(|i| payload((1 << 20) + i)).collect();
    for m in &msgs {
        send(&mut sim, conn, m);
    }
    let mut peak = 0;
    sim.run_until(
        sim.now() + Duration::from_secs(120),
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| {
            let w = world.borrow();
            let held: u64 = w
                .pipes
                .iter()
                .filter_map(|&(relay, pipe)| sim.endpoint_ref(relay).pipe_stats(pipe))
                .map(|s| s.in_flight + s.waiting)
                .sum();
            peak = peak.max(held);
            w.finished.len() == 3
        },
    );
    let mut got = world.borrow().received[&2].clone();
    got.sort_by_key(Bytes::len);
    assert_eq!(got, msgs);
    peak
}

#[test]
fn pipes_together_hold_at_most_the_endpoint_wide_cap() {
    let window = 16 << 10;
    let total = 128 << 10;
    let config = Config {
        stream_receive_window: window,
        pipe_buffer_total: total,
        ..Config::default()
    };
    let unbounded = held_by_three_pipes(Config {
        pipe_buffer_total: u64::MAX,
        ..config.clone()
    });
    let held = held_by_three_pipes(config);
    println!("three pipes held at most {held} bytes together (cap {total}); {unbounded} without the cap");
    // Credit a stream had before it was piped (its initial window) is outside the cap.
    assert!(held <= total + 3 * window, "{held}");
    assert!(
        unbounded > total + 3 * window,
        "the cap is what bounds it: {unbounded}"
    );
}

/// A relay fanning out to two receivers, a 64 KiB stream under way through its pipe.
fn stream_under_way(seed: u64) -> (Sim, RefCell<World>, ConnectionHandle, StreamId) {
    let (mut sim, world, conn) = chain(seed, 1, 2, rough(), Config::default());
    let id = sim
        .endpoint(0)
        .open_stream(conn, StreamHeader::default())
        .unwrap();
    sim.endpoint(0).write(conn, id, payload(64 << 10)).unwrap();
    run(&mut sim, &world, 2, |w| !w.pipes.is_empty());
    (sim, world, conn, id)
}

#[test]
fn a_sender_that_aborts_resets_every_target() {
    let (mut sim, world, conn, id) = stream_under_way(6);
    sim.endpoint(0).reset_stream(conn, id, 77).unwrap();
    assert!(run(&mut sim, &world, 20, |w| w.resets.len() == 2));
    let w = world.borrow();
    assert_eq!(
        w.failed,
        vec![(w.pipes[0].1, PipeFailure::SourceReset { code: 77 })]
    );
    assert!(w.resets.iter().all(|&(_, code)| code == 77));
}

#[test]
fn a_target_that_dies_loses_its_branch_and_the_last_one_stops_the_sender() {
    let (mut sim, world, _, _) = stream_under_way(7);
    // The first receiver goes away: its branch is lost, the other goes on.
    let relay = ConnectionHandle::from_index(0);
    let now = sim.now();
    sim.endpoint(2).close(now, relay, 0, Default::default()).unwrap();
    assert!(run(&mut sim, &world, 20, |w| !w.targets_lost.is_empty()));
    assert!(world.borrow().failed.is_empty());
    // The second one too: no target left, the sender is told.
    let now = sim.now();
    sim.endpoint(3).close(now, relay, 0, Default::default()).unwrap();
    assert!(run(&mut sim, &world, 20, |w| !w.stopped.is_empty()));
    let w = world.borrow();
    assert_eq!(w.failed, vec![(w.pipes[0].1, PipeFailure::TargetsLost)]);
    assert_eq!(w.stopped, vec![(0, PIPE_BROKEN)]);
}

#[test]
fn piping_more_than_the_cap_already_held_is_refused() {
    let config = Config {
        pipe_buffer: 1000,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(8, 1, 1, LinkConfig::default(), config);
    // The relay does not pipe on its own here: the test asks once bytes wait.
    world.borrow_mut().relays.clear();
    world.borrow_mut().idle = Some(1);
    let id = sim
        .endpoint(0)
        .open_stream(conn, StreamHeader::default())
        .unwrap();
    sim.endpoint(0).write(conn, id, payload(5000)).unwrap();
    run(&mut sim, &world, 1, |_| false);
    // The relay connected downstream first: the upstream connection is its second.
    let down = ConnectionHandle::from_index(0);
    let up = ConnectionHandle::from_index(1);
    let err = sim
        .endpoint(1)
        .pipe(up, id, &[down], LocalRead::Discard)
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::BufferOverflow {
            buffered: 5000,
            limit: 1000
        }
    );
    assert_eq!(
        sim.endpoint(1)
            .pipe(up, id, &[up], LocalRead::Discard)
            .unwrap_err(),
        ApiError::NoTargets
    );
}

#[test]
fn the_relay_memory_table() {
    // The same table `cargo bench -p weir-sim --bench pipe` prints, here as assertions.
    let len = 10 << 20;
    let config = Config {
        congestion: CongestionAlgorithm::NewReno,
        ..Config::default()
    };
    let bound = config.pipe_buffer.min(config.max_stream_receive_window);
    let msg = payload(len);
    for arrival in [
        Arrival::InOrder,
        Arrival::RunsOfTenReversed,
        Arrival::RoundReversed,
    ] {
        let run = relay_message(&config, arrival, msg.clone());
        let p = run.peak;
        println!(
            "{arrival:?}: waiting peak {}, in-flight peak {}, out of order {}",
            p.waiting_peak, p.in_flight_peak, p.fragments_out_of_order
        );
        assert_eq!(run.received.as_ref(), Some(&msg), "{arrival:?}");
        // Waiting: at most one datagram's payload.
        assert!(p.waiting_peak <= DATAGRAM, "{arrival:?}: {p:?}");
        // In flight: within the pipe's cap and the downstream window, never the message.
        assert!(p.in_flight_peak <= bound, "{arrival:?}: {p:?}");
        assert_eq!(p.bytes_forwarded, len as u64);
        // Reordered arrivals are forwarded as they come, out of order.
        assert_eq!(
            p.fragments_out_of_order == 0,
            arrival == Arrival::InOrder,
            "{arrival:?}"
        );
    }
}

/// Issue 29, item 1: the relay acknowledges every byte long before its slow last hop has
/// them; the sender then closes its connection. The pipe's source stream had fully arrived,
/// so the relay finishes forwarding instead of failing (`SourceLost`) and cutting the
/// receiver off with most of the message.
#[test]
fn a_relay_finishes_forwarding_after_the_sender_closed() {
    for (seed, last_hop) in [
        // 2 MB/s with a router's queue.
        (
            31,
            LinkConfig {
                bandwidth: Some(16_000_000),
                queue_bytes: 64 << 10,
                ..LinkConfig::default()
            },
        ),
        // 2% loss and reordering.
        (
            32,
            LinkConfig {
                loss: 0.02,
                reorder: 0.05,
                jitter: Duration::from_millis(3),
                ..LinkConfig::default()
            },
        ),
    ] {
        let fast = LinkConfig {
            delay: Duration::from_micros(100),
            ..LinkConfig::default()
        };
        let (mut sim, world, conn) = chain(seed, 1, 1, fast, Config::default());
        sim.link(1, 2, last_hop);
        world.borrow_mut().sender_closes_when_acked = true;
        let msg = payload(4 << 20);
        send(&mut sim, conn, &msg);
        let ended = |w: &World| !w.finished.is_empty() || !w.failed.is_empty();
        assert!(run(&mut sim, &world, 120, ended), "seed {seed}");
        let w = world.borrow();
        assert!(w.sender_closed, "seed {seed}: the sender closed before the end");
        assert_eq!(w.failed, vec![], "seed {seed}");
        assert_eq!(w.received.get(&2).map(|m| m.len()), Some(1), "seed {seed}");
        assert!(w.received[&2][0] == msg, "seed {seed}");
        assert!(w.resets.is_empty(), "seed {seed}: {:?}", w.resets);
    }
}

/// A relay that takes a stream, closes the connection it came on, then pipes it: the
/// stream can get no more bytes, so the pipe fails at once (`SourceLost`) and its target is
/// reset (PIPE_BROKEN). Before, a connection kept for its unread bytes still counted as a
/// live source, and the pipe (and a receiver's read of it) waited for ever (found by the `piping`
/// fuzz target: fuzz/findings/piping.pipe-from-an-ended-connection).
#[test]
fn a_pipe_from_a_connection_that_ended_before_its_stream_did_fails() {
    let (mut sim, world, conn) = chain(33, 1, 1, LinkConfig::default(), Config::default());
    // The relay's application pipes by hand here: it takes the stream and waits.
    let down = world.borrow_mut().relays.remove(&1).unwrap();
    // Two streams, neither finished: the relay pipes the first; the second, never read,
    // keeps the connection once it ended (module `endpoint::retained`).
    for _ in 0..2 {
        let ep = sim.endpoint(0);
        let id = ep.open_stream(conn, StreamHeader::default()).unwrap();
        ep.write(conn, id, payload(4 << 10)).unwrap();
    }
    let source = RefCell::new(None);
    let mut relay_waits = |sim: &mut Sim, node, e| match e {
        Event::StreamOpened { conn, stream, .. } if node == 1 => {
            source.borrow_mut().get_or_insert((conn, stream));
        }
        _ if node == 1 => {}
        e => world.borrow_mut().on_event(sim, node, e),
    };
    let limit = sim.now() + Duration::from_secs(2);
    assert!(sim.run_until(limit, &mut relay_waits, |_| source.borrow().is_some()));
    let (from, stream) = source.borrow().unwrap();
    let now = sim.now();
    sim.endpoint(1).close(now, from, 0, Reason::default()).unwrap();
    // Until it ended (its closing period over): no longer counted, but kept.
    let limit = sim.now() + Duration::from_secs(30);
    assert!(sim.run_until(limit, &mut relay_waits, |sim| sim
        .endpoint_ref(1)
        .connection_count()
        == 1));
    assert!(
        sim.endpoint(1).connection_stats(from).is_some(),
        "ended, and kept for the bytes it holds unread"
    );
    let pipe = sim
        .endpoint(1)
        .pipe(from, stream, &down, LocalRead::Discard)
        .unwrap();
    world.borrow_mut().pipes.push((1, pipe));
    assert!(run(&mut sim, &world, 20, |w| !w.failed.is_empty()));
    let w = world.borrow();
    assert_eq!(w.failed, vec![(pipe, PipeFailure::SourceLost)]);
    // Its target stream is reset before it sent a byte: the receiver hears of none.
    assert!(w.received.is_empty() && w.resets.iter().all(|&(_, c)| c == PIPE_BROKEN));
}

/// A relay that keeps a copy (a fork) loses its only target before the stream arrived
/// whole: the pipe stops the stream (PIPE_BROKEN), and the relay's own reader is told, as
/// of a reset with that code. Before, it was told nothing: when the rest of the stream
/// arrived after the stop (and was dropped), and the sender saw it all acknowledged before
/// the stop reached it (so no reset came back), the reader waited for ever (found by the
/// `piping` fuzz target: fuzz/findings/piping.fork-reader-left-waiting).
#[test]
fn a_fork_that_loses_its_target_tells_its_own_reader() {
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut sim, world, conn) = chain(35, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    let down = world.borrow().relays[&1][0];
    // The stream's datagrams reach the relay one by one, 12 ms apart.
    let slow = LinkConfig {
        bandwidth: Some(1_000_000),
        ..LinkConfig::default()
    };
    sim.link(0, 1, slow);
    // The relay's first datagram after the pipe failed, the one with its STOP_SENDING, is
    // lost: the acknowledgements of the rest reach the sender before the stop does.
    let lose_next = Rc::new(Cell::new(false));
    let lose = Rc::clone(&lose_next);
    sim.intercept(1, 0, move |_| !lose.replace(false));
    send(&mut sim, conn, &payload(4 << 10));
    let limit = sim.now() + Duration::from_secs(5);
    sim.run_until(
        limit,
        |sim, node, e| {
            let opened = node == 1 && matches!(e, Event::StreamOpened { .. });
            world.borrow_mut().on_event(sim, node, e);
            if opened {
                let now = sim.now();
                sim.endpoint(1).close(now, down, 0, Reason::default()).unwrap();
                lose_next.set(true);
            }
        },
        |_| false,
    );
    let w = world.borrow();
    assert!(
        matches!(w.failed[..], [(_, PipeFailure::TargetsLost)]),
        "{:?}",
        w.failed
    );
    assert!(w.kept[&1] < 4 << 10, "the stop came before the stream's end");
    assert!(
        w.stopped.is_empty(),
        "the sender saw every byte acknowledged first: no reset"
    );
    assert_eq!(w.resets, vec![(1, PIPE_BROKEN)], "the relay's reader is told");
}

/// A pipe's only target ends by a stateless reset (its receiver restarted and forgot the
/// connection): the pipe fails in the same call, not at the relay's next timer or
/// datagram, which an endpoint with nothing else under way may never have. Before, the
/// reset ended the connection without giving the pipes their turn, and the pipe waited
/// for the next one: 920 ms here, and for ever in `fuzz/findings/piping.pipe-target-reset`,
/// where the relay had no connection left.
#[test]
fn a_pipe_whose_target_is_reset_fails_at_once() {
    use weir_core::{Endpoint, Identity, Seed};
    let config = |n: NodeId| Config {
        identity: Some(Identity::from_seed(&Seed::from(100 + n as u64))),
        ..Config::default()
    };
    let (mut sim, world, conn) = chain_configured(36, 1, 1, LinkConfig::default(), &config);
    // The whole stream reaches the relay at once, and goes on to the receiver slowly: it
    // is still going there when the receiver restarts, and the sender has nothing more to
    // send (the relay hears nothing from it).
    sim.link(
        1,
        2,
        LinkConfig {
            bandwidth: Some(1_000_000),
            ..LinkConfig::default()
        },
    );
    send(&mut sim, conn, &payload(32 << 10));
    assert!(run(&mut sim, &world, 2, |w| !w.pipes.is_empty()));
    sim.run_for(Duration::from_millis(100), |sim, node, e| {
        world.borrow_mut().on_event(sim, node, e)
    });
    // It restarts: same identity, no state.
    *sim.endpoint(2) = Endpoint::new(config(2), 99);
    let (reset_at, failed_at) = (RefCell::new(None), RefCell::new(None));
    let limit = sim.now() + Duration::from_secs(60);
    sim.run_until(
        limit,
        |sim, node, e| {
            match &e {
                Event::Closed {
                    reason: weir_core::CloseReason::Reset,
                    ..
                } if node == 1 => {
                    reset_at.borrow_mut().get_or_insert(sim.now());
                }
                Event::PipeFailed { .. } => {
                    failed_at.borrow_mut().get_or_insert(sim.now());
                }
                _ => {}
            }
            world.borrow_mut().on_event(sim, node, e);
        },
        |_| failed_at.borrow().is_some(),
    );
    assert_eq!(
        world.borrow().failed,
        vec![(world.borrow().pipes[0].1, PipeFailure::TargetsLost)]
    );
    let reset_at = reset_at
        .into_inner()
        .expect("the relay's connection to it was reset");
    assert_eq!(
        failed_at.into_inner(),
        Some(reset_at),
        "the pipe failed with the reset"
    );
}
