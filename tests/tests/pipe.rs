//! Piping in weir-sim: relays forward a stream fragment by fragment to one or more next
//! hops, under loss, reordering and duplication, with end-to-end backpressure and failure
//! propagation (issue 5; spec §8.8).

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::StreamId;
use weir_core::{
    ApiError, Config, ConnectionHandle, Event, LocalRead, PipeFailure, PipeId, PipeStats, Read, PIPE_BROKEN,
};
use weir_sim::{LinkConfig, NodeId, Sim};

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
}

impl World {
    fn on_event(&mut self, sim: &mut Sim, node: NodeId, e: Event) {
        match e {
            Event::StreamOpened { conn, stream, .. } => {
                if let Some(down) = self.relays.get(&node) {
                    if !down.contains(&conn) {
                        let pipe = sim.endpoint(node).pipe(conn, stream, down, self.local).unwrap();
                        self.pipes.push((node, pipe));
                    }
                }
            }
            Event::StreamReadable { conn, stream } => self.read(sim, node, conn, stream),
            Event::StreamReset { code, .. } => self.resets.push((node, code)),
            Event::StreamStopped { code, .. } => self.stopped.push((node, code)),
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
        if self.relays.contains_key(&node) {
            // A Keep relay reads what it forwards.
            while let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read(conn, stream, usize::MAX) {
                *self.kept.entry(node).or_default() += bytes.len() as u64;
            }
            return;
        }
        if let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 30) {
            self.received.entry(node).or_default().push(bytes);
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
    let mut sim = Sim::new(seed);
    let nodes: Vec<NodeId> = (0..1 + relays + receivers)
        .map(|_| sim.add_node(config.clone()))
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

#[test]
fn a_chain_of_three_relays_delivers_every_byte() {
    let (mut sim, world, conn) = chain(2, 3, 1, rough(), Config::default());
    let msg = payload(2 << 20);
    send(&mut sim, conn, &msg);
    assert!(run(&mut sim, &world, 120, |w| w.finished.len() == 3));
    assert_eq!(world.borrow().received[&4], vec![msg]);
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
    send(&mut sim, conn, &msg);
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
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
    assert!(peak.waiting_peak <= 1200, "{peak:?}");
    let sender = sim.endpoint_ref(0).connection_stats(conn).unwrap();
    assert!(
        sender.stream_data_blocked > 0,
        "the sender waited on credit: {sender:?}"
    );
}

#[test]
fn a_sender_that_aborts_resets_every_target() {
    let (mut sim, world, conn) = chain(6, 1, 2, rough(), Config::default());
    let id = sim.endpoint(0).open_stream(conn, None, None).unwrap();
    sim.endpoint(0).write(conn, id, payload(64 << 10)).unwrap();
    run(&mut sim, &world, 2, |w| !w.pipes.is_empty());
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
    let (mut sim, world, conn) = chain(7, 1, 2, rough(), Config::default());
    let id = sim.endpoint(0).open_stream(conn, None, None).unwrap();
    sim.endpoint(0).write(conn, id, payload(64 << 10)).unwrap();
    run(&mut sim, &world, 2, |w| !w.pipes.is_empty());
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
    let id = sim.endpoint(0).open_stream(conn, None, None).unwrap();
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

/// How a relay's inbound datagrams are ordered in the memory table.
#[derive(Clone, Copy, Debug)]
enum Order {
    Sequential,
    /// Each run of ten datagrams reversed.
    ChunksOfTen,
    /// Each flight (what the sender sent in one round) reversed.
    Reverse,
}

/// Sender, relay and receiver driven by hand in rounds of 5 ms one way: every datagram the
/// sender sends in a round reaches the relay together, in `order`. Returns the relay's pipe
/// stats at their peaks once the receiver has the whole message.
fn memory_table_row(order: Order, len: usize) -> PipeStats {
    use std::net::SocketAddr;
    let config = Config {
        congestion: weir_core::congestion::CongestionControl::NewReno,
        ..Config::default()
    };
    let addrs: Vec<SocketAddr> = (1..=3)
        .map(|i| format!("10.0.0.{i}:1").parse().unwrap())
        .collect();
    let mut eps: Vec<weir_core::Endpoint> = (0..3)
        .map(|i| weir_core::Endpoint::new(config.clone(), i))
        .collect();
    let mut now = Instant::ZERO;
    let up = eps[0].connect(now, addrs[1]).unwrap();
    let down = eps[1].connect(now, addrs[2]).unwrap();
    let msg = payload(len);
    let mut buf = vec![0u8; 65_536];
    let mut pipe = None;
    let mut sent = false;
    let mut received = None;
    let mut peak = PipeStats::default();
    for _round in 0..200_000 {
        // Everything each endpoint sends this round, by destination node.
        let mut flights: Vec<Vec<(SocketAddr, Bytes)>> = vec![Vec::new(); 3];
        for (i, ep) in eps.iter_mut().enumerate() {
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                let to = addrs.iter().position(|a| *a == t.destination).unwrap();
                flights[to].push((addrs[i], Bytes::copy_from_slice(&buf[..t.len])));
            }
        }
        now += Duration::from_millis(5);
        for (to, mut flight) in flights.into_iter().enumerate() {
            if to == 1 {
                match order {
                    Order::Sequential => {}
                    Order::ChunksOfTen => flight.chunks_mut(10).for_each(|c| c.reverse()),
                    Order::Reverse => flight.reverse(),
                }
            }
            for (from, d) in flight {
                eps[to].handle_datagram(now, from, d);
            }
        }
        for ep in eps.iter_mut() {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        for i in 0..3 {
            while let Some(e) = eps[i].poll_event() {
                match e {
                    Event::StreamOpened { conn, stream, .. } if i == 1 => {
                        pipe = Some(eps[1].pipe(conn, stream, &[down], LocalRead::Discard).unwrap());
                    }
                    Event::StreamReadable { conn, stream } if i == 2 => {
                        if let Ok(Read::Data { bytes, .. }) = eps[2].read_message(conn, stream, 1 << 30) {
                            received = Some(bytes);
                        }
                    }
                    _ => {}
                }
            }
        }
        if !sent && eps[0].is_established(up) && eps[1].is_established(down) {
            eps[0].send_message(up, None, msg.clone()).unwrap();
            sent = true;
        }
        if let Some(s) = pipe.and_then(|p| eps[1].pipe_stats(p)) {
            peak.waiting_peak = peak.waiting_peak.max(s.waiting_peak);
            peak.in_flight_peak = peak.in_flight_peak.max(s.in_flight_peak);
            peak.fragments_out_of_order = s.fragments_out_of_order;
            peak.bytes_forwarded = s.bytes_forwarded;
        }
        if received.is_some() {
            break;
        }
    }
    assert_eq!(received, Some(msg), "{order:?}");
    peak
}

#[test]
fn the_relay_memory_table() {
    let len = 10 << 20;
    let config = Config::default();
    let bound = config.pipe_buffer.min(config.max_stream_receive_window);
    println!(
        "| arrival at the relay | waiting peak | in-flight peak | out of order | Freenet (bytes_buffered) |"
    );
    println!("|---|---|---|---|---|");
    for (order, freenet) in [
        (Order::Sequential, "0"),
        (Order::ChunksOfTen, "12 KB"),
        (Order::Reverse, "10 MB"),
    ] {
        let p = memory_table_row(order, len);
        println!(
            "| {order:?} | {} | {} | {} | {freenet} |",
            p.waiting_peak, p.in_flight_peak, p.fragments_out_of_order
        );
        // Waiting: at most one datagram's payload.
        assert!(p.waiting_peak <= 1200, "{order:?}: {p:?}");
        // In flight: within the pipe's cap and the downstream window, never the message.
        assert!(p.in_flight_peak <= bound, "{order:?}: {p:?}");
        assert_eq!(p.bytes_forwarded, len as u64);
    }
}
