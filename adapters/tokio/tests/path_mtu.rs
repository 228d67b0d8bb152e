//! Path MTU discovery (issue 34, RFC 8899) over real UDP on 127.0.0.1: a connection starts
//! at 1200-byte datagrams and rises to the default largest, 1452, on loopback; through a
//! proxy that drops datagrams above 1300 bytes it settles just below that, and a transfer
//! through it loses no data to the narrow hop.

mod common;

use bytes::Bytes;
use common::{bounded, endpoint};
use weir_sim::proxy::{Impairment, Proxy};
use weir_tokio::{Confirm, Connection, Endpoint};

/// Sends messages until the connection's path MTU stops changing (the search is done within
/// a few round trips of data), and returns it.
async fn settled_mtu(conn: &Connection, peer: &Connection) -> u64 {
    let mut last = 0;
    for i in 0..200u32 {
        let m = Bytes::from(vec![i as u8; 20_000]);
        conn.send_message_with(m, Confirm::Acknowledged).await.unwrap();
        peer.recv_message().await.unwrap();
        let mtu = conn.stats().await.unwrap().path_mtu;
        if i > 20 && mtu == last {
            return mtu;
        }
        last = mtu;
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
        assert!(!stats.black_hole, "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn a_path_that_drops_large_datagrams_settles_below_them_and_loses_no_data() {
    bounded(async {
        let (a, b) = (endpoint(), endpoint());
        let (conn, peer, proxy) = pair_through(&b, &a, Some(1300)).await;
        let mtu = settled_mtu(&conn, &peer).await;
        assert!((1285..=1300).contains(&mtu), "{mtu}");
        let stats = conn.stats().await.unwrap();
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
