//! Who receives: the calling thread that waits, the wake-up that ends its receive when
//! another thread wakes it, a receive that takes what the socket holds, the driver thread's
//! stand-bys, and a dropped endpoint's socket let go by the threads that called it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;

use std::time::Instant;

use super::calling::Unpark;
use super::{Duty, Held, Release, Stood, Waiting, ANSWERED_AT, HOLD, HOLD_SENDS, STANDBY, STANDBY_MOST};
use crate::{Config, Confirm, Connection, Endpoint};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn bind(config: Config) -> Endpoint {
    let mut ep = Endpoint::bind(local(), config).unwrap();
    ep.set_timeout(Some(Duration::from_secs(60)));
    ep
}

/// A server and a client endpoint (default configuration) and the connection between them:
/// (server, client, the client's end, the server's end).
fn connected() -> (Endpoint, Endpoint, Connection, Connection) {
    let server = bind(Config::default());
    let client = bind(Config::default());
    let conn = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    (server, client, conn, incoming)
}

/// `n` round trips of 64 bytes from this thread through `conn` to a thread that echoes
/// each on `incoming`, which it hands back.
fn round_trips(conn: &Connection, incoming: Connection, n: u8) -> Connection {
    let echo = std::thread::spawn(move || {
        for _ in 0..n {
            let m = incoming.recv_message().unwrap();
            incoming.send_message(m).unwrap();
        }
        incoming
    });
    for i in 0..n {
        conn.send_message(Bytes::from(vec![i; 64])).unwrap();
        assert_eq!(conn.recv_message().unwrap(), Bytes::from(vec![i; 64]));
    }
    echo.join().unwrap()
}

/// Round trips between two threads: the waits are received by the waiting threads
/// themselves (after the first, which the driver thread answers while it receives).
#[test]
fn a_waiting_call_receives_for_itself() {
    let (server, client, conn, incoming) = connected();
    round_trips(&conn, incoming, 50);
    for ep in [&server, &client] {
        assert!(
            ep.io.call_receives.load(Ordering::Acquire) > 0,
            "no call received"
        );
    }
}

/// Another thread's wake-up of a thread that receives ends its receive: the socket gets a
/// kick (a datagram from the endpoint's waker socket); a thread that wakes itself sends none.
#[test]
fn waking_a_receiving_thread_ends_its_receive() {
    let ep = bind(Config::default());
    let io = &ep.io;
    // This thread receives: the driver thread cannot while the receiver is held here.
    let mut receiver = io.receiver.lock().unwrap();
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
        receiving: Mutex::new(Some(Arc::clone(io))),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    waker.wake_by_ref();
    assert!(
        !receiver.kicked_within(&io.socket, Duration::ZERO),
        "a thread kicked its own receive"
    );
    std::thread::spawn(move || waker.wake()).join().unwrap();
    // Without the wake-up this waits 10 s and fails.
    assert!(receiver.kicked_within(&io.socket, Duration::from_secs(10)));
    assert!(unpark.woken.load(Ordering::Acquire));
}

/// A receive takes every datagram the socket holds before the driver sees any, so the
/// core answers them together (one acknowledgement, one send), not one by one; after one
/// that found nothing more, only every `PROBE_EVERY`th looks again, so a lone datagram
/// (a round trip's) costs one receive, not two.
#[test]
fn a_receive_takes_everything_the_socket_holds_when_it_looks() {
    let ep = bind(Config::default());
    let io = &ep.io;
    let mut receiver = io.receiver.lock().unwrap();
    let peer = std::net::UdpSocket::bind(local()).unwrap();
    let mut receive = |sends: &[u8]| -> Vec<u8> {
        for &i in sends {
            peer.send_to(&[i; 100], ep.local_addr()).unwrap();
        }
        // Loopback delivers during the send: all of them are in the socket's buffer now.
        let received: Vec<_> = receiver.receive(&io.socket, Duration::from_secs(10)).collect();
        assert!(received
            .iter()
            .all(|(from, d, _)| *from == peer.local_addr().unwrap() && d.len() == 100));
        received.iter().map(|(_, d, _)| d[0]).collect()
    };
    assert_eq!(receive(&[0, 1, 2, 3, 4]), [0, 1, 2, 3, 4]);
    // It looked and found none: the next receives take one each, until the one that looks.
    assert_eq!(receive(&[5]), [5]);
    let mut left: Vec<u8> = (6..20).collect();
    let mut sends = left.clone();
    let mut takes = Vec::new();
    while !left.is_empty() {
        let got = receive(&sends);
        sends.clear();
        left.retain(|i| !got.contains(i));
        takes.push(got.len());
    }
    let ones = super::socket::PROBE_EVERY as usize - 1;
    assert_eq!(takes[..ones], vec![1; ones], "{takes:?}");
    assert_eq!(takes[ones], 14 - ones, "{takes:?}");
}

/// A receive takes no more once it holds `BURST_BYTES` (a receive block), however much
/// waits: 1,000 datagrams of 1,200 bytes sent in GSO runs of 40, as weir's sender sends
/// them (GRO delivers them as batches), come out a block's worth and at most one batch
/// more at a time, all of them, in order. Without the bound one receive took them all.
#[test]
fn a_receive_takes_a_block_s_worth_and_leaves_the_rest() {
    let ep = bind(Config::default());
    let io = &ep.io;
    let mut receiver = io.receiver.lock().unwrap();
    let buffer = io.socket.recv_buffer_size();
    // Linux reports twice the bytes it accounts, and a 1,200-byte datagram takes about
    // 2,300 of them: 1,000 need a buffer of about 4.6 MB as reported.
    if buffer < 5 << 20 {
        eprintln!("skipped: the OS gave a {buffer}-byte receive buffer (net.core.rmem_max)");
        return;
    }
    let peer = std::net::UdpSocket::bind(local()).unwrap();
    let peer_state = weir_driver::udp_state(&peer).unwrap();
    const DATAGRAMS: u32 = 1000;
    for run in 0..DATAGRAMS / 40 {
        let mut contents = vec![0u8; 40 * 1200];
        for (k, d) in contents.chunks_mut(1200).enumerate() {
            d[..4].copy_from_slice(&(run * 40 + k as u32).to_le_bytes());
        }
        let batch = weir_driver::Batch {
            destination: ep.local_addr(),
            contents: &contents,
            segment_size: 1200,
        };
        batch.send(&peer_state, (&peer).into()).unwrap();
    }
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut receives = 0;
    while held.len() < DATAGRAMS as usize {
        let received: Vec<_> = receiver.receive(&io.socket, Duration::from_secs(10)).collect();
        receives += 1;
        let bytes: usize = received.iter().map(|(_, d, _)| d.len()).sum();
        // The last receive may pass the bound by one GRO batch.
        let most = weir_driver::Inbox::BLOCK + weir_driver::Inbox::ROOM;
        assert!(bytes < most, "{bytes} bytes in one receive");
        for (_, d, stride) in received {
            // A GRO batch: datagrams of `stride` bytes back to back (0: one).
            let stride = if stride == 0 { d.len() } else { stride };
            held.extend(d.chunks(stride).map(<[u8]>::to_vec));
        }
    }
    assert!(
        receives >= 1_200_000 / weir_driver::Inbox::BLOCK,
        "{receives} receives"
    );
    for (i, d) in held.iter().enumerate() {
        assert_eq!(
            (d.len(), &d[..4]),
            (1200, &(i as u32).to_le_bytes()[..]),
            "datagram {i}"
        );
    }
}

/// A wait shorter than `PRECISE_BELOW` is timed by `ppoll` before the receive (module
/// `socket`): it still takes a datagram that is there, and ends with nothing when none
/// comes. How precisely it is timed is a figure, not a test: weir-bench's `bulk-far`
/// (adapters/bench/rounds.md).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_short_wait_takes_a_datagram_that_is_there_and_nothing_otherwise() {
    let ep = bind(Config::default());
    let io = &ep.io;
    let mut receiver = io.receiver.lock().unwrap();
    let short = Duration::from_millis(3);
    assert_eq!(receiver.receive(&io.socket, short).count(), 0);
    let peer = std::net::UdpSocket::bind(local()).unwrap();
    peer.send_to(&[9; 100], ep.local_addr()).unwrap();
    let got: Vec<_> = receiver.receive(&io.socket, short).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 100);
}

/// A thread's last call notes its endpoint weakly: once the endpoint is dropped its socket
/// is closed, and its address can be bound again, while the thread lives on.
#[test]
fn a_dropped_endpoint_lets_go_of_its_socket() {
    let (_server, client, conn, incoming) = connected();
    let addr = client.local_addr();
    conn.send_message_with(Bytes::from_static(b"x"), Confirm::Queued)
        .unwrap();
    assert_eq!(&incoming.recv_message().unwrap()[..], b"x");
    drop((conn, client));
    let again = Endpoint::bind(addr, Config::default());
    assert!(again.is_ok(), "{:?}", again.err());
}

/// A call that waits is polled when woken, not after every receive: a 1 MiB message (about
/// 720 datagrams) is received whole in a handful of polls.
#[test]
fn a_waiting_call_is_polled_when_woken_not_per_datagram() {
    let (_server, _client, conn, incoming) = connected();
    let message = Bytes::from(vec![5u8; 1 << 20]);
    let sender = {
        let message = message.clone();
        std::thread::spawn(move || conn.send_message_with(message, Confirm::Queued).map(|()| conn))
    };
    let polls = std::cell::Cell::new(0);
    let inner = incoming.inner.recv_message();
    let mut inner = std::pin::pin!(inner);
    let counted = std::future::poll_fn(|cx| {
        polls.set(polls.get() + 1);
        inner.as_mut().poll(cx)
    });
    let received = super::block_on(Some(Duration::from_secs(60)), counted)
        .unwrap()
        .unwrap();
    assert_eq!(received, message);
    let _conn = sender.join().unwrap().unwrap();
    assert!(polls.get() <= 10, "{} polls for one message", polls.get());
}

/// The rule for a burst's sends, at given instants.
#[test]
fn a_send_is_held_only_in_a_burst_and_no_longer_than_the_hold() {
    let t0 = Instant::now();
    let us = |n| t0 + Duration::from_micros(n);
    let held = |since, sends| Some(Held { since, sends });
    let decide = Release::decide;
    // After a call that waited, or long after one answered at once: at once.
    assert_eq!(decide(None, None, us(0)), Release::Now);
    assert_eq!(decide(Some(t0), None, t0 + HOLD), Release::Now);
    // Within the hold of a call answered at once, a burst: its first send starts holding,
    // the next join it until the hold ends, and then everything goes.
    assert_eq!(decide(Some(t0), None, us(10)), Release::Hold);
    assert_eq!(decide(Some(us(50)), held(us(10), 1), us(60)), Release::Join);
    assert_eq!(decide(Some(us(50)), held(us(10), 1), us(10) + HOLD), Release::Now);
    // The hold takes at most HOLD_SENDS sends: the next takes them along.
    assert_eq!(
        decide(Some(us(50)), held(us(10), HOLD_SENDS - 1), us(60)),
        Release::Join
    );
    assert_eq!(
        decide(Some(us(50)), held(us(10), HOLD_SENDS), us(60)),
        Release::Now
    );
    // A send after a wait (a reply, say) goes at once, and takes held data with it.
    assert_eq!(decide(None, held(us(10), 1), us(20)), Release::Now);
}

/// Who is in a burst after a call: a thread whose call was answered at once, or whose
/// send waited for room; not one whose read (or connect) waited.
#[test]
fn a_send_s_wait_is_part_of_its_burst_and_a_read_s_is_not() {
    assert!(Waiting::Send.in_burst(false) && Waiting::Other.in_burst(false));
    assert!(Waiting::Send.in_burst(true));
    assert!(!Waiting::Other.in_burst(true));
}

/// Sends that wait for stream credit, one after another (the server lets the client have
/// one stream open at a time, so nearly every send waits for the server's read of the one
/// before): the receives made for them leave the acknowledgement they wrote to the send
/// that comes next, the thread stays in its burst after a send that certainly waited, and
/// every message arrives, in order.
#[test]
fn a_send_that_waited_for_credit_carries_the_answer_and_goes_on_with_its_burst() {
    const N: u8 = 60;
    let server = bind(Config {
        max_concurrent_streams: 1,
        ..Config::default()
    });
    let client = bind(Config::default());
    let conn = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    let (blocked_before, last_blocked) = std::sync::mpsc::channel::<u64>();
    let watch = conn.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        for i in 0..N {
            if i == N - 2 {
                // The client's last send waits for the stream this read frees: read it
                // only once the core refused that send a stream.
                let before = last_blocked.recv().unwrap();
                let give_up = Instant::now() + Duration::from_secs(30);
                while watch.stats().unwrap().streams_blocked == before {
                    assert!(
                        Instant::now() < give_up,
                        "the last send was never refused a stream"
                    );
                    std::thread::yield_now();
                }
            }
            got.push(incoming.recv_message().unwrap()[0]);
        }
        got
    });
    for i in 0..N {
        if i == N - 1 {
            blocked_before
                .send(conn.stats().unwrap().streams_blocked)
                .unwrap();
        }
        conn.send_message_with(Bytes::from(vec![i; 64]), Confirm::Queued)
            .unwrap();
    }
    assert!(
        ANSWERED_AT.get().is_some(),
        "the send that waited ended the burst"
    );
    assert_eq!(reader.join().unwrap(), (0..N).collect::<Vec<u8>>());
    let left = client.io.answers_left_to_sends.load(Ordering::Relaxed);
    assert!(left > 0, "no receive left its answer to a send");
}

/// A send right after a call that was answered at once is held, and then leaves with no
/// further call from the sending thread: the driver thread sends it when the hold ends.
#[test]
fn a_held_send_leaves_without_another_call() {
    let (_server, client, conn, incoming) = connected();
    let mut sent = 0u8;
    let mut send = || {
        conn.send_message_with(Bytes::from(vec![sent; 64]), Confirm::Queued)
            .unwrap();
        sent += 1;
    };
    // The second of two sends is held unless this thread was paused between them for the
    // whole hold (a busy machine): tried until it is.
    let held = (0..50).any(|_| {
        send();
        send();
        client.io.sending().held.is_some()
    });
    assert!(held, "no send was held");
    let mut firsts: Vec<u8> = (0..sent).map(|_| incoming.recv_message().unwrap()[0]).collect();
    firsts.sort_unstable();
    assert_eq!(firsts, (0..sent).collect::<Vec<u8>>());
}

/// A send made outside a blocking call that starts holding has the driver thread wake by
/// the hold's end: `send_datagram` returns at once, with no blocking call's return to hand
/// the hold over ([`super::calling::leave_hold`]), and the driver thread, standing by after the
/// read before, would otherwise send the datagram when its stand-by or a datagram ended
/// its sleep. Without the hand-over in `Calls::changed` the driver thread slept past the
/// hold at the first try, in each of three runs.
#[test]
fn a_hold_started_outside_a_blocking_call_has_the_driver_thread_wake_for_it() {
    let (_server, client, conn, incoming) = connected();
    assert!(conn.max_datagram_size().is_some(), "the peer takes no datagrams");
    let echo = echo_until_closed(incoming.clone());
    let mut holds = 0;
    for i in 0..50 {
        // A read that waited (the next send is no burst's), a send answered at once (the
        // next is), then the datagram: held unless this thread was paused for the hold.
        exchange(&conn, i, Confirm::Queued);
        let message = Bytes::from(vec![i as u8; 64]);
        conn.send_message_with(message.clone(), Confirm::Queued).unwrap();
        conn.send_datagram(Bytes::from(vec![i as u8; 8])).unwrap();
        let sending = client.io.sending();
        if let Some(held) = sending.held {
            holds += 1;
            let end = held.since + HOLD;
            assert!(
                sending.asleep_until.is_none_or(|until| until <= end),
                "try {i}: the driver thread sleeps past the hold's end"
            );
        }
        drop(sending);
        assert_eq!(conn.recv_message().unwrap(), message);
    }
    assert!(holds > 0, "no datagram was held");
    for i in 0..50u8 {
        assert_eq!(incoming.recv_datagram().unwrap(), Bytes::from(vec![i; 8]));
    }
    close_echo(conn, client, echo);
}

/// A thread that echoes each message on `incoming` (not waiting for its receipt) until the
/// connection ends.
fn echo_until_closed(incoming: Connection) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Ok(m) = incoming.recv_message() {
            if incoming.send_message_with(m, Confirm::Queued).is_err() {
                break;
            }
        }
    })
}

/// Closes the client's end of an [`echo_until_closed`] exchange (its connection and
/// endpoint) and waits for the echoing thread to see it and end.
fn close_echo(conn: Connection, client: Endpoint, echo: std::thread::JoinHandle<()>) {
    drop(conn);
    drop(client);
    echo.join().unwrap();
}

/// A 64-byte message numbered `i` out through `conn`, sent as `confirm` says, and its echo
/// back.
fn exchange(conn: &Connection, i: usize, confirm: Confirm) {
    let m = Bytes::from(vec![i as u8; 64]);
    conn.send_message_with(m.clone(), confirm).unwrap();
    assert_eq!(conn.recv_message().unwrap(), m);
}

/// Requests whose sends wait for their receipt (`send_message`, `Confirm::Delivered`) do
/// not wake the driver thread: the reply comes with the receipt, so the read after the send
/// is answered at once and the next send starts holding as a burst's would, but it goes on
/// to wait, which sends what it held, and its poll once woken is no send (weir-driver's
/// `Urgency::Soon`). 300 requests: the client's driver thread was woken by calls 3-4 times
/// (five runs); 274-284 when the call that started holding woke it, 30-284 when the send
/// woken by its receipt polled as a send and started holding again (each undone in turn).
#[test]
fn requests_that_wait_for_their_receipt_do_not_wake_the_driver_thread() {
    let (_server, client, conn, incoming) = connected();
    let echo = echo_until_closed(incoming);
    let request = |i: usize| exchange(&conn, i, Confirm::Delivered);
    (0..10).for_each(request);
    let before = client.io.driver_wakes.load(Ordering::Relaxed);
    (0..300).for_each(request);
    let wakes = client.io.driver_wakes.load(Ordering::Relaxed) - before;
    close_echo(conn, client, echo);
    assert!(
        wakes <= 30,
        "the driver thread was woken {wakes} times in 300 requests"
    );
}

/// The driver thread's stand-by doubles while calls receive, up to its longest, and gives
/// the receiver back, at its first length again, once one passes with no call receiving.
#[test]
fn a_stand_by_doubles_while_calls_receive_and_ends_once_none_does() {
    let ms = Duration::from_millis;
    let stood = |quiet, over| Stood { quiet, over };
    let mut standby = STANDBY;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let duty;
        (duty, standby) = stood(false, true).next(Duty::StandBy, standby);
        assert!(duty == Duty::StandBy);
        seen.push(standby);
    }
    assert_eq!(seen, [ms(2), ms(4), ms(8), ms(8), ms(8), ms(8)]);
    assert_eq!(STANDBY_MOST, ms(8));
    // Cut short by an unpark with no call receiving: it stands by again, as long.
    let (duty, next) = stood(true, false).next(Duty::StandBy, standby);
    assert!(duty == Duty::StandBy && next == standby);
    // A whole stand-by with no call receiving: the receiver goes back, the length resets.
    let (duty, next) = stood(true, true).next(Duty::StandBy, standby);
    assert!(duty == Duty::Receive && next == STANDBY);
    // Parked while a call received (`Yield`): it stands by next, its length kept.
    for (quiet, over) in [(true, true), (false, true), (true, false), (false, false)] {
        let (duty, next) = stood(quiet, over).next(Duty::Yield, ms(4));
        assert!(duty == Duty::StandBy && next == ms(4), "{quiet} {over}");
    }
}

/// Calls that keep receiving keep the driver thread's stand-bys from running out: a call
/// that receives near a stand-by's end unparks the thread to begin the next one (module
/// docs). Round trips for twenty of the longest stand-bys' time: the client's driver thread
/// parked to its time while calls received at most a few times (a stand-by can still run
/// out where the calling thread did not run for `RENEW_AHEAD`, or a core's timer come due):
/// 0-1 in nine runs on an idle machine, 1-6 in six beside two busy loops, which starve the
/// threads for longer. Without the renewal every stand-by ran out: 21 in each of two runs.
/// The sends do not wait for their receipt (`Confirm::Queued`, as weir-bench's): when this
/// test was written, a send that waited for it woke the driver thread at every round trip,
/// renewal or not (`requests_that_wait_for_their_receipt_do_not_wake_the_driver_thread`).
#[test]
fn calls_that_keep_receiving_keep_the_stand_bys_from_running_out() {
    let (_server, client, conn, incoming) = connected();
    let echo = echo_until_closed(incoming);
    let round_trip = |i: usize| exchange(&conn, i, Confirm::Queued);
    // Until calls receive and the driver thread stands by.
    (0..10).for_each(round_trip);
    let io = &client.io;
    let (start, before) = (Instant::now(), io.standbys_run_out.load(Ordering::Relaxed));
    let mut trips = 0;
    while start.elapsed() < 20 * STANDBY_MOST {
        round_trip(trips);
        trips += 1;
    }
    let run_out = io.standbys_run_out.load(Ordering::Relaxed) - before;
    close_echo(conn, client, echo);
    assert!(
        run_out <= 10,
        "{run_out} stand-bys ran out in {trips} round trips"
    );
}

/// Once the application stops calling, the driver thread takes the receiver back from its
/// stand-by, however long calls kept receiving before: a peer's message is acknowledged with
/// no call on this side. (The stand-by had grown to its longest: the round trips before ran
/// with calls receiving for themselves.)
#[test]
fn the_driver_thread_receives_again_once_calls_stop() {
    let (server, client, conn, incoming) = connected();
    let incoming = round_trips(&conn, incoming, 200);
    assert!(
        server.io.call_receives.load(Ordering::Acquire) > 0,
        "no call received"
    );
    // No call on the server now: only its driver thread can receive and acknowledge.
    conn.send_message_with(Bytes::from_static(b"unread"), Confirm::Acknowledged)
        .unwrap();
    assert_eq!(incoming.recv_message().unwrap(), Bytes::from_static(b"unread"));
    drop(client);
}
