//! Pacing: when the next datagram of a connection may leave (RFC 9002 §7.7).
//!
//! A token bucket filled at `N × window / smoothed RTT` (N = 5/4, or 2 in slow start so the
//! pacer never holds back a window that doubles each RTT), holding at most a small burst.
//! Input: the window, the RTT, the time, and each datagram sent. Output: either "send now"
//! or the instant enough tokens will be there, which the connection turns into its pacing
//! timer so the driver wakes exactly then (no busy polling). Integer arithmetic only.

use crate::time::{Duration, Instant};

/// Longest burst the bucket holds, as time at the pacing rate.
const BURST_INTERVAL: Duration = Duration::from_millis(2);
/// Bounds of the burst in datagrams: at least two so ACK clocking works when the rate is
/// low, at most sixteen so a large window does not leave as one train.
const MIN_BURST_PACKETS: u64 = 2;
const MAX_BURST_PACKETS: u64 = 16;

#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    /// Bytes that may leave now, scaled by 2^10 for sub-byte refills.
    tokens: u128,
    last: Instant,
}

/// Bytes × 2^10.
const SCALE: u32 = 10;

impl Pacer {
    pub(crate) fn new(now: Instant) -> Self {
        Pacer {
            tokens: u128::from(MAX_BURST_PACKETS * 1200) << SCALE,
            last: now,
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
        let rate = Self::rate(window, rtt, slow_start).max(1);
        let capacity = Self::capacity(window, rtt, mds, slow_start);
        let elapsed = u128::from((now - self.last).as_micros());
        self.tokens = (self.tokens + elapsed * rate / 1_000_000).min(capacity);
        self.last = now;
        let need = (mds as u128) << SCALE;
        if self.tokens >= need {
            return None;
        }
        let wait = ((need - self.tokens) * 1_000_000).div_ceil(rate);
        Some(now + Duration::from_micros(u64::try_from(wait).unwrap_or(u64::MAX)))
    }

    /// A datagram of `bytes` left.
    pub(crate) fn on_sent(&mut self, bytes: usize) {
        self.tokens = self.tokens.saturating_sub((bytes as u128) << SCALE);
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
