//! A sender that waits on its peer (for credit to send more) with nothing in flight, while
//! it moves to another address (weir-sim's `Sim::readdress`: a phone leaving Wi-Fi, a NAT
//! that rebinds). The peer learns the new address only from a packet sent from it (spec
//! §10.4, Address changes), and everything the peer sends meanwhile (its credit among it) goes to
//! the old one and is lost; so the waiting end must be heard from on the probe timeout's
//! schedule (spec §8, Liveness: "a waiting end is heard from"), not only at its next
//! keep-alive. Found by the adapters' soak (tests/README.md, "Over sockets: the adapters'
//! soaks": seed 115, a relay piping to a slower hop, 5 s still).

use std::cell::{Cell, RefCell};

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::StreamId;
use weir_core::{Config, ConnectionHandle, Event, Read, StreamHeader};
use weir_sim::{LinkConfig, NodeId, Sim};

const C: NodeId = 0;
const S: NodeId = 1;

/// A path like loopback (100 µs each way) at 100 Mbit/s.
fn loopback() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_micros(100),
        bandwidth: Some(100_000_000),
        ..LinkConfig::default()
    }
}

/// A client connecting to a server over [`loopback`].
fn connecting(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    sim.add_node(Config::default());
    sim.add_node(Config::default());
    sim.link(C, S, loopback());
    sim.connect(C, S);
    sim
}

/// The client moves to another address, as a phone leaving Wi-Fi does.
fn move_client(sim: &mut Sim) {
    sim.readdress(C, "192.0.2.77:4000".parse().expect("an address"));
}

/// The client sends `len` bytes on a stream; the server's application does not read until
/// `at`, so the client, its receive window sent, waits on credit with everything
/// acknowledged; at `at` the client moves to another address, just before the server
/// begins to read. When the server had read it all (`None`: not within 30 s).
fn read_all_by(seed: u64, len: usize, at: Instant) -> Option<Instant> {
    let mut sim = connecting(seed);
    let body = Bytes::from(vec![7u8; len]);
    let stream: Cell<Option<(ConnectionHandle, StreamId)>> = Cell::new(None);
    let (read, done) = (Cell::new(0usize), Cell::new(None));
    let reading = Cell::new(false);
    let drain = |sim: &mut Sim| {
        let Some((conn, id)) = stream.get() else { return };
        while let Ok(Read::Data { bytes, .. }) = sim.endpoint(S).read(conn, id, usize::MAX) {
            if bytes.is_empty() {
                break;
            }
            read.set(read.get() + bytes.len());
        }
        if read.get() == len && done.get().is_none() {
            done.set(Some(sim.now()));
        }
    };
    let on_event = RefCell::new(|sim: &mut Sim, node: NodeId, event: Event| match event {
        Event::Connected { conn, .. } if node == C => {
            let ep = sim.endpoint(C);
            let id = ep.open_stream(conn, StreamHeader::default()).unwrap();
            assert_eq!(ep.write(conn, id, body.clone()), Ok(len));
            ep.finish(conn, id).unwrap();
        }
        Event::StreamReadable { conn, stream: id } if node == S => {
            stream.set(Some((conn, id)));
            if reading.get() {
                drain(sim);
            }
        }
        _ => {}
    });
    let run = |sim: &mut Sim, until: Instant| {
        sim.run_until(
            until,
            |sim, node, e| (on_event.borrow_mut())(sim, node, e),
            |_| done.get().is_some(),
        );
    };
    run(&mut sim, at);
    move_client(&mut sim);
    assert!(
        read.get() < len,
        "the server read nothing yet, so the client waits on credit"
    );
    reading.set(true);
    drain(&mut sim);
    run(&mut sim, Instant::ZERO + Duration::from_secs(30));
    done.get()
}

/// The client moves 3 s into a 4 MiB transfer that waits on the server's reading (its
/// window of 1 MiB sent and acknowledged long since), just as the server begins to read:
/// the server's new credit goes to the old address. The client is heard from within the
/// probe schedule's 2 s cap, and the server has read it all within 2.5 s (the rest takes
/// 0.3 s at the path's rate). On the core before the rule, the client said nothing until
/// its keep-alive, 10 s after it was last heard: all read 7.35 s after the move.
#[test]
fn a_sender_waiting_on_credit_that_moves_is_heard_from_soon() {
    within_after_the_move("read all", |seed, at| read_all_by(seed, 4 << 20, at));
}

/// For seeds 1 to 3, the client moving 3 s in: `what` (the time `outcome` gives) came
/// within 2.5 s of the move.
fn within_after_the_move(what: &str, outcome: impl Fn(u64, Instant) -> Option<Instant>) {
    for seed in [1, 2, 3] {
        let at = Instant::ZERO + Duration::from_secs(3);
        let came = outcome(seed, at).unwrap_or_else(|| panic!("seed {seed}: {what} not within 30 s"));
        let took = (came - at).as_millis();
        println!("seed {seed}: {what} {took} ms after the move");
        assert!(took <= 2_500, "seed {seed}: {what} {took} ms after the move");
    }
}

/// The client sends a message whose receiver defers its delivery; at `moves_at` the client
/// moves to another address, and the server's application confirms the delivery then.
/// When the client heard the receipt (`None`: not within 30 s).
fn receipt_heard_by(seed: u64, moves_at: Instant) -> Option<Instant> {
    let mut sim = connecting(seed);
    let stream: Cell<Option<(ConnectionHandle, StreamId)>> = Cell::new(None);
    let heard = Cell::new(None);
    let on_event = RefCell::new(|sim: &mut Sim, node: NodeId, event: Event| match event {
        Event::Connected { conn, .. } if node == C => {
            sim.endpoint(C)
                .send_message(conn, None, Bytes::from(vec![7u8; 1024]))
                .unwrap();
        }
        Event::StreamOpened { conn, stream: id, .. } if node == S => {
            sim.endpoint(S).defer_delivery(conn, id).unwrap();
            stream.set(Some((conn, id)));
        }
        Event::StreamReadable { conn, stream: id } if node == S => {
            sim.endpoint(S).read_message(conn, id, 1 << 20).unwrap();
        }
        Event::StreamDelivery { .. } if node == C => heard.set(Some(sim.now())),
        _ => {}
    });
    let run = |sim: &mut Sim, until: Instant| {
        sim.run_until(
            until,
            |sim, node, e| (on_event.borrow_mut())(sim, node, e),
            |_| heard.get().is_some(),
        );
    };
    run(&mut sim, moves_at);
    move_client(&mut sim);
    let (conn, id) = stream.get().expect("the message arrived");
    sim.endpoint(S).confirm_delivery(conn, id).unwrap();
    run(&mut sim, Instant::ZERO + Duration::from_secs(30));
    heard.get()
}

/// The client moves 3 s after sending a message whose delivery its receiver confirms just
/// then: the receipt goes to the old address. The client, waiting on the receipt, is heard
/// from within the probe schedule's 2 s cap, and hears the receipt within 2.5 s. On the
/// core before the rule, it said nothing until its keep-alive, 10 s after its last packet:
/// the receipt heard 7.05 s after the move.
#[test]
fn a_sender_waiting_on_a_receipt_that_moves_is_heard_from_soon() {
    within_after_the_move("the receipt heard", receipt_heard_by);
}
