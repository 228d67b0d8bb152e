//! `WEIR_TRACE` records what the core endpoint of each weir-std endpoint was given and gave
//! back, and the recording replays. Its own test binary: the variable is process-wide.

use std::path::Path;

use bytes::Bytes;
use weir_std::{Config, Confirm, Endpoint};

#[test]
fn weir_trace_records_a_trace_of_each_endpoint_that_replays() {
    let dir = std::env::temp_dir().join(format!("weir-std-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // `{port}` names a file for each endpoint.
    let [server, client] = exchange(&dir.join("endpoint-{port}.trace"));
    for port in [server, client] {
        replays(&dir.join(format!("endpoint-{port}.trace")));
    }

    // One name for both: two endpoints of one process wrote their lines into one file that
    // neither replayed; the one that binds second now records beside it, under its port.
    let one = dir.join("one.trace");
    let [_, client] = exchange(&one);
    replays(&one);
    let mut beside = one.clone().into_os_string();
    beside.push(format!(".{client}"));
    replays(Path::new(&beside));

    let _ = std::fs::remove_dir_all(&dir);
}

/// A server and a client bound in that order with `WEIR_TRACE` at `pattern`, a message
/// from the client, all dropped: their ports.
fn exchange(pattern: &Path) -> [u16; 2] {
    // Set before the endpoints exist, and this binary runs no other test.
    std::env::set_var("WEIR_TRACE", pattern);
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
    ports
}

/// The trace at `path` holds no secret and replays with the secrets file beside it, which
/// only its owner may read.
fn replays(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    // The trace holds no secret (issue 30, item 10): they are in the file beside it,
    // owner-only, and the trace does not replay without them.
    let mut secrets_path = path.to_path_buf().into_os_string();
    secrets_path.push(".secrets");
    let secrets_text = std::fs::read_to_string(&secrets_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secrets_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{secrets_path:?}");
    }
    let secrets = weir_core::trace::TraceSecrets::parse(&secrets_text).unwrap();
    for line in secrets_text.lines().skip(1) {
        let secret = line.split_once(' ').unwrap().1;
        assert!(!text.contains(secret), "{path:?} holds a secret: {line}");
    }
    assert_eq!(
        weir_core::trace::replay(&text).err(),
        Some(weir_core::trace::TraceError::SecretsMissing)
    );
    match weir_core::trace::replay_with_secrets(&text, Some(&secrets), |_| {}) {
        // A handshake, a message and a close: dozens of datagrams and events each way.
        Ok(r) => assert!(r.outputs > 10, "{path:?}: only {r:?}"),
        Err(e) => panic!("{path:?} does not replay: {e}"),
    }
}
