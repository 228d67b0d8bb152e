//! What a RECEIPT, RECEIPT_FAILED or RECEIPT_RUN frame says (spec §4.17, §8 Delivery): the
//! outcome of a stream at its final receiver, and the codes weir itself gives a failure.
//! Values of the wire format; the exchange that carries them is module `delivery`'s.

use super::cursor::Reader;
use super::error::{DecodeError, Field, Limit, Violation};
use super::ids::StreamId;
use super::MAX_RECEIPT_RUN;

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
        /// Why: [`PIPE_BROKEN`](crate::PIPE_BROKEN) (a relay lost the next hop after taking
        /// every byte), [`VERIFICATION_FAILED`], or the code with which the final
        /// receiver's application stopped reading.
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

/// What a RECEIPT_RUN frame says (capability RECEIPT_RUNS, spec §4.17): the streams `first`,
/// and the `more` after it opened by the same side (ids `first + 2`, `first + 4`, ...),
/// were all delivered, through `relays` relays. One frame for what would be `more + 1`
/// RECEIPTs: a receiver of many small messages owes a receipt a message, most of them in
/// such runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptRun {
    /// The run's first stream.
    pub first: StreamId,
    /// Streams in the run after the first.
    pub more: u64,
    /// Relays the streams passed through (0: the peer is the final receiver).
    pub relays: u64,
}

impl ReceiptRun {
    /// Streams the run answers for: `more + 1`.
    pub fn streams(&self) -> u64 {
        self.more.saturating_add(1)
    }

    /// The streams the run answers for, in order.
    pub fn ids(&self) -> impl Iterator<Item = StreamId> {
        let first = self.first.0;
        (0..=self.more).map(move |i| StreamId(first + 2 * i))
    }

    /// What keeps the run off the wire: more streams than a packet's runs may answer for,
    /// or a last id past 2^62 - 1 (spec §4.17).
    pub(crate) fn check(&self) -> Result<(), Violation> {
        if self.more >= MAX_RECEIPT_RUN {
            return Err(Violation::LimitExceeded {
                limit: Limit::ReceiptRun,
                value: self.streams(),
                max: MAX_RECEIPT_RUN,
            });
        }
        let last = self.first.0.saturating_add(2 * self.more);
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
            more: r.varint(Field::RunLength)?,
            relays: r.varint(Field::Relays)?,
        };
        run.check()?;
        Ok(run)
    }
}
