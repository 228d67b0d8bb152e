//! What a RECEIPT, RECEIPT_FAILED or RECEIPT_RUN frame says (spec §4.17, §8 Delivery): the
//! outcome of a stream at its final receiver, and the codes weir itself gives a failure.
//! Values of the wire format; the exchange that carries them is module `delivery`'s.

use super::cursor::Reader;
use super::error::{DecodeError, Field, Limit, Violation};
use super::ids::StreamId;

/// The stream error code a pipe resets targets with, or stops its source with, when the
/// other side of the pipe failed without a code of its own (spec §8, Piping).
pub const PIPE_BROKEN: u64 = 0x7069_7065;

/// The code a RECEIPT carries when the final receiver read every byte but they did not hash
/// to the digest the sender attached (`0x76657269`, "veri").
pub const VERIFICATION_FAILED: u64 = 0x7665_7269;

/// The final word on a stream we sent (spec §8, Delivery): what the final receiver did with
/// it, through however many relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The final receiver read every byte, and they matched the digest if one was attached.
    Delivered {
        /// Relays the stream passed through (0: the peer is the final receiver).
        relays: u64,
    },
    /// The stream did not reach its final receiver whole.
    Failed {
        /// Why: [`PIPE_BROKEN`] (a relay lost its next hop),
        /// [`VERIFICATION_FAILED`], or the code with which the final receiver's
        /// application stopped reading (before every byte reached it, too, behind a relay).
        code: u64,
        /// Relays between us and the node that failed (0: the peer itself).
        relays: u64,
    },
}

impl core::fmt::Display for Delivery {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Delivery::Delivered { relays: 0 } => f.write_str("delivered"),
            Delivery::Delivered { relays } => write!(f, "delivered through {relays} relays"),
            Delivery::Failed { code, relays } => {
                match *code {
                    PIPE_BROKEN => f.write_str("not delivered: a relay lost its next hop")?,
                    VERIFICATION_FAILED => {
                        f.write_str("not delivered: the bytes did not match the sender's digest")?
                    }
                    code => write!(f, "not delivered: the receiver stopped reading (code {code})")?,
                }
                match relays {
                    0 => Ok(()),
                    n => write!(f, " ({n} relays on)"),
                }
            }
        }
    }
}

/// What a RECEIPT_RUN frame says (capability RECEIPT_RUNS, spec §4.17): the stream `first`,
/// and each of the next 62 streams opened by the same side whose bit is set in `also`
/// (bit `i`: stream `first + 2 × (i + 1)`), were all delivered, through `relays` relays.
/// One frame for what would be as many RECEIPTs: a receiver of many small messages owes a
/// receipt a message, and reads them, and so owes them, not quite in order (the messages
/// that came whole in one datagram before those that spanned two), hence a set, not a
/// count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptRun {
    /// The run's first stream.
    pub first: StreamId,
    /// The streams after it the run answers for too: bit `i` for stream
    /// `first + 2 × (i + 1)` (a varint: bits 0 to 61).
    pub also: u64,
    /// Relays the streams passed through (0: the peer is the final receiver).
    pub relays: u64,
}

impl ReceiptRun {
    /// The streams after the first a set can name: one a bit of `also`, bits 0 to 61, so
    /// that `also` is a varint (spec §4.17).
    pub(crate) const ALSO_BITS: u64 = 62;

    /// Streams the run answers for: `first` and one a bit set in `also`.
    pub fn streams(&self) -> u64 {
        1 + u64::from(self.also.count_ones())
    }

    /// The streams the run answers for, in order.
    pub fn ids(&self) -> impl Iterator<Item = StreamId> {
        Self::ids_of(self.first, self.also)
    }

    /// `first` and the streams `also` names, in order: a set's streams, for a sender that
    /// keeps them as those two numbers. (One closure, not `once(..).chain(..)`: a lone
    /// receipt, a round trip's, walks no chain.)
    pub(crate) fn ids_of(first: StreamId, mut also: u64) -> impl Iterator<Item = StreamId> {
        let mut next = Some(first);
        core::iter::from_fn(move || {
            let id = next?;
            next = (also != 0).then(|| {
                let i = u64::from(also.trailing_zeros());
                also &= also - 1;
                StreamId(first.0 + 2 * (i + 1))
            });
            Some(id)
        })
    }

    /// The bit of `also` that names stream `id` in a set whose first stream is `first`:
    /// `id` is one of the same side's next 62 streams after it. `None` otherwise.
    pub(crate) fn bit_of(first: StreamId, id: StreamId) -> Option<u64> {
        let step = id.0.checked_sub(first.0)?;
        (step % 2 == 0 && (2..=2 * Self::ALSO_BITS).contains(&step)).then(|| 1 << (step / 2 - 1))
    }

    /// What keeps the run off the wire: `also` too large for a varint, or a last id past
    /// 2^62 - 1 (spec §4.17).
    pub(crate) fn check(&self) -> Result<(), Violation> {
        if self.also > super::varint::MAX {
            return Err(Violation::LimitExceeded {
                limit: Limit::Varint,
                value: self.also,
                max: super::varint::MAX,
            });
        }
        let after = 64 - u64::from(self.also.leading_zeros());
        let last = self.first.0.saturating_add(2 * after);
        if last > super::varint::MAX {
            return Err(Violation::LimitExceeded {
                limit: Limit::ReceiptRun,
                value: last,
                max: super::varint::MAX,
            });
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let run = ReceiptRun {
            first: StreamId(r.varint(Field::StreamId)?),
            also: r.varint(Field::RunBits)?,
            relays: r.varint(Field::Relays)?,
        };
        run.check()?;
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_names_its_first_stream_and_those_its_bits_set() {
        let run = ReceiptRun {
            first: StreamId(4),
            also: 0b1010_0001,
            relays: 0,
        };
        let ids: alloc::vec::Vec<u64> = run.ids().map(|id| id.0).collect();
        assert_eq!(ids, [4, 6, 16, 20]);
        assert_eq!(run.streams(), 4);
        assert_eq!(run.check(), Ok(()));
        let far = ReceiptRun {
            first: StreamId(super::super::varint::MAX - 4),
            also: 0b100,
            relays: 0,
        };
        assert!(far.check().is_err(), "its last stream is past 2^62 - 1");
        let bit = |id| ReceiptRun::bit_of(StreamId(4), StreamId(id));
        assert_eq!(
            [bit(6), bit(20), bit(128)],
            [Some(1), Some(1 << 7), Some(1 << 61)]
        );
        assert_eq!(
            [bit(4), bit(5), bit(2), bit(130)],
            [None; 4],
            "itself, the other side, before, too far"
        );
    }
}
