//! How fast a sender of many small messages goes over a long path (spec §8, Streams and
//! credit): each message is a stream, and the receiver grants streams as it reads them, so
//! a connection carries at most `max_concurrent_streams` messages per round trip, whatever
//! the path's bandwidth. The grants must come soon enough that the window is used, and a
//! larger window must lift the rate: the configuration is the knob.
//!
//! At the default (128 streams) on a 40 ms round trip that is about 3,200 messages a
//! second at most: 1 KiB messages move at about 2.3 MB/s on a path that carries far more
//! (issue 35's eleventh round, adapters/bench/README.md).

use std::cell::Cell;

use bytes::Bytes;
use weir_core::time::{Duration, Instant};
use weir_core::{ApiError, Config, ConnectionHandle, Event, Read};
use weir_sim::{LinkConfig, Sim};

/// One-way delay of the path: a 40 ms round trip.
const DELAY: Duration = Duration::from_millis(20);

/// Messages of 1 KiB a second over the path, with `streams` as both sides'
/// `max_concurrent_streams`, from the connection's start to the last message read.
fn rate(streams: u64, messages: usize) -> f64 {
    let mut sim = Sim::new(1);
    let config = Config {
        max_concurrent_streams: streams,
        ..Config::default()
    };
    let client = sim.add_node(config.clone());
    let server = sim.add_node(config);
    sim.link(
        client,
        server,
        LinkConfig {
            delay: DELAY,
            ..LinkConfig::default()
        },
    );
    let msg = Bytes::from(vec![7u8; 1024]);
    let (sent, read) = (Cell::new(0), Cell::new(0));
    let start: Cell<Option<Instant>> = Cell::new(None);
    let send_more = |sim: &mut Sim, conn: ConnectionHandle| {
        while sent.get() < messages {
            match sim.endpoint(client).send_message(conn, None, msg.clone()) {
                Ok(_) => sent.set(sent.get() + 1),
                Err(ApiError::StreamLimit) => break,
                Err(e) => panic!("send_message: {e}"),
            }
        }
    };
    sim.connect(client, server);
    let limit = sim.now() + Duration::from_secs(60);
    let done = sim.run_until(
        limit,
        |sim, node, event| match event {
            Event::Connected { conn, .. } if node == client => {
                start.set(Some(sim.now()));
                send_more(sim, conn);
            }
            Event::StreamsAvailable { conn } if node == client => send_more(sim, conn),
            Event::StreamReadable { conn, stream } if node == server => {
                if let Ok(Read::Data { .. }) = sim.endpoint(server).read_message(conn, stream, 1 << 20) {
                    read.set(read.get() + 1);
                }
            }
            Event::Closed { reason, .. } => panic!("node {node} closed: {reason:?}"),
            _ => {}
        },
        |_| read.get() == messages,
    );
    assert!(
        done,
        "{} of {messages} messages read by {}",
        read.get(),
        sim.now()
    );
    let took = sim
        .now()
        .saturating_duration_since(start.get().expect("connected"));
    messages as f64 / (took.as_micros() as f64 / 1e6)
}

/// At most one window of messages per round trip, and at least 60% of it: the grants
/// keep up. Four times the window, over twice the rate.
#[test]
fn small_messages_move_a_stream_window_per_round_trip_and_a_larger_window_lifts_the_rate() {
    let round_trip = 2.0 * DELAY.as_micros() as f64 / 1e6;
    let (default, larger) = (rate(128, 4_000), rate(512, 4_000));
    println!("1 KiB messages over a 40 ms round trip: {default:.0} a second with 128 streams, {larger:.0} with 512");
    let ceiling = 128.0 / round_trip;
    assert!(default <= ceiling, "{default:.0} a second, over {ceiling:.0}");
    assert!(default >= 0.6 * ceiling, "{default:.0} a second: the grants lag");
    assert!(larger >= 2.0 * default, "{larger:.0} against {default:.0}");
}
