//! `--metrics-addr` as a user meets it: a receiver serves its figures in Prometheus' text
//! format, and after a file arrived they show the handshake, the datagrams and the
//! connection; an address already in use is a bind failure with its exit code.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{make_file, start_receiver, stderr_of, weir};

/// A free TCP port on 127.0.0.1 (bound, then let go).
fn free_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// One scrape of `http://addr/metrics`: the body, or `None` if nothing answered.
fn scrape(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn a_receiver_serves_its_figures_for_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_file(dir.path(), "payload.bin", 200_000);
    let metrics = free_port();
    let (_out, mut recv) = start_receiver(dir.path(), "127.0.0.1:0", &["--metrics-addr", &metrics]);
    let addr = recv.address();
    let sent = weir()
        .args(["send", file.to_str().unwrap(), "--to", &addr])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", stderr_of(&sent));
    // The figures follow the last change within a second; asked until they show it.
    let established = "outcome=\"established\"";
    let until = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape(&metrics).unwrap_or_default();
        let handshake = text
            .lines()
            .find(|l| l.starts_with("weir_handshakes_total") && l.contains(established));
        if handshake.is_some_and(|l| l.ends_with(" 1")) || Instant::now() > until {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for expected in [
        "# TYPE weir_datagrams_received_total counter",
        "weir_handshakes_total{",
        "weir_datagrams_dropped_total{",
        "reason=\"malformed\"",
        "# TYPE weir_connections gauge",
        "weir_bytes_unread",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let received = text
        .lines()
        .find(|l| l.starts_with("weir_datagrams_received_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(received >= 100.0, "a 200 kB file came in: {received}\n{text}");
    let handshake = text
        .lines()
        .find(|l| l.starts_with("weir_handshakes_total") && l.contains(established));
    assert!(handshake.is_some_and(|l| l.ends_with(" 1")), "{text}");
    // It serves on; dropping it ends it.
    drop(recv);
}

#[test]
fn a_metrics_address_in_use_is_a_bind_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = weir()
        .args([
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .args(["--metrics-addr", &addr])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&addr), "{}", stderr_of(&out));
}
