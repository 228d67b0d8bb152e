//! `hostile`: the `endpoint` target's world made hostile, aimed at admission control
//! (spec/protocol.md §10). The fuzzed endpoint validates addresses from two handshakes in
//! progress, admits few handshakes per second and two connections per address, bans an
//! address at its first violation and remembers four. Besides three honest peers (which
//! answer RETRY as clients do), 64 attacker addresses send forged HELLOs with no token, a
//! token the endpoint gave another address or client, or a token with bytes changed; honest
//! datagrams with fuzzed bytes (resealed, so they reach the frame parser and break the
//! protocol); and garbage. The application issues any command, and time moves by up to three
//! seconds a step, across token slots and ban periods.
//!
//! Oracle: no panic; after every step the `endpoint` target's memory bound, the admission
//! gauges within their limits (connections, addresses remembered, stateless answers
//! waiting), and, for every address that never completed a handshake, no more bytes sent to
//! it than 3 times what came from it; and the recorded trace replays byte for byte.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::net::SocketAddr;

use arbitrary::{Result, Unstructured};
use bytes::{Bytes, BytesMut};

use super::endpoint::{arbitrary_command, check_bounds, peers_read};
use super::net::{addr, Net, NetOp};
use crate::config::AddressValidation;
use crate::time::Duration;
use crate::wire::{
    self, Capabilities, ConnectionId, Frame, Header, Hello, Packet, PacketKind, PacketNumberLen,
    PacketWriter, TransportParams, VersionRange,
};
use crate::{Config, Event};

const MAX_STEPS: usize = 150;
const TARGET: usize = 0;
const HONEST: usize = 3;
/// Attacker addresses: `addr(100..164)`; the first 32 share one IP address (distinct ports).
const ATTACKERS: u8 = 64;

/// The `endpoint` target's configuration with tight admission limits.
fn config() -> Config {
    Config {
        max_connections: 8,
        max_connections_per_address: 2,
        max_handshakes_per_second: 20,
        address_validation: AddressValidation::UnderLoad { pending: 2 },
        token_lifetime: Duration::from_secs(1),
        ban_after_violations: 1,
        ban_duration: Duration::from_secs(1),
        max_ban_duration: Duration::from_secs(8),
        max_tracked_addresses: 4,
        ..super::endpoint::config()
    }
}

fn attacker(i: u8) -> SocketAddr {
    let a = addr(100 + i % ATTACKERS);
    if i % ATTACKERS < 32 {
        // One IP address behind many ports.
        SocketAddr::new(addr(99).ip(), 5000 + u16::from(i))
    } else {
        a
    }
}

/// `hostile`: one endpoint with tight admission limits under forged handshakes, stolen and
/// altered tokens, protocol violations and garbage from many addresses, beside honest peers;
/// no panic, bounds and anti-amplification after every step, and the trace replays.
pub fn hostile(data: &[u8]) {
    hostile_on(data, &mut Net::new());
}

/// `hostile_batch`: [`hostile`] on a network that hands each delivered datagram over with
/// every later one on its path, in one `Endpoint::handle_datagrams` call (a receive call's
/// GRO batch): the honest peers' runs, with the fuzzed copies of their datagrams among them,
/// reach the target together, while the attackers' datagrams still come one at a time, each
/// from an address of its own. The same oracle.
pub fn hostile_batch(data: &[u8]) {
    hostile_batch_on(data, &mut Net::new());
}

/// [`hostile_batch`] on a network the caller owns (module `trace`).
pub(super) fn hostile_batch_on(data: &[u8], net: &mut Net) {
    net.delivery = super::net::Delivery::Batched;
    hostile_on(data, net);
}

/// [`hostile`] on a network the caller owns (module `trace`).
pub(super) fn hostile_on(data: &[u8], net: &mut Net) {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary().unwrap_or(0);
    net.add_traced(config(), seed);
    for i in 0..HONEST {
        net.add(super::stand_in(), 20 + i as u64);
    }
    let target = net.nodes[TARGET].addr;
    for peer in 1..=HONEST {
        let now = net.now;
        let _ = net.nodes[peer].ep.connect(now, target);
    }
    net.collect();
    let mut world = World::default();
    for _ in 0..MAX_STEPS {
        if u.is_empty() || step(&mut u, net, &mut world).is_err() {
            break;
        }
        peers_read(net);
        for e in core::mem::take(&mut net.nodes[TARGET].events) {
            if let Event::Connected { conn, .. } = e {
                if let Some(a) = net.nodes[TARGET].ep.remote_address(conn) {
                    world.connected.insert(a);
                }
            }
        }
        check(net, &world);
    }
    net.check_replay(TARGET);
}

#[derive(Default)]
struct World {
    /// Datagrams honest peers sent the target (to mutate).
    seen: Vec<Bytes>,
    /// Tokens the target handed out in RETRYs.
    tokens: Vec<Bytes>,
    /// Datagrams queued before this one have been looked at for the two lists above.
    inspected: u64,
    /// Addresses the target completed a handshake with (no amplification limit after).
    connected: BTreeSet<SocketAddr>,
}

fn step(u: &mut Unstructured<'_>, net: &mut Net, world: &mut World) -> Result<()> {
    let target = net.nodes[TARGET].addr;
    for f in net.waiting.iter().filter(|f| f.seq >= world.inspected) {
        if world.seen.len() < 32 && f.to == target {
            world.seen.push(Bytes::copy_from_slice(&f.data));
        }
        if f.from == target && world.tokens.len() < 16 {
            if let Some(token) = retry_token(&f.data) {
                world.tokens.push(token);
            }
        }
    }
    world.inspected = net.queued;
    match u.int_in_range(0u8..=11)? {
        0..=3 => net.apply(NetOp::arbitrary(u, Duration::from_millis(3_000))?),
        4 | 5 => {
            let command = arbitrary_command(u, net)?;
            let now = net.now;
            let _ = net.nodes[TARGET].ep.command(now, command);
            net.collect();
        }
        6..=8 => {
            // A forged HELLO: no token, a token given to someone else, or one altered.
            let token = match u.int_in_range(0u8..=2)? {
                0 => Bytes::new(),
                _ if world.tokens.is_empty() => Bytes::new(),
                pick => {
                    let t = &world.tokens[u.int_in_range(0..=world.tokens.len() - 1)?];
                    let mut t = t.to_vec();
                    if pick == 2 {
                        let at = u.int_in_range(0..=t.len() - 1)?;
                        t[at] ^= u.arbitrary::<u8>()?.max(1);
                    }
                    Bytes::from(t)
                }
            };
            let cid = u.int_in_range(1..=8u64)?;
            let from = attacker(u.arbitrary()?);
            net.inject(from, target, hello(cid, token));
        }
        9 => {
            // An honest datagram with fuzzed bytes, resealed, from an attacker address.
            if world.seen.is_empty() {
                return Ok(());
            }
            let mut d = world.seen[u.int_in_range(0..=world.seen.len() - 1)?].to_vec();
            for _ in 0..u.int_in_range(1..=4)? {
                let at = u.int_in_range(0..=d.len().max(1) - 1)?;
                if let Some(b) = d.get_mut(at) {
                    *b = u.arbitrary()?;
                }
            }
            wire::reseal(&mut d, u.arbitrary::<Option<u16>>()?.map(u64::from));
            net.inject(attacker(u.arbitrary()?), target, Bytes::from(d));
        }
        _ => {
            let len = u.int_in_range(0..=1400)?;
            let d = Bytes::copy_from_slice(u.bytes(len)?);
            net.inject(attacker(u.arbitrary()?), target, d);
        }
    }
    Ok(())
}

/// The token of a RETRY datagram, if `data` is one.
fn retry_token(data: &[u8]) -> Option<Bytes> {
    let packet = Packet::decode(Bytes::copy_from_slice(data), None).ok()?;
    packet.frames().find_map(|f| match f {
        Frame::Retry(r) => Some(r.token),
        _ => None,
    })
}

/// A HELLO from client connection id `cid` carrying `token`, padded to 1200 bytes.
fn hello(cid: u64, token: Bytes) -> Bytes {
    let header = Header {
        version: crate::wire::VERSION_1,
        key_phase: crate::wire::KeyPhase::Zero,
        kind: PacketKind::Handshake {
            scid: ConnectionId::from_u64(cid),
        },
        dcid: ConnectionId::UNSET,
        number: 0,
        number_len: PacketNumberLen::One,
        timestamp: 0,
    };
    let mut buf = BytesMut::zeroed(wire::MIN_DATAGRAM_SIZE);
    let Ok(mut w) = PacketWriter::new(&mut buf, &header) else {
        return Bytes::new();
    };
    let hello = Frame::Hello(Box::new(Hello {
        versions: VersionRange::V1,
        capabilities: Capabilities::ALL,
        token,
        params: TransportParams::default(),
    }));
    let len = w
        .push(&hello)
        .and_then(|()| w.pad_to(wire::MIN_DATAGRAM_SIZE))
        .and_then(|()| w.finish())
        .unwrap_or(0);
    buf.truncate(len);
    buf.freeze()
}

fn check(net: &Net, world: &World) {
    let ep = &net.nodes[TARGET].ep;
    check_bounds(ep);
    let c = ep.config();
    let load = ep.load();
    assert!(load.connections <= c.max_connections);
    assert!(load.handshakes_pending <= load.connections);
    assert!(load.addresses_tracked <= c.max_tracked_addresses);
    assert!(load.stateless_queued <= 256);
    check_amplification(net, &world.connected);
}

/// No address that never completed a handshake (none of `connected`, and no node of the
/// network) was sent more than three times what came from it (spec §10.2).
fn check_amplification(net: &Net, connected: &BTreeSet<SocketAddr>) {
    for (to, &sent) in &net.sent_by_first {
        if connected.contains(to) || net.nodes.iter().any(|n| n.addr == *to) {
            continue;
        }
        let received = net.received_by_first.get(to).copied().unwrap_or(0);
        assert!(
            sent <= 3 * received,
            "{sent} bytes sent to {to}, which sent {received} and never completed a handshake"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::net::addr;

    /// A network whose one node sent `sent` bytes to a stranger that sent it 1,200.
    fn sent_to_stranger(sent: u64) -> (Net, SocketAddr) {
        let mut net = Net::new();
        net.add(config(), 1);
        let stranger = addr(100);
        net.received_by_first.insert(stranger, 1200);
        net.sent_by_first.insert(stranger, sent);
        (net, stranger)
    }

    #[test]
    fn the_amplification_oracle_allows_three_times_and_any_amount_after_a_handshake() {
        let (net, stranger) = sent_to_stranger(3 * 1200);
        check_amplification(&net, &BTreeSet::new());
        let (net, stranger_then_peer) = sent_to_stranger(100 * 1200);
        check_amplification(&net, &BTreeSet::from([stranger_then_peer]));
        assert_eq!(stranger, stranger_then_peer);
    }

    #[test]
    #[should_panic(expected = "never completed a handshake")]
    fn the_amplification_oracle_fires_a_byte_past_three_times() {
        let (net, _) = sent_to_stranger(3 * 1200 + 1);
        check_amplification(&net, &BTreeSet::new());
    }
}
