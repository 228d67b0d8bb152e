//! Forgery and secrets: forged plaintext and downgrades, peer policies against plaintext,
//! seeds, wiped keys, replayed IK HELLOs.

use super::tampering::rewrite_hello;
use super::*;

/// The connection id of the first data packet on a tapped link.
fn data_dcid(sim: &mut Sim, from: NodeId, to: NodeId) -> ConnectionId {
    sim.take_tapped(from, to)
        .iter()
        .filter_map(|d| Invariant::parse(d).ok())
        .find(|i| i.scid.is_none())
        .map(|i| i.dcid)
        .expect("a data packet went by")
}

/// Version 1 datagrams (plaintext, a valid CRC), forged by anyone who saw a connection id
/// in clear: a CLOSE, an acknowledgement of packets never sent, a frame that does not
/// decode.
fn forgeries(dcid: ConnectionId) -> Vec<Bytes> {
    let frames = [
        Frame::Close(Close {
            code: CloseCode::Transport(TransportErrorCode::PROTOCOL_VIOLATION),
            reason: Default::default(),
        }),
        Frame::Ping,
    ];
    let header = |number| Header {
        version: VERSION_1,
        kind: PacketKind::Data,
        dcid,
        number,
        number_len: PacketNumberLen::Four,
        timestamp: 0,
        key_phase: KeyPhase::Zero,
    };
    let mut out = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let mut buf = vec![0u8; 1500];
        let len = encode_packet(&header(1_000 + i as u64), std::slice::from_ref(frame), &mut buf).unwrap();
        buf.truncate(len);
        out.push(Bytes::from(buf));
    }
    // An unknown frame type, the CRC fixed over it.
    let mut buf = vec![0u8; 1500];
    let len = encode_packet(&header(2_000), &[Frame::Ping], &mut buf).unwrap();
    buf.truncate(len);
    let at = header(2_000).encoded_len();
    buf[at] = 0x3f;
    reseal(&mut buf, None);
    out.push(Bytes::from(buf));
    out
}

/// Security round 2, item 1: datagrams that do not authenticate, in the version 1 format,
/// sent to both ends of an established version 2 connection from each other's address,
/// change nothing: no close, no violation charged to the honest peer, no ban; they are
/// counted as unauthenticated, and the transfer goes on.
#[test]
fn forged_plaintext_datagrams_do_not_touch_an_encrypted_connection() {
    let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
    sim.tap(c, s);
    sim.tap(s, c);
    let conn = sim.connect(c, s);
    let (delivered, _) = transfer(&mut sim, c, conn, MIB / 4, Duration::from_secs(30));
    assert_eq!(delivered, MIB / 4);
    let (to_server, to_client) = (data_dcid(&mut sim, c, s), data_dcid(&mut sim, s, c));
    let (client_addr, server_addr) = (sim.addr(c), sim.addr(s));
    for round in 0..3 {
        for d in forgeries(to_server) {
            sim.inject(client_addr, s, d);
        }
        for d in forgeries(to_client) {
            sim.inject(server_addr, c, d);
        }
        let seen = watch(&mut sim, 1);
        assert!(
            seen.closed(c).is_empty() && seen.closed(s).is_empty(),
            "round {round}: {:?}",
            seen.events
        );
    }
    for n in [c, s] {
        let st = sim.endpoint_ref(n).stats();
        assert_eq!(st.violations, 0, "node {n}: {st:?}");
        assert!(st.dropped_unauthenticated >= 9, "node {n}: {st:?}");
    }
    // And the connection still carries data.
    let msg = Bytes::from(vec![5u8; 100_000]);
    sim.endpoint(c).send_message(conn, None, msg.clone()).unwrap();
    let got = RefCell::new(None);
    let until = sim.now() + Duration::from_secs(10);
    sim.run_until(
        until,
        |sim, node, e| {
            if let (true, Event::StreamReadable { conn, stream }) = (node == s, e) {
                if let Ok(weir_core::Read::Data { bytes, .. }) =
                    sim.endpoint(s).read_message(conn, stream, MIB)
                {
                    *got.borrow_mut() = Some(bytes);
                }
            }
        },
        |_| got.borrow().is_some(),
    );
    assert_eq!(got.into_inner(), Some(msg));
}

/// A VERSION_REJECT saying the server speaks only version 1, forged from the client's real
/// HELLO (anyone who sees it can: it is unauthenticated and the ids are in clear), sent to
/// a client whose range allows version 1. Returns the client's first event.
fn forged_downgrade(client_config: Config, named: Option<weir_core::PublicKey>) -> Option<Event> {
    let mut client = weir_core::Endpoint::new(client_config, 1);
    let server_addr = "10.0.0.2:4000".parse().unwrap();
    match named {
        Some(key) => client.connect_to(Instant::ZERO, server_addr, key),
        None => client.connect(Instant::ZERO, server_addr),
    }
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let hello = Invariant::parse(&buf[..t.len]).unwrap();
    assert_eq!(hello.version, 2, "the first HELLO is in version 2");
    let reject = weir_core::wire::VersionReject {
        dcid: hello.scid.unwrap(),
        scid: hello.dcid,
        versions: smallvec::smallvec![VersionRange::UNPROTECTED],
    };
    let len = reject.encode(&mut buf).unwrap();
    client.handle_datagram(
        Instant::from_micros(10),
        server_addr,
        bytes::BytesMut::from(&buf[..len]),
    );
    let event = client.poll_event();
    if event.is_none() {
        // It fell back: its next HELLO is plaintext.
        let t = client.poll_transmit(Instant::from_micros(10), &mut buf).unwrap();
        assert_eq!(Invariant::parse(&buf[..t.len]).unwrap().version, 1);
    }
    event
}

/// Issue 30, item 6: a client that named the server's key, or judges identities with a
/// peer policy, never falls back to plaintext on a forged VERSION_REJECT: the attempt fails
/// with `DowngradeRefused`. (Before, it started over in version 1 and reported `Connected`
/// to whoever answered.) A client that asks for neither still falls back, as its range
/// allows: ENCRYPTED_OR_PLAINTEXT says so.
#[test]
fn a_forged_version_reject_cannot_downgrade_a_client_that_must_prove_the_server() {
    let both = Config {
        versions: VersionRange::ENCRYPTED_OR_PLAINTEXT,
        ..config(1)
    };
    let refused = |event: Option<Event>| {
        matches!(
            event,
            Some(Event::HandshakeFailed {
                reason: HandshakeError::DowngradeRefused {
                    server: VersionRange::UNPROTECTED
                },
                ..
            })
        )
    };
    assert!(refused(forged_downgrade(
        both.clone(),
        Some(identity(2).public_key())
    )));
    let judging = Config {
        peer_policy: PeerPolicy::Allow(BTreeSet::from([identity(2).public_key()])),
        ..both.clone()
    };
    assert!(refused(forged_downgrade(judging, None)));
    assert_eq!(
        forged_downgrade(both, None),
        None,
        "no identity asked for: it falls back"
    );
}

/// Issue 30, item 6: a server with a peer policy refuses version 1 clients (REJECT
/// REFUSED), which prove no identity; before, a plaintext client bypassed its allow list.
/// And a key cannot be named on an endpoint without version 2.
#[test]
fn a_server_with_a_peer_policy_refuses_plaintext_clients() {
    let server = Config {
        versions: VersionRange::ENCRYPTED_OR_PLAINTEXT,
        peer_policy: PeerPolicy::Allow(BTreeSet::from([identity(1).public_key()])),
        ..config(2)
    };
    let plain = Config {
        versions: VersionRange::UNPROTECTED,
        ..config(1)
    };
    let (mut sim, c, s) = pair(plain.clone(), server, LinkConfig::default());
    sim.connect(c, s);
    let seen = watch(&mut sim, 3);
    assert!(matches!(
        seen.failed(c),
        Some(HandshakeError::Rejected {
            reason: RejectReason::REFUSED,
            ..
        })
    ));
    assert!(seen.connected(s).is_empty());
    assert_eq!(sim.endpoint_ref(s).connection_count(), 0);
    let mut client = weir_core::Endpoint::new(plain, 3);
    let to = "10.0.0.2:4000".parse().unwrap();
    assert_eq!(
        client.connect_to(Instant::ZERO, to, identity(2).public_key()),
        Err(weir_core::ApiError::IdentityNeedsEncryption)
    );
}

/// The first HELLO an endpoint made with `seed` (and `fresh` entropy, if any) sends: its
/// connection id and the ephemeral public key its Noise message starts with.
fn first_hello(seed: u64, fresh: Option<[u8; 32]>) -> (ConnectionId, Vec<u8>) {
    let mut ep = weir_core::Endpoint::new(config(1), seed);
    if let Some(fresh) = fresh {
        ep.add_entropy(&fresh);
    }
    ep.connect(Instant::ZERO, "10.0.0.2:4000".parse().unwrap())
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let t = ep.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let packet = weir_core::wire::Packet::decode(Bytes::copy_from_slice(&buf[..t.len]), None).unwrap();
    let scid = match packet.header.kind {
        PacketKind::Handshake { scid } => scid,
        other => panic!("{other:?}"),
    };
    let ephemeral = packet
        .frames()
        .find_map(|f| match f {
            Frame::NoiseHello(n) => Some(n.message[..32].to_vec()),
            _ => None,
        })
        .unwrap();
    (scid, ephemeral)
}

/// Issue 30, item 5: whoever learns an endpoint's seed cannot compute the ephemeral keys of
/// its handshakes, or its connection ids, once fresh entropy was mixed in (the adapters mix
/// 32 bytes from the operating system when they bind). Before, an endpoint rebuilt from the
/// seed sent the very same ephemeral key, so a recorded session could be decrypted.
#[test]
fn a_stolen_seed_does_not_give_the_ephemeral_keys() {
    let real = first_hello(5, Some([0xa5; 32]));
    let rebuilt = first_hello(5, None);
    assert_ne!(real.1, rebuilt.1, "the ephemeral key follows from the seed");
    assert_ne!(real.0, rebuilt.0, "the connection id follows from the seed");
    // Without fresh bytes, the run is the seed's alone: a simulation stays reproducible.
    assert_eq!(first_hello(5, None), rebuilt);
    assert_eq!(first_hello(5, Some([0xa5; 32])), real);
}

/// Whether the bytes of `value`, once its destructor ran in place, still hold `secret`.
fn secret_left_after_drop<T>(value: T, secret: &[u8]) -> bool {
    let mut slot = std::mem::ManuallyDrop::new(value);
    // SAFETY: `slot` is dropped once, here, and never used as a `T` again; its bytes stay
    // allocated (on this frame) and are only read as plain bytes below.
    unsafe { std::mem::ManuallyDrop::drop(&mut slot) };
    let len = std::mem::size_of::<T>();
    // SAFETY: reads `len` initialised bytes of the place `slot` occupies.
    let bytes = unsafe { std::slice::from_raw_parts((&raw const slot).cast::<u8>(), len) };
    bytes.windows(secret.len()).any(|w| w == secret)
}

/// Issue 30, item 11: an identity's and a seed's secret bytes are wiped when they are
/// dropped (zeroize), so a freed key does not linger in memory to be read later. (The
/// packet keys' secrets, the handshake's output and the RETRY master key are wiped the
/// same way; ring's AES key schedules and hmac's keyed states have no wipe and are freed.)
#[test]
fn secret_keys_are_wiped_when_dropped() {
    // X25519 clamping changes the first and last byte only: the 30 between stay.
    let identity = Identity::from_secret([0x42; 32]);
    assert!(!secret_left_after_drop(identity, &[0x42; 30]));
    let seed = Seed::from_bytes([0x37; 32]);
    assert!(!secret_left_after_drop(seed, &[0x37; 30]));
    // The check sees a secret that is not wiped: a plain array keeps its bytes.
    assert!(secret_left_after_drop([0x37u8; 32], &[0x37; 30]));
}

/// Issue 30, item 9: an IK HELLO captured and replayed from elsewhere makes the server start
/// a connection (the HELLO authenticates the client's key, but not that the sender holds
/// it), and that half-open connection reports no peer key: the key is reported once the
/// client proved possession in this handshake (its first packet under the new keys).
/// Before, `peer_key` named the victim's identity for the replayer's connection.
#[test]
fn a_replayed_ik_hello_is_not_reported_as_the_client_s_identity() {
    let mut client = weir_core::Endpoint::new(config(1), 1);
    let mut server = weir_core::Endpoint::new(config(2), 2);
    let server_addr: std::net::SocketAddr = "10.0.0.2:4000".parse().unwrap();
    client
        .connect_to(Instant::ZERO, server_addr, identity(2).public_key())
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let t = client.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let hello = bytes::BytesMut::from(&buf[..t.len]);
    // The replayer sends the captured HELLO from its own address.
    let replayer: std::net::SocketAddr = "10.9.9.9:5000".parse().unwrap();
    server.handle_datagram(Instant::from_micros(10), replayer, hello);
    let half_open: Vec<ConnectionHandle> = server.connections().collect();
    assert_eq!(half_open.len(), 1, "the HELLO opened a connection");
    assert_eq!(server.remote_address(half_open[0]), Some(replayer));
    assert_eq!(server.peer_key(half_open[0]), None);
    assert!(server.poll_event().is_none(), "no Connected for a replay");
    // The genuine exchange: once the client's first packet under the keys arrives, the
    // key is reported.
    let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
    let conn = start(&mut sim, c, s, true);
    let seen = watch(&mut sim, 2);
    assert_eq!(seen.connected(s).len(), 1);
    let on_server = sim.endpoint_ref(s).connections().next().unwrap();
    assert_eq!(
        sim.endpoint_ref(s).peer_key(on_server),
        Some(identity(1).public_key())
    );
    assert_eq!(sim.endpoint_ref(c).peer_key(conn), Some(identity(2).public_key()));
}

/// Issue 30, item 8: a man in the middle alters the first NOISE_HELLO only (its
/// capabilities), then lets the copies through. The server's answer to the altered HELLO
/// does not open at the client; the genuine copy that follows is another HELLO to the
/// server, not a copy of the altered one, so it gets an answer of its own and the
/// handshake completes. Before, the server took the genuine copies for copies of the
/// altered HELLO and sent the same unopenable answer again, and the client failed at its
/// handshake timeout. (One that alters every copy still ends the attempt with
/// `AuthenticationFailed` at the timeout: see the test above.)
#[test]
fn a_hello_altered_once_on_the_way_still_connects() {
    let (mut sim, c, s) = pair(config(1), config(2), LinkConfig::default());
    let mut altered = 0;
    // PIPING cleared in the capabilities' low byte (tampering.rs says where they are).
    let mut once = rewrite_hello(30, |b| b & !0x2);
    sim.intercept(c, s, move |d| {
        if altered == 0 && d.len() >= 1200 && d[0..2] == [0, 2] && d[2] & 0x80 != 0 && d[24] == 0x24 {
            altered += 1;
            return once(d);
        }
        true
    });
    let conn = sim.connect(c, s);
    let (delivered, seen) = transfer(&mut sim, c, conn, 1000, Duration::from_secs(8));
    assert_eq!(delivered, 1000, "{:?}", seen.failed(c));
    assert_eq!(seen.connected(c).len(), 1);
    assert!(sim.stats().intercepted > 0);
}
