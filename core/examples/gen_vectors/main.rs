//! Writes spec/vectors/v1.txt, the wire format's test vectors (format: spec/vectors/README.md),
//! or with `--v2` spec/vectors/v2.txt, version 2's (§11).
//!
//! Run from the repository root after a deliberate wire change, and review the diff:
//!
//! ```text
//! cargo run -p weir-core --example gen_vectors > spec/vectors/v1.txt
//! cargo run -p weir-core --example gen_vectors -- --v2 > spec/vectors/v2.txt
//! ```
//!
//! With `--corpus fuzz/corpus/decode_packet` it also writes every vector there as a seed of
//! the `decode_packet` fuzz target.
//!
//! Valid vectors are encoded by the codec; invalid ones are put together byte by byte here
//! (the codec refuses to write them) and sealed with a correct trailer unless the vector is
//! about the trailer. `core/tests/vectors.rs` checks every vector against the codec.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use smallvec::smallvec;
use weir_core::wire::*;
use weir_core::Delivery;

#[path = "../../tests/support/error_kind.rs"]
mod error_kind;
mod errors;
mod packets;
mod v2;
use error_kind::error_kind;

const CLIENT: ConnectionId = ConnectionId([0xc1, 0x1e, 0x27, 0, 0, 0, 0, 0x01]);
const SERVER: ConnectionId = ConnectionId([0x5e, 0x27, 0xe2, 0, 0, 0, 0, 0x02]);

struct Out {
    text: String,
    /// With `--corpus DIR`: also write each vector as a seed of the `decode_packet` fuzz target.
    corpus: Option<std::path::PathBuf>,
}

impl Out {
    fn vector(&mut self, name: &str, about: &str, largest: Option<u64>, bytes: &[u8]) {
        self.vector_keyed(name, about, largest, None, bytes)
    }

    /// A vector; with `key`, a sealed packet to be opened with it (records `cipher`, `key`).
    fn vector_keyed(
        &mut self,
        name: &str,
        about: &str,
        largest: Option<u64>,
        key: Option<(Cipher, [u8; 32])>,
        bytes: &[u8],
    ) {
        if let Some(dir) = &self.corpus {
            // The target's control byte (weir_core::fuzz::decode_packet): reseal the trailer
            // after mutation, and a packet-number context near the vector's.
            let mut seed = vec![match largest {
                Some(n) => (((n >> 6).min(63) as u8) << 2) | 0b11,
                None => 0b10,
            }];
            seed.extend_from_slice(bytes);
            std::fs::write(dir.join(name), seed).unwrap();
        }
        let t = &mut self.text;
        writeln!(t, "vector {name}").unwrap();
        writeln!(t, "about {about}").unwrap();
        if let Some((cipher, key)) = key {
            writeln!(t, "cipher {cipher}").unwrap();
            writeln!(t, "key {}", hex(&key)).unwrap();
        }
        match largest {
            Some(n) => writeln!(t, "largest {n}").unwrap(),
            None => writeln!(t, "largest none").unwrap(),
        }
        // Runs of 32 or more zero bytes (padding) are written as `zeros N`.
        let mut rest = bytes;
        while !rest.is_empty() {
            let zeros = rest.iter().take_while(|b| **b == 0).count();
            if zeros >= 32 {
                writeln!(t, "zeros {zeros}").unwrap();
                rest = &rest[zeros..];
                continue;
            }
            let mut end = 0;
            while end < rest.len().min(32) && !rest[end..].starts_with(&[0; 32]) {
                end += 1;
            }
            let hex: String = rest[..end].iter().map(|b| format!("{b:02x}")).collect();
            writeln!(t, "hex {hex}").unwrap();
            rest = &rest[end..];
        }
        let decoded = match key {
            Some((cipher, key)) => {
                weir_core::crypto::open_with_key(cipher, key, BytesMut::from(bytes), largest)
                    .map(Datagram::Packet)
            }
            None => decode(Bytes::copy_from_slice(bytes), largest),
        };
        match decoded {
            Ok(d) => {
                writeln!(t, "ok").unwrap();
                for line in d.to_string().lines() {
                    writeln!(t, "| {line}").unwrap();
                }
            }
            Err(e) => writeln!(t, "error {}", error_kind(&e)).unwrap(),
        }
        writeln!(t).unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn data_header(number: u64, number_len: PacketNumberLen) -> Header {
    Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Data,
        dcid: SERVER,
        number,
        number_len,
        timestamp: 1_000_000,
    }
}

fn handshake_header(dcid: ConnectionId, scid: ConnectionId, number: u64) -> Header {
    Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Handshake { scid },
        dcid,
        number,
        number_len: PacketNumberLen::One,
        timestamp: 5_000,
    }
}

fn encode(header: &Header, frames: &[Frame], pad_to: usize) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut w = PacketWriter::new(&mut buf, header).unwrap();
    for f in frames {
        w.push(f).unwrap();
    }
    w.pad_to(pad_to).unwrap();
    let len = w.finish().unwrap();
    buf.truncate(len);
    buf
}

/// Header bytes of a data packet to SERVER with a 1-byte packet number 7 and timestamp 0.
fn raw_data_header() -> Vec<u8> {
    let mut h = vec![0x00, 0x01, 0x00];
    h.extend_from_slice(&SERVER.0);
    h.extend_from_slice(&[0x07, 0, 0, 0, 0]);
    h
}

/// Header bytes of a handshake packet from CLIENT, packet number 0, timestamp 0.
fn raw_handshake_header() -> Vec<u8> {
    let mut h = vec![0x00, 0x01, 0x80];
    h.extend_from_slice(&ConnectionId::UNSET.0);
    h.extend_from_slice(&CLIENT.0);
    h.extend_from_slice(&[0x00, 0, 0, 0, 0]);
    h
}

/// Appends a trailer that checks (spec §3.5), expanding the packet number from `largest`.
fn seal_with(mut bytes: Vec<u8>, largest: Option<u64>) -> Vec<u8> {
    bytes.extend_from_slice(&[0; 4]);
    assert!(reseal(&mut bytes, largest), "a readable header");
    bytes
}

/// Appends a trailer for a datagram read with no packet-number context, or with largest
/// 6 for data packets (the raw data header carries packet number 7).
fn seal(bytes: Vec<u8>) -> Vec<u8> {
    let largest = if bytes.get(2) == Some(&0x80) || bytes.get(..2) == Some(&[0, 0]) {
        None
    } else {
        Some(6)
    };
    seal_with(bytes, largest)
}

fn raw(header: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    let mut b = header;
    b.extend_from_slice(payload);
    seal(b)
}

fn params() -> TransportParams {
    TransportParams {
        max_data: Some(1 << 20),
        max_stream_data: Some(256 << 10),
        max_streams: Some(100),
        max_datagram_size: Some(1452),
        idle_timeout_ms: Some(30_000),
        max_ack_delay_ms: Some(25),
        max_message_len: Some(64 << 20),
        stateless_reset_token: None,
        unknown: Bytes::new(),
    }
}

fn v(min: u16, max: u16) -> VersionRange {
    VersionRange::new(min, max).unwrap()
}

fn stream(id: u64, offset: u64, data: &'static [u8], fin: bool) -> Frame {
    Frame::Stream(StreamFrame {
        id: StreamId(id),
        offset,
        data: Bytes::from_static(data),
        fin,
        total_len: None,
        label: None,
        digest: None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--v2") {
        return print!("{}", v2::v2_vectors());
    }
    let corpus = match args.get(1).map(String::as_str) {
        Some("--corpus") => Some(std::path::PathBuf::from(args.get(2).expect("--corpus DIR"))),
        Some(other) => panic!("unknown argument {other}; usage: gen_vectors [--corpus DIR | --v2]"),
        None => None,
    };
    let mut out = Out {
        text: String::new(),
        corpus,
    };
    writeln!(
        out.text,
        "# weir wire format v1 test vectors. Format: spec/vectors/README.md."
    )
    .unwrap();
    writeln!(
        out.text,
        "# Generated by `cargo run -p weir-core --example gen_vectors`; review diffs."
    )
    .unwrap();
    writeln!(out.text).unwrap();

    packets::handshake_packets(&mut out);
    packets::data_packets(&mut out);
    packets::packet_numbers(&mut out);
    errors::decode_errors(&mut out);

    print!("{}", out.text);
}

/// The bytes of a minimal HELLO frame: versions 1..=1, no capability, no token, no parameter.
fn hello_payload() -> Vec<u8> {
    vec![0x20, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00]
}
