//! NewReno as RFC 9002 §7 specifies it for QUIC: slow start, congestion avoidance
//! (one datagram per window acknowledged), halving on loss once per recovery period, and
//! the minimum window after persistent congestion, slow-starting back to the old window if
//! no loss came before the silence (an outage is not congestion; see
//! `on_persistent_congestion`).
//!
//! A reduction is undone when every loss that made it turns out spurious (weir's own, as
//! TCP's undo after spurious retransmissions, RFC 4015's Eifel response, and Linux's
//! `tcp_try_undo_recovery`): the window and slow-start threshold go back to what they were
//! before the recovery period and it ends. Without it a path that reorders by more than
//! loss detection had yet learned halved the window for each datagram it delivered late,
//! and NewReno kept a third of a 40 ms path with 10 ms of jitter
//! (`jitter::the_link_stays_full_when_the_delay_jitters`).

use super::{initial_window, AckEvent, CongestionController, LossEvent, MIN_WINDOW_PACKETS};
use crate::time::Instant;

/// RFC 9002 §7.3.2, kLossReductionFactor = 1/2.
const LOSS_REDUCTION_DIVISOR: usize = 2;

/// The NewReno congestion controller (RFC 9002 §7).
#[derive(Clone, Debug)]
pub struct NewReno {
    max_datagram: usize,
    window: usize,
    ssthresh: usize,
    /// RFC 9002 §7.3.2: packets sent before this instant belong to the current recovery
    /// period; their loss does not reduce the window again, their ACK does not grow it.
    recovery_start: Option<Instant>,
    /// Bytes acknowledged in congestion avoidance not yet turned into window growth.
    acked_in_avoidance: usize,
    /// A loss reduced the window and nothing was acknowledged since: persistent
    /// congestion found in the same episode does not halve ssthresh a second time.
    reduced: bool,
    /// What the current recovery period's reduction undoes to, while none of its losses
    /// has been shown real.
    undo: Option<Undo>,
}

/// A reduction that may yet be undone: the window and slow-start threshold before it, the
/// start of the recovery period before it (losses of packets sent before that belong to an
/// earlier period), and the bytes of this period's losses not yet shown spurious.
#[derive(Clone, Copy, Debug)]
struct Undo {
    window: usize,
    ssthresh: usize,
    since: Option<Instant>,
    outstanding: usize,
}

impl NewReno {
    /// A controller for datagrams of at most `max_datagram` bytes, at the initial window.
    pub fn new(max_datagram: usize) -> Self {
        NewReno {
            max_datagram,
            window: initial_window(max_datagram),
            ssthresh: usize::MAX,
            recovery_start: None,
            acked_in_avoidance: 0,
            reduced: false,
            undo: None,
        }
    }

    fn min_window(&self) -> usize {
        MIN_WINDOW_PACKETS * self.max_datagram
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }
}

impl CongestionController for NewReno {
    fn on_sent(&mut self, _now: Instant, _bytes: usize, _bytes_in_flight: usize) {}

    fn on_ack(&mut self, ack: &AckEvent) {
        self.reduced = false;
        // RFC 9002 §7.8: an application-limited sender does not grow a window it did not use.
        if self.in_recovery(ack.newest_sent) || ack.app_limited {
            return;
        }
        if self.window < self.ssthresh {
            // §7.3.1: slow start, the window grows by what was acknowledged.
            self.window += ack.bytes_acked;
            return;
        }
        // §7.3.3: one datagram for every window's worth acknowledged.
        self.acked_in_avoidance += ack.bytes_acked;
        while self.acked_in_avoidance >= self.window {
            self.acked_in_avoidance -= self.window;
            self.window += self.max_datagram;
        }
    }

    fn on_loss(&mut self, loss: &LossEvent) {
        if self.in_recovery(loss.newest_sent) {
            if let Some(undo) = &mut self.undo {
                undo.outstanding += loss.bytes_lost;
            }
            return;
        }
        // A reduction is undone only while every loss since it may be spurious: a new
        // period's loss ends the chance of the one before.
        self.undo = Some(Undo {
            window: self.window,
            ssthresh: self.ssthresh,
            since: self.recovery_start,
            outstanding: loss.bytes_lost,
        });
        // §7.3.2: enter recovery; the window halves once for all losses of this period.
        self.recovery_start = Some(loss.now);
        self.window = (self.window / LOSS_REDUCTION_DIVISOR).max(self.min_window());
        self.ssthresh = self.window;
        self.acked_in_avoidance = 0;
        self.reduced = true;
    }

    fn on_persistent_congestion(&mut self, now: Instant) {
        // §7.6.2: back to the minimum window; slow start climbs back to ssthresh. A loss
        // earlier in this episode set it (halved). Silence with no loss before it is an
        // outage as likely as congestion (a Wi-Fi handover, a mobile dead spot): slow start
        // climbs back to the whole old window, as TCP restarts after idle (RFC 5681 §4.1),
        // or further if slow start had not reached its threshold yet (the silence cut it
        // short, and the old window says nothing of the path: set there, a connection cut
        // off in its first round trips climbed back at a datagram per round trip, a fifth of
        // the path's rate 3 s after it came back; tests/congestion.md, "An outage in
        // Startup"), and the first loss on the way halves it if the path is congested after
        // all.
        self.recovery_start = Some(now);
        // Silence is no reordering: nothing before it is undone.
        self.undo = None;
        if !self.reduced {
            self.ssthresh = self.ssthresh.max(self.window).max(self.min_window());
        }
        self.reduced = true;
        self.window = self.min_window();
        self.acked_in_avoidance = 0;
    }

    fn on_spurious_loss(&mut self, loss: &LossEvent) {
        let in_recovery = self.in_recovery(loss.newest_sent);
        let Some(undo) = &mut self.undo else {
            return;
        };
        // Only the losses of this period count: sent before it began, after the one before.
        if !in_recovery || undo.since.is_some_and(|since| loss.newest_sent <= since) {
            return;
        }
        undo.outstanding = undo.outstanding.saturating_sub(loss.bytes_lost);
        if undo.outstanding > 0 {
            return;
        }
        // Every loss of the period arrived after all: it was never congestion.
        self.window = self.window.max(undo.window);
        self.ssthresh = self.ssthresh.max(undo.ssthresh);
        self.recovery_start = undo.since;
        self.acked_in_avoidance = 0;
        self.reduced = false;
        self.undo = None;
    }

    fn window(&self) -> usize {
        self.window
    }

    fn in_slow_start(&self) -> bool {
        self.window < self.ssthresh
    }
}

#[cfg(test)]
mod tests {
    use super::super::RttSample;
    use super::*;
    use crate::time::Duration;

    const MDS: usize = 1200;

    fn ack(now: u64, sent: u64, bytes: usize) -> AckEvent {
        let rtt = Duration::from_millis(50);
        AckEvent {
            now: Instant::from_micros(now),
            bytes_acked: bytes,
            newest_sent: Instant::from_micros(sent),
            rtt: RttSample {
                latest: rtt,
                smoothed: rtt,
                min: rtt,
            },
            one_way_delay: None,
            bytes_in_flight: 0,
            app_limited: false,
            rate: None,
        }
    }

    fn loss(now: u64, sent: u64) -> LossEvent {
        LossEvent {
            now: Instant::from_micros(now),
            bytes_lost: MDS,
            newest_sent: Instant::from_micros(sent),
            bytes_in_flight: 0,
        }
    }

    #[test]
    fn slow_start_doubles_then_loss_halves_once_per_period() {
        let mut c = NewReno::new(MDS);
        assert_eq!(c.window(), 12_000);
        c.on_ack(&ack(100, 10, 12_000));
        assert_eq!(c.window(), 24_000);
        assert!(c.in_slow_start());
        c.on_loss(&loss(200, 150));
        assert_eq!(c.window(), 12_000);
        // A second loss of a packet sent before recovery began changes nothing.
        c.on_loss(&loss(210, 180));
        assert_eq!(c.window(), 12_000);
        // Nor does the ACK of a packet sent before it.
        c.on_ack(&ack(220, 190, 12_000));
        assert_eq!(c.window(), 12_000);
        assert!(!c.in_slow_start());
        // A loss of a packet sent after recovery began is a new congestion event.
        c.on_loss(&loss(400, 300));
        assert_eq!(c.window(), 6_000);
    }

    #[test]
    fn avoidance_adds_one_datagram_per_window() {
        let mut c = NewReno::new(MDS);
        c.on_loss(&loss(10, 5));
        assert_eq!(c.window(), 6_000);
        c.on_ack(&ack(100, 50, 5_999));
        assert_eq!(c.window(), 6_000);
        c.on_ack(&ack(100, 50, 1));
        assert_eq!(c.window(), 7_200);
    }

    #[test]
    fn app_limited_acks_do_not_grow_the_window() {
        let mut c = NewReno::new(MDS);
        c.on_ack(&AckEvent {
            app_limited: true,
            ..ack(100, 10, 12_000)
        });
        assert_eq!(c.window(), 12_000);
    }

    #[test]
    fn persistent_congestion_drops_to_the_minimum_and_slow_starts_back() {
        let mut c = NewReno::new(MDS);
        c.on_ack(&ack(100, 10, 36_000));
        assert_eq!(c.window(), 48_000);
        c.on_persistent_congestion(Instant::from_micros(1_000));
        assert_eq!(c.window(), 2 * MDS);
        assert!(c.in_slow_start());
        c.on_ack(&ack(2_000, 1_500, 2 * MDS));
        assert_eq!(c.window(), 4 * MDS);
    }

    /// An outage: silence with no loss before it, persistent congestion declared and
    /// repeated at each further probe timeout, then the probes sent during it declared lost
    /// once the path is back. None of that halves the goal: slow start climbs back to the
    /// whole old window, here in congestion avoidance when the silence came.
    #[test]
    fn after_an_outage_slow_start_climbs_back_to_the_old_window() {
        let mut c = NewReno::new(MDS);
        c.on_loss(&loss(10, 5));
        c.on_ack(&ack(100, 50, 6_000));
        assert_eq!((c.window(), c.in_slow_start()), (7_200, false));
        c.on_persistent_congestion(Instant::from_micros(1_000));
        c.on_persistent_congestion(Instant::from_micros(3_000));
        c.on_loss(&loss(3_500, 2_500));
        assert_eq!(c.window(), 2 * MDS);
        c.on_ack(&ack(4_000, 3_800, 4_800));
        assert!(!c.in_slow_start());
        assert_eq!(c.window(), 7_200);
    }

    /// An outage in the first slow start, before any loss: the old window says nothing of
    /// the path, and slow start goes on past it. Before, the threshold was set to it, and a
    /// connection cut off in its first round trips climbed back at a datagram per round trip
    /// (`liveness::after_an_outage_in_startup_the_transfer_regains_its_rate_at_once`).
    #[test]
    fn an_outage_in_the_first_slow_start_does_not_end_it() {
        let mut c = NewReno::new(MDS);
        c.on_ack(&ack(100, 10, 36_000));
        c.on_persistent_congestion(Instant::from_micros(1_000));
        c.on_persistent_congestion(Instant::from_micros(3_000));
        assert_eq!(c.window(), 2 * MDS);
        c.on_ack(&ack(4_000, 3_800, 45_600));
        c.on_ack(&ack(4_100, 3_900, 48_000));
        assert!(c.in_slow_start());
        assert_eq!(c.window(), 96_000);
    }

    /// Every loss of a recovery period acknowledged after all (a path that reorders): the
    /// reduction is undone, slow start with it, and the period ends. Before, each late
    /// datagram halved the window for good: NewReno kept 38.8% of a 40 ms path with 10 ms
    /// of jitter (`jitter::the_link_stays_full_when_the_delay_jitters`).
    #[test]
    fn a_reduction_whose_losses_all_arrived_is_undone() {
        let mut c = NewReno::new(MDS);
        c.on_ack(&ack(100, 10, 12_000));
        c.on_loss(&loss(200, 150));
        c.on_loss(&loss(210, 160));
        assert_eq!(c.window(), 12_000);
        assert!(!c.in_slow_start());
        c.on_spurious_loss(&loss(300, 150));
        assert_eq!(c.window(), 12_000, "one of the two losses may be real");
        c.on_spurious_loss(&loss(310, 160));
        assert_eq!(c.window(), 24_000);
        assert!(c.in_slow_start());
        // The period ended: the ACK of a packet sent within it grows the window again.
        c.on_ack(&ack(320, 190, 1_200));
        assert_eq!(c.window(), 25_200);
    }

    /// A loss of the period that is not shown spurious keeps the reduction; so does a
    /// period that ended in a new one (the old period's late packets no longer count), and
    /// persistent congestion.
    #[test]
    fn a_reduction_with_a_real_loss_stays() {
        let mut c = NewReno::new(MDS);
        c.on_ack(&ack(100, 10, 12_000));
        c.on_loss(&loss(200, 150));
        c.on_loss(&loss(210, 160));
        c.on_spurious_loss(&loss(300, 160));
        c.on_ack(&ack(400, 300, 12_000));
        assert_eq!(c.window(), 13_200);
        // A new period (a packet sent after the first began): the first's late packet now
        // undoes nothing, the new one's does.
        c.on_loss(&loss(500, 450));
        assert_eq!(c.window(), 6_600);
        c.on_spurious_loss(&loss(510, 150));
        assert_eq!(c.window(), 6_600);
        c.on_spurious_loss(&loss(520, 450));
        assert_eq!(c.window(), 13_200);
        assert!(!c.in_slow_start(), "back to the first reduction's threshold");
        // Silence: nothing to undo.
        c.on_loss(&loss(600, 550));
        c.on_persistent_congestion(Instant::from_micros(700));
        c.on_spurious_loss(&loss(710, 550));
        assert_eq!(c.window(), 2 * MDS);
    }

    #[test]
    fn persistent_congestion_after_a_loss_does_not_halve_twice() {
        let mut c = NewReno::new(MDS);
        c.on_ack(&ack(100, 10, 36_000));
        c.on_loss(&loss(200, 150));
        assert_eq!(c.window(), 24_000);
        c.on_persistent_congestion(Instant::from_micros(300));
        assert_eq!(c.window(), 2 * MDS);
        // Slow start goes back up to 24,000, the half of 48,000 set by the loss.
        c.on_ack(&ack(1_000, 500, 20_400));
        assert!(c.in_slow_start());
        c.on_ack(&ack(1_100, 600, 1_200));
        assert!(!c.in_slow_start());
        assert_eq!(c.window(), 24_000);
    }
}
