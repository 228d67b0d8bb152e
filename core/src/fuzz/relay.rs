//! `relay`: `pair`'s two applications with their connection carried through a relay's
//! circuit (spec/protocol.md §12: RESERVE, CONNECT, relayed datagrams) instead of
//! directly. The relay is a third endpoint on the fuzzer's network, so every datagram
//! between an end and the relay waits for the fuzzer to deliver, drop, duplicate, corrupt
//! or delay it, on either hop. Wire version 2, which RELAY needs (the circuit's connection
//! is sealed end to end), with the fuzzing stand-in for the cryptography. The circuit is
//! set up over an undisturbed network; the input then drives the applications and the
//! network as in `pair`, and the applications send each other unreliable datagrams too.
//!
//! Oracle: `pair`'s (every byte read is the byte sent; every sender outcome agrees with its
//! receiver; no protocol violation among honest endpoints, the relay included; once the
//! network is left alone, every message not abandoned arrives); every datagram read is one
//! the peer sent, unchanged, read once (module `datagrams`); and the relay within its
//! configured bounds after every step.

use arbitrary::Unstructured;

use super::net::Net;
use super::pair::{congestion, encrypted, Pair};
use crate::config::RelayConfig;
use crate::congestion::CongestionAlgorithm;
use crate::time::Duration;
use crate::wire::{VersionRange, VERSION_2};
use crate::{Config, ConnectionHandle, Event};

/// Undisturbed datagrams and timer firings the circuit's setup may take.
const SETUP_STEPS: usize = 2_000;

/// `relay`: two applications exchanging messages through a relay's circuit on a network
/// the fuzzer controls; `pair`'s oracle, and the relay within its bounds.
pub fn relay(data: &[u8]) {
    relay_on(data, &mut Net::new());
}

/// `relay_batch`: [`relay`] on a network that hands each delivered datagram over with every
/// later one waiting on its path, in one `Endpoint::handle_datagrams` call (module `net`,
/// `Delivery::Batched`): the relay and the ends take runs of packets (which may carry relay
/// frames) as a GRO receive gives them.
pub fn relay_batch(data: &[u8]) {
    relay_batch_on(data, &mut Net::new());
}

/// [`relay_batch`] on a network the caller owns (module `trace`).
pub(super) fn relay_batch_on(data: &[u8], net: &mut Net) {
    net.delivery = super::net::Delivery::Batched;
    relay_on(data, net);
}

/// [`relay`] on a network the caller owns (module `trace`).
pub(super) fn relay_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let nodes = world(net, congestion(&mut u));
    let [a, b, _] = nodes;
    let Some((ab, ba)) = circuit(net, nodes) else {
        return;
    };
    let mut p = Pair::new(net, VERSION_2).with_datagrams();
    p.set_conn(a, ab);
    p.set_conn(b, ba);
    p.run(&mut u);
}

/// Adds the two ends (nodes 0 and 1, `pair`'s applications on version 2, with `congestion`)
/// and the relay (node 2, within the `endpoint` target's limits, few circuits).
fn world(net: &mut Net, congestion: CongestionAlgorithm) -> [usize; 3] {
    let end = encrypted(congestion);
    let (a, b) = (net.add(end.clone(), 1), net.add(end, 2));
    let relay = Config {
        versions: VersionRange::ENCRYPTED,
        relay: Some(RelayConfig {
            max_reservations: 4,
            max_circuits: 4,
            max_circuits_per_peer: 2,
            circuit_duration: Duration::from_secs(600),
            ..RelayConfig::default()
        }),
        ..super::endpoint::config()
    };
    [a, b, net.add(relay, 3)]
}

/// Connects `a` and `b` to the relay `r`, has `b` reserve there and `a` connect to `b`'s
/// key through it; the two ends' handles of their connection, or `None` if an undisturbed
/// network did not get that far. Every node's events are taken.
fn circuit(net: &mut Net, [a, b, r]: [usize; 3]) -> Option<(ConnectionHandle, ConnectionHandle)> {
    let ar = net.connect(a, r)?;
    let br = net.connect(b, r)?;
    settle_until(net, |net| {
        net.nodes[a].ep.is_established(ar) && net.nodes[b].ep.is_established(br)
    })?;
    net.nodes[b].ep.reserve(br).ok()?;
    net.collect();
    settle_until(net, |net| {
        net.nodes[b]
            .events
            .iter()
            .any(|e| matches!(e, Event::RelayReserved { .. }))
    })?;
    let key = net.nodes[b].ep.public_key();
    let now = net.now;
    let ab = net.nodes[a].ep.connect_via(now, ar, key).ok()?;
    net.collect();
    let other_end = |net: &Net| {
        net.nodes[b].events.iter().find_map(|e| match e {
            Event::Connected { conn, .. } if *conn != br => Some(*conn),
            _ => None,
        })
    };
    settle_until(net, |net| {
        net.nodes[a].ep.is_established(ab) && other_end(net).is_some()
    })?;
    let ba = other_end(net)?;
    for node in &mut net.nodes {
        node.events.clear();
    }
    Some((ab, ba))
}

/// Runs the undisturbed network until `done` holds; `None` if it never does.
fn settle_until(net: &mut Net, done: impl Fn(&Net) -> bool) -> Option<()> {
    for _ in 0..SETUP_STEPS {
        if done(net) {
            return Some(());
        }
        if !net.settle_step() {
            break;
        }
    }
    done(net).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The setup reaches a circuit, so the target's steps run over one.
    #[test]
    fn an_undisturbed_network_sets_the_circuit_up() {
        let mut net = Net::new();
        let nodes = world(&mut net, CongestionAlgorithm::default());
        let [a, b, _] = nodes;
        let (ab, ba) = circuit(&mut net, nodes).expect("a circuit");
        assert!(net.nodes[a].ep.is_established(ab));
        assert!(net.nodes[b].ep.is_established(ba));
        assert!(matches!(
            net.nodes[a].ep.path(ab),
            Some(crate::Path::Relayed { .. })
        ));
    }
}
