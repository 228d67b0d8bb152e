//! Black-hole detection: falling back to the smallest datagram when large ones stop getting
//! through (RFC 8899 §4.3 and §5.2, the "black hole detected" transition; spec/protocol.md
//! §8, Black holes).
//!
//! A path can lose every datagram above some size while passing smaller ones: a tunnel
//! whose MTU is below what both ends announced, a middlebox that drops fragments. Loss
//! recovery alone never gets out of that: every retransmission is as large as the packet
//! it replaces, while small ACKs keep the connection from going idle.
//!
//! Inputs: each ack-eliciting packet sent (its size, and what kind of probe it was), the
//! packets an ACK acknowledged, whether it declared large packets lost, and the number of
//! the next packet; the large probe's loss. Output: the largest datagram
//! to send ([`BlackHole::limit`]), whether the next probe should be a small one
//! ([`BlackHole::wants_probe`]), and whether it is time to try the large size again
//! ([`BlackHole::wants_raise`]).
//!
//! The rule. Once two probe timeouts in a row went unanswered while large packets went
//! out, the second probe of each probe timeout is sent at the base size (1200 bytes). An
//! ACK that acknowledges small packets alone and declares large ones lost is evidence too
//! (an application whose messages end in a small datagram keeps ACKs coming, and no probe
//! timeout fires): it marks the next packet to be sent. A small probe, or a small packet
//! sent from the mark on (once such ACKs declared [`LARGE_LOST`] large packets lost),
//! acknowledged while none of the last [`LARGE_UNANSWERED`] or more large packets sent has
//! been, is one confirmation; [`CONFIRMATIONS`] of them, with no large
//! packet acknowledged in between, and the connection falls back to base-size datagrams
//! ([`Verdict::FellBack`]). Any large packet acknowledged clears the evidence, so random or
//! burst loss that also hits small packets never triggers it, and a confirmation needs a
//! packet sent after its evidence, a round trip later: a policer whose bucket ran dry
//! passes small packets and drops large ones for a moment, not for two round trips.
//!
//! The path MTU search (module `mtu_search`) then looks at once for a size between the base
//! and the one that failed; a size it confirms ends the fallback (the connection clears
//! this state, but its count of fallbacks, [`BlackHole::fallbacks`]).
//!
//! Raising again (RFC 8899 §5.1.2, PMTU_RAISE_TIMER): a black hole may have been a passing
//! route. [`RAISE_AFTER`] after the fallback, while the connection is sending, one probe
//! goes at the large size: a PING padded to it, carrying no data, so its loss loses nothing.
//! Acknowledged, the connection goes back to the large size; lost, it waits [`RAISE_AFTER`]
//! again. Either way its loss is no congestion signal (RFC 8899 §4.4): the connection
//! leaves it out of the loss it reports to the congestion controller. At a fallback the
//! connection starts congestion control over (`connection/loss.rs`, `fell_back`): the
//! losses that showed the black hole were of the datagrams' size, not congestion.

use crate::maybe_pn::MaybePn;
use crate::time::{Duration, Instant};
use crate::wire::MIN_DATAGRAM_SIZE;

/// RFC 8899 §5.1.1: PMTU_RAISE_TIMER, 600 s between tries of the large size after a black
/// hole.
pub(crate) const RAISE_AFTER: Duration = Duration::from_secs(600);

/// What a packet sent was to black-hole detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// An ordinary packet.
    None,
    /// A base-size probe: do small datagrams get through?
    Small,
    /// A large probe after a fallback: do large datagrams get through again?
    Raise,
    /// A probe of the path MTU search (module `mtu_search`): does a larger size get
    /// through? Not a large packet here: its loss says nothing of a black hole.
    Mtu,
}

/// What an acknowledgement changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing.
    Same,
    /// Large datagrams stopped getting through: the connection falls back to the base size.
    FellBack,
    /// Large datagrams get through again: the connection goes back to the large size.
    Raised,
}

/// Large packets sent, with none acknowledged since, before a small probe that gets
/// through counts as evidence of a black hole.
const LARGE_UNANSWERED: u16 = 3;

/// Confirmations (a small packet sent after the evidence acknowledged, after
/// [`LARGE_UNANSWERED`] large packets, with no large packet acknowledged between) before
/// falling back. Each spans a round trip at least, so the two take two: a policer whose
/// bucket is empty passes small packets and drops large ones too, but not for long.
const CONFIRMATIONS: u8 = 2;

/// Large packets declared lost by ACKs of small packets alone, with no large packet
/// acknowledged since, before such ACKs' evidence confirms anything: a black hole loses
/// every large packet, random loss one in five at worst. Without it, 20% random loss under
/// messages ending in a small datagram fell back once in 120 messages (a few large packets
/// lost in a row, the small tails through: `message_paths`); with it, eight in a row, 0.2^8.
const LARGE_LOST: u16 = 8;

/// Probe timeouts in a row without an answer before probes go small (RFC 9002 §7.6's
/// persistent-congestion span: the path is not just slow).
const PROBE_AFTER_PTOS: u32 = 2;

/// What a connection knows about large datagrams on its path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlackHole {
    /// Large packets sent since a large one was last acknowledged.
    large_unanswered: u16,
    /// Small packets acknowledged, each sent from [`mark`](Self::mark) on, after
    /// `LARGE_UNANSWERED` large packets unanswered.
    confirmations: u8,
    /// What set the mark.
    evidence: Evidence,
    /// Large packets declared lost by ACKs that acknowledged small packets alone, since a
    /// large one was last acknowledged.
    large_lost: u16,
    /// Fallbacks so far on this connection (saturating; kept through [`BlackHole::clear`]):
    /// `ConnectionStats::black_holes`. These four fields share the 8 bytes two counts took,
    /// so that an idle connection stays the size the scale test holds it to.
    fallbacks: u16,
    /// The first packet whose acknowledgement, small and with no large one, confirms: the
    /// latest small probe (a probe timeout's), or the next packet sent after an ACK of
    /// small packets alone declared large ones lost.
    mark: MaybePn,
    /// Fell back to the base size, and where trying the large size again stands.
    fallback: Option<Raise>,
}

/// What set the mark: whose acknowledgement, small and with no large one, confirms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Evidence {
    /// A probe timeout's small probe, after large packets went unanswered.
    #[default]
    Probe,
    /// An ACK of small packets alone that declared large ones lost; it confirms once
    /// [`LARGE_LOST`] large packets were.
    Losses,
}

/// After a fallback: the next try of the large size (one field for both, so that an idle
/// connection, of which an endpoint holds thousands, stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Raise {
    /// Try again at this instant.
    At(Instant),
    /// The large probe with this packet number is in flight.
    Probe(u64),
}

impl BlackHole {
    /// The largest datagram the path is trusted with: the base size once a black hole was
    /// detected, otherwise no limit.
    pub(crate) fn limit(&self) -> Option<usize> {
        self.fallback.map(|_| MIN_DATAGRAM_SIZE)
    }

    /// Times a black hole was detected on this connection.
    pub(crate) fn fallbacks(&self) -> u64 {
        u64::from(self.fallbacks)
    }

    /// Forgets what it knows of the path, but the count of fallbacks: large datagrams get
    /// through again, or the connection is on a new path.
    pub(crate) fn clear(&mut self) {
        *self = BlackHole {
            fallbacks: self.fallbacks,
            ..BlackHole::default()
        };
    }

    /// Whether a black hole was detected (the connection sends base-size datagrams).
    pub(crate) fn detected(&self) -> bool {
        self.fallback.is_some()
    }

    /// Whether a probe sent now, after `pto_count` unanswered probe timeouts, should be a
    /// base-size one, by a connection whose datagrams are `size` bytes.
    pub(crate) fn wants_probe(&self, pto_count: u32, size: usize) -> bool {
        !self.detected()
            && size > MIN_DATAGRAM_SIZE
            && pto_count >= PROBE_AFTER_PTOS
            && self.large_unanswered >= LARGE_UNANSWERED
    }

    /// Whether the next packet, at `now`, should be a large probe: fell back long enough ago
    /// and no large probe in flight.
    pub(crate) fn wants_raise(&self, now: Instant) -> bool {
        matches!(self.fallback, Some(Raise::At(at)) if at <= now)
    }

    /// An ack-eliciting packet `number` of `size` bytes went out, as `probe`.
    pub(crate) fn on_sent(&mut self, number: u64, size: usize, probe: Probe) {
        if size > MIN_DATAGRAM_SIZE && probe == Probe::None {
            self.large_unanswered = self.large_unanswered.saturating_add(1);
        }
        match probe {
            Probe::None | Probe::Mtu => {}
            Probe::Small => {
                self.mark = MaybePn::some(number);
                self.evidence = Evidence::Probe;
            }
            Probe::Raise => self.fallback = Some(Raise::Probe(number)),
        }
    }

    /// An ACK at `now` acknowledged these packets (number, size), and declared `large_lost`
    /// large packets lost (neither probes nor sent on a path before this one); `next` is the
    /// number of the next packet to be sent.
    pub(crate) fn on_acked(
        &mut self,
        now: Instant,
        acked: impl Iterator<Item = (u64, usize)>,
        large_lost: usize,
        next: u64,
    ) -> Verdict {
        let (mut small_acked, mut confirmed) = (false, false);
        for (number, size) in acked {
            if self.detected() {
                // Only the large probe says the path changed: a large packet from before
                // the fallback, acknowledged late, says nothing new.
                if self.fallback == Some(Raise::Probe(number)) {
                    self.clear();
                    return Verdict::Raised;
                }
                continue;
            }
            if size > MIN_DATAGRAM_SIZE {
                // Large datagrams get through: whatever was lost was lost to something else.
                self.large_unanswered = 0;
                self.large_lost = 0;
                self.confirmations = 0;
                self.mark = MaybePn::NONE;
                return Verdict::Same;
            }
            small_acked = true;
            confirmed |= self.mark.get().is_some_and(|mark| number >= mark);
        }
        if small_acked {
            let lost = u16::try_from(large_lost).unwrap_or(u16::MAX);
            self.large_lost = self.large_lost.saturating_add(lost);
        }
        let enough = self.evidence == Evidence::Probe || self.large_lost >= LARGE_LOST;
        if confirmed && enough && self.large_unanswered >= LARGE_UNANSWERED {
            self.mark = MaybePn::NONE;
            self.confirmations = self.confirmations.saturating_add(1);
            if self.confirmations >= CONFIRMATIONS {
                self.fallback = Some(Raise::At(now + RAISE_AFTER));
                self.fallbacks = self.fallbacks.saturating_add(1);
                return Verdict::FellBack;
            }
        }
        // Small packets got through while large ones sent before them did not (an
        // application whose messages end in a small datagram keeps ACKs coming, so no probe
        // timeout sends the small probe): whether it holds is asked of what is sent next.
        if small_acked && large_lost > 0 && self.mark.get().is_none() {
            self.mark = MaybePn::some(next);
            self.evidence = Evidence::Losses;
        }
        Verdict::Same
    }

    /// Packet `number` was declared lost at `now`: whether it was the large probe, whose
    /// loss is no congestion signal (and the next try waits [`RAISE_AFTER`]).
    pub(crate) fn on_lost(&mut self, now: Instant, number: u64) -> bool {
        if self.fallback != Some(Raise::Probe(number)) {
            return false;
        }
        self.fallback = Some(Raise::At(now + RAISE_AFTER));
        true
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    const LARGE: usize = 1400;

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    fn fallen_back() -> BlackHole {
        let mut b = BlackHole::default();
        for round in 0..2 {
            send_large(&mut b, 3);
            b.on_sent(10 + round, MIN_DATAGRAM_SIZE, Probe::Small);
            b.on_acked(at(0), [(10 + round, MIN_DATAGRAM_SIZE)].into_iter(), 0, 1_000);
        }
        assert!(b.detected());
        b
    }

    fn send_large(b: &mut BlackHole, n: u32) {
        for pn in 0..n {
            b.on_sent(u64::from(pn), LARGE, Probe::None);
        }
    }

    #[test]
    fn small_probes_answered_while_large_packets_are_not_make_it_fall_back() {
        let mut b = BlackHole::default();
        assert!(!b.wants_probe(2, LARGE), "no evidence yet");
        send_large(&mut b, 3);
        assert!(!b.wants_probe(1, LARGE), "one probe timeout is not enough");
        assert!(!b.wants_probe(2, MIN_DATAGRAM_SIZE), "nothing to fall back from");
        assert!(b.wants_probe(2, LARGE));
        b.on_sent(10, MIN_DATAGRAM_SIZE, Probe::Small);
        // Another small packet acknowledged is no confirmation; the probe is.
        assert_eq!(b.on_acked(at(0), [(9, 100)].into_iter(), 0, 1_000), Verdict::Same);
        assert_eq!(
            b.on_acked(at(0), [(10, MIN_DATAGRAM_SIZE)].into_iter(), 0, 1_000),
            Verdict::Same
        );
        assert_eq!(b.limit(), None, "one confirmation is not enough");
        send_large(&mut b, 2);
        b.on_sent(20, MIN_DATAGRAM_SIZE, Probe::Small);
        assert_eq!(
            b.on_acked(at(0), [(20, MIN_DATAGRAM_SIZE)].into_iter(), 0, 1_000),
            Verdict::FellBack
        );
        assert_eq!(b.limit(), Some(MIN_DATAGRAM_SIZE));
        assert!(b.detected());
        assert!(!b.wants_probe(5, LARGE), "nothing more to find");
    }

    /// An application whose messages end in a small datagram: each round its small tail is
    /// acknowledged and the ACK declares the large datagrams before it lost. No probe
    /// timeout fires (the ACKs keep coming), so the small probe never goes; the losses are
    /// the evidence, and the small tails sent after it confirm (found over sockets: the
    /// connection retransmitted at the large size for good).
    #[test]
    fn small_packets_acknowledged_while_large_ones_are_lost_make_it_fall_back() {
        let mut b = BlackHole::default();
        let mut verdicts = Vec::new();
        for round in 0..3u64 {
            let first = round * 14;
            for pn in first..first + 13 {
                b.on_sent(pn, LARGE, Probe::None);
            }
            b.on_sent(first + 13, 900, Probe::None);
            let tail = [(first + 13, 900)].into_iter();
            verdicts.push(b.on_acked(at(round), tail, 13, first + 14));
        }
        // The evidence in the first round, a confirmation in each of the next two.
        assert_eq!(verdicts, [Verdict::Same, Verdict::Same, Verdict::FellBack]);
        assert_eq!(b.fallbacks(), 1);
    }

    /// A policer whose bucket ran dry passes small packets and drops large ones, but not for
    /// long: small packets sent before the evidence confirm nothing, and a large packet
    /// acknowledged within the round trip that would confirm it clears it.
    #[test]
    fn small_packets_through_while_large_ones_are_lost_for_a_moment_are_no_black_hole() {
        let mut b = BlackHole::default();
        send_large(&mut b, 8);
        assert_eq!(b.on_acked(at(0), [(8, 50)].into_iter(), 1, 20), Verdict::Same);
        assert_eq!(b.on_acked(at(0), [(9, 50)].into_iter(), 1, 21), Verdict::Same);
        assert_eq!(b.on_acked(at(0), [(19, 50)].into_iter(), 1, 22), Verdict::Same);
        assert_eq!(b.on_acked(at(0), [(21, LARGE)].into_iter(), 0, 30), Verdict::Same);
        // Evidence again, and one confirmation a round trip later: not yet.
        send_large(&mut b, 8);
        assert_eq!(b.on_acked(at(0), [(31, 50)].into_iter(), 1, 40), Verdict::Same);
        assert_eq!(b.on_acked(at(0), [(40, 50)].into_iter(), 1, 50), Verdict::Same);
        assert!(!b.detected());
    }

    /// Random loss under messages that end small: large packets lost a few in a row, each
    /// found by an ACK of a small tail, the tails sent after it acknowledged. The marks
    /// alone would confirm; until [`LARGE_LOST`] large packets were lost they do not (20%
    /// random loss over sockets fell back once in 120 messages before the count). A black
    /// hole keeps losing them: the eighth loss lets the marks confirm, the ninth falls back.
    #[test]
    fn a_few_large_packets_lost_in_a_row_are_no_black_hole() {
        let mut b = BlackHole::default();
        let mut verdicts = Vec::new();
        for round in 0..9u64 {
            b.on_sent(2 * round, LARGE, Probe::None);
            b.on_sent(2 * round + 1, 900, Probe::None);
            let tail = [(2 * round + 1, 900)].into_iter();
            verdicts.push(b.on_acked(at(round), tail, 1, 2 * round + 2));
        }
        let mut expected = [Verdict::Same; 9];
        expected[8] = Verdict::FellBack;
        assert_eq!(verdicts, expected);
    }

    #[test]
    fn a_large_packet_acknowledged_clears_the_evidence() {
        let mut b = BlackHole::default();
        send_large(&mut b, 3);
        b.on_sent(10, MIN_DATAGRAM_SIZE, Probe::Small);
        assert_eq!(
            b.on_acked(at(0), [(10, MIN_DATAGRAM_SIZE)].into_iter(), 0, 1_000),
            Verdict::Same
        );
        // Random loss: a large packet gets through after all.
        assert_eq!(
            b.on_acked(at(0), [(11, LARGE)].into_iter(), 0, 1_000),
            Verdict::Same
        );
        assert!(!b.wants_probe(2, LARGE));
        send_large(&mut b, 3);
        b.on_sent(20, MIN_DATAGRAM_SIZE, Probe::Small);
        assert_eq!(
            b.on_acked(at(0), [(20, MIN_DATAGRAM_SIZE)].into_iter(), 0, 1_000),
            Verdict::Same
        );
        assert_eq!(b.limit(), None);
        // The probe and a large packet in one ACK: large ones pass.
        send_large(&mut b, 3);
        b.on_sent(30, MIN_DATAGRAM_SIZE, Probe::Small);
        assert_eq!(
            b.on_acked(
                at(0),
                [(30, MIN_DATAGRAM_SIZE), (31, LARGE)].into_iter(),
                0,
                1_000
            ),
            Verdict::Same
        );
        assert_eq!(b.limit(), None);
    }

    #[test]
    fn the_large_size_is_tried_again_after_the_raise_timer() {
        let mut b = fallen_back();
        assert!(!b.wants_raise(at(599)));
        assert!(b.wants_raise(at(600)));
        b.on_sent(40, LARGE, Probe::Raise);
        assert!(!b.wants_raise(at(601)), "one large probe at a time");
        // Lost: no congestion signal, and the next try in another 600 s.
        assert!(
            !b.on_lost(at(602), 39),
            "another packet's loss is the connection's"
        );
        assert!(b.on_lost(at(602), 40));
        assert_eq!(b.limit(), Some(MIN_DATAGRAM_SIZE));
        assert!(!b.wants_raise(at(1_201)));
        assert!(b.wants_raise(at(1_202)));
        // A large packet from before the fallback, acknowledged late, changes nothing.
        assert_eq!(
            b.on_acked(at(1_202), [(2, LARGE)].into_iter(), 0, 1_000),
            Verdict::Same
        );
        b.on_sent(50, LARGE, Probe::Raise);
        assert_eq!(
            b.on_acked(at(1_203), [(50, LARGE)].into_iter(), 0, 1_000),
            Verdict::Raised
        );
        assert_eq!(b.limit(), None);
        assert!(!b.wants_raise(at(5_000)));
    }
}
