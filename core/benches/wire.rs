//! `cargo bench -p weir-core --bench wire`: decode and encode of a full 1200-byte STREAM
//! datagram and of a datagram holding an ACK with 32 ranges. Figures are in adapters/bench/README.md.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use weir_core::wire::*;

fn header(number: u64) -> Header {
    Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Data,
        dcid: ConnectionId::from_u64(0x5e27_e200_0000_0002),
        number,
        number_len: PacketNumberLen::Two,
        timestamp: 123_456,
    }
}

/// A STREAM frame whose data fills a 1200-byte datagram exactly.
fn full_stream_frame(payload: &Bytes) -> Frame {
    let frame = |len: usize| {
        Frame::Stream(StreamFrame {
            id: StreamId(4),
            offset: 1 << 20,
            data: payload.slice(..len),
            fin: false,
            total_len: None,
            label: None,
            digest: None,
        })
    };
    let room = MIN_DATAGRAM_SIZE - header(1000).encoded_len() - TRAILER_LEN;
    let overhead = frame(room).encoded_len().unwrap() - room;
    frame(room - overhead)
}

fn ack_32_ranges() -> Frame {
    let mut ranges = Vec::new();
    let mut hi = 100_000u64;
    for _ in 0..32 {
        ranges.push(AckRange {
            smallest: hi - 20,
            largest: hi,
        });
        hi -= 30;
    }
    Frame::Ack(Ack {
        ranges: AckRanges::new(ranges).unwrap(),
        ack_delay: 1_000,
        one_way_delay: 42,
    })
}

fn encode(frame: &Frame, buf: &mut [u8]) -> usize {
    let mut w = PacketWriter::new(buf, &header(1000)).unwrap();
    w.push(frame).unwrap();
    w.finish().unwrap()
}

fn bench_datagram(c: &mut Criterion, name: &str, frame: Frame) {
    let mut buf = vec![0u8; MIN_DATAGRAM_SIZE];
    let len = encode(&frame, &mut buf);
    let datagram = Bytes::copy_from_slice(&buf[..len]);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(&frame), &mut buf)));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let packet = Packet::decode(black_box(datagram.clone()), Some(999)).unwrap();
            // Walk the frames too: that is what a receiver does.
            packet.frames().count()
        })
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    let payload = Bytes::from(vec![0xa5u8; MIN_DATAGRAM_SIZE]);
    let stream = full_stream_frame(&payload);
    bench_datagram(c, "stream_1200B", stream);
    bench_datagram(c, "ack_32_ranges", ack_32_ranges());
}

criterion_group!(benches, wire);
criterion_main!(benches);
