//! NATs in the simulator, in RFC 4787's terms: how a NAT maps a node's private address to a
//! public one (endpoint-independent, address-dependent, address-and-port-dependent
//! mapping), which datagrams from outside it lets through to a mapping (the same three
//! kinds of filtering), how long an idle mapping lives, whether it keeps the node's port,
//! and whether it hairpins (a node sending to its own NAT's public address reaches the
//! node behind it).
//!
//! Inputs: the datagrams nodes behind a NAT send, and the ones sent to a NAT's public
//! address, at the time they are sent. Outputs: the address a datagram leaves with, the node
//! one is delivered to, or a drop ([`NetStats::nat_dropped`](crate::NetStats)). A mapping is
//! refreshed by outbound datagrams only (RFC 4787 REQ-6), and a NAT translates at send
//! time: the link's delay, far shorter than any mapping's life, does not change a verdict.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_core::RngCore;
use weir_core::time::{Duration, Instant};

use crate::{NodeId, Sim};

/// Index of a NAT in a [`Sim`].
pub type NatId = usize;

/// What a NAT's mapping, or its filtering, depends on besides the private address
/// (RFC 4787 §4.1 and §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dependency {
    /// Nothing: one mapping for every destination; a mapping takes datagrams from anyone.
    EndpointIndependent,
    /// The remote IP address: a mapping per destination address; a mapping takes datagrams
    /// only from addresses it sent to.
    AddressDependent,
    /// The remote address and port ("symmetric" when it is the mapping's): a mapping per
    /// destination; a mapping takes datagrams only from the very addresses it sent to.
    AddressAndPortDependent,
}

impl Dependency {
    /// All three, in order.
    pub const ALL: [Dependency; 3] = [
        Dependency::EndpointIndependent,
        Dependency::AddressDependent,
        Dependency::AddressAndPortDependent,
    ];

    /// What of `remote` a mapping or a permission is keyed by.
    fn key(self, remote: SocketAddr) -> Option<SocketAddr> {
        match self {
            Dependency::EndpointIndependent => None,
            Dependency::AddressDependent => Some(SocketAddr::new(remote.ip(), 0)),
            Dependency::AddressAndPortDependent => Some(remote),
        }
    }

    /// A short name for tables: EI, AD, APD.
    pub fn short(self) -> &'static str {
        match self {
            Dependency::EndpointIndependent => "EI",
            Dependency::AddressDependent => "AD",
            Dependency::AddressAndPortDependent => "APD",
        }
    }
}

/// A NAT's kind in RFC 4787's terms: (mapping, filtering).
pub type NatKind = (Dependency, Dependency);

/// Every kind, mapping-major: the rows and columns of a NAT-pair matrix.
pub fn nat_kinds() -> Vec<NatKind> {
    Dependency::ALL
        .into_iter()
        .flat_map(|m| Dependency::ALL.into_iter().map(move |f| (m, f)))
        .collect()
}

/// A kind's name for tables, `EIM/APDF`.
pub fn kind_name((m, f): NatKind) -> String {
    format!("{}M/{}F", m.short(), f.short())
}

/// Which public port a new mapping gets (RFC 4787 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortAllocation {
    /// The node's own port, if no other mapping holds it; else a random one.
    Preserving,
    /// A random port from 1024 up.
    Random,
}

/// How a NAT behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// What a mapping depends on.
    pub mapping: Dependency,
    /// What a mapping's filtering depends on.
    pub filtering: Dependency,
    /// How long a mapping lives without an outbound datagram (RFC 4787 asks for at least two
    /// minutes; many home routers keep 30 s).
    pub mapping_timeout: Duration,
    /// Which public port a new mapping gets.
    pub ports: PortAllocation,
    /// Whether a node's datagram to its own NAT's public address reaches the node a
    /// mapping there belongs to (RFC 4787 §6).
    pub hairpinning: bool,
}

impl NatConfig {
    /// The friendliest NAT: endpoint-independent mapping and filtering ("full cone").
    pub fn full_cone() -> NatConfig {
        NatConfig::new(Dependency::EndpointIndependent, Dependency::EndpointIndependent)
    }

    /// Mapping and filtering as given; 30 s mappings, the port kept, no hairpinning.
    pub fn new(mapping: Dependency, filtering: Dependency) -> NatConfig {
        NatConfig {
            mapping,
            filtering,
            mapping_timeout: Duration::from_secs(30),
            ports: PortAllocation::Preserving,
            hairpinning: false,
        }
    }
}

/// A mapping: the public port, when an outbound datagram last refreshed it, and (for
/// filtering that depends on the remote end) where it sent to.
#[derive(Debug)]
struct Mapping {
    port: u16,
    refreshed: Instant,
    permits: BTreeMap<Option<SocketAddr>, ()>,
}

/// One NAT: its public address and mappings.
#[derive(Debug)]
pub(crate) struct Nat {
    config: NatConfig,
    public: IpAddr,
    /// By private address and what of the destination the mapping depends on.
    mappings: BTreeMap<(SocketAddr, Option<SocketAddr>), Mapping>,
    /// Public port → the mapping's key.
    by_port: BTreeMap<u16, (SocketAddr, Option<SocketAddr>)>,
}

/// Where a datagram goes once the NATs on its way saw it.
pub(crate) enum Routed {
    /// To this node, from this address (as the receiver sees it); through this NAT's public
    /// port, whose filtering is asked when it arrives ([`Sim::nat_admits`]).
    Node(NodeId, SocketAddr, Option<(NatId, u16)>),
    /// To an address that is no node's and no NAT's.
    Outside,
    /// Dropped by a NAT: no mapping, filtered, or a hairpin it does not do.
    Dropped(&'static str),
}

impl Nat {
    /// A NAT behaving as `config` with public address `public`, no mappings yet.
    pub(crate) fn new(config: NatConfig, public: IpAddr) -> Nat {
        Nat {
            config,
            public,
            mappings: BTreeMap::new(),
            by_port: BTreeMap::new(),
        }
    }

    fn live(&self, m: &Mapping, now: Instant) -> bool {
        now < m.refreshed + self.config.mapping_timeout
    }

    /// The public address `private` sends to `remote` from (a mapping made or refreshed).
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        private: SocketAddr,
        remote: SocketAddr,
        rng: &mut impl RngCore,
    ) -> SocketAddr {
        let key = (private, self.config.mapping.key(remote));
        let expired = self.mappings.get(&key).is_some_and(|m| !self.live(m, now));
        if expired {
            if let Some(m) = self.mappings.remove(&key) {
                self.by_port.remove(&m.port);
            }
        }
        let port = match self.mappings.get(&key) {
            Some(m) => m.port,
            None => {
                let port = self.free_port(now, private.port(), rng);
                // A port free again may still name an expired mapping: it goes.
                if let Some(stale) = self.by_port.insert(port, key) {
                    self.mappings.remove(&stale);
                }
                port
            }
        };
        let filtering = self.config.filtering;
        let m = self.mappings.entry(key).or_insert(Mapping {
            port,
            refreshed: now,
            permits: BTreeMap::new(),
        });
        m.refreshed = now;
        m.permits.insert(filtering.key(remote), ());
        SocketAddr::new(self.public, m.port)
    }

    /// A port no live mapping holds: the node's own if preserving and free.
    fn free_port(&mut self, now: Instant, own: u16, rng: &mut impl RngCore) -> u16 {
        let taken = |nat: &Nat, port: u16| {
            nat.by_port
                .get(&port)
                .and_then(|k| nat.mappings.get(k))
                .is_some_and(|m| nat.live(m, now))
        };
        if self.config.ports == PortAllocation::Preserving && !taken(self, own) {
            return own;
        }
        loop {
            let port = 1024 + (rng.next_u32() % (65_536 - 1024)) as u16;
            if !taken(self, port) {
                return port;
            }
        }
    }

    /// The live mapping that holds public `port`, with the private address it leads to.
    fn mapping(&self, now: Instant, port: u16) -> Result<(SocketAddr, &Mapping), &'static str> {
        let key = self.by_port.get(&port).ok_or("no mapping")?;
        let m = self.mappings.get(key).ok_or("no mapping")?;
        if !self.live(m, now) {
            return Err("mapping expired");
        }
        Ok((key.0, m))
    }

    /// The private address a datagram from `remote` to public `port` goes to, if a live
    /// mapping holds the port and its filtering lets `remote` in.
    pub(crate) fn inbound(
        &self,
        now: Instant,
        remote: SocketAddr,
        port: u16,
    ) -> Result<SocketAddr, &'static str> {
        let (private, m) = self.mapping(now, port)?;
        if !m.permits.contains_key(&self.config.filtering.key(remote)) {
            return Err("filtered");
        }
        Ok(private)
    }
}

impl Sim {
    /// Adds a NAT behaving as `config`, with a public address of its own (203.0.113.N);
    /// put nodes behind it with [`add_node_behind`](Self::add_node_behind).
    pub fn add_nat(&mut self, config: NatConfig) -> NatId {
        let id = self.nats.len();
        let public = IpAddr::V4(Ipv4Addr::new(203, 0, 113, id as u8 + 1));
        self.nats.push(Nat::new(config, public));
        id
    }

    /// Adds an endpoint behind `nat`, at a private address (192.168.NAT.N, port 4000): what
    /// it sends leaves with the NAT's public address, and only what the NAT lets in reaches
    /// it.
    pub fn add_node_behind(&mut self, nat: NatId, config: weir_core::Config) -> NodeId {
        let id = self.add_node(config);
        let behind = self.nodes.iter().filter(|n| n.nat == Some(nat)).count();
        self.nodes[id].addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(192, 168, nat as u8 + 1, behind as u8 + 1)),
            4000,
        );
        self.nodes[id].nat = Some(nat);
        id
    }

    /// The public address `node` reaches `remote` from, if its NAT holds a live mapping for
    /// it (its own address if it is behind no NAT): what a server `node` talked to would tell
    /// it it saw (address discovery), for tests that stand in for it.
    pub fn public_addr(&self, node: NodeId, remote: SocketAddr) -> Option<SocketAddr> {
        let n = &self.nodes[node];
        let Some(nat) = n.nat.map(|i| &self.nats[i]) else {
            return Some(n.addr);
        };
        let m = nat.mappings.get(&(n.addr, nat.config.mapping.key(remote)))?;
        nat.live(m, self.now).then(|| SocketAddr::new(nat.public, m.port))
    }

    /// Where a datagram `from` sends to `to` goes, through the NATs on its way.
    pub(crate) fn through_nats(&mut self, from: NodeId, to: SocketAddr) -> Routed {
        let now = self.now;
        let mut source = self.nodes[from].addr;
        let own = self.nodes[from].nat;
        if let Some(i) = own {
            // Hairpin: to its own NAT's public address, translated out and back in.
            let hairpin = self.nats[i].public == to.ip();
            if hairpin && !self.nats[i].config.hairpinning {
                return Routed::Dropped("no hairpinning");
            }
            source = self.nats[i].outbound(now, source, to, &mut self.rng);
        }
        if let Some(i) = self.nats.iter().position(|n| n.public == to.ip()) {
            // The node the mapping leads to now; whether the NAT lets the datagram in is
            // asked as it arrives, when the node behind may have opened the way meanwhile
            // (a punch: both send at once, each NAT sees the other's datagram after its own).
            return match self.nats[i].mapping(now, to.port()) {
                Ok((private, _)) => match self
                    .nodes
                    .iter()
                    .position(|n| n.addr == private && n.nat == Some(i))
                {
                    Some(node) => Routed::Node(node, source, Some((i, to.port()))),
                    None => Routed::Dropped("no node"),
                },
                Err(why) => Routed::Dropped(why),
            };
        }
        match self.nodes.iter().position(|n| n.addr == to && n.nat.is_none()) {
            Some(node) => Routed::Node(node, source, None),
            None if own.is_some() && to.ip().is_ipv4() && is_private(to.ip()) => {
                // A private address seen from behind another NAT: not reachable.
                Routed::Dropped("private address")
            }
            None => Routed::Outside,
        }
    }
}

impl Sim {
    /// Whether NAT `nat` lets a datagram from `remote`, arriving now at its public `port`,
    /// through to `node`: its mapping still lives and its filtering lets `remote` in.
    pub(crate) fn nat_admits(&mut self, (nat, port): (NatId, u16), remote: SocketAddr, node: NodeId) -> bool {
        let now = self.now;
        match self.nats[nat].inbound(now, remote, port) {
            Ok(private) if private == self.nodes[node].addr => true,
            Ok(_) => {
                self.log(|| format!("{now} {remote}->nat{nat}:{port} DROP nat: remapped"));
                false
            }
            Err(why) => {
                self.log(|| format!("{now} {remote}->nat{nat}:{port} DROP nat: {why}"));
                false
            }
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_private())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn nat(mapping: Dependency, filtering: Dependency) -> Nat {
        Nat::new(NatConfig::new(mapping, filtering), "203.0.113.1".parse().unwrap())
    }

    #[test]
    fn mappings_and_filters_depend_on_what_their_kind_says() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let now = Instant::ZERO;
        let me = addr("192.168.1.1:4000");
        let (s1, s1_other_port, s2) = (
            addr("10.0.0.1:4000"),
            addr("10.0.0.1:5000"),
            addr("10.0.0.2:4000"),
        );
        for mapping in Dependency::ALL {
            for filtering in Dependency::ALL {
                let mut n = nat(mapping, filtering);
                let a = n.outbound(now, me, s1, &mut rng);
                let b = n.outbound(now, me, s2, &mut rng);
                assert_eq!(a.port(), 4000, "the port is kept");
                assert_eq!(a == b, mapping == Dependency::EndpointIndependent, "{mapping:?}");
                // From the address it sent to: always let in.
                assert_eq!(n.inbound(now, s1, a.port()), Ok(me));
                let other_port = n.inbound(now, s1_other_port, a.port()).is_ok();
                assert_eq!(
                    other_port,
                    filtering != Dependency::AddressAndPortDependent,
                    "{filtering:?}"
                );
                let stranger = n.inbound(now, addr("10.0.0.9:4000"), a.port()).is_ok();
                assert_eq!(
                    stranger,
                    filtering == Dependency::EndpointIndependent,
                    "{filtering:?}"
                );
            }
        }
    }

    #[test]
    fn an_idle_mapping_expires_and_an_outbound_datagram_refreshes_it() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut n = nat(Dependency::EndpointIndependent, Dependency::EndpointIndependent);
        let (me, s) = (addr("192.168.1.1:4000"), addr("10.0.0.1:4000"));
        let t0 = Instant::ZERO;
        let public = n.outbound(t0, me, s, &mut rng);
        let half = t0 + Duration::from_secs(20);
        assert_eq!(n.inbound(half, s, public.port()), Ok(me));
        n.outbound(half, me, s, &mut rng);
        assert_eq!(
            n.inbound(half + Duration::from_secs(29), s, public.port()),
            Ok(me),
            "refreshed"
        );
        assert_eq!(
            n.inbound(half + Duration::from_secs(30), s, public.port()),
            Err("mapping expired")
        );
        // A second node behind it asks for the same port: another one.
        let other = n.outbound(t0, addr("192.168.1.2:4000"), s, &mut rng);
        assert_ne!(other.port(), public.port());
    }
}
