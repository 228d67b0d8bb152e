//! Relay circuits and hole punching over real UDP on 127.0.0.1 (spec §12): a peer reserves
//! at a relay, another reaches it by key through the relay, the messages arrive byte-exact,
//! and the connection moves to the direct path the punch opens (on loopback nothing filters,
//! so it always does); refusals are typed.

mod common;

use bytes::Bytes;
use common::{bounded, config, local};
use weir_tokio::{Config, Endpoint, Error, HandshakeError, Path, PublicKey, RelayConfig, RelayRefusal};

fn relay_config() -> Config {
    Config {
        relay: Some(RelayConfig::default()),
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_reached_by_key_through_a_relay_then_directly() {
    bounded(async {
        let relay = Endpoint::bind(local(), relay_config()).unwrap();
        let a = Endpoint::bind(local(), config()).unwrap();
        let b = Endpoint::bind(local(), config()).unwrap();
        let b_key = b.public_key();
        let b_r = b.connect(relay.local_addr()).await.unwrap();
        b.reserve(&b_r).await.unwrap();
        let b_addr = b.local_addr();
        let echo = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            let peer = c.peer_key();
            while let Ok(m) = c.recv_message().await {
                if c.send_message(m).await.is_err() {
                    break;
                }
            }
            (peer, b_r)
        });
        let a_r = a.connect(relay.local_addr()).await.unwrap();
        let conn = a.connect_via(&a_r, b_key).await.unwrap();
        assert_eq!(conn.peer_key(), Some(b_key));
        // Echoes until the punch moved the connection off the relay (bounded: the test's
        // time limit), every message byte-exact whichever path it took.
        let mut paths = Vec::new();
        for i in 0..200u32 {
            let msg: Bytes = (0..5000u32).map(|j| (i + j) as u8).collect::<Vec<u8>>().into();
            conn.send_message(msg.clone()).await.unwrap();
            assert_eq!(conn.recv_message().await.unwrap(), msg);
            paths.push(conn.path());
            if conn.path() == Some(Path::Direct(b_addr)) {
                break;
            }
        }
        assert_eq!(paths.last(), Some(&Some(Path::Direct(b_addr))), "{paths:?}");
        let stats = conn.stats().await.unwrap();
        assert!(stats.migrations >= 1, "{stats:?}");
        conn.close(0, "done").await.unwrap();
        let (peer, _) = echo.await.unwrap();
        assert_eq!(peer, Some(a.public_key()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_s_refusals_are_typed() {
    bounded(async {
        let relay = Endpoint::bind(local(), relay_config()).unwrap();
        let plain = Endpoint::bind(local(), config()).unwrap();
        let a = Endpoint::bind(local(), config()).unwrap();
        // Not a relay: the reservation is refused.
        let to_plain = a.connect(plain.local_addr()).await.unwrap();
        assert!(matches!(
            a.reserve(&to_plain).await,
            Err(Error::Relay(RelayRefusal::NotARelay))
        ));
        // A key nobody reserved: the circuit is refused, and the connection fails with why.
        let a_r = a.connect(relay.local_addr()).await.unwrap();
        let nobody = PublicKey::from_bytes([7; 32]);
        assert!(matches!(
            a.connect_via(&a_r, nobody).await,
            Err(Error::Handshake(HandshakeError::Relay(
                RelayRefusal::NoReservation
            )))
        ));
    })
    .await;
}

/// Dialling by key with addresses and relays at once (`connect_to_peer_via`): the peer is
/// behind none of the addresses given (a silent socket), but reserved at the relay, so the
/// attempt through the relay wins; with neither, each failure is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_dialled_by_key_is_found_through_a_relay_when_no_address_answers() {
    bounded(async {
        let relay = Endpoint::bind(local(), relay_config()).unwrap();
        let (a, b) = (
            Endpoint::bind(local(), config()).unwrap(),
            Endpoint::bind(local(), config()).unwrap(),
        );
        let b_key = b.public_key();
        let b_r = b.connect(relay.local_addr()).await.unwrap();
        b.reserve(&b_r).await.unwrap();
        let accepting = tokio::spawn(async move {
            let c = b.accept().await.unwrap();
            (c.peer_key(), b, b_r)
        });
        let silent = std::net::UdpSocket::bind(local()).unwrap();
        let a_r = a.connect(relay.local_addr()).await.unwrap();
        let conn = a
            .connect_to_peer_via(b_key, &[silent.local_addr().unwrap()], &[&a_r])
            .await
            .unwrap();
        assert_eq!(conn.peer_key(), Some(b_key));
        let (seen, _b, _b_r) = accepting.await.unwrap();
        assert_eq!(seen, Some(a.public_key()));
        // Nobody reserved this key, and the address is silent: both failures are listed.
        let nobody = PublicKey::from_bytes([5; 32]);
        let Err(Error::Unreachable { attempts }) = a
            .connect_to_peer_via(nobody, &[silent.local_addr().unwrap()], &[&a_r])
            .await
        else {
            panic!("reached nobody");
        };
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert!(attempts.iter().any(|(at, e)| *at == relay.local_addr()
            && matches!(
                e,
                Error::Handshake(HandshakeError::Relay(RelayRefusal::NoReservation))
            )));
    })
    .await;
}
