//! What the handshake negotiates: version ranges, capabilities and transport parameters
//! (spec/protocol.md §4.13-§4.16).

use core::fmt;

use bytes::Bytes;

use super::cursor::{varint_len, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Violation};
use super::{MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE};

/// An inclusive range of wire versions, `min..=max`, never empty and never containing 0
/// (version 0 is the version-independent VERSION_REJECT, spec/protocol.md §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    min: u16,
    max: u16,
}

impl VersionRange {
    /// Version 1 only: plaintext packets with an checksum trailer; no encryption, no
    /// authentication of anything. The same as [`UNPROTECTED`](Self::UNPROTECTED).
    pub const V1: VersionRange = VersionRange { min: 1, max: 1 };
    /// Version 2 only (the default): every connection is encrypted and both sides
    /// authenticated (spec §11); a peer that speaks only version 1 is refused.
    pub const ENCRYPTED: VersionRange = VersionRange { min: 2, max: 2 };
    /// Version 2, and version 1 with a peer that speaks only it: **plaintext, for tests and
    /// tools**. Anyone who sees a client's HELLO can force that fallback (it forges the
    /// VERSION_REJECT that triggers it), so choose this only where plaintext is acceptable.
    /// A connection that must prove its peer's identity (a named key, or a peer policy)
    /// never falls back, and a server with a peer policy refuses version 1 clients.
    pub const ENCRYPTED_OR_PLAINTEXT: VersionRange = VersionRange { min: 1, max: 2 };
    /// Version 1 only: **no encryption and no authentication**; anyone on the path reads and
    /// forges packets. For fuzzing (the fuzzers reach the state machines without keys), for
    /// measuring the transport without its crypto, and for closed test networks.
    pub const UNPROTECTED: VersionRange = VersionRange { min: 1, max: 1 };

    /// `min..=max`, or the typed violation if it is empty or includes version 0.
    pub const fn new(min: u16, max: u16) -> Result<Self, Violation> {
        if min == 0 || min > max {
            return Err(Violation::InvalidVersionRange { min, max });
        }
        Ok(VersionRange { min, max })
    }

    /// The range holding only `version` (which must not be 0).
    pub const fn single(version: u16) -> Result<Self, Violation> {
        Self::new(version, version)
    }

    /// Lowest version in the range.
    pub const fn min(self) -> u16 {
        self.min
    }

    /// Highest version in the range.
    pub const fn max(self) -> u16 {
        self.max
    }

    /// Whether `version` is in the range.
    pub const fn contains(self, version: u16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The highest version both ranges contain, if any: the version negotiation rule of
    /// spec/protocol.md §4.13.
    pub fn highest_common(self, other: VersionRange) -> Option<u16> {
        let hi = self.max.min(other.max);
        (hi >= self.min.max(other.min)).then_some(hi)
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let min = r.u16(Field::VersionRange)?;
        let max = r.u16(Field::VersionRange)?;
        Ok(VersionRange::new(min, max)?)
    }

    pub(crate) fn write(self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u16(self.min)?;
        w.u16(self.max)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

/// A set of optional protocol features (spec/protocol.md §4.13): a bit set carried as a
/// varint. Bits this version does not define are kept as received, so an endpoint can
/// intersect sets without understanding every bit, and ignored otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u64);

impl Capabilities {
    /// No optional feature.
    pub const NONE: Capabilities = Capabilities(0);
    /// The endpoint delivers stream bytes as soon as they are contiguous, not only whole
    /// messages (Freenet's streaming mode).
    pub const STREAMING: Capabilities = Capabilities(1 << 0);
    /// The endpoint can relay a stream to other connections without reassembling it.
    pub const PIPING: Capabilities = Capabilities(1 << 1);
    /// The endpoint sends a RECEIPT for every stream the peer sends it, once the final
    /// receiver read it all or failed to (spec §4.17, §8 Delivery): the sender learns the
    /// outcome end to end, through relays.
    pub const RECEIPTS: Capabilities = Capabilities(1 << 2);
    /// The endpoint tells its peer the address it sees the peer's packets come from
    /// (OBSERVED_ADDRESS, spec §4.18), so that an endpoint behind a NAT learns its public
    /// address. Version 2 only: a server grants it to no version 1 client, whose frames
    /// anyone on the path could forge.
    pub const ADDRESS_DISCOVERY: Capabilities = Capabilities(1 << 3);
    /// The endpoint speaks the relay exchange (RELAY_* frames, spec §12): as a client of a
    /// relay, or as a relay if it serves as one. Version 2 only, like ADDRESS_DISCOVERY:
    /// a relay forwards by authenticated keys.
    pub const RELAY: Capabilities = Capabilities(1 << 4);
    /// The endpoint takes unreliable datagrams (DATAGRAM frames, spec §4.19): never
    /// retransmitted, congestion-controlled, each within one packet.
    pub const DATAGRAMS: Capabilities = Capabilities(1 << 5);
    /// The endpoint understands RECEIPT_RUN frames (spec §4.17): receipts for a set of
    /// streams, all delivered, in one frame. Only with RECEIPTS: a connection that has this
    /// and not RECEIPTS sends and takes no receipt at all.
    pub const RECEIPT_RUNS: Capabilities = Capabilities(1 << 6);
    /// The endpoint acknowledges a packet that asks for an acknowledgement only for its
    /// receipts (RECEIPT, RECEIPT_FAILED, RECEIPT_RUN) lazily, within 250 ms or with the
    /// next packet it sends, and its sender counts no such packet in flight (spec §4.17,
    /// §8 Acknowledgements): a message on an otherwise quiet connection costs two
    /// datagrams, not three. Only with RECEIPTS.
    pub const LAZY_RECEIPT_ACKS: Capabilities = Capabilities(1 << 7);
    /// Every capability this protocol defines.
    pub const ALL: Capabilities = Capabilities(0b1111_1111);
    /// The capabilities a version 1 connection never gets: those that trust what the peer
    /// says of addresses and identities.
    pub const AUTHENTICATED_ONLY: Capabilities = Capabilities(0b1_1000);

    /// The set with exactly these bits. Only bits below 2^62 fit on the wire; higher bits
    /// are dropped.
    pub const fn from_bits(bits: u64) -> Self {
        Capabilities(bits & super::varint::MAX)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether every capability in `other` is in `self`.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Capabilities in both sets: what a negotiated connection may use.
    pub const fn intersection(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    /// The capabilities of `self` that are not in `other`.
    pub const fn without(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & !other.0)
    }

    /// Both sets together.
    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Capabilities(r.varint(Field::Capabilities)?))
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The Noise handshake pattern a NOISE_HELLO starts (spec/protocol.md §11.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoisePattern {
    /// `Noise_XX`: three messages; each side learns the other's static key during the
    /// handshake. For a client that does not know the server's key in advance.
    Xx,
    /// `Noise_IK`: two messages; the client already knows the server's static key, and its
    /// own identity travels encrypted in the first message.
    Ik,
}

impl NoisePattern {
    /// The number carried on the wire.
    pub const fn code(self) -> u64 {
        match self {
            NoisePattern::Xx => 1,
            NoisePattern::Ik => 2,
        }
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        match r.varint(Field::NoisePattern)? {
            1 => Ok(NoisePattern::Xx),
            2 => Ok(NoisePattern::Ik),
            other => Err(Violation::UnknownNoisePattern(other).into()),
        }
    }
}

impl fmt::Display for NoisePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoisePattern::Xx => "XX",
            NoisePattern::Ik => "IK",
        })
    }
}

/// An AEAD that seals version 2 data packets (spec/protocol.md §11.3), negotiated in the
/// handshake. Both take 32-byte keys and leave a 16-byte tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cipher {
    /// ChaCha20-Poly1305 (RFC 8439): fast everywhere, constant time without hardware help.
    ChaCha20Poly1305,
    /// AES-256-GCM (NIST SP 800-38D): fastest where the CPU has AES and carry-less
    /// multiply instructions.
    Aes256Gcm,
}

impl Cipher {
    /// Its bit in a [`Ciphers`] set, which is also its code in a NOISE_ACCEPT.
    pub const fn bit(self) -> u64 {
        match self {
            Cipher::ChaCha20Poly1305 => 0x1,
            Cipher::Aes256Gcm => 0x2,
        }
    }

    /// Every cipher version 2 defines.
    pub const ALL: [Cipher; 2] = [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm];

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let code = r.varint(Field::Ciphers)?;
        Cipher::ALL
            .into_iter()
            .find(|c| c.bit() == code)
            .ok_or(Violation::InvalidCipher(code).into())
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
            Cipher::Aes256Gcm => "aes-256-gcm",
        })
    }
}

/// A set of [`Cipher`]s, carried as a varint bit set: what a client offers. Unknown bits are
/// kept as received and ignored, as for [`Capabilities`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ciphers(u64);

impl Ciphers {
    /// Every cipher version 2 defines.
    pub const ALL: Ciphers = Ciphers(0b11);

    /// The set with exactly these bits (bits at or above 2^62 are dropped).
    pub const fn from_bits(bits: u64) -> Self {
        Ciphers(bits & super::varint::MAX)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether the set holds `cipher`.
    pub const fn contains(self, cipher: Cipher) -> bool {
        self.0 & cipher.bit() != 0
    }

    /// The set with `cipher` added.
    pub const fn with(self, cipher: Cipher) -> Ciphers {
        Ciphers(self.0 | cipher.bit())
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Ciphers(r.varint(Field::Ciphers)?))
    }
}

impl FromIterator<Cipher> for Ciphers {
    fn from_iter<I: IntoIterator<Item = Cipher>>(iter: I) -> Self {
        iter.into_iter().fold(Ciphers(0), Ciphers::with)
    }
}

impl fmt::Display for Ciphers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Transport parameters a peer announces in HELLO or ACCEPT (spec/protocol.md §4.14): what
/// it is willing to receive. `None` means "not sent": the receiver uses the default the
/// spec gives for that parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransportParams {
    /// 0x01: initial connection-wide credit in bytes (MAX_DATA before any frame).
    pub max_data: Option<u64>,
    /// 0x02: initial credit in bytes of every stream the peer opens.
    pub max_stream_data: Option<u64>,
    /// 0x03: how many streams the peer may open before a MAX_STREAMS.
    pub max_streams: Option<u64>,
    /// 0x04: largest UDP payload the sender of the parameter accepts (1200..=65527).
    pub max_datagram_size: Option<u16>,
    /// 0x05: idle timeout in milliseconds (0: none).
    pub idle_timeout_ms: Option<u64>,
    /// 0x06: the longest the sender of the parameter delays an ACK, in milliseconds (< 2^14).
    pub max_ack_delay_ms: Option<u64>,
    /// 0x07: the longest stream, in bytes, the sender of the parameter accepts (absent: any).
    pub max_message_len: Option<u64>,
    /// 0x08: the token of the server's stateless reset for this connection (16 bytes; sent
    /// by a server only, in its ACCEPT, which version 2 seals: spec §6.1).
    pub stateless_reset_token: Option<[u8; 16]>,
    /// Parameters this version does not define, exactly as received: id-length-value
    /// entries in ascending id order, none with a known id. Kept so that a decoded HELLO
    /// re-encodes to the same bytes; empty in parameters built locally.
    pub unknown: Bytes,
}

/// The highest transport parameter id this implementation knows; ids above it are unknown.
const LAST_KNOWN_ID: u64 = 0x08;

/// The id of the stateless reset token, the one parameter whose value is not a varint.
const RESET_TOKEN_ID: u64 = 0x08;

/// Largest `max_ack_delay_ms` allowed, as in RFC 9000 §18.2.
pub const MAX_ACK_DELAY_MS: u64 = (1 << 14) - 1;

impl TransportParams {
    /// The parameters in wire order: (id, value).
    fn entries(&self) -> [(u64, Option<u64>); 7] {
        [
            (0x01, self.max_data),
            (0x02, self.max_stream_data),
            (0x03, self.max_streams),
            (0x04, self.max_datagram_size.map(u64::from)),
            (0x05, self.idle_timeout_ms),
            (0x06, self.max_ack_delay_ms),
            (0x07, self.max_message_len),
        ]
    }

    fn check(id: u64, value: u64) -> Result<(), Violation> {
        let ok = match id {
            0x04 => (MIN_DATAGRAM_SIZE as u64..=MAX_DATAGRAM_SIZE as u64).contains(&value),
            0x06 => value <= MAX_ACK_DELAY_MS,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Violation::InvalidTransportParameter { id })
        }
    }

    /// Size of the TLV list, without its length prefix.
    fn body_len(&self) -> Result<usize, Violation> {
        let mut len = 0;
        for (id, value) in self.entries() {
            if let Some(v) = value {
                Self::check(id, v)?;
                let vlen = varint_len(v)?;
                len += varint_len(id)? + varint_len(vlen as u64)? + vlen;
            }
        }
        if self.stateless_reset_token.is_some() {
            len += varint_len(RESET_TOKEN_ID)? + 1 + 16;
        }
        Ok(len + self.unknown.len())
    }

    /// Size on the wire, length prefix included.
    pub(crate) fn encoded_len(&self) -> Result<usize, Violation> {
        self.check_unknown()?;
        let body = self.body_len()?;
        Ok(varint_len(body as u64)? + body)
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.varint(self.body_len()? as u64)?;
        for (id, value) in self.entries() {
            if let Some(v) = value {
                w.varint(id)?;
                w.varint(varint_len(v)? as u64)?;
                w.varint(v)?;
            }
        }
        if let Some(token) = &self.stateless_reset_token {
            w.varint(RESET_TOKEN_ID)?;
            w.varint(16)?;
            w.put(token)?;
        }
        // Unknown ids are all above the known ones, so they come last.
        w.put(&self.unknown)
    }

    /// Checks `unknown` is well-formed entries with ascending ids above every known id.
    fn check_unknown(&self) -> Result<(), Violation> {
        let mut r = Reader::new(self.unknown.clone());
        let mut last = LAST_KNOWN_ID;
        while !r.is_empty() {
            let id = r
                .varint(Field::TransportParameters)
                .map_err(|_| Violation::InvalidTransportParameter { id: last })?;
            if id <= last {
                return Err(Violation::TransportParameterOrder { id });
            }
            r.prefixed(Field::TransportParameters)
                .map_err(|_| Violation::InvalidTransportParameter { id })?;
            last = id;
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut block = Reader::new(r.prefixed(Field::TransportParameters)?);
        let mut params = TransportParams::default();
        let mut last_id = 0;
        while !block.is_empty() {
            let entry = block.clone();
            let id = block.varint(Field::TransportParameters)?;
            if id <= last_id {
                // Id 0 is reserved, so this also refuses it.
                return Err(Violation::TransportParameterOrder { id }.into());
            }
            last_id = id;
            if id > LAST_KNOWN_ID {
                // Unknown parameters are kept as received and otherwise ignored (a later
                // version may define them). Ids ascend, so every entry from here on is
                // unknown too: check their framing and keep them as one slice.
                params.unknown = entry.slice_rest(0, entry.remaining());
                params.check_unknown()?;
                return Ok(params);
            }
            let value = block.prefixed(Field::TransportParameters)?;
            if id == RESET_TOKEN_ID {
                let token = <[u8; 16]>::try_from(&value[..])
                    .map_err(|_| Violation::InvalidTransportParameter { id })?;
                params.stateless_reset_token = Some(token);
                continue;
            }
            let mut value = Reader::new(value);
            let v = Self::known_value(id, &mut value)?;
            match id {
                0x01 => params.max_data = Some(v),
                0x02 => params.max_stream_data = Some(v),
                0x03 => params.max_streams = Some(v),
                // check() bounded it to 1200..=65527, so it fits a u16.
                0x04 => params.max_datagram_size = Some(v as u16),
                0x05 => params.idle_timeout_ms = Some(v),
                0x06 => params.max_ack_delay_ms = Some(v),
                _ => params.max_message_len = Some(v),
            }
        }
        Ok(params)
    }

    /// A known parameter's value: exactly one varint filling the TLV value, within bounds.
    fn known_value(id: u64, value: &mut Reader) -> Result<u64, DecodeError> {
        let invalid = Violation::InvalidTransportParameter { id };
        let v = value.varint(Field::TransportParameters).map_err(|_| invalid)?;
        if !value.is_empty() {
            return Err(invalid.into());
        }
        Self::check(id, v)?;
        Ok(v)
    }
}

/// `{max_data=1048576,idle_timeout_ms=30000,unknown=408002beef}`: present parameters only,
/// in wire order, then the unknown entries in hex.
impl fmt::Display for TransportParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = [
            "max_data",
            "max_stream_data",
            "max_streams",
            "max_datagram_size",
            "idle_timeout_ms",
            "max_ack_delay_ms",
            "max_message_len",
        ];
        f.write_str("{")?;
        let mut first = true;
        for ((_, value), name) in self.entries().iter().zip(NAMES) {
            if let Some(v) = value {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{name}={v}")?;
            }
        }
        if let Some(token) = &self.stateless_reset_token {
            let sep = if first { "" } else { "," };
            first = false;
            write!(f, "{sep}stateless_reset_token={}", super::hex::Hex(token))?;
        }
        if !self.unknown.is_empty() {
            let sep = if first { "" } else { "," };
            write!(f, "{sep}unknown={}", super::hex::Hex(&self.unknown))?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn version_ranges_reject_empty_and_zero() {
        assert!(VersionRange::new(2, 1).is_err());
        assert!(VersionRange::new(0, 3).is_err());
        assert!(VersionRange::single(1).is_ok());
    }

    #[test]
    fn highest_common_version() {
        let r = |a, b| VersionRange::new(a, b).unwrap();
        assert_eq!(r(1, 3).highest_common(r(2, 5)), Some(3));
        assert_eq!(r(1, 1).highest_common(r(1, 1)), Some(1));
        assert_eq!(r(1, 2).highest_common(r(3, 4)), None);
        assert_eq!(r(3, 4).highest_common(r(1, 2)), None);
    }

    #[test]
    fn capabilities_intersect() {
        let a = Capabilities::STREAMING
            .union(Capabilities::PIPING)
            .union(Capabilities::RECEIPTS)
            .union(Capabilities::ADDRESS_DISCOVERY)
            .union(Capabilities::RELAY)
            .union(Capabilities::DATAGRAMS)
            .union(Capabilities::RECEIPT_RUNS)
            .union(Capabilities::LAZY_RECEIPT_ACKS);
        assert_eq!(a, Capabilities::ALL);
        assert!(!a.without(Capabilities::PIPING).contains(Capabilities::PIPING));
        assert!(a.without(Capabilities::PIPING).contains(Capabilities::RECEIPTS));
        assert_eq!(a.intersection(Capabilities::PIPING), Capabilities::PIPING);
        assert!(a.contains(Capabilities::STREAMING));
        assert!(!Capabilities::PIPING.contains(a));
        assert_eq!(
            Capabilities::from_bits(u64::MAX).bits(),
            super::super::varint::MAX
        );
    }

    fn decode(bytes: &'static [u8]) -> Result<TransportParams, DecodeError> {
        TransportParams::read(&mut Reader::new(Bytes::from_static(bytes)))
    }

    #[test]
    fn unknown_parameters_are_skipped_and_order_is_enforced() {
        // id 0x01 = 5, then unknown id 0x20 with a 2-byte opaque value.
        let p = decode(&[7, 0x01, 1, 5, 0x20, 2, 0xaa, 0xbb]).unwrap();
        assert_eq!(p.max_data, Some(5));
        assert_eq!(&p.unknown[..], &[0x20, 2, 0xaa, 0xbb]);
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        p.write(&mut w).unwrap();
        assert_eq!(w.written(), &[7, 0x01, 1, 5, 0x20, 2, 0xaa, 0xbb]);
        // Id 0 is reserved.
        assert_eq!(
            decode(&[3, 0x00, 1, 5]),
            Err(Violation::TransportParameterOrder { id: 0 }.into())
        );
        // Unknown entries must be framed correctly too.
        assert_eq!(
            decode(&[4, 0x20, 5, 0xaa, 0xbb]),
            Err(Violation::InvalidTransportParameter { id: 0x20 }.into())
        );
        assert_eq!(
            decode(&[6, 0x02, 1, 5, 0x01, 1, 5]),
            Err(Violation::TransportParameterOrder { id: 1 }.into())
        );
        assert_eq!(
            decode(&[6, 0x01, 1, 5, 0x01, 1, 5]),
            Err(Violation::TransportParameterOrder { id: 1 }.into())
        );
    }

    #[test]
    fn the_stateless_reset_token_is_sixteen_bytes() {
        let p = TransportParams {
            max_data: Some(5),
            stateless_reset_token: Some([0xab; 16]),
            ..TransportParams::default()
        };
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        p.write(&mut w).unwrap();
        let mut expected = alloc::vec![21, 0x01, 1, 5, 0x08, 16];
        expected.extend_from_slice(&[0xab; 16]);
        assert_eq!(w.written(), &expected[..]);
        assert_eq!(p.encoded_len().unwrap(), expected.len());
        let back = TransportParams::read(&mut Reader::new(Bytes::from(expected))).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            decode(&[5, 0x08, 3, 1, 2, 3]),
            Err(Violation::InvalidTransportParameter { id: 0x08 }.into())
        );
    }

    #[test]
    fn known_parameters_are_checked() {
        // max_datagram_size below 1200.
        assert_eq!(
            decode(&[4, 0x04, 2, 0x43, 0xe8]),
            Err(Violation::InvalidTransportParameter { id: 4 }.into())
        );
        // A value with trailing bytes inside its TLV.
        assert_eq!(
            decode(&[4, 0x01, 2, 5, 0]),
            Err(Violation::InvalidTransportParameter { id: 1 }.into())
        );
        // A length prefix beyond the datagram.
        assert_eq!(
            decode(&[9, 0x01]),
            Err(DecodeError::Truncated(Field::TransportParameters))
        );
    }
}
