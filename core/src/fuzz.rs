//! Fuzz target bodies (feature `fuzzing`). The cargo-fuzz crate in `fuzz/` calls these;
//! `cargo test` replays each target's committed corpus through them (core/tests/fuzz_corpus.rs),
//! so they type-check and run in CI without a nightly toolchain.

use bytes::Bytes;

use crate::wire::{self, Datagram, PacketWriter, MAX_DATAGRAM_SIZE};

/// `decode_packet`: any bytes decode to a datagram or a typed error, never a panic; what
/// decodes re-encodes to the same bytes and decodes to the same representation.
pub fn decode_packet(data: &[u8]) {
    // The first byte picks the packet-number context, so expansion is fuzzed too.
    let (largest, datagram) = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => (Some(u64::from(*b) << 5), rest),
        Some((_, rest)) => (None, rest),
        None => (None, data),
    };
    let bytes = Bytes::copy_from_slice(datagram);
    let Ok(decoded) = wire::decode(bytes.clone(), largest) else {
        return;
    };
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
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
