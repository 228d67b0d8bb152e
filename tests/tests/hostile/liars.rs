//! Liars: optimistic and trickle ACKs, ACKs of numbers left out, empty streams, receipt
//! runs. Peers that send to pin memory are in `pinning`.

use super::*;

#[test]
fn an_optimistic_acker_is_closed_with_a_typed_violation_and_then_banned() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let attacker = outsider(1);
    // Three attempts from one IP address (three ports): each acknowledges a packet the
    // server never sent.
    let mut peers: Vec<RawPeer> = (0..3)
        .map(|i| {
            RawPeer::new(
                &mut arena.sim,
                SocketAddr::new(attacker.ip(), 7000 + i as u16),
                100 + i,
            )
        })
        .collect();
    let mut tick = 0u32;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            tick += 1;
            // One attempt every second, the next from the same address.
            let i = (tick / 20) as usize;
            if tick % 20 == 1 && i < peers.len() {
                peers[i].hello(sim, server);
            }
            for p in peers.iter_mut() {
                p.poll(sim, server);
                if p.server_cid.is_some() && p.closed.is_none() {
                    p.send(sim, server, &[claim_all_up_to(1_000_000)]);
                }
            }
            tick < 80
        },
        ignore,
    );
    for p in peers.iter_mut() {
        p.poll(&mut arena.sim, server);
    }
    assert_survived("optimistic ACKs", &report, bound(&config, 0, 3));
    // Two connections closed for the lie, each told why; the third attempt was refused.
    assert_eq!(
        violations(&report.closed),
        vec![ViolationKind::UnsentPacketAcked; 2]
    );
    for p in &peers[..2] {
        assert_eq!(
            p.closed,
            Some(CloseCode::Transport(TransportErrorCode::PROTOCOL_VIOLATION))
        );
    }
    assert!(peers[2].server_cid.is_none(), "a banned address got a connection");
    assert!(report.stats.dropped_banned >= 1);
    assert_eq!(report.stats.violations, 2);
    assert_eq!(report.peak.addresses_tracked, 1);
}

/// An ACK frame claiming every packet number from 0 to `largest`.
fn claim_all_up_to(largest: u64) -> Frame {
    Frame::Ack(Ack {
        ranges: AckRanges::single(0, largest).unwrap(),
        ack_delay: 0,
        one_way_delay: 0,
    })
}

#[test]
fn an_acker_claiming_every_number_up_to_the_largest_it_saw_is_caught_at_a_number_left_out() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    arena.serve = 4 * MIB;
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(1), 100);
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(20),
        |sim, _| {
            peer.greet(sim, server);
            peer.poll(sim, server);
            // It never names a number the server has not reached (the check of spec §8's
            // first rule never fires): it only hides which packets it missed, so the server
            // never slows down or resends. Only the numbers the server left out show it.
            if let (Some(largest), None) = (peer.largest_received, peer.closed) {
                peer.send(sim, server, &[claim_all_up_to(largest)]);
            }
            peer.closed.is_none()
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("claims every number", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::UnsentPacketAcked);
    // Caught at the first number left out (the 16th to 31st packet) or, if the claim
    // covering it came after the next, at that one (at most 2^4 + 2^5 + 2^6 packets in).
    let largest = peer.largest_received.unwrap();
    println!("claims every number: closed after the server's packet {largest}");
    assert!(largest < 16 + 32 + 64, "{largest}");
}

/// A peer the server sends 16 MiB that acknowledges one packet in ten it receives (and the
/// newest, after 100 ms without one), with `max_retransmission_ratio` at `ratio`: the
/// server's report, its counters as the connection ended (if it did), and the bytes it sent
/// the peer.
fn trickle_acker(ratio: Option<u32>) -> (Report, Option<ConnectionStats>, u64) {
    let mut arena = Arena::new(Config {
        max_retransmission_ratio: ratio,
        ..server_config()
    });
    arena.serve = 16 * MIB;
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(1), 100);
    let mut quiet_ticks = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(20),
        |sim, _| {
            peer.greet(sim, server);
            peer.poll(sim, server);
            let fresh = std::mem::take(&mut peer.received);
            let mut chosen: Vec<u64> = fresh.iter().copied().filter(|pn| pn % 10 == 0).collect();
            quiet_ticks = if chosen.is_empty() { quiet_ticks + 1 } else { 0 };
            if quiet_ticks >= 5 {
                chosen.extend(fresh.iter().max());
                quiet_ticks = 0;
            }
            if peer.server_cid.is_some() && peer.closed.is_none() {
                for pn in chosen {
                    let ack = Ack {
                        ranges: AckRanges::single(pn, pn).unwrap(),
                        ack_delay: 0,
                        one_way_delay: 0,
                    };
                    peer.send(sim, server, &[Frame::Ack(ack)]);
                }
            }
            peer.closed.is_none()
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    let ended = report.closed.iter().find_map(|e| match e {
        Event::Closed {
            reason: CloseReason::TooLossy,
            stats,
            ..
        } => Some(**stats),
        _ => None,
    });
    (report, ended, peer.bytes_received)
}

#[test]
fn a_peer_acknowledging_a_trickle_ends_its_connection_within_the_retransmission_budget() {
    let ratio = 2;
    let (report, ended, sent) = trickle_acker(Some(ratio));
    let config = server_config();
    assert_survived("trickle acker", &report, bound(&config, 0, 2));
    let stats = ended.expect("closed as too lossy");
    println!("trickle acker: closed after {sent} bytes sent to it; {stats:?}");
    // Past the budget (the counters are the ones it closed with), by at most what one ACK
    // or timer declares lost: a window's worth.
    let budget = u64::from(ratio) * stats.bytes_acked + (64 << 10);
    assert!(stats.bytes_retransmitted > budget, "{stats:?}");
    assert!(
        stats.bytes_retransmitted <= budget + stats.congestion_window.max(64 << 10),
        "{stats:?}"
    );
    // Without the bound it goes on for the whole minute, resending what the peer ignores.
    let (_, unbounded, sent_unbounded) = trickle_acker(None);
    assert!(unbounded.is_none());
    println!("trickle acker without the bound: {sent_unbounded} bytes sent in 60 s");
    assert!(sent_unbounded > 2 * sent, "{sent_unbounded} vs {sent}");
}

#[test]
fn streams_opened_and_left_empty_hold_nothing_and_one_more_is_a_violation() {
    let mut arena = Arena::new(server_config());
    let config = arena.config();
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(2), 7);
    let limit = config.initial_concurrent_streams;
    let mut step = 0;
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(50),
        |sim, _| {
            peer.poll(sim, server);
            if step == 0 {
                peer.hello(sim, server);
                step = 1;
            } else if step == 1 && peer.server_cid.is_some() {
                // Opening the last allowed stream opens every one below it: 256 streams, each
                // announcing a total length, none carrying a byte.
                let open = StreamFrame {
                    id: StreamId::new(Side::Client, limit - 1),
                    offset: 0,
                    data: Bytes::new(),
                    fin: false,
                    total_len: Some(1 << 30),
                    label: None,
                    digest: None,
                };
                peer.send(sim, server, &[Frame::Stream(open)]);
                step = 2;
            } else if (2..40).contains(&step) {
                step += 1;
            } else if step == 40 {
                // Two seconds later: one stream beyond the limit.
                let beyond = StreamFrame {
                    id: StreamId::new(Side::Client, limit),
                    offset: 0,
                    data: Bytes::from_static(b"x"),
                    fin: false,
                    total_len: None,
                    label: None,
                    digest: None,
                };
                peer.send(sim, server, &[Frame::Stream(beyond)]);
                step = 41;
            }
            step < 41
        },
        ignore,
    );
    peer.poll(&mut arena.sim, server);
    assert_survived("empty streams", &report, bound(&config, 0, 2));
    assert_closed_for(&report, &peer, ViolationKind::StreamLimit);
}

/// Spec §4.17: a RECEIPT_RUN (here of 63 streams) is a frame type only where RECEIPT_RUNS
/// was negotiated (else closed as unknown, FRAME_ENCODING_ERROR); where it was, a run that
/// names the sender's own streams is closed as the RECEIPTs it stands for would be
/// (STREAM_STATE_ERROR), and a run of the receiver's streams it never opened changes
/// nothing.
#[test]
fn a_receipt_run_is_held_to_the_rules_of_the_receipts_it_stands_for() {
    let run = |side: Side| {
        Frame::ReceiptRun(ReceiptRun {
            first: StreamId::new(side, 0),
            also: weir_core::wire::varint::MAX,
            relays: 0,
        })
    };
    let cases = [
        (
            "not negotiated",
            Capabilities::ALL.without(Capabilities::RECEIPT_RUNS),
            run(Side::Server),
            Some(ViolationKind::Malformed {
                error: DecodeError::UnknownFrameType(weir_core::wire::frame_types::RECEIPT_RUN),
                code: TransportErrorCode::FRAME_ENCODING_ERROR,
            }),
        ),
        (
            "the sender's own streams",
            Capabilities::ALL,
            run(Side::Client),
            Some(ViolationKind::WrongStreamDirection),
        ),
        ("streams never opened", Capabilities::ALL, run(Side::Server), None),
    ];
    for (name, capabilities, frame, closed) in cases {
        let mut arena = Arena::new(Config {
            capabilities,
            ..server_config()
        });
        let config = arena.config();
        let server = arena.server;
        let mut peer = RawPeer::new(&mut arena.sim, outsider(3), 9);
        let mut sent = 0;
        let report = arena.run(
            Duration::from_secs(20),
            Duration::from_millis(50),
            |sim, _| {
                peer.greet(sim, server);
                peer.poll(sim, server);
                if peer.server_cid.is_some() && sent < 20 {
                    peer.send(sim, server, std::slice::from_ref(&frame));
                    sent += 1;
                }
                sent < 20
            },
            ignore,
        );
        peer.poll(&mut arena.sim, server);
        assert_eq!(sent, 20, "{name}: the peer got a connection");
        assert_survived(name, &report, bound(&config, 0, 2));
        match closed {
            Some(kind) => assert_closed_for(&report, &peer, kind),
            None => {
                assert_eq!(violations(&report.closed), vec![], "{name}");
                assert_eq!(peer.closed, None, "{name}");
            }
        }
    }
}
