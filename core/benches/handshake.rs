//! `cargo bench -p weir-core --bench handshake`: one whole handshake between two endpoints
//! in memory, client and server in one thread, from `connect` to both `Connected`: version 2
//! with Noise XX and IK (X25519, ChaCha20-Poly1305, SHA-256), and unprotected version 1. The
//! server's share bounds how many handshakes a core can take per second
//! (`Config::max_handshakes_per_second`). And what a server pays for a HELLO it turns away:
//! a garbage IK HELLO read (one X25519) and refused, against the same HELLO answered with a
//! RETRY (a MAC), which is what a flood gets once it spent the handshake rate (spec §10.1).
//! Figures in adapters/bench/README.md and spec/threat-model.md.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use weir_core::time::Instant;
use weir_core::wire::VersionRange;
use weir_core::{Config, Endpoint, Event, Identity, Seed};

const CLIENT: &str = "10.0.0.1:4000";
const SERVER: &str = "10.0.0.2:4000";

/// Runs one handshake to the end; `known` names the server's key (IK).
fn handshake(client: &mut Endpoint, server: &mut Endpoint, known: bool, buf: &mut [u8]) {
    let (c, s) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let now = Instant::ZERO;
    let _ = if known {
        client.connect_to(now, s, server.public_key())
    } else {
        client.connect(now, s)
    };
    let mut connected = 0;
    while connected < 2 {
        let mut moved = false;
        while let Some(t) = client.poll_transmit(now, buf) {
            server.handle_datagram(now, c, BytesMut::from(&buf[..t.len]));
            moved = true;
        }
        while let Some(t) = server.poll_transmit(now, buf) {
            client.handle_datagram(now, s, BytesMut::from(&buf[..t.len]));
            moved = true;
        }
        for e in std::iter::from_fn(|| client.poll_event()).chain(std::iter::from_fn(|| server.poll_event()))
        {
            connected += usize::from(matches!(e, Event::Connected { .. }));
        }
        assert!(moved || connected == 2, "the handshake stalled");
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    for (name, versions, known) in [
        ("v2_xx", VersionRange::ENCRYPTED, false),
        ("v2_ik", VersionRange::ENCRYPTED, true),
        ("v1_unprotected", VersionRange::UNPROTECTED, false),
    ] {
        let config = Config {
            versions,
            address_validation: weir_core::AddressValidation::Off,
            identity: Some(Identity::from_seed(&Seed::from(9))),
            ..Config::default()
        };
        let mut buf = vec![0u8; 2048];
        // Fresh endpoints each time (made outside the timing): connections held would fill
        // the endpoint's receive budget.
        g.bench_function(name, |b| {
            b.iter_batched(
                || (Endpoint::new(config.clone(), 1), Endpoint::new(config.clone(), 2)),
                |(mut client, mut server)| handshake(&mut client, &mut server, known, &mut buf),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    let mut g = c.benchmark_group("turned_away");
    for (name, validation) in [
        ("garbage_ik_hello_refused", weir_core::AddressValidation::Off),
        ("hello_answered_with_retry", weir_core::AddressValidation::Always),
    ] {
        let config = Config {
            address_validation: validation,
            max_handshakes_per_second: u32::MAX,
            identity: Some(Identity::from_seed(&Seed::from(9))),
            ..Config::default()
        };
        let mut server = Endpoint::new(config, 2);
        let hello = garbage_ik_hello();
        let mut buf = vec![0u8; 2048];
        let from = CLIENT.parse().unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                server.handle_datagram(Instant::ZERO, from, hello.clone());
                server.poll_transmit(Instant::ZERO, &mut buf).expect("an answer")
            })
        });
    }
    g.finish();
}

/// A NOISE_HELLO starting IK whose first message is 96 bytes of garbage, padded to 1200.
fn garbage_ik_hello() -> BytesMut {
    use weir_core::wire::{
        Capabilities, Ciphers, ConnectionId, Frame, Header, Hello, KeyPhase, NoiseHello, NoisePattern,
        PacketKind, PacketNumberLen, PacketWriter, TransportParams, VERSION_2,
    };
    let header = Header {
        version: VERSION_2,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Handshake {
            scid: ConnectionId::from_u64(7),
        },
        dcid: ConnectionId::UNSET,
        number: 0,
        number_len: PacketNumberLen::One,
        timestamp: 0,
    };
    let frame = Frame::NoiseHello(Box::new(NoiseHello {
        hello: Hello {
            versions: VersionRange::ENCRYPTED,
            capabilities: Capabilities::ALL,
            token: bytes::Bytes::new(),
            params: TransportParams::default(),
        },
        pattern: NoisePattern::Ik,
        ciphers: Ciphers::ALL,
        message: bytes::Bytes::from_static(&[0x42; 96]),
    }));
    let mut buf = BytesMut::zeroed(1200);
    let mut w = PacketWriter::new(&mut buf, &header).unwrap();
    w.push(&frame).unwrap();
    w.pad_to(1200).unwrap();
    let len = w.finish().unwrap();
    buf.truncate(len);
    buf
}

criterion_group!(benches, bench);
criterion_main!(benches);
