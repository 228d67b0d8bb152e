//! Bounds-checked reading from a datagram and writing into a caller's buffer.
//!
//! Every read names the [`Field`] it is reading so that a short or malformed datagram
//! becomes a precise [`DecodeError`]; no read can panic. Byte runs come out as
//! [`Bytes`] slices of the datagram (a reference count, not a copy).

use bytes::Bytes;

use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::varint::{self, VarintError};

/// Reads fields from a datagram, front to back.
#[derive(Clone)]
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    /// [`payload`](Self::payload)s are checked, not sliced out (a packet's validation).
    shallow: bool,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader {
            buf,
            pos: 0,
            shallow: false,
        }
    }

    /// A reader of `buf` from byte `pos` on.
    pub(crate) fn at(buf: Bytes, pos: usize) -> Self {
        Reader {
            buf,
            pos,
            shallow: false,
        }
    }

    /// From here on, [`payload`](Self::payload)s come out empty, for a walk that checks a
    /// packet's frames and drops them: a slice of the datagram is a reference count changed
    /// twice, one of the costs of each packet received.
    pub(crate) fn set_shallow(&mut self) {
        self.shallow = true;
    }

    /// How many bytes were read.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The whole buffer read from, given back.
    pub(crate) fn into_inner(self) -> Bytes {
        self.buf
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize, field: Field) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated(field))?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated(field))?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        let [byte] = self.array(field)?;
        Ok(byte)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: Field) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn varint(&mut self, field: Field) -> Result<u64, DecodeError> {
        match varint::decode(self.rest()) {
            Ok((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            Err(VarintError::Truncated) => Err(DecodeError::Truncated(field)),
            Err(VarintError::NonMinimal) => Err(DecodeError::NonMinimalVarint(field)),
        }
    }

    /// A varint that is a length, checked against `max` before anything is read or sized
    /// by it, so a peer's claim never drives an allocation or a long loop.
    pub(crate) fn length(&mut self, field: Field, limit: Limit, max: usize) -> Result<usize, DecodeError> {
        let value = self.varint(field)?;
        if value > max as u64 {
            return Err(Violation::LimitExceeded {
                limit,
                value,
                max: max as u64,
            }
            .into());
        }
        Ok(value as usize)
    }

    /// A varint length followed by that many bytes, as a slice of the datagram. A length
    /// past the end of the datagram is truncation, whatever its size.
    pub(crate) fn prefixed(&mut self, field: Field) -> Result<Bytes, DecodeError> {
        let len = self.prefix(field)?;
        self.bytes(len, field)
    }

    /// A varint length followed by that many bytes of a frame's
    /// [`payload`](Self::payload), and the length (which a shallow reader's empty payload
    /// does not tell).
    pub(crate) fn prefixed_payload(&mut self, field: Field) -> Result<(Bytes, usize), DecodeError> {
        let len = self.prefix(field)?;
        Ok((self.payload(len, field)?, len))
    }

    /// A varint length prefix. One no buffer could hold is truncation, whatever its size.
    fn prefix(&mut self, field: Field) -> Result<usize, DecodeError> {
        let len = self.varint(field)?;
        usize::try_from(len).map_err(|_| DecodeError::Truncated(field))
    }

    /// The next `n` bytes, a frame's payload that nothing in the codec reads (stream data, a
    /// datagram's): a slice sharing the datagram's memory, or, from a
    /// [`shallow`](Self::shallow) reader, empty once checked to be there.
    pub(crate) fn payload(&mut self, n: usize, field: Field) -> Result<Bytes, DecodeError> {
        if self.shallow {
            self.take(n, field)?;
            return Ok(Bytes::new());
        }
        self.bytes(n, field)
    }

    /// The next `n` bytes as a slice sharing the datagram's memory.
    pub(crate) fn bytes(&mut self, n: usize, field: Field) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n, field)?;
        Ok(self.buf.slice(start..self.pos))
    }

    /// Bytes `start..end` of the unread part, as a slice (without consuming them).
    pub(crate) fn slice_rest(&self, start: usize, end: usize) -> Bytes {
        self.buf.slice(self.pos + start..self.pos + end)
    }

    /// Consumes a run of zero bytes; returns its length.
    pub(crate) fn zeros(&mut self) -> usize {
        // A word at a time: padding fills most of a padded datagram, and a byte at a time
        // was a comparison per byte (each a call into the hooks, under a fuzzer).
        let rest = self.rest();
        let words = rest
            .chunks_exact(8)
            .take_while(|w| w.iter().fold(0, |acc, b| acc | b) == 0)
            .count();
        let n = 8 * words + rest.iter().skip(8 * words).take_while(|b| **b == 0).count();
        self.pos += n;
        n
    }
}

/// Writes fields into a caller-supplied buffer, front to back. Every write is checked;
/// a write that does not fit leaves the buffer's unwritten part untouched.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Forgets what was written past `pos` (a frame that did not fit, written in part).
    pub(crate) fn rewind(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    pub(crate) fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or_default()
    }

    /// The bytes written so far, and the rest of the buffer.
    pub(crate) fn split_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        self.buf.split_at_mut(self.pos)
    }

    fn space(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let available = self.remaining();
        let dst = self
            .buf
            .get_mut(self.pos..)
            .and_then(|rest| rest.get_mut(..n))
            .ok_or(EncodeError::BufferTooSmall { needed: n, available })?;
        self.pos += n;
        Ok(dst)
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.space(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn varint(&mut self, v: u64) -> Result<(), EncodeError> {
        let len = varint_len(v)?;
        let dst = self.space(len)?;
        // Cannot fail: the length was computed for this value and the space reserved.
        let _ = varint::encode(v, dst);
        Ok(())
    }

    pub(crate) fn zeros(&mut self, n: usize) -> Result<(), EncodeError> {
        self.space(n)?.fill(0);
        Ok(())
    }
}

/// The `N` bytes of `datagram` from `start`, or `Truncated(field)` if it ends sooner: a
/// fixed-size field read in place, where a [`Reader`] (which owns its bytes) is not at hand.
pub(crate) fn bytes_at<const N: usize>(
    datagram: &[u8],
    start: usize,
    field: Field,
) -> Result<[u8; N], DecodeError> {
    datagram
        .get(start..)
        .and_then(<[u8]>::first_chunk)
        .copied()
        .ok_or(DecodeError::Truncated(field))
}

/// Length of `v` as a varint, or the typed error for a value above 2^62 - 1.
pub(crate) fn varint_len(v: u64) -> Result<usize, Violation> {
    varint::encoded_len(v).ok_or(Violation::LimitExceeded {
        limit: Limit::Varint,
        value: v,
        max: varint::MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::Reader;
    use crate::wire::error::{DecodeError, Field};

    #[test]
    fn a_shallow_reader_checks_a_payload_without_slicing_it() {
        let buf = bytes::Bytes::from_static(b"abcdef");
        let mut deep = Reader::new(buf.clone());
        let mut shallow = Reader::new(buf);
        shallow.set_shallow();
        assert_eq!(&deep.payload(4, Field::StreamData).unwrap()[..], b"abcd");
        assert!(shallow.payload(4, Field::StreamData).unwrap().is_empty());
        // Both moved past it alike, and both refuse one past the end.
        assert_eq!((deep.remaining(), shallow.remaining()), (2, 2));
        for r in [&mut deep, &mut shallow] {
            assert_eq!(
                r.payload(3, Field::StreamData),
                Err(DecodeError::Truncated(Field::StreamData))
            );
        }
        // A reader started part way reads from there.
        let mut at = Reader::at(bytes::Bytes::from_static(b"abcdef"), 4);
        assert_eq!((at.position(), at.remaining()), (4, 2));
        assert_eq!(&at.payload(2, Field::StreamData).unwrap()[..], b"ef");
    }

    #[test]
    fn zeros_stops_at_the_first_other_byte_across_words() {
        for len in [0, 1, 7, 8, 9, 16, 17, 40] {
            for stop in 0..=len {
                let mut buf = alloc::vec![0u8; len];
                if let Some(b) = buf.get_mut(stop) {
                    *b = 0x80;
                }
                let mut r = Reader::new(bytes::Bytes::from(buf));
                assert_eq!(r.zeros(), stop, "{len} bytes, non-zero at {stop}");
                assert_eq!(r.rest().len(), len - stop);
            }
        }
    }
}
