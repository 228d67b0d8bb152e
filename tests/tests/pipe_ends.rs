//! How a pipe ends when the connections it joins end, in weir-sim: a sender that aborts, a
//! target that dies, a sender that closes once every byte arrived, a source connection that
//! had ended before piping began, a fork that loses its target, a target reset by a peer
//! that restarted (spec/protocol.md §8, Piping).

use crate::pipe_world;

use std::cell::RefCell;

use weir_core::time::Duration;
use weir_core::wire::{Reason, StreamId};
use weir_core::{
    ApiError, Config, ConnectionHandle, Delivery, Event, LocalRead, PipeFailure, Read, StreamHeader,
    PIPE_BROKEN,
};
use weir_sim::{LinkConfig, NodeId, Sim};

use pipe_world::*;

/// A relay fanning out to two receivers, a 64 KiB stream under way through its pipe.
fn stream_under_way(seed: u64) -> (Sim, RefCell<World>, ConnectionHandle, StreamId) {
    let (mut sim, world, conn) = chain(seed, 1, 2, rough(), Config::default());
    let id = write_until_piped(&mut sim, &world, conn, 64 << 10);
    (sim, world, conn, id)
}

/// The sender opens a stream and writes `len` bytes of it, not finished; the relay's pipe
/// of it has begun (within 2 s).
fn write_until_piped(sim: &mut Sim, world: &RefCell<World>, conn: ConnectionHandle, len: usize) -> StreamId {
    let id = sim
        .endpoint(0)
        .open_stream(conn, StreamHeader::default())
        .unwrap();
    sim.endpoint(0).write(conn, id, payload(len)).unwrap();
    run(sim, world, 2, |w| !w.pipes.is_empty());
    id
}

#[test]
fn a_sender_that_aborts_resets_every_target() {
    let (mut sim, world, conn, id) = stream_under_way(6);
    sim.endpoint(0).reset_stream(conn, id, 77).unwrap();
    assert!(run(&mut sim, &world, 20, |w| w.resets.len() == 2));
    let w = world.borrow();
    assert_eq!(
        w.failed,
        vec![(w.pipes[0].1, PipeFailure::SourceReset { code: 77 })]
    );
    assert!(w.resets.iter().all(|&(_, code)| code == 77));
}

/// A 4 KiB stream the sender wrote and did not finish, piped by the relay to one receiver
/// over `down` (the relay's link to it): the sim, the world, the sender's connection and
/// the stream, once the pipe began.
fn unfinished_stream(seed: u64, down: LinkConfig) -> (Sim, RefCell<World>, ConnectionHandle, StreamId) {
    let (mut sim, world, conn) = chain(seed, 1, 1, LinkConfig::default(), Config::default());
    sim.link(1, 2, down);
    let id = write_until_piped(&mut sim, &world, conn, 4 << 10);
    (sim, world, conn, id)
}

/// The receiver was never given the stream whole, and the pipe failed with the sender's
/// reset (code 77).
fn assert_reset_passed_on(w: &World) {
    assert!(
        w.received.is_empty(),
        "the receiver read an abandoned stream as whole"
    );
    assert_eq!(
        w.failed,
        vec![(w.pipes[0].1, PipeFailure::SourceReset { code: 77 })]
    );
}

/// A sender that resets a stream after the pipe forwarded every byte it wrote: the reset's
/// final size is not the stream's end, so the receiver is told of the reset and never
/// given the stream as whole.
#[test]
fn a_sender_that_resets_after_every_byte_was_forwarded_resets_the_target() {
    let (mut sim, world, conn, id) = unfinished_stream(38, LinkConfig::default());
    // Every byte reaches the relay and is forwarded and acknowledged; no FIN was sent.
    run(&mut sim, &world, 1, |_| false);
    sim.endpoint(0).reset_stream(conn, id, 77).unwrap();
    run(&mut sim, &world, 2, |w| {
        w.resets.iter().any(|&(n, _)| n == 2) || !w.received.is_empty()
    });
    let w = world.borrow();
    assert!(
        w.resets.contains(&(2, 77)),
        "the receiver is told of the reset: {:?}",
        w.resets
    );
    assert_reset_passed_on(&w);
}

/// As above, but the relay has begun to close its connection to the receiver, gracefully
/// (it lingers to deliver what it holds), when the sender's reset arrives. Before, the pipe
/// took the reset's final size for the stream's end and finished the target there; the
/// reset could not be passed on through a closing connection, so the lingering connection
/// delivered a FIN, and the receiver read an abandoned stream as whole (found by the
/// `piping` fuzz target: fuzz/findings/piping.reset-read-as-whole).
#[test]
fn a_sender_reset_is_never_passed_on_as_an_end() {
    // The relay's datagrams take 50 ms to reach the receiver: its close finds them
    // unacknowledged.
    let slow = LinkConfig {
        delay: Duration::from_millis(50),
        ..LinkConfig::default()
    };
    let (mut sim, world, conn, id) = unfinished_stream(39, slow);
    let down = world.borrow().relays[&1][0];
    sim.run_for(Duration::from_millis(10), |sim, node, e| {
        world.borrow_mut().on_event(sim, node, e)
    });
    let now = sim.now();
    sim.endpoint(1).close(now, down, 0, Reason::default()).unwrap();
    sim.endpoint(0).reset_stream(conn, id, 77).unwrap();
    run(&mut sim, &world, 5, |_| false);
    assert_reset_passed_on(&world.borrow());
}

/// A fork whose relay read the whole stream itself, then lost its target before the
/// target took the stream to its end: the pipe fails, the sender is told, and the stream
/// frees its place among the sender's streams.
#[test]
fn a_fork_read_whole_whose_target_is_lost_frees_its_place() {
    let config = Config {
        max_concurrent_streams: 1,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(40, 1, 1, LinkConfig::default(), config);
    world.borrow_mut().local = LocalRead::Keep;
    let slow = LinkConfig {
        delay: Duration::from_millis(50),
        ..LinkConfig::default()
    };
    sim.link(1, 2, slow);
    let down = world.borrow().relays[&1][0];
    send(&mut sim, conn, &payload(4 << 10));
    run(&mut sim, &world, 1, |w| w.kept.get(&1) == Some(&(4 << 10)));
    let now = sim.now();
    sim.endpoint(1).close(now, down, 0, Reason::default()).unwrap();
    run(&mut sim, &world, 5, |_| false);
    assert_eq!(world.borrow().failed.len(), 1, "the pipe failed");
    assert!(
        sim.endpoint(0).open_stream(conn, StreamHeader::default()).is_ok(),
        "the forked stream still holds its place"
    );
}

#[test]
fn a_target_that_dies_loses_its_branch_and_the_last_one_fails_the_sender_s_stream() {
    let (mut sim, world, _, _) = stream_under_way(7);
    // The first receiver goes away: its branch is lost, the other goes on.
    let relay = ConnectionHandle::from_index(0);
    let now = sim.now();
    sim.endpoint(2).close(now, relay, 0, Default::default()).unwrap();
    assert!(run(&mut sim, &world, 20, |w| !w.targets_lost.is_empty()));
    assert!(world.borrow().failed.is_empty());
    // The second one too: no target left, the sender is told: a receipt saying the relay
    // lost its next hop (spec §8, Delivery), ahead of the relay's stop, which it then
    // needs no more.
    let now = sim.now();
    sim.endpoint(3).close(now, relay, 0, Default::default()).unwrap();
    assert!(run(&mut sim, &world, 20, |w| !w.verdicts.is_empty()));
    let w = world.borrow();
    assert_eq!(w.failed, vec![(w.pipes[0].1, PipeFailure::TargetsLost)]);
    let broken = Delivery::Failed {
        code: PIPE_BROKEN,
        relays: 0,
    };
    assert_eq!(w.verdicts, vec![(0, broken)]);
    assert!(w.stopped.is_empty());
}

/// Issue 29, item 1: the relay acknowledges every byte long before its slow last hop has
/// them; the sender then closes its connection. The pipe's source stream had fully arrived,
/// so the relay finishes forwarding instead of failing (`SourceLost`) and cutting the
/// receiver off with most of the message.
#[test]
fn a_relay_finishes_forwarding_after_the_sender_closed() {
    for (seed, last_hop) in [
        // 2 MB/s with a router's queue.
        (
            31,
            LinkConfig {
                bandwidth: Some(16_000_000),
                queue_bytes: 64 << 10,
                ..LinkConfig::default()
            },
        ),
        // 2% loss and reordering.
        (
            32,
            LinkConfig {
                loss: 0.02,
                reorder: 0.05,
                jitter: Duration::from_millis(3),
                ..LinkConfig::default()
            },
        ),
    ] {
        let fast = LinkConfig {
            delay: Duration::from_micros(100),
            ..LinkConfig::default()
        };
        let (mut sim, world, conn) = chain(seed, 1, 1, fast, Config::default());
        sim.link(1, 2, last_hop);
        world.borrow_mut().sender_closes_when_acked = true;
        let msg = payload(4 << 20);
        send(&mut sim, conn, &msg);
        let ended = |w: &World| !w.finished.is_empty() || !w.failed.is_empty();
        assert!(run(&mut sim, &world, 120, ended), "seed {seed}");
        let w = world.borrow();
        assert!(w.sender_closed, "seed {seed}: the sender closed before the end");
        assert_eq!(w.failed, vec![], "seed {seed}");
        assert_eq!(w.received.get(&2).map(|m| m.len()), Some(1), "seed {seed}");
        assert!(w.received[&2][0] == msg, "seed {seed}");
        assert!(w.resets.is_empty(), "seed {seed}: {:?}", w.resets);
    }
}

/// A relay that takes a stream, closes the connection it came on, then pipes it: the
/// stream can get no more bytes, so the pipe fails at once (`SourceLost`) and its target is
/// reset (PIPE_BROKEN). Before, a connection kept for its unread bytes still counted as a
/// live source, and the pipe (and a receiver's read of it) waited for ever (found by the `piping`
/// fuzz target: fuzz/findings/piping.pipe-from-an-ended-connection).
#[test]
fn a_pipe_from_a_connection_that_ended_before_its_stream_did_fails() {
    let (mut sim, world, conn) = chain(33, 1, 1, LinkConfig::default(), Config::default());
    // The relay's application pipes by hand here: it takes the stream and waits.
    let down = world.borrow_mut().relays.remove(&1).unwrap();
    // Two streams, neither finished: the relay pipes the first; the second, never read,
    // keeps the connection once it ended (module `endpoint::retained`).
    for _ in 0..2 {
        let ep = sim.endpoint(0);
        let id = ep.open_stream(conn, StreamHeader::default()).unwrap();
        ep.write(conn, id, payload(4 << 10)).unwrap();
    }
    let source = RefCell::new(None);
    let mut relay_waits = |sim: &mut Sim, node, e| match e {
        Event::StreamOpened { conn, stream, .. } if node == 1 => {
            source.borrow_mut().get_or_insert((conn, stream));
        }
        _ if node == 1 => {}
        e => world.borrow_mut().on_event(sim, node, e),
    };
    let limit = sim.now() + Duration::from_secs(2);
    assert!(sim.run_until(limit, &mut relay_waits, |_| source.borrow().is_some()));
    let (from, stream) = source.borrow().unwrap();
    let now = sim.now();
    sim.endpoint(1).close(now, from, 0, Reason::default()).unwrap();
    // Until it ended (its closing period over): no longer counted, but kept.
    let limit = sim.now() + Duration::from_secs(30);
    assert!(sim.run_until(limit, &mut relay_waits, |sim| sim
        .endpoint_ref(1)
        .connection_count()
        == 1));
    assert!(
        sim.endpoint(1).connection_stats(from).is_some(),
        "ended, and kept for the bytes it holds unread"
    );
    let pipe = sim
        .endpoint(1)
        .pipe(from, stream, &down, LocalRead::Discard)
        .unwrap();
    world.borrow_mut().pipes.push((1, pipe));
    assert!(run(&mut sim, &world, 20, |w| !w.failed.is_empty()));
    let w = world.borrow();
    assert_eq!(w.failed, vec![(pipe, PipeFailure::SourceLost)]);
    // Its target stream is reset before it sent a byte: the receiver hears of none.
    assert!(w.received.is_empty() && w.resets.iter().all(|&(_, c)| c == PIPE_BROKEN));
}

/// A relay that keeps a copy (a fork) loses its only target before the stream arrived
/// whole: the pipe stops the stream (PIPE_BROKEN), and the relay's own reader is told, as
/// of a reset with that code. Before, it was told nothing: when the rest of the stream
/// arrived after the stop (and was dropped), and the sender saw it all acknowledged before
/// the stop reached it (so no reset came back), the reader waited for ever (found by the
/// `piping` fuzz target: fuzz/findings/piping.fork-reader-left-waiting).
#[test]
fn a_fork_that_loses_its_target_tells_its_own_reader() {
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut sim, world, conn) = chain(35, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    let down = world.borrow().relays[&1][0];
    // The stream's datagrams reach the relay one by one, 12 ms apart.
    let slow = LinkConfig {
        bandwidth: Some(1_000_000),
        ..LinkConfig::default()
    };
    sim.link(0, 1, slow);
    // The relay's first datagram after the pipe failed, the one with its STOP_SENDING, is
    // lost: the acknowledgements of the rest reach the sender before the stop does.
    let lose_next = Rc::new(Cell::new(false));
    let lose = Rc::clone(&lose_next);
    sim.intercept(1, 0, move |_| !lose.replace(false));
    send(&mut sim, conn, &payload(4 << 10));
    let limit = sim.now() + Duration::from_secs(5);
    sim.run_until(
        limit,
        |sim, node, e| {
            let opened = node == 1 && matches!(e, Event::StreamOpened { .. });
            world.borrow_mut().on_event(sim, node, e);
            if opened {
                let now = sim.now();
                sim.endpoint(1).close(now, down, 0, Reason::default()).unwrap();
                lose_next.set(true);
            }
        },
        |_| false,
    );
    let w = world.borrow();
    assert!(
        matches!(w.failed[..], [(_, PipeFailure::TargetsLost)]),
        "{:?}",
        w.failed
    );
    assert!(w.kept[&1] < 4 << 10, "the stop came before the stream's end");
    assert!(
        w.stopped.is_empty(),
        "the sender saw every byte acknowledged first: no reset"
    );
    assert_eq!(w.resets, vec![(1, PIPE_BROKEN)], "the relay's reader is told");
}

/// A fork whose target is lost at once: the pipe stops the stream, its receipt (PIPE_BROKEN)
/// reaches the sender before the rest of the stream is acknowledged, so the sender resets it,
/// and that reset reaches the relay before its own reader (idle until then) reads again.
/// The sim, the world, and the forked stream's connection and id at the relay.
fn fork_broken_then_reset() -> (Sim, RefCell<World>, ConnectionHandle, StreamId) {
    let (mut sim, world, conn) = chain(37, 1, 1, LinkConfig::default(), Config::default());
    world.borrow_mut().local = LocalRead::Keep;
    world.borrow_mut().idle = Some(1);
    let (from, stream) = break_fork_at_once(&mut sim, &world, conn, 4 << 10, 5);
    let broken = Delivery::Failed {
        code: PIPE_BROKEN,
        relays: 0,
    };
    assert_eq!(
        world.borrow().verdicts,
        vec![(0, broken)],
        "the sender was told why, and reset"
    );
    (sim, world, from, stream)
}

/// Sends a stream of `len` bytes to the relay (node 1), whose datagrams reach it one by one
/// over a 1 Mbit/s link (12 ms apart), and closes the relay's only target the moment the
/// stream opens there, so that its pipe breaks at once; runs `secs` seconds. The forked
/// stream's connection and id at the relay.
fn break_fork_at_once(
    sim: &mut Sim,
    world: &RefCell<World>,
    conn: ConnectionHandle,
    len: usize,
    secs: u64,
) -> (ConnectionHandle, StreamId) {
    let down = world.borrow().relays[&1][0];
    let slow = LinkConfig {
        bandwidth: Some(1_000_000),
        ..LinkConfig::default()
    };
    sim.link(0, 1, slow);
    send(sim, conn, &payload(len));
    let mut forked = None;
    let limit = sim.now() + Duration::from_secs(secs);
    sim.run_until(
        limit,
        |sim, node, e| {
            let opened = match (node, &e) {
                (1, Event::StreamOpened { conn, stream, .. }) => Some((*conn, *stream)),
                _ => None,
            };
            world.borrow_mut().on_event(sim, node, e);
            if opened.is_some() {
                forked = opened;
                let now = sim.now();
                sim.endpoint(1).close(now, down, 0, Reason::default()).unwrap();
            }
        },
        |_| false,
    );
    forked.expect("the relay was sent the stream")
}

/// The reader was told of the end once, as PIPE_BROKEN, and its next read says the same.
/// Before, the sender's reset ended the stopped stream there and then: the reader was told
/// a second time, and its read found no stream (`UnknownStream`).
#[test]
fn a_fork_reset_by_its_sender_after_its_pipe_stopped_it_reads_as_broken() {
    let (mut sim, world, from, stream) = fork_broken_then_reset();
    assert_eq!(
        world.borrow().resets,
        vec![(1, PIPE_BROKEN)],
        "the relay's reader is told once"
    );
    assert_eq!(
        sim.endpoint(1).read(from, stream, usize::MAX),
        Ok(Read::Reset { code: PIPE_BROKEN })
    );
}

/// The same stream let go of unread (its handle dropped): nothing more of it can come, so
/// it ends there, and does not wait for a read that will never come.
#[test]
fn a_broken_fork_let_go_of_unread_ends() {
    let (mut sim, _world, from, stream) = fork_broken_then_reset();
    let ep = sim.endpoint(1);
    assert_eq!(ep.stop_sending(from, stream, 0), Ok(()));
    assert_eq!(ep.read(from, stream, usize::MAX), Err(ApiError::UnknownStream));
}

/// A pipe's only target ends by a stateless reset (its receiver restarted and forgot the
/// connection): the pipe fails in the same call, not at the relay's next timer or
/// datagram, which an endpoint with nothing else under way may never have. Before, the
/// reset ended the connection without giving the pipes their turn, and the pipe waited
/// for the next one: 920 ms here, and for ever in `fuzz/findings/piping.pipe-target-reset`,
/// where the relay had no connection left.
#[test]
fn a_pipe_whose_target_is_reset_fails_at_once() {
    use weir_core::{Endpoint, Identity, Seed};
    let config = |n: NodeId| Config {
        identity: Some(Identity::from_seed(&Seed::from(100 + n as u64))),
        ..Config::default()
    };
    let (mut sim, world, conn) = chain_configured(36, 1, 1, LinkConfig::default(), &config);
    // The whole stream reaches the relay at once, and goes on to the receiver slowly: it
    // is still going there when the receiver restarts, and the sender has nothing more to
    // send (the relay hears nothing from it).
    sim.link(
        1,
        2,
        LinkConfig {
            bandwidth: Some(1_000_000),
            ..LinkConfig::default()
        },
    );
    send(&mut sim, conn, &payload(32 << 10));
    assert!(run(&mut sim, &world, 2, |w| !w.pipes.is_empty()));
    sim.run_for(Duration::from_millis(100), |sim, node, e| {
        world.borrow_mut().on_event(sim, node, e)
    });
    // It restarts: same identity, no state.
    *sim.endpoint(2) = Endpoint::new(config(2), 99);
    let (reset_at, failed_at) = (RefCell::new(None), RefCell::new(None));
    let limit = sim.now() + Duration::from_secs(60);
    sim.run_until(
        limit,
        |sim, node, e| {
            match &e {
                Event::Closed {
                    reason: weir_core::CloseReason::Reset,
                    ..
                } if node == 1 => {
                    reset_at.borrow_mut().get_or_insert(sim.now());
                }
                Event::PipeFailed { .. } => {
                    failed_at.borrow_mut().get_or_insert(sim.now());
                }
                _ => {}
            }
            world.borrow_mut().on_event(sim, node, e);
        },
        |_| failed_at.borrow().is_some(),
    );
    assert_eq!(
        world.borrow().failed,
        vec![(world.borrow().pipes[0].1, PipeFailure::TargetsLost)]
    );
    let reset_at = reset_at
        .into_inner()
        .expect("the relay's connection to it was reset");
    assert_eq!(
        failed_at.into_inner(),
        Some(reset_at),
        "the pipe failed with the reset"
    );
}

/// A pipe that fails before its source arrived whole stops the source (PIPE_BROKEN). Here
/// the sender finished the stream before the stop reached it, and the stop is lost on the
/// way: the rest of the stream arrives at the relay, is acknowledged, and the sender, with
/// nothing left unacknowledged, takes the stop when it comes again as the relay's verdict
/// and sends no reset. The stream must still end at the relay once its rest has come, and
/// free its place among the sender's streams.
#[test]
fn a_source_stopped_by_its_failed_pipe_frees_its_place_once_its_rest_arrived() {
    let config = Config {
        max_concurrent_streams: 1,
        ..Config::default()
    };
    let (mut sim, world, conn) = chain(41, 1, 1, LinkConfig::default(), config);
    let mute = std::rc::Rc::new(std::cell::Cell::new(false));
    let muted = mute.clone();
    sim.intercept(1, 0, move |_| !muted.get());
    let down = world.borrow().relays[&1][0];
    let id = write_until_piped(&mut sim, &world, conn, 4 << 10);
    // The relay's target goes, and with it the pipe: its stop to the sender is lost.
    mute.set(true);
    let now = sim.now();
    sim.endpoint(1).close(now, down, 0, Reason::default()).unwrap();
    sim.endpoint(0).write(conn, id, payload(4 << 10)).unwrap();
    sim.endpoint(0).finish(conn, id).unwrap();
    sim.run_for(Duration::from_millis(100), |sim, node, e| {
        world.borrow_mut().on_event(sim, node, e)
    });
    mute.set(false);
    run(&mut sim, &world, 5, |_| false);
    let w = world.borrow();
    assert_eq!(w.failed.len(), 1, "the pipe failed");
    let broken = Delivery::Failed {
        code: PIPE_BROKEN,
        relays: 0,
    };
    assert_eq!(
        w.verdicts,
        vec![(0, broken)],
        "the sender learns the relay's verdict (and no stop)"
    );
    assert!(w.stopped.is_empty());
    drop(w);
    assert!(
        sim.endpoint(0).open_stream(conn, StreamHeader::default()).is_ok(),
        "the stopped source still holds its place"
    );
}

/// The relay's application stops a stream its pipe forwards: the pipe fails at once with
/// the application's code, every target is reset with it, and the sender is told to stop.
/// Before, the sender's reset in answer ended the stream under the pipe, which never heard
/// of it: no outcome, and both targets left waiting for the rest for ever.
#[test]
fn a_piped_stream_stopped_by_the_relay_s_application_fails_its_pipe() {
    let (mut sim, world, _, id) = stream_under_way(6);
    // Both receivers have the stream's start (a stream reset before that goes untold).
    assert!(run(&mut sim, &world, 2, |w| w.opened.len() == 2));
    // The relay's connections: two to the receivers it started, then the sender's.
    let up = ConnectionHandle::from_index(2);
    sim.endpoint(1).stop_sending(up, id, 5).unwrap();
    let pipe = world.borrow().pipes[0].1;
    assert_eq!(
        sim.endpoint_ref(1).pipe_stats(pipe),
        None,
        "the pipe ended at once"
    );
    let ended = |w: &World| [2, 3].iter().all(|n| w.resets.contains(&(*n, 5))) && !w.stopped.is_empty();
    assert!(
        run(&mut sim, &world, 20, ended),
        "both targets are reset with the code, and the sender is stopped"
    );
    let w = world.borrow();
    assert_eq!(w.failed, vec![(pipe, PipeFailure::SourceStopped { code: 5 })]);
    assert_eq!(w.stopped, vec![(0, 5)]);
    assert!(w.received.is_empty());
}

/// A fork whose pipe broke, read as broken by its reader before the rest of the stream
/// arrived: what arrives after counts toward the connection's credit, so the sender's next
/// stream goes through. Before (fuzz/findings/piping.credit-lost-with-a-broken-fork), that
/// read forgot the stream: the bytes still on their way were dropped uncounted, while the
/// sender had counted them against the connection's credit. With more than three quarters
/// of the relay's window lost that way, the relay never released enough to grant more, and
/// the connection stalled for good.
#[test]
fn a_fork_read_as_broken_before_its_rest_arrived_leaves_the_credit_whole() {
    // Small enough that the sender's first flight fills it: what is on its way when the
    // reader reads, the window less the two datagrams read, is past three quarters of it.
    let window = 12 << 10;
    let small = Config {
        receive_window: window,
        max_receive_window: window,
        stream_receive_window: window,
        max_stream_receive_window: window,
        ..Config::default()
    };
    let config = |n| if n == 1 { small.clone() } else { Config::default() };
    let (mut sim, world, conn) = chain_configured(41, 1, 1, LinkConfig::default(), &config);
    world.borrow_mut().local = LocalRead::Keep;
    // The rest of the relay's window is on its way when the first datagram arrives, and
    // the relay's reader (`World::read`, at the first bytes) reads the stream as broken.
    let (from, stream) = break_fork_at_once(&mut sim, &world, conn, 64 << 10, 3);
    let kept = world.borrow().kept.get(&1).copied().unwrap_or(0);
    assert!(
        kept < window / 4,
        "read before most of the window arrived: {kept}"
    );
    // It ended once the sender's reset in answer came (stopped until then).
    assert_eq!(
        sim.endpoint(1).read(from, stream, usize::MAX),
        Err(ApiError::UnknownStream)
    );
    // The relay now takes what comes as a receiver would: the sender's next stream, longer
    // than the relay's window, must get through.
    world.borrow_mut().relays.remove(&1);
    let next = payload(32 << 10);
    send(&mut sim, conn, &next);
    let arrived = run(&mut sim, &world, 20, |w| w.received.contains_key(&1));
    assert!(arrived, "the connection stalled");
    assert_eq!(world.borrow().received[&1], vec![next]);
}
