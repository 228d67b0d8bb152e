//! How many packets an ACK waits for (spec/protocol.md §8, Acknowledgements, "ACK
//! frequency"; weir's own rule, after Chromium's ACK decimation and the quick ACKs Linux
//! sends while a sender's rate climbs).
//!
//! RFC 9000 §13.2.2 acknowledges every second ack-eliciting packet. For a fast flow of
//! 1,452-byte datagrams that is about 1.6% of the data's bytes in ACKs. An asymmetric access
//! line (DSL, cable, a mobile line) whose uplink has 1/50 to 1/200 of its downlink's rate
//! cannot carry them: they queue, drop, and held a download to 30-79% of its link on four
//! of five such lines (tests/congestion.md, "The way back"). So a receiver that sees the peer's packets come
//! fast and steadily waits for more of them per ACK: as many as arrive in a quarter of its
//! smoothed RTT, at most [`MOST`]. The sender still gets four ACKs a round trip.
//!
//! While the peer's rate climbs from the connection's start or a pause (a slow start,
//! BBR's Startup), every second packet is acknowledged as before: such a sender's window
//! grows by what is acknowledged, and an ACK held back holds that growth back. BBR's
//! Startup took a round trip more on 27 of the bottleneck table's 48 BBR rows when the
//! climb was not told apart.
//!
//! The rate is counted in spans of one smoothed RTT. The last whole span's count says how
//! many packets a quarter RTT brings. The climb ends at the first span of at least
//! [`RAMP_ENDS_AT`] packets that brought no more than the one before: a slow start
//! doubles its packets each round trip, and a steady flow's count falls as often as it
//! rises (spans of half an RTT were tried: a window-limited sender's flight lands unevenly
//! in them, and the climb ended after three round trips). A span or more without a packet
//! starts the count and the climb over.
//!
//! Input: each packet's arrival and the smoothed RTT. Output: [`Every`], what the ACK
//! waits for.

use crate::time::{Duration, Instant};

/// The fewest ack-eliciting packets an ACK waits for: RFC 9000's every second packet.
const FEWEST: u32 = 2;
/// The most: Chromium's ACK decimation acknowledges every tenth. At 1,452 bytes a
/// datagram, ACKs then take about a third of a percent of the data's bytes.
const MOST: u32 = 10;

/// The fewest packets in a span that can end the climb: below it, the count rises and
/// falls by chance (and at under eight an RTT, an ACK would wait for two anyway).
const RAMP_ENDS_AT: u16 = 8;

/// What an ACK waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Every {
    /// Ack-eliciting packets.
    pub(crate) packets: u32,
    /// The longest the first of them waits.
    pub(crate) delay: Duration,
}

/// The peer's packets counted in spans of one smoothed RTT; see the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckFrequency {
    /// When this span began, as `Instant::wire_timestamp` (µs modulo 2^32, compared by
    /// wrapping difference: a span is far shorter than the 71 minutes that wraps; 4 bytes
    /// where an `Instant` takes 8, in every connection).
    since: u32,
    /// Packets that arrived in this span, and in the last whole one (saturating).
    count: u16,
    last: u16,
    /// The peer's rate has climbed in every span since the connection began or last
    /// paused (the module docs).
    ramping: bool,
}

impl AckFrequency {
    pub(crate) fn new() -> Self {
        AckFrequency {
            since: 0,
            count: 0,
            last: 0,
            ramping: true,
        }
    }

    /// One of the peer's packets (not a duplicate) arrived at `now`.
    pub(crate) fn on_arrival(&mut self, now: Instant, rtt: Duration) {
        let span = rtt.as_micros().max(1);
        let stamp = now.wire_timestamp();
        let elapsed = u64::from(stamp.wrapping_sub(self.since));
        if elapsed >= span {
            if elapsed < 2 * span {
                if self.count <= self.last && self.count >= RAMP_ENDS_AT {
                    self.ramping = false;
                }
                self.last = self.count;
            } else {
                // A whole span without a packet: the flow paused, and its sender may start
                // slowly again.
                self.ramping = true;
                self.last = 0;
            }
            self.count = 0;
            self.since = stamp;
        }
        self.count = self.count.saturating_add(1);
    }

    /// What an ACK waits for now, with the smoothed RTT and our max_ack_delay.
    pub(crate) fn every(&self, rtt: Duration, max_ack_delay: Duration) -> Every {
        // The last span was an RTT: a quarter of its packets came in a quarter.
        let packets = if self.ramping {
            FEWEST
        } else {
            u32::from(self.last / 4).clamp(FEWEST, MOST)
        };
        let delay = if packets > FEWEST {
            max_ack_delay.min(Duration::from_micros(rtt.as_micros() / 4))
        } else {
            max_ack_delay
        };
        Every { packets, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(40);
    const MAX_ACK_DELAY: Duration = Duration::from_millis(25);

    /// Feeds `per_span[i]` packets evenly into the `i`th span of an RTT from `at`; returns
    /// where it stopped.
    fn spans(f: &mut AckFrequency, at: Instant, per_span: &[u64]) -> Instant {
        let mut at = at;
        for &n in per_span {
            let gap = Duration::from_micros(RTT.as_micros() / n);
            for _ in 0..n {
                f.on_arrival(at, RTT);
                at += gap;
            }
        }
        at
    }

    #[test]
    fn a_steady_fast_flow_is_acknowledged_every_tenth_packet_within_a_quarter_rtt() {
        let mut f = AckFrequency::new();
        spans(&mut f, Instant::ZERO + RTT, &[200, 200, 200]);
        assert_eq!(
            f.every(RTT, MAX_ACK_DELAY),
            Every {
                packets: MOST,
                delay: Duration::from_millis(10)
            }
        );
    }

    #[test]
    fn a_steady_flow_gets_as_many_as_a_quarter_rtt_brings() {
        let mut f = AckFrequency::new();
        spans(&mut f, Instant::ZERO + RTT, &[32, 32, 32]);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, 8);
        // Ten packets a round trip: every second, within max_ack_delay, as RFC 9000 has it.
        let mut slow = AckFrequency::new();
        spans(&mut slow, Instant::ZERO + RTT, &[10, 10, 10, 10]);
        assert_eq!(
            slow.every(RTT, MAX_ACK_DELAY),
            Every {
                packets: FEWEST,
                delay: MAX_ACK_DELAY
            }
        );
    }

    #[test]
    fn a_climbing_rate_is_acknowledged_every_second_packet_until_it_levels() {
        let mut f = AckFrequency::new();
        // A slow start, with the first round trips' few packets rising and falling.
        let at = spans(&mut f, Instant::ZERO + RTT, &[5, 4, 10, 20, 40, 80, 160, 320]);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, FEWEST);
        // Level: decimated once a span brought no more than the one before.
        let at = spans(&mut f, at, &[320, 320]);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
        // Rising again later (a probe) keeps it.
        spans(&mut f, at, &[400, 500]);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
    }

    #[test]
    fn a_pause_starts_the_count_and_the_climb_over() {
        let mut f = AckFrequency::new();
        let at = spans(&mut f, Instant::ZERO + RTT, &[200, 200, 200]);
        // Two round trips without a packet, then a climb.
        let at = spans(&mut f, at + RTT + RTT, &[20, 40, 80]);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, FEWEST);
        spans(&mut f, at, &[80, 80]);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
    }
}
