//! Datagrams: decoding and encoding a whole packet of version 1 or 2 — header, frames,
//! checksum trailer or AEAD tag — and dispatching between it and VERSION_REJECT
//! (spec/protocol.md §3, §4.1, §11.4).
//!
//! Decoding checks the whole datagram before handing anything out: the checksum trailer
//! (or, for a sealed version 2 data packet, the AEAD tag, through [`Packet::open`]), the
//! header, and every frame; a [`Packet`] that exists is valid, and iterating its frames
//! cannot fail. The walk that checks the frames keeps the first few it decoded
//! ([`KEPT`]), so the frames of a usual packet are read once; the rest of a longer one are
//! read again as they are iterated, which keeps a packet's size fixed whatever a peer
//! packs into it. Encoding goes through [`PacketWriter`], which writes the header into a
//! caller-supplied buffer, takes frames while they fit, and ends the datagram with its
//! trailer ([`finish`](PacketWriter::finish)) or seals it
//! ([`finish_sealed`](PacketWriter::finish_sealed)). The codec holds no keys: opening and
//! sealing are closures the connection passes in.

use core::fmt;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use super::cursor::{bytes_at, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::frame::Frame;
use super::header::{expand_packet_number, Header, Invariant, KeyPhase, PacketKind, PacketNumberLen};
use super::ids::PacketType;
use super::trailer::{check_size, check_trailer, trailer_crc};
use super::version_reject::VersionReject;
use super::{
    MAX_DATAGRAM_SIZE, MAX_RECEIPT_RUN, MIN_DATAGRAM_SIZE, TAG_LEN, TRAILER_LEN, VERSION_1, VERSION_2,
};

/// How many of a packet's frames its validation keeps decoded for the receiver: a data
/// packet usually carries an ACK, a STREAM frame or two and a receipt or two. Past these, a
/// frame is checked and dropped, and read again when iterated: kept all, a packet of
/// hundreds of one-byte frames would cost an allocation of hundreds of frames (112 bytes
/// each).
const KEPT: usize = 4;

/// A decoded, fully validated packet of version 1 or 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The header, with the packet number expanded.
    pub header: Header,
    /// The frames region of the datagram (between header and trailer).
    payload: Bytes,
    /// Its first frames, as validation decoded them (at most [`KEPT`]; never spilled).
    kept: SmallVec<[Frame; KEPT]>,
    /// Where in `payload` the frames not kept start (its length when every frame is kept).
    rest: usize,
    /// Whether any of its frames is a relay frame (spec §12), which the endpoint acts on
    /// beyond the connection: known before the packet is handled (module `batch` of the
    /// endpoint settles a waiting run first).
    relay: bool,
}

impl Packet {
    /// Decodes and validates a datagram of version 1, or a version 2 handshake packet.
    /// `largest_pn` is the largest packet number received so far on the connection the
    /// datagram is for (`None` before the first), used to expand the truncated packet
    /// number. A sealed packet (version 2 data) is [`DecodeError::Sealed`]: only
    /// [`Packet::open`] reads it.
    ///
    /// Every byte field of the result shares `datagram`'s memory.
    pub fn decode(datagram: Bytes, largest_pn: Option<u64>) -> Result<Packet, DecodeError> {
        let (header, header_len, flags) = read_header(&datagram, largest_pn)?;
        if header.is_sealed() {
            return Err(DecodeError::Sealed);
        }
        // The trailer covers the full packet number: one expanded wrongly (reordering deeper
        // than the sender allowed for) fails the check instead of passing as another packet.
        let content_len = check_trailer(&datagram, header_len, Some(header.number))?;
        check_reserved(&header, flags)?;
        let len = datagram.len();
        validate_frames(frames_region(datagram, header_len, content_len), header, len)
    }

    /// Decodes and validates any packet of version 1 or 2, opening a sealed one (spec
    /// §11.4) in place with `open(header, associated_data, payload, tag)`, which decrypts
    /// `payload` where it lies and says whether the tag verified. A packet that is not
    /// sealed is read as by [`decode`](Self::decode) and `open` is not called.
    ///
    /// The datagram must be writable (decryption overwrites it); the packet's byte fields
    /// share its memory.
    pub fn open(
        mut datagram: BytesMut,
        largest_pn: Option<u64>,
        open: impl FnOnce(&Header, &[u8], &mut [u8], &[u8]) -> bool,
    ) -> Result<Packet, DecodeError> {
        let (header, header_len, flags) = match read_header(&datagram, largest_pn) {
            Ok((header, ..)) if !header.is_sealed() => return Packet::decode(datagram.freeze(), largest_pn),
            Ok(read) => read,
            // Nothing of a sealed packet is the peer's word before its tag verifies: one too
            // short to hold a tag is as unauthenticated as one whose tag fails.
            Err(_) if Invariant::parse(&datagram).is_ok_and(|i| i.is_sealed()) => {
                return Err(DecodeError::AuthenticationFailed)
            }
            Err(e) => return Err(e),
        };
        let content_len = datagram.len() - TAG_LEN;
        let (aad, rest) = datagram.split_at_mut(header_len);
        let (payload, tag) = rest.split_at_mut(content_len - header_len);
        if !open(&header, aad, payload, tag) {
            return Err(DecodeError::AuthenticationFailed);
        }
        // Only the peer can have set bits under a verified tag: from here errors are its own.
        check_reserved(&header, flags)?;
        let len = datagram.len();
        validate_frames(
            frames_region(datagram.freeze(), header_len, content_len),
            header,
            len,
        )
    }

    /// The packet's frames, in order. They were validated by [`Packet::decode`].
    pub fn frames(&self) -> Frames {
        self.clone().into_frames()
    }

    /// The packet's frames, in order, the packet consumed: the frames validation kept and
    /// the payload's handle move into the iterator rather than being cloned (reference
    /// counts changed fewer times per packet, on a receive path that makes about ten such
    /// changes per datagram).
    pub fn into_frames(self) -> Frames {
        Frames {
            kept: self.kept.into_iter(),
            packet: self.header.packet_type(),
            version: self.header.version,
            r: Reader::at(self.payload, self.rest),
        }
    }

    /// The packet's frames, in order, taken out of it where they lie: the kept frames leave
    /// the packet one by one rather than moving as a whole into an iterator first (a
    /// packet's handle passed by reference, not moved, on the receive path). Once it is
    /// used, the packet has no frames.
    pub(crate) fn take_frames(&mut self) -> impl Iterator<Item = Frame> + '_ {
        let (packet, version) = (self.header.packet_type(), self.header.version);
        let mut tail = Reader::at(core::mem::take(&mut self.payload), self.rest);
        self.rest = 0;
        self.kept.drain(..).chain(core::iter::from_fn(move || {
            // Validated whole: as in `Frames::next`, a read that fails ends the walk.
            (!tail.is_empty())
                .then(|| Frame::read(&mut tail, packet, version).ok())
                .flatten()
        }))
    }

    /// The frames region of the datagram.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Whether the packet carries a relay frame (spec §12).
    pub(crate) fn carries_relay_frames(&self) -> bool {
        self.relay
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
    /// The frames validation decoded, then the reader for those it did not keep.
    kept: smallvec::IntoIter<[Frame; KEPT]>,
    r: Reader,
    packet: PacketType,
    version: u16,
}

impl Iterator for Frames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if let Some(frame) = self.kept.next() {
            return Some(frame);
        }
        if self.r.is_empty() {
            return None;
        }
        // The payload was validated whole by `Packet::decode`, so this read succeeds; were
        // it ever to fail, iteration ends rather than panic.
        Frame::read(&mut self.r, self.packet, self.version).ok()
    }
}

/// Reads the header of a version 1 or 2 datagram and expands its packet number; returns it
/// with the header's length and its flags byte, whose reserved bits are checked only once
/// the trailer or tag has (spec §3.5: nothing past the header is trusted before).
pub(crate) fn read_header(
    datagram: &[u8],
    largest_pn: Option<u64>,
) -> Result<(Header, usize, u8), DecodeError> {
    check_size(datagram)?;
    let invariant = Invariant::parse(datagram)?;
    if !matches!(invariant.version, VERSION_1 | VERSION_2) {
        return Err(DecodeError::UnknownVersion(invariant.version));
    }
    let [flags] = bytes_at(datagram, 2, Field::Flags)?;
    let number_len = PacketNumberLen::from_flags(flags);
    let start = invariant.len();
    let header_len = start + number_len.bytes() + 4;
    let kind = match invariant.scid {
        Some(scid) => PacketKind::Handshake { scid },
        None => PacketKind::Data,
    };
    let sealed = invariant.version == VERSION_2 && kind == PacketKind::Data;
    let (trailer, field) = if sealed {
        (TAG_LEN, Field::Tag)
    } else {
        (TRAILER_LEN, Field::Trailer)
    };
    if datagram.len() < header_len + trailer {
        return Err(DecodeError::Truncated(field));
    }
    let truncated = datagram
        .get(start..start + number_len.bytes())
        .ok_or(DecodeError::Truncated(Field::PacketNumber))?
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let timestamp = u32::from_be_bytes(bytes_at(datagram, header_len - 4, Field::Timestamp)?);
    let header = Header {
        version: invariant.version,
        kind,
        dcid: invariant.dcid,
        number: expand_packet_number(truncated, number_len, largest_pn),
        number_len,
        timestamp,
        key_phase: if sealed {
            Header::key_phase_of(flags)
        } else {
            KeyPhase::Zero
        },
    };
    Ok((header, header_len, flags))
}

fn check_reserved(header: &Header, flags: u8) -> Result<(), DecodeError> {
    let long = header.kind != PacketKind::Data;
    if flags & Header::reserved_flags(header.version, long) != 0 {
        return Err(DecodeError::ReservedBits(flags));
    }
    Ok(())
}

/// Rewrites the trailer of a datagram (version 1, or a version 2 handshake packet) so that it checks, with the packet number
/// expanded from `largest_pn` as [`Packet::decode`] will expand it. For tests, fuzzers and
/// tools that alter datagrams on purpose; `false` if the header cannot be read.
pub fn reseal(datagram: &mut [u8], largest_pn: Option<u64>) -> bool {
    let Ok(invariant) = Invariant::parse(datagram) else {
        return false;
    };
    let Some(&flags) = datagram.get(2) else {
        return false;
    };
    if invariant.is_sealed() {
        // Sealed: only the keys could make its tag check.
        return false;
    }
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
    let Some((content, trailer)) = datagram.split_at_mut_checked(content_len) else {
        return false;
    };
    trailer.copy_from_slice(&trailer_crc(number, content).to_be_bytes());
    true
}

/// Bytes `start..end` of `datagram`, cut in place: the datagram's handle becomes the
/// region's, where a slice would be a second handle (two atomic reference-count changes a
/// packet, on memory the receive path shares across threads).
fn frames_region(mut datagram: Bytes, start: usize, end: usize) -> Bytes {
    datagram.truncate(end);
    let start = start.min(datagram.len());
    bytes::Buf::advance(&mut datagram, start);
    datagram
}

/// Walks every frame once, checking the packet-level rules of spec/protocol.md §4.1, and
/// makes the packet of `payload` (moved in, not cloned: see [`frames_region`]) with the
/// first [`KEPT`] frames decoded.
fn validate_frames(payload: Bytes, header: Header, datagram_len: usize) -> Result<Packet, DecodeError> {
    let mut r = Reader::new(payload);
    let mut rules = PacketRules::new(&header);
    // Built in place and returned whole: a packet with its kept frames is some 540 bytes,
    // each move of it a copy.
    let mut packet = Packet {
        header,
        payload: Bytes::new(),
        kept: SmallVec::new(),
        rest: 0,
        relay: false,
    };
    while !r.is_empty() && packet.kept.len() < KEPT {
        let frame = Frame::read(&mut r, rules.packet, rules.version)?;
        rules.saw(&frame);
        packet.kept.push(frame);
    }
    packet.rest = r.position();
    // Shallow past the kept frames: a frame's payload bytes are checked to be there but not
    // sliced out, as no rule reads them and the frame read here is dropped at once.
    r.set_shallow();
    while !r.is_empty() {
        rules.saw(&Frame::read(&mut r, rules.packet, rules.version)?);
    }
    rules.check(datagram_len)?;
    packet.relay = rules.relay;
    packet.payload = r.into_inner();
    Ok(packet)
}

/// Packet-level rules that span frames, shared by decoder and writer.
struct PacketRules {
    packet: PacketType,
    version: u16,
    frames: usize,
    handshake_frames: u8,
    hello: bool,
    /// Streams the packet's RECEIPT_RUN frames answer for, together (§4.17).
    receipt_runs: u64,
    /// Whether it has a relay frame.
    relay: bool,
}

impl PacketRules {
    fn new(header: &Header) -> Self {
        PacketRules {
            packet: header.packet_type(),
            version: header.version,
            frames: 0,
            handshake_frames: 0,
            hello: false,
            receipt_runs: 0,
            relay: false,
        }
    }

    fn saw(&mut self, frame: &Frame) {
        self.frames += 1;
        if frame.is_handshake() {
            self.handshake_frames = self.handshake_frames.saturating_add(1);
        }
        self.hello |= matches!(frame, Frame::Hello(_) | Frame::NoiseHello(_));
        self.relay |= matches!(frame, Frame::Relay(_));
        if let Frame::ReceiptRun(run) = frame {
            self.receipt_runs = self.receipt_runs.saturating_add(run.streams());
        }
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
        if self.receipt_runs > MAX_RECEIPT_RUN {
            return Err(Violation::LimitExceeded {
                limit: Limit::ReceiptRun,
                value: self.receipt_runs,
                max: MAX_RECEIPT_RUN,
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

/// Builds one datagram in a caller-supplied buffer: header first, then frames while they
/// fit, then [`finish`](PacketWriter::finish) ends it with the checksum trailer or, for a
/// version 2 data packet, [`finish_sealed`](PacketWriter::finish_sealed) seals it.
///
/// ```
/// use weir_core::wire::*;
/// let header = Header {
///     version: VERSION_1,
///     kind: PacketKind::Data,
///     dcid: ConnectionId::from_u64(7),
///     number: 0,
///     number_len: PacketNumberLen::One,
///     timestamp: 0,
///     key_phase: KeyPhase::Zero,
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
    /// Bytes after the frames: [`TRAILER_LEN`] or, sealed, [`TAG_LEN`].
    trailer: usize,
    header_len: usize,
    sealed: bool,
}

impl<'a> PacketWriter<'a> {
    /// Starts a datagram in `buf` (at most [`MAX_DATAGRAM_SIZE`] bytes of it are used).
    pub fn new(buf: &'a mut [u8], header: &Header) -> Result<Self, EncodeError> {
        let limit = buf.len().min(MAX_DATAGRAM_SIZE);
        let trailer = header.trailer_len();
        let needed = header.encoded_len() + trailer;
        if limit < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: limit,
            });
        }
        let mut w = Writer::new(buf.get_mut(..limit).unwrap_or_default());
        header.write(&mut w)?;
        Ok(PacketWriter {
            number: header.number,
            header_len: w.position(),
            w,
            rules: PacketRules::new(header),
            trailer,
            sealed: header.is_sealed(),
        })
    }

    /// Whether the datagram is to be sealed ([`finish_sealed`](Self::finish_sealed)): a
    /// version 2 data packet.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Bytes left for frames (the trailer's or tag's room is already set aside).
    pub fn remaining(&self) -> usize {
        self.w.remaining().saturating_sub(self.trailer)
    }

    /// Streams the packet's RECEIPT_RUN frames may still answer for, together (spec §4.17:
    /// at most [`MAX_RECEIPT_RUN`]; past it, finishing the packet fails).
    pub(crate) fn receipt_run_room(&self) -> u64 {
        MAX_RECEIPT_RUN.saturating_sub(self.rules.receipt_runs)
    }

    /// Adds a frame, or says why not and leaves the datagram as it was.
    pub fn push(&mut self, frame: &Frame) -> Result<(), EncodeError> {
        if matches!(frame, Frame::Padding(0)) {
            // Zero bytes of padding are no frame at all; counting one would let an
            // otherwise empty packet through.
            return Ok(());
        }
        let frame_type = frame.frame_type();
        if !Frame::allowed_in(frame_type, self.rules.packet, self.rules.version) {
            return Err(Violation::FrameNotAllowed {
                frame_type,
                packet: self.rules.packet,
            }
            .into());
        }
        frame.check()?;
        // Written first and measured only if it does not fit: a frame's length computed
        // ahead of every write walked each frame twice (an ACK's ranges, a STREAM frame's
        // fields), where nearly every frame a connection pushes fits.
        // The writer's buffer holds the trailer's room too: a frame that ran into it did
        // not fit either.
        let start = self.w.position();
        let written = frame.write(&mut self.w);
        if written.is_err() || self.w.remaining() < self.trailer {
            self.w.rewind(start);
            let needed = frame.encoded_len()?;
            return Err(match (needed > self.remaining(), written) {
                (false, Err(e)) => e,
                _ => EncodeError::BufferTooSmall {
                    needed,
                    available: self.remaining(),
                },
            });
        }
        self.rules.saw(frame);
        Ok(())
    }

    /// Adds PADDING so that the finished datagram is `datagram_len` bytes long (does
    /// nothing if it is already that long or longer).
    pub fn pad_to(&mut self, datagram_len: usize) -> Result<(), EncodeError> {
        let target = datagram_len.saturating_sub(self.trailer);
        let pad = target.saturating_sub(self.w.position());
        if pad > 0 {
            self.push(&Frame::Padding(pad))?;
        }
        Ok(())
    }

    /// Seals the datagram: checks the packet-level rules, writes the trailer, and returns
    /// the datagram's length (the first that many bytes of the buffer).
    pub fn finish(mut self) -> Result<usize, EncodeError> {
        if self.sealed {
            return Err(EncodeError::WrongFinish);
        }
        self.rules.check(self.w.position() + TRAILER_LEN)?;
        let crc = trailer_crc(Some(self.number), self.w.written());
        self.w.u32(crc)?;
        Ok(self.w.position())
    }

    /// Seals a version 2 data packet (spec §11.4): `seal(associated_data, payload)`
    /// encrypts the frames where they lie, with the header as associated data, and returns
    /// the tag, which ends the datagram (or `None` if it cannot seal). Returns the datagram's
    /// length.
    pub fn finish_sealed(
        mut self,
        seal: impl FnOnce(&[u8], &mut [u8]) -> Option<[u8; TAG_LEN]>,
    ) -> Result<usize, EncodeError> {
        if !self.sealed {
            return Err(EncodeError::WrongFinish);
        }
        self.rules.check(self.w.position() + TAG_LEN)?;
        let (written, _) = self.w.split_mut();
        let (aad, payload) = written.split_at_mut(self.header_len);
        let tag = seal(aad, payload).ok_or(EncodeError::SealFailed)?;
        self.w.put(&tag)?;
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

/// Any datagram this codec reads without keys.
// A packet carries its first frames decoded (`KEPT`), a VERSION_REJECT a few words: this
// is a tool's view of one datagram at a time (traces, the fuzz targets), never stored in
// numbers, so the size difference costs nothing a box would save.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// A packet of version 1, or a version 2 handshake packet.
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

/// Decodes any datagram readable without keys: a version 1 packet, a version 2 handshake
/// packet, or a VERSION_REJECT. See [`Packet::decode`].
pub fn decode(datagram: Bytes, largest_pn: Option<u64>) -> Result<Datagram, DecodeError> {
    match datagram.get(..2) {
        Some([0, 0]) => VersionReject::decode(datagram).map(Datagram::VersionReject),
        _ => Packet::decode(datagram, largest_pn).map(Datagram::Packet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ConnectionId, KeyPhase, PacketNumberLen, StreamFrame, StreamId};
    use alloc::vec::Vec;

    /// A version 1 data packet's header: packet number 3, after 2.
    fn data_header() -> Header {
        Header {
            version: VERSION_1,
            kind: PacketKind::Data,
            dcid: ConnectionId::from_u64(7),
            number: 3,
            number_len: PacketNumberLen::One,
            timestamp: 0,
            key_phase: KeyPhase::Zero,
        }
    }

    fn data_packet(frames: &[Frame]) -> Bytes {
        let mut buf = [0u8; MAX_DATAGRAM_SIZE];
        let len = encode_packet(&data_header(), frames, &mut buf).unwrap();
        Bytes::copy_from_slice(&buf[..len])
    }

    fn stream(id: u64, data: &[u8]) -> Frame {
        Frame::Stream(StreamFrame {
            id: StreamId(id),
            offset: 0,
            data: Bytes::copy_from_slice(data),
            fin: true,
            total_len: None,
            label: None,
            digest: None,
        })
    }

    /// The frames validation keeps and those it reads again come out alike, in order, by
    /// either walk; a packet holds no more than `KEPT` decoded, however many it carries.
    #[test]
    fn frames_past_the_kept_ones_are_read_again_in_order() {
        for count in [1, KEPT - 1, KEPT, KEPT + 1, 3 * KEPT] {
            let frames: Vec<Frame> = (0..count as u64)
                .map(|i| match i % 3 {
                    0 => stream(i * 4, b"abc"),
                    1 => Frame::MaxData(i),
                    _ => Frame::Ping,
                })
                .collect();
            let mut packet = Packet::decode(data_packet(&frames), Some(2)).unwrap();
            assert_eq!(packet.kept.len(), count.min(KEPT));
            assert!(!packet.kept.spilled());
            assert_eq!(packet.frames().collect::<Vec<_>>(), frames);
            assert_eq!(packet.take_frames().collect::<Vec<_>>(), frames);
            assert_eq!(packet.take_frames().count(), 0, "taken once");
        }
    }

    /// A frame the writer refuses part way through writing it leaves the packet as it was,
    /// with the error its length would have given before it was written.
    #[test]
    fn a_frame_refused_while_written_is_taken_back() {
        let mut buf = [0u8; 80];
        let mut w = PacketWriter::new(&mut buf, &data_header()).unwrap();
        w.push(&Frame::Ping).unwrap();
        let room = w.remaining();
        // A varint too large, after the frame's type and stream id were written.
        let huge = Frame::MaxStreamData {
            id: StreamId(4),
            max: crate::wire::varint::MAX + 1,
        };
        assert_eq!(w.push(&huge), Err(huge.encoded_len().unwrap_err().into()));
        assert_eq!(w.remaining(), room);
        // Data past the room, after its header fields were written.
        let long = stream(0, &[7; 100]);
        let needed = long.encoded_len().unwrap();
        assert_eq!(
            w.push(&long),
            Err(EncodeError::BufferTooSmall {
                needed,
                available: room
            })
        );
        assert_eq!(w.remaining(), room);
        // Data that fits the buffer only by taking the trailer's room.
        let over = stream(0, &[7; 80][..room - 3]);
        assert_eq!(over.encoded_len().unwrap(), room + 1);
        assert_eq!(
            w.push(&over),
            Err(EncodeError::BufferTooSmall {
                needed: room + 1,
                available: room
            })
        );
        assert_eq!(w.remaining(), room);
        w.push(&Frame::MaxData(9)).unwrap();
        let len = w.finish().unwrap();
        let packet = Packet::decode(Bytes::copy_from_slice(&buf[..len]), Some(2)).unwrap();
        assert_eq!(
            packet.frames().collect::<Vec<_>>(),
            [Frame::Ping, Frame::MaxData(9)]
        );
    }

    /// What the receive path moves and what the comments on its copies say it is.
    #[test]
    fn a_packet_with_its_kept_frames_is_about_540_bytes() {
        extern crate std;
        let size = core::mem::size_of::<Packet>();
        // `-- --nocapture` prints it (the figure the comments and the bench README cite).
        std::println!("Packet {size} bytes");
        assert!((480..=560).contains(&size), "{size}");
    }

    /// A frame past the kept ones is still checked before the packet exists.
    #[test]
    fn a_bad_frame_past_the_kept_ones_refuses_the_packet() {
        let mut frames: Vec<Frame> = (0..KEPT as u64).map(Frame::MaxData).collect();
        frames.push(stream(0, b"xyz"));
        let good = data_packet(&frames);
        assert!(Packet::decode(good.clone(), Some(2)).is_ok());
        // The last frame's type byte (STREAM with FIN) made unknown, its trailer made right.
        let mut bad = good.to_vec();
        let at = bad.len() - TRAILER_LEN - (1 + 1 + 1 + 3) - 1;
        bad[at] = 0x3f;
        assert!(reseal(&mut bad, Some(2)));
        assert_eq!(
            Packet::decode(Bytes::from(bad), Some(2)),
            Err(DecodeError::UnknownFrameType(0x3f))
        );
    }
}
