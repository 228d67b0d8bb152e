//! The connection pool (issue 34) over real UDP on 127.0.0.1: concurrent dials to one peer
//! coalesced into one connection, reused by later dials; a connection the peer opened
//! reused by a dial to its key; a pooled connection no handle holds kept for the idle time,
//! then closed; a failed dial's error given to every call that waited on it; up and down
//! events.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bounded, config, endpoint, local};
use weir_tokio::{Config, Confirm, Endpoint, Error, PeerEvent};

/// 20 dials at once to one peer make one handshake: the peer accepts one connection, and
/// a message sent on each dial's handle arrives on it; a later dial reuses it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_dials_make_one_connection_that_later_dials_reuse() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let (key, addr) = (b.public_key(), b.local_addr());
        let a = std::sync::Arc::new(a);
        let dials: Vec<_> = (0..20)
            .map(|i| {
                let a = a.clone();
                tokio::spawn(async move {
                    let conn = a.dial(key, &[addr]).await.unwrap();
                    conn.send_message(Bytes::from(format!("dial {i}"))).await.unwrap();
                    conn
                })
            })
            .collect();
        let serving = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let mut got = Vec::new();
            for _ in 0..21 {
                got.push(c.recv_message().await.unwrap());
            }
            (got, b, c)
        });
        let mut held = Vec::new();
        for d in dials {
            held.push(d.await.unwrap());
        }
        assert_eq!(a.load().connections, 1, "one connection for 20 dials");
        let again = a.dial(key, &[addr]).await.unwrap();
        again.send_message(Bytes::from_static(b"later")).await.unwrap();
        let (got, b, _c) = serving.await.unwrap();
        assert_eq!(got.len(), 21);
        assert_eq!(a.load().connections, 1);
        assert_eq!(b.load().connections, 1, "the peer saw one connection");
    })
    .await;
}

/// A connection the peer opened to us joins the pool under its key: dialing that peer
/// with no address at all reuses it.
#[tokio::test]
async fn a_dial_reuses_the_connection_the_peer_opened() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let inbound = b.connect(a.local_addr()).await.unwrap();
        let accepted = a.accept().await.unwrap();
        let conn = a.dial(b.public_key(), &[]).await.unwrap();
        conn.send_message_with(
            Bytes::from_static(b"over the peer's connection"),
            Confirm::Acknowledged,
        )
        .await
        .unwrap();
        assert_eq!(
            &inbound.recv_message().await.unwrap()[..],
            b"over the peer's connection"
        );
        assert_eq!(a.load().connections, 1);
        drop(accepted);
    })
    .await;
}

/// A pooled connection whose last handle went stays open for the idle time: a dial in
/// that time reuses it. Left alone, it closes once the idle time passed (no earlier), and
/// the events say it came up and went down.
#[tokio::test]
async fn an_idle_pooled_connection_is_kept_for_its_time_then_closed() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let idle = Duration::from_millis(400);
        a.set_pool_idle(idle);
        let addr = b.local_addr();
        let first = a.dial_addr(addr).await.unwrap();
        let serving = tokio::spawn(async move { (b.accept().await.unwrap(), b) });
        assert!(matches!(a.peer_event().await.unwrap(), PeerEvent::Up { remote: Some(r), .. } if r == addr));
        drop(first);
        let again = a.dial_addr(addr).await.unwrap();
        again
            .send_message_with(Bytes::from_static(b"still here"), Confirm::Acknowledged)
            .await
            .unwrap();
        let (c, _b) = serving.await.unwrap();
        assert_eq!(&c.recv_message().await.unwrap()[..], b"still here");
        let released = Instant::now();
        drop(again);
        let down = a.peer_event().await.unwrap();
        assert!(matches!(down, PeerEvent::Down { .. }), "{down:?}");
        assert!(
            released.elapsed() >= idle,
            "closed after {:?}",
            released.elapsed()
        );
        let r = c.recv_message().await;
        assert!(
            matches!(r, Err(Error::Closed(_))),
            "the peer sees the close: {r:?}"
        );
    })
    .await;
}

/// Three dials at once to an address where nothing answers share one handshake and its
/// failure: each gets the error.
#[tokio::test]
async fn a_failed_dial_fails_every_call_that_waited_on_it() {
    bounded(async {
        let quick = Config {
            handshake_timeout: weir_core::time::Duration::from_millis(500),
            ..config()
        };
        let a = std::sync::Arc::new(Endpoint::bind(local(), quick).unwrap());
        let silent = std::net::UdpSocket::bind(local()).unwrap();
        let addr = silent.local_addr().unwrap();
        let dials: Vec<_> = (0..3)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.dial_addr(addr).await })
            })
            .collect();
        for d in dials {
            let r = d.await.unwrap();
            assert!(matches!(r, Err(Error::Handshake(_))), "{:?}", r.err());
        }
        // Every HELLO that reached the silent address names one client connection id.
        silent.set_nonblocking(true).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = silent.recv(&mut buf) {
            let header = weir_core::wire::Invariant::parse(&buf[..n]).unwrap();
            ids.insert(header.scid);
        }
        assert_eq!(ids.len(), 1, "one handshake for three dials: {ids:?}");
    })
    .await;
}
