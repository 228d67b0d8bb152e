//! How many streams each side may open (spec/protocol.md §4.12 MAX_STREAMS and
//! STREAMS_BLOCKED, §8 Flow control): the peer's limit on the streams we open, and ours on
//! the streams it opens, with when to tell it more. An owned part of the connection: it
//! keeps its own counters and answers with what the connection should do (open, refuse,
//! queue a MAX_STREAMS or a STREAMS_BLOCKED); it never touches the rest of the connection.
//!
//! Inputs: our opens, the peer's stream frames (by index), streams of the peer's that end,
//! the peer's MAX_STREAMS and transport parameters, the fate of our frames. Outputs: stream
//! indexes, [`Refusal`]s, and whether a frame is due.

use core::ops::Range;

use crate::event::ViolationKind;
use crate::flow::SendCredit;

/// Why we may not open a stream now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The peer's limit is reached, and it is to hear so: queue a STREAMS_BLOCKED.
    Report,
    /// The peer's limit is reached, and it was told already at this limit.
    Quiet,
}

/// The stream counts of one connection.
#[derive(Debug)]
pub(super) struct StreamCount {
    /// The index our next stream gets.
    next: u64,
    /// The peer's limit on the streams we open (its `max_streams`, raised by MAX_STREAMS).
    credit: SendCredit,
    /// The peer's streams opened so far: one past the highest index it used.
    peer_opened: u64,
    /// The peer may use indexes below this one: the limit to announce.
    local_max: u64,
    /// The limit the peer last heard (in its transport parameters, or a MAX_STREAMS sent).
    announced: u64,
    /// How many of the peer's streams may be open at once (`Config::max_concurrent_streams`).
    concurrent: u64,
}

impl StreamCount {
    /// The counts of a new connection that lets the peer keep `concurrent` streams open; the
    /// peer lets us open none until its transport parameters say (`on_peer_limit`).
    pub(super) fn new(concurrent: u64) -> StreamCount {
        StreamCount {
            next: 0,
            credit: SendCredit::new(0),
            peer_opened: 0,
            local_max: concurrent,
            announced: concurrent,
            concurrent,
        }
    }

    /// How many of the peer's streams may be open at once.
    pub(super) fn concurrent(&self) -> u64 {
        self.concurrent
    }

    /// The peer's transport parameters: it lets us open `max_streams` streams.
    pub(super) fn on_peer_limit(&mut self, max_streams: u64) {
        self.credit = SendCredit::new(max_streams);
    }

    /// The index of a stream we open, or why not.
    pub(super) fn open(&mut self) -> Result<u64, Refusal> {
        if self.credit.available() == 0 {
            return Err(match self.credit.take_blocked() {
                Some(_) => Refusal::Report,
                None => Refusal::Quiet,
            });
        }
        self.credit.consume(1);
        self.next += 1;
        Ok(self.next - 1)
    }

    /// The peer's MAX_STREAMS: whether it lets us open more than before (a lower value is
    /// stale and ignored).
    pub(super) fn raise(&mut self, max: u64) -> bool {
        self.credit.raise(max)
    }

    /// The limit to report in a STREAMS_BLOCKED.
    pub(super) fn blocked_at(&self) -> u64 {
        self.credit.limit()
    }

    /// A STREAMS_BLOCKED was lost: it is reported again if we are still blocked.
    pub(super) fn blocked_report_lost(&mut self) {
        self.credit.report_lost();
    }

    /// The peer used stream index `index`: the indexes it opens with it (every lower one
    /// not opened yet, spec §4.12; empty for one opened before), or a violation past our
    /// limit.
    pub(super) fn peer_uses(&mut self, index: u64) -> Result<Range<u64>, ViolationKind> {
        if index >= self.local_max {
            return Err(ViolationKind::StreamLimit);
        }
        let opened = self.peer_opened..(index + 1).max(self.peer_opened);
        self.peer_opened = opened.end;
        Ok(opened)
    }

    /// One of the peer's streams ended: it may open one more.
    pub(super) fn release(&mut self) {
        self.local_max += 1;
    }

    /// Whether a MAX_STREAMS is due: there is more to grant than the peer heard, and it has
    /// used half of what it heard (announcing each stream freed would cost a datagram each).
    /// A due grant rides in the next packet that goes anyway (spec §8, Streams and credit).
    pub(super) fn grant_due(&self) -> bool {
        self.local_max > self.announced && self.left() <= self.concurrent / 2
    }

    /// Whether a due grant goes at once, in a packet of its own if need be: the peer has a
    /// quarter or less of what it heard left, so waiting for a packet to ride in could
    /// leave it without streams to open.
    pub(super) fn grant_urgent(&self) -> bool {
        self.local_max > self.announced && self.left() <= self.concurrent / 4
    }

    /// The streams the peer may still open under the limit it heard.
    fn left(&self) -> u64 {
        self.announced.saturating_sub(self.peer_opened)
    }

    /// The limit a MAX_STREAMS carries now.
    pub(super) fn local_max(&self) -> u64 {
        self.local_max
    }

    /// A MAX_STREAMS carrying [`local_max`](Self::local_max) was sent.
    pub(super) fn announced(&mut self) {
        self.announced = self.local_max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn we_open_within_the_peer_s_limit_and_report_being_blocked_once_per_limit() {
        let mut c = StreamCount::new(8);
        assert_eq!(
            c.open(),
            Err(Refusal::Report),
            "nothing allowed before its parameters"
        );
        c.on_peer_limit(2);
        assert_eq!((c.open(), c.open()), (Ok(0), Ok(1)));
        assert_eq!(c.open(), Err(Refusal::Report));
        assert_eq!(c.open(), Err(Refusal::Quiet), "told once at this limit");
        assert_eq!(c.blocked_at(), 2);
        c.blocked_report_lost();
        assert_eq!(c.open(), Err(Refusal::Report), "the report was lost: again");
        assert!(!c.raise(1), "stale");
        assert!(c.raise(3));
        assert_eq!(c.open(), Ok(2));
    }

    #[test]
    fn the_peer_opens_lower_streams_with_a_higher_one_and_not_past_the_limit() {
        let mut c = StreamCount::new(4);
        assert_eq!(c.peer_uses(2), Ok(0..3));
        assert_eq!(c.peer_uses(1), Ok(3..3), "opened already");
        assert_eq!(c.peer_uses(3), Ok(3..4));
        assert_eq!(c.peer_uses(4), Err(ViolationKind::StreamLimit));
        c.release();
        assert_eq!(c.peer_uses(4), Ok(4..5));
    }

    #[test]
    fn more_streams_are_announced_once_half_the_announced_ones_are_used() {
        let mut c = StreamCount::new(4);
        c.peer_uses(0).unwrap();
        c.release();
        assert!(!c.grant_due(), "3 of 4 still unused");
        c.peer_uses(1).unwrap();
        assert!(c.grant_due(), "half used, one more to grant");
        assert!(!c.grant_urgent(), "a quarter or more left: it rides");
        assert_eq!(c.local_max(), 5);
        c.announced();
        assert!(!c.grant_due(), "nothing more than it heard");
        c.release();
        assert!(!c.grant_due(), "3 of 5 still unused");
    }

    #[test]
    fn a_grant_goes_at_once_when_a_quarter_or_less_is_left() {
        let mut c = StreamCount::new(8);
        c.peer_uses(3).unwrap();
        c.release();
        assert_eq!((c.grant_due(), c.grant_urgent()), (true, false), "4 of 8 left");
        c.peer_uses(5).unwrap();
        assert_eq!((c.grant_due(), c.grant_urgent()), (true, true), "2 of 8 left");
        c.announced();
        assert_eq!(
            (c.grant_due(), c.grant_urgent()),
            (false, false),
            "heard 9, 3 left"
        );
    }
}
