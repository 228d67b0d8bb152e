//! The driver's clock and what is timed by it: a batch's one reading, polls that read
//! none, the figures' period, a request's wait, and two drivers on one seed and clock
//! sending the same bytes.

use super::*;
use crate::driver::metrics::{period, PERIOD};

/// The datagrams of one batch leave together, in one system call: the clock is read for
/// the batch's first, not for each (`Driver::poll_transmit_next`).
#[test]
fn a_batch_reads_the_clock_once() {
    let mut p = Pair::new_reno();
    let (a, _) = connect(&mut p);
    let message = Bytes::from(vec![7u8; 100_000]);
    let mut m = Sending::new(None, message, Confirm::Queued);
    let _ = p.a.poll_send(a, &mut m, Waker::noop());
    let mut outbox = crate::Outbox::new();
    let before = p.a.reads.get();
    let batch = outbox.next(&mut p.a, 8).expect("a batch");
    assert_eq!(batch.datagrams(), 8, "the window lets a full batch go");
    assert_eq!(p.a.reads.get() - before, 1, "one clock reading for the batch");
}

/// A poll for datagrams when nothing waits to go answers `None` without reading the clock
/// (`Endpoint::may_transmit`); one after a call that left something reads it.
#[test]
fn a_poll_that_finds_nothing_to_send_reads_no_clock() {
    let mut p = Pair::new();
    let (a, _) = connect(&mut p);
    p.settle();
    let mut buf = vec![0u8; weir_core::wire::MAX_DATAGRAM_SIZE];
    let before = p.a.reads.get();
    assert!(p.a.poll_transmit(&mut buf).is_none());
    assert_eq!(p.a.reads.get(), before, "no clock read for nothing to send");
    let mut m = Sending::new(None, Bytes::from_static(b"hi"), Confirm::Queued);
    let _ = p.a.poll_send(a, &mut m, Waker::noop());
    let before = p.a.reads.get();
    assert!(p.a.poll_transmit(&mut buf).is_some());
    assert_eq!(p.a.reads.get() - before, 1);
}

/// The figures go to whatever recorder the application installed, labelled with the
/// endpoint's address: the handshake's outcome, datagrams, drops by reason, connections.
#[test]
fn the_figures_go_to_the_installed_recorder() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || publish_now(&mut pair_after_a_message()));
    /// A figure's name, its labels and its value.
    type Figure = (String, Vec<(String, String)>, DebugValue);
    let figures: Vec<Figure> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            (key.name().to_string(), labels, value)
        })
        .collect();
    let find = |name: &str, extra: Option<(&str, &str)>| {
        figures
            .iter()
            .find(|(n, labels, _)| {
                n == name
                    && labels.contains(&("local".to_string(), A.to_string()))
                    && extra.is_none_or(|(k, v)| labels.contains(&(k.to_string(), v.to_string())))
            })
            .map(|(_, _, v)| v)
            .unwrap_or_else(|| panic!("{name} not recorded: {figures:?}"))
    };
    let established = find("weir_handshakes_total", Some(("outcome", "established")));
    assert!(matches!(established, DebugValue::Counter(1)), "{established:?}");
    let sent = find("weir_datagrams_sent_total", None);
    assert!(matches!(sent, DebugValue::Counter(n) if *n >= 2), "{sent:?}");
    let received = find("weir_datagrams_received_total", None);
    assert!(
        matches!(received, DebugValue::Counter(n) if *n >= 1),
        "{received:?}"
    );
    let dropped = find("weir_datagrams_dropped_total", Some(("reason", "malformed")));
    assert!(matches!(dropped, DebugValue::Counter(0)), "{dropped:?}");
    let conns = find("weir_connections", None);
    assert!(
        matches!(conns, DebugValue::Gauge(g) if g.into_inner() == 1.0),
        "{conns:?}"
    );
    // Every figure `describe` names, each labelled kind apart: 20 counters, 8 gauges (the
    // other endpoint published its own, under its address).
    let local = ("local".to_string(), A.to_string());
    let ours = figures.iter().filter(|(_, labels, _)| labels.contains(&local));
    assert_eq!(ours.count(), 28, "{figures:?}");
    for name in ["weir_violations_total", "weir_probes_total", "weir_rtt_seconds"] {
        find(name, None);
    }
    for what in ["sent", "received", "lost", "dropped"] {
        find("weir_app_datagrams_total", Some(("what", what)));
    }
}

/// The figures' keys are made once, but the recorder is looked up at every publication: one
/// installed after the endpoint first published (with none) still gets every figure.
#[test]
fn a_recorder_installed_later_still_gets_the_figures() {
    use metrics_util::debugging::DebuggingRecorder;
    let mut p = pair_after_a_message();
    publish_now(&mut p);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || publish_now(&mut p));
    assert_eq!(snapshotter.snapshot().into_vec().len(), 28);
}

/// The figures' one-second period is checked against the clock's last reading, not a new
/// one: after a quiet period, a call that read no clock leaves the figures stale with a
/// deadline at the period's end, and the timeout there publishes them.
#[test]
fn figures_due_after_a_quiet_period_go_out_at_their_deadline() {
    let mut d = Driver::deterministic(Config::default(), A.parse().unwrap(), 1, None);
    d.handle_timeout();
    let published = d.metrics.next.expect("published at the first progress") - PERIOD;
    d.advance(std::time::Duration::from_secs(2));
    d.publish_metrics();
    assert!(d.metrics.stale, "timed by the last reading, before the advance");
    assert_eq!(d.metrics_deadline(), Some(published + PERIOD));
    assert!(d.deadline().is_some_and(|t| t <= published + PERIOD));
    d.handle_timeout();
    assert_eq!(
        d.metrics.next,
        Some(published + std::time::Duration::from_secs(2) + PERIOD)
    );
    assert!(!d.metrics.stale);
}

/// The figures' period is a second up to 10,000 connections, then 100 µs more for each:
/// every publication reads every connection, and at 50,000 a second's period spent nearly
/// 9% of a benchmark's CPU on it (metrics' `PER_CONNECTION`). It saturates, never wraps.
#[test]
fn the_figures_period_grows_with_the_connections_past_ten_thousand() {
    assert_eq!(period(0), PERIOD);
    assert_eq!(period(10_000), PERIOD);
    assert_eq!(period(10_001), PERIOD + std::time::Duration::from_micros(100));
    assert_eq!(period(50_000), std::time::Duration::from_secs(5));
    assert_eq!(period(100_000), std::time::Duration::from_secs(10));
    assert!(period(usize::MAX) > std::time::Duration::from_secs(400_000));
}

/// `last_reading` is the clock as a call last read it: an advance alone does not move it,
/// the next call that reads the clock does.
#[test]
fn the_last_reading_is_the_clock_as_the_last_call_read_it() {
    let mut d = Driver::deterministic(Config::default(), A.parse().unwrap(), 1, None);
    d.handle_timeout();
    let before = d.last_reading();
    d.advance(std::time::Duration::from_millis(30));
    assert_eq!(d.last_reading(), before);
    d.handle_timeout();
    assert_eq!(d.last_reading(), before + std::time::Duration::from_millis(30));
}

/// A pair whose first endpoint sent the other a message, settled.
fn pair_after_a_message() -> Pair {
    let mut p = Pair::new();
    let (ca, _) = connect(&mut p);
    send(&mut p, ca, b"hello");
    p.settle();
    p
}

/// Publishes the first endpoint's figures now (they go out at most once a second).
fn publish_now(p: &mut Pair) {
    p.a.metrics.next = None;
    p.a.publish_metrics();
}

/// Two drivers on the given seeds and a clock that moves only when told.
fn deterministic(seed_a: u64, seed_b: u64) -> Pair {
    Pair {
        a: Driver::deterministic(Config::default(), A.parse().unwrap(), seed_a, None),
        b: Driver::deterministic(Config::default(), B.parse().unwrap(), seed_b, None),
    }
}

#[test]
fn a_request_s_wait_for_its_reply_runs_out_by_the_driver_s_clock() {
    let mut p = deterministic(1, 2);
    let (a, _) = connect(&mut p);
    let w = Waker::noop();
    let service = weir_core::wire::Label::new(Bytes::from_static(b"svc")).unwrap();
    let header =
        StreamHeader::default().with_label(weir_core::wire::request::request_label(&service).unwrap());
    let s = ready(p.a.poll_open(a, &header, w)).unwrap();
    p.a.await_reply(a, s, Some(std::time::Duration::from_secs(1)));
    p.settle();
    // No reply; the clock has not moved, and then not quite far enough.
    assert!(p.a.poll_reply(a, s, w).is_pending());
    p.a.advance(std::time::Duration::from_millis(999));
    p.a.handle_timeout();
    assert!(p.a.poll_reply(a, s, w).is_pending());
    p.a.advance(std::time::Duration::from_millis(1));
    p.a.handle_timeout();
    assert!(matches!(
        ready(p.a.poll_reply(a, s, w)),
        Err(Error::Request(crate::RequestError::TimedOut))
    ));
}

#[test]
fn drivers_on_the_same_seed_and_clock_send_the_same_bytes() {
    let first = |seed: u64| {
        let mut p = deterministic(seed, 2);
        p.a.connect(B.parse().unwrap(), None, None).unwrap();
        let mut buf = vec![0; weir_core::wire::MAX_DATAGRAM_SIZE];
        let t = p.a.poll_transmit(&mut buf).expect("a HELLO");
        buf.truncate(t.len);
        buf
    };
    assert_eq!(first(7), first(7));
    assert_ne!(first(7), first(8));
}
