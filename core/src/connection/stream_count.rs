//! How many streams each side may open (spec/protocol.md §4.12 MAX_STREAMS and
//! STREAMS_BLOCKED, §8 Flow control): the peer's limit on the streams we open, and ours on
//! the streams it opens, with when to tell it more and how many it may keep open (grown by
//! auto-tuning, §8 Streams and credit). An owned part of the connection: it keeps its own
//! counters and answers with what the connection should do (open, refuse, queue a
//! MAX_STREAMS or a STREAMS_BLOCKED); it never touches the rest of the connection.
//!
//! Inputs: our opens, the peer's stream frames (by index), streams of the peer's that end,
//! the peer's MAX_STREAMS and transport parameters, the fate of our frames, the time and
//! RTT of each grant sent, the room the endpoint grants. Outputs: stream indexes,
//! [`Refusal`]s, whether a frame is due, and the count the endpoint budgets.

use core::ops::Range;

use crate::event::ViolationKind;
use crate::flow::SendCredit;
use crate::time::{Duration, Instant};

/// `StreamCount::room`'s top bit: the count wanted to grow past its room.
const STARVED: u32 = 1 << 31;

/// A whole count of streams granted within this many of the path's least RTTs doubles the
/// count (spec §8, Streams and credit).
const AUTO_TUNE_RTTS: u64 = 2;

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
    /// The peer's limit on the streams we open (its `max_streams`, raised by MAX_STREAMS),
    /// and how many we opened: the index our next stream gets.
    credit: SendCredit,
    /// The peer's streams opened so far: one past the highest index it used.
    peer_opened: u64,
    /// The peer may use indexes below this one: the limit to announce.
    local_max: u64,
    /// The limit the peer last heard (in its transport parameters, or a MAX_STREAMS sent).
    announced: u64,
    /// How many of the peer's streams may be open at once: the initial count
    /// (`Config::initial_concurrent_streams`), grown by auto-tuning.
    concurrent: u32,
    /// How many more it may grow by, by the endpoint's leave (2 KiB of the receive budget
    /// each, which a connection's streams share with the others', spec §10.3), in the low
    /// 31 bits; the top bit ([`STARVED`]) says it wanted to grow past that. (Packed, with
    /// `concurrent` in one word: every idle connection keeps these, within issue 35's 2 KiB.)
    room: u32,
    /// When the count was last measured against the path ([`announced`](Self::announced)):
    /// the time of that grant, and the limit it carried.
    checkpoint: Option<(Instant, u64)>,
    /// The peer's streams that ended while we owed more receipts than the count: their
    /// slots wait for receipts to be acknowledged ([`release`](Self::release)).
    held_for_receipts: u32,
}

impl StreamCount {
    /// The counts of a new connection that lets the peer keep `concurrent` streams open
    /// (at most 2^31 - 1); the peer lets us open none until its transport parameters say
    /// (`on_peer_limit`). The count grows only into room the endpoint grants
    /// ([`grant_room`](Self::grant_room)).
    pub(super) fn new(concurrent: u64) -> StreamCount {
        let concurrent = u32::try_from(concurrent).unwrap_or(u32::MAX).min(!STARVED);
        StreamCount {
            credit: SendCredit::new(0),
            peer_opened: 0,
            local_max: concurrent.into(),
            announced: concurrent.into(),
            concurrent,
            room: 0,
            checkpoint: None,
            held_for_receipts: 0,
        }
    }

    /// How many of the peer's streams may be open at once.
    pub(super) fn concurrent(&self) -> u64 {
        self.concurrent.into()
    }

    /// What the endpoint budgets for (2 KiB each, spec §10.3): the streams the peer may
    /// have open, and the room granted to grow.
    pub(super) fn reserved(&self) -> u64 {
        u64::from(self.concurrent) + u64::from(self.room & !STARVED)
    }

    /// Whether the count wanted to grow past its room (and has not been given more).
    pub(super) fn starved(&self) -> bool {
        self.room & STARVED != 0
    }

    /// Lets the count grow by up to `more` streams beyond its room (at most doubling it).
    /// A count that wanted to grow (starved) grows now, up to `most`: it waited a whole
    /// count for the room, and waiting another before using it would halve how fast it
    /// follows the path. Once per measurement that wanted it, as a receive window's room
    /// grant (`flow::ReceiveWindow::grant_room`): a count the room held short waits for
    /// the next checkpoint to want more, rather than doubling again at each trickle of room.
    pub(super) fn grant_room(&mut self, more: u64, most: u64) {
        let more = u32::try_from(more).unwrap_or(u32::MAX).min(self.concurrent);
        if more == 0 {
            return;
        }
        let starved = self.starved();
        self.room = (self.room & !STARVED).saturating_add(more).min(!STARVED);
        if starved {
            self.grow(most);
            self.room &= !STARVED;
        }
    }

    /// The peer's transport parameters: it lets us open `max_streams` streams.
    pub(super) fn on_peer_limit(&mut self, max_streams: u64) {
        let opened = self.credit.used();
        self.credit = SendCredit::new(max_streams);
        self.credit.consume(opened);
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
        Ok(self.credit.used() - 1)
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

    /// One of the peer's streams ended: it may open one more, unless we owe it more
    /// receipts than the count (`owed`, this one's included), not yet acknowledged: then the
    /// slot waits for acknowledgements ([`receipts_acknowledged`](Self::receipts_acknowledged)).
    /// A peer that never acknowledges a receipt (a lazy packet it need not answer at once,
    /// spec §8) so holds us to at most twice the count owed, instead of one more for every
    /// stream it ends (spec §8, Delivery).
    pub(super) fn release(&mut self, owed: usize) {
        if owed as u64 > self.concurrent() {
            self.held_for_receipts = self.held_for_receipts.saturating_add(1);
        } else {
            self.local_max += 1;
        }
    }

    /// Receipts were acknowledged, leaving `owed`: the slots held for them go back once
    /// the count covers what is owed. Whether any did (a grant may be due).
    pub(super) fn receipts_acknowledged(&mut self, owed: usize) -> bool {
        if self.held_for_receipts == 0 || owed as u64 > self.concurrent() {
            return false;
        }
        self.local_max += u64::from(self.held_for_receipts);
        self.held_for_receipts = 0;
        true
    }

    /// Whether a MAX_STREAMS is due: there is more to grant than the peer heard, and it has
    /// used a quarter of the count (announcing each stream freed would cost a datagram
    /// each). A due grant rides in the next packet that goes anyway (spec §8, Streams and
    /// credit), so granting at a quarter rather than at half costs no datagram, and the
    /// streams read wait less to be granted again: over a long path the peer keeps more of
    /// the count in flight (issue 35's thirteenth round: 0.70 of it a round trip at half,
    /// 0.78 at a quarter).
    pub(super) fn grant_due(&self) -> bool {
        self.local_max > self.announced && self.left() <= self.concurrent() * 3 / 4
    }

    /// Whether a due grant goes at once, in a packet of its own if need be: the peer has a
    /// quarter or less of what it heard left, so waiting for a packet to ride in could
    /// leave it without streams to open.
    pub(super) fn grant_urgent(&self) -> bool {
        self.local_max > self.announced && self.left() <= self.concurrent() / 4
    }

    /// The streams the peer may still open under the limit it heard.
    fn left(&self) -> u64 {
        self.announced.saturating_sub(self.peer_opened)
    }

    /// The limit a MAX_STREAMS carries now.
    pub(super) fn local_max(&self) -> u64 {
        self.local_max
    }

    /// A MAX_STREAMS carrying [`local_max`](Self::local_max) was sent at `now`. Once the
    /// grants since the last checkpoint add up to the whole count, the count is measured
    /// against the path: if they took less than [`AUTO_TUNE_RTTS`] of the path's round trip
    /// (`path_rtt`, its least), the application reads the peer's streams as fast as the
    /// count lets the peer open them over the path, and the count doubles, up to `most`
    /// (`Config::max_concurrent_streams`) and within its room; the streams added are the
    /// next grant's (spec §8, Streams and credit). Measured over a whole count, not from one
    /// grant to the next: a receiver that fell behind reads a backlog in a burst, and its
    /// grants then come close together without the path being what limits (a backlog is
    /// never more than the count, so a burst alone never completes a whole count after a
    /// checkpoint it began with).
    ///
    /// A measurement that has run that long without a whole count granted can no longer
    /// show one fast enough: it is over, and the next begins at this grant. Left to run on
    /// until the count came, one begun while slow start still held the peer back (the first
    /// grants of a connection) held the count until long after the path had outgrown it:
    /// over a 40 ms round trip in weir-sim, 10,000 messages of 1 KiB first doubled 256
    /// streams 172 ms after the first grant, and went at 17,583 a second; now at 18,772
    /// (20,528 with a count too large ever to bind). Over real sockets through weir-bench's
    /// 40 ms proxy the rate moved by less than the spread (issue 35's twenty-ninth round,
    /// adapters/bench/rounds.md).
    ///
    /// A MAX_STREAMS sent again at the limit the peer heard (its packet lost) is not a grant.
    pub(super) fn announced(&mut self, now: Instant, path_rtt: Duration, most: u64) {
        if self.local_max <= self.announced {
            return;
        }
        self.announced = self.local_max;
        let fast = |at: Instant| now - at < path_rtt.saturating_mul(AUTO_TUNE_RTTS);
        match self.checkpoint {
            // Short of a whole count, and still in time: the measurement goes on.
            Some((at, mark)) if self.local_max.saturating_sub(mark) < self.concurrent() && fast(at) => {
                return;
            }
            // A whole count (a measurement short of one and out of time falls through).
            Some((at, _)) if fast(at) => self.grow(most),
            _ => {}
        }
        self.checkpoint = Some((now, self.local_max));
    }

    /// Doubles the count, up to `most` and within its room; marks it starved if the room
    /// held it back.
    fn grow(&mut self, most: u64) {
        let most = u32::try_from(most).unwrap_or(u32::MAX).min(!STARVED);
        let wanted = self
            .concurrent
            .saturating_mul(2)
            .min(most)
            .saturating_sub(self.concurrent);
        let room = self.room & !STARVED;
        let grown = wanted.min(room);
        self.room = (room - grown) | if grown < wanted { STARVED } else { 0 };
        self.concurrent += grown;
        self.local_max += u64::from(grown);
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
        c.release(0);
        assert_eq!(c.peer_uses(4), Ok(4..5));
    }

    /// Spec §8, Delivery: past as many receipts owed as the count, a stream that ends gives
    /// the peer no new one until receipts are acknowledged; then all held go back at once.
    #[test]
    fn slots_wait_for_receipts_owed_past_the_count() {
        let mut c = StreamCount::new(4);
        c.release(4);
        assert_eq!(c.local_max(), 5, "owing as many as the count: released");
        c.release(5);
        c.release(6);
        assert_eq!(c.local_max(), 5, "owing more: held");
        assert!(!c.receipts_acknowledged(5), "still more than the count");
        assert_eq!(c.local_max(), 5);
        assert!(c.receipts_acknowledged(4));
        assert_eq!(c.local_max(), 7, "both held go back");
        assert!(!c.receipts_acknowledged(0), "none held");
    }

    #[test]
    fn more_streams_are_announced_once_a_quarter_of_the_count_is_used() {
        let mut c = StreamCount::new(8);
        c.peer_uses(0).unwrap();
        c.release(0);
        assert!(!c.grant_due(), "7 of 8 still unused");
        c.peer_uses(1).unwrap();
        assert!(c.grant_due(), "a quarter used, one more to grant");
        assert!(!c.grant_urgent(), "more than a quarter left: it rides");
        assert_eq!(c.local_max(), 9);
        c.announced(Instant::ZERO, Duration::from_millis(10), 8);
        assert!(!c.grant_due(), "nothing more than it heard");
        c.release(0);
        assert!(!c.grant_due(), "7 of 9 still unused");
    }

    #[test]
    fn a_grant_goes_at_once_when_a_quarter_or_less_is_left() {
        let mut c = StreamCount::new(8);
        c.peer_uses(3).unwrap();
        c.release(0);
        assert_eq!((c.grant_due(), c.grant_urgent()), (true, false), "4 of 8 left");
        c.peer_uses(5).unwrap();
        assert_eq!((c.grant_due(), c.grant_urgent()), (true, true), "2 of 8 left");
        c.announced(Instant::ZERO, Duration::from_millis(10), 8);
        assert_eq!(
            (c.grant_due(), c.grant_urgent()),
            (false, false),
            "heard 9, 3 left"
        );
    }

    /// The peer opens and the application reads `n` more streams, and the grant goes at
    /// `at_ms` (a round trip of 10 ms), with at most `most` streams allowed.
    fn read_and_grant(c: &mut StreamCount, n: u64, at_ms: u64, most: u64) {
        for _ in 0..n {
            c.peer_uses(c.peer_opened).unwrap();
            c.release(0);
        }
        let at = Instant::ZERO + Duration::from_millis(at_ms);
        c.announced(at, Duration::from_millis(10), most);
    }

    #[test]
    fn a_whole_count_granted_within_two_round_trips_doubles_the_count_within_its_room() {
        let mut c = StreamCount::new(4);
        read_and_grant(&mut c, 2, 100, 64);
        read_and_grant(&mut c, 2, 105, 64);
        read_and_grant(&mut c, 2, 110, 64);
        assert_eq!(
            c.concurrent(),
            4,
            "four granted in 10 ms, but no room granted yet"
        );
        assert!(c.starved());
        c.grant_room(100, 64);
        assert!(!c.starved());
        assert_eq!(
            (c.concurrent(), c.reserved()),
            (8, 8),
            "grown at once, at most doubling"
        );
        assert_eq!(c.local_max(), 10 + 4, "the 4 added are the next grant's");
        assert!(c.grant_due(), "and due at once");
        // Eight more within 10 ms: it wants 16, and room comes a trickle at a time. It
        // grows into the first once, and waits for the next measurement to want more.
        read_and_grant(&mut c, 4, 120, 64);
        read_and_grant(&mut c, 4, 125, 64);
        assert!(c.starved());
        c.grant_room(2, 64);
        assert_eq!(c.concurrent(), 10);
        assert!(!c.starved(), "grown once for the measurement that wanted it");
        c.grant_room(2, 64);
        assert_eq!(c.concurrent(), 10, "room alone grows nothing");
        c.grant_room(4, 64);
        // Ten more over 90 ms, slower than two round trips: the count stays.
        read_and_grant(&mut c, 10, 215, 64);
        assert_eq!(c.concurrent(), 10);
    }

    /// A receiver that fell behind reads its backlog in a burst: grants close together,
    /// but the whole count took longer than two round trips to come, so the path is not
    /// what limits the peer.
    #[test]
    fn grants_close_together_after_a_slow_count_do_not_grow_it() {
        let mut c = StreamCount::new(4);
        c.grant_room(4, 64);
        read_and_grant(&mut c, 2, 0, 64);
        read_and_grant(&mut c, 2, 50, 64);
        read_and_grant(&mut c, 2, 50, 64);
        assert_eq!(c.concurrent(), 4);
        assert!(!c.starved());
    }

    /// A measurement that ran two round trips without a whole count granted (the peer still
    /// in slow start) is over at the next grant, and the next measurement begins there: a
    /// whole count granted fast after it doubles the count, where the measurement run on from
    /// the first grant would have found the count slow.
    #[test]
    fn a_measurement_too_slow_to_succeed_begins_again_at_the_next_grant() {
        let mut c = StreamCount::new(4);
        c.grant_room(4, 64);
        read_and_grant(&mut c, 1, 0, 64);
        read_and_grant(&mut c, 1, 30, 64);
        assert_eq!(c.concurrent(), 4, "one of four in 30 ms: slow");
        read_and_grant(&mut c, 2, 35, 64);
        read_and_grant(&mut c, 2, 40, 64);
        assert_eq!(
            c.concurrent(),
            8,
            "four since the grant at 30 ms, within 10 ms: the path limits"
        );
    }

    #[test]
    fn the_count_grows_no_further_than_the_most_allowed() {
        let mut c = StreamCount::new(4);
        c.grant_room(4, 6);
        read_and_grant(&mut c, 2, 0, 6);
        read_and_grant(&mut c, 4, 1, 6);
        assert_eq!(c.concurrent(), 6);
        assert!(!c.starved(), "wanted no more than the most");
        c.grant_room(6, 6);
        read_and_grant(&mut c, 6, 2, 6);
        assert_eq!(c.concurrent(), 6);
    }

    /// A MAX_STREAMS sent again because its packet was lost raises nothing: it says nothing
    /// of how fast the application reads, and is not counted as a grant.
    #[test]
    fn a_grant_sent_again_at_the_same_limit_is_not_a_grant() {
        let mut c = StreamCount::new(4);
        c.grant_room(4, 64);
        read_and_grant(&mut c, 2, 0, 64);
        let ms = |m| Instant::ZERO + Duration::from_millis(m);
        c.announced(ms(1), Duration::from_millis(10), 64);
        assert_eq!(c.concurrent(), 4);
        // Nor its time: the whole count, granted 25 ms after the first grant, took longer
        // than two round trips.
        read_and_grant(&mut c, 4, 25, 64);
        assert_eq!(c.concurrent(), 4);
    }
}
