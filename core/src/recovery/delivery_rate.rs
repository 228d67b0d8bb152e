//! Delivery-rate sampling: how fast the path delivered data, measured on each ACK
//! (draft-cheng-iccrg-delivery-rate-estimation-02, as BBR uses it; spec/protocol.md §8.6).
//!
//! Each ack-eliciting packet remembers, when it leaves, how much the connection had
//! delivered by then and when (its [`DeliveryState`]). When an ACK acknowledges it, the
//! bytes delivered since, over the longer of the time it took to send them and the time it
//! took to acknowledge them, is one sample of the delivery rate. Taking the longer of the
//! two keeps a burst of sends or a compressed train of ACKs from inflating the sample
//! (draft §3.3). Of the packets one ACK acknowledges, the most recently sent gives the
//! sample, as it covers the freshest interval.
//!
//! A sample taken while the sender had less to send than it was allowed is marked
//! application-limited: it shows what the application offered, not what the path can
//! carry, so a model-based controller only lets it raise its estimate (draft §3.4).
//!
//! Inputs: each packet sent (with the bytes in flight before it), the packets an ACK
//! acknowledged, and the moments the sender ran out of data. Output: a
//! [`RateSample`] per ACK. Integer arithmetic only.

use crate::congestion::RateSample;
use crate::time::{Duration, Instant};

/// What a packet remembers of the connection's delivery when it was sent (draft §3.2, the
/// `P.delivered`, `P.delivered_time`, `P.first_sent_time`, `P.is_app_limited` fields): 17
/// bytes on every packet in flight. The two instants are kept as how long before the
/// packet's own send time they were, in 32 bits of microseconds (both are at or before it:
/// [`DeliveryRate::on_sent`]); an age past 71 minutes is kept as 71 minutes, which only a
/// packet sent after that long with data in flight and nothing delivered could see (an
/// idle timeout closes such a connection first), and then the sample's interval is at least
/// that long anyway. Packed, so that the flag takes one byte of the packet's record and not
/// a word (its fields are only ever read and written whole, by value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(Rust, packed)]
pub(crate) struct DeliveryState {
    delivered: u64,
    /// `P.delivered_time`, as its age when the packet was sent.
    delivered_age: u32,
    /// `P.first_sent_time`, as its age when the packet was sent.
    interval_age: u32,
    app_limited: bool,
}

/// `earlier`'s age at `now`, in microseconds, saturating (the type's docs).
fn age(now: Instant, earlier: Instant) -> u32 {
    let micros = now.as_micros().saturating_sub(earlier.as_micros());
    u32::try_from(micros).unwrap_or(u32::MAX)
}

impl DeliveryState {
    /// `P.delivered_time` of a packet sent at `sent` with this state.
    fn delivered_time(self, sent: Instant) -> Instant {
        sent - Duration::from_micros(u64::from(self.delivered_age))
    }

    /// `P.first_sent_time` of a packet sent at `sent` with this state.
    fn first_sent_time(self, sent: Instant) -> Instant {
        sent - Duration::from_micros(u64::from(self.interval_age))
    }
}

/// The connection's side of the estimator (draft §3.1, the `C.*` fields).
#[derive(Clone, Debug, Default)]
pub(crate) struct DeliveryRate {
    /// Bytes acknowledged over the connection's life.
    delivered: u64,
    /// When `delivered` last grew.
    delivered_time: Instant,
    /// When the packet that started the current sending interval was sent.
    first_sent_time: Instant,
    /// Non-zero while the sender is application-limited: samples count as such until
    /// `delivered` passes this (draft §3.4, `C.app_limited`).
    app_limited_until: u64,
}

/// A sample being built from the packets one ACK acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    newest: Option<(Instant, DeliveryState)>,
    acked: u64,
}

impl DeliveryRate {
    /// A packet leaves at `now` with `in_flight` bytes already in flight: what it must
    /// remember.
    pub(crate) fn on_sent(&mut self, now: Instant, in_flight: usize) -> DeliveryState {
        if in_flight == 0 {
            // Nothing in flight: a new sending interval starts with this packet (draft §3.2).
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        DeliveryState {
            delivered: self.delivered,
            delivered_age: age(now, self.delivered_time),
            interval_age: age(now, self.first_sent_time),
            app_limited: self.app_limited_until != 0,
        }
    }

    /// The sender has nothing more to send though the window allows it, with `in_flight`
    /// bytes in flight: the samples until those are delivered are application-limited.
    pub(crate) fn on_app_limited(&mut self, in_flight: usize) {
        self.app_limited_until = (self.delivered + in_flight as u64).max(1);
    }

    /// A packet of `size` bytes sent at `sent` with `state` was acknowledged at `now`
    /// (draft §3.3, UpdateRateSample, once per packet).
    pub(crate) fn on_acked(
        &mut self,
        s: &mut Sampler,
        now: Instant,
        sent: Instant,
        size: usize,
        state: DeliveryState,
    ) {
        self.delivered += size as u64;
        self.delivered_time = now;
        s.acked += size as u64;
        let newer = s.newest.is_none_or(|(t, n)| {
            state.delivered > n.delivered || (state.delivered == n.delivered && sent > t)
        });
        if newer {
            s.newest = Some((sent, state));
            // The next interval starts where this packet was sent.
            self.first_sent_time = sent;
        }
    }

    /// The sample of one ACK, once every packet it acknowledged went through `on_acked`
    /// (draft §3.3, GenerateRateSample); `None` if it acknowledged nothing.
    pub(crate) fn sample(&mut self, s: Sampler, now: Instant) -> Option<RateSample> {
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let (sent, p) = s.newest?;
        let send_elapsed = sent - p.first_sent_time(sent);
        let ack_elapsed = self.delivered_time - p.delivered_time(sent);
        Some(RateSample {
            delivered: self.delivered - p.delivered,
            interval: send_elapsed.max(ack_elapsed),
            rtt: now - sent,
            app_limited: p.app_limited,
            prior_delivered: p.delivered,
            total_delivered: self.delivered,
            acked: s.acked,
        })
    }
}

impl RateSample {
    /// The delivery rate in bytes per second, or `None` when the interval is too short to
    /// mean anything (shorter than `min_rtt`, draft §3.3: an ACK that covered packets sent
    /// in one burst).
    pub fn bytes_per_second(&self, min_rtt: Duration) -> Option<u64> {
        if self.interval == Duration::ZERO || self.interval < min_rtt {
            return None;
        }
        let rate = u128::from(self.delivered) * 1_000_000 / u128::from(self.interval.as_micros());
        Some(u64::try_from(rate).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// A paced sender: a 1,000-byte packet every millisecond, each acknowledged 100 ms
    /// later. The samples say 1,000 bytes per ms once a round trip has passed.
    #[test]
    fn a_steady_flow_samples_its_rate() {
        let mut d = DeliveryRate::default();
        let mut sent = Vec::new();
        let mut last = None;
        for ms in 0..300u64 {
            let in_flight = sent.iter().filter(|&&(t, _)| t + 100 > ms).count() * 1000;
            sent.push((ms, d.on_sent(at(ms), in_flight)));
            if let Some(&(t, state)) = sent.iter().find(|&&(t, _)| t + 100 == ms) {
                let mut s = Sampler::default();
                d.on_acked(&mut s, at(ms), at(t), 1000, state);
                last = d.sample(s, at(ms));
            }
        }
        let s = last.unwrap();
        assert_eq!(s.rtt, Duration::from_millis(100));
        assert!(!s.app_limited);
        let rate = s.bytes_per_second(Duration::from_millis(100)).unwrap();
        assert!(rate.abs_diff(1_000_000) <= 10_000, "{rate}");
    }

    /// Ten packets sent in one burst and acknowledged together: the interval is the ACK's
    /// spread, not the zero time the burst took to send, and a sample shorter than the
    /// minimum RTT gives no rate.
    #[test]
    fn a_burst_is_not_a_rate() {
        let mut d = DeliveryRate::default();
        let states: Vec<_> = (0..10).map(|i| d.on_sent(at(0), i * 1000)).collect();
        let mut s = Sampler::default();
        for st in states {
            d.on_acked(&mut s, at(50), at(0), 1000, st);
        }
        let r = d.sample(s, at(50)).unwrap();
        assert_eq!(r.delivered, 10_000);
        assert_eq!(r.acked, 10_000);
        assert_eq!(r.interval, Duration::from_millis(50));
        assert_eq!(r.bytes_per_second(Duration::from_millis(60)), None);
        assert_eq!(r.bytes_per_second(Duration::from_millis(50)), Some(200_000));
    }

    /// Packets sent while the sender had run out of data give application-limited samples,
    /// until what was in flight then has been delivered.
    #[test]
    fn samples_after_running_dry_are_app_limited_until_the_flight_is_delivered() {
        let mut d = DeliveryRate::default();
        let a = d.on_sent(at(0), 0);
        d.on_app_limited(1000);
        let b = d.on_sent(at(1), 1000);
        let mut s = Sampler::default();
        d.on_acked(&mut s, at(10), at(0), 1000, a);
        assert!(!d.sample(s, at(10)).unwrap().app_limited);
        let mut s = Sampler::default();
        d.on_acked(&mut s, at(11), at(1), 1000, b);
        assert!(d.sample(s, at(11)).unwrap().app_limited);
        // Delivered passed the mark: a packet sent now is not application-limited.
        let c = d.on_sent(at(12), 0);
        let mut s = Sampler::default();
        d.on_acked(&mut s, at(22), at(12), 1000, c);
        assert!(!d.sample(s, at(22)).unwrap().app_limited);
    }

    #[test]
    fn an_ack_of_nothing_is_no_sample() {
        let mut d = DeliveryRate::default();
        assert!(d.sample(Sampler::default(), at(11)).is_none());
    }
}
