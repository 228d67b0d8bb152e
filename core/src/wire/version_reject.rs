//! VERSION_REJECT, the one datagram whose format every version shares (spec/protocol.md §3.6).

use core::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::cursor::{Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::header::{Invariant, FLAG_LONG};
use super::ids::ConnectionId;
use super::params::VersionRange;
use super::trailer::{check_size, check_trailer, trailer_crc};
use super::{MAX_VERSION_RANGES, TRAILER_LEN};

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
        check_trailer(&datagram, invariant.len(), None)?;
        if flags != FLAG_LONG {
            return Err(DecodeError::ReservedBits(flags));
        }
        let count = usize::from(r.u8(Field::VersionCount)?);
        check_count(count)?;
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
        check_count(count)?;
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
        let crc = trailer_crc(None, w.written());
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

/// spec/protocol.md §3.6: a VERSION_REJECT lists 1 to [`MAX_VERSION_RANGES`] ranges.
fn check_count(count: usize) -> Result<(), Violation> {
    if count == 0 || count > MAX_VERSION_RANGES {
        return Err(Violation::LimitExceeded {
            limit: Limit::VersionRanges,
            value: count as u64,
            max: MAX_VERSION_RANGES as u64,
        });
    }
    Ok(())
}
