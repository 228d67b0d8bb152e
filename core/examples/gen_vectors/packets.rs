//! Version 1's valid packets: handshake packets, data packets with one frame type each,
//! and packet numbers in their truncated encodings (RFC 9000 A.3).

use super::*;

/// Handshake packets: HELLO, ACCEPT, the version reject.
pub(super) fn handshake_packets(out: &mut Out) {
    let hello = Frame::Hello(Box::new(Hello {
        versions: v(1, 1),
        capabilities: Capabilities::ALL,
        token: Bytes::new(),
        params: params(),
    }));
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
    let hello_token = Frame::Hello(Box::new(Hello {
        versions: v(1, 3),
        capabilities: Capabilities::STREAMING,
        token: Bytes::from_static(&[0x70, 0x6b, 0x1e, 0x9a, 0x44, 0x02, 0x13, 0x37]),
        params: TransportParams {
            max_data: Some(65_536),
            unknown: Bytes::from_static(&[0x40, 0x80, 0x02, 0xbe, 0xef]),
            ..TransportParams::default()
        },
    }));
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
    let accept = Frame::Accept(Box::new(Accept {
        version: 1,
        capabilities: Capabilities::STREAMING,
        // A server's ACCEPT carries its stateless reset token (spec §6.1).
        params: TransportParams {
            stateless_reset_token: Some([0x5a; 16]),
            ..params()
        },
    }));
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
}

/// Data packets, one frame type each.
pub(super) fn data_packets(out: &mut Out) {
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
                digest: Some(Box::new(Digest::of(b"hello"))),
            }),
        ),
        (
            "datagram",
            "DATAGRAM (capability DATAGRAMS): an unreliable datagram of the 4 bytes \"ping\"",
            Frame::Datagram(Bytes::from_static(b"ping")),
        ),
        (
            "receipt-run",
            "RECEIPT_RUN (capability RECEIPT_RUNS) of streams 4, 6, 8 and 12: all delivered, by the final receiver",
            Frame::ReceiptRun(ReceiptRun {
                first: StreamId(4),
                also: 0b1011,
                relays: 0,
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
}

/// Packet numbers: truncated encodings and their expansion (RFC 9000 A.3).
pub(super) fn packet_numbers(out: &mut Out) {
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
        &encode(&data_header(0xfe, PacketNumberLen::One), &[Frame::Ping], 0),
    );
}
