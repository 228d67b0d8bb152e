//! Pacing: when the next datagram of a connection may leave (RFC 9002 §7.7; spec §8.6).
//!
//! A token bucket filled at the congestion controller's pacing rate if it has one (a
//! model-based controller paces at its bandwidth estimate, [`Pace::Rate`]), otherwise at
//! `N × window / RTT` (N = 5/4, or 2 in slow start so the pacer never holds back a window
//! that doubles each RTT), holding up to 2 ms of that rate.
//! Input: the pace, the RTT estimator, the time, and each datagram sent. Output: either
//! "send now" or the instant the bucket holds a quantum (1 ms at the rate, at most half the
//! bucket, at least a datagram: [`WAKE_QUANTUM`]), which the connection turns into its
//! pacing timer so the driver wakes then (no busy polling) and sends what it earned in one
//! go. Integer arithmetic only.
//!
//! Two choices differ from the RFC's example, both measured (spec §8.6 gives the figures):
//!
//! - In slow start the RTT is the smaller of the smoothed RTT and the latest sample. One
//!   sample far above the path's (a host that did not read its socket for a moment, as
//!   when an application blocks its runtime) takes the smoothed RTT dozens of samples to
//!   forget; pacing on it held a sender to a fraction of the path meanwhile, and a window
//!   the pacer holds back cannot double. A later, lower sample says the path is fast again.
//!   After slow start it is the smoothed RTT, as in the RFC: pacing on the latest sample
//!   there too let a LEDBAT latecomer take 57% of a 10 ms bottleneck shared by four
//!   (`control::ledbat_latecomers_share_evenly_with_the_remedies`).
//! - The bucket holds up to 256 datagrams. Runtimes' timers fire on ticks (tokio's are
//!   1 ms), so a driver woken for the next datagram wakes up to a tick late; the bucket must
//!   hold what the rate earned meanwhile or the rate is lost. At 16, the old bound, a
//!   sender woken by its timer alone could not exceed 16 datagrams per tick (23 MB/s).
//!
//! The bucket itself ([`TokenBucket`]) also enforces the endpoint-wide send rate
//! ([`Config::max_send_rate`](crate::Config::max_send_rate)), which wakes its sender for a
//! quantum too.

use crate::congestion::MIN_WINDOW_PACKETS;
use crate::recovery::rtt::RttEstimator;
use crate::time::{Duration, Instant};

/// Longest burst the bucket holds, as time at the pacing rate: two of tokio's 1 ms ticks.
const BURST_INTERVAL: Duration = Duration::from_millis(2);
/// Bounds of the burst in datagrams: at least two so ACK clocking works when the rate is
/// low; at most 256 (quinn's bound too) so a large window does not leave as one train.
const MIN_BURST_PACKETS: u64 = 2;
const MAX_BURST_PACKETS: u64 = 256;
/// A sender the pacer holds back is woken once the bucket holds this long at the pacing
/// rate (or half the bucket, if less; or one datagram, if more), not as soon as it holds
/// one datagram: the datagrams earned meanwhile leave together, in one wake-up and one
/// system call. Paced one datagram at a time, a driver whose timer is exact (weir-std's,
/// `ppoll` to the microsecond) woke and sent for each: over weir-bench's 40 ms path its
/// sender made five times weir-tokio's `sendmsg` calls (whose 1 ms timer ticks batched
/// them), and its receiver, taking one or two datagrams a receive, acknowledged every
/// second; 21 µs of CPU a message against 12 with this quantum (`messages-far`; spec
/// §8.6). 1 ms at the rate is what Linux's TCP hands its NIC at a time (TSO autosizing),
/// and within the 2 ms the bucket holds.
const WAKE_QUANTUM: Duration = Duration::from_millis(1);

/// Bytes × 2^10.
const SCALE: u32 = 10;

/// A token bucket in bytes: filled at a rate up to a capacity, drained by what is sent.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    /// Bytes that may leave now, scaled by 2^10 for sub-byte refills. Reckoned in `u128`,
    /// kept in `u64` (every connection has one: 8 bytes and no 16-byte alignment); a
    /// bucket would have to hold 16 PB to be clipped.
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket holding `bytes` at `now`.
    pub(crate) fn new(now: Instant, bytes: u64) -> Self {
        TokenBucket {
            tokens: clip(u128::from(bytes) << SCALE),
            last: now,
        }
    }

    /// `None` if `need` bytes may leave at `now`, filling at `rate` (bytes per second ×
    /// 2^10) up to `capacity` (bytes × 2^10); otherwise the instant the bucket holds a
    /// quantum ([`WAKE_QUANTUM`] at `rate`, at most half of `capacity`), or `need` if more.
    fn delay_scaled(&mut self, now: Instant, rate: u128, capacity: u128, need: usize) -> Option<Instant> {
        let rate = rate.max(1);
        let elapsed = u128::from((now - self.last).as_micros());
        let tokens = (u128::from(self.tokens) + mul_div(elapsed, rate, 1_000_000)).min(capacity);
        self.tokens = clip(tokens);
        self.last = self.last.max(now);
        let need = (need as u128) << SCALE;
        if tokens >= need {
            return None;
        }
        let quantum = mul_div(rate, u128::from(WAKE_QUANTUM.as_micros()), 1_000_000).min(capacity / 2);
        let target = quantum.max(need);
        // Rounded up, so at the instant returned the tokens are there.
        let wait = mul_div_ceil(target - tokens, 1_000_000, rate);
        Some(now + Duration::from_micros(u64::try_from(wait).unwrap_or(u64::MAX)))
    }

    /// Like `delay_scaled` (which wakes for a quantum), with `rate` in bytes per second and
    /// `capacity` in bytes.
    pub(crate) fn delay(&mut self, now: Instant, rate: u64, capacity: u64, need: usize) -> Option<Instant> {
        self.delay_scaled(
            now,
            u128::from(rate) << SCALE,
            u128::from(capacity) << SCALE,
            need,
        )
    }

    /// `bytes` left.
    pub(crate) fn take(&mut self, bytes: usize) {
        self.tokens = clip(u128::from(self.tokens).saturating_sub((bytes as u128) << SCALE));
    }
}

fn clip(tokens: u128) -> u64 {
    u64::try_from(tokens).unwrap_or(u64::MAX)
}

/// `a × b / d` (`d` > 0), rounded down: in `u64` when the operands and the product fit,
/// as they do for every rate and interval a connection meets. (A `u128` division is a
/// library call; three per datagram were 1.7% of a 1 MiB request's sending thread,
/// adapters/bench/rounds.md, issue 35's tenth round.) The same result either way.
fn mul_div(a: u128, b: u128, d: u128) -> u128 {
    match narrow(a, b, d) {
        Some((product, d)) => u128::from(product / d),
        None => a * b / d,
    }
}

/// As [`mul_div`], rounded up.
fn mul_div_ceil(a: u128, b: u128, d: u128) -> u128 {
    match narrow(a, b, d) {
        Some((product, d)) => u128::from(product.div_ceil(d)),
        None => (a * b).div_ceil(d),
    }
}

/// `a × b` and `d` in `u64`, if they fit.
fn narrow(a: u128, b: u128, d: u128) -> Option<(u64, u64)> {
    let product = u64::try_from(a).ok()?.checked_mul(u64::try_from(b).ok()?)?;
    Some((product, u64::try_from(d).ok()?))
}

/// What the pace follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The controller's own rate, in bytes per second.
    Rate(u64),
    /// The window spread over the RTT (faster while the window is `slow_start`ing).
    Window { window: usize, slow_start: bool },
}

#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    bucket: TokenBucket,
}

impl Pacer {
    pub(crate) fn new(now: Instant) -> Self {
        Pacer {
            bucket: TokenBucket::new(now, MAX_BURST_PACKETS * 1200),
        }
    }

    /// Pacing rate in bytes per second, scaled by 2^10.
    fn rate(window: usize, rtt: Duration, slow_start: bool) -> u128 {
        let (num, den) = if slow_start { (2, 1) } else { (5, 4) };
        let rtt = u128::from(rtt.as_micros().max(1));
        mul_div(window as u128 * num * 1_000_000, 1 << SCALE, den * rtt)
    }

    fn capacity(rate: u128, mds: usize) -> u128 {
        let burst = mul_div(rate, u128::from(BURST_INTERVAL.as_micros()), 1_000_000);
        let mds = mds as u128;
        burst.clamp(
            (u128::from(MIN_BURST_PACKETS) * mds) << SCALE,
            (u128::from(MAX_BURST_PACKETS) * mds) << SCALE,
        )
    }

    /// `None` if a datagram of `mds` bytes may leave at `now`; otherwise when the driver is
    /// to wake for the next ones: once the bucket holds a quantum ([`WAKE_QUANTUM`]).
    pub(crate) fn delay(
        &mut self,
        now: Instant,
        pace: Pace,
        rtt: &RttEstimator,
        mds: usize,
    ) -> Option<Instant> {
        let rate = match pace {
            // Whatever rate a controller asks for, the minimum window (RFC 9002 §7.2) may
            // leave each smoothed RTT: a controller whose estimate came from a trickle of
            // control frames must not hold a retransmission back for seconds.
            Pace::Rate(rate) => {
                let floor = mul_div(
                    (MIN_WINDOW_PACKETS * mds) as u128,
                    1_000_000,
                    u128::from(rtt.smoothed().as_micros().max(1)),
                );
                u128::from(rate).max(floor) << SCALE
            }
            Pace::Window { window, slow_start } => {
                let rtt = if slow_start {
                    rtt.smoothed().min(rtt.latest())
                } else {
                    rtt.smoothed()
                };
                Self::rate(window, rtt, slow_start)
            }
        };
        let capacity = Self::capacity(rate, mds);
        self.bucket.delay_scaled(now, rate, capacity, mds)
    }

    /// A datagram of `bytes` left.
    pub(crate) fn on_sent(&mut self, bytes: usize) {
        self.bucket.take(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An estimator whose smoothed and latest RTT are both `rtt`.
    fn steady(rtt: Duration) -> RttEstimator {
        let mut r = RttEstimator::new(rtt);
        r.update(rtt, Duration::ZERO);
        r
    }

    fn win(window: usize) -> Pace {
        Pace::Window {
            window,
            slow_start: false,
        }
    }

    /// Datagrams of 1,200 bytes that may leave at `now` after slow start, sent.
    fn drain(p: &mut Pacer, now: Instant, window: usize, rtt: &RttEstimator) -> usize {
        drain_in(p, now, window, rtt, false)
    }

    /// Datagrams of 1,200 bytes that may leave at `now`, sent.
    fn drain_in(p: &mut Pacer, now: Instant, window: usize, rtt: &RttEstimator, slow_start: bool) -> usize {
        let mut n = 0;
        while p
            .delay(now, Pace::Window { window, slow_start }, rtt, 1200)
            .is_none()
        {
            p.on_sent(1200);
            n += 1;
        }
        n
    }

    #[test]
    fn a_window_is_spread_over_the_rtt() {
        let rtt = Duration::from_millis(100);
        let window = 120_000;
        let mut p = Pacer::new(Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut sent: usize = 0;
        // Send as fast as the pacer allows for one RTT.
        while now < Instant::ZERO + rtt {
            match p.delay(now, win(window), &steady(rtt), 1200) {
                None => {
                    p.on_sent(1200);
                    sent += 1200;
                }
                Some(at) => {
                    assert!(at > now);
                    now = at;
                }
            }
        }
        // 5/4 of the window per RTT, plus the initial burst: 2 ms at that rate is 3,000
        // bytes, which rounds down to the smallest burst of two datagrams.
        let expected = window * 5 / 4 + 2 * 1200;
        assert!(sent.abs_diff(expected) <= 2 * 1200, "{sent} vs {expected}");
    }

    #[test]
    fn the_wake_time_is_exact() {
        let rtt = steady(Duration::from_millis(10));
        let mut p = Pacer::new(Instant::ZERO);
        let now = Instant::ZERO;
        drain(&mut p, now, 12_000, &rtt);
        let at = p.delay(now, win(12_000), &rtt, 1200).unwrap();
        assert_eq!(p.delay(at, win(12_000), &rtt, 1200), None);
    }

    /// A first sample of 60 ms, then one of 1 ms: the smoothed RTT is still 53 ms. In slow
    /// start the pace is the 1 ms path's, 53 times what the smoothed RTT gives; after it,
    /// the smoothed RTT's.
    #[test]
    fn in_slow_start_the_pace_follows_a_latest_sample_below_the_smoothed_rtt() {
        let mut rtt = RttEstimator::new(Duration::from_millis(100));
        rtt.update(Duration::from_millis(60), Duration::ZERO);
        rtt.update(Duration::from_millis(1), Duration::ZERO);
        assert!(rtt.smoothed() > Duration::from_millis(50));
        let window = 96_000;
        // The time a datagram takes at the pace once the bucket is empty: the time to the
        // wake-up at which the 1,000th datagram since leaves, over those 1,000.
        let gap = |slow_start| {
            let mut p = Pacer::new(Instant::ZERO);
            drain_in(&mut p, Instant::ZERO, window, &rtt, slow_start);
            let pace = Pace::Window { window, slow_start };
            let (mut now, mut sent) = (Instant::ZERO, 0);
            while sent < 1000 {
                now = p.delay(now, pace, &rtt, 1200).unwrap();
                sent += drain_in(&mut p, now, window, &rtt, slow_start);
            }
            Duration::from_micros((now - Instant::ZERO).as_micros() / sent as u64)
        };
        // 2 × 96,000 bytes per ms: 1,200 bytes every 6.25 µs (the instant rounds up).
        assert!(gap(true) <= Duration::from_micros(7), "{:?}", gap(true));
        // 5/4 × 96,000 bytes per 52.6 ms: 1,200 bytes every 526 µs.
        assert!(gap(false).as_micros().abs_diff(526) <= 1, "{:?}", gap(false));
    }

    /// A sender held back is woken once the bucket holds 1 ms at the rate, and then sends
    /// that much at once, not one datagram per wake-up (`WAKE_QUANTUM`).
    #[test]
    fn a_held_back_sender_is_woken_for_a_quantum_not_a_datagram() {
        let rtt = steady(Duration::from_millis(10));
        // 5/4 × 960,000 bytes per 10 ms: 120 MB/s, 100 datagrams of 1,200 bytes per ms;
        // the bucket holds 2 ms of it, 200 datagrams.
        let window = 960_000;
        let mut p = Pacer::new(Instant::ZERO);
        assert_eq!(drain(&mut p, Instant::ZERO, window, &rtt), 200);
        let at = p.delay(Instant::ZERO, win(window), &rtt, 1200).unwrap();
        assert_eq!(at, Instant::ZERO + Duration::from_millis(1));
        assert_eq!(drain(&mut p, at, window, &rtt), 100);
        // Where 1 ms at the rate is more than half the bucket (256 datagrams at most), the
        // wake-up is for half the bucket.
        let window = 4_800_000;
        let mut p = Pacer::new(Instant::ZERO);
        drain(&mut p, Instant::ZERO, window, &rtt);
        let at = p.delay(Instant::ZERO, win(window), &rtt, 1200).unwrap();
        assert_eq!(drain(&mut p, at, window, &rtt), 128);
    }

    /// The endpoint-wide rate's bucket wakes its sender for a quantum too.
    #[test]
    fn an_endpoint_rate_held_back_wakes_for_a_quantum() {
        // 120 MB/s, a bucket of 10 ms (1.2 MB): woken once it holds 1 ms, 100 datagrams.
        let (rate, capacity) = (120_000_000, 1_200_000);
        let mut b = TokenBucket::new(Instant::ZERO, capacity);
        while b.delay(Instant::ZERO, rate, capacity, 1200).is_none() {
            b.take(1200);
        }
        let at = b.delay(Instant::ZERO, rate, capacity, 1200).unwrap();
        assert_eq!(at, Instant::ZERO + Duration::from_millis(1));
        let mut sent = 0;
        while b.delay(at, rate, capacity, 1200).is_none() {
            b.take(1200);
            sent += 1;
        }
        assert_eq!(sent, 100);
    }

    /// A driver woken a whole 1 ms tick late may send what the rate earned in that tick.
    #[test]
    fn a_late_wake_keeps_what_the_rate_earned() {
        let rtt = steady(Duration::from_millis(1));
        // 5/4 × 96,000 bytes per ms: 100 datagrams of 1,200 bytes per ms.
        let window = 96_000;
        let mut p = Pacer::new(Instant::ZERO);
        drain(&mut p, Instant::ZERO, window, &rtt);
        let late = Instant::ZERO + Duration::from_millis(1);
        assert_eq!(drain(&mut p, late, window, &rtt), 100);
        // Three ticks late: the bucket holds 2 ms of the rate, no more.
        let later = late + Duration::from_millis(3);
        assert_eq!(drain(&mut p, later, window, &rtt), 200);
    }

    /// A controller's rate of a trickle still lets the minimum window (two datagrams) leave
    /// each smoothed RTT.
    #[test]
    fn a_controller_rate_never_paces_below_the_minimum_window_per_rtt() {
        let rtt = steady(Duration::from_millis(50));
        let mut p = Pacer::new(Instant::ZERO);
        let pace = Pace::Rate(10);
        while p.delay(Instant::ZERO, pace, &rtt, 1200).is_none() {
            p.on_sent(1200);
        }
        // 2,400 bytes per 50 ms: 1,200 bytes every 25 ms, not every 120 s.
        let at = p.delay(Instant::ZERO, pace, &rtt, 1200).unwrap();
        assert_eq!(at, Instant::ZERO + Duration::from_millis(25));
    }

    /// A controller's own rate is the pace, whatever the window and RTT.
    #[test]
    fn a_controller_rate_sets_the_pace() {
        let rtt = steady(Duration::from_millis(50));
        let mut p = Pacer::new(Instant::ZERO);
        // 1,200,000 bytes per second: one 1,200-byte datagram per ms (at so low a rate the
        // bucket holds its minimum, two datagrams, and the wake-up is for one).
        let pace = Pace::Rate(1_200_000);
        while p.delay(Instant::ZERO, pace, &rtt, 1200).is_none() {
            p.on_sent(1200);
        }
        let at = p.delay(Instant::ZERO, pace, &rtt, 1200).unwrap();
        assert_eq!(at, Instant::ZERO + Duration::from_millis(1));
    }

    proptest::proptest! {
        /// The `u64` path gives what `u128` arithmetic gives, rounded down and up, and
        /// operands too large for it take the `u128` path.
        #[test]
        fn mul_div_is_exact_on_either_path(
            a in proptest::prelude::any::<u64>(),
            b in 0u128..(1 << 63),
            d in 1u128..(1 << 66),
        ) {
            let a = u128::from(a >> (a % 64));
            proptest::prop_assert_eq!(mul_div(a, b, d), a * b / d);
            proptest::prop_assert_eq!(mul_div_ceil(a, b, d), (a * b).div_ceil(d));
        }
    }
}
