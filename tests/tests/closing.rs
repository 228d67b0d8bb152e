//! The end of a connection in weir-sim (spec/protocol.md §8, Liveness and close): what
//! crosses the network once both ends have closed.

use weir_core::time::Duration;
use weir_core::wire::Reason;
use weir_core::Config;
use weir_sim::{LinkConfig, Sim};

/// Both ends close at the same instant: their CLOSEs cross, each end takes the other's as
/// the peer's close and drains silently. Before, a closing end answered every packet with
/// its CLOSE again, the peer's CLOSE included, so two ends that closed at once bounced
/// CLOSE between them for the whole closing period: 2 datagrams per round trip (66 here,
/// on a 10 ms round trip), and without end where a round trip takes no time (found by the `piping` fuzz
/// target, fuzz/findings/piping.crossed-closes).
#[test]
fn closes_that_cross_end_both_ends_with_one_close_each() {
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let (mut sim, cc, sc) = Sim::connected_pair(71, Config::default(), Config::default(), link);
    let (c, s) = (Sim::PAIR_CLIENT, Sim::PAIR_SERVER);
    // Let the handshake's last acknowledgements settle: nothing is in flight at the close.
    sim.run_for(Duration::from_secs(1), |_, _, _| {});
    let before = sim.stats().sent;
    let now = sim.now();
    sim.endpoint(c).close(now, cc, 1, Reason::default()).unwrap();
    sim.endpoint(s).close(now, sc, 2, Reason::default()).unwrap();
    sim.run_for(Duration::from_secs(10), |_, _, _| {});
    assert_eq!(
        sim.endpoint(c).connection_count() + sim.endpoint(s).connection_count(),
        0,
        "both ends are gone once their closing periods are over"
    );
    let sent = sim.stats().sent - before;
    assert_eq!(sent, 2, "one CLOSE each way, then silence");
}

/// Called late, with the idle timeout and a lingering close's deadline both past, a
/// connection fires the idle timeout, which ends it, and the close timer then has nothing
/// to do. Before, it fired too, and took a step the lifecycle table does not have for a
/// closed connection: the fuzzing build's assertion failed (the workspace's tests build
/// with every feature, so this test did too), a normal build ignored it (found by the
/// `piping` fuzz target; its input is fuzz/corpus/piping/crash-close-timer-after-idle-timeout).
#[test]
fn a_late_call_that_finds_the_idle_timeout_and_a_linger_past_ends_the_connection_once() {
    use bytes::Bytes;
    use weir_core::time::Instant;
    use weir_core::{CloseReason, Endpoint, Event};
    let (c_addr, s_addr) = ("10.0.0.1:4000".parse().unwrap(), "10.0.0.2:4000".parse().unwrap());
    let mut client = Endpoint::new(Config::default(), 1);
    let mut server = Endpoint::new(Config::default(), 2);
    let now = Instant::ZERO;
    let conn = client.connect(now, s_addr).unwrap();
    let mut buf = vec![0u8; 2048];
    for _ in 0..20 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, c_addr, bytes::BytesMut::from(&buf[..t.len]));
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, s_addr, bytes::BytesMut::from(&buf[..t.len]));
        }
    }
    assert!(client.is_established(conn));
    // A message the server never acknowledges: the close lingers for it.
    client
        .send_message(conn, None, Bytes::from_static(&[7; 100]))
        .unwrap();
    while client.poll_transmit(now, &mut buf).is_some() {}
    client.close(now, conn, 0, Reason::default()).unwrap();
    let late = now + Duration::from_secs(3600);
    client.handle_timeout(late);
    let closed = std::iter::from_fn(|| client.poll_event())
        .filter(|e| matches!(e, Event::Closed { conn: c, .. } if *c == conn))
        .collect::<Vec<_>>();
    assert!(
        matches!(
            closed[..],
            [Event::Closed {
                reason: CloseReason::Local { code: 0 },
                ..
            }]
        ),
        "told once, at the close: {closed:?}"
    );
    assert_eq!(client.connection_count(), 0);
}
