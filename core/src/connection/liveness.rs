//! Whether the peer is still there (spec/protocol.md §8, Liveness): when it was last heard
//! from, when we last sent something it must acknowledge, the probes a probe timeout still
//! owes, and whether the connection let go of its idle memory since. An owned part of the
//! connection: it keeps these and answers with the idle, keep-alive and trim deadlines and
//! whether a probe is due; the timers that fire on them and what a probe carries stay with
//! the connection (modules `timeouts`, `transmit`).
//!
//! Inputs: a packet heard, an ack-eliciting packet sent, a probe timeout, a trim. Outputs:
//! the idle deadline (the one rule that gives up on a peer), the keep-alive deadline, the
//! trim deadline, whether the next datagram is a probe and whether it is the second of its
//! pair (RFC 9002 §6.2.4; RFC 8899 §4.3 for the small one).

use crate::time::{Duration, Instant};

/// A probe timeout sends this many probes (RFC 9002 §6.2.4).
const PROBES_PER_TIMEOUT: u8 = 2;

/// How long a connection is quiet (no authenticated packet heard, no ack-eliciting one
/// sent) before it lets go of the memory only an active connection uses (spec §8,
/// Liveness): long enough that a connection in use, even at a request a second, keeps it.
pub(super) const TRIM_AFTER: Duration = Duration::from_secs(1);

/// Whether the connection let go of its idle memory since it was last active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trim {
    /// Active since the last trim (or never trimmed): a trim is due once quiet.
    Due,
    /// Trimmed, and quiet since: what a forged packet builds again (a key schedule it
    /// fails to open with) waits for the next trim after activity.
    Done,
}

/// The liveness of one connection.
#[derive(Debug)]
pub(super) struct Liveness {
    /// The last packet heard from the peer (that passed authentication).
    last_received: Instant,
    /// The last packet sent that the peer must acknowledge.
    last_eliciting_sent: Instant,
    /// Probes still owed by the last probe timeout.
    probes: u8,
    trim: Trim,
}

impl Liveness {
    /// A connection that starts at `now`: as if heard from and sent to then.
    pub(super) fn new(now: Instant) -> Liveness {
        Liveness {
            last_received: now,
            last_eliciting_sent: now,
            probes: 0,
            trim: Trim::Due,
        }
    }

    /// A packet of the peer's was heard.
    pub(super) fn heard(&mut self, now: Instant) {
        self.last_received = now;
        self.trim = Trim::Due;
    }

    /// A packet the peer must acknowledge was sent (or, for the keep-alive, is about to be).
    pub(super) fn elicited(&mut self, now: Instant) {
        self.last_eliciting_sent = now;
        self.trim = Trim::Due;
    }

    /// An ack-eliciting datagram went out: one probe fewer owed.
    pub(super) fn on_eliciting_sent(&mut self, now: Instant) {
        self.probes = self.probes.saturating_sub(1);
        self.elicited(now);
    }

    /// The connection let go of its idle memory: no trim is due until it is active again.
    pub(super) fn trimmed(&mut self) {
        self.trim = Trim::Done;
    }

    /// When the connection, quiet since its last packet either way, lets go of its idle
    /// memory; none if it did since.
    pub(super) fn trim_deadline(&self) -> Option<Instant> {
        match self.trim {
            Trim::Due => Some(self.last_received.max(self.last_eliciting_sent) + TRIM_AFTER),
            Trim::Done => None,
        }
    }

    /// The probe timer fired: the next datagrams are probes.
    pub(super) fn probe_timeout(&mut self) {
        self.probes = PROBES_PER_TIMEOUT;
    }

    /// Whether the next datagram is a probe (it may send whatever the congestion window
    /// says, and carries a PING).
    pub(super) fn probing(&self) -> bool {
        self.probes > 0
    }

    /// Whether the next datagram is the last probe of its pair: the one that may go at the
    /// base size, to tell a path that drops large datagrams from one that drops all.
    pub(super) fn last_probe(&self) -> bool {
        self.probes == 1
    }

    /// When the peer is given up if nothing is heard from it, for an idle timeout of
    /// `idle`.
    pub(super) fn idle_deadline(&self, idle: Duration) -> Instant {
        self.last_received + idle
    }

    /// When a keep-alive is due, for an interval of `every`.
    pub(super) fn keep_alive_deadline(&self, every: Duration) -> Instant {
        self.last_eliciting_sent + every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadlines_run_from_the_last_packet_each_way_and_a_timeout_owes_two_probes() {
        let start = Instant::ZERO;
        let idle = Duration::from_secs(30);
        let every = Duration::from_secs(10);
        let mut l = Liveness::new(start);
        assert_eq!(l.idle_deadline(idle), start + idle);
        assert!(!l.probing());

        let later = start + Duration::from_secs(4);
        l.heard(later);
        assert_eq!(l.idle_deadline(idle), later + idle);
        assert_eq!(
            l.keep_alive_deadline(every),
            start + every,
            "sending moves it, not hearing"
        );

        l.probe_timeout();
        assert!(l.probing() && !l.last_probe());
        l.on_eliciting_sent(later);
        assert!(l.probing() && l.last_probe());
        assert_eq!(l.keep_alive_deadline(every), later + every);
        l.on_eliciting_sent(later);
        l.on_eliciting_sent(later);
        assert!(!l.probing(), "owed two, no fewer than none");
    }

    #[test]
    fn a_trim_comes_after_quiet_each_way_and_once_until_the_next_packet() {
        let start = Instant::ZERO;
        let mut l = Liveness::new(start);
        assert_eq!(l.trim_deadline(), Some(start + TRIM_AFTER));
        let heard = start + Duration::from_secs(5);
        l.heard(heard);
        assert_eq!(l.trim_deadline(), Some(heard + TRIM_AFTER));
        l.trimmed();
        assert_eq!(l.trim_deadline(), None);
        let sent = heard + Duration::from_secs(3);
        l.on_eliciting_sent(sent);
        assert_eq!(l.trim_deadline(), Some(sent + TRIM_AFTER), "sending moves it too");
        l.trimmed();
        l.heard(sent);
        assert_eq!(l.trim_deadline(), Some(sent + TRIM_AFTER));
    }
}
