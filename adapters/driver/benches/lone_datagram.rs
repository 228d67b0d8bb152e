//! `cargo bench -p weir-driver --bench lone_datagram`: what the kernel takes to send and to
//! receive one lone 64-byte datagram over 127.0.0.1 (a small message's round trip is two of
//! each), the way weir's adapters do it against the way quinn-udp's defaults do:
//!
//! - sent with a plain `sendto` ([`Batch::send`]), against quinn-udp's `sendmsg`, which
//!   carries an IP_TOS control message with every datagram;
//! - received through quinn-udp on a socket set up by [`udp_state`], which asks for no
//!   control message, against one set up by quinn-udp alone, which asks for the destination
//!   address and the ECN bits of every datagram.
//!
//! Each iteration is 64 datagrams: sent, then drained (the send rows) or received one by one
//! (the receive rows, whose sends are the same plain ones in both). Figures:
//! adapters/bench/rounds.md (issue 35, twenty-eighth round).

use std::io::IoSliceMut;
use std::net::UdpSocket;

use criterion::{criterion_group, criterion_main, Criterion};
use quinn_udp::{RecvMeta, UdpSocketState};
use weir_driver::{udp_state, Batch};

/// Datagrams an iteration: well within the receiver's buffer.
const BURST: usize = 64;

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

fn lone_datagram(c: &mut Criterion) {
    let sender = socket();
    let state = UdpSocketState::new((&sender).into()).unwrap();
    let contents = [0x42u8; 64];
    let to = |receiver: &UdpSocket| Batch {
        destination: receiver.local_addr().unwrap(),
        contents: &contents,
        segment_size: contents.len(),
    };
    let mut g = c.benchmark_group("lone_datagram");

    let receiver = socket();
    let batch = to(&receiver);
    let drain = || {
        let mut buf = [0u8; 2048];
        while receiver.recv(&mut buf).is_ok() {}
    };
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

    let quiet = socket();
    let quiet_state = udp_state(&quiet).unwrap();
    let asking = socket();
    let asking_state = UdpSocketState::new((&asking).into()).unwrap();
    for (name, receiver, receiver_state) in [
        ("received, no control message (udp_state)", &quiet, &quiet_state),
        (
            "received, with IP_PKTINFO and IP_TOS (quinn-udp)",
            &asking,
            &asking_state,
        ),
    ] {
        let batch = to(receiver);
        let mut buf = [0u8; 2048];
        let mut meta = [RecvMeta::default()];
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BURST {
                    batch.send(&state, (&sender).into()).unwrap();
                }
                for _ in 0..BURST {
                    let mut bufs = [IoSliceMut::new(&mut buf)];
                    receiver_state
                        .recv(receiver.into(), &mut bufs, &mut meta)
                        .unwrap();
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lone_datagram);
criterion_main!(benches);
