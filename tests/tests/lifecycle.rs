//! Stream and connection lifecycles in weir-sim: reset and stop-sending in both directions,
//! graceful close with a code and reason, keepalive, and determinism (same seed, same run).

use std::cell::RefCell;

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::{CloseCode, Reason, StreamId};
use weir_core::{CloseReason, Config, ConnectionHandle, Event, Read, StreamHeader};
use weir_sim::{LinkConfig, NodeId, Sim};

/// Two endpoints of one configuration, connected over `link`: the sim, the client's and the
/// server's nodes, and each side's connection.
pub(crate) fn connected(
    seed: u64,
    config: Config,
    link: LinkConfig,
) -> (Sim, NodeId, NodeId, ConnectionHandle, ConnectionHandle) {
    let (sim, cc, sc) = Sim::connected_pair(seed, config.clone(), config, link);
    (sim, Sim::PAIR_CLIENT, Sim::PAIR_SERVER, cc, sc)
}

fn events(sim: &mut Sim, d: Duration) -> Vec<(NodeId, Event)> {
    let mut out = Vec::new();
    sim.run_for(d, |_, n, e| out.push((n, e)));
    out
}

#[test]
fn a_sender_reset_mid_transfer_reaches_the_receiver() {
    let (mut sim, c, s, cc, _) = connected(31, Config::default(), LinkConfig::default());
    let id = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
    sim.endpoint(c)
        .write(cc, id, Bytes::from(vec![1u8; 50_000]))
        .unwrap();
    sim.run_for(Duration::from_millis(15), |_, _, _| {});
    sim.endpoint(c).reset_stream(cc, id, 77).unwrap();
    let ev = events(&mut sim, Duration::from_secs(2));
    let reset = ev.iter().find_map(|(n, e)| match e {
        Event::StreamReset { stream, code, .. } if *n == s => Some((*stream, *code)),
        _ => None,
    });
    assert_eq!(reset, Some((id, 77)));
    let sc = ConnectionHandle::from_index(0);
    assert_eq!(
        sim.endpoint(s).read(sc, id, usize::MAX),
        Ok(Read::Reset { code: 77 })
    );
    // A stream reset is gone on both sides; writing to it is refused.
    assert!(sim.endpoint(c).write(cc, id, Bytes::from_static(b"x")).is_err());
}

/// A stream reset before any of it left is known to the receiver by its RESET_STREAM alone
/// (spec §4.5): it must still free its place among the peer's streams, or a sender that
/// abandons streams before writing (a cancelled request, a dropped libp2p substream) runs
/// out of streams. The application is never told of such a stream.
#[test]
fn streams_reset_before_they_sent_anything_free_their_place() {
    let config = Config {
        max_concurrent_streams: 4,
        ..Config::default()
    };
    let (mut sim, c, s, cc, sc) = connected(35, config, LinkConfig::default());
    let mut abandoned = Vec::new();
    for round in 0..12 {
        // Two abandoned, then one written: the written one's frame may open the abandoned
        // ones before their resets arrive, or after.
        for _ in 0..2 {
            let id = sim.endpoint(c).open_stream(cc, StreamHeader::default());
            let id = id.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            sim.endpoint(c).reset_stream(cc, id, 9).unwrap();
            abandoned.push(id);
        }
        let id = sim.endpoint(c).open_stream(cc, StreamHeader::default());
        let id = id.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let body = Bytes::from(format!("round {round}"));
        sim.endpoint(c).write(cc, id, body.clone()).unwrap();
        sim.endpoint(c).finish(cc, id).unwrap();
        let ev = events(&mut sim, Duration::from_millis(200));
        for (n, e) in &ev {
            if let Event::StreamOpened { stream, .. } | Event::StreamReset { stream, .. } = e {
                assert!(
                    *n != s || !abandoned.contains(stream),
                    "told of abandoned {stream:?}"
                );
            }
        }
        let accepted = sim.endpoint(s).accept_stream(sc).unwrap().map(|(got, _)| got);
        assert_eq!(accepted, Some(id), "round {round}");
        assert_eq!(
            sim.endpoint(s).read(sc, id, usize::MAX),
            Ok(Read::Data {
                bytes: body,
                offset: 0
            })
        );
        assert_eq!(sim.endpoint(s).read(sc, id, usize::MAX), Ok(Read::Finished));
    }
}

/// A receiver that stops a stream and closes the connection at once: its close lingers
/// until the STOP_SENDING went out and was acknowledged, so the sender learns the stream's
/// code before the close (spec §7). Before, a linger waited only for data, receipts and
/// packets in flight, and the still-queued STOP_SENDING was dropped with the CLOSE: `weir
/// recv --once` refusing a file then told its sender only "closed by the peer" now and
/// then (the CLI test `an_existing_file_is_replaced_only_with_force`, issue 35's
/// fourteenth round).
#[test]
fn a_stream_stopped_just_before_a_close_is_told_to_the_sender_first() {
    let (mut sim, c, s, cc, sc) = connected(33, Config::default(), LinkConfig::default());
    let id = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
    sim.endpoint(c)
        .write(cc, id, Bytes::from(vec![2u8; 10_000]))
        .unwrap();
    // Everything settles: the receiver has no packet of its own in flight, so nothing
    // else keeps its close lingering.
    sim.run_for(Duration::from_secs(1), |_, _, _| {});
    // In one go, as an application does: no datagram leaves between the two calls.
    let now = sim.now();
    sim.endpoint(s).stop_sending(sc, id, 7).unwrap();
    sim.endpoint(s)
        .close(now, sc, 0, weir_core::wire::Reason::default())
        .unwrap();
    let ev = events(&mut sim, Duration::from_secs(5));
    let at = |want: &dyn Fn(&Event) -> bool| ev.iter().position(|(n, e)| *n == c && want(e));
    let stopped = at(&|e| matches!(e, Event::StreamStopped { stream, code: 7, .. } if *stream == id));
    let closed = at(&|e| matches!(e, Event::Closed { .. }));
    assert!(stopped.is_some(), "the sender was told the stream's code: {ev:?}");
    assert!(stopped < closed, "before the close: {ev:?}");
}

#[test]
fn stop_sending_makes_the_sender_reset() {
    let (mut sim, c, s, cc, sc) = connected(32, Config::default(), LinkConfig::default());
    let id = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
    sim.endpoint(c)
        .write(cc, id, Bytes::from(vec![2u8; 10_000]))
        .unwrap();
    sim.run_for(Duration::from_millis(15), |_, _, _| {});
    sim.endpoint(s).stop_sending(sc, id, 5).unwrap();
    let ev = events(&mut sim, Duration::from_secs(2));
    assert!(ev
        .iter()
        .any(|(n, e)| *n == c && matches!(e, Event::StreamStopped { stream, code: 5, .. } if *stream == id)));
    assert!(ev
        .iter()
        .any(|(n, e)| *n == s && matches!(e, Event::StreamReset { stream, code: 5, .. } if *stream == id)));
    // The writer, which had not finished it, is told the peer's code at its next call, once.
    let more = Bytes::from_static(b"more");
    assert_eq!(
        sim.endpoint(c).write(cc, id, more.clone()),
        Err(weir_core::ApiError::Stopped { code: 5 })
    );
    assert_eq!(
        sim.endpoint(c).write(cc, id, more),
        Err(weir_core::ApiError::UnknownStream)
    );
}

/// How the receiver's side of the first message ends in [`abandoned_credit_returns`].
#[derive(Clone, Copy)]
enum Abandon {
    SenderResets,
    ReceiverStops,
}

/// A 16 KiB connection window; the client sends a 64 KiB message the server does not read,
/// which fills the window, then abandons it; a second 64 KiB message must still arrive
/// whole. Returns the server's `Closed` reason, if any.
fn abandoned_credit_returns(abandon: Abandon) -> Option<CloseReason> {
    let config = Config {
        stream_receive_window: 16 * 1024,
        max_stream_receive_window: 16 * 1024,
        receive_window: 16 * 1024,
        max_receive_window: 16 * 1024,
        ..Config::default()
    };
    let (mut sim, c, s, cc, sc) = connected(34, config, LinkConfig::default());
    let first = sim
        .endpoint(c)
        .send_message(cc, None, Bytes::from(vec![1u8; 64 * 1024]))
        .unwrap();
    sim.run_for(Duration::from_millis(500), |_, _, _| {});
    assert_eq!(
        sim.endpoint(s).buffered(sc).unwrap().0,
        16 * 1024,
        "the window is full"
    );
    match abandon {
        Abandon::SenderResets => sim.endpoint(c).reset_stream(cc, first, 3).unwrap(),
        Abandon::ReceiverStops => sim.endpoint(s).stop_sending(sc, first, 4).unwrap(),
    }
    let second = sim
        .endpoint(c)
        .send_message(cc, None, Bytes::from(vec![2u8; 64 * 1024]))
        .unwrap();
    let mut got = None;
    let mut closed = None;
    sim.run_for(Duration::from_secs(10), |sim, node, e| match e {
        Event::StreamReadable { stream, .. } if node == s && stream == second => {
            if let Ok(Read::Data { bytes, .. }) = sim.endpoint(s).read_message(sc, stream, 1 << 20) {
                got = Some(bytes);
            }
        }
        Event::Closed { reason, .. } if node == s => closed = Some(reason),
        _ => {}
    });
    assert_eq!(
        got.map(|b| b.len()),
        Some(64 * 1024),
        "the second message arrived whole"
    );
    assert_eq!(
        sim.endpoint(s).buffered(sc).unwrap().0,
        0,
        "nothing of the first is held"
    );
    closed
}

// Found by the `pair` fuzz target: bytes of an abandoned stream kept the connection's
// credit forever, and a RESET_STREAM below a message's announced length was taken for a
// FINAL_SIZE_ERROR.
#[test]
fn a_message_reset_before_its_end_frees_its_connection_credit() {
    assert_eq!(abandoned_credit_returns(Abandon::SenderResets), None);
}

#[test]
fn a_stopped_stream_frees_its_connection_credit() {
    assert_eq!(abandoned_credit_returns(Abandon::ReceiverStops), None);
}

#[test]
fn streams_work_from_the_server_side_too() {
    let (mut sim, c, s, _, sc) = connected(
        33,
        Config::default(),
        LinkConfig {
            loss: 0.1,
            ..LinkConfig::default()
        },
    );
    let id = sim
        .endpoint(s)
        .send_message(sc, None, Bytes::from_static(b"from the server"))
        .unwrap();
    assert_eq!(id, StreamId(1), "the server's first stream");
    let got = RefCell::new(None);
    sim.run_for(Duration::from_secs(5), |sim, n, e| {
        if let (true, Event::StreamReadable { conn, stream }) = (n == c, e) {
            if let Ok(Read::Data { bytes, .. }) = sim.endpoint(c).read_message(conn, stream, 100) {
                *got.borrow_mut() = Some(bytes);
            }
        }
    });
    assert_eq!(got.into_inner().as_deref(), Some(&b"from the server"[..]));
}

#[test]
fn a_graceful_close_tells_the_peer_code_and_reason() {
    let (mut sim, c, s, cc, _) = connected(34, Config::default(), LinkConfig::default());
    let now = sim.now();
    sim.endpoint(c)
        .close(now, cc, 42, Reason::from_static("done here").unwrap())
        .unwrap();
    let ev = events(&mut sim, Duration::from_secs(5));
    assert!(ev.iter().any(|(n, e)| *n == c
        && matches!(e, Event::Closed {
            conn,
            reason: CloseReason::Local { code: 42 },
            ..
        } if *conn == cc)));
    let peer = ev.iter().find_map(|(n, e)| match e {
        Event::Closed {
            reason: CloseReason::Peer { code, reason },
            ..
        } if *n == s => Some((*code, reason.clone())),
        _ => None,
    });
    assert_eq!(
        peer,
        Some((
            CloseCode::Application(42),
            Reason::from_static("done here").unwrap()
        ))
    );
    // After the draining period both sides are gone.
    assert_eq!(
        sim.endpoint(c).connection_count() + sim.endpoint(s).connection_count(),
        0
    );
}

#[test]
fn keepalive_holds_an_idle_connection_open() {
    let config = Config {
        idle_timeout: Duration::from_secs(3),
        keep_alive: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let (mut sim, c, _, _, _) = connected(35, config.clone(), LinkConfig::default());
    let ev = events(&mut sim, Duration::from_secs(30));
    assert!(
        ev.iter().all(|(_, e)| !matches!(e, Event::Closed { .. })),
        "{ev:?}"
    );
    assert_eq!(sim.endpoint(c).connection_count(), 1);
    // Without keepalive the same idle connection times out.
    let (mut sim, c2, _, _, _) = connected(
        35,
        Config {
            keep_alive: None,
            ..config
        },
        LinkConfig::default(),
    );
    let ev = events(&mut sim, Duration::from_secs(30));
    let stats = ev.iter().find_map(|(n, e)| match e {
        Event::Closed {
            conn,
            reason: CloseReason::TimedOut,
            stats,
        } if *n == c2 && *conn == ConnectionHandle::from_index(0) => Some(**stats),
        _ => None,
    });
    // The event carries the counters the connection ended with; the endpoint has forgotten
    // it, so they can be learned nowhere else.
    let stats = stats.expect("timed out");
    assert!(
        stats.datagrams_sent >= 2 && stats.datagrams_received >= 1,
        "{stats:?}"
    );
    assert_eq!(
        sim.endpoint(c2).connection_stats(ConnectionHandle::from_index(0)),
        None
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed: u64| {
        let link = LinkConfig {
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.1,
            jitter: Duration::from_millis(3),
            ..LinkConfig::default()
        };
        let (mut sim, c, _, cc, _) = connected(seed, Config::default(), link);
        sim.enable_trace();
        for m in 0..20 {
            sim.endpoint(c)
                .send_message(cc, None, Bytes::from(vec![m as u8; 3000 + m * 100]))
                .unwrap();
        }
        sim.run_for(Duration::from_secs(10), |sim, n, e| {
            if let Event::StreamReadable { conn, stream } = e {
                let _ = sim.endpoint(n).read_message(conn, stream, 1 << 20);
            }
        });
        (sim.trace().to_string(), sim.stats())
    };
    let (a, sa) = run(99);
    let (b, sb) = run(99);
    assert!(a.lines().count() > 100);
    assert_eq!(sa, sb);
    assert!(a == b, "same seed, different runs");
    let (c, _) = run(100);
    assert!(a != c, "a different seed changes the run");
}

/// Request and response, each answered at once: one datagram each way per exchange. The
/// stream credit a read message frees is granted in batches (spec §4.15's flow control),
/// so it does not cost a datagram of its own ahead of the response.
#[test]
fn an_exchange_answered_at_once_costs_one_datagram_each_way() {
    const EXCHANGES: u64 = 300;
    let (mut sim, c, s, cc, sc) = connected(35, Config::default(), LinkConfig::default());
    let sent = |sim: &Sim, node, conn| {
        sim.endpoint_ref(node)
            .connection_stats(conn)
            .unwrap()
            .datagrams_sent
    };
    let before = (sent(&sim, c, cc), sent(&sim, s, sc));
    let request = Bytes::from_static(&[7; 64]);
    sim.endpoint(c).send_message(cc, None, request.clone()).unwrap();
    let answered = RefCell::new(0u64);
    sim.run_until(
        sim.now() + Duration::from_secs(30),
        |sim, node, e| {
            let Event::StreamReadable { conn, stream } = e else {
                return;
            };
            let Ok(Read::Data { bytes, .. }) = sim.endpoint(node).read_message(conn, stream, 1 << 20) else {
                return;
            };
            if node == s {
                sim.endpoint(s).send_message(conn, None, bytes).unwrap();
            } else {
                *answered.borrow_mut() += 1;
                if *answered.borrow() < EXCHANGES {
                    sim.endpoint(c).send_message(conn, None, request.clone()).unwrap();
                }
            }
        },
        |_| *answered.borrow() == EXCHANGES,
    );
    assert_eq!(*answered.borrow(), EXCHANGES);
    // Besides: a MAX_STREAMS of its own about every half of the 128-stream limit, and the
    // odd lone ACK (a few per cent).
    let most = EXCHANGES + EXCHANGES / 16;
    let got = (sent(&sim, c, cc) - before.0, sent(&sim, s, sc) - before.1);
    assert!(
        got.0 <= most && got.1 <= most,
        "{got:?} datagrams for {EXCHANGES} exchanges"
    );
}

/// Moves every datagram between `a` (at `a_addr`) and `b` (at `b_addr`) until neither has
/// one to send, all at `now`; returns how many moved.
fn shuttle(
    a: &mut weir_core::Endpoint,
    a_addr: std::net::SocketAddr,
    b: &mut weir_core::Endpoint,
    b_addr: std::net::SocketAddr,
    now: weir_core::time::Instant,
) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            b.handle_datagram(now, a_addr, bytes::BytesMut::from(&buf[..t.len]));
            any = true;
            moved += 1;
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            a.handle_datagram(now, b_addr, bytes::BytesMut::from(&buf[..t.len]));
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
}

/// Issue 30, item 13: a server that restarts (same identity, all connection state lost)
/// answers the next packet of a connection it no longer has with a stateless reset bearing
/// the token its ACCEPT gave, and the client ends the connection at once
/// (`CloseReason::Reset`) instead of at its idle timeout. A server with another identity at
/// the same address cannot make the token, and a datagram ending in any other 16 bytes
/// changes nothing.
#[test]
fn a_server_that_restarted_resets_its_clients_at_once() {
    use weir_core::time::Instant;
    use weir_core::{Endpoint, Identity, Seed};
    let server_config = |n: u64| Config {
        identity: Some(Identity::from_seed(&Seed::from(n))),
        ..Config::default()
    };
    let (c_addr, s_addr) = ("10.0.0.1:4000".parse().unwrap(), "10.0.0.2:4000".parse().unwrap());
    let mut client = Endpoint::new(Config::default(), 1);
    let mut server = Endpoint::new(server_config(7), 2);
    let now = Instant::ZERO;
    let conn = client.connect(now, s_addr).unwrap();
    shuttle(&mut client, c_addr, &mut server, s_addr, now);
    assert!(client.is_established(conn));
    let events = |ep: &mut Endpoint| std::iter::from_fn(|| ep.poll_event()).collect::<Vec<_>>();
    events(&mut client);
    let message = |client: &mut Endpoint| {
        client
            .send_message(conn, None, Bytes::from_static(&[7; 100]))
            .unwrap();
    };

    // A stranger at the server's address, with another identity, and forged datagrams
    // ending in other bytes: nothing ends the connection.
    let mut stranger = Endpoint::new(server_config(8), 3);
    message(&mut client);
    shuttle(&mut client, c_addr, &mut stranger, s_addr, now);
    assert_eq!(stranger.stats().resets_sent, 1);
    let mut forged = [0x5a; 60];
    forged[..3].copy_from_slice(&[0, 2, 0]);
    client.handle_datagram(now, s_addr, bytes::BytesMut::from(&forged[..]));
    assert!(client.is_established(conn), "{:?}", events(&mut client));

    // The server restarted: same identity, no state.
    let mut restarted = Endpoint::new(server_config(7), 4);
    message(&mut client);
    shuttle(&mut client, c_addr, &mut restarted, s_addr, now);
    assert_eq!(restarted.stats().resets_sent, 1);
    assert_eq!(client.stats().resets_received, 1);
    assert!(events(&mut client)
        .iter()
        .any(|e| matches!(e, Event::Closed { conn: c, reason: CloseReason::Reset, .. } if *c == conn)));
    assert_eq!(client.connection_count(), 0);
}

/// The peer's last message, sent just before its CLOSE: the receiver, told of the close,
/// still reads it from the core (the connection is kept for it, reachable by no datagram
/// and not counted), and the slot is freed once it is read; a connection released is let
/// go of as soon as it ends, unread bytes and all.
#[test]
fn a_connection_that_ended_with_bytes_unread_is_kept_until_they_are_read_or_it_is_released() {
    for release in [false, true] {
        let (mut sim, c, s, cc, sc) = connected(33, Config::default(), LinkConfig::default());
        let last = sim
            .endpoint(c)
            .send_message(cc, None, Bytes::from_static(b"last words"))
            .unwrap();
        sim.run_for(Duration::from_millis(50), |_, _, _| {});
        let now = sim.now();
        sim.endpoint(c).close(now, cc, 0, Reason::default()).unwrap();
        if release {
            sim.endpoint(s).release(sc).unwrap();
        }
        let ev = events(&mut sim, Duration::from_secs(5));
        assert!(ev
            .iter()
            .any(|(n, e)| *n == s && matches!(e, Event::Closed { .. })));
        assert_eq!(sim.endpoint(s).connection_count(), 0, "ended: not counted");
        assert_eq!(sim.endpoint(s).connections().count(), 0);
        if release {
            assert_eq!(sim.endpoint(s).connection_stats(sc), None, "let go of");
            assert_eq!(sim.endpoint(s).load().receive_budgets, 0);
            assert_eq!(
                sim.endpoint(s).read_message(sc, last, 1 << 10),
                Err(weir_core::ApiError::UnknownConnection)
            );
            continue;
        }
        assert!(sim.endpoint(s).connection_stats(sc).is_some(), "kept");
        // Its unread bytes still count against the receive budget, and only they.
        let load = sim.endpoint(s).load();
        assert_eq!(load.receive_budgets, b"last words".len() as u64);
        assert_eq!(load.bytes_received_unread, b"last words".len() as u64);
        assert_eq!(
            sim.endpoint(s).read_message(sc, last, 1 << 10),
            Ok(Read::Data {
                offset: 0,
                bytes: Bytes::from_static(b"last words")
            })
        );
        // Read to the end: nothing is left to keep it for.
        assert_eq!(sim.endpoint(s).connection_stats(sc), None, "freed once read");
        assert_eq!(
            sim.endpoint(s).load().receive_budgets,
            0,
            "its budget freed with it"
        );
        assert_eq!(
            sim.endpoint(s).release(sc),
            Err(weir_core::ApiError::UnknownConnection)
        );
    }
}
