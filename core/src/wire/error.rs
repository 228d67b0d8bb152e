//! Typed errors of the codec.
//!
//! [`DecodeError`] says why bytes from the network are not a weir datagram; [`EncodeError`]
//! says why a representation could not be written. Both share [`Violation`]: a rule of
//! spec/protocol.md that the datagram breaks, whichever side caught it. The encoder refuses
//! exactly what the decoder refuses, so anything weir writes, weir reads back.

use core::fmt;

use super::PacketType;

/// The field being read or written when a codec error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the field of spec/protocol.md it names
pub enum Field {
    Version,
    Flags,
    DestinationCid,
    SourceCid,
    PacketNumber,
    Timestamp,
    Trailer,
    FrameType,
    StreamId,
    Offset,
    Length,
    TotalLength,
    Label,
    Digest,
    StreamData,
    AckLargest,
    AckDelay,
    AckOneWayDelay,
    AckRangeCount,
    AckRange,
    ErrorCode,
    Relays,
    RunBits,
    FinalSize,
    Maximum,
    Reason,
    VersionRange,
    Capabilities,
    Token,
    TransportParameters,
    RejectReason,
    VersionCount,
    NoisePattern,
    Ciphers,
    NoiseMessage,
    Tag,
    Sequence,
    Address,
    Request,
    Circuit,
    PeerKey,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Field::Version => "version",
            Field::Flags => "flags",
            Field::DestinationCid => "destination connection id",
            Field::SourceCid => "source connection id",
            Field::PacketNumber => "packet number",
            Field::Timestamp => "timestamp",
            Field::Trailer => "checksum trailer",
            Field::FrameType => "frame type",
            Field::StreamId => "stream id",
            Field::Offset => "offset",
            Field::Length => "length",
            Field::TotalLength => "total length",
            Field::Label => "label",
            Field::Digest => "digest",
            Field::StreamData => "stream data",
            Field::AckLargest => "largest acknowledged",
            Field::AckDelay => "ack delay",
            Field::AckOneWayDelay => "one-way delay",
            Field::AckRangeCount => "ack range count",
            Field::AckRange => "ack range",
            Field::ErrorCode => "error code",
            Field::Relays => "relays",
            Field::RunBits => "receipt run bits",
            Field::FinalSize => "final size",
            Field::Maximum => "maximum",
            Field::Reason => "reason",
            Field::VersionRange => "version range",
            Field::Capabilities => "capabilities",
            Field::Token => "token",
            Field::TransportParameters => "transport parameters",
            Field::RejectReason => "reject reason",
            Field::VersionCount => "version count",
            Field::NoisePattern => "noise pattern",
            Field::Ciphers => "ciphers",
            Field::NoiseMessage => "noise message",
            Field::Tag => "authentication tag",
            Field::Sequence => "sequence number",
            Field::Address => "address",
            Field::Request => "request",
            Field::Circuit => "circuit id",
            Field::PeerKey => "peer key",
        };
        f.write_str(name)
    }
}

/// A bound of spec/protocol.md §5 that a value exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Datagram size: at most [`MAX_DATAGRAM_SIZE`](super::MAX_DATAGRAM_SIZE) bytes.
    DatagramSize,
    /// Ranges in one ACK frame: at most [`MAX_ACK_RANGES`](super::MAX_ACK_RANGES).
    AckRanges,
    /// Stream label length: at most [`MAX_LABEL_LEN`](super::MAX_LABEL_LEN) bytes.
    LabelLength,
    /// Address-validation token length: at most [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN).
    TokenLength,
    /// CLOSE reason length: at most [`MAX_REASON_LEN`](super::MAX_REASON_LEN) bytes.
    ReasonLength,
    /// The end of stream data (offset + length) and stream sizes: at most 2^62 - 1.
    StreamEnd,
    /// Version ranges in a VERSION_REJECT: at most [`MAX_VERSION_RANGES`](super::MAX_VERSION_RANGES).
    VersionRanges,
    /// A varint field: at most 2^62 - 1.
    Varint,
    /// A Noise handshake message: at most [`MAX_NOISE_MESSAGE_LEN`](super::MAX_NOISE_MESSAGE_LEN) bytes.
    NoiseMessageLength,
    /// Candidate addresses in one PUNCH_CANDIDATES: at most
    /// [`MAX_CANDIDATES`](super::MAX_CANDIDATES).
    Candidates,
    /// Streams the RECEIPT_RUN frames of one packet answer for: at most
    /// [`MAX_RECEIPT_RUN`](super::MAX_RECEIPT_RUN); and a run's last stream id: at most
    /// 2^62 - 1.
    ReceiptRun,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Limit::DatagramSize => "datagram size",
            Limit::AckRanges => "ack ranges per frame",
            Limit::LabelLength => "label length",
            Limit::TokenLength => "token length",
            Limit::ReasonLength => "reason length",
            Limit::StreamEnd => "stream end",
            Limit::VersionRanges => "version ranges",
            Limit::Varint => "varint value",
            Limit::NoiseMessageLength => "noise message length",
            Limit::Candidates => "candidate addresses",
            Limit::ReceiptRun => "receipts in runs per packet",
        };
        f.write_str(name)
    }
}

/// A rule of spec/protocol.md that a datagram breaks. Caught by the decoder on input and
/// by the encoder before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A value is larger than the protocol allows.
    #[error("{limit} limit exceeded: {value} > {max}")]
    LimitExceeded {
        /// Which bound.
        limit: Limit,
        /// The value found.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The frame type may not appear in this packet type (§4, table of frames).
    #[error("frame type {frame_type:#04x} is not allowed in a {packet} packet")]
    FrameNotAllowed {
        /// The frame's type.
        frame_type: u64,
        /// The packet it was found in.
        packet: PacketType,
    },
    /// A handshake packet carries no handshake frame, or more than one.
    #[error("a handshake packet carries exactly one of HELLO, ACCEPT, REJECT, RETRY; found {found}")]
    HandshakeFrameCount {
        /// How many were found.
        found: u8,
    },
    /// A packet with no frame at all.
    #[error("packet carries no frames")]
    EmptyPacket,
    /// A HELLO in a datagram shorter than the minimum datagram size (§4.13).
    #[error("HELLO datagram of {len} bytes is shorter than the {min}-byte minimum")]
    HelloTooShort {
        /// The datagram's length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// An ACK range reaches below packet number 0, or a range is empty (§4.3).
    #[error("ACK ranges reach below packet number 0")]
    InvalidAckRange,
    /// Total length or label on a STREAM frame whose offset is not 0 (§4.12).
    #[error("stream open fields on a frame at offset {offset}")]
    OpenFieldsNotAtStart {
        /// The frame's offset.
        offset: u64,
    },
    /// A STREAM frame whose data ends past the total length it announces, or that ends
    /// the stream short of it (§4.12).
    #[error("stream data ends at {end}, total length is {total}")]
    TotalLengthMismatch {
        /// The announced total length.
        total: u64,
        /// Where the frame's data ends.
        end: u64,
    },
    /// A stream label with a byte outside printable ASCII, or empty (§4.12).
    #[error("stream label is empty or not printable ASCII")]
    InvalidLabel,
    /// A CLOSE reason that is not UTF-8 (§4.11).
    #[error("close reason is not UTF-8")]
    InvalidReason,
    /// A version range whose minimum is above its maximum, or that includes version 0.
    #[error("version range {min}..={max} is invalid")]
    InvalidVersionRange {
        /// Lower end.
        min: u16,
        /// Upper end.
        max: u16,
    },
    /// A transport parameter id not above the previous one (§4.14: ids strictly ascend).
    #[error("transport parameter {id:#x} is out of order or repeated")]
    TransportParameterOrder {
        /// The offending id.
        id: u64,
    },
    /// A known transport parameter whose value is malformed or out of range (§4.14).
    #[error("transport parameter {id:#x} is malformed or out of range")]
    InvalidTransportParameter {
        /// The offending id.
        id: u64,
    },
    /// An empty RETRY token (§4.16).
    #[error("RETRY carries an empty token")]
    EmptyToken,
    /// A NOISE_HELLO naming a handshake pattern version 2 does not define (§11.2).
    #[error("unknown noise pattern {0}")]
    UnknownNoisePattern(u64),
    /// A cipher choice that is not exactly one cipher both sides offered (§11.3).
    #[error("invalid cipher choice {0:#x}")]
    InvalidCipher(u64),
    /// A key phase on a packet that has none: version 1, or a handshake packet (§11.4).
    #[error("key phase set on a packet that has none")]
    KeyPhaseNotAllowed,
    /// An address whose family byte is neither 4 nor 6 (§4.18).
    #[error("unknown address family {0}")]
    InvalidAddressFamily(u8),
}

/// Why a datagram could not be decoded. The datagram is to be dropped and counted
/// (spec/protocol.md §6 says when the sender's connection is also closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram ended inside a field.
    #[error("datagram truncated in {0}")]
    Truncated(Field),
    /// A varint not in its shortest form (§2.1).
    #[error("varint for {0} is not in its shortest form")]
    NonMinimalVarint(Field),
    /// The checksum trailer does not match the content (§3.5): the datagram was corrupted.
    #[error("checksum mismatch: trailer {carried:#010x}, content {computed:#010x}")]
    ChecksumMismatch {
        /// The CRC-32 the datagram carries.
        carried: u32,
        /// The CRC-32 of what it carries.
        computed: u32,
    },
    /// A version this codec does not read (§3.1); version 0 is read by [`super::decode`].
    #[error("unknown version {0:#06x}")]
    UnknownVersion(u16),
    /// Header bits reserved in this version are set (§3.2).
    #[error("reserved header bits set in flags {0:#04x}")]
    ReservedBits(u8),
    /// A frame type this version does not define (§4).
    #[error("unknown frame type {0:#x}")]
    UnknownFrameType(u64),
    /// A protocol rule is broken.
    #[error(transparent)]
    Violation(#[from] Violation),
    /// Bytes follow the last field of a structure that must fill its space exactly.
    #[error("bytes follow the {0}")]
    TrailingBytes(Field),
    /// A version 2 data packet given to a decoder without its connection's keys: only
    /// [`Packet::open`](super::Packet::open) reads it (§11.4).
    #[error("sealed packet: only its connection's keys open it")]
    Sealed,
    /// A sealed packet whose AEAD tag does not verify under the key its key phase names
    /// (§11.4): forged, altered, or not for this connection. Dropped and counted, never
    /// answered.
    #[error("authentication failed")]
    AuthenticationFailed,
}

/// Why a representation could not be encoded. Nothing in the caller's buffer is to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer is too small for what was asked.
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall {
        /// Bytes the write needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The representation breaks a protocol rule.
    #[error(transparent)]
    Violation(#[from] Violation),
    /// A sealed packet (version 2 data) finished without a seal, or another sealed: use
    /// [`PacketWriter::finish_sealed`](super::PacketWriter::finish_sealed) for the first,
    /// [`PacketWriter::finish`](super::PacketWriter::finish) for the second.
    #[error("wrong finish for this packet: sealed packets take finish_sealed, others finish")]
    WrongFinish,
    /// The seal could not be made (the key may seal no more).
    #[error("the packet could not be sealed")]
    SealFailed,
}
