//! Path MTU discovery (issue 34, RFC 8899) over real UDP on 127.0.0.1: a connection starts
//! at 1200-byte datagrams and rises to the default largest, 1452, on loopback; through a
//! proxy that drops datagrams above 1300 bytes it settles just below that, and a transfer
//! through it loses no data to the narrow hop; a client that moves to such a path searches
//! its size afresh.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, endpoint};
use weir_sim::proxy::{Impairment, PathChange, Proxy};
use weir_tokio::{Confirm, Connection, Endpoint};

/// Message `i`, of `len` bytes, sent acknowledged and checked on arrival.
async fn exchange(conn: &Connection, peer: &Connection, i: u32, len: usize) {
    let m = Bytes::from(vec![i as u8; len]);
    conn.send_message_with(m.clone(), Confirm::Acknowledged)
        .await
        .unwrap();
    assert_eq!(peer.recv_message().await.unwrap(), m);
}

/// Sends messages until the connection's path MTU has risen above 1200 and then stayed put
/// for 20 messages in a row, and returns it (at most 3,000 messages). Counted in messages,
/// not time: the search advances with the data acknowledged and the losses detected, so a
/// fixed count of messages said nothing on a machine that ran them faster or slower (CI
/// once found the size still 1200 after 21).
async fn settled_mtu(conn: &Connection, peer: &Connection) -> u64 {
    let (mut last, mut same) = (0, 0);
    for i in 0..3_000u32 {
        exchange(conn, peer, i, 20_000).await;
        let mtu = conn.stats().await.unwrap().path_mtu;
        if mtu == last {
            same += 1;
        } else {
            (last, same) = (mtu, 0);
        }
        if mtu > 1200 && same >= 20 {
            return mtu;
        }
    }
    last
}

async fn pair_through(
    server: &Endpoint,
    client: &Endpoint,
    mtu: Option<usize>,
) -> (Connection, Connection, Proxy) {
    let path = Impairment {
        mtu,
        ..Impairment::default()
    };
    let proxy = Proxy::start(server.local_addr(), path).unwrap();
    let conn = client.connect(proxy.addr()).await.unwrap();
    let peer = server.accept().await.unwrap();
    (conn, peer, proxy)
}

#[tokio::test]
async fn the_path_mtu_rises_to_1452_on_loopback() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let conn = a.connect(b.local_addr()).await.unwrap();
        let peer = b.accept().await.unwrap();
        assert_eq!(settled_mtu(&conn, &peer).await, 1452);
        let stats = conn.stats().await.unwrap();
        assert_eq!(stats.black_holes, 0, "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn a_path_that_drops_large_datagrams_settles_below_them_and_loses_no_data() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let (conn, peer, proxy) = pair_through(&b, &a, Some(1300)).await;
        let mtu = settled_mtu(&conn, &peer).await;
        let stats = conn.stats().await.unwrap();
        assert!((1285..=1300).contains(&mtu), "{mtu}: {stats:?}");
        assert_eq!(
            stats.bytes_retransmitted, 0,
            "no data in a datagram too large: {stats:?}"
        );
        assert!(
            proxy.stats()[0].dropped > 0,
            "the probes above 1300 bytes were dropped"
        );
    })
    .await;
}

/// How the path through the proxy narrows to 1,300 bytes, 1 s after its first datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Narrows {
    /// Its addresses stay.
    InPlace,
    /// The proxy forwards from another IP address (127.0.0.2) from then on.
    WithANewAddress,
}

/// A connection from `client` to `server` through the proxy, settled at 1,452 bytes before
/// the path narrows as `how` says.
async fn settled_before_it_narrows(
    server: &Endpoint,
    client: &Endpoint,
    how: Narrows,
) -> (Connection, Connection, Proxy) {
    let at = Duration::from_secs(1);
    let path = Impairment {
        change: Some(PathChange {
            after: at,
            mtu: Some(1300),
            ..PathChange::default()
        }),
        readdress: (how == Narrows::WithANewAddress).then_some(at),
        ..Impairment::default()
    };
    let proxy = Proxy::start(server.local_addr(), path).unwrap();
    let conn = client.connect(proxy.addr()).await.unwrap();
    let peer = server.accept().await.unwrap();
    assert_eq!(settled_mtu(&conn, &peer).await, 1452, "before it narrows");
    (conn, peer, proxy)
}

/// The client's network changes to one that carries smaller datagrams, as a phone's does
/// when it leaves Wi-Fi for a mobile network behind a tunnel: 1 s after the first datagram
/// the proxy forwards from another IP address (127.0.0.2) and drops datagrams above 1,300
/// bytes. The client, told of its new address by the server, is on a new path and searches
/// its size afresh (spec §8, Path MTU): the connection settles just below 1,300 with
/// no black hole detected. Before, it kept 1,452 from the old path: every datagram of data
/// was lost until black-hole detection fell back to 1,200.
#[tokio::test]
async fn a_client_that_moves_to_a_narrower_network_searches_its_size_afresh() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let (conn, peer, proxy) = settled_before_it_narrows(&b, &a, Narrows::WithANewAddress).await;
        let moved = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        for i in 0u32.. {
            if conn.observed_address().map(|a| a.ip()) == Some(moved) {
                break;
            }
            exchange(&conn, &peer, i, 1_000).await;
        }
        let mtu = settled_mtu(&conn, &peer).await;
        let stats = conn.stats().await.unwrap();
        assert_eq!(stats.black_holes, 0, "{stats:?}");
        assert!((1285..=1300).contains(&mtu), "{mtu}: {stats:?}");
        drop(proxy);
    })
    .await;
}

/// The path narrows under the connection, its addresses the same (a route into a tunnel): 1 s
/// after the first datagram the proxy drops datagrams above 1,300 bytes. Black-hole
/// detection falls back to 1,200 bytes, the path MTU search looks at once below the size
/// that failed (spec §8, Path MTU), and the connection settles just below 1,300 again;
/// every message arrives. Before, the search waited 600 s after the fallback, at 1,200.
#[tokio::test]
async fn a_path_that_narrows_under_the_connection_is_searched_again_at_once() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let (conn, peer, proxy) = settled_before_it_narrows(&b, &a, Narrows::InPlace).await;
        for i in 0u32.. {
            if conn.stats().await.unwrap().black_holes > 0 {
                break;
            }
            exchange(&conn, &peer, i, 20_000).await;
        }
        let mtu = settled_mtu(&conn, &peer).await;
        let stats = conn.stats().await.unwrap();
        assert_eq!(stats.black_holes, 1, "{stats:?}");
        assert!((1285..=1300).contains(&mtu), "{mtu}: {stats:?}");
        drop(proxy);
    })
    .await;
}

/// The path MTU search's probes are lost on a narrower path, by design, and carry a PING and
/// padding only, so that their loss loses nothing else (spec §8, Path MTU). Messages of
/// every size through a 1,280-byte path, 20 ms each way, each acknowledged before the next:
/// every one arrives, the size settles just below 1,280, and the lost probes cost the
/// sender no congestion event. The rule itself is weir-sim's to test
/// (`tests/tests/path_mtu.rs`, the same exchange: no probe timeout over twenty seeds, two
/// in 2 of them when a size probe carries an ACK): over sockets the count of probe
/// timeouts is timing. A starved CPU holds an ACK past the timeout now and then whatever
/// the rule (this test, when it asserted at most one, saw 2 or 3 in 3 runs of 25 beside
/// two busy loops), and the ACK lost with a probe showed as 3 or 4 in 3 runs of 6.
#[tokio::test]
async fn a_search_on_a_narrower_path_costs_the_sender_no_congestion_event() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let path = Impairment {
            delay: Duration::from_millis(20),
            mtu: Some(1280),
            ..Impairment::default()
        };
        let proxy = Proxy::start(b.local_addr(), path).unwrap();
        let conn = a.connect(proxy.addr()).await.unwrap();
        let peer = b.accept().await.unwrap();
        for i in 0..30u32 {
            let len = [200, 3_000, 20_000, 100_000, 1_300, 64][i as usize % 6];
            exchange(&conn, &peer, i, len).await;
        }
        let stats = conn.stats().await.unwrap();
        assert_eq!(stats.congestion_events, 0, "{stats:?}");
        assert_eq!(stats.persistent_congestion, 0, "{stats:?}");
        assert!((1270..=1280).contains(&stats.path_mtu), "{stats:?}");
        drop(proxy);
    })
    .await;
}
