//! Whether a path's losses follow the sending rate (weir's own rule; spec §8, Congestion
//! control, "Losses that follow the rate"). LEDBAT's; BBR tests the same thing with its
//! probes instead of a cut (module `bbr::policed`), and shares [`RATE_BOUND_CUTS`].
//!
//! BBR and LEDBAT take a loss as congestion only if a queue came with it: random loss on a
//! wireless or long path comes with none, and a controller that backs off for it holds a
//! fraction of the link. A policer (a token bucket at an ISP's or a carrier's edge that
//! drops what exceeds a subscriber's rate) queues nothing either: a sender above its rate
//! sees no delay, only loss. Without this rule LEDBAT, the scavenger, grew until a fifth of
//! what it sent was lost and took 69-91% of a policed path from a NewReno flow beside it
//! (tests/congestion.md, "Policers").
//!
//! The two differ in one thing: cutting the rate cuts a policer's losses, and leaves random
//! losses as they were. So a cut made for heavy losses with no queue (the controller's own
//! high-loss threshold) is a test. Its inputs are the loss rate then (a moving average over
//! [`AVERAGE_DATAGRAMS`]) and the packets sent after the cut: once they are
//! [`TEST_WINDOWS`] windows, [`AVERAGE_DATAGRAMS`], and as many as the rate before would
//! have lost [`TEST_EXPECTED_LOSSES`] of, their loss rate is compared with it. At a quarter
//! of it or less the losses follow the rate: the path is *rate-bound*. Otherwise they are
//! random.
//!
//! On a rate-bound path [`LossRegime::congested`] says a loss with no queue is congestion
//! once the recent rate passes [`THRESHOLD`]: every loss, as for a loss-based controller
//! (a floor of random loss tolerated beside the policer's was tried: measured after a cut
//! beside another flow, it was that flow's losses, and LEDBAT then left them unanswered).
//! No further test can tell a policer from random loss then (each cut would stop at the
//! next loss either way): the regime lasts [`RATE_BOUND_CUTS`] cuts, and then the losses
//! are taken as random until a heavy loss tests them again. On a policed path that is one
//! episode of heavy loss every so many cycles (a clean one cuts every few seconds at most);
//! on a path whose random loss looked rate-bound, a bounded spell of backing off. On a
//! policed path that also loses at random (a mobile one) every random loss is a cut: 16 cuts
//! flipped it back to random every couple of thousand datagrams, and each flip grew into
//! the bucket until a fifth was lost again (up to 22% dropped, measured); at 64 the
//! controller stays loss-based there (tests/congestion.md, "Policers").

use super::round_max::RoundMax;
use crate::time::{Duration, Instant};

/// The loss rate is a moving average over about this many datagrams (whatever the window:
/// a rate over one small window is one loss in a few datagrams).
const AVERAGE_DATAGRAMS: u64 = 64;
/// The packets after a cut that test it: at least this many windows of them (at the
/// window the cut left), [`AVERAGE_DATAGRAMS`] datagrams...
const TEST_WINDOWS: u64 = 2;
/// ...and enough that the loss rate before the cut would have lost this many of them:
/// seeing a quarter of that or fewer is then no chance (a Poisson count of mean 16 is 4 or
/// less once in 2,500).
const TEST_EXPECTED_LOSSES: u64 = 16;
/// A loss rate after the cut at most this fraction of the one before shows the losses
/// followed the rate.
const FELL_DIVISOR: u64 = 4;
/// On a rate-bound path a loss rate above this (thousandths) is congestion: any loss (one
/// weighs 1000 / [`AVERAGE_DATAGRAMS`]), as for a loss-based controller.
const THRESHOLD: u64 = 10;
/// Cuts a rate-bound regime lasts (a byte: `Regime` stays two bytes).
pub(crate) const RATE_BOUND_CUTS: u8 = 64;
/// The moving average's unit: millionths.
const WHOLE: u64 = 1_000_000;

/// A cut's test under way: the loss rate that made the cut, and what the packets sent
/// after it saw so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Test {
    cut: Instant,
    before_per_mille: u16,
    /// Datagrams the test needs acknowledged and lost together.
    span: u32,
    acked: u32,
    lost: u32,
}

/// What the losses of a path are, as far as its cuts have shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Regime {
    /// Random, or not known yet: only the controller's high-loss threshold applies.
    #[default]
    Random,
    /// The losses follow the rate; the regime lasts `cuts_left` more cuts.
    RateBound { cuts_left: u8 },
}

/// The loss rate of a path and what its cuts showed of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LossRegime {
    /// The loss rate over about the last [`AVERAGE_DATAGRAMS`], in millionths.
    recent: u32,
    /// The most queueing delay a sample showed in the current span of a minimum RTT and in
    /// the one before, in µs, and when the current span began.
    queue_peaks: RoundMax<u32, 2>,
    span_start: Option<Instant>,
    test: Option<Test>,
    regime: Regime,
}

impl Default for LossRegime {
    fn default() -> Self {
        LossRegime {
            recent: 0,
            queue_peaks: RoundMax::new(),
            span_start: None,
            test: None,
            regime: Regime::Random,
        }
    }
}

impl LossRegime {
    /// Datagrams acknowledged (`lost`: declared lost), `bytes` of them, the newest sent at
    /// `sent`.
    pub(crate) fn on_outcome(&mut self, sent: Instant, bytes: usize, max_datagram: usize, lost: bool) {
        // Rounded: the controller's datagram size may be the path's first, below what path
        // MTU discovery found since.
        let mss = max_datagram.max(1);
        let n = (((bytes + mss / 2) / mss) as u64).clamp(1, AVERAGE_DATAGRAMS);
        let recent = u64::from(self.recent);
        let recent = if lost {
            recent + (WHOLE - recent) * n / AVERAGE_DATAGRAMS
        } else {
            recent - recent * n / AVERAGE_DATAGRAMS
        };
        self.recent = recent as u32;
        let Some(test) = &mut self.test else {
            return;
        };
        if sent <= test.cut {
            return;
        }
        let n = n as u32;
        if lost {
            test.lost = test.lost.saturating_add(n);
        } else {
            test.acked = test.acked.saturating_add(n);
        }
        let seen = u64::from(test.acked) + u64::from(test.lost);
        if seen < u64::from(test.span) {
            return;
        }
        let after = u64::from(test.lost) * 1000 / seen;
        self.regime = if after * FELL_DIVISOR <= u64::from(test.before_per_mille) {
            Regime::RateBound {
                cuts_left: RATE_BOUND_CUTS,
            }
        } else {
            Regime::Random
        };
        self.test = None;
    }

    /// One sample of the queueing delay, in µs (the controller's filtered one: a single
    /// sample's jitter is no queue).
    pub(crate) fn on_queue_sample(&mut self, now: Instant, queue_us: u64, min_rtt: Duration) {
        if self.span_start.is_none_or(|start| now >= start + min_rtt) {
            self.queue_peaks.next_round();
            self.span_start = Some(now);
        }
        self.queue_peaks
            .update(u32::try_from(queue_us).unwrap_or(u32::MAX));
    }

    /// Whether a sample in the last minimum RTT or two showed more than `queue` of
    /// queueing: a loss then is a queue's (one that overflowed and drained before its
    /// losses were found), and tests nothing about policers.
    pub(crate) fn queue_peaked(&self, queue: Duration) -> bool {
        u64::from(self.queue_peaks.max()) > queue.as_micros()
    }

    /// The loss rate over about the last [`AVERAGE_DATAGRAMS`] datagrams, in thousandths.
    pub(crate) fn recent_per_mille(&self) -> u64 {
        u64::from(self.recent) / (WHOLE / 1000)
    }

    /// The controller cut its rate at `now` for losses that came with no queue (heavy ones,
    /// or [`congested`](Self::congested)), leaving a window of `window` bytes. On a
    /// rate-bound path the cut counts against the regime; otherwise the packets sent from
    /// now on test whether it cut the losses (unless a test is under way: a cut during one
    /// is part of it).
    pub(crate) fn on_cut(&mut self, now: Instant, window: usize, max_datagram: usize) {
        let before = self.recent_per_mille().max(1);
        // The cut answered the losses so far; the next one must be for losses after it.
        self.recent = 0;
        if let Regime::RateBound { cuts_left } = self.regime {
            self.regime = match cuts_left.checked_sub(1) {
                Some(cuts_left) if cuts_left > 0 => Regime::RateBound { cuts_left },
                _ => Regime::Random,
            };
            return;
        }
        if self.test.is_some() {
            return;
        }
        let windows = (window / max_datagram.max(1)) as u64 * TEST_WINDOWS;
        let span = windows
            .max(AVERAGE_DATAGRAMS)
            .max(TEST_EXPECTED_LOSSES * 1000 / before);
        self.test = Some(Test {
            cut: now,
            before_per_mille: before.min(1000) as u16,
            span: span.min(u64::from(u32::MAX)) as u32,
            acked: 0,
            lost: 0,
        });
    }

    /// Whether the path's losses have been seen to follow the rate.
    pub(crate) fn rate_bound(&self) -> bool {
        matches!(self.regime, Regime::RateBound { .. })
    }

    /// Whether the recent losses are congestion though no queue came with them: the path's
    /// losses follow the rate and the recent rate (since the last cut) passes
    /// [`THRESHOLD`].
    pub(crate) fn congested(&self) -> bool {
        self.rate_bound() && self.recent_per_mille() > THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    const MSS: usize = 1200;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// `packets` datagrams sent from `from` ms on, one a ms, every `nth` lost (0: none).
    fn send(regime: &mut LossRegime, from: u64, packets: u64, every_nth_lost: u64) {
        for i in 1..=packets {
            let lost = every_nth_lost != 0 && i % every_nth_lost == 0;
            regime.on_outcome(at(from + i), MSS, MSS, lost);
        }
    }

    #[test]
    fn the_loss_rate_is_an_average_over_some_sixty_datagrams() {
        let mut regime = LossRegime::default();
        send(&mut regime, 0, 640, 10);
        assert!(
            (80..=120).contains(&regime.recent_per_mille()),
            "{}",
            regime.recent_per_mille()
        );
        // An ACK of ten datagrams weighs as ten.
        let before = u64::from(regime.recent);
        regime.on_outcome(at(700), 10 * MSS, MSS, false);
        assert_eq!(u64::from(regime.recent), before - before * 10 / AVERAGE_DATAGRAMS);
    }

    #[test]
    fn losses_that_stop_when_the_rate_is_cut_follow_the_rate() {
        let mut regime = LossRegime::default();
        send(&mut regime, 0, 200, 4);
        assert!(!regime.rate_bound());
        regime.on_cut(at(200), 10 * MSS, MSS);
        // 16 expected at 24.5% (the average then): 65 datagrams, none lost.
        send(&mut regime, 200, 64, 0);
        assert!(!regime.rate_bound(), "the test is not over yet");
        send(&mut regime, 300, 1, 0);
        assert!(regime.rate_bound());
        send(&mut regime, 300, 200, 0);
        assert!(!regime.congested());
        send(&mut regime, 400, 64, 20);
        assert!(regime.congested(), "{}", regime.recent_per_mille());
    }

    #[test]
    fn losses_that_go_on_after_the_cut_are_random() {
        let mut regime = LossRegime::default();
        send(&mut regime, 0, 200, 4);
        regime.on_cut(at(200), 10 * MSS, MSS);
        // A cut during the test is part of it.
        send(&mut regime, 200, 40, 8);
        regime.on_cut(at(240), 10 * MSS, MSS);
        // 12.5% after a cut at 24.5%: the cut did not cut them.
        send(&mut regime, 240, 40, 8);
        assert!(!regime.rate_bound());
        assert!(regime.test.is_none());
    }

    #[test]
    fn a_rate_bound_regime_lasts_its_cuts() {
        let mut regime = LossRegime::default();
        send(&mut regime, 0, 200, 4);
        regime.on_cut(at(200), 10 * MSS, MSS);
        send(&mut regime, 200, 80, 0);
        for i in 0..RATE_BOUND_CUTS {
            assert!(regime.rate_bound(), "cut {i}");
            send(&mut regime, 300, 10, 10);
            assert!(regime.congested(), "cut {i}");
            regime.on_cut(at(300), 10 * MSS, MSS);
        }
        assert!(!regime.rate_bound());
        assert!(!regime.congested());
        assert!(regime.test.is_none(), "a rate-bound cut starts no test");
    }

    #[test]
    fn a_cut_answers_the_losses_before_it() {
        let mut regime = LossRegime::default();
        send(&mut regime, 0, 200, 4);
        regime.on_cut(at(200), 10 * MSS, MSS);
        send(&mut regime, 200, 80, 0);
        send(&mut regime, 300, 10, 5);
        assert!(regime.congested());
        regime.on_cut(at(310), 10 * MSS, MSS);
        assert!(!regime.congested());
    }

    #[test]
    fn a_queue_counts_for_a_round_or_two() {
        let mut regime = LossRegime::default();
        let (rtt, queue) = (Duration::from_millis(10), Duration::from_millis(2));
        regime.on_queue_sample(at(0), 5_000, rtt);
        regime.on_queue_sample(at(5), 100, rtt);
        assert!(regime.queue_peaked(queue));
        // The next round: the last one's peak still counts.
        regime.on_queue_sample(at(12), 100, rtt);
        assert!(regime.queue_peaked(queue));
        regime.on_queue_sample(at(25), 100, rtt);
        assert!(!regime.queue_peaked(queue));
    }

    /// Every LEDBAT connection carries one: its size is a budget, asserted. (The queue's
    /// peaks in BBR's `RoundMax` cost 8 bytes over a pair of numbers shifted by hand.)
    #[test]
    fn its_state_is_56_bytes() {
        assert_eq!(core::mem::size_of::<LossRegime>(), 56);
    }

    #[test]
    fn a_test_ignores_what_was_sent_before_the_cut() {
        let mut regime = LossRegime::default();
        send(&mut regime, 0, 200, 2);
        regime.on_cut(at(200), 10 * MSS, MSS);
        // Sent before the cut: losses of the episode that made it.
        send(&mut regime, 0, 100, 1);
        send(&mut regime, 200, 80, 0);
        assert!(regime.rate_bound());
    }
}
