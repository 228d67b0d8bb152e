//! The handshake matrix (spec/protocol.md §4.13-§4.16, §7) in weir-sim: version ranges,
//! capabilities, loss of each handshake datagram, duplicated HELLO, capacity, policy,
//! VERSION_REJECT and the handshake timeout. The encrypted handshake's last message (its
//! loss, and data that overtakes it) is in `noise_finish`.

use bytes::{Bytes, BytesMut};
use weir_core::time::{Duration, Instant};
use weir_core::wire::{Capabilities, Invariant, RejectReason, VersionRange, VersionReject};
use weir_core::{AcceptPolicy, AddressValidation, Config, Endpoint, Event, HandshakeError, Negotiated};
use weir_sim::{LinkConfig, NodeId, Sim};

/// What each side saw of one connection attempt.
#[derive(Debug, Default)]
struct Outcome {
    client: Vec<Event>,
    server: Vec<Event>,
}

impl Outcome {
    fn client_connected(&self) -> Option<Negotiated> {
        self.client.iter().find_map(|e| match e {
            Event::Connected { negotiated, .. } => Some(*negotiated),
            _ => None,
        })
    }

    fn server_connected(&self) -> usize {
        self.server
            .iter()
            .filter(|e| matches!(e, Event::Connected { .. }))
            .count()
    }

    fn client_failed(&self) -> Option<HandshakeError> {
        self.client.iter().find_map(|e| match e {
            Event::HandshakeFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    }
}

fn attempt(client: Config, server: Config, setup: impl FnOnce(&mut Sim, NodeId, NodeId)) -> (Sim, Outcome) {
    let mut sim = Sim::new(11);
    let c = sim.add_node(client);
    let s = sim.add_node(server);
    sim.link(c, s, LinkConfig::default());
    setup(&mut sim, c, s);
    sim.connect(c, s);
    let mut out = Outcome::default();
    sim.run_for(Duration::from_secs(15), |_, node, event| {
        if node == c {
            out.client.push(event);
        } else {
            out.server.push(event);
        }
    });
    (sim, out)
}

fn versions(min: u16, max: u16) -> VersionRange {
    VersionRange::new(min, max).unwrap()
}

#[test]
fn overlapping_ranges_pick_the_highest_common_version() {
    let client = Config {
        versions: versions(1, 2),
        ..Config::default()
    };
    let server = Config {
        versions: versions(1, 3),
        ..Config::default()
    };
    let (_, out) = attempt(client, server, |_, _, _| {});
    assert_eq!(out.client_connected().map(|n| n.version), Some(2));
    assert_eq!(out.server_connected(), 1);
}

#[test]
fn a_client_that_allows_plaintext_falls_back_to_version_1_with_a_version_1_server() {
    let client = Config {
        versions: VersionRange::ENCRYPTED_OR_PLAINTEXT,
        ..Config::default()
    };
    let server = Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    };
    let (sim, out) = attempt(client, server, |_, _, _| {});
    let n = out.client_connected().expect("connected in version 1");
    assert_eq!((n.version, n.cipher), (1, None));
    assert_eq!(out.server_connected(), 1);
    assert_eq!(sim.endpoint_ref(1).stats().version_rejects_sent, 1);
}

#[test]
fn a_version_1_client_gets_a_clean_version_rejection_from_an_encrypted_server() {
    let client = Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    };
    let (sim, out) = attempt(client, Config::default(), |_, _, _| {});
    assert_eq!(
        out.client_failed(),
        Some(HandshakeError::NoCommonVersion {
            ours: VersionRange::V1,
            server: VersionRange::ENCRYPTED
        })
    );
    assert!(
        out.server.is_empty(),
        "the server keeps no state: {:?}",
        out.server
    );
    assert_eq!(
        sim.stats().sent,
        2,
        "one HELLO, one VERSION_REJECT, nothing after"
    );
}

#[test]
fn disjoint_ranges_are_rejected_with_the_servers_range() {
    // Both read version 2 datagrams, but the server does not accept version 2.
    let client = Config {
        versions: versions(2, 3),
        ..Config::default()
    };
    let server = Config {
        versions: versions(3, 3),
        ..Config::default()
    };
    let (sim, out) = attempt(client, server, |_, _, _| {});
    assert_eq!(
        out.client_failed(),
        Some(HandshakeError::NoCommonVersion {
            ours: versions(2, 3),
            server: versions(3, 3)
        })
    );
    assert!(
        out.server.is_empty(),
        "the server keeps no state: {:?}",
        out.server
    );
    assert_eq!(
        sim.stats().sent,
        2,
        "one HELLO, one VERSION_REJECT, nothing after"
    );
}

#[test]
fn capabilities_are_intersected() {
    let client = Config {
        capabilities: Capabilities::STREAMING,
        ..Config::default()
    };
    let (_, out) = attempt(client, Config::default(), |_, _, _| {});
    let n = out.client_connected().expect("connected");
    assert!(n.streaming() && !n.piping());
    assert_eq!(n.capabilities, Capabilities::STREAMING);
}

#[test]
fn loss_of_each_handshake_datagram_is_recovered() {
    // client -> server: HELLO (1st), then the ACK that confirms (2nd datagram);
    // server -> client: ACCEPT (1st).
    for (from_client, n) in [(true, 1), (false, 1), (true, 2), (true, 1), (false, 2)] {
        let (sim, out) = attempt(Config::default(), Config::default(), |sim, c, s| {
            if from_client {
                sim.drop_nth(c, s, n);
            } else {
                sim.drop_nth(s, c, n);
            }
            // And the same datagram's retransmission, when testing the second copy.
            if n == 2 && !from_client {
                sim.drop_nth(s, c, 1);
            }
        });
        assert!(
            out.client_connected().is_some(),
            "drop #{n} from client={from_client}: {:?}",
            out.client
        );
        assert_eq!(
            out.server_connected(),
            1,
            "drop #{n} from client={from_client}: {:?}",
            out.server
        );
        assert!(sim.stats().lost >= 1);
    }
}

#[test]
fn a_duplicated_hello_makes_one_connection() {
    let link = LinkConfig {
        duplicate: 1.0,
        ..LinkConfig::default()
    };
    let (mut sim, out) = attempt(Config::default(), Config::default(), |sim, c, s| {
        sim.link(c, s, link)
    });
    assert!(out.client_connected().is_some());
    assert_eq!(out.server_connected(), 1);
    assert_eq!(sim.endpoint(1).connection_count(), 1);
}

#[test]
fn a_server_at_capacity_rejects() {
    let mut sim = Sim::new(3);
    let server = sim.add_node(Config {
        max_connections: 1,
        ..Config::default()
    });
    let a = sim.add_node(Config::default());
    let b = sim.add_node(Config::default());
    sim.connect(a, server);
    let mut failures = Vec::new();
    let mut connected = 0;
    sim.run_for(Duration::from_millis(500), |_, _, e| {
        if let Event::Connected { .. } = e {
            connected += 1
        }
    });
    sim.connect(b, server);
    sim.run_for(Duration::from_secs(2), |_, node, e| {
        if let Event::HandshakeFailed { reason, .. } = e {
            failures.push((node, reason));
        }
    });
    assert_eq!(connected, 2, "a and the server");
    assert_eq!(
        failures,
        vec![(
            b,
            HandshakeError::Rejected {
                reason: RejectReason::AT_CAPACITY,
                versions: VersionRange::ENCRYPTED
            }
        )]
    );
    assert_eq!(sim.endpoint(server).stats().rejected, 1);
}

#[test]
fn a_refusing_server_rejects_by_policy() {
    let server = Config {
        accept: AcceptPolicy::Refuse,
        ..Config::default()
    };
    let (_, out) = attempt(Config::default(), server, |_, _, _| {});
    assert_eq!(
        out.client_failed(),
        Some(HandshakeError::Rejected {
            reason: RejectReason::REFUSED,
            versions: VersionRange::ENCRYPTED
        })
    );
}

#[test]
fn an_unreachable_server_times_out() {
    let (sim, out) = attempt(Config::default(), Config::default(), |sim, c, s| {
        sim.partition(c, s, Instant::ZERO, Instant::from_micros(u64::MAX))
    });
    assert_eq!(out.client_failed(), Some(HandshakeError::TimedOut));
    // HELLO was sent with backoff up to `max_probe_interval` (2 s): 0, 0.3, 0.9, 2.1, 4.1,
    // 6.1 and 8.1 s, then the 10 s timeout.
    assert_eq!(sim.stats().partitioned, 7);
}

/// An outage over the first 4.6 s of a handshake: the HELLO's copies went 0.3, 0.6, 1.2,
/// 2.4 and 4.8 s apart, and the first to get through was the one at 9.3 s, 4.7 s after the
/// path came back (and a little more outage would have failed the handshake). Its copies
/// now go at most `max_probe_interval` (2 s) apart, as an established connection's probes
/// do: connected within that of the outage's end.
#[test]
fn a_handshake_finds_the_path_soon_after_an_outage() {
    let mut sim = Sim::new(11);
    let c = sim.add_node(Config::default());
    let s = sim.add_node(Config::default());
    sim.link(c, s, LinkConfig::default());
    let back = Instant::ZERO + Duration::from_millis(4_600);
    sim.partition(c, s, Instant::ZERO, back);
    let conn = sim.connect(c, s);
    let up = sim.run_until(
        Instant::ZERO + Duration::from_secs(15),
        |_, _, _| {},
        |sim| sim.endpoint_ref(c).is_established(conn),
    );
    assert!(up, "connected");
    let after = sim.now().saturating_duration_since(back);
    println!("connected {after:?} after the outage");
    let within = Config::default().max_probe_interval + Duration::from_millis(100);
    assert!(after <= within, "connected {after:?} after the outage");
}

#[test]
fn version_reject_fails_the_attempt_with_the_servers_versions() {
    // Drive two endpoints by hand: the server's answer to an unreadable version is forged
    // from the client's real HELLO.
    let mut client = Endpoint::new(Config::default(), 1);
    let server_addr = "10.0.0.2:4000".parse().unwrap();
    let conn = client.connect(Instant::ZERO, server_addr).unwrap();
    let mut buf = vec![0u8; 2048];
    let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let hello = Invariant::parse(&buf[..t.len]).unwrap();
    let reject = VersionReject {
        dcid: hello.scid.unwrap(),
        scid: hello.dcid,
        versions: smallvec::smallvec![VersionRange::new(5, 6).unwrap()],
    };
    let len = reject.encode(&mut buf).unwrap();
    client.handle_datagram(Instant::from_micros(10), server_addr, BytesMut::from(&buf[..len]));
    assert_eq!(
        client.poll_event(),
        Some(Event::HandshakeFailed {
            conn,
            reason: HandshakeError::NoCommonVersion {
                ours: VersionRange::ENCRYPTED,
                server: VersionRange::new(5, 6).unwrap()
            }
        })
    );
    assert_eq!(client.connection_count(), 0);
}

#[test]
fn a_server_answers_an_unreadable_version_with_version_reject() {
    let mut server = Endpoint::new(Config::default(), 2);
    let from = "10.0.0.1:4000".parse().unwrap();
    // A 1200-byte long-header datagram of version 9.
    let mut d = vec![0x00, 0x09, 0x80];
    d.extend_from_slice(&[1; 8]);
    d.extend_from_slice(&[2; 8]);
    d.resize(1200, 0);
    server.handle_datagram(Instant::ZERO, from, BytesMut::from(&d[..]));
    let mut buf = vec![0u8; 2048];
    let t = server.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    assert_eq!(t.destination, from);
    assert!(t.len < 1200 / 3, "no amplification: {} bytes", t.len);
    let vr = VersionReject::decode(Bytes::copy_from_slice(&buf[..t.len])).unwrap();
    assert_eq!((vr.dcid.0, vr.scid.0), ([2; 8], [1; 8]));
    assert_eq!(&vr.versions[..], &[VersionRange::ENCRYPTED]);
    // A short one earns nothing.
    d.truncate(600);
    server.handle_datagram(Instant::ZERO, from, BytesMut::from(&d[..]));
    assert!(server.poll_transmit(Instant::ZERO, &mut buf).is_none());
    assert_eq!(server.connection_count(), 0);
}

// Found by the `handshake` fuzz target: a data packet that overtook the ACCEPT (here, an
// ACK of a packet number the client never sent) was applied to the connection still in its
// handshake, which closed it as a protocol violation; the ACCEPT then found nothing to
// complete.
#[test]
fn a_data_packet_that_overtakes_the_accept_is_dropped() {
    use weir_core::wire::{encode_packet, Ack, AckRanges, Frame, Header, PacketKind, PacketNumberLen};
    // Version 1: the forged data packet needs no keys.
    let v1 = Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    };
    let mut client = Endpoint::new(v1.clone(), 1);
    let mut server = Endpoint::new(v1, 2);
    let (client_addr, server_addr) = ("10.0.0.1:4000".parse().unwrap(), "10.0.0.2:4000".parse().unwrap());
    let conn = client.connect(Instant::ZERO, server_addr).unwrap();
    let mut buf = vec![0u8; 2048];
    let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let hello = Bytes::copy_from_slice(&buf[..t.len]);
    let header = Header {
        version: weir_core::wire::VERSION_1,
        key_phase: weir_core::wire::KeyPhase::Zero,
        kind: PacketKind::Data,
        dcid: Invariant::parse(&hello).unwrap().scid.unwrap(),
        number: 0,
        number_len: PacketNumberLen::Four,
        timestamp: 0,
    };
    let ack = Frame::Ack(Ack {
        ranges: AckRanges::single(5, 5).unwrap(),
        ack_delay: 0,
        one_way_delay: 0,
    });
    let len = encode_packet(&header, &[ack], &mut buf).unwrap();
    client.handle_datagram(Instant::from_micros(5), server_addr, BytesMut::from(&buf[..len]));
    assert_eq!(client.poll_event(), None, "nothing happened to the attempt");
    server.handle_datagram(Instant::from_micros(10), client_addr, hello.into());
    let t = server.poll_transmit(Instant::from_micros(10), &mut buf).unwrap();
    client.handle_datagram(
        Instant::from_micros(20),
        server_addr,
        BytesMut::from(&buf[..t.len]),
    );
    assert!(matches!(client.poll_event(), Some(Event::Connected { conn: c, .. }) if c == conn));
}

/// Issue 30, item 7: a connection's slot is reused as soon as it is gone, even while its
/// last event waits to be polled, but the new connection's handle is a new generation: the
/// old handle addresses nothing (`UnknownConnection`), never the newcomer. Before, both
/// were `#0`, and a call meant for the failed attempt reached the new one.
#[test]
fn a_stale_handle_never_addresses_the_connection_that_reused_its_slot() {
    let config = Config {
        handshake_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let mut client = Endpoint::new(config, 1);
    let server: std::net::SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let old = client.connect(Instant::ZERO, server).unwrap();
    // No answer: the attempt times out, and its event waits, unpolled.
    let mut buf = vec![0u8; 2048];
    let mut now = Instant::ZERO;
    while client.connection_count() > 0 {
        while client.poll_transmit(now, &mut buf).is_some() {}
        now = client.poll_timeout().unwrap();
        client.handle_timeout(now);
    }
    let new = client.connect(now, server).unwrap();
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new, old);
    assert_eq!(
        (old.to_string(), new.to_string()),
        ("#0".to_string(), "#0.1".to_string())
    );
    let reason = weir_core::wire::Reason::from_static("stale").unwrap();
    assert_eq!(
        client.close(now, old, 0, reason.clone()),
        Err(weir_core::ApiError::UnknownConnection)
    );
    assert!(!client.is_established(old) && client.connection_stats(old).is_none());
    assert!(
        client.connection_stats(new).is_some(),
        "the new attempt is untouched"
    );
    assert!(matches!(
        client.poll_event(),
        Some(Event::HandshakeFailed { conn, reason: HandshakeError::TimedOut }) if conn == old
    ));
    assert_eq!(client.close(now, new, 0, reason), Ok(()));
}

/// A server whose answers were all lost stops answering once its handshake timeout has
/// passed. A copy of the HELLO that reaches it after that asks for an ACK that only an
/// ACCEPT could carry: none is owed then, so no timer of the server is left due. Before, the
/// ACK's deadline stayed in the past and the server's timer fired at every call for ever, a
/// busy loop in any driver (fuzz/findings/pair.unanswerable-hello-ack).
#[test]
fn a_hello_after_the_server_stopped_answering_leaves_no_timer_due() {
    let config = Config {
        versions: VersionRange::V1,
        ..Config::default()
    };
    let (c, s) = ("10.0.0.1:4433".parse().unwrap(), "10.0.0.2:4433".parse().unwrap());
    let mut client = Endpoint::new(config.clone(), 1);
    let mut server = Endpoint::new(config, 2);
    let mut buf = vec![0u8; 2048];
    let mut now = Instant::ZERO;
    client.connect(now, s).unwrap();
    // The client's HELLOs: the first reaches the server, a later copy is held back.
    let mut hellos = Vec::new();
    let step = Duration::from_millis(50);
    while now < Instant::ZERO + Duration::from_secs(11) {
        for ep in [&mut client, &mut server] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            hellos.push(BytesMut::from(&buf[..t.len]));
            if hellos.len() == 1 {
                server.handle_datagram(now, c, hellos[0].clone());
            }
        }
        // Every answer of the server is lost.
        while server.poll_transmit(now, &mut buf).is_some() {}
        now += step;
    }
    assert!(hellos.len() >= 2, "the client sent its HELLO again");
    assert_eq!(server.connection_count(), 1, "the server still holds the attempt");
    server.handle_datagram(now, c, hellos[1].clone());
    while server.poll_transmit(now, &mut buf).is_some() {}
    // Past the acknowledgement delay, every due timer fired: none may still be due.
    now += Duration::from_millis(100);
    if server.poll_timeout().is_some_and(|t| t <= now) {
        server.handle_timeout(now);
        while server.poll_transmit(now, &mut buf).is_some() {}
    }
    let next = server.poll_timeout();
    assert!(
        next.is_none_or(|t| t > now),
        "a timer left due at {now:?}: {next:?}"
    );
}

/// The handshake's round trip is each side's first RTT sample (spec §8, Loss and
/// retransmission): a client's from its HELLO to the answer, a server's from its answer to
/// the client's confirmation, which goes the moment the answer is read (in version 1 too:
/// the ACK of the ACCEPT). Without it a connection paced its first exchanges, and set its
/// first probe timeout, on the initial RTT of 100 ms whatever the path. A message sent
/// twice gives no sample (Karn's rule: which copy was answered?). Measured on a 40 ms
/// path: 40 ms.
#[test]
fn the_handshake_is_each_sides_first_round_trip_sample() {
    let initial = Config::default().initial_rtt;
    let path = Duration::from_millis(40);
    let plaintext = Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    };
    let retrying = Config {
        address_validation: AddressValidation::Always,
        ..Config::default()
    };
    #[derive(PartialEq)]
    enum Lost {
        Nothing,
        Hello,
        Answer,
    }
    // (case, configuration, the datagram lost, client's RTT, server's RTT); IK names the key.
    let cases = [
        ("XX", Config::default(), Lost::Nothing, path, path),
        ("IK", Config::default(), Lost::Nothing, path, path),
        ("HELLO resent", Config::default(), Lost::Hello, initial, path),
        ("answer resent", Config::default(), Lost::Answer, initial, initial),
        ("version 1", plaintext, Lost::Nothing, path, path),
        // The HELLO with the RETRY's token is a new message: it went once.
        ("RETRY", retrying, Lost::Nothing, path, path),
    ];
    for (case, config, lost, client_rtt, server_rtt) in cases {
        let mut sim = Sim::new(5);
        let c = sim.add_node(config.clone());
        let s = sim.add_node(config);
        sim.link(
            c,
            s,
            LinkConfig {
                delay: Duration::from_millis(20),
                ..LinkConfig::default()
            },
        );
        match lost {
            Lost::Nothing => {}
            Lost::Hello => sim.drop_nth(c, s, 1),
            Lost::Answer => sim.drop_nth(s, c, 1),
        }
        if case == "IK" {
            let (key, addr, now) = (sim.endpoint_ref(s).public_key(), sim.addr(s), sim.now());
            sim.endpoint(c).connect_to(now, addr, key).unwrap();
        } else {
            sim.connect(c, s);
        }
        let (Some(cc), Some(sc)) = sim.run_until_connected(c, s) else {
            panic!("{case}: not connected");
        };
        let rtt = |node: NodeId, conn| {
            sim.endpoint_ref(node)
                .connection_stats(conn)
                .unwrap()
                .smoothed_rtt
        };
        // Both connected: no ACK of a data packet has come back to either side yet.
        assert_eq!(rtt(c, cc), client_rtt, "{case}: the client's");
        assert_eq!(rtt(s, sc), server_rtt, "{case}: the server's");
    }
}
