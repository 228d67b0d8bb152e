//! `WEIR_TRACE` records what the core endpoint of each weir-std endpoint was given and gave
//! back, and the recording replays. Its own test binary: the variable is process-wide.

use bytes::Bytes;
use weir_std::{Config, Confirm, Endpoint};

#[test]
fn weir_trace_records_a_trace_of_each_endpoint_that_replays() {
    let dir = std::env::temp_dir().join(format!("weir-std-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = dir.join("endpoint-{port}.trace");
    // Set before any endpoint exists, and this binary runs no other test.
    std::env::set_var("WEIR_TRACE", &pattern);
    let server = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let client = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let ports = [server.local_addr().port(), client.local_addr().port()];
    let conn = client.connect(server.local_addr()).unwrap();
    // Read below on this thread: confirmed delivery would wait for that read.
    conn.send_message_with(Bytes::from_static(b"recorded"), Confirm::Queued)
        .unwrap();
    let incoming = server.accept().unwrap();
    assert_eq!(&incoming.recv_message().unwrap()[..], b"recorded");
    drop((conn, incoming, client, server));
    for port in ports {
        let path = dir.join(format!("endpoint-{port}.trace"));
        let text = std::fs::read_to_string(&path).unwrap();
        match weir_core::trace::replay(&text) {
            // A handshake, a message and a close: dozens of datagrams and events each way.
            Ok(r) => assert!(r.outputs > 10, "{path:?}: only {r:?}"),
            Err(e) => panic!("{path:?} does not replay: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
