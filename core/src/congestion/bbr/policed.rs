//! Whether BBR's losses with no queue follow its rate, and the bound on its rate while they
//! do (weir's own rule; spec §8, Congestion control, BBR, "A policed path").
//!
//! BBR takes a loss as congestion only if a queue stood with it (module docs, "Loss"), so
//! that random loss on a wireless or long path costs it nothing. A policer (a token bucket
//! at an ISP's or a carrier's edge) queues nothing: BBR's delivery-rate samples through its
//! bucket run above the policed rate, it paces above it, and the policer drops the excess.
//! Measured through five policed paths: 5-11% of what BBR sent dropped, and a NewReno flow
//! beside it kept 2-3% of the rate (tests/congestion.md, "Policers").
//!
//! A policer's losses and random ones differ in one thing: a policer's follow the rate
//! (LEDBAT's test, module `loss_regime`, cuts the rate to see). BBR varies its rate anyway:
//! each ProbeBw cycle has a phase that paces at 5/4 of the estimate. So the test costs
//! nothing: the bytes acknowledged and lost of what was sent in those probes are tallied
//! apart from the rest, by the newest send time each ACK or loss names. Random loss takes
//! as much of both; a policer takes more of the probes'. (The 3/4 phase was tried first:
//! with no queue to drain it ends at its first ACK and sends next to nothing.)
//!
//! A sender of messages, each answered before the next, is no such test. Each pause
//! refills the bucket, so each message's first round trip goes through it whole, and BBR's
//! estimate (the most of its delivery-rate samples) holds that burst: the policer's rate
//! plus a bucket per round trip. All it sends runs above the rate, the rest loses as the
//! probes do, and the probes' test never passed: 17-19% of its datagrams dropped over
//! sockets, 10-19% in weir-sim (tests/congestion.md, "Policers", "Messages"). What such a
//! sender's losses follow is the burst: the refilled bucket passes its first datagrams,
//! and drops from the rest. So the first [`EARLY_DATAGRAMS`] of each burst (from a datagram
//! sent with nothing else in flight) are tallied apart too, the *early* ones, and the rest
//! of the burst is tested against them as the probes are against the rest. Random loss
//! takes as much of both. The states, declared in [`Phase`]:
//! - `Watching`: past Startup, from the first round that lost with no queue. Once the
//!   probes' losses pass what a Poisson count of the mean the rest's loss rate gives them
//!   reaches once in a million ([`poisson_tail`]), or the bursts' later datagrams' losses
//!   pass the same at the early ones' loss rate (taken as a datagram more than they lost,
//!   from [`MIN_EARLY`] early datagrams on: a few early datagrams that lost none say
//!   little), and the loss rate of all passes BBR's [`LOSS_THRESHOLD`], the losses follow
//!   the rate. A mean past [`POISSON_TAIL`] for either test with losses within chance, or
//!   a loss rate at the threshold or below over enough datagrams, starts the tallies again
//!   (until 2026-12-04 a mean past the table did so whatever was lost: on a path whose
//!   window is hundreds of datagrams a probe or two reach it, and a policer there was found
//!   late or never, 8-9% of what BBR sent dropped; tests/congestion.md, "Policers").
//!   The counts take losses as independent: a burst of random losses (a radio's fade)
//!   that falls in one probe can pass the test, and the path is then rate-bound for
//!   nothing (at 5% loss in bursts of 10-50, 20-500 Mbit/s: tests/congestion.md, "What
//!   the controllers still get wrong", with the cures tried). The tallies must span a
//!   ProbeBw cycle (eight minimum RTTs): a reordering path with 10% loss and 2 ms of
//!   jitter read as a policer from two RTTs of them. A round with a queue (one standing
//!   all round, a shallow buffer's overflow, or a queueing delay sample in it or the
//!   round before above the path's jitter by an eighth of the minimum RTT and
//!   [`MIN_PROBE_QUEUE`]) starts them again too: a queue's losses follow the rate as well,
//!   and BBR's own rules answer them.
//!   The jitter is what every one of the last [`JITTER_ROUNDS`] rounds' samples reached
//!   (the least of their peaks): with the fixed threshold alone, a path whose delay
//!   jitters by more than it (4-8 ms of reordering jitter at 20 ms, weir-sim) started the
//!   tallies again nearly every round and the policer was never found, 12-14% of what BBR
//!   sent dropped; now 2.0-3.1% (tests/congestion.md, "Policers"). A round that lost a
//!   quarter of what it sent with no queue does not (it did until the forty-eighth round:
//!   a message's first round through a policer is such a round, and each reset the
//!   tallies). A loss found spurious is taken back (a reordering path "loses" more of a
//!   probe's closer-spaced datagrams).
//! - `RateBound`: the path's rate is bound, and so is BBR's: it paces at the bound, at a
//!   gain of at most 1 (a probe above the bound would only overrun the bucket). The first
//!   bound is [`BETA`] of what the tallied span delivered per second, below a policer's
//!   rate whatever burst inflated BBR's estimate; found by the bursts' test, of what the
//!   bursts delivered per second while they sent past their early datagrams (the bucket
//!   empty then, a policer's rate; a message that did not empty it counts too, so this runs
//!   above the rate: 0.92 MB/s through a 0.625 MB/s policer, weir-sim), at most the
//!   estimate. The rounds while the bound is below
//!   [`LOW`] of where it was last cut measure the path's random loss; a round that loses
//!   more than that explains (a count a Poisson count of its mean reaches once in a hundred
//!   rounds, [`CUT_TAIL`]) cuts the bound by [`BETA`] (BBRv3's BBRBeta, CUBIC's: a
//!   loss-based flow beside it keeps a share); any other round raises it by a datagram per
//!   minimum RTT. The round after a cut is not judged: its losses are of what was sent
//!   before it. A bound cut on every random loss held a policed path with 1% random loss to
//!   0.14-0.44 of its rate (a throw-away build); with the random loss measured, 0.85-0.98.
//!   After [`RATE_BOUND_CUTS`] cuts (LEDBAT's count), or at a round with a queue standing all
//!   round (the bound runs above a bottleneck's rate, which BBR's model knows: on a
//!   reordering path with 10% loss the tally read a policer, and the bound overran the
//!   bottleneck's buffer), the bound goes and the losses are watched again: on a policed
//!   path, a few rounds of overrun every so many cycles; on a path misjudged, a bounded
//!   spell of loss-based control.
//!
//! Inputs: each datagram's size and time with the flight it joined, each ACK's and each
//! loss's bytes with the newest send time, spurious losses, the probes' starts and ends, queueing delay samples, and each round's
//! end. Output: the bound on BBR's bandwidth, if any.

use super::{LOSS_THRESHOLD, MIN_PIPE_PACKETS, UNIT};
use crate::congestion::loss_regime::RATE_BOUND_CUTS;
use crate::congestion::round_max::RoundMax;
use crate::time::{Duration, Instant};

/// The probes' losses follow the rate once they are at least `POISSON_TAIL[m]`, where `m` is
/// what the probes would have lost at the rest's loss rate: the least count a Poisson count
/// of mean `m` reaches once in a million or less (computed to the digit for each mean; checked
/// at every round's end, so the chance of a random path passing is a few times that). Past
/// the table, [`poisson_tail`]'s bound.
const POISSON_TAIL: [u8; 33] = [
    1, 10, 13, 15, 18, 20, 22, 24, 26, 27, 29, 31, 33, 34, 36, 38, 39, 41, 42, 44, 46, 47, 49, 50, 52, 53,
    55, 56, 58, 59, 60, 62, 63,
];
/// Tallies whose loss rate is at most [`LOSS_THRESHOLD`] over as many datagrams as that rate
/// loses this many of start again: a clean path's old counts would dilute a policer's.
const TEST_LOSSES: u64 = 32;
/// A queueing delay sample above the path's jitter by an eighth of the minimum RTT (half
/// what a probe at 5/4 queues at a bottleneck), and by this, in the round or the one before
/// shows a queue: its losses follow the rate too (a buffer that a probe overflowed, one
/// that overflowed and drained, a path whose rate fell, one that stalls), and BBR's own
/// rules answer them.
/// Below it, a scheduler's jitter (over loopback sockets, samples of 1-3 ms at 20 ms).
const MIN_PROBE_QUEUE: Duration = Duration::from_millis(2);
/// The rounds over which the path's jitter is the least of each round's most queueing
/// delay: a ProbeBw cycle, so that a probe's queue, in a round or two of it, is not jitter.
const JITTER_ROUNDS: usize = 8;
/// Each cut of the bound, in thousandths (BBRv3's BBRBeta).
const BETA: u64 = 700;
/// A bound below this share of its level (thousandths) is below the policer's rate: what
/// is lost then is random.
const LOW: u64 = 850;
/// The cut on a rate-bound path is for `k` or more datagrams lost in a round when the
/// random loss rate would have lost at most `CUT_TAIL[k - 1]` thousandths of a datagram of
/// it: a count a Poisson count of that mean reaches once in a hundred rounds or less
/// (computed to the digit for each `k`). Past the table, twice the mean.
const CUT_TAIL: [u64; 24] = [
    10, 148, 436, 823, 1279, 1785, 2330, 2906, 3507, 4130, 4771, 5428, 6099, 6782, 7476, 8181, 8894, 9616,
    10345, 11082, 11825, 12574, 13328, 14088,
];
/// The most random loss a rate-bound path tolerates (thousandths): beside another flow, the
/// rounds of a low bound also see that flow's overrun, and a bound that tolerated it grew
/// without end (throw-away builds: two BBR flows through a 64 kB bucket lost 58%; capped
/// at 10%, two flows through a 16 or 32 kB bucket still lost 13-18%; at 5%, 4.6-11.9%).
const MOST_RANDOM: u64 = 50;
/// A burst's first this many datagrams (from one sent with nothing else in flight) are
/// its early ones: a policer's bucket, full after a pause, passes them.
const EARLY_DATAGRAMS: u64 = 8;
/// The bursts' test waits for this many early datagrams.
const MIN_EARLY: u64 = 16;
/// The random loss rate is over about this many datagrams (halved past it).
const LOW_DATAGRAMS: u64 = 4096;

/// Bytes delivered and lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    delivered: u64,
    lost: u64,
}

impl Tally {
    fn seen(self) -> u64 {
        self.delivered + self.lost
    }
}

/// What the losses with no queue have shown so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Tallying the datagrams since the tallies began.
    Watching(Watch),
    /// The losses followed the rate: BBR paces at the bound.
    RateBound(Bound),
}

/// The tallies while watching: each datagram counts in one, by when it was sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Watch {
    /// When the tallies began (`None`: at the next round's end).
    since: Option<Instant>,
    /// The first [`EARLY_DATAGRAMS`] of each burst.
    early: Tally,
    /// The rest of each burst: what left during the latest probe, and the others.
    probe: Tally,
    rest: Tally,
    /// The time the bursts spent sending their rest (µs), from each datagram's to the next.
    late_us: u64,
}

const WATCHING: Phase = Phase::Watching(Watch {
    since: None,
    early: Tally {
        delivered: 0,
        lost: 0,
    },
    probe: Tally {
        delivered: 0,
        lost: 0,
    },
    rest: Tally {
        delivered: 0,
        lost: 0,
    },
    late_us: 0,
});

/// A burst: what the sender sent from a datagram that left with nothing else in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Burst {
    start: Instant,
    /// Bytes sent in it.
    sent: u64,
    /// When its first datagram past its first [`EARLY_DATAGRAMS`] left, and its latest.
    late: Option<Instant>,
    last: Instant,
}

/// A round that ended (BBR's round counting, draft §4.5.1).
#[derive(Clone, Copy, Debug)]
pub(super) struct RoundEnd {
    pub now: Instant,
    /// Bytes the round delivered, and lost.
    pub delivered: u64,
    pub lost: u64,
    /// A queue stood all round; a shallow buffer overflowed (module `overflow`).
    pub standing: bool,
    pub overflows: bool,
    /// BBR left Startup (whose losses end it by BBR's own rules).
    pub past_startup: bool,
    /// The ACK that ended the round was for a datagram sent application-limited.
    pub app_limited: bool,
    pub min_rtt: Duration,
    pub max_datagram: usize,
    /// BBR's bandwidth estimate.
    pub bw: u64,
}

/// The policer test's state, boxed in BBR and made at the first round past Startup that
/// lost with no queue.
#[derive(Clone, Debug)]
pub(super) struct Policed {
    phase: Phase,
    /// When the latest probe began, and ended (`None` while it lasts).
    probe_start: Option<Instant>,
    probe_end: Option<Instant>,
    /// The latest burst (`None` before one began).
    burst: Option<Burst>,
    /// Each of the last [`JITTER_ROUNDS`] rounds' most queueing delay (µs): the most of
    /// this round and the one before is a queue's sign, the least of them all the path's
    /// jitter, which every round reaches.
    peaks: RoundMax<u32, JITTER_ROUNDS>,
    /// The largest datagram sent since this was made: the tallies are in bytes, the test
    /// counts datagrams (BBR's own size is the path's first, often below what path MTU
    /// discovery found since).
    datagram: u64,
}

impl Policed {
    pub(super) fn new() -> Self {
        Policed {
            phase: WATCHING,
            probe_start: None,
            probe_end: None,
            burst: None,
            peaks: RoundMax::new(),
            datagram: 0,
        }
    }

    /// BBR's bandwidth given its estimate `bw`: the bound on a rate-bound path, where BBR's
    /// gains stay at 1 or below and its delivery-rate samples only say what it sent (its
    /// estimate, a maximum of them, would fall by the pacing margin each ten rounds).
    pub(super) fn bandwidth(&self, bw: u64) -> u64 {
        match self.phase {
            Phase::Watching(_) => bw,
            Phase::RateBound(b) => b.rate,
        }
    }

    /// Whether the path is rate-bound (BBR's gains stay at 1 or below).
    pub(super) fn bound(&self) -> bool {
        matches!(self.phase, Phase::RateBound(_))
    }

    /// A ProbeBw probe began (`true`) or the phase after it did.
    pub(super) fn on_probe(&mut self, now: Instant, probing: bool) {
        if probing {
            self.probe_start = Some(now);
            self.probe_end = None;
        } else if self.probe_start.is_some() && self.probe_end.is_none() {
            self.probe_end = Some(now);
        }
    }

    /// A datagram of `bytes` left at `now`, `in_flight` bytes in flight with it.
    pub(super) fn on_sent(&mut self, now: Instant, bytes: usize, in_flight: usize) {
        let bytes = bytes as u64;
        self.datagram = self.datagram.max(bytes);
        if in_flight as u64 <= bytes {
            self.burst = Some(Burst {
                start: now,
                sent: 0,
                late: None,
                last: now,
            });
        }
        if let Some(b) = &mut self.burst {
            if let (Some(_), Phase::Watching(w)) = (b.late, &mut self.phase) {
                w.late_us += (now - b.last).as_micros();
            }
            b.sent += bytes;
            b.last = now;
            if b.late.is_none() && b.sent >= EARLY_DATAGRAMS * self.datagram {
                b.late = Some(now);
            }
        }
    }

    /// A queueing delay sample (µs).
    pub(super) fn on_queue(&mut self, queue_us: u64) {
        self.peaks.update(u32::try_from(queue_us).unwrap_or(u32::MAX));
    }

    /// `bytes` acknowledged, or declared `lost`, the newest of them sent at `sent`.
    pub(super) fn on_outcome(&mut self, sent: Instant, bytes: usize, lost: bool) {
        let Some(tally) = self.tally(sent) else {
            return;
        };
        let bytes = bytes as u64;
        if lost {
            tally.lost += bytes;
        } else {
            tally.delivered += bytes;
        }
    }

    /// `bytes` declared lost, the newest of them sent at `sent`, arrived after all: the
    /// path reordered them (RFC 9002 §6.1.1). Taken back from the tallies: a reordering
    /// path "loses" more of a probe's closer-spaced datagrams to the packet threshold, and
    /// that follows the rate too.
    pub(super) fn on_spurious(&mut self, sent: Instant, bytes: usize) {
        if let Some(tally) = self.tally(sent) {
            let bytes = (bytes as u64).min(tally.lost);
            tally.lost -= bytes;
            tally.delivered += bytes;
        }
    }

    /// The tally a datagram sent at `sent` counts in while watching: the early ones' if it
    /// was among the first of the latest burst (datagrams that left in one instant count
    /// alike: the first datagrams past the count may count early), else the probes' if it
    /// left during the latest probe, the rest's otherwise.
    fn tally(&mut self, sent: Instant) -> Option<&mut Tally> {
        let early = self
            .burst
            .is_some_and(|b| sent >= b.start && b.late.is_none_or(|late| sent <= late));
        let probed = self.probe_start.is_some_and(|start| sent >= start)
            && self.probe_end.is_none_or(|end| sent < end);
        match &mut self.phase {
            Phase::Watching(w) if w.since.is_some() => Some(if early {
                &mut w.early
            } else if probed {
                &mut w.probe
            } else {
                &mut w.rest
            }),
            _ => None,
        }
    }

    /// A round ended: the transitions of [`Phase`] (module docs).
    pub(super) fn end_round(&mut self, r: &RoundEnd) {
        let probe_queue = (r.min_rtt.as_micros() / 8).max(MIN_PROBE_QUEUE.as_micros());
        let (queue, jitter) = (u64::from(self.peaks.recent(2)), u64::from(self.peaks.least()));
        let queued = r.standing || r.overflows || queue > jitter + probe_queue;
        self.peaks.next_round();
        let mds = self.datagram.max(r.max_datagram as u64).max(1);
        let rtt = r.min_rtt.as_micros().max(1);
        // The least a bound may be: BBR's smallest window per minimum RTT.
        let floor = MIN_PIPE_PACKETS as u64 * mds * 1_000_000 / rtt;
        let fresh = Phase::Watching(Watch {
            since: Some(r.now),
            ..Watch::default()
        });
        self.phase = match self.phase {
            Phase::Watching(_) if queued || !r.past_startup => fresh,
            Phase::Watching(Watch { since: None, .. }) => fresh,
            Phase::Watching(
                w @ Watch {
                    since: Some(since), ..
                },
            ) => {
                let late = Tally {
                    delivered: w.probe.delivered + w.rest.delivered,
                    lost: w.probe.lost + w.rest.lost,
                };
                let (all, lost) = (w.early.seen() + late.seen(), w.early.lost + late.lost);
                let loss = (lost * UNIT).checked_div(all).unwrap_or(0);
                // Tallies over at least a ProbeBw cycle (module docs).
                let cycle = (r.now - since).as_micros() >= 8 * r.min_rtt.as_micros();
                let lossy = loss > LOSS_THRESHOLD && cycle;
                // The probes against the rest, which must have sent more than the probes:
                // its rate is the estimate the probes are held to.
                let probes = beyond_chance(w.probe, w.rest.lost, w.rest.seen(), mds);
                let probes_follow = probes.follows && w.rest.seen() >= 2 * w.probe.seen();
                // The bursts' later datagrams against their first, whose loss rate is
                // taken as a datagram more than they lost (so few first datagrams that
                // lost none say little).
                let bursts = (w.early.seen() >= MIN_EARLY * mds)
                    .then(|| beyond_chance(late, w.early.lost + mds, w.early.seen(), mds));
                // Too little lost for a test over as many datagrams as a loss rate at the
                // threshold would lose the test's count of.
                let clean = loss <= LOSS_THRESHOLD && all >= TEST_LOSSES * UNIT / LOSS_THRESHOLD * mds;
                if lossy && probes_follow {
                    // What the tallied span delivered per second.
                    let span = (r.now - since).as_micros().max(1);
                    let delivered = w.early.delivered + late.delivered;
                    let got = u128::from(delivered) * 1_000_000 / u128::from(span);
                    Phase::RateBound(Bound::new(u64::try_from(got).unwrap_or(u64::MAX), floor))
                } else if lossy && w.late_us > 0 && bursts.is_some_and(|t| t.follows) {
                    // What the bursts delivered per second while they sent past their first
                    // datagrams (a policer's bucket empty then: its rate), at most the
                    // estimate.
                    let got = u128::from(late.delivered) * 1_000_000 / u128::from(w.late_us);
                    let got = u64::try_from(got).unwrap_or(u64::MAX).min(r.bw);
                    Phase::RateBound(Bound::new(got, floor))
                } else if probes.enough || bursts.is_some_and(|t| t.enough) || clean {
                    fresh
                } else {
                    self.phase
                }
            }
            // Spent; or a queue: the bound runs above a bottleneck's rate, and BBR's model
            // knows that rate.
            Phase::RateBound(Bound { cuts_left: 0, .. }) => fresh,
            Phase::RateBound(_) if r.standing => fresh,
            Phase::RateBound(mut b) => {
                b.end_round(r, floor, mds);
                Phase::RateBound(b)
            }
        };
    }
}

/// A test's outcome (module docs, `Watching`).
#[derive(Clone, Copy, Debug)]
struct Test {
    /// The part tested lost beyond chance.
    follows: bool,
    /// The loss rate it is held to would have lost past [`POISSON_TAIL`], and the part did
    /// not lose beyond chance: both lost alike over enough datagrams.
    enough: bool,
}

/// Whether `part` lost beyond chance at the loss rate of `lost` bytes in `seen`: at least
/// [`poisson_tail`]`(m)` datagrams, `m` what it would have lost at that rate (rounded up,
/// and at least one: the rate is a count too); `mds` is the datagram size.
fn beyond_chance(part: Tally, lost: u64, seen: u64, mds: u64) -> Test {
    let expected = u128::from(part.seen()) * u128::from(lost);
    let expected = expected.div_ceil(u128::from(seen.max(1)) * u128::from(mds));
    let expected = u64::try_from(expected).unwrap_or(u64::MAX).max(1);
    let follows = part.lost / mds >= poisson_tail(expected);
    Test {
        follows,
        enough: expected >= POISSON_TAIL.len() as u64 && !follows,
    }
}

/// The least count a Poisson count of mean `m` reaches once in a million or less, or a
/// little more: [`POISSON_TAIL`] to the digit, past it `m + 5(⌊√m⌋ + 1) + 5`, above the
/// exact count by 3 to 19 for means of 33 to 5,000 (the normal tail's 4.75 deviations and
/// the Poisson's skew, rounded up). A path with a large window expects
/// more than the table's 32 lost of its probes within a probe or two: with no count past
/// the table the test stopped there, and a policer was never found (module docs).
fn poisson_tail(m: u64) -> u64 {
    match usize::try_from(m).ok().and_then(|i| POISSON_TAIL.get(i)) {
        Some(&k) => u64::from(k),
        None => m.saturating_add(5 * (m.isqrt() + 1) + 5),
    }
}

/// `rate` cut by [`BETA`], to no less than `floor`.
fn cut(rate: u64, floor: u64) -> u64 {
    (rate / UNIT * BETA).max(floor)
}

/// A rate-bound path's bound (module docs, `RateBound`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bound {
    /// The bound (bytes per second), and what it was when it was last cut.
    rate: u64,
    level: u64,
    /// Cuts the regime lasts yet.
    cuts_left: u8,
    /// The round that ended last was cut.
    cut: bool,
    /// What the rounds in the lower part of the sawtooth (a bound below [`LOW`] of its
    /// level) delivered and lost: the path's random loss, below the policer's rate.
    low: Tally,
}

impl Bound {
    /// The first bound, [`BETA`] of what the path delivered per second (`got`), at least
    /// `floor`.
    fn new(got: u64, floor: u64) -> Bound {
        Bound {
            rate: cut(got, floor),
            level: got,
            cuts_left: RATE_BOUND_CUTS,
            cut: true,
            low: Tally::default(),
        }
    }

    /// A round ended; `floor` is the least bound, `mds` the path's datagram size.
    fn end_round(&mut self, r: &RoundEnd, floor: u64, mds: u64) {
        if self.cut {
            // Its losses are of what was sent before the cut.
            self.cut = false;
            return;
        }
        if u128::from(self.rate) * u128::from(UNIT) < u128::from(self.level) * u128::from(LOW) {
            self.low.delivered += r.delivered;
            self.low.lost += r.lost;
            if self.low.seen() > LOW_DATAGRAMS * mds {
                self.low.delivered /= 2;
                self.low.lost /= 2;
            }
        }
        // What the round would have lost at the random loss rate, in thousandths of a
        // datagram, and the losses that are no chance then.
        let random = (self.low.lost * UNIT / self.low.seen().max(1)).min(MOST_RANDOM);
        let expected = u128::from(r.lost + r.delivered) * u128::from(random) / u128::from(mds);
        let expected = u64::try_from(expected).unwrap_or(u64::MAX);
        let beyond = CUT_TAIL
            .iter()
            .position(|&most| expected <= most)
            .map_or(expected / 500, |k| k as u64 + 1);
        if (r.lost + mds / 2) / mds >= beyond {
            self.level = self.rate;
            self.rate = cut(self.rate, floor);
            self.cuts_left = self.cuts_left.saturating_sub(1);
            self.cut = true;
            return;
        }
        if !r.app_limited {
            self.rate = self
                .rate
                .saturating_add(mds * 1_000_000 / r.min_rtt.as_micros().max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1200;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    fn round(now: u64, delivered: u64, lost: u64) -> RoundEnd {
        RoundEnd {
            now: at(now),
            delivered: delivered * MSS as u64,
            lost: lost * MSS as u64,
            standing: false,
            overflows: false,
            past_startup: true,
            app_limited: false,
            min_rtt: Duration::from_millis(40),
            max_datagram: MSS,
            bw: u64::MAX,
        }
    }

    /// `n` datagrams sent at `sent_ms`, `lost` of them lost.
    fn outcomes(p: &mut Policed, sent_ms: u64, n: u64, lost: u64) {
        for i in 0..n {
            p.on_outcome(at(sent_ms), MSS, i < lost);
        }
    }

    /// A policed path: the rest loses 5%, the probes 30%. Returns the state after the
    /// round that ends the count, and the queueing delay (µs) seen during it.
    fn watched(probe_lost: u64, queue_us: u64) -> Policed {
        watched_until(2000, probe_lost, queue_us)
    }

    /// The same, the count ending at `end_ms` (it began at 1000).
    fn watched_until(end_ms: u64, probe_lost: u64, queue_us: u64) -> Policed {
        jittery_watched(0, end_ms, probe_lost, queue_us)
    }

    /// [`watched_until`], after eight rounds of 40 ms in Startup whose queueing delay each
    /// reached `jitter_us` (the last of them ending at 1 s, where the count begins).
    fn jittery_watched(jitter_us: u64, end_ms: u64, probe_lost: u64, queue_us: u64) -> Policed {
        counted(jitter_us, (900, 45), (100, probe_lost), queue_us, end_ms)
    }

    /// The same, `rest` and `probes` (datagrams sent, lost) counted.
    fn counted(jitter_us: u64, rest: (u64, u64), probes: (u64, u64), queue_us: u64, end_ms: u64) -> Policed {
        let mut p = Policed::new();
        for round_ms in (720..=1000).step_by(40) {
            p.on_queue(jitter_us);
            p.end_round(&RoundEnd {
                past_startup: false,
                ..round(round_ms, 0, 0)
            });
        }
        p.on_probe(at(1100), true);
        p.on_probe(at(1140), false);
        outcomes(&mut p, 1050, rest.0, rest.1);
        outcomes(&mut p, 1120, probes.0, probes.1);
        p.on_queue(queue_us);
        p.end_round(&round(end_ms, 0, 0));
        p
    }

    #[test]
    fn a_count_shorter_than_a_probe_cycle_says_nothing() {
        // Eight minimum RTTs of 40 ms: 320 ms.
        assert!(!watched_until(1300, 30, 0).bound());
        assert!(watched_until(1320, 30, 0).bound());
    }

    #[test]
    fn probes_that_lose_more_than_the_rest_bind_the_rate() {
        // At the rest's 5%, the probes' 100 datagrams would lose 4.8: 20 or more is no
        // chance.
        let p = watched(30, 0);
        assert!(p.bound());
        // 0.7 of what the second delivered: 925 datagrams in 1 s.
        assert_eq!(p.bandwidth(u64::MAX), 925 * MSS as u64 / UNIT * BETA);
    }

    #[test]
    fn probes_that_lose_as_the_rest_does_bind_nothing() {
        let p = watched(19, 0);
        assert!(!p.bound());
        assert_eq!(p.bandwidth(12_345), 12_345);
    }

    #[test]
    fn probes_of_a_large_window_that_lose_more_bind_the_rate() {
        // A window of thousands of datagrams: the rest's 9,000 lose 5%, the probes' 1,000
        // would lose 50 at that rate (past the table); 120 is no chance, 60 is.
        let large = |probe_lost| counted(0, (9000, 450), (1000, probe_lost), 0, 2000);
        assert!(large(120).bound());
        assert!(!large(60).bound());
    }

    #[test]
    fn the_tail_past_the_table_is_above_the_exact_one() {
        // The exact counts a Poisson count of each mean reaches once in a million (summed
        // from the mass function, tests/congestion.md, "Large windows").
        for (m, exact) in [(33, 65), (50, 88), (100, 152), (1000, 1155), (5000, 5341)] {
            let k = poisson_tail(m);
            assert!((exact..=exact + 20).contains(&k), "mean {m}: {k} against {exact}");
        }
        assert_eq!(poisson_tail(32), 63);
        assert_eq!(poisson_tail(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_queue_starts_the_count_again() {
        let p = watched(30, 10_000);
        assert!(!p.bound());
        assert!(matches!(
            p.phase,
            Phase::Watching(w) if w.probe == Tally::default() && w.rest == Tally::default()
        ));
    }

    #[test]
    fn jitter_that_every_round_reaches_is_no_queue() {
        // The threshold at a minimum RTT of 40 ms is 5 ms over the jitter. A path whose
        // delay jitters by 10 ms in every round: the same samples are no queue there...
        assert!(jittery_watched(10_000, 2000, 30, 10_000).bound());
        // ...though they would be on a path that does not jitter,
        assert!(!jittery_watched(0, 2000, 30, 10_000).bound());
        // and a probe's queue above the jitter still starts the count again.
        let p = jittery_watched(10_000, 2000, 30, 16_000);
        assert!(!p.bound());
        assert!(matches!(
            p.phase,
            Phase::Watching(w) if w.probe == Tally::default() && w.rest == Tally::default()
        ));
    }

    /// Five bursts of 30 datagrams a millisecond apart, 100 ms apart from 1 s, each after
    /// a pause (nothing in flight): `early_lost` of the first eight of each lost, and
    /// `late_lost` of the rest; then the round that ends the count, at 1.5 s.
    fn bursts(early_lost: u64, late_lost: u64, bw: u64) -> Policed {
        let mut p = Policed::new();
        p.end_round(&round(1000, 0, 0));
        for burst in 0..5 {
            let start = 1000 + burst * 100;
            for i in 0..30 {
                p.on_sent(at(start + i), MSS, (i as usize + 1) * MSS);
            }
            for i in 0..30 {
                let lost = if i < 8 { i < early_lost } else { i - 8 < late_lost };
                p.on_outcome(at(start + i), MSS, lost);
            }
        }
        p.end_round(&RoundEnd {
            bw,
            ..round(1500, 0, 0)
        });
        p
    }

    #[test]
    fn bursts_that_lose_past_their_first_datagrams_bind_the_rate() {
        // The first 40 datagrams lost none; at one lost in 40, the other 110 would lose
        // 2.75: 30 lost is no chance.
        let p = bursts(0, 6, u64::MAX);
        assert!(p.bound());
        // 0.7 of what the rest of the bursts delivered while they sent: 80 datagrams in
        // five spans of 22 ms.
        let got = 80 * MSS as u64 * 1_000_000 / 110_000;
        assert_eq!(p.bandwidth(u64::MAX), got / UNIT * BETA);
        // At most the estimate.
        assert_eq!(bursts(0, 6, 500_000).bandwidth(u64::MAX), 500_000 / UNIT * BETA);
    }

    #[test]
    fn bursts_that_lose_all_through_bind_nothing() {
        // Random loss: one of each burst's first eight lost, three of the other 22.
        assert!(!bursts(1, 3, u64::MAX).bound());
    }

    #[test]
    fn a_shallow_buffers_overflow_starts_the_count_again() {
        let mut p = Policed::new();
        p.end_round(&round(1000, 0, 0));
        outcomes(&mut p, 1050, 10, 5);
        p.end_round(&RoundEnd {
            overflows: true,
            ..round(1100, 5, 5)
        });
        assert!(matches!(p.phase, Phase::Watching(w) if w.rest == Tally::default()));
    }

    #[test]
    fn a_spurious_loss_is_taken_back() {
        let mut p = Policed::new();
        p.end_round(&round(1000, 0, 0));
        outcomes(&mut p, 1050, 10, 2);
        p.on_spurious(at(1050), MSS);
        let Phase::Watching(Watch { rest, .. }) = p.phase else {
            panic!("watching");
        };
        assert_eq!((rest.delivered, rest.lost), (9 * MSS as u64, MSS as u64));
    }

    #[test]
    fn a_bound_is_cut_for_losses_its_random_loss_does_not_explain() {
        let mds = MSS as u64;
        let mut b = Bound {
            // At its level: not low, so the rounds leave the random loss as it is.
            rate: 1_000_000,
            level: 1_000_000,
            cuts_left: 2,
            cut: false,
            // 1% random loss.
            low: Tally {
                delivered: 990 * mds,
                lost: 10 * mds,
            },
        };
        // 100 datagrams: a mean of 1; 4 lost is random (once in 53 rounds)...
        b.end_round(&round(0, 96, 4), 0, mds);
        assert!(!b.cut);
        assert!(b.rate > 1_000_000, "grown by a datagram per minimum RTT");
        // ...5 is not (once in 270).
        let before = b.rate;
        b.end_round(&round(0, 95, 5), 0, mds);
        assert!(b.cut);
        assert_eq!(b.rate, before / UNIT * BETA);
        assert_eq!(b.cuts_left, 1);
        // The next round's losses are of what was sent before the cut.
        b.end_round(&round(0, 50, 50), 0, mds);
        assert!(!b.cut);
        assert_eq!(b.cuts_left, 1);
    }

    /// BBR boxes one after the first round past Startup that lost with no queue (a lossy
    /// connection only; an idle one that never lost pays nothing): its size is a budget.
    /// (88 bytes before the bursts' test, which added its tally, the time it measures and
    /// the latest burst; 144 before the path's jitter: eight rounds' peaks, of which the
    /// two rounds' queue filter is now a reading.)
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn its_state_is_168_bytes() {
        assert_eq!(core::mem::size_of::<Policed>(), 168);
    }
}
