//! What the loopback suites share: addresses, configurations and the time limit.

use std::future::Future;
use std::time::Duration as StdDuration;

#[allow(unused_imports)] // each suite uses its own part
pub use weir_sim::loopback::{config, local, patient};

/// An endpoint on 127.0.0.1 with [`config`].
#[allow(dead_code)] // not every suite binds its own
pub fn endpoint() -> weir_tokio::Endpoint {
    weir_tokio::Endpoint::bind(local(), config()).unwrap()
}

/// Runs `test` with a limit, so that a bug shows as a failure and not a hang.
#[allow(dead_code)] // the figures suite bounds each message instead
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(StdDuration::from_secs(60), test)
        .await
        .expect("the test took over 60 s")
}

/// `len` bytes that are not a repeating pattern of a datagram's size.
#[allow(dead_code)] // not every suite sends patterned bytes
pub fn payload(len: usize, seed: u32) -> bytes::Bytes {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    bytes::Bytes::from(data)
}

/// Two endpoints on 127.0.0.1 with [`config`], the second connected to the first:
/// (server, client, the client's connection, the server's). Keep the endpoints for as long
/// as the connections are used.
#[allow(dead_code)] // not every suite connects this way
pub async fn connected() -> (
    weir_tokio::Endpoint,
    weir_tokio::Endpoint,
    weir_tokio::Connection,
    weir_tokio::Connection,
) {
    let server = endpoint();
    let client = endpoint();
    let conn = client.connect(server.local_addr()).await.unwrap();
    let incoming = server.accept().await.unwrap();
    (server, client, conn, incoming)
}
