//! Peers behind NATs (issue 33; RFC 4787's kinds, `weir_sim::NatConfig`): the matrix of
//! every pair of NAT kinds, 1% loss, with what weir does today, and address discovery
//! (spec §4.18) behind each kind. Each peer learns its public address from the server
//! (OBSERVED_ADDRESS); weir has no hole punching and no relay circuits yet, so a test stands
//! in for a coordinated punch by having both peers connect to each other at the same moment. What each cell should
//! give follows from the two NATs' kinds (RFC 4787, and the punching literature), and the
//! test checks every cell against it, so the matrix moves with the model, not by hand.
//!
//! Run with `--nocapture` to see the tables (also in tests/README.md).

use std::net::SocketAddr;

use weir_core::time::Duration;
use weir_core::{Config, Event};
use weir_sim::{kind_name, nat_kinds, Dependency, LinkConfig, NatConfig, NatKind, NodeId, Sim};

/// A public server both peers talk to first (so that their NATs hold a mapping, as a
/// rendezvous or a DHT contact would), then peer `a` behind `nat_a`, peer `b` behind
/// `nat_b`; every link loses 1%.
struct World {
    sim: Sim,
    server: NodeId,
    a: NodeId,
    b: NodeId,
}

fn world(seed: u64, nat_a: NatConfig, nat_b: NatConfig) -> World {
    let mut sim = Sim::new(seed);
    let server = sim.add_node(Config::default());
    let na = sim.add_nat(nat_a);
    let nb = sim.add_nat(nat_b);
    let a = sim.add_node_behind(na, Config::default());
    let b = sim.add_node_behind(nb, Config::default());
    let lossy = LinkConfig {
        loss: 0.01,
        ..LinkConfig::default()
    };
    for (x, y) in [(a, server), (b, server), (a, b)] {
        sim.link(x, y, lossy);
    }
    World { sim, server, a, b }
}

/// Runs until each node in `nodes` has a connection up, or `limit` passes; whether they all
/// did.
fn all_connected(sim: &mut Sim, nodes: &[NodeId], limit: Duration) -> bool {
    let mut up = vec![false; nodes.len()];
    let end = sim.now() + limit;
    sim.run_until(
        end,
        |_, n, e| {
            if let (Some(i), Event::Connected { .. }) = (nodes.iter().position(|&x| x == n), e) {
                up[i] = true;
            }
        },
        |_| false,
    );
    // `run_until`'s `done` cannot see `up` while the handler borrows it: run to the limit.
    up.iter().all(|&u| u)
}

/// Both peers reach the server: every NAT lets a reply to an outbound datagram in.
fn both_reach_the_server(w: &mut World) -> bool {
    let server = w.sim.addr(w.server);
    let now = w.sim.now();
    for n in [w.a, w.b] {
        w.sim.endpoint(n).connect(now, server).unwrap();
    }
    all_connected(&mut w.sim, &[w.a, w.b, w.server], Duration::from_secs(10))
}

/// The address the server saw `node` at, as the server told it (address discovery, spec
/// §4.18), checked against the NAT's mapping.
fn seen_by_server(w: &World, node: NodeId) -> SocketAddr {
    let server = w.sim.addr(w.server);
    let told = w.sim.endpoint_ref(node).reflexive().addresses;
    let mapped = w
        .sim
        .public_addr(node, server)
        .expect("a live mapping toward the server");
    assert_eq!(told, [mapped], "the server told the node its mapping");
    mapped
}

/// `a` connects to the address the server saw `b` at; `b` does nothing.
fn direct_one_way(w: &mut World) -> bool {
    let to = seen_by_server(w, w.b);
    let now = w.sim.now();
    w.sim.endpoint(w.a).connect(now, to).unwrap();
    all_connected(&mut w.sim, &[w.a, w.b], Duration::from_secs(10))
}

/// Both connect to each other's server-seen address at the same moment (a punch with the
/// timing coordinated perfectly); success if both ends have a connection up.
fn simultaneous_open(w: &mut World) -> bool {
    let (to_b, to_a) = (seen_by_server(w, w.b), seen_by_server(w, w.a));
    let now = w.sim.now();
    w.sim.endpoint(w.a).connect(now, to_b).unwrap();
    w.sim.endpoint(w.b).connect(now, to_a).unwrap();
    all_connected(&mut w.sim, &[w.a, w.b], Duration::from_secs(10))
}

/// A NAT kind: (mapping, filtering).
type Kind = NatKind;

/// Whether `x`'s HELLO, sent to the address the server saw `y` at, gets through `y`'s NAT:
/// it arrives at `y`'s mapping toward the server, which lets a stranger in only with
/// endpoint-independent filtering; or, if `y` punched toward `x` at the same time through
/// that same mapping (endpoint-independent mapping), from where `x` sent it: the address the
/// server saw (endpoint-independent mapping at `x`) or another port on it, which
/// address-dependent filtering does not look at.
fn hello_gets_in(x: Kind, y: Kind, y_punched: bool) -> bool {
    use Dependency::*;
    y.1 == EndpointIndependent
        || (y_punched
            && y.0 == EndpointIndependent
            && (x.0 == EndpointIndependent || y.1 == AddressDependent))
}

/// Whether `y`'s answers get back through `x`'s NAT: they come from `y`'s mapping toward
/// `x`, the address the server saw only with endpoint-independent mapping, to the mapping
/// `x`'s HELLO made, which let in only where it sent to unless its filtering ignores the
/// port (or everything).
fn answers_get_back(x: Kind, y: Kind) -> bool {
    x.1 != Dependency::AddressAndPortDependent || y.0 == Dependency::EndpointIndependent
}

/// `a` alone connects to `b`.
fn expect_one_way(a: Kind, b: Kind) -> bool {
    hello_gets_in(a, b, false) && answers_get_back(a, b)
}

/// Both connect at once: either connection coming up is enough.
fn expect_simultaneous(a: Kind, b: Kind) -> bool {
    (hello_gets_in(a, b, true) && answers_get_back(a, b))
        || (hello_gets_in(b, a, true) && answers_get_back(b, a))
}

#[test]
fn every_nat_pair_against_what_weir_does_today() {
    let kinds = nat_kinds();
    let mut one_way = String::new();
    let mut simultaneous = String::new();
    let header = format!(
        "| a \\ b | {} |\n|---|{}\n",
        kinds
            .iter()
            .map(|&k| kind_name(k))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(kinds.len())
    );
    one_way.push_str(&header);
    simultaneous.push_str(&header);
    let (mut ok_one_way, mut ok_simultaneous, mut mismatches) = (0, 0, Vec::new());
    for (i, &ka) in kinds.iter().enumerate() {
        one_way.push_str(&format!("| {} |", kind_name(ka)));
        simultaneous.push_str(&format!("| {} |", kind_name(ka)));
        for (j, &kb) in kinds.iter().enumerate() {
            let seed = 1000 + (i * kinds.len() + j) as u64;
            let nat = |k: Kind| NatConfig::new(k.0, k.1);
            let mut w = world(seed, nat(ka), nat(kb));
            assert!(
                both_reach_the_server(&mut w),
                "{} and {} both reach a public server",
                kind_name(ka),
                kind_name(kb)
            );
            let got = direct_one_way(&mut w);
            ok_one_way += usize::from(got);
            one_way.push_str(if got { " yes |" } else { " no |" });
            if got != expect_one_way(ka, kb) {
                mismatches.push(format!("one way {} -> {}: {got}", kind_name(ka), kind_name(kb)));
            }

            let mut w = world(seed, nat(ka), nat(kb));
            assert!(both_reach_the_server(&mut w));
            let got = simultaneous_open(&mut w);
            ok_simultaneous += usize::from(got);
            simultaneous.push_str(if got { " yes |" } else { " no |" });
            if got != expect_simultaneous(ka, kb) {
                mismatches.push(format!(
                    "simultaneous {} <-> {}: {got}",
                    kind_name(ka),
                    kind_name(kb)
                ));
            }
        }
        one_way.push('\n');
        simultaneous.push('\n');
    }
    let pairs = kinds.len() * kinds.len();
    println!("a connects to b's server-seen address, b silent: {ok_one_way}/{pairs}\n{one_way}");
    println!("both connect at once (a perfect punch): {ok_simultaneous}/{pairs}\n{simultaneous}");
    assert!(mismatches.is_empty(), "cells unlike the model: {mismatches:#?}");
}

/// An idle mapping expires: a peer behind a 30 s NAT whose connection stays silent longer
/// can no longer be reached at the address the server saw; a keep-alive shorter than the
/// mapping's life keeps the way in open.
#[test]
fn a_mapping_lives_while_the_peer_sends_and_expires_when_it_stops() {
    for keep_alive in [None, Some(Duration::from_secs(10))] {
        let mut sim = Sim::new(7);
        // Both ends: the server's keep-alive would keep the mapping too (the peer's ACK of
        // it is an outbound datagram).
        let config = Config {
            keep_alive,
            idle_timeout: Duration::from_secs(120),
            ..Config::default()
        };
        let server = sim.add_node(config.clone());
        let nat = sim.add_nat(NatConfig::full_cone());
        let peer = sim.add_node_behind(nat, config);
        let outsider = sim.add_node(Config::default());
        let server_addr = sim.addr(server);
        let now = sim.now();
        sim.endpoint(peer).connect(now, server_addr).unwrap();
        assert!(all_connected(&mut sim, &[peer], Duration::from_secs(5)));
        let seen = sim.public_addr(peer, server_addr).unwrap();
        sim.run_for(Duration::from_secs(60), |_, _, _| {});
        let now = sim.now();
        sim.endpoint(outsider).connect(now, seen).unwrap();
        let reached = all_connected(&mut sim, &[outsider, peer], Duration::from_secs(10));
        assert_eq!(reached, keep_alive.is_some(), "keep-alive {keep_alive:?}");
        assert_eq!(
            sim.stats().nat_dropped > 0,
            !reached,
            "dropped by the NAT, not lost"
        );
    }
}

/// Hairpinning: two peers behind the same NAT reach each other at their public addresses
/// only if the NAT hairpins.
#[test]
fn peers_behind_one_nat_meet_at_its_public_address_only_if_it_hairpins() {
    for hairpinning in [false, true] {
        let mut sim = Sim::new(8);
        let server = sim.add_node(Config::default());
        let nat = sim.add_nat(NatConfig {
            hairpinning,
            ..NatConfig::full_cone()
        });
        let a = sim.add_node_behind(nat, Config::default());
        let b = sim.add_node_behind(nat, Config::default());
        let server_addr = sim.addr(server);
        let now = sim.now();
        sim.endpoint(b).connect(now, server_addr).unwrap();
        assert!(all_connected(&mut sim, &[b], Duration::from_secs(5)));
        let b_public = sim.public_addr(b, server_addr).unwrap();
        let now = sim.now();
        sim.endpoint(a).connect(now, b_public).unwrap();
        let met = all_connected(&mut sim, &[a], Duration::from_secs(10));
        assert_eq!(met, hairpinning);
    }
}

/// Address discovery (spec §4.18): a peer behind each NAT kind, talking to two public
/// servers at different IP addresses, learns from them the public address each saw (the
/// NAT's mapping toward it), and whether one mapping serves every destination; a peer with
/// no NAT learns its own address. Over 1% loss, on several seeds.
#[test]
fn a_peer_learns_its_public_addresses_and_its_mapping_kind() {
    use weir_core::Mapping;
    let kinds: Vec<Option<Dependency>> = [None].into_iter().chain(Dependency::ALL.map(Some)).collect();
    for mapping in kinds {
        for seed in 0..3 {
            let mut sim = Sim::new(7000 + seed);
            let s1 = sim.add_node(Config::default());
            let s2 = sim.add_node(Config::default());
            let a = match mapping {
                None => sim.add_node(Config::default()),
                Some(m) => {
                    let nat = sim.add_nat(NatConfig::new(m, Dependency::AddressAndPortDependent));
                    sim.add_node_behind(nat, Config::default())
                }
            };
            let lossy = LinkConfig {
                loss: 0.01,
                ..LinkConfig::default()
            };
            sim.link(a, s1, lossy);
            sim.link(a, s2, lossy);
            assert_eq!(
                sim.endpoint_ref(a).reflexive(),
                Default::default(),
                "nothing told yet"
            );
            let now = sim.now();
            let (to1, to2) = (sim.addr(s1), sim.addr(s2));
            sim.endpoint(a).connect(now, to1).unwrap();
            sim.endpoint(a).connect(now, to2).unwrap();
            assert!(all_connected(&mut sim, &[a, s1, s2], Duration::from_secs(10)));
            let public = |to| match mapping {
                None => sim.addr(a),
                Some(_) => sim.public_addr(a, to).expect("a live mapping"),
            };
            let (p1, p2) = (public(to1), public(to2));
            let r = sim.endpoint_ref(a).reflexive();
            let mut told = r.addresses.clone();
            told.sort();
            let mut want = vec![p1, p2];
            want.sort();
            want.dedup();
            assert_eq!(told, want, "{mapping:?}, seed {seed}");
            let endpoint_independent = mapping.is_none_or(|m| m == Dependency::EndpointIndependent);
            let kind = if endpoint_independent {
                Mapping::EndpointIndependent
            } else {
                Mapping::DestinationDependent
            };
            assert_eq!(r.mapping, kind, "{mapping:?}, seed {seed}");
            // Each connection also says what its own peer saw.
            let conns: Vec<_> = [to1, to2]
                .into_iter()
                .map(|to| {
                    sim.endpoint_ref(a)
                        .connections()
                        .find(|&c| sim.endpoint_ref(a).remote_address(c) == Some(to))
                })
                .collect();
            for (conn, p) in conns.into_iter().zip([p1, p2]) {
                assert_eq!(
                    sim.endpoint_ref(a).observed_address(conn.expect("a connection")),
                    Some(p)
                );
            }
        }
    }
}
