//! Traces (spec/trace.md): scenarios recorded in weir-sim replay byte for byte, and the
//! golden traces in spec/traces/ replay under `cargo test`.

use weir_core::time::Duration;
use weir_core::trace::replay;
use weir_core::{Config, Event, Read};
use weir_sim::{LinkConfig, Sim};

#[test]
fn a_recorded_session_replays() {
    let mut sim = Sim::new(3);
    let client = sim.add_traced_node(Config::default());
    let server = sim.add_traced_node(Config::default());
    sim.link(
        client,
        server,
        LinkConfig {
            loss: 0.05,
            ..LinkConfig::default()
        },
    );
    sim.connect(client, server);
    let mut got = None;
    sim.run_for(Duration::from_secs(10), |sim, node, event| match event {
        Event::Connected { conn, .. } if node == client => {
            sim.endpoint(client)
                .send_message(conn, None, vec![7u8; 20_000].into())
                .unwrap();
        }
        Event::StreamReadable { conn, stream } if node == server => {
            if let Ok(Read::Data { bytes, .. }) = sim.endpoint(server).read_message(conn, stream, 1 << 20) {
                got = Some(bytes.len());
            }
        }
        _ => {}
    });
    assert_eq!(got, Some(20_000));
    for node in [client, server] {
        let trace = sim.take_trace(node);
        let replayed = replay(&trace).unwrap_or_else(|e| panic!("node {node}: {e}"));
        assert!(replayed.outputs > 10, "{replayed:?}");
    }
}
