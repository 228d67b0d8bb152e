//! The delay on the ACKs' way back (weir's own rule; spec §8, "The way back"): what keeps a
//! BBR flow's window from shrinking to nothing when its ACKs queue behind other traffic.
//!
//! BBR's window is twice the bandwidth times the minimum RTT. When the ACKs' path holds
//! them (an asymmetric access link whose uplink another flow fills, a busy reverse hop), each
//! round trip lasts far longer than the minimum, the window holds the flight to a fraction of
//! the bottleneck, the rate samples fall with it, the estimate follows them, and the window
//! shrinks again: a flow downloading beside an upload that filled the uplink's buffer kept
//! under 1% of its link (tests/congestion.md, "The way back").
//!
//! The forward queue is not this delay: a queue at the bottleneck, ours or another flow's,
//! already shows in the one-way delay (spec §3.4), and a window grown by it would only
//! queue more. So each sample is the RTT less the forward queueing delay less the minimum
//! RTT, and the delay kept is the least sample of the last round, or of the last
//! [`WINDOW`] if the round was shorter: what stood on the way back all that time, not a
//! stall or a burst (a Wi-Fi hop that holds the ACKs for up to 10 ms on a 4 ms path cost a
//! sample window of one round 5 points of the link: tests/congestion.md, "The way back").
//!
//! Input: each ACK's RTT sample with the one-way queueing delay it carried, and the minimum
//! RTT; the end of each round. Output: the delay the window's round trip adds to the
//! minimum RTT.

use crate::time::{Duration, Instant};

/// The shortest span the least sample is taken over.
pub(super) const WINDOW: Duration = Duration::from_millis(100);

/// See the module docs.
#[derive(Clone, Copy, Debug)]
pub(super) struct AckPath {
    /// The least sample of the last span, in µs (0 before a span with one).
    delay: u32,
    /// The least sample of this span so far; `u32::MAX` before one. (32 bits each: 71
    /// minutes saturate; every connection keeps these.)
    least: u32,
    /// When this span began, as `Instant::wire_timestamp` (µs modulo 2^32, compared by
    /// wrapping difference: a span is far shorter than the 71 minutes that wraps; 4 bytes
    /// where an `Instant` takes 8).
    since: u32,
}

impl AckPath {
    pub(super) fn new() -> Self {
        AckPath {
            delay: 0,
            least: u32::MAX,
            since: 0,
        }
    }

    /// An RTT sample whose packet's one-way delay showed `forward_queue` µs of queue, with
    /// the minimum RTT now.
    pub(super) fn on_sample(&mut self, rtt: Duration, forward_queue: u64, min_rtt: Duration) {
        let back = rtt
            .as_micros()
            .saturating_sub(forward_queue)
            .saturating_sub(min_rtt.as_micros());
        let back = u32::try_from(back).unwrap_or(u32::MAX - 1);
        self.least = self.least.min(back);
    }

    /// A round ended at `now`: if the span is [`WINDOW`] long, its least sample is the delay
    /// from now on (a span without one keeps the last), and a new span begins.
    pub(super) fn end_round(&mut self, now: Instant) {
        let stamp = now.wire_timestamp();
        if u64::from(stamp.wrapping_sub(self.since)) < WINDOW.as_micros() {
            return;
        }
        if self.least != u32::MAX {
            self.delay = self.least;
        }
        self.least = u32::MAX;
        self.since = stamp;
    }

    /// What the ACKs' path added to the minimum RTT all through the last span.
    pub(super) fn delay(&self) -> Duration {
        Duration::from_micros(u64::from(self.delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The rounds of a test, each ending a window after the last.
    struct Rounds(Instant);

    impl Rounds {
        fn end(&mut self, p: &mut AckPath) {
            self.0 += WINDOW;
            p.end_round(self.0);
        }
    }

    #[test]
    fn the_least_of_a_round_less_the_forward_queue_is_the_delay_back() {
        let mut p = AckPath::new();
        let mut r = Rounds(Instant::ZERO);
        // 40 ms of path; ACKs held 150-200 ms on the way back, one of them also behind 30 ms
        // of forward queue.
        p.on_sample(ms(220), 30_000, ms(40));
        p.on_sample(ms(240), 0, ms(40));
        p.on_sample(ms(190), 0, ms(40));
        assert_eq!(p.delay(), Duration::ZERO, "nothing until the round ends");
        r.end(&mut p);
        assert_eq!(p.delay(), ms(150));
        // A round with no sample keeps it; one whose ACKs came straight back clears it.
        r.end(&mut p);
        assert_eq!(p.delay(), ms(150));
        p.on_sample(ms(80), 40_000, ms(40));
        p.on_sample(ms(300), 0, ms(40));
        r.end(&mut p);
        assert_eq!(p.delay(), Duration::ZERO);
    }

    #[test]
    fn a_queue_on_the_way_out_is_no_delay_back() {
        let mut p = AckPath::new();
        let mut r = Rounds(Instant::ZERO);
        // Another flow's queue at the bottleneck: the RTT grows exactly by the one-way delay.
        for q in [50_000, 80_000, 120_000] {
            p.on_sample(ms(40) + Duration::from_micros(q), q, ms(40));
        }
        r.end(&mut p);
        assert_eq!(p.delay(), Duration::ZERO);
    }

    #[test]
    fn rounds_shorter_than_the_window_gather_into_one_span() {
        let mut p = AckPath::new();
        let mut now = Instant::ZERO + WINDOW;
        p.end_round(now);
        // A 4 ms path whose ACKs were held 10 ms through one round of the span, not the next.
        p.on_sample(ms(14), 0, ms(4));
        now += ms(14);
        p.end_round(now);
        assert_eq!(p.delay(), Duration::ZERO, "the span goes on");
        p.on_sample(ms(4), 0, ms(4));
        now += WINDOW;
        p.end_round(now);
        assert_eq!(p.delay(), Duration::ZERO, "a stall, not a standing delay");
    }
}
