//! Piping in weir-sim: relays forward a stream fragment by fragment to one or more next
//! hops, under loss, reordering and duplication, with end-to-end backpressure and memory
//! limits (issue 5; spec §8.8). How pipes end when their connections end: `pipe_ends.rs`.

use crate::pipe_world;

use std::cell::RefCell;

use bytes::Bytes;
use weir_core::congestion::CongestionAlgorithm;
use weir_core::time::Duration;
use weir_core::{
    ApiError, Config, ConnectionHandle, Delivery, Digest, LocalRead, PipeStats, Read, StreamHeader,
};
use weir_sim::relay::{relay_message, Arrival};
use weir_sim::{LinkConfig, Sim};

use pipe_world::*;

#[test]
fn a_relay_forwards_a_message_intact_over_rough_hops() {
    let (mut sim, world, conn) = chain(1, 1, 1, rough(), Config::default());
    let msg = payload(1 << 20);
    send(&mut sim, conn, &msg);
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg]);
    assert!(w.failed.is_empty());
}

/// A receiver that closes as soon as it has the message may not have acknowledged its last
/// packets yet (a lone packet's ACK waits up to max_ack_delay): its CLOSE carries that ACK,
/// and the relay counts the target as reached, not lost, though the connection then closed.
#[test]
fn a_receiver_that_closes_at_once_after_the_message_was_reached() {
    for len in [1_000, 2_000, 3_000, 30_000] {
        let (mut sim, world, conn) = chain(3, 1, 1, LinkConfig::default(), Config::default());
        world.borrow_mut().closer = Some(2);
        let msg = payload(len);
        send(&mut sim, conn, &msg);
        let ended = |w: &World| !w.finished.is_empty() || !w.failed.is_empty();
        assert!(run(&mut sim, &world, 10, ended), "{len} bytes");
        let w = world.borrow();
        assert_eq!(w.received[&2], vec![msg], "{len} bytes");
        assert_eq!((w.finished.len(), &w.failed), (1, &vec![]), "{len} bytes");
    }
}

#[test]
fn a_chain_of_three_relays_delivers_every_byte() {
    let (mut sim, world, conn) = chain(2, 3, 1, rough(), Config::default());
    let msg = payload(2 << 20);
    // With a digest: each relay passes it on, the receiver checks the bytes against it.
    sim.endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    assert!(run(&mut sim, &world, 120, |w| w.finished.len() == 3));
    let w = world.borrow();
    assert_eq!(w.received[&4], vec![msg.clone()]);
    assert_eq!(w.opened[0].1.digest, Some(Digest::of(&msg)));
    let from_relay = ConnectionHandle::from_index(0);
    let stats = sim.endpoint_ref(4).connection_stats(from_relay).unwrap();
    assert_eq!((stats.streams_verified, stats.verification_failures), (1, 0));
}

#[test]
fn a_relay_that_changes_a_byte_is_caught_by_the_receiver() {
    let (mut sim, world, conn) = chain(9, 1, 1, rough(), Config::default());
    world.borrow_mut().tamperer = Some(1);
    let msg = payload(100_000);
    sim.endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    assert!(run(&mut sim, &world, 60, |w| !w.corrupt.is_empty()));
    let w = world.borrow();
    let mut changed = msg.to_vec();
    changed[msg.len() - 1] ^= 1;
    assert_eq!(
        w.corrupt,
        vec![(
            2,
            Read::VerificationFailed {
                expected: Digest::of(&msg),
                actual: Digest::of(&changed)
            }
        )]
    );
    assert!(
        !w.received.contains_key(&2),
        "the changed message is not delivered"
    );
    let from_relay = ConnectionHandle::from_index(0);
    let stats = sim.endpoint_ref(2).connection_stats(from_relay).unwrap();
    assert_eq!((stats.streams_verified, stats.verification_failures), (0, 1));
}

#[test]
fn piping_from_past_the_start_does_not_pass_the_digest_on() {
    let (mut sim, world, conn) = chain(10, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().relays.clear();
    world.borrow_mut().idle = Some(1);
    let msg = payload(5000);
    let id = sim
        .endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    run(&mut sim, &world, 1, |_| false);
    // The relay reads a 100-byte header, then pipes the rest: the digest covers bytes the
    // receiver will not get, so it stays behind.
    let (down, up) = (ConnectionHandle::from_index(0), ConnectionHandle::from_index(1));
    let Ok(Read::Data { bytes, .. }) = sim.endpoint(1).read(up, id, 100) else {
        panic!("the message's first bytes")
    };
    assert_eq!(bytes, msg.slice(..100));
    sim.endpoint(1).pipe(up, id, &[down], LocalRead::Discard).unwrap();
    assert!(run(&mut sim, &world, 10, |w| w.received.contains_key(&2)));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg.slice(100..)]);
    let at = |node| {
        w.opened
            .iter()
            .filter(move |(n, _)| *n == node)
            .map(|(_, h)| h.clone())
    };
    assert_eq!(at(1).last().and_then(|h| h.digest), Some(Digest::of(&msg)));
    assert_eq!(
        at(2).collect::<Vec<_>>(),
        vec![StreamHeader::default().with_total_len(4900)]
    );
}

#[test]
fn a_relay_fans_out_to_three_receivers() {
    let (mut sim, world, conn) = chain(3, 1, 3, rough(), Config::default());
    let msg = payload(1 << 20);
    send(&mut sim, conn, &msg);
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
    for r in 2..5 {
        assert_eq!(world.borrow().received[&r], vec![msg.clone()], "receiver {r}");
    }
}

#[test]
fn a_relay_that_keeps_a_copy_reads_what_it_forwards() {
    let (mut sim, world, conn) = chain(4, 1, 1, rough(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    let msg = payload(1 << 20);
    sim.endpoint(0)
        .send_verified_message(conn, None, msg.clone())
        .unwrap();
    assert!(run(&mut sim, &world, 60, |w| !w.finished.is_empty()));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg.clone()]);
    assert_eq!(w.kept[&1], msg.len() as u64);
    // Both readers checked the digest: the relay reading piece by piece, the receiver whole.
    for (node, conn) in [
        (1, ConnectionHandle::from_index(1)),
        (2, ConnectionHandle::from_index(0)),
    ] {
        let stats = sim.endpoint_ref(node).connection_stats(conn).unwrap();
        assert_eq!(
            (stats.streams_verified, stats.verification_failures),
            (1, 0),
            "node {node}"
        );
    }
}

#[test]
fn a_relay_that_keeps_a_copy_but_does_not_read_holds_back_the_sender() {
    let (mut sim, world, conn) = chain(11, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    world.borrow_mut().idle = Some(1);
    let msg = payload(4 << 20);
    let id = send(&mut sim, conn, &msg);
    run(&mut sim, &world, 10, |_| false);
    // The relay's application reads nothing: what it keeps stays within the stream's
    // window, so the sender waits, however fast the receiver takes the bytes.
    let up = ConnectionHandle::from_index(1);
    let (unread, _) = sim.endpoint_ref(1).buffered(up).unwrap();
    let window = Config::default().stream_receive_window;
    assert!(
        unread <= window,
        "the relay holds {unread} unread bytes, window {window}"
    );
    let down = ConnectionHandle::from_index(0);
    assert_eq!(
        sim.endpoint(1).pipe(up, id, &[down], LocalRead::Discard),
        Err(ApiError::AlreadyPiped)
    );
    assert!(!world.borrow().received.contains_key(&2));
    // Once it reads, the rest flows.
    world.borrow_mut().idle = None;
    world.borrow_mut().read(&mut sim, 1, up, id);
    assert!(run(&mut sim, &world, 30, |w| w.received.contains_key(&2)));
    let w = world.borrow();
    assert_eq!(w.received[&2], vec![msg.clone()]);
    assert_eq!(w.kept[&1], msg.len() as u64);
}

/// The relay's stats while a message goes through: what it held never passes its cap.
fn watch(sim: &mut Sim, world: &RefCell<World>, secs: u64) -> PipeStats {
    let mut peak = PipeStats::default();
    let limit = sim.now() + Duration::from_secs(secs);
    sim.run_until(
        limit,
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| {
            if let Some(&(relay, pipe)) = world.borrow().pipes.first() {
                if let Some(s) = sim.endpoint_ref(relay).pipe_stats(pipe) {
                    peak.in_flight_peak = peak.in_flight_peak.max(s.in_flight_peak);
                    peak.waiting_peak = peak.waiting_peak.max(s.waiting_peak);
                    peak.bytes_forwarded = s.bytes_forwarded;
                }
            }
            let w = world.borrow();
            !w.finished.is_empty() || !w.failed.is_empty()
        },
    );
    peak
}

#[test]
fn a_slow_receiver_slows_the_sender_and_the_relay_holds_at_most_its_cap() {
    let cap = 256 << 10;
    let config = Config {
        pipe_buffer: cap,
        ..Config::default()
    };
    let fast = LinkConfig::default();
    let (mut sim, world, conn) = chain(5, 1, 1, fast, config);
    // The last hop runs at 1 Mbit/s: a tenth of what the first could carry.
    sim.link_one_way(
        1,
        2,
        LinkConfig {
            bandwidth: Some(1_000_000),
            ..fast
        },
    );
    let msg = payload(4 << 20);
    send(&mut sim, conn, &msg);
    let peak = watch(&mut sim, &world, 120);
    assert_eq!(world.borrow().received[&2], vec![msg]);
    println!(
        "relay peak: in flight {} bytes, waiting {} bytes",
        peak.in_flight_peak, peak.waiting_peak
    );
    assert!(peak.in_flight_peak <= cap, "{peak:?}");
    assert!(peak.waiting_peak <= DATAGRAM, "{peak:?}");
    let sender = sim.endpoint_ref(0).connection_stats(conn).unwrap();
    assert!(
        sender.stream_data_blocked > 0,
        "the sender waited on credit: {sender:?}"
    );
}

/// Three messages piped at once through a relay whose last hop is slow: the peak of the
/// bytes all pipes hold together (in flight plus waiting).
fn held_by_three_pipes(relay: Config) -> u64 {
    let fast = LinkConfig::default();
    // The receiver's windows are large: the relay's caps are what bound it.
    let receiver = Config {
        stream_receive_window: 1 << 20,
        ..Config::default()
    };
    let config = |n| if n == 1 { relay.clone() } else { receiver.clone() };
    let (mut sim, world, conn) = chain_configured(12, 1, 1, fast, &config);
    sim.link_one_way(
        1,
        2,
        LinkConfig {
            bandwidth: Some(1_000_000),
            ..fast
        },
    );
    let msgs: Vec<Bytes> = (0..3).map(|i| payload((1 << 20) + i)).collect();
    for m in &msgs {
        send(&mut sim, conn, m);
    }
    let mut peak = 0;
    sim.run_until(
        sim.now() + Duration::from_secs(120),
        |sim, node, e| world.borrow_mut().on_event(sim, node, e),
        |sim| {
            let w = world.borrow();
            let held: u64 = w
                .pipes
                .iter()
                .filter_map(|&(relay, pipe)| sim.endpoint_ref(relay).pipe_stats(pipe))
                .map(|s| s.in_flight + s.waiting)
                .sum();
            peak = peak.max(held);
            w.finished.len() == 3
        },
    );
    let mut got = world.borrow().received[&2].clone();
    got.sort_by_key(Bytes::len);
    assert_eq!(got, msgs);
    peak
}

#[test]
fn pipes_together_hold_at_most_the_endpoint_wide_cap() {
    let window = 16 << 10;
    let total = 128 << 10;
    let config = Config {
        stream_receive_window: window,
        pipe_buffer_total: total,
        ..Config::default()
    };
    let unbounded = held_by_three_pipes(Config {
        pipe_buffer_total: u64::MAX,
        ..config.clone()
    });
    let held = held_by_three_pipes(config);
    println!("three pipes held at most {held} bytes together (cap {total}); {unbounded} without the cap");
    // Credit a stream had before it was piped (its initial window) is outside the cap.
    assert!(held <= total + 3 * window, "{held}");
    assert!(
        unbounded > total + 3 * window,
        "the cap is what bounds it: {unbounded}"
    );
}

#[test]
fn piping_more_than_the_cap_already_held_is_refused() {
    let config = Config {
        pipe_buffer: 1000,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(8, 1, 1, LinkConfig::default(), config);
    // The relay does not pipe on its own here: the test asks once bytes wait.
    world.borrow_mut().relays.clear();
    world.borrow_mut().idle = Some(1);
    let id = sim
        .endpoint(0)
        .open_stream(conn, StreamHeader::default())
        .unwrap();
    sim.endpoint(0).write(conn, id, payload(5000)).unwrap();
    run(&mut sim, &world, 1, |_| false);
    // The relay connected downstream first: the upstream connection is its second.
    let down = ConnectionHandle::from_index(0);
    let up = ConnectionHandle::from_index(1);
    let err = sim
        .endpoint(1)
        .pipe(up, id, &[down], LocalRead::Discard)
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::BufferOverflow {
            buffered: 5000,
            limit: 1000
        }
    );
    assert_eq!(
        sim.endpoint(1)
            .pipe(up, id, &[up], LocalRead::Discard)
            .unwrap_err(),
        ApiError::NoTargets
    );
}

#[test]
fn the_relay_memory_table() {
    // The same table `cargo bench -p weir-sim --bench pipe` prints, here as assertions.
    let len = 10 << 20;
    let config = Config {
        congestion: CongestionAlgorithm::NewReno,
        ..Config::default()
    };
    let bound = config.pipe_buffer.min(config.max_stream_receive_window);
    let msg = payload(len);
    for arrival in [
        Arrival::InOrder,
        Arrival::RunsOfTenReversed,
        Arrival::RoundReversed,
    ] {
        let run = relay_message(&config, arrival, msg.clone());
        let p = run.peak;
        println!(
            "{arrival:?}: waiting peak {}, in-flight peak {}, out of order {}",
            p.waiting_peak, p.in_flight_peak, p.fragments_out_of_order
        );
        assert_eq!(run.received.as_ref(), Some(&msg), "{arrival:?}");
        // Waiting: at most one datagram's payload.
        assert!(p.waiting_peak <= DATAGRAM, "{arrival:?}: {p:?}");
        // In flight: within the pipe's cap and the downstream window, never the message.
        assert!(p.in_flight_peak <= bound, "{arrival:?}: {p:?}");
        assert_eq!(p.bytes_forwarded, len as u64);
        // Reordered arrivals are forwarded as they come, out of order.
        assert_eq!(
            p.fragments_out_of_order == 0,
            arrival == Arrival::InOrder,
            "{arrival:?}"
        );
    }
}

/// A final receiver that refuses a piped message as it opens: its sender hears the
/// receiver's refusal, one relay on (a receipt with the code: spec §8, Delivery), not a
/// relay that lost its next hop, whether the relay had the whole message when the refusal
/// came back (found by `pipe_sweep.rs`) or only its start (then the relay also stops the
/// rest: told PIPE_BROKEN, as before, the sender of a large message took the receiver's
/// refusal for a broken relay).
#[test]
fn a_refusal_behind_a_relay_reaches_the_sender_with_its_code() {
    const REFUSED: u64 = 0x77;
    for (len, seed, relays) in [(3_000, 51, 1), (2 << 20, 52, 1), (2 << 20, 55, 2)] {
        let (mut sim, world, conn) = chain(seed, relays, 1, LinkConfig::default(), Config::default());
        world.borrow_mut().refuser = Some((relays + 1, REFUSED));
        send(&mut sim, conn, &payload(len));
        let heard =
            |w: &World| w.verdicts.iter().any(|(n, _)| *n == 0) || w.stopped.iter().any(|(n, _)| *n == 0);
        assert!(run(&mut sim, &world, 10, heard), "{len} bytes: the sender heard");
        let w = world.borrow();
        let verdict = w.verdicts.iter().find(|(n, _)| *n == 0).map(|(_, d)| *d);
        let stopped = w.stopped.iter().find(|(n, _)| *n == 0).map(|(_, c)| *c);
        let refused = Delivery::Failed {
            code: REFUSED,
            relays: relays as u64,
        };
        assert_eq!(
            (verdict, stopped),
            (Some(refused), None),
            "{len} bytes, {relays} relays"
        );
        assert!(w.received.is_empty());
        drop(w);
        assert_relays_let_go(&mut sim, &world);
    }
}

/// The same refusal, of a message its sender is still writing: its next write is told the
/// receiver's word (the stream is over: its sender reset what the relay stopped), and
/// neither end keeps the stream.
#[test]
fn a_refusal_behind_a_relay_ends_a_stream_its_sender_still_writes() {
    const REFUSED: u64 = 0x77;
    let (mut sim, world, conn) = chain(54, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().refuser = Some((2, REFUSED));
    let ep = sim.endpoint(0);
    let stream = ep.open_stream(conn, StreamHeader::default()).unwrap();
    ep.write(conn, stream, payload(20_000)).unwrap();
    let refused = Delivery::Failed {
        code: REFUSED,
        relays: 1,
    };
    assert!(
        run(&mut sim, &world, 5, |w| w.verdicts.contains(&(0, refused))),
        "the sender heard the receiver's refusal"
    );
    assert!(
        !world.borrow().stopped.iter().any(|(n, _)| *n == 0),
        "not as a stop"
    );
    let ep = sim.endpoint(0);
    assert_eq!(
        ep.write(conn, stream, Bytes::from_static(b"more")),
        Err(ApiError::Settled { delivery: refused })
    );
    assert_eq!(ep.finish(conn, stream), Err(ApiError::UnknownStream), "told once");
    assert_relays_let_go(&mut sim, &world);
}

/// Once things settle, no relay holds its pipe's streams: the first stream each way, its
/// source from the connection it did not start, its targets (a refused one is kept only for
/// the pipe to read why) on those it did.
fn assert_relays_let_go(sim: &mut Sim, world: &RefCell<World>) {
    run(sim, world, 5, |_| false);
    let first = weir_core::wire::StreamId(0);
    for (relay, onward) in world.borrow().relays.clone() {
        let from = (0..4)
            .map(ConnectionHandle::from_index)
            .find(|h| !onward.contains(h) && sim.endpoint_ref(relay).connection_stats(*h).is_some())
            .expect("the relay's connection from upstream");
        assert_eq!(
            sim.endpoint(relay).stop_sending(from, first, 1),
            Err(ApiError::UnknownStream),
            "relay {relay} let go of its source"
        );
        for to in onward {
            assert_eq!(
                sim.endpoint(relay).write(to, first, Bytes::from_static(b"x")),
                Err(ApiError::UnknownStream),
                "relay {relay} let go of its target"
            );
        }
    }
}

/// A target that refused its stream is kept so that its pipe reads why, and let go when the
/// pipe ends, however it ends: here its sender resets the source after one of two targets
/// refused. (A pipe that failed let go of its open targets only: the refused one stayed on
/// its connection for good, a stream's state for every such pipe.)
#[test]
fn a_refused_target_is_let_go_when_its_pipe_fails() {
    let (mut sim, world, conn) = chain(53, 1, 2, LinkConfig::default(), Config::default());
    world.borrow_mut().refuser = Some((2, 0x77));
    let ep = sim.endpoint(0);
    let stream = ep.open_stream(conn, StreamHeader::default()).unwrap();
    ep.write(conn, stream, payload(20_000)).unwrap();
    assert!(
        run(&mut sim, &world, 5, |w| w.stopped.contains(&(1, 0x77))),
        "refused at the relay"
    );
    sim.endpoint(0).reset_stream(conn, stream, 9).unwrap();
    assert!(
        run(&mut sim, &world, 5, |w| !w.failed.is_empty()),
        "the pipe failed"
    );
    // The relay's first stream on each connection to a receiver was its pipe's target.
    let target = weir_core::wire::StreamId(0);
    for to in world.borrow().relays[&1].clone() {
        assert_eq!(
            sim.endpoint(1).write(to, target, Bytes::from_static(b"x")),
            Err(ApiError::UnknownStream),
            "the target on {to:?} was let go"
        );
    }
}
