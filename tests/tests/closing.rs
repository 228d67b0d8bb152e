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
    let mut sim = Sim::new(71);
    let (c, s) = (sim.add_node(Config::default()), sim.add_node(Config::default()));
    sim.link(c, s, link);
    sim.connect(c, s);
    let (cc, sc) = sim.run_until_connected(c, s);
    // Let the handshake's last acknowledgements settle: nothing is in flight at the close.
    sim.run_for(Duration::from_secs(1), |_, _, _| {});
    let before = sim.stats().sent;
    let now = sim.now();
    sim.endpoint(c)
        .close(now, cc.unwrap(), 1, Reason::default())
        .unwrap();
    sim.endpoint(s)
        .close(now, sc.unwrap(), 2, Reason::default())
        .unwrap();
    sim.run_for(Duration::from_secs(10), |_, _, _| {});
    assert_eq!(
        sim.endpoint(c).connection_count() + sim.endpoint(s).connection_count(),
        0,
        "both ends are gone once their closing periods are over"
    );
    let sent = sim.stats().sent - before;
    assert_eq!(sent, 2, "one CLOSE each way, then silence");
}
