//! `cargo bench -p weir-core --bench handshake`: one whole handshake between two endpoints
//! in memory, client and server in one thread, from `connect` to both `Connected`: version 2
//! with Noise XX and IK (X25519, ChaCha20-Poly1305, SHA-256), and unprotected version 1. The
//! server's share bounds how many handshakes a core can take per second
//! (`Config::max_handshakes_per_second`). Figures in README.md.

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
}

criterion_group!(benches, bench);
criterion_main!(benches);
