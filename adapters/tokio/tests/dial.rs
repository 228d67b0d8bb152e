//! Dialing a peer by its public key at the addresses known for it
//! (`Endpoint::connect_to_peer`), over real UDP on 127.0.0.1: the address that answers and
//! holds the key wins, whatever the others do, and a peer reachable at none is a typed
//! failure that names each address. And address discovery: each side learns the address the
//! other sees it at.

use std::net::UdpSocket;

mod common;

use bytes::Bytes;
use common::{bounded, config, local};
use weir_tokio::{Endpoint, Error, HandshakeError, Mapping};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_that_answers_with_the_key_wins() {
    bounded(async {
        let server = Endpoint::bind(local(), config()).unwrap();
        let other = Endpoint::bind(local(), config()).unwrap();
        let client = Endpoint::bind(local(), config()).unwrap();
        let key = server.public_key();
        // A socket that reads nothing and answers nothing, an endpoint with another key,
        // and the server (twice: tried once).
        let silent = UdpSocket::bind(local()).unwrap();
        let addresses = [
            silent.local_addr().unwrap(),
            other.local_addr(),
            server.local_addr(),
            server.local_addr(),
        ];
        let serving = tokio::spawn(async move {
            let c = server.accept().await.unwrap();
            let got = c.recv_message().await.unwrap();
            (c.peer_key(), got)
        });
        let conn = client.connect_to_peer(key, &addresses).await.unwrap();
        assert_eq!(conn.peer_key(), Some(key));
        conn.send_message(Bytes::from_static(b"found you")).await.unwrap();
        let (seen, got) = serving.await.unwrap();
        assert_eq!(seen, Some(client.public_key()));
        assert_eq!(got, Bytes::from_static(b"found you"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_at_no_address_is_unreachable_with_each_address_s_failure() {
    bounded(async {
        let client = Endpoint::bind(local(), config()).unwrap();
        let impostor = Endpoint::bind(local(), config()).unwrap();
        let wanted = Endpoint::bind(local(), config()).unwrap().public_key();
        let silent = UdpSocket::bind(local()).unwrap();
        let (quiet, wrong) = (silent.local_addr().unwrap(), impostor.local_addr());
        let Err(Error::Unreachable { attempts }) = client.connect_to_peer(wanted, &[quiet, wrong]).await
        else {
            panic!("reached a peer that is not there");
        };
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        let why = |addr| &attempts.iter().find(|(a, _)| *a == addr).expect("each address").1;
        assert!(
            matches!(why(quiet), Error::Handshake(HandshakeError::TimedOut)),
            "{:?}",
            why(quiet)
        );
        assert!(matches!(why(wrong), Error::Handshake(_)), "{:?}", why(wrong));
        let Err(none) = client.connect_to_peer(wanted, &[]).await else {
            panic!("reached a peer with no address");
        };
        assert!(matches!(&none, Error::Unreachable { attempts } if attempts.is_empty()));
        assert!(none.to_string().contains("none was given"), "{none}");
    })
    .await;
}

/// Address discovery (spec §4.18) over real sockets: each side tells the other the address
/// it sees it at, so each learns its own, and the endpoint sums it up (one host's reports
/// cannot tell how a NAT maps: 127.0.0.1 is every peer here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_learns_the_address_the_other_sees_it_at() {
    bounded(async {
        let server = Endpoint::bind(local(), config()).unwrap();
        let client = Endpoint::bind(local(), config()).unwrap();
        let server_addr = server.local_addr();
        let serving = tokio::spawn(async move {
            let c = server.accept().await.unwrap();
            let got = c.recv_message().await.unwrap();
            // The client's report went out before its message.
            let seen = c.observed_address();
            c.send_message(got).await.unwrap();
            (seen, server)
        });
        let conn = client.connect(server_addr).await.unwrap();
        conn.send_message(Bytes::from_static(b"where am I"))
            .await
            .unwrap();
        // The server's report went out before its answer.
        assert_eq!(
            conn.recv_message().await.unwrap(),
            Bytes::from_static(b"where am I")
        );
        assert_eq!(conn.observed_address(), Some(client.local_addr()));
        let r = client.reflexive();
        assert_eq!(r.addresses, [client.local_addr()]);
        assert_eq!(r.mapping, Mapping::Unknown, "one host's word");
        let (seen, _server) = serving.await.unwrap();
        assert_eq!(seen, Some(server_addr));
    })
    .await;
}
