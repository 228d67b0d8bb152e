//! A network the fuzzer controls, for the targets that drive whole endpoints (`handshake`,
//! `endpoint`, `pair`): every datagram sent waits in one list until the fuzzer delivers,
//! drops, duplicates or corrupts it, in any order; time moves only when the fuzzer says,
//! and each node's timers fire in deadline order on the way.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use arbitrary::{Result, Unstructured};
use bytes::{Bytes, BytesMut};

use alloc::string::String;

use super::TraceRun;
use crate::crypto::Primitives;
use crate::time::{Duration, Instant};
use crate::wire::MAX_DATAGRAM_SIZE;
use crate::{Config, Endpoint, Event};

/// Datagrams waiting at once; more are dropped (a full queue), so memory stays bounded.
const MAX_WAITING: usize = 256;
/// Datagrams taken from one node per collection: a bound on one call's work, far above
/// what a congestion window lets out at once in these targets' configurations.
const MAX_SENT_PER_POLL: usize = 4096;
/// Timer firings on the way to a new time, before the clock jumps there regardless.
const MAX_TIMER_STEPS: usize = 512;

/// The timer oracle: once an endpoint's timers due at `now` fired and everything it had to
/// send was taken, its next timer is later than `now`. A timer still due then is one that
/// firing does not clear: a driver would call `handle_timeout` at that instant for ever (a
/// busy loop), and a simulated clock that waits for it never moves (the late HELLO's ACK
/// timer, `fuzz/findings/pair.unanswerable-hello-ack`, before its fix).
pub(crate) fn check_timers(ep: &Endpoint, now: Instant) {
    if let Some(due) = ep.poll_timeout().filter(|&t| t <= now) {
        // The finding (above): a timer that firing does not clear.
        panic!(
            "a timer stays due at {} µs (deadline {} µs; {:?}) after it fired and every \
             datagram was taken",
            now.as_micros(),
            due.as_micros(),
            ep.next_timer()
        );
    }
}

/// One endpoint on the network.
pub(super) struct Node {
    pub(super) ep: Endpoint,
    pub(super) addr: SocketAddr,
    /// Events polled and not yet taken by the target.
    pub(super) events: Vec<Event>,
    /// Trace text the target took from the endpoint (for its replay oracle), kept for a
    /// traced run ([`super::TracedRun`]).
    pub(super) taken: String,
}

/// A datagram on its way.
pub(super) struct Flight {
    /// Its place among every datagram the network ever queued, from 0: a target that
    /// inspects what is waiting looks at each datagram once, by remembering where it
    /// stopped, instead of every waiting datagram at every step.
    pub(super) seq: u64,
    pub(super) from: SocketAddr,
    pub(super) to: SocketAddr,
    pub(super) data: Vec<u8>,
}

/// What the fuzzer does to the network in one step.
#[derive(Clone, Copy, Debug)]
pub(super) enum NetOp {
    /// Hand the waiting datagram at this index (mod the count) to its destination.
    Deliver(usize),
    /// Lose it.
    Drop(usize),
    /// Deliver a copy and leave it waiting.
    Duplicate(usize),
    /// Deliver it with `xor` applied to 4 bytes from `at` (mod its length): a burst
    /// error no longer than 32 bits, which the CRC-32 trailer always catches.
    Corrupt { index: usize, at: usize, xor: u32 },
    /// Move the clock on, firing timers on the way.
    Wait(Duration),
}

impl NetOp {
    /// Reads one step; waits are up to `max_wait`.
    pub(super) fn arbitrary(u: &mut Unstructured<'_>, max_wait: Duration) -> Result<Self> {
        let index = usize::from(u.arbitrary::<u8>()?);
        Ok(match u.int_in_range(0u8..=7)? {
            0..=2 => NetOp::Deliver(index),
            3 => NetOp::Drop(index),
            4 => NetOp::Duplicate(index),
            5 => NetOp::Corrupt {
                index,
                at: u.arbitrary::<u16>()?.into(),
                xor: u.arbitrary::<u32>()?.max(1),
            },
            _ => NetOp::Wait(Duration::from_micros(u.int_in_range(0..=max_wait.as_micros())?)),
        })
    }
}

/// The network, its nodes and the clock.
pub(super) struct Net {
    pub(super) now: Instant,
    pub(super) nodes: Vec<Node>,
    pub(super) waiting: Vec<Flight>,
    /// Datagrams queued so far (the next [`Flight::seq`]).
    pub(super) queued: u64,
    buf: Vec<u8>,
    /// Bytes node 0 sent to each address, and received from each (for the
    /// anti-amplification oracle).
    pub(super) sent_by_first: BTreeMap<SocketAddr, u64>,
    pub(super) received_by_first: BTreeMap<SocketAddr, u64>,
    /// Set for a traced run: every endpoint records a trace, under the primitives it says.
    pub(super) tracing: Option<TraceRun>,
    /// How a delivery hands datagrams over.
    pub(super) delivery: Delivery,
}

/// How the network hands datagrams to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    /// One at a time (`Endpoint::handle_datagram`).
    OneByOne,
    /// A delivered datagram goes with every later one waiting on the same path, up to
    /// [`MAX_BATCH`], in one `Endpoint::handle_datagrams` call, as a receive call with GRO
    /// hands them over.
    Batched,
}

/// The most datagrams one batched delivery hands over (a GRO batch's 64 segments).
const MAX_BATCH: usize = 64;

/// The address of node `i` (and of the fuzzer's raw senders, from 100 on).
pub(super) fn addr(i: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 4433)
}

impl Net {
    pub(super) fn new() -> Self {
        Net {
            now: Instant::ZERO,
            nodes: Vec::new(),
            waiting: Vec::new(),
            queued: 0,
            buf: vec![0; MAX_DATAGRAM_SIZE],
            sent_by_first: BTreeMap::new(),
            received_by_first: BTreeMap::new(),
            tracing: None,
            delivery: Delivery::OneByOne,
        }
    }

    /// A network whose endpoints all record traces (module `trace`).
    pub(super) fn traced(how: TraceRun) -> Self {
        Net {
            tracing: Some(how),
            ..Net::new()
        }
    }

    /// Adds an endpoint at `addr(index + 1)`, traced if the network is; returns the index.
    pub(super) fn add(&mut self, config: Config, seed: u64) -> usize {
        match self.tracing {
            None => self.add_endpoint(Endpoint::new(config, seed)),
            Some(_) => self.add_traced(config, seed),
        }
    }

    /// Adds an endpoint that records a trace whether the network is traced or not (for a
    /// target's replay oracle); returns the index.
    pub(super) fn add_traced(&mut self, mut config: Config, seed: u64) -> usize {
        if self.tracing == Some(TraceRun::RealPrimitives) {
            config.primitives = Primitives::Real;
        }
        self.add_endpoint(Endpoint::new_traced(config, seed))
    }

    fn add_endpoint(&mut self, ep: Endpoint) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Node {
            ep,
            addr: addr(i as u8 + 1),
            events: Vec::new(),
            taken: String::new(),
        });
        i
    }

    /// The replay oracle: node `i`'s trace so far replays byte for byte, as a replayer
    /// given its secrets would replay it.
    pub(super) fn check_replay(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let trace = node.ep.take_trace();
        let secrets = node.ep.trace_secrets();
        if self.tracing.is_some() {
            node.taken.push_str(&trace);
        }
        if let Err(e) = crate::trace::replay_with_secrets(&trace, secrets.as_ref(), |_| {}) {
            // Oracle: what an endpoint recorded replays; a trace that does not is the finding.
            panic!("the recorded session does not replay: {e}");
        }
    }

    /// Node `client` starts a connection to node `server`'s address, its first datagrams
    /// put on the network; its handle, or `None` if the endpoint refused.
    pub(super) fn connect(&mut self, client: usize, server: usize) -> Option<crate::ConnectionHandle> {
        let (now, to) = (self.now, self.nodes[server].addr);
        let conn = self.nodes[client].ep.connect(now, to).ok()?;
        self.collect();
        Some(conn)
    }

    /// Moves node `i` to another port of its address, as a NAT that rebinds does: what is
    /// on its way to the old address is lost, and what the node sends from now on comes
    /// from the new one. The node is not told; its peers learn it from its datagrams.
    pub(super) fn rebind(&mut self, i: usize) {
        let old = self.nodes[i].addr;
        self.nodes[i].addr = SocketAddr::new(old.ip(), old.port().wrapping_add(1).max(1024));
    }

    /// Takes every node's datagrams and events (call after each input).
    pub(super) fn collect(&mut self) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            for _ in 0..MAX_SENT_PER_POLL {
                let Some(t) = node.ep.poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                if i == 0 {
                    *self.sent_by_first.entry(t.destination).or_default() += t.len as u64;
                }
                if self.waiting.len() < MAX_WAITING {
                    self.waiting.push(Flight {
                        seq: self.queued,
                        from: node.addr,
                        to: t.destination,
                        data: self.buf[..t.len].to_vec(),
                    });
                    self.queued += 1;
                }
            }
            while let Some(e) = node.ep.poll_event() {
                node.events.push(e);
            }
        }
    }

    /// Hands `data` to the node at `to`, if there is one.
    pub(super) fn inject(&mut self, from: SocketAddr, to: SocketAddr, data: Bytes) {
        self.hand_over(from, to, vec![data]);
    }

    /// Hands `datagrams` to the node at `to`, if there is one, in one call: one datagram
    /// alone (`handle_datagram`), several together (`handle_datagrams`).
    fn hand_over(&mut self, from: SocketAddr, to: SocketAddr, mut datagrams: Vec<Bytes>) {
        if self.nodes.first().is_some_and(|n| n.addr == to) {
            let len: usize = datagrams.iter().map(Bytes::len).sum();
            *self.received_by_first.entry(from).or_default() += len as u64;
        }
        if let Some(node) = self.nodes.iter_mut().find(|n| n.addr == to) {
            match datagrams.len() {
                1 => node
                    .ep
                    .handle_datagram(self.now, from, BytesMut::from(datagrams.remove(0))),
                _ => node
                    .ep
                    .handle_datagrams(self.now, from, datagrams.into_iter().map(BytesMut::from)),
            }
        }
        self.collect();
    }

    /// Delivers the waiting datagram at `i`: alone, or ([`Delivery::Batched`]) with every
    /// later one on its path, in one call.
    fn deliver(&mut self, i: usize) {
        let f = self.waiting.remove(i);
        let (from, to) = (f.from, f.to);
        let mut batch = vec![Bytes::from(f.data)];
        let mut j = i;
        while self.delivery == Delivery::Batched && j < self.waiting.len() && batch.len() < MAX_BATCH {
            if (self.waiting[j].from, self.waiting[j].to) == (from, to) {
                batch.push(Bytes::from(self.waiting.remove(j).data));
            } else {
                j += 1;
            }
        }
        self.hand_over(from, to, batch);
    }

    /// Carries out one step.
    pub(super) fn apply(&mut self, op: NetOp) {
        let count = self.waiting.len();
        match op {
            NetOp::Wait(d) => self.wait_until(self.now + d),
            _ if count == 0 => {}
            NetOp::Deliver(i) => self.deliver(i % count),
            NetOp::Drop(i) => {
                self.waiting.remove(i % count);
            }
            NetOp::Duplicate(i) => {
                let f = &self.waiting[i % count];
                let (from, to, data) = (f.from, f.to, Bytes::copy_from_slice(&f.data));
                self.inject(from, to, data);
            }
            NetOp::Corrupt { index, at, xor } => {
                let mut f = self.waiting.remove(index % count);
                let at = at % f.data.len().max(1);
                for (i, b) in f.data.iter_mut().skip(at).take(4).enumerate() {
                    *b ^= xor.to_be_bytes()[i];
                }
                self.inject(f.from, f.to, Bytes::from(f.data));
            }
        }
    }

    /// Moves the clock to `until`, firing each node's timers in deadline order on the way.
    pub(super) fn wait_until(&mut self, until: Instant) {
        for _ in 0..MAX_TIMER_STEPS {
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.ep.poll_timeout())
                .filter(|&t| t <= until)
                .min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            self.fire();
        }
        self.now = self.now.max(until);
        self.fire();
    }

    /// Fires every timer that is due, then checks the timer oracle ([`check_timers`]).
    fn fire(&mut self) {
        for node in &mut self.nodes {
            if node.ep.poll_timeout().is_some_and(|t| t <= self.now) {
                node.ep.handle_timeout(self.now);
            }
        }
        self.collect();
        for node in &self.nodes {
            check_timers(&node.ep, self.now);
        }
    }

    /// Delivers every datagram on its way, and what they cause, without moving the clock:
    /// for tests that must not reach an idle timeout.
    #[cfg(test)]
    pub(super) fn deliver_all(&mut self) {
        while !self.waiting.is_empty() {
            self.settle_step();
        }
    }

    /// One step of an undisturbed network, for the end of a run: delivers the oldest
    /// datagram waiting or, with none, moves the clock to the next timer. False when
    /// nothing is left to happen.
    pub(super) fn settle_step(&mut self) -> bool {
        if self.waiting.is_empty() {
            let Some(next) = self.nodes.iter().filter_map(|n| n.ep.poll_timeout()).min() else {
                return false;
            };
            self.wait_until(next);
        } else {
            self.deliver(0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that sent its HELLO has a timer (its handshake's): at its deadline, unfired,
    /// it is due.
    fn client_with_a_timer() -> (Endpoint, Instant) {
        let mut ep = Endpoint::new(Config::default(), 1);
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4433);
        ep.connect(Instant::ZERO, server).unwrap();
        let mut buf = vec![0; MAX_DATAGRAM_SIZE];
        while ep.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
        let due = ep.poll_timeout().expect("a handshake timer");
        (ep, due)
    }

    #[test]
    fn the_timer_oracle_passes_once_the_timer_fired() {
        let (mut ep, due) = client_with_a_timer();
        ep.handle_timeout(due);
        let mut buf = vec![0; MAX_DATAGRAM_SIZE];
        while ep.poll_transmit(due, &mut buf).is_some() {}
        check_timers(&ep, due);
    }

    #[test]
    #[should_panic(expected = "a timer stays due")]
    fn the_timer_oracle_fires_on_a_timer_left_due() {
        // As a rule that fired and failed to move its deadline leaves it: due, not cleared.
        let (ep, due) = client_with_a_timer();
        check_timers(&ep, due);
    }
}
