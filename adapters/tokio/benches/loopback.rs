//! `cargo bench -p weir-tokio --bench loopback`: one 64 MiB message from a weir-tokio client
//! to a weir-tokio server over real UDP on 127.0.0.1, both in one process (a tokio runtime
//! with two worker threads), unprotected (wire version 1) and sealed with each cipher
//! (version 2). The receiver reads the whole message; the figure is goodput. The difference
//! between the rows is what the crypto costs on a real path; adapters/bench/README.md has the figures.

use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::wire::{Cipher, VersionRange};
use weir_core::Config;
use weir_tokio::Endpoint;

const SIZE: usize = 64 << 20;

fn config(versions: VersionRange, ciphers: Vec<Cipher>) -> Config {
    Config {
        versions,
        ciphers,
        stream_receive_window: 16 << 20,
        max_stream_receive_window: 32 << 20,
        receive_window: 32 << 20,
        max_receive_window: 64 << 20,
        send_buffer: 128 << 20,
        congestion: weir_core::congestion::CongestionAlgorithm::NewReno,
        ..Config::default()
    }
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let msg = Bytes::from(vec![0x42u8; SIZE]);
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut g = c.benchmark_group("loopback");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    for (name, versions, ciphers) in [
        ("64MiB_unprotected", VersionRange::UNPROTECTED, vec![]),
        (
            "64MiB_chacha20poly1305",
            VersionRange::ENCRYPTED,
            vec![Cipher::ChaCha20Poly1305],
        ),
        (
            "64MiB_aes256gcm",
            VersionRange::ENCRYPTED,
            vec![Cipher::Aes256Gcm],
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let config = config(versions, ciphers.clone());
                    let server = Endpoint::bind(local, config.clone()).unwrap();
                    let client = Endpoint::bind(local, config).unwrap();
                    let conn = client.connect(server.local_addr()).await.unwrap();
                    let msg = msg.clone();
                    let send = tokio::spawn(async move {
                        conn.send_message(msg).await.unwrap();
                        conn
                    });
                    let incoming = server.accept().await.unwrap();
                    let got = incoming.recv_message().await.unwrap();
                    assert_eq!(got.len(), SIZE);
                    let _conn = send.await.unwrap();
                    got.len()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, loopback);
criterion_main!(benches);
