//! BBR: congestion control from a model of the path, not from loss (Cardwell et al.,
//! "BBR: Congestion-Based Congestion Control", 2016; draft-ietf-ccwg-bbr, BBRv3; spec
//! §8, Congestion control). The default controller.
//!
//! The model is two numbers: the bottleneck bandwidth (the highest delivery rate sampled
//! over the last [`BW_WINDOW_ROUNDS`] round trips, from the delivery-rate samples of
//! `recovery::delivery_rate`) and the round-trip propagation delay (the lowest RTT sampled
//! in the last [`PROBE_RTT_INTERVAL`]). The connection paces at a gain times the bandwidth
//! and keeps at most [`CWND_GAIN`] times the bandwidth-delay product (BDP) in flight, so
//! the bottleneck stays busy with hardly any queue. A random loss does not change either
//! number, so throughput under 1-10% random loss stays near `link × (1 − loss)` where a
//! loss-based controller collapses to the Mathis bound.
//!
//! The states and their gains are declared in [`State`] and [`State::gains`]:
//! - `Startup` (draft §4.3.1): pacing gain 2.77, doubling the delivery rate each round,
//!   until three rounds in a row grow the bandwidth estimate by less than 25%
//!   ("full bandwidth reached", §4.3.1.2), or a round's losses are congestive (below), or
//!   (weir's own exits) eight ACKs in a row show a standing queue, or the round so far
//!   overflows a shallow buffer (module `overflow`): both checked on every ACK, so a deep
//!   buffer fills by a fraction of a round's doubling rather than by whole rounds, and a
//!   shallow one overflows for a fraction of a round rather than a round more.
//!   Its pacing rate never falls below the initial window per smoothed RTT times the gain,
//!   so the slow samples of a connection that sent only control frames do not hold it back.
//!   Its window grows by what each round delivered *and* lost (weir's own rule), so random
//!   loss does not slow the doubling (measured: 13 round trips to fill a 300 ms, 100 Mbit/s
//!   path at 10% loss before, 12 after).
//! - `Drain` (§4.3.2): pacing gain 1/2.77 until what is in flight is one BDP again.
//! - `ProbeBw` (§4.3.3): the BBRv1 cycle of eight phases, each about one minimum RTT long,
//!   pacing at 5/4, 3/4, then 1 for six phases: the 5/4 phase probes for more bandwidth,
//!   the 3/4 phase drains what it queued. It starts at a phase drawn at random (BBRv1's
//!   rule; the draw hashes the moment and the bytes delivered, the controller's own
//!   inputs), never the drain phase, so flows that leave ProbeRtt together do not probe in
//!   step: probes in step move no share between flows. (BBRv3's cycle of DOWN, CRUISE,
//!   REFILL and UP phases with wall-clock probe spacing is the same idea with more state.)
//!   Two flows started together share evenly from the start; a flow that joins a busy path
//!   converges over tens of seconds (`sharing`, tests/congestion.md). A cruise phase after a
//!   round in which a queue stood all round (below) paces at 9/10 instead of 1 (weir's own
//!   rule): pacing at the estimate should leave no queue, so the estimate is above the
//!   bottleneck, as it is when a hop delivers in bursts (a Wi-Fi hop's aggregates) and the
//!   rate samples of a burst run faster than the link. Only a round spent wholly in those
//!   phases counts: a probe queues on purpose. Measured on 4, 10 and 40 ms paths that stall
//!   for up to 2-10 ms (tests/congestion.md, "A path that stalls"): from a twentieth to
//!   three quarters of the drops, depending on the path and the stalls, at the same
//!   goodput.
//! - `ProbeRtt` (§4.3.4): when the minimum RTT has not been met again for
//!   [`PROBE_RTT_INTERVAL`], the window drops to half a BDP (BBRv3's value; BBRv1 used four
//!   packets) for [`PROBE_RTT_DURATION`] and a round, so the queue drains and every flow
//!   sees the path's true RTT. Weir's own addition: a one-way delay sample (spec §3.4) back
//!   at its lowest shows the queue empty, which restarts the interval as a fresh minimum
//!   RTT would; a flow alone on its path then never drains it (measured: 89% to 95% of the
//!   link at 300 ms, where ProbeRtt cost a round trip at half rate every 5 s).
//!
//! Loss (BBRv3's "inflight_hi", §4.5.10, with weir's own test for when a loss counts):
//! at the end of each round the loss rate of that round is checked. It counts as
//! congestion only if it passes [`LOSS_THRESHOLD`] (2%, BBRv3's) *while a queue stood at
//! the bottleneck all round* (the lowest one-way queueing delay of the round, spec §3.4,
//! above a quarter of the minimum RTT and above [`MIN_STANDING_QUEUE`]), or if it passes
//! [`HIGH_LOSS`] (25%) regardless. Random loss on a wireless or long path comes with no
//! standing queue, so it changes nothing; a full drop-tail buffer comes with one. A buffer
//! shallower than that quarter RTT never shows it; its losses are congestion when the round
//! *overflows* (module `overflow`: losses while the queue is at its ceiling, well beyond
//! the rate below it). A congestive round ends Startup, ends a 5/4 probe, and caps what
//! may be in flight (`inflight_hi`) at 85% of the round's peak, never below one BDP (grown
//! by the round's random loss, which the flight carries too); every probe without
//! congestive loss raises the cap by a quarter, and a cap above four BDPs is dropped. A
//! probe that reaches the cap ends after its round trip: it cannot grow the flight by its
//! gain, and waiting for that would leave it pacing above the bottleneck.
//!
//! A path whose rate falls (weir's own rule: a radio's rate adapts, a hop gets busy): two
//! congestive rounds in a row that each lost over a fifth and delivered under half the
//! estimate make the bandwidth filter forget its earlier rounds. It would otherwise pace at
//! the old rate for ten more rounds, each stretched by the full queue, which drops most of
//! what is sent, retransmissions too (tests/congestion.md, "A path whose rate falls").
//!
//! The way back (weir's own rule, module `ack_path`): the BDP's round trip is the minimum
//! RTT plus the delay the ACKs' path added all through the last round (or 100 ms); without
//! it, ACKs queued behind an upload held a download to under 3% of its link.
//!
//! A policed path (weir's own rule, module `policed`): a policer drops what exceeds a rate
//! and queues nothing, so its losses never met the rule above, and BBR overran it (5-11%
//! of what it sent dropped; a NewReno flow beside it kept 2-3% of the rate). Each 5/4 probe
//! is also a test: once what the probes sent lost far more than the rest did (beyond
//! chance), with no queue, the path is rate-bound for a while: BBR paces at a bound, its
//! gains at most 1, cut by 0.7 for each round that loses more than the path's random loss
//! explains and raised a datagram per minimum RTT otherwise (tests/congestion.md,
//! "Policers"). A sender of messages, whose pauses refill the bucket, is tested otherwise:
//! the datagrams of each burst past its first eight against those eight.
//!
//! ACK aggregation (draft §4.6.4.2, BBR.extra_acked): a receiver that acknowledges in
//! bursts (delayed ACKs, a Wi-Fi link's aggregation, an adapter that reads its socket in
//! batches) acknowledges more at once than the bandwidth estimate delivers in the time, and
//! a window of two BDPs then stalls the sender between bursts. Past Startup the window
//! makes room for the most a burst acknowledged beyond the estimate over the last ten
//! rounds ([`Bbr::extra_acked`], module `aggregation`). Found over loopback, where weir-std's
//! callers, waking on their own datagrams, measured a minimum RTT of 33 µs instead of
//! 52-62: the window shrank to about 30 kB, the batches of ACKs stalled it, and a 1 MiB
//! request took 2.2 ms instead of 1.0.
//!
//! After persistent congestion (RFC 9002 §7.6) the window drops to [`MIN_PIPE_PACKETS`]
//! until an ACK shows the path is back, then returns to what it was: the model did not
//! change because of an outage (BBR's "restore cwnd after RTO", §4.6.2).
//!
//! All arithmetic is integer; the same events give the same window and pacing rate on
//! every platform.

use super::{initial_window, AckEvent, CongestionController, DelayClock, LossEvent, RateSample};
use alloc::boxed::Box;
use core::num::{NonZeroU64, NonZeroUsize};

use crate::time::{Duration, Instant};

mod ack_path;
mod aggregation;
mod control;
mod overflow;
mod policed;
mod startup;
use super::round_max::RoundMax;
use ack_path::AckPath;
use aggregation::Aggregation;
use overflow::Overflow;
use policed::{Policed, RoundEnd};

/// Gains are in thousandths.
const UNIT: u64 = 1000;
/// Startup's pacing gain, 4 × ln 2 (draft §4.3.1: the smallest gain that doubles the
/// delivery rate each round), and Drain's, its inverse.
const STARTUP_PACING_GAIN: u64 = 2_770;
const DRAIN_PACING_GAIN: u64 = UNIT * UNIT / STARTUP_PACING_GAIN;
/// The window is this many BDPs (draft §4.6.4.2: room for delayed and aggregated ACKs).
const CWND_GAIN: u64 = 2_000;
/// ProbeBw's pacing gains, one per phase (BBRv1's cycle).
const PROBE_BW_GAINS: [u64; 8] = [1_250, 750, UNIT, UNIT, UNIT, UNIT, UNIT, UNIT];
/// A cruise phase's pacing gain after a round in which a queue stood (BBRv3's
/// ProbeBW_DOWN gain): the estimate is above the bottleneck's rate, or the queue would have
/// drained at gain 1 (tests/congestion.md, "A path that stalls").
const QUEUED_CRUISE_PACING_GAIN: u64 = 900;
/// ProbeRtt's window, as a share of the BDP (BBRv3, draft §4.3.4.3).
const PROBE_RTT_CWND_GAIN: u64 = 500;
/// Pacing runs this much below the estimate so a queue does not build from rounding
/// (draft §4.6.2, PacingMarginPercent: 1%).
const PACING_MARGIN: u64 = 10;

/// Round trips the bandwidth estimate remembers (BBRv1: the cycle plus two).
pub const BW_WINDOW_ROUNDS: usize = 10;
/// How long a minimum RTT stands before ProbeRtt re-measures it (BBRv3, §4.3.4: 5 s).
pub const PROBE_RTT_INTERVAL: Duration = Duration::from_secs(5);
/// How long ProbeRtt holds its small window (§4.3.4: 200 ms).
pub const PROBE_RTT_DURATION: Duration = Duration::from_millis(200);
/// Startup ends after this many rounds that grew the estimate by less than 25%.
const FULL_BW_ROUNDS: u8 = 3;
/// A round's loss rate, in thousandths, past which its losses are congestion if a queue
/// stood all round (BBRv3's BBRLossThresh, 2%).
pub const LOSS_THRESHOLD: u64 = 20;
/// A round's loss rate, in thousandths, past which its losses are congestion whatever the
/// delay says (a policer or a bottleneck with no buffer builds no queue). BBR's model
/// holds the link up to about 15-20% random loss; the threshold sits above that.
pub const HIGH_LOSS: u64 = 250;
/// Fewer datagrams than this lost in a round never make it congestive.
pub const LOSS_EVENTS: usize = 6;
/// The smallest standing queue that makes a loss congestive or ends Startup, whatever the
/// RTT.
pub const MIN_STANDING_QUEUE: Duration = Duration::from_millis(2);
/// Startup ends once this many ACKs in a row showed a standing queue.
const STARTUP_QUEUE_SAMPLES: u8 = 8;
/// The smallest window, in packets (draft §4.6.4.3, BBRMinPipeCwnd).
pub const MIN_PIPE_PACKETS: usize = 4;
/// Two congestive rounds in a row whose best delivery rate is below the estimate divided by
/// this, and whose loss rate passed [`RATE_FELL_LOSS`] (thousandths), show that the path's
/// rate fell. (One such round is also what a BBR flow held by its window beside NewReno in
/// a deep buffer sees when NewReno overflows it: one round was 2-8 points of its share.)
const RATE_FELL: u64 = 2;
const RATE_FELL_LOSS: u64 = 200;
/// After a congestive round, the cap on what is in flight is this share of the round's
/// peak (thousandths; BBRv3's BBRBeta is 0.7 for every lossy round, gentler here because
/// only congestive rounds count).
const INFLIGHT_HI_BETA: u64 = 850;

/// BBR's states (draft §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Doubling the rate each round to find the bottleneck bandwidth.
    Startup,
    /// Draining the queue Startup built.
    Drain,
    /// Cruising at the estimate, probing for more bandwidth once per cycle; the phase is
    /// the index into the cycle of gains.
    ProbeBw {
        /// 0: probe up (5/4), 1: drain (3/4), 2-7: cruise.
        phase: u8,
    },
    /// Holding a small window to re-measure the minimum RTT.
    ProbeRtt,
}

impl State {
    /// ProbeBw's cruise phases: pacing at the estimate, neither probing nor draining.
    fn cruises(self) -> bool {
        matches!(self, State::ProbeBw { phase } if phase >= 2)
    }

    /// (pacing gain, window gain) in thousandths.
    fn gains(self) -> (u64, u64) {
        match self {
            State::Startup => (STARTUP_PACING_GAIN, CWND_GAIN),
            State::Drain => (DRAIN_PACING_GAIN, CWND_GAIN),
            State::ProbeBw { phase } => (
                PROBE_BW_GAINS[usize::from(phase) % PROBE_BW_GAINS.len()],
                CWND_GAIN,
            ),
            State::ProbeRtt => (UNIT, PROBE_RTT_CWND_GAIN),
        }
    }
}

/// What an ACK did to round counting (draft §4.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    /// The round goes on.
    Goes,
    /// It ended, and its losses were no congestion.
    Ended,
    /// It ended, and its losses were congestion (the module docs' "Loss").
    EndedCongestive,
}

/// What the one-way delay showed of the round that ended (spec §3.4): a queue standing all
/// round is its least queueing delay above the standing-queue floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastRound {
    /// No queue stood all round.
    Clear,
    /// A queue stood all round (in Startup, the pipe is full: Startup ends).
    Queued,
    /// A queue stood all through a round spent wholly in ProbeBw's cruise phases: the
    /// estimate is above the bottleneck's rate, so the next round's cruise paces at
    /// [`QUEUED_CRUISE_PACING_GAIN`].
    QueuedCruising,
}

/// The BBR congestion controller; see the module docs.
#[derive(Clone, Debug)]
pub struct Bbr {
    mds: usize,
    state: State,
    /// Highest delivery rate (bytes/s) of each of the last rounds. Its rounds are only those
    /// that were not entirely application-limited, so an idle connection keeps its
    /// estimate.
    bw: RoundMax<u64, BW_WINDOW_ROUNDS>,
    bw_round_tested: bool,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    /// Round counting (draft §4.5.1).
    next_round_delivered: u64,
    /// Startup's full-bandwidth detection: the estimate to grow past, and the rounds in a
    /// row that grew it by less than 25%, or [`FULL_BW_ROUNDS`] once full bandwidth is
    /// reached by any exit (one byte where a flag beside it took another: the room for
    /// `policed`).
    full_bw: u64,
    full_bw_rounds: u8,
    /// When the current ProbeBw phase started.
    phase_start: Instant,
    /// ProbeRtt: when its hold ends (once the flight is down to its window), the lowest
    /// RTT it saw, and the window to return to.
    probe_rtt_done: Option<Instant>,
    /// (µs, `u32::MAX` before a sample; and the window in 32 bits, saturating: 8 bytes
    /// less than an `Option<Duration>` and a `usize` pay for `ack_path` within issue 35's
    /// 2 KiB per idle connection.)
    probe_rtt_min: u32,
    probe_rtt_prior: u32,
    /// This round's losses and deliveries (bytes), lowest queueing delay, peak flight.
    /// (32 bits, saturating: the four bytes it leaves pay for `fell_before` within issue
    /// 35's 2 KiB per idle connection.)
    round_lost: u32,
    /// (µs, `u32::MAX` before the round's first sample: 4 bytes beside the flags where an
    /// `Option<Duration>` took 16, so that it and the box below fit the room of issue 35's
    /// 2 KiB per idle connection.)
    round_min_queue: u32,
    round_peak_flight: usize,
    /// This round's losses at a full queue and below it (module `overflow`); made when the
    /// connection first queues [`overflow::MIN_FULL_QUEUE`] or ends a round with loss, so
    /// an idle connection does not pay for it.
    overflow: Option<Box<Overflow>>,
    /// Whether losses with no queue follow the rate, and the bound on it while they do
    /// (module `policed`); made at the first round past Startup that lost with no queue.
    policed: Option<Box<Policed>>,
    /// Whether a queue stood all through the round that ended, and in what phases.
    last_round: LastRound,
    /// The round so far was spent wholly in ProbeBw's cruise phases.
    round_cruised: bool,
    /// One-way delay samples in a row that showed a queue above the standing-queue floor.
    queued_samples: u8,
    /// The round before the last showed the path's rate falling too (the module docs, "A
    /// path whose rate falls").
    fell_before: bool,
    /// The cap on bytes in flight after congestive losses; `usize::MAX` for none.
    inflight_hi: usize,
    /// One-way delays (spec §3.4) and their lowest since the last ProbeRtt.
    clock: DelayClock,
    /// The lowest one-way delay; `i64::MAX` before the first since the last ProbeRtt (so
    /// that the next sample is the lowest; 8 bytes where an `Option` takes 16).
    base_delay: i64,
    /// The latest queueing delay, µs (32 bits, saturating: the room for `policed`).
    queueing_delay: u32,
    window: usize,
    /// The window before persistent congestion, restored by the next ACK.
    outage: Option<NonZeroUsize>,
    bytes_in_flight: usize,
    pacing_rate: Option<NonZeroU64>,
    /// ACK aggregation (module `aggregation`).
    aggregation: Aggregation,
    /// The delay on the ACKs' way back (module `ack_path`).
    ack_path: AckPath,
}

impl Bbr {
    /// A controller for datagrams of at most `max_datagram` bytes.
    pub fn new(max_datagram: usize) -> Self {
        Bbr {
            mds: max_datagram,
            state: State::Startup,
            bw: RoundMax::new(),
            bw_round_tested: false,
            min_rtt: None,
            min_rtt_stamp: Instant::ZERO,
            next_round_delivered: 0,
            full_bw: 0,
            full_bw_rounds: 0,
            phase_start: Instant::ZERO,
            probe_rtt_done: None,
            probe_rtt_min: u32::MAX,
            probe_rtt_prior: 0,
            round_lost: 0,
            round_min_queue: u32::MAX,
            round_peak_flight: 0,
            overflow: None,
            policed: None,
            last_round: LastRound::Clear,
            round_cruised: false,
            queued_samples: 0,
            fell_before: false,
            inflight_hi: usize::MAX,
            clock: DelayClock::default(),
            base_delay: i64::MAX,
            queueing_delay: 0,
            window: initial_window(max_datagram),
            outage: None,
            bytes_in_flight: 0,
            pacing_rate: None,
            aggregation: Aggregation::new(),
            ack_path: AckPath::new(),
        }
    }

    /// The state now.
    pub fn state(&self) -> State {
        self.state
    }

    /// The bottleneck bandwidth estimate in bytes per second (0 before the first sample):
    /// the highest delivery rate of the last rounds, or, while the path's losses with no
    /// queue have been seen to follow the rate (a policer), the bound BBR paces at (module
    /// `policed`).
    pub fn bandwidth(&self) -> u64 {
        let bw = self.bw.max();
        self.policed.as_ref().map_or(bw, |p| p.bandwidth(bw))
    }

    /// The path's losses with no queue followed the rate (module `policed`).
    fn rate_bound(&self) -> bool {
        self.policed.as_ref().is_some_and(|p| p.bound())
    }

    /// The minimum RTT estimate.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Startup found the bottleneck's bandwidth (by any of its exits).
    fn full_bw_reached(&self) -> bool {
        self.full_bw_rounds >= FULL_BW_ROUNDS
    }

    fn min_window(&self) -> usize {
        MIN_PIPE_PACKETS * self.mds
    }

    /// `gain` (thousandths) times the bandwidth-delay product, in bytes; `None` before the
    /// model has both numbers.
    fn bdp(&self, gain: u64) -> Option<usize> {
        let bw = self.bandwidth();
        let rtt = self.min_rtt? + self.ack_path.delay();
        (bw > 0).then(|| {
            let b = u128::from(bw) * u128::from(rtt.as_micros()) * u128::from(gain)
                / (1_000_000 * u128::from(UNIT));
            usize::try_from(b).unwrap_or(usize::MAX)
        })
    }

    fn enter(&mut self, now: Instant, state: State) {
        if let Some(p) = &mut self.policed {
            p.on_probe(now, state == State::ProbeBw { phase: 0 });
        }
        self.state = state;
        self.phase_start = now;
        if state == State::ProbeRtt {
            self.probe_rtt_done = None;
            self.probe_rtt_min = u32::MAX;
            self.probe_rtt_prior = u32::try_from(self.window).unwrap_or(u32::MAX);
            self.base_delay = i64::MAX;
        }
        if state == (State::ProbeBw { phase: 0 }) && self.inflight_hi != usize::MAX {
            // Each probe may find room the last congestion took away.
            let raised = self
                .inflight_hi
                .saturating_add(self.inflight_hi / 4)
                .saturating_add(self.mds);
            let lifted = self.bdp(4 * UNIT).is_some_and(|four| raised > four);
            self.inflight_hi = if lifted { usize::MAX } else { raised };
        }
    }

    /// Round counting (draft §4.5.1): a round ends when a packet sent after the last one
    /// ended is acknowledged. Returns whether this ACK ended one, and whether it was
    /// congestive.
    fn update_round(&mut self, now: Instant, rs: &RateSample) -> Round {
        let (prior_delivered, total_delivered) = (rs.prior_delivered, rs.total_delivered);
        if prior_delivered < self.next_round_delivered {
            return Round::Goes;
        }
        // The round that ended began when `next_round_delivered` was last set.
        let delivered = total_delivered - self.next_round_delivered;
        self.next_round_delivered = total_delivered;
        let lost = u64::from(self.round_lost);
        let seen = delivered + lost;
        let rate = (lost * UNIT).checked_div(seen).unwrap_or(0);
        let standing = self.standing_queue();
        // (A round with a probe or its drain in it queues on purpose.)
        self.last_round = match (standing, self.round_cruised) {
            (false, _) => LastRound::Clear,
            (true, false) => LastRound::Queued,
            (true, true) => LastRound::QueuedCruising,
        };
        self.round_cruised = self.state.cruises();
        // Too few losses say nothing about a rate (BBRv3 asks for six loss events too,
        // draft §4.3.1.3): one packet lost of the first ten is not 10% loss.
        let enough = lost >= (LOSS_EVENTS * self.mds) as u64;
        // A shallow buffer's overflow (module `overflow`) is congestion at any depth. Its
        // state is made at a round's first loss (a fresh one says the round's own rate).
        let mds = self.mds;
        let verdict =
            (lost > 0 || self.overflow.is_some()).then(|| self.overflow().end_round(delivered, lost, mds));
        let overflows = verdict.is_some_and(|v| v.overflows);
        let congestive = overflows || (enough && ((rate > LOSS_THRESHOLD && standing) || rate > HIGH_LOSS));
        let peak = self.round_peak_flight;
        let random = verdict.map_or(rate, |v| v.random).min(UNIT / 2);
        self.round_lost = 0;
        self.round_min_queue = u32::MAX;
        self.round_peak_flight = self.bytes_in_flight;
        if congestive {
            // Never below what keeps one BDP delivered while random loss takes its share of
            // the flight on the way (tests/congestion.md, "Shallow buffers").
            let floor = self
                .bdp(UNIT * UNIT / (UNIT - random))
                .unwrap_or(0)
                .max(self.min_window());
            self.inflight_hi = (peak as u64 * INFLIGHT_HI_BETA / UNIT) as usize;
            self.inflight_hi = self.inflight_hi.max(floor);
        }
        // The path's rate fell (the module docs, "A path whose rate falls").
        let latest = self.bw.current();
        let falls = congestive
            && rate > RATE_FELL_LOSS
            && latest > 0
            && latest.saturating_mul(RATE_FELL) < self.bw.max();
        if falls && self.fell_before {
            self.bw.forget_earlier();
        }
        self.fell_before = falls;
        // Losses with no queue: do they follow the rate (module `policed`)?
        let past_startup = self.full_bw_reached();
        let watched = self.policed.is_some() || (past_startup && lost > 0 && !standing);
        if let (true, Some(min_rtt)) = (watched, self.min_rtt) {
            let end = RoundEnd {
                now,
                delivered,
                lost,
                standing,
                overflows,
                past_startup,
                app_limited: rs.app_limited,
                min_rtt,
                max_datagram: self.mds,
                bw: self.bw.max(),
            };
            self.policed
                .get_or_insert_with(|| Box::new(Policed::new()))
                .end_round(&end);
        }
        if congestive {
            Round::EndedCongestive
        } else {
            Round::Ended
        }
    }

    /// Whether a queue stood at the bottleneck all through the round that ended: its lowest
    /// queueing delay was above the standing-queue floor.
    fn standing_queue(&self) -> bool {
        self.round_min_queue != u32::MAX && u64::from(self.round_min_queue) > self.queue_floor()
    }

    /// The overflow test's state, made on first use.
    fn overflow(&mut self) -> &mut Overflow {
        self.overflow.get_or_insert_with(|| Box::new(Overflow::new()))
    }

    /// The queueing delay (µs) that counts as a standing queue: a quarter of the minimum
    /// RTT, and at least [`MIN_STANDING_QUEUE`].
    fn queue_floor(&self) -> u64 {
        let quarter = self.min_rtt.map_or(0, |r| r.as_micros() / 4);
        quarter.max(MIN_STANDING_QUEUE.as_micros())
    }

    /// The room the window keeps for ACK aggregation: the most acknowledged beyond the
    /// estimate in one burst, over the last ten rounds; none in Startup
    /// (as Linux's BBR: the room Startup's window already grows by, added to, overshoots
    /// the bottleneck's buffer; measured in the bottleneck table, up to 23 more drops).
    pub fn extra_acked(&self) -> usize {
        if self.full_bw_reached() {
            self.aggregation.most()
        } else {
            0
        }
    }

    /// A delivery-rate sample into the round-by-round max filter.
    fn update_bw(&mut self, rate: u64, app_limited: bool, round: Round) {
        if round != Round::Goes && self.bw_round_tested {
            self.bw.next_round();
            self.bw_round_tested = false;
        }
        // An application-limited sample only counts if it shows more than the estimate
        // (draft §4.5.2.3).
        if app_limited && rate < self.bw.max() {
            return;
        }
        self.bw_round_tested |= !app_limited;
        self.bw.update(rate);
    }

    fn update_min_rtt(&mut self, now: Instant, rtt: Duration) {
        if self.state == State::ProbeRtt {
            let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX - 1);
            self.probe_rtt_min = self.probe_rtt_min.min(us);
        }
        // An RTT equal to the minimum shows the queue empty now: no need to probe for it.
        if self.min_rtt.is_none_or(|m| rtt <= m) {
            self.min_rtt = Some(rtt);
            self.min_rtt_stamp = now;
        }
    }

    /// The transitions of the state machine, checked on each ACK (draft §4.3).
    /// `acked`: the bytes this ACK delivered (what was in flight before it is the flight now
    /// and those).
    fn transition(&mut self, now: Instant, round: Round, acked: usize) {
        let congestive = round == Round::EndedCongestive;
        let bdp = self.bdp(UNIT).unwrap_or(usize::MAX);
        let min_rtt = self.min_rtt.unwrap_or(Duration::ZERO);
        match self.state {
            State::Startup if self.full_bw_reached() => self.enter(now, State::Drain),
            State::Drain if self.bytes_in_flight <= bdp => self.enter(now, self.cruise(now)),
            State::ProbeBw { phase } => {
                let elapsed = now - self.phase_start > min_rtt;
                let next = match phase {
                    // Probe until a round trip passed and the flight grew by its gain or
                    // to the cap congestion left (it can grow no further: a probe that
                    // waited for the gain would pace above the bottleneck for good, its
                    // queue standing), or until the probe met congestion.
                    0 => {
                        // A gain of 1 (on a rate-bound path, module `policed`) has no growth
                        // to wait for: paced at the bound less its margin, the flight stays
                        // just under a BDP.
                        let gain = self.pacing_gain();
                        let capped = self.bytes_in_flight + acked + self.mds >= self.inflight_hi;
                        let grown = gain <= UNIT || self.bytes_in_flight >= self.bdp(gain).unwrap_or(0);
                        congestive || (elapsed && (capped || grown))
                    }
                    // Drain for a round trip, or less if the queue is gone.
                    1 => elapsed || self.bytes_in_flight <= bdp,
                    _ => elapsed,
                };
                if next {
                    let phase = (phase + 1) % PROBE_BW_GAINS.len() as u8;
                    self.enter(now, State::ProbeBw { phase });
                }
            }
            State::ProbeRtt => {
                let window = self.probe_rtt_window();
                if self.probe_rtt_done.is_none() && self.bytes_in_flight <= window {
                    self.probe_rtt_done = Some(now + PROBE_RTT_DURATION.max(min_rtt));
                }
                if self.probe_rtt_done.is_some_and(|done| now >= done) {
                    if self.probe_rtt_min != u32::MAX {
                        self.min_rtt = Some(Duration::from_micros(u64::from(self.probe_rtt_min)));
                    }
                    self.min_rtt_stamp = now;
                    // Back to the window held before (draft §4.3.4.5), not a climb from
                    // the small one.
                    let prior = usize::try_from(self.probe_rtt_prior).unwrap_or(usize::MAX);
                    self.window = self.window.max(prior);
                    let next = if self.full_bw_reached() {
                        self.cruise(now)
                    } else {
                        State::Startup
                    };
                    self.enter(now, next);
                }
            }
            _ => {}
        }
        if self.state != State::ProbeRtt
            && now >= self.min_rtt_stamp + PROBE_RTT_INTERVAL
            && self.min_rtt.is_some()
        {
            self.enter(now, State::ProbeRtt);
        }
    }

    /// ProbeBw entered from Drain or ProbeRtt: at a phase drawn from the moment and the bytes
    /// delivered so far, any but the drain phase (draft §4.3.3.6, BBRv1's random start).
    /// Flows that leave ProbeRtt together would otherwise probe in step for ever, and
    /// probes in step move no share from one flow to the other (measured: two flows held a
    /// 66/31 split for tens of seconds). The draw is a hash of the controller's own inputs, so
    /// it is as deterministic as the rest.
    fn cruise(&self, now: Instant) -> State {
        let mut h = now.as_micros() ^ self.next_round_delivered.rotate_left(32);
        // splitmix64's finaliser.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        let draw = (h % (PROBE_BW_GAINS.len() as u64 - 1)) as u8;
        State::ProbeBw {
            phase: if draw == 0 { 0 } else { draw + 1 },
        }
    }

    fn probe_rtt_window(&self) -> usize {
        self.bdp(PROBE_RTT_CWND_GAIN).unwrap_or(0).max(self.min_window())
    }
}

impl CongestionController for Bbr {
    fn on_sent(&mut self, now: Instant, bytes: usize, bytes_in_flight: usize) {
        if let Some(p) = &mut self.policed {
            p.on_sent(now, bytes, bytes_in_flight);
        }
        self.bytes_in_flight = bytes_in_flight;
        self.round_peak_flight = self.round_peak_flight.max(bytes_in_flight);
    }

    fn on_ack(&mut self, ack: &AckEvent) {
        self.bytes_in_flight = ack.bytes_in_flight;
        if let Some(p) = &mut self.policed {
            p.on_outcome(ack.newest_sent, ack.bytes_acked, false);
        }
        if let Some(window) = self.outage.take() {
            self.window = window.get();
        }
        let now = ack.now;
        // The forward queue this ACK's one-way delay showed (µs), if it carried a fresh one.
        let mut forward_queue = None;
        if let Some(wire) = ack.one_way_delay {
            let delay = self.clock.unwrap(wire);
            let base = self.base_delay.min(delay);
            self.base_delay = base;
            let q = u64::try_from(delay - base).unwrap_or(0);
            forward_queue = Some(q);
            self.queueing_delay = u32::try_from(q).unwrap_or(u32::MAX);
            // (A queue of 71 minutes saturates one short of "no sample".)
            let queue = u32::try_from(q).unwrap_or(u32::MAX - 1).min(u32::MAX - 1);
            self.round_min_queue = self.round_min_queue.min(queue);
            // The queue seen empty (the one-way delay back at its lowest): the minimum RTT
            // still holds, and draining the pipe to re-measure it would only cost rate.
            if q < self.queue_floor() / 2 && self.state != State::ProbeRtt {
                self.min_rtt_stamp = now;
            }
            if q >= overflow::MIN_FULL_QUEUE.as_micros() || self.overflow.is_some() {
                let min_rtt = self.min_rtt;
                self.overflow().on_queue(now, q, ack.bytes_acked, min_rtt);
            }
            if let Some(p) = &mut self.policed {
                p.on_queue(q);
            }
            self.queued_samples = if q > self.queue_floor() {
                self.queued_samples.saturating_add(1)
            } else {
                0
            };
        }
        let Some(rs) = ack.rate else { return };
        self.update_min_rtt(now, rs.rtt);
        // Not in ProbeRtt, whose fresh one-way base reads the forward queue as none.
        let forward_queue = forward_queue.filter(|_| self.state != State::ProbeRtt);
        if let (Some(q), Some(min)) = (forward_queue, self.min_rtt) {
            self.ack_path.on_sample(rs.rtt, q, min);
        }
        let round = self.update_round(now, &rs);
        if round != Round::Goes {
            self.ack_path.end_round(now);
        }
        if let Some(rate) = rs.bytes_per_second(self.min_rtt.unwrap_or(rs.rtt)) {
            self.update_bw(rate, rs.app_limited, round);
        }
        let (bw, window) = (self.bandwidth(), self.window);
        self.aggregation
            .on_ack(now, ack.bytes_acked, bw, window, round != Round::Goes);
        self.check_full_bw(rs.app_limited, round, rs.total_delivered);
        self.transition(now, round, ack.bytes_acked);
        self.round_cruised &= self.state.cruises();
        self.update_control(ack.bytes_acked, ack.rtt.smoothed);
    }

    fn on_loss(&mut self, loss: &LossEvent) {
        self.bytes_in_flight = loss.bytes_in_flight;
        if let Some(p) = &mut self.policed {
            p.on_outcome(loss.newest_sent, loss.bytes_lost, true);
        }
        let lost = u32::try_from(loss.bytes_lost).unwrap_or(u32::MAX);
        self.round_lost = self.round_lost.saturating_add(lost);
        if let Some(o) = &mut self.overflow {
            let queue = u64::from(self.queueing_delay);
            o.on_loss(loss.now, loss.bytes_lost, queue, self.min_rtt);
        }
        // Startup's window doubles by what each round delivered; a lost datagram delivered
        // nothing, so under random loss the doubling slows to `2 × (1 − loss)` a round (at
        // 10% loss, a 300 ms path took a round more to fill). What was lost counts as
        // delivered for the window's growth; a congestive round ends Startup at its end
        // anyway and the cap on what may be in flight then takes the overshoot back.
        if self.state == State::Startup && self.outage.is_none() {
            self.window += loss.bytes_lost;
        }
    }

    fn on_spurious_loss(&mut self, loss: &LossEvent) {
        if let Some(p) = &mut self.policed {
            p.on_spurious(loss.newest_sent, loss.bytes_lost);
        }
    }

    fn on_persistent_congestion(&mut self, _now: Instant) {
        if self.outage.is_none() {
            // The window is never below the minimum window, so never zero.
            self.outage = NonZeroUsize::new(self.window);
        }
        self.window = self.min_window();
    }

    fn window(&self) -> usize {
        self.window
    }

    fn in_slow_start(&self) -> bool {
        self.state == State::Startup
    }

    fn queueing_delay(&self) -> Option<Duration> {
        Some(Duration::from_micros(u64::from(self.queueing_delay)))
    }

    fn pacing_rate(&self) -> Option<u64> {
        self.pacing_rate.map(NonZeroU64::get)
    }
}

#[cfg(test)]
mod tests;
