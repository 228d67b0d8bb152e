//! What we received, and when to acknowledge it (RFC 9000 §13.2, spec/protocol.md §4.3).
//!
//! Input: each authenticated packet's number, arrival time, sender timestamp and whether it
//! was ack-eliciting. Output: whether it is a duplicate (to drop), when an ACK is due, and
//! the ACK frame itself.
//!
//! Rules: an ACK goes out at once after every second ack-eliciting packet, after a packet
//! that arrives out of order or duplicated, and otherwise within max_ack_delay of the first
//! unacknowledged ack-eliciting packet. Packets that are not ack-eliciting never cause an
//! ACK by themselves. When the peer's packets come fast and steadily, an ACK waits for up
//! to ten of them, at most a quarter RTT, and for more while our ACKs queue on their way
//! back (module `ack_frequency`). With LAZY_RECEIPT_ACKS
//! negotiated, a packet that asks for an acknowledgement only for its receipts is
//! acknowledged within [`LAZY_ACK_DELAY`], or with whatever packet goes first, and counts
//! toward no other rule ([`AckWanted`]). At most `Config::max_tracked_ack_ranges` ranges
//! are remembered (the lowest are forgotten and anything below them counts as a
//! duplicate), so the state is bounded whatever the peer sends; an ACK carries the highest
//! [`MAX_ACK_RANGES`] of them.
//!
//! Once the peer acknowledges a packet of ours that carried an ACK frame, it has seen that
//! frame: numbers up to the frame's largest are no longer reported (RFC 9000 §13.2.4), so a
//! gap (a loss, or a number the peer left out, §8) costs ACK frames a range for about a
//! round trip, not for the rest of the connection. A packet that arrives below them after
//! all (late, on a path that reorders) is reported, with what lies above it.

use super::ack_frequency::AckFrequency;
use crate::range_set::RangeSet;
use crate::time::{Duration, Instant};
use crate::wire::{Ack, AckRange, AckRanges, MAX_ACK_RANGES};

/// The longest a packet that asks for an acknowledgement only for its receipts waits for
/// it (spec §8, Acknowledgements; capability LAZY_RECEIPT_ACKS). A message answered with its
/// receipt then costs two datagrams on a connection whose next packet comes within this,
/// not three; its sender holds the receipt's record no longer than this and a round trip,
/// well within the second a quiet connection waits before it trims.
pub(crate) const LAZY_ACK_DELAY: Duration = Duration::from_millis(250);

/// What a received packet asks of our acknowledgements (spec §4.1, §8 Acknowledgements).
/// Ordered: a packet asks what its most demanding frame asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AckWanted {
    /// Nothing by itself: ACK, PADDING and CLOSE frames only.
    Nothing,
    /// An acknowledgement within [`LAZY_ACK_DELAY`], or with the next packet sent: only
    /// its receipts ask (LAZY_RECEIPT_ACKS negotiated).
    Lazily,
    /// An acknowledgement within max_ack_delay; at once after every second such packet or
    /// one out of order.
    Promptly,
}

#[derive(Debug)]
pub(crate) struct Received {
    pns: RangeSet,
    /// Largest packet number received, with its arrival time and sender timestamp.
    largest: Option<(u64, Instant, u32)>,
    /// Ack-eliciting packets received since the last ACK was sent (saturating: an ACK
    /// waits for at most ten).
    unacked_eliciting: u8,
    /// How fast the peer's packets come, for how many an ACK waits.
    frequency: AckFrequency,
    /// When an ACK must go out (immediately if `<= now`).
    deadline: Option<Instant>,
    /// Whether a packet (even a non-eliciting one) arrived since the last ACK.
    news: bool,
    /// Lowest packet number still tracked: anything below is treated as a duplicate.
    floor: u64,
    /// The most ranges remembered (`Config::max_tracked_ack_ranges`, at most 65,535: every
    /// connection keeps this, and 16 bits of it pack beside the counters).
    max_ranges: u16,
    /// Numbers below this are not reported: the peer has seen an ACK of them.
    reported_from: u64,
    /// Our packets that carried an ACK frame, with the frame's largest, oldest first, until
    /// the peer's acknowledgements reach them. New ones are not watched while the list is
    /// full: one watched per round trip is enough.
    /// `watched[..watching]`: a fixed array, not a `SmallVec`, whose length packs beside
    /// the counters (every connection keeps one).
    watched: [(u64, u64); WATCHED_ACKS],
    watching: u8,
}

/// Our ACK-carrying packets watched for the peer's acknowledgement. (Three: one a round
/// trip is enough, and a fourth's 16 bytes pay for `frequency` in every connection.)
const WATCHED_ACKS: usize = 3;

impl Received {
    /// Remembers at most `max_ranges` ranges of packet numbers (at least one).
    pub(crate) fn new(max_ranges: usize) -> Self {
        Received {
            max_ranges: u16::try_from(max_ranges).unwrap_or(u16::MAX).max(1),
            pns: RangeSet::new(),
            largest: None,
            unacked_eliciting: 0,
            frequency: AckFrequency::new(),
            deadline: None,
            news: false,
            floor: 0,
            reported_from: 0,
            watched: [(0, 0); WATCHED_ACKS],
            watching: 0,
        }
    }

    /// The largest packet number received (for packet number expansion).
    pub(crate) fn largest(&self) -> Option<u64> {
        self.largest.map(|(pn, _, _)| pn)
    }

    /// Whether `pn` was received before (or is too old to tell): such a packet is dropped,
    /// and acknowledged again.
    pub(crate) fn is_duplicate(&self, pn: u64) -> bool {
        pn < self.floor || self.pns.contains(pn)
    }

    /// Records a packet that was not a duplicate. `rtt`: the smoothed RTT.
    pub(crate) fn on_packet(
        &mut self,
        pn: u64,
        now: Instant,
        timestamp: u32,
        wanted: AckWanted,
        max_ack_delay: Duration,
        rtt: Duration,
    ) {
        let largest = self.largest();
        let in_order = largest.is_none_or(|l| pn == l + 1);
        if largest.is_none_or(|l| pn > l) {
            self.largest = Some((pn, now, timestamp));
        }
        self.frequency.on_arrival(now, rtt);
        self.pns.insert(pn..pn + 1);
        // A packet that comes after an ACK the peer has seen reported past it: report from
        // it again. Otherwise the peer never learns it arrived, resends its frames for
        // nothing, and cannot tell that it declared a packet lost that was only late (RFC
        // 9002 §6.1: what loss detection learns reordering from).
        self.reported_from = self.reported_from.min(pn);
        while self.pns.len() > usize::from(self.max_ranges) {
            if let Some(r) = self.pns.pop_first() {
                self.floor = r.end;
            }
        }
        self.news = true;
        let due = match wanted {
            AckWanted::Nothing => return,
            AckWanted::Lazily => now + LAZY_ACK_DELAY,
            AckWanted::Promptly => {
                self.unacked_eliciting = self.unacked_eliciting.saturating_add(1);
                if !in_order {
                    now
                } else {
                    let every = self.frequency.every(rtt, max_ack_delay);
                    if u32::from(self.unacked_eliciting) >= every.packets {
                        now
                    } else {
                        now + every.delay
                    }
                }
            }
        };
        self.deadline = Some(self.deadline.map_or(due, |d| d.min(due)));
    }

    /// Acknowledge at once: a duplicate arrived (so the peer stops resending), or a packet
    /// whose acknowledgement the peer waits for.
    pub(crate) fn ack_now(&mut self, now: Instant) {
        if !self.pns.is_empty() {
            self.deadline = Some(now);
            self.news = true;
        }
    }

    /// When an ACK is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether there is anything to acknowledge (to piggyback an ACK on a packet being sent).
    pub(crate) fn has_news(&self) -> bool {
        self.news
    }

    /// The ACK frame for what was received; resets the ACK timer.
    pub(crate) fn build(&mut self, now: Instant) -> Option<Ack> {
        // The timer is satisfied whatever happens below, so it can never stay in the past.
        self.unacked_eliciting = 0;
        self.deadline = None;
        self.news = false;
        let (largest, arrived, timestamp) = self.largest?;
        // The range holding the largest is always reported, so the frame is never empty.
        let from = self.reported_from.min(largest);
        let ranges = AckRanges::new(
            self.pns
                .iter_rev()
                .take_while(|r| r.end > from)
                .take(MAX_ACK_RANGES)
                .map(|r| AckRange {
                    smallest: r.start.max(from),
                    largest: r.end - 1,
                }),
        )
        .ok()?;
        Some(Ack {
            ranges,
            ack_delay: (now - arrived).as_micros(),
            one_way_delay: arrived.wire_timestamp().wrapping_sub(timestamp),
        })
    }

    /// The peer's ACK frame, in a data packet, reported `one_way` for the largest of our
    /// packets it names: how long the way back took (module `ack_frequency`, "The way
    /// back").
    pub(crate) fn on_way_back(&mut self, one_way: u32) {
        self.frequency.on_way_back(one_way);
    }

    /// The peer is on a new path: what its way back showed was another path's.
    pub(crate) fn new_path(&mut self) {
        self.frequency.forget_way_back();
    }

    /// An ACK frame reporting up to `largest` went out in our packet `pn`.
    pub(crate) fn ack_sent(&mut self, pn: u64, largest: u64) {
        if let Some(slot) = self.watched.get_mut(usize::from(self.watching)) {
            *slot = (pn, largest);
            self.watching += 1;
        }
    }

    /// The peer acknowledged `ack` (an ACK frame it sent us, already checked against what
    /// we sent). A watched packet it names had its ACK frame seen: report nothing up to that
    /// frame's largest again. One it passes without naming (lost, or older than what the
    /// peer reports) is no longer watched.
    pub(crate) fn on_peer_ack(&mut self, ack: &Ack) {
        let peer_largest = ack.largest();
        let watched = &self.watched[..usize::from(self.watching)];
        // The ranges once (each walk decodes them from the frame's bytes), each against the
        // few packets watched (`Skips::any_in` in `recovery` says what this saved).
        if !watched.is_empty() {
            for r in ack.ranges.iter() {
                for &(pn, largest) in watched {
                    if r.smallest <= pn && pn <= r.largest {
                        self.reported_from = self.reported_from.max(largest + 1);
                    }
                }
            }
        }
        let mut kept = 0;
        for i in 0..usize::from(self.watching) {
            let (pn, largest) = self.watched[i];
            if pn > peer_largest {
                self.watched[kept] = (pn, largest);
                kept += 1;
            }
        }
        self.watching = kept as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const DELAY: Duration = Duration::from_millis(25);
    const RTT: Duration = Duration::from_millis(100);

    fn ranges(ack: &Ack) -> Vec<(u64, u64)> {
        ack.ranges.iter().map(|r| (r.smallest, r.largest)).collect()
    }

    #[test]
    fn every_second_eliciting_packet_is_acked_at_once() {
        let mut r = Received::new(256);
        let t = Instant::from_micros(1_000);
        r.on_packet(0, t, 0, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(r.deadline(), Some(t + DELAY));
        r.on_packet(1, t, 0, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(r.deadline(), Some(t));
        let ack = r.build(t + Duration::from_micros(10)).unwrap();
        assert_eq!(ranges(&ack), [(0, 1)]);
        assert_eq!(ack.ack_delay, 10);
        assert_eq!(r.deadline(), None);
    }

    /// Three round trips of a steady 4,000 packets a second (the climb ends with the first
    /// span that brings no more than the one before): then an ACK waits for the tenth
    /// packet, at most a quarter RTT, and goes at once for a packet out of order (module
    /// `ack_frequency`).
    #[test]
    fn a_steady_fast_flow_is_acknowledged_every_tenth_packet_and_a_gap_at_once() {
        let rtt = Duration::from_millis(40);
        let quarter = Duration::from_millis(10);
        let mut r = Received::new(256);
        let gap = Duration::from_micros(250);
        let start = Instant::from_micros(1_000);
        let mut t = start;
        let mut pn = 0;
        while t < start + Duration::from_millis(120) {
            r.on_packet(pn, t, 0, AckWanted::Promptly, DELAY, rtt);
            if r.deadline() == Some(t) {
                r.build(t);
            }
            pn += 1;
            t += gap;
        }
        r.build(t);
        for i in 0..9 {
            r.on_packet(pn + i, t, 0, AckWanted::Promptly, DELAY, rtt);
            assert_eq!(r.deadline(), Some(t + quarter), "packet {i}");
        }
        r.on_packet(pn + 9, t, 0, AckWanted::Promptly, DELAY, rtt);
        assert_eq!(r.deadline(), Some(t));
        r.build(t);
        r.on_packet(pn + 11, t, 0, AckWanted::Promptly, DELAY, rtt);
        assert_eq!(r.deadline(), Some(t), "out of order");
    }

    #[test]
    fn non_eliciting_packets_never_set_the_timer() {
        let mut r = Received::new(256);
        r.on_packet(0, Instant::ZERO, 0, AckWanted::Nothing, DELAY, RTT);
        r.on_packet(1, Instant::ZERO, 0, AckWanted::Nothing, DELAY, RTT);
        assert_eq!(r.deadline(), None);
        assert!(r.has_news());
    }

    #[test]
    fn a_packet_wanting_a_lazy_answer_waits_the_lazy_delay_and_counts_toward_nothing() {
        let mut r = Received::new(256);
        let t = Instant::from_micros(1_000);
        r.on_packet(0, t, 0, AckWanted::Lazily, DELAY, RTT);
        assert_eq!(r.deadline(), Some(t + LAZY_ACK_DELAY));
        // Nor toward every second packet: the next prompt one waits its own delay...
        r.on_packet(1, t, 0, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(r.deadline(), Some(t + DELAY));
        // ...and an ACK that goes for it answers both.
        assert_eq!(ranges(&r.build(t).unwrap()), [(0, 1)]);
        // Out of order, it still waits: only its receipts ask, and they can wait.
        r.on_packet(5, t, 0, AckWanted::Lazily, DELAY, RTT);
        assert_eq!(r.deadline(), Some(t + LAZY_ACK_DELAY));
    }

    #[test]
    fn gaps_and_duplicates_are_acked_at_once() {
        let mut r = Received::new(256);
        let t = Instant::from_micros(5);
        r.on_packet(0, t, 0, AckWanted::Promptly, DELAY, RTT);
        r.build(t);
        r.on_packet(3, t, 0, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(r.deadline(), Some(t));
        let ack = r.build(t).unwrap();
        assert_eq!(ranges(&ack), [(3, 3), (0, 0)]);
        assert!(r.is_duplicate(3) && !r.is_duplicate(2));
        r.ack_now(t);
        assert_eq!(r.deadline(), Some(t));
    }

    #[test]
    fn one_way_delay_is_arrival_minus_sender_timestamp() {
        let mut r = Received::new(256);
        let arrival = Instant::from_micros(10_000);
        r.on_packet(0, arrival, 9_000, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(r.build(arrival).unwrap().one_way_delay, 1_000);
        // Across the 32-bit wrap of either clock.
        r.on_packet(1, arrival, u32::MAX - 99, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(r.build(arrival).unwrap().one_way_delay, 10_100);
    }

    /// A peer's ACK frame naming exactly `pns`.
    fn peer_ack(pns: &[u64]) -> Ack {
        Ack {
            ranges: AckRanges::new(pns.iter().rev().map(|&pn| AckRange {
                smallest: pn,
                largest: pn,
            }))
            .unwrap(),
            ack_delay: 0,
            one_way_delay: 0,
        }
    }

    #[test]
    fn numbers_the_peer_saw_acknowledged_are_reported_no_more() {
        let mut r = Received::new(256);
        for pn in (0..10).filter(|&pn| pn != 5) {
            r.on_packet(pn, Instant::ZERO, 0, AckWanted::Promptly, DELAY, RTT);
        }
        let ack = r.build(Instant::ZERO).unwrap();
        assert_eq!(ranges(&ack), [(6, 9), (0, 4)]);
        // Our packet 100 carried that ACK; the peer's acknowledgement of 99 says nothing.
        r.ack_sent(100, ack.largest());
        r.on_packet(10, Instant::ZERO, 0, AckWanted::Promptly, DELAY, RTT);
        r.on_peer_ack(&peer_ack(&[99]));
        assert_eq!(ranges(&r.build(Instant::ZERO).unwrap()), [(6, 10), (0, 4)]);
        // Once it names 100, the gap at 5 is its business: only what came after 9 is reported.
        r.on_peer_ack(&peer_ack(&[100]));
        assert_eq!(ranges(&r.build(Instant::ZERO).unwrap()), [(10, 10)]);
        // Nothing new: the largest is still reported, so an ACK is never empty.
        r.ack_sent(101, 10);
        r.on_peer_ack(&peer_ack(&[101]));
        assert_eq!(ranges(&r.build(Instant::ZERO).unwrap()), [(10, 10)]);
        // A watched packet the peer's ACKs pass without naming (lost) is watched no more.
        r.on_packet(12, Instant::ZERO, 0, AckWanted::Promptly, DELAY, RTT);
        r.ack_sent(102, 12);
        r.on_peer_ack(&peer_ack(&[103]));
        r.on_peer_ack(&peer_ack(&[102, 104]));
        r.on_packet(14, Instant::ZERO, 0, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(ranges(&r.build(Instant::ZERO).unwrap()), [(14, 14), (12, 12)]);
        // Duplicates are still recognised below what is reported.
        assert!(r.is_duplicate(3) && !r.is_duplicate(5));
        // 5 was only late: it is reported, and what is above it with it (the peer learns
        // its loss was spurious, and stops resending what it carried).
        r.on_packet(5, Instant::ZERO, 0, AckWanted::Promptly, DELAY, RTT);
        assert_eq!(
            ranges(&r.build(Instant::ZERO).unwrap()),
            [(14, 14), (12, 12), (5, 10)]
        );
    }

    #[test]
    fn tracked_ranges_are_bounded() {
        let tracked = 300;
        let mut r = Received::new(tracked);
        for i in 0..(2 * tracked as u64) {
            r.on_packet(2 * i, Instant::ZERO, 0, AckWanted::Promptly, DELAY, RTT);
        }
        assert_eq!(r.pns.len(), tracked);
        let ack = r.build(Instant::ZERO).unwrap();
        assert_eq!(ack.ranges.len(), MAX_ACK_RANGES);
        assert!(r.is_duplicate(0), "forgotten numbers count as duplicates");
        // The oldest range still remembered is the 300th from the top: numbers missing
        // above it can still arrive; below what was forgotten, all count as duplicates.
        let oldest = 2 * tracked as u64;
        assert!(r.is_duplicate(oldest) && !r.is_duplicate(oldest + 1));
        assert!(r.is_duplicate(oldest - 2) && r.is_duplicate(oldest - 3));
    }
}
