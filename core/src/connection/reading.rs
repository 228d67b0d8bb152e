//! Where the application is with a stream the peer sends (spec/protocol.md §8, Streams and
//! credit): not yet told of it, reading it, or done with it; declared as a table
//! ([`TRANSITIONS`]) like the connection's lifecycle.
//!
//! Input: a [`ReadStep`]: the stream's opening frame arrived (offset 0, with its header),
//! the application stopped it, or the pipe of a stream the application also reads (a fork)
//! stopped it. Output: the next [`Reading`]. What arrives and what can be
//! read is the receive stream's (`stream::recv`, reassembly and credit); this decides only
//! what the application has been told and whether it still wants the bytes, and
//! `spec/state-machines.md` shows the same table, checked by a test.

use super::gathered::Gathered;

/// The application's side of a stream the peer sends.
#[derive(Debug, Default)]
pub(super) enum Reading {
    /// Its opening frame has not arrived: the header is unknown and the application has not
    /// been told of it (the stream exists because the peer opened a later one).
    #[default]
    Unannounced,
    /// `StreamOpened` was reported; the application reads it.
    Open {
        /// A `StreamReadable` is outstanding: not sent again until the application reads.
        readable_signaled: bool,
        /// Offered to `accept_stream` (in the connection's inbox), not taken yet.
        offered: bool,
        /// Bytes gathered so far for a whole-message read.
        gathered: Gathered,
        /// A message read took it and gathers its bytes as they arrive, accepting a message
        /// of at most this many bytes.
        gathering: Option<u64>,
    },
    /// The application stopped it (STOP_SENDING sent) before its opening frame arrived.
    StoppedUnannounced,
    /// The application stopped it: what arrives is dropped and its credit released.
    Stopped,
    /// The pipe of a stream the application reads too (a fork, `LocalRead::Keep`) failed
    /// and stopped it (PIPE_BROKEN): what arrives is dropped, as when stopped; the
    /// application, told at once, is told again at its next read, which makes it
    /// `Stopped` (the stream then ends once nothing more of it can come). The sender's
    /// reset in answer changes nothing that the application sees.
    Broken,
}

/// A state's name, without its data: the rows of [`TRANSITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadPhase {
    Unannounced,
    Open,
    StoppedUnannounced,
    Stopped,
    Broken,
}

/// What moves a receive stream on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadStep {
    /// The opening frame arrived: the header is known, and the application is told
    /// (`StreamOpened`), even of a stream it already stopped.
    Opened,
    /// The application stopped the stream.
    Stop,
    /// The stream's pipe failed and stopped it, the application reading it too.
    PipeStop,
}

/// Every transition: from, step, to. A step not listed for a state leaves it as it is
/// (another copy of the opening frame, a second stop).
pub(super) const TRANSITIONS: &[(ReadPhase, ReadStep, ReadPhase)] = &[
    (ReadPhase::Unannounced, ReadStep::Opened, ReadPhase::Open),
    (
        ReadPhase::Unannounced,
        ReadStep::Stop,
        ReadPhase::StoppedUnannounced,
    ),
    (ReadPhase::Open, ReadStep::Stop, ReadPhase::Stopped),
    (ReadPhase::Open, ReadStep::PipeStop, ReadPhase::Broken),
    (ReadPhase::Broken, ReadStep::Stop, ReadPhase::Stopped),
    (
        ReadPhase::StoppedUnannounced,
        ReadStep::Opened,
        ReadPhase::Stopped,
    ),
];

impl Reading {
    pub(super) fn phase(&self) -> ReadPhase {
        match self {
            Reading::Unannounced => ReadPhase::Unannounced,
            Reading::Open { .. } => ReadPhase::Open,
            Reading::StoppedUnannounced => ReadPhase::StoppedUnannounced,
            Reading::Stopped => ReadPhase::Stopped,
            Reading::Broken => ReadPhase::Broken,
        }
    }

    /// Takes `step` by [`TRANSITIONS`]; whether the state moved. A new `Open` starts with
    /// nothing signalled or gathered; leaving `Open` drops what was gathered.
    pub(super) fn step(&mut self, step: ReadStep) -> bool {
        let Some(to) = crate::transitions::next(TRANSITIONS, self.phase(), step) else {
            return false;
        };
        *self = match to {
            ReadPhase::Unannounced => Reading::Unannounced,
            ReadPhase::Open => Reading::Open {
                readable_signaled: false,
                offered: false,
                gathered: Gathered::default(),
                gathering: None,
            },
            ReadPhase::StoppedUnannounced => Reading::StoppedUnannounced,
            ReadPhase::Stopped => Reading::Stopped,
            ReadPhase::Broken => Reading::Broken,
        };
        true
    }

    /// Marks the stream offered to `accept_stream` (or not); whether it was.
    pub(super) fn set_offered(&mut self, to: bool) -> bool {
        match self {
            Reading::Open { offered, .. } => core::mem::replace(offered, to),
            _ => false,
        }
    }

    /// Records whether the application was told the stream is readable (`StreamReadable`,
    /// told again only once a read found it drained); what it was. Only an `Open` stream
    /// is told.
    pub(super) fn set_readable_signaled(&mut self, to: bool) -> bool {
        match self {
            Reading::Open {
                readable_signaled, ..
            } => core::mem::replace(readable_signaled, to),
            _ => false,
        }
    }

    /// Marks the stream gathered by a message read accepting at most `limit` bytes (or, with
    /// `None`, no longer gathered); what it was. Only an `Open` stream is gathered.
    pub(super) fn set_gathering(&mut self, limit: Option<u64>) -> Option<u64> {
        match self {
            Reading::Open { gathering, .. } => core::mem::replace(gathering, limit),
            _ => None,
        }
    }

    /// The longest message accepted, if a message read gathers the stream.
    pub(super) fn gathering(&self) -> Option<u64> {
        match self {
            Reading::Open { gathering, .. } => *gathering,
            _ => None,
        }
    }

    /// No one wants the bytes any more: the application stopped the stream, or its pipe
    /// did ([`Reading::Broken`]).
    pub(super) fn is_stopped(&self) -> bool {
        matches!(
            self,
            Reading::Stopped | Reading::StoppedUnannounced | Reading::Broken
        )
    }

    /// The stream's pipe stopped it while the application reads it too: the application's
    /// next read ends it.
    pub(super) fn is_broken(&self) -> bool {
        matches!(self, Reading::Broken)
    }

    /// Room a whole-message read's buffer holds beyond what it gathered.
    pub(super) fn unfilled(&self) -> u64 {
        match self {
            Reading::Open { gathered, .. } => gathered.unfilled(),
            _ => 0,
        }
    }

    /// Bytes gathered for a whole-message read (held by the connection, so counted as
    /// buffered).
    pub(super) fn gathered_len(&self) -> u64 {
        match self {
            Reading::Open { gathered, .. } => gathered.len(),
            _ => 0,
        }
    }
}

/// The table as `spec/state-machines.md` shows it.
#[cfg(test)]
pub(crate) fn spec_section() -> alloc::string::String {
    crate::transitions::table_section(TRANSITIONS, "Unannounced", &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn every_row_lands_on_its_target() {
        let of = |p: ReadPhase| match p {
            ReadPhase::Unannounced => Reading::Unannounced,
            ReadPhase::Open => Reading::Open {
                readable_signaled: true,
                offered: false,
                gathering: Some(9),
                gathered: {
                    let mut g = Gathered::default();
                    g.push(Bytes::from_static(b"ab"), None);
                    g
                },
            },
            ReadPhase::StoppedUnannounced => Reading::StoppedUnannounced,
            ReadPhase::Stopped => Reading::Stopped,
            ReadPhase::Broken => Reading::Broken,
        };
        for &(from, step, to) in TRANSITIONS {
            let mut r = of(from);
            assert!(r.step(step), "{from:?} --{step:?}-->");
            assert_eq!(r.phase(), to);
        }
        // Another copy of the opening frame changes nothing, nor does a second stop.
        let mut open = of(ReadPhase::Open);
        assert!(!open.step(ReadStep::Opened));
        assert_eq!(open.gathered_len(), 2);
        let mut stopped = Reading::Stopped;
        assert!(!stopped.step(ReadStep::Stop) && !stopped.step(ReadStep::Opened));
        // Stopping drops what was gathered.
        assert!(open.step(ReadStep::Stop) && open.gathered_len() == 0 && open.is_stopped());
    }

    #[test]
    fn the_spec_shows_this_table() {
        crate::transitions::assert_spec_shows("receive stream", &spec_section());
    }
}
