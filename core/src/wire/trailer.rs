//! The datagram's size limit (spec §3.7) and its CRC-32 trailer (spec §3.5), shared by every
//! packet codec. (The trailer guards against corruption only; a stream's SHA-256 digest is
//! module `verify`'s, and version 2's authentication the AEAD tag's.)

use super::error::{DecodeError, Field, Limit, Violation};
use super::{MAX_DATAGRAM_SIZE, TRAILER_LEN};

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

/// The trailer's CRC-32 (spec/protocol.md §3.5): over the full packet number (8
/// bytes, big-endian; absent for VERSION_REJECT) followed by every byte before the trailer.
pub(crate) fn trailer_crc(number: Option<u64>, content: &[u8]) -> u32 {
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
    let computed = trailer_crc(number, content);
    if carried != computed {
        return Err(DecodeError::ChecksumMismatch { carried, computed });
    }
    Ok(content_len)
}
