//! Two drivers joined in memory, polled with wakers that count their wake-ups.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use bytes::{Bytes, BytesMut};
use weir_core::wire::StreamId;
use weir_core::{Config, StreamHeader};

use super::{Driver, Sending};
use crate::{Confirm, Error};
use weir_core::ConnectionHandle;

mod time;

/// The handles of a client's first connection and of the next one to take its slot,
/// as the core gives them out: `#0` and `#0.1`.
pub(super) fn slot_reused() -> (ConnectionHandle, ConnectionHandle) {
    let mut ep = weir_core::Endpoint::new(Config::default(), weir_core::Seed::from(1));
    let to = "127.0.0.1:9".parse().expect("an address");
    let mut now = weir_core::time::Instant::ZERO;
    let first = ep.connect(now, to).expect("a connection");
    ep.release(first).expect("known");
    ep.close(now, first, 0, weir_core::wire::Reason::default())
        .expect("known");
    while ep.connection_count() > 0 {
        now = ep.poll_timeout().expect("a closing connection has a deadline");
        ep.handle_timeout(now);
    }
    let second = ep.connect(now, to).expect("a connection");
    assert_eq!((first.index(), second.index()), (0, 0), "the slot is reused");
    assert_ne!(first, second);
    (first, second)
}

/// Two drivers joined in memory: every datagram one sends, the other receives.
struct Pair {
    a: Driver,
    b: Driver,
}

const A: &str = "127.0.0.1:1000";
const B: &str = "127.0.0.1:2000";

impl Pair {
    fn new() -> Pair {
        Pair::with(Config::default())
    }

    /// A pair whose senders use NewReno, which paces its window over the RTT: with no
    /// time passing, whole bursts may go (BBR paces at its bandwidth estimate from the
    /// first samples, 2 ms at a time), for tests of batches.
    fn new_reno() -> Pair {
        Pair::with(Config {
            congestion: weir_core::congestion::CongestionAlgorithm::NewReno,
            ..Config::default()
        })
    }

    fn with(config: Config) -> Pair {
        Pair {
            a: Driver::new(config.clone(), A.parse().unwrap()),
            b: Driver::new(config, B.parse().unwrap()),
        }
    }

    /// Carries datagrams both ways until neither has more (bounded).
    fn settle(&mut self) {
        let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(&mut buf) {
                self.b
                    .handle_datagram(A.parse().unwrap(), BytesMut::from(&buf[..t.len]));
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(&mut buf) {
                self.a
                    .handle_datagram(B.parse().unwrap(), BytesMut::from(&buf[..t.len]));
                moved = true;
            }
            if !moved {
                self.wake();
                return;
            }
        }
        panic!("the pair never settled");
    }

    /// Wakes the calls the last steps let go on, as the lock's guard does.
    fn wake(&mut self) {
        for d in [&mut self.a, &mut self.b] {
            d.take_woken(None).into_iter().for_each(Waker::wake);
        }
    }
}

/// A waker that counts how often it was woken.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (Arc::clone(&count), Waker::from(count))
}

fn woken(count: &Count) -> usize {
    count.0.load(Ordering::Relaxed)
}

fn ready<T>(p: Poll<T>) -> T {
    match p {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("pending"),
    }
}

/// Connects a to b; returns both sides' connection ids.
fn connect(p: &mut Pair) -> (ConnectionHandle, ConnectionHandle) {
    let w = Waker::noop();
    let a = p.a.connect(B.parse().unwrap(), None, None).unwrap();
    assert!(p.a.poll_connected(a, w).is_pending());
    assert!(p.b.poll_accept(w).is_pending());
    p.settle();
    let a = ready(p.a.poll_connected(a, w)).unwrap().id;
    let b = ready(p.b.poll_accept(w)).unwrap().id;
    (a, b)
}

/// Has a send `data` as a message, queued.
fn send(p: &mut Pair, conn: ConnectionHandle, data: &'static [u8]) {
    let mut m = Sending::new(None, Bytes::from_static(data), Confirm::Queued);
    ready(p.a.poll_send(conn, &mut m, Waker::noop())).unwrap();
}

fn recv(d: &mut Driver, conn: ConnectionHandle) -> Poll<Result<Bytes, Error>> {
    d.poll_recv_message(conn, 1 << 20, Waker::noop())
}

/// A driver's endpoint prefetches with `crate::prefetch` unless its configuration named
/// a hook of its own, which it keeps. (Function pointers do not compare reliably: the hook
/// given counts its calls instead.)
#[test]
fn the_endpoint_prefetches_with_the_driver_s_hook_unless_given_one() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    fn own(_: *const u8, _: usize) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
    let hook = |config: Config| {
        let hook = Driver::new(config, A.parse().unwrap()).ep.config().prefetch;
        hook.expect("a prefetch hook")
    };
    hook(Config::default())(std::ptr::null(), 64);
    assert_eq!(CALLS.load(Ordering::Relaxed), 0);
    let given = Config {
        prefetch: Some(own),
        ..Config::default()
    };
    hook(given)(std::ptr::null(), 64);
    assert_eq!(CALLS.load(Ordering::Relaxed), 1);
}

#[test]
fn calls_are_answered_at_once_when_the_core_can() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    send(&mut p, a, b"at once");
    assert!(recv(&mut p.b, b).is_pending());
    p.settle();
    assert_eq!(&ready(recv(&mut p.b, b)).unwrap()[..], b"at once");
    assert!(recv(&mut p.b, b).is_pending());

    // A stream: its pieces, then its end.
    let w = Waker::noop();
    let s = ready(p.a.poll_open(a, &StreamHeader::default(), w)).unwrap();
    assert_eq!(
        ready(p.a.poll_write(a, s, &Bytes::from_static(b"piece"), w)).unwrap(),
        5
    );
    assert!(matches!(p.a.finish(a, s, Confirm::Queued), Some(Ok(()))));
    p.settle();
    let (incoming, _) = ready(p.b.poll_accept_stream(b, w)).unwrap();
    let pieces = ready(p.b.poll_read(b, incoming, 100, w)).unwrap().unwrap();
    assert_eq!(crate::join(pieces), &b"piece"[..]);
    assert!(ready(p.b.poll_read(b, incoming, 100, w)).unwrap().is_none());
}

#[test]
fn a_waiting_call_is_woken_by_what_it_waits_for_and_by_nothing_else() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let w = Waker::noop();
    let first = ready(p.a.poll_open(a, &StreamHeader::default(), w)).unwrap();
    let second = ready(p.a.poll_open(a, &StreamHeader::default(), w)).unwrap();
    assert_eq!(
        ready(p.a.poll_write(a, first, &Bytes::from_static(b"1"), w)).unwrap(),
        1
    );
    p.settle();
    let (one, _) = ready(p.b.poll_accept_stream(b, w)).unwrap();
    let _ = ready(p.b.poll_read(b, one, 100, w)).unwrap();
    let (count, reader) = counting();
    assert!(p.b.poll_read(b, one, 100, &reader).is_pending());

    // Bytes of another stream: the reader of the first sleeps on.
    assert_eq!(
        ready(p.a.poll_write(a, second, &Bytes::from_static(b"2"), w)).unwrap(),
        1
    );
    p.settle();
    assert_eq!(woken(&count), 0, "woken by another stream");

    // Its own bytes wake it, once, and its poll takes them.
    assert_eq!(
        ready(p.a.poll_write(a, first, &Bytes::from_static(b"11"), w)).unwrap(),
        2
    );
    p.settle();
    assert_eq!(woken(&count), 1);
    let more = ready(p.b.poll_read(b, one, 100, &reader)).unwrap().unwrap();
    assert_eq!(crate::join(more), &b"11"[..]);
}

#[test]
fn a_poll_given_up_takes_nothing() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    // A receive that waited and was dropped (its task gone): the message it waited for
    // goes to the next receive.
    let (count, gone) = counting();
    assert!(p.b.poll_recv_message(b, 1 << 20, &gone).is_pending());
    drop(gone);
    send(&mut p, a, b"kept");
    p.settle();
    assert_eq!(woken(&count), 1);
    assert_eq!(&ready(recv(&mut p.b, b)).unwrap()[..], b"kept");
}

/// A counting waker made as tokio's current-thread `block_on` makes its own: the clones
/// of the waker a poll is given carry an equal vtable at another address. `will_wake`
/// compares the vtables' addresses, so it says false between the waker the driver kept and
/// the one the same task polls with again. tokio 1.54's are such in a release build: a
/// throw-away version of this test written with `block_on`'s own waker (no command here
/// runs it) kept 1,000 wakers there, and one in a debug build, where the two vtables
/// happened to be one; hence this hand-made twin, which fails either way.
mod twin {
    use super::Count;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::task::{RawWaker, RawWakerVTable, Waker};

    static GIVEN: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    static CLONED: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);

    /// The waker a poll is given; its clones are made with [`CLONED`].
    pub(super) fn waker(count: &Arc<Count>) -> Waker {
        let data = Arc::into_raw(Arc::clone(count)).cast::<()>();
        // SAFETY: `data` is an `Arc<Count>`'s pointer, whose reference the waker owns; the
        // four functions keep the `RawWaker` contract for it (below).
        #[allow(unsafe_code)]
        unsafe {
            Waker::from_raw(RawWaker::new(data, &GIVEN))
        }
    }

    // SAFETY (all four): `data` came from `Arc::into_raw` of an `Arc<Count>` (in `waker` or
    // `clone`), and each waker owns one strong reference: a clone adds one, a wake or a drop
    // gives its own back, a wake by reference leaves it.
    #[allow(unsafe_code)]
    unsafe fn clone(data: *const ()) -> RawWaker {
        unsafe { Arc::increment_strong_count(data.cast::<Count>()) };
        RawWaker::new(data, &CLONED)
    }

    #[allow(unsafe_code)]
    unsafe fn wake(data: *const ()) {
        let count = unsafe { Arc::from_raw(data.cast::<Count>()) };
        count.0.fetch_add(1, Ordering::Relaxed);
    }

    #[allow(unsafe_code)]
    unsafe fn wake_by_ref(data: *const ()) {
        let count = unsafe { &*data.cast::<Count>() };
        count.0.fetch_add(1, Ordering::Relaxed);
    }

    #[allow(unsafe_code)]
    unsafe fn drop(data: *const ()) {
        unsafe { Arc::decrement_strong_count(data.cast::<Count>()) };
    }
}

/// A task that polls a waiting call again and again is kept once, and woken once, however
/// its waker's clones compare by `will_wake` ([`twin`]). Each poll kept one more clone
/// before: a loop selecting over a read and a timer that ticks every millisecond would have
/// kept 3.6 million of them through a quiet hour, and woken them all when the message came.
#[test]
fn a_task_polling_a_waiting_call_again_is_kept_once() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let count = Arc::new(Count::default());
    let waker = twin::waker(&count);
    assert!(
        !waker.will_wake(&waker.clone()),
        "the twin's clones compare as tokio's do"
    );
    for _ in 0..1_000 {
        assert!(p.b.poll_recv_message(b, 1 << 20, &waker).is_pending());
    }
    let kept = p.b.wakers.len();
    assert_eq!(kept, 1);
    send(&mut p, a, b"at last");
    p.settle();
    assert_eq!(woken(&count), 1);
    assert_eq!(&ready(recv(&mut p.b, b)).unwrap()[..], b"at last");
}

#[test]
fn a_message_given_up_half_written_is_reset() {
    let config = Config {
        send_buffer: 4_096,
        ..Config::default()
    };
    let mut p = Pair::with(config);
    let (a, b) = connect(&mut p);
    let big: Bytes = vec![7u8; 100_000].into();
    let mut m = Sending::new(None, big, Confirm::Queued);
    assert!(p.a.poll_send(a, &mut m, Waker::noop()).is_pending());
    p.a.abandon_send(a, &m);
    p.settle();
    // The receiver never sees it whole; the sender's next message goes through.
    assert!(recv(&mut p.b, b).is_pending());
    send(&mut p, a, b"next");
    p.settle();
    assert_eq!(&ready(recv(&mut p.b, b)).unwrap()[..], b"next");
}

#[test]
fn shutdown_wakes_the_waiting_calls_and_answers_every_call() {
    let mut p = Pair::new();
    let (_, b) = connect(&mut p);
    let (count, waker) = counting();
    assert!(p.b.poll_recv_message(b, 1 << 20, &waker).is_pending());
    assert!(p.b.poll_accept(&waker).is_pending());
    p.b.shutdown();
    p.wake();
    assert!(woken(&count) >= 1, "the waiting calls were not woken");
    assert!(matches!(ready(recv(&mut p.b, b)), Err(Error::Shutdown)));
    assert!(matches!(ready(p.b.poll_accept(&waker)), Err(Error::Shutdown)));
}

/// a's datagrams go as [`crate::Outbox`] batches of at most `segments`, cut up again on
/// b's side; b's go one by one. Returns the datagram count of every batch a sent.
fn settle_batched(p: &mut Pair, segments: usize) -> Vec<usize> {
    let mut outbox = crate::Outbox::new();
    let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
    let mut batches = Vec::new();
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(batch) = outbox.next(&mut p.a, segments) {
            assert_eq!(batch.destination, B.parse().unwrap());
            batches.push(batch.datagrams());
            let received = BytesMut::from(batch.contents);
            p.b.handle_received(A.parse().unwrap(), received, batch.segment_size);
            moved = true;
        }
        while let Some(t) = p.b.poll_transmit(&mut buf) {
            p.a.handle_datagram(B.parse().unwrap(), BytesMut::from(&buf[..t.len]));
            moved = true;
        }
        if !moved {
            return batches;
        }
    }
    panic!("the pair never settled");
}

#[test]
fn a_message_crosses_in_batches_of_equal_datagrams() {
    let mut p = Pair::new_reno();
    let (a, b) = connect(&mut p);
    let message: Bytes = (0..300_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut m = Sending::new(None, message.clone(), Confirm::Queued);
    let w = Waker::noop();
    // Both sides polled as their tasks would be: the message goes in pieces as the
    // receiver gathers it and frees credit.
    let mut batches = Vec::new();
    let received = loop {
        let _ = p.a.poll_send(a, &mut m, w);
        if let Poll::Ready(r) = recv(&mut p.b, b) {
            break r.unwrap();
        }
        let moved = settle_batched(&mut p, 8);
        assert!(!moved.is_empty(), "stuck");
        batches.extend(moved);
    };
    assert_eq!(received, message);
    assert!(batches.iter().all(|&n| (1..=8).contains(&n)), "{batches:?}");
    // The congestion window lets whole bursts go: most datagrams travel in full batches.
    let full: usize = batches.iter().filter(|&&n| n == 8).sum();
    assert!(full * 2 > batches.iter().sum::<usize>(), "{batches:?}");
}

fn read(p: &mut Pair, conn: ConnectionHandle, stream: StreamId, max: usize) -> Option<Vec<Bytes>> {
    ready(p.b.poll_read(conn, stream, max, Waker::noop())).unwrap()
}

#[test]
fn a_read_takes_every_piece_there_is_up_to_its_max() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let message: Bytes = (0..6_000u32).map(|i| i as u8).collect::<Vec<u8>>().into();
    let mut m = Sending::new(None, message.clone(), Confirm::Queued);
    ready(p.a.poll_send(a, &mut m, Waker::noop())).unwrap();
    p.settle();
    let (stream, _) = ready(p.b.poll_accept_stream(b, Waker::noop())).unwrap();
    // At most `max` bytes, however many pieces.
    let first = read(&mut p, b, stream, 100).unwrap();
    assert_eq!(first.iter().map(Bytes::len).sum::<usize>(), 100);
    // The rest in one answer: several datagrams' pieces, in order.
    let rest = read(&mut p, b, stream, usize::MAX).unwrap();
    assert!(rest.len() > 1, "{} pieces", rest.len());
    let got: Vec<u8> = first
        .iter()
        .chain(&rest)
        .flat_map(|c| c.iter().copied())
        .collect();
    assert_eq!(got, message);
    // Then the end, told by the next read.
    assert!(read(&mut p, b, stream, usize::MAX).is_none());
}

#[test]
fn a_connection_id_is_never_reused() {
    let mut p = Pair::new();
    let (a1, _) = connect(&mut p);
    p.a.release_connection(a1);
    p.settle();
    let (a2, _) = connect(&mut p);
    assert_ne!(a1, a2);
    // The old id names the old, closed connection, not the new one.
    let mut m = Sending::new(None, Bytes::from_static(b"stale"), Confirm::Queued);
    assert!(ready(p.a.poll_send(a1, &mut m, Waker::noop())).is_err());
}

/// Moves one datagram from a to b, if a has one; b's answers all go back.
fn deliver_one(p: &mut Pair) -> bool {
    let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
    let Some(t) = p.a.poll_transmit(&mut buf) else {
        return false;
    };
    p.b.handle_datagram(A.parse().unwrap(), BytesMut::from(&buf[..t.len]));
    while let Some(t) = p.b.poll_transmit(&mut buf) {
        p.a.handle_datagram(B.parse().unwrap(), BytesMut::from(&buf[..t.len]));
    }
    p.wake();
    true
}

#[test]
fn a_message_being_gathered_wakes_its_receive_once_whole() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let message: Bytes = (0..20_000u32)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut m = Sending::new(None, message.clone(), Confirm::Queued);
    ready(p.a.poll_send(a, &mut m, Waker::noop())).unwrap();
    assert!(deliver_one(&mut p), "the first datagram");
    // The receive starts gathering the message and waits for the rest.
    let (count, waker) = counting();
    assert!(p.b.poll_recv_message(b, 1 << 20, &waker).is_pending());
    // Polled again at each wake, as its task would be: a wake with nothing to take is a
    // wake too many.
    let (mut delivered, mut seen, mut idle_wakes, mut got) = (1, 0, 0, None);
    while got.is_none() && deliver_one(&mut p) {
        delivered += 1;
        if woken(&count) > seen {
            seen = woken(&count);
            match p.b.poll_recv_message(b, 1 << 20, &waker) {
                Poll::Pending => idle_wakes += 1,
                Poll::Ready(r) => got = Some(r.unwrap()),
            }
        }
    }
    assert!(delivered > 2, "{delivered} datagrams");
    assert_eq!(idle_wakes, 0, "woken for pieces, not for the whole message");
    assert_eq!(got, Some(message));
}

#[test]
fn a_message_gathered_before_a_close_is_still_received() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let message: Bytes = vec![9u8; 5_000].into();
    let mut m = Sending::new(None, message.clone(), Confirm::Queued);
    ready(p.a.poll_send(a, &mut m, Waker::noop())).unwrap();
    assert!(deliver_one(&mut p));
    assert!(recv(&mut p.b, b).is_pending(), "gathering");
    p.settle();
    // Whole in the driver, not yet taken; then the peer closes.
    p.a.close(a, 0, weir_core::wire::Reason::default()).unwrap();
    p.settle();
    assert_eq!(ready(recv(&mut p.b, b)).unwrap(), message);
    assert!(matches!(ready(recv(&mut p.b, b)), Err(Error::Closed(_))));
}

#[test]
fn a_connect_given_up_closes_the_attempt() {
    let mut p = Pair::new();
    let w = Waker::noop();
    let a = p.a.connect(B.parse().unwrap(), None, None).unwrap();
    p.settle();
    // The handshake is done, but the caller gave up before taking the connection.
    p.a.abandon_connect(a);
    p.settle();
    let b = ready(p.b.poll_accept(w)).unwrap().id;
    assert!(
        matches!(ready(recv(&mut p.b, b)), Err(Error::Closed(_))),
        "the server's side of the attempt is closed, not left open"
    );
}

#[test]
fn a_stream_read_after_its_connection_closed_gives_what_arrived_then_the_end() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let w = Waker::noop();
    let whole = ready(p.a.poll_open(a, &StreamHeader::default(), w)).unwrap();
    let cut = ready(p.a.poll_open(a, &StreamHeader::default(), w)).unwrap();
    let data = Bytes::from(vec![3u8; 3_000]);
    assert_eq!(ready(p.a.poll_write(a, whole, &data, w)).unwrap(), 3_000);
    assert!(matches!(p.a.finish(a, whole, Confirm::Queued), Some(Ok(()))));
    assert_eq!(ready(p.a.poll_write(a, cut, &data, w)).unwrap(), 3_000);
    p.settle();
    let (first, _) = ready(p.b.poll_accept_stream(b, w)).unwrap();
    assert_eq!(first, whole);
    let pieces = ready(p.b.poll_read(b, whole, 1_000, w)).unwrap().unwrap();
    assert_eq!(pieces.iter().map(Bytes::len).sum::<usize>(), 1_000);
    // The peer closes with one stream half read here and one not yet accepted, the
    // second never finished.
    p.a.close(a, 0, weir_core::wire::Reason::default()).unwrap();
    p.settle();
    let mut rest = 0;
    while let Some(pieces) = ready(p.b.poll_read(b, whole, 1 << 20, w)).unwrap() {
        rest += pieces.iter().map(Bytes::len).sum::<usize>();
    }
    assert_eq!(rest, 2_000, "the rest, from the core, then the end");
    let (second, _) = ready(p.b.poll_accept_stream(b, w)).unwrap();
    assert_eq!(second, cut);
    let got = ready(p.b.poll_read(b, cut, 1 << 20, w)).unwrap().unwrap();
    assert_eq!(got.iter().map(Bytes::len).sum::<usize>(), 3_000);
    assert!(
        matches!(ready(p.b.poll_read(b, cut, 1 << 20, w)), Err(Error::Closed(_))),
        "a stream cut by the close ends with the close"
    );
}

#[test]
fn a_finish_after_the_receipt_came_answers_from_it() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    let w = Waker::noop();
    let header = StreamHeader::default().with_total_len(4);
    let s = ready(p.a.poll_open(a, &header, w)).unwrap();
    assert_eq!(
        ready(p.a.poll_write(a, s, &Bytes::from_static(b"four"), w)).unwrap(),
        4
    );
    p.settle();
    assert_eq!(ready(recv(&mut p.b, b)).unwrap(), Bytes::from_static(b"four"));
    p.settle();
    // Read whole and its receipt back before the writer finished it.
    assert!(matches!(p.a.finish(a, s, Confirm::Delivered), Some(Ok(()))));
}

/// With no `tracing` subscriber (none is set in this test binary), a connection keeps no
/// span: entering a disabled one for every event would cost every event.
#[test]
fn connections_keep_no_span_that_no_subscriber_wants() {
    let mut p = Pair::new();
    let (a, b) = connect(&mut p);
    send(&mut p, a, b"x");
    p.settle();
    assert_eq!(&ready(recv(&mut p.b, b)).unwrap()[..], b"x");
    for d in [&p.a, &p.b] {
        assert!(d.conns.len() > 0);
        assert!(d.conns.iter().all(|(_, c)| c.span.is_none()));
    }
}

/// A waker that notes its name in a shared list when woken.
struct Named(&'static str, Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Wake for Named {
    fn wake(self: Arc<Self>) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[test]
fn what_changed_wakes_each_waiting_call_once_in_the_order_marked_and_lets_a_burst_s_room_go() {
    let mut p = Pair::new();
    let (a, _) = connect(&mut p);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let waker = |name| Waker::from(Arc::new(Named(name, Arc::clone(&order))));
    let (s1, s5) = (StreamId(1), StreamId(5));
    p.a.park(super::Wait::Conn(a, Some(s5)), &waker("five"));
    p.a.park(super::Wait::Conn(a, Some(s1)), &waker("one"));
    // Marked out of order and more than once, as a burst of events marks them.
    for s in [s5, s1, s5, s5] {
        p.a.dirty.push((a, Some(s)));
    }
    p.a.wake_changed();
    p.wake();
    // In the order first marked (the core's order of events), each once.
    assert_eq!(*order.lock().unwrap(), ["five", "one"]);
    assert!(p.a.dirty.is_empty());
    // A burst's marks: handed out, and the room they took let go.
    p.a.dirty.extend((0..10_000).map(|i| (a, Some(StreamId(4 * i)))));
    p.a.wake_changed();
    assert!(p.a.dirty.is_empty());
    assert!(p.a.dirty.capacity() <= super::waiting::DIRTY_KEPT);
}

/// A hand-over spares the call that made it (it asks again at once), but not its task's
/// other calls, which share its waker (one polled before it would not be polled again),
/// nor calls without an identity (a bare poll's): module `waiting`.
#[test]
fn a_hand_over_spares_its_own_call_and_wakes_its_task_for_the_others() {
    let mut p = Pair::new();
    let (a, _) = connect(&mut p);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = Waker::from(Arc::new(Named("task", Arc::clone(&order))));
    let on = super::Wait::Conn(a, None);
    let (asking, other) = (super::CallId(1), super::CallId(2));
    let spared = Some(super::Spared {
        waker: &task,
        call: asking,
    });
    let woken = |d: &mut Driver| d.take_woken(spared).len();
    let park = |d: &mut Driver, call| {
        d.asking = call;
        d.park(on, &task);
        d.asking = None;
    };
    // The call alone, parked twice (polled twice): spared.
    park(&mut p.a, Some(asking));
    park(&mut p.a, Some(asking));
    p.a.wake(on);
    assert_eq!(woken(&mut p.a), 0);
    // Another call of the task on the same key: the task is woken for it.
    park(&mut p.a, Some(asking));
    park(&mut p.a, Some(other));
    p.a.wake(on);
    assert_eq!(woken(&mut p.a), 1);
    // A call with no identity: woken.
    park(&mut p.a, Some(asking));
    park(&mut p.a, None);
    p.a.wake(on);
    assert_eq!(woken(&mut p.a), 1);
    // Nothing spared: the call is woken, once however often it parked.
    park(&mut p.a, Some(asking));
    park(&mut p.a, Some(asking));
    p.a.wake(on);
    assert_eq!(p.a.take_woken(None).len(), 1);
}

/// Datagrams another shard routed here go to the core a run per source, each run one
/// batch (`Endpoint::handle_datagrams`): the traced endpoint records each run as one
/// record, in order (`batch`, or `in` for a run of one).
#[test]
fn routed_datagrams_go_to_the_core_a_run_per_source() {
    static MESSAGE: [u8; 5_000] = [7; 5_000];
    let dir = std::env::temp_dir().join(format!("weir-driver-runs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b.trace");
    let (seed, config) = (weir_core::Seed::from_bytes([9; 32]), Config::default());
    let b = Driver::with(
        config.clone(),
        B.parse().unwrap(),
        (seed, None),
        super::Clock::System,
        Some(path.to_string_lossy().into_owned()),
    );
    let mut p = Pair {
        a: Driver::new(config, A.parse().unwrap()),
        b,
    };
    let (a, _) = connect(&mut p);
    send(&mut p, a, &MESSAGE);
    let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
    let mut sent = Vec::new();
    while let Some(t) = p.a.poll_transmit(&mut buf) {
        sent.push(BytesMut::from(&buf[..t.len]));
    }
    assert!(sent.len() >= 4, "{}", sent.len());
    let (from_a, other): (std::net::SocketAddr, std::net::SocketAddr) =
        (A.parse().unwrap(), "127.0.0.1:3000".parse().unwrap());
    let n = sent.len();
    let mut routed: Vec<_> = sent.drain(..2).map(|d| (from_a, d)).collect();
    routed.push((other, BytesMut::from(&b"not a weir packet"[..])));
    routed.extend(sent.into_iter().map(|d| (from_a, d)));
    p.b.handle_datagrams(routed);
    drop(p);
    let trace = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let runs: Vec<(String, usize)> = trace
        .lines()
        .filter(|l| matches!(l.split(' ').nth(1), Some("batch" | "in")))
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            (words[2].to_string(), words.len() - 3)
        })
        .collect();
    let last: Vec<_> = runs[runs.len() - 3..].to_vec();
    assert_eq!(
        last,
        [
            (A.to_string(), 2),
            ("127.0.0.1:3000".to_string(), 1),
            (A.to_string(), n - 2)
        ],
        "{runs:?}"
    );
}
