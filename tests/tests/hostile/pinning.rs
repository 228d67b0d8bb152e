//! Pinners: peers that send to hold the receiver's memory: a huge message a byte at a time,
//! tiny pieces with gaps, pieces sharing their datagrams across streams, oversized
//! messages, many connections against the endpoint's budget, a peer that never reads.

use super::*;

#[test]
fn a_four_gib_message_sent_a_byte_a_second_holds_nothing_extra() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(3), 9);
    let mut sent = 0u64;
    let report = arena.run(
        Duration::from_secs(120),
        Duration::from_secs(1),
        |sim, _| {
            peer.poll(sim, server);
            if peer.greet(sim, server) {
                return true;
            }
            let frame = on_stream_0(sent, b".", (sent == 0).then_some(4 << 30));
            if peer.send(sim, server, &[Frame::Stream(frame)]) {
                sent += 1;
            }
            sent < 60
        },
        ignore,
    );
    assert_survived("4 GiB at a byte a second", &report, bound(&config, 0, 2));
    assert_eq!(sent, 60);
    // Still connected (slow is not a violation), holding what it was sent and read: nothing.
    assert!(report.closed.is_empty(), "{:?}", report.closed);
    assert_eq!(peer.closed, None);
    let load = arena.sim.endpoint_ref(server).load();
    assert_eq!(load.bytes_received_unread, 0);
}

#[test]
fn tiny_pieces_with_gaps_pin_no_datagrams_and_pass_the_stream_budget() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(4), 11);
    // Every other byte, one per 1,200-byte datagram, so each held slice would keep its whole
    // datagram alive: byte 1, 3, 5, ... of one stream, byte 0 never sent.
    let mut sent = 0u64;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            peer.poll(sim, server);
            if peer.greet(sim, server) {
                return true;
            }
            for _ in 0..200 {
                let frame = on_stream_0(2 * sent + 1, b".", None);
                if !peer.send_padded(sim, server, &[Frame::Stream(frame)], 1200) {
                    break;
                }
                sent += 1;
            }
            peer.closed.is_none() && sent < 100_000
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("tiny pieces with gaps", &report, bound(&config, 0, 2));
    // The stream's receive budget (twice its 256 KiB window, each one-byte piece charged
    // about 130 bytes) closed it, long before its window (131,072 such bytes) was used up;
    // what was sent counts a few ticks' datagrams in flight when the close came.
    assert_closed_for(&report, &peer, ViolationKind::ReceiveBudget);
    let most = 2 * config.stream_receive_window / 128;
    assert!(
        (most / 2..most + 1000).contains(&sent),
        "{sent} sent, at most {most} held"
    );
}

/// One tick of the gapped-pieces attack: up to 50 datagrams of forty one-byte frames each,
/// round robin over `streams` streams, at odd offsets, so every byte is a separate piece and
/// none is readable. Counts the frames sent in `sent`; whether to go on.
fn send_gapped_pieces(
    peer: &mut RawPeer,
    sim: &mut Sim,
    server: NodeId,
    streams: u64,
    sent: &mut u64,
) -> bool {
    peer.poll(sim, server);
    if peer.greet(sim, server) {
        return true;
    }
    for _ in 0..50 {
        let frames: Vec<Frame> = (*sent..*sent + 40)
            .map(|i| {
                let mut f = on_stream_0(2 * (i / streams) + 1, b".", None);
                f.id = StreamId::new(Side::Client, i % streams);
                Frame::Stream(f)
            })
            .collect();
        if !peer.send(sim, server, &frames) {
            break;
        }
        *sent += 40;
    }
    peer.closed.is_none() && *sent < 2_000_000
}

#[test]
fn one_byte_pieces_with_gaps_on_every_stream_pin_at_most_the_receive_budget() {
    // Default windows: the connection's grows to 32 MiB, so a cap on pieces derived from the
    // largest window (what it was) let this attack pin about 25 MiB.
    let mut arena = Arena::new(Config {
        versions: VersionRange::UNPROTECTED,
        ..Config::default()
    });
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(6), 15);
    let streams = config.initial_concurrent_streams;
    let mut sent = 0u64;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| send_gapped_pieces(&mut peer, sim, server, streams, &mut sent),
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    // The legitimate client's connection as elsewhere (it reads all it gets), and the
    // attacker's at most its receive budget: twice the window it was given, 2 KiB for each
    // stream it may open, and 4 KiB.
    let budget = 2 * config.receive_window + streams * 2 * KIB + 4 * KIB;
    let legit = BASE + 2 * PER_CONNECTION + 2 * server_config().max_receive_window;
    assert_survived("one-byte pieces on every stream", &report, legit + budget);
    assert_closed_for(&report, &peer, ViolationKind::ReceiveBudget);
    assert!(
        budget <= 2 * MIB + 516 * KIB,
        "the default budget is {budget} bytes"
    );
}

/// The order [`pieces_sharing_their_datagrams`] sends each stream's pieces in, and what the
/// server's application does meanwhile.
#[derive(Clone, Copy, PartialEq)]
enum Sharing {
    /// Each stream's first piece last; the application reads what it can.
    FirstPiecesLast,
    /// In order; the application reads nothing of the attacker's connection.
    InOrderUnread,
}

/// What an honest sender does when its packets carry other frames too (DATAGRAM frames,
/// other streams): each STREAM frame a third of its 1,200-byte datagram. Seven streams of
/// 140 KiB, about 1 MiB of credit, within every window, sent in `order`. Returns the
/// report, the pieces sent before the last seven, and what the server held unread ten ticks
/// after those, and ten ticks after the last seven (each stream's first, or one more each).
fn pieces_sharing_their_datagrams(order: Sharing) -> (Report, u64, Vec<u64>) {
    static PIECE: [u8; 400] = [7; 400];
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(30), 130);
    if order == Sharing::InOrderUnread {
        arena.traffic.unread_from = Some(outsider(30));
    }
    let (streams, per_stream) = (7u64, 140 * KIB / 400);
    let tails = streams * per_stream;
    // Pieces sent; ticks since the last; what the server held unread ten ticks after the
    // tails, and ten ticks after the first pieces.
    let (mut next, mut quiet, mut held) = (0u64, 0, Vec::new());
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            peer.poll(sim, server);
            if peer.greet(sim, server) {
                return true;
            }
            if next == tails || next == tails + streams {
                quiet += 1;
                if quiet < 10 {
                    return true;
                }
                quiet = 0;
                held.push(sim.endpoint_ref(server).load().bytes_received_unread);
                if next == tails + streams {
                    return false;
                }
            }
            // FirstPiecesLast: pieces 1.. of every stream, round robin; then each stream's
            // first. InOrderUnread: every stream's pieces, round robin from the first.
            let end = if next < tails { tails } else { tails + streams };
            for _ in 0..100.min(end - next) {
                let (stream, piece) = match (order, next.checked_sub(tails)) {
                    (Sharing::FirstPiecesLast, None) => (next % streams, 1 + next / streams),
                    (Sharing::FirstPiecesLast, Some(first)) => (first, 0),
                    (Sharing::InOrderUnread, _) => (next % streams, next / streams),
                };
                let mut frame = on_stream_0(piece * 400, &PIECE, None);
                frame.id = StreamId::new(Side::Client, stream);
                if !peer.send_padded(sim, server, &[Frame::Stream(frame)], 1200) {
                    break;
                }
                next += 1;
            }
            peer.closed.is_none()
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    let name = match order {
        Sharing::FirstPiecesLast => "pieces sharing their datagrams",
        Sharing::InOrderUnread => "pieces sharing their datagrams, unread",
    };
    assert_survived(name, &report, bound(&config, 0, 2));
    assert!(report.closed.is_empty(), "{:?}", report.closed);
    assert_eq!(peer.closed, None);
    (report, tails, held)
}

#[test]
fn pieces_sharing_their_datagrams_on_many_streams_behind_gaps_are_copied_not_closed() {
    // Each stream missing its first piece, the application reading nothing it can not:
    // pieces behind a gap are copied, each at its own length (spec §10.3, "Small pieces"),
    // so together they stay within the connection's budget (2 MiB + 260 KiB). Held as
    // slices, each charged its whole datagram, they passed it and were compacted
    // (fuzz/findings/migration.receive-budget-honest-peer).
    let (_, tails, held) = pieces_sharing_their_datagrams(Sharing::FirstPiecesLast);
    // Every tail held until the first pieces came; then the server's application read it all
    // (the legitimate client's transfer, read as it comes, holds nothing between ticks).
    assert_eq!(held, [tails * 400, 0]);
}

#[test]
fn pieces_sharing_their_datagrams_on_many_streams_unread_are_compacted_not_closed() {
    // In order, the application reading none of it: held as slices, each stream stays within
    // its own budget (3.3 times its bytes: 460 KiB of 516 KiB) but together they pass the
    // connection's (2 MiB + 260 KiB): the server compacts them (spec §10.3, "Pressure")
    // rather than close an honest peer.
    let (_, tails, held) = pieces_sharing_their_datagrams(Sharing::InOrderUnread);
    // Everything held: the first `tails` pieces, then seven more (one more for each stream).
    assert_eq!(held, [tails * 400, (tails + 7) * 400]);
}

#[test]
fn gapped_pieces_from_many_connections_pin_at_most_the_endpoint_budget() {
    let total = 6 * MIB;
    let mut arena = Arena::new(Config {
        receive_buffer_total: total,
        max_connections: 10,
        ..server_config()
    });
    let server = arena.server;
    let mut peers: Vec<(RawPeer, u64)> = (0..8)
        .map(|i| {
            (
                RawPeer::new(&mut arena.sim, outsider(20 + i), 100 + u64::from(i)),
                0,
            )
        })
        .collect();
    // Fewer streams than a squeezed connection allows (one per 8 KiB of its window).
    let streams = 8;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(10),
        |sim, _| {
            let mut any = false;
            for (peer, sent) in peers.iter_mut() {
                any |= send_gapped_pieces(peer, sim, server, streams, sent);
            }
            any
        },
        ignore,
    );
    // Eight attackers and the legitimate client share the endpoint's budget: together they
    // never hold more, and each attacker is closed for passing its own.
    assert!(report.peak.receive_budgets <= total, "{:?}", report.peak);
    assert_survived(
        "gapped pieces from eight connections",
        &report,
        BASE + 9 * PER_CONNECTION + total,
    );
    assert_eq!(violations(&report.closed), vec![ViolationKind::ReceiveBudget; 8]);
}

#[test]
fn a_message_longer_than_allowed_is_refused_at_both_ends() {
    let limit = 16 * MIB;
    let mut arena = Arena::new(Config {
        max_message_len: Some(limit),
        ..server_config()
    });
    let config = arena.config();
    let (client, server) = (arena.client, arena.server);
    let mut peer = RawPeer::new(&mut arena.sim, outsider(5), 13);
    let mut step = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            peer.poll(sim, server);
            if step == 0 {
                peer.hello(sim, server);
                step = 1;
            } else if step == 1 {
                let frame = on_stream_0(0, b"x", Some(limit + 1));
                if peer.send(sim, server, &[Frame::Stream(frame)]) {
                    step = 2;
                }
            }
            step < 2
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("message too long", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::FinalSize);
    // A weir sender learned the limit in the handshake: refused before a byte goes out.
    let ep = arena.sim.endpoint(client);
    let conn = ep.connections().next().expect("the legitimate connection");
    let header = StreamHeader::default().with_total_len(limit + 1);
    assert_eq!(ep.open_stream(conn, header), Err(ApiError::MessageTooLong));
    let header = StreamHeader::default().with_total_len(limit);
    assert!(ep.open_stream(conn, header).is_ok());
}

#[test]
fn receive_budgets_add_up_to_the_endpoint_budget_and_leave_room_for_every_connection() {
    let budget = 4 * MIB;
    let mut arena = Arena::new(Config {
        receive_buffer_total: budget,
        max_connections: 8,
        ..server_config()
    });
    let server = arena.server;
    // Six more weir clients, once the legitimate transfer is under way.
    let others: Vec<NodeId> = (0..6)
        .map(|_| {
            let n = arena.sim.add_node(peer_config());
            arena.sim.link(n, server, LinkConfig::default());
            n
        })
        .collect();
    let failed = std::cell::RefCell::new(Vec::new());
    let mut started = false;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(100),
        |sim, now| {
            if !started && now >= Instant::from_micros(200_000) {
                for &n in &others {
                    sim.connect(n, server);
                }
                started = true;
            }
            now < Instant::from_micros(2_000_000)
        },
        |_, node, event| {
            if let Event::HandshakeFailed { reason, .. } = event {
                failed.borrow_mut().push((node, reason));
            }
        },
    );
    let failed = failed.into_inner();
    let load = arena.sim.endpoint_ref(server).load();
    println!("receive budget: {load:?}, failed {failed:?}");
    // The connections' budgets never added up past the endpoint's, whatever they wanted...
    assert!(report.peak.receive_budgets <= budget, "{:?}", report.peak);
    // ... so the heap stays under the budget, not a window per connection.
    assert_survived("receive budget", &report, BASE + 8 * PER_CONNECTION + budget);
    // The legitimate connection took 1 MiB and grew; the later ones got what was left, but
    // never less than the floor kept for each of the eight connections allowed.
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(load.connections, 7);
    assert!(load.receive_budgets > 3 * MIB, "{load:?}");
}

#[test]
fn a_peer_that_never_reads_stalls_only_its_own_connection() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    arena.serve = 64 * MIB;
    // A weir client that connects and then never reads what it is sent.
    let idler = arena.sim.add_node(peer_config());
    let server = arena.server;
    arena.sim.link(idler, server, LinkConfig::default());
    let mut connected = false;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(100),
        |sim, now| {
            if !connected && now >= Instant::from_micros(100_000) {
                sim.connect(idler, server);
                connected = true;
            }
            now < Instant::from_micros(20_000_000)
        },
        ignore,
    );
    assert_survived("never reads", &report, bound(&config, 0, 2));
    // The server's application wrote what its send buffer took and no more; the idle
    // reader holds no more than the window it granted.
    assert!(report.peak.bytes_unacknowledged <= config.send_buffer);
    let idle = arena.sim.endpoint_ref(idler);
    let conn = idle.connections().next().expect("the idle reader's connection");
    let (unread, _) = idle.buffered(conn).unwrap();
    assert!(
        unread > 0 && unread <= Config::default().max_receive_window,
        "{unread}"
    );
}
