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

#[path = "../tests/support/error_kind.rs"]
mod error_kind;
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
        return print!("{}", v2_vectors());
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

    // ---- handshake packets
    let hello = Frame::Hello(Hello {
        versions: v(1, 1),
        capabilities: Capabilities::ALL,
        token: Bytes::new(),
        params: params(),
    });
    out.vector(
        "hello",
        "client's first HELLO: unknown server id, versions 1..=1, every version 1 capability, padded to 1200 bytes",
        None,
        &encode(
            &handshake_header(ConnectionId::UNSET, CLIENT, 0),
            &[hello],
            MIN_DATAGRAM_SIZE,
        ),
    );
    let hello_token = Frame::Hello(Hello {
        versions: v(1, 3),
        capabilities: Capabilities::STREAMING,
        token: Bytes::from_static(&[0x70, 0x6b, 0x1e, 0x9a, 0x44, 0x02, 0x13, 0x37]),
        params: TransportParams {
            max_data: Some(65_536),
            unknown: Bytes::from_static(&[0x40, 0x80, 0x02, 0xbe, 0xef]),
            ..TransportParams::default()
        },
    });
    out.vector(
        "hello-retried",
        "second HELLO echoing a RETRY token; one known and one unknown transport parameter (id 0x80)",
        None,
        &encode(
            &handshake_header(ConnectionId::UNSET, CLIENT, 1),
            &[hello_token],
            MIN_DATAGRAM_SIZE,
        ),
    );
    let accept = Frame::Accept(Accept {
        version: 1,
        capabilities: Capabilities::STREAMING,
        // A server's ACCEPT carries its stateless reset token (spec §6.1).
        params: TransportParams {
            stateless_reset_token: Some([0x5a; 16]),
            ..params()
        },
    });
    let ack0 = Frame::Ack(Ack {
        ranges: AckRanges::new([AckRange {
            smallest: 0,
            largest: 0,
        }])
        .unwrap(),
        ack_delay: 120,
        one_way_delay: 0x0001_2345,
    });
    out.vector(
        "accept",
        "server's ACCEPT of version 1 with the streaming capability, acknowledging the HELLO",
        None,
        &encode(&handshake_header(CLIENT, SERVER, 0), &[ack0, accept], 0),
    );
    out.vector(
        "reject-no-common-version",
        "server speaking 2..=3 refuses a HELLO for 1..=1",
        None,
        &encode(
            &handshake_header(CLIENT, ConnectionId::UNSET, 0),
            &[Frame::Reject(Reject {
                reason: RejectReason::NO_COMMON_VERSION,
                versions: v(2, 3),
            })],
            0,
        ),
    );
    out.vector(
        "reject-at-capacity",
        "server at its connection limit",
        None,
        &encode(
            &handshake_header(CLIENT, ConnectionId::UNSET, 0),
            &[Frame::Reject(Reject {
                reason: RejectReason::AT_CAPACITY,
                versions: v(1, 1),
            })],
            0,
        ),
    );
    out.vector(
        "retry",
        "server asks the client to prove its address with a 16-byte token",
        None,
        &encode(
            &handshake_header(CLIENT, ConnectionId::UNSET, 0),
            &[Frame::Retry(Retry {
                token: Bytes::from_static(&[0xa5; 16]),
            })],
            0,
        ),
    );
    let mut buf = [0u8; 64];
    let len = VersionReject {
        dcid: CLIENT,
        scid: ConnectionId::UNSET,
        versions: smallvec![v(2, 3), v(5, 5)],
    }
    .encode(&mut buf)
    .unwrap();
    out.vector(
        "version-reject",
        "version 0: a server speaking 2..=3 and 5 cannot read the datagram",
        None,
        &buf[..len],
    );

    // ---- data packets, one frame type each
    let one = PacketNumberLen::One;
    let frames: Vec<(&str, &str, Frame)> = vec![
        ("ping", "PING", Frame::Ping),
        (
            "ack-ranges",
            "ACK of 2..=3, 5..=9 and 100..=120, 250us ack delay",
            Frame::Ack(Ack {
                ranges: AckRanges::new([
                    AckRange {
                        smallest: 100,
                        largest: 120,
                    },
                    AckRange {
                        smallest: 5,
                        largest: 9,
                    },
                    AckRange {
                        smallest: 2,
                        largest: 3,
                    },
                ])
                .unwrap(),
                ack_delay: 250,
                one_way_delay: 0xfffe_0001,
            }),
        ),
        (
            "reset-stream",
            "RESET_STREAM of stream 4, code 3, after 70000 bytes",
            Frame::ResetStream {
                id: StreamId(4),
                code: 3,
                final_size: 70_000,
            },
        ),
        (
            "stop-sending",
            "STOP_SENDING of stream 5, code 9",
            Frame::StopSending {
                id: StreamId(5),
                code: 9,
            },
        ),
        (
            "receipt-delivered",
            "RECEIPT of stream 6: delivered, through one relay",
            Frame::Receipt {
                id: StreamId(6),
                delivery: Delivery::Delivered { relays: 1 },
            },
        ),
        (
            "receipt-failed",
            "RECEIPT_FAILED of stream 8: not delivered, PIPE_BROKEN at the peer",
            Frame::Receipt {
                id: StreamId(8),
                delivery: Delivery::Failed {
                    code: 0x7069_7065,
                    relays: 0,
                },
            },
        ),
        (
            "receipt-refused-code-0",
            "RECEIPT_FAILED of stream 10: the receiver stopped it with code 0",
            Frame::Receipt {
                id: StreamId(10),
                delivery: Delivery::Failed { code: 0, relays: 0 },
            },
        ),
        ("max-data", "MAX_DATA 4 MiB", Frame::MaxData(4 << 20)),
        (
            "max-stream-data",
            "MAX_STREAM_DATA of stream 2: 1 MiB",
            Frame::MaxStreamData {
                id: StreamId(2),
                max: 1 << 20,
            },
        ),
        ("max-streams", "MAX_STREAMS 200", Frame::MaxStreams(200)),
        (
            "data-blocked",
            "DATA_BLOCKED at 1 MiB",
            Frame::DataBlocked(1 << 20),
        ),
        (
            "stream-data-blocked",
            "STREAM_DATA_BLOCKED on stream 6 at 65536",
            Frame::StreamDataBlocked {
                id: StreamId(6),
                limit: 65_536,
            },
        ),
        (
            "streams-blocked",
            "STREAMS_BLOCKED at 100",
            Frame::StreamsBlocked(100),
        ),
        (
            "close",
            "CLOSE with PROTOCOL_VIOLATION and a reason",
            Frame::Close(Close {
                code: CloseCode::Transport(TransportErrorCode::PROTOCOL_VIOLATION),
                reason: Reason::from_static("ack of unsent packet").unwrap(),
            }),
        ),
        (
            "application-close",
            "APPLICATION_CLOSE with code 42 and an empty reason",
            Frame::Close(Close {
                code: CloseCode::Application(42),
                reason: Reason::default(),
            }),
        ),
        (
            "stream",
            "STREAM data in the middle of stream 0",
            stream(0, 1200, b"hello, weir", false),
        ),
        (
            "stream-fin",
            "STREAM data that ends stream 3",
            stream(3, 7, b"bye", true),
        ),
        (
            "stream-open",
            "first STREAM frame of a 5000-byte stream labelled /eth/68",
            Frame::Stream(StreamFrame {
                id: StreamId(8),
                offset: 0,
                data: Bytes::from_static(b"\x01\x02\x03\x04"),
                fin: false,
                total_len: Some(5000),
                label: Some(Label::from_static("/eth/68").unwrap()),
                digest: None,
            }),
        ),
        (
            "stream-message",
            "a whole message in one frame: total length 5, fin, label",
            Frame::Stream(StreamFrame {
                id: StreamId(1),
                offset: 0,
                data: Bytes::from_static(b"hello"),
                fin: true,
                total_len: Some(5),
                label: Some(Label::from_static("/kad/1.0.0").unwrap()),
                digest: None,
            }),
        ),
        (
            "stream-empty-fin",
            "an empty stream: offset 0, no data, fin",
            stream(10, 0, b"", true),
        ),
        (
            "padding",
            "PADDING only: 10 bytes (not ack-eliciting)",
            Frame::Padding(10),
        ),
        (
            "stream-digest",
            "a whole message with its digest: SHA-256 of the 5 bytes \"hello\"",
            Frame::Stream(StreamFrame {
                id: StreamId(5),
                offset: 0,
                data: Bytes::from_static(b"hello"),
                fin: true,
                total_len: Some(5),
                label: None,
                digest: Some(Digest::of(b"hello")),
            }),
        ),
    ];
    for (i, (name, about, frame)) in frames.into_iter().enumerate() {
        let number = 7 + i as u64;
        out.vector(
            name,
            about,
            Some(number - 1),
            &encode(&data_header(number, one), &[frame], 0),
        );
    }
    out.vector(
        "coalesced",
        "ACK, MAX_DATA and two STREAM frames of different streams in one datagram",
        Some(40),
        &encode(
            &data_header(41, one),
            &[
                Frame::Ack(Ack {
                    ranges: AckRanges::new([AckRange {
                        smallest: 30,
                        largest: 33,
                    }])
                    .unwrap(),
                    ack_delay: 0,
                    one_way_delay: 77,
                }),
                Frame::MaxData(1 << 21),
                stream(0, 0, b"first", false),
                stream(2, 64, b"second", true),
            ],
            0,
        ),
    );

    // ---- packet numbers: truncated encodings and their expansion (RFC 9000 A.3)
    out.vector(
        "pn-2-bytes",
        "packet 0xa82f9b32 sent as 2 bytes (0x9b32), receiver's largest is 0xa82f30ea",
        Some(0xa82f_30ea),
        &encode(&data_header(0xa82f_9b32, PacketNumberLen::Two), &[Frame::Ping], 0),
    );
    out.vector(
        "pn-3-bytes",
        "packet 0x01000005 as 3 bytes, across a 24-bit wrap from largest 0x00fffff0",
        Some(0x00ff_fff0),
        &encode(
            &data_header(0x0100_0005, PacketNumberLen::Three),
            &[Frame::Ping],
            0,
        ),
    );
    out.vector(
        "pn-4-bytes",
        "packet 2^40+5 as 4 bytes, largest 2^40",
        Some(1 << 40),
        &encode(
            &data_header((1 << 40) + 5, PacketNumberLen::Four),
            &[Frame::Ping],
            0,
        ),
    );
    out.vector(
        "pn-1-byte-backwards",
        "a late packet: 1 byte 0xfe with largest 0x101 expands to 0xfe, not 0x1fe",
        Some(0x101),
        &encode(&data_header(0xfe, one), &[Frame::Ping], 0),
    );

    // ---- decode errors
    let ping = [0x01u8];
    let valid_ping = raw(raw_data_header(), &ping);
    out.vector("err-empty", "no bytes at all", None, &[]);
    out.vector(
        "err-truncated-header",
        "a data header cut inside the destination id",
        None,
        &valid_ping[..7],
    );
    out.vector(
        "err-truncated-trailer",
        "header only, not even room for the trailer",
        None,
        &raw_data_header()[..16],
    );
    out.vector(
        "err-truncated-frame",
        "MAX_STREAM_DATA missing its maximum",
        Some(6),
        &raw(raw_data_header(), &[0x06, 0x02]),
    );
    out.vector(
        "err-truncated-stream-data",
        "STREAM announcing 10 bytes of data and carrying 3",
        Some(6),
        &raw(raw_data_header(), &[0x10, 0x00, 0x00, 0x0a, 1, 2, 3]),
    );
    out.vector(
        "err-non-minimal-varint",
        "MAX_DATA 5 written in two bytes (0x4005)",
        Some(6),
        &raw(raw_data_header(), &[0x05, 0x40, 0x05]),
    );
    let mut corrupted = valid_ping.clone();
    corrupted[14] ^= 0x01;
    out.vector(
        "err-checksum",
        "a valid PING packet with one bit of the packet number flipped",
        Some(6),
        &corrupted,
    );
    let mut bad_trailer = valid_ping.clone();
    let last = bad_trailer.len() - 1;
    bad_trailer[last] ^= 0x80;
    out.vector(
        "err-checksum-trailer",
        "a valid PING packet with its trailer damaged",
        Some(6),
        &bad_trailer,
    );
    let mut v3 = valid_ping.clone();
    v3[1] = 0x03;
    out.vector(
        "err-unknown-version",
        "version 3, which this codec does not read",
        None,
        &seal(v3[..v3.len() - 4].to_vec()),
    );
    let mut reserved = raw_data_header();
    reserved[2] = 0x40;
    out.vector(
        "err-reserved-bits",
        "flags 0x40: a reserved bit set",
        Some(6),
        &raw(reserved, &ping),
    );
    out.vector(
        "err-unknown-frame-type",
        "frame type 0x3f",
        Some(6),
        &raw(raw_data_header(), &[0x3f]),
    );
    out.vector(
        "err-frame-not-allowed",
        "a STREAM frame in a handshake packet next to a HELLO",
        None,
        &{
            let mut payload = vec![0x10, 0x00, 0x00, 0x01, 0xaa];
            payload.extend_from_slice(&hello_payload());
            payload.resize(1200 - 24 - 4, 0);
            raw(raw_handshake_header(), &payload)
        },
    );
    out.vector(
        "err-hello-in-data-packet",
        "a HELLO in a data packet",
        Some(6),
        &{
            let mut payload = hello_payload();
            payload.resize(1200 - 16 - 4, 0);
            raw(raw_data_header(), &payload)
        },
    );
    out.vector(
        "err-handshake-frame-count",
        "a handshake packet with PING only",
        None,
        &raw(raw_handshake_header(), &[0x01]),
    );
    out.vector(
        "err-empty-packet",
        "a data packet with no frames",
        Some(6),
        &raw(raw_data_header(), &[]),
    );
    out.vector(
        "err-hello-too-short",
        "a HELLO datagram of 40 bytes, not padded to 1200",
        None,
        &raw(raw_handshake_header(), &hello_payload()),
    );
    out.vector(
        "err-ack-range-count",
        "an ACK claiming 64 more ranges (65 in all; the limit is 64)",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x02, 0x0a, 0x00, 0, 0, 0, 0, 0x40, 0x40, 0x00],
        ),
    );
    out.vector(
        "err-ack-underflow",
        "an ACK whose first range (largest 3, length 5) reaches below 0",
        Some(6),
        &raw(raw_data_header(), &[0x02, 0x03, 0x00, 0, 0, 0, 0, 0x00, 0x05]),
    );
    out.vector(
        "err-ack-gap-underflow",
        "an ACK whose second range starts below 0 (largest 5, first range 0..=... then gap 4)",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x02, 0x05, 0x00, 0, 0, 0, 0, 0x01, 0x02, 0x04, 0x00],
        ),
    );
    out.vector(
        "err-label-too-long",
        "a stream label of 129 bytes (the limit is 128)",
        Some(6),
        &{
            let mut p = vec![0x14, 0x00, 0x00, 0x40, 0x81];
            p.extend_from_slice(&[b'a'; 129]);
            p.push(0x00);
            raw(raw_data_header(), &p)
        },
    );
    out.vector(
        "err-label-not-printable",
        "a stream label with a space in it",
        Some(6),
        &raw(
            raw_data_header(),
            &[0x14, 0x00, 0x00, 0x03, b'a', b' ', b'b', 0x00],
        ),
    );
    out.vector(
        "err-open-fields-not-at-start",
        "a total length on a STREAM frame at offset 10",
        Some(6),
        &raw(raw_data_header(), &[0x12, 0x00, 0x0a, 0x20, 0x01, 0xaa]),
    );
    out.vector(
        "err-digest-not-at-start",
        "a digest on a STREAM frame at offset 10",
        Some(6),
        &raw(raw_data_header(), &{
            let mut p = vec![0x18, 0x00, 0x0a];
            p.extend_from_slice(&[0x5a; 32]);
            p.extend_from_slice(&[0x01, 0xaa]);
            p
        }),
    );
    out.vector(
        "err-total-length-mismatch",
        "a STREAM frame with fin and 2 bytes of data announcing a total length of 3",
        Some(6),
        &raw(raw_data_header(), &[0x13, 0x00, 0x00, 0x03, 0x02, 0xaa, 0xbb]),
    );
    out.vector(
        "err-stream-end",
        "STREAM data at offset 2^62-1 (the stream would end past 2^62-1)",
        Some(6),
        &raw(
            raw_data_header(),
            &[
                0x10, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xaa,
            ],
        ),
    );
    out.vector(
        "err-reason-too-long",
        "a CLOSE reason of 257 bytes (the limit is 256)",
        Some(6),
        &{
            let mut p = vec![0x0b, 0x00, 0x41, 0x01];
            p.extend_from_slice(&[b'x'; 257]);
            raw(raw_data_header(), &p)
        },
    );
    out.vector(
        "err-reason-not-utf8",
        "a CLOSE reason that is not UTF-8",
        Some(6),
        &raw(raw_data_header(), &[0x0b, 0x00, 0x02, 0xc3, 0x28]),
    );
    out.vector(
        "err-token-too-long",
        "a RETRY token of 129 bytes (the limit is 128)",
        None,
        &{
            let mut p = vec![0x23, 0x40, 0x81];
            p.extend_from_slice(&[0x11; 129]);
            raw(raw_handshake_header(), &p)
        },
    );
    out.vector(
        "err-empty-token",
        "a RETRY with an empty token",
        None,
        &raw(raw_handshake_header(), &[0x23, 0x00]),
    );
    out.vector(
        "err-invalid-version-range",
        "a REJECT whose version range is 3..=2",
        None,
        &raw(raw_handshake_header(), &[0x22, 0x01, 0x00, 0x03, 0x00, 0x02]),
    );
    out.vector(
        "err-transport-parameter-order",
        "an ACCEPT whose parameters list id 2 before id 1",
        None,
        &raw(
            raw_handshake_header(),
            &[0x21, 0x00, 0x01, 0x00, 0x06, 0x02, 0x01, 0x05, 0x01, 0x01, 0x05],
        ),
    );
    out.vector(
        "err-invalid-transport-parameter",
        "an ACCEPT announcing max_datagram_size 1000 (below 1200)",
        None,
        &raw(
            raw_handshake_header(),
            &[0x21, 0x00, 0x01, 0x00, 0x04, 0x04, 0x02, 0x43, 0xe8],
        ),
    );
    out.vector(
        "err-version-reject-empty",
        "a VERSION_REJECT listing no version",
        None,
        &{
            let mut p = vec![0x00, 0x00, 0x80];
            p.extend_from_slice(&CLIENT.0);
            p.extend_from_slice(&SERVER.0);
            p.push(0x00);
            seal(p)
        },
    );

    print!("{}", out.text);
}

/// The bytes of a minimal HELLO frame: versions 1..=1, no capability, no token, no parameter.
fn hello_payload() -> Vec<u8> {
    vec![0x20, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00]
}

fn v2_header(kind: PacketKind, number: u64, key_phase: KeyPhase) -> Header {
    Header {
        version: VERSION_2,
        key_phase,
        kind,
        dcid: match kind {
            PacketKind::Handshake { .. } => ConnectionId::UNSET,
            PacketKind::Data => SERVER,
        },
        number,
        number_len: match kind {
            PacketKind::Handshake { .. } => PacketNumberLen::One,
            PacketKind::Data => PacketNumberLen::Two,
        },
        timestamp: 2_000_000,
    }
}

/// Version 2's vectors (spec §11): its handshake frames, sealed data packets under given
/// keys (the Noise messages here are stand-in bytes: the codec carries them, the Noise
/// framework's own test vectors cover their cryptography), its errors, and key update.
fn v2_vectors() -> String {
    let mut out = Out {
        text: String::new(),
        corpus: None,
    };
    writeln!(
        out.text,
        "# weir wire format v2 test vectors. Format: spec/vectors/README.md."
    )
    .unwrap();
    writeln!(
        out.text,
        "# Generated by `cargo run -p weir-core --example gen_vectors -- --v2`; review diffs."
    )
    .unwrap();
    writeln!(out.text).unwrap();
    let hs = PacketKind::Handshake { scid: CLIENT };
    let message = |n: usize, fill: u8| Bytes::from((0..n).map(|i| fill ^ i as u8).collect::<Vec<u8>>());
    let noise_hello = |pattern, n| {
        Frame::NoiseHello(NoiseHello {
            hello: Hello {
                versions: v(1, 2),
                capabilities: Capabilities::ALL,
                token: Bytes::new(),
                params: params(),
            },
            pattern,
            ciphers: Ciphers::ALL,
            message: message(n, 0xe0),
        })
    };
    out.vector(
        "v2-noise-hello-xx",
        "a NOISE_HELLO starting XX (its message: the 32-byte ephemeral key), padded to 1200",
        None,
        &encode(
            &v2_header(hs, 0, KeyPhase::Zero),
            &[noise_hello(NoisePattern::Xx, 32)],
            1200,
        ),
    );
    out.vector(
        "v2-noise-hello-ik",
        "a NOISE_HELLO starting IK (e, es, s, ss: 96 bytes), padded to 1200",
        None,
        &encode(
            &v2_header(hs, 0, KeyPhase::Zero),
            &[noise_hello(NoisePattern::Ik, 96)],
            1200,
        ),
    );
    let mut accept = v2_header(PacketKind::Handshake { scid: SERVER }, 0, KeyPhase::Zero);
    accept.dcid = CLIENT;
    out.vector(
        "v2-noise-accept",
        "the server's NOISE_ACCEPT (XX: e, ee, s, es and the sealed terms)",
        None,
        &encode(&accept, &[Frame::NoiseAccept(message(120, 0xa0))], 0),
    );
    let mut finish = v2_header(hs, 1, KeyPhase::Zero);
    finish.dcid = SERVER;
    out.vector(
        "v2-noise-finish",
        "the client's NOISE_FINISH (XX: s, se)",
        Some(0),
        &encode(&finish, &[Frame::NoiseFinish(message(64, 0xf0))], 0),
    );
    let mut reject = v2_header(
        PacketKind::Handshake {
            scid: ConnectionId::UNSET,
        },
        0,
        KeyPhase::Zero,
    );
    reject.dcid = CLIENT;
    out.vector(
        "v2-reject-key-mismatch",
        "a stateless REJECT KEY_MISMATCH in a version 2 handshake packet",
        None,
        &encode(
            &reject,
            &[Frame::Reject(Reject {
                reason: RejectReason::KEY_MISMATCH,
                versions: v(2, 2),
            })],
            0,
        ),
    );
    // Sealed data packets under fixed keys.
    let key = |fill: u8| -> [u8; 32] { std::array::from_fn(|i| fill.wrapping_add(i as u8)) };
    let frames = [Frame::Ping, stream(0, 0, b"weir", false), Frame::MaxData(1 << 20)];
    for (name, cipher, phase, number, fill) in [
        (
            "v2-sealed-chacha20-poly1305",
            Cipher::ChaCha20Poly1305,
            KeyPhase::Zero,
            7,
            0x10,
        ),
        (
            "v2-sealed-aes-256-gcm",
            Cipher::Aes256Gcm,
            KeyPhase::One,
            0x1234,
            0x40,
        ),
    ] {
        let mut buf = vec![0u8; 1200];
        let len = weir_core::crypto::seal_with_key(
            cipher,
            key(fill),
            &v2_header(PacketKind::Data, number, phase),
            &frames,
            &mut buf,
        )
        .unwrap();
        let about = format!("PING, STREAM, MAX_DATA sealed with {cipher} (nonce: packet number {number})");
        out.vector_keyed(
            name,
            &about,
            Some(number - 1),
            Some((cipher, key(fill))),
            &buf[..len],
        );
        if cipher == Cipher::ChaCha20Poly1305 {
            let mut tampered = buf[..len].to_vec();
            tampered[4] ^= 0x01;
            out.vector_keyed(
                "v2-err-tampered-header",
                "the first vector with one bit of its destination connection id flipped: the header is associated data",
                Some(number - 1),
                Some((cipher, key(fill))),
                &tampered,
            );
            let mut tampered = buf[..len].to_vec();
            let last = tampered.len() - 1;
            tampered[last] ^= 0x80;
            out.vector_keyed(
                "v2-err-tampered-tag",
                "the first vector with its tag damaged",
                Some(number - 1),
                Some((cipher, key(fill))),
                &tampered,
            );
            out.vector_keyed(
                "v2-err-wrong-key",
                "the first vector opened with another key",
                Some(number - 1),
                Some((cipher, key(fill ^ 0x01))),
                &buf[..len],
            );
            out.vector(
                "v2-err-sealed-without-key",
                "the first vector given to a decoder without keys",
                Some(number - 1),
                &buf[..len],
            );
        }
    }
    out.vector_keyed(
        "v2-err-too-short-to-seal",
        "a version 2 data packet too short to hold a tag: unauthenticated, like a bad tag",
        Some(6),
        Some((Cipher::ChaCha20Poly1305, key(0x10))),
        &{
            let mut h = raw_data_header();
            h[1] = 0x02;
            h.extend_from_slice(&[0; 8]);
            h
        },
    );
    let mut v2_hs = raw_handshake_header();
    v2_hs[1] = 0x02;
    out.vector(
        "v2-err-ack-in-handshake",
        "an ACK in a version 2 handshake packet (only the handshake frame and PADDING may be there)",
        None,
        &raw(v2_hs.clone(), &[0x02, 0x00, 0x00, 0x00, 0x00, 0x00]),
    );
    out.vector(
        "v2-err-hello-in-v2",
        "a version 1 HELLO in a version 2 handshake packet",
        None,
        &raw(v2_hs.clone(), &hello_payload()),
    );
    let mut phase = v2_hs.clone();
    phase[2] |= 0x04;
    out.vector(
        "v2-err-key-phase-in-handshake",
        "the key phase bit set on a handshake packet",
        None,
        &raw(phase, &[0x26, 0x01, 0xff]),
    );
    out.vector(
        "v2-err-unknown-pattern",
        "a NOISE_HELLO naming pattern 3",
        None,
        &raw(
            v2_hs,
            &[0x24, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00],
        ),
    );
    // Key update: key n + 1 from key n.
    let k0 = key(0x10);
    let k1 = weir_core::crypto::next_key(k0);
    let t = &mut out.text;
    writeln!(t, "vector v2-key-update").unwrap();
    writeln!(
        t,
        "about key n + 1 = HMAC-SHA-256(key n, \"weir key update\") (spec §11.5)"
    )
    .unwrap();
    writeln!(t, "key {}", hex(&k0)).unwrap();
    writeln!(t, "next {}", hex(&k1)).unwrap();
    writeln!(t).unwrap();
    out.text
}
