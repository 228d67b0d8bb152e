//! Wire version 2 in weir-sim (spec/protocol.md §11): both Noise patterns and the
//! identities they authenticate, peer policies, the ciphers, tampered and replayed
//! datagrams, a man in the middle rewriting the handshake, and key updates under loss and
//! reordering.

use crate::common;
mod forgery;
mod tampering;

use std::cell::RefCell;
use std::collections::BTreeSet;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::wire::{
    encode_packet, reseal, Cipher, Close, CloseCode, ConnectionId, Frame, Header, Invariant, KeyPhase,
    PacketKind, PacketNumberLen, RejectReason, TransportErrorCode, VersionRange, VERSION_1,
};
use weir_core::{
    CloseReason, Config, ConnectionHandle, Event, HandshakeError, Identity, PeerPolicy, Priority, Seed,
};
use weir_sim::{LinkConfig, NodeId, Sim};

use common::Traffic;

const MIB: u64 = 1 << 20;

fn identity(n: u64) -> Identity {
    Identity::from_seed(&Seed::from(n))
}

/// Config with a fixed identity `n` (so tests can name keys before the endpoints exist).
fn config(n: u64) -> Config {
    Config {
        identity: Some(identity(n)),
        ..Config::default()
    }
}

/// Every event of a run, by node.
#[derive(Default)]
struct Seen {
    events: Vec<(NodeId, Event)>,
}

impl Seen {
    fn connected(&self, node: NodeId) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|(n, e)| *n == node && matches!(e, Event::Connected { .. }))
            .map(|(_, e)| e)
            .collect()
    }

    fn failed(&self, node: NodeId) -> Option<HandshakeError> {
        self.events.iter().find_map(|(n, e)| match e {
            Event::HandshakeFailed { reason, .. } if *n == node => Some(reason.clone()),
            _ => None,
        })
    }

    fn closed(&self, node: NodeId) -> Vec<CloseReason> {
        self.events
            .iter()
            .filter_map(|(n, e)| match e {
                Event::Closed { reason, .. } if *n == node => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A client (node 0) and a server (node 1) on `link`; `connect` starts the attempt.
fn pair(client: Config, server: Config, link: LinkConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(21);
    let c = sim.add_node(client);
    let s = sim.add_node(server);
    sim.link(c, s, link);
    (sim, c, s)
}

/// Runs `bytes` of bulk from the client on `conn` until delivered or `limit`; returns the
/// bytes the server read and every event seen.
fn transfer(sim: &mut Sim, c: NodeId, conn: ConnectionHandle, bytes: u64, limit: Duration) -> (u64, Seen) {
    let traffic = RefCell::new(Traffic::new());
    traffic.borrow_mut().bulk(c, conn, bytes, Priority::Normal);
    let seen = RefCell::new(Seen::default());
    let until = sim.now() + limit;
    sim.run_until(
        until,
        |sim, node, e| {
            traffic.borrow_mut().on_event(sim, node, &e);
            seen.borrow_mut().events.push((node, e));
        },
        |_| traffic.borrow().delivered_by(0) >= bytes,
    );
    let delivered = traffic.borrow().delivered_by(0);
    (delivered, seen.into_inner())
}

/// Starts the client's attempt: Noise IK to identity 2's key if `known`, else XX.
fn start(sim: &mut Sim, c: NodeId, s: NodeId, known: bool) -> ConnectionHandle {
    if known {
        let server_addr = sim.addr(s);
        sim.endpoint(c)
            .connect_to(Instant::ZERO, server_addr, identity(2).public_key())
            .unwrap()
    } else {
        sim.connect(c, s)
    }
}

/// Runs for `secs` of virtual time; every event seen.
fn watch(sim: &mut Sim, secs: u64) -> Seen {
    let seen = RefCell::new(Seen::default());
    sim.run_for(Duration::from_secs(secs), |_, node, e| {
        seen.borrow_mut().events.push((node, e))
    });
    seen.into_inner()
}

fn peer_of(e: &Event) -> Option<weir_core::PublicKey> {
    match e {
        Event::Connected { peer, .. } => *peer,
        _ => None,
    }
}

#[test]
fn both_patterns_authenticate_both_identities_and_carry_data() {
    for known in [false, true] {
        let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
        let conn = start(&mut sim, c, s, known);
        let (delivered, seen) = transfer(&mut sim, c, conn, MIB, Duration::from_secs(30));
        assert_eq!(delivered, MIB, "IK: {known}");
        let (client, server) = (seen.connected(c), seen.connected(s));
        assert_eq!((client.len(), server.len()), (1, 1));
        // Each side learned the other's static key.
        assert_eq!(peer_of(client[0]), Some(identity(2).public_key()));
        assert_eq!(peer_of(server[0]), Some(identity(1).public_key()));
        let Event::Connected { negotiated, .. } = client[0] else {
            unreachable!()
        };
        // The default preference, first choice.
        assert_eq!(
            (negotiated.version, negotiated.cipher),
            (2, Some(Cipher::Aes256Gcm))
        );
        assert_eq!(sim.endpoint_ref(c).peer_key(conn), Some(identity(2).public_key()));
        assert_eq!(sim.endpoint_ref(s).public_key(), identity(2).public_key());
    }
}

#[test]
fn an_ik_handshake_to_the_wrong_key_fails_with_a_typed_error() {
    let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
    let wrong = identity(3).public_key();
    let server_addr = sim.addr(s);
    sim.endpoint(c)
        .connect_to(Instant::ZERO, server_addr, wrong)
        .unwrap();
    let seen = watch(&mut sim, 2);
    assert_eq!(
        seen.failed(c),
        Some(HandshakeError::ServerKeyMismatch { expected: wrong })
    );
    assert!(seen.connected(s).is_empty());
    assert_eq!(
        sim.endpoint_ref(s).connection_count(),
        0,
        "the server kept nothing"
    );
}

#[test]
fn peer_policies_refuse_identities_on_either_side() {
    let only = |n: u64| PeerPolicy::Allow(BTreeSet::from([identity(n).public_key()]));
    // A server that allows only identity 9: an IK client is rejected at its first message;
    // an XX client learns it only after its last one, from a sealed CLOSE.
    for known in [true, false] {
        let server = Config {
            peer_policy: only(9),
            ..config(2)
        };
        let (mut sim, c, s) = pair(config(1), server, LinkConfig::default());
        start(&mut sim, c, s, known);
        let seen = watch(&mut sim, 3);
        assert!(
            seen.connected(s).is_empty(),
            "the server's application never hears of it"
        );
        if known {
            assert!(matches!(
                seen.failed(c),
                Some(HandshakeError::Rejected {
                    reason: RejectReason::REFUSED,
                    ..
                })
            ));
        } else {
            assert_eq!(
                seen.closed(c),
                vec![CloseReason::Peer {
                    code: CloseCode::Transport(TransportErrorCode::CONNECTION_REFUSED),
                    reason: weir_core::wire::Reason::from_static("identity refused").unwrap(),
                }]
            );
        }
        assert_eq!(sim.endpoint_ref(s).connection_count(), 0);
    }
    // A client that allows only identity 9 refuses the server it learned with XX.
    let client = Config {
        peer_policy: only(9),
        ..config(1)
    };
    let (mut sim, c, s) = pair(client, config(2), LinkConfig::default());
    sim.connect(c, s);
    assert_eq!(
        watch(&mut sim, 1).failed(c),
        Some(HandshakeError::PeerRefused {
            peer: identity(2).public_key()
        })
    );
    // A callback decides the same way an allow-list does.
    let decide = PeerPolicy::Decide(std::sync::Arc::new(|key: &weir_core::PublicKey| {
        if *key == identity(1).public_key() {
            weir_core::PeerDecision::Accept
        } else {
            weir_core::PeerDecision::Refuse
        }
    }));
    let (mut sim, c, s) = pair(
        config(1),
        Config {
            peer_policy: decide,
            ..config(2)
        },
        LinkConfig::default(),
    );
    let conn = sim.connect(c, s);
    assert_eq!(transfer(&mut sim, c, conn, 1000, Duration::from_secs(5)).0, 1000);
}

#[test]
fn the_server_picks_its_preferred_cipher_among_the_clients() {
    let server = Config {
        ciphers: vec![Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305],
        ..config(2)
    };
    let (mut sim, c, s) = pair(config(1), server, LinkConfig::default());
    let conn = sim.connect(c, s);
    let (delivered, seen) = transfer(&mut sim, c, conn, MIB, Duration::from_secs(30));
    assert_eq!(delivered, MIB);
    let Event::Connected { negotiated, .. } = seen.connected(c)[0] else {
        unreachable!()
    };
    assert_eq!(negotiated.cipher, Some(Cipher::Aes256Gcm));
    // No cipher in common: a typed rejection.
    let client = Config {
        ciphers: vec![Cipher::ChaCha20Poly1305],
        ..config(1)
    };
    let server = Config {
        ciphers: vec![Cipher::Aes256Gcm],
        ..config(2)
    };
    let (mut sim, c, s) = pair(client, server, LinkConfig::default());
    sim.connect(c, s);
    assert!(matches!(
        watch(&mut sim, 1).failed(c),
        Some(HandshakeError::Rejected {
            reason: RejectReason::NO_COMMON_CIPHER,
            ..
        })
    ));
}
