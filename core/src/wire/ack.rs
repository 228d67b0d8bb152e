//! The ACK frame (spec/protocol.md §4.3) and its ranges.
//!
//! A decoded ACK keeps its ranges as the validated bytes of the datagram and parses them
//! again when iterated, so decoding an ACK never allocates, however many ranges it carries.
//! An ACK built locally holds its ranges in a small vector. Either way the ranges are valid
//! by construction: 1 to [`MAX_ACK_RANGES`], highest first, each `smallest <= largest`,
//! separated by at least one unacknowledged packet number, none below 0.

use core::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::cursor::{varint_len, Reader, Writer};
use super::error::{DecodeError, EncodeError, Field, Limit, Violation};
use super::varint;
use super::MAX_ACK_RANGES;

/// One range of acknowledged packet numbers, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AckRange {
    /// Lowest packet number acknowledged by this range.
    pub smallest: u64,
    /// Highest packet number acknowledged by this range.
    pub largest: u64,
}

/// The ranges of an ACK frame, highest first.
#[derive(Clone, Debug)]
pub struct AckRanges(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// As received: the first-range varint and the (gap, length) pairs, already validated.
    Wire {
        largest: u64,
        count: usize,
        encoded: Bytes,
    },
    /// Built locally.
    Owned(SmallVec<[AckRange; 4]>),
}

impl AckRanges {
    /// The ranges, highest first; or the violation if they are empty, more than
    /// [`MAX_ACK_RANGES`], out of order, touching, or beyond 2^62 - 1.
    pub fn new(ranges: impl IntoIterator<Item = AckRange>) -> Result<Self, Violation> {
        let mut out = SmallVec::<[AckRange; 4]>::new();
        for r in ranges {
            let below_prev = out
                .last()
                .is_none_or(|p: &AckRange| r.largest.checked_add(2).is_some_and(|l| l <= p.smallest));
            if r.smallest > r.largest || r.largest > varint::MAX || !below_prev {
                return Err(Violation::InvalidAckRange);
            }
            if out.len() == MAX_ACK_RANGES {
                return Err(Violation::LimitExceeded {
                    limit: Limit::AckRanges,
                    value: MAX_ACK_RANGES as u64 + 1,
                    max: MAX_ACK_RANGES as u64,
                });
            }
            out.push(r);
        }
        if out.is_empty() {
            return Err(Violation::InvalidAckRange);
        }
        Ok(AckRanges(Repr::Owned(out)))
    }

    /// The single range `smallest..=largest`.
    pub fn single(smallest: u64, largest: u64) -> Result<Self, Violation> {
        Self::new([AckRange { smallest, largest }])
    }

    /// How many ranges.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Wire { count, .. } => *count,
            Repr::Owned(v) => v.len(),
        }
    }

    /// Always false: an ACK has at least one range.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The largest packet number acknowledged.
    pub fn largest(&self) -> u64 {
        match &self.0 {
            Repr::Wire { largest, .. } => *largest,
            // Never empty, by construction.
            Repr::Owned(v) => v.first().map_or(0, |r| r.largest),
        }
    }

    /// The ranges, highest first.
    pub fn iter(&self) -> AckRangeIter<'_> {
        AckRangeIter(match &self.0 {
            Repr::Wire {
                largest,
                count,
                encoded,
            } => IterRepr::Wire {
                rest: encoded,
                next_largest: Some(*largest),
                left: *count,
            },
            Repr::Owned(v) => IterRepr::Owned(v.iter()),
        })
    }

    /// Reads `largest`, then the range count and ranges, checking them all.
    fn read(r: &mut Reader, largest: u64) -> Result<Self, DecodeError> {
        let extra = r.varint(Field::AckRangeCount)?;
        if extra >= MAX_ACK_RANGES as u64 {
            return Err(Violation::LimitExceeded {
                limit: Limit::AckRanges,
                value: extra.saturating_add(1),
                max: MAX_ACK_RANGES as u64,
            }
            .into());
        }
        let extra = extra as usize;
        let start = r.clone();
        let first_len = r.varint(Field::AckRange)?;
        let mut smallest = largest.checked_sub(first_len).ok_or(Violation::InvalidAckRange)?;
        for _ in 0..extra {
            let gap = r.varint(Field::AckRange)?;
            let len = r.varint(Field::AckRange)?;
            let hi = smallest
                .checked_sub(gap)
                .and_then(|v| v.checked_sub(2))
                .ok_or(Violation::InvalidAckRange)?;
            smallest = hi.checked_sub(len).ok_or(Violation::InvalidAckRange)?;
        }
        let encoded = start.slice_rest(0, start.remaining() - r.remaining());
        Ok(AckRanges(Repr::Wire {
            largest,
            count: extra + 1,
            encoded,
        }))
    }

    fn encoded_len(&self) -> Result<usize, Violation> {
        let count = varint_len(self.len() as u64 - 1)?;
        let ranges = match &self.0 {
            Repr::Wire { encoded, .. } => encoded.len(),
            Repr::Owned(v) => {
                let mut len = varint_len(first_len(v))?;
                for (gap, l) in pairs(v) {
                    len += varint_len(gap)? + varint_len(l)?;
                }
                len
            }
        };
        Ok(count + ranges)
    }

    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.varint(self.len() as u64 - 1)?;
        match &self.0 {
            // Validated and canonical (shortest varints) when decoded: written back as is.
            Repr::Wire { encoded, .. } => w.put(encoded),
            Repr::Owned(v) => {
                w.varint(first_len(v))?;
                for (gap, l) in pairs(v) {
                    w.varint(gap)?;
                    w.varint(l)?;
                }
                Ok(())
            }
        }
    }
}

/// Length of the first (highest) range, as the wire counts it.
fn first_len(ranges: &[AckRange]) -> u64 {
    ranges.first().map_or(0, |r| r.largest - r.smallest)
}

/// (gap, length) pairs after the first range, as RFC 9000 §19.3.1 encodes them. Ranges
/// checked by [`AckRanges::new`] descend with gaps, so the subtractions cannot underflow.
fn pairs(ranges: &[AckRange]) -> impl Iterator<Item = (u64, u64)> + '_ {
    ranges
        .iter()
        .zip(ranges.iter().skip(1))
        .map(|(above, below)| (above.smallest - below.largest - 2, below.largest - below.smallest))
}

impl PartialEq for AckRanges {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for AckRanges {}

impl<'a> IntoIterator for &'a AckRanges {
    type Item = AckRange;
    type IntoIter = AckRangeIter<'a>;

    fn into_iter(self) -> AckRangeIter<'a> {
        self.iter()
    }
}

/// `100..=120,5..=9`.
impl fmt::Display for AckRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}..={}", r.smallest, r.largest)?;
        }
        Ok(())
    }
}

/// Iterator over [`AckRanges`], highest first.
#[derive(Clone, Debug)]
pub struct AckRangeIter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Wire {
        rest: &'a [u8],
        /// Largest of the next range: the frame's largest, then computed from each gap.
        next_largest: Option<u64>,
        left: usize,
    },
    Owned(core::slice::Iter<'a, AckRange>),
}

impl Iterator for AckRangeIter<'_> {
    type Item = AckRange;

    fn next(&mut self) -> Option<AckRange> {
        match &mut self.0 {
            IterRepr::Owned(it) => it.next().copied(),
            IterRepr::Wire {
                rest,
                next_largest,
                left,
            } => {
                // The bytes were validated by `AckRanges::read`: every varint is there and
                // no subtraction underflows. Were that ever wrong, iteration ends early.
                let mut next = || -> Option<u64> {
                    let (v, n) = varint::decode(rest).ok()?;
                    *rest = rest.get(n..)?;
                    Some(v)
                };
                *left = left.checked_sub(1)?;
                let largest = next_largest.take()?;
                let smallest = largest.checked_sub(next()?)?;
                if *left > 0 {
                    let gap = next()?;
                    *next_largest = smallest.checked_sub(gap)?.checked_sub(2);
                }
                Some(AckRange { smallest, largest })
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterRepr::Owned(it) => it.len(),
            IterRepr::Wire { left, .. } => *left,
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for AckRangeIter<'_> {}

/// ACK (spec/protocol.md §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Acknowledged ranges, highest first.
    pub ranges: AckRanges,
    /// Microseconds between receiving the largest acknowledged packet and sending this ACK.
    pub ack_delay: u64,
    /// The acknowledger's receive timestamp of the largest acknowledged packet minus that
    /// packet's sender timestamp, modulo 2^32: a one-way delay sample offset by the two
    /// clocks' difference (spec/protocol.md §3.4, §4.3; for LEDBAT).
    pub one_way_delay: u32,
}

impl Ack {
    /// The largest packet number acknowledged.
    pub fn largest(&self) -> u64 {
        self.ranges.largest()
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let largest = r.varint(Field::AckLargest)?;
        let ack_delay = r.varint(Field::AckDelay)?;
        let one_way_delay = r.u32(Field::AckOneWayDelay)?;
        let ranges = AckRanges::read(r, largest)?;
        Ok(Ack {
            ranges,
            ack_delay,
            one_way_delay,
        })
    }

    pub(crate) fn encoded_len(&self) -> Result<usize, Violation> {
        Ok(varint_len(self.largest())? + varint_len(self.ack_delay)? + 4 + self.ranges.encoded_len()?)
    }

    pub(crate) fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.varint(self.largest())?;
        w.varint(self.ack_delay)?;
        w.u32(self.one_way_delay)?;
        self.ranges.write(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn r(smallest: u64, largest: u64) -> AckRange {
        AckRange { smallest, largest }
    }

    #[test]
    fn ranges_must_descend_with_gaps() {
        assert!(AckRanges::new([r(10, 12), r(5, 8)]).is_ok());
        // Touching ranges (9 missing nothing between 9 and 10) are one range, not two.
        assert_eq!(
            AckRanges::new([r(10, 12), r(5, 9)]),
            Err(Violation::InvalidAckRange)
        );
        assert_eq!(
            AckRanges::new([r(5, 8), r(10, 12)]),
            Err(Violation::InvalidAckRange)
        );
        assert_eq!(AckRanges::new([r(3, 2)]), Err(Violation::InvalidAckRange));
        assert_eq!(AckRanges::new([]), Err(Violation::InvalidAckRange));
        assert_eq!(
            AckRanges::single(0, varint::MAX + 1),
            Err(Violation::InvalidAckRange)
        );
        let many = (0..=MAX_ACK_RANGES as u64).rev().map(|i| r(3 * i, 3 * i));
        assert!(matches!(
            AckRanges::new(many),
            Err(Violation::LimitExceeded { .. })
        ));
    }

    #[test]
    fn decoded_ranges_equal_built_ones_and_re_encode_identically() {
        let built = Ack {
            ranges: AckRanges::new([r(100, 120), r(5, 9), r(2, 3)]).unwrap(),
            ack_delay: 250,
            one_way_delay: 7,
        };
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        built.write(&mut w).unwrap();
        let len = w.position();
        assert_eq!(built.encoded_len(), Ok(len));
        let decoded = Ack::read(&mut Reader::new(Bytes::copy_from_slice(&buf[..len]))).unwrap();
        assert!(matches!(decoded.ranges.0, Repr::Wire { .. }));
        assert_eq!(decoded, built);
        assert_eq!(
            decoded.ranges.iter().collect::<Vec<_>>(),
            [r(100, 120), r(5, 9), r(2, 3)]
        );
        assert_eq!(decoded.ranges.iter().len(), 3);
        let mut again = [0u8; 64];
        let mut w = Writer::new(&mut again);
        decoded.write(&mut w).unwrap();
        assert_eq!(w.written(), &buf[..len]);
        assert_eq!(alloc::format!("{}", decoded.ranges), "100..=120,5..=9,2..=3");
    }
}
