//! The invariant header of every version and the packet header of versions 1 and 2:
//! connection ids, packet number truncation and expansion, timestamp, key phase
//! (spec/protocol.md §3.1-§3.4, §11.4).

use core::fmt;

use super::cursor::{bytes_at, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::ids::{ConnectionId, PacketType};
use super::{TAG_LEN, TRAILER_LEN, VERSION_1, VERSION_2};

/// Flags bit (byte 2, every version): the header carries a source connection id.
pub const FLAG_LONG: u8 = 0x80;
/// Flags bits reserved in version 1: zero on send, a decode error on receipt.
pub(crate) const V1_RESERVED: u8 = 0x7c;
/// Flags bit of version 2 data packets: the key phase (spec §11.4).
const V2_KEY_PHASE: u8 = 0x04;
/// Flags bits reserved in version 2 data packets (handshake packets also reserve the key
/// phase bit).
const V2_RESERVED: u8 = 0x78;
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
        let version = u16::from_be_bytes(bytes_at(datagram, 0, Field::Version)?);
        let [flags] = bytes_at(datagram, 2, Field::Flags)?;
        Ok(Invariant {
            version,
            dcid: ConnectionId(bytes_at(datagram, 3, Field::DestinationCid)?),
            scid: match flags & FLAG_LONG {
                0 => None,
                _ => Some(ConnectionId(bytes_at(
                    datagram,
                    3 + ConnectionId::LEN,
                    Field::SourceCid,
                )?)),
            },
        })
    }

    pub(crate) fn read(r: &mut Reader) -> Result<(Invariant, u8), DecodeError> {
        let version = r.u16(Field::Version)?;
        let flags = r.u8(Field::Flags)?;
        let dcid = ConnectionId(r.array(Field::DestinationCid)?);
        let scid = match flags & FLAG_LONG {
            0 => None,
            _ => Some(ConnectionId(r.array(Field::SourceCid)?)),
        };
        Ok((Invariant { version, dcid, scid }, flags))
    }

    /// Whether it starts a sealed packet (a version 2 short header: a data packet, spec
    /// §11.4), whose every byte past this header is the peer's word only once its tag
    /// verifies under the connection's keys.
    pub fn is_sealed(&self) -> bool {
        self.version == VERSION_2 && self.scid.is_none()
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

    pub(crate) const fn from_flags(flags: u8) -> Self {
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

/// Which of two alternating keys protects a version 2 data packet (spec §11.4): a sender
/// flips it at each key update, so the receiver knows which key to try. Always `Zero` in
/// version 1 and in handshake packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyPhase {
    /// Phase bit 0: the first key, and every second one after it.
    #[default]
    Zero,
    /// Phase bit 1.
    One,
}

impl KeyPhase {
    /// The other phase.
    pub const fn flipped(self) -> Self {
        match self {
            KeyPhase::Zero => KeyPhase::One,
            KeyPhase::One => KeyPhase::Zero,
        }
    }

    const fn bit(self) -> u8 {
        match self {
            KeyPhase::Zero => 0,
            KeyPhase::One => V2_KEY_PHASE,
        }
    }
}

/// A packet header of version 1 (spec/protocol.md §3.2) or version 2 (§11.4: the same
/// layout, with a key phase bit in data packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The wire version: [`VERSION_1`] (checksum trailer) or
    /// [`VERSION_2`] (data packets sealed with an AEAD tag).
    pub version: u16,
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
    /// The key phase of a version 2 data packet; `Zero` otherwise.
    pub key_phase: KeyPhase,
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

    /// Whether the packet is sealed with an AEAD (a version 2 data packet, spec §11.4)
    /// rather than ended by the checksum trailer (§3.5).
    pub fn is_sealed(&self) -> bool {
        self.version == VERSION_2 && self.kind == PacketKind::Data
    }

    /// Bytes after the frames: the AEAD tag of a sealed packet, else the CRC-32 trailer.
    pub fn trailer_len(&self) -> usize {
        if self.is_sealed() {
            TAG_LEN
        } else {
            TRAILER_LEN
        }
    }

    /// The flags bits a receiver rejects in a packet of this version and kind.
    pub(crate) fn reserved_flags(version: u16, long: bool) -> u8 {
        match (version, long) {
            (VERSION_2, false) => V2_RESERVED,
            _ => V1_RESERVED,
        }
    }

    /// The key phase a flags byte carries (meaningful in version 2 data packets only).
    pub(crate) fn key_phase_of(flags: u8) -> KeyPhase {
        if flags & V2_KEY_PHASE != 0 {
            KeyPhase::One
        } else {
            KeyPhase::Zero
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
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
        if !matches!(self.version, VERSION_1 | VERSION_2) {
            return Err(Violation::InvalidVersionRange {
                min: self.version,
                max: self.version,
            }
            .into());
        }
        let phase = if self.is_sealed() {
            self.key_phase.bit()
        } else if self.key_phase != KeyPhase::Zero {
            return Err(Violation::KeyPhaseNotAllowed.into());
        } else {
            0
        };
        let pn_bytes = self.number_len.bytes();
        w.u16(self.version)?;
        w.u8(long | phase | (pn_bytes as u8 - 1))?;
        w.put(&self.dcid.0)?;
        if let PacketKind::Handshake { scid } = self.kind {
            w.put(&scid.0)?;
        }
        let number = self.number.to_be_bytes();
        #[expect(
            clippy::indexing_slicing,
            reason = "a packet number is written in 1 to 4 bytes (PacketNumberLen)"
        )]
        let low = &number[8 - pn_bytes..];
        w.put(low)?;
        w.u32(self.timestamp)
    }
}

/// `handshake dcid=… scid=… pn=5/1 ts=1000` (packet number / bytes on the wire).
impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.packet_type())?;
        if self.version != VERSION_1 {
            write!(f, " v{}", self.version)?;
        }
        write!(f, " dcid={}", self.dcid)?;
        if let PacketKind::Handshake { scid } = self.kind {
            write!(f, " scid={scid}")?;
        }
        write!(
            f,
            " pn={}/{} ts={}",
            self.number,
            self.number_len.bytes(),
            self.timestamp
        )?;
        if self.key_phase == KeyPhase::One {
            f.write_str(" kp=1")?;
        }
        Ok(())
    }
}
