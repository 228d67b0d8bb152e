//! `cargo bench -p weir-core --bench crypto`: sealing and opening one full data packet
//! (1,200 bytes: a STREAM frame of 1,159 bytes of data) with each cipher, through the public
//! `weir_core::crypto::{seal_with_key, open_with_key}` (frame encoding and decoding
//! included), against the same packet ended by version 1's CRC-32 trailer; the same for a
//! 65,000-byte packet (what loopback carries; the per-byte cost, the rest spread thin); and
//! a packet carrying only a PING. `seal_with_key` and `open_with_key` expand the key on
//! every call (as a connection does once, and again after a trim), so the PING rows are
//! mostly that expansion and the AEAD's fixed cost per packet. Figures in
//! adapters/bench/README.md.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_core::crypto::{open_with_key, seal_with_key};
use weir_core::wire::*;

fn header(version: u16) -> Header {
    Header {
        version,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Data,
        dcid: ConnectionId::from_u64(7),
        number: 1000,
        number_len: PacketNumberLen::Two,
        timestamp: 0,
    }
}

fn frame(len: usize) -> Frame {
    Frame::Stream(StreamFrame {
        id: StreamId(0),
        offset: 1 << 20,
        data: Bytes::from(vec![0x42; len]),
        fin: false,
        total_len: None,
        label: None,
        digest: None,
    })
}

/// The largest STREAM frame that `seal` makes a packet of exactly `size` bytes of.
fn filling(size: usize, buf: &mut [u8], seal: impl Fn(&[Frame], &mut [u8]) -> Option<usize>) -> [Frame; 1] {
    (0..size)
        .rev()
        .map(|n| [frame(n)])
        .find(|f| seal(f, buf) == Some(size))
        .unwrap()
}

fn crypto(c: &mut Criterion) {
    let key = [7u8; 32];
    for size in [1200, 65_000] {
        let mut g = c.benchmark_group(format!("packet_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; size];
        // Version 1: the same packet with its CRC trailer (12 bytes more of payload fit).
        let v1 = filling(size, &mut buf, |f, b| {
            encode_packet(&header(VERSION_1), f, b).ok()
        });
        g.bench_function("seal_crc32_v1", |b| {
            b.iter(|| encode_packet(&header(VERSION_1), &v1, &mut buf).unwrap())
        });
        let len = encode_packet(&header(VERSION_1), &v1, &mut buf).unwrap();
        assert_eq!(len, size);
        let sealed_v1 = Bytes::copy_from_slice(&buf[..len]);
        g.bench_function("open_crc32_v1", |b| {
            b.iter(|| Packet::decode(sealed_v1.clone(), Some(999)).unwrap())
        });
        let v2 = filling(size, &mut buf, |f, b| {
            seal_with_key(Cipher::Aes256Gcm, key, &header(VERSION_2), f, b).ok()
        });
        for cipher in Cipher::ALL {
            g.bench_function(format!("seal_{cipher}"), |b| {
                b.iter(|| seal_with_key(cipher, key, &header(VERSION_2), &v2, &mut buf).unwrap())
            });
            let len = seal_with_key(cipher, key, &header(VERSION_2), &v2, &mut buf).unwrap();
            assert_eq!(len, size);
            let sealed = buf[..len].to_vec();
            g.bench_function(format!("open_{cipher}"), |b| {
                b.iter(|| open_with_key(cipher, key, BytesMut::from(&sealed[..]), Some(999)).unwrap())
            });
        }
        g.finish();
    }
    let mut buf = vec![0u8; 1200];
    let mut g = c.benchmark_group("packet_ping");
    for cipher in Cipher::ALL {
        g.bench_function(format!("seal_{cipher}"), |b| {
            b.iter(|| seal_with_key(cipher, key, &header(VERSION_2), &[Frame::Ping], &mut buf).unwrap())
        });
        let len = seal_with_key(cipher, key, &header(VERSION_2), &[Frame::Ping], &mut buf).unwrap();
        let sealed = buf[..len].to_vec();
        g.bench_function(format!("open_{cipher}"), |b| {
            b.iter(|| open_with_key(cipher, key, BytesMut::from(&sealed[..]), Some(999)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, crypto);
criterion_main!(benches);
