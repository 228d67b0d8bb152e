//! Fuzz target bodies (feature `fuzzing`). The cargo-fuzz crate in `fuzz/` calls these;
//! `cargo test` replays each target's committed corpus through them (core/tests/fuzz_corpus.rs),
//! so they type-check and run in CI without a nightly toolchain.
//!
//! Every body takes the fuzzer's bytes and reads them as a sequence of steps with
//! [`arbitrary::Unstructured`] (running out of bytes ends the run), checking its oracle
//! after each step; each module's doc says what it drives and what must hold:
//!
//! - state machines alone: `decode_packet` (below), [`reassembly`](fn@reassembly),
//!   [`send_stream`](fn@send_stream), [`recovery`](fn@recovery),
//!   [`congestion`](fn@congestion), [`flow`](fn@flow), [`pipe`](fn@pipe);
//! - whole endpoints on a network the fuzzer controls (module `net`):
//!   [`handshake`](fn@handshake), [`endpoint`](fn@endpoint), [`endpoint_batch`],
//!   [`hostile`](fn@hostile), [`hostile_batch`], [`pair`](fn@pair), [`batch`],
//!   [`relay`](fn@relay), [`relay_batch`], [`migration`](fn@migration), [`migration_batch`],
//!   [`key_update`](fn@key_update), [`forgery`](fn@forgery); [`TracedRun`] runs them
//!   with every endpoint recording a trace, so that a finding becomes a trace;
//! - a trace's recorded inputs, the trace's text being the input: [`trace_inputs`](fn@trace_inputs).
//!
//! The `expect`s and `assert`s here are the fuzz oracle: a failure is the finding, so they
//! panic on purpose. Nothing outside this feature-gated module calls them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable)]

mod congestion;
mod datagrams;
mod endpoint;
mod flow;
mod forgery;
mod handshake;
mod hostile;
mod key_update;
mod migration;
mod net;
mod pair;
mod pipe;
mod reassembly;
mod recovery;
mod relay;
mod send_stream;
mod trace;
mod trace_inputs;

pub use congestion::congestion;
pub use endpoint::{endpoint, endpoint_batch};
pub use flow::flow;
pub use forgery::forgery;
pub use handshake::handshake;
pub use hostile::{hostile, hostile_batch};
pub use key_update::key_update;
pub use migration::{migration, migration_batch};
pub use pair::{batch, pair};
pub use pipe::pipe;
pub use reassembly::reassembly;
pub use recovery::recovery;
pub use relay::{relay, relay_batch};
pub use send_stream::send_stream;
pub use trace::{traced_targets, TraceRun, TraceTargetError, TracedRun};
pub use trace_inputs::trace_inputs;

/// The pseudo-random bytes the scenario targets cut their payloads from (28 KiB), so that a
/// byte given to the wrong message or offset shows: for targets built above the core,
/// whose payloads are cut from it too.
pub fn pattern() -> &'static [u8] {
    pair::pattern_bytes()
}

use bytes::Bytes;

use crate::crypto::Primitives;
use crate::wire::{self, Datagram, PacketWriter, MAX_DATAGRAM_SIZE};
use crate::Config;

/// A fuzz target's body: the fuzzer's bytes in, a panic for a finding.
pub type Body = fn(&[u8]);

/// Each fuzz target by name (its cargo-fuzz binary's, and its corpus folder's), with its
/// body: what `cargo test` replays the corpora through and [`TracedRun`] knows targets by.
pub const TARGETS: &[(&str, Body)] = &[
    ("batch", batch),
    ("congestion", congestion),
    ("decode_packet", decode_packet),
    ("endpoint", endpoint),
    ("endpoint_batch", endpoint_batch),
    ("flow", flow),
    ("forgery", forgery),
    ("handshake", handshake),
    ("hostile", hostile),
    ("hostile_batch", hostile_batch),
    ("key_update", key_update),
    ("migration", migration),
    ("migration_batch", migration_batch),
    ("pair", pair),
    ("pipe", pipe),
    ("reassembly", reassembly),
    ("recovery", recovery),
    ("relay", relay),
    ("relay_batch", relay_batch),
    ("send_stream", send_stream),
    ("trace_inputs", trace_inputs),
];

/// The config the whole-endpoint targets start from: the defaults, with the fuzzing
/// stand-in for the cryptography (crypto::stand_in), so that their inputs go to the state
/// machines rather than curve arithmetic. `handshake` alone keeps the real primitives.
fn stand_in() -> Config {
    Config {
        primitives: Primitives::FuzzingStandIn,
        ..Config::default()
    }
}

/// The cipher and key the `decode_packet` target seals version 2 data packets with.
const SEAL: (wire::Cipher, [u8; 32]) = (wire::Cipher::ChaCha20Poly1305, [0x5e; 32]);

/// A sealed packet opens to frames that re-seal to the same bytes, and opening those
/// gives the same packet; one that does not open (too short, reserved bits, bad frames)
/// is a typed error.
fn sealed_round_trip(datagram: alloc::vec::Vec<u8>, largest: Option<u64>) {
    let Ok(packet) =
        crate::crypto::open_with_key(SEAL.0, SEAL.1, bytes::BytesMut::from(&datagram[..]), largest)
    else {
        return;
    };
    let frames: alloc::vec::Vec<wire::Frame> = packet.frames().collect();
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    // Oracle: a packet that opened seals again to the same bytes, and those open; either
    // failing is the finding.
    let len = crate::crypto::seal_with_key(SEAL.0, SEAL.1, &packet.header, &frames, &mut buf)
        .expect("an opened packet re-seals");
    assert_eq!(&buf[..len], &datagram[..], "re-sealing differs from the input");
    let again = crate::crypto::open_with_key(SEAL.0, SEAL.1, bytes::BytesMut::from(&buf[..len]), largest)
        .expect("re-sealed bytes open");
    assert_eq!(again, packet, "opening the re-sealing differs");
}

/// `decode_packet`: any bytes decode to a datagram or a typed error, never a panic; what
/// decodes re-encodes to the same bytes and decodes to the same representation.
///
/// The first input byte is a control byte: bit 0 set gives the decoder a largest received
/// packet number of `(byte >> 2) << 6` (so expansion is fuzzed too); bit 1 set rewrites the
/// datagram's last 4 bytes with the correct trailer ([`wire::reseal`]), so that mutations reach the frame parser
/// instead of dying at the checksum.
pub fn decode_packet(data: &[u8]) {
    let Some((&control, datagram)) = data.split_first() else {
        return;
    };
    let largest = (control & 1 == 1).then(|| u64::from(control >> 2) << 6);
    let mut datagram = datagram.to_vec();
    if control & 2 == 2 {
        wire::reseal(&mut datagram, largest);
        // A version 2 data packet is sealed instead: its frames then reach the decoder.
        if crate::crypto::reseal_with_key(SEAL.0, SEAL.1, &mut datagram, largest) {
            return sealed_round_trip(datagram, largest);
        }
    }
    let datagram = &datagram[..];
    let bytes = Bytes::copy_from_slice(datagram);
    let Ok(decoded) = wire::decode(bytes.clone(), largest) else {
        return;
    };
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    // Oracle: what decoded encodes again, and that decodes (the wire format's round trip);
    // any step failing is the finding.
    let len = match &decoded {
        Datagram::Packet(packet) => {
            let mut w = PacketWriter::new(&mut buf, &packet.header).expect("a decoded header re-encodes");
            for frame in packet.frames() {
                w.push(&frame).expect("a decoded frame re-encodes");
            }
            w.finish().expect("a decoded packet re-encodes")
        }
        Datagram::VersionReject(v) => v.encode(&mut buf).expect("a decoded VERSION_REJECT re-encodes"),
    };
    assert_eq!(&buf[..len], datagram, "re-encoding differs from the input");
    let again = wire::decode(Bytes::copy_from_slice(&buf[..len]), largest).expect("re-encoded bytes decode");
    assert_eq!(again, decoded, "decoding the re-encoding differs");
}

#[cfg(test)]
mod tests {
    use super::net::Net;
    use super::*;
    use crate::crypto::keys::{Identity, Seed};
    use crate::wire::VersionRange;
    use crate::Event;

    /// Runs the network undisturbed until nothing is left to happen (or 10,000 steps).
    fn settle(net: &mut Net) {
        for _ in 0..10_000 {
            if !net.settle_step() {
                break;
            }
        }
    }

    #[test]
    fn stand_in_endpoints_connect_encrypted_and_carry_a_message() {
        let mut net = Net::new();
        let (client, server) = (net.add(stand_in(), 1), net.add(stand_in(), 2));
        let conn = net.connect(client, server).unwrap();
        settle(&mut net);
        let key = |seed: u64| {
            Some(Identity::from_seed_under(&Seed::from(seed), Primitives::FuzzingStandIn).public_key())
        };
        let connected = |node: usize| {
            net.nodes[node].events.iter().find_map(|e| match e {
                Event::Connected { peer, negotiated, .. } => Some((*peer, negotiated.version)),
                _ => None,
            })
        };
        assert_eq!(
            connected(client),
            Some((key(2), VersionRange::ENCRYPTED.max())),
            "{:?}",
            net.nodes[client].events
        );
        assert_eq!(connected(server), Some((key(1), VersionRange::ENCRYPTED.max())));
        // Not the real identities: a real peer pinning them could not be fooled.
        assert_ne!(key(2), Some(Identity::from_seed(&Seed::from(2)).public_key()));
        net.nodes[client]
            .ep
            .send_message(conn, None, Bytes::from_static(b"through the stand-in"))
            .unwrap();
        net.collect();
        settle(&mut net);
        assert!(
            net.nodes[server]
                .events
                .iter()
                .any(|e| matches!(e, Event::StreamOpened { .. })),
            "{:?}",
            net.nodes[server].events
        );
    }

    #[test]
    fn a_stand_in_endpoint_cannot_connect_to_a_real_one() {
        let mut net = Net::new();
        let (client, server) = (net.add(stand_in(), 1), net.add(Config::default(), 2));
        net.connect(client, server).unwrap();
        settle(&mut net);
        assert!(!net.nodes[client]
            .events
            .iter()
            .any(|e| matches!(e, Event::Connected { .. })));
        assert!(
            net.nodes[client]
                .events
                .iter()
                .any(|e| matches!(e, Event::HandshakeFailed { .. })),
            "{:?}",
            net.nodes[client].events
        );
    }
}
