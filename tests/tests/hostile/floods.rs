//! Floods: spoofed and garbage HELLOs, rotated addresses, garbage from many addresses.

use super::*;

#[test]
fn a_hundred_thousand_spoofed_hellos_get_retries_and_hold_no_state() {
    spoofed_hellos("spoofed HELLOs", server_config(), hello(0x5eed, Bytes::new()));
}

/// The same flood against an encrypted server (wire version 2): each admitted NOISE_HELLO
/// costs a Noise responder (two X25519 operations and its state), so admission must keep
/// them to the handshakes it lets through; the rest get a RETRY, a MAC each.
#[test]
fn a_hundred_thousand_spoofed_noise_hellos_cost_at_most_the_admitted_handshakes() {
    let config = Config {
        versions: VersionRange::ENCRYPTED,
        ..server_config()
    };
    spoofed_hellos("spoofed NOISE_HELLOs", config, noise_hello(0x5eed));
}

/// A NOISE_HELLO starting XX, from connection id `scid`: any 32 bytes make an ephemeral key
/// the server will compute with.
fn noise_hello(scid: u64) -> Bytes {
    noise_hello_with(scid, weir_core::wire::NoisePattern::Xx, &[0x42; 32])
}

/// A NOISE_HELLO of `pattern` whose first Noise message is `message`, from `scid`.
fn noise_hello_with(scid: u64, pattern: weir_core::wire::NoisePattern, message: &'static [u8]) -> Bytes {
    let hello = Frame::NoiseHello(Box::new(weir_core::wire::NoiseHello {
        hello: Hello {
            versions: VersionRange::ENCRYPTED,
            capabilities: Capabilities::ALL,
            token: Bytes::new(),
            params: TransportParams::default(),
        },
        pattern,
        ciphers: weir_core::wire::Ciphers::ALL,
        message: Bytes::from_static(message),
    }));
    first_datagram(weir_core::wire::VERSION_2, scid, &hello)
}

/// 100,000 copies of `datagram` from as many spoofed addresses in one second, while the
/// legitimate client (same versions as the server) sends its 10 MiB.
fn spoofed_hellos(name: &str, server: Config, datagram: Bytes) {
    const SPOOFED: u32 = 100_000;
    const PER_TICK: u32 = 1_000;
    let mut arena = Arena::new(server);
    let config = arena.config();
    let server = arena.server;
    let mut sent = 0;
    // 100,000 in one second of virtual time, while the legitimate client connects.
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            for _ in 0..PER_TICK.min(SPOOFED - sent) {
                sim.inject(outsider(sent), server, datagram.clone());
                sent += 1;
            }
            sent < SPOOFED
        },
        ignore,
    );
    let pending = match config.address_validation {
        AddressValidation::UnderLoad { pending } => pending as u64,
        _ => unreachable!("the default validates under load"),
    };
    // State for at most `pending` spoofed handshakes (plus the legitimate connection).
    assert_survived(name, &report, bound(&config, pending, 1));
    assert_eq!(sent, SPOOFED);
    assert!(report.peak.handshakes_pending as u64 <= pending + 1);
    assert!(report.stats.retries_sent >= u64::from(SPOOFED) - pending - 1);
    // Nothing sent to any spoofed address exceeds 3x the 1200 bytes it "sent".
    let sim = &arena.sim;
    let worst = (0..SPOOFED)
        .map(|i| sim.sent_outside(outsider(i)).1)
        .max()
        .unwrap();
    assert!(
        worst <= 3 * datagram.len() as u64,
        "{worst} bytes sent to one spoofed address"
    );
}

/// A NOISE_HELLO starting IK, from connection id `scid`, whose first message is garbage: the
/// server computes an X25519 with its ephemeral key before the encrypted static key fails to
/// open (REJECT KEY_MISMATCH).
fn garbage_ik_hello(scid: u64) -> Bytes {
    noise_hello_with(scid, weir_core::wire::NoisePattern::Ik, &[0x42; 96])
}

/// Issue 30, item 4: 100,000 garbage IK HELLOs from as many spoofed addresses in one second,
/// while the legitimate client sends its 10 MiB and 20 more weir clients connect. Each
/// garbage HELLO that reaches the handshake costs the server public-key work and fails it;
/// those now spend the handshake rate like any other, so the flood turns on address
/// validation, and the rest get a RETRY (a MAC) and cost nothing more. Before, failing
/// HELLOs never touched the rate: all 100,000 cost an X25519 and none was asked to
/// validate its address.
#[test]
fn a_flood_of_garbage_ik_hellos_is_held_to_the_handshake_rate() {
    const SPOOFED: u32 = 100_000;
    let mut arena = Arena::new(Config {
        versions: VersionRange::ENCRYPTED,
        ..server_config()
    });
    let config = arena.config();
    let server = arena.server;
    let clients: Vec<NodeId> = (0..20)
        .map(|_| {
            let n = arena.sim.add_node(Config {
                versions: VersionRange::ENCRYPTED,
                ..Config::default()
            });
            arena.sim.link(n, server, LinkConfig::default());
            n
        })
        .collect();
    let connected = std::cell::RefCell::new(Vec::new());
    let datagram = garbage_ik_hello(0x5eed);
    let mut sent = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, now| {
            if sent == 20_000 {
                // A fifth into the flood, the other clients connect.
                for &n in &clients {
                    sim.connect(n, server);
                }
            }
            for _ in 0..1_000.min(SPOOFED - sent) {
                sim.inject(outsider(sent), server, datagram.clone());
                sent += 1;
            }
            sent < SPOOFED || now < Instant::from_micros(1_500_000)
        },
        |sim, node, event| {
            if let Event::Connected { .. } = event {
                connected.borrow_mut().push((node, sim.now()));
            }
        },
    );
    let pending = match config.address_validation {
        AddressValidation::UnderLoad { pending } => pending as u64,
        _ => unreachable!("the default validates under load"),
    };
    assert_survived("garbage IK HELLOs", &report, bound(&config, pending, 21));
    let read = report.stats.noise_hellos_read;
    let last = connected.borrow().iter().map(|&(_, at)| at).max();
    println!(
        "{read} NOISE_HELLOs read of {SPOOFED} garbage and 21 genuine; {} RETRYs; {} of 20 clients connected, the last at {last:?} (they started at 0.2 s)",
        report.stats.retries_sent,
        connected.borrow().len()
    );
    // The rate's burst and its refill over the flood's second, and the genuine ones.
    let rate = u64::from(config.max_handshakes_per_second);
    assert!(read <= rate / 10 + rate * 2 + 21, "{read} read");
    assert!(
        report.stats.retries_sent + read >= u64::from(SPOOFED),
        "{:?}",
        report.stats
    );
    assert_eq!(connected.borrow().len(), 20, "every genuine client connected");
}

/// Issue 30, item 12: a host that rotates through the addresses of its IPv6 /64 (as any
/// host may, at will) is still one address to the per-address limit: 12 peers from one /64
/// get at most `max_connections_per_address` connections, the rest REJECT AT_CAPACITY, while
/// a peer in the next /64 connects. Before, each address counted apart, and one host could
/// take up to `max_connections`.
#[test]
fn addresses_rotated_within_one_ipv6_prefix_share_the_per_address_limit() {
    let mut arena = Arena::new(Config {
        max_connections_per_address: 4,
        ..server_config()
    });
    let server = arena.server;
    let v6 = |net: u16, host: u16| SocketAddr::from(([0x2001, 0xdb8, 0, net, host, 0, 0, 1], 4000));
    let mut peers: Vec<RawPeer> = (0..12u16)
        .map(|i| RawPeer::new(&mut arena.sim, v6(7, i + 1), 500 + u64::from(i)))
        .collect();
    let mut neighbour = RawPeer::new(&mut arena.sim, v6(8, 1), 600);
    let report = arena.run(
        Duration::from_secs(30),
        Duration::from_millis(10),
        |sim, now| {
            for p in peers.iter_mut().chain(std::iter::once(&mut neighbour)) {
                p.poll(sim, server);
                p.greet(sim, server);
            }
            now < Instant::from_micros(1_000_000)
        },
        ignore,
    );
    let connected = peers.iter().filter(|p| p.server_cid.is_some()).count();
    println!("one /64: {connected} of 12 connected; stats {:?}", report.stats);
    assert_eq!(connected, 4, "the /64 is one address");
    assert!(report.stats.rejected >= 8, "{:?}", report.stats);
    assert!(neighbour.server_cid.is_some(), "the next /64 is another address");
    assert!(report.done.is_some());
}

#[test]
fn garbage_from_ten_thousand_addresses_is_dropped_unanswered() {
    const SOURCES: u32 = 10_000;
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut round = 0u32;
    let mut injected = 0u64;
    // Ten datagrams of 1 to 1500 random bytes from each address, over a second.
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            for i in 0..SOURCES / 10 {
                let len = 1 + (next() % 1500) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                injected += len as u64;
                sim.inject(outsider((round % 10) * (SOURCES / 10) + i), server, bytes.into());
            }
            round += 1;
            round < 100
        },
        ignore,
    );
    assert_survived("garbage", &report, bound(&config, 0, 1));
    // Only what reads as a long header of an unknown version, at least 1200 bytes long, is
    // answered (VERSION_REJECT, spec §6), and far smaller than what came in.
    let sim = &arena.sim;
    let (answers, answered) = (0..SOURCES)
        .map(|i| sim.sent_outside(outsider(i)))
        .fold((0, 0), |(d, b), (dd, bb)| (d + dd, b + bb));
    assert_eq!(answers, report.stats.version_rejects_sent);
    assert!(
        answered * 10 < injected,
        "{answered} bytes answered to {injected} of garbage"
    );
    assert_eq!(report.peak.connections, 1);
}
