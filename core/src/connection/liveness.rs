//! Whether the peer is still there (spec/protocol.md §8, Liveness): when it was last heard
//! from, when we last sent something it must acknowledge, and the probes a probe timeout
//! still owes. An owned part of the connection: it keeps these three and answers with the
//! idle and keep-alive deadlines and whether a probe is due; the timers that fire on them
//! and what a probe carries stay with the connection (modules `timeouts`, `transmit`).
//!
//! Inputs: a packet heard, an ack-eliciting packet sent, a probe timeout. Outputs: the
//! idle deadline (the one rule that gives up on a peer), the keep-alive deadline, whether
//! the next datagram is a probe and whether it is the second of its pair (RFC 9002 §6.2.4;
//! RFC 8899 §4.3 for the small one).

use crate::time::{Duration, Instant};

/// A probe timeout sends this many probes (RFC 9002 §6.2.4).
const PROBES_PER_TIMEOUT: u8 = 2;

/// The liveness of one connection.
#[derive(Debug)]
pub(super) struct Liveness {
    /// The last packet heard from the peer (that passed authentication).
    last_received: Instant,
    /// The last packet sent that the peer must acknowledge.
    last_eliciting_sent: Instant,
    /// Probes still owed by the last probe timeout.
    probes: u8,
}

impl Liveness {
    /// A connection that starts at `now`: as if heard from and sent to then.
    pub(super) fn new(now: Instant) -> Liveness {
        Liveness {
            last_received: now,
            last_eliciting_sent: now,
            probes: 0,
        }
    }

    /// A packet of the peer's was heard.
    pub(super) fn heard(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// A packet the peer must acknowledge was sent (or, for the keep-alive, is about to be).
    pub(super) fn elicited(&mut self, now: Instant) {
        self.last_eliciting_sent = now;
    }

    /// An ack-eliciting datagram went out: one probe fewer owed.
    pub(super) fn on_eliciting_sent(&mut self, now: Instant) {
        self.probes = self.probes.saturating_sub(1);
        self.last_eliciting_sent = now;
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
}
