//! The shards of one endpoint over real UDP on 127.0.0.1 (`Endpoint::bind_sharded`, spec
//! §3.3, routing among shards): peers see one endpoint whichever shard answers, and a
//! datagram the operating system hands to the wrong shard reaches its connection anyway,
//! by its connection id (or, relayed, by its circuit). Bounded: each test body runs under a
//! 60-second limit.

mod common;

use std::num::NonZeroU8;
use std::sync::Arc;

use bytes::Bytes;
use common::{bounded, config, local};
use weir_tokio::{Config, Connection, Endpoint, RelayConfig};

/// Two shards on one address, shared with the tasks that serve them.
fn two_shards(config: Config) -> Vec<Arc<Endpoint>> {
    let shards = Endpoint::bind_sharded(local(), config, NonZeroU8::new(2).unwrap()).unwrap();
    shards.into_iter().map(Arc::new).collect()
}

/// Echoes every message on every connection `shard` accepts, until it is shut down.
fn echo(shard: &Arc<Endpoint>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let shard = Arc::clone(shard);
    async move {
        while let Ok(conn) = shard.accept().await {
            tokio::spawn(async move {
                while let Ok(m) = conn.recv_message().await {
                    if conn.send_message(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
}

/// Sends a message of `len` bytes and checks the echo, byte for byte.
async fn round_trip(conn: &Connection, seed: u8, len: usize) {
    let msg: Bytes = (0..len)
        .map(|i| (i as u8).wrapping_mul(seed))
        .collect::<Vec<u8>>()
        .into();
    conn.send_message(msg.clone()).await.unwrap();
    assert_eq!(conn.recv_message().await.unwrap(), msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_sharded_server_see_one_endpoint() {
    bounded(async {
        let shards = two_shards(config());
        let (addr, key) = (shards[0].local_addr(), shards[0].public_key());
        assert!(shards
            .iter()
            .all(|s| s.local_addr() == addr && s.public_key() == key));
        for shard in &shards {
            tokio::spawn(echo(shard));
        }
        let mut clients = Vec::new();
        for i in 0..8u8 {
            let client = Endpoint::bind(local(), config()).unwrap();
            let conn = client.connect_to(addr, key).await.unwrap();
            round_trip(&conn, i + 1, 20_000).await;
            clients.push((client, conn));
        }
        // Nothing reached a shard that did not know what to do with it.
        assert!(shards.iter().all(|s| s.stats().dropped_unknown_connection == 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_each_shard_opens_get_their_answers() {
    bounded(async {
        // The server answers every connection at the one address the shards share; the
        // operating system hands all of it to one shard's socket, so the other shard's
        // connections live only if what it receives is handed over.
        let server = Arc::new(Endpoint::bind(local(), config()).unwrap());
        tokio::spawn(echo(&server));
        let shards = two_shards(config());
        for round in 0..3u8 {
            for (i, shard) in shards.iter().enumerate() {
                let conn = shard.connect(server.local_addr()).await.unwrap();
                round_trip(&conn, round * 2 + i as u8 + 1, 50_000).await;
                conn.close(0, "done").await.unwrap();
            }
        }
        assert!(shards.iter().all(|s| s.stats().dropped_unknown_connection == 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_reached_through_a_relay_gets_its_circuit_s_datagrams() {
    bounded(async {
        let relay = Endpoint::bind(
            local(),
            Config {
                relay: Some(RelayConfig::default()),
                ..config()
            },
        )
        .unwrap();
        let shards = two_shards(config());
        for shard in &shards {
            tokio::spawn(echo(shard));
        }
        let a = Endpoint::bind(local(), config()).unwrap();
        let a_r = a.connect(relay.local_addr()).await.unwrap();
        // Each shard in turn holds the reservation; the relay's datagrams all reach one
        // shard's socket, so one of the two circuits' datagrams must be handed over.
        for (i, shard) in shards.iter().enumerate() {
            let to_relay = shard.connect(relay.local_addr()).await.unwrap();
            shard.reserve(&to_relay).await.unwrap();
            let conn = a.connect_via(&a_r, shard.public_key()).await.unwrap();
            round_trip(&conn, i as u8 + 3, 5_000).await;
            conn.close(0, "done").await.unwrap();
            to_relay.close(0, "next shard").await.unwrap();
        }
    })
    .await;
}
