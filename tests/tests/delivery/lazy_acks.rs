//! Receipts acknowledged lazily (capability LAZY_RECEIPT_ACKS; spec §4.17 and §8,
//! Acknowledgements): a message on an otherwise quiet connection costs two datagrams, not
//! three, and a receipt still reaches its sender when the packet that carried it is lost:
//! at once if the sender probes (its data went unacknowledged with it), after the lazy
//! delay and a probe period if the receipt went alone.

use std::cell::Cell;
use std::rc::Rc;

use weir_core::wire::{Frame, Packet, VersionRange};

use super::*;

/// A version 1 configuration (its frames are readable on the path), with lazy receipt
/// acknowledgements offered or not.
fn config(lazy: bool) -> Config {
    Config {
        versions: VersionRange::UNPROTECTED,
        capabilities: match lazy {
            true => Capabilities::ALL,
            false => Capabilities::ALL.without(Capabilities::LAZY_RECEIPT_ACKS),
        },
        ..Config::default()
    }
}

fn path(_: usize) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

/// Datagrams both ends of the connection sent so far.
fn datagrams(sim: &Sim, conn: ConnectionHandle) -> u64 {
    let at_1 = ConnectionHandle::from_index(0);
    let sent = |node: NodeId, h| sim.endpoint_ref(node).connection_stats(h).unwrap().datagrams_sent;
    sent(0, conn) + sent(1, at_1)
}

/// Whether a version 1 datagram carries a receipt.
fn carries_receipt(d: &[u8]) -> bool {
    Packet::decode(Bytes::copy_from_slice(d), None).is_ok_and(|p| {
        p.frames()
            .any(|f| matches!(f, Frame::Receipt { .. } | Frame::ReceiptRun(_)))
    })
}

/// Swallows the next `n` datagrams from node 1 to node 0 that carry a receipt, from when
/// the returned counter is set.
fn drop_receipts(sim: &mut Sim) -> Rc<Cell<u32>> {
    let to_drop = Rc::new(Cell::new(0u32));
    let counter = to_drop.clone();
    sim.intercept(1, 0, move |d| {
        if counter.get() > 0 && carries_receipt(d) {
            counter.set(counter.get() - 1);
            return false;
        }
        true
    });
    to_drop
}

/// Runs for `d` of virtual time.
fn wait(sim: &mut Sim, world: &RefCell<World>, d: Duration) {
    sim.run_for(d, |sim, node, e| world.borrow_mut().on_event(sim, node, e));
}

/// Twenty messages 100 ms apart, each delivered before the next: what they cost in
/// datagrams, both ways, once the last receipt's acknowledgement had its time.
fn sparse_messages(lazy: bool) -> u64 {
    let (mut sim, world, conn) = chain(21, 0, config(lazy), path);
    let before = datagrams(&sim, conn);
    for i in 0..20 {
        let sent = sim.now();
        sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
        assert!(
            run(&mut sim, &world, 1, |w| w.delivery.len() == i + 1),
            "message {i}"
        );
        let spent = sim.now() - sent;
        wait(&mut sim, &world, Duration::from_millis(100) - spent);
    }
    wait(&mut sim, &world, Duration::from_secs(1));
    let w = world.borrow();
    assert!(w
        .delivery
        .iter()
        .all(|(_, d)| *d == Delivery::Delivered { relays: 0 }));
    datagrams(&sim, conn) - before
}

/// A message answered with its receipt costs the data and the answer; the sender's
/// acknowledgement of the receipt rides on its next message. Without lazy
/// acknowledgements it is a datagram of its own, 25 ms later.
#[test]
fn a_message_on_a_quiet_connection_costs_two_datagrams() {
    let lazy = sparse_messages(true);
    let prompt = sparse_messages(false);
    println!(
        "20 messages 100 ms apart: {lazy} datagrams with lazy receipt acknowledgements, {prompt} without"
    );
    // Besides two a message: the last receipt's acknowledgement, alone after the lazy
    // delay, and at most two more either way (a packet number the sender leaves out, spec
    // §8, looks like a gap and is acknowledged at once, before the receiver reads).
    assert!(lazy <= 2 * 20 + 3, "{lazy}");
    assert!(prompt >= 3 * 20, "{prompt}");
}

/// The common loss: the answer carrying the ACK and the receipt is lost. The sender's
/// probe (its data went unacknowledged) carries a PING, and the answer to the PING carries
/// the receipt again at once, not a lazy delay later.
#[test]
fn a_receipt_lost_with_its_ack_comes_with_the_answer_to_the_probe() {
    let (mut sim, world, conn) = chain(22, 0, config(true), path);
    let to_drop = drop_receipts(&mut sim);
    to_drop.set(1);
    let sent = sim.now();
    sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    assert!(run(&mut sim, &world, 5, |w| w.delivery.len() == 1));
    assert_eq!(to_drop.get(), 0, "the first answer was dropped");
    let took = sim.now() - sent;
    println!("delivered after {took:?}");
    assert!(
        took < Duration::from_millis(200),
        "{took:?}: the lazy timer's, not the probe's"
    );
    assert_eq!(world.borrow().delivery[0].1, Delivery::Delivered { relays: 0 });
}

/// A receipt that goes alone (the receiver read the message after acknowledging it), in a
/// packet that is lost: the sender has nothing to probe for, and the receiver sends the
/// receipt again when the lazy delay and a probe period pass without its acknowledgement,
/// long before the sender's next PING. (The sender, waiting on the receipt, is heard from
/// further apart the longer it waits (spec §8, Liveness): the message is read 50 ms after
/// its first PING 1.5 s on, when its next is over a second away.)
#[test]
fn a_receipt_lost_alone_is_sent_again_after_the_lazy_delay() {
    let (mut sim, world, conn) = chain(23, 0, config(true), path);
    world.borrow_mut().idle = Some(1);
    let id = sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    assert!(run(&mut sim, &world, 5, |w| w.acked.len() == 1));
    wait(&mut sim, &world, Duration::from_millis(1_500));
    let sent = |sim: &Sim| sim.endpoint_ref(0).connection_stats(conn).unwrap().datagrams_sent;
    let before = sent(&sim);
    let limit = sim.now() + Duration::from_secs(5);
    sim.run_until(
        limit,
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| sent(sim) > before,
    );
    // The PING heard and answered.
    wait(&mut sim, &world, Duration::from_millis(50));
    let to_drop = drop_receipts(&mut sim);
    to_drop.set(1);
    let at_1 = ConnectionHandle::from_index(0);
    let read_at = sim.now();
    assert!(matches!(
        sim.endpoint(1).read_message(at_1, id, 1 << 20),
        Ok(Read::Data { .. })
    ));
    assert!(run(&mut sim, &world, 5, |w| w.delivery.len() == 1));
    assert_eq!(to_drop.get(), 0, "the receipt's first packet was dropped");
    let took = sim.now() - read_at;
    println!("delivered {took:?} after the read");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(
        world.borrow().delivery,
        vec![(id, Delivery::Delivered { relays: 0 })]
    );
}

/// Over lossy paths, sparse messages each get their one receipt, delivered, whichever
/// packets are lost: over seeds, lazy acknowledgements never cost a receipt.
#[test]
fn sparse_messages_over_lossy_paths_each_get_their_receipt() {
    for seed in 0..8 {
        let lossy = |_| LinkConfig {
            delay: Duration::from_millis(5),
            loss: 0.15,
            ..LinkConfig::default()
        };
        let (mut sim, world, conn) = chain(100 + seed, 0, config(true), lossy);
        let mut sent = Vec::new();
        for _ in 0..30 {
            sent.push(sim.endpoint(0).send_message(conn, None, payload(200)).unwrap());
            wait(&mut sim, &world, Duration::from_millis(50));
        }
        assert!(
            run(&mut sim, &world, 60, |w| w.delivery.len() == 30),
            "seed {seed}"
        );
        let w = world.borrow();
        let mut got: Vec<StreamId> = w.delivery.iter().map(|(id, _)| *id).collect();
        got.sort();
        assert_eq!(got, sent, "seed {seed}: each once");
        assert!(w
            .delivery
            .iter()
            .all(|(_, d)| *d == Delivery::Delivered { relays: 0 }));
    }
}

/// A receiver that closes as soon as it read the message lingers until its receipt is
/// acknowledged: the receipt goes with a PING, acknowledged at once, so the close follows
/// within a round trip or two rather than after the sender's lazy delay.
#[test]
fn a_lingering_close_has_its_receipts_acknowledged_at_once() {
    let (mut sim, world, conn) = chain(24, 0, config(true), path);
    world.borrow_mut().closer = Some(1);
    let id = sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    let sent = sim.now();
    assert!(run(&mut sim, &world, 5, |w| w
        .closed
        .iter()
        .any(|(node, _)| *node == 0)));
    let took = sim.now() - sent;
    println!("the sender heard the close {took:?} after sending");
    assert!(took < Duration::from_millis(100), "{took:?}");
    let w = world.borrow();
    assert_eq!(w.delivery, vec![(id, Delivery::Delivered { relays: 0 })]);
    assert!(
        matches!(
            w.closed[..],
            [(1, CloseReason::Local { .. }), (0, CloseReason::Peer { .. })]
        ),
        "{:?}",
        w.closed
    );
}

/// The same with the receipt already gone in a lazy packet when the receiver closes: the
/// close sends it again with a PING rather than wait for the lazy acknowledgement.
#[test]
fn a_close_sends_receipts_in_lazy_packets_again_to_have_them_acknowledged() {
    let (mut sim, world, conn) = chain(25, 0, config(true), path);
    let id = sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    assert!(run(&mut sim, &world, 5, |w| w.delivery.len() == 1));
    let at_1 = ConnectionHandle::from_index(0);
    let closed_at = sim.now();
    sim.endpoint(1)
        .close(closed_at, at_1, 0, Reason::default())
        .unwrap();
    assert!(run(&mut sim, &world, 5, |w| w
        .closed
        .iter()
        .any(|(node, _)| *node == 0)));
    let took = sim.now() - closed_at;
    println!("the sender heard the close {took:?} after it");
    assert!(took < Duration::from_millis(100), "{took:?}");
    assert_eq!(
        world.borrow().delivery,
        vec![(id, Delivery::Delivered { relays: 0 })]
    );
}

/// A receipt whose lazy packet still waits for its acknowledgement is something under way:
/// a path that goes then ends the receiver's connection as `Unreachable`, while the sender,
/// which has its receipt and waits for nothing, times out.
#[test]
fn a_receipt_unacknowledged_when_the_path_goes_is_unreachable_not_timed_out() {
    let quiet = Config {
        idle_timeout: Duration::from_secs(2),
        keep_alive: None,
        ..config(true)
    };
    let (mut sim, world, conn) = chain(26, 0, quiet, path);
    sim.endpoint(0).send_message(conn, None, payload(100)).unwrap();
    assert!(run(&mut sim, &world, 5, |w| w.delivery.len() == 1));
    let now = sim.now();
    sim.partition(0, 1, now, now + Duration::from_secs(60));
    assert!(run(&mut sim, &world, 10, |w| w.closed.len() == 2));
    let mut closed = world.borrow().closed.clone();
    closed.sort_by_key(|(node, _)| *node);
    assert_eq!(
        closed,
        vec![(0, CloseReason::TimedOut), (1, CloseReason::Unreachable)]
    );
}
