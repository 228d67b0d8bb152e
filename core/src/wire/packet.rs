//! Datagrams: the invariant header, the version 1 packet, and VERSION_REJECT
//! (spec/protocol.md §3).
//!
//! Decoding checks the whole datagram before handing anything out: the integrity trailer,
//! the header, and every frame; a [`Packet`] that exists is valid, and iterating its frames
//! cannot fail. Encoding goes through [`PacketWriter`], which writes the header into a
//! caller-supplied buffer, takes frames while they fit, and seals the datagram with its
//! trailer.

use core::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::cursor::{Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::frame::Frame;
use super::ids::{ConnectionId, PacketType};
use super::params::VersionRange;
use super::{MAX_DATAGRAM_SIZE, MAX_VERSION_RANGES, MIN_DATAGRAM_SIZE, TRAILER_LEN, VERSION_1};

/// Flags bit (byte 2, every version): the header carries a source connection id.
pub const FLAG_LONG: u8 = 0x80;
/// Flags bits reserved in version 1: zero on send, a decode error on receipt.
const V1_RESERVED: u8 = 0x7c;
/// Flags bits holding the packet number length minus one.
const V1_PN_LEN: u8 = 0x03;

/// The version-independent start of every datagram (spec/protocol.md §3.1): enough to
/// route it to a connection and to tell which version wrote it, whatever that version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invariant {
    /// The wire version; 0 is VERSION_REJECT.
    pub version: u16,
    /// The receiver's connection id.
    pub dcid: ConnectionId,
    /// The sender's connection id, on long-header datagrams only.
    pub scid: Option<ConnectionId>,
}

impl Invariant {
    /// Reads the invariant header of `datagram` (which may be of any version).
    pub fn parse(datagram: &[u8]) -> Result<Invariant, DecodeError> {
        let field =
            |range: core::ops::Range<usize>, field| datagram.get(range).ok_or(DecodeError::Truncated(field));
        let version = field(0..2, Field::Version)?;
        let flags = field(2..3, Field::Flags)?[0];
        let cid = |start, f| -> Result<ConnectionId, DecodeError> {
            let mut id = [0u8; ConnectionId::LEN];
            id.copy_from_slice(field(start..start + ConnectionId::LEN, f)?);
            Ok(ConnectionId(id))
        };
        Ok(Invariant {
            version: u16::from_be_bytes([version[0], version[1]]),
            dcid: cid(3, Field::DestinationCid)?,
            scid: match flags & FLAG_LONG {
                0 => None,
                _ => Some(cid(3 + ConnectionId::LEN, Field::SourceCid)?),
            },
        })
    }

    fn read(r: &mut Reader) -> Result<(Invariant, u8), DecodeError> {
        let version = r.u16(Field::Version)?;
        let flags = r.u8(Field::Flags)?;
        let dcid = ConnectionId(r.array(Field::DestinationCid)?);
        let scid = match flags & FLAG_LONG {
            0 => None,
            _ => Some(ConnectionId(r.array(Field::SourceCid)?)),
        };
        Ok((Invariant { version, dcid, scid }, flags))
    }

    /// Length of the invariant header.
    pub fn len(&self) -> usize {
        3 + ConnectionId::LEN * if self.scid.is_some() { 2 } else { 1 }
    }

    /// Always false: an invariant header is never empty (here for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// How many bytes carry the truncated packet number (spec/protocol.md §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketNumberLen {
    /// 1 byte.
    One,
    /// 2 bytes.
    Two,
    /// 3 bytes.
    Three,
    /// 4 bytes.
    Four,
}

impl PacketNumberLen {
    /// Number of bytes.
    pub const fn bytes(self) -> usize {
        match self {
            PacketNumberLen::One => 1,
            PacketNumberLen::Two => 2,
            PacketNumberLen::Three => 3,
            PacketNumberLen::Four => 4,
        }
    }

    const fn from_flags(flags: u8) -> Self {
        match flags & V1_PN_LEN {
            0 => PacketNumberLen::One,
            1 => PacketNumberLen::Two,
            2 => PacketNumberLen::Three,
            _ => PacketNumberLen::Four,
        }
    }

    /// The shortest length that lets the peer recover `number` when it has seen
    /// everything up to `largest_acked` (RFC 9000 §17.1 and Appendix A.2): the truncated
    /// number must cover twice the packets in flight.
    pub const fn for_packet(number: u64, largest_acked: Option<u64>) -> Self {
        let in_flight = match largest_acked {
            Some(acked) => number.saturating_sub(acked),
            None => number.saturating_add(1),
        };
        if in_flight < (1 << 7) {
            PacketNumberLen::One
        } else if in_flight < (1 << 15) {
            PacketNumberLen::Two
        } else if in_flight < (1 << 23) {
            PacketNumberLen::Three
        } else {
            PacketNumberLen::Four
        }
    }
}

/// The largest packet number: numbers are varint-sized so that they fit any field that
/// names them (ACK ranges).
pub const MAX_PACKET_NUMBER: u64 = super::varint::MAX;

/// Recovers a full packet number from its truncated form, given the largest number
/// received so far on the connection (RFC 9000 Appendix A.3, spec/protocol.md §3.3): the
/// full number closest to `largest + 1` whose low bits are `truncated`.
pub fn expand_packet_number(truncated: u64, len: PacketNumberLen, largest: Option<u64>) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let window = 1u64 << (8 * len.bytes());
    let half = window / 2;
    let candidate = (expected & !(window - 1)) | (truncated & (window - 1));
    if candidate.saturating_add(half) <= expected && candidate < (1 << 62) - window {
        candidate + window
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// What kind of packet a header starts, with what only that kind carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Long header: carries the sender's connection id too.
    Handshake {
        /// The sender's connection id.
        scid: ConnectionId,
    },
    /// Short header.
    Data,
}

/// A version 1 packet header (spec/protocol.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Handshake or data, and the source connection id of a handshake packet.
    pub kind: PacketKind,
    /// The receiver's connection id.
    pub dcid: ConnectionId,
    /// The full packet number (never reused on a connection; at most [`MAX_PACKET_NUMBER`]).
    pub number: u64,
    /// How many low bytes of `number` go on the wire.
    pub number_len: PacketNumberLen,
    /// The sender's clock when it sent the packet: microseconds modulo 2^32
    /// (see [`Instant::wire_timestamp`](crate::time::Instant::wire_timestamp)).
    pub timestamp: u32,
}

impl Header {
    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        match self.kind {
            PacketKind::Handshake { .. } => PacketType::Handshake,
            PacketKind::Data => PacketType::Data,
        }
    }

    /// Bytes the header takes: 3 + 8 (+ 8) + packet number + 4.
    pub fn encoded_len(&self) -> usize {
        let cids = match self.kind {
            PacketKind::Handshake { .. } => 2 * ConnectionId::LEN,
            PacketKind::Data => ConnectionId::LEN,
        };
        3 + cids + self.number_len.bytes() + 4
    }

    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        if self.number > MAX_PACKET_NUMBER {
            return Err(Violation::LimitExceeded {
                limit: Limit::Varint,
                value: self.number,
                max: MAX_PACKET_NUMBER,
            }
            .into());
        }
        let long = match self.kind {
            PacketKind::Handshake { .. } => FLAG_LONG,
            PacketKind::Data => 0,
        };
        let pn_bytes = self.number_len.bytes();
        w.u16(VERSION_1)?;
        w.u8(long | (pn_bytes as u8 - 1))?;
        w.put(&self.dcid.0)?;
        if let PacketKind::Handshake { scid } = self.kind {
            w.put(&scid.0)?;
        }
        w.put(&self.number.to_be_bytes()[8 - pn_bytes..])?;
        w.u32(self.timestamp)
    }
}

/// `handshake dcid=… scid=… pn=5/1 ts=1000` (packet number / bytes on the wire).
impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dcid={}", self.packet_type(), self.dcid)?;
        if let PacketKind::Handshake { scid } = self.kind {
            write!(f, " scid={scid}")?;
        }
        write!(
            f,
            " pn={}/{} ts={}",
            self.number,
            self.number_len.bytes(),
            self.timestamp
        )
    }
}

/// A decoded, fully validated version 1 packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The header, with the packet number expanded.
    pub header: Header,
    /// The frames region of the datagram (between header and trailer).
    payload: Bytes,
}

impl Packet {
    /// Decodes and validates a version 1 datagram. `largest_pn` is the largest packet
    /// number received so far on the connection the datagram is for (`None` before the
    /// first), used to expand the truncated packet number.
    ///
    /// Every byte field of the result shares `datagram`'s memory.
    pub fn decode(datagram: Bytes, largest_pn: Option<u64>) -> Result<Packet, DecodeError> {
        check_size(&datagram)?;
        let mut r = Reader::new(datagram.clone());
        let (invariant, flags) = Invariant::read(&mut r)?;
        if invariant.version != VERSION_1 {
            return Err(DecodeError::UnknownVersion(invariant.version));
        }
        let number_len = PacketNumberLen::from_flags(flags);
        let content_len = check_trailer(&datagram, invariant.len() + number_len.bytes() + 4)?;
        if flags & V1_RESERVED != 0 {
            return Err(DecodeError::ReservedBits(flags));
        }
        let mut truncated = 0u64;
        for _ in 0..number_len.bytes() {
            truncated = (truncated << 8) | u64::from(r.u8(Field::PacketNumber)?);
        }
        let timestamp = r.u32(Field::Timestamp)?;
        let header_len = datagram.len() - r.remaining();
        let kind = match invariant.scid {
            Some(scid) => PacketKind::Handshake { scid },
            None => PacketKind::Data,
        };
        let header = Header {
            kind,
            dcid: invariant.dcid,
            number: expand_packet_number(truncated, number_len, largest_pn),
            number_len,
            timestamp,
        };
        let payload = datagram.slice(header_len..content_len);
        validate_frames(&payload, header.packet_type(), datagram.len())?;
        Ok(Packet { header, payload })
    }

    /// The packet's frames, in order. They were validated by [`Packet::decode`].
    pub fn frames(&self) -> Frames {
        Frames {
            r: Reader::new(self.payload.clone()),
            packet: self.header.packet_type(),
        }
    }

    /// The frames region of the datagram.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Whether the packet must be acknowledged: it carries an ack-eliciting frame.
    pub fn is_ack_eliciting(&self) -> bool {
        self.frames().any(|f| f.is_ack_eliciting())
    }
}

/// Header line, then one line per frame indented by two spaces.
impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.header)?;
        for frame in self.frames() {
            write!(f, "\n  {frame}")?;
        }
        Ok(())
    }
}

/// Iterator over a validated packet's frames.
#[derive(Clone)]
pub struct Frames {
    r: Reader,
    packet: PacketType,
}

impl Iterator for Frames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.r.is_empty() {
            return None;
        }
        // The payload was validated whole by `Packet::decode`, so this read succeeds; were
        // it ever to fail, iteration ends rather than panic.
        Frame::read(&mut self.r, self.packet).ok()
    }
}

fn check_size(datagram: &[u8]) -> Result<(), DecodeError> {
    if datagram.len() > MAX_DATAGRAM_SIZE {
        return Err(Violation::LimitExceeded {
            limit: Limit::DatagramSize,
            value: datagram.len() as u64,
            max: MAX_DATAGRAM_SIZE as u64,
        }
        .into());
    }
    Ok(())
}

/// Checks the CRC-32 trailer (spec/protocol.md §3.5); returns the length of what it covers.
fn check_trailer(datagram: &[u8], header_len: usize) -> Result<usize, DecodeError> {
    let content_len = datagram
        .len()
        .checked_sub(TRAILER_LEN)
        .filter(|len| *len >= header_len)
        .ok_or(DecodeError::Truncated(Field::Trailer))?;
    let (content, trailer) = datagram.split_at(content_len);
    let mut carried = [0u8; 4];
    carried.copy_from_slice(trailer);
    let carried = u32::from_be_bytes(carried);
    let computed = crc32fast::hash(content);
    if carried != computed {
        return Err(DecodeError::IntegrityCheckFailed { carried, computed });
    }
    Ok(content_len)
}

/// Walks every frame once, checking the packet-level rules of spec/protocol.md §4.1.
fn validate_frames(payload: &Bytes, packet: PacketType, datagram_len: usize) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload.clone());
    let mut rules = PacketRules::new(packet);
    while !r.is_empty() {
        rules.saw(&Frame::read(&mut r, packet)?);
    }
    Ok(rules.check(datagram_len)?)
}

/// Packet-level rules that span frames, shared by decoder and writer.
struct PacketRules {
    packet: PacketType,
    frames: usize,
    handshake_frames: u8,
    hello: bool,
}

impl PacketRules {
    fn new(packet: PacketType) -> Self {
        PacketRules {
            packet,
            frames: 0,
            handshake_frames: 0,
            hello: false,
        }
    }

    fn saw(&mut self, frame: &Frame) {
        self.frames += 1;
        if frame.is_handshake() {
            self.handshake_frames = self.handshake_frames.saturating_add(1);
        }
        self.hello |= matches!(frame, Frame::Hello(_));
    }

    fn check(&self, datagram_len: usize) -> Result<(), Violation> {
        if self.frames == 0 {
            return Err(Violation::EmptyPacket);
        }
        if self.packet == PacketType::Handshake && self.handshake_frames != 1 {
            return Err(Violation::HandshakeFrameCount {
                found: self.handshake_frames,
            });
        }
        if self.hello && datagram_len < MIN_DATAGRAM_SIZE {
            return Err(Violation::HelloTooShort {
                len: datagram_len,
                min: MIN_DATAGRAM_SIZE,
            });
        }
        Ok(())
    }
}

/// Builds one version 1 datagram in a caller-supplied buffer: header first, then frames
/// while they fit, then [`finish`](PacketWriter::finish) seals it with the trailer.
///
/// ```
/// use weir_core::wire::*;
/// let header = Header {
///     kind: PacketKind::Data,
///     dcid: ConnectionId::from_u64(7),
///     number: 0,
///     number_len: PacketNumberLen::One,
///     timestamp: 0,
/// };
/// let mut buf = [0u8; MIN_DATAGRAM_SIZE];
/// let mut w = PacketWriter::new(&mut buf, &header).unwrap();
/// w.push(&Frame::Ping).unwrap();
/// let len = w.finish().unwrap();
/// let packet = Packet::decode(bytes::Bytes::copy_from_slice(&buf[..len]), None).unwrap();
/// assert_eq!(packet.frames().collect::<Vec<_>>(), vec![Frame::Ping]);
/// ```
pub struct PacketWriter<'a> {
    w: Writer<'a>,
    rules: PacketRules,
}

impl<'a> PacketWriter<'a> {
    /// Starts a datagram in `buf` (at most [`MAX_DATAGRAM_SIZE`] bytes of it are used).
    pub fn new(buf: &'a mut [u8], header: &Header) -> Result<Self, EncodeError> {
        let limit = buf.len().min(MAX_DATAGRAM_SIZE);
        let needed = header.encoded_len() + TRAILER_LEN;
        if limit < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: limit,
            });
        }
        let mut w = Writer::new(&mut buf[..limit]);
        header.write(&mut w)?;
        Ok(PacketWriter {
            w,
            rules: PacketRules::new(header.packet_type()),
        })
    }

    /// Bytes left for frames (the trailer's room is already set aside).
    pub fn remaining(&self) -> usize {
        self.w.remaining().saturating_sub(TRAILER_LEN)
    }

    /// Adds a frame, or says why not and leaves the datagram as it was.
    pub fn push(&mut self, frame: &Frame) -> Result<(), EncodeError> {
        if *frame == Frame::Padding(0) {
            // Zero bytes of padding are no frame at all; counting one would let an
            // otherwise empty packet through.
            return Ok(());
        }
        let frame_type = frame.frame_type();
        if !Frame::allowed_in(frame_type, self.rules.packet) {
            return Err(Violation::FrameNotAllowed {
                frame_type,
                packet: self.rules.packet,
            }
            .into());
        }
        let needed = frame.encoded_len()?;
        if needed > self.remaining() {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: self.remaining(),
            });
        }
        frame.write(&mut self.w)?;
        self.rules.saw(frame);
        Ok(())
    }

    /// Adds PADDING so that the finished datagram is `datagram_len` bytes long (does
    /// nothing if it is already that long or longer).
    pub fn pad_to(&mut self, datagram_len: usize) -> Result<(), EncodeError> {
        let target = datagram_len.saturating_sub(TRAILER_LEN);
        let pad = target.saturating_sub(self.w.position());
        if pad > 0 {
            self.push(&Frame::Padding(pad))?;
        }
        Ok(())
    }

    /// Seals the datagram: checks the packet-level rules, writes the trailer, and returns
    /// the datagram's length (the first that many bytes of the buffer).
    pub fn finish(mut self) -> Result<usize, EncodeError> {
        self.rules.check(self.w.position() + TRAILER_LEN)?;
        let crc = crc32fast::hash(self.w.written());
        self.w.u32(crc)?;
        Ok(self.w.position())
    }
}

/// Encodes `header` and `frames` into `buf` as one datagram; returns its length.
pub fn encode_packet(header: &Header, frames: &[Frame], buf: &mut [u8]) -> Result<usize, EncodeError> {
    let mut w = PacketWriter::new(buf, header)?;
    for frame in frames {
        w.push(frame)?;
    }
    w.finish()
}

/// VERSION_REJECT (spec/protocol.md §3.6): the version-independent answer of a server that
/// cannot read the version of a client's handshake datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionReject {
    /// The client's connection id (the source id of the datagram being answered).
    pub dcid: ConnectionId,
    /// The destination id of the datagram being answered.
    pub scid: ConnectionId,
    /// The versions the server speaks: 1 to [`MAX_VERSION_RANGES`] ranges.
    pub versions: SmallVec<[VersionRange; 2]>,
}

impl VersionReject {
    /// Decodes a version-0 datagram.
    pub fn decode(datagram: Bytes) -> Result<VersionReject, DecodeError> {
        check_size(&datagram)?;
        let mut r = Reader::new(datagram.clone());
        let (invariant, flags) = Invariant::read(&mut r)?;
        if invariant.version != 0 {
            return Err(DecodeError::UnknownVersion(invariant.version));
        }
        check_trailer(&datagram, invariant.len())?;
        if flags != FLAG_LONG {
            return Err(DecodeError::ReservedBits(flags));
        }
        let count = usize::from(r.u8(Field::VersionCount)?);
        if count == 0 || count > MAX_VERSION_RANGES {
            return Err(Violation::LimitExceeded {
                limit: Limit::VersionRanges,
                value: count as u64,
                max: MAX_VERSION_RANGES as u64,
            }
            .into());
        }
        let mut versions = SmallVec::new();
        for _ in 0..count {
            versions.push(VersionRange::read(&mut r)?);
        }
        if r.remaining() != TRAILER_LEN {
            return Err(Violation::LimitExceeded {
                limit: Limit::DatagramSize,
                value: datagram.len() as u64,
                max: (datagram.len() - r.remaining() + TRAILER_LEN) as u64,
            }
            .into());
        }
        Ok(VersionReject {
            // Invariant::read reads a source id because the flags say long.
            scid: invariant.scid.unwrap_or_default(),
            dcid: invariant.dcid,
            versions,
        })
    }

    /// Bytes the datagram takes.
    pub fn encoded_len(&self) -> usize {
        3 + 2 * ConnectionId::LEN + 1 + 4 * self.versions.len() + TRAILER_LEN
    }

    /// Encodes the datagram into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let count = self.versions.len();
        if count == 0 || count > MAX_VERSION_RANGES {
            return Err(Violation::LimitExceeded {
                limit: Limit::VersionRanges,
                value: count as u64,
                max: MAX_VERSION_RANGES as u64,
            }
            .into());
        }
        let needed = self.encoded_len();
        let available = buf.len();
        let dst = buf
            .get_mut(..needed)
            .ok_or(EncodeError::BufferTooSmall { needed, available })?;
        let mut w = Writer::new(dst);
        w.u16(0)?;
        w.u8(FLAG_LONG)?;
        w.put(&self.dcid.0)?;
        w.put(&self.scid.0)?;
        w.u8(count as u8)?;
        for range in &self.versions {
            range.write(&mut w)?;
        }
        let crc = crc32fast::hash(w.written());
        w.u32(crc)?;
        Ok(w.position())
    }
}

/// `VERSION_REJECT dcid=… scid=… versions=1..=1,3..=4`.
impl fmt::Display for VersionReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VERSION_REJECT dcid={} scid={} versions=",
            self.dcid, self.scid
        )?;
        for (i, v) in self.versions.iter().enumerate() {
            write!(f, "{}{v}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

/// Any datagram this codec reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// A version 1 packet.
    Packet(Packet),
    /// A version-independent VERSION_REJECT.
    VersionReject(VersionReject),
}

impl fmt::Display for Datagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datagram::Packet(p) => p.fmt(f),
            Datagram::VersionReject(v) => v.fmt(f),
        }
    }
}

/// Decodes any datagram: a version 1 packet or a VERSION_REJECT. See [`Packet::decode`].
pub fn decode(datagram: Bytes, largest_pn: Option<u64>) -> Result<Datagram, DecodeError> {
    match datagram.get(..2) {
        Some([0, 0]) => VersionReject::decode(datagram).map(Datagram::VersionReject),
        _ => Packet::decode(datagram, largest_pn).map(Datagram::Packet),
    }
}
