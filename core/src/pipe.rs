//! Pipes: a relay forwards an inbound stream to outbound streams on other connections,
//! fragment by fragment, without reassembling it (spec/protocol.md §8, Piping).
//!
//! A pipe decides three things; the endpoint moves the bytes between its connections:
//!
//! - **Where each fragment goes.** Input: the fragments the source stream received since
//!   the last turn, by offset, in arrival order (each byte once: retransmissions are not
//!   forwarded twice). Output: the same `Bytes` slices, re-based to each target stream's
//!   offsets, written at once to every target (cut-through by offset: a fragment that
//!   arrives early is forwarded early, so reordering costs the relay no buffer). Each
//!   target re-packetizes for its own datagram size by slicing.
//! - **How much the sender may send (end-to-end backpressure).** Input: each target's
//!   progress (bytes its peer acknowledged, credit its peer granted). Output: the source
//!   stream's credit, `start + min over targets of min(credit, acknowledged + cap)`, and
//!   within the endpoint-wide cap shared by all pipes. The relay therefore never holds more
//!   than `cap` bytes for a pipe (credit once granted is never taken back, so the cap bounds
//!   what a pipe can reach, by construction), and a slow target slows the sender.
//! - **What ends it.** Every target delivered (its receipt says so, or, from a peer without
//!   receipts, it acknowledged everything): finished, and the relay owes its sender a
//!   receipt one relay further on (module `delivery`). A target whose receipt says not
//!   delivered, whose peer stops it, that is reset or whose connection ends loses its
//!   branch; with no branch left the pipe fails and the sender is told with a receipt
//!   that says why (and, if not every byte arrived, a STOP_SENDING for the rest). A
//!   sender that resets, or whose connection ends
//!   before the whole stream arrived, resets every target; once every byte to the end has
//!   arrived and been handed on, the source connection's end changes nothing.

use alloc::vec::Vec;

use bytes::Bytes;

use crate::handle::ConnectionHandle;
use crate::range_set::RangeSet;
use crate::wire::Delivery;
use crate::wire::{StreamId, PIPE_BROKEN};

/// A pipe on an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipeId(pub(crate) u32);

/// Whether the application reads a piped stream as well.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocalRead {
    /// Only forward: the relay keeps no copy for itself. The default.
    #[default]
    Discard,
    /// Forward and read (Freenet's `fork`: a relay that also stores what it forwards). The
    /// application reads the same `Bytes` the targets send (no second copy); the pipe's
    /// cap then also bounds what waits for the application.
    Keep,
}

/// Why a pipe ended without delivering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipeFailure {
    /// The sender reset the source stream with this code (passed on to every target).
    SourceReset {
        /// The sender's code.
        code: u64,
    },
    /// The relay's application stopped the source stream with this code (`stop_sending`,
    /// or letting go of a fork's local reader): its sender is told to stop, and every target
    /// is reset with the code.
    SourceStopped {
        /// The application's code.
        code: u64,
    },
    /// The source connection ended.
    SourceLost,
    /// Every target reset, stopped or lost its connection.
    TargetsLost,
}

impl core::fmt::Display for PipeFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PipeFailure::SourceReset { code } => write!(f, "the sender abandoned the stream (code {code})"),
            PipeFailure::SourceStopped { code } => write!(f, "the relay stopped the stream (code {code})"),
            PipeFailure::SourceLost => {
                f.write_str("the sender's connection ended before the whole stream arrived")
            }
            PipeFailure::TargetsLost => f.write_str("no next hop took the stream to its end"),
        }
    }
}

/// A pipe's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipeStats {
    /// Bytes of the source stream forwarded (each counted once, however many targets).
    pub bytes_forwarded: u64,
    /// Fragments that arrived ahead of a gap, or filled one after later bytes came
    /// (forwarded at once all the same).
    pub fragments_out_of_order: u64,
    /// Bytes received for the pipe and not yet handed to its targets: between a datagram's
    /// arrival and the end of that same call, so at most one datagram's payload.
    pub waiting: u64,
    /// The most `waiting` ever was.
    pub waiting_peak: u64,
    /// Bytes handed to a target and not yet acknowledged by its peer, for the target that
    /// holds most (targets share the same `Bytes`).
    pub in_flight: u64,
    /// The most `in_flight` ever was.
    pub in_flight_peak: u64,
    /// Bytes the stream held, received and unread, when piping began (forwarded at
    /// once; not counted in `waiting`).
    pub initial: u64,
    /// Targets still receiving.
    pub targets: u32,
}

/// One target stream of a pipe.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) conn: ConnectionHandle,
    pub(crate) stream: StreamId,
    pub(crate) state: Branch,
}

/// Where a target stands (spec/state-machines.md, "Pipe branch").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Branch {
    Open,
    /// Delivered: its receipt came (or, from a peer without receipts, every byte and the
    /// end were acknowledged), `relays` further on.
    Done {
        relays: u64,
    },
    /// Reset, stopped, or its connection ended; or its receipt said not delivered.
    Lost(Option<Delivery>),
}

/// A branch's state without its data: the rows of [`BRANCH_TRANSITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BranchPhase {
    Open,
    Done,
    Lost,
}

/// What ends a branch: the target's outcome as its connection reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BranchStep {
    /// Its receipt said delivered (`TargetState::Ended`).
    Delivered,
    /// Its receipt said not delivered.
    Failed,
    /// Reset, or its connection ended (`TargetState::Gone`): no word from its peer.
    Gone,
}

/// Every transition of a branch: from, step, to. Done and Lost are final.
pub(crate) const BRANCH_TRANSITIONS: &[(BranchPhase, BranchStep, BranchPhase)] = &[
    (BranchPhase::Open, BranchStep::Delivered, BranchPhase::Done),
    (BranchPhase::Open, BranchStep::Failed, BranchPhase::Lost),
    (BranchPhase::Open, BranchStep::Gone, BranchPhase::Lost),
];

impl Branch {
    fn phase(self) -> BranchPhase {
        match self {
            Branch::Open => BranchPhase::Open,
            Branch::Done { .. } => BranchPhase::Done,
            Branch::Lost(_) => BranchPhase::Lost,
        }
    }

    /// Takes the target's outcome by [`BRANCH_TRANSITIONS`] (a branch that ended stays as
    /// it ended).
    fn end(&mut self, outcome: Option<Delivery>) {
        let step = match outcome {
            Some(Delivery::Delivered { .. }) => BranchStep::Delivered,
            Some(Delivery::Failed { .. }) => BranchStep::Failed,
            None => BranchStep::Gone,
        };
        let Some(to) = crate::transitions::next(BRANCH_TRANSITIONS, self.phase(), step) else {
            return;
        };
        *self = match (to, outcome) {
            (BranchPhase::Done, Some(Delivery::Delivered { relays })) => Branch::Done { relays },
            (BranchPhase::Lost, failed) => Branch::Lost(failed),
            // The table leads only Delivered to Done, and nothing back to Open.
            (BranchPhase::Done | BranchPhase::Open, _) => return,
        };
    }
}

/// Where a target stream stands, as its connection reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetState {
    Open(Progress),
    /// Its peer's receipt (with a peer without receipts: delivered once every byte and the
    /// end were acknowledged).
    Ended(Delivery),
    /// Reset, or its connection ended: no word from its peer (a stop is its refusal: `Ended`).
    Gone,
}

/// A target's progress as the pipe needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Target stream offsets: all bytes below acknowledged; the peer's credit.
    pub(crate) acked_below: u64,
    pub(crate) max_data: u64,
    pub(crate) unacked: u64,
}

/// One pipe's state.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) source: (ConnectionHandle, StreamId),
    /// The source offset that is target offset 0.
    pub(crate) start: u64,
    pub(crate) targets: Vec<Target>,
    /// Most bytes the relay may hold for this pipe.
    pub(crate) cap: u64,
    /// The credit granted to the source so far (source offsets).
    pub(crate) granted: u64,
    /// The source stream's final size (source offsets), once known: targets were told it.
    pub(crate) final_size: Option<u64>,
    /// Source offsets forwarded (for the out-of-order count).
    forwarded: RangeSet,
    /// The lowest offset every open target acknowledged, as of the last turn (source
    /// offsets).
    floor: u64,
    /// The source's connection ended.
    pub(crate) source_lost: bool,
    /// Turns taken.
    turns: u64,
    pub(crate) stats: PipeStats,
}

impl Pipe {
    pub(crate) fn new(
        source: (ConnectionHandle, StreamId),
        start: u64,
        targets: Vec<Target>,
        cap: u64,
    ) -> Self {
        let count = targets.len() as u32;
        Pipe {
            source,
            start,
            targets,
            cap,
            granted: start,
            final_size: None,
            forwarded: RangeSet::new(),
            floor: start,
            source_lost: false,
            turns: 0,
            stats: PipeStats {
                targets: count,
                ..PipeStats::default()
            },
        }
    }

    /// Counts a turn's fragments in (waiting) and re-bases them to target offsets. The
    /// first turn hands on what the stream held before it was piped.
    pub(crate) fn take_in(&mut self, fragments: Vec<(u64, Bytes)>) -> Vec<(u64, Bytes)> {
        let waiting: u64 = fragments.iter().map(|(_, b)| b.len() as u64).sum();
        if self.turns == 0 {
            self.stats.initial = waiting;
        } else {
            self.stats.waiting = waiting;
            self.stats.waiting_peak = self.stats.waiting_peak.max(waiting);
        }
        self.turns += 1;
        fragments
            .into_iter()
            .map(|(offset, data)| {
                let contiguous = match self.forwarded.first() {
                    Some(r) if r.start == self.start => r.end,
                    _ => self.start,
                };
                if offset != contiguous {
                    self.stats.fragments_out_of_order += 1;
                }
                self.forwarded.insert(offset..offset + data.len() as u64);
                self.stats.bytes_forwarded += data.len() as u64;
                (offset - self.start, data)
            })
            .collect()
    }

    /// Every fragment of the turn reached every target.
    pub(crate) fn handed_on(&mut self) {
        self.stats.waiting = 0;
    }

    /// Records where each open target stands and returns the lowest acknowledged offset and the credit the targets allow, in source
    /// offsets, if any target is open.
    pub(crate) fn observe(&mut self, progress: &[TargetState]) -> Option<(u64, u64)> {
        let mut floor: Option<u64> = None;
        let mut limit = u64::MAX;
        let mut in_flight = 0;
        for (t, p) in self.targets.iter_mut().zip(progress) {
            if t.state != Branch::Open {
                continue;
            }
            match p {
                TargetState::Gone => t.state.end(None),
                TargetState::Ended(outcome) => t.state.end(Some(*outcome)),
                TargetState::Open(p) => {
                    floor = Some(floor.map_or(p.acked_below, |f| f.min(p.acked_below)));
                    limit = limit.min(p.max_data.min(p.acked_below.saturating_add(self.cap)));
                    in_flight = in_flight.max(p.unacked);
                }
            }
        }
        self.stats.targets = self.targets.iter().filter(|t| t.state == Branch::Open).count() as u32;
        self.stats.in_flight = in_flight;
        self.stats.in_flight_peak = self.stats.in_flight_peak.max(in_flight);
        let floor = floor.map(|f| self.start + f);
        if let Some(f) = floor {
            self.floor = f;
        }
        floor.map(|f| (f, self.start.saturating_add(limit)))
    }

    /// Bytes of the endpoint-wide cap this pipe has spoken for: credit granted above what
    /// every target acknowledged.
    pub(crate) fn reserved(&self) -> u64 {
        self.granted.saturating_sub(self.floor)
    }

    /// Whether every byte of the source stream, to its end, was handed to the targets: the
    /// source's connection is then no longer needed, and its end fails nothing.
    pub(crate) fn source_complete(&self) -> bool {
        self.final_size.is_some_and(|end| {
            end <= self.start
                || self
                    .forwarded
                    .first()
                    .is_some_and(|r| r.start <= self.start && r.end >= end)
        })
    }

    /// Connection `c` ended: as a source, the pipe fails unless the source stream had fully
    /// arrived (spec §8, Piping); as a target, that branch is lost.
    pub(crate) fn lose(&mut self, c: ConnectionHandle) {
        if self.source.0 == c {
            self.source_lost = true;
        }
        for t in self.targets.iter_mut().filter(|t| t.conn == c) {
            t.state.end(None);
        }
    }

    /// How the pipe ended, once no target is open: delivered if any target was, with the
    /// receipt the relay owes its sender (spec §8, Delivery): one relay further than the
    /// first target's; a target's failure likewise, or PIPE_BROKEN at this relay if no
    /// receipt said why.
    pub(crate) fn ended(&self) -> Option<Result<Delivery, (PipeFailure, Delivery)>> {
        if self.targets.iter().any(|t| t.state == Branch::Open) {
            return None;
        }
        if let Some(relays) = self.targets.iter().find_map(|t| match t.state {
            Branch::Done { relays } => Some(relays),
            _ => None,
        }) {
            return Some(Ok(Delivery::Delivered { relays }.one_relay_on()));
        }
        let upstream = self
            .targets
            .iter()
            .find_map(|t| match t.state {
                Branch::Lost(Some(failed)) => Some(failed.one_relay_on()),
                _ => None,
            })
            .unwrap_or(Delivery::Failed {
                code: PIPE_BROKEN,
                relays: 0,
            });
        Some(Err((PipeFailure::TargetsLost, upstream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_branch_table_lands_on_its_target() {
        for &(from, step, to) in BRANCH_TRANSITIONS {
            let mut b = match from {
                BranchPhase::Open => Branch::Open,
                BranchPhase::Done => Branch::Done { relays: 0 },
                BranchPhase::Lost => Branch::Lost(None),
            };
            let outcome = match step {
                BranchStep::Delivered => Some(Delivery::Delivered { relays: 2 }),
                BranchStep::Failed => Some(Delivery::Failed { code: 5, relays: 1 }),
                BranchStep::Gone => None,
            };
            b.end(outcome);
            assert_eq!(b.phase(), to, "{from:?} --{step:?}-->");
        }
        // An ended branch stays as it ended.
        let mut done = Branch::Done { relays: 3 };
        done.end(None);
        assert_eq!(done, Branch::Done { relays: 3 });
    }

    #[test]
    fn the_spec_shows_the_branch_table() {
        let section = crate::transitions::table_section(BRANCH_TRANSITIONS, "Open", &["Done", "Lost"]);
        crate::transitions::assert_spec_shows("pipe branch", &section);
    }
    use crate::wire::Side;

    fn pipe(targets: usize, cap: u64) -> Pipe {
        let t = (0..targets)
            .map(|i| Target {
                conn: ConnectionHandle::from_index(i as u32 + 1),
                stream: StreamId::new(Side::Client, 0),
                state: Branch::Open,
            })
            .collect();
        Pipe::new(
            (ConnectionHandle::from_index(0), StreamId::new(Side::Client, 0)),
            100,
            t,
            cap,
        )
    }

    fn at(acked_below: u64, max_data: u64) -> TargetState {
        TargetState::Open(Progress {
            acked_below,
            max_data,
            unacked: 0,
        })
    }

    #[test]
    fn fragments_are_rebased_and_counted_out_of_order() {
        let mut p = pipe(1, 1000);
        let b = Bytes::from_static(b"0123456789");
        p.take_in(alloc::vec![(100, b.slice(..0))]);
        let out = p.take_in(alloc::vec![
            (110, b.slice(..5)),
            (100, b.slice(..10)),
            (115, b.slice(..5))
        ]);
        assert_eq!(out.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [10, 0, 15]);
        // Only the first came ahead of a gap; the second filled it, the third followed on.
        assert_eq!(p.stats.fragments_out_of_order, 1);
        assert_eq!((p.stats.waiting, p.stats.bytes_forwarded), (20, 20));
        p.handed_on();
        assert_eq!((p.stats.waiting, p.stats.waiting_peak), (0, 20));
    }

    #[test]
    fn credit_follows_the_slowest_target_within_the_cap() {
        let mut p = pipe(2, 1000);
        // The second target's peer granted less and acknowledged less: it decides.
        assert_eq!(p.observe(&[at(500, 5000), at(200, 800)]), Some((300, 900)));
        // The cap bounds what the relay holds above the slowest acknowledgement.
        assert_eq!(p.observe(&[at(500, 5000), at(200, 9000)]), Some((300, 1300)));
        // A lost branch no longer holds the others back; a done one neither.
        assert_eq!(p.observe(&[at(600, 5000), TargetState::Gone]), Some((700, 1700)));
        assert_eq!(p.stats.targets, 1);
        assert_eq!(p.ended(), None);
        let delivered = TargetState::Ended(Delivery::Delivered { relays: 1 });
        assert_eq!(p.observe(&[delivered, TargetState::Gone]), None);
        assert_eq!(p.ended(), Some(Ok(Delivery::Delivered { relays: 2 })));
        let mut q = pipe(2, 1000);
        q.observe(&[TargetState::Gone, TargetState::Gone]);
        let broken = Delivery::Failed {
            code: PIPE_BROKEN,
            relays: 0,
        };
        assert_eq!(q.ended(), Some(Err((PipeFailure::TargetsLost, broken))));
        // A receipt's reason is passed on, one relay further.
        let mut r = pipe(1, 1000);
        r.observe(&[TargetState::Ended(Delivery::Failed { code: 9, relays: 0 })]);
        let stopped = Delivery::Failed { code: 9, relays: 1 };
        assert_eq!(r.ended(), Some(Err((PipeFailure::TargetsLost, stopped))));
    }

    #[test]
    fn the_source_is_complete_once_every_byte_to_its_end_was_handed_on() {
        let mut p = pipe(1, 1000);
        let b = Bytes::from_static(b"0123456789");
        p.take_in(alloc::vec![(100, b.slice(..0))]);
        assert!(!p.source_complete(), "the end is not known");
        p.take_in(alloc::vec![(105, b.slice(..5))]);
        p.final_size = Some(110);
        assert!(!p.source_complete(), "a gap at the start");
        p.take_in(alloc::vec![(100, b.slice(..5))]);
        assert!(p.source_complete());
        // Piping began at the end: nothing to forward.
        let mut empty = pipe(1, 1000);
        empty.final_size = Some(100);
        assert!(empty.source_complete());
    }
}
