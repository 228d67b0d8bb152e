//! What the endpoint's peers say of its public address (spec/protocol.md §4.18), summed up:
//! the reflexive addresses they saw, and whether the NAT in front of this socket maps it to
//! one address for every destination (RFC 4787 §4.1: endpoint-independent mapping, what hole
//! punching needs from at least one side) or to one per destination ("symmetric").
//!
//! An owned part of the endpoint. Inputs: each `Event::AddressObserved` with the address of
//! the peer that said it. Output: [`Reflexive`], on demand. It keeps the latest report of
//! each of the last [`MAX_REPORTERS`] peers, so its memory is fixed whatever peers say.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;

/// Reports kept: the latest of this many peers, the oldest pushed out.
pub(crate) const MAX_REPORTERS: usize = 8;

/// The endpoint's public addresses as its peers see them, and what they show of its NAT
/// ([`Endpoint::reflexive`](crate::Endpoint::reflexive)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reflexive {
    /// Each address a peer saw us at, the most recently reported first; empty until a peer
    /// that negotiated ADDRESS_DISCOVERY said one.
    pub addresses: Vec<SocketAddr>,
    /// Whether one public address serves every destination.
    pub mapping: Mapping,
}

/// How the NAT in front of the endpoint (if any) maps its socket, judged by what peers at
/// different addresses saw (RFC 4787 §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mapping {
    /// Too few reports to tell: fewer than two peers at different IP addresses.
    #[default]
    Unknown,
    /// Peers at two or more IP addresses saw the same address: one mapping for every
    /// destination (or no NAT). A peer told this address can reach us once we have sent
    /// towards it.
    EndpointIndependent,
    /// Two peers saw different addresses: the NAT picks a mapping per destination
    /// ("symmetric"), so the address one peer saw is not the one another would reach.
    DestinationDependent,
}

/// The latest report of each recent peer.
#[derive(Debug, Default)]
pub(super) struct Reports {
    /// (the reporting peer's address, what it saw), the newest first.
    latest: VecDeque<(SocketAddr, SocketAddr)>,
}

impl Reports {
    /// The peer at `reporter` saw us at `observed`.
    pub(super) fn heard(&mut self, reporter: SocketAddr, observed: SocketAddr) {
        self.latest.retain(|(r, _)| *r != reporter);
        self.latest.push_front((reporter, observed));
        self.latest.truncate(MAX_REPORTERS);
    }

    /// The summary of what the kept reports say.
    pub(super) fn summary(&self) -> Reflexive {
        let mut addresses: Vec<SocketAddr> = Vec::new();
        for (_, observed) in &self.latest {
            if !addresses.contains(observed) {
                addresses.push(*observed);
            }
        }
        let mapping = if addresses.len() > 1 {
            Mapping::DestinationDependent
        } else if self.latest.iter().any(|(r, _)| r.ip() != self.latest[0].0.ip()) {
            // Peers at one IP address cannot tell a mapping per address from one for all.
            Mapping::EndpointIndependent
        } else {
            Mapping::Unknown
        };
        Reflexive { addresses, mapping }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_from_two_hosts_is_endpoint_independent() {
        let mut r = Reports::default();
        assert_eq!(r.summary(), Reflexive::default());
        r.heard(a("198.51.100.1:4433"), a("203.0.113.5:6000"));
        assert_eq!(r.summary().mapping, Mapping::Unknown);
        // Another port of the same host proves nothing about other destinations.
        r.heard(a("198.51.100.1:4434"), a("203.0.113.5:6000"));
        assert_eq!(r.summary().mapping, Mapping::Unknown);
        r.heard(a("198.51.100.2:4433"), a("203.0.113.5:6000"));
        assert_eq!(
            r.summary(),
            Reflexive {
                addresses: vec![a("203.0.113.5:6000")],
                mapping: Mapping::EndpointIndependent
            }
        );
    }

    #[test]
    fn two_addresses_are_a_mapping_per_destination_and_the_newest_comes_first() {
        let mut r = Reports::default();
        r.heard(a("198.51.100.1:4433"), a("203.0.113.5:6000"));
        r.heard(a("198.51.100.2:4433"), a("203.0.113.5:6001"));
        assert_eq!(
            r.summary(),
            Reflexive {
                addresses: vec![a("203.0.113.5:6001"), a("203.0.113.5:6000")],
                mapping: Mapping::DestinationDependent
            }
        );
        // A peer's newer report replaces its older one.
        r.heard(a("198.51.100.2:4433"), a("203.0.113.5:6000"));
        assert_eq!(r.summary().mapping, Mapping::EndpointIndependent);
    }

    #[test]
    fn only_the_latest_peers_are_kept() {
        let mut r = Reports::default();
        r.heard(a("198.51.100.200:1"), a("203.0.113.9:9"));
        for i in 0..MAX_REPORTERS as u8 {
            r.heard(
                SocketAddr::new([198, 51, 100, i].into(), 1),
                a("203.0.113.5:6000"),
            );
        }
        assert_eq!(r.latest.len(), MAX_REPORTERS);
        assert_eq!(r.summary().addresses, [a("203.0.113.5:6000")]);
    }
}

/// A connection whose client moves (spec §8, A new path; RFC 9000 §9.4): to another IP
/// address, both ends start congestion control and the RTT estimate over, the server once
/// the client answers at the new address, the client once the server reports it there; to
/// another port only (a NAT rebinding), both keep them.
#[cfg(test)]
mod moves {
    use alloc::vec;
    use bytes::Bytes;

    use super::super::harness::Net;
    use super::*;
    use crate::congestion::initial_window;
    use crate::time::Duration;

    /// Both ends' congestion windows (client, server) after a bulk send each way, and after
    /// the client moved to `to` and each sent a little more: (before, after).
    fn windows_around_a_move(to: SocketAddr) -> ([u64; 2], [u64; 2]) {
        let (mut net, c) = Net::connected();
        let s = net.eps[1].connections().next().unwrap();
        let windows = |net: &Net| {
            [(0, c), (1, s)].map(|(i, conn)| net.eps[i].connection_stats(conn).unwrap().congestion_window)
        };
        let send = |net: &mut Net, bytes: Bytes| {
            net.eps[0].send_message(c, None, bytes.clone()).unwrap();
            net.eps[1].send_message(s, None, bytes).unwrap();
            net.run_until(net.now + Duration::from_secs(5));
        };
        send(&mut net, Bytes::from(vec![7u8; 4 << 20]));
        let before = windows(&net);
        net.addrs[0] = to;
        send(&mut net, Bytes::from_static(b"after the move"));
        assert_eq!(net.eps[1].connection_stats(s).unwrap().migrations, 1);
        (before, windows(&net))
    }

    #[test]
    fn a_new_ip_address_starts_congestion_control_over_and_a_new_port_does_not() {
        let fresh = initial_window(1200) as u64;
        let (before, after) = windows_around_a_move("10.9.9.9:4000".parse().unwrap());
        for end in 0..2 {
            assert!(before[end] > 4 * fresh, "end {end}: the window grew: {before:?}");
            assert!(
                after[end] < 2 * fresh,
                "end {end}, a new IP address: {before:?} -> {after:?}"
            );
        }
        let (before, after) = windows_around_a_move("10.0.0.1:5555".parse().unwrap());
        for end in 0..2 {
            assert!(
                after[end] > 4 * fresh,
                "end {end}, a new port only: {before:?} -> {after:?}"
            );
        }
    }
}
