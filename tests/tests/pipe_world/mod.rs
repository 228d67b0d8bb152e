//! The world the piping suites (`pipe.rs`, `pipe_ends.rs`) share: a chain of a sender,
//! relays and receivers in weir-sim, and what each node's application does with its events.

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Reason, StreamId};
use weir_core::{
    Config, ConnectionHandle, Delivery, Event, LocalRead, PipeFailure, PipeId, Read, StreamHeader,
};
use weir_sim::{LinkConfig, NodeId, Sim};

/// The largest datagram, which path MTU discovery reaches on these clean links: a bound on
/// the payload of one.
pub const DATAGRAM: u64 = weir_core::DEFAULT_MAX_DATAGRAM_SIZE as u64;

/// A rough hop: 1% loss, 1% duplication, 5% reordering, jitter.
pub fn rough() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        loss: 0.01,
        duplicate: 0.01,
        reorder: 0.05,
        ..LinkConfig::default()
    }
}

pub fn payload(len: usize) -> Bytes {
    weir_sim::xorshift_bytes(0x2545_f491_4f6c_dd1d, len)
}

/// A relay node's view: its upstream connections are the ones it did not start.
#[derive(Default)]
pub struct World {
    /// Per relay node: downstream connections it pipes to.
    pub relays: BTreeMap<NodeId, Vec<ConnectionHandle>>,
    /// Pipes started, by relay node.
    pub pipes: Vec<(NodeId, PipeId)>,
    /// Whole messages received, by receiver node.
    pub received: BTreeMap<NodeId, Vec<Bytes>>,
    /// Pipe outcomes.
    pub finished: Vec<PipeId>,
    pub failed: Vec<(PipeId, PipeFailure)>,
    pub targets_lost: Vec<(PipeId, ConnectionHandle)>,
    /// Stream resets seen by receivers.
    pub resets: Vec<(NodeId, u64)>,
    pub stopped: Vec<(NodeId, u64)>,
    /// The final receivers' word on the streams, as their senders were told.
    pub verdicts: Vec<(NodeId, Delivery)>,
    pub local: LocalRead,
    /// Bytes a Keep relay read for itself.
    pub kept: BTreeMap<NodeId, u64>,
    /// A node whose application reads nothing.
    pub idle: Option<NodeId>,
    /// Stream headers receivers saw.
    pub opened: Vec<(NodeId, StreamHeader)>,
    /// Whole-message reads that failed their digest check.
    pub corrupt: Vec<(NodeId, Read)>,
    /// A receiver that closes its connection as soon as it has a whole message.
    pub closer: Option<NodeId>,
    /// The sender closes its connection as soon as the next hop acknowledged its message.
    pub sender_closes_when_acked: bool,
    /// It did, while the pipe was still going.
    pub sender_closed: bool,
    /// A receiver whose application refuses every stream as it opens: it stops it with
    /// this code.
    pub refuser: Option<(NodeId, u64)>,
    /// A buggy relay: instead of piping, it reads each message whole and sends it on with
    /// the same header (digest included) and its last byte changed.
    pub tamperer: Option<NodeId>,
}

impl World {
    pub fn on_event(&mut self, sim: &mut Sim, node: NodeId, e: Event) {
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
                if let Some((_, code)) = self.refuser.filter(|(n, _)| *n == node) {
                    sim.endpoint(node).stop_sending(conn, stream, code).unwrap();
                }
                self.opened.push((node, header));
            }
            Event::StreamReadable { conn, stream } => self.read(sim, node, conn, stream),
            Event::StreamReset { code, .. } => self.resets.push((node, code)),
            Event::StreamStopped { code, .. } => self.stopped.push((node, code)),
            Event::StreamDelivery { delivery, .. } => self.verdicts.push((node, delivery)),
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

    pub fn read(&mut self, sim: &mut Sim, node: NodeId, conn: ConnectionHandle, stream: StreamId) {
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
pub fn chain(
    seed: u64,
    relays: usize,
    receivers: usize,
    link: LinkConfig,
    config: Config,
) -> (Sim, RefCell<World>, ConnectionHandle) {
    chain_configured(seed, relays, receivers, link, &|_| config.clone())
}

/// [`chain`] with each node's own configuration.
pub fn chain_configured(
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

pub fn run(sim: &mut Sim, world: &RefCell<World>, secs: u64, done: impl Fn(&World) -> bool) -> bool {
    let limit = sim.now() + Duration::from_secs(secs);
    sim.run_until(
        limit,
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |_| done(&world.borrow()),
    )
}

pub fn send(sim: &mut Sim, conn: ConnectionHandle, msg: &Bytes) -> StreamId {
    sim.endpoint(0).send_message(conn, None, msg.clone()).unwrap()
}
