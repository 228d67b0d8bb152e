//! A stream the receiver stopped, in weir-sim: however it then ends (the sender's reset,
//! the rest of its bytes, or none, being whole or reset already), it frees its place among the
//! peer's streams without the application reading it again (spec §4.6).

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::{Config, StreamHeader};
use weir_sim::{LinkConfig, Sim};

/// How a stream the receiver stopped gets to its end (spec §4.5, §8 Streams).
#[derive(Clone, Copy, Debug)]
enum StoppedThen {
    /// Stopped mid-transfer: the sender answers with a reset.
    SenderResets,
    /// Stopped after the sender finished but before its bytes arrived: they arrive after.
    RestArrives,
    /// Stopped once every byte had arrived.
    AllHadArrived,
    /// Stopped after the sender's own reset had arrived, unread.
    ResetHadArrived,
}

/// A stream the receiver stopped, then ended by any of those ways, frees its place among
/// the peer's streams without the application reading it again (it said it wants nothing
/// more). Found by the `driver` fuzz target: a server that refused 128 requests (each
/// stopped, then reset by its requester) left its client unable to open a 129th stream.
/// Returns whether the client could open a second stream with the server allowing one.
fn a_second_stream_opens_after_the_first_was_stopped(then: StoppedThen) -> bool {
    let config = Config {
        max_concurrent_streams: 1,
        ..Config::default()
    };
    let (mut sim, cc, sc) = Sim::connected_pair(35, config.clone(), config, LinkConfig::default());
    let (c, s) = (Sim::PAIR_CLIENT, Sim::PAIR_SERVER);
    let first = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
    sim.endpoint(c)
        .write(cc, first, Bytes::from(vec![1u8; 20_000]))
        .unwrap();
    match then {
        StoppedThen::SenderResets => {
            sim.run_for(Duration::from_millis(15), |_, _, _| {});
            sim.endpoint(s).stop_sending(sc, first, 5).unwrap();
        }
        StoppedThen::RestArrives => {
            sim.endpoint(c).finish(cc, first).unwrap();
            sim.run_for(Duration::from_millis(15), |_, _, _| {});
            sim.endpoint(s).stop_sending(sc, first, 5).unwrap();
        }
        StoppedThen::AllHadArrived => {
            sim.endpoint(c).finish(cc, first).unwrap();
            sim.run_for(Duration::from_secs(2), |_, _, _| {});
            sim.endpoint(s).stop_sending(sc, first, 5).unwrap();
        }
        StoppedThen::ResetHadArrived => {
            sim.run_for(Duration::from_millis(15), |_, _, _| {});
            sim.endpoint(c).reset_stream(cc, first, 6).unwrap();
            sim.run_for(Duration::from_secs(2), |_, _, _| {});
            sim.endpoint(s).stop_sending(sc, first, 5).unwrap();
        }
    }
    sim.run_for(Duration::from_secs(5), |_, _, _| {});
    sim.endpoint(c).open_stream(cc, StreamHeader::default()).is_ok()
}

#[test]
fn a_stopped_stream_that_is_then_reset_frees_its_place() {
    assert!(a_second_stream_opens_after_the_first_was_stopped(
        StoppedThen::SenderResets
    ));
}

#[test]
fn a_stopped_stream_whose_rest_then_arrives_frees_its_place() {
    assert!(a_second_stream_opens_after_the_first_was_stopped(
        StoppedThen::RestArrives
    ));
}

#[test]
fn a_stream_stopped_once_whole_frees_its_place() {
    assert!(a_second_stream_opens_after_the_first_was_stopped(
        StoppedThen::AllHadArrived
    ));
}

/// The sender's reset came first and the application never read it, then stopped the
/// stream: nothing more of it can come, so the stop itself ends it. Before, the stopped
/// stream waited for a reset that had come already, and held its place for ever (found by
/// the `piping` fuzz target: a relay whose pipes could not begin stopped streams their
/// sender had reset, and the sender, at the stream limit, could open no more).
#[test]
fn a_stream_stopped_after_its_reset_arrived_frees_its_place() {
    assert!(a_second_stream_opens_after_the_first_was_stopped(
        StoppedThen::ResetHadArrived
    ));
}

/// A stream stopped while pieces of it wait behind a lost datagram holds none of its bytes
/// from the stop on: what arrived is dropped, past the gap as well as before it, and only
/// which offsets arrived is kept, to tell when nothing more of it can come. It then ends
/// as any stopped stream does. Before, the pieces past the gap stayed until the sender's
/// reset or the rest came: a round trip, or through an outage tens of seconds (found by the
/// piping sweep, seed 20261207, where a relay's reset was cut off by a 28.8 s outage).
#[test]
fn a_stopped_stream_holds_none_of_its_bytes_even_past_a_gap() {
    let config = Config {
        max_concurrent_streams: 1,
        ..Config::default()
    };
    let (mut sim, cc, sc) = Sim::connected_pair(36, config.clone(), config, LinkConfig::default());
    let (c, s) = (Sim::PAIR_CLIENT, Sim::PAIR_SERVER);
    let first = sim.endpoint(c).open_stream(cc, StreamHeader::default()).unwrap();
    // The stream's second datagram is lost: the rest waits behind it until it is sent again,
    // a round trip later.
    sim.drop_nth(c, s, sim.sent_between(c, s) + 2);
    sim.endpoint(c)
        .write(cc, first, Bytes::from(vec![1u8; 20_000]))
        .unwrap();
    sim.run_for(Duration::from_millis(15), |_, _, _| {});
    let (held, _) = sim.endpoint_ref(s).buffered(sc).unwrap();
    assert!(held > 5_000, "pieces wait behind the gap: {held} bytes");
    sim.endpoint(s).stop_sending(sc, first, 5).unwrap();
    assert_eq!(sim.endpoint_ref(s).buffered(sc), Some((0, 0)));
    sim.run_for(Duration::from_secs(5), |_, _, _| {});
    assert!(sim.endpoint(c).open_stream(cc, StreamHeader::default()).is_ok());
}
