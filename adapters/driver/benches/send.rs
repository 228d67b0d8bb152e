//! `cargo bench -p weir-driver --bench send`: what the kernel takes to send one lone 64-byte
//! datagram over 127.0.0.1 the way [`Batch::send`] sends it (a plain `sendto`), against
//! quinn-udp's `sendmsg`, which carries an IP_TOS control message with every datagram
//! (what `Batch::send` did for every batch before). The receiver is drained every 64 sends,
//! inside the measurement, the same for both rows. Figures: adapters/bench/README.md
//! (issue 35, twenty-eighth round).

use std::net::UdpSocket;

use criterion::{criterion_group, criterion_main, Criterion};
use quinn_udp::UdpSocketState;
use weir_driver::Batch;

/// Sends between two drains of the receiver: well within its buffer.
const BURST: usize = 64;

fn lone_datagram(c: &mut Criterion) {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_nonblocking(true).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.set_nonblocking(true).unwrap();
    let state = UdpSocketState::new((&sender).into()).unwrap();
    let contents = [0x42u8; 64];
    let batch = Batch {
        destination: receiver.local_addr().unwrap(),
        contents: &contents,
        segment_size: contents.len(),
    };
    let drain = || {
        let mut buf = [0u8; 2048];
        while receiver.recv(&mut buf).is_ok() {}
    };
    let mut g = c.benchmark_group("lone_datagram");
    g.bench_function("sendto (Batch::send)", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                batch.send(&state, (&sender).into()).unwrap();
            }
            drain();
        })
    });
    g.bench_function("sendmsg with IP_TOS (quinn-udp)", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                state.send((&sender).into(), &batch.transmit()).unwrap();
            }
            drain();
        })
    });
    g.finish();
}

criterion_group!(benches, lone_datagram);
criterion_main!(benches);
