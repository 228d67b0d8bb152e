//! Variable-length integers (spec/protocol.md §2.1).
//!
//! The encoding of RFC 9000 §16: the two most significant bits of the first byte give the
//! length (1, 2, 4 or 8 bytes), the remaining bits hold the value in network byte order, so
//! values run from 0 to 2^62-1. weir adds one rule: an encoder MUST use the shortest form and
//! a decoder rejects any other ([`DecodeError::NonMinimalVarint`]). Every datagram therefore
//! has exactly one encoding, and a decoded packet re-encodes to the same bytes.
//!
//! [`DecodeError::NonMinimalVarint`]: super::DecodeError::NonMinimalVarint

/// The largest value a varint holds: 2^62 - 1.
pub const MAX: u64 = (1 << 62) - 1;

/// How many bytes `value` takes on the wire, or `None` if it exceeds [`MAX`].
pub const fn encoded_len(value: u64) -> Option<usize> {
    if value < (1 << 6) {
        Some(1)
    } else if value < (1 << 14) {
        Some(2)
    } else if value < (1 << 30) {
        Some(4)
    } else if value <= MAX {
        Some(8)
    } else {
        None
    }
}

/// Encodes `value` at the start of `out`; returns the bytes written, or `None` if `value`
/// exceeds [`MAX`] or `out` is too short (nothing is written then).
pub fn encode(value: u64, out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(value)?;
    let dst = out.get_mut(..len)?;
    match len {
        1 => dst.copy_from_slice(&[value as u8]),
        2 => dst.copy_from_slice(&((value as u16) | 0x4000).to_be_bytes()),
        4 => dst.copy_from_slice(&((value as u32) | 0x8000_0000).to_be_bytes()),
        _ => dst.copy_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
    }
    Some(len)
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// `input` ends before the varint does.
    Truncated,
    /// A longer form than the value needs (weir's rule: only the shortest is valid).
    NonMinimal,
}

/// The length of the varint whose first byte is `first`: 1, 2, 4 or 8 bytes (its top two
/// bits say which).
pub fn len_of(first: u8) -> usize {
    1 << (first >> 6)
}

/// Decodes the varint at the start of `input`; returns the value and its length. Inlined
/// across codegen units: every frame read calls it (module `stream::by_offset` says why).
#[inline]
pub fn decode(input: &[u8]) -> Result<(u64, usize), VarintError> {
    // One arm a length, each reading its bytes as one big-endian word: most of a packet's
    // varints are one byte (frame types, stream ids, small lengths), read without a loop.
    let first = *input.first().ok_or(VarintError::Truncated)?;
    let (value, len, floor) = match first >> 6 {
        0 => return Ok((u64::from(first), 1)),
        1 => (u64::from(u16::from_be_bytes(word(input)?) & 0x3fff), 2, 1 << 6),
        2 => (
            u64::from(u32::from_be_bytes(word(input)?) & 0x3fff_ffff),
            4,
            1 << 14,
        ),
        _ => (u64::from_be_bytes(word(input)?) & MAX, 8, 1 << 30),
    };
    // The smallest value that needs this length; anything below has a shorter form.
    if value < floor {
        return Err(VarintError::NonMinimal);
    }
    Ok((value, len))
}

/// The first `N` bytes of `input`.
fn word<const N: usize>(input: &[u8]) -> Result<[u8; N], VarintError> {
    input.first_chunk::<N>().copied().ok_or(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9000_appendix_a1_examples() {
        // RFC 9000 §A.1 sample values (the 8-, 4- and 2-byte ones are minimal encodings).
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(decode(bytes), Ok((value, bytes.len())));
            let mut out = [0u8; 8];
            assert_eq!(encode(value, &mut out), Some(bytes.len()));
            assert_eq!(&out[..bytes.len()], bytes);
        }
    }

    #[test]
    fn non_minimal_forms_are_rejected() {
        // RFC 9000's two-byte encoding of 37 is legal in QUIC and illegal in weir.
        assert_eq!(decode(&[0x40, 0x25]), Err(VarintError::NonMinimal));
        assert_eq!(decode(&[0x80, 0, 0x3f, 0xff]), Err(VarintError::NonMinimal));
        assert_eq!(
            decode(&[0xc0, 0, 0, 0, 0x3f, 0xff, 0xff, 0xff]),
            Err(VarintError::NonMinimal)
        );
    }

    #[test]
    fn boundaries() {
        for (value, len) in [
            (0, 1),
            (63, 1),
            (64, 2),
            (16_383, 2),
            (16_384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (MAX, 8),
        ] {
            assert_eq!(encoded_len(value), Some(len), "{value}");
            let mut out = [0u8; 8];
            assert_eq!(encode(value, &mut out), Some(len));
            assert_eq!(decode(&out[..len]), Ok((value, len)));
        }
        assert_eq!(encoded_len(MAX + 1), None);
        assert_eq!(encode(MAX + 1, &mut [0u8; 8]), None);
    }

    /// The word-at-a-time reader agrees with the definition (the value's bits after the
    /// two length bits, big-endian; the shortest form only) on every two-byte prefix, with
    /// each length's longer forms built around it.
    #[test]
    fn the_reader_agrees_with_the_definition() {
        fn by_definition(input: &[u8]) -> Result<(u64, usize), VarintError> {
            let len = len_of(*input.first().ok_or(VarintError::Truncated)?);
            let bytes = input.get(..len).ok_or(VarintError::Truncated)?;
            let value = bytes[1..]
                .iter()
                .fold(u64::from(bytes[0] & 0x3f), |v, b| (v << 8) | u64::from(*b));
            match encoded_len(value) == Some(len) {
                true => Ok((value, len)),
                false => Err(VarintError::NonMinimal),
            }
        }
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for tail in [&[][..], &[0][..], &[0xff, 1][..], &[7, 0, 0, 0, 0, 9][..]] {
                    let mut input = alloc::vec![a, b];
                    input.extend_from_slice(tail);
                    for cut in 0..=input.len() {
                        assert_eq!(
                            decode(&input[..cut]),
                            by_definition(&input[..cut]),
                            "{:x?}",
                            &input[..cut]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn truncation_and_short_buffers() {
        assert_eq!(decode(&[]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0x7b]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0xc2, 0x19, 0x7c]), Err(VarintError::Truncated));
        let mut out = [0u8; 1];
        assert_eq!(encode(64, &mut out), None);
        assert_eq!(out, [0]);
    }
}
