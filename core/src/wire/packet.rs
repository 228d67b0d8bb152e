//! Datagrams: decoding and encoding a whole version 1 packet — header, frames, integrity
//! trailer — and dispatching between it and VERSION_REJECT (spec/protocol.md §3, §4.1).
//!
//! Decoding checks the whole datagram before handing anything out: the integrity trailer,
//! the header, and every frame; a [`Packet`] that exists is valid, and iterating its frames
//! cannot fail. Encoding goes through [`PacketWriter`], which writes the header into a
//! caller-supplied buffer, takes frames while they fit, and seals the datagram with its
//! trailer.

use core::fmt;

use bytes::Bytes;

use super::cursor::{Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::frame::Frame;
use super::header::{expand_packet_number, Header, Invariant, PacketKind, PacketNumberLen, V1_RESERVED};
use super::ids::PacketType;
use super::version_reject::VersionReject;
use super::{MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE, TRAILER_LEN, VERSION_1};

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
        let header_len = invariant.len() + number_len.bytes() + 4;
        if datagram.len() < header_len + TRAILER_LEN {
            return Err(DecodeError::Truncated(Field::Trailer));
        }
        let mut truncated = 0u64;
        for _ in 0..number_len.bytes() {
            truncated = (truncated << 8) | u64::from(r.u8(Field::PacketNumber)?);
        }
        let number = expand_packet_number(truncated, number_len, largest_pn);
        // The trailer covers the full packet number: one expanded wrongly (reordering deeper
        // than the sender allowed for) fails the check instead of passing as another packet.
        let content_len = check_trailer(&datagram, header_len, Some(number))?;
        if flags & V1_RESERVED != 0 {
            return Err(DecodeError::ReservedBits(flags));
        }
        let timestamp = r.u32(Field::Timestamp)?;
        let kind = match invariant.scid {
            Some(scid) => PacketKind::Handshake { scid },
            None => PacketKind::Data,
        };
        let header = Header {
            kind,
            dcid: invariant.dcid,
            number,
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

pub(crate) fn check_size(datagram: &[u8]) -> Result<(), DecodeError> {
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

/// The integrity check of spec/protocol.md §3.5: CRC-32 over the full packet number (8
/// bytes, big-endian; absent for VERSION_REJECT) followed by every byte before the trailer.
pub(crate) fn integrity(number: Option<u64>, content: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if let Some(n) = number {
        h.update(&n.to_be_bytes());
    }
    h.update(content);
    h.finalize()
}

/// Checks the trailer; returns the length of what it covers.
pub(crate) fn check_trailer(
    datagram: &[u8],
    header_len: usize,
    number: Option<u64>,
) -> Result<usize, DecodeError> {
    let content_len = datagram
        .len()
        .checked_sub(TRAILER_LEN)
        .filter(|len| *len >= header_len)
        .ok_or(DecodeError::Truncated(Field::Trailer))?;
    let (content, trailer) = datagram.split_at(content_len);
    let mut carried = [0u8; 4];
    carried.copy_from_slice(trailer);
    let carried = u32::from_be_bytes(carried);
    let computed = integrity(number, content);
    if carried != computed {
        return Err(DecodeError::IntegrityCheckFailed { carried, computed });
    }
    Ok(content_len)
}

/// Rewrites the trailer of a version 1 datagram so that it checks, with the packet number
/// expanded from `largest_pn` as [`Packet::decode`] will expand it. For tests, fuzzers and
/// tools that alter datagrams on purpose; `false` if the header cannot be read.
pub fn reseal(datagram: &mut [u8], largest_pn: Option<u64>) -> bool {
    let Ok(invariant) = Invariant::parse(datagram) else {
        return false;
    };
    let Some(&flags) = datagram.get(2) else {
        return false;
    };
    let len = PacketNumberLen::from_flags(flags);
    let start = invariant.len();
    let Some(content_len) = datagram.len().checked_sub(TRAILER_LEN) else {
        return false;
    };
    let Some(pn_bytes) = datagram
        .get(start..start + len.bytes())
        .filter(|_| start + len.bytes() <= content_len)
    else {
        return false;
    };
    let truncated = pn_bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let number = (invariant.version != 0).then(|| expand_packet_number(truncated, len, largest_pn));
    let crc = integrity(number, &datagram[..content_len]);
    datagram[content_len..].copy_from_slice(&crc.to_be_bytes());
    true
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
    /// The full packet number, which the trailer covers.
    number: u64,
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
            number: header.number,
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
        if matches!(frame, Frame::Padding(0)) {
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
        let crc = integrity(Some(self.number), self.w.written());
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
