//! How many packets an ACK waits for (spec/protocol.md §8, Acknowledgements, "ACK
//! frequency" and "The way back"; weir's own rule, after Chromium's ACK decimation and the
//! quick ACKs Linux sends while a sender's rate climbs).
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
//! *The way back.* Ten packets an ACK are too few for a line as asymmetric as 1/500 (a
//! 100 Mbit/s downlink over a 200 kbit/s uplink): its ACKs still filled the uplink, queued
//! behind each other, dropped, and held a download to 61-69% of its link
//! (tests/congestion.md, "The way back", "A line of 1/500"). The receiver sees its own way
//! back in the peer's ACK frames, which acknowledge our ACK-only packets too and carry each
//! one's one-way delay (spec §4.3): the least of those is the way back's base, and a span
//! in which every one stood more than [`QUEUE`] above it had a standing queue on the way
//! back all through it. Each such span doubles the most packets an ACK waits for (up to
//! what a sixth of an RTT brings, six ACKs a round trip, [`LEAST_ACKS`]; never down); each
//! span whose samples touched the base takes one off, down to [`MOST`] (additive decrease:
//! the rate of ACKs creeps back up to what the way back carries). While it is above
//! [`MOST`], a climb is thinned too: its ACKs only queue there. And a climb whose span
//! begins with four late samples in a row is thinned at once (the most doubles, not at the
//! span's end): on a 1/500 line, every second packet's ACKs bound BBR's climbing rate, and
//! Startup saw it flat three rounds and left at a fraction of the link (one seed in ten in
//! weir-sim, six runs of sixteen over sockets) before a span's verdict came. The base is
//! the least of the connection's samples, raised to the least of the last epoch (about
//! 2 s) at each epoch's end, so that clocks that drift apart do not read as a queue; a
//! queue another flow keeps standing on the way back longer than that becomes the base
//! too, and the ACKs go back to ten at most. A new path forgets all of it. (The samples
//! are compared with the base by wrapping difference, as `congestion::DelayClock` unwraps
//! them, but without its 16 bytes: every connection keeps this struct.)
//!
//! Input: each packet's arrival and the smoothed RTT; the one-way delay of our packets
//! that each of the peer's ACK frames reports. Output: [`Every`], what the ACK waits for.

use crate::time::{Duration, Instant};

/// The fewest ack-eliciting packets an ACK waits for: RFC 9000's every second packet.
const FEWEST: u32 = 2;
/// The most: Chromium's ACK decimation acknowledges every tenth. At 1,452 bytes a
/// datagram, ACKs then take about a third of a percent of the data's bytes.
const MOST: u32 = 10;

/// The fewest packets in a span that can end the climb: below it, the count rises and
/// falls by chance (and at under eight an RTT, an ACK would wait for two anyway).
const RAMP_ENDS_AT: u16 = 8;

/// A way back whose every sample in a span stood this far above its base queued all through
/// the span: jitter, a Wi-Fi hop's bursts or a busy peer's late reads delay some ACKs, not
/// every one for a round trip.
const QUEUE: Duration = Duration::from_millis(2);

/// The fewest ACKs a round trip the way back's rule leaves the sender. Four (what a quarter
/// RTT brings) held the download beside a NewReno upload to 0.78-0.79 of its downlink on
/// `way_back.rs`'s 100 / 5 Mbit/s line (seeds 1-3), six 0.79-0.89; eight gave 0.82-0.90 but
/// let the 1/500 line's ACKs fill its uplink again with seed 2 (BBR 0.883 of the downlink).
const LEAST_ACKS: u16 = 6;

/// An epoch of the base: 2^21 µs (2.1 s), told by the span's start stamp's bit 21. The base
/// trails the clocks' drift by two epochs at most: 0.42 ms at 100 ppm, under [`QUEUE`] up to
/// about 480 ppm. And a route that grows longer in place reads as a queue on the way back
/// for two epochs at most: epochs of 2^22 µs cost NewReno 7 points of a 20 → 100 ms route
/// change's next 8 s (tests/congestion.md, "The way back").
const EPOCH_SHIFT: u32 = 21;

/// The epoch's least sample above the base is kept in units of 2^8 µs (256 µs, saturating
/// at 254 units, 65 ms); [`NO_SAMPLE`] before one.
const EPOCH_UNIT_SHIFT: u32 = 8;
const NO_SAMPLE: u8 = u8::MAX;

/// What the way back's samples showed in this span (module docs, "The way back").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Back {
    /// No sample yet on this path: no base.
    Unknown,
    /// None in this span.
    Unheard,
    /// Every sample in this span so far stood more than [`QUEUE`] above the base: one, two
    /// or three of them.
    Late1,
    Late2,
    Late3,
    /// Every sample in this span so far, four or more, stood more than [`QUEUE`] above the
    /// base.
    Queued,
    /// One at least came within [`QUEUE`] of it.
    Clear,
}

impl Back {
    /// This span's samples so far, and one more, late or not.
    fn then(self, late: bool) -> Back {
        match (self, late) {
            (_, false) | (Back::Clear, true) => Back::Clear,
            (Back::Unknown | Back::Unheard, true) => Back::Late1,
            (Back::Late1, true) => Back::Late2,
            (Back::Late2, true) => Back::Late3,
            (Back::Late3 | Back::Queued, true) => Back::Queued,
        }
    }

    /// Every sample of the span so far was late.
    fn queued(self) -> bool {
        matches!(self, Back::Late1 | Back::Late2 | Back::Late3 | Back::Queued)
    }
}

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
    /// The least one-way delay of our packets that the peer's ACKs reported (µs, with the
    /// two clocks' offset in it: compared by wrapping difference).
    base: u32,
    /// Packets that arrived in this span, and in the last whole one (saturating).
    count: u16,
    last: u16,
    /// The peer's rate has climbed in every span since the connection began or last
    /// paused (the module docs).
    ramping: bool,
    /// What this span's samples of the way back showed.
    back: Back,
    /// The most packets an ACK waits for once the rate levels: [`MOST`], raised while the
    /// way back queues.
    most: u8,
    /// The least sample above `base` in this epoch, in units of 2^[`EPOCH_UNIT_SHIFT`] µs.
    /// (Bytes, all four fields: with them the struct fills its 16 bytes, which every
    /// connection keeps.)
    epoch_least: u8,
}

impl AckFrequency {
    pub(crate) fn new() -> Self {
        AckFrequency {
            since: 0,
            base: 0,
            count: 0,
            last: 0,
            ramping: true,
            back: Back::Unknown,
            most: MOST as u8,
            epoch_least: NO_SAMPLE,
        }
    }

    /// The peer's ACK frame reported `one_way` (µs, its clock less ours, modulo 2^32) for
    /// the largest of our packets it acknowledges: a sample of the way back.
    pub(crate) fn on_way_back(&mut self, one_way: u32) {
        if self.back == Back::Unknown {
            self.base = one_way;
            self.back = Back::Unheard;
        }
        // A wrapping difference: the samples of one path lie within seconds of each other,
        // far inside the ±35 minutes an i32 of µs tells apart.
        let above = one_way.wrapping_sub(self.base) as i32;
        let above = match u32::try_from(above) {
            Ok(above) => above,
            Err(_) => {
                self.base = one_way;
                0
            }
        };
        let units = u8::try_from(above >> EPOCH_UNIT_SHIFT).unwrap_or(u8::MAX);
        self.epoch_least = self.epoch_least.min(units.min(NO_SAMPLE - 1));
        self.back = self.back.then(u64::from(above) > QUEUE.as_micros());
        // A climb whose ACKs queue from the span's start is thinned at once (module docs),
        // at the fourth late sample: one late sample is as likely jitter or a reordered
        // packet (a climb thinned at its first took a 10 MiB transfer at 1% loss, 2%
        // duplication and 5% reordering 6.6% longer in weir-sim).
        if self.back == Back::Queued && self.ramping && u32::from(self.most) == MOST {
            self.most = (2 * MOST) as u8;
        }
    }

    /// A new path: its way back is another's (spec §8, A new path).
    pub(crate) fn forget_way_back(&mut self) {
        self.back = Back::Unknown;
        self.most = MOST as u8;
        self.epoch_least = NO_SAMPLE;
    }

    /// The span that ends now showed the way back `self.back`; `stamp` begins the next.
    fn end_span(&mut self, stamp: u32) {
        match self.back {
            back if back.queued() => {
                // Up to what a sixth of a round trip brings, whatever the way back does.
                let ceiling = u8::try_from(self.last / LEAST_ACKS)
                    .unwrap_or(u8::MAX)
                    .max(MOST as u8);
                // Never below where it is: a climb's spans are short, and a ceiling
                // from one of them dropped the most back to ten and the climb's thinning
                // with it (over sockets, BBR's Startup then saw its ACK-bound rate
                // plateau and left at a sixth of the link).
                self.most = self.most.max(self.most.saturating_mul(2).min(ceiling));
            }
            Back::Clear => self.most = self.most.saturating_sub(1).max(MOST as u8),
            _ => {}
        }
        if self.back != Back::Unknown {
            self.back = Back::Unheard;
        }
        if (stamp ^ self.since) >> EPOCH_SHIFT != 0 && self.epoch_least != NO_SAMPLE {
            self.base = self
                .base
                .wrapping_add(u32::from(self.epoch_least) << EPOCH_UNIT_SHIFT);
            self.epoch_least = NO_SAMPLE;
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
            self.end_span(stamp);
            self.count = 0;
            self.since = stamp;
        }
        self.count = self.count.saturating_add(1);
    }

    /// What an ACK waits for now, with the smoothed RTT and our max_ack_delay.
    pub(crate) fn every(&self, rtt: Duration, max_ack_delay: Duration) -> Every {
        // The last span was an RTT: a quarter of its packets came in a quarter.
        let most = u32::from(self.most);
        let packets = if self.ramping && most == MOST {
            FEWEST
        } else {
            u32::from(self.last / 4).clamp(FEWEST, most)
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

    /// Feeds spans of 200 packets, each bringing the way-back samples `back(i)` for its
    /// `i`th packet (a sample with every fifth packet, as ACK frames ride on the peer's
    /// data); returns where it stopped.
    fn spans_back(f: &mut AckFrequency, at: Instant, spans: usize, back: impl Fn(usize) -> u32) -> Instant {
        let mut at = at;
        let gap = Duration::from_micros(RTT.as_micros() / 200);
        for i in 0..spans * 200 {
            f.on_arrival(at, RTT);
            if i % 5 == 0 {
                f.on_way_back(back(i));
            }
            at += gap;
        }
        at
    }

    /// Our clock and the peer's differ by an offset that is all but 2^32 µs: the way back's
    /// base is compared by wrapping difference.
    const OFFSET: u32 = u32::MAX - 3_000;
    const QUEUE_US: u32 = QUEUE.as_micros() as u32;
    /// The most an ACK waits for at 200 packets a span.
    const CEILING: u32 = 200 / LEAST_ACKS as u32;

    #[test]
    fn a_way_back_that_queues_all_through_a_span_doubles_the_packets_an_ack_waits_for() {
        let mut f = AckFrequency::new();
        let at = spans_back(&mut f, Instant::ZERO + RTT, 3, |_| OFFSET);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
        // A queue of 5 ms stands from here on: 20 a span later, then a sixth of a span's 200
        // packets (six ACKs a round trip), and no more.
        let queued = |_| OFFSET.wrapping_add(5_000);
        let mut at = at;
        for most in [2 * MOST, CEILING, CEILING] {
            at = spans_back(&mut f, at, 1, queued);
            // The span is judged when the next one's first packet comes.
            f.on_arrival(at, RTT);
            assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, most);
            at = spans_back(&mut f, at, 0, queued);
        }
        // The queue gone, one fewer a span, back to ten.
        let mut most = CEILING;
        while most > MOST {
            at = spans_back(&mut f, at, 1, |_| OFFSET.wrapping_add(QUEUE_US));
            f.on_arrival(at, RTT);
            most -= 1;
            assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, most);
        }
        spans_back(&mut f, at, 5, |_| OFFSET);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
    }

    #[test]
    fn one_sample_near_the_base_in_a_span_is_no_standing_queue() {
        let mut f = AckFrequency::new();
        let at = spans_back(&mut f, Instant::ZERO + RTT, 3, |_| OFFSET);
        // Jitter: every sample late but one a span.
        spans_back(&mut f, at, 10, |i| {
            OFFSET.wrapping_add(if i % 200 == 100 { 1_000 } else { 30_000 })
        });
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
    }

    /// Three spans of a clear way back, then two through which a 10 ms queue stood: an ACK
    /// then waits for a sixth of a span's packets. Returns where it stopped.
    fn queued_twice(f: &mut AckFrequency) -> Instant {
        let at = spans_back(f, Instant::ZERO + RTT, 3, |_| OFFSET);
        let at = spans_back(f, at, 2, |_| OFFSET.wrapping_add(10_000));
        f.on_arrival(at, RTT);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, CEILING);
        at
    }

    /// A span of 60 packets (a climb's, or a slower rate's) whose way back queued: what a
    /// sixth of it brings is below the most, which stays where it is.
    #[test]
    fn a_short_span_does_not_pull_the_most_back_down() {
        let mut f = AckFrequency::new();
        let mut at = queued_twice(&mut f);
        let gap = Duration::from_micros(RTT.as_micros() / 60);
        for _ in 0..60 {
            f.on_arrival(at, RTT);
            f.on_way_back(OFFSET.wrapping_add(10_000));
            at += gap;
        }
        f.on_arrival(at, RTT);
        assert_eq!(f.most, CEILING as u8);
    }

    /// While the peer's rate climbs, four samples in a row more than [`QUEUE`] above the
    /// base from a span's first thin the climb at once; fewer, or a steady flow's, wait for
    /// the span's end.
    #[test]
    fn four_late_samples_while_climbing_thin_the_climb_at_once() {
        let late = OFFSET.wrapping_add(QUEUE_US + 1);
        let mut f = AckFrequency::new();
        let at = spans(&mut f, Instant::ZERO + RTT, &[20, 40]);
        f.on_way_back(OFFSET);
        // A new span: its first samples late.
        f.on_arrival(at, RTT);
        for _ in 0..3 {
            f.on_way_back(late);
        }
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, FEWEST, "three may be jitter");
        f.on_way_back(late);
        assert_eq!(u32::from(f.most), 2 * MOST);
        // A quarter of the last whole span's 40 packets.
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, 10);

        let mut steady = AckFrequency::new();
        spans_back(&mut steady, Instant::ZERO + RTT, 3, |_| OFFSET);
        for _ in 0..8 {
            steady.on_way_back(late);
        }
        assert_eq!(u32::from(steady.most), MOST);
    }

    #[test]
    fn a_way_back_that_queues_thins_a_climb_too() {
        let mut f = AckFrequency::new();
        let at = queued_twice(&mut f);
        // A pause, then a climb: its ACKs would only queue on that way back.
        let at = spans(&mut f, at + RTT + RTT, &[400, 800]);
        assert!(f.ramping);
        f.on_arrival(at, RTT);
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, CEILING);
    }

    #[test]
    fn clocks_that_drift_apart_do_not_read_as_a_queue() {
        let mut f = AckFrequency::new();
        // The peer's clock gains 100 µs a second on ours (100 ppm), for two minutes: 12 ms
        // by the end, six times the queue that counts.
        let mut at = spans_back(&mut f, Instant::ZERO + RTT, 3, |_| OFFSET);
        let start = at;
        while at < start + Duration::from_secs(120) {
            let drift = ((at - start).as_micros() / 10_000) as u32;
            at = spans_back(&mut f, at, 1, |_| OFFSET.wrapping_add(drift));
            assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST, "at {at:?}");
        }
    }

    #[test]
    fn a_new_path_forgets_the_way_back() {
        let mut f = AckFrequency::new();
        let at = queued_twice(&mut f);
        f.forget_way_back();
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
        // The new path's way back is 30 ms longer: its base, not a queue.
        spans_back(&mut f, at, 3, |_| OFFSET.wrapping_add(40_000));
        assert_eq!(f.every(RTT, MAX_ACK_DELAY).packets, MOST);
    }

    #[test]
    fn the_struct_fits_sixteen_bytes() {
        assert_eq!(core::mem::size_of::<AckFrequency>(), 16);
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
