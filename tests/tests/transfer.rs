//! Transfers through weir-sim under loss, reordering and duplication: every byte delivered
//! exactly once, intact, in order per stream.

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::StreamId;
use weir_core::{Config, ConnectionHandle, Event, Read};
use weir_sim::{LinkConfig, NodeId, Sim};

fn lossy(loss: f64) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        loss,
        duplicate: if loss > 0.0 { 0.02 } else { 0.0 },
        reorder: if loss > 0.0 { 0.05 } else { 0.0 },
        ..LinkConfig::default()
    }
}

/// A deterministic message body: byte i of message m.
fn body(m: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ m.wrapping_mul(7)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Sends `messages` from client to server once connected; returns what the server got,
/// by stream, and whether the run finished within `limit`.
fn run(sim: &mut Sim, client: NodeId, server: NodeId, messages: Vec<Bytes>, limit: Duration) -> Vec<Bytes> {
    let want = messages.len();
    let mut queue: Vec<Bytes> = messages.into_iter().rev().collect();
    let got: RefCell<BTreeMap<u64, Bytes>> = RefCell::new(BTreeMap::new());
    let deadline = sim.now() + limit;
    let send_more = |sim: &mut Sim, conn: ConnectionHandle, queue: &mut Vec<Bytes>| {
        while let Some(m) = queue.pop() {
            match sim.endpoint(client).send_message(conn, None, m.clone()) {
                Ok(_) => {}
                Err(weir_core::ApiError::StreamLimit) => {
                    queue.push(m);
                    break;
                }
                Err(e) => panic!("send_message: {e}"),
            }
        }
    };
    sim.connect(client, server);
    sim.run_until(
        deadline,
        |sim, node, event| match event {
            Event::Connected { conn: c, .. } if node == client => {
                send_more(sim, c, &mut queue);
            }
            Event::StreamsAvailable { conn: c } if node == client => send_more(sim, c, &mut queue),
            Event::StreamReadable { conn: c, stream } if node == server => {
                match sim.endpoint(server).read_message(c, stream, 64 << 20).unwrap() {
                    Read::Data { bytes, .. } => {
                        assert!(
                            got.borrow_mut().insert(stream.0, bytes).is_none(),
                            "stream {stream} delivered twice"
                        );
                    }
                    Read::Pending => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            Event::Closed { reason, .. } => panic!("node {node} closed: {reason:?}"),
            Event::HandshakeFailed { reason, .. } => panic!("handshake failed: {reason:?}"),
            _ => {}
        },
        |_| got.borrow().len() == want,
    );
    got.into_inner().into_values().collect()
}

fn pair(seed: u64, link: LinkConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let client = sim.add_node(Config::default());
    let server = sim.add_node(Config::default());
    sim.link(client, server, link);
    (sim, client, server)
}

#[test]
fn ten_mib_message_under_loss() {
    for (seed, loss) in [(1, 0.0), (2, 0.01), (3, 0.10), (4, 0.30)] {
        let (mut sim, c, s) = pair(seed, lossy(loss));
        let msg = body(0, 10 << 20);
        let got = run(&mut sim, c, s, vec![msg.clone()], Duration::from_secs(600));
        assert_eq!(got.len(), 1, "loss {loss}: not delivered by {}", sim.now());
        assert!(got[0] == msg, "loss {loss}: bytes differ");
        println!(
            "10 MiB at {:.0}% loss: {} of virtual time, {:?}",
            loss * 100.0,
            sim.now(),
            sim.stats()
        );
    }
}

#[test]
fn thousand_small_messages_under_loss() {
    for (seed, loss) in [(5, 0.0), (6, 0.01), (7, 0.10), (8, 0.30)] {
        let (mut sim, c, s) = pair(seed, lossy(loss));
        let msgs: Vec<Bytes> = (0..1000).map(|m| body(m, 1 + m % 700)).collect();
        let got = run(&mut sim, c, s, msgs.clone(), Duration::from_secs(600));
        assert_eq!(got.len(), 1000, "loss {loss}");
        // Streams are numbered in sending order, so stream order is message order.
        assert!(got == msgs, "loss {loss}: a message differs");
    }
}

/// Issue 30's receive budget must never close an honest sender: 128 messages of 64 KiB
/// (every stream the receiver allows, 8 MiB against a 1 MiB connection window) on a path
/// that loses 1%, duplicates and reorders, to a receiver whose application reads nothing
/// for the first 10 s, so its window fills with whatever arrived, gaps and all. Then it
/// reads everything, and every message arrives intact. (With a budget of once the window
/// instead of twice, the receiver closes this sender.)
#[test]
fn a_receiver_that_reads_nothing_for_a_while_never_closes_an_honest_sender() {
    type Readable = Vec<(ConnectionHandle, StreamId)>;
    for seed in 9..12 {
        let (mut sim, c, s) = pair(seed, lossy(0.01));
        let msgs: Vec<Bytes> = (0..128).map(|m| body(m, 64 << 10)).collect();
        let queue = RefCell::new(msgs.iter().rev().cloned().collect::<Vec<_>>());
        let readable: RefCell<Readable> = RefCell::new(Vec::new());
        let got: RefCell<BTreeMap<u64, Bytes>> = RefCell::new(BTreeMap::new());
        let reading = std::cell::Cell::new(false);
        let read = |sim: &mut Sim| {
            for (conn, stream) in readable.borrow_mut().drain(..) {
                if let Read::Data { bytes, .. } = sim.endpoint(s).read_message(conn, stream, 1 << 20).unwrap()
                {
                    got.borrow_mut().insert(stream.0, bytes);
                }
            }
        };
        let mut on_event = |sim: &mut Sim, node: NodeId, event: Event| match event {
            Event::Connected { conn, .. } | Event::StreamsAvailable { conn } if node == c => {
                let mut queue = queue.borrow_mut();
                while let Some(m) = queue.pop() {
                    if sim.endpoint(c).send_message(conn, None, m.clone()).is_err() {
                        queue.push(m);
                        break;
                    }
                }
            }
            Event::StreamReadable { conn, stream } if node == s => {
                readable.borrow_mut().push((conn, stream));
                if reading.get() {
                    read(sim);
                }
            }
            Event::Closed { reason, .. } => panic!("seed {seed}: node {node} closed: {reason}"),
            _ => {}
        };
        sim.connect(c, s);
        // Away: what arrives waits.
        sim.run_until(Instant::ZERO + Duration::from_secs(10), &mut on_event, |_| false);
        assert!(got.borrow().is_empty());
        // The connection window is (nearly) full: the budget is what holds it.
        let unread = sim.endpoint_ref(s).load().bytes_received_unread;
        assert!(
            unread >= Config::default().receive_window * 9 / 10,
            "seed {seed}: {unread}"
        );
        // Back: everything readable is read, and the rest as it comes.
        reading.set(true);
        read(&mut sim);
        sim.run_until(Instant::ZERO + Duration::from_secs(120), &mut on_event, |_| {
            got.borrow().len() == msgs.len()
        });
        let got = got.into_inner();
        assert_eq!(
            got.len(),
            msgs.len(),
            "seed {seed}: {} of 128 by {}",
            got.len(),
            sim.now()
        );
        assert!(
            got.into_values().eq(msgs.iter().cloned()),
            "seed {seed}: a message differs"
        );
    }
}
