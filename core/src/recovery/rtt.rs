//! Round-trip time estimation (RFC 9002 §5; RFC 6298 §2 for the smoothing constants).
//!
//! Input: RTT samples (time from sending the largest newly acknowledged ack-eliciting packet
//! to receiving its ACK, or the handshake's round trip: `handshake::SentOnce`) with the
//! peer's reported ack delay. Output: smoothed RTT, variation,
//! minimum, and the probe timeout base.

use crate::time::Duration;

/// Timer granularity assumed for the peer and for us (RFC 9002 §6.1.2, kGranularity).
pub(crate) const GRANULARITY: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, Debug)]
pub(crate) struct RttEstimator {
    latest: Duration,
    smoothed: Duration,
    var: Duration,
    /// The lowest sample; none before the first (until then `smoothed`, `var` and the
    /// minimum come from the initial RTT, which `latest` holds).
    min: Option<Duration>,
}

impl RttEstimator {
    /// RFC 9002 §5.3: before any sample, smoothed = initial, rttvar = initial / 2.
    pub(crate) fn new(initial: Duration) -> Self {
        RttEstimator {
            latest: initial,
            smoothed: initial,
            var: Duration::from_micros(initial.as_micros() / 2),
            min: None,
        }
    }

    /// Takes a sample. `ack_delay` is the peer's reported delay, already capped at its
    /// max_ack_delay by the caller.
    pub(crate) fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        let Some(min) = self.min else {
            // RFC 9002 §5.3: the first sample sets everything.
            self.min = Some(sample);
            self.smoothed = sample;
            self.var = Duration::from_micros(sample.as_micros() / 2);
            return;
        };
        let min = min.min(sample);
        self.min = Some(min);
        // Subtract the ack delay only if what remains is not below the minimum RTT.
        let adjusted = if sample >= min + ack_delay {
            sample - ack_delay
        } else {
            sample
        };
        let s = u128::from(self.smoothed.as_micros());
        let a = u128::from(adjusted.as_micros());
        let v = u128::from(self.var.as_micros());
        // rttvar = 3/4 rttvar + 1/4 |smoothed - adjusted|; smoothed = 7/8 smoothed + 1/8 adjusted.
        // In 128 bits: each is a weighted mean of 64-bit values, so it fits 64 again, where
        // 3 × rttvar or 7 × smoothed may not (a trace's clock can jump by centuries, and an
        // RTT with it: found by the trace_inputs fuzz target, which ran without overflow
        // checks; cargo test's debug build of its corpus caught it).
        let mean = |x: u128| u64::try_from(x).unwrap_or(u64::MAX);
        self.var = Duration::from_micros(mean((3 * v + s.abs_diff(a)) / 4));
        self.smoothed = Duration::from_micros(mean((7 * s + a) / 8));
    }

    /// Whether a sample was taken (until then the figures are the initial RTT's).
    pub(crate) fn has_sample(&self) -> bool {
        self.min.is_some()
    }

    pub(crate) fn smoothed(&self) -> Duration {
        self.smoothed
    }

    pub(crate) fn latest(&self) -> Duration {
        self.latest
    }

    pub(crate) fn min(&self) -> Duration {
        self.min.unwrap_or(self.latest)
    }

    #[cfg(test)]
    pub(crate) fn var(&self) -> Duration {
        self.var
    }

    /// PTO before backoff (RFC 9002 §6.2.1): smoothed + max(4 × rttvar, granularity) +
    /// the peer's max_ack_delay.
    pub(crate) fn pto_base(&self, max_ack_delay: Duration) -> Duration {
        self.smoothed + (self.var.saturating_mul(4)).max(GRANULARITY) + max_ack_delay
    }

    /// The eighths beyond one RTT that [`loss_delay`](Self::loss_delay) needs to reach
    /// `delay` (rounded up; 0 if one RTT already does), at most 255.
    pub(crate) fn eighths_beyond(&self, delay: Duration) -> u8 {
        let base = u128::from(self.smoothed.max(self.latest).as_micros().max(1));
        let eighths = (u128::from(delay.as_micros()) * 8)
            .div_ceil(base)
            .saturating_sub(8);
        u8::try_from(eighths).unwrap_or(u8::MAX)
    }

    /// Time threshold for loss (RFC 9002 §6.1.2): `(1 + eighths / 8) × max(smoothed,
    /// latest)`, at least the granularity; RFC 9002's kTimeThreshold is one eighth.
    pub(crate) fn loss_delay(&self, eighths: u64) -> Duration {
        let base = u128::from(self.smoothed.max(self.latest).as_micros());
        let delay = base + base * u128::from(eighths) / 8;
        Duration::from_micros(u64::try_from(delay).unwrap_or(u64::MAX)).max(GRANULARITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_everything_then_smooths() {
        let mut r = RttEstimator::new(Duration::from_millis(100));
        assert_eq!(r.pto_base(Duration::ZERO), Duration::from_millis(300));
        r.update(Duration::from_millis(40), Duration::from_millis(5));
        assert_eq!(r.smoothed(), Duration::from_millis(40));
        assert_eq!(r.var(), Duration::from_millis(20));
        r.update(Duration::from_millis(80), Duration::from_millis(0));
        // 7/8 × 40 + 1/8 × 80 = 45; 3/4 × 20 + 1/4 × 40 = 25.
        assert_eq!(r.smoothed(), Duration::from_millis(45));
        assert_eq!(r.var(), Duration::from_millis(25));
        assert_eq!(r.min(), Duration::from_millis(40));
    }

    #[test]
    fn ack_delay_is_subtracted_only_above_the_minimum() {
        let mut r = RttEstimator::new(Duration::from_millis(100));
        r.update(Duration::from_millis(50), Duration::ZERO);
        // 60 - 20 = 40 < min 50: the delay is not subtracted.
        r.update(Duration::from_millis(60), Duration::from_millis(20));
        assert_eq!(r.smoothed().as_micros(), (7 * 50_000 + 60_000) / 8);
        let mut r = RttEstimator::new(Duration::from_millis(100));
        r.update(Duration::from_millis(50), Duration::ZERO);
        r.update(Duration::from_millis(90), Duration::from_millis(20));
        assert_eq!(r.smoothed().as_micros(), (7 * 50_000 + 70_000) / 8);
    }

    /// Samples as long as a trace's clock allows (it may jump by centuries) neither
    /// overflow nor wrap: the estimates stay weighted means of the samples.
    #[test]
    fn the_longest_samples_neither_overflow_nor_wrap() {
        let longest = Duration::from_micros(u64::MAX);
        let mut r = RttEstimator::new(Duration::from_millis(100));
        r.update(Duration::from_millis(10), Duration::ZERO);
        for _ in 0..3 {
            r.update(longest, Duration::ZERO);
        }
        // 1 - (7/8)^3 of the longest, and more than a quarter of it.
        assert!(r.smoothed() > Duration::from_micros(u64::MAX / 4), "{r:?}");
        assert!(r.var() > Duration::from_micros(u64::MAX / 4), "{r:?}");
        assert_eq!(r.loss_delay(8), longest);
        assert_eq!(r.pto_base(Duration::from_millis(25)), longest);
        r.update(Duration::from_millis(10), Duration::ZERO);
        assert!(r.smoothed() < longest, "it comes down again: {r:?}");
    }

    #[test]
    fn loss_delay_is_nine_eighths() {
        let mut r = RttEstimator::new(Duration::from_millis(80));
        r.update(Duration::from_millis(80), Duration::ZERO);
        assert_eq!(r.loss_delay(1), Duration::from_millis(90));
        assert_eq!(r.loss_delay(8), Duration::from_millis(160));
    }
}
