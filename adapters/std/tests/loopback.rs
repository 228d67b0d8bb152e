//! weir-std over real UDP sockets on 127.0.0.1. Every wait is bounded by the core's own
//! timeouts (handshake, idle), so no test can hang.

use std::net::SocketAddr;
use std::thread;

use bytes::Bytes;
use weir_core::time::Duration;
use weir_core::wire::VersionRange;
use weir_std::{Config, Endpoint, Error, HandshakeError};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A configuration whose failures show within seconds.
fn config() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

#[test]
fn handshake_reports_what_was_negotiated() {
    let server = Endpoint::bind(local(), config()).unwrap();
    let client = Endpoint::bind(local(), config()).unwrap();
    let conn = client.connect(server.local_addr()).unwrap();
    assert_eq!(conn.negotiated().version, 1);
    assert!(conn.negotiated().piping());
    let incoming = server.accept().unwrap();
    assert_eq!(incoming.negotiated(), conn.negotiated());
}

#[test]
fn a_version_mismatch_reports_both_ranges() {
    let server = Endpoint::bind(
        local(),
        Config {
            versions: VersionRange::new(2, 3).unwrap(),
            ..config()
        },
    )
    .unwrap();
    let client = Endpoint::bind(local(), config()).unwrap();
    match client.connect(server.local_addr()) {
        Err(Error::Handshake(HandshakeError::Rejected { versions, .. })) => {
            assert_eq!(versions, VersionRange::new(2, 3).unwrap());
        }
        Err(Error::Handshake(HandshakeError::NoCommonVersion { ours, server })) => {
            assert_eq!(
                (ours, server),
                (VersionRange::V1, VersionRange::new(2, 3).unwrap())
            );
        }
        other => panic!(
            "expected a version failure, got {:?}",
            other.map(|c| c.negotiated())
        ),
    }
}

#[test]
fn a_thousand_messages_arrive_once_each_and_a_reply_comes_back() {
    let server = Endpoint::bind(local(), config()).unwrap();
    let client = Endpoint::bind(local(), config()).unwrap();
    let conn = client.connect(server.local_addr()).unwrap();
    let sender = thread::spawn(move || {
        for i in 0u32..1000 {
            conn.send_message(Bytes::from(format!("message {i}"))).unwrap();
        }
        let reply = conn.recv_message().unwrap();
        (client, reply)
    });
    let incoming = server.accept().unwrap();
    // One stream per message: streams may complete out of order, so compare as a set
    // and check every one arrived once.
    let mut got: Vec<String> = (0..1000)
        .map(|_| String::from_utf8(incoming.recv_message().unwrap().to_vec()).unwrap())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0u32..1000).map(|i| format!("message {i}")).collect();
    want.sort();
    assert_eq!(got, want);
    incoming.send_message(Bytes::from_static(b"all 1000")).unwrap();
    let (_client, reply) = sender.join().unwrap();
    assert_eq!(&reply[..], b"all 1000");
    assert!(incoming.stats().unwrap().datagrams_received > 0);
}

#[test]
fn a_large_message_arrives_whole() {
    let server = Endpoint::bind(local(), config()).unwrap();
    let client = Endpoint::bind(local(), config()).unwrap();
    let conn = client.connect(server.local_addr()).unwrap();
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let data = Bytes::from(data);
    conn.send_message(data.clone()).unwrap();
    let incoming = server.accept().unwrap();
    let got = incoming.recv_message().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes differ");
}

#[test]
fn a_closed_connection_is_reported_to_the_peer() {
    let server = Endpoint::bind(local(), config()).unwrap();
    let client = Endpoint::bind(local(), config()).unwrap();
    let conn = client.connect(server.local_addr()).unwrap();
    conn.send_message(Bytes::from_static(b"bye")).unwrap();
    let incoming = server.accept().unwrap();
    assert_eq!(&incoming.recv_message().unwrap()[..], b"bye");
    conn.close(42, "bye").unwrap();
    match incoming.recv_message() {
        Err(Error::Closed(weir_std::CloseReason::Peer { .. })) => {}
        other => panic!("expected the peer's close, got {other:?}"),
    }
}
