//! End-to-end delivery (issue 29; spec §4.17 and §8, Delivery): the final receiver's
//! receipt reaches the sender through any relays; a relay that cannot deliver what it took
//! says so, and where; a receiver that refuses what arrived says so; and a receiver that
//! closes as soon as it read everything does not leave its sender without the word, however
//! lossy the way back.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::Capabilities;
use weir_core::wire::{Reason, StreamId};
use weir_core::{
    ApiError, CloseReason, Config, ConnectionHandle, Delivery, Digest, Event, LocalRead, Read, StreamHeader,
    PIPE_BROKEN, VERIFICATION_FAILED,
};
use weir_sim::{LinkConfig, NodeId, Sim};

fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// What the nodes saw.
#[derive(Default)]
struct World {
    /// Per relay node: the connection it forwards to.
    relays: BTreeMap<NodeId, ConnectionHandle>,
    /// Whole messages read, by node.
    received: BTreeMap<NodeId, Vec<Bytes>>,
    /// The sender's events about its stream, in order.
    acked: Vec<StreamId>,
    delivery: Vec<(StreamId, Delivery)>,
    /// Close reasons, by node.
    closed: Vec<(NodeId, CloseReason)>,
    /// The final receiver closes its connection as soon as it read a message.
    closer: Option<NodeId>,
    /// A node that reads nothing.
    idle: Option<NodeId>,
    /// A node that stops (with this code) each stream as soon as it opens, and the flag
    /// it raises when it did.
    stopper: Option<(NodeId, u64)>,
    stopped: Rc<Cell<bool>>,
    /// A node that defers the delivery of each stream as soon as it opens.
    deferrer: Option<NodeId>,
}

impl World {
    fn on_event(&mut self, sim: &mut Sim, node: NodeId, e: Event) {
        match e {
            Event::StreamOpened { conn, stream, .. } => {
                if self.deferrer == Some(node) {
                    sim.endpoint(node).defer_delivery(conn, stream).unwrap();
                }
                if let Some((stopper, code)) = self.stopper {
                    if stopper == node {
                        sim.endpoint(node).stop_sending(conn, stream, code).unwrap();
                        self.stopped.set(true);
                    }
                }
                if let Some(&down) = self.relays.get(&node) {
                    if down != conn {
                        sim.endpoint(node)
                            .pipe(conn, stream, &[down], LocalRead::Discard)
                            .unwrap();
                    }
                }
            }
            Event::StreamReadable { conn, stream } if self.idle != Some(node) => {
                if self.relays.contains_key(&node) {
                    return;
                }
                if let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 30) {
                    self.received.entry(node).or_default().push(bytes);
                    if self.closer == Some(node) {
                        let now = sim.now();
                        sim.endpoint(node).close(now, conn, 0, Reason::default()).unwrap();
                    }
                }
            }
            Event::StreamAcked { stream, .. } if node == 0 => self.acked.push(stream),
            Event::StreamDelivery { stream, delivery, .. } if node == 0 => {
                self.delivery.push((stream, delivery))
            }
            Event::Closed { reason, .. } => self.closed.push((node, reason)),
            _ => {}
        }
    }
}

/// Node 0 sends, nodes 1..=relays forward, the last node receives; `link(i)` joins node i
/// and node i + 1. Every connection is established.
fn chain(
    seed: u64,
    relays: usize,
    config: Config,
    link: impl Fn(usize) -> LinkConfig,
) -> (Sim, RefCell<World>, ConnectionHandle) {
    let mut sim = Sim::new(seed);
    for _ in 0..relays + 2 {
        sim.add_node(config.clone());
    }
    let mut world = World::default();
    for i in 0..=relays {
        sim.link(i, i + 1, link(i));
    }
    let first = sim.connect(0, 1);
    for i in 1..=relays {
        let down = sim.connect(i, i + 1);
        world.relays.insert(i, down);
    }
    let world = RefCell::new(world);
    let n = relays + 2;
    let up = sim.run_until(
        Instant::ZERO + Duration::from_secs(10),
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| {
            (0..n).all(|node| {
                (0..2).all(|i| {
                    let h = ConnectionHandle::from_index(i);
                    sim.endpoint_ref(node).connection_stats(h).is_none()
                        || sim.endpoint_ref(node).is_established(h)
                })
            })
        },
    );
    assert!(up, "every connection established");
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

fn clean(_: usize) -> LinkConfig {
    LinkConfig::default()
}

#[test]
fn the_final_receiver_s_receipt_reaches_the_sender_through_any_relays() {
    for relays in [0, 1, 3] {
        let (mut sim, world, conn) = chain(1, relays, Config::default(), clean);
        let msg = payload(300_000);
        let id = sim
            .endpoint(0)
            .send_verified_message(conn, None, msg.clone())
            .unwrap();
        assert!(
            run(&mut sim, &world, 30, |w| !w.delivery.is_empty()),
            "{relays} relays"
        );
        let w = world.borrow();
        assert_eq!(w.received[&(relays + 1)], vec![msg], "{relays} relays");
        assert_eq!(w.acked, vec![id]);
        assert_eq!(
            w.delivery,
            vec![(
                id,
                Delivery::Delivered {
                    relays: relays as u64
                }
            )],
            "{relays} relays"
        );
    }
}

/// A receipt is owed for every stream: a thousand messages, each answered once.
#[test]
fn every_message_gets_one_receipt() {
    let (mut sim, world, conn) = chain(2, 0, Config::default(), |_| LinkConfig {
        loss: 0.05,
        reorder: 0.05,
        ..LinkConfig::default()
    });
    let mut sent = Vec::new();
    let mut next = 0;
    while sent.len() < 1000 {
        match sim
            .endpoint(0)
            .send_message(conn, None, payload(100 + next % 900))
        {
            Ok(id) => {
                sent.push(id);
                next += 1;
            }
            Err(_) => {
                run(&mut sim, &world, 1, |_| false);
            }
        }
    }
    assert!(run(&mut sim, &world, 120, |w| w.delivery.len() == 1000));
    let w = world.borrow();
    let mut got: Vec<StreamId> = w.delivery.iter().map(|(id, _)| *id).collect();
    got.sort();
    assert_eq!(got, sent);
    assert!(w
        .delivery
        .iter()
        .all(|(_, d)| *d == Delivery::Delivered { relays: 0 }));
}

/// The receipts of the datagrams tapped from node 1 to node 0 (version 1: readable on the
/// path), per packet: RECEIPT frames, RECEIPT_RUN frames, and the streams the runs answer for.
fn receipts_tapped(sim: &mut Sim) -> Vec<(usize, usize, u64)> {
    use weir_core::wire::{Frame, Packet};
    sim.take_tapped(1, 0)
        .into_iter()
        .filter_map(|d| Packet::decode(d, None).ok())
        .map(|p| {
            p.frames().fold((0, 0, 0), |(one, runs, in_runs), f| match f {
                Frame::Receipt { .. } => (one + 1, runs, in_runs),
                Frame::ReceiptRun(run) => (one, runs + 1, in_runs + run.streams()),
                _ => (one, runs, in_runs),
            })
        })
        .collect()
}

/// Sends `n` messages of 100 bytes from node 0, as fast as the stream count allows.
fn send_many(sim: &mut Sim, world: &RefCell<World>, conn: ConnectionHandle, n: usize) -> Vec<StreamId> {
    let mut sent = Vec::new();
    while sent.len() < n {
        match sim.endpoint(0).send_message(conn, None, payload(100)) {
            Ok(id) => sent.push(id),
            Err(_) => {
                run(sim, world, 1, |_| false);
            }
        }
    }
    sent
}

/// Spec §4.17: receipts go as RECEIPT_RUN sets where both sides read them, and as
/// RECEIPTs where one side does not offer RECEIPT_RUNS; either way every message gets its
/// one receipt, delivered.
#[test]
fn receipts_go_in_runs_where_both_sides_read_them() {
    for runs in [true, false] {
        let config = Config {
            versions: weir_core::wire::VersionRange::UNPROTECTED,
            capabilities: match runs {
                true => Capabilities::ALL,
                false => Capabilities::ALL.without(Capabilities::RECEIPT_RUNS),
            },
            ..Config::default()
        };
        let (mut sim, world, conn) = chain(11, 0, config, clean);
        sim.tap(1, 0);
        let sent = send_many(&mut sim, &world, conn, 2000);
        assert!(run(&mut sim, &world, 60, |w| w.delivery.len() == 2000));
        let w = world.borrow();
        let mut got: Vec<StreamId> = w.delivery.iter().map(|(id, _)| *id).collect();
        got.sort();
        assert_eq!(got, sent, "runs {runs}");
        assert!(w
            .delivery
            .iter()
            .all(|(_, d)| *d == Delivery::Delivered { relays: 0 }));
        let tapped = receipts_tapped(&mut sim);
        let one: usize = tapped.iter().map(|t| t.0).sum();
        let frames: usize = tapped.iter().map(|t| t.0 + t.1).sum();
        let in_runs: u64 = tapped.iter().map(|t| t.2).sum();
        println!("runs {runs}: {frames} receipt frames for 2000 messages, {in_runs} streams in runs");
        if runs {
            assert_eq!(
                in_runs + one as u64,
                2000,
                "each receipt once, the link being clean"
            );
            assert!(frames * 5 < 2000, "{frames} frames");
        } else {
            assert_eq!((one, in_runs), (2000, 0));
        }
    }
}

/// Spec §4.17: a packet's RECEIPT_RUNs answer for 512 streams at most together. A receiver
/// that reads a thousand messages at once owes a thousand receipts in a row: the first
/// packet's runs stop at 512, what fits after them goes as RECEIPTs, and the rest follows.
#[test]
fn a_packet_s_runs_answer_for_at_most_512_streams() {
    let config = Config {
        versions: weir_core::wire::VersionRange::UNPROTECTED,
        initial_concurrent_streams: 2048,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(12, 0, config, clean);
    world.borrow_mut().idle = Some(1);
    let sent = send_many(&mut sim, &world, conn, 1000);
    assert!(run(&mut sim, &world, 20, |w| w.acked.len() == 1000));
    sim.tap(1, 0);
    let at_1 = ConnectionHandle::from_index(0);
    for &id in &sent {
        let read = sim.endpoint(1).read_message(at_1, id, 1 << 20);
        assert!(matches!(read, Ok(Read::Data { .. })), "{read:?}");
    }
    assert!(run(&mut sim, &world, 20, |w| w.delivery.len() == 1000));
    let tapped = receipts_tapped(&mut sim);
    let first = tapped.iter().find(|t| t.0 + t.1 > 0).copied();
    let (one, _, in_runs) = first.unwrap();
    assert_eq!(in_runs, 512, "{tapped:?}");
    assert!(one > 0, "RECEIPTs fill the rest of the packet: {tapped:?}");
    assert!(tapped.iter().all(|t| t.2 <= 512), "{tapped:?}");
    let all: u64 = tapped.iter().map(|t| t.0 as u64 + t.2).sum();
    assert_eq!(all, 1000);
}

/// Issue 29, item 1, the rest of it: the relay took every byte (the sender saw them all
/// acknowledged) and then lost its next hop. The sender is told it was not delivered, and
/// by whom, instead of having counted the acknowledgement as success.
#[test]
fn a_relay_that_loses_its_next_hop_after_taking_everything_says_so() {
    let config = Config {
        idle_timeout: Duration::from_secs(3),
        keep_alive: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    // The last hop is slow, so the relay holds most of the message when it goes.
    let (mut sim, world, conn) = chain(3, 1, config, |i| match i {
        0 => LinkConfig::default(),
        _ => LinkConfig {
            bandwidth: Some(8_000_000),
            ..LinkConfig::default()
        },
    });
    let msg = payload(2 << 20);
    let id = sim.endpoint(0).send_message(conn, None, msg).unwrap();
    assert!(run(&mut sim, &world, 30, |w| !w.acked.is_empty()));
    let now = sim.now();
    sim.partition(1, 2, now, Instant::MAX);
    assert!(run(&mut sim, &world, 30, |w| !w.delivery.is_empty()));
    let w = world.borrow();
    assert!(!w.received.contains_key(&2));
    assert_eq!(
        w.delivery,
        vec![(
            id,
            Delivery::Failed {
                code: PIPE_BROKEN,
                relays: 0
            }
        )]
    );
    assert!(
        !w.closed.iter().any(|(n, _)| *n == 0),
        "the sender's connection goes on"
    );
}

/// Every byte arrived and the receiver's application refused them: the sender, which saw
/// them acknowledged, learns it from the receipt, whatever the code; 0 too (the adapters
/// stop with 0 a stream the application dropped unread), which once read as delivered.
#[test]
fn a_receiver_that_refuses_what_arrived_says_so() {
    for code in [42, 0] {
        let (mut sim, world, conn) = chain(4, 0, Config::default(), clean);
        world.borrow_mut().idle = Some(1);
        let id = sim.endpoint(0).send_message(conn, None, payload(10_000)).unwrap();
        assert!(run(&mut sim, &world, 10, |w| !w.acked.is_empty()));
        let up = ConnectionHandle::from_index(0);
        sim.endpoint(1).stop_sending(up, id, code).unwrap();
        assert!(run(&mut sim, &world, 10, |w| !w.delivery.is_empty()));
        assert_eq!(
            world.borrow().delivery,
            vec![(id, Delivery::Failed { code, relays: 0 })]
        );
    }
}

/// The bytes do not match the digest the sender attached (here, a wrong one: in the field,
/// a faulty relay or a corrupted disk): the final receiver reads them all and says they
/// were not delivered, VERIFICATION_FAILED, through any relays.
#[test]
fn a_digest_mismatch_at_the_final_receiver_reaches_the_sender() {
    for relays in [0, 1] {
        let (mut sim, world, conn) = chain(8, relays, Config::default(), clean);
        let header = StreamHeader::default().with_digest(Digest::of(b"other bytes"));
        let ep = sim.endpoint(0);
        let id = ep.open_stream(conn, header).unwrap();
        assert_eq!(ep.write(conn, id, payload(50_000)), Ok(50_000));
        ep.finish(conn, id).unwrap();
        assert!(run(&mut sim, &world, 20, |w| !w.delivery.is_empty()));
        let w = world.borrow();
        assert!(!w.received.contains_key(&(relays + 1)), "no message handed out");
        assert_eq!(
            w.delivery,
            vec![(
                id,
                Delivery::Failed {
                    code: VERIFICATION_FAILED,
                    relays: relays as u64
                }
            )],
            "{relays} relays"
        );
    }
}

/// A refusal with code 0 after every byte arrived reaches the sender as a failure by the
/// receipt alone: every STOP_SENDING is cut out on the way (version 1, so the path can
/// rewrite packets). When the outcome was in the code, 0 read as delivered.
#[test]
fn a_refusal_with_code_0_is_not_read_as_delivered() {
    let config = Config {
        versions: weir_core::wire::VersionRange::UNPROTECTED,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(10, 0, config, clean);
    world.borrow_mut().idle = Some(1);
    let id = sim.endpoint(0).send_message(conn, None, payload(10_000)).unwrap();
    assert!(run(&mut sim, &world, 10, |w| !w.acked.is_empty()));
    let stops = Rc::new(Cell::new(0));
    let seen = stops.clone();
    // Every STOP_SENDING is cut out of the packet that carries it (and the packet written
    // again), so whatever else rode with it, the receipt, goes on alone.
    sim.intercept(1, 0, move |d| {
        use weir_core::wire::{encode_packet, Frame, Packet};
        let Ok(p) = Packet::decode(Bytes::copy_from_slice(d), None) else {
            return true;
        };
        let kept: Vec<Frame> = p
            .frames()
            .filter(|f| !matches!(f, Frame::StopSending { .. }))
            .collect();
        if kept.len() < p.frames().count() {
            seen.set(seen.get() + 1);
            let mut buf = vec![0u8; 1500];
            let len = encode_packet(&p.header, &kept, &mut buf).unwrap();
            d.clear();
            d.extend_from_slice(&buf[..len]);
        }
        true
    });
    let up = ConnectionHandle::from_index(0);
    sim.endpoint(1).stop_sending(up, id, 0).unwrap();
    assert!(run(&mut sim, &world, 10, |w| !w.delivery.is_empty()));
    assert!(stops.get() > 0, "the STOP_SENDING was on its way");
    assert_eq!(
        world.borrow().delivery,
        vec![(id, Delivery::Failed { code: 0, relays: 0 })]
    );
}

/// The receiver refuses a stream before all of it arrived, and its STOP_SENDING is lost
/// while the acknowledgements of the rest get through: the sender saw every byte
/// acknowledged, and learns of the refusal when the STOP_SENDING comes again (found by the
/// CLI's `an_existing_file_is_replaced_only_with_force`, which failed one run in many).
#[test]
fn a_refusal_that_comes_after_every_byte_was_acknowledged_still_counts() {
    let (mut sim, world, conn) = chain(5, 0, Config::default(), clean);
    world.borrow_mut().stopper = Some((1, 2));
    let stopped = world.borrow().stopped.clone();
    let swallowed = Rc::new(Cell::new(false));
    let once = swallowed.clone();
    sim.intercept(1, 0, move |_| {
        if stopped.get() && !once.get() {
            once.set(true);
            return false;
        }
        true
    });
    // One first flight's worth, so that every byte is acknowledged before the STOP_SENDING
    // is sent again (a larger message made that a matter of timing).
    let id = sim.endpoint(0).send_message(conn, None, payload(12_000)).unwrap();
    assert!(run(&mut sim, &world, 20, |w| !w.delivery.is_empty()));
    assert!(swallowed.get(), "the datagram with the STOP_SENDING was lost");
    let w = world.borrow();
    assert_eq!(w.acked, vec![id], "every byte was acknowledged first");
    assert_eq!(w.delivery, vec![(id, Delivery::Failed { code: 2, relays: 0 })]);
}

/// A receiver that keeps what it reads somewhere first defers the delivery: reading the
/// end tells the sender nothing, its confirmation tells it delivered, its stop (with any
/// code) not delivered; a confirmation out of turn is refused.
#[test]
fn a_deferred_delivery_is_the_receiver_s_word() {
    for refusal in [None, Some(0), Some(7)] {
        let (mut sim, world, conn) = chain(6, 0, Config::default(), clean);
        world.borrow_mut().deferrer = Some(1);
        let msg = payload(30_000);
        let id = sim.endpoint(0).send_message(conn, None, msg.clone()).unwrap();
        let up = ConnectionHandle::from_index(0);
        assert!(run(&mut sim, &world, 10, |w| w.received.contains_key(&1)));
        assert_eq!(world.borrow().received[&1], vec![msg]);
        // Read to the end: the sender waits for the word, and keeps its connection.
        assert!(!run(&mut sim, &world, 20, |w| !w.delivery.is_empty()));
        assert!(world.borrow().closed.is_empty());
        let word = match refusal {
            None => sim.endpoint(1).confirm_delivery(up, id),
            Some(code) => sim.endpoint(1).stop_sending(up, id, code),
        };
        assert_eq!(word, Ok(()));
        assert_eq!(
            sim.endpoint(1).confirm_delivery(up, id),
            Err(ApiError::NothingToConfirm),
            "settled once"
        );
        assert!(run(&mut sim, &world, 10, |w| !w.delivery.is_empty()));
        let expected = match refusal {
            None => Delivery::Delivered { relays: 0 },
            Some(code) => Delivery::Failed { code, relays: 0 },
        };
        assert_eq!(world.borrow().delivery, vec![(id, expected)], "{refusal:?}");
    }
}

/// A stream whose delivery was not deferred, or not read to its end, has nothing to
/// confirm; one the application holds keeps its slot among the streams the peer may open.
#[test]
fn only_a_deferred_stream_read_to_its_end_is_confirmed() {
    let config = Config {
        max_concurrent_streams: 2,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(7, 0, config, clean);
    world.borrow_mut().deferrer = Some(1);
    let up = ConnectionHandle::from_index(0);
    let first = sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    let second = sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    assert!(run(&mut sim, &world, 10, |w| w
        .received
        .get(&1)
        .is_some_and(|r| r.len() == 2)));
    // Both held: the peer may open no third stream until one is settled.
    let third = payload(100);
    assert!(!run(&mut sim, &world, 5, |_| false));
    assert_eq!(
        sim.endpoint(0).send_message(conn, None, third.clone()),
        Err(ApiError::StreamLimit)
    );
    assert_eq!(sim.endpoint(1).confirm_delivery(up, first), Ok(()));
    assert!(run(&mut sim, &world, 10, |w| w.delivery.len() == 1));
    let id = sim.endpoint(0).send_message(conn, None, third).unwrap();
    world.borrow_mut().deferrer = None;
    assert!(run(&mut sim, &world, 10, |w| w.delivery.len() == 2));
    assert_eq!(
        world.borrow().delivery[1],
        (id, Delivery::Delivered { relays: 0 }),
        "not deferred: delivered once read"
    );
    assert_eq!(
        sim.endpoint(1).confirm_delivery(up, id),
        Err(ApiError::NothingToConfirm)
    );
    assert_eq!(sim.endpoint(1).confirm_delivery(up, second), Ok(()));
}

/// A sender remembers at most 4,096 streams awaiting their receipt, counting those open
/// that may come to (spec §8, Delivery): a receiver that takes every stream and never
/// answers (it deferred them all) cannot make it hold more. The 4,097th stream waits; one
/// answer lets it go.
#[test]
fn a_sender_awaits_at_most_4096_receipts() {
    let receiver = Config {
        initial_concurrent_streams: 10_000,
        max_concurrent_streams: 10_000,
        ..Config::default()
    };
    let mut sim = Sim::new(9);
    sim.add_node(Config::default());
    sim.add_node(receiver);
    sim.link(0, 1, LinkConfig::default());
    let conn = sim.connect(0, 1);
    let world = RefCell::new(World {
        deferrer: Some(1),
        ..World::default()
    });
    run(&mut sim, &world, 5, |_| false);
    assert!(sim.endpoint_ref(0).is_established(conn));
    let mut sent = Vec::new();
    let refused = loop {
        match sim.endpoint(0).send_message(conn, None, payload(10)) {
            Ok(id) => sent.push(id),
            Err(ApiError::WouldBlock) => {
                run(&mut sim, &world, 1, |_| false);
            }
            Err(e) => break e,
        }
        if sent.len() % 512 == 0 {
            run(&mut sim, &world, 1, |_| false);
        }
        assert!(sent.len() <= 4096, "more than 4,096 awaited");
    };
    assert_eq!(refused, ApiError::StreamLimit);
    assert_eq!(sent.len(), 4096);
    assert!(run(&mut sim, &world, 10, |w| w.acked.len() == 4096));
    assert_eq!(
        sim.endpoint(0).send_message(conn, None, payload(10)),
        Err(ApiError::StreamLimit)
    );
    let up = ConnectionHandle::from_index(0);
    assert!(run(&mut sim, &world, 10, |w| w
        .received
        .get(&1)
        .is_some_and(|r| r.len() == 4096)));
    sim.endpoint(1).confirm_delivery(up, sent[0]).unwrap();
    assert!(run(&mut sim, &world, 10, |w| w.delivery.len() == 1));
    assert!(sim.endpoint(0).send_message(conn, None, payload(10)).is_ok());
}

/// Issue 29, item 4: the receiver reads the message and closes at once; the way back loses
/// 30%, or 50%. Its close lingers until its receipt is acknowledged, so the sender learns of
/// the delivery instead of failing, over many seeds.
#[test]
fn a_receiver_that_closes_at_once_leaves_the_sender_knowing() {
    for seed in 0..20 {
        for (forward, back) in [(0.3, 0.3), (0.0, 0.5)] {
            let (mut sim, world, conn) = chain(100 + seed, 0, Config::default(), clean);
            world.borrow_mut().closer = Some(1);
            sim.link_one_way(
                0,
                1,
                LinkConfig {
                    loss: forward,
                    ..LinkConfig::default()
                },
            );
            sim.link_one_way(
                1,
                0,
                LinkConfig {
                    loss: back,
                    ..LinkConfig::default()
                },
            );
            let msg = payload(200_000);
            let id = sim.endpoint(0).send_message(conn, None, msg.clone()).unwrap();
            let done = |w: &World| w.closed.iter().any(|(n, _)| *n == 0);
            assert!(
                run(&mut sim, &world, 120, done),
                "seed {seed}, loss {forward}/{back}"
            );
            let w = world.borrow();
            assert_eq!(w.received[&1], vec![msg], "seed {seed}");
            assert_eq!(
                w.delivery,
                vec![(id, Delivery::Delivered { relays: 0 })],
                "seed {seed}, loss {forward}/{back}: {:?}",
                w.closed
            );
        }
    }
}

mod lazy_acks;
