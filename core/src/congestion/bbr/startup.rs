//! BBR's Startup exits (draft-ietf-ccwg-bbr §4.3.1.2, with weir's own; module docs,
//! `Startup`): full bandwidth is reached when three rounds grow the estimate by less than
//! 25%, a round is congestive, a queue stands all round or is seen by eight ACKs in a row,
//! or the round so far overflows a shallow buffer (module `overflow`).
//!
//! Input: each ACK's round outcome and delivery count. Output: `Bbr::full_bw_rounds`
//! reaching [`FULL_BW_ROUNDS`].

use super::{Bbr, LastRound, Round, FULL_BW_ROUNDS, STARTUP_QUEUE_SAMPLES};

impl Bbr {
    /// Startup's exit: the estimate stopped growing, the round was congestive, or a queue
    /// built up.
    pub(super) fn check_full_bw(&mut self, app_limited: bool, round: Round, total_delivered: u64) {
        if self.full_bw_reached() {
            return;
        }
        // The buffer overflowing (module `overflow`), checked on every ACK: a shallow buffer
        // never shows the queue below, and a round's end is a whole round of doubling into
        // it later.
        let delivered = total_delivered.saturating_sub(self.next_round_delivered);
        let lost = u64::from(self.round_lost);
        if self
            .overflow
            .as_ref()
            .is_some_and(|o| o.verdict(delivered, lost, self.mds).overflows)
        {
            self.full_bw_rounds = FULL_BW_ROUNDS;
            return;
        }
        // A queue seen by [`STARTUP_QUEUE_SAMPLES`] ACKs in a row: Startup's rate passed
        // the bottleneck's. Checked on every ACK, not at the round's end, so a deep buffer
        // fills by a fraction of a round's doubling, not by a whole round more.
        if self.queued_samples >= STARTUP_QUEUE_SAMPLES {
            self.full_bw_rounds = FULL_BW_ROUNDS;
            return;
        }
        if round == Round::Goes {
            return;
        }
        // A queue that stood all round: the pipe is full, and Startup's doubling would
        // only fill the buffer (weir's own exit; BBRv3 waits for loss or three flat rounds,
        // and by then a deep buffer has been full for a round or two).
        if round == Round::EndedCongestive || self.last_round != LastRound::Clear {
            self.full_bw_rounds = FULL_BW_ROUNDS;
            return;
        }
        if app_limited {
            return;
        }
        let bw = self.bw.max();
        if bw >= self.full_bw.saturating_mul(5) / 4 {
            self.full_bw = bw;
            self.full_bw_rounds = 0;
            return;
        }
        self.full_bw_rounds += 1;
    }
}
