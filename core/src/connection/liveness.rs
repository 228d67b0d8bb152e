//! Whether the peer is still there (spec/protocol.md §8, Liveness): when it was last heard
//! from, when we last sent something it must acknowledge, the probes a probe timeout still
//! owes, whether the connection let go of its idle memory since and how long a quiet spell
//! its next trim waits for. An owned part of the connection: it keeps these and answers
//! with the idle, keep-alive and trim deadlines and whether a probe is due; the timers
//! that fire on them and what a probe carries stay with the connection (modules
//! `timeouts`, `transmit`).
//!
//! Inputs: a packet heard, an ack-eliciting packet sent, a probe timeout, a trim, a report
//! that we wait on the peer's credit and its end. Outputs: the idle deadline (the one rule
//! that gives up on a peer), the keep-alive deadline, the waiting end's deadline (spec §8,
//! "a waiting end is heard from"; the persist timer of RFC 9293 §3.8.6.1, doubling as
//! RFC 9002 §6.2.1's probe timeout does), the trim deadline, whether the next datagram is a
//! probe and whether it is the second of its pair (RFC 9002 §6.2.4; RFC 8899 §4.3 for the
//! small one).

use crate::time::{Duration, Instant};

/// A probe timeout sends this many probes (RFC 9002 §6.2.4).
const PROBES_PER_TIMEOUT: u8 = 2;

/// How long a connection is quiet (no authenticated packet heard, no ack-eliciting one
/// sent) before it lets go of the memory only an active connection uses (spec §8,
/// Liveness), to begin with: long enough that a connection in use, even at a request a
/// second, keeps it.
pub(super) const TRIM_AFTER: Duration = Duration::from_secs(1);

/// How many times the quiet a trim waits for may double (spec §8, Liveness): to 8 s at most,
/// under the default keep-alive's 10 s.
const TRIM_DOUBLINGS: u8 = 3;

/// Whether the connection let go of its idle memory since it was last active, and how long
/// a quiet spell its next trim waits for: [`TRIM_AFTER`] doubled `doublings` times.
///
/// A connection active again within [`TRIM_AFTER`] of its trim (which then held its memory
/// off for less than a second) waits twice as long before its next trim, up to
/// [`TRIM_DOUBLINGS`] times; one active again later starts over from [`TRIM_AFTER`]. A peer
/// that sends every second or two otherwise found its connection trimmed at each message,
/// which then made again what the trim let go, on both ends: 25 allocations and four key
/// schedules a round trip (tests/tests/allocations.rs; a round trip 1.5 s after the last
/// took 50,926 instructions between the two ends, 38,324 with the doubling, by callgrind;
/// natively within the timing's noise). A connection only kept alive (a PING every 10 s
/// by default) trims a second after each whatever traffic doubled its wait before, so the
/// bound on idle memory holds for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trim {
    /// Active since the last trim (or never trimmed): a trim is due once quiet.
    Due { doublings: u8 },
    /// Trimmed, and quiet since: what a forged packet builds again (a key schedule it
    /// fails to open with) waits for the next trim after activity.
    Done { doublings: u8 },
}

impl Trim {
    /// The quiet spell this trim waits for.
    fn after(doublings: u8) -> Duration {
        TRIM_AFTER.saturating_mul(1 << doublings)
    }

    /// Activity after a quiet spell of `quiet`.
    fn active(self, quiet: Duration) -> Trim {
        match self {
            Trim::Due { .. } => self,
            Trim::Done { doublings } => {
                let soon = quiet < Trim::after(doublings) + TRIM_AFTER;
                let doublings = match soon {
                    true => (doublings + 1).min(TRIM_DOUBLINGS),
                    false => 0,
                };
                Trim::Due { doublings }
            }
        }
    }
}

/// Whose ack-eliciting packet came last, ours or the peer's: what the keep-alive counts
/// from (spec §8, Liveness). One end of a quiet connection keeps it alive, not both: the
/// other hears its PINGs, and its own acknowledgements keep its NAT's mapping and tell the
/// pinging end it is there. Both ends pinging, as before, sent two PINGs and two ACKs every
/// 10 s where one of each does the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastEliciting {
    /// Ours: a keep-alive is due `keep_alive` after it.
    Sent,
    /// The peer's: a keep-alive is due `keep_alive` and a probe timeout after the last
    /// packet heard. The probe timeout breaks the tie with a peer that keeps the same
    /// interval: its next PING comes that interval after its last one, which we heard a
    /// one-way delay later, so without it both ends' timers came due together.
    Heard,
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
    last_eliciting: LastEliciting,
    /// The waiting end's PINGs sent since our last other ack-eliciting packet: each
    /// doubles the interval to the next ([`waiting_deadline`](Self::waiting_deadline)).
    /// (A count, not the time the wait began: a connection's size is what an idle one
    /// costs, and this fits in the padding.)
    waits: u8,
    /// The PING due is a waiting end's: sending it leaves [`waits`](Self::waits) as it is.
    waiting_ping: bool,
    /// We reported being blocked by the peer's credit (DATA_BLOCKED, STREAM_DATA_BLOCKED)
    /// and no credit came since. A hint: the connection checks that something still waits
    /// before it pings for it.
    awaits_credit: bool,
}

impl Liveness {
    /// A connection that starts at `now`: as if heard from and sent to then.
    pub(super) fn new(now: Instant) -> Liveness {
        Liveness {
            last_received: now,
            last_eliciting_sent: now,
            probes: 0,
            trim: Trim::Due { doublings: 0 },
            last_eliciting: LastEliciting::Sent,
            waits: 0,
            waiting_ping: false,
            awaits_credit: false,
        }
    }

    /// A packet of the peer's was heard.
    pub(super) fn heard(&mut self, now: Instant) {
        self.active(now);
        self.last_received = now;
    }

    /// A packet the peer must acknowledge was sent (or, for the keep-alive, is about to be).
    pub(super) fn elicited(&mut self, now: Instant) {
        self.active(now);
        self.last_eliciting_sent = now;
        self.last_eliciting = LastEliciting::Sent;
        if !self.waiting_ping {
            self.waits = 0;
        }
    }

    /// A waiting end's PING is due at `now` ([`waiting_deadline`](Self::waiting_deadline)):
    /// as [`elicited`](Self::elicited), but the wait goes on from where it began.
    pub(super) fn waiting_ping_due(&mut self, now: Instant) {
        self.waiting_ping = true;
        self.waits = self.waits.saturating_add(1);
        self.elicited(now);
    }

    /// We reported being blocked by the peer's credit.
    pub(super) fn blocked(&mut self) {
        self.awaits_credit = true;
    }

    /// Credit came from the peer, or nothing waits for it any more.
    pub(super) fn credit_came(&mut self) {
        self.awaits_credit = false;
    }

    /// Whether we reported being blocked by the peer's credit and none came since.
    pub(super) fn awaits_credit(&self) -> bool {
        self.awaits_credit
    }

    /// When an end that waits on its peer (for credit, or a receipt) with nothing in flight
    /// is next heard from, for a probe timeout of `pto` and a cap of `most`: a probe
    /// timeout after its last ack-eliciting packet, the interval doubling with each PING
    /// the wait sent, up to `most` (or `pto`, if longer). The peer may have sent what we
    /// wait for to an address we left, and it learns the new one only from a packet of
    /// ours (spec §10.4, Address changes).
    pub(super) fn waiting_deadline(&self, pto: Duration, most: Duration) -> Instant {
        let interval = pto.saturating_mul(1 << self.waits.min(16)).min(most.max(pto));
        self.last_eliciting_sent + interval
    }

    /// The packet just [`heard`](Self::heard) asks for an acknowledgement: the peer keeps
    /// the connection alive until we send one that does.
    pub(super) fn heard_eliciting(&mut self) {
        self.last_eliciting = LastEliciting::Heard;
    }

    /// A packet either way at `now`: a trim is due again once quiet.
    fn active(&mut self, now: Instant) {
        let last = self.last_received.max(self.last_eliciting_sent);
        self.trim = self.trim.active(now.saturating_duration_since(last));
    }

    /// An ack-eliciting datagram went out: one probe fewer owed.
    pub(super) fn on_eliciting_sent(&mut self, now: Instant) {
        self.probes = self.probes.saturating_sub(1);
        self.elicited(now);
        self.waiting_ping = false;
    }

    /// The connection let go of its idle memory: no trim is due until it is active again.
    pub(super) fn trimmed(&mut self) {
        if let Trim::Due { doublings } = self.trim {
            self.trim = Trim::Done { doublings };
        }
    }

    /// Whether the connection let go of its idle memory and has been quiet since.
    pub(super) fn is_trimmed(&self) -> bool {
        matches!(self.trim, Trim::Done { .. })
    }

    /// When the connection, quiet since its last packet either way, lets go of its idle
    /// memory; none if it did since.
    pub(super) fn trim_deadline(&self) -> Option<Instant> {
        match self.trim {
            Trim::Due { doublings } => {
                Some(self.last_received.max(self.last_eliciting_sent) + Trim::after(doublings))
            }
            Trim::Done { .. } => None,
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

    /// When a keep-alive is due, for an interval of `every` and a probe timeout of `pto`
    /// ([`LastEliciting`]).
    pub(super) fn keep_alive_deadline(&self, every: Duration, pto: Duration) -> Instant {
        match self.last_eliciting {
            LastEliciting::Sent => self.last_eliciting_sent + every,
            LastEliciting::Heard => self.last_received + every + pto,
        }
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
            l.keep_alive_deadline(every, Duration::ZERO),
            start + every,
            "sending moves it, not hearing"
        );

        l.probe_timeout();
        assert!(l.probing() && !l.last_probe());
        l.on_eliciting_sent(later);
        assert!(l.probing() && l.last_probe());
        assert_eq!(l.keep_alive_deadline(every, Duration::ZERO), later + every);
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
    }

    /// The connection, trimmed after each quiet spell as it comes due, then woken `quiet`
    /// after its last packet: the quiet its next trim waits for.
    fn next_wait(l: &mut Liveness, last: &mut Instant, quiet: Duration) -> Duration {
        if l.trim_deadline().is_some_and(|d| d <= *last + quiet) {
            l.trimmed();
        }
        *last += quiet;
        l.heard(*last);
        l.trim_deadline().unwrap() - *last
    }

    #[test]
    fn a_connection_woken_soon_after_its_trim_waits_twice_as_long_before_the_next() {
        let (mut l, mut last) = (Liveness::new(Instant::ZERO), Instant::ZERO);
        let s = Duration::from_secs;
        // A message a second, each just as the trim comes due: 2 s, then no more trims.
        assert_eq!(next_wait(&mut l, &mut last, s(1)), s(2));
        assert_eq!(
            next_wait(&mut l, &mut last, s(1)),
            s(2),
            "not trimmed, not doubled"
        );
        // Woken within a second of each trim: 4 s, then 8 at most.
        let ms = Duration::from_millis;
        assert_eq!(next_wait(&mut l, &mut last, ms(2_900)), s(4));
        assert_eq!(next_wait(&mut l, &mut last, ms(4_900)), s(8));
        assert_eq!(next_wait(&mut l, &mut last, ms(8_900)), s(8));
        // Woken a second or more after the trim: back to a second.
        assert_eq!(next_wait(&mut l, &mut last, s(9)), TRIM_AFTER);
        assert_eq!(next_wait(&mut l, &mut last, s(2)), TRIM_AFTER);
        // Activity while no trim came does not double it.
        let (mut l, mut last) = (Liveness::new(Instant::ZERO), Instant::ZERO);
        let quick = Duration::from_millis(999);
        assert_eq!(next_wait(&mut l, &mut last, quick), TRIM_AFTER);
    }

    /// A connection only kept alive (a PING every 10 s, the default) trims 1 s after each,
    /// whatever traffic raised its wait before: the idle memory bound holds for it.
    #[test]
    fn keep_alives_alone_trim_after_a_second() {
        let (mut l, mut last) = (Liveness::new(Instant::ZERO), Instant::ZERO);
        let s = Duration::from_secs;
        for quiet in [1_000, 2_900, 4_900] {
            next_wait(&mut l, &mut last, Duration::from_millis(quiet));
        }
        assert_eq!(l.trim_deadline(), Some(last + s(8)));
        for _ in 0..3 {
            let every = s(10);
            l.trimmed();
            last += every;
            l.elicited(last);
        }
        assert_eq!(l.trim_deadline(), Some(last + TRIM_AFTER));
    }

    /// One end keeps a quiet connection alive: a PING heard puts ours off to the interval
    /// and a probe timeout after the last packet heard, so the peer's next, an interval
    /// after its last, comes first; one of ours counts from when it went.
    #[test]
    fn a_keep_alive_heard_puts_ours_off_until_the_peer_s_next_is_late() {
        let s = Duration::from_secs;
        let (every, pto) = (s(10), Duration::from_millis(300));
        let mut l = Liveness::new(Instant::ZERO);
        assert_eq!(l.keep_alive_deadline(every, pto), Instant::ZERO + every);
        // The peer's PING, heard at 4 s.
        let heard = Instant::ZERO + s(4);
        l.heard(heard);
        l.heard_eliciting();
        assert_eq!(l.keep_alive_deadline(every, pto), heard + every + pto);
        // A packet of ours that must be acknowledged: the interval counts from it again.
        let sent = heard + s(1);
        l.on_eliciting_sent(sent);
        assert_eq!(l.keep_alive_deadline(every, pto), sent + every);
        // A packet heard that asks for nothing (an ACK) changes nothing.
        l.heard(sent + s(1));
        assert_eq!(l.keep_alive_deadline(every, pto), sent + every);
    }

    /// A waiting end's PINGs: a probe timeout after its last packet, then twice as far
    /// apart with each, up to the cap; any other ack-eliciting packet starts over.
    #[test]
    fn a_waiting_end_s_pings_double_their_interval_up_to_the_cap() {
        let ms = Duration::from_millis;
        let (pto, most) = (ms(100), ms(2_000));
        let mut l = Liveness::new(Instant::ZERO);
        let mut at = Instant::ZERO;
        let mut gaps = alloc::vec::Vec::new();
        for _ in 0..7 {
            let due = l.waiting_deadline(pto, most);
            gaps.push((due - at).as_millis());
            at = due;
            l.waiting_ping_due(at);
            l.on_eliciting_sent(at);
        }
        assert_eq!(gaps, [100, 200, 400, 800, 1_600, 2_000, 2_000]);
        // Data sent: the next PING is a probe timeout after it.
        l.on_eliciting_sent(at + ms(5));
        assert_eq!(l.waiting_deadline(pto, most), at + ms(105));
        // A probe timeout longer than the cap is the interval.
        assert_eq!(l.waiting_deadline(ms(3_000), most), at + ms(3_005));
        // The credit hint is set by a report, and cleared by credit.
        assert!(!l.awaits_credit());
        l.blocked();
        assert!(l.awaits_credit());
        l.credit_came();
        assert!(!l.awaits_credit());
    }
}
