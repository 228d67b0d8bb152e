//! LEDBAT, "low extra delay background transport" (RFC 6817), with the remedies of LEDBAT++
//! (draft-irtf-iccrg-ledbat-plus-plus-01) for its known failures.
//!
//! The signal is queueing delay: the one-way delay of each acknowledged packet (spec §3.4:
//! the receiver's arrival time minus the sender's header timestamp, so the peer's ack delay
//! never enters it) above the lowest one-way delay seen recently (the base delay). Below the
//! target the window grows; above it, it shrinks, so a LEDBAT flow keeps the bottleneck
//! queue near the target and backs off as soon as other traffic builds a queue.
//!
//! What is RFC 6817 and what is LEDBAT++ here:
//! - §2.4.2 / §3.4.2: base delay is the minimum over [`BASE_HISTORY`] one-minute buckets;
//!   current delay is the minimum of the last [`CURRENT_FILTER`] samples; the two clocks'
//!   offset cancels out because only their difference is used.
//! - §2.4.2: the window never grows past what was in flight plus `ALLOWED_INCREASE`, is
//!   reduced on loss at most once per RTT (how much: below), and never drops below the
//!   minimum window.
//! - Slow start ("LEDBAT MAY use slow start", §2.4.2; LEDBAT++ §4.1) doubles per RTT like
//!   TCP's and ends when queueing delay passes 1/4 of the target, or on a loss. LEDBAT++
//!   exits at 3/4 but also slows the doubling down by the gain; weir keeps TCP's doubling
//!   (so a 10 ms path does not take a hundred RTTs to fill) and exits earlier instead. The
//!   delay signal is one round old and the window doubled during that round, so the queue
//!   still overshoots by up to a bandwidth-delay product (measured in weir-sim); the
//!   multiplicative decrease drains it within a few RTTs.
//! - LEDBAT++ §4.2 (adaptive gain, [`LedbatGain::Adaptive`]): growth is slower on short
//!   paths, `1 / min(16, ceil(2 × target / base RTT))` datagrams per RTT.
//! - LEDBAT++ §4.3 (multiplicative decrease, [`LedbatDecrease::Multiplicative`]): below
//!   the target the window grows by the full gain per RTT, however close to the target;
//!   above it, it shrinks in proportion to the window and to how far above (at most half
//!   per RTT). Flows sharing a queue thus settle just above the target, where a bigger
//!   window shrinks faster: the windows even out. RFC 6817's rule ([`LedbatDecrease::Linear`])
//!   scales growth by the distance below the target too, so flows near the target barely
//!   move and whatever split they reached stays (measured: shares of 12% to 32%).
//! - LEDBAT++ §4.4 (periodic slowdowns, [`LedbatSlowdown::Periodic`]): every so often the
//!   window drops to two datagrams for two RTTs, so the queue drains and every flow sees
//!   the true base delay: LEDBAT++'s cure for the latecomer advantage (RFC 6817 §4.4).
//!   LEDBAT++ then slow-starts from two datagrams back to the old window, which on a long
//!   fat path costs a dozen RTTs each time. weir slow-starts from the pipe's size instead
//!   (the old window less what sat in the queue, `window × min RTT / RTT`). If the queue
//!   had reached a quarter of the target, the climb goes back to the old window and only a
//!   queue above the target stops it early: a queue built by *other* flows must not, or
//!   every flow that shares one would lose part of its window at each slowdown while the
//!   flow that drains the queue by its own slowdown keeps all of its (measured before
//!   this rule: the latecomer took 74% of the link). Otherwise (hardly any queue: the window was
//!   not filling the path) it is a first slow start again, so a window cut by a loss on a
//!   long path is rebuilt at the next slowdown instead of crawling back at the gain.
//! - Measured in weir-sim (four flows started 5 s apart on a 10 Mbit/s bottleneck, shares
//!   from 30 s to 60 s; `control` suite): 20-27% each at 50 ms RTT and 20-25% at 150 ms.
//!   Convergence is slower on short and very long paths: at 10 ms the last flow had 36% of
//!   the link over that span and at 300 ms the shares spread from 13% to 30%, because near
//!   the target a base delay off by one datagram's transmission time outweighs the small
//!   adaptive gain.
//! - Loss (weir's own rule, issue 31): a loss is congestion only if queueing delay came with
//!   it, more than an eighth of the base RTT; then the window keeps the pipe's share,
//!   `base RTT / (base RTT + queueing delay)`, at least half, once per recovery period. A
//!   loss with no queue (random loss on a wireless or long path) is resent and nothing
//!   else; losses above a fifth of what was recently sent halve as in RFC 6817, whatever
//!   the delay. A slowdown starts a recovery period: the packets in flight then sat in the
//!   queue it drains, and their losses must not cut its plan again.
//! - A policer (weir's own rule, module `loss_regime`): a token bucket that drops what
//!   exceeds a subscriber's rate shows no queue either, and LEDBAT grew into it until a fifth
//!   of what it sent was lost, taking the path from a NewReno flow beside it. A halving for
//!   losses past a fifth with no queue (none in the filtered delay of the last round or two)
//!   tests whether the losses stop at the halved rate; if they do, for the next 64 cuts
//!   every loss with no queue halves the window, the window grows by the gain only, and a
//!   slowdown resumes toward the old window. Measured in weir-sim (`policers` suite): alone,
//!   10-21% of what it sent dropped before, 0.03-0.53% now, for 52-80% of the policed rate
//!   (76-98% before); beside NewReno, NewReno's share 5-13% before, 46-69% now.
//! - Regrowth with no queue (weir's own rule, issue 31): while the queueing delay is below
//!   an eighth of both the target and the base RTT, the window grows by an eighth of itself
//!   per RTT rather than by the gain. No queue at all means the window is short of the pipe
//!   (a congestive cut, or a slowdown that resumed below it), and RFC 6817's growth of at
//!   most a datagram per RTT takes thousands of RTTs to refill a long fat path (measured: a
//!   300 ms, 100 Mbit/s path held at 66% of the link by one cut). The delay signal is a
//!   round old, so the queue overshoots by about an eighth of a BDP before the gain takes
//!   over again; a flow beside traffic that keeps a queue never sees it. Measured alone over
//!   issue 31's matrix: 87-98% of the link up to 2% loss (63-97% before this rule; 0.3-96%
//!   when every loss halved).
//! - After persistent congestion (RFC 9002 §7.6, in place of RFC 6817's "window = 1 MSS"
//!   after a retransmission timeout) the window drops to the minimum and slow start climbs
//!   back at once: no linear crawl from one datagram, which is the "death spiral" of
//!   delay-based controllers after timeouts on long paths. It climbs to half the old window
//!   if a loss came first, to the whole old window if silence came with no loss before it
//!   (an outage as likely as congestion; the queueing delay stops slow start early if the
//!   path is loaded). The probes lost in the silence belong to its recovery period, so
//!   their loss, found once the path is back, does not end slow start at the minimum
//!   (measured in weir-sim before this rule: 2.4 MB/s before a 3 s outage at 150 ms RTT,
//!   30 KB/s in the second after it, 270 KB/s five seconds on).

use super::loss_regime::LossRegime;
use super::{
    initial_window, AckEvent, CongestionController, DelayClock, LossEvent, RttSample, MIN_WINDOW_PACKETS,
};
use crate::time::{Duration, Instant};

/// RFC 6817 §3.4.2: BASE_HISTORY, one-minute buckets of minimum delay.
const BASE_HISTORY: usize = 10;
/// Length of one base-delay bucket.
const BASE_BUCKET: Duration = Duration::from_secs(60);
/// RFC 6817 §3.4.2: samples the current delay is the minimum of.
const CURRENT_FILTER: usize = 4;
/// RFC 6817 §2.5: ALLOWED_INCREASE, datagrams the window may exceed the flight by.
const ALLOWED_INCREASE: usize = 1;
/// LEDBAT++ §4.2: the slowest adaptive gain is 1/16.
const MAX_GAIN_DIVISOR: u64 = 16;
/// LEDBAT++ §4.4: a slowdown holds the minimum window for this many RTTs, and the next one
/// starts this many times the last one's length after it ended.
const SLOWDOWN_RTTS: u64 = 2;
const SLOWDOWN_SPACING: u64 = 9;
/// A loss is congestion only if the queueing delay is above the base RTT divided by this,
/// and above [`MIN_LOSS_QUEUE`].
const LOSS_QUEUE_DIVISOR: u64 = 8;
const MIN_LOSS_QUEUE: Duration = Duration::from_millis(1);
/// Losses above this share (thousandths) of what was recently acknowledged or lost are
/// congestion whatever the delay says.
const HEAVY_LOSS_PER_MILLE: u64 = 200;
/// Below the target and the base RTT divided by this, the window grows by this share of
/// itself per RTT.
const FAST_GROWTH_DIVISOR: i128 = 8;
/// Slow start ends when the queueing delay passes the target divided by this.
const SLOW_START_EXIT_DIVISOR: u64 = 4;

/// How fast LEDBAT's window grows below target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedbatGain {
    /// LEDBAT++ §4.2: `1 / min(16, ceil(2 × target / base RTT))` datagrams per RTT.
    Adaptive,
    /// A fixed gain in thousandths of a datagram per RTT at zero queueing delay (RFC 6817
    /// §2.5: at most 1000, i.e. GAIN ≤ 1).
    Fixed {
        /// Gain × 1000, 1 to 1000.
        per_mille: u16,
    },
}

/// Whether LEDBAT drains the queue now and then to re-measure the base delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedbatSlowdown {
    /// LEDBAT++ §4.4: minimum window for two RTTs, at most about 10% of the time.
    Periodic,
    /// RFC 6817 as written: never (latecomers then take more than their share).
    Disabled,
}

/// How LEDBAT's window follows the queueing delay around the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedbatDecrease {
    /// LEDBAT++ §4.3: the full gain per RTT below target; above it, a shrink in
    /// proportion to the window and to how far above target. Flows sharing a queue even
    /// out.
    Multiplicative,
    /// RFC 6817 §2.4.2: `gain × (target − delay) / target` datagrams per RTT on both sides
    /// of the target. Flows keep whatever split they reached.
    Linear,
}

/// LEDBAT's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedbatConfig {
    /// The queueing delay LEDBAT aims to add at the bottleneck (RFC 6817 §2.5: at most
    /// 100 ms). Default: 60 ms (LEDBAT++).
    pub target: Duration,
    /// Growth below target. Default: [`LedbatGain::Adaptive`].
    pub gain: LedbatGain,
    /// Growth and decrease around the target. Default: [`LedbatDecrease::Multiplicative`].
    pub decrease: LedbatDecrease,
    /// Periodic slowdowns. Default: [`LedbatSlowdown::Periodic`].
    pub slowdown: LedbatSlowdown,
}

impl Default for LedbatConfig {
    fn default() -> Self {
        LedbatConfig {
            target: Duration::from_millis(60),
            gain: LedbatGain::Adaptive,
            decrease: LedbatDecrease::Multiplicative,
            slowdown: LedbatSlowdown::Periodic,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Doubling until queueing delay or a loss says stop.
    SlowStart,
    /// Doubling back to the window held before a slowdown (LEDBAT++ §4.4).
    Restore,
    /// Delay-driven growth and decrease.
    Avoidance,
    /// LEDBAT++ §4.4: minimum window until `until`, then slow start from `resume` up to
    /// `ssthresh`.
    Slowdown {
        until: Instant,
        resume: usize,
        ssthresh: usize,
    },
}

/// The LEDBAT congestion controller (RFC 6817 with LEDBAT++'s remedies); see the module
/// docs for which rule comes from where.
#[derive(Clone, Debug)]
pub struct Ledbat {
    config: LedbatConfig,
    max_datagram: usize,
    window: usize,
    ssthresh: usize,
    phase: Phase,
    recovery_start: Option<Instant>,
    clock: DelayClock,
    /// Minimum delay per one-minute bucket, newest at `base_index` (the counts are bytes:
    /// an endpoint holds thousands of these).
    base: [i64; BASE_HISTORY],
    base_len: u8,
    base_index: u8,
    base_started: Instant,
    current: [i64; CURRENT_FILTER],
    current_len: u8,
    current_index: u8,
    /// Bytes of window change not yet applied (fractions of a byte, scaled by 2^16).
    carry: i128,
    /// LEDBAT++ §4.4: when the next slowdown starts, when the last one started, and how
    /// long the last one took with its climb back (what the next waits nine times).
    next_slowdown: Option<Instant>,
    slowdown_started: Option<Instant>,
    slowdown_length: Option<Duration>,
    /// Latest queueing delay seen, for statistics.
    queueing_delay: Duration,
    /// Smoothed RTT at the latest ACK (to schedule slowdowns from a loss).
    rtt: Duration,
    /// A loss or persistent congestion reduced the window and nothing was acknowledged
    /// since: a later persistent congestion is the same episode.
    reduced: bool,
    /// The path's minimum RTT at the latest ACK.
    min_rtt: Duration,
    /// Bytes acknowledged and lost lately (both halved each time the acknowledged pass a
    /// window, so they span a few round trips): the recent loss rate.
    acked_recent: u64,
    lost_recent: u64,
    /// Whether this path's losses follow the rate (a policer).
    regime: LossRegime,
}

/// A loss that is a congestion signal (`Ledbat::loss_response`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Congestion {
    /// Queueing delay came with it: the window keeps this share (thousandths).
    Queue { keep: u64 },
    /// No queue came with it, but the recent loss rate says congestion: the window halves,
    /// and the cut tests whether the losses follow the rate.
    NoQueue,
}

impl Ledbat {
    /// A controller for datagrams of at most `max_datagram` bytes.
    pub fn new(config: LedbatConfig, max_datagram: usize) -> Self {
        Ledbat {
            config,
            max_datagram,
            window: initial_window(max_datagram),
            ssthresh: usize::MAX,
            phase: Phase::SlowStart,
            recovery_start: None,
            clock: DelayClock::default(),
            base: [0; BASE_HISTORY],
            base_len: 0,
            base_index: 0,
            base_started: Instant::ZERO,
            current: [0; CURRENT_FILTER],
            current_len: 0,
            current_index: 0,
            carry: 0,
            next_slowdown: None,
            slowdown_started: None,
            slowdown_length: None,
            queueing_delay: Duration::ZERO,
            rtt: Duration::from_millis(100),
            reduced: false,
            min_rtt: Duration::from_millis(100),
            acked_recent: 0,
            lost_recent: 0,
            regime: LossRegime::default(),
        }
    }

    /// The queueing delay measured at the latest ACK: current delay above base delay.
    pub fn queueing_delay(&self) -> Duration {
        self.queueing_delay
    }

    fn min_window(&self) -> usize {
        MIN_WINDOW_PACKETS * self.max_datagram
    }

    /// RFC 6817 §3.4.2 update_base_delay and update_current_delay; returns the queueing
    /// delay in µs.
    fn on_delay_sample(&mut self, now: Instant, wire: u32) -> u64 {
        let delay = self.clock.unwrap(wire);
        if self.base_len == 0 {
            self.base[0] = delay;
            self.base_len = 1;
            self.base_started = now;
        } else if now >= self.base_started + BASE_BUCKET {
            self.base_index = (self.base_index + 1) % BASE_HISTORY as u8;
            self.base[usize::from(self.base_index)] = delay;
            self.base_len = (self.base_len + 1).min(BASE_HISTORY as u8);
            self.base_started = now;
        } else {
            let b = &mut self.base[usize::from(self.base_index)];
            *b = (*b).min(delay);
        }
        self.current[usize::from(self.current_index)] = delay;
        self.current_index = (self.current_index + 1) % CURRENT_FILTER as u8;
        self.current_len = (self.current_len + 1).min(CURRENT_FILTER as u8);
        let base = self.base_min();
        let current = self.current[..usize::from(self.current_len)]
            .iter()
            .copied()
            .min()
            .unwrap_or(base);
        let queueing = u64::try_from(current - base).unwrap_or(0);
        self.regime.on_queue_sample(now, queueing, self.min_rtt);
        queueing
    }

    fn base_min(&self) -> i64 {
        // The ring fills from index 0, so the filled buckets are the first `base_len`.
        self.base[..usize::from(self.base_len)]
            .iter()
            .copied()
            .min()
            .unwrap_or(0)
    }

    /// The loss rate lately, in thousandths of what was acknowledged or lost.
    fn recent_loss_per_mille(&self) -> u64 {
        let seen = self.acked_recent + self.lost_recent;
        (self.lost_recent * 1000).checked_div(seen).unwrap_or(0)
    }

    /// Whether a loss is a congestion signal, and of which kind. A loss counts if queueing
    /// delay rose with it (more than [`LOSS_QUEUE_DIVISOR`]th of the base RTT and
    /// [`MIN_LOSS_QUEUE`]): then the window keeps the pipe's share, `base RTT / (base RTT +
    /// queueing delay)`, at least half, so the queue drains while the link stays busy.
    /// Random loss, which comes with no queue, is repaired without touching the window,
    /// unless it passes [`HEAVY_LOSS_PER_MILLE`] of what was sent recently, or the path's
    /// losses have been seen to follow the rate (module `loss_regime`: a policer), where
    /// every loss counts: then it halves as in RFC 6817. A queue the filtered delay showed
    /// in the last round or two counts as one.
    fn loss_response(&self) -> Option<Congestion> {
        let recent = self.recent_loss_per_mille();
        let heavy = recent > HEAVY_LOSS_PER_MILLE;
        let q = self.queueing_delay.as_micros();
        let base = self.min_rtt.as_micros().max(1);
        let queue = (base / LOSS_QUEUE_DIVISOR).max(MIN_LOSS_QUEUE.as_micros());
        if q > queue {
            let keep = if heavy {
                500
            } else {
                (base * 1000 / (base + q)).max(500)
            };
            return Some(Congestion::Queue { keep });
        }
        // A queue that overflowed may have drained by the time its losses are found (a
        // round trip later, after a cut): it showed in the delay of the last round or two.
        if self.regime.queue_peaked(Duration::from_micros(queue)) {
            return heavy.then_some(Congestion::Queue { keep: 500 });
        }
        (heavy || self.regime.congested()).then_some(Congestion::NoQueue)
    }

    /// Gain × 1000.
    fn gain_per_mille(&self, min_rtt: Duration) -> u64 {
        match self.config.gain {
            LedbatGain::Fixed { per_mille } => u64::from(per_mille.clamp(1, 1000)),
            LedbatGain::Adaptive => {
                let rtt = min_rtt.as_micros().max(1);
                let divisor = (2 * self.config.target.as_micros()).div_ceil(rtt);
                1000 / divisor.clamp(1, MAX_GAIN_DIVISOR)
            }
        }
    }

    /// Adds `delta` bytes × 2^-16 to the window, keeping the fraction.
    fn grow_scaled(&mut self, delta: i128) {
        self.carry += delta;
        let whole = self.carry >> 16;
        self.carry -= whole << 16;
        let w = self.window as i128 + whole;
        self.window = w.clamp(self.min_window() as i128, usize::MAX as i128 / 2) as usize;
    }

    /// LEDBAT++ §4.4 holds the minimum window for two RTTs. The smoothed RTT is inflated by
    /// the very queue the slowdown drains, so the hold is two base RTTs plus the time the
    /// queue takes to drain (the queueing delay now). Then slow start climbs back to the
    /// old window as in LEDBAT++, but from the pipe's size (the old window less its queue,
    /// `window × min RTT / RTT`) rather than from two datagrams, and past the old window
    /// if there was hardly a queue (the window was not filling the path).
    fn start_slowdown(&mut self, now: Instant, rtt: &RttSample) {
        // The pipe from the queue now, not from the smoothed RTT: that lags the queue by
        // several round trips, and a queue already drained took part of the pipe away too.
        let min = u128::from(rtt.min.as_micros().max(1));
        let with_queue = min + u128::from(self.queueing_delay.as_micros());
        let pipe = (self.window as u128 * min / with_queue) as usize;
        let target = self.config.target.as_micros();
        // On a path whose losses follow the rate no queue shows either, and the window was
        // what its last loss left: a first slow start would overshoot the policer.
        let filled = SLOW_START_EXIT_DIVISOR * self.queueing_delay.as_micros() > target;
        let ssthresh = if filled || self.regime.rate_bound() {
            self.window
        } else {
            usize::MAX
        };
        self.slowdown_started = Some(now);
        self.next_slowdown = None;
        self.carry = 0;
        // The packets in flight now sat in the queue this slowdown drains, and the plan
        // below already takes that queue off: their losses, found during the slowdown, are
        // not a new congestion event (before this rule, each halved the plan again).
        self.recovery_start = Some(now);
        self.phase = Phase::Slowdown {
            until: now + rtt.min.saturating_mul(SLOWDOWN_RTTS) + self.queueing_delay,
            resume: pipe.max(self.min_window()),
            ssthresh,
        };
    }

    /// Leaving slow start: LEDBAT++ §4.4 schedules the next slowdown — two RTTs after the
    /// first slow start, or nine times the last slowdown's length after it. A slow start
    /// that was neither (after persistent congestion, an outage) keeps the periodic
    /// spacing: the initial slowdown is the connection's first slow start's. (Scheduled two
    /// RTTs on, it held the window at the minimum just as the transfer had regained its
    /// rate: in weir-sim, a 3 s outage at 150 ms RTT left the second second after
    /// progress resumed at 0.60 of the rate before it in 4 seeds of 10.)
    fn end_slow_start(&mut self, now: Instant, rtt: Duration) {
        self.phase = Phase::Avoidance;
        self.ssthresh = self.window;
        if self.config.slowdown == LedbatSlowdown::Periodic {
            if let Some(started) = self.slowdown_started.take() {
                self.slowdown_length = Some(now - started);
            }
            let wait = match self.slowdown_length {
                Some(length) => length.saturating_mul(SLOWDOWN_SPACING),
                None => rtt.saturating_mul(SLOWDOWN_RTTS),
            };
            self.next_slowdown = Some(now + wait);
        }
    }
}

impl CongestionController for Ledbat {
    fn on_sent(&mut self, _now: Instant, _bytes: usize, _bytes_in_flight: usize) {}

    fn on_ack(&mut self, ack: &AckEvent) {
        self.reduced = false;
        let now = ack.now;
        let rtt = ack.rtt.smoothed.max(Duration::from_micros(1));
        self.rtt = rtt;
        self.min_rtt = ack.rtt.min;
        self.acked_recent += ack.bytes_acked as u64;
        self.regime
            .on_outcome(ack.newest_sent, ack.bytes_acked, self.max_datagram, false);
        if self.acked_recent > self.window as u64 {
            self.acked_recent /= 2;
            self.lost_recent /= 2;
        }
        let queueing = match ack.one_way_delay {
            Some(wire) => {
                let q = self.on_delay_sample(now, wire);
                self.queueing_delay = Duration::from_micros(q);
                q
            }
            None => self.queueing_delay.as_micros(),
        };
        let target = self.config.target.as_micros().max(1);
        match self.phase {
            Phase::Slowdown {
                until,
                resume,
                ssthresh,
            } => {
                if now >= until {
                    self.window = resume;
                    self.ssthresh = ssthresh;
                    self.phase = if ssthresh == usize::MAX {
                        Phase::SlowStart
                    } else {
                        Phase::Restore
                    };
                }
                return;
            }
            Phase::Avoidance => {
                if self.next_slowdown.is_some_and(|at| now >= at) {
                    self.start_slowdown(now, &ack.rtt);
                    return;
                }
            }
            Phase::SlowStart | Phase::Restore => {}
        }
        let in_recovery = self.recovery_start.is_some_and(|s| ack.newest_sent <= s);
        if in_recovery || ack.app_limited {
            return;
        }
        let exit_delay = match self.phase {
            Phase::SlowStart => Some(target / SLOW_START_EXIT_DIVISOR),
            Phase::Restore => Some(target),
            _ => None,
        };
        if let Some(exit_delay) = exit_delay {
            // Leave slow start once the queue passes a quarter of the target (see the module
            // docs for why not LEDBAT++'s three quarters), or at ssthresh after a loss; the
            // climb back from a slowdown goes to ssthresh unless the queue passes the target.
            if queueing > exit_delay || self.window >= self.ssthresh {
                self.end_slow_start(now, rtt);
            } else {
                // The flight cap below does not apply here: paced, a doubling window is
                // never entirely in flight when its ACKs return.
                self.window += ack.bytes_acked;
                return;
            }
        }
        let flight = ack.bytes_in_flight + ack.bytes_acked;
        let max_allowed = flight + ALLOWED_INCREASE * self.max_datagram;
        let gain = self.gain_per_mille(ack.rtt.min) as i128;
        let acked = ack.bytes_acked as i128;
        let mds = self.max_datagram as i128;
        let w = self.window as i128;
        let before = self.window;
        let (q, t) = (queueing as i128, target as i128);
        // Per RTT (a window acknowledged), the window changes by `per_rtt` bytes; per ACK
        // by `per_rtt × acked / window`. Scaled by 2^16 to keep fractions.
        let up = ((gain * mds) << 16) / 1000;
        let per_rtt_scaled = match self.config.decrease {
            // RFC 6817 §2.4.2: GAIN × off_target datagrams per RTT, off_target = (T − q) / T.
            LedbatDecrease::Linear => ((gain * mds * (t - q)) << 16) / (1000 * t),
            // LEDBAT++ §4.3: GAIN per RTT below target (not scaled by off_target)...
            LedbatDecrease::Multiplicative if q <= t => up,
            // ...and GAIN − W × (q / T − 1), no less than −W/2, above it.
            LedbatDecrease::Multiplicative => {
                let down = ((w * (q - t)) << 16) / t;
                (up - down).max(-(w << 16) / 2)
            }
        };
        // No queue at all: the window is short of the pipe (a congestive cut or a slowdown's
        // estimate fell below it). At a datagram per RTT a long fat path would take
        // thousands of RTTs to refill; grow by an eighth per RTT instead until a queue shows.
        // Not on a path whose losses follow the rate: there no queue is what a policer
        // shows, and growing by an eighth per RTT between its losses took a policed path
        // from a NewReno flow beside it (module `loss_regime`).
        let base = i128::from(ack.rtt.min.as_micros().max(1));
        let rate_bound = self.regime.rate_bound();
        let per_rtt_scaled = if !rate_bound && q * FAST_GROWTH_DIVISOR <= t.min(base) {
            per_rtt_scaled.max((w << 16) / FAST_GROWTH_DIVISOR)
        } else {
            per_rtt_scaled
        };
        self.grow_scaled(per_rtt_scaled * acked / w.max(1));
        // RFC 6817 §2.4.2: no growth past the flight plus ALLOWED_INCREASE. (The RFC cuts
        // the window down to it; weir only stops the growth, so a sender that paused does
        // not come back to a window it must rebuild at one datagram per RTT.)
        if self.window > before && self.window > max_allowed {
            self.window = before.max(max_allowed);
            self.carry = 0;
        }
    }

    fn on_loss(&mut self, loss: &LossEvent) {
        self.lost_recent += loss.bytes_lost as u64;
        self.regime
            .on_outcome(loss.newest_sent, loss.bytes_lost, self.max_datagram, true);
        if self.recovery_start.is_some_and(|s| loss.newest_sent <= s) {
            return;
        }
        let Some(congestion) = self.loss_response() else {
            // No queue came with it: a random loss. The connection resends what was lost;
            // the window, and slow start if it was on, go on as they were.
            return;
        };
        // RFC 6817 §2.4.2 halves on loss, once per RTT (the recovery period). Here the
        // window loses the share of it that sat in the queue (at most half), so the pipe
        // stays full while the queue drains: LEDBAT regrows by at most a datagram per RTT,
        // and a window cut below the pipe takes hundreds of round trips to refill on a fast
        // or long path.
        self.recovery_start = Some(loss.now);
        self.reduced = true;
        let keep = match congestion {
            Congestion::Queue { keep } => keep,
            Congestion::NoQueue => 500,
        };
        self.window = (self.window as u64 * keep / 1000) as usize;
        self.window = self.window.max(self.min_window());
        self.carry = 0;
        if congestion == Congestion::NoQueue {
            self.regime.on_cut(loss.now, self.window, self.max_datagram);
        }
        match self.phase {
            Phase::SlowStart | Phase::Restore => self.end_slow_start(loss.now, self.rtt),
            Phase::Avoidance => self.ssthresh = self.window,
            // The slowdown already holds the minimum; it resumes at half its plan.
            Phase::Slowdown { until, resume, .. } => {
                let half = (resume / 2).max(self.min_window());
                self.phase = Phase::Slowdown {
                    until,
                    resume: half,
                    ssthresh: half,
                }
            }
        }
    }

    fn on_persistent_congestion(&mut self, now: Instant) {
        self.recovery_start = Some(now);
        // A loss earlier in this episode halved the window already; silence with no loss
        // before it is an outage as likely as congestion: the goal is the whole old window
        // (slow start stops earlier anyway once the queue grows). A repeat, at a later probe
        // timeout of the same silence, only moves the recovery period on.
        if !self.reduced {
            self.ssthresh = self.window.max(self.min_window());
        }
        self.reduced = true;
        self.window = self.min_window();
        self.carry = 0;
        self.phase = Phase::SlowStart;
    }

    fn window(&self) -> usize {
        match self.phase {
            Phase::Slowdown { .. } => self.min_window(),
            _ => self.window,
        }
    }

    fn in_slow_start(&self) -> bool {
        matches!(self.phase, Phase::SlowStart | Phase::Restore)
    }

    fn queueing_delay(&self) -> Option<Duration> {
        Some(self.queueing_delay)
    }
}

#[cfg(test)]
mod tests;
