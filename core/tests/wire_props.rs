//! Property tests of the wire codec (spec/protocol.md): every valid packet round-trips to
//! the same bytes and representation; arbitrary or damaged bytes give a typed error and
//! never a panic; decoded payloads share the datagram's memory.

use bytes::Bytes;
use proptest::prelude::*;
use weir_core::wire::*;
use weir_core::Delivery;

fn cid() -> impl Strategy<Value = ConnectionId> {
    any::<[u8; 8]>().prop_map(ConnectionId)
}

fn varint() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..64u64,
        64..16_384u64,
        16_384..(1u64 << 30),
        (1u64 << 30)..=varint::MAX
    ]
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    varint().prop_map(StreamId)
}

fn ack() -> impl Strategy<Value = Ack> {
    // Build ranges downwards from `largest` out of (gap, length) pairs that stay above 0.
    (
        0u64..1 << 40,
        prop::collection::vec((0u64..1000, 0u64..1000), 0..MAX_ACK_RANGES),
        varint(),
        any::<u32>(),
    )
        .prop_map(|(largest, steps, ack_delay, one_way_delay)| {
            let mut ranges = Vec::new();
            let first_len = largest.min(500);
            ranges.push(AckRange {
                smallest: largest - first_len,
                largest,
            });
            let mut smallest = largest - first_len;
            for (gap, len) in steps {
                let Some(hi) = smallest.checked_sub(gap + 2) else {
                    break;
                };
                let lo = hi.saturating_sub(len);
                ranges.push(AckRange {
                    smallest: lo,
                    largest: hi,
                });
                smallest = lo;
            }
            Ack {
                ranges: AckRanges::new(ranges).expect("valid ranges"),
                ack_delay,
                one_way_delay,
            }
        })
}

fn label() -> impl Strategy<Value = Label> {
    "[!-~]{1,128}".prop_map(|s| Label::new(Bytes::from(s)).expect("printable ASCII label"))
}

fn stream_frame() -> impl Strategy<Value = StreamFrame> {
    (
        stream_id(),
        any::<bool>(),
        varint(),
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_flat_map(|(id, at_start, offset, data, fin)| {
            let data = Bytes::from(data);
            let len = data.len() as u64;
            let offset = if at_start {
                0
            } else {
                offset.min(varint::MAX - len)
            };
            let total = if at_start && fin {
                Just(Some(len)).boxed()
            } else if at_start {
                prop::option::of(len..=varint::MAX).boxed()
            } else {
                Just(None).boxed()
            };
            let label = if at_start {
                prop::option::of(label()).boxed()
            } else {
                Just(None).boxed()
            };
            let digest = if at_start {
                prop::option::of(any::<[u8; 32]>().prop_map(Digest::from_bytes)).boxed()
            } else {
                Just(None).boxed()
            };
            (total, label, digest).prop_map(move |(total_len, label, digest)| StreamFrame {
                id,
                offset,
                data: data.clone(),
                fin,
                total_len,
                label,
                digest: digest.map(Box::new),
            })
        })
}

fn params() -> impl Strategy<Value = TransportParams> {
    (
        prop::option::of(varint()),
        prop::option::of(varint()),
        prop::option::of(varint()),
        prop::option::of(1200u16..=65_527),
        prop::option::of(varint()),
        prop::option::of(0..=MAX_ACK_DELAY_MS),
        prop::option::of(varint()),
        prop::option::of((9u64..1000, prop::collection::vec(any::<u8>(), 0..20))),
        prop::option::of(any::<[u8; 16]>()),
    )
        .prop_map(|(a, b, c, d, e, f, g, unknown, token)| TransportParams {
            max_data: a,
            max_stream_data: b,
            max_streams: c,
            max_datagram_size: d,
            idle_timeout_ms: e,
            max_ack_delay_ms: f,
            max_message_len: g,
            stateless_reset_token: token,
            unknown: unknown.map_or_else(Bytes::new, |(id, value)| {
                let mut raw = [0u8; 8];
                let n = varint::encode(id, &mut raw).unwrap();
                let mut v = raw[..n].to_vec();
                v.push(value.len() as u8);
                v.extend_from_slice(&value);
                Bytes::from(v)
            }),
        })
}

fn versions() -> impl Strategy<Value = VersionRange> {
    (1u16..=u16::MAX)
        .prop_flat_map(|min| (Just(min), min..=u16::MAX))
        .prop_map(|(min, max)| VersionRange::new(min, max).unwrap())
}

fn reason() -> impl Strategy<Value = Reason> {
    "\\PC{0,60}".prop_filter_map("reason fits", |s| Reason::new(Bytes::from(s)).ok())
}

fn data_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (1usize..40).prop_map(Frame::Padding),
        Just(Frame::Ping),
        ack().prop_map(Frame::Ack),
        (stream_id(), varint(), varint()).prop_map(|(id, code, final_size)| Frame::ResetStream {
            id,
            code,
            final_size
        }),
        (stream_id(), varint()).prop_map(|(id, code)| Frame::StopSending { id, code }),
        (stream_id(), varint()).prop_map(|(id, relays)| Frame::Receipt {
            id,
            delivery: Delivery::Delivered { relays }
        }),
        (stream_id(), varint(), varint()).prop_map(|(id, code, relays)| Frame::Receipt {
            id,
            delivery: Delivery::Failed { code, relays }
        }),
        // At most 63 streams a run: a packet's seven frames stay within MAX_RECEIPT_RUN.
        (0..1u64 << 61, varint(), varint()).prop_map(|(first, also, relays)| Frame::ReceiptRun(ReceiptRun {
            first: StreamId(first),
            also,
            relays
        })),
        varint().prop_map(Frame::MaxData),
        (stream_id(), varint()).prop_map(|(id, max)| Frame::MaxStreamData { id, max }),
        varint().prop_map(Frame::MaxStreams),
        varint().prop_map(Frame::DataBlocked),
        (stream_id(), varint()).prop_map(|(id, limit)| Frame::StreamDataBlocked { id, limit }),
        varint().prop_map(Frame::StreamsBlocked),
        (varint(), any::<bool>(), reason()).prop_map(|(code, app, reason)| Frame::Close(Close {
            code: if app {
                CloseCode::Application(code)
            } else {
                CloseCode::Transport(TransportErrorCode(code))
            },
            reason,
        })),
        stream_frame().prop_map(Frame::Stream),
    ]
}

fn handshake_frame() -> impl Strategy<Value = Frame> {
    let token = prop::collection::vec(any::<u8>(), 0..=MAX_TOKEN_LEN).prop_map(Bytes::from);
    prop_oneof![
        (versions(), any::<u64>(), token.clone(), params()).prop_map(|(versions, caps, token, params)| {
            Frame::Hello(Box::new(Hello {
                versions,
                capabilities: Capabilities::from_bits(caps),
                token,
                params,
            }))
        }),
        (1u16.., any::<u64>(), params()).prop_map(|(version, caps, params)| Frame::Accept(Box::new(
            Accept {
                version,
                capabilities: Capabilities::from_bits(caps),
                params
            }
        ))),
        (varint(), versions()).prop_map(|(r, versions)| Frame::Reject(Reject {
            reason: RejectReason(r),
            versions
        })),
        token
            .prop_filter("RETRY token is not empty", |t| !t.is_empty())
            .prop_map(|token| Frame::Retry(Retry { token })),
    ]
}

fn header(handshake: bool) -> impl Strategy<Value = Header> {
    (cid(), cid(), 0..=MAX_PACKET_NUMBER, any::<u32>(), 0usize..4).prop_map(
        move |(dcid, scid, number, timestamp, l)| Header {
            version: VERSION_1,
            key_phase: KeyPhase::Zero,
            kind: if handshake {
                PacketKind::Handshake { scid }
            } else {
                PacketKind::Data
            },
            dcid,
            number,
            number_len: [
                PacketNumberLen::One,
                PacketNumberLen::Two,
                PacketNumberLen::Three,
                PacketNumberLen::Four,
            ][l],
            timestamp,
        },
    )
}

/// No two PADDING frames in a row: the decoder joins such runs.
fn canonical(frames: Vec<Frame>) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::with_capacity(frames.len());
    for f in frames {
        match (out.last_mut(), &f) {
            (Some(Frame::Padding(a)), Frame::Padding(b)) => *a += b,
            _ => out.push(f),
        }
    }
    out
}

/// A valid packet: header and frames, as the spec allows them together.
fn packet() -> impl Strategy<Value = (Header, Vec<Frame>)> {
    let data = (header(false), prop::collection::vec(data_frame(), 1..8));
    let control = prop_oneof![
        Just(Frame::Ping),
        ack().prop_map(Frame::Ack),
        (1usize..10).prop_map(Frame::Padding)
    ];
    let handshake = (
        header(true),
        handshake_frame(),
        prop::collection::vec(control, 0..3),
        any::<bool>(),
    )
        .prop_map(|(h, hs, mut rest, first)| {
            if first {
                rest.insert(0, hs);
            } else {
                rest.push(hs);
            }
            (h, rest)
        });
    prop_oneof![data, handshake].prop_map(|(h, frames)| {
        let frames = padded(&h, &frames);
        (h, frames)
    })
}

/// Pads a packet carrying HELLO to the minimum datagram size (spec/protocol.md §3.7),
/// returning the frames as they go on the wire.
fn padded(header: &Header, frames: &[Frame]) -> Vec<Frame> {
    let mut frames = frames.to_vec();
    if frames.iter().any(|f| matches!(f, Frame::Hello(_))) {
        let len: usize = header.encoded_len()
            + TRAILER_LEN
            + frames.iter().map(|f| f.encoded_len().unwrap()).sum::<usize>();
        if len < MIN_DATAGRAM_SIZE {
            frames.push(Frame::Padding(MIN_DATAGRAM_SIZE - len));
        }
    }
    canonical(frames)
}

/// Encodes a packet with [`PacketWriter`].
fn encode(header: &Header, frames: &[Frame]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut w = PacketWriter::new(&mut buf, header).expect("header fits");
    for f in frames {
        w.push(f).expect("frame fits");
    }
    let len = w.finish().expect("valid packet");
    buf.truncate(len);
    buf
}

fn frames_of(p: &Packet) -> Vec<Frame> {
    p.frames().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_packet_round_trips((header, frames) in packet()) {
        let bytes = encode(&header, &frames);
        let largest = header.number.checked_sub(1);
        let decoded = Packet::decode(Bytes::from(bytes.clone()), largest).expect("decodes");
        prop_assert_eq!(decoded.header, header);
        let got = frames_of(&decoded);
        prop_assert_eq!(&got, &frames);
        // Re-encoding the decoded form gives the same bytes.
        let mut again = vec![0u8; MAX_DATAGRAM_SIZE];
        let len = encode_packet(&decoded.header, &got, &mut again).unwrap();
        prop_assert_eq!(&again[..len], &bytes[..]);
        // The exact size function agrees with what was written.
        let header_len = header.encoded_len();
        let frames_len: usize = got.iter().map(|f| f.encoded_len().unwrap()).sum();
        prop_assert_eq!(header_len + frames_len + TRAILER_LEN, bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500), largest in prop::option::of(0..=MAX_PACKET_NUMBER)) {
        let _ = decode(Bytes::from(bytes.clone()), largest);
        let _ = Invariant::parse(&bytes);
        let _ = read_relay_header(&bytes);
        let mut resealed = bytes.clone();
        let _ = reseal(&mut resealed, largest);
    }

    #[test]
    fn arbitrary_frames_behind_a_valid_header_and_trailer_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..300),
        handshake in any::<bool>(),
    ) {
        // A correct trailer over random frames reaches the frame parser, not the CRC check.
        let mut bytes = vec![0x00, 0x01, if handshake { 0x80 } else { 0x00 }];
        bytes.extend_from_slice(&[7; 8]);
        if handshake { bytes.extend_from_slice(&[9; 8]); }
        bytes.extend_from_slice(&[0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&body);
        let crc = trailer(0, &bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        if let Ok(p) = Packet::decode(Bytes::from(bytes.clone()), None) {
            // What decodes re-encodes identically.
            let mut again = vec![0u8; MAX_DATAGRAM_SIZE];
            let len = encode_packet(&p.header, &frames_of(&p), &mut again).unwrap();
            prop_assert_eq!(&again[..len], &bytes[..]);
        }
    }

    #[test]
    fn corruption_is_detected((header, frames) in packet(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = encode(&header, &frames);
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        // A changed version reads as another version, unknown or (1 -> 2) one whose packets
        // end in a 16-byte tag, so a short one reads as truncated; changed flags can also
        // make the header longer than the datagram; every other change fails the CRC-32.
        match Packet::decode(Bytes::from(bytes), None) {
            Err(DecodeError::ChecksumMismatch { .. }) => {}
            Err(DecodeError::UnknownVersion(_)) => prop_assert!(i < 2),
            // Version 1 -> 2 (byte 1 flipped by 3): a version 2 data packet is sealed, which
            // `Packet::decode` leaves to the connection's keys.
            Err(DecodeError::Sealed) => prop_assert!(i == 1),
            Err(DecodeError::Truncated(_)) => prop_assert!(i <= 2),
            other => prop_assert!(false, "corruption at byte {} not detected: {:?}", i, other),
        }
    }

    #[test]
    fn truncation_is_detected((header, frames) in packet(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&header, &frames);
        let keep = cut.index(bytes.len());
        prop_assert!(Packet::decode(Bytes::copy_from_slice(&bytes[..keep]), None).is_err());
    }

    #[test]
    fn packet_numbers_expand_back(largest in 0u64..1 << 50, ahead in 1u64..1 << 20, acked_back in 0u64..1 << 10) {
        // The sender's view: `largest_acked` trails what the receiver has seen.
        let number = largest + ahead;
        let largest_acked = largest.checked_sub(acked_back);
        let len = PacketNumberLen::for_packet(number, largest_acked);
        let window_bits = 8 * len.bytes() as u32;
        let truncated = number & ((1u64 << window_bits) - 1);
        // Any receiver whose largest is between the sender's largest-acked and the packet.
        let receiver_largest = largest_acked.map_or(largest, |a| a.max(largest));
        prop_assert_eq!(expand_packet_number(truncated, len, Some(receiver_largest)), number);
    }
}

/// The trailer of spec/protocol.md §3.5, computed independently of the codec: CRC-32 over
/// the full packet number (8 bytes, big-endian) and the content.
fn trailer(number: u64, content: &[u8]) -> u32 {
    let mut all = number.to_be_bytes().to_vec();
    all.extend_from_slice(content);
    crc32(&all)
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32/ISO-HDLC, written from the spec's parameters (§3.5) rather than with the
    // library the codec uses, so that the two check each other.
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc_parameters_match_the_check_value() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn decoded_payloads_share_the_datagrams_memory() {
    let header = Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Data,
        dcid: ConnectionId::from_u64(1),
        number: 3,
        number_len: PacketNumberLen::One,
        timestamp: 0,
    };
    let data = Bytes::from(vec![0xab; 1000]);
    let frames = [Frame::Stream(StreamFrame {
        id: StreamId(0),
        offset: 0,
        data,
        fin: false,
        total_len: Some(5000),
        label: Some(Label::from_static("/eth/68").unwrap()),
        digest: None,
    })];
    let datagram = Bytes::from(encode(&header, &frames));
    let range = datagram.as_ptr() as usize..datagram.as_ptr() as usize + datagram.len();
    let packet = Packet::decode(datagram.clone(), None).unwrap();
    let Some(Frame::Stream(s)) = packet.frames().next() else {
        panic!("a STREAM frame")
    };
    assert_eq!(s.data.len(), 1000);
    assert!(
        range.contains(&(s.data.as_ptr() as usize)),
        "stream data is a slice of the datagram"
    );
    assert!(range.contains(&(s.data.as_ptr() as usize + 999)));
    let label = s.label.unwrap();
    assert!(
        range.contains(&(label.as_bytes().as_ptr() as usize)),
        "label is a slice of the datagram"
    );
}

#[test]
fn datagrams_larger_than_a_udp_payload_are_refused() {
    let mut bytes = vec![0x00, 0x01, 0x00];
    bytes.extend_from_slice(&[7; 8]);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0x01]);
    bytes.resize(MAX_DATAGRAM_SIZE + 1 - TRAILER_LEN, 0);
    let crc = trailer(0, &bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    let err = Packet::decode(Bytes::from(bytes.clone()), None).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Violation(Violation::LimitExceeded {
            limit: Limit::DatagramSize,
            value: MAX_DATAGRAM_SIZE as u64 + 1,
            max: MAX_DATAGRAM_SIZE as u64
        })
    );
    // One byte less is a valid PING packet with padding.
    bytes.truncate(MAX_DATAGRAM_SIZE - TRAILER_LEN);
    let crc = trailer(0, &bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    let p = Packet::decode(Bytes::from(bytes), None).unwrap();
    assert_eq!(p.frames().count(), 2);
}

fn data_header() -> Header {
    Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Data,
        dcid: ConnectionId::from_u64(9),
        number: 1,
        number_len: PacketNumberLen::One,
        timestamp: 0,
    }
}

#[test]
fn the_writer_refuses_what_the_decoder_would() {
    let mut buf = [0u8; MIN_DATAGRAM_SIZE];
    // An empty packet, also when the only frame is zero bytes of padding.
    let mut w = PacketWriter::new(&mut buf, &data_header()).unwrap();
    w.push(&Frame::Padding(0)).unwrap();
    assert_eq!(w.finish(), Err(EncodeError::Violation(Violation::EmptyPacket)));
    // A handshake frame in a data packet.
    let mut w = PacketWriter::new(&mut buf, &data_header()).unwrap();
    let retry = Frame::Retry(Retry {
        token: Bytes::from_static(b"t"),
    });
    assert_eq!(
        w.push(&retry),
        Err(EncodeError::Violation(Violation::FrameNotAllowed {
            frame_type: frame_types::RETRY,
            packet: PacketType::Data
        }))
    );
    // A HELLO not padded to 1200 bytes.
    let handshake = Header {
        version: VERSION_1,
        key_phase: KeyPhase::Zero,
        kind: PacketKind::Handshake {
            scid: ConnectionId::from_u64(1),
        },
        ..data_header()
    };
    let mut w = PacketWriter::new(&mut buf, &handshake).unwrap();
    w.push(&Frame::Hello(Box::new(Hello {
        versions: VersionRange::single(1).unwrap(),
        capabilities: Capabilities::NONE,
        token: Bytes::new(),
        params: TransportParams::default(),
    })))
    .unwrap();
    assert!(matches!(
        w.finish(),
        Err(EncodeError::Violation(Violation::HelloTooShort { .. }))
    ));
}

#[test]
fn a_frame_that_does_not_fit_leaves_the_datagram_as_it_was() {
    let mut buf = [0u8; 64];
    let mut w = PacketWriter::new(&mut buf, &data_header()).unwrap();
    w.push(&Frame::Ping).unwrap();
    let room = w.remaining();
    let big = Frame::Stream(StreamFrame {
        id: StreamId(0),
        offset: 0,
        data: Bytes::from(vec![1u8; 100]),
        fin: false,
        total_len: None,
        label: None,
        digest: None,
    });
    assert!(matches!(w.push(&big), Err(EncodeError::BufferTooSmall { available, .. }) if available == room));
    assert_eq!(w.remaining(), room);
    let len = w.finish().unwrap();
    let p = Packet::decode(Bytes::copy_from_slice(&buf[..len]), Some(0)).unwrap();
    assert_eq!(p.frames().collect::<Vec<_>>(), vec![Frame::Ping]);
}

#[test]
fn pad_to_gives_the_exact_datagram_size() {
    let mut buf = [0u8; MIN_DATAGRAM_SIZE];
    let mut w = PacketWriter::new(&mut buf, &data_header()).unwrap();
    w.push(&Frame::Ping).unwrap();
    w.pad_to(MIN_DATAGRAM_SIZE).unwrap();
    assert_eq!(w.remaining(), 0);
    assert_eq!(w.finish().unwrap(), MIN_DATAGRAM_SIZE);
    // A buffer too small for the header and trailer is refused up front.
    assert!(matches!(
        PacketWriter::new(&mut buf[..10], &data_header()),
        Err(EncodeError::BufferTooSmall {
            needed: 20,
            available: 10
        })
    ));
}

#[test]
fn the_invariant_header_routes_any_version() {
    // A datagram of a future version: only the invariant part is read.
    let mut bytes = vec![0x00, 0x07, 0x80];
    bytes.extend_from_slice(&[1; 8]);
    bytes.extend_from_slice(&[2; 8]);
    bytes.extend_from_slice(b"whatever version 7 puts here");
    let inv = Invariant::parse(&bytes).unwrap();
    assert_eq!(inv.version, 7);
    assert_eq!(inv.dcid, ConnectionId([1; 8]));
    assert_eq!(inv.scid, Some(ConnectionId([2; 8])));
    assert_eq!(inv.len(), 19);
    assert_eq!(
        decode(Bytes::from(bytes), None),
        Err(DecodeError::UnknownVersion(7))
    );
    assert_eq!(
        Invariant::parse(&[0, 1, 0x80, 1, 2]),
        Err(DecodeError::Truncated(Field::DestinationCid))
    );
}

/// The `arbitrary` impls give headers the codec accepts, so structure-aware fuzz targets
/// built on them reach past the header.
#[cfg(feature = "arbitrary")]
#[test]
fn arbitrary_headers_are_encodable() {
    use arbitrary::{Arbitrary, Unstructured};
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut u = Unstructured::new(&noise);
    let mut seen_handshake = false;
    for _ in 0..100 {
        let header = Header::arbitrary(&mut u).unwrap();
        seen_handshake |= header.packet_type() == PacketType::Handshake;
        let frames: &[Frame] = match header.kind {
            PacketKind::Data => &[Frame::Ping],
            PacketKind::Handshake { .. } => &[Frame::Retry(Retry {
                token: Bytes::from_static(b"x"),
            })],
        };
        let mut buf = [0u8; 64];
        let len = encode_packet(&header, frames, &mut buf).unwrap();
        // Expansion needs a context in the packet's window: the packet itself minus one.
        let p = Packet::decode(Bytes::copy_from_slice(&buf[..len]), header.number.checked_sub(1)).unwrap();
        assert_eq!(p.header, header);
    }
    assert!(seen_handshake);
}

/// Found by `corruption_is_detected`: version 1 with its low byte flipped by 3 reads as
/// version 2, whose data packets are sealed; the decoder must say so, not hand out frames.
#[test]
fn a_version_flipped_to_2_reads_as_sealed() {
    let header = Header {
        version: 1,
        kind: PacketKind::Data,
        dcid: ConnectionId([0; 8]),
        number: 0,
        number_len: PacketNumberLen::One,
        timestamp: 0,
        key_phase: KeyPhase::Zero,
    };
    let mut bytes = encode(&header, &[Frame::Padding(40)]);
    bytes[1] ^= 3;
    let decoded = Packet::decode(Bytes::from(bytes), None);
    assert!(matches!(decoded, Err(DecodeError::Sealed)), "{decoded:?}");
}
