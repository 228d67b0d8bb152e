//! Pacing: when the next datagram of a connection may leave (RFC 9002 §7.7).
//!
//! A token bucket filled at `N × window / smoothed RTT` (N = 5/4, or 2 in slow start so the
//! pacer never holds back a window that doubles each RTT), holding at most a small burst.
//! Input: the window, the RTT, the time, and each datagram sent. Output: either "send now"
//! or the instant enough tokens will be there, which the connection turns into its pacing
//! timer so the driver wakes exactly then (no busy polling). Integer arithmetic only.
//!
//! The bucket itself ([`TokenBucket`]) also enforces the endpoint-wide send rate
//! ([`Config::max_send_rate`](crate::Config::max_send_rate)).

use crate::time::{Duration, Instant};

/// Longest burst the bucket holds, as time at the pacing rate.
const BURST_INTERVAL: Duration = Duration::from_millis(2);
/// Bounds of the burst in datagrams: at least two so ACK clocking works when the rate is
/// low, at most sixteen so a large window does not leave as one train.
const MIN_BURST_PACKETS: u64 = 2;
const MAX_BURST_PACKETS: u64 = 16;

/// Bytes × 2^10.
const SCALE: u32 = 10;

/// A token bucket in bytes: filled at a rate up to a capacity, drained by what is sent.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    /// Bytes that may leave now, scaled by 2^10 for sub-byte refills.
    tokens: u128,
    last: Instant,
}

impl TokenBucket {
    /// A bucket holding `bytes` at `now`.
    pub(crate) fn new(now: Instant, bytes: u64) -> Self {
        TokenBucket {
            tokens: u128::from(bytes) << SCALE,
            last: now,
        }
    }

    /// `None` if `need` bytes may leave at `now`, filling at `rate` (bytes per second ×
    /// 2^10) up to `capacity` (bytes × 2^10); otherwise the instant they may.
    fn delay_scaled(&mut self, now: Instant, rate: u128, capacity: u128, need: usize) -> Option<Instant> {
        let rate = rate.max(1);
        let elapsed = u128::from((now - self.last).as_micros());
        self.tokens = (self.tokens + elapsed * rate / 1_000_000).min(capacity);
        self.last = self.last.max(now);
        let need = (need as u128) << SCALE;
        if self.tokens >= need {
            return None;
        }
        // Rounded up, so at the instant returned the tokens are there.
        let wait = ((need - self.tokens) * 1_000_000).div_ceil(rate);
        Some(now + Duration::from_micros(u64::try_from(wait).unwrap_or(u64::MAX)))
    }

    /// Like `delay_scaled`, with `rate` in bytes per second and `capacity` in bytes.
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
        self.tokens = self.tokens.saturating_sub((bytes as u128) << SCALE);
    }
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
        ((window as u128 * num * 1_000_000) << SCALE) / (den * rtt)
    }

    fn capacity(window: usize, rtt: Duration, mds: usize, slow_start: bool) -> u128 {
        let burst = Self::rate(window, rtt, slow_start) * u128::from(BURST_INTERVAL.as_micros()) / 1_000_000;
        let mds = mds as u128;
        burst.clamp(
            (u128::from(MIN_BURST_PACKETS) * mds) << SCALE,
            (u128::from(MAX_BURST_PACKETS) * mds) << SCALE,
        )
    }

    /// `None` if a datagram of `mds` bytes may leave at `now`; otherwise when it may.
    pub(crate) fn delay(
        &mut self,
        now: Instant,
        window: usize,
        rtt: Duration,
        mds: usize,
        slow_start: bool,
    ) -> Option<Instant> {
        let rate = Self::rate(window, rtt, slow_start);
        let capacity = Self::capacity(window, rtt, mds, slow_start);
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

    #[test]
    fn a_window_is_spread_over_the_rtt() {
        let rtt = Duration::from_millis(100);
        let window = 120_000;
        let mut p = Pacer::new(Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut sent: usize = 0;
        // Send as fast as the pacer allows for one RTT.
        while now < Instant::ZERO + rtt {
            match p.delay(now, window, rtt, 1200, false) {
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
        let rtt = Duration::from_millis(10);
        let mut p = Pacer::new(Instant::ZERO);
        let mut now = Instant::ZERO;
        while p.delay(now, 12_000, rtt, 1200, false).is_none() {
            p.on_sent(1200);
        }
        let at = p.delay(now, 12_000, rtt, 1200, false).unwrap();
        now = at;
        assert_eq!(p.delay(now, 12_000, rtt, 1200, false), None);
    }
}
