//! The count of streams a peer may have open, auto-tuned over a real path (spec §8, Streams
//! and credit): UDP on 127.0.0.1 through the impairing proxy, which delays each datagram
//! 10 ms each way. Each message is a stream, so a sender of small messages moves at most
//! that count per round trip: the receiver grows it while the application keeps up.

use std::time::Duration as StdDuration;

use bytes::Bytes;
use weir_core::Config;
use weir_sim::proxy::{Impairment, Proxy};
use weir_tokio::{Confirm, Endpoint};

mod common;
use common::{bounded, config, local};

/// Sends `n` messages of 1 KiB from a client to a server reached through a 20 ms round
/// trip, the server reading each as it comes; the count the server let the client keep
/// open in the end.
async fn count_after(server_config: Config, n: usize) -> u64 {
    let server = Endpoint::bind(local(), server_config).unwrap();
    let path = Proxy::start(
        server.local_addr(),
        Impairment {
            delay: StdDuration::from_millis(10),
            ..Impairment::default()
        },
    )
    .unwrap();
    let client = Endpoint::bind(local(), config()).unwrap();
    let conn = client.connect(path.addr()).await.unwrap();
    let sender = tokio::spawn(async move {
        for _ in 0..n {
            conn.send_message_with(Bytes::from(vec![7u8; 1024]), Confirm::Queued)
                .await
                .unwrap();
        }
        (client, conn)
    });
    let incoming = server.accept().await.unwrap();
    for _ in 0..n {
        assert_eq!(incoming.recv_message().await.unwrap().len(), 1024);
    }
    let _kept = sender.await.unwrap();
    incoming.stats().await.expect("live counters").concurrent_streams
}

/// By default the count starts at `initial_concurrent_streams` (256) and grows (up to
/// 4,096) once the server reads whole counts of the client's streams within two round
/// trips; fixed at 128, it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_keeps_up_over_a_long_path_grows_the_count_and_a_fixed_one_stays() {
    bounded(async {
        let start = config().initial_concurrent_streams;
        let grown = count_after(config(), 3_000).await;
        assert!(grown > start && grown <= 4_096, "{grown} from {start}");
        let fixed = Config {
            initial_concurrent_streams: 128,
            max_concurrent_streams: 128,
            ..config()
        };
        assert_eq!(count_after(fixed, 1_000).await, 128);
    })
    .await
}
