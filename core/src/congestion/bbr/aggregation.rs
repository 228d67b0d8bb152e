//! ACK aggregation (draft-ietf-ccwg-bbr §4.6.4.2, BBR.extra_acked): a receiver that
//! acknowledges in bursts (delayed ACKs, a Wi-Fi link's aggregation, a socket read in
//! batches) acknowledges more at once than the bandwidth estimate delivers in the time, and
//! a window of only twice the BDP then stalls the sender between bursts. What a burst
//! acknowledged beyond the estimate, since ACKs last fell behind it, is kept per round; BBR's
//! window makes room for the most of the last rounds.
//!
//! Input: each ACK's bytes and time, with the estimate and the window then; a new round.
//! Output: the most a burst acknowledged beyond the estimate over the last
//! [`ROUNDS`] rounds, capped at [`MOST`] at the estimate and at the window.

use crate::congestion::round_max::RoundMax;
use crate::time::{Duration, Instant};

/// Round trips the estimate remembers (draft §4.6.4.2, BBRExtraAckedFilterLen).
const ROUNDS: usize = 10;
/// The most room made, in time at the bandwidth estimate (Linux's BBR,
/// `bbr_extra_acked_max_us`): what a receiver that acknowledges in bursts on purpose can add
/// to what the sender puts in flight.
const MOST: Duration = Duration::from_millis(100);

/// See the module docs.
#[derive(Clone, Debug)]
pub(super) struct Aggregation {
    /// Since when ACKs have come at least as fast as the estimate delivers, and what they
    /// acknowledged in that time.
    start: Instant,
    /// (32 bits, saturating, as the samples below: a window beyond 4 GiB saturates; every
    /// connection keeps these.)
    delivered: u32,
    /// The most acknowledged beyond the estimate in each of the last rounds.
    extra: RoundMax<u32, ROUNDS>,
}

impl Aggregation {
    pub(super) fn new() -> Self {
        Aggregation {
            start: Instant::ZERO,
            delivered: 0,
            extra: RoundMax::new(),
        }
    }

    /// An ACK at `now` acknowledged `acked` bytes, the estimate being `bw` bytes a second
    /// and the window `window`; `new_round` if the ACK began a round.
    pub(super) fn on_ack(&mut self, now: Instant, acked: usize, bw: u64, window: usize, new_round: bool) {
        if new_round {
            self.extra.next_round();
        }
        let interval = now.saturating_duration_since(self.start).as_micros();
        let mut expected = u128::from(bw) * u128::from(interval) / 1_000_000;
        if u128::from(self.delivered) <= expected {
            self.delivered = 0;
            self.start = now;
            expected = 0;
        }
        let acked = u32::try_from(acked).unwrap_or(u32::MAX);
        self.delivered = self.delivered.saturating_add(acked);
        let extra = u128::from(self.delivered).saturating_sub(expected);
        let cap = u128::from(bw) * u128::from(MOST.as_micros()) / 1_000_000;
        let extra = u32::try_from(extra.min(window as u128).min(cap)).unwrap_or(u32::MAX);
        self.extra.update(extra);
    }

    /// The most a burst acknowledged beyond the estimate over the last rounds.
    pub(super) fn most(&self) -> usize {
        self.extra.max() as usize
    }
}
