//! A property test of relayed connections (spec §12) in weir-sim: over seeds, two peers
//! behind NATs of any RFC 4787 kinds connect through a relay's circuit and punch through to
//! a direct path where the kinds allow it, while messages go both ways over links with
//! their own loss, bursts, duplication, reordering, corruption and delay, and at times an
//! outage of one link (either peer's to the relay, or the direct one), short or past the
//! idle timeout. The oracle is the end-to-end promise, each way: a peer reads only messages
//! the other sent, intact and once; a sender hears "delivered" only for a message its peer
//! has whole; every message ends at its sender with a verdict, a stop or a typed close; and
//! where no connection ended, every message arrived. Sweeps of more cases: tests/README.md,
//! "Sweeps".

use crate::sweep;

use std::cell::RefCell;

use bytes::Bytes;
use proptest::prelude::*;
use weir_core::time::{Duration, Instant};
use weir_core::{
    CloseReason, Config, ConnectionHandle, Delivery, Event, HandshakeError, Read, RelayConfig, RelayRefusal,
};
use weir_sim::{nat_kinds, LinkConfig, NatConfig, NatKind, NodeId, Sim};

use sweep::{hop, Hop, Outage, Sent};

/// One case: its inputs, as proptest prints them.
#[derive(Clone, Debug)]
struct CircuitCase {
    seed: u64,
    nat_a: NatKind,
    nat_b: NatKind,
    /// `a` to the relay, `b` to the relay, `a` to `b`.
    hops: Vec<Hop>,
    /// Messages `a` sends, and `b`.
    sizes: [Vec<usize>; 2],
    outage: Option<Outage>,
}

const RELAY: NodeId = 0;

/// One way's messages: what its sender sent and heard, what its receiver read.
#[derive(Default)]
struct Way {
    from: NodeId,
    conn: Option<ConnectionHandle>,
    msgs: Vec<Bytes>,
    sent: Sent,
    /// What the other peer read.
    read: Vec<Bytes>,
    /// The sender's connection ended.
    ended: Option<End>,
}

impl Way {
    fn send(&mut self, sim: &mut Sim) {
        let Some(conn) = self.conn else { return };
        let (from, msgs) = (self.from, &self.msgs);
        self.sent
            .offer(|m| sim.endpoint(from).send_message(conn, None, msgs[m].clone()));
    }
}

/// How a connection ended.
#[derive(Clone, Debug)]
enum End {
    Closed(CloseReason),
    HandshakeFailed(HandshakeError),
}

/// Both ways, and every connection that ended anywhere.
struct Seen {
    ways: [Way; 2],
    closed: Vec<(NodeId, ConnectionHandle, End)>,
}

impl Seen {
    fn on_event(&mut self, sim: &mut Sim, node: NodeId, e: Event) {
        let Some(w) = self.ways.iter().position(|w| w.from == node) else {
            if let Event::Closed { conn, reason, .. } = e {
                self.closed.push((node, conn, End::Closed(reason)));
            }
            return;
        };
        let other = 1 - w;
        match e {
            Event::Connected {
                conn, peer: Some(_), ..
            } if self.ways[w].conn.is_none() => {
                // A peer's first connection with a peer key is the one with the other
                // peer: its connection to the relay came up before any circuit.
                let relay = sim.endpoint_ref(RELAY).public_key();
                if sim.endpoint_ref(node).peer_key(conn) != Some(relay) {
                    self.ways[w].conn = Some(conn);
                    self.ways[w].send(sim);
                }
            }
            Event::Writable { conn } | Event::StreamsAvailable { conn }
                if Some(conn) == self.ways[w].conn =>
            {
                self.ways[w].send(sim)
            }
            Event::StreamDelivery { conn, .. } | Event::StreamStopped { conn, .. }
                if Some(conn) == self.ways[w].conn =>
            {
                self.ways[w].sent.hear(&e)
            }
            Event::StreamReadable { conn, stream } => {
                if let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 24) {
                    self.ways[other].read.push(bytes);
                }
            }
            Event::Closed { conn, reason, .. } => self.ended(node, w, conn, End::Closed(reason)),
            Event::HandshakeFailed { conn, reason } => {
                self.ended(node, w, conn, End::HandshakeFailed(reason))
            }
            _ => {}
        }
    }
}

impl Seen {
    /// Peer `node`'s (way `w`'s sender's) connection `conn` ended: the one with the other
    /// peer, or one not yet known to be (a circuit's handshake that failed), ends the way.
    fn ended(&mut self, node: NodeId, w: usize, conn: ConnectionHandle, end: End) {
        let way = &mut self.ways[w];
        if way.conn == Some(conn) || (way.conn.is_none() && matches!(end, End::HandshakeFailed(_))) {
            way.ended = Some(end.clone());
        }
        self.closed.push((node, conn, end));
    }

    /// Whether every way is done: its sender heard of every message and its receiver read
    /// them all, or (some connection ended) all that will be heard was; or it ended.
    fn done(&self) -> bool {
        let lost = !self.closed.is_empty();
        self.ways.iter().all(|w| match w.conn {
            _ if w.ended.is_some() => true,
            None => lost,
            Some(_) => w.sent.heard_all() && (w.read.len() == w.msgs.len() || lost),
        })
    }
}

impl CircuitCase {
    /// Builds the world on clean links, connects both peers to the relay, `b` reserves, `a`
    /// connects to `b` through it; impairs each link as the case says once `a` asked for the
    /// circuit, and runs until each sender heard of every message and each receiver read
    /// them all (or a connection ended and all is quiet), for at most `limit`. Returns the
    /// outage's end with the world and what it saw.
    fn run(&self, limit: Duration) -> (Sim, Seen, Option<Instant>) {
        let mut sim = Sim::new(self.seed);
        let relay = sim.add_node(Config {
            relay: Some(RelayConfig::default()),
            ..Config::default()
        });
        assert_eq!(relay, RELAY);
        let na = sim.add_nat(NatConfig::new(self.nat_a.0, self.nat_a.1));
        let nb = sim.add_nat(NatConfig::new(self.nat_b.0, self.nat_b.1));
        let a = sim.add_node_behind(na, Config::default());
        let b = sim.add_node_behind(nb, Config::default());
        let links = [(a, relay), (b, relay), (a, b)];
        for (x, y) in links {
            sim.link(x, y, LinkConfig::default());
        }
        let msgs = self.sizes.clone().map(|sizes| sweep::messages(&sizes));
        let way = |from, msgs: &Vec<Bytes>| Way {
            from,
            msgs: msgs.clone(),
            sent: Sent::new(msgs.len()),
            ..Way::default()
        };
        let seen = RefCell::new(Seen {
            ways: [way(a, &msgs[0]), way(b, &msgs[1])],
            closed: Vec::new(),
        });
        let (a_r, b_r) = (sim.connect(a, relay), sim.connect(b, relay));
        let step = |sim: &mut Sim, within: Duration, done: &dyn Fn(&Sim, &Seen) -> bool| {
            let until = sim.now() + within;
            sim.run_until(
                until,
                |sim, n, e| seen.borrow_mut().on_event(sim, n, e),
                |sim| done(sim, &seen.borrow()),
            )
        };
        let up = |n: NodeId, c| move |sim: &Sim, _: &Seen| sim.endpoint_ref(n).is_established(c);
        assert!(step(&mut sim, Duration::from_secs(10), &|sim, s| up(a, a_r)(
            sim, s
        ) && up(b, b_r)(
            sim, s
        )));
        sim.endpoint(b).reserve(b_r).unwrap();
        let reserved = |sim: &Sim, _: &Seen| sim.endpoint_ref(RELAY).relay_load().1 == 1;
        assert!(step(&mut sim, Duration::from_secs(10), &reserved));
        let now = sim.now();
        let key = sim.endpoint_ref(b).public_key();
        sim.endpoint(a).connect_via(now, a_r, key).unwrap();
        for (&(x, y), hop) in links.iter().zip(&self.hops) {
            sim.change_link_one_way(x, y, hop.link());
            sim.change_link_one_way(y, x, hop.link());
        }
        let start = sim.now();
        if let Some(o) = self.outage {
            let (x, y) = links[o.hop];
            let from = start + Duration::from_millis(o.from_ms);
            sim.partition(x, y, from, from + Duration::from_millis(o.for_ms));
        }
        step(&mut sim, limit, &|_, s| s.done());
        (sim, seen.into_inner(), self.outage.map(|o| o.end(start)))
    }
}

fn case() -> impl Strategy<Value = CircuitCase> {
    let kinds = nat_kinds();
    let kind = proptest::sample::select(kinds);
    let sizes = || proptest::collection::vec(1usize..150_000, 0..6);
    (
        any::<u64>(),
        kind.clone(),
        kind,
        proptest::collection::vec(hop(), 3),
        [sizes(), sizes()],
        sweep::outage(3),
    )
        .prop_map(|(seed, nat_a, nat_b, hops, sizes, outage)| CircuitCase {
            seed,
            nat_a,
            nat_b,
            hops,
            sizes,
            outage,
        })
}

/// Checks the end-to-end promise for one finished case, each way (`outage`: the case cut
/// a link for a while).
fn check(seen: &Seen, outage: bool) -> Result<(), TestCaseError> {
    // A circuit ends with the relay's PeerGone, or its handshake fails so, only if a
    // connection to the relay ended, for loss or an outage.
    let lost = seen
        .closed
        .iter()
        .any(|(_, _, e)| matches!(e, End::Closed(r) if sweep::explained(r)));
    for (node, conn, end) in &seen.closed {
        let explained = match end {
            End::Closed(CloseReason::Relay(RelayRefusal::PeerGone))
            | End::HandshakeFailed(HandshakeError::Relay(RelayRefusal::PeerGone)) => lost || outage,
            End::Closed(reason) => sweep::explained(reason),
            End::HandshakeFailed(why) => *why == HandshakeError::TimedOut,
        };
        prop_assert!(
            explained,
            "node {} {:?} ended: {:?} (all: {:?})",
            node,
            conn,
            end,
            seen.closed
        );
    }
    for (i, w) in seen.ways.iter().enumerate() {
        for (k, bytes) in w.read.iter().enumerate() {
            prop_assert!(
                w.msgs.contains(bytes),
                "way {i}: read a message never sent ({} bytes)",
                bytes.len()
            );
            prop_assert!(!w.read[..k].contains(bytes), "way {i}: read a message twice");
        }
        for (m, stream) in w.sent.streams.iter().enumerate() {
            match w.sent.verdicts.get(stream) {
                Some(Delivery::Delivered { relays }) => {
                    prop_assert_eq!(*relays, 0, "way {}: a circuit is no relay of streams", i);
                    prop_assert!(
                        w.read.contains(&w.msgs[m]),
                        "way {}: message {} reported delivered, never read",
                        i,
                        m
                    );
                }
                Some(Delivery::Failed { .. }) => {}
                None => prop_assert!(
                    w.sent.stopped.contains_key(stream) || w.ended.is_some(),
                    "way {}: message {} ended with no word at its sender (closed: {:?})",
                    i,
                    m,
                    seen.closed
                ),
            }
        }
        if seen.closed.is_empty() {
            prop_assert!(w.conn.is_some(), "way {}: no connection through the relay", i);
            prop_assert!(
                w.sent.waiting.is_empty(),
                "way {}: {} messages never sent",
                i,
                w.sent.waiting.len()
            );
            prop_assert_eq!(
                w.read.len(),
                w.msgs.len(),
                "way {}: read {} of {}; no connection ended",
                i,
                w.read.len(),
                w.msgs.len()
            );
            for (m, stream) in w.sent.streams.iter().enumerate() {
                prop_assert_eq!(
                    w.sent.verdicts.get(stream),
                    Some(&Delivery::Delivered { relays: 0 }),
                    "way {}: message {}",
                    i,
                    m
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(sweep::sweep(32))]

    /// Over seeds, NAT kinds, links and outages: the end-to-end promise holds each way
    /// (module doc).
    #[test]
    fn messages_through_a_circuit_arrive_intact_and_each_sender_hears_the_truth(case in case()) {
        let (mut sim, seen, outage_end) = case.run(Duration::from_secs(300));
        check(&seen, case.outage.is_some())?;
        if seen.closed.is_empty() {
            // Time for the last acknowledgements and stream ends.
            let until = sweep::settled(sim.now(), outage_end);
            sim.run_until(until, |_, _, _| {}, |_| false);
            sweep::holds_no_bytes(&sim)?;
        }
    }
}
