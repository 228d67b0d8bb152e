//! BBR's outputs, the window and the pacing rate, from its model and state (draft-ietf-ccwg-bbr
//! §4.6; module docs).
//!
//! Input: the bytes an ACK delivered and the smoothed RTT. Output: `Bbr::window` and
//! `Bbr::pacing_rate`.

use core::num::NonZeroU64;

use super::{
    initial_window, Bbr, LastRound, State, PACING_MARGIN, QUEUED_CRUISE_PACING_GAIN, STARTUP_PACING_GAIN,
    UNIT,
};
use crate::time::Duration;

impl Bbr {
    /// The pacing gain now (thousandths): the state's, at 9/10 in a cruise after a round in
    /// which a queue stood (module docs, `ProbeBw`), at most 1 on a rate-bound path (a probe
    /// above a policer's rate only overruns its bucket: module `policed`).
    pub(super) fn pacing_gain(&self) -> u64 {
        let (gain, _) = self.state.gains();
        if self.state.cruises() && self.last_round == LastRound::QueuedCruising {
            QUEUED_CRUISE_PACING_GAIN
        } else if self.rate_bound() {
            gain.min(UNIT)
        } else {
            gain
        }
    }

    /// The window and pacing rate from the model (draft §4.6). In Startup the pacing rate is
    /// at least the initial window per `srtt` times the gain (draft §4.6.2,
    /// BBRInitPacingRate), so that the slow samples of a connection that only sent a few
    /// control frames do not hold its first burst back. (Any controller's rate is at least
    /// the minimum window per RTT: the pacer's floor, `pacing`.)
    pub(super) fn update_control(&mut self, acked: usize, srtt: Duration) {
        let (_, cwnd_gain) = self.state.gains();
        let pacing_gain = self.pacing_gain();
        let bw = self.bandwidth();
        if bw > 0 {
            let rate = u128::from(bw) * u128::from(pacing_gain) * u128::from(UNIT - PACING_MARGIN)
                / u128::from(UNIT * UNIT);
            let srtt = u128::from(srtt.as_micros().max(1));
            let floor = if self.state == State::Startup {
                initial_window(self.mds) as u128 * u128::from(STARTUP_PACING_GAIN) * 1_000 / srtt
            } else {
                0
            };
            let rate = u64::try_from(rate.max(floor)).unwrap_or(u64::MAX);
            let rate = NonZeroU64::new(rate).unwrap_or(NonZeroU64::MIN);
            // Startup never slows its pace: a low early sample must not hold it back.
            self.pacing_rate = Some(match (self.full_bw_reached(), self.pacing_rate) {
                (false, Some(old)) => old.max(rate),
                _ => rate,
            });
        }
        let Some(target) = self.bdp(cwnd_gain) else {
            self.window += acked;
            return;
        };
        // Room for the ACKs the peer delays or aggregates (draft §4.6.4.2: the quanta and
        // the aggregation estimate).
        let target = target
            .saturating_add(3 * self.mds)
            .saturating_add(self.extra_acked());
        self.window = if self.state == State::ProbeRtt {
            self.probe_rtt_window()
        } else if self.full_bw_reached() {
            (self.window + acked).min(target)
        } else if self.window < target {
            // Startup grows by what was delivered, up to the gain's BDP (draft §4.6.4.4).
            self.window + acked
        } else {
            self.window
        };
        self.window = self.window.min(self.inflight_hi).max(self.min_window());
    }
}
