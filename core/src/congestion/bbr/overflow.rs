//! Whether a round's losses are a buffer overflowing or random loss (weir's own test; spec
//! §8, Congestion control). BBR's standing-queue test (module docs, "Loss") only sees a
//! buffer deeper than a quarter of the RTT; a shallow one (a switch's, or a socket buffer
//! at a few hundred Mbit/s: 256 KiB is 2 ms at 1 Gbit/s) overflows long before it queues
//! that much, and without this the losses it drops read as random: Startup doubled on into
//! it for a round more and each probe overran it unchecked (tests/congestion.md, "Shallow
//! buffers": twice the drops).
//!
//! A drop-tail buffer drops only when it is full, so its losses come while the queue is at
//! its ceiling; random loss takes as much at any depth. The queueing delay (spec §3.4) is
//! sampled on each ACK: the queue is *full* when it is at least [`FULL_QUEUE`] of the most
//! seen over the last rounds, that most is at least [`MIN_FULL_QUEUE`], and it has not grown
//! by an eighth for an eighth of the minimum RTT (a queue still rising, as Startup's into a
//! deep buffer, is at its most but at no ceiling). Each round counts what was lost and
//! delivered while the queue was full; the round *overflows* when its loss rate at a full
//! queue passes twice its rate below one plus [`LOSS_THRESHOLD`], over at least
//! [`LOSS_EVENTS`] datagrams. The rate below the ceiling, over the last round and this
//! one, is the path's random loss.
//!
//! Inputs: queueing-delay samples with the bytes their ACK delivered, losses, round ends.
//! Outputs: whether the round so far overflows, and its random loss rate ([`Verdict`]).

use super::{BW_WINDOW_ROUNDS, LOSS_EVENTS, LOSS_THRESHOLD, UNIT};
use crate::congestion::round_max::RoundMax;
use crate::time::{Duration, Instant};

/// The queue is full at this share (thousandths) of the most queued over the last rounds.
const FULL_QUEUE: u64 = 875;
/// The least "most queued" that can be a buffer's ceiling: below it, the one-way delay's
/// changes are noise (a scheduler's wake-up, a clock's tick), not a buffer's depth.
pub(super) const MIN_FULL_QUEUE: Duration = Duration::from_millis(1);

/// A round's losses at a full queue and below it (module docs).
#[derive(Clone, Debug)]
pub(super) struct Overflow {
    /// The most queueing delay (µs) of each of the last rounds.
    most: RoundMax<u32, BW_WINDOW_ROUNDS>,
    /// When the queue last grew by more than an eighth over `level`, the queue then (or
    /// the most since, if that fell below it).
    grew: Instant,
    level: u64,
    /// This round's bytes lost, and delivered, while the queue was full.
    full_lost: u64,
    full_delivered: u64,
    /// The last round's bytes lost, and seen, below a full queue: the random loss rate is
    /// taken over it and the current round, as a round that found the buffer full early
    /// has seen too little below it to tell (measured: a 100 ms path's Startup ran a round
    /// on into its buffer, its 5% random loss read as 50% over the round's first packets).
    last_below: (u64, u64),
}

impl Overflow {
    pub(super) fn new() -> Self {
        Overflow {
            most: RoundMax::new(),
            grew: Instant::ZERO,
            level: 0,
            full_lost: 0,
            full_delivered: 0,
            last_below: (0, 0),
        }
    }

    /// A queueing-delay sample of `queue` µs from an ACK that delivered `acked` bytes.
    pub(super) fn on_queue(&mut self, now: Instant, queue: u64, acked: usize, min_rtt: Option<Duration>) {
        if queue > self.level + self.level / 8 {
            self.grew = now;
            self.level = queue;
        }
        self.most.update(u32::try_from(queue).unwrap_or(u32::MAX));
        if self.full(now, queue, min_rtt) {
            self.full_delivered += acked as u64;
        }
    }

    /// `bytes` declared lost now, the latest queueing delay `queue` µs.
    pub(super) fn on_loss(&mut self, now: Instant, bytes: usize, queue: u64, min_rtt: Option<Duration>) {
        if self.full(now, queue, min_rtt) {
            self.full_lost += bytes as u64;
        }
    }

    /// The round that `delivered` and `lost` bytes ended: what it says, then its counts
    /// start again and the round [`BW_WINDOW_ROUNDS`] ago is forgotten by the most queued.
    pub(super) fn end_round(&mut self, delivered: u64, lost: u64, mds: usize) -> Verdict {
        let split = self.split(delivered, lost);
        let verdict = self.judge(split, mds);
        self.last_below = split[1];
        self.full_lost = 0;
        self.full_delivered = 0;
        self.most.next_round();
        self.level = self.level.min(u64::from(self.most.max()));
        verdict
    }

    /// Whether a queue of `queue` µs is at its ceiling now (module docs).
    fn full(&self, now: Instant, queue: u64, min_rtt: Option<Duration>) -> bool {
        let most = u64::from(self.most.max());
        let eighth = min_rtt.map_or(Duration::ZERO, |r| Duration::from_micros(r.as_micros() / 8));
        most >= MIN_FULL_QUEUE.as_micros()
            && queue * UNIT >= most * FULL_QUEUE
            && now.saturating_duration_since(self.grew) >= eighth
    }

    /// (lost, seen) at a full queue and below it, of a round that has so far `delivered`
    /// and `lost` bytes.
    fn split(&self, delivered: u64, lost: u64) -> [(u64, u64); 2] {
        let full_seen = self.full_delivered + self.full_lost;
        let below_lost = lost.saturating_sub(self.full_lost);
        let below_seen = (delivered + lost).saturating_sub(full_seen);
        [(self.full_lost, full_seen), (below_lost, below_seen)]
    }

    /// What the round so far says (module docs), datagrams of `mds` bytes, of a round that
    /// has so far `delivered` and `lost` bytes.
    pub(super) fn verdict(&self, delivered: u64, lost: u64, mds: usize) -> Verdict {
        self.judge(self.split(delivered, lost), mds)
    }

    /// [`verdict`](Self::verdict) from the round's split.
    fn judge(
        &self,
        [(full_lost, full_seen), (below_lost, below_seen)]: [(u64, u64); 2],
        mds: usize,
    ) -> Verdict {
        let (last_lost, last_seen) = self.last_below;
        let random = ((below_lost + last_lost) * UNIT)
            .checked_div(below_seen + last_seen)
            .unwrap_or(0);
        let full_rate = (full_lost * UNIT).checked_div(full_seen).unwrap_or(0);
        Verdict {
            overflows: full_lost >= (LOSS_EVENTS * mds) as u64 && full_rate > 2 * random + LOSS_THRESHOLD,
            random,
        }
    }
}

/// What a round's losses say (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The round overflows the buffer: congestion.
    pub(super) overflows: bool,
    /// The random loss rate (thousandths): the loss rate below a full queue over the last
    /// round and this one.
    pub(super) random: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MDS: usize = 1200;
    const RTT: Duration = Duration::from_millis(40);

    fn at(ms: u64) -> Instant {
        Instant::from_micros(1_000_000 + ms * 1000)
    }

    /// `n` datagrams declared lost at `t` ms, the queue at `queue` µs.
    fn lose(o: &mut Overflow, t: u64, queue: u64, n: usize) {
        for _ in 0..n {
            o.on_loss(at(t), MDS, queue, Some(RTT));
        }
    }

    /// A queue that rises to `ceiling` µs by 1 ms a millisecond from `from` ms and stays
    /// `hold` ms, an ACK of one datagram each millisecond; returns the moment after.
    fn rise_and_hold(o: &mut Overflow, from: u64, ceiling: u64, hold: u64) -> u64 {
        let mut t = from;
        let mut q = 0;
        while q < ceiling {
            q = (q + 1000).min(ceiling);
            o.on_queue(at(t), q, MDS, Some(RTT));
            t += 1;
        }
        for _ in 0..hold {
            o.on_queue(at(t), ceiling, MDS, Some(RTT));
            t += 1;
        }
        t
    }

    #[test]
    fn losses_at_a_ceiling_overflow_and_random_ones_below_it_do_not() {
        let mut o = Overflow::new();
        // A 3 ms buffer, full from 5 ms after it filled (an eighth of the RTT): 8 datagrams
        // lost there, 6 delivered; none lost of the 1,000 delivered before.
        let t = rise_and_hold(&mut o, 0, 3_000, 10);
        lose(&mut o, t, 3_000, 8);
        let (delivered, lost) = (1_006 * MDS as u64, 8 * MDS as u64);
        assert_eq!(o.verdict(delivered, lost, MDS).random, 0);
        assert!(o.verdict(delivered, lost, MDS).overflows);
        // Fewer than six datagrams say nothing.
        let mut few = Overflow::new();
        let t = rise_and_hold(&mut few, 0, 3_000, 10);
        lose(&mut few, t, 3_000, 5);
        assert!(!few.verdict(1_006 * MDS as u64, 5 * MDS as u64, MDS).overflows);
        // The next round starts its counts again.
        assert!(o.end_round(delivered, lost, MDS).overflows);
        assert!(!o.verdict(0, 0, MDS).overflows);
    }

    #[test]
    fn random_loss_takes_as_much_at_the_ceiling_as_below_it() {
        let mut o = Overflow::new();
        let t = rise_and_hold(&mut o, 0, 3_000, 45);
        // The same share lost at the ceiling as below it: 2 of the 43 datagrams seen while
        // it was full (41 delivered), 50 of the 1,050 before.
        lose(&mut o, t, 3_000, 2);
        let (delivered, lost) = (1_041 * MDS as u64, 52 * MDS as u64);
        assert_eq!(o.verdict(delivered, lost, MDS).random, 47);
        assert!(!o.verdict(delivered, lost, MDS).overflows);
    }

    #[test]
    fn a_rising_queue_or_a_noise_sized_one_is_no_ceiling() {
        // Rising by 1 ms a millisecond, as Startup's into a deep buffer: at its most on
        // every sample, but on a 300 ms path never an eighth of the RTT without growing
        // by an eighth.
        let mut o = Overflow::new();
        let rtt = Some(Duration::from_millis(300));
        for ms in 1..100 {
            o.on_queue(at(ms), ms * 1000, MDS, rtt);
            o.on_loss(at(ms), MDS, ms * 1000, rtt);
        }
        assert!(!o.verdict(1_000 * MDS as u64, 99 * MDS as u64, MDS).overflows);
        // Held at 0.9 ms: below the least ceiling.
        let mut o = Overflow::new();
        let t = rise_and_hold(&mut o, 0, 900, 10);
        lose(&mut o, t, 900, 20);
        assert!(!o.verdict(1_000 * MDS as u64, 20 * MDS as u64, MDS).overflows);
    }
}
